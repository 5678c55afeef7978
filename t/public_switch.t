# R35: an application made public (PATCH client_type) loses everything
# its secret bound, device codes too: a device code approved (or pending)
# before the switch would otherwise be redeemed with the client_id alone,
# which a public client's is.  (Refresh tokens and codes:
# t/api_applications.t.)
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
my $tv = $t->new_app(name => 'tv', grant => [$GRANT, 'refresh_token'],
    scope => 'read');
my $staff = $t->new_app(name => 'staff-app', scope => 'read write admin');
$t->write_config(OAuth2Authorize::http_conf($t,
    extra_server => $t->daemon_locations . <<'EOF'))->run;
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device/ { oauth2_device; }
EOF
$t->run_daemon('--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
my $admin = $t->access_token($staff, scope => 'read write admin');

sub device_auth {
    return $t->post_form('/o/device_authorization/', OAuth2Test::form(
        client_id => $tv->{client_id}, client_secret => $tv->{client_secret},
        scope => 'read'))->{json};
}
sub poll {
    my ($code, $secret) = @_;
    return $t->post_form('/o/token/', OAuth2Test::form(grant_type => $GRANT,
        device_code => $code, client_id => $tv->{client_id},
        defined $secret ? (client_secret => $secret) : ()));
}
my $page = OAuth2Authorize->new($t, path => '/o/device/');
my $session = $page->login('', $user, $pw);
sub lookup {
    my ($uc) = @_;
    return $t->post_form('/o/device/', OAuth2Test::form(action => 'lookup',
        user_code => $uc, csrf_token => OAuth2Authorize::csrf_field(
            $t->get("/o/device/?user_code=$uc", Cookie => $session)) // ''),
        Cookie => $session);
}
sub approve {
    my ($uc) = @_;
    my $l = lookup($uc);
    return $t->post_form('/o/device/', OAuth2Test::form(action => 'approve',
        user_code => $uc, csrf_token => OAuth2Authorize::csrf_field($l) // ''),
        Cookie => $session);
}

my $approved = device_auth();
is(approve($approved->{user_code})->{status}, 200, 'a device code, approved');
my $pending = device_auth();
ok($pending->{user_code}, 'another, pending');
is(poll($pending->{device_code}, $tv->{client_secret})->{json}{error},
    'authorization_pending', '... which polls authorization_pending');

my $r = $t->api('PATCH', "/api/applications/$tv->{client_id}/",
    token => $admin, json => { client_type => 'public' });
is($r->{status}, 200, 'the application made public') or diag($r->{body});

$r = poll($approved->{device_code});
is($r->{status}, 400, 'the approved device code, with the client_id alone: 400');
is($r->{json}{error}, 'invalid_grant', '... invalid_grant: it went with the secret');
ok(!exists $r->{json}{access_token}, '... and no token');
$r = poll($pending->{device_code});
is($r->{json}{error}, 'invalid_grant', 'the pending one: invalid_grant');
$r = lookup($pending->{user_code});
unlike($r->{body} // '', qr/name="action" value="approve"/,
    'its user code no longer finds it at the device page');

# the public application's own device codes work
my $fresh = $t->post_form('/o/device_authorization/', OAuth2Test::form(
    client_id => $tv->{client_id}, scope => 'read'))->{json};
is(approve($fresh->{user_code})->{status}, 200, 'a new device code, approved');
is(poll($fresh->{device_code})->{status}, 200,
    '... redeems with the client_id, as a public client\'s does');

$t->done_testing;
