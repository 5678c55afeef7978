# seed 002: a handshake is valid only while the configuration has its
# solution.  Removed (nginx -s reload), a handshake of that solution
# validates false at validate/ and opens no auth_oauth2 location; and so
# for every handshake once the handshake API itself is removed (its
# holders could no longer revoke them there).  Handshakes of the
# solutions kept go on.  The rule is the realm's, at validate/ as at
# auth_oauth2: a handshake of solution rental, made at a handshake
# location that has it, validates true at another location of the same
# server and key that has only solution shop (before, validate/ judged by
# its own location's solutions and said false there while auth_oauth2
# let the token in).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
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
    location /shop/handshake/ {
        oauth2_handshake;
        oauth2_handshake_solution shop fbs=fbs_shop_db;
    }
EOF2

# $base: the handshake location, /api/auth/ by default
sub hs {
    my ($call, $body, $base) = @_;
    $base //= '/api/auth';
    return $t->api('POST', "$base/handshake/$call", json => $body);
}
sub create {
    my ($solution, $base) = @_;
    my $r = hs('create/', { api_key => $key, system_name => 'rentals_django',
        solution_name => $solution }, $base);
    die "create: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{handshake};
}
# validate/'s answer
sub validate {
    my ($h, $base) = @_;
    return hs('validate/', { handshake_token => $h->{handshake_token},
        handshake_secret => $h->{handshake_secret} }, $base);
}
sub valid {
    my $r = validate(@_);
    return $r->{status} == 200 ? ($r->{json}{data}{valid} ? 1 : 0) : -1;
}
sub opens {
    my ($h) = @_;
    return $t->bearer_get('/protected/', $h->{handshake_token})->{status};
}

my $rental = create('rental');
my $hotel = create('hotel');
my $shop = create('shop', '/shop');
is(valid($rental), 1, 'a handshake of solution rental validates true');
is(opens($rental), 200, '... and opens an auth_oauth2 location');

# two handshake locations of one realm and key: a handshake is valid at
# both while either has its solution, as at auth_oauth2
my $r = validate($rental, '/shop');
is($r->{status}, 200, 'a rental handshake at the handshake location of '
    . 'solution shop alone: 200') or diag($r->{body});
is($r->{json}{data}{valid}, JSON::PP::true(), '... valid, as auth_oauth2 '
    . 'lets it in');
is($r->{json}{data}{database_name}, 'fbs_rental_db', '... with its '
    . "solution's database");
is(valid($shop), 1, 'a shop handshake (made at /shop/) validates true at the '
    . 'rental location too');
is(valid($shop, '/shop'), 1, '... and at its own');
is(opens($shop), 200, '... and opens the auth_oauth2 location');
is(hs('create/', { api_key => $key, system_name => 'rentals_django',
    solution_name => 'rental' }, '/shop')->{status}, 400,
    'create/ takes only the solutions of its own location: rental at /shop/ '
    . 'is 400');

# rental removed from the configuration
$t->edit_config(sub {
    s/\n\s*oauth2_handshake_solution rental fbs=fbs_rental_db;// });
$t->reload;
is(valid($rental), 0, 'rental removed (reload): its handshake validates '
    . 'false');
is(valid($rental, '/shop'), 0, '... at the other location too');
is(opens($rental), 401, '... and opens no auth_oauth2 location');
is(hs('create/', { api_key => $key, system_name => 'rentals_django',
    solution_name => 'rental' })->{status}, 400,
    '... and none is created for it');
is(valid($hotel), 1, 'a handshake of solution hotel, kept, validates true');
is(opens($hotel), 200, '... and opens the location');

is(valid($shop), 1, 'a shop handshake still validates true at the rental '
    . 'location');

# the handshake location of rental and hotel removed: its solutions with
# it, shop's kept
$t->edit_config(sub {
    s{\n\s*location /api/auth/handshake/ \{.*?\n\s*\}}{}s });
$t->reload;
is(opens($hotel), 401, 'the location of hotel removed: its handshake opens '
    . 'no auth_oauth2 location');
is(valid($hotel, '/shop'), 0, '... and validates false at the other');
is(opens($shop), 200, 'a shop handshake still opens it');

# the handshake API removed (its key kept at http level)
$t->edit_config(sub {
    s{\n\s*location /shop/handshake/ \{.*?\n\s*\}}{}s });
$t->reload;
is(opens($shop), 401, 'the handshake API removed: no handshake opens '
    . 'the location');
$t->done_testing;
