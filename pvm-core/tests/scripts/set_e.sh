# set -e: failures in conditions and || chains do not exit; a plain failing command does, with its status.
set -e
if false; then echo "not printed"; fi
echo "after if false"
false || echo "after false ||"
! true
echo "after ! true"
while false; do :; done
echo "after while false"
x=$(false || echo fallback); echo "subst: $x"
f() { false; echo "not reached in f"; }
(f) || echo "function in subshell failed: $?"
(set -e; false; echo "not printed") || echo "subshell with set -e failed: $?"
echo "before the failure"
sh -c 'exit 3'
echo "not printed: set -e must have exited with 3"
