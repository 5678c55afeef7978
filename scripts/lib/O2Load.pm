package O2Load;

# Helpers shared by scripts/timing-client-auth, scripts/soak-lifecycle and
# scripts/soak-store-growth.  nginx itself is started and stopped by
# t/lib/OAuth2Test.pm; this file adds what the load scripts need on top:
#
#   * a keep-alive HTTP/1.1 client on one persistent socket (KA)
#   * forked workers that never run the parent's END blocks (spawn/reap)
#   * signal handling so that Ctrl-C / TERM still stops nginx and children
#   * percentiles, a duration guard, mdb_stat parsing, error.log counting
#
# Core Perl only.

use strict;
use warnings;

use Errno qw(EINTR EAGAIN);
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Socket qw(IPPROTO_TCP TCP_NODELAY SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO);
use Time::HiRes qw(sleep time);

our @CHILDREN;
our $IS_CHILD = 0;
my $PARENT_PID = $$;

############################################################ setup

# INT/TERM/HUP in the parent: exit through END blocks, so that children are
# killed (below) and OAuth2Test stops nginx.  A hard wall-clock alarm bounds
# the whole script even if something hangs.
sub setup_parent {
    my (%o) = @_;
    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub {
            print STDERR "\n$0: caught SIG$sig, stopping\n";
            exit 130;
        };
    }
    $SIG{PIPE} = 'IGNORE';
    if (my $limit = $o{hard_limit}) {
        $SIG{ALRM} = sub {
            print STDERR "$0: hard time limit of ${limit}s reached, "
                . "stopping\n";
            exit 3;
        };
        alarm $limit;
    }
    $| = 1;
}

# DURATION from the environment: a positive integer of seconds, capped
sub duration {
    my ($default, $max) = @_;
    my $d = $ENV{DURATION} // $default;
    die "DURATION must be a positive integer of seconds (got '$d')\n"
        unless defined $d && $d =~ /^[1-9][0-9]*$/;
    die "DURATION $d exceeds the cap of $max seconds\n" if $d > $max;
    return $d;
}

sub env_int {
    my ($name, $default, $min, $max) = @_;
    my $v = $ENV{$name} // $default;
    die "$name must be an integer in $min..$max (got '$v')\n"
        unless $v =~ /^[0-9]+$/ && $v >= $min && $v <= $max;
    return $v;
}

############################################################ children

# spawn(sub { ... }): fork; the child runs the code and leaves with
# POSIX::_exit so that no END block (OAuth2Test's nginx stop, File::Temp's
# cleanup, ours) runs in it.  Returns the child's pid.
sub spawn {
    my ($code) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $IS_CHILD = 1;
        @CHILDREN = ();
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP ALRM);
        $SIG{PIPE} = 'IGNORE';
        alarm 0;
        my $rc = eval { $code->(); 1 } ? 0 : 1;
        print STDERR "child $$: $@" if $rc;
        close STDOUT;
        close STDERR;
        POSIX::_exit($rc);
    }
    push @CHILDREN, $pid;
    return $pid;
}

# waits for the children (up to $timeout s), then TERM/KILLs the rest;
# returns the number of children that failed
sub reap {
    my ($timeout) = @_;
    $timeout //= 30;
    my $end = time + $timeout;
    my $failed = 0;
    my %left = map { $_ => 1 } @CHILDREN;
    while (%left && time < $end) {
        for my $pid (keys %left) {
            my $r = waitpid $pid, POSIX::WNOHANG();
            next unless $r == $pid || $r == -1;
            $failed++ if $r == $pid && $?;
            delete $left{$pid};
        }
        sleep 0.05 if %left;
    }
    for my $pid (keys %left) {
        print STDERR "child $pid did not finish in ${timeout}s: killing\n";
        kill 'KILL', $pid;
        waitpid $pid, 0;
        $failed++;
    }
    @CHILDREN = ();
    return $failed;
}

END {
    if (!$IS_CHILD && $$ == $PARENT_PID && @CHILDREN) {
        local $?;
        kill 'TERM', @CHILDREN;
        my $end = time + 3;
        for my $pid (@CHILDREN) {
            while (time < $end) {
                last if waitpid($pid, POSIX::WNOHANG()) != 0;
                sleep 0.02;
            }
            if (kill 0, $pid) { kill 'KILL', $pid; waitpid $pid, 0 }
        }
        @CHILDREN = ();
    }
}

############################################################ HTTP

sub form_encode {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~ ])/sprintf('%%%02X', ord $1)/ge;
    $s =~ tr/ /+/;
    return $s;
}

sub basic {
    my ($id, $secret) = @_;
    return 'Basic ' . encode_base64(
        form_encode($id) . ':' . form_encode($secret), '');
}

# raw HTTP/1.1 request bytes (keep-alive unless close => 1)
sub raw_request {
    my (%o) = @_;
    my $raw = "$o{method} $o{path} HTTP/1.1\r\nHost: localhost\r\n";
    $raw .= "Connection: close\r\n" if $o{close};
    my @h = @{$o{headers} // []};
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        $raw .= "$k: $v\r\n";
    }
    if (defined $o{body}) {
        $raw .= "Content-Type: application/x-www-form-urlencoded\r\n"
            unless grep { /^content-type$/i } @{$o{headers} // []};
        $raw .= 'Content-Length: ' . length($o{body}) . "\r\n\r\n$o{body}";
    } else {
        $raw .= "\r\n";
    }
    return $raw;
}

sub token_request {
    my ($id, $secret, %o) = @_;
    return raw_request(method => 'POST', path => $o{path} // '/o/token/',
        headers => ['Authorization' => basic($id, $secret)],
        body => 'grant_type=client_credentials', close => $o{close});
}

sub revoke_request {
    my ($id, $secret, $token, %o) = @_;
    return raw_request(method => 'POST',
        path => $o{path} // '/o/revoke_token/',
        headers => ['Authorization' => basic($id, $secret)],
        body => 'token=' . form_encode($token), close => $o{close});
}

sub bearer_request {
    my ($token, %o) = @_;
    return raw_request(method => 'GET', path => $o{path} // '/protected/',
        headers => ['Authorization' => "Bearer $token"],
        close => $o{close});
}

# ---------------------------------------------------------------- KA client
#
#   my $c = O2Load::KA->new(port => $p);
#   my $r = $c->request($raw);     # {status, headers, body, pid, error}
#
# One persistent socket; reconnects when the server closed it (before the
# request is sent: transparently; after: the request fails with error set,
# it is never re-sent, so a failure is never hidden).

package O2Load::KA;

use Errno qw(EINTR);
use Socket qw(IPPROTO_TCP TCP_NODELAY SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO);

sub new {
    my ($class, %o) = @_;
    my $self = bless { port => $o{port}, timeout => $o{timeout} // 10,
        sock => undef, buf => '', connects => 0 }, $class;
    return $self;
}

sub reconnect {
    my ($self) = @_;
    $self->disconnect;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
        or return undef;
    binmode $s;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $tv = pack('l!l!', $self->{timeout}, 0);
    setsockopt($s, SOL_SOCKET, SO_RCVTIMEO, $tv);
    setsockopt($s, SOL_SOCKET, SO_SNDTIMEO, $tv);
    $self->{sock} = $s;
    $self->{buf} = '';
    $self->{connects}++;
    return $s;
}

sub disconnect {
    my ($self) = @_;
    CORE::close($self->{sock}) if $self->{sock};
    $self->{sock} = undef;
    $self->{buf} = '';
}

sub connected { defined $_[0]{sock} }

# a server that closed an idle keep-alive connection leaves a readable EOF
sub _stale {
    my ($self) = @_;
    my $rin = '';
    vec($rin, fileno $self->{sock}, 1) = 1;
    return select(my $rout = $rin, undef, undef, 0) > 0;
}

sub request {
    my ($self, $raw) = @_;
    if ($self->{sock} && $self->_stale) { $self->disconnect }
    if (!$self->{sock}) {
        $self->reconnect or return { status => 0, error => "connect: $!" };
    }
    my $s = $self->{sock};
    my $off = 0;
    while ($off < length $raw) {
        my $n = syswrite $s, $raw, length($raw) - $off, $off;
        if (!defined $n) {
            next if $! == EINTR;
            my $e = "write: $!";
            $self->disconnect;
            return { status => 0, error => $e };
        }
        $off += $n;
    }
    return $self->_read_response;
}

sub _fill {
    my ($self) = @_;
    while (1) {
        my $n = sysread $self->{sock}, $self->{buf}, 65536,
            length $self->{buf};
        return $n if defined $n;
        next if $! == EINTR;
        return undef;
    }
}

sub _read_response {
    my ($self) = @_;
    my $head_end;
    while (($head_end = index $self->{buf}, "\r\n\r\n") < 0) {
        my $n = $self->_fill;
        if (!$n) {
            my $e = defined $n ? 'eof before response'
                : ($!{EAGAIN} || $!{EWOULDBLOCK}) ? 'timeout' : "read: $!";
            $self->disconnect;
            return { status => 0, error => $e };
        }
    }
    my $head = substr $self->{buf}, 0, $head_end + 4, '';
    my ($status) = $head =~ m{^HTTP/\d\.\d (\d{3})};
    my %h;
    for my $l (split /\r\n/, $head) {
        my ($k, $v) = $l =~ /^([^:\s]+):\s*(.*?)\s*$/ or next;
        $h{lc $k} = $v;
    }
    my $body = '';
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my $le;
            while (($le = index $self->{buf}, "\r\n") < 0) {
                my $n = $self->_fill;
                if (!$n) { $self->disconnect; return { status => 0,
                    error => 'eof in chunked body' } }
            }
            my $line = substr $self->{buf}, 0, $le + 2, '';
            my $len = hex(($line =~ /^([0-9a-fA-F]+)/)[0] // 0);
            while (length $self->{buf} < $len + 2) {
                my $n = $self->_fill;
                if (!$n) { $self->disconnect; return { status => 0,
                    error => 'eof in chunked body' } }
            }
            $body .= substr $self->{buf}, 0, $len, '';
            substr $self->{buf}, 0, 2, '';
            last if $len == 0;
        }
    } else {
        my $len = $h{'content-length'} // 0;
        while (length $self->{buf} < $len) {
            my $n = $self->_fill;
            if (!$n) { $self->disconnect; return { status => 0,
                error => 'eof in body' } }
        }
        $body = substr $self->{buf}, 0, $len, '';
    }
    $self->disconnect if ($h{connection} // '') =~ /close/i;
    return { status => $status // 0, headers => \%h, body => $body,
        pid => $h{'x-pid'} };
}

package O2Load;

# access_token from a token response body (no JSON parse needed)
sub token_of {
    my ($body) = @_;
    return $body =~ /"access_token"\s*:\s*"([^"]+)"/ ? $1 : undef;
}

############################################################ statistics

# nearest-rank percentile of a sorted array ref
sub pct {
    my ($sorted, $p) = @_;
    return undef unless @$sorted;
    my $i = int($p / 100 * @$sorted + 0.999999) - 1;
    $i = 0 if $i < 0;
    $i = $#$sorted if $i > $#$sorted;
    return $sorted->[$i];
}

sub median {
    my ($sorted) = @_;
    my $n = @$sorted or return undef;
    return $n % 2 ? $sorted->[($n - 1) / 2]
        : ($sorted->[$n / 2 - 1] + $sorted->[$n / 2]) / 2;
}

sub mean {
    my ($a) = @_;
    return undef unless @$a;
    my $s = 0;
    $s += $_ for @$a;
    return $s / @$a;
}

############################################################ LMDB

# runs a command, returns (exit code, stdout+stderr)
sub run_cmd {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $code = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($code, $out);
}

# mdb_stat -r: list of { pid, thread, txnid }
sub reader_table {
    my ($store) = @_;
    my ($code, $out) = run_cmd('mdb_stat', '-r', $store);
    # mdb_stat -r exits 1 whenever it listed a reader (it returns the last
    # fputs() value): judge by the output, not the status
    die "mdb_stat -r $store failed ($code): $out"
        unless $out =~ /^Reader Table Status/m;
    my @r;
    for my $l (split /\n/, $out) {
        next unless $l =~ /^\s*(\d+)\s+([0-9a-fA-Fx]+)\s+(\S+)\s*$/;
        push @r, { pid => $1, thread => $2, txnid => $3 };
    }
    return (\@r, $out);
}

sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid;
    return 1 if kill 0, $pid;
    return $!{EPERM} ? 1 : 0;
}

# mdb_stat -ef (environment info, freelist) and -a (per-database entries)
sub store_info {
    my ($store) = @_;
    my %i;
    my ($code, $out) = run_cmd('mdb_stat', '-ef', $store);
    die "mdb_stat -ef $store failed ($code): $out" if $code;
    $i{map_size} = $1 if $out =~ /Map size:\s*(\d+)/;
    $i{page_size} = $1 if $out =~ /Page size:\s*(\d+)/;
    $i{max_pages} = $1 if $out =~ /Max pages:\s*(\d+)/;
    $i{pages_used} = $1 if $out =~ /Number of pages used:\s*(\d+)/;
    $i{last_txnid} = $1 if $out =~ /Last transaction ID:\s*(\d+)/;
    $i{readers_used} = $1 if $out =~ /Number of readers used:\s*(\d+)/;
    $i{free_pages} = $1 if $out =~ /Free pages:\s*(\d+)/;
    $i{raw_e} = $out;
    ($code, $out) = run_cmd('mdb_stat', '-a', $store);
    die "mdb_stat -a $store failed ($code): $out" if $code;
    my $db;
    for my $l (split /\n/, $out) {
        $db = $1 if $l =~ /^Status of (\S+)/;
        $db = '(main)' if $l =~ /^Status of Main DB/;
        $i{entries}{$db} = $1 if defined $db && $l =~ /Entries:\s*(\d+)/;
        $i{db_pages}{$db} += $1
            if defined $db && $l =~ /(?:Branch|Leaf|Overflow) pages:\s*(\d+)/;
    }
    my @st = stat "$store/data.mdb";
    $i{file_size} = $st[7] // 0;
    $i{file_alloc} = ($st[12] // 0) * 512;
    return \%i;
}

############################################################ error.log

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar(<$fh>) // '';
}

1;
