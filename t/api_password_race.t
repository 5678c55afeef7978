# One's own password changed through the admin API (PATCH
# /api/users/<self>/ with current_password) while another change of that
# password commits (docs/security.md R39, R85).  The daemon checks the
# current password, then hashes the new one (slow), then writes; a reset
# committed in between (staff's `user set-password` after a theft, say)
# ended every token of the user, the caller's too.  The PATCH's write must
# see that the password it checked is no longer the user's and refuse,
# or whoever held the old password and a token keeps the account after
# the reset.  Staged with a daemon whose PBKDF2 iterations make the new
# hash take a second or two.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
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

sub password_token {
    my ($pw) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => 'alice', password => $pw),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
}

my $r = password_token($OLD);
is($r->{status}, 200, 'a token of alice (her old password)');
my $token = $r->{json}{access_token} // '';

# the PATCH, on a socket of its own: the answer read later
my $body = JSON::PP->new->canonical->encode({ password => $THIEF,
    current_password => $OLD });
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
    Proto => 'tcp') or die "connect: $!";
binmode $s;
print $s "PATCH /api/users/$alice->{id}/ HTTP/1.1\r\n"
    . "Host: localhost\r\nConnection: close\r\n"
    . "Authorization: Bearer $token\r\n"
    . "Content-Type: application/json\r\n"
    . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
sleep 0.3;
ok(!IO::Select->new($s)->can_read(0),
    'the PATCH is still hashing when staff resets her password');
my ($code, $out, $err) = $t->admin('user', 'set-password', 'alice',
    '--password', $RESET, '--pbkdf2-iterations', 1000);
is($code, 0, 'user set-password alice: exit 0') or diag("$out$err");
my $reset_at = time;
my $buf = '';
my $sel = IO::Select->new($s);
while ($sel->can_read(30)) {
    last unless sysread $s, $buf, 65536, length $buf;
}
my $answered = time;
close $s;
$r = OAuth2Test::parse_response($buf);
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

$t->done_testing;
