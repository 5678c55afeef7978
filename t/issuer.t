# The issuer is configuration, never the request (docs/security.md R87; RFC
# 8414 3.3, RFC 9207, RFC 9068 2.2): with a forged Host, the metadata, the
# authorization response's iss and every JWT's iss and aud still name
# oauth2_issuer; where it is needed and missing, nginx -t says so.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Jwt;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $ISS = 'https://auth.example.com';
my $dir = $t->dir;
my ($code) = $t->_run_cmd('openssl', 'genpkey', '-algorithm', 'EC',
    '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$dir/es256.pem");
chmod 0644, "$dir/es256.pem";
my $web = $t->new_app(name => 'web', grant => 'authorization_code',
    redirect_uris => ['https://client.example/cb']);
my $jwt_app = $t->admin_json('app', 'add', '--name', 'jwt-app', '--grant',
    'client_credentials', '--access-token-format', 'jwt');

# no oauth2_issuer from the harness here: this file writes its own http
sub http {
    my ($issuer_line, $server) = @_;
    return "oauth2_store %%STORE%%;\n$issuer_line\n"
        . "server {\n    listen 127.0.0.1:%%PORT%%;\n$server}\n";
}
my $SERVER = <<"EOF";
    oauth2_jwt_key $dir/es256.pem;
    location = /o/token/ { oauth2_token; }
    location = /o/authorize/ { oauth2_authorize; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
    location = /o/jwks/ { oauth2_jwks; }
    location /protected/ { auth_oauth2 api; alias %%DIR%%/html/; }
EOF

$t->write_config(http("oauth2_issuer $ISS;", $SERVER))->run;

# a request whose Host header names another site
sub evil {
    my ($method, $path, @h) = @_;
    my $body = '';
    my $raw = "$method $path HTTP/1.1\r\nHost: evil.example\r\n"
        . "Connection: close\r\n";
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        if ($k eq 'body') { $body = $v; next }
        $raw .= "$k: $v\r\n";
    }
    $raw .= 'Content-Length: ' . length($body) . "\r\n" if length $body;
    return $t->http("$raw\r\n$body");
}

my $r = evil('GET', '/.well-known/oauth-authorization-server');
is($r->{json}{issuer}, $ISS, 'Host: evil.example: the metadata issuer is '
    . 'still oauth2_issuer (R87)');
like($r->{json}{token_endpoint} // '', qr{^\Q$ISS\E/},
    'and so are the endpoints\' URLs');

$r = evil('GET', '/o/authorize/?client_id=' . $web->{client_id}
    . '&response_type=token&state=s');
is($r->{status}, 303, 'an authorization error goes back to the client');
my ($iss) = (OAuth2Test::header($r, 'Location') // '') =~ /[?&]iss=([^&]*)/;
is($iss, 'https%3A%2F%2Fauth.example.com',
    'its iss (RFC 9207) is oauth2_issuer whatever the Host (R87)');

$r = evil('POST', '/o/token/',
    Authorization => $t->basic($jwt_app->{client_id},
        $jwt_app->{client_secret}),
    'Content-Type' => 'application/x-www-form-urlencoded',
    body => 'grant_type=client_credentials');
is($r->{status}, 200, 'a JWT access token with Host: evil.example: 200');
my (undef, $claims) = OAuth2Jwt::parts($r->{json}{access_token});
is($claims->{iss}, $ISS, 'the JWT carries iss = oauth2_issuer (RFC 9068 2.2)');
is($claims->{aud}, $ISS, 'and aud, the issuer without oauth2_jwt_audience');
is(evil('GET', '/protected/',
    Authorization => "Bearer $r->{json}{access_token}")->{status}, 200,
    'and it opens the protected location');

###################################### nginx -t names the missing issuer

for my $case (
    ['metadata', "    location = /m/ { oauth2_metadata; }\n",
        'oauth2_metadata'],
    ['authorization', "    location = /a/ { oauth2_authorize; }\n",
        'oauth2_authorize'],
    ['JWT key', "    oauth2_jwt_key $dir/es256.pem;\n"
        . "    location = /t/ { oauth2_token; }\n", 'oauth2_jwt_key'],
    ['JWT key at auth_oauth2', "    oauth2_jwt_key $dir/es256.pem;\n"
        . "    location /p/ { auth_oauth2 api; }\n", 'oauth2_jwt_key'])
{
    my ($what, $server, $name) = @$case;
    $t->write_config(http('', $server));
    my ($c, $out) = $t->nginx_t;
    isnt($c, 0, "$what without oauth2_issuer: nginx -t fails");
    like($out, qr/"\Q$name\E" requires "oauth2_issuer <url>", which is never taken from the request/,
        "$what: nginx -t names oauth2_issuer");
}

$t->write_config(http('', "    location = /t/ { oauth2_token; }\n"
    . "    location /p/ { auth_oauth2 api; }\n"));
my ($c) = $t->nginx_t;
is($c, 0, 'opaque tokens only need no issuer: nginx -t ok');

###################################### an issuer with a path (RFC 8414 3)

# The URLs the server names of itself are the issuer's host and the
# location's path, and its locations are under the issuer's path: the
# metadata's token_endpoint and the htu a DPoP proof must name are one URL
# (the metadata put the issuer's path in twice, while DPoP wanted it once)
{
    my $p = OAuth2Test->new;
    my $papp = $p->new_app(name => 'path-app');
    my $conf = http('oauth2_issuer http://127.0.0.1:%%PORT%%/tenant;', <<'EOF');
    location = /tenant/o/token/ { oauth2_token; oauth2_dpop on; }
    location = /.well-known/oauth-authorization-server/tenant { oauth2_metadata; }
EOF
    $p->write_config($conf)->run;
    my $base = 'http://127.0.0.1:' . $p->port;
    my $m = $p->get('/.well-known/oauth-authorization-server/tenant');
    is($m->{json}{issuer}, "$base/tenant", 'a path issuer: the metadata\'s issuer');
    is($m->{json}{token_endpoint}, "$base/tenant/o/token/", '... its '
        . 'token_endpoint: the issuer\'s host and the location\'s path');
    my $python = '/usr/bin/python3';
    open my $fh, '-|', $python, "$FindBin::Bin/lib/dpop_proof.py",
        '--key=' . $p->dir . '/client.pem', '--htm=POST',
        "--htu=$m->{json}{token_endpoint}" or die "dpop_proof: $!";
    my $proof = <$fh> // '';
    close $fh;
    chomp $proof;
    my $r = $p->token($papp->{client_id}, $papp->{client_secret},
        path => '/tenant/o/token/', headers => [DPoP => $proof]);
    is($r->{status}, 200, '... and a DPoP proof naming that URL is taken '
        . '(RFC 9449 4.3)') or diag($r->{raw});
    is($r->{json}{token_type}, 'DPoP', '... for a DPoP-bound token');

    # a trailing "/" on the issuer adds none to the URLs
    $p->edit_config(sub { s{/tenant;}{/tenant/;} });
    $p->reload;
    $m = $p->get('/.well-known/oauth-authorization-server/tenant');
    is($m->{json}{token_endpoint}, "$base/tenant/o/token/",
        'an issuer ending in "/": the same token_endpoint, no "//"');

    # a location the metadata names, not under the issuer's path
    $p->write_config(http('oauth2_issuer https://auth.example.com/tenant;',
        "    location = /o/token/ { oauth2_token; }\n"));
    my ($pc, $pout) = $p->nginx_t;
    isnt($pc, 0, 'a token location outside the issuer\'s path: nginx -t fails');
    like($pout, qr{the location "/o/token/" is not under the path of "oauth2_issuer https://auth\.example\.com/tenant"},
        '... saying which location and issuer');
}

$t->done_testing;
