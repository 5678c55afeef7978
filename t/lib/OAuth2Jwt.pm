# Helpers for the JWT tests (t/jwt.t, t/simplejwt.t): python3-jwt under
# Debian's /usr/bin/python3 as the independent verifier, and compact JWS
# pieces decoded without verifying.
#
#   use OAuth2Jwt qw(:all);
#   require_pyjwt('the JWT test');        # a failure, never a skip
#   my ($header, $claims) = parts($token);
#   my @results = py({op => 'verify', ...}, ...);   # t/clients/jwt_verify.py
package OAuth2Jwt;

use strict;
use warnings;
use Exporter 'import';
use FindBin;
use IPC::Open2 qw(open2);
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use Test::More ();

our @EXPORT_OK = qw(require_pyjwt py b64u_dec b64u_enc parts $PYTHON);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

our $PYTHON = '/usr/bin/python3';
my $JSON = JSON::PP->new->canonical;

# python3-jwt missing is a failure of the suite, not a skip
sub require_pyjwt {
    my ($what) = @_;
    return 1 if system($PYTHON, '-c', 'import jwt, cryptography') == 0;
    Test::More::fail("$what needs python3-jwt: run scripts/install-deps");
    Test::More::done_testing();
    exit;
}

# jwt_verify.py: a list of operations in, a list of results out
sub py {
    my @ops = @_;
    my $pid = open2(my $from, my $to, $PYTHON,
        "$FindBin::Bin/clients/jwt_verify.py");
    print $to $JSON->encode(\@ops);
    close $to;
    my $out = do { local $/; <$from> };
    close $from;
    waitpid $pid, 0;
    my $res = eval { JSON::PP->new->decode($out // '') };
    die "jwt_verify.py failed (status $?): " . ($out // '') unless $res;
    return wantarray ? @$res : $res->[0];
}

sub b64u_dec {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

sub b64u_enc {
    my $s = encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# (header, claims) of a compact JWS, unverified
sub parts {
    my ($tok) = @_;
    my @p = split /\./, $tok // '', -1;
    return ({}, {}) unless @p == 3;
    my $h = eval { JSON::PP->new->decode(b64u_dec($p[0])) } // {};
    my $c = eval { JSON::PP->new->decode(b64u_dec($p[1])) } // {};
    return ($h, $c);
}

1;
