#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Where cowbufd's time goes: cowbuf-merge-bench's two mixes (no volatile
# part) under perf record -g -e cpu-clock (a software event: no PMU under
# TCG), then, for cowbufd (the batches of its merging passes only: samples
# in pass ends and in the bench's hash_only passes, under merge_hash_chunk(),
# are left out) and for ksmd, the
# functions found anywhere on their samples' stacks (inclusive) and the
# functions the samples were taken in (self). A report by symbol alone
# misleads here: TCG skews where a sample lands within a stack, and the
# TLB-shootdown waits of an unmap only show up whole in the stacks.
#   tools/vm/run.sh stock profile-merge
modprobe cowbuf || exit 1
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid
perf record -q -g -e cpu-clock -a -o /tmp/perf.data -- \
	cowbuf-merge-bench "${cbmerge:-256}" "${cbscan:-1000}" 0 >/tmp/bench.log 2>&1
grep -v '^BENCH' /tmp/bench.log
echo "# perf: samples by thread"
perf report -q -i /tmp/perf.data --stdio --sort comm 2>/dev/null | grep -v '^$' | head -12
for comm in cowbufd ksmd; do
	# A sample: one "ip sym" line a frame, leaf first, then blank lines.
	perf script -i /tmp/perf.data --comms "$comm" -F ip,sym 2>/dev/null >/tmp/all
	# cowbufd: the batches of merging passes only (the pass ends and the
	# bench's hash_only passes left out).
	awk -v comm="$comm" '
	     function flush() {
		     if (s != "" && (comm != "cowbufd" || (scan && !hash)))
			     printf "%s\n", s
		     s = ""; scan = 0; hash = 0
	     }
	     /^$/ { flush(); next }
	     { s = s $0 "\n" }
	     $2 == "cowbuf_merge_scan" { scan = 1 }
	     $2 == "merge_hash_chunk" { hash = 1 }
	     END { flush() }' /tmp/all >/tmp/stacks
	samples=$(awk '/^$/ { if (any) n++; any = 0; next } { any = 1 }
		       END { print n + any }' /tmp/stacks)
	echo "# perf: $comm, $samples samples; inclusive, then self"
	awk '/^$/ { for (f in seen) n[f]++; delete seen; next }
	     { seen[$2] = 1 }
	     END { for (f in n) print n[f], f }' /tmp/stacks | sort -rn | head -70
	echo "# self"
	awk 'BEGIN { top = 1 } /^$/ { top = 1; next } top { n[$2]++; top = 0 }
	     END { for (f in n) print n[f], f }' /tmp/stacks | sort -rn | head -25
done
