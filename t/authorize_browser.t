# The authorization-code flow in a real browser (issue 4 "Done means": the
# whole code flow driven by headless Chromium: login, consent, redirect,
# token, a protected call; seed 004; docs/security.md R19, R23, R26, R32).
# t/browser/authorize_flow.py drives Chromium and serves the client's
# loopback redirect_uri; this file checks what reached the client, redeems
# the code with PKCE and calls the protected location with the token.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IPC::Open2 qw(open2);
use Test::More;
use Time::HiRes qw(time);
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $PYTHON = OAuth2Test::require_browser();

my $t = OAuth2Test->new;
my ($user, $pw) = ('alice', 'correct horse battery staple');
OAuth2Authorize::user_add($t, $user, $pw);
my $APP = 'Printer Dashboard';
my $app = $t->new_app(name => $APP,
    grant => ['authorization_code', 'refresh_token'],
    redirect_uris => ['http://127.0.0.1/cb']);
$t->write_config(OAuth2Authorize::http_conf($t))->run;

my $base = 'http://127.0.0.1:' . $t->port;
my $cbport = $t->port('callback');
my $cb = "http://127.0.0.1:$cbport/cb";
my ($verifier, $challenge) = OAuth2Authorize::pkce();
my %state = (allow => 'allow-' . int(rand 1e9) . '/&=?',
    deny => 'deny-' . int(rand 1e9), form_post => 'fp-' . int(rand 1e9),
    fragment => 'frag-' . int(rand 1e9));
# the second request asks again with prompt=consent: the first one's
# consent is remembered, and would send the code back at once
sub url {
    my ($state, @prompt) = @_;
    return "$base/o/authorize/?" . OAuth2Authorize::query(
        client_id => $app->{client_id}, response_type => 'code',
        redirect_uri => $cb, scope => 'read write', state => $state,
        code_challenge => $challenge, code_challenge_method => 'S256',
        @prompt);
}

my $t0 = time;
my @cmd = ($PYTHON, "$FindBin::Bin/browser/authorize_flow.py", $cbport,
    $user, $pw, $APP, url($state{allow}),
    url($state{deny}, prompt => 'consent'),
    url($state{form_post}, response_mode => 'form_post'),
    url($state{fragment}, response_mode => 'fragment'));
push @cmd, '--screenshot', $ENV{AUTHORIZE_SCREENSHOT}
    if $ENV{AUTHORIZE_SCREENSHOT};
my $py = open2(my $from, my $to, @cmd);
close $to;
my (@callbacks, $done);
while (my $line = <$from>) {
    chomp $line;
    if ($line =~ /^ok - (.*)$/) {
        pass("browser: $1");
    } elsif ($line =~ /^not ok - (.*?)(?: # (.*))?$/) {
        fail("browser: $1");
        diag($2) if defined $2;
    } elsif ($line =~ /^callback (.*)$/) {
        push @callbacks, { OAuth2Authorize::location_params("?$1") };
    } elsif ($line =~ /^done (\d+) failures$/) {
        $done = 1;
    } else {
        diag("authorize_flow.py: $line");
    }
}
waitpid $py, 0;
is($? >> 8, 0, 'authorize_flow.py exits 0');
ok($done, 'authorize_flow.py ran to the end');
diag(sprintf 'browser part: %.1fs', time - $t0) if $ENV{VERBOSE};

############################################################ the client

is(scalar @callbacks, 4,
    'the client got four callbacks (Authorize, Deny, form_post, fragment)');
my %allow = %{$callbacks[0] // {}};
my %deny = %{$callbacks[1] // {}};

like($allow{code} // '', qr/^[A-Za-z0-9_-]{43}$/,
    'Authorize: the callback has a code (R27)');
is($allow{state}, $state{allow}, 'Authorize: the state comes back (R23)');
like($allow{''}, qr/state=allow-\d+%2F%26%3D%3F/,
    'Authorize: the state is percent-encoded (R23)');
is($allow{iss}, "http://127.0.0.1:" . $t->port,
    'Authorize: iss is the issuer (R23)');

# the client redeems the code: PKCE verifier, the loopback redirect_uri
my $f = OAuth2Authorize->new($t);
my $r = $f->redeem($allow{code}, client => $app, redirect_uri => $cb,
    verifier => $verifier);
is($r->{status}, 200, "the browser's code gets a token at /o/token/");
is($r->{json}{scope}, 'read write', 'the token has the scopes consented to');
my $at = $r->{json}{access_token} // '';
my $p = $t->bearer_get('/protected/', $at);
is($p->{status}, 200, 'the token opens the protected location');
is($p->{body}, "hello\n", 'the protected location serves its content');
is($f->introspect($at, $app)->{json}{username}, $user,
    "the token is alice's");
$r = $f->redeem($allow{code}, client => $app, redirect_uri => $cb,
    verifier => $verifier);
is($r->{json}{error}, 'invalid_grant', 'the code works once (R27)');

is($deny{error}, 'access_denied', 'Deny: error=access_denied');
is($deny{state}, $state{deny}, 'Deny: the state comes back (R24)');
ok(!exists $deny{code}, 'Deny: no code');

# the codes of response_mode=form_post (the form the browser posted) and
# fragment (what the client's page read from its URL)
for my $i (2, 3) {
    my %c = %{$callbacks[$i] // {}};
    my $mode = $i == 2 ? 'form_post' : 'fragment';
    is($c{state}, $state{$mode}, "$mode: the state comes back");
    $r = $f->redeem($c{code} // '', client => $app, redirect_uri => $cb,
        verifier => $verifier);
    is($r->{status}, 200, "$mode: the browser's code gets a token");
}

$t->done_testing;
