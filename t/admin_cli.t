# oauth2-admin (README "oauth2-admin"; docs/security.md R16, R71)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build('admin');

my $t = OAuth2Test->new;
my $store = $t->store;
my $json = JSON::PP->new;
sub dj { my $j = eval { $json->decode($_[0]) }; return $j }

# app add, --store before the subcommand
my ($code, $out, $err) = $t->admin_raw('--store', $store, 'app', 'add',
    '--name', 'cli', '--grant', 'client_credentials');
is($code, 0, '--store before the subcommand: exit 0') or diag($err);
is(sprintf('%o', (stat $store)[2] & 07777), '750',
    'the store directory the CLI made is 0750, whatever the umask');
my $app = dj($out);
ok($app, 'app add prints JSON') or diag($out);
is_deeply([sort keys %{$app // {}}], [sort qw(client_id client_secret name
    client_type grant_types scope redirect_uris resources auth_method
    access_token_ttl access_token_format first_party dpop_bound_access_tokens
    post_logout_redirect_uris id_token_signed_response_alg
    created_at)],
    'app add prints exactly the README fields');
is($app->{name}, 'cli', 'name is cli');
is_deeply($app->{grant_types}, ['client_credentials'],
    'grant_types is ["client_credentials"]');
is(ref $app->{redirect_uris}, 'ARRAY', 'redirect_uris is an array');
is($app->{client_type}, 'confidential', 'client_type confidential');
like($app->{client_secret} // '', qr/^\S{43,}$/,
    'client_secret has at least 43 chars (256 bits, R71)');
like($app->{client_id} // '', qr/^[A-Za-z0-9_\-.~]+$/,
    'client_id is URL-safe');

# --store after the subcommand
($code, $out, $err) = $t->admin_raw('app', 'add', '--name', 'cli2',
    '--grant', 'client_credentials', '--scope', 'read', '--store', $store);
is($code, 0, '--store after the subcommand: exit 0') or diag($err);
my $app2 = dj($out) // {};
is($app2->{scope}, 'read', '--scope read recorded');
($code, $out, $err) = $t->admin_raw('app', 'list', '--store', $store);
is($code, 0, 'app list with --store last: exit 0');

# app list
($code, $out, $err) = $t->admin('app', 'list');
is($code, 0, 'app list: exit 0');
my $list = dj($out);
ok($list, 'app list prints JSON') or diag($out);
my @apps = ref $list eq 'ARRAY' ? @$list
    : ref $list eq 'HASH' && ref $list->{apps} eq 'ARRAY' ? @{$list->{apps}}
    : ();
is(scalar @apps, 2, 'app list shows the two apps');
my ($l) = grep { ($_->{client_id} // '') eq $app->{client_id} } @apps;
ok($l, 'app list shows the first app');
ok(!exists $l->{client_secret}, 'app list has no client_secret');
unlike($out, qr/\Q$app->{client_secret}\E/,
    'app list output never contains the secret');

# app show
($code, $out, $err) = $t->admin('app', 'show', $app->{client_id});
is($code, 0, 'app show: exit 0');
my $show = dj($out) // {};
is($show->{client_id}, $app->{client_id}, 'app show: client_id');
is($show->{name}, 'cli', 'app show: name');
ok(!exists $show->{client_secret}, 'app show has no client_secret');
unlike($out, qr/\Q$app->{client_secret}\E/, 'app show never prints the secret');
($code, $out, $err) = $t->admin('app', 'show', 'no-such-id');
is($code, 1, 'app show unknown id: exit 1');
like($err, qr/\S/, 'app show unknown id: message on stderr');
# a client_id with an escape sequence or bytes that are not UTF-8 is
# never echoed raw
for my $id ("\e]0;x\a", "ab\xff\xfe") {
    my $shown = $id =~ s/([^\x21-\x7e])/sprintf('\\x%02X', ord $1)/ger;
    ($code, $out, $err) = $t->admin('app', 'show', $id);
    is($code, 1, "app show '$shown': exit 1");
    like($err, qr/no such application/, "app show '$shown': no such application");
    unlike($err, qr/[\e\a\x80-\xff]/,
        "app show '$shown': the client_id does not reach the terminal raw");
}

# options
my $pub = $t->new_app(name => 'pub', public => 1);
is($pub->{client_type}, 'public', '--public: client_type public');
ok(!defined $pub->{client_secret} || $pub->{client_secret} eq '',
    '--public: no secret');
my $pm = $t->new_app(name => 'pm', auth_method => 'client_secret_post',
    ttl => 60);
is($pm->{auth_method}, 'client_secret_post', '--auth-method recorded');
is($pm->{access_token_ttl}, 60, '--access-token-ttl recorded');
my $multi = $t->new_app(name => 'multi',
    grant => ['client_credentials', 'authorization_code'],
    redirect_uris => ['https://client.example/cb']);
is_deeply([sort @{$multi->{grant_types}}],
    [qw(authorization_code client_credentials)], 'two --grant options');
is_deeply($multi->{redirect_uris}, ['https://client.example/cb'],
    '--redirect-uri recorded');

# app delete
($code, $out, $err) = $t->admin('app', 'delete', $app2->{client_id});
is($code, 0, 'app delete: exit 0') or diag($err);
($code, $out, $err) = $t->admin('app', 'show', $app2->{client_id});
isnt($code, 0, 'app show after delete: non-zero exit');
like($err, qr/\S/, 'app show after delete: message on stderr');
($code, $out, $err) = $t->admin('app', 'delete', $app2->{client_id});
isnt($code, 0, 'deleting twice: non-zero exit');

sub count_apps {
    my ($c, $o) = $t->admin('app', 'list');
    my $l = dj($o);
    return ref $l eq 'ARRAY' ? scalar @$l
        : ref $l eq 'HASH' && ref $l->{apps} eq 'ARRAY' ? scalar @{$l->{apps}}
        : -1;
}
my $n = count_apps();

# usage errors: exit 2, stderr, nothing created
for my $c (
    [[qw(frobnicate)], 'unknown command'],
    [[qw(app frobnicate)], 'unknown app subcommand'],
    [[qw(app add --grant client_credentials)], 'missing --name'],
    [[qw(app add --name x --grant bogus)], 'bad --grant value'],
    [[qw(app add --name x --grant client_credentials --auth-method bogus)],
        'bad --auth-method'],
    [[qw(app add --name x --grant client_credentials --access-token-ttl abc)],
        'bad --access-token-ttl'],
    [[qw(app add --name x --grant client_credentials --bogus)],
        'unknown option'],
    [[qw(app add --name)], '--name without a value'],
    [[qw(app show)], 'app show without an id'],
    [[qw(app delete)], 'app delete without an id'],
    [[qw(app add --name x --name y --grant client_credentials)],
        '--name given twice', qr/--name given twice/],
    [[qw(app add --name x --grant client_credentials --first-party=yes)],
        'a value to a flag', qr/--first-party takes no value/],
    [[qw(app add --grant client_credentials --name --first-party)],
        'an option as --name\'s value', qr/--name needs a value/],
    [[qw(app show nosuch extra)], 'an operand too many',
        qr/unexpected argument 'extra'/],
    [[qw(app add --name x --public --grant client_credentials)],
        'a public client with client_credentials (RFC 6749 4.4)',
        qr/client_credentials/],
    [['app', 'add', '--name', 'x', '--grant', "bo\e[31mgus"],
        'an escape sequence in a value', qr/bo\\x1B\[31mgus/],
    [['app', 'add', '--name', 'x', '--grant', "bo\xc2\x9b31mgus"],
        'a C1 control (U+009B, CSI) in a value', qr/bo\\xC2\\x9B31mgus/],
    [['app', 'add', '--name', 'x', '--grant', 'g' x 10000],
        'a 10000-byte value', qr/'g{80}\.\.\.'/],
    [['--store', '', qw(app list)], '--store \'\' (an unset variable)',
        qr/--store: empty directory name/],
    [['app', 'add', '--name', 'n' x 256, '--grant', 'client_credentials'],
        'a 256-character --name (the store does not bound it)',
        qr/--name: must be 1 to 255 characters/],
    [[qw(app add --name x)], 'app add without --grant',
        qr/at least one --grant/],
    [['app', 'add', '--name', 'x', '--grant', 'client_credentials',
        map { ('--resource', "https://api$_.example/") } 1 .. 9],
        'app add with nine --resource (R68)', qr/at most 8 resources/],
    [['app', 'update', $app->{client_id},
        map { ('--resource', "https://api$_.example/") } 1 .. 9],
        'app update with nine --resource (R68)', qr/at most 8 resources/],
    [[qw(app add --name x --public --grant authorization_code
        --redirect-uri https://client.example/cb
        --auth-method client_secret_basic)],
        'a public client with --auth-method (R18: it has no secret)',
        qr/--public and --auth-method exclude each other/],
    [[qw(app add --name x --grant client_credentials --id-token-alg none)],
        '--id-token-alg none', qr/'none' is not RS256, ES256 or EdDSA/],
    [[qw(app add --name x --grant client_credentials --id-token-alg HS256)],
        '--id-token-alg HS256', qr/'HS256' is not RS256, ES256 or EdDSA/],
)
{
    my ($args, $name, $says) = @$c;
    my ($code, $out, $err) = $t->admin(@$args);
    is($code, 2, "$name: exit 2");
    like($err, $says // qr/\S/, "$name: message on stderr");
    unlike($err, qr/\e/, "$name: no raw escape byte reaches the terminal");
    is($out, '', "$name: nothing on stdout");
}
is(count_apps(), $n, 'usage errors created nothing');
is_deeply(dj(($t->admin('app', 'show', $app->{client_id}))[1])->{resources},
    [], 'the refused app update left the application without resources');
# a long operand is cut in the message: it floods neither the terminal nor
# a log
{
    my ($code, $out, $err) = $t->admin(qw(app add --name x --grant),
        'g' x 10000);
    cmp_ok(length $err, '<', 400,
        'a 10000-byte --grant: the message is cut (' . length($err)
        . ' bytes)');
    unlike($err, qr/g{81}/, '... the value shown is at most 80 bytes');
}

# redirect URI registration rules (R22)
for my $u ('javascript:alert(1)', 'http://client.example/cb',
    'https://client.example/cb#frag', "https://client.example/cb\nx",
    'relative/path', 'https://user@client.example/cb',
    'https://client.example/cb%0D%0ASet-Cookie:x=1')
{
    my ($code, $out, $err) = $t->admin(qw(app add --name r --grant
        authorization_code --redirect-uri), $u);
    isnt($code, 0, "redirect uri '" . ($u =~ s/\n/\\n/r) . "' rejected (R22)");
}
is(count_apps(), $n, 'rejected registrations created nothing');
# a private-use scheme (RFC 8252 7.1) with an authority: no userinfo there
# either, and the same URI without it is taken
for my $u ('com.example.app://user:pass@evil.example/cb', 'com.example.app://u@evil.example') {
    my ($code, $out, $err) = $t->admin(qw(app add --name r --public --grant
        authorization_code --redirect-uri), $u);
    isnt($code, 0, "redirect uri '$u' rejected (R22)");
}
is(count_apps(), $n, '... and created nothing');
{
    my ($code, $out, $err) = $t->admin(qw(app add --name r --public --grant
        authorization_code --redirect-uri com.example.app://evil.example/cb));
    is($code, 0, 'com.example.app://evil.example/cb, without userinfo: taken') or diag $err;
    $n++;
}

# --name counts characters, not bytes: 255 of them are taken
{
    my ($code, $out, $err) = $t->admin('app', 'add', '--name',
        "\xc3\xa9" x 255, '--grant', 'client_credentials');
    is($code, 0, 'a --name of 255 two-byte characters: exit 0') or diag($err);
    is((dj($out) // {})->{name}, "\xc3\xa9" x 255,
        'a --name of 255 two-byte characters: recorded whole');
}

# the standard fds: a closed stdout is refused before the store is opened
# (app add would print the only copy of the secret into /dev/null, R71),
# and a stdout whose reader has gone is a write error, not SIGPIPE's death
# (as `oauth2-admin app list | head -c1` may give it)
{
    my $apps = count_apps();
    my $errf = $t->dir . '/fds.err';
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', $errf or POSIX::_exit(127);
        POSIX::close(1);
        no warnings 'exec';
        exec { $OAuth2Test::ADMIN } $OAuth2Test::ADMIN, '--store', $store,
            qw(app add --name closed --grant client_credentials);
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    is($? & 127 ? 128 + ($? & 127) : $? >> 8, 1,
        'app add with stdout closed: exit 1');
    like(OAuth2Test::_slurp($errf), qr/stdout is closed/,
        'app add with stdout closed: it says stdout is closed');
    is(count_apps(), $apps, 'app add with stdout closed: no application '
        . '(its secret would be lost)');

    # no reader at all: the read end is closed before the child starts
    pipe(my $r, my $w) or die "pipe: $!";
    close $r;
    $pid = fork // die "fork: $!";
    if (!$pid) {
        $SIG{PIPE} = 'DEFAULT';    # as a shell leaves it
        open STDOUT, '>&', $w or POSIX::_exit(127);
        open STDERR, '>', $errf or POSIX::_exit(127);
        no warnings 'exec';
        exec { $OAuth2Test::ADMIN } $OAuth2Test::ADMIN, '--store', $store,
            qw(app list);
        POSIX::_exit(127);
    }
    close $w;
    waitpid $pid, 0;
    is($? & 127 ? 128 + ($? & 127) : $? >> 8, 1,
        'app list into a pipe nobody reads: exit 1, not killed by SIGPIPE');
    like(OAuth2Test::_slurp($errf), qr/cannot write to stdout: Broken pipe/,
        'app list into a pipe nobody reads: it says why');
}

# R78: with --etcd the CLI writes through the cluster; a store that is
# no mirror of it (a single-node store) is refused, naming the sync that
# makes one, and left as it was
{
    my $dump = OAuth2Test::dump_store($store);
    my ($code, $out, $err) = $t->admin('--etcd', 'http://127.0.0.1:9',
        qw(app add --name via-etcd --grant client_credentials));
    is($code, 1, '--etcd on a store that is no mirror: exit 1');
    like($err, qr/--etcd: .* is not a mirror yet: start oauth2-admin sync/,
        '--etcd on a store that is no mirror: it says to start sync first');
    is($out, '', '--etcd on a store that is no mirror: nothing on stdout');
    is(OAuth2Test::dump_store($store), $dump,
        '--etcd on a store that is no mirror: the store is left as it was');
}
# ... and so is a store that does not exist: a read answers from no
# mirror (not "[]", as if the cluster were empty), a write makes none
{
    my $none = $t->dir . '/no-mirror';
    for my $cmd ([qw(user list)], [qw(app list)],
        [qw(app add --name via-etcd --grant client_credentials)])
    {
        my ($code, $out, $err) = $t->admin_raw('--store', $none,
            '--etcd', 'http://127.0.0.1:9', @$cmd);
        is($code, 1, "--etcd @$cmd[0,1] with no store there: exit 1");
        like($err, qr/--etcd: \Q$none\E is not a mirror yet: start oauth2-admin sync/,
            "--etcd @$cmd[0,1] with no store there: it says to start sync first");
        is($out, '', "--etcd @$cmd[0,1] with no store there: nothing on stdout");
        ok(!-e $none, "--etcd @$cmd[0,1] with no store there: makes none");
    }
}

# a read on a directory that holds no store (a mistyped --store) answers
# from no store and makes none there
{
    my $empty = $t->dir . '/empty-dir';
    mkdir $empty or die "mkdir $empty: $!";
    my ($code, $out, $err) = $t->admin_raw('--store', $empty, qw(user list));
    is($code, 0, 'user list on a directory without a store: exit 0')
        or diag($err);
    is($out, "[]\n", '... no users');
    opendir my $dh, $empty or die "opendir: $!";
    my @left = grep { !/^\.\.?$/ } readdir $dh;
    is("@left", '', '... and no store made there (no data.mdb, no lock.mdb)');
}

# R78: the CLI run as root on a store of the workers' user (nobody, as
# nginx's master leaves it) gives that user back a file an earlier root run
# left root's, and never follows a symbolic link planted in the store (the
# directory is nobody's, who could point one at any file of root's)
{
    my ($nuid, $ngid) = (getpwnam('nobody'))[2, 3];
    my $owned = sub {    # a store made by the CLI, then given to nobody
        my $u = OAuth2Test->new;
        $u->new_app(name => 'owned');
        chown $nuid, $ngid, $u->store, glob($u->store . '/*')
            or die "chown: $!";
        return $u;
    };
    my $u = $owned->();
    my $lock = $u->store . '/lock.mdb';
    chown 0, 0, $lock or die "chown: $!";
    chmod 0600, $lock;
    my ($code, $out, $err) = $u->admin(qw(app list));
    is($code, 0, 'a lock.mdb left root\'s, the CLI as root: exit 0')
        or diag($err);
    is((stat $lock)[4], $nuid, '... and lock.mdb is nobody\'s again (R78)');

    $u = $owned->();
    my $victim = $u->plant_lock('symlink');
    ($code, $out, $err) = $u->admin(qw(app list));
    is($code, 1, 'a lock.mdb symlinked to a file of root\'s, the CLI as '
        . 'root: exit 1');
    is((stat $victim)[4], 0, '... the file stays root\'s (R78)');
    is(OAuth2Test::_slurp($victim), "keep\n", '... and nothing was written '
        . 'into it');

    # a hard link instead (a kernel whose protected_hardlinks is off lets
    # nobody make one to a file of root's): the same file under two names
    $u = $owned->();
    $victim = $u->plant_lock('link');
    ($code, $out, $err) = $u->admin(qw(app list));
    is($code, 1, 'a lock.mdb hard-linked to a file of root\'s, the CLI as '
        . 'root: exit 1');
    like($err, qr/lock\.mdb has other hard links/, '... saying why');
    is((stat $victim)[4], 0, '... the file stays root\'s (R78)');
    is(OAuth2Test::_slurp($victim), "keep\n", '... and nothing was written '
        . 'into it');
}

# token issue --count --out as root on a store of the workers' user: the
# file of bearer tokens is made as the caller (root's, 0600), as backup's,
# never the store owner's (whatever runs as www-data could read them); a
# run that fails leaves no file (R78)
{
    my ($nuid, $ngid) = (getpwnam('nobody'))[2, 3];
    my $u = OAuth2Test->new;
    my $app = $u->new_app(name => 'bulk', grant => 'client_credentials');
    chown $nuid, $ngid, $u->store, glob($u->store . '/*') or die "chown: $!";
    my $file = $u->dir . '/tokens.txt';
    my ($code, $out, $err) = $u->admin('token', 'issue', '--client-id',
        $app->{client_id}, '--count', 3, '--out', $file);
    is($code, 0, 'token issue --count 3 --out, as root on nobody\'s store: '
        . 'exit 0') or diag($err);
    my @st = stat $file;
    is("$st[4]:$st[5]", '0:0', '... the file is root\'s, the caller\'s');
    is(sprintf('%o', $st[2] & 07777), '600', '... mode 0600');
    my @lines = split /\n/, OAuth2Test::_slurp($file);
    is(scalar @lines, 3, '... with the 3 tokens');
    is((stat $u->store . '/data.mdb')[4], $nuid, '... and the store stays '
        . 'nobody\'s');
    my $bad = $u->dir . '/none.txt';
    ($code, $out, $err) = $u->admin('token', 'issue', '--client-id',
        'no-such-app', '--count', 3, '--out', $bad);
    is($code, 1, 'token issue --count for an unknown application: exit 1');
    ok(!-e $bad, '... and no file is left');
    ($code, $out, $err) = $u->admin('token', 'issue', '--client-id',
        $app->{client_id}, '--count', 3, '--out', $file);
    is($code, 1, 'token issue --out to a file that exists: exit 1');
    is(scalar(split /\n/, OAuth2Test::_slurp($file)), 3,
        '... and the file is untouched');
}

# --help
for my $args ([qw(app add --help)], [qw(--help)], [qw(app list --help)],
    [qw(app show --help)], [qw(app delete --help)])
{
    my ($code, $out, $err) = $t->admin(@$args);
    is($code, 0, "@$args: exit 0");
    like($out . $err, qr/usage/i, "@$args: prints usage");
}
my ($hc, $ho) = $t->admin(qw(app add --help));
like($ho, qr/--name/, 'app add --help mentions --name');

# the Debian package builds oauth2-admin(1) from --help (debian/rules): the
# generator must read every command of the list
{
    my ($hc, $top) = $t->admin('--help');
    my ($list) = $top =~ /\nCommands:\n(.*?)\n\n/s;
    my @names = map { /^\s+([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)?)/ ? $1 : () }
        split /\n/, $list // '';
    my $man = `$FindBin::Bin/../scripts/man-oauth2-admin $OAuth2Test::ADMIN 0 2>&1`;
    is($?, 0, 'scripts/man-oauth2-admin builds the man page') or diag($man);
    cmp_ok(scalar @names, '>', 20, 'the command list has every command');
    for my $name (@names) {
        my $roff = $name =~ s/-/\\-/gr;
        like($man, qr/\Q$roff\E/, "the man page has '$name'");
    }
}

# default store path ./var/store
my $cwd = $t->dir . '/cwd';
mkdir $cwd;
my $pid = fork // die;
if (!$pid) {
    chdir $cwd or POSIX::_exit(1);
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    no warnings "exec";
    exec { $OAuth2Test::ADMIN } $OAuth2Test::ADMIN, 'app', 'add', '--name',
        'd', '--grant', 'client_credentials';
    POSIX::_exit(127);
}
waitpid $pid, 0;
ok(-d "$cwd/var/store", 'without --store the store is ./var/store');

$t->done_testing;
