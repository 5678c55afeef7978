# Only an API key's own requests spend its budget (seed 002; docs/security.md
# R83): create/ is counted per API key, while validate/ and revoke/, which
# anyone holding a handshake token may call, are counted per address.
# Replaying revoke/ with a revoked token no longer drains the key.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'rentals', scope => 'read write');
my $key = $t->admin_json('apikey', 'add', $app->{client_id})->{api_key};
$t->write_config($t->default_http(
    extra_http => 'oauth2_handshake_key %%DIR%%/handshake.key;',
    extra_server => <<'EOF'))->run;
    location /api/auth/handshake/ {
        oauth2_handshake_solution rental fbs=fbs_rental_db;
        oauth2_rate_limit 5/m;
        oauth2_handshake;
    }
EOF

my $OWNER = '127.0.0.2';
my $REPLAYER = '127.0.0.3';

sub hs {
    my ($call, $body, $from) = @_;
    return $t->api('POST', "/api/auth/handshake/$call", json => $body,
        from => $from);
}
sub create { hs('create/', { api_key => $key, system_name => 'rentals',
    solution_name => 'rental' }, $OWNER) }

my $r = create();
is($r->{status}, 201, 'the key owner creates a handshake: 201');
is(OAuth2Test::header($r, 'X-RateLimit-Remaining'), 4,
    'its key has 4 of 5 left');
my $token = $r->{json}{handshake}{handshake_token};
$r = hs('revoke/', { handshake_token => $token }, $OWNER);
is($r->{status}, 200, 'the owner revokes it: 200');
is(OAuth2Test::header($r, 'X-RateLimit-Remaining'), 4,
    'revoke/ of a live handshake (a change in the store) is counted against '
    . 'the caller\'s address: 4 of 5 left (R83)');

my %seen;
for my $i (1 .. 12) {
    $seen{hs('revoke/', { handshake_token => $token }, $REPLAYER)->{status}}++;
}
is($seen{200}, 5, 'replays of revoke/ from another address: 5 answered');
is($seen{429}, 7, 'and then 429 for that address');

$r = create();
is($r->{status}, 201,
    'the key owner still creates handshakes after the replays: 201');
is(OAuth2Test::header($r, 'X-RateLimit-Remaining'), 3,
    'the key\'s budget counts only its own create/ calls: 3 left');

for my $i (1 .. 8) {
    $r = hs('validate/', { handshake_token => $token,
        handshake_secret => 'wrong' }, '127.0.0.4');
}
is($r->{status}, 429, 'validate/ floods are refused per address too');
is(create()->{status}, 201, 'and spend nothing of the key: 201');

$t->done_testing;
