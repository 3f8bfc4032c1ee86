/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowbuf: objects shared by the module's files.
 */

/**
 * DOC: Locking overview
 *
 * Locks, in the order they are taken:
 *
 * 1. mm->mmap_lock (read), held by the fault handlers and by the ioctls that
 *    look up the caller's mapping (COMMIT, DECOMMIT, SEND, RECV, MERGE);
 * 2. cowbuf_merge_mutex (merge.h), the merge scanner's: cowbufd holds it for
 *    a batch, the MERGE ioctl and a region's release take it; it comes
 *    before any region's map_lock, which the scanner only ever trylocks;
 * 3. cowbuf_region.map_lock: read by the fault handlers and the scanner,
 *    write by the ioctls that change many slots of a region at once;
 * 4. cowbuf_region.fill_lock, which orders a fault mapping the zero page into
 *    an empty slot against a fault committing a page to that slot;
 * 5. the page lock of a frame (lock_page()), or of the huge zero frame,
 *    which a read fault of an empty huge slot takes under fill_lock and
 *    holds until the fault core has mapped it. One at a time, but for the
 *    scanner, which holds a candidate's and takes its merge target's second,
 *    with trylock_page() only, so that no order between frames is needed;
 * 6. the mapping's i_mmap_rwsem and the page-table locks, inside
 *    unmap_mapping_range() and vm_insert_pages();
 * 7. spinlocks, innermost: cowbuf_channel.lock, cowbuf_user_lock and the
 *    scanner's scanner_refs_lock (merge.c), the last taken inside the xa_lock
 *    of a region's slots and inside the page lock.
 *
 * The scanner changes a slot under map_lock (read) plus the old frame's page
 * lock, like a copy-on-write break.
 *
 * A slot of a region changes only under map_lock (write), or under map_lock
 * (read) plus the page lock of the frame it held (copy-on-write break) or
 * fill_lock (empty slot filled). The fault core installs the page-table entry
 * of a frame handed out by .fault or .page_mkwrite while that frame's page
 * lock is held, so whoever changes a slot takes the old frame's page lock
 * once after the change ("lock barrier") and only then removes the mappings:
 * no stale entry can be installed behind its back. Filling an empty huge
 * slot takes the barrier of the huge zero frame for the same reason, but
 * only in a region that has handed that frame to a fault: the zero frame is
 * one for all regions, and a region that never mapped it must not wait for
 * other users' read faults (region_zero_barrier()). Whoever holds the zero
 * frame's page lock holds it only while the fault core maps it: the page
 * table was preallocated before .fault (__do_fault()), so nothing in that
 * section allocates or sleeps.
 *
 * Huge regions fault their frames in after map_lock is dropped (COMMIT,
 * RECV: region_fault_in(), under mmap_lock only), since the fault
 * handlers take map_lock themselves.
 */
#ifndef _COWBUF_H
#define _COWBUF_H

#include <linux/fs.h>
#include <linux/huge_mm.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/xarray.h>

struct kobject;
struct mem_cgroup;
struct seq_file;

/* Tunables (params.c); read once per use, may change at run time. */
extern unsigned long cowbuf_max_region_pages;
extern unsigned long cowbuf_max_user_pages;
extern unsigned int cowbuf_max_queue_depth;
extern unsigned long cowbuf_max_message_pages;
extern unsigned int cowbuf_max_merge_ranges;
extern unsigned int cowbuf_max_user_channels;

/* Object counts (params.c), shown in /sys/kernel/mm/cowbuf/. */
extern atomic_long_t cowbuf_nr_frames;
extern atomic_long_t cowbuf_nr_regions;
extern atomic_long_t cowbuf_nr_channels;
extern atomic_long_t cowbuf_nr_messages;
/* Writes refused because a pinned, once shared frame could not be copied. */
extern atomic_long_t cowbuf_nr_pinned_sigbus;

/*
 * The merge scanner's pages_shared and pages_sharing (frame.c): frames the
 * stable table holds that two holders or more share, and the holders beyond
 * the first of each. Kept as shares change, under the frame's page lock, so
 * that reading them takes no lock and never holds up the scanner.
 */
extern atomic_long_t cowbuf_nr_merged_frames;
extern atomic_long_t cowbuf_nr_merged_sharers;

/**
 * struct cowbuf_user - memory committed to regions owned by one user
 * @node: link in the table of users (protected by cowbuf_user_lock)
 * @ref: one per region, channel and queued message of the user
 * @uid: the user
 * @pages: slots holding a frame in the user's regions, and the frames of
 *	queued messages sent from them, against cowbuf_max_user_pages
 * @channels: channels the user created, against cowbuf_max_user_channels
 */
struct cowbuf_user {
	struct hlist_node node;
	struct kref ref;
	kuid_t uid;
	atomic_long_t pages;
	atomic_t channels;
};

struct cowbuf_user *cowbuf_user_get(kuid_t uid);
struct cowbuf_user *cowbuf_user_hold(struct cowbuf_user *user);
void cowbuf_user_put(struct cowbuf_user *user);
int cowbuf_user_charge(struct cowbuf_user *user, unsigned long nr);
void cowbuf_user_uncharge(struct cowbuf_user *user, unsigned long nr);
int cowbuf_user_add_channel(struct cowbuf_user *user);
void cowbuf_user_remove_channel(struct cowbuf_user *user);
extern struct kobject *cowbuf_kobj;
int cowbuf_params_init(void);
void cowbuf_params_exit(void);

/*
 * Frames (frame.c): the module-owned pages behind regions and messages.
 * Every holder of a frame - a region slot or a message entry - owns one page
 * reference and counts as one sharer. The sharer count lives in page->private
 * and changes only under the page lock. A frame with one sharer may be
 * written in place; with more, a write takes a private copy first.
 */
#define COWBUF_HUGE_ORDER	(PMD_SHIFT - PAGE_SHIFT)
#define COWBUF_HUGE_SIZE	(PAGE_SIZE << COWBUF_HUGE_ORDER)

struct page *cowbuf_frame_alloc(unsigned int order);
struct page *cowbuf_frame_alloc_like(struct page *page);
void cowbuf_frame_copy(struct page *copy, struct page *page);
struct page *cowbuf_frame_dup(struct page *page);
bool cowbuf_frame_is_zero(struct page *page);
int cowbuf_frame_huge_zero_prepare(void);
struct page *cowbuf_frame_huge_zero(void);
void cowbuf_frame_exit(void);
unsigned long cowbuf_frame_sharers(struct page *page);
unsigned long cowbuf_frame_sharers_racy(struct page *page);
bool cowbuf_frame_stable(struct page *page);
bool cowbuf_frame_stable_scanner(struct page *page);
void cowbuf_frame_set_stable_locked(struct page *page, bool stable);
void cowbuf_frame_mark_sent_locked(struct page *page);
bool cowbuf_frame_merge_target(struct page *page);
bool cowbuf_frame_may_share(struct page *page);
void cowbuf_frame_share_locked(struct page *page);
bool cowbuf_frame_was_shared(struct page *page);
void cowbuf_frame_mark_shared_locked(struct page *page);
void cowbuf_frame_settle_locked(struct page *page);
void cowbuf_frame_unshare_locked(struct page *page);
void cowbuf_frame_release(struct page *page);
bool cowbuf_frame_idle(struct page *page);
bool cowbuf_frame_pinned(struct page *page);
bool cowbuf_frame_pinned_scanned(struct page *page);
bool cowbuf_frame_pinned_in_fault(struct page *page);
void cowbuf_frame_lock_barrier(struct page *page);

/**
 * struct cowbuf_region - a fixed-size, sparse array of frames, mmap-able
 * @mapping: the address space the region's mappings hang off, so that
 *	unmap_mapping_range() reaches every mapping of the region (invariant)
 * @map_lock: see the locking overview; orders faults against slot changes
 * @fill_lock: orders zero-page mappings against commits of empty slots
 * @zero_handed_out: a read fault of an empty slot of this huge region has
 *	been given the huge zero frame (set once, under @fill_lock and
 *	@map_lock read; read under @fill_lock or @map_lock write)
 * @slots: slot index (page offset >> @order) -> frame (struct page *, the
 *	head page of a huge frame); absent means uncommitted
 * @nr_pages: the region's size in pages (invariant)
 * @order: pages per frame, log2: 0, or COWBUF_HUGE_ORDER for a huge region
 *	(invariant)
 * @committed: pages of the slots holding a frame (1 << @order per slot)
 * @user: the owner, charged for committed slots (invariant)
 * @merge_node: link in the scanner's list of mergeable regions
 *	(protected by cowbuf_merge_mutex)
 * @merge_ranges: the page ranges that may merge, sorted and disjoint
 *	(protected by cowbuf_merge_mutex)
 * @merge_candidates: the merge table's entries of this region's candidates
 *	(struct cowbuf_merge_node.list; protected by cowbuf_merge_mutex)
 * @hashes: page offset -> hash of the frame when last scanned, in blocks of
 *	COWBUF_HASHES_PER_BLOCK allocated as the scanner needs them (under
 *	cowbuf_merge_mutex; NULL in huge regions, and until the region first
 *	has a mergeable range)
 * @merge_backoff: page offset -> back-off of a slot whose merge a write
 *	broke (xa_mk_value(); under cowbuf_merge_mutex; unused in huge regions)
 * @merge_memcg: the memory cgroup of the region's creator, charged for what
 *	the scanner allocates for the region (a reference; invariant)
 * @zero_pages: pages of all-zero frames the scanner released from this region
 * @cow_breaks: copy-on-write breaks in this region
 *
 * A slot carries COWBUF_SLOT_DIRTY from the moment its frame may have been
 * written (commit, placement, write fault) until the scanner write-protects
 * and hashes it. COWBUF_SLOT_BROKEN marks a slot whose shared frame a write
 * copied (a copy-on-write break) until the scanner has seen it.
 */
struct cowbuf_region {
	struct address_space mapping;
	struct rw_semaphore map_lock;	/* see the locking overview */
	struct mutex fill_lock;		/* see the locking overview */
	bool zero_handed_out;
	struct xarray slots;
	pgoff_t nr_pages;
	unsigned int order;
	atomic_long_t committed;
	struct cowbuf_user *user;
	struct list_head merge_node;
	struct list_head merge_ranges;
	struct list_head merge_candidates;
	unsigned long **hashes;
	struct xarray merge_backoff;
	struct mem_cgroup *merge_memcg;
	atomic_long_t zero_pages;
	atomic_long_t cow_breaks;
};

#define COWBUF_SLOT_DIRTY	XA_MARK_1
#define COWBUF_SLOT_BROKEN	XA_MARK_2

struct cowbuf_msg;

struct file *cowbuf_region_create(u64 size, bool mergeable, bool huge);
struct vm_area_struct *cowbuf_region_vma(struct mm_struct *mm, u64 addr, u64 len,
					 pgoff_t *first);
int cowbuf_region_take(struct vm_area_struct *vma, pgoff_t first,
		       struct cowbuf_msg *msg);
int cowbuf_region_place(struct vm_area_struct *vma, unsigned long addr,
			pgoff_t first, struct cowbuf_msg *msg);
void cowbuf_region_unmap(struct cowbuf_region *region, pgoff_t first,
			 unsigned long nr);
void cowbuf_region_uncharge(struct cowbuf_region *region, unsigned long nr);
void cowbuf_region_destroy(struct cowbuf_region *region);

/* region_file.c: the inodes and files of regions */
int cowbuf_region_file_pin(void);
void cowbuf_region_file_unpin(void);
struct file *cowbuf_region_file_alloc(struct cowbuf_region *region,
				      const struct file_operations *fops);

/* merge.c */
extern atomic_long_t cowbuf_nr_cow_breaks;
int cowbuf_merge_init(struct kobject *kobj);
void cowbuf_merge_exit(struct kobject *kobj);
int cowbuf_merge_region_init(struct cowbuf_region *region, bool mergeable);
void cowbuf_merge_region_release(struct cowbuf_region *region);
long cowbuf_merge_ioctl(struct cowbuf_region *region, struct vm_area_struct *vma,
			pgoff_t first, unsigned long nr, u32 flags);
long cowbuf_merge_info(struct cowbuf_region *region, void __user *uarg);
void cowbuf_merge_show_fdinfo(struct seq_file *m, struct cowbuf_region *region);
int cowbuf_merge_other_refs(struct page *page);

/**
 * struct cowbuf_msg - one SEND: the frames of a range, in order
 * @node: link in cowbuf_channel.queue (protected by cowbuf_channel.lock)
 * @nr_pages: length of the message in pages
 * @nr_frames: entries of @frames that are not NULL
 * @mode: COWBUF_MODE_MOVE or COWBUF_MODE_SHARE
 * @order: the frame order of the region it was sent from
 * @user: the owner of that region, charged @charged pages for the frames
 *	while the message holds them (a reference; NULL until taken)
 * @charged: pages charged to @user's max_user_pages
 * @frames: a frame per slot (@nr_pages >> @order of them), NULL where the
 *	range was uncommitted (zero)
 */
struct cowbuf_msg {
	struct list_head node;
	unsigned long nr_pages;
	unsigned long nr_frames;
	u32 mode;
	unsigned int order;
	struct cowbuf_user *user;
	unsigned long charged;
	struct page *frames[];
};

/**
 * struct cowbuf_channel - a bounded queue of messages
 * @lock: protects every field below
 * @queue: queued messages, oldest first
 * @nr_queued: messages on @queue
 * @nr_reserved: places taken by senders still collecting their pages
 * @queued_pages: pages held by the queued messages
 * @max_queued: capacity, cowbuf_max_queue_depth at creation (invariant)
 * @wait: senders waiting for room, receivers waiting for a message, poll
 * @user: the user who created the channel, which counts against their
 *	max_user_channels (invariant)
 */
struct cowbuf_channel {
	spinlock_t lock;		/* protects the fields below */
	struct list_head queue;
	unsigned int nr_queued;
	unsigned int nr_reserved;
	unsigned long queued_pages;
	unsigned int max_queued;
	wait_queue_head_t wait;
	struct cowbuf_user *user;
};

struct file *cowbuf_channel_create(unsigned int fd_flags);

/* device.c */
long cowbuf_ioctl_version(void __user *uarg);
bool cowbuf_range_valid(u64 addr, u64 length);

#endif /* _COWBUF_H */
