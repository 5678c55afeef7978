# Each realm's URLs name its own endpoints: the discovery document
# (RFC 8414) and the device flow's verification_uri (RFC 8628 3.2) use the
# first location of each endpoint in the realm, not in the whole http{}
# block.  Two sites on one nginx: shop1 (listed first, its endpoints under
# /auth/shop1/) and the default realm (the seeds' /o/ paths).  A realm
# whose device authorization endpoint has no verification page of its own
# fails nginx -t, even when another realm has one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
my ($code, $out, $err) = $t->admin('realm', 'add', 'shop1');
is($code, 0, 'realm add shop1') or diag($err);
my $tv0 = $t->new_app(name => 'TV', public => 1, grant => [$GRANT]);
my $tv1 = $t->admin_json('--realm', 'shop1',
    OAuth2Test::app_add_args(name => 'Shop TV', public => 1, grant => [$GRANT]));

my $SHOP1 = <<'EOF';
server {
    listen 127.0.0.1:%%PORT_1%%;
    oauth2_realm shop1;
    oauth2_issuer http://127.0.0.1:%%PORT_1%%;
    location = /auth/shop1/token/ { oauth2_token; }
    location = /auth/shop1/revoke/ { oauth2_revoke; }
    location ~ ^/auth/shop1/introspect/$ { oauth2_introspect; }
    location = /auth/shop1/device_authorization/ { oauth2_device_authorization; }
    location /auth/shop1/device/ { oauth2_device; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
}
EOF
my $DEFAULT_EXTRA = <<'EOF';
    location = /o/introspect/ { oauth2_introspect; }
    location = /o/authorize/ { oauth2_authorize; }
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device/ { oauth2_device; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
EOF
# shop1's server comes first: its locations are the first of each
# endpoint in the http{} block
my $http = $t->default_http(extra_server => $DEFAULT_EXTRA);
$http =~ s/^(server \{)/$SHOP1$1/m or die 'no server block';
$t->write_config($http)->run;
ok($t->_wait_port($t->port(1)), "nginx listens on shop1's port");

my $ISS0 = 'http://127.0.0.1:' . $t->port;
my $ISS1 = 'http://127.0.0.1:' . $t->port(1);

sub metadata {
    my (@port) = @_;
    my $r = $t->get('/.well-known/oauth-authorization-server', @port);
    is($r->{status}, 200, 'metadata: 200' . (@port ? ' (shop1)' : ''));
    return $r->{json} // {};
}

# ------------------------------------------------------------ metadata

my $m0 = metadata();
is($m0->{issuer}, $ISS0, 'default: issuer');
is($m0->{token_endpoint}, "$ISS0/o/token/",
    "default: token_endpoint is its own, not shop1's (listed first)");
is($m0->{revocation_endpoint}, "$ISS0/o/revoke_token/", 'default: revocation_endpoint');
is($m0->{introspection_endpoint}, "$ISS0/o/introspect/", 'default: introspection_endpoint');
is($m0->{authorization_endpoint}, "$ISS0/o/authorize/", 'default: authorization_endpoint');
is($m0->{device_authorization_endpoint}, "$ISS0/o/device_authorization/",
    'default: device_authorization_endpoint');
ok((grep { $_ eq 'authorization_code' } @{$m0->{grant_types_supported} // []}),
    'default: authorization_code among the grant types (it has an authorization endpoint)');

my $m1 = metadata('-port' => $t->port(1));
is($m1->{issuer}, $ISS1, 'shop1: issuer');
is($m1->{token_endpoint}, "$ISS1/auth/shop1/token/", 'shop1: token_endpoint is its own');
is($m1->{revocation_endpoint}, "$ISS1/auth/shop1/revoke/", 'shop1: revocation_endpoint');
ok(!exists $m1->{introspection_endpoint},
    "shop1: no introspection_endpoint (its is a regex location), not default's");
ok(!exists $m1->{authorization_endpoint},
    "shop1: no authorization_endpoint (it has none), not default's");
ok(!(grep { $_ eq 'authorization_code' } @{$m1->{grant_types_supported} // []}),
    'shop1: no authorization_code grant without an authorization endpoint (RFC 8414 2)');
is($m1->{device_authorization_endpoint}, "$ISS1/auth/shop1/device_authorization/",
    'shop1: device_authorization_endpoint');

# ------------------------------------------------------ verification_uri

my $d0 = $t->post_form('/o/device_authorization/',
    OAuth2Test::form(client_id => $tv0->{client_id}));
is($d0->{status}, 200, 'default: device authorization: 200') or diag($d0->{body});
is($d0->{json}{verification_uri}, "$ISS0/o/device/",
    "default: verification_uri is its own page, not shop1's");
like($d0->{json}{verification_uri_complete} // '', qr{^\Q$ISS0/o/device/?user_code=\E},
    'default: verification_uri_complete under it');

my $d1 = $t->post_form('/auth/shop1/device_authorization/',
    OAuth2Test::form(client_id => $tv1->{client_id}), '-port' => $t->port(1));
is($d1->{status}, 200, 'shop1: device authorization: 200') or diag($d1->{body});
is($d1->{json}{verification_uri}, "$ISS1/auth/shop1/device/",
    'shop1: verification_uri is its own page');
my $page = $t->get("/auth/shop1/device/?user_code=$d1->{json}{user_code}",
    '-port' => $t->port(1));
is($page->{status}, 200, "shop1: its verification page answers");

# ------------------------------------------------------------- nginx -t

my $D = $t->dir;
sub conf_t {
    my ($text) = @_;
    $t->write_config($text, file => "$D/check.conf");
    return $t->nginx_t(file => "$D/check.conf");
}

# shop2's device authorization endpoint, with no page in shop2: the
# default realm's /o/device/ is not shop2's
($code, $out) = conf_t($t->default_http(extra_server => $DEFAULT_EXTRA) . <<'EOF');
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm shop2;
    oauth2_issuer http://127.0.0.1:%%PORT_2%%;
    location = /auth/shop2/device_authorization/ { oauth2_device_authorization; }
}
EOF
isnt($code, 0, "nginx -t: a realm's device authorization endpoint without its own page fails");
like($out, qr/"oauth2_device_authorization" needs a prefix or exact location with "oauth2_device" in its realm \("shop2"\)/,
    'nginx -t: ... naming the realm') or diag($out);

# a page in a regex location names no verification_uri
($code, $out) = conf_t($t->default_http(extra_server => $DEFAULT_EXTRA) . <<'EOF');
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm shop2;
    oauth2_issuer http://127.0.0.1:%%PORT_2%%;
    location = /auth/shop2/device_authorization/ { oauth2_device_authorization; }
    location ~ ^/auth/shop2/device/$ { oauth2_device; }
}
EOF
isnt($code, 0, "nginx -t: shop2's page only in a regex location fails");
like($out, qr/in its realm \("shop2"\)/, 'nginx -t: ... naming shop2') or diag($out);

# its own page, after the endpoint in the file: fine
($code, $out) = conf_t($t->default_http(extra_server => $DEFAULT_EXTRA) . <<'EOF');
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm shop2;
    oauth2_issuer http://127.0.0.1:%%PORT_2%%;
    location = /auth/shop2/device_authorization/ { oauth2_device_authorization; }
    location /auth/shop2/device/ { oauth2_device; }
}
EOF
is($code, 0, "nginx -t: shop2 with its own page passes") or diag($out);

# each realm needs an issuer of its own: relying parties tell id_tokens
# (and JWTs) apart by iss and aud alone, and a client_id (aud) may be the
# same in two realms.  shop2 inheriting http{}'s issuer, the default
# realm's, fails (before, nginx -t passed and shop1's id_token for its
# user 7 verified at an RP of shop2 as shop2's user 7)
($code, $out) = conf_t($t->default_http(extra_server => $DEFAULT_EXTRA) . <<'EOF');
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm shop2;
    location = /auth/shop2/token/ { oauth2_token; }
}
EOF
isnt($code, 0, 'nginx -t: a realm inheriting another realm\'s issuer fails');
like($out, qr/"oauth2_issuer http:\/\/127\.0\.0\.1:\d+" is realm "(default|shop2)"'s issuer too: each realm needs an issuer of its own/,
    'nginx -t: ... naming the issuer and the other realm') or diag($out);
($code, $out) = conf_t($t->default_http(extra_server => $DEFAULT_EXTRA) . <<'EOF');
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm shop2;
    location = /auth/shop2/token/ { oauth2_token; }
    location /shop2/api/ { auth_oauth2 "api"; oauth2_issuer http://127.0.0.1:%%PORT%%; }
}
server {
    listen 127.0.0.1:%%PORT_2%%;
    server_name second.example;
    oauth2_realm shop2;
    oauth2_issuer https://shop2.example;
    location = /auth/shop2/token/ { oauth2_token; }
}
EOF
like($out, qr/is realm "(default|shop2)"'s issuer too/,
    'nginx -t: ... also when one location of the realm names it');
($code, $out) = conf_t($t->default_http(extra_server => $DEFAULT_EXTRA) . <<'EOF');
server {
    listen 127.0.0.1:%%PORT_2%%;
    oauth2_realm shop2;
    oauth2_issuer https://shop2.example;
    location = /auth/shop2/token/ { oauth2_token; }
}
server {
    listen 127.0.0.1:%%PORT_2%%;
    server_name second.example;
    oauth2_realm shop2;
    oauth2_issuer https://shop2.example;
    location /shop2/api/ { auth_oauth2 "api"; }
}
EOF
is($code, 0, 'nginx -t: two servers of one realm sharing its issuer pass') or diag($out);

$t->done_testing;
