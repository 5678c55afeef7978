# Sender-constrained tokens: DPoP (RFC 9449, issue 14 item 5).  Proofs are
# made by t/lib/dpop_proof.py (python3-cryptography): good ones, and the
# bad ones an attacker would try (replays, another URL, method or key, a
# forged Host, a stale iat, HS256 or none, a private key in the jwk).
# R87: the htu is built from oauth2_issuer, never from Host.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use MIME::Base64 ();
use OAuth2Test;
use OAuth2Grants qw(:all);
use OAuth2Authorize;
use Time::HiRes qw(sleep);

OAuth2Test::require_build();
# python3-cryptography (Debian's, scripts/install-deps) makes the proofs;
# missing, the file fails, it never skips
my $PYTHON = '/usr/bin/python3';
if (system($PYTHON, '-c', 'import cryptography') != 0) {
    fail('t/dpop.t needs python3-cryptography: run scripts/install-deps');
    done_testing();
    exit;
}

my $PY = "$FindBin::Bin/lib/dpop_proof.py";

my $t = OAuth2Test->new;
my $D = $t->dir;
my $cc = $t->new_app(name => 'cc');
my $must = $t->new_app(name => 'must', require_dpop => 1);
my $must_pw = $t->new_app(name => 'must-pw', grant => ['password'], require_dpop => 1);
my $spa = $t->new_app(name => 'spa', public => 1,
    grant => ['password', 'refresh_token']);
my $conf_app = $t->new_app(name => 'conf', grant => ['password', 'refresh_token']);
my $rs = $t->new_app(name => 'resource-server', scope => 'introspection');
my $oidc = $t->new_app(name => 'oidc', grant => ['password'], scope => 'openid profile');
my $web = $t->new_app(name => 'web', public => 1,
    grant => ['authorization_code', 'refresh_token'],
    redirect_uris => ['https://client.example/cb']);
add_user($t, 'alice', 'Tr0ub4dor-alice-3');

system('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
    'ec_paramgen_curve:P-256', '-out', "$D/jwt.pem") == 0 or die 'openssl';
chmod 0644, "$D/jwt.pem";

# the same realm on another server (after the default one), its DPoP
# window the default
my $other_server = "server { listen 127.0.0.1:%%PORT%%; server_name other.example;\n"
    . "  location /w1/protected/ { auth_oauth2 \"api\"; alias %%DIR%%/html/; }\n}\n";
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off; '
        . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';',
    extra_server => grant_locations(extra => <<"EOF")) . $other_server);
    location /w1/protected/ {
        auth_oauth2 "api";
        oauth2_dpop on iat_window=1s;
        alias %%DIR%%/html/;
    }
    location = /o/authorize/ { oauth2_authorize; }
    location = /o/userinfo/ { oauth2_userinfo; }
    location = /rl/userinfo/ { oauth2_userinfo; oauth2_rate_limit 3/h; }
    location = /must/login/ { oauth2_login $must_pw->{client_id}; }
    location = /must/api/token/ {
        oauth2_jwt_token $must_pw->{client_id};
        oauth2_jwt_key $D/jwt.pem;
    }
    location = /n/token/ { oauth2_token; oauth2_dpop on nonce=on; }
    location /n/protected/ {
        auth_oauth2 "api";
        oauth2_dpop on nonce=on;
        alias %%DIR%%/html/;
    }
    location /off/ { auth_oauth2 "api"; oauth2_dpop off; alias %%DIR%%/html/; }
    location /ep/ {
        auth_oauth2 "api";
        alias %%DIR%%/html/;
        error_page 404 = /protected/index.html;
    }
    location /ar/ { auth_request /_ar_check; alias %%DIR%%/html/; }
    location = /_ar_check {
        internal;
        auth_oauth2 "api";
        oauth2_dpop on nonce=on;
        empty_gif;
    }
    location /nn/ {
        oauth2_dpop on nonce=on;
        location /nn/protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    }
    location = /w/token/ { oauth2_token; oauth2_dpop on iat_window=5s; }
    location /w/ {
        oauth2_dpop on iat_window=5s;
        location /w/protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    }
    location = /jwt/token/ {
        oauth2_token;
        oauth2_access_token_format jwt;
        oauth2_jwt_key $D/jwt.pem;
    }
    # its key signs id_tokens too: nginx -t wants their JWKS
    location = /o/jwks/ { oauth2_jwks; oauth2_jwt_key $D/jwt.pem; }
    location /jwt/protected/ {
        auth_oauth2 "api";
        oauth2_jwt_key $D/jwt.pem;
        alias %%DIR%%/html/;
    }
    location = /metrics { oauth2_metrics; }
EOF
$t->run;

my $BASE = 'http://127.0.0.1:' . $t->port;
my $KEY = "$D/client.pem";
my $OTHER = "$D/other.pem";

# proof(htu => path or URL, htm, token (ath), key, iat, jti, nonce,
#       alg, typ, private_jwk, sign_key, kty, count, s => low|high)
# (an ES256 signature's s: without it, the one the library picked)
sub proof {
    my (%o) = @_;
    my $htu = $o{htu} // '/o/token/';
    $htu = $BASE . $htu if $htu =~ m{^/};
    # --opt=value: a nonce, jti or token may begin with '-'
    my @a = ('--key=' . ($o{key} // $KEY), '--htm=' . ($o{htm} // 'POST'),
        "--htu=$htu");
    push @a, "--kty=$o{kty}" if $o{kty};
    push @a, "--iat=$o{iat}" if defined $o{iat};
    push @a, "--jti=$o{jti}" if defined $o{jti};
    push @a, "--token=$o{token}" if defined $o{token};
    push @a, "--nonce=$o{nonce}" if defined $o{nonce};
    push @a, "--alg=$o{alg}" if $o{alg};
    push @a, "--typ=$o{typ}" if $o{typ};
    push @a, '--private-jwk' if $o{private_jwk};
    push @a, "--sign-key=$o{sign_key}" if $o{sign_key};
    push @a, "--count=$o{count}" if $o{count};
    push @a, "--s=$o{s}" if $o{s};
    open my $fh, '-|', $PYTHON, $PY, @a or die "dpop_proof: $!";
    my @p = <$fh>;
    close $fh or die "dpop_proof failed";
    chomp @p;
    return wantarray ? @p : $p[0];
}

sub jkt {
    my ($key) = @_;
    open my $fh, '-|', $PYTHON, $PY, '--key', $key // $KEY, '--jkt'
        or die;
    my $j = <$fh>;
    chomp $j;
    return $j;
}

# a client_credentials token request of $cc with these DPoP headers
sub cc_token {
    my (@dpop) = @_;
    my $path = '/o/token/';
    $path = shift @dpop if @dpop && $dpop[0] =~ m{^/};
    return $t->token($cc->{client_id}, $cc->{client_secret}, path => $path,
        headers => [map { (DPoP => $_) } @dpop]);
}

sub dpop_get {
    my ($path, $token, @proofs) = @_;
    return $t->get($path, Authorization => "DPoP $token",
        map { (DPoP => $_) } @proofs);
}

sub challenge_ok {
    my ($r, $error, $name) = @_;
    is($r->{status}, 401, "$name: 401");
    my $h = join ' | ', @{$r->{headers}{'www-authenticate'} // []};
    like($h, qr/^DPoP realm="api", error="\Q$error\E", algs="ES256 RS256 EdDSA"$/,
        "$name: WWW-Authenticate DPoP error=\"$error\" with algs");
}

my $JKT = jkt($KEY);
my $OTHER_JKT = jkt($OTHER);
isnt($JKT, $OTHER_JKT, 'two client keys, two thumbprints');

# --------------------------------------------------------------- metadata

my $m = $t->get('/.well-known/oauth-authorization-server');
is_deeply($m->{json}{dpop_signing_alg_values_supported},
    ['ES256', 'RS256', 'EdDSA'],
    'metadata: dpop_signing_alg_values_supported (RFC 9449 5.1)');

# ------------------------------------------------------ the token endpoint

my $r = cc_token();
is($r->{json}{token_type}, 'Bearer', 'no DPoP header: a Bearer token, as before');
my $bearer = $r->{json}{access_token};

$r = cc_token(proof());
is($r->{status}, 200, 'a valid proof: 200');
is($r->{json}{token_type}, 'DPoP', 'a valid proof: token_type DPoP');
my $at = $r->{json}{access_token};
$t->no_store_ok($r, 'DPoP token response');

$r = introspect($t, $rs, $at);
is($r->{json}{token_type}, 'DPoP', 'introspection: token_type DPoP (RFC 9449 6.2)');
is($r->{json}{cnf}{jkt}, $JKT, 'introspection: cnf.jkt is the RFC 7638 thumbprint');
$r = introspect($t, $rs, $bearer);
ok(!exists $r->{json}{cnf}, 'introspection of a Bearer token: no cnf');

for my $kty (qw(rsa ed25519)) {
    my $k = "$D/$kty.pem";
    $r = cc_token(proof(key => $k, kty => $kty));
    is($r->{json}{token_type}, 'DPoP', "a $kty key's proof: token_type DPoP");
    my $tok = $r->{json}{access_token};
    is(dpop_get('/protected/', $tok, proof(key => $k, kty => $kty, htm => 'GET',
        htu => '/protected/', token => $tok))->{status}, 200,
        "the $kty-bound token opens a location with its proof");
}

my $p = proof();
is(cc_token($p)->{status}, 200, 'a proof at the token endpoint: 200');
$t->oauth_error_ok(cc_token($p), 400, 'invalid_dpop_proof',
    'the same proof again at the token endpoint (replay)');

# RFC 7518 3.4 asks an ES256 signer for no particular s, and WebCrypto,
# Node, Java, Go and python-cryptography send whichever they computed:
# a client's proof is taken with s or n - s.  A replay is known by its key
# and jti, never by the signature's bytes, so the twin of a used proof
# (or another signature of its claims) is still a replay.
for my $s (qw(low high)) {
    $r = cc_token(proof(s => $s));
    is($r->{status}, 200, "a proof whose ES256 signature has the $s s: 200")
        or diag $r->{body};
    is($r->{json}{token_type}, 'DPoP', "... the $s s: token_type DPoP");
}
is(cc_token(proof(s => 'low', jti => 'twin-jti'))->{status}, 200,
    'a proof of jti twin-jti with the low s: 200');
$r = cc_token(proof(s => 'high', jti => 'twin-jti'));
$t->oauth_error_ok($r, 400, 'invalid_dpop_proof', '... its jti again with the high s');
like($r->{json}{error_description} // '', qr/already used/, '... refused as a replay');
# RFC 7519 2: a NumericDate may have a fraction
$r = cc_token(proof(iat => time . '.5'));
is($r->{status}, 200, 'a proof whose iat has a fraction (1700000000.5): 200')
    or diag $r->{body};
$t->oauth_error_ok(cc_token(proof(iat => (time - 600) . '.5')), 400, 'invalid_dpop_proof',
    'a proof whose iat has a fraction, 10 minutes old');

my %bad = (
    'a proof for another URL' => { htu => '/o/other/' },
    'a proof for another method' => { htm => 'GET' },
    'a proof whose htu names the Host, not the issuer' =>
        { htu => 'http://localhost/o/token/' },
    'a proof with iat 10 minutes old' => { iat => time - 600 },
    'a proof with iat 10 minutes ahead' => { iat => time + 600 },
    'a proof signed with another key than its jwk' => { sign_key => $OTHER },
    'a proof whose jwk holds the private key' => { private_jwk => 1 },
    'a proof with alg HS256' => { alg => 'HS256' },
    'a proof with alg none' => { alg => 'none' },
    'a proof with typ JWT' => { typ => 'JWT' },
);
for my $name (sort keys %bad) {
    $r = cc_token(proof(%{$bad{$name}}));
    $t->oauth_error_ok($r, 400, 'invalid_dpop_proof', $name);
}
$t->oauth_error_ok(cc_token('not.a.jws'), 400, 'invalid_dpop_proof', 'a DPoP header that is no JWS');
$t->oauth_error_ok(cc_token(proof(), proof()), 400, 'invalid_dpop_proof', 'two DPoP headers');

# ----------------------------------------------------- at auth_oauth2

sub get_proof { proof(htm => 'GET', htu => '/protected/', token => $at, @_) }

$r = dpop_get('/protected/', $at, get_proof());
is($r->{status}, 200, 'the DPoP token with its proof: 200');

$p = get_proof();
is(dpop_get('/protected/', $at, $p)->{status}, 200, 'a fresh proof: 200');
for my $s (qw(low high)) {
    is(dpop_get('/protected/', $at, get_proof(s => $s))->{status}, 200,
        "a proof whose ES256 signature has the $s s: 200");
}
# RFC 9449 4.3 check 9: htu names the URL without its query
is(dpop_get('/protected/?page=2', $at, get_proof())->{status}, 200,
    'a request with a query, its proof naming the path alone: 200');
is(dpop_get('/protected/?page=2', $at, get_proof(htu => '/protected/?page=2'))->{status},
    200, 'and a proof naming the query too: 200');
# at least 12 replays, and more until two workers have seen one (the
# kernel's reuseport spread is not even over a dozen connections)
my (%pids, $replays, $sent);
for (1 .. 200) {
    my $rr = dpop_get('/protected/', $at, $p);
    $sent++;
    $replays++ if $rr->{status} == 401;
    $pids{$rr->{headers}{'x-pid'}[0] // ''}++;
    last if $sent >= 12 && keys %pids > 1;
}
is($replays, $sent, "the same proof replayed $sent times: refused every time");
cmp_ok(scalar keys %pids, '>', 1, 'the replays reached more than one worker');
challenge_ok(dpop_get('/protected/', $at, $p), 'invalid_dpop_proof', 'a replayed proof');

# an error_page (or X-Accel-Redirect) makes the request a GET and checks
# it again: the proof still names the client's method and URL (RFC 9449
# 4.3, checks 8 and 9), and the proof recorded on the first pass is no
# replay on the second
$r = $t->request('POST', '/ep/nothing-here', headers => [
    Authorization => "DPoP $at",
    DPoP => proof(htm => 'POST', htu => '/ep/nothing-here', token => $at),
    'Content-Type' => 'application/x-www-form-urlencoded'], body => 'a=1');
is($r->{status}, 200, 'a DPoP POST that error_page sends on as a GET: 200')
    or diag($r->{raw});
is($r->{body}, "hello\n", '... the error_page\'s file');
$r = $t->request('POST', '/ep/nothing-here', headers => [
    Authorization => "DPoP $at",
    DPoP => proof(htm => 'GET', htu => '/ep/nothing-here', token => $at),
    'Content-Type' => 'application/x-www-form-urlencoded'], body => 'a=1');
challenge_ok($r, 'invalid_dpop_proof',
    'a POST whose proof names GET, the method of the redirect');

challenge_ok($t->bearer_get('/protected/', $at), 'invalid_token',
    'a stolen DPoP token presented as Bearer');
challenge_ok(dpop_get('/protected/', $at), 'invalid_dpop_proof',
    'the DPoP scheme without a proof');
challenge_ok(dpop_get('/protected/', $at, get_proof(htu => '/open/')),
    'invalid_dpop_proof', 'a proof for another URL');
challenge_ok(dpop_get('/protected/', $at, get_proof(htm => 'POST')),
    'invalid_dpop_proof', 'a proof for another method');
challenge_ok(dpop_get('/protected/', $at, get_proof(token => $bearer)),
    'invalid_dpop_proof', 'a proof whose ath is another token\'s');
challenge_ok(dpop_get('/protected/', $at, get_proof(token => undef)),
    'invalid_dpop_proof', 'a proof without ath');
challenge_ok(dpop_get('/protected/', $at, get_proof(iat => time - 600)),
    'invalid_dpop_proof', 'a proof with a stale iat');

# iat_window: a proof 30 s old (or ahead) is within the default 60 s, not
# within a location's 5 s (/w/protected/ has it from the location around it)
for my $off (-30, 30) {
    my $w = $off < 0 ? 'old' : 'ahead';
    is(cc_token(proof(iat => time + $off))->{status}, 200,
        "a proof 30 s $w at the token endpoint: 200 (iat_window 60s)");
    $t->oauth_error_ok(cc_token('/w/token/',
        proof(htu => '/w/token/', iat => time + $off)), 400,
        'invalid_dpop_proof', "a proof 30 s $w at iat_window=5s");
    is(dpop_get('/protected/', $at, get_proof(iat => time + $off))->{status},
        200, "a proof 30 s $w at auth_oauth2: 200 (iat_window 60s)");
    challenge_ok(dpop_get('/w/protected/', $at,
        get_proof(htu => '/w/protected/', iat => time + $off)),
        'invalid_dpop_proof', "a proof 30 s $w at iat_window=5s");
}
is(dpop_get('/w/protected/', $at, get_proof(htu => '/w/protected/'))
    ->{status}, 200, 'a fresh proof at iat_window=5s: 200');

# RFC 9449 11.1: a proof is remembered as long as any location of the
# realm (whose replay zone it shares) would still take it, not only as
# long as the one that took it: the same URL on another server of the
# realm, with the default 60 s, takes its iat a minute long
my $w1 = get_proof(htu => '/w1/protected/');
is(dpop_get('/w1/protected/', $at, $w1)->{status}, 200, 'a proof at iat_window=1s: 200');
sleep 4;  # past 2 x 1 s + 1
sub other_get {
    my ($proof) = @_;
    return $t->http("GET /w1/protected/ HTTP/1.1\r\nHost: other.example\r\n"
        . "Connection: close\r\nAuthorization: DPoP $at\r\nDPoP: $proof\r\n\r\n");
}
challenge_ok(other_get($w1),
    'invalid_dpop_proof',
    'the same proof 4 s later at the same URL of another server of the realm (60 s)');
is(other_get(get_proof(htu => '/w1/protected/'))->{status}, 200,
    '... where a fresh proof is taken');
challenge_ok(dpop_get('/protected/', $at, get_proof(key => $OTHER)),
    'invalid_dpop_proof', 'a valid proof by another key than the token\'s');
challenge_ok(dpop_get('/protected/', $at, get_proof(sign_key => $OTHER)),
    'invalid_dpop_proof', 'a proof signed with another key than its jwk');
challenge_ok(dpop_get('/protected/', $at, get_proof(), get_proof()),
    'invalid_dpop_proof', 'two DPoP headers');
challenge_ok(dpop_get('/protected/', $at, get_proof(alg => 'HS256')),
    'invalid_dpop_proof', 'a proof with alg HS256');

# R87: the htu is the issuer's origin and the path, never Host
my $forged = proof(htm => 'GET', htu => 'http://evil.example/protected/',
    token => $at);
$r = $t->http("GET /protected/ HTTP/1.1\r\nHost: evil.example\r\n"
    . "Connection: close\r\nAuthorization: DPoP $at\r\nDPoP: $forged\r\n\r\n");
challenge_ok($r, 'invalid_dpop_proof', 'a proof for the forged Host');

challenge_ok(dpop_get('/protected/', $bearer,
        proof(htm => 'GET', htu => '/protected/', token => $bearer)),
    'invalid_token', 'an unbound token sent with the DPoP scheme (RFC 9449 7.2)');
is($t->bearer_get('/protected/', $bearer)->{status}, 200,
    'an unbound token as Bearer: 200, as before');
challenge_ok(dpop_get('/off/', $at, proof(htm => 'GET', htu => '/off/', token => $at)),
    'invalid_token', 'a DPoP token where oauth2_dpop is off');

# -------------------------------------------------------- JWT access tokens

$r = cc_token('/jwt/token/', proof(htu => '/jwt/token/'));
is($r->{json}{token_type}, 'DPoP', 'a JWT access token with a proof: DPoP');
my $jwt = $r->{json}{access_token};
my $claims = JSON::PP->new->decode(MIME::Base64::decode_base64url((split /\./, $jwt)[1]));
is($claims->{cnf}{jkt}, $JKT, 'the JWT carries cnf.jkt (RFC 9449 6.1)');
is(dpop_get('/jwt/protected/', $jwt, proof(htm => 'GET', htu => '/jwt/protected/',
    token => $jwt))->{status}, 200, 'the DPoP JWT with its proof: 200');
challenge_ok($t->bearer_get('/jwt/protected/', $jwt), 'invalid_token',
    'the DPoP JWT as Bearer');

# ------------------------------------------------------------- revocation

$r = cc_token(proof());
my $doomed = $r->{json}{access_token};
is(dpop_get('/protected/', $doomed, get_proof(token => $doomed))->{status}, 200,
    'a DPoP token before revocation: 200');
is($t->revoke($cc->{client_id}, $cc->{client_secret}, $doomed)->{status}, 200,
    'revoking it: 200');
challenge_ok(dpop_get('/protected/', $doomed, get_proof(token => $doomed)),
    'invalid_token', 'the revoked DPoP token with a valid proof');

# ------------------------------------------------- required per application

$r = $t->token($must->{client_id}, $must->{client_secret});
$t->oauth_error_ok($r, 400, 'invalid_dpop_proof',
    'an application with dpop_bound_access_tokens, without a proof');
$r = $t->token($must->{client_id}, $must->{client_secret},
    headers => [DPoP => proof()]);
is($r->{json}{token_type}, 'DPoP', 'the same application with a proof: DPoP');
# oauth2_login and seed 003's oauth2_jwt_token issue Bearer tokens only:
# an application registered for DPoP-bound tokens gets none there
$r = $t->post_form('/must/login/', OAuth2Test::form(username => 'alice',
    password => 'Tr0ub4dor-alice-3'));
$t->oauth_error_ok($r, 400, 'invalid_dpop_proof',
    'oauth2_login of an application that requires DPoP');
ok(!($r->{json} && $r->{json}{access_token}), '... and no token');
$r = $t->request('POST', '/must/api/token/',
    headers => ['Content-Type' => 'application/json'],
    body => '{"username": "alice", "password": "Tr0ub4dor-alice-3"}');
is($r->{status}, 400, 'oauth2_jwt_token of an application that requires DPoP: 400');
ok(!($r->{json} && ($r->{json}{access} // $r->{json}{refresh})), '... and no token');
my $shown = $t->admin_json('app', 'show', $must->{client_id});
ok($shown->{dpop_bound_access_tokens}, 'app show: dpop_bound_access_tokens true');

# oauth2-admin token issue: an application that takes DPoP-bound tokens
# only gets none from the CLI without its key's thumbprint; with one,
# the token is bound as the token endpoint binds it (RFC 9449 5.2, 7.1)
{
    my ($c, $o, $e) = $t->admin('token', 'issue', '--client-id',
        $must->{client_id});
    is($c, 1, 'token issue for an application that takes DPoP-bound tokens '
        . 'only, without --dpop-jkt: exit 1');
    like($e, qr/takes DPoP-bound tokens only .*--dpop-jkt/, '... saying so');
    is($o, '', '... and no token');
    for my $bad ('short', $JKT . 'A', substr($JKT, 0, 42) . '+',
        substr($JKT, 0, 42) . 'B', "$JKT=")
    {
        ($c, $o, $e) = $t->admin('token', 'issue', '--client-id',
            $must->{client_id}, '--dpop-jkt', $bad);
        is($c, 2, "token issue --dpop-jkt '$bad': exit 2, no thumbprint");
    }
    my $cli = $t->admin_json('token', 'issue', '--client-id',
        $must->{client_id}, '--dpop-jkt', $JKT);
    is($cli->{token_type}, 'DPoP', 'token issue --dpop-jkt: token_type DPoP');
    my $tok = $cli->{access_token} // '';
    is(dpop_get('/protected/', $tok, get_proof(token => $tok))->{status}, 200,
        '... used with a proof of that key: 200');
    challenge_ok(dpop_get('/protected/', $tok,
        get_proof(token => $tok, key => $OTHER)),
        'invalid_dpop_proof', '... with a proof of another key');
    challenge_ok($t->bearer_get('/protected/', $tok), 'invalid_token',
        '... as a Bearer token');
    is(introspect($t, $rs, $tok)->{json}{cnf}{jkt}, $JKT,
        '... introspected: cnf.jkt is the thumbprint given');
}

# ---------------------------------------------------------- refresh tokens

# RFC 9449 5: a public client's refresh token is bound to its key
sub pw_token {
    my ($app, @dpop) = @_;
    my @auth = $app->{client_secret}
        ? (Authorization => $t->basic($app->{client_id}, $app->{client_secret}))
        : ();
    my $body = OAuth2Test::form(grant_type => 'password', username => 'alice',
        password => 'Tr0ub4dor-alice-3',
        $app->{client_secret} ? () : (client_id => $app->{client_id}));
    return $t->post_form('/o/token/', $body, @auth, map { (DPoP => $_) } @dpop);
}

sub refresh_with {
    my ($app, $rt, @dpop) = @_;
    my @auth = $app->{client_secret}
        ? (Authorization => $t->basic($app->{client_id}, $app->{client_secret}))
        : ();
    my $body = OAuth2Test::form(grant_type => 'refresh_token', refresh_token => $rt,
        $app->{client_secret} ? () : (client_id => $app->{client_id}));
    return $t->post_form('/o/token/', $body, @auth, map { (DPoP => $_) } @dpop);
}

$r = pw_token($spa, proof());
is($r->{json}{token_type}, 'DPoP', 'a public client\'s password grant with a proof: DPoP');
my $rt = $r->{json}{refresh_token};
ok($rt, 'with a refresh token');
$t->oauth_error_ok(refresh_with($spa, $rt), 400, 'invalid_dpop_proof',
    'the public client\'s refresh token without a proof');
$t->oauth_error_ok(refresh_with($spa, $rt, proof(key => $OTHER)), 400,
    'invalid_dpop_proof', 'the public client\'s refresh token with another key');
$r = refresh_with($spa, $rt, proof());
is($r->{status}, 200, 'the public client\'s refresh token with its key: 200');
is($r->{json}{token_type}, 'DPoP', 'and the new access token is DPoP');

$r = pw_token($conf_app, proof());
is($r->{json}{token_type}, 'DPoP', 'a confidential client\'s password grant with a proof: DPoP');
$r = refresh_with($conf_app, $r->{json}{refresh_token});
is($r->{status}, 200,
    'a confidential client\'s refresh without a proof: 200 (bound by client auth)');
is($r->{json}{token_type}, 'Bearer', 'and its access token is Bearer');

# the authorization code grant: the code redeemed with a proof
my ($verifier, $challenge) = OAuth2Authorize::pkce();
my $q = OAuth2Authorize::query(response_type => 'code',
    client_id => $web->{client_id}, redirect_uri => 'https://client.example/cb',
    code_challenge => $challenge, code_challenge_method => 'S256', state => 's');
my $az = OAuth2Authorize->new($t);
my $code = $az->code($q, $az->login($q, 'alice', 'Tr0ub4dor-alice-3'));
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'authorization_code',
    code => $code, redirect_uri => 'https://client.example/cb',
    code_verifier => $verifier, client_id => $web->{client_id}), DPoP => proof());
is($r->{json}{token_type}, 'DPoP', 'the authorization code redeemed with a proof: DPoP');
my $code_at = $r->{json}{access_token};
is(dpop_get('/protected/', $code_at, get_proof(token => $code_at))->{status}, 200,
    'its access token opens a location with a proof by the key');
$t->oauth_error_ok(refresh_with($web, $r->{json}{refresh_token}), 400,
    'invalid_dpop_proof', 'its refresh token (a public client\'s) without a proof');

# dpop_jkt (RFC 9449 10): the code bound at the authorization request to
# the key of that thumbprint
sub jkt_code {
    my (%extra) = @_;
    my ($v, $c) = OAuth2Authorize::pkce();
    my $q = OAuth2Authorize::query(response_type => 'code',
        client_id => $web->{client_id}, redirect_uri => 'https://client.example/cb',
        code_challenge => $c, code_challenge_method => 'S256', state => 's', %extra);
    my $s = $az->login($q, 'alice', 'Tr0ub4dor-alice-3');
    return ($q, $s, $v);
}
sub redeem_jkt {
    my ($code, $verifier, @dpop) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'authorization_code',
        code => $code, redirect_uri => 'https://client.example/cb',
        code_verifier => $verifier, client_id => $web->{client_id}),
        map { (DPoP => $_) } @dpop);
}
my ($jq, $js, $jv) = jkt_code(dpop_jkt => $JKT);
my $jcode = $az->code($jq, $js);
$t->oauth_error_ok(redeem_jkt($jcode, $jv), 400, 'invalid_dpop_proof',
    'dpop_jkt: the code without a proof');
$t->oauth_error_ok(redeem_jkt($jcode, $jv, proof(key => $OTHER)), 400, 'invalid_dpop_proof',
    'dpop_jkt: the code with a proof by another key');
$r = redeem_jkt($jcode, $jv, proof());
is($r->{status}, 200, 'dpop_jkt: the code with a proof by its key: 200 (not spent before)')
    or diag $r->{body};
is($r->{json}{token_type}, 'DPoP', 'dpop_jkt: a DPoP token');
$t->oauth_error_ok(redeem_jkt($jcode, $jv, proof()), 400, 'invalid_grant',
    'dpop_jkt: the code redeemed twice');
for my $bad ('short', $JKT . 'A', substr($JKT, 0, 42) . '+', substr($JKT, 0, 42) . '=') {
    my ($bq, $bs) = jkt_code(dpop_jkt => $bad);
    my $br = $az->get($bq, Cookie => $bs);
    my %bp = OAuth2Authorize::location_params($br);
    is($bp{error}, 'invalid_request', "dpop_jkt '$bad': invalid_request to the client");
    ok(!defined $bp{code}, "dpop_jkt '$bad': no code");
}

# ------------------------------------------------- OpenID Connect userinfo

# a DPoP-bound token reads userinfo with the DPoP scheme and a proof for
# the userinfo URL, as at an auth_oauth2 location (RFC 9449 7.1)
$r = pw_token($oidc, proof());
is($r->{json}{token_type}, 'DPoP', 'an openid token with a proof: DPoP');
my $uat = $r->{json}{access_token};
sub ui_proof { proof(htm => 'GET', htu => '/o/userinfo/', token => $uat, @_) }
sub ui_refused {
    my ($r, $error, $name) = @_;
    is($r->{status}, 401, "userinfo, $name: 401");
    is($r->{json}{error}, $error, "userinfo, $name: error $error");
    like(join(' | ', @{$r->{headers}{'www-authenticate'} // []}),
        qr/^DPoP error="\Q$error\E", algs="ES256 RS256 EdDSA"$/,
        "userinfo, $name: DPoP's challenge");
}
$r = dpop_get('/o/userinfo/', $uat, ui_proof());
is($r->{status}, 200, 'userinfo with the DPoP token and its proof: 200') or diag $r->{body};
like($r->{json}{sub} // '', qr/^\d+$/, '... the user\'s sub');
is($r->{json}{preferred_username}, 'alice', '... and the profile claims');
$p = ui_proof();
is(dpop_get('/o/userinfo/', $uat, $p)->{status}, 200, 'userinfo: a fresh proof: 200');
ui_refused(dpop_get('/o/userinfo/', $uat, $p), 'invalid_dpop_proof', 'a replayed proof');
ui_refused($t->bearer_get('/o/userinfo/', $uat), 'invalid_token',
    'the bound token shown as Bearer');
ui_refused(dpop_get('/o/userinfo/', $uat), 'invalid_dpop_proof', 'no proof');
ui_refused(dpop_get('/o/userinfo/', $uat, ui_proof(htu => '/protected/')),
    'invalid_dpop_proof', 'a proof for another URL');
ui_refused(dpop_get('/o/userinfo/', $uat, ui_proof(htm => 'POST')),
    'invalid_dpop_proof', 'a proof for another method');
ui_refused(dpop_get('/o/userinfo/', $uat, ui_proof(key => $OTHER)),
    'invalid_dpop_proof', 'a proof by another key');
is($t->bearer_get('/o/userinfo/', pw_token($oidc)->{json}{access_token})->{status}, 200,
    'an unbound openid token still reads userinfo as Bearer');
is(dpop_get('/o/userinfo/', $uat, ui_proof(s => 'high'))->{status}, 200,
    'userinfo: a proof whose ES256 signature has the high s: 200');

# oauth2_rate_limit at userinfo counts each request once, per address:
# the proof of a public client's DPoP-bound token is not counted again
# under a key of its client alone, which all its users would share, so
# that one user over the rate would refuse every other (R83); over the
# rate is 429 with Retry-After, never a 401 that says the proof is bad
{
    add_user($t, 'bob', 'Tr0ub4dor-bob-3');
    my $ui_app = $t->new_app(name => 'ui-spa', public => 1,
        grant => ['password', 'refresh_token'], scope => 'openid profile');
    my %tok;
    for my $who (qw(alice bob)) {
        my $rr = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
            username => $who, password => "Tr0ub4dor-$who-3",
            client_id => $ui_app->{client_id}), DPoP => proof());
        is($rr->{json}{token_type}, 'DPoP', "userinfo at 3 an hour: ${who}'s DPoP token");
        $tok{$who} = $rr->{json}{access_token};
    }
    my $get = sub {
        my ($who, $from) = @_;
        return $t->request('GET', '/rl/userinfo/', headers => [
            Authorization => "DPoP $tok{$who}", DPoP => proof(htm => 'GET',
                htu => '/rl/userinfo/', token => $tok{$who})], from => $from);
    };
    my @got = map { $get->('alice', '127.0.0.51')->{status} } 1 .. 3;
    is("@got", '200 200 200', 'userinfo at 3 an hour: alice from her address, 3 answered');
    my $rr = $get->('bob', '127.0.0.52');
    is($rr->{status}, 200, '... bob, from another address, 200 (R83)')
        or diag $rr->{body};
    is($rr->{json}{preferred_username}, 'bob', '... with his claims');
    $rr = $get->('alice', '127.0.0.51');
    is($rr->{status}, 429, '... alice\'s 4th from her address: 429');
    like(OAuth2Test::header($rr, 'Retry-After') // '', qr/^[1-9]\d*$/,
        '... with Retry-After');
}

# ------------------------------------------------------------------- nonce

# a nonce asked for (use_dpop_nonce) is RFC 9449's normal course, once a
# nonce window for every client: its own outcome in oauth2_metrics
# (dpop_nonce, not malformed) and a line at info, not at the refusal
# level (error by default)
sub outcomes {
    my $body = $t->get('/metrics')->{body} // '';
    return { $body =~ /^oauth2_validations_total\{outcome="(\w+)"\} (\d+)$/mg };
}
my $log_mark = -s $t->error_log;
my $o0 = outcomes();

$r = cc_token('/n/token/', proof(htu => '/n/token/'));
$t->oauth_error_ok($r, 400, 'use_dpop_nonce', 'nonce=on: a proof without a nonce');
my $nonce = OAuth2Test::header($r, 'DPoP-Nonce');
like($nonce // '', qr/^[A-Za-z0-9_-]{32}$/, 'use_dpop_nonce carries a DPoP-Nonce header');
$t->oauth_error_ok(cc_token('/n/token/', proof(htu => '/n/token/', nonce => 'made-up')),
    400, 'use_dpop_nonce', 'nonce=on: a nonce the server did not issue');
$r = cc_token('/n/token/', proof(htu => '/n/token/', nonce => $nonce));
is($r->{json}{token_type}, 'DPoP', 'nonce=on: a proof with the server\'s nonce: DPoP');
my $nat = $r->{json}{access_token};

sub n_proof { proof(htm => 'GET', htu => '/n/protected/', token => $nat, @_) }
$r = dpop_get('/n/protected/', $nat, n_proof());
challenge_ok($r, 'use_dpop_nonce', 'nonce=on at a resource: a proof without a nonce');
my $rnonce = OAuth2Test::header($r, 'DPoP-Nonce');
ok($rnonce, 'the 401 carries a DPoP-Nonce header');
is(dpop_get('/n/protected/', $nat, n_proof(nonce => $rnonce))->{status}, 200,
    'nonce=on at a resource: a proof with the nonce: 200');
# nonce=on in an outer location reaches the locations inside
sub nn_proof { proof(htm => 'GET', htu => '/nn/protected/', token => $nat, @_) }
$r = dpop_get('/nn/protected/', $nat, nn_proof());
challenge_ok($r, 'use_dpop_nonce',
    'nonce=on of an outer location: a proof without a nonce inside');
$rnonce = OAuth2Test::header($r, 'DPoP-Nonce');
ok($rnonce, 'nonce=on of an outer location: the 401 carries a DPoP-Nonce');
is(dpop_get('/nn/protected/', $nat, nn_proof(nonce => $rnonce))->{status},
    200, 'nonce=on of an outer location: a proof with the nonce: 200');
# through auth_request too: the subrequest's DPoP-Nonce reaches the
# client (auth_request passes on only WWW-Authenticate), or it could
# never learn the nonce (RFC 9449 9)
sub ar_proof { proof(htm => 'GET', htu => '/ar/', token => $nat, @_) }
$r = dpop_get('/ar/', $nat, ar_proof());
challenge_ok($r, 'use_dpop_nonce', 'auth_request to nonce=on: a proof without a nonce');
$rnonce = OAuth2Test::header($r, 'DPoP-Nonce');
ok($rnonce, '... the 401 carries the DPoP-Nonce');
is(dpop_get('/ar/', $nat, ar_proof(nonce => $rnonce))->{status}, 200,
    '... and a proof with it passes: 200');
{
    my $o1 = outcomes();
    my %d = map { ($_ => ($o1->{$_} // 0) - ($o0->{$_} // 0)) }
        qw(dpop_nonce malformed ok);
    is($d{dpop_nonce}, 3, 'oauth2_validations_total{outcome="dpop_nonce"}: '
        . 'the three nonces asked for at a resource');
    is($d{malformed}, 0, '... none of them counted as malformed');
    is($d{ok}, 3, '... and the three proofs with the nonce as ok');
    my $log = substr(OAuth2Test::_slurp($t->error_log), $log_mark);
    my @nonce = $log =~ /^.*use_dpop_nonce.*$/mg;
    is(scalar(grep { /\[info\]/ } @nonce), 5, 'error.log: each of the 5 '
        . 'nonces asked for (2 at the token endpoint, 3 at resources) says '
        . 'use_dpop_nonce at info') or diag($log);
    is(scalar(grep { !/\[info\]/ } @nonce), 0, '... and none at error');
    unlike($log, qr/\[error\]/, 'error.log: nothing at error for the nonce '
        . 'rounds');
}

# --------------------------------------------------------------- nginx -t

for my $bad ('oauth2_dpop maybe;', 'oauth2_dpop on iat_window=0;',
    'oauth2_dpop on iat_window=1h;', 'oauth2_dpop on nonce=yes;',
    'oauth2_dpop on; oauth2_dpop off;')
{
    $t->write_config($t->default_http(extra_http => $bad),
        file => "$D/bad.conf");
    my ($code, $out) = $t->nginx_t(file => "$D/bad.conf");
    isnt($code, 0, "nginx -t refuses \"$bad\"");
    like($out, qr/"oauth2_dpop"/, "nginx -t names oauth2_dpop for \"$bad\"");
}
for my $bad (['oauth2_dpop_zone 10k;', qr/"oauth2_dpop_zone" directive must be at least 64k/],
    ['oauth2_dpop_zone;', qr/invalid number of arguments in "oauth2_dpop_zone"/],
    ['oauth2_dpop_zone lots;', qr/"oauth2_dpop_zone" directive invalid value/])
{
    $t->write_config($t->default_http(extra_http => $bad->[0]),
        file => "$D/bad.conf");
    my ($code, $out) = $t->nginx_t(file => "$D/bad.conf");
    isnt($code, 0, "nginx -t refuses \"$bad->[0]\"");
    like($out, $bad->[1], "nginx -t says why for \"$bad->[0]\"");
}
$t->write_config($t->default_http(extra_server => 'oauth2_dpop_zone 1m;'),
    file => "$D/bad.conf");
like(($t->nginx_t(file => "$D/bad.conf"))[1],
    qr/"oauth2_dpop_zone" directive is not allowed here/,
    'nginx -t: oauth2_dpop_zone is an http{} directive');

# ------------------------------------------------ flooding the jti cache

# The jti of every proof is kept until its iat can no longer be accepted,
# in a zone of its realm's own (oauth2_dpop_zone); a full zone forgets
# none of them and refuses the proofs it cannot record (a replay is never
# let through).  A flood of fresh proofs, which any holder of a
# DPoP-bound token can send, fills neither the throttles' zone (new
# callers of a rate-limited endpoint are still counted, not refused 429)
# nor another realm's proofs' zone (R83, R84).
my $f = OAuth2Test->new(workers => 2);
$f->admin('realm', 'add', 'shop1');
my $fapp = $f->new_app(name => 'flood');
my $fpub = $f->new_app(name => 'spa', public => 1);
my $sapp = $f->admin_json('--realm', 'shop1',
    OAuth2Test::app_add_args(name => 'shop1 app'));
my $SHOP1 = <<'EOF2';
server {
    listen 127.0.0.1:%%PORT_1%%;
    oauth2_realm shop1;
    oauth2_issuer http://127.0.0.1:%%PORT_1%%;
    location = /o/token/ { oauth2_token; }
    location /protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    location = /metrics { oauth2_metrics; }
}
EOF2
$f->write_config($f->default_http(
    extra_http => "oauth2_dpop_zone 64k;\noauth2_limit_zone 64k;",
    extra_server => "    location = /o/token-metered/ { oauth2_token; "
        . "oauth2_rate_limit 100/h; }\n"
        . "    location /metered-api/ { auth_oauth2 \"api\"; "
        . "oauth2_rate_limit 5/h; alias %%DIR%%/html/; }\n"
        . "    location = /metrics { oauth2_metrics; }\n") . $SHOP1);
$f->expect_log(qr/counter zone is full/);
$f->run;
ok($f->_wait_port($f->port(1)), "nginx listens on shop1's port");
my $FBASE = 'http://127.0.0.1:' . $f->port;
my $SBASE = 'http://127.0.0.1:' . $f->port(1);
my $sr = $f->token($sapp->{client_id}, $sapp->{client_secret},
    headers => ['-port' => $f->port(1), DPoP => proof(htu => "$SBASE/o/token/")]);
is($sr->{json}{token_type}, 'DPoP', 'flood: a DPoP token of shop1');
my $fr = $f->token($fapp->{client_id}, $fapp->{client_secret},
    headers => [DPoP => proof(htu => "$FBASE/o/token/")]);
is($fr->{json}{token_type}, 'DPoP', 'flood: a DPoP token');
my $ftok = $fr->{json}{access_token};

# a client over its oauth2_rate_limit is refused before its proof is
# recorded: 600 fresh proofs, more than the zone holds, at a location of
# 5 an hour leave room for the client's next proof elsewhere
my %metered_api;
for my $mp (proof(htm => 'GET', htu => "$FBASE/metered-api/", token => $ftok,
        count => 600))
{
    my $rr = $f->get('/metered-api/', Authorization => "DPoP $ftok", DPoP => $mp);
    $metered_api{$rr->{status}}++;
}
is_deeply(\%metered_api, { 200 => 5, 429 => 595 },
    'a DPoP client over its rate: 5 answered, 595 refused 429');
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => proof(htm => 'GET',
        htu => "$FBASE/protected/", token => $ftok))->{status},
    200, "... and the 595 proofs refused took no room in the realm's proofs' zone");

# a public client's DPoP-bound tokens are its users': counted per client
# and address, so one user over the rate refuses no other user (R83)
{
    $f->admin_json('user', 'add', '--username', $_, '--email',
        "$_\@example.com", '--password', 'Velvet-kettle-orbit-28',
        '--pbkdf2-iterations', 1000) for qw(dp-alice dp-mallory);
    my %tok = map { $_ => $f->admin_json('token', 'issue', '--client-id',
        $fpub->{client_id}, '--user', $_, '--dpop-jkt', $JKT)->{access_token} }
        qw(dp-alice dp-mallory);
    my $get = sub {
        my ($who, $from) = @_;
        return $f->request('GET', '/metered-api/', headers => [
            Authorization => "DPoP $tok{$who}", DPoP => proof(htm => 'GET',
                htu => "$FBASE/metered-api/", token => $tok{$who})],
            from => $from)->{status};
    };
    my @got = map { $get->('dp-mallory', '127.0.0.41') } 1 .. 6;
    is("@got", '200 200 200 200 200 429', "a public client's user with DPoP "
        . 'at a location of 5 an hour: 5 answered, then 429');
    is($get->('dp-alice', '127.0.0.42'), 200, '... another user of that '
        . 'client, from another address: 200 (R83)');
}

# so is one address sending a public client's id to a token endpoint with
# oauth2_rate_limit (counted per client and address, before the proof)
my %token_metered;
for my $tp (proof(htu => "$FBASE/o/token-metered/", count => 400)) {
    my $rr = $f->post_form('/o/token-metered/', OAuth2Test::form(
        grant_type => 'authorization_code', code => 'no-such-code',
        client_id => $fpub->{client_id}, redirect_uri => 'https://client.example/cb',
        code_verifier => 'v' x 43), DPoP => $tp, '-from' => '127.3.0.1');
    $token_metered{$rr->{status}}++;
}
is_deeply(\%token_metered, { 400 => 100, 429 => 300 },
    'a public client\'s id from one address: 100 answered (invalid_grant), 300 refused 429');
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => proof(htm => 'GET',
        htu => "$FBASE/protected/", token => $ftok))->{status},
    200, "... and the 300 proofs refused took no room either");

my @flood = proof(htm => 'GET', htu => "$FBASE/protected/", token => $ftok,
    count => 3000);
my $first = $flood[0];
my ($accepted, $refused) = (0, undef);
while (my $fp = shift @flood) {
    my $rr = $f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $fp);
    if ($rr->{status} == 200) { $accepted++; next }
    $refused = $rr;
    last;
}
cmp_ok($accepted, '>', 50, "flood: $accepted distinct proofs accepted first");
ok($refused, 'flood: a proof is refused once the zone is full of live jti');
like(join(' ', @{$refused->{headers}{'www-authenticate'} // []}),
    qr/error="invalid_dpop_proof"/, 'flood: refused as invalid_dpop_proof, not 500');
my @more = map { $f->get('/protected/', Authorization => "DPoP $ftok",
    DPoP => $_)->{status} } splice @flood, 0, 20;
is(join(',', grep { $_ != 401 } @more), '',
    'flood: 20 fresh proofs more, each refused (the zone stays full)');
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $first)->{status},
    401, 'flood: the first proof replayed is still refused (nothing forgotten)');
like(OAuth2Test::_slurp($f->error_log),
    qr/\[alert\].*counter zone is full.* in oauth2_dpop_zone "oauth2_dpop:default"/,
    'flood: the full zone is logged at alert, named with its realm');

# /metrics shows each realm's zone: default's full, shop1's next to empty
sub dpop_zone_gauges {
    my (@port) = @_;
    my $body = $f->get('/metrics', @port)->{body};
    my ($size) = $body =~ /^oauth2_dpop_zone_bytes (\d+)$/m;
    my ($used) = $body =~ /^oauth2_dpop_zone_used_bytes (\d+)$/m;
    return ($size // -1, $used // -1);
}
my ($dsize, $dused) = dpop_zone_gauges();
ok($dsize > 32 * 1024 && $dsize <= 64 * 1024,
    "flood: oauth2_dpop_zone_bytes ($dsize) is oauth2_dpop_zone 64k less the header");
ok($dused > $dsize * 0.9, "flood: oauth2_dpop_zone_used_bytes ($dused): 90% of it or more");
my ($ssize, $sused) = dpop_zone_gauges('-port' => $f->port(1));
is($ssize, $dsize, "flood: shop1's zone is as large");
ok($sused >= 0 && $sused < $dsize / 4,
    "flood: shop1's zone holds its one proof ($sused bytes used)");

# the flood filled the realm's proofs, not the counters of its throttles
# and rate limits: 40 new callers (a public client from 40 addresses, a
# count each, R83) are each counted, and answered, not refused 429
my %metered;
for my $i (1 .. 40) {
    my $r = $f->post_form('/o/token-metered/', OAuth2Test::form(
        grant_type => 'authorization_code', code => "no-such-code-$i",
        client_id => $fpub->{client_id}, redirect_uri => 'https://client.example/cb',
        code_verifier => 'v' x 43), '-from' => "127.2.0.$i");
    $metered{"$r->{status} "
        . ($r->{headers}{'x-ratelimit-remaining'}[0] // '-')}++;
}
is_deeply(\%metered, { '400 99' => 40 },
    'flood: 40 new callers of a rate-limited endpoint counted (remaining 99), none 429');

# nor another realm's proofs
my $stok = $sr->{json}{access_token};
is($f->get('/protected/', Authorization => "DPoP $stok",
        DPoP => proof(htm => 'GET', htu => "$SBASE/protected/", token => $stok),
        '-port' => $f->port(1))->{status},
    200, "flood: shop1's protected location takes a fresh proof");
$sr = $f->token($sapp->{client_id}, $sapp->{client_secret},
    headers => ['-port' => $f->port(1), DPoP => proof(htu => "$SBASE/o/token/")]);
is($sr->{json}{token_type}, 'DPoP', "flood: shop1's token endpoint takes a fresh proof");

# a reload keeps each realm's zone, and every proof in it
$f->reload;
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $first)->{status},
    401, 'flood: after a reload the first proof replayed is still refused');
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => shift @flood)->{status},
    401, 'flood: after a reload the zone is still full');

# a reload that resizes the zone gets a new one (nginx keeps a zone only at
# its size), into which every live proof is copied: none is taken again
# (before, the new zone started empty)
$f->edit_config(sub { s/oauth2_dpop_zone 64k;/oauth2_dpop_zone 128k;/ });
$f->reload;
($dsize) = dpop_zone_gauges();
ok($dsize > 64 * 1024, "resized: oauth2_dpop_zone_bytes ($dsize) is of the 128k zone");
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $first)->{status},
    401, 'resized: the first proof replayed is still refused');
my ($accepted2, $last) = (0, undef);
while (my $fp = shift @flood) {
    last if $f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $fp)
        ->{status} != 200;
    $accepted2++;
    $last = $fp;
}
cmp_ok($accepted2, '>', 50, "resized: the larger zone takes $accepted2 fresh proofs more");
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $last)->{status},
    401, 'resized: the last of them replayed is refused');

# a reload to a size that cannot hold the live proofs is refused: nginx
# keeps the running configuration, its zone and every proof in it
my @pids = sort $f->worker_pids;
$f->edit_config(sub { s/oauth2_dpop_zone 128k;/oauth2_dpop_zone 64k;/ });
$f->expect_log(qr/no room for \d+ of the \d+ live entries in oauth2_dpop_zone/);
kill 'HUP', $f->master_pid;
my $until = Time::HiRes::time() + 10;
sleep 0.1 while Time::HiRes::time() < $until && OAuth2Test::_slurp($f->error_log)
    !~ /\[emerg\].*no room for (\d+) of the (\d+) live entries in oauth2_dpop_zone "oauth2_dpop:default"; keep the old size/;
like(OAuth2Test::_slurp($f->error_log),
    qr/\[emerg\].*no room for \d+ of the \d+ live entries in oauth2_dpop_zone "oauth2_dpop:default"/,
    'shrunk below its live proofs: the reload is refused, said at emerg with the zone');
sleep 0.5;
is(join(' ', sort $f->worker_pids), join(' ', @pids), '... and the workers are the same');
($dsize) = dpop_zone_gauges();
ok($dsize > 64 * 1024, "... and so is the 128k zone ($dsize)");
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $first)->{status},
    401, '... where the first proof replayed is still refused');
is($f->get('/protected/', Authorization => "DPoP $ftok", DPoP => $last)->{status},
    401, '... and the last');
$f->done;

# RFC 9449 11.1 across a reload that widens iat_window: a proof is
# remembered from its first use for as long as the realm's widest window
# of the new configuration would take it, not only of the old one (before,
# a proof recorded for 2 x 3 s + 1 was taken again 8 s later at 20 s)
{
    my $w = OAuth2Test->new(workers => 1);
    my $wapp = $w->new_app(name => 'widened');
    $w->write_config($w->default_http(extra_http => 'oauth2_dpop on iat_window=3s;'));
    $w->run;
    my $WBASE = 'http://127.0.0.1:' . $w->port;
    my $wr = $w->token($wapp->{client_id}, $wapp->{client_secret},
        headers => [DPoP => proof(htu => "$WBASE/o/token/")]);
    is($wr->{json}{token_type}, 'DPoP', 'widened: a DPoP token');
    my $wtok = $wr->{json}{access_token};
    my $wp = proof(htm => 'GET', htu => "$WBASE/protected/", token => $wtok);
    my $used = time;
    is($w->get('/protected/', Authorization => "DPoP $wtok", DPoP => $wp)->{status},
        200, 'widened: a proof at iat_window=3s: 200');
    $w->edit_config(sub { s/iat_window=3s/iat_window=20s/ });
    $w->reload;
    cmp_ok(time - $used, '<', 6, 'widened: the reload came while the proof was remembered');
    sleep 0.2 while time < $used + 8.5;
    challenge_ok($w->get('/protected/', Authorization => "DPoP $wtok", DPoP => $wp),
        'invalid_dpop_proof', 'widened: the proof replayed 8 s later at iat_window=20s');
    is($w->get('/protected/', Authorization => "DPoP $wtok", DPoP => proof(htm => 'GET',
            htu => "$WBASE/protected/", token => $wtok))->{status},
        200, 'widened: ... where a fresh proof is taken');
    $w->done;
}

$t->done_testing;
