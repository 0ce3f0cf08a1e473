#!/bin/sh
# Long runs of the guest syscall fuzzer (pvm-core/tests/programs/fuzz.c) by hand:
#
#   ci/fuzz.sh [SECONDS] [SEED]
#
# Runs `pvm run --verbose -- fuzz SEED CALLS log` for SEED, SEED+1, ... until SECONDS (default 600)
# have passed, and stops at the first failure: pvm's status is not 0, the guest kernel panicked
# or logged `fatal:`, pvm printed an error of its own, the run took longer than PER_RUN_TIMEOUT
# (a hang), the fuzzer's summary is missing, or the canary file outside the VM changed. It then
# prints the seed, the reason, the guest kernel's last lines and the last calls the fuzzer
# logged before issuing them (the culprit is the last one of the batch that was running), and
# keeps the whole log. Reproduce one batch with `pvm run --verbose -- FUZZ SEED 256 log first=BATCH`.
#
# Environment:
#   CALLS            calls per seed (default 200000, about 10 s here)
#   FUZZ_OPTS        extra fuzzer options, e.g. `avoid-known` (steer around the guest-kernel
#                    bugs already reported) or `skip=NR,NR`
#   PVM_OPTS         extra `pvm run` options, e.g. `--cpus 2` or `--pin 1`
#   PER_RUN_TIMEOUT  seconds before a run counts as hung (default 300)
#   PVM              the pvm binary (default: `cargo build --release`, target/release/pvm)
#   CC               compiler for the fuzzer (default gcc; musl-gcc works too)
#   KEEP             directory for logs (default: a new temporary directory)
#   CONTINUE=1       report each failure and go on with the next seed (exit status 1 at the end
#                    if any failed); the failing seeds' logs are kept
set -eu

SECONDS_TOTAL=${1:-600}
SEED=${2:-1}
CALLS=${CALLS:-200000}
FUZZ_OPTS=${FUZZ_OPTS:-}
PVM_OPTS=${PVM_OPTS:-}
PER_RUN_TIMEOUT=${PER_RUN_TIMEOUT:-300}
CC=${CC:-gcc}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${PVM:-}" ]; then
    (cd "$root" && cargo build --release --quiet)
    PVM=$root/target/release/pvm
fi
work=${KEEP:-$(mktemp -d /tmp/pvm-fuzz.XXXXXX)}
mkdir -p "$work"
fuzz=$work/fuzz
"$CC" -static -O2 -Wall -Wextra -o "$fuzz" "$root/pvm-core/tests/programs/fuzz.c"

# The canary: a host file the guest never names; it must be byte-identical after every run.
canary=$work/canary
echo "pvm fuzz canary $$ $(date +%s)" > "$canary"
canary_sum=$(cksum < "$canary")

start=$(date +%s)
runs=0
failed=0
total_issued=0
total_children=0
echo "fuzz: ${SECONDS_TOTAL}s from seed $SEED, $CALLS calls per seed, logs in $work"
while :; do
    now=$(date +%s)
    [ $((now - start)) -lt "$SECONDS_TOTAL" ] || break
    out=$work/out.$SEED
    err=$work/err.$SEED
    t0=$(date +%s)
    # shellcheck disable=SC2086 # PVM_OPTS and FUZZ_OPTS are lists of words
    set +e
    timeout -k 5 "$PER_RUN_TIMEOUT" "$PVM" run --verbose $PVM_OPTS -- "$fuzz" "$SEED" "$CALLS" log $FUZZ_OPTS \
        > "$out" 2> "$err"
    rc=$?
    set -e
    t1=$(date +%s)
    runs=$((runs + 1))
    reason=
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && [ $((t1 - t0)) -ge "$PER_RUN_TIMEOUT" ]; then
        reason="hung (killed after ${PER_RUN_TIMEOUT}s)"
    elif grep -q "kernel panic\|guest kernel: \[vcpu[0-9]*\] fatal:" "$err"; then
        reason="guest kernel panic"
    elif [ "$rc" -ne 0 ]; then
        reason="pvm exited with status $rc"
    elif grep -v '^pvm: guest kernel: ' "$err" | grep -q '^pvm: '; then
        reason="pvm error"
    elif ! grep -q '^fuzz: done$' "$out"; then
        reason="no summary"
    elif [ "$(cksum < "$canary")" != "$canary_sum" ]; then
        reason="the canary file outside the VM changed"
    fi
    summary=$(grep '^fuzz: seed=' "$out" || true)
    if [ -n "$reason" ]; then
        echo "FAILED: seed $SEED: $reason (status $rc, $((t1 - t0))s)"
        echo "--- guest kernel and pvm lines (last 10) ---"
        grep -v '^fuzz: b=\|unknown syscall\|to handler\|^fuzz: batch [0-9]*$' "$err" | tail -n 10
        echo "--- last calls logged (the last one was running) ---"
        grep '^fuzz: b=' "$err" | tail -n 8
        echo "--- full log: $err; replay: $PVM run --verbose $PVM_OPTS -- $fuzz $SEED 256 log first=<b> $FUZZ_OPTS"
        [ "${CONTINUE:-0}" = 1 ] || exit 1
        failed=$((failed + 1))
        SEED=$((SEED + 1))
        continue
    fi
    issued=$(echo "$summary" | sed -n 's/.* issued=\([0-9]*\).*/\1/p')
    children=$(echo "$summary" | sed -n 's/.* children=\([0-9]*\).*/\1/p')
    total_issued=$((total_issued + ${issued:-0}))
    total_children=$((total_children + ${children:-0}))
    echo "ok: $summary ($((t1 - t0))s)"
    rm -f "$out" "$err"
    SEED=$((SEED + 1))
done
echo "fuzz: $runs seeds ($failed failed), $total_issued calls issued by passing seeds, $total_children children, in $(($(date +%s) - start))s"
[ "$failed" -eq 0 ]
