package OAuth2Grants;

# Helpers for the user grants (password, refresh_token), introspection and
# the seed 001 register/login endpoints, on top of OAuth2Test.  Core Perl
# only.
#
#   use OAuth2Grants qw(:all);
#   add_user($t, 'alice', 'pw', email => 'a@x.io');
#   my $r = password_token($t, $app, 'alice', 'pw');
#   my $n = refresh($t, $app, $r->{json}{refresh_token});
#   my $i = introspect($t, $app, $n->{json}{access_token});

use strict;
use warnings;

use Exporter qw(import);
use JSON::PP ();
use OAuth2Test;

our @EXPORT_OK = qw(add_user password_token refresh introspect
    token_count grant_locations inactive_ok PBKDF2);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

# every test uses cheap hashes (the default is 600000 iterations)
use constant PBKDF2 => 1000;

# add_user($t, $username, $password, email => '..', inactive => 1):
# the user's JSON (dies if the CLI fails)
sub add_user {
    my ($t, $name, $password, %o) = @_;
    my @args = ('user', 'add', '--username', $name,
        '--email', $o{email} // "$name\@example.com",
        '--password', $password, '--pbkdf2-iterations', PBKDF2);
    push @args, '--inactive' if $o{inactive};
    return $t->admin_json(@args);
}

# the client authentication part of a request: (body pairs, headers)
sub _client {
    my ($t, $app, $auth) = @_;
    $auth //= $app->{client_secret} ? 'basic' : 'id';
    return ([], [Authorization => $t->basic($app->{client_id},
        $app->{client_secret})]) if $auth eq 'basic';
    return ([client_id => $app->{client_id},
        client_secret => $app->{client_secret}], []) if $auth eq 'post';
    return ([client_id => $app->{client_id}], []) if $auth eq 'id';
    return ([], []);    # 'none': no client authentication at all
}

# password_token($t, $app, $username, $password, auth => 'basic'|'post'|
#     'id'|'none', scope => '..', path => '/o/token/', from => '127.0.0.N'):
#     the response
sub password_token {
    my ($t, $app, $user, $password, %o) = @_;
    my ($body, $hdr) = _client($t, $app, $o{auth});
    my @p = (grant_type => 'password', username => $user,
        password => $password, @$body);
    push @p, scope => $o{scope} if defined $o{scope};
    return $t->post_form($o{path} // '/o/token/', OAuth2Test::form(@p),
        @$hdr, ($o{from} ? (-from => $o{from}) : ()));
}

# refresh($t, $app, $rt, auth => .., scope => .., path => ..): the response
sub refresh {
    my ($t, $app, $rt, %o) = @_;
    my ($body, $hdr) = _client($t, $app, $o{auth});
    my @p = (grant_type => 'refresh_token', refresh_token => $rt, @$body);
    push @p, scope => $o{scope} if defined $o{scope};
    return $t->post_form($o{path} // '/o/token/', OAuth2Test::form(@p),
        @$hdr);
}

# introspect($t, $app, $token, auth => .., path => '/o/introspect/')
sub introspect {
    my ($t, $app, $token, %o) = @_;
    my ($body, $hdr) = _client($t, $app, $o{auth});
    my @p = ((defined $token ? (token => $token) : ()), @$body);
    return $t->post_form($o{path} // '/o/introspect/', OAuth2Test::form(@p),
        @$hdr);
}

# the number of records in the store's token table (mdb_stat)
sub token_count {
    my ($t) = @_;
    my ($code, $out, $err) = $t->_run_cmd('/usr/bin/mdb_stat', '-s',
        'tokens', $t->store);
    return undef if $code;
    return $out =~ /Entries:\s*(\d+)/ ? $1 : undef;
}

# the locations of issue 4's endpoints, for default_http(extra_server => ..)
sub grant_locations {
    my (%o) = @_;
    my $conf = "    location = /o/introspect/ { oauth2_introspect; }\n"
        . "    location = /.well-known/oauth-authorization-server "
        . "{ oauth2_metadata; }\n"
        . "    location /me/ {\n"
        . "        auth_oauth2 \"api\";\n"
        . "        add_header X-User \$oauth2_user always;\n"
        . "        add_header X-Client \$oauth2_client_id always;\n"
        . "        alias %%DIR%%/html/;\n"
        . "    }\n";
    $conf .= "    location = /users/register/ { oauth2_register; }\n"
        if $o{register};
    $conf .= "    location = /users/login/ { oauth2_login $o{login}; }\n"
        if $o{login};
    $conf .= $o{extra} // '';
    return $conf;
}

# RFC 7662 2.2 (R56): 200, exactly {"active": false}, no-store
sub inactive_ok {
    my ($t, $r, $name) = @_;
    my $ok = Test::More::is($r->{status}, 200, "$name: 200 (R56)");
    $ok &= Test::More::is_deeply($r->{json}, { active => JSON::PP::false },
        "$name: {\"active\": false} and nothing else (R56)");
    $ok &= $t->no_store_ok($r, $name);
    Test::More::diag("response was: $r->{raw}") unless $ok;
    return $ok;
}

1;
