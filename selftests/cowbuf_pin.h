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

/**
 * struct cowbuf_pin_merge_stop - CBPIN_IOC_MERGE_WAIT argument
 * @timeout_ms: (in) how long to wait for the scanner to stop, at most 60000
 * @pad: (in) zero
 * @pgoff: (out) the page offset of the slot just merged
 * @how: (out) CBPIN_MERGE_ZERO (the slot was emptied), CBPIN_MERGE_UNSTABLE
 *	(merged with another candidate) or CBPIN_MERGE_STABLE (into a stable
 *	frame)
 */
struct cowbuf_pin_merge_stop {
	__u32 timeout_ms;
	__u32 pad;
	__u64 pgoff;
	__u32 how;
	__u32 pad2;
};

#define CBPIN_MERGE_ZERO	0
#define CBPIN_MERGE_UNSTABLE	1
#define CBPIN_MERGE_STABLE	2

/*
 * The merge stopper, for tests that act inside a scan chunk (one file at a
 * time, root only as the node is): after CBPIN_IOC_MERGE_STOP, cowbuf's
 * scanner stops right after each merge it makes; CBPIN_IOC_MERGE_WAIT waits
 * for that, CBPIN_IOC_MERGE_GO lets it go on to its next one, and
 * CBPIN_IOC_MERGE_END (or close) disarms. While the scanner is stopped it
 * holds its mutex: nothing that waits for it (COWBUF_IOC_MERGE_INFO, the
 * scanner's knobs) may be called. It goes on by itself after 10 s, and the
 * next call says -ETIMEDOUT.
 */

#define CBPIN_IOC_PIN	_IOW('P', 0x01, struct cowbuf_pin_range)
#define CBPIN_IOC_UNPIN	_IO('P', 0x02)
#define CBPIN_IOC_READ	_IOW('P', 0x03, struct cowbuf_pin_io)
#define CBPIN_IOC_WRITE	_IOW('P', 0x04, struct cowbuf_pin_io)
#define CBPIN_IOC_LOCK	_IOW('P', 0x05, __u64)
#define CBPIN_IOC_UNLOCK	_IO('P', 0x06)
#define CBPIN_IOC_MERGE_STOP	_IO('P', 0x07)
#define CBPIN_IOC_MERGE_WAIT	_IOWR('P', 0x08, struct cowbuf_pin_merge_stop)
#define CBPIN_IOC_MERGE_GO	_IO('P', 0x09)
#define CBPIN_IOC_MERGE_END	_IO('P', 0x0a)

#endif /* _COWBUF_PIN_H */
