# A sign-in on the authorization pages and a change of the user's password
# that meet (docs/security.md R39, R70).  The sign-in checks the password
# in the thread pool, then (its hash due for more iterations) hashes it
# again, slowly, before its write; a password change committed meanwhile
# deletes the user's tokens and sessions.  The sign-in's write must then
# see that the password it checked is no longer the user's: no session
# made on the old password after the change, and the old password not
# written back by the rehash.  The token endpoint's password grant
# refuses so already; the pages' sign-in did not.  Staged here with a
# location whose PBKDF2 iterations make the rehash take a second or two,
# and `oauth2-admin user set-password` (or `user set --active false`)
# run while it runs.  The password grant's write, likewise, refuses when
# its application was disabled or deleted meanwhile.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $OLD = 'Old-passphrase-of-alice-1';
my $NEW = 'New-passphrase-of-alice-2';
OAuth2Authorize::user_add($t, 'alice', $OLD);
OAuth2Authorize::user_add($t, 'bob', $OLD);
# the stored hashes have 1000 iterations; this location wants 6,000,000
# (1.4 s on the development machine): every sign-in there rehashes
$t->write_config(OAuth2Authorize::http_conf($t, extra_server => <<'EOF'))->run;
    location = /slow/authorize/ {
        oauth2_authorize;
        oauth2_pbkdf2_iterations 6000000;
    }
    location = /slow/token/ {
        oauth2_token;
        oauth2_pbkdf2_iterations 6000000;
    }
EOF

my $CB = 'https://client.example/cb';
my $web = $t->new_app(name => 'web', grant => ['authorization_code'],
    redirect_uris => [$CB]);
my $query = OAuth2Authorize::query(client_id => $web->{client_id},
    response_type => 'code', redirect_uri => $CB, scope => 'read',
    state => 'st');
my $slow = OAuth2Authorize->new($t, path => '/slow/authorize/');
my $fast = OAuth2Authorize->new($t);

# sends the sign-in form of $user to the slow location on a socket of
# its own, without waiting for the answer
sub start_sign_in {
    my ($user, $pw) = @_;
    my $g = $slow->get($query);
    my $csrf = OAuth2Authorize::cookies_of($g)->{oauth2_csrf}{value} // '';
    my $body = OAuth2Test::form(action => 'login',
        csrf_token => OAuth2Authorize::csrf_field($g) // $csrf,
        username => $user, password => $pw);
    return $t->send_async('POST', "/slow/authorize/?$query",
        [Cookie => "oauth2_csrf=$csrf",
            'Content-Type' => 'application/x-www-form-urlencoded'], $body);
}

sub finish { OAuth2Test::read_async(@_) }

sub session_of {
    my ($r) = @_;
    my $v = OAuth2Authorize::cookies_of($r)->{oauth2_session}{value};
    return defined $v && length $v ? $v : undef;
}

# the sign-in, with nothing in its way, makes a session (the staging
# works: the location's rehash and its answer)
my $s = start_sign_in('bob', $OLD);
my ($r) = finish($s);
is($r->{status}, 303, 'a sign-in at the slow location: 303');
ok(session_of($r), '... with a session');

# a change of password while the sign-in rehashes
$s = start_sign_in('alice', $OLD);
sleep 0.3;
ok(!IO::Select->new($s)->can_read(0),
    "alice's sign-in is still hashing when her password changes");
my ($code, $out, $err) = $t->admin('user', 'set-password', 'alice',
    '--password', $NEW, '--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
is($code, 0, 'user set-password alice: exit 0') or diag("$out$err");
my $changed = time;
my $at;
($r, $at) = finish($s);
cmp_ok($at, '>', $changed, sprintf('the sign-in answered after the change '
    . '(%.2f s later): the two met', $at - $changed));
is($r->{status}, 200, 'the sign-in on the old password, overtaken by the '
    . 'change: the login page again (R39, R70)');
like($r->{body}, qr/Invalid username or password/, '... saying so');
ok(!session_of($r), '... and no session');
ok(!$fast->login($query, 'alice', $OLD),
    'the old password does not sign in afterwards (the rehash did not '
    . 'write it back)');
ok($fast->login($query, 'alice', $NEW), 'the new one does');

# a deactivation while the sign-in rehashes
$s = start_sign_in('bob', $OLD);
sleep 0.3;
($code, $out, $err) = $t->admin('user', 'set', 'bob', '--active', 'false');
is($code, 0, 'user set bob --active false: exit 0') or diag("$out$err");
($r) = finish($s);
ok(!session_of($r), 'a sign-in overtaken by the deactivation: no session');
($code, $out, $err) = $t->admin('user', 'set', 'bob', '--active', 'true');
is($code, 0, 'user set bob --active true: exit 0') or diag("$out$err");
# his hash has the slow location's iterations since his first sign-in:
# read as the sign-ins above, whose wait allows for a loaded machine
($r) = finish(start_sign_in('bob', $OLD));
ok(session_of($r),
    'reactivated, bob signs in with his password, as rehashed before');

# The password grant: its application disabled, or deleted, while the
# user's password is checked and rehashed.  Its write issued the pair all
# the same (a disabled application's tokens revive when it is enabled
# again; a deleted one's are records under no client): it must refuse as
# the client's authentication would have (R70), as client_credentials
# does.
OAuth2Authorize::user_add($t, 'carol', $OLD);
for my $case (['app', 'disable'], ['app', 'delete']) {
    my $pwapp = $t->new_app(name => "pw-$case->[1]", grant => 'password');
    my $form = OAuth2Test::form(grant_type => 'password', username => 'carol',
        password => $OLD);
    my $s = $t->send_async('POST', '/slow/token/',
        [Authorization => $t->basic($pwapp->{client_id}, $pwapp->{client_secret}),
            'Content-Type' => 'application/x-www-form-urlencoded'], $form);
    sleep 0.3;
    ok(!IO::Select->new($s)->can_read(0),
        "the password grant is still hashing at '@$case'");
    my ($code, $out, $err) = $t->admin(@$case, $pwapp->{client_id});
    is($code, 0, "@$case: exit 0") or diag("$out$err");
    my $done = time;
    my ($r, $at) = finish($s);
    cmp_ok($at, '>', $done, '... the grant answered after it');
    is($r->{status}, 401, "a password grant overtaken by '@$case': 401 (R70)");
    is($r->{json} && $r->{json}{error}, 'invalid_client', '... invalid_client');
    like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/^Basic /,
        "... with Basic's challenge, as its authentication would have");
    ok(!($r->{json} && $r->{json}{access_token}), '... and no token');
}

$t->done_testing;
