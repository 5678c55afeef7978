# A user's password hash follows oauth2_pbkdf2_iterations at sign-in,
# either way, as Django's must_update does: a hash of fewer iterations is
# strengthened, and one of more (Django 5.x's, an import, a setting since
# lowered) is rehashed to the setting, after which a wrong password for
# that name costs what one for a name that is no account does (README
# "Known limits").  A wrong password rehashes nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my %pw = (weaker => 'Weaker-hash-phrase-1', stronger => 'Stronger-hash-phrase-2',
    same => 'Same-hash-phrase-3');
my %iter = (weaker => 1000, stronger => 3000, same => 2000);
for my $u (sort keys %pw) {
    $t->admin_json('user', 'add', '--username', $u, '--email', "$u\@example.com",
        '--password', $pw{$u}, '--pbkdf2-iterations', $iter{$u});
}
my $app = $t->new_app(name => 'pw', grant => 'password', scope => 'read');
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations 2000;\n"))->run;

sub hash_of {
    my ($u) = @_;
    my $dump = OAuth2Test::dump_store($t->store);
    return $dump =~ /"username":"\Q$u\E"[^}]*?"password":"(pbkdf2_sha256\$\d+\$[^"]*)"/
        ? $1 : undef;
}
sub sign_in {
    my ($u, $p) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => $u, password => $p),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}))->{status};
}

for my $u (qw(weaker stronger same)) {
    my $before = hash_of($u);
    like($before // '', qr/^pbkdf2_sha256\$$iter{$u}\$/, "$u: stored with $iter{$u} iterations");
    is(sign_in($u, "$pw{$u}-wrong"), 400, "$u: a wrong password: 400");
    is(hash_of($u), $before, "$u: ... rehashes nothing");
    is(sign_in($u, $pw{$u}), 200, "$u: the right password: 200");
    my $after = hash_of($u);
    like($after // '', qr/^pbkdf2_sha256\$2000\$/, "$u: now stored with the setting's 2000");
    if ($u eq 'same') {
        is($after, $before, "$u: already at the setting: not rehashed");
    } else {
        isnt($after, $before, "$u: rehashed (a new salt)");
    }
    is(sign_in($u, $pw{$u}), 200, "$u: the password still signs in");
}

$t->done_testing;
