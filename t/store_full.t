# A full store (oauth2_store size=) is a limit with a clear edge: the write
# that does not fit is answered 503 in the endpoint's shape, error.log
# says why at "error", nothing already answered is lost, validation goes
# on, and oauth2-admin refuses with the same reason.  Never a crash.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'filler');
my $conf = $t->default_http;
$conf =~ s/oauth2_store %%STORE%%;/oauth2_store %%STORE%% size=1m;/ or die;
$t->write_config($conf)->run;

# fill it: tokens until one is refused
my (@issued, $refused);
for my $i (1 .. 20000) {
    my $r = $t->token($app->{client_id}, $app->{client_secret});
    if ($r->{status} == 200) {
        push @issued, $r->{json}{access_token};
        next;
    }
    $refused = $r;
    last;
}
ok(@issued > 100, scalar(@issued) . ' tokens fitted in 1m');
ok($refused, 'then a token request was refused');
is($refused->{status}, 503, '... with 503');
is($refused->{json}{error}, 'temporarily_unavailable',
    '... in the OAuth error shape');
like(OAuth2Test::header($refused, 'Retry-After') // '', qr/^\d+$/,
    '... with Retry-After');
like(OAuth2Test::_slurp($t->error_log),
    qr/\[error\].*answering 503: the store is full: raise oauth2_store's size=/,
    'error.log says why, at error');

# nothing answered before is lost, and validation goes on
my $ok = 0;
for my $tok (@issued[0, int(@issued / 2), -1]) {
    $ok++ if $t->bearer_get('/protected/', $tok)->{status} == 200;
}
is($ok, 3, 'the first, a middle and the last token issued still open a location');

# the admin refuses with the same reason once its own record does not fit
# (a small record may still find room in a page), and writes nothing
my ($code, $out, $err);
my $added = 0;
for my $n (1 .. 500) {
    ($code, $out, $err) = $t->admin('app', 'add', '--name', "extra-$n",
        '--grant', 'client_credentials');
    last if $code != 0;
    $added++;
}
isnt($code, 0, "oauth2-admin app add on a full store fails (after $added more)");
like($err, qr/the store is full/, '... saying the store is full');
my $list = $t->admin_json('app', 'list');
is(scalar(grep { ($_->{name} // '') =~ /^extra-\d+$/ } @$list), $added,
    '... and the refused application is not there, not even in part');

# even a delete needs new pages (copy-on-write): on a full store it is
# refused cleanly too, and raising size= is the way out
my $r = $t->revoke($app->{client_id}, $app->{client_secret}, $issued[0]);
ok($r->{status} == 200 || $r->{status} == 503,
    "a revocation on a full store: 200 or 503, never 500 ($r->{status})");

$t->done_testing;
