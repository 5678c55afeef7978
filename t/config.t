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
conf_fails($srv->('location = /o/device_authorization/ { oauth2_device_authorization; }'),
    qr/"oauth2_device_authorization" needs .*"oauth2_device"/,
    'oauth2_device_authorization without an oauth2_device location');
conf_fails($srv->('location = /o/device_authorization/ { oauth2_device_authorization; }'
    . ' location ~ ^/o/device/$ { oauth2_device; }'),
    qr/"oauth2_device_authorization" needs/,
    'oauth2_device only in a regex location (no verification_uri)');
conf_ok($srv->('location = /o/device_authorization/ { oauth2_device_authorization; }'
    . ' location = /o/device/ { oauth2_device; }'),
    'oauth2_device_authorization with its oauth2_device page');
conf_ok($srv->('location = /o/device/ { oauth2_device; }'),
    'oauth2_device alone');

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
conf_fails($srv->('location / { oauth2_token; }', ''),
    qr/oauth2_store/, 'oauth2_token without oauth2_store');
conf_fails($srv->('location / { auth_oauth2 api; }', ''),
    qr/oauth2_store/, 'auth_oauth2 without oauth2_store');
conf_fails($srv->('location / { oauth2_revoke; }', ''),
    qr/oauth2_store/, 'oauth2_revoke without oauth2_store');

$t->done_testing;
