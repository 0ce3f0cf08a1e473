# /tmp is 1777; umask and modes of new files and directories; test(1) of permissions.
stat -c '%a' /tmp
umask 022; echo file > /tmp/f644; mkdir /tmp/d755
umask 077; echo file > /tmp/f600; mkdir /tmp/d700
umask 027; touch /tmp/f640
stat -c '%a %n' /tmp/f644 /tmp/d755 /tmp/f600 /tmp/d700 /tmp/f640
chmod 4755 /tmp/f644; stat -c '%a %A' /tmp/f644
chmod u-w,g+x /tmp/f600; stat -c '%a' /tmp/f600
[ -x /bin/busybox ] && echo "busybox executable"
[ -w /tmp ] && [ -k /tmp ] && echo "/tmp writable and sticky"
echo x > /tmp/ro; chmod 444 /tmp/ro; [ -w /tmp/ro ] && echo "root may write a 444 file"
