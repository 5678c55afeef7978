# Cluster mode: seed 002's handshake API on an edge whose mirror has not
# applied yet what another edge wrote a moment ago (docs/security.md R53,
# R17, R83).  A handshake created on edge A, validated and revoked on
# edge B; an API key made by `oauth2-admin --etcd apikey add`, buying a
# handshake on B.  B's sync daemon is held (SIGSTOP, well within
# max_staleness) so that its mirror is surely behind, as in
# t/cluster_pages.t: B answers once its mirror has caught up with etcd
# (the sync resumed), or 500 with Retry-After (the seed's status for a
# failure of the store) when it cannot within the mirror wait; never
# "unknown" from the mirror alone.  Before, B answered at once 404
# HANDSHAKE_NOT_FOUND (validate/, and revoke/, which revoked nothing
# while the handshake stayed live on every edge) and 401 INVALID_API_KEY
# (create/, counted as a failed authentication of the address).  One
# etcd member, two edges.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $T0 = time;
my $ea = OAuth2Test->new;    # edge A; it also hosts the etcd member
my $eb = OAuth2Test->new;    # edge B
my $url = $ea->run_etcd;
$ea->run_sync($url);
$eb->run_sync($url);

# one handshake key for both edges: a token made on A verifies on B
my $HSKEY = $ea->dir . '/handshake.key';
for my $t ($ea, $eb) {
    $t->write_config($t->default_http(
        extra_http => $t->cluster_directive
            . "oauth2_handshake_key $HSKEY;\n",
        extra_server => <<'EOF'))->run;
    location /api/auth/handshake/ {
        oauth2_handshake;
        oauth2_handshake_solution rental fbs=fbs_rental_db;
        oauth2_rate_limit 1000/d;
        oauth2_client_auth_limit 1 60s;
    }
EOF
}

my $app = $ea->new_app_etcd(name => 'rentals', scope => 'read write');
my $cid = $app->{client_id};
sub apikey { $ea->admin_etcd_json('apikey', 'add', $cid, @_) }
my $key = apikey('--name', 'seed');
ok($key->{api_key}, 'oauth2-admin --etcd apikey add');

# holds B's sync daemon; resume_b lets it go on
sub hold_b { kill 'STOP', $eb->sync_pid }
sub resume_b { kill 'CONT', $eb->sync_pid }

# $request->() on B with B's sync held: 0.3 s later the sync resumes.
# The answer, and whether none had come while the sync was held
sub on_b_while_held { $eb->while_sync_held(@_) }

# the JSON body of a background answer (OAuth2Test::in_background keeps
# the raw response)
sub body_of {
    my ($r) = @_;
    my ($body) = ($r->{raw} // '') =~ /\r?\n\r?\n(.*)\z/s;
    return eval { JSON::PP->new->decode($body // '') } // {};
}

sub hs {
    my ($t, $call, $body) = @_;
    return $t->api('POST', "/api/auth/handshake/$call", json => $body);
}
sub create {
    my ($t, $api_key) = @_;
    return hs($t, 'create/', { api_key => $api_key // $key->{api_key},
        system_name => 'rentals_django', solution_name => 'rental' });
}
# a handshake created on A (dies unless 201)
sub created_on_a {
    my $r = create($ea);
    die "create/ on A: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{handshake};
}
sub validate {
    my ($t, $h) = @_;
    return hs($t, 'validate/', { handshake_token => $h->{handshake_token},
        handshake_secret => $h->{handshake_secret} });
}
sub revoke {
    my ($t, $h) = @_;
    return hs($t, 'revoke/', { handshake_token => $h->{handshake_token} });
}

################################################ validate/ (R53)

{
    hold_b();
    my $h = created_on_a();
    my ($r, $waited) = on_b_while_held(sub { validate($eb, $h) });
    is($r->{status}, 200, sprintf('validate/ on B of a handshake created on '
        . "A while B's sync was held: 200 (after %.2f s)", $r->{took}))
        or diag($r->{raw});
    is(body_of($r)->{data}{valid}, JSON::PP::true(), '... valid');
    ok($waited, "... only once B's mirror had caught up with etcd");
    my ($left) = $r->{raw} =~ /^X-RateLimit-Remaining: (\d+)\r?$/mi;
    ok(defined $left, '... with its X-RateLimit-* headers');
    my $again = validate($eb, $h);
    is(OAuth2Test::header($again, 'X-RateLimit-Remaining'), ($left // 0) - 1,
        '... each request counted once against the rate limit, not again '
        . 'on its pass after the mirror caught up');
}

################################################ revoke/ (R53)

# a 404 that revoked nothing would leave the handshake live on every edge
{
    hold_b();
    my $h = created_on_a();
    my ($r, $waited) = on_b_while_held(sub { revoke($eb, $h) });
    is($r->{status}, 200, sprintf('revoke/ on B of a handshake created on A '
        . "while B's sync was held: 200 (after %.2f s)", $r->{took}))
        or diag($r->{raw});
    is(body_of($r)->{data}{revoked}, JSON::PP::true(), '... revoked');
    ok($waited, "... only once B's mirror had caught up with etcd");
    my $v = validate($ea, $h);
    is($v->{status}, 200, '... and validate/ on A: 200') or diag($v->{body});
    is($v->{json}{data}{valid}, JSON::PP::false(), '... valid false: revoked '
        . 'everywhere');
    is($ea->bearer_get('/protected/', $h->{handshake_token})->{status}, 401,
        '... and it opens no auth_oauth2 location on A');
}

# a handshake that exists nowhere (its API key revoked, which ends its
# handshakes): still 404 on B, once B has asked
{
    my $k = apikey('--name', 'doomed');
    my $h = created_on_a();
    my $doomed = create($ea, $k->{api_key})->{json}{handshake};
    my ($code, $out, $err) = $ea->admin_etcd('apikey', 'revoke', $cid,
        $k->{id});
    is($code, 0, 'oauth2-admin --etcd apikey revoke') or diag("$out$err");
    my $r = validate($eb, $doomed);
    is($r->{status}, 404, 'validate/ on B of a handshake that exists '
        . 'nowhere: 404') or diag($r->{body});
    is($r->{json}{error_code}, 'HANDSHAKE_NOT_FOUND', '... HANDSHAKE_NOT_FOUND');
    is(revoke($eb, $doomed)->{status}, 404, '... and revoke/ likewise');
    is(validate($eb, $h)->{status}, 200, "the other key's handshake "
        . 'validates on B');
}

################################################ within the bound

# B's sync held for good: B cannot catch up, and says so (the seed's 500
# with Retry-After once the mirror wait is over), never "not found"
{
    hold_b();
    my $h = created_on_a();
    my $t0 = time;
    my $r = validate($eb, $h);
    my $took = time - $t0;
    resume_b();
    is($r->{status}, 500, sprintf('validate/ on B with its sync held for good: '
        . '500 (after %.1f s)', $took)) or diag($r->{raw});
    is($r->{json}{error_code}, 'SERVER_ERROR', '... SERVER_ERROR');
    ok(OAuth2Test::header($r, 'Retry-After'), '... with Retry-After');
    my $ok;
    for (1 .. 100) {
        last if $ok = validate($eb, $h)->{status} == 200;
        sleep 0.1;
    }
    ok($ok, '... and 200 once the sync resumed');
}

################################################ create/ (R17, R83)

# an API key made a moment ago through etcd: the handshake is created,
# and the address is not counted a failed authentication: with
# oauth2_client_auth_limit 1, 3 failures lock it out (R17), and the
# first passes of the fresh keys, which found no key, count none
{
    my $bad_key = 'never-issued-' . ('k' x 30);
    my $k1 = apikey('--name', 'fresh-1');
    hold_b();
    my $k2 = apikey('--name', 'fresh-2');
    my ($r, $waited) = on_b_while_held(sub { create($eb, $k2->{api_key}) });
    is($r->{status}, 201, sprintf('create/ on B with an API key made through '
        . "etcd while B's sync was held: 201 (after %.2f s)", $r->{took}))
        or diag($r->{raw});
    my $h = body_of($r)->{handshake};
    ok($h->{handshake_token}, '... a handshake');
    ok($waited, "... only once B's mirror had caught up with etcd");
    is(validate($ea, $h)->{status}, 200, '... which validates on A');

    my $bad = create($eb, $bad_key);
    is($bad->{status}, 401, 'an API key that exists nowhere: 401 on B')
        or diag($bad->{body});
    is($bad->{json}{error_code}, 'INVALID_API_KEY', '... INVALID_API_KEY');

    hold_b();
    my $k3 = apikey('--name', 'fresh-3');
    ($r, $waited) = on_b_while_held(sub { create($eb, $k3->{api_key}) });
    is($r->{status}, 201, 'another fresh key on B, after that failure: 201, '
        . 'the address not locked out (the passes before the catch-up '
        . 'counted no failure)') or diag($r->{raw});
    ok($waited, "... only once B's mirror had caught up with etcd");

    is(create($eb, $bad_key)->{status}, 401, 'a 2nd unknown key on B: 401');
    is(create($eb, $bad_key)->{status}, 401, 'a 3rd: 401');
    $r = create($eb, $k1->{api_key});
    is($r->{status}, 429, '... and then the address is locked out, even '
        . 'with a good key (R17): each failure counted once') or diag($r->{body});
}

note(sprintf('t/cluster_handshake.t took %.1f s', time - $T0));
$ea->done_testing;
