# oauth2_rate_limit's windows are aligned to the clock (docs/security.md
# R17): when a caller's count of an ended minute is reused for the next
# minute, that window still ends on the minute, not a minute after the
# request that turned it, so the 429's Retry-After is at most the rest of
# the minute: a client that waits what it is told is served then, and is
# not kept out longer than the window it spent.  (Apart from
# t/rate_limit.t, whose windows of a second cannot tell the two ends
# apart, and which must not wait a minute for the clock.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

sub hdr { OAuth2Test::header($_[0], $_[1]) }

sub next_boundary { OAuth2Test::next_boundary(@_) }

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'per-minute');
my $tok = $t->issue_token($app->{client_id});
$t->write_default_config(extra_server => <<'EOF')->run;
    location /minute/ {
        auth_oauth2 api;
        oauth2_rate_limit 2/m;
        alias %%DIR%%/html/;
    }
EOF

sub get { $t->bearer_get('/minute/index.html', $tok) }

# one request in this minute: the caller's entry, for this window
my $r = get();
is($r->{status}, 200, 'a 2/m location: 200');
is(hdr($r, 'X-RateLimit-Remaining'), 1, 'one left this minute');

# a later minute, a few seconds after it began: the entry is turned to the
# new window by a request well after the window's start (the difference
# is what a Retry-After from the request would add)
my $turn = next_boundary(60) + 4;
note(sprintf 'waiting %.1f s for the next minute', $turn - time);
sleep $turn - time;

my $reset = next_boundary(60);
$r = get();
is($r->{status}, 200, 'the next minute: 200');
is(hdr($r, 'X-RateLimit-Remaining'), 1, 'the new minute counts from nothing');
is(hdr($r, 'X-RateLimit-Reset'), $reset,
    'X-RateLimit-Reset: the minute\'s end');
is(get()->{status}, 200, 'the second of the new minute: 200');
$r = get();
is($r->{status}, 429, 'the third: 429');
my $ra = hdr($r, 'Retry-After') // '';
my $left = next_boundary(60) - int(time);
like($ra, qr/^[1-9]\d*$/, 'Retry-After in seconds');
# a second may turn between the answer and this line
ok($ra =~ /^\d+$/ && $ra <= $left + 1,
    "Retry-After ($ra) is at most the rest of the minute ($left s): the "
    . 'turned window ends on the minute (R17)');
ok($ra =~ /^\d+$/ && $ra >= $left - 2,
    "and no less (got $ra, $left s left): a client that waits it is served");

$t->done_testing;
