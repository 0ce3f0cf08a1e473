# Forks 1000 times: 1000 runs of /bin/true, each a fork + exec + wait.
i=0
while [ $i -lt 1000 ]; do
    /bin/true || echo "run $i failed"
    i=$((i + 1))
done
echo "ran /bin/true $i times"
