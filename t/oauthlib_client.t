# A real OAuth 2 client library from Debian against the module (issue 4
# "Done means"): python3-requests-oauthlib's OAuth2Session under
# /usr/bin/python3 with OAUTHLIB_INSECURE_TRANSPORT=1, for the
# authorization code with PKCE (public and confidential clients), refresh,
# password and client credentials (t/clients/oauthlib_flows.py).  Seeds
# 001 and 004; docs/security.md R25, R28, R32, R37, R41.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;
use ClientScript;
use OAuth2Authorize;

OAuth2Test::require_build();

my $PYTHON = '/usr/bin/python3';
if (system($PYTHON, '-c', 'import requests_oauthlib') != 0) {
    fail('the client test needs python3-requests-oauthlib: run '
        . 'scripts/install-deps');
    done_testing;
    exit;
}

my $t = OAuth2Test->new;
my ($user, $pw) = ('alice', 'alice & "her" password');
OAuth2Authorize::user_add($t, $user, $pw);
my $CB = 'https://client.example/cb';
my $public = $t->new_app(name => 'Library public',
    grant => ['authorization_code', 'refresh_token'], public => 1,
    redirect_uris => [$CB]);
my $web = $t->new_app(name => 'Library web',
    grant => ['authorization_code', 'refresh_token'],
    redirect_uris => [$CB]);
my $legacy = $t->new_app(name => 'Library legacy',
    grant => ['password', 'refresh_token']);
my $backend = $t->new_app(name => 'Library backend',
    grant => 'client_credentials');
$t->write_config(OAuth2Authorize::http_conf($t))->run;

my $base = 'http://127.0.0.1:' . $t->port;
my %cfg = (base => $base, username => $user, password => $pw,
    public => { client_id => $public->{client_id}, redirect_uri => $CB },
    web => { %$web{qw(client_id client_secret)}, redirect_uri => $CB },
    legacy => { %$legacy{qw(client_id client_secret)} },
    backend => { %$backend{qw(client_id client_secret)} });

my %all;
ClientScript::run('oauthlib_flows.py', \%cfg, \%all,
    { OAUTHLIB_INSECURE_TRANSPORT => '1' }, $PYTHON,
    "$FindBin::Bin/clients/oauthlib_flows.py");
my %res = %{ $all{'requests-oauthlib'} // {} };

my $T = JSON::PP::true;
my $F = JSON::PP::false;

# authorization code + S256 PKCE, public client: client_id only (R32)
my $r = $res{code_pkce_public} // {};
is($r->{exception}, undef, 'code+PKCE, public client: no exception');
is($r->{consent}, 'Authorize Library public?',
    'code+PKCE, public: the consent page asked about the app');
is($r->{state_ok}, $T, "code+PKCE, public: oauthlib's state came back");
is($r->{iss}, $base, 'code+PKCE, public: iss is the issuer (R23)');
is($r->{token_type}, 'Bearer', 'code+PKCE, public: a Bearer token');
is($r->{scope}, 'read write', 'code+PKCE, public: scope read write');
is($r->{refresh}, $T, 'code+PKCE, public: a refresh token');
is($r->{api}, 200, 'code+PKCE, public: OAuth2Session.get opens the API');
$r = $res{code_pkce_public_refresh} // {};
is($r->{exception}, undef, 'refresh, public client: no exception');
is($r->{new_access}, $T, 'refresh, public: a new access token');
is($r->{new_refresh}, $T, 'refresh, public: a new refresh token (R37)');
is($r->{scope}, 'read write', 'refresh, public: the same scope (R36)');
is($r->{api}, 200, 'refresh, public: the new token opens the API');

# the same with a confidential client and the library's HTTP Basic
$r = $res{code_pkce_basic} // {};
is($r->{exception}, undef, 'code+PKCE, confidential: no exception');
is($r->{state_ok}, $T, 'code+PKCE, confidential: the state came back');
is($r->{scope}, 'read write', 'code+PKCE, confidential: scope read write');
is($r->{api}, 200, 'code+PKCE, confidential: the token opens the API');
$r = $res{code_pkce_basic_refresh} // {};
is($r->{exception}, undef, 'refresh, confidential: no exception');
is($r->{new_refresh}, $T, 'refresh, confidential: rotated (R37)');
is($r->{api}, 200, 'refresh, confidential: the new token opens the API');
$r = $res{code_replay} // {};
is($r->{error}, 'invalid_grant',
    'the same code again: oauthlib raises invalid_grant (R27)');
is($r->{api}, 401,
    "after the replay the session's token is revoked (R28)");

# password (seed 001, R25)
$r = $res{password} // {};
is($r->{exception}, undef, 'password grant: no exception');
is($r->{token_type}, 'Bearer', 'password grant: a Bearer token');
is($r->{scope}, 'read write', 'password grant: scope read write');
is($r->{refresh}, $T, 'password grant: a refresh token (issue 4 item 3)');
is($r->{api}, 200, 'password grant: the token opens the API');
is($r->{refreshed}, $T, 'password grant: the refresh gives a new token');
is($r->{api_after_refresh}, 200, 'password grant: the new token works');
is(($res{password_wrong} // {})->{error}, 'invalid_grant',
    'a wrong password: oauthlib raises invalid_grant');

# client credentials (R41)
$r = $res{backend} // {};
is($r->{exception}, undef, 'client credentials: no exception');
is($r->{token_type}, 'Bearer', 'client credentials: a Bearer token');
is($r->{refresh}, $F, 'client credentials: no refresh token (R41)');
is($r->{api}, 200, 'client credentials: the token opens the API');
is(($res{backend_wrong} // {})->{error}, 'invalid_client',
    'a wrong client secret: oauthlib raises invalid_client');

$t->done_testing;
