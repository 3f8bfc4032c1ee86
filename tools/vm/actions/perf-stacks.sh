#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# perf-stacks.sh DATA COMM [FILTER [TIME]]: the samples of thread COMM in perf
# record -g output DATA, as the functions found anywhere on their stacks
# (inclusive) and the functions they were taken in (self). A report by
# symbol alone misleads under TCG, which skews where a sample lands within a
# stack; the TLB-shootdown waits of an unmap only show up whole in the
# stacks. FILTER "merging" keeps only the stacks in cowbuf_merge_scan() and
# not in merge_hash_chunk(): the batches of merging passes, without the
# pass ends and the hash_only passes; "hashing" only those in
# merge_hash_chunk(): the hash_only passes. TIME: perf script's --time (START,END
# in seconds of the recording's clock), all samples without. Then the
# self samples by instruction (function+offset): under TCG a sample lands
# at the start of a translated block, so the offsets show which load a
# function waits for (objdump -d build/LANE/src/module/cowbuf.ko, or
# System.map of the lane's kernel). Used by profile-merge and profile-vms.
data=$1 comm=$2 filter=${3:-all} time=${4:-}
# A sample: one "ip sym+0xoff" line a frame, leaf first, then blank lines.
perf script -i "$data" --comms "$comm" ${time:+--time "$time"} -F ip,sym,symoff \
	2>/dev/null >/tmp/stacks.all
awk -v filter="$filter" '
	function flush() {
		if (s != "" && (filter == "all" || (filter == "merging" && scan && !hash) ||
				(filter == "hashing" && hash)))
			printf "%s\n", s
		s = ""; scan = 0; hash = 0
	}
	/^$/ { flush(); next }
	{ s = s $0 "\n" }
	$2 ~ /^cowbuf_merge_scan\+/ { scan = 1 }
	$2 ~ /^merge_hash_chunk\+/ { hash = 1 }
	END { flush() }' /tmp/stacks.all >/tmp/stacks
# The same stacks by function alone.
sed 's/+0x[0-9a-f]*$//' /tmp/stacks >/tmp/stacks.fn
# leaf FILE: the samples by their leaf frame, the top 25.
leaf() {
	awk 'BEGIN { top = 1 } /^$/ { top = 1; next } top { n[$2]++; top = 0 }
	     END { for (f in n) print n[f], f }' "$1" | sort -rn | head -25
}
samples=$(awk '/^$/ { if (any) n++; any = 0; next } { any = 1 }
	       END { print n + any }' /tmp/stacks)
echo "# perf: $comm ($filter${time:+, time $time}), $samples samples; inclusive, then self"
awk '/^$/ { for (f in seen) n[f]++; delete seen; next }
     { seen[$2] = 1 }
     END { for (f in n) print n[f], f }' /tmp/stacks.fn | sort -rn | head -70
echo "# self"
leaf /tmp/stacks.fn
echo "# self, by instruction"
leaf /tmp/stacks
