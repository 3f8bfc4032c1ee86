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
 * copy-on-write, as KSM does for MADV_MERGEABLE anonymous memory, with two
 * differences that cowbuf's ownership of its memory allows:
 *
 * - Write tracking instead of rehashing. Every first write to a frame goes
 *   through .page_mkwrite, which marks its slot COWBUF_SLOT_DIRTY. The
 *   scanner clears the mark, removes the slot's mappings (so the next write
 *   faults and marks it again) and hashes the frame (xxh64). A clean slot
 *   was not written since, so its stored hash is still exact: it is not read
 *   again. A dirty slot whose new hash equals the stored one has not changed
 *   since the previous pass; any other dirty slot is volatile and waits for
 *   the next pass. So a page becomes a candidate only when its hash is
 *   unchanged since the previous pass, and unchanged pages are not rehashed.
 *
 * - Hash tables instead of content trees. Candidates are looked up by hash
 *   in two rhltables: the stable table of merged frames and the unstable
 *   table of this pass's candidates (emptied after every full scan). A hash
 *   match merges only after a full memcmp() of both frames, with both locked,
 *   both slots found clean (no writable mapping) and neither frame pinned.
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

#include <linux/freezer.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/xxhash.h>

#include <linux/cowbuf.h>

#include "cowbuf.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/* Slots handled per hold of a region's map_lock. */
#define COWBUF_SCAN_CHUNK	32

/* Stable frames with a candidate's hash tried before giving up on them. */
#define COWBUF_STABLE_TRIES	4

/* What merge_into_stable() did. */
enum { NOT_MERGED, MERGED_NOW, ALREADY_STABLE };

/**
 * struct cowbuf_merge_range - pages [@start, @end) of a region may merge
 * @node: link in cowbuf_region.merge_ranges
 * @start: first page offset
 * @end: page offset after the last
 */
struct cowbuf_merge_range {
	struct list_head node;
	pgoff_t start;
	pgoff_t end;
};

/**
 * struct cowbuf_merge_node - an entry of the stable or the unstable table
 * @hnode: link in the table, keyed by @hash
 * @list: link in the list of all entries of the same table
 * @hash: the frame's hash (62 bits of xxh64)
 * @uid: the trust domain: owner of the region(s) the frame belongs to
 * @page: stable: the merged frame, with a reference held by the table
 * @region: unstable: the region holding the candidate
 * @pgoff: unstable: the candidate's slot
 *
 * All fields are written by the scanner only, under cowbuf_merge_mutex.
 */
struct cowbuf_merge_node {
	struct rhlist_head hnode;
	struct list_head list;
	unsigned long hash;
	kuid_t uid;
	struct page *page;
	struct cowbuf_region *region;
	pgoff_t pgoff;
};

static const struct rhashtable_params cowbuf_merge_params = {
	.head_offset = offsetof(struct cowbuf_merge_node, hnode),
	.key_offset = offsetof(struct cowbuf_merge_node, hash),
	.key_len = sizeof(unsigned long),
	.automatic_shrinking = true,
};

/*
 * The scanner's state. cowbuf_merge_mutex protects the tables, the lists,
 * the cursor and every region's merge_node and merge_ranges.
 */
static DEFINE_MUTEX(cowbuf_merge_mutex);
static struct rhltable cowbuf_stable;
static struct rhltable cowbuf_unstable;
static LIST_HEAD(cowbuf_stable_list);
static LIST_HEAD(cowbuf_unstable_list);
static LIST_HEAD(cowbuf_merge_regions);
static struct cowbuf_region *cursor_region;
static pgoff_t cursor_pgoff;
static unsigned long zero_hash;

static struct task_struct *cowbufd;
static DECLARE_WAIT_QUEUE_HEAD(cowbuf_merge_wait);
/* Bumped by every knob change, to cut the scanner's sleep short. */
static atomic_t cowbuf_knob_seq = ATOMIC_INIT(0);
static atomic_t cowbuf_nr_mergeable = ATOMIC_INIT(0);

/* Tunables, /sys/kernel/mm/cowbuf/. */
static unsigned int merge_run;
static unsigned int pages_to_scan = 100;
static unsigned int sleep_millisecs = 20;
static unsigned int max_page_sharing = 256;
static unsigned int merge_across_users;

/* Counters, /sys/kernel/mm/cowbuf/. */
atomic_long_t cowbuf_nr_cow_breaks = ATOMIC_LONG_INIT(0);
static atomic_long_t nr_pages_scanned = ATOMIC_LONG_INIT(0);
static atomic_long_t nr_full_scans = ATOMIC_LONG_INIT(0);
static atomic_long_t nr_zero_pages = ATOMIC_LONG_INIT(0);
/* Running counts of the pass in progress, and those of the last full pass. */
static atomic_long_t nr_pages_volatile = ATOMIC_LONG_INIT(0);
static atomic_long_t nr_pages_unshared = ATOMIC_LONG_INIT(0);
static atomic_long_t last_pages_volatile = ATOMIC_LONG_INIT(0);
static atomic_long_t last_pages_unshared = ATOMIC_LONG_INIT(0);

/*
 * xxh64 of the whole frame. Hashing one word per cache line instead (512
 * bytes) measured no faster in make bench (256 MiB converged in 0.30-0.36 s
 * either way, stock lane), and the whole-page hash keeps unrelated frames
 * out of each other's hash chains.
 */
static unsigned long page_hash(struct page *page)
{
	void *addr = kmap_local_page(page);
	unsigned long hash = xxh64(addr, PAGE_SIZE, 0) >> 2;

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

static bool same_domain(kuid_t a, kuid_t b)
{
	return READ_ONCE(merge_across_users) || uid_eq(a, b);
}

/**
 * struct cowbuf_scan_slot - a slot taken into a scan chunk
 * @pgoff: its page offset
 * @page: its frame, with a reference of the scanner's
 * @hash: the frame's hash, once known
 * @stored: the hash stored for the slot by an earlier pass
 * @rehash: the slot was written (or never hashed): hash it again
 * @has_stored: @stored is valid
 * @merged: the slot no longer holds @page: unmap, then drop its reference
 */
struct cowbuf_scan_slot {
	pgoff_t pgoff;
	struct page *page;
	unsigned long hash;
	unsigned long stored;
	bool rehash;
	bool has_stored;
	bool merged;
};

/*
 * The chunk being scanned, and its length while candidates are processed
 * (cowbuf_merge_mutex held: there is one scanner). Not on the stack: too big.
 * @scan_other is the frame of the other candidate merge_with_unstable() is
 * looking at, which the scanner holds a reference to, or NULL.
 *
 * scanner_refs_lock (innermost) makes the references the scanner holds for a
 * moment visible to cowbuf_merge_other_refs(): every get_page() and
 * put_page() of those references, and every change of @scan_chunk_len, of a
 * slot's @merged and of @scan_other, happens under it, together with the
 * record of the reference.
 */
static struct cowbuf_scan_slot scan_chunk[COWBUF_SCAN_CHUNK];
static int scan_chunk_len;
static struct page *scan_other;
static DEFINE_SPINLOCK(scanner_refs_lock);

/*
 * References the scanner itself holds to @page (scanner_refs_lock held):
 * one per slot of the chunk that had it, plus the slot's own, not yet
 * dropped, where that slot has been merged away from it, plus the other
 * candidate's.
 */
static int scanner_refs(struct page *page)
{
	int i, refs = 0;

	lockdep_assert_held(&scanner_refs_lock);
	for (i = 0; i < scan_chunk_len; i++) {
		if (scan_chunk[i].page != page)
			continue;
		refs += scan_chunk[i].merged ? 2 : 1;
	}
	if (scan_other == page)
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
 * Point the slot @pgoff of @region, holding @page (locked, clean), at
 * @target (locked), which gains a share; @page loses the slot's share.
 * Unlocks both. The caller removes the slot's mappings and then drops the
 * slot's reference to @page (merge_scan_chunk() does both once per chunk):
 * until then a stale read-only entry maps @page, whose bytes are @target's.
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

static struct cowbuf_merge_node *node_alloc(unsigned long hash, kuid_t uid)
{
	struct cowbuf_merge_node *node = kzalloc(sizeof(*node), GFP_KERNEL);

	if (node) {
		node->hash = hash;
		node->uid = uid;
	}
	return node;
}

static void stable_remove(struct cowbuf_merge_node *node)
{
	rhltable_remove(&cowbuf_stable, &node->hnode, cowbuf_merge_params);
	list_del(&node->list);
	lock_page(node->page);
	cowbuf_frame_set_stable_locked(node->page, false);
	unlock_page(node->page);
	put_page(node->page);
	kfree(node);
}

static void unstable_remove(struct cowbuf_merge_node *node)
{
	rhltable_remove(&cowbuf_unstable, &node->hnode, cowbuf_merge_params);
	list_del(&node->list);
	kfree(node);
	atomic_long_dec(&nr_pages_unshared);
}

/*
 * Try to merge the candidate (slot @pgoff of @region, frame @page, which we
 * hold a reference to) into a stable frame with the same hash.
 * Return: MERGED_NOW, ALREADY_STABLE (it is a merged frame itself) or
 * NOT_MERGED.
 */
static int merge_into_stable(struct cowbuf_region *region, pgoff_t pgoff,
			     struct page *page, unsigned long hash)
{
	struct page *targets[COWBUF_STABLE_TRIES];
	struct cowbuf_merge_node *node;
	struct rhlist_head *list, *pos;
	int nr = 0, i;

	rcu_read_lock();
	list = rhltable_lookup(&cowbuf_stable, &hash, cowbuf_merge_params);
	rhl_for_each_entry_rcu(node, pos, list, hnode) {
		if (node->page == page) {
			rcu_read_unlock();
			return ALREADY_STABLE;
		}
		if (nr < COWBUF_STABLE_TRIES && same_domain(node->uid, region->user->uid))
			targets[nr++] = node->page;
	}
	rcu_read_unlock();

	/* The table's references keep the targets; only we remove nodes. */
	for (i = 0; i < nr; i++) {
		lock_page(page);
		if (!slot_clean(region, pgoff, page) ||
		    cowbuf_frame_pinned(page)) {
			unlock_page(page);
			return NOT_MERGED;
		}
		if (!trylock_page(targets[i])) {
			unlock_page(page);
			continue;
		}
		/* A frame with one sharer left may be written in place. */
		if (cowbuf_frame_sharers(targets[i]) < 2 ||
		    cowbuf_frame_sharers(targets[i]) >= READ_ONCE(max_page_sharing) ||
		    !pages_equal(page, targets[i])) {
			unlock_page(targets[i]);
			unlock_page(page);
			continue;
		}
		merge_slot(region, pgoff, page, targets[i]);
		trace_cowbuf_merge(region, pgoff, "stable");
		return MERGED_NOW;
	}
	return NOT_MERGED;
}

/*
 * Try to merge the candidate with a candidate of this pass with the same
 * hash; the other frame becomes a stable frame. Otherwise the candidate
 * joins the unstable table. Return: true if merged.
 */
static bool merge_with_unstable(struct cowbuf_region *region, pgoff_t pgoff,
				struct page *page, unsigned long hash)
{
	struct cowbuf_merge_node *node, *found = NULL, *stable;
	struct rhlist_head *list, *pos;
	struct cowbuf_region *other;
	struct page *target;

	rcu_read_lock();
	list = rhltable_lookup(&cowbuf_unstable, &hash, cowbuf_merge_params);
	rhl_for_each_entry_rcu(node, pos, list, hnode) {
		if ((node->region != region || node->pgoff != pgoff) &&
		    same_domain(node->uid, region->user->uid)) {
			found = node;
			break;
		}
	}
	rcu_read_unlock();

	if (!found) {
		node = node_alloc(hash, region->user->uid);
		if (!node)
			return false;
		node->region = region;
		node->pgoff = pgoff;
		if (rhltable_insert(&cowbuf_unstable, &node->hnode, cowbuf_merge_params)) {
			kfree(node);
			return false;
		}
		list_add_tail(&node->list, &cowbuf_unstable_list);
		atomic_long_inc(&nr_pages_unshared);
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

	stable = node_alloc(hash, region->user->uid);
	if (!stable)
		goto out_put;
	lock_page(page);
	if (!slot_clean(region, pgoff, page) || cowbuf_frame_pinned(page))
		goto out_unlock;
	if (!trylock_page(target))
		goto out_unlock;
	/* The other slot must not have been written since it was hashed. */
	if (!slot_clean(other, found->pgoff, target) ||
	    cowbuf_frame_pinned(target) ||
	    cowbuf_frame_sharers(target) >= READ_ONCE(max_page_sharing) ||
	    !pages_equal(page, target)) {
		unlock_page(target);
		goto out_unlock;
	}
	/* @target is about to be shared: it moves to the stable table. */
	stable->page = target;
	if (rhltable_insert(&cowbuf_stable, &stable->hnode, cowbuf_merge_params)) {
		unlock_page(target);
		goto out_unlock;
	}
	list_add_tail(&stable->list, &cowbuf_stable_list);
	/* Our reference becomes the table's. */
	spin_lock(&scanner_refs_lock);
	cowbuf_frame_set_stable_locked(target, true);
	scan_other = NULL;
	spin_unlock(&scanner_refs_lock);
	merge_slot(region, pgoff, page, target);
	trace_cowbuf_merge(region, pgoff, "unstable");
	unstable_remove(found);
	return true;

out_unlock:
	unlock_page(page);
	kfree(stable);
out_put:
	scan_other_put();
	return false;
out_put_stale:
	scan_other_put();
out_stale:
	unstable_remove(found);
	return false;
}

/*
 * An all-zero candidate in slot @index: empty the slot, which reads as zero
 * from now on. Like merge_slot(), leaves the unmap and the slot's reference
 * to the caller. Return: true if the slot was emptied.
 */
static bool merge_zero(struct cowbuf_region *region, pgoff_t index,
		       struct page *page)
{
	unsigned long nr = 1UL << region->order;

	lock_page(page);
	if (!slot_clean(region, index, page) || cowbuf_frame_pinned(page) ||
	    !cowbuf_frame_is_zero(page)) {
		unlock_page(page);
		return false;
	}
	xa_erase(&region->slots, index);
	cowbuf_frame_unshare_locked(page);
	scan_slot_merged(index);
	unlock_page(page);
	cowbuf_region_uncharge(region, nr);
	atomic_long_add(nr, &region->zero_pages);
	atomic_long_add(nr, &nr_zero_pages);
	trace_cowbuf_merge(region, index << region->order, "zero");
	return true;
}

/*
 * Look at the first committed slot of [@start, @end) (page offsets) of the
 * huge region @region (map_lock held for read): if it was written since,
 * write-protect it and release it if all zero. *@next gets where to
 * continue. Return: pages scanned, those of a frame read or one for a
 * frame skipped.
 */
static int merge_scan_huge(struct cowbuf_region *region, pgoff_t start,
			   pgoff_t end, pgoff_t *next)
{
	struct cowbuf_scan_slot *s = &scan_chunk[0];
	unsigned int order = region->order;
	XA_STATE(xas, &region->slots, start >> order);
	struct page *page;
	bool merged;

	xas_lock(&xas);
	spin_lock(&scanner_refs_lock);
	page = xas_find(&xas, (end >> order) - 1);
	if (page) {
		s->pgoff = xas.xa_index;
		s->page = page;
		s->rehash = xas_get_mark(&xas, COWBUF_SLOT_DIRTY);
		s->merged = false;
		get_page(page);
		scan_chunk_len = 1;
	}
	spin_unlock(&scanner_refs_lock);
	xas_unlock(&xas);
	if (!page) {
		*next = end;
		return 0;
	}
	*next = (s->pgoff + 1) << order;

	merged = false;
	if (s->rehash) {
		/* As merge_scan_chunk(): clear the mark, then write-protect. */
		lock_page(page);
		if (xa_load(&region->slots, s->pgoff) == page)
			xa_clear_mark(&region->slots, s->pgoff, COWBUF_SLOT_DIRTY);
		unlock_page(page);
		cowbuf_region_unmap(region, s->pgoff, 1);
		merged = merge_zero(region, s->pgoff, page);
		if (merged)
			cowbuf_region_unmap(region, s->pgoff, 1);
	}
	spin_lock(&scanner_refs_lock);
	if (merged)
		put_page(page);		/* the slot's reference */
	put_page(page);			/* ours */
	scan_chunk_len = 0;
	spin_unlock(&scanner_refs_lock);
	return s->rehash ? 1 << order : 1;
}

/*
 * Try to merge one candidate. Return: true if this merged it, and so left
 * the slot's reference to @s->page to the caller.
 */
static bool merge_candidate(struct cowbuf_region *region, struct cowbuf_scan_slot *s)
{
	int ret;

	if (s->hash == zero_hash && merge_zero(region, s->pgoff, s->page))
		return true;
	ret = merge_into_stable(region, s->pgoff, s->page, s->hash);
	if (ret != NOT_MERGED)
		return ret == MERGED_NOW;
	return merge_with_unstable(region, s->pgoff, s->page, s->hash);
}

/*
 * Scan up to @limit committed slots of [@start, @end) of @region (map_lock
 * held for read). Written slots are write-protected with one unmap for the
 * chunk and hashed; the mappings of merged slots are removed with one more.
 * *@next gets where to continue. Return: slots scanned.
 */
static int merge_scan_chunk(struct cowbuf_region *region, pgoff_t start,
			    pgoff_t end, int limit, pgoff_t *next,
			    unsigned long *merged)
{
	struct cowbuf_scan_slot *slots = scan_chunk;
	pgoff_t wp_first = ULONG_MAX, wp_last = 0, m_first = ULONG_MAX, m_last = 0;
	XA_STATE(xas, &region->slots, start);
	struct cowbuf_scan_slot *s;
	struct page *page;
	int n = 0, i;
	void *entry;

	limit = min(limit, COWBUF_SCAN_CHUNK);
	/* The slots' references cannot go while we take ours under xa_lock. */
	xas_lock(&xas);
	spin_lock(&scanner_refs_lock);
	xas_for_each(&xas, page, end - 1) {
		s = &slots[n];
		s->pgoff = xas.xa_index;
		s->page = page;
		s->rehash = xas_get_mark(&xas, COWBUF_SLOT_DIRTY);
		s->merged = false;
		get_page(page);
		if (++n == limit)
			break;
	}
	scan_chunk_len = n;
	spin_unlock(&scanner_refs_lock);
	xas_unlock(&xas);
	*next = n == limit ? slots[n - 1].pgoff + 1 : end;
	atomic_long_add(n, &nr_pages_scanned);

	/*
	 * Clear the dirty marks, then write-protect: a write that got in
	 * before a mark was cleared loses its mapping, a later one faults and
	 * marks the slot again. The page lock waits for faults still mapping
	 * a frame writable.
	 */
	for (i = 0; i < n; i++) {
		s = &slots[i];
		entry = xa_load(&region->hashes, s->pgoff);
		s->has_stored = xa_is_value(entry);
		s->stored = s->has_stored ? xa_to_value(entry) : 0;
		if (!s->has_stored)
			s->rehash = true;
		if (!s->rehash)
			continue;
		lock_page(s->page);
		if (xa_load(&region->slots, s->pgoff) == s->page)
			xa_clear_mark(&region->slots, s->pgoff, COWBUF_SLOT_DIRTY);
		unlock_page(s->page);
		wp_first = min(wp_first, s->pgoff);
		wp_last = max(wp_last, s->pgoff);
	}
	if (wp_first != ULONG_MAX)
		cowbuf_region_unmap(region, wp_first, wp_last - wp_first + 1);

	for (i = 0; i < n; i++) {
		s = &slots[i];
		if (s->rehash) {
			s->hash = page_hash(s->page);
			xa_store(&region->hashes, s->pgoff, xa_mk_value(s->hash),
				 GFP_KERNEL);
			/* Changed since the previous pass: not a candidate yet. */
			if (!s->has_stored || s->hash != s->stored) {
				atomic_long_inc(&nr_pages_volatile);
				cond_resched();
				continue;
			}
		} else {
			s->hash = s->stored;
		}
		/* A merge marks the slot (scan_slot_merged()). */
		if (merge_candidate(region, s)) {
			(*merged)++;
			m_first = min(m_first, s->pgoff);
			m_last = max(m_last, s->pgoff);
		}
		cond_resched();
	}

	if (m_first != ULONG_MAX)
		cowbuf_region_unmap(region, m_first, m_last - m_first + 1);
	spin_lock(&scanner_refs_lock);
	for (i = 0; i < n; i++) {
		if (slots[i].merged)
			put_page(slots[i].page);	/* the slot's reference */
		put_page(slots[i].page);		/* ours */
	}
	scan_chunk_len = 0;
	spin_unlock(&scanner_refs_lock);
	return n;
}

/* Drop stable frames no longer shared and this pass's candidates. */
static void merge_end_full_scan(void)
{
	struct cowbuf_merge_node *node, *next;

	atomic_long_set(&last_pages_unshared, atomic_long_read(&nr_pages_unshared));
	atomic_long_set(&last_pages_volatile, atomic_long_read(&nr_pages_volatile));
	list_for_each_entry_safe(node, next, &cowbuf_stable_list, list) {
		lock_page(node->page);
		if (cowbuf_frame_sharers(node->page) >= 2) {
			unlock_page(node->page);
			continue;
		}
		unlock_page(node->page);
		stable_remove(node);
		cond_resched();
	}
	list_for_each_entry_safe(node, next, &cowbuf_unstable_list, list)
		unstable_remove(node);
	atomic_long_set(&nr_pages_volatile, 0);
	atomic_long_inc(&nr_full_scans);
}

/* The next mergeable page offset >= @pgoff of @region, or ULONG_MAX. */
static pgoff_t next_mergeable(struct cowbuf_region *region, pgoff_t pgoff)
{
	struct cowbuf_merge_range *range;

	list_for_each_entry(range, &region->merge_ranges, node) {
		if (pgoff < range->end)
			return max(pgoff, range->start);
	}
	return ULONG_MAX;
}

/* Scan up to pages_to_scan committed slots from the cursor. */
static void merge_scan_batch(void)
{
	unsigned long budget = READ_ONCE(pages_to_scan), scanned = 0, merged = 0;
	unsigned long volatile_before = atomic_long_read(&nr_pages_volatile);
	struct cowbuf_merge_range *range;
	struct cowbuf_region *region;
	pgoff_t start, end;
	int n;

	while (scanned < budget) {
		if (!cursor_region) {
			if (list_empty(&cowbuf_merge_regions))
				break;
			cursor_region = list_first_entry(&cowbuf_merge_regions,
							 struct cowbuf_region, merge_node);
			cursor_pgoff = 0;
		}
		region = cursor_region;
		start = next_mergeable(region, cursor_pgoff);
		if (start == ULONG_MAX) {
			/*
			 * Next region; past the last, a full scan ended. The
			 * batch ends with it: the next pass comes after the
			 * sleep, or a page could look unwritten for no longer
			 * than the scanner takes to come round again.
			 */
			if (list_is_last(&region->merge_node, &cowbuf_merge_regions)) {
				cursor_region = NULL;
				merge_end_full_scan();
				break;
			}
			cursor_region = list_next_entry(region, merge_node);
			cursor_pgoff = 0;
			continue;
		}
		end = start + 1;
		list_for_each_entry(range, &region->merge_ranges, node)
			if (start >= range->start && start < range->end)
				end = range->end;

		down_read(&region->map_lock);
		if (region->order) {
			n = merge_scan_huge(region, start, end, &cursor_pgoff);
			atomic_long_add(n, &nr_pages_scanned);
			scanned += n;
		} else {
			scanned += merge_scan_chunk(region, start, end,
						    budget - scanned,
						    &cursor_pgoff, &merged);
		}
		up_read(&region->map_lock);
		cond_resched();
	}
	trace_cowbuf_scan_batch(scanned, merged,
				atomic_long_read(&nr_pages_volatile) - volatile_before,
				atomic_long_read(&nr_full_scans));
}

static bool merge_should_run(void)
{
	return READ_ONCE(merge_run) == 1 && atomic_read(&cowbuf_nr_mergeable);
}

/* Whether to cut a sleep short: stopping, or a knob changed since @seq. */
static bool knob_changed(int seq)
{
	return kthread_should_stop() || atomic_read(&cowbuf_knob_seq) != seq;
}

static int cowbufd_fn(void *unused)
{
	int seq;

	set_freezable();
	set_user_nice(current, 5);
	while (!kthread_should_stop()) {
		seq = atomic_read(&cowbuf_knob_seq);
		mutex_lock(&cowbuf_merge_mutex);
		if (merge_should_run())
			merge_scan_batch();
		mutex_unlock(&cowbuf_merge_mutex);
		try_to_freeze();

		if (merge_should_run()) {
			unsigned int ms = READ_ONCE(sleep_millisecs);

			if (ms)
				wait_event_freezable_timeout(cowbuf_merge_wait,
							     knob_changed(seq),
							     msecs_to_jiffies(ms));
			else
				cond_resched();
		} else {
			wait_event_freezable(cowbuf_merge_wait,
					     kthread_should_stop() || merge_should_run());
		}
	}
	return 0;
}

/*
 * Give every slot of the pages [first, first + nr) whose frame is shared a
 * private copy (map_lock held for write). Return: 0 or -ENOMEM, with the
 * slots done so far unmerged.
 */
static int region_unmerge(struct cowbuf_region *region, pgoff_t first,
			  unsigned long nr)
{
	pgoff_t last = (first + nr - 1) >> region->order;
	struct page *page, *copy;
	unsigned long index;
	int ret = 0;

	xa_for_each_range(&region->slots, index, page, first >> region->order, last) {
		lock_page(page);
		if (cowbuf_frame_sharers(page) < 2) {
			unlock_page(page);
			continue;
		}
		copy = cowbuf_frame_dup(page);
		if (!copy) {
			unlock_page(page);
			ret = -ENOMEM;
			break;
		}
		xa_store(&region->slots, index, copy, GFP_NOWAIT);
		xa_set_mark(&region->slots, index, COWBUF_SLOT_DIRTY);
		cowbuf_frame_unshare_locked(page);
		unlock_page(page);
		/* No fault runs under map_lock (write): unmap, then release. */
		cowbuf_region_unmap(region, index, 1);
		put_page(page);
		cond_resched();
	}
	return ret;
}

/* Forget the region's candidates in the unstable table. */
static void merge_forget_region(struct cowbuf_region *region)
{
	struct cowbuf_merge_node *node, *next;

	list_for_each_entry_safe(node, next, &cowbuf_unstable_list, list)
		if (node->region == region)
			unstable_remove(node);
	if (cursor_region == region) {
		cursor_region = list_is_last(&region->merge_node, &cowbuf_merge_regions) ?
				NULL : list_next_entry(region, merge_node);
		cursor_pgoff = 0;
	}
	list_del_init(&region->merge_node);
	atomic_dec(&cowbuf_nr_mergeable);
}

/* Add [start, end) to the region's ranges, keeping them sorted, disjoint. */
static int ranges_add(struct cowbuf_region *region, pgoff_t start, pgoff_t end)
{
	struct cowbuf_merge_range *range, *next, *new;

	new = kmalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;
	new->start = start;
	new->end = end;
	list_for_each_entry_safe(range, next, &region->merge_ranges, node) {
		if (range->end < start)
			continue;
		if (range->start > end) {
			list_add_tail(&new->node, &range->node);
			return 0;
		}
		/* Overlapping or adjacent: absorb it. */
		new->start = min(new->start, range->start);
		new->end = max(new->end, range->end);
		list_del(&range->node);
		kfree(range);
	}
	list_add_tail(&new->node, &region->merge_ranges);
	return 0;
}

/* Remove [start, end) from the region's ranges. */
static int ranges_remove(struct cowbuf_region *region, pgoff_t start, pgoff_t end)
{
	struct cowbuf_merge_range *range, *next, *tail;

	list_for_each_entry_safe(range, next, &region->merge_ranges, node) {
		if (range->end <= start || range->start >= end)
			continue;
		if (range->start < start && range->end > end) {
			/* Split in two. */
			tail = kmalloc(sizeof(*tail), GFP_KERNEL_ACCOUNT);
			if (!tail)
				return -ENOMEM;
			tail->start = end;
			tail->end = range->end;
			range->end = start;
			list_add(&tail->node, &range->node);
			return 0;
		}
		if (range->start < start) {
			range->end = start;
		} else if (range->end > end) {
			range->start = end;
		} else {
			list_del(&range->node);
			kfree(range);
		}
	}
	return 0;
}

static void ranges_free(struct cowbuf_region *region)
{
	struct cowbuf_merge_range *range, *next;

	list_for_each_entry_safe(range, next, &region->merge_ranges, node) {
		list_del(&range->node);
		kfree(range);
	}
}

/**
 * cowbuf_merge_region_init() - set up a new region's merge state
 * @region: the region
 * @mergeable: whether all of it may merge
 *
 * Return: 0 or -ENOMEM.
 */
int cowbuf_merge_region_init(struct cowbuf_region *region, bool mergeable)
{
	int ret = 0;

	INIT_LIST_HEAD(&region->merge_node);
	INIT_LIST_HEAD(&region->merge_ranges);
	xa_init(&region->hashes);
	atomic_long_set(&region->zero_pages, 0);
	atomic_long_set(&region->cow_breaks, 0);
	if (!mergeable)
		return 0;
	mutex_lock(&cowbuf_merge_mutex);
	ret = ranges_add(region, 0, region->nr_pages);
	if (!ret) {
		list_add_tail(&region->merge_node, &cowbuf_merge_regions);
		atomic_inc(&cowbuf_nr_mergeable);
	}
	mutex_unlock(&cowbuf_merge_mutex);
	wake_up_interruptible(&cowbuf_merge_wait);
	return ret;
}

/**
 * cowbuf_merge_region_release() - take a region out of merging for good
 * @region: the region, about to be freed
 */
void cowbuf_merge_region_release(struct cowbuf_region *region)
{
	mutex_lock(&cowbuf_merge_mutex);
	if (!list_empty(&region->merge_node))
		merge_forget_region(region);
	ranges_free(region);
	mutex_unlock(&cowbuf_merge_mutex);
	xa_destroy(&region->hashes);
}

/**
 * cowbuf_merge_ioctl() - COWBUF_IOC_MERGE: a range may merge, or not
 * @region: the region
 * @vma: the caller's mapping of the range (mmap_lock held)
 * @first: the range's first page offset
 * @nr: pages in the range
 * @flags: COWBUF_MERGE_ENABLE or COWBUF_MERGE_DISABLE
 *
 * Disabling unmerges the range: every slot whose frame is shared gets a
 * private copy.
 *
 * Return: 0 or -ENOMEM.
 */
long cowbuf_merge_ioctl(struct cowbuf_region *region, struct vm_area_struct *vma,
			pgoff_t first, unsigned long nr, u32 flags)
{
	int ret;

	mutex_lock(&cowbuf_merge_mutex);
	if (flags == COWBUF_MERGE_ENABLE) {
		ret = ranges_add(region, first, first + nr);
		if (!ret && list_empty(&region->merge_node)) {
			list_add_tail(&region->merge_node, &cowbuf_merge_regions);
			atomic_inc(&cowbuf_nr_mergeable);
		}
		mutex_unlock(&cowbuf_merge_mutex);
		wake_up_interruptible(&cowbuf_merge_wait);
		return ret;
	}
	ret = ranges_remove(region, first, first + nr);
	if (!ret && list_empty(&region->merge_ranges) &&
	    !list_empty(&region->merge_node))
		merge_forget_region(region);
	if (!ret) {
		down_write(&region->map_lock);
		ret = region_unmerge(region, first, nr);
		up_write(&region->map_lock);
	}
	mutex_unlock(&cowbuf_merge_mutex);
	return ret;
}

/* run=2: unmerge every mergeable range (cowbuf_merge_mutex held). */
static int merge_unmerge_all(void)
{
	struct cowbuf_merge_range *range;
	struct cowbuf_region *region;
	int ret = 0;

	list_for_each_entry(region, &cowbuf_merge_regions, merge_node) {
		down_write(&region->map_lock);
		list_for_each_entry(range, &region->merge_ranges, node) {
			ret = region_unmerge(region, range->start,
					     range->end - range->start);
			if (ret)
				break;
		}
		up_write(&region->map_lock);
		if (ret)
			break;
	}
	return ret;
}

/**
 * cowbuf_merge_info() - COWBUF_IOC_MERGE_INFO
 * @region: the region
 * @uarg: userspace pointer to a struct cowbuf_merge_info
 *
 * Return: 0, -EFAULT or -EINVAL.
 */
long cowbuf_merge_info(struct cowbuf_region *region, void __user *uarg)
{
	struct cowbuf_merge_range *range;
	struct cowbuf_merge_info info;
	unsigned long index;
	struct page *page;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.flags || info.pad)
		return -EINVAL;
	info.mergeable_pages = 0;
	mutex_lock(&cowbuf_merge_mutex);
	list_for_each_entry(range, &region->merge_ranges, node)
		info.mergeable_pages += range->end - range->start;
	mutex_unlock(&cowbuf_merge_mutex);
	info.shared_pages = 0;
	down_read(&region->map_lock);
	xa_for_each(&region->slots, index, page) {
		/* A snapshot: the count may change as soon as it is read. */
		if (cowbuf_frame_sharers_racy(page) >= 2)
			info.shared_pages += 1UL << region->order;
	}
	up_read(&region->map_lock);
	info.zero_pages = atomic_long_read(&region->zero_pages);
	info.cow_breaks = atomic_long_read(&region->cow_breaks);
	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/**
 * cowbuf_merge_show_fdinfo() - the merge lines of a region's fdinfo
 * @m: the seq_file
 * @region: the region
 */
void cowbuf_merge_show_fdinfo(struct seq_file *m, struct cowbuf_region *region)
{
	seq_printf(m, "cowbuf-zero-pages:\t%ld\n", atomic_long_read(&region->zero_pages));
	seq_printf(m, "cowbuf-cow-breaks:\t%ld\n", atomic_long_read(&region->cow_breaks));
}

/* pages_shared and pages_sharing, from the stable table. */
static void stable_counts(unsigned long *shared, unsigned long *sharing)
{
	struct cowbuf_merge_node *node;
	unsigned long sharers;

	*shared = 0;
	*sharing = 0;
	mutex_lock(&cowbuf_merge_mutex);
	list_for_each_entry(node, &cowbuf_stable_list, list) {
		sharers = cowbuf_frame_sharers_racy(node->page);
		if (sharers >= 2) {
			(*shared)++;
			*sharing += sharers - 1;
		}
	}
	mutex_unlock(&cowbuf_merge_mutex);
}

/**
 * struct cowbuf_knob - a tunable in /sys/kernel/mm/cowbuf
 * @attr: the sysfs attribute
 * @val: the variable it sets
 * @min: smallest value accepted
 * @max: largest value accepted
 */
struct cowbuf_knob {
	struct kobj_attribute attr;
	unsigned int *val;
	unsigned int min;
	unsigned int max;
};

static ssize_t knob_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	struct cowbuf_knob *knob = container_of(attr, struct cowbuf_knob, attr);

	return sysfs_emit(buf, "%u\n", READ_ONCE(*knob->val));
}

static ssize_t knob_store(struct kobject *kobj, struct kobj_attribute *attr,
			  const char *buf, size_t count)
{
	struct cowbuf_knob *knob = container_of(attr, struct cowbuf_knob, attr);
	unsigned int val;
	int ret;

	ret = kstrtouint(buf, 10, &val);
	if (ret)
		return ret;
	if (val < knob->min || val > knob->max)
		return -EINVAL;
	WRITE_ONCE(*knob->val, val);
	/* Cut the scanner's sleep short: the new value applies now. */
	atomic_inc(&cowbuf_knob_seq);
	wake_up_interruptible(&cowbuf_merge_wait);
	return count;
}

static struct cowbuf_knob pages_to_scan_knob = {
	.attr = __ATTR(pages_to_scan, 0644, knob_show, knob_store),
	.val = &pages_to_scan,
	.min = 1,
	.max = 1U << 24,
};

static struct cowbuf_knob sleep_millisecs_knob = {
	.attr = __ATTR(sleep_millisecs, 0644, knob_show, knob_store),
	.val = &sleep_millisecs,
	.min = 0,
	.max = 60000,
};

static struct cowbuf_knob max_page_sharing_knob = {
	.attr = __ATTR(max_page_sharing, 0644, knob_show, knob_store),
	.val = &max_page_sharing,
	.min = 2,
	.max = 1U << 20,
};

static struct cowbuf_knob merge_across_users_knob = {
	.attr = __ATTR(merge_across_users, 0644, knob_show, knob_store),
	.val = &merge_across_users,
	.min = 0,
	.max = 1,
};

static ssize_t run_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(merge_run));
}

static ssize_t run_store(struct kobject *kobj, struct kobj_attribute *attr,
			 const char *buf, size_t count)
{
	unsigned int val;
	int ret;

	ret = kstrtouint(buf, 10, &val);
	if (ret)
		return ret;
	if (val > 2)
		return -EINVAL;
	mutex_lock(&cowbuf_merge_mutex);
	WRITE_ONCE(merge_run, val);
	ret = val == 2 ? merge_unmerge_all() : 0;
	mutex_unlock(&cowbuf_merge_mutex);
	atomic_inc(&cowbuf_knob_seq);
	wake_up_interruptible(&cowbuf_merge_wait);
	return ret ? ret : count;
}

static struct kobj_attribute run_attr = __ATTR_RW(run);

#define COWBUF_MERGE_COUNTER(_name, _expr)				\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n", (long)(_expr));			\
}									\
static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

static unsigned long pages_shared_now(void)
{
	unsigned long shared, sharing;

	stable_counts(&shared, &sharing);
	return shared;
}

static unsigned long pages_sharing_now(void)
{
	unsigned long shared, sharing;

	stable_counts(&shared, &sharing);
	return sharing;
}

COWBUF_MERGE_COUNTER(pages_shared, pages_shared_now());
COWBUF_MERGE_COUNTER(pages_sharing, pages_sharing_now());
COWBUF_MERGE_COUNTER(pages_unshared, atomic_long_read(&last_pages_unshared));
COWBUF_MERGE_COUNTER(pages_volatile, atomic_long_read(&last_pages_volatile));
COWBUF_MERGE_COUNTER(full_scans, atomic_long_read(&nr_full_scans));
COWBUF_MERGE_COUNTER(zero_pages, atomic_long_read(&nr_zero_pages));
COWBUF_MERGE_COUNTER(cow_breaks, atomic_long_read(&cowbuf_nr_cow_breaks));
COWBUF_MERGE_COUNTER(pages_scanned, atomic_long_read(&nr_pages_scanned));

static struct attribute *cowbuf_merge_attrs[] = {
	&run_attr.attr,
	&pages_to_scan_knob.attr.attr,
	&sleep_millisecs_knob.attr.attr,
	&max_page_sharing_knob.attr.attr,
	&merge_across_users_knob.attr.attr,
	&pages_shared_attr.attr,
	&pages_sharing_attr.attr,
	&pages_unshared_attr.attr,
	&pages_volatile_attr.attr,
	&full_scans_attr.attr,
	&zero_pages_attr.attr,
	&cow_breaks_attr.attr,
	&pages_scanned_attr.attr,
	NULL,
};

static const struct attribute_group cowbuf_merge_group = {
	.attrs = cowbuf_merge_attrs,
};

/**
 * cowbuf_merge_init() - the tables, the cowbufd kthread, the sysfs files
 * @kobj: /sys/kernel/mm/cowbuf, where the knobs and counters go
 *
 * Return: 0 or a negative errno.
 */
int cowbuf_merge_init(struct kobject *kobj)
{
	struct page *zero = ZERO_PAGE(0);
	int ret;

	zero_hash = page_hash(zero);
	ret = rhltable_init(&cowbuf_stable, &cowbuf_merge_params);
	if (ret)
		return ret;
	ret = rhltable_init(&cowbuf_unstable, &cowbuf_merge_params);
	if (ret)
		goto err_destroy_stable;
	cowbufd = kthread_run(cowbufd_fn, NULL, "cowbufd");
	if (IS_ERR(cowbufd)) {
		ret = PTR_ERR(cowbufd);
		goto err_destroy_unstable;
	}
	ret = sysfs_create_group(kobj, &cowbuf_merge_group);
	if (ret)
		goto err_stop_thread;
	return 0;

err_stop_thread:
	kthread_stop(cowbufd);
err_destroy_unstable:
	rhltable_destroy(&cowbuf_unstable);
err_destroy_stable:
	rhltable_destroy(&cowbuf_stable);
	return ret;
}

/**
 * cowbuf_merge_exit() - remove the sysfs files, stop cowbufd, free the tables
 * @kobj: /sys/kernel/mm/cowbuf
 *
 * No region exists any more: each pins the module.
 */
void cowbuf_merge_exit(struct kobject *kobj)
{
	struct cowbuf_merge_node *node, *next;

	sysfs_remove_group(kobj, &cowbuf_merge_group);
	kthread_stop(cowbufd);
	list_for_each_entry_safe(node, next, &cowbuf_stable_list, list)
		stable_remove(node);
	list_for_each_entry_safe(node, next, &cowbuf_unstable_list, list)
		unstable_remove(node);
	rhltable_destroy(&cowbuf_unstable);
	rhltable_destroy(&cowbuf_stable);
}
