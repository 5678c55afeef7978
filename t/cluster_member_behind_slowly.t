# A member that falls behind slowly (issue 13, "Faults"; SECURITY.md R52,
# R77): t/cluster_member_behind.t with the relay at 100 KB/s a connection.
# Then A's heartbeat still comes back through the relay less than 3 s
# apart, but each put later than the one before (the backlog grows by
# about 500 KB a second, 5 s more each second): sync's watch judged it by
# arrival alone and kept the member behind, its mirror stuck and ageing,
# the token issued on B never seen on A.  A put of the heartbeat now
# counts only if it comes back less than 3 s after it was made (its value
# is the time of the put), so sync leaves the member behind as at 20 KB/s.
use strict;
use warnings;
use FindBin;

$ENV{O2T_MEMBER_BEHIND_RATE} = 100_000;
my $file = "$FindBin::Bin/cluster_member_behind.t";
do $file;
die "$file: $@" if $@;
