# An "if" or limit_except block inside an endpoint's location (R11: no
# request may crash a worker).  nginx keeps running the location's
# content handler, the module's, with the block's settings when the
# block applies; those had no endpoint and no core location, and the
# first request that matched (an Origin header, for the CORS block
# below, which anyone can send) killed the worker with SIGSEGV.  The
# block now takes its location's endpoint: the same answers with or
# without it, the block's own directives applied.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
$t->write_config($t->default_http(extra_server => <<'EOF'))->run;
    location = /cors/token/ {
        oauth2_token;
        if ($http_origin) {
            add_header Access-Control-Allow-Origin $http_origin always;
        }
    }
    location = /cors/metadata {
        oauth2_metadata;
        if ($http_origin) {
            add_header Access-Control-Allow-Origin $http_origin always;
        }
    }
    location = /limited/revoke/ {
        oauth2_revoke;
        limit_except POST { deny all; }
    }
    location = /lmt/token/ {
        oauth2_token;
        limit_except GET { allow 127.0.0.1; deny all; }
    }
    location = /lmt/metrics {
        oauth2_metrics;
        limit_except POST { allow 127.0.0.1; deny all; }
    }
EOF

my $app = $t->new_app(name => 'svc', grant => 'client_credentials');
my @pids = $t->worker_pids;

for my $origin (undef, 'https://spa.example') {
    my @h = defined $origin ? (headers => [Origin => $origin]) : ();
    my $what = defined $origin ? 'with an Origin (the if block)' : 'without';
    my $r = $t->token($app->{client_id}, $app->{client_secret},
        path => '/cors/token/', @h);
    is($r->{status}, 200, "a token at a location with an if block, $what: 200");
    ok($r->{json} && $r->{json}{access_token}, '... with an access token');
    is(OAuth2Test::header($r, 'Access-Control-Allow-Origin'), $origin,
        "... the block's header " . (defined $origin ? 'added' : 'absent'));
    is($t->bearer_get('/protected/', $r->{json}{access_token} // '')->{status},
        200, '... and the token opens the protected location');
    $r = $t->token($app->{client_id}, 'wrong', path => '/cors/token/', @h);
    $t->oauth_error_ok($r, 401, 'invalid_client',
        "a wrong secret there, $what");
    $r = $t->request('GET', '/cors/metadata', @h);
    is($r->{status}, 200, "metadata with an if block, $what: 200");
    ok($r->{json} && $r->{json}{issuer}, '... the metadata document');
}

# limit_except's block applies to every method but POST: the deny
my $r = $t->request('GET', '/limited/revoke/');
is($r->{status}, 403, 'limit_except POST: a GET is denied (its block)');
my $tok = $t->access_token($app);
$r = $t->revoke($app->{client_id}, $app->{client_secret}, $tok,
    path => '/limited/revoke/');
is($r->{status}, 200, 'a POST revokes');
is($t->bearer_get('/protected/', $tok)->{status}, 401, '... the token');

# a method outside limit_except runs with the block's settings, which
# allow this address: the endpoint still answers it (nginx takes the
# block's content handler, which was none: the static files answered)
$r = $t->token($app->{client_id}, $app->{client_secret}, path => '/lmt/token/');
is($r->{status}, 200, 'limit_except GET allowing this address: a POST gets a token');
ok($r->{json} && $r->{json}{access_token}, '... the token endpoint\'s answer');
is($t->bearer_get('/protected/', $r->{json}{access_token} // '')->{status}, 200,
    '... a token that opens the protected location');
$r = $t->request('GET', '/lmt/metrics');
is($r->{status}, 200, 'limit_except POST allowing this address: a GET of '
    . 'oauth2_metrics: 200');
like($r->{body} // '', qr/^# (HELP|TYPE) oauth2_/m, '... the metrics');

is_deeply([$t->worker_pids], \@pids, 'the same workers answered throughout');
$t->done_testing;
