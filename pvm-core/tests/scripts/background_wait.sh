# Background jobs and `wait`: all jobs finish, `wait PID` returns each job's status.
for i in 1 2 3 4 5 6 7 8; do
    (echo "job $i" > /tmp/job.$i) &
done
wait
cat /tmp/job.*
(exit 3) & p3=$!
(exit 5) & p5=$!
(sleep 0.1; exit 7) & p7=$!
wait $p5; echo "job exiting 5: $?"
wait $p3; echo "job exiting 3: $?"
wait $p7; echo "slow job exiting 7: $?"
sleep 0.05 &
wait; echo "plain wait: $?"
# Output of background jobs in order through a file, sorted.
for i in 3 1 2; do (sleep 0.0$i; echo "late $i") >> /tmp/late & done
wait; sort /tmp/late
