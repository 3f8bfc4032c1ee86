/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowbuf: what the parts of same-page merging share.
 *
 * merge.c scans chunks of slots and merges candidates,
 * merge_table.c keeps the table of stable and unstable entries and the
 * stored hashes, merge_backoff.c keeps volatile slots out of merging,
 * cowbufd.c runs the scanner thread over the mergeable regions,
 * merge_ranges.c keeps which ranges of a region may merge (and unmerges),
 * merge_sysfs.c holds the knobs and counters of /sys/kernel/mm/cowbuf,
 * merge_debugfs.c the measurement switch of /sys/kernel/debug/cowbuf.
 *
 * Locking: cowbuf_merge_mutex protects the table and its lists, the list
 * of mergeable regions and the scanner's cursor in it, and every region's
 * merge_node, merge_ranges, merge_candidates and merge_backoff. It is
 * taken before a region's map_lock, and before any page lock.
 */
#ifndef _COWBUF_MERGE_H
#define _COWBUF_MERGE_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rhashtable-types.h>
#include <linux/uidgid.h>

struct cowbuf_region;
struct kobject;
struct page;

/* Stored hashes per block of cowbuf_region.hashes: a page of them. */
#define COWBUF_HASHES_PER_BLOCK	(PAGE_SIZE / sizeof(unsigned long))

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
 * struct cowbuf_merge_knobs - the tunables of /sys/kernel/mm/cowbuf, and the
 *	measurement switch of /sys/kernel/debug/cowbuf
 * @run: 0 stops the scanner, 1 runs it; 2 (stop and unmerge) reads back as 2
 * @pages_to_scan: committed slots scanned per batch
 * @sleep_millisecs: pause between batches
 * @max_page_sharing: most slots one merged frame is shared by
 * @merge_across_users: frames of different owners may merge
 * @hash_only: the scanner only reads and hashes frames (1), and compares each
 *	with itself as well (2): measurement modes (merge_debugfs.c)
 * @max_backoff: passes a slot broken again and again stays out, at most
 *
 * Written by the sysfs stores (merge_sysfs.c) and the debugfs file, read
 * with READ_ONCE() by the scanner, which each sysfs store wakes.
 */
struct cowbuf_merge_knobs {
	unsigned int run;
	unsigned int pages_to_scan;
	unsigned int sleep_millisecs;
	unsigned int max_page_sharing;
	unsigned int merge_across_users;
	unsigned int hash_only;
	unsigned int max_backoff;
};

/**
 * struct cowbuf_merge_stats - the scanner's counters
 * @pages_scanned: slots looked at, ever
 * @full_scans: passes over all mergeable ranges completed; the clock of
 *	the back-off
 * @zero_pages: pages of all-zero frames released
 * @pages_volatile: pass in progress: slots whose bytes changed since their
 *	previous hash
 * @pages_unshared: candidates waiting in the unstable table
 * @pages_backoff: pass in progress: slots kept from merging by back-off
 * @last_volatile: @pages_volatile of the last completed pass
 * @last_unshared: @pages_unshared at the end of the last completed pass
 * @last_backoff: @pages_backoff of the last completed pass
 */
struct cowbuf_merge_stats {
	atomic_long_t pages_scanned;
	atomic_long_t full_scans;
	atomic_long_t zero_pages;
	atomic_long_t pages_volatile;
	atomic_long_t pages_unshared;
	atomic_long_t pages_backoff;
	atomic_long_t last_volatile;
	atomic_long_t last_unshared;
	atomic_long_t last_backoff;
};

extern struct mutex cowbuf_merge_mutex;
extern struct cowbuf_merge_knobs cowbuf_merge_knobs;
extern struct cowbuf_merge_stats cowbuf_merge_stats;

/* merge.c */
long cowbuf_merge_scan(struct cowbuf_region *region, pgoff_t start, pgoff_t end,
		       unsigned long budget, pgoff_t *next, unsigned long *merged);
void cowbuf_merge_end_pass(void);

/* Stable frames with a candidate's hash tried before giving up on them. */
#define COWBUF_STABLE_TRIES	4

/**
 * struct cowbuf_merge_node - an entry of the table: a stable entry (a merged
 *	frame) or an unstable one (a candidate)
 * @hnode: link in the table, keyed by @hash
 * @list: link in merge_table.c's list of stable entries, or in the
 *	merge_candidates of the candidate's region
 * @hash: the frame's hash (61 bits of xxh64)
 * @uid: the trust domain: owner of the region(s) the frame belongs to
 * @stable: which of the two it is
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
	bool stable;
	union {
		struct page *page;
		struct {
			struct cowbuf_region *region;
			pgoff_t pgoff;
		};
	};
};

/**
 * struct cowbuf_match - what the table holds for a candidate's hash
 * @targets: the stable frames it may merge into (same trust domain), the
 *	first COWBUF_STABLE_TRIES of them
 * @nr_targets: their number, or -EEXIST if its own frame is a stable frame
 * @partner: the first candidate of another slot that it may merge with
 *	(same trust domain), or NULL
 * @others: candidates of other slots besides @partner, of any trust domain
 */
struct cowbuf_match {
	struct page *targets[COWBUF_STABLE_TRIES];
	int nr_targets;
	struct cowbuf_merge_node *partner;
	bool others;
};

/* merge_table.c */
extern unsigned long cowbuf_table_gen;
int cowbuf_merge_table_init(void);
void cowbuf_merge_table_exit(void);
void cowbuf_merge_table_end_pass(void);
bool cowbuf_hash_load(struct cowbuf_region *region, pgoff_t pgoff, unsigned long *hash,
		      bool *candidate);
void cowbuf_hash_store(struct cowbuf_region *region, pgoff_t pgoff, unsigned long hash);
void cowbuf_hash_invalidate(struct cowbuf_region *region, pgoff_t pgoff);
void cowbuf_table_lookup(struct cowbuf_region *region, pgoff_t pgoff,
			 struct page *page, unsigned long hash, struct cowbuf_match *m);
void cowbuf_candidate_add(struct cowbuf_region *region, pgoff_t pgoff,
			  unsigned long hash, bool recheck);
void cowbuf_candidate_remove(struct cowbuf_merge_node *node);
bool cowbuf_slot_is_candidate(struct cowbuf_region *region, pgoff_t pgoff, bool *recheck);
void cowbuf_candidate_settled(struct cowbuf_region *region, pgoff_t pgoff);
void cowbuf_candidate_forget(struct cowbuf_region *region, pgoff_t pgoff,
			     unsigned long hash);
void cowbuf_candidate_make_stable(struct cowbuf_merge_node *node, struct page *page,
				  kuid_t uid, bool others);
void cowbuf_candidates_remove_all(void);
void cowbuf_merge_forget_candidates(struct cowbuf_region *region);
void cowbuf_merge_forget_range(struct cowbuf_region *region, pgoff_t start, pgoff_t end);

/* merge_backoff.c */
bool cowbuf_merge_backoff(struct cowbuf_region *region, pgoff_t pgoff, bool broken,
			  bool written);

/* cowbufd.c */
extern struct list_head cowbuf_merge_regions;
int cowbufd_start(void);
void cowbufd_stop(void);
void cowbufd_kick(void);
void cowbufd_add_region(struct cowbuf_region *region);
void cowbufd_remove_region(struct cowbuf_region *region);

/* merge_ranges.c */
extern unsigned long cowbuf_merge_ranges_seq;
int cowbuf_merge_unmerge_all(void);

/* merge_sysfs.c */
int cowbuf_merge_sysfs_init(struct kobject *kobj);
void cowbuf_merge_sysfs_exit(struct kobject *kobj);

/* merge_debugfs.c */
void cowbuf_merge_debugfs_init(void);
void cowbuf_merge_debugfs_exit(void);

#endif /* _COWBUF_MERGE_H */
