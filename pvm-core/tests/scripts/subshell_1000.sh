# Forks 1000 subshells (fork + exit + wait, no exec), each with its own status.
i=0
sum=0
while [ $i -lt 1000 ]; do
    (exit $((i % 7)))
    sum=$((sum + $?))
    i=$((i + 1))
done
echo "subshells: $i, sum of statuses: $sum"
