# Scope binds the admin API (docs/security.md R85, R46, R69; RFC 6749 3.3, RFC
# 6750 3.1): a user's token from a third-party application does at the
# daemon only what its scope allows, within the user's own rights:
# reading needs "read", changes "write", staff-only operations "admin";
# "admin" is granted only to applications registered with it; a
# first-party application's tokens act with the user's full rights; one's
# own password changes only with the current one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my %PW = (root => 'Root-staff-passphrase-1', alice => 'Alice-plain-phrase-2');
my %id;
for my $u (qw(root alice)) {
    my $j = $t->admin_json('user', 'add', '--username', $u, '--email',
        "$u\@example.com", '--password', $PW{$u}, '--pbkdf2-iterations',
        1000, $u eq 'root' ? ('--staff') : ());
    $id{$u} = $j->{id};
}
sub pw_app {
    my (%o) = @_;
    return $t->admin_json('app', 'add', '--name', $o{name}, '--grant',
        'password', '--grant', 'refresh_token',
        defined $o{scope} ? ('--scope', $o{scope}) : (),
        $o{first_party} ? ('--first-party') : ());
}
my $read = pw_app(name => 'third-read', scope => 'read');
my $rw = pw_app(name => 'third-rw', scope => 'read write');
my $adm = pw_app(name => 'third-admin', scope => 'read write admin');
my $write = pw_app(name => 'third-write', scope => 'write');
my $dflt = pw_app(name => 'third-default');
my $first = pw_app(name => 'first', first_party => 1);
my $machine = $t->admin_json('app', 'add', '--name', 'machine', '--grant',
    'client_credentials', '--scope', 'admin');
my $worker = $t->admin_json('app', 'add', '--name', 'worker', '--grant',
    'client_credentials', '--scope', 'read write');
is($first->{first_party}, JSON::PP::true,
    'app add --first-party: "first_party": true');
is($read->{first_party}, JSON::PP::false, 'an application is third-party by '
    . 'default: "first_party": false');

$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 1000;\n"
        . "oauth2_default_scope read write admin;\n",
    extra_server => $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000);

sub token_of {
    my ($app, $user, %o) = @_;
    my $r = $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => $user, password => $PW{$user},
        defined $o{scope} ? (scope => $o{scope}) : ()),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
    return $o{response} ? $r : $r->{json}{access_token};
}
sub api { $t->api(@_) }

##################################### the attack of the issue, refused now

my $root_read = token_of($read, 'root');
my $r = api('POST', '/api/users/', token => $root_read, json => {
    username => 'mallory', password => 'Mallory-new-staff-3',
    email => 'm@example.com', is_staff => JSON::PP::true });
is($r->{status}, 403,
    'a staff user\'s "read" token of a third-party app cannot create a '
    . 'staff user: 403 (R85)');
$r = api('POST', '/api/applications/', token => $root_read, json => {
    name => 'evil', client_type => 'confidential',
    grant_types => ['client_credentials'], scope => 'admin read write' });
is($r->{status}, 403, 'nor register an application: 403 (R85)');
ok(!defined $r->{json}{client_secret}, 'and no secret comes back');
is(api('GET', '/api/users/', token => $root_read)->{status}, 403,
    'nor list the users: 403 (R85)');
is(api('GET', '/auth/me/', token => $root_read)->{status}, 200,
    '"read" lets it read the user itself: /auth/me/ 200');
is(api('GET', "/api/users/$id{root}/", token => $root_read)->{status}, 200,
    '"read": GET of the user itself 200');
$r = api('PATCH', "/api/users/$id{root}/", token => $root_read,
    json => { first_name => 'Changed' });
is($r->{status}, 403, '"read" cannot change the user itself: 403 (R85)');
is($t->admin_json('user', 'show', 'root')->{first_name}, '',
    'the refused change changed nothing');

my $alice_read = token_of($read, 'alice');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_read,
    json => { password => 'Takeover-phrase-44', email => 'evil@example.com' });
is($r->{status}, 403,
    'a plain user\'s "read" token cannot change her password or email: 403');
is($t->admin_json('user', 'show', 'alice')->{email}, 'alice@example.com',
    'her email is unchanged');
is(token_of($read, 'alice', response => 1)->{status}, 200,
    'and she still signs in with her password');

# "write" without "read": it reads nothing, not even the user itself
my $alice_write = token_of($write, 'alice');
ok($alice_write, 'a "write" token of a third-party app');
$r = api('GET', '/auth/me/', token => $alice_write);
is($r->{status}, 403, '"write" without "read": /auth/me/ 403 (R85)');
unlike($r->{body}, qr/alice\@example\.com/, 'and no email comes back');
is(api('GET', "/api/users/$id{alice}/", token => $alice_write)->{status},
    403, '"write" without "read": GET of the user itself 403 (R85)');
# nor through the answer to a change: the change is made, the record not
# shown (R85)
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_write,
    json => { last_name => 'Written' });
is($r->{status}, 204, '"write" without "read": PATCH of the user itself 204');
is($r->{body}, '', '... with no body');
unlike($r->{raw}, qr/alice\@example\.com/, '... and no email comes back');
is($t->admin_json('user', 'show', 'alice')->{last_name}, 'Written',
    '... the change is made');
$r = api('PUT', "/api/users/$id{alice}/", token => $alice_write,
    json => { username => 'alice', email => 'alice@example.com', last_name => 'Put' });
is($r->{status}, 204, '"write" without "read": PUT of the user itself 204');
is($r->{body}, '', '... with no body either');
is($t->admin_json('user', 'show', 'alice')->{last_name}, 'Put', '... the change is made');
my $before = $t->admin_json('user', 'show', 'alice');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_write, json => {});
is($r->{status}, 204, 'an empty PATCH by "write" without "read": 204');
is($r->{body}, '', '... reads nothing');
is_deeply($t->admin_json('user', 'show', 'alice'), $before, '... and changes nothing');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_write, body => '');
is($r->{status}, 400, 'a PATCH without a body: 400');
unlike($r->{raw}, qr/alice\@example\.com/, '... reads nothing');
is_deeply($t->admin_json('user', 'show', 'alice'), $before, '... and changes nothing');

# nor through the password policy: "too similar to the email address"
# would tell a caller that reads nothing the email it guessed; it comes
# only once the current password is right (R85)
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_write,
    json => { password => 'alice@example.com', current_password => 'not-her-password' });
is($r->{status}, 400, '"write" without "read": a new password like her email '
    . 'and a wrong current_password: 400');
is_deeply([sort keys %{ ref $r->{json} eq 'HASH' ? $r->{json} : {} }],
    ['current_password'], '... on current_password alone: no word of the '
    . 'policy, which would confirm the email (R85)') or diag($r->{body});
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_write,
    json => { password => 'alice@example.com', current_password => $PW{alice} });
is($r->{status}, 400, '... with her current password: 400');
like(join(' ', @{ $r->{json}{password} // [] }), qr/similar/,
    '... the policy says why, to the one who knows the password');
is(token_of($read, 'alice', response => 1)->{status}, 200,
    '... and her password is unchanged');

############################## "write": changes, with the current password

my $alice_rw = token_of($rw, 'alice');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_rw,
    json => { first_name => 'Alice' });
is($r->{status}, 200, '"write": she changes her own name: 200');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_rw,
    json => { password => 'New-alice-phrase-55' });
is($r->{status}, 400, 'a new password without current_password: 400');
is_deeply($r->{json}, { current_password => ['This field is required.'] },
    'DRF field error: current_password is required');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_rw,
    json => { password => 'New-alice-phrase-55',
        current_password => 'not-her-password' });
is($r->{status}, 400, 'a wrong current_password: 400');
is_deeply($r->{json}, { current_password => [
    'Your old password was entered incorrectly. Please enter it again.'] },
    'DRF field error: the old password was entered incorrectly');
is(token_of($read, 'alice', response => 1)->{status}, 200,
    'her password did not change');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_rw,
    json => { password => '123', current_password => $PW{alice} });
is($r->{status}, 400, 'the new password still meets the policy: 400');
$r = api('PATCH', "/api/users/$id{alice}/", token => $alice_rw,
    json => { password => 'New-alice-phrase-55',
        current_password => $PW{alice} });
is($r->{status}, 200, 'with the right current_password: 200');
is(api('GET', '/auth/me/', token => $alice_rw)->{status}, 401,
    'the new password ended her tokens (R39)');
$PW{alice} = 'New-alice-phrase-55';
is(token_of($read, 'alice', response => 1)->{status}, 200,
    'she signs in with the new password');

################################### "admin": staff operations, from staff

my $root_rw = token_of($rw, 'root');
$r = api('PATCH', "/api/users/$id{alice}/", token => $root_rw,
    json => { password => 'Reset-by-staff-66' });
is($r->{status}, 403, 'staff resetting another user\'s password with a '
    . '"read write" token: 403, it needs "admin" (R85)');
is(api('GET', '/api/users/', token => $root_rw)->{status}, 403,
    'a "read write" token of staff cannot list users: 403');
my $root_adm = token_of($adm, 'root', scope => 'read write admin');
ok($root_adm, 'an app registered with "admin" gets it for a staff user');
$r = api('PATCH', "/api/users/$id{alice}/", token => $root_adm,
    json => { password => 'Reset-by-staff-66' });
is($r->{status}, 200, 'with "admin" staff resets another user\'s password '
    . 'without hers: 200');
$PW{alice} = 'Reset-by-staff-66';
is(api('GET', '/api/users/', token => $root_adm)->{status}, 200,
    '"admin" from staff lists the users: 200');
$r = api('POST', '/api/applications/', token => $root_adm, json => {
    name => 'made-by-staff', client_type => 'confidential',
    grant_types => ['client_credentials'], first_party => JSON::PP::true });
is($r->{status}, 201, '"admin" from staff registers an application: 201');
is($r->{json}{first_party}, JSON::PP::true,
    'the applications API takes "first_party"');
my $alice_adm = token_of($adm, 'alice', scope => 'read write admin');
is(api('GET', '/api/users/', token => $alice_adm)->{status}, 403,
    '"admin" does not make a plain user staff: 403');

##################### "admin" is granted only to apps registered with it

$r = token_of($rw, 'root', scope => 'read write admin', response => 1);
$t->oauth_error_ok($r, 400, 'invalid_scope',
    'asking "admin" of an app registered without it');
$r = token_of($dflt, 'root', response => 1);
is($r->{json}{scope}, 'read write',
    'an app on the server\'s default scope (which lists admin) gets it '
    . 'without "admin"');
$r = token_of($dflt, 'root', scope => 'admin', response => 1);
$t->oauth_error_ok($r, 400, 'invalid_scope',
    'and asking it "admin" is invalid_scope (R85)');

############################## first-party: the user's full rights

my $root_first = token_of($first, 'root', scope => 'read');
is(api('GET', '/api/users/', token => $root_first)->{status}, 200,
    'a first-party app\'s "read" token of staff lists users: 200');
$r = api('POST', '/api/applications/', token => $root_first, json => {
    name => 'by-first-party', client_type => 'confidential',
    grant_types => ['client_credentials'] });
is($r->{status}, 201, 'and registers an application: 201');
my $alice_first = token_of($first, 'alice', scope => 'read');
is(api('GET', '/api/users/', token => $alice_first)->{status}, 403,
    'a first-party token of a plain user is still not staff: 403');

# an application's own token holding "admin" acts as staff, as before
my $cc = $t->access_token($machine, scope => 'admin');
is(api('GET', '/api/users/', token => $cc)->{status}, 200,
    'a client_credentials token with "admin": staff, 200');
# R85: without "admin" an application's own token is not staff
my $wt = $t->access_token($worker, scope => 'read write');
ok($wt, 'a client_credentials token with "read write"');
is(api('GET', '/api/users/', token => $wt)->{status}, 403,
    'a client_credentials token without "admin": not staff, 403 (R85)');

############################## "admin" taken from an application (R85)

# "admin" is granted only to an application registered with it, and is
# its own only while it is: once staff take it away, the refresh tokens
# of its grants mint no more of it, and the tokens it already has act as
# staff no more (a compromised integration is ended by narrowing it)
$r = token_of($adm, 'root', scope => 'read write admin', response => 1);
is($r->{status}, 200, 'root signs in through third-admin with "admin"');
my ($adm_at, $adm_rt) = @{$r->{json}}{qw(access_token refresh_token)};
is(api('GET', '/api/users/', token => $adm_at)->{status}, 200,
    '... a token that acts as staff: 200');
$r = api('PATCH', "/api/applications/$adm->{client_id}/", token => $root_first,
    json => { scope => 'read write' });
is($r->{status}, 200, 'staff take "admin" from third-admin: 200');
is(api('GET', '/api/users/', token => $adm_at)->{status}, 403,
    'the token it had acts as staff no more: 403');
sub refresh_of {
    my ($app, $rt, %o) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
        refresh_token => $rt, defined $o{scope} ? (scope => $o{scope}) : ()),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
}
$r = refresh_of($adm, $adm_rt, scope => 'read write admin');
is($r->{status}, 400, 'its refresh token asked for "admin" again: 400');
is($r->{json}{error}, 'invalid_scope', '... invalid_scope');
$r = refresh_of($adm, $adm_rt);
is($r->{status}, 200, 'its refresh token, no scope asked: 200');
is($r->{json}{scope}, 'read write', '... narrowed to what the application may have');
is(api('GET', '/api/users/', token => $r->{json}{access_token})->{status}, 403,
    '... and the new token is not staff: 403');
$r = refresh_of($adm, $r->{json}{refresh_token}, scope => 'read');
is($r->{status}, 200, 'a narrower scope still refreshes: 200');
is($r->{json}{scope}, 'read', '... "read"');
# the application's own token, once its admin is taken away
$r = api('PATCH', "/api/applications/$machine->{client_id}/", token => $root_first,
    json => { scope => 'read' });
is($r->{status}, 200, 'staff take "admin" from machine: 200');
is(api('GET', '/api/users/', token => $cc)->{status}, 403,
    'its client_credentials token with "admin" is not staff any more: 403');

$t->done_testing;
