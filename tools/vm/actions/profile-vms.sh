#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Where cowbufd's time goes on real guests: make vms's cowbuf part (two
# guests boot with the scanner stopped, then it runs) with cowbufd under
# perf record -g -e cpu-clock from the moment the scanner starts until the
# end of the fine watch (cbvmfine seconds), then its stacks by
# perf-stacks.sh: until it converged (the first pass, mostly), and after
# (passes over memory that changes little). The balloon and reporting tests
# are left out. perf costs the outer VM CPU too: the converge time of a
# profiled run is not a figure.
#   COWBUF_VM_MEM=3G COWBUF_VM_TIMEOUT=3600 tools/vm/run.sh stock profile-vms
export cbvmphases=${cbvmphases:-cowbuf} cbvmwatch=${cbvmwatch:-15}
export cbvmprofile=/tmp/perf.vms
/cowbuf/tools/vm-vms.sh || exit
echo 0 >/proc/sys/kernel/kptr_restrict
read -r start converged <$cbvmprofile.window
/cowbuf/tools/vm-perf-stacks.sh $cbvmprofile cowbufd all "$start,$converged"
/cowbuf/tools/vm-perf-stacks.sh $cbvmprofile cowbufd all "$converged,"
