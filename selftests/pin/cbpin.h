/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowbuf_pin's parts: the pin device (pin.c) and the merge stopper
 * (merge_stop.c), whose ioctls the device's file hands on.
 */
#ifndef _CBPIN_H
#define _CBPIN_H

#include <linux/compiler_types.h>

struct cowbuf_region;
struct file;
struct tracepoint;

/* cowbuf's, exported for the merge stopper (module/merge.c). */
extern struct tracepoint __tracepoint_cowbuf_merge;

long cbpin_merge_stop(struct file *file);
long cbpin_merge_wait(struct file *file, void __user *uarg);
long cbpin_merge_go(struct file *file);
long cbpin_merge_end(struct file *file);

#endif /* _CBPIN_H */
