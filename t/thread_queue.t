# R9, R53, R64: a thread pool whose queue is full answers the endpoint's
# own 503 (JSON, Retry-After, no-store), as oauth2_hash_limit's queue
# does; it was a status handed back to nginx, which followed the server's
# error_page with the request's body (a password) to wherever that led,
# and otherwise answered nginx's HTML page.  oauth2_metrics counts each
# such 503 in oauth2_unavailable_total{reason="thread_queue"}.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $PW = 'Thread-queue-passphrase-4';
my $ITER = 400000;    # a hash long enough for the others to arrive meanwhile
$t->admin_json('user', 'add', '--username', 'ada', '--email',
    'ada@example.com', '--password', $PW, '--pbkdf2-iterations', $ITER);
my $app = $t->new_app(name => 'pw', grant => 'password');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations $ITER;\n"
        . "oauth2_hash_limit 16 queue=64;\noauth2_thread_pool tiny;\n"
        . "oauth2_client_auth_limit off;\noauth2_account_limit off;\n",
    extra_server => <<'EOF'),
    error_page 500 502 503 /captured;
    location = /captured { return 200 "captured by error_page\n"; }
    location = /metrics { oauth2_metrics; }
EOF
    main => "thread_pool tiny threads=1 max_queue=1;\n", workers => 1)->run;

my $raw = "POST /o/token/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\n"
    . 'Authorization: ' . $t->basic($app->{client_id}, $app->{client_secret})
    . "\r\n";
my $body = OAuth2Test::form(grant_type => 'password', username => 'ada',
    password => $PW);
$raw .= 'Content-Length: ' . length($body) . "\r\n\r\n$body";

# oauth2_unavailable_total of a reason, from the metrics
sub unavailable {
    my ($reason) = @_;
    my $body = $t->get('/metrics')->{body} // '';
    return $body =~ /^oauth2_unavailable_total\{reason="$reason"\} (\d+)$/m
        ? $1 : undef;
}

my @r = OAuth2Test::race_raw([map { [$t->port, $raw] } 1 .. 8]);
my @ok = grep { $_->{status} == 200 } @r;
my @busy = grep { $_->{status} == 503 } @r;
cmp_ok(scalar @ok, '>=', 1, scalar(@ok) . ' of 8 concurrent password '
    . 'grants issued (one thread, a queue of one)');
cmp_ok(scalar @busy, '>=', 1, scalar(@busy) . ' found the thread pool\'s '
    . 'queue full: 503');
is(scalar(@ok) + scalar(@busy), 8, 'every answer is one or the other')
    or diag(join "\n", map { $_->{raw} } @r);
ok(!(grep { $_->{body} =~ /captured/ } @r),
    'none followed error_page (the password with it)');
is(unavailable('thread_queue'), scalar @busy, 'oauth2_unavailable_total'
    . '{reason="thread_queue"}: the ' . scalar(@busy) . ' 503s');
is(unavailable('store') // -1, 0, '... and none counted as the store\'s');
for my $b (@busy[0 .. ($#busy < 0 ? -1 : 0)]) {
    is(($b->{json} // {})->{error}, 'temporarily_unavailable',
        'the 503 is the token endpoint\'s JSON: temporarily_unavailable')
        or diag($b->{raw});
    ok(OAuth2Test::header($b, 'Retry-After'), '... with Retry-After');
    like(OAuth2Test::header($b, 'Cache-Control') // '', qr/no-store/,
        '... and no-store (R9)');
}
$t->expect_log(qr/could not post to the thread pool/);
like(OAuth2Test::_slurp($t->dir . '/error.log'),
    qr/thread pool "tiny" queue overflow/, 'nginx says its queue overflowed');

# The group commit's batch (a client_credentials token is prepared on the
# event loop, and a task commits the batch) finding the queue full is
# refused as a single task is: 503, nothing issued.  It was committed on
# the event loop instead, where the store's writer lock (another process
# in a write: the admin daemon, sync) and the sync stalled every request
# of the worker, bearer validation with them (R75).  One password grant
# hashes in the one thread, another waits in the queue of one: the
# client_credentials request's batch cannot be posted.
my $cc = $t->new_app(name => 'cc', grant => 'client_credentials');
my $before = $t->token($cc->{client_id}, $cc->{client_secret});
is($before->{status}, 200, 'client_credentials with the pool idle: 200');
my $form = ['Content-Type' => 'application/x-www-form-urlencoded',
    Authorization => $t->basic($app->{client_id}, $app->{client_secret})];
my $SLOW = 'Thread-queue-slow-passphrase-5';
$t->admin_json('user', 'add', '--username', 'slow', '--email',
    'slow@example.com', '--password', $SLOW, '--pbkdf2-iterations', 4000000);
my $slow_body = OAuth2Test::form(grant_type => 'password', username => 'slow',
    password => $SLOW);
my @hashing = map { $t->send_async('POST', '/o/token/', $form, $slow_body) } 1 .. 2;
select(undef, undef, undef, 0.3);
my $was = unavailable('thread_queue') // 0;
my $busy = $t->token($cc->{client_id}, $cc->{client_secret});
is($busy->{status}, 503, 'client_credentials while the queue is full: 503')
    or diag($busy->{raw});
is(unavailable('thread_queue'), $was + 1,
    '... counted in oauth2_unavailable_total{reason="thread_queue"}');
is(($busy->{json} // {})->{error}, 'temporarily_unavailable',
    '... the token endpoint\'s temporarily_unavailable');
ok(OAuth2Test::header($busy, 'Retry-After'), '... with Retry-After');
ok(!exists(($busy->{json} // {})->{access_token}), '... and no token');
my @after = map { (OAuth2Test::read_async($_))[0]{status} } @hashing;
is(join(' ', sort @after), '200 200', 'the two password grants: 200 each');
like(OAuth2Test::_slurp($t->dir . '/error.log'),
    qr/could not post to the thread pool: 1 prepared changes refused/,
    'the refused batch is logged at alert');
is($t->get('/protected/', Authorization => "Bearer $before->{json}{access_token}")
    ->{status}, 200, 'the token issued before validates');
is($t->token($cc->{client_id}, $cc->{client_secret})->{status}, 200,
    'client_credentials with the pool idle again: 200');

$t->done_testing;
