# oauth2_jwt_key files through nginx: what `nginx -t` refuses (a file
# over 64 KiB, a private key whose public half is another key's) and
# takes (a binary HS256 key of 32 bytes whose last is a newline), and a
# key rotation that keeps the old key's public half: it verifies, but
# discovery never offers its alg and no id_token is signed with it.
# The keys live in files the operator names (docs/security.md R86); the
# unit tests of the same checks are in t/unit/jwt_keys_test.cpp.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use MIME::Base64 qw(decode_base64url encode_base64);
use Test::More;
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $K = "$dir/keys";
mkdir $K or die "mkdir $K: $!";
chmod 0755, $K;

sub openssl {
    my ($code, undef, $err) = $t->_run_cmd('/usr/bin/openssl', @_);
    die "openssl @_: exit $code: $err" if $code;
}

for (['rsa', 'RSA', 'rsa_keygen_bits:2048'],
    ['ec', 'EC', 'ec_paramgen_curve:P-256'],
    ['ec2', 'EC', 'ec_paramgen_curve:P-256']) {
    my ($name, $alg, $opt) = @$_;
    openssl('genpkey', '-algorithm', $alg, '-pkeyopt', $opt,
        '-out', "$K/$name.pem");
}
openssl('pkey', '-in', "$K/rsa.pem", '-pubout', '-out', "$K/rsa_pub.pem");
chmod 0644, glob("$K/*.pem");

# a config whose server has one oauth2_jwt_key line (and the token
# endpoint the default server has)
sub with_key {
    my ($line) = @_;
    my $file = "$dir/key.conf";
    $t->write_config($t->default_http(extra_http => "$line\n"), file => $file);
    return $file;
}

sub conf_fails {
    my ($line, $re, $name) = @_;
    my ($code, $out) = $t->nginx_t(file => with_key($line));
    isnt($code, 0, "$name: nginx -t fails");
    like($out, $re, "$name: the message names the file and why") or diag($out);
}

sub conf_ok {
    my ($line, $name) = @_;
    my ($code, $out) = $t->nginx_t(file => with_key($line));
    is($code, 0, "$name: nginx -t passes") or diag($out);
}

############################################################ nginx -t

# a key file is read up to 64 KiB: a file named by mistake (a log, a
# device) fails here rather than signing with a secret no one can copy
OAuth2Test::write_file("$K/max.key", 'k' x 65536);
OAuth2Test::write_file("$K/big.key", 'k' x 65537);
conf_ok("oauth2_jwt_key $K/max.key hmac;", 'an HS256 key file of 64 KiB');
conf_fails("oauth2_jwt_key $K/big.key hmac;", qr/\Q$K\E\/big\.key: over 64 KiB/,
    'an HS256 key file of 64 KiB and a byte');
conf_fails("oauth2_jwt_key /dev/urandom hmac;", qr{/dev/urandom: over 64 KiB},
    'oauth2_jwt_key /dev/urandom hmac');

# `openssl rand -out file 32` of bytes 0x80-0xff, the last a newline: a
# binary key of 32 bytes, not a text key of 31 (refused as too short)
OAuth2Test::write_file("$K/bin.key",
    join('', map { chr(0x80 + int rand 128) } 1 .. 31) . "\n");
conf_ok("oauth2_jwt_key $K/bin.key hmac;",
    'a binary HS256 key of 32 bytes ending in a newline');

# RFC 8725 3.1: a PEM file named as an HS256 secret (the public key's
# text, which anyone may have, would sign tokens): refused, for the JWT
# keys and the handshake key alike
conf_fails("oauth2_jwt_key $K/rsa_pub.pem hmac;",
    qr/\Q$K\E\/rsa_pub\.pem: a PEM key, not an HS256 secret/,
    'oauth2_jwt_key <public key PEM> hmac');
conf_fails("oauth2_handshake_key $K/rsa_pub.pem;",
    qr/\Q$K\E\/rsa_pub\.pem: a PEM key, not an HS256 secret/,
    'oauth2_handshake_key <public key PEM>');
conf_ok("oauth2_jwt_key $K/rsa_pub.pem;", 'the same file without hmac (verify only)');

# an EC private key (SEC1 DER: SEQUENCE {1, d, [0] curve, [1] point})
# with the public point of another key: OpenSSL reads it, and the
# signature made and checked at load time refuses it; without that check
# every token it signed would be refused by every verifier
openssl('ec', '-in', "$K/$_.pem", '-outform', 'DER', '-out', "$K/$_.der") for qw(ec ec2);
sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}
my ($der_a, $der_b) = map { slurp("$K/$_.der") } qw(ec ec2);
is(length($der_a) . ' ' . length($der_b), '121 121', 'SEC1 DER of P-256 keys: 121 bytes');
sub ec_pem {
    my ($file, $der) = @_;
    OAuth2Test::write_file($file, "-----BEGIN EC PRIVATE KEY-----\n"
        . encode_base64($der) . "-----END EC PRIVATE KEY-----\n");
    chmod 0644, $file;
}
ec_pem("$K/same.pem", $der_a);
ec_pem("$K/mixed.pem", substr($der_a, 0, 56) . substr($der_b, 56));
conf_ok("oauth2_jwt_key $K/same.pem;", 'an EC private key written as SEC1 PEM');
conf_fails("oauth2_jwt_key $K/mixed.pem;",
    qr/\Q$K\E\/mixed\.pem: the private key does not match its public key/,
    'an EC private key with another key\'s public point');

############################################################ rotation

# RS256 tokens were signed by rsa.pem; the operator moves to ES256 and
# keeps rsa_pub.pem (listed first) until those tokens expire
my ($user, $pw) = ('quinn', 'Lantern-Harbour-Quiet-31');
OAuth2Authorize::user_add($t, $user, $pw);
my $CB = 'http://127.0.0.1:' . $t->port . '/callback';
my $app = $t->new_app(name => 'rp', grant => 'authorization_code',
    scope => 'openid read', redirect_uris => [$CB]);
my $rs_app = $t->new_app(name => 'rs256 rp', grant => 'authorization_code',
    scope => 'openid read', redirect_uris => [$CB], id_token_alg => 'RS256');
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => "oauth2_jwt_key $K/rsa_pub.pem;\noauth2_jwt_key $K/ec.pem;\n",
    extra_server => <<'EOF'))->run;
    location = /.well-known/openid-configuration { oauth2_metadata; }
    location = /o/jwks/ { oauth2_jwks; }
EOF

my $JSON = JSON::PP->new->canonical;
my $d = $t->get('/.well-known/openid-configuration')->{json} // {};
is_deeply($d->{id_token_signing_alg_values_supported}, ['ES256'],
    'discovery offers ES256 only, not the RS256 of a key that only verifies');
my @kty = map { $_->{kty} } @{($t->get('/o/jwks/')->{json} // {})->{keys} // []};
is_deeply(\@kty, ['RSA', 'EC'], 'the JWKS still publishes the old RSA key');

my $f = OAuth2Authorize->new($t);
my ($verifier, $challenge) = OAuth2Authorize::pkce();
sub q_for {
    my ($client) = @_;
    return OAuth2Authorize::query(client_id => $client->{client_id},
        response_type => 'code', redirect_uri => $CB, scope => 'openid read',
        state => 's1', code_challenge => $challenge,
        code_challenge_method => 'S256');
}
my $session = $f->login(q_for($app), $user, $pw);
ok($session, 'signed in');
for my $c ([$app, 'an application with no id_token alg'],
    [$rs_app, 'an application registered for RS256']) {
    my ($client, $name) = @$c;
    my $code = $f->code(q_for($client), $session);
    my $r = $f->redeem($code, client => $client, redirect_uri => $CB,
        verifier => $verifier);
    is($r->{status}, 200, "$name: the code is redeemed") or diag($r->{body});
    my ($h) = (split(/\./, $r->{json}{id_token} // ''), '');
    my $header = eval { $JSON->decode(decode_base64url($h)) } // {};
    is($header->{alg}, 'ES256',
        "$name: an ES256 id_token, the verify-only RSA key signs none");
}

$t->done_testing;
