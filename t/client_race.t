# R35, R70: a write decided on an application as it was read commits only
# if the application is still that one.  A change to it (made public,
# deleted) that commits while a request waits for the thread pool must
# not be overtaken by that request's write: no refresh token for a client
# that is public now (its secret bound it), no code without PKCE for one
# that must use it, no code, consent or device code left under a deleted
# application.  Each request here waits behind a slow password hash that
# holds the pool's one thread, and the change is made meanwhile.  And a
# code sent to a redirect URI removed since is not redeemed (R19).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 1);
my ($PW, $SLOW) = ('Violet-Kite-57', 'Bob-slow-passphrase-2');
OAuth2Authorize::user_add($t, 'alice', $PW);
$t->admin_json('user', 'add', '--username', 'bob', '--email',
    'bob@example.com', '--password', $SLOW, '--pbkdf2-iterations', 4000000);
my $CB = 'https://client.example/cb';
my $DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
my $holder = $t->new_app(name => 'holder', grant => 'password');
my $staff = $t->new_app(name => 'staff', scope => 'read write admin');
sub web_app {
    my ($name) = @_;
    return $t->new_app(name => $name, scope => 'read write',
        grant => ['authorization_code', 'password', 'refresh_token', $DEVICE],
        redirect_uris => [$CB]);
}

$t->write_config(OAuth2Authorize::http_conf($t,
    extra_http => "oauth2_thread_pool one;\n",
    extra_server => $t->daemon_locations . <<'EOF'),
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device/ { oauth2_device; }
EOF
    main => "thread_pool one threads=1;\n")->run;
$t->run_daemon('--pbkdf2-iterations', $OAuth2Authorize::PBKDF2);
my $admin = $t->access_token($staff, scope => 'read write admin');
my $FORM = 'application/x-www-form-urlencoded';

# a wrong password of bob's: its hash holds the pool's one thread for
# seconds (a right one would rehash it to the setting's iterations)
sub hold_pool {
    return $t->send_async('POST', '/o/token/',
        [Authorization => $t->basic($holder->{client_id},
            $holder->{client_secret}), 'Content-Type' => $FORM],
        OAuth2Test::form(grant_type => 'password', username => 'bob',
            password => "$SLOW-wrong"));
}

# $send's request, queued behind the held thread while $change is made
sub race {
    my ($name, $send, $change) = @_;
    my $h = hold_pool();
    sleep 0.3;
    my $s = $send->();
    sleep 0.3;
    ok(!IO::Select->new($s)->can_read(0), "$name: the request waits");
    my $c = $change->();
    ok($c->{status} == 200 || $c->{status} == 204,
        "$name: the application changed meanwhile ($c->{status})");
    my ($r) = OAuth2Test::read_async($s);
    my ($hr) = OAuth2Test::read_async($h);
    is($hr->{status}, 400, "$name: (the slow guess that held the thread)");
    return $r;
}
sub make_public {
    my ($app) = @_;
    return sub { $t->api('PATCH', "/api/applications/$app->{client_id}/",
        token => $admin, json => { client_type => 'public' }) };
}
sub delete_app {
    my ($app) = @_;
    return sub { $t->api('DELETE', "/api/applications/$app->{client_id}/",
        token => $admin) };
}
# the store's records (tokens and their client index) naming a client
sub records_of {
    my ($client_id) = @_;
    my $n = 0;
    for my $db (qw(tokens client_tokens)) {
        my $dump = `mdb_dump -s $db -p '${\ $t->store}' 2>&1`;
        $n += () = $dump =~ /\Q$client_id\E/g;
    }
    return $n;
}

# alice's password grant, authenticated with $app's secret, sent
sub password_grant_async {
    my ($app) = @_;
    return $t->send_async('POST', '/o/token/',
        [Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
            'Content-Type' => $FORM],
        OAuth2Test::form(grant_type => 'password', username => 'alice',
            password => $PW));
}

# 1. a password grant, authenticated with the secret, answers after the
# application was made public: refused, and no refresh token (which the
# client_id alone would then rotate)
{
    my $app = web_app('pw');
    my $r = race('password grant, made public', sub { password_grant_async($app) }, make_public($app));
    $t->oauth_error_ok($r, 401, 'invalid_client',
        'password grant decided before the switch');
    ok(!defined(($r->{json} // {})->{refresh_token}),
        '... and no refresh token');
    is(records_of($app->{client_id}), 0, '... nothing stored under it');
}

# 2. the consent page's allow, for a confidential client without PKCE,
# answers after it was made public: no code (it would be redeemed with the
# client_id alone and no verifier); the browser asks again
my $f = OAuth2Authorize->new($t);
my $signin = web_app('signin');
my ($session, $lr) = $f->login(OAuth2Authorize::query(
    client_id => $signin->{client_id}, response_type => 'code',
    redirect_uri => $CB, scope => 'read'), 'alice', $PW);
ok($session, 'alice signed in') or diag($lr->{raw});
sub allow_async {
    my ($app) = @_;
    my $q = OAuth2Authorize::query(client_id => $app->{client_id},
        response_type => 'code', redirect_uri => $CB, scope => 'read write',
        state => 's');
    my $csrf = OAuth2Authorize::csrf_field($f->get($q, Cookie => $session));
    return ($q, sub {
        $t->send_async('POST', "/o/authorize/?$q",
            ['Content-Type' => $FORM, Cookie => $session],
            OAuth2Test::form(action => 'allow', csrf_token => $csrf // ''));
    });
}
{
    my $app = web_app('spa');
    my ($q, $send) = allow_async($app);
    my $r = race('allow, made public', $send, make_public($app));
    my %p = OAuth2Authorize::location_params($r);
    is($r->{status}, 303, 'allow decided before the switch: a redirect');
    ok(!defined $p{code}, '... without a code') or diag($r->{raw});
    like(OAuth2Test::header($r, 'Location') // '', qr{^\?client_id=},
        '... back to the authorization endpoint');
    is(records_of($app->{client_id}), 0, '... nothing stored under it');
}

# 3. the same, the application deleted: no code, and no remembered
# consent, left under a client_id that no longer exists
{
    my $app = web_app('gone');
    my ($q, $send) = allow_async($app);
    my $r = race('allow, deleted', $send, delete_app($app));
    my %p = OAuth2Authorize::location_params($r);
    ok(!defined $p{code}, 'allow decided before the deletion: no code')
        or diag($r->{raw});
    is(records_of($app->{client_id}), 0,
        '... nor any code or consent stored under the deleted client');
}

# 4. a device authorization answers after its application was deleted:
# refused as its authentication would be now, no device code left
{
    my $app = web_app('tv');
    my $r = race('device authorization, deleted', sub {
        $t->send_async('POST', '/o/device_authorization/',
            ['Content-Type' => $FORM], OAuth2Test::form(
                client_id => $app->{client_id},
                client_secret => $app->{client_secret}, scope => 'read'));
    }, delete_app($app));
    $t->oauth_error_ok($r, 401, 'invalid_client',
        'device authorization decided before the deletion');
    is(records_of($app->{client_id}), 0,
        '... no device code stored under the deleted client');
}

# 4b. a change of no term (a new name) while a grant waits: the grant
# goes on (as a secret hashed again, an imported one at its first use)
{
    my $app = web_app('renamed');
    my $r = race('password grant, renamed', sub { password_grant_async($app) }, sub { $t->api('PATCH', "/api/applications/$app->{client_id}/",
        token => $admin, json => { name => 'renamed-too' }) });
    is($r->{status}, 200, 'a password grant while its application is '
        . 'renamed: 200') or diag($r->{raw});
    ok(($r->{json} // {})->{refresh_token}, '... with its refresh token');
}

# 5. R19: a code sent to a redirect URI that the operator then removed
# (taken over, say) gets nothing; a code sent to one still registered is
# redeemed as before
{
    my $OLD = 'https://old.example/cb';
    my $app = $t->new_app(name => 'moved', scope => 'read',
        grant => ['authorization_code', 'refresh_token'],
        redirect_uris => [$OLD, $CB]);
    my %code;
    for my $uri ($OLD, $CB) {
        my $q = OAuth2Authorize::query(client_id => $app->{client_id},
            response_type => 'code', redirect_uri => $uri, scope => 'read',
            state => 's');
        $code{$uri} = $f->code($q, $session);
    }
    my $r = $t->api('PATCH', "/api/applications/$app->{client_id}/",
        token => $admin, json => { redirect_uris => [$CB] });
    is($r->{status}, 200, 'a redirect URI removed');
    $r = $f->redeem($code{$OLD}, client => $app, redirect_uri => $OLD);
    $t->oauth_error_ok($r, 400, 'invalid_grant',
        'a code sent to the removed URI before');
    $r = $f->redeem($code{$CB}, client => $app, redirect_uri => $CB);
    is($r->{status}, 200, 'a code sent to the URI still registered: 200')
        or diag($r->{raw});
}

# 6. unchanged, the same requests still work
{
    my $app = web_app('steady');
    my $r = $t->post_form('/o/token/', OAuth2Test::form(
        grant_type => 'password', username => 'alice', password => $PW),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}));
    is($r->{status}, 200, 'an unchanged application: the password grant');
    ok($r->{json}{refresh_token}, '... with its refresh token');
    my ($q, $send) = allow_async($app);
    my ($a) = OAuth2Test::read_async($send->());
    my %p = OAuth2Authorize::location_params($a);
    ok($p{code}, '... and the allow gives a code');
}

$t->stop_daemon;
$t->daemon_log_ok;
$t->done_testing;
