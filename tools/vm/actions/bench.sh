#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make bench, inside the stock VM: the zero-copy hand-over benchmark.
modprobe cowbuf || exit 1
echo "# cpus $(nproc), $(grep MemTotal /proc/meminfo)"
cowbuf-bench "${cbbudget:-256}"
