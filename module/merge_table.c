// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the merge table, where cowbufd finds what a frame may merge with.
 *
 * DOC: The merge table
 *
 * One rhltable, keyed by a frame's hash (61 bits of xxh64), holds KSM's two
 * kinds of entries at once: stable entries, frames merged and shared, each
 * holding a reference to its frame, and unstable ones, candidates: slots
 * whose frames matched nothing when they were scanned, write-protected or
 * not, kept from one pass to the next until their slot is written, merged,
 * emptied, or leaves merging. One lookup (cowbuf_table_lookup()) finds both
 * for a frame. A candidate whose partner merges with a later frame becomes
 * the stable entry in place (cowbuf_candidate_make_stable()).
 *
 * Each 4 KiB slot of a mergeable region has a word in the region's hash
 * blocks (cowbuf_region.hashes, a page of words per block): the hash the
 * scanner stored for it and flags saying whether it is valid, whether the
 * slot has a candidate entry, and whether that candidate is to look for
 * stable frames again (the COWBUF_HASH_* flags below).
 *
 * Locking: the table, its lists and the hash words are the scanner's,
 * under cowbuf_merge_mutex (see merge.h), which also serializes the
 * scanner: there is one. The table is looked up under rcu_read_lock() as
 * rhashtable wants, but nobody else reads it, and entries are freed at once.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "cowbuf.h"
#include "merge.h"

/*
 * The key is one word: compared as one. The default, memcmp(), compares it a
 * byte at a time.
 */
static int merge_node_cmp(struct rhashtable_compare_arg *arg, const void *obj)
{
	const struct cowbuf_merge_node *node = obj;

	return node->hash != *(const unsigned long *)arg->key;
}

static const struct rhashtable_params cowbuf_merge_params = {
	.head_offset = offsetof(struct cowbuf_merge_node, hnode),
	.key_offset = offsetof(struct cowbuf_merge_node, hash),
	.key_len = sizeof(unsigned long),
	.obj_cmpfn = merge_node_cmp,
	.automatic_shrinking = true,
};

/*
 * The hash the scanner stored for the page @pgoff of a 4 KiB region, with
 * COWBUF_HASH_STORED set; 0 where none was (hashes are 61 bits).
 * COWBUF_HASH_CANDIDATE is set while the slot has a candidate entry in the
 * table (under that hash): cowbuf_candidate_add() sets it,
 * cowbuf_candidate_remove() clears it, and nothing else adds or removes
 * entries. COWBUF_HASH_RECHECK, on a candidate's word, asks the next pass to
 * look for stable frames for it: set when one may have come that it has not
 * tried (cowbuf_candidate_add(), cowbuf_candidate_make_stable()), cleared
 * when a look finds none.
 */
#define COWBUF_HASH_STORED	BIT(BITS_PER_LONG - 1)
#define COWBUF_HASH_CANDIDATE	BIT(BITS_PER_LONG - 2)
#define COWBUF_HASH_RECHECK	BIT(BITS_PER_LONG - 3)
#define COWBUF_HASH_FLAGS	(COWBUF_HASH_STORED | COWBUF_HASH_CANDIDATE | \
				 COWBUF_HASH_RECHECK)

/*
 * The table and the list of its stable entries; its unstable ones are on
 * their regions' merge_candidates lists, so that a region or a range
 * leaving merging walks its own candidates only.
 */
static struct rhltable cowbuf_merge_table;
static LIST_HEAD(cowbuf_stable_list);

/* The word of @region's hash blocks for @pgoff, or NULL if its block is missing. */
static unsigned long *hash_word(struct cowbuf_region *region, pgoff_t pgoff)
{
	unsigned long *block;

	if (!region->hashes)
		return NULL;
	block = region->hashes[pgoff / COWBUF_HASHES_PER_BLOCK];
	return block ? &block[pgoff % COWBUF_HASHES_PER_BLOCK] : NULL;
}

/**
 * cowbuf_hash_load() - read the stored-hash word of a slot
 * @region: a 4 KiB region
 * @pgoff: the slot
 * @hash: gets the hash, without the flags
 * @candidate: gets whether the slot has a candidate entry
 *
 * Return: whether the hash is valid (COWBUF_HASH_STORED).
 */
bool cowbuf_hash_load(struct cowbuf_region *region, pgoff_t pgoff, unsigned long *hash,
		      bool *candidate)
{
	unsigned long *word = hash_word(region, pgoff);
	unsigned long val = word ? *word : 0;

	*hash = val & ~COWBUF_HASH_FLAGS;
	*candidate = val & COWBUF_HASH_CANDIDATE;
	return val & COWBUF_HASH_STORED;
}

/**
 * cowbuf_hash_store() - store the hash of a slot that has no candidate entry
 * @region: a 4 KiB region
 * @pgoff: the slot
 * @hash: its frame's hash
 *
 * Without memory for the block, nothing is stored: the frame is hashed
 * again by the next pass.
 */
void cowbuf_hash_store(struct cowbuf_region *region, pgoff_t pgoff, unsigned long hash)
{
	unsigned long **block;

	if (!region->hashes)
		return;
	block = &region->hashes[pgoff / COWBUF_HASHES_PER_BLOCK];
	/* Charged to the region's memory cgroup (cowbuf_merge_scan()). */
	if (!*block)
		*block = kzalloc(PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (*block)
		(*block)[pgoff % COWBUF_HASHES_PER_BLOCK] = hash | COWBUF_HASH_STORED;
}

/**
 * cowbuf_hash_invalidate() - have the next pass hash a slot again
 * @region: a 4 KiB region
 * @pgoff: the slot, write-protected without being hashed, which may have
 *	been written since its hash was stored
 *
 * The hash and the flags stay, for cowbuf_candidate_forget() to find the
 * slot's entry by.
 */
void cowbuf_hash_invalidate(struct cowbuf_region *region, pgoff_t pgoff)
{
	unsigned long *word = hash_word(region, pgoff);

	if (word)
		*word &= ~COWBUF_HASH_STORED;
}

/* Whether frames of regions owned by @a and @b may merge. */
static bool same_domain(kuid_t a, kuid_t b)
{
	return READ_ONCE(cowbuf_merge_knobs.merge_across_users) || uid_eq(a, b);
}

/* Entries of the table: one per candidate is many, and they live long. */
static struct kmem_cache *cowbuf_node_cache;

static struct cowbuf_merge_node *node_alloc(unsigned long hash, kuid_t uid)
{
	struct cowbuf_merge_node *node = kmem_cache_zalloc(cowbuf_node_cache, GFP_KERNEL);

	if (node) {
		node->hash = hash;
		node->uid = uid;
	}
	return node;
}

static void node_free(struct cowbuf_merge_node *node)
{
	kmem_cache_free(cowbuf_node_cache, node);
}

/*
 * Bumped whenever an entry leaves the table or changes kind (under
 * cowbuf_merge_mutex): a lookup's result (struct cowbuf_match) is still
 * valid only while this stays the same.
 */
unsigned long cowbuf_table_gen;

/* Drop a stable entry and the table's reference to its frame. */
static void stable_remove(struct cowbuf_merge_node *node)
{
	cowbuf_table_gen++;
	rhltable_remove(&cowbuf_merge_table, &node->hnode, cowbuf_merge_params);
	list_del(&node->list);
	lock_page(node->page);
	cowbuf_frame_set_stable_locked(node->page, false);
	unlock_page(node->page);
	put_page(node->page);
	node_free(node);
}

/**
 * cowbuf_candidate_remove() - take a candidate entry out of the table
 * @node: the entry; its slot's flags are cleared
 */
void cowbuf_candidate_remove(struct cowbuf_merge_node *node)
{
	unsigned long *word = hash_word(node->region, node->pgoff);

	cowbuf_table_gen++;
	rhltable_remove(&cowbuf_merge_table, &node->hnode, cowbuf_merge_params);
	list_del(&node->list);
	*word &= ~(COWBUF_HASH_CANDIDATE | COWBUF_HASH_RECHECK);
	node_free(node);
	atomic_long_dec(&cowbuf_merge_stats.pages_unshared);
}

/**
 * cowbuf_slot_is_candidate() - whether a slot has a candidate entry
 * @region: a 4 KiB region
 * @pgoff: the slot
 * @recheck: gets whether the candidate is to look for stable frames again
 *	(COWBUF_HASH_RECHECK)
 *
 * Return: true if it has one.
 */
bool cowbuf_slot_is_candidate(struct cowbuf_region *region, pgoff_t pgoff, bool *recheck)
{
	unsigned long *word = hash_word(region, pgoff);
	unsigned long val = word ? *word : 0;

	*recheck = val & COWBUF_HASH_RECHECK;
	return val & COWBUF_HASH_CANDIDATE;
}

/**
 * cowbuf_candidate_settled() - a candidate looked and found no stable frame
 * @region: its region
 * @pgoff: its slot, which has a candidate entry
 *
 * Later passes do not look for it again until a stable frame with its hash
 * comes (cowbuf_candidate_make_stable()).
 */
void cowbuf_candidate_settled(struct cowbuf_region *region, pgoff_t pgoff)
{
	*hash_word(region, pgoff) &= ~COWBUF_HASH_RECHECK;
}

/**
 * cowbuf_table_lookup() - what the table holds for a frame's hash
 * @region: the region of the slot being merged
 * @pgoff: the slot
 * @page: its frame
 * @hash: the frame's hash
 * @m: gets the stable frames it may merge into, or -EEXIST if @page is a
 *	stable frame itself (then nothing else), the first candidate of
 *	another slot it may merge with, and whether other candidates have the
 *	hash
 *
 * Only the scanner frees entries: what @m points to stays valid for it
 * (see merge_candidate()).
 */
void cowbuf_table_lookup(struct cowbuf_region *region, pgoff_t pgoff,
			 struct page *page, unsigned long hash, struct cowbuf_match *m)
{
	struct cowbuf_merge_node *node;
	struct rhlist_head *list, *pos;

	m->nr_targets = 0;
	m->partner = NULL;
	m->others = false;
	rcu_read_lock();
	list = rhltable_lookup(&cowbuf_merge_table, &hash, cowbuf_merge_params);
	rhl_for_each_entry_rcu(node, pos, list, hnode) {
		if (node->stable && node->page == page) {
			m->nr_targets = -EEXIST;
			m->partner = NULL;
			break;
		}
		if (!node->stable && node->region == region && node->pgoff == pgoff)
			continue;
		if (!same_domain(node->uid, region->user->uid)) {
			m->others |= !node->stable;
			continue;
		}
		if (node->stable) {
			if (m->nr_targets < COWBUF_STABLE_TRIES)
				m->targets[m->nr_targets++] = node->page;
		} else if (!m->partner) {
			m->partner = node;
		} else {
			m->others = true;
		}
	}
	rcu_read_unlock();
}

/**
 * cowbuf_candidate_add() - give a candidate an entry in the table
 * @region: its region
 * @pgoff: its slot
 * @hash: its frame's hash, stored for the slot
 * @recheck: it found stable frames that it could not merge into now: the
 *	next pass tries them again
 *
 * Later frames with @hash find it; without memory for an entry, they do
 * not.
 */
void cowbuf_candidate_add(struct cowbuf_region *region, pgoff_t pgoff,
			  unsigned long hash, bool recheck)
{
	unsigned long *word = hash_word(region, pgoff);
	struct cowbuf_merge_node *node;

	/* The flag marks the entry: without a word for it, no entry. */
	if (!word)
		return;
	node = node_alloc(hash, region->user->uid);
	if (!node)
		return;
	node->region = region;
	node->pgoff = pgoff;
	if (rhltable_insert(&cowbuf_merge_table, &node->hnode, cowbuf_merge_params)) {
		node_free(node);
		return;
	}
	list_add_tail(&node->list, &region->merge_candidates);
	*word |= COWBUF_HASH_CANDIDATE | (recheck ? COWBUF_HASH_RECHECK : 0);
	atomic_long_inc(&cowbuf_merge_stats.pages_unshared);
}

/**
 * cowbuf_candidate_make_stable() - a candidate's frame becomes a stable frame
 * @node: the candidate's entry
 * @page: its frame, locked, about to be shared
 * @uid: the trust domain of the stable entry
 * @others: other candidates have the hash
 *
 * The entry becomes the frame's stable entry, in place (under the same
 * hash); the slot's candidate flag goes. The slot is clean and its frame
 * compared equal to one of that hash: the hash is stored again if
 * protect_partners() had it dropped, so that the next pass does not read the
 * frame again. With @others, those look for stable frames again in the next
 * pass: this one is new to them.
 */
void cowbuf_candidate_make_stable(struct cowbuf_merge_node *node, struct page *page,
				  kuid_t uid, bool others)
{
	unsigned long *word = hash_word(node->region, node->pgoff);
	struct cowbuf_merge_node *other;
	struct rhlist_head *list, *pos;

	cowbuf_table_gen++;
	*word = node->hash | COWBUF_HASH_STORED;
	atomic_long_dec(&cowbuf_merge_stats.pages_unshared);
	list_move_tail(&node->list, &cowbuf_stable_list);
	node->stable = true;
	node->page = page;
	node->uid = uid;
	if (!others)
		return;
	rcu_read_lock();
	list = rhltable_lookup(&cowbuf_merge_table, &node->hash, cowbuf_merge_params);
	rhl_for_each_entry_rcu(other, pos, list, hnode)
		if (!other->stable)
			*hash_word(other->region, other->pgoff) |= COWBUF_HASH_RECHECK;
	rcu_read_unlock();
}

/**
 * cowbuf_candidates_remove_all() - take every candidate out of the table
 *
 * For a change of merge_across_users: candidates look each other up only
 * when they are added.
 */
void cowbuf_candidates_remove_all(void)
{
	struct cowbuf_region *region;

	list_for_each_entry(region, &cowbuf_merge_regions, merge_node)
		cowbuf_merge_forget_candidates(region);
}

/**
 * cowbuf_candidate_forget() - remove a slot's candidate entry, if it has one
 * @region: its region
 * @pgoff: the slot
 * @hash: the hash stored for it, which the entry is under
 */
void cowbuf_candidate_forget(struct cowbuf_region *region, pgoff_t pgoff,
			     unsigned long hash)
{
	unsigned long *word = hash_word(region, pgoff);
	struct cowbuf_merge_node *node, *found = NULL;
	struct rhlist_head *list, *pos;

	if (!word || !(*word & COWBUF_HASH_CANDIDATE))
		return;

	rcu_read_lock();
	list = rhltable_lookup(&cowbuf_merge_table, &hash, cowbuf_merge_params);
	rhl_for_each_entry_rcu(node, pos, list, hnode) {
		if (!node->stable && node->region == region && node->pgoff == pgoff) {
			found = node;
			break;
		}
	}
	rcu_read_unlock();
	if (found) {
		cowbuf_candidate_remove(found);
		return;
	}
	/* The flag without its entry: a bug; clear the flag, and go on. */
	WARN_ON_ONCE(1);
	*word &= ~(COWBUF_HASH_CANDIDATE | COWBUF_HASH_RECHECK);
}

/**
 * cowbuf_merge_table_end_pass() - a full pass ended: the table's part
 *
 * Drops the stable entries of frames no longer shared and the candidates
 * of slots emptied. Context: cowbuf_merge_mutex held.
 */
void cowbuf_merge_table_end_pass(void)
{
	struct cowbuf_merge_node *node, *next;
	struct cowbuf_region *region;

	list_for_each_entry_safe(node, next, &cowbuf_stable_list, list) {
		/*
		 * Still shared, as most are: no page lock. A frame whose last
		 * sharers leave as it is read goes at the next pass end;
		 * until then nothing merges into it (merge_into_stable()).
		 */
		if (cowbuf_frame_sharers_racy(node->page) >= 2)
			continue;
		lock_page(node->page);
		if (cowbuf_frame_sharers(node->page) >= 2) {
			unlock_page(node->page);
			continue;
		}
		unlock_page(node->page);
		stable_remove(node);
		cond_resched();
	}
	/* Candidates stay, but for those whose slot was emptied. */
	list_for_each_entry(region, &cowbuf_merge_regions, merge_node) {
		list_for_each_entry_safe(node, next, &region->merge_candidates, list) {
			if (!xa_load(&region->slots, node->pgoff))
				cowbuf_candidate_remove(node);
			cond_resched();
		}
	}
}

/**
 * cowbuf_merge_forget_range() - drop the candidates of a range of a region
 * @region: the region
 * @start: first page offset
 * @end: page offset after the range
 *
 * For a range that leaves merging: a candidate keeps its entry in the table
 * from one pass to the next, and must not be matched once its slot may not
 * merge. Context: cowbuf_merge_mutex held; may sleep.
 */
void cowbuf_merge_forget_range(struct cowbuf_region *region, pgoff_t start, pgoff_t end)
{
	struct cowbuf_merge_node *node, *next;

	lockdep_assert_held(&cowbuf_merge_mutex);
	list_for_each_entry_safe(node, next, &region->merge_candidates, list) {
		if (node->pgoff >= start && node->pgoff < end)
			cowbuf_candidate_remove(node);
		cond_resched();
	}
}

/**
 * cowbuf_merge_forget_candidates() - drop a region's candidates
 * @region: the region, leaving the scanner's list (cowbuf_merge_mutex held)
 */
void cowbuf_merge_forget_candidates(struct cowbuf_region *region)
{
	cowbuf_merge_forget_range(region, 0, ULONG_MAX);
}

/**
 * cowbuf_merge_table_init() - the table and its entries' cache
 *
 * Return: 0 or a negative errno.
 */
int cowbuf_merge_table_init(void)
{
	int ret;

	/* Entries are charged to their region's memory cgroup. */
	cowbuf_node_cache = KMEM_CACHE(cowbuf_merge_node, SLAB_ACCOUNT);
	if (!cowbuf_node_cache)
		return -ENOMEM;
	ret = rhltable_init(&cowbuf_merge_table, &cowbuf_merge_params);
	if (ret)
		goto err_destroy_cache;
	return 0;

err_destroy_cache:
	kmem_cache_destroy(cowbuf_node_cache);
	return ret;
}

/**
 * cowbuf_merge_table_exit() - drop the stable entries, free the table
 *
 * No region exists any more: each pins the module, and regions forget their
 * candidates when they go.
 */
void cowbuf_merge_table_exit(void)
{
	struct cowbuf_merge_node *node, *next;

	list_for_each_entry_safe(node, next, &cowbuf_stable_list, list)
		stable_remove(node);
	WARN_ON_ONCE(atomic_long_read(&cowbuf_merge_stats.pages_unshared));
	rhltable_destroy(&cowbuf_merge_table);
	kmem_cache_destroy(cowbuf_node_cache);
}
