# The device nodes every guest has: /dev/null, /dev/zero, /dev/urandom (length only).
echo "gone" > /dev/null; echo "null write: $?"
wc -c < /dev/null
head -c 16 /dev/zero | od -An -tx1
head -c 1000 /dev/urandom | wc -c
head -c 64 /dev/random | wc -c
[ -c /dev/null ] && echo "/dev/null is a character device"
cat /dev/null /data/tree/top.txt /dev/null | head -1
