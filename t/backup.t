# oauth2-admin backup and restore (issue 15 item 4; README "Backup and
# restore"; docs/security.md R43, R78, R79, R86): a backup taken while
# nginx issues tokens holds every token acknowledged before it began,
# proved by restoring it into a second nginx that validates them; the
# refusals (an existing file, a store with data, a store in use, bad
# backups) change nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use IO::Handle;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;

OAuth2Test::require_build();

my $CLIENTS = 3;       # processes issuing tokens throughout
my $BULK = 50000;      # tokens loaded first, so that the copy takes a while
my $json = JSON::PP->new->canonical;

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $app = $t->new_app(name => 'backup');

sub slurp { OAuth2Test::_slurp(@_) }

sub listing {
    my ($d) = @_;
    opendir my $dh, $d or return '';
    return join ' ', sort grep { !/^\.\.?$/ } readdir $dh;
}

# ---------------------------------------------- a store of some size
# (before nginx starts: the store is still root's, and so is the file)
my ($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
    $app->{client_id}, '--count', $BULK, '--out', "$dir/bulk.txt",
    '--sample', 200);
is($code, 0, "$BULK tokens loaded with token issue --count") or diag($err);
my @bulk = grep { length } split /\n/, slurp("$dir/bulk.txt");
is(scalar @bulk, 200, '200 of them kept to check after the restore');
$t->write_default_config->run;

# ---------------------------------------------- issuance load
# Each client writes "<sent> <received> <status> <token>" per request, the
# times taken just before the request and just after its answer.
mkdir "$dir/load" or die;
my @kids;
for my $n (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open my $fh, '>', "$dir/load/$n" or _exit(1);
        $fh->autoflush(1);
        my $end = time + 120;
        while (!-e "$dir/load/stop" && time < $end) {
            my $sent = time;
            my $r = $t->token($app->{client_id}, $app->{client_secret});
            my $tok = $r->{json} ? $r->{json}{access_token} // '-' : '-';
            printf $fh "%.6f %.6f %d %s\n", $sent, time, $r->{status}, $tok;
        }
        close $fh;
        _exit(0);
    }
    push @kids, $pid;
}

sub load_lines {
    my @all;
    for my $n (1 .. $CLIENTS) {
        for (split /\n/, slurp("$dir/load/$n")) {
            my ($sent, $recv, $status, $tok) = split / /;
            push @all, { sent => $sent, recv => $recv, status => $status,
                token => $tok } if defined $tok;
        }
    }
    return @all;
}

# let every client get going
my $wait_end = time + 20;
sleep 0.05 while time < $wait_end
    && (grep { $_->{status} == 200 } load_lines()) < 100 * $CLIENTS;

my $file = "$dir/store.backup";
my $t0 = time;
($code, $out, $err) = $t->admin('backup', $file);
my $t1 = time;
is($code, 0, 'backup under issuance load: exit 0') or diag($err);
sleep 0.3;    # and issuance goes on after it
OAuth2Test::write_file("$dir/load/stop", '');
waitpid $_, 0 for @kids;

my $summary = eval { $json->decode($out) } // {};
my @load = load_lines();
my @ok = grep { $_->{status} == 200 } @load;
my @before = grep { $_->{recv} < $t0 } @ok;
my @during = grep { $_->{recv} >= $t0 && $_->{recv} <= $t1 } @ok;
my @after = grep { $_->{sent} > $t1 } @ok;
diag(sprintf 'backup took %.0f ms; tokens acknowledged before it: %d, '
    . 'during it: %d, asked for after it: %d', 1000 * ($t1 - $t0),
    scalar @before, scalar @during, scalar @after);
ok(@before >= 100, 'tokens were acknowledged before the backup began');
ok(@during >= 1, 'nginx kept issuing tokens while the backup ran');
ok(@after >= 1, 'and after it');
is(scalar(grep { $_->{status} != 200 } @load), 0,
    'no token request failed during the load');

is($summary->{file}, $file, 'backup prints the file');
is($summary->{bytes}, -s $file, 'backup prints its size in bytes');
is($summary->{schema_version}, 2, 'backup prints the schema version');
is($summary->{records}{clients}, 1, 'backup counts the one application');
cmp_ok($summary->{records}{tokens} // 0, '>=', $BULK + @before,
    'backup counts at least the tokens issued before it');
is((stat $file)[2] & 07777, 0600, 'the backup file is mode 0600');

# R43: the backup holds hashes, never a secret or a token in clear
my $bytes = slurp($file);
my $leaks = 0;
for my $v ($app->{client_secret}, map { $_->{token} } @before[0 .. 49]) {
    for my $form ($v, unpack('H*', $v), encode_base64($v, '')) {
        $leaks++ if index($bytes, $form) >= 0;
    }
}
is($leaks, 0, 'no client secret and no token (raw, hex, base64) in the '
    . 'backup file (R43)');
ok(index($bytes, sha256_hex($app->{client_secret})) < 0,
    'nor the bare SHA-256 of the client secret');

# ---------------------------------------------- restored, a second nginx
my $u = OAuth2Test->new;
my $umask = umask 022;    # a new store's data.mdb: 0660 less the umask
($code, $out, $err) = $u->admin('restore', $file);
umask $umask;
is($code, 0, 'restore into a new store directory: exit 0') or diag($err);
is((stat $u->store . '/data.mdb')[2] & 07777, 0640,
    'the new store\'s data.mdb is 0640 under umask 022: not world-readable '
    . '(R43)');
my $rs = eval { $json->decode($out) } // {};
is($rs->{replaced}, JSON::PP::false, 'restore: nothing was replaced');
is($rs->{records}{tokens}, $summary->{records}{tokens},
    'restore: as many tokens as the backup');
$u->write_default_config->run;

my @lost = grep { $u->bearer_get('/protected/', $_->{token})->{status} != 200 }
    @before;
is(scalar @lost, 0, 'every token acknowledged before the backup began '
    . 'validates at the restored store (' . scalar(@before) . ' checked)')
    or diag(scalar(@lost) . ' lost, first ' . $lost[0]{token});
is(scalar(grep { $u->bearer_get('/protected/', $_)->{status} != 200 }
    @bulk), 0, 'the bulk-loaded tokens validate too (200 checked)');
my @late = grep { $u->bearer_get('/protected/', $_->{token})->{status} != 401 }
    @after;
is(scalar @late, 0, 'tokens asked for after the backup ended are not in it: '
    . '401 (' . scalar(@after) . ' checked)');
my $list = $u->admin_json('app', 'list');
is($list->[0]{client_id}, $app->{client_id}, 'app list shows the application');
my $new = $u->token($app->{client_id}, $app->{client_secret});
is($new->{status}, 200, 'its secret still authenticates: a new token');
is($u->bearer_get('/protected/', $new->{json}{access_token} // '')->{status},
    200, 'which validates');
$u->stop;

# ---------------------------------------------- refusals change nothing
my $store = $t->store;
my $dump = OAuth2Test::dump_store($store);
like($dump, qr/schema_version/, 'mdb_dump reads the live store');

OAuth2Test::write_file("$dir/exists", "keep me\n");
($code, $out, $err) = $t->admin('backup', "$dir/exists");
is($code, 1, 'backup over an existing file: exit 1');
like($err, qr/cannot create .*File exists/, 'backup says the file exists');
is(slurp("$dir/exists"), "keep me\n", 'the existing file is unchanged');

symlink "$dir/link-target", "$dir/link" or die;
($code, $out, $err) = $t->admin('backup', "$dir/link");
is($code, 1, 'backup to a symbolic link: exit 1');
ok(!-e "$dir/link-target", 'nothing was written through the link');

($code, $out, $err) = $t->admin('--store', "$dir/nostore", 'backup',
    "$dir/nostore.backup");
is($code, 1, 'backup of a store that does not exist: exit 1');
like($err, qr/no store at/, 'backup says there is no store');
ok(!-e "$dir/nostore.backup", 'and leaves no file');

($code, $out, $err) = $t->admin('restore', $file);
is($code, 1, 'restore over a store with data, without --force: exit 1');
like($err, qr/already holds data: .*--force/,
    'restore says the store holds data and names --force');

($code, $out, $err) = $t->admin('restore', $file, '--force');
is($code, 1, 'restore --force while nginx has the store open: exit 1');
like($err, qr/is open in process \d+ .*stop them/,
    'restore says which process has the store open');

is(OAuth2Test::dump_store($store), $dump, 'the store is unchanged after the refusals');
is(listing($store), 'data.mdb lock.mdb', 'and has no file more');

# ---------------------------------------------- bad backups (R78)
$t->stop;
my $data_sum = sha256_hex(slurp("$store/data.mdb"));
my $half = substr($bytes, 0, int(length($bytes) / 2));
my %bad = (
    'a missing file' => ["$dir/missing", qr/cannot open .*No such file/],
    'a directory' => [$store, qr/is a directory/],
    'an empty file' => [OAuth2Test::write_file("$dir/empty", ''), qr/it is empty/],
    'a text file' => [OAuth2Test::write_file("$dir/text", "not a backup\n" x 1000),
        qr/not an LMDB file/],
    'a truncated backup (half)' => [OAuth2Test::write_file("$dir/half", $half),
        qr/truncated/],
    'a backup less its last byte' => [OAuth2Test::write_file("$dir/short",
        substr($bytes, 0, length($bytes) - 1)), qr/truncated/],
);
# a store of a newer schema (its meta database, schema_version 9), stores
# whose schema version is no number ("1x", "2 ": not read as the number
# they start with), and an LMDB file that is no store
my $meta = `mdb_dump -n -s meta '$file'`;
for my $v (['newer', '39'], ['schema-1x', '3178'], ['schema-2sp', '3220']) {
    my ($name, $hex) = @$v;
    (my $text = $meta) =~ s/^( 736368656d615f76657273696f6e\n) 32$/$1 $hex/m
        or die "no schema_version in the dump:\n$meta";
    OAuth2Test::write_file("$dir/$name.txt", $text);
    system("mdb_load -n -s meta -f '$dir/$name.txt' '$dir/$name' 2>/dev/null")
        == 0 or die 'mdb_load';
}
$bad{'a store of a newer schema'} = ["$dir/newer", qr/schema 9 is newer/];
$bad{'a schema version "1x"'} = ["$dir/schema-1x",
    qr/its schema version '1x' is not a number/];
$bad{'a schema version "2 "'} = ["$dir/schema-2sp",
    qr/its schema version '2 ' is not a number/];
OAuth2Test::write_file("$dir/other.txt", "VERSION=3\nformat=print\ntype=btree\n"
    . "HEADER=END\n foo\n bar\nDATA=END\n");
system("mdb_load -n -s other -f '$dir/other.txt' '$dir/other'") == 0
    or die 'mdb_load';
$bad{'an LMDB file that is not a store'} = ["$dir/other", qr/no meta database/];
# a database whose own count says a record more than it holds (its
# MDB_db in the main database's leaf: the node header of a 48-byte value
# with F_SUBDATA and a 7-byte key, "clients", then md_entries at 32)
{
    my $damaged = $bytes;
    my $at = index($damaged, "\x30\x00\x00\x00\x02\x00\x07\x00clients");
    die 'no clients database node in the backup' if $at < 0;
    my $off = $at + 8 + 7 + 32;
    my $n = unpack('Q<', substr($damaged, $off, 8));
    die "clients counts $n records" unless $n == 1;
    substr($damaged, $off, 8) = pack('Q<', $n + 1);
    $bad{'a backup whose clients database counts a record it lacks'} =
        [OAuth2Test::write_file("$dir/damaged", $damaged), qr/database clients is damaged/];
}

for my $case (sort keys %bad) {
    my ($path, $re) = @{$bad{$case}};
    ($code, $out, $err) = $t->admin('restore', $path, '--force');
    is($code, 1, "restore --force of $case: exit 1");
    like($err, $re, "restore of $case says why");
}
is(sha256_hex(slurp("$store/data.mdb")), $data_sum,
    'data.mdb is byte for byte unchanged after the bad backups');
is(listing($store), 'data.mdb lock.mdb', 'and no file was left beside it');

# R78: restore --etcd takes only this build's schema: 0.8's data.mdb
# (schema 1) is refused before etcd is asked anything (the URL is a closed
# port), naming the way through a local store
{
    my $old = "$FindBin::Bin/fixtures/store-28f6349/data.mdb";
    ($code, $out, $err) = $t->admin_raw('--store', "$dir/no-mirror",
        '--etcd', 'http://127.0.0.1:9', 'restore', $old);
    my $what = 'restore --etcd of a schema 1 backup';
    is($code, 1, "$what: exit 1");
    like($err, qr/has store schema 1, the cluster 2: restore it into a local/,
        "$what: it says to restore it into a local store first");
    is($out, '', "$what: nothing on stdout");
    ok(!-e "$dir/no-mirror", "$what: no store made");
}

# ---------------------------------------------- a forced restore
my $nobody = getpwnam('nobody');
($code, $out, $err) = $t->admin('restore', $file, '--force');
is($code, 0, 'restore --force with nginx stopped: exit 0') or diag($err);
is(eval { $json->decode($out)->{replaced} }, JSON::PP::true,
    'restore says it replaced the store');
is(listing($store), 'data.mdb lock.mdb', 'no temporary file left');
is((stat "$store/data.mdb")[4], $nobody,
    'the restored data.mdb belongs to the store\'s owner (R78)');
is((stat "$store/data.mdb")[2] & 0007, 0, 'and is not world-readable');
$t->run;
is(scalar(grep { $t->bearer_get('/protected/', $_->{token})->{status} != 200 }
    @before[0 .. 199]), 0,
    'after the forced restore, tokens from before the backup validate');
is(scalar(grep { $t->bearer_get('/protected/', $_->{token})->{status} != 401 }
    @after), 0, 'tokens issued after the backup are gone: 401');
$new = $t->token($app->{client_id}, $app->{client_secret});
is($new->{status}, 200, 'the restored store issues new tokens');
is($t->bearer_get('/protected/', $new->{json}{access_token} // '')->{status},
    200, 'which validate');

# a restore never hands out again a user id (an OpenID Connect sub) given
# after the backup: each realm's sequence stays where the replaced store
# had it, if the backup's is lower
{
    my @s = ('--store', "$dir/seq");
    my $add = sub {
        my ($name) = @_;
        return $t->admin_json(@s, 'user', 'add', '--username', $name,
            '--email', "$name\@example.com", '--password', 'Seq-pass-word-77',
            '--pbkdf2-iterations', 1000)->{id};
    };
    my $u1 = $add->('u1');
    ($code, $out, $err) = $t->admin(@s, 'backup', "$dir/seq.backup");
    is($code, 0, 'a store of one user backed up') or diag($err);
    my $alice = $add->('alice');
    ($code, $out, $err) = $t->admin(@s, 'restore', "$dir/seq.backup", '--force');
    is($code, 0, 'the backup restored over the store of two') or diag($err);
    ok(!grep({ $_->{username} eq 'alice' } @{$t->admin_json(@s, 'user', 'list')}),
        '... without the user added after the backup');
    my $mallory = $add->('mallory');
    cmp_ok($mallory, '>', $alice, "a user added after the restore gets id "
        . "$mallory, not $alice (alice's, added after the backup)");
}

$t->done_testing;
