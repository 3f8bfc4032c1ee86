// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf_hold: keep cowbuf in use the way a careless program does, for
 * cowbuf_module.sh and the gauntlet's lifecycle checks.
 *
 *   cowbuf_hold PAGES READY_FILE
 *
 * Maps a region of PAGES pages, writes them, queues a SHARE of them on a
 * channel, then closes the device and region descriptors: only the mapping
 * and the channel descriptor keep the module busy. Creates READY_FILE and
 * waits to be killed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libcowbuf.h"

int main(int argc, char **argv)
{
	int dev, region, channel, fd;
	size_t size;
	char *map;

	if (argc != 3 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: cowbuf_hold PAGES READY_FILE\n");
		return 2;
	}
	size = (size_t)atol(argv[1]) * sysconf(_SC_PAGESIZE);
	dev = cowbuf_open();
	if (dev < 0)
		return 1;
	region = cowbuf_region_create(dev, size, COWBUF_REGION_MERGEABLE);
	channel = cowbuf_channel_create(dev, 0);
	if (region < 0 || channel < 0 ||
	    cowbuf_map(region, size, 0, PROT_READ | PROT_WRITE, (void **)&map))
		return 1;
	memset(map, 0x3c, size);
	if (cowbuf_send(channel, map, size, COWBUF_MODE_SHARE))
		return 1;
	close(region);
	close(dev);
	fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	for (;;)
		pause();
}
