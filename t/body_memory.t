# R64: a request body an endpoint takes (a password, a client secret, a
# refresh token) never goes to a temporary file, whatever the server's
# own settings for uploads: client_body_in_file_only on (which keeps the
# file for ever) and a small client_body_buffer_size at http level
# leave the endpoints' bodies in memory; other locations keep them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'pw', grant => 'password', scope => 'read');
add_user($t, 'ada', 'Ada-Lovelace-Engine-1');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n"
        . "client_body_in_file_only on;\nclient_body_buffer_size 1k;\n",
    extra_server => <<'EOF'))->run;
    location = /upload { proxy_pass http://127.0.0.1:%%PORT%%/echo; }
    location = /echo { return 204; }
EOF
my $tmp = $t->dir . '/client_body_temp';
sub temp_files {
    my @f;
    require File::Find;
    File::Find::find(sub { push @f, $File::Find::name if -f $_ }, $tmp) if -d $tmp;
    return @f;
}

# a body over the http level's 1k buffer
my $pad = 'x' x 3000;
my $r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => 'ada', password => 'Ada-Lovelace-Engine-1', pad => $pad),
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
is($r->{status}, 200, 'a password grant of a 3 KB body: 200') or diag($r->{body});
is(scalar(temp_files()), 0, 'no temporary file holds its body (the password)');

# the server's own location still spools as configured: the test can tell
$r = $t->request('POST', '/upload', body => "upload=$pad",
    headers => ['Content-Type' => 'application/x-www-form-urlencoded']);
is($r->{status}, 204, 'an upload location: 204');
cmp_ok(scalar(temp_files()), '>=', 1,
    '... whose body client_body_in_file_only on keeps in a file, as configured');

$t->done_testing;
