# R75, R76: another process holding the store's writer lock (the admin
# daemon stopped inside a write, sync's snapshot) never keeps nginx's
# workers from serving.  A reload that changes oauth2_store size= records
# the new size with the next write, not on the new workers' way to their
# event loop: there it waited for the lock, and while the old workers left
# no worker accepted anything (bearer validation, metadata) until the lock
# was released.  The holder is a real LMDB write transaction in a process
# of its own (t/lib/holdlock.c, built here against liblmdb).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Handle;
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);
my $D = $t->dir;
my $holdlock = "$D/holdlock";
system('cc', '-o', $holdlock, "$FindBin::Bin/lib/holdlock.c", '-llmdb') == 0
    or BAIL_OUT('cannot build t/lib/holdlock.c (cc, liblmdb-dev)');

my $app = $t->new_app(name => 'lock');
my $conf = $t->default_http;
$conf =~ s/oauth2_store %%STORE%%;/oauth2_store %%STORE%% size=64m;/ or die;
$t->write_config($conf)->run;

sub recorded_size {
    my ($code, $out) = $t->_run_cmd('/usr/bin/mdb_dump', '-p', '-s', 'meta', $t->store);
    return $out =~ /^ map_size\n (\d+)$/m ? $1 : '';
}

my $tok = $t->token($app->{client_id}, $app->{client_secret});
is($tok->{status}, 200, 'a token');
my $at = $tok->{json}{access_token};
is(recorded_size(), 64 << 20, 'the size nginx gives is recorded with a write');

# a write transaction held by another process
my $pid = open(my $hold, '-|', $holdlock, $t->store) or die "holdlock: $!";
my $ready = <$hold>;
is($ready, "held\n", 'another process holds the writer lock');

$t->edit_config(sub { s/size=64m;/size=96m;/ });
$t->reload;
my $t0 = time;
my $r = $t->request('GET', '/protected/', headers => [Authorization => "Bearer $at"],
    timeout => 5);
is($r->{status}, 200, 'after a reload that changes size=, with the lock held: '
    . 'bearer validation is answered (200)') or diag($r->{raw} // 'no answer');
cmp_ok(time - $t0, '<', 3, '... at once');
is($t->get('/open/index.html')->{status}, 200,
    '... and so is a location without oauth2');
is(recorded_size(), 64 << 20, 'the new size is not recorded while the lock is held');

kill 'TERM', $pid;
close $hold;
$tok = $t->token($app->{client_id}, $app->{client_secret});
is($tok->{status}, 200, 'the lock released: a token');
is(recorded_size(), 96 << 20, '... and that write recorded the new size');
is($t->request('GET', '/protected/', headers => [Authorization =>
    "Bearer $tok->{json}{access_token}"])->{status}, 200, '... which validates');

$t->done_testing;
