# oauth2_client_auth_limit: brute-force throttling (SECURITY.md R17, R54)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $a = $t->new_app(name => 'victim');
my $b = $t->new_app(name => 'neighbour');
$t->write_default_config(extra_http => 'oauth2_client_auth_limit 3 2s;')
    ->run;

sub throttled_ok {
    my ($r, $name) = @_;
    $t->oauth_error_ok($r, 429, 'temporarily_unavailable', "$name (R17)");
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[1-9]\d*$/,
        "$name: Retry-After seconds");
    ok((OAuth2Test::header($r, 'Retry-After') // 99) <= 2,
        "$name: Retry-After within the 2 s window");
}

# per client: n = 3 failures, then 429 even with the right secret
for my $i (1 .. 3) {
    my $r = $t->token($a->{client_id}, "wrong$i");
    is($r->{status}, 401, "wrong secret #$i: 401");
}
throttled_ok($t->token($a->{client_id}, $a->{client_secret}),
    '4th attempt with the right secret: 429');
throttled_ok($t->token($a->{client_id}, $a->{client_secret}, auth => 'post'),
    'locked client via client_secret_post: 429');
throttled_ok($t->revoke($a->{client_id}, $a->{client_secret}, 'x' x 43),
    'locked client at the revoke endpoint (R54)');

# another client from the same address is below 3n
my $r = $t->token($b->{client_id}, $b->{client_secret});
is($r->{status}, 200, 'another client from the same address: 200');

# a valid bearer is not affected by token-endpoint throttling
my $tok = $r->{json}{access_token};
is($t->bearer_get('/protected/', $tok)->{status}, 200,
    'bearer validation is not throttled');

# the lockout ends with the window (R17: no permanent DoS)
sleep 2.2;
$r = $t->token($a->{client_id}, $a->{client_secret});
is($r->{status}, 200, 'after 2.2 s the real secret works again (R17)');

# per address: 3n = 9 failures over distinct client ids
sleep 2.2;
for my $i (1 .. 9) {
    my $r = $t->token("unknown-$i", 'wrong');
    is($r->{status}, 401, "unknown client #$i from one address: 401");
}
throttled_ok($t->token($b->{client_id}, $b->{client_secret}),
    '10th request from the address, a valid client: 429');
throttled_ok($t->revoke($b->{client_id}, $b->{client_secret}, 'x' x 43),
    'the address at the revoke endpoint (R54)');
sleep 2.2;
is($t->token($b->{client_id}, $b->{client_secret})->{status}, 200,
    'after the window the address may authenticate again (R17)');

# a locked client id does not lock a client whose failures are elsewhere
for my $i (1 .. 3) {
    $t->token($a->{client_id}, "wrong$i");
}
is($t->token($b->{client_id}, $b->{client_secret})->{status}, 200,
    'client B unaffected by client A lockout');

$t->done_testing;
