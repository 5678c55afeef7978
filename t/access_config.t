# auth_oauth2 among nginx's other checks and redirects (docs/security.md
# R65, R67): "satisfy any" with allow/deny, auth_request and SSI
# subrequests, error_page and named locations.  nginx runs no access
# handler in a subrequest; auth_oauth2 checks one itself, so that an
# auth_request to an auth_oauth2 location is a check, never an open door.
# README "Validate" lists what each configuration does.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 ();
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'rs', scope => 'read write');
my $D = $t->dir;
mkdir "$D/ssi" or die "mkdir: $!";
open my $fh, '>', "$D/ssi/page.html" or die;
print $fh "open[<!--# include virtual=\"/protected/index.html\" -->]\n";
close $fh;
# an htpasswd file: user "staff", password "staff-pass" (salted SHA-1)
my ($hc, $hash) = $t->_run_cmd('/usr/bin/openssl', 'passwd', '-apr1',
    'staff-pass');
die "openssl passwd: $hash" if $hc;
chomp $hash;
open $fh, '>', "$D/htpasswd" or die;
print $fh "staff:$hash\n";
close $fh;

$t->write_config($t->default_http(
    extra_http => "limit_req_zone \$binary_remote_addr zone=chk:1m rate=1r/m;\n",
    extra_server => <<'EOF'))->run;
    location /any/ {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_oauth2 "api";
        alias %%DIR%%/html/;
    }
    location /any-denied/ {
        satisfy any;
        deny all;
        auth_oauth2 "api";
        alias %%DIR%%/html/;
    }
    location /either/ {
        satisfy any;
        auth_basic "staff";
        auth_basic_user_file %%DIR%%/htpasswd;
        auth_oauth2 "api";
        alias %%DIR%%/html/;
    }
    location /all/ {
        allow 127.0.0.1;
        deny all;
        auth_oauth2 "api";
        alias %%DIR%%/html/;
    }
    location /gate/ {
        auth_request /_check;
        auth_request_set $who $oauth2_client_id;
        add_header X-Who "[$who]" always;
        alias %%DIR%%/html/;
    }
    location = /_check {
        internal;
        auth_oauth2 "api";
        auth_oauth2_scope read;
        empty_gif;
    }
    location /gate-admin/ {
        auth_request /_check_admin;
        alias %%DIR%%/html/;
    }
    location = /_check_admin {
        internal;
        auth_oauth2 "api";
        auth_oauth2_scope admin;
        empty_gif;
    }
    # the checking location's own limit_req applies after a pass too
    location /gate-limited/ {
        auth_request /_check_limited;
        alias %%DIR%%/html/;
    }
    location = /_check_limited {
        internal;
        limit_req zone=chk nodelay;
        auth_oauth2 "api";
        empty_gif;
    }
    # a checking location whose error_page would turn a refusal into 200,
    # and one that answers with return (rewrite phase)
    location /gate-ep/ {
        auth_request /_check_ep;
        alias %%DIR%%/html/;
    }
    location = /_check_ep {
        internal;
        auth_oauth2 "api";
        error_page 401 403 =200 /ep-ok.html;
        empty_gif;
    }
    location = /ep-ok.html { alias %%DIR%%/html/index.html; }
    location /gate-ret/ {
        auth_request /_check_ret;
        alias %%DIR%%/html/;
    }
    location = /_check_ret {
        internal;
        auth_oauth2 "api";
        return 204;
    }
    # satisfy any: auth_basic refuses too, then auth_request lets in
    location /sso/ {
        satisfy any;
        auth_oauth2 "api";
        auth_basic "staff";
        auth_basic_user_file %%DIR%%/htpasswd;
        auth_request /_open;
        alias %%DIR%%/html/;
    }
    location = /_open { internal; return 204; }
    location /ssi/ { ssi on; alias %%DIR%%/ssi/; }
    location /tf/ { auth_oauth2 "api"; try_files /nothing-here @strict; }
    location @strict {
        auth_oauth2 "api";
        auth_oauth2_scope admin;
        error_page 403 = @audit;
    }
    location @audit {
        return 200 "client=[$oauth2_client_id] error=[$oauth2_error]\n";
    }
    location /twice/ {
        auth_oauth2 "api";
        auth_oauth2_scope admin;
        error_page 403 = @stricter;
        alias %%DIR%%/html/;
    }
    location @stricter { auth_oauth2 "api"; auth_oauth2_scope superuser; }
EOF

my $tok = $t->access_token($app);
my $bad = 'not-a-token-' . ('x' x 30);
sub challenges { @{$_[0]{headers}{'www-authenticate'} // []} }

########################################################## satisfy any

# allow lets the request in whatever the token: that is what "satisfy any"
# asks for; the refusal's challenge is not left on the 200
my $r = $t->get('/any/', Authorization => "Bearer $bad");
is($r->{status}, 200, 'satisfy any, allow matches: a bad token passes (200)');
is(scalar(challenges($r)), 0, '... and the 200 carries no WWW-Authenticate (R67)')
    or diag(join ' | ', challenges($r));
$r = $t->get('/any-denied/', Authorization => "Bearer $bad");
is($r->{status}, 401, 'satisfy any, deny all: a bad token is refused (401)');
is(scalar(challenges($r)), 1, '... with one WWW-Authenticate');
is($t->get('/any-denied/', Authorization => "Bearer $tok")->{status}, 200,
    'satisfy any, deny all: a valid token passes (200)');
is($t->get('/all/', Authorization => "Bearer $bad")->{status}, 401,
    'satisfy all (the default), allow matches: a bad token is refused (401)');

# auth_basic beside it under satisfy any: a request with neither gets both
# challenges, and either credential lets it in
$r = $t->get('/either/');
is($r->{status}, 401, 'satisfy any, auth_basic and auth_oauth2, nothing sent: 401');
is_deeply([sort map { /^(\w+)/ ? $1 : '' } challenges($r)], ['Basic', 'Bearer'],
    '... with both challenges, Basic and Bearer')
    or diag(join ' | ', challenges($r));
is($t->get('/either/', Authorization => 'Basic '
        . MIME::Base64::encode_base64('staff:staff-pass', ''))->{status}, 200,
    '... the password lets it in: 200');
$r = $t->get('/either/', Authorization => "Bearer $tok");
is($r->{status}, 200, '... a valid token lets it in: 200');
is(scalar(challenges($r)), 0, '... with no challenge left on the 200');

# auth_request lets in where auth_basic and auth_oauth2 refused: nginx
# hides the one challenge headers_out names (auth_basic's), and ours is
# not left on the 200 either
$r = $t->get('/sso/');
is($r->{status}, 200, 'satisfy any, auth_basic and auth_oauth2 refuse, '
    . 'auth_request lets in: 200');
is(scalar(challenges($r)), 0, '... with no challenge left on the 200 (R67)')
    or diag(join ' | ', challenges($r));

######################################################## auth_request

# the checking location's error_page does not turn a refusal into a pass
for my $case (['no token'], ['a bad token', Authorization => "Bearer $bad"]) {
    my ($name, @h) = @$case;
    $r = $t->get('/gate-ep/', @h);
    is($r->{status}, 401, "auth_request to a location with error_page 401 =200, "
        . "$name: 401 (R67)");
    unlike($r->{body}, qr/^hello/, '... without the protected file');
}
is($t->get('/gate-ep/', Authorization => "Bearer $tok")->{status}, 200,
    '... a valid token: 200');
# a checking location that answers "return 204" checks first
$r = $t->get('/gate-ret/');
is($r->{status}, 401, 'auth_request to a location of "return 204", no token: '
    . '401 (R67)');
is($t->get('/gate-ret/', Authorization => "Bearer $bad")->{status}, 401,
    '... a bad token: 401');
is($t->get('/gate-ret/', Authorization => "Bearer $tok")->{status}, 200,
    '... a valid token: 200');

# a passing check goes on through its phase: the checking location's
# limit_req (1 a minute) refuses the second request (503, which
# auth_request turns into 500), as it would without the module
is($t->get('/gate-limited/', Authorization => "Bearer $tok")->{status}, 200,
    'auth_request to a location with limit_req, a valid token: 200');
is($t->get('/gate-limited/', Authorization => "Bearer $tok")->{status}, 500,
    '... the second within the minute: refused by limit_req (500 from auth_request)');

$r = $t->get('/gate/');
is($r->{status}, 401,
    'auth_request to an auth_oauth2 location, no token: 401 (R67)');
like(join(' | ', challenges($r)), qr/^Bearer realm="api"/,
    '... with the challenge of the checking location');
$r = $t->get('/gate/', Authorization => "Bearer $bad");
is($r->{status}, 401, 'auth_request, a bad token: 401');
like(join(' | ', challenges($r)), qr/error="invalid_token"/,
    '... error="invalid_token"');
$r = $t->get('/gate/', Authorization => "Bearer $tok");
is($r->{status}, 200, 'auth_request, a valid token: 200');
is($r->{body}, "hello\n", '... the file');
is(OAuth2Test::header($r, 'X-Who'), "[$app->{client_id}]",
    '... and auth_request_set reads $oauth2_client_id from the check');
$r = $t->get('/gate-admin/', Authorization => "Bearer $tok");
is($r->{status}, 403, 'auth_request, a token without the scope: 403');
my $rv = $t->revoke($app->{client_id}, $app->{client_secret}, $tok);
is($rv->{status}, 200, 'the token is revoked');
is($t->get('/gate/', Authorization => "Bearer $tok")->{status}, 401,
    'auth_request, the revoked token on the next request: 401 (R66)');
$tok = $t->access_token($app);

################################################################ SSI

$r = $t->get('/ssi/page.html');
is($r->{status}, 200, 'an open SSI page including a protected file: 200');
unlike($r->{body}, qr/hello/, '... without a token the protected file is not included');
$r = $t->get('/ssi/page.html', Authorization => "Bearer $tok");
like($r->{body}, qr/^open\[hello\n\]/, '... with a valid token it is');

################################################ redirects and named locations

# a location that found the token valid, then a named location that
# refuses it (a missing scope): the identity is not handed on to the
# error_page that follows
$r = $t->get('/tf/', Authorization => "Bearer $tok");
is($r->{status}, 200, 'try_files to a stricter named location, then error_page');
is($r->{body}, "client=[] error=[insufficient_scope]\n",
    '... $oauth2_client_id is empty once the last check refused (R67)');

# two refusals in a row (error_page to a location that refuses again):
# one WWW-Authenticate, the last check's
$r = $t->get('/twice/', Authorization => "Bearer $tok");
is($r->{status}, 403, 'a refusal, then error_page to one that refuses: 403');
my @c = challenges($r);
is(scalar(@c), 1, '... with one WWW-Authenticate (R65)') or diag(join ' | ', @c);
like($c[0] // '', qr/scope="superuser"/, '... the last check\'s');

$t->done_testing;
