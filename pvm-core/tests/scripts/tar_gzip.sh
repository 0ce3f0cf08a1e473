# tar and gzip round trips through pipes: the unpacked copy matches byte for byte.
cd /data
tar cf - tree | tar tf - | sort
tar cf - tree | gzip -c | gunzip -c | tar tf - | wc -l
mkdir -p /tmp/unpack
tar cf - tree big.bin | gzip -9 | gzip -dc | (cd /tmp/unpack && tar xf -)
(cd /data && find tree -type f | sort | xargs md5sum) > /tmp/a.sum
(cd /tmp/unpack && find tree -type f | sort | xargs md5sum) > /tmp/b.sum
cmp /tmp/a.sum /tmp/b.sum && echo "tree matches"
cmp /data/big.bin /tmp/unpack/big.bin && echo "big.bin matches"
gzip -c /data/big.bin | gunzip | md5sum
gzip -c < /data/words.txt > /tmp/w.gz
zcat /tmp/w.gz | tail -1
gzip -t /tmp/w.gz && echo "gzip -t ok"
