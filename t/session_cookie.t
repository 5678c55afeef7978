# The sign-in cookies' Secure flag (RFC 6265 4.1.2.5, OWASP's Session
# Management Cheat Sheet; the authorization endpoint's oauth2_csrf,
# oauth2_session and oauth2_device): set when the browser talks https to the
# server, whether nginx ends TLS itself or sits behind a proxy that does
# (then oauth2_issuer, the URL the browser uses, is https); never over
# plain http to an http issuer, where a browser would drop the cookie.
# Where they are Secure their names carry the "__Host-" prefix (RFC 6265bis
# 4.1.3.2): a browser takes such a cookie only from this host, Path=/ and
# no Domain, so a sibling host under the same registrable domain cannot
# plant a session or a CSRF value (login CSRF), and the unprefixed names
# it can plant are not read.
# Each server signs dora in through the authorized-grants page, and the
# session then opens that page on the same server.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $PAGE = '/o/authorized_tokens/';
my $PW = 'Tr0ub4dor-and-3';
OAuth2Authorize::user_add($t, 'dora', $PW);

my $dir = $t->dir;
mkdir "$dir/tls" or die "mkdir: $!";
my ($code, $out, $err) = $t->_run_cmd('/usr/bin/openssl', 'req', '-x509',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=127.0.0.1', '-days', 2,
    '-keyout', "$dir/tls/key.pem", '-out', "$dir/tls/cert.pem");
die "openssl req: $out$err" if $code;

# port 0: plain http, issuer http://127.0.0.1:<port> (the default);
# port 2: TLS ended by nginx, the same issuer; port 3: plain http behind
# a proxy that ends TLS, issuer https://auth.example.com
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_server => "    location = $PAGE { oauth2_authorized_grants; }\n",
    extra_http => <<"EOF"))->run;
server {
    listen 127.0.0.1:%%PORT_2%% ssl;
    ssl_certificate $dir/tls/cert.pem;
    ssl_certificate_key $dir/tls/key.pem;
    location = $PAGE { oauth2_authorized_grants; }
}
server {
    listen 127.0.0.1:%%PORT_3%%;
    oauth2_issuer https://auth.example.com;
    location = $PAGE { oauth2_authorized_grants; }
}
EOF

# a request over TLS with curl (-k: the certificate is self-signed)
sub tls {
    my (@args) = @_;
    my ($c, $o, $e) = $t->_run_cmd('/usr/bin/curl', '-sk', '-i',
        '--max-time', 10, @args);
    return { status => 0, headers => {}, body => '', raw => "curl: $c $e" }
        if $c;
    return OAuth2Test::parse_response($o);
}

# the page through $via, with these Cookie header values
sub page_via {
    my ($via, @cookies) = @_;
    return tls((map { ('-H', "Cookie: $_") } @cookies),
        'https://127.0.0.1:' . $t->port(2) . $PAGE) if $via eq 'tls';
    return $t->get($PAGE, @cookies ? (Cookie => [@cookies]) : (),
        $via eq 'proxy' ? ('-port' => $t->port(3)) : ());
}

# the sign-in form posted through $via with $csrf in the form and the
# cookie $cookie ("name=value")
sub post_via {
    my ($via, $csrf, $cookie) = @_;
    my $form = OAuth2Test::form(action => 'login', csrf_token => $csrf,
        username => 'dora', password => $PW);
    return tls('-H', "Cookie: $cookie", '--data', $form,
        'https://127.0.0.1:' . $t->port(2) . $PAGE) if $via eq 'tls';
    return $t->post_form($PAGE, $form, Cookie => $cookie,
        $via eq 'proxy' ? ('-port' => $t->port(3)) : ());
}

# the page, then the sign-in; (the responses, every Set-Cookie value)
sub sign_in {
    my ($via, $prefix) = @_;
    my $get = page_via($via);
    my $csrf = OAuth2Test::cookies_of($get)->{"${prefix}oauth2_csrf"}{value}
        // '';
    my $post = post_via($via, $csrf, "${prefix}oauth2_csrf=$csrf");
    my @set = map { @{$_->{headers}{'set-cookie'} // []} } $get, $post;
    return ($get, $post, @set);
}

for my $case (['plain', 'plain http, an http issuer', 0],
              ['tls', 'TLS ended by nginx', 1],
              ['proxy', 'behind a proxy ending TLS (an https issuer)', 1]) {
    my ($via, $what, $secure) = @$case;
    my $prefix = $secure ? '__Host-' : '';
    my ($get, $post, @set) = sign_in($via, $prefix);
    is($get->{status}, 200, "$what: the page") or diag($get->{raw});
    is($post->{status}, 303, "$what: dora signs in: 303") or diag($post->{raw});
    my %names = map { /^([^=]+)=/ ? ($1 => 1) : () } @set;
    is_deeply([sort keys %names],
        [map { "$prefix$_" } qw(oauth2_csrf oauth2_device oauth2_session)],
        "$what: the CSRF, device and session cookies"
        . ($secure ? ', named __Host-' : ', unprefixed'));
    for my $c (@set) {
        my ($name) = $c =~ /^([^=]+)=/;
        like($c, qr/;\s*HttpOnly/i, "$what: $name is HttpOnly");
        if ($secure) {
            like($c, qr/;\s*Secure(;|$)/i, "$what: $name is Secure");
        } else {
            unlike($c, qr/;\s*Secure/i, "$what: $name is not Secure");
        }
    }
    for my $c (grep { /^__Host-/ } @set) {
        like($c, qr/;\s*Path=\/(;|$)/i, "$what: $c: Path=/");
        unlike($c, qr/;\s*Domain=/i, "$what: $c: no Domain");
    }
    # the session signs dora in on the server that set it
    my ($s) = map { /^\Q$prefix\Eoauth2_session=([^;]+)/ ? $1 : () } @set;
    my $page = page_via($via, "${prefix}oauth2_session=$s");
    is($page->{status}, 200, "$what: the page with the session: 200");
    unlike($page->{body}, qr/name="password"/,
        "$what: signed in (no sign-in form)");
    next unless $secure;
    # what a sibling host can plant (Domain=, so no __Host- prefix): the
    # same session under the plain name signs no one in, and a CSRF value
    # of its choosing under the plain name passes no sign-in form
    $page = page_via($via, "oauth2_session=$s");
    like($page->{body}, qr/name="password"/,
        "$what: the session under the unprefixed name is not read");
    my $planted = post_via($via, 'planted-csrf-value-0123456789',
        'oauth2_csrf=planted-csrf-value-0123456789');
    is($planted->{status}, 403,
        "$what: a CSRF value under the unprefixed name: 403 (login CSRF)")
        or diag($planted->{raw});
    ok(!grep({ /oauth2_session=/ } @{$planted->{headers}{'set-cookie'} // []}),
        "$what: and no session is set");
}

# RFC 6265 5.4 asks for one Cookie header, but HTTP/2 clients and some
# proxies send several: each is read, the session and the CSRF cookie in
# a second one too
{
    my $get = $t->get($PAGE);
    my $csrf = OAuth2Test::cookies_of($get)->{oauth2_csrf}{value} // '';
    my $post = $t->post_form($PAGE, OAuth2Test::form(action => 'login',
            csrf_token => $csrf, username => 'dora', password => $PW),
        Cookie => ['theme=dark', "oauth2_csrf=$csrf"]);
    is($post->{status}, 303,
        'the CSRF cookie in a second Cookie header: dora signs in: 303');
    my $s = OAuth2Test::cookies_of($post)->{oauth2_session}{value} // '';
    my $page = $t->get($PAGE, Cookie => ['theme=dark', "oauth2_session=$s"]);
    is($page->{status}, 200, 'the session in a second Cookie header: 200');
    unlike($page->{body}, qr/name="password"/,
        'the session in a second Cookie header: signed in (no sign-in form)');
}

$t->done_testing;
