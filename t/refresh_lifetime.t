# R39: rotation never extends a grant.  A refresh token's successor
# expires when the grant's first refresh token would have, so a stolen and
# regularly used refresh token still dies at oauth2_refresh_token_ttl.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
add_user($t, 'alice', 'Tr0ub4dor-alice-3');
my $app = $t->new_app(name => 'short', grant => ['password', 'refresh_token']);
$t->write_default_config(extra_http => 'oauth2_pbkdf2_iterations ' . PBKDF2
    . '; oauth2_refresh_token_ttl 3s;')->run;

my $r = password_token($t, $app, 'alice', 'Tr0ub4dor-alice-3');
is($r->{status}, 200, 'password grant: 200');
my $rt1 = $r->{json}{refresh_token};
ok(defined $rt1, 'a refresh token');

sleep 1.5;
my $n = refresh($t, $app, $rt1);
is($n->{status}, 200, 'refresh after 1.5 s of a 3 s lifetime: 200');
my $rt2 = $n->{json}{refresh_token};
ok(defined $rt2 && $rt2 ne $rt1, 'a new refresh token');

sleep 2;
# 3.5 s after the grant: a sliding lifetime would give rt2 until 4.5 s
my $late = refresh($t, $app, $rt2);
$t->oauth_error_ok($late, 400, 'invalid_grant',
    'the successor expires with the grant, not 3 s after its rotation (R39)');

$t->done_testing;
