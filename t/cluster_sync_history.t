# A mirror follows one etcd history (issue 13; docs/security.md R66, R70,
# R77): etcd takes a watch from a revision it has not reached and drops
# every event below it, so a sync daemon that resumed at its mirror's
# revision on an etcd made anew kept the records of the lost history and
# missed the new one's writes, and `oauth2-admin --etcd` writes waiting
# for a revision below the mirror's reported success at once.  Here etcd
# is wiped and started again on the same URL, once with a revision below
# the mirror's and once above it (a cluster id of its own both times):
# the restarted sync daemon says why and takes a new snapshot, after which
# the mirror holds exactly the new etcd's applications, and a write
# through the new etcd is in the mirror when the CLI answers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(remove_tree);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;

OAuth2Test::require_build('admin');
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
my $url = $t->run_etcd;
$t->run_sync($url);

# the client ids of the mirror's applications, read locally (no --etcd:
# what nginx would read), sorted
sub mirror_apps {
    my ($code, $out, $err) = $t->admin('app', 'list');
    return "app list failed: $err" if $code;
    my $l = eval { JSON::PP->new->decode($out) } // [];
    $l = $l->{apps} if ref $l eq 'HASH';
    return join ',', sort map { $_->{client_id} // '?' } @{$l // []};
}

sub add_app {
    my ($name) = @_;
    return $t->new_app_etcd(name => $name)->{client_id};
}

# sync stopped, etcd's data wiped, and a new member on the same URL with
# a cluster token of its own (so another cluster id); the mirror's
# revision, as sync said when it stopped
sub rebuild_etcd {
    my ($token) = @_;
    is($t->stop_sync, 0, "sync stops before etcd is rebuilt ($token)");
    my ($stopped) = OAuth2Test::_slurp($t->sync_log)
        =~ /.*stopped at revision (\d+)/s;
    $t->stop_etcd;
    remove_tree($t->etcd_dir);
    $t->run_etcd(extra => ['--initial-cluster-token', $token]);
    return $stopped;
}

my @old = map { add_app("old-$_") } 1 .. 3;
is(mirror_apps(), join(',', sort @old), 'the mirror holds the three apps '
    . 'written through etcd');

# 1. a new etcd whose revision is below the mirror's
my $was = rebuild_etcd('rebuilt-1');
my $new1 = add_app('new-1');
my $seen = length OAuth2Test::_slurp($t->sync_log);
$t->run_sync($url);
my $log = substr(OAuth2Test::_slurp($t->sync_log), $seen);
like($log, qr/etcd's revision \d+ is below the mirror's $was .*: taking a new snapshot/,
    'sync says why it does not resume: etcd\'s revision is below the '
    . 'mirror\'s');
is(mirror_apps(), $new1, 'after it, the mirror holds the new etcd\'s app '
    . 'alone: the old history\'s are gone (R66)');
my $new2 = add_app('new-2');
is(mirror_apps(), join(',', sort $new1, $new2), 'a write through the new '
    . 'etcd is in the mirror when the CLI answers (R70)');

# 2. a new etcd whose revision is past the mirror's: only its cluster id
# tells it apart
$was = rebuild_etcd('rebuilt-2');
my $new3 = add_app('new-3');
for (0 .. $was + 5) {
    my ($code) = $t->etcd_post('/v3/kv/put', JSON::PP->new->encode({
        key => encode_base64('/elsewhere/n', ''),
        value => encode_base64("$_", '') }));
    die "etcd put: $code" unless $code == 200;
}
$seen = length OAuth2Test::_slurp($t->sync_log);
$t->run_sync($url);
$log = substr(OAuth2Test::_slurp($t->sync_log), $seen);
like($log, qr/etcd's cluster id \d+ is not the mirror's \d+ .*: taking a new snapshot/,
    'sync says why it does not resume: etcd\'s cluster id is not the '
    . 'mirror\'s');
is(mirror_apps(), $new3, 'after it, the mirror holds the app written '
    . 'below the mirror\'s old revision, and none of before (R66)');

# 3. the same etcd: sync resumes where it stopped, no snapshot
is($t->stop_sync, 0, 'sync stops');
$seen = length OAuth2Test::_slurp($t->sync_log);
$t->run_sync($url);
$log = substr(OAuth2Test::_slurp($t->sync_log), $seen);
like($log, qr/resuming at revision \d+/, 'on the same etcd sync resumes');
unlike($log, qr/snapshot/, 'and takes no snapshot');
is(mirror_apps(), $new3, 'the mirror is unchanged');

$t->done;
done_testing();
