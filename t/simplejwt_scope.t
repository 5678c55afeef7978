# Seed 003's POST /api/token/refresh/ is bound by what its application may
# hold now, as the refresh_token grant is (docs/security.md R85; issue 4
# item 6): a scope taken from the application since the login is not
# issued again, and its refresh_token grant taken away ends its refresh
# JWTs (until the grant is given back: nothing is deleted).  The
# application is changed through the admin daemon's API, as staff do.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use MIME::Base64 qw(decode_base64url);
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';
$t->ec_key;
my $app = $t->new_app(name => 'pyauthservice',
    grant => ['password', 'refresh_token'], scope => 'read write payments');
my $staff = $t->new_app(name => 'staff-app', scope => 'read write admin');
my $pw = 'Tawny-Kettle-Anchor-5';
add_user($t, 'youruser', $pw);
my $cid = $app->{client_id};
$t->write_config($t->default_http(
    extra_http => "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n"
        . "oauth2_jwt_key $K/ec.pem;\n",
    extra_server => $t->daemon_locations . <<"EOF"))->run;
    location = /api/token/ { oauth2_jwt_token $cid; }
    location = /api/token/refresh/ { oauth2_jwt_refresh $cid; }
    location /payments/ {
        auth_oauth2 "api";
        auth_oauth2_scope payments;
        alias %%DIR%%/html/;
    }
EOF
$t->run_daemon('--pbkdf2-iterations', PBKDF2);
my $admin = $t->access_token($staff, scope => 'read write admin');
my $JSON = JSON::PP->new->canonical;

sub post_json {
    my ($path, $body) = @_;
    return $t->api('POST', $path, body => $JSON->encode($body));
}
sub scope_of {
    my ($jwt) = @_;
    my (undef, $payload) = split /\./, $jwt // '';
    my $c = eval { JSON::PP->new->decode(decode_base64url($payload // '')) };
    return ref $c eq 'HASH' ? $c->{scope} : undef;
}
sub patch_app {
    my ($body, $name) = @_;
    my $r = $t->api('PATCH', "/api/applications/$cid/", token => $admin,
        json => $body);
    is($r->{status}, 200, "PATCH the application: $name") or diag($r->{body});
}
sub payments { $t->bearer_get('/payments/', $_[0])->{status} }

my $r = post_json('/api/token/', { username => 'youruser', password => $pw });
is($r->{status}, 200, 'login: 200');
my $rt = $r->{json}{refresh};
is(scope_of($r->{json}{access}), 'read write payments',
    'the access token has the application\'s scope');
is(payments($r->{json}{access}), 200, 'it opens /payments/');

# staff take payments from the application
patch_app({ scope => 'read write' }, 'scope "read write"');
$r = post_json('/api/token/refresh/', { refresh => $rt });
is($r->{status}, 200, 'refresh after the scope was narrowed: 200');
is(scope_of($r->{json}{access}), 'read write',
    'the new access token lacks the scope taken from the application (R85)');
is(payments($r->{json}{access}), 403, '... and /payments/ refuses it: 403');

# a scope of the application's now that the login never had is not added
patch_app({ scope => 'read write payments admin' }, 'scope with admin added');
$r = post_json('/api/token/refresh/', { refresh => $rt });
is(scope_of($r->{json}{access}), 'read write payments',
    'a scope given to the application later is not added to the grant');

# nothing left of the grant's scope: refused
patch_app({ scope => 'reports' }, 'scope "reports"');
$r = post_json('/api/token/refresh/', { refresh => $rt });
is($r->{status}, 401, 'none of the grant\'s scope left: 401');
is(($r->{json} // {})->{code}, 'token_not_valid', '... token_not_valid');

# the refresh_token grant taken away
patch_app({ scope => 'read write payments',
    grant_types => ['password'] }, 'grant_types ["password"]');
$r = post_json('/api/token/refresh/', { refresh => $rt });
is($r->{status}, 401, 'refresh after the refresh_token grant was taken: 401');
is(($r->{json} // {})->{code}, 'token_not_valid', '... token_not_valid');
$r = post_json('/api/token/', { username => 'youruser', password => $pw });
ok($r->{json}{access} && !exists $r->{json}{refresh},
    'a login then gives an access token and no refresh token');

# given back: the same refresh token works again (nothing was deleted)
patch_app({ grant_types => ['password', 'refresh_token'] },
    'grant_types given back');
$r = post_json('/api/token/refresh/', { refresh => $rt });
is($r->{status}, 200, 'the grant given back: the refresh works again');
is(payments($r->{json}{access}), 200, '... and its token opens /payments/');

$t->done_testing;
