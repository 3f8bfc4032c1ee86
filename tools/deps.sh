#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages cowbuf builds and tests with, if any is missing.
# Idempotent and non-interactive; needs root only when something is missing.
set -euo pipefail

pkgs=(
	gcc make libc6-dev perl python3 rsync cpio gzip xz-utils
	linux-headers-amd64 linux-source-6.1
	bc flex bison libelf-dev libssl-dev dwarves
	sparse qemu-system-x86 busybox-static gnuplot-nox libnuma-dev stress-ng linux-perf
	dkms python3-sphinx groff-base man-db
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "cowbuf: installing ${missing[*]}" >&2
[ "$(id -u)" = 0 ] || { echo "cowbuf: run as root to install: ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
