# Audiences: RFC 8707 resource indicators (issue 14 item 4).  The
# resource parameter at the token endpoint (client_credentials, codes,
# refresh) and at the authorization endpoint binds a token to resources the
# application is registered for (oauth2-admin app add/update --resource);
# auth_oauth2 accepts it only where auth_oauth2_audience (else
# oauth2_jwt_audience, else the issuer) is one of them; introspection and
# JWT access tokens carry "aud".  A token issued without resource behaves
# as before at every location, opaque and JWT alike.  Bad resources get
# invalid_target or invalid_request, never a 500, and store nothing.
# docs/security.md R4, R5, R9, R46, R57, R62, R68.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;
use OAuth2Authorize;
use OAuth2Grants ();
use OAuth2Jwt qw(parts);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $f = OAuth2Authorize->new($t);
my $ISS = 'http://127.0.0.1:' . $t->port;
my $A = 'https://a.example/api';
my $B = 'https://b.example/api';
my $C = 'urn:example:c';
my $CB = 'https://client.example/cb';

my $EC = $t->ec_key;

OAuth2Authorize::user_add($t, 'alice', 'Tr0ub4dor-and-3');

# app($name, [grants], [resources], @more): app add through the CLI
sub app {
    my ($name, $grants, $res, @more) = @_;
    return $t->admin_json('app', 'add', '--name', $name,
        (map { ('--grant', $_) } @$grants),
        (map { ('--resource', $_) } @$res), @more);
}
my $svc = app('svc', ['client_credentials'], [$A, $B, $C]);
my $plain = app('plain', ['client_credentials'], []);
my $web = app('web', ['authorization_code', 'refresh_token'], [$A, $B, $C],
    '--redirect-uri', $CB);
my @EIGHT = map { "urn:example:r$_" } 1 .. 8;
my $many = app('many', ['client_credentials'], \@EIGHT);
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $pw = app('pw', ['password'], [$A]);
# a relying party (OpenID Connect) that also calls the resource server A
my $rp = app('rp', ['authorization_code', 'refresh_token'], [$A], '--redirect-uri', $CB,
    '--scope', 'openid email read');
# another realm's OpenID user and application (userinfo below)
$t->admin_json('realm', 'add', 'other');
$t->admin_json('--realm', 'other', 'user', 'add', '--username', 'alice', '--email',
    'alice@other.example', '--password', 'Tr0ub4dor-and-4', '--pbkdf2-iterations',
    $OAuth2Authorize::PBKDF2);
my $other_pw = $t->admin_json('--realm', 'other', 'app', 'add', '--name', 'other-pw',
    '--grant', 'password', '--scope', 'openid email');

is_deeply($svc->{resources}, [$A, $B, $C],
    'app add --resource: the application lists its resources');
is_deeply($plain->{resources}, [], 'app add without --resource: none');

my $html = $t->dir . '/html/';
my $server = <<"EOF";
    location = /jwt/token/ { oauth2_token; oauth2_access_token_format jwt; }
    # the EC key signs id_tokens too: nginx -t wants their JWKS
    location = /o/jwks/ { oauth2_jwks; }
    location /api-a/ {
        auth_oauth2 "api";
        auth_oauth2_audience $A;
        access_log %%DIR%%/aud.log aud;
        alias $html;
    }
    location /api-b/ {
        auth_oauth2 "api";
        auth_oauth2_audience $B;
        access_log %%DIR%%/aud.log aud;
        alias $html;
    }
    location /api-iss/ {
        auth_oauth2 "api";
        auth_oauth2_audience $ISS;
        alias $html;
    }
    location /jwtaud/ {
        auth_oauth2 "api";
        oauth2_jwt_audience $B;
        alias $html;
    }
    location /inh/ {
        auth_oauth2_audience $A;
        location /inh/deep/ { auth_oauth2 "api"; alias $html; }
    }
    location = /o/userinfo/ { oauth2_userinfo; }
EOF
# README "Audiences": auth_oauth2_audience set for a whole server (the
# resource server A's), whose userinfo location inherits it; and another
# realm, whose tokens userinfo must never take
my $more_servers = <<"EOF";
server {
    listen 127.0.0.1:%%PORT_1%%;
    auth_oauth2_audience $A;
    location = /o/userinfo/ { oauth2_userinfo; }
    location /srv-api/ { auth_oauth2 "api"; alias $html; }
}
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm other;
    oauth2_issuer http://127.0.0.1:%%PORT_2%%;
    location = /o/token/ { oauth2_token; }
    location = /jwt/token/ { oauth2_token; oauth2_access_token_format jwt; }
    location = /o/userinfo/ { oauth2_userinfo; }
}
EOF
my $http = "oauth2_jwt_key $EC;\n"
    . "log_format aud '\$uri \$status \$oauth2_error';\n";
my $conf = OAuth2Authorize::http_conf($t, extra_http => $http,
    extra_server => $server . $t->daemon_locations) . $more_servers;
$t->write_config($conf)->run;
$t->run_daemon('--pbkdf2-iterations', 1000);

my @LOCS = qw(/protected/ /api-a/ /api-b/ /api-iss/ /jwtaud/ /inh/deep/);

# status of $token at each location of @LOCS
sub where {
    my ($token) = @_;
    return { map { ($_ => $t->bearer_get($_, $token)->{status}) } @LOCS };
}

sub cc {
    my ($app, @extra) = @_;
    my %o = (scope => undef, @extra);
    my $path = delete $o{path};
    my $extra = delete $o{extra};
    return $t->token($app->{client_id}, $app->{client_secret},
        defined $path ? (path => $path) : (),
        defined $extra ? (extra => $extra) : ());
}

sub res { join '&', map { 'resource=' . OAuth2Test::form_encode($_) } @_ }

sub intro {
    my ($token, $app) = @_;
    return $f->introspect($token, $app)->{json} // {};
}

################################################ client_credentials

my $r = cc($svc, extra => res($A));
is($r->{status}, 200, 'client_credentials with resource A: 200');
my $at_a = $r->{json}{access_token};
is_deeply(where($at_a), { '/protected/' => 401, '/api-a/' => 200,
    '/api-b/' => 401, '/api-iss/' => 401, '/jwtaud/' => 401,
    '/inh/deep/' => 200 },
    'a token for A opens only the locations whose audience is A (R68)');
$r = $t->bearer_get('/api-b/', $at_a);
like(OAuth2Test::header($r, 'WWW-Authenticate') // '',
    qr/error="invalid_token"/, 'at B: 401 invalid_token');
is(intro($at_a, $svc)->{aud}, $A, 'introspection: aud is A (a string)');

$r = cc($svc, extra => res($A, $B, $A));
is($r->{status}, 200, 'resources A, B (and A again): 200');
my $at_ab = $r->{json}{access_token};
is_deeply(intro($at_ab, $svc)->{aud}, [$A, $B],
    'introspection: aud is [A, B], once each');
is($t->bearer_get('/api-a/', $at_ab)->{status}, 200, 'A and B: 200 at A');
is($t->bearer_get('/api-b/', $at_ab)->{status}, 200, 'A and B: 200 at B');
is($t->bearer_get('/protected/', $at_ab)->{status}, 401,
    'A and B: 401 at a location of the default audience');

# the log says why
my $log = OAuth2Test::_slurp($t->dir . '/aud.log');
like($log, qr{^/api-b/ 401 wrong_audience$}m,
    '$oauth2_error says wrong_audience for a token bound elsewhere');
like($log, qr{^/api-a/\S* 200 -$}m, 'and nothing when it is accepted');

################################################ unbound tokens: as before

my $at_plain = cc($svc)->{json}{access_token};
ok($at_plain, 'client_credentials without resource: a token');
is_deeply(where($at_plain), { '/protected/' => 200, '/api-a/' => 401,
    '/api-b/' => 401, '/api-iss/' => 200, '/jwtaud/' => 200,
    '/inh/deep/' => 401 },
    'an opaque token without resource: accepted wherever the default '
    . 'audience is, as before');
is(intro($at_plain, $svc)->{aud}, $ISS,
    'introspection: aud of a token without resource is the issuer');

my $jwt = cc($svc, path => '/jwt/token/')->{json}{access_token} // '';
my (undef, $claims) = parts($jwt);
is($claims->{aud}, $ISS, 'a JWT without resource: aud is the issuer');
is_deeply(where($jwt), { '/protected/' => 200, '/api-a/' => 401,
    '/api-b/' => 401, '/api-iss/' => 200, '/jwtaud/' => 401,
    '/inh/deep/' => 401 },
    'a JWT without resource: accepted where its aud is, as before');

################################################ JWTs

$jwt = cc($svc, path => '/jwt/token/', extra => res($A))->{json}{access_token}
    // '';
(undef, $claims) = parts($jwt);
is($claims->{aud}, $A, 'a JWT for A: aud is A (RFC 9068)');
is_deeply(where($jwt), { '/protected/' => 401, '/api-a/' => 200,
    '/api-b/' => 401, '/api-iss/' => 401, '/jwtaud/' => 401,
    '/inh/deep/' => 200 }, 'a JWT for A opens only A');
is(intro($jwt, $svc)->{aud}, $A, 'introspection of that JWT: aud A');
$jwt = cc($svc, path => '/jwt/token/', extra => res($A, $B))->{json}
    {access_token} // '';
(undef, $claims) = parts($jwt);
is_deeply($claims->{aud}, [$A, $B], 'a JWT for A and B: aud [A, B]');
is($t->bearer_get('/api-b/', $jwt)->{status}, 200, 'that JWT: 200 at B');
like(OAuth2Test::_slurp($t->dir . '/aud.log'), qr{^/api-a/ 401 wrong_audience$}m,
    'a JWT for elsewhere: wrong_audience in the log');

################################################ refused, nothing stored

my $before = OAuth2Grants::token_count($t);
my $long = 'https://a.example/' . ('x' x 1100);
my @bad = (
    [$svc, res('https://d.example/'), 'invalid_target', 'an unregistered resource'],
    [$plain, res($A), 'invalid_target', 'a client registered for none'],
    [$svc, res('/api'), 'invalid_target', 'a relative URI'],
    [$svc, res('a.example/api'), 'invalid_target', 'no scheme'],
    [$svc, res("$A#frag"), 'invalid_target', 'a fragment'],
    [$svc, res($long), 'invalid_target', 'an over-long URI'],
    [$svc, res("https://a.example/a b"), 'invalid_target', 'a space'],
    [$svc, 'resource=%ZZ', 'invalid_request', 'a bad escape'],
    [$svc, 'resource=%00', 'invalid_request', 'a NUL'],
    [$many, res(@EIGHT, 'urn:example:r9'), 'invalid_request',
        'nine resources'],
    [$svc, res($A) . '&scope=read&scope=read', 'invalid_request',
        'other parameters still may not repeat (R4)'],
);
for my $c (@bad) {
    my ($app, $extra, $error, $name) = @$c;
    $r = cc($app, extra => $extra);
    $t->oauth_error_ok($r, 400, $error, "client_credentials, $name");
}
is(OAuth2Grants::token_count($t), $before, 'the refused requests stored nothing');
$r = cc($many, extra => res(@EIGHT));
is($r->{status}, 200, 'eight resources: 200');
is(scalar @{intro($r->{json}{access_token}, $many)->{aud} // []}, 8,
    'and the token holds all eight');
# a flood of resource parameters: the form's limit (64 parameters) first
$before = OAuth2Grants::token_count($t);
$r = cc($svc, extra => join('&', (res($A)) x 70));
$t->oauth_error_ok($r, 400, 'invalid_request', '70 resource parameters');
$r = cc($svc, extra => join('&', (res($A)) x 40));
is($r->{status}, 200, '40 times the same resource: 200 (one resource)');
is(intro($r->{json}{access_token}, $svc)->{aud}, $A, '... and aud A');
is(OAuth2Grants::token_count($t), $before + 1,
    'the flood stored nothing, the 200 one token');
$r = cc($svc, extra => 'resource=');
is($r->{status}, 200, 'an empty resource counts as absent (R5)');
is(intro($r->{json}{access_token}, $svc)->{aud}, $ISS,
    'so the token has the default audience');

################################################ the password grant

$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => 'Tr0ub4dor-and-3',
    client_id => $pw->{client_id}, client_secret => $pw->{client_secret},
    resource => $A));
is($r->{status}, 200, 'the password grant with resource A: 200');
is($t->bearer_get('/api-a/', $r->{json}{access_token})->{status}, 200,
    'its token opens A');
is($t->bearer_get('/protected/', $r->{json}{access_token})->{status}, 401,
    'and not the default audience');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => 'Tr0ub4dor-and-3',
    client_id => $pw->{client_id}, client_secret => $pw->{client_secret},
    resource => $B));
$t->oauth_error_ok($r, 400, 'invalid_target',
    'the password grant with an unregistered resource');

################################################ authorize, code, refresh

my $session = $f->login(OAuth2Authorize::query(response_type => 'code',
    client_id => $web->{client_id}, redirect_uri => $CB), 'alice',
    'Tr0ub4dor-and-3');
ok($session, 'alice signs in');

# code(@resources): a code of an authorization request for them
sub code_for {
    my (@res) = @_;
    my $q = OAuth2Authorize::query(response_type => 'code',
        client_id => $web->{client_id}, redirect_uri => $CB, state => 's1')
        . join('', map { '&resource=' . OAuth2Authorize::pct($_) } @res);
    return scalar $f->code($q, $session);
}

sub redeem {
    my ($code, @res) = @_;
    return $f->redeem($code, client => $web, redirect_uri => $CB,
        extra => [map { (resource => $_) } @res]);
}

my $code = code_for($A, $B);
$before = OAuth2Grants::token_count($t);
$r = redeem($code, $C);
$t->oauth_error_ok($r, 400, 'invalid_target',
    'a code for A and B redeemed for C (registered, not in the grant)');
is(OAuth2Grants::token_count($t), $before, 'nothing stored');
$r = redeem($code, 'https://d.example/');
$t->oauth_error_ok($r, 400, 'invalid_target', 'redeemed for an unregistered one');
$r = redeem($code, $B);
is($r->{status}, 200, 'the same code redeemed, narrowed to B: 200');
my $at = $r->{json}{access_token};
my $rt = $r->{json}{refresh_token};
is(intro($at, $web)->{aud}, $B, 'the access token is for B only');
is($t->bearer_get('/api-b/', $at)->{status}, 200, 'it opens B');
is($t->bearer_get('/api-a/', $at)->{status}, 401, 'not A');
is_deeply(intro($rt, $web)->{aud}, [$A, $B],
    'the refresh token keeps the whole grant: A and B');

# refresh narrowing
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $rt, client_id => $web->{client_id},
    client_secret => $web->{client_secret}, resource => $C));
$t->oauth_error_ok($r, 400, 'invalid_target', 'refresh for C, outside the grant');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $rt, client_id => $web->{client_id},
    client_secret => $web->{client_secret}, resource => $A));
is($r->{status}, 200, 'refresh narrowed to A: 200 (the refused one did not '
    . 'rotate it)');
is(intro($r->{json}{access_token}, $web)->{aud}, $A, 'the new access token is for A');
is_deeply(intro($r->{json}{refresh_token}, $web)->{aud}, [$A, $B],
    'the new refresh token still holds A and B');
$r = $f->refresh($r->{json}{refresh_token}, $web);
is_deeply(intro($r->{json}{access_token}, $web)->{aud}, [$A, $B],
    'a refresh without resource: the whole grant again');

# a resource taken from the application since the grant is issued no more
# (as asking for it is refused), and a grant left with none is refused
# rather than issue a token without aud, good at every resource server
$t->admin_json('app', 'update', $web->{client_id}, '--resource', $A, '--resource', $C);
$r = $f->refresh($r->{json}{refresh_token}, $web);
is($r->{status}, 200, 'B taken from the application: a refresh without resource: 200');
is(intro($r->{json}{access_token}, $web)->{aud}, $A, '... its token for A only');
$t->admin_json('app', 'update', $web->{client_id}, '--resource', $C);
my $left = $f->refresh($r->{json}{refresh_token}, $web);
$t->oauth_error_ok($left, 400, 'invalid_target',
    'A taken too: the grant holds no resource the application still has');
$t->admin_json('app', 'update', $web->{client_id}, '--resource', $A, '--resource', $B,
    '--resource', $C);
$r = $f->refresh($r->{json}{refresh_token}, $web);
is($r->{status}, 200, '... the refused refresh spent nothing: registered again, 200');

$code = code_for();
$r = redeem($code);
is($r->{status}, 200, 'a code without resource: 200');
is($t->bearer_get('/protected/', $r->{json}{access_token})->{status}, 200,
    'its token opens the default audience\'s locations, as before');
is($t->bearer_get('/api-a/', $r->{json}{access_token})->{status}, 401,
    'and not A');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $r->{json}{refresh_token}, client_id => $web->{client_id},
    client_secret => $web->{client_secret}, resource => $A));
$t->oauth_error_ok($r, 400, 'invalid_target',
    'refresh of a grant without resources, for A');

# the authorization endpoint sends refusals back (RFC 8707 2)
for my $c (['https://d.example/', 'unregistered'], ['/relative', 'relative'],
    ["$A#x", 'with a fragment'])
{
    my $q = OAuth2Authorize::query(response_type => 'code',
        client_id => $web->{client_id}, redirect_uri => $CB, state => 'st',
        resource => $c->[0]);
    $r = $f->get($q, Cookie => $session);
    my %p = OAuth2Authorize::location_params($r);
    is($r->{status}, 303, "authorize with a resource $c->[1]: redirected back");
    is($p{error}, 'invalid_target', "... with error=invalid_target");
    is($p{state}, 'st', '... and the state');
}

################################################ the admin CLI

my ($code_rc, $out, $err) = $t->admin('app', 'add', '--name', 'x',
    '--grant', 'client_credentials', '--resource', '/relative');
isnt($code_rc, 0, 'app add --resource with a relative URI: refused');
like($err, qr/--resource/, '... naming --resource');
my $upd = $t->admin_json('app', 'update', $plain->{client_id},
    '--resource', $A);
is_deeply($upd->{resources}, [$A], 'app update --resource sets the resources');
$r = cc($plain, extra => res($A));
is($r->{status}, 200, 'and the application may now ask for A');
$upd = $t->admin_json('app', 'update', $plain->{client_id});
is_deeply($upd->{resources}, [], 'app update without --resource: none');
$t->oauth_error_ok(cc($plain, extra => res($A)), 400, 'invalid_target',
    'and A is refused again');
($code_rc) = $t->admin('app', 'update', 'no-such-app', '--resource', $A);
isnt($code_rc, 0, 'app update of an unknown application: refused');

################################################ the admin API

my $admin = $t->access_token($admin_app, scope => 'read write admin');
# The admin API is a resource of the default audience, as a location
# without auth_oauth2_audience: a token bound to another resource must
# not open it (R68), or the resource server at A, which receives the
# token, could replay it there with its client's or user's rights
# (staff's, for a first-party application's user).
$t->admin_json('app', 'update', $admin_app->{client_id}, '--resource', $A);
my $admin_at_a = $t->access_token($admin_app, scope => 'read write admin',
    extra => res($A));
$r = $t->api('GET', '/api/users/', token => $admin_at_a);
is($r->{status}, 401, 'the admin API with a token bound to A: 401 (R68)');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '',
    qr/error="invalid_token"/, '... invalid_token');
$r = $t->api('POST', '/api/applications/', token => $admin_at_a, json => {
    name => 'by-a', client_type => 'confidential',
    grant_types => ['client_credentials'] });
is($r->{status}, 401, '... and it makes no application with it');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => 'Tr0ub4dor-and-3',
    client_id => $pw->{client_id}, client_secret => $pw->{client_secret},
    resource => $A));
is($r->{status}, 200, "alice's token bound to A");
$r = $t->api('GET', '/api/users/', token => $r->{json}{access_token} // '');
is($r->{status}, 401, "a user's token bound to A at the admin API: 401");
$r = $t->api('GET', '/api/users/', token => $admin);
is($r->{status}, 200, 'the same application\'s token without resource: 200');
$t->admin_json('app', 'update', $admin_app->{client_id});
$r = $t->api('POST', '/api/applications/', token => $admin, json => {
    name => 'api-made', client_type => 'confidential',
    grant_types => ['client_credentials'], resources => [$A, $B, $A] });
is($r->{status}, 201, 'POST an application with resources: 201');
my $made = $r->{json} // {};
is_deeply($made->{resources}, [$A, $B], '... listed once each');
$r = cc($made, extra => res($B));
is($r->{status}, 200, 'it may ask for B');
my $path = "/api/applications/$made->{client_id}/";
$r = $t->api('PATCH', $path, token => $admin, json => { resources => [$C] });
is($r->{status}, 200, 'PATCH resources: 200');
is_deeply($r->{json}{resources}, [$C], '... now only C');
$t->oauth_error_ok(cc($made, extra => res($B)), 400, 'invalid_target',
    'B is refused after the PATCH');
$r = $t->api('PATCH', $path, token => $admin, json => { name => 'renamed' });
is_deeply($r->{json}{resources}, [$C], 'a PATCH of another field keeps them');
for my $c ([['/relative'], 'a relative URI'], [["$A#f"], 'a fragment'],
    ["$A", 'a string, not a list'], [[1], 'a number'],
    [[map { "urn:x:$_" } 1 .. 9], 'nine of them'])
{
    $r = $t->api('PATCH', $path, token => $admin,
        json => { resources => $c->[0] });
    is($r->{status}, 400, "PATCH resources with $c->[1]: 400");
    ok(ref $r->{json} eq 'HASH' && $r->{json}{resources},
        '... an error on the resources field');
}
$r = $t->api('GET', $path, token => $admin);
is_deeply($r->{json}{resources}, [$C], 'the refused PATCHes changed nothing');

################################################ userinfo (OIDC Core 5.3)

# The access token of an OpenID request is the credential for userinfo
# (OIDC Core 5.3), whatever resource servers RFC 8707 bound it to: a
# relying party that asked for resource=A gets its user's claims with it,
# and A's audience, set for a whole server, does not close that server's
# userinfo to plain OpenID tokens.  Every other check stays: A's token
# still opens no location of another audience, and userinfo still takes
# no id_token, refresh token, revoked token or token of another realm.
# Before, userinfo applied auth_oauth2's audience rule (R68) and answered
# 401 invalid_token.
my $P1 = $t->port(1);
my $P2 = $t->port(2);
sub userinfo {
    my ($token, $port) = @_;
    return $t->get('/o/userinfo/', Authorization => "Bearer $token",
        defined $port ? (-port => $port) : ());
}
# rp_tokens($path, @resources): the token response of an OpenID code
# flow asking for them, redeemed at $path
sub rp_tokens {
    my ($path, @res) = @_;
    my $q = OAuth2Authorize::query(response_type => 'code', client_id => $rp->{client_id},
        redirect_uri => $CB, scope => 'openid email read', state => 'u1')
        . join('', map { '&resource=' . OAuth2Authorize::pct($_) } @res);
    my $c = $f->code($q, $session);
    return $f->redeem($c, client => $rp, redirect_uri => $CB, path => $path)->{json} // {};
}
for my $case (['/o/token/', 'opaque'], ['/jwt/token/', 'JWT']) {
    my ($path, $kind) = @$case;
    my $tok = rp_tokens($path, $A);
    my (undef, $idc) = parts($tok->{id_token});
    ok($idc->{sub}, "$kind, resource=A with openid: an id_token");
    is(intro($tok->{access_token}, $rp)->{aud}, $A, "$kind: the access token is for A");
    $r = userinfo($tok->{access_token});
    is($r->{status}, 200, "$kind access token bound to A at userinfo: 200 (OIDC Core 5.3)")
        or diag($r->{body});
    is($r->{json}{sub}, $idc->{sub}, "$kind: userinfo's sub is the id_token's");
    is($r->{json}{email}, 'alice@example.com', "$kind: with the email scope's claims");
    is($t->bearer_get('/api-a/', $tok->{access_token})->{status}, 200, "$kind: it opens A");
    is($t->bearer_get('/api-b/', $tok->{access_token})->{status}, 401,
        "$kind: still not B (R68)");
    is($t->bearer_get('/protected/', $tok->{access_token})->{status}, 401,
        "$kind: nor the default audience's locations (R68)");
    is(userinfo($tok->{id_token})->{status}, 401, "$kind: the id_token at userinfo: 401");
    is(userinfo($tok->{refresh_token})->{status}, 401,
        "$kind: the refresh token at userinfo: 401 (R62)");
    # a plain OpenID token at the server whose audience is A
    my $plain_tok = rp_tokens($path);
    $r = userinfo($plain_tok->{access_token}, $P1);
    is($r->{status}, 200, "$kind OpenID token without resource at the userinfo of a server "
        . 'with auth_oauth2_audience A: 200') or diag($r->{body});
    is($r->{json}{sub}, $idc->{sub}, '... the same user');
    is($t->get('/srv-api/', Authorization => "Bearer $plain_tok->{access_token}",
        -port => $P1)->{status}, 401, "... that server's auth_oauth2 still refuses it (R68)");
    is($t->get('/srv-api/', Authorization => "Bearer $tok->{access_token}",
        -port => $P1)->{status}, 200, '... and takes the token bound to A');
    is(userinfo($tok->{access_token}, $P1)->{status}, 200,
        "... whose userinfo takes the token bound to A as well");
    # revoked: refused at userinfo as anywhere (R46)
    $r = $t->post_form('/o/revoke_token/', OAuth2Test::form(token => $tok->{access_token},
        client_id => $rp->{client_id}, client_secret => $rp->{client_secret}));
    is($r->{status}, 200, "$kind: the token bound to A revoked");
    is(userinfo($tok->{access_token})->{status}, 401, '... userinfo refuses it then');
}
# another realm's OpenID tokens (the same key signs its JWTs, under
# another issuer): 200 at their own realm's userinfo, 401 at this one's
for my $case (['/o/token/', 'opaque'], ['/jwt/token/', 'JWT']) {
    my ($path, $kind) = @$case;
    $r = $t->post_form($path, OAuth2Test::form(grant_type => 'password', username => 'alice',
        password => 'Tr0ub4dor-and-4', scope => 'openid email',
        client_id => $other_pw->{client_id}, client_secret => $other_pw->{client_secret}),
        -port => $P2);
    is($r->{status}, 200, "another realm's $kind OpenID token") or diag($r->{body});
    my $ot = $r->{json}{access_token} // '';
    is(userinfo($ot, $P2)->{status}, 200, "... opens its own realm's userinfo");
    is(userinfo($ot)->{status}, 401, "... not this realm's");
    is(userinfo($ot, $P1)->{status}, 401, "... nor this realm's with auth_oauth2_audience A");
}

################################################ nginx -t

for my $c (['/relative', 'a relative URI'], ["$A#f", 'a fragment'],
    ['"https://a.example/ x"', 'a space'])
{
    my $bad = $conf =~ s/auth_oauth2_audience \Q$B\E;/auth_oauth2_audience $c->[0];/r;
    my $file = $t->dir . '/bad.conf';
    $t->write_config($bad, file => $file);
    my ($rc, $text) = $t->nginx_t(file => $file);
    isnt($rc, 0, "nginx -t refuses auth_oauth2_audience with $c->[1]");
    like($text, qr/auth_oauth2_audience/, '... naming the directive');
}

$t->done_testing;
