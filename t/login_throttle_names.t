# The per-name password throttle (oauth2_client_auth_limit n, per name and
# address) tells nothing about which names are accounts (R83, OWASP
# authentication: no enumeration): an account counts under its id
# whichever name reached it, an unknown name under itself as sent, so
# that no unknown spelling ("ALICE", "#1") fills or spares an account's
# bucket; both are refused after n failures alike.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;
use OAuth2Grants qw(:all);

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'pw', grant => ['password']);
$t->write_config($t->default_http(
    extra_http => "oauth2_client_auth_limit 3 60s;\n"
        . 'oauth2_pbkdf2_iterations ' . PBKDF2 . ";\n",
    extra_server => "    location = /users/login/ { oauth2_login $app->{client_id}; }\n"))
    ->run;
my $PW = 'Quiet-Harbor-62';
my $alice = add_user($t, 'alice', $PW, email => 'alice@example.com');

# a wrong password for $name from $from: its status and error
sub guess {
    my ($name, $from) = @_;
    my $r = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
        username => $name, password => 'wrong-guess'),
        Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
        '-from' => $from);
    return "$r->{status} " . ($r->{json}{error} // '-');
}

my $ID = $alice->{id} // die 'add_user gave no id';

# three failures of "ALICE" (no such user: usernames are exact) from one
# address, then "alice": a real account, whose bucket ALICE's did not fill
is(join(',', map { guess('ALICE', '127.6.0.1') } 1 .. 3),
    '400 invalid_grant,400 invalid_grant,400 invalid_grant', 'three failures of "ALICE"');
is(guess('alice', '127.6.0.1'), '400 invalid_grant',
    '"alice" after three of "ALICE": checked, not 429');
# and the same for a name that is no account: "bob" after "BOB" answers as
# "alice" after "ALICE" did, so the pair tells nothing
guess('BOB', '127.6.0.5') for 1 .. 3;
is(guess('bob', '127.6.0.5'), '400 invalid_grant',
    '"bob" (no account) after three of "BOB": checked, not 429, as for alice');

# the same for an unknown name shaped as an account's key
guess("#$ID", '127.6.0.2') for 1 .. 3;
is(guess('alice', '127.6.0.2'), '400 invalid_grant',
    "\"alice\" after three of \"#$ID\": checked, not 429");

# counted alike: an unknown name and an account are each refused after 3
guess('nobody-here', '127.6.0.3') for 1 .. 3;
my $unknown = guess('nobody-here', '127.6.0.3');
guess('alice', '127.6.0.4') for 1 .. 3;
my $known = guess('alice', '127.6.0.4');
like($unknown, qr/^429 /, "an unknown name: refused after three failures ($unknown)");
is($known, $unknown, 'an account: refused after three failures, the same answer');

# emails are looked up whatever their case, so every spelling of one
# counts as one, known or not: "Alice@..." after three of "alice@..."
# answers the same for an account's email and for one that is none
sub by_email {
    my ($email, $from) = @_;
    my $r = $t->post_form('/users/login/', OAuth2Test::form(email => $email,
        password => 'wrong-guess'), '-from' => $from);
    return $r->{status};
}
by_email('alice@example.com', '127.6.0.6') for 1 .. 3;
my $known_email = by_email('Alice@Example.com', '127.6.0.6');
by_email('nobody@example.com', '127.6.0.7') for 1 .. 3;
my $unknown_email = by_email('Nobody@Example.com', '127.6.0.7');
is($known_email, 429, "an account's email in another case after three failures: 429");
is($unknown_email, $known_email, '... and so for an email that is no account\'s');

# the right password still works from an address that did not fail
my $ok = $t->post_form('/o/token/', OAuth2Test::form(grant_type => 'password',
    username => 'alice', password => $PW),
    Authorization => $t->basic($app->{client_id}, $app->{client_secret}),
    '-from' => '127.6.0.9');
is($ok->{status}, 200, 'alice signs in from another address');

$t->done_testing;
