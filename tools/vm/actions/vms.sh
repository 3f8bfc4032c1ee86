#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make vms: real guests on cowbuf memory, inside the stock lane (nested TCG).
#
# 1. Two QEMU guests (Debian's kernel, a busybox initramfs,
#    tools/vm/guest-init) with their RAM in mergeable cowbuf regions, given
#    to an unmodified qemu-system-x86_64 by `cowbufctl exec --merge` as
#    memory-backend-file,mem-path=/proc/self/fd/3,share=on. Memory saved and
#    cowbufd's CPU are sampled. Then guest A
#    (balloon without free page reporting) inflates its balloon and deflates
#    it, guest B (free-page-reporting=on) frees memory, and both are killed
#    with SIGKILL while running: the module must hold nothing afterwards.
#    The scanner is stopped while the guests boot and started once both are
#    ready; what it saves is the drop of the guests' footprint from then.
#    Before it merges, one hash-only pass over the same guests (hash_pass())
#    measures the floor of a first pass.
# 2. The same two guests on ordinary anonymous RAM with QEMU's default
#    mem-merge=on (KSM), with ksmd set to cowbufd's pages_to_scan and
#    sleep_millisecs, sampled the same way.
# 3. Guest RAM in huge regions (2 MiB frames mapped by PMD, --huge --merge,
#    align=2M): the balloon and free page reporting of part 1, then the
#    scanner, which releases the frames the balloon left all zero.
# 4. A guest whose region is capped below what it touches: QEMU dies of
#    SIGBUS, the host logs no warning, nothing leaks.
# 5. Overcommit: three guests kept alive in a memory cgroup smaller than
#    their unmerged memory, by ballooning and merging.
#
# Lines starting "VMS " are figures for tools/bench-report.sh.
# Environment (COWBUF_VM_ENV): cbvmmem (MiB per guest, 256), cbvmscan
# (pages_to_scan, 1000), cbvmsleep (sleep_millisecs, 20), cbvmwatch (seconds
# sampled after both guests are ready, 150), cbvmfine (of those, the first
# seconds watched finely for the time to converge, 12), cbvmfloor (0: no
# hash-only pass before cowbuf merges), cbvmphases (a comma list of cowbuf,
# ksm, huge, capped, overcommit: the parts to run, all by default).

G=/cowbuf/guest
MEM=${cbvmmem:-256}
SCAN=${cbvmscan:-1000}
SLEEP=${cbvmsleep:-20}
WATCH=${cbvmwatch:-150}
FINE=${cbvmfine:-12}
PHASES=${cbvmphases:-cowbuf,ksm,huge,capped,overcommit}
CB=/sys/kernel/mm/cowbuf
KSM=/sys/kernel/mm/ksm
export QEMU_MODULE_DIR=/usr/lib/x86_64-linux-gnu/qemu

fail() {
	echo "COWBUF-LANE-FAIL vms: $*" >/dev/ttyS1
	echo "vms: FAIL: $*"
}

now() {
	cut -d' ' -f1 /proc/uptime
}

# The pid of the kernel thread named $1.
thread_pid() {
	local p c
	for p in /proc/[0-9]*; do
		read -r c 2>/dev/null <"$p/comm" || continue
		if [ "$c" = "$1" ]; then
			echo "${p#/proc/}"
			return
		fi
	done
}

# CPU ticks (user + system) of the process $1, 0 without one.
thread_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# fine_watch FILE PID COUNTER PASSES SECONDS: from now on, for SECONDS,
# append to FILE lines "uptime COUNTER-value PASSES-value /proc/PID/stat", as
# often as the shell can with its builtins alone. The samples of pair()
# start a dozen commands each (smaps of both guests for KSM), which under
# TCG, beside the scanner being measured, came 0.35 s apart with cowbufd and
# 0.9 s apart with ksmd: too coarse, and not equally so, for the time to
# converge.
fine_watch() {
	local t u v p stat end
	# /proc/uptime has two decimals: centiseconds with the dot dropped.
	read -r t u </proc/uptime
	end=$((${t%.*}${t#*.} + $5 * 100))
	: >"$1"
	while :; do
		read -r t u </proc/uptime
		read -r v <"$3"
		read -r p <"$4"
		read -r stat <"/proc/$2/stat"
		echo "$t $v $p $stat" >>"$1"
		[ "${t%.*}${t#*.}" -ge "$end" ] && break
		sleep 0.05
	done
}

# hash_pass PID: the floor of a first merging pass over the guests as they
# are now: one pass of cowbufd (PID) with hash_only=1, which reads and
# hashes every committed slot and does nothing else, with the same
# pages_to_scan and sleep_millisecs, from run=1 to the pass's end (polled
# every 10 ms; the scanner sleeps sleep_millisecs after the batch that ends
# a pass, and is stopped within it, so that the merging pass after starts
# where the regions start). "VMS floor": the pass's time, cowbufd's CPU in
# it, and the pages it read against those the guests had committed. KSM's
# guests then wait as long after they are ready before ksmd starts
# (FLOOR_S), so that both scanners start on guests as long settled.
FLOOR_S=
hash_pass() {
	local s0 s p0 p1 t0 t1 c0 c1 u pages i=0
	pages=$(($(committed a) + $(committed b)))
	read -r s0 <$CB/full_scans
	read -r p0 <$CB/pages_scanned
	c0=$(thread_ticks "$1")
	echo 1 >/sys/kernel/debug/cowbuf/hash_only
	read -r t0 u </proc/uptime
	echo 1 >$CB/run
	while [ $i -lt 12000 ]; do
		read -r s <$CB/full_scans
		[ "$s" != "$s0" ] && break
		sleep 0.01
		i=$((i + 1))
	done
	echo 0 >$CB/run
	read -r t1 u </proc/uptime
	echo 0 >/sys/kernel/debug/cowbuf/hash_only
	read -r p1 <$CB/pages_scanned
	c1=$(thread_ticks "$1")
	[ "$s" != "$s0" ] || fail "cowbufd's hash-only pass did not end in 120 s"
	FLOOR_S=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
	awk -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v p="$((p1 - p0))" \
		-v n="$pages" -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" 'BEGIN {
		printf "VMS floor hash_pass_s %.2f hash_cpu_s %.2f", t1 - t0, c / hz
		printf " pages_read %d pages_committed %d\n", p, n }'
}

# start_guest NAME KIND(cowbuf|anon|capped|huge) REPORTING(on|off)
start_guest() {
	local d=/tmp/$1 kind=$2 reporting=$3 backend
	rm -rf "$d"
	mkdir -p "$d"
	mkfifo "$d/con.in" "$d/con.out" "$d/mon.in" "$d/mon.out"
	# Nothing started here may hold the lane's output pipe open.
	cat "$d/con.out" >"$d/console.log" 2>/dev/null &
	cat "$d/mon.out" >"$d/monitor.log" 2>/dev/null &
	set -- qemu-system-x86_64 -accel tcg,tb-size=64 -smp 1 -m "$MEM" \
		-nodefaults -display none -no-reboot \
		-L /usr/share/qemu -L /usr/share/seabios \
		-kernel "$G/vmlinuz" -initrd "$G/initramfs.gz" \
		-append "console=ttyS0 panic=-1 quiet mitigations=off" \
		-chardev "pipe,id=con,path=$d/con" -serial chardev:con \
		-monitor "pipe:$d/mon" \
		-device "virtio-balloon-pci,id=balloon0,free-page-reporting=$reporting"
	# Guest RAM in a region: the exact command line of the admin guide.
	backend="memory-backend-file,id=ram0,size=${MEM}M,mem-path=/proc/self/fd/3,share=on"
	case "$kind" in
	cowbuf)
		set -- cowbufctl exec --merge "${MEM}M" -- "$@" \
			-object "$backend" -machine memory-backend=ram0
		;;
	capped)
		set -- cowbufctl exec "${MEM}M" -- "$@" \
			-object "$backend" -machine memory-backend=ram0
		;;
	huge)
		set -- cowbufctl exec --merge --huge "${MEM}M" -- "$@" \
			-object "$backend,align=2M" -machine memory-backend=ram0
		;;
	esac
	if [ -n "${CGROUP:-}" ]; then
		set -- sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROUP" "$@"
	fi
	"$@" >"$d/qemu.log" 2>&1 &
	echo $! >"$d/pid"
}

# wait_console NAME PATTERN SECONDS: 0 once PATTERN is on the guest's console.
wait_console() {
	local i=0
	while [ $i -lt "$3" ]; do
		grep -q "$2" "/tmp/$1/console.log" 2>/dev/null && return 0
		kill -0 "$(cat "/tmp/$1/pid")" 2>/dev/null || return 1
		sleep 1
		i=$((i + 1))
		[ $((i % 60)) = 0 ] &&
			echo "vms: guest $1, ${i}s waiting for $2:" \
				"$(grep -v 'No such file' "/tmp/$1/console.log" | tail -n 1)"
	done
	return 1
}

guest_cmd() {
	echo "$2" >"/tmp/$1/con.in"
}

monitor_cmd() {
	echo "$2" >"/tmp/$1/mon.in"
}

# The committed pages of the region QEMU of guest $1 holds as fd 3.
committed() {
	awk '/^cowbuf-committed-pages:/ { print $2 }' "/proc/$(cat "/tmp/$1/pid")/fdinfo/3"
}

# Resident pages of guest $1's RAM mapping (the largest mapping of QEMU).
ram_rss_pages() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); sz = 0 }
	     /^Size:/ { sz = $2 }
	     /^Rss:/ { if (sz >= '"$MEM"' * 1024 && $2 > best) best = $2 }
	     END { print int(best / 4) }' "/proc/$(cat "/tmp/$1/pid")/smaps"
}

stop_guests() {
	local n
	for n in "$@"; do
		kill -9 "$(cat "/tmp/$n/pid")" 2>/dev/null
	done
	sleep 2
	for n in "$@"; do
		wait "$(cat "/tmp/$n/pid")" 2>/dev/null
	done
	# The readers of the console and monitor pipes.
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
}

# footprint SYSTEM: pages holding the two guests' RAM now. cowbuf: the
# frames of the module (only the guests use it); KSM: the resident pages of
# the two RAM mappings less the mappings that share a KSM page.
footprint() {
	if [ "$1" = cowbuf ]; then
		cat $CB/frames
	else
		echo $(($(ram_rss_pages a) + $(ram_rss_pages b) - $(cat $KSM/pages_sharing)))
	fi
}

# Boot guest A (balloon without free page reporting) and guest B (with it)
# on KIND memory with SYSTEM's scanner stopped; once both are ready, start
# the scanner, watch what it saves finely for FINE seconds (fine_watch: the
# time to converge), then sample the footprint (every 0.2 s until 20 s,
# then every 2 s) until WATCH seconds.
pair() {
	local kind=$1 sys=$2 dir=$CB t0 t ticks0 ticks f0 line n i=0
	local thread=cowbufd counter=$CB/frames pid v0 fine perf=
	[ "$sys" = ksm ] && { thread=ksmd; dir=$KSM; counter=$KSM/pages_sharing; }
	local passes=$dir/full_scans
	echo 0 >$dir/run
	t0=$(now)
	start_guest a "$kind" off
	start_guest b "$kind" on
	for n in a b; do
		if ! wait_console $n GUEST-READY 900; then
			fail "$sys guest $n did not come up"
			tail -n 5 /tmp/$n/console.log /tmp/$n/qemu.log
			stop_guests a b
			return 1
		fi
	done
	grep -h GUEST-FAIL /tmp/a/console.log /tmp/b/console.log &&
		fail "$sys: a guest could not set up"
	echo "VMS $sys boot_s $(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')"

	pid=$(thread_pid $thread)
	# The floor, on the same guests before they merge.
	if [ "$sys" = cowbuf ] && [ "${cbvmfloor:-1}" = 1 ]; then
		hash_pass "$pid"
	elif [ "$sys" = ksm ] && [ -n "$FLOOR_S" ]; then
		sleep "$FLOOR_S"
	fi
	f0=$(footprint "$sys")
	ticks0=$(thread_ticks "$pid")
	read -r v0 <$counter
	# profile-vms: cowbufd's stacks from the scanner's start to the end
	# of the fine watch (perf is given time to start while it still sleeps).
	if [ -n "${cbvmprofile:-}" ] && [ "$sys" = cowbuf ]; then
		echo -1 >/proc/sys/kernel/perf_event_paranoid
		perf record -q -g -e cpu-clock -k CLOCK_BOOTTIME -t "$pid" \
			-o "$cbvmprofile" &
		perf=$!
		sleep 3
	fi
	t0=$(now)
	echo 1 >$dir/run
	fine_watch /tmp/fine.$sys "$pid" $counter $passes $FINE
	[ -n "$perf" ] && kill -INT $perf && wait $perf
	# Converged: from the first fine sample after which what the scanner
	# has saved (cowbuf: frames fewer; KSM: pages_sharing more) stays
	# within 5% of what it had saved at the last one. The first pass: until
	# the first sample with full_scans past its first value.
	fine=$(awk -v sys="$sys" -v t0="$t0" -v v0="$v0" -v c0="$ticks0" \
		-v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '
	{ t[NR] = $1 - t0; s[NR] = sys == "cowbuf" ? v0 - $2 : $2 - v0; c[NR] = $17 + $18 - c0
	  if (NR == 1) p1 = $3; else if (!pass && $3 != p1) pass = t[NR] }
	END {
		tol = 0.05 * s[NR]; i = NR
		while (i > 1 && s[NR] - s[i - 1] <= tol && s[i - 1] - s[NR] <= tol) i--
		printf "converge_s %.2f cpu_to_converge_s %.2f fine_samples %d fine_gap_s %.3f",
			t[i], c[i] / hz, NR, (NR > 1 ? (t[NR] - t[1]) / (NR - 1) : 0)
		printf " first_pass_s %s", pass ? sprintf("%.2f", pass) : "none"
	}' /tmp/fine.$sys)
	# profile-vms: when the scanner started and converged, in perf's clock
	# (CLOCK_BOOTTIME, which /proc/uptime reads).
	[ -n "$perf" ] && echo "$t0 $fine" | awk '{
		for (i = 2; i < NF; i++) if ($i == "converge_s") c = $(i + 1)
		printf "%.2f %.2f\n", $1, $1 + c }' >"$cbvmprofile.window"
	: >/tmp/samples.$sys
	while :; do
		t=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
		ticks=$(($(thread_ticks "$pid") - ticks0))
		if [ "$sys" = cowbuf ]; then
			line="$t $(footprint cowbuf) $ticks $(cat $CB/pages_sharing)"
			line="$line $(cat $CB/zero_pages) $(committed a) $(committed b)"
		else
			line="$t $(footprint ksm) $ticks $(cat $KSM/pages_sharing)"
			line="$line $(cat $KSM/pages_shared) $(ram_rss_pages a) $(ram_rss_pages b)"
		fi
		echo "$line" >>/tmp/samples.$sys
		echo "VMS-SAMPLE $sys $line"
		awk -v t="$t" -v w="$WATCH" 'BEGIN { exit !(t >= w) }' && break
		# Finely at first: one scanner converges within seconds.
		if awk -v t="$t" 'BEGIN { exit !(t < 20) }'; then
			sleep 0.2
		else
			sleep 2
		fi
	done
	# Saved: the footprint when the scanner started less the last one.
	awk -v sys="$sys" -v f0="$f0" -v fine="$fine" \
		-v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '
	{ t[NR] = $1; f[NR] = $2; c[NR] = $3; k[NR] = $4 }
	END {
		saved = f0 - f[NR]
		printf "VMS %s before_mib %.1f footprint_mib %.1f saved_pages %d",
			sys, f0 / 256, f[NR] / 256, saved
		printf " saved_mib %.1f counter_pages %d %s", saved / 256, k[NR], fine
		printf " cpu_window_s %.2f window_s %.1f\n", c[NR] / hz, t[NR]
	}' /tmp/samples.$sys
}

# balloon_test NAME TAG: guest NAME (one without free page reporting) writes
# all but 24 MiB of its free memory and frees it again, as a guest that has
# run for a while has; then it inflates its balloon by 32 MiB, deflates it
# and uses memory again. The balloon takes free pages, and a page the guest
# never wrote (or that cowbufd released as all zero) was never committed and
# gives nothing back: the guest zeroes a balloon page before QEMU discards it
# (init_on_alloc), so such a page is committed and released again, a net
# zero. Zeros are quick to write under nested TCG. Figures: "VMS
# TAGballoon" and "VMS TAGdeflate".
balloon_test() {
	local g=$1 tag=$2 n=32 c0 c1 c2 i actual target=$((MEM - 32)) free_kb fill cfree
	guest_cmd $g mem
	wait_console $g GUEST-MEM 120 || { fail "guest $g did not say its memory"; return; }
	free_kb=$(grep -o 'GUEST-MEM [0-9]* [0-9]*' /tmp/$g/console.log | tail -n 1 | cut -d' ' -f3)
	fill=$((${free_kb:-0} / 1024 - 24))
	[ $fill -gt $n ] || { fail "guest $g has ${free_kb:-?} kB free"; return; }
	cfree=$(committed $g)
	guest_cmd $g "touch $fill"
	wait_console $g "GUEST-TOUCHED $fill" 900 || { fail "guest $g did not touch"; return; }
	guest_cmd $g drop
	wait_console $g GUEST-DROPPED 300 || { fail "guest $g did not drop"; return; }
	c0=$(committed $g)
	monitor_cmd $g "balloon $target"
	i=0
	while [ $i -lt 300 ]; do
		monitor_cmd $g "info balloon"
		sleep 1
		actual=$(grep -o 'actual=[0-9]*' /tmp/$g/monitor.log | tail -n 1 | cut -d= -f2)
		[ -n "$actual" ] && [ "$actual" -le "$target" ] && break
		i=$((i + 1))
	done
	sleep 3
	c1=$(committed $g)
	echo "VMS ${tag}balloon inflate_mib $n actual_mib ${actual:-?}" \
		"committed_before_mib $((c0 / 256)) committed_after_mib $((c1 / 256))" \
		"given_back_mib $(((c0 - c1) / 256))" \
		"given_back_pct $(((c0 - c1) * 100 / (n * 256)))" \
		"seconds $i free_mib $((free_kb / 1024)) written_mib $fill" \
		"committed_before_writing_mib $((cfree / 256))"
	monitor_cmd $g "balloon $MEM"
	sleep 10
	guest_cmd $g "touch 40"
	if wait_console $g "GUEST-TOUCHED 40" 600; then
		c2=$(committed $g)
		echo "VMS ${tag}deflate touched_mib 40 committed_mib $((c2 / 256)) ok 1"
	else
		fail "guest $g could not use its memory after the balloon deflated"
	fi
}

# reporting_test NAME TAG: guest NAME (free page reporting) frees memory;
# it goes back.
reporting_test() {
	local g=$1 tag=$2 c0 c1
	guest_cmd $g "touch 40"
	wait_console $g "GUEST-TOUCHED 40" 600 || { fail "guest $g did not touch"; return; }
	sleep 3
	c0=$(committed $g)
	guest_cmd $g drop
	wait_console $g GUEST-DROPPED 300 || { fail "guest $g did not drop"; return; }
	sleep 20
	c1=$(committed $g)
	echo "VMS ${tag}reporting freed_mib 40 committed_before_mib $((c0 / 256))" \
		"committed_after_mib $((c1 / 256)) given_back_mib $(((c0 - c1) / 256))" \
		"given_back_pct $(((c0 - c1) * 100 / (40 * 256)))"
}

check_nothing_held() {
	local what=$1 f r
	sleep 2
	f=$(cat /sys/kernel/mm/cowbuf/frames)
	r=$(cat /sys/kernel/mm/cowbuf/regions)
	echo "VMS leak $what frames $f regions $r"
	[ "$f" = 0 ] && [ "$r" = 0 ] || fail "$what: $f frames, $r regions left"
}

# Whatever ends this script, no guest outlives it.
cleanup() {
	local p
	for p in /tmp/*/pid; do
		[ -r "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
	done
	kill $(jobs -p) 2>/dev/null
}
trap cleanup EXIT

modprobe cowbuf || { fail modprobe; exit 1; }
[ -x "$(command -v qemu-system-x86_64)" ] || { fail "no qemu in the initramfs"; exit 1; }
echo "VMS config mem_mib $MEM guests 2 pages_to_scan $SCAN sleep_millisecs $SLEEP" \
	"watch_s $WATCH fine_s $FINE outer_mem_kb $(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"

phase() {
	case ",$PHASES," in *",$1,"*) return 0 ;; esac
	return 1
}

# 1. cowbuf
phase cowbuf && {
echo $SCAN >$CB/pages_to_scan
echo $SLEEP >$CB/sleep_millisecs
if pair cowbuf "cowbuf"; then
	# What the guests give back is measured with the scanner stopped, so
	# that pages it merges or releases meanwhile are not counted.
	echo 0 >$CB/run
	if [ -z "${cbvmprofile:-}" ]; then
		balloon_test a ""
		reporting_test b ""
	fi
	# Killed mid-run: everything goes back.
	stop_guests a b
	check_nothing_held "after SIGKILL of both guests"
fi
echo 0 >$CB/run
}

# 2. KSM
phase ksm && {
echo $SCAN >$KSM/pages_to_scan
echo $SLEEP >$KSM/sleep_millisecs
if pair anon ksm; then
	stop_guests a b
fi
echo 2 >$KSM/run
}

# 3. Huge regions: what the balloon (4 KiB discards, each zeroing a page of
# a 2 MiB frame) and free page reporting (2 MiB blocks and more) give back,
# then what the scanner releases of the frames the balloon left all zero.
phase huge && {
echo 0 >$CB/run
echo $SCAN >$CB/pages_to_scan
echo $SLEEP >$CB/sleep_millisecs
start_guest a huge off
start_guest b huge on
ok=1
for n in a b; do
	wait_console $n GUEST-READY 900 || { fail "huge: guest $n did not come up"; ok=0; }
done
if [ $ok = 1 ]; then
	pmd=$(awk '/^FilePmdMapped:/ { s += $2 } END { print s }' "/proc/$(cat /tmp/a/pid)/smaps")
	echo "VMS huge boot_committed_a_mib $(($(committed a) / 256))" \
		"boot_committed_b_mib $(($(committed b) / 256)) pmd_mapped_kb $pmd"
	balloon_test a huge_
	c0=$(committed a)
	zero0=$(cat $CB/zero_pages)
	echo 1 >$CB/run
	sleep 20
	echo 0 >$CB/run
	echo "VMS huge_scan committed_before_mib $((c0 / 256))" \
		"committed_after_mib $(($(committed a) / 256))" \
		"zero_released_mib $((($(cat $CB/zero_pages) - zero0) / 256))"
	reporting_test b huge_
fi
grep -h 'ram_block_discard_range\|fallocate' /tmp/a/qemu.log /tmp/b/qemu.log | head -n 3
stop_guests a b
check_nothing_held "after the huge-region guests"
}

# 4. A capped region: SIGBUS in QEMU, no host warning, nothing held.
phase capped && {
cap=$(cat /sys/module/cowbuf/parameters/max_region_pages)
echo 4096 >/sys/module/cowbuf/parameters/max_region_pages
start_guest c capped off
pid=$(cat /tmp/c/pid)
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do
	sleep 1
	i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
	fail "a guest capped at 16 MiB kept running"
	stop_guests c
else
	wait "$pid"
	rc=$?
	echo "VMS capped exit_status $rc seconds $i"
	[ $rc -eq $((128 + 7)) ] || fail "capped guest: QEMU exit status $rc, not SIGBUS"
	stop_guests
fi
echo "$cap" >/sys/module/cowbuf/parameters/max_region_pages
check_nothing_held "after the capped guest"
}
# 5. Overcommit: three guests in a memory cgroup that holds what they use
# merged but not what they would use unmerged (a stand-in for a smaller
# host: at ~1 MiB/s of guest writes, filling more than this VM is out of
# reach), with 64 MiB to spare. Each first gives 32 MiB back by its balloon,
# then writes 64 MiB of the same bytes as the others; the scanner scans four
# times as fast as in part 1, to keep up with three writers.
phase overcommit && {
CGROUP=/sys/fs/cgroup/vms
mkdir -p $CGROUP
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
# Three guests write at once: the scanner has to keep up with them.
echo $((SCAN * 4)) >$CB/pages_to_scan
echo 1 >$CB/run
for n in a b c; do
	start_guest $n cowbuf off
done
ok=1
for n in a b c; do
	wait_console $n GUEST-READY 900 || { fail "overcommit: guest $n did not come up"; ok=0; }
done
if [ $ok = 1 ]; then
	b0=0
	for n in a b c; do
		b0=$((b0 + $(committed $n)))
		monitor_cmd $n "balloon $((MEM - 32))"
	done
	sleep 60
	b1=0
	for n in a b c; do
		b1=$((b1 + $(committed $n)))
	done
	limit=$(($(cat $CGROUP/memory.current) + 64 * 1048576))
	echo $limit >$CGROUP/memory.max
	for n in a b c; do
		guest_cmd $n "copy 64"
	done
	peak=0
	for n in a b c; do
		if ! wait_console $n "GUEST-COPIED 64" 900; then
			fail "overcommit: guest $n did not live through its writes"
			ok=0
		fi
		cur=$(cat $CGROUP/memory.current)
		[ "$cur" -gt "$peak" ] && peak=$cur
	done
	sleep 20
	cur=$(cat $CGROUP/memory.current)
	[ "$cur" -gt "$peak" ] && peak=$cur
	sum=0
	for n in a b c; do
		c=$(committed $n 2>/dev/null)
		sum=$((sum + ${c:-0}))
	done
	echo "VMS overcommit guests 3 guest_ram_mib $((3 * MEM))" \
		"cgroup_max_mib $((limit / 1048576)) unmerged_mib $((sum / 256))" \
		"cgroup_mib_at_end $((cur / 1048576)) frames_mib $(($(cat $CB/frames) / 256))" \
		"balloons_gave_mib $(((b0 - b1) / 256)) alive $ok" \
		"oom_events $(awk '/^max / { print $2 }' $CGROUP/memory.events)"
fi
stop_guests a b c
CGROUP=
echo 0 >$CB/run
check_nothing_held "after the overcommitted guests"
rmdir /sys/fs/cgroup/vms
}
modprobe -r cowbuf || fail "unload"
