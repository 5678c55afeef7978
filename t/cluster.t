# etcd cluster mode (issue 13; docs/design.md "Writes: one path (single node
# and cluster)"; SECURITY.md R29, R38, R52, R53, R66, R70, R77, R78, R83,
# R89): one etcd member and two edges on loopback, each its own nginx with
# `oauth2_cluster etcd=...`, its own LMDB mirror and its own
# `oauth2-admin sync`.  What one edge writes (an application or a user
# through `oauth2-admin --etcd`, a token, a revocation, a deletion, a failed
# password) holds on the other; the edge that wrote reads its own write at
# once; single-use codes, refresh rotation and the account lock hold across
# edges; a mirror is written only by its sync daemon (a local write without
# --etcd is refused); a token or code made on one edge a moment ago is
# redeemed, revoked or introspected on the other once its mirror has caught
# up; with etcd or the sync daemon gone the token endpoint answers 503 and
# bearer validation and every endpoint fail closed (503, Retry-After) once
# the mirror is staler than max_staleness, and both recover by themselves,
# without restarting nginx or sync; oauth2_metrics counts those 503s as the
# mirror's and etcd's (oauth2_unavailable_total{reason}), not the store's;
# bad oauth2_cluster values fail nginx -t.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;
use OAuth2Grants qw(PBKDF2 introspect);

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $T0 = time;
my $CB = 'https://client.example/cb';
my $PW = 'Tr0ub4dor-edge-3';
my $STALE = 1;    # max_staleness of both edges, in seconds

my $ea = OAuth2Test->new;    # edge A; it also hosts the etcd member
my $eb = OAuth2Test->new;    # edge B
my %name = ($ea->port => 'A', $eb->port => 'B');

# a sync daemon that cannot reach etcd fails loudly (R78); it runs in the
# background while the rest goes on
my $deadport = OAuth2Test::_free_port();
my $nostore = $ea->dir . '/nostore';
my $nosync = fork // die "fork: $!";
if (!$nosync) {
    my ($code, $out, $err, $took) = $ea->run_cmd_timeout(20,
        $OAuth2Test::ADMIN, 'sync', '--store', $nostore, '--etcd',
        "http://127.0.0.1:$deadport");
    OAuth2Test::write_file($ea->dir . '/nosync.result',
        JSON::PP->new->encode([$code, $out . $err, $took]));
    POSIX::_exit(0);
}

# both edges share a prefix of their own (threaded through nginx, sync and
# the CLI); edge B lists a dead member first (a URL list fails over)
my $PREFIX = '/t-oauth2/';
my $url = $ea->run_etcd;
my $burls = "http://127.0.0.1:$deadport,$url";
$ea->run_sync($url, prefix => $PREFIX);
$eb->run_sync($burls, prefix => $PREFIX);
ok(-f $ea->store . '/data.mdb' && -f $eb->store . '/data.mdb',
    'oauth2-admin sync creates each mirror and snapshots etcd into it');
my $sync_pid_a = $ea->sync_pid;
my $sync_pid_b = $eb->sync_pid;    # again after the restart below

# simplejwt's login and refresh (seed 005) at both edges, one key and one
# issuer between them (the name a load balancer puts in front of the
# edges); its application goes through etcd before nginx starts, as the
# locations name it
my $EC = $ea->ec_key;
my $sj = $ea->new_app_etcd(name => 'edge-simplejwt',
    grant => ['password', 'refresh_token'], scope => 'read');
my $sjid = $sj->{client_id} // 'none';
my $SJ = "oauth2_jwt_key $EC; oauth2_issuer https://edges.example;";
my $SIMPLEJWT = "location = /api/token/ { $SJ oauth2_jwt_token $sjid; }\n"
    . "location = /api/token/refresh/ { $SJ oauth2_jwt_refresh $sjid; }\n";

for my $t ($ea, $eb) {
    # oauth2_cluster at the http level; the default server's oauth2_store
    # is the edge's mirror
    $t->write_config(OAuth2Authorize::http_conf($t,
        extra_http => $t->cluster_directive(prefix => $PREFIX,
            max_staleness => "${STALE}s")
            . "oauth2_account_limit 6 30s;\n",
        extra_server => "location = /metrics { oauth2_metrics; }\n"
            . "location = /o/userinfo/ { oauth2_userinfo; }\n"
            . $SIMPLEJWT))->run;
}
my %master = (A => $ea->master_pid, B => $eb->master_pid);

sub protected { $_[0]->bearer_get('/protected/', $_[1])->{status} }

# an edge's oauth2_mirror_* metrics: (revision, staleness in seconds)
sub mirror_metrics {
    my ($t) = @_;
    my $body = $t->get('/metrics')->{body} // '';
    my ($rev) = $body =~ /^oauth2_mirror_revision (\d+)$/m;
    my ($age) = $body =~ /^oauth2_mirror_staleness_seconds (\S+)$/m;
    return ($rev, $age);
}

# an edge's oauth2_unavailable_total: { reason => n }
sub unavailable_metrics {
    my ($t) = @_;
    my $body = $t->get('/metrics')->{body} // '';
    return { $body =~ /^oauth2_unavailable_total\{reason="(\w+)"\} (\d+)$/mg };
}

# the statuses of /protected/ with $tok on edge $t, $n requests and more
# until both workers answered: e.g. "200" or "200,401" (R66)
sub all_workers {
    my ($t, $tok, $n) = @_;
    my (%st, %pid);
    for my $i (1 .. 60) {
        my $r = $t->bearer_get('/protected/', $tok);
        $st{$r->{status}}++;
        $pid{OAuth2Test::header($r, 'X-Pid') // ''}++;
        last if $i >= $n && keys %pid >= 2;
    }
    return join ',', sort keys %st;
}

sub app_ids {
    my ($t) = @_;
    my ($code, $out) = $t->admin('app', 'list');
    return 'app list failed' if $code;
    my $l = eval { JSON::PP->new->decode($out) } // [];
    $l = $l->{apps} if ref $l eq 'HASH';
    return join ',', sort map { $_->{client_id} // '?' } @{$l // []};
}

# runs $code (a section of the test) and turns a die into a failure, so
# that one broken part does not hide the others
sub section {
    my ($name, $code) = @_;
    my $ok = eval { $code->(); 1 };
    fail("$name: $@") unless $ok;
}

# $racers: [[port, raw request] ...] all sent at the same moment
# (OAuth2Test::race_raw): "A 200 ok", "B 400 invalid_grant", ... and the
# bodies
sub race {
    my ($racers) = @_;
    my @r = OAuth2Test::race_raw($racers);
    my @res = map { "$name{$racers->[$_][0]} " . OAuth2Test::outcome($r[$_]) }
        0 .. $#r;
    return (\@res, [map { $_->{body} } @r]);
}

# the number of etcd keys under $prefix (the v3 gateway's count_only)
# the records of $n's mirror as mdb_dump prints them, less the meta each
# machine keeps for itself (schema, map size, the mirror's revision)
sub mirror_records {
    my @lines = split /^/, OAuth2Test::dump_store($_[0]->store);
    my @kept;
    while (defined(my $l = shift @lines)) {
        if ($l =~ /^ (?:schema_version|map_size|mirror_\w+)$/) { shift @lines; next }
        push @kept, $l;
    }
    return join '', @kept;
}

sub etcd_count {
    my ($prefix) = @_;
    my $end = $prefix;
    substr($end, -1, 1) = chr(ord(substr $end, -1) + 1);
    my $r = $ea->request('POST', '/v3/kv/range', port => $ea->etcd_port,
        headers => ['Content-Type' => 'application/json'],
        body => JSON::PP->new->encode({ key => encode_base64($prefix, ''),
            range_end => encode_base64($end, ''), count_only => JSON::PP::true }));
    my $j = eval { JSON::PP->new->decode($r->{body}) } // {};
    return $j->{count} // 0;
}

sub raw_post {
    my ($path, $body, @h) = @_;
    my $raw = "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n";
    while (@h) { my ($k, $v) = splice @h, 0, 2; $raw .= "$k: $v\r\n" }
    return $raw . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
}

######################################## applications through etcd (issue 13)

my ($app, $web, $mob);
section('applications through oauth2-admin --etcd', sub {
    $app = $ea->new_app_etcd(name => 'edge-cc', scope => 'read write');
    ok($app->{client_id} && $app->{client_secret},
        'oauth2-admin --etcd app add: the application, with its secret');
    # read-your-writes: --etcd waited for A's mirror, so A has it now
    my $r = $ea->token($app->{client_id}, $app->{client_secret});
    is($r->{status}, 200,
        'the new application gets a token on edge A at once (its mirror '
        . 'applied the write before app add returned)')
        or diag($r->{raw});
    my ($ok, $took) = OAuth2Test::poll(1, sub {
        $eb->token($app->{client_id}, $app->{client_secret})->{status}
            == 200 });
    ok($ok, sprintf('and on edge B within 1 s (%.3f s)', $took));
    is(app_ids($eb), app_ids($ea), 'both mirrors list the same applications');

    $web = $ea->new_app_etcd(name => 'edge-web',
        grant => ['authorization_code', 'refresh_token'],
        redirect_uris => [$CB]);
    $mob = $eb->new_app_etcd(name => 'edge-mobile',
        grant => ['password', 'refresh_token'], scope => 'read write');
    ok($web->{client_id} && $mob->{client_id},
        'two more applications, one through each edge');
    for my $u (qw(alice carol)) {
        my ($code, $out, $err) = $eb->admin_etcd('user', 'add',
            '--username', $u, '--email', "$u\@example.com", '--password',
            $PW, '--pbkdf2-iterations', PBKDF2);
        is($code, 0, "oauth2-admin --etcd user add $u through edge B")
            or diag("$out$err");
    }
    is(etcd_count($PREFIX) > 0 && etcd_count('/oauth2/') == 0 ? 1 : 0, 1,
        "the records are in etcd under the configured prefix $PREFIX only");
});

################################# a token of edge A at edge B (R52, R66)

my ($id, $secret) = @{$app // {}}{qw(client_id client_secret)};
my $tok;
section('a token issued on A, validated on B', sub {
    $tok = $ea->access_token($app);
    is(protected($ea, $tok), 200,
        'a token issued on edge A validates on A on the very next request '
        . '(read-your-writes)');
    is(all_workers($ea, $tok, 6), '200', '... in every worker of A');
    my ($ok, $took) = OAuth2Test::poll(1, sub { protected($eb, $tok) == 200 });
    ok($ok, sprintf('it validates on edge B within 1 s (%.3f s)', $took));
    is(all_workers($eb, $tok, 6), '200', '... in every worker of B');
});

section('a revocation on B holds on A within 1 s', sub {
    my $r = $eb->revoke($id, $secret, $tok);
    is($r->{status}, 200, 'revoke on edge B: 200 (R48)');
    is(protected($eb, $tok), 401,
        'edge B refuses the token on the next request (read-your-writes, '
        . 'R52)');
    my ($ok, $took) = OAuth2Test::poll(1, sub { protected($ea, $tok) == 401 });
    ok($ok, sprintf('edge A refuses it within 1 s (%.3f s) (R66)', $took));
    cmp_ok($took, '<', 1, 'the revocation reached edge A in under 1 s');
    is(all_workers($ea, $tok, 6), '401', '... in every worker of A (R66)');
});

# R53 across edges: a revocation on B of a token B's mirror does not hold
# yet (issued on A a moment ago) must not be a 200 that revoked nothing: B
# catches up with etcd first, then looks again.  B's sync daemon is held
# (SIGSTOP, well within max_staleness) so that its mirror is surely behind
# when the revocation arrives.
section('a revocation on B of a token B has not mirrored yet', sub {
    my $spid = $eb->sync_pid;
    kill 'STOP', $spid;
    my $fresh = $ea->access_token($app);
    is(protected($ea, $fresh), 200,
        "a token issued on A while B's sync daemon is held");
    is(protected($eb, $fresh), 401, '... which B does not know yet');
    my $file = $eb->dir . '/bg.revoke-unmirrored';
    my $rp = OAuth2Test::in_background($file, sub { $eb->revoke($id, $secret, $fresh) });
    sleep 0.3;
    # still running (not reaped): it had no answer while B's mirror was behind
    my $waited = waitpid($rp, POSIX::WNOHANG()) == 0;
    kill 'CONT', $spid;
    my $rr = OAuth2Test::background_result($rp, $file);
    is($rr->{status}, 200, sprintf('revoke on B: 200 (after %.2f s)',
        $rr->{took})) or diag($rr->{raw});
    ok($waited, '... only once B\'s mirror had caught up with etcd: no '
        . 'answer while its sync was held (R53)');
    is(protected($eb, $fresh), 401, 'B refuses the token');
    my ($ok, $took) = OAuth2Test::poll(1, sub { protected($ea, $fresh) == 401 });
    ok($ok, sprintf('A refuses it within 1 s (%.3f s): the revocation was '
        . 'not lost (R53, R66)', $took));
    my $r = $eb->revoke($id, $secret, 'never-issued-' . ('x' x 30));
    is($r->{status}, 200,
        'a token that exists nowhere: 200 on B, as on one machine (R50)');
    is($r->{body}, '{}', '... with the same body');
});

# introspection on B of a token B's mirror does not hold yet (issued on A a
# moment ago): a resource server behind B told "active": false would
# refuse a good client, so B catches up with etcd first, then looks again
section('introspection on B of a token B has not mirrored yet', sub {
    my $spid = $eb->sync_pid;
    kill 'STOP', $spid;
    my $fresh = $ea->access_token($app);
    is(protected($eb, $fresh), 401,
        "a token issued on A while B's sync daemon is held: B does not know "
        . 'it yet');
    my $file = $eb->dir . '/bg.introspect-unmirrored';
    my $ip = OAuth2Test::in_background($file, sub { introspect($eb, $app, $fresh) });
    sleep 0.3;
    # still running (not reaped): no answer while B's mirror was behind
    my $waited = waitpid($ip, POSIX::WNOHANG()) == 0;
    kill 'CONT', $spid;
    my $ir = OAuth2Test::background_result($ip, $file);
    my $j = eval { JSON::PP->new->decode($ir->{raw} =~ s/^.*?\r\n\r\n//sr) }
        // {};
    is($ir->{status}, 200, sprintf('introspection on B: 200 (after %.2f s)',
        $ir->{took})) or diag($ir->{raw});
    ok($j->{active} && JSON::PP::is_bool($j->{active}),
        '... "active": true, not false') or diag($ir->{raw});
    is($j->{client_id}, $id, '... naming the client A issued it to');
    ok($waited, "... only once B's mirror had caught up with etcd: no "
        . 'answer while its sync was held');
    my $r = introspect($eb, $app, 'never-issued-' . ('y' x 30));
    is($r->{status}, 200, 'a token that exists nowhere: 200 on B');
    ok(!$r->{json}{active}, '... "active": false, as on one machine')
        or diag($r->{raw});
});

# the cluster's group commit (a queue of the changes waiting, at most 64 a
# Txn): a flood beyond one batch is all committed, none refused or lost,
# and every token is good on the other edge (R84: a queue drops nothing)
section('100 token requests at once on A, more than one batch', sub {
    my $raw = raw_post('/o/token/', 'grant_type=client_credentials',
        Authorization => 'Basic ' . encode_base64("$id:$secret", ''));
    my ($res, $bodies) = race([map { [$ea->port, $raw] } 1 .. 100]);
    is(scalar(grep { /^A 200 ok$/ } @$res), 100, 'all 100 answered 200')
        or diag(join ', ', @$res);
    my @toks = grep { defined } map {
        my $j = eval { JSON::PP->new->decode($_) };
        ref $j eq 'HASH' ? $j->{access_token} : undef } @$bodies;
    my %distinct = map { $_ => 1 } @toks;
    is(scalar keys %distinct, 100, '100 distinct access tokens');
    my ($ok) = OAuth2Test::poll(2, sub { protected($eb, $toks[-1] // 'x') == 200 });
    ok($ok, 'the last of them validates on edge B');
    is(scalar(grep { protected($eb, $_) != 200 } @toks), 0,
        'every one of them validates on edge B (none lost)');
});

# oauth2_metrics on an edge: the mirror's revision and staleness (issue 15)
section('the mirror in oauth2_metrics', sub {
    my $tok = $ea->access_token($app);    # a write: etcd's revision moves
    my $r = $ea->request('POST', '/v3/kv/range', port => $ea->etcd_port,
        headers => ['Content-Type' => 'application/json'],
        body => '{"key":"AA==","count_only":true}');
    my $head = eval { JSON::PP->new->decode($r->{body})->{header}{revision} }
        // 0;
    for my $t ($ea, $eb) {
        my ($ok) = OAuth2Test::poll(2, sub { ((mirror_metrics($t))[0] // 0) >= $head });
        my ($rev, $age) = mirror_metrics($t);
        ok($ok, "edge $name{$t->port}: oauth2_mirror_revision "
            . ($rev // 'missing') . " reached etcd's revision $head");
        ok(defined $age && $age =~ /^\d+\.\d{3}$/ && $age < $STALE,
            "edge $name{$t->port}: oauth2_mirror_staleness_seconds "
            . ($age // 'missing') . " under max_staleness");
    }
});

################################## a mirror refuses local writes (issue 13)

section('no local write to a mirror', sub {
    my ($before_a, $before_b) = (app_ids($ea), app_ids($eb));
    my @tries = (
        [$ea, [qw(app add --name rogue --grant client_credentials)],
            'app add'],
        [$eb, ['user', 'add', '--username', 'mallory', '--email',
            'mallory@example.com', '--password', $PW], 'user add'],
        [$ea, ['token', 'issue', '--client-id', $id], 'token issue'],
        [$eb, ['app', 'delete', $id], 'app delete'],
    );
    for my $try (@tries) {
        my ($t, $args, $what) = @$try;
        my ($code, $out, $err) = $t->admin(@$args);
        isnt($code, 0, "$what on a mirror without --etcd: refused");
        like("$out$err", qr/--etcd/, "$what: the message names --etcd")
            or diag("$out$err");
    }
    is(app_ids($ea), $before_a, 'mirror A: its applications unchanged');
    is(app_ids($eb), $before_b, 'mirror B: its applications unchanged');
    unlike(app_ids($ea) . app_ids($eb), qr/rogue/, 'no "rogue" anywhere');
    is($ea->token($id, $secret)->{status}, 200,
        'the application the refused delete named still works');
    my ($code) = $ea->admin('app', 'list');
    is($code, 0, 'reading a mirror without --etcd works');
});

############################ one code, redeemed on both edges at once (R29)

# alice signed in on edge A for the web application: the flow, its
# authorization query (state $state) and the session, or () if she cannot
sub alice_on_a {
    my ($state) = @_;
    my $f = OAuth2Authorize->new($ea);
    my $q = OAuth2Authorize::query(client_id => $web->{client_id},
        response_type => 'code', redirect_uri => $CB, scope => 'read',
        state => $state);
    my $session = $f->login($q, 'alice', $PW);
    ok($session, 'alice signs in on edge A') or return;
    return ($f, $q, $session);
}

section('parallel redemption of one code on both edges', sub {
    my ($f, $q, $session) = alice_on_a('st-1') or return;
    my @wins;
    my %tally;
    for my $round (1 .. 3) {
        my $code = $f->code($q, $session);
        my $raw = raw_post('/o/token/', OAuth2Test::form(
            grant_type => 'authorization_code', code => $code,
            redirect_uri => $CB, client_id => $web->{client_id},
            client_secret => $web->{client_secret}));
        my ($res) = race([map { [$_ % 2 ? $eb->port : $ea->port, $raw] }
            1 .. 12]);
        push @wins, scalar grep { / 200 / } @$res;
        $tally{s/^\S+ //r}++ for @$res;
        diag("round $round: @$res") if $ENV{VERBOSE};
    }
    is(join(',', @wins), '1,1,1', '12 redemptions of one code, 6 on each '
        . 'edge, 3 rounds: exactly one 200 each (R29)');
    is(join(',', sort keys %tally), '200 ok,400 invalid_grant',
        'the others get 400 invalid_grant, nothing else (R29)')
        or diag(explain \%tally);
});

################################ one refresh token, both edges at once (R38)

section('parallel refresh of one token on both edges', sub {
    my $r = $eb->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => 'alice', password => $PW),
        Authorization => $eb->basic($mob->{client_id},
            $mob->{client_secret}));
    is($r->{status}, 200, 'password grant on edge B: 200')
        or return diag($r->{raw});
    my $rt = $r->{json}{refresh_token};
    my $raw = raw_post('/o/token/',
        OAuth2Test::form(grant_type => 'refresh_token', refresh_token => $rt),
        Authorization => $eb->basic($mob->{client_id},
            $mob->{client_secret}));
    my ($res, $bodies) = race([map { [$_ % 2 ? $ea->port : $eb->port, $raw] }
        1 .. 8]);
    my @won = map { $bodies->[$_] } grep { $res->[$_] =~ / 200 / } 0 .. 7;
    my %pairs = map { $_ => 1 } @won;
    is(scalar keys %pairs, 1,
        '8 refreshes of one token, 4 on each edge: one pair minted (R38)')
        or diag(explain $res);
    is(scalar @won, 8, 'every racer gets that pair within the grace '
        . '(README "refresh_token")') or diag(explain $res);
    my ($pair) = map { eval { JSON::PP->new->decode($_) } // {} } keys %pairs;
    $pair //= {};
    my ($ok) = OAuth2Test::poll(1, sub {
        protected($ea, $pair->{access_token} // 'x') == 200
            && protected($eb, $pair->{access_token} // 'x') == 200 });
    ok($ok, "the pair's access token validates on both edges");
    my $old = $ea->post_form('/o/introspect/',
        OAuth2Test::form(token => $rt),
        Authorization => $ea->basic($mob->{client_id},
            $mob->{client_secret}));
    is($old->{json}{active} ? 1 : 0, 0,
        'the raced refresh token is spent (R38)') or diag($old->{raw});
    $r = $ea->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'refresh_token',
        refresh_token => $pair->{refresh_token} // 'x'),
        Authorization => $ea->basic($mob->{client_id},
            $mob->{client_secret}));
    is($r->{status}, 200, "the pair's refresh token refreshes on edge A");
});

# A code or refresh token made on A a moment ago, redeemed on B before B's
# mirror holds it (behind a load balancer, the browser's redirect and the
# client's backend can land on different edges): B catches up with etcd
# and redeems it, where it used to answer invalid_grant to a legitimate
# client.  B's sync daemon is held as in the revocation section above.
section('a code and refresh tokens B has not mirrored yet', sub {
    my ($f, $q, $session) = alice_on_a('st-unmirrored') or return;
    my $spid = $eb->sync_pid;
    kill 'STOP', $spid;
    my $code = $f->code($q, $session);
    my $r = $ea->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => 'carol', password => $PW),
        Authorization => $ea->basic($mob->{client_id},
            $mob->{client_secret}));
    my $rt = $r->{json}{refresh_token} // 'x';
    my $JSON = ['Content-Type' => 'application/json'];
    my $sr = $ea->post_form('/api/token/', JSON::PP->new->encode(
        { username => 'carol', password => $PW }), @$JSON);
    my $srt = $sr->{json}{refresh} // 'x';
    ok($code && $r->{status} == 200 && $sr->{status} == 200,
        "a code and two refresh tokens (OAuth 2, simplejwt) made on A while "
        . "B's sync is held");
    my $dir = $eb->dir;
    my $cp = OAuth2Test::in_background("$dir/bg.code-unmirrored", sub {
        $eb->post_form('/o/token/', OAuth2Test::form(
            grant_type => 'authorization_code', code => $code,
            redirect_uri => $CB, client_id => $web->{client_id},
            client_secret => $web->{client_secret})) });
    my $rp = OAuth2Test::in_background("$dir/bg.refresh-unmirrored", sub {
        $eb->post_form('/o/token/', OAuth2Test::form(
            grant_type => 'refresh_token', refresh_token => $rt),
            Authorization => $eb->basic($mob->{client_id},
                $mob->{client_secret})) });
    my $sp = OAuth2Test::in_background("$dir/bg.simplejwt-unmirrored", sub {
        $eb->post_form('/api/token/refresh/',
            JSON::PP->new->encode({ refresh => $srt }), @$JSON) });
    sleep 0.3;
    my %waited = map { $_ => waitpid($_, POSIX::WNOHANG()) == 0 }
        $cp, $rp, $sp;
    kill 'CONT', $spid;
    for ([code => $cp, 'code-unmirrored', 'access_token'],
         [refresh => $rp, 'refresh-unmirrored', 'access_token'],
         ['simplejwt refresh' => $sp, 'simplejwt-unmirrored', 'access']) {
        my ($what, $pid, $file, $field) = @$_;
        my $res = OAuth2Test::background_result($pid, "$dir/bg.$file");
        is($res->{status}, 200, sprintf('the %s redeemed on B: 200 (after '
            . '%.2f s), not refused', $what, $res->{took}))
            or diag($res->{raw});
        ok($waited{$pid}, "... once B's mirror had caught up with etcd: no "
            . 'answer while its sync was held');
        my ($body) = ($res->{raw} =~ /\r?\n\r?\n(.*)\z/s);
        my $at = (eval { JSON::PP->new->decode($body // '') } // {})
            ->{$field} // 'x';
        if ($field eq 'access') {    # a JWT of the simplejwt location's key
            like($at, qr/^[\w-]+\.[\w-]+\.[\w-]+$/, '... with a new access JWT');
        } else {
            is(protected($eb, $at), 200,
                "... and its access token works on B");
        }
    }
    my $again = $ea->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'authorization_code', code => $code,
        redirect_uri => $CB, client_id => $web->{client_id},
        client_secret => $web->{client_secret}));
    is($again->{json}{error} // '', 'invalid_grant',
        'the code, redeemed again on A: invalid_grant, it was used once '
        . '(R29)');
    my $x = $eb->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'authorization_code', code => 'never-issued-' . ('c' x 30),
        redirect_uri => $CB, client_id => $web->{client_id},
        client_secret => $web->{client_secret}));
    is(($x->{status} // 0) . ' ' . ($x->{json}{error} // ''),
        '400 invalid_grant', 'a code that exists nowhere: 400 invalid_grant '
        . 'on B, as on one machine');
});

######################## deleting an application, seen by both (R70)

section('an application deleted through B is refused on A', sub {
    my $gone = $ea->new_app_etcd(name => 'edge-gone');
    my $gtok = $ea->access_token($gone);
    my ($ok) = OAuth2Test::poll(1, sub { protected($eb, $gtok) == 200 });
    ok($ok, "a token of the doomed application validates on both edges");
    my ($code, $out, $err) = $eb->admin_etcd('app', 'delete',
        $gone->{client_id});
    is($code, 0, 'oauth2-admin --etcd app delete through edge B')
        or diag("$out$err");
    is(protected($eb, $gtok), 401,
        'its token is refused on edge B at once (R70)');
    my $took;
    ($ok, $took) = OAuth2Test::poll(1, sub { protected($ea, $gtok) == 401 });
    ok($ok, sprintf('and on edge A within 1 s (%.3f s) (R70)', $took));
    is($ea->token($gone->{client_id}, $gone->{client_secret})->{status}, 401,
        'the deleted application gets no token on edge A');
});

########################################## one account, one lock (R89)

section('failed passwords on both edges count against one lock', sub {
    my $pw = sub {
        my ($t, $p, $from) = @_;
        return $t->post_form('/o/token/', OAuth2Test::form(
            grant_type => 'password', username => 'carol', password => $p),
            Authorization => $t->basic($mob->{client_id},
                $mob->{client_secret}), -from => $from);
    };
    is($pw->($ea, $PW, '127.0.0.50')->{status}, 200,
        'carol signs in on edge A from her address');
    # 3 wrong passwords on each edge, each from its own address: 6 in all,
    # the limit; neither edge alone saw more than 3
    my @st;
    for my $i (1 .. 6) {
        my $t = $i % 2 ? $ea : $eb;
        push @st, $pw->($t, "wrong-$i", "127.0.0.1$i")->{status};
        # each failure is in etcd before its answer: the other edge's mirror
        # has it a moment later
        sleep 0.05;
    }
    is(join(',', @st), '400,400,400,400,400,400',
        '6 wrong passwords for carol, 3 on each edge: 400 each');
    # a fresh address each try (a 200 would make an address trusted)
    my $n = 60;
    my ($ok) = OAuth2Test::poll(1, sub {
        $n += 2;
        $pw->($ea, $PW, '127.0.0.' . $n)->{status} == 429
            && $pw->($eb, $PW, '127.0.0.' . ($n + 1))->{status} == 429 });
    ok($ok, 'the account is locked on both edges for new addresses, even '
        . 'with the right password (R89)');
    is($pw->($eb, $PW, '127.0.0.50')->{status}, 200,
        'the address carol signed in from on edge A is not locked out on '
        . 'edge B (R83)');
});

##################### a backup restored into the cluster (issue 13)

section('oauth2-admin --etcd restore puts a backup in the cluster', sub {
    my $app = $ea->new_app_etcd(name => 'restored');
    my $before = $ea->access_token($app);    # in the backup
    my ($ok) = OAuth2Test::poll(1, sub { protected($eb, $before) == 200 });
    ok($ok, 'restore: a token of before the backup validates on both edges');
    my $file = $ea->dir . '/cluster-backup.mdb';
    my ($code, $out, $err) = $ea->admin('backup', $file);
    is($code, 0, 'restore: oauth2-admin backup copies edge A\'s mirror')
        or diag("$out$err");
    my $after = $ea->access_token($app);    # not in the backup
    is($eb->revoke($app->{client_id}, $app->{client_secret}, $before)->{status}, 200,
        'restore: the older token revoked through edge B');
    ($ok) = OAuth2Test::poll(1, sub { protected($ea, $before) == 401 });
    ok($ok, 'restore: ... and refused on edge A');

    # refused restores change nothing
    my $junk = $ea->dir . '/junk.mdb';
    OAuth2Test::write_file($junk, 'not an LMDB file ' x 512);
    ($code, $out, $err) = $ea->admin_etcd('restore', $junk, '--force');
    is($code, 1, 'restore: a file that is no backup: exit 1');
    like($err, qr/is not a backup of the store/, 'restore: ... and says so');
    ($code, $out, $err) = $ea->admin_etcd('restore', $file);
    is($code, 1, 'restore: a cluster that holds records, without --force: exit 1');
    like($err, qr/already holds records: restore replaces them only with --force/,
        'restore: ... naming --force');
    is(protected($eb, $after) . ',' . protected($ea, $before), '200,401',
        'restore: the refused restores changed nothing');

    ($code, $out, $err) = $ea->admin_etcd('restore', $file, '--force');
    is($code, 0, 'restore: --etcd restore --force: exit 0') or diag("$out$err");
    my $res = eval { JSON::PP->new->decode($out) } // {};
    ok($res->{replaced} && $res->{revision} > 0,
        'restore: it says it replaced records, at an etcd revision');
    is($res->{etcd_prefix}, $PREFIX, 'restore: ... under the cluster\'s prefix');
    my $took;
    ($ok, $took) = OAuth2Test::poll(3, sub {
        protected($ea, $before) == 200 && protected($eb, $before) == 200 });
    ok($ok, sprintf('restore: the token revoked after the backup validates '
        . 'again on both edges (%.3f s)', $took));
    ($ok) = OAuth2Test::poll(3, sub {
        protected($ea, $after) == 401 && protected($eb, $after) == 401 });
    ok($ok, 'restore: the token issued after the backup is refused on both edges');
    is($eb->token($app->{client_id}, $app->{client_secret})->{status}, 200,
        'restore: the application issues tokens on edge B');
    # the two mirrors hold the same records
    ($ok) = OAuth2Test::poll(3, sub { mirror_records($ea) eq mirror_records($eb) });
    ok($ok, 'restore: both mirrors hold the same records');

    # a mirror is its sync daemon's alone: a local restore names --etcd
    my $held = mirror_records($eb);
    ($code, $out, $err) = $eb->admin('restore', $file, '--force');
    is($code, 1, 'restore: a local restore onto a mirror, --force or not: exit 1');
    like($err, qr/is a mirror of etcd.*--etcd/, 'restore: ... naming --etcd');
    is(mirror_records($eb), $held, 'restore: ... and the mirror is unchanged');
});

############################ a sync daemon restarted resumes (issue 13)

section('edge B without its sync daemon, then with it again', sub {
    my $before = $eb->sync_pid;
    my $gone = $ea->access_token($app);
    my ($known) = OAuth2Test::poll(1, sub { protected($eb, $gone) == 200 });
    ok($known, 'a token valid on both edges');
    my $t0 = time;
    is($eb->stop_sync, 0, sprintf("edge B's sync daemon stops on SIGTERM "
        . '(exit 0, after %.2f s)', time - $t0));
    my $tok2 = $ea->access_token($app);
    my ($ok, $took) = OAuth2Test::poll($STALE + 3, sub { protected($eb, $tok2) == 503 });
    ok($ok, sprintf('edge B fails closed without its sync daemon (after '
        . '%.2f s) (R77)', $took));
    # the endpoints that answer from the mirror alone fail closed with it:
    # a revocation made on A meanwhile is missing from B's mirror
    is($ea->revoke($id, $secret, $gone)->{status}, 200,
        'that token revoked on A while B has no sync daemon');
    my $i = introspect($eb, $app, $gone);
    is($i->{status}, 503, '... introspection on B fails closed, never '
        . '"active": true (R77)') or diag($i->{raw});
    is($i->{json}{error}, 'temporarily_unavailable',
        '... temporarily_unavailable (R10)');
    like(OAuth2Test::header($i, 'Retry-After') // '', qr/^\d+$/,
        '... with Retry-After');
    my $u = $eb->bearer_get('/o/userinfo/', $gone);
    is($u->{status}, 503, 'userinfo on B fails closed too (R77)')
        or diag($u->{raw});
    # a person at the sign-in page gets a page that says so, not JSON
    my $pg = $eb->get('/o/authorize/?response_type=code&client_id='
        . $web->{client_id});
    is($pg->{status}, 503, 'the authorization page on B: 503 (R77)');
    like(OAuth2Test::header($pg, 'Content-Type') // '', qr{^text/html},
        '... an HTML page') or diag($pg->{raw});
    like($pg->{body}, qr{<h1>Unavailable</h1>}, '... that says so');
    like(OAuth2Test::header($pg, 'Retry-After') // '', qr/^\d+$/,
        '... with Retry-After');
    # what B does not hold cannot be looked up in a mirror that stale: a
    # revocation or a code B has never seen is 503 at once (R53), not after
    # the mirror wait, so a flood of them holds no thread for seconds
    $t0 = time;
    my $rv = $eb->revoke($id, $secret, 'never-issued-' . ('z' x 30));
    my $took_rv = time - $t0;
    is($rv->{status}, 503, 'a revocation of a token B has never seen: 503, '
        . 'never 200 (R53)') or diag($rv->{raw});
    $t0 = time;
    my $cr = $eb->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'authorization_code', code => 'n' x 43,
        redirect_uri => $CB),
        Authorization => $eb->basic($web->{client_id}, $web->{client_secret}));
    my $took_cr = time - $t0;
    is($cr->{status}, 503, 'a code B has never seen: 503 (R77)')
        or diag($cr->{raw});
    cmp_ok($took_rv + $took_cr, '<', 1.5, sprintf('... both at once (%.2f '
        . 'and %.2f s), not after the 5-s mirror wait', $took_rv, $took_cr));
    # a write would reach etcd and never come back through the mirror: it
    # is not sent (no token nobody got, no thread held for the mirror wait)
    my $keys = etcd_count($PREFIX);
    $t0 = time;
    my $tr = $eb->token($id, $secret);
    my $took_tr = time - $t0;
    is($tr->{status}, 503, sprintf('a token request on B: 503 (after %.2f '
        . 's)', $took_tr)) or diag($tr->{raw});
    is($tr->{json}{error}, 'temporarily_unavailable',
        '... temporarily_unavailable (R10)');
    cmp_ok($took_tr, '<', 1, '... at once, not after the 5-s mirror wait');
    is(etcd_count($PREFIX), $keys, '... and nothing was written to etcd');
    is(introspect($ea, $app, $tok2)->{json}{active}, JSON::PP::true,
        'introspection on A, whose mirror is fresh, still answers');
    my $seen = length OAuth2Test::_slurp($eb->sync_log);
    $eb->run_sync($burls, prefix => $PREFIX);
    like(substr(OAuth2Test::_slurp($eb->sync_log), $seen),
        qr/resuming at revision \d+/,
        'the restarted sync daemon resumes from the mirror\'s revision');
    ($ok, $took) = OAuth2Test::poll(2, sub { protected($eb, $tok2) == 200 });
    ok($ok, sprintf('edge B validates the token A issued meanwhile (%.2f s)',
        $took));
    $i = introspect($eb, $app, $tok2);
    ok($i->{status} == 200 && $i->{json}{active},
        '... and introspection on B answers again: active') or diag($i->{raw});
    $i = introspect($eb, $app, $gone);
    ok($i->{status} == 200 && !$i->{json}{active},
        '... and the token revoked meanwhile: "active": false')
        or diag($i->{raw});
    $sync_pid_b = $eb->sync_pid;
});

# `oauth2-admin --etcd ... serve` reads its callers from the mirror: past
# max_staleness (the daemon's is 5 s) it answers 503, so that a staff token
# revoked on another machine cannot act there meanwhile (R77)
section('the admin daemon on B fails closed on a stale mirror', sub {
    my ($code, $out, $err) = $ea->admin_etcd('user', 'add', '--username',
        'root', '--email', 'root@example.com', '--staff', '--password', $PW,
        '--pbkdf2-iterations', PBKDF2);
    is($code, 0, 'a staff user through etcd') or diag("$out$err");
    my $first = $ea->new_app_etcd(name => 'edge-first', grant => 'password',
        first_party => 1);
    my $staff = $ea->admin_etcd_json('token', 'issue', '--client-id',
        $first->{client_id}, '--user', 'root')->{access_token} // 'x';
    $eb->run_daemon($eb->etcd_args, '--pbkdf2-iterations', PBKDF2);
    my $users = sub {
        $eb->api('GET', '/api/users/', port => $eb->daemon_port,
            token => $staff) };
    my ($ok) = OAuth2Test::poll(2, sub { $users->()->{status} == 200 });
    ok($ok, 'the daemon on B answers a staff token issued through A');
    is($eb->stop_sync, 0, "B's sync daemon stopped");
    is($ea->revoke($first->{client_id}, $first->{client_secret},
        $staff)->{status}, 200, 'the staff token revoked on A');
    my $r;
    ($ok, my $took) = OAuth2Test::poll(8, sub { ($r = $users->())->{status} == 503 });
    ok($ok, sprintf('the daemon on B answers 503 once its mirror is staler '
        . 'than 5 s (after %.2f s)', $took)) or diag($r->{raw});
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
        '... with Retry-After');
    like(OAuth2Test::_slurp($eb->daemon_log), qr/mirror is \d+ ms old/,
        '... and its log says why');
    $eb->run_sync($burls, prefix => $PREFIX);
    ($ok, $took) = OAuth2Test::poll(3, sub { ($r = $users->())->{status} == 401 });
    ok($ok, sprintf('with sync back, the revoked staff token is refused '
        . '(401, after %.2f s)', $took)) or diag($r->{raw});
    $sync_pid_b = $eb->sync_pid;
    $eb->stop_daemon;
});

# etcd compacted past a stopped sync daemon's revision (etcd's
# --auto-compaction, or etcdctl compact): restarted, it cannot watch from
# there; it takes a new snapshot and switches the mirror to it in one
# transaction, so that what was deleted meanwhile (a revoked token) is gone
# from the mirror too, never left valid on that edge (R52, R66)
section('sync restarted after etcd compacted past its mirror', sub {
    my $revoked = $ea->access_token($app);
    my ($ok) = OAuth2Test::poll(1, sub { protected($eb, $revoked) == 200 });
    ok($ok, 'compaction: a token valid on both edges');
    is($eb->stop_sync, 0, "compaction: B's sync daemon stopped");
    is($ea->revoke($id, $secret, $revoked)->{status}, 200,
        'compaction: that token revoked on A meanwhile');
    my $issued = $ea->access_token($app);
    my $JSON = ['Content-Type' => 'application/json'];
    my $r = $ea->request('POST', '/v3/kv/range', port => $ea->etcd_port,
        headers => $JSON, body => '{"key":"AA==","count_only":true}');
    my $head = eval { JSON::PP->new->decode($r->{body})->{header}{revision} }
        // 0;
    $r = $ea->request('POST', '/v3/kv/compaction', port => $ea->etcd_port,
        headers => $JSON, body => JSON::PP->new->encode(
            { revision => "$head", physical => JSON::PP::true }));
    is($r->{status}, 200, "compaction: etcd compacted at revision $head")
        or diag($r->{raw});
    my $seen = length OAuth2Test::_slurp($eb->sync_log);
    $eb->run_sync($burls, prefix => $PREFIX);
    my $took;
    ($ok, $took) = OAuth2Test::poll(3, sub { protected($eb, $issued) == 200 });
    ok($ok, sprintf('compaction: B validates the token A issued meanwhile '
        . '(%.2f s)', $took));
    is(protected($eb, $revoked), 401, 'compaction: B refuses the token '
        . 'revoked meanwhile: the new snapshot replaced the mirror (R52, '
        . 'R66)');
    like(substr(OAuth2Test::_slurp($eb->sync_log), $seen),
        qr/compacted past revision \d+: taking a new snapshot.*snapshot of etcd at revision \d+/s,
        'compaction: the sync daemon says it took a new snapshot');
    $sync_pid_b = $eb->sync_pid;
});

# etcd's revision now (the v3 gateway's header)
sub etcd_head {
    my $r = $ea->request('POST', '/v3/kv/range', port => $ea->etcd_port,
        headers => ['Content-Type' => 'application/json'],
        body => '{"key":"AA==","count_only":true}');
    return eval { JSON::PP->new->decode($r->{body})->{header}{revision} }
        // 0;
}

# sync restarted at its mirror's revision R watches from R + 1: the change
# etcd made right after the last one the mirror applied is not skipped.
# With no heartbeat in between (B's sync stopped, A's held with SIGSTOP),
# that change is the deletion of an application's record, made in etcd
# directly; once B's sync resumed, B refuses the application (R70)
section('sync resumed applies the first change after its revision', sub {
    my $doomed = $ea->new_app_etcd(name => 'edge-resume');
    my @cred = @{$doomed}{qw(client_id client_secret)};
    my ($ok) = OAuth2Test::poll(1, sub { $eb->token(@cred)->{status} == 200 });
    ok($ok, 'resume: a new application issues tokens on edge B');
    my $apid = $ea->sync_pid;
    my ($head, $rev) = (0, -1);
    for my $try (1 .. 5) {
        kill 'STOP', $apid;
        $eb->stop_sync;
        sleep 0.1;    # a heartbeat A sent before it was held lands
        ($head, $rev) = (etcd_head(), (mirror_metrics($eb))[0] // -1);
        last if $head == $rev;    # B's own last heartbeat came back
        kill 'CONT', $apid;
        $eb->run_sync($burls, prefix => $PREFIX);
        sleep 0.3;
    }
    is($rev, $head, "resume: B's mirror stopped at etcd's revision $head");
    my $r = $ea->request('POST', '/v3/kv/deleterange',
        port => $ea->etcd_port,
        headers => ['Content-Type' => 'application/json'],
        body => JSON::PP->new->encode({ key => encode_base64(
            "${PREFIX}clients/\x07default$cred[0]", '') }));
    my $del = eval { JSON::PP->new->decode($r->{body}) } // {};
    is(($del->{deleted} // 0) . ' ' . ($del->{header}{revision} // 0),
        '1 ' . ($head + 1), 'resume: the application\'s record deleted in '
        . 'etcd directly, at the next revision') or diag($r->{raw});
    kill 'CONT', $apid;
    $eb->run_sync($burls, prefix => $PREFIX);
    my $took;
    ($ok, $took) = OAuth2Test::poll(2, sub { $eb->token(@cred)->{status} == 401 });
    ok($ok, sprintf('resume: B refuses the application deleted right after '
        . 'its mirror\'s revision (%.2f s) (R70)', $took));
    $sync_pid_b = $eb->sync_pid;
});

section('sync refuses a store that is not a mirror (R78)', sub {
    my $own = OAuth2Test->new;
    $own->new_app(name => 'single-node');
    my $dump = OAuth2Test::dump_store($own->store);
    my ($code, $out, $err, $took) = $own->run_cmd_timeout(10,
        $OAuth2Test::ADMIN, 'sync', '--store', $own->store, '--etcd', $url,
        '--prefix', $PREFIX);
    ok($code ne 'timeout' && $code ne '0',
        "oauth2-admin sync on a single-node store: exit $code, not a mirror");
    like("$out$err", qr/\S/, 'it says why') or diag("$out$err");
    is(OAuth2Test::dump_store($own->store), $dump,
        'the single-node store is left as it was');
    # a store whose only records of its own are realms (realm add writes
    # them to the meta database, beside the store's local meta) is no
    # empty store: the snapshot would drop them (R78)
    my $realm = OAuth2Test->new;
    ($code, $out, $err) = $realm->admin(qw(realm add shop));
    is($code, 0, 'a single-node store with a realm and nothing else')
        or diag("$out$err");
    $dump = OAuth2Test::dump_store($realm->store);
    ($code, $out, $err) = $realm->run_cmd_timeout(10, $OAuth2Test::ADMIN,
        'sync', '--store', $realm->store, '--etcd', $url, '--prefix',
        $PREFIX);
    is($code, 1, "oauth2-admin sync on it: exit $code, not a mirror (R78)");
    like("$out$err", qr/holds records of its own/, '... it says why')
        or diag("$out$err");
    is(OAuth2Test::dump_store($realm->store), $dump,
        '... and the realm is left as it was');
    # a mirror of another prefix (another cluster's records) is no store
    # for this one's either: its records would mix with them
    my $other = OAuth2Test->new;
    $other->run_sync($url, prefix => '/t-other/');
    is($other->stop_sync, 0, 'a mirror of the prefix /t-other/');
    $dump = OAuth2Test::dump_store($other->store);
    ($code, $out, $err) = $other->run_cmd_timeout(10, $OAuth2Test::ADMIN,
        'sync', '--store', $other->store, '--etcd', $url, '--prefix',
        $PREFIX);
    ok($code ne 'timeout' && $code ne '0',
        "oauth2-admin sync --prefix $PREFIX on it: exit $code");
    like("$out$err", qr{mirrors "etcd /t-other/", not "etcd \Q$PREFIX\E"},
        '... naming the prefix it mirrors') or diag("$out$err");
    is(OAuth2Test::dump_store($other->store), $dump,
        '... and the mirror is left as it was');
});

# A key under the prefix that no store can hold (an empty name after the
# database, or one over LMDB's 511 bytes): no writer of this product makes
# one, but anyone who writes to etcd can.  The mirror leaves it out and
# goes on, in the watch and in a snapshot; it stopped sync at that
# revision for ever, every edge then failing closed (R77) until etcd
# was compacted past it.  A prefix of its own
section('a key no store can hold does not stop the mirror', sub {
    my $ODD = '/t-odd/';
    my $JSON = ['Content-Type' => 'application/json'];
    my $etcd = sub {
        my ($op, $key, $value) = @_;
        my $r = $ea->request('POST', "/v3/kv/$op", port => $ea->etcd_port,
            headers => $JSON, body => JSON::PP->new->encode({
                key => encode_base64($key, ''),
                (defined $value ? (value => encode_base64($value, '')) : ()) }));
        return $r->{status};
    };
    my $m = OAuth2Test->new;
    $m->run_sync($url, prefix => $ODD);
    my $before = $m->new_app_etcd(name => 'odd-before');
    my ($ok) = OAuth2Test::poll(3, sub { app_ids($m) =~ /\Q$before->{client_id}\E/ });
    ok($ok, 'odd keys: the mirror follows its prefix');
    my $long = "${ODD}clients/" . ('a' x 600);
    is($etcd->('put', "${ODD}tokens/", 'x'), 200,
        'odd keys: a record of no name put in etcd');
    is($etcd->('put', $long, 'x'), 200,
        'odd keys: a record of a 600-byte name put in etcd');
    my $after = $m->new_app_etcd(name => 'odd-after');
    ($ok) = OAuth2Test::poll(3, sub { app_ids($m) =~ /\Q$after->{client_id}\E/ });
    ok($ok, 'odd keys: the mirror applies the changes after them');
    ok(kill(0, $m->sync_pid), 'odd keys: its sync daemon goes on');
    my @said = OAuth2Test::_slurp($m->sync_log) =~ /(skipped the key .*)/g;
    is(scalar @said, 2, 'odd keys: the sync daemon says it skipped each')
        or diag(OAuth2Test::_slurp($m->sync_log));
    like($said[1] // '', qr/\(\d{3} bytes\): a store holds keys of 1 to 511/,
        '... with their size and why');
    # a snapshot with them in it: a new mirror starts
    my $fresh = OAuth2Test->new;
    $fresh->run_sync($url, prefix => $ODD);
    ($ok) = OAuth2Test::poll(3, sub { app_ids($fresh) =~ /\Q$after->{client_id}\E/ });
    ok($ok, 'odd keys: a new mirror\'s snapshot takes the rest');
    like(OAuth2Test::_slurp($fresh->sync_log), qr/skipped the key.*\n.*skipped the key.*snapshot of etcd at revision \d+/s,
        '... skipping both');
    # their deletion, an event of a key no store holds either
    is($etcd->('deleterange', "${ODD}tokens/"), 200,
        'odd keys: the record of no name deleted in etcd');
    is($etcd->('deleterange', $long), 200, '... and the long one');
    my $last = $m->new_app_etcd(name => 'odd-last');
    ($ok) = OAuth2Test::poll(3, sub { app_ids($m) =~ /\Q$last->{client_id}\E/
        && app_ids($fresh) =~ /\Q$last->{client_id}\E/ });
    ok($ok, 'odd keys: both mirrors apply the changes after the deletions');
    is($m->stop_sync, 0, 'odd keys: the first sync daemon stops cleanly');
    is($fresh->stop_sync, 0, '... and the second');
    $_->sync_log_ok for $m, $fresh;
});

# a snapshot of more than one page of etcd's range (5000 keys) reads every
# page: a mirror started (or restarted after a compaction) on a cluster
# that big holds all of its records, not the first 5000 keys.  A prefix of
# its own, so that the edges' mirrors do not carry the tokens
section('a snapshot of more than 5000 keys', sub {
    my $BIG = '/t-big/';
    my $m = OAuth2Test->new;
    $m->run_sync($url, prefix => $BIG);
    my $big = $m->new_app_etcd(name => 'edge-big');
    my $file = $m->dir . '/big.tokens';
    my ($code, $out, $err) = $m->admin_etcd('token', 'issue', '--client-id',
        $big->{client_id} // 'none', '--count', 3000, '--out', $file);
    is($code, 0, 'snapshot: 3000 tokens issued through etcd') or diag($err);
    my $keys = etcd_count($BIG);
    cmp_ok($keys, '>', 6000, "snapshot: etcd holds $keys keys under $BIG");
    my $fresh = OAuth2Test->new;    # an empty store: a snapshot at start
    $fresh->run_sync($url, prefix => $BIG);
    my ($records) = OAuth2Test::_slurp($fresh->sync_log)
        =~ /snapshot of etcd at revision \d+: (\d+) records/;
    cmp_ok($records // 0, '>', 6000, 'snapshot: the new mirror took '
        . ($records // 0) . ' records, every page');
    # the two mirrors hold the same records
    my ($same) = OAuth2Test::poll(3, sub { mirror_records($m) eq mirror_records($fresh) });
    ok($same, 'snapshot: the new mirror holds the same records as the one '
        . 'that followed the writes');
    is($fresh->stop_sync, 0, 'snapshot: its sync daemon stops');
    is($m->stop_sync, 0, 'snapshot: and the first one');
});

############################### etcd stops: 503, fails closed (R53, R77)

sub recovered {
    my ($what, $live) = @_;
    my ($ok, $took) = OAuth2Test::poll(10, sub {
        protected($ea, $live) == 200 && protected($eb, $live) == 200 });
    ok($ok, sprintf('%s: both edges validate again (%.2f s), nginx and '
        . 'sync not restarted', $what, $took));
    # then steadily: 10 rounds in a row at both edges, all 200 (a 503 in
    # between, the mirror stale again, is counted and starts over)
    my ($run, $flaps, $t0) = (0, 0, time);
    while ($run < 10 && time - $t0 < 10) {
        my @st = (protected($ea, $live), protected($eb, $live));
        if ("@st" eq '200 200') { $run++ } else { $run = 0; $flaps++ }
        sleep 0.05;
    }
    is($run, 10, sprintf('%s: ... and steadily (%.2f s more, %d rounds '
        . 'with a 503 after the first 200s)', $what, time - $t0, $flaps));
    ($ok, $took) = OAuth2Test::poll(10, sub {
        $ea->token($id, $secret)->{status} == 200
            && $eb->token($id, $secret)->{status} == 200 });
    ok($ok, sprintf('%s: both token endpoints issue again (%.2f s)', $what,
        $took));
    $t0 = time;
    my $r = $eb->token($id, $secret);
    my $fresh = $r->{json}{access_token} // 'x';
    $took = time - $t0;
    my $v = $eb->bearer_get('/protected/', $fresh);
    is($v->{status}, 200, sprintf('%s: a token issued on B validates on B '
        . 'on the next request (read-your-writes)', $what))
        or diag(sprintf("token response after %.3f s: %s\nvalidation: %s",
            $took, $r->{raw}, $v->{raw}));
    ($ok) = OAuth2Test::poll(1, sub { protected($ea, $fresh) == 200 });
    ok($ok, "$what: ... and on A within 1 s");
}

section('etcd paused (SIGSTOP), then resumed', sub {
    my $live = $ea->access_token($app);
    my ($ok) = OAuth2Test::poll(1, sub { protected($eb, $live) == 200 });
    ok($ok, 'a live token, valid on both edges before the outage');
    my $doomed = $ea->access_token($app);

    my $mark = -s $ea->sync_log;
    my $u0 = unavailable_metrics($ea);
    $ea->pause_etcd;
    my $t0 = time;
    my $dir = $ea->dir;
    my $tp = OAuth2Test::in_background("$dir/bg.token", sub {
        $ea->token($id, $secret, headers => [-timeout => 20]) });
    my $rp = OAuth2Test::in_background("$dir/bg.revoke", sub {
        $eb->post_form('/o/revoke_token/', OAuth2Test::form(token => $doomed),
            Authorization => $eb->basic($id, $secret), -timeout => 20) });

    # bearer validation: 200 while the mirror is fresh enough, then 503
    my %first;
    my $r;
    while (time - $t0 < $STALE + 5 && keys %first < 2) {
        for my $t ($ea, $eb) {
            my $n = $name{$t->port};
            next if $first{$n};
            $r = $t->bearer_get('/protected/', $live);
            if ($r->{status} == 503) {
                $first{$n} = { took => time - $t0, r => $r };
            } elsif ($r->{status} != 200) {
                fail("edge $n answered $r->{status} while the mirror aged");
                diag($r->{raw});
                $first{$n} = { took => 99, r => $r };
            }
        }
        sleep 0.05;
    }
    for my $n (qw(A B)) {
        my $f = $first{$n} // { took => 99, r => { headers => {} } };
        cmp_ok($f->{took}, '<', $STALE + 3, sprintf('edge %s: auth_oauth2 '
            . 'answers 503 once the mirror is staler than max_staleness '
            . '(after %.2f s) (R77)', $n, $f->{took}));
        like(OAuth2Test::header($f->{r}, 'Retry-After') // '', qr/^\d+$/,
            "edge $n: the 503 carries Retry-After");
    }
    is(join(',', map { protected($_, $live) } $ea, $eb, $ea, $eb),
        '503,503,503,503',
        'while stale, a valid token is never let through (fails closed)');
    my (undef, $age) = mirror_metrics($ea);
    ok(defined $age && $age > $STALE, 'while stale, '
        . 'oauth2_mirror_staleness_seconds says so (' . ($age // '-') . ')');

    my $tr = OAuth2Test::background_result($tp, "$dir/bg.token");
    is($tr->{status}, 503, sprintf('token endpoint without etcd: 503 '
        . '(after %.2f s) (R77)', $tr->{took})) or diag($tr->{raw});
    is($tr->{error}, 'temporarily_unavailable',
        'token endpoint without etcd: temporarily_unavailable (R10)');
    cmp_ok($tr->{took}, '<', 10, 'token endpoint without etcd: promptly');
    my $rr = OAuth2Test::background_result($rp, "$dir/bg.revoke");
    is($rr->{status}, 503, sprintf('revocation without etcd: 503, never '
        . '200 (after %.2f s) (R53)', $rr->{took})) or diag($rr->{raw});
    # edge A's 503s: auth_oauth2's on a stale mirror, the token request's
    # write that etcd never answered
    my $u1 = unavailable_metrics($ea);
    my %d = map { ($_ => ($u1->{$_} // 0) - ($u0->{$_} // 0)) }
        qw(store mirror cluster);
    cmp_ok($d{mirror}, '>=', 1, 'edge A: its 503s of a stale mirror in '
        . "oauth2_unavailable_total{reason=\"mirror\"} ($d{mirror})");
    cmp_ok($d{cluster}, '>=', 1, 'edge A: the token write etcd did not take '
        . "in oauth2_unavailable_total{reason=\"cluster\"} ($d{cluster})");
    is($d{store}, 0, 'edge A: none counted as the store\'s');

    # the paused member holds its connections open and says nothing: sync
    # ends its watch after 3 s of silence and tries again
    ($ok) = OAuth2Test::poll(7 - (time - $t0), sub {
        substr(OAuth2Test::_slurp($ea->sync_log), $mark)
            =~ /nothing heard for 3000 ms/ });
    ok($ok, sprintf('sync gives up a silent watch after 3 s of silence '
        . '(said %.1f s after the pause)', time - $t0));

    $ea->resume_etcd;
    recovered('after SIGCONT', $live);
});

section('etcd killed, then restarted on the same data', sub {
    my $live = $ea->access_token($app);
    my ($ok) = OAuth2Test::poll(1, sub { protected($eb, $live) == 200 });
    ok($ok, 'a live token, valid on both edges before the kill');
    is($ea->stop_etcd(signal => 'KILL'), 128 + 9, 'etcd killed (SIGKILL)');
    my $t0 = time;
    my $r = $ea->token($id, $secret);
    $ea->oauth_error_ok($r, 503, 'temporarily_unavailable',
        'token endpoint with etcd refusing connections (R77)');
    cmp_ok(time - $t0, '<', 5, sprintf('... answered in %.2f s', time - $t0));
    ($ok) = OAuth2Test::poll($STALE + 3, sub { protected($eb, $live) == 503 });
    ok($ok, 'edge B fails closed while etcd is down');
    $ea->run_etcd;
    recovered('after a restart', $live);
});

is($ea->sync_pid, $sync_pid_a, 'edge A: the same sync daemon throughout '
    . 'the outages');
is($eb->sync_pid, $sync_pid_b, 'edge B: the same sync daemon throughout '
    . 'the outages');
ok(kill(0, $sync_pid_a) && kill(0, $sync_pid_b),
    'both sync daemons are still running');
is($ea->master_pid, $master{A}, 'edge A: the same nginx master throughout');
is($eb->master_pid, $master{B}, 'edge B: the same nginx master throughout');

############################################ configuration errors (issue 13)

section('bad oauth2_cluster values fail nginx -t', sub {
    my $ec = OAuth2Test->new;    # never runs: nginx -t only
    my $store = $ea->store;
    my $conf = sub {
        my ($directive) = @_;
        return "oauth2_store $store;\n$directive\n"
            . "server { listen 127.0.0.1:%%PORT%%;\n"
            . "  location = /o/token/ { oauth2_token; }\n"
            . "  location /p/ { auth_oauth2 api; }\n}\n";
    };
    my $file = $ec->dir . '/check.conf';
    $ec->write_config($conf->("oauth2_cluster etcd=$url max_staleness=3s;"),
        file => $file);
    my ($code, $msg) = $ec->nginx_t(file => $file);
    is($code, 0, 'a good oauth2_cluster line passes nginx -t') or diag($msg);
    for my $c (
        ['oauth2_cluster prefix=/oauth2/;', qr/etcd=/, 'no etcd='],
        ['oauth2_cluster etcd=;', qr/etcd/, 'an empty etcd='],
        ["oauth2_cluster etcd=$url max_staleness=soon;",
            qr/max_staleness/, 'a bad max_staleness'],
        ['oauth2_cluster etcd=ftp://127.0.0.1:2379;',
            qr{ftp://127\.0\.0\.1:2379.*http|http.*ftp://},
            'an etcd URL that is not http(s)://'],
        ["oauth2_cluster etcd=$url,127.0.0.1:2379;",
            qr{"127\.0\.0\.1:2379".*http|http.*"127\.0\.0\.1:2379"},
            'a second URL without a scheme'],
        ["oauth2_cluster etcd=$url bogus=1;", qr/bogus/,
            'an unknown parameter'],
        ["oauth2_cluster etcd=$url;\noauth2_cluster etcd=$url;",
            qr/duplicate|twice|oauth2_cluster/, 'the directive twice'],
    ) {
        my ($directive, $re, $what) = @$c;
        $ec->write_config($conf->($directive), file => $file);
        my ($code, $msg) = $ec->nginx_t(file => $file);
        isnt($code, 0, "$what: nginx -t fails");
        like($msg, $re, "$what: the message says why") or diag($msg);
        like($msg, qr/check\.conf:\d+/, "$what: ... and where");
    }
});

################################################## sync that cannot start (R78)

my $nr = OAuth2Test::background_result($nosync, $ea->dir . '/nosync.result');
$nr = { status => $nr->[0], raw => $nr->[1], took => $nr->[2] }
    if ref $nr eq 'ARRAY';
ok($nr->{status} ne 'timeout' && $nr->{status} ne '0',
    sprintf('oauth2-admin sync with etcd unreachable exits non-zero '
    . '(%s after %.1f s) (R78)', $nr->{status}, $nr->{took} // 0));
like($nr->{raw} // '', qr/etcd|127\.0\.0\.1:$deadport/i,
    'its message names etcd or the URL it could not reach')
    or diag($nr->{raw});

$_->sync_log_ok for $ea, $eb;
note(sprintf('t/cluster.t took %.1f s', time - $T0));
$ea->done_testing;
