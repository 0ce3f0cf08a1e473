# sort (numeric, keys, separators, reverse, unique) and uniq (counts, duplicates).
sort -n /data/numbers.txt | head -3
sort -n /data/numbers.txt | tail -3
sort -rn /data/numbers.txt | head -2
echo "--- by city then age"
tail -n +2 /data/people.csv | sort -t, -k3,3 -k2,2n | head -8
echo "--- unique cities with counts"
tail -n +2 /data/people.csv | cut -d, -f3 | sort | uniq -c
echo "--- duplicated squares mod 977"
cut -d' ' -f2 /data/words.txt | sort -n | uniq -d | wc -l
cut -d' ' -f2 /data/words.txt | sort -u | wc -l
printf '3\n1\n2\n1\n' | sort -u
