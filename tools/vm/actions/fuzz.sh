#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# tools/vm/run.sh LANE fuzz: cowbuf-fuzz with the seed and size given on the
# kernel command line (cbseed=, cbcalls=), knobs included.
modprobe cowbuf || exit 1
timeout 2700 cowbuf-fuzz -s "${cbseed:-1}" -n "${cbcalls:-100000}" -t 4 -k
rc=$?
echo "cowbuf-fuzz exit $rc"
[ $rc -eq 0 ] || echo "COWBUF-LANE-FAIL cowbuf-fuzz exit $rc" >/dev/ttyS1
