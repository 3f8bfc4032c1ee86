# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for cowbuf's VM lanes; sourced, never run.

COWBUF_CACHE=${COWBUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cowbuf}
LINUX_SOURCE_TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}

die() {
	echo "cowbuf: $*" >&2
	exit 1
}

# The newest installed Debian headers directory, e.g.
# /usr/src/linux-headers-6.1.0-56-amd64. The ABI number changes with
# security updates, so it is discovered, never written down.
stock_headers_dir() {
	local d
	d=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] || die "no linux-headers-*-amd64 installed (run: make deps)"
	echo "$d"
}

# The kernel release the stock headers are for, e.g. 6.1.0-56-amd64.
stock_release() {
	basename "$(stock_headers_dir)" | sed 's/^linux-headers-//'
}

# Version of the installed linux-source-6.1 package, used as a cache key.
linux_source_version() {
	dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null ||
		die "linux-source-6.1 is not installed (run: make deps)"
}

# Extract members of the linux-source tarball into directory $1, with the
# leading linux-source-6.1/ component stripped.
extract_from_source() {
	local dest=$1
	shift
	mkdir -p "$dest"
	tar -xJf "$LINUX_SOURCE_TARBALL" -C "$dest" --strip-components=1 \
		"${@/#/linux-source-6.1/}"
}
