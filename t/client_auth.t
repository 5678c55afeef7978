# client authentication at the token endpoint (docs/security.md R12-R15, R18;
# catalogue 2.1 "Basic header" and "Auth conflicts")
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MIME::Base64 qw(encode_base64);
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'auth');
my $public = $t->new_app(name => 'pub', public => 1);
# many failures from one address below: no throttling here (throttle.t)
$t->write_default_config(extra_http => 'oauth2_client_auth_limit off;')->run;

my ($id, $secret) = @$app{qw(client_id client_secret)};
my $gt = 'grant_type=client_credentials';
my $b64 = sub { encode_base64($_[0], '') };

sub wwwauth { OAuth2Test::header($_[0], 'WWW-Authenticate') // '' }

# R15: wrong secret and unknown client look the same
my $wrong = $t->token($id, $secret . 'x');
$t->oauth_error_ok($wrong, 401, 'invalid_client', 'wrong secret (R15)');
like(wwwauth($wrong), qr/^Basic realm="oauth2"/,
    'wrong secret via Basic: WWW-Authenticate Basic realm="oauth2" (R15)');
my $unknown = $t->token('no-such-client', $secret);
$t->oauth_error_ok($unknown, 401, 'invalid_client', 'unknown client (R15)');
like(wwwauth($unknown), qr/^Basic realm="oauth2"/,
    'unknown client via Basic: WWW-Authenticate Basic');
is($unknown->{body}, $wrong->{body},
    'unknown client and wrong secret: identical body (R15)');

# client_secret_post failures: 401 and no Basic challenge required
my $r = $t->token($id, 'nope', auth => 'post');
$t->oauth_error_ok($r, 401, 'invalid_client', 'wrong secret via post');
is($r->{body}, $wrong->{body}, 'wrong secret via post: same body (R15)');
$r = $t->token('no-such-client', 'nope', auth => 'post');
is($r->{body}, $wrong->{body}, 'unknown client via post: same body (R15)');

# missing secret for a confidential client (R18)
$r = $t->post_form('/o/token/', "$gt&client_id=" . OAuth2Test::form_encode($id));
$t->oauth_error_ok($r, 401, 'invalid_client',
    'confidential client_id without secret (R18)');
# no credentials at all
$r = $t->post_form('/o/token/', $gt);
$t->oauth_error_ok($r, 401, 'invalid_client', 'no client authentication');

# R14: ids and secrets are form-urlencoded inside Basic
my $pct = join '', map { sprintf '%%%02X', ord } split //, $id;
$r = $t->token(undef, undef, auth => 'none',
    headers => [Authorization => 'Basic ' . $b64->("$pct:$secret")]);
is($r->{status}, 200, 'Basic with every id char %XX-encoded: 200 (R14)');
my $spct = join '', map { sprintf '%%%02X', ord } split //, $secret;
$r = $t->post_form('/o/token/', $gt,
    Authorization => 'Basic ' . $b64->("$id:$spct"));
is($r->{status}, 200, 'Basic with every secret char %XX-encoded: 200 (R14)');
$r = $t->post_form('/o/token/', $gt,
    Authorization => 'basic ' . $b64->("$id:$secret"));
is($r->{status}, 200, 'lowercase "basic" scheme: 200 (R14)');
$r = $t->post_form('/o/token/', $gt,
    Authorization => 'BASIC ' . $b64->("$id:$secret"));
is($r->{status}, 200, 'uppercase "BASIC" scheme: 200 (R14)');

# R13: exactly one method
my $eid = OAuth2Test::form_encode($id);
my $esec = OAuth2Test::form_encode($secret);
$r = $t->post_form('/o/token/', "$gt&client_secret=$esec",
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request',
    'Basic plus body client_secret (R13)');
$r = $t->post_form('/o/token/', "$gt&client_id=other",
    Authorization => $t->basic($id, $secret));
$t->oauth_error_ok($r, 400, 'invalid_request',
    'body client_id differs from Basic id (R13)');
$r = $t->post_form('/o/token/', "$gt&client_id=$eid",
    Authorization => $t->basic($id, $secret));
is($r->{status}, 200, 'body client_id equal to Basic id: 200 (R13)');
$r = $t->post_form('/o/token/', "$gt&client_secret=",
    Authorization => $t->basic($id, $secret));
is($r->{status}, 200, 'empty body client_secret with Basic is absent: 200 (R5)');
$r = $t->post_form('/o/token/', "$gt&client_assertion=x"
    . "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
    Authorization => $t->basic($id, $secret));
ok($r->{status} == 400 || $r->{status} == 200 || $r->{status} == 401,
    'client_assertion plus Basic: 400/401 or ignored, no 5xx (R13)');

# secret for a public client; public client asks client_credentials
$r = $t->token($public->{client_id}, 'whatever', auth => 'post');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'public client with a secret (R18)');

# R5: an empty Basic password is no secret, as an empty client_secret= is
# none: a public client sending "id:" (golang.org/x/oauth2's
# AuthStyleInHeader) identifies itself as by client_id in the body; a
# confidential client sending it has presented no secret
my $pub_basic = 'Basic ' . $b64->("$public->{client_id}:");
my $by_body = $t->post_form('/o/token/', 'grant_type=refresh_token&refresh_token=no-such-token'
    . "&client_id=$public->{client_id}");
is($by_body->{status}, 400, 'a public client by client_id in the body: past client '
    . 'authentication (400, not 401)');
$r = $t->post_form('/o/token/', 'grant_type=refresh_token&refresh_token=no-such-token',
    Authorization => $pub_basic);
is($r->{status}, 400, 'a public client by Basic "id:" at the token endpoint: 400, not 401');
is($r->{body}, $by_body->{body}, '... the same answer as by client_id in the body');
$r = $t->post_form('/o/revoke_token/', 'token=no-such-token', Authorization => $pub_basic);
is($r->{status}, 200, 'a public client by Basic "id:" revokes (RFC 7009: 200)');
$r = $t->post_form('/o/token/', $gt, Authorization => 'Basic ' . $b64->("$id:"));
$t->oauth_error_ok($r, 401, 'invalid_client',
    'a confidential client by Basic "id:": no secret, 401');
like(wwwauth($r), qr/^Basic realm="oauth2"/, '... with the Basic challenge');

# catalogue 2.1 "Basic header": 401 invalid_client or 400 invalid_request
my @bad = (
    ['Basic', 'Basic'],
    ['Basic ', 'Basic (empty)'],
    ['Basic  ' . $b64->("$id:$secret"), 'two spaces'],
    ['Basic !!!', 'not base64'],
    ['Basic not_base64', 'not_base64'],
    ['Basic Zm9v', 'no colon'],
    ['Basic OmZvbw==', 'empty id'],
    ['Basic Zm9vOg==', 'empty secret'],
    ["Basic ZHVtbXk=:ZHVtbXk=", 'DOT invalid b64 string'],
    ['Basic ' . $b64->("$id:$secret") . 'AAAA', 'data after the padding'],
    ['Basic Zm9vOmJhcg==AAAA', 'foo:bar== then data'],
    ['Basic ' . ($b64->("$id:$secret") =~ s/=+$//r) . '', 'no padding (maybe)'],
    ['Basic ' . ($b64->("$id:$secret" . "\xfb\xff") =~ tr{+/}{-_}r),
        'url-safe alphabet'],
    ['Basic test', 'non-UTF-8 result'],
    ['Basic Zm9vAGJhcjpz', 'NUL inside the id'],
    ['Basic ' . $b64->("$id\0x:$secret"), 'real id then NUL'],
    ['Basic ' . $b64->("$id%00:$secret"), 'id with %00'],
    ['Basic ' . $b64->("$id%:$secret"), 'id with a bad % escape'],
    ['Basic ' . $b64->("$id%3A:$secret"), 'id with %3A'],
    ['Basic ' . $b64->("$id:$secret%G0"), 'secret with %G0'],
    ['Basic ' . $b64->("\xff\xfe:$secret"), 'invalid UTF-8 id'],
    ['Basic ' . ('A' x 7000), '7 KiB header'],
    ['Bearer x', 'Bearer on the token endpoint'],
    ['Digest username="x"', 'Digest on the token endpoint'],
);
for my $c (@bad) {
    my ($h, $name) = @$c;
    my $r = $t->post_form('/o/token/', $gt, Authorization => $h);
    my $st = $r->{status};
    if ($name eq 'no padding (maybe)' && $b64->("$id:$secret") !~ /=$/) {
        is($st, 200, "Basic $name: the value needs no padding: 200");
        next;
    }
    ok($st == 401 || $st == 400,
        "Basic $name: 401 or 400 (R14)") or diag($r->{raw});
    my $err = ref $r->{json} eq 'HASH' ? $r->{json}{error} // '' : '';
    ok(($st == 401 && $err eq 'invalid_client')
        || ($st == 400 && $err eq 'invalid_request'),
        "Basic $name: error invalid_client/invalid_request, JSON")
        or diag($r->{raw});
    $t->no_store_ok($r, "Basic $name");
    like(wwwauth($r), qr/^Basic realm=/, "Basic $name: WWW-Authenticate Basic")
        if $st == 401;
}

# the real id and secret with a NUL suffix in post must not match (R7)
$r = $t->post_form('/o/token/', "$gt&client_id=$eid%00junk&client_secret=$esec");
ok($r->{status} == 400 || $r->{status} == 401,
    'client_id=<id>%00junk is rejected, not truncated (R7)');

# R47: client ids around LMDB's 511-byte key limit
for my $len (511, 512, 513, 4096) {
    my $r = $t->token('c' x $len, 'secret', auth => 'post');
    $t->oauth_error_ok($r, 401, 'invalid_client',
        "$len-char client_id via post (R47)");
    $r = $t->token('c' x $len, 'secret');
    ok($r->{status} == 401 || $r->{status} == 400,
        "$len-char client_id via Basic: 401/400, no 5xx (R47)");
}

# 9 KiB header: nginx itself answers 400 before the module
$r = $t->post_form('/o/token/', $gt, Authorization => 'Basic ' . ('A' x 9000));
is($r->{status}, 400, '9 KiB Authorization: nginx 400');

# two Authorization headers: nginx core rejects (unique header)
$r = $t->post_form('/o/token/', $gt,
    Authorization => [$t->basic($id, $secret), $t->basic($id, $secret)]);
is($r->{status}, 400, 'two Authorization headers: 400');

# R13, R14: an empty Authorization header is still a header, and its
# (empty) Basic credentials are invalid: the body's credentials sent
# beside it are not taken instead
$r = $t->post_form('/o/token/', "$gt&client_id=$eid&client_secret=$esec",
    Authorization => '');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'an empty Authorization header beside the body\'s credentials (R13, R14)');
ok(!defined $r->{json}{access_token},
    'an empty Authorization header: no token');

# still works after all that
is($t->token($id, $secret)->{status}, 200, 'the real credentials still work');

$t->done_testing;
