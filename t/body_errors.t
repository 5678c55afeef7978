# R9, R10: a body nginx itself refuses while an endpoint reads it (a
# malformed chunked body: 400; a chunked body past the endpoint's 1m read
# limit: 413) is answered by nginx, and never follows an error_page: that
# would hand the request, its Authorization and Cookie headers, to
# wherever the error_page leads (a backend, a logging location).  A
# declared Content-Length over the limit is refused before the
# location's handler runs (README, "Known limits").
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'svc');
$t->write_config($t->default_http(extra_server => <<'EOF2'))->run;
    location = /ep/token/ {
        oauth2_token;
        error_page 400 413 500 = @fallback;
    }
    location @fallback {
        return 200 "fallback saw auth=$http_authorization\n";
    }
EOF2
my @h = (Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
    'Content-Type' => 'application/x-www-form-urlencoded',
    'Transfer-Encoding' => 'chunked');

my $r = $t->request('POST', '/ep/token/', headers => \@h,
    body => "zz\r\nabc\r\n0\r\n\r\n");
is($r->{status}, 400, 'a malformed chunked body: 400');
unlike($r->{body} // '', qr/fallback/,
    '... which follows no error_page (the credentials stay here)');

my $big = 'x' x (1100 * 1024);
$r = $t->request('POST', '/ep/token/', headers => \@h,
    body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $big, $big));
is($r->{status}, 413, 'a chunked body over 1m: 413');
unlike($r->{body} // '', qr/fallback/, '... which follows no error_page');

# the endpoint still answers a good chunked body, and its own errors in
# its own shape
my $form = OAuth2Test::form(grant_type => 'client_credentials');
$r = $t->request('POST', '/ep/token/', headers => \@h,
    body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $form, $form));
is($r->{status}, 200, 'a good chunked body: 200') or diag($r->{raw});
$form = OAuth2Test::form(grant_type => 'nonsense');
$r = $t->request('POST', '/ep/token/', headers => \@h,
    body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $form, $form));
$t->oauth_error_ok($r, 400, 'unsupported_grant_type',
    'an unknown grant: the endpoint\'s own 400');
$t->done_testing;
