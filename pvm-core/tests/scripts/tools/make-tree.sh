#!/bin/sh
# Builds the guest root filesystem of the shell-script tests (tests/shell_scripts.rs,
# tests/multiprocess.rs) in DIR, which must not exist or be empty:
#   sh make-tree.sh DIR [BUSYBOX]
# DIR gets Debian's busybox-static at /bin/busybox with every applet as a symlink in /bin, the
# test scripts at /scripts, generated input files at /data, /tmp (mode 1777), /root, and empty
# /dev and /proc directories: pvm provides the guest's /dev and /proc itself; a native run mounts
# them (see shell_scripts.rs). By hand:
#   pvm run --rootfs DIR --env PATH=/bin --env HOME=/root /bin/sh /scripts/NAME.sh
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
dir=$1
bb=${2:-/bin/busybox}
here=$(cd "$(dirname "$0")" && pwd)
scripts=$(dirname "$here")
mkdir -p "$dir/bin" "$dir/scripts" "$dir/data" "$dir/tmp" "$dir/root" "$dir/dev" "$dir/proc"
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
cp "$scripts"/*.sh "$dir/scripts/"
"$bb" sh "$here/gen-data.sh" "$dir/data" "$bb"
