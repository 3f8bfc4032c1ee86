/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libcowbuf: thin wrappers around the /dev/cowbuf ioctls.
 *
 * Every function returns 0 (or a file descriptor) on success and -errno on
 * failure; none sets errno for the caller to read.
 */
#ifndef LIBCOWBUF_H
#define LIBCOWBUF_H

#include <stddef.h>
#include <stdint.h>

#include <linux/cowbuf.h>

#define COWBUF_DEV_PATH "/dev/cowbuf"

/* Open /dev/cowbuf (close-on-exec). Returns the fd or -errno. */
int cowbuf_open(void);

int cowbuf_version(int fd, struct cowbuf_version *version);

/* Reserve a region of @size bytes. Returns its fd or -errno. */
int cowbuf_region_create(int dev, uint64_t size, uint32_t flags);
int cowbuf_region_info(int region, struct cowbuf_region_info *info);

/* mmap(MAP_SHARED) @size bytes of @region from @offset into *@addr. */
int cowbuf_map(int region, uint64_t size, uint64_t offset, int prot, void **addr);

int cowbuf_commit(int region, void *addr, uint64_t length);
int cowbuf_decommit(int region, void *addr, uint64_t length);

/* COWBUF_IOC_MERGE: @flags COWBUF_MERGE_ENABLE or COWBUF_MERGE_DISABLE. */
int cowbuf_merge(int region, void *addr, uint64_t length, uint32_t flags);
int cowbuf_merge_info(int region, struct cowbuf_merge_info *info);

/* Make a channel. Returns its fd or -errno. */
int cowbuf_channel_create(int dev, uint32_t flags);
int cowbuf_channel_info(int channel, struct cowbuf_channel_info *info);

/* Queue [@addr, @addr + @length) on @channel in @mode (COWBUF_MODE_*). */
int cowbuf_send(int channel, void *addr, uint64_t length, uint32_t mode);

/*
 * Place the next message at @addr, which has @room bytes. *@length gets the
 * message's length (also on -EMSGSIZE), *@mode its mode; either may be NULL.
 */
int cowbuf_recv(int channel, void *addr, uint64_t room, uint64_t *length,
		uint32_t *mode);

/*
 * Free the oldest message of @channel without placing it (a message no range
 * of the caller can take). *@length gets its length, *@mode its mode.
 */
int cowbuf_discard(int channel, uint64_t *length, uint32_t *mode);

/* Pass a file descriptor over a UNIX socket (SCM_RIGHTS), and take it. */
int cowbuf_fd_send(int sock, int fd);
int cowbuf_fd_recv(int sock);

#endif /* LIBCOWBUF_H */
