# oauth2-admin --etcd and a mirror that lags (issue 13; docs/security.md
# R71, R86): a change etcd applied is done whether or not this machine's
# mirror shows it in time.  With the sync daemon held (SIGSTOP), `app add`
# and `apikey add` print their one-time secret and exit 0 with a warning
# naming the revision, and `handshake-key extract` leaves the key in its
# file (the only copy once etcd has removed it from the store), never
# removes the file.  And reads and backup never answer from a mirror
# behind etcd: they wait for it to catch up, or fail naming its age and
# sync.  OAUTH2_ADMIN_MIRROR_WAIT_MS shortens the CLI's wait for the
# mirror (5 s) to keep this file quick.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;

OAuth2Test::require_build('admin');
OAuth2Test::require_etcd();

$ENV{OAUTH2_ADMIN_MIRROR_WAIT_MS} = 300;

my $t = OAuth2Test->new;
my $dir = $t->dir;
$t->run_sync($t->run_etcd);

sub etcd_json {
    my ($path, $body) = @_;
    my ($code, $out) = $t->etcd_post($path, JSON::PP->new->encode($body));
    die "etcd $path: $code $out" unless $code == 200;
    return JSON::PP->new->decode($out);
}

sub etcd_revision {
    return etcd_json('/v3/kv/range', { key => 'AA==', count_only => JSON::PP::true })
        ->{header}{revision};
}

sub etcd_get {
    my ($key) = @_;
    my $kvs = etcd_json('/v3/kv/range', { key => encode_base64($key, '') })->{kvs};
    return $kvs ? MIME::Base64::decode_base64($kvs->[0]{value}) : undef;
}

sub mirror_revision {
    my $dump = OAuth2Test::dump_store($t->store);
    return $dump =~ /^ mirror_revision\n (\d+)$/m ? $1 : -1;
}

# holds the sync daemon once its mirror has applied all etcd holds (not
# between a heartbeat's put and its return through the watch)
sub hold_sync {
    for (1 .. 50) {
        kill 'STOP', $t->sync_pid;
        return if mirror_revision() == etcd_revision();
        kill 'CONT', $t->sync_pid;
        sleep 0.05;
    }
    die 'the mirror never caught up with etcd';
}

sub resume_sync { kill 'CONT', $t->sync_pid }

my $lagging = qr/warning: etcd applied the change at revision \d+.*oauth2-admin sync/s;

# app add: the secret is shown once, so it must be shown
{
    hold_sync();
    my ($code, $out, $err) = $t->admin_etcd(OAuth2Test::app_add_args(
        name => 'made-while-lagging'));
    resume_sync();
    is($code, 0, 'app add with the mirror\'s sync held: exit 0 (etcd applied '
        . 'it)') or diag($err);
    my $app = eval { JSON::PP->new->decode($out) } // {};
    like($app->{client_secret} // '', qr/^[A-Za-z0-9]{128}$/,
        '... and prints the client_secret, shown nowhere else (R71)');
    like($err, $lagging, '... warning that the mirror has not shown it, '
        . 'with etcd\'s revision and oauth2-admin sync');
    my ($scode, $sout) = $t->admin_etcd('app', 'show', $app->{client_id} // 'x');
    is($scode, 0, '... and the application is there once sync resumes');

    # apikey add: the key is shown once too
    hold_sync();
    ($code, $out, $err) = $t->admin_etcd('apikey', 'add',
        $app->{client_id} // 'x');
    resume_sync();
    is($code, 0, 'apikey add with the sync held: exit 0') or diag($err);
    like($out, qr/"api_key":\s*"[A-Za-z0-9_-]{43}"/, '... printing the key');
    like($err, $lagging, '... with the warning');
}

# handshake-key extract: an old release's key, put in etcd as its mirror
# would hold it; its removal applied by etcd while the mirror lags
{
    my $LEGACY = 'L' x 8 . join('', map { chr(97 + $_ % 26) } 1 .. 32);
    etcd_json('/v3/kv/put', { key => encode_base64('/oauth2/meta/handshake_hs256_key', ''),
        value => encode_base64($LEGACY, '') });
    sleep 0.1 until mirror_revision() == etcd_revision();
    hold_sync();
    my ($code, $out, $err) = $t->admin_etcd('handshake-key', 'extract',
        "$dir/hs.key");
    my $removed = !defined etcd_get('/oauth2/meta/handshake_hs256_key');
    resume_sync();
    ok($removed, 'handshake-key extract with the sync held: etcd removed the '
        . 'key from the store');
    ok(-f "$dir/hs.key", '... and the key file is there') or diag($err);
    is(-f "$dir/hs.key" ? OAuth2Test::_slurp("$dir/hs.key") : '',
        "$LEGACY\n", '... holding the key: it is not lost');
    is($code, 0, '... exit 0: the key moved') or diag($err);
    like($err, $lagging, '... with the warning');
    sleep 0.1 until mirror_revision() == etcd_revision();
    unlike(OAuth2Test::dump_store($t->store), qr/handshake_hs256_key/,
        '... and the mirror drops it once sync resumes');
}

# handshake-key extract whose child (the store's side) dies once etcd has
# removed the key, before it could say so (kill -9 while it waits for the
# held mirror): the file is the only copy, and stays
{
    my $LEGACY = 'K' x 8 . join('', map { chr(97 + $_ % 26) } 1 .. 32);
    etcd_json('/v3/kv/put', { key => encode_base64('/oauth2/meta/handshake_hs256_key', ''),
        value => encode_base64($LEGACY, '') });
    sleep 0.1 until mirror_revision() == etcd_revision();
    hold_sync();
    my $file = "$dir/unsure.key";
    my ($out, $err) = ("$dir/unsure.out", "$dir/unsure.err");
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $ENV{OAUTH2_ADMIN_MIRROR_WAIT_MS} = 30000;
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        exec { $OAuth2Test::ADMIN } $OAuth2Test::ADMIN, $t->etcd_args,
            '--store', $t->store, 'handshake-key', 'extract', $file
            or POSIX::_exit(127);
    }
    my $removed;
    for (1 .. 200) {
        last if $removed = !defined etcd_get('/oauth2/meta/handshake_hs256_key');
        sleep 0.05;
    }
    my ($child) = grep { /^\d+$/ } split /\s+/, `pgrep -P $pid`;
    kill 'KILL', $child if $child;
    waitpid $pid, 0;
    my $code = $? >> 8;
    resume_sync();
    ok($removed && $child, 'extract\'s store side killed once etcd removed '
        . 'the key');
    is($code, 1, '... exit 1: whether the key left the store is unknown');
    like(OAuth2Test::_slurp($err), qr/may have been applied.*\Q$file\E.*keeps the key/s,
        '... saying the file keeps the key');
    is(-f $file ? OAuth2Test::_slurp($file) : '', "$LEGACY\n",
        '... and the file holds it: the only copy is not removed');
    sleep 0.1 until mirror_revision() == etcd_revision();
}

# reads and backup on a mirror behind etcd: they catch up first, or fail
# (as nginx and the daemon fail closed past max_staleness), never answer
# from, or copy, a mirror that misses what the cluster deleted
{
    my $app = $t->new_app_etcd(name => 'deleted-elsewhere');
    my $id = $app->{client_id};
    hold_sync();
    etcd_json('/v3/kv/deleterange', { key => encode_base64('/oauth2/clients/', ''),
        range_end => encode_base64('/oauth2/clients0', '') });
    my ($code, $out, $err) = $t->admin_etcd('app', 'show', $id);
    isnt($code, 0, 'app show of an application deleted in etcd, the '
        . 'mirror\'s sync held: exit non-zero');
    unlike($out, qr/\Q$id\E/, '... showing nothing of it');
    like($err, qr/has not reached etcd's revision \d+.*oauth2-admin sync/s,
        '... saying the mirror is behind etcd and naming sync') or diag($err);
    ($code, $out, $err) = $t->admin_etcd('backup', "$dir/behind.mdb");
    isnt($code, 0, 'backup of that mirror: exit non-zero');
    ok(!-e "$dir/behind.mdb", '... leaving no file');

    sleep 5.2;    # past max_staleness (5 s): the mirror is refused at once
    ($code, $out, $err) = $t->admin_etcd('app', 'show', $id);
    isnt($code, 0, 'app show on a mirror staler than max_staleness: exit '
        . 'non-zero');
    unlike($out, qr/\Q$id\E/, '... showing nothing of it');
    like($err, qr/mirror is \d+ ms old.*oauth2-admin sync/s,
        '... naming the mirror\'s age and sync') or diag($err);
    ($code, $out, $err) = $t->admin_etcd('backup', "$dir/stale.mdb");
    isnt($code, 0, 'backup of it: exit non-zero');
    ok(!-e "$dir/stale.mdb", '... leaving no file');
    like($err, qr/mirror is \d+ ms old/, '... naming the mirror\'s age');

    resume_sync();
    ($code, $out, $err) = $t->admin_etcd('app', 'show', $id);
    like($err, qr/no application/, 'sync resumed: app show says the '
        . 'application is gone') or diag($err);
    my $before = etcd_revision();
    my $b = $t->admin_etcd_json('backup', "$dir/fresh.mdb");
    my $after = etcd_revision();
    my $mr = $b->{mirror_revision} // -1;
    ok($mr >= $before && $mr <= $after, "... and backup copies the mirror at "
        . "etcd's revision ($before to $after), which it prints "
        . "(mirror_revision $mr)");
}

$t->done;
done_testing();
