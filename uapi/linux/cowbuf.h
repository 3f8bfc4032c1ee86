/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cowbuf: zero-copy page remapping and same-page merging of module-owned
 * anonymous memory, driven through /dev/cowbuf.
 *
 * Three kinds of file descriptor take part:
 *
 * - /dev/cowbuf itself, which creates regions and channels;
 * - a region (COWBUF_IOC_REGION_CREATE): anonymous memory of a fixed size,
 *   reserved at creation and committed page by page, mapped with
 *   mmap(MAP_SHARED);
 * - a channel (COWBUF_IOC_CHANNEL_CREATE): a queue of messages, each the
 *   pages of a range of some region, handed over by COWBUF_IOC_SEND and
 *   placed into a region by COWBUF_IOC_RECV. Whoever holds the channel's file
 *   descriptor may send and receive; there are no global names.
 *
 * Conventions (Documentation/process/botching-up-ioctls.rst): every field is
 * a fixed-size type, addresses and sizes are __u64, structures are padded
 * explicitly to a multiple of 8 bytes, every flag bit and pad field not
 * defined here must be zero or the call fails with EINVAL, and commands the
 * module does not know fail with ENOTTY. A call that fails changes nothing.
 * Addresses and lengths are multiples of the page size; on a huge region
 * (COWBUF_REGION_HUGE) of the huge frame size. A message sent from a huge
 * region is received into a huge region only, a message from a page-granular
 * region into a page-granular one (EINVAL otherwise; the message stays
 * queued).
 */
#ifndef _UAPI_LINUX_COWBUF_H
#define _UAPI_LINUX_COWBUF_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * ioctl magic 0xB2, sequence numbers 0x00-0x1f. Unassigned in
 * Documentation/userspace-api/ioctl/ioctl-number.rst of Linux 6.1.
 */
#define COWBUF_IOCTL_MAGIC	0xB2

/*
 * The interface version this header describes. 2 added huge regions
 * (COWBUF_REGION_HUGE) and the frame sizes reported in the former pad
 * fields of struct cowbuf_version and struct cowbuf_region_info. 3 made
 * region files regular files: fstat() size, fallocate() to commit and
 * decommit, ftruncate() and lseek(), open() again through /proc/<pid>/fd/<n>.
 * 4 added COWBUF_RECV_DISCARD, and SEND's EOVERFLOW.
 */
#define COWBUF_API_VERSION	4

/**
 * struct cowbuf_version - COWBUF_IOC_VERSION argument (any cowbuf fd)
 * @api_version: (out) COWBUF_API_VERSION of the running module
 * @page_size: (out) the page size, the granularity of every offset and length
 * @flags: (in) must be zero
 * @huge_frame_size: (in) must be zero; (out) the frame size of huge regions
 *	(2 MiB on x86-64), or zero if the kernel cannot map them by PMD and
 *	COWBUF_REGION_HUGE is refused. A version 1 module leaves it zero.
 */
struct cowbuf_version {
	__u32 api_version;
	__u32 page_size;
	__u32 flags;
	__u32 huge_frame_size;
};

/* Flags for new file descriptors. */
#define COWBUF_FD_CLOEXEC	0x1U	/* O_CLOEXEC */
#define COWBUF_FD_NONBLOCK	0x2U	/* O_NONBLOCK; channels only */

/* Region creation: the merge scanner may merge all of the region. */
#define COWBUF_REGION_MERGEABLE	0x100U
/*
 * Region creation: the region's frames are huge (huge_frame_size bytes, one
 * page-table entry at the PMD level each). Its size, and the offsets and
 * lengths of every mmap() and call on it, are multiples of huge_frame_size.
 */
#define COWBUF_REGION_HUGE	0x200U

/* The largest region, in bytes. */
#define COWBUF_REGION_MAX_SIZE	0x10000000000ULL	/* 1 TiB */

/**
 * struct cowbuf_region_create - COWBUF_IOC_REGION_CREATE argument (/dev/cowbuf)
 * @size: (in) size in bytes, a nonzero multiple of the page size (of the
 *	huge frame size with COWBUF_REGION_HUGE), at most
 *	COWBUF_REGION_MAX_SIZE. Only reserved: no page is allocated.
 * @flags: (in) COWBUF_FD_CLOEXEC, COWBUF_REGION_MERGEABLE,
 *	COWBUF_REGION_HUGE, or zero
 * @fd: (out) the new region's file descriptor
 */
struct cowbuf_region_create {
	__u64 size;
	__u32 flags;
	__s32 fd;
};

/**
 * struct cowbuf_channel_create - COWBUF_IOC_CHANNEL_CREATE argument (/dev/cowbuf)
 * @flags: (in) COWBUF_FD_CLOEXEC, COWBUF_FD_NONBLOCK or zero
 * @fd: (out) the new channel's file descriptor
 */
struct cowbuf_channel_create {
	__u32 flags;
	__s32 fd;
};

/**
 * struct cowbuf_region_info - COWBUF_IOC_REGION_INFO argument (region fd)
 * @size: (out) the region's size in bytes
 * @committed_pages: (out) pages of the region that hold memory (a huge
 *	frame counts all of its pages)
 * @flags: (in) must be zero
 * @frame_size: (in) must be zero; (out) the size of the region's frames: the
 *	page size, or the huge frame size for a COWBUF_REGION_HUGE region
 */
struct cowbuf_region_info {
	__u64 size;
	__u64 committed_pages;
	__u32 flags;
	__u32 frame_size;
};

/**
 * struct cowbuf_range - COWBUF_IOC_COMMIT and COWBUF_IOC_DECOMMIT argument
 * @addr: (in) start of the range in the caller's mapping of this region
 * @length: (in) length of the range in bytes, nonzero
 * @flags: (in) see below
 * @pad: (in) must be zero
 *
 * The range must lie within one mapping of the region the ioctl is issued on.
 * COMMIT allocates every uncommitted page of the range (zero-filled) and maps
 * the whole range into the caller's page tables, as MADV_POPULATE_WRITE
 * would; DECOMMIT frees the range's pages, which then read as zero again.
 * For COMMIT and DECOMMIT @flags must be zero; COWBUF_IOC_MERGE takes
 * COWBUF_MERGE_ENABLE or COWBUF_MERGE_DISABLE.
 */
struct cowbuf_range {
	__u64 addr;
	__u64 length;
	__u32 flags;
	__u32 pad;
};

/* COWBUF_IOC_MERGE flags (struct cowbuf_range.flags): exactly one. */
#define COWBUF_MERGE_ENABLE	0x1U	/* like MADV_MERGEABLE */
#define COWBUF_MERGE_DISABLE	0x2U	/* like MADV_UNMERGEABLE: unmerges */

/**
 * struct cowbuf_merge_info - COWBUF_IOC_MERGE_INFO argument (region fd)
 * @mergeable_pages: (out) pages of the region the scanner may merge
 * @shared_pages: (out) committed pages whose frame is shared (merged, or
 *	shared by COWBUF_MODE_SHARE)
 * @zero_pages: (out) all-zero pages the scanner released (they read as zero)
 * @cow_breaks: (out) copy-on-write breaks in this region
 * @flags: (in) must be zero
 * @pad: (in) must be zero
 */
struct cowbuf_merge_info {
	__u64 mergeable_pages;
	__u64 shared_pages;
	__u64 zero_pages;
	__u64 cow_breaks;
	__u32 flags;
	__u32 pad;
};

/* Transfer modes; zero is never valid. */
#define COWBUF_MODE_MOVE	1	/* the sender's range reads as zero after */
#define COWBUF_MODE_SHARE	2	/* copy-on-write: both keep the same bytes */

/**
 * struct cowbuf_send - COWBUF_IOC_SEND argument (channel fd)
 * @addr: (in) start of the range in the caller's mapping of a region
 * @length: (in) length in bytes, nonzero, within one mapping
 * @mode: (in) COWBUF_MODE_MOVE or COWBUF_MODE_SHARE
 * @flags: (in) must be zero
 *
 * Queues the range's pages on the channel as one message. Blocks while the
 * channel is full, or fails with EAGAIN if it was opened non-blocking.
 */
struct cowbuf_send {
	__u64 addr;
	__u64 length;
	__u32 mode;
	__u32 flags;
};

/**
 * struct cowbuf_recv - COWBUF_IOC_RECV argument (channel fd)
 * @addr: (in) where to place the message, in the caller's mapping of a region
 * @length: (in) room at @addr in bytes; (out) the message's length, also
 *	when it did not fit (EMSGSIZE)
 * @mode: (out) the mode the message was sent with
 * @flags: (in) 0, or COWBUF_RECV_DISCARD
 *
 * Takes the oldest message and places its pages at @addr, replacing (and
 * freeing) what the region held there, and maps them into the caller's page
 * tables. Blocks while the channel is empty, or fails with EAGAIN if it was
 * opened non-blocking. With COWBUF_RECV_DISCARD (@addr and @length zero) the
 * oldest message is freed instead, whatever its size or frame size: the way
 * past a message no range of the receiver can take.
 */
struct cowbuf_recv {
	__u64 addr;
	__u64 length;
	__u32 mode;
	__u32 flags;
};

#define COWBUF_RECV_DISCARD	0x1U	/* free the oldest message, unplaced */

/**
 * struct cowbuf_channel_info - COWBUF_IOC_CHANNEL_INFO argument (channel fd)
 * @queued_messages: (out) messages waiting to be received
 * @max_messages: (out) how many messages the channel holds at most
 * @queued_pages: (out) pages held by the queued messages
 * @flags: (in) must be zero
 * @pad: (in) must be zero
 */
struct cowbuf_channel_info {
	__u32 queued_messages;
	__u32 max_messages;
	__u64 queued_pages;
	__u32 flags;
	__u32 pad;
};

#define COWBUF_IOC_VERSION	   _IOWR(COWBUF_IOCTL_MAGIC, 0x00, struct cowbuf_version)
#define COWBUF_IOC_REGION_CREATE   _IOWR(COWBUF_IOCTL_MAGIC, 0x01, struct cowbuf_region_create)
#define COWBUF_IOC_CHANNEL_CREATE  _IOWR(COWBUF_IOCTL_MAGIC, 0x02, struct cowbuf_channel_create)
#define COWBUF_IOC_REGION_INFO	   _IOWR(COWBUF_IOCTL_MAGIC, 0x03, struct cowbuf_region_info)
#define COWBUF_IOC_COMMIT	   _IOW(COWBUF_IOCTL_MAGIC, 0x04, struct cowbuf_range)
#define COWBUF_IOC_DECOMMIT	   _IOW(COWBUF_IOCTL_MAGIC, 0x05, struct cowbuf_range)
#define COWBUF_IOC_SEND		   _IOW(COWBUF_IOCTL_MAGIC, 0x06, struct cowbuf_send)
#define COWBUF_IOC_RECV		   _IOWR(COWBUF_IOCTL_MAGIC, 0x07, struct cowbuf_recv)
#define COWBUF_IOC_CHANNEL_INFO	   _IOWR(COWBUF_IOCTL_MAGIC, 0x08, struct cowbuf_channel_info)
#define COWBUF_IOC_MERGE	   _IOW(COWBUF_IOCTL_MAGIC, 0x09, struct cowbuf_range)
#define COWBUF_IOC_MERGE_INFO	   _IOWR(COWBUF_IOCTL_MAGIC, 0x0a, struct cowbuf_merge_info)

#endif /* _UAPI_LINUX_COWBUF_H */
