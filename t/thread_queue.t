# R9, R53, R64: a thread pool whose queue is full answers the endpoint's
# own 503 (JSON, Retry-After, no-store), as oauth2_hash_limit's queue
# does; it was a status handed back to nginx, which followed the server's
# error_page with the request's body (a password) to wherever that led,
# and otherwise answered nginx's HTML page
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
EOF
    main => "thread_pool tiny threads=1 max_queue=1;\n", workers => 1)->run;

my $raw = "POST /o/token/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\n"
    . 'Authorization: ' . $t->basic($app->{client_id}, $app->{client_secret})
    . "\r\n";
my $body = OAuth2Test::form(grant_type => 'password', username => 'ada',
    password => $PW);
$raw .= 'Content-Length: ' . length($body) . "\r\n\r\n$body";

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

$t->done_testing;
