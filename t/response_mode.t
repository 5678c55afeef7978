# response_mode at the authorization endpoint: query (the default),
# fragment (as django-oauth-toolkit's oauthlib answers it) and form_post
# (OAuth 2.0 Form Post Response Mode; RFC 9700 4.3.1: the code kept out
# of the URL, of browser history and of Referer).  Every answer, the
# code's and the errors', goes back in the mode asked; any other mode
# (JARM's "jwt") is refused rather than answered in another; the metadata
# says which (RFC 8414 2).  t/authorize_browser.t drives form_post and
# fragment in Chromium.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_base64);
use Test::More;
use OAuth2Test;
use OAuth2Authorize;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my ($user, $pw) = ('rosa', 'Mellow-Cactus-Violin-3');
OAuth2Authorize::user_add($t, $user, $pw);
my $CB = 'https://client.example/cb?tenant=7';
my $app = $t->new_app(name => 'Mode App', grant => ['authorization_code'],
    redirect_uris => [$CB]);
$t->write_config(OAuth2Authorize::http_conf($t))->run;
my $f = OAuth2Authorize->new($t);
my ($verifier, $challenge) = OAuth2Authorize::pkce();
my $STATE = q{s"<a>&'1};

sub q_for {
    my (%o) = @_;
    return OAuth2Authorize::query(client_id => $app->{client_id},
        response_type => 'code', redirect_uri => $CB,
        scope => $o{scope} // 'read', state => $STATE,
        code_challenge => $challenge, code_challenge_method => 'S256',
        map { $_ => $o{$_} } grep { $_ ne 'scope' } keys %o);
}
sub decode_html {
    my ($s) = @_;
    $s =~ s/&quot;/"/g; $s =~ s/&#39;/'/g; $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g; $s =~ s/&amp;/&/g;
    return $s;
}
# the form of a form_post page: (action, {name => value})
sub form_of {
    my ($r) = @_;
    my ($action) = ($r->{body} // '') =~ /<form method="post" action="([^"]*)">/;
    my %f = map { decode_html($_->[0]) => decode_html($_->[1]) }
        map { [ /name="([^"]*)" value="([^"]*)"/ ] }
        (($r->{body} // '') =~ /<input type="hidden" [^>]*>/g);
    return (defined $action ? decode_html($action) : undef, \%f);
}
# the parameters of a Location's fragment
sub fragment_params {
    my ($r) = @_;
    my $loc = OAuth2Test::header($r, 'Location') // '';
    my ($base, $frag) = split /#/, $loc, 2;
    my %p = (_base => $base);
    for my $kv (split /&/, $frag // '') {
        my ($k, $v) = split /=/, $kv, 2;
        $p{OAuth2Authorize::unpct($k)} = OAuth2Authorize::unpct($v // '');
    }
    return %p;
}

my $meta = $t->get('/.well-known/oauth-authorization-server');
is_deeply($meta->{json}{response_modes_supported},
    [qw(query fragment form_post)],
    'metadata: response_modes_supported query, fragment, form_post');

my $session = $f->login(q_for(), $user, $pw);
ok($session, 'signed in');
# the first consent, remembered: the requests below get their code at once
my ($code0) = $f->code(q_for(), $session);
ok($code0, 'consented (remembered)');

############################################################## fragment

my $r = $f->get(q_for(response_mode => 'fragment'), Cookie => $session);
is($r->{status}, 303, 'fragment: 303');
my %p = fragment_params($r);
is($p{_base}, $CB, 'fragment: to the redirect_uri, its own query kept');
like($p{code} // '', qr/^[A-Za-z0-9_-]{43}$/, 'fragment: the code in the fragment');
is($p{state}, $STATE, 'fragment: the state in the fragment');
is($p{iss}, 'http://127.0.0.1:' . $t->port, 'fragment: iss in the fragment');
unlike(OAuth2Test::header($r, 'Location'), qr/\?[^#]*code=/,
    'fragment: no code in the query');
is($f->redeem($p{code}, client => $app, redirect_uri => $CB,
    verifier => $verifier)->{status}, 200, "fragment: the code redeems");
$r = $f->get(q_for(response_mode => 'fragment', scope => 'no-such-scope'),
    Cookie => $session);
%p = fragment_params($r);
is($p{error}, 'invalid_scope', 'fragment: an error goes back in the fragment');
is($p{state}, $STATE, '... with the state');

############################################################# form_post

$r = $f->get(q_for(response_mode => 'form_post'), Cookie => $session);
is($r->{status}, 200, 'form_post: 200, a page');
ok(!defined OAuth2Test::header($r, 'Location'), 'form_post: no Location');
like(OAuth2Test::header($r, 'Content-Type') // '', qr{^text/html},
    'form_post: text/html');
is(OAuth2Test::header($r, 'Cache-Control'), 'no-store',
    'form_post: Cache-Control no-store (the page holds a code)');
my ($action, $fields) = form_of($r);
is($action, $CB, 'form_post: the form posts to the redirect_uri, escaped');
like($fields->{code} // '', qr/^[A-Za-z0-9_-]{43}$/, 'form_post: the code');
is($fields->{state}, $STATE, 'form_post: the state, HTML-escaped in the page');
unlike($r->{body}, qr/s"<a>/, 'form_post: nothing of the state raw in the page');
is($fields->{iss}, 'http://127.0.0.1:' . $t->port, 'form_post: iss');
my ($script) = $r->{body} =~ m{<script>(.*?)</script>};
ok(defined $script, 'form_post: a script submits the form');
my $hash = sha256_base64($script // '');
$hash .= '=' while length($hash) % 4;
like(OAuth2Test::header($r, 'Content-Security-Policy') // '',
    qr/script-src 'sha256-\Q$hash\E'/,
    "form_post: the page's CSP allows that script by its hash, no other");
like($r->{body}, qr{<noscript><button type="submit">},
    'form_post: a button where scripts are off');
is($f->redeem($fields->{code}, client => $app, redirect_uri => $CB,
    verifier => $verifier)->{status}, 200, 'form_post: the code redeems');

$r = $f->get(q_for(response_mode => 'form_post', scope => 'no-such-scope'),
    Cookie => $session);
($action, $fields) = form_of($r);
is($fields->{error}, 'invalid_scope', 'form_post: an error goes back in the form');
is($fields->{state}, $STATE, '... with the state');
ok(!exists $fields->{code}, '... and no code');

# the consent page's answer too
$r = $f->consent(q_for(response_mode => 'form_post', prompt => 'consent'),
    $session);
($action, $fields) = form_of($r);
is($r->{status}, 200, 'form_post after the consent page: the form page');
like($fields->{code} // '', qr/^[A-Za-z0-9_-]{43}$/, '... with a code');
$r = $f->consent(q_for(response_mode => 'form_post', prompt => 'consent'),
    $session, action => 'deny');
($action, $fields) = form_of($r);
is($fields->{error}, 'access_denied', 'form_post, Deny: access_denied in the form');

############################################################ the others

$r = $f->get(q_for(response_mode => 'query'), Cookie => $session);
%p = OAuth2Authorize::location_params($r);
ok($p{code}, 'response_mode=query: the code in the query, as without it');
is($p{tenant}, 7, '... after the redirect_uri\'s own query');
for my $mode ('jwt', 'query.jwt', 'FORM_POST', '') {
    $r = $f->get(q_for(response_mode => $mode), Cookie => $session);
    %p = OAuth2Authorize::location_params($r);
    if ($mode eq '') {
        ok($p{code}, 'an empty response_mode: the default, query');
        next;
    }
    is($p{error}, 'invalid_request', "response_mode=$mode: invalid_request");
    like($p{error_description} // '', qr/response_mode/, '... naming response_mode');
    ok(!exists $p{code}, '... and no code');
}
$r = $f->get(q_for() . '&response_mode=fragment&response_mode=query',
    Cookie => $session);
is($r->{status}, 400, 'response_mode twice: 400, the request refused');
ok(!defined OAuth2Test::header($r, 'Location'), '... and no redirect');

$t->done_testing;
