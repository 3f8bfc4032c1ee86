#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# cowbuf's static checks, none of which boots a VM:
#   sparse (C=2) and W=1 over the module and the selftests' pin helper
#   module, both silent;
#   checkpatch.pl --strict --no-tree over every source file, silent;
#   kernel-doc -none -v over module/ and uapi/, silent.
# checkpatch and kernel-doc come from Debian's linux-source-6.1 tarball.
# Prints one "lint: NAME ok|FAILED" line per check; exits non-zero on any
# failure. The number of failed checks goes to build/lint/failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/vm/common.sh"

kdir=${KDIR:-$(stock_headers_dir)}
ksrc=$("$here/vm/ksrc.sh") || exit 1
out=$top/build/lint
mkdir -p "$out/src"
failed=0

report() {
	local name=$1 log=$2
	if [ -s "$log" ]; then
		echo "lint: $name FAILED"
		sed 's/^/  /' "$log"
		failed=$((failed + 1))
	else
		echo "lint: $name ok"
	fi
}

# sparse and W=1, from a copy of the sources so every file is checked anew.
rsync -a --delete "$top/Kbuild" "$top/module" "$top/uapi" "$out/src/"
# The selftests' pin helper module is kernel code too.
mkdir -p "$out/pin"
rsync -a --delete "$top/selftests/pin/" "$out/pin/pin/"
cp "$top/selftests/cowbuf_pin.h" "$out/pin/"
if make -s -C "$kdir" M="$out/src" W=1 C=2 modules >"$out/sparse.raw" 2>&1 &&
	make -s -C "$kdir" M="$out/pin/pin" W=1 C=2 modules >>"$out/sparse.raw" 2>&1; then
	grep -E 'warning|error|sparse:' "$out/sparse.raw" >"$out/sparse.log"
else
	cp "$out/sparse.raw" "$out/sparse.log"
fi
report "sparse C=2, W=1" "$out/sparse.log"

# checkpatch over every source file of the project. Userspace code (tests,
# tools) uses the C library's types and volatile accesses on purpose.
mapfile -t sources < <(cd "$top" && git ls-files --cached --others --exclude-standard \
	'*.c' '*.h' '*.sh' 'Kbuild' '*/Kbuild' 'Makefile' '*/Makefile' 'tools/vm/init' |
	sort -u)
kernel=()
trace=()
user=()
for f in "${sources[@]}"; do
	case "$f" in
	module/trace.h) trace+=("$f") ;;
	module/* | uapi/* | Kbuild | selftests/pin/*) kernel+=("$f") ;;
	*) user+=("$f") ;;
	esac
done
checkpatch() {
	(cd "$top" && perl "$ksrc/scripts/checkpatch.pl" --strict --no-tree --quiet \
		--show-types --no-summary "$@")
}
{
	checkpatch -f "${kernel[@]}"
	# TRACE_EVENT() layout is what every kernel trace header looks like.
	checkpatch --ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT -f "${trace[@]}"
	checkpatch --ignore PREFER_KERNEL_TYPES,VOLATILE -f "${user[@]}"
} >"$out/checkpatch.log" 2>&1
report "checkpatch --strict (${#sources[@]} files)" "$out/checkpatch.log"

# kernel-doc over what the module and its uapi document.
(cd "$top" && shopt -s nullglob && perl "$ksrc/scripts/kernel-doc" -none -v \
	module/*.c module/*.h uapi/linux/*.h) 2>&1 | grep -v ': info: ' >"$out/kernel-doc.log"
report "kernel-doc -v" "$out/kernel-doc.log"

echo "$failed" >"$out/failed"
[ $failed -eq 0 ]
