// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: frames, the pages the module owns.
 *
 * DOC: Frames
 *
 * A frame is an ordinary order-0 page from the page allocator, zero-filled,
 * charged to the memory cgroup of the task that caused the allocation
 * (__GFP_ACCOUNT) and never movable: cowbuf implements no migration, so its
 * frames stay out of ZONE_MOVABLE and CMA. A frame is never anonymous and
 * never in a page cache; userspace reaches it through the page tables of a
 * region's mapping, where the fault core keeps its reference count and
 * mapcount as for any file page.
 *
 * Holders - region slots and message entries - each own one reference and
 * one share. The share count is kept in page->private under the page lock.
 * Any other reference (a GUP pin, a page in a pipe after vmsplice, a fault
 * in flight) shows as page_count() exceeding shares plus mapcount; such a
 * frame is "pinned" and is never handed to another owner.
 */

#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

#include "cowbuf.h"

/*
 * page->private: the share count, and this flag while the merge scanner's
 * stable table holds a reference to the frame.
 */
#define COWBUF_FRAME_STABLE	BIT(BITS_PER_LONG - 2)
#define COWBUF_FRAME_SHARERS	(COWBUF_FRAME_STABLE - 1)

#define COWBUF_FRAME_GFP \
	(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/**
 * cowbuf_frame_alloc() - allocate a zeroed frame with one sharer
 *
 * Context: process context; may sleep. __GFP_RETRY_MAYFAIL makes a memory
 * cgroup at its limit fail the allocation (ENOMEM, SIGBUS) instead of
 * invoking the OOM killer from inside cowbuf.
 *
 * Return: the frame with one reference, or NULL.
 */
struct page *cowbuf_frame_alloc(void)
{
	struct page *page = alloc_page(COWBUF_FRAME_GFP);

	if (!page)
		return NULL;
	set_page_private(page, 1);
	atomic_long_inc(&cowbuf_nr_frames);
	return page;
}

/**
 * cowbuf_frame_sharers() - how many holders a frame has
 * @page: the frame, locked by the caller
 *
 * Return: the share count.
 */
unsigned long cowbuf_frame_sharers(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	return page_private(page) & COWBUF_FRAME_SHARERS;
}

/**
 * cowbuf_frame_sharers_racy() - a snapshot of the share count, for counters
 * @page: the frame, not locked
 *
 * Return: the share count at some recent moment.
 */
unsigned long cowbuf_frame_sharers_racy(struct page *page)
{
	return READ_ONCE(page->private) & COWBUF_FRAME_SHARERS;
}

/**
 * cowbuf_frame_set_stable_locked() - note the stable table's reference
 * @page: the frame, locked by the caller
 * @stable: whether the table holds a reference from now on
 */
void cowbuf_frame_set_stable_locked(struct page *page, bool stable)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	if (stable)
		set_page_private(page, page_private(page) | COWBUF_FRAME_STABLE);
	else
		set_page_private(page, page_private(page) & ~COWBUF_FRAME_STABLE);
}

/**
 * cowbuf_frame_share_locked() - add a holder to a frame
 * @page: the frame, locked by the caller
 *
 * Takes the reference the new holder owns.
 */
void cowbuf_frame_share_locked(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	get_page(page);
	set_page_private(page, page_private(page) + 1);
}

/**
 * cowbuf_frame_unshare_locked() - drop a holder's share, not its reference
 * @page: the frame, locked by the caller
 *
 * The caller drops the holder's reference with put_page() once the frame is
 * unlocked and unmapped where it must be; the last put frees the frame.
 */
void cowbuf_frame_unshare_locked(struct page *page)
{
	unsigned long sharers = page_private(page) & COWBUF_FRAME_SHARERS;

	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	VM_WARN_ON_ONCE_PAGE(!sharers, page);
	set_page_private(page, page_private(page) - 1);
	if (sharers == 1)
		atomic_long_dec(&cowbuf_nr_frames);
}

/**
 * cowbuf_frame_release() - drop a holder: its share and its reference
 * @page: the frame, not locked
 */
void cowbuf_frame_release(struct page *page)
{
	lock_page(page);
	cowbuf_frame_unshare_locked(page);
	unlock_page(page);
	put_page(page);
}

/**
 * cowbuf_frame_pinned() - whether a frame has references cowbuf cannot see
 * @page: the frame, locked by the caller
 *
 * Every holder owns a reference, every page-table entry mapping the frame
 * owns one, and so does the merge scanner's stable table if the frame is in
 * it; the scanner's passing references are no pin either
 * (cowbuf_merge_other_refs()). Anything beyond that is somebody else's (GUP,
 * a pipe, a fault in flight).
 *
 * Return: true if the frame has such references.
 */
bool cowbuf_frame_pinned(struct page *page)
{
	int refs = page_private(page) & COWBUF_FRAME_SHARERS;

	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	if (page_private(page) & COWBUF_FRAME_STABLE)
		refs++;
	refs += page_mapcount(page);
	/* Every reference is accounted for: nobody else holds one. */
	if (page_count(page) == refs)
		return false;
	return cowbuf_merge_other_refs(page) != refs;
}

/**
 * cowbuf_frame_lock_barrier() - wait for faults installing this frame
 * @page: the frame
 *
 * The fault core maps a frame handed out by .fault or .page_mkwrite while
 * holding its page lock. Taking and dropping the lock after changing the
 * slot that held the frame waits for such a fault; a later
 * unmap_mapping_range() then removes what it mapped.
 */
void cowbuf_frame_lock_barrier(struct page *page)
{
	lock_page(page);
	unlock_page(page);
}
