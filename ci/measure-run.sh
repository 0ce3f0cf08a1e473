#!/usr/bin/env bash
# Measures what issue 2's closing note reports, in one run, against native on the same machine:
# `pvm run --stats` of a static glibc hello and of `busybox sha256sum` of a 16 MiB file, and the
# wall time of each under pvm and natively (hyperfine, pinned to one CPU like pvm pins its VM).
# Usage: ci/measure-run.sh [RUNS]   (needs gcc, hyperfine and Debian's busybox-static)
#        PVM_BACKEND=kvm ci/measure-run.sh [RUNS]   the same on the KVM backend
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-20}
backend=${PVM_BACKEND:-soft}
command -v hyperfine >/dev/null || { echo "measure-run.sh: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release -p pvm-core >/dev/null
pvm=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/pvm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -static -O2 -o "$work/hello" pvm-core/tests/programs/hello.c
mkdir -p "$work/rootfs/bin" "$work/rootfs/data"
cp /bin/busybox "$work/rootfs/bin/busybox"
head -c $((16 << 20)) /dev/urandom > "$work/rootfs/data/16M"
cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[-,].*//')

echo "== machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), pinned to CPU $cpu"
echo "== pvm run --backend $backend --stats $work/hello"
"$pvm" run --backend "$backend" --stats "$work/hello" >/dev/null
echo "== pvm run --backend $backend --stats --rootfs ROOTFS /bin/busybox sha256sum /data/16M"
"$pvm" run --backend "$backend" --stats --rootfs "$work/rootfs" /bin/busybox sha256sum /data/16M
echo "== wall time, pvm against native"
hyperfine -N --warmup 3 --runs "$runs" \
    -n "native hello" "taskset -c $cpu $work/hello" \
    -n "pvm ($backend) hello" "$pvm run --backend $backend $work/hello" \
    -n "native busybox sha256sum 16M" "taskset -c $cpu $work/rootfs/bin/busybox sha256sum $work/rootfs/data/16M" \
    -n "pvm ($backend) busybox sha256sum 16M" "$pvm run --backend $backend --rootfs $work/rootfs /bin/busybox sha256sum /data/16M"
