# A JWT access or refresh token is never longer than what every endpoint
# reads back (4096 bytes: auth_oauth2, revocation, introspection).  An
# application whose scope is so long that its JWT would exceed that gets
# 500 server_error, error.log saying why, and nothing is written; before,
# such a token was issued and then refused everywhere, and its revocation
# answered 200 without revoking it (RFC 7009 2.2; docs/security.md R57).
# A seed 002 handshake token (an HS256 JWT whose claims list its
# permissions) likewise: create/ for an application registered with
# hundreds of scopes answers 400 VALIDATION_ERROR naming `permissions`
# and writes nothing; before, it answered 201 with a token that
# validate/, revoke/ (400) and auth_oauth2 (401), which cap a token at
# 4096 bytes (R8), all refused, its record written.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';
$t->ec_key;
sub scopes { join ' ', map { sprintf 'scope%03d', $_ } 0 .. $_[0] - 1 }
my $fits = $t->new_app(name => 'fits', grant => 'client_credentials',
    scope => scopes(200), format => 'jwt');
my $big = $t->new_app(name => 'big', grant => 'client_credentials',
    scope => scopes(330), format => 'jwt');
my $bigpw = $t->new_app(name => 'big-password',
    grant => ['password', 'refresh_token'], scope => scopes(330),
    format => 'jwt');
my $bighs = $t->new_app(name => 'big-handshake', scope => scopes(330));
my $hskey = $t->admin_json('apikey', 'add', $bighs->{client_id})->{api_key};
add_user($t, 'lena', 'Lena-long-scope-pass-1');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n"
        . "oauth2_jwt_key $K/ec.pem;\n"
        . "oauth2_handshake_key %%DIR%%/handshake.key;\n",
    extra_server => grant_locations(extra => <<"EOF")))->run;
    location = /api/token/ { oauth2_jwt_token $bigpw->{client_id}; }
    location /api/auth/handshake/ {
        oauth2_handshake;
        oauth2_handshake_solution rental fbs=fbs_rental_db;
    }
EOF

sub cc {
    my ($app) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'client_credentials'),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
}

my $r = cc($fits);
is($r->{status}, 200, 'a JWT of a 200-item scope: 200');
my $at = $r->{json}{access_token} // '';
cmp_ok(length $at, '<=', 4096, '... at most 4096 bytes') and
cmp_ok(length $at, '>', 2000, '... and over 2000 (the test is near the limit)');
is($t->bearer_get('/protected/', $at)->{status}, 200, '... which auth_oauth2 takes');

my $before = token_count($t);
$r = cc($big);
is($r->{status}, 500, 'a JWT that would be over 4096 bytes: 500');
is($r->{json}{error}, 'server_error', '... server_error');
ok(!exists $r->{json}{access_token}, '... and no token');
$r = $t->api('POST', '/api/token/', body => '{"username": "lena", '
    . '"password": "Lena-long-scope-pass-1"}');
is($r->{status}, 500, "seed 003's login for such an application: 500");
is_deeply($r->{json}, { detail => 'A server error occurred.', code => 'error' },
    "... in its endpoint's shape, DRF's {\"detail\"}, not the token "
    . "endpoint's server_error") or diag($r->{raw});
ok(!exists(($r->{json} // {})->{access}), '... and no token');
is(token_count($t), $before, 'nothing was written to the store');
like(OAuth2Test::_slurp($t->error_log),
    qr/\[crit\].*answering 500: the JWT would be longer than 4096 bytes.*scope or resources are too long/,
    'error.log says why, at crit (the application needs an operator)');
$t->expect_log(qr/the JWT would be longer than 4096 bytes/);

# a refused issuance is not the store failing: the next one works
is(cc($fits)->{status}, 200, 'the next issuance of another application: 200');

################################################ handshake tokens (seed 002)

sub hs {
    my ($call, $body) = @_;
    return $t->api('POST', "/api/auth/handshake/$call", json => $body);
}
sub hs_create {
    my (@permissions) = @_;
    return hs('create/', { api_key => $hskey, system_name => 'rentals_django',
        solution_name => 'rental',
        (@permissions ? (permissions => \@permissions) : ()) });
}

$before = token_count($t);
$r = hs_create();    # all 330 of the application's scopes
is($r->{status}, 400, 'a handshake for an application of 330 scopes, whose '
    . 'token would be over 4096 bytes: 400') or diag($r->{body});
is($r->{json}{error_code}, 'VALIDATION_ERROR', '... VALIDATION_ERROR');
is($r->{json}{success}, JSON::PP::false(), '... in the seed\'s envelope');
like($r->{json}{details}{permissions} // '', qr/4096 bytes.*fewer/,
    '... naming permissions: ask for fewer');
ok(!exists(($r->{json} // {})->{handshake}), '... and no handshake');
is(token_count($t), $before, '... and no handshake record written');

# asking for fewer is what the error says to do
$r = hs_create(map { sprintf 'scope%03d', $_ } 0 .. 31);
is($r->{status}, 201, 'the same application asking for 32 permissions: 201')
    or diag($r->{body});
my $h = $r->{json}{handshake} // {};
cmp_ok(length($h->{handshake_token} // ''), '<=', 4096,
    '... a token of at most 4096 bytes');
$r = hs('validate/', { handshake_token => $h->{handshake_token} // '',
    handshake_secret => $h->{handshake_secret} // '' });
is($r->{status}, 200, '... which validate/ reads back') or diag($r->{body});
ok($r->{json}{data}{valid}, '... valid');

$t->done_testing;
