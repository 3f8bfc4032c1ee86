#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cowbuf-stress, short and with fixed seeds here (make gauntlet runs it
# longer: STRESS_SECS, STRESS_SEED): pairs streaming MOVE and SHARE with
# every byte checked, churning threads, forks and kill -9 with the scanner at
# full speed; then the same under a 16 MiB cgroup v2 memory limit (ENOMEM,
# SIGBUS and OOM kills allowed, a wrong byte never); then once more without
# it: the machine must have recovered. Kernel splats are the VM lane's to
# catch. Needs root for the scanner's knobs and the cgroup.
ksft_skip=4
secs=${STRESS_SECS:-10}
seed=${STRESS_SEED:-1}
num=0
failed=0

result() {
	num=$((num + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $num $2"
	else
		failed=$((failed + 1))
		echo "not ok $num $2 (exit $1)"
	fi
}

# cowbuf-stress in cgroup $1 (empty: this one) with the other arguments.
stress() {
	cg=$1
	shift
	timeout $((secs * 2 + 60)) sh -c '[ -z "$0" ] || echo $$ >"$0/cgroup.procs" || exit 9
		exec cowbuf-stress "$@"' "$cg" "$@" >/tmp/cowbuf_stress.log 2>&1
	rc=$?
	sed 's/^/# /' /tmp/cowbuf_stress.log
	return $rc
}

echo "TAP version 13"
if ! command -v cowbuf-stress >/dev/null 2>&1 || [ ! -e /dev/cowbuf ]; then
	echo "1..0 # SKIP cowbuf-stress (tools/) or /dev/cowbuf is missing"
	exit $ksft_skip
fi
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP cowbuf_stress.sh needs root"
	exit $ksft_skip
fi
echo "1..3"

stress "" -s "$seed" -d "$secs" -k -K
result $? "$secs s of stress, seed $seed: every byte as sent, nothing leaked"

# The limited cgroup is a sibling of ours, so that our parent's counters
# (make gauntlet's) include it.
parent=/sys/fs/cgroup$(dirname "$(cut -d: -f3 /proc/self/cgroup)")
cg=${parent%/}/cowbuf_stress
if grep -qw memory "$parent/cgroup.controllers" 2>/dev/null &&
	echo +memory >"$parent/cgroup.subtree_control" && mkdir -p "$cg" &&
	echo 16M >"$cg/memory.max"; then
	stress "$cg" -s $((seed + 1)) -d $((secs - secs / 4)) -w 3 -m 64 -k -K -P
	rc=$?
	echo "# memory.events: $(tr '\n' ' ' <"$cg/memory.events")"
	hit=$(awk '$1 == "max" { print $2 }' "$cg/memory.events")
	[ "${hit:-0}" -gt 0 ] || { echo "# memory.max was never reached"; rc=1; }
	rmdir "$cg" || rc=1
	result $rc "stress in 16 MiB, seed $((seed + 1)): errors as documented, no wrong byte"
else
	num=$((num + 1))
	echo "ok $num # SKIP no cgroup v2 memory controller"
fi

stress "" -s $((seed + 2)) -d $((secs / 2)) -k
result $? "stress afterwards, seed $((seed + 2)): the machine recovered"
rm -f /tmp/cowbuf_stress.log
echo "# Totals: pass:$((num - failed)) fail:$failed xfail:0 xpass:0 skip:0 error:0"
[ $failed -eq 0 ]
