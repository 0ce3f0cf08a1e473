# awk: fields, arithmetic, associative arrays, printf, BEGIN/END, -F and -v.
awk -F, 'NR > 1 { sum[$3] += $2; n[$3]++ } END { for (c in sum) printf "%s %d %.2f\n", c, n[c], sum[c] / n[c] }' /data/people.csv | sort
awk '{ t += $1 } END { print "total", t, "lines", NR }' /data/numbers.txt
awk -v lim=5 '$2 < lim { print $1 }' /data/words.txt | head -10
awk 'length($0) > 40 { print NR": "toupper($0) }' /data/text.txt
awk 'BEGIN { x = 1099511627776 * 3; printf "%.0f %d %x %o %e\n", x, 2147483647, 255, 8, 12345.678 }'
echo "a:b:c" | awk -F: '{ $2 = "B"; print; print NF }' OFS=-
awk 'BEGIN { s = "hello world"; n = split(s, p, " "); print n, p[2], substr(s, 3, 4), index(s, "wor") }'
