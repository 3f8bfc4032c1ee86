// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: cowbufd, the kthread that walks the mergeable regions.
 *
 * DOC: The scanner thread
 *
 * cowbufd keeps a cursor (a region, a range of it and a page offset) in the
 * list of regions that have a mergeable range. Each batch scans
 * pages_to_scan committed slots from the cursor, range by range (merge.c
 * decides what to do with each slot), then the thread sleeps
 * sleep_millisecs. Past the last region a full pass ends: merge.c drops what
 * the pass no longer needs, and full_scans, the clock of the back-off,
 * advances. A knob change cuts the sleep short, so new values apply at
 * once; with run=0, or no mergeable region, the thread waits without a
 * timeout.
 *
 * A batch holds cowbuf_merge_mutex, which every region's teardown and every
 * MERGE ioctl wait for, so its work is bounded whatever users make of their
 * regions: every range and every region it steps over counts against
 * pages_to_scan like a scanned slot (empty ranges of a sparse region too),
 * the cursor keeps its range so that a step costs no walk of the region's
 * ranges (at most max_merge_ranges each), and a region whose map_lock is
 * busy (a COMMIT of many slots) is passed over until the next pass rather
 * than waited for.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/freezer.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/wait.h>

#include "cowbuf.h"
#include "merge.h"
#include "trace.h"

/*
 * The mergeable regions, in the order they became mergeable, and the cursor
 * in that list: all under cowbuf_merge_mutex. A region stays on the list
 * while it has a mergeable range, and is taken off before it is freed.
 */
LIST_HEAD(cowbuf_merge_regions);
static struct cowbuf_region *cursor_region;
static pgoff_t cursor_pgoff;
/*
 * The range of cursor_region the cursor is in or before, valid while
 * cowbuf_merge_ranges_seq is cursor_seq (no range of any region changed
 * since); NULL: look from the region's first range.
 */
static struct cowbuf_merge_range *cursor_range;
static unsigned long cursor_seq;
static atomic_t nr_mergeable = ATOMIC_INIT(0);

static struct task_struct *cowbufd;
static DECLARE_WAIT_QUEUE_HEAD(cowbufd_wait);
/* Bumped by every knob change, to cut the scanner's sleep short. */
static atomic_t knob_seq = ATOMIC_INIT(0);

/**
 * cowbufd_add_region() - a region got its first mergeable range
 * @region: the region (cowbuf_merge_mutex held)
 */
void cowbufd_add_region(struct cowbuf_region *region)
{
	lockdep_assert_held(&cowbuf_merge_mutex);
	list_add_tail(&region->merge_node, &cowbuf_merge_regions);
	atomic_inc(&nr_mergeable);
	wake_up_interruptible(&cowbufd_wait);
}

/**
 * cowbufd_remove_region() - a region has no mergeable range any more
 * @region: the region (cowbuf_merge_mutex held)
 *
 * Its candidates' entries leave the table and the cursor moves past it.
 */
void cowbufd_remove_region(struct cowbuf_region *region)
{
	lockdep_assert_held(&cowbuf_merge_mutex);
	cowbuf_merge_forget_candidates(region);
	if (cursor_region == region) {
		cursor_region = list_is_last(&region->merge_node, &cowbuf_merge_regions) ?
				NULL : list_next_entry(region, merge_node);
		cursor_pgoff = 0;
		cursor_range = NULL;
	}
	list_del_init(&region->merge_node);
	atomic_dec(&nr_mergeable);
}

/**
 * cowbufd_kick() - a knob changed: wake the scanner to apply it now
 */
void cowbufd_kick(void)
{
	atomic_inc(&knob_seq);
	wake_up_interruptible(&cowbufd_wait);
}

/*
 * The first range of cursor_region that ends after @pgoff, from the
 * cursor's range on while that is valid (the cursor only moves forward), or
 * NULL.
 */
static struct cowbuf_merge_range *next_range(pgoff_t pgoff)
{
	struct list_head *ranges = &cursor_region->merge_ranges;
	struct cowbuf_merge_range *range = cursor_range;

	if (!range || cursor_seq != cowbuf_merge_ranges_seq || range->start > pgoff)
		range = list_first_entry(ranges, struct cowbuf_merge_range, node);
	list_for_each_entry_from(range, ranges, node) {
		if (pgoff < range->end) {
			cursor_range = range;
			cursor_seq = cowbuf_merge_ranges_seq;
			return range;
		}
	}
	cursor_range = NULL;
	return NULL;
}

/*
 * Move the cursor past cursor_region. Return: true if that was the last
 * region, and so a full pass ended.
 */
static bool cursor_next_region(void)
{
	struct cowbuf_region *region = cursor_region;

	cursor_pgoff = 0;
	cursor_range = NULL;
	if (list_is_last(&region->merge_node, &cowbuf_merge_regions)) {
		cursor_region = NULL;
		cowbuf_merge_end_pass();
		return true;
	}
	cursor_region = list_next_entry(region, merge_node);
	return false;
}

/* Scan up to pages_to_scan committed slots from the cursor. */
static void cowbufd_scan_batch(void)
{
	unsigned long budget = READ_ONCE(cowbuf_merge_knobs.pages_to_scan);
	unsigned long volatile_before, scanned = 0, merged = 0;
	struct cowbuf_merge_range *range;
	long n;

	volatile_before = atomic_long_read(&cowbuf_merge_stats.pages_volatile);
	while (scanned < budget) {
		if (!cursor_region) {
			if (list_empty(&cowbuf_merge_regions))
				break;
			cursor_region = list_first_entry(&cowbuf_merge_regions,
							 struct cowbuf_region, merge_node);
			cursor_pgoff = 0;
			cursor_range = NULL;
		}
		range = next_range(cursor_pgoff);
		n = -EBUSY;
		if (range)
			n = cowbuf_merge_scan(cursor_region, max(cursor_pgoff, range->start),
					      range->end, budget - scanned, &cursor_pgoff,
					      &merged);
		if (n < 0) {
			/*
			 * Done with the region, or its map_lock is busy: it is
			 * looked at again next pass. A step over a region costs
			 * one, like a slot. The batch ends with a pass: the next
			 * pass comes after the sleep.
			 */
			scanned++;
			if (cursor_next_region())
				break;
			continue;
		}
		/* A range with nothing committed costs one too. */
		scanned += max(n, 1L);
		cond_resched();
	}
	trace_cowbuf_scan_batch(scanned, merged,
				atomic_long_read(&cowbuf_merge_stats.pages_volatile) -
				volatile_before,
				atomic_long_read(&cowbuf_merge_stats.full_scans));
}

static bool cowbufd_should_run(void)
{
	return READ_ONCE(cowbuf_merge_knobs.run) == 1 && atomic_read(&nr_mergeable);
}

/* Whether to cut a sleep short: stopping, or a knob changed since @seq. */
static bool knob_changed(int seq)
{
	return kthread_should_stop() || atomic_read(&knob_seq) != seq;
}

static int cowbufd_fn(void *unused)
{
	unsigned int ms;
	int seq;

	set_freezable();
	set_user_nice(current, 5);
	while (!kthread_should_stop()) {
		seq = atomic_read(&knob_seq);
		mutex_lock(&cowbuf_merge_mutex);
		if (cowbufd_should_run())
			cowbufd_scan_batch();
		mutex_unlock(&cowbuf_merge_mutex);
		try_to_freeze();

		if (!cowbufd_should_run()) {
			wait_event_freezable(cowbufd_wait,
					     kthread_should_stop() || cowbufd_should_run());
			continue;
		}
		ms = READ_ONCE(cowbuf_merge_knobs.sleep_millisecs);
		if (ms)
			wait_event_freezable_timeout(cowbufd_wait, knob_changed(seq),
						     msecs_to_jiffies(ms));
		else
			cond_resched();
	}
	return 0;
}

/**
 * cowbufd_start() - start the scanner thread (it waits for run=1)
 *
 * Return: 0 or a negative errno.
 */
int cowbufd_start(void)
{
	cowbufd = kthread_run(cowbufd_fn, NULL, "cowbufd");
	return PTR_ERR_OR_ZERO(cowbufd);
}

/**
 * cowbufd_stop() - stop the scanner thread
 */
void cowbufd_stop(void)
{
	kthread_stop(cowbufd);
}
