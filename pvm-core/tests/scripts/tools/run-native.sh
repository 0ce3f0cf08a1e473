#!/bin/sh
# Runs a command natively in a throwaway copy of a tree made by make-tree.sh, the way the
# guest sees it under pvm: chrooted, with only the given environment, /dev/{null,zero,random,
# urandom,tty} bind-mounted on a tmpfs and /proc mounted, all in a private mount namespace.
# The tree itself is never written (writes go to the copy, deleted afterwards). Needs root.
#   sh run-native.sh TREE 'K=V K2=V2' COMMAND [ARGS]...
# Exits with the command's status. The shell-script tests run it under `taskset -c 0` to
# match a 1-vCPU guest.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
tree=$1
envs=$2
shift 2
copy=$(mktemp -d /tmp/pvm-native-root.XXXXXX)
trap 'rm -rf "$copy"' EXIT
cp -a "$tree/." "$copy/"
status=0
# shellcheck disable=SC2086 # $envs is a list of K=V words.
unshare --mount --propagation private /bin/sh -eu -c '
    root=$1; envs=$2; shift 2
    mount -t tmpfs -o mode=755 pvm-native-dev "$root/dev"
    for n in null zero random urandom tty; do
        : > "$root/dev/$n"
        mount --bind "/dev/$n" "$root/dev/$n"
    done
    mount -t proc proc "$root/proc"
    exec env -i $envs /usr/sbin/chroot "$root" "$@"
' run-native "$copy" "$envs" "$@" || status=$?
exit "$status"
