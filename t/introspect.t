# RFC 7662 introspection at oauth2_introspect (issue 4 item 5; docs/security.md
# R55-R58, R1-R4, R9, catalogue 2.1 "revoke/introspect")
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'mobile', grant => ['password', 'refresh_token'],
    scope => 'read write admin');
my $other = $t->new_app(name => 'other');
my $rs = $t->new_app(name => 'resource-server', scope => 'introspection');
my $pub = $t->new_app(name => 'spa', public => 1);
my $short = $t->new_app(name => 'short', ttl => 1);
my $doomed = $t->new_app(name => 'doomed');
my $lim = $t->new_app(name => 'limited');
my $tv = $t->new_app(name => 'tv', public => 1,
    grant => ['urn:ietf:params:oauth:grant-type:device_code']);
my $alice = add_user($t, 'alice', 'Tr0ub4dor-alice-3');
add_user($t, $_, "Tr0ub4dor-$_-3") for qw(bob carol);

$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off; '
        . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';',
    extra_server => grant_locations(extra => <<'EOF')));
    location = /o/introspect-limited/ {
        oauth2_introspect;
        oauth2_client_auth_limit 2 60s;
    }
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device/ { oauth2_device; }
EOF
$t->run;

my $cct = $t->access_token($other);
my $pw = password_token($t, $app, 'alice', 'Tr0ub4dor-alice-3');
die "password grant: $pw->{raw}" unless $pw->{status} == 200;
my $user_at = $pw->{json}{access_token};
my $user_rt = $pw->{json}{refresh_token};

############################################### R57: active tokens

# a client's own client_credentials token
my $t0 = time;
my $r = introspect($t, $other, $cct);
is($r->{status}, 200, 'own client_credentials token: 200 (R57)');
$t->no_store_ok($r, 'introspection 200');
my $j = $r->{json} // {};
ok($j->{active} && $j->{active} == JSON::PP::true,
    'own token: "active": true (a JSON boolean)');
is($j->{client_id}, $other->{client_id}, 'own token: client_id');
is($j->{scope}, 'read write', 'own token: scope (the server default)');
is($j->{token_type}, 'Bearer', 'access token: token_type Bearer');
is($j->{sub}, $other->{client_id},
    'client_credentials token: sub is the client');
ok(!exists $j->{username}, 'client_credentials token: no username');
like($j->{exp} // '', qr/^\d+$/, 'exp is an integer (R57)');
like($j->{iat} // '', qr/^\d+$/, 'iat is an integer (R57)');
is(($j->{exp} // 0) - ($j->{iat} // 0), 36000,
    'exp - iat is the token lifetime (36000 s)');
ok(abs(($j->{iat} // 0) - $t0) <= 5, 'iat is now');

# a user's access token and refresh token (password grant)
$r = introspect($t, $app, $user_at, auth => 'post');
is($r->{status}, 200, 'user token, client_secret_post: 200 (R12)');
$j = $r->{json} // {};
ok($j->{active}, 'user access token: active');
is($j->{username}, 'alice', 'user access token: username');
is($j->{sub}, "$alice->{id}", 'user access token: sub is the user id');
is($j->{client_id}, $app->{client_id}, 'user access token: client_id');
is($j->{scope}, 'read write admin', 'user access token: scope');
# a token issued without resource: the default audience, the issuer
is($j->{aud}, 'http://127.0.0.1:' . $t->port, 'active token: aud is returned (R57)');
$r = introspect($t, $app, $user_rt);
$j = $r->{json} // {};
ok($j->{active}, 'user refresh token: active');
isnt($j->{token_type} // 'Bearer', 'Bearer',
    'refresh token: token_type says it is not a bearer access token');
is($j->{username}, 'alice', 'user refresh token: username');
is(($j->{exp} // 0) - ($j->{iat} // 0), 30 * 86400,
    'refresh token: exp - iat is 30 days, oauth2_refresh_token_ttl\'s '
    . 'default (R39)');

# a resource server: its allowed scope holds "introspection"
$r = introspect($t, $rs, $user_at);
ok($r->{json}{active},
    'a client allowed "introspection" sees another client\'s token (R56)');
is($r->{json}{client_id}, $app->{client_id},
    'resource server: the token\'s client_id, not its own');

############################################### R56: inactive tokens

my $none = introspect($t, $other, 'x' x 43);
inactive_ok($t, $none, 'unknown token');
is($none->{body}, '{"active": false}', 'unknown token: the exact body');
inactive_ok($t, introspect($t, $other, $user_at),
    "another client's token, caller without \"introspection\"");
is(introspect($t, $other, $user_at)->{body}, $none->{body},
    "another client's token: byte-identical to an unknown token (R56)");
# allowed scopes, but not "introspection": still only its own tokens
inactive_ok($t, introspect($t, $app, $cct),
    "another client's token, caller allowed 'read write admin' (R56)");
inactive_ok($t, introspect($t, $other, 'a<>b'), 'malformed token');
inactive_ok($t, introspect($t, $other, 'A' x 5000), '5000-byte token');
# RFC 7662 2.2: access and refresh tokens only: a device code, a
# credential of the token endpoint's, is no token to a resource server
my $dc = $t->post_form('/o/device_authorization/',
    OAuth2Test::form(client_id => $tv->{client_id}));
is($dc->{status}, 200, 'a device code') or diag $dc->{raw};
inactive_ok($t, introspect($t, $rs, $dc->{json}{device_code} // 'x'),
    'a live device code, asked by a resource server');

my $tok = $t->access_token($other);
$r = $t->revoke($other->{client_id}, $other->{client_secret}, $tok);
is($r->{status}, 200, 'revoke: 200');
for my $i (1 .. 4) {
    inactive_ok($t, introspect($t, $other, $tok),
        "revoked token, request $i (every worker)");
}

OAuth2Test::top_of_second();
my $st = $t->access_token($short);
ok(introspect($t, $short, $st)->{json}{active},
    'a token with a 1 s lifetime: active at first');
sleep 1.6;
inactive_ok($t, introspect($t, $short, $st), 'expired token (R56)');

my $p = password_token($t, $app, 'alice', 'Tr0ub4dor-alice-3')->{json};
my $n = refresh($t, $app, $p->{refresh_token});
is($n->{status}, 200, 'refresh: 200');
inactive_ok($t, introspect($t, $app, $p->{refresh_token}),
    'a rotated-out refresh token (R37)');
ok(introspect($t, $app, $n->{json}{refresh_token})->{json}{active},
    'its successor: active');

my $bob = password_token($t, $app, 'bob', 'Tr0ub4dor-bob-3')->{json};
my ($code, $out, $err) = $t->admin('user', 'set', 'bob', '--active', 'false');
is($code, 0, 'disable bob: exit 0') or diag($err);
inactive_ok($t, introspect($t, $app, $bob->{access_token}),
    "a disabled user's access token (R70)");
inactive_ok($t, introspect($t, $app, $bob->{refresh_token}),
    "a disabled user's refresh token (R39)");

my $carol = password_token($t, $app, 'carol', 'Tr0ub4dor-carol-3')->{json};
($code, $out, $err) = $t->admin('user', 'delete', 'carol');
is($code, 0, 'delete carol: exit 0') or diag($err);
inactive_ok($t, introspect($t, $app, $carol->{access_token}),
    "a deleted user's access token (R70)");

my $dt = $t->access_token($doomed);
# disabling keeps the application's tokens: they are inactive while it is
# disabled, and active again once it is enabled
($code, $out, $err) = $t->admin('app', 'disable', $doomed->{client_id});
is($code, 0, 'disable an app: exit 0') or diag($err);
inactive_ok($t, introspect($t, $rs, $dt),
    "a disabled application's token, asked by a resource server (R56, R70)");
($code, $out, $err) = $t->admin('app', 'enable', $doomed->{client_id});
is($code, 0, 'enable it again: exit 0') or diag($err);
ok(introspect($t, $rs, $dt)->{json}{active},
    'enabled again: its token is active');
($code, $out, $err) = $t->admin('app', 'delete', $doomed->{client_id});
is($code, 0, 'delete an app: exit 0') or diag($err);
inactive_ok($t, introspect($t, $rs, $dt),
    "a deleted application's token, asked by a resource server (R70)");

############################################### R55: authentication

$r = introspect($t, $other, $cct, auth => 'none');
$t->oauth_error_ok($r, 401, 'invalid_client', 'no client authentication (R55)');
ok(!exists $r->{json}{active}, 'unauthenticated: nothing about the token');
$r = $t->post_form('/o/introspect/', "token=$cct",
    Authorization => $t->basic($other->{client_id}, 'wrong'));
$t->oauth_error_ok($r, 401, 'invalid_client', 'wrong secret (R55)');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/^Basic realm=/,
    'wrong secret via Basic: WWW-Authenticate Basic (R15)');
$r = $t->post_form('/o/introspect/', "token=$cct",
    Authorization => $t->basic('no-such-client', 'x'));
$t->oauth_error_ok($r, 401, 'invalid_client', 'unknown client (R55)');
$r = introspect($t, $pub, $cct, auth => 'id');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'a public client cannot introspect (R55)');
$r = $t->post_form('/o/introspect/', "token=$cct",
    Authorization => "Bearer $cct");
$t->oauth_error_ok($r, 401, 'invalid_client',
    'a bearer token instead of client credentials: 401');
$r = $t->post_form('/o/introspect/', "token=$cct&client_id="
    . OAuth2Test::form_encode($other->{client_id}));
$t->oauth_error_ok($r, 401, 'invalid_client',
    'confidential client with client_id only (R18)');
$r = $t->post_form('/o/introspect/', "token=$cct&client_secret=x",
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request',
    'Basic plus a body client_secret (R13)');

############################################### request format (R1-R4)

$r = introspect($t, $other, undef);
$t->oauth_error_ok($r, 400, 'invalid_request', 'no token parameter');
$r = introspect($t, $other, '');
$t->oauth_error_ok($r, 400, 'invalid_request', 'empty token (R5)');
$r = $t->post_form('/o/introspect/', "token=$cct&token=$cct",
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'token twice (R4)');
$r = $t->post_form('/o/introspect/',
    "token=$cct&token_type_hint=refresh_token",
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
ok($r->{json}{active}, 'a wrong token_type_hint is ignored (RFC 7662 2.1)');
$r = $t->post_form('/o/introspect/', "token=$cct&extra=foobar",
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
ok($r->{json}{active}, 'an unknown parameter is ignored (R6)');
for my $m (qw(GET PUT DELETE PATCH OPTIONS)) {
    my $r = $t->request($m, '/o/introspect/', headers =>
        [Authorization => $t->basic($other->{client_id},
            $other->{client_secret})]);
    $t->oauth_error_ok($r, 405, 'invalid_request', "$m introspect (R1)");
    is(OAuth2Test::header($r, 'Allow'), 'POST', "$m introspect: Allow POST");
}
$r = $t->post_form("/o/introspect/?token=$cct", "token=$cct",
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'a query string (R3)');
$r = $t->post_form('/o/introspect/', "token=$cct",
    'Content-Type' => 'application/json',
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'JSON Content-Type (R2)');
$r = $t->post_form('/o/introspect/', "token=a%",
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'a bad escape (R7)');
$r = $t->post_form('/o/introspect/', "token=a&x=" . ('a' x 20000),
    Authorization => $t->basic($other->{client_id}, $other->{client_secret}));
$t->oauth_error_ok($r, 413, 'invalid_request', 'a 20 KiB body (R8)');
ok(introspect($t, $other, $cct)->{json}{active},
    'the introspected token is still active after all of that');

############################################### R58: throttling

my $L = '/o/introspect-limited/';
for my $i (1 .. 2) {
    $r = $t->post_form($L, "token=$cct",
        Authorization => $t->basic($lim->{client_id}, "wrong$i"));
    is($r->{status}, 401, "wrong secret #$i at the limited location: 401");
}
# failed client authentications count per address (3n), never lock the
# client id (n per client and address only for secrets from Django)
$r = introspect($t, $lim, $cct, path => $L);
is($r->{status}, 200, 'the right secret after 2 failures: 200, the client '
    . 'id is not locked (R58, R17)');
for my $i (1 .. 4) {
    $t->post_form($L, "token=$cct",
        Authorization => $t->basic("unknown-$i", 'x'));
}
$r = introspect($t, $lim, $cct, path => $L);
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'the right secret after 3n = 6 failures from the address: 429 '
    . '(R58, R17)');
like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
    'throttled introspection: Retry-After');
ok(!exists $r->{json}{active}, 'throttled: nothing about the token');
$r = $t->post_form($L, "token=$cct", -from => '127.0.0.2',
    Authorization => $t->basic($lim->{client_id}, $lim->{client_secret}));
is($r->{status}, 200, 'the same client from another address: 200');
$r = introspect($t, $other, $cct, path => $L);
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'another client after 3n = 6 failures from the address: 429 (R58)');
ok(introspect($t, $other, $cct)->{json}{active},
    'a location without the limit still answers');

$t->done_testing;
