# The handshake key leaves the store (docs/security.md R86, R43): releases
# before 0.9 generated it in the master and kept it in clear in the store,
# where a dump could forge handshake tokens.  Now the key is a file
# (oauth2_handshake_key, required), and `oauth2-admin handshake-key
# extract <file>` moves an old store's key out, so that the handshakes it
# signed keep validating after the upgrade.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $PY = '/usr/bin/python3';
if (system("$PY -c 'import jwt' >/dev/null 2>&1") != 0) {
    fail('t/handshake_key.t needs python3-jwt: run scripts/install-deps');
    done_testing();
    exit;
}

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $app = $t->new_app(name => 'rentals', scope => 'read write');
my $key = $t->admin_json('apikey', 'add', $app->{client_id})->{api_key};

# the store of an old release: its generated key in the meta database
my $LEGACY = 'L' x 8 . join('', map { chr(97 + $_ % 26) } 1 .. 32);
open my $fh, '>', "$dir/meta.txt" or die;
print $fh "VERSION=3\nformat=print\ntype=btree\nHEADER=END\n"
    . " handshake_hs256_key\n $LEGACY\nDATA=END\n";
close $fh;
my ($code, $out, $err) = $t->_run_cmd('mdb_load', '-s', 'meta', '-f',
    "$dir/meta.txt", $t->store);
is($code, 0, 'an old store: the generated key put in meta with mdb_load')
    or diag($err);

my $SOL = 'oauth2_handshake_solution rental fbs=fbs_rental_db;';
sub config {
    my ($keyfile) = @_;
    return $t->default_http(extra_http => "oauth2_handshake_key $keyfile;",
        extra_server => "    location /api/auth/handshake/ { "
            . "oauth2_handshake; $SOL }\n");
}
$t->write_config(config('%%DIR%%/handshake.key'))->run;

sub hs {
    my ($call, $body) = @_;
    return $t->api('POST', "/api/auth/handshake/$call", json => $body);
}

my $r = hs('create/', { api_key => $key, system_name => 'rentals',
    solution_name => 'rental' });
is($r->{status}, 201, 'a handshake: 201');
my $h = $r->{json}{handshake};

# a token for that handshake as the old release signed it: HS256 under the
# store's key, kid "handshake"
sub legacy_token {
    my ($jti) = @_;
    my ($c, $o, $e) = $t->_run_cmd($PY, '-c', <<'PY', $LEGACY, $jti);
import jwt, sys, time
now = int(time.time())
print(jwt.encode({"jti": sys.argv[2], "iat": now, "exp": now + 3600,
                  "token_type": "handshake"}, sys.argv[1], algorithm="HS256",
                 headers={"kid": "handshake"}))
PY
    die "python3-jwt: $e" if $c;
    chomp $o;
    return $o;
}
my $old = legacy_token($h->{handshake_id});

$r = hs('validate/', { handshake_token => $old,
    handshake_secret => $h->{handshake_secret} });
is($r->{status}, 401,
    'before the upgrade step, the store\'s key is never used: 401 (R86)');
is($r->{json}{error_code}, 'INVALID_TOKEN', 'INVALID_TOKEN');

######################################################## the extraction

($code, $out, $err) = $t->admin('handshake-key', 'extract', "$dir/moved.key");
is($code, 0, 'oauth2-admin handshake-key extract: exit 0') or diag($err);
like($out, qr/"removed_from_store": true/, 'it says the key left the store');
is((stat "$dir/moved.key")[2] & 0777, 0600, 'the key file is mode 0600');
is(OAuth2Test::_slurp("$dir/moved.key"), "$LEGACY\n",
    'the file holds the key (and one newline, which the loader drops)');
($code, $out) = $t->_run_cmd('mdb_dump', '-a', '-p', $t->store);
unlike($out, qr/handshake_hs256_key|\Q$LEGACY\E/,
    'the store no longer holds the key (R86)');

($code, $out, $err) = $t->admin('handshake-key', 'extract', "$dir/again.key");
is($code, 1, 'a second extract: exit 1');
like($err, qr/no handshake key/, 'it says there is nothing to extract');
ok(!-e "$dir/again.key", 'and writes no file');

chmod 0644, "$dir/moved.key";
$t->write_config(config("$dir/moved.key"));
$t->reload;
$r = hs('validate/', { handshake_token => $old,
    handshake_secret => $h->{handshake_secret} });
is($r->{status}, 200,
    'with oauth2_handshake_key naming the extracted file, a handshake the '
    . 'old key signed validates: 200');
is($r->{json}{data}{valid}, JSON::PP::true(), 'and is valid');

$r = hs('create/', { api_key => $key, system_name => 'rentals',
    solution_name => 'rental' });
is($r->{status}, 201, 'new handshakes are signed by the file\'s key: 201');
$r = hs('validate/', { handshake_token => $r->{json}{handshake}{handshake_token},
    handshake_secret => $r->{json}{handshake}{handshake_secret} });
is($r->{status}, 200, 'and validate: 200');

# R86: a relative oauth2_handshake_key names a file under nginx's prefix
# (-p), as every file nginx names, not under the directory nginx was
# started from: handshake.key (the prefix's, not the old key) first, then
# moved.key, whose key makes the old handshake valid again
for my $c (['handshake.key', 401, 'the prefix\'s key, under which the old '
        . 'handshake is invalid'],
    ['moved.key', 200, 'the prefix\'s moved.key, the old key: the old '
        . 'handshake validates'])
{
    my ($file, $want, $what) = @$c;
    $t->write_config(config($file));
    ($code, $out) = $t->nginx_t;
    is($code, 0, "oauth2_handshake_key $file (relative): nginx -t passes")
        or diag($out);
    $t->reload;
    $r = hs('validate/', { handshake_token => $old,
        handshake_secret => $h->{handshake_secret} });
    is($r->{status}, $want, "oauth2_handshake_key $file (relative), after a "
        . "reload: $what: $want");
}

# an existing file is never overwritten
open $fh, '>', "$dir/exists.key" or die;
print $fh "keep me\n";
close $fh;
$t->_run_cmd('mdb_load', '-s', 'meta', '-f', "$dir/meta.txt", $t->store);
($code, $out, $err) = $t->admin('handshake-key', 'extract', "$dir/exists.key");
is($code, 1, 'extract onto an existing file: exit 1');
is(OAuth2Test::_slurp("$dir/exists.key"), "keep me\n", 'the file is intact');
($code, $out) = $t->_run_cmd('mdb_dump', '-a', '-p', $t->store);
like($out, qr/handshake_hs256_key/, 'and the key stays in the store');

########################################################## nginx -t

$t->write_config($t->default_http(extra_server =>
    "    location /h/ { oauth2_handshake; $SOL }\n"));
($code, $out) = $t->nginx_t;
isnt($code, 0, 'a handshake location without a key file: nginx -t fails');
like($out, qr/"oauth2_handshake" requires "oauth2_handshake_key <file>"/,
    'nginx -t names oauth2_handshake_key (R86)');

$t->done_testing;
