# The sign-in cookies' Secure flag (RFC 6265 4.1.2.5, OWASP's Session
# Management Cheat Sheet; the authorization endpoint's oauth2_csrf,
# oauth2_session and oauth2_device): set when the browser talks https to the
# server, whether nginx ends TLS itself or sits behind a proxy that does
# (then oauth2_issuer, the URL the browser uses, is https); never over
# plain http to an http issuer, where a browser would drop the cookie.
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

# the page, then the sign-in; (the responses, every Set-Cookie value)
sub sign_in {
    my ($via) = @_;
    my ($get, $post);
    if ($via eq 'tls') {
        my $url = 'https://127.0.0.1:' . $t->port(2) . $PAGE;
        $get = tls($url);
        my $csrf = OAuth2Test::cookies_of($get)->{oauth2_csrf}{value} // '';
        $post = tls('-H', "Cookie: oauth2_csrf=$csrf", '--data',
            OAuth2Test::form(action => 'login', csrf_token => $csrf,
                username => 'dora', password => $PW), $url);
    } else {
        my @port = $via eq 'proxy' ? ('-port' => $t->port(3)) : ();
        $get = $t->get($PAGE, @port);
        my $csrf = OAuth2Test::cookies_of($get)->{oauth2_csrf}{value} // '';
        $post = $t->post_form($PAGE, OAuth2Test::form(action => 'login',
                csrf_token => $csrf, username => 'dora', password => $PW),
            Cookie => "oauth2_csrf=$csrf", @port);
    }
    my @set = map { @{$_->{headers}{'set-cookie'} // []} } $get, $post;
    return ($get, $post, @set);
}

for my $case (['plain', 'plain http, an http issuer', 0],
              ['tls', 'TLS ended by nginx', 1],
              ['proxy', 'behind a proxy ending TLS (an https issuer)', 1]) {
    my ($via, $what, $secure) = @$case;
    my ($get, $post, @set) = sign_in($via);
    is($get->{status}, 200, "$what: the page") or diag($get->{raw});
    is($post->{status}, 303, "$what: dora signs in: 303") or diag($post->{raw});
    my %names = map { /^([^=]+)=/ ? ($1 => 1) : () } @set;
    is_deeply([sort keys %names], [qw(oauth2_csrf oauth2_device oauth2_session)],
        "$what: the CSRF, device and session cookies");
    for my $c (@set) {
        my ($name) = $c =~ /^([^=]+)=/;
        like($c, qr/;\s*HttpOnly/i, "$what: $name is HttpOnly");
        if ($secure) {
            like($c, qr/;\s*Secure(;|$)/i, "$what: $name is Secure");
        } else {
            unlike($c, qr/;\s*Secure/i, "$what: $name is not Secure");
        }
    }
    # the session signs dora in on the server that set it
    my ($s) = map { /^oauth2_session=([^;]+)/ ? $1 : () } @set;
    my $page = $via eq 'tls'
        ? tls('-H', "Cookie: oauth2_session=$s",
            'https://127.0.0.1:' . $t->port(2) . $PAGE)
        : $t->get($PAGE, Cookie => "oauth2_session=$s",
            $via eq 'proxy' ? ('-port' => $t->port(3)) : ());
    is($page->{status}, 200, "$what: the page with the session: 200");
    unlike($page->{body}, qr/name="password"/,
        "$what: signed in (no sign-in form)");
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
