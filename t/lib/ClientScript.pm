# The real client libraries' scripts under t/clients/: each reads its
# configuration as JSON on stdin and prints a "result {...}" line per flow
# it ran, then "done".  run() starts one, collects its results and checks
# that it ran to the end and exited 0.
package ClientScript;

use strict;
use warnings;
use IPC::Open3 qw(open3);
use JSON::PP ();
use Test::More;

my $JSON = JSON::PP->new->canonical;

# run($name, $input, $results, $env, @cmd): $input (a hash) on stdin;
# each result lands in $results->{lib}{flow}; $env adds to the
# environment.  Other output is shown as diagnostics.
sub run {
    my ($name, $input, $results, $env, @cmd) = @_;
    local %ENV = (%ENV, %$env);
    my $pid = open3(my $to, my $from, undef, @cmd);
    print $to $JSON->encode($input);
    close $to;
    my $done;
    while (my $line = <$from>) {
        chomp $line;
        if ($line =~ /^result (\{.*\})$/) {
            my $j = $JSON->decode($1);
            $results->{$j->{lib}}{$j->{flow}} = $j;
            diag("$j->{lib} $j->{flow}: $j->{exception}"
                . (defined $j->{error} ? ": $j->{error}" : '')) if $j->{exception};
        } elsif ($line eq 'done') {
            $done = 1;
        } else {
            diag("$name: $line");
        }
    }
    waitpid $pid, 0;
    is($? >> 8, 0, "$name exits 0");
    ok($done, "$name ran to the end");
}

1;
