# Timers: sleep, timeout(1) killing a sleeper, read -t timing out, in order.
sleep 0.2; echo "slept"
timeout 1 sleep 0.1; echo "timeout not reached: $?"
timeout 0.3 sleep 5; echo "timeout reached: $?"
timeout -s KILL 0.3 sleep 5; echo "timeout with KILL: $?"
read -t 0.2 x < /dev/zero 2>/dev/null; echo "read from /dev/zero returned"
(sleep 0.3; echo second) & (sleep 0.1; echo first) & wait
