# Nested shells and deep process chains: statuses travel back up through every level.
sh -c "sh -c 'sh -c \"echo deep; exit 4\"'"; echo "three levels: $?"
cat > /tmp/chain.sh <<'EOF2'
n=$1
if [ "$n" -gt 0 ]; then sh /tmp/chain.sh $((n - 1)); exit $(( $? + 1 )); fi
echo "bottom reached"
exit 0
EOF2
sh /tmp/chain.sh 20; echo "chain of 21 shells: $?"
echo 'echo "from a script file: $0 $1"' > /tmp/s.sh
sh /tmp/s.sh arg
echo 'exit 13' | sh; echo "sh reading stdin: $?"
