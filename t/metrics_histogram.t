# oauth2_metrics' two histograms (oauth2_store_commit_seconds and
# oauth2_store_commit_batch_size) in scrapes taken while the store
# commits: in every scrape, each histogram's _count equals its
# le="+Inf" bucket, and its buckets never decrease.  The committer adds
# to several counters one after the other while a scrape reads them one
# after the other; _count was a counter of its own, read after the
# buckets, so a commit landing between the two reads showed one batch
# in _count that no bucket had (Prometheus' histogram_quantile and any
# rate of _count over the buckets then disagree).  _count is now the
# +Inf bucket's own sum.  A race: the test scrapes as often as it can
# while clients issue tokens on both workers, and reports how many
# scrapes and commits it saw.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $SECONDS = $ENV{HISTOGRAM_SECONDS} // 10;
my $CLIENTS = 3;

# the store in memory (tmpfs, where a sync costs nothing): many more
# commits a second than a disk's syncs allow, and so more of them land
# while a scrape reads
my $t = do {
    local $ENV{TMPDIR} = -d '/dev/shm' && -w _ ? '/dev/shm' : $ENV{TMPDIR};
    OAuth2Test->new(workers => 2);
};
my $app = $t->new_app(name => 'hist');
$t->write_config($t->default_http(
    extra_http => "oauth2_client_auth_limit off;\n",
    extra_server => "    location = /metrics { oauth2_metrics; }\n"))->run;
my $base = 'http://127.0.0.1:' . $t->port;

# the histogram $h of a scrape's body: (count, +Inf bucket, cumulative)
sub histogram {
    my ($body, $h) = @_;
    my ($count) = $body =~ /^\Q$h\E_count (\d+)$/m;
    my @b = $body =~ /^\Q$h\E_bucket\{le="[^"]+"\} (\d+)$/mg;
    my $cum = 1;
    for my $i (1 .. $#b) { $cum = 0 if $b[$i] < $b[$i - 1] }
    return ($count, $b[-1], $cum && @b > 1);
}

# clients issuing tokens until the deadline (a connection a request: the
# request in one write, no Nagle's wait behind a keep-alive's body)
my $until = time + $SECONDS;
my @kids;
for my $c (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $t->token($app->{client_id}, $app->{client_secret})
            while time < $until;
        POSIX::_exit(0);    # no END blocks: they would stop nginx
    }
    push @kids, $pid;
}

my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
my ($scrapes, $first, $last) = (0, undef, undef);
my %bad = map { ($_ => 0) } qw(seconds batch);
my %cum = map { ($_ => 0) } qw(seconds batch);
my %seen;
while (time < $until) {
    my $r = $http->get("$base/metrics");
    next unless $r->{success};
    $scrapes++;
    for my $k (qw(seconds batch)) {
        my $h = $k eq 'seconds' ? 'oauth2_store_commit_seconds'
            : 'oauth2_store_commit_batch_size';
        my ($count, $inf, $ok) = histogram($r->{content}, $h);
        $bad{$k}++ if !defined $count || !defined $inf || $count != $inf;
        $cum{$k}++ unless $ok;
        $seen{$k} = "$count vs $inf" if defined $count && defined $inf
            && $count != $inf;
        if ($k eq 'seconds' && defined $count) {
            $first //= $count;
            $last = $count;
        }
    }
}
waitpid $_, 0 for @kids;

my $commits = ($last // 0) - ($first // 0);
diag("$scrapes scrapes over $commits commits in $SECONDS s; mismatches: "
    . "$bad{seconds} and $bad{batch}");
cmp_ok($scrapes, '>=', 200, "$scrapes scrapes while the store committed");
cmp_ok($commits, '>=', 200, "$commits commits while it was scraped");
is($bad{seconds}, 0, 'every scrape: oauth2_store_commit_seconds_count = '
    . 'its le="+Inf" bucket') or diag("e.g. $seen{seconds}");
is($bad{batch}, 0, 'every scrape: oauth2_store_commit_batch_size_count = '
    . 'its le="+Inf" bucket') or diag("e.g. $seen{batch}");
is($cum{seconds} + $cum{batch}, 0,
    'every scrape: both histograms\' buckets are cumulative');

$t->done_testing;
