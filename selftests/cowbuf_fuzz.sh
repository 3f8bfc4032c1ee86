#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A fixed-seed slice of the ioctl fuzzer (make gauntlet runs a million calls):
# only documented errnos, no hang, and nothing left in the module afterwards.
# Kernel splats are the VM lane's to catch.
ksft_skip=4

echo "TAP version 13"
if ! command -v cowbuf-fuzz >/dev/null 2>&1 || [ ! -e /dev/cowbuf ]; then
	echo "1..0 # SKIP cowbuf-fuzz (tools/) or /dev/cowbuf is missing"
	exit $ksft_skip
fi
knobs=
[ "$(id -u)" = 0 ] && knobs=-k
echo "1..1"
out=$(timeout 240 cowbuf-fuzz -s 1 -n 20000 -t 4 $knobs 2>&1)
rc=$?
echo "$out" | grep -v ' calls$' | sed 's/^/# /'
if [ $rc -eq 0 ]; then
	echo "ok 1 20000 fuzzed calls, seed 1: documented errors only, nothing leaked"
	echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
	exit 0
fi
echo "not ok 1 20000 fuzzed calls, seed 1 (exit $rc)"
echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
exit 1
