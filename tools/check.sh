#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: install what is missing, build, lint, the host tests (DKMS,
# install, man pages, documentation), then both VM lanes with the
# kselftests. Ends with "N passed, N failed": the host tests and the
# kselftest cases of both lanes, plus one failure for each build, lint check
# or lane that failed outside a test case. Exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cd "$top" || exit 1

passed=0
failed=0
start=$(date +%s)

if ! "$here/deps.sh"; then
	echo "0 passed, 1 failed"
	exit 1
fi

if make -s module >build-module.log 2>&1 && ! grep -q 'warning:' build-module.log; then
	echo "build: module/cowbuf.ko ok"
else
	echo "build: module/cowbuf.ko FAILED"
	cat build-module.log
	failed=$((failed + 1))
fi
rm -f build-module.log

"$here/lint.sh" || failed=$((failed + $(cat build/lint/failed 2>/dev/null || echo 1)))

# Host tests (DKMS, install, man pages, documentation) count like kselftests.
"$here/host-tests.sh"
if [ -r build/host/totals ]; then
	read -r p f <build/host/totals
else
	p=0
	f=1
fi
passed=$((passed + p))
failed=$((failed + f))

for lane in ${COWBUF_LANES:-stock debug}; do
	rm -f "build/$lane/totals"
	"$here/vm/run.sh" "$lane" check
	if [ -r "build/$lane/totals" ]; then
		read -r p f _ <"build/$lane/totals"
	else
		p=0
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done

echo "check: $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
