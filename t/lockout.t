# Failed passwords (docs/security.md R17, R25, R83, R89): counted per (account,
# address) and per address in front of the store, and per account in the
# store, where one lock serves every place that checks a password (the
# password grant, seed 001's login, the authorization page, the admin
# daemon's pages).  Past oauth2_account_limit the account refuses the
# addresses and browsers that have not signed in to it recently, and only
# those: no number of failures sent by someone else refuses the owner
# where they signed in before, and signing in unlocks nothing for others.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $PW = 'Lock-test-passphrase-7';
for my $u (qw(alice bob carol dave erin frank gina)) {
    $t->admin_json('user', 'add', '--username', $u, '--email',
        "$u\@example.com", '--password', $PW, '--pbkdf2-iterations', 1000,
        '--staff');
}
my $app = $t->new_app(name => 'pw-app', grant => ['password']);
my $web = $t->new_app(name => 'web', grant => 'authorization_code',
    redirect_uris => ['https://client.example/cb']);

# n = 3 per (account, address) and 9 per address; the account locks at 6
# failures in a 6 s window
my $WINDOW = 6;
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 1000;\n"
        . "oauth2_client_auth_limit 3 ${WINDOW}s;\n"
        . "oauth2_account_limit 6 ${WINDOW}s;\n",
    extra_server => "    location = /users/login/ { oauth2_login "
        . "$app->{client_id}; }\n"
        . "    location = /o/authorize/ { oauth2_authorize; }\n"
        . $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000, '--auth-limit', "3/$WINDOW",
    '--account-limit', "6/$WINDOW");

sub grant {
    my ($user, $pw, $from) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => $user, password => $pw),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
        '-from' => $from);
}

sub seed001_login {
    my ($user, $pw, $from) = @_;
    return $t->post_form('/users/login/', OAuth2Test::form(
        username => $user, password => $pw), '-from' => $from);
}

# the admin daemon's sign-in page, through nginx, with the browser's
# device cookie if given
sub page_login {
    my ($user, $pw, $from, $device) = @_;
    my $g = $t->get('/o/applications/login/', '-from' => $from);
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my ($field) = $g->{body} =~ /name="csrf" value="([^"]+)"/;
    return $t->post_form('/o/applications/login/', OAuth2Test::form(
        csrf => $field // '', username => $user, password => $pw),
        Cookie => join('; ', "oauth2_csrf=$csrf",
            defined $device ? ("oauth2_device=$device") : ()),
        '-from' => $from);
}

# the authorization endpoint's login page, with the browser's cookies:
# (response, device cookie value or undef)
my $Q = 'client_id=' . $web->{client_id}
    . '&response_type=code&redirect_uri=https%3A%2F%2Fclient.example%2Fcb';
sub browser_login {
    my ($user, $pw, $from, $device) = @_;
    my @dev = defined $device ? ("oauth2_device=$device") : ();
    my $g = $t->get("/o/authorize/?$Q", '-from' => $from,
        @dev ? (Cookie => $dev[0]) : ());
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my ($field) = $g->{body} =~ /name="csrf_token" value="([^"]*)"/;
    my $r = $t->post_form("/o/authorize/?$Q", OAuth2Test::form(
        action => 'login', csrf_token => $field // '', username => $user,
        password => $pw), Cookie => join('; ', "oauth2_csrf=$csrf", @dev),
        '-from' => $from);
    return ($r, OAuth2Test::cookies_of($r)->{oauth2_device}{value});
}

sub refused_ok {
    my ($r, $name) = @_;
    is($r->{status}, 429, "$name: 429");
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[1-9]\d*$/,
        "$name: Retry-After");
}

my $start = time;

############################# trusted: alice signs in from her own address

my $HOME = '127.0.0.20';
is(grant('alice', $PW, $HOME)->{status}, 200,
    'alice signs in from her address: 200 (it is trusted from now on)');

################################# per (account, address): n = 3 failures

for my $i (1 .. 3) {
    is(grant('alice', "wrong$i", '127.0.0.2')->{status}, 400,
        "wrong password #$i for alice from an attacker: 400");
}
refused_ok(grant('alice', $PW, '127.0.0.2'),
    'the 4th attempt from that address, with the right password (R17)');
is(grant('bob', $PW, '127.0.0.2')->{status}, 200,
    'the same address may still sign in to another account (3 < 3n)');
is(grant('alice', $PW, '127.0.0.30')->{status}, 200,
    'alice from an address that never signed in: 200, 3 failures are below '
    . 'the account\'s 6 (R83)');
is(page_login('alice', $PW, '127.0.0.31')->{status}, 303,
    'alice signs in at the daemon\'s page from another new address: 303');

######################## the account lock: 6 failures from many addresses

for my $i (1 .. 3) {
    is(grant('alice', "again$i", '127.0.0.3')->{status}, 400,
        "wrong password #$i from a second address: 400");
}
refused_ok(grant('alice', $PW, '127.0.0.40'),
    'after 6 failures, alice from an address that never signed in');
like(grant('alice', $PW, '127.0.0.41')->{body}, qr/temporarily_unavailable/,
    'the refusal is the token endpoint\'s temporarily_unavailable');
is(grant('alice', $PW, $HOME)->{status}, 200,
    'alice from her own address, while locked for strangers: 200 (R83)');
is(grant('alice', $PW, '127.0.0.30')->{status}, 200,
    'and from the address she signed in from a moment ago: 200 (R83)');
is(page_login('alice', $PW, '127.0.0.31')->{status}, 303,
    'and at the daemon\'s page from where she signed in there a moment ago: '
    . '303 (R83, R89)');
refused_ok(grant('alice', $PW, '127.0.0.42'),
    'her sign-ins unlock nothing for a new address (R83)');
refused_ok(grant('alice', 'guess', '127.0.0.43'),
    'a guess from a new address is refused before any hash');

################################# R89: one lock wherever she signs in

refused_ok(seed001_login('alice', $PW, '127.0.0.44'),
    'seed 001 /users/login/ from a new address shares the lock (R89)');
refused_ok(page_login('alice', $PW, '127.0.0.45'),
    'the admin daemon\'s sign-in page shares the lock (R89)');
my ($r) = browser_login('alice', $PW, '127.0.0.46');
is($r->{status}, 429, 'the authorization page shares the lock (R89)');
is(page_login('alice', $PW, $HOME)->{status}, 303,
    'the daemon\'s page lets her in from her own address: 303');

# failures at the daemon's page lock the account for the module too
for my $i (1 .. 3) {
    is(page_login('bob', "bad$i", '127.0.0.4')->{status}, 400,
        "a wrong password for bob at the daemon's page #$i: 400");
}
my $bob_throttled = page_login('bob', $PW, '127.0.0.4');
is($bob_throttled->{status}, 429,
    'the daemon throttles the 4th from that address: 429');
# the wait is --auth-limit's window (6 s), not the default 60 s
my $bob_wait = OAuth2Test::header($bob_throttled, 'Retry-After') // '';
ok($bob_wait =~ /^\d+$/ && $bob_wait >= 1 && $bob_wait <= $WINDOW,
    "the daemon's Retry-After is within --auth-limit's window of $WINDOW s "
    . '(R17)') or diag("Retry-After: '$bob_wait'");
my $bob_free_at = time
    + ($bob_wait =~ /^\d+$/ && $bob_wait < $WINDOW ? $bob_wait : $WINDOW);
for my $i (1 .. 3) {
    page_login('bob', "bad$i", '127.0.0.5');
}
refused_ok(grant('bob', $PW, '127.0.0.50'),
    'after 6 failures at the daemon\'s page, the password grant refuses bob '
    . 'from a new address (R89)');

############################ a browser that signed in keeps signing in

# the daemon's page remembers her browser as the authorization page does
my $page_ok = page_login('carol', $PW, '127.0.0.64');
is($page_ok->{status}, 303, 'carol signs in at the daemon\'s page: 303');
my $page_device = OAuth2Test::cookies_of($page_ok)->{oauth2_device}{value};
like($page_device // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the daemon\'s page gives her browser a device cookie (256 bits, R83)');
my ($ok, $device) = browser_login('carol', $PW, '127.0.0.60');
is($ok->{status}, 303, 'carol signs in at the authorization page: 303');
like($device // '', qr/^[A-Za-z0-9_-]{43}$/,
    'her browser gets a device cookie (256 bits)');
like(OAuth2Test::cookies_of($ok)->{oauth2_device}{raw} // '',
    qr/HttpOnly/i, 'the device cookie is HttpOnly');
for my $n (6, 7) {
    for my $i (1 .. 3) {
        grant('carol', "x$n$i", "127.0.0.$n");
    }
}
($r) = browser_login('carol', $PW, '127.0.0.61');
is($r->{status}, 429,
    'carol locked: a browser without her device cookie, at a new address: '
    . '429');
($r) = browser_login('carol', $PW, '127.0.0.62', $device);
is($r->{status}, 303,
    'her own browser (its device cookie) at a new address: 303 (R83)');
($r) = browser_login('carol', $PW, '127.0.0.63', 'A' x 43);
is($r->{status}, 429, 'a made-up device cookie: 429');
refused_ok(page_login('carol', $PW, '127.0.0.65'),
    'carol locked: the daemon\'s page, no device cookie, a new address');
is(page_login('carol', $PW, '127.0.0.66', $page_device)->{status}, 303,
    'the device cookie the daemon\'s page gave, at a new address: 303 (R83)');
($r) = browser_login('carol', $PW, '127.0.0.67', $page_device);
is($r->{status}, 303,
    'and at the authorization page: one browser for both (R89)');

###################### a device cookie planted by a sibling host (R83)

# a sibling host (Domain=example.com) can set an oauth2_device cookie the
# browser sends here: the sign-in does not trust the value it sent, but
# gives the browser one of the server's, so that whoever planted the value
# cannot pass the account's lock with it
my $planted = 'Planted' . ('x' x 36);
my $planted2 = 'Planted2' . ('y' x 35);
my ($fr, $fr_device) = browser_login('frank', $PW, '127.0.0.80', $planted);
is($fr->{status}, 303, 'frank signs in, his browser holding a planted device cookie: 303');
like($fr_device // '', qr/^[A-Za-z0-9_-]{43}$/,
    '... and it gets a device cookie of the server\'s');
isnt($fr_device // '', $planted, '... not the planted value');
my $fr_page = page_login('frank', $PW, '127.0.0.85', $planted2);
is($fr_page->{status}, 303, 'the same at the daemon\'s page: 303');
my $fr_page_device = OAuth2Test::cookies_of($fr_page)->{oauth2_device}{value} // '';
ok($fr_page_device ne '' && $fr_page_device ne $planted2,
    '... with a device cookie of the server\'s, not the planted one');
for my $n (81, 82) {
    grant('frank', "x$n$_", "127.0.0.$n") for 1 .. 3;
}
($r) = browser_login('frank', $PW, '127.0.0.83', $planted);
is($r->{status}, 429, 'frank locked: the planted value at a new address: 429');
refused_ok(page_login('frank', $PW, '127.0.0.86', $planted2),
    'frank locked: the planted value at the daemon\'s page');
($r) = browser_login('frank', $PW, '127.0.0.84', $fr_device);
is($r->{status}, 303, 'the value the server gave his browser: 303');

############################################## the per-address ceiling

for my $i (1 .. 3) {
    grant('nobody-' . $i, 'x', '127.0.0.8') for 1 .. 3;
}
refused_ok(grant('dave', $PW, '127.0.0.8'),
    '3n failures from one address over any accounts: that address is '
    . 'refused for every account');
is(grant('dave', $PW, '127.0.0.9')->{status}, 200,
    'another address signs dave in: 200');
# the same ceiling at the daemon's page
my @page_fails = map {
    my $n = $_;
    map { page_login("nobody-$n", 'x', '127.0.0.14')->{status} } 1 .. 3
} 4 .. 6;
is_deeply(\@page_fails, [(400) x 9],
    '9 wrong passwords over three accounts at the daemon\'s page from one '
    . 'address: 400 each');
refused_ok(page_login('dave', $PW, '127.0.0.14'),
    'then that address at the daemon\'s page, for a fourth account (R17)');
is(page_login('dave', $PW, '127.0.0.15')->{status}, 303,
    'another address signs dave in at the daemon\'s page: 303');

############### one (account, address) count, whichever name reached it

for my $i (1 .. 3) {
    is(grant('erin', "wrong$i", '127.0.0.12')->{status}, 400,
        "wrong password #$i for erin by her username: 400");
}
my $by_email = sub {
    return $t->post_form('/users/login/', OAuth2Test::form(
        email => 'erin@example.com', password => $PW), '-from' => $_[0]);
};
refused_ok($by_email->('127.0.0.12'),
    'the 4th from that address, by her email at seed 001\'s login (R17)');
is($by_email->('127.0.0.13')->{status}, 200,
    'by her email from another address: 200');

######################## a new password ends the old one's trust (R39)

# gina's password was stolen: the thief signed in with it, and the server
# trusts the thief's browser and address.  Staff set a new password: both
# then meet the lock as strangers do
my ($gi, $gi_device) = browser_login('gina', $PW, '127.0.0.90');
is($gi->{status}, 303, 'the thief signs in as gina with her old password: 303');
my $NEW_PW = 'Gina-new-passphrase-8';
my ($sc, undef, $se) = $t->admin('user', 'set-password', 'gina',
    '--password', $NEW_PW, '--pbkdf2-iterations', 1000);
is($sc, 0, 'oauth2-admin user set-password gina') or diag($se);
for my $n (91, 92) {
    grant('gina', "x$n$_", "127.0.0.$n") for 1 .. 3;
}
($r) = browser_login('gina', $NEW_PW, '127.0.0.93', $gi_device);
is($r->{status}, 429,
    'gina locked: the thief\'s browser (trusted before the new password): 429');
refused_ok(grant('gina', $NEW_PW, '127.0.0.90'),
    'gina locked: the thief\'s address (trusted before the new password)');

############################################ the lock ends with its window

my $left = $start + $WINDOW + 1 - time;
sleep $left if $left > 0;
is(grant('alice', $PW, '127.0.0.70')->{status}, 200,
    'after the window, alice from a new address: 200 (no permanent lock, '
    . 'R17)');
# a second more: the account's lock (also 6 s) may have opened its window
# a second after the throttle's
$left = $bob_free_at + 1.5 - time;
sleep $left if $left > 0;
is(page_login('bob', $PW, '127.0.0.4')->{status}, 303,
    'after the Retry-After of --auth-limit 3/6, bob signs in at the '
    . 'daemon\'s page from the throttled address: 303 (R17)');

# R88, R83: a correct password of an account that may not sign in at the
# daemon's pages (not staff) costs a hash as a wrong one does, and counts
# as a failed sign-in of the address as a wrong one does: uncounted, one
# address kept the daemon's hash slots full, every staff sign-in 503
$t->admin_json('user', 'add', '--username', 'hank', '--email',
    'hank@example.com', '--password', $PW, '--pbkdf2-iterations', 1000);
{
    my @st = map { page_login('hank', $PW, '127.0.0.90')->{status} } 1 .. 4;
    is(join(' ', @st), '400 400 400 429', 'a non-staff user\'s own password '
        . 'at the daemon\'s page, 4 times from one address: refused, then '
        . 'throttled as a wrong one is (--auth-limit 3/6)');
    # R83: what it counted is that address's: a staff user signs in from
    # another at once
    $t->admin_json('user', 'add', '--username', 'ivy', '--email',
        'ivy@example.com', '--password', $PW, '--pbkdf2-iterations', 1000,
        '--staff');
    is(page_login('ivy', $PW, '127.0.0.91')->{status}, 303,
        '... while a staff user signs in from another address: 303 (R83)');
}

# the store holds the lock, never a password or an address in clear
my ($code, $dump) = $t->_run_cmd('mdb_dump', '-a', $t->store);
is($code, 0, 'mdb_dump of the store: exit 0');
like($dump, qr/account_locks/, 'the store has the account_locks database');
unlike($dump, qr/127\.0\.0\./, 'no client address in clear in the store');
unlike($dump, qr/\Q$device\E/, 'no device cookie in clear in the store');

$t->done_testing;
