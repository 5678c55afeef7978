# oauth2-admin serve as a process (issue 3 items 1 and "what must hold";
# docs/security.md R69, R70): loopback or unix socket only, a unix socket nginx
# proxies to, stale sockets, body caps, the request log, SIGTERM that
# finishes the request in flight, and no lost or torn write across
# SIGTERM and kill -9 mid-load.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dir = $t->dir;

######################################################## --listen (R69)

my $p = $t->daemon_port;
for my $bad ("0.0.0.0:$p", "192.0.2.1:$p", "[::]:$p", "[2001:db8::1]:$p",
    "[::ffff:127.0.0.1]:$p", "localhost:$p", "$p", ":$p", '127.0.0.1:0',
    '127.0.0.1:65536', '127.0.0.1:', 'unix:', "http://127.0.0.1:$p")
{
    my ($code, $out, $err) = $t->admin_within(10, 'serve', '--listen', $bad);
    is($code, 2, "--listen $bad: refused, exit 2");
}
my ($code, $out, $err) = $t->admin('serve', '--listen', "0.0.0.0:$p");
like($err, qr/not a loopback address.*R69/,
    '--listen 0.0.0.0: the message says why (R69)');
($code, $out, $err) = $t->admin('serve');
is($code, 2, 'serve without --listen: exit 2');
for my $o (['--page-size', 0], ['--page-size', 'x'],
    ['--pbkdf2-iterations', 5], ['--pbkdf2-iterations', '1e6'],
    ['--hash-limit', '0/4'], ['--hash-limit', '65/4'], ['--hash-limit', '2'],
    ['--hash-limit', '2/1000'], ['--hash-limit', '64/65'],
    ['--auth-limit', '5/0'], ['--auth-limit', '0/60'],
    ['--auth-limit', '5/86401'], ['--account-limit', '100001/60'],
    ['--session-idle', 0], ['--session-idle', 86401], ['--session-idle', '30m'],
    ['--session-max', 0], ['--session-max', 604801])
{
    ($code) = $t->admin_within(10, 'serve', '--listen', "127.0.0.1:$p", @$o);
    is($code, 2, "@$o: exit 2");
}
($code, $out, $err) = $t->admin_within(10, 'serve', '--listen',
    "127.0.0.1:$p", '--session-idle', 86401);
like($err, qr/--session-idle: '86401' is not a number of seconds from 1 to 86400/,
    '--session-idle 86401: the message gives the range');
# a unix socket path longer than sun_path's 107 bytes would be cut short
($code, $out, $err) = $t->admin_within(10, 'serve', '--listen',
    'unix:/tmp/' . ('s' x 103));
is($code, 2, '--listen unix:<a path of 108 bytes>: exit 2');
like($err, qr/longer than 107 bytes/, 'it says the limit');
ok(!-e $t->store, 'a refused command line never creates the store');

######################################################## nginx + daemon

my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $sock_dir = "$dir/run";
mkdir $sock_dir or die "mkdir: $!";
my $sock = "$sock_dir/admin.sock";
$t->write_config($t->default_http(
    extra_server => $t->daemon_locations("http://unix:$sock:")))->run;
# nginx's master gave the store to the workers' user; a daemon run as
# root becomes that user, and its socket is theirs
my ($wuid, $wgid) = (stat $t->store)[4, 5];
chown $wuid, $wgid, $sock_dir or die "chown: $!";
my $admin = $t->access_token($admin_app, scope => 'read write admin');
my @secrets = ($admin);

$t->run_daemon('--listen', "unix:$sock", '--pbkdf2-iterations', 1000);
my @st = stat $sock;
ok(-S $sock, 'unix:<path> creates a socket');
is(sprintf('%o', $st[2] & 07777), '660', 'the socket has mode 0660');
is($st[4], $wuid, 'the socket belongs to the store\'s owner (the workers)');

# raw HTTP over the unix socket
sub unix_get {
    my ($path, @h) = @_;
    my $s = IO::Socket::UNIX->new(Peer => $sock, Type => SOCK_STREAM)
        or return { status => 0, error => "$!" };
    my $req = "GET $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n";
    while (@h) { my ($k, $v) = splice @h, 0, 2; $req .= "$k: $v\r\n" }
    print $s "$req\r\n";
    local $/;
    my $raw = <$s> // '';
    close $s;
    return OAuth2Test::parse_response($raw);
}
my $r = unix_get('/api/users/');
is($r->{status}, 401, 'a request over the unix socket: 401 without a token');
is($r->{json}{detail}, 'Authentication credentials were not provided.',
    'in the API\'s JSON shape');
$r = unix_get('/api/applications/', Authorization => "Bearer $admin");
is($r->{status}, 200, 'with the admin token: 200');
$r = $t->api('GET', '/api/applications/', token => $admin);
is($r->{status}, 200, 'nginx proxies to the unix socket: 200');
is($r->{json}{count}, 1, 'and the list has the admin application');

# a second daemon on a live socket refuses; the first keeps serving
($code, $out, $err) = $t->admin('serve', '--listen', "unix:$sock");
is($code, 1, 'a second daemon on a live socket: exit 1');
like($err, qr/another process listens/, 'it says why');
is(unix_get('/api/users/')->{status}, 401, 'the first still answers');

# kill -9 leaves a stale socket file: the next start replaces it
is($t->stop_daemon(signal => 'KILL'), 128 + 9, 'kill -9 the daemon');
ok(-S $sock, 'kill -9 leaves the socket file');
$t->run_daemon('--listen', "unix:$sock", '--pbkdf2-iterations', 1000);
is(unix_get('/api/users/')->{status}, 401,
    'a restart replaces the stale socket and serves');
is($t->stop_daemon, 0, 'SIGTERM: exit 0');
ok(-S $sock, 'a clean stop leaves the socket file (nginx: "refused", '
    . 'not "no such file" at crit)');
unlink $sock;

# a file that is not a socket is never replaced
open my $fh, '>', $sock or die "$sock: $!";
print $fh "keep me\n";
close $fh;
($code, $out, $err) = $t->admin('serve', '--listen', "unix:$sock");
is($code, 1, 'a regular file at the socket path: exit 1');
like($err, qr/not a socket/, 'it says why');
is(OAuth2Test::_slurp($sock), "keep me\n", 'and the file is untouched');
unlink $sock;

######################################################## TCP, 127/8, [::1]

$t->run_daemon('--listen', '127.0.0.2:' . $t->daemon_port,
    '--pbkdf2-iterations', 1000);
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.2',
        PeerPort => $t->daemon_port, Proto => 'tcp');
    print $s "GET /api/users/ HTTP/1.0\r\n\r\n" if $s;
    local $/;
    my $raw = $s ? <$s> // '' : '';
    is(OAuth2Test::parse_response($raw)->{status}, 401,
        '--listen 127.0.0.2 (in 127.0.0.0/8) serves');
}
is($t->stop_daemon(signal => 'INT'), 0, 'SIGINT: exit 0');
SKIP: {
    my $probe = eval {
        require IO::Socket::IP;
        IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0, Listen => 1);
    };
    skip 'no IPv6 loopback here', 1 unless $probe;
    close $probe;
    $t->run_daemon('--listen', '[::1]:' . $t->daemon_port,
        '--pbkdf2-iterations', 1000);
    is($t->stop_daemon, 0, '--listen [::1]:<port> serves and stops');
}

######################################################## HTTP hygiene

$t->run_daemon('--pbkdf2-iterations', 1000);
my $dp = $t->daemon_port;
for my $path ('/', '/api/', '/api/users/1/x/', '/auth/me', '/admin/') {
    $r = $t->api('GET', $path, port => $dp);
    is($r->{status}, 404, "GET $path: 404");
    is($r->{json}{detail}, 'Not found.', "GET $path: {\"detail\": ...}");
}
$r = $t->api('POST', '/api/users/', token => $admin, port => $dp,
    body => '{"username": "' . 'a' x (1 << 20) . '"}');
is($r->{status}, 413, 'a 1 MiB body to the daemon itself: 413');
like($r->{json}{detail} // '', qr/65536/, 'the 413 says the limit');
# asked to keep the connection, the daemon still closes it after a 413
{
    my $big = 'x' x (100 * 1024);
    my $k = $t->http("POST /api/users/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $admin\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($big) . "\r\n"
        . "Connection: keep-alive\r\n\r\n$big", port => $dp, timeout => 5);
    is($k->{status}, 413, 'a 100 KiB body on a kept-alive connection: 413');
    is(OAuth2Test::header($k, 'Connection'), 'close',
        'the 413 says Connection: close');
    ok(!$k->{timeout}, 'and the daemon closes the connection');
}
# the cap's edge: 65536 bytes are read (and answered for what they say),
# one more is refused
for my $n (65536, 65537) {
    my $body = '{"username": "edge"}';
    $body .= ' ' x ($n - length $body);
    $r = $t->api('POST', '/api/users/', token => $admin, port => $dp,
        body => $body);
    if ($n == 65536) {
        is($r->{status}, 400, 'a body of exactly 65536 bytes is read: 400 '
            . 'for what it lacks, not 413');
        ok($r->{json}{password}, 'and the 400 names the missing password');
    } else {
        is($r->{status}, 413, 'a body of 65537 bytes: 413');
    }
}
$r = $t->api('POST', '/api/users/', token => $admin, port => $dp,
    headers => ['Content-Length' => 20 << 20], no_length => 1,
    body => 'x' x 1000, timeout => 5);
is($r->{status}, 413, 'a declared 20 MiB body: 413 at once');
$r = $t->api('POST', '/api/users/', token => $admin, port => $dp,
    headers => ['Transfer-Encoding' => 'chunked'],
    body => OAuth2Test::chunked('x' x 70000));
is($r->{status}, 413, 'a chunked body over 64 KiB: 413');
$r = $t->api('HEAD', '/api/users/', token => $admin, port => $dp);
is($r->{status}, 200, 'HEAD /api/users/: 200');
is($r->{body}, '', 'HEAD: no body');
$r = $t->api('GET', '/api/users/?page=1&password=hunter2&token=xyz',
    token => $admin, port => $dp);
is($r->{status}, 200, 'a query string with secrets: 200');
$r = $t->api('GET', '/api/users/', port => $dp,
    headers => [Authorization => 'Bearer one', Authorization => 'Bearer two']);
is($r->{status}, 401, 'two Authorization headers: 401');
$r = $t->api('GET', '/api/users/', port => $dp, headers => [
    Authorization => "Bearer $admin", Authorization => 'Bearer two']);
is($r->{status}, 401, 'two Authorization headers, the first a good token: 401');
$r = $t->api('GET', '/api/users/', port => $dp, token => $admin,
    api_key => $admin);
is($r->{status}, 401, 'Bearer and X-API-KEY together: 401');
# a target with a quote and a backslash: the log line shows them escaped,
# so a path cannot close the quoted field (control bytes too)
$r = $t->http("GET /x\"y\\z HTTP/1.1\r\nHost: a\r\n"
    . "Connection: close\r\n\r\n", port => $dp);
is($r->{status}, 404, 'a path with a quote and a backslash: 404');
is($t->stop_daemon, 0, 'the daemon stops');
my $log = OAuth2Test::_slurp($t->daemon_log);
like($log, qr{"GET /api/users/" 200 \d+ms}, 'one log line per request: '
    . 'method, path, status, time');
like($log, qr{"GET /x\\x22y\\x5Cz" 404 \d+ms},
    'the log escapes a path\'s quotes and backslashes');
unlike($log, qr/hunter2|xyz|page=/, 'the log never holds the query string');

######################################################## --hash-limit (R88)

# the pages' sign-ins hash a few at a time as the API does: with one
# running and one waiting, the third of three slow sign-ins at once is
# refused with 503, and the two others sign in
my $slow_pw = 'Slow-hash-sign-in-53';
$t->admin_json('user', 'add', '--username', 'hasher', '--email',
    'hasher@example.com', '--password', $slow_pw, '--pbkdf2-iterations',
    2000000, '--staff');
push @secrets, $slow_pw;
# (the daemon at the user's own 2000000: a sign-in rehashes a hash of
# other iterations, after which a sign-in that checked the old one fails)
$t->run_daemon('--pbkdf2-iterations', 2000000, '--hash-limit', '1/1');
{
    my $g = $t->request('GET', '/o/applications/login/', port => $dp);
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my $body = OAuth2Test::form(csrf => $csrf, username => 'hasher',
        password => $slow_pw);
    my $raw = "POST /o/applications/login/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nCookie: oauth2_csrf=$csrf\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    my @r = OAuth2Test::race_raw([map { [$dp, $raw] } 1 .. 3]);
    is(join(' ', sort map { $_->{status} } @r), '303 303 503',
        'three slow sign-ins at the pages at once, --hash-limit 1/1: two '
        . 'sign in, one 503 (R88)');
    my ($busy) = grep { $_->{status} == 503 } @r;
    is($busy ? OAuth2Test::header($busy, 'Retry-After') : undef, '1',
        'the 503 says Retry-After: 1');
}
is($t->stop_daemon, 0, 'the daemon stops');

######################################################## SIGTERM in flight

# a slow hash keeps a create in flight while SIGTERM arrives: it completes
my @unix = ('--listen', "unix:$sock");
$t->run_daemon(@unix, '--pbkdf2-iterations', 3000000);
my $res = "$dir/inflight.json";
my $kid = fork // die "fork: $!";
if (!$kid) {
    my $r = $t->api('POST', '/api/users/', token => $admin, timeout => 30,
        json => { username => 'slow', password => 'slow-password',
            email => 'slow@example.com' });
    open my $o, '>', $res or POSIX::_exit(1);
    print $o "$r->{status}\n";
    close $o;
    POSIX::_exit(0);
}
sleep 0.5;
my $t0 = time;
is($t->stop_daemon(timeout => 40), 0,
    'SIGTERM during a create: the daemon exits 0');
waitpid $kid, 0;
is(OAuth2Test::_slurp($res), "201\n",
    'the create in flight got its 201 (finished before the exit)');
like(OAuth2Test::_slurp($t->daemon_log),
    qr/stopping on SIGTERM[^\n]*\n[^\n]*"POST \/api\/users\/" 201/,
    'the daemon logged the 201 after "stopping on SIGTERM"');
push @secrets, 'slow-password';

######################################################## no lost write

# $n loops creating users through nginx; each 201 is written to a file
sub create_loops {
    my ($n, $tag) = @_;
    my @kids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $o, '>>', "$dir/acked.$tag.$i" or POSIX::_exit(1);
            $o->autoflush(1);
            my $fails = 0;
            for my $k (1 .. 100000) {
                my $name = "$tag${i}x$k";
                my $r = $t->api('POST', '/api/users/', token => $admin,
                    json => { username => $name, password => 'Tr0ub4dor-and-3',
                        email => "$name\@example.com" });
                if ($r->{status} == 201) {
                    print $o "$name\n";
                } elsif ($r->{status} == 502 || $r->{status} == 0) {
                    last if ++$fails > 50;
                    sleep 0.01;
                } else {
                    print $o "UNEXPECTED $r->{status} $r->{body}\n";
                }
            }
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    return @kids;
}
sub acked {
    my ($tag) = @_;
    my (@names, @weird);
    for my $f (glob "$dir/acked.$tag.*") {
        for (split /\n/, OAuth2Test::_slurp($f)) {
            if (/^UNEXPECTED/) { push @weird, $_ } else { push @names, $_ }
        }
    }
    return (\@names, \@weird);
}
sub check_all_acked {
    my ($tag, $how) = @_;
    my ($names, $weird) = acked($tag);
    ok(@$names >= 5, "$how: the loops got 201s before (" . @$names . ')');
    is_deeply($weird, [], "$how: every answer was a 201 or the daemon "
        . 'being gone (502)');
    $t->run_daemon(@unix, '--pbkdf2-iterations', 1000);
    my %have = map { $_->{username} => $_ } @{$t->api_all('/api/users/',
        $admin)};
    my @lost = grep { !$have{$_} } @$names;
    is_deeply(\@lost, [], "$how: every 201-acknowledged user exists after "
        . 'a restart (R70)');
    my @torn = grep {
        my $u = $have{$_};
        !($u->{email} eq "$_\@example.com" && $u->{is_active})
    } grep { /^$tag/ } keys %have;
    is_deeply(\@torn, [], "$how: every record is whole");
    my $one = (grep { /^$tag/ } sort keys %have)[0];
    is($t->api('GET', "/api/users/$have{$one}{id}/",
        token => $admin)->{status}, 200, "$how: a record reads back");
}

$t->run_daemon(@unix, '--pbkdf2-iterations', 1000);
my @kids = create_loops(4, 'term');
sleep 1.5;
is($t->stop_daemon, 0, 'SIGTERM during a create load: exit 0');
waitpid $_, 0 for @kids;
check_all_acked('term', 'SIGTERM mid-load');

@kids = create_loops(4, 'kill');
sleep 1.5;
is($t->stop_daemon(signal => 'KILL'), 128 + 9, 'kill -9 during a create load');
waitpid $_, 0 for @kids;
check_all_acked('kill', 'kill -9 mid-load');

is($t->stop_daemon, 0, 'the daemon stops');
$t->daemon_log_ok(@secrets, 'Tr0ub4dor-and-3');
$t->done_testing;
