# Client secrets imported from django-oauth-toolkit (docs/security.md R16, R17,
# R83, R88; docs/design.md "The store"): a DOT 2+ secret is a PBKDF2 hash,
# checked in the thread pool and never on nginx's event loop; a strong one
# is rehashed to the fast form after its first success; an imported secret
# that may be weak is throttled per (client, address) as well.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);
my $dir = $t->dir;
# strong: as long as a generated secret (64 characters or more); medium:
# a passphrase chosen by hand, long but not a generated secret's length
my $STRONG = 'S' . join('', map { chr(97 + ($_ * 7) % 26) } 1 .. 71);
my $MEDIUM = 'our-prod-oauth-secret-2019-final-v2';
my $WEAK = 'hunter2-ok';

# Django's make_password() of each secret (DOT 2+ keeps only that);
# 2000000 iterations: a check takes a good half second here
my ($code, $out, $err) = $t->_run_cmd('/usr/bin/python3', '-c', <<'PY',
import base64, hashlib, sys
for s in sys.argv[1:]:
    dk = hashlib.pbkdf2_hmac("sha256", s.encode(), b"importsalt123", 2000000)
    print("pbkdf2_sha256$2000000$importsalt123$" + base64.b64encode(dk).decode())
PY
    $STRONG, $WEAK, $MEDIUM);
is($code, 0, 'Django hashes of three secrets') or diag($err);
my ($strong_hash, $weak_hash, $medium_hash) = split /\n/, $out;

sub app {
    my ($pk, $id, %f) = @_;
    return { model => 'oauth2_provider.application', pk => $pk,
        fields => { client_id => $id, name => $id,
            client_type => 'confidential',
            authorization_grant_type => 'client-credentials',
            redirect_uris => '', %f } };
}
open my $fh, '>', "$dir/dump.json" or die;
print $fh JSON::PP->new->encode([
    app(1, 'dot2-strong', client_secret => $strong_hash),
    app(2, 'dot2-weak', client_secret => $weak_hash),
    app(3, 'dot1-weak', client_secret => 'short-one'),
    app(4, 'dot2-medium', client_secret => $medium_hash),
    app(5, 'dot1-medium', client_secret => $MEDIUM),
]);
close $fh;
# (at 1000000 iterations: a hash of more than twice the setting would be
# imported unusable, t/import_django.t)
($code, $out, $err) = $t->admin('import-django', "$dir/dump.json",
    '--pbkdf2-iterations', 1000000);
is($code, 0, 'import-django of five applications: exit 0') or diag($err);

# the PBKDF2 hashes in the store (those of users and clients)
sub slow_hashes {
    my ($c, $o) = $t->_run_cmd('mdb_dump', '-a', '-p', $t->store);
    return scalar(() = $o =~ /pbkdf2_sha256/g);
}
is(slow_hashes(), 5, 'every imported secret that is not as long as a '
    . 'generated one has a slow hash: the DOT 2+ ones kept, DOT 1.x\'s '
    . 'clear "short-one" and 35-character passphrase hashed so (R16)');

$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit 3 30s;'), workers => 1)->run;
my $ok = $t->new_app(name => 'native');
my $bearer = $t->access_token($ok);

sub raw_token {
    my ($id, $secret) = @_;
    my $body = 'grant_type=client_credentials';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port, Proto => 'tcp') or die "connect: $!";
    print $s "POST /o/token/ HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nAuthorization: " . $t->basic($id, $secret)
        . "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    return $s;
}

##################### the PBKDF2 check never runs on the event loop (R88)

# three wrong secrets for the imported client, then a bearer request on
# the same (single) worker: answered while the hashes are still running
my @slow = map { raw_token('dot2-strong', "wrong-$_") } 1 .. 2;
select undef, undef, undef, 0.1;
my $r = $t->get('/protected/', Authorization => "Bearer $bearer");
is($r->{status}, 200, 'bearer validation during the slow checks: 200');
my $pending = grep { !IO::Select->new($_)->can_read(0) } @slow;
ok($pending >= 1, 'answered while the wrong secrets were still being '
    . "checked ($pending of 2 pending): PBKDF2 is off the event loop");
for my $s (@slow) {
    my $buf = '';
    1 while IO::Select->new($s)->can_read(30) && sysread $s, $buf, 65536,
        length $buf;
    like($buf, qr{^HTTP/1\.1 401}, 'a wrong imported secret: 401');
}

############################### the right secret, then the fast form

$r = $t->token('dot2-strong', $STRONG);
is($r->{status}, 200, 'the imported DOT 2+ secret authenticates: 200');
is(slow_hashes(), 4, 'after its first success the strong secret is '
    . 'stored in the fast form: one PBKDF2 hash fewer');
is($t->token('dot2-medium', $MEDIUM)->{status}, 200,
    'the 35-character DOT 2+ passphrase authenticates: 200');
is($t->token('dot1-medium', $MEDIUM)->{status}, 200,
    'so does the DOT 1.x one');
is(slow_hashes(), 4, '... and both stay PBKDF2: a secret chosen by hand is '
    . 'never moved to the fast hash for its length alone (R16)');
is($t->token('dot2-strong', $STRONG)->{status}, 200,
    'and authenticates again: 200');
is($t->token('dot2-weak', $WEAK)->{status}, 200,
    'the weak DOT 2+ secret authenticates: 200 (it stays PBKDF2)');

############ weak imported secrets: throttled per (client, address) (R83)

for my $i (1 .. 3) {
    is($t->token('dot1-weak', "guess$i", headers => ['-from' => '127.0.0.2'])
        ->{status}, 401, "guess #$i at an imported secret: 401");
}
$r = $t->token('dot1-weak', 'short-one', headers => ['-from' => '127.0.0.2']);
is($r->{status}, 429, 'the 4th from that address, even right: 429');
is($t->token('dot1-weak', 'short-one', headers => ['-from' => '127.0.0.3'])
    ->{status}, 200, 'the client from another address: 200 (R83)');
# the same for a weak PBKDF2 one, whose failures are known only once the
# thread pool has checked them
for my $i (1 .. 3) {
    is($t->token('dot2-weak', "guess$i", headers => ['-from' => '127.0.0.5'])
        ->{status}, 401, "guess #$i at a weak DOT 2+ secret: 401");
}
is($t->token('dot2-weak', $WEAK, headers => ['-from' => '127.0.0.5'])
    ->{status}, 429, 'the 4th from that address, even right: 429 (R17, R83)');
is($t->token('dot2-weak', $WEAK, headers => ['-from' => '127.0.0.6'])
    ->{status}, 200, 'the client from another address: 200 (R83)');
# a strong secret, once rehashed to the fast form, is no longer marked
# imported: it is as hard to guess as a generated one, so its client is
# not throttled per (client, address) any more; else whoever shares the
# application's address (a NAT, a proxy) could lock it out there with
# three wrong secrets (R17: a lockout must not become a DoS, R83)
for my $i (1 .. 3) {
    is($t->token('dot2-strong', "guess$i", headers => ['-from' => '127.0.0.7'])
        ->{status}, 401, "guess #$i at the rehashed strong secret: 401");
}
is($t->token('dot2-strong', $STRONG, headers => ['-from' => '127.0.0.7'])
    ->{status}, 200, 'then the right one from that address: 200, the '
    . 'rehashed strong secret is no longer throttled per client (R83)');
for my $i (1 .. 4) {
    $t->token('native-x', "nope$i", headers => ['-from' => '127.0.0.4']);
}
is($t->token($ok->{client_id}, $ok->{client_secret},
    headers => ['-from' => '127.0.0.4'])->{status}, 200,
    'a generated secret is never throttled per client: 4 failures of other '
    . 'ids, then 200');

$t->done_testing;
