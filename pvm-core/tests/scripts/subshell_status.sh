# Subshells: isolation of variables and cwd, exit statuses, ! && || and sh -c.
x=outer
(x=inner; cd /data; echo "in subshell: $x $(pwd)")
echo "after subshell: $x $(pwd)"
(exit 3); echo "(exit 3): $?"
( (exit 4) ); echo "nested: $?"
! true; echo "! true: $?"
! false; echo "! false: $?"
false || echo "|| ran"
true && echo "&& ran"
false && echo "not printed"; echo "after failed &&: $?"
sh -c 'exit 42'; echo "sh -c exit 42: $?"
sh -c 'sh -c "exit 9"; exit $(( $? + 1 ))'; echo "nested sh: $?"
{ echo grouped; false; }; echo "group: $?"
if (exit 0); then echo "if subshell"; fi
f() { return 5; }; f; echo "function: $?"
/bin/no-such-command 2>/dev/null; echo "not found: $?"
/data/words.txt 2>/dev/null; echo "not executable: $?"
