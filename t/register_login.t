# seed 001: oauth2_register (username, password, confirm_password,
# is_active, email) and oauth2_login (email or username + password -> the
# token response of the configured application); issue 4 item 4,
# docs/security.md R17, R9
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'dj_auth', grant => ['password', 'refresh_token'],
    scope => 'read write');
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off; '
        . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';',
    extra_server => grant_locations(login => $app->{client_id},
        extra => <<"EOF")));
    # this test registers more than oauth2_register's default limit (10/m
    # and 100/h per address) from one address
    location = /users/register/ { oauth2_register; oauth2_rate_limit off; }
    location = /users/login-limited/ {
        oauth2_login $app->{client_id};
        oauth2_client_auth_limit 3 2s;
    }
EOF
$t->run;

sub register { $t->post_form('/users/register/', OAuth2Test::form(@_)) }
sub login { $t->post_form('/users/login/', OAuth2Test::form(@_)) }

# a DRF field error: 400, {"<field>": ["<message>"]}, nothing else
sub field_error_ok {
    my ($r, $field, $name) = @_;
    is($r->{status}, 400, "$name: 400");
    my $j = $r->{json};
    ok(ref $j eq 'HASH' && ref $j->{$field} eq 'ARRAY'
        && @{$j->{$field}} == 1 && !ref $j->{$field}[0]
        && length $j->{$field}[0],
        "$name: {\"$field\": [\"<message>\"]}")
        or diag($r->{raw});
    is(join(',', sort keys %{ref $j eq 'HASH' ? $j : {}}), $field,
        "$name: only the field $field");
    $t->no_store_ok($r, $name);
}

my $pw = 'S3cret pass+&=%word';

######################################################## seed 001 verbatim

# Step 8: POST /users/register/, form-encoded, username, password,
# confirm_password, is_active (email optional; given so that the seed's
# email login can follow)
my $r = $t->request('POST', '/users/register/', headers => [
    'Content-type' => 'application/x-www-form-urlencoded'],
    body => 'username=alice&password=' . OAuth2Test::form_encode($pw)
    . '&confirm_password=' . OAuth2Test::form_encode($pw)
    . '&is_active=true&email=alice%40example.com');
is($r->{status}, 201, 'seed 001 register: 201');
$t->no_store_ok($r, 'register 201');
my $u = $r->{json} // {};
is(join(',', sort keys %$u), 'email,id,is_active,username',
    'register: id, username, email, is_active and nothing else');
like($u->{id} // '', qr/^[1-9]\d*$/, 'register: a numeric id');
is($u->{username}, 'alice', 'register: the username');
is($u->{email}, 'alice@example.com', 'register: the email');
ok($u->{is_active} && $u->{is_active} == JSON::PP::true,
    'register: is_active true (a JSON boolean)');
unlike($r->{body}, qr/\Q$pw\E|pbkdf2/, 'register: no password in the answer');

# Login: POST /users/login/, email and password
$r = $t->request('POST', '/users/login/', headers => [
    'Content-type' => 'application/x-www-form-urlencoded'],
    body => 'email=alice%40example.com&password='
    . OAuth2Test::form_encode($pw));
is($r->{status}, 200, 'seed 001 login with email and password: 200');
$t->no_store_ok($r, 'login 200');
my $j = $r->{json} // {};
ok($j->{access_token} && $j->{refresh_token},
    'login: an access token and a refresh token');
is($j->{token_type}, 'Bearer', 'login: token_type Bearer');
is($j->{scope}, 'read write', 'login: the app\'s scope');
ok($j->{expires_in} > 0, 'login: expires_in');
$r = $t->bearer_get('/me/', $j->{access_token});
is($r->{status}, 200, 'the login\'s access token opens a protected location');
is(OAuth2Test::header($r, 'X-User'), 'alice', 'login token: $oauth2_user alice');
is(OAuth2Test::header($r, 'X-Client'), $app->{client_id},
    'login token: the application of oauth2_login');
is(refresh($t, $app, $j->{refresh_token})->{status}, 200,
    'the login\'s refresh token refreshes with the app\'s credentials');

$r = login(username => 'alice', password => $pw);
is($r->{status}, 200, 'login with username and password: 200');
$r = login(email => 'ALICE@Example.COM', password => $pw);
is($r->{status}, 200, 'login with the email in another case: 200');
# a scope asked at login narrows the token, as the password grant's does
$r = login(username => 'alice', password => $pw, scope => 'read');
is($r->{status}, 200, 'login with scope=read: 200');
is(($r->{json} // {})->{scope}, 'read', 'login with scope=read: the token has read');
$t->oauth_error_ok(login(username => 'alice', password => $pw,
    scope => 'read admin'), 400, 'invalid_scope',
    'login with a scope the application does not hold');

# a changed email signs in, the old one no longer does
$r = register(username => 'mover', password => 'Quartz-lantern-91',
    confirm_password => 'Quartz-lantern-91', email => 'old@example.com');
is($r->{status}, 201, 'register mover: 201');
is(login(email => 'old@example.com', password => 'Quartz-lantern-91')
    ->{status}, 200, 'mover signs in by old@example.com');
my ($mc, $mo, $me) = $t->admin(qw(user set mover --email new@example.com));
is($mc, 0, 'user set mover --email new@example.com: exit 0') or diag($me);
is(login(email => 'new@example.com', password => 'Quartz-lantern-91')
    ->{status}, 200, 'the new email signs in');
is(login(email => 'old@example.com', password => 'Quartz-lantern-91')
    ->{status}, 400, 'the old email no longer does: 400');

# the registered user can use the password grant
$r = password_token($t, $app, 'alice', $pw, auth => 'post');
is($r->{status}, 200, 'the registered user: password grant 200');
is(OAuth2Test::header($t->bearer_get('/me/', $r->{json}{access_token}),
    'X-User'), 'alice', 'password grant token of the registered user: alice');

# the seed's body exactly, without email
$r = register(username => 'seeduser', password => 'Tr0ub4dor-and-3',
    confirm_password => 'Tr0ub4dor-and-3', is_active => 'True');
is($r->{status}, 201, 'register without email: 201');
is($r->{json}{email}, '', 'register without email: email ""');
isnt($r->{json}{id}, $u->{id}, 'a second user: another id');
is(login(username => 'seeduser', password => 'Tr0ub4dor-and-3')->{status},
    200, 'the user registered without email logs in by username');

########################################################### register errors

my $dup = register(username => 'alice', password => 'Marble-finch-26',
    confirm_password => 'Marble-finch-26', is_active => 'true');
field_error_ok($dup, 'username', 'duplicate username');
like($dup->{json}{username}[0] // '', qr/already exists/,
    'duplicate username: "already exists"');
is(login(username => 'alice', password => $pw)->{status}, 200,
    'duplicate registration: the first alice keeps her password');
is(login(username => 'alice', password => 'Marble-finch-26')->{status}, 400,
    'duplicate registration: its password does not log in');

$r = register(username => 'bob', password => 'Lantern-quiet-58',
    confirm_password => 'Lantern-quiet-59', is_active => 'true');
field_error_ok($r, 'confirm_password', 'password and confirm_password differ');
is(login(username => 'bob', password => 'Lantern-quiet-58')->{status}, 400,
    'mismatched registration: no user was created');
$r = register(username => 'bob', password => 'Lantern-quiet-58',
    is_active => 'true');
field_error_ok($r, 'confirm_password', 'no confirm_password');
$r = register(username => 'bob', confirm_password => 'Lantern-quiet-58',
    is_active => 'true');
field_error_ok($r, 'password', 'no password');
$r = register(username => 'bob', password => '', confirm_password => '',
    is_active => 'true');
is($r->{status}, 400, 'empty password and confirm_password: 400');
is_deeply($r->{json}, { password => ['This field may not be blank.'],
    confirm_password => ['Passwords do not match.'] },
    'empty password and confirm_password: both fields\' errors at once')
    or diag($r->{raw});
$r = register(password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47');
field_error_ok($r, 'username', 'no username');
my $BAD_NAME = 'Enter a valid username. This value may contain only '
    . 'letters, numbers, and @/./+/-/_ characters.';
for my $c (['bad name', 'a space'], ['a/b', 'a slash'],
    ['a<script>', 'markup'],
    ["\xef\xac\x81t\xc3\xa9", 'the ligature U+FB01 (Django would store '
        . 'NFKC "fit\xc3\xa9"; refused here, not normalized)'])
{
    my $r = register(username => $c->[0], password => 'Saffron-dune-47',
        confirm_password => 'Saffron-dune-47');
    field_error_ok($r, 'username', "username with $c->[1]");
    is(ref $r->{json} eq 'HASH' && $r->{json}{username}[0], $BAD_NAME,
        "username with $c->[1]: Django's message");
}
# DRF's max_length (code points, not bytes) before the validator
for my $c (['x' x 151, '151 characters'],
    ["\xc3\xa9" x 151, '151 UTF-8 letters (code points, not bytes)'])
{
    my $r = register(username => $c->[0], password => 'Saffron-dune-47',
        confirm_password => 'Saffron-dune-47');
    field_error_ok($r, 'username', "username with $c->[1]");
    is(ref $r->{json} eq 'HASH' && $r->{json}{username}[0],
        'Ensure this field has no more than 150 characters.',
        "username with $c->[1]: DRF's max_length message");
}
# R88: the username is checked before the password, and before any hash
$r = register(username => 'bad name', password => '1',
    confirm_password => '2');
is_deeply($r->{json}, { username => [$BAD_NAME] },
    'a bad username with a bad password: only the username is refused');
$r = register(username => "\x{e9}t\x{e9}", password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47');
is($r->{status}, 400, 'a username that is not UTF-8: 400 (R7)');
is_deeply($r->{json}, { detail => 'The request body is not valid form '
    . 'encoding.' }, 'a username that is not UTF-8: DRF\'s {"detail"}')
    or diag($r->{raw});
$r = register(username => 'a.b+c-d_e@f', password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47');
is($r->{status}, 201, 'username of letters and @.+-_: 201');
# Django's validator is Unicode's (t/username_unicode.t has the rest)
$r = register(username => "\xc3\xa9t\xc3\xa9", password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47');
is($r->{status}, 201, 'username of UTF-8 letters ("\xc3\xa9t\xc3\xa9"): 201');
$r = register(username => 'mail1', password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47', email => 'not-an-email');
field_error_ok($r, 'email', 'an invalid email');
$r = register(username => 'mail2', password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47', email => 'a@b@example.com');
field_error_ok($r, 'email', 'an email with two "@"');
is(ref $r->{json} eq 'HASH' && $r->{json}{email}[0],
    'Enter a valid email address.',
    'an email with two "@": Django\'s message');
is(($t->admin('user', 'show', 'mail2'))[0], 1,
    'an email with two "@": no user mail2 was made');
# the users API's rule (Django's EmailValidator, ASCII only): an email
# with C1 controls (U+009B, CSI: "ESC [2J" clears a terminal, "ESC [31m"
# paints it red), which the form decoder lets through as valid UTF-8 and
# `oauth2-admin user list` would print to the operator's terminal, is
# refused as the API refuses it; and so is UTF-8 in the address
for my $c (['mail3', "a\xC2\x9B2J\xC2\x9B31mx\@x.io", 'C1 controls'],
    ['mail4', "\xC3\xA9t\xC3\xA9\@example.com", 'UTF-8 letters'])
{
    my ($name, $email, $what) = @$c;
    my $r = register(username => $name, password => 'Saffron-dune-47',
        confirm_password => 'Saffron-dune-47', email => $email);
    field_error_ok($r, 'email', "an email with $what");
    my $msg = ref $r->{json} eq 'HASH' ? $r->{json}{email} : undef;
    is(ref $msg eq 'ARRAY' ? $msg->[0] : $r->{body},
        'Enter a valid email address.',
        "an email with $what: the users API's message");
    is(($t->admin('user', 'show', $name))[0], 1,
        "an email with $what: no user $name was made");
}
# what Django takes, registration takes: + and ' in the user part, a
# domain of three labels
$r = register(username => 'mail5', password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47',
    email => "o'neil+tag\@mail.example.co");
is($r->{status}, 201, 'an email with \' and + and three labels: 201');
$r = register(username => 'flag1', password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47', is_active => 'maybe');
field_error_ok($r, 'is_active', 'is_active=maybe');
is($r->{json}{is_active}[0], 'Must be a valid boolean.',
    'is_active=maybe: DRF\'s message');
# DRF's BooleanField: its TRUE_VALUES and FALSE_VALUES, exactly
my $flag = 0;
for my $c ([1, qw(t T y Y yes Yes YES true True TRUE on On ON 1)],
    [0, qw(f F n N no No NO false False FALSE off Off OFF 0)])
{
    my ($want, @values) = @$c;
    for my $v (@values) {
        $flag++;
        my $r = register(username => "flag-v$flag", password => 'Saffron-dune-47',
            confirm_password => 'Saffron-dune-47', is_active => $v);
        is($r->{status}, 201, "is_active=$v: 201, as DRF's BooleanField")
            or diag($r->{raw});
        is(ref $r->{json} eq 'HASH' && $r->{json}{is_active} ? 1 : 0, $want,
            "is_active=$v: is_active " . ($want ? 'true' : 'false'));
    }
}
for my $v ('yES', 'tRUE', 'oN', '2', '1.0', 'true ', ' on', 'nO', 'null') {
    $flag++;
    my $r = register(username => "flag-v$flag", password => 'Saffron-dune-47',
        confirm_password => 'Saffron-dune-47', is_active => $v);
    field_error_ok($r, 'is_active', "is_active='$v' (none of DRF's values)");
}

# every field's errors at once, as a DRF serializer reports them
$r = register(username => 'bad name', confirm_password => 'x',
    email => 'not-an-email', is_active => 'maybe');
is($r->{status}, 400, 'four bad fields: 400');
is_deeply($r->{json}, { username => [$BAD_NAME],
    password => ['This field is required.'],
    email => ['Enter a valid email address.'],
    is_active => ['Must be a valid boolean.'] },
    'four bad fields: each one\'s error in one body') or diag($r->{raw});
$r = register(email => 'a@b@example.com');
is_deeply($r->{json}, { username => ['This field is required.'],
    password => ['This field is required.'],
    confirm_password => ['Passwords do not match.'],
    email => ['Enter a valid email address.'] },
    'an email alone: the three missing fields and the email in one body')
    or diag($r->{raw});

# is_active=false: the account exists and cannot log in
$r = register(username => 'sleeper', password => 'Copper-vale-83',
    confirm_password => 'Copper-vale-83', is_active => 'false',
    email => 's@example.com');
is($r->{status}, 201, 'is_active=false: 201');
ok(defined $r->{json}{is_active} && !$r->{json}{is_active},
    'is_active=false: is_active false');
$r = login(username => 'sleeper', password => 'Copper-vale-83');
$t->oauth_error_ok($r, 400, 'invalid_grant', 'an inactive user logs in');

# HTTP shape of the register endpoint: Django REST framework's refusals,
# {"detail"} (README; the login endpoint's stay RFC 6749's)
$r = $t->get('/users/register/');
is($r->{status}, 405, 'GET /users/register/: 405');
is_deeply($r->{json}, { detail => 'Method "GET" not allowed.' },
    'GET /users/register/: DRF\'s {"detail": "Method \"GET\" not allowed."}')
    or diag($r->{raw});
is(OAuth2Test::header($r, 'Allow'), 'POST', 'GET /users/register/: Allow: POST');
$r = $t->request('PUT', '/users/register/', headers => ['Content-Type' =>
    'application/x-www-form-urlencoded'], body => 'username=put');
is_deeply($r->{json}, { detail => 'Method "PUT" not allowed.' },
    'PUT /users/register/: 405 naming PUT') or diag($r->{raw});
# seed 001 posts application/x-www-form-urlencoded, nothing else
$r = $t->post_form('/users/register/', '{"username": "json"}',
    'Content-Type' => 'application/json');
is($r->{status}, 415, 'a JSON body: 415 (the seed posts a form)');
is_deeply($r->{json}, { detail => 'Unsupported media type '
    . '"application/json" in request.' }, 'a JSON body: DRF\'s 415 detail')
    or diag($r->{raw});
$r = $t->post_form('/users/register/', 'username=x',
    'Content-Type' => "text/plain; charset=\xff");
is_deeply($r->{json}, { detail => 'Unsupported media type '
    . '"text/plain; charset=?" in request.' },
    'a Content-Type of other bytes: quoted in printable ASCII')
    or diag($r->{raw});
$r = $t->request('POST', '/users/register/', body => 'username=x');
is_deeply($r->{json}, { detail => 'Unsupported media type "" in request.' },
    'no Content-Type: 415, DRF\'s detail') or diag($r->{raw});
$r = $t->post_form('/users/register/', 'username=x', 'Content-Type' =>
    ['application/x-www-form-urlencoded', 'application/json']);
is($r->{status}, 415, 'two Content-Type headers: 415 (R2)');
# a query string is ignored, as DRF ignores it on a POST (R3, RFC 6749
# 3.2, is the token endpoint's); nothing is read from it
$r = $t->post_form('/users/register/?username=q&is_active=false',
    OAuth2Test::form(username => 'queried', password => 'Saffron-dune-47',
    confirm_password => 'Saffron-dune-47'));
is($r->{status}, 201, 'a query string: ignored, 201') or diag($r->{raw});
is(($r->{json} // {})->{username}, 'queried', '... the form\'s username, '
    . 'not the query\'s');
ok(($r->{json} // {})->{is_active}, '... nor its is_active');
$r = $t->post_form('/users/register/',
    'username=dupe&username=dupe2&password=Saffron-dune-47'
    . '&confirm_password=Saffron-dune-47');
is($r->{status}, 400, 'username twice: 400 (R4)');
is_deeply($r->{json}, { detail => 'A parameter is repeated.' },
    'username twice: DRF\'s {"detail"}') or diag($r->{raw});

# the password is stored hashed
my ($code, $out, $err) = $t->_run_cmd('/usr/bin/mdb_dump', '-a', '-p',
    $t->store);
is($code, 0, 'mdb_dump of the store: exit 0') or diag($err);
unlike($out, qr/\Q$pw\E/, 'the store never holds the password in clear');
like($out, qr/pbkdf2_sha256/, 'the store holds a pbkdf2_sha256 hash');
# R16: with oauth2_pbkdf2_iterations' count, also for the users who never
# logged in (a.b+c-d_e@f, sleeper), whose hash no login rehashed
my @iterations = $out =~ /pbkdf2_sha256\$(\d+)\$/g;
cmp_ok(scalar @iterations, '>=', 5, 'the store holds a hash of each user');
is_deeply([grep { $_ != PBKDF2 } @iterations], [],
    'every hash has ' . PBKDF2 . ' iterations, as oauth2_pbkdf2_iterations '
    . 'says (R16)');

############################################################## login errors

my $wrong = login(email => 'alice@example.com', password => 'nope');
$t->oauth_error_ok($wrong, 400, 'invalid_grant', 'login: wrong password');
my $unknown = login(email => 'nobody@example.com', password => 'nope');
$t->oauth_error_ok($unknown, 400, 'invalid_grant', 'login: unknown email');
is($unknown->{body}, $wrong->{body},
    'login: unknown email and wrong password look the same');
$r = login(email => 'alice@example.com');
$t->oauth_error_ok($r, 400, 'invalid_request', 'login without password');
$r = login(password => $pw);
$t->oauth_error_ok($r, 400, 'invalid_request',
    'login without email or username');
$r = $t->get('/users/login/');
is($r->{status}, 405, 'GET /users/login/: 405');

# two accounts with one email: the address must not stop its owner
$r = register(username => 'mallory', password => 'Brisk-otter-canal-64',
    confirm_password => 'Brisk-otter-canal-64', email => 'alice@example.com');
my $took = $r->{status} == 201;
$r = login(email => 'alice@example.com', password => $pw);
{
        is($r->{status}, 200, 'alice still logs in by email after someone '
        . 'else registered her address');
}

############################################################ throttling (R17)

# three wrong passwords at the limited login for $field => $value, each 400
sub three_wrong {
    my ($field, $value) = @_;
    for my $i (1 .. 3) {
        my $w = $t->post_form('/users/login-limited/', OAuth2Test::form(
            $field => $value, password => "guess$i"));
        is($w->{status}, 400, "wrong password #$i for $value: 400");
    }
}

three_wrong(username => 'seeduser');
$r = $t->post_form('/users/login-limited/', OAuth2Test::form(
    username => 'seeduser', password => 'Tr0ub4dor-and-3'));
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'login after 3 failures, right password: 429 (R17)');
like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[12]$/,
    'throttled login: Retry-After within the 2 s window');
sleep 2.2;
$r = $t->post_form('/users/login-limited/', OAuth2Test::form(
    username => 'seeduser', password => 'Tr0ub4dor-and-3'));
is($r->{status}, 200, 'after the window the login works again (R17)');

# the count is per account: the spelling of the login must not matter
$r = register(username => 'zoe', password => 'Quartz-lantern-91',
    confirm_password => 'Quartz-lantern-91', email => 'zoe@example.com');
is($r->{status}, 201, 'register zoe: 201');
three_wrong(email => 'zoe@example.com');
$r = $t->post_form('/users/login-limited/', OAuth2Test::form(
    email => 'zoe@example.com', password => 'Quartz-lantern-91'));
is($r->{status}, 429, 'zoe@example.com after 3 failures: 429 (R17)');
my $zoe_case = $t->post_form('/users/login-limited/', OAuth2Test::form(
    email => 'Zoe@Example.com', password => 'Quartz-lantern-91'));
my $zoe_name = $t->post_form('/users/login-limited/', OAuth2Test::form(
    username => 'zoe', password => 'Quartz-lantern-91'));
{
        is($zoe_case->{status}, 429,
        'the same email in another case is throttled too (R17)');
    is($zoe_name->{status}, 429,
        'the same account by username is throttled too (R17)');
}

# an email two accounts share (Django does not make emails unique) is
# counted by the email itself, whatever its case
sleep 2.2;
for my $n ('twin1', 'twin2') {
    $r = register(username => $n, password => 'Quartz-lantern-91',
        confirm_password => 'Quartz-lantern-91', email => 'twins@example.com');
    is($r->{status}, 201, "register $n with twins\@example.com: 201");
}
three_wrong(email => 'twins@example.com');
$r = $t->post_form('/users/login-limited/', OAuth2Test::form(
    email => 'TWINS@Example.COM', password => 'guess4'));
is($r->{status}, 429, 'the shared email in another case: 429, the same '
    . 'count (R17)');

#################################################### racing registrations

my $start = time + 0.4;
my @pids;
for my $i (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        sleep $start - time if $start > time;
        my $r = register(username => 'racer',
            password => "Granite-owl-lamp-$i",
            confirm_password => "Granite-owl-lamp-$i", is_active => 'true');
        POSIX::_exit($r->{status} == 201 ? 0 : $r->{status} == 400 ? 1 : 2);
    }
    push @pids, $pid;
}
my %exit;
for (@pids) { waitpid $_, 0; $exit{$? >> 8}++ }
is($exit{0} // 0, 1, '8 parallel registrations of one username: one 201');
is($exit{1} // 0, 7, '8 parallel registrations: seven 400');

#################################################### a disabled application

# R70: oauth2_login issues nothing for its application while it is
# disabled: enabled again, the application would honour tokens nobody
# meant it to have
# (the 500 is logged at crit: a configuration that names a disabled app)
$t->expect_log(qr/\[crit\].*oauth2: answering 500/);
my ($dc, undef, $de) = $t->admin('app', 'disable', $app->{client_id});
is($dc, 0, 'app disable of the oauth2_login application: exit 0') or diag($de);
$r = login(username => 'alice', password => $pw);
is($r->{status}, 500, 'login while its application is disabled: 500');
is(ref $r->{json} eq 'HASH' && $r->{json}{error}, 'server_error',
    '... server_error');
is(ref $r->{json} eq 'HASH' && $r->{json}{error_description},
    'The application of oauth2_login is disabled',
    '... which says the application is disabled (not that it is missing)');
ok(!(ref $r->{json} eq 'HASH' && $r->{json}{access_token}),
    '... and no token');
my ($ec, undef, $ee) = $t->admin('app', 'enable', $app->{client_id});
is($ec, 0, 'app enable: exit 0') or diag($ee);
is(login(username => 'alice', password => $pw)->{status}, 200,
    'enabled again: the login issues again');

$t->done_testing;
