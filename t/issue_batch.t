# client_credentials decided on the event loop, committed in batches
# (issue 11: one thread wake-up and one sync per batch, at most 256
# changes, the rest alone through the thread pool): a flood of concurrent
# token requests, and an application deleted while its requests wait in a
# batch (docs/security.md R42, R53, R70).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use POSIX ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'flood');
my $doomed = $t->new_app(name => 'doomed');

$t->write_config($t->default_http(extra_server => <<'EOF'))->run;
    location = /metrics { oauth2_metrics; allow 127.0.0.1; deny all; }
EOF

my $port = $t->port;

# $n connections opened at once, each sending one token request of $who
# before any is read: the requests reach the workers together, so that
# the batch fills while the one before it commits.  "status token" lines.
sub burst {
    my ($who, $n) = @_;
    my $body = 'grant_type=client_credentials';
    my $req = "POST /o/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        . 'Authorization: ' . $t->basic($who->{client_id}, $who->{client_secret})
        . "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body";
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
            Proto => 'tcp') or return ("connect: $!");
        push @socks, $s;
    }
    print {$_} $req for @socks;
    my @out;
    for my $s (@socks) {
        local $/;
        my $resp = <$s> // '';
        my ($status) = $resp =~ m{^HTTP/1\.1 (\d{3})};
        my ($tok) = $resp =~ /"access_token": ?"([^"]+)"/;
        push @out, ($status // 'none') . ' ' . ($tok // '-');
    }
    return @out;
}

# $kids processes each bursting $n, once; or, with $also, again and
# again until $also has run, then once more.  Every line of theirs.
sub flood {
    my ($who, $kids, $n, $also) = @_;
    my $dir = $t->dir;
    unlink "$dir/done";
    my @pids;
    for my $k (1 .. $kids) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $fh, '>', "$dir/burst$k.out" or POSIX::_exit(1);
            my $last = !$also;
            my $deadline = time + 20;
            while (1) {
                print $fh "$_\n" for burst($who, $n);
                last if $last || time > $deadline;
                $last = -e "$dir/done";
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    if ($also) {
        select(undef, undef, undef, 0.3);
        $also->();
        open my $fh, '>', "$dir/done" or die "$dir/done: $!";
        close $fh;
    }
    waitpid $_, 0 for @pids;
    return map { split /\n/, OAuth2Test::_slurp("$dir/burst$_.out") } 1 .. $kids;
}

sub metrics {
    my $r = $t->get('/metrics');
    my %v;
    for (split /\n/, $r->{body} // '') {
        $v{$1} = $2 if /^(oauth2_store_commit_batch_size\S*) (\S+)$/;
    }
    return \%v;
}

# ---- a flood: 4 x 150 requests at once, every one answered and stored

my $before = metrics();
my @lines = flood($app, 4, 150);
my (%codes, %toks);
for (@lines) {
    my ($c, $tok) = split / /;
    $codes{$c}++;
    $toks{$tok}++ if $c eq '200';
}
is($codes{200} // 0, 600, '600 concurrent token requests: 600 x 200')
    or diag(explain \%codes);
is(scalar keys %toks, 600, '600 distinct tokens (R42)');
my $bad = 0;
for my $tok (keys %toks) {
    $bad++ unless $t->bearer_get('/protected/', $tok)->{status} == 200;
}
is($bad, 0, 'every token of the flood validates: each was stored before '
    . 'it was answered');

my $after = metrics();
my $h = 'oauth2_store_commit_batch_size';
my $changes = $after->{"${h}_sum"} - ($before->{"${h}_sum"} // 0);
my $commits = $after->{"${h}_count"} - ($before->{"${h}_count"} // 0);
cmp_ok($changes, '>=', 600, "the commits carried the 600 tokens ($changes changes)");
cmp_ok($commits, '<', $changes,
    "fewer commits than changes: they were batched ($commits commits)");
is($after->{"${h}_bucket{le=\"+Inf\"}"}, $after->{"${h}_bucket{le=\"256\"}"},
    'no commit carried more than 256 changes (a full batch sends the '
    . 'next request alone)');

# ---- R70: an application deleted while its requests wait in a batch.
# Each answer is a token (committed before the deletion, then deleted
# with the application) or invalid_client (decided again after it); none
# is a 5xx, and no token of it survives.

my $deleted;
@lines = flood($doomed, 4, 50, sub {
    ($deleted) = $t->admin('app', 'delete', $doomed->{client_id});
});
%codes = ();
my @issued;
for (@lines) {
    my ($c, $tok) = split / /;
    $codes{$c}++;
    push @issued, $tok if $c eq '200';
}
is($deleted, 0, 'the application was deleted during the flood (exit 0)');
# after a few 401s the failed-authentication throttle answers 429 (R17)
is(($codes{200} // 0) + ($codes{401} // 0) + ($codes{429} // 0), scalar @lines,
    scalar(@lines) . ' requests racing the deletion: each a 200, a 401 or '
    . 'the throttle\'s 429, never a 5xx')
    or diag(explain \%codes);
ok($codes{200} && $codes{401}, 'the flood ran across the deletion ('
    . ($codes{200} // 0) . ' x 200, ' . ($codes{401} // 0) . ' x 401)');
my $alive = grep { $t->bearer_get('/protected/', $_)->{status} == 200 } @issued;
is($alive, 0, scalar(@issued) . ' tokens issued before the deletion: none '
    . 'validates after it');
unlike(OAuth2Test::dump_store($t->store), qr/\Q$doomed->{client_id}\E/,
    'no record of the deleted application is left in the store');
like($t->token($doomed->{client_id}, $doomed->{client_secret})->{status},
    qr/^(?:401|429)$/, 'after the deletion its credentials are refused');

$t->done_testing;
