# An answer from etcd lost on its way back (issue 13: single-use codes and
# refresh rotation exactly once; SECURITY.md R29 for the code's replay
# rule): one etcd member, one edge whose nginx reaches etcd through a relay
# made here, its sync daemon directly.  On a cue the relay passes the next
# Txn to etcd, waits for etcd's answer (the Txn committed) and then resets
# the edge's connection instead of passing it on: the edge cannot know
# whether its Txn took effect, tries again, and the second try fails its
# compares, because the first one took effect.  The edge must see that
# everything it wrote is in etcd and answer as committed: the code's
# redemption gets its tokens (not invalid_grant, the replay rule's answer,
# with the grant revoked), a refresh gets its new pair, and each is
# applied once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;
use OAuth2Grants qw(PBKDF2);

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $CB = 'https://client.example/cb';
my $PW = 'Tr0ub4dor-lost-9';
my $t = OAuth2Test->new;
my $dir = $t->dir;
my $url = $t->run_etcd;
my ($etcd_port) = $url =~ /:(\d+)$/;
my $cue = "$dir/drop-next-answer";
my $dropped = "$dir/dropped";

# the relay: a process per connection, bytes passed both ways as they come
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Listen => 64, ReuseAddr => 1) or die "relay: $!";
my $relay_port = $srv->sockport;
my $relay = fork // die "fork: $!";
if (!$relay) {
    $SIG{CHLD} = 'IGNORE';
    while (1) {
        my $c = $srv->accept or next;
        my $pid = fork;
        if (!defined $pid || $pid) { close $c; next; }
        close $srv;
        my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $etcd_port) or POSIX::_exit(0);
        my $sel = IO::Select->new($c, $u);
        my $drop = 0;
        while (1) {
            for my $fh ($sel->can_read) {
                my $n = sysread($fh, my $buf, 65536);
                POSIX::_exit(0) unless $n;
                if ($fh == $c) {
                    # the cue takes the next Txn, whichever connection
                    if (!$drop && $buf =~ m{^POST /v3/kv/txn }m
                        && unlink $cue) {
                        $drop = 1;
                    }
                    syswrite($u, $buf) // POSIX::_exit(0);
                } elsif ($drop) {
                    # etcd answered, so the Txn is committed: a reset
                    # (linger 0) instead of the answer
                    OAuth2Test::write_file($dropped, "dropped\n");
                    setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
                    close $c;
                    POSIX::_exit(0);
                } else {
                    syswrite($c, $buf) // POSIX::_exit(0);
                }
            }
        }
    }
}
close $srv;
END { kill 'KILL', $relay if $relay }

$t->run_sync($url);
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => $t->cluster_directive(etcd => "http://127.0.0.1:$relay_port")
        # nothing else of the edge's writes goes through the relay
        . "oauth2_expiry_cleanup off;\n"))->run;

my $web = $t->new_app_etcd(name => 'web',
    grant => ['authorization_code', 'refresh_token'], redirect_uris => [$CB]);
my ($code, $out, $err) = $t->admin_etcd('user', 'add', '--username', 'alice',
    '--email', 'alice@example.com', '--password', $PW,
    '--pbkdf2-iterations', PBKDF2);
is($code, 0, 'an application and a user, in etcd') or diag("$out$err");

my $f = OAuth2Authorize->new($t);
my $q = OAuth2Authorize::query(client_id => $web->{client_id},
    response_type => 'code', redirect_uri => $CB, scope => 'read',
    state => 'st-lost');
my $session = $f->login($q, 'alice', $PW);
ok($session, 'alice signs in at the edge');

# a redemption whose first Txn commits and whose answer is lost
my $c1 = $f->code($q, $session);
OAuth2Test::write_file($cue, '');
my $r = $f->redeem($c1, client => $web, redirect_uri => $CB);
ok(-e $dropped && !-e $cue,
    'the relay committed the redemption\'s Txn and reset the answer');
is($r->{status}, 200, 'the redemption answers 200, its tokens, not '
    . 'invalid_grant: the edge found its first try had taken effect')
    or diag($r->{raw});
my $at = $r->{json}{access_token} // '';
my $rt = $r->{json}{refresh_token} // '';
is($t->bearer_get('/protected/', $at)->{status}, 200,
    'its access token opens the protected location (not revoked as a '
    . 'replay)');
my $again = $f->redeem($c1, client => $web, redirect_uri => $CB);
is($again->{status}, 400, 'the code was used once: a second redemption '
    . 'fails') or diag($again->{raw});
is($t->bearer_get('/protected/', $at)->{status}, 401,
    '... and, a replay, revokes what the code gave (R29)');

# a refresh whose answer is lost: the pair it made, once
my $c2 = $f->code($q, $session);
my $r2 = $f->redeem($c2, client => $web, redirect_uri => $CB);
is($r2->{status}, 200, 'another code, redeemed normally');
unlink $dropped;
OAuth2Test::write_file($cue, '');
my $rr = $f->refresh($r2->{json}{refresh_token}, $web);
ok(-e $dropped, 'the relay reset the refresh\'s answer after etcd committed');
is($rr->{status}, 200, 'the refresh answers 200') or diag($rr->{raw});
my $new_at = $rr->{json}{access_token} // '';
is($t->bearer_get('/protected/', $new_at)->{status}, 200,
    'its new access token is good');
my $intro = $f->introspect($new_at, $web);
is($intro->{json}{active}, JSON::PP::true(), 'and active at introspection');
my $rt_again = $f->refresh($r2->{json}{refresh_token}, $web);
my $rotated = $rt_again->{status} == 200
    ? ($rt_again->{json}{access_token} // '') eq $new_at : 0;
ok($rt_again->{status} == 400 || $rotated,
    'the old refresh token was rotated once: refused, or within the grace '
    . 'the same pair') or diag($rt_again->{raw});
$t->sync_log_ok;

done_testing();
