# oauth2_metrics and the longest realm name (README "oauth2_realm": 1 to
# 64 characters): its issued tokens are counted in their own series of
# oauth2_tokens_issued_total, labelled with the whole name, never in
# oauth2_tokens_issued_untracked_total.  An operator who gave a site a
# long realm name must still see what each of its applications gets.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $REALM = 'a-realm-of-the-longest-name-allowed.' . ('x' x 28);
is(length $REALM, 64, 'the realm name has 64 characters');
my ($code, undef, $err) = $t->admin('realm', 'add', $REALM);
is($code, 0, 'realm add with 64 characters: exit 0') or diag($err);
my $app = $t->admin_json('--realm', $REALM, 'app', 'add', '--name', 'long',
    '--grant', 'client_credentials');

my $port = $t->port(1);
# after the default server: oauth2_store comes first
$t->write_config($t->default_http . <<"EOF")->run;
server {
    listen 127.0.0.1:$port;
    oauth2_realm $REALM;
    oauth2_issuer http://127.0.0.1:$port;
    location = /o/token/ { oauth2_token; }
    location = /metrics { oauth2_metrics; allow 127.0.0.1; deny all; }
}
EOF

for my $i (1 .. 2) {
    is($t->token($app->{client_id}, $app->{client_secret},
        headers => ['-port' => $port])->{status}, 200,
        "a token in the 64-character realm ($i): 200");
}

my $r = $t->get('/metrics', '-port' => $port);
is($r->{status}, 200, 'GET /metrics: 200');
my $series = 'oauth2_tokens_issued_total{realm="' . $REALM
    . '",client_id="' . $app->{client_id} . '",grant="client_credentials"}';
my ($count) = $r->{body} =~ /^\Q$series\E (\d+)$/m;
is($count, 2, 'oauth2_tokens_issued_total counts the 2 tokens under the '
    . 'whole 64-character realm') or diag($r->{body});
like($r->{body}, qr/^oauth2_tokens_issued_untracked_total 0$/m,
    'and none of them as untracked');

$t->done_testing;
