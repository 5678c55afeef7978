# oauth2_metrics and realms (README "Many sites on one nginx": nothing of
# one realm is known in another).
#
# A metrics location shows the issued-token series of its own realm only
# (its server's oauth2_realm): one site's client ids and volumes are not
# listed at another site's /metrics, which it may well let its own
# operator read.  `oauth2_metrics all;` shows every realm's, for the
# host's operator; nginx -t takes "all" and nothing else.
#
# The table of 1024 series is shared out: each realm with a token
# endpoint is guaranteed 1024 / (2 x realms) series, and a realm takes
# new series beyond that only while the others' guarantees stay free.
# Here 4 realms (default, shop1, shop2 and the longest name): 128 each;
# shop1 with 1030 applications gets 1024 - 1 - 3 x 128 + 1 = 640 series
# (the others hold 1 and reserve 383) and the rest counts as untracked,
# while shop2's applications, coming after, still get their series.
#
# And the longest realm name (README "oauth2_realm": 1 to 64 characters):
# its issued tokens are counted in their own series, labelled with the
# whole name, never as untracked.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use POSIX ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $JSON = JSON::PP->new->canonical;
my $LONG = 'a-realm-of-the-longest-name-allowed.' . ('x' x 28);
is(length $LONG, 64, 'the realm name has 64 characters');
for my $realm ($LONG, qw(shop1 shop2)) {
    my ($code, undef, $err) = $t->admin('realm', 'add', $realm);
    is($code, 0, 'realm add ' . (length $realm > 9 ? 'of 64 characters'
        : $realm) . ': exit 0')
        or diag($err);
}
my $long = $t->admin_json('--realm', $LONG, 'app', 'add', '--name', 'long',
    '--grant', 'client_credentials');
my @shop2 = map { $t->admin_json('--realm', 'shop2', 'app', 'add', '--name',
    "shop2 app $_", '--grant', 'client_credentials') } 1 .. 3;

# shop1: 1030 applications, imported at once
my $N = 1030;
my @bulk = $t->bulk_apps($N, 'shop1-bulk', '--realm', 'shop1');

my %PORT = (long => $t->port(1), shop1 => $t->port(2), shop2 => $t->port(3));
sub site {
    my ($realm, $port) = @_;
    return <<"EOF";
server {
    listen 127.0.0.1:$port;
    oauth2_realm $realm;
    oauth2_issuer http://127.0.0.1:$port;
    location = /o/token/ { oauth2_token; }
    location = /metrics { oauth2_metrics; allow 127.0.0.1; deny all; }
}
EOF
}
# after the default server: oauth2_store comes first
$t->write_config($t->default_http(
    extra_http => "oauth2_client_auth_limit off;\noauth2_dpop off;\n",
    extra_server => "    location = /metrics { oauth2_metrics; }\n")
    . site($LONG, $PORT{long}) . site('shop1', $PORT{shop1})
    . site('shop2', $PORT{shop2}))->run;
ok($t->_wait_port($PORT{$_}), "nginx listens on $_\'s port")
    for sort keys %PORT;

# the issued series of a scrape: { "realm|client_id|grant" => n }, and
# the untracked count
sub issued {
    my (%o) = @_;
    my $r = $t->get($o{path} // '/metrics',
        $o{port} ? ('-port' => $o{port}) : ());
    my %s;
    while ($r->{body} =~ /^oauth2_tokens_issued_total\{realm="([^"]*)",client_id="([^"]*)",grant="([^"]*)"\} (\d+)$/mg) {
        $s{"$1|$2|$3"} = $4;
    }
    my ($untracked) =
        $r->{body} =~ /^oauth2_tokens_issued_untracked_total (\d+)$/m;
    return { status => $r->{status}, series => \%s,
        untracked => $untracked };
}

######################################################## the longest name

for my $i (1 .. 2) {
    is($t->token($long->{client_id}, $long->{client_secret},
        headers => ['-port' => $PORT{long}])->{status}, 200,
        "a token in the 64-character realm ($i): 200");
}
my $m = issued(port => $PORT{long});
is($m->{status}, 200, 'GET /metrics of the 64-character realm: 200');
is_deeply($m->{series}, { "$LONG|$long->{client_id}|client_credentials" => 2 },
    'oauth2_tokens_issued_total counts the 2 tokens under the whole '
    . '64-character realm');
is($m->{untracked}, 0, 'and none of them as untracked');

######################################################## shop1's flood

# one token for each of shop1's 1030 applications, from 8 clients at once
my $ok200 = $t->tokens_at_once(\@bulk, headers => ['-port' => $PORT{shop1}]);
is($ok200, $N, "shop1's $N applications, one token each: $N x 200");

# then shop2's three
for my $app (@shop2) {
    is($t->token($app->{client_id}, $app->{client_secret},
        headers => ['-port' => $PORT{shop2}])->{status}, 200,
        "a token of shop2's $app->{client_id}: 200");
}

######################################################## each site its own

my $s1 = issued(port => $PORT{shop1});
my @s1 = keys %{$s1->{series}};
is(scalar(grep { !/^shop1\|shop1-bulk-\d{4}\|client_credentials$/ } @s1), 0,
    'shop1\'s /metrics: only shop1\'s series');
is(scalar @s1, 640, 'shop1 holds 640 series of the table: its guarantee of '
    . '128 and what the others\' guarantees leave');
is(scalar(grep { $_ != 1 } values %{$s1->{series}}), 0, 'each at 1');
is($s1->{untracked}, $N - 640, 'oauth2_tokens_issued_untracked_total: the '
    . ($N - 640) . ' tokens of shop1\'s applications left out');

my $s2 = issued(port => $PORT{shop2});
is_deeply($s2->{series}, { map { ("shop2|$_->{client_id}|client_credentials"
    => 1) } @shop2 }, 'shop2\'s /metrics: its three applications\' series, '
    . 'each 1, though shop1 came first with 1030 (their guarantee), and '
    . 'nothing of shop1\'s or of the other realms');
unlike($t->get('/metrics', '-port' => $PORT{shop2})->{body}, qr/shop1-bulk/,
    '... not one of shop1\'s client ids in its text');

is_deeply(issued(port => $PORT{long})->{series},
    { "$LONG|$long->{client_id}|client_credentials" => 2 },
    'the 64-character realm\'s /metrics: its own series only');
is_deeply(issued()->{series}, {}, 'the default realm\'s /metrics: no series '
    . '(its token endpoint issued none)');

######################################################## oauth2_metrics all

$t->edit_config(sub {
    s{(    location = /metrics \{ oauth2_metrics; \}\n)}
     {$1    location = /metrics-all { oauth2_metrics all; }\n} });
my ($code, $out) = $t->nginx_t;
is($code, 0, 'nginx -t: oauth2_metrics all; is accepted') or diag($out);
$t->reload unless $code;
my $all = issued(path => '/metrics-all');
is($all->{status}, 200, 'GET /metrics-all: 200');
is_deeply($all->{series}, { %{$s1->{series}}, %{$s2->{series}},
    "$LONG|$long->{client_id}|client_credentials" => 2 },
    'oauth2_metrics all: every realm\'s series, 640 + 3 + 1');

######################################################## nginx -t

{
    my $n = OAuth2Test->new;
    $n->write_config("oauth2_store %%STORE%%;\nserver {\n"
        . "    listen 127.0.0.1:%%PORT%%;\n"
        . "    location = /metrics { oauth2_metrics every; }\n}\n");
    my ($code, $out) = $n->nginx_t;
    isnt($code, 0, 'nginx -t: oauth2_metrics every; fails');
    like($out, qr/\[emerg\] invalid value "every" in "oauth2_metrics" directive, it must be "all" .*nginx\.conf:\d+/,
        'nginx -t: the message says it must be "all", and names the line')
        or diag($out);
    $n->write_config("oauth2_store %%STORE%%;\nserver {\n"
        . "    listen 127.0.0.1:%%PORT%%;\n"
        . "    location = /metrics { oauth2_metrics all all; }\n}\n");
    ($code, $out) = $n->nginx_t;
    isnt($code, 0, 'nginx -t: oauth2_metrics all all; fails');
    like($out, qr/\[emerg\] invalid number of arguments in "oauth2_metrics"/,
        'nginx -t: invalid number of arguments') or diag($out);
    $n->{done} = 1;    # never started
}

$t->done_testing;
