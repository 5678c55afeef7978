# Refusals are visible: as limit_req logs its rejections, a 429 of a limit
# and a refused bearer token are logged at the level
# oauth2_refusal_log_level sets (default error), never with the token or
# the credential in the line.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'logged');
$t->write_config($t->default_http(
    extra_http => "oauth2_refusal_log_level warn;\n",
    extra_server => join '', "    location = /o/token-limited/ {\n",
        "        oauth2_token;\n",
        "        oauth2_rate_limit 1/m;\n",
        "    }\n"))->run;

my $forged = 'F' x 43;
is($t->get('/protected/', Authorization => "Bearer $forged")->{status}, 401,
    'an unknown bearer token: 401');
is($t->get('/protected/')->{status}, 401, 'no token at all: 401');
$t->token($app->{client_id}, $app->{client_secret},
    path => '/o/token-limited/') for 1 .. 2;

my $log = OAuth2Test::_slurp($t->error_log);
like($log,
    qr/\[warn\].*oauth2: bearer token refused: invalid_token, answering 401/,
    'a refused bearer token: a [warn] line');
my @lines = $log =~ /bearer token refused/g;
is(scalar @lines, 1, 'a request without a token is not logged as refused');
like($log, qr/\[warn\].*oauth2: client "[^"]*" is over the rate limit|\[warn\].*oauth2: the rate limit is reached/,
    'a 429 of oauth2_rate_limit: a [warn] line');
unlike($log, qr/\Q$forged\E/, 'the log never holds the token');
unlike($log, qr/\Q$app->{client_secret}\E/, 'nor a client secret');

$t->done_testing;
