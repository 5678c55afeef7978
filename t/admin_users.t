# oauth2-admin user ... and token issue (README "oauth2-admin"; issue 3
# item 5; docs/security.md R39, R43, R46, R66, R70)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(token_count);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $json = JSON::PP->new;
my @FAST = ('--pbkdf2-iterations', 1000);    # the default costs ~0.5 s
sub dj { my $j = eval { $json->decode($_[0] // '') }; return $j }

# oauth2-admin --store <store> @args with $input on stdin
sub admin_stdin {
    my ($input, @args) = @_;
    my $dir = $t->dir;
    my ($in, $out, $err) = map { "$dir/.stdin-cmd.$_.$$" } qw(in out err);
    open my $fh, '>', $in or die "$in: $!";
    print $fh $input;
    close $fh;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', $in or POSIX::_exit(127);
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        exec { $OAuth2Test::ADMIN } $OAuth2Test::ADMIN, '--store', $t->store,
            @args or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $code = $? >> 8;
    my @r = ($code, OAuth2Test::_slurp($out), OAuth2Test::_slurp($err));
    unlink $in, $out, $err;
    return @r;
}

sub dump_store {
    my $store = $t->store;
    return `mdb_dump -a -p '$store' 2>&1`;
}

sub users {
    my ($code, $out) = $t->admin(qw(user list));
    my $l = dj($out);
    return ref $l eq 'ARRAY' ? @$l : ();
}

my @USER_KEYS = sort qw(id username email first_name last_name is_staff
    is_active);
my @passwords;    # every password given, for the dump check (R43)
my @tokens;       # every token issued, likewise

# ----------------------------------------------------------- usage errors
# exit 2, a message, nothing on stdout, and nothing written: the store is
# not even created
my $fresh = $t->dir . '/fresh-store';
my $long = 'u' x 151;
for my $c (
    [[qw(user add --email a@example.com --password Tr0ub4dor-and-3)],
        'no --username'],
    [['user', 'add', '--username', 'bad name', '--email', 'a@example.com',
        '--password', 'Tr0ub4dor-and-3'], 'username with a space'],
    [['user', 'add', '--username', "jos\x{e9}", '--email', 'a@example.com',
        '--password', 'Tr0ub4dor-and-3'], 'a username that is not UTF-8 (Latin-1)'],
    [['user', 'add', '--username', "\xef\xac\x81x", '--email', 'a@example.com',
        '--password', 'Tr0ub4dor-and-3'], 'a username NFKC changes (U+FB01)'],
    [['user', 'add', '--username', $long, '--email', 'a@example.com',
        '--password', 'Tr0ub4dor-and-3'], '151-character username'],
    [[qw(user add --username a --password Tr0ub4dor-and-3)], 'no --email'],
    [[qw(user add --username a --email not-an-address
        --password Tr0ub4dor-and-3)], 'an email without @'],
    [[qw(user add --username a --email a@b@example.com
        --password Tr0ub4dor-and-3)], 'an email with two @',
        qr/--email: 'a\@b\@example.com' is not an address/],
    [[qw(user set a --email a@b@example.com)], 'user set --email with two @',
        qr/--email: 'a\@b\@example.com' is not an address/],
    [['user', 'add', '--username', 'a', '--email', 'a@example.com',
        '--password', 'Tr0ub4dor-and-3' x 274], 'a 4110-byte --password',
        qr/--password: longer than 4096 bytes/],
    [[qw(user add --username a --email a@example.com)], 'no password'],
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --password-stdin)], '--password and --password-stdin'],
    [[qw(user add --username a --email a@example.com --password-stdin)],
        '--password-stdin with empty stdin'],
    [[qw(user add --username a --email a@example.com --password-stdin
        --password-policy off)],
        '--password-stdin with empty stdin, --password-policy off',
        qr/--password-stdin: empty password/],
    [['user', 'add', '--username', 'a', '--email', 'a@example.com',
        '--password', "Tr0ub4dor\t-and-3"],
        'a password with a control character'],
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --pbkdf2-iterations 0)], '--pbkdf2-iterations 0'],
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --pbkdf2-iterations lots)], '--pbkdf2-iterations lots'],
    # every character a digit, not only the first: 1e6 is not read as 1
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --pbkdf2-iterations 1e6)], '--pbkdf2-iterations 1e6 (R16)',
        qr/--pbkdf2-iterations: '1e6' is not a number from 1000 to 100000000/],
    # R16: the floor of oauth2_pbkdf2_iterations and of the daemon
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --pbkdf2-iterations 999)], '--pbkdf2-iterations 999 (R16)',
        qr/--pbkdf2-iterations: '999' is not a number from 1000 to 100000000/],
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --pbkdf2-iterations 12abc)], '--pbkdf2-iterations 12abc (R16)',
        qr/--pbkdf2-iterations: '12abc' is not a number/],
    [['user', 'add', '--username', 'a', '--email', 'a@example.com',
        '--password', 'Tr0ub4dor-and-3', '--first-name', "A\x01"],
        '--first-name with a control character'],
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --staff=yes)], '--staff with a value'],
    [[qw(user add --username a --email a@example.com --password Tr0ub4dor-and-3
        --bogus)], 'unknown option'],
    [[qw(user frobnicate)], 'unknown user subcommand'],
    [[qw(user show)], 'user show without a user'],
    [[qw(user show a b)], 'user show with two users'],
    [[qw(user delete)], 'user delete without a user'],
    [[qw(user set a)], 'user set without a change'],
    [[qw(user set a --active maybe)], 'user set --active maybe'],
    [[qw(user set a --staff 1)], 'user set --staff 1'],
    [[qw(user set-password a)], 'user set-password without a password'],
    [[qw(token issue)], 'token issue without --client-id'],
    [[qw(token issue --client-id x --ttl 0)], 'token issue --ttl 0'],
    [['token', 'issue', '--client-id', 'x', '--scope', 'read  write'],
        'token issue with a malformed scope'],
    [[qw(token issue --client-id x --count 0 --out f)], 'token issue --count 0'],
    [[qw(token issue --client-id x --count 1e3 --out f)], 'token issue --count 1e3'],
    [[qw(token issue --client-id x --count -5 --out f)], 'token issue --count -5'],
    [[qw(token issue --client-id x --count 100000001 --out f)],
        'token issue --count beyond 100000000'],
    [[qw(token issue --client-id x --count 3)], 'token issue --count without --out'],
    [[qw(token issue --client-id x --out f)], 'token issue --out without --count'],
    [[qw(token issue --client-id x --count 3 --sample 4 --out f)],
        'token issue --sample above --count'],
)
{
    my ($args, $name, $says) = @$c;
    my ($code, $out, $err) = $t->admin_raw('--store', $fresh, @$args);
    is($code, 2, "$name: exit 2");
    like($err, $says // qr/\S/, "$name: message on stderr");
    is($out, '', "$name: nothing on stdout");
}
ok(!-e $fresh, 'usage errors created no store');

# ------------------------------------------------------------- user add
my ($code, $out, $err) = admin_stdin("alice-pass-1\n", qw(user add
    --username alice --email alice@example.com --password-stdin), @FAST);
is($code, 0, 'user add --password-stdin: exit 0') or diag($err);
push @passwords, 'alice-pass-1';
my $alice = dj($out) // {};
is_deeply([sort keys %$alice], \@USER_KEYS,
    'user add prints id, username, email, first_name, last_name, '
    . 'is_staff, is_active');
is($alice->{id}, 1, 'the first user gets id 1');
is($alice->{username}, 'alice', 'username is alice');
is($alice->{email}, 'alice@example.com', 'email is alice@example.com');
is($alice->{first_name}, '', 'first_name defaults to ""');
ok(JSON::PP::is_bool($alice->{is_staff}) && !$alice->{is_staff},
    'is_staff is JSON false');
ok(JSON::PP::is_bool($alice->{is_active}) && $alice->{is_active},
    'is_active is JSON true');
unlike($out, qr/password|pbkdf2/, 'user add never prints the password');

($code, $out, $err) = $t->admin(qw(user add --username bob
    --email bob@example.com --first-name Bob --last-name Builder --staff
    --password bob-pass-2), @FAST);
is($code, 0, 'user add --password --staff: exit 0') or diag($err);
push @passwords, 'bob-pass-2';
my $bob = dj($out) // {};
is($bob->{id}, 2, 'the second user gets id 2');
is($bob->{first_name}, 'Bob', '--first-name recorded');
is($bob->{last_name}, 'Builder', '--last-name recorded');
ok($bob->{is_staff}, '--staff: is_staff true');

# the default cost, once
($code, $out, $err) = $t->admin(qw(user add --username carol
    --email carol@example.com --inactive --password carol-pass-3));
is($code, 0, 'user add --inactive with the default iterations: exit 0')
    or diag($err);
push @passwords, 'carol-pass-3';
my $carol = dj($out) // {};
ok(!$carol->{is_active}, '--inactive: is_active false');

($code, $out, $err) = $t->admin(qw(user add --username alice
    --email other@example.com --password Quill-harbor-95), @FAST);
is($code, 1, 'a duplicate username: exit 1');
like($err, qr/a user with that username already exists/,
    'a duplicate username: "a user with that username already exists"');
is($out, '', 'a duplicate username: nothing on stdout');
is(scalar(users()), 3, 'the duplicate created no user');

# --password and --password-stdin with a password on each: refused, not
# the one on stdin taken in silence
($code, $out, $err) = admin_stdin("Quill-harbor-95\n", qw(user add
    --username dora --email dora@example.com --password Tr0ub4dor-and-3
    --password-stdin), @FAST);
is($code, 2, '--password and --password-stdin, a password on stdin too: '
    . 'exit 2');
like($err, qr/--password and --password-stdin exclude each other/,
    '--password and --password-stdin: they exclude each other');
is($out, '', '--password and --password-stdin: nothing on stdout');
($code) = $t->admin(qw(user show dora));
is($code, 1, '--password and --password-stdin: no user dora');

my $dump = dump_store();
like($dump, qr/pbkdf2_sha256\$1000\$/,
    '--pbkdf2-iterations 1000: the hash has 1000 iterations');
like($dump, qr/pbkdf2_sha256\$600000\$/,
    'by default the hash has 600000 iterations');

# ------------------------------------------------------ list and show
($code, $out, $err) = $t->admin(qw(user list));
is($code, 0, 'user list: exit 0');
my $list = dj($out);
is(ref $list, 'ARRAY', 'user list prints a JSON array');
is_deeply([map { $_->{username} } @{$list // []}], [qw(alice bob carol)],
    'user list: the three users in id order');
is_deeply([sort keys %{$list->[0] // {}}], \@USER_KEYS,
    'user list: the fields of user add');
unlike($out, qr/password|pbkdf2/, 'user list never shows a password');

($code, $out) = $t->admin(qw(user show 1));
is((dj($out) // {})->{username}, 'alice', 'user show 1: alice');
($code, $out) = $t->admin(qw(user show bob));
is((dj($out) // {})->{id}, 2, 'user show bob: id 2');
($code, $out, $err) = $t->admin(qw(user show nobody));
is($code, 1, 'user show of an unknown username: exit 1');
like($err, qr/no user/, 'user show of an unknown username: "no user"');
($code, $out, $err) = $t->admin(qw(user show 99));
is($code, 1, 'user show of an unknown id: exit 1');

# a username that is a number
($code, $out, $err) = $t->admin(qw(user add --username 2
    --email two@example.com --password two-pass), @FAST);
is($code, 0, 'a numeric username is allowed, as in Django') or diag($err);
push @passwords, 'two-pass';
my $two = dj($out) // {};
($code, $out, $err) = $t->admin(qw(user show 2));
is($code, 1, 'user show 2 when 2 is an id and another user\'s name: exit 1');
like($err, qr/both the id of user bob and the username of user $two->{id}/,
    'user show 2: the message names both users');
($code, $out) = $t->admin('user', 'show', $two->{id});
is((dj($out) // {})->{username}, '2', 'the user named 2 is reached by id');

# a username that starts with "-" (Django allows it) is named after "--",
# which ends the options
($code, $out, $err) = $t->admin(qw(user add --username -dash
    --email dash@example.com --password dash-pass-5), @FAST);
is($code, 0, 'a username that starts with "-": user add, exit 0')
    or diag($err);
push @passwords, 'dash-pass-5';
($code, $out, $err) = $t->admin(qw(user show -- -dash));
is($code, 0, 'user show -- -dash: exit 0') or diag($err);
is((dj($out) // {})->{username}, '-dash', 'user show -- -dash: the user -dash');
($code, $out, $err) = $t->admin(qw(user show -dash));
is($code, 2, 'user show -dash without "--": exit 2');
like($err, qr/unknown option '-dash'/, '... an unknown option');
($code, $out, $err) = $t->admin(qw(user delete -- -dash));
is($code, 0, 'user delete -- -dash: exit 0') or diag($err);
ok(!grep({ $_->{username} eq '-dash' } users()), '... and -dash is gone');

# -------------------------------------------------------------- nginx
$t->write_config($t->default_http(extra_server => <<'EOF'))->run;
    location /whoami/ {
        auth_oauth2 "api";
        add_header X-User "[$oauth2_user]" always;
        alias %%DIR%%/html/;
    }
EOF

my $app = $t->new_app(name => 'svc', scope => 'read write admin');
my $plain = $t->new_app(name => 'plain');
my $cid = $app->{client_id};

# statuses of 6 requests with the token (both workers answer, R66)
sub statuses {
    my ($tok, $path) = @_;
    my %st;
    $st{$t->bearer_get($path // '/protected/', $tok)->{status}}++ for 1 .. 6;
    return join ',', sort keys %st;
}

sub issue {
    my (@args) = @_;
    my ($code, $out, $err) = $t->admin('token', 'issue', @args);
    my $j = dj($out);
    push @tokens, $j->{access_token} if $j && $j->{access_token};
    return ($code, $j, $err, $out);
}

# ---------------------------------------------------------- token issue
my ($c, $tok, $e, $raw) = issue('--client-id', $cid, '--user', 'alice');
is($c, 0, 'token issue --user alice: exit 0') or diag($e);
is_deeply([sort keys %{$tok // {}}],
    [sort qw(access_token expires_in token_type scope)],
    'token issue prints access_token, expires_in, token_type, scope');
is($tok->{token_type}, 'Bearer', 'token_type is Bearer');
is($tok->{scope}, 'read write admin',
    'the scope defaults to all the application may have');
is($tok->{expires_in}, 36000, 'expires_in defaults to 36000');
like($tok->{access_token} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'the token is 43 base64url characters (256 bits, R42, R44)');
my $alice_tok = $tok->{access_token};
is(statuses($alice_tok), '200', 'alice\'s token opens /protected/');
my $r = $t->bearer_get('/whoami/', $alice_tok);
is(OAuth2Test::header($r, 'X-User'), '[alice]',
    '$oauth2_user is the username for a user token');

($c, $tok) = issue('--client-id', $cid);
is($c, 0, 'token issue without --user: exit 0');
$r = $t->bearer_get('/whoami/', $tok->{access_token});
is(OAuth2Test::header($r, 'X-User'), '[]',
    '$oauth2_user is empty for a client token');
my $client_tok = $tok->{access_token};

($c, $tok) = issue('--client-id', $cid, '--scope', 'admin', '--ttl', 60);
is($tok->{scope}, 'admin', '--scope admin: scope admin');
is($tok->{expires_in}, 60, '--ttl 60: expires_in 60');
is(statuses($tok->{access_token}, '/scoped/'), '200',
    'a token with scope admin opens /scoped/');
($c, $tok) = issue('--client-id', $cid, '--scope', 'read');
is(statuses($tok->{access_token}, '/scoped/'), '403',
    'a token with scope read gets 403 at /scoped/');

($c, $tok) = issue('--client-id', $plain->{client_id});
is($tok->{scope}, 'read write',
    'an application without a scope: "read write"');

# R45: the application's own lifetime (app add --access-token-ttl) before
# the server's 36000; --ttl before both
my $short = $t->new_app(name => 'short', ttl => 60);
($c, $tok) = issue('--client-id', $short->{client_id});
is($tok->{expires_in}, 60,
    'an application registered for 60-second tokens: expires_in 60 (R45)');
($c, $tok) = issue('--client-id', $short->{client_id}, '--ttl', 30);
is($tok->{expires_in}, 30, 'its --ttl 30: expires_in 30');

($c, $tok, $e, $raw) = issue('--client-id', $cid, '--scope', 'read delete');
is($c, 1, 'a scope the application may not have: exit 1');
is($raw, '', 'a scope the application may not have: no token');
($c, $tok, $e, $raw) = issue('--client-id', 'no-such-client');
is($c, 1, 'token issue for an unknown client: exit 1');
like($e, qr/no application/, 'unknown client: "no application"');
($c, $tok, $e, $raw) = issue('--client-id', $cid, '--user', 'nobody');
is($c, 1, 'token issue for an unknown user: exit 1');
like($e, qr/no user/, 'unknown user: "no user"');
($c, $tok, $e, $raw) = issue('--client-id', $cid, '--user', 'carol');
is($c, 1, 'token issue for an inactive user: exit 1 (R70)');
like($e, qr/inactive/, 'inactive user: the message says so');
is($raw, '', 'inactive user: no token');
# a disabled application: no token, though none would validate while it
# is disabled: enabled again, it would honour tokens nobody meant to issue
my $off = $t->new_app(name => 'off');
my ($oc, undef, $oe) = $t->admin('app', 'disable', $off->{client_id});
is($oc, 0, 'app disable: exit 0') or diag($oe);
($c, $tok, $e, $raw) = issue('--client-id', $off->{client_id});
is($c, 1, 'token issue for a disabled application: exit 1');
like($e, qr/is disabled/, 'disabled application: the message says so');
is($raw, '', 'disabled application: no token');

# --count: tokens in bulk through the one write path, to a new 0600 file
# oauth2-admin runs as the store's owner (the workers' user): a directory
# it may write to
my $out_dir = $t->dir . '/out';
mkdir $out_dir or die "$out_dir: $!";
chmod 0777, $out_dir;
my $bulk = "$out_dir/bulk.tokens";
($c, $tok, $e) = issue('--client-id', $cid, '--count', 25000, '--ttl', 600,
    '--out', $bulk);
is($c, 0, 'token issue --count 25000 (three commits): exit 0') or diag($e);
is_deeply($tok, { issued => 25000, written => 25000, out => $bulk,
    expires_in => 600 }, 'it says what it issued and wrote');
open my $bf, '<', $bulk or die "$bulk: $!";
chomp(my @bulk = <$bf>);
close $bf;
is(scalar @bulk, 25000, 'one token a line');
my %seen;
is(scalar(grep { /^[A-Za-z0-9_-]{43}$/ && !$seen{$_}++ } @bulk), 25000,
    'every line a distinct 43-character token');
is((stat $bulk)[2] & 0777, 0600, 'the file is 0600 (it holds bearer tokens)');
is(join(',', map { statuses($bulk[$_]) } 0, 12345, 24999), '200,200,200',
    'the first, a middle and the last token open /protected/');
($c, $tok, $e, $raw) = issue('--client-id', $cid, '--count', 5, '--out', $bulk);
is($c, 1, 'an existing --out file: exit 1');
like($e, qr/cannot create/, 'an existing --out file: the message says so');
my $before = token_count($t);
($c, $tok) = issue('--client-id', $cid, '--count', 1000, '--sample', 10, '--out',
    "$out_dir/sample.tokens");
is_deeply([@{$tok // {}}{qw(issued written)}], [1000, 10],
    '--sample 10 of --count 1000: 1000 issued, 10 written');
is(token_count($t) - $before, 1000, 'and 1000 are in the store');
($c, $tok, $e, $raw) = issue('--client-id', 'no-such-client', '--count', 5,
    '--out', "$out_dir/none.tokens");
is($c, 1, '--count for an unknown client: exit 1');
ok(!-e "$out_dir/none.tokens", 'and no file is left behind');

# --------------------------------------------------- set-password (R39)
($c, $tok) = issue('--client-id', $cid, '--user', 'alice');
my $alice_tok2 = $tok->{access_token};
is(statuses($alice_tok2), '200', 'a second token of alice works');
($code, $out, $err) = admin_stdin("alice-new-pass\n", qw(user set-password
    alice --password-stdin), @FAST);
is($code, 0, 'user set-password --password-stdin: exit 0') or diag($err);
push @passwords, 'alice-new-pass';
is_deeply(dj($out), { id => 1, tokens_revoked => 2 },
    'set-password prints {"id": 1, "tokens_revoked": 2}');
is(statuses($alice_tok), '401',
    'after a password change alice\'s first token gets 401 (R39, R70)');
is(statuses($alice_tok2), '401',
    'after a password change alice\'s second token gets 401 (R39, R70)');
is(statuses($client_tok), '200',
    'the application\'s client token still works');
($code, $out, $err) = $t->admin(qw(user set-password 2 --password
    bob-new-pass), @FAST);
is($code, 1, 'user set-password 2 (an id and a username): exit 1');
($code, $out, $err) = $t->admin(qw(user set-password nobody
    --password Quill-harbor-95), @FAST);
is($code, 1, 'user set-password for an unknown user: exit 1');
($c, $tok) = issue('--client-id', $cid, '--user', 'alice');
is(statuses($tok->{access_token}), '200',
    'a token issued after the change works');
$alice_tok = $tok->{access_token};

# ----------------------------------------------------- user set (R70)
($c, $tok) = issue('--client-id', $cid, '--user', 'bob');
my $bob_tok = $tok->{access_token};
is(statuses($bob_tok), '200', 'bob\'s token works');
($code, $out, $err) = $t->admin(qw(user set bob --active false));
is($code, 0, 'user set --active false: exit 0') or diag($err);
my $set = dj($out) // {};
is_deeply([sort keys %$set], \@USER_KEYS, 'user set prints the user');
ok(!$set->{is_active}, 'user set --active false: is_active false');
is(statuses($bob_tok), '401', 'a disabled user\'s token gets 401 (R70)');
($c, $tok, $e) = issue('--client-id', $cid, '--user', 'bob');
is($c, 1, 'no token for a disabled user (R70)');
($code, $out) = $t->admin(qw(user set bob --active true));
ok((dj($out) // {})->{is_active}, 'user set --active true: active again');
is(statuses($bob_tok), '401',
    'enabling the user again does not bring the old token back (R70)');
($c, $tok) = issue('--client-id', $cid, '--user', 'bob');
is(statuses($tok->{access_token}), '200',
    'a token issued after enabling works');
($code, $out) = $t->admin(qw(user set bob --staff false --email
    bob@example.org --first-name Robert));
$set = dj($out) // {};
ok(!$set->{is_staff}, 'user set --staff false: is_staff false');
is($set->{email}, 'bob@example.org', 'user set --email recorded');
is($set->{first_name}, 'Robert', 'user set --first-name recorded');
($code, $out) = $t->admin(qw(user show bob));
is_deeply(dj($out), $set, 'user show shows the change');
($code, $out) = $t->admin('user', 'set', $carol->{id}, '--active', 'true');
is((dj($out) // {})->{username}, 'carol', 'user set <id> reaches the user');
ok((dj($out) // {})->{is_active}, 'user set <id> --active true: active');
($code, $out, $err) = $t->admin(qw(user set nobody --staff true));
is($code, 1, 'user set for an unknown user: exit 1');
($code, $out, $err) = $t->admin(qw(user set bob --email bad));
is($code, 2, 'user set --email bad: exit 2');

# ---------------------------------------------------- user delete (R70)
($code, $out, $err) = $t->admin(qw(user delete alice));
is($code, 0, 'user delete alice: exit 0') or diag($err);
is_deeply(dj($out), { deleted => 1 }, 'user delete prints {"deleted": 1}');
is(statuses($alice_tok), '401', 'a deleted user\'s token gets 401 (R70)');
($code, $out, $err) = $t->admin(qw(user show alice));
is($code, 1, 'user show after delete: exit 1');
($code, $out, $err) = $t->admin(qw(user delete alice));
is($code, 1, 'deleting twice: exit 1');
like($err, qr/no user/, 'deleting twice: "no user"');
($c, $tok, $e) = issue('--client-id', $cid, '--user', 'alice');
is($c, 1, 'no token for a deleted user');
is_deeply([map { $_->{username} } users()], [qw(bob carol 2)],
    'user list after the delete: bob, carol, 2');

# a new alice is a new user: the old tokens stay dead
($code, $out) = $t->admin(qw(user add --username alice
    --email alice@example.com --password alice-pass-4), @FAST);
push @passwords, 'alice-pass-4';
is($code, 0, 'the deleted name is free: user add alice again, exit 0');
my $new_alice = (dj($out) // {})->{id};
ok(defined $new_alice && $new_alice != 1, 'a new alice gets a new id');
is(statuses($alice_tok), '401', 'the old alice\'s token stays dead');

# ------------------------------------------------------------- R43
$dump = dump_store();
ok(length $dump > 100, 'mdb_dump -a produced a dump') or diag($dump);
my $leaks = 0;
for my $v (@passwords, @tokens) {
    for my $form ($v, unpack('H*', $v), encode_base64($v, '')) {
        if (index($dump, $form) >= 0) {
            $leaks++;
            diag("found in the store dump: $v");
        }
    }
}
ok(@tokens > 5 && @passwords > 5, 'the dump check covers every token and '
    . 'password of this test');
is($leaks, 0,
    'no password and no token (raw, hex or base64) in the store (R43)');

# ---------------------------------------------------------------- help
for my $args ([qw(user --help)], [qw(user add --help)],
    [qw(user list --help)], [qw(user show --help)], [qw(user set --help)],
    [qw(user set-password --help)], [qw(user delete --help)],
    [qw(token issue --help)])
{
    my ($code, $out) = $t->admin(@$args);
    is($code, 0, "@$args: exit 0");
    like($out, qr/usage/i, "@$args: prints usage");
}
($code, $out) = $t->admin(qw(user add --help));
like($out, qr/--password-stdin/, 'user add --help mentions --password-stdin');

# --password-stdin at a terminal (script(1) gives the command one): a
# prompt, and the password typed is not echoed to the screen (typed a
# second after the start, once the terminal is set)
{
    my $pw = 'Hidden-Pass-Word-991';
    my $cmd = "$OAuth2Test::ADMIN --store ${\ $t->store} user add --username "
        . 'ttyuser --email tty@example.com --password-stdin '
        . '--pbkdf2-iterations 1000';
    my $screen = `(sleep 1; printf '$pw\\n') | script -qec '$cmd' /dev/null 2>&1`;
    like($screen, qr/Password: /, '--password-stdin at a terminal: a prompt');
    unlike($screen, qr/\Q$pw\E/, '... and the password is not echoed');
    like($screen, qr/"username": "ttyuser"/, '... and the user is added')
        or diag($screen);
}

$t->done_testing;
