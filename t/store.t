# the LMDB store (docs/security.md R43, R16, R77, R78)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex sha256);
use MIME::Base64 qw(encode_base64);
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'store');
$t->write_default_config->run;

my @tokens = map { $t->access_token($app) } 1 .. 5;
is(scalar @tokens, 5, 'issued 5 tokens');

# R43: no token and no secret in a dump of every database
sub dump_all {
    my ($store) = @_;
    my $out = `mdb_dump -a -p '$store' 2>&1`;
    $out .= `mdb_dump -p '$store' 2>&1`;
    return $out;
}
my $dump = dump_all($t->store);
ok(length $dump > 100, 'mdb_dump -a -p produced a dump')
    or diag($dump);
my $secret = $app->{client_secret};
my @creds = ([$secret, 'client secret'], map { [$_, 'access token'] } @tokens);
my $leak = 0;
for my $c (@creds) {
    my ($v, $what) = @$c;
    for my $form ($v, unpack('H*', $v), encode_base64($v, '')) {
        $leak++, diag("$what found in store dump") if index($dump, $form) >= 0;
    }
}
is($leak, 0, 'no token or client secret (raw, hex, base64) in the dump (R43)');
# unsalted SHA-256 of the secret is a usable oracle for a 256-bit secret?
# no, but a plain secret hash keyed without salt/pepper is still reported
my $sh = sha256_hex($secret);
ok(index($dump, $sh) < 0,
    'the client secret is not stored as bare unsalted SHA-256 (R16)');

# the store belongs to the worker user after start (R78)
my $nobody = getpwnam('nobody');
my @files = ($t->store, glob($t->store . '/*'));
ok(@files >= 2, 'the store has files: ' . join ' ', @files);
my @wrong = grep { (stat $_)[4] != $nobody } @files;
is("@wrong", '', 'store directory and files are owned by nobody (R78)');
my @w = $t->worker_pids;
my $wuid = (split ' ', (grep { /^Uid:/ } split /\n/,
    OAuth2Test::_slurp("/proc/$w[0]/status"))[0])[1];
is($wuid, $nobody, 'workers run as nobody (no user directive)');

# the CLI (root) can still write after nginx chowned the store
my $app2 = $t->new_app(name => 'after-start');
is($t->token($app2->{client_id}, $app2->{client_secret})->{status}, 200,
    'an app added by the CLI while nginx runs can get a token');
my @wrong2 = grep { (stat $_)[4] != $nobody } ($t->store,
    glob($t->store . '/*'));
is("@wrong2", '', 'store files still owned by nobody after a CLI write');
is($t->bearer_get('/protected/', $tokens[0])->{status}, 200,
    'tokens still validate after the CLI wrote');

$t->stop;

# the master creates a missing store for the workers' user (README)
{
    my $u = OAuth2Test->new;
    $u->write_default_config->run;
    ok(-d $u->store, 'a missing store directory is created at start');
    is((stat $u->store)[4], $nobody, 'the created store is owned by nobody');
    my $a = $u->new_app(name => 'late');
    is($u->token($a->{client_id}, $a->{client_secret})->{status}, 200,
        'an app added after start gets a token from the new store');
    $u->stop;
}

# with a "user" directive the store goes to that user (README, R78)
SKIP: {
    my $wuid = getpwnam('www-data');
    skip 'no www-data user', 4 unless defined $wuid;
    my $u = OAuth2Test->new;
    my $a = $u->new_app(name => 'wwwdata');
    $u->write_config($u->default_http, user => 'www-data');
    $u->run;
    my @own = map { (stat $_)[4] } ($u->store, glob($u->store . '/*'));
    is(scalar(grep { $_ != $wuid } @own), 0,
        'user www-data: the store belongs to www-data');
    my $r = $u->token($a->{client_id}, $a->{client_secret});
    is($r->{status}, 200, 'user www-data: token 200');
    is($u->bearer_get('/protected/', $r->{json}{access_token} // '')
        ->{status}, 200, 'user www-data: the token validates');
    $u->stop;
}

# what a store that cannot be opened or prepared may log (alert, crit,
# emerg, naming it), and never a crash
my $BROKEN_STORE_LOG = qr/^(?!.*(?:exited on signal|Sanitizer|runtime error))
    .*(?:oauth2|lmdb|mdb_|\bstore\b)/xi;

# R77/R78: a store that cannot be opened -> 503, workers stay up
for my $case ('file', 'unwritable') {
    my $u = OAuth2Test->new;
    my $store = $u->store;
    if ($case eq 'file') {
        open my $fh, '>', $store or die;
        print $fh "not an lmdb environment\n";
        close $fh;
    } else {
        # a parent the master cannot create the store in
        open my $fh, '>', $u->dir . '/blocker' or die;
        close $fh;
    }
    my $http = $u->default_http;
    $http =~ s{oauth2_store \S+;}{oauth2_store $store;} if $case eq 'file';
    $http =~ s{oauth2_store \S+;}{oauth2_store %%DIR%%/blocker/store;}
        if $case eq 'unwritable';
    $u->write_config($http);
    my ($code, $out) = $u->nginx_t;
    ok($code == 0 || $out =~ /oauth2|lmdb|mdb_/i,
        "$case store: nginx -t passes or names the store") or diag($out);
    # the open failure is logged (alert/crit/emerg allowed), crashes are not
    $u->expect_log($BROKEN_STORE_LOG);
    my $started = eval { $u->run; 1 };
    ok($started, "$case store: nginx starts anyway and serves 503 "
        . '(README, R78)') or diag($@);
    like($@, qr/oauth2|lmdb|mdb_/i,
        "$case store: the start failure names the store") unless $started;
    next unless $started;
    my $r = $u->post_form('/o/token/', 'grant_type=client_credentials',
        Authorization => $u->basic('x', 'y'));
    $u->oauth_error_ok($r, 503, 'temporarily_unavailable',
        "$case store: token endpoint (R77)");
    $r = $u->get('/protected/', Authorization => 'Bearer ' . ('x' x 43));
    is($r->{status}, 503, "$case store: protected location 503, never 200 "
        . '(R77)');
    is(OAuth2Test::header($r, 'WWW-Authenticate'), undef,
        "$case store: 503 has no WWW-Authenticate (README)");
    $r = $u->get('/protected/');
    ok($r->{status} == 503 || $r->{status} == 401,
        "$case store: protected location without token 503 or 401");
    $r = $u->post_form('/o/revoke_token/', 'token=abc',
        Authorization => $u->basic('x', 'y'));
    is($r->{status}, 503, "$case store: revoke 503, never 200 (R53)");
    is($u->get('/open/')->{status}, 200, "$case store: /open/ still 200");
    is(scalar($u->worker_pids), 2, "$case store: both workers alive (R78)");
    my $log = OAuth2Test::_slurp($u->error_log);
    unlike($log, qr/exited on signal|exited with fatal code/,
        "$case store: no worker died (R78)");
    if ($case eq 'file') {
        ok(-f $store && OAuth2Test::_slurp($store) eq
            "not an lmdb environment\n",
            'file store: the file was not wiped (R78)');
    }
}

# R78: the master's chown never follows a symbolic link in the store: the
# directory is the workers' user's, who could plant one pointing at any
# file root owns
{
    my $u = OAuth2Test->new;
    my $victim = $u->plant_lock('symlink');
    $u->expect_log($BROKEN_STORE_LOG);
    $u->write_default_config->run;
    is((stat $victim)[4], 0, 'a lock.mdb symlinked to a file of root\'s: '
        . 'the file stays root\'s');
    is(OAuth2Test::_slurp($victim), "keep\n", 'and nothing was written into it');
    $u->stop;
}

# nor chowns a file with another name: a hard link the workers' user made
# to a file of root's (where the kernel's protected_hardlinks is off)
{
    my $u = OAuth2Test->new;
    $u->new_app(name => 'existing');    # the CLI (root) makes the store
    my $victim = $u->plant_lock('link');
    $u->expect_log($BROKEN_STORE_LOG);
    $u->write_default_config->run;
    is((stat $victim)[4], 0, 'a lock.mdb hard-linked to a file of root\'s: '
        . 'the file stays root\'s');
    is(OAuth2Test::_slurp($victim), "keep\n", 'and nothing was written into it');
    like(OAuth2Test::_slurp($u->error_log), qr/lock\.mdb has other hard links/,
        'the master says why');
    $u->stop;
}

# R78, R86: the master checks an existing store in a child that runs as
# the workers' user: a lock.mdb that user made a symbolic link to a file of
# root's is opened as the workers' user, who may not, so root's file is
# neither opened nor written (the case above has no data.mdb: no check)
{
    my $u = OAuth2Test->new;
    $u->new_app(name => 'existing');    # the CLI (root) makes the store
    my $victim = $u->plant_lock('symlink');
    $u->expect_log($BROKEN_STORE_LOG);
    $u->write_default_config->run;
    is(OAuth2Test::_slurp($victim), "keep\n", 'a lock.mdb symlinked to a '
        . 'file of root\'s beside a data.mdb: nothing written into the file');
    is((stat $victim)[4], 0, 'and the file stays root\'s');
    like(OAuth2Test::_slurp($u->error_log),
        qr/cannot prepare store "[^"]+": mdb_env_open: Permission denied/,
        'the check, as the workers\' user, may not open it: the master '
        . 'says so');
    $u->stop;
}

# R78: a data.mdb the master's check (in a child, as the workers' user)
# refuses is reported at start, naming the store and the child's reason
{
    my $u = OAuth2Test->new;
    mkdir $u->store or die "mkdir: $!";
    OAuth2Test::write_file($u->store . '/data.mdb', 'x' x 16384);
    $u->expect_log($BROKEN_STORE_LOG);
    $u->write_default_config->run;
    like(OAuth2Test::_slurp($u->error_log),
        qr/oauth2: cannot prepare store "[^"]+": \S/,
        'a corrupt data.mdb: the master says it cannot prepare the store');
    like(OAuth2Test::_slurp($u->error_log),
        qr/oauth2: cannot prepare store "[^"]+": mdb_env_open: MDB_INVALID/,
        'and gives the reason the check in the child found (MDB_INVALID)');
    is($u->get('/protected/', Authorization => 'Bearer ' . ('x' x 43))
        ->{status}, 503, 'and the workers answer 503 (R77)');
    $u->stop;
}

$t->done_testing;
