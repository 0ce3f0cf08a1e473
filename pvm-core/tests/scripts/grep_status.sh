# grep: counting, inverting, extended patterns, -o, -n, -w, -i and its exit statuses.
grep -c word1 /data/words.txt
grep -n 'the' /data/text.txt
grep -i -c 'the' /data/text.txt
grep -v -c 7 /data/words.txt
grep -E '^word(12|345) ' /data/words.txt
grep -o 'qu[a-z]*' /data/text.txt
grep -w 'be' /data/text.txt
grep -r -l 'three' /data/tree | sort
grep -q fox /data/text.txt; echo "match: $?"
grep -q elephant /data/text.txt; echo "no match: $?"
grep -q x /data/no-such-file 2>/dev/null; echo "missing file: $?"
