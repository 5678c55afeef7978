# R64: error.log never holds a query string of a request that reached the
# module, over HTTP/2 too (whose request line nginx builds in a buffer of
# its own), with a URI nginx parses the long way ("//", "#"), and in the
# "upstream:" field of an upstream's error after a valid check.  A client
# that sends ?access_token= or ?client_secret= by mistake has it logged
# nowhere.  (The HTTP/1.1 request line and the referrer: t/no_store.t.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'svc', scope => 'read');
my $closed = $t->port('closed');    # nothing listens there
my $h2 = $t->port('h2');
my $http = $t->default_http(
    extra_http => "limit_req_zone \$binary_remote_addr zone=one:1m rate=1r/m;\n",
    extra_server => <<"EOF");
    location /up/ {
        auth_oauth2 api;
        proxy_pass http://127.0.0.1:$closed;
    }
EOF
# nginx's own refusals before the module runs, each in a server whose one
# location is the module's: limit_req's (preaccess) at an auth_oauth2
# location, and a declared body over client_max_body_size (its 413,
# logged as the location is found) at a token endpoint
$http .= <<'EOF';
server {
    listen 127.0.0.1:%%PORT_1%%;
    location /lim/ {
        limit_req zone=one nodelay;
        auth_oauth2 api;
        alias %%DIR%%/html/;
    }
}
server {
    listen 127.0.0.1:%%PORT_2%%;
    location = /small/token/ { oauth2_token; client_max_body_size 1k; }
}
EOF
# the same server on an HTTP/2 (cleartext, prior knowledge) listener too
$http =~ s/(listen 127\.0\.0\.1:%%PORT%% reuseport;)/$1\n    listen 127.0.0.1:$h2 http2;/
    or die 'no listen line';
$t->write_config($http)->run;
my $at = $t->access_token($app);

sub h2 {
    my ($path, @h) = @_;
    my @args = ('curl', '-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
        '--http2-prior-knowledge', map({ ('-H', $_) } @h), "http://127.0.0.1:$h2$path");
    my $out = qx{@{[join ' ', map { "'$_'" } @args]}};
    return $out;
}

is(h2('/protected/x?access_token=T0K3N-H2A', 'Authorization: Bearer bogus'), '2 401',
    'HTTP/2: a refused token with another in the query: 401');
is(h2('/up/x?access_token=T0K3N-H2B', "Authorization: Bearer $at"), '2 502',
    'HTTP/2: a valid token, the upstream down: 502');

# a URI nginx parses the long way (its "//" and "#"), over HTTP/1.1
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
    Timeout => 5) or die "connect: $!";
print $s "GET /protected//x?access_token=T0K3N-CPX#f HTTP/1.1\r\nHost: a\r\n"
    . "Authorization: Bearer bogus\r\nConnection: close\r\n\r\n";
my $reply = do { local $/; <$s> } // '';
like($reply, qr{^HTTP/1\.1 401 }, 'a complex URI, a refused token: 401');

# the upstream's error after a valid check, over HTTP/1.1
my $r = $t->bearer_get('/up/x?access_token=T0K3N-UP1', $at);
is($r->{status}, 502, 'HTTP/1.1: a valid token, the upstream down: 502');

# limit_req's refusal of an auth_oauth2 location, and the 413 of a token
# endpoint, both logged by nginx before the module runs (R64)
for my $n (1, 2) {
    $r = $t->request('GET', "/lim/index.html?access_token=T0K3N-LIM$n",
        port => $t->port(1), headers => [Authorization => "Bearer $at"]);
    is($r->{status}, $n == 1 ? 200 : 503,
        "limit_req: request $n " . ($n == 1 ? 'passes' : 'is refused (503)'));
}
$r = $t->request('POST', '/small/token/?client_secret=T0K3N-413', body => 'x' x 2048,
    port => $t->port(2),
    headers => ['Content-Type' => 'application/x-www-form-urlencoded']);
is($r->{status}, 413, 'a body over client_max_body_size: 413');

$t->stop;
my $log = OAuth2Test::_slurp($t->error_log);
like($log, qr{limiting requests[^\n]*request: "GET /lim/index\.html"},
    'limit_req\'s line names the request without its query');
like($log, qr{too large body[^\n]*request: "POST /small/token/"},
    'the 413\'s line names the request without its query');
like($log, qr{bearer token refused[^\n]*request: "GET /protected/x"},
    'the refusal over HTTP/2 is logged, its request line without the query');
like($log, qr{upstream: "http://127\.0\.0\.1:$closed/up/x"},
    'the upstream\'s error names its URI without the query');
unlike($log, qr/T0K3N-/, 'error.log holds none of the tokens of the queries');

$t->done_testing;
