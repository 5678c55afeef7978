# refresh_token grant: binding, scope, rotation, grace, reuse detection,
# races and crashes (issue 4 item 3; docs/security.md R35-R40, catalogue 2.1
# "refresh_token" and "scope")
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my @pw = (grant => ['password', 'refresh_token']);
my $app = $t->new_app(name => 'mobile', @pw, scope => 'read write admin');
my $other = $t->new_app(name => 'other', @pw, scope => 'read write admin');
my $pub = $t->new_app(name => 'spa', @pw, public => 1, scope => 'read write');
my $noref = $t->new_app(name => 'no-refresh', grant => 'password');
my $doomed = $t->new_app(name => 'doomed', @pw);
add_user($t, $_, "Tr0ub4dor-$_-3") for qw(alice bob carol dave erin);

# background expiry off: the grace's check below counts what cleartokens
# removes, and a round of oauth2_expiry_cleanup (every 60 s, from the
# worker's start) landing in its sleep took the kept pair first
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off; oauth2_expiry_cleanup off; '
        . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';',
    extra_server => grant_locations(extra => <<'EOF')));
    location = /o/token-grace1/ {
        oauth2_token;
        oauth2_refresh_token_grace 1s;
    }
    location = /o/token-grace0/ {
        oauth2_token;
        oauth2_refresh_token_grace 0;
    }
    location = /o/token-ttl1/ {
        oauth2_token;
        oauth2_refresh_token_ttl 1s;
    }
EOF
$t->run;

# a fresh pair for a user: the response's JSON (dies unless 200)
sub pair {
    my ($a, $user, %o) = @_;
    my $r = password_token($t, $a, $user, "Tr0ub4dor-$user-3", %o);
    die "password grant failed: $r->{raw}" unless $r->{status} == 200;
    return $r->{json};
}

sub at_status { $t->bearer_get('/protected/', $_[0])->{status} }

sub active { my $r = introspect($t, $_[0], $_[1]); $r->{json}{active} ? 1 : 0 }

########################################################### rotation (R37)

my $p = pair($app, 'alice');
ok($p->{refresh_token}, 'the password grant issues a refresh token');
my $r = refresh($t, $app, $p->{refresh_token});
is($r->{status}, 200, 'refresh: 200');
$t->no_store_ok($r, 'refresh 200');
my $n = $r->{json};
ok($n->{access_token} && $n->{refresh_token},
    'refresh: a new access token and a new refresh token');
isnt($n->{access_token}, $p->{access_token}, 'refresh: the access token is new');
isnt($n->{refresh_token}, $p->{refresh_token},
    'refresh: the refresh token is rotated (R37)');
is($n->{token_type}, 'Bearer', 'refresh: token_type Bearer');
ok($n->{expires_in} > 0, 'refresh: expires_in > 0');
is($n->{scope}, 'read write admin',
    'refresh without scope: the original scope (R36)');
is(at_status($n->{access_token}), 200, 'refreshed access token: 200 at /protected/');
is(active($app, $p->{refresh_token}), 0,
    'the rotated-out refresh token introspects inactive (R37)');
is(active($app, $n->{refresh_token}), 1, 'the new refresh token is active');

# within the grace (default 10 s) the old RT gives the very same pair
my $again = refresh($t, $app, $p->{refresh_token});
is($again->{status}, 200, 'old refresh token within the grace: 200 (R38)');
is($again->{body}, $r->{body},
    'old refresh token within the grace: byte-identical JSON (R38)');
is(at_status($n->{access_token}), 200,
    'a replay within the grace does not revoke the family (R37)');
is(refresh($t, $app, $n->{refresh_token})->{status}, 200,
    'the new refresh token still refreshes after a replay in the grace');

# the public client: rotation with client_id only (R37 mandatory for it)
$p = pair($pub, 'alice');
$r = refresh($t, $pub, $p->{refresh_token}, auth => 'id');
is($r->{status}, 200, 'public client refreshes with client_id only: 200');
isnt($r->{json}{refresh_token}, $p->{refresh_token},
    'public client: the refresh token is rotated (R37)');
$r = refresh($t, $pub, $r->{json}{refresh_token}, auth => 'none');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'public client without client_id (R18)');

# seed 001 style: the client's credentials in the body
$p = pair($app, 'alice');
$r = refresh($t, $app, $p->{refresh_token}, auth => 'post');
is($r->{status}, 200, 'refresh with client_secret_post: 200 (R12)');

############################################ the pair kept for the grace

# R38 against a copy of the store (R43): the pair a rotation minted is
# kept, sealed by the spent refresh token, for the grace only, in a record
# of its own that expiry removes.  Kept in the spent token's record, which
# lives until the grant's end, it made a chain from any spent token to
# the live pair for whoever had a copy of the store.
sub sealed_pairs {
    my ($code, $out) = $t->_run_cmd('/usr/bin/mdb_dump', '-s', 'tokens', $t->store);
    my @lines = grep { /^ [0-9a-f]+$/ } split /\n/, $out;  # key, value, ...
    return scalar grep { substr($lines[$_], 3, 2) eq '0a' } grep { $_ % 2 } 0 .. $#lines;
}
my $kept_before = sealed_pairs();
$p = pair($app, 'alice', path => '/o/token-grace1/');
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace1/');
is($r->{status}, 200, 'grace 1s: a rotation');
is(sealed_pairs() - $kept_before, 1, '... keeps its pair, sealed, in a record of its own');
$p = pair($app, 'alice', path => '/o/token-grace0/');
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace0/');
is($r->{status}, 200, 'grace 0: a rotation');
is(sealed_pairs() - $kept_before, 1, '... keeps no pair at all');
sleep 3;
my $pending = sealed_pairs();
my $cleared = $t->admin_json('cleartokens');
ok($cleared->{deleted} >= 1, 'the grace over, expiry removes the kept pair')
    or diag explain $cleared;
cmp_ok(sealed_pairs(), '<', $pending, '... which the store no longer holds');

################################################ reuse after grace (R37)

$p = pair($app, 'alice', path => '/o/token-grace1/');
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace1/');
is($r->{status}, 200, 'grace 1s: first refresh 200');
$n = $r->{json};
# and one rotated where the grace is the default, 10 s
my $dp = pair($app, 'bob');
my $dr = refresh($t, $app, $dp->{refresh_token});
is($dr->{status}, 200, 'default grace: first refresh 200');
sleep 2.2;
my $dagain = refresh($t, $app, $dp->{refresh_token});
is($dagain->{status}, 200,
    'default grace: the rotated-out token 2 s later is within its 10 s: 200 '
    . '(R38)');
is($dagain->{body}, $dr->{body},
    'default grace: 2 s later, the very same pair (R38)');
is(at_status($dr->{json}{access_token}), 200,
    'default grace: that replay revoked nothing');
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace1/');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'grace 1s: the rotated-out token reused after 2 s (R37)');
is(at_status($n->{access_token}), 401,
    'reuse after the grace: the new access token is revoked (R37)');
is(active($app, $n->{access_token}), 0,
    'reuse after the grace: the new access token introspects inactive');
is(active($app, $n->{refresh_token}), 0,
    'reuse after the grace: the new refresh token introspects inactive');
$r = refresh($t, $app, $n->{refresh_token}, path => '/o/token-grace1/');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'reuse after the grace: the new refresh token no longer refreshes (R37)');
is(at_status($p->{access_token}), 401,
    'reuse after the grace: the original access token is revoked too');
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace1/');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'a third use of the reused token: still invalid_grant');

# two rotations, then the first token after the grace: all of it dies
$p = pair($app, 'alice', path => '/o/token-grace1/');
my $n1 = refresh($t, $app, $p->{refresh_token},
    path => '/o/token-grace1/')->{json};
my $n2 = refresh($t, $app, $n1->{refresh_token},
    path => '/o/token-grace1/')->{json};
ok($n2->{refresh_token}, 'grace 1s: two rotations in a row');
sleep 2.2;
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace1/');
is($r->{status}, 400, 'grandparent reused after the grace: 400 (R37)');
is(at_status($n2->{access_token}), 401,
    'grandparent reused: the newest access token is revoked (R37)');
is(refresh($t, $app, $n2->{refresh_token})->{status}, 400,
    'grandparent reused: the newest refresh token is revoked (R37)');

# a grace of 0 is none: the rotated-out token reused at once (within the
# second of its rotation) revokes the grant (R37)
$p = pair($app, 'carol', path => '/o/token-grace0/');
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace0/');
is($r->{status}, 200, 'grace 0: first refresh 200');
$n = $r->{json};
$r = refresh($t, $app, $p->{refresh_token}, path => '/o/token-grace0/');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'grace 0: the rotated-out token reused at once: invalid_grant (R37)');
is(at_status($n->{access_token}), 401,
    'grace 0: the reuse revoked the new access token (R37)');
is(refresh($t, $app, $n->{refresh_token}, path => '/o/token-grace0/')
    ->{status}, 400, 'grace 0: and the new refresh token (R37)');

############################################################ scope (R36)

$p = pair($app, 'alice', scope => 'read');
is($p->{scope}, 'read', 'password grant with scope=read: scope read');
$r = refresh($t, $app, $p->{refresh_token}, scope => 'read write');
$t->oauth_error_ok($r, 400, 'invalid_scope',
    'refresh asking more than the original grant (R36)');
$r = refresh($t, $app, $p->{refresh_token}, scope => 'admin');
$t->oauth_error_ok($r, 400, 'invalid_scope',
    'refresh asking another scope the app may have (R36)');
$r = refresh($t, $app, $p->{refresh_token}, scope => 'read');
is($r->{status}, 200,
    'a failed broader refresh does not consume the token');
is($r->{json}{scope}, 'read', 'refresh with the same scope: 200, read');

$p = pair($app, 'alice');
$r = refresh($t, $app, $p->{refresh_token}, scope => 'read');
is($r->{status}, 200, 'refresh narrowing the scope: 200 (R36)');
is($r->{json}{scope}, 'read', 'narrowed refresh: scope read');
is($t->bearer_get('/scoped/', $r->{json}{access_token})->{status}, 403,
    'narrowed access token: 403 at a location needing admin');
my $nrt = $r->{json}{refresh_token};
{
        is(introspect($t, $app, $nrt)->{json}{scope}, 'read write admin',
        'the new refresh token keeps the original scope (R36)');
    is(refresh($t, $app, $nrt, scope => 'read write')->{status}, 200,
        'the original scope can be asked again at the next refresh (R36)');
}
$r = refresh($t, $app, pair($app, 'alice')->{refresh_token},
    scope => "read\twrite");
$t->oauth_error_ok($r, 400, 'invalid_request',
    'scope with a TAB: a control character (R7, 2.1)');

################################################# binding (R35, catalogue)

$p = pair($app, 'alice');
$r = refresh($t, $other, $p->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "another client's refresh token (R35)");
$r = refresh($t, $pub, $p->{refresh_token}, auth => 'id');
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "a public client presenting a confidential client's token (R35)");
is(refresh($t, $app, $p->{refresh_token})->{status}, 200,
    'the owner still refreshes after another client tried its token');

$p = pair($app, 'alice');
$r = refresh($t, $app, $p->{refresh_token}, auth => 'id');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'confidential client refreshing with client_id only (R35, R18)');
$r = refresh($t, $app, $p->{refresh_token}, auth => 'none');
$t->oauth_error_ok($r, 401, 'invalid_client',
    'refresh without any client authentication (R35)');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $p->{refresh_token}),
    Authorization => $t->basic($app->{client_id}, 'wrong'));
$t->oauth_error_ok($r, 401, 'invalid_client', 'refresh with a wrong secret');
like(OAuth2Test::header($r, 'WWW-Authenticate') // '', qr/^Basic /,
    'wrong secret via Basic: WWW-Authenticate Basic (R15)');
is(refresh($t, $app, $p->{refresh_token})->{status}, 200,
    'failed client authentications do not consume the refresh token');

# grace replay by another client: refused, and nothing is revoked
$p = pair($app, 'alice');
$n = refresh($t, $app, $p->{refresh_token})->{json};
$r = refresh($t, $other, $p->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    "another client replaying a rotated token in the grace (R35)");
is(at_status($n->{access_token}), 200,
    "another client's replay does not revoke the owner's family (R28)");

# revocation of a refresh token ends its grant (R52)
$p = pair($app, 'alice');
$n = refresh($t, $app, $p->{refresh_token})->{json};
$r = $t->revoke($app->{client_id}, $app->{client_secret}, $n->{refresh_token});
is($r->{status}, 200, 'revoke the current refresh token: 200');
is(at_status($n->{access_token}), 401,
    'revoking the refresh token revokes the access token of its grant (R52)');
is(at_status($p->{access_token}), 401,
    'revoking the refresh token revokes the older access token too (R52)');
$r = refresh($t, $app, $p->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'after revocation the rotated-out token gives no pair, even in the grace');

########################################################## bad tokens (2.1)

$p = pair($app, 'alice');
$r = refresh($t, $app, $p->{access_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'an access token as refresh_token (type confusion, 2.1)');
is(at_status($p->{access_token}), 200,
    'the access token sent as refresh_token still works');
is($t->bearer_get('/protected/', $p->{refresh_token})->{status}, 401,
    'a refresh token as a bearer token: 401 (R62)');
for my $c (['x' x 43, 'unknown refresh token'],
    ['A' x 10240, '10 KiB refresh token'], ['a b', 'a space inside'])
{
    my $r = refresh($t, $app, $c->[0]);
    $t->oauth_error_ok($r, 400, 'invalid_grant', "$c->[1] (2.1)");
}
$r = refresh($t, $app, "a\x{7f}b");
$t->oauth_error_ok($r, 400, 'invalid_request',
    'DEL in the refresh token: a control character (R7)');
$r = refresh($t, $app, '');
$t->oauth_error_ok($r, 400, 'invalid_request', 'empty refresh_token (R5)');
$r = $t->post_form('/o/token/', 'grant_type=refresh_token',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'no refresh_token');
$r = $t->post_form('/o/token/', 'grant_type=refresh_token&refresh_token='
    . "$p->{refresh_token}&refresh_token=$p->{refresh_token}",
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'refresh_token twice (R4)');
$r = $t->post_form('/o/token/', 'grant_type=refresh_token&refresh_token='
    . "$p->{refresh_token}&scope=read&scope=read",
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
$t->oauth_error_ok($r, 400, 'invalid_request', 'scope twice (R4)');
is(refresh($t, $app, $p->{refresh_token})->{status}, 200,
    'malformed requests leave the refresh token usable');

# RT lifetime (R39): oauth2_refresh_token_ttl 1s where it was issued
$p = pair($app, 'alice', path => '/o/token-ttl1/');
sleep 2.1;
$r = refresh($t, $app, $p->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'refresh token past oauth2_refresh_token_ttl 1s (R39)');

############################################### user and app changes (R39)

sub admin_ok {
    my ($name, @args) = @_;
    my ($code, $out, $err) = $t->admin(@args);
    is($code, 0, "$name: exit 0") or diag($err);
}

my $bob = pair($app, 'bob');
admin_ok('disable bob', 'user', 'set', 'bob', '--active', 'false');
$r = refresh($t, $app, $bob->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'refresh token of a disabled user (R39, R70)');
admin_ok('enable bob', 'user', 'set', 'bob', '--active', 'true');
$r = refresh($t, $app, $bob->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'enabling the user again does not revive the refresh token (R39)');

my $carol = pair($app, 'carol');
admin_ok('delete carol', 'user', 'delete', 'carol');
$r = refresh($t, $app, $carol->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'refresh token of a deleted user (R39, R70)');

my $dave = pair($app, 'dave');
admin_ok('new password for dave', 'user', 'set-password', 'dave',
    '--password', 'Copper-vale-84', '--pbkdf2-iterations', PBKDF2);
$r = refresh($t, $app, $dave->{refresh_token});
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'refresh token issued before a password change (R39)');

my $dd = pair($doomed, 'erin');
admin_ok('delete the app', 'app', 'delete', $doomed->{client_id});
$r = refresh($t, $doomed, $dd->{refresh_token});
$t->oauth_error_ok($r, 401, 'invalid_client',
    'refresh token of a deleted application (R39, R70)');

# an application registered for password but not for refresh_token
# (issue 4 item 6: per-application grant types enforced)
$r = password_token($t, $noref, 'alice', 'Tr0ub4dor-alice-3');
is($r->{status}, 200, 'app without refresh_token grant: password grant 200');
{
        ok(!exists $r->{json}{refresh_token},
        'app without the refresh_token grant gets no refresh token');
    # the grant is refused before any token is looked at
    my $rr = refresh($t, $noref, $r->{json}{refresh_token} // 'x' x 43);
    is($rr->{json}{error} // 'none', 'unauthorized_client',
        'app without the refresh_token grant cannot refresh: '
        . 'unauthorized_client');
}

###################################### 16 parallel refreshes of one RT (R38)

# forks $n children that each run $code->($i) at the same moment and
# write what it returns to a file; returns the list of results
sub race {
    my ($n, $code) = @_;
    my $start = time + 0.5;
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            sleep $start - time if $start > time;
            my $out = $code->($i);
            open my $fh, '>', $t->dir . "/race.$i" or POSIX::_exit(1);
            print $fh $out;
            close $fh;
            POSIX::_exit(0);    # never the harness's END blocks
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my @res;
    for my $i (1 .. $n) {
        push @res, OAuth2Test::_slurp($t->dir . "/race.$i");
        unlink $t->dir . "/race.$i";
    }
    return @res;
}

$p = pair($app, 'alice');
my $before = token_count($t);
ok(defined $before, 'mdb_stat counts the token records');
my @res = race(16, sub {
    my $r = refresh($t, $app, $p->{refresh_token});
    return "$r->{status} $r->{body}";
});
is(scalar(grep { /^200 / } @res), 16, '16 parallel refreshes of one token: all 200 (R38)');
my %bodies = map { s/^\d+ //r => 1 } @res;
is(scalar keys %bodies, 1, '16 parallel refreshes: one and the same pair (R38)');
is(token_count($t) - $before, 3,
    '16 parallel refreshes: exactly one new pair in the store, and the record '
    . 'that keeps it for the grace (R38)');
my ($body) = keys %bodies;
my $won = eval { JSON::PP->new->decode($body) } // {};
is(at_status($won->{access_token} // 'x'), 200,
    'the pair every racer got: its access token works');
is(refresh($t, $app, $won->{refresh_token} // 'x')->{status}, 200,
    'the pair every racer got: its refresh token works');
is(active($app, $p->{refresh_token}), 0,
    'after the race the parent token is inactive (R38)');

############################################ kill -9 mid-refresh (R40, R73)

$t->expect_log(qr/exited on signal 9/);
my @chains = map { pair($app, 'alice') } 1 .. 6;
my $worker = ($t->worker_pids)[0];
my $deadline = time + 2;
my $killer = fork // die "fork: $!";
if (!$killer) {
    sleep 0.7;
    kill 'KILL', $worker;
    POSIX::_exit(0);
}
@res = race(scalar @chains, sub {
    my ($i) = @_;
    my $rt = $chains[$i - 1]{refresh_token};
    my @seen = ($rt);
    my ($lost, $bad, $recovered) = (0, '', 0);
    my $after_loss = 0;
    while (time < $deadline || $after_loss) {
        my $r = refresh($t, $app, $rt);
        if ($r->{status} == 200 && $r->{json}{refresh_token}) {
            $recovered++ if $after_loss;
            $after_loss = 0;
            $rt = $r->{json}{refresh_token};
            push @seen, $rt;
        } elsif ($r->{status} == 0 || $r->{timeout}) {
            # the answer was lost: the client still holds the old token
            $lost++;
            $after_loss = 1;
            sleep 0.05;
        } else {
            $bad .= "$r->{status} $r->{body};";
            last;
        }
        last if $after_loss && $lost > 20;
    }
    return join "\n", "lost=$lost", "recovered=$recovered", "bad=$bad", @seen;
});
waitpid $killer, 0;
ok(!OAuth2Test::_alive($worker), 'the worker was killed');
ok($t->_wait_workers(5), 'the master respawned the worker (R73)');

my ($lost, $recovered, $bad, @stale, @final) = (0, 0, '');
for my $res (@res) {
    my ($l, $rc, $b, @seen) = split /\n/, $res;
    $lost += ($l =~ /(\d+)/)[0];
    $recovered += ($rc =~ /(\d+)/)[0];
    $bad .= $b =~ s/^bad=//r;
    push @final, $seen[-1];
    push @stale, @seen[0 .. $#seen - 1];
}
diag("kill -9: $lost lost answers, " . scalar(@stale) . ' rotations');
is($bad, '', 'refreshes around a worker crash: only 200s and lost '
    . 'connections, never an error (R40)');
is($recovered, $lost, 'every lost answer: the client retries with the '
    . 'old token and gets a pair, never neither (R40)');
is(scalar(grep { active($app, $_) } @final), scalar @final,
    'each chain: the last refresh token is active (R40)');
is(scalar(grep { active($app, $_) } @stale), 0,
    'each chain: every earlier refresh token is inactive, never both (R40)');
is(scalar(grep { refresh($t, $app, $_)->{status} == 200 } @final),
    scalar @final, 'each chain: the last refresh token refreshes (R40)');

$t->done_testing;
