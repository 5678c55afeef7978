# R8: a request body an endpoint takes (a password, a client secret, a
# refresh token) never goes to a temporary file, whatever the server's
# own settings for uploads: client_body_in_file_only on (which keeps the
# file for ever) and a small client_body_buffer_size at http level
# leave the endpoints' bodies in memory; other locations keep them.  Nor
# does a body of no declared length (chunked; HTTP/2 without
# content-length) or of many small chunks, which fill nginx's buffer
# before their end: nginx would write what it holds to a temporary file
# (unlinked at once, so only a worker's open descriptors show it).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'pw', grant => 'password', scope => 'read');
add_user($t, 'ada', 'Ada-Lovelace-Engine-1');
my $h2 = $t->port('h2');
my $http = $t->default_http(
    extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n"
        . "client_body_in_file_only on;\nclient_body_buffer_size 1k;\n",
    extra_server => <<'EOF');
    location = /upload { proxy_pass http://127.0.0.1:%%PORT%%/echo; }
    location = /echo { return 204; }
EOF
# the same server on an HTTP/2 (cleartext, prior knowledge) listener too
$http =~ s/(listen 127\.0\.0\.1:%%PORT%% reuseport;)/$1\n    listen 127.0.0.1:$h2 http2;/
    or die 'no listen line';
$t->write_config($http, workers => 1)->run;
my $tmp = $t->dir . '/client_body_temp';
sub temp_files {
    my @f;
    require File::Find;
    File::Find::find(sub { push @f, $File::Find::name if -f $_ }, $tmp) if -d $tmp;
    return @f;
}

# a body over the http level's 1k buffer
my $pad = 'x' x 3000;
my $r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => 'ada', password => 'Ada-Lovelace-Engine-1', pad => $pad),
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
is($r->{status}, 200, 'a password grant of a 3 KB body: 200') or diag($r->{body});
is(scalar(temp_files()), 0, 'no temporary file holds its body (the password)');

# the server's own location still spools as configured: the test can tell
$r = $t->request('POST', '/upload', body => "upload=$pad",
    headers => ['Content-Type' => 'application/x-www-form-urlencoded']);
is($r->{status}, 204, 'an upload location: 204');
cmp_ok(scalar(temp_files()), '>=', 1,
    '... whose body client_body_in_file_only on keeps in a file, as configured');

# the workers' open descriptors that name a file of the temporary
# directory (deleted or not)
sub open_temp_files {
    my @f;
    for my $pid ($t->worker_pids) {
        opendir(my $dh, "/proc/$pid/fd") or next;
        for my $fd (grep { /^\d+$/ } readdir $dh) {
            my $to = readlink("/proc/$pid/fd/$fd") // next;
            push @f, $to if index($to, $tmp) == 0;
        }
        closedir $dh;
    }
    return @f;
}

# A chunked request written but for its last chunk, on a socket of its
# own: nginx has read all it was sent, and waits.  Then what the worker
# holds open, the last chunk, and the answer.
sub chunked_held {
    my ($body, $size, $name) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port, Proto => 'tcp') or die "connect: $!";
    binmode $s;
    my $all = OAuth2Test::chunked($body, $size);
    my $last = "0\r\n\r\n";
    substr($all, -length($last)) = '';
    print $s "POST /o/token/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nTransfer-Encoding: chunked\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . 'Authorization: ' . $t->basic($app->{client_id}, $app->{client_secret})
        . "\r\n\r\n" . $all;
    select(undef, undef, undef, 0.5);
    is_deeply([open_temp_files()], [],
        "$name: while its last chunk is awaited, no worker holds a temporary "
        . 'file (R8)');
    print $s $last;
    my ($r) = OAuth2Test::read_async($s);
    return $r;
}

my $form = OAuth2Test::form(grant_type => 'password', username => 'ada',
    password => 'Ada-Lovelace-Engine-1', pad => 'y' x 4000);
# 4 KB in chunks of 1 byte: some 24 KB on the wire, past nginx's buffer
$r = chunked_held($form, 1, 'a 4 KB body in 1-byte chunks');
is($r->{status}, 200, '... then answered 200: the body read whole')
    or diag($r->{raw});
ok($r->{json} && $r->{json}{access_token}, '... with an access token');

# 30 KB (over the endpoint's 16 KiB) in chunks of 1000 bytes
$r = chunked_held($form . ('z' x 26000), 1000, 'a 30 KB chunked body');
is($r->{status}, 413, '... then refused: 413') or diag($r->{raw});
is($r->{json} && $r->{json}{error}, 'invalid_request',
    '... as the endpoint answers a body too large');

# HTTP/2 without content-length: curl reads the body from a pipe held
# open
sub h2_held {
    my ($body, $name) = @_;
    my $out = $t->dir . '/h2.out';
    open(my $c, '|-', 'curl', '-s', '--http2-prior-knowledge', '-X', 'POST',
        '-T', '-', '-o', $out,
        '-H', 'Content-Type: application/x-www-form-urlencoded',
        '-H', 'Authorization: '
            . $t->basic($app->{client_id}, $app->{client_secret}),
        "http://127.0.0.1:$h2/o/token/") or die "curl: $!";
    $c->autoflush(1);
    print $c $body;
    select(undef, undef, undef, 1);
    is_deeply([open_temp_files()], [],
        "$name: while the stream is open, no worker holds a temporary file "
        . '(R8)');
    close $c;
    return OAuth2Test::_slurp($out);
}
my $got = h2_held($form . ('z' x 26000), 'HTTP/2, a 30 KB body of no length');
like($got, qr/"error"\s*:\s*"invalid_request"/,
    '... then refused as too large, in the endpoint\'s shape');
$got = h2_held($form, 'HTTP/2, a 4 KB body of no length');
like($got, qr/"access_token"/, '... then answered with a token');

$t->done_testing;
