#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make bench, inside the stock VM: the zero-copy hand-over benchmark, KSM's
# own ksm_tests as a reference, and cowbuf's merging side by side with KSM.
modprobe cowbuf || exit 1
echo "# cpus $(nproc), $(grep MemTotal /proc/meminfo)"
cowbuf-bench "${cbbudget:-256}"
echo "# KSM reference: ksm_tests -P -s 64 (linux-source-6.1)"
ksm_tests -P -s 64 2>&1 | sed 's/^/KSMTEST\t/'
echo "# KSM reference: ksm_tests -C (linux-source-6.1)"
ksm_tests -C 2>&1 | sed 's/^/KSMTEST\t/'
cowbuf-merge-bench "${cbmerge:-256}" "${cbscan:-1000}"
