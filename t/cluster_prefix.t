# A mirror is one prefix's (issue 13; docs/security.md R66, R77, R78):
# sync records the prefix it mirrors, and nginx with oauth2_cluster and
# the CLI with --etcd refuse a mirror of another prefix, naming both,
# rather than validate another deployment's tokens and write where no
# mirror of theirs reads.  nginx -t never touches the store (R76), so the
# workers refuse it: 503, and error.log says why; their metrics show a
# mirror never fresh and the store's configured size.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
my $url = $t->run_etcd;
$t->run_sync($url, prefix => '/a/');
my $app = $t->new_app_etcd(name => 'of-a');
ok($app->{client_id}, 'an app written through prefix /a/');

my $why = qr{mirrors etcd prefix /a/, not this configuration's prefix /b/};

# the CLI
my ($code, $out, $err) = $t->admin_raw($t->etcd_args(prefix => '/b/'),
    '--store', $t->store, 'app', 'list');
isnt($code, 0, 'oauth2-admin --etcd --prefix /b/ on the mirror of /a/ '
    . 'exits non-zero');
like($err, $why, '... naming both prefixes') or diag($err);
unlike($out, qr/\Q$app->{client_id}\E/, '... and lists nothing of /a/');
($code, $out, $err) = $t->admin_raw($t->etcd_args(prefix => '/b/'),
    '--store', $t->store, 'app', 'add', '--name', 'of-b', '--grant',
    'client_credentials');
isnt($code, 0, 'nor does it write through /b/ on that mirror');
like($err, $why, '... naming both prefixes') or diag($err);
($code, $out) = $t->admin_etcd('app', 'list');
is($code, 0, 'the CLI with the mirror\'s own prefix still reads it');
like($out, qr/\Q$app->{client_id}\E/, '... and lists its app');

# nginx
$t->expect_log(qr/cannot open store .*$why/);
my $http = $t->default_http(
    extra_http => $t->cluster_directive(prefix => '/b/'),
    extra_server => '    location = /metrics { oauth2_metrics; }');
$http =~ s/^oauth2_store (\S+);$/oauth2_store $1 size=64m;/m
    or die 'no oauth2_store line';
$t->write_config($http);
my ($tcode, $tmsg) = $t->nginx_t;
is($tcode, 0, 'nginx -t does not read the store (R76)') or diag($tmsg);
$t->run;
my $r = $t->token($app->{client_id}, $app->{client_secret});
is($r->{status}, 503, 'nginx with prefix=/b/ on the mirror of /a/ answers '
    . '503 to the token endpoint (R77)');
$r = $t->get('/protected/x', Authorization => 'Bearer abc');
is($r->{status}, 503, '... and to auth_oauth2');
like(OAuth2Test::_slurp($t->error_log), $why,
    'error.log names both prefixes');

# its metrics say so (README's table): the mirror series are there, never
# fresh, so that an alert on staleness fires, and the map is the size
# configured, not 0
$r = $t->get('/metrics');
is($r->{status}, 200, 'its /metrics answers: 200');
like($r->{body}, qr/^oauth2_mirror_staleness_seconds \+Inf$/m,
    '... oauth2_mirror_staleness_seconds +Inf');
like($r->{body}, qr/^oauth2_mirror_revision 0$/m,
    '... oauth2_mirror_revision 0: nothing applied that it can read');
like($r->{body}, qr/^oauth2_store_map_bytes ${\(64 * 1024 * 1024)}$/m,
    '... oauth2_store_map_bytes = oauth2_store size=64m');

$t->done;
done_testing();
