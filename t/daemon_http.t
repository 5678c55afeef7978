# The admin daemon's HTTP layer (oauth2-admin serve; docs/security.md R69,
# R70): what a client can make it write to its log (a path cut at 200
# bytes, every byte outside printable ASCII escaped, in its own lines and
# in libmicrohttpd's), the --listen ports it refuses, a request refused
# with 413 that never reaches the API, a connection that sends nothing
# and one whose refused body never ends (both closed, so that no client
# holds the daemon's threads), the nosniff of every JSON answer, and the
# consent routes that end where the client_id's segment does.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dp = $t->daemon_port;

######################################################## --listen (R69)

# a port that is not all digits, or more than 5 of them, is refused
# (exit 2) rather than read as another number: "80a" would listen on 849,
# 2^32 + <port> on <port> (a number read into 32 bits wraps around), not
# on what the operator wrote; one that serves instead is killed after 10 s
for my $bad ('127.0.0.1:80a', '127.0.0.1:8a0', '127.0.0.1:' . (2**32 + $dp)) {
    my ($code, $out, $err) = $t->admin_within(10, 'serve', '--listen', $bad);
    is($code, 2, "--listen $bad: refused, exit 2");
    like($err, qr/the port must be 1 to 65535/, "--listen $bad: it says why");
}

######################################################## nginx + daemon

# nginx only makes the consent below (the authorization endpoint); the
# requests go straight to the daemon's port
my $CB = 'https://client.example/cb';
OAuth2Authorize::user_add($t, 'dora', 'Tr0ub4dor-and-3');
my $web = $t->new_app(name => 'web', grant => ['authorization_code'],
    redirect_uris => [$CB]);
my $doomed = $t->new_app(name => 'doomed');
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
my $admin = $t->issue_token($admin_app->{client_id},
    scope => 'read write admin');
$t->write_config(OAuth2Authorize::http_conf($t))->run;
my $f = OAuth2Authorize->new($t);
my $q = OAuth2Authorize::query(response_type => 'code',
    client_id => $web->{client_id}, redirect_uri => $CB, scope => 'read',
    state => 'st-1');
$f->code($q, $f->login($q, 'dora', 'Tr0ub4dor-and-3'));

$t->run_daemon('--pbkdf2-iterations', 1000);

# a connection that sends nothing, opened now and looked at last: the
# daemon closes it after 30 s idle, else 256 of them would hold every
# connection slot and refuse nginx's requests for good
my $idle = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $dp,
    Proto => 'tcp') or die "connect: $!";
my $idle_since = time;

# the daemon's log line of a request, once written (after the answer)
sub log_line_of {
    my ($re) = @_;
    for (1 .. 100) {
        my ($line) = grep { /$re/ } split /\n/,
            OAuth2Test::_slurp($t->daemon_log);
        return $line if defined $line;
        sleep 0.02;
    }
    return undef;
}

######################################################## nosniff

# every JSON answer says nosniff: an answer that quotes input (a 400's
# field errors, a name) is never sniffed into HTML by a browser
my $r = $t->api('GET', '/api/users/', token => $admin, port => $dp);
is($r->{status}, 200, 'GET /api/users/: 200');
is(OAuth2Test::header($r, 'X-Content-Type-Options'), 'nosniff',
    '... X-Content-Type-Options: nosniff');
$r = $t->api('GET', '/api/no-such-thing/', port => $dp);
is($r->{status}, 404, 'GET of an unknown path: 404');
is(OAuth2Test::header($r, 'X-Content-Type-Options'), 'nosniff',
    '... X-Content-Type-Options: nosniff');
$r = $t->api('POST', '/api/users/', token => $admin, port => $dp,
    json => { username => '<script>' });
is($r->{status}, 400, 'a create that quotes its input back: 400');
is(OAuth2Test::header($r, 'X-Content-Type-Options'), 'nosniff',
    '... X-Content-Type-Options: nosniff');

######################################################## the request log

# a path of 5000 bytes: its log line shows 200 of them and "...", so
# that one request of a megabyte's path does not write a megabyte's line
my $long = '/' . ('a' x 4999);
$r = $t->api('GET', $long, port => $dp);
is($r->{status}, 404, 'GET of a 5000-byte path: 404');
my $line = log_line_of(qr{"GET /aaaa}) // '';
like($line, qr{"GET /a{199}\.\.\." 404 \d+ms$},
    '... logged cut at 200 bytes, ending in "..."');
cmp_ok(length $line, '<', 300, '... in a line under 300 bytes');

# bytes 0x7F to 0xFF in the request line (DEL, a UTF-8 C1 control "CSI"):
# the log shows them escaped, so that a terminal reading the log takes no
# control sequence from a client, nor broken UTF-8
$r = $t->http("GET /x\x7F\xC2\x9By HTTP/1.1\r\nHost: a\r\n"
    . "Connection: close\r\n\r\n", port => $dp);
is($r->{status}, 404, 'a path with the raw bytes 7F C2 9B: 404');
$line = log_line_of(qr{"GET /x}) // '';
like($line, qr{"GET /x\\x7F\\xC2\\x9By" 404 \d+ms$},
    '... logged as \x7F\xC2\x9B');
unlike(OAuth2Test::_slurp($t->daemon_log), qr/[\x7F-\xFF]/,
    'the log holds no byte above 0x7E');

# libmicrohttpd's own lines: a request whose answer could not be sent
# (the client gone first) is logged with its path percent-decoded, "%0A"
# a newline, "%1B" an ESC.  Escaped as the request line is, they forge no
# line of the log and send no control sequence to the terminal reading
# it.  A second daemon, with t/lib/faultsend.c preloaded, fails every
# send while its trigger file exists: the client is gone at each request,
# without the race of a real one.
{
    my $u = OAuth2Test->new;
    my $shim = $u->dir . '/faultsend.so';
    system('cc', '-shared', '-fPIC', '-o', $shim,
        "$FindBin::Bin/lib/faultsend.c", '-ldl') == 0
        or BAIL_OUT('cannot build t/lib/faultsend.c (cc)');
    my $gone = $u->dir . '/gone';
    {
        # AddressSanitizer first among the preloaded libraries, for an
        # asan-built oauth2-admin (as t/store_faults.t)
        my (undef, $ldd) = $u->_run_cmd('/usr/bin/ldd', $OAuth2Test::ADMIN);
        my $asan = $ldd =~ /libasan/ ? `gcc -print-file-name=libasan.so` : '';
        chomp $asan;
        local $ENV{OAUTH2_SEND_FAULT_FILE} = $gone;
        local $ENV{LD_PRELOAD} = join ' ', grep { length } $asan, $shim;
        $u->run_daemon('--pbkdf2-iterations', 1000);
    }
    OAuth2Test::write_file($gone, '');
    my $r = $u->http("GET /x%0Aforged-line%1B[31m%C2%9Bz HTTP/1.1\r\n"
        . "Host: a\r\nConnection: close\r\n\r\n", port => $u->daemon_port);
    ok(!$r->{status}, 'a request whose answer cannot be sent: no answer');
    my $mhd;
    for (1 .. 100) {
        ($mhd) = grep { /Failed to send/ } split /\n/,
            OAuth2Test::_slurp($u->daemon_log);
        last if defined $mhd;
        sleep 0.02;
    }
    unlink $gone;
    my $want = 'http: Failed to send the response headers for the request '
        . 'for `/x\x0Aforged-line\x1B[31m\xC2\x9Bz\'';
    like($mhd // '', qr/^oauth2-admin: \S+ \Q$want\E/, 'libmicrohttpd\'s '
        . 'line of it: the path\'s newline, ESC and C1 CSI escaped');
    my $log = OAuth2Test::_slurp($u->daemon_log);
    unlike($log, qr/^forged-line/m, '... so that no line of the log is forged');
    unlike($log, qr/[\x00-\x09\x0B-\x1F\x7F-\xFF]/,
        '... and the log holds no control character nor byte above 0x7E');
    is($u->api('GET', '/api/no-such-thing/', port => $u->daemon_port)
        ->{status}, 404, 'the daemon answers again once sends work');
    is($u->stop_daemon, 0, 'that daemon stops');
}

######################################################## 413 (R70)

# a body over 64 KiB is refused before the API sees the request: a DELETE
# with a 100 KiB body answers 413 and deletes nothing (a client told 413
# takes it that nothing was done)
my $app_path = "/api/applications/$doomed->{client_id}/";
$r = $t->api('DELETE', $app_path, token => $admin, port => $dp,
    body => '{' . (' ' x (100 * 1024)) . '}');
is($r->{status}, 413, 'DELETE of an application with a 100 KiB body: 413');
$r = $t->api('GET', $app_path, token => $admin, port => $dp);
is($r->{status}, 200, '... the application is still there');
is($r->{json}{client_id}, $doomed->{client_id}, '... the same one');
is(scalar(grep { $_->{client_id} eq $doomed->{client_id} }
    @{$t->admin_json('app', 'list')}), 1, '... and app list shows it');

# a chunked body (no length said at first) past 64 KiB is read and
# dropped, so that a proxy that sent it reads the 413; but only up to
# 16 MiB: a body that goes on is cut off, else a client holds a thread of
# the daemon as long as it sends
{
    my $total = 48 << 20;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $dp,
        Proto => 'tcp') or die "connect: $!";
    binmode $s;
    local $SIG{PIPE} = 'IGNORE';
    syswrite $s, "POST /api/users/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $admin\r\nContent-Type: application/json\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n";
    my $chunk = sprintf("%x\r\n", 65536) . ('x' x 65536) . "\r\n";
    my $sel = IO::Select->new($s);
    my ($sent, $cut) = (0, 0);
    my $end = time + 30;
    while ($sent < $total && time < $end) {
        next unless $sel->can_write(1);
        my $n = syswrite $s, $chunk;
        if (!defined $n) { $cut = 1; last }
        $sent += 65536;    # a short write only on the last one before a cut
    }
    if (!$cut) {
        syswrite $s, "0\r\n\r\n";
        my $buf = '';
        if ($sel->can_read(10)) { sysread $s, $buf, 4096 }
        diag('after the whole body: '
            . (OAuth2Test::parse_response($buf)->{status} || 'no answer'));
    }
    close $s;
    ok($cut, 'a chunked body of 48 MiB: the daemon closes the connection '
        . 'before its end (' . int($sent >> 20) . ' MiB sent)');
    cmp_ok($sent, '>=', 16 << 20, '... after reading 16 MiB of it');
}
is($t->api('GET', '/api/users/', token => $admin, port => $dp)->{status},
    200, 'the daemon serves on');

######################################################## consents (R70)

# /api/users/<id>/consents/<client_id>/ ends at the client_id's segment:
# a URL that goes on past it is no consent's, 404, and revokes nothing
my $dora = $t->admin_json('user', 'show', 'dora')->{id};
my $consents = "/api/users/$dora/consents/";
sub listed {
    my $l = $t->api('GET', $consents, token => $admin, port => $dp);
    return join ' ', map { $_->{client_id} } @{$l->{json} // []};
}
is(listed(), $web->{client_id}, 'dora\'s consent to web is listed');
for my $tail ('x/', 'x', '/', "$web->{client_id}/") {
    my $path = "$consents$web->{client_id}/$tail";
    $r = $t->api('DELETE', $path, token => $admin, port => $dp);
    is($r->{status}, 404, "DELETE .../consents/<client_id>/$tail: 404");
}
is(listed(), $web->{client_id}, '... and the consent is still listed');
$r = $t->api('DELETE', "$consents$web->{client_id}/", token => $admin,
    port => $dp);
is($r->{status}, 204, 'DELETE .../consents/<client_id>/ itself: 204');
is(listed(), '', '... and it is gone');

######################################################## idle connection

# the connection opened at the start, that sent nothing: closed by the
# daemon within 35 s of its opening
{
    my $sel = IO::Select->new($idle);
    my $buf = '';
    my $closed = 0;
    while (time < $idle_since + 35) {
        next unless $sel->can_read($idle_since + 35 - time);
        my $n = sysread $idle, $buf, 4096, length $buf;
        if (!$n) { $closed = 1; last }
    }
    my $after = time - $idle_since;
    close $idle;
    ok($closed, sprintf('a connection that sends nothing is closed by the '
        . 'daemon (after %.0f s)', $after));
    cmp_ok($after, '>=', 25, '... once idle for its timeout (30 s), not at '
        . 'once');
}

is($t->stop_daemon, 0, 'the daemon stops');
$t->daemon_log_ok($admin, 'Tr0ub4dor-and-3');
$t->done_testing;
