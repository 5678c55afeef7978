# The authorization-code flow over raw HTTP (issue 4 items 1, 2, 6;
# seed 004; docs/security.md R19-R34 and catalogue 2.3): the login page, the
# consent page, the redirect with code, state and iss, the token endpoint's
# authorization_code grant with PKCE, and every negative case of sections C
# and D.  The same flow in a browser is t/authorize_browser.t, with a client
# library t/oauthlib_client.t.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

# four workers: the redemption race (R29) spreads over them
my $t = OAuth2Test->new(workers => 4);
my $f = OAuth2Authorize->new($t);
my $T0 = time;

OAuth2Authorize::user_add($t, 'alice', 'Tr0ub4dor-and-3');
OAuth2Authorize::user_add($t, 'carol', 'Lantern-quiet-58', '--inactive');

my $CB = 'https://client.example/cb';
my %grants = (grant => ['authorization_code', 'refresh_token']);
my $web = $t->new_app(name => 'web', %grants, redirect_uris => [$CB]);
my $other = $t->new_app(name => 'other', %grants, redirect_uris => [$CB]);
my $two = $t->new_app(name => 'two', %grants,
    redirect_uris => [$CB, 'https://client.example/cb2']);
my $loop = $t->new_app(name => 'loop', %grants,
    redirect_uris => ['http://127.0.0.1/cb']);
my $loop6 = $t->new_app(name => 'loop6', %grants,
    redirect_uris => ['http://[::1]/cb']);
my $native = $t->new_app(name => 'native', %grants, public => 1,
    redirect_uris => ['com.example.app:/oauth2redirect']);
my $qry = $t->new_app(name => 'qry', %grants,
    redirect_uris => ['https://client.example/q?foo=bar']);
my $pub = $t->new_app(name => 'pub', %grants, public => 1,
    redirect_uris => [$CB]);
my $pub2 = $t->new_app(name => 'pub2', %grants, public => 1,
    redirect_uris => [$CB]);
my $cc = $t->new_app(name => 'cc', grant => 'client_credentials',
    redirect_uris => [$CB]);
my $nort = $t->new_app(name => 'no-refresh', grant => 'authorization_code',
    redirect_uris => [$CB]);
my $evil = $t->new_app(name => '<b>"Evil" & Co</b>', %grants,
    redirect_uris => [$CB]);

# site templates (oauth2_authorize_template) for /custom/authorize/
my $tpl = $t->dir . '/tpl';
mkdir $tpl or die "mkdir $tpl: $!";
my %tpl = (
    login => '<!DOCTYPE html><title>Custom sign-in</title><main>'
        . '<h1>CUSTOM LOGIN for {{app_name}}</h1>{{error}}'
        . '<form method="post"><input type="hidden" name="csrf_token" '
        . 'value="{{csrf}}"><input type="hidden" name="action" '
        . 'value="login"><input name="username"><input name="password" '
        . 'type="password"><button>Go</button></form></main>',
    consent => '<!DOCTYPE html><title>Custom consent</title><main>'
        . '<h1>CUSTOM CONSENT: {{app_name}} for {{username}}</h1>'
        . '<ul class="custom">{{scope_items}}</ul><form method="post">'
        . '<input type="hidden" name="csrf_token" value="{{csrf}}">'
        . '<button name="action" value="allow">Yes</button></form></main>',
    error => '<!DOCTYPE html><title>Custom error</title><main>'
        . '<h1>CUSTOM ERROR</h1><p id="e">{{error_code}}</p>'
        . '<p>{{error_description}}</p></main>',
);
for my $page (sort keys %tpl) {
    open my $fh, '>', "$tpl/$page.html" or die "$tpl/$page.html: $!";
    print $fh $tpl{$page};
    close $fh;
}

my $ISSUER = 'http://127.0.0.1:' . $t->port;
$t->write_config(OAuth2Authorize::http_conf($t, extra_server => <<"EOF"))->run;
    location = /short/authorize/ { oauth2_authorize; oauth2_code_ttl 1s; }
    location = /custom/authorize/ {
        oauth2_authorize;
        oauth2_authorize_template login $tpl/login.html;
        oauth2_authorize_template consent $tpl/consent.html;
        oauth2_authorize_template error $tpl/error.html;
    }
    location /site/ {
        oauth2_authorize_template login $tpl/login.html;
        location = /site/authorize/ { oauth2_authorize; }
    }
EOF

############################################################ helpers

my $STATE = 0;

# the query of an authorization request of $app: client_id, code,
# its first redirect URI, "read write", a fresh state; %over replaces or
# (undef) removes parameters
sub q_for {
    my ($app, %over) = @_;
    my %p = (client_id => $app->{client_id}, response_type => 'code',
        redirect_uri => $app->{redirect_uris}[0], scope => 'read write',
        state => 'st-' . ++$STATE);
    $p{$_} = $over{$_} for keys %over;
    my @order = qw(client_id response_type redirect_uri scope state
        code_challenge code_challenge_method);
    my %seen = map { $_ => 1 } @order;
    push @order, sort grep { !$seen{$_} } keys %p;
    return OAuth2Authorize::query(map { ($_ => $p{$_}) }
        grep { exists $p{$_} } @order);
}

sub loc { OAuth2Test::header($_[0], 'Location') }
sub hdr { OAuth2Test::header(@_) }
sub params { OAuth2Authorize::location_params(@_) }

# an error page (R20): the status, no Location, HTML, the error code
sub page_ok {
    my ($r, $name, %o) = @_;
    my $status = $o{status} // 400;
    my $ok = is($r->{status}, $status, "$name: $status page");
    $ok &= ok(!defined loc($r), "$name: no Location, never a redirect (R20)");
    $ok &= like(hdr($r, 'Content-Type') // '', qr{^text/html},
        "$name: an HTML page");
    $ok &= like($r->{body}, qr/\Q$o{error}\E/, "$name: the page says $o{error}")
        if $o{error};
    diag("response was: $r->{raw}") unless $ok;
    return $ok;
}

# an error sent back to the client (R24): 303 to its redirect_uri with
# error, state and iss
sub back_ok {
    my ($r, $uri, $error, $state, $name) = @_;
    my %p = params($r);
    my $ok = is($r->{status}, 303, "$name: 303 back to the client (R24)");
    $ok &= is($p{_base}, $uri, "$name: to the registered redirect_uri");
    $ok &= is($p{error}, $error, "$name: error=$error");
    $ok &= is($p{state}, $state, "$name: the state comes back (R24)");
    $ok &= ok(!defined $p{code}, "$name: no code");
    diag("response was: $r->{raw}") unless $ok;
    return $ok;
}

sub state_of { my %p = map { split /=/, $_, 2 } split /&/, $_[0]; $p{state} }

# the whole flow for $app with alice's session: (code, Location params)
my $session;
sub code_for {
    my ($app, %over) = @_;
    my $path = delete $over{path};
    my $q = q_for($app, %over);
    my $ff = $path ? OAuth2Authorize->new($t, path => $path) : $f;
    my ($code, $r) = $ff->code($q, $session);
    return wantarray ? ($code, $q, params($r)) : $code;
}

sub redeem { $f->redeem(@_) }

# the token response's tokens, or dies
sub tokens_of {
    my ($r) = @_;
    die "token request failed: $r->{status} $r->{body}"
        unless $r->{status} == 200 && $r->{json}{access_token};
    return @{$r->{json}}{qw(access_token refresh_token)};
}

sub protected { $t->bearer_get('/protected/', $_[0])->{status} }

############################################################ seed 004

# Step 1: GET /o/authorize/ with client_id, response_type, redirect_uri,
# scope=read%20write and state, without a session: the login page
my $q = 'client_id=' . $web->{client_id} . '&response_type=code'
    . '&redirect_uri=https://client.example/cb&scope=read%20write'
    . '&state=random_state_string';
my ($s, $lr, $lg) = $f->login($q, 'alice', 'Tr0ub4dor-and-3');
is($lg->{status}, 200, 'seed 004: GET /o/authorize/ without a session: 200');
like($lg->{body}, qr/<h1>Sign in<\/h1>/, 'seed 004: the login page');
like($lg->{body}, qr/<strong>web<\/strong> asks you to sign in/,
    'the login page names the application');
like($lg->{body}, qr/<label for="username">Username<\/label>/,
    'the login page labels its fields (accessible HTML)');
my $csrf_cookie = OAuth2Authorize::cookies_of($lg)->{oauth2_csrf}{raw} // '';
like($csrf_cookie, qr/^oauth2_csrf=[A-Za-z0-9_-]{43};/,
    'the login page sets a random CSRF cookie');
like($csrf_cookie, qr/;\s*HttpOnly/i, 'the CSRF cookie is HttpOnly');
like($csrf_cookie, qr/;\s*SameSite=Lax/i, 'the CSRF cookie is SameSite=Lax');
is(OAuth2Authorize::csrf_field($lg),
    OAuth2Authorize::cookies_of($lg)->{oauth2_csrf}{value},
    'the form carries the cookie value (double submit)');

# Two sign-in pages in one browser (a second tab, another application's
# sign-in): the second keeps the CSRF value the browser has, so the first
# tab's form still signs in (RFC 6749 10.12, and no 403 for the real
# user); a value of another form than the server's own is not kept
{
    my $first = $f->get($q);
    my $c1 = OAuth2Authorize::cookies_of($first)->{oauth2_csrf}{value} // '';
    my $second = $f->get($q, Cookie => "oauth2_csrf=$c1");
    is(OAuth2Authorize::csrf_field($second), $c1,
        'a second sign-in page: the CSRF value the browser has');
    is(OAuth2Authorize::cookies_of($second)->{oauth2_csrf}{value}, $c1,
        '... set again, unchanged');
    # the browser now has what the second page set
    my $c2 = OAuth2Authorize::cookies_of($second)->{oauth2_csrf}{value} // '';
    my $r1 = $f->post($q, OAuth2Test::form(action => 'login',
        csrf_token => OAuth2Authorize::csrf_field($first), username => 'alice',
        password => 'Tr0ub4dor-and-3'), Cookie => "oauth2_csrf=$c2");
    is($r1->{status}, 303, "the first page's form signs in after the second was shown");
    ok(OAuth2Authorize::cookies_of($r1)->{oauth2_session}{value}, '... with a session');
    for my $bad ('short', ('a' x 42) . '!', 'a' x 44) {
        my $g = $f->get($q, Cookie => "oauth2_csrf=$bad");
        my $v = OAuth2Authorize::csrf_field($g) // '';
        ok($v ne $bad && $v =~ /^[A-Za-z0-9_-]{43}$/,
            "a CSRF cookie \"$bad\" not of the server's form: a new value");
    }
}

# the login POST: 303 back to the same request, with the session cookie
is($lr->{status}, 303, 'login POST: 303 (R23: never 307)');
is(loc($lr), "?$q", 'login POST: back to the same authorization request');
my $sc = OAuth2Authorize::cookies_of($lr)->{oauth2_session}{raw} // '';
like($sc, qr/^oauth2_session=[A-Za-z0-9_-]{43};/,
    'login: a session cookie of 256 random bits');
like($sc, qr/;\s*HttpOnly/i, 'the session cookie is HttpOnly');
like($sc, qr/;\s*SameSite=Lax/i, 'the session cookie is SameSite=Lax');
like($sc, qr/;\s*Path=\//, 'the session cookie has Path=/');
unlike($sc, qr/;\s*Secure/i, 'no Secure flag over plain http');
unlike($lr->{raw}, qr/Tr0ub4dor-and-3/, 'the password is not echoed');
$session = $s;
ok(defined $session, 'alice is signed in');

# Step 2: the consent page shows the app name and the scopes
my ($cr, $cg) = $f->consent($q, $session);
is($cg->{status}, 200, 'with the session: 200');
like($cg->{body}, qr/<h1>Authorize web\?<\/h1>/,
    'the consent page names the application');
like($cg->{body}, qr/Signed in as <strong>alice<\/strong>/,
    'the consent page names the user');
like($cg->{body}, qr{<ul><li>read</li><li>write</li></ul>},
    'the consent page lists the scopes asked');
like(OAuth2Authorize::csrf_field($cg) // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the consent form carries a CSRF token');
like($cg->{body}, qr/name="action" value="allow">Authorize</,
    'the consent page has an Authorize button');
like($cg->{body}, qr/name="action" value="deny">Deny</,
    'the consent page has a Deny button');

# Step 3: the callback with code and state
is($cr->{status}, 303, 'Authorize: 303 (R23: never 307 after a POST)');
my %cb = params($cr);
is($cb{_base}, 'https://client.example/cb',
    'Authorize: the browser goes to the redirect_uri');
like($cb{code} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the code carries 256 random bits (R27)');
is($cb{state}, 'random_state_string', 'the state comes back unchanged');
is($cb{iss}, $ISSUER, 'iss is the issuer (R23, RFC 9207)');
like($cb{''}, qr/^code=[^&]+&state=random_state_string&iss=http%3A%2F%2F/,
    'code, state and iss are appended percent-encoded (R23)');

# Step 4: the seed's token request: client_id and client_secret in the body
my $r = $t->post_form('/o/token/', join '&', 'grant_type=authorization_code',
    "code=$cb{code}", 'redirect_uri=https://client.example/cb',
    "client_id=$web->{client_id}", "client_secret=$web->{client_secret}");
is($r->{status}, 200, 'seed 004: the code gets a token at /o/token/');
$t->no_store_ok($r, 'token response');
like($r->{json}{access_token} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the response has an access_token');
is($r->{json}{token_type}, 'Bearer', 'token_type Bearer');
is($r->{json}{scope}, 'read write', 'scope "read write"');
ok(($r->{json}{expires_in} // 0) > 0, 'expires_in is positive');
like($r->{json}{refresh_token} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the response has a refresh_token (issue 4 item 3)');
my ($at, $rt) = tokens_of($r);
my $pr = $t->bearer_get('/protected/', $at);
is($pr->{status}, 200, 'seed 004: Authorization: Bearer opens the API');
is($pr->{body}, "hello\n", 'the protected location serves its content');
is($t->get('/protected/', 'X-API-KEY' => $at)->{status}, 200,
    'seed 004: X-API-KEY opens the API');
is($t->get('/protected/')->{status}, 401, 'without the token: 401');
my $ir = $f->introspect($at, $web);
is($ir->{json}{active}, JSON::PP::true, 'introspection: active');
is($ir->{json}{username}, 'alice', "introspection: alice's token");
is($ir->{json}{client_id}, $web->{client_id}, 'introspection: the client');
$r = $t->revoke($web->{client_id}, $web->{client_secret}, $at,
    auth => 'post');
is($r->{status}, 200, 'seed 004: revoke with client_id and client_secret');
is(protected($at), 401, 'the revoked token: 401');

# scope omitted: "read write" (issue 4 item 1); a narrower one is kept
my ($code) = code_for($web, scope => undef);
is(redeem($code, client => $web, redirect_uri => $CB)->{json}{scope},
    'read write', 'scope omitted: the token has "read write"');
($code) = code_for($web, scope => 'read');
is(redeem($code, client => $web, redirect_uri => $CB)->{json}{scope},
    'read', 'scope=read: the token has "read" (R27: bound to the scope)');
(my $q2 = q_for($web)) =~ s/scope=read%20write/scope=read+write/;
($code) = $f->code($q2, $session);
is(redeem($code, client => $web, redirect_uri => $CB)->{json}{scope},
    'read write', 'scope=read+write (form encoding) is "read write"');
($code) = code_for($web);
$r = redeem($code, client => $web, redirect_uri => $CB, auth => 'basic');
is($r->{status}, 200, 'HTTP Basic client authentication works too');

############################################################ state, iss

my $odd = qq{a b&c=d/e?f#g+h%i"<>'};
my (undef, undef, %p) = code_for($web, state => $odd);
is($p{state}, $odd, 'a state with reserved characters round-trips (R23)');
like($p{''}, qr/&state=a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25i%22%3C%3E%27&/,
    'that state comes back percent-encoded (R23)');
(undef, undef, %p) = code_for($web, state => undef);
ok(!exists $p{state}, 'no state asked: no state in the redirect');
is($p{iss}, $ISSUER, 'iss without state');

# 2.3: a state the module does not like is either refused with a page or
# accepted and sent back percent-encoded
sub odd_state_ok {
    my ($state, $name) = @_;
    my $q = q_for($web, state => $state);
    my $r = $f->get($q, Cookie => $session);
    my $ok;
    if ($r->{status} == 200) {
        $r = $f->consent($q, $session);
        my %p = params($r);
        $ok = $r->{status} == 303 && loc($r) !~ /[^\x21-\x7e]/
            && $p{state} eq $state;
    } else {
        $ok = $r->{status} == 400 && !defined loc($r);
    }
    ok($ok, "$name: refused with a page or sent back encoded (2.3)")
        or diag($r->{raw});
    ok(!grep({ /evil/ } @{$r->{headers}{'set-cookie'} // []}),
        "$name: no header injection (R23)");
    return $r;
}
odd_state_ok("x\r\nSet-Cookie: evil=1", 'a state with CR LF');
odd_state_ok("x\0y", 'a state with NUL');
odd_state_ok("\xc3\xa9t\xc3\xa9", 'a non-ASCII state');
odd_state_ok('S' x 4000, 'a 4000-byte state');

############################################################ R19-R21, 2.3

# a valid request with alice's session shows the consent page (asked
# again with prompt=consent: alice granted $web these scopes above)
$r = $f->get(q_for($web) . '&prompt=consent', Cookie => $session);
is($r->{status}, 200, 'exact redirect_uri: the consent page (R19)');
$r = $f->get('client_id=' . $web->{client_id}
    . '&response_type=code&redirect_uri=https://client.example/cb&prompt=consent',
    Cookie => $session);
is($r->{status}, 200, 'an unencoded redirect_uri that decodes the same works');

my @corpus = (
    'HTTPS://client.example/cb', 'https://CLIENT.example/cb',
    'https://client.example/CB', 'https://client.example/cb/',
    'https://client.example:443/cb', 'https://client.example/cb?x=1',
    'https://client.example/cb#x', 'https://client.example/cb?',
    'https://client.example/cb/../evil', 'https://client.example/cb/%2e%2e/',
    'https://client.example/cb%2F%2E%2E%2F',
    'https://client.example/cb/%252e%252e/',
    'https://client.example@evil.example/cb',
    'https://client.example.evil.example/cb',
    'https://evil.example\@client.example/cb', '//evil.example/cb',
    'https:evil.example', 'https://evil.example/cb', 'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>', 'file:///etc/passwd',
    '/foo/../bar', 'file://test', '/cb', 'client.example/cb',
    "https://client.example/cb\r\nSet-Cookie: x", "https://client.example/c\tb",
    'https://client.example/cb ', ' https://client.example/cb',
    "https://client.example/cb\0", 'https://xn--clent-7ya.example/cb',
    'http://client.example/cb', 'https://client.example/c%62',
);
for my $u (@corpus) {
    (my $name = $u) =~ s/([^\x21-\x7e])/sprintf '\\x%02x', ord $1/ge;
    $r = $f->get(q_for($web, redirect_uri => $u), Cookie => $session);
    page_ok($r, "redirect_uri '$name'", error => 'invalid_request');
}
# the same checks guard the consent POST: no code for a bad redirect_uri
my $bad = q_for($web, redirect_uri => 'https://evil.example/cb');
# (prompt=consent: alice granted $web above, and without it the GET
# redirects at once, with no form and so no token)
my $consent_csrf = OAuth2Authorize::csrf_field(
    $f->get(q_for($web) . '&prompt=consent', Cookie => $session));
ok(defined $consent_csrf, 'the consent page of the session carries its CSRF token');
$r = $f->post($bad, OAuth2Test::form(action => 'allow',
    csrf_token => $consent_csrf), Cookie => $session);
page_ok($r, 'Authorize POSTed with an unregistered redirect_uri');
$r = $f->get(q_for($web) . '&redirect_uri=' . OAuth2Authorize::pct($CB),
    Cookie => $session);
page_ok($r, 'redirect_uri given twice');
$r = $f->get(q_for($web, redirect_uri => 'https://client.example/'
    . ('a' x 100_000)), Cookie => $session);
ok($r->{status} == 414 || $r->{status} == 400,
    'a 100 KiB redirect_uri: 414/400 from nginx (2.3)');
ok(!defined loc($r), 'a 100 KiB redirect_uri: no Location');

# the loopback exception (R19, RFC 8252 7.3): registered http://127.0.0.1/cb
$r = $f->get(q_for($loop, redirect_uri => 'http://127.0.0.1:51234/cb'),
    Cookie => $session);
is($r->{status}, 200, 'loopback: http://127.0.0.1:51234/cb is accepted (R19)');
for my $u ('https://127.0.0.1/cb', 'http://localhost/cb',
    'http://localhost:51234/cb', 'http://127.0.0.1:8080/other',
    'http://127.0.0.1:51234/cb/', 'http://localhost.evil.example/cb',
    'http://localhosts/cb', 'http://127.0.0.1.nip.io/cb',
    'http://127.0.0.1:80@evil.example/cb', 'http://127.0.0.1:/cb',
    'http://127.0.0.2/cb', 'http://[::1]:34/cb', 'http://127.0.0.1:5x/cb')
{
    $r = $f->get(q_for($loop, redirect_uri => $u), Cookie => $session);
    page_ok($r, "loopback registered, '$u'");
}
my $lq;
($code, $lq, %p) = code_for($loop, redirect_uri => 'http://127.0.0.1:51234/cb');
is($p{_base}, 'http://127.0.0.1:51234/cb',
    'loopback: the code goes to the port the client asked for');
$r = redeem($code, client => $loop, redirect_uri => 'http://127.0.0.1/cb');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'loopback: the registered URI instead of the one sent (R31)');
$r = redeem($code, client => $loop,
    redirect_uri => 'http://127.0.0.1:51234/cb');
is($r->{status}, 200, 'loopback: the identical redirect_uri gets the token');

$r = $f->get(q_for($loop6, redirect_uri => 'http://[::1]:34/cb'),
    Cookie => $session);
is($r->{status}, 200, 'loopback: http://[::1]:34/cb is accepted (R19)');
page_ok($f->get(q_for($loop6, redirect_uri => 'http://127.0.0.1:34/cb'),
    Cookie => $session), 'registered [::1], asked 127.0.0.1');

# a private-use scheme (RFC 8252 7.1) for a native app
my ($nv, $nc) = OAuth2Authorize::pkce();
($code, undef, %p) = code_for($native, code_challenge => $nc,
    code_challenge_method => 'S256');
is($p{_base}, 'com.example.app:/oauth2redirect',
    'a native app gets its code at its private-use scheme URI');
is(redeem($code, client => $native, verifier => $nv,
    redirect_uri => 'com.example.app:/oauth2redirect')->{status}, 200,
    "the native app's code gets a token");
page_ok($f->get(q_for($native,
    redirect_uri => 'COM.example.app:/oauth2redirect',
    code_challenge => $nc, code_challenge_method => 'S256'),
    Cookie => $session), 'a private-use scheme in another case (R19)');

# query components (Keycloak testQueryComponents): registered ?foo=bar
for my $u ('https://client.example/q', 'https://client.example/q?foo=bara',
    'https://client.example/q?foo=bar/', 'https://client.example/q?foo',
    'https://client.example/q?foo2=bar2&foo=bar',
    'https://client.example/q?foo=bar&bar=foo')
{
    $r = $f->get(q_for($qry, redirect_uri => $u), Cookie => $session);
    page_ok($r, "registered ?foo=bar, '$u'");
}
($code, undef, %p) = code_for($qry);
like(loc($f->consent(q_for($qry), $session)) // '',
    qr{^https://client\.example/q\?foo=bar&code=},
    "the registered URI's own query is kept (R23)");
is($p{foo}, 'bar', 'the redirect keeps foo=bar');

# R21: redirect_uri optional with one registered URI, required with two
($code, undef, %p) = code_for($web, redirect_uri => undef);
is($p{_base}, $CB, 'redirect_uri omitted, one registered: it is used (R21)');
$r = redeem($code, client => $web);
is($r->{status}, 200,
    'redirect_uri omitted at both endpoints: the token (R31)');
($code) = code_for($web, redirect_uri => undef);
$r = redeem($code, client => $web, redirect_uri => 'https://evil.example/cb');
{
    # grants.cpp checks the token's redirect_uri only when the request
    # carried one; django-oauth-toolkit (oauthlib confirm_redirect_uri)
    # compares it with the URI the code was sent to
        is($r->{json}{error} // "status $r->{status}", 'invalid_grant',
        'redirect_uri omitted, then an unregistered one at the token '
        . 'endpoint: invalid_grant (R27: the code is bound to it)');
}
$r = $f->get(q_for($web, redirect_uri => '') . '&prompt=consent', Cookie => $session);
is($r->{status}, 200,
    'an empty redirect_uri counts as omitted (RFC 6749 3.1), one registered');
$r = $f->get(q_for($two, redirect_uri => ''), Cookie => $session);
page_ok($r, 'an empty redirect_uri, two registered (R21)');
$r = $f->get(q_for($two, redirect_uri => undef), Cookie => $session);
page_ok($r, 'redirect_uri omitted, two registered (R21)',
    error => 'redirect_uri is required');
$r = $f->get(q_for($two, redirect_uri => 'https://client.example/cb2'),
    Cookie => $session);
is($r->{status}, 200, 'two registered: the second one matches');

# client_id (R20)
page_ok($f->get(q_for($web, client_id => undef), Cookie => $session),
    'client_id missing', error => 'client_id is missing');
page_ok($f->get(q_for($web, client_id => 'x' x 40), Cookie => $session),
    'an unknown client_id', error => 'invalid_client');
# a disabled application is refused as an unknown one, on the error page,
# never sent a code (R20, R70)
{
    my $off = $t->new_app(name => 'switched-off', %grants,
        redirect_uris => [$CB]);
    is($f->get(q_for($off), Cookie => $session)->{status}, 200,
        'an enabled application: the consent page');
    my ($dc, undef, $de) = $t->admin('app', 'disable', $off->{client_id});
    is($dc, 0, 'app disable: exit 0') or diag($de);
    page_ok($f->get(q_for($off), Cookie => $session),
        'a disabled application', error => 'invalid_client');
}
page_ok($f->get(q_for($web, client_id => ''), Cookie => $session),
    'an empty client_id');
page_ok($f->get(q_for($web, client_id => $web->{client_id} . ' '),
    Cookie => $session), 'client_id with a trailing space');
page_ok($f->get(q_for($web, client_id => 'x' x 40, redirect_uri =>
    'https://evil.example/cb', response_type => 'token')),
    'unknown client and another redirect_uri, no session');
page_ok($f->get('client_id=' . $web->{client_id} . '&client_id=x'),
    'client_id twice');
page_ok($f->get(q_for($web) . '&x=%ZZ'), 'a malformed query string');

############################################################ R24, R25, R32

sub back_for {
    my ($app, $error, $name, %over) = @_;
    my $q = q_for($app, %over);
    my $r = $f->get($q, Cookie => $session);
    back_ok($r, $app->{redirect_uris}[0], $error, state_of($q), $name);
    return $r;
}

my ($verifier, $challenge) = OAuth2Authorize::pkce();
back_for($web, 'invalid_scope', 'scope=admin, not allowed',
    scope => 'admin');
back_for($web, 'invalid_scope', 'scope=read read', scope => 'read read');
back_for($web, 'unsupported_response_type', 'response_type=token (R25)',
    response_type => 'token');
back_for($web, 'unsupported_response_type', 'response_type=code token',
    response_type => 'code token');
back_for($web, 'invalid_request', 'response_type missing',
    response_type => undef);
back_for($pub, 'invalid_request', 'a public client without PKCE (R32)');
back_for($web, 'invalid_request', 'code_challenge_method=plain (R32)',
    code_challenge => $challenge, code_challenge_method => 'plain');
back_for($pub, 'invalid_request', 'a public client with method plain (R32)',
    code_challenge => $challenge, code_challenge_method => 'plain');
back_for($web, 'invalid_request', 'a challenge without a method (R32)',
    code_challenge => $challenge);
back_for($web, 'invalid_request', 'code_challenge_method=S512 (R32)',
    code_challenge => $challenge, code_challenge_method => 'S512');
back_for($web, 'invalid_request', 'a method without a challenge (R32)',
    code_challenge_method => 'S256');
back_for($web, 'invalid_request', 'a 42-character challenge (R32)',
    code_challenge => 'A' x 42, code_challenge_method => 'S256');
back_for($web, 'invalid_request', 'a 129-character challenge (R32)',
    code_challenge => 'A' x 129, code_challenge_method => 'S256');
back_for($web, 'invalid_request', 'a challenge with "+" (R32)',
    code_challenge => ('A' x 42) . '+', code_challenge_method => 'S256');
back_for($cc, 'unauthorized_client', 'a client not registered for codes');
$r = back_for($web, 'invalid_scope', 'an error redirect', scope => 'admin');
my %e = params($r);
is($e{iss}, $ISSUER, 'error redirects carry iss too (R23)');
like($e{error_description} // '', qr/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/,
    'error_description is in the RFC 6749 character set');
my $noses = $f->get(q_for($web, scope => 'admin'));
is($noses->{status}, 303, 'invalid_scope without a session: 303 too');

# deny
my $dq = q_for($web);
($r) = $f->consent($dq, $session, action => 'deny');
back_ok($r, $CB, 'access_denied', state_of($dq), 'Deny');

############################################################ CSRF, login

my $aq = q_for($web);
($r) = $f->consent($aq, $session, csrf => undef);
is($r->{status}, 403, 'consent POST without csrf_token: 403');
ok(!defined loc($r), 'consent POST without csrf_token: no code');
($r) = $f->consent($aq, $session, csrf => 'A' x 43);
is($r->{status}, 403, 'consent POST with a wrong csrf_token: 403');
ok(!defined loc($r), 'consent POST with a wrong csrf_token: no code');
($r) = $f->consent($aq, $session, csrf => '');
is($r->{status}, 403, 'consent POST with an empty csrf_token: 403');
my $session2 = $f->login($aq, 'alice', 'Tr0ub4dor-and-3');
ok(defined $session2 && $session2 ne $session, 'a second login: a new session');
my $csrf2 = OAuth2Authorize::csrf_field(
    $f->get("$aq&prompt=consent", Cookie => $session2));
ok(defined $csrf2, "the second session's consent page carries its CSRF token");
($r) = $f->consent($aq, $session, csrf => $csrf2);
is($r->{status}, 403, "consent POST with another session's token: 403");
$r = $f->post($aq, OAuth2Test::form(action => 'allow',
    csrf_token => $consent_csrf));
is($r->{status}, 200, 'consent POST without a session: the login page');
ok(!defined loc($r), 'consent POST without a session: no code');
$r = $f->get($aq, Cookie => 'oauth2_session=' . ('A' x 43));
like($r->{body}, qr/<h1>Sign in/, 'a forged session cookie: the login page');

my $lgq = q_for($web);
my $g = $f->get($lgq);
my $cv = OAuth2Authorize::cookies_of($g)->{oauth2_csrf}{value};
my $login = OAuth2Test::form(action => 'login', csrf_token => $cv,
    username => 'alice', password => 'Tr0ub4dor-and-3');
$r = $f->post($lgq, $login);
is($r->{status}, 403, 'login POST without the CSRF cookie: 403');
ok(!OAuth2Authorize::cookies_of($r)->{oauth2_session},
    'login POST without the CSRF cookie: no session');
$r = $f->post($lgq, $login, Cookie => 'oauth2_csrf=' . ('B' x 43));
is($r->{status}, 403, 'login POST with a CSRF field unlike the cookie: 403');
$r = $f->post($lgq, OAuth2Test::form(action => 'login', username => 'alice',
    password => 'Tr0ub4dor-and-3'), Cookie => "oauth2_csrf=$cv");
is($r->{status}, 403, 'login POST without the CSRF field: 403');
for my $c (['alice', 'wrong', 'a wrong password'],
    ['mallory', 'Tr0ub4dor-and-3', 'an unknown user'],
    ['carol', 'Lantern-quiet-58', 'an inactive user'])
{
    my ($s, $r) = $f->login($lgq, $c->[0], $c->[1]);
    is($r->{status}, 200, "$c->[2]: the login page again");
    like($r->{body}, qr/role="alert">Invalid username or password\./,
        "$c->[2]: the page says so");
    ok(!defined $s, "$c->[2]: no session cookie");
    ok(!defined loc($r), "$c->[2]: no redirect");
}
(undef, $r) = $f->login($lgq, 'alice', '');
like($r->{body}, qr/Enter your username and password/,
    'an empty password: the page asks for it');

############################################################ R26, escaping

my %pages = (
    login => $f->get(q_for($web)),
    consent => $f->get(q_for($web) . '&prompt=consent', Cookie => $session),
    error => $f->get(q_for($web, client_id => 'nope')),
    'CSRF 403' => scalar $f->consent(q_for($web), $session, csrf => 'x'),
);
for my $name (sort keys %pages) {
    my $r = $pages{$name};
    my $csp = hdr($r, 'Content-Security-Policy') // '';
    like($csp, qr/frame-ancestors 'none'/, "$name page: CSP frame-ancestors"
        . ' (R26)');
    like($csp, qr/default-src 'none'/, "$name page: CSP default-src 'none'");
    is(hdr($r, 'X-Frame-Options'), 'DENY', "$name page: X-Frame-Options (R26)");
    is(hdr($r, 'Referrer-Policy'), 'no-referrer',
        "$name page: Referrer-Policy no-referrer (R26)");
    is(hdr($r, 'X-Content-Type-Options'), 'nosniff', "$name page: nosniff");
    like(hdr($r, 'Cache-Control') // '', qr/no-store/,
        "$name page: Cache-Control no-store");
    is(hdr($r, 'Content-Type'), 'text/html; charset=utf-8',
        "$name page: text/html; charset=utf-8");
    unlike($r->{body}, qr{<script|<link|<img|<iframe|https?://}i,
        "$name page: loads no script and no third-party resource (R26)");
    like($r->{body}, qr/^<!DOCTYPE html>\n<html lang="en">/,
        "$name page: an HTML document with a language");
}
$r = $f->get(q_for($web), Origin => 'https://evil.example');
ok(!defined hdr($r, 'Access-Control-Allow-Origin'),
    'no CORS on the authorization endpoint (R26)');
$r = $t->request('OPTIONS', '/o/authorize/?' . q_for($web), headers => [
    Origin => 'https://evil.example',
    'Access-Control-Request-Method' => 'POST']);
ok(!defined hdr($r, 'Access-Control-Allow-Origin'),
    'a CORS preflight gets no Access-Control-Allow-Origin (R26)');
isnt($r->{status}, 200, 'OPTIONS: not a 200');

$r = $f->get(q_for($evil));
unlike($r->{body}, qr/<b>"Evil"/, 'login page: the app name is escaped');
like($r->{body}, qr/&lt;b&gt;&quot;Evil&quot; &amp; Co&lt;\/b&gt;/,
    'login page: the app name is shown escaped');
$r = $f->get(q_for($evil), Cookie => $session);
unlike($r->{body}, qr/<b>"Evil"/, 'consent page: the app name is escaped');
like($r->{body}, qr/<h1>Authorize &lt;b&gt;&quot;Evil&quot; &amp; Co/,
    'consent page: the app name is shown escaped');

$r = $t->request('PUT', '/o/authorize/?' . q_for($web));
is($r->{status}, 405, 'PUT /o/authorize/: 405');
{
    # the shim adds "Allow: POST" to every 405, also for the GET endpoints
        like(hdr($r, 'Allow') // '', qr/\bGET\b/,
        'PUT /o/authorize/: Allow lists GET (RFC 9110 15.5.6)');
}
$r = $f->post(q_for($web), '{"action":"allow"}', Cookie => $session,
    'Content-Type' => 'application/json');
page_ok($r, 'a JSON consent POST');
$r = $f->post(q_for($web), 'action=allow&x=' . ('x' x 20000),
    Cookie => $session);
is($r->{status}, 413, 'a 20 KiB form POST to the authorization endpoint: 413');
ok(!defined loc($r), 'a 20 KiB form POST: no code, no redirect');
{
    # ngx_http_oauth2_too_large() answers JSON for every endpoint
        like(hdr($r, 'Content-Type') // '', qr{^text/html},
        'a 20 KiB form POST: an HTML error page like every other (issue 4)');
    is(hdr($r, 'X-Frame-Options'), 'DENY',
        'a 20 KiB form POST: the page headers (R26)');
}

############################################################ R27-R31

# R28: a second valid redemption gets invalid_grant and revokes every
# token the code issued, also those refreshed from it
($code) = code_for($web);
my ($at1, $rt1) = tokens_of(redeem($code, client => $web, redirect_uri => $CB));
my ($at2, $rt2) = tokens_of($f->refresh($rt1, $web));
is(protected($at2), 200, 'the refreshed access token works');
$r = redeem($code, client => $web, redirect_uri => $CB);
$t->oauth_error_ok($r, 400, 'invalid_grant', 'the code a second time (R28)');
is(protected($at1), 401,
    'after the replay the first access token gets 401 (R28)');
is(protected($at2), 401,
    'after the replay the refreshed access token gets 401 (R28)');
is($f->introspect($at1, $web)->{json}{active}, JSON::PP::false,
    'after the replay introspection says active:false (R28)');
is($f->introspect($rt2, $web)->{json}{active}, JSON::PP::false,
    'after the replay the refresh token is inactive (R28)');
$t->oauth_error_ok($f->refresh($rt2, $web), 400, 'invalid_grant',
    'after the replay the refresh token gets invalid_grant (R28)');
$r = redeem($code, client => $web, redirect_uri => $CB);
$t->oauth_error_ok($r, 400, 'invalid_grant', 'the code a third time');

# R28: a replay that fails verifier, client or redirect_uri checks revokes
# nothing (revocation is no denial of service)
my ($v2, $ch2) = OAuth2Authorize::pkce();
($code) = code_for($web, code_challenge => $ch2,
    code_challenge_method => 'S256');
my ($at3, $rt3) = tokens_of(redeem($code, client => $web,
    redirect_uri => $CB, verifier => $v2));
$r = redeem($code, client => $web, redirect_uri => $CB,
    verifier => (OAuth2Authorize::pkce())[0]);
$t->oauth_error_ok($r, 400, 'invalid_grant', 'replay with a bad verifier');
$r = redeem($code, client => $other, redirect_uri => $CB, verifier => $v2);
$t->oauth_error_ok($r, 400, 'invalid_grant', "replay by another client");
$r = redeem($code, client => { %$web, client_secret => 'wrong' },
    redirect_uri => $CB, verifier => $v2);
$t->oauth_error_ok($r, 401, 'invalid_client', 'replay with a wrong secret');
$r = redeem($code, client => $web, redirect_uri => "$CB/", verifier => $v2);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'replay with another redirect_uri');
is(protected($at3), 200,
    'after those replays the access token still works (R28)');
is($f->introspect($at3, $web)->{json}{active}, JSON::PP::true,
    'after those replays introspection says active (R28)');
$r = redeem($code, client => $web, redirect_uri => $CB, verifier => $v2);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'replay with the right verifier (R28)');
is(protected($at3), 401, 'that replay revokes the access token (R28)');
$t->oauth_error_ok($f->refresh($rt3, $web), 400, 'invalid_grant',
    'that replay revokes the refresh token (R28)');

# R30: a code is bound to its client
($code) = code_for($web);
$r = redeem($code, client => $other, redirect_uri => $CB);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "web's code with other's credentials (R30)");
$r = redeem($code, client => $other, redirect_uri => $CB, auth => 'basic');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "web's code with other's credentials, Basic (R30)");
$r = redeem($code, client => { client_id => $web->{client_id} },
    redirect_uri => $CB);
$t->oauth_error_ok($r, 401, 'invalid_client',
    'a confidential client redeeming without its secret');
$r = redeem($code, client => $web, redirect_uri => $CB);
is($r->{status}, 200, 'the rightful client still redeems it afterwards');
my ($v3, $ch3) = OAuth2Authorize::pkce();
($code) = code_for($pub, code_challenge => $ch3,
    code_challenge_method => 'S256');
$r = redeem($code, client => $pub2, redirect_uri => $CB, verifier => $v3);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "a public client's code sent with another client_id (R30)");
$r = redeem($code, client => { %$pub, client_secret => 'x' }, auth => 'post',
    redirect_uri => $CB, verifier => $v3);
$t->oauth_error_ok($r, 401, 'invalid_client',
    'a public client presenting a secret');
$r = redeem($code, client => { client_id => undef }, redirect_uri => $CB,
    verifier => $v3, auth => 'none');
is($r->{status}, 401, 'no client_id at all: 401');

# public client with PKCE, client_id only (issue 4 item 2)
$r = redeem($code, client => $pub, redirect_uri => $CB, verifier => $v3);
is($r->{status}, 200, 'a public client with PKCE: client_id only, a token');
my ($pat, $prt) = tokens_of($r);
is(protected($pat), 200, "the public client's token opens the API");
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $prt, client_id => $pub->{client_id}));
is($r->{status}, 200, 'the public client refreshes with client_id only');

# R31: the redirect_uri of the request, identical, at the token endpoint
($code) = code_for($web);
for my $c (["$CB/", 'a trailing /'], ['https://CLIENT.example/cb', 'case'],
    ['https://client.example:443/cb', 'an explicit port'],
    ["$CB?x=1", 'an extra query'], ['https://client.example/c%62', 'encoding'],
    ['https://client.example/cb2', 'another URI'], ['', 'empty'])
{
    $r = redeem($code, client => $web, redirect_uri => $c->[0]);
    $t->oauth_error_ok($r, 400, 'invalid_grant',
        "token redirect_uri differs by $c->[1] (R31)");
}
$r = redeem($code, client => $web);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'token redirect_uri omitted although the request had one (R31)');
is(redeem($code, client => $web, redirect_uri => $CB)->{status}, 200,
    'the identical redirect_uri still gets the token');

############################################################ R32 PKCE

my ($v4, $ch4) = OAuth2Authorize::pkce();
($code) = code_for($web, code_challenge => $ch4,
    code_challenge_method => 'S256');
for my $c (['A' x 42, '42 characters'], ['A' x 129, '129 characters'],
    [('A' x 42) . '+/=', '"+/=" characters'], [('A' x 42) . "\xc3\xa9",
    'non-ASCII'])
{
    $r = redeem($code, client => $web, redirect_uri => $CB,
        verifier => $c->[0]);
    $t->oauth_error_ok($r, 400, 'invalid_request',
        "a verifier of $c->[1] (R32)");
}
$r = redeem($code, client => $web, redirect_uri => $CB,
    verifier => (OAuth2Authorize::pkce())[0]);
$t->oauth_error_ok($r, 400, 'invalid_grant', 'a wrong verifier (R32)');
$r = redeem($code, client => $web, redirect_uri => $CB, verifier => $ch4);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'the challenge sent as the verifier (R32)');
$r = redeem($code, client => $web, redirect_uri => $CB);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'a challenge was sent, no verifier (R32)');
$r = redeem($code, client => $web, redirect_uri => $CB, verifier => '');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'an empty verifier counts as none (RFC 6749 3.1): invalid_grant (R32)');
$r = redeem($code, client => $web, redirect_uri => $CB, verifier => $v4);
is($r->{status}, 200, 'S256 with the right verifier: a token (R32)');
($code) = code_for($web);
$r = redeem($code, client => $web, redirect_uri => $CB, verifier => $v4);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'a verifier for a code issued without a challenge (R32 downgrade)');
my ($v128, $ch128) = OAuth2Authorize::pkce('-._~' x 32);
($code) = code_for($pub, code_challenge => $ch128,
    code_challenge_method => 'S256');
is(redeem($code, client => $pub, redirect_uri => $CB,
    verifier => $v128)->{status}, 200,
    'a 128-character verifier of every unreserved kind works (R32)');

############################################################ type confusion

($code) = code_for($web);
is(protected($code), 401, 'a code used as a bearer token: 401');
is($t->get('/protected/', 'X-API-KEY' => $code)->{status}, 401,
    'a code used as X-API-KEY: 401');
is($f->introspect($code, $web)->{json}{active}, JSON::PP::false,
    'a code is not an active token at introspection');
my ($at5, $rt5) = tokens_of(redeem($code, client => $web,
    redirect_uri => $CB));
$t->oauth_error_ok(redeem($at5, client => $web, redirect_uri => $CB), 400,
    'invalid_grant', 'an access token used as a code (2.1)');
$t->oauth_error_ok(redeem($rt5, client => $web, redirect_uri => $CB), 400,
    'invalid_grant', 'a refresh token used as a code (2.1)');
is(protected($at5), 200, 'the access token is not harmed by that');
($code) = code_for($web);
$t->oauth_error_ok($f->refresh($code, $web), 400, 'invalid_grant',
    'a code used as a refresh token (2.1)');
(my $sess_value = $session) =~ s/^oauth2_session=//;
is(protected($sess_value), 401, 'a session cookie used as a bearer token: 401');
$t->oauth_error_ok(redeem($sess_value, client => $web, redirect_uri => $CB),
    400, 'invalid_grant', 'a session cookie used as a code');
is($f->introspect($sess_value, $web)->{json}{active}, JSON::PP::false,
    'a session cookie is not an active token at introspection');
is(redeem($code, client => $web, redirect_uri => $CB)->{status}, 200,
    'the code still works after being tried as a refresh token');
$t->oauth_error_ok(redeem('x' x 43, client => $web, redirect_uri => $CB),
    400, 'invalid_grant', 'an unknown code');
$t->oauth_error_ok(redeem('x' x 10240, client => $web, redirect_uri => $CB),
    400, 'invalid_grant', 'a 10 KiB code (2.1)');
$r = $t->post_form('/o/token/', OAuth2Test::form(
    grant_type => 'authorization_code', client_id => $web->{client_id},
    client_secret => $web->{client_secret}, redirect_uri => $CB));
$t->oauth_error_ok($r, 400, 'invalid_request', 'no code parameter');

# issue 4 item 6: an application registered without the refresh_token
# grant gets no refresh token and cannot refresh
($code) = code_for($nort);
$r = redeem($code, client => $nort, redirect_uri => $CB);
is($r->{status}, 200, 'a client without refresh_token gets an access token');
{
        ok(!defined $r->{json}{refresh_token},
        'a client without the refresh_token grant gets no refresh_token'
        . ' (issue 4 item 6)');
    if (defined $r->{json}{refresh_token}) {
        my $rr = $f->refresh($r->{json}{refresh_token}, $nort);
        is($rr->{json}{error} // 'none', 'unauthorized_client',
            'and it cannot refresh: unauthorized_client (issue 4 item 6)');
    }
}

# a password change or a disabled user ends the sessions and the codes
OAuth2Authorize::user_add($t, 'dave', 'Saffron-dune-47');
my $daveq = q_for($web);
my $dave = $f->login($daveq, 'dave', 'Saffron-dune-47');
($code) = $f->code($daveq, $dave);
my ($rc) = $t->admin('user', 'set-password', 'dave', '--password',
    'Copper-vale-83');
is($rc, 0, 'oauth2-admin user set-password dave');
like($f->get($daveq, Cookie => $dave)->{body}, qr/<h1>Sign in/,
    "after a password change dave's session shows the login page again");
$t->oauth_error_ok(redeem($code, client => $web, redirect_uri => $CB), 400,
    'invalid_grant', 'a code issued before the password change');
$dave = $f->login($daveq, 'dave', 'Copper-vale-83');
($code) = $f->code($daveq, $dave);
($rc) = $t->admin('user', 'set', 'dave', '--active', 'false');
is($rc, 0, 'oauth2-admin user set dave --active false');
like($f->get($daveq, Cookie => $dave)->{body}, qr/<h1>Sign in/,
    "a disabled user's session shows the login page");
$t->oauth_error_ok(redeem($code, client => $web, redirect_uri => $CB), 400,
    'invalid_grant', "a disabled user's code");

############################################################ expiry

# R27: a code expires (oauth2_code_ttl 1s at /short/authorize/)
my ($short) = code_for($web, path => '/short/authorize/');
OAuth2Test::top_of_second();
my ($short2) = code_for($web, path => '/short/authorize/');
is(redeem($short2, client => $web, redirect_uri => $CB)->{status}, 200,
    'a 1 s code redeemed at once: a token');
sleep 2.2;
$t->oauth_error_ok(redeem($short, client => $web, redirect_uri => $CB), 400,
    'invalid_grant', 'a code after its lifetime (R27)');

############################################################ R29 race

# $n clients send the same redemption at the same moment
# (OAuth2Test::race_raw): "200 ok", "400 invalid_grant", ...
sub race {
    my ($n, $body) = @_;
    my $raw = "POST /o/token/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    return map { OAuth2Test::outcome($_) }
        OAuth2Test::race_raw([map { [$t->port, $raw] } 1 .. $n]);
}

my (%tally, @wins);
my $ROUNDS = $ENV{AUTHORIZE_RACE_ROUNDS} || 100;
for my $round (1 .. $ROUNDS) {
    my ($code) = code_for($web);
    my @res = race(32, OAuth2Test::form(grant_type => 'authorization_code',
        code => $code, redirect_uri => $CB, client_id => $web->{client_id},
        client_secret => $web->{client_secret}));
    $tally{$_}++ for @res;
    push @wins, scalar grep { /^200 / } @res;
}
is(join(',', @wins), join(',', (1) x $ROUNDS),
    "32 parallel redemptions of one code, $ROUNDS rounds: exactly one 200"
    . ' each (R29)');
is(join(',', sort keys %tally), '200 ok,400 invalid_grant',
    'the others get 400 invalid_grant, nothing else (R29)')
    or diag(explain \%tally);

############################################################ R34, templates

$r = $t->get('/.well-known/oauth-authorization-server');
is($r->{status}, 200, 'metadata: 200 (R34)');
like(hdr($r, 'Content-Type') // '', qr{^application/json},
    'metadata: JSON');
my $m = $r->{json} // {};
is($m->{issuer}, $ISSUER, 'metadata: issuer (R34)');
is_deeply($m->{code_challenge_methods_supported}, ['S256'],
    'metadata: code_challenge_methods_supported ["S256"] (R34)');
is($m->{authorization_endpoint}, "$ISSUER/o/authorize/",
    'metadata: authorization_endpoint');
is($m->{token_endpoint}, "$ISSUER/o/token/", 'metadata: token_endpoint');
is($m->{introspection_endpoint}, "$ISSUER/o/introspect/",
    'metadata: introspection_endpoint');
is($m->{revocation_endpoint}, "$ISSUER/o/revoke_token/",
    'metadata: revocation_endpoint');
is_deeply($m->{response_types_supported}, ['code'],
    'metadata: response_types_supported ["code"] (R25)');
ok((grep { $_ eq 'authorization_code' } @{$m->{grant_types_supported} // []}),
    'metadata: grant_types_supported lists authorization_code');
is($m->{authorization_response_iss_parameter_supported}, JSON::PP::true,
    'metadata: authorization_response_iss_parameter_supported (RFC 9207)');
is($cb{iss}, $m->{issuer}, 'the iss of the redirect is the metadata issuer');
$r = $t->request('POST', '/.well-known/oauth-authorization-server');
is($r->{status}, 405, 'POST to the metadata: 405');
{
        is(hdr($r, 'Allow'), 'GET, HEAD',
        'POST to the metadata: Allow: GET, HEAD (RFC 9110 15.5.6)');
}

my $cf = OAuth2Authorize->new($t, path => '/custom/authorize/');
my $cq = q_for($evil);
$r = $cf->get($cq);
like($r->{body}, qr/^<!DOCTYPE html><title>Custom sign-in/,
    'the custom login template is served');
like($r->{body}, qr/CUSTOM LOGIN for &lt;b&gt;&quot;Evil/,
    'the custom login template gets the app name, escaped');
my ($cs, $clr) = $cf->login($cq, 'alice', 'wrong');
like($clr->{body}, qr/CUSTOM LOGIN.*Invalid username or password/s,
    'a failed sign-in shows the custom login template with the error');
$cs = $cf->login($cq, 'alice', 'Tr0ub4dor-and-3');
ok(defined $cs, 'signing in through the custom login template works');
$r = $cf->get($cq, Cookie => $cs);
like($r->{body}, qr/^<!DOCTYPE html><title>Custom consent/,
    'the custom consent template is served');
like($r->{body},
    qr/CUSTOM CONSENT: &lt;b&gt;&quot;Evil&quot; &amp; Co&lt;\/b&gt; for alice/,
    'the custom consent template gets the app name (escaped) and the user');
like($r->{body}, qr{<ul class="custom"><li>read</li><li>write</li></ul>},
    'the custom consent template gets the scopes');
is(hdr($r, 'X-Frame-Options'), 'DENY',
    'the custom consent page keeps the security headers (R26)');
($r) = $cf->consent($cq, $cs);
%p = params($r);
like($p{code} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the custom consent form gets a code');
is(redeem($p{code}, client => $evil, redirect_uri => $CB)->{status}, 200,
    "the custom consent page's code gets a token");
$r = $cf->get(q_for($web, client_id => 'nope'));
like($r->{body}, qr{CUSTOM ERROR</h1><p id="e">invalid_client</p>},
    'the custom error template is served with the error code');
is($r->{status}, 400, 'the custom error page: 400');
# a template given in an outer location reaches the one inside
$r = OAuth2Authorize->new($t, path => '/site/authorize/')->get(q_for($web));
is($r->{status}, 200, 'oauth2_authorize_template of an outer location: 200');
like($r->{body}, qr/^<!DOCTYPE html><title>Custom sign-in/,
    'oauth2_authorize_template of an outer location: its login page is served');

# configuration checks (nginx -t)
my $conf2 = $t->dir . '/bad.conf';
for my $c (['oauth2_code_ttl 11m;', qr/oauth2_code_ttl.*1s to 10m/,
        'oauth2_code_ttl over 10 minutes (R27)'],
    ["oauth2_authorize_template consent $tpl/missing.html;",
        qr/cannot open/, 'a missing template file'],
    ["oauth2_authorize_template other $tpl/login.html;",
        qr/"login", "consent" or "error"/, 'an unknown template page'])
{
    $t->write_config(OAuth2Authorize::http_conf($t, extra_http => $c->[0]),
        file => $conf2);
    my ($rc, $out) = $t->nginx_t(file => $conf2);
    isnt($rc, 0, "nginx -t refuses $c->[2]");
    like($out, $c->[1], "nginx -t says why: $c->[2]");
}

diag(sprintf 'authorize.t: %.1fs', time - $T0) if $ENV{VERBOSE};
$t->done_testing;
