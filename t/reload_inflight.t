# A reload never drops a request in flight (docs/security.md R76): a
# request whose work runs in the thread pool (here a registration's slow
# PBKDF2 hash) when nginx -s reload tells its worker to exit is still
# answered by that worker, and its write is made.  The old worker holds
# nothing nginx counts as pending work while the thread runs (no timer,
# no I/O), so without a guard of its own it would exit at once and the
# client would see its connection closed without an answer, after its
# account may or may not have been made.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);
# a hash of a second or two (1.4 s on the development machine): the
# reload reaches the worker (0.3 s) long before it is done
$t->write_config($t->default_http(extra_server => <<'EOF'), workers => 1)->run;
    location = /users/register/ {
        oauth2_register;
        oauth2_rate_limit off;
        oauth2_pbkdf2_iterations 6000000;
    }
EOF

sub register_request {
    my ($name) = @_;
    my $pw = "Reload-test-phrase-$name";
    my $body = OAuth2Test::form(username => $name, password => $pw,
        confirm_password => $pw);
    return "POST /users/register/ HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
}

sub read_response { (OAuth2Test::read_async($_[0]))[0] }

my ($old) = $t->worker_pids;
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
    Proto => 'tcp') or die "connect: $!";
binmode $s;
print $s register_request('midreload');
my $sent = time;
# the worker has read the request and its hash runs in the thread pool
sleep 0.3;
ok(!IO::Select->new($s)->can_read(0),
    'the registration is still hashing when nginx reloads');
# the signal alone ($t->reload would wait for the old worker to exit,
# which waits for this client to read its answer and close)
my $dir = $t->dir;
my ($code, $out, $err) = $t->_run_cmd($OAuth2Test::NGINX, '-p', "$dir/",
    '-c', "$dir/nginx.conf", '-e', $t->error_log, '-s', 'reload');
is($code, 0, 'nginx -s reload: exit 0') or diag("$out$err");

# the old worker is told to exit (it logs so) while the hash still runs
my $told;
for (1 .. 200) {
    $told = OAuth2Test::_slurp($t->error_log)
        =~ /\b$old#\d+: gracefully shutting down/;
    last if $told;
    sleep 0.05;
}
ok($told && !IO::Select->new($s)->can_read(0),
    sprintf 'the old worker was told to exit while the registration hashed '
    . '(%.1f s after the request)', time - $sent);

my $r = read_response($s);
is($r->{status}, 201, 'the registration in flight across the reload is '
    . 'answered: 201 (R76)') or diag($r->{raw} // '');

my $end = time + 10;
sleep 0.05 while kill(0, $old) && time < $end;
ok(!kill(0, $old), 'then the old worker exited');
my ($new) = $t->worker_pids;
ok($new && $new != $old, 'and a new worker serves');
my $names = join ',', map { $_->{username} } @{$t->admin_json('user', 'list')};
like($names, qr/\bmidreload\b/, 'the account in flight was made');

$t->done_testing;
