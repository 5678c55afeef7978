# One sync daemon per mirror (issue 13; docs/security.md R66, R77, R78):
# two daemons on one store would each apply etcd's watch at their own
# pace, and the slower take the mirror back over what the faster had
# applied (a revoked token valid again until the next event).  A second
# `oauth2-admin sync` on a store another one is writing refuses to start,
# at once and naming the store; the first keeps running and keeps the
# mirror.  (MirrorWriter also refuses to take the revision back: t/unit,
# MirrorWriter.TheRevisionNeverGoesBack.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build('admin');
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
my $url = $t->run_etcd;
$t->run_sync($url);
my $first = $t->sync_pid;
my $store = $t->store;

my ($code, $out, $err, $took) = $t->run_cmd_timeout(15, $OAuth2Test::ADMIN,
    'sync', '--store', $store, '--etcd', $url);
isnt($code, 'timeout', 'a second sync on the same store does not run on');
isnt($code, 0, '... it exits non-zero');
cmp_ok($took, '<', 5, '... at once');
like($out . $err, qr/another oauth2-admin sync is writing the mirror \Q$store\E/,
    '... saying another sync writes that store') or diag($out . $err);

ok(kill(0, $first), 'the first sync keeps running');
my $app = $t->new_app_etcd(name => 'after');
my ($lcode, $list) = $t->admin('app', 'list');
like($list, qr/\Q$app->{client_id}\E/, '... and keeps the mirror: a write '
    . 'through etcd is in it when the CLI answers (R70)');

# the lock goes with the process: once the first stops, a sync starts
is($t->stop_sync, 0, 'the first sync stops');
$t->run_sync($url);
ok($t->sync_pid, 'a sync starts on the store once the first has gone');

$t->done;
done_testing();
