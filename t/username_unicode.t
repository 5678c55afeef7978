# Usernames as Django takes them: UnicodeUsernameValidator (^[\w.@+-]+\Z
# with re's Unicode \w, max_length 150 code points), not ASCII alone.
# Registration (seed 001), the sign-in forms, the password grant,
# simplejwt's /api/token/ (seed 003), the users API and the CLI take
# "josé" and "用户_1"; a name NFKC would change ("ﬁx", fullwidth letters),
# which Django's create_user would store normalized, is refused with
# Django's message; the pages, JSON bodies, headers and logs carry the
# name as UTF-8.  docs/security.md R7 (UTF-8 only, no control), R26 (the
# pages), R47 (a 600-byte name in an LMDB key).  The import of Django's
# Unicode users is t/import_django.t's.
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

# byte strings: what goes on the wire
my $JOSE = "jos\xC3\xA9";
my $CJK = "\xE7\x94\xA8\xE6\x88\xB7_1";              # 用户_1
my $E150 = "\xC3\xA9" x 150;                         # 300 bytes
my $CJK150 = "\xE7\x94\xA8" x 150;                   # 450 bytes
my $ASTRAL150 = "\xF0\xA0\x80\x80" x 150;            # U+20000: 600 bytes
my $BAD_NAME = 'Enter a valid username. This value may contain only '
    . 'letters, numbers, and @/./+/-/_ characters.';
my $PW = 'Saffron-dune-47';
my $CB = 'https://client.example/cb';

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';
$t->ec_key;
my $app = $t->new_app(name => 'dj_auth', grant => ['password',
    'refresh_token'], scope => 'read write');
my $web = $t->new_app(name => 'web', grant => ['authorization_code',
    'refresh_token'], redirect_uris => [$CB]);
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $cid = $app->{client_id};
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => "oauth2_jwt_key $K/ec.pem;\n"
        . "log_format users 'user=\"\$oauth2_user\"';\n",
    extra_server => <<"EOF" . $t->daemon_locations))->run;
    location /me/ {
        auth_oauth2 "api";
        add_header X-User \$oauth2_user always;
        alias %%DIR%%/html/;
    }
    location = /users/login/ { oauth2_login $cid; }
    location = /users/register/ { oauth2_register; oauth2_rate_limit off; }
    location = /api/token/ { oauth2_jwt_token $cid; }
    location = /o/jwks/ { oauth2_jwks; }
    location = /o/authorized_tokens/ { oauth2_authorized_grants; }
    location /logged/ {
        auth_oauth2 "api";
        access_log %%DIR%%/users.log users;
        alias %%DIR%%/html/;
    }
EOF
$t->run_daemon('--pbkdf2-iterations', 1000);

sub register {
    my ($name, %o) = @_;
    return $t->post_form('/users/register/', OAuth2Test::form(
        username => $name, password => $PW, confirm_password => $PW, %o));
}
sub login { $t->post_form('/users/login/', OAuth2Test::form(@_)) }

# 400 {"username": [Django's message]}
sub bad_name_ok {
    my ($r, $what) = @_;
    is($r->{status}, 400, "$what: 400");
    is_deeply($r->{json}, { username => [$BAD_NAME] },
        "$what: {\"username\": [Django's message]}") or diag($r->{body});
}

############################################################ registration

my %id;
for my $c ([$JOSE, 'josé'], [$CJK, '用户_1'],
    [$E150, '150 é (300 bytes: past the record header\'s byte)'],
    [$CJK150, '150 CJK letters (450 bytes)'],
    [$ASTRAL150, '150 letters of 4 bytes (600 bytes: past an LMDB key, R47)'])
{
    my ($name, $what) = @$c;
    my $r = register($name, email => 'u' . keys(%id) . '@example.com');
    is($r->{status}, 201, "register $what: 201") or diag($r->{body});
    is(ref $r->{json} eq 'HASH' && $r->{json}{username}, $name,
        "register $what: the username back as sent");
    like($r->{body}, qr/"username":\s*"\Q$name\E"/,
        "register $what: the JSON carries it as UTF-8, not \\u escapes");
    $id{$name} = $r->{json}{id};
}
my $dup = register($JOSE);
is($dup->{status}, 400, 'josé registered again: 400');
like(ref $dup->{json} eq 'HASH' ? $dup->{json}{username}[0] : '',
    qr/already exists/, 'josé registered again: "already exists"');
is(register("jos\x65\xCC\x81")->{status}, 400,
    'a decomposed "josé" (e + U+0301, no \w) is refused, as Django does');

# R7: neither a control, a space, a stray byte nor 151 code points
bad_name_ok(register("jos\xC3\xA9 x"), 'a name with a space');
bad_name_ok(register("a\xC2\x85b"), 'a name with a C1 control (U+0085)');
my $long = register("\xC3\xA9" x 151);
is_deeply($long->{json}, { username =>
    ['Ensure this field has no more than 150 characters.'] },
    '151 code points: DRF\'s max_length message') or diag($long->{body});
# around the name, str.strip() takes it off (t/register_fields.t)
bad_name_ok(register("jos\xC3\xA9\xE3\x80\x80x"), 'an ideographic space');
# the form decoder refuses these bytes in any field: the whole form is
# refused, in DRF's shape (400 {"detail"})
for my $case (["a\x01b", 'a name with a C0 control (R7)'],
    ["jos\xE9", 'a name that is not UTF-8 (Latin-1 é, R7)'])
{
    my $r = register($case->[0]);
    is($r->{status}, 400, "$case->[1]: 400");
    ok(ref $r->{json} eq 'HASH' && defined $r->{json}{detail},
        "$case->[1]: DRF's {\"detail\"}") or diag($r->{raw});
}
# Django's create_user would store NFKC(name): refused, not normalized
bad_name_ok(register("\xEF\xAC\x81x"), 'a name with the ligature U+FB01 (NFKC "fix")');
bad_name_ok(register("\xEF\xBC\xA1\xEF\xBC\xA2"), 'a name of fullwidth letters');
is(($t->admin('user', 'show', "\xEF\xAC\x81x"))[0], 1,
    'no user "ﬁx" was made');

################################################################ sign-in

for my $c ([$JOSE, 'josé'], [$ASTRAL150, 'the 600-byte name']) {
    my ($name, $what) = @$c;
    my $r = login(username => $name, password => $PW);
    is($r->{status}, 200, "oauth2_login as $what: 200") or diag($r->{body});
    my $tok = ref $r->{json} eq 'HASH' ? $r->{json}{access_token} : '';
    $r = $t->bearer_get('/me/', $tok);
    is(OAuth2Test::header($r, 'X-User'), $name,
        "\$oauth2_user of $what\'s token: the name's UTF-8");
    $r = password_token($t, $app, $name, $PW);
    is($r->{status}, 200, "password grant as $what: 200");
    my $i = introspect($t, $app, $r->{json}{access_token});
    is(ref $i->{json} eq 'HASH' && $i->{json}{username}, $name,
        "introspection of $what\'s token: the username");
}
is(login(username => $CJK, password => $PW)->{status}, 200,
    'oauth2_login as 用户_1: 200');
is(login(username => "$JOSE ", password => $PW)->{status}, 400,
    'oauth2_login as "josé " (another name): 400');

# seed 003's simplejwt: a JSON body in UTF-8
my $r = $t->request('POST', '/api/token/',
    headers => ['Content-Type' => 'application/json'],
    body => qq({"username": "$JOSE", "password": "$PW"}));
is($r->{status}, 200, 'POST /api/token/ as josé: 200') or diag($r->{body});
ok(ref $r->{json} eq 'HASH' && $r->{json}{access} && $r->{json}{refresh},
    'POST /api/token/ as josé: an access and a refresh token');
$r = $t->request('POST', '/api/token/',
    headers => ['Content-Type' => 'application/json'],
    body => qq({"username": "jos\\u00e9", "password": "$PW"}));
is($r->{status}, 200, 'POST /api/token/ with "jos\\u00e9" escaped: 200');
$r = $t->request('POST', '/api/token/',
    headers => ['Content-Type' => 'application/json'],
    body => qq({"username": "\xEF\xAC\x81x", "password": "$PW"}));
is($r->{status}, 401, 'POST /api/token/ as "ﬁx" (not normalized here '
    . 'either, as simplejwt): 401');

# the access log escapes the name's bytes (nginx's escape=default)
$r = login(username => $JOSE, password => $PW);
is($t->bearer_get('/logged/', $r->{json}{access_token})->{status}, 200,
    'josé\'s token at a logged location');
my $log = -f $t->dir . '/users.log'
    ? OAuth2Test::_slurp($t->dir . '/users.log') : '';
like($log, qr/^user="jos\\xC3\\xA9"$/m,
    'the access log shows $oauth2_user as jos\xC3\xA9, escaped');

######################################### the authorization endpoint's pages

my $f = OAuth2Authorize->new($t);
my $q = OAuth2Authorize::query(response_type => 'code',
    client_id => $web->{client_id}, redirect_uri => $CB, scope => 'read',
    state => 's1', login_hint => "<$JOSE>");
$r = $f->get($q);
is($r->{status}, 200, 'the sign-in page: 200');
like($r->{body}, qr/value="&lt;\Q$JOSE\E&gt;"/,
    'login_hint is shown escaped, its UTF-8 intact (R26)');
like(OAuth2Test::header($r, 'Content-Type') // '', qr/charset=utf-8/i,
    'the page says it is UTF-8');
my ($long_session) = $f->login($q, $ASTRAL150, $PW);
ok($long_session, 'the 600-byte name signs in at the authorization endpoint');
my ($session, $post) = $f->login($q, $JOSE, $PW);
ok($session, 'josé signs in at the authorization endpoint')
    or diag($post->{status} . ' ' . $post->{body});
my ($allow, $page) = $f->consent($q, $session);
like($page->{body}, qr{Signed in as <strong>\Q$JOSE\E</strong>},
    'the consent page: "Signed in as josé"');
is($allow->{status}, 303, 'josé allows: 303');
$r = $t->get('/o/authorized_tokens/', Cookie => $session);
like($r->{body}, qr{Signed in as <strong>\Q$JOSE\E</strong>},
    'the grants page: "Signed in as josé"');

############################################################ users API

my $admin = $t->access_token($admin_app, scope => 'read write admin');
my ($code, $out, $err);
my $CJK2 = "\xE7\x94\xA8\xE6\x88\xB7_2";
$r = $t->api('POST', '/api/users/', token => $admin, json => {
    username => $CJK2, password => 'Granite-owl-lamp-71',
    email => 'cjk2@example.com' });
is($r->{status}, 201, 'POST /api/users/ 用户_2: 201') or diag($r->{body});
like($r->{body}, qr/"username":\s*"\Q$CJK2\E"/,
    'the API answers the name in UTF-8');
my $cjk2_id = $r->{json}{id};
is(password_token($t, $app, $CJK2, 'Granite-owl-lamp-71')->{status}, 200,
    '用户_2 gets a token by the password grant');
$r = $t->api('GET', "/api/users/$id{$JOSE}/", token => $admin);
is($r->{json}{username}, $JOSE, 'GET /api/users/<josé\'s id>/: josé');
for my $c (["\xEF\xAC\x81x", 'the ligature U+FB01'],
    ["\xEF\xBC\xA1\xEF\xBC\xA2", 'fullwidth letters'],
    ["a\xC2\x85b", 'a C1 control'], ["jos\xC3\xA9 x", 'a space'])
{
    my ($name, $what) = @$c;
    $r = $t->api('POST', '/api/users/', token => $admin, json => {
        username => $name, password => 'Granite-owl-lamp-71',
        email => 'x@example.com' });
    is($r->{status}, 400, "POST /api/users/ with $what: 400");
    is_deeply($r->{json}, { username => [$BAD_NAME] },
        "POST /api/users/ with $what: Django's message");
}
$r = $t->api('POST', '/api/users/', token => $admin, json => {
    username => "\xC3\xA9" x 151, password => 'Granite-owl-lamp-71',
    email => 'x@example.com' });
is_deeply($r->{json}, { username =>
    ['Ensure this field has no more than 150 characters.'] },
    'POST /api/users/ with 151 code points: DRF\'s max_length message');
$r = $t->api('PATCH', "/api/users/$cjk2_id/", token => $admin,
    json => { username => "\xEF\xAC\x81x" });
is($r->{status}, 400, 'PATCH to the name "ﬁx": 400');
$r = $t->api('PATCH', "/api/users/$cjk2_id/", token => $admin,
    json => { username => "\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1" });
is($r->{status}, 200, 'PATCH to the name Ωμέγα: 200');
is(password_token($t, $app, "\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1",
    'Granite-owl-lamp-71')->{status}, 200, 'Ωμέγα signs in by the new name');
is(password_token($t, $app, $CJK2, 'Granite-owl-lamp-71')->{status}, 400,
    'the old name 用户_2 no longer does');

# a name Django stored with a compatibility character (an import takes
# it as it is) is kept by a PATCH that names it again, and is no name to
# move another user to
my $dump = OAuth2Test::write_file($t->dir . '/fi.json', JSON::PP->new->encode([
    { model => 'auth.user', pk => 500, fields => { username => "\xEF\xAC\x81x",
        password => '', email => 'fi@example.com' } } ]));
($code, $out, $err) = $t->admin('import-django', $dump);
is($code, 0, 'import of a user named "ﬁx" (as Django stored it): exit 0')
    or diag($err);
$r = $t->api('PATCH', '/api/users/500/', token => $admin,
    json => { username => "\xEF\xAC\x81x", first_name => 'Fi' });
is($r->{status}, 200, 'PATCH "ﬁx" keeping its own name: 200') or diag($r->{body});
$r = $t->api('PATCH', "/api/users/$cjk2_id/", token => $admin,
    json => { username => "\xEF\xAC\x81y" });
is($r->{status}, 400, 'PATCH another user to "ﬁy": 400');

################################################################### CLI

($code, $out, $err) = $t->admin('user', 'show', $JOSE);
is($code, 0, 'user show josé: exit 0') or diag($err);
is((eval { JSON::PP->new->decode($out) } // {})->{username}, $JOSE,
    'user show josé: josé, in UTF-8');
($code, $out, $err) = $t->admin('user', 'add', '--username', "\xEF\xAC\x81x",
    '--email', 'f@example.com', '--password', 'Granite-owl-lamp-71',
    '--pbkdf2-iterations', 1000);
is($code, 2, 'user add --username ﬁx: exit 2');
like($err, qr/NFKC/, 'user add --username ﬁx: says it is not in NFKC form');
($code, $out, $err) = $t->admin('user', 'add', '--username', 'n' . $CJK,
    '--email', 'n@example.com', '--password', 'Granite-owl-lamp-71',
    '--pbkdf2-iterations', 1000);
is($code, 0, 'user add --username n用户_1: exit 0') or diag($err);

$t->stop_daemon;
$t->daemon_log_ok;
$t->done_testing;
