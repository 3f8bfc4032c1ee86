/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cowbuf_pin: the ioctls of the selftests' helper module (selftests/pin/),
 * which plays a device holding a long-term write pin on user memory, as
 * VFIO type1 and RDMA memory registration do.
 */
#ifndef _COWBUF_PIN_H
#define _COWBUF_PIN_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * struct cowbuf_pin_range - CBPIN_IOC_PIN argument
 * @addr: (in) page-aligned start of the user range to pin
 * @length: (in) its length in bytes, page-aligned, at most 64 MiB
 *
 * Pins the range with pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM),
 * replacing (and unpinning) what the file pinned before.
 */
struct cowbuf_pin_range {
	__u64 addr;
	__u64 length;
};

/**
 * struct cowbuf_pin_io - CBPIN_IOC_READ and CBPIN_IOC_WRITE argument
 * @offset: (in) byte offset into the pinned range
 * @length: (in) bytes to copy
 * @buf: (in) user buffer the bytes come from (WRITE) or go to (READ)
 *
 * The "device" side: the bytes go straight to or from the pinned pages,
 * through the kernel's mapping of them, as a DMA engine would.
 */
struct cowbuf_pin_io {
	__u64 offset;
	__u64 length;
	__u64 buf;
};

/*
 * CBPIN_IOC_LOCK takes a reference to the page mapped at the user address
 * given (__u64, page-aligned; looked up for reading, so nothing is written
 * or committed) and holds the page lock of its frame until CBPIN_IOC_UNLOCK
 * or close: a fault or a slot change waiting for that lock shows whom it
 * waits for. EBUSY if the file holds a lock already.
 */

#define CBPIN_IOC_PIN	_IOW('P', 0x01, struct cowbuf_pin_range)
#define CBPIN_IOC_UNPIN	_IO('P', 0x02)
#define CBPIN_IOC_READ	_IOW('P', 0x03, struct cowbuf_pin_io)
#define CBPIN_IOC_WRITE	_IOW('P', 0x04, struct cowbuf_pin_io)
#define CBPIN_IOC_LOCK	_IOW('P', 0x05, __u64)
#define CBPIN_IOC_UNLOCK	_IO('P', 0x06)

#endif /* _COWBUF_PIN_H */
