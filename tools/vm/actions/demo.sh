#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make demo, inside the stock VM: cowbuf loaded, put to work, unloaded.

step() {
	echo
	echo "### $*"
}

step "modprobe cowbuf"
modprobe cowbuf || exit 1
grep '^cowbuf ' /proc/modules

step "the device node: a misc device anyone may open"
ls -l /dev/cowbuf
echo "misc major:minor $(cat /sys/class/misc/cowbuf/dev)"

step "modinfo cowbuf"
modinfo cowbuf

step "cowbufctl version; cowbufctl info"
cowbufctl version
cowbufctl info

step "cowbufctl create 1G: reserve 1 GiB; nothing is allocated"
cowbufctl create 1G

step "cowbufctl create 8M --commit --fill 7: commit and write 8 MiB"
cowbufctl create 8M --commit --fill 7

step "cowbufctl demo 64M: two processes exchange a 64 MiB buffer both ways"
cowbufctl demo 64M

step "a file through a UNIX socket: cowbufctl recv / cowbufctl send"
head -c 3000000 /dev/urandom >/tmp/payload
cowbufctl recv /tmp/cowbuf.sock -o /tmp/received &
sleep 0.5
cowbufctl send /tmp/cowbuf.sock /tmp/payload
wait
cmp -n 3000000 /tmp/payload /tmp/received && echo "the first 3000000 bytes match"

step "cowbufctl merge-demo 16M: cowbufd merges a region, live"
cowbufctl merge-demo 16M

step "cowbufctl stats"
cowbufctl stats

step "everything freed"
cowbufctl info

step "modprobe -r cowbuf"
modprobe -r cowbuf || exit 1
[ -e /dev/cowbuf ] && echo "/dev/cowbuf still present" || echo "/dev/cowbuf gone"
