#!/usr/bin/env bash
# Installs the peers `pvm bench` compares pvm with, from Debian's archive with apt-get:
#   gvisor     runsc (ptrace platform, `runsc do`)
#   qemu-tcg   qemu-system-x86 + Debian's linux-image-amd64 kernel (software emulation, TCG)
#   uml        user-mode-linux (Debian's UML kernel, `linux` binary)
# plus the tools the harness needs to build the benchmark programs and the QEMU initramfs:
#   gcc (static glibc), busybox-static, cpio.
# Usage: sudo ci/bench-peers.sh        (idempotent; safe to rerun)
# Afterwards `pvm bench` detects each peer by itself and says why it skips one that is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-peers.sh: run as root (apt-get install)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev busybox-static cpio \
    runsc \
    qemu-system-x86 linux-image-amd64 \
    user-mode-linux

echo "bench-peers.sh: installed:"
for b in runsc qemu-system-x86_64 linux busybox; do
    printf '  %-20s %s\n' "$b" "$(command -v "$b" || echo MISSING)"
done
ls /boot/vmlinuz-* 2>/dev/null | sed 's/^/  kernel               /'
