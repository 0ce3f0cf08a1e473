# trap and kill: handlers for USR1/TERM/EXIT, kill -9 of a child and the status the shell reports.
trap 'echo "got USR1"' USR1
kill -USR1 $$
echo "after USR1"
trap 'echo "got TERM"' TERM
kill -TERM $$
echo "after TERM"
trap - TERM
# kill -9 of a background child: wait reports 128+9.
sleep 30 & pid=$!
kill -9 $pid
wait $pid; echo "child killed with -9: $?"
sleep 30 & pid=$!
kill $pid
wait $pid; echo "child killed with TERM: $?"
# A child that kills itself.
sh -c 'kill -9 $$'; echo "self -9: $?"
sh -c 'kill -USR2 $$'; echo "self USR2: $?"
# A subshell with its own trap.
(trap 'echo "subshell TERM"; exit 11' TERM; kill -TERM $(sh -c 'echo $PPID'); echo "not reached") ; echo "subshell: $?"
kill -0 $$ && echo "kill -0 self ok"
trap 'echo "EXIT trap"' EXIT
echo "end"
