#!/usr/bin/perl
# workload.pl -- an allocation-heavy, deterministic Perl workload for the preload tests.
# Prints lines and a digest that must be the same under glibc's malloc and under amalloc.
# With AM_EXPECT_PRELOAD=NAME in the environment it also checks that a library whose path
# contains NAME is mapped in this process (/proc/self/maps) and exits 3 if not.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);

if (my $want = $ENV{AM_EXPECT_PRELOAD}) {
    open(my $maps, '<', '/proc/self/maps') or die "workload.pl: /proc/self/maps: $!\n";
    my $found = grep { index($_, $want) >= 0 } <$maps>;
    close $maps;
    if (!$found) {
        print STDERR "workload.pl: $want is not mapped: amalloc is not loaded\n";
        exit 3;
    }
}

# a small deterministic generator (perl's rand() is seeded per platform; use our own)
my $state = 42;
sub rnd { $state = ($state * 1103515245 + 12345) % 2147483648; return $state; }

my $sha = Digest::SHA->new(256);

# 1. generated text, regex substitutions, split/join
my @vocab = map { my $n = 2 + rnd() % 9; join('', map { chr(97 + rnd() % 26) } 1 .. $n) } 1 .. 5000;
my @lines;
for my $i (1 .. 40000) {
    my $n = 3 + rnd() % 12;
    push @lines, join(' ', map { $vocab[rnd() % @vocab] } 1 .. $n) . " #$i";
}
my $text = join("\n", @lines) . "\n";
(my $t2 = $text) =~ s/\b([aeiou])(\w*)/\U$1\E$2/g;
$t2 =~ s/(\d+)/sprintf("<%06d>", $1 * 7)/ge;
$t2 =~ s/\s+#/ ~/g;
my @matches = ($t2 =~ /\b(\w{7,})\b/g);
printf "text: chars=%d subst=%d long_words=%d\n", length($text), length($t2), scalar(@matches);
$sha->add($t2);

# 2. hashes: word counts, hash of arrays, hash of hashes, deletes
my %count;
$count{$_}++ for split /\s+/, $text;
my %by_len;
push @{ $by_len{length $_} }, $_ for keys %count;
my %hoh;
for my $w (keys %count) {
    $hoh{substr($w, 0, 1)}{$w} = $count{$w};
}
delete $count{$_} for grep { /^[a-f]/ } keys %count;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
printf "hash: distinct=%d top=%s\n", scalar(keys %count), join(',', map { "$_=$count{$_}" } @top);
printf "by_len: %s\n", join(' ', map { "$_:" . scalar(@{ $by_len{$_} }) } sort { $a <=> $b } keys %by_len);
for my $k (sort keys %hoh) {
    $sha->add($k, join(',', map { "$_=$hoh{$k}{$_}" } sort keys %{ $hoh{$k} }));
}

# 3. sorting: numbers, strings, Schwartzian transform
my @nums = map { rnd() % 1000000 } 1 .. 200000;
my @sorted = sort { $a <=> $b } @nums;
my @strs = sort map { sprintf("%x-%s", $_, $vocab[$_ % @vocab]) } @nums[0 .. 99999];
my @st = map { $_->[1] } sort { $a->[0] <=> $b->[0] || $a->[1] cmp $b->[1] }
         map { [length($_), $_] } @strs;
printf "sort: min=%d max=%d median=%d first=%s last=%s\n", $sorted[0], $sorted[-1],
    $sorted[@sorted / 2], $st[0], $st[-1];
$sha->add(join(',', @sorted[map { $_ * 101 } 0 .. 1900]));

# 4. sprintf and string growth
my $buf = '';
for my $i (1 .. 200000) {
    $buf .= sprintf("%08.3f|%-6s|%5x;", $i / 7, $vocab[$i % @vocab], $i);
    $buf = substr($buf, 1000) if length($buf) > 100000 && $i % 1000 == 0;
}
printf "sprintf: len=%d tail=%s\n", length($buf), substr($buf, -30);
$sha->add($buf);

# 5. many small structures that die young
my $sum = 0;
for my $i (1 .. 100000) {
    my %h = (a => [$i, $i + 1, { x => "v$i" }], b => "s" x ($i % 50));
    $sum += $h{a}[1] + length($h{b}) + length($h{a}[2]{x});
}
print "structs: sum=$sum\n";

print "digest ", $sha->hexdigest, "\n";
