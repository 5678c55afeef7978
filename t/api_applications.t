# The applications API of the admin daemon, through nginx (issue 3 item 3;
# seeds 000, 001; docs/security.md R22, R69, R70, R71, R72): register, show,
# edit, rotate the secret, delete; DOT's field shapes; who may do it; bad
# input that changes nothing; tokens that die with their application.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $admin_app = $t->new_app(name => 'admin', scope => 'read write admin');
# first-party: the staff user's token issued to it below acts as staff
# whatever its scope (R85)
my $plain_app = $t->new_app(name => 'plain', first_party => 1);
$t->write_config($t->default_http(
    extra_http => 'oauth2_client_auth_limit off;',
    extra_server => $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000, '--page-size', 2);

my $admin = $t->access_token($admin_app, scope => 'read write admin');
my $plain = $t->access_token($plain_app);
my @secrets = ($admin, $plain);

sub api { $t->api(@_) }
sub detail { my ($r) = @_; ref $r->{json} eq 'HASH' ? $r->{json}{detail} : undef }
sub all_apps { $t->api_all('/api/applications/', $admin) }

# a staff user and a plain user, with tokens
my ($root, $alice) = $t->staff_and_plain_users($admin,
    $plain_app->{client_id});
push @secrets, $root, $alice;

######################################################## register

my $r = api('POST', '/api/applications/', token => $admin, json => {
    name => 'worker', client_type => 'confidential',
    grant_types => ['client_credentials'], scope => 'read',
    access_token_ttl => 600 });
is($r->{status}, 201, 'register an application: 201');
my $w = $r->{json} // {};
is_deeply([sort keys %$w], [sort qw(client_id client_secret name
    client_type grant_types scope redirect_uris resources auth_method
    access_token_ttl access_token_format first_party dpop_bound_access_tokens
    post_logout_redirect_uris id_token_signed_response_alg
    created_at)],
    'the answer has the fields of app add');
like($w->{client_secret} // '', qr/^[A-Za-z0-9]{128}$/,
    'the secret: 128 alphanumerics, over 256 bits (R71)');
like($w->{client_id} // '', qr/^[A-Za-z0-9]{40}$/,
    'the client_id: 40 alphanumerics, as DOT');
is($w->{scope}, 'read', 'scope as given');
is($w->{access_token_ttl}, 600, 'access_token_ttl as given');
push @secrets, $w->{client_secret};
my $wid = $w->{client_id};

my $tr = $t->token($wid, $w->{client_secret});
is($tr->{status}, 200, 'the secret shown once gets a token at /o/token/');
is($tr->{json}{expires_in}, 600, 'with the application\'s lifetime');
is($tr->{json}{scope}, 'read', 'and its scope');
my $wtok = $tr->{json}{access_token};

$r = api('GET', "/api/applications/$wid/", token => $admin);
is($r->{status}, 200, 'GET the application: 200');
ok(!exists $r->{json}{client_secret}, 'GET never shows the secret again');
is($r->{json}{name}, 'worker', 'GET shows the name');
unlike($r->{body}, qr/\Q$w->{client_secret}\E|sha256\$/,
    'neither the secret nor its hash appear');

# DOT's shapes: one authorization_grant_type, redirect_uris a string
$r = api('POST', '/api/applications/', token => $admin, json => {
    name => 'web', client_type => 'public',
    authorization_grant_type => 'authorization-code',
    redirect_uris => 'https://app.example/cb com.example.app:/cb' });
is($r->{status}, 201, 'DOT shape (authorization-code, string of URIs): 201');
is_deeply($r->{json}{grant_types}, ['authorization_code', 'refresh_token'],
    'authorization-code maps to authorization_code and refresh_token');
is_deeply($r->{json}{redirect_uris},
    ['https://app.example/cb', 'com.example.app:/cb'],
    'the space-separated redirect_uris become a list');
is($r->{json}{client_secret}, undef, 'a public client has no secret (null)');
is($r->{json}{client_type}, 'public', 'client_type public');
my $web = $r->{json}{client_id};
$r = api('POST', '/api/applications/', token => $admin, json => {
    name => 'cc', authorization_grant_type => 'client-credentials' });
is($r->{status}, 201, 'DOT client-credentials: 201');
is_deeply($r->{json}{grant_types}, ['client_credentials'],
    'client-credentials maps to client_credentials');
is($r->{json}{client_type}, 'confidential',
    'client_type defaults to confidential');
push @secrets, $r->{json}{client_secret};
my $cc = $r->{json}{client_id};
$r = api('POST', '/api/applications/', token => $admin, json => {
    name => 'pw', authorization_grant_type => 'password',
    auth_method => 'client_secret_post' });
is_deeply($r->{json}{grant_types}, ['password', 'refresh_token'],
    'password maps to password and refresh_token');
is($r->{json}{auth_method}, 'client_secret_post', 'auth_method as given');
is($r->{json}{access_token_format}, undef,
    'access_token_format: null (the server\'s) unless given');
push @secrets, $r->{json}{client_secret};
$r = api('PATCH', "/api/applications/$r->{json}{client_id}/", token => $admin,
    json => { access_token_format => 'jwt' });
is($r->{json}{access_token_format}, 'jwt', 'PATCH access_token_format jwt');

######################################################## list

my $all = all_apps();
is(scalar @$all, 6, 'the list has the six applications');
ok(!(grep { exists $_->{client_secret} } @$all), 'the list shows no secret');
$r = api('GET', '/api/applications/', token => $admin);
is($r->{json}{count}, 6, 'count 6');
is(scalar @{$r->{json}{results}}, 2, '--page-size 2: two per page');
is($r->{json}{next}, 'http://localhost/api/applications/?page=2',
    'next is an absolute URL');
is(api('GET', '/api/applications/?page=4', token => $admin)->{status}, 404,
    'a page beyond the last: 404');

######################################################## edit

$r = api('PATCH', "/api/applications/$wid/", token => $admin, json => {
    name => 'worker 2', scope => 'read write', access_token_ttl => 1200 });
is($r->{status}, 200, 'PATCH name, scope, ttl: 200');
is($r->{json}{name}, 'worker 2', 'name changed');
is($r->{json}{scope}, 'read write', 'scope changed');
ok(!exists $r->{json}{client_secret}, 'PATCH shows no secret');
is($t->token($wid, $w->{client_secret})->{json}{expires_in}, 1200,
    'the new lifetime applies to the next token');
$r = api('PATCH', "/api/applications/$wid/", token => $admin,
    json => { access_token_ttl => undef });
is($r->{json}{access_token_ttl}, undef, 'access_token_ttl null: the default');
$r = api('PUT', "/api/applications/$wid/", token => $admin,
    json => { name => 'worker 3' });
is($r->{status}, 400, 'PUT without grants: 400');
is($r->{json}{grant_types}[0], 'This field is required.',
    'PUT requires grant_types');
$r = api('PUT', "/api/applications/$wid/", token => $admin, json => {
    name => 'worker 3', grant_types => ['client_credentials'] });
is($r->{status}, 200, 'PUT with name and grant_types: 200');
is($r->{json}{scope}, 'read write', 'PUT keeps the fields it does not name');
# DOT splits its string of redirect URIs on any run of whitespace
$r = api('PATCH', "/api/applications/$web/", token => $admin,
    json => {
        redirect_uris => ' https://a.example/cb  https://b.example/cb' });
is($r->{status}, 200,
    'PATCH redirect_uris as a string with a leading space and two spaces '
    . 'between: 200');
is_deeply($r->{json}{redirect_uris},
    ['https://a.example/cb', 'https://b.example/cb'],
    'the runs of spaces separate two URIs, no empty one');
is_deeply(api('GET', "/api/applications/$web/", token => $admin)
    ->{json}{redirect_uris}, ['https://a.example/cb', 'https://b.example/cb'],
    'GET shows the two URIs stored');
$r = api('PATCH', "/api/applications/$web/", token => $admin,
    json => { redirect_uris => ['https://new.example/cb'] });
is_deeply($r->{json}{redirect_uris}, ['https://new.example/cb'],
    'PATCH redirect_uris as a list');

# public -> confidential: a secret, shown once; and back
$r = api('PATCH', "/api/applications/$web/", token => $admin,
    json => { client_type => 'confidential' });
is($r->{status}, 200, 'public -> confidential: 200');
like($r->{json}{client_secret} // '', qr/^[A-Za-z0-9]{128}$/,
    'becoming confidential shows the new secret once');
push @secrets, $r->{json}{client_secret};
$r = api('PATCH', "/api/applications/$web/", token => $admin,
    json => { client_type => 'public' });
is($r->{json}{client_type}, 'public', 'confidential -> public: 200');

# R35: confidential -> public ends what its secret bound: a refresh
# token of before would be redeemed with the client_id alone
$r = api('POST', '/api/applications/', token => $admin, json => {
    name => 'turns-public', client_type => 'confidential',
    grant_types => ['authorization_code', 'password', 'refresh_token'],
    redirect_uris => ['https://turns.example/cb'] });
is($r->{status}, 201, 'a confidential application with refresh tokens');
my $turns = $r->{json};
push @secrets, $turns->{client_secret};
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => 'Velvet-kettle-orbit-28'),
    Authorization => $t->basic($turns->{client_id}, $turns->{client_secret}));
is($r->{status}, 200, '... a refresh token of alice\'s from it') or diag $r->{body};
my $turns_rt = $r->{json}{refresh_token} // '';
push @secrets, $turns_rt, $r->{json}{access_token} // ();
$r = api('PATCH', "/api/applications/$turns->{client_id}/", token => $admin,
    json => { client_type => 'public' });
is($r->{status}, 200, '... made public: 200');
$r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $turns_rt, client_id => $turns->{client_id}));
is($r->{status}, 400, 'its refresh token of before, with the client_id alone: 400');
is($r->{json}{error}, 'invalid_grant', '... invalid_grant: it went with the secret');

######################################################## rotate (R71)

my $old_secret = $w->{client_secret};
# every worker and thread that answers has the application decoded
# (Txn::get_client keeps it): the rotation must reach all of them
my @codes = map { $t->token($wid, $old_secret)->{status} } 1 .. 24;
is_deeply([grep { $_ != 200 } @codes], [], '24 tokens with the secret before the rotation');
$r = api('POST', "/api/applications/$wid/rotate-secret/", token => $admin);
is($r->{status}, 200, 'rotate-secret: 200');
my $new_secret = $r->{json}{client_secret} // '';
push @secrets, $new_secret;
like($new_secret, qr/^[A-Za-z0-9]{128}$/, 'rotate-secret shows a new secret');
isnt($new_secret, $old_secret, 'the new secret differs');
is($t->token($wid, $new_secret)->{status}, 200,
    'the new secret gets a token');
is($t->token($wid, $old_secret)->{status}, 401,
    'the old secret stops working at once');
@codes = map { ($t->token($wid, $old_secret)->{status}, $t->token($wid, $new_secret)->{status}) } 1 .. 24;
is_deeply([@codes[grep { $_ % 2 == 0 } 0 .. $#codes]], [(401) x 24],
    'the old secret refused 24 times over, whichever worker answers');
is_deeply([@codes[grep { $_ % 2 == 1 } 0 .. $#codes]], [(200) x 24],
    'the new secret accepted 24 times over');
is($t->bearer_get('/protected/', $wtok)->{status}, 200,
    'tokens issued before the rotation keep working');
$r = api('POST', "/api/applications/$web/rotate-secret/", token => $admin);
is($r->{status}, 400, 'rotate-secret of a public client: 400');
like(detail($r) // '', qr/public client has no secret/, 'with a reason');
$r = api('GET', "/api/applications/$wid/rotate-secret/", token => $admin);
is($r->{status}, 405, 'GET rotate-secret: 405');
is(OAuth2Test::header($r, 'Allow'), 'POST, OPTIONS',
    '405 with Allow: POST, OPTIONS');

######################################################## permissions (R69)

my %who = (anonymous => undef, alice => $alice, staff => $root,
    'admin app' => $admin, 'plain app' => $plain);
for my $c (['anonymous', 401], ['alice', 403], ['plain app', 403],
    ['staff', 200], ['admin app', 200])
{
    my ($caller, $status) = @$c;
    is(api('GET', '/api/applications/', token => $who{$caller})->{status},
        $status, "$caller lists applications: $status");
    is(api('GET', "/api/applications/$cc/",
        token => $who{$caller})->{status}, $status,
        "$caller reads an application: $status");
}
for my $c (['anonymous', 401], ['alice', 403], ['plain app', 403]) {
    my ($caller, $status) = @$c;
    my $tok = $who{$caller};
    is(api('POST', '/api/applications/', token => $tok, json => {
        name => 'x', grant_types => ['client_credentials'] })->{status},
        $status, "$caller registers an application: $status");
    is(api('PATCH', "/api/applications/$cc/", token => $tok,
        json => { name => 'x' })->{status}, $status,
        "$caller edits an application: $status");
    is(api('DELETE', "/api/applications/$cc/", token => $tok)->{status},
        $status, "$caller deletes an application: $status");
    is(api('POST', "/api/applications/$cc/rotate-secret/",
        token => $tok)->{status}, $status,
        "$caller rotates a secret: $status");
}
$r = api('POST', '/api/applications/', token => $root, json => {
    name => 'by staff', grant_types => ['client_credentials'] });
is($r->{status}, 201, 'a staff user registers an application: 201');
push @secrets, $r->{json}{client_secret};

######################################################## OPTIONS (DRF)

# DRF checks permissions before options(): staff only, as the views' other
# methods, 401 without a token; then SimpleMetadata's answer with an Allow
# that lists OPTIONS, as each 405's does
my %allow = (list => 'GET, POST, HEAD, OPTIONS',
    one => 'GET, PUT, PATCH, DELETE, HEAD, OPTIONS',
    rotate => 'POST, OPTIONS');
my %view = (list => ['/api/applications/', 'Application List'],
    one => ["/api/applications/$cc/", 'Application Instance'],
    rotate => ["/api/applications/$wid/rotate-secret/", 'Rotate Secret']);
for my $v (sort keys %view) {
    my ($path, $name) = @{$view{$v}};
    for my $c (['anonymous', 401], ['alice', 403], ['plain app', 403]) {
        my ($caller, $status) = @$c;
        is(api('OPTIONS', $path, token => $who{$caller})->{status}, $status,
            "$caller OPTIONS $path: $status");
    }
    $t->api_options_ok($path, $who{$_}, $allow{$v}, $name, $_)
        for 'staff', 'admin app';
}
is($t->token($wid, $new_secret)->{status}, 200,
    'OPTIONS rotate-secret rotated nothing: the secret still works');
$r = api('DELETE', '/api/applications/', token => $admin);
is($r->{status}, 405, 'DELETE the list: 405');
is(OAuth2Test::header($r, 'Allow'), $allow{list}, "405: Allow: $allow{list}");
$r = api('POST', "/api/applications/$cc/", token => $admin, json => {});
is($r->{status}, 405, 'POST to an application: 405');
is(OAuth2Test::header($r, 'Allow'), $allow{one}, "405: Allow: $allow{one}");

######################################################## bad input (R72)

my $before = all_apps();
my @bad = (
    ['no name', { grant_types => ['client_credentials'] }, 'name',
        qr/^This field is required\.$/],
    ['blank name', { name => ' ', grant_types => ['client_credentials'] },
        'name', qr/^This field may not be blank\.$/],
    ['name of 256 characters', { name => 'n' x 256,
        grant_types => ['client_credentials'] }, 'name',
        qr/no more than 255 characters/],
    ['control character in name', { name => "a\x07b",
        grant_types => ['client_credentials'] }, 'name', qr/Control/],
    ['no grant', { name => 'x' }, 'grant_types',
        qr/^This field is required\.$/],
    ['grant_types a string', { name => 'x',
        grant_types => 'client_credentials' }, 'grant_types',
        qr/list/],
    ['empty grant_types', { name => 'x', grant_types => [] },
        'grant_types', qr/may not be empty/],
    ['unknown grant', { name => 'x', grant_types => ['implicit'] },
        'grant_types', qr/not a valid choice/],
    ['DOT implicit', { name => 'x', authorization_grant_type => 'implicit',
        redirect_uris => 'https://a.example/cb' },
        'authorization_grant_type', qr/not a valid choice/],
    ['DOT openid-hybrid', { name => 'x',
        authorization_grant_type => 'openid-hybrid' },
        'authorization_grant_type', qr/not a valid choice/],
    ['both grant fields', { name => 'x', grant_types => ['password'],
        authorization_grant_type => 'password' }, 'non_field_errors',
        qr/not both/],
    ['public client_credentials', { name => 'x', client_type => 'public',
        grant_types => ['client_credentials'] }, 'client_type',
        qr/RFC 6749 4\.4/],
    ['public with auth_method', { name => 'x', client_type => 'public',
        grant_types => ['authorization_code'],
        auth_method => 'client_secret_basic' }, 'auth_method',
        qr/public client has no secret/],
    ['unknown client_type', { name => 'x', client_type => 'secret',
        grant_types => ['password'] }, 'client_type',
        qr/not a valid choice/],
    ['unknown auth_method', { name => 'x', grant_types => ['password'],
        auth_method => 'private_key_jwt' }, 'auth_method',
        qr/not a valid choice/],
    ['unknown access_token_format', { name => 'x',
        grant_types => ['password'], access_token_format => 'paseto' },
        'access_token_format', qr/not a valid choice/],
    ['access_token_format not a string', { name => 'x',
        grant_types => ['password'], access_token_format => 1 },
        'access_token_format', qr/valid string/],
    ['javascript: redirect URI', { name => 'x',
        grant_types => ['authorization_code'],
        redirect_uris => ['javascript:alert(1)'] }, 'redirect_uris',
        qr/valid URI/],
    ['http redirect URI to a host', { name => 'x',
        grant_types => ['authorization_code'],
        redirect_uris => 'http://evil.example/cb' }, 'redirect_uris',
        qr/valid URI/],
    ['redirect URI with a fragment', { name => 'x',
        grant_types => ['authorization_code'],
        redirect_uris => ['https://a.example/cb#x'] }, 'redirect_uris',
        qr/valid URI/],
    ['redirect_uris a number', { name => 'x', grant_types => ['password'],
        redirect_uris => 5 }, 'redirect_uris', qr/list/],
    ['malformed scope', { name => 'x', grant_types => ['password'],
        scope => 'read  write' }, 'scope', qr/RFC 6749 3\.3/],
    ['repeated scope', { name => 'x', grant_types => ['password'],
        scope => 'read read' }, 'scope', qr/RFC 6749 3\.3/],
    ['ttl 0', { name => 'x', grant_types => ['password'],
        access_token_ttl => 0 }, 'access_token_ttl',
        qr/greater than or equal to 1/],
    ['ttl over ten years', { name => 'x', grant_types => ['password'],
        access_token_ttl => 315360001 }, 'access_token_ttl',
        qr/less than or equal to 315360000/],
    ['ttl a string', { name => 'x', grant_types => ['password'],
        access_token_ttl => '60' }, 'access_token_ttl',
        qr/valid integer/],
    ['ttl a float', { name => 'x', grant_types => ['password'],
        access_token_ttl => 60.5 }, 'access_token_ttl', qr/valid integer/],
    # discovery offers RS256, ES256 and EdDSA for id_tokens: "none" is
    # no signature, HS256 the HMAC key the server also holds
    ['id_token alg "none"', { name => 'x', grant_types => ['password'],
        id_token_signed_response_alg => 'none' },
        'id_token_signed_response_alg', qr/not a valid choice/],
    ['id_token alg "HS256"', { name => 'x', grant_types => ['password'],
        id_token_signed_response_alg => 'HS256' },
        'id_token_signed_response_alg', qr/not a valid choice/],
);
for my $c (@bad) {
    my ($name, $json, $field, $re) = @$c;
    my $r = api('POST', '/api/applications/', token => $admin,
        json => $json);
    is($r->{status}, 400, "$name: 400");
    like(ref $r->{json} eq 'HASH' && ref $r->{json}{$field} eq 'ARRAY'
        ? $r->{json}{$field}[0] : "(no $field in: $r->{body})", $re,
        "$name: the message is under \"$field\"");
}
my $dup = '{"name": "x", "grant_types": ["password"], '
    . '"redirect_uris": ["https://a.example/cb"], '
    . '"redirect_uris": ["https://evil.example/cb"]}';
$r = api('POST', '/api/applications/', token => $admin, body => $dup);
is($r->{status}, 400, 'duplicate redirect_uris keys: 400 (docs/security.md 2.4)');
like(detail($r) // '', qr/^JSON parse error - duplicate/,
    'duplicate keys: JSON parse error');
$r = api('POST', '/api/applications/', token => $admin,
    body => '{"name":' x 40 . '1' . '}' x 40);
is($r->{status}, 400, 'nested 40 deep: 400');
$r = api('POST', '/api/applications/', token => $admin,
    body => '{"name": "' . 'n' x 70000 . '"}');
is($r->{status}, 413, 'a 70 KB body: 413');
$r = api('POST', '/api/applications/', token => $admin,
    content_type => 'application/x-www-form-urlencoded',
    body => 'name=x&authorization_grant_type=password');
is($r->{status}, 415, 'a form body: 415');
$r = api('PATCH', "/api/applications/$cc/", token => $admin,
    json => { client_type => 'public' });
is($r->{status}, 400, 'PATCH a client_credentials app to public: 400');
$r = api('PATCH', "/api/applications/$cc/", token => $admin,
    json => { name => '' });
is($r->{status}, 400, 'PATCH a blank name: 400');
for my $path ('/api/applications/nope/', '/api/applications/nope/x/',
    '/api/applications/%00/', "/api/applications/$cc/rotate/",
    '/api/applications//', '/api/applications/%zz/')
{
    # at the daemon itself: nginx refuses %00 with its own 400
    my $r = api('GET', $path, token => $admin, port => $t->daemon_port);
    is($r->{status}, 404, "GET $path: 404");
    is(detail($r), 'Not found.', "GET $path: \"Not found.\"");
}
is(api('PATCH', '/api/applications/nope/', token => $admin,
    json => { name => 'x' })->{status}, 404, 'PATCH an unknown app: 404');
is(api('DELETE', '/api/applications/nope/', token => $admin)->{status}, 404,
    'DELETE an unknown app: 404');
is(api('POST', '/api/applications/nope/rotate-secret/',
    token => $admin)->{status}, 404, 'rotate an unknown app: 404');
is_deeply(all_apps(), $before, 'after all that bad input, nothing changed');

######################################################## delete (R70)

my $cc_secret;
$r = api('POST', '/api/applications/', token => $admin, json => {
    name => 'doomed', grant_types => ['client_credentials'] });
my $doomed = $r->{json}{client_id};
$cc_secret = $r->{json}{client_secret};
push @secrets, $cc_secret;
my $dtok = $t->access_token({ client_id => $doomed,
    client_secret => $cc_secret });
my $dutok = $t->issue_token($doomed, user => 'alice');
is($t->bearer_get('/protected/', $dtok)->{status}, 200,
    'the doomed application\'s token works');
is($t->bearer_get('/protected/', $dutok)->{status}, 200,
    'a user token of the doomed application works');
$r = api('DELETE', "/api/applications/$doomed/", token => $admin);
is($r->{status}, 204, 'DELETE the application: 204');
is($r->{body}, '', 'with an empty body');
is($t->bearer_get('/protected/', $dtok)->{status}, 401,
    'its token fails at nginx on the next request (R70)');
is($t->bearer_get('/protected/', $dutok)->{status}, 401,
    'its user tokens too (R70)');
is($t->token($doomed, $cc_secret)->{status}, 401,
    'its secret gets no token');
is(api('GET', "/api/applications/$doomed/", token => $admin)->{status}, 404,
    'GET the deleted application: 404');

######################################################## the admin app itself

$r = api('DELETE', "/api/applications/$admin_app->{client_id}/",
    token => $admin);
is($r->{status}, 204, 'the admin application deletes itself: 204');
is(api('GET', '/api/applications/', token => $admin)->{status}, 401,
    'and its token is dead at once: 401');

is($t->stop_daemon, 0, 'the daemon exits 0 on SIGTERM');
$t->daemon_log_ok(@secrets);
$t->done_testing;
