# Upgrading a store written by 0.8 (commit 28f6349, store schema 1) to
# this build (issue 15 item 5; README "Upgrading from 0.8 (28f6349)" and
# "Upgrading to schema 2"; docs/security.md R37, R43, R78, R86).  The store
# is t/fixtures/store-28f6349/data.mdb, made by that commit's own
# oauth2-admin and nginx module (t/fixtures/make-store-28f6349), with the
# credentials it holds in secrets.json beside it.  A copy of it is opened
# here by the current CLI and nginx: its applications, user, tokens,
# refresh tokens and handshake keep working, and it takes new ones.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use JSON::PP;
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(password_token refresh);

OAuth2Test::require_build();

my $FIXTURE = "$FindBin::Bin/fixtures/store-28f6349";
my $s = JSON::PP->new->decode(OAuth2Test::_slurp("$FIXTURE/secrets.json"));
my %tok = %{$s->{tokens}};
my ($machine, $site) = @{$s->{apps}}{qw(machine site)};

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $store = $t->store;
mkdir $store or die "$store: $!";
copy("$FIXTURE/data.mdb", "$store/data.mdb") or die "copy: $!";

sub meta_dump {
    my ($code, $out) = $t->_run_cmd('mdb_dump', '-p', '-s', 'meta', $store);
    return $out;
}
like(meta_dump(), qr/^ schema_version\n 1$/m,
    'the fixture is a schema 1 store, as 28f6349 wrote it');
like(meta_dump(), qr/^ handshake_hs256_key$/m,
    'holding the handshake key 0.8 generated in the store');

# restore takes a backup of an older schema as it is (README "Backup and
# restore"): the 0.8 data.mdb itself, restored elsewhere
my ($code, $out, $err) = $t->admin_raw('--store', "$dir/restored", 'restore',
    "$FIXTURE/data.mdb");
is($code, 0, 'restore of the 0.8 data.mdb into a new store: exit 0')
    or diag($err);
like($out, qr/"schema_version": 1\b/, 'restore says it is schema 1');

# backup copies the 0.8 store as it is and leaves it so (README "Upgrading
# to schema 2"): the copy kept to go back to 0.8 must be of schema 1, and
# the store too until a command of this build writes it
($code, $out, $err) = $t->admin('backup', "$dir/before-upgrade.mdb");
is($code, 0, 'backup of the 0.8 store: exit 0') or diag($err);
like($out, qr/"schema_version": 1\b/, 'backup says the copy is schema 1');
like(meta_dump(), qr/^ schema_version\n 1$/m,
    'backup left the store at schema 1');
my (undef, $copy_meta) = $t->_run_cmd('mdb_dump', '-p', '-n', '-s', 'meta',
    "$dir/before-upgrade.mdb");
like($copy_meta, qr/^ schema_version\n 1$/m, 'the copy holds schema 1');
like($copy_meta, qr/^ handshake_hs256_key$/m,
    'and 0.8\'s records as they were (the handshake key still in it)');
($code, $out, $err) = $t->admin_raw('--store', "$dir/from-backup", 'restore',
    "$dir/before-upgrade.mdb");
is($code, 0, 'the copy restores into a new store: exit 0') or diag($err);
like($out, qr/"schema_version": 1\b/, 'restore says it is schema 1');
($code, $out, $err) = $t->admin_raw('--store', "$dir/from-backup", 'app',
    'list');
is($code, 0, 'app list on the restored copy: exit 0') or diag($err);
like($out, qr/\Q$machine->{client_id}\E/,
    'showing an application 0.8 registered');

# ------------------------------------------------ the CLI
# the upgrade step the README gives first: the key out of the store (R86)
($code, $out, $err) = $t->admin('handshake-key', 'extract',
    "$dir/old.key");
is($code, 0, 'handshake-key extract on the 0.8 store: exit 0') or diag($err);
is(length(OAuth2Test::_slurp("$dir/old.key")), 33,
    'the key file holds the 32-byte key and a newline');
chmod 0644, "$dir/old.key";
unlike(meta_dump(), qr/handshake_hs256_key/, 'the key left the store (R86)');
like(meta_dump(), qr/^ schema_version\n 2$/m,
    'the first command of this build marked the store schema 2');

my $apps = $t->admin_json('app', 'list');
is_deeply([sort map { $_->{client_id} } @$apps],
    [sort $machine->{client_id}, $site->{client_id}],
    'app list shows the two applications 0.8 registered');
my $users = $t->admin_json('user', 'list');
is_deeply([map { $_->{username} } @{ref $users eq 'HASH'
    ? $users->{results} : $users}], ['alice'], 'user list shows alice');
my $keys = $t->admin_json('apikey', 'list', $machine->{client_id});
is(scalar @$keys, 1, 'apikey list shows the API key 0.8 made');

# ------------------------------------------------ nginx
my $SOL = 'oauth2_handshake_solution rental fbs=fbs_rental_db;';
$t->write_config($t->default_http(
    extra_http => "oauth2_handshake_key $dir/old.key;",
    extra_server => "    location /api/auth/handshake/ { oauth2_handshake; "
        . "$SOL }\n"))->run;

for my $k (qw(cli_client cli_user http_client http_user http_refreshed)) {
    is($t->bearer_get('/protected/', $tok{$k})->{status}, 200,
        "the 0.8 token $k validates: 200");
}
is($t->bearer_get('/protected/', $tok{revoked})->{status}, 401,
    'the token 0.8 revoked stays refused: 401');
is($t->bearer_get('/protected/', $tok{http_refresh})->{status}, 401,
    'a 0.8 refresh token is no bearer token: 401 (R62)');

my $r = $t->token($machine->{client_id}, $machine->{client_secret});
is($r->{status}, 200, 'the 0.8 client secret authenticates: a new token');
my $new = $r->{json}{access_token} // '';
is($t->bearer_get('/protected/', $new)->{status}, 200, 'which validates');

$r = password_token($t, $site, 'alice', $s->{user}{password});
is($r->{status}, 200, 'alice\'s 0.8 password hash verifies: password grant '
    . '200');
is($t->bearer_get('/protected/', $r->{json}{access_token} // '')->{status},
    200, 'and its token validates');

my $issued = $t->issue_token($machine->{client_id});
is($t->bearer_get('/protected/', $issued)->{status}, 200,
    'a token issued by this CLI into the upgraded store validates');

$r = $t->api('POST', '/api/auth/handshake/validate/', json => {
    handshake_token => $s->{handshake}{handshake_token},
    handshake_secret => $s->{handshake}{handshake_secret} });
is($r->{status}, 200, 'the handshake 0.8 signed validates with the '
    . 'extracted key: 200');
is(ref $r->{json} eq 'HASH' && $r->{json}{data}{valid}, JSON::PP::true,
    'and is valid');
$r = $t->api('POST', '/api/auth/handshake/create/', json => {
    api_key => $s->{api_key}, system_name => 'new-system',
    solution_name => 'rental' });
is($r->{status}, 201, 'the 0.8 API key makes a new handshake: 201');

# the grant 0.8 rotated once: its live refresh token rotates again, and
# its spent one is a reuse that revokes the whole grant (R37), found
# through the family index 0.8 wrote
$r = refresh($t, $site, $tok{http_refresh});
is($r->{status}, 200, 'the live 0.8 refresh token rotates: 200');
my $rotated = $r->{json}{access_token} // '';
is($t->bearer_get('/protected/', $rotated)->{status}, 200,
    'the rotated access token validates');
$r = refresh($t, $site, $tok{spent_refresh});
is($r->{status}, 400, 'the spent 0.8 refresh token: 400');
is(ref $r->{json} eq 'HASH' && $r->{json}{error}, 'invalid_grant',
    'invalid_grant (R37)');
for my $k ([$tok{http_user}, 'its first access token'],
    [$tok{http_refreshed}, 'the one 0.8 rotated'], [$rotated, 'the new one'])
{
    is($t->bearer_get('/protected/', $k->[0])->{status}, 401,
        "the reuse revoked the grant: $k->[1] 401");
}
is($t->bearer_get('/protected/', $tok{cli_user})->{status}, 200,
    'a token of another grant stays valid');

($code, $out, $err) = $t->admin('cleartokens');
is($code, 0, 'cleartokens on the upgraded store: exit 0') or diag($err);
is($t->bearer_get('/protected/', $tok{cli_client})->{status}, 200,
    'the 0.8 tokens, still unexpired, are kept');

$t->done_testing;
