#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The worked example of Documentation/userspace-api.rst runs as documented.
ksft_skip=4

echo "TAP version 13"
if ! command -v handoff >/dev/null 2>&1 || [ ! -e /dev/cowbuf ]; then
	echo "1..0 # SKIP handoff (tools/examples) or /dev/cowbuf is missing"
	exit $ksft_skip
fi
echo "1..1"
out=$(handoff 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
if [ $rc -eq 0 ] && echo "$out" | grep -q "^after MOVE: buf\[0\] = 0$" &&
	echo "$out" | grep -q "^came back: buf\[0\] = 'C', buf\[1\] = 'P'$"; then
	echo "ok 1 handoff: MOVE empties, SHARE brings the change back"
	echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
	exit 0
fi
echo "not ok 1 handoff: MOVE empties, SHARE brings the change back"
echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
exit 1
