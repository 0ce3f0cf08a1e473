# cut (fields, characters) and tr (ranges, delete, squeeze, complement).
cut -d, -f1,3 /data/people.csv | head -4
cut -c1-5 /data/text.txt
cut -d' ' -f2- /data/text.txt | head -2
tr 'a-z' 'A-Z' < /data/text.txt | head -2
tr -d 'aeiou' < /data/text.txt | head -2
echo "a    b     c" | tr -s ' '
echo "hello, world! 123" | tr -cd 'a-z\n'
printf 'one\ttwo\tthree\n' | tr '\t' ','
