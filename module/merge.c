// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: same-page merging of region memory, by the cowbufd kthread.
 *
 * DOC: Merging
 *
 * Regions opt in, whole (COWBUF_REGION_MERGEABLE at creation) or by range
 * (COWBUF_IOC_MERGE with COWBUF_MERGE_ENABLE, like MADV_MERGEABLE);
 * COWBUF_MERGE_DISABLE takes a range out again and unmerges it. The cowbufd
 * kthread walks the committed slots of those ranges, pages_to_scan per
 * batch, sleep_millisecs between batches, and merges identical frames
 * copy-on-write, as KSM does for MADV_MERGEABLE anonymous memory, with three
 * differences that cowbuf's ownership of its memory allows:
 *
 * - Write tracking instead of rehashing. Every first write to a frame goes
 *   through .page_mkwrite, which marks its slot COWBUF_SLOT_DIRTY. The
 *   scanner hashes a dirty frame (xxh64) and, if it may merge (something
 *   has its hash) or did not change since the previous pass, clears the
 *   mark and removes the slot's mappings, so that the next write faults and
 *   marks it again. A clean slot was not written since, so its stored hash
 *   is still exact: it is not read again. A dirty frame that matches nothing
 *   stays writable, as KSM leaves it, and is protected only when a later
 *   page matches it.
 *
 * - One pass. Once write-protected, a frame cannot change unseen (a merge
 *   checks, under the page lock, that both slots are still clean, and
 *   compares the frames), so it is a merge candidate at once: a static
 *   workload converges in one pass over it. KSM waits for a page's checksum
 *   to be unchanged since the previous pass instead, which costs it a
 *   second pass.
 *
 * - Back-off learnt from copy-on-write breaks, instead of that second pass.
 *   What the second pass guards against, volatile pages merged and broken
 *   over and over, shows in the breaks themselves: a write that breaks a
 *   merged slot marks it COWBUF_SLOT_BROKEN, and the scanner then keeps the
 *   slot out of merging for a number of passes that doubles with every
 *   further break (max_backoff at most), and after that until the slot has
 *   gone a whole pass unwritten (merge_backoff.c). KSM's filter lets a page
 *   rewritten with the same bytes merge, and break, every pass.
 *
 * - A hash table instead of content trees. Candidates are looked up by hash
 *   in one rhltable that holds both KSM's stable entries, merged frames, and
 *   its unstable ones, candidates, frames that matched nothing when scanned:
 *   one lookup finds both kinds. A hash match merges only after a full
 *   comparison of both frames, with both locked, both slots found clean (no
 *   writable mapping) and neither frame pinned.
 *
 * - Candidates that stay. KSM rebuilds its unstable tree every pass, because
 *   a page may have changed unseen. A cowbuf candidate keeps its entry from
 *   one pass to the next until its slot is written (rescanned, it gets a
 *   new one), merged, emptied, or leaves merging. The one thing that can be
 *   new to it is a stable frame made since with its hash, and the scanner
 *   marks the candidates of that hash when it makes one: a pass over memory
 *   that nobody wrote neither reads it again nor looks anything up.
 *
 * Merging points the candidate's slot at the other frame, which gains a
 * share, and releases the candidate's frame; the shared frame is mapped
 * read-only and the first write through any slot copies it
 * (.page_mkwrite). All-zero frames are not merged but released: the slot
 * becomes uncommitted and reads as the zero page (counted in zero_pages).
 * A frame is shared by at most max_page_sharing slots, pinned frames are never
 * merged, and frames of regions owned by different users merge only with
 * merge_across_users set (see Documentation/security.rst).
 *
 * run: 0 stops the scanner, 1 runs it, 2 stops it and unmerges every
 * mergeable range, as KSM's run=2.
 *
 * Huge regions (COWBUF_REGION_HUGE | COWBUF_REGION_MERGEABLE, or a range
 * given to COWBUF_IOC_MERGE) are scanned for all-zero frames only: a written
 * slot is write-protected and its 2 MiB read, and an all-zero frame that
 * nobody pins is released, the slot then reading as the huge zero frame.
 * Nothing else of a huge region is merged. KSM splits a THP to merge its
 * pages one by one, which gives up the PMD mapping the region was made for,
 * and a slot of a huge region holds whole frames only; identical non-zero
 * 2 MiB frames are too rare to pay for hashing them.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/xxhash.h>

#include "cowbuf.h"
#include "merge.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/*
 * For the selftests' helper module (selftests/pin/merge_stop.c), which
 * stops the scanner at a merge to act inside a scan chunk.
 */
EXPORT_TRACEPOINT_SYMBOL_GPL(cowbuf_merge);

/* Slots handled per hold of a region's map_lock. */
#define COWBUF_SCAN_CHUNK	32

/* What merge_into_stable() did. */
enum { NOT_MERGED, MERGED_NOW, ALREADY_STABLE };

/* See merge.h: the table, the regions' merge state, the scanner. */
DEFINE_MUTEX(cowbuf_merge_mutex);
static unsigned long zero_hash;
/* merge_across_users when the table's candidates were added. */
static unsigned int candidates_across;

/* See struct cowbuf_merge_stats. */
struct cowbuf_merge_stats cowbuf_merge_stats;
atomic_long_t cowbuf_nr_cow_breaks = ATOMIC_LONG_INIT(0);

/*
 * xxh64 of the whole frame: a hash of part of it would put frames that
 * differ only elsewhere into each other's hash chains, and was no faster
 * (Documentation/design.rst).
 */
static unsigned long page_hash(struct page *page)
{
	void *addr = kmap_local_page(page);
	unsigned long hash = xxh64(addr, PAGE_SIZE, 0) >> 3;

	kunmap_local(addr);
	return hash;
}

/* Whether two frames hold the same bytes, a word at a time. */
static bool pages_equal(struct page *a, struct page *b)
{
	const unsigned long *pa = kmap_local_page(a);
	const unsigned long *pb = kmap_local_page(b);
	bool equal = true;
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / sizeof(long); i += 4) {
		if ((pa[i] ^ pb[i]) | (pa[i + 1] ^ pb[i + 1]) |
		    (pa[i + 2] ^ pb[i + 2]) | (pa[i + 3] ^ pb[i + 3])) {
			equal = false;
			break;
		}
	}
	kunmap_local(pb);
	kunmap_local(pa);
	return equal;
}

/**
 * struct cowbuf_scan_slot - a slot taken into a scan chunk
 * @pgoff: its page offset
 * @page: its frame, with a reference of the scanner's
 * @hash: the frame's hash, once known
 * @stored: the hash stored for the slot by an earlier pass
 * @rehash: the slot was written (or never hashed): hash it again
 * @broken: a write broke the slot's merge since the scanner last looked
 * @out: back-off keeps the slot out of merging this pass
 * @protect: the slot was written and is worth write-protecting now
 * @has_stored: @stored is valid
 * @merged: the slot no longer holds @page: unmap, then drop its reference
 * @looked: @match holds what worth_protecting() found, valid for
 *	merge_candidate() while cowbuf_table_gen is still @gen; otherwise
 *	merge_candidate() looks itself
 * @gen: cowbuf_table_gen when @match was looked up
 * @match: what the table holds for @hash
 */
struct cowbuf_scan_slot {
	pgoff_t pgoff;
	struct page *page;
	unsigned long hash;
	unsigned long stored;
	struct cowbuf_match match;
	unsigned long gen;
	bool looked;
	bool rehash;
	bool broken;
	bool out;
	bool protect;
	bool has_stored;
	bool merged;
};

/**
 * struct cowbuf_scan_partner - a candidate of an earlier chunk, left writable,
 *	that a written slot of this chunk has the hash of
 * @region: the region holding it
 * @pgoff: its slot
 * @page: its frame, with a reference of the scanner's, or NULL
 */
struct cowbuf_scan_partner {
	struct cowbuf_region *region;
	pgoff_t pgoff;
	struct page *page;
};

/*
 * The chunk being scanned, and its length while candidates are processed
 * (cowbuf_merge_mutex held: there is one scanner). Not on the stack: too big.
 * @scan_other is the frame of the other candidate merge_with_unstable() is
 * looking at, which the scanner holds a reference to, or NULL.
 * @scan_partners are the unstable candidates the chunk's written slots
 * matched, write-protected together by protect_partners().
 *
 * scanner_refs_lock (innermost) makes the references the scanner holds for a
 * moment visible to cowbuf_merge_other_refs(): every get_page() and
 * put_page() of those references, and every change of @scan_chunk_len, of a
 * slot's @merged, of @scan_other and of a partner's @page, happens under it,
 * together with the record of the reference.
 */
static struct cowbuf_scan_slot scan_chunk[COWBUF_SCAN_CHUNK];
static int scan_chunk_len;
static struct page *scan_other;
static struct cowbuf_scan_partner scan_partners[COWBUF_SCAN_CHUNK];
static int scan_partners_len;
static DEFINE_SPINLOCK(scanner_refs_lock);

/*
 * References the scanner itself holds to @page (scanner_refs_lock held):
 * one per slot of the chunk that had it, plus the other candidate's, plus
 * one per partner being write-protected. The reference of a slot merged
 * away from @page, which the scanner drops at the end of the chunk, is not
 * one of them: until then it is a reference no holder owns, and whoever
 * looks at @page sees a pin (a holder left with it copies before writing,
 * SEND waits), never less than there is.
 */
static int scanner_refs(struct page *page)
{
	int i, refs = 0;

	lockdep_assert_held(&scanner_refs_lock);
	for (i = 0; i < scan_chunk_len; i++)
		if (scan_chunk[i].page == page)
			refs++;
	if (scan_other == page)
		refs++;
	for (i = 0; i < scan_partners_len; i++)
		if (scan_partners[i].page == page)
			refs++;
	return refs;
}

/**
 * cowbuf_merge_other_refs() - a frame's references, less the scanner's
 * @page: the frame
 *
 * The scanner holds references to the frames it is looking at for as long
 * as a chunk takes; they are no pin, and cowbuf_frame_pinned() must not
 * count them.
 *
 * Return: page_count(@page) less the references the scanner holds now.
 */
int cowbuf_merge_other_refs(struct page *page)
{
	int refs;

	spin_lock(&scanner_refs_lock);
	refs = page_count(page) - scanner_refs(page);
	spin_unlock(&scanner_refs_lock);
	return refs;
}

/*
 * The chunk's slot @pgoff gave up its share of its frame, not yet its
 * reference (the frame's page lock held): that reference is the scanner's
 * until the end of the chunk.
 */
static void scan_slot_merged(pgoff_t pgoff)
{
	int i;

	spin_lock(&scanner_refs_lock);
	for (i = 0; i < scan_chunk_len; i++)
		if (scan_chunk[i].pgoff == pgoff)
			scan_chunk[i].merged = true;
	spin_unlock(&scanner_refs_lock);
}

/* Take, or drop, a reference to the other candidate's frame. */
static void scan_other_get(struct page *page)
{
	spin_lock(&scanner_refs_lock);
	get_page(page);
	scan_other = page;
	spin_unlock(&scanner_refs_lock);
}

static void scan_other_put(void)
{
	spin_lock(&scanner_refs_lock);
	put_page(scan_other);
	scan_other = NULL;
	spin_unlock(&scanner_refs_lock);
}

/*
 * Whether the slot @pgoff of @region still holds @page, not written since
 * the scanner write-protected it. Called with @page locked: .page_mkwrite
 * marks the slot dirty under the page lock before it grants a write.
 */
static bool slot_clean(struct cowbuf_region *region, pgoff_t pgoff,
		       struct page *page)
{
	return xa_load(&region->slots, pgoff) == page &&
	       !xa_get_mark(&region->slots, pgoff, COWBUF_SLOT_DIRTY);
}

/*
 * Remove the mappings of the slot @pgoff of @region, which holds @page
 * (locked), then tell whether @page is pinned. The page lock keeps faults
 * from mapping it again, so the answer holds while the lock is: no
 * reference can be taken through an entry of the slot behind the check
 * (GUP-fast takes no page lock), and a merge that follows leaves no stale
 * entry mapping @page in a slot that no longer holds it, which would read
 * what another holder of @page writes in place. KSM's write_protect_page()
 * checks references after clearing the entry for the same reasons.
 */
static bool slot_unmap_pinned(struct cowbuf_region *region, pgoff_t pgoff,
			      struct page *page)
{
	if (page_mapped(page))
		cowbuf_region_unmap(region, pgoff, 1);
	return cowbuf_frame_pinned_scanned(page);
}

/*
 * Point the slot @pgoff of @region, holding @page (locked, clean, its
 * mappings removed by slot_unmap_pinned()), at @target (locked), which
 * gains a share; @page loses the slot's share. Unlocks both. The slot's
 * reference to @page is dropped at the end of the chunk (scan_release()).
 */
static void merge_slot(struct cowbuf_region *region, pgoff_t pgoff,
		       struct page *page, struct page *target)
{
	void *old;

	cowbuf_frame_share_locked(target);
	old = xa_store(&region->slots, pgoff, target, GFP_NOWAIT);
	WARN_ON_ONCE(old != page);
	cowbuf_frame_unshare_locked(page);
	scan_slot_merged(pgoff);
	unlock_page(target);
	unlock_page(page);
}

/*
 * Try to merge the candidate (slot @pgoff of @region, frame @page, which we
 * hold a reference to) into one of the stable frames @m found.
 * Return: MERGED_NOW, ALREADY_STABLE (it is a merged frame itself) or
 * NOT_MERGED.
 */
static int merge_into_stable(struct cowbuf_region *region, pgoff_t pgoff,
			     struct page *page, const struct cowbuf_match *m)
{
	unsigned int max_sharing = READ_ONCE(cowbuf_merge_knobs.max_page_sharing);
	struct page *target;
	int i;

	if (m->nr_targets < 0)
		return ALREADY_STABLE;
	/* The table's references keep the targets; only we remove entries. */
	for (i = 0; i < m->nr_targets; i++) {
		target = m->targets[i];
		lock_page(page);
		if (!slot_clean(region, pgoff, page) ||
		    slot_unmap_pinned(region, pgoff, page)) {
			unlock_page(page);
			return NOT_MERGED;
		}
		if (!trylock_page(target)) {
			unlock_page(page);
			continue;
		}
		/* A frame with one sharer left may be written in place. */
		if (cowbuf_frame_sharers(target) < 2 ||
		    cowbuf_frame_sharers(target) >= max_sharing ||
		    !cowbuf_frame_merge_target(target) ||
		    !cowbuf_frame_may_share(target) || !pages_equal(page, target)) {
			unlock_page(target);
			unlock_page(page);
			continue;
		}
		merge_slot(region, pgoff, page, target);
		trace_cowbuf_merge(region, pgoff, "stable");
		return MERGED_NOW;
	}
	return NOT_MERGED;
}

/**
 * struct cowbuf_unmap_run - slots whose mappings are to be removed, gathered
 *	so that nearby ones go with one unmap_mapping_range() call
 * @region: their region, or NULL while the run is empty
 * @first: first slot of the run
 * @last: last slot of the run
 *
 * Each call costs a TLB flush (an IPI when the mapping's process runs on
 * another CPU), so slots of a region at most COWBUF_UNMAP_GAP apart share
 * one, across slots that nothing maps. A scan chunk ends its run at a
 * mapped slot that was not asked for, which so keeps its mappings; partners
 * (protect_partners()) and the rare merged slots mapped again may still
 * take one along, which faults them back in.
 */
struct cowbuf_unmap_run {
	struct cowbuf_region *region;
	pgoff_t first;
	pgoff_t last;
};

#define COWBUF_UNMAP_GAP	8

/* Remove the mappings of the slots of @run, and empty it. */
static void unmap_run_flush(struct cowbuf_unmap_run *run)
{
	if (run->region)
		cowbuf_region_unmap(run->region, run->first, run->last - run->first + 1);
	run->region = NULL;
}

/* Add the slot @pgoff of @region to @run, flushing the run if it is far. */
static void unmap_run_add(struct cowbuf_unmap_run *run, struct cowbuf_region *region,
			  pgoff_t pgoff)
{
	if (run->region == region && pgoff + COWBUF_UNMAP_GAP >= run->first &&
	    pgoff <= run->last + COWBUF_UNMAP_GAP) {
		run->first = min(run->first, pgoff);
		run->last = max(run->last, pgoff);
		return;
	}
	unmap_run_flush(run);
	run->region = region;
	run->first = pgoff;
	run->last = pgoff;
}

/*
 * Clear the scan marks of the slot @pgoff of @region if it still holds @page
 * (a reference of the scanner's): COWBUF_SLOT_DIRTY if @dirty, when the slot
 * is write-protected next, COWBUF_SLOT_BROKEN if @broken. The page lock
 * waits for a fault still mapping the frame writable: the caller then
 * removes the slot's mappings, and a later write faults and marks it again.
 * A pinned frame is never write-protected, as KSM's write_protect_page()
 * leaves a page with extra references alone: it stays dirty, and is looked
 * at again next pass (it cannot merge while pinned anyway).
 * Return: whether a page table maps @page and the caller is to remove its
 * mappings. One that does not, once the mark is cleared, only gets mapped
 * again by a fault, which takes the page lock and maps it read-only, or
 * marks the slot again (.page_mkwrite) to write it.
 */
static bool slot_clear_marks(struct cowbuf_region *region, pgoff_t pgoff,
			     struct page *page, bool dirty, bool broken)
{
	bool mapped;

	lock_page(page);
	if (dirty && cowbuf_frame_pinned_scanned(page)) {
		dirty = false;
		if (!broken) {
			unlock_page(page);
			return false;
		}
	}
	if (xa_load(&region->slots, pgoff) == page) {
		if (dirty)
			xa_clear_mark(&region->slots, pgoff, COWBUF_SLOT_DIRTY);
		if (broken)
			xa_clear_mark(&region->slots, pgoff, COWBUF_SLOT_BROKEN);
	}
	mapped = dirty && page_mapped(page);
	unlock_page(page);
	return mapped;
}

/*
 * Write-protect the slot @pgoff of @region, holding @page, as the chunk's
 * scan does for its own slots: a later write faults and marks it dirty
 * again. The slot was written since its hash was stored, and is not hashed
 * now: the next pass hashes it again (cowbuf_hash_invalidate()).
 */
static void protect_slot(struct cowbuf_region *region, pgoff_t pgoff, struct page *page)
{
	cowbuf_hash_invalidate(region, pgoff);
	if (slot_clear_marks(region, pgoff, page, true, false))
		cowbuf_region_unmap(region, pgoff, 1);
}

/*
 * Try to merge the candidate with the candidate of another slot that
 * cowbuf_table_lookup() found for its hash (@m), if any; the other frame
 * becomes a stable frame. Otherwise the candidate joins the table.
 * Return: true if merged.
 */
static bool merge_with_unstable(struct cowbuf_region *region, pgoff_t pgoff,
				struct page *page, unsigned long hash,
				const struct cowbuf_match *m)
{
	struct cowbuf_merge_node *found = m->partner;
	struct cowbuf_region *other;
	struct page *target;

	if (!found) {
		cowbuf_candidate_add(region, pgoff, hash, m->nr_targets > 0);
		return false;
	}

	/* Regions on the list stay alive: their release takes our mutex. */
	other = found->region;
	xa_lock(&other->slots);
	target = xa_load(&other->slots, found->pgoff);
	if (target)
		scan_other_get(target);
	xa_unlock(&other->slots);
	if (!target)
		goto out_stale;
	if (target == page)
		goto out_put_stale;

	/* A candidate without a match when it was scanned was left writable. */
	if (xa_get_mark(&other->slots, found->pgoff, COWBUF_SLOT_DIRTY))
		protect_slot(other, found->pgoff, target);
	lock_page(page);
	if (!slot_clean(region, pgoff, page) || slot_unmap_pinned(region, pgoff, page))
		goto out_unlock;
	if (!trylock_page(target))
		goto out_unlock;
	/*
	 * The other slot must not have been written since it was hashed. Its
	 * frame may be a stable frame already, under another hash: one whose
	 * sharers broke away, written in place by the last, which is still in
	 * the table until the pass ends. A second stable entry would hold a
	 * second reference that frame_holder_refs() does not count, and SEND
	 * would see it as a pin.
	 */
	if (cowbuf_frame_stable(target)) {
		unlock_page(target);
		unlock_page(page);
		goto out_put_stale;
	}
	if (!slot_clean(other, found->pgoff, target) || !pages_equal(page, target)) {
		/* Written since it was hashed (or a collision): drop it. */
		unlock_page(target);
		unlock_page(page);
		goto out_put_stale;
	}
	if (cowbuf_frame_pinned_scanned(target) || !cowbuf_frame_may_share(target) ||
	    cowbuf_frame_sharers(target) >= READ_ONCE(cowbuf_merge_knobs.max_page_sharing)) {
		unlock_page(target);
		goto out_unlock;
	}
	/*
	 * @target is about to be shared: its candidate entry becomes its
	 * stable entry, under the same hash, and our reference the table's.
	 */
	cowbuf_candidate_make_stable(found, target, region->user->uid, m->others);
	spin_lock(&scanner_refs_lock);
	cowbuf_frame_set_stable_locked(target, true);
	scan_other = NULL;
	spin_unlock(&scanner_refs_lock);
	merge_slot(region, pgoff, page, target);
	trace_cowbuf_merge(region, pgoff, "unstable");
	return true;

out_unlock:
	unlock_page(page);
	scan_other_put();
	return false;
out_put_stale:
	scan_other_put();
out_stale:
	cowbuf_candidate_remove(found);
	return false;
}

/* What merge_zero() did. */
enum { ZERO_RELEASED, ZERO_KEPT, NOT_ZERO };

/*
 * A candidate in slot @index hashed as all zero: empty the slot, which reads
 * as zero from now on. Like merge_slot(), leaves the unmap and the slot's
 * reference to the caller. Return: ZERO_RELEASED if the slot was emptied,
 * NOT_ZERO if the frame is not all zero (written before it was
 * write-protected, or a collision), ZERO_KEPT if it is but was written
 * since it was write-protected, or is pinned.
 */
static int merge_zero(struct cowbuf_region *region, pgoff_t index, struct page *page)
{
	unsigned long nr = 1UL << region->order;

	lock_page(page);
	if (!slot_clean(region, index, page)) {
		unlock_page(page);
		return ZERO_KEPT;
	}
	if (!cowbuf_frame_is_zero(page)) {
		unlock_page(page);
		return NOT_ZERO;
	}
	if (slot_unmap_pinned(region, index, page)) {
		unlock_page(page);
		return ZERO_KEPT;
	}
	xa_erase(&region->slots, index);
	cowbuf_frame_unshare_locked(page);
	scan_slot_merged(index);
	unlock_page(page);
	cowbuf_region_uncharge(region, nr);
	atomic_long_add(nr, &region->zero_pages);
	atomic_long_add(nr, &cowbuf_merge_stats.zero_pages);
	trace_cowbuf_merge(region, index << region->order, "zero");
	return ZERO_RELEASED;
}

/*
 * Take up to @limit committed slots of the slot indices [@first, @last] of
 * @region into scan_chunk, with a reference to each frame (map_lock held
 * for read). Return: the number taken; *@next_index gets the index after
 * the last one taken, or @last + 1 when the range is done.
 */
static int scan_collect(struct cowbuf_region *region, unsigned long first,
			unsigned long last, int limit, unsigned long *next_index)
{
	XA_STATE(xas, &region->slots, first);
	struct cowbuf_scan_slot *s;
	struct page *page;
	int n = 0;

	lockdep_assert_held(&region->map_lock);
	limit = min(limit, COWBUF_SCAN_CHUNK);
	/* The slots' references cannot go while we take ours under xa_lock. */
	xas_lock(&xas);
	spin_lock(&scanner_refs_lock);
	xas_for_each(&xas, page, last) {
		s = &scan_chunk[n];
		s->pgoff = xas.xa_index;
		s->page = page;
		s->rehash = xas_get_mark(&xas, COWBUF_SLOT_DIRTY);
		s->broken = xas_get_mark(&xas, COWBUF_SLOT_BROKEN);
		s->merged = false;
		get_page(page);
		if (++n == limit)
			break;
	}
	scan_chunk_len = n;
	spin_unlock(&scanner_refs_lock);
	xas_unlock(&xas);
	*next_index = n == limit ? scan_chunk[n - 1].pgoff + 1 : last + 1;
	return n;
}

/* Drop the chunk's references, and those of the slots merged away. */
static void scan_release(void)
{
	int i;

	spin_lock(&scanner_refs_lock);
	for (i = 0; i < scan_chunk_len; i++) {
		if (scan_chunk[i].merged)
			put_page(scan_chunk[i].page);	/* the slot's reference */
		put_page(scan_chunk[i].page);		/* ours */
	}
	scan_chunk_len = 0;
	spin_unlock(&scanner_refs_lock);
}

/*
 * What a merge reads besides the hash: the candidate and its target, in
 * pages_equal(). hash_only=2 has every frame compared with itself, which
 * reads as much; the pointer is hidden from the compiler, which would
 * otherwise see that the comparison cannot fail and drop it.
 */
static bool page_compare_self(struct page *page)
{
	struct page *same = page;

	OPTIMIZER_HIDE_VAR(same);
	return pages_equal(page, same);
}

/*
 * hash_only: read and hash up to @budget pages of committed frames of
 * [@start, @end) (page offsets) of @region, and nothing else: the bound the
 * merging pass is measured against. With @compare (hash_only=2), also read
 * each page twice more, as comparing it with an identical frame does. Out
 * of line, so that profiles (tools/vm/actions/profile-merge.sh) tell these
 * passes from merging ones. Return: pages read.
 */
static noinline unsigned long merge_hash_chunk(struct cowbuf_region *region,
					       pgoff_t start, pgoff_t end,
					       unsigned long budget, bool compare,
					       pgoff_t *next)
{
	unsigned int order = region->order;
	unsigned long next_index, pages = 0;
	struct cowbuf_scan_slot *s;
	int n, i, j;

	n = scan_collect(region, start >> order, (end >> order) - 1,
			 max(budget >> order, 1UL), &next_index);
	*next = min_t(pgoff_t, next_index << order, end);
	for (i = 0; i < n; i++) {
		s = &scan_chunk[i];
		for (j = 0; j < 1 << order; j++) {
			s->hash = page_hash(s->page + j);
			/* Kept, so that the comparison is not optimized out. */
			if (compare)
				s->protect = page_compare_self(s->page + j);
		}
		pages += 1UL << order;
		cond_resched();
	}
	scan_release();
	atomic_long_add(pages, &cowbuf_merge_stats.pages_scanned);
	return pages;
}

/*
 * Look at the first committed slot of [@start, @end) (page offsets) of the
 * huge region @region (map_lock held for read): if it was written since,
 * write-protect it and release it if all zero. *@next gets where to
 * continue. Return: pages scanned, those of a frame read or one for a
 * frame skipped.
 */
static unsigned long merge_scan_huge(struct cowbuf_region *region, pgoff_t start,
				     pgoff_t end, pgoff_t *next)
{
	struct cowbuf_scan_slot *s = &scan_chunk[0];
	unsigned int order = region->order;
	unsigned long next_index, n;

	lockdep_assert_held(&region->map_lock);
	if (!scan_collect(region, start >> order, (end >> order) - 1, 1, &next_index)) {
		*next = end;
		return 0;
	}
	*next = min_t(pgoff_t, next_index << order, end);
	n = s->rehash ? 1UL << order : 1;
	if (s->rehash) {
		if (slot_clear_marks(region, s->pgoff, s->page, true, s->broken))
			cowbuf_region_unmap(region, s->pgoff, 1);
		if (merge_zero(region, s->pgoff, s->page) == ZERO_RELEASED &&
		    page_mapped(s->page))
			cowbuf_region_unmap(region, s->pgoff, 1);
	}
	scan_release();
	atomic_long_add(n, &cowbuf_merge_stats.pages_scanned);
	return n;
}

/*
 * Try to merge one candidate. Return: true if this merged it, and so left
 * the slot's reference to @s->page to the caller.
 */
static bool merge_candidate(struct cowbuf_region *region, struct cowbuf_scan_slot *s)
{
	int ret = NOT_MERGED, zero = ZERO_KEPT;
	bool candidate, recheck;

	/* Read now: a slot of the chunk before this one may have taken it out. */
	candidate = cowbuf_slot_is_candidate(region, s->pgoff, &recheck);

	/*
	 * A slot not written since the scanner last looked, whose frame is a
	 * stable frame, is merged already (its entry is under the hash it had
	 * then, which is still its frame's): nothing to look up.
	 */
	if (!s->rehash && cowbuf_frame_stable_scanner(s->page))
		return false;
	/*
	 * A candidate since an earlier pass and not written since: every
	 * candidate added after it looked it up, so only a stable frame made
	 * since can be new to it, and that marked it for a look
	 * (cowbuf_candidate_make_stable()). An all-zero one tries to go each
	 * pass: it was pinned.
	 */
	if (candidate && s->hash != zero_hash && !recheck)
		return false;
	if (s->hash == zero_hash) {
		zero = merge_zero(region, s->pgoff, s->page);
		if (zero == NOT_ZERO) {
			/* Written before write-protected: hashed now, it stays. */
			if (candidate)
				cowbuf_candidate_forget(region, s->pgoff, s->hash);
			candidate = false;
			s->hash = page_hash(s->page);
			cowbuf_hash_store(region, s->pgoff, s->hash);
			s->looked = false;
		}
	}
	if (zero == ZERO_RELEASED) {
		ret = MERGED_NOW;
	} else {
		if (!s->looked || s->gen != cowbuf_table_gen)
			cowbuf_table_lookup(region, s->pgoff, s->page, s->hash, &s->match);
		ret = merge_into_stable(region, s->pgoff, s->page, &s->match);
	}
	if (candidate) {
		if (ret == MERGED_NOW)
			cowbuf_candidate_forget(region, s->pgoff, s->hash);
		else if (s->match.nr_targets <= 0)
			cowbuf_candidate_settled(region, s->pgoff);
		return ret == MERGED_NOW;
	}
	if (ret != NOT_MERGED)
		return ret == MERGED_NOW;
	return merge_with_unstable(region, s->pgoff, s->page, s->hash, &s->match);
}

/*
 * Note the unstable candidate @node, which a written slot of the chunk has
 * the hash of, for protect_partners(), if it was left writable.
 */
static void note_partner(struct cowbuf_merge_node *node)
{
	struct cowbuf_scan_partner *p;
	int i;

	if (!xa_get_mark(&node->region->slots, node->pgoff, COWBUF_SLOT_DIRTY))
		return;
	for (i = 0; i < scan_partners_len; i++)
		if (scan_partners[i].region == node->region &&
		    scan_partners[i].pgoff == node->pgoff)
			return;
	/* One at most per slot of the chunk. */
	if (WARN_ON_ONCE(scan_partners_len == COWBUF_SCAN_CHUNK))
		return;
	spin_lock(&scanner_refs_lock);
	p = &scan_partners[scan_partners_len++];
	p->region = node->region;
	p->pgoff = node->pgoff;
	p->page = NULL;
	spin_unlock(&scanner_refs_lock);
}

/*
 * Write-protect the candidates note_partner() noted, as protect_slot() does
 * one at a time: invalidate their hashes, clear their COWBUF_SLOT_DIRTY
 * marks (slot_clear_marks()), then remove the mappings of those still
 * mapped, nearby slots with one unmap (struct cowbuf_unmap_run). A written
 * slot of the chunk and its partner then compare at once in
 * merge_with_unstable(). A partner that does not merge is hashed again by the
 * next pass: it was written since its hash was stored.
 */
static void protect_partners(void)
{
	struct cowbuf_unmap_run run = { };
	struct cowbuf_scan_partner *p;
	struct page *page;
	int i;

	for (i = 0; i < scan_partners_len; i++) {
		p = &scan_partners[i];
		xa_lock(&p->region->slots);
		page = xa_load(&p->region->slots, p->pgoff);
		if (page) {
			spin_lock(&scanner_refs_lock);
			get_page(page);
			p->page = page;
			spin_unlock(&scanner_refs_lock);
		}
		xa_unlock(&p->region->slots);
		if (!page)
			continue;
		cowbuf_hash_invalidate(p->region, p->pgoff);
		if (slot_clear_marks(p->region, p->pgoff, page, true, false))
			unmap_run_add(&run, p->region, p->pgoff);
	}
	unmap_run_flush(&run);
	spin_lock(&scanner_refs_lock);
	for (i = 0; i < scan_partners_len; i++)
		if (scan_partners[i].page)
			put_page(scan_partners[i].page);
	scan_partners_len = 0;
	spin_unlock(&scanner_refs_lock);
}

/*
 * Whether the written slot @s, the chunk's @i-th, is worth write-protecting
 * now: its bytes might merge (all zero, or a stable frame, a candidate or
 * another slot of the chunk has its hash), or it did not change since the
 * previous pass (protected, it will not be hashed again until written).
 * Otherwise it joins the candidates as it is, writable, and is protected
 * only if a later page matches it (note_partner()).
 *
 * Its lookup is the one merge_candidate() would make, which then uses it
 * (@s->looked): only the scanner changes the table, and the entries that
 * the merges of the chunk's earlier slots add are under those slots' own
 * hashes. So unless another slot of the chunk has this one's hash (then
 * merge_candidate() looks again), the entries found are all there is, and
 * they stay unless an entry leaves the table or changes kind meanwhile
 * (cowbuf_table_gen; a slot hashed as zero but found written gets another
 * hash, and a pinned partner left writable is dropped): then
 * merge_candidate() looks again rather than use an entry that may be gone.
 */
static bool worth_protecting(struct cowbuf_region *region, struct cowbuf_scan_slot *s,
			     int i, int n)
{
	struct cowbuf_match *m = &s->match;
	int j;

	if (s->hash == zero_hash || (s->has_stored && s->hash == s->stored))
		return true;
	for (j = 0; j < n; j++)
		if (j != i && scan_chunk[j].hash == s->hash && !scan_chunk[j].out)
			return true;
	cowbuf_table_lookup(region, s->pgoff, s->page, s->hash, m);
	s->looked = true;
	s->gen = cowbuf_table_gen;
	if (m->partner)
		note_partner(m->partner);
	return m->nr_targets > 0 || m->partner;
}

/*
 * Scan up to @limit committed slots of [@start, @end) of @region (map_lock
 * held for read). Written slots are hashed; those worth merging (or kept
 * out by back-off, which must see whether they settle) are write-protected,
 * those mapped by an unmap per run of nearby slots: from then on no write
 * goes unseen, so they are candidates at once. The others become candidates
 * as they are, for later pages to match. Merged slots whose old frame was
 * mapped again meanwhile (a read fault) lose those mappings the same way.
 * *@next gets where to continue. Return: slots scanned.
 */
static unsigned long merge_scan_chunk(struct cowbuf_region *region, pgoff_t start,
				      pgoff_t end, unsigned long limit, pgoff_t *next,
				      unsigned long *merged)
{
	struct cowbuf_unmap_run run = { };
	struct cowbuf_scan_slot *s;
	unsigned long next_index;
	bool mapped, candidate;
	int n, i;

	n = scan_collect(region, start, end - 1, min_t(unsigned long, limit, INT_MAX),
			 &next_index);
	*next = next_index;
	atomic_long_add(n, &cowbuf_merge_stats.pages_scanned);

	for (i = 0; i < n; i++) {
		s = &scan_chunk[i];
		s->has_stored = cowbuf_hash_load(region, s->pgoff, &s->stored, &candidate);
		if (!s->has_stored)
			s->rehash = true;
		if (s->rehash) {
			s->hash = page_hash(s->page);
			if (s->has_stored && s->hash != s->stored)
				atomic_long_inc(&cowbuf_merge_stats.pages_volatile);
		} else {
			s->hash = s->stored;
		}
		s->out = cowbuf_merge_backoff(region, s->pgoff, s->broken, s->rehash);
		/* Written, or kept out: its entry goes, a new one may come. */
		if (candidate && (s->rehash || s->out))
			cowbuf_candidate_forget(region, s->pgoff, s->stored);
	}
	for (i = 0; i < n; i++) {
		s = &scan_chunk[i];
		s->looked = false;
		s->protect = s->rehash && (s->out || worth_protecting(region, s, i, n));
		mapped = false;
		if (s->protect || s->broken)
			mapped = slot_clear_marks(region, s->pgoff, s->page, s->protect, s->broken);
		if (s->rehash)
			cowbuf_hash_store(region, s->pgoff, s->hash);
		if (s->protect && mapped)
			unmap_run_add(&run, region, s->pgoff);
		else if (page_mapped(s->page))
			/* A mapped slot not asked for ends the run: not taken along. */
			unmap_run_flush(&run);
	}
	unmap_run_flush(&run);
	protect_partners();

	for (i = 0; i < n; i++) {
		s = &scan_chunk[i];
		if (s->out) {
			atomic_long_inc(&cowbuf_merge_stats.pages_backoff);
		} else if (merge_candidate(region, s)) {
			/*
			 * A merge marks the slot (scan_slot_merged()). A frame
			 * no page table maps now is mapped by no fault again:
			 * they find the slot's new frame.
			 */
			(*merged)++;
			if (page_mapped(s->page))
				unmap_run_add(&run, region, s->pgoff);
		}
		cond_resched();
	}
	unmap_run_flush(&run);
	scan_release();
	return n;
}

/**
 * cowbuf_merge_scan() - scan part of a mergeable range of a region
 * @region: the region
 * @start: first page offset to look at
 * @end: page offset after the range
 * @budget: most pages to scan
 * @next: gets the page offset to continue from
 * @merged: incremented by the slots merged
 *
 * Called by cowbufd with cowbuf_merge_mutex held, which must not wait for
 * a region's map_lock: a COMMIT or SEND of many slots may hold it a while.
 *
 * Return: pages scanned, or -EBUSY if the region's map_lock was taken (then
 * nothing was done).
 */
long cowbuf_merge_scan(struct cowbuf_region *region, pgoff_t start, pgoff_t end,
		       unsigned long budget, pgoff_t *next, unsigned long *merged)
{
	unsigned int across = READ_ONCE(cowbuf_merge_knobs.merge_across_users);
	struct mem_cgroup *old_memcg;
	unsigned int hash_only;
	unsigned long n;

	/*
	 * Candidates look each other up once, when added: a change of who may
	 * merge with whom starts them over.
	 */
	if (across != candidates_across) {
		cowbuf_candidates_remove_all();
		candidates_across = across;
	}
	if (!down_read_trylock(&region->map_lock))
		return -EBUSY;
	/*
	 * What the scan allocates for the region (hash blocks, table entries,
	 * back-off records) is charged to the region's memory cgroup: cowbufd
	 * has none of its own.
	 */
	old_memcg = set_active_memcg(region->merge_memcg);
	hash_only = READ_ONCE(cowbuf_merge_knobs.hash_only);
	if (hash_only)
		n = merge_hash_chunk(region, start, end, budget, hash_only == 2, next);
	else if (region->order)
		n = merge_scan_huge(region, start, end, next);
	else
		n = merge_scan_chunk(region, start, end, budget, next, merged);
	set_active_memcg(old_memcg);
	up_read(&region->map_lock);
	return n;
}

/**
 * cowbuf_merge_end_pass() - a full pass ended
 *
 * Drops the stable frames no longer shared and this pass's candidates,
 * publishes the pass's counts, and advances the back-off clock.
 */
void cowbuf_merge_end_pass(void)
{
	struct cowbuf_merge_stats *st = &cowbuf_merge_stats;

	lockdep_assert_held(&cowbuf_merge_mutex);
	atomic_long_set(&st->last_unshared, atomic_long_read(&st->pages_unshared));
	atomic_long_set(&st->last_volatile, atomic_long_xchg(&st->pages_volatile, 0));
	atomic_long_set(&st->last_backoff, atomic_long_xchg(&st->pages_backoff, 0));
	cowbuf_merge_table_end_pass();
	atomic_long_inc(&st->full_scans);
}

/**
 * cowbuf_merge_init() - the table, the cowbufd kthread, the sysfs files
 * @kobj: /sys/kernel/mm/cowbuf, where the knobs and counters go
 *
 * Return: 0 or a negative errno.
 */
int cowbuf_merge_init(struct kobject *kobj)
{
	int ret;

	zero_hash = page_hash(ZERO_PAGE(0));
	ret = cowbuf_merge_table_init();
	if (ret)
		return ret;
	ret = cowbufd_start();
	if (ret)
		goto err_destroy_table;
	ret = cowbuf_merge_sysfs_init(kobj);
	if (ret)
		goto err_stop_thread;
	cowbuf_merge_debugfs_init();
	return 0;

err_stop_thread:
	cowbufd_stop();
err_destroy_table:
	cowbuf_merge_table_exit();
	return ret;
}

/**
 * cowbuf_merge_exit() - remove the debugfs and sysfs files, stop cowbufd, free
 *	the table
 * @kobj: /sys/kernel/mm/cowbuf
 *
 * No region exists any more: each pins the module.
 */
void cowbuf_merge_exit(struct kobject *kobj)
{
	cowbuf_merge_debugfs_exit();
	cowbuf_merge_sysfs_exit(kobj);
	cowbufd_stop();
	cowbuf_merge_table_exit();
}
