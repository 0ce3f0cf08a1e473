#!/usr/bin/env bash
# The test script of pvm (CI runs it through .ci/run; run it yourself from anywhere):
# installs what the tests need when it is missing, then runs clippy (warnings are errors) and
# the whole test suite in release mode. Exits nonzero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\n==> %s\n' "$*"; }

# --- tools the end-to-end tests use --------------------------------------------------------
# gcc (glibc static), musl-gcc (musl static), /bin/busybox (Debian's busybox-static),
# debootstrap.
missing=()
if ! command -v gcc >/dev/null; then
    missing+=(gcc libc6-dev)
elif ! [ -f "$(gcc -print-file-name=libc.a)" ]; then
    missing+=(libc6-dev) # glibc's static libc.a, for gcc -static
fi
command -v musl-gcc >/dev/null || missing+=(musl-tools)
# The tests copy /bin/busybox into guest root filesystems: it must be Debian's static build.
if ! [ -x /bin/busybox ] \
    || [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
    missing+=(busybox-static)
fi
# pvm-core/tests/debian.rs builds a Debian minbase tree with python3 once (cached per user)
# with it, and builds a .deb with dpkg-deb (part of dpkg, on every Debian/Ubuntu host).
command -v debootstrap >/dev/null || missing+=(debootstrap)
# ... and checks bookworm's Release signature with Debian's keyring (not preinstalled on Ubuntu).
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
# pvm-core/tests/oci_podman.rs drives pvm as podman's OCI runtime (containerd: docs/oci.md).
command -v podman >/dev/null || missing+=(podman)
command -v containerd >/dev/null || missing+=(containerd)
if [ ${#missing[@]} -gt 0 ]; then
    # As root apt-get runs directly; otherwise through passwordless sudo (GitHub's runners).
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "ci/test.sh: missing packages (${missing[*]}); not root and no passwordless sudo to" \
            "install them: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! cargo clippy --version >/dev/null 2>&1; then
    log "installing clippy"
    rustup component add clippy
fi

# --- lint and test -------------------------------------------------------------------------
log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The freestanding crates (own workspaces): their Cargo.toml lints deny what the workspace's do
# (no `-D warnings`: rustc warns about the guest kernel's deliberate `-sse2` ABI).
log "clippy of the guest kernel and the switcher stub"
(cd guest-kernel && cargo clippy --release)
(cd switcher/stub && cargo clippy --release)
(cd guest-kernel/vdso && cargo clippy --release --features image --all-targets)

# The guest kernel is freestanding, in its own workspace: its unit tests run on the host.
log "guest kernel unit tests (cd guest-kernel && cargo test --lib --release)"
(cd guest-kernel && cargo test --lib --release)
(cd guest-kernel/vdso && cargo test --release)

# Run by a user other than root, the tests' native reference runs (chroot in a private mount
# namespace) use `sudo -n` or an unprivileged user namespace, or are skipped with a printed
# reason; pvm itself always runs as this user.
# --no-fail-fast: run every test binary and report all failures, not only the first one's.
# Where /dev/kvm exists the equivalence suites also run on --backend kvm (kvm::* tests); on
# software KVM a few scripts with hundreds of processes are skipped unless PVM_TEST_KVM_FULL=1.
# The SMP stress test (tests/smp_stress.rs) runs for a bounded amount of work: about 60 s
# of it in CI.
export PVM_SMP_STRESS_ROUNDS="${PVM_SMP_STRESS_ROUNDS:-1500}"
log "cargo test --workspace --release --no-fail-fast"
cargo test --workspace --release --no-fail-fast

log "all checks passed"
