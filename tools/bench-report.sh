#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Turn the BENCH lines of a VM run's result channel into a report:
#
#   bench-report.sh RESULTS_LOG OUT_DIR LANE
#
# writes OUT_DIR/transfer.tsv, OUT_DIR/transfer-handoff.png,
# OUT_DIR/transfer-e2e.png and OUT_DIR/report.md (tables, ratios, plots).
set -euo pipefail

log=$1
out=$2
lane=$3
mkdir -p "$out"

grep -P '^BENCH\ttransfer\t' "$log" | cut -f3- >"$out/transfer.tsv" || true
[ -s "$out/transfer.tsv" ] || { echo "bench-report: no transfer figures in $log" >&2; exit 1; }

methods="cowbuf-move cowbuf-share huge-move huge-share memcpy-shm pipe vmsplice pvm-writev"
copies="memcpy-shm pipe vmsplice pvm-writev"

# median_us for METHOD PHASE SIZE
us() {
	awk -F'\t' -v m="$1" -v p="$2" -v s="$3" \
		'$1 == m && $2 == p && $3 == s { print $4 }' "$out/transfer.tsv"
}

# MiB/s for METHOD PHASE SIZE
mibs() {
	awk -F'\t' -v m="$1" -v p="$2" -v s="$3" \
		'$1 == m && $2 == p && $3 == s { print $5 }' "$out/transfer.tsv"
}

lt() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

# The fastest copying path for PHASE SIZE.
best_copy() {
	local m v best= bestm=

	for m in $copies; do
		v=$(us "$m" "$1" "$2")
		if [ -z "$best" ] || lt "$v" "$best"; then
			best=$v
			bestm=$m
		fi
	done
	echo "$bestm"
}

human() {
	awk -v b="$1" 'BEGIN {
		if (b >= 1048576) printf "%d MiB", b / 1048576;
		else printf "%d KiB", b / 1024 }'
}

sizes=$(cut -f3 "$out/transfer.tsv" | sort -n | uniq)

# One data file per phase for gnuplot: size, then MiB/s of each method.
for phase in handoff e2e; do
	cols="$methods"
	[ "$phase" = e2e ] && cols="$cols read-only"
	{
		echo "# size $cols"
		for s in $sizes; do
			printf '%s' "$s"
			for m in $cols; do
				v=$(mibs "$m" "$phase" "$s")
				printf ' %s' "${v:-NaN}"
			done
			echo
		done
	} >"$out/transfer-$phase.dat"
done

if command -v gnuplot >/dev/null; then
	for phase in handoff e2e; do
		cols="$methods"
		[ "$phase" = e2e ] && cols="$cols read-only"
		gnuplot <<EOF
set terminal pngcairo size 900,560 noenhanced
set output "$out/transfer-$phase.png"
set title "cowbuf: $phase of a buffer, process A to process B ($lane lane, qemu TCG)"
set xlabel "buffer size"
set ylabel "MiB/s (higher is better)"
set logscale xy
set xtics ("4K" 4096, "64K" 65536, "1M" 1048576, "2M" 2097152, "16M" 16777216, \\
	"64M" 67108864, "256M" 268435456)
set key outside right
set grid
names = "$cols"
plot for [i=1:words(names)] "$out/transfer-$phase.dat" using 1:i+1 \\
	with linespoints lw 2 title word(names, i)
EOF
	done
fi

# us per 2 MiB frame of a "BENCH frame" line, for NAME
frame_us() {
	grep -P "^BENCH\tframe\t$1\t" "$log" | cut -f5
}

# metric of cowbuf-merge-bench for MIX SYSTEM METRIC
merge_value() {
	{ grep -P "^BENCH\tmerge\t$1\t$2\t$3\t" "$log" || true; } | cut -f6 | tr -d '\r'
}

# metric of the volatile workload for SYSTEM METRIC
volatile_value() {
	{ grep -P "^BENCH\tvolatile\t$1\t$2\t" "$log" || true; } | cut -f5 | tr -d '\r'
}

# The merge table of MIX: KSM on 4 KiB pages and on THP, cowbuf, the hash pass.
merge_table() {
	local mix=$1 metric k t c h f
	echo "| metric | KSM | KSM on THP | cowbuf | cowbuf / KSM |" \
		"cowbuf / KSM on THP | hash pass | cowbuf / hash | floor | cowbuf / floor |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for metric in converge_s cpu_s cpu_us_per_merged saved_mib cow_us passes converged; do
		k=$(merge_value "$mix" ksm "$metric")
		t=$(merge_value "$mix" ksm-thp "$metric")
		c=$(merge_value "$mix" cowbuf "$metric")
		h=$(merge_value "$mix" hash "$metric")
		f=$(merge_value "$mix" floor "$metric")
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$metric" "$k" \
			"$t" "$c" "$(ratio "$c" "$k")" "$(ratio "$c" "$t")" "${h:--}" \
			"$(ratio "$c" "$h")" "${f:--}" "$(ratio "$c" "$f")"
	done
}

# The volatile workload's table.
volatile_table() {
	local sys b kb
	echo "| system | writes | COW breaks | breaks/s | breaks per write |" \
		"merged MiB (avg) | breaks/s vs KSM |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	kb=$(volatile_value ksm breaks_per_s)
	for sys in ksm cowbuf cowbuf-nobackoff; do
		b=$(volatile_value $sys breaks_per_s)
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$sys" \
			"$(volatile_value $sys writes)" "$(volatile_value $sys breaks)" "$b" \
			"$(volatile_value $sys breaks_per_write)" \
			"$(volatile_value $sys sharing_mib_avg)" "$(ratio "$b" "$kb")"
	done
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'
}

{
	echo "# cowbuf benchmark report"
	echo
	echo "Measured by \`make bench\` in the **$lane lane** (Debian's stock kernel in qemu,"
	echo "TCG, 2 vCPUs, 2 GiB) on $(date -u +%Y-%m-%d). Every figure is the median of"
	echo "several hand-overs within one VM run; TCG inflates some costs (page-table"
	echo "and TLB work, atomics) more than others (memcpy), so compare within this"
	echo "run only."
	echo
	echo "## Zero-copy hand-over (cowbuf-bench)"
	echo
	echo "Process A hands a buffer to process B. *handoff*: until B has the bytes in"
	echo "its address space (for cowbuf: mapped into B's page tables); *e2e*: until B"
	echo "has also read every byte once; *read-only*: B reads a buffer it already"
	echo "has, the bound no e2e hand-over can beat. Microseconds, lower is better."
	echo
	for phase in handoff e2e; do
		cols="$methods"
		[ "$phase" = e2e ] && cols="$cols read-only"
		echo "### $phase"
		echo
		printf '| size |'
		for m in $cols; do printf ' %s |' "$m"; done
		echo
		printf '|---|'
		for m in $cols; do printf -- '---:|'; done
		echo
		for s in $sizes; do
			printf '| %s |' "$(human "$s")"
			for m in $cols; do printf ' %s |' "$(us "$m" "$phase" "$s")"; done
			echo
		done
		echo
	done
	echo "### Ratios"
	echo
	printf '| size | best copying path (handoff) | cowbuf-move vs it |'
	printf ' cowbuf-share vs it | huge-move vs it | huge-share vs it |'
	printf ' cowbuf-move e2e / read-only | huge-move e2e / read-only |'
	echo ' cowbuf-move e2e vs best copying e2e | huge-move e2e vs best copying e2e |'
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for s in $sizes; do
		bestm=$(best_copy handoff "$s")
		best=$(us "$bestm" handoff "$s")
		beste=$(us "$(best_copy e2e "$s")" e2e "$s")
		printf '| %s | %s (%s us) | %sx | %sx | %sx | %sx | %s | %s | %sx | %sx |\n' \
			"$(human "$s")" "$bestm" "$best" \
			"$(ratio "$best" "$(us cowbuf-move handoff "$s")")" \
			"$(ratio "$best" "$(us cowbuf-share handoff "$s")")" \
			"$(ratio "$best" "$(us huge-move handoff "$s")")" \
			"$(ratio "$best" "$(us huge-share handoff "$s")")" \
			"$(ratio "$(us read-only e2e "$s")" "$(us cowbuf-move e2e "$s")")" \
			"$(ratio "$(us read-only e2e "$s")" "$(us huge-move e2e "$s")")" \
			"$(ratio "$beste" "$(us cowbuf-move e2e "$s")")" \
			"$(ratio "$beste" "$(us huge-move e2e "$s")")"
	done
	echo
	echo "\"vs it\" is the copying path's time divided by cowbuf's: above 1 cowbuf is"
	echo "faster. \"e2e / read-only\" is the fraction of the read-only bound reached."
	echo "huge-move and huge-share hand over huge regions (2 MiB frames, one PMD each)."
	echo
	floor=$(frame_us pmd-refault)
	if [ -n "$floor" ]; then
		echo "### Cost per 2 MiB frame (huge-move handoff)"
		echo
		echo "The floor, measured in the same run: zapping the PMD of one committed"
		echo "2 MiB frame and faulting it back by a write takes **$floor us**."
		echo
		echo "| message size | us per frame | / floor |"
		echo "|---|---:|---:|"
		grep -P '^BENCH\tframe\thuge-move\t' "$log" | while IFS=$'\t' read -r _ _ _ b v; do
			printf '| %s | %s | %s |\n' "$(human "$b")" "$v" "$(ratio "$v" "$floor")"
		done
		echo
		echo "The end-to-end figure includes the process hand-over (waking B). In one"
		echo "process, 16-frame MOVE messages, per frame: SEND $(frame_us huge-send) us,"
		echo "RECV (which maps every frame by PMD) $(frame_us huge-recv) us; the"
		echo "receiver's first-touch fault, had RECV not mapped the frame,"
		echo "$(frame_us huge-touch) us."
		echo
		wake=$({ grep -P '^BENCH\thandover\twakeup\t2000\t' "$log" || true; } | cut -f5)
		wake0=$({ grep -P '^BENCH\thandover\twakeup\t0\t' "$log" || true; } | cut -f5)
		if [ -n "$wake" ]; then
			echo "### The floor of a hand-over between processes"
			echo
			echo "Waking B, blocked in read(), by a one-byte write from A, no data"
			echo "moved: **$wake us** when A kept its CPU busy for 2 ms before"
			echo "(B's vCPU has gone idle, as it does while A copies or refills a"
			echo "MOVE buffer),"
			echo "$wake0 us when A writes at once. Every hand-over between processes"
			echo "pays the first, the copying paths included. A huge MOVE of N frames"
			echo "that A has mapped cannot cost less than that wake-up plus N zap +"
			echo "refaults of a PMD (A's PMDs go, B's come), nor end to end less than"
			echo "that plus B reading the bytes (read-only). The targets: handoff a"
			echo "tenth of the best copying path, end to end within twice read-only."
			echo "(A SHARE of frames A no longer maps needs no zap, so it can go below"
			echo "this floor.)"
			echo
			printf '| size | handoff target | handoff floor | huge-move |'
			printf ' target >= floor | e2e target | e2e floor | huge-move e2e |'
			echo ' target >= floor |'
			echo "|---|---:|---:|---:|---|---:|---:|---:|---|"
			for s in $sizes; do
				[ $((s % 2097152)) -eq 0 ] || continue
				best=$(us "$(best_copy handoff "$s")" handoff "$s")
				ro=$(us read-only e2e "$s")
				tgt=$(awk -v b="$best" 'BEGIN { printf "%.1f", b / 10 }')
				fl=$(awk -v w="$wake" -v f="$floor" -v n=$((s / 2097152)) \
					'BEGIN { printf "%.1f", w + n * f }')
				etgt=$(awk -v r="$ro" 'BEGIN { printf "%.1f", 2 * r }')
				efl=$(awk -v a="$fl" -v r="$ro" 'BEGIN { printf "%.1f", a + r }')
				ok=no
				lt "$fl" "$tgt" && ok=yes
				eok=no
				lt "$efl" "$etgt" && eok=yes
				printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
					"$(human "$s")" "$tgt" "$fl" \
					"$(us huge-move handoff "$s")" "$ok" "$etgt" "$efl" \
					"$(us huge-move e2e "$s")" "$eok"
			done
			echo
		fi
		echo "A write that breaks copy-on-write of a shared frame (SHARE, then a"
		echo "write in the receiver): 2 MiB frame, copied whole,"
		echo "$(frame_us huge-cow) us; 4 KiB page $(frame_us page-cow) us."
		echo
	fi
	echo "![handoff](transfer-handoff.png)"
	echo
	echo "![e2e](transfer-e2e.png)"
	if grep -qP '^BENCH\tmerge\t' "$log"; then
		echo
		echo "## Same-page merging: cowbuf against KSM (cowbuf-merge-bench)"
		echo
		echo "The same bytes in MADV_MERGEABLE anonymous memory (KSM: 4 KiB pages,"
		echo "MADV_NOHUGEPAGE, as the cowbuf region has; KSM on THP: MADV_HUGEPAGE,"
		echo "which KSM splits) and in a mergeable cowbuf region, each scanner run"
		echo "alone with the same pages_to_scan and sleep_millisecs=0, in the same"
		echo "VM run. *hash* is"
		echo "the bound: one pass of cowbufd with hash_only=1, which reads and"
		echo "hashes the same region and does nothing else. *floor* adds what"
		echo "merging cannot do without besides, per page merged: one comparison"
		echo "of two pages (from a pass with hash_only=2, every page also compared"
		echo "with itself), one page-table entry removed (from one MADV_DONTNEED"
		echo "of the whole region, mapped) and one frame given back (from one"
		echo "fallocate(PUNCH_HOLE) of the whole region, unmapped), same run:"
		echo "hash + merged / pages x (compare - hash + zap + punch)."
		for mix in half tenth; do
			echo
			grep -E "^# mix $mix: " "$log" | sed 's/^# //'
			echo
			merge_table $mix
		done
		echo
		echo "Below 1, cowbuf took less time or CPU. converge_s: seconds from run=1"
		echo "until pages_sharing reached what the content allows (for *hash*: one"
		echo "full pass); cpu_s: the scanner thread's CPU time meanwhile (ksmd,"
		echo "cowbufd, /proc/<pid>/stat); cow_us: time per write that breaks"
		echo "copy-on-write of a merged page; passes: full scans completed meanwhile."
		if grep -qP '^BENCH\tvolatile\t' "$log"; then
			echo
			echo "### Volatile workload"
			echo
			grep -E '^# volatile: ' "$log" | sed 's/^# //'
			echo
			volatile_table
			echo
			echo "A COW break is a write to a page that was merged (KSM: KPF_KSM"
			echo "in /proc/kpageflags just before the write; cowbuf: its"
			echo "cow_breaks counter): a merge undone. cowbuf-nobackoff is cowbuf"
			echo "with max_backoff=0."
		fi
		echo
		echo "![merge](merge.png)"
		echo
		echo "KSM's own ksm_tests (tools/testing/selftests/vm, linux-source-6.1), same run:"
		echo
		echo '```'
		grep -P '^KSMTEST\t' "$log" | cut -f2- | grep -v '^$'
		echo '```'
	fi
} >"$out/report.md"
echo "bench-report: wrote $out/report.md"

if command -v gnuplot >/dev/null && grep -qP '^BENCH\tmerge\t' "$log"; then
	{
		echo "metric ksm cowbuf"
		for metric in converge_s cpu_us_per_merged cow_us; do
			echo "$metric 1 $(ratio "$(merge_value half cowbuf "$metric")" \
				"$(merge_value half ksm "$metric")")"
		done
	} >"$out/merge.dat"
	gnuplot <<EOF
set terminal pngcairo size 800,480 noenhanced
set output "$out/merge.png"
set title "cowbuf vs KSM: same content, same pages_to_scan ($lane lane, qemu TCG)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "relative to KSM (KSM = 1, lower is better)"
set yrange [0:*]
set grid ytics
set key top left
plot "$out/merge.dat" using 2:xtic(1) title "KSM", "" using 3 title "cowbuf"
EOF
fi
