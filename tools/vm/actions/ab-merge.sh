#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Two builds of the module compared in one VM run, in turn, on the merge
# bench's cowbuf part (COWBUF_MERGE_BENCH_ONLY=cowbuf: both mixes, cowbuf's
# merging pass and its hash-only pass): "base", the module of the commit
# COWBUF_AB_BASE (run.sh builds it, default HEAD), and "new", the working
# tree's. The machine's speed drifts by a quarter between VM runs, more than
# most changes to the scanner save; loaded in turn, base and new see the
# same drift.
#   COWBUF_AB_BASE=<commit> tools/vm/run.sh stock ab-merge
# Environment (COWBUF_VM_ENV): cbabrounds (rounds of base then new, 4),
# cbmerge (MiB, 256), cbscan (pages_to_scan, 1000).
# Output: "AB VARIANT MIX SYSTEM converge_s cpu_s" per round, then per mix
# and system each variant's median and new / base.

rounds=${cbabrounds:-4}
: >/tmp/ab.log
i=0
while [ $i -lt "$rounds" ]; do
	for v in base new; do
		ko=/cowbuf/cowbuf.ko
		[ $v = base ] && ko=/cowbuf/base/cowbuf.ko
		modprobe -r cowbuf 2>/dev/null
		if ! insmod $ko; then
			echo "COWBUF-LANE-FAIL ab-merge: insmod $ko" >/dev/ttyS1
			exit 1
		fi
		COWBUF_MERGE_BENCH_ONLY=cowbuf cowbuf-merge-bench "${cbmerge:-256}" \
			"${cbscan:-1000}" 0 >/tmp/ab.run
		awk -v v=$v '$1 == "BENCH" && $2 == "merge" { x[$3 " " $4 " " $5] = $6 }
		END {
			for (m = 0; m < 2; m++) for (s = 0; s < 2; s++) {
				k = (m ? "tenth" : "half") " " (s ? "hash" : "cowbuf")
				printf "AB %s %s %s %s\n", v, k, x[k " converge_s"], x[k " cpu_s"]
			}
		}' /tmp/ab.run | tee -a /tmp/ab.log
	done
	i=$((i + 1))
done
modprobe -r cowbuf 2>/dev/null
echo "# median converge_s (cpu_s) of $rounds rounds: base, new, new / base"
for k in "half cowbuf" "half hash" "tenth cowbuf" "tenth hash"; do
	for v in base new; do
		# shellcheck disable=SC2086
		set -- $k
		awk -v v=$v -v m="$1" -v s="$2" '$2 == v && $3 == m && $4 == s { print $5, $6 }' \
			/tmp/ab.log | sort -n | awk '{ t[NR] = $1; c[NR] = $2 }
			END { i = int((NR + 1) / 2); printf "%s %s ", t[i], c[i] }'
	done | awk -v k="$k" '{ printf "AB-MEDIAN %-12s base %s (%s) new %s (%s) new/base %.2f\n",
		k, $1, $2, $3, $4, $3 / $1 }'
done
