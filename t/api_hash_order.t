# R88: cheap checks first.  A caller whose address is throttled for
# failed current passwords is answered 429 at once when it changes its
# own password at the admin API, before it waits for one of the daemon's
# hash slots (--hash-limit): it queued first, taking a slot's turn from
# staff sign-ins, and got 503 while they were busy.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $PW = 'Bob-own-passphrase-41';
my $bob = $t->admin_json('user', 'add', '--username', 'bob', '--email',
    'bob@example.com', '--password', $PW, '--pbkdf2-iterations', 1000);
$t->admin_json('user', 'add', '--username', 'hasher', '--email',
    'hasher@example.com', '--password', 'Hasher-slow-pass-73',
    '--pbkdf2-iterations', 3000000, '--staff');
my $app = $t->admin_json('app', 'add', '--name', 'first', '--grant',
    'password', '--first-party');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 1000;\n",
    extra_server => $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000, '--hash-limit', '1/1',
    '--auth-limit', '1/60');
my $token = $t->post_form('/o/token/', OAuth2Test::form(
    grant_type => 'password', username => 'bob', password => $PW),
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}))
    ->{json}{access_token} // '';
ok($token, 'a token of bob\'s');

sub change {
    return $t->api('PATCH', "/api/users/$bob->{id}/", token => $token,
        from => '127.0.0.50', json => { password => 'Bob-next-passphrase-42',
            current_password => 'not-his' })->{status};
}
is(change(), 400, 'a wrong current password: 400');
is(change(), 429, 'the next from that address: 429 (--auth-limit 1/60)');

# two slow sign-ins at the pages fill --hash-limit 1/1 (one hashing, one
# waiting)
my @slow = map {
    my $g = $t->get('/o/applications/login/');
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my ($field) = $g->{body} =~ /name="csrf" value="([^"]+)"/;
    $t->send_async('POST', '/o/applications/login/',
        [Cookie => "oauth2_csrf=$csrf",
            'Content-Type' => 'application/x-www-form-urlencoded'],
        OAuth2Test::form(csrf => $field // '', username => 'hasher',
            password => 'not-the-password'));
} 1 .. 2;
sleep 0.5;
is(change(), 429, 'while the hash slots are busy, the throttled address '
    . 'still gets 429 at once, not 503');
my @r = map { (OAuth2Test::read_async($_))[0]{status} } @slow;
is(join(' ', @r), '400 400', '(the two slow sign-ins: 400 each)');

$t->stop_daemon;
$t->daemon_log_ok;
$t->done_testing;
