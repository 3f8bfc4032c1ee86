// SPDX-License-Identifier: GPL-2.0
/*
 * handoff: the worked example of Documentation/userspace-api.rst.
 *
 * A parent fills 1 MiB of cowbuf memory and hands it to its child without
 * copying (MOVE); the child changes it and shares it back (SHARE), and the
 * parent checks what came back.
 *
 * Build it with -lcowbuf after make install.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcowbuf.h>

#define SIZE 0x100000	/* 1 MiB */

static void *region(int dev)
{
	void *p = NULL;
	int fd = cowbuf_region_create(dev, SIZE, COWBUF_FD_CLOEXEC);

	if (fd < 0 || cowbuf_map(fd, SIZE, 0, PROT_READ | PROT_WRITE, &p))
		return NULL;
	close(fd);		/* the mapping keeps the region alive */
	return p;
}

int main(void)
{
	int dev, to_child, to_parent, status, ret;
	char *buf;
	pid_t pid;

	dev = cowbuf_open();
	if (dev < 0) {
		fprintf(stderr, "open /dev/cowbuf: %s\n", strerror(-dev));
		return 1;
	}
	/* Channels are capabilities: the child inherits them. */
	to_child = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	to_parent = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	if (to_child < 0 || to_parent < 0)
		return 1;

	pid = fork();
	if (pid == 0) {
		char *mine = region(dev);

		if (!mine || cowbuf_recv(to_child, mine, SIZE, NULL, NULL))
			_exit(1);
		mine[0] = 'C';	/* the child's own pages now */
		_exit(cowbuf_send(to_parent, mine, SIZE, COWBUF_MODE_SHARE) ? 1 : 0);
	}

	buf = region(dev);
	if (!buf)
		return 1;
	memset(buf, 'P', SIZE);
	ret = cowbuf_send(to_child, buf, SIZE, COWBUF_MODE_MOVE);
	if (ret) {
		fprintf(stderr, "send: %s\n", strerror(-ret));
		return 1;
	}
	/* MOVE took the pages: this range reads as zero now. */
	printf("after MOVE: buf[0] = %d\n", buf[0]);

	ret = cowbuf_recv(to_parent, buf, SIZE, NULL, NULL);
	if (ret || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "the child failed\n");
		return 1;
	}
	printf("came back: buf[0] = '%c', buf[1] = '%c'\n", buf[0], buf[1]);
	return !(buf[0] == 'C' && buf[1] == 'P');
}
