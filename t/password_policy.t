# Django's default password validators wherever a password is set (issue
# "Close the holes" item 9): seed 001's /users/register/, the users API,
# and oauth2-admin user add / set-password, with Django's messages as DRF
# field errors; configurable with oauth2_password_policy, --password-policy.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $staff = $t->new_app(name => 'staff-app', scope => 'read write admin');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 1000;\n",
    extra_server => <<'EOF' . $t->daemon_locations))->run;
    location = /users/register/ { oauth2_register; }
    location = /users/register-relaxed/ {
        oauth2_register;
        oauth2_password_policy min_length=12 common=off numeric=off
                               similarity=off;
    }
    location = /users/register-off/ {
        oauth2_register;
        oauth2_password_policy off;
    }
    location = /users/register-common-off/ {
        oauth2_register;
        oauth2_password_policy common=off;
    }
    location = /users/register-numeric-off/ {
        oauth2_register;
        oauth2_password_policy numeric=off;
    }
    location /outer/ {
        oauth2_password_policy min_length=12;
        location = /outer/users/register/ { oauth2_register; }
    }
EOF
$t->run_daemon('--pbkdf2-iterations', 1000);
my $admin = $t->access_token($staff, scope => 'read write admin');

my $n = 0;
sub register {
    my ($pw, %o) = @_;
    my $user = $o{username} // 'user' . ++$n;
    return $t->post_form($o{path} // '/users/register/', OAuth2Test::form(
        username => $user, password => $pw, confirm_password => $pw,
        email => $o{email} // "$user\@example.com"),
        $o{from} ? ('-from' => $o{from}) : ());
}

my $SHORT = 'This password is too short. It must contain at least 8 characters.';
my $COMMON = 'This password is too common.';
my $NUMERIC = 'This password is entirely numeric.';

########################################################### registration

my $r = register('1');
is($r->{status}, 400, 'register with the password "1": 400');
is_deeply($r->{json}, { password => [$SHORT, $COMMON, $NUMERIC] },
    '"1": too short, too common and entirely numeric, in Django\'s order');
$r = register('83920174');
is_deeply($r->{json}, { password => [$NUMERIC] },
    '"83920174": entirely numeric');
$r = register('password1');
is_deeply($r->{json}, { password => [$COMMON] },
    '"password1": too common (Django\'s list)');
$r = register(' PassWord1 ');
is_deeply($r->{json}, { password => [$COMMON] },
    'the common list ignores case and surrounding spaces');
$r = register('Quentin_Tarantino9', username => 'quentin_tarantino');
is_deeply($r->{json},
    { password => ['The password is too similar to the username.'] },
    'a password like the username: too similar');
$r = register('xkcd.rocks.cat', username => 'zed',
    email => 'xkcd.rocks@example.com');
is_deeply($r->{json},
    { password => ['The password is too similar to the email address.'] },
    'a password like the email: too similar');
ok(!defined $t->admin_json('user', 'list')->[0],
    'none of the refused registrations made a user');
$r = register('Plausible-Horse-Staple-4');
is($r->{status}, 201, 'a strong password: 201');

$r = register('Plausible-H', path => '/users/register-relaxed/');
is_deeply($r->{json}, { password => [
    'This password is too short. It must contain at least 12 characters.'] },
    'oauth2_password_policy min_length=12: Django\'s message with 12');
is(register('password12345', path => '/users/register-relaxed/')->{status},
    201, 'common=off numeric=off: a common 13-character password passes');
is(register('1', path => '/users/register-off/')->{status}, 201,
    'oauth2_password_policy off: any password');
# a policy in an outer location reaches the register location inside
# (from another address: this one spent its 10 registrations a minute)
$r = register('Plausible-H', path => '/outer/users/register/',
    username => 'inner', from => '127.0.0.2');
is_deeply($r->{json}, { password => [
    'This password is too short. It must contain at least 12 characters.'] },
    'oauth2_password_policy min_length=12 of the outer location: 400 inside');
ok(!grep({ $_->{username} eq 'inner' } @{$t->admin_json('user', 'list')}),
    'the refused registration made no user');
# each word turns off its own check only (from a third address)
$r = register('Quentin_Tarantino9', username => 'quentin_tarantino',
    path => '/users/register-relaxed/', from => '127.0.0.3');
is($r->{status}, 201,
    'similarity=off: a password like the username passes') or diag($r->{raw});
$r = register('12345678', path => '/users/register-common-off/',
    from => '127.0.0.3');
is_deeply($r->{json}, { password => [$NUMERIC] },
    'common=off: "12345678" is still entirely numeric, no longer too common');
$r = register('12345678', path => '/users/register-numeric-off/',
    from => '127.0.0.3');
is_deeply($r->{json}, { password => [$COMMON] },
    'numeric=off: "12345678" is still too common, no longer entirely numeric');

###################################################### the users API

$r = $t->api('POST', '/api/users/', token => $admin, json => {
    username => 'apiuser', password => '1234', email => 'api@example.com' });
is($r->{status}, 400, 'POST /api/users/ with "1234": 400');
is_deeply($r->{json}, { password => [$SHORT, $COMMON, $NUMERIC] },
    'the API answers the same DRF field errors');
$r = $t->api('POST', '/api/users/', token => $admin, json => {
    username => 'apiuser', password => 'Guarded-Lantern-81',
    email => 'api@example.com' });
is($r->{status}, 201, 'a strong one: 201');
my $uid = $r->{json}{id};
$r = $t->api('PATCH', "/api/users/$uid/", token => $admin,
    json => { password => 'apiuser1' });
is($r->{status}, 400, 'PATCH with a weak password: 400');
like(join(' ', @{$r->{json}{password} // []}), qr/too similar to the username/,
    'the similarity check uses the user\'s current username');

########################################################### the CLI

my ($code, $out, $err) = $t->admin('user', 'add', '--username', 'cli',
    '--email', 'cli@example.com', '--password', 'qwerty');
is($code, 2, 'user add with "qwerty": exit 2, nothing written');
like($err, qr/too short.*too common/s, 'the CLI says why');
($code) = $t->admin('user', 'add', '--username', 'cli', '--email',
    'cli@example.com', '--password', 'qwerty', '--pbkdf2-iterations', 1000,
    '--password-policy', 'off');
is($code, 0, '--password-policy off: exit 0');
($code, $out, $err) = $t->admin('user', 'set-password', 'cli',
    '--password', '11111111');
is($code, 1, 'set-password with "11111111": exit 1');
like($err, qr/entirely numeric/, 'the CLI says why');
($code, $out, $err) = $t->admin('user', 'add', '--username', 'cli2',
    '--email', 'cli2@example.com', '--password', 'Whatever-Long-1',
    '--password-policy', 'min_length=abc');
is($code, 2, 'a malformed --password-policy: exit 2');

######################################################## nginx -t

$t->write_config($t->default_http(extra_http =>
    'oauth2_password_policy min_length=8 colour=blue;'));
($code, $out) = $t->nginx_t;
isnt($code, 0, 'oauth2_password_policy with an unknown word: nginx -t fails');
like($out, qr/invalid password policy "colour=blue"/,
    'nginx -t names the word');

$t->done_testing;
