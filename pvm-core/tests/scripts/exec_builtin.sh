# exec replaces the shell (in subshells here); exec with a program's status; eval and command.
(exec echo "exec'd echo")
(exec sh -c 'exit 6'); echo "exec'd sh status: $?"
(exec /bin/no-such-program) 2>/dev/null; echo "exec of a missing program: $?"
eval 'x=1; y=$((x + 1))'; echo "eval: $x $y"
command -v awk
type cd | head -1
cmd="echo dynamic command"; $cmd
(echo before; exec true; echo after) ; echo "status $?"
