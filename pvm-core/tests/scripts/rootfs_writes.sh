# Writes everywhere in the root filesystem; the test checks that they reach the guest's copy of the tree on the host (hostfs), and never the shared tree.
echo "new" > /data/new.txt
echo "appended" >> /data/words.txt
rm /data/tree/top.txt
mv /data/tree/a/one.txt /data/tree/moved.txt
mkdir -p /etc/newdir && echo conf > /etc/newdir/conf
chmod 600 /data/numbers.txt
rm /bin/cal
ln -s /data/new.txt /data/link
touch /scripts/touched
: > /data/people.csv
cat /data/new.txt /data/link /etc/newdir/conf
tail -1 /data/words.txt
ls /data/tree
stat -c '%a %s %n' /data/numbers.txt /data/people.csv
[ -e /bin/cal ] || echo "cal removed"
