# seed 002: the handshake API (oauth2_handshake: create/, validate/,
# revoke/) with API keys of `oauth2-admin apikey`, handshake tokens as
# bearer tokens at auth_oauth2 locations, and the configuration checks of
# oauth2_handshake_solution, oauth2_handshake_key and
# oauth2_handshake_max_ttl (docs/security.md R9, R11, R16, R42, R43, R62, R63,
# R70, R72, R86).  Rate limits are in rate_limit.t; expiry at the exact
# second is in t/unit/handshake_test.cpp.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use B ();
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use OAuth2Test;
use OAuth2Grants qw(PBKDF2);

OAuth2Test::require_build();

# python3-jwt (Debian's, scripts/install-deps) checks the tokens with a JWT
# library other than ours; missing, the file fails, it never skips
my $PY = '/usr/bin/python3';
if (system("$PY -c 'import jwt' >/dev/null 2>&1") != 0) {
    fail('t/handshake.t needs python3-jwt: run scripts/install-deps');
    done_testing();
    exit;
}

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'rentals', scope => 'read write admin');
my $narrow = $t->new_app(name => 'narrow', scope => 'read');
my $plain = $t->new_app(name => 'plain');    # no scope of its own
my $doomed = $t->new_app(name => 'doomed', scope => 'read write');
my $sleepy = $t->new_app(name => 'sleepy', scope => 'read write');
my $cid = $app->{client_id};

sub apikey {
    my ($client_id, @name) = @_;
    return $t->admin_json('apikey', 'add', $client_id, @name);
}
my $k = apikey($cid, '--name', 'seed');
my $k_revoked = apikey($cid, '--name', 'to-revoke');
my $k_narrow = apikey($narrow->{client_id});
my $k_plain = apikey($plain->{client_id});
my $k_doomed = apikey($doomed->{client_id});
my $k_sleepy = apikey($sleepy->{client_id});
my $key = $k->{api_key};

# every handshake location needs an oauth2_handshake_key (R86): the
# harness's %%DIR%%/handshake.key for most, and for the /keyed/ locations
# another one, 48 random bytes
my $hskey = $t->dir . '/handshake.key';
my $keyfile = $t->dir . '/keyed.key';
{
    open my $in, '<:raw', '/dev/urandom' or die "urandom: $!";
    read $in, my $bytes, 48;
    close $in;
    open my $out, '>:raw', $keyfile or die "$keyfile: $!";
    print $out $bytes;
    close $out;
    chmod 0644, $keyfile;
}
my $SOL = 'oauth2_handshake_solution rental fbs=fbs_rental_db '
    . 'django=djo_rental_db system=fbs_system_db;';

$t->write_config($t->default_http(
    # failed authentications are throttled only where a test says so
    extra_http => 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';'
        . ' oauth2_client_auth_limit off;'
        . ' oauth2_handshake_key %%DIR%%/handshake.key;',
    extra_server => <<"EOF"))->run;
    location /bf/handshake/ {
        oauth2_handshake;
        $SOL
        oauth2_client_auth_limit 3 2s;
    }
    location /api/auth/handshake/ {
        oauth2_handshake;
        $SOL
        oauth2_handshake_solution billing system=sys_billing_db
                                  fbs=fbs_billing_db;
    }
    location /keyed/handshake/ {
        oauth2_handshake;
        oauth2_handshake_key $keyfile;
        $SOL
    }
    location /short/handshake/ {
        oauth2_handshake;
        $SOL
        oauth2_handshake_max_ttl 5m;
    }
    location /hs/ {
        auth_oauth2 api;
        auth_oauth2_scope read;
        alias %%DIR%%/html/;
    }
    location /hs-admin/ {
        auth_oauth2 api;
        auth_oauth2_scope admin;
        alias %%DIR%%/html/;
    }
    location /keyed/hs/ {
        auth_oauth2 api;
        auth_oauth2_scope read;
        oauth2_handshake_key $keyfile;
        alias %%DIR%%/html/;
    }
    location /billing/ {
        auth_oauth2 api;
        auth_oauth2_audience https://billing.example.com/;
        alias %%DIR%%/html/;
    }
EOF

my $HS = '/api/auth/handshake';
my @responses;    # every answer of the handshake locations (R11)

sub hs {
    my ($call, $body, %o) = @_;
    my $base = delete $o{base} // $HS;
    my $r = $t->api('POST', "$base/$call", %o,
        (ref $body ? (json => $body) : (body => $body)));
    push @responses, $r;
    return $r;
}

sub create {
    my (%f) = @_;
    my $base = delete $f{base};
    my %b = (api_key => $key, system_name => 'fayvad_rentals_django',
        solution_name => 'rental', %f);
    delete @b{grep { !defined $b{$_} } keys %b};
    return hs('create/', \%b, defined $base ? (base => $base) : ());
}

# a created handshake (dies unless 201)
sub handshake {
    my $r = create(@_);
    die "create: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{handshake};
}

sub validate {
    my ($h, %o) = @_;
    my $base = delete $o{base};
    return hs('validate/', { handshake_token => $h->{handshake_token},
        handshake_secret => $h->{handshake_secret}, %o },
        (defined $base ? (base => $base) : ()));
}

sub revoke {
    my ($token, %o) = @_;
    return hs('revoke/', { handshake_token => $token }, %o);
}

# a JSON string, not a number, as JSON::PP decoded it (check before any
# numeric use of the value)
sub is_json_string {
    my ($v) = @_;
    return 0 if !defined $v || ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return ($f & B::SVf_POK) && !($f & (B::SVf_IOK | B::SVf_NOK));
}

sub is_true { JSON::PP::is_bool($_[0]) && $_[0] }
sub is_false { JSON::PP::is_bool($_[0]) && !$_[0] }

my $UUID4 =
    qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
my $RFC3339 = qr/^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/;

sub epoch_of {
    my ($s) = @_;
    my @p = ($s // '') =~ $RFC3339 or return undef;
    return timegm($p[5], $p[4], $p[3], $p[2], $p[1] - 1, $p[0]);
}

sub b64url_decode {
    my ($s) = @_;
    return undef unless defined $s && $s =~ /^[A-Za-z0-9_-]*$/;
    $s =~ tr/-_/+\//;
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

sub b64url {
    my $s = encode_base64($_[0], '');
    $s =~ tr/+\//-_/;
    $s =~ s/=+$//;
    return $s;
}

# the decoded header and payload of a JWT (undef if it is not one)
sub jwt_parts {
    my ($jwt) = @_;
    my @p = split /\./, $jwt // '', -1;
    return () unless @p == 3;
    my ($h, $c) = map { eval { JSON::PP->new->decode(b64url_decode($_)) } }
        @p[0, 1];
    return ($h, $c);
}

# the envelope of an error: status, success false, error, error_code and
# details (naming $field, or empty), nothing else
sub envelope_error_ok {
    my ($r, $status, $code, $field, $name) = @_;
    my $ok = is($r->{status}, $status, "$name: $status");
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    $ok &= is(join(',', sort keys %$j), 'details,error,error_code,success',
        "$name: success, error, error_code, details");
    $ok &= ok(is_false($j->{success}), "$name: success false");
    $ok &= ok(!ref $j->{error} && length($j->{error} // ''),
        "$name: an error text");
    $ok &= is($j->{error_code}, $code, "$name: error_code $code");
    my $d = ref $j->{details} eq 'HASH' ? $j->{details} : undef;
    if (defined $field) {
        $ok &= is(join(',', sort keys %{$d // {}}), $field,
            "$name: details names $field");
        $ok &= ok($d && !ref $d->{$field} && length($d->{$field} // ''),
            "$name: details.$field is a message");
    } else {
        $ok &= ok($d && !%$d, "$name: details {}");
    }
    $ok &= like(OAuth2Test::header($r, 'Content-Type') // '',
        qr{^application/json}i, "$name: JSON");
    diag($r->{raw}) unless $ok;
    return $ok;
}

sub created_ok {
    my ($r, $name) = @_;
    my $ok = is($r->{status}, 201, "$name: 201");
    $ok &= ok(is_true(($r->{json} // {})->{success}), "$name: success true");
    diag($r->{raw}) unless $ok;
    return $ok;
}

# python3-jwt: "valid" or "invalid <Error>" for a token under a key given
# as a file (file:<path>: its bytes less one trailing newline, as
# oauth2_handshake_key reads it) or text (text:<string>)
my $PY_VERIFY = <<'EOF';
import sys, jwt
kind, value = sys.argv[1].split(':', 1)
key = open(value, 'rb').read() if kind == 'file' else value.encode()
if kind == 'file' and key.endswith(b'\n'):
    key = key[:-1]
try:
    jwt.decode(sys.argv[2], key, algorithms=['HS256'])
    print('valid')
except jwt.InvalidTokenError as e:
    print('invalid', type(e).__name__)
EOF

# python3-jwt: claims (JSON) signed HS256 under a key, with the header of
# a real handshake token (its kid: the location has two kids for its key,
# the file's and the store's old one, so a token without kid matches none)
my $PY_SIGN = <<'EOF';
import sys, json, jwt
kind, value = sys.argv[1].split(':', 1)
key = open(value, 'rb').read() if kind == 'file' else value.encode()
if kind == 'file' and key.endswith(b'\n'):
    key = key[:-1]
hdr = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
print(jwt.encode(json.loads(sys.argv[2]), key, algorithm='HS256',
                 headers=hdr))
EOF

sub python {
    my ($script, @args) = @_;
    open my $fh, '-|', $PY, '-c', $script, @args or die "python3: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\s+$//;
    return $out;
}

######################################################## seed 002 verbatim

# 1. POST /api/auth/handshake/create/ with the seed's body
my $t0 = time;
my $r = $t->request('POST', "$HS/create/",
    headers => ['Content-Type' => 'application/json'], body => <<"EOF");
{
  "api_key": "$key",
  "system_name": "your_system_name",
  "solution_name": "rental",
  "permissions": ["read", "write", "admin"],
  "expires_in": 86400
}
EOF
push @responses, $r;
is($r->{status}, 201, 'seed create: 201 Created');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json}i,
    'seed create: application/json');
is(OAuth2Test::header($r, 'Cache-Control'), 'no-store',
    'seed create: Cache-Control no-store, the answer holds a secret (R9)');
my $j = JSON::PP->new->decode($r->{body});
is(join(',', sort keys %$j), 'handshake,message,success',
    'seed create: success, handshake, message and nothing else');
ok(is_true($j->{success}), 'seed create: success is the JSON true');
is($j->{message}, 'Handshake created successfully',
    'seed create: the message of the seed');
my $h = $j->{handshake} // {};
is(join(',', sort keys %$h), join(',', sort qw(handshake_id handshake_token
    handshake_secret expires_at system_name solution_name database_names
    permissions)), 'seed create: the handshake has the seed\'s eight fields');
for my $f (qw(handshake_id handshake_token handshake_secret expires_at
    system_name solution_name))
{
    ok(is_json_string($h->{$f}), "seed create: $f is a JSON string");
}
like($h->{handshake_id} // '', $UUID4, 'handshake_id: a UUID v4');
like($h->{handshake_token} // '',
    qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/,
    'handshake_token: a JWT (three base64url parts)');
like($h->{handshake_secret} // '', qr/^[A-Za-z0-9_-]{43,}$/,
    'handshake_secret: 43+ URL-safe characters, 256 bits (R42)');
isnt($h->{handshake_secret}, $key, 'the secret is not the API key');
like($h->{expires_at} // '', $RFC3339, 'expires_at: RFC 3339 in UTC, with Z');
my $exp = epoch_of($h->{expires_at}) // 0;
ok($exp >= int($t0) + 86400 - 1 && $exp <= time + 86400 + 2,
    'expires_at = now + expires_in (86400), within a few seconds')
    or diag("expires_at $h->{expires_at}, now $t0");
is($h->{system_name}, 'your_system_name', 'system_name as sent');
is($h->{solution_name}, 'rental', 'solution_name as sent');
is_deeply($h->{database_names}, { fbs => 'fbs_rental_db',
    django => 'djo_rental_db', system => 'fbs_system_db' },
    'database_names: the roles of oauth2_handshake_solution rental, exactly');
is_deeply($h->{permissions}, [qw(read write admin)],
    'permissions: ["read", "write", "admin"] as asked');
my $seed = $h;

# the token: HS256, jti = handshake_id, exp = expires_at, permissions
my ($jh, $jc) = jwt_parts($seed->{handshake_token});
is(ref $jh && $jh->{alg}, 'HS256', 'handshake_token header: alg HS256');
is(ref $jc && $jc->{jti}, $seed->{handshake_id},
    'handshake_token payload: jti = handshake_id');
is(ref $jc && $jc->{exp}, $exp, 'handshake_token payload: exp = expires_at');
is_deeply(ref $jc ? $jc->{permissions} : undef, [qw(read write admin)],
    'handshake_token payload: the permissions');
unlike($seed->{handshake_token}, qr/\Q$seed->{handshake_secret}\E/,
    'the token does not carry the secret');
like(python($PY_VERIFY, "text:$seed->{handshake_secret}",
    $seed->{handshake_token}), qr/^invalid InvalidSignatureError/,
    'python3-jwt: the token is not signed with the handshake_secret');
is(python($PY_VERIFY, "file:$hskey", $seed->{handshake_token}), 'valid',
    'python3-jwt: the token verifies (HS256) under the location\'s '
    . 'oauth2_handshake_key file (R86)');
like(python($PY_VERIFY, "file:$keyfile", $seed->{handshake_token}),
    qr/^invalid InvalidSignatureError/,
    'python3-jwt: and not under another location\'s key file');

# 2. POST /api/auth/handshake/validate/ with the seed's body
$r = $t->request('POST', "$HS/validate/",
    headers => ['Content-Type' => 'application/json'], body => <<"EOF");
{
  "handshake_token": "$seed->{handshake_token}",
  "handshake_secret": "$seed->{handshake_secret}"
}
EOF
push @responses, $r;
is($r->{status}, 200, 'seed validate: 200');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json}i,
    'seed validate: application/json');
$j = JSON::PP->new->decode($r->{body});
is(join(',', sort keys %$j), 'data,success',
    'seed validate: success and data, nothing else');
ok(is_true($j->{success}), 'seed validate: success true');
my $d = $j->{data} // {};
is(join(',', sort keys %$d), 'database_name,expires_at,permissions,valid',
    'seed validate: data has valid, expires_at, permissions, database_name');
ok(is_json_string($d->{expires_at}), 'seed validate: expires_at a string');
ok(is_json_string($d->{database_name}),
    'seed validate: database_name a string');
ok(is_true($d->{valid}), 'seed validate: valid is the JSON true');
is($d->{expires_at}, $seed->{expires_at}, 'validate: the expires_at of create');
is_deeply($d->{permissions}, [qw(read write admin)],
    'validate: the permissions of the handshake');
is($d->{database_name}, 'fbs_rental_db',
    'validate: database_name is the first role\'s database (fbs)');

# the bearer: permissions act as scopes (R62, R63)
is($t->bearer_get('/hs/', $seed->{handshake_token})->{status}, 200,
    'the handshake token opens an auth_oauth2 location needing read');
is($t->bearer_get('/hs-admin/', $seed->{handshake_token})->{status}, 200,
    'and one needing admin, which its permissions hold');
# a handshake is bound to no resource: like any token asked for without
# resource=, it is for the default audience and refused at a location
# that is another resource (R68), or an API key's holder would reach
# resources its application may not ask a token for
$r = $t->bearer_get('/billing/', $seed->{handshake_token});
is($r->{status}, 401, 'the handshake token at a location of another '
    . 'audience: 401 (R68)');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '',
    qr/error="invalid_token"/, '... invalid_token');

# 3. POST /api/auth/handshake/revoke/ with the seed's body
my $t_revoke = time;
$r = $t->request('POST', "$HS/revoke/",
    headers => ['Content-Type' => 'application/json'], body => <<"EOF");
{
  "handshake_token": "$seed->{handshake_token}"
}
EOF
push @responses, $r;
is($r->{status}, 200, 'seed revoke: 200');
$j = JSON::PP->new->decode($r->{body});
is(join(',', sort keys %$j), 'data,message,success',
    'seed revoke: success, data, message');
ok(is_true($j->{success}), 'seed revoke: success true');
is($j->{message}, 'Handshake revoked successfully',
    'seed revoke: the message of the seed');
$d = $j->{data} // {};
is(join(',', sort keys %$d), 'revoked,revoked_at',
    'seed revoke: data has revoked and revoked_at');
ok(is_json_string($d->{revoked_at}), 'seed revoke: revoked_at a string');
ok(is_true($d->{revoked}), 'seed revoke: revoked is the JSON true');
like($d->{revoked_at} // '', $RFC3339, 'revoked_at: RFC 3339 with Z');
my $revoked_at = $d->{revoked_at};
ok(abs((epoch_of($revoked_at) // 0) - $t_revoke) <= 2,
    'revoked_at: now, within a few seconds');

# after revocation
$r = validate($seed);
is($r->{status}, 200, 'validate after revoke: 200, not 404');
ok(is_false(($r->{json}{data} // {})->{valid}),
    'validate after revoke: valid false');
is($r->{json}{data}{expires_at}, $seed->{expires_at},
    'validate after revoke: still tells expires_at');
my $b = $t->bearer_get('/hs/', $seed->{handshake_token});
is($b->{status}, 401, 'a revoked handshake token is refused as bearer (R62)');
like(OAuth2Test::header($b, 'WWW-Authenticate') // '',
    qr/error="invalid_token"/, 'revoked bearer: error="invalid_token"');
sleep 1.1;
$r = revoke($seed->{handshake_token});
is($r->{status}, 200, 'revoke again: 200');
is(($r->{json}{data} // {})->{revoked_at}, $revoked_at,
    'revoke again: the first revoked_at, a second later');
ok(is_true(($r->{json}{data} // {})->{revoked}), 'revoke again: revoked true');

######################################################## the token's key

# oauth2_handshake_key: the token is HS256 under the file's bytes
$r = hs('create/', { api_key => $key, system_name => 'keyed',
    solution_name => 'rental', permissions => ['read'] },
    base => '/keyed/handshake');
created_ok($r, 'create at a location with oauth2_handshake_key');
my $kh = $r->{json}{handshake} // {};
is(python($PY_VERIFY, "file:$keyfile", $kh->{handshake_token} // ''), 'valid',
    'python3-jwt: the token verifies (HS256) under the key file');
like(python($PY_VERIFY, "text:" . ($kh->{handshake_secret} // ''),
    $kh->{handshake_token} // ''), qr/^invalid/,
    'python3-jwt: and not under its handshake_secret');
$r = validate($kh, base => '/keyed/handshake');
is($r->{status}, 200, 'validate at the keyed location: 200');
ok(is_true(($r->{json}{data} // {})->{valid}), 'keyed handshake: valid');
envelope_error_ok(validate($kh), 401, 'INVALID_TOKEN', undef,
    'a token of the /keyed/ key file where another key file signs');
envelope_error_ok(validate(handshake(permissions => ['read']),
    base => '/keyed/handshake'), 401, 'INVALID_TOKEN', undef,
    'a token of another key file where the /keyed/ key file signs');
is($t->bearer_get('/keyed/hs/', $kh->{handshake_token})->{status}, 200,
    'a file-keyed token opens a location with the same oauth2_handshake_key');
is($t->bearer_get('/hs/', $kh->{handshake_token})->{status}, 401,
    'and not one verifying with another key file');

######################################################## validate/

my $live = handshake(permissions => ['read', 'write']);
$r = validate($live);
is($r->{status}, 200, 'validate a live handshake: 200');
ok(is_true(($r->{json}{data} // {})->{valid}), 'live handshake: valid true');

envelope_error_ok(validate($live,
    handshake_secret => 'x' . $live->{handshake_secret}), 401,
    'INVALID_SECRET', undef, 'validate with a wrong secret');
envelope_error_ok(validate($live,
    handshake_secret => $seed->{handshake_secret}), 401,
    'INVALID_SECRET', undef, 'validate with another handshake\'s secret');

# tampered tokens: 401 INVALID_TOKEN
my ($p_h, $p_c, $p_s) = split /\./, $live->{handshake_token};
my $flip = $p_c;
my $at = int(length($flip) / 2);
substr($flip, $at, 1) = substr($flip, $at, 1) eq 'A' ? 'B' : 'A';
envelope_error_ok(validate($live, handshake_token => "$p_h.$flip.$p_s"), 401,
    'INVALID_TOKEN', undef, 'a token with one payload character changed');
my ($header, $claims) = jwt_parts($live->{handshake_token});
my $claims_json = JSON::PP->new->canonical->encode($claims);
my $header_json = JSON::PP->new->canonical->encode($header);
my $other_key = python($PY_SIGN, 'text:' . ('k' x 48), $claims_json,
    $header_json);
envelope_error_ok(validate($live, handshake_token => $other_key), 401,
    'INVALID_TOKEN', undef, 'the same claims signed with another key');
my $by_secret = python($PY_SIGN, "text:$live->{handshake_secret}",
    $claims_json, $header_json);
envelope_error_ok(validate($live, handshake_token => $by_secret), 401,
    'INVALID_TOKEN', undef, 'the same claims signed with the handshake_secret');
my $none = b64url('{"alg":"none","typ":"JWT"}') . '.' . $p_c . '.';
envelope_error_ok(validate($live, handshake_token => $none), 401,
    'INVALID_TOKEN', undef, 'the same claims with alg none');
envelope_error_ok(validate($live, handshake_token => "$p_h.$p_c"), 401,
    'INVALID_TOKEN', undef, 'a token cut to two parts');
envelope_error_ok(validate($live, handshake_token => 'not-a-jwt'), 401,
    'INVALID_TOKEN', undef, 'a token that is not a JWT');
envelope_error_ok(validate($live, handshake_token => $t->issue_token($cid)),
    401, 'INVALID_TOKEN', undef, 'an opaque access token of the application');
is($t->bearer_get('/hs/', "$p_h.$flip.$p_s")->{status}, 401,
    'the tampered token is refused as bearer');

# signed with the right key (the keyed location's file) but no such jti
my ($kheader, $kclaims) = jwt_parts($kh->{handshake_token});
$kclaims->{jti} = '0b7e5c1e-6d0a-4f5b-9c1d-2a3b4c5d6e7f';
my $forged = python($PY_SIGN, "file:$keyfile",
    JSON::PP->new->canonical->encode($kclaims),
    JSON::PP->new->canonical->encode($kheader));
is(python($PY_VERIFY, "file:$keyfile", $forged), 'valid',
    'the test token with an unknown jti is correctly signed');
envelope_error_ok(validate($kh, handshake_token => $forged,
    base => '/keyed/handshake'), 404, 'HANDSHAKE_NOT_FOUND', undef,
    'a correctly signed token whose jti is no handshake');
envelope_error_ok(hs('revoke/', { handshake_token => $forged },
    base => '/keyed/handshake'), 404, 'HANDSHAKE_NOT_FOUND', undef,
    'revoke of a correctly signed token whose jti is no handshake');
is($t->bearer_get('/keyed/hs/', $forged)->{status}, 401,
    'the signed token of no handshake is refused as bearer');
envelope_error_ok(revoke("$p_h.$flip.$p_s"), 401, 'INVALID_TOKEN', undef,
    'revoke with a tampered token');

$r = validate($live);
ok(is_true(($r->{json}{data} // {})->{valid}),
    'after all that, the live handshake is still valid');

######################################################## bearer scopes

my $ro = handshake(permissions => ['read']);
is($t->bearer_get('/hs/', $ro->{handshake_token})->{status}, 200,
    'handshake with ["read"] at a location needing read: 200');
$b = $t->bearer_get('/hs-admin/', $ro->{handshake_token});
is($b->{status}, 403,
    'handshake with ["read"] where admin is needed: 403 (R63)');
like(OAuth2Test::header($b, 'WWW-Authenticate') // '',
    qr/error="insufficient_scope"/, '403: error="insufficient_scope"');
my $wo = handshake(permissions => ['write']);
is($t->bearer_get('/hs/', $wo->{handshake_token})->{status}, 403,
    'handshake with ["write"] where read is needed: 403');
is($t->bearer_get('/hs/', $live->{handshake_token} . 'x')->{status}, 401,
    'a token with a byte appended: 401');

######################################################## API key lifecycle

my $hr = handshake(api_key => $k_revoked->{api_key}, permissions => ['read']);
ok(is_true(validate($hr)->{json}{data}{valid}),
    'a handshake of the key about to be revoked: valid');
my ($code, $out, $err) = $t->admin('apikey', 'revoke', $cid, $k_revoked->{id});
is($code, 0, 'apikey revoke: exit 0') or diag($err);
envelope_error_ok(create(api_key => $k_revoked->{api_key}), 401,
    'INVALID_API_KEY', undef, 'create with a revoked API key');
envelope_error_ok(validate($hr), 404, 'HANDSHAKE_NOT_FOUND', undef,
    'validate of a handshake of the revoked key (R70)');
is($t->bearer_get('/hs/', $hr->{handshake_token})->{status}, 401,
    'the revoked key\'s handshake token is refused as bearer (R70)');
created_ok(create(), 'the application\'s other key still creates');
ok(is_true(validate($live)->{json}{data}{valid}),
    'and the other key\'s handshakes stay valid');

my $hd = handshake(api_key => $k_doomed->{api_key}, permissions => ['read']);
ok(is_true(validate($hd)->{json}{data}{valid}),
    'a handshake of the application about to be deleted: valid');
($code, $out, $err) = $t->admin('app', 'delete', $doomed->{client_id});
is($code, 0, 'app delete: exit 0') or diag($err);
envelope_error_ok(create(api_key => $k_doomed->{api_key}), 401,
    'INVALID_API_KEY', undef, 'create with the key of a deleted application');
envelope_error_ok(validate($hd), 404, 'HANDSHAKE_NOT_FOUND', undef,
    'validate of a handshake of the deleted application (R70)');
is($t->bearer_get('/hs/', $hd->{handshake_token})->{status}, 401,
    'the deleted application\'s handshake token is refused as bearer (R70)');
envelope_error_ok(create(api_key => 'A' x 43), 401, 'INVALID_API_KEY', undef,
    'create with a key that never existed');
envelope_error_ok(create(api_key => $cid), 401, 'INVALID_API_KEY', undef,
    'create with the client_id as the key');
envelope_error_ok(create(api_key => $app->{client_secret}), 401,
    'INVALID_API_KEY', undef, 'create with the client secret as the key');
# a disabled application (oauth2-admin app disable): its key buys nothing,
# its handshakes validate false and open nothing; app enable restores them
my $hz = handshake(api_key => $k_sleepy->{api_key}, permissions => ['read']);
($code, $out, $err) = $t->admin('app', 'disable', $sleepy->{client_id});
is($code, 0, 'app disable: exit 0') or diag($err);
like($out, qr/"disabled": "\Q$sleepy->{client_id}\E"/,
    'app disable prints {"disabled": client_id}');
envelope_error_ok(create(api_key => $k_sleepy->{api_key}), 401,
    'INVALID_API_KEY', undef, 'create with the key of a disabled application');
$r = validate($hz);
is($r->{status}, 200, 'validate of a disabled application\'s handshake: 200');
ok(is_false($r->{json}{data}{valid}),
    'validate of a disabled application\'s handshake: valid false');
is($t->bearer_get('/hs/', $hz->{handshake_token})->{status}, 401,
    'a disabled application\'s handshake token is refused as bearer');
($code, $out, $err) = $t->admin('app', 'enable', $sleepy->{client_id});
is($code, 0, 'app enable: exit 0') or diag($err);
ok(is_true(validate($hz)->{json}{data}{valid}),
    'after app enable the handshake validates again');
is($t->bearer_get('/hs/', $hz->{handshake_token})->{status}, 200,
    'and opens the location again');
created_ok(create(api_key => $k_sleepy->{api_key}, permissions => ['read']),
    'and its key creates again');
($code, $out, $err) = $t->admin('app', 'disable', 'no-such-client');
isnt($code, 0, 'app disable of an unknown application: refused');

######################################################## permissions

$r = create(api_key => $k_narrow->{api_key}, permissions => ['read', 'admin']);
envelope_error_ok($r, 403, 'PERMISSION_DENIED', 'permissions',
    'app with scope "read" asking ["read","admin"]');
unlike($r->{body}, qr/handshake_token|handshake_secret|eyJ/,
    'PERMISSION_DENIED: no token, no secret');
$r = create(api_key => $k_narrow->{api_key}, permissions => ['admin']);
envelope_error_ok($r, 403, 'PERMISSION_DENIED', 'permissions',
    'app with scope "read" asking ["admin"]');
$r = create(api_key => $k_narrow->{api_key});
created_ok($r, 'the narrow app without permissions');
is_deeply($r->{json}{handshake}{permissions}, ['read'],
    'permissions absent: the application\'s scope ["read"]');
$r = create(api_key => $k_narrow->{api_key}, permissions => ['read']);
created_ok($r, 'the narrow app asking ["read"] after the refusal');
$r = create(permissions => undef);
is_deeply($r->{json}{handshake}{permissions}, [qw(read write admin)],
    'permissions absent: the scope "read write admin" of the application');
$r = create(permissions => JSON::PP::null);
is_deeply(($r->{json}{handshake} // {})->{permissions}, [qw(read write admin)],
    'permissions null: as absent');
$r = create(api_key => $k_plain->{api_key});
created_ok($r, 'an application without a scope of its own');
is_deeply(($r->{json}{handshake} // {})->{permissions}, [qw(read write)],
    'its permissions: oauth2_default_scope ("read write")');
$r = create(permissions => [qw(write read write)]);
is_deeply(($r->{json}{handshake} // {})->{permissions}, [qw(write read)],
    'duplicate permissions are folded, in the order asked');
$r = create(permissions => [('read') x 32]);
created_ok($r, '32 permissions (all "read"): accepted');
is_deeply(($r->{json}{handshake} // {})->{permissions}, ['read'],
    '32 x "read": ["read"]');

######################################################## solutions

$r = create(solution_name => 'billing');
created_ok($r, 'create for the second solution');
is_deeply(($r->{json}{handshake} // {})->{database_names},
    { system => 'sys_billing_db', fbs => 'fbs_billing_db' },
    'its database_names');
$r = validate($r->{json}{handshake} // {});
is(($r->{json}{data} // {})->{database_name}, 'sys_billing_db',
    'validate: the FIRST configured role\'s database (system), not the '
    . 'alphabetically first');

######################################################## bad input

sub bad_create {
    my ($body, $status, $code, $field, $name, %o) = @_;
    my $r = ref $body ? create(%$body) : hs('create/', $body, %o);
    envelope_error_ok($r, $status, $code, $field, $name);
    return $r;
}

my $good = JSON::PP->new->canonical->encode({ api_key => $key,
    system_name => 's', solution_name => 'rental' });
bad_create('{"api_key": "' . $key . '", "system_name": ', 400, 'INVALID_JSON',
    undef, 'malformed JSON (R72)');
bad_create('', 400, 'INVALID_JSON', undef, 'an empty body');
bad_create("[$good]", 400, 'INVALID_JSON', undef, 'a JSON array body');
bad_create('"api_key"', 400, 'INVALID_JSON', undef, 'a JSON string body');
bad_create('null', 400, 'INVALID_JSON', undef, 'a JSON null body');
bad_create(qq({"api_key": "$key", "api_key": "$key", "system_name": "s", )
    . '"solution_name": "rental"}', 400, 'INVALID_JSON', undef,
    'a duplicate key (R72)');
bad_create("$good $good", 400, 'INVALID_JSON', undef, 'two JSON objects');
bad_create("$good\0", 400, 'INVALID_JSON', undef, 'a NUL after the object');
# the object and 7 or 8 arrays: 8 or 9 levels
my $nest8 = substr($good, 0, -1) . ', "x": ' . ('[' x 7) . '1' . (']' x 7)
    . '}';
my $nest9 = substr($good, 0, -1) . ', "x": ' . ('[' x 8) . '1' . (']' x 8)
    . '}';
bad_create($nest9, 400, 'INVALID_JSON', undef, 'nesting 9 deep (R72)');
created_ok(hs('create/', $nest8), 'nesting 8 deep with an unknown member');
bad_create(substr($good, 0, -1) . ', "x": ' . ('[' x 5000) . (']' x 5000) . '}',
    400, 'INVALID_JSON', undef, 'nesting 5000 deep');
bad_create(qq({"api_key": "$key", "system_name": "s\xff", )
    . '"solution_name": "rental"}', 400, 'INVALID_JSON', undef,
    'invalid UTF-8 in a string');
bad_create(qq({"api_key": "$key", "system_name": "s\\u0000x", )
    . '"solution_name": "rental"}', 400, 'INVALID_JSON', undef,
    'an escaped NUL in a string');

# types
for my $c (
    [api_key => 12345, 'a number'], [api_key => [$key], 'a list'],
    [api_key => { k => $key }, 'an object'],
    [api_key => JSON::PP::true, 'true'],
    [system_name => 7, 'a number'], [system_name => ['s'], 'a list'],
    [solution_name => ['rental'], 'a list'], [solution_name => 1, 'a number'],
    [solution_name => JSON::PP::false, 'false'])
{
    bad_create({ $c->[0] => $c->[1] }, 400, 'VALIDATION_ERROR', $c->[0],
        "$c->[0] as $c->[2]");
}
for my $f (qw(api_key system_name solution_name)) {
    bad_create({ $f => undef }, 400, 'VALIDATION_ERROR', $f, "$f missing");
    bad_create({ $f => JSON::PP::null }, 400, 'VALIDATION_ERROR', $f,
        "$f null");
    bad_create({ $f => '' }, 400, 'VALIDATION_ERROR', $f, "$f blank");
}
bad_create('{}', 400, 'VALIDATION_ERROR', 'api_key', 'an empty object');
for my $c (['"86400"', 'the string "86400"'], ['1.5', '1.5'],
    ['86400.0', '86400.0'], ['1e5', '1e5'], ['true', 'true'],
    ['[86400]', 'a list'], ['{}', 'an object'], ['59', '59'], ['0', '0'],
    ['-86400', '-86400'], ['2592001', 'max_ttl + 1 (30 days + 1 s)'])
{
    bad_create(substr($good, 0, -1) . qq(, "expires_in": $c->[0]}), 400,
        'VALIDATION_ERROR', 'expires_in', "expires_in $c->[1]");
}
for my $c (['"read"', 'a string'], ['"read write"', 'a scope string'],
    ['[]', 'an empty list'], ['[1]', 'a list with a number'],
    ['["read", 2]', 'a list with a number after a name'],
    ['[null]', 'a list with null'], ['[["read"]]', 'a nested list'],
    ['["read write"]', 'a name with a space'], ['[""]', 'an empty name'],
    ['["read\""]', 'a name with a quote'], ['["r\\\\d"]', 'a backslash'],
    ['["r\u00e9ad"]', 'a non-ASCII name'],
    ['["re\u0001ad"]', 'a control character'],
    ['{"read": true}', 'an object'], ['true', 'true'], ['7', 'a number'],
    ['[' . join(',', map { "\"p$_\"" } 1 .. 33) . ']', '33 names'])
{
    bad_create(substr($good, 0, -1) . qq(, "permissions": $c->[0]}), 400,
        'VALIDATION_ERROR', 'permissions', "permissions as $c->[1]");
}
for my $f (qw(system_name solution_name)) {
    bad_create({ $f => 'x' x 151 }, 400, 'VALIDATION_ERROR', $f,
        "$f of 151 characters");
    for my $c (["a\x01b", '\x01'], ["a\nb", 'a newline'], ["a\tb", 'a tab'],
        ["a\x7fb", 'DEL'], ["a\x1bb", 'ESC'])
    {
        bad_create({ $f => $c->[0] }, 400, 'VALIDATION_ERROR', $f,
            "$f with $c->[1]");
    }
}
$r = create(system_name => 'x' x 150);
created_ok($r, 'system_name of 150 characters');
is(($r->{json}{handshake} // {})->{system_name}, 'x' x 150,
    'system_name of 150 characters, as sent');
# DRF's CharField trims, then "This field may not be blank."
$r = create(system_name => '   ');
{
    ok($r->{status} == 400 && ref $r->{json} eq 'HASH'
        && ($r->{json}{error_code} // '') eq 'VALIDATION_ERROR'
        && join(',', keys %{$r->{json}{details} // {}}) eq 'system_name',
        'system_name of spaces only: 400 VALIDATION_ERROR naming system_name')
        or diag("got $r->{status} $r->{body}");
}
bad_create({ solution_name => '   ' }, 400, 'VALIDATION_ERROR',
    'solution_name', 'solution_name of spaces only');
bad_create({ solution_name => 'unknown' }, 400, 'VALIDATION_ERROR',
    'solution_name', 'an unknown solution_name');
bad_create({ solution_name => 'Rental' }, 400, 'VALIDATION_ERROR',
    'solution_name', 'solution_name in another case');
bad_create({ solution_name => 'fbs_rental_db' }, 400, 'VALIDATION_ERROR',
    'solution_name', 'a database name as solution_name');

# expires_in bounds
for my $c ([60, 'the minimum 60'], [2592000, 'the default max_ttl 2592000']) {
    my $t1 = time;
    $r = create(expires_in => $c->[0]);
    created_ok($r, "expires_in $c->[1]");
    my $e = epoch_of(($r->{json}{handshake} // {})->{expires_at}) // 0;
    ok($e >= int($t1) + $c->[0] - 1 && $e <= time + $c->[0] + 2,
        "expires_in $c->[1]: expires_at = now + $c->[0]");
}
my $t1 = time;
$r = create(expires_in => undef);
my $e = epoch_of(($r->{json}{handshake} // {})->{expires_at}) // 0;
ok($e >= int($t1) + 86399 && $e <= time + 86402,
    'expires_in absent: 86400 (a day)');
$r = create(expires_in => JSON::PP::null);
created_ok($r, 'expires_in null: as absent');
# where oauth2_handshake_max_ttl is shorter than a day, it bounds the
# default too, not only what expires_in asks
$t1 = time;
$r = create(base => '/short/handshake');
created_ok($r, 'at a location of max_ttl 5m, expires_in absent');
$e = epoch_of(($r->{json}{handshake} // {})->{expires_at}) // 0;
ok($e >= int($t1) + 299 && $e <= time + 302,
    'expires_in absent at max_ttl 5m: 300 s, not a day');
$r = create(expires_in => 301, base => '/short/handshake');
is($r->{status}, 400, 'expires_in 301 at max_ttl 5m: 400');

# validate/ and revoke/ fields
for my $c ([{}, 'handshake_token', 'validate without fields'],
    [{ handshake_token => $live->{handshake_token} }, 'handshake_secret',
        'validate without the secret'],
    [{ handshake_secret => $live->{handshake_secret} }, 'handshake_token',
        'validate without the token'],
    [{ handshake_token => 5, handshake_secret => 's' }, 'handshake_token',
        'validate with a number as token'],
    [{ handshake_token => $live->{handshake_token}, handshake_secret => [] },
        'handshake_secret', 'validate with a list as secret'],
    [{ handshake_token => $live->{handshake_token}, handshake_secret => '' },
        'handshake_secret', 'validate with a blank secret'],
    [{ handshake_token => '', handshake_secret => 's' }, 'handshake_token',
        'validate with a blank token'])
{
    envelope_error_ok(hs('validate/', $c->[0]), 400, 'VALIDATION_ERROR',
        $c->[1], $c->[2]);
}
envelope_error_ok(hs('revoke/', {}), 400, 'VALIDATION_ERROR',
    'handshake_token', 'revoke without a token');
envelope_error_ok(hs('revoke/', { handshake_token => JSON::PP::true }), 400,
    'VALIDATION_ERROR', 'handshake_token', 'revoke with true as token');
envelope_error_ok(hs('revoke/', '[1]'), 400, 'INVALID_JSON', undef,
    'revoke with an array');
envelope_error_ok(hs('validate/', '{"handshake_token": '), 400,
    'INVALID_JSON', undef, 'validate with malformed JSON');

# content types
for my $c (['text/plain', 'text/plain'],
    ['application/x-www-form-urlencoded', 'a form type'],
    ['multipart/form-data; boundary=x', 'multipart'],
    ['application/jsonx', 'application/jsonx'],
    ['application/json-patch+json', 'application/json-patch+json'])
{
    envelope_error_ok(hs('create/', $good, content_type => $c->[0]), 400,
        'INVALID_CONTENT_TYPE', undef, "Content-Type $c->[1]");
}
envelope_error_ok(hs('create/', $good, content_type => undef), 400,
    'INVALID_CONTENT_TYPE', undef, 'no Content-Type');
envelope_error_ok(hs('create/', $good, headers => ['Content-Type',
    'application/json']), 400, 'INVALID_CONTENT_TYPE', undef,
    'two Content-Type headers (R2)');
created_ok(hs('create/', $good,
    content_type => 'application/json; charset=utf-8'),
    'Content-Type application/json; charset=utf-8');
created_ok(hs('create/', $good, content_type => 'Application/JSON'),
    'Content-Type in capitals');

# methods
for my $m (qw(GET PUT DELETE PATCH)) {
    for my $call (qw(create/ validate/ revoke/)) {
        my $r = $t->api($m, "$HS/$call");
        push @responses, $r;
        envelope_error_ok($r, 405, 'METHOD_NOT_ALLOWED', undef, "$m $call");
        is(OAuth2Test::header($r, 'Allow'), 'POST', "$m $call: Allow: POST");
    }
}

# size: 16 KB of JSON is fine, one byte more is 413
my $pad16 = substr($good, 0, -1) . ', "pad": "'
    . ('p' x (16384 - length($good) - 11)) . '"}';
is(length $pad16, 16384, 'the test body is 16384 bytes');
created_ok(hs('create/', $pad16), 'a body of exactly 16 KB');
my $big = substr($pad16, 0, -2) . 'p"}';
for my $c ([hs('create/', $big), 'create with 16 KB + 1 byte'],
    [hs('validate/', '{"x": "' . ('v' x 70000) . '"}'),
        'validate with a 70 KB body'])
{
    my ($r, $name) = @$c;
    is($r->{status}, 413, "$name: 413");
    {
        ok(ref $r->{json} eq 'HASH' && is_false($r->{json}{success})
            && ($r->{json}{error_code} // '') eq 'REQUEST_TOO_LARGE',
            "$name: the envelope with error_code REQUEST_TOO_LARGE")
            or diag("got $r->{body}");
    }
}
$r = $t->api('POST', "$HS/create/",
    headers => ['Transfer-Encoding' => 'chunked'],
    body => OAuth2Test::chunked($big));
push @responses, $r;
is($r->{status}, 413, 'a chunked body over 16 KB: 413');

# paths
for my $p ("$HS/", "$HS/creat/", "$HS/create/x", "$HS/CREATE/",
    "$HS/validate/extra/", "$HS/revokes/")
{
    my $r = $t->api('POST', $p, body => $good);
    push @responses, $r;
    envelope_error_ok($r, 404, 'NOT_FOUND', undef, "POST $p");
}
created_ok(hs('create', $good), 'create without the trailing slash');
$r = hs('validate', { handshake_token => $live->{handshake_token},
    handshake_secret => $live->{handshake_secret} });
is($r->{status}, 200, 'validate without the trailing slash: 200');

######################################################## never a 500

ok(!(grep { $_->{status} >= 500 || $_->{status} == 0 } @responses),
    'no handshake answer was a 5xx or a dropped connection (R11)')
    or diag(join "\n", map { "$_->{status} $_->{body}" }
        grep { $_->{status} >= 500 || !$_->{status} } @responses);
ok(!(grep { !ref $_->{json} } grep { length $_->{body} } @responses),
    'every handshake answer with a body is JSON');
is(scalar(grep { ($_->{headers}{'cache-control'} // [''])->[0] ne 'no-store' }
    @responses), 0, 'every handshake answer has Cache-Control: no-store (R9)');
my $access = do { local (@ARGV, $/) = ($t->dir . '/access.log'); <> // '' };
unlike($access, qr/" 5\d\d /, 'access.log: no 5xx status');
my $elog = do { local (@ARGV, $/) = ($t->error_log); <> // '' };
unlike($elog, qr/answering 5\d\d|\[(?:alert|crit)\]/,
    'error.log: no 5xx answer, no alert, no crit');

######################################################## the store

# only SHA-256 of the API keys and salted hashes of the secrets (R16, R43)
my @secrets = ($key, $k_revoked->{api_key}, $k_narrow->{api_key},
    $k_plain->{api_key}, $k_doomed->{api_key});
push @secrets, grep { defined } map {
    my $h = ref $_->{json} eq 'HASH' ? $_->{json}{handshake} : undef;
    $h ? ($h->{handshake_secret}, $h->{handshake_token}) : ()
} @responses;
ok(@secrets > 50, 'over fifty keys, secrets and tokens to look for ('
    . scalar(@secrets) . ')');
my $s = $t->store;
my $dump = `mdb_dump -a -p '$s' 2>&1` . `mdb_dump -a '$s' 2>&1`;
like($dump, qr/VERSION=3/, 'mdb_dump read the store');
unlike($dump, qr/handshake_hs256_key/,
    'mdb_dump: no handshake key in the store, it is a file (R86)');
my $raw = do { local (@ARGV, $/) = ("$s/data.mdb"); <> // '' };
ok(length $raw > 4096, 'data.mdb read');
my @in_dump = grep { index($dump, $_) >= 0 } @secrets;
ok(!@in_dump, 'mdb_dump: no API key, handshake_secret or token in clear '
    . '(R43)') or diag("found: @in_dump");
my @in_raw = grep { index($raw, $_) >= 0 } @secrets;
ok(!@in_raw, 'data.mdb bytes, free pages included: none of them either')
    or diag("found: @in_raw");

my @logged = grep { index($access . $elog, $_) >= 0 } @secrets;
ok(!@logged, 'access.log and error.log: no API key, secret or token')
    or diag("found: @logged");

######################################################## brute force

# oauth2_client_auth_limit 3 2s: 3n = 9 failures from an address, then
# even the right key waits (R17)
my $bf = '/bf/handshake';
for my $i (1 .. 9) {
    my $r = hs('create/', { api_key => "wrong-key-$i", system_name => 's',
        solution_name => 'rental' }, base => $bf);
    is($r->{status}, 401, "wrong API key #$i: 401");
}
$r = hs('create/', { api_key => $key, system_name => 's',
    solution_name => 'rental' }, base => $bf);
is($r->{status}, 429, 'the 10th failure-laden request, with the right key: '
    . '429 (R17)');
like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[12]$/,
    '429: Retry-After within the 2 s window');
{
    ok(ref $r->{json} eq 'HASH' && is_false($r->{json}{success})
        && ($r->{json}{error_code} // '') eq 'RATE_LIMITED',
        '429 of the lockout: the envelope with error_code RATE_LIMITED')
        or diag("got $r->{body}");
}
is(validate($live, base => $bf)->{status}, 429,
    'validate with the right secret from the locked address: 429');
created_ok(create(), 'the location without the throttle is unaffected');
sleep 2.2;
created_ok(hs('create/', { api_key => $key, system_name => 's',
    solution_name => 'rental' }, base => $bf),
    'after the 2 s window the right key creates again (R17)');
# a wrong handshake secret is a failed authentication too: 9 of them
# from the address, and the right one waits
sleep 2.2;
for my $i (1 .. 9) {
    my $r = validate({ handshake_token => $live->{handshake_token},
        handshake_secret => "wrong-secret-$i" }, base => $bf);
    ok($r->{status} == 401 || $r->{status} == 429,
        "wrong handshake secret #$i: refused") or diag("got $r->{status}");
}
is(validate($live, base => $bf)->{status}, 429,
    'the right secret after 9 wrong ones from the address: 429 (R17)');
sleep 2.2;
is(validate($live, base => $bf)->{status}, 200,
    'after the window the right secret validates again');

######################################################## nginx -t

# nginx_t_fails($conf, $re, $name, keyless => 1): the server's extra
# locations $conf, with an oauth2_handshake_key for all unless keyless
sub nginx_t_fails {
    my ($conf, $re, $name, %o) = @_;
    my $c = OAuth2Test->new;
    open my $fh, '>:raw', $c->dir . '/short.key' or die;
    print $fh 'k' x 10;
    close $fh;
    $c->write_config($c->default_http(extra_server => $conf,
        extra_http => $o{keyless} ? ''
            : 'oauth2_handshake_key %%DIR%%/handshake.key;'));
    my ($code, $out) = $c->nginx_t;
    isnt($code, 0, "nginx -t fails: $name");
    like($out, $re, "nginx -t: $name: the message");
    $c->{done} = 1;    # never started
}

nginx_t_fails("location /h/ { oauth2_handshake; $SOL }",
    qr/\[emerg\]\ \Q"oauth2_handshake" requires "oauth2_handshake_key\E/x,
    'oauth2_handshake without oauth2_handshake_key (R86)', keyless => 1);
nginx_t_fails('location /h/ { oauth2_handshake; }',
    qr/\[emerg\]\ \Q"oauth2_handshake" requires at least one\E
        \Q "oauth2_handshake_solution"\E/x,
    'oauth2_handshake without a solution');
nginx_t_fails('location /h/ { oauth2_handshake; '
    . 'oauth2_handshake_solution rental fbs_rental_db; }',
    qr/\[emerg\]\ "oauth2_handshake_solution":
        \Q "fbs_rental_db" is not role=database\E/x,
    'a solution argument without "="');
nginx_t_fails('location /h/ { oauth2_handshake; '
    . 'oauth2_handshake_solution rental =db; }',
    qr/\[emerg\] "oauth2_handshake_solution": "=db"/, 'an empty role');
nginx_t_fails('location /h/ { oauth2_handshake; '
    . 'oauth2_handshake_solution rental fbs=; }',
    qr/\[emerg\] "oauth2_handshake_solution": "fbs="/, 'an empty database');
nginx_t_fails('location /h/ { oauth2_handshake; '
    . 'oauth2_handshake_solution rental fbs=a django=b fbs=c; }',
    qr/\[emerg\] "oauth2_handshake_solution": role "fbs" is given twice/,
    'a duplicate role');
nginx_t_fails("location /h/ { oauth2_handshake; $SOL $SOL }",
    qr/\[emerg\] "oauth2_handshake_solution": .*duplicate solution name/,
    'a duplicate solution name');
nginx_t_fails('location /h/ { oauth2_handshake; '
    . 'oauth2_handshake_solution rental; }',
    qr/\[emerg\] invalid number of arguments in "oauth2_handshake_solution"/,
    'a solution without databases');
nginx_t_fails("location /h/ { oauth2_handshake; $SOL "
    . 'oauth2_handshake_max_ttl 10s; }',
    qr/\[emerg\] "oauth2_handshake_max_ttl" must be at least 60s/,
    'oauth2_handshake_max_ttl 10s');
nginx_t_fails("location /h/ { oauth2_handshake; $SOL "
    . 'oauth2_handshake_key %%DIR%%/missing.key; }',
    qr{\[emerg\] "oauth2_handshake_key": \S*/missing\.key: No such file},
    'oauth2_handshake_key naming a missing file');
nginx_t_fails("location /h/ { oauth2_handshake; $SOL "
    . 'oauth2_handshake_key %%DIR%%/short.key; }',
    qr{\[emerg\] "oauth2_handshake_key": \S*/short\.key: .*10 bytes.*32},
    'oauth2_handshake_key naming a 10-byte file');

$t->done_testing;
