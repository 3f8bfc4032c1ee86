#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide the kernels of cowbuf's two VM lanes, cached outside the checkout.
#
#   kernel.sh stock   print "<vmlinuz> <KDIR>" for Debian's stock kernel
#   kernel.sh guest-modules
#                     print a directory holding the stock kernel's virtio
#                     modules that the nested guests of `make vms` load
#                     (virtio_pci, virtio_balloon and what they need)
#   kernel.sh debug   build (once) and print "<bzImage> <KDIR>" for the debug
#                     kernel: tinyconfig + tools/vm/debug.config, built from
#                     Debian's linux-source-6.1, keyed by the source version
#                     and the fragment's hash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

stock() {
	local rel vmlinuz dir deb
	rel=$(stock_release)
	vmlinuz=/boot/vmlinuz-$rel
	if [ ! -r "$vmlinuz" ]; then
		# The image is not installed on the host (it need not be): fetch
		# the package and unpack only the kernel image into the cache.
		dir=$COWBUF_CACHE/stock/$rel
		vmlinuz=$dir/vmlinuz
		if [ ! -r "$vmlinuz" ]; then
			mkdir -p "$dir/pkg"
			(cd "$dir/pkg" && apt-get download -q "linux-image-$rel" >&2) ||
				die "cannot download linux-image-$rel"
			deb=$(ls "$dir"/pkg/linux-image-"$rel"_*.deb | head -n 1)
			dpkg-deb -x "$deb" "$dir/root"
			cp "$dir/root/boot/vmlinuz-$rel" "$vmlinuz.tmp"
			mv "$vmlinuz.tmp" "$vmlinuz"
			rm -rf "$dir/pkg" "$dir/root"
		fi
	fi
	echo "$vmlinuz $(stock_headers_dir)"
}

debug() {
	local key dir src log opt jobs
	key=$(linux_source_version)-$(sha256sum "$here/debug.config" | cut -c1-12)
	dir=$COWBUF_CACHE/debug/$key
	src=$dir/linux
	if [ ! -e "$dir/built" ]; then
		rm -rf "$dir"
		mkdir -p "$src"
		log=$dir/build.log
		echo "cowbuf: building the debug kernel in $dir (about 6 minutes)" >&2
		tar -xJf "$LINUX_SOURCE_TARBALL" -C "$src" --strip-components=1
		jobs=$(($(nproc) + 1))
		{
			make -C "$src" tinyconfig
			"$src/scripts/kconfig/merge_config.sh" -m -O "$src" \
				"$src/.config" "$here/debug.config"
			make -C "$src" olddefconfig
		} >"$log" 2>&1 || die "debug kernel config failed, see $log"
		# merge_config only warns when an option cannot be set: be strict.
		while read -r opt; do
			case "$opt" in
			CONFIG_*=*)
				grep -qx "$opt" "$src/.config" ||
					die "debug.config: $opt did not survive olddefconfig"
				;;
			"# CONFIG_"*" is not set")
				opt=${opt#\# }
				opt=${opt% is not set}
				! grep -q "^$opt=" "$src/.config" ||
					die "debug.config: $opt is set after olddefconfig"
				;;
			esac
		done <"$here/debug.config"
		make -C "$src" -j"$jobs" bzImage modules >>"$log" 2>&1 ||
			die "debug kernel build failed, see $log"
		touch "$dir/built"
	fi
	echo "$src/arch/x86/boot/bzImage $src"
}

# The modules of Debian's image the nested guests load, in load order.
guest_module_names="virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci"
guest_module_names+=" virtio_balloon"

guest_modules() {
	local rel dir deb m
	rel=$(stock_release)
	dir=$COWBUF_CACHE/stock/$rel/guest-modules
	if [ ! -e "$dir/done" ]; then
		rm -rf "$dir"
		mkdir -p "$dir/pkg"
		(cd "$dir/pkg" && apt-get download -q "linux-image-$rel" >&2) ||
			die "cannot download linux-image-$rel"
		deb=$(ls "$dir"/pkg/linux-image-"$rel"_*.deb | head -n 1)
		dpkg-deb -x "$deb" "$dir/root"
		for m in $guest_module_names; do
			cp "$dir/root/lib/modules/$rel/kernel/drivers/virtio/$m.ko" "$dir/" ||
				die "$m.ko is not in linux-image-$rel"
		done
		echo "$guest_module_names" >"$dir/order"
		rm -rf "$dir/pkg" "$dir/root"
		touch "$dir/done"
	fi
	echo "$dir"
}

case "${1:-}" in
stock) stock ;;
guest-modules) guest_modules ;;
debug) debug ;;
*) die "usage: kernel.sh stock|debug|guest-modules" ;;
esac
