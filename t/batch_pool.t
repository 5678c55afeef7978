# R88, R83: the group commit of token issuance (t/batch_commit.t) runs in
# the thread pool of the request's own server (oauth2_thread_pool), as
# every other write does.  A host giving each tenant a pool of its own,
# so that one tenant's load cannot refuse or delay another's, had its
# tenants share one batch a worker: a batch went to the pool of whichever
# request began it, and the requests of every server joined it.  shop2's
# client_credentials tokens then waited in shop1's pool behind shop1's
# password hashes, and were refused 503 (thread_queue) with shop1's batch
# when shop1's pool queue was full, while shop2's own pool sat idle.
#
# Here one worker (every request shares its batches), shop1 in a pool of
# one thread and a queue of one, shop2 in a pool of four; a slow password
# grant keeps shop1's one thread busy for seconds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Time::HiRes qw(time);
use IO::Select;
use IO::Socket::INET;
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
for my $realm (qw(shop1 shop2)) {
    my ($code, undef, $err) = $t->admin('realm', 'add', $realm);
    is($code, 0, "realm add $realm: exit 0") or diag($err);
}
my $SLOW = 'Batch-pool-slow-passphrase-6';
$t->admin_json('--realm', 'shop1', 'user', 'add', '--username', 'slow',
    '--email', 'slow@example.com', '--password', $SLOW,
    '--pbkdf2-iterations', 4000000);
my $pw = $t->admin_json('--realm', 'shop1', 'app', 'add', '--name', 'pw',
    '--grant', 'password');
my $cc1 = $t->admin_json('--realm', 'shop1', 'app', 'add', '--name', 'cc1',
    '--grant', 'client_credentials');
my $cc2 = $t->admin_json('--realm', 'shop2', 'app', 'add', '--name', 'cc2',
    '--grant', 'client_credentials');

my %PORT = (shop1 => $t->port(1), shop2 => $t->port(2));
sub site {
    my ($realm, $pool) = @_;
    my $port = $PORT{$realm};
    return <<"EOF";
server {
    listen 127.0.0.1:$port;
    oauth2_realm $realm;
    oauth2_issuer http://127.0.0.1:$port;
    oauth2_thread_pool $pool;
    location = /o/token/ { oauth2_token; }
    location = /metrics { oauth2_metrics; allow 127.0.0.1; deny all; }
}
EOF
}
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 4000000;\n"
        . "oauth2_hash_limit 16 queue=64;\noauth2_client_auth_limit off;\n"
        . "oauth2_account_limit off;\noauth2_dpop off;\n"
        # no background writes in shop1's pool
        . "oauth2_expiry_cleanup off;\n")
    . site('shop1', 'p1') . site('shop2', 'p2'),
    main => "thread_pool p1 threads=1 max_queue=1;\n"
        . "thread_pool p2 threads=4 max_queue=65536;\n",
    workers => 1)->run;
ok($t->_wait_port($PORT{$_}), "nginx listens on $_\'s port")
    for sort keys %PORT;

# a token request at a shop's port, as raw bytes (Connection: close)
sub raw {
    my ($shop, $auth, $body) = @_;
    return "POST /o/token/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Authorization: $auth\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
}
my $CC1 = raw('shop1', $t->basic($cc1->{client_id}, $cc1->{client_secret}),
    'grant_type=client_credentials');
my $CC2 = raw('shop2', $t->basic($cc2->{client_id}, $cc2->{client_secret}),
    'grant_type=client_credentials');
my $PW = raw('shop1', $t->basic($pw->{client_id}, $pw->{client_secret}),
    OAuth2Test::form(grant_type => 'password', username => 'slow',
        password => $SLOW));

# the socket of a request sent (its answer to read later)
sub send_raw {
    my ($shop, $raw) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $PORT{$shop}, Proto => 'tcp') or die "connect: $!";
    binmode $s;
    print $s $raw;
    return $s;
}

# oauth2_unavailable_total of a reason (every realm's)
sub unavailable {
    my ($reason) = @_;
    my $body = $t->get('/metrics', '-port' => $PORT{shop1})->{body} // '';
    return $body =~ /^oauth2_unavailable_total\{reason="$reason"\} (\d+)$/m
        ? $1 : 0;
}

for my $shop (qw(shop1 shop2)) {
    is($t->http($shop eq 'shop1' ? $CC1 : $CC2, port => $PORT{$shop})
        ->{status}, 200, "client_credentials at $shop, pools idle: 200");
}

####################################### shop1 busy: shop2 runs in its own

# A hashes in shop1's one thread for seconds; shop1's client_credentials
# request begins a batch, its task in shop1's queue.  shop2's requests
# that come meanwhile joined that batch and waited for A's hash: each is
# answered now, in shop2's pool, while A's answer has not come.
my $start = time;
my $a = send_raw('shop1', $PW);
select(undef, undef, undef, 0.3);
my $x = send_raw('shop1', $CC1);
select(undef, undef, undef, 0.1);
my (@y, $a_answered);
for (1 .. 5) {
    my ($r) = OAuth2Test::read_async(send_raw('shop2', $CC2));
    push @y, $r->{status};
    $a_answered += IO::Select->new($a)->can_read(0) ? 1 : 0;
}
my $shop2_done = time;
my ($ra, $at_a) = OAuth2Test::read_async($a);
my ($rx) = OAuth2Test::read_async($x);
is("@y", '200 200 200 200 200', 'shop2\'s 5 client_credentials requests '
    . 'while shop1\'s thread hashes: 200 each');
is($a_answered, 0, sprintf('... each answered while shop1\'s hash ran (in '
    . '%.2f s of its %.2f s): in shop2\'s pool, never waiting in shop1\'s',
    $shop2_done - $start, $at_a - $start));
is($ra->{status}, 200, 'shop1\'s password grant: 200');
is($rx->{status}, 200, 'shop1\'s client_credentials, queued behind it: 200');

####################################### shop1's pool full: shop2 unharmed

# One password grant hashes in shop1's thread, another waits in its queue
# of one: shop1's batch cannot be posted, and is refused.
my $was = unavailable('thread_queue');
my @hashing = map { send_raw('shop1', $PW) } 1 .. 2;
select(undef, undef, undef, 0.3);
my $busy = $t->http($CC1, port => $PORT{shop1});
is($busy->{status}, 503, 'client_credentials at shop1, its pool full: 503')
    or diag($busy->{raw});
is(($busy->{json} // {})->{error}, 'temporarily_unavailable',
    '... temporarily_unavailable');
my @ok2 = map { $t->http($CC2, port => $PORT{shop2})->{status} } 1 .. 5;
is("@ok2", '200 200 200 200 200',
    'client_credentials at shop2 meanwhile: 200 each');

# both shops' requests at once, while shop1's pool is still full
my @race = OAuth2Test::race_raw([map { ([$PORT{shop1}, $CC1],
    [$PORT{shop2}, $CC2], [$PORT{shop2}, $CC2]) } 1 .. 20]);
my @s1 = map { $race[3 * $_]{status} } 0 .. 19;
my @s2 = map { @race[3 * $_ + 1, 3 * $_ + 2] } 0 .. 19;
is(scalar(grep { $_->{status} == 200 } @s2), 40,
    'a flood of both shops at once: each of shop2\'s 40 requests 200')
    or diag(join ' ', map { OAuth2Test::outcome($_) } @s2);
is(scalar(grep { $_ == 503 } @s1), 20,
    '... and each of shop1\'s 20 refused 503 (its pool full)')
    or diag("@s1");
my @after = map { (OAuth2Test::read_async($_))[0]{status} } @hashing;
is("@after", '200 200', 'the two password grants: 200 each');
is(unavailable('thread_queue'), $was + 21, 'oauth2_unavailable_total'
    . '{reason="thread_queue"} counted shop1\'s 21 503s, none of shop2');
$t->expect_log(qr/could not post to the thread pool/);
$t->expect_log(qr/thread pool "p1" queue overflow/);

$t->done_testing;
