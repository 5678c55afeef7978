# R77: a disk that fails under the store.  t/lib/faultdisk.c, preloaded
# into nginx and into the admin daemon, makes data.mdb's writes or syncs
# fail while a trigger file exists: ENOSPC on a write, EIO on a sync, and
# EIO on a meta page, after which LMDB marks the environment failed and
# answers MDB_PANIC to every transaction until the store is opened again.
# Each time: the write is answered 503 in the endpoint's shape with
# Retry-After and a line in the log saying why, nothing of it is written,
# what was answered before stays (a revocation refused leaves the token
# valid, as its answer said), no process dies, and once the disk is back
# everything works again without a restart.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

# AddressSanitizer must come first among the preloaded libraries: the
# asan run's nginx (scripts/nginx-asan) puts it there and ours after it;
# an asan-built oauth2-admin gets it named here
OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);
my $D = $t->dir;
my $shim = "$D/faultdisk.so";
system('cc', '-shared', '-fPIC', '-o', $shim, "$FindBin::Bin/lib/faultdisk.c",
    '-ldl') == 0 or BAIL_OUT('cannot build t/lib/faultdisk.c (cc)');
my $trigger = "$D/fault";
my $hits = "$trigger.hits";
OAuth2Test::write_file($hits, '');
chmod 0666, $hits;

sub preload_for {
    my ($bin) = @_;
    my ($code, $out) = $t->_run_cmd('/usr/bin/ldd', $bin);
    my $asan = $out =~ /libasan/ ? `gcc -print-file-name=libasan.so` : '';
    chomp $asan;
    return join ' ', grep { length } $asan, $shim;
}

my $app = $t->new_app(name => 'disk');
my $staff_app = $t->new_app(name => 'staff-app', grant => 'password',
    first_party => 1);
$t->admin_json('user', 'add', '--username', 'root', '--email',
    'root@example.com', '--password', 'Granite-owl-lamp-71', '--staff',
    '--pbkdf2-iterations', 1000);
my $staff = $t->issue_token($staff_app->{client_id}, user => 'root');
# seed 002's handshake API answers a store failure 500 (its shape), which
# oauth2_unavailable_total counts as the 503s of the other endpoints
my $apikey = $t->admin_json('apikey', 'add', $app->{client_id})->{api_key};

# one thread a worker and no background writes: every commit is one of
# the requests', and requests sent at once share commits
$t->write_config($t->default_http(
    extra_http => "oauth2_thread_pool one;\noauth2_expiry_cleanup off;\n",
    extra_server => $t->daemon_locations
        . "    location = /metrics { oauth2_metrics; }\n"
        . "    location /hs/ { oauth2_handshake; oauth2_handshake_solution "
        . "rental fbs=fbs_rental_db; oauth2_handshake_key "
        . "%%DIR%%/handshake.key; }\n"),
    main => "env OAUTH2_FAULT_FILE;\nthread_pool one threads=1;\n");
{
    local $ENV{OAUTH2_FAULT_FILE} = $trigger;
    local $ENV{LD_PRELOAD} = preload_for($OAuth2Test::NGINX =~ /nginx-asan/
        ? '/usr/sbin/nginx' : $OAuth2Test::NGINX);
    $t->run;
    $ENV{LD_PRELOAD} = preload_for($OAuth2Test::ADMIN);
    $t->run_daemon('--pbkdf2-iterations', 1000);
}
my $worker = ($t->worker_pids)[0];
my $daemon = $t->daemon_pid;

sub hit_count { -s $hits // 0 }

# the worker's commits and the changes they wrote (a batch that failed is
# none), and the changes a store error refused, from its metrics
sub metrics {
    my $body = $t->get('/metrics')->{body} // '';
    my %v;
    $v{$1} = $2
        while $body =~ /^oauth2_store_commit_batch_size_(count|sum) (\d+)$/mg;
    $v{errors} = $1
        if $body =~ /^oauth2_store_write_errors_total (\d+)$/m;
    $v{$1} = $2
        while $body =~ /^oauth2_unavailable_total\{reason="(\w+)"\} (\d+)$/mg;
    return \%v;
}

# $n token requests sent at once, before any answer is read: their statuses
sub burst {
    my ($n) = @_;
    my $form = OAuth2Test::form(grant_type => 'client_credentials');
    my @s = map { $t->send_async('POST', '/o/token/', [Authorization =>
        $t->basic($app->{client_id}, $app->{client_secret}),
        'Content-Type' => 'application/x-www-form-urlencoded'], $form) } 1 .. $n;
    return map { (OAuth2Test::read_async($_))[0]{status} } @s;
}
sub fail_disk {
    my ($how) = @_;
    OAuth2Test::write_file($trigger, "$how\n");
    chmod 0644, $trigger;
}
sub mend_disk { unlink $trigger }
sub users { scalar @{$t->api_all('/api/users/', $staff)} }

my $before = $t->access_token($app);
is($t->bearer_get('/protected/', $before)->{status}, 200,
    'a token issued while the disk works opens the location');

for my $case (['ENOSPC write', qr/No space left on device/],
    ['EIO sync', qr/Input\/output error/],
    ['EIO meta', qr/Input\/output error|MDB_PANIC/])
{
    my ($how, $why) = @$case;
    my $users = users();
    my $seen = hit_count();
    fail_disk($how);

    my $r = $t->token($app->{client_id}, $app->{client_secret});
    $t->oauth_error_ok($r, 503, 'temporarily_unavailable',
        "$how: a token request");
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
        "$how: ... with Retry-After");
    cmp_ok(hit_count(), '>', $seen, "$how: ... the disk failed under it");
    like(OAuth2Test::_slurp($t->error_log), $why, "$how: error.log says why");

    $r = $t->revoke($app->{client_id}, $app->{client_secret}, $before);
    is($r->{status}, 503, "$how: a revocation: 503, not done");

    my $m0 = metrics();
    $r = $t->api('POST', '/hs/create/', json => { api_key => $apikey,
        system_name => 'rentals', solution_name => 'rental' });
    is($r->{status}, 500, "$how: a handshake's creation: 500, seed 002's "
        . 'server error') or diag($r->{raw});
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
        "$how: ... with Retry-After");
    is(metrics()->{store} - ($m0->{store} // 0), 1, "$how: ... counted in "
        . 'oauth2_unavailable_total{reason="store"}');

    # token requests at once, on the disk that fails a write or a sync:
    # each batch the worker tries meets it once, never once more for
    # each of its changes (each tried alone would cost the failing disk
    # one more write or sync, the writer lock held: R75).  The batches
    # failed, so the metrics count no commit: each refused change is a
    # write error, and the disk met at most once for each (16 batches of
    # one; fewer when they group), where a retry of each change alone
    # would make it 16 more than the batches
    if ($how ne 'EIO meta') {
        my ($m0, $h0) = (metrics(), hit_count());
        my @st = burst(16);
        my ($m1, $h1) = (metrics(), hit_count());
        my $errors = $m1->{errors} - $m0->{errors};
        my $hits = $h1 - $h0;
        is(join(' ', @st), join(' ', (503) x 16),
            "$how: 16 token requests at once: each 503");
        is($errors, 16, "$how: ... oauth2_store_write_errors_total grew by "
            . 'the 16 refused changes');
        ok($hits >= 1 && $hits <= $errors, "$how: ... the disk met once a "
            . "batch at most ($hits times for $errors changes)");
        is($m1->{count} - $m0->{count}, 0,
            "$how: ... and no commit counted for the failed batches");
        is($m1->{sum} - $m0->{sum}, 0, "$how: ... nor any change written");
        is($m1->{store} - $m0->{store}, 16, "$how: ... and 16 503s of the "
            . 'store in oauth2_unavailable_total{reason="store"}');
    }

    $seen = hit_count();
    $r = $t->api('POST', '/api/users/', token => $staff, json => {
        username => 'newcomer', password => 'Velvet-kettle-orbit-28',
        email => 'newcomer@example.com' });
    is($r->{status}, 503, "$how: the daemon's API: a user's creation is 503")
        or diag($r->{raw});
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
        "$how: ... with Retry-After");
    cmp_ok(hit_count(), '>', $seen, "$how: ... the disk failed under it");

    mend_disk();
    # the module opens a failed store again once no write holds it, within
    # a second; the daemon before its next transaction
    my $deadline = time + 5;
    my $ok;
    while (time < $deadline) {
        $ok = $t->bearer_get('/protected/', $before);
        last if $ok->{status} == 200;
        sleep 0.2;
    }
    is($ok->{status}, 200, "$how: the disk back, the token the refused "
        . 'revocation named still opens the location');
    my $after = $t->token($app->{client_id}, $app->{client_secret});
    is($after->{status}, 200, "$how: the disk back, a token is issued")
        or diag($after->{raw});
    is($t->bearer_get('/protected/', $after->{json}{access_token} // '-')
        ->{status}, 200, "$how: ... and opens the location");
    is(users(), $users, "$how: the refused user was not written");
    $r = $t->api('POST', '/api/users/', token => $staff, json => {
        username => "back-" . ($users + 1), password => 'Velvet-kettle-orbit-28',
        email => 'back@example.com' });
    is($r->{status}, 201, "$how: the disk back, the daemon creates a user")
        or diag($r->{raw});
    $r = $t->api('POST', '/hs/create/', json => { api_key => $apikey,
        system_name => 'rentals', solution_name => 'rental' });
    is($r->{status}, 201, "$how: the disk back, a handshake is created")
        or diag($r->{raw});
    is(($t->worker_pids)[0], $worker, "$how: the worker never died");
    ok(kill(0, $daemon), "$how: the daemon never died");
}

# a revocation the disk refused was refused: the token revoked once it is
# back, refused at once
my $r = $t->revoke($app->{client_id}, $app->{client_secret}, $before);
is($r->{status}, 200, 'the disk back, the revocation is done');
is($t->bearer_get('/protected/', $before)->{status}, 401,
    '... and the token refused');

# token issue --count on a disk that fails after its first commit: the
# command exits 1, and keeps its file with the tokens committed before
# (valid until they expire: a file deleted would leave them held by no
# one), saying how many
{
    my $file = $t->dir . '/bulk.tokens';
    fail_disk("EIO sync after 2");
    my ($code, $out, $err);
    {
        local $ENV{OAUTH2_FAULT_FILE} = $trigger;
        local $ENV{LD_PRELOAD} = preload_for($OAuth2Test::ADMIN);
        ($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
            $app->{client_id}, '--count', 30000, '--out', $file);
    }
    mend_disk();
    is($code, 1, 'token issue --count, the disk failing after a commit: '
        . 'exit 1') or diag($err);
    my ($issued) = $err =~ /(\d+) tokens were issued before that/;
    ok($issued && $issued < 30000, '... saying how many were issued '
        . 'before (' . ($issued // 'none') . ')') or diag($err);
    ok(-f $file, '... and keeping its file');
    my @tokens = -f $file ? split /\n/, OAuth2Test::_slurp($file) : ();
    is(scalar @tokens, $issued // -1, '... which holds each of them');
    is($t->bearer_get('/protected/', $tokens[-1] // '-')->{status}, 200,
        '... valid');
}

$t->stop_daemon;
$t->daemon_log_ok;
$t->done_testing;
