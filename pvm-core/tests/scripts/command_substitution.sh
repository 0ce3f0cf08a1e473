# Command substitution: $(...), backquotes, nesting, trailing newlines, status and word splitting.
n=$(wc -l < /data/words.txt)
echo "lines: $n"
echo "nested: $(echo "$(echo "$(echo deep)")")"
echo "backquotes: `echo old style`"
x=$(printf 'a\n\n\n'); echo "trailing newlines removed: [$x]"
y=$(printf 'a\n\nb'); echo "inner newlines kept: [$y]"
set -- $(echo one two   three); echo "words: $# $2"
v=$(exit 7); echo "status of assignment: $?"
echo "arith in subst: $(( $(echo 6) * $(echo 7) ))"
first=$(head -1 /data/text.txt | cut -d' ' -f2)
echo "first: $first"
big=$(cat /data/words.txt); echo "chars: ${#big}"
