# The workers' cache of valid tokens, opaque and JWT (src/core/location.hpp
# ValidCache): an entry answers only while the store is exactly as it was
# read, so a change made by any process (the CLI here, which nginx does
# not hear of) is honoured by every worker on the next request; expiry is
# checked on every hit; each location decides for itself.
# docs/security.md R45, R52, R62, R63, R66, R70.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA ();
use JSON::PP ();
use MIME::Base64 qw(decode_base64url);
use Test::More;
use OAuth2Test;
use OAuth2Grants;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'cached', scope => 'read write');
my $id = $app->{client_id};
$t->admin_json('user', 'add', '--username', 'alice', '--email',
    'alice@example.com', '--password', 'correct horse battery staple');
# no background expiry: an expired token must be refused by the check on
# the hit itself, with nothing written in between.  An HS256 key: the
# token endpoint at /jwt-token/ issues JWTs, and every location takes them.
my $key = $t->dir . '/jwt.key';
open my $kf, '>', $key or die "$key: $!";
print $kf 'k' x 40;
close $kf;
$t->write_default_config(
    extra_http => "oauth2_expiry_cleanup off;\noauth2_jwt_key $key hmac;",
    extra_server => "location = /jwt-token/ { oauth2_access_token_format jwt; oauth2_token; }\n"
      . "location /small/ { auth_oauth2 \"api\"; oauth2_validation_cache 4; alias %%DIR%%/html/; }\n"
      . "location = /metrics { oauth2_metrics; }")
    ->run;
is(scalar $t->worker_pids, 2, 'two workers');

# at least $n requests to $path with the token, more until both workers
# answered (at most 60); the distinct statuses, e.g. "200" or "200,401"
sub statuses {
    my ($path, $tok, $n) = @_;
    my (%st, %pid);
    for my $i (1 .. 60) {
        my $r = $t->bearer_get($path, $tok);
        $st{$r->{status}}++;
        $pid{OAuth2Test::header($r, 'X-Pid') // ''}++;
        last if $i >= $n && keys %pid >= 2;
    }
    diag('requests did not reach both workers') if keys %pid < 2;
    return join ',', sort keys %st;
}

sub issue {
    my (@opts) = @_;
    return $t->admin_json('token', 'issue', '--client-id', $id, @opts)
        ->{access_token};
}

# oauth2_validation_cache_hits_total: checks the cache answered
sub hits {
    my $body = $t->request('GET', '/metrics')->{body} // '';
    return $body =~ /^oauth2_validation_cache_hits_total (\d+)$/m ? $1 : -1;
}

# Issuance goes on without ending what the workers keep: only a commit
# that replaces or deletes a token, application or user record does
# (the store's validation epoch).  Tokens issued by another process (the
# CLI) and by nginx itself between the checks; then one of them revoked
# by the CLI (nginx does not hear of it): 401 at once on both workers.
# /protected/index.html: one check a request (/protected/ checks again
# after its internal redirect to the index, and the metric counts the
# last check).
{
    my $warm = issue();
    is(statuses('/protected/index.html', $warm, 10), '200', 'warm on both workers');
    my $before = hits();
    ok($before >= 1, "the cache answered some of them ($before)");
    my $n = 0;
    for my $i (1 .. 5) {
        issue();                                  # the CLI's commit
        $t->access_token($app);                   # nginx's own
        $n++ if $t->bearer_get('/protected/index.html', $warm)->{status} == 200;
        $n++ if $t->bearer_get('/protected/index.html', $warm)->{status} == 200;
    }
    is($n, 10, 'between issuances: 200 every time');
    my $after = hits();
    is($after - $before, 10, 'and the cache answered all 10, issuance in between');
    my $fresh = issue();
    is($t->bearer_get('/protected/index.html', $fresh)->{status}, 200,
        'a new token: 200');
    is(hits(), $after, 'from the store: not counted as a hit');
    $t->admin_json('user', 'add', '--username', 'bob', '--email',
        'bob@example.com', '--password', 'another horse battery staple');
    my $victim = issue('--user', 'bob');
    is(statuses('/protected/', $victim, 10), '200', "bob's token, warm");
    $t->admin_json('user', 'delete', 'bob');
    is(statuses('/protected/', $victim, 10), '401',
        'bob deleted by the CLI after it was kept: 401 at once on both workers (R66, R70)');
    is(statuses('/protected/', $warm, 4), '200', 'the first one: 200');
}

# A token's revocation or refresh ends the entries of its own bucket
# alone (the last byte of its SHA-256: one token in 256), so a site that
# revokes keeps its cache: 10 tokens of other buckets than the warm one's
# revoked at the endpoint, each followed by the warm one
# on both workers: all from the cache; the revoked ones 401 at once (R52).
{
    my $bucket = sub { ord substr(Digest::SHA::sha256($_[0]), -1) };
    my $warm = issue();
    is(statuses('/protected/index.html', $warm, 10), '200', 'warm on both workers');
    my @others;
    while (@others < 10) {
        my $o = $t->access_token($app);
        push @others, $o if $bucket->($o) != $bucket->($warm);
    }
    my $before = hits();
    my ($n, @refused) = (0);
    for my $i (0 .. $#others) {
        is($t->revoke($id, $app->{client_secret}, $others[$i])->{status}, 200,
            "token $i revoked");
        push @refused, $t->bearer_get('/protected/index.html', $others[$i])->{status};
        $n++ if $t->bearer_get('/protected/index.html', $warm)->{status} == 200;
        $n++ if $t->bearer_get('/protected/index.html', $warm)->{status} == 200;
    }
    is(join(',', @refused), join(',', ('401') x 10), 'each revoked one: 401 at once (R52)');
    is($n, 20, 'the warm one, between revocations of other buckets: 200 every time');
    is(hits() - $before, 20, 'all 20 from the cache');
}

# A sign-in rewrites its user's record (last_login) but nothing validation
# reads (the user's active flag and name): it ends no entry.  Every
# sign-in, of any user of any realm, ended every worker's entries for
# every token (R88: one site's sign-ins emptied every site's cache).
# Five password grants of alice, each followed by the warm token on both
# workers: all 10 from the cache; alice disabled then: her token 401 at
# once (R70).
{
    my $pw = $t->new_app(name => 'signs-in', grant => 'password',
        scope => 'read write');
    my $warm = issue();
    is(statuses('/protected/index.html', $warm, 10), '200', 'warm on both workers');
    my $before = hits();
    my ($n, @signed) = (0);
    for my $i (1 .. 5) {
        my $r = OAuth2Grants::password_token($t, $pw, 'alice',
            'correct horse battery staple');
        push @signed, $r->{status};
        $n++ if $t->bearer_get('/protected/index.html', $warm)->{status} == 200;
        $n++ if $t->bearer_get('/protected/index.html', $warm)->{status} == 200;
    }
    is(join(',', @signed), join(',', ('200') x 5), 'alice signed in 5 times');
    is($n, 10, 'the warm token between sign-ins: 200 every time');
    is(hits() - $before, 10, 'all 10 from the cache: a sign-in ends no entry');
    my $alices = OAuth2Grants::password_token($t, $pw, 'alice',
        'correct horse battery staple');
    my $at = JSON::PP::decode_json($alices->{body})->{access_token};
    is(statuses('/protected/', $at, 10), '200', "alice's token, warm");
    my ($dc, undef, $de) = $t->admin('user', 'set', 'alice', '--active', 'false');
    is($dc, 0, 'alice disabled') or diag $de;
    is(statuses('/protected/', $at, 10), '401',
        'alice disabled by the CLI after it was kept: 401 at once on both workers (R66, R70)');
    ($dc, undef, $de) = $t->admin('user', 'set', 'alice', '--active', 'true');
    is($dc, 0, 'alice enabled again (her tokens stay deleted)') or diag $de;
}

# R70: the application disabled and enabled by another process
my $tok = issue();
is(statuses('/protected/', $tok, 10), '200', 'warm: 200 on both workers');
$t->admin_json('app', 'disable', $id);
is(statuses('/protected/', $tok, 10), '401',
    'application disabled by the CLI: 401 at once on both workers (R66, R70)');
$t->admin_json('app', 'enable', $id);
is(statuses('/protected/', $tok, 10), '200', 'enabled again: 200');

# R70: a user's token, the user disabled
my $utok = issue('--user', 'alice');
is(statuses('/protected/', $utok, 10), '200', "alice's token: 200");
$t->admin_json('user', 'set', 'alice', '--active', 'false');
is(statuses('/protected/', $utok, 10), '401',
    'user disabled by the CLI: 401 at once on both workers (R66, R70)');
is(statuses('/protected/', $tok, 4), '200', "the client's own token still works");

# R52: revoked through the endpoint while warm
my $app2 = $t->new_app(name => 'revoker');
my $rtok = $t->access_token($app2);
is(statuses('/protected/', $rtok, 10), '200', 'warm: 200');
is($t->revoke($app2->{client_id}, $app2->{client_secret}, $rtok)->{status},
    200, 'revoked');
is(statuses('/protected/', $rtok, 10), '401', 'revoked: 401 on both workers (R52)');

# R63: valid at /protected/ is not valid at /scoped/ (auth_oauth2_scope
# admin), however often either is asked
is(statuses('/protected/', $tok, 10), '200', 'warm at /protected/');
is(statuses('/scoped/', $tok, 10), '403', '/scoped/: 403 on both workers (R63)');
is(statuses('/protected/', $tok, 4), '200', '/protected/ still 200');
like(OAuth2Test::header($t->bearer_get('/scoped/', $tok), 'WWW-Authenticate') // '',
    qr/error="insufficient_scope"/, '/scoped/: insufficient_scope');

# R45: expiry with no write in between
OAuth2Test::top_of_second();
my $short = issue('--ttl', '2');
my $start = time;
is(statuses('/protected/', $short, 10), '200', '2 s token: 200 while warm');
my $hits = 0;
while (time - $start < 2) {
    $hits++ if $t->bearer_get('/protected/', $short)->{status} == 200;
}
ok($hits > 0, "$hits more requests answered 200 before the expiry");
sleep 1;
is(statuses('/protected/', $short, 10), '401',
    'expired, no write since: 401 on both workers (R45)');

# JWTs are kept too, by the hash of their text: revocation, the
# application disabled by another process, and the scope of each location
# act at once; the jti shown as an opaque token opens nothing (R62)
my $jwt = $t->access_token($app2, path => '/jwt-token/');
like($jwt, qr/^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT from /jwt-token/');
my $jti = JSON::PP::decode_json(decode_base64url((split /\./, $jwt)[1]))->{jti} // '';
like($jti, qr/^[\w-]{22,}$/, 'its jti');
is(statuses('/protected/', $jwt, 10), '200', 'JWT warm: 200 on both workers');
is(statuses('/scoped/', $jwt, 10), '403', 'JWT at /scoped/: 403 on both workers (R63)');
is(statuses('/protected/', $jti, 10), '401', 'its jti as a bearer token: 401 (R62)');
$t->admin_json('app', 'disable', $app2->{client_id});
is(statuses('/protected/', $jwt, 10), '401',
    'JWT, application disabled by the CLI: 401 at once on both workers (R66, R70)');
$t->admin_json('app', 'enable', $app2->{client_id});
is(statuses('/protected/', $jwt, 10), '200', 'JWT, enabled again: 200');
is($t->revoke($app2->{client_id}, $app2->{client_secret}, $jwt)->{status}, 200,
    'JWT revoked');
is(statuses('/protected/', $jwt, 10), '401', 'JWT revoked: 401 on both workers (R52)');
like(OAuth2Test::header($t->bearer_get('/protected/', $jwt), 'WWW-Authenticate') // '',
    qr/error="invalid_token"/, 'JWT revoked: invalid_token');

# The table is bounded (R84): 24 tokens, opaque and JWT, and 48 forged
# ones through a table of 4 slots, three rounds.  Each real token keeps
# its 200 whichever took its slot, a forged one never opens (refusals are
# not kept, so a flood of them evicts nobody into a refusal: R83), and a
# token revoked mid-flood is refused at once while the others still open.
my @real = ((map { issue() } 1 .. 18),
    (map { $t->access_token($app2, path => '/jwt-token/') } 1 .. 6));
my @forged = map { 'forged' . sprintf('%040d', $_) } 1 .. 48;
my (%bad_real, %bad_forged);
for my $round (1 .. 3) {
    for my $i (0 .. $#real) {
        my $s = $t->bearer_get('/small/', $real[$i])->{status};
        $bad_real{"$i:$s"}++ if $s != 200;
        for my $f (@forged[2 * $i, 2 * $i + 1]) {
            my $fs = $t->bearer_get('/small/', $f)->{status};
            $bad_forged{$fs}++ if $fs != 401;
        }
    }
}
is(join(',', sort keys %bad_real), '',
    'a table of 4, 24 real tokens and 48 forged, 3 rounds: every real one 200 (R84)');
is(join(',', sort keys %bad_forged), '', 'every forged one 401 (R83)');
is($t->revoke($app2->{client_id}, $app2->{client_secret}, $real[-1])->{status}, 200,
    'one JWT of the flood revoked');
is(statuses('/small/', $real[-1], 10), '401', 'the revoked one: 401 on both workers (R52)');
is(statuses('/small/', $real[0], 4), '200', 'another: still 200');
is(statuses('/small/', $real[-2], 4), '200', 'another JWT: still 200');

# oauth2_validation_cache off: the same answers, from the store each time
$t->write_default_config(extra_http =>
    "oauth2_expiry_cleanup off;\noauth2_validation_cache off;");
$t->reload;
my $otok = issue();
is(statuses('/protected/', $otok, 10), '200', 'off: 200 on both workers');
$t->admin_json('app', 'disable', $id);
is(statuses('/protected/', $otok, 10), '401', 'off: disabled, 401');
$t->admin_json('app', 'enable', $id);

# nginx -t: what the directive takes
for my $c (['0', qr/invalid value "0" in "oauth2_validation_cache": a number of entries, 1 to 1048576, or "off"/],
    ['1048577', qr/invalid value "1048577"/], ['-1', qr/invalid value "-1"/],
    ['lots', qr/invalid value "lots"/],
    ['16 16', qr/invalid number of arguments in "oauth2_validation_cache"/],
    ["16;\noauth2_validation_cache 32", qr/"oauth2_validation_cache" directive is duplicate/])
{
    $t->write_default_config(extra_http => "oauth2_validation_cache $c->[0];");
    my ($code, $out) = $t->nginx_t;
    isnt($code, 0, "oauth2_validation_cache $c->[0]: nginx -t fails");
    like($out, $c->[1], "oauth2_validation_cache $c->[0]: the message says why")
        or diag($out);
}
for my $v ('1', '1048576', 'off') {
    $t->write_default_config(extra_http => "oauth2_validation_cache $v;",
        extra_server => "location /small/ { auth_oauth2 \"api\"; "
          . "oauth2_validation_cache 8; alias %%DIR%%/html/; }");
    my ($code, $out) = $t->nginx_t;
    is($code, 0, "oauth2_validation_cache $v (and 8 in a location): nginx -t passes")
        or diag($out);
}

$t->done_testing;
