# reload, worker crash, concurrent issuance (docs/security.md R42, R66, R73, R76)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 2);
my $app = $t->new_app(name => 'life');
$t->write_default_config->run;
# the one alert this file causes on purpose
$t->expect_log(qr/worker process \d+ exited on signal 9/);

my @w = $t->worker_pids;
is(scalar @w, 2, 'two workers');

sub valid_everywhere {
    my ($tok, $n) = @_;
    my %st;
    $st{$t->bearer_get('/protected/', $tok)->{status}}++ for 1 .. $n;
    return join ',', sort keys %st;
}

my @before = map { $t->access_token($app) } 1 .. 5;
is(valid_everywhere($before[0], 8), '200', 'token validates before reload');

# R76: reload
$t->reload;
my @w2 = $t->worker_pids;
is(scalar @w2, 2, 'two new workers after reload');
ok(!grep({ my $o = $_; grep { $_ == $o } @w2 } @w),
    'reload replaced the workers');
my @after = map { valid_everywhere($_, 4) } @before;
is("@after", join(' ', ('200') x 5),
    'tokens issued before reload validate after (R76)');
my $new = $t->access_token($app);
is(valid_everywhere($new, 8), '200', 'a token issued after reload works');
my $rv = $t->revoke($app->{client_id}, $app->{client_secret}, $before[4]);
is($rv->{status}, 200, 'revoke after reload: 200');
is(valid_everywhere($before[4], 8), '401',
    'revoked after reload: 401 in every worker');

# R76: reloads under load: no 5xx, no failed request
{
    my $out = $t->dir . '/load.out';
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open my $fh, '>', $out or POSIX::_exit(1);
        my $end = time + 2.5;
        while (time < $end) {
            my $r = $t->token($app->{client_id}, $app->{client_secret});
            my $v = $t->bearer_get('/protected/', $before[0]);
            print $fh "$r->{status} $v->{status}\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    for (1 .. 3) { sleep 0.5; $t->reload }
    waitpid $pid, 0;
    my %st;
    for (split /\n/, OAuth2Test::_slurp($out)) { $st{$_}++ }
    ok(keys %st, 'requests ran during the reloads');
    is(join(',', sort keys %st), '200 200',
        'during 3 reloads: every token and bearer request 200 (R76)')
        or diag(join ', ', map { "$_: $st{$_}" } sort keys %st);
}

# R73: kill -9 one worker
my ($victim) = $t->worker_pids;
kill 'KILL', $victim;
my $end = time + 5;
my @w3;
while (time < $end) {
    @w3 = $t->worker_pids;
    last if @w3 == 2 && !grep { $_ == $victim } @w3;
    sleep 0.05;
}
is(scalar(grep { $_ != $victim } @w3), 2, 'master respawned the killed worker');
my %st;
$st{$t->token($app->{client_id}, $app->{client_secret})->{status}}++
    for 1 .. 10;
is(join(',', sort keys %st), '200', 'token requests succeed after kill -9');
is(valid_everywhere($before[0], 8), '200',
    'old tokens validate after kill -9 (R73)');
is(valid_everywhere($before[4], 8), '401',
    'revoked token stays revoked after kill -9 (R73)');
like(OAuth2Test::_slurp($t->error_log), qr/exited on signal 9/,
    'error.log records the kill');

# R42: concurrent issuance, 8 children x 25 tokens
my @kids;
my $tmp = $t->dir;
for my $k (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open my $fh, '>', "$tmp/kid$k.out" or POSIX::_exit(1);
        for (1 .. 25) {
            my $r = $t->token($app->{client_id}, $app->{client_secret});
            my $tok = $r->{status} == 200 ? $r->{json}{access_token} : '-';
            print $fh "$r->{status} $tok\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my (%codes, %toks);
for my $k (1 .. 8) {
    for (split /\n/, OAuth2Test::_slurp("$tmp/kid$k.out")) {
        my ($c, $tok) = split / /;
        $codes{$c}++;
        $toks{$tok}++ if $c == 200;
    }
}
is($codes{200} // 0, 200, '8 x 25 concurrent token requests: 200 x 200');
is(scalar keys %toks, 200, '200 distinct tokens (R42)');
my $bad = 0;
for my $tok (keys %toks) {
    $bad++ unless $t->bearer_get('/protected/', $tok)->{status} == 200;
}
is($bad, 0, 'every concurrently issued token validates');

# R82: without oauth2_expiry_cleanup the module still removes what has
# expired, by default once a minute, the first round a second or two
# after a worker starts: three tokens that expired before nginx started
# are gone in that first round, with no cleartokens
my $x = OAuth2Test->new;
my $xapp = $x->new_app(name => 'expiring');
$x->admin_json('token', 'issue', '--client-id', $xapp->{client_id},
    '--ttl', 1) for 1 .. 3;
sleep 1.05;
$x->write_default_config->run;
my $xlog = '';
$end = time + 6;
while (time < $end) {
    $xlog = OAuth2Test::_slurp($x->error_log);
    last if $xlog =~ /oauth2: expiry removed/;
    sleep 0.1;
}
like($xlog, qr/\[info\].*oauth2: expiry removed 3 expired records/,
    'no oauth2_expiry_cleanup: the module removed the 3 expired tokens (R82)');
is($x->admin_json('cleartokens')->{deleted}, 0,
    'no oauth2_expiry_cleanup: nothing was left for cleartokens');

$t->done_testing;
