# Redirections: > >> < 2>&1 2>/dev/null, exec with numbered descriptors, <> and here-strings.
echo one > /tmp/r.txt
echo two >> /tmp/r.txt
cat < /tmp/r.txt
exec 3> /tmp/fd3.txt
echo "to fd 3" >&3
echo "again to fd 3" 1>&3
exec 3>&-
cat /tmp/fd3.txt
echo "closed fd 3: $( (echo x >&3) 2>/dev/null; echo $?)"
exec 4< /data/text.txt
read -r line <&4; echo "fd 4 line 1: $line"
read -r line <&4; echo "fd 4 line 2: $line"
exec 4<&-
{ echo out; echo err >&2; } > /tmp/both.txt 2>&1
sort /tmp/both.txt
{ echo out; echo err >&2; } 2>/dev/null
ls /no/such/dir 2> /tmp/err.txt; echo "ls status: $?"; wc -l < /tmp/err.txt
exec 5<> /tmp/rw.txt
echo "read-write" >&5
exec 5>&-
cat /tmp/rw.txt
exec 6>&1
exec > /tmp/stdout.txt
echo "went to the file"
exec 1>&6 6>&-
cat /tmp/stdout.txt
set -C; (echo clobber > /tmp/r.txt) 2>/dev/null; echo "noclobber: $?"; set +C
cat /tmp/r.txt
