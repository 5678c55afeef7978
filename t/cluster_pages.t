# Cluster mode: what a browser or a client brings to an edge whose mirror
# has not applied it yet (issue 13; docs/security.md R53, R66, R83).  A
# token issued on edge A a moment ago, shown at edge B's userinfo; a
# session signed in on A, whose 303 lands on B (the authorization, device,
# granted-applications and sign-out pages); a user code a device got on
# A, typed on B's device page.  B's sync daemon is held (SIGSTOP, well
# within max_staleness) so that its mirror is surely behind: B answers
# once its mirror has caught up with etcd (the sync resumed), or 503 when
# it cannot within the mirror wait, never "unknown" from the mirror
# alone: a user told to sign in again, a client told its token is
# invalid, or a user's good code counted as a wrong guess (R83) until
# ten of them lock the page.  One etcd member, two edges.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $T0 = time;
my $CB = 'https://client.example/cb';
my $PW = 'Tr0ub4dor-pages-5';
my $GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

my $ea = OAuth2Test->new;    # edge A; it also hosts the etcd member
my $eb = OAuth2Test->new;    # edge B
my $url = $ea->run_etcd;
$ea->run_sync($url);
$eb->run_sync($url);

for my $t ($ea, $eb) {
    $t->write_config(OAuth2Authorize::http_conf($t,
        extra_http => $t->cluster_directive,
        extra_server => "location = /o/userinfo/ "
            . "{ oauth2_userinfo; oauth2_rate_limit 1000/d; }\n"
            . "location = /o/device_authorization/ "
            . "{ oauth2_device_authorization; }\n"
            . "location = /o/device/ { oauth2_device; }\n"
            . "location = /o/logout/ { oauth2_end_session; }\n"
            . "location = /o/authorized_tokens/ "
            . "{ oauth2_authorized_grants; }\n"))->run;
}

my $pw_app = $ea->new_app_etcd(name => 'pages-password', grant => 'password',
    scope => 'openid read');
my $web = $ea->new_app_etcd(name => 'pages-web', grant => 'authorization_code',
    redirect_uris => [$CB], scope => 'openid read');
my $tv = $ea->new_app_etcd(name => 'pages-tv', public => 1, grant => [$GRANT],
    scope => 'read');
my ($code, $out, $err) = $ea->admin_etcd('user', 'add', '--username',
    'alice', '--email', 'alice@example.com', '--password', $PW,
    '--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
is($code, 0, 'oauth2-admin --etcd user add alice') or diag("$out$err");

# holds B's sync daemon; resume_b lets it go on
sub hold_b { kill 'STOP', $eb->sync_pid }
sub resume_b { kill 'CONT', $eb->sync_pid }

# $request->() on B with B's sync held: 0.3 s later the sync resumes.
# The answer, and whether none had come while the sync was held
sub on_b_while_held { $eb->while_sync_held(@_) }

sub userinfo {
    my ($t, $tok) = @_;
    return $t->get('/o/userinfo/', Authorization => "Bearer $tok");
}

sub password_token {
    my $r = $ea->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => 'alice', password => $PW,
        scope => 'openid read'),
        Authorization => $ea->basic($pw_app->{client_id},
            $pw_app->{client_secret}));
    die "password grant on A: $r->{status} $r->{body}"
        unless $r->{status} == 200;
    return $r->{json}{access_token};
}

my $query = OAuth2Authorize::query(response_type => 'code',
    client_id => $web->{client_id}, redirect_uri => $CB, scope => 'read',
    state => 'st');
my $page_a = OAuth2Authorize->new($ea);

################################################ userinfo (R53, R66)

# a token issued on A a moment ago: B's userinfo catches up with etcd
# (as introspection does) instead of answering 401 invalid_token
{
    hold_b();
    my $tok = password_token();
    my ($r, $waited) = on_b_while_held(sub { userinfo($eb, $tok) });
    is($r->{status}, 200, sprintf('userinfo on B of a token issued on A while '
        . "B's sync was held: 200 (after %.2f s)", $r->{took}))
        or diag($r->{raw});
    like($r->{raw}, qr/"sub":\s*"\d+"/, '... with the user\'s claims');
    ok($waited, "... only once B's mirror had caught up with etcd");
    my ($left) = $r->{raw} =~ /^X-RateLimit-Remaining: (\d+)\r?$/mi;
    ok(defined $left, '... with its X-RateLimit-* headers');
    my $n = userinfo($eb, 'never-issued-' . ('u' x 30));
    is($n->{status}, 401, 'a token that exists nowhere: 401 on B, as on one '
        . 'machine');
    like(OAuth2Test::header($n, 'WWW-Authenticate') // '',
        qr/error="invalid_token"/, '... invalid_token');
    is(OAuth2Test::header($n, 'X-RateLimit-Remaining'), ($left // 0) - 1,
        '... each request counted once against the rate limit, not again '
        . 'on its pass after the mirror caught up');
}

################################################ the sign-in session

# a sign-in on A, and the browser's next request on B (a load balancer):
# B finds the session once its mirror caught up, not the sign-in page
{
    hold_b();
    my $session = $page_a->login($query, 'alice', $PW);
    ok($session, 'signed in on A');
    my ($r, $waited) = on_b_while_held(
        sub { $eb->get("/o/authorize/?$query", Cookie => $session) });
    is($r->{status}, 200, sprintf('the authorization page on B with the '
        . "session signed in on A while B's sync was held: 200 (after %.2f s)",
        $r->{took})) or diag($r->{raw});
    like($r->{raw}, qr/value="allow"/, '... the consent page, signed in');
    unlike($r->{raw}, qr/name="password"/, '... not the sign-in page again');
    ok($waited, "... only once B's mirror had caught up with etcd");
    my $g = $eb->get("/o/authorize/?$query",
        Cookie => 'oauth2_session=' . ('n' x 43));
    like($g->{body}, qr/name="password"/, 'a session cookie that names no '
        . 'session anywhere: the sign-in page on B');

    # the granted-applications page likewise
    hold_b();
    my $session3 = $page_a->login($query, 'alice', $PW);
    ($r, $waited) = on_b_while_held(
        sub { $eb->get('/o/authorized_tokens/', Cookie => $session3) });
    like($r->{raw}, qr{<h1>Authorized applications</h1>}, 'the '
        . "granted-applications page on B with a session signed in on A "
        . "while B's sync was held: the list, signed in") or diag($r->{raw});
    unlike($r->{raw}, qr/name="password"/, '... not the sign-in page');
    ok($waited, "... only once B's mirror had caught up with etcd");

    # signing out on B of that session: asked, and the session ended,
    # rather than "signed out" with its record left on the other edges
    hold_b();
    my $session2 = $page_a->login($query, 'alice', $PW);
    ($r, $waited) = on_b_while_held(
        sub { $eb->get('/o/logout/', Cookie => $session2) });
    like($r->{raw}, qr/Sign out\?/, 'the sign-out page on B with a session '
        . "signed in on A while B's sync was held: asks the user")
        or diag($r->{raw});
    unlike($r->{raw}, qr/oauth2_session=;/, '... and keeps the cookie');
    ok($waited, "... only once B's mirror had caught up with etcd");
}

################################################ the device page (R83)

my $page_b = OAuth2Authorize->new($eb, path => '/o/device/');
my $on_b = $page_b->login('', 'alice', $PW);
ok($on_b, 'signed in at the device page on B');
my $csrf = OAuth2Authorize::csrf_field($eb->get('/o/device/', Cookie => $on_b));
ok($csrf, '... its form\'s CSRF value');

sub device_code_on_a {
    my $r = $ea->post_form('/o/device_authorization/', OAuth2Test::form(
        client_id => $tv->{client_id}, scope => 'read'));
    die "device authorization on A: $r->{status} $r->{body}"
        unless $r->{status} == 200;
    return $r->{json};
}

sub device_post {
    my (%f) = @_;
    return $eb->post_form('/o/device/', OAuth2Test::form(csrf_token => $csrf,
        %f), Cookie => $on_b);
}

{
    # the code a device got on A a moment ago, looked up on B: its
    # approval page, not "not valid" counted against the user
    hold_b();
    my $d = device_code_on_a();
    my ($r, $waited) = on_b_while_held(sub { device_post(action => 'lookup',
        user_code => $d->{user_code}) });
    is($r->{status}, 200, sprintf('a user code made on A while B\'s sync was '
        . 'held, looked up on B: 200 (after %.2f s)', $r->{took}))
        or diag($r->{raw});
    like($r->{raw}, qr/value="approve"/, '... its approval page');
    ok($waited, "... only once B's mirror had caught up with etcd");

    # approved on B straight away (the page's form came from A, say)
    hold_b();
    $d = device_code_on_a();
    ($r, $waited) = on_b_while_held(sub { device_post(action => 'approve',
        user_code => $d->{user_code}) });
    is($r->{status}, 200, 'a user code made on A while B\'s sync was held, '
        . 'approved on B: 200') or diag($r->{raw});
    like($r->{raw}, qr/Device connected/, '... the device is connected');
    ok($waited, "... only once B's mirror had caught up with etcd");
    my $tok = $ea->post_form('/o/token/', OAuth2Test::form(grant_type => $GRANT,
        device_code => $d->{device_code}, client_id => $tv->{client_id}));
    is($tok->{status}, 200, '... and the device gets its token on A')
        or diag($tok->{raw});

    # a code that names nothing anywhere is still a wrong code
    $r = device_post(action => 'lookup', user_code => 'BCDF-GHJK');
    is($r->{status}, 400, 'a user code that exists nowhere: 400 on B');
    like($r->{body}, qr/not valid/, '... "not valid"');
}

################################################ within the bound

# B's sync held for good: B cannot catch up, and says so (503 once the
# mirror wait is over), never "invalid"
{
    hold_b();
    my $tok = password_token();
    my $t0 = time;
    my $r = userinfo($eb, $tok);
    my $took = time - $t0;
    resume_b();
    is($r->{status}, 503, sprintf('userinfo on B with its sync held for good: '
        . '503 (after %.1f s)', $took)) or diag($r->{raw});
    ok(OAuth2Test::header($r, 'Retry-After'), '... with Retry-After');
    my $ok;
    for (1 .. 100) {
        last if $ok = userinfo($eb, $tok)->{status} == 200;
        sleep 0.1;
    }
    ok($ok, '... and 200 once the sync resumed');
}

note(sprintf('t/cluster_pages.t took %.1f s', time - $T0));
$ea->done_testing;
