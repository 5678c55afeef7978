# seed 002: a handshake is valid only while the configuration has its
# solution.  Removed (nginx -s reload), a handshake of that solution
# validates false at validate/ and opens no auth_oauth2 location; and so
# for every handshake once the handshake API itself is removed (its
# holders could no longer revoke them there).  Handshakes of the
# solutions kept go on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'rentals', scope => 'read write');
my $key = $t->admin_json('apikey', 'add', $app->{client_id})->{api_key};
$t->write_config($t->default_http(
    extra_http => "oauth2_handshake_key %%DIR%%/handshake.key;\n",
    extra_server => <<'EOF2'))->run;
    location /api/auth/handshake/ {
        oauth2_handshake;
        oauth2_handshake_solution rental fbs=fbs_rental_db;
        oauth2_handshake_solution hotel fbs=fbs_hotel_db;
    }
EOF2

sub hs {
    my ($call, $body) = @_;
    return $t->api('POST', "/api/auth/handshake/$call", json => $body);
}
sub create {
    my ($solution) = @_;
    my $r = hs('create/', { api_key => $key, system_name => 'rentals_django',
        solution_name => $solution });
    die "create: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{handshake};
}
sub valid {
    my ($h) = @_;
    my $r = hs('validate/', { handshake_token => $h->{handshake_token},
        handshake_secret => $h->{handshake_secret} });
    return $r->{status} == 200 ? ($r->{json}{data}{valid} ? 1 : 0) : -1;
}
sub opens {
    my ($h) = @_;
    return $t->bearer_get('/protected/', $h->{handshake_token})->{status};
}

my $rental = create('rental');
my $hotel = create('hotel');
is(valid($rental), 1, 'a handshake of solution rental validates true');
is(opens($rental), 200, '... and opens an auth_oauth2 location');

# rental removed from the configuration
$t->edit_config(sub {
    s/\n\s*oauth2_handshake_solution rental fbs=fbs_rental_db;// });
$t->reload;
is(valid($rental), 0, 'rental removed (reload): its handshake validates '
    . 'false');
is(opens($rental), 401, '... and opens no auth_oauth2 location');
is(hs('create/', { api_key => $key, system_name => 'rentals_django',
    solution_name => 'rental' })->{status}, 400,
    '... and none is created for it');
is(valid($hotel), 1, 'a handshake of solution hotel, kept, validates true');
is(opens($hotel), 200, '... and opens the location');

# the handshake API removed (its key kept at http level)
$t->edit_config(sub {
    s{\n\s*location /api/auth/handshake/ \{.*?\n\s*\}}{}s });
$t->reload;
is(opens($hotel), 401, 'the handshake API removed: no handshake opens '
    . 'the location');
$t->done_testing;
