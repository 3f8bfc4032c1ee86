#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make demo, inside the stock VM: cowbuf loaded, looked at and unloaded.

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

step "cowbufctl version"
cowbufctl version 2>/dev/null || echo "(cowbufctl not built yet)"

step "modprobe -r cowbuf"
modprobe -r cowbuf || exit 1
[ -e /dev/cowbuf ] && echo "/dev/cowbuf still present" || echo "/dev/cowbuf gone"
