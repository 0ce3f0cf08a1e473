# Writers to a closed pipe die of SIGPIPE; pipefail reports 128+13.
yes | head -3
seq 1 1000000 | head -1
set -o pipefail
yes | head -1 > /dev/null; echo "yes | head: $?"
(seq 1 1000000; echo "seq got SIGPIPE, the subshell goes on" >&2) | head -2; echo "seq | head: $?"
