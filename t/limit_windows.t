# The counter zone's windows (oauth2_limit_zone; docs/security.md R17,
# R54, R84): a throttle's next window counts from nothing, a rate limit's
# ended window no longer refuses even while its entry is still in the
# zone, a request the full zone refuses is counted in none of its
# windows, and the full zone's alert comes again each time the zone
# fills again after it had room.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

sub hdr { OAuth2Test::header($_[0], $_[1]) }

sub guard_window { OAuth2Test::guard_window(@_) }

sub next_boundary { OAuth2Test::next_boundary(@_) }

########################## R17: a throttle's next window starts from nothing

# The first failure after a window ended opens the next one with a count
# of one: the address has its whole 3n again.  Kept otherwise, an address
# throttled once would be throttled again after a single failure in every
# later window, however long it waited (a lockout, not a throttle).  Only
# one key is ever counted here, so the ended window's entry is still in
# the zone when the next failure comes (nothing new made room).
{
    my $t = OAuth2Test->new;
    my $app = $t->new_app(name => 'thrott');
    $t->write_default_config(extra_http => 'oauth2_client_auth_limit 1 2s;')
        ->run;
    my @from = (headers => ['-from' => '127.0.0.5']);
    my @first = map { $t->token('unknown', "wrong$_", @from)->{status} } 1 .. 3;
    my $opened = time;
    is("@first", '401 401 401', 'three failures from an address: 401 each');
    is($t->token($app->{client_id}, $app->{client_secret}, @from)->{status},
        429, 'then 3n (n = 1) is spent: 429, even with the right secret');
    # the window opened at the first failure's whole second
    my $left = int($opened) + 3.2 - time;
    sleep $left if $left > 0;
    my @next = map { $t->token('unknown', "again$_", @from)->{status} } 1 .. 3;
    is("@next", '401 401 401', 'the window has ended: three more failures '
        . 'are answered 401, the next window counts from nothing (R17)');
    is($t->token($app->{client_id}, $app->{client_secret}, @from)->{status},
        429, 'and the fourth request of the next window is throttled (R17)');
    $t->done;
}

############### R54: an ended window of a rate limit no longer refuses

# A client that spent its 2/s and comes back a few seconds later is
# served: the count of a window that has ended is not the current one's,
# even while its entry is still in the zone (only one key is counted
# here, so nothing evicts it).  Counted as current, it would refuse the
# client with a Retry-After of billions of seconds.
{
    my $t = OAuth2Test->new;
    my $app = $t->new_app(name => 'per-second');
    my $tok = $t->issue_token($app->{client_id});
    $t->write_default_config(extra_server => <<'EOF')->run;
    location /second/ {
        auth_oauth2 api;
        oauth2_rate_limit 2/s;
        alias %%DIR%%/html/;
    }
EOF
    my $b = next_boundary(1);
    sleep $b - time + 0.05;
    my @got = map { $t->bearer_get('/second/index.html', $tok)->{status} }
        1 .. 3;
    is("@got", '200 200 429', 'oauth2_rate_limit 2/s: 200, 200, then 429');
    # one whole second with no request, then back
    sleep $b + 2.05 - time;
    my $r = $t->bearer_get('/second/index.html', $tok);
    is($r->{status}, 200, 'two seconds later the client is served again '
        . '(R54)') or diag($r->{raw});
    is(hdr($r, 'X-RateLimit-Remaining'), 1,
        'and the new window has counted that one request');
    ok(!defined hdr($r, 'Retry-After'), 'no Retry-After');
    $t->done;
}

########################################### R84: the full zone, twice

# A small zone filled by a flood of cheap failures from 700 addresses
# (as in t/limit_zone.t), twice: once its windows have ended and it has
# had room again.
my $t = OAuth2Test->new;
my $WINDOW = 8;
$t->expect_log(qr/the counter zone is full/);
$t->write_config($t->default_http(
    extra_http => "oauth2_limit_zone 64k;\n"
        . "oauth2_client_auth_limit 3 ${WINDOW}s;\n",
    extra_server => <<'EOF'))->run;
    location = /o/token-h/ { oauth2_token; oauth2_rate_limit 100/h; }
    location = /o/token-hm/ { oauth2_token; oauth2_rate_limit 100/h 50/m; }
EOF

sub addr {
    my ($i) = @_;
    return sprintf '127.0.%d.%d', 10 + int($i / 250), 1 + $i % 250;
}

# one failure from each address $from .. $to: the statuses seen
sub flood {
    my ($from, $to) = @_;
    my %seen;
    for my $i ($from .. $to) {
        $seen{$t->token("flood-$i", 'x', headers => ['-from' => addr($i)])
            ->{status}}++;
    }
    return \%seen;
}

sub alerts {
    my @a = OAuth2Test::_slurp($t->error_log)
        =~ /\[alert\][^\n]*the counter zone is full/g;
    return scalar @a;
}

# the caller: an unknown client from one address, counted against the
# address (refused before its caller is known), so that its rate keys are
# the size of the flood's keys and share their slab
my $CALLER = '127.0.0.3';
sub caller_at {
    my ($path) = @_;
    return $t->token('nobody', 'x', path => $path,
        headers => ['-from' => $CALLER]);
}

# the hour of 100/h must not end while this part runs
guard_window(3600, 3 * $WINDOW + 60);

my $r = caller_at('/o/token-h/');
is($r->{status}, 401, 'the caller at a 100/h location: 401');
is(hdr($r, 'X-RateLimit-Remaining'), 99, 'its hour has counted it: 99 left');

my $start = time;
my $seen = flood(0, 699);
ok($seen->{429}, 'a flood of failures from 700 addresses fills the zone: '
    . 'new keys are refused (' . ($seen->{429} // 0) . ' x 429)');
is(alerts(), 1, 'the full zone is logged at alert, once');

# "counted in every window or in none" (R84): the hour's entry exists and
# counts, the minute's key is new and finds no room: refused, and the
# hour's count is given back.  Kept, every request refused only for want
# of room would spend the caller's budget: a flood by someone else could
# use up a client's hour while the zone is full.
$r = caller_at('/o/token-hm/');
is($r->{status}, 429, 'the caller at a 100/h 50/m location while the zone '
    . 'is full: 429, its minute has no room') or diag($r->{raw});
is(hdr($r, 'Retry-After'), 1, 'Retry-After: 1');

my $left = $start + $WINDOW + 1.5 - time;
sleep $left if $left > 0;
$r = caller_at('/o/token-h/');
is($r->{status}, 401, 'the flood\'s windows have ended: the caller at the '
    . '100/h location again, 401');
is(hdr($r, 'X-RateLimit-Remaining'), 98,
    'its hour counts 2 requests: the one refused for want of room spent '
    . 'nothing (R84)') or diag($r->{raw});

# the zone has had room again (the second flood's first keys are counted),
# so when it fills once more the operator is told again: once each time
# it fills, as limit_req, not once for the life of the zone (a zone that
# fills again next week, refusing new callers, must not do so silently)
$seen = flood(700, 1399);
ok($seen->{401}, 'a second flood: its first keys are counted again ('
    . ($seen->{401} // 0) . ' x 401)');
ok($seen->{429}, 'and it fills the zone again (' . ($seen->{429} // 0)
    . ' x 429)');
is(alerts(), 2, 'the zone full again after it had room: a second alert');

$t->done_testing;
