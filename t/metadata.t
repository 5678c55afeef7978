# RFC 8414 authorization server metadata at oauth2_metadata, built from
# the configuration (issue 4 item 5; docs/security.md R87: the issuer is
# oauth2_issuer, never the request's Host)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $WK = '/.well-known/oauth-authorization-server';

# the default server's oauth2_issuer, no authorization endpoint
my $t = OAuth2Test->new;
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off;',
    extra_server => grant_locations()))->run;
my $ISS = 'http://127.0.0.1:' . $t->port;

# no oauth2_issuer: nginx -t fails, it is never taken from the request
my $n = OAuth2Test->new;
$n->write_config(<<'EOF');
oauth2_store %%STORE%%;
server {
    listen 127.0.0.1:%%PORT%%;
    location = /o/token/ { oauth2_token; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
}
EOF
my ($code, $out) = $n->nginx_t;
isnt($code, 0, 'oauth2_metadata without oauth2_issuer: nginx -t fails (R87)');
like($out, qr/\[emerg\][^\n]*"oauth2_issuer/,
    'nginx -t: the message names oauth2_issuer (R87)') or diag($out);
$n->{done} = 1;    # never started

# with oauth2_issuer and an authorization endpoint
my $u = OAuth2Test->new;
$u->write_config(<<'EOF')->run;
oauth2_store %%STORE%%;
oauth2_client_auth_limit off;
server {
    listen 127.0.0.1:%%PORT%%;
    oauth2_issuer https://auth.example.com;
    location = /o/authorize/ { oauth2_authorize; }
    location = /o/token/ { oauth2_token; }
    location = /o/revoke_token/ { oauth2_revoke; }
    location = /o/introspect/ { oauth2_introspect; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
    location = /slash/.well-known/oauth-authorization-server {
        oauth2_issuer https://auth.example.com/;
        oauth2_metadata;
    }
}
EOF

# GET with a Host header of our choice (undef: none, HTTP/1.0)
sub get_host {
    my ($inst, $path, $host) = @_;
    my $raw = defined $host
        ? "GET $path HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n"
        : "GET $path HTTP/1.0\r\n\r\n";
    return $inst->http($raw);
}

sub has { my ($list, $v) = @_; return scalar grep { $_ eq $v } @{$list // []} }

############################################# the document (RFC 8414 2, 3)

my $r = $t->get($WK);
is($r->{status}, 200, 'GET metadata: 200');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json},
    'metadata: application/json (RFC 8414 3.2)');
my $m = $r->{json};
is(ref $m, 'HASH', 'metadata: a JSON object');
$m //= {};
is($m->{issuer}, $ISS, 'issuer: oauth2_issuer, not the Host of the '
    . 'request (R87)');
unlike($m->{issuer} // '', qr/[?#]/, 'issuer: no query or fragment');
is($m->{token_endpoint}, "$ISS/o/token/",
    'token_endpoint: the oauth2_token location under the issuer');
is($m->{revocation_endpoint}, "$ISS/o/revoke_token/",
    'revocation_endpoint: the oauth2_revoke location');
is($m->{introspection_endpoint}, "$ISS/o/introspect/",
    'introspection_endpoint: the oauth2_introspect location');
ok(has($m->{response_types_supported}, 'code'),
    'response_types_supported holds code (required)');
for my $g (qw(client_credentials password refresh_token)) {
    ok(has($m->{grant_types_supported}, $g), "grant_types_supported: $g");
}
ok(!has($m->{grant_types_supported}, 'implicit'),
    'grant_types_supported: no implicit');
is_deeply($m->{code_challenge_methods_supported}, ['S256'],
    'code_challenge_methods_supported: S256 only, never plain');
for my $k (qw(token_endpoint_auth_methods_supported
    introspection_endpoint_auth_methods_supported))
{
    ok(has($m->{$k}, 'client_secret_basic') && has($m->{$k}, 'client_secret_post'),
        "$k: client_secret_basic and client_secret_post");
}
ok(!has($m->{introspection_endpoint_auth_methods_supported}, 'none'),
    'introspection: no "none" method (R55)');
ok(!has($m->{token_endpoint_auth_methods_supported}, 'private_key_jwt'),
    'no method the module does not implement');
is(scalar(grep { /_endpoint$/ && index($m->{$_}, $m->{issuer} . '/') != 0 }
    keys %$m), 0, 'every endpoint URL lies under the issuer');
ok(!exists $m->{request_parameter_supported} && !exists $m->{request_uri_parameter_supported},
    'without an authorization endpoint: nothing said of its request objects');
{
        ok(exists $m->{authorization_endpoint}
        || !has($m->{grant_types_supported}, 'authorization_code'),
        'without an authorization endpoint: authorization_code is not '
        . 'advertised');
}

# the advertised URLs are the endpoints
$r = $t->post_form('/o/token/', 'grant_type=client_credentials');
is($r->{json}{error}, 'invalid_client',
    'the advertised token endpoint answers as one');
$r = $t->post_form('/o/introspect/', 'token=x');
is($r->{json}{error}, 'invalid_client',
    'the advertised introspection endpoint answers as one');

# the Host header changes nothing (R87)
$r = get_host($t, $WK, 'evil.example');
is($r->{json}{issuer}, $ISS,
    'Host evil.example: still the configured issuer (R87)');
is($r->{json}{token_endpoint}, "$ISS/o/token/",
    'Host evil.example: the token endpoint under the configured issuer '
    . '(R87)');
is(scalar(grep { /_endpoint$/ && index($r->{json}{$_}, "$ISS/") != 0 }
    keys %{$r->{json} // {}}), 0,
    'Host evil.example: every endpoint URL under the configured issuer (R87)');
$r = get_host($t, $WK, undef);
{
        ok(($r->{status} == 200 && ($r->{json}{issuer} // '') eq $ISS)
        || ($r->{status} >= 400 && $r->{status} < 500),
        'HTTP/1.0 without Host: the configured issuer, or a 4xx');
}

# methods: GET (and HEAD) only
$r = $t->request('HEAD', $WK);
is($r->{status}, 200, 'HEAD metadata: 200');
is($r->{body}, '', 'HEAD metadata: no body');
for my $meth (qw(POST PUT DELETE PATCH OPTIONS)) {
    my $r = $meth eq 'POST' ? $t->post_form($WK, 'a=b')
        : $t->request($meth, $WK);
    is($r->{status}, 405, "$meth metadata: 405");
    is(ref $r->{json} eq 'HASH' && $r->{json}{error}, 'invalid_request',
        "$meth metadata: invalid_request");
    {
                like(OAuth2Test::header($r, 'Allow') // '', qr/^GET(, HEAD)?$/,
            "$meth metadata: Allow names GET (RFC 9110 15.5.6)");
    }
}

##################################################### oauth2_issuer

$r = $u->get($WK);
is($r->{status}, 200, 'with oauth2_issuer: 200');
$m = $r->{json} // {};
is($m->{issuer}, 'https://auth.example.com', 'issuer: oauth2_issuer');
is($m->{authorization_endpoint}, 'https://auth.example.com/o/authorize/',
    'authorization_endpoint: the oauth2_authorize location');
is($m->{token_endpoint}, 'https://auth.example.com/o/token/',
    'token_endpoint under oauth2_issuer');
ok(has($m->{grant_types_supported}, 'authorization_code'),
    'with an authorization endpoint: authorization_code advertised');
# OpenID Connect Discovery 3 and RFC 8414 7.1.2's registry: omitted,
# request_uri_parameter_supported means true; the authorization endpoint
# takes no request object (OIDC Core 6), by value or by reference
for my $k (qw(request_parameter_supported request_uri_parameter_supported)) {
    ok(defined $m->{$k} && JSON::PP::is_bool($m->{$k}) && !$m->{$k},
        "with an authorization endpoint: $k is false (OIDC Discovery 3)");
}
$r = get_host($u, $WK, 'evil.example');
is($r->{json}{issuer}, 'https://auth.example.com',
    'oauth2_issuer wins over the Host header (R87)');
is(scalar(grep { /_endpoint$/ && index($m->{$_}, $m->{issuer} . '/') != 0 }
    keys %$m), 0, 'every endpoint URL lies under oauth2_issuer');

$r = $u->get("/slash$WK");
$m = $r->{json} // {};
is($m->{issuer}, 'https://auth.example.com',
    'oauth2_issuer "https://auth.example.com/": the issuer without its '
    . 'slash, as JWTs carry it (R87, RFC 8414 3.3)');
is($m->{token_endpoint}, 'https://auth.example.com/o/token/',
    'oauth2_issuer "https://auth.example.com/": token_endpoint with one "/"');
{
        unlike($m->{token_endpoint} // '', qr{^https://[^/]+//},
        'oauth2_issuer "https://auth.example.com/": no "//" in the '
        . 'endpoint URLs');
}

$t->done_testing;
