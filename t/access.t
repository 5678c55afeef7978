# auth_oauth2 bearer validation (docs/security.md R45, R59-R66; catalogue 2.2)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'rs');
my $admin = $t->new_app(name => 'admin', scope => 'read write admin');
$t->write_config($t->default_http(extra_server => <<'EOF2'))->run;
    location /vars/ {
        auth_oauth2 "vars";
        add_header X-Client $oauth2_client_id always;
        add_header X-Scope $oauth2_scope always;
        add_header X-Expires $oauth2_token_expires always;
        add_header X-User "[$oauth2_user]" always;
        alias %%DIR%%/html/;
    }
    location = /short/token/ {
        oauth2_access_token_ttl 3s;
        oauth2_token;
    }
    location /multi/ {
        auth_oauth2 "multi";
        auth_oauth2_scope read write;
        alias %%DIR%%/html/;
    }
    location /off/ {
        auth_oauth2 off;
        alias %%DIR%%/html/;
    }
}
server {
    # auth_oauth2 and auth_oauth2_scope inherited from the server level
    listen 127.0.0.1:%%PORT_1%%;
    auth_oauth2 "srv";
    auth_oauth2_scope read;
    location /inherit/ { alias %%DIR%%/html/; }
    location /admin/ { auth_oauth2_scope admin; alias %%DIR%%/html/; }
    location /public/ { auth_oauth2 off; alias %%DIR%%/html/; }
EOF2

my $tok = $t->access_token($app);
sub wa { OAuth2Test::header($_[0], 'WWW-Authenticate') // '' }

# R59: valid token, scheme case-insensitive
for my $scheme (qw(Bearer bearer BEARER bEaReR)) {
    my $r = $t->get('/protected/', Authorization => "$scheme $tok");
    is($r->{status}, 200, "Authorization: $scheme <token>: 200 (R59)");
}
my $r = $t->get('/protected/', Authorization => "Bearer $tok");
is($r->{body}, "hello\n", 'valid token: the protected file is served');
$r = $t->get('/protected/', 'X-API-KEY' => $tok);
is($r->{status}, 200, 'X-API-KEY: <token>: 200');
$r = $t->get('/protected/', 'x-api-key' => $tok);
is($r->{status}, 200, 'x-api-key (header name case): 200');

# R60: no credentials or another scheme: 401 without error
$r = $t->get('/protected/');
is($r->{status}, 401, 'no credentials: 401 (R60)');
is(wa($r), 'Bearer realm="api"',
    'no credentials: WWW-Authenticate Bearer realm="api", no error (R60)');
for my $h ('Basic ' . 'Zm9vOmJhcg==', 'Digest username="x"') {
    $r = $t->get('/protected/', Authorization => $h);
    is($r->{status}, 401, "Authorization: $h: 401 (R60)");
    is(wa($r), 'Bearer realm="api"', "$h: challenge has no error (R60)");
}

# R64: query tokens never accepted
$r = $t->get("/protected/?access_token=$tok");
is($r->{status}, 401, '?access_token= only: 401 (R64)');
is(wa($r), 'Bearer realm="api"', '?access_token= only: no error (R64)');
$r = $t->get("/protected/?access_token=bogus",
    Authorization => "Bearer $tok");
is($r->{status}, 200, 'bogus query token plus a valid header: 200 (R64)');

# R61: malformed
my $inv = 'Bearer realm="api", error="invalid_request"';
for my $c (['Bearer', 'Bearer alone'], ['Bearer ', 'Bearer + space'],
    ["Bearer  $tok", 'two spaces'], ["Bearer $tok extra", 'extra word'],
    ["Bearer $tok<>", 'not token68 (<>)'], ["Bearer $tok,", 'trailing comma'],
    ["Bearer a=b=c", '= in the middle'],
    ['Bearer tok%20', '% in the token'], ["Bearer $tok realm=\"x\"",
        'auth-param after the token'])
{
    my ($h, $name) = @$c;
    my $r = $t->get('/protected/', Authorization => $h);
    is($r->{status}, 400, "$name: 400 (R61)") or diag($r->{raw});
    is(wa($r), $inv, "$name: error=\"invalid_request\" (R61)");
}
# RFC 7235 separates scheme and token68 by SP only: "Bearer<TAB>tok" is
# a malformed Bearer credential (docs/security.md 2.2), never accepted
$r = $t->get('/protected/', Authorization => "Bearer\t$tok");
is($r->{status}, 400, 'Bearer<TAB>token: 400 (R61)');
is(wa($r), $inv, 'Bearer<TAB>token: error="invalid_request" (R61)');
$r = $t->request('GET', '/protected/',
    headers => ['Authorization' => '']);
ok($r->{status} == 400 || $r->{status} == 401,
    'empty Authorization header: 400 or 401');
$r = $t->get('/protected/', 'X-API-KEY' => [$tok, $tok]);
is($r->{status}, 400, 'two X-API-KEY headers: 400 (README)');
is(wa($r), $inv, 'two X-API-KEY headers: invalid_request');
$r = $t->get('/protected/', 'X-API-KEY' => $tok,
    Authorization => "Bearer $tok");
is($r->{status}, 400, 'Bearer and X-API-KEY together: 400 (R61)');
is(wa($r), $inv, 'Bearer and X-API-KEY together: invalid_request');
$r = $t->get('/protected/', 'X-API-KEY' => "$tok<>");
is($r->{status}, 400, 'X-API-KEY not token68: 400');

# R62: unknown tokens
my $invtok = 'Bearer realm="api", error="invalid_token"';
for my $c (['x' x 43, 'unknown 43-char token'], ['abc', 'short token'],
    [substr($tok, 0, 42), 'truncated token'], [$tok . 'A', 'extended token'],
    ['A' x 7000, '7 KiB token'], [lc($tok) eq $tok ? uc $tok : lc $tok,
        'token with its case changed'])
{
    my ($v, $name) = @$c;
    my $r = $t->get('/protected/', Authorization => "Bearer $v");
    is($r->{status}, 401, "$name: 401 (R62)");
    is(wa($r), $invtok, "$name: error=\"invalid_token\" (R62)");
}
# R47: lengths around LMDB's 511-byte key limit never reach a 5xx
for my $len (1, 511, 512, 513, 4096) {
    my $r = $t->get('/protected/', Authorization => 'Bearer ' . ('k' x $len));
    is($r->{status}, 401, "unknown $len-char token: 401, no 5xx (R47)");
}
$r = $t->get('/protected/', 'X-API-KEY' => 'x' x 43);
is($r->{status}, 401, 'unknown token via X-API-KEY: 401');
is(wa($r), $invtok, 'unknown token via X-API-KEY: invalid_token');
$r = $t->get('/protected/', Authorization => 'Bearer ' . ('A' x 9000));
is($r->{status}, 400, '9 KiB token: nginx 400');
$r = $t->get('/protected/', Authorization => "Bearer $app->{client_secret}");
ok($r->{status} == 401 || $r->{status} == 400,
    'the client secret is not a bearer token: 401/400');

# R65: challenge never reflects input
$r = $t->get('/protected/', Authorization => 'Bearer x"y');
unlike(wa($r), qr/x"y|x\\"y/, 'WWW-Authenticate does not reflect the token (R65)');

# R63: scope
$r = $t->bearer_get('/scoped/', $tok);
is($r->{status}, 403, 'read write token on /scoped/ (admin): 403 (R63)');
is(wa($r), 'Bearer realm="api", error="insufficient_scope", scope="admin"',
    'insufficient_scope challenge names scope="admin" (R63)');
my $atok = $t->access_token($admin, scope => 'admin');
$r = $t->bearer_get('/scoped/', $atok);
is($r->{status}, 200, 'token with scope admin on /scoped/: 200');
$r = $t->bearer_get('/multi/', $atok);
is($r->{status}, 403, 'admin-only token on "read write" location: 403');
is(wa($r), 'Bearer realm="multi", error="insufficient_scope", '
    . 'scope="read write"', 'insufficient_scope lists every required scope');
is($t->bearer_get('/multi/', $tok)->{status}, 200,
    'read write token on "read write" location: 200');
my $rtok = $t->access_token($app, scope => 'read');
is($t->bearer_get('/multi/', $rtok)->{status}, 403,
    'read-only token on "read write" location: 403');
$r = $t->get('/scoped/');
is($r->{status}, 401, '/scoped/ without a token: 401 not 403');

# open location and auth_oauth2 off
is($t->get('/open/')->{status}, 200, '/open/ without a token: 200');
is($t->get('/off/')->{status}, 200, 'auth_oauth2 off: 200');

# inheritance from the server level
my $p1 = $t->port(1);
$r = $t->http("GET /inherit/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    port => $p1);
is($r->{status}, 401, 'server-level auth_oauth2: 401 without a token');
is(wa($r), 'Bearer realm="srv"', 'server-level realm "srv"');
$r = $t->http("GET /inherit/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Authorization: Bearer $tok\r\n\r\n", port => $p1);
is($r->{status}, 200, 'server-level auth_oauth2: 200 with a read token');
$r = $t->http("GET /admin/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Authorization: Bearer $tok\r\n\r\n", port => $p1);
is($r->{status}, 403, 'location auth_oauth2_scope admin overrides: 403');
# R63: the server level's auth_oauth2_scope reaches the location too
my $wtok = $t->access_token($app, scope => 'write');
$r = $t->http("GET /inherit/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Authorization: Bearer $wtok\r\n\r\n", port => $p1);
is($r->{status}, 403,
    'a "write" token where the server level requires read: 403 (R63)');
is(wa($r), 'Bearer realm="srv", error="insufficient_scope", scope="read"',
    '... insufficient_scope, naming the inherited scope');
$r = $t->http("GET /public/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "\r\n", port => $p1);
is($r->{status}, 200, 'auth_oauth2 off in a location: 200 without a token');

# variables
my $before = time;
$r = $t->bearer_get('/vars/', $tok);
is($r->{status}, 200, '/vars/ with a token: 200');
is(OAuth2Test::header($r, 'X-Client'), $app->{client_id},
    '$oauth2_client_id is the client id');
is(OAuth2Test::header($r, 'X-Scope'), 'read write',
    '$oauth2_scope is "read write"');
my $exp = OAuth2Test::header($r, 'X-Expires') // '';
like($exp, qr/^\d+$/, '$oauth2_token_expires is a unix time');
ok($exp > $before + 36000 - 120 && $exp <= $before + 36000 + 5,
    '$oauth2_token_expires is about now + 36000');
is(OAuth2Test::header($r, 'X-User'), '[]',
    '$oauth2_user is empty for a client token');
is(wa($t->get('/vars/')), 'Bearer realm="vars"', 'realm comes from the '
    . 'location');

# R45: expiry (3 s: expiry counts whole seconds, and under ASan a slow
# machine can take over a second between the token and its first use)
my $short = $t->access_token($app, path => '/short/token/');
is($t->bearer_get('/protected/', $short)->{status}, 200,
    '3 s token right away: 200');
sleep 4.1;
$r = $t->bearer_get('/protected/', $short);
is($r->{status}, 401, '3 s token after 4.1 s: 401 (R45)');
is(wa($r), $invtok, 'expired token: error="invalid_token" (R45)');
is($t->bearer_get('/protected/', $tok)->{status}, 200,
    'the long token still works');

$t->done_testing;
