# R85 at the grants that redeem a stored grant: an authorization code and
# a device code issue the scope the user granted, narrowed to what the
# application may hold when it is redeemed.  Staff taking a scope from the
# application (the daemon's PATCH) between the grant and its redemption
# (a code's 60 s, a device code's minutes) takes it from the tokens too;
# nothing left of it is invalid_scope, and openid taken away means no
# id_token.  (The refresh grants: t/admin_scope.t, t/simplejwt_scope.t.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
my ($user, $pw) = ('alice', 'Violet-Kite-57');
OAuth2Authorize::user_add($t, $user, $pw);
my $CB = 'https://client.example/cb';
my $web = $t->new_app(name => 'web', grant => ['authorization_code', 'refresh_token'],
    scope => 'openid read write', redirect_uris => [$CB]);
my $tv = $t->new_app(name => 'tv', grant => [$GRANT, 'refresh_token'],
    scope => 'read write');
my $staff = $t->new_app(name => 'staff-app', scope => 'read write admin');
$t->ec_key;
my $K = $t->dir . '/keys';
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => "oauth2_jwt_key $K/ec.pem;\n",
    extra_server => $t->daemon_locations . <<'EOF'))->run;
    # the EC key signs id_tokens too: nginx -t wants their JWKS
    location = /o/jwks/ { oauth2_jwks; }
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device/ { oauth2_device; }
    location /writes/ {
        auth_oauth2 "api";
        auth_oauth2_scope write;
        alias %%DIR%%/html/;
    }
EOF
$t->run_daemon('--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
my $admin = $t->access_token($staff, scope => 'read write admin');

sub set_scope {
    my ($app, $scope) = @_;
    my $r = $t->api('PATCH', "/api/applications/$app->{client_id}/",
        token => $admin, json => { scope => $scope });
    is($r->{status}, 200, "the application's scope is now \"$scope\"")
        or diag($r->{body});
}

############################################################ a code

my $f = OAuth2Authorize->new($t);
my ($verifier, $challenge) = OAuth2Authorize::pkce();
sub q_for {
    return OAuth2Authorize::query(client_id => $web->{client_id},
        response_type => 'code', redirect_uri => $CB, scope => $_[0],
        state => 's', code_challenge => $challenge, code_challenge_method => 'S256');
}
my $session = $f->login(q_for('openid read write'), $user, $pw);
my $code = $f->code(q_for('openid read write'), $session);
set_scope($web, 'openid read');
my $r = $f->redeem($code, client => $web, redirect_uri => $CB, verifier => $verifier);
is($r->{status}, 200, 'the code redeems');
is($r->{json}{scope}, 'openid read',
    'its tokens lack write, taken from the application after the code (R85)');
ok($r->{json}{id_token}, '... and it has its id_token');
is($t->bearer_get('/writes/', $r->{json}{access_token})->{status}, 403,
    '... and the access token cannot write: 403');

set_scope($web, 'openid read write');
$code = $f->code(q_for('openid read write'), $session);
set_scope($web, 'read write');
$r = $f->redeem($code, client => $web, redirect_uri => $CB, verifier => $verifier);
is($r->{json}{scope}, 'read write', 'openid taken: the tokens lack it');
ok(!exists $r->{json}{id_token}, '... and no id_token');

set_scope($web, 'openid read write');
$code = $f->code(q_for('write'), $session);
set_scope($web, 'openid read');
$r = $f->redeem($code, client => $web, redirect_uri => $CB, verifier => $verifier);
is($r->{status}, 400, 'none of the code\'s scope left: 400');
is($r->{json}{error}, 'invalid_scope', '... invalid_scope');
ok(!exists $r->{json}{access_token}, '... and no token');

###################################################### a device code

sub device_auth {
    return $t->post_form('/o/device_authorization/', OAuth2Test::form(
        client_id => $tv->{client_id}, client_secret => $tv->{client_secret},
        scope => $_[0]));
}
sub poll {
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => $GRANT,
        device_code => $_[0], client_id => $tv->{client_id},
        client_secret => $tv->{client_secret}));
}
my $page = OAuth2Authorize->new($t, path => '/o/device/');
my $dsession = $page->login('', $user, $pw);
sub approve {
    my ($uc) = @_;
    my $l = $t->post_form('/o/device/', OAuth2Test::form(action => 'lookup',
        user_code => $uc, csrf_token => OAuth2Authorize::csrf_field(
            $t->get("/o/device/?user_code=$uc", Cookie => $dsession)) // ''),
        Cookie => $dsession);
    return $t->post_form('/o/device/', OAuth2Test::form(action => 'approve',
        user_code => $uc, csrf_token => OAuth2Authorize::csrf_field($l) // ''),
        Cookie => $dsession);
}

my $d = device_auth('read write')->{json};
ok($d->{device_code}, 'a device code for read write');
is(approve($d->{user_code})->{status}, 200, 'alice approves it');
set_scope($tv, 'read');
$r = poll($d->{device_code});
is($r->{status}, 200, 'the device code redeems');
is($r->{json}{scope}, 'read', 'its tokens lack write, taken since (R85)');
is($t->bearer_get('/writes/', $r->{json}{access_token})->{status}, 403,
    '... and cannot write: 403');

set_scope($tv, 'read write');
$d = device_auth('write')->{json};
approve($d->{user_code});
set_scope($tv, 'read');
$r = poll($d->{device_code});
is($r->{status}, 400, 'none of the device code\'s scope left: 400');
is($r->{json}{error}, 'invalid_scope', '... invalid_scope');
ok(!exists $r->{json}{access_token}, '... and no token');

$t->done_testing;
