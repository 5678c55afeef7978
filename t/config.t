# configuration errors are caught by nginx -t with a clear message
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;

sub conf_fails {
    my ($http, $re, $name) = @_;
    $t->write_config($http);
    my ($code, $out) = $t->nginx_t;
    isnt($code, 0, "$name: nginx -t fails");
    like($out, $re, "$name: the message names it") or diag($out);
}

sub conf_ok {
    my ($http, $name) = @_;
    $t->write_config($http);
    my ($code, $out) = $t->nginx_t;
    is($code, 0, "$name: nginx -t passes") or diag($out);
}

my $srv = sub {
    my ($loc, $http) = @_;
    return ($http // 'oauth2_store %%STORE%%;') . "\n"
        . "server { listen 127.0.0.1:%%PORT%%; $loc }\n";
};

conf_ok($t->default_http, 'the default test config');
conf_ok($srv->('location / { auth_oauth2 "api"; auth_oauth2_scope read write;'
    . ' oauth2_access_token_ttl 10m; oauth2_default_scope read;'
    . ' oauth2_client_auth_limit 5 30s; oauth2_thread_pool off; }'),
    'every directive at location level');
conf_ok($srv->('location / { oauth2_client_auth_limit off; auth_oauth2 off; }'),
    'oauth2_client_auth_limit off, auth_oauth2 off');
conf_ok($srv->('location / { oauth2_token; }',
    'oauth2_store %%STORE%% size=64m;'), 'oauth2_store size=64m');
conf_ok($srv->('location / { oauth2_token; }',
    'oauth2_store %%STORE%% size=1g;'), 'oauth2_store size=1g');
ok(!-e $t->store, 'nginx -t does not create the store (R76)');

# RFC 8628: the device authorization response names the verification page
my $iss = 'oauth2_issuer https://auth.example;';
conf_fails($srv->("$iss location = /o/device_authorization/ { oauth2_device_authorization; }"),
    qr/"oauth2_device_authorization" needs .*"oauth2_device"/,
    'oauth2_device_authorization without an oauth2_device location');
conf_fails($srv->("$iss location = /o/device_authorization/ { oauth2_device_authorization; }"
    . ' location ~ ^/o/device/$ { oauth2_device; }'),
    qr/"oauth2_device_authorization" needs/,
    'oauth2_device only in a regex location (no verification_uri)');
conf_ok($srv->("$iss location = /o/device_authorization/ { oauth2_device_authorization; }"
    . ' location = /o/device/ { oauth2_device; }'),
    'oauth2_device_authorization with its oauth2_device page');
conf_ok($srv->("$iss location = /o/device/ { oauth2_device; }"),
    'oauth2_device alone');

# R87: the device flow's verification_uri is built on the issuer, and
# the pages that sign a browser in take from it whether their cookies
# are Secure (__Host-) behind a proxy that ends TLS
for my $d (qw(oauth2_device_authorization oauth2_device
              oauth2_authorized_grants oauth2_end_session)) {
    my $extra = $d eq 'oauth2_device_authorization'
        ? "location = /o/device/ { $iss oauth2_device; }" : '';
    conf_fails($srv->("$extra location = /o/x/ { $d; }"),
        qr/"$d" requires "oauth2_issuer <url>", which is never taken from the request/,
        "$d without oauth2_issuer (R87)");
}

conf_fails($srv->('location / { auth_oauth2; }'),
    qr/auth_oauth2/, 'auth_oauth2 without arguments');
conf_fails($srv->('location / { auth_oauth2 a b; }'),
    qr/auth_oauth2/, 'auth_oauth2 with two arguments');
conf_fails('oauth2_store %%STORE%%; oauth2_token;' . "\n"
    . 'server { listen 127.0.0.1:%%PORT%%; }',
    qr/oauth2_token/, 'oauth2_token in http context');
conf_fails($srv->('oauth2_revoke;'), qr/oauth2_revoke/,
    'oauth2_revoke in server context');
conf_fails($srv->('location / { oauth2_token on; }'), qr/oauth2_token/,
    'oauth2_token with an argument');
conf_fails($srv->('location / { oauth2_token; }',
    "oauth2_store %%STORE%%;\noauth2_store %%DIR%%/other;"),
    qr/oauth2_store/, 'oauth2_store twice');
conf_fails($srv->('location / { oauth2_token; }',
    'oauth2_store %%STORE%% size=abc;'), qr/oauth2_store|size/,
    'oauth2_store size=abc');
conf_fails($srv->('location / { oauth2_token; }',
    'oauth2_store %%STORE%% bogus=1;'), qr/oauth2_store|bogus/,
    'oauth2_store unknown parameter');
conf_fails($srv->('location / { oauth2_token; oauth2_store %%STORE%%; }', ''),
    qr/oauth2_store/, 'oauth2_store in location context');
conf_fails($srv->('location / { oauth2_access_token_ttl abc; }'),
    qr/oauth2_access_token_ttl/, 'oauth2_access_token_ttl abc');
conf_fails($srv->('location / { auth_oauth2 api; auth_oauth2_scope "a\"b"; }'),
    qr/auth_oauth2_scope/, 'auth_oauth2_scope with a quote');
conf_fails($srv->('location / { auth_oauth2 api; auth_oauth2_scope "a\\\\b"; }'),
    qr/auth_oauth2_scope/, 'auth_oauth2_scope with a backslash');
conf_fails($srv->('location / { auth_oauth2 api; auth_oauth2_scope ""; }'),
    qr/auth_oauth2_scope/, 'auth_oauth2_scope empty');
conf_fails($srv->('location / { auth_oauth2 "a\"b"; }'),
    qr/auth_oauth2/, 'realm containing a quote (R65)');
conf_fails($srv->('location / { oauth2_default_scope "r\"x"; }'),
    qr/oauth2_default_scope/, 'oauth2_default_scope with a quote');
conf_fails($srv->('location / { oauth2_client_auth_limit abc 60s; }'),
    qr/oauth2_client_auth_limit/, 'oauth2_client_auth_limit abc');
conf_fails($srv->('location / { oauth2_client_auth_limit 10 xyz; }'),
    qr/oauth2_client_auth_limit/, 'oauth2_client_auth_limit bad time');
# R65: the realm goes into every challenge as a quoted-string, and nginx's
# "\r\n" escapes would put a line break into the header
conf_fails($srv->('location / { auth_oauth2 ' . ('r' x 129) . '; }'),
    qr/invalid realm "r{129}" in "auth_oauth2": 1 to 128 printable/,
    'a realm of 129 characters (R65)');
conf_ok($srv->('location / { auth_oauth2 ' . ('r' x 128) . '; }'),
    'a realm of 128 characters');
conf_fails($srv->('location / { auth_oauth2 "api\\r\\nX-Injected: 1"; }'),
    qr/invalid realm "api.*?" in "auth_oauth2"/s,
    'a realm with CR LF (R65: no split header)');
conf_fails($srv->('location / { auth_oauth2 "a\\\\b"; }'),
    qr/invalid realm "a\\b" in "auth_oauth2"/,
    'a realm with a backslash (R65)');

# R63: every argument is one scope, all of them required
conf_fails($srv->('location / { auth_oauth2 api; auth_oauth2_scope "read write"; }'),
    qr/invalid scope "read write" in "auth_oauth2_scope"/,
    'auth_oauth2_scope "read write": a space in one argument (R63)');

# R87: the issuer is an http or https URL
for my $iss ('ftp://auth.example', 'auth.example', 'https://') {
    conf_fails($srv->('location / { oauth2_token; }',
        "oauth2_store %%STORE%%;\noauth2_issuer $iss;"),
        qr/"oauth2_issuer" directive must be an http or https URL/,
        "oauth2_issuer $iss (R87)");
}
conf_ok($srv->('location / { oauth2_token; }',
    "oauth2_store %%STORE%%;\noauth2_issuer https://auth.example/;"),
    'oauth2_issuer https://auth.example/');

# R17, R83: a count of 0 is no limit ("off" says so), a window is 1s to 1d
conf_fails($srv->('location / { oauth2_client_auth_limit 0 60s; }'),
    qr/invalid count "0" in "oauth2_client_auth_limit": 1 to 100000/,
    'oauth2_client_auth_limit 0 60s (R17)');
conf_fails($srv->('location / { oauth2_account_limit 10 2d; }'),
    qr/invalid time "2d" in "oauth2_account_limit": 1s to 1d/,
    'oauth2_account_limit 10 2d (R83)');
conf_ok($srv->('location / { oauth2_account_limit 10 1d; }'),
    'oauth2_account_limit 10 1d');

# the lifetimes' ranges, each edge of each: said with the directive
my $ttl = 'must be 1s to 68y \\(2147483647 seconds\\)';
for my $c (['oauth2_access_token_ttl 0', $ttl],
    ['oauth2_refresh_token_ttl 0', $ttl],
    # seed 004's "100 years": beyond a 32-bit second count
    ['oauth2_access_token_ttl 100y', $ttl],
    ['oauth2_refresh_token_ttl 69y', $ttl],
    ['oauth2_code_ttl 0', 'must be 1s to 10m \\(RFC 6749 4.1.2\\)'],
    ['oauth2_code_ttl 601s', 'must be 1s to 10m \\(RFC 6749 4.1.2\\)'],
    ['oauth2_device_code_ttl 0', 'must be 1s to 1d'],
    ['oauth2_device_code_ttl 86401s', 'must be 1s to 1d'],
    ['oauth2_refresh_token_grace 86401s', 'must be 0 to 1d'])
{
    my ($d) = $c->[0] =~ /^(\S+)/;
    conf_fails($srv->("location / { $c->[0]; }"), qr/"$d" $c->[1]/,
        "$c->[0] (R27, R38)");
}
for my $c ('oauth2_code_ttl 10m', 'oauth2_device_code_ttl 1d',
    'oauth2_access_token_ttl 68y',
    'oauth2_refresh_token_grace 0', 'oauth2_refresh_token_grace 1d')
{
    conf_ok($srv->("location / { $c; }"), $c);
}
# R16: one floor, the daemon's and the CLI's too
for my $n (0, 1, 999, 100000001) {
    conf_fails($srv->("location / { oauth2_pbkdf2_iterations $n; }"),
        qr/"oauth2_pbkdf2_iterations" must be 1000 to 100000000/,
        "oauth2_pbkdf2_iterations $n");
}
conf_ok($srv->('location / { oauth2_pbkdf2_iterations 1000; }'),
    'oauth2_pbkdf2_iterations 1000');

# R82: a store below 1m has no room for its own tables
conf_fails($srv->('location / { oauth2_token; }',
    'oauth2_store %%STORE%% size=512k;'),
    qr/invalid size "size=512k" of "oauth2_store", it must be at least 1m/,
    'oauth2_store size=512k (R82)');
conf_ok($srv->('location / { oauth2_token; }',
    'oauth2_store %%STORE%% size=1m;'), 'oauth2_store size=1m');

# one endpoint a location: a second would silently replace the first
conf_fails($srv->('location / { oauth2_token; oauth2_revoke; }'),
    qr/"oauth2_revoke" directive is duplicate/,
    'oauth2_token and oauth2_revoke in one location');

# oauth2_status: a service token of 16 characters at least
my $short = OAuth2Test::write_file($t->dir . '/short.token', "fifteen-chars-x\n");
my $long = OAuth2Test::write_file($t->dir . '/long.token', "sixteen-chars-xx\n");
conf_fails($srv->("location = /s/ { oauth2_status svc X-Service-Token $short; }"),
    qr/"oauth2_status": the service token must have at least 16 characters/,
    'oauth2_status with a token of 15 characters');
conf_ok($srv->("location = /s/ { oauth2_status svc X-Service-Token $long; }"),
    'oauth2_status with a token of 16 characters');

# R78: an empty store path would be nginx's prefix directory itself
conf_fails($srv->('location / { oauth2_token; }', 'oauth2_store "";'),
    qr/"oauth2_store" needs a directory/, 'oauth2_store "" (R78)');
ok(!-e $t->dir . '/data.mdb', 'oauth2_store "": no store in the prefix');

# the master gives the store's directory to the workers' user: never "/",
# nginx's prefix (Debian's holds the modules load_module follows), or a
# path through "." or ".."
for my $p ('.', './', '/', '//', '%%STORE%%/..', '%%STORE%%/./x', '../x') {
    conf_fails($srv->('location / { oauth2_token; }', "oauth2_store $p;"),
        qr/"oauth2_store" needs a directory of its own/, "oauth2_store $p");
}
conf_fails($srv->('location / { oauth2_token; }', 'oauth2_store ' . $t->dir . '/;'),
    qr/"oauth2_store" needs a directory of its own/,
    'oauth2_store naming nginx\'s prefix');
conf_ok($srv->('location / { oauth2_token; }', 'oauth2_store %%STORE%%/;'),
    'oauth2_store with a trailing slash');
conf_ok($srv->('location / { oauth2_token; }', 'oauth2_store %%STORE%%..x;'),
    'oauth2_store whose name has dots in it');

# oauth2_rate_limit: the count is 32 bits, and a larger n would wrap
conf_fails($srv->('location / { oauth2_rate_limit 4294967296/h; oauth2_token; }'),
    qr{invalid rate "4294967296/h" in "oauth2_rate_limit": <n> must be 1 to 1000000000},
    'oauth2_rate_limit 4294967296/h');
conf_fails($srv->('location / { oauth2_rate_limit 1000000001/s; oauth2_token; }'),
    qr{<n> must be 1 to 1000000000}, 'oauth2_rate_limit 1000000001/s');
conf_ok($srv->('location / { oauth2_rate_limit 1000000000/d; oauth2_token; }'),
    'oauth2_rate_limit 1000000000/d');

# oauth2_metrics is a location's handler too: one a location
conf_fails($srv->('location / { oauth2_token; oauth2_metrics; }'),
    qr/"oauth2_metrics" directive cannot share a location with an endpoint directive/,
    'oauth2_token, then oauth2_metrics in one location');
conf_fails($srv->('location / { oauth2_metrics; oauth2_token; }'),
    qr/"oauth2_token" directive cannot share a location with "oauth2_metrics"/,
    'oauth2_metrics, then oauth2_token in one location');
conf_fails($srv->('location / { oauth2_metrics; oauth2_metrics; }'),
    qr/"oauth2_metrics" directive is duplicate/, 'oauth2_metrics twice');

# the handshake's sub-paths follow its location's prefix
for my $l ('~ ^/api/auth/handshake/', '= /api/auth/handshake/create/', '@hs') {
    conf_fails($srv->("location $l { oauth2_handshake; }"),
        qr/"oauth2_handshake" directive must be in a prefix location/,
        "oauth2_handshake in location $l");
}

# oauth2_cluster: a mirror is never fresher than 100ms, and needs a store
for my $ms ('50ms', '0') {
    conf_fails($srv->('location / { oauth2_token; }', "oauth2_store %%STORE%%;\n"
        . "oauth2_cluster etcd=http://127.0.0.1:%%PORT_2%% max_staleness=$ms;"),
        qr/"oauth2_cluster" directive has an invalid max_staleness=, it must be a time of 100ms/,
        "oauth2_cluster max_staleness=$ms");
}
conf_ok($srv->('location / { oauth2_token; }', "oauth2_store %%STORE%%;\n"
    . 'oauth2_cluster etcd=http://127.0.0.1:%%PORT_2%% max_staleness=100ms;'),
    'oauth2_cluster max_staleness=100ms');
conf_fails($srv->('location / { }',
    'oauth2_cluster etcd=http://127.0.0.1:%%PORT_2%%;'),
    qr/"oauth2_cluster" needs "oauth2_store", the mirror that oauth2-admin sync keeps/,
    'oauth2_cluster without oauth2_store');

# oauth2_status: a header name a request can carry
for my $h ('"X Token"', 'X:Token') {
    conf_fails($srv->("location = /s/ { oauth2_status svc $h $long; }"),
        qr/"oauth2_status" directive has an invalid header name/,
        "oauth2_status with the header name $h");
}

# oauth2_login issues to one application, named
conf_fails($srv->('location = /l/ { oauth2_login ""; }'),
    qr/"oauth2_login" needs the client_id of the application whose tokens it issues/,
    'oauth2_login ""');
conf_ok($srv->('location = /l/ { oauth2_login web; }'), 'oauth2_login web');

# a directive twice in one block: the second would silently replace the
# first (in http{} and server{} each, the inner one wins as it should)
for my $c (['location / { auth_oauth2 api; auth_oauth2 off; }',
        'auth_oauth2', 'auth_oauth2 api, then off'],
    ['location / { auth_oauth2 api; auth_oauth2_scope admin;'
        . ' auth_oauth2_scope read; }', 'auth_oauth2_scope',
        'auth_oauth2_scope admin, then read (R63)'],
    ['oauth2_issuer https://a.example; oauth2_issuer https://b.example;'
        . ' location / { oauth2_token; }', 'oauth2_issuer',
        'oauth2_issuer twice in one server (R87)'],
    ['oauth2_realm shop; oauth2_realm blog; location / { oauth2_token; }',
        'oauth2_realm', 'oauth2_realm twice in one server (R47)'],
    ['location / { oauth2_client_auth_limit 5 1m;'
        . ' oauth2_client_auth_limit off; }', 'oauth2_client_auth_limit',
        'oauth2_client_auth_limit 5 1m, then off (R17)'],
    ['location / { oauth2_account_limit 100 1h;'
        . ' oauth2_account_limit off; }', 'oauth2_account_limit',
        'oauth2_account_limit 100 1h, then off (R17)'])
{
    conf_fails($srv->($c->[0]), qr/"$c->[1]" directive is duplicate/, $c->[2]);
}
conf_ok($srv->('oauth2_issuer https://b.example; oauth2_realm shop;'
    . ' location / { oauth2_token; }', "oauth2_store %%STORE%%;\n"
    . "oauth2_issuer https://a.example;\noauth2_realm blog;"),
    'oauth2_issuer and oauth2_realm in http{} and again in server{}');

# R17: a window that ends as it opens throttles nothing
for my $d ('oauth2_client_auth_limit', 'oauth2_account_limit') {
    conf_fails($srv->("location / { $d 5 0s; }"),
        qr/invalid time "0s" in "$d": 1s to 1d/, "$d 5 0s (R17)");
}

# R88: no hash slot at all would queue every sign-in until 503
conf_fails($srv->('location / { oauth2_token; }',
    "oauth2_store %%STORE%%;\noauth2_hash_limit 0;"),
    qr/invalid number "0" in "oauth2_hash_limit": 1 to 1024/,
    'oauth2_hash_limit 0 (R88)');
conf_ok($srv->('location / { oauth2_token; }',
    "oauth2_store %%STORE%%;\noauth2_hash_limit 1;"), 'oauth2_hash_limit 1');

# R82: the background expiry runs at most once a second
for my $i ('999ms', '1ms') {
    conf_fails($srv->('location / { oauth2_token; }',
        "oauth2_store %%STORE%%;\noauth2_expiry_cleanup $i;"),
        qr/invalid interval "$i" in "oauth2_expiry_cleanup": 1s to 1d, or off/,
        "oauth2_expiry_cleanup $i (R82)");
}
conf_ok($srv->('location / { oauth2_token; }',
    "oauth2_store %%STORE%%;\noauth2_expiry_cleanup 1s;"),
    'oauth2_expiry_cleanup 1s');
ok(!-e $t->store, 'none of these nginx -t runs created the store (R76)');

conf_fails($srv->('location / { oauth2_token; }', ''),
    qr/oauth2_store/, 'oauth2_token without oauth2_store');
conf_fails($srv->('location / { auth_oauth2 api; }', ''),
    qr/oauth2_store/, 'auth_oauth2 without oauth2_store');
conf_fails($srv->('location / { oauth2_revoke; }', ''),
    qr/oauth2_store/, 'oauth2_revoke without oauth2_store');

$t->done_testing;
