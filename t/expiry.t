# oauth2_expiry_cleanup: the module removes what has expired by itself, in
# bounded rounds, one worker at a time (a lease in the store), and keeps
# doing so across a reload; off leaves it to oauth2-admin cleartokens.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $short = $t->new_app(name => 'short', ttl => 1);
my $long = $t->new_app(name => 'long');
my $medium = $t->new_app(name => 'medium', ttl => 50);

# the removals error.log reports (info), as [pid, count]; of $t unless
# another instance is given
sub removals {
    my ($n) = @_;
    my @r;
    for (split /\n/, OAuth2Test::_slurp(($n // $t)->error_log)) {
        push @r, [$1, $2] if /\[info\] (\d+)#\d+: oauth2: expiry removed (\d+) expired/;
    }
    return @r;
}
sub removed_total { my $n = 0; $n += $_->[1] for removals(); return $n }
sub wait_removed {
    my ($want, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        return 1 if removed_total() >= $want;
        select(undef, undef, undef, 0.2);
    }
    return 0;
}

$t->write_config($t->default_http(
    extra_http => 'oauth2_expiry_cleanup 1s batch=50;'))->run;

# a token with 50 s left, made first: the first rounds look at it
my $unexpired = $t->access_token($medium);
# more than two rounds' worth: the backlog is worked off round after round
my @expiring = map { $t->access_token($short) } 1 .. 120;
my $live = $t->access_token($long);
is(scalar(grep { defined } @expiring), 120, '120 short-lived tokens issued');

ok(wait_removed(120, 20), 'the module removed the 120 expired tokens by itself')
    or diag(OAuth2Test::_slurp($t->error_log));
my @rounds = removals();
ok(!grep({ $_->[1] > 50 } @rounds), 'no round removed more than batch=50 ('
    . join(',', map { $_->[1] } @rounds) . ')');
cmp_ok(scalar(@rounds), '>=', 3, 'so it took at least three rounds');
my %pids = map { $_->[0] => 1 } @rounds;
is(scalar(keys %pids), 1, 'all by one worker: the lease holder');
# R45: the rounds judge expiry by the time it is: a token of 50 s is
# still there after them, and still opens a location
is($t->bearer_get('/protected/', $unexpired)->{status}, 200,
    'a token with 50 s left outlived the rounds that removed the 120 (R45)');

# one process at a time while it matters: with batch=1 the holder works
# off a backlog in rounds 10 ms apart for a second or more, so the other
# worker's rounds come in between; they find the lease taken and remove
# nothing (the burst above is gone in 30 ms, whatever the others do)
my $t1 = OAuth2Test->new;
my $s1 = $t1->new_app(name => 'short1', ttl => 1);
$t1->write_config($t1->default_http(
    extra_http => 'oauth2_expiry_cleanup 1s batch=1;'))->run;
$t1->access_token($s1) for 1 .. 150;
my $end = time + 30;
my $n1 = 0;
while (time < $end) {
    $n1 = 0;
    $n1 += $_->[1] for removals($t1);
    last if $n1 >= 150;
    select(undef, undef, undef, 0.2);
}
is($n1, 150, 'batch=1: the 150 expired tokens removed one a round');
my %pids1 = map { $_->[0] => 1 } removals($t1);
is(scalar(keys %pids1), 1, 'all by one worker of two, though the backlog '
    . 'lasted past the other\'s rounds (' . join(',', sort keys %pids1) . ')');
$t1->done;

unlike(OAuth2Test::_slurp($t->error_log), qr/expiry round failed/,
    'no round failed');
my $j = $t->admin_json('cleartokens');
is($j->{deleted}, 0, 'cleartokens finds nothing left to delete');
is($t->bearer_get('/protected/', $live)->{status}, 200,
    'a live token is untouched and still opens a location');
is($t->bearer_get('/protected/', $expiring[0])->{status}, 401,
    'an expired one: 401');

# a reload: the old workers give the lease up as they exit, and the new
# ones go on
my $before = removed_total();
$t->reload;
my @more = map { $t->access_token($short) } 1 .. 10;
ok(wait_removed($before + 10, 20), 'after a reload, expiry goes on')
    or diag(OAuth2Test::_slurp($t->error_log));
my %after = map { $_->[0] => 1 } (removals())[scalar(@rounds) .. scalar(removals()) - 1];
my @new_workers = $t->worker_pids;
ok((grep { $after{$_} } @new_workers), 'done by a worker of the new generation');

# R82: the rounds come at the operator's interval, not only at a worker's
# first round and after a round cut short by its batch: with 1s, tokens
# that expire once the new generation's first rounds are over are gone
# within seconds (the default interval would leave them a minute)
sleep 2;
my $settled = removed_total();
$t->access_token($short) for 1 .. 5;
ok(wait_removed($settled + 5, 8), 'oauth2_expiry_cleanup 1s: 5 tokens that '
    . 'expire after the first rounds are removed within 8 s (R82)')
    or diag(OAuth2Test::_slurp($t->error_log));

# the lease record ("<owner> <until>") of $n's store, or undef
sub lease_of {
    my ($n) = @_;
    my ($c, $out) = $n->_run_cmd('/usr/bin/mdb_dump', '-p', '-s', 'meta',
        $n->store);
    return undef if $c;
    my @l = split /\n/, $out;
    for my $i (0 .. $#l - 1) {
        return substr($l[$i + 1], 1) if $l[$i] eq ' expiry_lease';
    }
    return undef;
}

# the total $n's error.log reports removed, once it reaches $want or
# $secs have passed
sub removed_within {
    my ($n, $want, $secs) = @_;
    my $end = time + $secs;
    my $got = 0;
    while (1) {
        $got = 0;
        $got += $_->[1] for removals($n);
        last if $got >= $want || time >= $end;
        select(undef, undef, undef, 0.1);
    }
    return $got;
}

# R82: an exiting worker gives the lease up, so that after a reload a new
# worker goes on at its first round (1 to 2 s after it starts), not once
# the old lease has lapsed: 3 intervals, here 3 minutes
my $t3 = OAuth2Test->new;
my $s3 = $t3->new_app(name => 'short3', ttl => 1);
$t3->write_config($t3->default_http(
    extra_http => 'oauth2_expiry_cleanup 60s;'))->run;
my $lease;
$end = time + 10;
until (defined($lease = lease_of($t3)) || time >= $end) {
    select(undef, undef, undef, 0.1);
}
my @old3 = $t3->worker_pids;
like($lease // '', qr/^(\d+)-\d+-\d+ \d+$/,
    '60s: a worker took the lease at its first round');
ok(defined $lease && (grep { $lease =~ /^$_-/ } @old3),
    '... a worker of the first generation');
# expired before the reload; the holder's next round is a minute away
$t3->access_token($s3) for 1 .. 5;
sleep 1.1;
$t3->reload;
my @new3 = $t3->worker_pids;
is(removed_within($t3, 5, 10), 5, 'after a reload the 5 expired tokens are '
    . 'removed within 10 s: the old holder gave the lease up as it exited');
my %by3 = map { $_->[0] => 1 } removals($t3);
is(join(',', grep { my $p = $_; !grep { $_ == $p } @new3 } sort keys %by3),
    '', '... removed by the new generation only');
$t3->done;

# R82: a round that stopped at its scan bound (ten records a batch) goes
# on within a second, not at the next interval.  Tokens sort by the time
# they were made: the first round (batch=1) scans the 10 live ones ahead
# of the 3 expired ones, and stops; the next one, a second later and not
# a minute later, starts removing.
my $t4 = OAuth2Test->new;
my $l4 = $t4->new_app(name => 'long4');
my $s4 = $t4->new_app(name => 'short4', ttl => 1);
$t4->issue_token($l4->{client_id}) for 1 .. 10;
$t4->issue_token($s4->{client_id}) for 1 .. 3;
sleep 1.1;
$t4->write_config($t4->default_http(
    extra_http => 'oauth2_expiry_cleanup 60s batch=1;'))->run;
is(removed_within($t4, 3, 10), 3, '60s batch=1: the 3 expired tokens behind '
    . '10 live ones are removed within 10 s, not after a minute');
is($t4->admin_json('cleartokens')->{deleted}, 0,
    '... and cleartokens finds nothing left');
$t4->done;

# bad values: nginx -t names the directive
# batch=10001: past what one commit deletes whole (Store::kRevokeWhole),
# its last run would hold the writer for every worker (R75)
for my $bad ('0s', '1s batch=0', '1s batch=abc', 'off batch=5', '2s 3s',
             '100000000d', '1s batch=10001') {
    $t->write_config($t->default_http(
        extra_http => "oauth2_expiry_cleanup $bad;"), file => $t->dir . '/bad.conf');
    my ($code, $out) = $t->nginx_t(file => $t->dir . '/bad.conf');
    isnt($code, 0, "oauth2_expiry_cleanup $bad: nginx -t fails");
    like($out, qr/oauth2_expiry_cleanup/, "... naming the directive");
}
$t->write_config($t->default_http(
    extra_http => "oauth2_expiry_cleanup 1s batch=10000;"), file => $t->dir . '/good.conf');
is(($t->nginx_t(file => $t->dir . '/good.conf'))[0], 0, 'batch=10000: nginx -t passes');

# off: nothing is removed but by cleartokens
my $t2 = OAuth2Test->new;
my $s2 = $t2->new_app(name => 'short2', ttl => 1);
$t2->write_config($t2->default_http(extra_http => 'oauth2_expiry_cleanup off;'))->run;
$t2->access_token($s2) for 1 .. 5;
sleep 4;
unlike(OAuth2Test::_slurp($t2->error_log), qr/expiry removed/, 'off: no expiry round ran');
is($t2->admin_json('cleartokens')->{deleted}, 5,
    'off: the 5 expired tokens were left for cleartokens');

$t->done_testing;
