# R9, R26: the module's answers are never compressed, whatever a site's
# gzip settings: a token response or a page's CSRF value sits beside text
# the request chose (a user_code echoed by the device page, a scope), and
# a compressed length would tell how much of the secret that text guessed
# (BREACH).  The server's own files are still compressed as configured.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'gz');
$t->write_config($t->default_http(
    extra_http => "gzip on;\ngzip_types *;\ngzip_min_length 1;\n"
        . "gzip_proxied any;\ngzip_http_version 1.0;\n",
    extra_server => <<'EOF'))->run;
    location = /o/authorize/ { oauth2_authorize; }
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device/ { oauth2_device; }
    location = /o/introspect/ { oauth2_introspect; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
EOF
my @gz = ('Accept-Encoding' => 'gzip');

# the configuration compresses: the test can tell
my $r = $t->request('GET', '/open/index.html', headers => \@gz);
is($r->{status}, 200, 'a static file: 200');
is(($r->{headers}{'content-encoding'} // [])->[0], 'gzip',
    '... compressed, as gzip_types * asks');

my $tok = $t->post_form('/o/token/', 'grant_type=client_credentials',
    Authorization => $t->basic(@{$app}{qw(client_id client_secret)}), @gz);
is($tok->{status}, 200, 'a token response: 200');
ok(!defined $tok->{headers}{'content-encoding'}, '... not compressed')
    or diag($tok->{raw});
like($tok->{body}, qr/"access_token"/, '... its JSON as sent');

my $bad = $t->post_form('/o/token/', 'grant_type=client_credentials&scope='
    . 'x' x 200, Authorization => $t->basic(@{$app}{qw(client_id
    client_secret)}), @gz);
is($bad->{status}, 400, 'an error answer: 400');
ok(!defined $bad->{headers}{'content-encoding'}, '... not compressed');

my %pages = (
    'the sign-in page' => '/o/authorize/?response_type=code&client_id='
        . $app->{client_id},
    'the device page, echoing a user_code' => '/o/device/?user_code='
        . 'ABCD-EFGH',
    'the metadata' => '/.well-known/oauth-authorization-server',
);
for my $name (sort keys %pages) {
    $r = $t->request('GET', $pages{$name}, headers => \@gz);
    ok($r->{status} > 0 && length $r->{body}, "$name: answered ($r->{status})");
    ok(!defined $r->{headers}{'content-encoding'},
        "$name: not compressed (BREACH)") or diag($r->{raw});
}
$r = $t->post_form('/o/introspect/', 'token=' . $tok->{json}{access_token},
    Authorization => $t->basic(@{$app}{qw(client_id client_secret)}), @gz);
ok(!defined $r->{headers}{'content-encoding'},
    "introspection ($r->{status}): not compressed");

$t->done_testing;
