# oauth2-admin --etcd restore and this machine's mirror (issue 13;
# docs/security.md R78): as for every other write with --etcd, restore
# answers once the mirror --store names has applied what it put in the
# cluster (read your writes), so that the next command run here sees the
# restored records and not those of before; and a mirror whose sync
# daemon is stopped is said on stderr (the records are in the cluster all
# the same), not passed over in silence.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build('admin');
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
$t->run_sync($t->run_etcd);
my $dir = $t->dir;

# two backups of local stores, of $N users each: a1..aN and b1..bN
my $N = 300;
for my $set ('a', 'b') {
    my @users = map { { model => 'auth.user', pk => $_, fields => {
        username => "$set$_", email => "$set$_\@example.com",
        password => 'pbkdf2_sha256$1000$salt$' . ('A' x 43) } } } 1 .. $N;
    my $dump = OAuth2Test::write_file("$dir/$set.json",
        JSON::PP->new->encode(\@users));
    my ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-$set",
        'import-django', $dump);
    die "import-django $set: $err" if $code;
    ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-$set",
        'backup', "$dir/$set.backup");
    die "backup $set: $err" if $code;
    chmod 0644, "$dir/$set.backup";
}

# `--etcd user show <name>` reads this machine's mirror: 0 if it holds
# the user, 1 if not
sub shows {
    my ($name) = @_;
    my ($code) = $t->admin_etcd('user', 'show', $name);
    return $code;
}

# restored one after the other, each backup replaces the other's users;
# the command right after each restore reads the backup just restored,
# never the one before
my ($stale, $failed, $slow) = (0, 0, 0);
for my $i (1 .. 6) {
    my ($now, $was) = $i % 2 ? ('a', 'b') : ('b', 'a');
    my ($code, $out, $err) = $t->admin_etcd('restore', "$dir/$now.backup",
        '--force');
    if ($code) { $failed++; diag "restore $now: $code $err"; next }
    $slow++ if $err =~ /has not applied/;
    # the last user of the restore's last Txn, and the first of the
    # backup it replaced (deleted by the restore's first Txn)
    $stale++ if shows("$now$N") != 0 || shows("${was}1") != 1;
}
is($failed, 0, 'restore --etcd --force of one backup after the other: '
    . 'every one exits 0');
is($slow, 0, 'with the sync daemon running, none says the mirror lags');
is($stale, 0, 'the command run right after each restore reads the '
    . 'restored users through this machine\'s mirror, and none of those it '
    . 'replaced');

# the race made certain: the sync daemon paused (SIGSTOP) for 1.5 s while
# restore runs, the mirror cannot apply it meanwhile; whenever restore
# answers, the command run right after it reads here the users restored
# (a's), never those of before (b's, the last restored above): restore
# waits for the mirror rather than answering while it is behind
{
    my $res_file = "$dir/paused.res";
    kill 'STOP', $t->sync_pid;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my ($code, $out, $err) = $t->admin_etcd('restore', "$dir/a.backup",
            '--force');
        OAuth2Test::write_file($res_file, "$code\n$err");
        POSIX::_exit(0);
    }
    my $resume = time + 1.5;
    my $paused = 1;
    until (waitpid($pid, WNOHANG) == $pid) {
        if ($paused && time >= $resume) {
            kill 'CONT', $t->sync_pid;
            $paused = 0;
        }
        sleep 0.01;
    }
    # right after restore answered
    my @read = (shows("a$N"), shows('b1'));
    kill 'CONT', $t->sync_pid if $paused;
    my ($code, $err) = split /\n/, OAuth2Test::_slurp($res_file), 2;
    is($code, 0, 'restore --etcd --force with the mirror\'s sync paused '
        . 'for 1.5 s: exit 0') or diag $err;
    ok(!$paused, '... answering only after the sync resumed');
    is("@read", '0 1', '... and the command run right after it reads the '
        . 'users restored, and none of those replaced (read your writes)');
    unlike($err // '', qr/has not applied/, '... without a word of the '
        . 'mirror lagging');
}

# the sync daemon stopped: the mirror cannot apply the restore; restore
# still puts it in the cluster, and says on stderr that the mirror here
# has not applied it
is($t->stop_sync, 0, 'the mirror\'s sync daemon stops');
my $w0 = time;
my ($code, $out, $err) = $t->admin_etcd('restore', "$dir/b.backup",
    '--force');
my $took = time - $w0;
is($code, 0, 'restore --etcd --force with the sync stopped: exit 0')
    or diag $err;
my $store = $t->store;
my $lag = 'has not applied the restore \(revision \d+\) within 5000 ms: '
    . 'is oauth2-admin sync running\?';
like($err, qr/the mirror '\Q$store\E' $lag/,
    '... and says the mirror here has not applied it');
cmp_ok($took, '>=', 4.5, sprintf('... after waiting for it (%.1f s)', $took));
my $res = eval { JSON::PP->new->decode($out) } // {};
is($res->{records}{users}, $N, '... the backup\'s users are in the cluster');
# restarted, the sync daemon catches up from the mirror's own revision
$t->run_sync($t->etcd_url);
my $caught_up = 0;
for (1 .. 100) {
    last if $caught_up = !shows("b$N");
    sleep 0.1;
}
ok($caught_up, 'the sync restarted, the mirror comes to hold them');

# the cluster's backup is a copy of an edge's mirror; restored into a
# local store it is a local store, not a mirror no process writes (every
# write refused, and another restore with it)
my ($bc, $bo, $be) = $t->admin_raw('--store', $t->store, 'backup', "$dir/edge.backup");
is($bc, 0, 'a backup of the edge\'s mirror: exit 0') or diag $be;
my $local = "$dir/from-edge";
($bc, $bo, $be) = $t->admin_raw('--store', $local, 'restore', "$dir/edge.backup");
is($bc, 0, 'restored into a local store: exit 0') or diag $be;
($bc, $bo, $be) = $t->admin_raw('--store', $local, 'user', 'show', "b$N");
is($bc, 0, '... which holds the mirror\'s users');
($bc, $bo, $be) = $t->admin_raw('--store', $local, 'app', 'add', '--name', 'after',
    '--grant', 'client_credentials');
is($bc, 0, '... and takes writes: it is no mirror') or diag $be;
unlike($be, qr/mirror/, '... nothing says mirror');
($bc, $bo, $be) = $t->admin_raw('--store', $local, 'restore', "$dir/a.backup", '--force');
is($bc, 0, '... and another restore --force replaces it') or diag $be;
($bc, $bo, $be) = $t->admin_raw('--store', $t->store, 'app', 'add', '--name', 'x',
    '--grant', 'client_credentials');
isnt($bc, 0, 'the edge\'s own mirror still refuses a local write');
like($be, qr/--etcd/, '... naming --etcd');

# a restore never hands out again a user id (an OpenID Connect sub) given
# after the backup: each realm's sequence stays where the cluster had it,
# if the backup's is lower
{
    my $add = sub {
        my ($name) = @_;
        return $t->admin_etcd_json('user', 'add', '--username', $name,
            '--email', "$name\@example.com", '--password', 'Seq-pass-word-77',
            '--pbkdf2-iterations', 1000)->{id};
    };
    my $alice = $add->('alice');
    my ($code, $out, $err) = $t->admin_etcd('restore', "$dir/a.backup",
        '--force');
    is($code, 0, 'a backup restored over a cluster with a user added since')
        or diag $err;
    isnt(shows('alice'), 0, '... which is gone');
    my $mallory = $add->('mallory');
    cmp_ok($mallory, '>', $alice, "a user added after the restore gets id "
        . "$mallory, not $alice (alice's)");
}

# a restore watched mid-way (R70; no user id handed out twice, an OpenID
# Connect sub): the restore reaches etcd through a relay made here, which
# writes down each Txn it passes and holds the first one after the
# delete until told to go on.  Meanwhile a user is added in the cluster:
# it must get an id above every id of the backup (each realm's sequence
# is raised before the delete, which leaves it alone), never one the
# restore then writes the backup's user over (the newcomer's name would
# lead to that user).  And the applications go in last: nothing is
# issued against a half-filled cluster.
{
    my @users = map { { model => 'auth.user', pk => $_, fields => {
        username => "c$_", email => "c$_\@example.com",
        password => 'pbkdf2_sha256$1000$salt$' . ('A' x 43) } } }
        1 .. 150, 5000;
    my $dump = OAuth2Test::write_file("$dir/c.json",
        JSON::PP->new->encode(\@users));
    my ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-c",
        'import-django', $dump);
    die "import-django c: $err" if $code;
    ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-c",
        OAuth2Test::app_add_args(name => 'c-app'));
    die "app add c: $err" if $code;
    ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-c",
        'backup', "$dir/c.backup");
    die "backup c: $err" if $code;

    my ($etcd_port) = $t->etcd_url =~ /:(\d+)$/;
    my ($log, $held, $go) = map { "$dir/relay-$_" } qw(txns held go);
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Listen => 16, ReuseAddr => 1) or die "relay: $!";
    my $relay_url = 'http://127.0.0.1:' . $srv->sockport;
    my $relay = fork // die "fork: $!";
    if (!$relay) {
        $SIG{CHLD} = 'IGNORE';
        my $js = JSON::PP->new->canonical;
        while (1) {
            my $c = $srv->accept or next;
            my $pid = fork;
            if (!defined $pid || $pid) { close $c; next; }
            close $srv;
            my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $etcd_port) or POSIX::_exit(0);
            my $sel = IO::Select->new($c, $u);
            my $in = '';
            while (1) {
                for my $fh ($sel->can_read) {
                    my $n = sysread($fh, my $buf, 65536);
                    POSIX::_exit(0) unless $n;
                    if ($fh == $u) {
                        syswrite($c, $buf) // POSIX::_exit(0);
                        next;
                    }
                    $in .= $buf;
                    # whole requests only (curl sends one at a time)
                    while ($in =~ /\A(.*?\r\n\r\n)/s) {
                        my $head = $1;
                        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
                        $len //= 0;
                        last if length($in) < length($head) + $len;
                        my $req = substr($in, 0, length($head) + $len, '');
                        if ($head =~ m{^POST /v3/kv/txn }) {
                            my $body = $js->decode(substr($req, length $head));
                            my @before = split /\n/, OAuth2Test::_slurp($log);
                            if (@before && !-e $held
                                && $before[-1] =~ /request_delete_range/) {
                                OAuth2Test::write_file($held, '');
                                sleep 0.05 until -e $go;
                            }
                            open my $fh2, '>>', $log or POSIX::_exit(0);
                            print $fh2 $js->encode($body), "\n";
                            close $fh2;
                        }
                        syswrite($u, $req) // POSIX::_exit(0);
                    }
                }
            }
        }
    }
    close $srv;

    my $res_file = "$dir/watched.res";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my ($rc, $o, $e) = $t->admin_raw('--etcd', $relay_url,
            '--store', $t->store,
            'restore', "$dir/c.backup", '--force');
        OAuth2Test::write_file($res_file, "$rc\n$e");
        POSIX::_exit(0);
    }
    my $until = time + 60;
    sleep 0.05 until -e $held || time > $until
        || waitpid($pid, WNOHANG) == $pid;
    ok(-e $held, 'the restore is held at its first Txn after the delete');
    my $newcomer = eval { $t->admin_etcd_json('user', 'add', '--username',
        'newcomer', '--email', 'newcomer@example.com', '--password',
        'Seq-pass-word-77', '--pbkdf2-iterations', 1000)->{id} } // 0;
    diag $@ if $@;
    OAuth2Test::write_file($go, '');
    waitpid($pid, 0);
    kill 'KILL', $relay;
    waitpid($relay, 0);
    my ($rc, $e) = split /\n/, OAuth2Test::_slurp($res_file), 2;
    is($rc, 0, '... and, let go, exits 0') or diag $e;
    cmp_ok($newcomer, '>', 5000, "the user added meanwhile got id $newcomer, "
        . 'above every id of the backup (1..150, 5000)');
    my $show = sub {
        my ($name) = @_;
        my ($c, $o) = $t->admin_etcd('user', 'show', $name);
        my $u = $c ? {} : eval { JSON::PP->new->decode($o) } // {};
        return join ' ', $u->{id} // '-', $u->{username} // '-';
    };
    is($show->('newcomer'), "$newcomer newcomer",
        '... and is, after the restore, the user its name leads to');
    is(join(',', map { $show->($_) } qw(c1 c150 c5000)),
        '1 c1,150 c150,5000 c5000', 'the backup\'s users are intact');

    # the order of what went in: applications last
    my (@puts, $deleted);
    for my $line (split /\n/, OAuth2Test::_slurp($log)) {
        my $txn = JSON::PP->new->decode($line);
        for my $op (@{$txn->{success} // []}) {
            $deleted = 1 if $op->{request_delete_range};
            next unless $deleted && $op->{request_put};
            push @puts, decode_base64($op->{request_put}{key});
        }
    }
    my $first_app = (grep { $puts[$_] =~ m{^/oauth2/clients/} } 0 .. $#puts)[0];
    ok(defined $first_app, 'the restore put the backup\'s application');
    is(scalar(grep { !m{^/oauth2/clients/} } @puts[($first_app // 0) .. $#puts]),
        0, '... after every other record of the backup (' . scalar(@puts)
        . ' puts)');
}

# a backup holding the handshake key of a release before 0.9 (meta
# handshake_hs256_key, in clear): restored into the cluster without it,
# so neither etcd nor any mirror holds it (R86, R43); stderr says so
{
    my $LEGACY = 'L' x 8 . join('', map { chr(97 + $_ % 26) } 1 .. 32);
    my ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-k",
        OAuth2Test::app_add_args(name => 'k-app'));
    die "app add k: $err" if $code;
    OAuth2Test::write_file("$dir/k-meta.txt", "VERSION=3\nformat=print\n"
        . "type=btree\nHEADER=END\n handshake_hs256_key\n $LEGACY\nDATA=END\n");
    ($code, $out, $err) = $t->_run_cmd('mdb_load', '-s', 'meta', '-f',
        "$dir/k-meta.txt", "$dir/local-k");
    die "mdb_load: $err" if $code;
    ($code, $out, $err) = $t->admin_raw('--store', "$dir/local-k",
        'backup', "$dir/k.backup");
    die "backup k: $err" if $code;
    ($code, $out, $err) = $t->admin_etcd('restore', "$dir/k.backup", '--force');
    is($code, 0, 'a backup holding the old handshake key, restored into the '
        . 'cluster: exit 0') or diag $err;
    like($err, qr/handshake_hs256_key.*left out.*oauth2_handshake_key.*handshake-key extract/,
        '... saying on stderr that the key was left out, and what to use');
    my ($st, $body) = $t->etcd_post('/v3/kv/range', JSON::PP->new->encode({
        key => encode_base64('/oauth2/meta/handshake_hs256_key', '') }));
    my $kvs = (eval { JSON::PP->new->decode($body) } // {})->{kvs} // [];
    is($st . ' ' . scalar(@$kvs), '200 0', '... etcd does not hold it');
    unlike(OAuth2Test::dump_store($t->store), qr/handshake_hs256_key|\Q$LEGACY\E/,
        '... nor the mirror');
    ($code, $out) = $t->admin_etcd('app', 'list');
    like($out, qr/"k-app"/, '... which holds the backup\'s application');
}

$t->sync_log_ok;
$t->done_testing;
