# R80, R83: a clock stepped forward (NTP, a virtual machine resumed, a
# hand-set date), then back.  The locks the guesses made during the step,
# an address's throttle in shared memory and the account's lock in the
# store, would hold for as long as the step (here a month) and count every
# later guess in the window they dated; they end with the step instead.
# nginx runs under libfaketime, whose offset a file holds and each call
# reads again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;
use OAuth2Grants qw(:all);

# libfaketime's constructor and AddressSanitizer's allocator deadlock when
# both are preloaded (make asan-test's nginx hung at its start): this file
# runs Debian's nginx with the plain build's module in both runs (make test
# builds it first); the unit tests of the lock run under ASan
$OAuth2Test::NGINX = '/usr/sbin/nginx';
$OAuth2Test::MODULE = "$OAuth2Test::ROOT/build/ngx_http_oauth2_module.so";
OAuth2Test::require_build();

my ($faketime) = glob '/usr/lib/*/faketime/libfaketimeMT.so.1';
unless ($faketime) {
    fail('libfaketime missing: apt-get install faketime');
    done_testing();
    exit;
}

my $t = OAuth2Test->new;
my $PW = 'Clock-step-passphrase-9';
add_user($t, 'alice', $PW);
my $app = $t->new_app(name => 'pw', grant => ['password', 'refresh_token']);
$t->write_config($t->default_http(extra_http =>
    'oauth2_pbkdf2_iterations ' . PBKDF2 . ";\n"
    . "oauth2_client_auth_limit 3 1h;\noauth2_account_limit 6 1h;\n"),
    # nginx clears the workers' environment but for what env names
    main => "env FAKETIME_TIMESTAMP_FILE;\nenv FAKETIME_NO_CACHE;\n"
        . "env DONT_FAKE_MONOTONIC;\n");
my $offset = $t->dir . '/faketime';
OAuth2Test::write_file($offset, "+30d\n");
chmod 0644, $offset;
{
    local $ENV{LD_PRELOAD} = $faketime;
    local $ENV{FAKETIME_TIMESTAMP_FILE} = $offset;
    local $ENV{FAKETIME_NO_CACHE} = 1;
    local $ENV{DONT_FAKE_MONOTONIC} = 1;
    $t->run;
}

sub grant {
    my ($pw, $from) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => 'alice', password => $pw),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
        '-from' => $from);
}
sub year { (OAuth2Test::header($_[0], 'Date') // '') =~ / (\d{4}) / ? $1 : 0 }
sub month { (OAuth2Test::header($_[0], 'Date') // '') =~ / \d\d (\w{3}) / ? $1 : '' }

# a month ahead: a refresh token rotated then (its spent token's grace,
# 10 s, dated a month ahead)
my $r = grant($PW, '127.0.0.9');
my $rt1 = $r->{json}{refresh_token} // '';
my $refresh = sub { refresh($t, $app, $_[0]) };
$r = $refresh->($rt1);
my $rt2 = $r->{json}{refresh_token} // '';
is($r->{status}, 200, 'a month ahead: a refresh token rotated') or diag($r->{raw});
$r = grant('wrong-1', '127.0.0.2');
my $later = POSIX::strftime('%b', gmtime(time + 30 * 86400));
is(month($r), $later, "nginx's clock is a month ahead (Date: "
    . (OAuth2Test::header($r, 'Date') // '') . ')');
grant("wrong-$_", '127.0.0.2') for 2 .. 3;
$r = grant($PW, '127.0.0.2');
is($r->{status}, 429, 'a month ahead: 3 wrong passwords throttle the address');
cmp_ok(OAuth2Test::header($r, 'Retry-After') // 0, '<=', 3600,
    '... for the window, an hour');
grant("wrong-$_", '127.0.0.3') for 4 .. 6;
$r = grant($PW, '127.0.0.4');
is($r->{status}, 429, 'a month ahead: 6 wrong passwords lock the account '
    . 'for an address that never signed in (R83)');

# the clock back to now
OAuth2Test::write_file($offset, "+0\n");
sleep 1.1;
# the throttled address first: a request of a new key would make room in
# the zone, and the entries dated ahead are the first to go
$r = grant($PW, '127.0.0.2');
is(month($r), POSIX::strftime('%b', gmtime), "nginx's clock is back (Date: "
    . (OAuth2Test::header($r, 'Date') // '') . ')');
is($r->{status}, 200, 'the clock back: the address\'s throttle in shared '
    . 'memory and the account\'s lock, dated a month ahead, are over (R80)')
    or diag($r->{raw});
$r = grant($PW, '127.0.0.4');
is($r->{status}, 200, 'the clock back: an address that never signed in is '
    . 'not refused by the account\'s lock') or diag($r->{raw});

# R37: the spent refresh token, its rotation dated a month ahead, is past
# its grace now, not within it for the month: a reuse, which ends the grant
$r = $refresh->($rt1);
is($r->{status}, 400, 'the clock back: the refresh token spent a month '
    . 'ahead is refused, not answered with its pair for the month (R37, R80)')
    or diag($r->{raw});
is($r->{json}{error} // '', 'invalid_grant', '... invalid_grant');
is($refresh->($rt2)->{status}, 400, '... and the grant is revoked: its '
    . 'successor is refused too');

# and the limits count again from now, in windows of their own
grant("wrong-$_", '127.0.0.5') for 1 .. 3;
$r = grant($PW, '127.0.0.5');
is($r->{status}, 429, 'now: 3 wrong passwords throttle an address again');
cmp_ok(OAuth2Test::header($r, 'Retry-After') // 0, '<=', 3600,
    '... for an hour');

$t->done_testing;
