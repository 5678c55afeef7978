# oauth2-admin restore and the handshake key of a release before 0.9
# (docs/security.md R86, R43; README "Backup and restore"): a backup taken
# before `handshake-key extract` holds that key in clear in meta
# (handshake_hs256_key).  Restore leaves it out of the store it makes, not
# even in a free page of the file, and says so on stderr; the backup keeps
# it, and the README's recipe takes it out of the backup into a key file.
# (Restore into the cluster: t/restore_etcd.t.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build('admin');

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $app = $t->new_app(name => 'kept-app');

# the store of an old release: its generated key put in meta
my $LEGACY = 'L' x 8 . join('', map { chr(97 + $_ % 26) } 1 .. 32);
OAuth2Test::write_file("$dir/meta.txt", "VERSION=3\nformat=print\n"
    . "type=btree\nHEADER=END\n handshake_hs256_key\n $LEGACY\nDATA=END\n");
my ($code, $out, $err) = $t->_run_cmd('mdb_load', '-s', 'meta', '-f',
    "$dir/meta.txt", $t->store);
is($code, 0, 'an old store: its key put in meta with mdb_load') or diag($err);

($code, $out, $err) = $t->admin('backup', "$dir/old.backup");
is($code, 0, 'a backup of it: exit 0') or diag($err);
($code, $out) = $t->_run_cmd('mdb_dump', '-n', '-a', '-p', "$dir/old.backup");
like($out, qr/^ handshake_hs256_key$/m, 'the backup holds the key');

my $raw = sub { OAuth2Test::_slurp("$_[0]/data.mdb") };
my $said = qr/\Q'$dir\/old.backup' holds the handshake key of a release\E
    \Q before 0.9 (handshake_hs256_key): left out\E
    .*oauth2_handshake_key.*handshake-key\ extract/x;

# into a new store
($code, $out, $err) = $t->admin_raw('--store', "$dir/new", 'restore',
    "$dir/old.backup");
is($code, 0, 'restored into a new store: exit 0') or diag($err);
like($err, $said, '... stderr says the key was left out, and names '
    . 'oauth2_handshake_key and handshake-key extract');
is(scalar(() = $err =~ /\n/g), 1, '... in one line');
unlike(OAuth2Test::dump_store("$dir/new"), qr/handshake_hs256_key/,
    '... the restored store does not hold the key (R86)');
ok(index($raw->("$dir/new"), $LEGACY) < 0,
    '... nor does its file, not even in a free page');
($code, $out) = $t->admin_raw('--store', "$dir/new", 'app', 'show',
    $app->{client_id});
is($code, 0, '... which holds the backup\'s application');

# over the store it came from (--force): the key leaves that one too
($code, $out, $err) = $t->admin('restore', "$dir/old.backup", '--force');
is($code, 0, 'restored --force over the old store: exit 0') or diag($err);
like($err, $said, '... saying so');
ok(index($raw->($t->store), $LEGACY) < 0, '... whose file no longer holds '
    . 'the key');

# a backup without the key: nothing said
($code, $out, $err) = $t->admin('backup', "$dir/clean.backup");
is($code, 0, 'a backup of the restored store: exit 0') or diag($err);
($code, $out, $err) = $t->admin_raw('--store', "$dir/clean", 'restore',
    "$dir/clean.backup");
is($code, 0, 'restored: exit 0') or diag($err);
is($err, '', '... with nothing on stderr');

# README's recipe: the key out of the backup into a key file, for a store
# whose key was never extracted
mkdir "$dir/take";
($code, $out, $err) = $t->_run_cmd('cp', "$dir/old.backup",
    "$dir/take/data.mdb");
($code, $out, $err) = $t->admin_raw('--store', "$dir/take", 'handshake-key',
    'extract', "$dir/taken.key");
is($code, 0, 'the backup copied to a directory as its data.mdb: '
    . 'handshake-key extract takes the key out: exit 0') or diag($err);
is(OAuth2Test::_slurp("$dir/taken.key"), "$LEGACY\n",
    '... into the key file');
ok(index(OAuth2Test::_slurp("$dir/old.backup"), $LEGACY) >= 0,
    'the backup itself is left as it was');

$t->done_testing;
