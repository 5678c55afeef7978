# The /o/applications/ pages (issue 3 item 4; seeds 000, 001; docs/security.md
# R26, R71, 2.3 "next"): a staff user logs in, registers an app, sees its
# secret once, uses it at /o/token/, edits and deletes the app, in a real
# headless Chromium (t/browser/web_ui.py) through nginx and the daemon; then
# headers, cookies, CSRF, escaping and bad input over plain HTTP.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IPC::Open2 qw(open2);
use IPC::Open3 qw(open3);
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use Symbol qw(gensym);
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $PYTHON = OAuth2Test::require_browser();

my $t = OAuth2Test->new;
my $ADMIN = $OAuth2Test::ADMIN;

# oauth2-admin user add ... --password-stdin
sub user_add {
    my ($name, $password, @flags) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $ADMIN, '--store', $t->store,
        'user', 'add', '--username', $name, '--email', "$name\@example.com",
        '--password-stdin', @flags);
    print $in "$password\n";
    close $in;
    my $o = do { local $/; <$out> } // '';
    my $e = do { local $/; <$err> } // '';
    waitpid $pid, 0;
    die "user add $name: exit " . ($? >> 8) . ": $o$e" if $?;
}

my ($staff, $staff_pw) = ('admin', 'correct horse battery staple');
user_add($staff, $staff_pw, '--staff');
user_add('alice', 'alice-password');    # not staff

# the authorization server's browser pages beside the daemon's
my $BROWSER_PAGES = "    location = /o/authorize/ { oauth2_authorize; }\n"
    . "    location = /o/device/ { oauth2_device; }\n"
    . "    location = /o/authorized_tokens/ { oauth2_authorized_grants; }\n";
$t->write_config($t->default_http(
    extra_server => $t->daemon_locations . $BROWSER_PAGES))->run;
$t->run_daemon;

my $base = 'http://127.0.0.1:' . $t->port;

############################################################ the browser

my $t0 = time;
my @cmd = ($PYTHON, "$FindBin::Bin/browser/web_ui.py", $base, $staff,
    $staff_pw);
push @cmd, '--screenshot', $ENV{WEB_UI_SCREENSHOT}
    if $ENV{WEB_UI_SCREENSHOT};
my $py = open2(my $from, my $to, @cmd);
my ($id, $secret, $deleted, $done);
while (my $line = <$from>) {
    chomp $line;
    if ($line =~ /^ok - (.*)$/) {
        pass("browser: $1");
    } elsif ($line =~ /^not ok - (.*?)(?: # (.*))?$/) {
        fail("browser: $1");
        diag($2) if defined $2;
    } elsif ($line =~ /^credentials (\S+) (\S+)$/) {
        ($id, $secret) = ($1, $2);
        my $r = $t->token($id, $secret);
        is($r->{status}, 200,
            'the id and secret shown in the browser get a token at /o/token/');
        like($r->{json}{access_token} // '', qr/^[A-Za-z0-9_-]{43}$/,
            'the token response has an access_token');
        my ($code, $out) = $t->admin('app', 'show', $id);
        unlike($out, qr/\Q$secret\E/, 'the store does not hold the secret');
        print $to "go\n";
        $to->flush;
    } elsif ($line =~ /^deleted (\S+)$/) {
        $deleted = $1;
        my $r = $t->token($id, $secret);
        is($r->{status}, 401,
            'after Delete in the browser the token endpoint answers 401');
    } elsif ($line =~ /^done (\d+) failures$/) {
        $done = 1;
    } else {
        diag("web_ui.py: $line");
    }
}
close $to;
waitpid $py, 0;
is($? >> 8, 0, 'web_ui.py exits 0');
ok($done, 'web_ui.py ran to the end');
ok(defined $id, 'the browser registered an app');
is($deleted, $id, 'the browser deleted that app');
diag(sprintf 'browser part: %.1fs', time - $t0) if $ENV{VERBOSE};

############################################################ plain HTTP

sub cookies_of { OAuth2Test::cookies_of(@_) }

sub csrf_field {
    my ($r) = @_;
    return $r->{body} =~ /name="csrf" value="([^"]+)"/ ? $1 : '';
}

# GET the login page, then POST it: (response, csrf cookie)
sub http_login {
    my ($user, $pw, %o) = @_;
    my $g = $t->get('/o/applications/login/');
    my $csrf = cookies_of($g)->{oauth2_csrf}{value} // '';
    my $body = OAuth2Test::form(csrf => $o{csrf} // csrf_field($g),
        username => $user, password => $pw,
        defined $o{next} ? (next => $o{next}) : ());
    my $r = $t->post_form('/o/applications/login/', $body,
        Cookie => "oauth2_csrf=" . ($o{cookie} // $csrf),
        defined $o{site} ? ('Sec-Fetch-Site' => $o{site}) : ());
    return ($r, $g);
}

sub session_of {
    my ($r) = @_;
    my $v = cookies_of($r)->{oauth2_session}{value};
    return defined $v && length $v ? "oauth2_session=$v" : undef;
}

my %app = (name => 'csrf-probe', client_type => 'confidential',
    grant_client_credentials => '1');
sub app_form { my %f = (%app, @_); return OAuth2Test::form(%f) }

sub app_names {
    my ($code, $out) = $t->admin('app', 'list');
    my $list = eval { JSON::PP->new->decode($out) } // [];
    return map { $_->{name} } @$list;
}

# the login page: R26 headers, the pre-session CSRF cookie
my ($r, $g) = http_login($staff, $staff_pw);
is($g->{status}, 200, 'GET /o/applications/login/: 200');
my $csp = OAuth2Test::header($g, 'Content-Security-Policy') // '';
like($csp, qr/default-src 'none'/, "CSP default-src 'none' (R26)");
like($csp, qr/frame-ancestors 'none'/, "CSP frame-ancestors 'none' (R26)");
like($csp, qr/form-action 'self'/, "CSP form-action 'self'");
like($csp, qr/base-uri 'none'/, "CSP base-uri 'none'");
unlike($csp, qr/script-src|unsafe-eval/, 'CSP allows no script');
is(OAuth2Test::header($g, 'X-Frame-Options'), 'DENY',
    'X-Frame-Options DENY (R26)');
is(OAuth2Test::header($g, 'Referrer-Policy'), 'no-referrer',
    'Referrer-Policy no-referrer (R26)');
is(OAuth2Test::header($g, 'X-Content-Type-Options'), 'nosniff',
    'X-Content-Type-Options nosniff');
is(OAuth2Test::header($g, 'Cross-Origin-Opener-Policy'), 'same-origin',
    'Cross-Origin-Opener-Policy same-origin');
like(OAuth2Test::header($g, 'Cache-Control') // '', qr/no-store/,
    'Cache-Control no-store');
like(OAuth2Test::header($g, 'Content-Type') // '',
    qr{^text/html; charset=utf-8$}i, 'Content-Type text/html; charset=utf-8');
unlike($g->{body}, qr{<script|https?://}i,
    'the page loads no script and no third-party asset');
my $cc = cookies_of($g)->{oauth2_csrf}{raw} // '';
like($cc, qr/;\s*HttpOnly/i, 'the CSRF cookie is HttpOnly');
like($cc, qr/;\s*SameSite=Strict/i, 'the CSRF cookie is SameSite=Strict');
like($cc, qr{;\s*Path=/o/applications/}, 'the CSRF cookie is for the pages');

# the session cookie
is($r->{status}, 303, 'login over HTTP: 303');
is(OAuth2Test::header($r, 'Location'), '/o/applications/',
    'login without next goes to the list');
my $sc = cookies_of($r)->{oauth2_session}{raw} // '';
like($sc, qr/^oauth2_session=[A-Za-z0-9_-]{43};/,
    'the session cookie holds 256 random bits');
like($sc, qr/;\s*HttpOnly/i, 'the session cookie is HttpOnly');
like($sc, qr/;\s*SameSite=Strict/i, 'the session cookie is SameSite=Strict');
like($sc, qr{;\s*Path=/o/applications/}, 'the session cookie is for the pages');
unlike($sc, qr/;\s*Secure/i, 'no Secure flag over plain http');
my $session = session_of($r);

# signing in again in a browser that holds a session ends that session:
# a session planted in the browser before the sign-in never becomes the
# signed-in one (session fixation)
{
    my $g2 = $t->get('/o/applications/login/');
    my $csrf2 = cookies_of($g2)->{oauth2_csrf}{value} // '';
    my $again = $t->post_form('/o/applications/login/',
        OAuth2Test::form(csrf => csrf_field($g2), username => $staff,
            password => $staff_pw),
        Cookie => "oauth2_csrf=$csrf2; $session");
    is($again->{status}, 303, 'a second sign-in with the session cookie: 303');
    my $fresh = session_of($again);
    ok($fresh && $fresh ne $session, 'it sets a new session');
    is($t->get('/o/applications/', Cookie => $session)->{status}, 303,
        'the session the browser held before is ended');
    is($t->get('/o/applications/', Cookie => $fresh)->{status}, 200,
        'the new one is signed in');
    $session = $fresh;
}

# nginx sets X-Forwarded-Proto to its $scheme (daemon_locations): ask the
# daemon itself what it does behind https
my $gs = $t->request('GET', '/o/applications/login/',
    headers => ['X-Forwarded-Proto' => 'https'], port => $t->daemon_port);
like(cookies_of($gs)->{oauth2_csrf}{raw} // '', qr/;\s*Secure/i,
    'behind https (X-Forwarded-Proto) the cookies are Secure');
# the device cookie it shares with the authorization pages (Path=/) is
# __Host- behind https, as theirs is: a sibling host cannot plant it; an
# unprefixed one sent there is not read (a fresh value is set)
{
    my $csrf = cookies_of($gs)->{oauth2_csrf}{value} // '';
    my $in = $t->request('POST', '/o/applications/login/',
        headers => ['X-Forwarded-Proto' => 'https',
            'Content-Type' => 'application/x-www-form-urlencoded',
            Cookie => "oauth2_csrf=$csrf; oauth2_device=" . ('P' x 43)],
        body => OAuth2Test::form(csrf => csrf_field($gs),
            username => $staff, password => $staff_pw),
        port => $t->daemon_port);
    is($in->{status}, 303, 'behind https: the staff user signs in: 303')
        or diag($in->{raw});
    my $dev = cookies_of($in)->{'__Host-oauth2_device'};
    like($dev->{value} // '', qr/^[A-Za-z0-9_-]{43}$/,
        'behind https: the device cookie is __Host-oauth2_device');
    isnt($dev->{value} // '', 'P' x 43, '... a value of the server\'s');
    like($dev->{raw} // '', qr/;\s*Path=\/;.*;\s*Secure/i,
        '... Path=/ and Secure, as the prefix asks');
    ok(!exists cookies_of($in)->{oauth2_device},
        '... and no unprefixed device cookie');
}

# logins that fail
($r) = http_login($staff, 'wrong');
is($r->{status}, 400, 'a wrong password: 400');
like($r->{body}, qr/Please enter the correct username and password/,
    'a wrong password: the error is shown');
ok(!session_of($r), 'a wrong password: no session cookie');
($r) = http_login('alice', 'alice-password');
like($r->{body}, qr/Please enter the correct username and password/,
    'a non-staff user cannot log in, with the same message');
ok(!session_of($r), 'a non-staff user gets no session cookie');
($r) = http_login('nobody-here', 'x');
like($r->{body}, qr/Please enter the correct username and password/,
    'an unknown user gets the same message');
# the username typed comes back in the form, escaped (reflected XSS)
($r) = http_login('"><script>alert(2)</script>', 'x');
is($r->{status}, 400, 'a username with markup: 400');
unlike($r->{body}, qr/<script>alert\(2\)/, 'the form does not hold the typed <script>');
like($r->{body}, qr/value="&quot;&gt;&lt;script&gt;alert\(2\)&lt;\/script&gt;"/,
    'the form shows the typed username escaped');
($r) = http_login($staff, $staff_pw, csrf => '');
is($r->{status}, 403, 'login without the CSRF field: 403');
ok(!session_of($r), 'login without the CSRF field: no session');
($r) = http_login($staff, $staff_pw, csrf => 'A' x 43);
is($r->{status}, 403, 'login with a CSRF field unlike the cookie: 403');
# login CSRF: another site's form signs the browser in as the attacker,
# the double-submit cookie notwithstanding (the browser sends it)
($r) = http_login($staff, $staff_pw, site => 'cross-site');
is($r->{status}, 403, 'a cross-site login (Sec-Fetch-Site), cookie and '
    . 'field alike: 403');
ok(!session_of($r), 'a cross-site login: no session');
# a sibling subdomain's page is same-site, and can plant the login form's
# cookie: only the pages' own origin may sign in
($r) = http_login($staff, $staff_pw, site => 'same-site');
is($r->{status}, 403, 'a same-site login (Sec-Fetch-Site): 403');
ok(!session_of($r), 'a same-site login: no session');
($r) = http_login($staff, $staff_pw, site => 'same-origin');
is($r->{status}, 303, 'a same-origin login (Sec-Fetch-Site): 303');
($r) = http_login($staff, $staff_pw, next => '//evil.example/');
is(OAuth2Test::header($r, 'Location'), '/o/applications/',
    'next=//evil.example/ is ignored (docs/security.md 2.3)');
($r) = http_login($staff, $staff_pw, next => 'https://evil.example/');
is(OAuth2Test::header($r, 'Location'), '/o/applications/',
    'next=https://evil.example/ is ignored');
($r) = http_login($staff, $staff_pw, next => '/o/applications/register/');
is(OAuth2Test::header($r, 'Location'), '/o/applications/register/',
    'next within the pages is followed');

# not logged in
$r = $t->get('/o/applications/register/');
is($r->{status}, 303, 'not logged in: 303');
is(OAuth2Test::header($r, 'Location'),
    '/o/applications/login/?next=%2Fo%2Fapplications%2Fregister%2F',
    'not logged in: to the login page with next');
$r = $t->get('/o/applications/', Cookie => 'oauth2_session=' . ('x' x 43));
is($r->{status}, 303, 'an unknown session cookie: 303 to login');
is(OAuth2Test::header($r, 'X-Frame-Options'), 'DENY',
    'redirects carry the security headers too');

# spaces around a cookie's name and value do not count (as in Django's
# parse_cookie); of two cookies of one name the first counts (Django
# keeps the last; a browser sends the one of the longest path first)
(my $spaced = $session) =~ s/=/ = /;
$r = $t->get('/o/applications/', Cookie => "other=1;  $spaced ");
is($r->{status}, 200, 'the session cookie with spaces around its "=": 200');
$r = $t->get('/o/applications/',
    Cookie => "$session; oauth2_session=" . ('x' x 43));
is($r->{status}, 200, 'two session cookies: the first counts');

# CSRF on the pages: nothing is created
$r = $t->get('/o/applications/register/', Cookie => $session);
is($r->{status}, 200, 'the register form with the session: 200');
my $csrf = csrf_field($r);
like($csrf, qr/^[A-Za-z0-9_-]{43}$/, 'the form carries a CSRF token');
# the session cookie is HttpOnly: the HTML, which anything reading the
# page takes, never holds it
my ($session_value) = $session =~ /=(.*)$/;
isnt($csrf, $session_value, 'the CSRF token is not the session cookie');
unlike($r->{body}, qr/\Q$session_value\E/, 'the page never holds the session '
    . 'cookie');
$r = $t->post_form('/o/applications/register/', app_form(),
    Cookie => $session);
is($r->{status}, 403, 'a POST without the CSRF token: 403');
like($r->{body}, qr/CSRF/, 'the 403 page says why');
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => 'B' x 43), Cookie => $session);
is($r->{status}, 403, 'a POST with a wrong CSRF token: 403');
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf), Cookie => $session,
    'Sec-Fetch-Site' => 'cross-site');
is($r->{status}, 403, 'a cross-site POST (Sec-Fetch-Site): 403');
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf), Cookie => $session,
    'Sec-Fetch-Site' => 'same-site');
is($r->{status}, 403, 'a same-site POST (Sec-Fetch-Site): 403');
ok(!grep({ $_ eq 'csrf-probe' } app_names()),
    'nothing was created by the refused POSTs');

# bad input
$r = $t->post_form('/o/applications/register/', 'csrf=' . $csrf . '&a=%ZZ',
    Cookie => $session);
is($r->{status}, 400, 'a malformed form: 400');
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf), Cookie => $session,
    'Content-Type' => 'application/json');
is($r->{status}, 415, 'a JSON body: 415');
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf, name => '',
        redirect_uris => 'javascript:alert(1)'), Cookie => $session);
is($r->{status}, 400, 'an invalid application: 400');
like($r->{body}, qr/Enter a name\./, 'an invalid application: the errors');
ok(!grep({ $_ eq 'csrf-probe' } app_names()),
    'an invalid application is not created');
$r = $t->request('PUT', '/o/applications/', headers => [Cookie => $session]);
is($r->{status}, 405, 'PUT: 405');
is(OAuth2Test::header($r, 'Allow'), 'GET, HEAD', 'PUT: Allow GET, HEAD');
$r = $t->get('/o/applications/' . ('Z' x 40) . '/', Cookie => $session);
is($r->{status}, 404, 'an unknown client id: 404');
like($r->{body}, qr/<main>/, 'the 404 is a page');
$r = $t->get('/o/applications/x/y/', Cookie => $session);
is($r->{status}, 404, 'an unknown page: 404');
$r = $t->get('/o/applications/register', Cookie => $session);
is($r->{status}, 404, 'a page without its trailing slash: 404');
$r = $t->get('/o/applications/logout/', Cookie => $session);
is($r->{status}, 405, 'GET logout: 405 (a link or an image cannot sign out)');
is(OAuth2Test::header($r, 'Allow'), 'POST', 'GET logout: Allow POST');
is($t->get('/o/applications/', Cookie => $session)->{status}, 200,
    'and the session goes on');
$r = $t->post_form('/o/applications/register/', app_form(csrf => $csrf),
    Cookie => $session, 'Content-Type' => undef);
is($r->{status}, 415, 'a form without Content-Type: 415');

# the rules of `oauth2-admin app add`, on the form: each refused with
# its field's message, nothing created
my %base = (csrf => $csrf, name => 'rules-probe');
for my $c (
    ['a public client with client credentials',
        { client_type => 'public', grant_client_credentials => 1 },
        qr/A public client cannot use the client credentials grant/],
    ['the authorization code grant without a redirect URI',
        { client_type => 'confidential', grant_authorization_code => 1 },
        qr/needs at least one redirect URI/],
    ['a public client with an authentication method',
        { client_type => 'public', grant_authorization_code => 1,
          redirect_uris => 'https://app.example/cb',
          auth_method => 'client_secret_post' },
        qr/A public client has no secret/],
    ['an access token lifetime of 0',
        { client_type => 'confidential', grant_client_credentials => 1,
          access_token_ttl => '0' },
        qr/Enter a number of seconds from 1 to 315360000/],
    ['an access token lifetime of "1h"',
        { client_type => 'confidential', grant_client_credentials => 1,
          access_token_ttl => '1h' },
        qr/Enter a number of seconds from 1 to 315360000/])
{
    my ($what, $fields, $re) = @$c;
    $r = $t->post_form('/o/applications/register/',
        OAuth2Test::form(%base, %$fields), Cookie => $session);
    is($r->{status}, 400, "$what: 400");
    like($r->{body}, $re, "$what: the field's message");
}
ok(!grep({ $_ eq 'rules-probe' } app_names()), 'none of them was created');
# a public client has no secret to rotate
my %public = (%base, name => 'public-probe', client_type => 'public',
    grant_authorization_code => 1, redirect_uris => 'https://app.example/cb');
$r = $t->post_form('/o/applications/register/', OAuth2Test::form(%public),
    Cookie => $session);
is($r->{status}, 200, 'a public client registered: 200');
my ($pid) = $r->{body} =~ /id="client_id">([^<]+)</;
ok(defined $pid && $r->{body} !~ /id="client_secret"/,
    'its page shows a client id and no secret');
$r = $t->post_form("/o/applications/$pid/rotate-secret/",
    OAuth2Test::form(csrf => $csrf), Cookie => $session);
is($r->{status}, 400, 'rotate-secret of a public client: 400');
like($r->{body}, qr/A public client has no secret to rotate/,
    'rotate-secret of a public client: it says why');
$r = $t->get("/o/applications/$pid/frobnicate/", Cookie => $session);
is($r->{status}, 404, 'an unknown action of an application: 404');

# HTML escaping
my $evil = '<script>alert(1)</script>';
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf, name => $evil),
    Cookie => $session);
is($r->{status}, 200, 'register with a <script> name: 200');
unlike($r->{body}, qr/<script>alert/, 'the result page does not hold <script>');
like($r->{body}, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;/,
    'the result page shows the name escaped');
my ($eid) = $r->{body} =~ /id="client_id">([^<]+)</;
my ($esecret) = $r->{body} =~ /id="client_secret">([^<]+)</;
$r = $t->get('/o/applications/', Cookie => $session);
unlike($r->{body}, qr/<script>alert/, 'the list does not hold <script>');
like($r->{body}, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;/,
    'the list shows the name escaped');
$r = $t->get("/o/applications/$eid/", Cookie => $session);
unlike($r->{body}, qr/<script>alert/, 'the detail page does not hold <script>');
like($r->{body}, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;/,
    'the detail page shows the name escaped');
$r = $t->get("/o/applications/$eid/delete/", Cookie => $session);
is($r->{status}, 200, 'the delete confirmation: 200');
unlike($r->{body}, qr/<script>alert/, 'the delete confirmation does not hold <script>');
like($r->{body}, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt;/,
    'the delete confirmation shows the name escaped');
# a redirect URI's & is markup too
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf, name => 'amp-probe',
        redirect_uris => 'https://app.example/cb?a=1&b=2'), Cookie => $session);
is($r->{status}, 200, 'register with a & in a redirect URI: 200');
my ($aid) = $r->{body} =~ /id="client_id">([^<]+)</;
$r = $t->get("/o/applications/$aid/", Cookie => $session);
like($r->{body}, qr{<code>https://app\.example/cb\?a=1&amp;b=2</code>},
    'the detail page shows the redirect URI escaped');
# the redirect URIs typed come back in the <textarea> of a refused form,
# escaped: "</textarea>" must not end it (R26)
$r = $t->post_form('/o/applications/register/',
    app_form(csrf => $csrf, name => 'textarea-probe',
        redirect_uris => '</textarea><b>x</b>'), Cookie => $session);
is($r->{status}, 400, 'register with "</textarea><b>" as redirect URI: 400');
like($r->{body},
    qr{name="redirect_uris"[^>]*>
        &lt;/textarea&gt;&lt;b&gt;x&lt;/b&gt;</textarea>}x,
    'the refused form holds the typed redirect URIs escaped in its '
    . '<textarea> (R26)');
unlike($r->{body}, qr{</textarea><b>}, 'the page holds no </textarea><b>');
ok(!grep({ $_ eq 'textarea-probe' } app_names()),
    'the refused application is not created');
# a client id and a scope with markup, which the pages' own form never
# makes: a Django import (any UTF-8 without control characters) and
# `app add --scope` (RFC 6749 3.3's NQCHAR holds < and >)
{
    my $dump = OAuth2Test::write_file($t->dir . '/markup-dump.json',
        JSON::PP->new->encode([{ model => 'oauth2_provider.application',
            pk => 1, fields => { client_id => '<b>x</b>',
                name => 'markup-id', client_type => 'confidential',
                authorization_grant_type => 'client-credentials',
                client_secret => 'markup-secret-1234567890',
                redirect_uris => '' } }]));
    my ($code, $out, $err) = $t->admin('import-django', $dump);
    is($code, 0, 'import-django of the client id "<b>x</b>": exit 0')
        or diag($err);
    $r = $t->get('/o/applications/%3Cb%3Ex%3C%2Fb%3E/', Cookie => $session);
    is($r->{status}, 200, 'the page of the client id "<b>x</b>": 200');
    like($r->{body}, qr{id="client_id">&lt;b&gt;x&lt;/b&gt;</code>},
        'its page shows the client id escaped (R26)');
    unlike($r->{body}, qr{<b>x</b>}, 'its page holds no <b>x</b>');
    my $sp = $t->new_app(name => 'scope-markup', scope => '<b>');
    $r = $t->get("/o/applications/$sp->{client_id}/", Cookie => $session);
    is($r->{status}, 200, 'the page of an application with the scope "<b>": '
        . '200');
    like($r->{body}, qr{<dd><code>&lt;b&gt;</code></dd>},
        'its page shows the scope escaped (R26)');
    unlike($r->{body}, qr{<b>}, 'its page holds no <b>');
}
# an edit the form refuses (no grant ticked) is not saved: 400, the
# field's message, and the application as it was
$r = $t->post_form("/o/applications/$aid/update/",
    OAuth2Test::form(csrf => $csrf, name => 'amp-renamed'),
    Cookie => $session);
is($r->{status}, 400, 'an edit without a grant: 400, not "saved"');
like($r->{body}, qr/Choose at least one authorization grant type\./,
    'an edit without a grant: the field\'s message');
{
    my ($code, $out) = $t->admin('app', 'show', $aid);
    my $shown = eval { JSON::PP->new->decode($out) } // {};
    is($shown->{name}, 'amp-probe', 'the refused edit changed nothing: the '
        . 'name is still amp-probe');
    is_deeply($shown->{grant_types}, ['client_credentials'],
        'the refused edit changed nothing: the grants are still there');
}

# rotate the secret: shown once, the old one stops working
is($t->token($eid, $esecret)->{status}, 200, 'the new app gets a token');
$r = $t->get("/o/applications/$eid/rotate-secret/", Cookie => $session);
is($r->{status}, 405, 'GET rotate-secret: 405');
$r = $t->post_form("/o/applications/$eid/rotate-secret/",
    OAuth2Test::form(csrf => $csrf), Cookie => $session);
is($r->{status}, 200, 'rotate-secret: 200');
my ($rotated) = $r->{body} =~ /id="client_secret">([^<]+)</;
like($rotated // '', qr/^[A-Za-z0-9]{128}$/, 'rotate-secret shows a new one');
is($t->token($eid, $esecret)->{status}, 401, 'the old secret: 401');
is($t->token($eid, $rotated)->{status}, 200, 'the new secret: 200');
$r = $t->get("/o/applications/$eid/", Cookie => $session);
unlike($r->{body}, qr/\Q$rotated\E/, 'the detail page never shows it');

# delete over HTTP needs the token too
$r = $t->post_form("/o/applications/$eid/delete/", '', Cookie => $session);
is($r->{status}, 403, 'delete without the CSRF token: 403');
is($t->token($eid, $rotated)->{status}, 200, 'the app still works');

# logout needs the CSRF token too: another site cannot sign the user out
$r = $t->post_form('/o/applications/logout/', '', Cookie => $session);
is($r->{status}, 403, 'logout without the CSRF token: 403');
$r = $t->post_form('/o/applications/logout/', OAuth2Test::form(csrf => $csrf),
    Cookie => $session, 'Sec-Fetch-Site' => 'cross-site');
is($r->{status}, 403, 'a cross-site logout (Sec-Fetch-Site): 403');
ok(!cookies_of($r)->{oauth2_session}, 'the refused logouts clear no cookie');
is($t->get('/o/applications/', Cookie => $session)->{status}, 200,
    'and the session goes on');

# A session of these pages is no sign-in of the authorization server's
# pages (R26, R69, R70).  Its store record sits under the id of "oauth2-admin
# page session:" and the cookie; the module once took any printable cookie
# value for one of its sessions, so that text as its oauth2_session cookie
# signed in as the staff user, logged out or not: consent at /o/authorize/
# (a code, then a token with the staff's scopes for the admin API),
# /o/device/, /o/authorized_tokens/.  The module now reads only cookies of
# the form it sets (43 base64url characters).
my $CB = 'https://client.example/cb';
my $web = $t->new_app(name => 'page-session probe',
    grant => ['authorization_code'], scope => 'read write admin',
    redirect_uris => [$CB]);
my (undef, $challenge) = OAuth2Authorize::pkce();
my $authz_query = OAuth2Authorize::query(
    client_id => $web->{client_id}, response_type => 'code',
    redirect_uri => $CB, scope => 'read write admin', state => 's',
    code_challenge => $challenge, code_challenge_method => 'S256');
my $authorize = "/o/authorize/?$authz_query";
my ($page_value) = $session =~ /^oauth2_session=(.*)$/;
my $derived = "oauth2_session=oauth2-admin page session:$page_value";
sub derived_refused {
    my ($when) = @_;
    for my $path ($authorize, '/o/device/', '/o/authorized_tokens/') {
        my $r = $t->get($path, Cookie => $derived);
        (my $name = $path) =~ s/\?.*//;
        like($r->{body}, qr{<h1>Sign in</h1>},
            "$when, the cookie derived from a page session gets the "
            . "sign-in page at $name");
    }
}
derived_refused('signed in at the pages');

# whether the store holds the record of the page session of cookie value
# $v: a key of the tokens table that ends in the SHA-256 of "oauth2-admin
# page session:" and $v (mdb_dump prints keys in hex)
sub page_record {
    my ($v) = @_;
    my ($code, $out, $err) = $t->_run_cmd('/usr/bin/mdb_dump', '-s',
        'tokens', $t->store);
    die "mdb_dump: $err" if $code;
    return index($out, sha256_hex("oauth2-admin page session:$v")) >= 0;
}
ok(page_record($page_value), 'the page session has its record in the store');

# logout ends the session
$r = $t->post_form('/o/applications/logout/', OAuth2Test::form(csrf => $csrf),
    Cookie => $session);
is($r->{status}, 303, 'logout: 303');
like(cookies_of($r)->{oauth2_session}{raw} // '', qr/Max-Age=0/,
    'logout clears the cookie');
$r = $t->get('/o/applications/', Cookie => $session);
is($r->{status}, 303, 'the old session cookie no longer works');
ok(!page_record($page_value),
    'logout deletes the session\'s record from the store (it stayed for '
    . '12 hours, which only the module\'s reader kept from use)');
derived_refused('logged out');

# a staff user demoted, or disabled, while signed in: the session ends at
# the next request (the pages are for active staff only)
my %ended;
for my $c (['carol', '--staff', 'demoted'], ['dave', '--active', 'disabled'])
{
    my ($name, $option, $what) = @$c;
    user_add($name, "$name-password-x", '--staff');
    ($r) = http_login($name, "$name-password-x");
    my $s = $ended{$name} = session_of($r);
    ok($s, "$name (staff) signs in");
    is($t->get('/o/applications/', Cookie => $s // '')->{status}, 200,
        "${name}'s session opens the list");
    my ($code, $out, $err) = $t->admin('user', 'set', $name, $option,
        'false');
    is($code, 0, "user set $name $option false: exit 0") or diag($err);
    $r = $t->get('/o/applications/', Cookie => $s // '');
    is($r->{status}, 303, "$what, ${name}'s session no longer opens the list");
    like(OAuth2Test::header($r, 'Location') // '', qr{^/o/applications/login/},
        "$what, $name is sent to the login page");
}
# the session refused is ended, not set aside: staff and active again,
# the user signs in anew, and the old cookie opens nothing
for my $c (['carol', '--staff'], ['dave', '--active']) {
    my ($name, $option) = @$c;
    my ($code, $out, $err) = $t->admin('user', 'set', $name, $option, 'true');
    is($code, 0, "user set $name $option true: exit 0") or diag($err);
    ($r) = http_login($name, "$name-password-x");
    is($t->get('/o/applications/', Cookie => session_of($r) // '')->{status},
        200, "$name signs in again: the new session opens the list");
    is($t->get('/o/applications/', Cookie => $ended{$name} // '')->{status},
        303, "${name}'s session of before stays ended");
}

# R69, R70: a session not used while its user was deactivated stays
# ended once the user is active again (deactivating ends every token and
# session of the user, the pages' too: the CLI says "enabling the user
# again does not bring them back"); and a new password set by the CLI
# ends it at once, as it ends the user's tokens
user_add('fiona', 'fiona-password-x', '--staff');
($r) = http_login('fiona', 'fiona-password-x');
my $idle = session_of($r) // '';
is($t->get('/o/applications/', Cookie => $idle)->{status}, 200,
    'fiona (staff) signs in: her session opens the list');
for my $v ('false', 'true') {
    my ($code, $out, $err) = $t->admin('user', 'set', 'fiona', '--active', $v);
    is($code, 0, "user set fiona --active $v: exit 0") or diag($err);
}
is($t->get('/o/applications/', Cookie => $idle)->{status}, 303,
    'deactivated and active again, unused meanwhile: her session of before is ended');
($r) = http_login('fiona', 'fiona-password-x');
my $fresh = session_of($r) // '';
is($t->get('/o/applications/', Cookie => $fresh)->{status}, 200,
    'she signs in anew: the new session opens the list');

# the same for staff taken away and given back, unused meanwhile (a
# demotion while a stolen cookie is looked into, say): losing staff ends
# the user's sessions of these pages, through the CLI and the API alike;
# the user's tokens stay (before, the old cookie opened the list again
# once staff was given back), and so does the user's sign-in at the
# authorization server's pages, which staff never gave (R70: it was ended
# with the pages' sessions, all kSession records then)
my $fiona_tok = $t->admin_json('token', 'issue', '--client-id',
    $t->new_app(name => 'fiona app', grant => 'password')->{client_id},
    '--user', 'fiona');
for my $via ('cli', 'api') {
    ($r) = http_login('fiona', 'fiona-password-x');
    my $before = session_of($r) // '';
    is($t->get('/o/applications/', Cookie => $before)->{status}, 200,
        "$via: fiona's new session opens the list");
    my $signin = OAuth2Authorize->new($t)->login($authz_query, 'fiona',
        'fiona-password-x') // '';
    like($t->get($authorize, Cookie => $signin)->{body},
        qr{Signed in as <strong>fiona</strong>},
        "$via: fiona signs in at /o/authorize/ too");
    for my $v (0, 1) {
        if ($via eq 'cli') {
            my ($code, $out, $err) = $t->admin('user', 'set', 'fiona', '--staff',
                $v ? 'true' : 'false');
            is($code, 0, "user set fiona --staff " . ($v ? 'true' : 'false') . ': exit 0')
                or diag($err);
        } else {
            my $id = (grep { $_->{username} eq 'fiona' } @{$t->admin_json('user', 'list')})[0]{id};
            my $staff_tok = $t->admin_json('token', 'issue', '--client-id',
                $t->new_app(name => "staff app $v", grant => 'client_credentials',
                    scope => 'read write admin')->{client_id},
                '--scope', 'read write admin')->{access_token};
            my $pr = $t->request('PATCH', "/api/users/$id/", port => $t->daemon_port,
                headers => [Authorization => "Bearer $staff_tok",
                    'Content-Type' => 'application/json'],
                body => '{"is_staff": ' . ($v ? 'true' : 'false') . '}');
            is($pr->{status}, 200, "PATCH is_staff " . ($v ? 'true' : 'false') . ': 200')
                or diag($pr->{raw});
        }
    }
    is($t->get('/o/applications/', Cookie => $before)->{status}, 303,
        "$via: staff taken away and given back, unused meanwhile: the session of before is ended");
    like($t->get($authorize, Cookie => $signin)->{body},
        qr{Signed in as <strong>fiona</strong>},
        "$via: ... while her sign-in at /o/authorize/ goes on");
}
is($t->get('/protected/', Authorization => "Bearer $fiona_tok->{access_token}")->{status},
    200, '... and her token, which staff never gave her, still opens a location');

# R16: a staff user's hash weaker than serve's --pbkdf2-iterations (the
# default 600000) is hashed again at the sign-in
user_add('erik', 'erik-password-x', '--staff', '--pbkdf2-iterations', 1000);
my $user_hash = sub {
    OAuth2Test::dump_store($t->store) =~ /"username":"erik".*?"password":"pbkdf2_sha256\$(\d+)\$/
        ? $1 : undef;
};
is($user_hash->(), 1000, 'erik is stored with 1000 iterations');
($r) = http_login('erik', 'erik-password-x');
is($r->{status}, 303, 'erik signs in at the pages: 303');
is($user_hash->(), 600000, 'his hash is stored again with 600000 (R16)');
($r) = http_login('erik', 'erik-password-x');
is($r->{status}, 303, 'and his password still signs him in');

is($t->stop_daemon, 0, 'the daemon stops cleanly on SIGTERM');

# a session's lifetimes (--session-idle, --session-max; 30 minutes and 12
# hours by default): unused for longer than the first, or older than the
# second however used, it opens nothing and the user signs in again
$t->run_daemon('--session-idle', 2, '--session-max', 4);
($r) = http_login($staff, $staff_pw);
my $short = session_of($r) // '';
is($t->get('/o/applications/', Cookie => $short)->{status}, 200,
    '--session-idle 2: a new session opens the list');
sleep 3;
$r = $t->get('/o/applications/', Cookie => $short);
is($r->{status}, 303, '--session-idle 2: unused for 3 s, it has ended');
ok(!page_record($short =~ s/^oauth2_session=//r),
    '--session-idle 2: the request that finds it ended deletes its record');
like(OAuth2Test::header($r, 'Location') // '', qr{^/o/applications/login/},
    '... and sends the user to the login page');
($r) = http_login($staff, $staff_pw);
my $busy = session_of($r) // '';
my @seen;
for (1 .. 5) {    # used every second: never idle for 2 s
    push @seen, $t->get('/o/applications/', Cookie => $busy)->{status};
    sleep 1;
}
is($seen[0], 200, '--session-max 4: a session used every second opens the '
    . 'list');
is($t->get('/o/applications/', Cookie => $busy)->{status}, 303,
    '--session-max 4: 5 s after its sign-in it has ended, used or not ('
    . join(',', @seen) . ')');
is($t->stop_daemon, 0, 'the daemon with short sessions stops');
$t->daemon_log_ok($staff_pw, 'alice-password', 'carol-password-x',
    'dave-password-x', 'erik-password-x', grep { defined }
    $secret, $esecret, $rotated);
$t->done_testing;
