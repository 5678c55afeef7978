# Slow work cannot starve fast work (docs/security.md R88, R8, R75): password
# hashes take at most oauth2_hash_limit threads of a worker, a bounded
# queue waits for them and the rest is refused (503); registration checks
# what is cheap first and is throttled per address by default; token
# issuance is answered while hashes fill their queue.  Each refusal is
# one oauth2_unavailable_total{reason="hash_queue"} (oauth2_metrics).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);
my $cc = $t->new_app(name => 'machine');
$t->admin_json('user', 'add', '--username', 'taken', '--email',
    'taken@example.com', '--password', 'Already-taken-name-1',
    '--pbkdf2-iterations', 1000);
# about a second and a half per hash on the development machine
$t->write_config($t->default_http(
    extra_http => "oauth2_hash_limit 1 queue=2;\n",
    extra_server => <<'EOF'), workers => 1)->run;
    location = /users/register/ {
        oauth2_register;
        oauth2_rate_limit off;
        oauth2_pbkdf2_iterations 4000000;
    }
    location = /users/register-default/ {
        oauth2_register;
        oauth2_pbkdf2_iterations 1000;
    }
    location = /metrics { oauth2_metrics; }
EOF

sub register_request {
    my ($name, $path) = @_;
    my $pw = "Queue-test-phrase-$name";
    my $body = OAuth2Test::form(username => $name, password => $pw,
        confirm_password => $pw);
    return "POST " . ($path // '/users/register/') . " HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
}

sub open_request {
    my ($raw) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port, Proto => 'tcp') or die "connect: $!";
    binmode $s;
    print $s $raw;
    return $s;
}

sub read_response { (OAuth2Test::read_async($_[0]))[0] }

sub answered { IO::Select->new($_[0])->can_read(0) ? 1 : 0 }

############################################ a flood of slow registrations

my @flood = map { open_request(register_request("flood$_")) } 1 .. 6;
# let the worker take them all: one hashes, two wait, three are refused
my @early;
for (1 .. 50) {
    @early = grep { answered($_) } @flood;
    last if @early >= 3;
    select undef, undef, undef, 0.05;
}
is(scalar @early, 3,
    'with one hashing and two waiting, the other three are answered at once');

# token issuance and cheap refusals go on while the hashes are queued
my $r = $t->token($cc->{client_id}, $cc->{client_secret});
is($r->{status}, 200, 'client_credentials during the flood: 200 (R88)');
# a revocation is a store write of the thread pool, not a hash: it takes
# no hash slot, so it is neither queued behind the hashes nor refused
my $tok = $r->{json}{access_token};
$r = $t->revoke($cc->{client_id}, $cc->{client_secret}, $tok);
is($r->{status}, 200, 'a revocation during the flood: 200, not 503 (R88)');
is($t->bearer_get('/protected/', $tok)->{status}, 401,
    'the token revoked during the flood no longer opens a location');
$r = $t->post_form('/users/register/', OAuth2Test::form(username => 'taken',
    password => 'Another-phrase-x1', confirm_password => 'Another-phrase-x1'));
is($r->{status}, 400, 'a taken username during the flood: 400, no hash');
like($r->{body}, qr/already exists/, 'DRF\'s "already exists"');
is(scalar(grep { answered($_) } @flood), 3,
    'both answers came while the queued registrations were still hashing');

my %status;
$status{read_response($_)->{status}}++ for @flood;
is($status{201}, 3, 'the one hashing and the two queued registered: 201');
is($status{503}, 3, 'the three beyond the queue: 503');
my $names = join ',', sort map { $_->{username} }
    @{$t->admin_json('user', 'list')};
like($names, qr/flood/, 'the accepted registrations are users');

# the refusal's shape, one more time while the queue is full
@flood = map { open_request(register_request("again$_")) } 1 .. 4;
for (1 .. 50) {
    last if grep { answered($_) } @flood;
    select undef, undef, undef, 0.05;
}
my ($first) = grep { answered($_) } @flood;
$r = read_response($first);
is($r->{status}, 503, 'a full hash queue answers 503');
is(OAuth2Test::header($r, 'Retry-After'), 1, 'with Retry-After: 1');
like($r->{body}, qr/"detail"/, 'in the registration\'s DRF shape');
my $refused = 3 + 1;
$refused += grep { $_ == 503 }
    map { read_response($_)->{status} } grep { $_ != $first } @flood;
{
    my $body = $t->get('/metrics')->{body} // '';
    my ($n) = $body =~ /^oauth2_unavailable_total\{reason="hash_queue"\} (\d+)$/m;
    is($n, $refused, "oauth2_unavailable_total{reason=\"hash_queue\"}: the "
        . "$refused refusals of the full queue");
}
like(OAuth2Test::_slurp($t->error_log),
    qr/\[error\].*password hashes are waiting, refusing with 503/,
    'the refusal is logged');

################## a client that leaves gives its place in the queue back

# R88: an abandoned request waiting for a hash slot is dropped unhashed.
# One registration hashes; two more are sent by clients that then leave:
# one after it has waited a moment, one at once (shut down after
# sending).  Neither may cost a hash or keep its place: a registration
# that comes after them is queued (not 503), and only the two whose
# clients stayed become users.
my $keep = open_request(register_request('keepa'));
select undef, undef, undef, 0.2;
my $late = open_request(register_request('gonelate'));
my $early_gone = open_request(register_request('goneearly'));
shutdown $early_gone, 2;
close $early_gone;
select undef, undef, undef, 0.3;
close $late;
my $dropped = 0;
for (1 .. 100) {
    $dropped = () = OAuth2Test::_slurp($t->error_log)
        =~ /dropped unhashed/g;
    last if $dropped >= 2;
    select undef, undef, undef, 0.05;
}
is($dropped, 2, 'both abandoned registrations were dropped, logged at info');
my $after = open_request(register_request('keepb'));
is(read_response($keep)->{status}, 201, 'the one hashing registered: 201');
is(read_response($after)->{status}, 201,
    'one sent after the abandoned ones waited in their places: 201, not 503');
my %users = map { $_->{username} => 1 } @{$t->admin_json('user', 'list')};
ok($users{keepa} && $users{keepb}, 'the clients that stayed are users');
ok(!$users{gonelate} && !$users{goneearly},
    'the abandoned registrations were never hashed nor stored');
# which of the two notices the leaving (the queue's read event, or the
# check before a request queues) depends on when the FIN arrives
my $drops = () = OAuth2Test::_slurp($t->error_log) =~ /\[info\].*client
    \ left\ (?:while\ its\ password\ hash\ waited|before\ its\ password
    \ hash\ began)/gx;
is($drops, 2, 'each drop is logged at info, saying why');

############################ registration is throttled per address by default

my @codes;
for my $i (1 .. 11) {
    my $pw = 'Another-phrase-x1';
    my $q = $t->post_form('/users/register-default/', OAuth2Test::form(
        username => 'taken', password => $pw, confirm_password => $pw));
    push @codes, $q->{status};
    $r = $q;
}
is(join(',', @codes[0 .. 9]), join(',', (400) x 10),
    'ten registrations a minute from one address are answered');
is($codes[10], 429, 'the eleventh within the minute: 429 (default 10/m)');
like(OAuth2Test::header($r, 'X-RateLimit-Limit') // '', qr/^10$/,
    'X-RateLimit-Limit: 10');

$t->done_testing;
