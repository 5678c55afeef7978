# oauth2-admin restore run as root (README "Backup and restore";
# docs/security.md R43, R78): the store's directory belongs to the
# workers' user (nobody, as nginx's master leaves it), who may plant a
# symbolic link in it; the files restore makes there must be that user's,
# never root's, and a store directory restore makes is 0750.  The tests
# run as root, as the CLI does on a server.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build('admin');

my ($nuid, $ngid) = (getpwnam('nobody'))[2, 3];
defined $nuid or die 'no user nobody';

sub listing {
    my ($d) = @_;
    opendir my $dh, $d or return '';
    return join ' ', sort grep { !/^\.\.?$/ } readdir $dh;
}

# a store made by the CLI (root's), its backup, then the store given to
# nobody as nginx's master gives it to the workers
sub owned_store {
    my $u = OAuth2Test->new;
    $u->new_app(name => 'owned');
    my $file = $u->dir . '/store.backup';
    my ($code, $out, $err) = $u->admin('backup', $file);
    die "backup: $err" if $code;
    chown $nuid, $ngid, $u->store, glob($u->store . '/*')
        or die "chown: $!";
    return ($u, $file);
}

######################################## a symbolic link as lock.mdb (R78)

# nobody points lock.mdb at a file of root's (/etc/shadow, say): restore
# as root must neither give that file to nobody nor write into it
{
    my ($u, $file) = owned_store();
    my $store = $u->store;
    my $victim = $u->plant_lock('symlink');
    my $before = OAuth2Test::_slurp("$store/data.mdb");
    my ($code, $out, $err) = $u->admin('restore', $file, '--force');
    is($code, 1, 'restore --force as root, lock.mdb a symbolic link to a '
        . 'file of root\'s: exit 1');
    like($err, qr/cannot open .*lock\.mdb/, '... saying it cannot open '
        . 'lock.mdb');
    my @st = stat $victim;
    is("$st[4]:$st[5]", '0:0', '... the file it points to stays root\'s '
        . '(R78)');
    is(sprintf('%o', $st[2] & 07777), '600', '... with its mode');
    ok(OAuth2Test::_slurp($victim) eq "keep\n", '... and its bytes');
    ok(-l "$store/lock.mdb", '... the link is left as it was');
    ok(OAuth2Test::_slurp("$store/data.mdb") eq $before,
        '... and data.mdb is not replaced');
}

# a hard link instead (a kernel whose protected_hardlinks is off lets
# nobody make one to a file of root's): restore gives it to no one
{
    my ($u, $file) = owned_store();
    my $store = $u->store;
    my $victim = $u->plant_lock('link');
    my ($code, $out, $err) = $u->admin('restore', $file, '--force');
    is($code, 1, 'restore --force as root, lock.mdb a hard link to a file of '
        . 'root\'s: exit 1');
    like($err, qr/lock\.mdb.* has other hard links/, '... saying why');
    my @st = stat $victim;
    is("$st[4]:$st[5]", '0:0', '... the file stays root\'s (R78)');
    ok(OAuth2Test::_slurp($victim) eq "keep\n", '... with its bytes');
}

######################################## a store without lock.mdb (R78)

# nginx stopped and lock.mdb removed (or never made): the lock.mdb restore
# makes is the store owner's, else nobody's workers and the CLI (which
# becomes the store's owner) could not open the store restored
{
    my ($u, $file) = owned_store();
    my $store = $u->store;
    unlink "$store/lock.mdb" or die "unlink: $!";
    my ($code, $out, $err) = $u->admin('restore', $file, '--force');
    is($code, 0, 'restore --force as root into nobody\'s store without '
        . 'lock.mdb: exit 0') or diag $err;
    is(listing($store), 'data.mdb lock.mdb', '... it made lock.mdb');
    my @st = stat "$store/lock.mdb";
    is("$st[4]:$st[5]", "$nuid:$ngid", '... which is nobody\'s (R78)');
    @st = stat "$store/data.mdb";
    is("$st[4]:$st[5]", "$nuid:$ngid", '... as data.mdb is');
    my ($lc, $lo, $le) = $u->admin('app', 'list');
    is($lc, 0, 'the CLI as root (become nobody) reads the restored store')
        or diag $le;
    like($lo, qr/"name": "owned"/, '... and lists its application');
}

######################################## a new store directory (R43)

# restore into a directory that does not exist: it is made 0750 whatever
# the umask (the store holds every secret's hash; another local user must
# not read it, plant a lock.mdb or swap data.mdb), its parents 0755
{
    my ($u, $file) = owned_store();
    my $new = $u->dir . '/new/store';
    my $umask = umask 0;
    my ($code, $out, $err) = $u->admin_raw('--store', $new, 'restore',
        $file);
    umask $umask;
    is($code, 0, 'restore into a new directory under umask 0: exit 0')
        or diag $err;
    is(sprintf('%o', (stat $new)[2] & 07777), '750',
        '... the store directory is 0750, not world-accessible (R43)');
    is(sprintf('%o', (stat $u->dir . '/new')[2] & 07777), '755',
        '... its parent 0755 (nginx\'s workers pass through it)');
    is(sprintf('%o', (stat "$new/data.mdb")[2] & 07777), '660',
        '... and data.mdb 0660 under umask 0 (never world-readable)');
}

done_testing;
