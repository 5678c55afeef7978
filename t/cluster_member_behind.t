# A member that keeps sending but falls behind (issue 13, "Faults";
# SECURITY.md R52 for a token seen everywhere, R77 for the mirror's
# freshness): one etcd member on loopback and two edges.  Edge A's sync
# daemon is given two URLs for it: first a relay made here, which passes
# etcd's answers at 20 KB/s a connection, then the member itself; A's
# nginx and edge B (nginx and sync) reach etcd directly.  While a writer
# puts about 600 KB/s of keys no record maps to under the prefix (87 KB
# an event, 4 s each through the relay), the watch through the relay
# never falls silent, but A's heartbeat, put every 250 ms, comes back
# only behind a growing backlog, more than 3 s apart.  sync then ends the
# watch as a member behind and watches the next member (README "Running
# several edges"), so a token issued on B 7 s into the load validates on
# A within 2 s; a watch kept on the member behind would bring it only
# once the backlog had passed (minutes), the mirror older all the while.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

# bytes a second from etcd, each relayed connection (t/cluster_member_behind_slowly.t:
# 100 KB/s)
my $RATE = $ENV{O2T_MEMBER_BEHIND_RATE} // 20_000;

my $ea = OAuth2Test->new;    # edge A: the etcd member, its sync relayed
my $eb = OAuth2Test->new;    # edge B: where the tokens are issued
my $url = $ea->run_etcd;
my ($etcd_port) = $url =~ /:(\d+)$/;

# the relay: etcd's answers at $RATE a connection
my ($relay_port) = OAuth2Test::relay($etcd_port, rate => $RATE);

# A's watch and heartbeat start at the relay, the first URL
$ea->run_sync("http://127.0.0.1:$relay_port,$url");
$eb->run_sync($url);
$ea->write_config($ea->default_http(extra_http => $ea->cluster_directive(
    etcd => $url, max_staleness => '30s')))->run;
$eb->write_config($eb->default_http(extra_http => $eb->cluster_directive(
    max_staleness => '30s')))->run;
my $app = $eb->new_app_etcd(name => 'member-behind');
ok($app->{client_id}, 'an application, through etcd');

sub status_at_a { $ea->bearer_get('/protected/', $_[0])->{status} }

my $tok = $eb->access_token($app);
my ($ok, $took) = OAuth2Test::poll(5, sub { status_at_a($tok) == 200 });
ok($ok, sprintf('through the relay, a token issued on B validates on A '
    . '(%.3f s)', $took));

# the writer: 64 KiB values (87 KB in base64, each event as long in the
# watch) 7 times a second, under the prefix but in no database
my $mark = -s $ea->sync_log;
my $writer = fork // die "fork: $!";
if (!$writer) {
    my $value = encode_base64('x' x 65536, '');
    eval {
        for (my $i = 0;; $i++) {
            my $key = encode_base64("/oauth2/load/" . ($i % 50), '');
            $ea->etcd_post('/v3/kv/put', qq({"key":"$key","value":"$value"}));
            sleep 0.14;
        }
    };
    POSIX::_exit(0);    # no END blocks: they would stop nginx
}
END { if ($writer) { kill 'KILL', $writer; waitpid $writer, 0 } }

sleep 7;    # the relay's backlog: about 4 MB, minutes at $RATE
my $t0 = time;
my $tok2 = $eb->access_token($app);
($ok, $took) = OAuth2Test::poll(5, sub { status_at_a($tok2) == 200 });
ok($ok, sprintf('with the relay far behind and falling further, a token '
    . 'issued on B validates on A within 5 s (%.3f s): A\'s sync left the '
    . 'member behind for the next one', time - $t0))
    or diag(OAuth2Test::_tail($ea->sync_log, 20));
cmp_ok($took, '<', 2, 'it validates within 2 s');
kill 'KILL', $writer;
waitpid $writer, 0;
$writer = undef;
like(substr(OAuth2Test::_slurp($ea->sync_log), $mark),
    qr/keeps sending, but \S+ has not come back for 3000 ms/,
    'A\'s sync daemon said the member keeps sending but its heartbeat has '
    . 'not come back');
ok(kill(0, $ea->sync_pid), 'A\'s sync daemon ran throughout');
$ea->sync_log_ok;
$ea->done_testing;
