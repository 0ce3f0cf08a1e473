#!/bin/sh
# Writes the deterministic input files of the shell-script tests into DIR (run with busybox sh;
# the numbers come from a fixed linear congruential generator, never from the clock):
#   busybox sh gen-data.sh DIR BUSYBOX
set -eu
d=$1
bb=$2
awk=$bb' awk'

# words.txt: 2000 lines "wordN K" with K = N*N mod 977.
$awk 'BEGIN { for (i = 0; i < 2000; i++) printf "word%d %d\n", i, (i * i) % 977 }' > "$d/words.txt"

# numbers.txt: 1000 pseudo-random integers in [0, 100000), one per line.
$awk 'BEGIN { x = 12345; for (i = 0; i < 1000; i++) { x = (x * 1103515245 + 12345) % 2147483648; print int(x / 65536) % 100000 } }' > "$d/numbers.txt"

# people.csv: name,age,city with repeats, for cut/sort/uniq/awk.
$awk 'BEGIN {
    split("ada bob cy dee eve fay gus hal ivy jon", n, " ")
    split("oslo rome lima kiev", c, " ")
    print "name,age,city"
    for (i = 0; i < 60; i++) printf "%s%d,%d,%s\n", n[i % 10 + 1], i, 18 + (i * 7) % 50, c[i % 4 + 1]
}' > "$d/people.csv"

# text.txt: prose with mixed case, punctuation, blank lines and tabs.
cat > "$d/text.txt" <<'TEXT'
The quick brown fox jumps over the lazy dog.
A journey of a thousand miles begins with a single step.

	Tabs	separate	these	words.
To be, or not to be: that is the question.
The END of the text, the end.
TEXT

# tree/: a small directory hierarchy for find/tar.
mkdir -p "$d/tree/a/b/c" "$d/tree/x/y" "$d/tree/empty"
for f in a/one.txt a/b/two.txt a/b/c/three.txt x/four.log x/y/five.txt top.txt; do
    $awk -v f="$f" 'BEGIN { for (i = 0; i < length(f) * 3; i++) print f, i }' > "$d/tree/$f"
done
: > "$d/tree/x/zero.log"

# big.bin: the first 1 MiB of the busybox binary (binary bytes of every value).
dd if="$bb" of="$d/big.bin" bs=65536 count=16 2>/dev/null
