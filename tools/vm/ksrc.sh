#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract, once per linux-source version, the few files of the kernel tree
# cowbuf builds with (kselftest harness and runner, checkpatch, kernel-doc
# and its Sphinx extension, the kernel's own vm selftests, KSM's among them)
# into the cache, and print that directory. Nothing of the kernel tree is
# ever committed to cowbuf.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

members=(
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
	scripts/kernel-doc
	Documentation/sphinx/kerneldoc.py
	Documentation/sphinx/kernellog.py
	tools/testing/selftests/lib.mk
	tools/testing/selftests/kselftest.h
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/run_kselftest.sh
	tools/testing/selftests/kselftest/runner.sh
	tools/testing/selftests/kselftest/prefix.pl
	tools/testing/selftests/vm
	include/vdso/time64.h
)

dir=$COWBUF_CACHE/ksrc/$(linux_source_version)-$(echo "${members[*]}" | sha256sum | cut -c1-8)
if [ ! -e "$dir/.done" ]; then
	rm -rf "$dir"
	extract_from_source "$dir" "${members[@]}" ||
		die "cannot extract kernel files from $LINUX_SOURCE_TARBALL"
	touch "$dir/.done"
fi
echo "$dir"
