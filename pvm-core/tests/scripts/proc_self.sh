# /proc/self: the executable behind a symlinked applet, cmdline, cwd, fds and status fields.
readlink /proc/self/exe
cat /proc/self/cmdline | tr '\0' ' '; echo
cd /data/tree && readlink /proc/self/cwd && cd /
exec 7< /data/text.txt
readlink /proc/self/fd/7
exec 7<&-
grep '^Name:' /proc/self/status
cut -d' ' -f2,3 /proc/self/stat
head -c 5 /proc/self/cmdline | od -c | head -1
[ -d /proc/self/fd ] && echo "fd dir exists"
