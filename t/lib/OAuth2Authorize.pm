package OAuth2Authorize;

# Helpers for the authorization-code tests (t/authorize.t,
# t/authorize_browser.t, t/oauthlib_client.t): the nginx locations of the
# flow, users, and the login -> consent -> code dance over raw HTTP through
# OAuth2Test.  Core Perl only.
#
#   my $t = OAuth2Test->new;
#   OAuth2Authorize::user_add($t, 'alice', 'pw');
#   $t->write_config(OAuth2Authorize::http_conf($t))->run;
#   my $f = OAuth2Authorize->new($t);
#   my $session = $f->login($query, 'alice', 'pw');
#   my $r = $f->consent($query, $session);        # 303 to the client
#   my %p = OAuth2Authorize::location_params($r); # code, state, iss

use strict;
use warnings;

use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64url);
use OAuth2Test;

our $PBKDF2 = 1000;    # the default 600000 is far too slow for tests

# the locations of the flow, added to OAuth2Test's default server
# (token, revoke, /protected/ behind auth_oauth2)
our $SERVER = <<'EOF';
    location = /o/authorize/ { oauth2_authorize; }
    location = /o/introspect/ { oauth2_introspect; }
    location = /.well-known/oauth-authorization-server { oauth2_metadata; }
EOF

# http_conf($t, extra_http => '...', extra_server => '...',
#           issuer => 'http://...')
sub http_conf {
    my ($t, %o) = @_;
    my $http = "oauth2_pbkdf2_iterations $PBKDF2;\n"
        . "oauth2_client_auth_limit off;\n"
        . ($o{extra_http} // '');
    my $conf = $t->default_http(extra_http => $http,
        extra_server => $SERVER . ($o{extra_server} // ''));
    # the default server has oauth2_issuer http://127.0.0.1:<port>
    $conf =~ s/^oauth2_issuer [^;]*;/oauth2_issuer $o{issuer};/m
        if defined $o{issuer};
    return $conf;
}

# user_add($t, $name, $password, @flags): dies on failure
sub user_add {
    my ($t, $name, $password, @flags) = @_;
    my ($code, $out, $err) = $t->admin('user', 'add', '--username', $name,
        '--email', "$name\@example.com", '--password', $password,
        '--pbkdf2-iterations', $PBKDF2, @flags);
    die "user add $name: exit $code: $out$err" if $code;
    return $out;
}

# (verifier, S256 challenge) of RFC 7636, from $seed (43..128 chars)
sub pkce {
    my ($verifier) = @_;
    $verifier //= encode_base64url(join '', map { chr int rand 256 } 1 .. 48);
    return ($verifier, encode_base64url(sha256($verifier)));
}

# query(k => v, ...): an authorization request's query string (%20 for
# spaces, as browsers and URL builders mostly do)
sub query {
    my (@pairs) = @_;
    my @p;
    while (@pairs) {
        my ($k, $v) = splice @pairs, 0, 2;
        next unless defined $v;
        push @p, pct($k) . '=' . pct($v);
    }
    return join '&', @p;
}

sub pct {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub unpct {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# Set-Cookie headers: { name => { value => v, raw => the header } }
sub cookies_of { OAuth2Test::cookies_of(@_) }

# the query of a Location header, decoded: (k => v, ...); the raw query
# under '' and the part before '?' under '_base'
sub location_params {
    my ($r) = @_;
    my $loc = ref $r ? OAuth2Test::header($r, 'Location') // '' : $r;
    my ($base, $q) = split /\?/, $loc, 2;
    my %p = ('' => $q // '', _base => $base);
    for my $kv (split /&/, $q // '') {
        my ($k, $v) = split /=/, $kv, 2;
        $p{unpct($k)} = unpct($v // '');
    }
    return %p;
}

# the value of the hidden csrf_token field of a login or consent page
sub csrf_field {
    my ($r) = @_;
    return $r->{body} =~ /name="csrf_token" value="([^"]*)"/ ? $1 : undef;
}

############################################################ the flow

sub new {
    my ($class, $t, %o) = @_;
    return bless { t => $t, path => $o{path} // '/o/authorize/' }, $class;
}

sub t { $_[0]{t} }

sub get {
    my ($self, $query, @hdr) = @_;
    return $self->{t}->get("$self->{path}?$query", @hdr);
}

sub post {
    my ($self, $query, $body, @hdr) = @_;
    return $self->{t}->post_form("$self->{path}?$query", $body, @hdr);
}

# login($query, $user, $password): GET the login page, POST the form with
# its double-submit cookie; returns "oauth2_session=..." (undef if no
# session cookie came back) and, in list context, the POST's response
# and the GET's
sub login {
    my ($self, $query, $user, $pw) = @_;
    my $g = $self->get($query);
    my $csrf = cookies_of($g)->{oauth2_csrf}{value} // '';
    my $r = $self->post($query, OAuth2Test::form(action => 'login',
        csrf_token => csrf_field($g) // $csrf, username => $user,
        password => $pw), Cookie => "oauth2_csrf=$csrf");
    my $s = cookies_of($r)->{oauth2_session}{value};
    my $session = defined $s && length $s ? "oauth2_session=$s" : undef;
    return wantarray ? ($session, $r, $g) : $session;
}

# consent($query, $session, action => 'allow'|'deny', csrf => ...):
# GET the consent page, POST its form; returns the POST's response (and
# the GET's in list context)
# A consent remembered from before sends the code back at once: the GET's
# 303 is then the answer to an 'allow'; any other form post asks again
# with prompt=consent.
sub consent {
    my ($self, $query, $session, %o) = @_;
    my $g = $self->get($query, Cookie => $session);
    if ($g->{status} == 303 && defined {location_params($g)}->{code}) {
        return wantarray ? ($g, $g) : $g
            if ($o{action} // 'allow') eq 'allow' && !exists $o{csrf};
        $query .= '&prompt=consent';
        $g = $self->get($query, Cookie => $session);
    }
    my $csrf = exists $o{csrf} ? $o{csrf} : csrf_field($g);
    my $r = $self->post($query, OAuth2Test::form(
        action => $o{action} // 'allow',
        defined $csrf ? (csrf_token => $csrf) : ()), Cookie => $session);
    return wantarray ? ($r, $g) : $r;
}

# code($query, $session): the code of an allowed consent (dies if none)
sub code {
    my ($self, $query, $session) = @_;
    my $r = $self->consent($query, $session);
    my %p = location_params($r);
    die "no code: $r->{status} " . (OAuth2Test::header($r, 'Location') // '')
        . " $r->{body}" unless $r->{status} == 303 && defined $p{code};
    return wantarray ? ($p{code}, $r) : $p{code};
}

# redeem($code, client => $app, redirect_uri => .., verifier => ..,
#        auth => 'post'|'basic'|'none', extra => [k, v ...])
sub redeem {
    my ($self, $code, %o) = @_;
    my $app = $o{client};
    my $auth = $o{auth} // ($app->{client_secret} ? 'post' : 'none');
    my @body = (grant_type => 'authorization_code', code => $code);
    push @body, redirect_uri => $o{redirect_uri} if defined $o{redirect_uri};
    push @body, code_verifier => $o{verifier} if defined $o{verifier};
    my @h;
    if ($auth eq 'basic') {
        push @h, Authorization => $self->{t}->basic($app->{client_id},
            $app->{client_secret});
    } else {
        push @body, client_id => $app->{client_id}
            if defined $app->{client_id};
        push @body, client_secret => $app->{client_secret}
            if $auth eq 'post';
    }
    push @body, @{$o{extra} // []};
    return $self->{t}->post_form($o{path} // '/o/token/',
        OAuth2Test::form(@body), @h);
}

# introspect($token, $app): the response ({json}{active} ...)
sub introspect {
    my ($self, $token, $app) = @_;
    return $self->{t}->post_form('/o/introspect/',
        OAuth2Test::form(token => $token),
        Authorization => $self->{t}->basic($app->{client_id},
            $app->{client_secret}));
}

# refresh($rt, $app): the token endpoint's response
sub refresh {
    my ($self, $rt, $app) = @_;
    my @body = (grant_type => 'refresh_token', refresh_token => $rt,
        client_id => $app->{client_id});
    push @body, client_secret => $app->{client_secret}
        if $app->{client_secret};
    return $self->{t}->post_form('/o/token/', OAuth2Test::form(@body));
}

1;
