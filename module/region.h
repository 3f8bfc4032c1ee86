/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowbuf: what the files of a region share among themselves, and no other
 * file uses: region.c (slots, charging, mmap, the ioctls, take and place)
 * and region_fault.c (the fault path).
 */
#ifndef _COWBUF_REGION_H
#define _COWBUF_REGION_H

#include <linux/mm_types.h>
#include <linux/types.h>

struct cowbuf_region;

/*
 * How often SEND, and a write to a pinned frame without memory for a copy,
 * look at a frame with extra references before giving up: twice as long
 * each time, 0.1 ms first, about 100 ms in all.
 */
#define COWBUF_PIN_RETRIES	10

/* region.c */
int cowbuf_region_charge(struct cowbuf_region *region, unsigned long nr);

/* region_fault.c */
extern const struct vm_operations_struct cowbuf_region_vm_ops;
extern const struct vm_operations_struct cowbuf_huge_vm_ops;
void cowbuf_region_zero_barrier(struct cowbuf_region *region);
struct page *cowbuf_region_copy_slot(struct cowbuf_region *region, pgoff_t index,
				     struct page *page, bool broken);

#endif /* _COWBUF_REGION_H */
