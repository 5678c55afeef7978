# oauth2_client_auth_limit: failed client authentications (docs/security.md
# R17, R54, R83).  A generated secret (256 bits) cannot be guessed, so bad
# secrets are throttled per address and never lock the client out: no
# number of failures sent by someone else refuses the real client.
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

my $ATTACKER = '127.0.0.2';
my $CLIENT = '127.0.0.3';

sub from { return (headers => ['-from' => $_[0]]) }

sub throttled_ok {
    my ($r, $name) = @_;
    $t->oauth_error_ok($r, 429, 'temporarily_unavailable', "$name (R17)");
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[1-9]\d*$/,
        "$name: Retry-After seconds");
    ok((OAuth2Test::header($r, 'Retry-After') // 99) <= 2,
        "$name: Retry-After within the 2 s window");
}

################################################ per address: 3n failures

for my $i (1 .. 9) {
    my $r = $t->token($a->{client_id}, "wrong$i", from($ATTACKER));
    is($r->{status}, 401, "wrong secret #$i from the attacker's address: 401");
}
throttled_ok($t->token($a->{client_id}, $a->{client_secret}, from($ATTACKER)),
    'the 10th request from that address, even with the right secret: 429');
throttled_ok($t->token($b->{client_id}, $b->{client_secret}, from($ATTACKER)),
    'the address is refused for every client');
throttled_ok($t->post_form('/o/revoke_token/', 'token=' . 'x' x 43,
    Authorization => $t->basic($a->{client_id}, $a->{client_secret}),
    '-from' => $ATTACKER), 'and at the revoke endpoint (R54)');

############################## R83: the client itself is never locked out

my $r = $t->token($a->{client_id}, $a->{client_secret}, from($CLIENT));
is($r->{status}, 200,
    'the real client, from its own address, right after 9 failures for its '
    . 'id: 200 (R83)');
$r = $t->token($a->{client_id}, $a->{client_secret}, auth => 'post',
    from($CLIENT));
is($r->{status}, 200, 'and with client_secret_post: 200 (R83)');

# failures for the client id spread over many addresses, two each: no
# address is throttled and the client keeps working
sleep 2.2;
for my $n (10 .. 29) {
    for my $i (1 .. 2) {
        $t->token($a->{client_id}, "guess$n-$i", from("127.0.0.$n"));
    }
}
is($t->token($a->{client_id}, $a->{client_secret}, from($CLIENT))->{status},
    200, '40 failures for the client id from 20 addresses: the client still '
    . 'gets its token (R83)');
is($t->token($a->{client_id}, $a->{client_secret}, from('127.0.0.10'))
    ->{status}, 200,
    'an address below 3n failures is not throttled either');

############################################ the window ends (no lockout)

sleep 2.2;
is($t->token($a->{client_id}, $a->{client_secret}, from($ATTACKER))->{status},
    200, 'after the 2 s window the throttled address may authenticate (R17)');

# R17: the first failure after a window opens the next one, even while
# the ended window's count is still in the zone (no new key has made room
# since): the address is throttled again at 3n, not let through for good
my $AGAIN = '127.0.0.5';
$t->token('unknown', 'wrong', from($AGAIN)) for 1 .. 9;
throttled_ok($t->token($a->{client_id}, $a->{client_secret}, from($AGAIN)),
    'another address after 9 failures');
# a second and more past the window's end (the same keys as before:
# nothing new that would evict the ended count)
sleep 3.5;
is($t->token('unknown', 'wrong', from($AGAIN))->{status}, 401,
    'the window has ended: the next failure is answered, 401, not 429 (R17)');
$t->token('unknown', 'wrong', from($AGAIN)) for 2 .. 9;
throttled_ok($t->token($a->{client_id}, $a->{client_secret}, from($AGAIN)),
    'the next window: 9 more failures throttle that address again');

for my $i (1 .. 9) {
    $t->token('unknown', 'wrong', from($ATTACKER));
}
throttled_ok($t->token($a->{client_id}, $a->{client_secret}, from($ATTACKER)),
    'a new window for the first address: 9 more failures throttle it again');

# a bearer token is never throttled by failed client authentications
my $tok = $t->access_token($b, headers => ['-from' => $CLIENT]);
is($t->get('/protected/', Authorization => "Bearer $tok",
    '-from' => $ATTACKER)->{status}, 200,
    'bearer validation from a throttled address: 200');

# refusals are logged, as limit_req logs its own (a level the operator sets)
like(OAuth2Test::_slurp($t->error_log),
    qr/\[error\].*oauth2: too many failed authentications from the address, answering 429/,
    'a throttled request is logged at the default level, error');

##### R83: a page of another site makes its visitors' browsers fail here
# (Fetch Metadata: Sec-Fetch-Site cross-site or same-site, which no page
# can forge): those failures count apart from the address's own requests,
# which they do not throttle; a client sending the header itself gets a
# count of its own, not an escape from one
{
    my $VISITOR = '127.0.0.20';
    my $xs = sub {
        my ($secret, $site) = @_;
        return $t->token($a->{client_id}, $secret,
            headers => ['-from' => $VISITOR, 'Sec-Fetch-Site' => $site]);
    };
    sleep(OAuth2Test::next_boundary(2) - time + 0.05);
    my @st = map { $xs->("wrong-xs$_", 'cross-site')->{status} } 1 .. 9;
    is("@st", join(' ', (401) x 9), '9 failures another site\'s page made '
        . 'the visitor\'s browser send: 401 each');
    throttled_ok($xs->($a->{client_secret}, 'cross-site'),
        'the next cross-site request from that address');
    throttled_ok($xs->($a->{client_secret}, 'same-site'),
        '... and a same-site one (a sibling host\'s page): one count');
    is($t->token($a->{client_id}, $a->{client_secret}, from($VISITOR))->{status},
        200, 'the address\'s own requests, without the mark: 200 (R83)');
    is($xs->($a->{client_secret}, 'same-origin')->{status}, 200,
        '... and a same-origin one: 200');
    is($xs->($a->{client_secret}, 'none')->{status}, 200,
        '... and one the user made (none): 200');
}

################ R17: without oauth2_client_auth_limit, 10 a minute (3n = 30)

my $d = OAuth2Test->new;
my $da = $d->new_app(name => 'default-limit');
$d->write_default_config->run;
my @st = map { $d->token($da->{client_id}, "wrong$_")->{status} } 1 .. 30;
is(join(',', @st), join(',', (401) x 30),
    'no oauth2_client_auth_limit: 30 wrong secrets from one address, 401 each');
$r = $d->token($da->{client_id}, $da->{client_secret});
$d->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'the default throttle: the 31st request from that address, 429 (R17)');
my $wait = OAuth2Test::header($r, 'Retry-After') // 0;
ok($wait > 40 && $wait <= 60,
    "the default throttle's window is a minute (Retry-After $wait)");
is($d->token($da->{client_id}, $da->{client_secret}, from($CLIENT))->{status},
    200, 'the default throttle: another address still gets its token (R83)');

$t->done_testing;
