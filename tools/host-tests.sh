#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests that run on the build host, never loading anything into its kernel:
# the DKMS build against the installed headers (in private DKMS trees),
# make install into a DESTDIR and a program built against what it
# installed, the man pages, the reStructuredText documentation, and one
# version number everywhere. TAP on stdout; the counts go to build/host/totals.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/vm/common.sh"

out=$top/build/host
rm -rf "$out"
mkdir -p "$out"
num=0
passed=0
failed=0

check() {
	local desc=$1 log=$out/test-$((num + 1)).log
	shift
	num=$((num + 1))
	if "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "ok $num $desc"
	else
		failed=$((failed + 1))
		echo "not ok $num $desc"
		sed 's/^/# /' "$log" | tail -n 30
	fi
}

version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
release=$(stock_release)

dkms_build() {
	local src=$out/dkms-src/cowbuf-$version tree=$out/dkms-tree
	mkdir -p "$src" "$tree"
	cp -r "$top/Kbuild" "$top/dkms.conf" "$top/module" "$top/uapi" "$src/"
	dkms build -m cowbuf -v "$version" -k "$release" \
		--dkmstree "$tree" --sourcetree "$out/dkms-src" \
		--kernelsourcedir "$(stock_headers_dir)" &&
		find "$tree" -name cowbuf.ko | grep -q .
}

install_destdir() {
	local d=$out/destdir
	make -s -C "$top" install DESTDIR="$d" PREFIX=/usr &&
		for f in bin/cowbufctl lib/libcowbuf.a include/libcowbuf.h \
			include/linux/cowbuf.h share/man/man1/cowbufctl.1 \
			share/man/man3/libcowbuf.3; do
			test -e "$d/usr/$f" || { echo "missing $f"; return 1; }
		done &&
		make -s -C "$top" uninstall DESTDIR="$d" PREFIX=/usr &&
		! find "$d" -type f | grep -q .
}

build_against_install() {
	local d=$out/destdir2
	make -s -C "$top" install DESTDIR="$d" PREFIX=/usr || return 1
	cat >"$out/user.c" <<'EOF'
#include <libcowbuf.h>
int main(void)
{
	struct cowbuf_version v;
	int fd = cowbuf_open();

	return fd < 0 ? 0 : cowbuf_version(fd, &v) ? 1 : 0;
}
EOF
	gcc -Wall -Werror -I"$d/usr/include" -o "$out/user" "$out/user.c" \
		-L"$d/usr/lib" -lcowbuf &&
		gcc -Wall -Werror -I"$d/usr/include" -o "$out/handoff" \
			"$top/tools/examples/handoff.c" -L"$d/usr/lib" -lcowbuf &&
		"$d/usr/bin/cowbufctl" --help | grep -q merge-demo
}

man_pages() {
	local m
	for m in "$top"/tools/man/*.[1-9]; do
		groff -ww -z -man "$m" 2>&1 | tee "$out/groff.log" >&2
		[ ! -s "$out/groff.log" ] || return 1
		man -l "$m" 2>/dev/null | grep -q NAME || return 1
	done
}

# Debian's sphinx, whatever python3 comes first in PATH.
documentation() {
	/usr/bin/sphinx-build -W -q -b html "$top/Documentation" "$out/docs"
}

modules_install() {
	make -s -C "$top" modules_install INSTALL_MOD_PATH="$out/modroot" &&
		find "$out/modroot/lib/modules/$release/updates" -name cowbuf.ko | grep -q .
}

versions_agree() {
	grep -q "\"cowbuf $version\"" "$top/tools/man/cowbufctl.1" &&
		grep -q "\"cowbuf $version\"" "$top/tools/man/libcowbuf.3"
}

echo "TAP version 13"
echo "1..7"
check "dkms builds cowbuf $version for $release" dkms_build
check "make install and uninstall honour DESTDIR and PREFIX" install_destdir
check "programs (and tools/examples) build against the installed library" \
	build_against_install
check "make modules_install honours INSTALL_MOD_PATH" modules_install
check "man pages render without warnings" man_pages
check "Documentation builds with sphinx -W" documentation
check "dkms.conf and the man pages carry one version" versions_agree
echo "host: $passed passed, $failed failed"
echo "$passed $failed" >"$out/totals"
[ $failed -eq 0 ]
