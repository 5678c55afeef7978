# API keys, the handshake's credential (seed 002; src/core/apikeys.hpp),
# through `oauth2-admin apikey` and the daemon's
# /api/applications/<client_id>/api-keys/ behind nginx (docs/security.md R43,
# R69, R70, R72): shown once, stored only as a SHA-256, the applications
# API's permissions, bad input that changes nothing, keys that die with
# their application.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
# first-party: the staff user's token issued to it below acts as staff
# whatever its scope (R85)
my $plain_app = $t->new_app(name => 'plain', first_party => 1);
my $svc = $t->new_app(name => 'service');
my $other = $t->new_app(name => 'other');
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off;',
    extra_server => $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000);

my $sid = $svc->{client_id};
my $admin = $t->access_token($admin_app, scope => 'read write admin');
my $plain = $t->access_token($plain_app);
my $own = $t->access_token($svc);  # the service application's own token
my @secrets = ($admin, $plain, $own);

sub api { $t->api(@_) }
sub detail { my ($r) = @_; ref $r->{json} eq 'HASH' ? $r->{json}{detail} : undef }
sub dj { my $j = eval { JSON::PP->new->decode($_[0]) }; return $j }
sub keys_path { "/api/applications/$_[0]/api-keys/" }

# the keys of an application as the API lists them (dies on an error)
sub keys_of {
    my ($id) = @_;
    my $r = api('GET', keys_path($id), token => $admin);
    die "GET keys of $id: $r->{status} $r->{body}" unless $r->{status} == 200;
    return $r->{json};
}

# every database, in hex (keys are SHA-256 digests) and printable form
sub dump_all {
    my $s = $t->store;
    return `mdb_dump -a '$s' 2>&1` . `mdb_dump -a -p '$s' 2>&1`;
}

my ($root, $alice) = $t->staff_and_plain_users($admin,
    $plain_app->{client_id});
push @secrets, $root, $alice;

my @fields = sort qw(id name client_id created_at);
my %key_of;  # id => the key, as shown once

######################################################## create: CLI

my ($code, $out, $err) = $t->admin('apikey', 'add', $sid, '--name', 'ci');
is($code, 0, 'apikey add: exit 0') or diag($err);
my $k1 = dj($out) // {};
is_deeply([sort keys %$k1], [sort @fields, 'api_key'],
    'apikey add prints id, name, client_id, created_at and api_key');
like($k1->{api_key} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the key: 43 base64url characters (256 bits)');
like($k1->{id} // '', qr/^[0-9a-f]{16}$/, 'its id: 16 hex digits');
is($k1->{name}, 'ci', 'the name as given');
is($k1->{client_id}, $sid, 'the application');
like($k1->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'created_at in RFC 3339, UTC');
$key_of{$k1->{id}} = $k1->{api_key};

($code, $out, $err) = $t->admin_raw('apikey', 'add', $sid,
    '--store', $t->store);
is($code, 0, 'apikey add with --store after it: exit 0') or diag($err);
my $k2 = dj($out) // {};
is($k2->{name}, '', 'without --name the name is empty');
isnt($k2->{api_key}, $k1->{api_key}, 'a second key differs');
$key_of{$k2->{id}} = $k2->{api_key};

($code, $out, $err) = $t->admin('apikey', 'list', $sid);
is($code, 0, 'apikey list: exit 0');
my $list = dj($out);
is(ref $list, 'ARRAY', 'apikey list prints a JSON array');
is_deeply([sort map { $_->{id} } @{$list // []}],
    [sort $k1->{id}, $k2->{id}], 'it lists the two keys');
ok(!(grep { exists $_->{api_key} } @{$list // []}),
    'apikey list shows no api_key');
unlike($out, qr/\Q$k1->{api_key}\E|\Q$k2->{api_key}\E/,
    'apikey list output never contains a key');
is_deeply($list, keys_of($sid), 'the API lists what the CLI lists');

######################################################## create: API

my $r = api('POST', keys_path($sid), token => $admin,
    json => { name => ' deploy ' });
is($r->{status}, 201, 'POST api-keys: 201');
my $k3 = $r->{json} // {};
is_deeply([sort keys %$k3], [sort @fields, 'api_key'],
    'the answer has the fields of apikey add');
like($k3->{api_key} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the key is shown once, in the answer');
is($k3->{name}, 'deploy', 'the name, trimmed as DRF does');
is(OAuth2Test::header($r, 'Cache-Control'), 'no-store',
    'the answer with the key is not cached');
$key_of{$k3->{id}} = $k3->{api_key};

$r = api('POST', keys_path($sid), token => $admin);
is($r->{status}, 201, 'POST without a body: 201');
is($r->{json}{name}, '', 'without a body the name is empty');
$key_of{$r->{json}{id}} = $r->{json}{api_key};
$r = api('POST', keys_path($sid), token => $root, json => {});
is($r->{status}, 201, 'POST {} by a staff user: 201');
$key_of{$r->{json}{id}} = $r->{json}{api_key};
push @secrets, values %key_of;

is(scalar(keys %key_of), 5, 'five distinct keys');
my $keys = keys_of($sid);
is(scalar @$keys, 5, 'GET api-keys lists the five');
is_deeply([sort keys %{$keys->[0]}], \@fields,
    'a listed key has id, name, client_id, created_at');
$r = api('GET', keys_path($sid), token => $admin);
unlike($r->{body}, qr/api_key/, 'the list never has an api_key');
my @leaked = grep { index($r->{body}, $_) >= 0 } values %key_of;
is(scalar @leaked, 0, 'no key value in the list');
is_deeply(keys_of($other->{client_id}), [],
    'another application has no keys');

######################################################## the store (R43)

my $dump = dump_all();
ok(length $dump > 100, 'mdb_dump dumped the store') or diag($dump);
my @files = glob($t->store . '/*');
my $bytes = join '', map { OAuth2Test::_slurp($_) } @files;
my $leak = 0;
for my $k (values %key_of) {
    for my $form ($k, unpack('H*', $k), encode_base64($k, '')) {
        $leak++ if index($dump, $form) >= 0 || index($bytes, $form) >= 0;
    }
}
is($leak, 0, 'no key, raw, hex or base64, in a dump or in any file of '
    . 'the store (R43)');
is(scalar(grep { index($dump, sha256_hex($_)) < 0 } values %key_of), 0,
    'each key is stored under its SHA-256');

######################################################## a key is no token

my ($any_key) = values %key_of;
is($t->bearer_get('/protected/', $any_key)->{status}, 401,
    'an API key is not a bearer token at nginx');
is(api('GET', keys_path($sid), token => $any_key)->{status}, 401,
    'an API key is not a bearer token at the daemon');
is(api('GET', keys_path($sid), api_key => $any_key)->{status}, 401,
    'nor an X-API-KEY for the daemon');

######################################################## permissions (R69)

# the applications API's rule: staff users and "admin" application tokens;
# no one else, not even the application itself
my %who = (anonymous => undef, alice => $alice, 'plain app' => $plain,
    'the application itself' => $own, staff => $root, 'admin app' => $admin);
my @denied = (['anonymous', 401], ['alice', 403], ['plain app', 403],
    ['the application itself', 403]);
for my $c (@denied, ['staff', 200], ['admin app', 200]) {
    my ($caller, $status) = @$c;
    $r = api('GET', keys_path($sid), token => $who{$caller});
    is($r->{status}, $status, "$caller lists the keys: $status");
}
my $before = keys_of($sid);
my $victim = $k1->{id};
for my $c (@denied) {
    my ($caller, $status) = @$c;
    my $tok = $who{$caller};
    $r = api('POST', keys_path($sid), token => $tok, json => { name => 'x' });
    is($r->{status}, $status, "$caller creates a key: $status");
    ok(!defined $r->{json}{api_key}, "$caller gets no key");
    is(api('DELETE', keys_path($sid) . "$victim/", token => $tok)->{status},
        $status, "$caller revokes a key: $status");
    # DRF checks permissions before options(): the same refusal
    is(api('OPTIONS', keys_path($sid), token => $tok)->{status}, $status,
        "$caller OPTIONS the keys: $status");
    is(api('OPTIONS', keys_path($sid) . "$victim/", token => $tok)->{status},
        $status, "$caller OPTIONS a key: $status");
}
for my $caller ('staff', 'admin app') {
    $t->api_options_ok(keys_path($sid), $who{$caller},
        'GET, POST, HEAD, OPTIONS', 'Api Key List', $caller);
    my $r = $t->api_options_ok(keys_path($sid) . "$victim/", $who{$caller},
        'DELETE, OPTIONS', 'Api Key Instance', $caller);
    ok(index($r->{body}, 'api_key') < 0,
        "$caller OPTIONS a key: no key in the answer");
}
like(OAuth2Test::header(api('GET', keys_path($sid)), 'WWW-Authenticate')
    // '', qr/^Bearer realm="api"/, 'anonymous: 401 with a Bearer challenge');
is_deeply(keys_of($sid), $before,
    'the denied callers and the OPTIONS changed nothing');

######################################################## bad input (R72)

my @bad = (
    ['a name of 101 characters', { json => { name => 'n' x 101 } },
        qr/no more than 100 characters/],
    ['a name of 120 bytes (60 x U+00E9)',
        { body => '{"name": "' . '\u00e9' x 60 . '"}' },
        qr/no more than 100 bytes/],
    ['a control character in the name', { json => { name => "a\x07b" } },
        qr/Control/],
    ['a C1 control character in the name',
        { body => '{"name": "a\u0085b"}' }, qr/Control/],
    ['a DEL in the name', { json => { name => "a\x7fb" } }, qr/Control/],
    ['a number for the name', { json => { name => 5 } },
        qr/^Not a valid string\.$/],
    ['null for the name', { json => { name => undef } },
        qr/^This field may not be null\.$/],
    ['a list for the name', { json => { name => ['x'] } },
        qr/^Not a valid string\.$/],
);
for my $c (@bad) {
    my ($name, $req, $re) = @$c;
    $r = api('POST', keys_path($sid), token => $admin, %$req);
    is($r->{status}, 400, "$name: 400");
    like(ref $r->{json} eq 'HASH' && ref $r->{json}{name} eq 'ARRAY'
        ? $r->{json}{name}[0] : "(no name in: $r->{body})", $re,
        "$name: the message is under \"name\"");
}
$r = api('POST', keys_path($sid), token => $admin, body => '{"name": ');
is($r->{status}, 400, 'truncated JSON: 400');
like(detail($r) // '', qr/^JSON parse error/, 'truncated JSON: parse error');
$r = api('POST', keys_path($sid), token => $admin, body => '["x"]');
is($r->{status}, 400, 'a JSON array: 400');
like(detail($r) // '', qr/^JSON parse error/, 'a JSON array: parse error');
$r = api('POST', keys_path($sid), token => $admin,
    body => '{"name": "a", "name": "b"}');
is($r->{status}, 400, 'a duplicate key: 400 (docs/security.md 2.4)');
$r = api('POST', keys_path($sid), token => $admin,
    content_type => 'application/x-www-form-urlencoded', body => 'name=x');
is($r->{status}, 415, 'a form body: 415');
$r = api('POST', keys_path($sid), token => $admin,
    body => '{"name": "' . 'n' x 70000 . '"}');
is($r->{status}, 413, 'a 70 KB body: 413');
is_deeply(keys_of($sid), $before, 'after the bad bodies, the same keys');

sub cli_count {
    my ($c, $o) = $t->admin('apikey', 'list', $sid);
    my $l = dj($o);
    return ref $l eq 'ARRAY' ? scalar @$l : -1;
}
my $n = cli_count();
for my $c (
    [[qw(apikey add), $sid, '--name', 'n' x 101], 'a name of 101 bytes'],
    [[qw(apikey add), $sid, '--name', "\xc3\xa9" x 51],
        'a name of 102 bytes (51 x U+00E9)'],
    [[qw(apikey add), $sid, '--name', "a\x1bb"], 'an escape in the name'],
    [[qw(apikey add), $sid, '--name', "a\xc2\x85b"],
        'a C1 control in the name'],
    [[qw(apikey add), $sid, '--name', "a\xffb"], 'invalid UTF-8 in the name'],
    [[qw(apikey add), $sid, '--name'], '--name without a value'],
    [[qw(apikey add)], 'apikey add without a client_id'],
    [[qw(apikey add), $sid, 'extra'], 'apikey add with two operands'],
    [[qw(apikey list)], 'apikey list without a client_id'],
    [[qw(apikey revoke), $sid], 'apikey revoke without a key id'],
    [[qw(apikey frobnicate)], 'an unknown apikey subcommand'],
)
{
    my ($args, $name) = @$c;
    ($code, $out, $err) = $t->admin(@$args);
    is($code, 2, "CLI, $name: exit 2");
    like($err, qr/\S/, "CLI, $name: a message on stderr");
    is($out, '', "CLI, $name: nothing on stdout");
}
is(cli_count(), $n, 'the CLI usage errors created nothing');

######################################################## unknown: 404

for my $c (['add', 'no-such-app'], ['list', 'no-such-app'],
    ['revoke', 'no-such-app', $victim], ['revoke', $sid, '0123456789abcdef'],
    ['revoke', $other->{client_id}, $victim])
{
    my ($cmd, @args) = @$c;
    ($code, $out, $err) = $t->admin('apikey', $cmd, @args);
    is($code, 1, "CLI apikey $cmd @args: exit 1");
    like($err, $args[0] eq 'no-such-app'
        ? qr/no application with client_id no-such-app/
        : qr/has no API key/, "CLI apikey $cmd @args: says what is missing");
    is($out, '', "CLI apikey $cmd @args: nothing on stdout");
}
is(cli_count(), $n, 'revoking an unknown key, or one of another '
    . 'application, removed nothing');
($code, $out, $err) = $t->admin_raw('--store', $t->dir . '/no-store',
    'apikey', 'list', $sid);
is($code, 1, 'CLI on a store that does not exist: exit 1');
ok(!-e $t->dir . '/no-store', 'and it creates no store');

for my $c (['GET', keys_path('no-such-app')],
    ['POST', keys_path('no-such-app')],
    ['DELETE', keys_path('no-such-app') . "$victim/"],
    ['DELETE', keys_path($sid) . '0123456789abcdef/'],
    ['DELETE', keys_path($other->{client_id}) . "$victim/"])
{
    my ($m, $path) = @$c;
    $r = api($m, $path, token => $admin,
        ($m eq 'POST' ? (json => { name => 'x' }) : ()));
    is($r->{status}, 404, "$m $path: 404");
    is(detail($r), 'Not found.', "$m $path: \"Not found.\"");
}
for my $path ("/api/applications/$sid/api-keys",
    "/api/applications/$sid/api-keys//", "/api/applications/$sid/api-keys/x/y/",
    "/api/applications/$sid/api-keys/%00/", "/api/applications/$sid/apikeys/",
    '/api/applications//api-keys/')
{
    # at the daemon itself: nginx refuses %00 with its own 400
    $r = api('GET', $path, token => $admin, port => $t->daemon_port);
    is($r->{status}, 404, "GET $path: 404");
}
$r = api('PUT', keys_path($sid), token => $admin, json => {});
is($r->{status}, 405, 'PUT on the list: 405');
is(OAuth2Test::header($r, 'Allow'), 'GET, POST, HEAD, OPTIONS',
    'with its Allow, OPTIONS included');
$r = api('GET', keys_path($sid) . "$victim/", token => $admin);
is($r->{status}, 405, 'GET one key: 405 (a key is shown once)');
is(OAuth2Test::header($r, 'Allow'), 'DELETE, OPTIONS',
    'with Allow: DELETE, OPTIONS');
is_deeply(keys_of($sid), $before, 'after the 404s and 405s, the same keys');
ok(index(dump_all(), sha256_hex($key_of{$victim})) >= 0,
    'the key named in another application\'s path is still stored');

######################################################## revoke

($code, $out, $err) = $t->admin('apikey', 'revoke', $sid, $k1->{id});
is($code, 0, 'CLI apikey revoke: exit 0') or diag($err);
is_deeply(dj($out), { revoked => JSON::PP::true, id => $k1->{id} },
    'it prints {"revoked": true, "id": ...}');
ok(!(grep { $_->{id} eq $k1->{id} } @{keys_of($sid)}),
    'the revoked key is no longer listed');
is(index(dump_all(), sha256_hex($k1->{api_key})), -1,
    'its SHA-256 is gone from the store');
($code, $out, $err) = $t->admin('apikey', 'revoke', $sid, $k1->{id});
is($code, 1, 'revoking it again: exit 1');

$r = api('DELETE', keys_path($sid) . "$k3->{id}/", token => $admin);
is($r->{status}, 204, 'DELETE a key: 204');
is($r->{body}, '', 'with an empty body');
ok(!(grep { $_->{id} eq $k3->{id} } @{keys_of($sid)}),
    'the deleted key is no longer listed');
is(index(dump_all(), sha256_hex($k3->{api_key})), -1,
    'its SHA-256 is gone from the store');
is(api('DELETE', keys_path($sid) . "$k3->{id}/", token => $admin)->{status},
    404, 'DELETE it again: 404');
$r = api('DELETE', keys_path($sid) . "$k2->{id}/", token => $root);
is($r->{status}, 204, 'a staff user deletes a key: 204');
is(scalar @{keys_of($sid)}, 2, 'two keys left');

######################################################## delete the app (R70)

my $doomed = $t->new_app(name => 'doomed')->{client_id};
my $dk1 = $t->admin_json('apikey', 'add', $doomed, '--name', 'cli');
$r = api('POST', keys_path($doomed), token => $admin, json => {});
my $dk2 = $r->{json} // {};
push @secrets, $dk1->{api_key}, $dk2->{api_key};
is(scalar @{keys_of($doomed)}, 2, 'the doomed application has two keys');
$r = api('DELETE', "/api/applications/$doomed/", token => $admin);
is($r->{status}, 204, 'DELETE the application: 204');
($code, $out, $err) = $t->admin('apikey', 'list', $doomed);
is($code, 1, 'CLI apikey list of the deleted application: exit 1');
like($err, qr/no application with client_id \Q$doomed\E/,
    'it says there is no such application');
is(api('GET', keys_path($doomed), token => $admin)->{status}, 404,
    'GET its keys: 404');
$dump = dump_all();
is(scalar(grep { index($dump, sha256_hex($_)) >= 0 }
    $dk1->{api_key}, $dk2->{api_key}), 0,
    'its keys are gone from the store with it');
is(scalar @{keys_of($sid)}, 2, 'the other application keeps its keys');

($code, $out, $err) = $t->admin('app', 'delete', $sid);
is($code, 0, 'CLI app delete of the service application: exit 0');
$dump = dump_all();
is(scalar(grep { index($dump, sha256_hex($_)) >= 0 } values %key_of), 0,
    'app delete takes its keys along');

######################################################## --help

for my $args ([qw(apikey --help)], [qw(apikey add --help)],
    [qw(apikey list --help)], [qw(apikey revoke --help)])
{
    ($code, $out, $err) = $t->admin(@$args);
    is($code, 0, "@$args: exit 0");
    like($out, qr/usage/i, "@$args: prints usage");
}
($code, $out) = $t->admin('--help');
like($out, qr/apikey add/, '--help lists apikey add');

is($t->stop_daemon, 0, 'the daemon exits 0 on SIGTERM');
$t->daemon_log_ok(@secrets);
$t->done_testing;
