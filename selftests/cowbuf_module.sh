#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Module lifecycle: load, the device node, unload refused while in use,
# unload, reload. Needs root and cowbuf.ko installed where modprobe finds it.
# Leaves the module loaded, as it found it or not.

ksft_skip=4
num=0
passed=0
failed=0

ok() {
	num=$((num + 1))
	passed=$((passed + 1))
	echo "ok $num $1"
}

not_ok() {
	num=$((num + 1))
	failed=$((failed + 1))
	echo "not ok $num $1"
}

check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

loaded() {
	[ -d /sys/module/cowbuf ]
}

node_ready() {
	# devtmpfs creates the node asynchronously after misc_register().
	i=0
	while [ $i -lt 50 ]; do
		[ -c /dev/cowbuf ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

node_gone() {
	i=0
	while [ $i -lt 50 ]; do
		[ -e /dev/cowbuf ] || return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

refcnt_is() {
	[ "$(cat /sys/module/cowbuf/refcnt)" = "$1" ]
}

unload_refused_while_open() {
	exec 3</dev/cowbuf || return 1
	rc=0
	refcnt_is 1 || rc=1
	rmmod cowbuf 2>/dev/null && rc=1
	loaded || rc=1
	exec 3<&-
	return $rc
}

# A program that leaves the module busy through a mapping whose descriptors
# are closed and a channel with a message queued.
hold_start() {
	rm -f /tmp/cowbuf_hold.ready
	"$(dirname "$0")/cowbuf_hold" "$1" /tmp/cowbuf_hold.ready &
	hold_pid=$!
	i=0
	while [ $i -lt 100 ] && [ ! -e /tmp/cowbuf_hold.ready ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e /tmp/cowbuf_hold.ready ]
}

hold_stop() {
	kill -9 "$hold_pid" 2>/dev/null
	wait "$hold_pid" 2>/dev/null
	rm -f /tmp/cowbuf_hold.ready
}

unload_refused_while_mapped() {
	hold_start 64 || { hold_stop; return 1; }
	rc=0
	rmmod cowbuf 2>/dev/null && rc=1
	loaded || rc=1
	[ "$(cat /sys/kernel/mm/cowbuf/frames)" = 64 ] || rc=1
	[ "$(cat /sys/kernel/mm/cowbuf/messages)" = 1 ] || rc=1
	hold_stop
	[ "$(cat /sys/kernel/mm/cowbuf/frames)" = 0 ] || rc=1
	[ "$(cat /sys/kernel/mm/cowbuf/messages)" = 0 ] || rc=1
	return $rc
}

load_unload_cycles() {
	n=0
	while [ $n -lt "$1" ]; do
		modprobe cowbuf && node_ready || return 1
		hold_start 16 || { hold_stop; return 1; }
		rmmod cowbuf 2>/dev/null && return 1
		hold_stop
		modprobe -r cowbuf && node_gone || return 1
		n=$((n + 1))
	done
}

# With the module unloaded, a selftest program is a skip (KSFT_SKIP), not
# a failure of each of its cases.
skips_without_module() {
	local rc=0
	"$(dirname "$0")/region_test" >/dev/null 2>&1 || rc=$?
	[ "$rc" = "$ksft_skip" ]
}

echo "TAP version 13"
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP cowbuf_module.sh needs root"
	exit $ksft_skip
fi
if ! modinfo cowbuf >/dev/null 2>&1 && ! loaded; then
	echo "1..0 # SKIP cowbuf.ko is not installed"
	exit $ksft_skip
fi
echo "1..11"

check "module loads" sh -c 'modprobe cowbuf && [ -d /sys/module/cowbuf ]'
check "device node appears" node_ready
check "unused module has no references" refcnt_is 0
check "merging across users is off after load" \
	sh -c '[ "$(cat /sys/kernel/mm/cowbuf/merge_across_users)" = 0 ]'
check "unload refused while the device is open" unload_refused_while_open
check "unload refused while a mapping outlives its descriptors" unload_refused_while_mapped
check "unload succeeds once closed" sh -c 'modprobe -r cowbuf && [ ! -d /sys/module/cowbuf ]'
check "device node disappears on unload" node_gone
check "without the module a test program skips" skips_without_module
check "${CYCLES:-10} load, use, unload cycles" load_unload_cycles "${CYCLES:-10}"
check "module reloads" sh -c 'modprobe cowbuf && [ -d /sys/module/cowbuf ]'
node_ready

echo "# Totals: pass:$passed fail:$failed xfail:0 xpass:0 skip:0 error:0"
[ $failed -eq 0 ]
