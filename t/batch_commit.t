# Token requests decided on the event loop are committed in batches
# (issue 11, docs/security.md R88): a flood of client_credentials
# requests costs a few commits, each one sync, not one commit and one
# sync a token.  With a thread pool of one thread, the store's own group
# commit (of the changes its threads submit together) can carry one
# change a commit at most: every commit of more than one change here is
# a batch the event loop filled while the one before it committed.  What
# an operator relies on: issuance scales past the disk's syncs a second,
# and a flood of token requests does not queue one thread task a token
# behind the store writes of everything else.
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
my $app = $t->new_app(name => 'batched');
$t->write_config($t->default_http(
    extra_http => "oauth2_thread_pool one;\n"
        # no background writes: every commit is one of the flood's
        . "oauth2_expiry_cleanup off;\n",
    extra_server => <<'EOF'), main => 'thread_pool one threads=1;')->run;
    location = /metrics { oauth2_metrics; allow 127.0.0.1; deny all; }
EOF

my $port = $t->port;

# $n connections opened at once, each sending one token request before
# any is read, so that they reach the workers together: their statuses
sub burst {
    my ($n) = @_;
    my $body = 'grant_type=client_credentials';
    my $auth = $t->basic($app->{client_id}, $app->{client_secret});
    my $req = "POST /o/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        . "Authorization: $auth\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\n"
        . "Connection: close\r\n\r\n$body";
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $port, Proto => 'tcp') or return ("connect: $!");
        push @socks, $s;
    }
    print {$_} $req for @socks;
    my @out;
    for my $s (@socks) {
        local $/;
        my $resp = <$s> // '';
        push @out, $resp =~ m{^HTTP/1\.1 (\d{3})} ? $1 : 'none';
    }
    return @out;
}

sub metrics {
    my $r = $t->get('/metrics');
    my %v;
    for (split /\n/, $r->{body} // '') {
        $v{$1} = $2 if /^(oauth2_store_commit_batch_size\S*) (\S+)$/;
    }
    return \%v;
}

my $h = 'oauth2_store_commit_batch_size';
my $before = metrics();

# 3 processes x 100 requests at once
my $dir = $t->dir;
my @pids;
for my $k (1 .. 3) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open my $fh, '>', "$dir/burst$k.out" or POSIX::_exit(1);
        print $fh "$_\n" for burst(100);
        close $fh;
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
waitpid $_, 0 for @pids;
my %codes;
$codes{$_}++
    for map { split /\n/, OAuth2Test::_slurp("$dir/burst$_.out") } 1 .. 3;
is($codes{200} // 0, 300, '300 concurrent token requests: 300 x 200')
    or diag(explain \%codes);

my $after = metrics();
my $changes = $after->{"${h}_sum"} - ($before->{"${h}_sum"} // 0);
my $commits = $after->{"${h}_count"} - ($before->{"${h}_count"} // 0);
my $alone = $after->{"${h}_bucket{le=\"1\"}"}
    - ($before->{"${h}_bucket{le=\"1\"}"} // 0);
cmp_ok($changes, '>=', 300, "the commits carried the 300 tokens ($changes "
    . 'changes)');
cmp_ok($commits, '<', $changes / 2,
    "the 300 tokens took fewer than half as many commits ($commits): "
    . 'batched on the event loop, not one commit a token (issue 11)');
cmp_ok($commits - $alone, '>', 0,
    'with one thread a worker, some commits carried several tokens ('
    . ($commits - $alone) . " of $commits)");

$t->done_testing;
