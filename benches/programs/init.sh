#!/bin/sh
# pvm bench: /init of the QEMU and UML guests (busybox sh). Two arguments, from the kernel
# command line after `--`: LMB-OPTIONS and BENCHMARKS, each comma-separated (Linux passes at
# most 32 arguments to init; anything a kernel appends after them, e.g. UML's root=, is ignored).
# Runs /lmb once per benchmark, as every other contender does, then powers off.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev 2>/dev/null
[ -e /dev/zero ] || { $bb mount -t tmpfs dev /dev; $bb mknod /dev/null c 1 3; $bb mknod /dev/zero c 1 5; }
$bb mount -t tmpfs tmp /tmp
echo lmb-boot-ok
set -f
IFS=,
opts=""
for o in $1; do opts="$opts $o"; done
for b in $2; do
    echo "lmb-start $b"
    IFS=' '
    /lmb $opts "$b"
    echo "lmb-exit $b $?"
    IFS=,
done
echo lmb-done
$bb poweroff -f
