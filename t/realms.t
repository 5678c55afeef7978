# Realms (issue 12): one nginx, one store, one admin daemon, several
# isolated sites.  Three servers: "default" (no oauth2_realm, as every
# existing configuration), shop1 and shop2 (oauth2_realm, each its own
# oauth2_issuer, the SAME oauth2_jwt_key and handshake key files).  Every
# kind of credential of one realm is refused in the other, in both
# directions, and still works at home: access tokens (client_credentials,
# password, X-API-KEY, JWT), refresh tokens, authorization codes, the
# authorization endpoint's session, client secrets of one client_id
# registered in both realms, API keys and handshakes, revocations, the
# throttle and rate-limit counts (R17, R83, R84), the admin daemon's
# bearer tokens, staff, lists and page sessions (R69, R87: the realm comes
# from nginx's proxy_set_header, never from the client), and the CLI's
# realm list/add/delete and --realm.  nginx -t refuses a bad realm name
# and oauth2_realm in a location.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;
use OAuth2Grants qw(inactive_ok PBKDF2);
use OAuth2Jwt qw(require_pyjwt py parts);

OAuth2Test::require_build();

# python3-jwt re-signs JWTs with the shared key (missing: a failure)
require_pyjwt('t/realms.t');

my $T0 = time;
my $t = OAuth2Test->new;
my $JSON = JSON::PP->new->canonical;
my $TRUE = JSON::PP::true;
my $CB = 'https://client.example/cb';
my @SHOPS = qw(shop1 shop2);
my @PAIRS = (['shop1', 'shop2'], ['shop2', 'shop1']);
my @secrets;    # never in the daemon's log

sub dj { my $j = eval { JSON::PP->new->decode($_[0] // '') }; return $j }
sub hdr { OAuth2Test::header(@_) }
sub wa { hdr($_[0], 'WWW-Authenticate') // '' }

sub rand_secret {
    my ($n) = @_;
    my @c = ('A' .. 'Z', 'a' .. 'z', 0 .. 9);
    return join '', map { $c[int rand @c] } 1 .. $n;
}

######################################################## realm add / list

my ($code, $out, $err) = $t->admin('realm', 'list');
is($code, 0, 'realm list on a new store: exit 0') or diag($err);
is_deeply(dj($out), ['default'],
    'realm list on a new store: ["default"] only');

for my $shop (@SHOPS) {
    my $before = int time;
    ($code, $out, $err) = $t->admin('realm', 'add', $shop);
    is($code, 0, "realm add $shop: exit 0") or diag($err);
    my $j = dj($out) // {};
    is_deeply([sort keys %$j], ['created', 'name'],
        "realm add $shop prints {\"name\", \"created\"}");
    is($j->{name}, $shop, "realm add $shop: name $shop");
    ok(defined $j->{created} && !ref $j->{created}
        && $j->{created} =~ /^\d+$/ && $j->{created} >= $before
        && $j->{created} <= time + 1,
        "realm add $shop: created is the current unix time")
        or diag($out);
}

# 64 characters of every kind allowed: the longest valid name
my $LONG = 'Realm.v1-' . ('x' x 51) . '_end';
is(length $LONG, 64, 'the long realm name has 64 characters');
($code, $out, $err) = $t->admin('realm', 'add', $LONG);
is($code, 0, 'realm add of 64 letters, digits, ".", "-", "_": exit 0')
    or diag($err);

($code, $out, $err) = $t->admin('realm', 'add', 'shop1');
is($code, 1, 'realm add shop1 again: exit 1');
like($err, qr/shop1/, 'realm add shop1 again: stderr names shop1');
($code, $out, $err) = $t->admin('realm', 'add', 'default');
is($code, 1, 'realm add default: exit 1 (it always exists)');
like($err, qr/default/, 'realm add default: stderr names default');
for my $bad (['bad name!', 'a space and "!"'], ['', 'an empty name'],
    ['x' x 65, '65 characters'], ['shop/1', 'a slash'],
    ["sh\x{e9}p", 'a non-ASCII letter'])
{
    ($code, $out, $err) = $t->admin('realm', 'add', $bad->[0]);
    is($code, 2, "realm add with $bad->[1]: exit 2 (usage)");
}

($code, $out, $err) = $t->admin('realm', 'list');
is($code, 0, 'realm list: exit 0');
is_deeply(dj($out), ['default', $LONG, 'shop1', 'shop2'],
    'realm list: "default" first, then the registered realms in byte order');
($code, $out, $err) = $t->admin('realm', 'delete', $LONG);
is($code, 0, 'realm delete of the (empty) 64-character realm: exit 0')
    or diag($err);
is(dj($out)->{name}, $LONG, 'realm delete prints the name');
is_deeply(dj(($t->admin('realm', 'list'))[1]), ['default', 'shop1', 'shop2'],
    'realm list after the delete: ["default","shop1","shop2"]');

# an unknown --realm: exit 1, nothing written
($code, $out, $err) = $t->admin('--realm', 'nosuch', 'user', 'list');
is($code, 1, '--realm nosuch user list: exit 1');
like($err, qr/unknown realm 'nosuch'/,
    '--realm nosuch: stderr says unknown realm, quoted as the CLI quotes names');
($code, $out, $err) = $t->admin('--realm', 'nosuch', 'user', 'add',
    '--username', 'ghost', '--email', 'ghost@example.com', '--password',
    'Quartz-ghost-field-90', '--pbkdf2-iterations', PBKDF2);
is($code, 1, '--realm nosuch user add: exit 1');
like($err, qr/unknown realm 'nosuch'/, '--realm nosuch user add: says why');
($code, $out, $err) = $t->admin('--realm', 'nosuch', 'app', 'add', '--name',
    'ghost', '--grant', 'client_credentials');
is($code, 1, '--realm nosuch app add: exit 1');
($code, $out, $err) = $t->admin('app', 'list', '--realm', 'nosuch');
is($code, 1, 'app list --realm nosuch (the option after the command): exit 1');
is_deeply(dj(($t->admin('realm', 'list'))[1]), ['default', 'shop1', 'shop2'],
    'the refused commands registered no realm');

# the keys of every database of the store, in mdb_dump's printable form
sub store_keys {
    my ($c, $o, $e) = $t->_run_cmd('/usr/bin/mdb_dump', '-a', '-p',
        $t->store);
    die "mdb_dump: exit $c: $e" if $c;
    my (@keys, $data, $i);
    for my $l (split /\n/, $o) {
        if ($l eq 'HEADER=END') { ($data, $i) = (1, 0); next }
        if ($l eq 'DATA=END') { $data = 0; next }
        next unless $data;
        push @keys, substr($l, 1) if $i++ % 2 == 0;
    }
    return @keys;
}
{
    my @keys = eval { store_keys() };
    ok(!$@ && @keys && !grep({ /nosuch|ghost/ } @keys),
        'mdb_dump of the store: no key names "nosuch" or "ghost"')
        or diag($@ || join("\n", grep { /nosuch|ghost/ } @keys)
            || 'no keys at all');
}

######################################################## users and apps

my %PW = (
    default => { alice => 'Velvet-kettle-orbit-10' },
    shop1 => { alice => 'Velvet-kettle-orbit-11',
        boss1 => 'Granite-owl-lamp-71', only1 => 'Copper-finch-dune-31' },
    shop2 => { alice => 'Velvet-kettle-orbit-12',
        boss2 => 'Granite-owl-lamp-72', only2 => 'Copper-finch-dune-32' },
);
my %STAFF = (shop1 => 'boss1', shop2 => 'boss2');
push @secrets, map { values %$_ } values %PW;

for my $realm (sort keys %PW) {
    for my $u (sort keys %{$PW{$realm}}) {
        $t->admin_json('--realm', $realm, 'user', 'add', '--username', $u,
            '--email', "$u\@$realm.example", '--password', $PW{$realm}{$u},
            '--pbkdf2-iterations', PBKDF2,
            (($STAFF{$realm} // '') eq $u ? ('--staff') : ()));
    }
}

# per shop: the same five client_id strings, imported from a Django dump
# with secrets of their own (DOT 1.x kept them in clear); "shared-weak"
# has a short secret: throttled per (client, address) (R17, R83)
my %APP;    # realm => name => { client_id, client_secret }
my %DOT = ('shared-cc' => 'client-credentials',
    'shared-rl' => 'client-credentials', 'shared-weak' => 'client-credentials',
    'shared-pw' => 'password', 'shared-web' => 'authorization-code');
for my $shop (@SHOPS) {
    my @dump;
    my $pk = 0;
    for my $id (sort keys %DOT) {
        my $secret = $id eq 'shared-weak' ? "weak-$shop-" . rand_secret(6)
            : rand_secret(64);
        $APP{$shop}{$id} = { client_id => $id, client_secret => $secret };
        push @secrets, $secret;
        push @dump, { model => 'oauth2_provider.application', pk => ++$pk,
            fields => { client_id => $id, name => "$id of $shop",
                client_type => 'confidential',
                authorization_grant_type => $DOT{$id},
                client_secret => $secret,
                redirect_uris => $id eq 'shared-web' ? $CB : '' } };
    }
    my $file = $t->dir . "/dump-$shop.json";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $JSON->encode(\@dump);
    close $fh;
    ($code, $out, $err) = $t->admin('--realm', $shop, 'import-django', $file);
    is($code, 0, "import-django into $shop: exit 0") or diag($err);
    is((dj($out) // {})->{applications}{imported}, 5,
        "import-django into $shop: the five applications imported");
    # the operator's own application (staff sign in with it, R85) and an
    # application holding "admin"
    $APP{$shop}{console} = $t->admin_json('--realm', $shop, 'app', 'add',
        '--name', "console $shop", '--grant', 'password', '--grant',
        'refresh_token', '--first-party');
    $APP{$shop}{ops} = $t->admin_json('--realm', $shop, 'app', 'add',
        '--name', "ops $shop", '--grant', 'client_credentials', '--scope',
        'read write admin');
    push @secrets, map { $APP{$shop}{$_}{client_secret} } qw(console ops);
}
$APP{default}{ops} = $t->new_app(name => 'ops default',
    scope => 'read write admin');
push @secrets, $APP{default}{ops}{client_secret};
isnt($APP{shop1}{'shared-cc'}{client_secret},
    $APP{shop2}{'shared-cc'}{client_secret},
    'shared-cc has a secret of its own in each shop');

# API keys of the same client id in each shop
my %KEY;
for my $shop (@SHOPS) {
    $KEY{$shop} = $t->admin_json('--realm', $shop, 'apikey', 'add',
        'shared-cc', '--name', "key of $shop")->{api_key};
    push @secrets, $KEY{$shop};
}

# the CLI lists each realm's own users and applications
sub cli_list {
    my ($realm, $what) = @_;
    my ($c, $o, $e) = $t->admin($what, 'list', '--realm', $realm);
    return undef if $c;
    return dj($o);
}
is_deeply([sort map { $_->{username} } @{cli_list('shop1', 'user') // []}],
    [qw(alice boss1 only1)], 'user list --realm shop1: alice, boss1, only1');
is_deeply([sort map { $_->{username} } @{cli_list('shop2', 'user') // []}],
    [qw(alice boss2 only2)], 'user list --realm shop2: alice, boss2, only2');
is_deeply([sort map { $_->{username} } @{cli_list('default', 'user') // []}],
    ['alice'], 'user list (default realm): alice only');
my %CLI_APPS = map { my $r = $_;
    ($r => [sort map { $_->{client_id} } @{cli_list($r, 'app') // []}]) }
    qw(default shop1 shop2);
is_deeply($CLI_APPS{shop1}, [sort map { $_->{client_id} }
    values %{$APP{shop1}}], 'app list --realm shop1: its seven applications');
is_deeply($CLI_APPS{default}, [$APP{default}{ops}{client_id}],
    'app list (default realm): only its own application');

######################################################## nginx

my $K = $t->dir . '/keys';
mkdir $K or die "mkdir $K: $!";
{
    my ($c, $o, $e) = $t->_run_cmd('/usr/bin/openssl', 'genpkey',
        '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-out', "$K/ec.pem");
    die "openssl genpkey: $e" if $c;
}

my $SOL = 'oauth2_handshake_solution rental fbs=fbs_rental_db '
    . 'django=djo_rental_db system=fbs_system_db;';

# one site: its endpoints, protected locations and the daemon's paths;
# a realm server sets X-OAuth2-Realm in every proxied location (a
# proxy_set_header of a location replaces every inherited one)
sub site {
    my ($realm, $port) = @_;
    my $realm_line = $realm eq 'default' ? ''
        : "    oauth2_realm $realm;\n";
    my $daemon = $t->daemon_locations;
    my $set = "        proxy_set_header X-OAuth2-Realm $realm;\n";
    $daemon =~ s/(proxy_set_header X-Real-IP \$remote_addr;\n)/$1$set/g
        unless $realm eq 'default';
    return <<"EOF";
server {
    listen 127.0.0.1:$port;
$realm_line    oauth2_issuer http://127.0.0.1:$port;
    location = /o/token/ { oauth2_token; }
    location = /o/revoke_token/ { oauth2_revoke; }
    location = /o/introspect/ { oauth2_introspect; }
    location = /o/authorize/ { oauth2_authorize; }
    location = /users/register/ { oauth2_register; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
    location /protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    location = /bf/token/ { oauth2_token; oauth2_client_auth_limit 3 30s; }
    location = /rl/token/ { oauth2_token; oauth2_rate_limit 3/h; }
    location /jwt/ {
        oauth2_jwt_key %%DIR%%/keys/ec.pem;
        oauth2_access_token_format jwt;
        location = /jwt/token/ { oauth2_token; }
        location = /jwt/introspect/ { oauth2_introspect; }
        location /jwt/api/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
        # the key signs id_tokens too: nginx -t wants their JWKS
        location = /jwt/jwks/ { oauth2_jwks; }
    }
    location /api/auth/handshake/ { oauth2_handshake; $SOL }
    location /hs/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
$daemon}
EOF
}

$t->write_config("oauth2_store %%STORE%%;\n"
    . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ";\n"
    . "oauth2_client_auth_limit off;\n"
    . "oauth2_handshake_key %%DIR%%/handshake.key;\n"
    . site('default', '%%PORT%%') . site('shop1', '%%PORT_1%%')
    . site('shop2', '%%PORT_2%%'))->run;
for my $n (1, 2) {
    ok($t->_wait_port($t->port($n)), "nginx listens on shop$n\'s port");
}

my %PORT = (default => $t->port, shop1 => $t->port(1),
    shop2 => $t->port(2));
my %ISS = map { $_ => "http://127.0.0.1:$PORT{$_}" } keys %PORT;

sub P { return ('-port' => $PORT{$_[0]}) }

sub token_at {
    my ($realm, $app, %o) = @_;
    my $h = delete $o{headers} // [];
    return $t->token($app->{client_id}, $app->{client_secret}, %o,
        headers => [@$h, P($realm)]);
}

sub access_at {
    my ($realm, $app, %o) = @_;
    my $r = token_at($realm, $app, %o);
    unless ($r->{status} == 200 && $r->{json}{access_token}) {
        fail("a token of $app->{client_id} at $realm");
        diag($r->{raw});
        return '';
    }
    push @secrets, $r->{json}{access_token};
    return $r->{json}{access_token};
}

sub bearer_at {
    my ($realm, $tok, $path) = @_;
    return $t->get($path // '/protected/', Authorization => "Bearer $tok",
        P($realm));
}

sub status_at { bearer_at(@_)->{status} }

sub basic_of { $t->basic($_[0]{client_id}, $_[0]{client_secret}) }

sub introspect_at {
    my ($realm, $app, $tok, $path) = @_;
    return $t->post_form($path // '/o/introspect/',
        OAuth2Test::form(token => $tok), Authorization => basic_of($app),
        P($realm));
}

sub revoke_at {
    my ($realm, $app, $tok) = @_;
    return $t->post_form('/o/revoke_token/', OAuth2Test::form(token => $tok),
        Authorization => basic_of($app), P($realm));
}

sub password_at {
    my ($realm, $app, $user, $pw) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => $user, password => $pw), Authorization => basic_of($app),
        P($realm));
}

sub refresh_at {
    my ($realm, $app, $rt) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'refresh_token', refresh_token => $rt),
        Authorization => basic_of($app), P($realm));
}

sub refused_ok {
    my ($r, $name) = @_;
    my $ok = is($r->{status}, 401, "$name: 401");
    $ok &= like(wa($r), qr/error="invalid_token"/,
        "$name: error=\"invalid_token\"");
    diag($r->{raw}) unless $ok;
    return $ok;
}

sub active_ok {
    my ($r, $name) = @_;
    my $ok = is($r->{status}, 200, "$name: 200");
    $ok &= is($r->{json}{active}, $TRUE, "$name: active true");
    diag($r->{raw}) unless $ok;
    return $ok;
}

for my $realm (qw(default shop1 shop2)) {
    my $r = $t->get('/.well-known/oauth-authorization-server', P($realm));
    is(($r->{json} // {})->{issuer}, $ISS{$realm},
        "the metadata of $realm names its own issuer");
}

######################################## access tokens: client_credentials

my %CC;     # realm => a client_credentials token of shared-cc
$CC{$_} = access_at($_, $APP{$_}{'shared-cc'}) for @SHOPS;
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $tok = $CC{$home};
    my $r = bearer_at($home, $tok);
    is($r->{status}, 200, "$home\'s client_credentials token at $home: 200");
    is($r->{body}, "hello\n", "$home\'s token at $home: the protected file");
    refused_ok(bearer_at($away, $tok),
        "$home\'s client_credentials token at $away");
    is($t->get('/protected/', 'X-API-KEY' => $tok, P($home))->{status}, 200,
        "$home\'s token as X-API-KEY at $home: 200");
    is($t->get('/protected/', 'X-API-KEY' => $tok, P($away))->{status}, 401,
        "$home\'s token as X-API-KEY at $away: 401");
    active_ok(introspect_at($home, $APP{$home}{'shared-cc'}, $tok),
        "introspection of $home\'s token at $home");
    inactive_ok($t, introspect_at($away, $APP{$away}{'shared-cc'}, $tok),
        "introspection of $home\'s token at $away (the same client_id)");
}

################################ one client_id, two applications, two secrets

for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $r = token_at($away, $APP{$home}{'shared-cc'});
    $t->oauth_error_ok($r, 401, 'invalid_client',
        "shared-cc with $home\'s secret at $away");
    $r = token_at($home, $APP{$home}{'shared-cc'});
    is($r->{status}, 200, "shared-cc with $home\'s secret at $home: 200");
    $r = token_at($away, $APP{$home}{ops});
    $t->oauth_error_ok($r, 401, 'invalid_client',
        "$home\'s ops application (a client_id $away does not have) at $away");
}

######################################## the default realm

{
    my $tok = access_at('default', $APP{default}{ops});
    is(status_at('default', $tok), 200,
        'a token of the server without oauth2_realm works there: 200');
    for my $shop (@SHOPS) {
        refused_ok(bearer_at($shop, $tok), "a default-realm token at $shop");
        refused_ok(bearer_at('default', $CC{$shop}),
            "$shop\'s token at the default-realm server");
        inactive_ok($t, introspect_at('default', $APP{default}{ops},
            $CC{$shop}), "introspection of $shop\'s token at the default "
            . 'realm');
        $t->oauth_error_ok(token_at('default', $APP{$shop}{'shared-cc'}),
            401, 'invalid_client',
            "$shop\'s shared-cc at the default-realm server");
    }
    my ($c, $o, $e) = $t->admin('token', 'issue', '--client-id',
        $APP{default}{ops}{client_id});
    my $issued = (dj($o) // {})->{access_token} // '';
    is(status_at('default', $issued), 200,
        'token issue without --realm: the token works at the default server');
    is(status_at('shop1', $issued), 401, 'and is unknown at shop1');
}

######################################## access tokens: password grant

my %PWTOK;    # realm => the password grant's response JSON
for my $shop (@SHOPS) {
    my $r = password_at($shop, $APP{$shop}{'shared-pw'}, 'alice',
        $PW{$shop}{alice});
    is($r->{status}, 200, "alice\'s password grant at $shop: 200")
        or diag($r->{raw});
    $PWTOK{$shop} = $r->{json} // {};
    push @secrets, grep { defined } @{$PWTOK{$shop}}{qw(access_token
        refresh_token)};
}
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $at = $PWTOK{$home}{access_token} // '';
    is(status_at($home, $at), 200, "$home alice\'s token at $home: 200");
    refused_ok(bearer_at($away, $at), "$home alice\'s token at $away");
    inactive_ok($t, introspect_at($away, $APP{$away}{'shared-pw'}, $at),
        "introspection of $home alice\'s token at $away");
    my $only = $home eq 'shop1' ? 'only1' : 'only2';
    $t->oauth_error_ok(password_at($away, $APP{$away}{'shared-pw'}, $only,
        $PW{$home}{$only}), 400, 'invalid_grant',
        "$home\'s user $only signing in at $away");
    $t->oauth_error_ok(password_at($away, $APP{$away}{'shared-pw'}, 'alice',
        $PW{$home}{alice}), 400, 'invalid_grant',
        "$home alice\'s password for $away\'s alice");
}

######################################## refresh tokens

for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $rt = $PWTOK{$home}{refresh_token} // '';
    $t->oauth_error_ok(refresh_at($away, $APP{$away}{'shared-pw'}, $rt), 400,
        'invalid_grant', "$home\'s refresh token at $away (same client_id)");
    inactive_ok($t, introspect_at($away, $APP{$away}{'shared-pw'}, $rt),
        "introspection of $home\'s refresh token at $away");
    is(status_at($home, $PWTOK{$home}{access_token} // ''), 200,
        "the try at $away revoked nothing of $home\'s grant (R37)");
    my $r = refresh_at($home, $APP{$home}{'shared-pw'}, $rt);
    is($r->{status}, 200, "$home\'s refresh token still refreshes at $home")
        or diag($r->{raw});
    my $new = ($r->{json} // {})->{access_token} // '';
    push @secrets, $new, ($r->{json} // {})->{refresh_token} // ();
    is(status_at($home, $new), 200, "the refreshed token works at $home");
    is(status_at($away, $new), 401, "the refreshed token is unknown at $away");
}

######################################## authorization codes and sessions

my $STATE = 0;
sub authz_q {
    return OAuth2Authorize::query(client_id => 'shared-web',
        response_type => 'code', redirect_uri => $CB, scope => 'read write',
        state => 'st-' . ++$STATE);
}
sub authz_get {
    my ($realm, $q, @h) = @_;
    return $t->get("/o/authorize/?$q", @h, P($realm));
}
sub authz_post {
    my ($realm, $q, $body, @h) = @_;
    return $t->post_form("/o/authorize/?$q", $body, @h, P($realm));
}
# the login form of the authorization endpoint: "oauth2_session=..." or undef
sub authz_login {
    my ($realm, $user, $pw) = @_;
    my $q = authz_q();
    my $g = authz_get($realm, $q);
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my $r = authz_post($realm, $q, OAuth2Test::form(action => 'login',
        csrf_token => OAuth2Authorize::csrf_field($g) // $csrf,
        username => $user, password => $pw), Cookie => "oauth2_csrf=$csrf");
    my $s = OAuth2Test::cookies_of($r)->{oauth2_session}{value};
    return defined $s && length $s ? "oauth2_session=$s" : undef;
}
# consent with the session: (the redirect's parameters)
sub authz_code {
    my ($realm, $session) = @_;
    my $q = authz_q();
    my $g = authz_get($realm, $q, Cookie => $session);
    my $csrf = OAuth2Authorize::csrf_field($g);
    my $r = authz_post($realm, $q, OAuth2Test::form(action => 'allow',
        defined $csrf ? (csrf_token => $csrf) : ()), Cookie => $session);
    return OAuth2Authorize::location_params($r);
}
sub redeem_at {
    my ($realm, $app, $code) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'authorization_code', code => $code,
        redirect_uri => $CB, client_id => $app->{client_id},
        client_secret => $app->{client_secret}), P($realm));
}

my %SESSION;
for my $shop (@SHOPS) {
    $SESSION{$shop} = authz_login($shop, 'alice', $PW{$shop}{alice});
    ok($SESSION{$shop}, "alice signs in at $shop\'s authorization endpoint");
    push @secrets, $SESSION{$shop} // ();
}
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $other = $away eq 'shop1' ? 'shop2' : 'shop1';
    ok(!authz_login($away, 'alice', $PW{$home}{alice}),
        "$home alice\'s password at $away\'s login form: no session");
    my $g = authz_get($home, authz_q(), Cookie => $SESSION{$home} // '');
    like($g->{body}, qr/Signed in as <strong>alice<\/strong>/,
        "$home\'s session at $home: the consent page");
    $g = authz_get($away, authz_q(), Cookie => $SESSION{$home} // '');
    is($g->{status}, 200, "$home\'s session cookie at $away: 200");
    like($g->{body}, qr/<h1>Sign in<\/h1>/,
        "$home\'s session cookie at $away: the login page, not a session");
    unlike($g->{body}, qr/Signed in as/,
        "$home\'s session cookie at $away: nobody is signed in");

    my %cb = authz_code($home, $SESSION{$home} // '');
    ok(defined $cb{code}, "a code from $home\'s authorization endpoint");
    is($cb{iss}, $ISS{$home}, "the redirect's iss is $home\'s issuer");
    my $code = $cb{code} // '';
    push @secrets, $code;
    $t->oauth_error_ok(redeem_at($away, $APP{$away}{'shared-web'}, $code),
        400, 'invalid_grant',
        "$home\'s code redeemed at $away by the same client_id");
    my $r = redeem_at($home, $APP{$home}{'shared-web'}, $code);
    is($r->{status}, 200, "the code still redeems at $home (the try at "
        . "$away did not use it up, R29)") or diag($r->{raw});
    my $at = ($r->{json} // {})->{access_token} // '';
    push @secrets, $at;
    is(status_at($home, $at), 200, "the code's token works at $home");
    is(status_at($away, $at), 401, "the code's token is unknown at $away");
}

######################################## revocation

for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $mine = access_at($home, $APP{$home}{'shared-cc'});
    my $theirs = access_at($away, $APP{$away}{'shared-cc'});
    my $r = revoke_at($away, $APP{$away}{'shared-cc'}, $mine);
    is($r->{status}, 200, "a revoke of $home\'s token sent to $away: 200 "
        . '(RFC 7009: an unknown token)');
    is(status_at($home, $mine), 200,
        "after the revoke at $away the token is still valid at $home");
    active_ok(introspect_at($home, $APP{$home}{'shared-cc'}, $mine),
        "introspection at $home after the revoke at $away");
    $r = revoke_at($home, $APP{$home}{'shared-cc'}, $mine);
    is($r->{status}, 200, "revoke at $home: 200");
    is(status_at($home, $mine), 401, "revoked at $home: 401 at $home");
    is(status_at($away, $theirs), 200,
        "$away\'s token of the same client_id is untouched: 200 at $away");
}

######################################## JWT access tokens

my %JWT;
for my $shop (@SHOPS) {
    my $r = token_at($shop, $APP{$shop}{'shared-cc'}, path => '/jwt/token/');
    is($r->{status}, 200, "a JWT access token at $shop: 200");
    $JWT{$shop} = ($r->{json} // {})->{access_token} // '';
    push @secrets, $JWT{$shop};
    like($JWT{$shop}, qr/^[\w-]+\.[\w-]+\.[\w-]+$/,
        "$shop\'s access token is a compact JWS");
    my ($h, $c) = parts($JWT{$shop});
    is($c->{iss}, $ISS{$shop}, "$shop\'s JWT: iss is $shop\'s issuer");
    is($c->{aud}, $ISS{$shop}, "$shop\'s JWT: aud is $shop\'s issuer");
    is($c->{client_id}, 'shared-cc', "$shop\'s JWT: client_id shared-cc");
}
is((parts($JWT{shop1}))[0]{kid}, (parts($JWT{shop2}))[0]{kid},
    'both shops sign with the same key (the same kid)');

sub numeric {
    my ($c) = @_;
    for my $k (qw(exp iat nbf)) {
        $c->{$k} += 0 if defined $c->{$k} && !ref $c->{$k};
    }
    return $c;
}
# python3-jwt re-signs with the shared key: each shop's JWT unchanged
# (the control), and each shop's JWT with the other shop's iss and aud
my @ops;
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my ($h, $c) = parts($JWT{$home});
    push @ops, { op => 'sign', header => $h, claims => numeric({ %$c }),
        alg => 'ES256', key_file => "$K/ec.pem" };
    push @ops, { op => 'sign', header => $h, claims => numeric({ %$c,
        iss => $ISS{$away}, aud => $ISS{$away} }), alg => 'ES256',
        key_file => "$K/ec.pem" };
}
my @forged = py(@ops);
ok($_->{ok}, 'python3-jwt signed a test JWT') for @forged;
my %CONTROL = (shop1 => $forged[0]{token} // '',
    shop2 => $forged[2]{token} // '');
my %RETARGETED = (shop1 => $forged[1]{token} // '',
    shop2 => $forged[3]{token} // '');

for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $r = bearer_at($home, $JWT{$home}, '/jwt/api/');
    is($r->{status}, 200, "$home\'s JWT at $home: 200");
    refused_ok(bearer_at($away, $JWT{$home}, '/jwt/api/'),
        "$home\'s JWT at $away, whose server trusts the same key file");
    active_ok(introspect_at($home, $APP{$home}{'shared-cc'}, $JWT{$home},
        '/jwt/introspect/'), "introspection of $home\'s JWT at $home");
    inactive_ok($t, introspect_at($away, $APP{$away}{'shared-cc'},
        $JWT{$home}, '/jwt/introspect/'),
        "introspection of $home\'s JWT at $away");
    is(status_at($home, $CONTROL{$home}, '/jwt/api/'), 200,
        "$home\'s JWT re-signed by python3-jwt at $home: 200 (the control)");
    refused_ok(bearer_at($away, $RETARGETED{$home}, '/jwt/api/'),
        "$home\'s JWT re-signed with $away\'s iss and aud, at $away (its "
        . "record is in $home)");
}

######################################## API keys and handshakes

sub hs_at {
    my ($realm, $call, $body) = @_;
    return $t->api('POST', "/api/auth/handshake/$call", json => $body,
        port => $PORT{$realm});
}
my %HS;
for my $shop (@SHOPS) {
    my $r = hs_at($shop, 'create/', { api_key => $KEY{$shop},
        system_name => "sys-$shop", solution_name => 'rental',
        permissions => ['read'] });
    is($r->{status}, 201, "$shop\'s API key creates a handshake at $shop")
        or diag($r->{raw});
    $HS{$shop} = ($r->{json} // {})->{handshake} // {};
    push @secrets, grep { defined } @{$HS{$shop}}{qw(handshake_token
        handshake_secret)};
}
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $r = hs_at($away, 'create/', { api_key => $KEY{$home},
        system_name => 'x', solution_name => 'rental',
        permissions => ['read'] });
    is($r->{status}, 401, "$home\'s API key at $away\'s create/: 401");
    is(($r->{json} // {})->{error_code}, 'INVALID_API_KEY',
        "$home\'s API key at $away: INVALID_API_KEY");
    my $h = $HS{$home};
    my %v = (handshake_token => $h->{handshake_token} // '',
        handshake_secret => $h->{handshake_secret} // '');
    $r = hs_at($away, 'validate/', \%v);
    is($r->{status}, 404, "$home\'s handshake validated at $away: 404 "
        . '(signed with the same key file, no such handshake)');
    is(($r->{json} // {})->{error_code}, 'HANDSHAKE_NOT_FOUND',
        "$home\'s handshake at $away: HANDSHAKE_NOT_FOUND");
    $r = hs_at($away, 'revoke/', { handshake_token => $v{handshake_token} });
    is($r->{status}, 404, "$home\'s handshake revoked at $away: 404");
    refused_ok(bearer_at($away, $v{handshake_token}, '/hs/'),
        "$home\'s handshake token as a bearer at $away");
    $r = hs_at($home, 'validate/', \%v);
    ok($r->{status} == 200 && ($r->{json}{data} // {})->{valid},
        "$home\'s handshake is still valid at $home after the revoke at "
        . $away) or diag($r->{raw});
    is(status_at($home, $v{handshake_token}, '/hs/'), 200,
        "$home\'s handshake token as a bearer at $home: 200");
}

######################## throttle and rate limit counts per realm (R17, R84)

# the failed client authentications of one client id from one address in
# one realm: its short (imported) secret is throttled per (client,
# address) after 3; the same client id from the same address in the
# other realm is not.  Each direction from a loopback address of its own,
# not 127.0.0.1, so that the throttled address is none the rest of the
# file uses.
my %FROM = (shop1 => '127.0.0.9', shop2 => '127.0.0.10');
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $from = $FROM{$home};
    my @h = (path => '/bf/token/');
    for my $i (1 .. 3) {
        my $r = $t->token('shared-weak', "wrong-$i", @h,
            headers => ['-from' => $from, P($home)]);
        is($r->{status}, 401, "shared-weak, wrong secret #$i at $home from "
            . "$from: 401");
    }
    my $r = token_at($home, $APP{$home}{'shared-weak'}, @h,
        headers => ['-from' => $from]);
    $t->oauth_error_ok($r, 429, 'temporarily_unavailable',
        "shared-weak at $home after 3 failures from $from, right secret "
        . '(R17)');
    $r = token_at($away, $APP{$away}{'shared-weak'}, @h,
        headers => ['-from' => $from]);
    is($r->{status}, 200, "the same client id from the same address at "
        . "$away: 200, $home\'s failures are not counted there (R83, R84)")
        or diag($r->{raw});
    $r = $t->token('shared-weak', 'wrong-at-away', @h,
        headers => ['-from' => $from, P($away)]);
    is($r->{status}, 401, "a wrong secret at $away from $from: 401, not 429");
}

# oauth2_rate_limit 3/h counted per client: one client id spends its hour
# in one realm, the same client id in the other keeps its own
{
    my $left = 3600 - (time - int(time / 3600) * 3600);
    sleep $left + 0.5 if $left < 10;    # never straddle the hour
}
my %RL = (shop1 => 'shared-cc', shop2 => 'shared-rl');
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $id = $RL{$home};
    for my $i (1 .. 3) {
        my $r = token_at($home, $APP{$home}{$id}, path => '/rl/token/');
        is($r->{status}, 200, "$id at $home\'s 3/h location, request $i: 200");
        is(hdr($r, 'X-RateLimit-Remaining'), 3 - $i,
            "$id at $home, request $i: X-RateLimit-Remaining " . (3 - $i));
    }
    my $r = token_at($home, $APP{$home}{$id}, path => '/rl/token/');
    $t->oauth_error_ok($r, 429, 'temporarily_unavailable',
        "$id at $home, the 4th request of the hour");
    $r = token_at($away, $APP{$away}{$id}, path => '/rl/token/');
    is($r->{status}, 200, "$id at $away\'s 3/h location right after: 200");
    is(hdr($r, 'X-RateLimit-Remaining'), 2, "$id at $away: its own count, "
        . 'X-RateLimit-Remaining 2');
}

######################################## the admin daemon

# --max-sessions 4: the page sessions below fill the table
$t->run_daemon('--pbkdf2-iterations', PBKDF2, '--max-sessions', 4);
my $DP = $t->daemon_port;

sub api_at {
    my ($realm, $method, $path, %o) = @_;
    return $t->api($method, $path, port => $PORT{$realm}, %o);
}
sub detail {
    my ($r) = @_;
    return ref $r->{json} eq 'HASH' ? $r->{json}{detail} : undef;
}
sub usernames {
    my ($r) = @_;
    return [sort map { $_->{username} }
        @{((ref $r->{json} eq 'HASH' ? $r->{json} : {})->{results}) // []}];
}
sub client_ids {
    my ($r) = @_;
    return [sort map { $_->{client_id} }
        @{((ref $r->{json} eq 'HASH' ? $r->{json} : {})->{results}) // []}];
}

# the staff users sign in with their shop's first-party application
my (%BOSS, %OPS);
for my $shop (@SHOPS) {
    my $r = password_at($shop, $APP{$shop}{console}, $STAFF{$shop},
        $PW{$shop}{$STAFF{$shop}});
    is($r->{status}, 200, "$STAFF{$shop} (staff of $shop) gets a token at "
        . "$shop") or diag($r->{raw});
    $BOSS{$shop} = ($r->{json} // {})->{access_token} // '';
    $OPS{$shop} = access_at($shop, $APP{$shop}{ops}, scope => 'admin');
    push @secrets, $BOSS{$shop};
}
$OPS{default} = access_at('default', $APP{default}{ops}, scope => 'admin');

my %USERS = (shop1 => [qw(alice boss1 only1)],
    shop2 => [qw(alice boss2 only2)], default => ['alice']);
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $boss = $STAFF{$home};
    my $r = api_at($home, 'GET', '/api/users/', token => $BOSS{$home});
    is($r->{status}, 200, "$boss lists the users at $home: 200");
    is_deeply(usernames($r), $USERS{$home},
        "$home\'s /api/users/ lists only $home\'s users");
    $r = api_at($home, 'GET', '/auth/me/', token => $BOSS{$home});
    is(($r->{json} // {})->{username}, $boss, "$home\'s /auth/me/ is $boss");
    $r = api_at($home, 'GET', '/api/applications/', token => $BOSS{$home});
    is($r->{status}, 200, "$boss lists the applications at $home: 200");
    is_deeply(client_ids($r), $CLI_APPS{$home},
        "$home\'s /api/applications/ lists exactly $home\'s applications");
    ok(!grep({ $_ eq $APP{$away}{console}{client_id} } @{client_ids($r)}),
        "$home\'s list has no application of $away");

    $r = api_at($away, 'GET', '/api/users/', token => $BOSS{$home});
    is($r->{status}, 401, "$boss\'s token at $away\'s /api/users/: 401");
    is(detail($r), 'Given token not valid for any token type',
        "$boss at $away: simplejwt's token_not_valid");
    is(api_at($away, 'GET', '/auth/me/', token => $BOSS{$home})->{status},
        401, "$boss\'s token at $away\'s /auth/me/: 401");
    is(api_at('default', 'GET', '/api/users/', token => $BOSS{$home})
        ->{status}, 401, "$boss\'s token at the default server: 401");
    is(api_at($away, 'GET', '/api/applications/', token => $OPS{$home})
        ->{status}, 401, "$home\'s admin application token at $away: 401");
    is(api_at($home, 'GET', '/api/applications/', token => $OPS{$home})
        ->{status}, 200, "$home\'s admin application token at $home: 200");

    # the client's own X-OAuth2-Realm never reaches the daemon
    $r = api_at($away, 'GET', '/api/users/', token => $BOSS{$home},
        headers => ['X-OAuth2-Realm' => $home]);
    is($r->{status}, 401, "$boss at $away sending X-OAuth2-Realm: $home "
        . 'himself: still 401 (nginx replaces the header, R87)');
    $r = api_at($away, 'GET', '/api/users/', token => $BOSS{$away},
        headers => ['X-OAuth2-Realm' => $home]);
    is($r->{status}, 200, "$STAFF{$away} at $away sending X-OAuth2-Realm: "
        . "$home: 200");
    is_deeply(usernames($r), $USERS{$away},
        "and the list is $away\'s users, not $home\'s");
}
{
    my $r = api_at('default', 'GET', '/api/users/', token => $OPS{default});
    is($r->{status}, 200, 'the default server (no X-OAuth2-Realm) lists '
        . 'users with a default-realm admin token');
    is_deeply(usernames($r), $USERS{default},
        'the default server lists only the default realm\'s users');
    # a client's X-OAuth2-Realm never reaches the daemon from the default
    # server either, which sets none (R87): it stays in "default"
    $r = api_at('default', 'GET', '/api/users/', token => $OPS{default},
        headers => ['X-OAuth2-Realm' => 'shop1']);
    is($r->{status}, 200, 'the default server, a client sending '
        . 'X-OAuth2-Realm: shop1: 200 with a default-realm admin token');
    is_deeply(usernames($r), $USERS{default},
        '... and the default realm\'s users, not shop1\'s');
    is(api_at('default', 'GET', '/api/users/', token => $OPS{default},
        headers => ['X-OAuth2-Realm' => 'nosuch'])->{status}, 200,
        '... a client sending X-OAuth2-Realm: nosuch: 200, not the daemon\'s '
        . '404 (the provider\'s realms cannot be listed)');
    is(api_at('shop1', 'GET', '/api/users/', token => $OPS{default})
        ->{status}, 401, 'a default-realm admin token at shop1: 401');
}

# a user created through shop1's API lands in shop1 only
{
    my $r = api_at('shop1', 'POST', '/api/users/', token => $BOSS{shop1},
        json => { username => 'newbie', password => 'Marble-tide-comet-44',
            email => 'newbie@shop1.example' });
    push @secrets, 'Marble-tide-comet-44';
    is($r->{status}, 201, 'boss1 creates "newbie" through shop1\'s API: 201');
    my ($c) = $t->admin('--realm', 'shop1', 'user', 'show', 'newbie');
    is($c, 0, 'newbie is in shop1 (user show --realm shop1)');
    ($c) = $t->admin('--realm', 'shop2', 'user', 'show', 'newbie');
    is($c, 1, 'newbie is not in shop2');
    ($c) = $t->admin('user', 'show', 'newbie');
    is($c, 1, 'newbie is not in the default realm');
    is(password_at('shop1', $APP{shop1}{'shared-pw'}, 'newbie',
        'Marble-tide-comet-44')->{status}, 200,
        'newbie signs in at shop1: 200');
    is(password_at('shop2', $APP{shop2}{'shared-pw'}, 'newbie',
        'Marble-tide-comet-44')->{status}, 400,
        'newbie is unknown at shop2: 400');
    push @{$USERS{shop1}}, 'newbie';
    @{$USERS{shop1}} = sort @{$USERS{shop1}};
}

# R47: a user registered at shop1's oauth2_register lands in shop1 only
{
    my $r = $t->post_form('/users/register/', OAuth2Test::form(
        username => 'walker', password => 'Amber-quill-harbor-52',
        confirm_password => 'Amber-quill-harbor-52',
        email => 'walker@shop1.example'), P('shop1'));
    push @secrets, 'Amber-quill-harbor-52';
    is($r->{status}, 201, 'walker registers at shop1\'s oauth2_register: 201')
        or diag($r->{raw});
    my ($c) = $t->admin('--realm', 'shop1', 'user', 'show', 'walker');
    is($c, 0, 'walker is in shop1 (user show --realm shop1)');
    ($c) = $t->admin('user', 'show', 'walker');
    is($c, 1, 'walker is not in the default realm');
    ($c) = $t->admin('--realm', 'shop2', 'user', 'show', 'walker');
    is($c, 1, 'walker is not in shop2');
    is(password_at('shop1', $APP{shop1}{'shared-pw'}, 'walker',
        'Amber-quill-harbor-52')->{status}, 200,
        'walker signs in where he registered, at shop1: 200');
    push @{$USERS{shop1}}, 'walker';
    @{$USERS{shop1}} = sort @{$USERS{shop1}};
}

# the application $id is in shop1's realm, and in neither shop2's nor the
# default one (app show --realm)
sub in_shop1_only_ok {
    my ($id, $what) = @_;
    my %want = (shop1 => 0, shop2 => 1, default => 1);
    for my $realm (qw(shop1 shop2 default)) {
        my ($c) = $t->admin('--realm', $realm, 'app', 'show', $id);
        is($c, $want{$realm}, "$what: app show --realm $realm exits "
            . "$want{$realm}");
    }
}

# an application registered through shop1's API lands in shop1 only
{
    my $r = api_at('shop1', 'POST', '/api/applications/',
        token => $BOSS{shop1}, json => { name => 'api-made of shop1',
            grant_types => ['client_credentials'] });
    is($r->{status}, 201, 'boss1 registers an application through shop1\'s '
        . 'API: 201');
    my $id = ($r->{json} // {})->{client_id} // '';
    push @secrets, ($r->{json} // {})->{client_secret} // ();
    in_shop1_only_ok($id, 'an application made through shop1\'s API');
}

# the daemon itself: the header decides, checked
{
    my @u = ('GET', '/api/users/', port => $DP);
    my $r = $t->api(@u, token => $BOSS{shop1},
        headers => ['X-OAuth2-Realm' => 'shop1']);
    is($r->{status}, 200, 'the daemon with X-OAuth2-Realm: shop1 and '
        . 'boss1\'s token: 200');
    is_deeply(usernames($r), $USERS{shop1}, 'it lists shop1\'s users');
    $r = $t->api(@u, token => $BOSS{shop1});
    is($r->{status}, 401, 'the daemon without the header serves its --realm '
        . '(default): boss1\'s token 401');
    # two of them (a client's passed beside nginx's): which is meant is not
    # known, so neither is served
    $r = $t->api(@u, token => $BOSS{shop1},
        headers => ['X-OAuth2-Realm' => 'shop1', 'X-OAuth2-Realm' => 'shop1']);
    is($r->{status}, 400, 'two X-OAuth2-Realm headers: 400');
    is_deeply($r->{json}, { detail => 'More than one X-OAuth2-Realm header.' },
        'two X-OAuth2-Realm headers: the detail says so');
    $r = $t->api(@u, token => $OPS{default});
    is($r->{status}, 200, 'the daemon without the header: the default '
        . 'realm\'s token 200');
    for my $bad (['bad name!', 'a space and "!"'], ['x' x 65, '65 characters'],
        ['../shop1', 'a path'], ['shop1,shop2', 'two names'])
    {
        $r = $t->api(@u, token => $BOSS{shop1},
            headers => ['X-OAuth2-Realm' => $bad->[0]]);
        is($r->{status}, 400, "X-OAuth2-Realm with $bad->[1]: 400");
        is_deeply($r->{json}, { detail => 'Invalid X-OAuth2-Realm header.' },
            "X-OAuth2-Realm with $bad->[1]: {\"detail\": \"Invalid "
            . 'X-OAuth2-Realm header."}');
    }
    $r = $t->api(@u, token => $BOSS{shop1},
        headers => ['X-OAuth2-Realm' => 'nosuch']);
    is($r->{status}, 404, 'X-OAuth2-Realm: nosuch (valid, not registered): '
        . '404');
    is_deeply($r->{json}, { detail => 'Unknown realm.' },
        'X-OAuth2-Realm: nosuch: {"detail": "Unknown realm."}');
}

# the application pages: a session of one shop is none in the other
sub page_login {
    my ($realm, $user, $pw) = @_;
    my $g = $t->get('/o/applications/login/', P($realm));
    my $csrf = OAuth2Test::cookies_of($g)->{oauth2_csrf}{value} // '';
    my $field = $g->{body} =~ /name="csrf" value="([^"]+)"/ ? $1 : '';
    my $r = $t->post_form('/o/applications/login/', OAuth2Test::form(
        csrf => $field, username => $user, password => $pw),
        Cookie => "oauth2_csrf=$csrf", P($realm));
    my $s = OAuth2Test::cookies_of($r)->{oauth2_session}{value};
    return ($r, defined $s && length $s ? "oauth2_session=$s" : undef);
}
my %PAGE;
for my $shop (@SHOPS) {
    my ($r, $s) = page_login($shop, $STAFF{$shop}, $PW{$shop}{$STAFF{$shop}});
    is($r->{status}, 303, "$STAFF{$shop} logs in to $shop\'s pages: 303");
    ok($s, "$STAFF{$shop} gets a session cookie at $shop");
    $PAGE{$shop} = $s // '';
    push @secrets, $PAGE{$shop};
}
for my $p (@PAIRS) {
    my ($home, $away) = @$p;
    my $r = $t->get('/o/applications/', Cookie => $PAGE{$home}, P($home));
    is($r->{status}, 200, "$home\'s page session at $home\'s list: 200");
    like($r->{body}, qr/console \Q$home\E/,
        "$home\'s page lists $home\'s applications");
    my $away_id = $APP{$away}{console}{client_id};
    unlike($r->{body}, qr/console \Q$away\E|\Q$away_id\E/,
        "$home\'s page shows no application of $away");
    $r = $t->get('/o/applications/', Cookie => $PAGE{$home}, P($away));
    is($r->{status}, 303, "$home\'s page session cookie at $away: 303, not "
        . 'a session');
    like(hdr($r, 'Location') // '', qr{^/o/applications/login/},
        "$home\'s session at $away: sent to the login page");
    my ($lr, $ls) = page_login($away, $STAFF{$home},
        $PW{$home}{$STAFF{$home}});
    is($lr->{status}, 400, "$STAFF{$home} logging in to $away\'s pages: 400");
    like($lr->{body}, qr/Please enter the correct username and password/,
        "$STAFF{$home} at $away: the wrong-credentials message");
    ok(!$ls, "$STAFF{$home} at $away: no session cookie");
}

# an application registered on shop1's pages lands in shop1 only (the
# sessions above ended when they were shown to the other shop)
{
    my %s;
    for my $shop (@SHOPS) {
        (undef, $s{$shop}) = page_login($shop, $STAFF{$shop},
            $PW{$shop}{$STAFF{$shop}});
        $s{$shop} //= '';
        push @secrets, $s{$shop};
    }
    my $g = $t->get('/o/applications/register/', Cookie => $s{shop1},
        P('shop1'));
    my $csrf = $g->{body} =~ /name="csrf" value="([^"]+)"/ ? $1 : '';
    my $r = $t->post_form('/o/applications/register/', OAuth2Test::form(
        csrf => $csrf, name => 'page-made of shop1',
        client_type => 'confidential', grant_client_credentials => 1),
        Cookie => $s{shop1}, P('shop1'));
    is($r->{status}, 200, 'boss1 registers an application on shop1\'s pages: '
        . '200');
    my $id = $r->{body} =~ /id="client_id">([^<]+)</ ? $1 : '';
    push @secrets, $r->{body} =~ /id="client_secret">([^<]+)</ ? $1 : ();
    in_shop1_only_ok($id, 'an application made on shop1\'s pages');
    $r = $t->get('/o/applications/', Cookie => $s{shop1}, P('shop1'));
    like($r->{body}, qr/page-made of shop1/, 'shop1\'s list shows it');
    $r = $t->get('/o/applications/', Cookie => $s{shop2}, P('shop2'));
    unlike($r->{body}, qr/page-made of shop1/, 'shop2\'s list does not');
}

# --max-sessions 4 (the four sessions above fill it): a full table makes room with the least recently used
# session of the one who signs in, else of the realm: the staff of one
# realm signing in again and again end their own sessions, never
# another realm's (README "Many sites": isolation)
{
    my ($r, $s2) = page_login('shop2', $STAFF{shop2}, $PW{shop2}{$STAFF{shop2}});
    push @secrets, $s2 // ();
    my @mine;
    for (1 .. 5) {
        my (undef, $s) = page_login('shop1', $STAFF{shop1}, $PW{shop1}{$STAFF{shop1}});
        push @mine, $s // '';
        push @secrets, $s // ();
    }
    $r = $t->get('/o/applications/', Cookie => $s2 // '', P('shop2'));
    is($r->{status}, 200, '--max-sessions 4: shop2\'s session outlives five '
        . 'sign-ins at shop1');
    $r = $t->get('/o/applications/', Cookie => $mine[-1], P('shop1'));
    is($r->{status}, 200, '... shop1\'s newest session is live');
    $r = $t->get('/o/applications/', Cookie => $mine[0], P('shop1'));
    is($r->{status}, 303, '... and its first one made room: the table holds 4');
}
######################################## realm delete

is(status_at('shop1', $CC{shop2}), 401, 'before the delete: shop2\'s token '
    . 'is unknown at shop1 (still)');
my $t1 = access_at('shop1', $APP{shop1}{'shared-cc'});
my $t2 = access_at('shop2', $APP{shop2}{'shared-cc'});
is(status_at('shop2', $t2), 200, 'before the delete: a shop2 token works at '
    . 'shop2');
my @before = store_keys();
ok((grep { index($_, 'shop2') >= 0 } @before) > 10,
    'before the delete: the store has keys of shop2 ('
    . scalar(grep { index($_, 'shop2') >= 0 } @before) . ')');
my $shop1_before = grep { index($_, 'shop1') >= 0 } @before;
# shop2's application records as mdb_dump prints them (to stage a delete
# that stops part way, below), and its users' highest id
my $shop2_clients = do {
    my ($c, $o, $e) = $t->_run_cmd('/usr/bin/mdb_dump', '-p', '-s', 'clients',
        $t->store);
    die "mdb_dump: exit $c: $e" if $c;
    my ($head, $data) = $o =~ /\A(.*?HEADER=END\n)(.*)DATA=END\n\z/s
        or die "mdb_dump: $o";
    my @l = split /\n/, $data;
    my $kept = '';
    for (my $i = 0; $i + 1 < @l; $i += 2) {
        $kept .= "$l[$i]\n$l[$i + 1]\n" if index($l[$i], 'shop2') >= 0;
    }
    "$head${kept}DATA=END\n";
};
my ($shop2_max_id) = sort { $b <=> $a }
    map { $_->{id} } @{cli_list('shop2', 'user') // []};

($code, $out, $err) = $t->admin('realm', 'delete', 'shop2');
is($code, 0, 'realm delete shop2 (nginx and the daemon running): exit 0')
    or diag($err);
my $del = dj($out) // {};
is_deeply([sort keys %$del], ['deleted_records', 'name'],
    'realm delete prints {"name", "deleted_records"}');
is($del->{name}, 'shop2', 'realm delete: name shop2');
ok(($del->{deleted_records} // '') =~ /^\d+$/ && $del->{deleted_records} > 10,
    "realm delete: deleted_records counts shop2's records ("
    . ($del->{deleted_records} // 'none') . ')');

my @after = store_keys();
# but the user id sequence and the applications' version (random bytes),
# which outlive the realm
my @left = grep { index($_, 'shop2') >= 0 && index($_, 'user_seq') < 0
        && index($_, 'clients_version') < 0 } @after;
is(scalar @left, 0, 'mdb_dump: no key of the store contains "shop2" (but '
    . 'its user id sequence and its applications\' version)')
    or diag(join "\n", @left[0 .. ($#left < 9 ? $#left : 9)]);
my $shop1_after = grep { index($_, 'shop1') >= 0 } @after;
ok($shop1_before > 0 && $shop1_after > 0,
    "shop1's keys are still there ($shop1_before before, $shop1_after after)");

is(status_at('shop1', $t1), 200, 'after the delete: shop1\'s token still '
    . 'validates through nginx');
is(status_at('shop2', $t2), 401, 'after the delete: shop2\'s token fails');
is(status_at('shop2', $CC{shop2}), 401, 'after the delete: shop2\'s older '
    . 'token fails too');
$t->oauth_error_ok(token_at('shop2', $APP{shop2}{'shared-cc'}), 401,
    'invalid_client', 'after the delete: shop2\'s application is gone');
is(password_at('shop1', $APP{shop1}{'shared-pw'}, 'alice',
    $PW{shop1}{alice})->{status}, 200,
    'after the delete: shop1\'s alice still signs in');
is_deeply(dj(($t->admin('realm', 'list'))[1]), ['default', 'shop1'],
    'realm list after the delete: ["default","shop1"]');
($code, $out, $err) = $t->admin('--realm', 'shop2', 'user', 'list');
is($code, 1, '--realm shop2 user list after the delete: exit 1');
like($err, qr/unknown realm 'shop2'/, 'it says unknown realm shop2');
is_deeply([sort map { $_->{username} } @{cli_list('shop1', 'user') // []}],
    $USERS{shop1}, 'shop1\'s users are all still there');
{
    my $r = api_at('shop2', 'GET', '/api/users/', token => $BOSS{shop2});
    is($r->{status}, 404, 'shop2\'s /api/users/ through nginx after the '
        . 'delete: 404');
    is_deeply($r->{json}, { detail => 'Unknown realm.' },
        'shop2\'s API after the delete: "Unknown realm."');
    $r = api_at('shop1', 'GET', '/api/users/', token => $BOSS{shop1});
    is($r->{status}, 200, 'shop1\'s API after the delete: 200');
}
($code, $out, $err) = $t->admin('realm', 'delete', 'shop2');
is($code, 1, 'realm delete shop2 a second time: exit 1 (unknown realm)');
($code, $out, $err) = $t->admin('realm', 'delete', 'default');
is($code, 1, 'realm delete default: exit 1');
like($err, qr/the default realm cannot be deleted/,
    'realm delete default: stderr says the default realm cannot be deleted');
is(status_at('default', access_at('default', $APP{default}{ops})), 200,
    'the default realm still serves after the refused delete');

# Records of shop2 in the store after its delete finished: nginx, still
# serving a server{} that names it, wrote them (shop2's application
# records put back under the unregistered name stage it).  realm add
# refuses to hand them to a new site unless the operator adopts them.
sub stage_shop2_records {
    my $dump = OAuth2Test::write_file($t->dir . '/shop2-clients.dump',
        $shop2_clients);
    my ($c, $o, $e) = $t->_run_cmd('/usr/bin/mdb_load', '-f', $dump,
        '-s', 'clients', $t->store);
    is($c, 0, 'staged: shop2\'s application records are back in the store')
        or diag("$o$e");
}
{
    stage_shop2_records();
    ($code, $out, $err) = $t->admin('realm', 'add', 'shop2');
    is($code, 1, 'realm add shop2 while records of the unregistered shop2 '
        . 'are in the store: exit 1');
    like($err, qr/records of the unregistered realm 'shop2' are in the store.*`oauth2-admin realm add shop2 --adopt`.*`oauth2-admin realm delete shop2`/s,
        '... saying so, and how to keep them or delete them');
    is_deeply(dj(($t->admin('realm', 'list'))[1]), ['default', 'shop1'],
        '... and shop2 is not registered');
    ($code, $out, $err) = $t->admin('realm', 'add', 'shop2', '--adopt');
    is($code, 0, 'realm add shop2 --adopt: exit 0') or diag($err);
    is_deeply(dj(($t->admin('realm', 'list'))[1]), ['default', 'shop1', 'shop2'],
        '... shop2 is registered');
    ok(@{cli_list('shop2', 'app') // []} >= 1,
        '... with the records it adopted (its applications are listed)');
    ($code, $out, $err) = $t->admin('realm', 'delete', 'shop2');
    is($code, 0, 'realm delete shop2 deletes it again: exit 0') or diag($err);
    cmp_ok((dj($out) // {})->{deleted_records} // 0, '>=', 1,
        '... with what it had adopted');
}

# A delete that stopped part way (killed, a store error): the realm is
# marked as being deleted until the delete finishes, and its records
# remain.  Adding shop2 again would hand them to the new site: refused,
# even with --adopt, until a second delete finishes the first.
{
    stage_shop2_records();
    my $dump = OAuth2Test::write_file($t->dir . '/shop2-deleting.dump',
        "VERSION=3\nformat=print\ntype=btree\nHEADER=END\n"
        . " realm-deleting:shop2\n 1\nDATA=END\n");
    my ($c, $o, $e) = $t->_run_cmd('/usr/bin/mdb_load', '-f', $dump,
        '-s', 'meta', $t->store);
    is($c, 0, 'staged: shop2 is marked as being deleted') or diag("$o$e");
    for my $adopt ([], ['--adopt']) {
        ($code, $out, $err) = $t->admin('realm', 'add', 'shop2', @$adopt);
        is($code, 1, "realm add shop2 @$adopt while its delete is unfinished: "
            . 'exit 1');
        like($err, qr/realm 'shop2' is being deleted .*realm delete shop2/,
            '... saying so, and how to finish the delete');
    }
    is_deeply(dj(($t->admin('realm', 'list'))[1]), ['default', 'shop1'],
        '... and shop2 is not registered');
    ($code, $out, $err) = $t->admin('realm', 'delete', 'shop2');
    is($code, 0, 'realm delete shop2 again finishes the delete: exit 0')
        or diag($err);
    cmp_ok((dj($out) // {})->{deleted_records} // 0, '>=', 1,
        '... deleting what was left');
}

# added again, the realm is empty
($code, $out, $err) = $t->admin('realm', 'add', 'shop2');
is($code, 0, 'realm add shop2 again after its delete: exit 0') or diag($err);
is_deeply(cli_list('shop2', 'user'), [], 'the new shop2 has no users');
is_deeply(cli_list('shop2', 'app'), [], 'the new shop2 has no applications');
is(status_at('shop2', $t2), 401, 'the old shop2 token stays dead');
($code, $out, $err) = $t->admin('--realm', 'shop2', 'user', 'add',
    '--username', 'newcomer', '--email', 'newcomer@shop2.test',
    '--password', 'Quiet-harbour-lamp-77', '--pbkdf2-iterations', PBKDF2);
is($code, 0, 'a user added to the new shop2') or diag($err);
cmp_ok((dj($out) // {})->{id} // 0, '>', $shop2_max_id,
    "... gets an id above the old shop2's ($shop2_max_id): OpenID Connect's "
    . 'sub is never reassigned');

######################################## nginx -t

my $tc = OAuth2Test->new;
sub realm_conf {
    my (%o) = @_;
    $tc->write_config(<<"EOF");
oauth2_store %%STORE%%;
@{[ $o{http} // '' ]}
server {
    listen 127.0.0.1:%%PORT%%;
    @{[ $o{server} // '' ]}
    location /p/ {
        auth_oauth2 api;
        @{[ $o{location} // '' ]}
        alias %%DIR%%/html/;
    }
}
EOF
    unlink $tc->dir . '/nginx-t.log';
    return $tc->nginx_t;
}
my $MSG = '1 to 64 letters, digits, ".", "-" or "_"';
for my $c (['"bad name!"', 'bad name!'], ['""', ''],
    ['x' x 65, 'x' x 65], ['shop/1', 'shop/1'])
{
    my ($arg, $shown) = @$c;
    ($code, $out) = realm_conf(server => "oauth2_realm $arg;");
    isnt($code, 0, "nginx -t: oauth2_realm $arg: fails");
    my $want = qq{invalid realm "$shown" in "oauth2_realm": $MSG};
    like($out, qr/\[emerg\] [^\n]*\Q$want\E/,
        "nginx -t: oauth2_realm $arg: the message of the spec") or diag($out);
}
($code, $out) = realm_conf(location => 'oauth2_realm shop1;');
isnt($code, 0, 'nginx -t: oauth2_realm in a location: fails');
like($out, qr/\[emerg\] [^\n]*"oauth2_realm" directive is not allowed here/,
    'nginx -t: oauth2_realm in a location: "directive is not allowed here"')
    or diag($out);
($code, $out) = realm_conf(server => "oauth2_realm $LONG;");
is($code, 0, 'nginx -t: a 64-character realm name: ok') or diag($out);
($code, $out) = realm_conf(http => 'oauth2_realm shop1;');
is($code, 0, 'nginx -t: oauth2_realm in http: ok') or diag($out);
($code, $out) = realm_conf(server => 'oauth2_realm never-registered;');
is($code, 0, 'nginx -t: a realm never registered with realm add: ok (nginx '
    . 'does not read the registry)') or diag($out);
$tc->{done} = 1;    # never started

######################################## the end

is($t->stop_daemon, 0, 'the daemon stops on SIGTERM: exit 0');
$t->daemon_log_ok(@secrets);

# serve --require-realm-header: a path whose location forgot the header is
# refused, never served in the default realm
$t->run_daemon('--pbkdf2-iterations', PBKDF2, '--require-realm-header');
{
    my @u = ('GET', '/api/users/', port => $DP);
    my $r = $t->api(@u, token => $OPS{default});
    is($r->{status}, 400, '--require-realm-header: no X-OAuth2-Realm: 400');
    is_deeply($r->{json}, { detail => 'X-OAuth2-Realm header required.' },
        '--require-realm-header: {"detail": "X-OAuth2-Realm header required."}');
    $r = $t->api(@u, token => $BOSS{shop1},
        headers => ['X-OAuth2-Realm' => 'shop1']);
    is($r->{status}, 200, '--require-realm-header: X-OAuth2-Realm: shop1 '
        . 'and boss1\'s token: 200');
    $r = $t->api(@u, token => $OPS{default},
        headers => ['X-OAuth2-Realm' => 'default']);
    is($r->{status}, 200, '--require-realm-header: X-OAuth2-Realm: default '
        . 'names the default realm: 200');
    $r = $t->api('GET', '/api/users/', port => $PORT{shop1},
        token => $BOSS{shop1});
    is($r->{status}, 200, '--require-realm-header: through nginx (which sets '
        . 'the header): 200');
}
# the answer to a registration in shop2 from a daemon without
# --open-registration: what a realm left closed must answer below
my $CLOSED = $t->api('POST', '/api/users/', port => $PORT{shop2}, json => {
    username => 'closed2', email => 'closed2@example.com',
    password => 'Shop-register-phrase-7' });
is($CLOSED->{status}, 401, 'without --open-registration: a registration '
    . 'in shop2: 401');
is($t->stop_daemon, 0, 'the second daemon stops on SIGTERM: exit 0');

# serve --open-registration=<realm>[,<realm>...]: anonymous registration
# (POST /api/users/ without a token) opens in the realms named only;
# every other realm answers as without the flag and gets no user (R69,
# R72); the bare flag opens every realm
sub register_at {
    my ($realm, $name) = @_;
    return $t->api('POST', '/api/users/', port => $PORT{$realm}, json => {
        username => $name, email => "$name\@example.com",
        password => 'Shop-register-phrase-7' });
}
sub listed_in {
    my ($realm, $name) = @_;
    return scalar grep { $_->{username} eq $name }
        @{cli_list($realm, 'user') // []};
}
$t->run_daemon('--pbkdf2-iterations', PBKDF2, '--require-realm-header',
    '--open-registration=shop1');
{
    my $r = register_at('shop1', 'reg1');
    is($r->{status}, 201, '--open-registration=shop1: a registration in '
        . 'shop1: 201') or diag($r->{body});
    ok(listed_in('shop1', 'reg1'), '... user list --realm shop1 shows reg1');
    $r = register_at('shop2', 'reg2');
    is($r->{status}, 401, '--open-registration=shop1: a registration in '
        . 'shop2: 401');
    is($r->{body}, $CLOSED->{body}, '... the same body as without the flag');
    is(hdr($r, 'WWW-Authenticate'), hdr($CLOSED, 'WWW-Authenticate'),
        '... and the same WWW-Authenticate');
    ok(!listed_in('shop2', 'reg2'), '... user list --realm shop2: no reg2');
    $r = $t->api('POST', '/api/users/', port => $DP,
        headers => ['X-OAuth2-Realm' => 'default'], json => {
            username => 'reg0', email => 'reg0@example.com',
            password => 'Shop-register-phrase-7' });
    is($r->{status}, 401, '--open-registration=shop1: a registration with '
        . 'X-OAuth2-Realm: default: 401');
    ok(!listed_in('default', 'reg0'), '... user list (default realm): no reg0');
    like(OAuth2Test::_slurp($t->daemon_log), qr/open registration in 'shop1'\n/,
        '... the daemon\'s first line names the realms open to registration');
}
is($t->stop_daemon, 0, 'the daemon with --open-registration=shop1 stops: exit 0');

# repeated and comma-separated: the union
$t->run_daemon('--pbkdf2-iterations', PBKDF2, '--require-realm-header',
    '--open-registration=nosuch,shop2', '--open-registration=default');
{
    my $r = register_at('shop2', 'reg2b');
    is($r->{status}, 201, '--open-registration=nosuch,shop2 '
        . '--open-registration=default: shop2: 201') or diag($r->{body});
    ok(listed_in('shop2', 'reg2b'), '... user list --realm shop2 shows reg2b');
    $r = register_at('shop1', 'reg1b');
    is($r->{status}, 401, '... shop1, named in neither: 401');
    is($r->{body}, $CLOSED->{body}, '... with the body of a closed realm');
    ok(!listed_in('shop1', 'reg1b'), '... user list --realm shop1: no reg1b');
}
is($t->stop_daemon, 0, 'that daemon stops: exit 0');

# the bare flag: every realm, as before
$t->run_daemon('--pbkdf2-iterations', PBKDF2, '--require-realm-header',
    '--open-registration');
for my $shop (@SHOPS) {
    my $r = register_at($shop, "any$shop");
    is($r->{status}, 201, "bare --open-registration: a registration in "
        . "$shop: 201") or diag($r->{body});
    ok(listed_in($shop, "any$shop"), "... user list --realm $shop shows any$shop");
}
like(OAuth2Test::_slurp($t->daemon_log), qr/open registration in every realm\n/,
    '... the daemon\'s first line says every realm');
is($t->stop_daemon, 0, 'the daemon with bare --open-registration stops: exit 0');

# a bad realm name refuses to start: exit 2, a usage error naming it
{
    my $listen = '127.0.0.1:' . $DP;
    for my $c (['=shop 1', "--open-registration: invalid realm 'shop 1': $MSG"],
        ['=shop1,bad/name', "--open-registration: invalid realm 'bad/name': $MSG"],
        ['=' . ('x' x 65), "--open-registration: invalid realm '" . ('x' x 65) . "'"],
        ['=shop1,', "--open-registration: invalid realm '': $MSG"],
        ['=,shop1', "--open-registration: invalid realm '': $MSG"],
        ['=', '--open-registration=: needs a value after "="'])
    {
        my ($arg, $want) = @$c;
        my ($c2, $o2, $e2) = $t->admin_within(5, 'serve', '--listen', $listen,
            "--open-registration$arg");
        is($c2, 2, "serve --open-registration$arg: exit 2 (usage)");
        like($e2, qr/\Q$want\E/, "serve --open-registration$arg: stderr says "
            . 'so') or diag($e2);
    }
    my ($c2, $o2, $e2) = $t->admin_within(5, 'serve', '--listen', $listen,
        '--open-registration', '--open-registration=shop1');
    is($c2, 2, 'serve --open-registration --open-registration=shop1: exit 2');
    like($e2, qr/--open-registration: .*both/,
        '... stderr says it was given both bare and with realms') or diag($e2);
    ($c2, $o2, $e2) = $t->admin_within(5, 'serve', '--listen', $listen,
        '--open-registration', 'shop1');
    is($c2, 2, 'serve --open-registration shop1 (no "="): exit 2');
    like($e2, qr/unexpected argument 'shop1'/,
        '... stderr: unexpected argument \'shop1\'') or diag($e2);
}

# serve --realm shop3, and shop3 deleted while it runs: a request without
# X-OAuth2-Realm, served in --realm, is refused as one naming an unknown
# realm is (404), and writes nothing under the name the registry no
# longer has (R69)
($code, $out, $err) = $t->admin('realm', 'add', 'shop3');
is($code, 0, 'realm add shop3: exit 0') or diag($err);
$t->run_daemon('--pbkdf2-iterations', PBKDF2, '--realm', 'shop3', '--open-registration');
{
    my $register = sub {
        my ($name) = @_;
        return $t->api('POST', '/api/users/', port => $DP, json => {
            username => $name, email => "$name\@example.com",
            password => 'Shop3-register-phrase-7' });
    };
    is($register->('early')->{status}, 201,
        'serve --realm shop3: a registration without X-OAuth2-Realm: 201');
    ($code, $out, $err) = $t->admin('realm', 'delete', 'shop3');
    is($code, 0, 'realm delete shop3 while the daemon serves it: exit 0')
        or diag($err);
    my $r = $register->('late');
    is($r->{status}, 404, 'after the delete: a registration in --realm shop3: 404');
    is_deeply($r->{json}, { detail => 'Unknown realm.' }, '... "Unknown realm."');
    $r = $t->get('/o/applications/', -port => $DP);
    is($r->{status}, 404, 'after the delete: the pages in --realm shop3: 404');
    $r = $t->api('GET', '/api/users/', port => $DP, token => $OPS{default},
        headers => ['X-OAuth2-Realm' => 'default']);
    is($r->{status}, 200, '... while X-OAuth2-Realm: default is still served');
    my @left = grep { index($_, 'shop3') >= 0 && index($_, 'user_seq') < 0 } store_keys();
    is(scalar @left, 0, 'mdb_dump: no record of shop3 was written after its delete')
        or diag(join "\n", @left);
}
is($t->stop_daemon, 0, 'the third daemon stops on SIGTERM: exit 0');
diag(sprintf 'realms.t ran in %.1f s', time - $T0) if $ENV{VERBOSE};
$t->done_testing;
