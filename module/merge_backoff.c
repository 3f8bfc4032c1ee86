// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the merge scanner's back-off, its volatility filter.
 *
 * DOC: Back-off
 *
 * KSM keeps a page out of its unstable tree until its checksum is the same
 * two passes in a row, which costs every page a second pass before it can
 * merge. cowbuf merges a write-protected page on first sight (see "One pass"
 * in merge.c) and learns which pages are volatile from the copy-on-write
 * breaks instead: .page_mkwrite marks a slot whose merge a write broke
 * COWBUF_SLOT_BROKEN, and the scanner asks cowbuf_merge_backoff() whether
 * such a slot may merge again. Slots that never broke cost one xa_load() of
 * an empty entry. The state of those that did is a value entry of
 * cowbuf_region.merge_backoff, created and changed by the scanner only.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bits.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/xarray.h>

#include "cowbuf.h"
#include "merge.h"

/*
 * Back-off of a 4 KiB slot, in cowbuf_region.merge_backoff: xa_mk_value() of
 * until << COWBUF_BACKOFF_SHIFT | probation flag | level; absent for a slot
 * that never broke, or whose back-off wore off.
 */
#define COWBUF_BACKOFF_LEVEL	GENMASK(7, 0)
#define COWBUF_BACKOFF_PROBATION	BIT(8)
#define COWBUF_BACKOFF_SHIFT	9

/* Passes a slot at back-off @level waits before it may merge again. */
static unsigned long backoff_passes(unsigned long level)
{
	return min(1UL << min(level - 1, 31UL),
		   (unsigned long)READ_ONCE(cowbuf_merge_knobs.max_backoff));
}

/*
 * Passes a slot must then stay unbroken for its level to drop by one: four
 * times its wait, so that a page rewritten every few passes climbs to longer
 * waits instead of dropping back between its writes.
 */
#define COWBUF_BACKOFF_PROBATION_FACTOR	4

/**
 * cowbuf_merge_backoff() - whether back-off keeps a slot out of merging now
 * @region: the region
 * @pgoff: the slot, of a 4 KiB region, being scanned
 * @broken: a write broke the slot's merge since the scanner last looked
 * @written: the slot was written since the scanner last looked (or was
 *	never hashed)
 *
 * A write that broke the slot's merge (@broken) raises its level by one;
 * the slot then waits backoff_passes(level) full passes, max_backoff at
 * most, and after that until it has settled: found unwritten for a whole
 * pass. Then it may merge again, on probation for four times as many
 * passes; a probation that ends without a break lowers the level by one
 * (and starts the next), and at level 0 the back-off is gone. A slot
 * written over and over is so kept out for good; one rewritten every few
 * passes waits longer each time, up to max_backoff.
 *
 * Context: cowbuf_merge_mutex held (the scanner).
 * Return: true if the slot may not merge this pass.
 */
bool cowbuf_merge_backoff(struct cowbuf_region *region, pgoff_t pgoff, bool broken,
			  bool written)
{
	unsigned long now = atomic_long_read(&cowbuf_merge_stats.full_scans);
	unsigned long level = 0, until = 0, val = 0;
	bool keep_out;
	void *entry;

	/* Most regions hold no slot back: no lookup then. */
	if (!broken && xa_empty(&region->merge_backoff))
		return false;
	entry = xa_load(&region->merge_backoff, pgoff);
	if (!entry && !broken)
		return false;
	if (!READ_ONCE(cowbuf_merge_knobs.max_backoff)) {
		if (entry)
			xa_erase(&region->merge_backoff, pgoff);
		return false;
	}
	if (entry) {
		val = xa_to_value(entry);
		level = val & COWBUF_BACKOFF_LEVEL;
		until = val >> COWBUF_BACKOFF_SHIFT;
	}
	if (broken) {
		level = min(level + 1, COWBUF_BACKOFF_LEVEL);
		until = now + backoff_passes(level);
		val = 0;
		keep_out = true;
	} else if (!(val & COWBUF_BACKOFF_PROBATION)) {
		/* Waiting: out until its time is up and it has settled. */
		if (now < until || written)
			return true;
		until = now + COWBUF_BACKOFF_PROBATION_FACTOR * backoff_passes(level);
		val = COWBUF_BACKOFF_PROBATION;
		keep_out = false;
	} else {
		/* On probation: it may merge; a quiet probation lowers the level. */
		if (now < until)
			return false;
		if (!--level) {
			xa_erase(&region->merge_backoff, pgoff);
			return false;
		}
		until = now + COWBUF_BACKOFF_PROBATION_FACTOR * backoff_passes(level);
		val = COWBUF_BACKOFF_PROBATION;
		keep_out = false;
	}
	val |= until << COWBUF_BACKOFF_SHIFT | level;
	/* Without memory for the entry, the slot simply is not held back. */
	if (xa_err(xa_store(&region->merge_backoff, pgoff, xa_mk_value(val),
			    GFP_KERNEL_ACCOUNT)))
		return false;
	return keep_out;
}
