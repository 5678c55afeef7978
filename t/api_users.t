# The users API of the admin daemon, through nginx (seed 003; issue 3
# item 2; docs/security.md R39, R69, R70, R72, 2.4): DRF's shapes, pagination,
# who may do what, self-registration, bad input that changes nothing,
# tokens that die with their user, concurrent writes, a restart.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use POSIX ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
# first-party, as seed 003's client: its users' tokens act with the
# user's full rights whatever their scope (R85)
my $plain_app = $t->new_app(name => 'plain', first_party => 1);
$t->write_config($t->default_http(extra_server => $t->daemon_locations))
    ->run;
$t->run_daemon('--pbkdf2-iterations', 1000, '--page-size', 3);

my $TRUE = JSON::PP::true;
my $FALSE = JSON::PP::false;
my $admin = $t->access_token($admin_app, scope => 'read write admin');
my $plain = $t->access_token($plain_app);
my @secrets = ($admin, $plain);
my $base = 'http://127.0.0.1:' . $t->port;

sub api { $t->api(@_) }
sub detail { my ($r) = @_; ref $r->{json} eq 'HASH' ? $r->{json}{detail} : undef }
sub user_token {
    my ($name) = @_;
    my $tok = $t->issue_token($plain_app->{client_id}, user => $name);
    push @secrets, $tok;
    return $tok;
}
# curl, as seed 003 runs it: (status, body)
sub curl {
    my (@args) = @_;
    my ($code, $out, $err) = $t->_run_cmd('curl', '-s', '-w',
        '\n%{http_code}', @args);
    my ($body, $status) = $out =~ /^(.*)\n(\d+)$/s;
    return ($status // 0, $body // '');
}
sub all_users { $t->api_all('/api/users/', $admin) }
sub names { join ',', sort map { $_->{username} } @{$_[0]} }

######################################################## staff and users

my $r = api('POST', '/api/users/', token => $admin, json => {
    username => 'root', password => 'root-password',
    email => 'root@example.com', is_staff => $TRUE });
is($r->{status}, 201, 'admin-scope app creates a staff user: 201');
is($r->{json}{is_staff}, $TRUE, 'admin-scope app may set is_staff');
my $root_id = $r->{json}{id};
push @secrets, 'root-password';
for my $n ('alice', 'bob') {
    $r = api('POST', '/api/users/', token => $admin, json => {
        username => $n, password => "$n-password",
        email => "$n\@example.com" });
    is($r->{status}, 201, "$n created: 201");
    push @secrets, "$n-password";
}
my %id = map { $_->{username} => $_->{id} } @{all_users()};
my $root = user_token('root');
my $alice = user_token('alice');

######################################################## seed 003 verbatim

my ($st, $body) = curl('-H', "Authorization: Bearer $root",
    "$base/api/users/");
is($st, 200, 'seed 003: curl GET /api/users/ with a staff token: 200');
my $list = eval { JSON::PP->new->decode($body) } // {};
is_deeply([sort keys %$list], [qw(count next previous results)],
    'seed 003: the list has count, next, previous, results (DRF)');
is_deeply([sort keys %{$list->{results}[0] // {}}],
    [qw(email first_name id is_active is_staff last_name username)],
    'a user shows id, username, email, first_name, last_name, is_staff, '
    . 'is_active: never the password');

# without --open-registration, POST without a token is refused
($st, $body) = curl('-X', 'POST', "$base/api/users/", '-H',
    'Content-Type: application/json', '-d', '{
        "username": "newuser",
        "password": "Tr0ub4dor-and-3",
        "email": "newuser@example.com",
        "first_name": "First Name",
        "last_name": "Last Name"
      }');
is($st, 401, 'seed 003 POST without a token and without '
    . '--open-registration: 401');
like($body, qr/Authentication credentials were not provided/,
    'and DRF\'s message');

# restart with --open-registration: nothing lost (R70)
my $before = all_users();
is($t->stop_daemon, 0, 'the daemon exits 0 on SIGTERM');
$t->run_daemon('--pbkdf2-iterations', 1000, '--page-size', 3,
    '--open-registration');
is_deeply(all_users(), $before, 'a restarted daemon serves the same users');
is(api('GET', '/auth/me/', token => $alice)->{json}{username}, 'alice',
    'a user token issued before the restart still works');

($st, $body) = curl('-X', 'POST', "$base/api/users/", '-H',
    'Content-Type: application/json', '-d', '{
        "username": "newuser",
        "password": "Tr0ub4dor-and-3",
        "email": "newuser@example.com",
        "first_name": "First Name",
        "last_name": "Last Name"
      }');
push @secrets, 'Tr0ub4dor-and-3';
is($st, 201, 'seed 003: curl POST /api/users/ (self-registration): 201');
my $new = eval { JSON::PP->new->decode($body) } // {};
is($new->{username}, 'newuser', 'the new user is newuser');
is($new->{first_name}, 'First Name', 'with first_name');
is($new->{last_name}, 'Last Name', 'with last_name');
is($new->{email}, 'newuser@example.com', 'with email');
ok(!exists $new->{password}, 'the answer never shows the password');
is($new->{is_staff}, $FALSE, 'a self-registered user is not staff');
is($new->{is_active}, $TRUE, 'a self-registered user is active');
my $nid = $new->{id};
like($nid // '', qr/^\d+$/, 'ids are integers');

($st, $body) = curl('-H', "Authorization: Bearer $root",
    "$base/api/users/$nid/");
is($st, 200, "seed 003: curl GET /api/users/<id>/: 200");
($st, $body) = curl('-X', 'PATCH', "$base/api/users/$nid/", '-H',
    "Authorization: Bearer $root", '-H', 'Content-Type: application/json',
    '-d', '{"first_name": "UpdatedName"}');
is($st, 200, 'seed 003: curl PATCH first_name: 200');
like($body, qr/"first_name":"UpdatedName"/, 'the answer has UpdatedName');
is(api('GET', "/api/users/$nid/", token => $root)->{json}{first_name},
    'UpdatedName', 'a GET right after reads UpdatedName (R70)');
($st, $body) = curl('-H', "Authorization: Bearer $root", "$base/auth/me/");
is($st, 200, 'seed 003: curl GET /auth/me/: 200');
like($body, qr/"username":"root"/, '/auth/me/ is the caller');
($st, $body) = curl('-X', 'DELETE', "$base/api/users/$nid/", '-H',
    "Authorization: Bearer $root");
is($st, 204, 'seed 003: curl DELETE /api/users/<id>/: 204');
is($body, '', 'DELETE answers an empty body');
is(api('GET', "/api/users/$nid/", token => $root)->{status}, 404,
    'the deleted user is gone: 404');

######################################################## self-registration

$r = api('POST', '/api/users/', json => { username => 'mallory',
    password => 'Brisk-otter-canal-64', email => 'm@example.com',
    is_staff => $TRUE, is_active => $FALSE, id => 1,
    date_joined => '2000-01-01' });
push @secrets, 'Brisk-otter-canal-64';
is($r->{status}, 201, 'self-registration with is_staff, is_active, id: 201');
is($r->{json}{is_staff}, $FALSE, 'self-registration ignores is_staff');
is($r->{json}{is_active}, $TRUE, 'self-registration ignores is_active');
isnt($r->{json}{id}, 1, 'self-registration ignores id (read-only)');
my $mallory = user_token('mallory');
is(api('GET', '/api/users/', token => $mallory)->{status}, 403,
    'a self-registered user cannot list users');
$r = api('POST', '/api/users/', token => $mallory, json => {
    username => 'mallory2', password => 'Fjord-42x',
    email => 'm2@example.com' });
is($r->{status}, 403, 'a non-staff user token cannot create users: 403');
$r = api('POST', '/api/users/', token => 'A' x 43, json => {
    username => 'eve', password => 'Fjord-42x',
    email => 'e@example.com' });
is($r->{status}, 401, 'an invalid token is not anonymous registration: 401');
is(detail($r), 'Given token not valid for any token type',
    'with simplejwt\'s body (seed 003: DRF tries DOT, then simplejwt)');
is($r->{json}{code}, 'token_not_valid', '... whose code simplejwt clients refresh on');
is_deeply($r->{json}{messages}, [{ token_class => 'AccessToken', token_type => 'access',
    message => 'Token is invalid or expired' }], '... and its messages');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '',
    qr/^Bearer realm="[^"]+", error="invalid_token"$/,
    'and WWW-Authenticate says error="invalid_token" (RFC 6750 3.1)');

######################################################## pagination

my $all = all_users();
my $count = @$all;
$r = api('GET', '/api/users/', token => $admin);
is($r->{json}{count}, $count, "count is every user ($count)");
is(scalar @{$r->{json}{results}}, 3, '--page-size 3: 3 results');
is($r->{json}{next}, 'http://localhost/api/users/?page=2',
    'next is an absolute URL from Host');
is($r->{json}{previous}, undef, 'previous of page 1 is null');
$r = api('GET', '/api/users/?page=2', token => $admin);
is($r->{json}{previous}, 'http://localhost/api/users/',
    'previous of page 2 is the URL without page (DRF)');
$r = api('GET', '/api/users/?page=2', token => $admin,
    headers => ['X-Forwarded-Proto' => 'https']);
like($r->{json}{previous} // '', qr{^http://},
    'X-Forwarded-Proto from a client is replaced by nginx\'s $scheme');
$r = api('GET', '/api/users/', token => $admin, port => $t->daemon_port,
    headers => ['X-Forwarded-Proto' => 'https']);
is($r->{json}{next}, 'https://localhost/api/users/?page=2',
    'X-Forwarded-Proto https gives https URLs');
my $pages = int(($count + 2) / 3);
$r = api('GET', '/api/users/?page=last', token => $admin);
is($r->{json}{next}, undef, 'page=last: next is null');
is(scalar @{$r->{json}{results}}, $count - 3 * ($pages - 1),
    'page=last has the rest');
for my $p ('0', '-1', 'abc', $pages + 1, '1.0', '99999999999999999999') {
    $r = api('GET', "/api/users/?page=$p", token => $admin);
    is($r->{status}, 404, "page=$p: 404");
    is(detail($r), 'Invalid page.', "page=$p: \"Invalid page.\"");
}
# an empty ?page= is page 1, as DRF's get_page_number ("... or 1")
for my $q ('page=', 'page', 'page=9&page=') {
    $r = api('GET', "/api/users/?$q", token => $admin);
    is($r->{status}, 200, "?$q: 200 (page 1)");
    is($r->{json}{previous}, undef, "?$q: page 1 (previous null)");
    is(scalar @{$r->{json}{results} // []}, 3, "?$q: page 1's 3 results");
}
$r = api('GET', '/api/users/?page=9&page=2', token => $admin);
is($r->{status}, 200, 'page=9&page=2: the last ?page= counts (Django\'s '
    . 'QueryDict): 200');
is($r->{json}{previous}, 'http://localhost/api/users/',
    'page=9&page=2 is page 2');
# the links are built from Host: at the daemon itself (nginx's own
# refuses such a Host first), one that is no host name, or two, are 400
for my $h (['evil.example/x?'], ['a"b'], ['localhost', 'evil.example'],
    ['localhost:123456'])
{
    my $raw = "GET /api/users/ HTTP/1.1\r\n"
        . join('', map { "Host: $_\r\n" } @$h)
        . "Authorization: Bearer $admin\r\nConnection: close\r\n\r\n";
    $r = $t->http($raw, port => $t->daemon_port);
    is($r->{status}, 400, "Host @$h: 400");
    is(detail($r), 'Invalid Host header.', "Host @$h: \"Invalid Host header.\"");
}
is_deeply([map { $_->{id} } @{all_users()}],
    [sort { $a <=> $b } map { $_->{id} } @$all],
    'following next walks every user once, in id order');

######################################################## permissions (R69)

my $bob = user_token('bob');
my ($aid, $bid) = @id{qw(alice bob)};
my %who = (anonymous => undef, alice => $alice, staff => $root,
    'admin app' => $admin, 'plain app' => $plain);
my @matrix = (
    # caller, method, path, body, status
    ['anonymous', 'GET', '/api/users/', undef, 401],
    ['alice', 'GET', '/api/users/', undef, 403],
    ['plain app', 'GET', '/api/users/', undef, 403],
    ['staff', 'GET', '/api/users/', undef, 200],
    ['admin app', 'GET', '/api/users/', undef, 200],
    ['anonymous', 'GET', "/api/users/$aid/", undef, 401],
    ['alice', 'GET', "/api/users/$aid/", undef, 200],
    ['alice', 'GET', "/api/users/$bid/", undef, 403],
    ['alice', 'GET', "/api/users/999999/", undef, 403],
    ['plain app', 'GET', "/api/users/$aid/", undef, 403],
    ['staff', 'GET', "/api/users/$bid/", undef, 200],
    ['admin app', 'GET', "/api/users/$bid/", undef, 200],
    ['alice', 'PATCH', "/api/users/$aid/", {last_name => 'A'}, 200],
    ['alice', 'PATCH', "/api/users/$bid/", {last_name => 'X'}, 403],
    ['anonymous', 'PATCH', "/api/users/$bid/", {last_name => 'X'}, 401],
    ['plain app', 'PATCH', "/api/users/$bid/", {last_name => 'X'}, 403],
    ['staff', 'PATCH', "/api/users/$bid/", {last_name => 'B'}, 200],
    ['admin app', 'PATCH', "/api/users/$bid/", {first_name => 'Bob'}, 200],
    ['alice', 'PUT', "/api/users/$aid/", {username => 'alice',
        email => 'alice@example.org'}, 200],
    ['alice', 'PUT', "/api/users/$bid/", {username => 'bob',
        email => 'x@example.org'}, 403],
    ['alice', 'DELETE', "/api/users/$aid/", undef, 403],
    ['alice', 'DELETE', "/api/users/$bid/", undef, 403],
    ['plain app', 'DELETE', "/api/users/$bid/", undef, 403],
    ['anonymous', 'DELETE', "/api/users/$bid/", undef, 401],
    ['anonymous', 'GET', '/auth/me/', undef, 401],
    ['alice', 'GET', '/auth/me/', undef, 200],
    ['staff', 'GET', '/auth/me/', undef, 200],
    ['admin app', 'GET', '/auth/me/', undef, 403],
    ['plain app', 'GET', '/auth/me/', undef, 403],
);
for my $m (@matrix) {
    my ($caller, $method, $path, $json, $status) = @$m;
    my $r = api($method, $path, token => $who{$caller},
        (defined $json ? (json => $json) : ()));
    is($r->{status}, $status, "$caller $method $path: $status");
}
$r = api('GET', '/api/users/');
is(OAuth2Test::header($r, 'WWW-Authenticate'), 'Bearer realm="api"',
    '401 without a token: WWW-Authenticate Bearer realm="api"');
$r = api('GET', '/api/users/', token => $alice);
is(detail($r), 'You do not have permission to perform this action.',
    '403: DRF\'s message');
$r = api('GET', '/api/users/', api_key => $root);
is($r->{status}, 200, 'X-API-KEY works as Authorization: Bearer does');
$r = api('GET', '/api/users/', headers => ['X-OAuth2-User' => 'root',
    'X-OAuth2-Client-Id' => $admin_app->{client_id},
    'X-OAuth2-Scope' => 'admin']);
is($r->{status}, 401, 'headers a proxy could set are never trusted: 401');
$r = api('PATCH', "/api/users/$aid/", token => $alice,
    json => { is_staff => $TRUE, is_active => $FALSE, first_name => 'Al' });
is($r->{status}, 200, 'alice PATCHes herself with is_staff: 200');
is($r->{json}{is_staff}, $FALSE, 'a non-staff user cannot make itself staff');
is($r->{json}{is_active}, $TRUE, 'nor change is_active');
is($r->{json}{first_name}, 'Al', 'the other fields are set');
is(api('GET', '/api/users/', token => $alice)->{status}, 403,
    'and alice still cannot list users');

######################################################## OPTIONS (DRF)

# DRF answers OPTIONS with SimpleMetadata's description of the view, after
# the permission checks its GET has (APIView.initial runs before
# options()): the same 401 and 403; Allow lists every method of the view,
# OPTIONS included, on the 200 and on each 405
my %allow = (list => 'GET, POST, HEAD, OPTIONS',
    one => 'GET, PUT, PATCH, DELETE, HEAD, OPTIONS',
    me => 'GET, HEAD, OPTIONS');
my @options = (
    # caller, path, status, Allow of the 200, name
    ['anonymous', '/api/users/', 401],
    ['alice', '/api/users/', 403],
    ['plain app', '/api/users/', 403],
    ['staff', '/api/users/', 200, $allow{list}, 'User List'],
    ['admin app', '/api/users/', 200, $allow{list}, 'User List'],
    ['anonymous', "/api/users/$aid/", 401],
    ['alice', "/api/users/$aid/", 200, $allow{one}, 'User Instance'],
    ['alice', "/api/users/$bid/", 403],
    ['plain app', "/api/users/$aid/", 403],
    ['staff', "/api/users/$bid/", 200, $allow{one}, 'User Instance'],
    # as DRF's options(), which never looks the object up
    ['admin app', '/api/users/999999/', 200, $allow{one}, 'User Instance'],
    ['anonymous', '/auth/me/', 401],
    ['alice', '/auth/me/', 200, $allow{me}, 'Me'],
    ['staff', '/auth/me/', 200, $allow{me}, 'Me'],
    ['admin app', '/auth/me/', 403],
);
$before = all_users();
for my $o (@options) {
    my ($caller, $path, $status, $allow, $name) = @$o;
    if ($status == 200) {
        $t->api_options_ok($path, $who{$caller}, $allow, $name, $caller);
        next;
    }
    my $r = api('OPTIONS', $path, token => $who{$caller});
    is($r->{status}, $status, "$caller OPTIONS $path: $status, as its GET");
    is(OAuth2Test::header($r, 'WWW-Authenticate'), 'Bearer realm="api"',
        "$caller OPTIONS $path: WWW-Authenticate, as its GET")
        if $status == 401;
}
is_deeply(all_users(), $before, 'the OPTIONS requests changed nothing');
$r = api('DELETE', '/api/users/', token => $root);
is($r->{status}, 405, 'DELETE the list: 405');
is(OAuth2Test::header($r, 'Allow'), $allow{list}, "405: Allow: $allow{list}");
$r = api('POST', "/api/users/$bid/", token => $root, json => {});
is($r->{status}, 405, 'POST to a user: 405');
is(OAuth2Test::header($r, 'Allow'), $allow{one}, "405: Allow: $allow{one}");
$r = api('POST', '/auth/me/', token => $alice, json => {});
is($r->{status}, 405, 'POST /auth/me/: 405');
is(OAuth2Test::header($r, 'Allow'), $allow{me}, "405: Allow: $allow{me}");

######################################################## bad input (R72)

$before = all_users();
my @bad = (
    # name, body (raw), status, field or 'detail', message regex
    ['invalid JSON', '{"username": "x",', 400, 'detail',
        qr/^JSON parse error - /],
    ['trailing garbage', '{}x', 400, 'detail', qr/^JSON parse error/],
    ['two values', '{}{}', 400, 'detail', qr/^JSON parse error/],
    ['a list body', '[]', 400, 'detail', qr/^JSON parse error/],
    ['a string body', '"x"', 400, 'detail', qr/^JSON parse error/],
    ['an empty body', '', 400, 'detail', qr/^JSON parse error/],
    ['single quotes', "{'username': 'x'}", 400, 'detail',
        qr/^JSON parse error/],
    ['a comment', '{/* c */}', 400, 'detail', qr/^JSON parse error/],
    ['a trailing comma', '{"a": 1,}', 400, 'detail', qr/^JSON parse error/],
    ['a BOM', "\xEF\xBB\xBF{}", 400, 'detail', qr/^JSON parse error/],
    ['NaN', '{"a": NaN}', 400, 'detail', qr/^JSON parse error/],
    ['1e999999', '{"a": 1e999999}', 400, 'detail', qr/^JSON parse error/],
    ['a 40-digit integer', '{"a": 1234567890123456789012345678901234567890}',
        400, 'detail', qr/^JSON parse error/],
    ['a lone surrogate', '{"username": "\ud800"}', 400, 'detail',
        qr/^JSON parse error/],
    ['raw invalid UTF-8', "{\"username\": \"\xC0\xAF\"}", 400, 'detail',
        qr/^JSON parse error/],
    ['NUL in a string', '{"username": "a\u0000b", "password": "Fjord-42x", '
        . '"email": "n@example.com"}', 400, 'detail',
        qr/^JSON parse error/],
    ['duplicate keys', '{"username": "dup1", "username": "dup2", '
        . '"password": "Fjord-42x", "email": "d@example.com"}', 400, 'detail',
        qr/^JSON parse error - duplicate/],
    ['depth 33', '[' x 33 . ']' x 33, 400, 'detail',
        qr/^JSON parse error - nested deeper than 32/],
    ['depth bomb of 10000 objects',
        '{"a":' x 10000 . '1' . '}' x 10000, 400, 'detail',
        qr/^JSON parse error - nested deeper than 32/],
    ['depth bomb of 100000 levels', '[' x 100000, 413, 'detail',
        qr/too large/],
    ['1 MiB body', '{"username": "' . 'a' x (1048576 - 17) . '"}', 413,
        'detail', qr/too large/],
    ['username a number', '{"username": 5, "password": "Fjord-42x", '
        . '"email": "n@example.com"}', 400, 'username',
        qr/^Not a valid string\.$/],
    ['email a list', '{"username": "n1", "password": "Fjord-42x", '
        . '"email": ["n@example.com"]}', 400, 'email',
        qr/^Not a valid string\.$/],
    ['username null', '{"username": null, "password": "Fjord-42x", '
        . '"email": "n@example.com"}', 400, 'username',
        qr/^This field may not be null\.$/],
    ['is_staff a string', '{"username": "n2", "password": "Fjord-42x", '
        . '"email": "n@example.com", "is_staff": "true"}', 400, 'is_staff',
        qr/^Must be a valid boolean\.$/],
    ['is_active 1', '{"username": "n3", "password": "Fjord-42x", '
        . '"email": "n@example.com", "is_active": 1}', 400, 'is_active',
        qr/^Must be a valid boolean\.$/],
    ['no password', '{"username": "n4", "email": "n@example.com"}', 400,
        'password', qr/^This field is required\.$/],
    ['no username', '{"password": "Fjord-42x", "email": "n@example.com"}', 400,
        'username', qr/^This field is required\.$/],
    ['no email', '{"username": "n5", "password": "Fjord-42x"}', 400, 'email',
        qr/^This field is required\.$/],
    ['blank password', '{"username": "n6", "password": "", '
        . '"email": "n@example.com"}', 400, 'password',
        qr/^This field may not be blank\.$/],
    ['invalid email', '{"username": "n7", "password": "Fjord-42x", '
        . '"email": "not-an-email"}', 400, 'email',
        qr/^Enter a valid email address\.$/],
    ['username with a space', '{"username": "a b", "password": "Fjord-42x", '
        . '"email": "n@example.com"}', 400, 'username',
        qr/^Enter a valid username/],
    ['username of 151 characters', '{"username": "' . 'u' x 151
        . '", "password": "Fjord-42x", "email": "n@example.com"}', 400,
        'username', qr/no more than 150 characters/],
    ['duplicate username', '{"username": "alice", "password": "Fjord-42x", '
        . '"email": "n@example.com"}', 400, 'username',
        qr/^A user with that username already exists\.$/],
    ['control character in first_name', '{"username": "n8", '
        . '"password": "Fjord-42x", "email": "n@example.com", '
        . '"first_name": "a\u0007b"}', 400, 'first_name', qr/Control/],
);
for my $c (@bad) {
    my ($name, $raw, $status, $field, $re) = @$c;
    my $r = api('POST', '/api/users/', token => $admin, body => $raw);
    is($r->{status}, $status, "$name: $status");
    my $msg = ref $r->{json} eq 'HASH'
        ? ($field eq 'detail' ? $r->{json}{detail} : $r->{json}{$field}[0])
        : undef;
    like($msg // "(no $field in: $r->{body})", $re,
        "$name: a message under \"$field\"");
}
# a body that does not parse is refused without a word of what jansson was
# reading (its "near '...'"), nor the \u escape it could not take: there,
# the password (R72; import-django's JSON error cuts the same)
for my $c (['a newline in the password',
        qq({"current_password": "Old-pass-1", "password": "Winter2024!\n"}),
        'Winter2024', qr/^JSON parse error - unexpected newline at line 1 column \d+$/],
    ['a lone surrogate in the password',
        '{"current_password": "Old-pass-1", "password": "Sum\\uD83Dmer-24"}',
        'D83D', qr/^JSON parse error - invalid Unicode at line 1 column \d+$/])
{
    my ($name, $raw, $secret, $re) = @$c;
    my $r = api('PATCH', "/api/users/$aid/", token => $admin, body => $raw);
    is($r->{status}, 400, "PATCH with $name: 400");
    like(detail($r) // $r->{body}, $re,
        "PATCH with $name: what is wrong, and where");
    unlike($r->{body}, qr/\Q$secret\E|Old-pass/,
        "PATCH with $name: no text of the body in the answer");
    push @secrets, $secret;
}
$r = api('POST', '/api/users/', token => $admin, content_type => 'text/plain',
    body => '{"username": "n9", "password": "Fjord-42x", '
        . '"email": "n@example.com"}');
is($r->{status}, 415, 'Content-Type text/plain: 415');
like(detail($r) // '', qr/^Unsupported media type "text\/plain"/,
    'Content-Type text/plain: DRF\'s message');
$r = api('POST', '/api/users/', token => $admin, content_type => undef,
    body => '{"username": "n9", "password": "Fjord-42x", '
        . '"email": "n@example.com"}');
is($r->{status}, 415, 'no Content-Type: 415');
$r = api('POST', '/api/users/', token => $admin, port => $t->daemon_port,
    headers => ['Content-Type' => 'application/json'],
    content_type => 'text/plain', body => '{"username": "n9", '
        . '"password": "Fjord-42x", "email": "n@example.com"}');
is($r->{status}, 400, 'two Content-Type headers, JSON first: 400');
is(detail($r), 'More than one Content-Type header.',
    'two Content-Type headers: it says so');
$r = api('PATCH', "/api/users/$aid/", token => $admin,
    json => { first_name => 'x' x 151 });
is($r->{status}, 400, 'PATCH first_name of 151 characters: 400');
$r = api('PATCH', "/api/users/$aid/", token => $admin,
    json => { username => 'bob' });
is($r->{status}, 400, 'PATCH to another user\'s username: 400');
is($r->{json}{username}[0], 'A user with that username already exists.',
    'PATCH to a taken username: DRF\'s message');
# DRF checks every field before it answers: a taken username beside an
# invalid email is told both at once
$r = api('POST', '/api/users/', token => $admin, json => {
    username => 'alice', password => 'Fjord-42x', email => 'not-an-address' });
is($r->{status}, 400, 'POST a taken username and a bad email: 400');
is_deeply([sort keys %{$r->{json} // {}}], ['email', 'username'],
    'POST a taken username and a bad email: both fields\' errors at once');
# a blank email: refused at a creation (seed 003: "Required fields are
# username, password, email"), kept at an update, where a user made
# without one (seed 001's registration, an import) is read and written
# back as it is (the model's EmailField(blank=True), as DRF takes it)
$r = api('POST', '/api/users/', token => $admin, json => {
    username => 'noemail', password => 'Fjord-42x-noemail', email => '' });
is($r->{status}, 400, 'POST with a blank email: 400');
is(($r->{json}{email} // [])->[0], 'This field may not be blank.',
    'POST with a blank email: "This field may not be blank."');
my $was = api('GET', "/api/users/$aid/", token => $admin)->{json};
$r = api('PATCH', "/api/users/$aid/", token => $admin, json => { email => '' });
is($r->{status}, 200, 'PATCH email "": 200');
is($r->{json}{email}, '', 'PATCH email "": the user has no email');
is(api('GET', "/api/users/$aid/", token => $admin)->{json}{email}, '',
    '... as GET shows');
$r = api('PUT', "/api/users/$aid/", token => $admin, json => {
    username => $was->{username}, email => '', first_name => 'Put' });
is($r->{status}, 200, 'PUT back a user without email: 200');
is($r->{json}{first_name}, 'Put', '... the change made');
$r = api('PATCH', "/api/users/$aid/", token => $admin, json => { email => 'no-at-sign' });
is($r->{status}, 400, 'PATCH an invalid email: still 400');
$r = api('PATCH', "/api/users/$aid/", token => $admin, json => {
    email => $was->{email}, first_name => $was->{first_name} });
is($r->{json}{email}, $was->{email}, 'PATCH the email back');
$r = api('PUT', "/api/users/$aid/", token => $admin,
    json => { first_name => 'x' });
is($r->{status}, 400, 'PUT without username and email: 400');
is_deeply([sort keys %{$r->{json} // {}}], ['email', 'username'],
    'PUT requires username and email (not password)');
for my $path ('/api/users/999999/', '/api/users/abc/', '/api/users/0/',
    '/api/users/01/', '/api/users/-1/', '/api/users/1.0/',
    '/api/users/%31/', '/api/users/99999999999999999999/',
    '/api/users/1/extra/')
{
    my $r = api('GET', $path, token => $admin);
    is($r->{status}, 404, "GET $path: 404");
    is(detail($r), 'Not found.', "GET $path: \"Not found.\"")
        if $path =~ m{^/api/users/};
}
# nginx answers 301 to the form without the slash; the daemon itself 404
for my $path ("/api/users/$aid", '/api/users', '/auth/me') {
    my $r = api('GET', $path, token => $admin, port => $t->daemon_port);
    is($r->{status}, 404, "GET $path (no trailing slash) at the daemon: 404");
}
$r = api('PATCH', '/api/users/999999/', token => $admin,
    json => { first_name => 'x' });
is($r->{status}, 404, 'PATCH an unknown id: 404');
$r = api('DELETE', '/api/users/999999/', token => $admin);
is($r->{status}, 404, 'DELETE an unknown id: 404');
$r = api('DELETE', '/api/users/', token => $admin);
is($r->{status}, 405, 'DELETE on the list: 405');
is(OAuth2Test::header($r, 'Allow'), 'GET, POST, HEAD, OPTIONS',
    '405 with Allow, OPTIONS included');
is_deeply(all_users(), $before, 'after all that bad input, nothing changed');
is_deeply([grep { $_->{username} =~ /^(?:dup\d|n\d+|u{151})$/ }
    @{all_users()}], [], 'no user of the bad requests exists');
# a field at its maximum is taken
my $longest = 'u' x 150;
$r = api('POST', '/api/users/', token => $admin,
    json => { username => $longest, password => 'Fjord-42x-Quill',
        email => 'n150@example.com' });
is($r->{status}, 201, 'a username of exactly 150 characters: 201');
is($r->{json}{username}, $longest, 'and it reads back whole');

######################################################## tokens die (R70)

for my $n ('carol', 'dave', 'erin') {
    api('POST', '/api/users/', token => $admin, json => { username => $n,
        password => "$n-password", email => "$n\@example.com" });
    push @secrets, "$n-password";
}
%id = map { $_->{username} => $_->{id} } @{all_users()};
my %tok = map { $_ => user_token($_) } qw(carol dave erin);
for my $n (qw(carol dave erin)) {
    is($t->bearer_get('/protected/', $tok{$n})->{status}, 200,
        "$n\'s token opens an nginx auth_oauth2 location");
}
$r = api('DELETE', "/api/users/$id{carol}/", token => $root);
is($r->{status}, 204, 'staff deletes carol: 204');
is($t->bearer_get('/protected/', $tok{carol})->{status}, 401,
    'carol\'s token fails at nginx on the next request (R70)');
$r = api('PATCH', "/api/users/$id{dave}/", token => $root,
    json => { is_active => $FALSE });
is($r->{status}, 200, 'staff disables dave: 200');
is($r->{json}{is_active}, $FALSE, 'dave is inactive');
is($t->bearer_get('/protected/', $tok{dave})->{status}, 401,
    'a disabled user\'s token fails at nginx at once (R70)');
is(api('GET', '/auth/me/', token => $tok{dave})->{status}, 401,
    'and at the daemon');
api('PATCH', "/api/users/$id{dave}/", token => $root,
    json => { is_active => $TRUE });
is($t->bearer_get('/protected/', $tok{dave})->{status}, 401,
    're-enabling dave does not bring the old token back');
$r = api('PATCH', "/api/users/$id{erin}/", token => $tok{erin},
    json => { password => 'erin-new-password' });
is($r->{status}, 400, 'erin changes her own password without '
    . 'current_password: 400');
is_deeply($r->{json}, { current_password => ['This field is required.'] },
    'current_password: "This field is required."');
$r = api('PATCH', "/api/users/$id{erin}/", token => $tok{erin},
    json => { password => 'erin-new-password',
        current_password => 'not-erin-password' });
is($r->{status}, 400, 'with a wrong current_password: 400');
is_deeply($r->{json}, { current_password => ['Your old password was '
    . 'entered incorrectly. Please enter it again.'] },
    'a wrong current_password: Django\'s message');
is($t->bearer_get('/protected/', $tok{erin})->{status}, 200,
    'the refused changes keep erin\'s token');
$r = api('PATCH', "/api/users/$id{erin}/", token => $tok{erin},
    json => { password => 'erin-new-password',
        current_password => 'erin-password' });
push @secrets, 'erin-new-password', 'not-erin-password';
is($r->{status}, 200, 'erin changes her own password with '
    . 'current_password: 200');
is($t->bearer_get('/protected/', $tok{erin})->{status}, 401,
    'a new password ends the user\'s tokens (R39)');
my $erin2 = user_token('erin');
$r = api('PUT', "/api/users/$id{erin}/", token => $root, json => {
    username => 'erin', email => 'erin@example.com' });
is($r->{status}, 200, 'PUT without password: 200');
is($t->bearer_get('/protected/', $erin2)->{status}, 200,
    'a PUT without password keeps the tokens');
$r = api('PUT', "/api/users/$id{erin}/", token => $root, json => {
    username => 'erin', email => 'erin@example.com',
    password => 'erin-third-pw' });
push @secrets, 'erin-third-pw';
is($t->bearer_get('/protected/', $erin2)->{status}, 401,
    'a PUT with a password ends the tokens (R39)');

######################################################## concurrency

# runs $n children at once, each $code->($i); their responses
sub parallel {
    my ($n, $code) = @_;
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $r = $code->($i);
            open my $fh, '>', $t->dir . "/par.$i" or POSIX::_exit(1);
            print $fh JSON::PP->new->encode({ status => $r->{status},
                json => $r->{json} });
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    return map {
        my $s = OAuth2Test::_slurp($t->dir . "/par.$_");
        unlink $t->dir . "/par.$_";
        eval { JSON::PP->new->decode($s) } // { status => 0 };
    } 1 .. $n;
}

my @res = parallel(8, sub {
    api('POST', '/api/users/', token => $admin, json => {
        username => "par$_[0]", password => 'par-password',
        email => "par$_[0]\@example.com" });
});
push @secrets, 'par-password';
is(join(',', map { $_->{status} } @res), join(',', (201) x 8),
    '8 parallel creates: 8 x 201');
my %ids = map { ($_->{json}{id} // 0) => 1 } @res;
is(scalar keys %ids, 8, '8 parallel creates: 8 distinct ids');
is(names([grep { $_->{username} =~ /^par\d$/ } @{all_users()}]),
    join(',', map { "par$_" } 1 .. 8), '8 parallel creates: all 8 land');

my $pid1 = $res[0]{json}{id};
@res = parallel(8, sub {
    my $i = $_[0];
    api('PATCH', "/api/users/$pid1/", token => $admin,
        json => $i % 2 ? { first_name => "F$i" } : { last_name => "L$i" });
});
is(join(',', map { $_->{status} } @res), join(',', (200) x 8),
    '8 parallel PATCHes of one user: 8 x 200');
my $final = api('GET', "/api/users/$pid1/", token => $admin)->{json};
like($final->{first_name}, qr/^F[1357]$/,
    'first_name is one of the PATCHed values');
like($final->{last_name}, qr/^L[2468]$/,
    'last_name too: no PATCH undid another (no lost update)');
my @last_first = grep { $_->{json}{first_name} eq $final->{first_name} }
    grep { $_->{json}{first_name} =~ /^F/ } @res;
ok(scalar @last_first, 'the value read back is one a PATCH answered with');

# the daemon writes while nginx validates (two workers)
@res = parallel(4, sub {
    my $i = $_[0];
    my $ok = 1;
    for my $k (1 .. 10) {
        my $r = $i % 2
            ? api('PATCH', "/api/users/$pid1/", token => $admin,
                json => { first_name => "W$k" })
            : $t->bearer_get('/protected/', $root);
        $ok = 0 unless $r->{status} == 200;
    }
    return { status => $ok ? 200 : 500 };
});
is(join(',', map { $_->{status} } @res), '200,200,200,200',
    'writes through the daemon while nginx validates: no error');

################################## self-registration is limited per address

# --open-registration: 10 a minute (100 an hour) per address, as the
# module's oauth2_register, counted before the password is hashed: a flood
# from one address neither fills the store nor holds the hash queue that
# staff sign-ins need (R88, R83); other addresses and staff are not limited
my @flood = map {
    my $n = $_;
    my $r = api('POST', '/api/users/', from => '127.9.0.1', json => {
        username => "flood$n", password => "Flood-pass-$n-x9",
        email => "flood$n\@example.com" });
    push @secrets, "Flood-pass-$n-x9";
    $r;
} 1 .. 12;
is(join(',', map { $_->{status} } @flood), join(',', (201) x 10, 429, 429),
    'twelve self-registrations from one address in a minute: 10 made, then 429');
like(OAuth2Test::header($flood[-1], 'Retry-After') // '', qr/^[1-9]\d*$/,
    'the 429 says when (Retry-After)');
like(detail($flood[-1]) // '', qr/^Request was throttled/, '... in DRF\'s words');
is(join(',', grep { /^flood/ } split /,/, names(all_users())),
    join(',', sort map { "flood$_" } 1 .. 10),
    'the refused registrations made no user');
is(api('POST', '/api/users/', from => '127.9.0.2', json => {
        username => 'elsewhere', password => 'Elsewhere-pass-7x',
        email => 'elsewhere@example.com' })->{status}, 201,
    'another address registers: 201');
push @secrets, 'Elsewhere-pass-7x';
is(api('POST', '/api/users/', from => '127.9.0.1', token => $root, json => {
        username => 'by-staff', password => 'By-staff-pass-7x',
        email => 'by-staff@example.com' })->{status}, 201,
    'staff creates a user from the flooded address: 201 (not limited)');
push @secrets, 'By-staff-pass-7x';

# refused registrations count too: "that username is taken" is an answer
# about the accounts, given at the limit's pace (OWASP: enumeration)
my @probe = map {
    api('POST', '/api/users/', from => '127.9.0.3',
        json => { username => $_ % 2 ? 'flood1' : "free-name-$_" })
} 1 .. 12;
is(join(',', map { $_->{status} } @probe), join(',', (400) x 10, 429, 429),
    'twelve refused registrations (a taken name, no password) from one '
    . 'address: 400 ten times, then 429');
unlike(join(' ', map { $_->{body} // '' } @probe[10, 11]), qr/already exists/,
    '... and the 429s do not say whether the name is taken');

# a user renaming itself learns whether a name is taken: that too is
# answered at the registration's pace, per user (OWASP: enumeration);
# its other fields, and staff, are not limited
my @rename = map {
    api('PATCH', "/api/users/$aid/", token => $alice,
        json => { username => 'bob' })
} 1 .. 12;
is(join(',', map { $_->{status} } @rename), join(',', (400) x 10, 429, 429),
    'alice asks for a taken username twelve times in a minute: 400 ten '
    . 'times, then 429');
like(detail($rename[-1]) // '', qr/^Request was throttled/,
    '... in DRF\'s words');
unlike(join(' ', map { $_->{body} // '' } @rename[10, 11]), qr/already exists/,
    '... and the 429s do not say whether the name is taken');
is(api('PATCH', "/api/users/$aid/", token => $alice,
        json => { first_name => 'Alice' })->{status}, 200,
    'alice still changes her first name: 200');
is(api('PATCH', "/api/users/$bid/", token => $bob,
        json => { username => 'alice' })->{status}, 400,
    'another user asking for a taken name is not limited by alice\'s count');
$r = api('PATCH', "/api/users/$aid/", token => $admin,
    json => { username => 'bob' });
is($r->{json}{username}[0], 'A user with that username already exists.',
    'staff renaming alice is not limited either');

# what the users API takes, a form can carry and the store can hold: a
# password with a control character (no sign-in form could send it) is a
# field error as at the CLI, and a name of 150 characters over 150 bytes
# a field error before the password's hash, not the store's 400 after it
{
    my $r = api('POST', '/api/users/', token => $admin, json => {
        username => 'tabby', email => 'tabby@example.com',
        password => "Correct\thorse-battery-9" });
    is($r->{status}, 400, 'a password with a TAB: 400');
    is_deeply($r->{json}, { password =>
        ['The password must not contain control characters.'] },
        '... a field error on password');
    my $ascii = JSON::PP->new->ascii->canonical;
    $r = api('POST', '/api/users/', token => $admin, body => $ascii->encode({
        username => 'accented', email => 'accented@example.com',
        password => 'Plausible-Otter-Lamp-7', first_name => "\x{e9}" x 100 }));
    is($r->{status}, 400, 'a first name of 100 two-byte characters: 400');
    is_deeply($r->{json}, { first_name =>
        ['Ensure this field has no more than 150 bytes of UTF-8.'] },
        '... a field error on first_name');
    ok(!grep({ $_->{username} =~ /^(tabby|accented)$/ } @{all_users()}),
        '... and neither made a user');
    $r = api('POST', '/api/users/', token => $admin, body => $ascii->encode({
        username => 'accented', email => 'accented@example.com',
        password => 'Plausible-Otter-Lamp-7', first_name => "\x{e9}" x 75 }));
    is($r->{status}, 201, 'a first name of 75 such characters (150 bytes): 201')
        or diag($r->{body});
}


######################################################## end

is($t->stop_daemon, 0, 'the daemon exits 0 on SIGTERM');
$t->daemon_log_ok(@secrets);
my $log = OAuth2Test::_slurp($t->daemon_log);
like($log, qr{"GET /api/users/" 200}, 'the daemon logs method, path, status');
unlike($log, qr/page=/, 'the daemon never logs a query string');
$t->done_testing;
