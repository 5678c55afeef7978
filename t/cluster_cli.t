# oauth2-admin --etcd and a mirror that lags (issue 13; docs/security.md
# R86): with the sync daemon held (SIGSTOP), `handshake-key extract`
# leaves the key in its file (the only copy once etcd has removed it from
# the store): it never removes the file while the key's removal may have
# been applied.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(sleep);
use OAuth2Test;

OAuth2Test::require_build('admin');
OAuth2Test::require_etcd();

my $t = OAuth2Test->new;
my $dir = $t->dir;
$t->run_sync($t->run_etcd);

sub etcd_json {
    my ($path, $body) = @_;
    my ($code, $out) = $t->etcd_post($path, JSON::PP->new->encode($body));
    die "etcd $path: $code $out" unless $code == 200;
    return JSON::PP->new->decode($out);
}

sub etcd_revision {
    return etcd_json('/v3/kv/range', { key => 'AA==', count_only => JSON::PP::true })
        ->{header}{revision};
}

sub etcd_get {
    my ($key) = @_;
    my $kvs = etcd_json('/v3/kv/range', { key => encode_base64($key, '') })->{kvs};
    return $kvs ? MIME::Base64::decode_base64($kvs->[0]{value}) : undef;
}

sub mirror_revision {
    my $dump = OAuth2Test::dump_store($t->store);
    return $dump =~ /^ mirror_revision\n (\d+)$/m ? $1 : -1;
}

# holds the sync daemon once its mirror has applied all etcd holds (not
# between a heartbeat's put and its return through the watch)
sub hold_sync {
    for (1 .. 50) {
        kill 'STOP', $t->sync_pid;
        return if mirror_revision() == etcd_revision();
        kill 'CONT', $t->sync_pid;
        sleep 0.05;
    }
    die 'the mirror never caught up with etcd';
}

sub resume_sync { kill 'CONT', $t->sync_pid }

# handshake-key extract: an old release's key, put in etcd as its mirror
# would hold it; its removal applied by etcd while the mirror lags
{
    my $LEGACY = 'L' x 8 . join('', map { chr(97 + $_ % 26) } 1 .. 32);
    etcd_json('/v3/kv/put', { key => encode_base64('/oauth2/meta/handshake_hs256_key', ''),
        value => encode_base64($LEGACY, '') });
    sleep 0.1 until mirror_revision() == etcd_revision();
    hold_sync();
    my ($code, $out, $err) = $t->admin_etcd('handshake-key', 'extract',
        "$dir/hs.key");
    my $removed = !defined etcd_get('/oauth2/meta/handshake_hs256_key');
    resume_sync();
    ok($removed, 'handshake-key extract with the sync held: etcd removed the '
        . 'key from the store');
    ok(-f "$dir/hs.key", '... and the key file is there') or diag($err);
    is(-f "$dir/hs.key" ? OAuth2Test::_slurp("$dir/hs.key") : '',
        "$LEGACY\n", '... holding the key: it is not lost');
    sleep 0.1 until mirror_revision() == etcd_revision();
    unlike(OAuth2Test::dump_store($t->store), qr/handshake_hs256_key/,
        '... and the mirror drops it once sync resumes');
}

$t->done;
done_testing();
