# revocation endpoint (seed 004; README "Revoke"; docs/security.md R48-R53, R66,
# R70)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'rev');
my $other = $t->new_app(name => 'other');
my $doomed = $t->new_app(name => 'doomed');
my $public = $t->new_app(name => 'pub', public => 1);
$t->write_default_config(extra_http => 'oauth2_client_auth_limit off;')
    ->run;

my ($id, $secret) = @$app{qw(client_id client_secret)};
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

# $n requests with the token, more until both workers answered (max 60);
# returns the distinct statuses seen, e.g. "401" or "200,401"
sub all_status {
    my ($tok, $n) = @_;
    my (%st, %pid);
    for my $i (1 .. 60) {
        my $r = $t->bearer_get('/protected/', $tok);
        $st{$r->{status}}++;
        $pid{OAuth2Test::header($r, 'X-Pid') // ''}++;
        last if $i >= $n && keys %pid >= 2;
    }
    diag('requests did not reach both workers') if keys %pid < 2;
    return join ',', sort keys %st;
}

# seed 004: token, client_id, client_secret in the body
my $tok = $t->access_token($app);
is(all_status($tok, 10), '200', 'fresh token: 10 x 200');
my $r = $t->revoke($id, $secret, $tok, auth => 'post');
is($r->{status}, 200, 'seed 004 body revoke: 200 (R48)');
is($r->{body}, '{}', 'revoke: body {} (RFC 7009 2.2: clients ignore it)');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json\b},
    'revoke: Content-Type application/json (simple-oauth2 parses it)');
$t->no_store_ok($r, 'revoke 200');
is(all_status($tok, 10), '401',
    'revoked token: 401 on the next 10 requests, every worker (R52, R66)');
like(OAuth2Test::header($t->bearer_get('/protected/', $tok),
    'WWW-Authenticate') // '', qr/error="invalid_token"/,
    'revoked token: error="invalid_token"');

# Basic authentication
$tok = $t->access_token($app);
$r = $t->revoke($id, $secret, $tok);
is($r->{status}, 200, 'Basic revoke: 200 (R49)');
is($t->bearer_get('/protected/', $tok)->{status}, 401,
    'Basic-revoked token: 401');

# token_type_hint ignored (R48)
$tok = $t->access_token($app);
$r = $t->post_form('/o/revoke_token/',
    "token=$tok&token_type_hint=refresh_token",
    Authorization => $t->basic($id, $secret));
is($r->{status}, 200, 'token_type_hint=refresh_token: 200 (R48)');
is($t->bearer_get('/protected/', $tok)->{status}, 401,
    'wrong hint still revokes the access token (R48)');
$tok = $t->access_token($app);
$r = $t->post_form('/o/revoke_token/', "token=$tok&token_type_hint=foo",
    Authorization => $t->basic($id, $secret));
is($r->{status}, 200, 'token_type_hint=foo: 200');
is($t->bearer_get('/protected/', $tok)->{status}, 401,
    'unknown hint still revokes');

# R50: unknown, malformed, already revoked -> 200
for my $c (['x' x 43, 'unknown token'], ['a<>b', 'malformed token'],
    [$tok, 'already revoked token'], ['A' x 5000, '5 KiB token'])
{
    my $r = $t->revoke($id, $secret, $c->[0]);
    is($r->{status}, 200, "$c->[1]: 200 (R50)");
    is($r->{body}, '{}', "$c->[1]: same body {} (R50)");
    like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json\b},
        "$c->[1]: same Content-Type (R50)");
    $t->no_store_ok($r, $c->[1]);
}

# R48: token missing or empty
$r = $t->revoke($id, $secret, undef);
$t->oauth_error_ok($r, 400, 'invalid_request', 'no token parameter (R48)');
$r = $t->post_form('/o/revoke_token/', 'token=',
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request', 'empty token (R5, R48)');
$r = $t->post_form('/o/revoke_token/', 'token=a&token=b',
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request', 'token twice (R4)');

# R51: another client's token is not revoked, same answer
my $otok = $t->access_token($other);
$r = $t->revoke($id, $secret, $otok);
is($r->{status}, 200, "another client's token: 200 (R51)");
is($r->{body}, '{}', "another client's token: same body {} (R51)");
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^application/json\b},
    "another client's token: same Content-Type (R51)");
is(all_status($otok, 4), '200', "another client's token still works (R51)");

# R49: client authentication
$tok = $t->access_token($app);
$r = $t->revoke($id, 'wrong', $tok);
$t->oauth_error_ok($r, 401, 'invalid_client', 'wrong secret (R49)');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/^Basic realm=/,
    'wrong secret via Basic: WWW-Authenticate Basic');
$r = $t->revoke('nobody', 'wrong', $tok, auth => 'post');
$t->oauth_error_ok($r, 401, 'invalid_client', 'unknown client (R49)');
$r = $t->post_form('/o/revoke_token/', "token=$tok");
$t->oauth_error_ok($r, 401, 'invalid_client', 'no client auth (R49)');
is($t->bearer_get('/protected/', $tok)->{status}, 200,
    'failed revocations leave the token valid');
$r = $t->post_form('/o/revoke_token/', "token=$tok&client_secret=x",
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request',
    'Basic plus body client_secret (R13)');

# HTTP hygiene shared with the token endpoint (R1-R3)
$r = $t->request('GET', '/o/revoke_token/',
    headers => [Authorization => $t->basic($id, $secret)]);
ok($r->{status} == 405 || $r->{status} == 400, 'GET revoke: 405/400 (R1)');
is(ref $r->{json} eq 'HASH' && $r->{json}{error}, 'invalid_request',
    'GET revoke: invalid_request (R1)');
$r = $t->post_form("/o/revoke_token/?token=$tok", "token=$tok",
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request', 'query string on revoke (R3)');
$r = $t->post_form('/o/revoke_token/', "token=$tok",
    'Content-Type' => 'application/json',
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request', 'JSON Content-Type (R2)');
is($t->bearer_get('/protected/', $tok)->{status}, 200,
    'rejected revocations leave the token valid (R1)');

# the form corpus of token_http.t, at the revoke endpoint (R4, R7, R8)
for my $c (['token=a&token=b', 'token twice'], ['token=a%', 'bad escape'],
    ['token=a%00b', '%00'], ['token=a%C0%AF', 'overlong UTF-8'],
    ['token=a%0d%0a', 'CR LF'], ['&&&', '&&&'], ['=v', '=v'],
    ["token=a&x=" . ('a' x 20000), '20 KiB body'])
{
    my $r = $t->post_form('/o/revoke_token/', $c->[0],
        Authorization => $t->basic($id, $secret));
    $t->oauth_error_ok($r, $c->[1] eq '20 KiB body' ? 413 : 400,
        'invalid_request', "revoke $c->[1]");
}
$r = $t->request('POST', '/o/revoke_token/', headers => [
    Authorization => $t->basic($id, $secret),
    'Content-Type' => 'application/x-www-form-urlencoded',
    'Transfer-Encoding' => 'chunked'],
    body => OAuth2Test::chunked("token=$tok"));
is($r->{status}, 200, 'chunked revoke body: 200');
is($t->bearer_get('/protected/', $tok)->{status}, 401,
    'chunked revoke revoked the token');
$tok = $t->access_token($app);

# public client revokes with client_id only (README)
$r = $t->post_form('/o/revoke_token/',
    "token=$tok&client_id=" . OAuth2Test::form_encode($public->{client_id}));
is($r->{status}, 200, 'public client revoke with client_id only: 200');
is($t->bearer_get('/protected/', $tok)->{status}, 200,
    "public client cannot revoke another client's token (R51)");

# R70: app delete invalidates its tokens at once
my $dtok = $t->access_token($doomed);
is(all_status($dtok, 4), '200', 'token of the app to delete: 200');
my ($code, $out, $err) = $t->admin('app', 'delete', $doomed->{client_id});
is($code, 0, 'app delete: exit 0') or diag($err);
is(all_status($dtok, 10), '401',
    'token of a deleted app: 401 in every worker at once (R70)');
$r = $t->token($doomed->{client_id}, $doomed->{client_secret});
$t->oauth_error_ok($r, 401, 'invalid_client', 'deleted app asks a token');
is($t->bearer_get('/protected/', $otok)->{status}, 200,
    "another app's token survives the delete");

$t->done_testing;
