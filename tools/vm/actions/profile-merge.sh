#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Where cowbufd's time goes: cowbuf-merge-bench's two mixes (no volatile
# part) under perf record -g -e cpu-clock (a software event: no PMU under
# TCG), then the stacks of cowbufd (the batches of its merging passes, then
# its hash_only passes) and of ksmd, by perf-stacks.sh.
#   tools/vm/run.sh stock profile-merge
modprobe cowbuf || exit 1
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid
perf record -q -g -e cpu-clock -a -o /tmp/perf.data -- \
	cowbuf-merge-bench "${cbmerge:-256}" "${cbscan:-1000}" 0 >/tmp/bench.log 2>&1
grep -v '^BENCH' /tmp/bench.log
echo "# perf: samples by thread"
perf report -q -i /tmp/perf.data --stdio --sort comm 2>/dev/null | grep -v '^$' | head -12
/cowbuf/tools/vm-perf-stacks.sh /tmp/perf.data cowbufd merging
/cowbuf/tools/vm-perf-stacks.sh /tmp/perf.data cowbufd hashing
/cowbuf/tools/vm-perf-stacks.sh /tmp/perf.data ksmd
