#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A real guest on cowbuf memory: an unmodified qemu-system-x86_64 boots a
# guest whose RAM is a mergeable region that `cowbufctl exec` hands it
# (memory-backend-file,mem-path=/proc/self/fd/3), the guest's virtio balloon
# gives memory back through fallocate(PUNCH_HOLE), and killing QEMU leaves
# the module holding nothing. Needs root, QEMU and a guest kernel and
# initramfs speaking tools/vm/guest-init's console protocol in
# $COWBUF_GUEST_DIR (default /cowbuf/guest, where the stock VM lane puts
# them); skips without them. `make vms` is the long version.

ksft_skip=4
dir=${COWBUF_GUEST_DIR:-/cowbuf/guest}
mem=128
num=0
failed=0
tmp=

ok() {
	num=$((num + 1))
	echo "ok $num $1"
}

not_ok() {
	num=$((num + 1))
	failed=$((failed + 1))
	echo "not ok $num $1"
}

cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	kill $(jobs -p) 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
}

if [ "$(id -u)" != 0 ] || ! command -v qemu-system-x86_64 >/dev/null ||
	! command -v cowbufctl >/dev/null || [ ! -r "$dir/vmlinuz" ] ||
	[ ! -r "$dir/initramfs.gz" ]; then
	echo "1..0 # SKIP needs root, qemu-system-x86_64, cowbufctl and a guest in $dir"
	exit $ksft_skip
fi
[ -d /sys/module/cowbuf ] || modprobe cowbuf || { echo "1..0 # SKIP no module"; exit $ksft_skip; }
export QEMU_MODULE_DIR=${QEMU_MODULE_DIR:-/usr/lib/x86_64-linux-gnu/qemu}
echo "1..5"

tmp=$(mktemp -d)
trap cleanup EXIT
mkfifo "$tmp/con.in" "$tmp/con.out" "$tmp/mon.in" "$tmp/mon.out"
cat "$tmp/con.out" >"$tmp/console.log" &
cat "$tmp/mon.out" >"$tmp/monitor.log" &
regions0=$(cat /sys/kernel/mm/cowbuf/regions)
frames0=$(cat /sys/kernel/mm/cowbuf/frames)

cowbufctl exec --merge ${mem}M -- qemu-system-x86_64 -accel tcg,tb-size=32 -smp 1 \
	-m $mem -nodefaults -display none -no-reboot \
	-L /usr/share/qemu -L /usr/share/seabios \
	-kernel "$dir/vmlinuz" -initrd "$dir/initramfs.gz" \
	-append "console=ttyS0 panic=-1 quiet mitigations=off" \
	-object "memory-backend-file,id=ram0,size=${mem}M,mem-path=/proc/self/fd/3,share=on" \
	-machine memory-backend=ram0 \
	-chardev "pipe,id=con,path=$tmp/con" -serial chardev:con \
	-monitor "pipe:$tmp/mon" -device virtio-balloon-pci,id=balloon0 \
	>"$tmp/qemu.log" 2>&1 &
pid=$!
start=$(date +%s)

# wait_for FILE PATTERN SECONDS
wait_for() {
	i=0
	while [ $i -lt "$3" ]; do
		grep -q "$2" "$1" && return 0
		kill -0 $pid 2>/dev/null || return 1
		sleep 1
		i=$((i + 1))
	done
	return 1
}

committed() {
	awk '/^cowbuf-committed-pages:/ { print $2 }' /proc/$pid/fdinfo/3
}

# A nested TCG guest takes minutes to boot; kselftest gives the whole
# program 600 s.
boot_secs=${COWBUF_QEMU_BOOT_SECS:-450}
if wait_for "$tmp/console.log" GUEST-READY "$boot_secs" &&
	! grep -q GUEST-FAIL "$tmp/console.log"; then
	ok "the guest boots with its RAM in a cowbuf region"
	ready=$(grep -o 'GUEST-READY.*' "$tmp/console.log")
	echo "# $ready s of guest uptime, $(($(date +%s) - start)) s here"
else
	not_ok "the guest boots with its RAM in a cowbuf region"
	tail -n 5 "$tmp/console.log" "$tmp/qemu.log" | sed 's/^/# /'
	exit 1
fi

# The region is a regular file of the RAM size, committed as the guest wrote.
size=$(stat -L -c %s /proc/$pid/fd/3)
c0=$(committed)
if [ "$size" = $((mem * 1048576)) ] && [ "$c0" -gt 1024 ]; then
	ok "QEMU's RAM is the region: $size bytes, $c0 pages committed"
else
	not_ok "QEMU's RAM is the region: $size bytes, $c0 pages committed"
fi

# Memory the guest used and freed, then taken by its balloon, goes back.
echo "touch 24" >"$tmp/con.in"
wait_for "$tmp/console.log" "GUEST-TOUCHED 24" 120
echo drop >"$tmp/con.in"
wait_for "$tmp/console.log" GUEST-DROPPED 60
c1=$(committed)
echo "balloon $((mem - 16))" >"$tmp/mon.in"
i=0
while [ $i -lt 60 ]; do
	echo "info balloon" >"$tmp/mon.in"
	sleep 1
	grep -q "actual=$((mem - 16))" "$tmp/monitor.log" && break
	i=$((i + 1))
done
sleep 2
c2=$(committed)
echo "# committed pages: $c1 before the balloon, $c2 after inflating it by 16 MiB"
# At least half of the 4096 pages: some the balloon takes were never committed.
if grep -q "actual=$((mem - 16))" "$tmp/monitor.log" && [ $((c1 - c2)) -ge 2048 ]; then
	ok "an inflated balloon gives the region's memory back"
else
	not_ok "an inflated balloon gives the region's memory back"
fi

echo "balloon $mem" >"$tmp/mon.in"
sleep 2
echo "touch 16" >"$tmp/con.in"
if wait_for "$tmp/console.log" "GUEST-TOUCHED 16" 120; then
	ok "the deflated guest uses its memory again"
else
	not_ok "the deflated guest uses its memory again"
fi

# Killed while running: the region and every frame go with QEMU.
kill -9 $pid
wait $pid 2>/dev/null
pid=
sleep 1
regions=$(cat /sys/kernel/mm/cowbuf/regions)
frames=$(cat /sys/kernel/mm/cowbuf/frames)
if [ "$regions" = "$regions0" ] && [ "$frames" = "$frames0" ]; then
	ok "killing QEMU leaves nothing behind"
else
	not_ok "killing QEMU leaves nothing behind ($regions regions, $frames frames)"
fi
[ $failed = 0 ]
