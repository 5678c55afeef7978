# With TLS files, every etcd URL is https:// (issue 13; docs/security.md
# R78): a member listed as http:// among https:// ones would get the
# edge's records in clear, from whoever answers at that address.  Once a
# TLS file is given (--etcd-cacert, --etcd-cert/--etcd-key; cacert=,
# cert=/key= of oauth2_cluster), one http:// URL is a configuration
# error naming it: the CLI's usage error (exit 2), and nginx -t failing
# with the line.  No etcd runs: both refuse before any connection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $ca = OAuth2Test::write_file("$dir/ca.pem", "not read as PEM here\n");
my $urls = 'https://127.0.0.1:1,http://127.0.0.1:2';
my $why = qr{needs an https:// etcd URL, and http://127\.0\.0\.1:2 is not};

for my $cmd (['app', 'list'], ['sync']) {
    my ($code, $out, $err) = $t->admin_raw('--etcd', $urls, '--etcd-cacert',
        $ca, '--store', $t->store, @$cmd);
    is($code, 2, "oauth2-admin --etcd $urls --etcd-cacert ... @$cmd: "
        . 'usage error, exit 2');
    like($err, qr/--etcd-cacert $why/, '... naming the http:// URL')
        or diag($err);
}

my $file = "$dir/check.conf";
$t->write_config('oauth2_store ' . $t->store . ";\n"
    . "oauth2_cluster etcd=$urls cacert=$ca;\n"
    . "server { listen 127.0.0.1:%%PORT%%;\n"
    . "  location = /o/token/ { oauth2_token; }\n}\n", file => $file);
my ($code, $msg) = $t->nginx_t(file => $file);
isnt($code, 0, "oauth2_cluster etcd=$urls cacert=...: nginx -t fails");
like($msg, qr/cacert= $why/, '... naming the http:// URL') or diag($msg);
like($msg, qr/check\.conf:\d+/, '... and the line');

$t->done;
done_testing();
