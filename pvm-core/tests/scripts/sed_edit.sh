# sed: substitution flags, addresses and ranges, delete/print, in-place editing of a copy.
sed 's/the/THE/g' /data/text.txt
sed -n '2,4p' /data/text.txt
sed '/^$/d; s/\([a-z]*\)\./<\1>./' /data/text.txt
sed -n '/journey/,/question/{=;p}' /data/text.txt
sed -e '1i\
first' -e '$a\
last' /data/tree/top.txt | head -3
cp /data/text.txt /tmp/edit.txt
sed -i 's/fox/cat/; s/dog/mouse/' /tmp/edit.txt
head -1 /tmp/edit.txt
echo "aaa bbb" | sed 's/a/x/2'
echo "path/to/file" | sed 's|/|::|g'
