# The JWKS and status endpoints answer from the configuration alone: they
# work, and touch nothing, when the store cannot be opened (docs/security.md
# R77, R78, R11), while the endpoints that need it answer 503.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dir = $t->dir;
# the store's path is a plain file: it can never open
open my $fh, '>', "$dir/not-a-store" or die;
close $fh;
$t->_run_cmd('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
    'ec_paramgen_curve:P-256', '-out', "$dir/es256.pem");
open $fh, '>', "$dir/status.token" or die;
print $fh "a-status-token-long-enough\n";
close $fh;
chmod 0644, "$dir/es256.pem", "$dir/status.token";

$t->expect_log(qr/cannot (prepare|open) store/);
$t->write_config(join '', "oauth2_store $dir/not-a-store;\n",
    "oauth2_issuer http://127.0.0.1:%%PORT%%;\n",
    "oauth2_jwt_key $dir/es256.pem;\n",
    "server {\n",
    "    listen 127.0.0.1:%%PORT%%;\n",
    "    location = /o/token/ { oauth2_token; }\n",
    "    location /api/ { auth_oauth2 api; alias $dir/html/; }\n",
    "    location = /.well-known/jwks.json { oauth2_jwks; }\n",
    "    location = /api/status/ {\n",
    "        oauth2_status svc X-Service-Token $dir/status.token;\n",
    "    }\n",
    "}\n")->run;

my $r = $t->get('/.well-known/jwks.json');
is($r->{status}, 200, 'the JWKS without a store: 200');
is(scalar @{$r->{json}{keys} // []}, 1, 'with the key');
$r = $t->get('/api/status/', 'X-Service-Token' => 'a-status-token-long-enough');
is($r->{status}, 200, 'the status endpoint without a store: 200');
is($r->{json}{status}, 'ok', '{"status": "ok"}');
$r = $t->get('/api/status/');
is($r->{status}, 403, 'and 403 without its header');
$r = $t->token('any', 'thing');
is($r->{status}, 503, 'the token endpoint without a store: 503, never 200');
$r = $t->get('/api/', Authorization => 'Bearer some-token');
is($r->{status}, 503, 'a bearer token without a store: 503, never 200');

# the reason of each 503 reaches error.log at "error" (issue 10): the
# core's own words, on the token request's own line (the bearer check's
# line says the same, so each is matched with its request)
my $log = OAuth2Test::_slurp($t->error_log);
my $why = qr/oauth2: answering 503: the store is not open in this worker,/;
like($log, qr{\[error\][^\n]*$why[^\n]*request: "POST /o/token/ },
    'the token endpoint\'s 503 says why in error.log');
like($log, qr/\[error\].*cannot check the bearer token, answering 503: the store is not open/,
    'the bearer check\'s 503 says why in error.log');

# R64: those lines name the request without its query string or referrer:
# a secret or a token a client put in a query (or a page's URL with a code
# in it) never reaches error.log through them
$r = $t->request('POST', '/o/token/?client_secret=S3CR3T-Q1', headers => [
    'Content-Type' => 'application/x-www-form-urlencoded',
    Referer => 'https://rp.example/cb?code=R3F-C0DE'],
    body => 'grant_type=client_credentials&client_id=app');
is($r->{status}, 503, 'a token request with a secret in its query, no store: 503');
$r = $t->get('/api/?access_token=T0K3N-Q2', Referer => 'https://rp.example/?t=R3F-2');
is($r->{status}, 503, 'a bearer check with a token in its query, no store: 503');
$log = OAuth2Test::_slurp($t->error_log);
unlike($log, qr/S3CR3T-Q1|T0K3N-Q2|R3F-C0DE|R3F-2/,
    'error.log holds neither query nor referrer');
like($log, qr{\[error\][^\n]*$why[^\n]*request: "POST /o/token/"},
    '... and names the request without its query');
like($log, qr{cannot check the bearer token[^\n]*request: "GET /api/"},
    '... the bearer check\'s too');

# an nginx that loads the module but whose servers use none of it (no
# oauth2_store at all): no store handle in its workers, so nothing to
# alert about at start or at a reload, and its pages are served
my $n = OAuth2Test->new(workers => 1);
$n->write_config(join '', "server {\n",
    "    listen 127.0.0.1:%%PORT%%;\n",
    "    location / { alias %%DIR%%/html/; }\n",
    "}\n")->run;
is($n->get('/index.html')->{body}, "hello\n",
    'the module loaded without oauth2_store: a page is served');
$n->reload;
is($n->get('/index.html')->{body}, "hello\n",
    'without oauth2_store, after a reload: served');
$n->stop;
is(join("\n", $n->log_problems), '',
    'without oauth2_store: no alert, crit, emerg or crash in error.log');

$t->done_testing;
