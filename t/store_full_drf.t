# A write that fails at a Django REST framework endpoint (seed 003's
# POST /api/token/ and /api/token/refresh/, seed 001's /users/register/)
# is answered in that endpoint's own shape: DRF's 503 {"detail", "code"}
# with Retry-After, the body the same endpoint gives when the store is not
# open at all, never the token endpoint's {"error":
# "temporarily_unavailable"} (R53: a 503, never a 200 of a token not
# stored; R77).  The store is made full (oauth2_store size=), as
# t/store_full.t does.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $K = $t->dir . '/keys';
$t->ec_key;
my $filler = $t->new_app(name => 'filler');
my $app = $t->new_app(name => 'pyauthservice',
    grant => ['password', 'refresh_token'], scope => 'read write');
my $PW = 'Lena-store-full-pass-1';
add_user($t, 'lena', $PW);

my $cid = $app->{client_id};
my $conf = $t->default_http(
    extra_http => "oauth2_expiry_cleanup off;\n"
        . "oauth2_pbkdf2_iterations " . PBKDF2 . ";\n"
        . "oauth2_client_auth_limit off;\n"
        . "oauth2_jwt_key $K/ec.pem;\n",
    extra_server => <<"EOF");
    location = /api/token/ { oauth2_jwt_token $cid; }
    location = /api/token/refresh/ { oauth2_jwt_refresh $cid; }
    # more registrations than the default limit, from one address
    location = /users/register/ { oauth2_register; oauth2_rate_limit off; }
EOF
$conf =~ s/oauth2_store %%STORE%%;/oauth2_store %%STORE%% size=1m;/ or die;
$t->write_config($conf)->run;

my $JSON = JSON::PP->new->canonical;
sub obtain {
    return $t->api('POST', '/api/token/',
        json => { username => 'lena', password => $PW });
}
sub refresh_jwt {
    return $t->api('POST', '/api/token/refresh/', json => { refresh => $_[0] });
}
my $n = 0;
sub register {
    $n++;
    return $t->post_form('/users/register/', OAuth2Test::form(
        username => "newcomer$n", password => 'Saffron-dune-47',
        confirm_password => 'Saffron-dune-47', is_active => 'true'));
}

# before it fills: each works, and a refresh JWT is kept for later
my $r = obtain();
is($r->{status}, 200, 'POST /api/token/ before the store fills: 200')
    or diag($r->{raw});
my $refresh = ($r->{json} // {})->{refresh} // '';
is(refresh_jwt($refresh)->{status}, 200,
    'POST /api/token/refresh/ before the store fills: 200');
is(register()->{status}, 201, 'POST /users/register/ before the store '
    . 'fills: 201');

# fill it with the token endpoint's tokens until one is refused
my $full;
for my $i (1 .. 20000) {
    my $r = $t->token($filler->{client_id}, $filler->{client_secret});
    next if $r->{status} == 200;
    $full = $r;
    last;
}
is($full && $full->{status}, 503, 'the store fills: the token endpoint '
    . 'answers 503');

# DRF's 503 of each endpoint: what the same endpoint answers when the
# store is not open (the endpoint table's failure, drf_failure)
my $UNAVAILABLE = { detail => 'The store is unavailable.',
    code => 'unavailable' };
sub drf_503_ok {
    my ($what, $try) = @_;
    # a small write may still find room in a page: tried until one fails
    my $r;
    for (1 .. 200) {
        $r = $try->();
        last if $r->{status} >= 300;
    }
    is($r->{status}, 503, "$what on a full store: 503") or diag($r->{raw});
    is_deeply($r->{json}, $UNAVAILABLE, "$what on a full store: DRF's "
        . $JSON->encode($UNAVAILABLE) . ', not the token endpoint\'s '
        . 'temporarily_unavailable') or diag($r->{raw});
    like(OAuth2Test::header($r, 'Retry-After') // '', qr/^\d+$/,
        "$what on a full store: Retry-After");
    like(OAuth2Test::header($r, 'Content-Type') // '',
        qr{^application/json}i, "$what on a full store: JSON");
}
drf_503_ok('POST /api/token/ (seed 003)', \&obtain);
drf_503_ok('POST /api/token/refresh/ (seed 003)', sub { refresh_jwt($refresh) });
drf_503_ok('POST /users/register/ (seed 001)', \&register);
like(OAuth2Test::_slurp($t->error_log),
    qr/\[error\].*answering 503: the store is full/,
    'error.log says why, at error');

$t->done_testing;
