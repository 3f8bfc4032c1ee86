#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Turn the VMS lines of a `make vms` run (tools/vm/actions/vms.sh) into a
# Markdown section on standard output:
#
#   vms-report.sh RESULTS_LOG
set -euo pipefail

log=$1
grep -q '^VMS ' "$log" || { echo "vms-report: no VMS figures in $log" >&2; exit 1; }

# f WHAT KEY: the value after KEY on the "VMS WHAT ..." lines.
f() {
	awk -v s="$1" -v k="$2" '{ sub(/\r$/, "") } $1 == "VMS" && $2 == s {
		for (i = 3; i < NF; i++) if ($i == k) v = $(i + 1) }
		END { print v }' "$log"
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'
}

# cmp LABEL KEY [noratio]: a row of cowbuf against KSM.
cmp() {
	local a b r=
	a=$(f cowbuf "$2")
	b=$(f ksm "$2")
	[ "${3:-}" = noratio ] || r=$(ratio "$a" "$b")
	echo "| $1 | $a | $b | $r |"
}

echo "## Virtual machines (make vms: nested QEMU guests, $(f config mem_mib) MiB each)"
cat <<EOF

Inside one stock-lane VM of $(($(f config outer_mem_kb) / 1024)) MiB, TCG inside TCG. Two
guests boot with the scanner stopped; once both are ready it starts
(pages_to_scan $(f config pages_to_scan), sleep_millisecs $(f config sleep_millisecs), the same
for both). For its first $(f config fine_s) s what it saves (cowbuf: frames fewer;
KSM: pages_sharing more) is read by the shell's builtins alone, a sample
every $(f cowbuf fine_gap_s) s (cowbuf) and $(f ksm fine_gap_s) s (KSM); converged: from when that
stays within 5% of what was saved at $(f config fine_s) s. Then the footprint is
sampled every 0.2 s until 20 s, then every 2 s, until $(f config watch_s) s.
Footprint: the pages holding the guests' RAM (cowbuf: its frames; KSM:
resident pages of the RAM mappings, THP on as QEMU asks, less
pages_sharing). Saved: the footprint when the scanner started less the
last one.

| | cowbuf (RAM in regions) | KSM (anonymous RAM) | cowbuf / KSM |
|---|---|---|---|
EOF
cmp "boot to ready, both guests (s)" boot_s noratio
cmp "footprint before merging (MiB)" before_mib noratio
cmp "footprint after (MiB)" footprint_mib
cmp "memory saved (MiB)" saved_mib
cmp "time to converge (s)" converge_s
cmp "first full pass ended at (s)" first_pass_s
cmp "scanner CPU until converged (s)" cpu_to_converge_s
cmp "scanner CPU, whole window (s)" cpu_window_s
cmp "pages_sharing at the end" counter_pages noratio

if grep -q '^VMS floor' "$log"; then
	floor=$(f floor hash_pass_s)
	cat <<EOF

The floor of a first pass, measured on the cowbuf guests just before they
merged: one pass of cowbufd with hash_only=1 (reads and hashes every
committed slot, nothing else), same pages_to_scan and sleep_millisecs, took
$floor s ($(f floor hash_cpu_s) s of CPU, $(f floor pages_read) pages read of
$(f floor pages_committed) committed). cowbuf converged in
$(ratio "$(f cowbuf converge_s)" "$floor")x that; KSM's time to converge is
$(ratio "$(f ksm converge_s)" "$floor")x it. A scanner that merges in one pass ends that
pass no sooner than this floor: at these settings it can converge at most
about that many times sooner than KSM (KSM's guests waited as long before
ksmd started).
EOF
fi

cat <<EOF

| cowbuf guests, scanner stopped | |
|---|---|
| guest A first wrote and freed (MiB) | $(f balloon written_mib) of its $(f balloon free_mib) free \
(committed before: $(f balloon committed_before_writing_mib) MiB) |
| balloon inflated by (MiB) | $(f balloon inflate_mib) (guest's actual: $(f balloon actual_mib)) |
| committed before / after (MiB) | $(f balloon committed_before_mib) / \
$(f balloon committed_after_mib) |
| given back (MiB) | $(f balloon given_back_mib) ($(f balloon given_back_pct)% of the balloon) |
| deflated, then written (MiB) | $(f deflate touched_mib) (committed: \
$(f deflate committed_mib) MiB) |
| freed in a guest with free page reporting (MiB) | $(f reporting freed_mib) |
| committed before / after (MiB) | $(f reporting committed_before_mib) / \
$(f reporting committed_after_mib) |
| given back (MiB) | $(f reporting given_back_mib) ($(f reporting given_back_pct)% of it) |
| guest capped at 16 MiB | QEMU exit status $(f capped exit_status) (SIGBUS: 135) |
| after SIGKILL of both guests | $(grep '^VMS leak after SIGKILL' "$log" | cut -d' ' -f8- || true) |
EOF

if grep -q '^VMS huge_balloon' "$log"; then
	cat <<EOF

Guest RAM in huge regions (\`cowbufctl exec --merge --huge\`, \`align=2M\`; two
guests, the scanner stopped but where said). Committed after boot:
$(f huge boot_committed_a_mib) and $(f huge boot_committed_b_mib) MiB; guest A mapped
$(f huge pmd_mapped_kb) kB by PMD.

| huge regions | |
|---|---|
| guest A first wrote and freed (MiB) | $(f huge_balloon written_mib) of its \
$(f huge_balloon free_mib) free |
| balloon inflated by (MiB) | $(f huge_balloon inflate_mib) \
(guest's actual: $(f huge_balloon actual_mib)) |
| committed before / after (MiB) | $(f huge_balloon committed_before_mib) / \
$(f huge_balloon committed_after_mib) |
| given back by the balloon (MiB) | $(f huge_balloon given_back_mib) \
($(f huge_balloon given_back_pct)% of it) |
| deflated, then written (MiB) | $(f huge_deflate touched_mib) (committed: \
$(f huge_deflate committed_mib) MiB) |
| then the scanner for 20 s: committed before / after (MiB) | \
$(f huge_scan committed_before_mib) / $(f huge_scan committed_after_mib) \
(all-zero frames released: $(f huge_scan zero_released_mib) MiB) |
| freed in guest B, free page reporting (MiB) | $(f huge_reporting freed_mib) |
| committed before / after (MiB) | $(f huge_reporting committed_before_mib) / \
$(f huge_reporting committed_after_mib) |
| given back (MiB) | $(f huge_reporting given_back_mib) \
($(f huge_reporting given_back_pct)% of it) |
| after SIGKILL of both guests | \
$(grep '^VMS leak after the huge' "$log" | cut -d' ' -f7- || true) |
EOF
fi
if grep -q '^VMS overcommit' "$log"; then
	cat <<EOF

Overcommit: $(f overcommit guests) guests of $(f config mem_mib) MiB \
($(f overcommit guest_ram_mib) MiB of guest RAM) in a memory cgroup limited to
$(f overcommit cgroup_max_mib) MiB (QEMU's own memory included);
their balloons gave back $(f overcommit balloons_gave_mib) MiB; then each wrote 64 MiB of the same
bytes. Their regions then held $(f overcommit unmerged_mib) MiB of committed pages (what
they would need unmerged, zero pages not counted) in $(f overcommit frames_mib) MiB of frames;
the cgroup used $(f overcommit cgroup_mib_at_end) MiB at the end, so unmerged they would have needed
$(($(f overcommit unmerged_mib) + $(f overcommit cgroup_mib_at_end) - \
$(f overcommit frames_mib))) MiB. All alive: $(f overcommit alive)
(memory.events max: $(f overcommit oom_events)).
EOF
fi
if grep -q '^COWBUF-LANE-FAIL' "$log"; then
	echo
	echo "Failures: $(grep '^COWBUF-LANE-FAIL' "$log" | tr '\n' ' ')"
fi
