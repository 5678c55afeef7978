# Client libraries as their users run them (issue 14 item 6), against
# nginx with conf.example/full.conf localized as make run does
# (scripts/run-demo): /o/token/, /o/revoke_token/, /o/introspect/,
# /o/authorize/, /.well-known/oauth-authorization-server, the auth_oauth2
# location /api/v1/.  Each library runs as a script of
# t/clients/interop/ that prints one "result {json}" line per flow; every
# flow is asserted here by name.  npm: simple-oauth2,
# @badgateway/oauth2-client, oauth4webapi, openid-client (its plain
# OAuth 2 functions), installed by scripts/install-deps with npm ci;
# Debian: python3-requests-oauthlib, python3-authlib.  A missing library
# fails, never skips.  docs/security.md R27, R28, R37, R48-R52, R56.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use JSON::PP ();
use Test::More;
use OAuth2Test;
use OAuth2Authorize;
use ClientScript;

OAuth2Test::require_build();

my $CLIENTS = "$FindBin::Bin/clients/interop";
my $NODE = '/usr/bin/node';
my $PYTHON = '/usr/bin/python3';
my @NPM = ('simple-oauth2', '@badgateway/oauth2-client', 'oauth4webapi',
    'openid-client');

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $port = $t->port;
my $base = "http://127.0.0.1:$port";
my $CB = "$base/callback";

################################################ users, applications

my ($user, $pw) = ('interop', 'Quartz-Meadow-Lantern-17');
OAuth2Authorize::user_add($t, $user, $pw);
my $login = $t->new_app(name => 'demo login',
    grant => ['password', 'refresh_token'], first_party => 1);

my %apps;
for my $lib (@NPM, 'requests-oauthlib', 'authlib') {
    $apps{$lib} = {
        cc => $t->new_app(name => "$lib backend", grant => 'client_credentials',
            scope => 'read write'),
        pw => $t->new_app(name => "$lib legacy",
            grant => ['password', 'refresh_token'], scope => 'read write'),
        web => { %{$t->new_app(name => "$lib web",
            grant => ['authorization_code', 'refresh_token'],
            scope => 'read write', redirect_uris => [$CB])},
            redirect_uri => $CB },
    };
}

################################################ make run's nginx.conf

my $src = "$OAuth2Test::ROOT/conf.example";
my ($code) = $t->_run_cmd('openssl', 'genpkey', '-algorithm', 'EC',
    '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$dir/jwt-es256.pem");
die "openssl genpkey: $code" if $code;
($code) = $t->_run_cmd('openssl', 'genpkey', '-algorithm', 'RSA',
    '-pkeyopt', 'rsa_keygen_bits:2048', '-out', "$dir/jwt-rs256.pem");
die "openssl genpkey RSA: $code" if $code;
OAuth2Test::write_file("$dir/service-api-token",
    "a-service-token-of-some-length\n");
chmod 0644, "$dir/jwt-es256.pem", "$dir/jwt-rs256.pem", "$dir/service-api-token";
# as scripts/run-demo makes it: plain http, the daemon's scheme nginx's
(my $proxy = OAuth2Test::_slurp("$src/oauth2_proxy.conf"))
    =~ s/X-Forwarded-Proto https;/X-Forwarded-Proto \$scheme;/
    or BAIL_OUT('conf.example/oauth2_proxy.conf and scripts/run-demo differ');
OAuth2Test::write_file("$dir/oauth2_proxy.conf", $proxy);

# the substitutions of scripts/run-demo, in the same order
my $conf = OAuth2Test::_slurp("$src/full.conf");
my $daemon = $t->daemon_port;
my $lid = $login->{client_id};
my @subst = (
    [qr{/usr/lib/nginx/modules/ngx_http_oauth2_module\.so}, $OAuth2Test::MODULE],
    [qr{/var/lib/nginx/oauth2}, "$dir/store"],
    [qr{127\.0\.0\.1:8080}, "127.0.0.1:$port"],
    [qr{unix:/run/oauth2-admin/admin\.sock}, "127.0.0.1:$daemon"],
    [qr{/var/log/nginx/oauth2\.log}, "$dir/access.log"],
    [qr{root /var/www/html;}, "root $dir/html;"],
    [qr{return 302 https://www\.example\.com/;}, 'return 302 /index.html;'],
    [qr{proxy_pass http://127\.0\.0\.1:9000;}, "alias $dir/html/;"],
    [qr{# location = /users/login/  \{ oauth2_login <client_id>; \}},
        "location = /users/login/ { oauth2_login $lid; }"],
    [qr{# location = /api/token/         \{ oauth2_jwt_token <client_id>; \}},
        "location = /api/token/ { oauth2_jwt_token $lid; }"],
    [qr{# location = /api/token/refresh/ \{ oauth2_jwt_refresh <client_id>; \}},
        "location = /api/token/refresh/ { oauth2_jwt_refresh $lid; }"],
    [qr{/etc/nginx/oauth2/jwt-es256\.pem;}, "$dir/jwt-es256.pem;"],
    [qr{/etc/nginx/oauth2/jwt-rs256\.pem;}, "$dir/jwt-rs256.pem;"],
    [qr{/etc/nginx/oauth2/service-api-token;}, "$dir/service-api-token;"],
    [qr{/etc/nginx/oauth2/handshake\.key;}, "$dir/handshake.key;"],
    [qr{oauth2_issuer https://auth\.example\.com;},
        "oauth2_issuer $base;"],
    [qr{worker_processes auto;},
        "worker_processes 2;\npid $dir/nginx.pid;"],
);
for my $s (@subst) {
    my ($re, $to) = @$s;
    ok($conf =~ s/$re/$to/g, "full.conf has what make run replaces: $re")
        or BAIL_OUT('conf.example/full.conf and scripts/run-demo differ');
}
OAuth2Test::write_file("$dir/nginx.conf", $conf);
$t->run;

my $m = $t->get('/.well-known/oauth-authorization-server');
is($m->{status}, 200, 'make run serves the RFC 8414 metadata');
# seed 003's root redirect (HOME_URL; make run's is its own page)
$m = $t->get('/');
is($m->{status}, 302, 'GET /: 302, seed 003\'s redirect to HOME_URL');
like(OAuth2Test::header($m, 'Location') // '', qr{/index\.html$},
    '... to make run\'s HOME_URL');

################################################ the libraries

my %cfg = (base => $base, username => $user, password => $pw,
    apps => \%apps);
my $JSON = JSON::PP->new->canonical;
my %res;

# runs @cmd with the configuration on stdin; returns its exit status and
# fills %res from its result lines
sub run_client {
    my ($name, $env, @cmd) = @_;
    ClientScript::run($name, \%cfg, \%res, $env, @cmd);
}

ok(-x $NODE, "node is installed (scripts/install-deps)");
for my $lib (@NPM) {
    ok(-f "$CLIENTS/node_modules/$lib/package.json",
        "npm package $lib is installed (scripts/install-deps: npm ci)");
}
for my $lib (@NPM) {
    (my $script = $lib) =~ s{^\@([^/]+)/}{$1-};
    run_client($script, {}, $NODE, "$CLIENTS/$script.mjs");
}
run_client('python', { OAUTHLIB_INSECURE_TRANSPORT => 1 }, $PYTHON,
    "$CLIENTS/python_clients.py");

################################################ what each flow gave

my $T = JSON::PP::true;
my $F = JSON::PP::false;

# flow name => [field, expected, what a user sees], per flow every
# library runs; the libraries that lack one are listed in %lacks
my @FLOWS = (
    [client_credentials => [token => $T, 'an access token'],
        [resource => 200, 'the token opens the auth_oauth2 location']],
    [client_credentials_wrong_secret =>
        [error => 'invalid_client', 'the library raises invalid_client']],
    [password => [token => $T, 'an access token'],
        [refresh => $T, 'a refresh token'],
        [resource => 200, 'the token opens the auth_oauth2 location']],
    [code_pkce => [consent => 'Authorize LIB web?',
            'the consent page asked about the app'],
        # (the npm libraries check the state themselves, or throw)
        [state_ok => $T, 'the state came back'],
        [refresh => $T, 'a refresh token'],
        [resource => 200, 'the token opens the auth_oauth2 location']],
    [code_replay => [error => 'invalid_grant',
        'the same code again: the library raises invalid_grant (R27)']],
    [refresh => [rotated => $T, 'a new refresh token (R37)'],
        [resource => 200, 'the new access token opens the location']],
    [introspect => [active => $T, 'the library reads active: true'],
        [client_id_ok => $T, 'and the client_id']],
    [revoke => [error => undef, "the library's revoke call succeeds"],
        [resource_after => 401, 'the revoked token: 401 at auth_oauth2'],
        [active_after => $F, 'the revoked token: introspection inactive']],
    [discovery => [token_endpoint => "$base/o/token/",
        'RFC 8414 metadata names the token endpoint']],
);
my %lacks = (
    'simple-oauth2' => { introspect => 1, discovery => 1 },
    'requests-oauthlib' => { introspect => 1, discovery => 1 },
    'authlib' => { discovery => 1 },
);

my $r;
for my $lib (@NPM, 'requests-oauthlib', 'authlib') {
    for my $f (@FLOWS) {
        my ($flow, @checks) = @$f;
        next if $lacks{$lib}{$flow};
        $r = $res{$lib}{$flow};
        ok($r, "$lib $flow: ran") or next;
        is($r->{exception}, undef, "$lib $flow: no unexpected exception");
        for my $c (@checks) {
            my ($field, $want, $what) = @$c;
            $want =~ s/LIB/$lib/ if defined $want;
            is($r->{$field}, $want, "$lib $flow: $what");
        }
    }
}

# the extra flows some libraries have
# oauth4webapi (and openid-client on it) throws its challenge error for
# the 401 with WWW-Authenticate: Basic that RFC 6749 5.2 asks for, the
# body's invalid_client read from the response it keeps
for my $lib ('oauth4webapi', 'openid-client') {
    $r = $res{$lib}{client_credentials_wrong_secret} // {};
    is($r->{thrown}, 'WWWAuthenticateChallengeError',
        "$lib, wrong secret: its error for a 401 with a challenge");
    is($r->{status}, 401, "$lib, wrong secret: status 401");
}

$r = $res{'simple-oauth2'}{revoke_all} // {};
is($r->{exception}, undef, 'simple-oauth2 revokeAll: no exception');
is($r->{active_after}, $F,
    'simple-oauth2 revokeAll: the refresh token is inactive (R52)');

$t->done_testing;
