# nproc (1 CPU: the guest runs with --cpus 1, natively under taskset -c 0), free and ps run.
nproc
free > /tmp/free.txt; echo "free: $?"
grep -c '^Mem:' /tmp/free.txt
ps > /tmp/ps.txt; echo "ps: $?"
head -1 /tmp/ps.txt | tr -s ' ' | sed 's/^ //'
grep -q '/bin/sh /scripts/nproc_free_ps.sh' /tmp/ps.txt && echo "ps lists the shell"
[ "$(wc -l < /tmp/ps.txt)" -ge 3 ] && echo "ps lists the shell and itself (at least 2 processes)"
