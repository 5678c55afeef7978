# Seed 003 (pyauthservice): djangorestframework-simplejwt's POST
# /api/token/ and POST /api/token/refresh/ (oauth2_jwt_token,
# oauth2_jwt_refresh) and the service-token GET /api/status/
# (oauth2_status); issue 5.  The seed's curl requests are sent verbatim;
# every JWT is verified independently with Debian's python3-jwt against
# the oauth2_jwks document (t/clients/jwt_verify.py).  docs/security.md R9,
# R17, R35, R39, R46, R52, R62, R70.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;
use OAuth2Grants qw(:all);
use OAuth2Jwt qw(:all);

OAuth2Test::require_build();

require_pyjwt('the simplejwt test');

my $ISS = 'https://auth.example.com';
my $JSON = JSON::PP->new->canonical;

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';    # ec.pem, and the service tokens
$t->ec_key;

# the service token: SERVICE_API_TOKEN of the seed's .env
my $STATUS_TOKEN = join '', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[rand 62] }
    1 .. 40;
OAuth2Test::write_file("$K/status.token", "$STATUS_TOKEN\n");
OAuth2Test::write_file("$K/short.token", "0123456789abcde\n");

######################################################## helpers

# $tok's claims changed (undef deletes), re-signed with the server's key
sub forge {
    my ($tok, %chg) = @_;
    my ($h, $c) = parts($tok);
    for my $k (qw(exp iat nbf user_id)) { $c->{$k} += 0 if defined $c->{$k} }
    for my $k (keys %chg) {
        if (defined $chg{$k}) { $c->{$k} = $chg{$k} } else { delete $c->{$k} }
    }
    my $r = py({ op => 'sign', header => $h, claims => $c, alg => 'ES256',
        key_file => "$K/ec.pem" });
    die "forge: $r->{error}" unless $r->{ok};
    return $r->{token};
}

######################################################## the server

my $app = $t->new_app(name => 'pyauthservice',
    grant => ['password', 'refresh_token'], scope => 'read write');
my $noref = $t->new_app(name => 'password only', grant => 'password',
    scope => 'read');
my $pw = 'yourpassword';
my $you = add_user($t, 'youruser', $pw);
my $bob = add_user($t, 'bob', 'bob password');
my $carol = add_user($t, 'carol', 'carol password');
add_user($t, 'sleepy', 'sleepy password', inactive => 1);
add_user($t, 'hammered', 'hammered password');

my $cid = $app->{client_id};
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n"
        . "oauth2_client_auth_limit off;\n"
        . "oauth2_jwt_key $K/ec.pem;\n",
    extra_server => grant_locations(extra => <<"EOF")))->run;
    # the seed's issuer, in place of the default server's (http level)
    oauth2_issuer $ISS;
    location = /api/token/ { oauth2_jwt_token $cid; }
    location = /api/token/refresh/ { oauth2_jwt_refresh $cid; }
    location = /api/status/ {
        oauth2_status pyauthservice X-Service-Token $K/status.token;
    }
    location = /api/token-short/ {
        oauth2_jwt_token $cid;
        oauth2_refresh_token_ttl 1s;
    }
    location = /api/token-noref/ { oauth2_jwt_token $noref->{client_id}; }
    location = /api/token-noref/refresh/ {
        oauth2_jwt_refresh $noref->{client_id};
    }
    location = /api/token-limited/ {
        oauth2_jwt_token $cid;
        oauth2_client_auth_limit 3 2s;
    }
    location = /jwks/ { oauth2_jwks; }
EOF

my $JWKS = $t->get('/jwks/')->{json};
ok(ref $JWKS eq 'HASH' && @{$JWKS->{keys} // []} == 1,
    'the JWKS location serves the one EC key');

# python3-jwt's verification with the JWKS: the claims, or undef
sub verified {
    my ($tok, $aud, $name) = @_;
    my $v = py({ op => 'verify', token => $tok, jwks => $JWKS,
        algorithms => ['ES256'], audience => $aud, issuer => $ISS });
    ok($v->{ok}, "$name: python3-jwt verifies it with the JWKS")
        or diag($v->{error});
    return $v->{ok} ? $v->{claims} : {};
}

# curl's headers, then the seed's
my @CURL = ('User-Agent' => 'curl/7.88.1', 'Accept' => '*/*');

sub post_json {
    my ($path, $body, @h) = @_;
    return $t->api('POST', $path, body => $body, content_type => undef,
        headers => [@CURL, @h]);
}

sub obtain {
    my ($user, $password, $path) = @_;
    return post_json($path // '/api/token/',
        $JSON->encode({ username => $user, password => $password }),
        'Content-Type' => 'application/json');
}

sub refresh_jwt {
    my ($rt, $path) = @_;
    return post_json($path // '/api/token/refresh/',
        $JSON->encode({ refresh => $rt }), 'Content-Type' => 'application/json');
}

sub keys_of { join ',', sort keys %{ref $_[0]{json} eq 'HASH' ? $_[0]{json} : {}} }

sub no_store {
    my ($r, $name) = @_;
    my $cc = join ',', @{$r->{headers}{'cache-control'} // []};
    ok($cc =~ /(?:^|,)\s*no-store\s*(?:,|$)/i,
        "$name: Cache-Control no-store (R9)");
}

# simplejwt raises DRF's own AuthenticationFailed for a failed login:
# {"detail"} alone, no "code" (its InvalidToken, token_not_valid, has one)
my $BAD_LOGIN = { detail => 'No active account found with the given '
    . 'credentials' };
my $NOT_VALID = { detail => 'Token is invalid or expired',
    code => 'token_not_valid' };
my $DENIED = { detail => 'You do not have permission to perform this '
    . 'action.', code => 'permission_denied' };
my $REQUIRED = ['This field is required.'];

sub drf_ok {
    my ($r, $status, $want, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    is_deeply($r->{json}, $want, "$name: " . $JSON->encode($want))
        or diag($r->{raw});
    like(OAuth2Test::header($r, 'Content-Type') // '',
        qr{^application/json}i, "$name: Content-Type JSON");
}

######################################################## seed 003 verbatim

# POST /api/token/
my $r = $t->request('POST', '/api/token/', headers => [@CURL,
    'Content-Type' => 'application/json'],
    body => '{"username": "youruser", "password": "yourpassword"}');
is($r->{status}, 200, 'seed 003 POST /api/token/: 200');
is(keys_of($r), 'access,refresh',
    '/api/token/: {"refresh", "access"} and nothing else');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json}i,
    '/api/token/: Content-Type JSON');
no_store($r, '/api/token/');
my ($access, $refresh) = @{$r->{json} // {}}{qw(access refresh)};
$access //= '';
$refresh //= '';

my ($ah) = parts($access);
is($ah->{alg}, 'ES256', 'access: header alg ES256 (the key)');
ok(length($ah->{kid} // '') && $ah->{kid} eq ($JWKS->{keys}[0]{kid} // ''),
    'access: the kid of the JWKS key');
my $ac = verified($access, $ISS, 'access');
is($ac->{token_type}, 'access', 'access: token_type access');
is($ac->{user_id}, $you->{id}, 'access: user_id is the user\'s id');
like($ac->{jti} // '', qr/^[A-Za-z0-9_-]{22,}$/, 'access: jti');
ok(defined $ac->{iat} && abs($ac->{iat} - time) <= 5, 'access: iat is now');
ok(($ac->{exp} // 0) > ($ac->{iat} // 0) + 60, 'access: exp after iat');
is($ac->{iss}, $ISS, 'access: iss');
is($ac->{aud}, $ISS, 'access: aud (the issuer)');
is($ac->{sub}, "$you->{id}", 'access: sub is the user id');
is($ac->{client_id}, $cid, 'access: client_id of oauth2_jwt_token');
is($ac->{scope}, 'read write', 'access: the app\'s scope');

my $rc = verified($refresh, undef, 'refresh');
is($rc->{token_type}, 'refresh', 'refresh: token_type refresh');
is($rc->{user_id}, $you->{id}, 'refresh: user_id');
like($rc->{jti} // '', qr/^[A-Za-z0-9_-]{22,}$/, 'refresh: jti');
isnt($rc->{jti}, $ac->{jti}, 'refresh: another jti than the access token');
ok(defined $rc->{iat} && abs($rc->{iat} - time) <= 5, 'refresh: iat is now');
ok(($rc->{exp} // 0) > ($ac->{exp} // 0),
    'refresh: expires after the access token');

# Authorization: Bearer <access_token>
$r = $t->request('GET', '/me/', headers => [@CURL,
    'Authorization' => "Bearer $access"]);
is($r->{status}, 200, 'seed: Authorization: Bearer <access_token>: 200');
is(OAuth2Test::header($r, 'X-User'), 'youruser',
    'the access token: $oauth2_user is the user');
is(OAuth2Test::header($r, 'X-Client'), $cid,
    'the access token: $oauth2_client_id is the app of oauth2_jwt_token');
is($t->bearer_get('/protected/', $access)->{body}, "hello\n",
    'the access token opens the default protected location');
my $i = introspect($t, $app, $access);
is($i->{json}{active}, JSON::PP::true, 'the access token introspects active');
is($i->{json}{username}, 'youruser', 'introspection: the username');

# POST /api/token/refresh/
$r = $t->request('POST', '/api/token/refresh/', headers => [@CURL,
    'Content-Type' => 'application/json'],
    body => '{"refresh": "' . $refresh . '"}');
is($r->{status}, 200, 'seed 003 POST /api/token/refresh/: 200');
is(keys_of($r), 'access', '/api/token/refresh/: {"access"} and nothing else');
no_store($r, '/api/token/refresh/');
my $access2 = $r->{json}{access} // '';
my $ac2 = verified($access2, $ISS, 'refreshed access');
is($ac2->{token_type}, 'access', 'refreshed access: token_type access');
is($ac2->{user_id}, $you->{id}, 'refreshed access: the same user_id');
isnt($ac2->{jti}, $ac->{jti}, 'refreshed access: a new jti');
is($ac2->{scope}, 'read write', 'refreshed access: the same scope');
is($t->bearer_get('/me/', $access2)->{status}, 200,
    'the refreshed access token opens the location');
is($t->bearer_get('/me/', $access)->{status}, 200,
    'the first access token still works');
$r = refresh_jwt($refresh);
is($r->{status}, 200,
    'the refresh token again: 200 (no rotation, simplejwt\'s default)');
# A refresh JWT is redeemed by its signature, at its refresh location;
# its jti (in its payload, readable by whoever holds it) is no opaque
# refresh token at /o/token/: that would give an opaque pair for it and
# mark its record used, as if the two kinds were one.
$r = $t->token($cid, $app->{client_secret}, grant_type => 'refresh_token',
    extra => 'refresh_token=' . OAuth2Test::form_encode($rc->{jti} // ''));
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "the refresh JWT's jti as an opaque refresh token at /o/token/");
is(introspect($t, $app, $refresh)->{json}{active}, JSON::PP::true,
    '... and the refresh JWT is as it was: active');

# GET /api/status/
$r = $t->request('GET', '/api/status/', headers => [@CURL,
    'X-Service-Token' => $STATUS_TOKEN]);
drf_ok($r, 200, { status => 'ok', service => 'pyauthservice' },
    'seed 003 GET /api/status/ with the service token');
like($r->{body}, qr/^\{\s*"status":\s*"ok",\s*"service":\s*"pyauthservice"\s*\}\s*$/,
    'GET /api/status/: "status" then "service", as the seed shows');

######################################################## /api/token/ errors

drf_ok(post_json('/api/token/', '{"password": "yourpassword"}',
    'Content-Type' => 'application/json'), 400, { username => $REQUIRED },
    'no username');
drf_ok(post_json('/api/token/', '{"username": "youruser"}',
    'Content-Type' => 'application/json'), 400, { password => $REQUIRED },
    'no password');
drf_ok(post_json('/api/token/', '{}', 'Content-Type' => 'application/json'),
    400, { username => $REQUIRED, password => $REQUIRED },
    'neither username nor password');
drf_ok(obtain('youruser', 'wrong password'), 401, $BAD_LOGIN,
    'a wrong password');
drf_ok(obtain('youruser', 'YOURPASSWORD'), 401, $BAD_LOGIN,
    'the password in another case');
drf_ok(obtain('nosuchuser', $pw), 401, $BAD_LOGIN, 'an unknown user');
for my $c ([obtain('nosuchuser', $pw), '/api/token/'],
    [refresh_jwt('garbage'), '/api/token/refresh/'])
{
    like(OAuth2Test::header($c->[0], 'WWW-Authenticate') // '',
        qr/^Bearer realm="api"/, "$c->[1] 401: WWW-Authenticate: Bearer "
        . 'realm="api", as simplejwt sends (RFC 9110 15.5.2 MUST)');
}
drf_ok(obtain('sleepy', 'sleepy password'), 401, $BAD_LOGIN,
    'an inactive user (user add --inactive)');
drf_ok(obtain('x' x 200, $pw), 401, $BAD_LOGIN, 'a 200-character username');
drf_ok(obtain('youruser', 'p' x 5000), 401, $BAD_LOGIN,
    'a 5000-character password');
{
    my $r = obtain('', $pw);
    is($r->{status}, 400, 'username "": 400');
    is_deeply($r->{json}, { username => ['This field may not be blank.'] },
        'username "": {"username": ["This field may not be blank."]}');
}
# DRF's CharField (and simplejwt's PasswordField, one) trims what it
# reads (str.strip()), and tells null from missing
for my $pad (["youruser ", " $pw"], ["\tyouruser\n", "$pw\x{3000}"],
    ["\x{a0}youruser", "\x{2003}$pw\x{85}"])
{
    my $r = post_json('/api/token/', JSON::PP->new->utf8->encode({
        username => $pad->[0], password => $pad->[1] }),
        'Content-Type' => 'application/json');
    is($r->{status}, 200, 'spaces around the username and the password are '
        . 'trimmed, as DRF does: 200') or diag($r->{raw});
    is(keys_of($r), 'access,refresh', '... a pair');
}
drf_ok(obtain('   ', $pw), 400, { username => ['This field may not be blank.'] },
    'a username of spaces: blank (400), not a failed login');
drf_ok(obtain("youruser", " \t "), 400, { password => ['This field may not be blank.'] },
    'a password of spaces: blank (400)');
drf_ok(post_json('/api/token/', '{"username": null, "password": null}',
    'Content-Type' => 'application/json'), 400,
    { username => ['This field may not be null.'], password => ['This field may not be null.'] },
    'null username and password: "This field may not be null."');
drf_ok(obtain('you ruser', $pw), 401, $BAD_LOGIN, 'a space inside is kept');

$r = post_json('/api/token/', '{"username": "youruser", "password": '
    . '"yourpassword"}', 'Content-Type' => 'text/plain');
drf_ok($r, 415, { detail => 'Unsupported media type "text/plain" in '
    . 'request.' }, 'Content-Type text/plain');
$r = post_json('/api/token/', '{"username": "youruser", "password": '
    . '"yourpassword"}');
is($r->{status}, 415, 'no Content-Type: 415');
$r = post_json('/api/token/', '{"username": "youruser", "password": '
    . '"yourpassword"}', 'Content-Type' => 'application/json',
    'Content-Type' => 'application/json');
is($r->{status}, 415, 'two Content-Type headers: 415 (R2)');
$r = $t->request('GET', '/api/token/', headers => \@CURL);
drf_ok($r, 405, { detail => 'Method "GET" not allowed.' }, 'GET /api/token/');
like(OAuth2Test::header($r, 'Allow') // '', qr/\bPOST\b/,
    'GET /api/token/: Allow: POST (R1)');
for my $m (qw(PUT DELETE PATCH)) {
    $r = $t->api($m, '/api/token/', body => '{"username": "youruser", '
        . '"password": "yourpassword"}');
    drf_ok($r, 405, { detail => "Method \"$m\" not allowed." },
        "$m /api/token/");
}
for my $c (['{"username": "youruser", "password": "yourpassword"',
    'truncated'], ['{"username": "youruser", "password": "yourpassword"}x',
    'trailing garbage'], ["{'username': 'youruser'}", 'single quotes'],
    ['{"username": "youruser", "username": "bob", "password": "x"}',
    'a duplicate key'], ['', 'an empty body'], ['[]', 'an array'],
    ['"youruser"', 'a string'], ['{"username": "you\u0000ruser", '
    . '"password": "yourpassword"}', 'a \u0000 escape'])
{
    my $r = post_json('/api/token/', $c->[0],
        'Content-Type' => 'application/json');
    is($r->{status}, 400, "malformed JSON ($c->[1]): 400");
    is($r->{json}{code}, 'parse_error',
        "malformed JSON ($c->[1]): code parse_error");
    like($r->{json}{detail} // '', qr/^JSON parse error/,
        "malformed JSON ($c->[1]): DRF's detail");
}

# form-encoded and other accepted shapes
$r = $t->post_form('/api/token/', 'username=youruser&password=yourpassword');
is($r->{status}, 200, 'a form-encoded body: 200');
is(keys_of($r), 'access,refresh', 'form-encoded: {"refresh", "access"}');
is($t->bearer_get('/me/', $r->{json}{access} // '')->{status}, 200,
    'form-encoded: the access token works');
$r = post_json('/api/token/', '{"username": "youruser", "password": '
    . '"yourpassword"}', 'Content-Type' => 'application/json; charset=utf-8');
is($r->{status}, 200, 'Content-Type application/json; charset=utf-8: 200');
$r = post_json('/api/token/', '{"username": "youruser", "password": '
    . '"yourpassword", "extra": [1, {"a": null}]}',
    'Content-Type' => 'application/json');
is($r->{status}, 200, 'an unknown member is ignored: 200');

# an app without the refresh_token grant: no refresh
$r = obtain('youruser', $pw, '/api/token-noref/');
is($r->{status}, 200, 'an app without refresh_token: 200');
is(keys_of($r), 'access', 'an app without refresh_token: only "access"');
my $nc = verified($r->{json}{access} // '', $ISS, 'the password-only app');
is($nc->{client_id}, $noref->{client_id},
    'password-only app: its client_id');
is($nc->{scope}, 'read', 'password-only app: its scope');

######################################################## refresh errors

drf_ok(refresh_jwt($access), 401, $NOT_VALID,
    'refresh with the access token');
drf_ok(refresh_jwt('garbage'), 401, $NOT_VALID, 'refresh with garbage');
drf_ok(refresh_jwt('a.b.c'), 401, $NOT_VALID, 'refresh with a.b.c');
drf_ok(refresh_jwt($refresh . 'x'), 401, $NOT_VALID,
    'refresh with one more character');
{
    my ($hs, $ps, $ss) = split /\./, $refresh;
    my (undef, $c) = parts($refresh);
    my %c = %$c;
    $c{user_id} = $bob->{id} + 0;
    $c{$_} += 0 for qw(exp iat);
    drf_ok(refresh_jwt("$hs." . b64u_enc($JSON->encode(\%c)) . ".$ss"), 401,
        $NOT_VALID, 'refresh with a tampered payload (user_id of bob)');
}
is(refresh_jwt(forge($refresh))->{status}, 200,
    'the refresh re-signed with the key by python3-jwt: 200 (the control)');
drf_ok(refresh_jwt(forge($refresh, exp => time - 31)), 401, $NOT_VALID,
    'refresh with exp 31 s in the past (re-signed)');
drf_ok(refresh_jwt(forge($refresh, token_type => 'access')), 401, $NOT_VALID,
    'refresh re-signed with token_type access');
drf_ok(refresh_jwt(forge($refresh, jti => 'A' x 43)), 401, $NOT_VALID,
    'refresh re-signed with an unknown jti');
drf_ok(refresh_jwt(forge($access, token_type => 'refresh')), 401, $NOT_VALID,
    'the access token re-signed with token_type refresh (its record is an '
    . 'access token)');
# the record expires with the refresh token, the JWT's leeway aside: 2 s
# after a 1 s refresh token (well within the 30 s leeway of its exp),
# before any expiry round (every 60 s) removes it, it is refused
{
    my $short = obtain('bob', 'bob password', '/api/token-short/');
    is($short->{status}, 200, 'a pair with a 1 s refresh token') or diag $short->{raw};
    sleep 2;
    drf_ok(refresh_jwt($short->{json}{refresh} // 'x'), 401, $NOT_VALID,
        'its refresh token 2 s on (its record has expired)');
}
drf_ok(post_json('/api/token/refresh/', '{}',
    'Content-Type' => 'application/json'), 400, { refresh => $REQUIRED },
    'refresh: no refresh member');
drf_ok(post_json('/api/token/refresh/', '{"refresh": ""}',
    'Content-Type' => 'application/json'), 400,
    { refresh => ['This field may not be blank.'] },
    'refresh: "" (DRF\'s CharField: blank, not missing)');
drf_ok(post_json('/api/token/refresh/', '{"refresh": null}',
    'Content-Type' => 'application/json'), 400,
    { refresh => ['This field may not be null.'] }, 'refresh: null');
is(refresh_jwt(" $refresh\n")->{status}, 200,
    'refresh: a refresh token with spaces around it is trimmed: 200');
drf_ok(post_json('/api/token/refresh/', '{"refresh": "  "}',
    'Content-Type' => 'application/json'), 400,
    { refresh => ['This field may not be blank.'] }, 'refresh: spaces (blank)');
$r = $t->request('GET', '/api/token/refresh/', headers => \@CURL);
drf_ok($r, 405, { detail => 'Method "GET" not allowed.' },
    'GET /api/token/refresh/');
like(OAuth2Test::header($r, 'Allow') // '', qr/^POST$/,
    'GET /api/token/refresh/: Allow: POST');
$r = post_json('/api/token/refresh/', '{"refresh": "' . $refresh . '"}',
    'Content-Type' => 'text/plain');
drf_ok($r, 415, { detail => 'Unsupported media type "text/plain" in '
    . 'request.' }, 'refresh with Content-Type text/plain');
$r = post_json('/api/token/refresh/', '{"refresh": ', 'Content-Type'
    => 'application/json');
is($r->{status}, 400, 'refresh with malformed JSON: 400');
is($r->{json}{code}, 'parse_error', 'refresh with malformed JSON: parse_error');
$r = $t->post_form('/api/token/refresh/', 'refresh=' . $refresh);
is($r->{status}, 200, 'refresh with a form-encoded body: 200');
drf_ok(refresh_jwt($refresh, '/api/token-noref/refresh/'), 401, $NOT_VALID,
    'a refresh of one app at another app\'s refresh location (R35)');

# the refresh token as a bearer token
is($t->bearer_get('/me/', $refresh)->{status}, 401,
    'the refresh JWT as a bearer token: 401 (R62)');

# revoked: /o/revoke_token/ takes the grant's access tokens along (R52)
{
    my $r = obtain('carol', 'carol password');
    my ($a1, $rt) = @{$r->{json} // {}}{qw(access refresh)};
    my $a2 = refresh_jwt($rt)->{json}{access} // '';
    is($t->bearer_get('/me/', $a2)->{status}, 200,
        'carol: the refreshed access token works');
    $r = $t->revoke($cid, $app->{client_secret}, $rt);
    is($r->{status}, 200, 'carol: /o/revoke_token/ with the refresh JWT: 200');
    drf_ok(refresh_jwt($rt), 401, $NOT_VALID, 'refresh after its revocation');
    is($t->bearer_get('/me/', $a1)->{status}, 401,
        'carol: the first access token of the revoked grant: 401 (R52)');
    is($t->bearer_get('/me/', $a2)->{status}, 401,
        'carol: the refreshed access token of the revoked grant: 401 (R52)');
}

# a deleted user, a disabled user (R39, R46, R70)
{
    my $r = obtain('bob', 'bob password');
    my ($a, $rt) = @{$r->{json} // {}}{qw(access refresh)};
    is($t->bearer_get('/me/', $a)->{status}, 200, 'bob: the access token works');
    my ($code, $out, $err) = $t->admin('user', 'delete', 'bob');
    is($code, 0, 'oauth2-admin user delete bob') or diag($err);
    drf_ok(refresh_jwt($rt), 401, $NOT_VALID,
        'refresh after the user is deleted');
    is($t->bearer_get('/me/', $a)->{status}, 401,
        'the deleted user\'s access token: 401 (R70)');
    drf_ok(obtain('bob', 'bob password'), 401, $BAD_LOGIN,
        'the deleted user logs in: no_active_account');

    $r = obtain('youruser', $pw);
    ($a, $rt) = @{$r->{json} // {}}{qw(access refresh)};
    ($code, $out, $err) = $t->admin('user', 'set', 'youruser', '--active',
        'false');
    is($code, 0, 'oauth2-admin user set youruser --active false') or diag($err);
    drf_ok(refresh_jwt($rt), 401, $NOT_VALID,
        'refresh after the user is disabled (R39)');
    is($t->bearer_get('/me/', $a)->{status}, 401,
        'the disabled user\'s access token: 401 (R46)');
    drf_ok(obtain('youruser', $pw), 401, $BAD_LOGIN,
        'the disabled user logs in: no_active_account');
    ($code, $out, $err) = $t->admin('user', 'set', 'youruser', '--active',
        'true');
    is($code, 0, 'oauth2-admin user set youruser --active true') or diag($err);
    is(obtain('youruser', $pw)->{status}, 200, 'enabled again: 200');
    drf_ok(refresh_jwt($rt), 401, $NOT_VALID,
        'enabled again: the old refresh token stays dead');
}

# the application disabled (R70): its refresh tokens give nothing, and
# give again once it is enabled (the race of a disable with a refresh
# that waits is EndpointsTest.AnApplicationChangedWhileAJwtRefreshWaits...)
{
    my $r = obtain('youruser', $pw);
    my $rt = ($r->{json} // {})->{refresh} // '';
    my ($code, undef, $err) = $t->admin('app', 'disable', $cid);
    is($code, 0, 'oauth2-admin app disable') or diag($err);
    drf_ok(refresh_jwt($rt), 401, $NOT_VALID,
        'refresh while the application is disabled (R70)');
    ($code, undef, $err) = $t->admin('app', 'enable', $cid);
    is($code, 0, 'oauth2-admin app enable') or diag($err);
    is(refresh_jwt($rt)->{status}, 200, 'enabled again: the refresh gives an access token');
}

######################################################## throttling (R17)

for my $n (1 .. 3) {
    drf_ok(obtain('hammered', "wrong $n", '/api/token-limited/'), 401,
        $BAD_LOGIN, "oauth2_client_auth_limit 3 2s: wrong password $n");
}
$r = obtain('hammered', 'hammered password', '/api/token-limited/');
is($r->{status}, 429, 'after 3 failures the right password: 429 (R17)');
is($r->{json}{code}, 'throttled', '429: code throttled');
like($r->{json}{detail} // '',
    qr/^Request was throttled\. Expected available in \d+ seconds?\.$/,
    '429: DRF\'s detail');
like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[1-9]\d*$/,
    '429: Retry-After');
is(obtain('youruser', $pw, '/api/token-limited/')->{status}, 200,
    'another account is not throttled');
sleep 2.5;
is(obtain('hammered', 'hammered password', '/api/token-limited/')->{status},
    200, 'after the window: 200');

######################################################## /api/status/

my $status = sub { $t->request('GET', '/api/status/', headers => [@CURL, @_]) };
drf_ok($status->(), 403, $DENIED, 'status without the header');
drf_ok($status->('X-Service-Token' => 'wrong'), 403, $DENIED,
    'status with a wrong token');
drf_ok($status->('X-Service-Token' => substr($STATUS_TOKEN, 0, 39)), 403,
    $DENIED, 'status with the token less its last character');
drf_ok($status->('X-Service-Token' => "${STATUS_TOKEN}x"), 403, $DENIED,
    'status with the token and one more character');
drf_ok($status->('X-Service-Token' => $STATUS_TOKEN,
    'X-Service-Token' => $STATUS_TOKEN), 403, $DENIED,
    'status with two X-Service-Token headers');
drf_ok($status->('X-Service-Token' => $STATUS_TOKEN,
    'X-Service-Token' => 'wrong'), 403, $DENIED,
    'status with the token and a wrong second header');
drf_ok($status->('Authorization' => "Bearer $STATUS_TOKEN"), 403, $DENIED,
    'status with the token as a Bearer token');
drf_ok($status->('X-Service-Tokens' => $STATUS_TOKEN), 403, $DENIED,
    'status with the token under another header name');
drf_ok($status->('x-service-token' => $STATUS_TOKEN), 200,
    { status => 'ok', service => 'pyauthservice' },
    'status: the header name is case-insensitive');
drf_ok($status->('X-Service-Token' => lc $STATUS_TOKEN eq $STATUS_TOKEN
    ? uc $STATUS_TOKEN : lc $STATUS_TOKEN), 403, $DENIED,
    'status: the token value is case-sensitive');
$r = $t->request('GET', "/api/status/?token=$STATUS_TOKEN", headers => \@CURL);
is($r->{status}, 403, 'status with the token in the query: 403');
drf_ok($t->request('POST', '/api/status/', headers => [@CURL,
    'X-Service-Token' => $STATUS_TOKEN]), 405,
    { detail => 'Method "POST" not allowed.' }, 'POST /api/status/');

# nginx -t: a token file shorter than 16 characters, a missing one
{
    my $file = $t->dir . '/t.conf';
    for my $c (["$K/short.token", 'a 15-character token file'],
        ["$K/missing.token", 'a missing token file'])
    {
        $t->write_config($t->default_http(extra_server =>
            "    location = /s/ { oauth2_status svc X-T $c->[0]; }\n"),
            file => $file);
        unlink $t->dir . '/nginx-t.log';
        my ($code, $out) = $t->nginx_t(file => $file);
        isnt($code, 0, "nginx -t: oauth2_status with $c->[1]: fails");
        like($out, qr/\[emerg\].*oauth2_status/,
            "nginx -t: $c->[1]: the message names oauth2_status");
    }
}

######################################################## the end

$t->stop;
my $store = '';
for my $f (glob($t->store . '/*')) {
    open my $fh, '<:raw', $f or next;
    local $/;
    $store .= <$fh> // '';
}
ok(length $store > 0, 'the store files were read');
ok(index($store, $STATUS_TOKEN) < 0, 'the status token is not in the store');
ok(index($store, $pw) < 0, 'the password is not in the store');
for my $log ('error.log', 'access.log') {
    my $text = do {
        open my $fh, '<', $t->dir . "/$log" or die "$log: $!";
        local $/;
        <$fh>;
    };
    # but for the request line of the test that put it in the query
    my $hits = () = $text =~ /\Q$STATUS_TOKEN\E/g;
    my $query = () = $text =~ /\?token=\Q$STATUS_TOKEN\E/g;
    is($hits - $query, 0, "the status token is not in $log");
    unlike($text, qr/\[alert\]|\[crit\]/, "$log: no alert or crit")
        if $log eq 'error.log';
    unlike($text, qr/" 5\d\d /, "$log: never a 5xx") if $log eq 'access.log';
}

$t->done_testing;
