# oauth2_limit_zone (docs/security.md R84): a full counter zone forgets nothing
# that still counts.  A flood of cheap failures from hundreds of addresses
# fills a small zone; a locked account stays locked, a spent rate limit
# stays spent, new keys are refused (429) with one [alert] line, and the
# zone has room again once the flood's windows have ended, also behind
# more hour-long entries than one tidying looks at.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $PW = 'Zone-test-passphrase-5';
$t->admin_json('user', 'add', '--username', 'alice', '--email',
    'alice@example.com', '--password', $PW, '--pbkdf2-iterations', 1000);
my $pw_app = $t->new_app(name => 'pw', grant => ['password']);
my $cc = $t->new_app(name => 'metered');

my $WINDOW = 8;
$t->expect_log(qr/the counter zone is full/);
$t->write_config($t->default_http(
    extra_http => "oauth2_limit_zone 64k;\n"
        . "oauth2_pbkdf2_iterations 1000;\n"
        . "oauth2_client_auth_limit 3 ${WINDOW}s;\n",
    extra_server => <<'EOF'))->run;
    location = /o/token-metered/ {
        oauth2_token;
        oauth2_rate_limit 3/h;
    }
EOF

sub grant {
    my ($pw, $from) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => 'alice', password => $pw),
        Authorization => $t->basic($pw_app->{client_id},
            $pw_app->{client_secret}),
        '-from' => $from);
}

sub addr {
    my ($i) = @_;
    return sprintf '127.0.%d.%d', 10 + int($i / 250), 1 + $i % 250;
}

# oauth2_rate_limit's windows are clock-aligned: the metered client's
# hour must not end while the test runs (under ASan it takes up to a
# minute), or its spent limit would rightly be fresh again at the end
my $to_hour = 3600 - time % 3600;
if ($to_hour < $WINDOW + 90) {
    note("waiting ${to_hour}s for the next clock hour");
    sleep $to_hour + 1;
}

my $start = time;

# more entries that count for the hour than the zone's tidying looks at
# (64 from its least recently used end): a public client's requests at
# the metered location, counted per client and address (R83), from 70
# addresses, each a code that does not exist (invalid_grant, which counts
# as no failure).  They are the oldest when the flood's windows end, and
# the finished entries behind them must still be found, or a full zone
# stays full for the hour and refuses everyone new (R84).
my $pub = $t->new_app(name => 'spa', public => 1,
    grant => ['authorization_code'], redirect_uris => ['https://spa.example/cb']);
for my $i (1 .. 70) {
    my $r = $t->post_form('/o/token-metered/', OAuth2Test::form(
        grant_type => 'authorization_code', code => "no-such-code-$i",
        client_id => $pub->{client_id}, redirect_uri => 'https://spa.example/cb',
        code_verifier => 'v' x 43), '-from' => "127.1.0.$i");
    die "the public client's request from 127.1.0.$i: $r->{status}"
        unless $r->{status} == 400;
}

################################################ a lock and a spent limit

grant("wrong$_", '127.0.0.2') for 1 .. 3;
# one failure from 127.0.0.3: its address count is live through the flood
is($t->token($cc->{client_id}, 'wrong', headers => ['-from' => '127.0.0.3'])
    ->{status}, 401, 'a wrong secret from 127.0.0.3: 401');
is(grant($PW, '127.0.0.2')->{status}, 429,
    'alice is locked at 127.0.0.2 after 3 failures');
for my $i (1 .. 3) {
    is($t->token($cc->{client_id}, $cc->{client_secret},
        path => '/o/token-metered/')->{status}, 200,
        "metered client, token #$i of 3/h: 200");
}
is($t->token($cc->{client_id}, $cc->{client_secret},
    path => '/o/token-metered/')->{status}, 429,
    'the 4th within the hour: 429');

#################### the flood: one failure from each of 700 addresses

my (%seen, $full_at);
for my $i (0 .. 699) {
    my $r = $t->token("flood-$i", 'x', headers => ['-from' => addr($i)]);
    $seen{$r->{status}}++;
    $full_at //= $i if $r->{status} == 429;
}
ok($seen{401}, "the flood's first failures are counted (401: $seen{401})");
ok($seen{429}, 'once the zone is full, new keys are refused with 429 '
    . '(' . ($seen{429} // 0) . " of 700, from #" . ($full_at // '-') . ')');
is(($seen{401} // 0) + ($seen{429} // 0), 700,
    'every flood request got 401 or 429, never a 5xx');

############################## R84: nothing that still counts was forgotten

is(grant($PW, '127.0.0.2')->{status}, 429,
    'after the flood alice is still locked at 127.0.0.2 (R84)');
is(grant('another-guess', '127.0.0.2')->{status}, 429,
    'and a new guess from there is still refused (R84)');
is($t->token($cc->{client_id}, $cc->{client_secret},
    path => '/o/token-metered/')->{status}, 429,
    'after the flood the metered client\'s hour is still spent (R84)');

my $r = $t->token($cc->{client_id}, $cc->{client_secret},
    headers => ['-from' => '127.0.9.9']);
is($r->{status}, 429,
    'a new address while the zone is full: refused, never let through '
    . 'uncounted');
like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
    'that refusal has Retry-After');
# a request the rate limit counts against its address, from an address
# whose throttle count is live through the flood (so only the rate
# limit's key is new, the size of the flood's own keys)
$r = $t->token('no-such-client', 'x', path => '/o/token-metered/',
    headers => ['-from' => '127.0.0.3']);
is($r->{status}, 429,
    'a caller new to the rate limit while the zone is full: refused, never '
    . 'let through uncounted (R84)') or diag($r->{raw});
unlike($r->{body}, qr/failed/,
    'refused by the rate limit, not by the address throttle');

my @alerts = OAuth2Test::_slurp($t->error_log)
    =~ /\[alert\][^\n]*the counter zone is full/g;
is(scalar @alerts, 1, 'the full zone is logged at alert, once');

############################# the flood's windows end: room again

my $left = $start + $WINDOW + 1 - time;
sleep $left if $left > 0;
is($t->token($cc->{client_id}, $cc->{client_secret},
    headers => ['-from' => '127.0.9.10'])->{status}, 200,
    'after the windows ended, a new address is counted again: 200');
is(grant($PW, '127.0.9.11')->{status}, 200,
    'and alice signs in from a new address: 200');
is($t->token($cc->{client_id}, $cc->{client_secret},
    path => '/o/token-metered/')->{status}, 429,
    'the hour of the metered client is still spent (a live count is never '
    . 'evicted)');

# nginx -t names a zone that is too small
$t->write_config($t->default_http(extra_http => 'oauth2_limit_zone 1k;'));
my ($code, $out) = $t->nginx_t;
isnt($code, 0, 'oauth2_limit_zone 1k: nginx -t fails');
like($out, qr/"oauth2_limit_zone" directive must be at least 64k in \S+nginx\.conf:\d+/,
    'nginx -t says the zone must be at least 64k, at its line');

$t->done_testing;
