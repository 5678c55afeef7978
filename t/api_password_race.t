# One's own password changed through the admin API (PATCH
# /api/users/<self>/ with current_password) while another change of that
# password commits (docs/security.md R39, R85).  The daemon checks the
# current password, then hashes the new one (slow), then writes; a reset
# committed in between (staff's `user set-password` after a theft, say)
# ended every token of the user, the caller's too.  The PATCH's write must
# see that the password it checked is no longer the user's and refuse,
# or whoever held the old password and a token keeps the account after
# the reset.  And a staff caller's POST /api/users/, demoted or
# deactivated while it hashed, makes no user.  Staged with a daemon whose
# PBKDF2 iterations make a new hash take a second or two.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my ($OLD, $RESET, $THIEF) = ('Alice-old-passphrase-1', 'Alice-reset-by-staff-2',
    'Thief-chosen-passphrase-3');
my $alice = $t->admin_json('user', 'add', '--username', 'alice', '--email',
    'alice@example.com', '--password', $OLD, '--pbkdf2-iterations', 1000);
my $app = $t->admin_json('app', 'add', '--name', 'first', '--grant', 'password',
    '--first-party');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 1000;\n",
    extra_server => $t->daemon_locations))->run;
# a new password's hash takes 1.4 s on the development machine
$t->run_daemon('--pbkdf2-iterations', 6000000);

# the password grant's answer for $user (default alice, by $app)
sub password_token {
    my ($pw, $user, $by) = @_;
    $by //= $app;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => $user // 'alice', password => $pw),
        Authorization => $t->basic($by->{client_id}, $by->{client_secret}));
}

my $r = password_token($OLD);
is($r->{status}, 200, 'a token of alice (her old password)');
my $token = $r->{json}{access_token} // '';

# the PATCH, on a socket of its own: the answer read later
my $body = JSON::PP->new->canonical->encode({ password => $THIEF,
    current_password => $OLD });
my $s = $t->send_async('PATCH', "/api/users/$alice->{id}/",
    [Authorization => "Bearer $token", 'Content-Type' => 'application/json'],
    $body);
sleep 0.3;
ok(!IO::Select->new($s)->can_read(0),
    'the PATCH is still hashing when staff resets her password');
my ($code, $out, $err) = $t->admin('user', 'set-password', 'alice',
    '--password', $RESET, '--pbkdf2-iterations', 1000);
is($code, 0, 'user set-password alice: exit 0') or diag("$out$err");
my $reset_at = time;
my $answered;
($r, $answered) = OAuth2Test::read_async($s);
cmp_ok($answered, '>', $reset_at, sprintf('the PATCH answered after the '
    . 'reset (%.2f s later): the two met', $answered - $reset_at));
is($r->{status}, 400, 'the PATCH authorised by the old password, overtaken '
    . 'by the reset: 400 (R39, R85)');
is_deeply($r->{json}, { current_password => [
    'Your old password was entered incorrectly. Please enter it again.'] },
    '... the current password refused');
is(password_token($RESET)->{status}, 200, 'the reset password signs in');
is(password_token($THIEF)->{status}, 400,
    "the PATCH's password does not");
is($t->api('GET', '/auth/me/', token => $token)->{status}, 401,
    'the token the PATCH used stays ended');

# A staff user's write that hashes a password (POST /api/users/ here),
# the caller demoted while it hashed: the write must not happen as if
# they were still staff (R69, R70).  Likewise deactivated.
my $root = $t->admin_json('user', 'add', '--username', 'root', '--email',
    'root@example.com', '--password', $OLD, '--pbkdf2-iterations', 1000,
    '--staff');
my $staff_app = $t->admin_json('app', 'add', '--name', 'console', '--grant',
    'password', '--first-party');
# root's POST /api/users/ of "made-$what", on a socket of its own, still
# hashing when $meanwhile runs; then whether it made nothing
sub staff_post_meets {
    my ($what, $meanwhile) = @_;
    my $r = password_token($OLD, 'root', $staff_app);
    my $staff_token = $r->{json}{access_token} // '';
    my $body = JSON::PP->new->canonical->encode({ username => "made-$what",
        email => "made-$what\@example.com", password => 'Made-by-staff-phrase-4' });
    my $s = $t->send_async('POST', '/api/users/',
        [Authorization => "Bearer $staff_token", 'Content-Type' => 'application/json'],
        $body);
    sleep 0.3;
    ok(!IO::Select->new($s)->can_read(0),
        "a staff POST /api/users/ is still hashing when root is $what");
    $meanwhile->($staff_token);
    ($r) = OAuth2Test::read_async($s);
    is($r->{status}, 401, "the POST of a caller $what meanwhile: 401");
    my $users = $t->admin_json('user', 'list');
    ok(!grep({ $_->{username} eq "made-$what" } @$users), '... and no user made');
}

for my $case (['--staff', 'false', 'demoted'], ['--active', 'false', 'deactivated']) {
    my ($flag, $value, $what) = @$case;
    staff_post_meets($what, sub {
        my ($code, $out, $err) = $t->admin('user', 'set', 'root', $flag, $value);
        is($code, 0, "user set root $flag $value: exit 0 (R69, R70)") or diag("$out$err");
    });
    my ($code, $out, $err) = $t->admin('user', 'set', 'root', '--staff', 'true',
        '--active', 'true');
    is($code, 0, 'root restored') or diag("$out$err");
}

# The caller's token revoked (RFC 7009) while its write hashed: the write
# must not happen, for a revoked token acts no more (RFC 7009 2, R66, R69)
staff_post_meets('revoked', sub {
    my ($token) = @_;
    my $rv = $t->post_form('/o/revoke_token/', OAuth2Test::form(token => $token),
        Authorization => $t->basic($staff_app->{client_id}, $staff_app->{client_secret}));
    is($rv->{status}, 200, 'the token revoked: 200');
});

# The power a staff write acted with, taken from its application while it
# hashed: "admin" removed from the application's scope, or its first-party
# mark (R85).  A fresh request of that token is no longer staff's (403);
# the write that waited must not act as staff either, making a user or
# setting another user's password (R69, R85).
my $console = $t->admin_json('app', 'add', '--name', 'third-console', '--grant',
    'password', '--scope', 'read write admin');
my $fp = $t->admin_json('app', 'add', '--name', 'fp-console', '--grant',
    'password', '--first-party');
is($console->{first_party}, JSON::PP::false, 'third-console is third-party');
# staff's own first-party token, never changed below, makes the changes
my $ops = password_token($OLD, 'root', $staff_app)->{json}{access_token} // '';
sub app_patch {
    my ($of, $json) = @_;
    my $r = $t->api('PATCH', "/api/applications/$of->{client_id}/", token => $ops,
        json => $json);
    is($r->{status}, 200, "PATCH $of->{name} " . JSON::PP->new->canonical->encode($json)
        . ': 200');
}
# root's token by $by (with "admin" when $scope says so)
sub root_token {
    my ($by, $scope) = @_;
    my $r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => 'root', password => $OLD, defined $scope ? (scope => $scope) : ()),
        Authorization => $t->basic($by->{client_id}, $by->{client_secret}));
    is($r->{status}, 200, "root's token by $by->{name}");
    return $r->{json}{access_token} // '';
}
# $method $path with $json, by $token, on a socket of its own, still
# hashing when $meanwhile runs: its answer
sub staff_write_meets {
    my ($what, $token, $method, $path, $json, $meanwhile) = @_;
    my $s = $t->send_async($method, $path,
        [Authorization => "Bearer $token", 'Content-Type' => 'application/json'],
        JSON::PP->new->canonical->encode($json));
    sleep 0.3;
    ok(!IO::Select->new($s)->can_read(0), "$method $path is still hashing when $what");
    $meanwhile->();
    my ($r) = OAuth2Test::read_async($s);
    return $r;
}
my $made = 0;
for my $case (
    ['"admin" is taken from third-console', $console, 'admin',
        { scope => 'read write' }, { scope => 'read write admin' }],
    ['fp-console is no longer first-party', $fp, undef,
        { first_party => JSON::PP::false }, { first_party => JSON::PP::true }])
{
    my ($what, $by, $scope, $take, $give) = @$case;
    my $token = root_token($by, $scope);
    is($t->api('GET', '/api/users/', token => $token)->{status}, 200,
        "root's token by $by->{name} acts as staff: 200");
    my $name = 'made-' . ++$made;
    my $r = staff_write_meets($what, $token, 'POST', '/api/users/', {
        username => $name, email => "$name\@example.com",
        password => 'Made-by-staff-phrase-4', is_staff => JSON::PP::true },
        sub { app_patch($by, $take) });
    is($r->{status}, 403, "the staff POST of a token whose $what meanwhile: 403 "
        . '(R69, R85)');
    ok(!grep({ $_->{username} eq $name } @{$t->admin_json('user', 'list')}),
        '... and no user made');
    is($t->api('GET', '/api/users/', token => $token)->{status}, 403,
        '... as a fresh request of that token is refused');
    app_patch($by, $give);
    my $reset = 'Reset-by-staff-phrase-' . $made;
    $r = staff_write_meets($what, $token, 'PATCH', "/api/users/$alice->{id}/",
        { password => $reset }, sub { app_patch($by, $take) });
    is($r->{status}, 403, "staff setting alice's password by a token whose $what "
        . 'meanwhile: 403 (R69, R85)');
    is(password_token($reset)->{status}, 400, "... alice's password did not change");
    is(password_token($RESET)->{status}, 200, '... her own still signs in');
    app_patch($by, $give);
}

$t->done_testing;
