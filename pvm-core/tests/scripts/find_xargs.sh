# find with tests and actions, fed through xargs.
cd /data/tree
find . -type f | sort
echo "--- names ending in .txt, with sizes"
find . -name '*.txt' -type f | sort | xargs wc -c
echo "--- empty files and dirs"
find . -empty | sort
echo "--- -exec and xargs -n"
find . -name '*.log' -exec echo log: {} \; | sort
find . -type d | sort | xargs -n 2 echo pair:
echo "--- xargs -I"
ls a | xargs -I{} echo "[{}]"
echo "--- depth"
find . -mindepth 3 -type f | sort
