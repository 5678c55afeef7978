# error_log ... debug traces a request through the module (issue 10): the
# endpoint it reached, the core's answer, the bearer check and its rate
# limit.  Debian's nginx is built --with-debug; without it nginx logs no
# debug line at all, and this test fails rather than pass unchecked.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $app = $t->new_app(name => 'traced');
$t->write_config(join '',
    "error_log $dir/debug.log debug;\n",
    $t->default_http(extra_server => <<'EOF2'))->run;
    location /limited/ {
        auth_oauth2 "api";
        oauth2_rate_limit 100/m;
        alias %%DIR%%/html/;
    }
EOF2

my $token = $t->access_token($app);
my $r = $t->get('/limited/', Authorization => "Bearer $token");
is($r->{status}, 200, 'a valid token passes');
$r = $t->get('/protected/', Authorization => 'Bearer not-a-token');
is($r->{status}, 401, 'a wrong one does not');

my $log = OAuth2Test::_slurp("$dir/debug.log");
like($log, qr/\[debug\].*oauth2: POST at oauth2_token/,
    'the endpoint a request reached');
like($log, qr/\[debug\].*oauth2: (the core answered|posting store work)/,
    'what the core made of it');
like($log, qr/\[debug\].*oauth2: answering 200 with \d+ bytes/,
    'and the answer');
like($log, qr/\[debug\].*oauth2: checking the bearer token of "\/limited\/"/,
    'the bearer check and its location');
like($log, qr/\[debug\].*oauth2: bearer validation result 0/,
    'a valid token');
like($log, qr/\[debug\].*oauth2: bearer validation result 3/,
    'an invalid one (OAUTH2_INVALID_TOKEN)');
like($log, qr/\[debug\].*oauth2 rate: wait 0, remaining 99/,
    'the rate limit counted once, with what is left');
# nginx itself logs every request header at debug level; the module's own
# lines never carry a credential
my $ours = join "\n", grep { /oauth2/ } split /\n/, $log;
unlike($ours, qr/not-a-token/, 'the module never logs a token it was shown');
unlike($ours, qr/\Q$token\E/, 'nor a valid one');

$t->done_testing;
