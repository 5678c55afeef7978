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

# bad values: nginx -t names the directive
for my $bad ('0s', '1s batch=0', '1s batch=abc', 'off batch=5', '2s 3s',
             '100000000d') {
    $t->write_config($t->default_http(
        extra_http => "oauth2_expiry_cleanup $bad;"), file => $t->dir . '/bad.conf');
    my ($code, $out) = $t->nginx_t(file => $t->dir . '/bad.conf');
    isnt($code, 0, "oauth2_expiry_cleanup $bad: nginx -t fails");
    like($out, qr/oauth2_expiry_cleanup/, "... naming the directive");
}

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
