// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: frames, the pages the module owns.
 *
 * DOC: Frames
 *
 * A frame is an ordinary order-0 page from the page allocator, or in a huge
 * region a compound page of order COWBUF_HUGE_ORDER (2 MiB on x86-64),
 * zero-filled, charged to the memory cgroup of the task that caused the
 * allocation (__GFP_ACCOUNT) and never movable: cowbuf implements no
 * migration, so its frames stay out of ZONE_MOVABLE and CMA. A frame is
 * never anonymous and never in a page cache; userspace reaches it through the
 * page tables of a region's mapping, where the fault core keeps its reference
 * count and mapcount as for any file page (a huge frame: one PMD, or PTEs of
 * its subpages where a PMD cannot map it). Reference count, page lock and
 * page->private of a huge frame are those of its head page.
 *
 * Huge regions read as zero where uncommitted through one huge frame the
 * module keeps for the purpose, allocated with the first huge region and
 * freed at unload: it is mapped read-only, is never in a slot and never
 * written (mm_get_huge_zero_page() is not exported to modules).
 *
 * Holders - region slots and message entries - each own one reference and
 * one share. The share count is kept in page->private under the page lock.
 * Any other reference (a GUP pin, a page in a pipe after vmsplice, a fault
 * in flight) shows as page_count() exceeding shares plus mapcount; such a
 * frame is "pinned" and is never handed to another owner.
 *
 * DOC: Pins and writes
 *
 * A pin is taken through a mapping of a region, so its holder is whoever
 * could map the frame when it was taken. A frame held by one slot since it
 * was last seen unpinned can only be pinned through that slot: the pin is
 * the region's own (O_DIRECT, a FUSE read, VFIO type1, RDMA registration),
 * and the frame is written in place, as shared memory is, so that the
 * device and the region keep seeing each other's writes. A frame that has
 * had a second holder since (SHARE, a merge) is marked
 * COWBUF_FRAME_WAS_SHARED: a pin on it may have been taken through another
 * holder, perhaps another user's. Its last holder copies it before writing
 * while it is pinned, and without memory for the copy the write fails
 * (SIGBUS) rather than show its bytes to the pinner. The mark goes when the
 * frame is next seen with one holder and no pin: from then on any pin is
 * the holder's own again. A pinned frame with one holder is never shared,
 * moved or merged (EBUSY, or left alone by the scanner), so a pin taken
 * through a region's own mappings never leaves that region's frame.
 */

#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/huge_mm.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/string.h>

#include "cowbuf.h"

/*
 * page->private: the share count; COWBUF_FRAME_STABLE while the merge
 * scanner's stable table holds a reference to the frame;
 * COWBUF_FRAME_WAS_SHARED (see "Pins and writes"); COWBUF_FRAME_SENT once a
 * SEND took a stable frame (its stable entry names the user who merged it,
 * who may no longer be the one holding it), until it leaves the table: no
 * other frame merges into it.
 */
#define COWBUF_FRAME_STABLE	BIT(BITS_PER_LONG - 2)
#define COWBUF_FRAME_WAS_SHARED	BIT(BITS_PER_LONG - 3)
#define COWBUF_FRAME_SENT	BIT(BITS_PER_LONG - 4)
#define COWBUF_FRAME_SHARERS	(COWBUF_FRAME_SENT - 1)

/*
 * No holder is added to a frame whose reference count is this high: far
 * below the overflow of the 32-bit count, far above any real sharing.
 */
#define COWBUF_FRAME_MAX_REFS	(INT_MAX / 2)

#define COWBUF_FRAME_GFP \
	(GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

atomic_long_t cowbuf_nr_merged_frames = ATOMIC_LONG_INIT(0);
atomic_long_t cowbuf_nr_merged_sharers = ATOMIC_LONG_INIT(0);

/*
 * Add (@sign 1) or take out (-1) what the page->private word @priv of a
 * frame counts in cowbuf_nr_merged_frames and cowbuf_nr_merged_sharers: a
 * frame of the stable table with two sharers or more counts once, and its
 * sharers but one.
 */
static void frame_account_merged(unsigned long priv, long sign)
{
	unsigned long sharers = priv & COWBUF_FRAME_SHARERS;

	if (!(priv & COWBUF_FRAME_STABLE) || sharers < 2)
		return;
	atomic_long_add(sign, &cowbuf_nr_merged_frames);
	atomic_long_add(sign * (long)(sharers - 1), &cowbuf_nr_merged_sharers);
}

/*
 * Set the page->private word of the locked frame @page to @priv, keeping
 * the merge counters.
 */
static void frame_set_private(struct page *page, unsigned long priv)
{
	frame_account_merged(page_private(page), -1);
	set_page_private(page, priv);
	frame_account_merged(priv, 1);
}

/* The huge zero frame: set once, under huge_zero_mutex, freed at unload. */
static struct page *huge_zero;
static DEFINE_MUTEX(huge_zero_mutex);

static struct page *frame_alloc(gfp_t gfp, unsigned int order)
{
	struct page *page;

	if (order)
		gfp |= __GFP_COMP;
	page = alloc_pages(gfp, order);
	if (!page)
		return NULL;
	set_page_private(page, 1);
	atomic_long_inc(&cowbuf_nr_frames);
	return page;
}

/**
 * cowbuf_frame_alloc() - allocate a zeroed frame with one sharer
 * @order: 0, or COWBUF_HUGE_ORDER for a huge frame
 *
 * Context: process context; may sleep. __GFP_RETRY_MAYFAIL makes a memory
 * cgroup at its limit, or memory too fragmented for a huge frame, fail the
 * allocation quietly (ENOMEM, SIGBUS) instead of invoking the OOM killer or
 * warning from inside cowbuf.
 *
 * Return: the frame (its head page) with one reference, or NULL.
 */
struct page *cowbuf_frame_alloc(unsigned int order)
{
	return frame_alloc(COWBUF_FRAME_GFP | __GFP_ZERO, order);
}

/**
 * cowbuf_frame_alloc_like() - allocate a frame of @page's size, not zeroed,
 *	with one sharer, for cowbuf_frame_copy() to fill
 * @page: the frame to be copied
 *
 * Context: process context; may sleep.
 * Return: the frame, or NULL.
 */
struct page *cowbuf_frame_alloc_like(struct page *page)
{
	return frame_alloc(COWBUF_FRAME_GFP, compound_order(page));
}

/**
 * cowbuf_frame_copy() - copy the bytes of a frame
 * @copy: the frame to fill, of the same size
 * @page: the frame to copy, locked by the caller
 *
 * Context: process context; may sleep.
 */
void cowbuf_frame_copy(struct page *copy, struct page *page)
{
	unsigned int i, nr = compound_nr(page);

	for (i = 0; i < nr; i++) {
		copy_highpage(copy + i, page + i);
		if ((i & 63) == 63)
			cond_resched();
	}
}

/**
 * cowbuf_frame_dup() - a private copy of a frame, with one sharer
 * @page: the frame, locked by the caller
 *
 * Context: process context; may sleep.
 * Return: the copy, of the same size, or NULL.
 */
struct page *cowbuf_frame_dup(struct page *page)
{
	struct page *copy = cowbuf_frame_alloc_like(page);

	if (copy)
		cowbuf_frame_copy(copy, page);
	return copy;
}

/**
 * cowbuf_frame_is_zero() - whether every byte of a frame is zero
 * @page: the frame
 *
 * Return: true if so.
 */
bool cowbuf_frame_is_zero(struct page *page)
{
	unsigned int i, nr = compound_nr(page);
	bool zero = true;
	void *addr;

	for (i = 0; i < nr && zero; i++) {
		addr = kmap_local_page(page + i);
		zero = !memchr_inv(addr, 0, PAGE_SIZE);
		kunmap_local(addr);
		if ((i & 63) == 63)
			cond_resched();
	}
	return zero;
}

/**
 * cowbuf_frame_huge_zero_prepare() - make sure the huge zero frame exists
 *
 * Context: process context; may sleep.
 * Return: 0, or -ENOMEM if no huge frame could be allocated.
 */
int cowbuf_frame_huge_zero_prepare(void)
{
	struct page *page;
	int ret = 0;

	if (READ_ONCE(huge_zero))
		return 0;
	mutex_lock(&huge_zero_mutex);
	if (!huge_zero) {
		/* The module's own, not the caller's: not charged. */
		page = alloc_pages(GFP_HIGHUSER | __GFP_ZERO | __GFP_COMP |
				   __GFP_RETRY_MAYFAIL | __GFP_NOWARN,
				   COWBUF_HUGE_ORDER);
		if (page)
			/* Zeroed before seen: pairs with cowbuf_frame_huge_zero(). */
			smp_store_release(&huge_zero, page);
		else
			ret = -ENOMEM;
	}
	mutex_unlock(&huge_zero_mutex);
	return ret;
}

/**
 * cowbuf_frame_huge_zero() - the huge zero frame
 *
 * Return: the frame, which exists once a huge region does, or NULL.
 */
struct page *cowbuf_frame_huge_zero(void)
{
	/* Pairs with the release in cowbuf_frame_huge_zero_prepare(). */
	return smp_load_acquire(&huge_zero);
}

/**
 * cowbuf_frame_exit() - free the huge zero frame at unload
 *
 * No region is left, so nothing maps it; a reference somebody else still
 * holds (a pipe after vmsplice()) frees it later.
 */
void cowbuf_frame_exit(void)
{
	if (huge_zero)
		put_page(huge_zero);
	huge_zero = NULL;
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
 *	and for skipping work that a stale value only puts off
 * @page: the frame, not locked
 *
 * Return: the share count at some recent moment.
 */
unsigned long cowbuf_frame_sharers_racy(struct page *page)
{
	return READ_ONCE(page->private) & COWBUF_FRAME_SHARERS;
}

/**
 * cowbuf_frame_stable() - whether the stable table holds a reference
 * @page: the frame, locked by the caller
 *
 * Return: true if it does.
 */
bool cowbuf_frame_stable(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	return page_private(page) & COWBUF_FRAME_STABLE;
}

/**
 * cowbuf_frame_stable_scanner() - cowbuf_frame_stable() without the page lock
 * @page: the frame
 *
 * For the merge scanner, which alone sets and clears the flag, under
 * cowbuf_merge_mutex: it reads its own writes. The frame's sharers, in the
 * same word, may change meanwhile.
 *
 * Return: true if the stable table holds a reference to @page.
 */
bool cowbuf_frame_stable_scanner(struct page *page)
{
	return READ_ONCE(page->private) & COWBUF_FRAME_STABLE;
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
		frame_set_private(page, page_private(page) | COWBUF_FRAME_STABLE);
	else
		frame_set_private(page, page_private(page) &
				  ~(COWBUF_FRAME_STABLE | COWBUF_FRAME_SENT));
}

/**
 * cowbuf_frame_mark_sent_locked() - a SEND takes the frame
 * @page: the frame, locked by the caller
 *
 * A stable frame is merged into no more: its stable entry's owner may not be
 * who holds it after the SEND.
 */
void cowbuf_frame_mark_sent_locked(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	if (page_private(page) & COWBUF_FRAME_STABLE)
		set_page_private(page, page_private(page) | COWBUF_FRAME_SENT);
}

/**
 * cowbuf_frame_merge_target() - whether other frames may merge into a
 *	stable frame
 * @page: the frame, locked by the caller
 *
 * Return: false once a SEND took it (cowbuf_frame_mark_sent_locked()).
 */
bool cowbuf_frame_merge_target(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	return !(page_private(page) & COWBUF_FRAME_SENT);
}

/**
 * cowbuf_frame_may_share() - whether a frame can take another holder
 * @page: the frame, locked by the caller
 *
 * Return: false if its reference count is near overflow.
 */
bool cowbuf_frame_may_share(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	return page_ref_count(page) < COWBUF_FRAME_MAX_REFS;
}

/**
 * cowbuf_frame_share_locked() - add a holder to a frame
 * @page: the frame, locked by the caller, which cowbuf_frame_may_share()
 *	allowed under the same hold of the lock
 *
 * Takes the reference the new holder owns, and marks the frame
 * COWBUF_FRAME_WAS_SHARED (see "Pins and writes").
 */
void cowbuf_frame_share_locked(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	get_page(page);
	frame_set_private(page, (page_private(page) + 1) | COWBUF_FRAME_WAS_SHARED);
}

/**
 * cowbuf_frame_was_shared() - whether a pin on a frame may be another
 *	holder's (see "Pins and writes")
 * @page: the frame, locked by the caller
 *
 * Return: true if the frame had a second holder since it was last seen
 * with one holder and no pin.
 */
bool cowbuf_frame_was_shared(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	return page_private(page) & COWBUF_FRAME_WAS_SHARED;
}

/**
 * cowbuf_frame_mark_shared_locked() - treat a frame as having had a second
 *	holder
 * @page: the frame, locked by the caller
 *
 * For a frame that leaves its region while a reference may still be taken
 * unseen through an entry that maps it (see "Pins and writes").
 */
void cowbuf_frame_mark_shared_locked(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	set_page_private(page, page_private(page) | COWBUF_FRAME_WAS_SHARED);
}

/**
 * cowbuf_frame_settle_locked() - note that a frame has one holder and no pin
 * @page: the frame, locked by the caller, which the caller found with one
 *	sharer and unpinned under the same hold of the lock
 *
 * Any pin taken from now on is taken through that holder's mappings.
 */
void cowbuf_frame_settle_locked(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	VM_WARN_ON_ONCE_PAGE((page_private(page) & COWBUF_FRAME_SHARERS) != 1, page);
	if (page_private(page) & COWBUF_FRAME_WAS_SHARED)
		set_page_private(page, page_private(page) & ~COWBUF_FRAME_WAS_SHARED);
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
	frame_set_private(page, page_private(page) - 1);
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

/*
 * References the page tables hold to a frame: one per PTE mapping any of its
 * pages and one per PMD mapping it whole. For a huge frame, Linux 6.1 counts a
 * PMD mapping of a file THP in the mapcount of every subpage as well as in
 * the compound mapcount (page_add_file_rmap()), so those are taken out again.
 */
static int frame_map_refs(struct page *page)
{
	int i, nr, pmds, sum = 0;

	if (!PageCompound(page))
		return page_mapcount(page);
	nr = compound_nr(page);
	pmds = compound_mapcount(page);
	for (i = 0; i < nr; i++)
		sum += page_mapcount(page + i);
	return sum - (nr - 1) * pmds;
}

/* The references a frame's holders own: a share each, the stable table's. */
static int frame_holder_refs(struct page *page)
{
	int refs = page_private(page) & COWBUF_FRAME_SHARERS;

	if (page_private(page) & COWBUF_FRAME_STABLE)
		refs++;
	return refs;
}

/**
 * cowbuf_frame_idle() - whether only a frame's holders reference it
 * @page: the frame, locked by the caller
 *
 * Every page-table entry mapping the frame holds a reference too, so an
 * idle frame is neither mapped nor pinned.
 *
 * Return: true if so.
 */
bool cowbuf_frame_idle(struct page *page)
{
	VM_WARN_ON_ONCE_PAGE(!PageLocked(page), page);
	return page_count(page) == frame_holder_refs(page);
}

/*
 * Whether @page (locked) has references beyond its holders', its page-table
 * entries', the scanner's passing ones and the @held its caller holds.
 */
static bool frame_pinned(struct page *page, int held)
{
	int refs = frame_holder_refs(page) + held;

	/* The common case, and it spares a huge frame's 512 mapcounts. */
	if (page_count(page) == refs)
		return false;
	refs += frame_map_refs(page);
	/* Every reference is accounted for: nobody else holds one. */
	if (page_count(page) == refs)
		return false;
	return cowbuf_merge_other_refs(page) != refs;
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
	return frame_pinned(page, 0);
}

/**
 * cowbuf_frame_pinned_scanned() - cowbuf_frame_pinned() for a frame the
 *	merge scanner holds a reference to
 * @page: the frame, locked by the caller
 *
 * The scanner's one reference and the holders' are the common case, told
 * at once; anything more takes cowbuf_frame_pinned()'s full count, which
 * looks through every reference the scanner holds.
 *
 * Return: true if the frame has references cowbuf cannot see.
 */
bool cowbuf_frame_pinned_scanned(struct page *page)
{
	if (page_count(page) == frame_holder_refs(page) + 1)
		return false;
	return frame_pinned(page, 0);
}

/**
 * cowbuf_frame_pinned_in_fault() - cowbuf_frame_pinned() for .page_mkwrite
 * @page: the frame, locked by the caller, which the fault core holds a
 *	reference to
 *
 * Return: true if the frame has references beyond those and the fault's.
 */
bool cowbuf_frame_pinned_in_fault(struct page *page)
{
	return frame_pinned(page, 1);
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
