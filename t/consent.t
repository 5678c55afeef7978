# Remembered consent, as the user and the operator see it (issue 14 item
# 2): the authorized-grants page (oauth2_authorized_grants, as
# django-oauth-toolkit's /o/authorized_tokens/) behind the authorization
# endpoint's session, `oauth2-admin consent list|revoke`, and the daemon's
# /api/users/<id>/consents/.  Revoking a consent revokes the tokens issued
# under it, and prompt=none then gets consent_required.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::Local qw(timegm);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $f = OAuth2Authorize->new($t);
my $PAGE = '/o/authorized_tokens/';

OAuth2Authorize::user_add($t, 'dora', 'Tr0ub4dor-and-3');
OAuth2Authorize::user_add($t, 'bob', 'Lantern-quiet-58');

my $CB = 'https://client.example/cb';
my %grants = (grant => ['authorization_code', 'refresh_token']);
my $web = $t->new_app(name => '<b>"Web" & Co</b>', %grants,
    redirect_uris => [$CB]);
my $other = $t->new_app(name => 'other', %grants, redirect_uris => [$CB]);
my $gone = $t->new_app(name => 'gone', %grants, redirect_uris => [$CB]);
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $plain_app = $t->new_app(name => 'plain', first_party => 1);

$t->write_config(OAuth2Authorize::http_conf($t,
    extra_server => "    location = $PAGE { oauth2_authorized_grants; }\n"
        . $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000);

# the records of the store that name web's client_id, before any grant
my $web_id = $web->{client_id};
sub web_records { my @m = OAuth2Test::dump_store($t->store) =~ /\Q$web_id\E/g; scalar @m }
my $web_baseline = web_records();

sub q_for {
    my ($app, %o) = @_;
    return OAuth2Authorize::query(response_type => 'code',
        client_id => $app->{client_id}, redirect_uri => $CB,
        scope => $o{scope} // 'read', state => 'st-1', prompt => $o{prompt});
}

# code -> token pair through the token endpoint
sub tokens_for {
    my ($app, $session, %o) = @_;
    my $code = $f->code(q_for($app, %o), $session);
    my $r = $f->redeem($code, client => $app, redirect_uri => $CB);
    die "redeem: $r->{status} $r->{body}" unless $r->{status} == 200;
    return ($r->{json}{access_token}, $r->{json}{refresh_token});
}

# the grants page's list items: client_id => the item's HTML
sub items_of {
    my ($r) = @_;
    my %items;
    while ($r->{body} =~ m{<li>(.*?)</li>}gs) {
        my $li = $1;
        $items{$1} = $li if $li =~ /name="client_id" value="([^"]*)"/;
    }
    return \%items;
}

sub page_get { $t->get($PAGE, @_ ? (Cookie => $_[0]) : ()) }

sub page_revoke {
    my ($session, %o) = @_;
    return $t->post_form($PAGE, OAuth2Test::form(%o), Cookie => $session);
}

my $alice = $f->login(q_for($web), 'dora', 'Tr0ub4dor-and-3');
my $bob = $f->login(q_for($web), 'bob', 'Lantern-quiet-58');
ok($alice && $bob, 'alice and bob signed in at the authorization endpoint');

# ----------------------------------------------------------- the page

my $r = page_get($alice);
is($r->{status}, 200, 'the page, signed in: 200');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^text/html},
    'an HTML page');
like(OAuth2Test::header($r, 'Content-Security-Policy') // '',
    qr/frame-ancestors/, 'with CSP frame-ancestors (R26)');
ok(defined OAuth2Test::header($r, 'X-Frame-Options'),
    'and X-Frame-Options (R26)');
is_deeply(items_of($r), {}, 'no grant yet: an empty list');
like($r->{body}, qr/not authorized any application/, 'which says so');

my ($at, $rt) = tokens_for($web, $alice, scope => 'read write');
my ($at_other) = tokens_for($other, $alice);
my ($at_bob) = tokens_for($web, $bob);
is($t->bearer_get('/protected/', $at)->{status}, 200,
    'the access token passes auth_oauth2 (200)');

$r = page_get($alice);
my $items = items_of($r);
is_deeply([sort keys %$items], [sort $web->{client_id}, $other->{client_id}],
    "alice's page lists her two grants");
like($items->{$web->{client_id}} // '',
    qr{&lt;b&gt;&quot;Web&quot; &amp; Co&lt;/b&gt;}, 'the name HTML-escaped');
unlike($r->{body}, qr{<b>"Web"}, 'never raw');
like($items->{$web->{client_id}} // '', qr/read write/, 'with its scopes');
like($items->{$web->{client_id}} // '',
    qr/datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"/, 'and when granted');
my $csrf = OAuth2Authorize::csrf_field($r);
ok(defined $csrf && length $csrf, 'each Revoke form carries a CSRF value');

# the consent is remembered: prompt=none succeeds
$r = $f->get(q_for($web, prompt => 'none'), Cookie => $alice);
my %p = OAuth2Authorize::location_params($r);
ok($r->{status} == 303 && defined $p{code},
    'prompt=none with the remembered consent: a code');

# ------------------------------------------------ bob cannot touch alice's

$r = page_get($bob);
is_deeply([keys %{items_of($r)}], [$web->{client_id}],
    "bob's page lists only his own grant");
my $bob_csrf = OAuth2Authorize::csrf_field($r);
$r = page_revoke($bob, action => 'revoke', csrf_token => $bob_csrf,
    client_id => $other->{client_id});
is($r->{status}, 303, "bob revoking a client he never granted: 303 back");
is(scalar keys %{items_of(page_get($alice))}, 2,
    "alice's grants are untouched");
$r = page_revoke($bob, action => 'revoke', csrf_token => $csrf,
    client_id => $web->{client_id});
is($r->{status}, 403, "alice's CSRF value in bob's session: 403");
is($t->bearer_get('/protected/', $at_bob)->{status}, 200,
    "bob's token still passes");

# ------------------------------------------------------------ bad input

my $before = $t->admin_json('consent', 'list', '--user', 'dora');
for my $case (
    ['no CSRF value', 403, action => 'revoke', client_id => $web->{client_id}],
    ['a wrong CSRF value', 403, action => 'revoke', csrf_token => 'x' x 43,
        client_id => $web->{client_id}],
    ['no client_id', 400, action => 'revoke', csrf_token => $csrf],
    ['an empty client_id', 400, action => 'revoke', csrf_token => $csrf,
        client_id => ''],
    ['a client_id of 300 bytes', 400, action => 'revoke',
        csrf_token => $csrf, client_id => 'a' x 300],
    ['an unknown action', 400, action => 'explode', csrf_token => $csrf,
        client_id => $web->{client_id}],
    )
{
    my ($name, $status, @form) = @$case;
    $r = page_revoke($alice, @form);
    is($r->{status}, $status, "$name: $status");
    like(OAuth2Test::header($r, 'Content-Type') // '', qr{^text/html},
        "$name: an HTML page");
}
$r = $t->post_form($PAGE, 'action=revoke&action=revoke', Cookie => $alice);
is($r->{status}, 400, 'a repeated field: 400');
$r = $t->request('POST', $PAGE, headers => [Cookie => $alice,
    'Content-Type' => 'text/plain'], body => 'action=revoke');
is($r->{status}, 400, 'not a form: 400');
$r = $t->request('PUT', $PAGE, headers => [Cookie => $alice]);
is($r->{status}, 405, 'PUT: 405');
$r = page_revoke($alice, action => 'revoke', csrf_token => $csrf,
    client_id => 'no-such-client');
is($r->{status}, 303, 'an unknown client_id: 303, nothing to revoke');
# a chunked body declares no length: the page refuses it past 16 KiB as
# it reads it (R8), before anything it asks is done
{
    my $big = OAuth2Test::form(action => 'revoke', csrf_token => $csrf,
        client_id => $web->{client_id}) . '&pad=' . ('a' x 20000);
    $r = $t->request('POST', $PAGE, headers => [Cookie => $alice,
        'Content-Type' => 'application/x-www-form-urlencoded',
        'Transfer-Encoding' => 'chunked'],
        body => OAuth2Test::chunked($big, 4096));
    is($r->{status}, 413, 'a chunked form of 20 KiB: 413 (R8)');
}
is_deeply($t->admin_json('consent', 'list', '--user', 'dora'), $before,
    'no bad request changed anything');

# ----------------------------------------------------- revoke from the page

$r = page_revoke($alice, action => 'revoke', csrf_token => $csrf,
    client_id => $web->{client_id});
is($r->{status}, 303, 'Revoke: 303');
is(OAuth2Test::header($r, 'Location'), $PAGE, 'back to the page');
is_deeply([keys %{items_of(page_get($alice))}], [$other->{client_id}],
    'the grant is gone from the list');
is($t->bearer_get('/protected/', $at)->{status}, 401,
    'the access token issued under it: 401 at auth_oauth2');
$r = $f->refresh($rt, $web);
is($r->{status}, 400, 'its refresh token: 400');
is($r->{json}{error}, 'invalid_grant', 'invalid_grant');
is($t->bearer_get('/protected/', $at_other)->{status}, 200,
    'the token of the other application still passes');
is($t->bearer_get('/protected/', $at_bob)->{status}, 200,
    "bob's token from the same application still passes");

# an application the user holds live tokens from without a consent (the
# password grant here; a device approval, or a consent that ran out after
# a last code, whose refresh token lives on) is listed too, and revoked:
# a grant the page does not show is one the user cannot end
my $pw_app = $t->new_app(name => 'by password', grant => ['password', 'refresh_token']);
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'dora', password => 'Tr0ub4dor-and-3', scope => 'read'),
    Authorization => $t->basic($pw_app->{client_id}, $pw_app->{client_secret}));
is($r->{status}, 200, 'a token for dora by the password grant');
my ($pw_at, $pw_rt) = @{$r->{json}}{qw(access_token refresh_token)};
$r = page_get($alice);
$items = items_of($r);
ok(exists $items->{$pw_app->{client_id}},
    'the application she holds tokens from without a consent is listed');
like($items->{$pw_app->{client_id}} // '', qr/by password.*: read;/s,
    '... with its name and the tokens\' scope');
$r = page_revoke($alice, action => 'revoke', csrf_token => $csrf,
    client_id => $pw_app->{client_id});
is($r->{status}, 303, 'Revoke it: 303');
ok(!exists items_of(page_get($alice))->{$pw_app->{client_id}}, '... gone from the list');
is($t->bearer_get('/protected/', $pw_at)->{status}, 401, '... its access token: 401');
is($f->refresh($pw_rt, $pw_app)->{status}, 400, '... its refresh token: 400');
is($t->bearer_get('/protected/', $at_other)->{status}, 200,
    '... the other application\'s token still passes');

# SECURITY: a consent revoked then prompt=none refused
$r = $f->get(q_for($web, prompt => 'none'), Cookie => $alice);
%p = OAuth2Authorize::location_params($r);
is($r->{status}, 303, 'prompt=none after the revocation: a redirect')
    or diag $r->{status};
is($p{error}, 'consent_required', 'with consent_required');
ok(!defined $p{code}, 'and no code');
$r = $f->get(q_for($web), Cookie => $alice);
is($r->{status}, 200, 'without prompt=none: the consent page again');

# ------------------------------------------------------------- sign-in

$r = page_get();
is($r->{status}, 200, 'not signed in: 200');
like($r->{body}, qr/name="password"/, 'the sign-in form');
is_deeply(items_of($r), {}, 'and no grant of anyone');
my $csrf_cookie = OAuth2Test::cookies_of($r)->{oauth2_csrf}{value};
$r = $t->post_form($PAGE, OAuth2Test::form(action => 'login',
    csrf_token => $csrf_cookie, username => 'dora',
    password => 'wrong-password'), Cookie => "oauth2_csrf=$csrf_cookie");
is($r->{status}, 200, 'a wrong password: the form again');
ok(!OAuth2Test::cookies_of($r)->{oauth2_session}, 'and no session');
$r = $t->post_form($PAGE, OAuth2Test::form(action => 'login',
    csrf_token => 'forged', username => 'dora',
    password => 'Tr0ub4dor-and-3'), Cookie => "oauth2_csrf=$csrf_cookie");
is($r->{status}, 403, 'a sign-in without its CSRF cookie value: 403');
$r = $t->post_form($PAGE, OAuth2Test::form(action => 'login',
    csrf_token => $csrf_cookie, username => 'dora',
    password => 'Tr0ub4dor-and-3'), Cookie => "oauth2_csrf=$csrf_cookie");
is($r->{status}, 303, 'signing in on the page: 303');
is(OAuth2Test::header($r, 'Location'), $PAGE, 'back to the page');
# a link whose path starts "//" (nginx still finds the page: it merges
# the slashes and resolves the encoded dot segment) must not send the
# user off-site once signed in: "//evil.example/..." in Location is
# another host
my $odd = '//evil.example/..%2Fo/authorized_tokens/';
$r = $t->get($odd);
is($r->{status}, 200, "the page at $odd (nginx's normalised path): the sign-in form");
my $odd_csrf = OAuth2Test::cookies_of($r)->{oauth2_csrf}{value} // '';
$r = $t->post_form($odd, OAuth2Test::form(action => 'login',
    csrf_token => $odd_csrf, username => 'dora',
    password => 'Tr0ub4dor-and-3'), Cookie => "oauth2_csrf=$odd_csrf");
is($r->{status}, 303, '... signing in there: 303');
like(OAuth2Test::header($r, 'Location') // '', qr{^/[^/]},
    '... to a path of this server, never "//" (another host)');
my $s = OAuth2Test::cookies_of($r)->{oauth2_session}{value};
$r = page_get("oauth2_session=$s");
is_deeply([keys %{items_of($r)}], [$other->{client_id}],
    'then the list of her grants');
$r = page_revoke('', action => 'revoke', csrf_token => $csrf,
    client_id => $other->{client_id});
like($r->{body}, qr/name="password"/,
    'a revoke with no session: the sign-in form');
is(scalar keys %{items_of(page_get($alice))}, 1, 'and nothing revoked');

# cat. 2.1: the session cookie is read as a session's record only: her
# live access token, or a code of hers caught on its way to the client,
# signs nobody in
my $caught = $f->code(q_for($other), $alice);
for my $case (['her access token', $at_other], ['her code', $caught]) {
    my ($name, $value) = @$case;
    $r = page_get("oauth2_session=$value");
    like($r->{body}, qr/name="password"/,
        "$name as the session cookie: the sign-in form (2.1)");
    is_deeply(items_of($r), {}, "$name as the session cookie: no grant listed");
}
is($t->bearer_get('/protected/', $at_other)->{status}, 200,
    'that access token is a live one');

# --------------------------------------------------------------- the CLI

tokens_for($web, $alice, scope => 'read');
my $list = $t->admin_json('consent', 'list', '--user', 'dora');
is(ref $list, 'ARRAY', 'consent list: a JSON array');
is_deeply([map { $_->{client_id} } @$list],
    [sort $web->{client_id}, $other->{client_id}], 'of her two grants');
my ($w) = grep { $_->{client_id} eq $web->{client_id} } @$list;
is($w->{name}, $web->{name}, 'with the application name');
is($w->{scope}, 'read', 'the scope');
like($w->{granted_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'granted_at');
like($w->{expires_at} // '', qr/Z$/, 'expires_at');
# the seconds since the epoch of an RFC 3339 time in UTC, or undef
sub epoch_of {
    my @f = ($_[0] // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/
        or return undef;
    return timegm($f[5], $f[4], $f[3], $f[2], $f[1] - 1, $f[0]);
}
my ($granted, $expires) = map { epoch_of($w->{$_}) } qw(granted_at expires_at);
is(defined $granted && defined $expires ? $expires - $granted : undef,
    365 * 86400, 'expires_at is granted_at plus the consent\'s 365 days');
my ($code, $out, $err) = $t->admin('consent', 'list', '--user', 'nobody');
is($code, 1, 'consent list of an unknown user: exit 1');
like($err, qr/no user/, 'saying so');
($code) = $t->admin('consent', 'list');
is($code, 2, 'consent list without --user: exit 2');
($code) = $t->admin('consent', 'revoke', '--user', 'dora');
is($code, 2, 'consent revoke without --client: exit 2');
($code, $out, $err) = $t->admin('consent', 'revoke', '--user', 'bob',
    '--client', $other->{client_id});
is($code, 1, 'revoking a consent bob never gave: exit 1');
my $cat = $t->admin_json('consent', 'list', '--user', 'dora');
is(scalar @$cat, 2, "alice's consents untouched");
my ($at2) = tokens_for($other, $alice);
my $rv = $t->admin_json('consent', 'revoke', '--user', 'dora', '--client',
    $other->{client_id});
is_deeply($rv, {revoked => JSON::PP::true, client_id => $other->{client_id}},
    'consent revoke: {"revoked": true, "client_id"}');
is($t->bearer_get('/protected/', $at2)->{status}, 401,
    'and the token issued under it is revoked');
is_deeply([map { $_->{client_id} }
        @{$t->admin_json('consent', 'list', '--user', 'dora')}],
    [$web->{client_id}], 'the list without it');

# --------------------------------------------------------------- the API

my $admin = $t->access_token($admin_app, scope => 'read write admin');
my ($root, $plain) = $t->staff_and_plain_users($admin,
    $plain_app->{client_id});
my $alice_id = $t->admin_json('user', 'show', 'dora')->{id};
my $api_path = "/api/users/$alice_id/consents/";
$r = $t->api('GET', $api_path, token => $root);
is($r->{status}, 200, 'GET consents with a staff token: 200');
is_deeply([map { $_->{client_id} } @{$r->{json} // []}],
    [$web->{client_id}], 'the same list');
for my $c (['a plain user', $plain], ['no token', undef]) {
    my ($name, $tok) = @$c;
    $r = $t->api('GET', $api_path, token => $tok);
    ok($r->{status} == 403 || $r->{status} == 401,
        "GET consents with $name: refused ($r->{status})");
    $r = $t->api('DELETE', "$api_path$web->{client_id}/", token => $tok);
    ok($r->{status} == 403 || $r->{status} == 401,
        "DELETE a consent with $name: refused ($r->{status})");
}
is(scalar @{$t->admin_json('consent', 'list', '--user', 'dora')}, 1,
    'the refusals changed nothing');
$r = $t->api('GET', '/api/users/999999/consents/', token => $root);
is($r->{status}, 404, 'an unknown user: 404');
$r = $t->api('DELETE', "${api_path}no-such-client/", token => $root);
is($r->{status}, 404, 'DELETE a consent alice never gave: 404');
$r = $t->api('POST', $api_path, token => $root, json => {});
is($r->{status}, 405, 'POST to the list: 405');
is(OAuth2Test::header($r, 'Allow'), 'GET, HEAD, OPTIONS',
    'POST to the list: Allow: GET, HEAD, OPTIONS');
# OPTIONS as DRF answers it, after the same checks (staff): it describes
# the view and revokes nothing
for my $c (['a plain user', $plain, 403], ['no token', undef, 401]) {
    my ($name, $tok, $status) = @$c;
    is($t->api('OPTIONS', $api_path, token => $tok)->{status}, $status,
        "OPTIONS the consents with $name: $status");
    is($t->api('OPTIONS', "$api_path$web->{client_id}/",
        token => $tok)->{status}, $status,
        "OPTIONS a consent with $name: $status");
}
$t->api_options_ok($api_path, $root, 'GET, HEAD, OPTIONS', 'Consent List');
$t->api_options_ok("$api_path$web->{client_id}/", $root, 'DELETE, OPTIONS',
    'Consent Instance');
my ($at3) = tokens_for($web, $alice);
# a safe method changes nothing: a link prefetch or a read-only tool
# that GETs the consent's URL revokes nothing
$r = $t->api('GET', "$api_path$web->{client_id}/", token => $root);
is($r->{status}, 405, 'GET a consent with a staff token: 405');
is(OAuth2Test::header($r, 'Allow'), 'DELETE, OPTIONS',
    'GET a consent: Allow DELETE, OPTIONS');
is_deeply([map { $_->{client_id} }
        @{$t->admin_json('consent', 'list', '--user', 'dora')}],
    [$web->{client_id}],
    'the GET and OPTIONS revoked nothing: the consent is listed');
is($t->bearer_get('/protected/', $at3)->{status}, 200,
    'and the token issued under it still passes');
$r = $t->api('DELETE', "$api_path$web->{client_id}/", token => $root);
is($r->{status}, 204, 'DELETE with a staff token: 204');
is($t->bearer_get('/protected/', $at3)->{status}, 401,
    'the token issued under it is revoked');
$r = $t->api('GET', $api_path, token => $root);
is_deeply($r->{json}, [], 'the list is empty');

# ------------------------------------- deleting the application or the user

tokens_for($gone, $alice);
tokens_for($gone, $bob);
is(scalar @{$t->admin_json('consent', 'list', '--user', 'bob')}, 2,
    'bob has two grants');
($code, $out, $err) = $t->admin('app', 'delete', $gone->{client_id});
is($code, 0, 'app delete') or diag $err;
is_deeply([map { $_->{client_id} }
        @{$t->admin_json('consent', 'list', '--user', 'dora')}],
    [], "the application's consent is gone from alice's list");
is(scalar @{$t->admin_json('consent', 'list', '--user', 'bob')}, 1,
    "and from bob's");
# bob's consent to web is the only consent left: once bob is deleted, no
# record of the store names web but the application's own
my $n_before = web_records();
($code, $out, $err) = $t->admin('user', 'delete', 'bob');
is($code, 0, 'user delete bob') or diag $err;
my $n_after = web_records();
ok($n_after < $n_before, "bob's records naming web are gone ($n_before -> $n_after)");
is($n_after, $web_baseline, 'none is left but those of before any grant');
($code) = $t->admin('consent', 'list', '--user', 'bob');
is($code, 1, 'consent list of the deleted user: exit 1');

is($t->stop_daemon, 0, 'the daemon exits 0');
$t->daemon_log_ok($at, $rt, $admin, $root, $plain);
$t->done_testing;
