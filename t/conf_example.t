# conf.example/ is what users copy: each file passes nginx -t with this
# build's module (its paths moved into a temp dir), and full.conf holds the
# limits docs/security.md asks for: the revocation and introspection endpoints
# have the token endpoint's rate limits (R54, R58), the issuer is set (R87),
# the handshake key is a file (R86), and the daemon's proxy headers carry
# the client's address for its throttles (R17).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $dir = $t->dir;
my $src = "$OAuth2Test::ROOT/conf.example";

mkdir "$dir/keys" or die "mkdir: $!";
my ($code, $out, $err) = $t->_run_cmd('openssl', 'genpkey', '-algorithm',
    'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out',
    "$dir/keys/jwt-es256.pem");
is($code, 0, 'an ES256 key for full.conf');
($code) = $t->_run_cmd('openssl', 'rand', '-out', "$dir/keys/handshake.key",
    '32');
is($code, 0, 'a handshake key, as full.conf says to make it');
open my $fh, '>', "$dir/keys/service-api-token" or die;
print $fh "a-service-token-of-some-length\n";
close $fh;
chmod 0644, glob("$dir/keys/*");
copy("$src/oauth2_proxy.conf", "$dir/oauth2_proxy.conf") or die "copy: $!";

sub slurp { OAuth2Test::_slurp($_[0]) }

# the file with its absolute paths moved into the test's directory
sub localized {
    my ($text) = @_;
    $text =~ s{load_module \S+;}{load_module $OAuth2Test::MODULE;};
    $text =~ s{/var/lib/nginx/oauth2}{$dir/store}g;
    $text =~ s{/etc/nginx/oauth2/}{$dir/keys/}g;
    $text =~ s{/var/log/nginx/}{$dir/}g;
    my $port = $t->port;
    $text =~ s{listen 127\.0\.0\.1:8080}{listen 127.0.0.1:$port}g;
    return $text;
}

for my $name (qw(minimal.conf full.conf)) {
    my $text = slurp("$src/$name");
    ok(length $text, "conf.example/$name is there");
    my $file = "$dir/$name";
    open my $w, '>', $file or die "$file: $!";
    print $w localized($text);
    close $w;
    my ($c, $o) = $t->nginx_t(file => $file);
    is($c, 0, "nginx -t accepts conf.example/$name") or diag($o);
}

################################################ what full.conf must hold

my $full = slurp("$src/full.conf");
(my $live = $full) =~ s/#[^\n]*//g;    # comments out

# every location block's directives: { name => [args] } per location
my %loc;
while ($live =~ /location\s+(?:=\s*)?(\S+)\s*\{([^{}]*)\}/g) {
    my ($path, $body) = ($1, $2);
    my %d;
    while ($body =~ /(\w+)([^;]*);/g) {
        my ($n, $a) = ($1, $2);
        $a =~ s/^\s+|\s+$//g;
        $a =~ s/\s+/ /g;
        $d{$n} = $a;
    }
    $loc{$path} = \%d;
}

my ($token) = grep { exists $loc{$_}{oauth2_token} } sort keys %loc;
ok($token, 'full.conf has a token endpoint');
my $limit = $loc{$token}{oauth2_rate_limit};
ok($limit, "the token endpoint has oauth2_rate_limit ($limit)");
for my $d (qw(oauth2_revoke oauth2_introspect)) {
    my @at = grep { exists $loc{$_}{$d} } sort keys %loc;
    ok(@at, "full.conf has an $d location");
    for my $p (@at) {
        is($loc{$p}{oauth2_rate_limit} // 'none', $limit,
            "$d at $p has the token endpoint's limit (R54, R58)");
    }
}
like($live, qr/^\s*oauth2_issuer https:\/\/\S+;/m,
    'full.conf sets oauth2_issuer (R87)');
like($live, qr/^\s*oauth2_handshake_key \S+;/m,
    'full.conf names a handshake key file (R86)');
like(slurp("$src/oauth2_proxy.conf"),
    qr/^proxy_set_header X-Real-IP \$remote_addr;/m,
    'oauth2_proxy.conf gives the daemon the client\'s address');

$t->done_testing;
