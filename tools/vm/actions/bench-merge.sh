#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Only the merge comparison with KSM, for iterating on the scanner:
#   tools/vm/run.sh stock bench-merge
modprobe cowbuf || exit 1
cowbuf-merge-bench "${cbmerge:-256}" "${cbscan:-1000}"
