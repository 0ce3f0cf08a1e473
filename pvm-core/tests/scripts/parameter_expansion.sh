# Parameter expansion: defaults, lengths, prefix/suffix removal, substrings, replacement.
path=/usr/local/lib/libfoo.so.1.2
echo "${path##*/} ${path#*/} ${path%/*} ${path%%.*}"
echo "len ${#path}"
unset u; empty=
echo "[${u:-default}] [${empty:-default}] [${empty-unset-only}] [${u+set}] [${path:+set}]"
echo "${u:=assigned} $u"
s=abcdefghij
echo "${s:2:3} ${s:7} ${s: -3}"
echo "${s/cde/CDE} ${path//\//:}"
(echo "${missing:?is required}") 2>/dev/null; echo "?: status $?"
set -- a b c d e
echo "$# ${3} ${@: -2}"
IFS=:; set -- $(echo "x:y:z"); echo "$2"; unset IFS
