# The text fields of registration (seed 001) and of the users API as
# DRF's CharField reads them (trim_whitespace=True: Python's str.strip(),
# Unicode spaces included; allow_blank=False; max_length), the password
# included, so that what is stored is what simplejwt's /api/token/ (seed
# 003, which strips too) checks; a taken username reported with the other
# fields' errors (UniqueValidator is a field validator); and the sign-in
# forms' username stripped as Django's AuthenticationForm strips it.
# docs/security.md R7 (UTF-8, no control), R88 (cheap checks before any
# hash).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);
use OAuth2Authorize;

OAuth2Test::require_build();

my $NBSP = "\xC2\xA0";        # U+00A0, str.isspace()
my $IDSP = "\xE3\x80\x80";    # U+3000 IDEOGRAPHIC SPACE, str.isspace()
my $CB = 'https://client.example/cb';

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';
$t->ec_key;
my $app = $t->new_app(name => 'dj_auth', grant => ['password',
    'refresh_token'], scope => 'read write');
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $web = $t->new_app(name => 'web', grant => ['authorization_code',
    'refresh_token'], redirect_uris => [$CB]);
OAuth2Authorize::user_add($t, 'stef', 'Copper-kettle-92', '--staff');
my $cid = $app->{client_id};
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => "oauth2_jwt_key $K/ec.pem;\n",
    extra_server => <<"EOF" . $t->daemon_locations))->run;
    location = /users/register/ { oauth2_register; oauth2_rate_limit off; }
    location = /api/token/ { oauth2_jwt_token $cid; }
    location = /o/jwks/ { oauth2_jwks; }
EOF
$t->run_daemon('--pbkdf2-iterations', 1000);
my $admin = $t->access_token($admin_app, scope => 'read write admin');

sub register {
    my (%f) = @_;
    return $t->post_form('/users/register/', OAuth2Test::form(%f));
}

# POST /api/token/ (seed 003): the status
sub jwt_status {
    my ($name, $pw) = @_;
    return $t->request('POST', '/api/token/',
        headers => ['Content-Type' => 'application/json'],
        body => JSON::PP->new->encode({ username => $name,
            password => $pw }))->{status};
}

sub api_user {
    my (%f) = @_;
    return $t->api('POST', '/api/users/', token => $admin, json => \%f);
}

######################################### the password, stripped as DRF does

# registration: the spaces around the password are not part of it
my $PW = 'Saffron-dune-47';
my $r = register(username => 'pat', password => " $PW$NBSP",
    confirm_password => " $PW$NBSP");
is($r->{status}, 201, 'register with " <password>\u00a0": 201')
    or diag($r->{body});
is(jwt_status('pat', " $PW$NBSP"), 200,
    'POST /api/token/ with the password as registered: 200 (it strips it too)');
is(jwt_status('pat', $PW), 200, 'POST /api/token/ with it stripped: 200');
is(password_token($t, $app, 'pat', $PW)->{status}, 200,
    'the password grant with the stripped password: 200');
$r = register(username => 'pia', password => "$IDSP$PW",
    confirm_password => $PW);
is($r->{status}, 201,
    'register with password "\u3000<pw>" and confirm_password "<pw>": '
    . 'they match once stripped (201)') or diag($r->{body});

# the users API: the same
$r = api_user(username => 'quinn', password => "${IDSP}Granite-owl-lamp-71 ",
    email => 'quinn@example.com');
is($r->{status}, 201, 'POST /api/users/ with "\u3000<password> ": 201')
    or diag($r->{body});
is(jwt_status('quinn', 'Granite-owl-lamp-71'), 200,
    'that user gets a simplejwt token with the stripped password');
is(password_token($t, $app, 'quinn', 'Granite-owl-lamp-71')->{status}, 200,
    'and a token by the password grant');
$r = api_user(username => 'rey', password => "$NBSP \t", email => 'rey@example.com');
is_deeply($r->{json}, { password => ['This field may not be blank.'] },
    'POST /api/users/ with a password of spaces only: "may not be blank"')
    or diag($r->{body});

# the users API's other CharFields strip Unicode spaces, not ASCII alone
$r = api_user(username => "${NBSP}dora$IDSP", password => 'Granite-owl-lamp-71',
    email => 'dora@example.com');
is($r->{status}, 201, 'POST /api/users/ username "\u00a0dora\u3000": 201')
    or diag($r->{body});
is(ref $r->{json} eq 'HASH' && $r->{json}{username}, 'dora',
    'POST /api/users/ username "\u00a0dora\u3000": stored as "dora"');

###################################### a taken username is a field's error

my $TAKEN = 'A user with that username already exists.';
$r = register(username => 'pat', password => 'Lantern-quiet-58',
    confirm_password => 'Lantern-quiet-58', email => 'not an email');
is_deeply($r->{json}, { username => [$TAKEN],
    email => ['Enter a valid email address.'] },
    'a taken username and a bad email: both fields\' errors in one body')
    or diag($r->{body});
$r = register(username => 'pat', password => 'Lantern-quiet-58',
    confirm_password => 'Lantern-quiet-59');
is_deeply($r->{json}, { username => [$TAKEN] },
    'a taken username and passwords that differ: the username alone '
    . '(validate() runs once every field is valid)') or diag($r->{body});
$r = register(username => 'pat', password => 'Lantern-quiet-58',
    confirm_password => 'Lantern-quiet-58', is_active => 'maybe');
is_deeply($r->{json}, { username => [$TAKEN],
    is_active => ['Must be a valid boolean.'] },
    'a taken username and a bad is_active: both at once') or diag($r->{body});

############################## registration's username: DRF's CharField

my $MAX = 'Ensure this field has no more than 150 characters.';
my $BLANK = 'This field may not be blank.';
for my $c ([' sam ', 'sam', '" sam "'], ["${IDSP}sol$NBSP", 'sol',
    '"\u3000sol\u00a0"'])
{
    my ($sent, $stored, $what) = @$c;
    $r = register(username => $sent, password => $PW, confirm_password => $PW);
    is($r->{status}, 201, "register $what: 201") or diag($r->{body});
    is(ref $r->{json} eq 'HASH' && $r->{json}{username}, $stored,
        "register $what: stored as \"$stored\"");
    is(password_token($t, $app, $stored, $PW)->{status}, 200,
        "$stored signs in by the stripped name");
}
$r = register(username => ' sam', password => $PW, confirm_password => $PW);
is_deeply($r->{json}, { username => [$TAKEN] },
    'register " sam" again: "sam" is taken') or diag($r->{body});
for my $c (['', 'blank'], [" $IDSP", 'spaces only']) {
    $r = register(username => $c->[0], password => $PW,
        confirm_password => $PW);
    is_deeply($r->{json}, { username => [$BLANK] },
        "register a username $c->[1]: \"$BLANK\"") or diag($r->{body});
}
$r = register(username => 'tam', password => '', confirm_password => '');
is_deeply($r->{json}, { password => [$BLANK],
    confirm_password => ['Passwords do not match.'] },
    'register with password= and confirm_password=: "may not be blank"')
    or diag($r->{body});
$r = register(username => 'tam', password => "$NBSP ", confirm_password => ' ');
is_deeply($r->{json}, { password => [$BLANK],
    confirm_password => ['Passwords do not match.'] },
    'register with a password of spaces: "may not be blank"')
    or diag($r->{body});
for my $c (['x' x 151, '151 ASCII letters'],
    ["\xC3\xA9" x 151, '151 code points of two bytes'])
{
    $r = register(username => $c->[0], password => $PW,
        confirm_password => $PW);
    is_deeply($r->{json}, { username => [$MAX] },
        "register a username of $c->[1]: DRF's max_length message")
        or diag($r->{body});
}
$r = register(username => ' ' . 'y' x 150 . ' ', password => $PW,
    confirm_password => $PW);
is($r->{status}, 201, 'register 150 letters between spaces: 201 (stripped first)')
    or diag($r->{body});

################################ the sign-in forms strip the username

# Django's AuthenticationForm: UsernameField(strip=True); the password is
# taken as typed (strip=False)
my $f = OAuth2Authorize->new($t);
my $q = OAuth2Authorize::query(response_type => 'code',
    client_id => $web->{client_id}, redirect_uri => $CB, scope => 'read',
    state => 's1');
for my $c (['sam ', '"sam " (a mobile keyboard\'s space)'],
    ["${IDSP}sam$NBSP", '"\u3000sam\u00a0"'])
{
    my ($session, $post) = $f->login($q, $c->[0], $PW);
    ok($session, "the authorization endpoint signs $c->[1] in as sam")
        or diag($post->{status} . ' ' . $post->{body});
}
ok(!scalar $f->login($q, 'sam', " $PW"),
    'the authorization endpoint: " <password>" is not the password');
ok(!scalar $f->login($q, ' ', $PW),
    'the authorization endpoint: a username of spaces signs no one in');

# the daemon's staff sign-in
sub staff_login {
    my ($user, $pw) = @_;
    my $g = $t->get('/o/applications/login/');
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my $field = $g->{body} =~ /name="csrf" value="([^"]+)"/ ? $1 : '';
    return $t->post_form('/o/applications/login/', OAuth2Test::form(
        csrf => $field, username => $user, password => $pw),
        Cookie => "oauth2_csrf=$csrf");
}
for my $c (['stef ', '"stef "'], ["${NBSP}stef$IDSP", '"\u00a0stef\u3000"']) {
    my $r = staff_login($c->[0], 'Copper-kettle-92');
    is($r->{status}, 303, "the staff sign-in takes $c->[1]: 303")
        or diag($r->{status} . ' ' . $r->{body});
    ok(OAuth2Test::cookies_of($r)->{oauth2_session},
        "the staff sign-in as $c->[1]: a session");
}
is(staff_login('stef', ' Copper-kettle-92')->{status}, 400,
    'the staff sign-in: " <password>" is not the password');
is(staff_login(" $IDSP", 'Copper-kettle-92')->{status}, 400,
    'the staff sign-in: a username of spaces is "Enter your username and password."');

$t->stop_daemon;
$t->daemon_log_ok;
$t->done_testing;
