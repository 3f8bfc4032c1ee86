#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make gauntlet, inside the VM (the debug lane): every part of the
# reliability and security gauntlet in one boot, then a summary of what ran.
#
#   1. cowbuf-fuzz: cbcalls calls (default 1000000) with seed cbseed, with
#      the selftests' pin device loaded (long-term write pins);
#   2. cowbuf-stress for cbsecs seconds, scanner at full speed, kill -9;
#   3. the same under a 16 MiB cgroup v2 memory limit, then a run without
#      it: the machine must recover (2 and 3: cowbuf_stress.sh);
#   4. cowbuf_module.sh with 50 load, use, unload cycles first; at the end
#      the module must unload with nothing left charged to the gauntlet's
#      memory cgroup and MemFree back where it started, and load again;
#   5. the kernel's own vm selftests, stress-ng (vm, mmap, fork) and KSM's
#      selftest, first alone, then beside cowbuf-stress: each must end as it
#      did alone;
#   6. security_test once more, after all that.
#
# Everything runs in the cgroup "gauntlet" (no limit; the shell in
# gauntlet/main, part 3 in gauntlet/cowbuf_stress), so that a leaked frame, which
# stays charged, shows in its memory.current at the end.
seed=${cbseed:-1}
calls=${cbcalls:-1000000}
secs=${cbsecs:-90}
kst=/cowbuf/kselftest/cowbuf
sys=/sys/kernel/mm/cowbuf
cg=/sys/fs/cgroup/gauntlet
failures=0
verified=0
t_start=$(date +%s)

fail() {
	failures=$((failures + 1))
	echo "gauntlet: FAILED: $*"
	echo "COWBUF-LANE-FAIL gauntlet: $*" >/dev/ttyS1
}

part() {
	echo "gauntlet: --- part $1: $2 ($(($(date +%s) - t_start)) s in)"
}

# MemFree plus Slab in kB, with clean caches dropped. Slab counts in
# because KASAN's quarantine keeps freed objects' slabs for a while (60 MiB
# of MemFree in a gauntlet run): a leaked frame is in neither.
mem_free_kb() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	echo "gauntlet: $(grep -E '^(MemFree|Slab):' /proc/meminfo | tr -s '\n ' ' ')" >&2
	awk '/^(MemFree|Slab):/ { kb += $2 } END { print kb }' /proc/meminfo
}

counters_zero() {
	for c in frames regions channels messages pages_shared pages_sharing; do
		v=$(cat $sys/$c)
		[ "$v" = 0 ] || { echo "gauntlet: $c is $v"; return 1; }
	done
}

# Add up the bytes cowbuf-stress verified, from its output in $1.
add_verified() {
	for b in $(sed -n 's/.* \([0-9]*\) bytes verified.*/\1/p' "$1"); do
		verified=$((verified + b))
	done
}

# The kernel's vm selftests, KSM's selftest and stress-ng; "name status"
# lines go to $1, each program's output to /tmp/others.NAME.log.
others() {
	out=$1
	: >"$out"
	for t in /cowbuf/tools/kernel-vm/*; do
		name=$(basename "$t")
		args=
		[ "$name" = userfaultfd ] && args="anon 8 4"
		# shellcheck disable=SC2086
		(cd /tmp && timeout 300 "$t" $args >"/tmp/others.$name.log" 2>&1)
		echo "$name $?" >>"$out"
	done
	for mode in "-M -p 10" "-U" "-Z -p 10 -z 0" "-Z -p 10 -z 1"; do
		name=ksm_tests$(echo "$mode" | tr -d ' ')
		# shellcheck disable=SC2086
		timeout 300 /cowbuf/tools/ksm_tests $mode >"/tmp/others.$name.log" 2>&1
		echo "$name $?" >>"$out"
	done
	timeout 120 stress-ng --vm 2 --vm-bytes 48M --verify --mmap 2 --mmap-bytes 16M \
		--fork 2 --timeout 20s --metrics-brief >/tmp/others.stress-ng.log 2>&1
	echo "stress-ng $?" >>"$out"
}

echo "gauntlet: seed $seed, $calls fuzz calls, $secs s of stress"
echo "+memory" >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p $cg
echo "+memory" >$cg/cgroup.subtree_control
mkdir -p $cg/main
echo $$ >$cg/main/cgroup.procs
free_before=$(mem_free_kb)
charged_before=$(cat $cg/memory.current)

part 4 "module lifecycle (50 cycles)"
CYCLES=50 $kst/cowbuf_module.sh || fail "cowbuf_module.sh"
modprobe cowbuf || fail "modprobe"

part 1 "ioctl fuzzer"
# Long-term write pins beside everything else (selftests/pin).
modprobe cowbuf_pin || fail "modprobe cowbuf_pin"
t0=$(date +%s)
cowbuf-fuzz -s "$seed" -n "$calls" -t 4 -k >/tmp/fuzz.log 2>&1 || fail "cowbuf-fuzz"
modprobe -r cowbuf_pin || fail "unload cowbuf_pin"
grep -v ' calls$' /tmp/fuzz.log
fuzz_secs=$(($(date +%s) - t0))
fuzz_calls=$(sed -n 's/^cowbuf-fuzz: \([0-9]*\) calls in .*/\1/p' /tmp/fuzz.log)

part 2 "concurrency stress; part 3: the same under memory pressure, and after"
STRESS_SECS=$secs STRESS_SEED=$seed $kst/cowbuf_stress.sh >/tmp/stress.log 2>&1 ||
	fail "cowbuf_stress.sh"
cat /tmp/stress.log
add_verified /tmp/stress.log
counters_zero || fail "objects left after the stress runs"

part 5 "somebody else's tests, alone and beside cowbuf-stress"
others /tmp/others.alone
cowbuf-stress -s "$((seed + 3))" -d 3600 -k -K >/tmp/beside.log 2>&1 &
beside=$!
others /tmp/others.beside
kill -TERM $beside
wait $beside || fail "cowbuf-stress beside the others' tests"
cat /tmp/beside.log
add_verified /tmp/beside.log
same=0
total=0
while read -r name alone; do
	beside_rc=$(awk -v n="$name" '$1 == n { print $2 }' /tmp/others.beside)
	total=$((total + 1))
	if [ "$alone" = "$beside_rc" ]; then
		same=$((same + 1))
		echo "gauntlet: $name: exit $alone alone, $beside_rc beside cowbuf"
		[ "$alone" = 0 ] || tail -n 3 "/tmp/others.$name.log"
	else
		echo "gauntlet: $name: exit $alone alone, $beside_rc beside cowbuf: DIFFERENT"
		tail -n 20 "/tmp/others.$name.log"
		fail "$name ends differently beside cowbuf"
	fi
done </tmp/others.alone
passing=$(awk '$2 == 0' /tmp/others.alone | wc -l)

part 6 "security_test after all that"
$kst/security_test >/tmp/security.log 2>&1 || fail "security_test"
grep -E '^(ok|not ok)|Totals' /tmp/security.log

part 4 "module unloads, nothing left behind"
counters_zero || fail "objects left at the end"
modprobe -r cowbuf || fail "unload at the end"
free_after=$(mem_free_kb)
charged_after=$(cat $cg/memory.current)
stat=$(grep -E '^(anon|file|kernel|slab) ' $cg/memory.stat | tr '\n' ' ')
echo "gauntlet: charged to the gauntlet's cgroup: $charged_before bytes before," \
	"$charged_after after ($stat)"
echo "gauntlet: MemFree + Slab $free_before kB before, $free_after kB after"
# Every frame is charged to the cgroup of the task that committed it, so a
# leak of more than 256 frames shows here; MemFree is noisier, so it only
# catches a large leak.
[ $((charged_after - charged_before)) -lt $((1 << 20)) ] ||
	fail "$((charged_after - charged_before)) more bytes charged after everything ended"
[ $((free_before - free_after)) -lt $((32 << 10)) ] ||
	fail "MemFree + Slab $((free_before - free_after)) kB lower after everything ended"

# And it loads again, with nothing in it.
if modprobe cowbuf; then
	counters_zero || fail "objects in a freshly loaded module"
	modprobe -r cowbuf || fail "unload after the reload"
else
	fail "reload after everything"
fi

echo "gauntlet: ran $fuzz_calls fuzz calls in $fuzz_secs s," \
	"verified $verified bytes end to end;" \
	"$same of $total other programs ended as without cowbuf ($passing pass alone)"
echo "gauntlet: $(($(date +%s) - t_start)) s, $failures failures"
