# Functions: arguments, local variables, return statuses, recursion, $@ vs $*.
greet() { echo "hello $1, $# args"; }
greet world a b
counter=0
bump() { local counter=100; counter=$((counter + 1)); echo "local: $counter"; }
bump; echo "global: $counter"
fib() { if [ "$1" -lt 2 ]; then echo "$1"; else echo $(( $(fib $(($1 - 1))) + $(fib $(($1 - 2))) )); fi; }
echo "fib 12 = $(fib 12)"
check() { [ "$1" -gt 10 ]; }
check 5; echo "check 5: $?"
check 50; echo "check 50: $?"
args() { for a in "$@"; do echo "<$a>"; done; echo "star: $*"; }
args "one two" three ""
shifted() { shift 2; echo "after shift: $*"; }
shifted a b c d
