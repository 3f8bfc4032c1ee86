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

echo "TAP version 13"
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP cowbuf_module.sh needs root"
	exit $ksft_skip
fi
if ! modinfo cowbuf >/dev/null 2>&1 && ! loaded; then
	echo "1..0 # SKIP cowbuf.ko is not installed"
	exit $ksft_skip
fi
echo "1..7"

check "module loads" sh -c 'modprobe cowbuf && [ -d /sys/module/cowbuf ]'
check "device node appears" node_ready
check "unused module has no references" refcnt_is 0
check "unload refused while the device is open" unload_refused_while_open
check "unload succeeds once closed" sh -c 'modprobe -r cowbuf && [ ! -d /sys/module/cowbuf ]'
check "device node disappears on unload" node_gone
check "module reloads" sh -c 'modprobe cowbuf && [ -d /sys/module/cowbuf ]'
node_ready

echo "# Totals: pass:$passed fail:$failed xfail:0 xpass:0 skip:0 error:0"
[ $failed -eq 0 ]
