#!/bin/sh
# Runs a command natively in a throwaway copy of a tree made by make-tree.sh, the way the
# guest sees it under pvm: chrooted, with only the given environment, /dev/{null,zero,random,
# urandom,tty} bind-mounted on a tmpfs and /proc mounted, all in a private mount namespace.
# The tree itself is never written (writes go to the copy, deleted afterwards). Needs root
# (directly or through sudo); run by another user it maps that user to root in a new user
# namespace (unshare --user --map-root-user), which needs unprivileged user namespaces.
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
userns=
if [ "$(id -u)" -ne 0 ]; then
    userns="--user --map-root-user"
fi
# shellcheck disable=SC2086 # $envs is a list of K=V words, $userns a list of options.
unshare $userns --mount --propagation private /bin/sh -eu -c '
    root=$1; envs=$2; shift 2
    mount -t tmpfs -o mode=755 pvm-native-dev "$root/dev"
    for n in null zero random urandom tty; do
        : > "$root/dev/$n"
        mount --bind "/dev/$n" "$root/dev/$n"
    done
    # A user namespace may not mount a proc of the host pid namespace: bind the host one.
    mount -t proc proc "$root/proc" 2>/dev/null || mount --rbind /proc "$root/proc"
    exec env -i $envs /usr/sbin/chroot "$root" "$@"
' run-native "$copy" "$envs" "$@" || status=$?
exit "$status"
