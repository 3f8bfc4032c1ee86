/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cowbuf: zero-copy page remapping and same-page merging of module-owned
 * anonymous memory, driven through /dev/cowbuf.
 *
 * Conventions (Documentation/process/botching-up-ioctls.rst): every field is
 * a fixed-size type, pointers and sizes are __u64, structures are padded
 * explicitly to a multiple of 8 bytes, every reserved field and flag bit must
 * be zero on input or the call fails with EINVAL, and unknown commands fail
 * with ENOTTY.
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

/* The interface version this header describes. */
#define COWBUF_API_VERSION	1

/**
 * struct cowbuf_version - COWBUF_IOC_VERSION argument
 * @api_version: (out) COWBUF_API_VERSION of the running module
 * @page_size: (out) the page size, the granularity of every offset and length
 * @flags: (in) must be zero
 * @pad: (in) must be zero
 */
struct cowbuf_version {
	__u32 api_version;
	__u32 page_size;
	__u32 flags;
	__u32 pad;
};

#define COWBUF_IOC_VERSION	_IOWR(COWBUF_IOCTL_MAGIC, 0x00, struct cowbuf_version)

#endif /* _UAPI_LINUX_COWBUF_H */
