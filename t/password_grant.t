# grant_type=password (seed 001; issue 4 items 4 and 6; docs/security.md R17,
# R25, R39, R70; RFC 6749 4.3)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
# at first no application of the server may use the password grant
my $cc = $t->new_app(name => 'machine');
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off; '
        . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';',
    extra_server => grant_locations(extra => <<'EOF')));
    location = /o/token-limited/ {
        oauth2_token;
        oauth2_client_auth_limit 3 2s;
    }
EOF
$t->run;

my $secret = 'p&s=+% w/x';
add_user($t, 'alice', $secret, email => 'alice@example.com');

######################################################### R25 error codes

my $r = password_token($t, $cc, 'alice', $secret);
$t->oauth_error_ok($r, 400, 'unsupported_grant_type',
    'password grant while no application may use it (R25)');

my $app = $t->new_app(name => 'seed-001', grant => ['password', 'refresh_token'],
    scope => 'read write admin');
my $pub = $t->new_app(name => 'public-pw', public => 1,
    grant => ['password', 'refresh_token']);
my $lim = $t->new_app(name => 'limited', grant => ['password', 'refresh_token']);
$r = password_token($t, $cc, 'alice', $secret);
$t->oauth_error_ok($r, 400, 'unauthorized_client',
    'a client not registered for password, once another one is (R25)');
ok(!defined $r->{json}{access_token}, 'unauthorized_client: no token');

############################################################# seed 001 login

# seed 001: the client's id and secret in the form body
$r = password_token($t, $app, 'alice', $secret, auth => 'post');
is($r->{status}, 200, 'seed 001 password grant, client_secret_post: 200');
$t->no_store_ok($r, 'password grant 200');
my $j = $r->{json};
like($j->{access_token} // '', qr/^[A-Za-z0-9_-]{43,}$/,
    'password grant: an access token of 256 bits or more');
like($j->{refresh_token} // '', qr/^[A-Za-z0-9_-]{43,}$/,
    'password grant: a refresh token');
is($j->{token_type}, 'Bearer', 'password grant: token_type Bearer');
is($j->{expires_in}, 36000, 'password grant: expires_in 36000 (the default)');
is($j->{scope}, 'read write admin',
    'password grant without scope: the app\'s allowed scope');
isnt($j->{access_token}, $j->{refresh_token},
    'the access and refresh tokens differ');

$r = $t->bearer_get('/me/', $j->{access_token});
is($r->{status}, 200, 'the user\'s token opens a protected location');
is(OAuth2Test::header($r, 'X-User'), 'alice',
    '$oauth2_user is the username (issue 4 item 6)');
is(OAuth2Test::header($r, 'X-Client'), $app->{client_id},
    '$oauth2_client_id is the application');
$r = $t->bearer_get('/me/', $t->access_token($cc));
is($r->{status}, 200, 'a client_credentials token opens it too');
ok(!defined OAuth2Test::header($r, 'X-User'),
    'a client_credentials token: $oauth2_user is empty');

$r = password_token($t, $app, 'alice', $secret);
is($r->{status}, 200, 'password grant with Basic client auth: 200');
isnt($r->{json}{access_token}, $j->{access_token},
    'each login gets a new access token');

$r = password_token($t, $app, 'alice', $secret, scope => 'read');
is($r->{status}, 200, 'scope=read: 200');
is($r->{json}{scope}, 'read', 'scope=read: scope read');
is($t->bearer_get('/scoped/', $r->{json}{access_token})->{status}, 403,
    'scope read: 403 where admin is needed');
$r = password_token($t, $app, 'alice', $secret, scope => 'read superuser');
$t->oauth_error_ok($r, 400, 'invalid_scope',
    'a scope the app may not have (2.1 scope)');

# a public client registered for password: client_id only
$r = password_token($t, $pub, 'alice', $secret);
is($r->{status}, 200, 'public client with client_id only: 200');
$r = password_token($t, $pub, 'alice', $secret, auth => 'none');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'no client_id at all (R18)');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => $secret,
    client_id => $pub->{client_id}, client_secret => 'made-up'));
$t->oauth_error_ok($r, 401, 'invalid_client',
    'a secret for a public client (2.1 auth conflicts)');

########################################################### bad credentials

my $wrong = password_token($t, $app, 'alice', 'not-the-password');
$t->oauth_error_ok($wrong, 400, 'invalid_grant', 'wrong password');
my $unknown = password_token($t, $app, 'nobody', 'whatever');
$t->oauth_error_ok($unknown, 400, 'invalid_grant', 'unknown user');
is($unknown->{body}, $wrong->{body},
    'unknown user and wrong password: the same body (no user enumeration)');
$r = password_token($t, $app, 'ALICE', $secret);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'the username in another case: invalid_grant (usernames are exact)');
$r = password_token($t, $app, 'alice', "$secret\0");
$t->oauth_error_ok($r, 400, 'invalid_request',
    'a NUL after the password (R7): never truncated');
$r = password_token($t, $app, 'alice', 'x' x 5000);
$t->oauth_error_ok($r, 400, 'invalid_grant', 'a 5000-byte password');

$r = $t->post_form('/o/token/', 'grant_type=password&username=alice',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'no password');
$r = $t->post_form('/o/token/', 'grant_type=password&username=alice&password=',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'empty password (R5)');
$r = $t->post_form('/o/token/', 'grant_type=password&password=x',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'no username');
$r = $t->post_form('/o/token/',
    'grant_type=password&username=alice&username=bob&password=x',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'username twice (R4)');
$r = $t->post_form('/o/token/', 'grant_type=password&username=alice&password='
    . OAuth2Test::form_encode($secret) . '&password=x',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'password twice (R4)');
$r = $t->post_form('/o/token/?password=x', OAuth2Test::form(
    grant_type => 'password', username => 'alice', password => $secret),
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'a query string (R3)');

# the client must authenticate before the password is looked at
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => $secret),
    Authorization => $t->basic($app->{client_id}, 'wrong'));
$t->oauth_error_ok($r, 401, 'invalid_client',
    'right password, wrong client secret (R15)');
$r = password_token($t, $app, 'alice', $secret, auth => 'id');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'confidential client without its secret (R18)');

############################################# inactive, deleted, new password

add_user($t, 'ivan', 'Lantern-quiet-58', inactive => 1);
$r = password_token($t, $app, 'ivan', 'Lantern-quiet-58');
$t->oauth_error_ok($r, 400, 'invalid_grant', 'inactive user, right password');
is($r->{body}, $wrong->{body},
    'inactive user: the same body as a wrong password');

add_user($t, 'bob', 'Saffron-dune-47');
my $bob = password_token($t, $app, 'bob', 'Saffron-dune-47')->{json};
is($t->bearer_get('/me/', $bob->{access_token})->{status}, 200,
    'bob\'s token: 200');
my ($code, $out, $err) = $t->admin('user', 'set', 'bob', '--active', 'false');
is($code, 0, 'disable bob: exit 0') or diag($err);
is($t->bearer_get('/me/', $bob->{access_token})->{status}, 401,
    'a disabled user\'s token: 401 at once (R70)');
$r = password_token($t, $app, 'bob', 'Saffron-dune-47');
$t->oauth_error_ok($r, 400, 'invalid_grant', 'a disabled user logs in');

add_user($t, 'dave', 'Copper-vale-83');
my $dave = password_token($t, $app, 'dave', 'Copper-vale-83')->{json};
($code, $out, $err) = $t->admin('user', 'set-password', 'dave',
    '--password', 'Copper-vale-84', '--pbkdf2-iterations', PBKDF2);
is($code, 0, 'new password for dave: exit 0') or diag($err);
$r = password_token($t, $app, 'dave', 'Copper-vale-83');
$t->oauth_error_ok($r, 400, 'invalid_grant', 'the old password (R39)');
$r = password_token($t, $app, 'dave', 'Copper-vale-84');
is($r->{status}, 200, 'the new password: 200');
is($t->bearer_get('/me/', $dave->{access_token})->{status}, 401,
    'a token from before the password change: 401 (R39)');

add_user($t, 'carol', 'Marble-finch-26');
($code, $out, $err) = $t->admin('user', 'delete', 'carol');
is($code, 0, 'delete carol: exit 0') or diag($err);
$r = password_token($t, $app, 'carol', 'Marble-finch-26');
$t->oauth_error_ok($r, 400, 'invalid_grant', 'a deleted user logs in');

# HTTP hygiene on the grant (R1, R2)
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => $secret),
    'Content-Type' => 'application/json',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'JSON Content-Type (R2)');

########################################################### throttling (R17)

my $L = '/o/token-limited/';
sub throttled_ok {
    my ($r, $name) = @_;
    $t->oauth_error_ok($r, 429, 'temporarily_unavailable', "$name (R17)");
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[12]$/,
        "$name: Retry-After 1 or 2 seconds (window 2 s)");
}

# per username and address: n = 3 failed passwords, then even the right
# one waits there
for my $i (1 .. 3) {
    $r = password_token($t, $lim, 'alice', "guess$i", path => $L);
    is($r->{status}, 400, "wrong password #$i for alice: 400");
}
throttled_ok(password_token($t, $lim, 'alice', $secret, path => $L),
    'alice after 3 failures, right password: 429');
throttled_ok(password_token($t, $app, 'alice', $secret, path => $L),
    'alice through another client: 429 (the count is per username and '
    . 'address)');
$r = password_token($t, $lim, 'alice', $secret, path => $L,
    from => '127.0.0.2');
is($r->{status}, 200, 'alice from another address: 200 (the account is '
    . 'not locked for every address)');
add_user($t, 'erin', 'Tr0ub4dor-and-3');
$r = password_token($t, $lim, 'erin', 'Tr0ub4dor-and-3', path => $L);
is($r->{status}, 200, 'another user from the same address: 200');
$r = password_token($t, $app, 'alice', $secret);
is($r->{status}, 200,
    'alice at a location without oauth2_client_auth_limit: 200');
sleep 2.2;
$r = password_token($t, $lim, 'alice', $secret, path => $L);
is($r->{status}, 200, 'after the 2 s window alice logs in again (R17)');

# per address: 3n = 9 failed client authentications
sleep 2.2;
for my $i (1 .. 9) {
    $r = $t->post_form($L, OAuth2Test::form(grant_type => 'password',
        username => 'erin', password => 'Tr0ub4dor-and-3'),
        Authorization => $t->basic("unknown-$i", 'x'));
    is($r->{status}, 401, "unknown client #$i: 401");
}
throttled_ok(password_token($t, $lim, 'erin', 'Tr0ub4dor-and-3', path => $L),
    'password grant after 9 client failures from the address: 429');
sleep 2.2;
$r = password_token($t, $lim, 'erin', 'Tr0ub4dor-and-3', path => $L);
is($r->{status}, 200, 'after the window the address may log in again');

# per address: 3n = 9 failed passwords over 9 usernames (spraying)
for my $i (1 .. 9) {
    $r = password_token($t, $lim, "user$i", 'Summer2024!', path => $L);
    is($r->{status}, 400, "password spray, user #$i: 400");
}
$r = password_token($t, $lim, 'erin', 'Tr0ub4dor-and-3', path => $L);
{
        is($r->{status}, 429,
        'the 10th login after 9 failed passwords from one address: 429 '
        . '(issue 4: login throttled per address)');
}

################################ R89, R17: the account lock by default

# no oauth2_account_limit (and the address throttle off): 100 wrong
# passwords an hour, from anywhere, lock the account for new addresses
add_user($t, 'frank', 'Granite-owl-lamp-71');
my @st = map { password_token($t, $app, 'frank', "guess$_")->{status} }
    1 .. 99;
is(join(',', @st), join(',', (400) x 99),
    '99 wrong passwords for frank: 400 each');
$r = password_token($t, $app, 'frank', 'Granite-owl-lamp-71',
    from => '127.0.0.60');
is($r->{status}, 200,
    'after 99 failures frank signs in from a new address: 200 (below 100)');
is(password_token($t, $app, 'frank', 'guess100')->{status}, 400,
    'the 100th wrong password: 400');
$r = password_token($t, $app, 'frank', 'Granite-owl-lamp-71',
    from => '127.0.0.61');
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'after 100 wrong passwords, frank from a new address: the default '
    . 'oauth2_account_limit locks (R89, R17)');
my $wait = OAuth2Test::header($r, 'Retry-After') // 0;
ok($wait > 3000 && $wait <= 3600,
    "the default account lock lasts the hour's window (Retry-After $wait)");

$t->done_testing;
