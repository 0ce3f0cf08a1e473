# cd and pwd: absolute, relative, .., cd -, failing cd, symlinked directories (-L/-P), $PWD.
cd /data/tree/a/b
pwd
cd ..
pwd
cd ../x/y && pwd
cd - > /dev/null && pwd
cd /no/such/dir 2>/dev/null; echo "failed cd: $? still in $(pwd)"
cd /
ln -s /data/tree/a/b /tmp/link-to-b
cd /tmp/link-to-b
echo "logical: $(pwd) $PWD"
echo "physical: $(pwd -P)"
cd ..; echo "after .. from link: $(pwd)"
cd -P /tmp/link-to-b; pwd
cd /tmp && mkdir -p d1/d2 && cd d1/d2 && pwd
ls /tmp/d1
cd; echo "home: $(pwd)"
