package OAuth2Test;

# Black-box test harness for ngx_http_oauth2_module, modelled on
# nginx-tests' Test::Nginx.  Core Perl only.
#
#   my $t = OAuth2Test->new;
#   my $app = $t->new_app;
#   $t->write_config($http_block)->run;
#   my $r = $t->token($app->{client_id}, $app->{client_secret});
#   ...
#   $t->done_testing;     # stops nginx, checks error.log, done_testing()
#
# KEEP=1 keeps the temp dir; VERBOSE=1 prints it.

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno ();
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Socket ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $NGINX = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $MODULE = $ENV{TEST_OAUTH2_MODULE}
    || "$ROOT/build/ngx_http_oauth2_module.so";
our $ADMIN = $ENV{TEST_OAUTH2_ADMIN} || "$ROOT/build/oauth2-admin";

my @INSTANCES;
my $JSON = JSON::PP->new->canonical;

# The default server block most tests use.
our $DEFAULT_SERVER = <<'EOF';
oauth2_store %%STORE%%;
oauth2_issuer http://127.0.0.1:%%PORT%%;
server {
    # reuseport: the kernel spreads connections over the workers, so that
    # a handful of requests reaches every worker (R66)
    listen 127.0.0.1:%%PORT%% reuseport;
    add_header X-Pid $pid always;
    location = /o/token/ { oauth2_token; }
    location = /api/auth/token/ { oauth2_token; }
    location = /auth/token/ { oauth2_token; }
    location = /o/revoke_token/ { oauth2_revoke; }
    location /protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    location /scoped/ {
        auth_oauth2 "api";
        auth_oauth2_scope admin;
        alias %%DIR%%/html/;
    }
    location /open/ { alias %%DIR%%/html/; }
%%EXTRA_SERVER%%
}
EOF

sub new {
    my ($class, %opts) = @_;
    my $dir = tempdir('o2t-XXXXXX', TMPDIR => 1,
        CLEANUP => !$ENV{KEEP});
    # workers run as nobody (root master, no "user" directive): they must
    # be able to reach the store and the html below this directory
    chmod 0755, $dir or die "chmod $dir: $!";
    mkdir "$dir/html" or die "mkdir: $!";
    chmod 0755, "$dir/html";
    open my $fh, '>', "$dir/html/index.html" or die "html: $!";
    print $fh "hello\n";
    close $fh;
    chmod 0644, "$dir/html/index.html";
    # the handshake key (oauth2_handshake_key %%DIR%%/handshake.key)
    open my $kh, '>', "$dir/handshake.key" or die "key: $!";
    print $kh join('', map { chr(65 + int(rand(26))) } 1 .. 48), "\n";
    close $kh;
    chmod 0644, "$dir/handshake.key";
    Test::More::diag("test dir: $dir") if $ENV{VERBOSE} || $ENV{KEEP};

    my $self = bless {
        dir => $dir,
        workers => $opts{workers} // 2,
        ports => {},
        expect_log => [],
        running => 0,
    }, $class;
    $self->port;    # allocate the main port now
    push @INSTANCES, $self;
    return $self;
}

sub dir { $_[0]{dir} }
sub store { "$_[0]{dir}/store" }
sub error_log { "$_[0]{dir}/error.log" }

sub have_build {
    my ($what) = @_;
    return -x $ADMIN if ($what // '') eq 'admin';
    return -f $MODULE && -x $ADMIN;
}

# stop the whole run unless the module and CLI are built: a missing
# build is a failure, never a skip (require_build('admin'): only the CLI)
sub require_build {
    return if have_build(@_);
    Test::More::BAIL_OUT("$MODULE or $ADMIN missing (run make)");
}

############################################################ ports

# A port no other test file of this run holds: the kernel's free port,
# claimed with a lock on a file named after it for the life of this
# process.  The kernel alone does not keep two files that run at once
# (prove -j2) from being given one port between one's allocation and its
# bind; the test nginx listens with reuseport, so both would then bind it
# and the kernel would split the connections between them (CI once saw
# 73 of t/realms.t's requests answered 404 by another file's nginx).
# The files stay, empty: removing one races with a process opening it.
my %CLAIMED;
my $PORT_LOCKS = '/tmp/oauth2-test-ports';

sub _free_port {
    mkdir $PORT_LOCKS, 01777 unless -d $PORT_LOCKS;
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
            Listen => 1, ReuseAddr => 1) or next;
        my $p = $s->sockport;
        close $s;
        next unless $p > 1024 && !$CLAIMED{$p};
        open(my $lock, '>>', "$PORT_LOCKS/$p") or die "$PORT_LOCKS/$p: $!";
        next unless flock($lock, LOCK_EX | LOCK_NB);
        $CLAIMED{$p} = $lock;
        return $p;
    }
    die "no free port";
}

# $t->port (main) or $t->port(1), $t->port(2) ...
sub port {
    my ($self, $n) = @_;
    $n //= 0;
    $self->{ports}{$n} //= _free_port();
    return $self->{ports}{$n};
}

############################################################ config

sub expect_log {
    my ($self, @re) = @_;
    push @{$self->{expect_log}}, @re;
    return $self;
}

sub _subst {
    my ($self, $text) = @_;
    $text =~ s/%%EXTRA_SERVER%%//g;
    $text =~ s/%%PORT_(\d+)%%/$self->port($1)/ge;
    $text =~ s/%%PORT%%/$self->port/ge;
    $text =~ s/%%STORE%%/$self->store/ge;
    $text =~ s/%%DIR%%/$self->{dir}/g;
    return $text;
}

# $t->default_http(extra_http => '...', extra_server => '...')
sub default_http {
    my ($self, %o) = @_;
    my $s = $DEFAULT_SERVER;
    my $extra_server = $o{extra_server} // '';
    $s =~ s/%%EXTRA_SERVER%%/$extra_server/;
    return ($o{extra_http} // '') . "\n" . $s;
}

# write_config($http_text, main => '...', workers => n, user => 'nobody')
sub write_config {
    my ($self, $http, %o) = @_;
    my $dir = $self->{dir};
    my $workers = $o{workers} // $self->{workers};
    $self->{workers} = $workers;
    my $conf = '';
    $conf .= "load_module $MODULE;\n" unless $o{no_module};
    $conf .= "user $o{user};\n" if $o{user};
    $conf .= <<"EOF";
worker_processes $workers;
daemon on;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log info;
EOF
    $conf .= ($o{main} // '') . "\n";
    $conf .= <<"EOF";
events { worker_connections 1024; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    default_type application/octet-stream;
EOF
    $conf .= $self->_subst($http) . "\n}\n";
    my $file = $o{file} // "$dir/nginx.conf";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $conf;
    close $fh;
    return $self;
}

# edit_config(sub { s/.../.../ }): changes the nginx.conf written last
# ($_ holds its text), for a reload; dies if the change changed nothing
sub edit_config {
    my ($self, $edit) = @_;
    my $file = "$self->{dir}/nginx.conf";
    local $_ = _slurp($file);
    my $before = $_;
    $edit->();
    die "edit_config: nginx.conf unchanged" if $_ eq $before;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $_;
    close $fh;
    return $self;
}

sub write_default_config {
    my ($self, %o) = @_;
    my $workers = delete $o{workers};
    return $self->write_config($self->default_http(%o),
        defined $workers ? (workers => $workers) : ());
}

############################################################ processes

# a new P-256 key for oauth2_jwt_key, readable by the workers:
# <dir>/keys/<name>.pem (name: ec), the keys directory made if need be
sub ec_key {
    my ($self, $name) = @_;
    my $dir = "$self->{dir}/keys";
    -d $dir or mkdir $dir or die "mkdir $dir: $!";
    chmod 0755, $dir;
    my $file = "$dir/" . ($name // 'ec') . '.pem';
    my ($code, undef, $err) = $self->_run_cmd('/usr/bin/openssl', 'genpkey',
        '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-out', $file);
    die "openssl genpkey: $err" if $code;
    chmod 0644, $file;
    return $file;
}

# $t->etcd_certs: what a TLS cluster test needs, made with openssl under
# <dir>/certs, all readable by nginx's workers: a CA (ca, its pem);
# etcd's certificate (etcd: [pem, key]) for IP 127.0.0.1 with serverAuth
# and clientAuth (etcd 3.4's gateway dials its own member with it); an
# edge's client certificate the CA signed (client); a self-signed
# stranger's with clientAuth (stranger)
sub etcd_certs {
    my ($self) = @_;
    my $dir = "$self->{dir}/certs";
    -d $dir or mkdir $dir or die "mkdir $dir: $!";
    chmod 0755, $dir;
    my $openssl = sub {
        my ($code, $out, $err) = $self->_run_cmd('/usr/bin/openssl', @_);
        die "openssl @_: exit $code: $out$err" if $code;
    };
    # a P-256 key and a certificate: self-signed with the extensions in
    # self, or signed by the CA with those in ext
    my $make = sub {
        my ($name, $subject, %o) = @_;
        my ($key, $pem) = ("$dir/$name.key", "$dir/$name.pem");
        my @new = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
            '-nodes', '-keyout', $key, '-subj', "/CN=$subject");
        if ($o{self}) {
            $openssl->('req', '-x509', @new, '-days', 2, '-out', $pem,
                map { ('-addext', $_) } @{$o{self}});
        } else {
            my $ext = write_file("$dir/$name.ext",
                join("\n", @{$o{ext}}) . "\n");
            $openssl->('req', '-new', @new, '-out', "$dir/$name.csr");
            $openssl->('x509', '-req', '-in', "$dir/$name.csr",
                '-CA', "$dir/ca.pem", '-CAkey', "$dir/ca.key",
                '-CAcreateserial', '-days', 2, '-extfile', $ext,
                '-out', $pem);
        }
        chmod 0644, $key, $pem;
        return [$pem, $key];
    };
    my %c;
    $c{ca} = $make->('ca', 'oauth2 test CA',
        self => ['basicConstraints=critical,CA:TRUE',
            'keyUsage=critical,keyCertSign,cRLSign'])->[0];
    $c{etcd} = $make->('etcd', 'etcd', ext => [
        'subjectAltName=IP:127.0.0.1',
        'extendedKeyUsage=serverAuth,clientAuth',
        'keyUsage=critical,digitalSignature,keyEncipherment']);
    $c{client} = $make->('client', 'edge', ext => [
        'extendedKeyUsage=clientAuth',
        'keyUsage=critical,digitalSignature']);
    $c{stranger} = $make->('stranger', 'edge',
        self => ['extendedKeyUsage=clientAuth']);
    return \%c;
}

# runs a command, returns (exit code, stdout, stderr)
sub _run_cmd {
    my ($self, @cmd) = @_;
    my $out = "$self->{dir}/.cmd.out.$$";
    my $err = "$self->{dir}/.cmd.err.$$";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $code = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    my ($o, $e) = (_slurp($out), _slurp($err));
    unlink $out, $err;
    return ($code, $o, $e);
}

sub _slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}

# plant_lock($how): a file of root's (<dir>/victim: "keep\n", mode 0600),
# and the store's lock.mdb made a 'symlink' or a (hard) 'link' to it, as
# the store's user could plant one (R78); the store's directory is made
# if missing.  Returns the file's path.
sub plant_lock {
    my ($self, $how) = @_;
    my $victim = "$self->{dir}/victim";
    write_file($victim, "keep\n");
    chmod 0600, $victim;
    my $lock = $self->store . '/lock.mdb';
    mkdir $self->store;
    unlink $lock;
    ($how eq 'link' ? link($victim, $lock) : symlink($victim, $lock))
        or die "$how $lock: $!";
    return $victim;
}

# write_file($path, $text): the bytes as they are; returns $path
# in_background($file, $code): runs $code (an HTTP request) in a child
# process, for a request that waits (for etcd, a held sync) while the
# parent goes on: its pid.  background_result($pid, $file) waits for it
# and gives {status, took, error, raw} (status 'none' if the child wrote
# nothing)
sub in_background {
    my ($file, $code) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $t0 = time;
        my $r = $code->();
        write_file($file, JSON::PP->new->encode({
            status => $r->{status}, took => time - $t0,
            error => ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef,
            raw => substr($r->{raw}, 0, 4000) }));
        POSIX::_exit(0);
    }
    return $pid;
}

sub background_result {
    my ($pid, $file) = @_;
    waitpid $pid, 0;
    return eval { JSON::PP->new->decode(_slurp($file)) }
        // { status => 'none', took => 0, raw => '' };
}

# $edge->while_sync_held($request): $request->() (on this edge) in the
# background while this edge's sync daemon is held (the caller sent it
# SIGSTOP); 0.3 s later the daemon resumes.  The answer, and whether none
# had come while it was held
sub while_sync_held {
    my ($self, $request) = @_;
    my $file = $self->dir . '/bg.' . ++$self->{held_runs};
    my $pid = in_background($file, $request);
    sleep 0.3;
    my $waited = waitpid($pid, WNOHANG) == 0;
    kill 'CONT', $self->sync_pid;
    my $r = background_result($pid, $file);
    return ($r, $waited);
}

sub write_file {
    my ($f, $text) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $text;
    close $fh or die "$f: $!";
    return $f;
}

# top_of_second(): sleeps until just after the next whole second.  The
# store's lifetimes are whole seconds (issued at the second's start plus
# the TTL), so a 1 s token or code made late in a second lives only what
# is left of it: a test that uses one at once makes it here
sub top_of_second {
    sleep 1.02 - (time - int(time));
}

# dump_store($store): every database of the store as mdb_dump -a -p prints
# it, less the two records nginx's background expiry (oauth2_expiry_cleanup,
# on by default) rewrites on its own schedule, its lease and its cursor: a
# test that compares dumps compares what the requests changed
sub dump_store {
    my ($store) = @_;
    my @lines = split /^/, `mdb_dump -a -p '$store' 2>&1`;
    my @kept;
    while (defined(my $l = shift @lines)) {
        if ($l =~ /^ expiry_(?:lease|cursor)$/) { shift @lines; next }
        push @kept, $l;
    }
    return join '', @kept;
}

sub nginx_t {
    my ($self, %o) = @_;
    my $dir = $self->{dir};
    my $conf = $o{file} // "$dir/nginx.conf";
    my ($code, $out, $err) = $self->_run_cmd($NGINX, '-t', '-p', "$dir/",
        '-c', $conf, '-e', "$dir/nginx-t.log");
    return ($code, $out . $err . _slurp("$dir/nginx-t.log"));
}

sub master_pid {
    my ($self) = @_;
    my $p = _slurp("$self->{dir}/nginx.pid");
    $p =~ s/\s+//g;
    return $p =~ /^\d+$/ ? $p : undef;
}

sub _alive { my ($pid) = @_; return $pid && kill(0, $pid) }

sub run {
    my ($self) = @_;
    my $dir = $self->{dir};
    die "write_config first" unless -f "$dir/nginx.conf";
    my ($code, $out, $err) = $self->_run_cmd($NGINX, '-p', "$dir/",
        '-c', "$dir/nginx.conf", '-e', "$dir/error.log");
    if ($code != 0) {
        die "nginx failed to start (exit $code):\n$out$err\n"
            . _slurp("$dir/error.log");
    }
    $self->{running} = 1;
    $self->_wait_port($self->port)
        or die "nginx does not accept on port " . $self->port . "\n"
        . _slurp("$dir/error.log");
    $self->_wait_workers(5);
    return $self;
}

sub _wait_port {
    my ($self, $port) = @_;
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $port, Proto => 'tcp');
        if ($s) { close $s; return 1 }
        sleep 0.05;
    }
    return 0;
}

# pids of the master's children (the workers)
sub worker_pids {
    my ($self) = @_;
    my $master = $self->master_pid or return ();
    my @pids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = _slurp("/proc/$pid/stat") or next;
        # pid (comm) state ppid ...
        next unless $stat =~ /^\d+ \((.*)\) \S+ (\d+)/s;
        next unless $2 == $master;
        my $cmdline = _slurp("/proc/$pid/cmdline");
        next unless $cmdline =~ /worker process/;
        next if $cmdline =~ /shutting down/;
        push @pids, $pid;
    }
    closedir $dh;
    @pids = sort { $a <=> $b } @pids;
    return @pids;
}

sub _wait_workers {
    my ($self, $secs, @old) = @_;
    my %old = map { $_ => 1 } @old;
    my $end = time + $secs;
    while (time < $end) {
        my @w = grep { !$old{$_} } $self->worker_pids;
        my @still = grep { _alive($_) } @old;
        return 1 if @w >= $self->{workers} && !@still;
        sleep 0.05;
    }
    return 0;
}

sub reload {
    my ($self) = @_;
    my @old = $self->worker_pids;
    my ($code, $out, $err) = $self->_run_cmd($NGINX, '-p', "$self->{dir}/",
        '-c', "$self->{dir}/nginx.conf", '-e', "$self->{dir}/error.log",
        '-s', 'reload');
    die "nginx -s reload failed: $out$err" if $code;
    $self->_wait_workers(5, @old);
    return $self;
}

sub stop {
    my ($self) = @_;
    return $self unless $self->{running};
    $self->{running} = 0;
    my $pid = $self->master_pid or return $self;
    kill 'QUIT', $pid;
    my $end = time + 10;
    sleep 0.05 while _alive($pid) && time < $end;
    if (_alive($pid)) {
        kill 'TERM', $pid;
        sleep 1;
        kill 'KILL', $pid if _alive($pid);
    }
    return $self;
}

############################################################ admin CLI

# admin(@args): runs oauth2-admin --store <store> @args
sub admin {
    my ($self, @args) = @_;
    return $self->_run_cmd($ADMIN, '--store', $self->store, @args);
}

# admin_within($seconds, @args): admin(@args), killed after $seconds (exit
# 137): for a command that must refuse, so that one that serves instead
# fails the test rather than hanging it
sub admin_within {
    my ($self, $seconds, @args) = @_;
    return $self->_run_cmd('timeout', '-s', 'KILL', $seconds, $ADMIN,
        '--store', $self->store, @args);
}

# admin_raw(@args): no --store added
sub admin_raw {
    my ($self, @args) = @_;
    return $self->_run_cmd($ADMIN, @args);
}

sub admin_json {
    my ($self, @args) = @_;
    return _json_result("oauth2-admin @args", $self->admin(@args));
}

# the decoded stdout of a command that must exit 0 with JSON, or die
sub _json_result {
    my ($what, $code, $out, $err) = @_;
    die "$what: exit $code: $err" if $code != 0;
    my $j = eval { $JSON->decode($out) };
    die "$what: not JSON: $out" unless defined $j;
    return $j;
}

# new_app(name => 'x', grant => [..] | 'g', scope => '..', public => 1,
#         auth_method => '..', ttl => n, first_party => 1, require_dpop => 1,
#         post_logout_redirect_uris => [..], id_token_alg => 'ES256')
sub new_app {
    my ($self, %a) = @_;
    return $self->admin_json(app_add_args(%a));
}

# the `app add` arguments of new_app's options (new_app, new_app_etcd)
sub app_add_args {
    my (%a) = @_;
    my @args = ('app', 'add', '--name', $a{name} // 'test-app');
    # a public client cannot register client_credentials (RFC 6749 4.4):
    # public apps default to authorization_code with one redirect URI
    if ($a{public} && !$a{grant}) {
        $a{grant} = 'authorization_code';
        $a{redirect_uris} //= ['https://client.example/cb'];
    }
    my $g = $a{grant} // 'client_credentials';
    push @args, '--grant', $_ for ref $g ? @$g : ($g);
    push @args, '--scope', $a{scope} if defined $a{scope};
    push @args, '--public' if $a{public};
    push @args, '--auth-method', $a{auth_method} if $a{auth_method};
    push @args, '--access-token-ttl', $a{ttl} if defined $a{ttl};
    push @args, '--redirect-uri', $_ for @{$a{redirect_uris} // []};
    # first-party: its users' tokens act at the admin API with the
    # user's full rights, whatever their scope (R85)
    push @args, '--first-party' if $a{first_party};
    # RFC 9449 5.2: its token requests must carry a DPoP proof
    push @args, '--require-dpop' if $a{require_dpop};
    # OpenID Connect
    push @args, '--post-logout-redirect-uri', $_
        for @{$a{post_logout_redirect_uris} // []};
    push @args, '--id-token-alg', $a{id_token_alg} if $a{id_token_alg};
    push @args, '--access-token-format', $a{format} if $a{format};
    return @args;
}

############################################################ HTTP

# form-encode per application/x-www-form-urlencoded
sub form_encode {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~ ])/sprintf('%%%02X', ord $1)/ge;
    $s =~ tr/ /+/;
    return $s;
}

sub form {
    my (@pairs) = @_;
    my @p;
    while (@pairs) {
        my ($k, $v) = splice @pairs, 0, 2;
        push @p, form_encode($k) . '=' . form_encode($v);
    }
    return join '&', @p;
}

sub basic {
    my ($self, $id, $secret) = @_;
    return 'Basic ' . encode_base64(
        form_encode($id) . ':' . form_encode($secret), '');
}

# http($raw_request, timeout => s): sends the bytes, reads to EOF
sub http {
    my ($self, $raw, %o) = @_;
    my $port = $o{port} // $self->port;
    my $timeout = $o{timeout} // 10;
    # from => '127.0.0.N': another client address on loopback
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => 5,
        $o{from} ? (LocalAddr => $o{from}) : ());
    unless ($s) {
        return { status => 0, headers => {}, body => '', raw => '',
            error => "connect: $!" };
    }
    binmode $s;
    $s->autoflush(1);
    my $off = 0;
    local $SIG{PIPE} = 'IGNORE';
    while ($off < length $raw) {
        my $n = syswrite $s, $raw, length($raw) - $off, $off;
        last unless defined $n;    # server may close early (413 ...)
        $off += $n;
    }
    my $buf = '';
    my $sel = IO::Select->new($s);
    my $end = time + $timeout;
    my $timed_out = 0;
    while (1) {
        my $left = $end - time;
        if ($left <= 0 || !$sel->can_read($left)) { $timed_out = 1; last }
        my $n = sysread $s, $buf, 65536, length $buf;
        last unless $n;
    }
    close $s;
    my $r = parse_response($buf);
    $r->{timeout} = 1 if $timed_out;
    return $r;
}

# $t->send_async($method, $path, \@headers, $body): the request sent on a
# socket of its own (Connection: close), its answer left to read_async:
# a request to overlap with something else (a change made while its slow
# hash runs, say).  The socket.
sub send_async {
    my ($self, $method, $path, $headers, $body) = @_;
    $body //= '';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->port, Proto => 'tcp') or die "connect: $!";
    binmode $s;
    my $head = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n";
    my @h = @{$headers // []};
    while (my ($k, $v) = splice @h, 0, 2) { $head .= "$k: $v\r\n" }
    print $s $head . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    return $s;
}

# read_async($s): the answer on a socket of send_async (waiting up to 30
# s), parsed, and when its last byte came
sub read_async {
    my ($s) = @_;
    my $buf = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(30)) {
        last unless sysread $s, $buf, 65536, length $buf;
    }
    my $at = time;
    close $s;
    return (parse_response($buf), $at);
}

sub parse_response {
    my ($buf) = @_;
    my $r = { status => 0, headers => {}, body => '', raw => $buf };
    # interim responses (100 Continue) precede the real one
    1 while $buf =~
        s{^HTTP/\d\.\d 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n}{};
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    return $r unless defined $head && $head =~ m{^HTTP/\d\.\d (\d{3})};
    $r->{status} = $1;
    my @lines = split /\r\n/, $head;
    shift @lines;
    for my $l (@lines) {
        my ($k, $v) = $l =~ /^([^:]+):\s*(.*?)\s*$/ or next;
        push @{$r->{headers}{lc $k}}, $v;
    }
    $body //= '';
    if (grep { /chunked/i } @{$r->{headers}{'transfer-encoding'} // []}) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr $body, 0, $n, '';
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    $r->{body} = $body;
    my $ct = $r->{headers}{'content-type'}[0] // '';
    if ($ct =~ m{^application/json}i || $body =~ /^\s*\{/) {
        $r->{json} = eval { JSON::PP->new->decode($body) };
    }
    return $r;
}

# chunked($body, $size): $body in HTTP/1.1 chunked transfer coding, in
# chunks of $size bytes (one chunk if $size is not given), then the last
# chunk
sub chunked {
    my ($body, $size) = @_;
    $size ||= length($body) || 1;
    return join('', map { sprintf("%x\r\n%s\r\n", length, $_) }
        unpack("(a$size)*", $body)) . "0\r\n\r\n";
}

# race_raw([[port, raw request], ...]): sends every request at the same
# moment and returns their parsed responses in order (status 0 where the
# connection failed or no answer came in 30 s).  Each request is written
# but its last byte on a connection of its own; once all are, the last
# bytes go out back to back from this one process, microseconds apart
# (closer than forked senders woken by a barrier, whom the scheduler
# spreads over milliseconds).  The requests must say Connection: close.
sub race_raw {
    my ($racers) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my @socks = map {
        my ($port, $raw) = @$_;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $port, Proto => 'tcp', Timeout => 5);
        if ($s) {
            setsockopt($s, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1);
            syswrite $s, $raw, length($raw) - 1;
        }
        $s;
    } @$racers;
    for my $i (0 .. $#socks) {
        syswrite $socks[$i], substr($racers->[$i][1], -1) if $socks[$i];
    }
    my $end = time + 30;
    return map {
        my $s = $_;
        my $buf = '';
        if ($s) {
            my $sel = IO::Select->new($s);
            while (1) {
                my $left = $end - time;
                last if $left <= 0 || !$sel->can_read($left);
                last unless sysread $s, $buf, 65536, length $buf;
            }
            close $s;
        }
        parse_response($buf);
    } @socks;
}

# outcome($r): a response in a word or two, as races tally them: "200 ok",
# "400 invalid_grant", "500 none" (no JSON), or "no-answer"
sub outcome {
    my ($r) = @_;
    return 'no-answer' unless $r->{status};
    return "$r->{status} "
        . (ref $r->{json} eq 'HASH' ? $r->{json}{error} // 'ok' : 'none');
}

# header($r, name): the first value, or undef
# Sleeps past the end of the current clock-aligned window of $len
# seconds if fewer than $margin seconds are left in it, so that a test of
# a rate limit or throttle does not straddle the window's reset.
sub guard_window {
    my ($len, $margin) = @_;
    my $left = $len - (time - int(time / $len) * $len);
    if ($left < $margin) {
        Test::More::diag(sprintf 'waiting %.1f s for the %d s window to turn',
            $left + 0.5, $len);
        sleep $left + 0.5;
    }
}

# the end of the current clock-aligned window of $len seconds
sub next_boundary { my ($len) = @_; return (int(time / $len) + 1) * $len }

sub header {
    my ($r, $name) = @_;
    return $r->{headers}{lc $name} ? $r->{headers}{lc $name}[0] : undef;
}

# request(method, path, headers => [k, v, k, v ...], body => ...)
# Host and Connection: close are added; Content-Length unless
# no_length => 1 or a Transfer-Encoding header is given.
sub request {
    my ($self, $method, $path, %o) = @_;
    my @h = @{$o{headers} // []};
    my $raw = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n";
    my $te = 0;
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        next unless defined $v;
        $te = 1 if lc $k eq 'transfer-encoding';
        $raw .= "$k: $v\r\n";
    }
    if (defined $o{body} && !$te && !$o{no_length}) {
        $raw .= 'Content-Length: ' . length($o{body}) . "\r\n";
    }
    $raw .= "\r\n";
    $raw .= $o{body} if defined $o{body};
    return $self->http($raw, %o);
}

# post_form($path, $body, Header => value, ...): Content-Type form unless
# given (undef removes it); a value may be an arrayref (repeated header)
# ("-from", '127.0.0.N') among the headers: the request comes from that
# loopback address
sub post_form {
    my ($self, $path, $body, @hdr) = @_;
    my (@h, %o);
    my $have_ct = 0;
    while (@hdr) {
        my ($k, $v) = splice @hdr, 0, 2;
        if ($k =~ /^-(\w+)$/) { $o{$1} = $v; next }
        $have_ct = 1 if lc $k eq 'content-type';
        push @h, map { ($k, $_) } ref $v ? @$v : ($v);
    }
    unshift @h, 'Content-Type', 'application/x-www-form-urlencoded'
        unless $have_ct;
    return $self->request('POST', $path, headers => \@h, body => $body, %o);
}

sub get {
    my ($self, $path, @hdr) = @_;
    my (@h, %o);
    while (@hdr) {
        my ($k, $v) = splice @hdr, 0, 2;
        if ($k =~ /^-(\w+)$/) { $o{$1} = $v; next }
        push @h, map { ($k, $_) } ref $v ? @$v : ($v);
    }
    return $self->request('GET', $path, headers => \@h, %o);
}

# token($id, $secret, path => '/o/token/', auth => 'basic'|'post'|'none',
#       scope => '..', extra => 'k=v&..', headers => [...])
# returns the response (with ->{json})
sub token {
    my ($self, $id, $secret, %o) = @_;
    my $path = $o{path} // '/o/token/';
    my $auth = $o{auth} // 'basic';
    my @body = (grant_type => $o{grant_type} // 'client_credentials');
    push @body, scope => $o{scope} if defined $o{scope};
    my @h = @{$o{headers} // []};
    if ($auth eq 'basic') {
        push @h, Authorization => $self->basic($id, $secret);
    } elsif ($auth eq 'post') {
        push @body, client_id => $id;
        push @body, client_secret => $secret if defined $secret;
    }
    my $body = form(@body);
    $body .= "&$o{extra}" if defined $o{extra};
    return $self->post_form($path, $body, @h);
}

# bulk_apps($n, $prefix, @admin_args): $n client_credentials applications
# made in one import-django (ids "$prefix-0001"...; @admin_args before it:
# --realm <r>), as [{client_id, client_secret}, ...]; dies unless all are
sub bulk_apps {
    my ($self, $n, $prefix, @admin_args) = @_;
    my @bulk = map { { client_id => sprintf('%s-%04d', $prefix, $_),
        client_secret => sprintf('bulk-secret-%04d-', $_) . 'x' x 50 } } 1 .. $n;
    my $file = $self->dir . '/bulk.json';
    write_file($file, JSON::PP->new->encode([map { {
        model => 'oauth2_provider.application', pk => $_ + 1,
        fields => { client_id => $bulk[$_]{client_id}, name => "bulk $_",
            client_type => 'confidential',
            authorization_grant_type => 'client-credentials',
            client_secret => $bulk[$_]{client_secret}, redirect_uris => '' } } }
        0 .. $#bulk]));
    my ($code, $out, $err) = $self->admin(@admin_args, 'import-django', $file);
    my $got = (eval { JSON::PP->new->decode($out) } // {})->{applications}{imported};
    die "import-django of $n applications: $err" unless ($got // 0) == $n;
    return @bulk;
}

# tokens_at_once(\@apps, %opts): one client_credentials token for each
# application, from 8 processes at once (%opts as token's); how many were
# 200
sub tokens_at_once {
    my ($self, $apps, %o) = @_;
    my @kids;
    for my $c (0 .. 7) {
        pipe my $rd, my $wr or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            for my $i (grep { $_ % 8 == $c } 0 .. $#$apps) {
                my $r = $self->token($apps->[$i]{client_id},
                    $apps->[$i]{client_secret}, %o);
                print $wr "$r->{status}\n";
            }
            close $wr;
            POSIX::_exit(0);    # no END blocks: they would stop nginx
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my $ok200 = 0;
    for my $k (@kids) {
        my ($pid, $rd) = @$k;
        $ok200 += grep { /^200$/ } <$rd>;
        close $rd;
        waitpid $pid, 0;
    }
    return $ok200;
}

# access_token($app, %opts): the token string, or dies
sub access_token {
    my ($self, $app, %o) = @_;
    my $r = $self->token($app->{client_id}, $app->{client_secret}, %o);
    die "token request failed: $r->{status} $r->{body}"
        unless $r->{status} == 200 && $r->{json}{access_token};
    return $r->{json}{access_token};
}

# revoke($id, $secret, $token, auth => 'basic'|'post')
sub revoke {
    my ($self, $id, $secret, $token, %o) = @_;
    my $auth = $o{auth} // 'basic';
    my @body = (defined $token ? (token => $token) : ());
    my @h;
    if ($auth eq 'basic') {
        push @h, Authorization => $self->basic($id, $secret);
    } else {
        push @body, client_id => $id;
        push @body, client_secret => $secret if defined $secret;
    }
    return $self->post_form($o{path} // '/o/revoke_token/', form(@body), @h);
}

sub bearer_get {
    my ($self, $path, $token) = @_;
    return $self->get($path, Authorization => "Bearer $token");
}

############################################################ assertions

# RFC 6749 5.2 error checks (R9, R10): status, JSON, error, no-store,
# Pragma, error_description charset.  Several assertions, one per line.
sub oauth_error_ok {
    my ($self, $r, $status, $error, $name) = @_;
    my $ok = 1;
    $ok &= Test::More::is($r->{status}, $status, "$name: status $status");
    $ok &= Test::More::is(ref $r->{json} eq 'HASH' ? $r->{json}{error}
        : "(not JSON: " . substr($r->{body}, 0, 200) . ")",
        $error, "$name: error $error");
    $ok &= $self->no_store_ok($r, $name);
    my $d = ref $r->{json} eq 'HASH' ? $r->{json}{error_description} : undef;
    $ok &= Test::More::ok(!defined $d
        || $d =~ /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/,
        "$name: error_description charset (R10)");
    Test::More::diag("response was: $r->{raw}") unless $ok;
    return $ok;
}

# Cache-Control: no-store, Pragma: no-cache, JSON content type (R9)
sub no_store_ok {
    my ($self, $r, $name) = @_;
    my $cc = join ',', @{$r->{headers}{'cache-control'} // []};
    my $ok = Test::More::ok(
        (grep { lc($_) eq 'no-store' } map { s/^\s+|\s+$//gr }
            split /,/, $cc),
        "$name: Cache-Control no-store (R9)");
    $ok &= Test::More::like(header($r, 'Pragma') // '', qr/no-cache/i,
        "$name: Pragma no-cache (R9)");
    if (length $r->{body}) {
        $ok &= Test::More::like(header($r, 'Content-Type') // '',
            qr{^application/json}i, "$name: Content-Type JSON (R9)");
    }
    return $ok;
}

############################################################ end

sub log_problems {
    my ($self) = @_;
    my @bad;
    for my $line (split /\n/, _slurp($self->error_log)) {
        next unless $line =~ /\[(?:alert|crit|emerg)\]|exited on signal
            |AddressSanitizer|runtime\ error:|LeakSanitizer/x;
        next if grep { $line =~ $_ } @{$self->{expect_log}};
        push @bad, $line;
    }
    return @bad;
}

sub check_log {
    my ($self) = @_;
    my @bad = $self->log_problems;
    Test::More::ok(!@bad, "error.log has no unexpected alert/crit/emerg/"
        . "signal/sanitizer lines ($self->{dir})")
        or Test::More::diag(join "\n", @bad);
}

sub done {
    my ($self) = @_;
    $self->stop;
    # cluster mode: the mirror's sync daemon, then the etcd member (no-ops
    # unless run_sync / run_etcd started them)
    $self->stop_sync;
    $self->stop_etcd;
    $self->check_log;
    $self->{done} = 1;
}

# stops every instance, checks every log, then Test::More::done_testing
sub done_testing {
    my ($self) = @_;
    # every nginx first: an edge must not see the etcd member another
    # instance hosts go away while it still runs (a no-op otherwise: done
    # stops nginx first anyway)
    $_->stop for @INSTANCES;
    # then the mirrors' sync daemons and the etcd members, all told at once
    # (a sync daemon stops at once when etcd goes): done waits for each
    for my $t (@INSTANCES) {
        kill 'TERM', $t->{sync_pid} if $t->{sync_pid};
        next unless $t->{etcd_pid};
        kill 'TERM', $t->{etcd_pid};
        kill 'CONT', $t->{etcd_pid} if $t->{etcd_paused};
    }
    for my $t (@INSTANCES) {
        $t->done unless $t->{done};
    }
    Test::More::done_testing();
}

END {
    local $?;
    for my $t (@INSTANCES) {
        eval { $t->stop };
    }
}

############################################################ admin daemon
#
#   my $t = OAuth2Test->new;
#   $t->write_config($t->default_http(extra_server => $t->daemon_locations))
#       ->run;
#   $t->run_daemon('--open-registration');   # oauth2-admin serve
#   my $r = $t->api('POST', '/api/users/', token => $tok, json => {...});
#   $t->stop_daemon;                          # SIGTERM, waits, exit code
#
# The daemon listens on 127.0.0.1:$t->daemon_port unless run_daemon gets
# its own --listen; its stdout and stderr go to $t->daemon_log.

my $DJSON = JSON::PP->new->canonical;

sub daemon_port { $_[0]->port('daemon') }
sub daemon_log { "$_[0]{dir}/daemon.log" }
sub daemon_pid { $_[0]{daemon_pid} }

# nginx locations proxying the daemon's paths, as conf.example does
# (oauth2_proxy.conf's headers); the daemon builds its absolute URLs from
# Host and X-Forwarded-Proto, and never hears a client's X-OAuth2-Realm
sub daemon_locations {
    my ($self, $upstream) = @_;
    $upstream //= 'http://127.0.0.1:' . $self->daemon_port;
    my $conf = '';
    for my $loc ('/api/users/', '/api/applications/', '= /auth/me/',
        '/o/applications/')
    {
        $conf .= "    location $loc {\n"
            . "        proxy_pass $upstream;\n"
            . "        proxy_set_header Host \$http_host;\n"
            . "        proxy_set_header X-Forwarded-Proto \$scheme;\n"
            . "        proxy_set_header X-Real-IP \$remote_addr;\n"
            . "        proxy_set_header X-OAuth2-Realm \"\";\n"
            . "    }\n";
    }
    return $conf;
}

# run_daemon(@serve_args): starts `oauth2-admin serve` on the test's store
# (--listen 127.0.0.1:<daemon_port> unless given) and waits until it
# accepts; dies if it does not
sub run_daemon {
    my ($self, @args) = @_;
    die "a daemon is already running" if $self->{daemon_pid};
    my $listen;
    for my $i (0 .. $#args) {
        $listen = $args[$i + 1] if $args[$i] eq '--listen';
        $listen = $1 if $args[$i] =~ /^--listen=(.*)$/;
    }
    unless (defined $listen) {
        $listen = '127.0.0.1:' . $self->daemon_port;
        push @args, '--listen', $listen;
    }
    my $log = $self->daemon_log;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>>', $log or POSIX::_exit(127);
        exec { $ADMIN } $ADMIN, '--store', $self->store, 'serve', @args
            or POSIX::_exit(127);
    }
    $self->{daemon_pid} = $pid;
    $self->{daemon_listen} = $listen;
    my $end = time + 10;
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{daemon_pid} = undef;
            die "oauth2-admin serve exited (status $?):\n" . _slurp($log);
        }
        return $self if $self->_daemon_accepts;
        sleep 0.02;
    }
    die "oauth2-admin serve does not accept on $listen:\n" . _slurp($log);
}

sub _daemon_accepts {
    my ($self) = @_;
    my $listen = $self->{daemon_listen};
    my $s;
    if ($listen =~ /^unix:(.*)$/) {
        require IO::Socket::UNIX;
        $s = IO::Socket::UNIX->new(Peer => $1,
            Type => Socket::SOCK_STREAM());
    } elsif ($listen =~ /^\[(.*)\]:(\d+)$/) {
        require IO::Socket::IP;
        $s = IO::Socket::IP->new(PeerHost => $1, PeerPort => $2);
    } elsif ($listen =~ /^(.*):(\d+)$/) {
        $s = IO::Socket::INET->new(PeerAddr => $1, PeerPort => $2,
            Proto => 'tcp');
    }
    return 0 unless $s;
    close $s;
    return 1;
}

# stop_daemon(signal => 'TERM', timeout => 10): the daemon's exit status
# (128 + n for a signal n; 'timeout' if it had to be killed), undef if
# none ran
sub stop_daemon {
    my ($self, %o) = @_;
    my $pid = $self->{daemon_pid} or return undef;
    $self->{daemon_pid} = undef;
    kill $o{signal} // 'TERM', $pid;
    my $end = time + ($o{timeout} // 10);
    my $got = 0;
    while (time < $end) {
        $got = waitpid $pid, WNOHANG;
        last if $got == $pid;
        sleep 0.02;
    }
    if ($got != $pid) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        return 'timeout';
    }
    return $? & 127 ? 128 + ($? & 127) : $? >> 8;
}

# api($method, $path, token => $t (Bearer), api_key => $t (X-API-KEY),
#     json => $data | body => $raw, content_type => '...' (undef: none),
#     headers => [...], port => n, timeout => s, from => '127.0.0.N',
#     no_length => 1): the response, ->{json} decoded
sub api {
    my ($self, $method, $path, %o) = @_;
    my @h = @{$o{headers} // []};
    push @h, Authorization => "Bearer $o{token}" if defined $o{token};
    push @h, 'X-API-KEY' => $o{api_key} if defined $o{api_key};
    my $body = $o{body};
    $body = $DJSON->encode($o{json}) if exists $o{json};
    if (defined $body || exists $o{content_type}) {
        my $ct = exists $o{content_type} ? $o{content_type}
            : 'application/json';
        push @h, 'Content-Type' => $ct if defined $ct;
    }
    my $r = $self->request($method, $path, headers => \@h, body => $body,
        (defined $o{port} ? (port => $o{port}) : ()),
        (defined $o{timeout} ? (timeout => $o{timeout}) : ()),
        (defined $o{from} ? (from => $o{from}) : ()),
        ($o{no_length} ? (no_length => 1) : ()));
    $r->{json} //= eval { JSON::PP->new->decode($r->{body}) }
        if length $r->{body};
    return $r;
}

# an access token for the application, issued straight into the store by
# `oauth2-admin token issue` (user => $username: a token of that user)
sub issue_token {
    my ($self, $client_id, %o) = @_;
    my @args = ('token', 'issue', '--client-id', $client_id);
    push @args, '--user', $o{user} if defined $o{user};
    push @args, '--scope', $o{scope} if defined $o{scope};
    return $self->admin_json(@args)->{access_token};
}

# the permission matrix's two users, made through the users API with the
# staff token $admin: root (staff) and alice (plain); returns a token of
# each, issued to $client_id (a first-party application's, for root's to
# act as staff: R85)
sub staff_and_plain_users {
    my ($self, $admin, $client_id) = @_;
    # passwords that pass the password policy
    for my $u (['root', JSON::PP::true, 'Granite-owl-lamp-71'],
        ['alice', JSON::PP::false, 'Velvet-kettle-orbit-28'])
    {
        my $r = $self->api('POST', '/api/users/', token => $admin, json => {
            username => $u->[0], password => $u->[2],
            email => "$u->[0]\@example.com", is_staff => $u->[1] });
        die "user $u->[0]: $r->{status} $r->{body}" unless $r->{status} == 201;
    }
    return map { $self->issue_token($client_id, user => $_) } qw(root alice);
}

# every item of a paginated API list, following "next" (dies on an error)
sub api_all {
    my ($self, $path, $token) = @_;
    my @all;
    my $next = $path;
    for (1 .. 1000) {
        my $r = $self->api('GET', $next, token => $token);
        die "GET $next: $r->{status} $r->{body}" unless $r->{status} == 200;
        push @all, @{$r->{json}{results}};
        last unless defined $r->{json}{next};
        ($next) = $r->{json}{next} =~ m{^https?://[^/]+(/.*)$}
            or die "next is not an absolute URL: $r->{json}{next}";
    }
    return \@all;
}

# api_options_ok($path, $token, $allow, $name, $caller): OPTIONS $path, with
# $token (undef: none) of $caller (for the names) answers as
# DRF's SimpleMetadata does: 200, Allow: $allow, JSON {"name": $name,
# "description", "renders": ["application/json"], "parses": [the same]}.
# Several assertions, one per line.
sub api_options_ok {
    my ($self, $path, $token, $allow, $name, $caller) = @_;
    my $r = $self->api('OPTIONS', $path, token => $token);
    my $what = ($caller // 'staff') . " OPTIONS $path";
    Test::More::is($r->{status}, 200, "$what: 200")
        or Test::More::diag($r->{body});
    Test::More::is(header($r, 'Allow'), $allow, "$what: Allow: $allow");
    Test::More::like(header($r, 'Content-Type') // '',
        qr{^application/json\b}, "$what: JSON");
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    Test::More::is_deeply([sort keys %$j],
        [qw(description name parses renders)],
        "$what: {name, description, renders, parses}");
    Test::More::is($j->{name}, $name, "$what: name \"$name\"");
    Test::More::ok(length($j->{description} // ''), "$what: a description");
    Test::More::is_deeply([$j->{renders}, $j->{parses}],
        [['application/json'], ['application/json']],
        "$what: renders and parses JSON");
    return $r;
}

# the daemon log has no sanitizer report and none of the given secrets
sub daemon_log_ok {
    my ($self, @secrets) = @_;
    my $log = _slurp($self->daemon_log);
    my $ok = Test::More::unlike($log,
        qr/AddressSanitizer|runtime error:|LeakSanitizer/,
        'daemon log: no sanitizer report');
    my @leaked = grep { defined && length && index($log, $_) >= 0 }
        @secrets;
    $ok &= Test::More::ok(!@leaked,
        'daemon log: never a token, password or secret ('
        . scalar(@secrets) . ' checked)');
    return $ok;
}

END {
    local $?;
    for my $t (@INSTANCES) {
        eval { $t->stop_daemon(timeout => 5) if $t->{daemon_pid} };
    }
}


############################################################ shared helpers

# Debian's chromium, chromium-driver and python3-selenium (install-deps):
# missing, the file fails, it never skips.  Returns the python to run the
# t/browser/ drivers with, or undef after failing the file.
sub require_browser {
    my $python = '/usr/bin/python3';
    my @missing = grep { !-x $_ } '/usr/bin/chromium',
        '/usr/bin/chromedriver', $python;
    push @missing, 'python3-selenium'
        if !@missing && system($python, '-c', 'import selenium') != 0;
    return $python unless @missing;
    Test::More::fail("the browser test needs @missing: run scripts/install-deps");
    Test::More::done_testing();
    exit;
}

# Set-Cookie headers: { name => { value => v, raw => the header } }
sub cookies_of {
    my ($r) = @_;
    my %c;
    for my $sc (@{$r->{headers}{'set-cookie'} // []}) {
        my ($k, $v) = $sc =~ /^([^=;\s]+)=([^;]*)/ or next;
        $c{$k} = { value => $v, raw => $sc };
    }
    return \%c;
}

############################################################ cluster (issue 13)
#
#   my $a = OAuth2Test->new;
#   my $b = OAuth2Test->new;
#   my $url = $a->run_etcd;          # one etcd member, its data in $a's dir
#   $_->run_sync($url) for $a, $b;   # `oauth2-admin sync` for each mirror
#   my $app = $a->new_app_etcd(name => 'x');    # app add through etcd
#   $a->write_config($a->default_http(
#       extra_http => $a->cluster_directive(max_staleness => '1s')))->run;
#   $a->pause_etcd; $a->resume_etcd;          # SIGSTOP / SIGCONT
#   $a->stop_etcd; $a->run_etcd;              # again, same ports and data
#
# The member logs to $t->etcd_log, a sync daemon to $t->sync_log.  done
# and done_testing stop them after every nginx (so no edge sees etcd go),
# and so does END.

our $ETCD = $ENV{TEST_ETCD_BINARY} || '/usr/bin/etcd';

# what `oauth2-admin sync` logs once its mirror holds etcd's snapshot (or
# resumed from its own revision) and it watches etcd
our $SYNC_READY = qr/\bfollowing etcd from revision \d+/;

sub etcd_port { $_[0]->port('etcd') }
sub etcd_peer_port { $_[0]->port('etcd_peer') }
sub etcd_url { ($_[0]{etcd_scheme} // 'http') . '://127.0.0.1:' . $_[0]->etcd_port }
sub etcd_dir { "$_[0]{dir}/etcd" }
sub etcd_log { "$_[0]{dir}/etcd.log" }
sub etcd_pid { $_[0]{etcd_pid} }
sub sync_log { "$_[0]{dir}/sync.log" }
sub sync_pid { $_[0]{sync_pid} }

sub have_etcd { return -x $ETCD }

# the cluster tests: a missing etcd is a failure, never a skip; the file
# ends there
sub require_etcd {
    return if have_etcd();
    Test::More::fail("$ETCD missing: apt-get install etcd-server");
    Test::More::done_testing();
    exit;
}

# the member answers a v3 range request (the gRPC gateway)
sub etcd_answers {
    my ($self, $timeout) = @_;
    if ($self->{etcd_tls}) {
        my ($code, $body) = $self->etcd_post('/v3/kv/range', '{"key":"AA=="}',
            timeout => $timeout // 1);
        return $code == 200 && $body =~ /"header"/;
    }
    my $r = $self->request('POST', '/v3/kv/range', port => $self->etcd_port,
        body => '{"key":"AA=="}', timeout => $timeout // 1,
        headers => ['Content-Type' => 'application/json']);
    return $r->{status} == 200 && $r->{body} =~ /"header"/;
}

# etcd_post($path, $json, timeout => 10, tls => {cacert, cert, key}): a
# POST to the member's gateway, over https with curl when run_etcd was
# given tls (with its client_tls files unless tls is given): (HTTP status,
# body); status 0 when no answer came (a TLS handshake refused).  The
# default is generous: a new curl's handshake with a member starved by
# the parallel ASan run took more than 1 s on CI.
sub etcd_post {
    my ($self, $path, $json, %o) = @_;
    my $tls = $o{tls} // ($self->{etcd_tls} && $self->{etcd_tls}{client});
    if (!$tls) {
        my $r = $self->request('POST', $path, port => $self->etcd_port,
            body => $json, timeout => $o{timeout} // 10,
            headers => ['Content-Type' => 'application/json']);
        return ($r->{status}, $r->{body});
    }
    my ($code, $out) = $self->_run_cmd('curl', '-sS', '--max-time',
        $o{timeout} // 10, '-H', 'Content-Type: application/json',
        '--data-binary', $json, '-w', '\n%{http_code}',
        ($tls->{cacert} ? ('--cacert', $tls->{cacert}) : ()),
        ($tls->{cert} ? ('--cert', $tls->{cert}) : ()),
        ($tls->{key} ? ('--key', $tls->{key}) : ()),
        $self->etcd_url . $path);
    $out =~ s/\n?(\d{3})\z// or return (0, $out);
    return ($code ? 0 : $1, $out);
}

# run_etcd(extra => [args], tls => {...}): starts a single-member etcd on
# loopback (client and peer ports from the free-port allocator, data in
# $t->etcd_dir: a second call after stop_etcd restarts the same member on
# the same data) and waits until it answers; returns its client URL.
# tls => {cert => f, key => f, ca => f, client => {cacert, cert, key}}
# serves the client URL over https with that certificate, and with ca
# asks clients for a certificate it signed (--client-cert-auth); client
# is what etcd_answers and etcd_post then present
sub run_etcd {
    my ($self, %o) = @_;
    die "etcd is already running" if $self->{etcd_pid};
    my $log = $self->etcd_log;
    my $tls = $o{tls};
    $self->{etcd_tls} = $tls;
    $self->{etcd_scheme} = $tls ? 'https' : 'http';
    my ($c, $p) = ($self->etcd_url,
        'http://127.0.0.1:' . $self->etcd_peer_port);
    my @tls = !$tls ? () : ('--cert-file', $tls->{cert},
        '--key-file', $tls->{key}, !$tls->{ca} ? () :
        ('--client-cert-auth', '--trusted-ca-file', $tls->{ca}));
    my @cmd = ($ETCD, '--name', 't', '--data-dir', $self->etcd_dir,
        '--listen-client-urls', $c, '--advertise-client-urls', $c,
        '--listen-peer-urls', $p, '--initial-advertise-peer-urls', $p,
        '--initial-cluster', "t=$p",
        # the cluster mode's large changes (expiry batches, user deletion),
        # unless limits => 0: etcd's defaults (128 operations, 1.5 MiB)
        ($o{limits} // 1) ? ('--max-txn-ops', 10000,
            '--max-request-bytes', 10485760) : (),
        # history compacted, as the README asks of every deployment
        '--auto-compaction-mode', 'periodic',
        '--auto-compaction-retention', '10m',
        @tls, @{$o{extra} // []});
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>>', $log or POSIX::_exit(127);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    $self->{etcd_pid} = $pid;
    $self->{etcd_paused} = 0;
    my $end = time + ($o{timeout} // 20);
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{etcd_pid} = undef;
            die "etcd exited (status $?):\n" . _tail($log);
        }
        return $self->etcd_url if $self->etcd_answers(0.5);
        sleep 0.05;
    }
    die "etcd does not answer on " . $self->etcd_url . ":\n" . _tail($log);
}

sub pause_etcd {
    my ($self) = @_;
    my $pid = $self->{etcd_pid} or die "no etcd running";
    kill 'STOP', $pid;
    $self->{etcd_paused} = 1;
    return $self;
}

sub resume_etcd {
    my ($self) = @_;
    my $pid = $self->{etcd_pid} or die "no etcd running";
    kill 'CONT', $pid;
    $self->{etcd_paused} = 0;
    return $self;
}

# stop_etcd(signal => 'TERM', timeout => 10): the member's exit status as
# stop_daemon gives it, undef if none ran; a paused member is woken first
sub stop_etcd {
    my ($self, %o) = @_;
    my $pid = $self->{etcd_pid} or return undef;
    $self->{etcd_pid} = undef;
    return _stop_child($pid, $o{signal} // 'TERM', $o{timeout} // 10,
        $self->{etcd_paused});
}

# kills $pid with $sig (SIGCONT after it if $paused), waits, SIGKILL after
# $timeout seconds: its exit status (128 + n for signal n, 'timeout')
sub _stop_child {
    my ($pid, $sig, $timeout, $paused) = @_;
    kill $sig, $pid;
    kill 'CONT', $pid if $paused;
    my $end = time + $timeout;
    my $got = 0;
    while (time < $end) {
        $got = waitpid $pid, WNOHANG;
        last if $got == $pid || $got < 0;
        sleep 0.02;
    }
    if ($got != $pid) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        return 'timeout';
    }
    return $? & 127 ? 128 + ($? & 127) : $? >> 8;
}

# poll($secs, $code): $code->() until it returns true or $secs pass;
# (its last value, the seconds it took)
sub poll {
    my ($secs, $code) = @_;
    my $t0 = time;
    my $v;
    while (1) {
        $v = $code->();
        last if $v || time - $t0 >= $secs;
        sleep 0.01;
    }
    return ($v, time - $t0);
}

# relay($port, rate => $bytes_per_s): a TCP relay on a free loopback
# port to 127.0.0.1:$port, a process a connection, all in one process
# group (killed at exit; kill 'HUP', -$pgid drops every connection, the
# listener stays); the client's bytes pass as they come, the answers at
# rate bytes a second at most a connection (none: as they come).
# Returns ($listening_port, $pgid).
my @RELAYS;    # [pgid, the process that made it]: only it kills them
END { $_->[1] == $$ and kill 'KILL', -$_->[0] for @RELAYS }

sub relay {
    my ($to, %o) = @_;
    my $rate = $o{rate};
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Listen => 64, ReuseAddr => 1) or die "relay: $!";
    my $port = $srv->sockport;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        $SIG{CHLD} = 'IGNORE';
        $SIG{HUP} = 'IGNORE';    # the listener outlives a drop
        while (1) {
            my $c = $srv->accept or next;
            my $conn = fork;
            if (!defined $conn || $conn) { close $c; next; }
            $SIG{HUP} = 'DEFAULT';
            close $srv;
            my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $to) or POSIX::_exit(0);
            my $next = 0;    # when the answer's next bytes may pass
            while (1) {
                my $wait = $rate ? $next - time : 0;
                my $sel = IO::Select->new($c, $wait <= 0 ? $u : ());
                for my $fh ($sel->can_read($wait > 0 ? $wait : undef)) {
                    my $buf;
                    my $n = sysread($fh, $buf, $fh == $u && $rate ? 4096 : 65536);
                    POSIX::_exit(0) unless $n;
                    if ($fh == $u) {
                        syswrite($c, $buf) // POSIX::_exit(0);
                        $next = time + $n / $rate if $rate;
                    } else {
                        syswrite($u, $buf) // POSIX::_exit(0);
                    }
                }
            }
        }
    }
    close $srv;
    setpgrp($pid, $pid);    # the child does too: whichever comes first
    push @RELAYS, [$pid, $$];
    return ($port, $pid);
}

sub _tail {
    my ($f, $n) = @_;
    my @l = split /^/, _slurp($f);
    splice @l, 0, @l - ($n // 40) if @l > ($n // 40);
    return join '', @l;
}

# run_sync($etcd_urls, prefix => '/oauth2/', tls => {cacert, cert, key},
# args => [...], timeout => s): starts `oauth2-admin sync --store <store>
# --etcd <urls>` (stderr and stdout appended to $t->sync_log) and waits
# until the mirror is ready: its data.mdb exists and this run's log says
# it follows etcd ($SYNC_READY); dies if the daemon exits or is not ready
# in time.  Later admin_etcd calls and cluster_directive use the same
# URLs, prefix and TLS files (--etcd-cacert ..., cacert= ...).
sub run_sync {
    my ($self, $urls, %o) = @_;
    die "a sync daemon is already running" if $self->{sync_pid};
    my $log = $self->sync_log;
    my $store = $self->store;
    my @cmd = ($ADMIN, 'sync', '--store', $store, '--etcd', $urls,
        (defined $o{prefix} ? ('--prefix', $o{prefix}) : ()),
        _etcd_tls_args($o{tls}), @{$o{args} // []});
    my $start = (-s $log) || 0;    # a restart reads only its own lines
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>>', $log or POSIX::_exit(127);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    $self->{sync_pid} = $pid;
    $self->{cluster_etcd} = $urls;
    $self->{cluster_prefix} = $o{prefix};
    $self->{cluster_tls} = $o{tls};
    my $end = time + ($o{timeout} // 20);
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{sync_pid} = undef;
            die "oauth2-admin sync exited (status $?):\n" . _tail($log);
        }
        return $self if -f "$store/data.mdb"
            && substr(_slurp($log), $start) =~ $SYNC_READY;
        sleep 0.02;
    }
    die "oauth2-admin sync: mirror $store not ready:\n" . _tail($log);
}

# stop_sync(signal => 'TERM', timeout => 10): the daemon's exit status,
# undef if none ran
sub stop_sync {
    my ($self, %o) = @_;
    my $pid = $self->{sync_pid} or return undef;
    $self->{sync_pid} = undef;
    return _stop_child($pid, $o{signal} // 'TERM', $o{timeout} // 10, 0);
}

# --etcd-cacert <f> --etcd-cert <f> --etcd-key <f>, those given
sub _etcd_tls_args {
    my ($tls) = @_;
    return map { defined $tls->{$_} ? ("--etcd-$_", $tls->{$_}) : () }
        qw(cacert cert key);
}

# the cluster options of the CLI: --etcd <urls> [--prefix p]
# [--etcd-cacert f ...] (from run_sync unless given; tls => {} for none)
sub etcd_args {
    my ($self, %o) = @_;
    my $urls = $o{etcd} // $self->{cluster_etcd}
        // die "no etcd URL: run_sync first or pass etcd =>";
    my $prefix = $o{prefix} // $self->{cluster_prefix};
    return ('--etcd', $urls, (defined $prefix ? ('--prefix', $prefix) : ()),
        _etcd_tls_args($o{tls} // $self->{cluster_tls}));
}

# admin_etcd(@args): oauth2-admin --etcd <urls> --store <mirror> @args
sub admin_etcd {
    my ($self, @args) = @_;
    return $self->_run_cmd($ADMIN, $self->etcd_args, '--store', $self->store,
        @args);
}

sub admin_etcd_json {
    my ($self, @args) = @_;
    return _json_result("oauth2-admin --etcd @args", $self->admin_etcd(@args));
}

# new_app's options, the application written through etcd
sub new_app_etcd {
    my ($self, %a) = @_;
    return $self->admin_etcd_json(app_add_args(%a));
}

# the http-level directive of an edge: oauth2_cluster etcd=<urls>
# [prefix=..] [max_staleness=..] [cacert=.. cert=.. key=..] (URLs, prefix
# and TLS files from run_sync unless given; tls => {} for none)
sub cluster_directive {
    my ($self, %o) = @_;
    my $urls = $o{etcd} // $self->{cluster_etcd}
        // die "no etcd URL: run_sync first or pass etcd =>";
    my $prefix = $o{prefix} // $self->{cluster_prefix};
    my $tls = $o{tls} // $self->{cluster_tls} // {};
    my $d = "oauth2_cluster etcd=$urls";
    $d .= " prefix=$prefix" if defined $prefix;
    $d .= join '', map { defined $tls->{$_} ? " $_=$tls->{$_}" : () }
        qw(cacert cert key);
    $d .= " max_staleness=$o{max_staleness}" if defined $o{max_staleness};
    return "$d;\n";
}

# run_cmd_timeout($secs, @cmd): (exit code or 'timeout', stdout, stderr,
# seconds it took); the command is killed after $secs
sub run_cmd_timeout {
    my ($self, $secs, @cmd) = @_;
    my $out = "$self->{dir}/.cmdt.out.$$";
    my $err = "$self->{dir}/.cmdt.err.$$";
    my $t0 = time;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $code = _stop_child_after($pid, $secs);
    my $took = time - $t0;
    my ($o, $e) = (_slurp($out), _slurp($err));
    unlink $out, $err;
    return ($code, $o, $e, $took);
}

# waits up to $secs for $pid, then kills it: its status, or 'timeout'
sub _stop_child_after {
    my ($pid, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        return $? & 127 ? 128 + ($? & 127) : $? >> 8
            if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return 'timeout';
}

# the sync log has no sanitizer report
sub sync_log_ok {
    my ($self) = @_;
    return Test::More::unlike(_slurp($self->sync_log),
        qr/AddressSanitizer|runtime error:|LeakSanitizer/,
        'sync log: no sanitizer report');
}

END {
    local $?;
    # nginx first (the first END block would, but END blocks run last
    # defined first), then each mirror's daemon, then the etcd members
    for my $t (@INSTANCES) { eval { $t->stop } }
    for my $t (@INSTANCES) { eval { $t->stop_sync(timeout => 5) } }
    for my $t (@INSTANCES) { eval { $t->stop_etcd(timeout => 5) } }
}

1;
