#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run one of cowbuf's VM lanes.
#
#   run.sh LANE [ACTION]
#
# LANE is stock (Debian's kernel) or debug (KASAN, lockdep, DEBUG_VM,
# kmemleak; tools/vm/debug.config). ACTION is check (the kselftests, the
# default), demo, bench or gauntlet. The module is built against the lane's
# kernel, an initramfs is made of busybox-static, the module, the kselftests
# and the tools, and qemu boots it. ACTION ab-merge also builds the module
# of the commit COWBUF_AB_BASE (default HEAD) for the action to compare the
# working tree's with. The lane fails on a missing
# COWBUF-LANE-OK on the result channel (ttyS1), on any kernel splat in the
# console log, and on a failed kselftest. The last line of output is
# "LANE: N passed, N failed, N skipped"; the same numbers go to
# build/LANE/totals.
#
# Environment: COWBUF_ACCEL=kvm|tcg (default: kvm if a probe boot works
# here, cached), COWBUF_VM_TIMEOUT (seconds, default 900), COWBUF_VM_MEM
# (default 2G), V=1 to stream the console.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/common.sh"

lane=${1:-}
action=${2:-check}
case "$lane" in
stock | debug) ;;
*) die "usage: run.sh stock|debug" \
	"[check|demo|bench|bench-merge|ab-merge|profile-merge|vms|profile-vms|gauntlet|probe]" ;;
esac

out=$top/build/$lane
mkdir -p "$out"
read -r kernel kdir < <("$here/kernel.sh" "$lane")

# compile_module SRC LOG [MAKE-ARGS]: build the module sources copied to SRC
# against the lane's kernel, the output in LOG.
compile_module() {
	make -s -C "$kdir" M="$1" "${@:3}" modules >"$2" 2>&1 || {
		cat "$2" >&2
		die "$lane: build of the module in $1 failed"
	}
}

# The module, built from a copy of the sources so that the lanes' objects
# (built against different kernels) never mix with each other or with the
# top-level build.
build_module() {
	local src=$out/src
	mkdir -p "$src"
	rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='*.cmd' \
		--exclude='*.mod*' --exclude='modules.order' \
		"$top/Kbuild" "$top/module" "$top/uapi" "$src/"
	compile_module "$src" "$out/module-build.log" W=1
	# The selftests' pin helper (selftests/pin), a module of its own.
	mkdir -p "$src/pin"
	rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='*.cmd' \
		--exclude='*.mod*' --exclude='modules.order' \
		"$top/selftests/pin/" "$src/pin/"
	cp "$top/selftests/cowbuf_pin.h" "$src/"
	compile_module "$src/pin" "$out/module-build.log.pin" W=1
	cat "$out/module-build.log.pin" >>"$out/module-build.log"
	if grep -q 'warning:' "$out/module-build.log"; then
		cat "$out/module-build.log" >&2
		die "$lane: module build has warnings"
	fi
}

# ab-merge: the module as of the commit COWBUF_AB_BASE (default HEAD), the
# "base" the working tree's is compared with.
build_base_module() {
	local src=$out/src-base rev=${COWBUF_AB_BASE:-HEAD}
	rm -rf "$src"
	mkdir -p "$src"
	git -C "$top" archive "$rev" Kbuild module uapi | tar -x -C "$src" ||
		die "ab-merge: no sources at $rev"
	compile_module "$src" "$out/module-base-build.log"
	echo "cowbuf: ab-merge: base $(git -C "$top" rev-parse --short "$rev")," \
		"new: the working tree" >&2
}

# Copy a dynamically linked program and the libraries it loads into the
# initramfs at $1, at their own paths.
add_dynamic_program() {
	local root=$1 prog=$2 lib
	[ -x "$prog" ] || die "$prog is missing (run: make deps)"
	mkdir -p "$root$(dirname "$prog")"
	cp "$prog" "$root$prog"
	for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# What `make vms` runs inside the lane: Debian's QEMU (binary, libraries,
# TCG accelerator module, firmware) and the nested guests' kernel (the
# lane's own stock kernel) and initramfs (busybox, tools/vm/guest-init and
# the stock virtio balloon modules).
add_nested_guests() {
	local root=$1 groot=$out/guest-initramfs mods
	add_dynamic_program "$root" "$(command -v qemu-system-x86_64)"
	# Loaded by QEMU from QEMU_MODULE_DIR (vms.sh sets it).
	mkdir -p "$root/usr/lib/x86_64-linux-gnu/qemu"
	cp /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so "$root/usr/lib/x86_64-linux-gnu/qemu/"
	mkdir -p "$root/usr/share"
	cp -rL /usr/share/qemu /usr/share/seabios "$root/usr/share/"
	mods=$("$here/kernel.sh" guest-modules)
	rm -rf "$groot"
	mkdir -p "$groot/bin" "$groot/modules"
	cp /bin/busybox "$groot/bin/busybox"
	cp "$here/guest-init" "$groot/init"
	chmod +x "$groot/init"
	cp "$mods"/*.ko "$mods/order" "$groot/modules/"
	mkdir -p "$root/cowbuf/guest"
	cp "$kernel" "$root/cowbuf/guest/vmlinuz"
	(cd "$groot" && find . | cpio -o -H newc --quiet | gzip -1) \
		>"$root/cowbuf/guest/initramfs.gz"
}

build_initramfs() {
	local root=$out/initramfs
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/cowbuf/tools"
	cp /bin/busybox "$root/bin/busybox"
	cp "$here/init" "$root/init"
	chmod +x "$root/init"
	cp "$out/src/module/cowbuf.ko" "$out/src/pin/cowbuf_pin.ko" "$root/cowbuf/"
	if [ "$action" = ab-merge ]; then
		mkdir -p "$root/cowbuf/base"
		cp "$out/src-base/module/cowbuf.ko" "$root/cowbuf/base/"
	fi
	cp -r "$top/build/ksft-install" "$root/cowbuf/kselftest"
	if [ -d "$top/build/tools" ]; then
		cp -r "$top/build/tools/." "$root/cowbuf/tools/"
	fi
	for f in "$here"/actions/*.sh; do
		[ -e "$f" ] && cp "$f" "$root/cowbuf/tools/vm-$(basename "$f")"
	done
	[ "$action" = gauntlet ] && add_dynamic_program "$root" "$(command -v stress-ng)"
	case "$action" in
	profile-*) add_dynamic_program "$root" "$(command -v perf)" ;;
	esac
	# The stock lane's kselftests boot one nested guest (cowbuf_qemu.sh).
	if [ "$action" = vms ] || [ "$action" = profile-vms ] ||
		{ [ "$action" = check ] && [ "$lane" = stock ]; }; then
		add_nested_guests "$root"
	fi
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.gz"
}

# KVM where it works (nested KVM hangs on these machines): a probe boot
# decides once per machine and the answer is cached.
pick_accel() {
	local cache=$COWBUF_CACHE/accel
	if [ -n "${COWBUF_ACCEL:-}" ]; then
		echo "$COWBUF_ACCEL"
	elif [ -r "$cache" ]; then
		cat "$cache"
	elif [ ! -w /dev/kvm ]; then
		echo tcg
	else
		if boot kvm probe 30 >/dev/null 2>&1 &&
			grep -q COWBUF-LANE-OK "$out/results.log"; then
			echo kvm | tee "$cache"
		else
			echo tcg | tee "$cache"
		fi
	fi
}

boot() {
	local accel=$1 act=$2 secs=$3 cpu=max
	local cmdline="console=ttyS0 panic=-1 panic_on_warn=1 oops=panic loglevel=6"
	# Extra words for /init's environment, e.g. COWBUF_VM_ENV="cbseed=7".
	cmdline+=" ${COWBUF_VM_ENV:-}"
	[ "$accel" = kvm ] && cpu=host
	: >"$out/console.log"
	: >"$out/results.log"
	timeout --foreground "$secs" qemu-system-x86_64 \
		-accel "$accel" -cpu "$cpu" -smp 2 -m "${COWBUF_VM_MEM:-2G}" \
		-nodefaults -display none -no-reboot \
		-kernel "$kernel" -initrd "$out/initramfs.gz" \
		-append "$cmdline cbaction=$act" \
		-serial "file:$out/console.log" -serial "file:$out/results.log"
}

splat_patterns='BUG:|WARNING:|KASAN|UBSAN|circular locking|recursive locking|'
splat_patterns+='unreferenced object|Oops|Kernel panic|general protection fault|'
splat_patterns+='kernel BUG|INFO: task|rcu: INFO|Unable to handle'

# kselftest TAP: count the cases of every program ("# ok N" / "# not ok N"),
# and count a failed program that reported no failed case as one failure.
count_tap() {
	awk '
	/^# ok [0-9]+ .*# SKIP/ { skip++; next }
	/^# ok [0-9]+ / { pass++; next }
	/^# not ok [0-9]+ / { fail++; blockfail++; next }
	/^not ok [0-9]+ selftests: / { if (!blockfail) fail++; blockfail = 0; next }
	/^ok [0-9]+ selftests: .*# SKIP/ { skip++; blockfail = 0; next }
	/^ok [0-9]+ selftests: / { blockfail = 0; next }
	END { printf "%d %d %d\n", pass, fail, skip }
	' "$1"
}

build_module
[ "$action" = ab-merge ] && build_base_module
"$here/ksft.sh" "$top/build/ksft" "$top/build/ksft-install"
make -s -C "$top/tools" OUT="$top/build/tools"
if [ "$action" = bench ]; then
	make -s -C "$top/tools" OUT="$top/build/tools" KSRC="$("$here/ksrc.sh")" \
		"$top/build/tools/ksm_tests"
fi
# The kernel's vm selftests, for the gauntlet only.
rm -rf "$top/build/tools/kernel-vm"
if [ "$action" = gauntlet ]; then
	make -s -C "$top/tools" OUT="$top/build/tools" KSRC="$("$here/ksrc.sh")" \
		kernel-vm-tests >"$out/kernel-vm-build.log" 2>&1 || {
		cat "$out/kernel-vm-build.log" >&2
		die "building the kernel's vm selftests failed"
	}
fi
build_initramfs
accel=$(pick_accel)

echo "cowbuf: $lane lane: booting $(basename "$kernel") ($accel), action $action" >&2
start=$(date +%s)
if [ "${V:-0}" = 1 ]; then
	tail -F "$out/console.log" 2>/dev/null &
	tailpid=$!
fi
rc=0
boot "$accel" "$action" "${COWBUF_VM_TIMEOUT:-900}" || rc=$?
[ -n "${tailpid:-}" ] && kill "$tailpid" 2>/dev/null
secs=$(($(date +%s) - start))

lane_ok=1
why=
if [ $rc -eq 124 ]; then
	lane_ok=0
	why="timed out"
elif ! grep -q '^COWBUF-LANE-OK' "$out/results.log"; then
	lane_ok=0
	why="no COWBUF-LANE-OK on the result channel (crash or panic?)"
fi
if grep -q '^COWBUF-LANE-FAIL' "$out/results.log"; then
	lane_ok=0
	why="$(grep '^COWBUF-LANE-FAIL' "$out/results.log" | head -n 3 | tr '\n' ' ')"
fi
if grep -Eq "$splat_patterns" "$out/console.log"; then
	lane_ok=0
	why="kernel splat in the console log"
	grep -E -B 2 -A 30 "$splat_patterns" "$out/console.log" | head -n 80 >&2
fi

read -r passed failed skipped < <(count_tap "$out/results.log")
if [ $lane_ok -eq 0 ]; then
	echo "cowbuf: $lane lane FAILED: $why (log: $out/console.log)" >&2
	tail -n 40 "$out/console.log" >&2
	failed=$((failed + 1))
fi
if [ "$action" != check ]; then
	sed -n '/^COWBUF-LANE-START/,/^COWBUF-LANE-OK/p' "$out/results.log" |
		grep -v '^COWBUF-LANE-'
fi
echo "$passed $failed $skipped" >"$out/totals"
echo "$lane: $passed passed, $failed failed, $skipped skipped (${secs} s)"
[ $lane_ok -eq 1 ] && [ "$failed" -eq 0 ]
