# Pipelines of 3 to 7 stages, with the last stage's status and `set -o pipefail`.
cat /data/words.txt | grep '7' | cut -d' ' -f2 | sort -n | uniq -c | sort -k1,1nr -k2,2n | head -5
echo "stage count: $(seq 1 500 | grep 5 | tr 5 x | wc -l)"
printf 'b\na\nc\na\n' | sort | uniq | tr 'a-z' 'A-Z' | paste -s -d,
# The status of a pipeline is its last command's, unless pipefail is set.
false | true | true; echo "without pipefail: $?"
set -o pipefail
true | false | true; echo "with pipefail: $?"
true | (exit 3) | true; echo "with pipefail, middle exits 3: $?"
