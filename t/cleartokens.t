# oauth2-admin cleartokens: expired tokens leave the store, live ones stay
# (docs/security.md R82; django-oauth-toolkit's cleartokens)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $short = $t->new_app(name => 'short', ttl => 3);
my $long = $t->new_app(name => 'long');
$t->write_default_config->run;

my @expiring = map { $t->access_token($short) } 1 .. 5;
my $live = $t->access_token($long);
ok(defined $_, 'token issued') for @expiring, $live;

my $j = $t->admin_json('cleartokens');
is($j->{deleted}, 0, 'nothing expired yet: deleted 0');

select(undef, undef, undef, 3.5);

$j = $t->admin_json('cleartokens');
is($j->{deleted}, 5, 'the 5 expired tokens are deleted');
$j = $t->admin_json('cleartokens');
is($j->{deleted}, 0, 'a second run finds nothing');

is($t->bearer_get('/protected/', $live)->{status}, 200,
    'the live token still opens a location');
is($t->bearer_get('/protected/', $expiring[0])->{status}, 401,
    'an expired, cleared token: 401');

my ($code, $out, $err) = $t->admin('cleartokens', 'extra');
is($code, 2, 'cleartokens with an operand: usage error, exit 2');

($code, $out, $err) = $t->admin('cleartokens', '--help');
is($code, 0, 'cleartokens --help: exit 0');
like($out, qr/usage: oauth2-admin cleartokens/, 'cleartokens --help: usage');

$t->done_testing;
