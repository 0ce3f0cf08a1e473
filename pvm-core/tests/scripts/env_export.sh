# Environment: export to children, VAR=x cmd, env -i, unset, and what a child sees.
export A=exported
B=not-exported
sh -c 'echo "A=$A B=$B"'
B=given sh -c 'echo "B=$B"'
echo "B still: $B"
env -i X=1 Y=2 /bin/env | sort
env | grep -E '^(A|PATH|HOME)=' | sort
unset A; sh -c 'echo "A after unset: [$A]"'
export C=1; sh -c 'export D=2; sh -c "echo C=\$C D=\$D"'
env -u HOME sh -c 'echo "HOME unset: [${HOME-none}]"'
