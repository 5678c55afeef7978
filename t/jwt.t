# JWT access tokens (RFC 9068) and the JWKS (issue 5): oauth2_jwt_key,
# oauth2_access_token_format jwt, oauth2_jwt_audience, oauth2_jwks, the
# JWTs at auth_oauth2, /o/revoke_token/ and /o/introspect/.  Every token is
# checked independently with Debian's python3-jwt (t/clients/
# jwt_verify.py); the forgeries are made with it too, from the real key
# files, so that each refused token differs from an accepted one by the
# one thing under test.  docs/security.md R9, R45, R52, R56, R57, R62, R66, R68.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);
use OAuth2Jwt qw(:all);

OAuth2Test::require_build();

require_pyjwt('the JWT test');

my $ISS = 'https://auth.example.com';
my $JSON = JSON::PP->new->canonical;

######################################################## keys (openssl CLI)

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';
mkdir $K or die "mkdir $K: $!";

sub openssl {
    my ($code, $out, $err) = $t->_run_cmd('/usr/bin/openssl', @_);
    die "openssl @_: exit $code: $err" if $code;
    return $out;
}

sub genkey {
    my ($file, @how) = @_;
    openssl('genpkey', @how, '-out', $file);
}

sub pubkey {
    my ($from, $to) = @_;
    openssl('pkey', '-in', $from, '-pubout', '-out', $to);
}

sub hmac_key {
    my ($file, $n) = @_;
    open my $r, '<:raw', '/dev/urandom' or die "urandom: $!";
    read($r, my $bytes, $n) == $n or die "urandom: short read";
    close $r;
    # hex text without a line end: every byte of the file is the secret
    open my $w, '>:raw', $file or die "$file: $!";
    print $w substr(unpack('H*', $bytes), 0, $n);
    close $w;
}

my @EC = ('-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
my @ED = ('-algorithm', 'ED25519');
my @RSA = ('-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048');
genkey("$K/ec.pem", @EC);
genkey("$K/ec2.pem", @EC);
genkey("$K/ed.pem", @ED);
genkey("$K/ed2.pem", @ED);
genkey("$K/rsa.pem", @RSA);
genkey("$K/rsa2.pem", @RSA);
pubkey("$K/ec.pem", "$K/ec_pub.pem");
pubkey("$K/ed.pem", "$K/ed_pub.pem");
pubkey("$K/rsa.pem", "$K/rsa_pub.pem");
hmac_key("$K/hmac.key", 64);
hmac_key("$K/hmac2.key", 64);

my %B = (
    es256 => { alg => 'ES256', key => "$K/ec.pem", pub => "$K/ec_pub.pem",
        other => "$K/ec2.pem", kty => 'EC' },
    eddsa => { alg => 'EdDSA', key => "$K/ed.pem", pub => "$K/ed_pub.pem",
        other => "$K/ed2.pem", kty => 'OKP' },
    rs256 => { alg => 'RS256', key => "$K/rsa.pem", pub => "$K/rsa_pub.pem",
        other => "$K/rsa2.pem", kty => 'RSA' },
    hs256 => { alg => 'HS256', key => "$K/hmac.key",
        other => "$K/hmac2.key" },
);
my @BLOCKS = qw(es256 eddsa rs256 hs256);

######################################################## helpers

# numbers stay JSON numbers once a test name has interpolated them
sub numeric {
    my ($c) = @_;
    for my $k (qw(exp iat nbf user_id)) {
        $c->{$k} += 0 if defined $c->{$k} && !ref $c->{$k};
    }
    return $c;
}

# a sign operation for jwt_verify.py: $tok's header and claims with the
# changes given (undef deletes a member), signed with alg/key (default:
# the block's own algorithm and private key)
sub forge_op {
    my ($blk, $tok, %o) = @_;
    my ($h, $c) = parts($tok);
    numeric($c);
    for my $pair ([$h, $o{header}], [$c, $o{claims}]) {
        my ($obj, $chg) = @$pair;
        for my $k (keys %{$chg // {}}) {
            if (defined $chg->{$k}) { $obj->{$k} = $chg->{$k} }
            else { delete $obj->{$k} }
        }
    }
    return { op => 'sign', header => $h, claims => $c,
        alg => $o{alg} // $B{$blk}{alg}, key_file => $o{key} // $B{$blk}{key},
        ($o{high_s} ? (high_s => JSON::PP::true) : ()) };
}

sub forge {
    my $r = py(forge_op(@_));
    die "forge: $r->{error}" unless $r->{ok};
    return $r->{token};
}

sub wa { OAuth2Test::header($_[0], 'WWW-Authenticate') // '' }

my $INVALID = 'Bearer realm="api", error="invalid_token"';

# the token is refused at $path as a bad token (R62)
sub refused_ok {
    my ($path, $tok, $name) = @_;
    my $r = $t->bearer_get($path, $tok);
    is($r->{status}, 401, "$name: 401 (R62)");
    is(wa($r), $INVALID, "$name: error=\"invalid_token\" (R62)");
}

sub opens_ok {
    my ($path, $tok, $name) = @_;
    my $r = $t->bearer_get($path, $tok);
    is($r->{status}, 200, "$name: 200") or diag($r->{raw});
    return $r;
}

sub jwks_of {
    my ($tt, $path) = @_;
    my $r = $tt->get($path);
    return $r->{status} == 200 && ref $r->{json} eq 'HASH'
        && ref $r->{json}{keys} eq 'ARRAY' ? $r->{json} : undef;
}

######################################################## the server

my $app = $t->new_app(name => 'jwt backend', scope => 'read write');
my $users = $t->new_app(name => 'jwt users',
    grant => ['password', 'refresh_token'], scope => 'read write');
my $pw = 'alice jwt password';
my $alice = add_user($t, 'alice', $pw);

my $api = <<'EOF';
            auth_oauth2 "api";
            add_header X-Client $oauth2_client_id always;
            add_header X-Scope $oauth2_scope always;
            alias %%DIR%%/html/;
EOF

sub block {
    my ($name, $keys, $extra) = @_;
    return <<"EOF";
    location /$name/ {
        oauth2_issuer $ISS;
$keys        oauth2_access_token_format jwt;
        location = /$name/token/ { oauth2_token; }
        location = /$name/jwks/ { oauth2_jwks; }
        location /$name/api/ {
$api        }
@{[ $extra // '' ]}    }
EOF
}

my $server = block('es256', "        oauth2_jwt_key $K/ec.pem;\n", <<"EOF")
        location = /es256/api/token/ { oauth2_jwt_token $users->{client_id}; }
        location /es256/otheriss/ {
            oauth2_issuer https://other.example.com;
            oauth2_jwt_audience $ISS;
$api        }
        location /es256/sameaud/ {
            oauth2_jwt_audience $ISS;
$api        }
        location /es256/otheraud/ {
            oauth2_jwt_audience other;
$api        }
EOF
    . block('eddsa', "        oauth2_jwt_key $K/ed.pem;\n")
    . block('rs256', "        oauth2_jwt_key $K/rsa.pem;\n")
    . block('hs256', "        oauth2_jwt_key $K/hmac.key hmac;\n"
        . "        oauth2_jwt_key $K/ec_pub.pem;\n")
    . <<"EOF";
    # introspection verifies a JWT's signature first: this location holds
    # every key of the blocks above
    location = /jwt/introspect/ {
        oauth2_jwt_key $K/ec.pem;
        oauth2_jwt_key $K/ed.pem;
        oauth2_jwt_key $K/rsa.pem;
        oauth2_jwt_key $K/hmac.key hmac;
        oauth2_introspect;
    }
    # per application: access_token_format in its record
    location /perapp/ {
        oauth2_issuer $ISS;
        oauth2_jwt_key $K/ec.pem;
        location = /perapp/token/ { oauth2_token; }
        location = /perapp/jwt-token/ {
            oauth2_access_token_format jwt;
            oauth2_token;
        }
        location /perapp/api/ {
$api        }
    }
    location /noiss/ {
        oauth2_jwt_key $K/ec.pem;
        location = /noiss/api/token/ { oauth2_jwt_token $users->{client_id}; }
        location /noiss/api/ {
$api        }
    }
EOF

$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n",
    extra_server => grant_locations(extra => $server)))->run;

######################################################## opaque by default

my $r = $t->token($app->{client_id}, $app->{client_secret});
is($r->{status}, 200, 'no oauth2_access_token_format: token 200');
like($r->{json}{access_token} // '', qr/^[A-Za-z0-9_~+\/-]{20,}=*$/,
    'no oauth2_access_token_format: the access token is opaque (no dots)');
my $opaque = $r->{json}{access_token};
opens_ok('/es256/api/', $opaque,
    'an opaque token at a location with JWT keys');

######################################################## each algorithm

my %tok;    # block => the first access token
for my $b (@BLOCKS) {
    my $blk = $B{$b};
    my $alg = $blk->{alg};
    my $asym = $alg ne 'HS256';
    my $r = $t->token($app->{client_id}, $app->{client_secret},
        path => "/$b/token/");
    is($r->{status}, 200, "$alg: client_credentials token 200");
    $t->no_store_ok($r, "$alg token");
    my $j = $r->{json} // {};
    my $at = $j->{access_token} // '';
    $tok{$b} = $at;
    like($at, qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/,
        "$alg: the access token is a compact JWS (R44)");
    is($j->{token_type}, 'Bearer', "$alg: token_type Bearer");
    ok(!exists $j->{refresh_token},
        "$alg: client credentials: no refresh token (R41)");
    my ($h, $c) = parts($at);
    is($h->{alg}, $alg, "$alg: header alg $alg");
    is($h->{typ}, 'at+jwt', "$alg: header typ at+jwt (RFC 9068 2.1)");
    like($h->{kid} // '', qr/^\S+$/, "$alg: header kid");

    # the JWKS
    my $jwks = jwks_of($t, "/$b/jwks/");
    ok($jwks, "$alg: GET the oauth2_jwks location: 200 {\"keys\": [..]}");
    $jwks //= { keys => [] };
    my @keys = @{$jwks->{keys}};
    my @private = grep { my $k = $_; grep { exists $k->{$_} }
        qw(d p q dp dq qi k) } @keys;
    ok(!@private, "$alg: JWKS: no private or secret member (d, p, q, k ...)");
    if ($asym) {
        is(scalar @keys, 1, "$alg: JWKS: one key");
        my $k = $keys[0] // {};
        is($k->{kid}, $h->{kid}, "$alg: JWKS: the token's kid");
        is($k->{alg}, $alg, "$alg: JWKS: alg $alg");
        is($k->{use}, 'sig', "$alg: JWKS: use sig");
        is($k->{kty}, $blk->{kty}, "$alg: JWKS: kty $blk->{kty}");
    } else {
        is(scalar @keys, 1, 'HS256: JWKS: only the EC public key of the set');
        ok(!grep({ ($_->{kty} // '') eq 'oct' } @keys),
            'HS256: JWKS: no oct key (the HMAC secret is never published)');
        ok(!grep({ ($_->{kid} // '') eq ($h->{kid} // '') } @keys),
            'HS256: JWKS: not the HMAC key\'s kid');
        is($keys[0]{kty}, 'EC', 'HS256: JWKS: the public EC key');
    }

    # independent verification (python3-jwt), aud and iss checked
    my $v = py({ op => 'verify', token => $at, algorithms => [$alg],
        audience => $ISS, issuer => $ISS,
        $asym ? (jwks => $jwks) : (key_file => $blk->{key}) });
    ok($v->{ok}, "$alg: python3-jwt verifies the token with "
        . ($asym ? 'the JWKS' : 'the key file'))
        or diag($v->{error});
    my $vc = $v->{claims} // {};
    is($vc->{iss}, $ISS, "$alg: iss");
    is($vc->{aud}, $ISS, "$alg: aud is the issuer (no oauth2_jwt_audience)");
    ok(defined $vc->{exp} && defined $vc->{iat}
        && $vc->{exp} == $vc->{iat} + ($j->{expires_in} // -1),
        "$alg: exp = iat + expires_in");
    ok(defined $vc->{iat} && abs($vc->{iat} - time) <= 5, "$alg: iat is now");
    like($vc->{jti} // '', qr/^[A-Za-z0-9_-]{22,}$/, "$alg: jti");
    is($vc->{sub}, $app->{client_id},
        "$alg: sub is the client_id for client_credentials");
    is($vc->{client_id}, $app->{client_id}, "$alg: client_id");
    is($vc->{scope}, 'read write', "$alg: scope");
    is($vc->{scope}, $j->{scope}, "$alg: scope as in the token response");

    # the token opens the location; the variables come from its record
    $r = opens_ok("/$b/api/", $at, "$alg: the JWT at auth_oauth2");
    is($r->{body}, "hello\n", "$alg: the protected file is served");
    is(OAuth2Test::header($r, 'X-Client'), $app->{client_id},
        "$alg: \$oauth2_client_id");
    is(OAuth2Test::header($r, 'X-Scope'), 'read write',
        "$alg: \$oauth2_scope");

    # a second token: another jti
    my $at2 = $t->access_token($app, path => "/$b/token/");
    my (undef, $c2) = parts($at2);
    ok($c2->{jti} && $c2->{jti} ne ($c->{jti} // ''),
        "$alg: each token has its own jti");

    # the forgeries.  First the control: the same header and claims
    # re-signed with the real key by python3-jwt are accepted, so each
    # refusal below is the doing of the one change it makes.
    my $now = time;
    my @names;
    my @ops;
    my $add = sub { my ($name, @o) = @_; push @names, $name;
        push @ops, forge_op($b, $at, @o) };
    $add->('control');
    $add->('alg none', header => { alg => 'none' }, alg => 'none');
    $add->('alg "None"', header => { alg => 'None' }, alg => 'none');
    $add->('header alg HS256 signed with the public key PEM as the HMAC '
        . 'secret (alg confusion)', header => { alg => 'HS256' },
        alg => 'HS256', key => $blk->{pub}) if $asym;
    # the key's algorithm decides, never the header's: another alg named
    # over a signature that the key itself made is refused too
    $add->('header alg other than the key\'s, signed by the key itself',
        header => { alg => $B{$b}{alg} eq 'HS256' ? 'RS256' : 'HS256' });
    $add->('signed by another key with the same kid', key => $blk->{other});
    $add->('unknown kid', header => { kid => 'no-such-key' });
    $add->('a random jti (valid signature, no store record)',
        claims => { jti => b64u_enc(join '', map { chr int rand 256 } 1 .. 32) });
    $add->('exp 31 s in the past (beyond the 30 s leeway) (R45)',
        claims => { exp => $now - 31 });
    $add->('exp 10 s in the past (within the leeway)',
        claims => { exp => $now - 10 });
    $add->('no exp (RFC 9068 2.2)', claims => { exp => undef });
    $add->('exp as a string', claims => { exp => "$c->{exp}" });
    $add->('nbf 60 s in the future', claims => { nbf => $now + 60 });
    $add->('nbf 10 s in the future (within the leeway)',
        claims => { nbf => $now + 10 });
    $add->('iat 60 s in the future', claims => { iat => $now + 60 });
    $add->('another iss', claims => { iss => 'https://evil.example.com' });
    $add->('no iss', claims => { iss => undef });
    $add->('another aud (R68)', claims => { aud => 'other' });
    $add->('no aud (R68)', claims => { aud => undef });
    $add->('a crit header', header => { crit => ['exp'] });
    # ECDSA's (r, n - s) verifies too: the module accepts only the low s,
    # so a token has one encoding (found by scripts/fuzz-jwt)
    $add->('the same ES256 signature with the high s', high_s => 1)
        if $B{$b}{alg} eq 'ES256';
    my @f = py(@ops);
    my %f;
    for my $i (0 .. $#names) {
        ok($f[$i]{ok}, "$alg forge: $names[$i]") or diag($f[$i]{error});
        $f{$names[$i]} = $f[$i]{token} // '';
    }
    opens_ok("/$b/api/", $f{control},
        "$alg: python3-jwt's re-signing of the same claims (the control)");
    for my $name (grep { !/control|within the leeway/ } @names) {
        refused_ok("/$b/api/", $f{$name}, "$alg: $name");
    }
    opens_ok("/$b/api/", $f{'exp 10 s in the past (within the leeway)'},
        "$alg: exp 10 s in the past: within the 30 s leeway");
    opens_ok("/$b/api/", $f{'nbf 10 s in the future (within the leeway)'},
        "$alg: nbf 10 s in the future: within the 30 s leeway");

    # the same bytes, changed after signing
    my ($hs, $ps, $ss) = split /\./, $at;
    my %claims = %$c;
    $claims{scope} = 'read write admin';
    refused_ok("/$b/api/", "$hs." . b64u_enc($JSON->encode(numeric(\%claims)))
        . ".$ss", "$alg: payload tampered (scope), signature kept");
    refused_ok("/$b/api/", "$hs.$ps.", "$alg: signature removed");
    my $flip = $ss;
    substr($flip, 5, 1) = substr($flip, 5, 1) eq 'A' ? 'B' : 'A';
    refused_ok("/$b/api/", "$hs.$ps.$flip", "$alg: one signature character "
        . 'changed');
    refused_ok("/$b/api/", $c->{jti}, "$alg: the jti alone as an opaque token");
    opens_ok("/$b/api/", $at, "$alg: the real token still works");
}

# a token of one key set is refused where only another set verifies (R68)
refused_ok('/rs256/api/', $tok{es256}, 'ES256 token at the RS256 location');
refused_ok('/es256/api/', $tok{hs256}, 'HS256 token at the ES256 location');
refused_ok('/hs256/api/', $tok{eddsa}, 'EdDSA token at the HS256 location');
opens_ok('/hs256/api/', $tok{es256},
    'ES256 token at the HS256 location whose set holds the EC public key');

refused_ok('/protected/', $tok{es256},
    'ES256 token at a location without oauth2_jwt_key');
{
    my $r = $t->get('/es256/jwks/');
    like(OAuth2Test::header($r, 'Content-Type') // '',
        qr{^application/(?:jwk-set\+)?json}i, 'JWKS: a JSON content type');
    $r = $t->request('HEAD', '/es256/jwks/');
    is($r->{status}, 200, 'JWKS: HEAD 200');
    is($r->{body}, '', 'JWKS: HEAD has no body');
}

# python3-jwt itself refuses another audience: it really checks aud
my $v = py({ op => 'verify', token => $tok{es256}, algorithms => ['ES256'],
    jwks => jwks_of($t, '/es256/jwks/'), audience => 'other', issuer => $ISS });
ok(!$v->{ok} && ($v->{error} // '') =~ /Audience/i,
    'python3-jwt: another audience fails (the checker can fail)');

######################################################## iss and aud

refused_ok('/es256/otheriss/', $tok{es256},
    'a location with another oauth2_issuer (aud still matching)');
opens_ok('/es256/sameaud/', $tok{es256},
    'a location with oauth2_jwt_audience = the token\'s aud');
refused_ok('/es256/otheraud/', $tok{es256},
    'a location with oauth2_jwt_audience other (R68)');
my $aud_other = forge('es256', $tok{es256}, claims => { aud => 'other' });
opens_ok('/es256/otheraud/', $aud_other,
    'aud "other" signed by the key: accepted where the audience is other');
refused_ok('/es256/api/', $aud_other,
    'the same token where the audience is the issuer (R68)');

######################################################## refresh JWTs

for my $loc ('es256', 'noiss') {
    my $r = $t->api('POST', "/$loc/api/token/",
        json => { username => 'alice', password => $pw });
    is($r->{status}, 200, "/$loc/api/token/: 200");
    my ($acc, $ref) = @{$r->{json} // {}}{qw(access refresh)};
    ok($acc && $ref, "/$loc/api/token/: access and refresh JWTs");
    opens_ok("/$loc/api/", $acc // '',
        "/$loc/: the simplejwt access token at auth_oauth2");
    refused_ok("/$loc/api/", $ref // '',
        "/$loc/: the refresh JWT as a bearer token (R62)");
}
{
    # the refresh JWT with the access token's aud, re-signed with the key:
    # still a refresh token (its record's type), never a bearer (R62)
    my $r = $t->api('POST', '/es256/api/token/',
        json => { username => 'alice', password => $pw });
    my $ref = forge('es256', $r->{json}{refresh} // '',
        claims => { aud => $ISS, token_type => 'access' });
    refused_ok('/es256/api/', $ref,
        'a refresh JWT re-signed with aud and token_type access (R62)');
}

######################################################## revocation

for my $b ('es256', 'hs256') {
    my $alg = $B{$b}{alg};
    my $at = $t->access_token($app, path => "/$b/token/");
    my (undef, $c) = parts($at);
    my $copy = forge($b, $at);
    opens_ok("/$b/api/", $at, "$alg revocation: the token works before");
    opens_ok("/$b/api/", $copy, "$alg revocation: its re-signed copy too");
    my $i = introspect($t, $app, $at, path => '/jwt/introspect/');
    is($i->{status}, 200, "$alg: introspection 200");
    is($i->{json}{active}, JSON::PP::true, "$alg: introspection active true (R57)");
    is($i->{json}{client_id}, $app->{client_id}, "$alg: introspection client_id");
    is($i->{json}{scope}, 'read write', "$alg: introspection scope");
    is($i->{json}{exp}, $c->{exp}, "$alg: introspection exp = the JWT's exp");
    is($i->{json}{sub}, $app->{client_id}, "$alg: introspection sub");
    # the jti is in the JWT's clear payload: alone, it is no token
    inactive_ok($t, introspect($t, $app, $c->{jti}, path => '/jwt/introspect/'),
        "$alg: introspection of the jti alone, as an opaque token");
    $r = $t->revoke($app->{client_id}, $app->{client_secret}, $c->{jti});
    is($r->{status}, 200, "$alg: /o/revoke_token/ with the jti alone: 200");
    opens_ok("/$b/api/", $at, "$alg: and the JWT still works");

    $r = $t->revoke($app->{client_id}, $app->{client_secret}, $at);
    is($r->{status}, 200, "$alg: /o/revoke_token/ with the JWT: 200");
    for my $n (1 .. 4) {
        refused_ok("/$b/api/", $at,
            "$alg: revoked JWT, request $n after the revocation (R52, R66)");
    }
    refused_ok("/$b/api/", $copy,
        "$alg: the re-signed copy of the revoked JWT (revoked by jti)");
    inactive_ok($t, introspect($t, $app, $at, path => '/jwt/introspect/'),
        "$alg: introspection after the revocation");
}

# a JWT whose signature does not verify is not an active token (R56)
{
    my $at = $t->access_token($app, path => '/es256/token/');
    my ($hs, $ps, $ss) = split /\./, $at;
    my (undef, $c) = parts($at);
    my %claims = (%$c, scope => 'read write admin');
    my $tampered = "$hs." . b64u_enc($JSON->encode(numeric(\%claims))) . ".$ss";
    my $none = forge('es256', $at, header => { alg => 'none' }, alg => 'none');
    # signed with the real key, but not valid before an hour from now:
    # introspection checks the claims too, not only the signature
    my $early = forge('es256', $at, claims => { nbf => time + 3600 });
    for my $c ([$tampered, 'a JWT with a tampered payload'],
        [$none, 'an alg "none" copy of a JWT'],
        [$early, 'a copy signed with the key, its nbf an hour ahead'])
    {
        my $r = introspect($t, $app, $c->[0], path => '/jwt/introspect/');
        is($r->{status}, 200, "introspection of $c->[1]: 200");
        is_deeply($r->{json}, { active => JSON::PP::false },
            "introspection of $c->[1]: {\"active\": false} (R56)");
    }
}

######################################################## key rotation (reload)

my $t2 = OAuth2Test->new;
my $rapp = $t2->new_app(name => 'rotation', scope => 'read');

sub rotation_config {
    my $keys = join '', map { "        oauth2_jwt_key $_;\n" } @_;
    $t2->write_config($t2->default_http(
        extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n",
        extra_server => <<"EOF"));
    location /rot/ {
        oauth2_issuer $ISS;
$keys        oauth2_access_token_format jwt;
        location = /rot/token/ { oauth2_token; }
        location = /rot/jwks/ { oauth2_jwks; }
        location /rot/api/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    }
EOF
}

sub kids {
    my ($jwks) = @_;
    return join ' ', sort map { $_->{kid} // '?' } @{($jwks // {})->{keys} // []};
}

rotation_config("$K/ec.pem");
$t2->run;
my $ta = $t2->access_token($rapp, path => '/rot/token/');
my ($ha) = parts($ta);
my $kid_a = $ha->{kid} // 'A';
is($ha->{alg}, 'ES256', 'rotation: key A (EC) signs');
is(kids(jwks_of($t2, '/rot/jwks/')), $kid_a, 'rotation: the JWKS lists A');
is($t2->bearer_get('/rot/api/', $ta)->{status}, 200, 'rotation: A\'s token 200');

rotation_config("$K/rsa.pem", "$K/ec.pem");
$t2->reload;
is($t2->bearer_get('/rot/api/', $ta)->{status}, 200,
    'rotation B, A: the token signed by A still opens the location');
my $tb = $t2->access_token($rapp, path => '/rot/token/');
my ($hb) = parts($tb);
my $kid_b = $hb->{kid} // 'B';
is($hb->{alg}, 'RS256', 'rotation B, A: new tokens are signed by B (RSA)');
isnt($kid_b, $kid_a, 'rotation B, A: new tokens have B\'s kid');
my $jwks2 = jwks_of($t2, '/rot/jwks/');
is(kids($jwks2), join(' ', sort $kid_a, $kid_b),
    'rotation B, A: the JWKS lists both keys');
is($t2->bearer_get('/rot/api/', $tb)->{status}, 200,
    'rotation B, A: B\'s token 200');
my @v = py(map { { op => 'verify', token => $_, jwks => $jwks2,
    algorithms => ['ES256', 'RS256'], audience => $ISS, issuer => $ISS } }
    $ta, $tb);
ok($v[0]{ok}, 'rotation B, A: python3-jwt verifies A\'s token with the JWKS')
    or diag($v[0]{error});
ok($v[1]{ok}, 'rotation B, A: python3-jwt verifies B\'s token with the JWKS')
    or diag($v[1]{error});

rotation_config("$K/rsa.pem", "$K/ec_pub.pem");
$t2->reload;
is($t2->bearer_get('/rot/api/', $ta)->{status}, 200,
    'rotation B, A public only: A\'s token still verifies');
is((parts($t2->access_token($rapp, path => '/rot/token/')))[0]{kid}, $kid_b,
    'rotation B, A public only: B signs');
is(kids(jwks_of($t2, '/rot/jwks/')), join(' ', sort $kid_a, $kid_b),
    'rotation B, A public only: the JWKS lists both keys');

rotation_config("$K/rsa.pem");
$t2->reload;
$r = $t2->bearer_get('/rot/api/', $ta);
is($r->{status}, 401,
    'rotation B only: A\'s token is refused on the next request after reload');
is($t2->bearer_get('/rot/api/', $ta)->{status}, 401,
    'rotation B only: A\'s token refused again (the other worker)');
is($t2->bearer_get('/rot/api/', $tb)->{status}, 200,
    'rotation B only: B\'s token 200');
is(kids(jwks_of($t2, '/rot/jwks/')), $kid_b,
    'rotation B only: the JWKS lists only B');

######################################################## nginx -t

my $tc = OAuth2Test->new;
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384',
    '-out', "$K/p384.pem");
openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024',
    '-out', "$K/rsa1024.pem");
hmac_key("$K/hmac10.key", 10);
{
    open my $fh, '>', "$K/garbage.pem" or die;
    print $fh "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n"
        . "-----END PRIVATE KEY-----\n";
    close $fh;
}

# nginx -t of a server with one location; (exit code, output)
sub conf_test {
    my ($location) = @_;
    my $file = $tc->dir . '/t.conf';
    $tc->write_config(<<"EOF", file => $file);
oauth2_store %%STORE%%;
oauth2_pbkdf2_iterations 1000;
oauth2_issuer http://127.0.0.1:%%PORT%%;
server {
    listen 127.0.0.1:%%PORT%%;
    $location
}
EOF
    unlink $tc->dir . '/nginx-t.log';
    return $tc->nginx_t(file => $file);
}

my $jwt_loc = 'location = /t/ { oauth2_access_token_format jwt; '
    . 'oauth2_jwt_key %s; oauth2_token; }';
my ($code, $out) = conf_test(sprintf $jwt_loc, "$K/ec.pem");
is($code, 0, 'nginx -t: an EC P-256 key: ok') or diag($out);
($code, $out) = conf_test(sprintf $jwt_loc, "$K/hmac.key hmac");
is($code, 0, 'nginx -t: a 64-byte HMAC key: ok') or diag($out);
($code, $out) = conf_test('location /t/ { oauth2_jwt_key '
    . "$K/ec_pub.pem; auth_oauth2 api; alias %%DIR%%/html/; }");
is($code, 0, 'nginx -t: a public key at an auth_oauth2 location: ok')
    or diag($out);
for my $c (["$K/missing.pem", 'a missing key file'],
    ["$K/p384.pem", 'an EC P-384 key'],
    ["$K/rsa1024.pem", 'an RSA 1024 key'],
    ["$K/hmac10.key hmac", 'an HMAC file of 10 bytes'],
    ["$K/garbage.pem", 'garbage PEM'],
    ["$K/hmac.key", 'an HMAC file without "hmac" (not PEM)'])
{
    my ($code, $out) = conf_test(sprintf $jwt_loc, $c->[0]);
    my ($file) = $c->[0] =~ /^(\S+)/;
    isnt($code, 0, "nginx -t: $c->[1]: fails");
    like($out, qr/\[emerg\].*\Q$file\E/, "nginx -t: $c->[1]: the file is named")
        or diag($out);
}
($code, $out) = conf_test('location = /t/ { oauth2_access_token_format jwt; '
    . 'oauth2_token; }');
isnt($code, 0, 'nginx -t: oauth2_access_token_format jwt without a key: fails');
like($out, qr/\[emerg\].*oauth2_jwt_key/,
    'nginx -t: jwt without a key: the message names oauth2_jwt_key');
($code, $out) = conf_test('location = /t/ { oauth2_access_token_format jwt; '
    . "oauth2_jwt_key $K/ec_pub.pem; oauth2_token; }");
isnt($code, 0, 'nginx -t: jwt access tokens with only a public key: fails');
like($out, qr/\[emerg\].*oauth2_jwt_key/,
    'nginx -t: only a public key: the message names oauth2_jwt_key');
($code, $out) = conf_test('location = /t/ { oauth2_jwt_token some-client; '
    . "oauth2_jwt_key $K/ec_pub.pem; }");
isnt($code, 0, 'nginx -t: oauth2_jwt_token with only a public key: fails');
like($out, qr/\[emerg\].*oauth2_jwt_key/,
    'nginx -t: oauth2_jwt_token with a public key: names oauth2_jwt_key');
($code, $out) = conf_test('location = /t/ { oauth2_jwt_token some-client; }');
isnt($code, 0, 'nginx -t: oauth2_jwt_token without a key: fails');
($code, $out) = conf_test("location = /t/ { oauth2_jwt_key $K/ec.pem foo; "
    . 'oauth2_token; }');
isnt($code, 0, 'nginx -t: oauth2_jwt_key <file> foo: fails');

######################################## the application's own token format

{
    my $jwt_app = $t->admin_json('app', 'add', '--name', 'wants jwt',
        '--grant', 'client_credentials', '--access-token-format', 'jwt');
    is($jwt_app->{access_token_format}, 'jwt',
        'app add --access-token-format jwt: shown in the record');
    my $at = $t->access_token($jwt_app, path => '/perapp/token/');
    like($at // '', qr/^[\w-]+\.[\w-]+\.[\w-]+$/,
        'an app with access_token_format jwt gets a JWT where the location '
        . 'has a key but no oauth2_access_token_format');
    opens_ok('/perapp/api/', $at, 'its JWT opens the location');

    my $opaque_app = $t->admin_json('app', 'add', '--name', 'wants opaque',
        '--grant', 'client_credentials', '--access-token-format', 'opaque');
    $at = $t->access_token($opaque_app, path => '/perapp/jwt-token/');
    unlike($at // '', qr/\./, 'an app with access_token_format opaque gets '
        . 'an opaque token at an oauth2_access_token_format jwt location');
    opens_ok('/perapp/api/', $at, 'its opaque token opens the location');

    my ($code, undef, $err) = $t->admin_raw('--store', $t->store, 'app',
        'add', '--name', 'bad', '--grant', 'client_credentials',
        '--access-token-format', 'paseto');
    isnt($code, 0, 'app add --access-token-format paseto: refused');
    like($err, qr/--access-token-format/, 'the error names the option');
}

$t->done_testing;
