# HTTP hygiene of the token endpoint (docs/security.md R1-R11; catalogue 2.1
# Method, Content-Type, Query, Body shape, Percent-encoding, grant_type)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'http');
$t->write_default_config(extra_http => 'oauth2_client_auth_limit off;',
    extra_server => <<'EOF2')->run;
    location = /metrics { oauth2_metrics; }
    location = /slow/token/ {
        client_body_timeout 1s;
        oauth2_token;
    }
    location /uploads/ {
        client_max_body_size 0;
        location = /uploads/token/ { oauth2_token; }
    }
EOF2

my ($id, $secret) = @$app{qw(client_id client_secret)};
my $auth = $t->basic($id, $secret);
my $gt = 'grant_type=client_credentials';
my $FORM = 'application/x-www-form-urlencoded';

sub post {
    my ($body, @h) = @_;
    return $t->post_form('/o/token/', $body, Authorization => $auth, @h);
}

# sanity
my $r = post($gt);
is($r->{status}, 200, 'baseline request: 200');

# RFC 9110 13.1: a request whose answer changed state is not made
# conditional after the change: the token is issued before the response
# goes out, and nginx's not-modified filter would make "If-None-Match: *"
# a 304 without the body (the only copy of the token, or of a rotated
# refresh token), and a failed If-Match a 412 page without no-store (R9)
for my $h (['If-None-Match' => '*'], ['If-Match' => '"x"'],
           ['If-Unmodified-Since' => 'Thu, 01 Jan 1970 00:00:00 GMT'],
           ['If-Modified-Since' => 'Thu, 01 Jan 2099 00:00:00 GMT']) {
    $r = post($gt, @$h);
    is($r->{status}, 200, "a token request with $h->[0]: 200");
    ok($r->{json} && $r->{json}{access_token}, '... with its token');
    is(OAuth2Test::header($r, 'Cache-Control'), 'no-store', '... and no-store');
}
$r = $t->request('GET', '/metrics', headers => ['If-None-Match' => '*']);
is($r->{status}, 200, 'the metrics with If-None-Match: *: 200');
like($r->{body} // '', qr/^# (HELP|TYPE) oauth2_/m, '... with the counts');

# R1: POST only
for my $m (qw(GET PUT DELETE PATCH OPTIONS)) {
    my $r = $t->request($m, '/o/token/', headers => [
        Authorization => $auth, 'Content-Type' => $FORM], body => $gt);
    ok($r->{status} == 405 || $r->{status} == 400,
        "$m: 405 or 400 (R1)") or diag($r->{raw});
    is(ref $r->{json} eq 'HASH' && $r->{json}{error}, 'invalid_request',
        "$m: error invalid_request (R1)");
    $t->no_store_ok($r, $m);
    like(OAuth2Test::header($r, 'Allow') // '', qr/\bPOST\b/,
        "$m: 405 has Allow: POST") if $r->{status} == 405;
}
$r = $t->request('HEAD', '/o/token/', headers => [Authorization => $auth]);
ok($r->{status} == 405 || $r->{status} == 400, 'HEAD: 405 or 400 (R1)');
is($r->{body}, '', 'HEAD: no body');

# R2: Content-Type
$t->oauth_error_ok(post($gt, 'Content-Type' => undef), 400,
    'invalid_request', 'no Content-Type (R2)');
$r = $t->request('POST', '/o/token/', headers => [Authorization => $auth],
    body => $gt);
$t->oauth_error_ok($r, 400, 'invalid_request', 'missing Content-Type (R2)');
for my $ct ('application/json', 'multipart/form-data; boundary=x',
    'text/plain', 'application/x-www-form-urlencodedX')
{
    $t->oauth_error_ok(post($gt, 'Content-Type' => $ct), 400,
        'invalid_request', "Content-Type $ct (R2)");
}
is(post($gt, 'Content-Type' => 'APPLICATION/X-WWW-FORM-URLENCODED')
    ->{status}, 200, 'Content-Type in capitals: 200 (R2)');
is(post($gt, 'Content-Type' => "$FORM; charset=UTF-8")->{status}, 200,
    'Content-Type with charset=UTF-8: 200 (R2)');
is(post($gt, 'Content-Type' => "$FORM;charset=ISO-8859-1")->{status}, 200,
    'Content-Type with charset=ISO-8859-1: 200');
$t->oauth_error_ok(post($gt, 'Content-Type' => [$FORM, $FORM]), 400,
    'invalid_request', 'two Content-Type headers (R2)');
$t->oauth_error_ok(post($gt, 'Content-Type' => [$FORM, 'application/json']),
    400, 'invalid_request', 'two different Content-Type headers (R2)');

# R3: query string
for my $q ('client_secret=x', 'code=x', 'foo=bar', '') {
    my $r = $t->post_form("/o/token/?$q", $gt, Authorization => $auth);
    if ($q eq '') {
        ok($r->{status} == 200 || $r->{status} == 400,
            'bare "?" on the URL: 200 or 400');
        next;
    }
    $t->oauth_error_ok($r, 400, 'invalid_request', "query ?$q (R3)");
}

# R4: duplicates; names are case-sensitive
for my $p ("$gt&$gt", "$gt&scope=read&scope=read",
    "$gt&client_id=a&client_id=a", "$gt&code=a&code=a",
    "$gt&redirect_uri=a&redirect_uri=a",
    "$gt&refresh_token=a&refresh_token=a",
    "$gt&client_secret=a&client_secret=a",
    "$gt&grant_type=password")
{
    $t->oauth_error_ok(post($p), 400, 'invalid_request',
        "repeated parameter: $p (R4)");
}
$t->oauth_error_ok(post("$gt&x[]=1&x%5B%5D=2"), 400, 'invalid_request',
    'x[]=1&x%5B%5D=2: the same name twice after decoding (R4)');
is(post("$gt&Client_Id=nope&SCOPE=admin&Grant_Type=x")->{status}, 200,
    'Client_Id, SCOPE, Grant_Type are unknown parameters: 200 (R4)');

# R6: unknown parameters ignored
$r = post("$gt&extra=foobar&x[]=1&token_type_hint=x");
is($r->{status}, 200, 'extra=foobar&x[]=1 ignored: 200 (R6)');

# R5: empty scope = absent
$r = post("$gt&scope=");
is($r->{status}, 200, 'scope= (empty): 200 (R5)');
is($r->{json}{scope}, 'read write', 'scope= (empty): default scope (R5)');

# R7: + is a space
$r = post("$gt&scope=read+write");
is($r->{json}{scope}, 'read write', 'scope=read+write: "read write" (R7)');
$r = post("$gt&scope=read%20write");
is($r->{json}{scope}, 'read write', 'scope=read%20write: "read write"');
$r = post("$gt&scope=read%2Bwrite");
$t->oauth_error_ok($r, 400, 'invalid_scope', 'scope=read%2Bwrite');

# body shape
for my $c (['', 'empty body'], ['&&&', '&&&'], ['=v', '=v'],
    ['k', 'k without ='], ['grant_type', 'grant_type without ='])
{
    my $r = post($c->[0]);
    ok($r->{status} == 400, "body $c->[1]: 400") or diag($r->{raw});
    is(ref $r->{json} eq 'HASH' && $r->{json}{error}, 'invalid_request',
        "body $c->[1]: invalid_request");
    $t->no_store_ok($r, "body $c->[1]");
}
is(post("$gt&")->{status} =~ /^(200|400)$/ ? 1 : 0, 1,
    'trailing & : 200 or 400, no 5xx');

# R7: bad escapes, NUL, controls, invalid UTF-8
for my $v ('%', '%4', '%G0', '%%41', '%00', '%0d%0a', '%C0%AF',
    '%ED%A0%80', '%FF', '%01', '%1F')
{
    $t->oauth_error_ok(post("$gt&scope=read$v"), 400, 'invalid_request',
        "scope=read$v (R7)");
    $t->oauth_error_ok(post("$gt&foo=$v"), 400, 'invalid_request',
        "unknown parameter foo=$v (R7: one strict decoder)");
}
$t->oauth_error_ok(post("grant_type=client_credentials%00"), 400,
    'invalid_request', 'grant_type with %00 (R7)');
$t->oauth_error_ok(post("$gt&sco%00pe=x"), 400, 'invalid_request',
    'NUL in a parameter name (R7)');
$r = post("$gt&scope=read\0write");
is($r->{status}, 400, 'raw NUL byte in the body: 400 (R7)');
$r = post("$gt&scope=read\r\nwrite");
is($r->{status}, 400, 'raw CR LF in the body: 400 (R7)');

# R8: sizes
my $pad = "$gt&pad=" . ('a' x (8193 - length("$gt&pad=")));
is(length $pad, 8193, 'padded body is 8193 bytes');
$r = post($pad);
is($r->{status}, 200, '8193-byte body (temp file path): 200 (R8)');
$pad = "$gt&pad=" . ('a' x 15000);
is(post($pad)->{status}, 200, '15 KiB body: 200 (R8)');
$r = post("$gt&pad=" . ('a' x 20480));
$t->oauth_error_ok($r, 413, 'invalid_request', '20 KiB body (R8)');
$r = post("$gt&pad=" . ('a' x (1 << 20)));
is($r->{status}, 413, '1 MiB body: 413 (R8)');
# the refused body is read and dropped, never parsed as the next request
# of a kept-alive connection: a request hidden in it gets no answer
{
    my $hidden = "GET /o/.well-known/smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    my $body = $hidden . ('a' x (20480 - length $hidden));
    $r = $t->http("POST /o/token/ HTTP/1.1\r\nHost: a\r\n"
        . "Content-Type: $FORM\r\nContent-Length: " . length($body)
        . "\r\nConnection: keep-alive\r\n\r\n$body", timeout => 3);
    is($r->{status}, 413, 'a 20 KiB body on a kept-alive connection: 413');
    my $answers = () = $r->{raw} =~ m{^HTTP/1\.1 \d{3}}mg;
    is($answers, 1, 'one answer: the request inside the refused body is '
        . 'not served (R8)');
}
my $many = join '&', $gt, map { "p$_=1" } 1 .. 64;
$t->oauth_error_ok(post($many), 400, 'invalid_request',
    'more than 64 parameters (R8)');
$many = join '&', $gt, map { "p$_=1" } 1 .. 60;
is(post($many)->{status}, 200, '61 parameters: 200');

# chunked body
my $chunked = OAuth2Test::chunked($gt);
$r = $t->request('POST', '/o/token/', headers => [Authorization => $auth,
    'Content-Type' => $FORM, 'Transfer-Encoding' => 'chunked'],
    body => $chunked);
is($r->{status}, 200, 'chunked body: 200 (R8)');
$chunked = "5\r\ngrant\r\n" . sprintf("%x\r\n%s\r\n", length(substr $gt, 5),
    substr $gt, 5) . "0\r\n\r\n";
$r = $t->request('POST', '/o/token/', headers => [Authorization => $auth,
    'Content-Type' => $FORM, 'Transfer-Encoding' => 'chunked'],
    body => $chunked);
is($r->{status}, 200, 'chunked body in two chunks: 200 (R8)');
# a chunked body declares no length: it is counted as it is read, and
# past 16 KiB refused as the declared one is
my $big = "$gt&pad=" . ('a' x 20480);
$chunked = OAuth2Test::chunked($big, 4096);
$r = $t->request('POST', '/o/token/', headers => [Authorization => $auth,
    'Content-Type' => $FORM, 'Transfer-Encoding' => 'chunked'],
    body => $chunked);
$t->oauth_error_ok($r, 413, 'invalid_request',
    'a chunked body of 20 KiB in 4 KiB chunks (R8)');
# in a server that takes uploads of any size (client_max_body_size 0),
# an endpoint still reads at most 1 MiB of a chunked body (R8): a body
# that never ends cannot fill the disk with client_body_temp
# (2 MiB of chunks and no last one: the body never ends)
my $endless = OAuth2Test::chunked("$gt&pad=" . ('a' x (2 * 1024 * 1024)), 65536);
$endless =~ s/0\r\n\r\n$//;
$r = $t->http("POST /uploads/token/ HTTP/1.1\r\nHost: localhost\r\n"
    . "Authorization: $auth\r\nContent-Type: $FORM\r\n"
    . "Transfer-Encoding: chunked\r\n\r\n$endless", timeout => 5);
ok(!$r->{timeout}, 'client_max_body_size 0 around it: a chunked body '
    . 'that does not end is answered at once (R8)');
is($r->{status}, 413, '... 413, past 1 MiB');
$r = $t->request('POST', '/uploads/token/', headers => [Authorization => $auth,
    'Content-Type' => $FORM, 'Transfer-Encoding' => 'chunked'],
    body => OAuth2Test::chunked("$gt&pad=" . ('a' x 20480), 4096));
$t->oauth_error_ok($r, 413, 'invalid_request',
    '... and one of 20 KiB is refused in the endpoint\'s shape');
is($t->request('POST', '/uploads/token/', headers => [Authorization => $auth,
    'Content-Type' => $FORM], body => $gt)->{status}, 200,
    '... where a small body gets its token: 200');
$r = $t->request('POST', '/o/token/', headers => [Authorization => $auth,
    'Content-Type' => $FORM, Expect => '100-continue'], body => $gt);
is($r->{status}, 200, 'Expect: 100-continue: 200 (R8)');

# Content-Length larger than the body: client_body_timeout, then a clean
# 408 or close, no crash (catalogue 2.1 "Body shape")
$r = $t->http("POST /slow/token/ HTTP/1.1\r\nHost: localhost\r\n"
    . "Connection: close\r\nAuthorization: $auth\r\n"
    . "Content-Type: $FORM\r\nContent-Length: 100\r\n\r\n$gt",
    timeout => 5);
ok(!$r->{timeout}, 'short body: the server gives up within 5 s (R8)');
ok($r->{status} == 0 || $r->{status} == 408 || $r->{status} == 400,
    'short body: 408/400 or closed, no 5xx (R8)')
    or diag($r->{raw});
is(post($gt)->{status}, 200, 'after a body timeout: 200');

# keep-alive and pipelining: the module leaves the connection usable
{
    my $one = "POST /o/token/ HTTP/1.1\r\nHost: x\r\nAuthorization: $auth\r\n"
        . "Content-Type: $FORM\r\nContent-Length: " . length($gt)
        . "\r\n\r\n$gt";
    my $r = $t->http($one . $one . "GET /open/ HTTP/1.1\r\nHost: x\r\n"
        . "Connection: close\r\n\r\n");
    my @st = $r->{raw} =~ m{HTTP/1\.1 (\d{3}) }g;
    is("@st", '200 200 200', 'two pipelined token requests then a GET: '
        . '200 200 200');
    # Content-Length shorter than the body: the rest is the next request,
    # parsed as such (no smuggling into the form)
    $r = $t->http("POST /o/token/ HTTP/1.1\r\nHost: x\r\nAuthorization: "
        . "$auth\r\nContent-Type: $FORM\r\nContent-Length: "
        . length($gt) . "\r\n\r\n${gt}GET /open/ HTTP/1.1\r\nHost: x\r\n"
        . "Connection: close\r\n\r\n");
    @st = $r->{raw} =~ m{HTTP/1\.1 (\d{3}) }g;
    is("@st", '200 200', 'short Content-Length: leftover is a separate '
        . 'request');
    $r = $t->http("POST /o/token/ HTTP/1.0\r\nAuthorization: $auth\r\n"
        . "Content-Type: $FORM\r\nContent-Length: " . length($gt)
        . "\r\n\r\n$gt");
    is($r->{status}, 200, 'HTTP/1.0 token request: 200');
    $r = $t->http("POST /o/token/ HTTP/1.1\r\nHost: x\r\nConnection: close"
        . "\r\nAuthorization: $auth\r\nContent-Type: $FORM\r\n"
        . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        . OAuth2Test::chunked($gt));
    is($r->{status}, 400, 'Content-Length plus Transfer-Encoding: nginx 400');
}

# grant_type
$t->oauth_error_ok(post(''), 400, 'invalid_request', 'grant_type missing');
$t->oauth_error_ok(post('scope=read'), 400, 'invalid_request',
    'grant_type missing, other params');
$t->oauth_error_ok(post('grant_type='), 400, 'invalid_request',
    'grant_type empty (R5)');
# names are case-sensitive; "password" is unsupported while no
# application of the server is registered for it (R25)
for my $g ('AUTHORIZATION_CODE', 'password', 'implicit', 'urn:x',
    'Client_Credentials')
{
    $t->oauth_error_ok(post('grant_type=' . OAuth2Test::form_encode($g)),
        400, 'unsupported_grant_type', "grant_type=$g");
}
# a client-credentials application asking for the code grant
$t->oauth_error_ok(post('grant_type=authorization_code&code=x'), 400,
    'unauthorized_client',
    'grant_type=authorization_code, app not registered for it');
$t->oauth_error_ok(post('grant_type=refresh_token'), 400,
    'unauthorized_client',
    'grant_type=refresh_token, app not registered for it');

# R10: error_description never echoes input
$r = post("grant_type=%22%5C%0A");
ok(!defined $r->{json}{error_description}
    || $r->{json}{error_description} !~ /[\\"]/,
    'error_description does not echo the request (R10)');

# R11: nothing crashed; the endpoint still works
is(post($gt)->{status}, 200, 'still 200 after the corpus (R11)');
my @w = $t->worker_pids;
is(scalar @w, 2, 'both workers alive (R11)');

$t->done_testing;
