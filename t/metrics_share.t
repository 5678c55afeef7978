# The table of issued series shared by many realms (README "Metrics":
# each realm with a token endpoint is guaranteed 1024 / (2 x realms)
# series, and takes more only while the table keeps free what the other
# realms' guarantees still need), checked against a model of that rule
# with 40 realms, two workers, a flood from one realm, and a reload that
# drops half the realms' token endpoints (their series then reserve
# nothing, and the new workers count a table already filled).
#
# Whether a realm has room is arithmetic on counts each worker keeps up
# to date as slots fill, not a walk of every slot's realm against every
# realm's name with the zone's mutex held, which every token of a realm
# past its share paid (R88: slow work must not delay issuance);
# scripts/bench-metrics-share measures that.  This file holds the
# behaviour: the same series and untracked counts as the rule gives.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $SLOTS = 1024;
my @realms = map { sprintf 'r%02d', $_ } 1 .. 40;

for my $r (@realms) {
    my ($code, undef, $err) = $t->admin('realm', 'add', $r);
    is($code, 0, "realm add $r") or diag($err);
}
# one application in each of r21..r40, 1100 in r01, 20 then 30 in r02
my %apps = map { ($_ => [$t->bulk_apps(1, "$_-one", '--realm', $_)]) }
    @realms[20 .. 39];
my @flood = $t->bulk_apps(1100, 'r01-flood', '--realm', 'r01');
my @r02a = $t->bulk_apps(20, 'r02-a', '--realm', 'r02');
my @r02b = $t->bulk_apps(30, 'r02-b', '--realm', 'r02');

my %PORT = map { ($realms[$_] => $t->port($_ + 1)) } 0 .. $#realms;

# nginx.conf with a token endpoint in each of @issuing
sub conf {
    my (@issuing) = @_;
    my $s = '';
    for my $r (@issuing) {
        $s .= "server {\n    listen 127.0.0.1:$PORT{$r};\n"
            . "    oauth2_realm $r;\n"
            . "    oauth2_issuer http://127.0.0.1:$PORT{$r};\n"
            . "    location = /o/token/ { oauth2_token; }\n}\n";
    }
    return $t->default_http(
        extra_http => "oauth2_client_auth_limit off;\noauth2_dpop off;\n",
        extra_server => "    location = /metrics { oauth2_metrics all; }\n")
        . $s;
}

# the model: the series each realm holds, the untracked tokens
my (%held, %series, $untracked, @issuing);
$untracked = 0;
sub model_token {
    my ($realm, $client) = @_;
    my $key = "$realm|$client";
    return if $series{$key};
    my $n = @issuing;
    my $g = int($SLOTS / (2 * ($n || 1))) || 1;
    my $filled = keys %series;
    my $mine = $held{$realm} // 0;
    my $reserved = 0;
    for my $k (grep { $_ ne $realm } @issuing) {
        my $u = $held{$k} // 0;
        $reserved += $g - $u if $u < $g;
    }
    my $empty = $SLOTS - $filled;
    if ($empty > 0 && ($mine < $g || $empty > $reserved)) {
        $series{$key} = 1;
        $held{$realm}++;
    } else {
        $untracked++;
    }
}

sub scrape {
    my $r = $t->get('/metrics');
    my (%per, $n);
    while ($r->{body} =~ /^oauth2_tokens_issued_total\{realm="([^"]*)",client_id="[^"]*",grant="client_credentials"\} \d+$/mg) {
        $per{$1}++;
    }
    ($n) = $r->{body} =~ /^oauth2_tokens_issued_untracked_total (\d+)$/m;
    return (\%per, $n);
}

sub compare {
    my ($what) = @_;
    my ($per, $n) = scrape();
    is_deeply($per, { map { ($_ => $held{$_}) } grep { $held{$_} }
        keys %held }, "$what: each realm's series as the rule gives them")
        or diag(explain($per));
    is($n, $untracked, "$what: $untracked tokens untracked");
}

sub issue {
    my ($realm, $list, $at_once) = @_;
    my @h = (headers => ['-port' => $PORT{$realm}]);
    if ($at_once) {
        is($t->tokens_at_once($list, @h), scalar @$list,
            "$realm: " . scalar(@$list) . ' tokens at once, all 200');
    } else {
        my $ok = grep { $t->token($_->{client_id}, $_->{client_secret},
            @h)->{status} == 200 } @$list;
        is($ok, scalar @$list, "$realm: " . scalar(@$list) . ' tokens, 200');
    }
    model_token($realm, $_->{client_id}) for @$list;
}

# the default server's token endpoints: the realm default issues too
@issuing = ('default', @realms);
$t->write_config(conf(@realms))->run;

# r21..r40: one series each
issue($_, $apps{$_}) for @realms[20 .. 39];
compare('20 realms with a token each');

# r01's flood, from 8 clients on both workers: its guarantee (12), then
# what the others' guarantees leave
issue('r01', \@flood, 1);
compare('r01\'s 1100 applications');
cmp_ok($untracked, '>', 0, 'r01 ran past its share (the case that '
    . 'paid the walk of every slot)');

# r02: its guarantee, not one series more
issue('r02', \@r02a);
compare('r02\'s 20 applications after the flood');
# r01 again, past its share: still untracked, and its series still count
issue('r01', [@flood[0 .. 49], @flood[1000 .. 1049]]);
compare('r01\'s tokens again');

# a reload: only default and r01..r20 issue, so each is guaranteed 24;
# the series of r21..r40 stay in the table and reserve nothing; the new
# workers count a table already filled
@issuing = ('default', @realms[0 .. 19]);
$t->write_config(conf(@realms[0 .. 19]));
$t->reload;
issue('r02', \@r02b);
compare('after the reload, r02\'s 30 more applications');
issue('r01', [@flood[1050 .. 1099]]);
compare('after the reload, r01\'s tokens');

$t->done_testing;
