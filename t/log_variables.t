# $oauth2_error, $oauth2_grant and $oauth2_token_id in log_format (issue
# 15, item 3).  Every request carries an X-Seq header that the log format
# writes, so each access-log line is read back for the request that made
# it: a token request logs its grant and a 16-hex-digit token id; every
# later validation of that token logs the SAME id, refused or not; each
# refusal of auth_oauth2 logs why (R60 missing, R61 malformed, R62
# unknown/expired/revoked, R63 insufficient_scope, R17 rate_limited); the
# token endpoint logs the grant once it is a supported one, and no
# $oauth2_error.  No log (this format, nginx's combined access log,
# error.log) ever holds a token, a refresh token, a code, a client secret
# or a password (R64); the id is 16 hex digits of a SHA-256 (R43), never
# a piece of the token.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;
use OAuth2Grants qw(add_user);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $CB = 'https://client.example/cb';
my $app = $t->new_app(name => 'logged',
    grant => ['client_credentials', 'password', 'refresh_token',
        'authorization_code'], redirect_uris => [$CB]);
my $short = $t->new_app(name => 'short-lived', ttl => 1);
my $victim = $t->new_app(name => 'to be disabled');
my $PW = 'Velvet-kettle-orbit-28';
add_user($t, 'alice', $PW);
my @SECRETS = ($app->{client_secret}, $short->{client_secret},
    $victim->{client_secret}, $PW);
{
    my ($code, $out, $err) = $t->_run_cmd('/usr/bin/openssl', 'genpkey',
        '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-out', $t->dir . '/ec.pem');
    die "openssl genpkey: $err" if $code;
    chmod 0644, $t->dir . '/ec.pem';
}

$t->write_config($t->default_http(
    extra_http => <<'EOF',
oauth2_pbkdf2_iterations 1000;
# the background expiry removes an expired token's record within seconds
# of start and every minute: the expired tokens below are cleared when
# the test says so (oauth2-admin cleartokens)
oauth2_expiry_cleanup off;
log_format o2 'seq=$http_x_seq status=$status error=$oauth2_error '
              'grant=$oauth2_grant token_id=$oauth2_token_id';
access_log %%DIR%%/o2.log o2;
EOF
    extra_server => <<'EOF'))->run;
    location = /o/authorize/ { oauth2_authorize; }
    location /rl/ {
        auth_oauth2 "api";
        oauth2_rate_limit 1/h;
        alias %%DIR%%/html/;
    }
    location /jwt/ {
        oauth2_jwt_key %%DIR%%/ec.pem;
        oauth2_access_token_format jwt;
        location = /jwt/token/ { oauth2_token; }
        location /jwt/api/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
        # the key signs id_tokens too: nginx -t wants their JWKS
        location = /jwt/jwks/ { oauth2_jwks; }
    }
EOF

my $SEQ = 0;

# the o2 line of the request sent with X-Seq $seq (waits for it a little):
# { status, error, grant, token_id }, '-' for an empty value
sub line_of {
    my ($seq) = @_;
    my $end = time + 3;
    while (1) {
        for my $l (split /\n/, OAuth2Test::_slurp($t->dir . '/o2.log')) {
            next unless $l =~ /^seq=\Q$seq\E /;
            my %f = $l =~ /(\w+)=(\S*)/g;
            $f{$_} = '-' for grep { $f{$_} eq '' } keys %f;
            return \%f;
        }
        return { status => 'no line', error => '', grant => '',
            token_id => '' } if time > $end;
        sleep 0.05;
    }
}

# get/post with a fresh X-Seq: (response, its log line)
sub logged_get {
    my ($path, @h) = @_;
    my $seq = 's' . ++$SEQ;
    my $r = $t->get($path, 'X-Seq' => $seq, @h);
    return ($r, line_of($seq));
}

sub logged_post {
    my ($path, $body, @h) = @_;
    my $seq = 's' . ++$SEQ;
    my $r = $t->post_form($path, $body, 'X-Seq' => $seq, @h);
    return ($r, line_of($seq));
}

sub basic { return (Authorization => $t->basic($_[0]{client_id},
    $_[0]{client_secret})) }

sub bearer { return (Authorization => "Bearer $_[0]") }

# 16 hex digits of SHA-256(s), as the README says the id is
sub id_of { return substr(sha256_hex($_[0]), 0, 16) }

my @TOKENS;    # every credential handed out or sent: never in a log

# a token response and its line: 200, the grant, a 16-hex id that is not
# a piece of the token; the access token (or '')
sub issued_ok {
    my ($r, $l, $grant, $name) = @_;
    my $tok = ref $r->{json} eq 'HASH' ? $r->{json}{access_token} // '' : '';
    push @TOKENS, grep { defined && length } $tok,
        (ref $r->{json} eq 'HASH' ? $r->{json}{refresh_token} : undef);
    is($r->{status}, 200, "$name: 200") or diag($r->{raw});
    is($l->{status}, 200, "$name: the log line has status 200");
    is($l->{grant}, $grant, "$name: \$oauth2_grant $grant");
    like($l->{token_id}, qr/^[0-9a-f]{16}$/,
        "$name: \$oauth2_token_id is 16 hex digits");
    is($l->{error}, '-', "$name: no \$oauth2_error at the token endpoint");
    ok(length $tok && index($tok, $l->{token_id}) < 0
        && index(lc $tok, $l->{token_id}) < 0,
        "$name: the id is no piece of the token (R64)");
    return $tok;
}

# a request to an auth_oauth2 location and its line
sub validated_ok {
    my ($path, $h, $status, $error, $id, $name) = @_;
    my ($r, $l) = logged_get($path, @$h);
    is($r->{status}, $status, "$name: $status") or diag($r->{raw});
    is($l->{status}, $status, "$name: the log line has status $status");
    is($l->{error}, $error, "$name: \$oauth2_error $error");
    is($l->{grant}, '-', "$name: no \$oauth2_grant at auth_oauth2");
    if (defined $id) {
        is($l->{token_id}, $id, "$name: \$oauth2_token_id $id, the id the "
            . 'token was issued with');
    }
    return $l;
}

######################################################## issue, then validate

# expired: tokens of 1 s, issued now, used at the end
my ($r, $l) = logged_post('/o/token/', 'grant_type=client_credentials',
    basic($short));
my $short_tok = issued_ok($r, $l, 'client_credentials', 'a 1 s token');
my $short_id = $l->{token_id};
($r, $l) = logged_post('/jwt/token/', 'grant_type=client_credentials',
    basic($short));
my $short_jwt = issued_ok($r, $l, 'client_credentials', 'a 1 s JWT');
my $short_jid = $l->{token_id};
my $short_at = time;

($r, $l) = logged_post('/o/token/', 'grant_type=client_credentials',
    basic($app));
my $tok = issued_ok($r, $l, 'client_credentials',
    'client_credentials token request');
my $id = $l->{token_id};
is($id, id_of($tok), 'the id is the first 16 hex digits of the opaque '
    . 'token\'s SHA-256 (README, R43)');
for my $n (1 .. 3) {
    validated_ok('/protected/index.html', [bearer($tok)], 200, '-', $id,
        "validation $n of the token");
}
validated_ok('/protected/index.html', ['X-API-KEY' => $tok], 200, '-', $id,
    'the token as X-API-KEY');
validated_ok('/protected/', [bearer($tok)], 200, '-', $id,
    'a directory URI (index redirect)');

($r, $l) = logged_post('/o/token/', 'grant_type=client_credentials',
    basic($app));
my $tok2 = issued_ok($r, $l, 'client_credentials', 'a second token');
isnt($l->{token_id}, $id, 'a second token: another id');

# password, then refresh_token: each its own access token's id
($r, $l) = logged_post('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => $PW), basic($app));
my $ptok = issued_ok($r, $l, 'password', 'password token request');
is($l->{token_id}, id_of($ptok), 'password grant: the access token\'s id');
my $rt = $r->{json}{refresh_token} // '';
isnt($l->{token_id}, id_of($rt), 'password grant: not the refresh token\'s');
validated_ok('/protected/index.html', [bearer($ptok)], 200, '-',
    $l->{token_id}, 'the password grant\'s token');
($r, $l) = logged_post('/o/token/', OAuth2Test::form(
    grant_type => 'refresh_token', refresh_token => $rt), basic($app));
my $rtok = issued_ok($r, $l, 'refresh_token', 'refresh_token request');
is($l->{token_id}, id_of($rtok), 'refresh_token grant: the new access '
    . 'token\'s id');
validated_ok('/protected/index.html', [bearer($rtok)], 200, '-',
    $l->{token_id}, 'the refreshed token');

# authorization_code
{
    my $f = OAuth2Authorize->new($t);
    my $q = OAuth2Authorize::query(client_id => $app->{client_id},
        response_type => 'code', redirect_uri => $CB, scope => 'read write',
        state => 'st-1');
    my $session = $f->login($q, 'alice', $PW);
    my $code = eval { $f->code($q, $session) };
    ok(defined $code, 'an authorization code') or diag($@);
    push @TOKENS, $code // ();
    ($r, $l) = logged_post('/o/token/', OAuth2Test::form(
        grant_type => 'authorization_code', code => $code // '',
        redirect_uri => $CB), basic($app));
    my $ctok = issued_ok($r, $l, 'authorization_code', 'code redeemed');
    validated_ok('/protected/index.html', [bearer($ctok)], 200, '-',
        $l->{token_id}, 'the code\'s token');
    push @TOKENS, $session // ();
}

# a JWT: the same id at issue, at validation and once revoked
($r, $l) = logged_post('/jwt/token/', 'grant_type=client_credentials',
    basic($app));
my $jwt = issued_ok($r, $l, 'client_credentials', 'a JWT access token');
my $jid = $l->{token_id};
like($jwt, qr/^[\w-]+\.[\w-]+\.[\w-]+$/, '/jwt/token/ issues a JWT');
validated_ok('/jwt/api/index.html', [bearer($jwt)], 200, '-', $jid,
    'the JWT validated');
is($t->revoke($app->{client_id}, $app->{client_secret}, $jwt)->{status}, 200,
    'the JWT revoked: 200');
validated_ok('/jwt/api/index.html', [bearer($jwt)], 401, 'revoked', $jid,
    'the revoked JWT (R62)');

######################################################## refusals

my $l2 = validated_ok('/protected/index.html', [], 401, 'missing', undef,
    'no token (R60)');
is($l2->{token_id}, '-', 'no token: no $oauth2_token_id');
$l2 = validated_ok('/protected/index.html',
    [Authorization => 'Basic Zm9vOmJhcg=='], 401, 'missing', undef,
    'Basic credentials only (R60)');
is($l2->{token_id}, '-', 'Basic credentials: no $oauth2_token_id');
for my $c (['Bearer', '"Bearer" alone'], ["Bearer $tok extra", 'two words'],
    ["Bearer $tok<>", 'not token68'])
{
    validated_ok('/protected/index.html', [Authorization => $c->[0]], 400,
        'malformed', undef, "$c->[1] (R61)");
}
my $forged = 'F' x 43;
push @TOKENS, $forged;
$l2 = validated_ok('/protected/index.html', [bearer($forged)], 401,
    'unknown', undef, 'an unknown token (R62)');
ok($l2->{token_id} eq '-' || ($l2->{token_id} =~ /^[0-9a-f]{16}$/
    && index($forged, $l2->{token_id}) < 0),
    'an unknown token: no id, or 16 hex digits that are not the token');
validated_ok('/scoped/index.html', [bearer($tok)], 403, 'insufficient_scope',
    $id, 'a read write token where admin is required (R63)');

# rate_limited: 1/h per client, so the second request is refused
my $left = 3600 - (time - int(time / 3600) * 3600);
sleep $left + 0.5 if $left < 10;
validated_ok('/rl/index.html', [bearer($tok2)], 200, '-', id_of($tok2),
    'the first request at a 1/h location');
validated_ok('/rl/index.html', [bearer($tok2)], 429, 'rate_limited',
    id_of($tok2), 'the second request at a 1/h location (R17)');

# an opaque token revoked: its record is gone ("unknown"), the id the same
is($t->revoke($app->{client_id}, $app->{client_secret}, $tok)->{status}, 200,
    'the opaque token revoked: 200');
validated_ok('/protected/index.html', [bearer($tok)], 401, 'unknown', $id,
    'the revoked opaque token (R62)');

# disabled: the application's tokens refused, the id the same
($r, $l) = logged_post('/o/token/', 'grant_type=client_credentials',
    basic($victim));
my $vtok = issued_ok($r, $l, 'client_credentials', 'a token of the victim');
my ($code, $out, $err) = $t->admin('app', 'disable', $victim->{client_id});
is($code, 0, 'oauth2-admin app disable: exit 0') or diag($err);
validated_ok('/protected/index.html', [bearer($vtok)], 401, 'disabled',
    $l->{token_id}, 'a token of a disabled application');

# expired: the 1 s token, now 2 s old (R45)
sleep $short_at + 2.2 - time if time < $short_at + 2.2;
validated_ok('/protected/index.html', [bearer($short_tok)], 401, 'expired',
    $short_id, 'an expired token (R45, R62)');
validated_ok('/jwt/api/index.html', [bearer($short_jwt)], 401, 'expired',
    $short_jid, 'an expired JWT (R45, R62)');
# once the expired records are cleared, the JWT still says by itself that
# it expired (its exp claim, under a signature that verifies): nothing
# revoked it
($code, $out, $err) = $t->admin('cleartokens');
like($out, qr/"deleted": [1-9]/, 'oauth2-admin cleartokens deleted the '
    . 'expired records') or diag($err);
validated_ok('/jwt/api/index.html', [bearer($short_jwt)], 401, 'expired',
    $short_jid, 'an expired JWT whose record was cleared by cleartokens');

######################################################## the token endpoint

($r, $l) = logged_post('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => 'not-her-password'), basic($app));
is($r->{status}, 400, 'a wrong password: 400');
is($l->{grant}, 'password', 'a wrong password: $oauth2_grant password');
is($l->{token_id}, '-', 'a wrong password: no token id');
is($l->{error}, '-', 'a wrong password: no $oauth2_error (auth_oauth2 only)');
($r, $l) = logged_post('/o/token/', 'grant_type=client_credentials&scope=nope',
    basic($app));
is($r->{status}, 400, 'a scope the application may not have: 400');
is($l->{grant}, 'client_credentials',
    'a refused client_credentials request: $oauth2_grant client_credentials');
is($l->{token_id}, '-', 'a refused request: no token id');
($r, $l) = logged_post('/o/token/', 'grant_type=urn%3Aexample%3Anope',
    basic($app));
is($r->{status}, 400, 'an unsupported grant_type: 400');
is($l->{grant}, '-', 'an unsupported grant_type: no $oauth2_grant');
($r, $l) = logged_post('/o/token/', 'scope=read', basic($app));
is($r->{status}, 400, 'no grant_type: 400');
is($l->{grant}, '-', 'no grant_type: no $oauth2_grant');

# a location without auth_oauth2 logs none of them
($r, $l) = logged_get('/open/index.html', bearer($tok2));
is($r->{status}, 200, '/open/: 200');
is(join(' ', @$l{qw(error grant token_id)}), '- - -',
    '/open/ (no auth_oauth2): error, grant and token id all empty');

######################################################## no secret in any log

sleep 0.2;
my %logs = map { ($_ => OAuth2Test::_slurp($t->dir . "/$_")) }
    qw(o2.log access.log error.log);
ok(length $logs{'o2.log'} && length $logs{'access.log'},
    'the o2 and the combined access logs were written');
my $lines = () = $logs{'o2.log'} =~ /^seq=s\d+ /mg;
is($lines, $SEQ, "o2.log: one line for each of the $SEQ requests");
push @TOKENS, @SECRETS;
for my $log (sort keys %logs) {
    my @leaked = grep { index($logs{$log}, $_) >= 0 } @TOKENS;
    is(scalar @leaked, 0, "$log holds none of the " . scalar(@TOKENS)
        . ' tokens, codes, secrets and passwords (R64)')
        or diag(join "\n", @leaked);
}
# nor a JWT's signature or payload on its own
{
    my @parts = split /\./, $jwt;
    my @leaked = grep { my $p = $_; grep { index($logs{$_}, $p) >= 0 }
        keys %logs } @parts[1, 2];
    is(scalar @leaked, 0, 'no log holds the JWT\'s payload or signature');
}

$t->done_testing;
