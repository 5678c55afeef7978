#!/usr/bin/perl
# The device authorization grant (RFC 8628, issue 14 item 3): the device
# authorization endpoint, the verification page behind the sign-in of the
# authorization endpoint, the token endpoint's polling answers, single use
# (R28-like replay revocation), binding to the client (R30), throttled
# user codes (R17), CSRF on the approval form, the metadata; the tokens
# it issues in oauth2_metrics under grant="device_code" (they were all
# counted as untracked); and oauth4webapi (npm) as the device while this
# test is the user.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IPC::Open3;
use Symbol qw(gensym);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();
my $t = OAuth2Test->new;
my $GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

OAuth2Authorize::user_add($t, 'alice', 'Violet-Kite-57');
OAuth2Authorize::user_add($t, 'mallory', 'Quartz-Lamp-93');
OAuth2Authorize::user_add($t, 'peggy', 'Quartz-Lamp-93');
OAuth2Authorize::user_add($t, $_, 'Quartz-Lamp-93') for 'eve', 'trudy', 'victor', 'walter', 'xena';
my $dev = $t->new_app(name => 'TV app', public => 1,
    grant => [$GRANT, 'refresh_token'], scope => 'read write');
my $conf = $t->new_app(name => 'Conf device', grant => [$GRANT]);
my $other = $t->new_app(name => 'Other', public => 1, grant => [$GRANT]);
my $cc = $t->new_app(name => 'cc only');
OAuth2Test::write_file($t->dir . "/html/index.html", "hello\n");

my $http = "oauth2_pbkdf2_iterations $OAuth2Authorize::PBKDF2;\n"
    . "oauth2_client_auth_limit 5 1m;\n";
my $server = <<'EOF2';
    location = /o/device_authorization/ { oauth2_device_authorization; }
    location = /o/device_short/ {
        oauth2_device_authorization;
        oauth2_device_code_ttl 1s;
    }
    location = /o/device/ { oauth2_device; }
    location = /o/device_unlimited/ {
        oauth2_device_authorization;
        oauth2_rate_limit off;
    }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
    location = /metrics { oauth2_metrics; }
EOF2
$t->write_config($t->default_http(extra_http => $http,
    extra_server => $server))->run;
my $issuer = 'http://127.0.0.1:' . $t->port;

sub device_auth {
    my ($app, %o) = @_;
    my @body = (client_id => $app->{client_id});
    push @body, client_secret => $app->{client_secret}
        if $app->{client_secret} && !$o{no_secret};
    push @body, @{$o{extra} // []};
    return $t->post_form($o{path} // '/o/device_authorization/',
        OAuth2Test::form(@body), $o{from} ? (-from => $o{from}) : ());
}

sub poll {
    my ($app, $code, @hdr) = @_;
    my @body = (grant_type => $GRANT, device_code => $code,
        client_id => $app->{client_id});
    push @body, client_secret => $app->{client_secret}
        if $app->{client_secret};
    return $t->post_form('/o/token/', OAuth2Test::form(@body), @hdr);
}

my $page = OAuth2Authorize->new($t, path => '/o/device/');
sub sign_in {
    my ($user, $pw, $from) = @_;
    return scalar $page->login('', $user, $pw);
}

# the verification page as a user: the code form, lookup, approve or deny
sub enter {
    my ($session, $code, %o) = @_;
    my @from = $o{from} ? (-from => $o{from}) : ();
    my $g = $t->get('/o/device/?user_code=' . ($o{query} // $code),
        Cookie => $session, @from);
    my $csrf = exists $o{csrf} ? $o{csrf}
        : OAuth2Authorize::csrf_field($g);
    my $l = $t->post_form('/o/device/', OAuth2Test::form(action => 'lookup',
        user_code => $code, defined $csrf ? (csrf_token => $csrf) : ()),
        Cookie => $session, @from);
    return ($l, $g) if $l->{status} != 200 || $o{lookup_only};
    my $d = $t->post_form('/o/device/', OAuth2Test::form(
        action => $o{action} // 'approve', user_code => $code,
        csrf_token => OAuth2Authorize::csrf_field($l) // ''),
        Cookie => $session, @from);
    return ($d, $l, $g);
}

# ------------------------------------------------------------ metadata
my $m = $t->get('/.well-known/oauth-authorization-server');
is($m->{json}{device_authorization_endpoint},
    "$issuer/o/device_authorization/", 'metadata names the endpoint');
ok((grep { $_ eq $GRANT } @{$m->{json}{grant_types_supported} // []}),
    'metadata lists the device_code grant');

# ------------------------------------------------- device authorization
my $r = device_auth($dev, extra => [scope => 'read']);
is($r->{status}, 200, 'device authorization: 200') or diag $r->{raw};
$t->no_store_ok($r, 'device authorization');
my $j = $r->{json};
like($j->{device_code}, qr/^[A-Za-z0-9_-]{43}$/, 'device_code');
like($j->{user_code}, qr/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/,
    'user_code: 8 characters of the RFC 8628 6.1 alphabet, XXXX-XXXX');
is($j->{verification_uri}, "$issuer/o/device/", 'verification_uri');
is($j->{verification_uri_complete}, "$issuer/o/device/?user_code=$j->{user_code}",
    'verification_uri_complete');
is($j->{expires_in}, 600, 'expires_in: oauth2_device_code_ttl default');
is($j->{interval}, 5, 'interval 5');
my $dump = join '', OAuth2Test::dump_store($t->store);
my $uc = $j->{user_code} =~ s/-//r;
ok(index($dump, $j->{device_code}) < 0 && index($dump, $uc) < 0
    && index($dump, $j->{user_code}) < 0,
    'neither code is stored in clear');

# polling before the user decides
my $p = poll($dev, $j->{device_code});
$t->oauth_error_ok($p, 400, 'authorization_pending', 'first poll');
$p = poll($dev, $j->{device_code});
$t->oauth_error_ok($p, 400, 'slow_down', 'a poll within the interval');
# R88: a poll within the interval is answered, not written: polling flat
# out (a public client's id and a device code it asked for are all it
# takes) costs the store nothing, the device record stays as it was
my @before = OAuth2Test::dump_store($t->store);
my %fast;
$fast{poll($dev, $j->{device_code})->{json}{error} // 'none'}++ for 1 .. 200;
is_deeply(\%fast, { slow_down => 200 }, '200 polls within the interval: each slow_down');
is_deeply([OAuth2Test::dump_store($t->store)], \@before,
    '... and none of them wrote anything to the store');
# RFC 8628 3.5: the device adds 5 s to its interval after a slow_down; the
# server holds it to the interval it gave, from its last poll that was not
# too fast
sleep 6;
$p = poll($dev, $j->{device_code});
$t->oauth_error_ok($p, 400, 'authorization_pending', 'a poll after the interval (6 s of 5 s)');
$p = poll($dev, $j->{device_code});
$t->oauth_error_ok($p, 400, 'slow_down', 'and one within the interval from it');

# another client cannot redeem it (R30)
$p = poll($other, $j->{device_code});
$t->oauth_error_ok($p, 400, 'invalid_grant', "another client's device code");

# the user: sign in, type the code (lowercase, no dash), approve
my $alice = sign_in('alice', 'Violet-Kite-57');
ok($alice, 'alice signed in at the verification page');
my $g = $t->get('/o/device/?user_code=' . $j->{user_code}, Cookie => $alice);
is($g->{status}, 200, 'code form');
like($g->{body}, qr/value="\Q$j->{user_code}\E"/, 'prefilled from ?user_code=');
my ($d, $l) = enter($alice, lc $uc);
is($l->{status}, 200, 'lookup: the approval page');
like($l->{body}, qr/TV app/, 'names the application');
like($l->{body}, qr/<li>read<\/li>/, 'names the scope');
unlike($l->{body}, qr/<li>write<\/li>/, 'only the scope asked');
is($d->{status}, 200, 'approved') or diag $d->{body};
like($d->{body}, qr/Device connected/, 'approved page');

# the device gets its pair, once
$p = poll($dev, $j->{device_code});
is($p->{status}, 200, 'after approval: tokens') or diag $p->{raw};
my $at = $p->{json}{access_token};
ok($p->{json}{refresh_token}, 'a refresh token (the client has refresh_token)');
is($p->{json}{scope}, 'read', 'scope as asked');
{
    my $body = $t->get('/metrics')->{body} // '';
    my $series = 'oauth2_tokens_issued_total{realm="default",client_id="'
        . $dev->{client_id} . '",grant="device_code"}';
    like($body, qr/^\Q$series\E 1$/m, 'oauth2_metrics: the device\'s token '
        . 'in its series, grant="device_code": 1') or diag($body);
    like($body, qr/^oauth2_tokens_issued_untracked_total 0$/m,
        '... and not as untracked');
}
is($t->bearer_get('/protected/index.html', $at)->{status}, 200,
    'the access token works');
my $rt = $p->{json}{refresh_token};
# a second redemption: refused, and what the first issued is revoked
$p = poll($dev, $j->{device_code});
$t->oauth_error_ok($p, 400, 'invalid_grant', 'device code redeemed twice');
is($t->bearer_get('/protected/index.html', $at)->{status}, 401,
    "the first redemption's access token is revoked");
$p = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'refresh_token',
    refresh_token => $rt // 'x', client_id => $dev->{client_id}));
is($p->{status}, 400, "... and its refresh token");

# the user code served once
($l) = enter($alice, $uc, lookup_only => 1);
is($l->{status}, 400, 'a used user code is not found again');

# ---------------------------------------------------- deny, expiry
$r = device_auth($dev);
($d) = enter($alice, $r->{json}{user_code}, action => 'deny');
like($d->{body}, qr/denied/i, 'deny page');
$t->oauth_error_ok(poll($dev, $r->{json}{device_code}), 400, 'access_denied',
    'after Deny');

$r = device_auth($dev, path => '/o/device_short/');
is($r->{json}{expires_in}, 1, 'oauth2_device_code_ttl 1s');
sleep 2;
$t->oauth_error_ok(poll($dev, $r->{json}{device_code}), 400, 'expired_token',
    'after expiry');
($l) = enter($alice, $r->{json}{user_code}, lookup_only => 1);
is($l->{status}, 400, 'an expired user code is not found');

# a confidential client authenticates; without its secret it is refused
$r = device_auth($conf);
is($r->{status}, 200, 'confidential client: 200');
my $cr = $r->{json};
$r = device_auth($conf, no_secret => 1);
is($r->{status}, 401, 'confidential client without its secret: 401');
$t->oauth_error_ok(device_auth($cc), 400, 'unauthorized_client',
    'a client not registered for the grant');
enter($alice, $cr->{user_code});
$p = poll($conf, $cr->{device_code});
is($p->{status}, 200, 'confidential client: tokens');
ok(!$p->{json}{refresh_token}, 'no refresh token without refresh_token grant');

# R46: a user disabled between approving and the device's poll: no tokens
my $peggy = sign_in('peggy', 'Quartz-Lamp-93');
$r = device_auth($conf);
($d) = enter($peggy, $r->{json}{user_code});
is($d->{status}, 200, 'peggy approves');
my ($xc, undef, $xe) = $t->admin('user', 'set', 'peggy', '--active', 'false');
is($xc, 0, 'then peggy is disabled') or diag $xe;
$t->oauth_error_ok(poll($conf, $r->{json}{device_code}), 400, 'invalid_grant',
    "a disabled user's approval issues nothing (R46)");

# DPoP (RFC 9449): the grant hook binds the device's tokens to its key
{
    my $key = $t->dir . '/device-key.pem';
    $r = device_auth($dev);
    enter($alice, $r->{json}{user_code});
    open my $fh, '-|', '/usr/bin/python3', "$FindBin::Bin/lib/dpop_proof.py", '--key', $key,
        '--htm', 'POST', '--htu', "$issuer/o/token/" or die "dpop_proof: $!";
    chomp(my $proof = <$fh> // '');
    close $fh;
    $p = poll($dev, $r->{json}{device_code}, DPoP => $proof);
    is($p->{status}, 200, 'redeemed with a DPoP proof') or diag $p->{raw};
    is($p->{json}{token_type}, 'DPoP', 'token_type DPoP');
    is($t->bearer_get('/protected/index.html', $p->{json}{access_token})->{status}, 401,
        'the DPoP-bound token is refused as a bearer token');
}

# ------------------------------------------------------- bad inputs
my $before = join '', OAuth2Test::dump_store($t->store);
$t->oauth_error_ok(device_auth($dev, extra => [scope => 'admin']), 400,
    'invalid_scope', 'a scope the client may not have');
$t->oauth_error_ok(device_auth($dev, extra => [resource => 'https://nope.example/']),
    400, 'invalid_target', 'a resource the client is not registered for');
$t->oauth_error_ok(device_auth({client_id => 'nope'}), 401, 'invalid_client',
    'an unknown client');
$r = $t->get('/o/device_authorization/');
is($r->{status}, 405, 'GET: 405');
$r = $t->post_form('/o/device_authorization/', 'client_id=a&client_id=b');
is($r->{status}, 400, 'a repeated parameter: 400');
for my $code ('', 'x' x 600, "\x01abc", 'unknown-device-code') {
    my $p = poll($dev, $code);
    is($p->{status}, 400, 'device_code ' . (length $code > 20 ? 'long' : "'$code'") . ': 400');
    like($p->{json}{error} // '', qr/^(invalid_request|invalid_grant)$/, '... its error');
}
$t->oauth_error_ok($t->post_form('/o/token/', OAuth2Test::form(grant_type => $GRANT,
    device_code => 'x', client_id => $cc->{client_id}, client_secret => $cc->{client_secret})),
    400, 'unauthorized_client', 'the grant by a client not registered for it');
is(join('', OAuth2Test::dump_store($t->store)), $before,
    'refused requests stored nothing');

# -------------------------------------------------------- CSRF, signed out
$r = device_auth($dev);
my $csrf_req = $r->{json};
($l) = enter($alice, $csrf_req->{user_code}, csrf => undef, lookup_only => 1);
is($l->{status}, 403, 'lookup without csrf_token: 403');
($l) = enter($alice, $csrf_req->{user_code}, csrf => 'A' x 43, lookup_only => 1);
is($l->{status}, 403, 'lookup with a wrong csrf_token: 403');
$d = $t->post_form('/o/device/', OAuth2Test::form(action => 'approve',
    user_code => $csrf_req->{user_code}, csrf_token => 'A' x 43), Cookie => $alice);
is($d->{status}, 403, 'approve with a wrong csrf_token: 403');
$d = $t->post_form('/o/device/', OAuth2Test::form(action => 'approve',
    user_code => $csrf_req->{user_code}));
is($d->{status}, 200, 'approve signed out: the sign-in page');
like($d->{body}, qr/Sign in/, '... the sign-in form');
$t->oauth_error_ok(poll($dev, $csrf_req->{device_code}), 400, 'authorization_pending',
    'none of these approved it');
$r = $t->post_form('/o/device/', 'a=1&a=2', Cookie => $alice);
is($r->{status}, 400, 'a malformed form: 400');

# a request of an application disabled since: its code names nothing
my $gone = $t->new_app(name => 'Disabled TV', public => 1, grant => [$GRANT]);
my $gone_req = device_auth($gone)->{json};
my ($gx, $gout, $gerr) = $t->admin('app', 'disable', $gone->{client_id});
is($gx, 0, 'the application is disabled') or diag $gerr;
($l) = enter($alice, $gone_req->{user_code}, lookup_only => 1);
is($l->{status}, 400, 'lookup of a disabled application\'s code: 400');
unlike($l->{body}, qr/Disabled TV/, '... its name is not shown');

# ------------------------------------------------ oauth4webapi as device
{
    my $dir = "$FindBin::Bin/clients/interop";
    ok(-d "$dir/node_modules/oauth4webapi" && -x '/usr/bin/node',
        'node and oauth4webapi are installed (scripts/install-deps)');
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, '/usr/bin/node', "$dir/device.mjs", $issuer,
        $dev->{client_id});
    close $in;
    my $line = <$out> // '';
    like($line, qr/^user_code (\S+) (\S+)/, 'oauth4webapi: a user code') or diag <$err>;
    my ($code, $complete) = $line =~ /^user_code (\S+) (\S+)/;
    is($complete, "$issuer/o/device/?user_code=$code", 'its verification_uri_complete');
    my $s = sign_in('alice', 'Violet-Kite-57');
    sleep 6;    # the device polls once before the user decides
    (my $ok) = enter($s, $code // '', from => '127.0.0.4');
    is($ok->{status}, 200, 'approved at the page');
    my $res = <$out> // '';
    waitpid $pid, 0;
    my ($json) = $res =~ /^result (.*)$/;
    my $o = JSON::PP->new->decode($json // '{}');
    is($o->{resource}, 200, 'oauth4webapi: its token works at the protected location')
        or diag $res;
    is($o->{endpoint}, "$issuer/o/device_authorization/", 'discovered the endpoint');
    ok($o->{refresh}, 'with a refresh token');
    ok((grep { $_ eq 'authorization_pending' } @{$o->{errors} // []}),
        'it heard authorization_pending while waiting');
}

# ------------------------------------------------------- throttle flood
# oauth2_client_auth_limit 5 1m: 5 wrong codes per user, 15 per address
# $n wrong user codes ($o{prefix} and a letter) posted by $session from
# $o{from}, the i-th with the action $o{action}->(i) ('lookup' without
# it): their statuses, in order
sub guess_codes {
    my ($session, $n, %o) = @_;
    my @from = $o{from} ? (-from => $o{from}) : ();
    my $csrf = OAuth2Authorize::csrf_field($t->get('/o/device/', Cookie => $session, @from));
    my $action = $o{action} // sub { 'lookup' };
    return map {
        $t->post_form('/o/device/', OAuth2Test::form(action => $action->($_),
            user_code => $o{prefix} . substr('BCDFGHJKLMNP', $_ - 1, 1),
            csrf_token => $csrf // ''), Cookie => $session, @from)->{status}
    } 1 .. $n;
}

# the place (from 1) of the first 429 among statuses
sub first_429 {
    my @s = @_;
    for my $i (0 .. $#s) { return $i + 1 if $s[$i] == 429 }
    return undef;
}

my $mal = sign_in('mallory', 'Quartz-Lamp-93');
my @st = guess_codes($mal, 12, prefix => 'BBBB-BBB');
is(scalar(grep { $_ == 400 } @st), 5, 'flood: 5 wrong codes answered');
is(first_429(@st), 6, 'flood: the 6th is throttled (429)');
# the flooder is refused even the right code while throttled
($l) = enter($mal, $csrf_req->{user_code}, lookup_only => 1);
is($l->{status}, 429, 'the throttled user cannot look up even a right code');
# alice, from another address, enters the right code and approves
($d) = enter($alice, $csrf_req->{user_code}, from => '127.0.0.2');
is($d->{status}, 200, 'another user from another address still approves');
is(poll($dev, $csrf_req->{device_code})->{status}, 200, '... and the device gets its tokens');
# guessing by approving (or denying) a code outright counts as well:
# the lookup is not the only way to try codes
@st = guess_codes(sign_in('victor', 'Quartz-Lamp-93'), 8, prefix => 'DDDD-DDD',
    from => '127.0.0.5', action => sub { $_[0] % 2 ? 'approve' : 'deny' });
is(scalar(grep { $_ == 400 } @st), 5, 'approve and deny flood: 5 wrong codes answered');
is(first_429(@st), 6, 'approve and deny flood: the 6th is throttled (429)');
# and per address: two more users there, 5 wrong approvals each, make
# the address's 15
guess_codes(sign_in($_, 'Quartz-Lamp-93'), 5, prefix => 'FFFF-FFF', from => '127.0.0.5',
    action => sub { 'approve' }) for 'walter', 'xena';
is($t->get('/o/device/', Cookie => $alice, -from => '127.0.0.5')->{status}, 429,
    'wrong approvals lock their address out as wrong lookups do (R17)');
# the address throttle: other users flooding from the same address meet
# the address's count (3 x 5 failures), which no new account resets
guess_codes(sign_in($_, 'Quartz-Lamp-93'), 5, prefix => 'CCCC-CCC') for 'eve', 'trudy';
$r = $t->get('/o/device/', Cookie => $alice);
is($r->{status}, 429, 'the flooding address is locked out (R17)');
like($r->{body}, qr{<h1>Too many attempts</h1>}, '... with a page that says why, not JSON');
like(OAuth2Test::header($r, 'Retry-After') // '', qr/^[1-9][0-9]*$/, '... and Retry-After');
$r = $t->get('/o/device/', Cookie => $alice, -from => '127.0.0.3');
is($r->{status}, 200, 'another address is not');

# ------------------------------------- the default rate limit (R83)
# A public client's device codes are written for anyone who sends its
# client_id: without oauth2_rate_limit, 60 a minute (and 1000 an hour)
# per client and address.  A flood in its name from one address neither
# stops the client at another address nor another client at this one.
my $tv = $t->new_app(name => 'Flood TV', public => 1, grant => [$GRANT]);
my $tv2 = $t->new_app(name => 'Other TV', public => 1, grant => [$GRANT]);
# the minute's window is aligned to the clock: start early in one; an
# address of its own (127.0.0.1 is throttled by the flood above)
my $into = time % 60;
sleep 61 - $into if $into > 40;
my $from = '127.0.0.6';
my @flood = map { device_auth($tv, from => $from) } 1 .. 61;
my @ok = grep { $_->{status} == 200 } @flood[0 .. 59];
is(scalar @ok, 60, 'default rate limit: 60 device authorizations a minute pass');
is(join(',', @{$flood[0]{headers}{'x-ratelimit-limit'} // []}), '60',
    '... each counted (X-RateLimit-Limit: 60)');
$t->oauth_error_ok($flood[60], 429, 'temporarily_unavailable', 'the 61st');
like(join(',', @{$flood[60]{headers}{'retry-after'} // []}), qr/^[1-9][0-9]*$/,
    '... with Retry-After');
unlike($flood[60]{raw}, qr/device_code/, '... and no device code in it');
is(device_auth($tv, from => '127.0.0.7')->{status}, 200,
    'the same client from another address is not limited');
is(device_auth($tv2, from => $from)->{status}, 200,
    'another client from the flooding address is not limited');
is(device_auth($tv, from => $from, path => '/o/device_unlimited/')->{status}, 200,
    'oauth2_rate_limit off: no default limit');

$t->done_testing;
