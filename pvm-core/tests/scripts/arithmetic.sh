# Shell arithmetic: operators, precedence, 64-bit, negatives, bases, assignment operators.
echo $((1 + 2 * 3)) $(((1 + 2) * 3)) $((7 / 2)) $((7 % 3)) $((-7 / 2)) $((-7 % 3))
echo $((2 ** 10)) $((1 << 40)) $((0xff)) $((010)) $((0x7fffffffffffffff))
echo $((9223372036854775807 + 1))
echo $((5 > 3)) $((5 < 3)) $((3 == 3)) $((3 != 3)) $((!0)) $((~5))
echo $((6 & 3)) $((6 | 3)) $((6 ^ 3)) $((1 ? 10 : 20)) $((0 && 1)) $((0 || 2))
a=5; a=$((a + 1)); : $((a *= 3)); : $((a -= 2)); echo "a=$a"
i=0; : $((i++)); : $((++i)); echo "i=$i"
x=3 y=4; echo "hyp2=$((x * x + y * y))"
n=0; for k in $(seq 1 100); do n=$((n + k * k)); done; echo "sum of squares: $n"
fact() { if [ "$1" -le 1 ]; then echo 1; else echo $(($1 * $(fact $(($1 - 1))))); fi; }
echo "20! = $(fact 20)"
echo "$(expr 17 \* 3) $(expr 100 / 7)"
