# oauth2_metrics (issue 15, item 2): Prometheus' text format from one
# shared zone, exact across two workers and kept across a reload.  Every
# event the test makes is tallied here and every series must equal the
# tally: tokens issued by realm, application and grant (two realms made
# with `oauth2-admin realm add`, the same client_id imported into both,
# every grant, seed 003's /api/token/ pair; a realm's server lists its
# own realm's series, the default server's oauth2_metrics all every
# realm's), validations of every outcome
# (store_unavailable from a second nginx whose store cannot open), the
# 429s of oauth2_rate_limit and of the throttles (R17, R54), the commit
# histograms against LMDB's own transaction ids (mdb_stat -e), the gauges
# against mdb_stat and the configured sizes.  An internal redirect
# (index, error_page, try_files) counts once, and so does a check of an
# auth_request subrequest logged with log_subrequest on (its log phase
# and the main request's share the check).  allow/deny as stub_status,
# GET/HEAD only, nginx -t without oauth2_store.  A label value escapes "
# and \; after 1024 series, oauth2_tokens_issued_untracked_total.  Then
# Debian's promtool lints the scrapes and a real prometheus server
# scrapes the location and answers the series through its HTTP API
# (missing: a failure, never a skip).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use IO::Handle;
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use OAuth2Test;
use OAuth2Authorize;
use OAuth2Grants qw(PBKDF2);

OAuth2Test::require_build();

my $T0 = time;
my $PROMTOOL = '/usr/bin/promtool';
my $PROMETHEUS = '/usr/bin/prometheus';
my $JSON = JSON::PP->new->canonical;
my $CB = 'https://client.example/cb';
my @OUTCOMES = qw(ok missing malformed unknown expired revoked disabled
    insufficient_scope rate_limited store_unavailable wrong_audience
    dpop_nonce);
my @REASONS = qw(store mirror cluster hash_queue thread_queue);
my $STORE_SIZE = 64 * 1024 * 1024;

my $t = OAuth2Test->new(workers => 2);
my @SHOPS = qw(shop1 shop2);
my %PORT = (default => $t->port, shop1 => $t->port(1), shop2 => $t->port(2));

sub hdr { OAuth2Test::header(@_) }
sub dj { my $j = eval { JSON::PP->new->decode($_[0] // '') }; return $j }

######################################################## the store

for my $shop (@SHOPS) {
    my ($code, $out, $err) = $t->admin('realm', 'add', $shop);
    is($code, 0, "realm add $shop: exit 0") or diag($err);
}

# app_add($realm, name => .., grant => [..], ttl => n, scope => ..)
sub app_add {
    my ($realm, %a) = @_;
    my @args = ('--realm', $realm, 'app', 'add', '--name', $a{name});
    push @args, '--grant', $_ for @{$a{grant}};
    push @args, '--redirect-uri', $CB
        if grep { $_ eq 'authorization_code' } @{$a{grant}};
    push @args, '--scope', $a{scope} // 'read write';
    push @args, '--access-token-ttl', $a{ttl} if $a{ttl};
    return $t->admin_json(@args);
}

my @ALL = qw(client_credentials password refresh_token authorization_code);
my (%APP, %PW);
for my $shop (@SHOPS) {
    $APP{$shop}{$_} = app_add($shop, name => "$_ of $shop", grant => \@ALL)
        for qw(alpha beta);
    $PW{$shop} = "Quartz-$shop-field-90";
    $t->admin_json('--realm', $shop, 'user', 'add', '--username', 'ann',
        '--email', "ann\@$shop.example", '--password', $PW{$shop},
        '--pbkdf2-iterations', PBKDF2);
    # one client_id string in both realms (imported from Django with a
    # secret of its own in each): only the realm label tells them apart
    my $secret = join '', map { ('A' .. 'Z', 'a' .. 'z')[rand 52] } 1 .. 64;
    $APP{$shop}{shared} = { client_id => 'shared-cc',
        client_secret => $secret };
    my @dump = ({ model => 'oauth2_provider.application',
        pk => 1, fields => { client_id => 'shared-cc',
            name => "shared of $shop", client_type => 'confidential',
            authorization_grant_type => 'client-credentials',
            client_secret => $secret, redirect_uris => '' } });
    # a client_id with the two characters a label value escapes (no
    # control character is allowed in one, so no newline)
    if ($shop eq 'shop1') {
        $APP{$shop}{weird} = { client_id => 'we"ird\\id',
            client_secret => "$secret-w" };
        push @dump, { model => 'oauth2_provider.application', pk => 2,
            fields => { client_id => 'we"ird\\id', name => 'weird',
                client_type => 'confidential',
                authorization_grant_type => 'client-credentials',
                client_secret => "$secret-w", redirect_uris => '' } };
    }
    my $file = $t->dir . "/dump-$shop.json";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $JSON->encode(\@dump);
    close $fh;
    my ($code, $out, $err) = $t->admin('--realm', $shop, 'import-django',
        $file);
    is($code, 0, "import-django of shared-cc into $shop: exit 0")
        or diag($err);
    is((dj($out) // {})->{applications}{imported}, scalar @dump,
        "import-django into $shop: every application imported") or diag($out);
}
# the default realm: the validations
my $rs = app_add('default', name => 'rs',
    grant => ['client_credentials', 'password']);
my $short = app_add('default', name => 'short-lived',
    grant => ['client_credentials'], ttl => 1);
my $victim = app_add('default', name => 'to be disabled',
    grant => ['client_credentials']);
my $burst = app_add('default', name => 'burst',
    grant => ['client_credentials']);
my $DAN_PW = 'Saffron-dune-47';
$t->admin_json('user', 'add', '--username', 'dan', '--email',
    'dan@example.com', '--password', $DAN_PW, '--pbkdf2-iterations', PBKDF2);

{
    my ($code, $out, $err) = $t->_run_cmd('/usr/bin/openssl', 'genpkey',
        '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-out', $t->dir . '/ec.pem');
    die "openssl genpkey: $err" if $code;
    chmod 0644, $t->dir . '/ec.pem';
}

######################################################## nginx

sub realm_server {
    my ($shop, $port) = @_;
    my $cid = $APP{$shop}{alpha}{client_id};
    return <<"EOF";
server {
    listen 127.0.0.1:$port reuseport;
    oauth2_realm $shop;
    oauth2_issuer http://127.0.0.1:$port;
    add_header X-Pid \$pid always;
    location = /o/token/ { oauth2_token; }
    location = /o/authorize/ { oauth2_authorize; }
    location /api/ {
        oauth2_jwt_key %%DIR%%/ec.pem;
        location = /api/token/ { oauth2_jwt_token $cid; }
        location = /api/token/refresh/ { oauth2_jwt_refresh $cid; }
    }
    location /protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    location = /metrics { oauth2_metrics; allow 127.0.0.1; deny all; }
}
EOF
}

$t->write_config(<<"EOF" . realm_server('shop1', $PORT{shop1})
oauth2_store %%STORE%% size=64m;
oauth2_pbkdf2_iterations ${\ PBKDF2};
oauth2_limit_zone 1m;
# no background writes: every commit of nginx is one the test asked for
oauth2_expiry_cleanup off;
server {
    # reuseport: the kernel spreads connections over both workers
    listen 127.0.0.1:%%PORT%% reuseport;
    oauth2_issuer http://127.0.0.1:%%PORT%%;
    add_header X-Pid \$pid always;
    location = /o/token/ { oauth2_token; }
    location = /o/revoke_token/ { oauth2_revoke; }
    location = /rl/token/ { oauth2_token; oauth2_rate_limit 2/h; }
    location = /bf/token/ { oauth2_token; oauth2_client_auth_limit 2 60s; }
    location /protected/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    location /scoped/ {
        auth_oauth2 "api";
        auth_oauth2_scope admin;
        alias %%DIR%%/html/;
    }
    location /rl/ {
        auth_oauth2 "api";
        oauth2_rate_limit 3/h;
        alias %%DIR%%/html/;
    }
    location /jwt/ {
        oauth2_jwt_key %%DIR%%/ec.pem;
        oauth2_access_token_format jwt;
        location = /jwt/token/ { oauth2_token; }
        location /jwt/api/ { auth_oauth2 "api"; alias %%DIR%%/html/; }
    }
    # internal redirects to another auth_oauth2 location
    location /ep/ {
        auth_oauth2 "api";
        alias %%DIR%%/html/;
        error_page 404 = /protected/index.html;
    }
    location /ep401/ {
        auth_oauth2 "api";
        alias %%DIR%%/html/;
        error_page 401 = /protected/index.html;
    }
    location /tf/ { auth_oauth2 "api"; try_files /nonexistent \@strict; }
    # auth_request to an auth_oauth2 location whose subrequest is logged
    location = /_check {
        internal;
        auth_oauth2 "api";
        log_subrequest on;
        return 204;
    }
    location /guarded/ { auth_request /_check; alias %%DIR%%/html/; }
    location \@strict {
        auth_oauth2 "api";
        auth_oauth2_scope admin;
        root %%DIR%%/html;
        rewrite ^ /index.html break;
    }
    # the host's operator's: every realm's issued series
    location = /metrics { oauth2_metrics all; allow 127.0.0.1; deny all; }
    location = /metrics-closed { oauth2_metrics; deny all; }
}
EOF
    . realm_server('shop2', $PORT{shop2}))->run;
is(scalar($t->worker_pids), 2, 'two workers');
for my $shop (@SHOPS) {
    ok($t->_wait_port($PORT{$shop}), "nginx listens on $shop\'s port");
}

######################################################## the tallies

my (%ISSUED, %VAL, %LIMIT, %PIDS);
$VAL{$_} = 0 for @OUTCOMES;
%LIMIT = (rate_limit => 0, throttle => 0);
my $CLI_COMMITS = 0;

sub pid_of { my ($r, $what) = @_; $PIDS{$what}{hdr($r, 'X-Pid') // '?'}++ }

# LMDB's last transaction id: every commit, nginx's and the CLI's
sub txnid {
    my ($code, $out, $err) = $t->_run_cmd('/usr/bin/mdb_stat', '-e',
        $t->store);
    die "mdb_stat -e: $err" if $code;
    return $out =~ /Last transaction ID:\s*(\d+)/ ? $1 : die "mdb_stat: $out";
}

sub mdb_used {
    my ($code, $out) = $t->_run_cmd('/usr/bin/mdb_stat', '-e', $t->store);
    my ($ps) = $out =~ /Page size:\s*(\d+)/;
    my ($pages) = $out =~ /Number of pages used:\s*(\d+)/;
    return ($ps // 0) * ($pages // 0);
}

# a write of the CLI while nginx runs: its commits are not nginx's
sub cli {
    my @args = @_;
    my $before = txnid();
    my ($code, $out, $err) = $t->admin(@args);
    $CLI_COMMITS += txnid() - $before;
    return ($code, $out, $err);
}

# a scrape: { v => { 'name{labels}' => value }, type => { family => type },
# issued => { "realm|client_id|grant" => n }, val => { outcome => n },
# limit => { limit => n }, r => the response }
sub parse_metrics {
    my ($body) = @_;
    my (%v, %type, %issued, %val, %limit, %unavailable, @bad);
    for my $l (split /\n/, $body) {
        if ($l =~ /^# TYPE (\S+) (\S+)$/) { $type{$1} = $2; next }
        next if $l =~ /^# HELP /;
        my ($name, $labels, $value) =
            $l =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/
            or do { push @bad, $l; next };
        $v{$name . ($labels // '')} = $value;
        my %lab = ($labels // '') =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
        s/\\(.)/$1 eq 'n' ? "\n" : $1/ge for values %lab;
        $issued{"$lab{realm}|$lab{client_id}|$lab{grant}"} = $value
            if $name eq 'oauth2_tokens_issued_total';
        $val{$lab{outcome}} = $value if $name eq 'oauth2_validations_total';
        $limit{$lab{limit}} = $value if $name eq 'oauth2_limit_refusals_total';
        $unavailable{$lab{reason}} = $value
            if $name eq 'oauth2_unavailable_total';
    }
    return { v => \%v, type => \%type, issued => \%issued, val => \%val,
        limit => \%limit, unavailable => \%unavailable, bad => \@bad };
}

sub scrape {
    my (%o) = @_;
    my $r = $t->get('/metrics', ($o{port} ? ('-port' => $o{port}) : ()));
    die "GET /metrics: $r->{status} $r->{body}" unless $r->{status} == 200;
    my $m = parse_metrics($r->{body});
    $m->{r} = $r;
    return $m;
}

# the series of counters and histograms (not the gauges) of a scrape
sub counters {
    my ($m) = @_;
    my %c;
    for my $k (keys %{$m->{v}}) {
        (my $name = $k) =~ s/\{.*//;
        (my $family = $name) =~ s/_(?:bucket|sum|count)$//;
        my $type = $m->{type}{$name} // $m->{type}{$family} // '';
        $c{$k} = $m->{v}{$k} if $type eq 'counter' || $type eq 'histogram';
    }
    return \%c;
}

# every tally equals its series exactly
sub tallies_ok {
    my ($m, $name) = @_;
    my $ok = is_deeply($m->{issued}, \%ISSUED,
        "$name: oauth2_tokens_issued_total, every (realm, client_id, grant) "
        . 'series equals the tokens the token endpoints gave out');
    $ok &= is($m->{v}{oauth2_tokens_issued_untracked_total}, 0,
        "$name: oauth2_tokens_issued_untracked_total 0");
    for my $o (@OUTCOMES) {
        $ok &= is($m->{val}{$o}, $VAL{$o},
            "$name: oauth2_validations_total{outcome=\"$o\"} $VAL{$o}");
    }
    is(scalar(keys %{$m->{val}}), scalar(@OUTCOMES),
        "$name: exactly the " . scalar(@OUTCOMES) . ' outcomes');
    is_deeply($m->{unavailable}, { map { ($_ => 0) } @REASONS },
        "$name: oauth2_unavailable_total 0 for each of its reasons: no 503");
    for my $l (sort keys %LIMIT) {
        $ok &= is($m->{limit}{$l}, $LIMIT{$l},
            "$name: oauth2_limit_refusals_total{limit=\"$l\"} $LIMIT{$l}");
    }
    return $ok;
}

# the histogram $h of a scrape: buckets ascending and cumulative, +Inf
# last and equal to _count; (count, sum, { le => n })
sub histogram_ok {
    my ($m, $h, $name) = @_;
    my (@les, %b);
    for my $k (keys %{$m->{v}}) {
        next unless $k =~ /^\Q$h\E_bucket\{le="([^"]+)"\}$/;
        push @les, $1;
        $b{$1} = $m->{v}{$k};
    }
    my @sorted = sort { ($a eq '+Inf' ? 9**9**9 : $a)
        <=> ($b eq '+Inf' ? 9**9**9 : $b) } @les;
    ok(@sorted >= 2 && $sorted[-1] eq '+Inf',
        "$name: $h has buckets, the last le=\"+Inf\"");
    my $cum = 1;
    for my $i (1 .. $#sorted) {
        $cum = 0 if $b{$sorted[$i]} < $b{$sorted[$i - 1]};
    }
    ok($cum, "$name: $h buckets are cumulative (never fewer at a larger le)")
        or diag(join ' ', map { "$_=$b{$_}" } @sorted);
    my $count = $m->{v}{"${h}_count"};
    my $sum = $m->{v}{"${h}_sum"};
    is($b{'+Inf'}, $count, "$name: ${h}_bucket{le=\"+Inf\"} = ${h}_count");
    ok(defined $sum && $sum =~ /^\d+(?:\.\d+)?$/,
        "$name: ${h}_sum is a number");
    return ($count // -1, $sum // -1, \%b);
}

# commits of nginx: every commit LMDB made since $TXN0 but the CLI's
my $TXN0;

sub commits_ok {
    my ($m, $name) = @_;
    my ($count, $sum, $b) = histogram_ok($m, 'oauth2_store_commit_seconds',
        $name);
    my ($bcount, $bsum) = histogram_ok($m, 'oauth2_store_commit_batch_size',
        $name);
    my $nginx = txnid() - $TXN0 - $CLI_COMMITS;
    is($count, $nginx, "$name: oauth2_store_commit_seconds_count $count = "
        . "the commits nginx made in LMDB (mdb_stat -e: $nginx)");
    is($bcount, $count, "$name: one batch size per commit "
        . '(batch_size_count = commit_seconds_count)');
    ok($bsum >= $bcount, "$name: batch_size_sum ($bsum) >= its count: "
        . 'every batch holds a change');
    ok($sum > 0 && $sum < $count * 5, "$name: commit_seconds_sum ($sum s) "
        . "is positive and below 5 s per commit") if $count > 0;
    is($m->{v}{oauth2_store_write_errors_total}, 0,
        "$name: oauth2_store_write_errors_total 0: no change refused");
    return ($count, $bsum);
}

######################################################## first scrape

$TXN0 = txnid();
my $m = scrape();
my $r = $m->{r};
is(hdr($r, 'Content-Type'), 'text/plain; version=0.0.4; charset=utf-8',
    'GET /metrics: Content-Type text/plain; version=0.0.4; charset=utf-8');
is(scalar @{$m->{bad}}, 0, 'every line is a comment or "name{labels} value"')
    or diag(join "\n", @{$m->{bad}});
is_deeply($m->{issued}, {}, 'a new nginx: no token issued yet');
is_deeply($m->{val}, { map { $_ => 0 } @OUTCOMES },
    'a new nginx: every outcome listed, at 0');
is($m->{v}{oauth2_store_commit_seconds_count}, 0,
    'a new nginx with oauth2_expiry_cleanup off: no commit yet');
my %TYPES = (oauth2_tokens_issued_total => 'counter',
    oauth2_tokens_issued_untracked_total => 'counter',
    oauth2_validations_total => 'counter',
    oauth2_validation_cache_hits_total => 'counter',
    oauth2_limit_refusals_total => 'counter',
    oauth2_store_commit_seconds => 'histogram',
    oauth2_store_commit_batch_size => 'histogram',
    oauth2_store_conflicts_total => 'counter',
    oauth2_store_write_errors_total => 'counter',
    oauth2_unavailable_total => 'counter',
    oauth2_store_map_bytes => 'gauge', oauth2_store_used_bytes => 'gauge',
    oauth2_limit_zone_bytes => 'gauge',
    oauth2_limit_zone_used_bytes => 'gauge',
    oauth2_dpop_zone_bytes => 'gauge',
    oauth2_dpop_zone_used_bytes => 'gauge');
is_deeply($m->{type}, \%TYPES, 'the families and their # TYPE');

######################################################## HTTP of the location

$r = $t->request('HEAD', '/metrics');
is($r->{status}, 200, 'HEAD /metrics: 200');
is($r->{body}, '', 'HEAD /metrics: no body');
is(hdr($r, 'Content-Type'), 'text/plain; version=0.0.4; charset=utf-8',
    'HEAD /metrics: the same Content-Type');
for my $method (qw(POST PUT DELETE)) {
    $r = $t->request($method, '/metrics', body => 'x=1');
    is($r->{status}, 405, "$method /metrics: 405");
    unlike($r->{body}, qr/oauth2_/, "$method /metrics: no metrics in it");
}
$r = $t->get('/metrics', '-from' => '127.0.0.2');
is($r->{status}, 403, 'allow 127.0.0.1; deny all: 127.0.0.2 gets 403');
unlike($r->{body}, qr/oauth2_/, 'the 403 has no metrics in it');
$r = $t->get('/metrics-closed');
is($r->{status}, 403, 'a location with deny all: 403 even from 127.0.0.1');
unlike($r->{body}, qr/oauth2_/, 'deny all: no metrics in it');

######################################################## issuance

# a token endpoint's response: an access token handed out counts once for
# (realm, client_id, grant)
sub issued_ok {
    my ($r, $realm, $cid, $grant, $name) = @_;
    pid_of($r, 'issue');
    my $tok = ref $r->{json} eq 'HASH'
        ? ($r->{json}{access_token} // $r->{json}{access}) : undef;
    if ($r->{status} == 200 && defined $tok) {
        $ISSUED{"$realm|$cid|$grant"}++;
        pass("$name: 200 with an access token");
    } else {
        fail("$name: 200 with an access token");
        diag($r->{raw});
    }
    return $r;
}

sub post_token {
    my ($port, $path, $app, @pairs) = @_;
    return $t->post_form($path, OAuth2Test::form(@pairs),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
        '-port' => $port);
}

# $app's tokens of $grant at the realm's /o/token/ ($n of them; password
# and refresh_token chain on one user's refresh token)
sub issue_n {
    my ($realm, $name, $grant, $n) = @_;
    my $app = $APP{$realm}{$name};
    my $port = $PORT{$realm};
    my $rt;
    for my $i (1 .. $n) {
        my $r;
        if ($grant eq 'client_credentials') {
            $r = post_token($port, '/o/token/', $app,
                grant_type => 'client_credentials');
        } elsif ($grant eq 'password') {
            $r = post_token($port, '/o/token/', $app,
                grant_type => 'password', username => 'ann',
                password => $PW{$realm});
        } elsif ($grant eq 'refresh_token') {
            unless (defined $rt) {
                my $p = issued_ok(post_token($port, '/o/token/', $app,
                    grant_type => 'password', username => 'ann',
                    password => $PW{$realm}), $realm, $app->{client_id},
                    'password', "$realm $name: password grant for a "
                    . 'refresh token');
                $rt = $p->{json}{refresh_token};
            }
            $r = post_token($port, '/o/token/', $app,
                grant_type => 'refresh_token', refresh_token => $rt // '');
            $rt = $r->{json}{refresh_token} if ref $r->{json} eq 'HASH';
        }
        issued_ok($r, $realm, $app->{client_id}, $grant,
            "$realm $name: $grant token $i");
    }
}

# the authorization endpoint of a realm's server, through OAuth2Authorize
{
    package PortT;
    sub new { my ($c, $t, $port) = @_; bless { t => $t, port => $port }, $c }
    sub get {
        my ($s, $path, @h) = @_;
        return $s->{t}->get($path, @h, '-port' => $s->{port});
    }
    sub post_form {
        my ($s, $path, $body, @h) = @_;
        return $s->{t}->post_form($path, $body, @h, '-port' => $s->{port});
    }
    sub basic { my $s = shift; return $s->{t}->basic(@_) }
}

my %N = (
    shop1 => { alpha => { client_credentials => 3, password => 2,
        refresh_token => 2, authorization_code => 2 },
        beta => { client_credentials => 1, password => 1,
        refresh_token => 1, authorization_code => 1 },
        shared => { client_credentials => 2 },
        weird => { client_credentials => 2 } },
    shop2 => { alpha => { client_credentials => 2, password => 1,
        refresh_token => 1, authorization_code => 1 },
        beta => { client_credentials => 4, password => 3,
        refresh_token => 2, authorization_code => 2 },
        shared => { client_credentials => 5 } },
);
my $STATE = 0;
for my $realm (@SHOPS) {
    for my $name (qw(alpha beta shared weird)) {
        next unless $APP{$realm}{$name};
        for my $grant (qw(client_credentials password refresh_token)) {
            issue_n($realm, $name, $grant, $N{$realm}{$name}{$grant} // 0);
        }
    }
    my $f = OAuth2Authorize->new(PortT->new($t, $PORT{$realm}));
    my $session;
    for my $name (qw(alpha beta)) {
        my $app = $APP{$realm}{$name};
        for my $i (1 .. $N{$realm}{$name}{authorization_code}) {
            my $q = OAuth2Authorize::query(client_id => $app->{client_id},
                response_type => 'code', redirect_uri => $CB,
                scope => 'read write', state => 'st-' . ++$STATE);
            $session //= $f->login($q, 'ann', $PW{$realm});
            my $code = eval { $f->code($q, $session) };
            ok(defined $code, "$realm $name: authorization code $i")
                or diag($@);
            issued_ok($f->redeem($code // 'none', client => $app,
                redirect_uri => $CB), $realm, $app->{client_id},
                'authorization_code', "$realm $name: code $i redeemed");
        }
    }
}

# seed 003: /api/token/ is a password grant, /api/token/refresh/ a refresh
{
    my $cid = $APP{shop1}{alpha}{client_id};
    my $rt;
    for my $i (1 .. 2) {
        my $r = $t->api('POST', '/api/token/', port => $PORT{shop1},
            json => { username => 'ann', password => $PW{shop1} });
        issued_ok($r, 'shop1', $cid, 'password',
            "seed 003 POST /api/token/ $i");
        $rt = $r->{json}{refresh} if ref $r->{json} eq 'HASH';
    }
    $r = $t->api('POST', '/api/token/refresh/', port => $PORT{shop1},
        json => { refresh => $rt // '' });
    issued_ok($r, 'shop1', $cid, 'refresh_token',
        'seed 003 POST /api/token/refresh/');
}

# failures issue nothing: a wrong secret, a wrong password, a bad code
$r = post_token($PORT{shop1}, '/o/token/',
    { client_id => $APP{shop1}{alpha}{client_id}, client_secret => 'wrong' },
    grant_type => 'client_credentials');
is($r->{status}, 401, 'a wrong client secret: 401, nothing issued');
$r = post_token($PORT{shop2}, '/o/token/', $APP{shop2}{beta},
    grant_type => 'password', username => 'ann', password => 'wrong');
is($r->{status}, 400, 'a wrong password: 400, nothing issued');
$r = post_token($PORT{shop2}, '/o/token/', $APP{shop2}{beta},
    grant_type => 'authorization_code', code => 'x' x 43,
    redirect_uri => $CB);
is($r->{status}, 400, 'an unknown code: 400, nothing issued');
# nor does the CLI's `token issue` (not the token endpoint)
my ($code, $out, $err) = cli('token', 'issue', '--client-id',
    $rs->{client_id});
is($code, 0, 'oauth2-admin token issue: exit 0 (not counted)');

$m = scrape();
tallies_ok($m, 'after issuing in two realms');
is($m->{issued}{"shop1|shared-cc|client_credentials"}, 2,
    'shared-cc in shop1: 2, its own series');
is($m->{issued}{"shop2|shared-cc|client_credentials"}, 5,
    'shared-cc in shop2: 5, its own series');
{
    # the text format: a label value escapes \ and " with a backslash
    my $line = 'oauth2_tokens_issued_total{realm="shop1",'
        . 'client_id="we\"ird\\\\id",grant="client_credentials"} 2';
    like($m->{r}{body}, qr/^\Q$line\E$/m, 'a client_id with " and \\: '
        . 'escaped in its label as \\" and \\\\');
}
ok(keys %{$PIDS{issue}} >= 2, 'both workers issued tokens ('
    . join(',', sort keys %{$PIDS{issue}}) . ')');
is_deeply(scrape(port => $PORT{shop2})->{issued},
    { map { ($_ => $ISSUED{$_}) } grep { /^shop2\|/ } keys %ISSUED },
    'shop2\'s server (oauth2_metrics without all) serves shop2\'s series '
    . 'of the one zone, and no other realm\'s (t/metrics_realm.t)');
commits_ok($m, 'after issuing');

######################################################## validations

# check($path, $outcome, $status, $name, headers => [...]): one request to
# an auth_oauth2 location that must count once under $outcome
sub check {
    my ($path, $outcome, $status, $name, @h) = @_;
    my $r = $t->get($path, @h);
    pid_of($r, 'validate');
    $VAL{$outcome}++;
    $LIMIT{rate_limit}++ if $outcome eq 'rate_limited';
    is($r->{status}, $status, "$name: $status ($outcome)")
        or diag($r->{raw});
    return $r;
}

sub bearer { return (Authorization => "Bearer $_[0]") }

sub access_token_of {
    my ($app, $path, $realm) = @_;
    my $r = issued_ok(post_token($t->port, $path // '/o/token/', $app,
        grant_type => 'client_credentials'), $realm // 'default',
        $app->{client_id}, 'client_credentials',
        "a token of $app->{client_id} at " . ($path // '/o/token/'));
    return ref $r->{json} eq 'HASH' ? $r->{json}{access_token} // '' : '';
}

# expired: tokens of an application whose tokens live 1 s, used later
my @short = map { access_token_of($short) } 1 .. 3;
my $short_at = time;

my $tok = access_token_of($rs);
check('/protected/index.html', 'ok', 200, "valid token, request $_",
    bearer($tok)) for 1 .. 20;
check('/protected/index.html', 'ok', 200, "valid token as X-API-KEY, $_",
    'X-API-KEY' => $tok) for 1 .. 3;
check('/protected/index.html', 'missing', 401, "no token, request $_")
    for 1 .. 6;
check('/protected/index.html', 'missing', 401, 'Basic credentials only',
    Authorization => 'Basic Zm9vOmJhcg==');
for my $c (['Bearer', '"Bearer" alone'], ["Bearer $tok extra", 'two words'],
    ["Bearer $tok<>", 'not token68'])
{
    check('/protected/index.html', 'malformed', 400, $c->[1],
        Authorization => $c->[0]);
}
check('/protected/index.html', 'malformed', 400, 'Bearer and X-API-KEY',
    bearer($tok), 'X-API-KEY' => $tok);
check('/protected/index.html', 'unknown', 401, "an unknown token $_",
    bearer(chr(64 + $_) x 43)) for 1 .. 4;
check('/scoped/index.html', 'insufficient_scope', 403,
    "read write token where admin is required, $_", bearer($tok)) for 1 .. 8;

# an opaque token revoked: its record is gone, so "unknown"
my $gone = access_token_of($rs);
check('/protected/index.html', 'ok', 200, 'an opaque token before revoking',
    bearer($gone));
$r = $t->revoke($rs->{client_id}, $rs->{client_secret}, $gone);
is($r->{status}, 200, 'the opaque token revoked: 200');
check('/protected/index.html', 'unknown', 401,
    "a revoked opaque token, request $_", bearer($gone)) for 1 .. 2;

# a JWT revoked: it verifies, its record is gone, so "revoked"
my @jwt = map { access_token_of($rs, '/jwt/token/') } 1 .. 2;
like($jwt[0], qr/^[\w-]+\.[\w-]+\.[\w-]+$/, '/jwt/token/ issues JWTs');
check('/jwt/api/index.html', 'ok', 200, "JWT $_ before revoking",
    bearer($jwt[$_ - 1])) for 1 .. 2;
for my $j (@jwt) {
    $r = $t->revoke($rs->{client_id}, $rs->{client_secret}, $j);
    is($r->{status}, 200, 'a JWT revoked at /o/revoke_token/: 200');
}
check('/jwt/api/index.html', 'revoked', 401, "revoked JWT 1, request $_",
    bearer($jwt[0])) for 1 .. 3;
check('/jwt/api/index.html', 'revoked', 401, "revoked JWT 2, request $_",
    bearer($jwt[1])) for 1 .. 2;

# disabled: oauth2-admin app disable keeps its tokens and refuses them
my $vtok = access_token_of($victim);
check('/protected/index.html', 'ok', 200, 'a token of the application '
    . 'before app disable', bearer($vtok));
($code, $out, $err) = cli('app', 'disable', $victim->{client_id});
is($code, 0, 'oauth2-admin app disable: exit 0') or diag($err);
check('/protected/index.html', 'disabled', 401,
    "a token of a disabled application, request $_", bearer($vtok)) for 1 .. 2;

# rate_limited: 3/h per client at /rl/; the 4th on are 429 (R17)
sub guard_window { OAuth2Test::guard_window(@_) }
guard_window(3600, 20);
check('/rl/index.html', 'ok', 200, "3/h location, request $_", bearer($tok))
    for 1 .. 3;
check('/rl/index.html', 'rate_limited', 429, "3/h location, request $_",
    bearer($tok)) for 4 .. 12;

# the token endpoint's rate limit: 2/h per client, the rest 429
for my $i (1 .. 5) {
    my $r = post_token($t->port, '/rl/token/', $burst,
        grant_type => 'client_credentials');
    if ($i <= 2) {
        issued_ok($r, 'default', $burst->{client_id}, 'client_credentials',
            "/rl/token/ (2/h), request $i");
    } else {
        is($r->{status}, 429, "/rl/token/ (2/h), request $i: 429");
        $LIMIT{rate_limit}++;
    }
}

# throttles (oauth2_client_auth_limit 2 60s): 3n = 6 failures of any kind
# from an address, then 429 (R17, R83); n wrong passwords for an account
my @st;
for my $i (1 .. 10) {
    my $r = $t->post_form('/bf/token/', 'grant_type=client_credentials',
        Authorization => $t->basic($burst->{client_id}, "wrong-$i"),
        '-from' => '127.0.0.5');
    push @st, $r->{status};
}
is(join(',', @st), '401,401,401,401,401,401,429,429,429,429',
    'wrong client secrets from one address: 6 x 401, then 4 x 429 (R17)');
$LIMIT{throttle} += grep { $_ == 429 } @st;
@st = ();
for my $i (1 .. 5) {
    my $r = $t->post_form('/bf/token/', OAuth2Test::form(
        grant_type => 'password', username => 'dan',
        password => "wrong-$i"),
        Authorization => $t->basic($rs->{client_id}, $rs->{client_secret}),
        '-from' => '127.0.0.6');
    push @st, $r->{status};
}
is(join(',', @st), '400,400,429,429,429',
    'wrong passwords for one account from one address: 2 x 400, then 429');
$LIMIT{throttle} += grep { $_ == 429 } @st;

# internal redirects count once (the index module, error_page, try_files)
sub total { my $s = 0; $s += $_ for values %{$_[0]{val}}; return $s }
my $before = scrape();
check('/protected/', 'ok', 200, 'a directory URI (index: internal redirect)',
    bearer($tok));
my $after = scrape();
is(total($after) - total($before), 1,
    'the index module\'s internal redirect: counted once');
is($after->{val}{ok} - $before->{val}{ok}, 1, 'the index redirect: as ok');
$before = $after;
check('/ep/nothere', 'ok', 200, 'error_page 404 = /protected/index.html',
    bearer($tok));
$after = scrape();
is(total($after) - total($before), 1,
    'error_page to another auth_oauth2 location: counted once');
$before = $after;
check('/ep401/', 'missing', 401, 'no token, error_page 401 to another '
    . 'auth_oauth2 location');
$after = scrape();
is(total($after) - total($before), 1,
    'a refusal whose error_page runs auth_oauth2 again: counted once');
is($after->{val}{missing} - $before->{val}{missing}, 1,
    'that refusal: as missing');
# auth_request with log_subrequest on: the subrequest's log phase and the
# main request's both find the check; it counts once
for my $c (['missing', 401, 'no token', []], ['ok', 200, 'a valid token',
    [bearer($tok)]])
{
    my ($outcome, $status, $what, $h) = @$c;
    $before = $after;
    check('/guarded/index.html', $outcome, $status, "auth_request to an "
        . "auth_oauth2 location with log_subrequest on, $what", @$h);
    $after = scrape();
    is(total($after) - total($before), 1, "auth_request, log_subrequest on, "
        . "$what: counted once");
    is($after->{val}{$outcome} - $before->{val}{$outcome}, 1,
        "... as $outcome");
}

# expired: the 1 s tokens, now at least 2 s old
sleep $short_at + 2.2 - time if time < $short_at + 2.2;
check('/protected/index.html', 'expired', 401, "an expired token $_",
    bearer($short[$_ - 1])) for 1 .. 3;

$m = scrape();
tallies_ok($m, 'after every outcome');
ok(keys %{$PIDS{validate}} >= 2, 'both workers validated ('
    . join(',', sort keys %{$PIDS{validate}}) . ')');
commits_ok($m, 'after the validations');

######################################################## commits and batches

# sequential writes: one change per commit.  5 tokens, 2 revocations and
# a wrong password (the account's failure count lives in the store)
my $s0 = scrape();
my $txn = txnid();
my @btok = map { access_token_of($burst) } 1 .. 5;
for my $b (@btok[0, 1]) {
    is($t->revoke($burst->{client_id}, $burst->{client_secret}, $b)
        ->{status}, 200, 'a revocation: 200');
}
is($t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'dan', password => 'still-wrong'),
    Authorization => $t->basic($rs->{client_id}, $rs->{client_secret}))
    ->{status}, 400, 'a wrong password: 400');
my $s1 = scrape();
my $d = sub { $s1->{v}{$_[0]} - $s0->{v}{$_[0]} };
is(txnid() - $txn, 8, 'eight writes one after the other: eight LMDB commits');
is($d->('oauth2_store_commit_seconds_count'), 8,
    'commit_seconds_count grew by the 8 commits');
is($d->('oauth2_store_commit_batch_size_sum'), 8,
    'batch_size_sum grew by the 8 changes nginx made');
is($d->('oauth2_store_commit_batch_size_bucket{le="1"}'), 8,
    'each of them a batch of 1 (le="1" grew by 8)');
is($d->('oauth2_store_commit_seconds_bucket{le="+Inf"}'), 8,
    'commit_seconds le="+Inf" grew by 8');

# concurrent: 8 clients x (5 tokens + 10 validations) over both workers
$txn = txnid();
my $start_at = time + 0.3;
my @kids;
for my $c (1 .. 8) {
    pipe my $rd, my $wr or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        $wr->autoflush(1);
        sleep $start_at - time if $start_at > time;
        for my $i (1 .. 15) {
            my $r = $i <= 5
                ? $t->post_form('/o/token/', 'grant_type=client_credentials',
                    Authorization => $t->basic($burst->{client_id},
                        $burst->{client_secret}))
                : $t->get('/protected/index.html', bearer($tok));
            print $wr join(' ', $i <= 5 ? 'issue' : 'validate',
                $r->{status}, hdr($r, 'X-Pid') // '?'), "\n";
        }
        close $wr;
        POSIX::_exit(0);    # no END blocks: they would stop nginx
    }
    close $wr;
    push @kids, [$pid, $rd];
}
my %conc;
for my $k (@kids) {
    my ($pid, $rd) = @$k;
    for my $l (<$rd>) {
        my ($what, $status, $p) = split ' ', $l;
        $conc{"$what $status"}++;
        $PIDS{"concurrent $what"}{$p}++;
    }
    close $rd;
    waitpid $pid, 0;
}
is($conc{'issue 200'}, 40, '40 concurrent token requests: 40 x 200');
is($conc{'validate 200'}, 80, '80 concurrent validations: 80 x 200');
$ISSUED{"default|$burst->{client_id}|client_credentials"} += 40;
$VAL{ok} += 80;
ok(keys %{$PIDS{'concurrent validate'}} >= 2, 'both workers validated '
    . 'concurrently (' . join(',', sort keys %{$PIDS{'concurrent validate'}})
    . ')');
my $s2 = scrape();
my $ncommit = txnid() - $txn;
$d = sub { $s2->{v}{$_[0]} - $s1->{v}{$_[0]} };
is($d->('oauth2_store_commit_batch_size_sum'), 40,
    'concurrent: batch_size_sum grew by exactly the 40 changes');
is($d->('oauth2_store_commit_seconds_count'), $ncommit,
    "concurrent: commit_seconds_count grew by the $ncommit LMDB commits");
ok($ncommit >= 1 && $ncommit <= 40, "concurrent: $ncommit commits for 40 "
    . 'changes (group commit: at most one each)');
is($d->('oauth2_store_commit_batch_size_count'), $ncommit,
    'concurrent: batch_size_count grew by the same');
tallies_ok($s2, 'after the concurrent clients');
commits_ok($s2, 'after the concurrent clients');

######################################################## gauges

is($s2->{v}{oauth2_store_map_bytes}, $STORE_SIZE,
    'oauth2_store_map_bytes = oauth2_store size=64m');
is($s2->{v}{oauth2_store_used_bytes}, mdb_used(),
    'oauth2_store_used_bytes = the pages LMDB uses (mdb_stat -e)');
my $zone = $s2->{v}{oauth2_limit_zone_bytes} // 0;
ok($zone > 900 * 1024 && $zone <= 1024 * 1024,
    "oauth2_limit_zone_bytes ($zone) is oauth2_limit_zone 1m less the "
    . 'slab header');
my $zused = $s2->{v}{oauth2_limit_zone_used_bytes} // -1;
ok($zused > 0 && $zused <= $zone,
    "oauth2_limit_zone_used_bytes ($zused): some, at most the zone");
my $dzone = $s2->{v}{oauth2_dpop_zone_bytes} // 0;
ok($dzone > 9 * 1024 * 1024 && $dzone <= 10 * 1024 * 1024,
    "oauth2_dpop_zone_bytes ($dzone) is the realm's oauth2_dpop_zone, "
    . '10m by default, less the slab header');
my $dused = $s2->{v}{oauth2_dpop_zone_used_bytes} // -1;
ok($dused >= 0 && $dused < $dzone / 100,
    "oauth2_dpop_zone_used_bytes ($dused): next to nothing, no proof sent");

######################################################## reload

my $pre = scrape();
my @old = $t->worker_pids;
$t->reload;
my @new = $t->worker_pids;
is(scalar @new, 2, 'after nginx -s reload: two workers');
ok(!grep({ my $n = $_; grep { $_ == $n } @old } @new),
    'after the reload: new worker pids');
my $post = scrape();
is_deeply(counters($post), counters($pre),
    'after the reload: every counter and histogram series as before');
tallies_ok($post, 'after the reload');

# and they go on growing from there
access_token_of($rs) for 1 .. 3;
check('/protected/index.html', 'ok', 200, "after the reload, request $_",
    bearer($tok)) for 1 .. 4;
check('/protected/index.html', 'missing', 401, 'after the reload, no token');
my $grown = scrape();
tallies_ok($grown, 'after the reload and more requests');
{
    my $pc = counters($post);
    my $gc = counters($grown);
    my @shrunk = grep { !defined $gc->{$_} || $gc->{$_} < $pc->{$_} }
        sort keys %$pc;
    is(scalar @shrunk, 0, 'no counter or histogram series went down')
        or diag(join ' ', @shrunk);
}
commits_ok($grown, 'after the reload');

######################################################## store_unavailable

{
    my $u = OAuth2Test->new(workers => 2);
    # a store that cannot open: a plain file (t/store.t); nginx serves 503
    open my $fh, '>', $u->store or die "store: $!";
    print $fh "not an lmdb environment\n";
    close $fh;
    my $http = $u->default_http(extra_server =>
        '    location = /metrics { oauth2_metrics; }');
    $http =~ s/^oauth2_store (\S+);$/oauth2_store $1 size=32m;/m
        or die 'no oauth2_store line';
    $u->write_config($http);
    $u->expect_log(qr/\[alert\] .*oauth2: cannot (?:prepare|open) store/);
    $u->run;
    # at least 7 requests, and on until both workers have answered (each
    # a new connection, spread by reuseport: 7 may all reach one worker)
    my ($n, $n503, %pids) = (0, 0);
    while ($n < 7 || (keys %pids < 2 && $n < 40)) {
        $n++;
        my $r = $u->get('/protected/', bearer(chr(65 + $n % 26) x 43));
        $n503++ if $r->{status} == 503;
        $pids{hdr($r, 'X-Pid') // '?'}++;
    }
    is($n503, $n, "a store that cannot open: $n bearer requests, $n x 503");
    ok(keys %pids >= 2, 'both workers answered 503');
    my $r = $u->get('/metrics');
    is($r->{status}, 200, 'its metrics still answer: 200');
    my $um = parse_metrics($r->{body});
    is($um->{val}{store_unavailable}, $n,
        "oauth2_validations_total{outcome=\"store_unavailable\"} $n");
    is(total($um), $n, 'and no other outcome');
    is_deeply($um->{unavailable}, { (map { ($_ => 0) } @REASONS),
        store => $n }, "oauth2_unavailable_total{reason=\"store\"} $n: "
        . 'each of auth_oauth2\'s 503s, the store\'s, and no other reason');
    is($um->{v}{oauth2_store_used_bytes}, 0,
        'the store that did not open: oauth2_store_used_bytes 0');
    # the size configured, as README says, not 0: an alert on the share
    # of the map used divides by it
    is($um->{v}{oauth2_store_map_bytes}, 32 * 1024 * 1024,
        'the store that did not open: oauth2_store_map_bytes = size=32m');
    unlike($r->{body}, qr/^oauth2_mirror_/m,
        '... and no oauth2_mirror_* series without oauth2_cluster');
    $u->done;
}

######################################################## nginx -t

{
    my $n = OAuth2Test->new;
    $n->write_config("server {\n    listen 127.0.0.1:%%PORT%%;\n"
        . "    location = /metrics { oauth2_metrics; }\n}\n");
    my ($code, $out) = $n->nginx_t;
    isnt($code, 0, 'nginx -t: oauth2_metrics without oauth2_store fails');
    my $msg = '"oauth2_metrics" directive requires "oauth2_store" in the '
        . 'http block';
    like($out, qr/\[emerg\] \Q$msg\E/,
        'nginx -t: the message says oauth2_metrics needs oauth2_store')
        or diag($out);
    like($out, qr/nginx\.conf:\d+/, 'nginx -t: it names the line');
    $n->write_config("oauth2_store %%STORE%%;\nserver {\n"
        . "    listen 127.0.0.1:%%PORT%%;\n"
        . "    location = /metrics { oauth2_metrics on; }\n}\n");
    ($code, $out) = $n->nginx_t;
    isnt($code, 0, 'nginx -t: oauth2_metrics takes no argument but all');
    like($out, qr/\[emerg\] invalid value "on" in "oauth2_metrics" directive, it must be "all"/,
        'nginx -t: oauth2_metrics on: invalid value, it must be "all"')
        or diag($out);
    $n->write_config("oauth2_store %%STORE%%;\nserver {\n"
        . "    listen 127.0.0.1:%%PORT%%;\n    oauth2_metrics;\n}\n");
    ($code, $out) = $n->nginx_t;
    isnt($code, 0, 'nginx -t: oauth2_metrics in a server block fails');
    like($out, qr/\[emerg\] "oauth2_metrics" directive is not allowed here/,
        'nginx -t: oauth2_metrics is a location directive') or diag($out);
    $n->{done} = 1;    # never started
}

######################################################## promtool

my $final = scrape();
tallies_ok($final, 'the final scrape');
my $have = ok(-x $PROMTOOL && -x $PROMETHEUS,
    "Debian's prometheus package is installed ($PROMTOOL, $PROMETHEUS; "
    . 'scripts/install-deps)');
# promtool check metrics < $body: (exit code, what it printed)
sub promtool {
    my ($body, $file) = @_;
    return (127, 'promtool missing') unless $have;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $body;
    close $fh;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', $file or POSIX::_exit(127);
        open STDOUT, '>', "$file.out" or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec { $PROMTOOL } $PROMTOOL, 'check', 'metrics'
            or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return ($? >> 8, OAuth2Test::_slurp("$file.out"));
}

{
    my ($pc, $po) = promtool($final->{r}{body}, $t->dir . '/scrape.txt');
    is($pc, 0, 'promtool check metrics < a scrape: exit 0 (no lint problem)')
        or diag("promtool: $po");
    is($po, '', 'promtool check metrics: says nothing') or diag($po);
}

######################################################## prometheus

my $prom_pid;
END { kill 'TERM', $prom_pid if $prom_pid }

# SIGTERM, then SIGKILL after 10 s: whether it exited on SIGTERM
sub stop_prometheus {
    my $pid = $prom_pid or return 0;
    $prom_pid = undef;
    kill 'TERM', $pid;
    my $end = time + 10;
    while (time < $end) {
        return 1 if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.1;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return 0;
}

{
    my $pdir = $t->dir . '/prometheus';
    mkdir $pdir or die "mkdir $pdir: $!";
    my $pport = $t->port('prometheus');
    open my $fh, '>', "$pdir/prometheus.yml" or die "prometheus.yml: $!";
    print $fh <<"EOF";
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: oauth2
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$PORT{default}']
EOF
    close $fh;
    if ($have) {
        $prom_pid = fork // die "fork: $!";
        if (!$prom_pid) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', "$pdir/prometheus.log" or POSIX::_exit(127);
            open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
            exec { $PROMETHEUS } $PROMETHEUS,
                "--config.file=$pdir/prometheus.yml",
                "--storage.tsdb.path=$pdir/data",
                "--web.listen-address=127.0.0.1:$pport"
                or POSIX::_exit(127);
        }
    }
    my $http = HTTP::Tiny->new(timeout => 3);
    my $base = "http://127.0.0.1:$pport";
    my $query = sub {
        my ($q) = @_;
        my $r = $http->get("$base/api/v1/query?query="
            . OAuth2Authorize::pct($q));
        my $j = $r->{success} ? dj($r->{content}) : undef;
        return undef unless $j && ($j->{status} // '') eq 'success';
        return $j->{data}{result};
    };
    # the issued series as prometheus has them: "realm|client|grant" => n
    my $issued = sub {
        my $res = $query->('oauth2_tokens_issued_total') or return undef;
        return { map { ("$_->{metric}{realm}|$_->{metric}{client_id}|"
            . "$_->{metric}{grant}" => $_->{value}[1]) } @$res };
    };
    # the API gives values as strings
    my $want = $JSON->encode({ map { ($_ => "$ISSUED{$_}") } keys %ISSUED });
    my $got;
    my $t_start = time;
    my $end = time + 30;
    while ($have && time < $end) {
        $got = $issued->();
        last if $got && $JSON->encode($got) eq $want;
        last if waitpid($prom_pid, POSIX::WNOHANG()) == $prom_pid;
        sleep 0.5;
    }
    is_deeply($got, \%ISSUED, 'prometheus scraped /metrics: its '
        . 'oauth2_tokens_issued_total series are the tallies, within 30 s')
        or diag(OAuth2Test::_slurp("$pdir/prometheus.log"));
    diag(sprintf 'prometheus had the series after %.1f s', time - $t_start);
    my $val = $query->('oauth2_validations_total') // [];
    is_deeply({ map { ($_->{metric}{outcome} => $_->{value}[1]) } @$val },
        { map { ($_ => "$VAL{$_}") } @OUTCOMES },
        'prometheus: oauth2_validations_total by outcome = the tallies');
    my $res = $query->('up{job="oauth2"}') // [];
    is($res->[0]{value}[1], '1', 'prometheus: up{job="oauth2"} 1');
    $res = $query->('oauth2_store_commit_seconds_count') // [];
    is($res->[0]{value}[1], $final->{v}{oauth2_store_commit_seconds_count},
        'prometheus: oauth2_store_commit_seconds_count as scraped');
    $res = $query->('histogram_quantile(0.5, '
        . 'oauth2_store_commit_seconds_bucket)') // [];
    ok(@$res == 1 && $res->[0]{value}[1] =~ /^[\d.e+-]+$/
        && $res->[0]{value}[1] > 0 && $res->[0]{value}[1] <= 1,
        'prometheus: histogram_quantile(0.5) of the commit seconds is a '
        . 'number of seconds in (0, 1]') or diag($JSON->encode($res));
    ok(stop_prometheus(), 'prometheus exits on SIGTERM');
}

######################################################## 1024 series

# another nginx (its own zone): 1030 applications, one token each, from 8
# clients at once; the first 1024 series are kept, the 6 others counted
# in oauth2_tokens_issued_untracked_total
{
    my $o = OAuth2Test->new(workers => 2);
    my $n = 1030;
    my @bulk = $o->bulk_apps($n, 'bulk');
    $o->write_config($o->default_http(
        extra_http => "oauth2_client_auth_limit off;\n"
            . "oauth2_expiry_cleanup off;\n",
        extra_server => '    location = /metrics { oauth2_metrics; }'))
        ->run;
    my $ok200 = $o->tokens_at_once(\@bulk);
    is($ok200, $n, "$n applications, one token each: $n x 200");
    my $r = $o->get('/metrics');
    my $om = parse_metrics($r->{body});
    my %is_bulk = map { ("default|$_->{client_id}|client_credentials" => 1) }
        @bulk;
    my @series = keys %{$om->{issued}};
    is(scalar @series, 1024, 'the table of 1024 series is full: 1024 series');
    is(scalar(grep { !$is_bulk{$_} } @series), 0,
        'each of them one of the applications');
    is(scalar(grep { $om->{issued}{$_} != 1 } @series), 0,
        'each series at 1');
    is($om->{v}{oauth2_tokens_issued_untracked_total}, $n - 1024,
        'oauth2_tokens_issued_untracked_total ' . ($n - 1024)
        . ': the tokens of the applications left out');
    my ($pc, $po) = promtool($r->{body}, $o->dir . '/scrape.txt');
    is($pc, 0, 'promtool check metrics < the scrape of 1024 series: exit 0')
        or diag($po);
    # a tracked application goes on in its series, another in untracked
    my %tracked = map { (split /\|/)[1] => 1 } @series;
    my ($in) = grep { $tracked{$_->{client_id}} } @bulk;
    my ($outside) = grep { !$tracked{$_->{client_id}} } @bulk;
    is($o->token($in->{client_id}, $in->{client_secret})->{status}, 200,
        'a second token of a tracked application: 200');
    is($o->token($outside->{client_id}, $outside->{client_secret})
        ->{status}, 200, 'a second token of an untracked application: 200');
    $om = parse_metrics($o->get('/metrics')->{body});
    is($om->{issued}{"default|$in->{client_id}|client_credentials"}, 2,
        'the tracked application\'s series: 2');
    is($om->{v}{oauth2_tokens_issued_untracked_total}, $n - 1024 + 1,
        'the untracked application\'s token: untracked_total + 1');
    is(scalar(keys %{$om->{issued}}), 1024, 'still 1024 series');
    $o->done;
}

######################################################## a redirect's outcome

# try_files to a stricter auth_oauth2 location: the request is refused 403
# insufficient_scope there.  It counts once, and as what refused it: the
# outcomes are "ok and the values of $oauth2_error" (README), and the
# request was not ok
$before = scrape();
check('/tf/x', 'insufficient_scope', 403, 'try_files to @strict (admin) '
    . 'with a read write token', bearer($tok));
$after = scrape();
is(total($after) - total($before), 1,
    'try_files to another auth_oauth2 location: counted once');
is($after->{val}{insufficient_scope} - $before->{val}{insufficient_scope}, 1,
    'try_files to a location that refuses 403 insufficient_scope: counted '
    . 'as insufficient_scope, not ok');

diag(sprintf 'run time %.1f s', time - $T0);
$t->done_testing;
