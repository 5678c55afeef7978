# Cluster mode against an etcd with its default limits (issue 13;
# SECURITY.md R39, R53, R70): etcd refuses a Txn of more than
# --max-txn-ops operations (128 by default) or --max-request-bytes
# (1.5 MiB), before proposing it.  A change that revokes many tokens at
# once (an application's or a user's deletion, a password change, an
# expiry round) is larger than that with a few dozen tokens: the write
# path then revokes those tokens first, in rounds etcd takes, and decides
# the change again; bulk issuance halves its rounds.  Without that, an
# application with 60 live tokens could not be deleted at all.  A change
# too large with no tokens to revoke first (an import-django of 50
# users) is refused whole, with a message that names the etcd options and
# the way in (a local store's backup restored into etcd, which then
# works), and leaves nothing behind.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
my $url = $t->run_etcd(limits => 0);    # etcd's defaults: 128 ops, 1.5 MiB
$t->run_sync($url);
my $app = $t->new_app_etcd(name => 'many', grant => ['client_credentials']);
my $other = $t->new_app_etcd(name => 'other', grant => ['client_credentials']);
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => $t->cluster_directive . "oauth2_expiry_cleanup 1s;\n"))->run;

# the number of etcd keys under the cluster's <db>/
sub etcd_count {
    my ($db) = @_;
    my $p = "/oauth2/$db/";
    (my $end = $p) =~ s/\/\z/0/;
    my ($code, $body) = $t->etcd_post('/v3/kv/range', JSON::PP->new->encode({
        key => encode_base64($p, ''), range_end => encode_base64($end, ''),
        count_only => JSON::PP::true }));
    die "etcd range $p: $code $body" unless $code == 200;
    return JSON::PP->new->decode($body)->{count} // 0;
}

sub tokens_of_file {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    chomp(my @l = <$fh>);
    return @l;
}

# statuses of /protected/ for each token, e.g. "200" or "401"
sub statuses {
    my %s;
    $s{$t->bearer_get('/protected/', $_)->{status}}++ for @_;
    return join ',', sort keys %s;
}

# oauth2-admin runs as the store's owner (the workers' user): a directory
# it may write to
my $OUT = $t->dir . '/out';
mkdir $OUT or die "$OUT: $!";
chmod 0777, $OUT;

sub issue_many {
    my ($client, $n, $file, @more) = @_;
    my ($code, $out, $err) = $t->admin_etcd('token', 'issue', '--client-id',
        $client, '--count', $n, '--out', "$OUT/$file", @more);
    my $j = eval { JSON::PP->new->decode($out) } // {};
    return ($code, $j, $err);
}

sub section {
    my ($name, $code) = @_;
    my $ok = eval { $code->(); 1 };
    fail("$name: $@") unless $ok;
}

my $N = 600;    # 1200 puts and 600 compares: far beyond 128

section('bulk issuance', sub {
    my ($code, $j, $err) = issue_many($app->{client_id}, $N, 'many.tokens');
    is($code, 0, "token issue --count $N succeeds against etcd's 128 "
        . "operations a Txn (its rounds halved)") or diag $err;
    is($j->{issued}, $N, "... and issues $N");
    is(etcd_count('tokens'), $N, "... which etcd holds");
    my @sample = (tokens_of_file("$OUT/many.tokens"))[0, 299, $N - 1];
    is(statuses(@sample), '200', '... and the edge accepts');
});

section('an application with many tokens is deleted', sub {
    my @sample = (tokens_of_file("$OUT/many.tokens"))[0, 1, 300, $N - 1];
    my ($code, $out, $err) = $t->admin_etcd('app', 'delete',
        $app->{client_id});
    is($code, 0, "app delete of an application with $N tokens succeeds "
        . '(R70: everything under it revoked)') or diag "$out$err";
    is(etcd_count('tokens'), 0, '... etcd holds none of its tokens');
    is(etcd_count('client_tokens'), 0, '... nor their index entries');
    is(statuses(@sample), '401', '... and the edge refuses them');
    my ($c2, undef, $e2) = $t->admin_etcd('app', 'show', $app->{client_id});
    is($c2, 1, '... the application is gone') or diag $e2;
});

section('a password change revokes many tokens', sub {
    my ($ac, $ao, $ae) = $t->admin_etcd('user', 'add', '--username', 'alice',
        '--email', 'alice@example.com', '--password', 'Tr0ub4dor-alice-3',
        '--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
    is($ac, 0, 'alice added through etcd') or diag "$ao$ae";
    my ($code, $j, $err) = issue_many($other->{client_id}, 300, 'alice.tokens',
        '--user', 'alice');
    is($j->{issued}, 300, '300 tokens issued to alice') or diag $err;
    my ($c, $out, $e) = $t->admin_etcd('user', 'set-password', 'alice',
        '--password', 'Tr0ub4dor-alice-4', '--pbkdf2-iterations',
        $OAuth2Authorize::PBKDF2);
    is($c, 0, 'user set-password succeeds') or diag "$out$e";
    my $r = eval { JSON::PP->new->decode($out) } // {};
    is($r->{tokens_revoked}, 300,
        '... and counts the 300 tokens it revoked, in rounds or not');
    is(etcd_count('user_tokens'), 0, '... none of alice\'s tokens left');
    is(statuses((tokens_of_file("$OUT/alice.tokens"))[0, 150, 299]),
        '401', '... and the edge refuses them (R39)');

    ($code, $j, $err) = issue_many($other->{client_id}, 200, 'alice2.tokens',
        '--user', 'alice');
    is($j->{issued}, 200, '200 more') or diag $err;
    ($c, $out, $e) = $t->admin_etcd('user', 'delete', 'alice');
    is($c, 0, 'user delete of a user with 200 tokens succeeds')
        or diag "$out$e";
    is(etcd_count('user_tokens'), 0, '... and leaves none of them');
    is(etcd_count('users'), 0, '... nor the user');
});

section('the admin daemon deletes what has many tokens', sub {
    my ($c, $o, $e) = $t->admin_etcd('user', 'add', '--username', 'root',
        '--email', 'root@example.com', '--staff', '--password',
        'Tr0ub4dor-root-3', '--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
    is($c, 0, 'a staff user through etcd') or diag "$o$e";
    my $first = $t->new_app_etcd(name => 'first', grant => 'password',
        first_party => 1);
    my $staff = $t->admin_etcd_json('token', 'issue', '--client-id',
        $first->{client_id}, '--user', 'root')->{access_token} // 'x';
    ($c, $o, $e) = $t->admin_etcd('user', 'add', '--username', 'carol',
        '--email', 'carol@example.com', '--password', 'Tr0ub4dor-carol-3',
        '--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
    my $carol = eval { JSON::PP->new->decode($o) } // {};
    my $doomed = $t->new_app_etcd(name => 'doomed',
        grant => ['client_credentials']);
    my (undef, $j1) = issue_many($other->{client_id}, 300, 'carol.tokens',
        '--user', 'carol');
    my (undef, $j2) = issue_many($doomed->{client_id}, 300, 'doomed.tokens');
    is(($j1->{issued} // 0) + ($j2->{issued} // 0), 600,
        '300 tokens for carol, 300 for an application');
    $t->run_daemon($t->etcd_args, '--pbkdf2-iterations',
        $OAuth2Authorize::PBKDF2);
    my $r = $t->api('DELETE', "/api/users/$carol->{id}/",
        port => $t->daemon_port, token => $staff, timeout => 30);
    is($r->{status}, 204, 'DELETE of the user through `--etcd serve`: 204')
        or diag $r->{raw};
    $r = $t->api('DELETE', "/api/applications/$doomed->{client_id}/",
        port => $t->daemon_port, token => $staff, timeout => 30);
    is($r->{status}, 204, 'DELETE of the application: 204') or diag $r->{raw};
    is(statuses((tokens_of_file("$OUT/carol.tokens"))[0, 299],
        (tokens_of_file("$OUT/doomed.tokens"))[0, 299]), '401',
        '... and the edge refuses their tokens');
    is(etcd_count('user_tokens'), 1, '... none left in etcd but the staff '
        . 'token');
    is($t->api('GET', '/api/users/', port => $t->daemon_port,
        token => $staff)->{status}, 200, 'the staff token still works');
    $t->stop_daemon;
});

section('the expiry round fits', sub {
    my $before = etcd_count('tokens');    # the staff user's token
    my ($code, $j, $err) = issue_many($other->{client_id}, 400,
        'short.tokens', '--ttl', 1);
    is($j->{issued}, 400, '400 tokens of 1 s') or diag $err;
    my $t0 = time;
    my $left;
    while (time - $t0 < 15) {
        $left = etcd_count('tokens') - $before;
        last if !$left;
        sleep 0.2;
    }
    is($left, 0, 'the background expiry (batch 1000) removes them all '
        . 'through etcd\'s 128 operations a Txn');
    # the round logs once it has returned: after etcd (and its rounds of
    # revocations) applied the deletions the count saw
    my $log = '';
    for (1 .. 50) {
        $log = OAuth2Test::_slurp($t->error_log);
        last if $log =~ /expiry removed \d+ expired records/;
        sleep 0.2;
    }
    unlike($log, qr/expiry round failed/, '... with no failed round');
    like($log, qr/expiry removed \d+ expired records/, '... and says so');
});

section('ordinary changes are one Txn as before', sub {
    my $tok = $t->access_token($other);
    is(statuses($tok), '200', 'a token from the edge\'s token endpoint works');
    my $r = $t->revoke($other->{client_id}, $other->{client_secret}, $tok);
    is($r->{status}, 200, '... is revoked');
    is(statuses($tok), '401', '... and refused');
});

section('a realm with many records is deleted', sub {
    my $outside = etcd_count('users') + etcd_count('tokens')
        + etcd_count('clients');
    my ($c, $o, $e) = $t->admin_etcd('realm', 'add', 'shop');
    is($c, 0, 'realm add shop') or diag "$o$e";
    my $added = 0;
    for my $i (1 .. 50) {
        ($c, $o, $e) = $t->admin_etcd('--realm', 'shop', 'user', 'add',
            '--username', "u$i", '--email', "u$i\@example.com",
            '--password', 'Tr0ub4dor-shop-3', '--pbkdf2-iterations',
            $OAuth2Authorize::PBKDF2);
        $added += !$c;
    }
    is($added, 50, "50 users in it (150 records with their indexes)");
    my $shop = $t->admin_etcd_json('--realm', 'shop', 'app', 'add', '--name',
        'shop', '--grant', 'client_credentials');
    ($c, my $j, $e) = issue_many($shop->{client_id}, 200, 'shop.tokens',
        '--realm', 'shop');
    is($j->{issued}, 200, '200 tokens in it') or diag $e;
    ($c, $o, $e) = $t->admin_etcd('realm', 'delete', 'shop');
    is($c, 0, 'realm delete succeeds (1000 records a commit, halved)')
        or diag "$o$e";
    my $r = eval { JSON::PP->new->decode($o) } // {};
    # (its user sequence stays: a realm added again never reuses an id)
    is($r->{deleted_records}, 50 * 3 + 1 + 200,
        '... counting its users with their indexes, its '
        . 'application and its tokens (revoked first, one each)');
    is(etcd_count('users') + etcd_count('tokens') + etcd_count('clients'),
        $outside, '... and etcd holds nothing of it');
});

section('a change too large on its own is refused whole', sub {
    # a cluster of its own, with etcd's defaults and no records yet
    my $u = OAuth2Test->new;
    $u->run_sync($u->run_etcd(limits => 0));
    my @users = map { { model => 'auth.user', pk => $_, fields => {
        username => "d$_", email => "d$_\@example.com",
        password => 'pbkdf2_sha256$1000$salt$' . ('A' x 43) } } } 1 .. 50;
    my $dump = $u->dir . '/dump.json';
    OAuth2Test::write_file($dump, JSON::PP->new->encode(\@users));
    chmod 0644, $dump;
    my ($code, $out, $err) = $u->admin_etcd('import-django', $dump);
    is($code, 1, 'import-django of 50 users (one transaction, no tokens to '
        . 'revoke first) against etcd\'s 128 operations fails');
    like($err, qr/too many operations.*--max-txn-ops 10000.*nothing was imported.*backup.*restore/s,
        '... with etcd\'s words, the options to raise and the way in');
    my ($lc, $list) = $u->admin_etcd('user', 'list');
    is($list =~ s/\s+//gr, '[]', '... and leaves no record behind');

    # the way it names: a local store, its backup, a restore into etcd
    my $local = $u->dir . '/local';
    ($code, $out, $err) = $u->_run_cmd($OAuth2Test::ADMIN, '--store', $local,
        'import-django', $dump);
    is($code, 0, 'the dump goes into a local store') or diag $err;
    ($code, $out, $err) = $u->_run_cmd($OAuth2Test::ADMIN, '--store', $local,
        'backup', $u->dir . '/dump.backup');
    is($code, 0, '... which is backed up') or diag $err;
    ($code, $out, $err) = $u->admin_etcd('restore', $u->dir . '/dump.backup');
    is($code, 0, '... and restored into the cluster, in Txns etcd takes')
        or diag "$out$err";
    my ($sc, $show) = $u->admin_etcd('user', 'show', 'd50');
    like($show, qr/"username": "d50"/, '... where its users are');

    # an etcd that takes fewer operations than a round of the restore's:
    # the records were deleted first, so it says the cluster holds part
    # of the backup only, and how to finish
    my $v = OAuth2Test->new;
    $v->run_sync($v->run_etcd(limits => 0, extra => ['--max-txn-ops', 64]));
    ($code, $out, $err) = $v->admin_etcd('restore', $u->dir . '/dump.backup');
    is($code, 1, 'a restore into an etcd of 64 operations a Txn: exit 1');
    like($err, qr/the cluster now holds part of the backup only: run the restore again with --force/,
        '... saying the cluster holds part of the backup, and what to do');
});

$t->sync_log_ok;
$t->done_testing;
