# A full store (oauth2_store size=) is a limit with a clear edge: the write
# that does not fit is answered 503 in the endpoint's shape, error.log
# says why at "error", nothing already answered is lost, validation goes
# on, and oauth2-admin refuses with the same reason.  Never a crash.
# oauth2_metrics counts what was written, not what was tried: the commit
# histograms hold the tokens' commits only, and each refused token is one
# oauth2_store_write_errors_total and one 503 of the store
# (oauth2_unavailable_total{reason="store"}).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $app = $t->new_app(name => 'filler');
# no background writes: every commit of nginx is a token's
my $conf = $t->default_http(extra_http => "oauth2_expiry_cleanup off;\n",
    extra_server => "    location = /metrics { oauth2_metrics; }\n");
$conf =~ s/oauth2_store %%STORE%%;/oauth2_store %%STORE%% size=1m;/ or die;
$t->write_config($conf)->run;

# the admin daemon's pages on the same store: a staff user signed in
# before it fills
my $STAFF_PW = 'Full-store-staff-pass-1';
$t->admin_json('user', 'add', '--username', 'staff', '--email',
    'staff@example.com', '--password', $STAFF_PW, '--staff',
    '--pbkdf2-iterations', 1000);
$t->run_daemon;
sub daemon {
    my ($method, $path, $cookie, $body) = @_;
    return $t->request($method, $path, port => $t->daemon_port,
        headers => [Cookie => $cookie, defined $body
            ? ('Content-Type' => 'application/x-www-form-urlencoded') : ()],
        defined $body ? (body => $body) : ());
}
sub csrf_field { $_[0]{body} =~ /name="csrf" value="([^"]+)"/ ? $1 : '' }
my $login = daemon('GET', '/o/applications/login/', undef);
my $login_csrf = OAuth2Test::cookies_of($login)->{oauth2_csrf}{value} // '';
my $in = daemon('POST', '/o/applications/login/', "oauth2_csrf=$login_csrf",
    OAuth2Test::form(csrf => csrf_field($login), username => 'staff',
        password => $STAFF_PW));
is($in->{status}, 303, 'the staff user signs in at the daemon\'s pages')
    or diag($in->{raw});
my $session = 'oauth2_session='
    . (OAuth2Test::cookies_of($in)->{oauth2_session}{value} // '');

# a series of the metrics, from its location
sub metric {
    my ($name) = @_;
    my $body = $t->get('/metrics')->{body} // '';
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}
my %m0 = map { ($_ => metric($_)) } qw(oauth2_store_commit_seconds_count
    oauth2_store_commit_batch_size_sum oauth2_store_write_errors_total),
    'oauth2_unavailable_total{reason="store"}';

# fill it: tokens until one is refused, then 10 more
my (@issued, $refused, $more503);
for my $i (1 .. 20000) {
    my $r = $t->token($app->{client_id}, $app->{client_secret});
    if ($r->{status} == 200) {
        push @issued, $r->{json}{access_token};
        next;
    }
    $refused = $r;
    last;
}
ok(@issued > 100, scalar(@issued) . ' tokens fitted in 1m');
ok($refused, 'then a token request was refused');
for my $i (1 .. 10) {
    my $r = $t->token($app->{client_id}, $app->{client_secret});
    $more503++ if $r->{status} == 503;
    push @issued, $r->{json}{access_token} if $r->{status} == 200;
}
my $n503 = 1 + ($more503 // 0);
my %d = map { ($_ => (metric($_) // -1) - ($m0{$_} // 0)) } keys %m0;
is($d{oauth2_store_commit_seconds_count}, scalar @issued,
    'oauth2_store_commit_seconds_count: one commit a token issued ('
    . scalar(@issued) . '), none for the refused ones');
is($d{oauth2_store_commit_batch_size_sum}, scalar @issued,
    'oauth2_store_commit_batch_size_sum: the changes written, the tokens');
is($d{oauth2_store_write_errors_total}, $n503,
    "oauth2_store_write_errors_total: the $n503 tokens refused");
is($d{'oauth2_unavailable_total{reason="store"}'}, $n503,
    "oauth2_unavailable_total{reason=\"store\"}: their $n503 503s");
is($refused->{status}, 503, '... with 503');
is($refused->{json}{error}, 'temporarily_unavailable',
    '... in the OAuth error shape');
like(OAuth2Test::header($refused, 'Retry-After') // '', qr/^\d+$/,
    '... with Retry-After');
like(OAuth2Test::_slurp($t->error_log),
    qr/\[error\].*answering 503: the store is full: raise oauth2_store's size=/,
    'error.log says why, at error');

# nothing answered before is lost, and validation goes on
my $ok = 0;
for my $tok (@issued[0, int(@issued / 2), -1]) {
    $ok++ if $t->bearer_get('/protected/', $tok)->{status} == 200;
}
is($ok, 3, 'the first, a middle and the last token issued still open a location');

# the admin refuses with the same reason once its own record does not fit
# (a small record may still find room in a page), and writes nothing
my ($code, $out, $err);
my $added = 0;
for my $n (1 .. 500) {
    ($code, $out, $err) = $t->admin('app', 'add', '--name', "extra-$n",
        '--grant', 'client_credentials');
    last if $code != 0;
    $added++;
}
isnt($code, 0, "oauth2-admin app add on a full store fails (after $added more)");
like($err, qr/the store is full/, '... saying the store is full');
my $list = $t->admin_json('app', 'list');
is(scalar(grep { ($_->{name} // '') =~ /^extra-\d+$/ } @$list), $added,
    '... and the refused application is not there, not even in part');

# the daemon's pages answer a write that does not fit as its API does:
# 503 with Retry-After, a retryable outage, never a 500 "server error"
# (R77); and nothing of it is written
my ($page, $form, $tried);
for my $n (1 .. 200) {
    $tried = "page-$n";
    $form = daemon('GET', '/o/applications/register/', $session);
    $page = daemon('POST', '/o/applications/register/', $session,
        OAuth2Test::form(csrf => csrf_field($form), name => $tried,
            client_type => 'confidential', grant_client_credentials => '1'));
    # 200: registered (the page shows its secret once); a small record
    # may still find room in a page, as the CLI's do above
    last if $page->{status} != 200;
}
is($form->{status}, 200, 'the daemon\'s register page, signed in: 200');
is($page->{status}, 503,
    'registering an application on the daemon\'s page of a full store: 503')
    or diag($page->{raw});
like(OAuth2Test::header($page, 'Retry-After') // '', qr/^\d+$/,
    '... with Retry-After');
like($page->{body}, qr/unavailable/i, '... and a page that says so');
ok(!grep({ ($_->{name} // '') eq $tried } @{$t->admin_json('app', 'list')}),
    "... and $tried, refused, is not there");

# even a delete needs new pages (copy-on-write): on a full store it is
# refused cleanly too, and raising size= is the way out
my $r = $t->revoke($app->{client_id}, $app->{client_secret}, $issued[0]);
ok($r->{status} == 200 || $r->{status} == 503,
    "a revocation on a full store: 200 or 503, never 500 ($r->{status})");

# token issue --count more than the store has room for is refused before
# any token: a run that filled it would leave it full of tokens no one
# holds (each realm's writes refused until they expire)
{
    my $file = $t->dir . '/bulk.tokens';
    my $entries = sub {
        `mdb_stat -s tokens ${\ $t->store} 2>&1` =~ /Entries: (\d+)/ ? $1 : -1 };
    my $before = $entries->();
    my ($code, $out, $err) = $t->admin('token', 'issue', '--client-id',
        $app->{client_id}, '--count', 100000, '--out', $file);
    is($code, 1, 'token issue --count 100000 on a 1m store: exit 1');
    like($err, qr/--count 100000 needs about \d+ MiB of the store, which has \d+ MiB free of its 1 MiB/,
        '... saying what it needs and what the store has') or diag($err);
    ok(!-e $file, '... no file');
    is($entries->(), $before, "... and no token written ($before before)");
}

$t->done_testing;
