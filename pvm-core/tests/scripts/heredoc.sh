# Here-documents: expansion, quoted delimiters, <<- tab stripping, into pipelines and loops.
name=world
cat <<EOF2
hello $name
sum: $((2 + 3))
cmd: $(echo substituted)
EOF2
cat <<'EOF2'
no $expansion here $(echo nor here)
EOF2
cat <<-EOF2
		leading tabs are stripped
	for $name
	EOF2
tr a-z A-Z <<EOF2 | sed 's/^/> /'
piped here-doc
second line
EOF2
while read -r a b; do echo "$b $a"; done <<EOF2
1 one
2 two
EOF2
cat <<EOF2 > /tmp/hd.txt
written to a file
EOF2
cat /tmp/hd.txt
