# One large change on a slow link (issue 13; SECURITY.md R77 for the
# mirror's freshness, R52 for a token seen everywhere): one etcd member
# on loopback and two edges; edge A's sync daemon reaches etcd only
# through a relay (OAuth2Test::relay) that passes etcd's answers at
# 100 KB/s.  etcd sends all the events of a revision as one watch
# message: a put of 400 KB (an import's or a restore's Txn is as large)
# is a message of 533 KB, 5.3 s through the relay, longer than the 3 s in
# which sync wants its own heartbeat back.  sync cut such a message off
# halfway as a member behind, watched again from the same revision and
# met the same message, on every member, for ever: the mirror stuck, the
# tokens issued after it never seen on A.  A message is now judged once
# it has ended (and applied), so A applies it and follows on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(time);
use OAuth2Test;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $ea = OAuth2Test->new;    # edge A: the etcd member, its sync relayed
my $eb = OAuth2Test->new;    # edge B: where the tokens are issued
my $url = $ea->run_etcd;
my ($etcd_port) = $url =~ /:(\d+)$/;
my ($relay_port) = OAuth2Test::relay($etcd_port, rate => 100_000);

$ea->run_sync("http://127.0.0.1:$relay_port");
$eb->run_sync($url);
$ea->write_config($ea->default_http(extra_http => $ea->cluster_directive(
    etcd => $url, max_staleness => '60s')))->run;
$eb->write_config($eb->default_http(extra_http => $eb->cluster_directive(
    max_staleness => '60s')))->run;
my $app = $eb->new_app_etcd(name => 'big-event');
ok($app->{client_id}, 'an application, through etcd');

sub status_at_a { $ea->bearer_get('/protected/', $_[0])->{status} }

my $tok = $eb->access_token($app);
my ($ok, $took) = OAuth2Test::poll(10, sub { status_at_a($tok) == 200 });
ok($ok, sprintf('through the relay, a token issued on B validates on A '
    . '(%.3f s)', $took));

# one put of 400 KB under the prefix, in no database
my $mark = -s $ea->sync_log;
my $key = encode_base64('/oauth2/load/big', '');
my $value = encode_base64('x' x 400_000, '');
$ea->etcd_post('/v3/kv/put', qq({"key":"$key","value":"$value"}));
my $t0 = time;
my $tok2 = $eb->access_token($app);
($ok) = OAuth2Test::poll(30, sub { status_at_a($tok2) == 200 });
ok($ok, sprintf('a token issued on B after a 533 KB watch message '
    . 'validates on A (%.1f s; the message takes 5.3 s through the relay)',
    time - $t0)) or diag(OAuth2Test::_tail($ea->sync_log, 20));
my $said = substr(OAuth2Test::_slurp($ea->sync_log), $mark);
my $cut = () = $said =~ /has not come back for/g;
cmp_ok($cut, '<=', 1, "A's sync daemon did not cut the message off and "
    . "meet it again ($cut watches ended as behind)")
    or diag($said);
ok(kill(0, $ea->sync_pid), 'A\'s sync daemon ran throughout');
$ea->sync_log_ok;
$ea->done_testing;
