# client_credentials at the token endpoint (seed 000; README "Token";
# docs/security.md R9, R12, R18, R41, R42, R44)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MIME::Base64 qw(encode_base64);
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'worker');
my $narrow = $t->new_app(name => 'narrow', scope => 'read');
# an application registered for another grant only
my $nocc = eval { $t->new_app(name => 'nocc', grant => 'authorization_code',
    redirect_uris => ['https://client.example/cb']) }
    // eval { $t->new_app(name => 'nocc', grant => 'password') };
diag("cannot register an app without client_credentials: $@") unless $nocc;
my $public = $t->new_app(name => 'pub', public => 1);
my $postonly = $t->new_app(name => 'postonly',
    auth_method => 'client_secret_post');
my $basiconly = $t->new_app(name => 'basiconly',
    auth_method => 'client_secret_basic');
my $appttl = $t->new_app(name => 'appttl', ttl => 120);

$t->write_config($t->default_http(extra_server => <<'EOF2'))->run;
    location = /nothread/token/ {
        oauth2_thread_pool off;
        oauth2_token;
    }
    location = /nothread/revoke/ {
        oauth2_thread_pool off;
        oauth2_revoke;
    }
    location = /short/token/ {
        oauth2_access_token_ttl 60s;
        oauth2_default_scope read;
        oauth2_token;
    }
EOF2

my ($id, $secret) = @$app{qw(client_id client_secret)};
like($id, qr/^\S+$/, 'app add prints a client_id');
like($secret, qr/^\S+$/, 'app add prints a client_secret');

# seed 000 verbatim: Basic is base64("id:secret"), no form encoding
my $cred = encode_base64("$id:$secret", '');

for my $path ('/api/auth/token/', '/auth/token/', '/o/token/') {
    my $r = $t->post_form($path, 'grant_type=client_credentials',
        'Authorization' => "Basic $cred",
        'Cache-Control' => 'no-cache');
    is($r->{status}, 200, "seed 000 curl on $path: 200");
    my $j = $r->{json} // {};
    is_deeply([sort keys %$j],
        [qw(access_token expires_in scope token_type)],
        "$path: JSON has exactly access_token, expires_in, scope, "
        . "token_type (no refresh_token, R41)");
    is($j->{expires_in}, 36000, "$path: expires_in 36000");
    ok(!ref $j->{expires_in} && $r->{body} =~ /"expires_in"\s*:\s*36000\b/,
        "$path: expires_in is a JSON number");
    is($j->{token_type}, 'Bearer', "$path: token_type Bearer");
    is($j->{scope}, 'read write', "$path: scope 'read write'");
    like($j->{access_token} // '', qr/^[A-Za-z0-9_-]{43}$/,
        "$path: access_token is 43 base64url chars (R44, 256 bits R42)");
    $t->no_store_ok($r, "$path 200");
}

# client_secret_post (R12)
my $r = $t->token($id, $secret, auth => 'post');
is($r->{status}, 200, 'client_secret_post: 200 (R12)');
like($r->{json}{access_token} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'client_secret_post: access_token issued');

# form-encoded Basic (RFC 6749 2.3.1) also works
$r = $t->token($id, $secret);
is($r->{status}, 200, 'form-encoded Basic: 200');

# per-location ttl and default scope
$r = $t->token($id, $secret, path => '/short/token/');
is($r->{status}, 200, 'oauth2_access_token_ttl 60s location: 200');
is($r->{json}{expires_in}, 60, 'oauth2_access_token_ttl 60s: expires_in 60');
is($r->{json}{scope}, 'read', 'oauth2_default_scope read: scope read');

# application ttl overrides the directive ("for applications that set none")
$r = $t->token($appttl->{client_id}, $appttl->{client_secret});
is($r->{json}{expires_in}, 120, 'app --access-token-ttl 120: expires_in 120');

# scope requests
$r = $t->token($id, $secret, scope => 'read');
is($r->{json}{scope}, 'read', 'scope=read: granted read');
$r = $t->token($id, $secret, scope => 'write read');
is($r->{status}, 200, 'scope=write read: 200');
$r = $t->token($id, $secret, scope => 'admin');
$t->oauth_error_ok($r, 400, 'invalid_scope',
    'scope outside the default scope set');
$r = $t->token($narrow->{client_id}, $narrow->{client_secret},
    scope => 'write');
$t->oauth_error_ok($r, 400, 'invalid_scope', 'app --scope read asks write');
$r = $t->token($narrow->{client_id}, $narrow->{client_secret},
    scope => 'read');
is($r->{status}, 200, 'app --scope read asks read: 200');
is($r->{json}{scope}, 'read', 'app --scope read asks read: scope read');
$r = $t->token($narrow->{client_id}, $narrow->{client_secret});
is($r->{json}{scope}, 'read', 'app --scope read, no scope: scope read');
$r = $t->token($id, $secret, scope => "read\"");
$t->oauth_error_ok($r, 400, 'invalid_scope', 'scope with a quote');
$r = $t->token($id, $secret, scope => "read\twrite");
# README: control characters make the form malformed
$t->oauth_error_ok($r, 400, 'invalid_request', 'scope with a tab (R7)');

# grant not registered
SKIP: {
    skip 'no app without client_credentials', 5 unless $nocc;
    $r = $t->token($nocc->{client_id}, $nocc->{client_secret});
    $t->oauth_error_ok($r, 400, 'unauthorized_client',
        'app without client_credentials grant');
}

# public client cannot use client_credentials (R18, R41)
$r = $t->token($public->{client_id}, undef, auth => 'post');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'public client asks client_credentials (R18)');

# --auth-method enforced (R12)
$r = $t->token($postonly->{client_id}, $postonly->{client_secret});
$t->oauth_error_ok($r, 401, 'invalid_client',
    'client_secret_post app uses Basic (R12)');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/^Basic realm="/i,
    'client_secret_post app uses Basic: WWW-Authenticate Basic');
$r = $t->token($postonly->{client_id}, $postonly->{client_secret},
    auth => 'post');
is($r->{status}, 200, 'client_secret_post app uses post: 200');
$r = $t->token($basiconly->{client_id}, $basiconly->{client_secret},
    auth => 'post');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'client_secret_basic app uses post (R12)');
$r = $t->token($basiconly->{client_id}, $basiconly->{client_secret});
is($r->{status}, 200, 'client_secret_basic app uses Basic: 200');

# 200 distinct tokens (R42)
my (%seen, $bad);
for (1 .. 200) {
    my $r = $t->token($id, $secret);
    if ($r->{status} != 200) { $bad++; next }
    $seen{$r->{json}{access_token}}++;
}
ok(!$bad, '200 token requests: all 200');
is(scalar keys %seen, 200, '200 token requests: 200 distinct tokens (R42)');

# oauth2_thread_pool off: writes on the event loop work the same
$r = $t->token($id, $secret, path => '/nothread/token/');
is($r->{status}, 200, 'oauth2_thread_pool off: token 200');
my $nt = $r->{json}{access_token} // '';
is($t->bearer_get('/protected/', $nt)->{status}, 200,
    'oauth2_thread_pool off: the token validates');
$r = $t->revoke($id, $secret, $nt, path => '/nothread/revoke/');
is($r->{status}, 200, 'oauth2_thread_pool off: revoke 200');
is($t->bearer_get('/protected/', $nt)->{status}, 401,
    'oauth2_thread_pool off: the revoked token is refused');

# every issued token is usable
my $tok = $t->access_token($app);
is($t->bearer_get('/protected/', $tok)->{status}, 200,
    'issued token opens /protected/');

$t->done_testing;
