# oauth2_rate_limit (issue 5; seed 002's "Rate Limiting": 1000 requests
# per hour, a burst of 100 per minute, X-RateLimit-Limit, -Remaining and
# -Reset): fixed windows aligned to the clock, counted in shared memory by
# every worker, kept across a reload, keyed by API key, client or address
# (the handshake's create/ by API key, its validate/ and revoke/ by the
# caller's address); 429 in each endpoint's shape (docs/security.md R17, R54,
# R58).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Handle;
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Grants qw(PBKDF2);

OAuth2Test::require_build();

my $t = OAuth2Test->new(workers => 2);
my $hs_app = $t->new_app(name => 'handshakes', scope => 'read write');
my @keys = map { $t->admin_json('apikey', 'add', $hs_app->{client_id},
    '--name', "key$_") } 1 .. 5;
my ($ka, $kb, $kc, $kd, $ke) = map { $_->{api_key} } @keys;
my ($ta, $tb, $tc) = map { $t->new_app(name => "token-$_") } 1 .. 3;
my ($pa, $pb, $pc) = map { $t->new_app(name => "protected-$_") } 1 .. 3;
my $oa = $t->new_app(name => 'inherited');
my $pub = $t->new_app(name => 'public-rl', public => 1);
my $conf = $t->new_app(name => 'confidential-rl');

my $status_file = $t->dir . '/status.token';
my $status_token = 'status-token-' . ('s' x 24);
{
    open my $fh, '>', $status_file or die "$status_file: $!";
    print $fh $status_token;
    close $fh;
    chmod 0644, $status_file;
}

my $SOL = 'oauth2_handshake_solution rental fbs=fbs_rental_db '
    . 'django=djo_rental_db system=fbs_system_db;';
$t->write_config($t->default_http(
    extra_http => 'oauth2_pbkdf2_iterations ' . PBKDF2 . ';'
        . ' oauth2_handshake_key %%DIR%%/handshake.key;',
    extra_server => <<"EOF"));
    # the handshakes a test validates are made where nothing is counted
    location /free/handshake/ { oauth2_handshake; $SOL }
    location /api/auth/handshake/ {
        oauth2_handshake;
        $SOL
        oauth2_rate_limit 40/h;
    }
    location /burst/handshake/ {
        oauth2_handshake;
        $SOL
        oauth2_rate_limit 1000/h 5/m;
    }
    location /hour/handshake/ {
        oauth2_handshake;
        $SOL
        oauth2_rate_limit 1000/h;
    }
    location = /rl/token/ { oauth2_token; oauth2_rate_limit 3/h; }
    location = /rl/public-token/ { oauth2_token; oauth2_rate_limit 3/h; }
    location /rl/protected/ {
        auth_oauth2 api;
        oauth2_rate_limit 3/h;
        alias %%DIR%%/html/;
    }
    location /rl/dir/ {
        auth_oauth2 api;
        oauth2_rate_limit 5/h;
        alias %%DIR%%/html/;
    }
    location /rl/second/ {
        auth_oauth2 api;
        oauth2_rate_limit 2/s;
        alias %%DIR%%/html/;
    }
    location = /api/status/ {
        oauth2_status svc X-Status-Token $status_file;
        oauth2_rate_limit 2/h;
    }
    location = /users/register/ { oauth2_register; oauth2_rate_limit 2/h; }
    location = /rl/authorize/ { oauth2_authorize; oauth2_rate_limit 2/h; }
    location /inh/ {
        auth_oauth2 api;
        oauth2_rate_limit 1/d;
        alias %%DIR%%/html/;
        location /inh/free/ {
            oauth2_rate_limit off;
            alias %%DIR%%/html/;
        }
        location /inh/deep/ { alias %%DIR%%/html/; }
    }
EOF
$t->run;
is(scalar($t->worker_pids), 2, 'two workers');

sub hdr { OAuth2Test::header($_[0], $_[1]) }

sub guard_window { OAuth2Test::guard_window(@_) }

sub next_boundary { OAuth2Test::next_boundary(@_) }

sub create_at {
    my ($base, $api_key) = @_;
    my $r = $t->api('POST', "$base/create/", json => { api_key => $api_key,
        system_name => 'rl', solution_name => 'rental' });
    die "create: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{handshake};
}

# validate_at($base, $h, secret => '..', from => '127.0.0.N')
sub validate_at {
    my ($base, $h, %o) = @_;
    return $t->api('POST', "$base/validate/", json => {
        handshake_token => $h->{handshake_token},
        handshake_secret => $o{secret} // $h->{handshake_secret} },
        ($o{from} ? (from => $o{from}) : ()));
}

# create/ at $base with $api_key: the response
sub create_raw {
    my ($base, $api_key, %o) = @_;
    return $t->api('POST', "$base/create/", json => { api_key => $api_key,
        system_name => 'rl', solution_name => 'rental' },
        ($o{from} ? (from => $o{from}) : ()));
}

# X-RateLimit-Limit, -Remaining, -Reset of a response
sub rl {
    my ($r) = @_;
    return (hdr($r, 'X-RateLimit-Limit'), hdr($r, 'X-RateLimit-Remaining'),
        hdr($r, 'X-RateLimit-Reset'));
}

sub headers_ok {
    my ($r, $limit, $remaining, $reset, $name) = @_;
    my ($l, $m, $s) = rl($r);
    my $ok = is($l, $limit, "$name: X-RateLimit-Limit $limit");
    $ok &= is($m, $remaining, "$name: X-RateLimit-Remaining $remaining");
    $ok &= is($s, $reset, "$name: X-RateLimit-Reset $reset");
    diag($r->{raw}) unless $ok;
    return $ok;
}

sub retry_after_ok {
    my ($r, $window, $name) = @_;
    my $ra = hdr($r, 'Retry-After') // '';
    my $left = next_boundary($window) - int(time);
    my $ok = like($ra, qr/^[1-9]\d*$/, "$name: Retry-After in seconds");
    $ok &= ok($ra =~ /^\d+$/ && $ra <= $left + 1,
        "$name: Retry-After at most the rest of the window ($left s)");
    # and no less: a client that waits Retry-After is served (a window
    # that ends between the answer and this line leaves 2 s of slack)
    $ok &= ok($ra =~ /^\d+$/ && $ra >= $left - 2,
        "$name: Retry-After at least the rest of the window ($left s, got $ra)");
    return $ok;
}

# the envelope's 429
sub rate_limited_ok {
    my ($r, $window, $name) = @_;
    is($r->{status}, 429, "$name: 429");
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    ok(JSON::PP::is_bool($j->{success}) && !$j->{success},
        "$name: success false");
    is($j->{error_code}, 'RATE_LIMITED', "$name: error_code RATE_LIMITED");
    retry_after_ok($r, $window, $name);
    is(($j->{details} // {})->{retry_after}, hdr($r, 'Retry-After'),
        "$name: details.retry_after = Retry-After");
}

######################################## exactness across workers (40/h)

guard_window(3600, 35);
# validate/ is counted per address: 60 from this one
my $ha = create_at('/free/handshake', $ka);
my $reset_h = next_boundary(3600);
my $n_children = 6;
my $per_child = 10;
my $start_at = time + 0.5;
my @kids;
for my $c (1 .. $n_children) {
    pipe my $rd, my $wr or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        $wr->autoflush(1);
        sleep $start_at - time if $start_at > time;
        my $json = JSON::PP->new->canonical;
        for my $i (1 .. $per_child) {
            my $r = validate_at('/api/auth/handshake', $ha);
            my ($l, $m, $s) = rl($r);
            print $wr $json->encode({ status => $r->{status},
                limit => $l, remaining => $m, reset => $s,
                retry_after => hdr($r, 'Retry-After'),
                pid => hdr($r, 'X-Pid'), json => $r->{json} }), "\n";
        }
        close $wr;
        POSIX::_exit(0);    # no END blocks: they would stop nginx
    }
    close $wr;
    push @kids, [$pid, $rd];
}
my (@all, @per_child);
for my $k (@kids) {
    my ($pid, $rd) = @$k;
    my @mine = map { JSON::PP->new->decode($_) } <$rd>;
    close $rd;
    waitpid $pid, 0;
    push @per_child, \@mine;
    push @all, @mine;
}
is(scalar @all, 60, '60 validate requests from 6 parallel clients answered');
my @ok = grep { $_->{status} == 200 } @all;
my @limited = grep { $_->{status} == 429 } @all;
is(scalar @ok, 40, 'exactly 40 allowed (oauth2_rate_limit 40/h)');
is(scalar @limited, 20, 'exactly 20 refused with 429');
is(scalar(grep { $_->{status} != 200 && $_->{status} != 429 } @all), 0,
    'nothing but 200 and 429');
my %pids = map { ($_->{pid} // '') => 1 } @all;
ok(keys %pids >= 2, 'both workers answered (' . join(',', sort keys %pids)
    . ')');
is(scalar(grep { ($_->{limit} // '') ne '40' } @all), 0,
    'every response: X-RateLimit-Limit 40');
is_deeply([sort { $a <=> $b } map { $_->{remaining} // -1 } @ok],
    [0 .. 39], 'the allowed: X-RateLimit-Remaining exactly 39 down to 0, '
    . 'each once');
is(scalar(grep { ($_->{remaining} // '') ne '0' } @limited), 0,
    'the refused: X-RateLimit-Remaining 0');
is(scalar(grep { ($_->{reset} // '') ne $reset_h } @all), 0,
    "every response: X-RateLimit-Reset $reset_h, the next hour");
my $decreasing = 1;
for my $mine (@per_child) {
    my @m = map { $_->{remaining} } grep { $_->{status} == 200 } @$mine;
    for my $i (1 .. $#m) { $decreasing = 0 unless $m[$i] < $m[$i - 1] }
}
ok($decreasing, 'each client saw Remaining strictly decreasing');
ok(!(grep { !($_->{json}{data}{valid}) } @ok), 'the allowed are answered '
    . 'in full: valid true');
my $left_h = $reset_h - int(time);
is(scalar(grep { ($_->{retry_after} // 0) !~ /^[1-9]\d*$/
    || $_->{retry_after} > $left_h + 1 } @limited), 0,
    'every 429: Retry-After > 0, at most the rest of the hour');
is(scalar(grep { ($_->{json}{error_code} // '') ne 'RATE_LIMITED'
    || ($_->{json}{details}{retry_after} // -1) != ($_->{retry_after} // -2)
    || !JSON::PP::is_bool($_->{json}{success}) || $_->{json}{success} }
    @limited), 0, 'every 429: the envelope, RATE_LIMITED, '
    . 'details.retry_after = Retry-After');

my $r = validate_at('/api/auth/handshake', $ha);
rate_limited_ok($r, 3600, 'the 61st request');
headers_ok($r, 40, 0, $reset_h, 'the 61st request');
$r = $t->api('POST', '/api/auth/handshake/revoke/',
    json => { handshake_token => $ha->{handshake_token} });
rate_limited_ok($r, 3600, 'revoke/ from the spent address');
ok(validate_at('/free/handshake', $ha)->{json}{data}{valid},
    'the 429s changed nothing: the handshake is not revoked');

# create/ is counted per API key: the validations spent none of the key's
my @st = map { create_raw('/api/auth/handshake', $ka)->{status} } 1 .. 40;
is(join(',', @st), join(',', (201) x 40), 'create/ with the key whose '
    . 'handshakes were validated: its own 40');
$r = create_raw('/api/auth/handshake', $ka);
rate_limited_ok($r, 3600, 'create/ with the spent key');

# another key of the same application has its own budget
$r = create_raw('/api/auth/handshake', $kb);
is($r->{status}, 201, 'create/ with a second API key: 201');
headers_ok($r, 40, 39, $reset_h, 'a second API key');
my $hb = $r->{json}{handshake};

# another address has its own budget for validate/
$r = validate_at('/api/auth/handshake', $hb, from => '127.0.0.2');
is($r->{status}, 200, 'validate/ from a second address: 200');
headers_ok($r, 40, 39, $reset_h, 'a second address');

# a failed validation counts against the address like any request of it:
# the address is the caller
$r = validate_at('/api/auth/handshake', $hb, secret => 'wrong-secret',
    from => '127.0.0.2');
is($r->{status}, 401, 'a wrong handshake_secret: 401');
is(($r->{json} // {})->{error_code}, 'INVALID_SECRET',
    'a wrong handshake_secret: INVALID_SECRET');
headers_ok($r, 40, 38, $reset_h, 'a wrong secret: the address\'s count');
$r = validate_at('/api/auth/handshake', $hb, from => '127.0.0.2');
headers_ok($r, 40, 37, $reset_h, 'after a wrong secret the next is the '
    . 'third counted');
# failed authentication is not counted against a key
$r = create_raw('/api/auth/handshake', 'Z' x 43, from => '127.0.0.4');
is($r->{status}, 401, 'an unknown API key: 401');
ok(!defined hdr($r, 'Retry-After'), 'an unknown API key is not throttled '
    . 'by another key\'s count');

######################################## reload

$t->reload;
is(scalar($t->worker_pids), 2, 'after reload: two new workers');
$r = validate_at('/api/auth/handshake', $ha);
rate_limited_ok($r, 3600, 'after nginx -s reload the spent address');
headers_ok($r, 40, 0, $reset_h, 'after reload the spent address');
$r = create_raw('/api/auth/handshake', $ka);
rate_limited_ok($r, 3600, 'after nginx -s reload the spent key');
$r = validate_at('/api/auth/handshake', $hb, from => '127.0.0.2');
is($r->{status}, 200, 'after reload the second address: 200');
headers_ok($r, 40, 36, $reset_h, 'after reload the second address goes on '
    . 'counting');

# a reload that resizes oauth2_limit_zone: nginx keeps a zone only at its
# size, so the reload gets a new one, into which the old one's counts are
# copied (before, every count started again from zero)
$t->edit_config(sub { s/^http \{\n/http {\n    oauth2_limit_zone 12m;\n/m });
$t->reload;
is(scalar($t->worker_pids), 2, 'after a resizing reload: two new workers');
$r = validate_at('/api/auth/handshake', $ha);
rate_limited_ok($r, 3600, 'after a reload to oauth2_limit_zone 12m the spent address');
$r = create_raw('/api/auth/handshake', $ka);
rate_limited_ok($r, 3600, 'after a reload to oauth2_limit_zone 12m the spent key');
$r = validate_at('/api/auth/handshake', $hb, from => '127.0.0.2');
is($r->{status}, 200, 'after a resizing reload the second address: 200');
headers_ok($r, 40, 35, $reset_h, 'after a resizing reload the second '
    . 'address goes on counting');
# and back: the smaller zone again, which has room for every count
$t->edit_config(sub { s/^    oauth2_limit_zone 12m;\n//m });
$t->reload;
$r = validate_at('/api/auth/handshake', $ha);
rate_limited_ok($r, 3600, 'after a reload back to the default size the spent address');
$r = validate_at('/api/auth/handshake', $hb, from => '127.0.0.2');
headers_ok($r, 40, 34, $reset_h, 'after a reload back the second address '
    . 'goes on counting');

######################################## burst + hour (1000/h 5/m)

guard_window(60, 10);
guard_window(3600, 15);
my $hc = create_at('/free/handshake', $kc);
my $reset_m = next_boundary(60);
$reset_h = next_boundary(3600);
# validate/ from an address that has not been counted yet
my $B = '127.0.0.3';
for my $i (1 .. 5) {
    $r = validate_at('/burst/handshake', $hc, from => $B);
    is($r->{status}, 200, "burst request $i: 200");
    headers_ok($r, 1000, 5 - $i, $reset_m, "burst request $i (the minute "
        . 'binds)');
}
for my $i (6 .. 9) {
    $r = validate_at('/burst/handshake', $hc, from => $B);
    rate_limited_ok($r, 60, "burst request $i");
    headers_ok($r, 1000, 0, $reset_m, "burst request $i");
}
# the hour's count is shared by every location with an hour window: 5
# allowed, the 4 refused spent nothing, this one is the 6th
$r = validate_at('/hour/handshake', $hc, from => $B);
is($r->{status}, 200, 'the address at a 1000/h location: 200');
headers_ok($r, 1000, 994, $reset_h, 'the refused bursts did not spend the '
    . 'hour: 1000 - 6');

# two keys interleaved count separately at create/
for my $i (1 .. 3) {
    for my $c ([$kd, 'key D'], [$ke, 'key E']) {
        $r = create_raw('/burst/handshake', $c->[0]);
        headers_ok($r, 1000, 5 - $i, $reset_m, "$c->[1], request $i");
    }
}

######################################## the token endpoint, per client

guard_window(3600, 10);
$reset_h = next_boundary(3600);
for my $i (1 .. 3) {
    $r = $t->token($ta->{client_id}, $ta->{client_secret},
        path => '/rl/token/');
    is($r->{status}, 200, "token request $i: 200");
    headers_ok($r, 3, 3 - $i, $reset_h, "token request $i");
}
$r = $t->token($ta->{client_id}, $ta->{client_secret}, path => '/rl/token/');
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'the 4th token request of a client');
retry_after_ok($r, 3600, 'the 4th token request');
headers_ok($r, 3, 0, $reset_h, 'the 4th token request');
$r = $t->token($tb->{client_id}, $tb->{client_secret}, path => '/rl/token/');
is($r->{status}, 200, 'another client: 200');
headers_ok($r, 3, 2, $reset_h, 'another client: its own count');
$r = $t->token($tc->{client_id}, $tc->{client_secret}, path => '/rl/token/');
headers_ok($r, 3, 2, $reset_h, 'a third client, first request');
$r = $t->token($tc->{client_id}, 'wrong-secret', path => '/rl/token/');
$t->oauth_error_ok($r, 401, 'invalid_client', 'a wrong client secret');
# refused before its client is known: counted against the address
headers_ok($r, 3, 2, $reset_h, 'a wrong client secret: the address\'s count');
my $wrong = $r;
$r = $t->token($tc->{client_id}, $tc->{client_secret}, path => '/rl/token/');
is($r->{status}, 200, 'after the wrong secret: 200');
headers_ok($r, 3, 1, $reset_h, 'the wrong secret was not counted against '
    . 'the client');
for my $i (2, 3) {
    $r = $t->post_form('/rl/token/', 'grant_type=client_credentials');
    $t->oauth_error_ok($r, 401, 'invalid_client',
        "unauthenticated request $i from the address");
    headers_ok($r, 3, 3 - $i, $reset_h, "unauthenticated request $i");
}
$r = $t->post_form('/rl/token/', 'grant_type=client_credentials');
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'the 4th unauthenticated request from the address');
retry_after_ok($r, 3600, 'the 4th unauthenticated request');
$r = $t->token($tc->{client_id}, $tc->{client_secret}, path => '/rl/token/');
is($r->{status}, 200, 'the client from that address still has its own '
    . 'budget: 200');
headers_ok($r, 3, 0, $reset_h, 'the client\'s last request');
is($t->token($ta->{client_id}, $ta->{client_secret})->{status}, 200,
    'the limited client at /o/token/, which has no limit: 200');

######################## a public client: per client and address (R83)

# Its client_id ships in every copy of the app, so requests in its name
# from one address spend that address's share only: a flood from
# 127.0.0.2 leaves its users at 127.0.0.1 their own count.  A
# confidential client (its secret proved) keeps one budget wherever it
# asks from.
guard_window(3600, 10);
$reset_h = next_boundary(3600);
my $bad_code = OAuth2Test::form(grant_type => 'authorization_code', code => 'x' x 43,
    redirect_uri => 'https://client.example/cb', code_verifier => 'v' x 43,
    client_id => $pub->{client_id});
for my $i (1 .. 3) {
    $r = $t->post_form('/rl/public-token/', $bad_code, -from => '127.0.0.2');
    $t->oauth_error_ok($r, 400, 'invalid_grant',
        "public client from 127.0.0.2, request $i");
    headers_ok($r, 3, 3 - $i, $reset_h, "public client from 127.0.0.2, "
        . "request $i");
}
$r = $t->post_form('/rl/public-token/', $bad_code, -from => '127.0.0.2');
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'the public client\'s 4th request from 127.0.0.2');
$r = $t->post_form('/rl/public-token/', $bad_code);
$t->oauth_error_ok($r, 400, 'invalid_grant',
    'the same public client from 127.0.0.1: answered, not 429');
headers_ok($r, 3, 2, $reset_h, 'the public client at 127.0.0.1: its own count');
$r = $t->post_form('/rl/public-token/', $bad_code, -from => '127.0.0.2');
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    '127.0.0.2 stays limited: requests from elsewhere do not unlock it (R84)');
for my $i (1 .. 3) {
    $r = $t->token($conf->{client_id}, $conf->{client_secret},
        path => '/rl/public-token/', headers => [-from => '127.0.0.2']);
    is($r->{status}, 200, "confidential client from 127.0.0.2, request $i: 200");
}
$r = $t->token($conf->{client_id}, $conf->{client_secret},
    path => '/rl/public-token/');
$t->oauth_error_ok($r, 429, 'temporarily_unavailable',
    'the confidential client from 127.0.0.1: its one budget is spent');

# A client id as long as the store takes (200 bytes; Django's is 100 at
# most) asking from an address as long as IPv4's get: the key of its
# count (realm, "p:", address, "|", id) is 226 bytes, which the counter
# zone used to refuse outright, every request of that client from such an
# address 429 from the first.  No limit may lock out a legitimate client
# (R84): its count is kept like any other's, by a hash of the key.
{
    guard_window(3600, 10);
    my $reset = next_boundary(3600);
    my $long_id = 'L' x 200;
    my $dump = OAuth2Test::write_file($t->dir . '/long-id.json',
        JSON::PP->new->encode([{ model => 'oauth2_provider.application',
            pk => 900, fields => { client_id => $long_id, name => 'long id',
                client_type => 'public',
                authorization_grant_type => 'authorization-code',
                client_secret => '',
                redirect_uris => 'https://client.example/cb' } }]));
    my ($code, undef, $err) = $t->admin('import-django', $dump);
    is($code, 0, 'a public client with a 200-byte client_id imported')
        or diag($err);
    my $form = OAuth2Test::form(grant_type => 'authorization_code',
        code => 'x' x 43, redirect_uri => 'https://client.example/cb',
        code_verifier => 'v' x 43, client_id => $long_id);
    my $from = '127.100.100.100';
    for my $i (1 .. 3) {
        $r = $t->post_form('/rl/public-token/', $form, -from => $from);
        $t->oauth_error_ok($r, 400, 'invalid_grant',
            "200-byte client id from $from, request $i: answered, not 429");
        headers_ok($r, 3, 3 - $i, $reset,
            "200-byte client id from $from, request $i");
    }
    $r = $t->post_form('/rl/public-token/', $form, -from => $from);
    $t->oauth_error_ok($r, 429, 'temporarily_unavailable',
        "200-byte client id from $from: its 4th request is limited");
    $r = $t->post_form('/rl/public-token/', $form, -from => '127.100.100.101');
    $t->oauth_error_ok($r, 400, 'invalid_grant',
        '... and from another address, its own count: answered');
}

######################################## an auth_oauth2 location, per client

my @pa_tokens = map { $t->issue_token($pa->{client_id}) } 1 .. 2;
my $pb_token = $t->issue_token($pb->{client_id});
for my $i (1 .. 3) {
    $r = $t->bearer_get('/rl/protected/index.html', $pa_tokens[$i % 2]);
    is($r->{status}, 200, "protected request $i: 200");
    is($r->{body}, "hello\n", "protected request $i: the file");
    headers_ok($r, 3, 3 - $i, $reset_h, "protected request $i");
}
for my $tok (@pa_tokens) {
    $r = $t->bearer_get('/rl/protected/index.html', $tok);
    is($r->{status}, 429, 'the 4th request of the client: 429, whichever '
        . 'token');
    retry_after_ok($r, 3600, 'protected 429');
    headers_ok($r, 3, 0, $reset_h, 'protected 429');
    unlike($r->{body}, qr/hello/, 'protected 429: not the file');
}
$r = $t->bearer_get('/rl/protected/index.html', $pb_token);
is($r->{status}, 200, 'another client at the location: 200');
headers_ok($r, 3, 2, $reset_h, 'another client at the location');
$r = $t->bearer_get('/rl/protected/', 'x' x 43);
is($r->{status}, 401, 'an unknown token: 401, before any limit');

# a public client's tokens are its users' (nothing proves the client):
# they count per client and address, as at its token endpoint, so that
# one user spending the client's budget refuses no other user (R83); a
# confidential client's, above, count per client
{
    for my $u (qw(rl-alice rl-mallory)) {
        $t->admin_json('user', 'add', '--username', $u, '--email',
            "$u\@example.com", '--password', 'Velvet-kettle-orbit-28',
            '--pbkdf2-iterations', 1000);
    }
    my $alice = $t->issue_token($pub->{client_id}, user => 'rl-alice');
    my $mallory = $t->issue_token($pub->{client_id}, user => 'rl-mallory');
    my $get = sub {
        my ($tok, $from) = @_;
        return $t->request('GET', '/rl/protected/index.html',
            headers => [Authorization => "Bearer $tok"], from => $from)->{status};
    };
    my @got = map { $get->($mallory, '127.0.0.31') } 1 .. 4;
    is("@got", '200 200 200 429', "a public client's user at a location of "
        . '3 an hour: 3 answered, then 429');
    is($get->($alice, '127.0.0.32'), 200, '... another user of that client, '
        . 'from another address: 200, a count of its own (R83)');
    is($get->($mallory, '127.0.0.32'), 200, '... which is the address\'s, '
        . 'whichever of its users');
    is($get->($alice, '127.0.0.31'), 429, '... and from the spent address: 429');
}

# each window counts afresh: 2 in one second, then 429; in the next
# second 2 again, then 429 again (a client that spent one window is
# limited in the next too)
{
    my $ps = $t->new_app(name => 'protected-second');
    my $tok = $t->issue_token($ps->{client_id});
    for my $w (1, 2) {
        my $b = next_boundary(1);
        sleep $b - time + 0.05;
        my @got = map { $t->bearer_get('/rl/second/index.html', $tok)->{status} }
            1 .. 3;
        is("@got", '200 200 429', "oauth2_rate_limit 2/s, second $w: "
            . '200, 200, then 429');
    }
}
is($t->bearer_get('/protected/', $pa_tokens[0])->{status}, 200,
    'the limited client at a location without a limit: 200');

# a directory URI: the index module's internal redirect runs the access
# phase again; it is still one request
my $pc_token = $t->issue_token($pc->{client_id});
$r = $t->bearer_get('/rl/dir/', $pc_token);
is($r->{status}, 200, 'a directory URI at a 5/h location: 200');
{
    is(join(',', @{$r->{headers}{'x-ratelimit-remaining'} // []}), '4',
        'a directory URI: one X-RateLimit-Remaining header, 4');
    $r = $t->bearer_get('/rl/dir/index.html', $pc_token);
    is(hdr($r, 'X-RateLimit-Remaining'), 3,
        'the next request: Remaining 3, the directory URI counted once');
}

######################################## address-keyed endpoints (2/h)

my $sr = $t->get('/api/status/', 'X-Status-Token' => $status_token);
is($sr->{status}, 200, 'status: 200');
is_deeply($sr->{json}, { status => 'ok', service => 'svc' }, 'status: ok');
headers_ok($sr, 2, 1, $reset_h, 'status, first request');
# register shares the address's hour count with status
$r = $t->post_form('/users/register/', OAuth2Test::form(username => 'x'));
is($r->{status}, 400, 'a register request missing fields: 400');
headers_ok($r, 2, 0, $reset_h, 'register: counted against the address');
for my $c (['/api/status/', sub {
        $t->get('/api/status/', 'X-Status-Token' => $status_token) }],
    ['/users/register/', sub { $t->post_form('/users/register/',
        OAuth2Test::form(username => 'y', password => 'p',
            confirm_password => 'p')) }])
{
    my ($path, $send) = @$c;
    my $r = $send->();
    is($r->{status}, 429, "$path, third request from the address: 429");
    my $ra = hdr($r, 'Retry-After') // '';
    retry_after_ok($r, 3600, "$path 429");
    is_deeply($r->{json}, { detail => "Request was throttled. Expected "
        . "available in $ra seconds.", code => 'throttled' },
        "$path 429: DRF's throttled body with the Retry-After seconds");
    headers_ok($r, 2, 0, $reset_h, "$path 429");
}
is($t->get('/open/')->{status}, 200, 'a location without a limit: 200');

# the authorization endpoint's pages are read in a browser: their 429 is
# a page too (with Retry-After), not a client's JSON error
guard_window(3600, 10);
for my $i (1 .. 2) {
    my $p = $t->get('/rl/authorize/?response_type=code', -from => '127.0.0.9');
    isnt($p->{status}, 429, "authorize page, request $i from its address: not limited");
}
my $page = $t->get('/rl/authorize/?response_type=code', -from => '127.0.0.9');
is($page->{status}, 429, 'authorize page, third request from the address: 429');
like(hdr($page, 'Content-Type') // '', qr{^text/html}, '... an HTML page');
like($page->{body}, qr{<h1>Too many requests</h1>}, '... that says why');
retry_after_ok($page, 3600, 'authorize page 429');
isnt($t->get('/rl/authorize/?response_type=code', -from => '127.0.0.10')->{status}, 429,
    '... another address is not limited');

######################################## off in a child location

my $otok = $t->issue_token($oa->{client_id});
guard_window(86400, 10);
$r = $t->bearer_get('/inh/index.html', $otok);
is($r->{status}, 200, 'a 1/d location: 200');
headers_ok($r, 1, 0, next_boundary(86400), 'a 1/d location');
is($t->bearer_get('/inh/index.html', $otok)->{status}, 429, 'a 1/d '
    . 'location: the second request 429');
for my $i (1 .. 3) {
    $r = $t->bearer_get('/inh/free/index.html', $otok);
    is($r->{status}, 200, "off in the child, request $i: 200");
    ok(!defined hdr($r, 'X-RateLimit-Limit')
        && !defined hdr($r, 'X-RateLimit-Remaining')
        && !defined hdr($r, 'X-RateLimit-Reset'),
        "off in the child, request $i: no X-RateLimit headers");
}
is($t->get('/inh/free/index.html')->{status}, 401,
    'off in the child: auth_oauth2 is still inherited');

# a child location without oauth2_rate_limit has its parent's 1/d
{
    my $deep = $t->new_app(name => 'inherited-deep');
    my $dtok = $t->issue_token($deep->{client_id});
    guard_window(86400, 10);
    $r = $t->bearer_get('/inh/deep/index.html', $dtok);
    is($r->{status}, 200, "the parent's 1/d in a child location: 200");
    headers_ok($r, 1, 0, next_boundary(86400),
        "the parent's 1/d in a child location");
    is($t->bearer_get('/inh/deep/index.html', $dtok)->{status}, 429,
        "the parent's 1/d in a child location: the second request 429 (R54)");
}

######################################## nginx -t

for my $c (['oauth2_rate_limit 10/x;', 'invalid rate "10/x"', 'unit x'],
    ['oauth2_rate_limit 0/h;', 'invalid rate "0/h"', '0/h'],
    ['oauth2_rate_limit -5/h;', 'invalid rate "-5/h"', '-5/h'],
    ['oauth2_rate_limit abc;', 'invalid rate "abc"', 'abc'],
    ['oauth2_rate_limit 10/;', 'invalid rate "10/"', 'no unit'],
    ['oauth2_rate_limit 10/h 10/h;', 'names the same window twice',
        '10/h 10/h'],
    ['oauth2_rate_limit 10/h 20/hour;', 'names the same window twice',
        '10/h 20/hour'],
    ['oauth2_rate_limit 10/h; oauth2_rate_limit 5/m;', 'is duplicate',
        'the directive twice'],
    ['oauth2_rate_limit 10/h 5/m 1/s;', 'invalid number of arguments',
        'three windows'],
    ['oauth2_rate_limit 10/h off;', 'invalid rate "off"', '10/h off'])
{
    my ($directive, $message, $name) = @$c;
    my $n = OAuth2Test->new;
    $n->write_config($n->default_http(
        extra_server => "location /x/ { $directive }"));
    my ($code, $out) = $n->nginx_t;
    isnt($code, 0, "nginx -t fails: $name");
    like($out, qr/\[emerg\] [^\n]*\Q$message\E/,
        "nginx -t: $name: $message");
    like($out, qr/\[emerg\] [^\n]*"oauth2_rate_limit"/,
        "nginx -t: $name: the message names oauth2_rate_limit");
    $n->{done} = 1;    # never started
}
{
    my $n = OAuth2Test->new;
    $n->write_config($n->default_http(
        extra_http => 'oauth2_rate_limit 100/h 10/m;',
        extra_server => 'location /x/ { oauth2_rate_limit off; }'));
    my ($code, $out) = $n->nginx_t;
    is($code, 0, 'nginx -t: a limit in http and off in a location is fine')
        or diag($out);
    $n->{done} = 1;
}

$t->done_testing;
