# R75, R70: a change that ends many tokens (an application's deletion, a
# user's new password) revokes them first, in rounds of 1000 each a commit
# of its own, then makes the change: one write transaction of them all
# held the writer lock, every realm's writes waiting behind it, for
# seconds (2 million tokens: 55 s).  No token outlives the change, and a
# change of fewer than 10,000 tokens stays one transaction.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $big = $t->new_app(name => 'big');
my $small = $t->new_app(name => 'small');
my $other = $t->new_app(name => 'other');
$t->write_config($t->default_http(
    extra_http => "oauth2_expiry_cleanup off;\n"))->run;

# the store's last transaction id: one more each commit
sub txnid {
    my $e = `mdb_stat -e ${\ $t->store} 2>&1`;
    return $e =~ /Last transaction ID: (\d+)/ ? $1 : die "mdb_stat: $e";
}
sub bulk {
    my ($app, $n) = @_;
    my $file = $t->dir . "/$app->{name}.tokens";
    my ($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
        $app->{client_id}, '--count', $n, '--out', $file, '--sample', 3);
    die "token issue: $err" if $code;
    return split /\n/, OAuth2Test::_slurp($file);
}
my @big = bulk($big, 25000);
my @small = bulk($small, 5000);
my $keep = $t->access_token($other);
is($t->bearer_get('/protected/', $big[0])->{status}, 200,
    'one of 25,000 tokens of an application opens the location');

my $before = txnid();
my ($code, $out, $err) = $t->admin('app', 'delete', $big->{client_id});
is($code, 0, 'the application of 25,000 tokens deleted') or diag($err);
my $commits = txnid() - $before;
cmp_ok($commits, '>=', 25, "... in $commits commits: its tokens revoked "
    . 'in rounds of 1000 first');
is($t->bearer_get('/protected/', $_)->{status}, 401,
    '... and each of its tokens refused') for @big;
my $left = `mdb_dump -s client_tokens -p ${\ $t->store} 2>&1`;
unlike($left, qr/\Q$big->{client_id}\E/, '... none left in its index');

$before = txnid();
($code, $out, $err) = $t->admin('app', 'delete', $small->{client_id});
is($code, 0, 'an application of 5,000 tokens deleted') or diag($err);
is(txnid() - $before, 1, '... in one commit, its tokens with it');
is($t->bearer_get('/protected/', $small[0])->{status}, 401,
    '... its token refused');
is($t->bearer_get('/protected/', $keep)->{status}, 200,
    'another application\'s token is untouched');
$t->done_testing;
