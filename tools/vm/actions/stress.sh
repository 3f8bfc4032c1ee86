#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Only cowbuf-stress, for iterating on it:
#   COWBUF_VM_ENV="cbseed=N cbsecs=S" tools/vm/run.sh stock|debug stress
modprobe cowbuf || exit 1
cowbuf-stress -s "${cbseed:-1}" -d "${cbsecs:-30}" -k -K
rc=$?
echo "cowbuf-stress exit $rc"
[ $rc -eq 0 ] || echo "COWBUF-LANE-FAIL cowbuf-stress exit $rc" >/dev/ttyS1
