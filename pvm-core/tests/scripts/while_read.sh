# while-read loops: files, IFS splitting, pipes into loops (a subshell), read -r and counters.
n=0
while read -r name age city; do
    n=$((n + 1))
    [ "$n" -le 3 ] && echo "$n: $name is $age in $city"
done <<EOF2
$(tail -n +2 /data/people.csv | tr , ' ')
EOF2
echo "rows: $n"
total=0
while IFS=, read -r name age city; do
    case $city in rome) total=$((total + age)) ;; esac
done < /data/people.csv
echo "age total in rome: $total"
count=0
seq 1 100 | while read -r i; do count=$((count + i)); [ "$i" = 100 ] && echo "sum in pipe: $count"; done
echo "count after pipe (subshell, unchanged): $count"
printf 'a\\b c\n' | { read -r x; echo "raw: $x"; }
printf 'a\\b c\n' | { read x; echo "cooked: $x"; }
while read -r l; do echo "[$l]"; done < /data/tree/x/zero.log
echo "empty file: done"
