# Pathname globbing (*, ?, [..], no match) and case patterns.
cd /data/tree
echo *
echo */*
echo a/b/c/*.txt
echo ?/*.log
echo [ax]
echo nomatch*
for f in x/*; do
    case $f in
        *.log) echo "log file: $f" ;;
        x/y|x/z) echo "dir: $f" ;;
        *) echo "other: $f" ;;
    esac
done
for w in apple Banana 42 -x ''; do
    case $w in
        [a-z]*) echo "$w: lower" ;;
        [A-Z]*) echo "$w: upper" ;;
        [0-9]*) echo "$w: digit" ;;
        -?) echo "$w: option" ;;
        '') echo "empty" ;;
    esac
done
set -f; echo *; set +f
