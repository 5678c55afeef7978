# oauth2-admin import-django (issue 3 item 6; README "oauth2-admin";
# docs/security.md R16, R22, R25, R43, R70, catalogue 2.4), on a real dumpdata
# made by t/django/make_dump.py with Debian's Django and
# django-oauth-toolkit 1.x, and on hand-written edge cases: users (of
# auth.user or of a custom AUTH_USER_MODEL, seed 003), applications, and
# DOT's access and refresh tokens (seed 004: 100-year access tokens)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX ();
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(refresh introspect inactive_ok);

OAuth2Test::require_build();

my $PYTHON = '/usr/bin/python3';    # Debian's, with python3-django
my $t = OAuth2Test->new;
my $json = JSON::PP->new->utf8->canonical;
sub dj { my $j = eval { $json->decode($_[0] // '') }; return $j }

sub slurp_json {
    my ($f) = @_;
    return dj(OAuth2Test::_slurp($f)) // die "$f: not JSON";
}

# ------------------------------------------------ a real Django dumpdata
my $dj = $t->dir . '/django';
mkdir $dj or die "$dj: $!";
my ($code, $out, $err) = $t->_run_cmd($PYTHON,
    "$FindBin::Bin/django/make_dump.py", $dj);
is($code, 0, 'make_dump.py built a Django + DOT site and dumped it')
    or diag($out . $err);
-f "$dj/dump.json" or BAIL_OUT('no dumpdata: are python3-django and '
    . 'python3-django-oauth-toolkit installed?');
my $secrets = slurp_json("$dj/secrets.json");
my %app = %{$secrets->{apps}};
my %duser = %{$secrets->{users}};
my %tok = %{$secrets->{tokens}};
my $records = slurp_json("$dj/dump.json");
my %fields = map { $_->{fields}{username} => $_->{fields} }
    grep { $_->{model} eq 'auth.user' } @$records;
my @user_keys = qw(email first_name last_name is_staff is_active);

sub import_ok {
    my ($inst, $file, $name) = @_;
    my ($code, $out, $err) = $inst->admin('import-django', $file);
    is($code, 0, "$name: exit 0") or diag($err);
    return dj($out) // {};
}

sub by_name {
    my ($inst, $what) = @_;
    my ($code, $out) = $inst->admin($what, 'list');
    my $key = $what eq 'user' ? 'username' : 'name';
    return map { $_->{$key} => $_ } @{dj($out) // []};
}

# ------------------------------------------ DOT 1.x: secrets in clear
my $import_start = time;
my $sum = import_ok($t, "$dj/dump.json", 'import of the DOT 1.x dump');
my $import_end = time;
is_deeply($sum->{users}, { imported => 7, skipped => 0,
    unusable_passwords => 2 },
    'users: 7 imported (josé too: Django\'s validator is Unicode\'s), '
    . '2 unusable passwords');
is_deeply($sum->{applications}, { imported => 4, skipped => 2 },
    'applications: 4 imported, implicit and hybrid skipped');
my @w = @{$sum->{warnings} // []};
ok((grep { /'old-implicit'.*skipped.*implicit grant.*RFC 9700/ } @w),
    'warning: the implicit application skipped (RFC 9700)');
ok((grep { /'hybrid'.*skipped.*hybrid/ } @w),
    'warning: the openid-hybrid application skipped');
ok((grep { m{'web'.*'http://localhost:8000/cb' dropped.*R22} } @w),
    'warning: the http://localhost redirect URI dropped (R22)');
ok(!(grep { /skipped.*jos/ } @w), 'no warning says josé was skipped');
ok((grep { /fewer than 600000 PBKDF2 iterations.*: .*jos\x{e9}/ } @w),
    'josé is named (in UTF-8) among the hashes due for a rehash');
ok((grep { /md5.*set-password.*: legacy$/ } @w),
    'warning: legacy\'s md5 hash cannot be verified');
ok((grep { /no usable password in Django.*: nopass$/ } @w),
    'warning: nopass had no usable password');
ok((grep { /fewer than 600000 PBKDF2 iterations/ } @w),
    'warning: Django 3.2\'s 260000 iterations are due for a rehash');

my %users = by_name($t, 'user');
is_deeply([sort keys %users], [sort qw(admin alice legacy nopass gone
    staffer), "jos\x{e9}"], 'user list: the seven users, josé included');
for my $name (sort keys %users) {
    is($users{$name}{id}, $duser{$name}{pk},
        "$name keeps its Django id $duser{$name}{pk}");
    is_deeply({ map { $_ => $users{$name}{$_} } @user_keys },
        { map { $_ => $fields{$name}{$_} } @user_keys },
        "$name: email, names, is_staff and is_active as in Django");
}

my $store_dump = OAuth2Test::dump_store($t->store);
ok(index($store_dump, $fields{alice}{password}) >= 0,
    'alice\'s pbkdf2_sha256 hash is kept as it is');
ok(index($store_dump, $fields{legacy}{password}) < 0,
    'legacy\'s md5 hash is not kept');
like($store_dump, qr/"username":"legacy".*"password":"!md5"/,
    'legacy\'s password is the unusable "!md5"');
like($store_dump, qr/"username":"nopass".*"password":"!unusable"/,
    'nopass\'s password is the unusable "!unusable"');
like($store_dump, qr/"username":"alice".*"date_joined":1577934245/,
    'date_joined 2020-01-02T03:04:05Z is 1577934245');
like($store_dump, qr/"username":"alice".*"last_login":1709209815/,
    'last_login 2024-02-29T12:30:15.250Z is 1709209815');
like($store_dump, qr/"username":"admin".*"is_superuser":true/,
    'admin keeps is_superuser');
my @leaked = grep { index($store_dump, $app{$_}{client_secret}) >= 0 }
    sort keys %app;
is("@leaked", '', 'no client secret in clear in the store (R16, R43)');

# ------------------------------------------------ DOT's tokens (seed 004)
is_deeply($sum->{tokens}, { imported => 5, skipped => 3, access_tokens => 4,
    refresh_tokens => 1, expired => 1, revoked => 1, inactive_user => 0 },
    'tokens: 4 access (josé\'s too) and 1 refresh imported; expired, '
    . 'revoked, and the token of a skipped application skipped');
ok((grep { /^1 access token skipped: expired: access token $tok{staffer_expired}{pk}$/ } @w),
    'warning: the expired access token, named by its pk');
ok((grep { /^1 refresh token skipped: revoked: refresh token $tok{alice_revoked}{pk}$/ } @w),
    'warning: the revoked refresh token');
ok((grep { /^1 token skipped: its application was not imported.*never given to another: access token $tok{implicit_token}{pk}$/ } @w),
    'warning: the token of the skipped implicit application');
{
    # the store's files, as bytes: a copy of them must not hold a token
    my @files = glob($t->store . '/*');
    ok(@files >= 1, 'the store has files (' . scalar(@files) . ')');
    my $bytes = join '', map { OAuth2Test::_slurp($_) } @files;
    my @clear = grep { index($bytes, $tok{$_}{token}) >= 0 } sort keys %tok;
    is("@clear", '', 'no DOT token in clear in the store\'s files (R43)');
}

my %apps = by_name($t, 'app');
is_deeply([sort keys %apps], [sort qw(service web spa legacy-password)],
    'app list: service, web, spa, legacy-password');
is($apps{service}{client_id}, $app{service}{client_id},
    'service keeps its client_id');
is_deeply($apps{service}{grant_types}, ['client_credentials'],
    'client-credentials maps to client_credentials');
is_deeply($apps{web}{grant_types}, [qw(authorization_code refresh_token)],
    'authorization-code maps to authorization_code and refresh_token');
is_deeply($apps{'legacy-password'}{grant_types}, [qw(password
    refresh_token)], 'password maps to password and refresh_token');
is_deeply($apps{web}{redirect_uris}, ['https://app.example/cb',
    'http://127.0.0.1:8000/cb'], 'web keeps its two valid redirect URIs');
is($apps{web}{client_type}, 'confidential', 'web is confidential');
is($apps{spa}{client_type}, 'public', 'spa is public');
is($apps{service}{scope}, '', 'scope: the server\'s default (DOT has none '
    . 'per application)');

$t->write_config($t->default_http(extra_server => $t->daemon_locations
    . <<'EOF'))->run;
    location /whoami/ {
        auth_oauth2 "api";
        add_header X-User "[$oauth2_user]" always;
        alias %%DIR%%/html/;
    }
    location = /o/introspect/ { oauth2_introspect; }
    location = /o/token-grace0/ {
        oauth2_token;
        oauth2_refresh_token_grace 0;
    }
EOF

my $svc = $app{service};
my $r = $t->token($svc->{client_id}, $svc->{client_secret});
is($r->{status}, 200,
    'the imported service app gets a token with its DOT 1.x secret');
my $svc_tok = $r->{json}{access_token} // '';
is($t->bearer_get('/protected/', $svc_tok)->{status}, 200,
    'that token opens /protected/');
$r = $t->token($svc->{client_id}, $svc->{client_secret}, auth => 'post');
is($r->{status}, 200, 'the secret also works in the body');
$r = $t->token($svc->{client_id}, $svc->{client_secret} . 'x');
$t->oauth_error_ok($r, 401, 'invalid_client', 'a wrong secret');
$r = $t->token($app{web}{client_id}, $app{web}{client_secret});
$t->oauth_error_ok($r, 400, 'unauthorized_client',
    'web\'s secret authenticates, but it has no client_credentials grant');

($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
    $svc->{client_id}, '--user', 'alice');
is($code, 0, 'token issue for the imported alice: exit 0') or diag($err);
my $alice_tok = (dj($out) // {})->{access_token} // '';
$r = $t->bearer_get('/whoami/', $alice_tok);
is($r->{status}, 200, 'alice\'s token opens /whoami/');
is(OAuth2Test::header($r, 'X-User'), '[alice]',
    '$oauth2_user is alice for alice\'s token');
($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
    $svc->{client_id}, '--user', 'legacy');
is($code, 0, 'token issue works for a user with an unusable password');
($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
    $svc->{client_id}, '--user', 'gone');
is($code, 1, 'token issue for the imported inactive user: exit 1 (R70)');

# alice signs in with her Django password: PBKDF2 with her hash's own
# iterations (Django's, fewer than the 600000 configured here), and the
# hash is then rehashed with the configured ones
my ($dj_iter) = $fields{alice}{password} =~ /^pbkdf2_sha256\$(\d+)\$/;
ok($dj_iter && $dj_iter < 600000, "alice's Django hash has fewer iterations ($dj_iter)");
my $lp = $app{'legacy-password'};
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => $duser{alice}{password},
    client_id => $lp->{client_id}, client_secret => $lp->{client_secret}));
is($r->{status}, 200, 'the password grant for alice with her Django password')
    or diag($r->{raw});
my $rehashed = OAuth2Test::dump_store($t->store);
ok(index($rehashed, $fields{alice}{password}) < 0, '... after which her Django hash is gone');
like($rehashed, qr/"username":"alice".*"password":"pbkdf2_sha256\$600000\$/,
    '... rehashed with the configured 600000 iterations');

# DOT's tokens, imported, at work: validation, introspection, /auth/me/,
# the refresh grant and revocation treat them as tokens issued here
my $web = $app{web};
my $lpw = $app{'legacy-password'};
sub intro_of {
    my ($a, $token) = @_;
    my $r = introspect($t, $a, $token);
    return ref $r->{json} eq 'HASH' ? $r->{json} : {};
}
my $a100 = $tok{alice_100y}{token};
$r = $t->bearer_get('/whoami/', $a100);
is($r->{status}, 200, 'alice\'s imported 100-year access token opens /whoami/');
is(OAuth2Test::header($r, 'X-User'), '[alice]', '... as alice');
my $i = intro_of($web, $a100);
is_deeply([@$i{qw(active client_id username scope exp)}],
    [JSON::PP::true, $web->{client_id}, 'alice', 'read write',
        $tok{alice_100y}{exp}],
    '... introspects active, web\'s, alice\'s, "read write", with DOT\'s '
    . '100-year expiry (seed 004)');
my $cc = $tok{service_cc}{token};
is($t->bearer_get('/protected/', $cc)->{status}, 200,
    'the imported client_credentials token opens /protected/');
$i = intro_of($svc, $cc);
is_deeply([@$i{qw(active client_id scope exp sub)}],
    [JSON::PP::true, $svc->{client_id}, 'read', $tok{service_cc}{exp},
        $svc->{client_id}],
    '... introspects active, service\'s own (sub: its client_id), "read"');
ok(!exists $i->{username}, '... with no username');
my $linked = $tok{staffer_linked}{token};
$r = $t->bearer_get('/whoami/', $linked);
is(OAuth2Test::header($r, 'X-User'), '[staffer]',
    'the access token the refresh token links opens /whoami/ as staffer');
is($t->bearer_get('/protected/', $tok{staffer_expired}{token})->{status}, 401,
    'the expired access token: 401');
inactive_ok($t, introspect($t, $web, $tok{staffer_expired}{token}),
    'the expired access token introspects');
is($t->bearer_get('/protected/', $tok{implicit_token}{token})->{status}, 401,
    "implicit_token (of a skipped application) is no one's: 401");
# josé (a Unicode name, as Django's validator takes it) and his token
# came over; the page, the header and introspection carry his name in UTF-8
my $jose = "jos\xC3\xA9";    # bytes, as on the wire
$r = $t->bearer_get('/whoami/', $tok{jose_token}{token});
is($r->{status}, 200, 'josé\'s imported token opens /whoami/');
is(OAuth2Test::header($r, 'X-User'), "[$jose]", '... as josé, in UTF-8');
$i = intro_of($web, $tok{jose_token}{token});
is($i->{username}, $jose, '... and introspects as josé');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => $jose, password => $duser{"jos\x{e9}"}{password},
    client_id => $lp->{client_id}, client_secret => $lp->{client_secret}));
is($r->{status}, 200, 'josé signs in with his Django password') or diag($r->{raw});
inactive_ok($t, introspect($t, $lpw, $tok{alice_revoked}{token}),
    'the revoked refresh token introspects');
$r = refresh($t, $lpw, $tok{alice_revoked}{token});
$t->oauth_error_ok($r, 400, 'invalid_grant', 'the revoked refresh token');

# /auth/me/ (seed 003), at the daemon, with the imported token
$t->run_daemon('--pbkdf2-iterations', 1000);
$r = $t->api('GET', '/auth/me/', token => $a100);
is($r->{status}, 200, '/auth/me/ with alice\'s imported token: 200');
is(($r->{json} // {})->{username}, 'alice', '... and it is alice');
$t->stop_daemon;

# the refresh token: scope of the access token it links, an expiry of
# oauth2_refresh_token_ttl's default from the import, rotated once
my $rt = $tok{staffer_refresh}{token};
$i = intro_of($lpw, $rt);
is_deeply([@$i{qw(active token_type client_id username scope)}],
    [JSON::PP::true, 'refresh_token', $lpw->{client_id}, 'staffer', 'read'],
    'the imported refresh token introspects active, legacy-password\'s, '
    . 'staffer\'s, with its access token\'s scope "read"');
ok($i->{exp} >= $import_start + 2592000 && $i->{exp} <= $import_end + 2592000,
    '... expiring 30 days (2592000 s) after the import');
$r = refresh($t, $lpw, $rt);
is($r->{status}, 200, 'the imported refresh token rotates: 200') or diag($r->{raw});
my $pair = $r->{json} // {};
ok($pair->{access_token} && $pair->{refresh_token} && $pair->{refresh_token} ne $rt,
    '... into a new access token and a new refresh token');
is($pair->{scope}, 'read', '... of its scope');
is($t->bearer_get('/protected/', $pair->{access_token} // '')->{status}, 200,
    'the new access token opens /protected/');
inactive_ok($t, introspect($t, $lpw, $rt),
    'the rotated-out imported refresh token introspects');
my $again = refresh($t, $lpw, $rt);
is($again->{status}, 200, 'used again within the grace: 200 (R38)');
is($again->{body}, $r->{body},
    'used again within the grace: the same pair, byte for byte (R38)');
$r = refresh($t, $lpw, $rt, path => '/o/token-grace0/');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'used again with no grace left (R37)');
is($t->bearer_get('/protected/', $pair->{access_token} // '')->{status}, 401,
    '... which revokes the grant: its new access token fails');
is($t->bearer_get('/protected/', $linked)->{status}, 401,
    '... and the imported access token it linked, of the same grant');
is(refresh($t, $lpw, $pair->{refresh_token} // '')->{status}, 400,
    '... and its new refresh token');

# revocation (RFC 7009) of an imported token
$r = $t->revoke($web->{client_id}, $web->{client_secret}, $a100);
is($r->{status}, 200, 'web revokes alice\'s imported token: 200');
is($t->bearer_get('/whoami/', $a100)->{status}, 401, '... which then fails: 401');
inactive_ok($t, introspect($t, $web, $a100), '... and introspects');

# tokens of a later dump: a value the store holds is never moved to
# another application; an expiry past 9999-12-31T23:59:59Z is clamped;
# DOT's scope is read as DOT reads it
{
    my $late_secret = 'L' x 64;
    my $file = OAuth2Test::write_file($t->dir . '/late-tokens.json',
        $json->encode([
        { model => 'oauth2_provider.application', pk => 1, fields => {
            client_id => 'late', name => 'late', client_type => 'confidential',
            authorization_grant_type => 'client-credentials',
            client_secret => $late_secret, redirect_uris => '' } },
        { model => 'oauth2_provider.accesstoken', pk => 1, fields => {
            token => $cc, application => 1, user => undef, scope => 'admin',
            expires => '2999-01-01T00:00:00Z' } },
        { model => 'oauth2_provider.accesstoken', pk => 2, fields => {
            token => 'clampedTokenValue0001', application => 1,
            user => undef, scope => 'read', expires => '9999-12-31T23:59:59-05:00' } },
        { model => 'oauth2_provider.accesstoken', pk => 3, fields => {
            token => 'spacedScopeToken0001', application => 1, user => undef,
            scope => " read  write\tread ", expires => '2999-01-01T00:00:00' } },
        ]));
    $sum = import_ok($t, $file, 'a dump of tokens for a new application');
    is_deeply([@{$sum->{tokens}}{qw(imported skipped)}], [2, 1],
        '... 2 tokens imported, 1 skipped');
    my @lw = @{$sum->{warnings} // []};
    ok((grep { /^1 token skipped: the store holds that token already.*: access token 1$/ } @lw),
        '... warning: a token the store holds already, never overwritten');
    ok((grep { /^1 access token expires after 9999-12-31T23:59:59Z.*: access token 2$/ } @lw),
        '... warning: an expiry past 9999-12-31T23:59:59Z');
    $i = intro_of($svc, $cc);
    is_deeply([@$i{qw(active client_id scope)}],
        [JSON::PP::true, $svc->{client_id}, 'read'],
        'the service token is still service\'s, of its own scope');
    my $late = { client_id => 'late', client_secret => $late_secret };
    $i = intro_of($late, 'clampedTokenValue0001');
    is($i->{exp}, 253402300799, 'the clamped token expires at 9999-12-31T23:59:59Z');
    $i = intro_of($late, 'spacedScopeToken0001');
    is($i->{scope}, 'read write', 'DOT\'s scope " read  write\\tread " is "read write"');
    is($i->{exp}, 32472144000, 'a naive expires is UTC (2999-01-01)');
}

# a second import changes nothing
my $before = OAuth2Test::dump_store($t->store);
my %users_before = by_name($t, 'user');
my %apps_before = by_name($t, 'app');
$sum = import_ok($t, "$dj/dump.json", 'a second import');
is_deeply([$sum->{users}{imported}, $sum->{applications}{imported}],
    [0, 0], 'the second import imports nothing');
is_deeply([$sum->{users}{skipped}, $sum->{applications}{skipped}],
    [7, 6], 'the second import skips every user and application');
ok((grep { /7 users skipped: the usernames exist.*never overwritten/ }
    @{$sum->{warnings}}), 'warning: existing usernames never overwritten');
ok((grep { /4 applications skipped: the client_ids exist/ }
    @{$sum->{warnings}}), 'warning: existing client_ids never overwritten');
is_deeply([@{$sum->{tokens}}{qw(imported skipped)}], [0, 8],
    'the second import skips every token (their applications exist)');
is_deeply({ by_name($t, 'user') }, \%users_before,
    'the users are unchanged after the second import');
is_deeply({ by_name($t, 'app') }, \%apps_before,
    'the applications are unchanged after the second import');
is($t->token($svc->{client_id}, $svc->{client_secret})->{status}, 200,
    'the service secret still works after the second import');

# a broken file changes nothing
$before = OAuth2Test::dump_store($t->store);
my $text = OAuth2Test::_slurp("$dj/dump.json");
my $broken = OAuth2Test::write_file($t->dir . '/broken.json',
    substr($text, 0, length($text) / 2));
($code, $out, $err) = $t->admin('import-django', $broken);
is($code, 1, 'a truncated dump: exit 1');
like($err, qr/not valid JSON.*nothing was imported/,
    'a truncated dump: "not valid JSON ... nothing was imported"');
is($out, '', 'a truncated dump: nothing on stdout');
# one cut inside a secret in clear (DOT 1.x): the error says where, never
# what (jansson's text ends "near '<the input there>'")
my $cut = OAuth2Test::write_file($t->dir . '/cut.json', '[{"model":'
    . '"oauth2_provider.application","pk":1,"fields":{"client_id":"abc",'
    . '"client_secret":"Tr0ub4dor&3x');
($code, $out, $err) = $t->admin('import-django', $cut);
is($code, 1, 'a dump cut inside a secret: exit 1');
like($err, qr/not valid JSON \(line 1, column \d+\)/, '... says where');
unlike($err, qr/Tr0ub4dor/, '... and never echoes the secret');
my $late = [@$records];
my ($last_app) = grep { $late->[$_]{model} eq 'oauth2_provider.application' }
    reverse 0 .. $#$late;
$late->[$last_app] = { %{$late->[$last_app]}, fields => {
    %{$late->[$last_app]{fields}}, client_type => 1 } };
my $bad_late = OAuth2Test::write_file($t->dir . '/bad-late.json',
    $json->encode([{ model => 'auth.user', pk => 100,
        fields => { username => 'newcomer', password => '' } }, @$late]));
($code, $out, $err) = $t->admin('import-django', $bad_late);
is($code, 1, 'a wrong type in the last application: exit 1');
like($err, qr/record \d+ \(oauth2_provider.application\): "client_type" is/,
    'a wrong type: the message names the record and the field');
is(OAuth2Test::dump_store($t->store), $before,
    'the failed imports left the store byte for byte as it was');

# ids the store hands out later never land on an imported id
($code, $out, $err) = $t->admin(qw(user add --username newbie
    --email newbie@example.com --password Tr0ub4dor-and-3
    --pbkdf2-iterations 1000));
is($code, 0, 'user add after the import: exit 0') or diag($err);
is((dj($out) // {})->{id}, 9, 'user add after the import gets id 9, '
    . 'after Django\'s highest (8)');
my %after = by_name($t, 'user');
delete $after{newbie};
is_deeply(\%after, \%users_before, 'user add overwrote no imported user');

# tokens of an inactive user (R70): deactivating a user deletes its tokens
# for good, and the import writes none of those a dump holds for a user
# whose is_active is false (they were written, and enabling the user
# brought them to life: the access token opened locations, the refresh
# token got new tokens); they are skipped and counted as expired and
# revoked ones are
{
    my $secret = 'R' x 64;
    my ($at, $rt) = ('retiredAccessToken0001', 'retiredRefreshToken001');
    my $file = OAuth2Test::write_file($t->dir . '/inactive-tokens.json',
        $json->encode([
        { model => 'auth.user', pk => 70, fields => { username => 'retired',
            password => '!x', is_active => JSON::PP::false } },
        { model => 'oauth2_provider.application', pk => 71, fields => {
            client_id => 'retired-app', name => 'retired app',
            client_type => 'confidential', authorization_grant_type => 'password',
            client_secret => $secret, redirect_uris => '' } },
        { model => 'oauth2_provider.accesstoken', pk => 72, fields => {
            token => $at, user => 70, application => 71, scope => 'read write',
            expires => '2999-01-01T00:00:00Z' } },
        { model => 'oauth2_provider.refreshtoken', pk => 73, fields => {
            token => $rt, user => 70, application => 71, access_token => 72,
            revoked => undef } },
        ]));
    $sum = import_ok($t, $file, 'a dump of an inactive user with tokens');
    is_deeply([@{$sum->{tokens}}{qw(imported skipped inactive_user)}], [0, 2, 2],
        '... its 2 tokens skipped, counted under inactive_user');
    ok((grep { /^2 tokens skipped: their users are inactive.*: refresh token 73, access token 72$/ }
        @{$sum->{warnings} // []}), '... warning: the inactive user\'s tokens, named by their pk');
    ($code, $out, $err) = $t->admin('user', 'set', 'retired', '--active', 'true');
    is($code, 0, 'user set retired --active true: exit 0') or diag($err);
    is($t->bearer_get('/whoami/', $at)->{status}, 401,
        'enabled again, the user\'s imported access token is refused: 401');
    $t->oauth_error_ok(refresh($t, { client_id => 'retired-app',
        client_secret => $secret }, $rt), 400, 'invalid_grant',
        'enabled again, the user\'s imported refresh token');
}

# ---------------------------------------- DOT 2+: secrets hashed by Django
my $h = OAuth2Test->new;
$sum = import_ok($h, "$dj/dump-hashed.json", 'import of the hashed dump');
is($sum->{applications}{imported}, 4,
    'hashed dump: 4 applications imported');
my $hashed = slurp_json("$dj/dump-hashed.json");
my ($svc_rec) = grep { ($_->{fields}{client_id} // '') eq $svc->{client_id} }
    @$hashed;
like($svc_rec->{fields}{client_secret}, qr/^pbkdf2_sha256\$/,
    'the hashed dump holds make_password() of the secret, as DOT 2+ does');
my $hdump = OAuth2Test::dump_store($h->store);
ok(index($hdump, $svc_rec->{fields}{client_secret}) >= 0,
    'the Django hash is kept as the secret hash');
ok(index($hdump, $svc->{client_secret}) < 0,
    'the secret is not in the store (R43)');
$h->write_default_config->run;
$r = $h->token($svc->{client_id}, $svc->{client_secret});
is($r->{status}, 200,
    'the service app gets a token with its original secret (DOT 2+ hash)');
is($h->bearer_get('/protected/', $r->{json}{access_token} // '')->{status},
    200, 'that token opens /protected/');
$r = $h->token($svc->{client_id}, $svc->{client_secret}, auth => 'post');
is($r->{status}, 200, 'the hashed secret also works in the body');
$r = $h->token($svc->{client_id}, substr($svc->{client_secret}, 1));
$h->oauth_error_ok($r, 401, 'invalid_client',
    'a wrong secret against a Django hash');
$h->stop;

# ------------------------------------------- natural keys (no user pk)
my $natural = $t->dir . '/natural-store';
($code, $out, $err) = $t->admin_raw('--store', $natural, 'import-django',
    "$dj/dump-natural.json");
is($code, 0, 'dumpdata --natural-primary --natural-foreign: exit 0')
    or diag($err);
$sum = dj($out) // {};
is_deeply([$sum->{users}{imported}, $sum->{applications}{imported}],
    [7, 4], 'natural keys: 7 users and 4 applications imported');
($code, $out) = $t->admin_raw('--store', $natural, 'user', 'list');
is_deeply([map { $_->{id} } @{dj($out) // []}], [1 .. 7],
    'users without a pk get the ids 1 to 7');

# -------------------------------------------------- hand-written edges
my $edge = $t->dir . '/edge-store';
sub edge { return $t->admin_raw('--store', $edge, @_) }
($code, $out, $err) = edge(qw(user add --username first
    --email first@example.com --password Tr0ub4dor-and-3
    --pbkdf2-iterations 1000));
is($code, 0, 'edge store: user "first" gets id 1') or diag($err);

my $user = sub {
    my ($pk, $name, %f) = @_;
    return { model => 'auth.user', (defined $pk ? (pk => $pk) : ()),
        fields => { username => $name, password => '', %f } };
};
my $application = sub {
    my ($id, %f) = @_;
    return { model => 'oauth2_provider.application', pk => 1,
        fields => { client_id => $id, name => "app $id",
            client_type => 'confidential',
            authorization_grant_type => 'client-credentials',
            client_secret => "secret-of-$id", redirect_uris => '', %f } };
};
my $edge_dump = [
    $user->(1, 'second', email => 'second@example.com'),
    $user->(undef, 'nopk'),
    $user->(50, 'fifty', date_joined => '2024-02-29T12:00:00+02:00',
        last_login => '2024-01-01T00:00:00'),
    $user->(5000000, 'far'),
    $user->(60, 'argon', password => 'argon2$argon2id$v=19$m=102400,t=2,'
        . 'p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo'),
    $user->(61, 'bcrypt', password => 'bcrypt_sha256$$2b$12$abcdefghijklmno'
        . 'pqrstuuJ3yH1l5tb0rAOZ7oVYGv6HdXx6b0JFm'),
    $user->(62, 'controls', first_name => "A\x{1}b\x{85}c",
        last_name => "\x{e9}" x 100, is_active => JSON::PP::false),
    $user->(63, 'early', date_joined => '1969-12-31T23:00:00Z'),
    $user->(64, 'offset', date_joined => '2000-03-01T00:00:00-05:30'),
    { model => 'auth.group', pk => 1, fields => { name => 'g' } },
    { model => 'contenttypes.contenttype', pk => 1, fields => {} },
    { model => 'contenttypes.contenttype', pk => 2, fields => {} },
    $application->('pub-cc', client_type => 'public'),
    $application->('argon-secret', client_secret => 'argon2$argon2id$v=19$'
        . 'm=102400,t=2,p=8$c2FsdA$aGFzaA'),
    $application->('empty-secret', client_secret => ''),
    $application->('uris', authorization_grant_type => 'authorization-code',
        redirect_uris => "javascript:alert(1)  https://ok.example/cb\t"
            . 'com.example.app:/cb https://ok.example/cb'),
    $application->('nameless', name => ''),
    $application->('device', authorization_grant_type => 'device-code'),
    $application->("\x{fc}n\x{ef}code"),
    $application->('12345'),
];
my $edge_file = $t->dir . '/edge.json';
OAuth2Test::write_file($edge_file, $json->encode($edge_dump));
($code, $out, $err) = edge('import-django', $edge_file);
is($code, 0, 'the hand-written dump: exit 0') or diag($err);
$sum = dj($out) // {};
@w = @{$sum->{warnings} // []};
is_deeply($sum->{users}, { imported => 9, skipped => 0,
    unusable_passwords => 9 }, 'edge users: 9 imported, all unusable');
is_deeply($sum->{applications}, { imported => 5, skipped => 3 },
    'edge applications: 5 imported, 3 skipped');
($code, $out) = edge(qw(user list));
my %ids = map { $_->{username} => $_->{id} } @{dj($out) // []};
is($ids{first}, 1, 'the existing user keeps id 1');
is($ids{fifty}, 50, 'pk 50 is kept');
ok($ids{second} > 64, 'pk 1 is taken: "second" gets a new id');
is($ids{far}, 5000000, 'pk 5000000, far above the store\'s ids, is kept');
ok((grep { /got a new id.*second \(1\)/ } @w),
    'warning: second got a new id');
my %seen;
is(scalar(grep { !$seen{$_}++ } values %ids), 10, 'the ten ids are distinct');

# a deleted user's id is never given again: its OpenID Connect sub, its
# JWTs' sub and user_id would name a second person at every relying party
{
    my ($c, $o, $e) = edge(qw(user add --username doomed
        --email doomed@example.com --password Tr0ub4dor-and-3
        --pbkdf2-iterations 1000));
    my $doomed = (dj($o) // {})->{id};
    ok($doomed, "a user \"doomed\" (id $doomed)") or diag($e);
    ($c) = edge('user', 'delete', 'doomed');
    is($c, 0, '... deleted');
    my $file = $t->dir . '/usurper.json';
    OAuth2Test::write_file($file, $json->encode([$user->($doomed, 'usurper')]));
    ($c, $o, $e) = edge('import-django', $file);
    is($c, 0, "a dump whose user has the deleted user's pk: exit 0") or diag($e);
    my @warn = @{(dj($o) // {})->{warnings} // []};
    ($c, $o) = edge(qw(user show usurper));
    my $got = (dj($o) // {})->{id} // 0;
    cmp_ok($got, '>', $doomed, "... the new user gets a new id ($got), not the deleted one's");
    ok((grep { /got a new id.*deleted user's.*usurper \($doomed\)/ } @warn),
        '... and a warning says so') or diag(join "\n", @warn);
}

# a hash of more PBKDF2 iterations than twice the configured ones (and
# Django 5.2's 1,000,000) is not kept: each wrong guess at it would cost
# them all (up to 10^8, seconds of a hash thread); Django 5.2's is kept
{
    my $tail = '$salt$' . ('A' x 43) . '=';
    my $file = $t->dir . '/costly.json';
    OAuth2Test::write_file($file, $json->encode([
        $user->(undef, 'costly', password => "pbkdf2_sha256\$50000000$tail"),
        $user->(undef, 'django52', password => "pbkdf2_sha256\$1000000$tail"),
        $application->('costly-secret', client_secret => "pbkdf2_sha256\$3000000$tail")]));
    my ($c, $o, $e) = edge('import-django', $file);
    is($c, 0, 'a dump of costly hashes: exit 0') or diag($e);
    my @warn = @{(dj($o) // {})->{warnings} // []};
    my $dump = OAuth2Test::dump_store($edge);
    like($dump, qr/"username":"costly"[^}]*"password":"!costly"/,
        'a user hash of 50,000,000 iterations is stored unusable');
    like($dump, qr/"username":"django52"[^}]*"password":"pbkdf2_sha256\$1000000\$/,
        "Django 5.2's 1,000,000 is kept");
    ok((grep { /more PBKDF2 iterations than 1200000.*costly/ } @warn),
        '... and a warning names the costly one') or diag(join "\n", @warn);
    ok((grep { /costly-secret.*more PBKDF2 iterations than 1200000/ } @warn),
        'an application secret of 3,000,000 iterations: not kept, a warning says so')
        or diag(join "\n", @warn);
    unlike($dump, qr/pbkdf2_sha256\$(50000000|3000000)\$/,
        'neither costly hash is in the store');
}
ok((grep { /password hash is argon2.*: argon$/ } @w),
    'warning: an argon2 hash cannot be verified');
ok((grep { /password hash is bcrypt_sha256.*: bcrypt$/ } @w),
    'warning: a bcrypt_sha256 hash cannot be verified');
ok((grep { /no usable password in Django/ } @w),
    'warning: empty passwords are unusable');
ok((grep { /first or last name was cut.*: controls$/ } @w),
    'warning: names cut to 150 bytes and stripped of control characters');
ok((grep { /^1 record of 'auth.group' ignored$/ } @w),
    'warning: the auth.group record ignored');
ok((grep { /^2 records of 'contenttypes.contenttype' ignored$/ } @w),
    'warning: two contenttypes records ignored');
my $edump = OAuth2Test::dump_store($edge);
like($edump, qr/"username":"fifty".*"date_joined":1709200800/,
    'date_joined with +02:00 is converted to UTC');
like($edump, qr/"username":"fifty".*"last_login":1704067200/,
    'a naive last_login is taken as UTC');
like($edump, qr/"username":"early".*"date_joined":-3600/,
    'a date before 1970 is negative');
like($edump, qr/"username":"offset".*"date_joined":951888600/,
    'date_joined with -05:30 is converted to UTC');
like($edump, qr/"username":"controls","email":"","first_name":"Abc",/,
    'control characters (C0 and C1) are stripped from names');
# (mdb_dump -p writes the bytes of é as \c3\a9)
like($edump, qr/"username":"controls".*"last_name":"(?:\\c3\\a9){75}"/,
    'a 200-byte last name is cut to 150 bytes at a character boundary');
like($edump, qr/"username":"argon".*"password":"!argon2"/,
    'the argon2 user\'s password is "!argon2"');

($code, $out) = edge(qw(app list));
my %eapps = map { $_->{client_id} => $_ } @{dj($out) // []};
ok(!$eapps{'pub-cc'}, 'a public client_credentials application is skipped');
ok((grep { /'pub-cc'.*skipped: a public client cannot use client_cred/ } @w),
    'warning: public client_credentials (RFC 6749 4.4)');
ok(!$eapps{12345}, 'a client_id of digits only is skipped');
ok((grep { /'12345'.*skipped: a client_id that reads as a number would read as a user's id/ } @w),
    'warning: its tokens\' sub would read as a user\'s id (R41)');
ok(!$eapps{device}, 'an unknown grant type is skipped');
ok((grep { /'device'.*unknown authorization_grant_type 'device-code'/ } @w),
    'warning: unknown grant type');
is_deeply($eapps{uris}{redirect_uris}, ['https://ok.example/cb',
    'com.example.app:/cb'], 'redirect URIs split on any whitespace, '
    . 'deduplicated, javascript: dropped (R22)');
ok((grep { /'javascript:alert\(1\)' dropped/ } @w),
    'warning: javascript: redirect URI dropped');
is($eapps{nameless}{name}, 'nameless',
    'an application without a name is named by its client_id');
ok($eapps{"\x{fc}n\x{ef}code"}, 'a UTF-8 client_id is kept');
ok((grep { /'argon-secret'.*secret \(argon2\) cannot be verified/ } @w),
    'warning: an argon2 client secret cannot be verified');
ok((grep { /'empty-secret'.*secret \(empty\) cannot be verified/ } @w),
    'warning: an empty client secret cannot be verified');
like($edump, qr/"client_id":"argon-secret".*"secret_hash":"!argon2"/,
    'the argon2 secret is stored unusable');
ok(index($edump, 'secret-of-nameless') < 0,
    'clear secrets of the hand-written dump are not stored (R43)');

($code, $out, $err) = edge(qw(user add --username later
    --email later@example.com --password Tr0ub4dor-and-3
    --pbkdf2-iterations 1000));
ok((dj($out) // {})->{id} > $ids{far},
    'user add after the edge import gets a fresh id');

# R41: a client_id that a resource server's int() (Python) or Number()
# (JavaScript) reads as a number is skipped: its tokens' sub would read as
# a user's id.  Each candidate is judged by Debian's python3 and node
{
    my @ids = ('12345', ' 42', "42\x{2003}", '+1', '-7', "\x{ff11}", '1_000',
        "\x{a0}9\x{3000}", "\x{663}\x{664}", '0x2A', '0o17', '0B101', '1e3',
        '.5', '5.', '-Infinity', '1E+2', ' ', "\x{feff}8", '3kF9abcdef', '1e',
        '0x', '1_', '_1', '1__0', 'Infinityx', '1.2.3', 'DEADBEEF', 'inf',
        'nan', '0x1G', "\x{b2}", 'e5', '++1', 'app-1', " \x{663}\x{664}");
    my $list = $t->dir . '/numbers.json';
    OAuth2Test::write_file($list, $json->encode(\@ids));
    my %py = map { $_ => 1 } @{dj(scalar `/usr/bin/python3 -c '
import json, sys
def num(s):
    try:
        int(s)
        return True
    except ValueError:
        return False
print(json.dumps([s for s in json.load(open(sys.argv[1], encoding="utf-8")) if num(s)]))
' '$list'`) // []};
    my %js = map { $_ => 1 } @{dj(scalar `node -e '
const ids = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(JSON.stringify(ids.filter((s) => !Number.isNaN(Number(s)))));
' '$list'`) // []};
    ok($py{'+1'} && $py{"\x{663}\x{664}"} && !$py{'0x2A'},
        'python3 judged the candidates');
    ok($js{'0x2A'} && $js{'1e3'} && !$js{"\x{663}\x{664}"},
        'node judged the candidates');
    my $store = $t->dir . '/numbers-store';
    my $dump = $t->dir . '/numbers-dump.json';
    OAuth2Test::write_file($dump,
        $json->encode([map { $application->($_) } @ids]));
    my ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $dump);
    is($c, 0, 'client_ids that read as numbers: exit 0') or diag($e);
    my @warned = @{(dj($o) // {})->{warnings} // []};
    ($c, $o) = $t->admin_raw('--store', $store, qw(app list));
    my %kept = map { $_->{client_id} => 1 } @{dj($o) // []};
    for my $id (@ids) {
        my $number = $py{$id} || $js{$id};
        my $shown = $json->encode($id);
        is(!$kept{$id}, !!$number, 'client_id ' . $shown . ($number
            ? ' reads as a number (' . join('/', $py{$id} ? 'int' : (),
                $js{$id} ? 'Number' : ()) . '): skipped (R41)'
            : ' reads as no number: kept'));
    }
    is(scalar(grep { /reads as a number would read as a user's id/ }
        @warned), scalar(grep { $py{$_} || $js{$_} } @ids),
        'each skipped one is warned of');
}

# stdin
{
    my $in = OAuth2Test::write_file($t->dir . '/stdin.json', $json->encode(
        [$user->(7, 'piped', password => 'x')]));
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', $in or POSIX::_exit(127);
        open STDOUT, '>', "$in.out" or POSIX::_exit(127);
        open STDERR, '>', "$in.err" or POSIX::_exit(127);
        exec { $OAuth2Test::ADMIN } $OAuth2Test::ADMIN, '--store', $edge,
            'import-django', '-' or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    is($? >> 8, 0, 'import-django - reads stdin');
    is((dj(OAuth2Test::_slurp("$in.out")) // {})->{users}{imported}, 1,
        'one user imported from stdin');
}

# records the store would refuse are mended or skipped, each with a
# warning, and the rest of the dump goes in: a name cut where a character
# would be split, emails with controls, bad client_ids and client_types
my $mended = $t->dir . '/mended-store';
my $mended_file = OAuth2Test::write_file($t->dir . '/mended.json',
    $json->encode([
        # byte 150 of "a" and é x 100 is the first of an é's two bytes
        $user->(1, 'oddcut', last_name => 'a' . "\x{e9}" x 100),
        $user->(2, 'c0mail', email => "c0\x{1}\@example.com"),
        $user->(3, 'c1mail', email => "c1\x{85}\@example.com"),
        $application->("tab\tid", name => 'tab id'),
        $application->('x' x 201, name => 'long id'),
        $application->('bogus-type', client_type => 'bogus',
            authorization_grant_type => 'password'),
        $application->('capital-type', client_type => 'Confidential',
            authorization_grant_type => 'password'),
        $application->('good'),
    ]));
($code, $out, $err) = $t->admin_raw('--store', $mended, 'import-django',
    $mended_file);
is($code, 0, 'mended records: exit 0, nothing refused by the store')
    or diag($err);
$sum = dj($out) // {};
@w = @{$sum->{warnings} // []};
is_deeply([$sum->{users}{imported}, $sum->{applications}],
    [3, { imported => 1, skipped => 4 }],
    'mended records: 3 users imported, 1 application imported, 4 skipped');
($code, $out) = $t->admin_raw('--store', $mended, qw(user list));
my %mu = map { $_->{username} => $_ } @{dj($out) // []};
is($mu{oddcut}{last_name}, 'a' . "\x{e9}" x 74,
    'a 201-byte last name is cut to 149 bytes, before the split é');
ok((grep { /first or last name was cut.*: oddcut$/ } @w),
    'warning: oddcut\'s last name was cut');
is_deeply([map { $mu{$_}{email} } qw(c0mail c1mail)], ['', ''],
    'emails with a C0 or a C1 control character are dropped');
ok((grep { /2 users' emails were dropped.*: c0mail, c1mail$/ } @w),
    'warning: c0mail\'s and c1mail\'s emails were dropped');
($code, $out) = $t->admin_raw('--store', $mended, qw(app list));
is_deeply([map { $_->{client_id} } @{dj($out) // []}], ['good'],
    'only the application with a valid client_id and client_type is imported');
ok((grep { /'tab id'.*skipped: the client_id is not 1 to 200 bytes/ } @w),
    'warning: a client_id with a tab is skipped');
ok((grep { /'long id'.*skipped: the client_id is not 1 to 200 bytes/ } @w),
    'warning: a 201-byte client_id is skipped');
ok((grep { /'bogus-type'.*skipped: unknown client_type 'bogus'/ } @w),
    'warning: client_type "bogus" is skipped (R18)');
ok((grep { /'capital-type'.*skipped: unknown client_type 'Confidential'/ }
    @w), 'warning: client_type "Confidential" is skipped, not taken for '
    . 'public (R18)');

# ------------------------------------------------------------ bad input
# exit 1, "nothing was imported", the store untouched (here: not created)
my $none = $t->dir . '/never-store';
my $deep = '[' x 100000 . ']' x 100000;
my $ok_user = '{"model":"auth.user","pk":1,"fields":{"username":"a",'
    . '"password":"x"}}';
for my $c (
    ['', 'an empty file'],
    ['nope', 'not JSON'],
    ["\x{ef}\x{bb}\x{bf}[]", 'a byte order mark'],
    ['[] []', 'two values'],
    ['[],', 'trailing garbage'],
    ['{"model":"auth.user"}', 'an object at the top level'],
    ['"auth.user"', 'a string at the top level'],
    ['[1]', 'a record that is a number'],
    ['[{"pk":1}]', 'a record without a model'],
    ['[{"model":["auth.user"]}]', 'a model that is not a string'],
    ['[{"model":"auth.user","fields":[]}]', 'fields that are an array'],
    ['[{"model":"auth.user","pk":1}]', 'a user without fields'],
    ['[{"model":"auth.user","fields":{"password":"x"}}]',
        'a user without a username'],
    ['[{"model":"auth.user","fields":{"username":"a"}}]',
        'a user without a password'],
    ['[{"model":"auth.user","fields":{"username":1,"password":"x"}}]',
        'a username that is a number'],
    ['[{"model":"auth.user","pk":"1","fields":{"username":"a",'
        . '"password":"x"}}]', 'a pk that is a string'],
    ['[{"model":"auth.user","pk":0,"fields":{"username":"a",'
        . '"password":"x"}}]', 'pk 0'],
    ['[{"model":"auth.user","pk":-3,"fields":{"username":"a",'
        . '"password":"x"}}]', 'a negative pk'],
    ['[{"model":"auth.user","pk":1e3,"fields":{"username":"a",'
        . '"password":"x"}}]', 'a pk that is a real number'],
    ['[{"model":"auth.user","pk":123456789012345678901234567890,'
        . '"fields":{"username":"a","password":"x"}}]', 'a 30-digit pk'],
    # the ids after an imported one go on from it: 2^63 - 1 left every
    # later user an id no client reads as a number
    ['[{"model":"auth.user","pk":9223372036854775807,'
        . '"fields":{"username":"a","password":"x"}}]', 'pk 2^63 - 1'],
    ['[{"model":"auth.user","pk":9007199254740992,'
        . '"fields":{"username":"a","password":"x"}}]', 'pk 2^53'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"is_staff":"true"}}]', 'is_staff as a string'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"is_active":1}}]', 'is_active as a number'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"email":["a@b"]}}]', 'an email that is an array'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"date_joined":"yesterday"}}]', 'a date that is not ISO 8601'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"date_joined":"2023-02-29T00:00:00Z"}}]', 'February 29 of 2023'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"date_joined":"2024-01-01T24:00:00Z"}}]', 'hour 24'],
    ['[{"model":"auth.user","fields":{"username":"a","password":"x",'
        . '"last_login":1700000000}}]', 'a last_login that is a number'],
    ['[{"model":"auth.user","pk":1,"pk":2,"fields":{"username":"a",'
        . '"password":"x"}}]', 'a key given twice (pk)'],
    ['[{"model":"auth.user","fields":{"username":"a","username":"b",'
        . '"password":"x"}}]', 'a key given twice (username)'],
    ["[$ok_user,$ok_user]", 'a username given twice'],
    ['[{"model":"auth.user","pk":1,"fields":{"username":"a",'
        . '"password":"x"}},{"model":"auth.user","pk":1,"fields":'
        . '{"username":"b","password":"x"}}]', 'a pk given twice'],
    ['[{"model":"oauth2_provider.application","fields":{"client_id":"c",'
        . '"client_type":"public","authorization_grant_type":"password"}},'
        . '{"model":"oauth2_provider.application","fields":{"client_id":'
        . '"c","client_type":"public","authorization_grant_type":'
        . '"password"}}]', 'a client_id given twice'],
    ['[{"model":"oauth2_provider.application","fields":{"client_type":'
        . '"public","authorization_grant_type":"password"}}]',
        'an application without a client_id'],
    ['[{"model":"oauth2_provider.application","fields":{"client_id":"c",'
        . '"client_type":"public","authorization_grant_type":"password",'
        . '"redirect_uris":["https://a.example/"]}}]',
        'redirect_uris as an array'],
    ['[{"model":"auth.user","fields":{"username":"a\u0000b",'
        . '"password":"x"}}]', 'a NUL in a string (\u0000)'],
    ['[{"model":"auth.user","fields":{"username":"\ud800",'
        . '"password":"x"}}]', 'a lone surrogate'],
    ["[{\"model\":\"auth.user\",\"fields\":{\"username\":\"a\xff\","
        . '"password":"x"}}]', 'invalid UTF-8'],
    ["[{\"model\":\"auth.user\",\"fields\":{\"username\":\"\xc0\xaf\","
        . '"password":"x"}}]', 'an overlong UTF-8 form'],
    ['[1e999999]', 'a number overflow'],
    ['[NaN]', 'NaN'],
    ['[{"model":"auth.user",}]', 'a trailing comma'],
    ["[{'model':'auth.user'}]", 'single quotes'],
    ['[/* c */]', 'a comment'],
    [$deep, '100000 nested arrays'],
    ['[' . ('{"a":' x 40) . '1' . ('}' x 40) . ']',
        '40 nested objects'],
)
{
    my ($text, $name) = @$c;
    my $f = OAuth2Test::write_file($t->dir . '/bad.json', $text);
    my ($code, $out, $err) = $t->admin_raw('--store', $none,
        'import-django', $f);
    is($code, 1, "$name: exit 1");
    like($err, qr/nothing was imported/, "$name: \"nothing was imported\"");
    is($out, '', "$name: nothing on stdout");
}
{
    my $f = $t->dir . '/huge.json';
    open my $fh, '>', $f or die "$f: $!";
    truncate $fh, 257 * 1024 * 1024 or die "truncate: $!";
    close $fh;
    my ($code, $out, $err) = $t->admin_raw('--store', $none,
        'import-django', $f);
    is($code, 1, 'a 257 MiB file: exit 1');
    like($err, qr/larger than 256 MiB/, 'a 257 MiB file: "larger than 256 '
        . 'MiB"');
    unlink $f;
}
{
    # a pipe has no size to fstat: the read stops at the cap.  "[]" and
    # spaces would be an empty dump, imported (exit 0), were it smaller
    my ($code, $out, $err) = $t->_run_cmd('sh', '-c',
        '{ printf "[]"; head -c 269484032 /dev/zero | tr "\0" " "; } | '
        . '"$0" --store "$1" import-django -', $OAuth2Test::ADMIN, $none);
    is($code, 1, '257 MiB on stdin through a pipe: exit 1 (R72)');
    like($err, qr/^oauth2-admin: stdin: larger than 256 MiB; nothing was /,
        '257 MiB on stdin: "larger than 256 MiB"');
}
{
    # nesting is counted before jansson parses, whatever the record's model
    my $rec = '{"model":"auth.group","fields":%s}';
    my ($deep, $shallow) = map { sprintf $rec, '{"a":' x $_ . '1' . '}' x $_ }
        40, 20;
    my $f = OAuth2Test::write_file($t->dir . '/deep.json', "[$deep]");
    my ($code, $out, $err) = $t->admin_raw('--store', $none,
        'import-django', $f);
    is($code, 1, 'an ignored record 42 levels deep: exit 1 (R72)');
    like($err, qr/nested deeper than 32 levels; nothing was imported/,
        'an ignored record 42 levels deep: "nested deeper than 32 levels"');
    $f = OAuth2Test::write_file($t->dir . '/shallow.json', "[$shallow]");
    ($code, $out, $err) = $t->admin_raw('--store', $t->dir . '/shallow-store',
        'import-django', $f);
    is($code, 0, 'the same record 22 levels deep: exit 0') or diag($err);
    is_deeply((dj($out) // {})->{warnings},
        ["1 record of 'auth.group' ignored"],
        'the record 22 levels deep is ignored');
}
for my $c ([$t->dir . '/no-such.json', 'a missing file', qr/cannot open/],
    [$t->dir, 'a directory', qr/directory/])
{
    my ($f, $name, $re) = @$c;
    my ($code, $out, $err) = $t->admin_raw('--store', $none,
        'import-django', $f);
    is($code, 1, "$name: exit 1");
    like($err, $re, "$name: says why");
}
ok(!-e $none, 'no bad input created the store');

# ------------------------------------------------- tokens: bad records
# A record that is not what dumpdata writes (a token that is not a
# string, a date that is none, a key of the wrong kind, a token given
# twice) refuses the dump: exit 1, the store as it was.  A well-formed
# token no client could present here (empty, over 4096 bytes, not
# token68 / visible ASCII) or without a scope is skipped and counted.
{
    my $store = $t->dir . '/token-store';
    my @base = (
        { model => 'auth.user', pk => 1, fields => { username => 'tu',
            password => '' } },
        { model => 'oauth2_provider.application', pk => 7, fields => {
            client_id => 'tapp', name => 'tapp', client_type => 'confidential',
            authorization_grant_type => 'password', client_secret => 'x' x 64,
            redirect_uris => '' } });
    my $at = sub {
        my ($pk, %f) = @_;
        return { model => 'oauth2_provider.accesstoken', pk => $pk,
            fields => { token => "tok$pk" . ('x' x 20), application => 7,
                user => 1, scope => 'read', expires => '2999-01-01T00:00:00Z',
                created => '2024-01-01T00:00:00Z', %f } };
    };
    my $rt = sub {
        my ($pk, %f) = @_;
        return { model => 'oauth2_provider.refreshtoken', pk => $pk,
            fields => { token => "ref$pk" . ('y' x 20), application => 7,
                user => 1, access_token => undef, revoked => undef, %f } };
    };
    my $first = OAuth2Test::write_file($t->dir . '/token-first.json',
        $json->encode([@base, $at->(1)]));
    my ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $first);
    is($c, 0, 'a store with one imported token') or diag($e);
    my $before = OAuth2Test::dump_store($store);
    for my $case (
        [[$at->(2, token => 12345)], 'a token that is a number', qr/"token" is not a string/],
        [[$at->(2, token => ['a'])], 'a token that is an array', qr/"token" is not a string/],
        [[$at->(2, token => undef)], 'a null token', qr/no "token"/],
        [[do { my $r = $at->(2); delete $r->{fields}{token}; $r }],
            'a token without a value', qr/no "token"/],
        [[$at->(2), $at->(3, token => $at->(2)->{fields}{token})],
            'an access token given twice', qr/given again/],
        [[$at->(2), $rt->(3, token => $at->(2)->{fields}{token})],
            'a refresh token with an access token\'s value', qr/given again/],
        [[$rt->(2), $rt->(3, token => $rt->(2)->{fields}{token})],
            'a live refresh token given twice', qr/given again/],
        [[$at->(2, expires => 'tomorrow')], 'an expires that is no date',
            qr/"expires" is not an ISO 8601 date-time/],
        [[$at->(2, expires => 32472144000)], 'an expires that is a number',
            qr/"expires" is not a string/],
        [[$at->(2, expires => undef)], 'an access token without expires',
            qr/no "expires"/],
        [[$at->(2, expires => '2024-02-30T00:00:00Z')], 'February 30',
            qr/"expires" is not an ISO 8601/],
        [[$at->(2, created => 'now')], 'a created that is no date',
            qr/"created" is not an ISO 8601/],
        [[$rt->(2, revoked => 'yes')], 'a revoked that is no date',
            qr/"revoked" is not an ISO 8601/],
        [[$at->(2, user => 'tu')], 'a user that is a string',
            qr/"user" is not a pk or a natural key/],
        [[$at->(2, application => ['a', 'b'])], 'a two-part natural key',
            qr/"application" is not a pk or a natural key/],
        [[$at->(2, application => 0)], 'application pk 0',
            qr/"application" is not a pk or a natural key/],
        [[$rt->(2, access_token => ['x'])], 'a natural key for an access token',
            qr/"access_token" is not a pk/],
        [[{ %{$at->(2)}, pk => '2' }], 'a token pk that is a string', qr/"pk" is not an integer/],
    )
    {
        my ($recs, $name, $re) = @$case;
        my $f = OAuth2Test::write_file($t->dir . '/token-bad.json',
            $json->encode([@base, @$recs]));
        my ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $f);
        is($c, 1, "$name: exit 1");
        like($e, $re, "$name: says why");
        like($e, qr/nothing was imported/, "$name: \"nothing was imported\"");
        unlike($e, qr/tok2x|ref2y/, "$name: the message shows no token");
        is(OAuth2Test::dump_store($store), $before, "$name: the store is unchanged");
    }

    my $f = OAuth2Test::write_file($t->dir . '/token-skips.json',
        $json->encode([
        # pk 1 is taken in the store: tu2 gets a new id, and its tokens
        # go with it; tapp exists: its tokens are skipped
        { model => 'auth.user', pk => 1, fields => { username => 'tu2',
            password => '' } },
        $base[1],
        { model => 'oauth2_provider.application', pk => 8, fields => {
            client_id => 'tapp2', name => 'tapp2', client_type => 'confidential',
            authorization_grant_type => 'password', client_secret => 'z' x 64,
            redirect_uris => '' } },
        $at->(10, token => '', application => 8),
        $at->(11, token => 'a' x 4097, application => 8),
        $at->(12, token => 'has space', application => 8),
        $at->(13, token => "caf\x{e9}tokenvalue", application => 8),
        $rt->(14, token => "tab\ttoken", application => 8),
        $at->(15, scope => '', application => 8),
        $at->(16, scope => " \t", application => 8),
        $at->(17, application => 99),
        $at->(18, application => undef),
        $at->(19, application => 8, user => 99),
        $at->(20, application => 8, user => ['nobody']),
        $at->(21, application => 7),
        $at->(22, application => 8, expires => '2000-01-01T02:00:00+02:00'),
        $at->(23, application => 8, token => 'a' x 4096),
        $rt->(24, application => 8, token => 'visible!ascii~refresh'),
        $rt->(25, application => 8, revoked => '2024-01-01T00:00:00Z',
            token => $at->(23)->{fields}{token}),
        ]));
    ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $f);
    is($c, 0, 'tokens to skip: exit 0') or diag($e);
    my $s = dj($o) // {};
    is_deeply($s->{tokens}, { imported => 2, skipped => 14, access_tokens => 1,
        refresh_tokens => 1, expired => 1, revoked => 1, inactive_user => 0 },
        'tokens to skip: a 4096-byte one and a visible-ASCII refresh token imported, 14 skipped');
    my @sw = @{$s->{warnings} // []};
    ok((grep { /^5 tokens skipped: their values are empty, over 4096 bytes.*: refresh token 14, access token 10, access token 11, access token 12, access token 13$/ } @sw),
        'warning: 5 values no client can present (empty, 4097 bytes, a space, é, a tab)')
        or diag(join "\n", @sw);
    ok((grep { /^2 tokens skipped: they have no scope.*: access token 15, access token 16$/ } @sw),
        'warning: 2 tokens without a scope');
    ok((grep { /^3 tokens skipped: their applications were not imported.*: access token 17, access token 18, access token 21$/ } @sw),
        'warning: the tokens of a missing, a null, and an existing application '
        . '(tapp, skipped: its client_id exists)');
    ok((grep { /^2 tokens skipped: their users were not imported.*: access token 19, access token 20$/ } @sw),
        'warning: the tokens of a missing user, by pk and by natural key');
    ok((grep { /^1 access token skipped: expired: access token 22$/ } @sw),
        'warning: an access token expired in 2000 (+02:00)');
    my $dump = OAuth2Test::dump_store($store);
    unlike($dump, qr/tok1x|aaaaaaaa|visible!ascii/, 'no token value in the store dump');
}

# ------------------------------- Unicode names, as Django's validator takes
# them: a long one (450 bytes: past the record header's length byte), one
# with a compatibility character (Django stored it so: taken as it is);
# one with spaces is skipped, and its warning, cut at 80 bytes, is cut
# between two characters (cut inside one, it was no UTF-8: no JSON string
# held it, and the whole import failed)
{
    my $store = $t->dir . '/unicode-store';
    my $long = "\x{7528}" x 150;
    my $spaced = "\x{7528}\x{6237} " x 30;
    my $f = OAuth2Test::write_file($t->dir . '/unicode.json', $json->encode([
        $user->(1, $long), $user->(2, $spaced), $user->(3, "\x{fb01}x") ]));
    my ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $f);
    is($c, 0, 'a dump of Unicode names: exit 0') or diag($e);
    my $s = dj($o) // {};
    is_deeply([@{$s->{users} // {}}{qw(imported skipped)}], [2, 1],
        '... imports the long name and "\x{fb01}x", skips the one with spaces');
    my ($w) = grep { /user skipped: its username/ } @{$s->{warnings} // []};
    my ($shown) = ($w // '') =~ /\): '(.+)\.\.\.'$/;
    ok(defined $shown && length $shown >= 20 && index($spaced, $shown) == 0,
        '... with a warning that shows the start of the name, whole characters')
        or diag($w // $o);
    # Django on Python 3.12+ takes letters of Unicode 15 (U+31350): the
    # warning does not claim to be its validator's word
    like($w // '', qr/in Unicode 14, the version this release knows/,
        '... and says whose letters: Unicode 14\'s, this release\'s');
    unlike($w // '', qr/\(Django's validator\)/,
        '... not "Django\'s validator", which a newer Python widens');
    ($c, $o) = $t->admin_raw('--store', $store, qw(user list));
    is_deeply([sort map { $_->{username} } @{dj($o) // []}],
        [sort $long, "\x{fb01}x"], 'user list: the two, in UTF-8');
    my $long_bytes = $long;
    utf8::encode($long_bytes);
    ($c, $o) = $t->admin_raw('--store', $store, 'user', 'show', $long_bytes);
    is((dj($o) // {})->{id}, 1, 'user show <the 150 code points>: found by its name');
}

# ------------------------------------------- a custom user model (seed 003)
{
    my $custom = "$dj/dump-custom-user.json";
    my $store = $t->dir . '/custom-default';
    my ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $custom);
    is($c, 0, 'the users.user dump without --user-model: exit 0') or diag($e);
    my $s = dj($o) // {};
    is($s->{users}{imported}, 0, '... imports no user');
    ok((grep { $_ eq "7 records of 'users.user' ignored: if it is the project's "
        . 'AUTH_USER_MODEL, give --user-model users.user' } @{$s->{warnings} // []}),
        '... and warns, naming --user-model users.user')
        or diag(join "\n", @{$s->{warnings} // []});
    is($s->{tokens}{imported}, 1, '... and imports only the token of no user');

    $store = $t->dir . '/custom-model';
    ($c, $o, $e) = $t->admin_raw('--store', $store, 'import-django', $custom,
        '--user-model', 'users.User');
    is($c, 0, 'the users.user dump with --user-model users.User: exit 0') or diag($e);
    $s = dj($o) // {};
    is_deeply($s->{users}, { imported => 7, skipped => 0, unusable_passwords => 2 },
        '... imports the users as from auth.user');
    is($s->{tokens}{imported}, 5, '... and their tokens');
    ok(!(grep { /users\.user/ } @{$s->{warnings} // []}), '... with no warning of users.user');
    ($c, $o) = $t->admin_raw('--store', $store, qw(user list));
    my %cu = map { $_->{username} => $_ } @{dj($o) // []};
    is_deeply([sort keys %cu], [sort qw(admin alice legacy nopass gone staffer),
        "jos\x{e9}"], '... the seven users');
    is_deeply({ map { $_ => $cu{$_}{id} } keys %cu },
        { map { $_ => $duser{$_}{pk} } keys %cu }, '... keeping their Django ids');
    is($cu{alice}{email}, $fields{alice}{email}, '... and their fields');
    like(OAuth2Test::dump_store($store), qr/"username":"alice".*"password":"pbkdf2_sha256\$/,
        '... and their password hashes');

    # the default dump with --user-model users.user: auth.user is then
    # the model to hint at
    ($c, $o) = $t->admin_raw('--store', $t->dir . '/custom-other', 'import-django',
        "$dj/dump.json", '--user-model', 'users.user');
    ok((grep { /^7 records of 'auth.user' ignored: .*--user-model auth.user$/ }
        @{(dj($o) // {})->{warnings} // []}), 'auth.user is hinted at when another model is named');
}

# usage
for my $c ([['import-django'], 'no file'],
    [['import-django', 'a.json', 'b.json'], 'two files'],
    [['import-django', 'a.json', '--pbkdf2-iterations', 'x'],
        '--pbkdf2-iterations x'],
    [['import-django', 'a.json', '--bogus'], 'an unknown option'],
    (map { [['import-django', 'a.json', '--user-model', $_], "--user-model '$_'",
        qr/--user-model: .* is not <app_label>\.<model>/] }
        '', 'users', 'users.', '.user', 'a.b.c', '1app.user', 'users.us-er',
        'users.user ', "users.\x{e9}"),
    (map { [['import-django', 'a.json', '--refresh-token-ttl', $_],
        "--refresh-token-ttl '$_'", qr/--refresh-token-ttl: .* is not a number of seconds/] }
        '0', 'x', '315360001', '-5'))
{
    my ($args, $name, $why) = @$c;
    my ($code, $out, $err) = $t->admin_raw('--store', $none, @$args);
    is($code, 2, "import-django with $name: exit 2");
    like($err, $why, "import-django with $name: says why") if $why;
    like($err, qr/^oauth2-admin: .*\nTry 'oauth2-admin import-django --help'/,
        "import-django with $name: a usage error");
}
($code, $out) = $t->admin(qw(import-django --help));
is($code, 0, 'import-django --help: exit 0');
like($out, qr/dumpdata auth.user oauth2_provider.application/,
    'import-django --help shows the dumpdata command');
like($out, qr/oauth2_provider.accesstoken oauth2_provider.refreshtoken/,
    'import-django --help: the dumpdata command includes the tokens');
like($out, qr/--user-model <app_label.model>/, 'import-django --help: --user-model');

$t->done_testing;
