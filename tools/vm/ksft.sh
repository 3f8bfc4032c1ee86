#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build cowbuf's kselftests the way a kernel tree builds them and install
# them, with the kselftest runner, into a directory for the VM's initramfs.
#
#   ksft.sh BUILD_DIR INSTALL_DIR
#
# BUILD_DIR gets a miniature kernel tree: the harness and runner files taken
# from Debian's linux-source package, selftests/ as tools/testing/selftests/
# cowbuf/ and the uapi header as usr/include/linux/cowbuf.h. The programs are
# linked statically: the initramfs has no C library.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/common.sh"

build=$(realpath -m "$1")
inst=$(realpath -m "$2")
ksrc=$("$here/ksrc.sh")
st=$build/tools/testing/selftests

mkdir -p "$st/kselftest" "$build/usr/include/linux"
for f in lib.mk kselftest.h kselftest_harness.h run_kselftest.sh \
	kselftest/runner.sh kselftest/prefix.pl; do
	cp "$ksrc/tools/testing/selftests/$f" "$st/$f"
done
cp "$top/uapi/linux/cowbuf.h" "$build/usr/include/linux/"
rm -rf "$st/cowbuf"
cp -r "$top/selftests" "$st/cowbuf"
cp "$top/tools/lib/libcowbuf.c" "$top/tools/lib/libcowbuf.h" "$top/tools/lib/tool-util.h" \
	"$st/cowbuf/"

make -s -C "$st/cowbuf" LDFLAGS=-static
rm -rf "$inst"
mkdir -p "$inst/cowbuf" "$inst/kselftest"
make -s -C "$st/cowbuf" INSTALL_PATH="$inst/cowbuf" install
cp "$st/run_kselftest.sh" "$inst/"
cp "$st/kselftest/runner.sh" "$st/kselftest/prefix.pl" "$inst/kselftest/"
make -s --no-print-directory -C "$st/cowbuf" COLLECTION=cowbuf emit_tests \
	>"$inst/kselftest-list.txt"
