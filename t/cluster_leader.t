# etcd without a leader (issue 13, "Faults"; SECURITY.md R78 for the
# loud, clear failure): three etcd members on loopback, a mirror's sync
# daemon and the CLI talking to member 3 alone.  With members 1 and 2
# killed, member 3 has no leader: every call to it refuses at once with
# etcd's "no leader" (the client asks for a leader, gRPC metadata
# hasleader through the gateway) instead of holding the request until a
# timeout, so a write fails in its deadline saying why and writes
# nothing, the sync daemon's watch is ended by etcd and the daemon says
# so, and a sync daemon starting then refuses to start naming it.  With
# the two members back, the same daemon resumes without a new snapshot
# and writes go through.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
my $dir = $t->dir;
my @client = map { OAuth2Test::_free_port() } 1 .. 3;
my @peer = map { OAuth2Test::_free_port() } 1 .. 3;
my $cluster = join ',', map { "m$_=http://127.0.0.1:$peer[$_ - 1]" } 1 .. 3;
my @pid;

sub url { "http://127.0.0.1:$client[$_[0] - 1]" }

# member $i on its data dir (a restart keeps it); a short election
# timeout keeps the test short
sub start_member {
    my ($i, $state) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/etcd$i.log" or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        my $p = "http://127.0.0.1:$peer[$i - 1]";
        { exec $OAuth2Test::ETCD, '--name', "m$i", '--data-dir', "$dir/etcd$i",
            '--listen-client-urls', url($i), '--advertise-client-urls', url($i),
            '--listen-peer-urls', $p, '--initial-advertise-peer-urls', $p,
            '--initial-cluster', $cluster, '--initial-cluster-state', $state,
            '--heartbeat-interval', 50, '--election-timeout', 400 };
        POSIX::_exit(127);    # exec failed
    }
    $pid[$i] = $pid;
}

sub kill_member {
    my ($i) = @_;
    kill 'KILL', $pid[$i];
    waitpid $pid[$i], 0;
    $pid[$i] = undef;
}

END { kill 'KILL', grep { defined } @pid[1 .. 3] if @pid }

# member $i's leader as its status says (0: none), undef if it does not answer
sub leader_of {
    my ($i) = @_;
    my $out = `curl -s -m 1 -X POST -d '{}' @{[url($i)]}/v3/maintenance/status`;
    my $st = eval { JSON::PP::decode_json($out) } or return undef;
    return $st->{leader} // 0;
}

sub wait_until {
    my ($secs, $code) = @_;
    my $end = time + $secs;
    while (time < $end) {
        my $v = $code->();
        return $v if $v;
        sleep 0.05;
    }
    return 0;
}

start_member($_, 'new') for 1 .. 3;
ok(wait_until(20, sub { leader_of(3) }), 'three members elect a leader');

my $m3 = url(3);
$t->run_sync($m3);
my $before = $t->admin_etcd_json('app', 'add', '--name', 'before',
    '--grant', 'client_credentials');
ok($before->{client_id}, 'with quorum, the CLI writes through member 3');

# members 1 and 2 gone: member 3 loses its leader after its election
# timeout and campaigns alone
kill_member($_) for 1, 2;
my $mark = -s $t->sync_log;
ok(wait_until(10, sub { my $l = leader_of(3); defined $l && !$l }),
    'member 3 alone has no leader');

my ($code, $out, $err, $took) = $t->run_cmd_timeout(20, $OAuth2Test::ADMIN,
    '--etcd', $m3, '--store', $t->store, 'app', 'add', '--name', 'during',
    '--grant', 'client_credentials');
isnt($code, 0, 'a write without a leader fails');
like($err, qr/no leader/,
    'its message names the cause: etcd refused at once, "no leader"');
unlike($err, qr/timed out|Timeout was reached/,
    'no try was held until it timed out');
cmp_ok($took, '<', 8, sprintf('it fails within its deadline (%.1f s)', $took));

ok(wait_until(10, sub {
        substr(OAuth2Test::_slurp($t->sync_log), $mark) =~ /no leader/ }),
    'etcd ends the sync daemon\'s watch on a member without a leader, and '
    . 'the daemon says so');

my ($scode, $sout, $serr) = $t->run_cmd_timeout(20, $OAuth2Test::ADMIN,
    'sync', '--store', "$dir/other-mirror", '--etcd', $m3);
isnt($scode, 0, 'a sync daemon starting against it exits non-zero');
like($sout . $serr, qr/cannot start: .*no leader/s,
    'and says it cannot start, naming "no leader"') or diag($sout . $serr);

# quorum back: the running daemon resumes from its revision
start_member($_, 'existing') for 1, 2;
ok(wait_until(20, sub { leader_of(3) }), 'members 1 and 2 back: a leader');
$mark = -s $t->sync_log;
my $after = eval { $t->admin_etcd_json('app', 'add', '--name', 'after',
    '--grant', 'client_credentials') };
ok($after && $after->{client_id}, 'writes go through again')
    or diag($@);
my $log = substr(OAuth2Test::_slurp($t->sync_log), $mark);
unlike($log, qr/snapshot/i, 'the sync daemon resumed without a new snapshot');
my $apps = $t->admin_json('app', 'list');
is_deeply([sort map { $_->{name} } @$apps], ['after', 'before'],
    'the mirror holds the applications written with quorum, and nothing of '
    . 'the refused write');
ok(kill(0, $t->sync_pid), 'the sync daemon ran throughout');
$t->sync_log_ok;

done_testing();
