# OpenID Connect for the code flow (issue 14 item 1) and remembered
# consent (item 2), through nginx: discovery at
# /.well-known/openid-configuration, the id_token (RS256 by default, an
# ES256 one for an application that asks), userinfo, prompt, max_age,
# login_hint, RP-initiated logout; the relying parties openid-client (npm)
# and authlib (Debian) drive the real login and consent pages.
# SECURITY-minded: the id_token's nonce and aud are checked by both
# libraries, which refuse a wrong nonce and a wrong audience; a consent
# revoked is asked again; a forged id_token_hint signs nobody out.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA ();
use JSON::PP ();
use MIME::Base64 qw(decode_base64url encode_base64url);
use Test::More;
use OAuth2Test;
use OAuth2Authorize;
use ClientScript;

OAuth2Test::require_build();

my $CLIENTS = "$FindBin::Bin/clients/interop";
my $NODE = '/usr/bin/node';
my $PYTHON = '/usr/bin/python3';

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $base = 'http://127.0.0.1:' . $t->port;
my $CB = "$base/callback";
my $BYE = "$base/signed-out";

for (['rsa', 'RSA', 'rsa_keygen_bits:2048'], ['ec', 'EC', 'ec_paramgen_curve:P-256'],
    ['ed', 'ED25519']) {
    my ($name, $alg, $opt) = @$_;
    my ($code) = $t->_run_cmd('openssl', 'genpkey', '-algorithm', $alg,
        $opt ? ('-pkeyopt', $opt) : (), '-out', "$dir/$name.pem");
    die "openssl genpkey $alg: $code" if $code;
    chmod 0644, "$dir/$name.pem";
}
# an HS256 key as well: it signs no id_token, and discovery never offers it
open my $hk, '>', "$dir/hs.key" or die "$dir/hs.key: $!";
print $hk 'h' x 40;
close $hk;

my ($user, $pw) = ('olivia', 'Harbour-Lantern-Quiet-42');
OAuth2Authorize::user_add($t, $user, $pw, '--first-name', 'Olivia',
    '--last-name', 'Ng');
my ($other_user, $other_pw) = ('pavel', 'Quiet-Harbour-Lantern-17');
OAuth2Authorize::user_add($t, $other_user, $other_pw);
my $SCOPE = 'openid profile email read write';
my %apps = map {
    $_ => { %{$t->new_app(name => "$_ rp",
        grant => ['authorization_code', 'refresh_token'], scope => $SCOPE,
        redirect_uris => [$CB], post_logout_redirect_uris => [$BYE])},
        redirect_uri => $CB, post_logout_redirect_uri => $BYE }
} qw(openid-client authlib perl);
my $es = $t->new_app(name => 'es256 rp', grant => 'authorization_code',
    scope => $SCOPE, redirect_uris => [$CB], id_token_alg => 'ES256');
my $ed = $t->new_app(name => 'eddsa rp', grant => 'authorization_code',
    scope => $SCOPE, redirect_uris => [$CB], id_token_alg => 'EdDSA');
my $plain = $t->new_app(name => 'plain oauth', grant => 'authorization_code',
    scope => 'read write', redirect_uris => [$CB]);

$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => "oauth2_jwt_key $dir/rsa.pem;\noauth2_jwt_key $dir/ec.pem;\n"
      . "oauth2_jwt_key $dir/ed.pem;\noauth2_jwt_key $dir/hs.key hmac;\n",
    extra_server => <<'EOF'))->run;
    location = /.well-known/openid-configuration { oauth2_metadata; }
    location = /o/jwks/ { oauth2_jwks; }
    location = /o/userinfo/ { oauth2_userinfo; }
    location = /o/logout/ { oauth2_end_session; }
    location = /jwt/token/ { oauth2_token; oauth2_access_token_format jwt; }
EOF

my $JSON = JSON::PP->new->canonical;
my $f = OAuth2Authorize->new($t);
sub params { OAuth2Authorize::location_params(@_) }
sub claims_of {
    my ($jwt) = @_;
    my ($h, $p) = split /\./, $jwt // '';
    return ($JSON->decode(decode_base64url($h // 'e30')),
        $JSON->decode(decode_base64url($p // 'e30')));
}

############################################################ discovery

my $m = $t->get('/.well-known/openid-configuration');
is($m->{status}, 200, 'discovery: 200');
my $d = $m->{json} // {};
is($d->{issuer}, $base, 'discovery: issuer');
is($d->{userinfo_endpoint}, "$base/o/userinfo/", 'discovery: userinfo_endpoint');
is($d->{end_session_endpoint}, "$base/o/logout/", 'discovery: end_session_endpoint');
is($d->{jwks_uri}, "$base/o/jwks/", 'discovery: jwks_uri');
is_deeply($d->{id_token_signing_alg_values_supported}, ['RS256', 'ES256', 'EdDSA'],
    'discovery: RS256 (required by OIDC), ES256 and EdDSA, not the HS256 key also configured');
is_deeply($d->{subject_types_supported}, ['public'], 'discovery: public subjects');
ok((grep { $_ eq 'openid' } @{$d->{scopes_supported} // []}), 'discovery: the openid scope');
is_deeply($d->{prompt_values_supported}, [qw(none login consent select_account)],
    'discovery: prompt values, select_account among them (OIDC Core 3.1.2.1)');
# OpenID Connect Discovery 3: an omitted request_uri_parameter_supported
# means true; the authorization endpoint takes no request object (below)
sub is_false { my ($v) = @_; return defined $v && JSON::PP::is_bool($v) && !$v }
ok(is_false($d->{request_parameter_supported}),
    'discovery: request_parameter_supported is false');
ok(is_false($d->{request_uri_parameter_supported}),
    'discovery: request_uri_parameter_supported is false, not left to mean true '
    . '(OIDC Discovery 3)');

############################################################ the relying parties

my %cfg = (issuer => $base, username => $user, password => $pw);
my %res;
sub run_client {
    my ($name, $app, @cmd) = @_;
    ClientScript::run($name, { %cfg, app => $app }, \%res, {}, @cmd);
}

ok(-f "$CLIENTS/node_modules/openid-client/package.json",
    'openid-client is installed (scripts/install-deps)');
run_client('openid-client', $apps{'openid-client'}, $NODE, "$CLIENTS/oidc.mjs");
my $uid = do {
    my ($code, $out) = $t->admin('user', 'show', $user);
    ($out =~ /"id":\s*(\d+)/)[0];
};
ok($uid, "the user's id") or diag("user show failed");

my $o = $res{'openid-client'};
is($o->{discovery}{userinfo}, "$base/o/userinfo/",
    'openid-client: its default discovery finds userinfo');
is($o->{discovery}{end_session}, "$base/o/logout/", 'openid-client: and end_session');
is_deeply($o->{code_flow}{seen}, ['login', 'consent'],
    'openid-client: the first flow signs in and asks consent');
is($o->{code_flow}{sub}, $uid, 'openid-client: sub is the user id');
is($o->{code_flow}{aud}, $apps{'openid-client'}{client_id}, 'openid-client: aud is the client');
is($o->{code_flow}{iss}, $base, 'openid-client: iss');
ok($o->{code_flow}{nonce_echoed}, 'openid-client: the nonce is echoed');
ok($o->{code_flow}{at_hash_ok}, 'openid-client: at_hash is the access token\'s');
ok($o->{code_flow}{refresh}, 'openid-client: a refresh token too');
ok(abs(($o->{code_flow}{auth_time} // 0) - time) < 60, 'openid-client: auth_time is the sign-in');
is($o->{userinfo}{sub}, $uid, 'openid-client: userinfo sub');
is($o->{userinfo}{preferred_username}, $user, 'openid-client: profile claims');
is($o->{userinfo}{given_name}, 'Olivia', 'openid-client: given_name');
is($o->{userinfo}{email}, "$user\@example.com", 'openid-client: email claim');
ok($o->{userinfo_wrong_subject}{thrown}, 'openid-client: refuses userinfo for another subject');
ok($o->{nonce_mismatch}{thrown}, 'openid-client: refuses an id_token with another nonce')
    or diag explain $o->{nonce_mismatch};
is_deeply($o->{remembered_consent}{seen}, [],
    'openid-client: the consent is remembered: no page the second time');
is_deeply($o->{prompt_none}{seen}, [], 'openid-client: prompt=none succeeds silently');
is_deeply($o->{prompt_login}{seen}, ['login'],
    'openid-client: prompt=login signs in again, consent remembered');
is_deeply($o->{max_age}{seen}, ['login'], 'openid-client: a session older than max_age signs in again');
ok($o->{max_age}{fresh}, 'openid-client: and auth_time is that new sign-in (the library checked max_age)');
ok($o->{refresh}{access} && $o->{refresh}{refresh}, 'openid-client: refresh');
is($o->{end_session_earlier_sign_in}{status}, 200,
    "openid-client: an id_token of the browser's earlier sign-in: a page")
    or diag explain $o->{end_session_earlier_sign_in};
ok($o->{end_session_earlier_sign_in}{asks}, '... that asks the user (RP-Initiated Logout 2)');
ok($o->{end_session_earlier_sign_in}{session_cookie}, '... and the session cookie is kept');
is($o->{end_session}{status}, 303,
    'openid-client: end session with the id_token of the current sign-in redirects');
is($o->{end_session}{to}, $BYE, 'openid-client: to the registered post_logout_redirect_uri');
is($o->{end_session}{state}, 'bye', 'openid-client: with the state');
ok(!$o->{end_session}{session_cookie}, 'openid-client: the session cookie is cleared');
is($o->{after_logout_prompt_none}{error}, 'login_required',
    'openid-client: after logout prompt=none gives login_required');

my $id_token = $o->{code_flow}{id_token};
my ($h, $c) = claims_of($id_token);
is($h->{alg}, 'RS256', 'id_token: RS256 by default');
ok($h->{kid}, 'id_token: a kid');
my $jwks = $t->get('/o/jwks/')->{json}{keys} // [];
ok((grep { ($_->{kid} // '') eq ($h->{kid} // '-') } @$jwks), 'id_token: its kid is in the JWKS');
ok($c->{exp} > $c->{iat} && $c->{exp} - $c->{iat} <= 3600, 'id_token: lives an hour at most');
is($c->{azp}, $apps{'openid-client'}{client_id}, 'id_token: azp');

run_client('authlib', $apps{authlib}, $PYTHON, "$CLIENTS/oidc_authlib.py");
my $a = $res{authlib};
is_deeply($a->{code_flow}{seen}, ['login', 'consent'], 'authlib: signs in and consents');
is($a->{code_flow}{sub}, $uid, 'authlib: sub');
is($a->{code_flow}{aud}, $apps{authlib}{client_id}, 'authlib: aud');
ok($a->{code_flow}{nonce} && $a->{code_flow}{at_hash}, 'authlib: nonce and at_hash present and valid');
ok($a->{userinfo}{same_sub}, 'authlib: userinfo is the same subject');
is($a->{userinfo}{email}, "$user\@example.com", 'authlib: userinfo email');
like($a->{nonce_mismatch}{message} // '', qr/nonce/, 'authlib: refuses another nonce');
like($a->{wrong_audience}{message} // '', qr/\b(aud|azp)\b/, 'authlib: refuses an id_token for another client');
like($a->{tampered_at_hash}{message} // '', qr/at_hash/,
    'authlib: at_hash binds the id_token to its access token');
is_deeply($a->{prompt_none}{seen}, [], 'authlib: prompt=none with a session and a consent');
is_deeply($a->{max_age}{seen}, ['login'], 'authlib: max_age signs in again');
ok($a->{max_age}{fresh}, 'authlib: auth_time fresh');

############################################################ by hand

my $app = $apps{perl};
my ($verifier, $challenge) = OAuth2Authorize::pkce();
sub q_for {
    my (%o) = @_;
    return OAuth2Authorize::query(client_id => $o{client}{client_id} // $app->{client_id},
        response_type => 'code', redirect_uri => $CB, scope => $o{scope} // 'openid email',
        state => 's1', code_challenge => $challenge, code_challenge_method => 'S256',
        map { $_ => $o{$_} } grep { !/^(client|scope)$/ } keys %o);
}

# prompt=none without a session
my $r = $f->get(q_for(prompt => 'none'));
is($r->{status}, 303, 'prompt=none, no session: back to the client');
is({params($r)}->{error}, 'login_required', 'prompt=none, no session: login_required');
# login_hint fills the username in
$r = $f->get(q_for(login_hint => 'olivia<x>'));
like($r->{body}, qr/name="username" value="olivia&lt;x&gt;"/, 'login_hint fills the username in, escaped');
my $session = $f->login(q_for(), $user, $pw);
ok($session, 'signed in');
$r = $f->get(q_for(prompt => 'none'), Cookie => $session);
is({params($r)}->{error}, 'consent_required',
    'prompt=none, signed in, never consented: consent_required');
for my $bad (['prompt', 'bogus'], ['prompt', 'none login'],
    ['prompt', 'none select_account'], ['prompt', 'select_account none'], ['max_age', '-1'],
    ['max_age', 'x'], ['nonce', 'n' x 600]) {
    $r = $f->get(q_for($bad->[0] => $bad->[1]), Cookie => $session);
    is({params($r)}->{error}, 'invalid_request', "$bad->[0]=$bad->[1]: invalid_request");
}
# OIDC Core 6.1, 6.2 and 3.1.2.6: a request object, by value or by
# reference, is refused back at the client, never ignored (its state and
# nonce would be lost), in the response_mode asked, with state and iss
for my $case (['request', 'eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6InMyIn0.', 'request_not_supported'],
    ['request_uri', 'https://client.example/req/1', 'request_uri_not_supported'])
{
    my ($name, $value, $error) = @$case;
    $r = $f->get(q_for($name => $value), Cookie => $session);
    is($r->{status}, 303, "$name: back to the client (OIDC Core 6)");
    my %p = params($r);
    is($p{_base}, $CB, "$name: to the redirect_uri");
    is($p{error}, $error, "$name: $error (OIDC Core 3.1.2.6)");
    is($p{state}, 's1', "$name: with the state");
    is($p{iss}, $base, "$name: and iss (RFC 9207)");
    ok(!defined $p{code}, "$name: no code");
    $r = $f->get(q_for($name => $value, response_mode => 'fragment'), Cookie => $session);
    like(OAuth2Test::header($r, 'Location') // '', qr/^\Q$CB\E#error=$error&/,
        "$name, response_mode=fragment: the error in the fragment, as asked");
    $r = $f->get(OAuth2Authorize::query(client_id => $app->{client_id},
        response_type => 'code', redirect_uri => "$base/elsewhere", scope => 'openid',
        state => 's1', code_challenge => $challenge, code_challenge_method => 'S256',
        $name => $value), Cookie => $session);
    is($r->{status}, 400, "$name with an unregistered redirect_uri: a 400 page (R20)");
    ok(!defined OAuth2Test::header($r, 'Location'), '... and no Location');
}
my $nonce = 'n-' . int(rand 1e9);
my ($code, $cr) = $f->code(q_for(nonce => $nonce), $session);
my $tok = $f->redeem($code, client => $app, redirect_uri => $CB, verifier => $verifier);
is($tok->{status}, 200, 'code redeemed');
my (undef, $ic) = claims_of($tok->{json}{id_token});
is($ic->{nonce}, $nonce, 'id_token: the nonce of this request');
is($ic->{aud}, $app->{client_id}, 'id_token: aud is this client, not another');
my $at = $tok->{json}{access_token};

# OIDC Core 3.1.2.1: max_age=0 is prompt=login.  A session signed in this
# very second is not older than 0 seconds, and must sign in again all the
# same (t/unit/endpoints_test.cpp holds the clock still for this); the
# sign-in then answers the request, without max_age, so never loops
my $fresh = $f->login(q_for(), $user, $pw);
$r = $f->get(q_for(max_age => 0, prompt => 'none'), Cookie => $fresh);
is({params($r)}->{error}, 'login_required',
    'max_age=0, prompt=none, a session of this very second: login_required');
ok(!defined {params($r)}->{code}, '... and no code');
$r = $f->get(q_for(max_age => 0), Cookie => $fresh);
like($r->{body} // '', qr/name="password"/, 'max_age=0 with a session: the sign-in page');
my ($again, $in0) = $f->login(q_for(max_age => 0), $user, $pw);
my $back = OAuth2Test::header($in0, 'Location') // '';
unlike($back, qr/max_age/, '... signed in: back to the request without max_age');
$r = $t->get("/o/authorize/$back", Cookie => $again);
is($r->{status}, 303, '... which then answers: no second sign-in');
ok({params($r)}->{code}, '... with a code (the consent remembered)');

# OIDC Core 3.1.2.1: prompt=select_account asks the user to choose an
# account.  A session holds one, and the sign-in page is the chooser: it
# is prompt=login (many relying parties send it by default, alone or as
# "login select_account"), and the sign-in then answers the request with
# a code.  Before, it was answered invalid_request.
for my $p ('select_account', 'login select_account', 'select_account consent') {
    $r = $f->get(q_for(prompt => $p), Cookie => $session);
    is($r->{status}, 200, "prompt=$p with a session: a page, not an error");
    like($r->{body} // '', qr/name="password"/, "prompt=$p: the sign-in page (the account chooser)");
    ok(!defined OAuth2Test::header($r, 'Location'), "prompt=$p: no redirect to the client");
}
$r = $f->get(q_for(prompt => 'select_account'));
like($r->{body} // '', qr/name="password"/, 'prompt=select_account without a session: the sign-in page');
my ($chosen, $in_sa) = $f->login(q_for(prompt => 'select_account'), $other_user, $other_pw);
$back = OAuth2Test::header($in_sa, 'Location') // '';
unlike($back, qr/prompt/, '... signed in (another account chosen): back without the prompt');
my ($sa_code) = $f->code(substr($back, 1), $chosen);
ok($sa_code, '... which then gives a code');
$r = $f->redeem($sa_code, client => $app, redirect_uri => $CB, verifier => $verifier);
my (undef, $sac) = claims_of($r->{json}{id_token});
my $pavel_uid = do {
    my (undef, $out) = $t->admin('user', 'show', $other_user);
    ($out =~ /"id":\s*(\d+)/)[0];
};
ok($pavel_uid && $pavel_uid ne $uid, "the other user's id");
is($sac->{sub}, $pavel_uid, '... for the account chosen: its id_token names it');

# a plain OAuth request (no openid) gets no id_token
($code) = $f->code(q_for(client => $plain, scope => 'read'), $session);
$r = $f->redeem($code, client => $plain, redirect_uri => $CB, verifier => $verifier);
ok($r->{json}{access_token} && !exists $r->{json}{id_token}, 'no openid scope: no id_token');
my $plain_at = $r->{json}{access_token};

# OIDC Core 3.1.2.1: redirect_uri is REQUIRED in an OpenID request, even
# where the application registered one only (R21 fills that one in for
# plain OAuth): missing or empty (R5), the 400 page, never a redirect
sub without_redirect_uri {
    my ($client, $scope, @more) = @_;
    return OAuth2Authorize::query(client_id => $client->{client_id}, response_type => 'code',
        scope => $scope, state => 's1', code_challenge => $challenge,
        code_challenge_method => 'S256', @more);
}
for my $case (['missing', []], ['empty', [redirect_uri => '']],
    ['missing, prompt=none', [prompt => 'none']])
{
    my ($how, $more) = @$case;
    $r = $f->get(without_redirect_uri($app, 'openid email', @$more), Cookie => $session);
    is($r->{status}, 400, "openid, redirect_uri $how: 400 (OIDC Core 3.1.2.1)");
    ok(!defined OAuth2Test::header($r, 'Location'), "openid, redirect_uri $how: no redirect (R20)");
    like($r->{body} // '', qr/redirect_uri is required/, "openid, redirect_uri $how: the page says so");
}
$r = $f->get(without_redirect_uri($app, 'email openid'), Cookie => $session);
is($r->{status}, 400, 'openid anywhere in the scope, no redirect_uri: 400');
# A request without scope is no OpenID request, whatever the
# application's default (which has openid here): R21's one registered
# URI stands in for redirect_uri, and the code brings no id_token (before,
# the granted default made it one: an OpenID sign-in without redirect_uri)
{
    my $q = OAuth2Authorize::query(client_id => $es->{client_id}, response_type => 'code',
        state => 's1', code_challenge => $challenge, code_challenge_method => 'S256');
    my ($nc) = $f->code($q, $session);
    my $nr = $f->redeem($nc, client => $es, verifier => $verifier);
    is($nr->{status}, 200, 'no scope, no redirect_uri, one registered: a code, redeemed');
    ok($nr->{json}{access_token} && !exists $nr->{json}{id_token},
        '... without an id_token (no OpenID request: OIDC Core 3.1.2.1)')
        or diag($nr->{body});
}
# plain OAuth keeps R21: the one registered URI
$r = $f->get(without_redirect_uri($plain, 'read', prompt => 'none'), Cookie => $session);
is($r->{status}, 303, 'plain OAuth, no redirect_uri, one registered: still answered (R21)');
is({params($r)}->{_base}, $CB, '... at the one registered URI');
ok({params($r)}->{code}, '... with a code');

# ES256 for the application that registered it
($code) = $f->code(q_for(client => $es), $session);
$r = $f->redeem($code, client => $es, redirect_uri => $CB, verifier => $verifier);
my ($eh) = claims_of($r->{json}{id_token});
my $es_id_token = $r->{json}{id_token};
is($eh->{alg}, 'ES256', 'id_token_signed_response_alg ES256: an ES256 id_token');
# OIDC Core 3.1.3.6: at_hash is the left half of the access token's hash,
# by the hash of the id_token's alg: SHA-256 for ES256, SHA-512 for EdDSA
sub left_half { my ($d) = @_; encode_base64url(substr($d, 0, length($d) / 2)) }
my (undef, $ec) = claims_of($r->{json}{id_token});
is($ec->{at_hash}, left_half(Digest::SHA::sha256($r->{json}{access_token})),
    'ES256 id_token: at_hash by SHA-256');
($code) = $f->code(q_for(client => $ed), $session);
$r = $f->redeem($code, client => $ed, redirect_uri => $CB, verifier => $verifier);
my ($dh, $dc) = claims_of($r->{json}{id_token});
is($dh->{alg}, 'EdDSA', 'id_token_signed_response_alg EdDSA: an EdDSA id_token');
is($dc->{at_hash}, left_half(Digest::SHA::sha512($r->{json}{access_token})),
    'EdDSA id_token: at_hash by SHA-512');

# userinfo
sub userinfo { $t->get('/o/userinfo/', defined $_[0] ? (Authorization => "Bearer $_[0]") : ()) }
$r = userinfo($at);
is($r->{status}, 200, 'userinfo: 200');
is_deeply([sort keys %{$r->{json}}], [qw(email email_verified sub)],
    'userinfo: the email scope gives email claims only');
# OIDC Core 5.4: the claims of the scopes granted, no more: openid alone
# gives the subject, never the email the user has
($code) = $f->code(q_for(scope => 'openid'), $session);
$r = $f->redeem($code, client => $app, redirect_uri => $CB, verifier => $verifier);
$r = userinfo($r->{json}{access_token});
is($r->{status}, 200, 'userinfo, openid alone: 200');
is_deeply([sort keys %{$r->{json}}], ['sub'], 'userinfo, openid alone: sub only, no email');
$r = userinfo(undef);
is($r->{status}, 401, 'userinfo without a token: 401');
is(OAuth2Test::header($r, 'WWW-Authenticate'), 'Bearer', 'userinfo without a token: a bare challenge');
$r = userinfo('not-a-token');
is($r->{status}, 401, 'userinfo, unknown token: 401');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/error="invalid_token"/,
    'userinfo, unknown token: invalid_token');
$r = userinfo($plain_at);
is($r->{status}, 403, 'userinfo, a token without openid: 403');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/insufficient_scope/,
    'userinfo, without openid: insufficient_scope');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/scope="openid"/,
    'userinfo, without openid: the challenge names the scope (RFC 6750 3.1)');
my $cc_app = $t->new_app(grant => 'client_credentials', scope => 'openid read');
$r = userinfo($t->access_token($cc_app));
is($r->{status}, 401, "userinfo, a client's own token (no user): 401");
$r = $t->request('DELETE', '/o/userinfo/', headers => [Authorization => "Bearer $at"]);
is($r->{status}, 405, 'userinfo: DELETE is 405');

############################################################ end session

sub logout { $t->get('/o/logout/?' . OAuth2Authorize::query(@_), Cookie => $session) }
# without an id_token_hint the user is asked first
$r = logout();
is($r->{status}, 200, 'end session without a hint: a page');
like($r->{body}, qr/Sign out\?/, 'end session without a hint: asks the user');
my $csrf = OAuth2Authorize::csrf_field($r);
$r = $t->post_form('/o/logout/', OAuth2Test::form(action => 'logout', csrf_token => 'wrong'),
    Cookie => $session);
is($r->{status}, 303, 'a logout POST with a wrong csrf_token: 303, on as a GET');
unlike(OAuth2Test::header($r, 'Location') // '', qr/csrf_token|action/,
    '... which carries neither the form\'s CSRF value nor its action');
unlike(join(' ', @{$r->{headers}{'set-cookie'} // []}), qr/oauth2_session=/,
    '... and keeps the session cookie');
like($t->get('/o/logout/' . (OAuth2Test::header($r, 'Location') // ''), Cookie => $session)
    ->{body}, qr/Sign out\?/, '... where the user is asked again');
is($f->get(q_for(prompt => 'none'), Cookie => $session)->{status}, 303,
    'and the session lives');
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{code} ? 1 : 0, 1,
    'the session still gets codes');
# a forged hint
my ($fh, $fp, $fs) = split /\./, $tok->{json}{id_token};
$r = logout(id_token_hint => "$fh." . encode_base64url('{"sub":"1","aud":"x"}') . ".$fs");
is($r->{status}, 400, 'a forged id_token_hint: 400');
$r = logout(id_token_hint => $tok->{json}{id_token}, post_logout_redirect_uri => "$base/elsewhere");
is($r->{status}, 400, 'an unregistered post_logout_redirect_uri: 400, never a redirect');
ok(!defined OAuth2Test::header($r, 'Location'), 'and no Location');
$r = logout(post_logout_redirect_uri => $BYE);
is($r->{status}, 400, 'post_logout_redirect_uri without client_id or hint: 400');
$r = logout(id_token_hint => $tok->{json}{id_token}, client_id => $es->{client_id});
is($r->{status}, 400, "client_id other than the hint's audience: 400");
# another user's id_token_hint is no confirmation: a link carrying
# anyone's id_token must not sign this user out unasked (logout CSRF)
my $pavel = $f->login(q_for(), $other_user, $other_pw);
($code) = $f->code(q_for(), $pavel);
my $pavel_tok = $f->redeem($code, client => $app, redirect_uri => $CB, verifier => $verifier);
ok($pavel_tok->{json}{id_token}, "another user's id_token");

# OIDC Core 3.1.2.1: an id_token_hint asks about its own user.  Signed in
# as another, prompt=none answers login_required (an RP renewing in the
# background is never handed someone else's code), and without it the
# browser signs in again, after which the hint is dropped
$r = $f->get(q_for(prompt => 'none', id_token_hint => $pavel_tok->{json}{id_token}),
    Cookie => $session);
is({params($r)}->{error}, 'login_required',
    "prompt=none with another user's id_token_hint: login_required");
ok(!defined {params($r)}->{code}, '... and no code');
$r = $f->get(q_for(id_token_hint => $pavel_tok->{json}{id_token}), Cookie => $session);
like($r->{body} // '', qr/name="password"/,
    "another user's id_token_hint, interactive: the sign-in page");
my (undef, $in) = $f->login(q_for(id_token_hint => $pavel_tok->{json}{id_token}),
    $other_user, $other_pw);
is($in->{status}, 303, '... signed in there: back to the authorization');
unlike(OAuth2Test::header($in, 'Location') // '', qr/id_token_hint/,
    '... without the hint (else signing in as anyone else would loop)');
# the names as the request reads them: "pr%6Fmpt" is prompt and
# "id%5Ftoken%5Fhint" id_token_hint, dropped as those are (kept, each
# sign-in would ask for another, for ever)
for my $enc (['pr%6Fmpt=login', 'pr%6Fmpt'],
             ['id%5Ftoken%5Fhint=' . $pavel_tok->{json}{id_token}, 'id%5Ftoken'],
             ['m%61x_age=0', 'm%61x_age']) {
    (undef, $in) = $f->login(q_for() . "&$enc->[0]", $other_user, $other_pw);
    is($in->{status}, 303, "$enc->[1] signs in: back to the authorization");
    unlike(OAuth2Test::header($in, 'Location') // '', qr/\Q$enc->[1]\E/,
        "... without $enc->[1], which the request read as its decoded name");
}
$r = $f->get(q_for(prompt => 'none', id_token_hint => $tok->{json}{id_token}),
    Cookie => $session);
ok({params($r)}->{code}, "prompt=none with the signed-in user's own id_token_hint: a code");
for my $bad (['not an id_token' => 'not.a.jwt'],
             ["another client's id_token" => $es_id_token]) {
    $r = $f->get(q_for(prompt => 'none', id_token_hint => $bad->[1]), Cookie => $session);
    is({params($r)}->{error}, 'invalid_request', "id_token_hint $bad->[0]: invalid_request");
}
$r = logout(id_token_hint => $pavel_tok->{json}{id_token});
like($r->{body}, qr/Sign out\?/, "another user's id_token_hint: the user is asked");
unlike(OAuth2Test::header($r, 'Set-Cookie') // '', qr/oauth2_session=;/,
    "another user's id_token_hint: the session cookie is kept");
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{code} ? 1 : 0, 1,
    'and the session still gets codes');
# the user's own access token, a JWT signed with the same key as her
# id_tokens (RFC 9068), is no id_token: any resource server she used it
# at could otherwise sign her out unasked with a link
($code) = $f->code(q_for(), $session);
my $jwt_tok = $f->redeem($code, client => $app, redirect_uri => $CB, verifier => $verifier,
    path => '/jwt/token/');
my (undef, $jc) = claims_of($jwt_tok->{json}{access_token});
is($jc->{sub}, $ic->{sub}, "an access JWT of the session's user (the id_token's sub)");
$r = logout(id_token_hint => $jwt_tok->{json}{access_token});
is($r->{status}, 400, "the user's access JWT as id_token_hint: 400");
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{code} ? 1 : 0, 1,
    'and the session still gets codes');
# an id_token of an earlier sign-in of the same user is no confirmation
# either: it sits in browser histories, access logs and any RP it went
# to (RP-Initiated Logout 2: "does not belong to the current OP session")
sleep 1;  # auth_time is in seconds
my $later = $f->login(q_for(), $user, $pw);
$r = $t->get('/o/logout/?' . OAuth2Authorize::query(id_token_hint => $tok->{json}{id_token}),
    Cookie => $later);
like($r->{body}, qr/Sign out\?/, "an id_token of the user's earlier sign-in: the user is asked");
unlike(OAuth2Test::header($r, 'Set-Cookie') // '', qr/oauth2_session=;/,
    '... the session cookie is kept');
is({params($f->get(q_for(prompt => 'none'), Cookie => $later))}->{code} ? 1 : 0, 1,
    '... and the later session still gets codes');
($code) = $f->code(q_for(), $later);
my $later_tok = $f->redeem($code, client => $app, redirect_uri => $CB, verifier => $verifier);
$r = $t->get('/o/logout/?' . OAuth2Authorize::query(id_token_hint => $later_tok->{json}{id_token}),
    Cookie => $later);
unlike($r->{body}, qr/Sign out\?/, "an id_token of this very sign-in: signed out at once");
like(OAuth2Test::header($r, 'Set-Cookie') // '', qr/oauth2_session=;/,
    '... the session cookie is cleared');
is({params($f->get(q_for(prompt => 'none'), Cookie => $later))}->{error}, 'login_required',
    '... and that session no longer signs in');
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{code} ? 1 : 0, 1,
    '... the earlier one, which was not asked about, still does');
# the confirmed POST
$r = $t->post_form('/o/logout/', OAuth2Test::form(action => 'logout', csrf_token => $csrf),
    Cookie => $session);
is($r->{status}, 200, 'the confirmed sign-out: the signed-out page');
like(OAuth2Test::header($r, 'Set-Cookie') // '', qr/oauth2_session=;.*Max-Age=0/,
    'the session cookie is cleared');
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{error}, 'login_required',
    'the old session cookie no longer signs in');

############################################################ POSTed requests

# OIDC Core 3.1.2.1 and RP-Initiated Logout 2: the OP must take both
# requests POSTed as forms (ASP.NET Core's FormPost, mod_auth_openidc's
# POST).  Another site's POST carries no SameSite=Lax session cookie, so
# each goes on as a GET of the same parameters (303 to the endpoint's own
# URL), where it does.  Before, a POSTed authorization request was "client_id
# is missing", and a POSTed logout told the RP "signed out" and left the
# session alive.
$session = $f->login(q_for(), $user, $pw);
my $posted = q_for(prompt => 'none');
$r = $t->post_form('/o/authorize/', $posted);
is($r->{status}, 303, 'a POSTed authorization request: 303');
my $loc = OAuth2Test::header($r, 'Location') // '';
my %want = params("?$posted");
my %got = params($loc);
delete @want{'', '_base'};
delete @got{'', '_base'};
like($loc, qr/^\?/, '... to the endpoint\'s own URL');
is_deeply(\%got, \%want, '... with the same parameters');
$r = $t->get("/o/authorize/$loc", Cookie => $session);
is($r->{status}, 303, '... which, with the session cookie, signs in');
ok({params($r)}->{code}, '... and gives a code');
$r = $t->post_form('/o/authorize/', OAuth2Test::form(action => 'login',
    username => $user, password => $pw));
is($r->{status}, 400, 'a sign-in form POSTed without the request: still refused');
$r = $t->request('POST', '/o/authorize/', body => $posted,
    headers => ['Content-Type' => 'text/plain']);
is($r->{status}, 400, 'a POSTed authorization request that is no form: 400');

my $lq = OAuth2Test::form(client_id => $app->{client_id},
    post_logout_redirect_uri => $BYE, state => 'p');
$r = $t->post_form('/o/logout/', $lq);
is($r->{status}, 303, 'a POSTed end-session request: 303');
$loc = OAuth2Test::header($r, 'Location') // '';
like($loc, qr/^\?/, '... to the endpoint\'s own URL');
unlike(join(' ', @{$r->{headers}{'set-cookie'} // []}), qr/oauth2_session=;/,
    '... not yet signed out');
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{code} ? 1 : 0, 1,
    '... the session lives');
$r = $t->get("/o/logout/$loc", Cookie => $session);
like($r->{body}, qr/Sign out\?/, 'followed with the session cookie: the user is asked');
$csrf = OAuth2Authorize::csrf_field($r);
$r = $t->post_form("/o/logout/$loc", OAuth2Test::form(action => 'logout',
    csrf_token => $csrf), Cookie => $session);
is($r->{status}, 303, 'the confirmation keeps the parameters: 303');
is(OAuth2Test::header($r, 'Location'), "$BYE?state=p",
    '... back to the registered post_logout_redirect_uri with the state');
is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{error},
    'login_required', '... and the session is ended');
$r = $t->post_form('/o/logout/', OAuth2Test::form(client_id => $app->{client_id},
    post_logout_redirect_uri => "$base/elsewhere"));
is($r->{status}, 400, 'a POSTed end-session request with an unregistered '
    . 'post_logout_redirect_uri: 400, never a redirect');

# Another site's POST carries no SameSite=Lax session cookie, and a POST
# other than the page's own confirmation signs no one out, whatever its
# shape: an empty form, a field named action, a query beside the form
# (before, these were told "signed out" with a Set-Cookie that deleted
# the session cookie, which the browser applies on a top-level
# navigation: another site signed the user out with one POST).  Each goes
# on as a GET of the query and the form together.
$session = $f->login(q_for(), $user, $pw);
for my $c (['an empty form', '/o/logout/', '', '?'],
           ['action=x', '/o/logout/', 'action=x', '?'],
           ['a query', "/o/logout/?client_id=$app->{client_id}", '',
               "?client_id=$app->{client_id}"],
           ['a query and a form', "/o/logout/?client_id=$app->{client_id}",
               OAuth2Test::form(state => 'q r', action => 'logout'),
               "?client_id=$app->{client_id}&state=q%20r"]) {
    my ($what, $path, $body, $to) = @$c;
    $r = $t->post_form($path, $body);
    is($r->{status}, 303, "a logout POST without the cookie, $what: 303");
    is(OAuth2Test::header($r, 'Location'), $to, "... to the endpoint as a GET ($to)");
    unlike(join(' ', @{$r->{headers}{'set-cookie'} // []}), qr/oauth2_session=/,
        '... and no Set-Cookie deleting the session cookie');
    is({params($f->get(q_for(prompt => 'none'), Cookie => $session))}->{code} ? 1 : 0, 1,
        '... the session lives');
}
$r = $t->get('/o/logout/');
like($r->{body}, qr/Signed out/, 'a GET without the cookie: the signed-out page');
unlike(join(' ', @{$r->{headers}{'set-cookie'} // []}), qr/oauth2_session=/,
    '... and no Set-Cookie for a cookie it did not bring');

############################################################ consent

# consent is per client and scope: a wider scope asks again
$session = $f->login(q_for(), $user, $pw);
$r = $f->get(q_for(scope => 'openid email profile'), Cookie => $session);
like($r->{body}, qr/<h1>Authorize/, 'a wider scope than remembered asks again');
$r = $f->get(q_for(scope => 'openid'), Cookie => $session);
is($r->{status}, 303, 'a narrower scope than remembered: no page');
ok({params($r)}->{code}, 'and a code');
$r = $f->get(q_for(prompt => 'consent'), Cookie => $session);
like($r->{body}, qr/<h1>Authorize/, 'prompt=consent asks even when remembered');

# a public client sent back to loopback could be any program on the
# device (RFC 8252 8.6): its consent is asked every time
my $native = $t->new_app(name => 'native', public => 1, grant => 'authorization_code',
    scope => $SCOPE, redirect_uris => ['http://127.0.0.1/cb']);
my $nq = OAuth2Authorize::query(client_id => $native->{client_id}, response_type => 'code',
    redirect_uri => 'http://127.0.0.1:5555/cb', scope => 'openid', state => 'n',
    code_challenge => $challenge, code_challenge_method => 'S256');
($code) = $f->code($nq, $session);
ok($code, 'a native public client: allowed once');
$r = $f->get($nq, Cookie => $session);
like($r->{body}, qr/<h1>Authorize/, 'a native public client: asked again the next time');
$r = $f->get("$nq&prompt=none", Cookie => $session);
is({params($r)}->{error}, 'consent_required', 'a native public client: prompt=none gives consent_required');

############################################################ nginx -t: jwks_uri

# OpenID Connect Discovery 3: jwks_uri is REQUIRED, and without it no
# relying party can verify an id_token (openid-client throws).  A realm
# whose authorization endpoint gets id_tokens signed (a key that signs
# them at a token endpoint, or at the metadata) must serve the JWKS at a
# prefix or exact location, which its metadata names; nginx -t says so.
my $JN = 0;
sub jwks_conf {
    my ($http, @servers) = @_;
    my $file = "$dir/jwks-" . ++$JN . '.conf';
    my $port = 0;
    $t->write_config("oauth2_store %%STORE%%;\n$http\n" . join('', map {
        my ($realm, $body) = @$_;
        "server {\n    listen 127.0.0.1:%%PORT_" . ++$port . "%%;\n"
            . ($realm ? "    oauth2_realm $realm;\n" : '')
            . "    oauth2_issuer http://jwks-$port.example;\n$body}\n"
    } @servers), file => $file);
    return $t->nginx_t(file => $file);
}
my $FLOW = "    location = /o/authorize/ { oauth2_authorize; }\n"
    . "    location = /o/token/ { oauth2_token; }\n"
    . "    location = /.well-known/openid-configuration { oauth2_metadata; }\n";
my $RSA = "oauth2_jwt_key $dir/rsa.pem;";
my $JWKS = "    location = /o/jwks/ { oauth2_jwks; }\n";
my $MISSING = '"oauth2_authorize" with an "oauth2_jwt_key" that signs id_tokens needs '
    . 'a prefix or exact location with "oauth2_jwks" in its realm';
$MISSING = qr/\[emerg\][^\n]*\Q$MISSING\E/;
my ($jcode, $jout) = jwks_conf($RSA, ['', $FLOW]);
isnt($jcode, 0, 'an authorization endpoint and a key that signs id_tokens, no oauth2_jwks: '
    . 'nginx -t fails (OIDC Discovery 3: jwks_uri is required)');
like($jout, qr/$MISSING \("default"\)/, '... naming the realm and oauth2_jwks') or diag($jout);
($jcode, $jout) = jwks_conf($RSA, ['', $FLOW . "    location ~ ^/jwks { oauth2_jwks; }\n"]);
isnt($jcode, 0, 'oauth2_jwks in a regex location only (no jwks_uri to name): nginx -t fails');
like($jout, $MISSING, '... saying a prefix or exact location') or diag($jout);
($jcode, $jout) = jwks_conf($RSA, ['', $FLOW . $JWKS]);
is($jcode, 0, 'with an oauth2_jwks location: nginx -t passes') or diag($jout);
($jcode, $jout) = jwks_conf('', ['', "    location = /o/authorize/ { oauth2_authorize; }\n"
    . "    location = /o/token/ { oauth2_token; }\n"
    . "    location = /jwt/token/ { oauth2_token; $RSA }\n"]);
isnt($jcode, 0, 'the key at a second token endpoint of the realm only (it redeems the '
    . "realm's codes too): nginx -t fails");
like($jout, $MISSING, '... saying so') or diag($jout);
($jcode, $jout) = jwks_conf('', ['', "    location = /o/authorize/ { oauth2_authorize; }\n"
    . "    location = /o/token/ { oauth2_token; }\n"
    . "    location = /.well-known/openid-configuration { oauth2_metadata; $RSA }\n"]);
isnt($jcode, 0, 'the key at the metadata only (it offers OpenID members, jwks_uri '
    . 'missing): nginx -t fails');
like($jout, $MISSING, '... saying so') or diag($jout);
($jcode, $jout) = jwks_conf("oauth2_jwt_key $dir/hs.key hmac;", ['', $FLOW]);
is($jcode, 0, 'an HS256 key only (it signs no id_token): no oauth2_jwks needed') or diag($jout);
($jcode, $jout) = jwks_conf($RSA, ['', "    location = /o/token/ { oauth2_token; }\n"]);
is($jcode, 0, 'a key without an authorization endpoint (no id_token is issued): '
    . 'no oauth2_jwks needed') or diag($jout);
($jcode, $jout) = jwks_conf($RSA, ['', $FLOW . $JWKS], ['shop1', $FLOW]);
isnt($jcode, 0, "another realm's JWKS does not count: nginx -t fails");
like($jout, qr/$MISSING \("shop1"\)/, '... naming the realm without one') or diag($jout);

$t->done_testing;
