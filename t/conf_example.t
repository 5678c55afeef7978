# conf.example/ is what users copy: each file passes nginx -t with this
# build's module (its paths moved into a temp dir), and full.conf holds the
# limits docs/security.md asks for: the revocation and introspection endpoints
# have the token endpoint's rate limits (R54, R58), the issuer is set (R87),
# the handshake key is a file (R86), and the daemon's proxy headers carry
# the client's address for its throttles (R17).  multi-realm.conf (issue
# 12): every site's server has a realm, an issuer and a JWT key of its own
# (R87), tells the daemon its realm in every location that proxies to it,
# and the daemon is on loopback or a unix socket (R69); no site's metrics
# list every realm's issued tokens: only the host's server of no site
# does (oauth2_metrics all).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);    # minimal.conf runs one
my $dir = $t->dir;
my $src = "$OAuth2Test::ROOT/conf.example";

mkdir "$dir/keys" or die "mkdir: $!";
my ($code, $out, $err) = $t->_run_cmd('openssl', 'genpkey', '-algorithm',
    'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out',
    "$dir/keys/jwt-es256.pem");
is($code, 0, 'an ES256 key for full.conf');
($code) = $t->_run_cmd('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
    'rsa_keygen_bits:2048', '-out', "$dir/keys/jwt-rs256.pem");
is($code, 0, 'an RS256 key for full.conf (OpenID Connect)');
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

# multi-realm.conf's keys, one per site, where it names them
for my $key (slurp("$src/multi-realm.conf")
    =~ m{^\s*oauth2_jwt_key\s+/etc/nginx/oauth2/(\S+?)\s*;}mg)
{
    my $file = "$dir/keys/$key";
    (my $sub = $file) =~ s{/[^/]+$}{};
    mkdir $sub;
    ($code) = $t->_run_cmd('openssl', 'genpkey', '-algorithm', 'EC',
        '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', $file);
    is($code, 0, "an ES256 key for multi-realm.conf at $key");
    chmod 0644, $file;
    chmod 0755, $sub;
}

for my $name (qw(minimal.conf full.conf multi-realm.conf cluster.conf)) {
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
# seed 000: "Visit .../auth/applications/register/ in your browser"
is($loc{'/auth/applications/register/'}{return} // 'none',
    '302 /o/applications/register/',
    'full.conf sends seed 000\'s registration URL to the daemon\'s page');
like($live, qr/^\s*oauth2_issuer https:\/\/\S+;/m,
    'full.conf sets oauth2_issuer (R87)');
like($live, qr/^\s*oauth2_handshake_key \S+;/m,
    'full.conf names a handshake key file (R86)');
like(slurp("$src/oauth2_proxy.conf"),
    qr/^proxy_set_header X-Real-IP \$remote_addr;/m,
    'oauth2_proxy.conf gives the daemon the client\'s address');
# TLS ends in front of the examples' nginx: the daemon hears https, so
# that its cookies are Secure and its links https (RFC 6265 4.1.2.5)
like(slurp("$src/oauth2_proxy.conf"),
    qr/^proxy_set_header X-Forwarded-Proto https;/m,
    'oauth2_proxy.conf tells the daemon the clients\' scheme, https');
like(slurp("$src/oauth2_proxy.conf"),
    qr/^proxy_set_header X-OAuth2-Realm "";/m,
    'oauth2_proxy.conf never passes a client\'s X-OAuth2-Realm (R87)');

################################################ what multi-realm.conf must hold

# the blocks named $kind ("server", "upstream") directly in $text, each
# its body without the outer braces
sub blocks {
    my ($text, $kind) = @_;
    my @b;
    while ($text =~ /(?:^|[;{}\s])\Q$kind\E\b[^{;]*(\{((?:[^{}]++|(?1))*)\})/g) {
        push @b, $2;
    }
    return @b;
}

# a block's own directives, its nested blocks left out: { name => [args] }
sub directives {
    my ($body) = @_;
    1 while $body =~ s/\{[^{}]*\}/;/g;
    my %d;
    while ($body =~ /(\w+)([^;]*);/g) {
        my ($n, $a) = ($1, $2);
        $a =~ s/^\s+|\s+$//g;
        $a =~ s/\s+/ /g;
        push @{$d{$n}}, $a;
    }
    return \%d;
}

# a server's locations: [path, { name => [args] }]
sub locations {
    my ($body) = @_;
    my @l;
    while ($body =~ /location\s+(?:=\s*)?(\S+)\s*\{([^{}]*)\}/g) {
        push @l, [$1, directives($2)];
    }
    return @l;
}

my $multi = slurp("$src/multi-realm.conf");
(my $mlive = $multi) =~ s/#[^\n]*//g;
my ($mhttp) = blocks($mlive, 'http');
ok(defined $mhttp, 'multi-realm.conf has an http block');
$mhttp //= '';
my $http_d = directives($mhttp);
for my $d (qw(oauth2_realm oauth2_issuer oauth2_jwt_key)) {
    ok(!$http_d->{$d}, "multi-realm.conf sets no $d at http level, "
        . 'so no site inherits another\'s');
}

my ($admin) = blocks($mhttp, 'upstream');
my $up = directives($admin // '')->{server} // [];
ok(@$up, 'multi-realm.conf has the admin daemon\'s upstream');
for my $s (@$up) {
    like($s, qr/^(?:127\.\d+\.\d+\.\d+:\d+|\[::1\]:\d+|unix:\/\S+)(?:\s|$)/,
        "the admin daemon is on loopback or a unix socket: $s (R69)");
}

# oauth2_metrics all: the host's metrics, every realm's issued series
sub all_metrics { ($_[0]{oauth2_metrics}[0] // '') eq 'all' }

my (%realm_of, %issuer_of, %key_of);
my (@sites, $host_metrics);
for my $body (blocks($mhttp, 'server')) {
    my $d = directives($body);
    my $name = join ' ', @{$d->{server_name} // ['']};
    my @locs = locations($body);
    if ($name eq '_' || $name eq '') {
        # a server of no site's name: the host's metrics at most
        $host_metrics ||= grep { all_metrics($_->[1]) } @locs;
        ok(!grep({ /^(?:oauth2_|auth_oauth2)/ } keys %$d)
            && !grep({ my $l = $_->[1];
                grep { /^(?:oauth2_|auth_oauth2|proxy_pass)/
                    && !($_ eq 'oauth2_metrics' && all_metrics($l)) }
                    keys %$l } @locs),
            'a server of no site\'s name serves no realm');
        next;
    }
    push @sites, $name;
    my $realm = $d->{oauth2_realm} // [];
    is(scalar @$realm, 1, "$name sets oauth2_realm once");
    my $r = $realm->[0] // '';
    like($r, qr/^[A-Za-z0-9._-]{1,64}$/, "$name: realm \"$r\" is a valid name");
    isnt($r, 'default', "$name has a realm of its own, not \"default\"");
    ok(!$realm_of{$r}, "$name: realm $r is no other site's") if $r;
    $realm_of{$r} = $name;

    my $iss = $d->{oauth2_issuer} // [];
    is(scalar @$iss, 1, "$name sets its own oauth2_issuer (R87)");
    if (my $i = $iss->[0]) {
        like($i, qr{^https://\S+$}, "$name: issuer $i is an https URL");
        ok(!$issuer_of{$i}, "$name: issuer $i is no other site's");
        $issuer_of{$i} = $name;
    }
    my $keys = $d->{oauth2_jwt_key} // [];
    ok(@$keys, "$name names its own JWT key file");
    for my $k (@$keys) {
        ok(!$key_of{$k}, "$name: key $k is no other site's");
        $key_of{$k} = $name;
    }
    my @moved = grep { $_->[1]{oauth2_issuer} || $_->[1]{oauth2_jwt_key} }
        @locs;
    ok(!@moved, "$name: no location changes its issuer or key")
        or diag(join ' ', map { $_->[0] } @moved);

    my ($token) = grep { $_->[1]{oauth2_token} } @locs;
    ok($token, "$name has a token endpoint");
    my $limit = $token ? $token->[1]{oauth2_rate_limit}[0] // '' : '';
    ok($limit, "$name: the token endpoint has oauth2_rate_limit ($limit)");
    for my $kind (qw(oauth2_revoke oauth2_introspect oauth2_authorize)) {
        ok((grep { $_->[1]{$kind} } @locs), "$name has an $kind location");
    }
    for my $l (grep { $_->[1]{oauth2_revoke} || $_->[1]{oauth2_introspect} }
        @locs)
    {
        is($l->[1]{oauth2_rate_limit}[0] // 'none', $limit,
            "$name: $l->[0] has the token endpoint's limit (R54, R58)");
    }
    ok((grep { $_->[1]{auth_oauth2} } @locs),
        "$name has an auth_oauth2 location");
    ok(!grep({ all_metrics($_->[1]) } @locs), "$name: no oauth2_metrics all "
        . '(a site\'s metrics list its own applications only)');

    my @daemon = grep { ($_->[1]{proxy_pass}[0] // '') eq 'http://oauth2_admin' }
        @locs;
    ok(@daemon, "$name proxies the admin daemon");
    for my $l (@daemon) {
        my ($p, $ld) = @$l;
        my @hdr = grep { /^X-OAuth2-Realm\s/i } @{$ld->{proxy_set_header} // []};
        is_deeply(\@hdr, ["X-OAuth2-Realm $r"],
            "$name: $p tells the daemon its realm $r");
        ok((grep { $_ eq 'oauth2_proxy.conf' } @{$ld->{include} // []}),
            "$name: $p has the daemon's proxy headers (R17)");
    }
    ok(!grep({ /^X-OAuth2-Realm\s/i } @{$d->{proxy_set_header} // []}),
        "$name sets X-OAuth2-Realm per location, where it cannot be lost "
        . 'to inheritance');
}
cmp_ok(scalar @sites, '>=', 2, 'multi-realm.conf has two sites or more: '
    . join(', ', @sites));
ok($host_metrics, 'multi-realm.conf has the host\'s metrics (oauth2_metrics '
    . 'all) in a server of no site');
like($multi, qr/^#.*oauth2-admin\b.*\brealm add $_\b/m,
    "multi-realm.conf says how to create the realm $_")
    for sort keys %realm_of;
like($multi, qr/^#.*\bloopback\b/m,
    'multi-realm.conf says the daemon listens on loopback');

# R67: where a file hands a backend the identity auth_oauth2 found
# (X-OAuth2-Client-Id, -Scope, -User), every location that proxies to a
# backend (not the daemon, whose headers oauth2_proxy.conf sets) sets each
# of those headers itself: proxy_set_header is not inherited by sibling
# locations, and nginx otherwise passes a client's own headers of those
# names on to the backend that trusts them.
for my $file (qw(full.conf multi-realm.conf minimal.conf cluster.conf)) {
    (my $live = slurp("$src/$file")) =~ s/#[^\n]*//g;
    my @locs = map { locations($_) } blocks($live, 'server');
    my %ident;
    for my $l (@locs) {
        for (@{$l->[1]{proxy_set_header} // []}) {
            $ident{lc $1} = 1 if /^(X-OAuth2-(?:Client-Id|Scope|User))\s/i;
        }
    }
    next unless %ident;
    for my $l (grep { my $p = $_->[1]{proxy_pass}[0];
        defined $p && $p ne 'http://oauth2_admin' } @locs)
    {
        my %set = map { /^(\S+)\s/ ? (lc $1 => 1) : () }
            @{$l->[1]{proxy_set_header} // []};
        my @missing = grep { !$set{$_} } sort keys %ident;
        ok(!@missing, "$file: $l->[0] sets the identity headers itself (R67)")
            or diag("it leaves the client's own: @missing");
    }
}


################################################ R64: no example logs a query

# nginx's default access log format, combined, logs $request, whose query
# string may carry a secret or a token a client sent wrongly (POST
# /o/token/?client_secret=...), and $http_referer, a page's URL with its
# own query.  docs/security.md R64: access_log must never log a token.
# Every example sets a log_format of none of these, and every server
# (every location that names its own) logs in such a format.
my $query_var = qr/\$\{?(?:request|request_uri|args|query_string|http_referer
    |arg_\w+)(?![\w])/x;
for my $file (qw(minimal.conf full.conf multi-realm.conf cluster.conf)) {
    (my $live = slurp("$src/$file")) =~ s/#[^\n]*//g;
    my ($http) = blocks($live, 'http');
    $http //= '';
    my $hd = directives($http);
    my %safe;
    for my $f (@{$hd->{log_format} // []}) {
        my ($name, $fmt) = $f =~ /^(\S+)\s+(.*)$/s;
        unlike($fmt, $query_var, "$file: log_format $name logs no query "
            . 'string and no referrer (R64)');
        $safe{$name} = 1 if $fmt !~ $query_var;
    }
    ok(%safe, "$file sets a log_format of its own (R64)");
    # an access_log line is safe when it is off or names a safe format
    # (none named: combined)
    my $safe_log = sub {
        my ($args) = @_;
        return 1 if $args eq 'off';
        my (undef, $fmt) = split ' ', $args;
        return defined $fmt && $safe{$fmt};
    };
    my @http_logs = @{$hd->{access_log} // []};
    for my $body (blocks($http, 'server')) {
        my $d = directives($body);
        my $name = join(' ', @{$d->{server_name} // []})
            || join(' ', @{$d->{listen} // ['?']});
        my @logs = @{$d->{access_log} // []};
        @logs = @http_logs unless @logs;
        ok(@logs && !grep({ !$safe_log->($_) } @logs),
            "$file: server $name logs in a format without the query (R64)")
            or diag('access_log: ' . (join('; ', @logs) || 'none: combined'));
        for my $l (locations($body)) {
            for my $a (@{$l->[1]{access_log} // []}) {
                ok($safe_log->($a), "$file: $l->[0] logs in a format "
                    . 'without the query (R64)');
            }
        }
    }
}

# minimal.conf run: a client secret sent in a query string reaches the
# token endpoint and its access log, and the log has the request without
# the secret
{
    my $secret = 'SEKRET-in-the-query-' . join('', map { int rand 10 } 1 .. 12);
    my $text = localized(slurp("$src/minimal.conf"));
    my @logs = $text =~ /^\s*access_log\s+(\/\S+)/mg;
    ok(@logs, 'minimal.conf names its access log (R64)');
    SKIP: {
        # without one nginx would log to its compiled-in path, outside
        # the test's directory
        skip 'minimal.conf logs to nginx\'s default access log', 3
            unless @logs;
        $text =~ s/^events/pid $dir\/nginx.pid;\nevents/m;
        open my $w, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
        print $w $text;
        close $w;
        my $app = $t->new_app(name => 'query-secret');
        $t->run;
        my $r = $t->post_form("/o/token/?client_id=$app->{client_id}"
            . "&client_secret=$secret", 'grant_type=client_credentials');
        ok($r->{status} >= 400, 'a secret in the query string gets no '
            . "token (R64): $r->{status}");
        $t->stop;
        my $log = join '', map { slurp($_) } @logs;
        like($log, qr{"POST /o/token/"}, 'the request is in minimal.conf\'s '
            . 'access log');
        unlike($log, qr/\Q$secret\E/, 'and the secret is not (R64)');
    }
}

$t->done_testing;
