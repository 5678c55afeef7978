# oauth2-admin serve's options as the daemon then behaves (README
# "oauth2-admin serve"; docs/security.md R88): a number of 20 digits is no
# number (it would wrap around 2^64 to a small one), --hash-limit off
# would leave no slot to hash a password in, --page-size stops at 10000,
# and --password-policy is the policy the API then applies, not only a
# spelling it checks.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $p = $t->daemon_port;

######################################################## refused values

# each must exit 2 at once; one read as some other value would serve
# instead, until admin_within kills it (exit 137)
for my $o (
    # 2^64 + 100 and 2^64 + 1000: read digit by digit into 64 bits they
    # wrap around to 100 and 1000, values in range; an operator's typo of a
    # huge number must not become a small one
    ['--session-max', '18446744073709551716'],
    ['--pbkdf2-iterations', '18446744073709552616'],
    ['--page-size', '18446744073709551716'],
    # R88: "off" is a limit of 0 running: no sign-in nor password change
    # would ever get a slot to hash in (each waits, then 503)
    ['--hash-limit', 'off'],
    # one list page of ten million users is the whole store in one answer
    ['--page-size', 10001])
{
    my ($code, $out, $err) = $t->admin_within(10, 'serve', '--listen',
        "127.0.0.1:$p", @$o);
    is($code, 2, "serve @$o: refused, exit 2");
    like($err, qr/\Q$o->[0]\E: '\Q$o->[1]\E' is not/,
        "serve @$o: the message names the option and its value");
}
ok(!-e $t->store, 'the refused command lines made no store');

######################################################## accepted values

# the edges of the ranges serve
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $admin = $t->issue_token($admin_app->{client_id},
    scope => 'read write admin');
$t->run_daemon('--pbkdf2-iterations', 1000, '--page-size', 10000,
    '--hash-limit', '64/1');
my $r = $t->api('GET', '/api/applications/', token => $admin, port => $p);
is($r->{status}, 200, '--page-size 10000 --hash-limit 64/1: serves, 200');
is($t->stop_daemon, 0, 'the daemon stops');

######################################################## --password-policy

# the policy given is the one the users API applies (Django's validators,
# README "Password policy"): a site that asks for 12 characters gets no
# user with 10, and one that turned the policy off may set any password
my $n = 0;
sub add_user {
    my ($pw) = @_;
    my $name = 'policy' . ++$n;
    return $t->api('POST', '/api/users/', token => $admin, port => $p,
        json => { username => $name, password => $pw,
            email => "$name\@example.com" });
}

$t->run_daemon('--pbkdf2-iterations', 1000, '--password-policy',
    'min_length=12');
$r = add_user('Zq7kLm2Wpx');
is($r->{status}, 400, '--password-policy min_length=12: a password of 10 '
    . 'characters is refused, 400');
like(join(' ', @{$r->{json}{password} // []}), qr/at least 12 characters/,
    '... saying it needs 12');
$r = add_user('Zq7kLm2Wpx4v');
is($r->{status}, 201, '... and one of 12 is taken, 201') or diag $r->{body};
is($t->stop_daemon, 0, 'the daemon stops');

$t->run_daemon('--pbkdf2-iterations', 1000, '--password-policy', 'off');
$r = add_user('qwerty');
is($r->{status}, 201, '--password-policy off: "qwerty" (short, common) is '
    . 'taken, 201') or diag $r->{body};
is($t->stop_daemon, 0, 'the daemon stops');

# without the option, the default policy refuses both
$t->run_daemon('--pbkdf2-iterations', 1000);
is(add_user('qwerty')->{status}, 400, 'the default policy refuses "qwerty"');
is(add_user('Zq7kLm2Wpx')->{status}, 201,
    'and takes the 10 characters min_length=12 refused');
is($t->stop_daemon, 0, 'the daemon stops');

$t->daemon_log_ok($admin, 'Zq7kLm2Wpx', 'qwerty');
$t->done_testing;
