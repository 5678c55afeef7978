# oauth2-admin cleartokens: expired tokens leave the store, live ones stay
# (docs/security.md R82; django-oauth-toolkit's cleartokens); those of
# every realm without --realm, as the module's own expiry, only that
# realm's with it
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $short = $t->new_app(name => 'short', ttl => 3);
my $long = $t->new_app(name => 'long');
$t->write_default_config->run;

my @expiring = map { $t->access_token($short) } 1 .. 5;
my $live = $t->access_token($long);
ok(defined $_, 'token issued') for @expiring, $live;

my $j = $t->admin_json('cleartokens');
is($j->{deleted}, 0, 'nothing expired yet: deleted 0');

select(undef, undef, undef, 3.5);

$j = $t->admin_json('cleartokens');
is($j->{deleted}, 5, 'the 5 expired tokens are deleted');
$j = $t->admin_json('cleartokens');
is($j->{deleted}, 0, 'a second run finds nothing');

is($t->bearer_get('/protected/', $live)->{status}, 200,
    'the live token still opens a location');
is($t->bearer_get('/protected/', $expiring[0])->{status}, 401,
    'an expired, cleared token: 401');

my ($code, $out, $err) = $t->admin('cleartokens', 'extra');
is($code, 2, 'cleartokens with an operand: usage error, exit 2');

($code, $out, $err) = $t->admin('cleartokens', '--help');
is($code, 0, 'cleartokens --help: exit 0');
like($out, qr/usage: oauth2-admin cleartokens/, 'cleartokens --help: usage');

######################################################## realms (R82)

# Background expiry off, so that only cleartokens removes anything: the
# setup that leaves the store to a cron job.  Three sites, one store: the
# default realm, shop1 and shop2.
my $u = OAuth2Test->new;
for my $shop (qw(shop1 shop2)) {
    ($code, $out, $err) = $u->admin('realm', 'add', $shop);
    is($code, 0, "realm add $shop: exit 0") or diag($err);
}
my %port = (default => $u->port, shop1 => $u->port(1), shop2 => $u->port(2));
my $sites = '';
for my $n (1, 2) {
    $sites .= "server {\n"
        . "    listen 127.0.0.1:%%PORT_$n%%;\n"
        . "    oauth2_realm shop$n;\n"
        . "    oauth2_issuer http://127.0.0.1:%%PORT_$n%%;\n"
        . "    location /protected/ { auth_oauth2 \"api\"; alias %%DIR%%/html/; }\n"
        . "}\n";
}
$u->write_config($u->default_http(
    extra_http => "oauth2_expiry_cleanup off;\n$sites"))->run;
ok($u->_wait_port($port{$_}), "nginx listens on $_\'s port")
    for qw(shop1 shop2);

sub at_site {
    my ($realm, $token) = @_;
    return $u->get('/protected/', Authorization => "Bearer $token",
        -port => $port{$realm})->{status};
}

# per realm: tokens of a second's lifetime (two in each shop, one in the
# default realm) and one of ten hours
my (%short, %live);
for my $realm (qw(default shop1 shop2)) {
    my @r = ('--realm', $realm);
    my $app = $u->admin_json(@r, 'app', 'add', '--name', "x-$realm",
        '--grant', 'client_credentials');
    my @issue = (@r, 'token', 'issue', '--client-id', $app->{client_id});
    $short{$realm} = [map { $u->admin_json(@issue, '--ttl', 1)->{access_token} }
        1 .. ($realm eq 'default' ? 1 : 2)];
    $live{$realm} = $u->admin_json(@issue)->{access_token};
    is(at_site($realm, $live{$realm}), 200,
        "$realm: its ten-hour token opens its site");
}
select(undef, undef, undef, 2.2);

is($u->admin_json('--realm', 'shop1', 'cleartokens')->{deleted}, 2,
    'cleartokens --realm shop1: its 2 expired tokens are deleted');
is($u->admin_json('cleartokens', '--realm', 'shop1')->{deleted}, 0,
    'cleartokens --realm shop1 again: none left there, none elsewhere taken');
is($u->admin_json('cleartokens')->{deleted}, 3,
    'cleartokens without --realm: the 3 expired tokens of the other realms '
    . '(shop2\'s 2, default\'s 1), not only the default realm\'s');
is($u->admin_json('cleartokens')->{deleted}, 0,
    'cleartokens again: nothing left in any realm');
for my $realm (qw(default shop1 shop2)) {
    is(at_site($realm, $live{$realm}), 200,
        "$realm: its live token still opens its site after the sweeps");
    is(at_site($realm, $short{$realm}[0]), 401,
        "$realm: an expired token: 401 (R45; the counts above are the sweep's)");
}

$t->done_testing;
