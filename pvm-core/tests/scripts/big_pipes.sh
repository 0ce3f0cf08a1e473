# Large data through pipes (more than a pipe buffer at every stage; writers block and resume).
seq 1 200000 | tail -1
seq 1 200000 | awk '{ s += $1 } END { print s }'
head -c 3000000 /dev/zero | wc -c
cat /data/big.bin /data/big.bin /data/big.bin | md5sum
cat /data/big.bin | gzip | gunzip | cmp - /data/big.bin && echo "big.bin through gzip: same"
yes abcdefgh | head -n 100000 | sort | uniq -c
dd if=/data/big.bin bs=4096 2>/dev/null | dd bs=1000 2>/dev/null | wc -c
