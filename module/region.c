// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: regions, the anonymous memory cowbuf owns and maps.
 *
 * DOC: Regions
 *
 * A region is a fixed-size, page-granular, sparse array of slots, each empty
 * (uncommitted) or holding a frame. Userspace maps it with mmap(MAP_SHARED)
 * of the region's file descriptor; MAP_PRIVATE is refused and the mapping
 * cannot grow with mremap(). To the program it is anonymous memory: it reads
 * as zero until written and is freed with the last reference to the region.
 *
 * The fault handlers serve it:
 *
 * - a read of an empty slot maps the shared zero page, read-only, through
 *   vmf_insert_mixed() (as DAX does for holes): nothing is allocated;
 * - a write to an empty slot commits it: a zeroed frame is allocated and
 *   put in the slot, and zero-page mappings of the slot are removed;
 * - any other fault hands the slot's frame to the fault core, which maps it
 *   read-only: the mapping has .page_mkwrite, so a first write to a mapped
 *   frame always reaches cowbuf. A frame with one sharer is then made
 *   writable in place; a frame with several (shared by COWBUF_MODE_SHARE or
 *   by merging) is copied into a private frame for this slot first.
 *
 * fork() shares the region with the child, as for any MAP_SHARED mapping.
 * munmap() of part of a mapping, mprotect() and madvise(MADV_DONTNEED) act
 * on page tables only: the slots keep their frames (DONTNEED behaves as on
 * shared memory), and only COWBUF_IOC_DECOMMIT frees them.
 *
 * DOC: Huge regions
 *
 * A region created with COWBUF_REGION_HUGE has one slot per 2 MiB (order
 * COWBUF_HUGE_ORDER), each empty or holding a compound frame of that order.
 * Its mappings are not VM_MIXEDMAP: .fault hands the fault core the subpage
 * of the frame at the faulting address, locked, and the core maps the whole
 * frame with one PMD (finish_fault(), do_set_pmd(), with rmap and reference
 * as for a file THP) where the mapping is 2 MiB aligned in address and
 * offset and no page table is there yet; elsewhere it maps the subpage by
 * PTE. With VM_MIXEDMAP, zap_huge_pmd() would take the PMD for a special
 * mapping and drop neither rmap nor reference, so the zero page (which only
 * vmf_insert_mixed() could map) is replaced by the module's huge zero frame:
 * a read of an empty slot maps it read-only, by PMD too.
 *
 * A write to a read-only PMD makes the fault core zap the PMD and fault
 * again at the PTE level (wp_huge_pmd(): no .huge_fault), where .fault and
 * .page_mkwrite see a write and the frame is mapped writable, whole. So the
 * first write after a read costs a zap and a fault per 2 MiB; a copy-on-write
 * break copies the whole frame, 2 MiB, since a slot cannot hold part of one.
 *
 * The mmap() offset and length, the address of a MAP_FIXED mapping, the
 * address of every split (munmap(), mprotect(), mremap() of part of a
 * mapping: .may_split) and every range given to an ioctl are multiples of
 * 2 MiB, else EINVAL, as on hugetlbfs; get_unmapped_area aligns mmap(NULL)
 * (thp_get_unmapped_area()). madvise(MADV_DONTNEED) on part of a frame zaps
 * its PMD; the next access maps the frame again. A mapping moved by mremap()
 * to an address that is not 2 MiB aligned still works, by PTEs.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/cowbuf.h>

#include "cowbuf.h"
#include "region.h"
#include "trace.h"

/* Frames inserted into page tables per vm_insert_pages() call. */
#define COWBUF_PREFAULT_BATCH	32

static loff_t pgoff_to_bytes(pgoff_t pgoff)
{
	return (loff_t)pgoff << PAGE_SHIFT;
}

static loff_t slot_to_bytes(struct cowbuf_region *region, pgoff_t index)
{
	return (loff_t)index << (PAGE_SHIFT + region->order);
}

/**
 * cowbuf_region_unmap() - remove every mapping of a range of slots
 * @region: the region
 * @first: first slot index (the page offset in a page-granular region)
 * @nr: number of slots
 */
void cowbuf_region_unmap(struct cowbuf_region *region, pgoff_t first,
			 unsigned long nr)
{
	unmap_mapping_range(&region->mapping, slot_to_bytes(region, first),
			    slot_to_bytes(region, nr), 1);
}

/**
 * cowbuf_region_charge() - charge committed slots
 * @region: the region
 * @nr: pages to charge to it and to its owner
 *
 * Return: 0, or -ENOMEM past max_region_pages or max_user_pages (then
 * nothing is charged).
 */
int cowbuf_region_charge(struct cowbuf_region *region, unsigned long nr)
{
	struct cowbuf_user *user = region->user;

	if (atomic_long_add_return(nr, &region->committed) >
	    READ_ONCE(cowbuf_max_region_pages))
		goto err_uncharge_region;
	if (atomic_long_add_return(nr, &user->pages) >
	    READ_ONCE(cowbuf_max_user_pages))
		goto err_uncharge_user;
	return 0;

err_uncharge_user:
	atomic_long_sub(nr, &user->pages);
err_uncharge_region:
	atomic_long_sub(nr, &region->committed);
	return -ENOMEM;
}

/**
 * cowbuf_region_uncharge() - return committed slots to the caps
 * @region: the region
 * @nr: number of slots emptied
 */
void cowbuf_region_uncharge(struct cowbuf_region *region, unsigned long nr)
{
	atomic_long_sub(nr, &region->committed);
	atomic_long_sub(nr, &region->user->pages);
}

static int cowbuf_region_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct cowbuf_region *region = file->private_data;
	unsigned long frame_mask = (1UL << region->order) - 1;

	/*
	 * MAP_SHARED only. A shared mapping of a file opened read-only has
	 * VM_MAYSHARE but neither VM_SHARED nor VM_MAYWRITE: it can only read.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_pgoff >= region->nr_pages ||
	    vma_pages(vma) > region->nr_pages - vma->vm_pgoff)
		return -EINVAL;
	if (region->order) {
		if ((vma->vm_pgoff | vma_pages(vma) |
		     (vma->vm_start >> PAGE_SHIFT)) & frame_mask)
			return -EINVAL;
		/*
		 * Not VM_MIXEDMAP: the fault core maps frames by PMD, with
		 * rmap and reference (see "Huge regions").
		 */
		vma->vm_flags |= VM_DONTEXPAND;
		vma->vm_ops = &cowbuf_huge_vm_ops;
	} else {
		/*
		 * VM_MIXEDMAP: frames are inserted by vm_insert_pages() and
		 * the zero page by vmf_insert_mixed(); VM_DONTEXPAND: no
		 * mremap() growth.
		 */
		vma->vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND;
		vma->vm_ops = &cowbuf_region_vm_ops;
	}
	vma->vm_private_data = region;
	return 0;
}

/* mmap(NULL) of a huge region: a 2 MiB aligned address where there is room. */
static unsigned long cowbuf_region_get_unmapped_area(struct file *file,
						     unsigned long addr,
						     unsigned long len,
						     unsigned long pgoff,
						     unsigned long flags)
{
	struct cowbuf_region *region = file->private_data;

	if (region->order)
		return thp_get_unmapped_area(file, addr, len, pgoff, flags);
	return current->mm->get_unmapped_area(file, addr, len, pgoff, flags);
}

/**
 * cowbuf_region_vma() - find the caller's mapping of a region for a range
 * @mm: the caller's mm, mmap_lock held
 * @addr: start of the range, page-aligned
 * @len: length of the range, page-aligned and nonzero
 * @first: (out) the region's page offset of @addr
 *
 * Return: the mapping holding all of [@addr, @addr + @len), or NULL if the
 * range is not within one mapping of a cowbuf region, does not cover whole
 * frames of a huge region, or is mapped from a file opened read-only (the
 * calls that take a mapping change the region).
 */
struct vm_area_struct *cowbuf_region_vma(struct mm_struct *mm, u64 addr, u64 len,
					 pgoff_t *first)
{
	struct vm_area_struct *vma;

	struct cowbuf_region *region;

	lockdep_assert_held(&mm->mmap_lock);
	if (!cowbuf_range_valid(addr, len))
		return NULL;
	vma = vma_lookup(mm, addr);
	if (!vma || (vma->vm_ops != &cowbuf_region_vm_ops &&
		     vma->vm_ops != &cowbuf_huge_vm_ops))
		return NULL;
	if (!(vma->vm_flags & VM_MAYWRITE))
		return NULL;
	if (len > vma->vm_end - addr)
		return NULL;
	/* A huge region's ranges are whole frames of it. */
	region = vma->vm_private_data;
	*first = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	if ((*first | (len >> PAGE_SHIFT)) & ((1UL << region->order) - 1))
		return NULL;
	return vma;
}

/*
 * Map @nr frames, all present, at @addr into @vma with vm_insert_pages().
 * An entry that is present already (a racing fault) is skipped; any other
 * failure only means that later accesses fault.
 */
static void region_map_frames(struct vm_area_struct *vma, unsigned long addr,
			      struct page **frames, unsigned long nr)
{
	unsigned long done = 0, left;

	while (done < nr) {
		left = nr - done;
		if (!vm_insert_pages(vma, addr + (done << PAGE_SHIFT),
				     &frames[done], &left))
			break;
		/* Skip the entry that failed, map the rest. */
		done = nr - left + 1;
	}
}

/* Map the runs of non-NULL entries of @frames, which face @addr. */
static void region_map_runs(struct vm_area_struct *vma, unsigned long addr,
			    struct page **frames, unsigned long nr)
{
	unsigned long i = 0, start;

	while (i < nr) {
		while (i < nr && !frames[i])
			i++;
		start = i;
		while (i < nr && frames[i])
			i++;
		if (i > start)
			region_map_frames(vma, addr + (start << PAGE_SHIFT),
					  &frames[start], i - start);
		cond_resched();
	}
}

/* Map the committed slots [first, first + nr) at @addr into @vma. */
static void region_prefault(struct cowbuf_region *region,
			    struct vm_area_struct *vma, unsigned long addr,
			    pgoff_t first, unsigned long nr)
{
	struct page *batch[COWBUF_PREFAULT_BATCH];
	unsigned long i, n;

	for (i = 0; i < nr; i += n) {
		n = min_t(unsigned long, nr - i, COWBUF_PREFAULT_BATCH);
		for (unsigned long j = 0; j < n; j++)
			batch[j] = xa_load(&region->slots, first + i + j);
		region_map_runs(vma, addr + (i << PAGE_SHIFT), batch, n);
	}
}

/*
 * region_fault_in() - map frames of a huge region as faults would
 * @vma: the caller's mapping of a huge region (mmap_lock held, the region's
 *	map_lock not: the fault handlers take it)
 * @addr: the first frame's address in @vma
 * @nr: number of frames
 * @flags: FAULT_FLAG_WRITE to map them writable (a shared frame is then
 *	copied, as MADV_POPULATE_WRITE would), or 0
 *
 * Each frame is mapped by one PMD where @vma allows. A fault that fails (no
 * memory) only leaves the access to fault later. handle_mm_fault() without
 * FAULT_FLAG_ALLOW_RETRY never drops mmap_lock. A mapping without VM_WRITE
 * (PROT_READ, of a file opened read-write) is faulted in for reading only:
 * a write fault there would take do_wp_page()'s private-copy path and put an
 * anonymous page into the shared mapping, which no other mapper sees.
 */
static void region_fault_in(struct vm_area_struct *vma, unsigned long addr,
			    unsigned long nr, unsigned int flags)
{
	unsigned long i;

	if (!(vma->vm_flags & VM_WRITE))
		flags &= ~FAULT_FLAG_WRITE;
	for (i = 0; i < nr; i++) {
		handle_mm_fault(vma, addr + i * COWBUF_HUGE_SIZE, flags, NULL);
		cond_resched();
	}
}

/* Map the runs of non-NULL entries of @frames, huge, after map_lock. */
static void region_fault_in_runs(struct vm_area_struct *vma, unsigned long addr,
				 struct page **frames, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		if (frames[i])
			region_fault_in(vma, addr + i * COWBUF_HUGE_SIZE, 1, 0);
}

/*
 * Release @nr_frames frames the caller took out of slots of [first,
 * first + nr) (NULL entries are skipped, the others set to NULL): wait for
 * faults still mapping them, remove every mapping of the range, release.
 */
static void region_drop_frames(struct cowbuf_region *region, pgoff_t first,
			       unsigned long nr, struct page **frames,
			       unsigned long nr_frames)
{
	unsigned long i;

	for (i = 0; i < nr_frames; i++)
		if (frames[i])
			cowbuf_frame_lock_barrier(frames[i]);
	cowbuf_region_unmap(region, first, nr);
	for (i = 0; i < nr_frames; i++) {
		if (frames[i]) {
			cowbuf_frame_release(frames[i]);
			frames[i] = NULL;
		}
		if (!(i % 256))
			cond_resched();
	}
}

/* Slots of [first, first + nr) holding a frame. */
static unsigned long region_count_committed(struct cowbuf_region *region,
					    pgoff_t first, unsigned long nr)
{
	unsigned long count = 0, index;
	struct page *page;

	xa_for_each_range(&region->slots, index, page, first, first + nr - 1)
		count++;
	return count;
}

/* Undo xa_reserve() on the slots [first, first + nr). */
static void region_release_reserved(struct cowbuf_region *region, pgoff_t first,
				    unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		xa_release(&region->slots, first + i);
}

/*
 * COWBUF_IOC_COMMIT: fill every empty slot of the slots [first, first + nr),
 * then map the whole range into @vma at @addr, if @vma is given (fallocate()
 * maps nothing). All or nothing: caps, frames and xarray nodes are all
 * obtained before the first slot changes. A huge region's range is mapped
 * writable by faults once map_lock is dropped.
 */
static int region_commit(struct cowbuf_region *region, struct vm_area_struct *vma,
			 unsigned long addr, pgoff_t first, unsigned long nr)
{
	unsigned long i, nr_new;
	struct page *page, *next;
	LIST_HEAD(frames);
	int ret;

	down_write(&region->map_lock);
	nr_new = nr - region_count_committed(region, first, nr);
	ret = cowbuf_region_charge(region, nr_new << region->order);
	if (ret)
		goto out_unlock;

	/* Frames are not on any LRU: page->lru is ours to list them. */
	for (i = 0; i < nr_new; i++) {
		page = cowbuf_frame_alloc(region->order);
		if (!page) {
			ret = -ENOMEM;
			goto err_free_frames;
		}
		list_add(&page->lru, &frames);
		cond_resched();
	}
	for (i = 0; i < nr; i++) {
		if (xa_load(&region->slots, first + i))
			continue;
		ret = xa_reserve(&region->slots, first + i, GFP_KERNEL_ACCOUNT);
		if (ret) {
			region_release_reserved(region, first, i);
			goto err_free_frames;
		}
	}
	/* From here nothing fails: stores into reserved slots never allocate. */
	for (i = 0; i < nr; i++) {
		if (xa_load(&region->slots, first + i))
			continue;
		page = list_first_entry(&frames, struct page, lru);
		list_del_init(&page->lru);
		xa_store(&region->slots, first + i, page, GFP_NOWAIT);
		xa_set_mark(&region->slots, first + i, COWBUF_SLOT_DIRTY);
	}
	/* Zero-page entries of the range would hide the new frames. */
	if (nr_new)
		cowbuf_region_zero_barrier(region);
	cowbuf_region_unmap(region, first, nr);
	if (vma && !region->order)
		region_prefault(region, vma, addr, first, nr);
	up_write(&region->map_lock);
	if (vma && region->order)
		region_fault_in(vma, addr, nr, FAULT_FLAG_WRITE);
	return 0;

err_free_frames:
	list_for_each_entry_safe(page, next, &frames, lru) {
		list_del_init(&page->lru);
		cowbuf_frame_release(page);
	}
	cowbuf_region_uncharge(region, nr_new << region->order);
out_unlock:
	up_write(&region->map_lock);
	return ret;
}

/* COWBUF_IOC_DECOMMIT: empty the slots [first, first + nr), free the frames. */
static int region_decommit(struct cowbuf_region *region, pgoff_t first,
			   unsigned long nr)
{
	struct page *batch[COWBUF_PREFAULT_BATCH];
	unsigned long index, n = 0, dropped = 0;
	pgoff_t batch_first = first;
	struct page *page;

	down_write(&region->map_lock);
	xa_for_each_range(&region->slots, index, page, first, first + nr - 1) {
		if (!n)
			batch_first = index;
		xa_erase(&region->slots, index);
		batch[n++] = page;
		if (n == COWBUF_PREFAULT_BATCH) {
			region_drop_frames(region, batch_first,
					   index - batch_first + 1, batch, n);
			dropped += n;
			n = 0;
		}
	}
	if (n) {
		region_drop_frames(region, batch_first,
				   first + nr - batch_first, batch, n);
		dropped += n;
	}
	cowbuf_region_uncharge(region, dropped << region->order);
	/* Zero-page entries stay valid: the slots read as zero again. */
	up_write(&region->map_lock);
	return 0;
}

/*
 * Punch the pages [@first, @end) of a huge region, all in one frame but not
 * the whole of it: they read as zero afterwards, as on a regular file. A slot
 * without a frame reads as zero already. A frame of the slot's own is zeroed
 * in place; a shared one is copied first, as a write would copy it, and the
 * copy zeroed. The frame stays committed: the slot is marked dirty, and the
 * merge scanner, which looks at written slots of mergeable huge regions,
 * releases it once all of it is zero (a guest's balloon discards 4 KiB
 * pages one at a time). Return: 0, or -ENOMEM without memory for the copy.
 */
static int region_zero_partial(struct cowbuf_region *region, pgoff_t first,
			       pgoff_t end)
{
	unsigned long mask = (1UL << region->order) - 1;
	pgoff_t index = first >> region->order;
	struct page *page;
	int ret = 0;

	down_write(&region->map_lock);
	page = xa_load(&region->slots, index);
	if (!page)
		goto out_unlock;
	lock_page(page);
	/* Zeroed in place only where a write would go in place (.page_mkwrite). */
	if (cowbuf_frame_sharers(page) > 1 ||
	    (cowbuf_frame_was_shared(page) && cowbuf_frame_pinned(page))) {
		page = cowbuf_region_copy_slot(region, index, page, false);
		if (!page) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		lock_page(page);
	} else if (cowbuf_frame_was_shared(page)) {
		cowbuf_frame_settle_locked(page);
	}
	for (; first < end; first++)
		clear_highpage(page + (first & mask));
	xa_set_mark(&region->slots, index, COWBUF_SLOT_DIRTY);
	unlock_page(page);
out_unlock:
	up_write(&region->map_lock);
	return ret;
}

/*
 * fallocate(PUNCH_HOLE): the pages [@first, @end) read as zero afterwards.
 * Whole frames are decommitted; the parts of frames at either end of a huge
 * region's range are zeroed (region_zero_partial()).
 */
static int region_punch(struct cowbuf_region *region, pgoff_t first, pgoff_t end)
{
	unsigned long mask = (1UL << region->order) - 1;
	pgoff_t head_end = min(end, (first + mask) & ~mask);
	pgoff_t tail = max(head_end, end & ~mask);
	int ret = 0;

	if (first < head_end)
		ret = region_zero_partial(region, first, head_end);
	if (!ret && head_end < tail)
		ret = region_decommit(region, head_end >> region->order,
				      (tail - head_end) >> region->order);
	if (!ret && tail < end)
		ret = region_zero_partial(region, tail, end);
	return ret;
}

/**
 * cowbuf_region_take() - hand the frames of a range to a message
 * @vma: the caller's mapping holding the range (mmap_lock held)
 * @first: the region's page offset of the range
 * @msg: the message, with @msg->nr_pages, @msg->mode and @msg->order (the
 *	region's) set and @msg->frames all NULL
 *
 * Removes every mapping of the range first. With COWBUF_MODE_MOVE the slots
 * are emptied and their frames go to the message: the range reads as zero
 * afterwards. With COWBUF_MODE_SHARE the slots keep their frames and the
 * message shares them: the next write through any holder copies.
 *
 * The message's frames are charged to the region's owner (msg->user) until
 * it is received or freed.
 *
 * Return: 0, -EBUSY if a frame the range holds alone is pinned, -ENOMEM if a
 * SHARE would take its owner past max_user_pages, or -EOVERFLOW if a frame
 * to be shared has so many references that another could overflow its
 * count (nothing changed in every case).
 */
int cowbuf_region_take(struct vm_area_struct *vma, pgoff_t first,
		       struct cowbuf_msg *msg)
{
	struct cowbuf_region *region = vma->vm_private_data;
	unsigned long nr = msg->nr_pages >> region->order, index, i, count = 0;
	XA_STATE(xas, &region->slots, 0);
	bool pinned, mapped = false, full = false;
	struct page *page;
	int attempt;

	first >>= region->order;

	down_write(&region->map_lock);
	xa_for_each_range(&region->slots, index, page, first, first + nr - 1) {
		msg->frames[index - first] = page;
		count++;
	}
	cowbuf_region_unmap(region, first, nr);
	/*
	 * With every mapping of the range gone, a reference beyond the holders'
	 * and the page tables' is a pin. Taking each page lock also waits for
	 * faults that were still mapping the frame; a second unmap removes
	 * what they mapped, if they did (no fault can start: map_lock is held
	 * for write). Others hold a reference for a moment without the
	 * page lock - a fault on its way in, an unmap that has removed its
	 * entries but not yet dropped their references (the TLB batch of
	 * munmap() or of an exiting process), and either may be preempted on a
	 * busy machine: look again, waiting longer each time, before calling a
	 * frame pinned.
	 *
	 * Only a frame the range holds alone can be pinned in a way that
	 * matters. One shared with other holders is written in place by
	 * nobody: a write copies it, and so does the write of the holder left
	 * with it last while a pin remains (.page_mkwrite). Looking at it would
	 * only see the passing references of the other holders' faults and
	 * unmaps, which never stop on a frame that many busy processes share.
	 */
	for (attempt = 0; attempt < COWBUF_PIN_RETRIES; attempt++) {
		pinned = false;
		for (i = 0; i < nr && !pinned && !full; i++) {
			page = msg->frames[i];
			if (!page)
				continue;
			lock_page(page);
			if (!cowbuf_frame_idle(page)) {
				mapped = true;
				pinned = cowbuf_frame_sharers(page) == 1 &&
					 cowbuf_frame_pinned(page);
				/*
				 * Mapped again by a racing fault: until the
				 * unmap below, a reference may still be taken
				 * through that entry, unseen. A frame moved
				 * so is treated as once shared (see "Pins
				 * and writes", frame.c).
				 */
				if (!pinned && msg->mode == COWBUF_MODE_MOVE)
					cowbuf_frame_mark_shared_locked(page);
			} else if (cowbuf_frame_sharers(page) == 1) {
				/*
				 * Idle: no entry maps it and, with map_lock
				 * held, none will; nothing but its holder
				 * references it.
				 */
				cowbuf_frame_settle_locked(page);
			}
			cowbuf_frame_mark_sent_locked(page);
			/* Nothing can take references by the billion meanwhile. */
			if (msg->mode == COWBUF_MODE_SHARE && !cowbuf_frame_may_share(page))
				full = true;
			unlock_page(page);
		}
		if (!pinned)
			break;
		/* What a racing fault mapped counts as mapped, not as a pin. */
		cowbuf_region_unmap(region, first, nr);
		usleep_range(100 << attempt, 200 << attempt);
	}
	if (mapped)
		cowbuf_region_unmap(region, first, nr);
	if (pinned || full) {
		memset(msg->frames, 0, nr * sizeof(msg->frames[0]));
		up_write(&region->map_lock);
		return full ? -EOVERFLOW : -EBUSY;
	}

	/*
	 * The message's frames stay charged to the region's owner while
	 * queued: a MOVE hands the region's charge to the message, a SHARE
	 * charges the message as much again.
	 */
	if (msg->mode == COWBUF_MODE_SHARE &&
	    cowbuf_user_charge(region->user, count << region->order)) {
		memset(msg->frames, 0, nr * sizeof(msg->frames[0]));
		up_write(&region->map_lock);
		return -ENOMEM;
	}
	msg->user = cowbuf_user_hold(region->user);
	msg->charged = count << region->order;
	if (msg->mode == COWBUF_MODE_MOVE) {
		xas_set(&xas, first);
		xas_lock(&xas);
		xas_for_each(&xas, page, first + nr - 1)
			xas_store(&xas, NULL);
		xas_unlock(&xas);
		atomic_long_sub(count << region->order, &region->committed);
	} else {
		for (i = 0; i < nr; i++) {
			page = msg->frames[i];
			if (!page)
				continue;
			lock_page(page);
			cowbuf_frame_share_locked(page);
			unlock_page(page);
		}
	}
	msg->nr_frames = count;
	up_write(&region->map_lock);
	return 0;
}

/**
 * cowbuf_region_place() - put a message's frames into a range
 * @vma: the caller's mapping holding the range (mmap_lock held)
 * @addr: the range's start address in @vma
 * @first: the region's page offset of @addr
 * @msg: the message; its frames move to the slots
 *
 * The frames the slots held before are released; slots facing a NULL entry
 * of the message become empty. The new frames are mapped into @vma at once
 * (read-only; huge frames by faults, once map_lock is dropped). On success
 * @msg->frames is left all NULL, and the message can be freed.
 *
 * Return: 0, -EINVAL if the message's frames are not of the region's size,
 * or -ENOMEM (a cap, or no memory), with nothing changed.
 */
int cowbuf_region_place(struct vm_area_struct *vma, unsigned long addr,
			pgoff_t first, struct cowbuf_msg *msg)
{
	struct cowbuf_region *region = vma->vm_private_data;
	unsigned long nr = msg->nr_pages >> region->order, i = 0, j, nr_old;
	XA_STATE(xas, &region->slots, 0);
	struct page **old;
	long delta;
	int ret;

	if (msg->order != region->order)
		return -EINVAL;
	first >>= region->order;

	old = kvcalloc(nr, sizeof(*old), GFP_KERNEL_ACCOUNT);
	if (!old)
		return -ENOMEM;
	down_write(&region->map_lock);
	nr_old = region_count_committed(region, first, nr);
	delta = (long)msg->nr_frames - (long)nr_old;
	if (delta > 0) {
		ret = cowbuf_region_charge(region, delta << region->order);
		if (ret)
			goto out_unlock;
	}

	/*
	 * Store the message's frames, remembering what the slots held. Only
	 * these stores can fail (no memory for an xarray node), and undoing
	 * them never allocates: every slot written is present.
	 */
	do {
		xas_lock(&xas);
		for (; i < nr; i++) {
			if (!msg->frames[i])
				continue;
			xas_set(&xas, first + i);
			old[i] = xas_store(&xas, msg->frames[i]);
			if (xas_error(&xas))
				break;
			xas_set_mark(&xas, COWBUF_SLOT_DIRTY);
		}
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_KERNEL_ACCOUNT));
	ret = xas_error(&xas);
	if (ret) {
		xas_lock(&xas);
		for (j = 0; j < i; j++) {
			if (!msg->frames[j])
				continue;
			xas_set(&xas, first + j);
			xas_store(&xas, old[j]);
			old[j] = NULL;
		}
		xas_unlock(&xas);
		if (delta > 0)
			cowbuf_region_uncharge(region, delta << region->order);
		goto out_unlock;
	}
	/* Slots facing a hole of the message become empty: never fails. */
	xas_lock(&xas);
	for (i = 0; i < nr; i++) {
		if (msg->frames[i])
			continue;
		xas_set(&xas, first + i);
		old[i] = xas_store(&xas, NULL);
	}
	xas_unlock(&xas);

	cowbuf_region_zero_barrier(region);
	region_drop_frames(region, first, nr, old, nr);
	if (delta < 0)
		cowbuf_region_uncharge(region, -delta << region->order);
	if (!region->order)
		region_map_runs(vma, addr, msg->frames, nr);
	up_write(&region->map_lock);
	if (region->order)
		region_fault_in_runs(vma, addr, msg->frames, nr);
	/* The slots own the frames now. */
	memset(msg->frames, 0, nr * sizeof(msg->frames[0]));
	kvfree(old);
	return 0;

out_unlock:
	up_write(&region->map_lock);
	kvfree(old);
	return ret;
}

static long region_ioctl_info(struct cowbuf_region *region, void __user *uarg)
{
	struct cowbuf_region_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.flags || info.frame_size)
		return -EINVAL;
	info.size = pgoff_to_bytes(region->nr_pages);
	info.committed_pages = atomic_long_read(&region->committed);
	info.frame_size = PAGE_SIZE << region->order;
	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long region_ioctl_range(struct cowbuf_region *region, unsigned int cmd,
			       void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct cowbuf_range range;
	pgoff_t first;
	long ret;

	if (copy_from_user(&range, uarg, sizeof(range)))
		return -EFAULT;
	if (range.pad)
		return -EINVAL;
	if (cmd == COWBUF_IOC_MERGE) {
		if (range.flags != COWBUF_MERGE_ENABLE &&
		    range.flags != COWBUF_MERGE_DISABLE)
			return -EINVAL;
	} else if (range.flags) {
		return -EINVAL;
	}
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = cowbuf_region_vma(mm, range.addr, range.length, &first);
	if (!vma || vma->vm_private_data != region) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (cmd == COWBUF_IOC_COMMIT)
		ret = region_commit(region, vma, range.addr, first >> region->order,
				    range.length >> (PAGE_SHIFT + region->order));
	else if (cmd == COWBUF_IOC_DECOMMIT)
		ret = region_decommit(region, first >> region->order,
				      range.length >> (PAGE_SHIFT + region->order));
	else
		ret = cowbuf_merge_ioctl(region, vma, first,
					 range.length >> PAGE_SHIFT, range.flags);
out_unlock:
	mmap_read_unlock(mm);
	return ret;
}

static long cowbuf_region_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	struct cowbuf_region *region = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case COWBUF_IOC_VERSION:
		return cowbuf_ioctl_version(uarg);
	case COWBUF_IOC_REGION_INFO:
		return region_ioctl_info(region, uarg);
	case COWBUF_IOC_COMMIT:
	case COWBUF_IOC_DECOMMIT:
	case COWBUF_IOC_MERGE:
		/* They change the region: not through a read-only file. */
		if (!(file->f_mode & FMODE_WRITE))
			return -EBADF;
		return region_ioctl_range(region, cmd, uarg);
	case COWBUF_IOC_MERGE_INFO:
		return cowbuf_merge_info(region, uarg);
	default:
		return -ENOTTY;
	}
}

static void cowbuf_region_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct cowbuf_region *region = file->private_data;

	seq_printf(m, "cowbuf-region-size:\t%llu\n",
		   (unsigned long long)pgoff_to_bytes(region->nr_pages));
	seq_printf(m, "cowbuf-committed-pages:\t%ld\n",
		   atomic_long_read(&region->committed));
	seq_printf(m, "cowbuf-frame-size:\t%lu\n", PAGE_SIZE << region->order);
	cowbuf_merge_show_fdinfo(m, region);
}

/**
 * cowbuf_region_fallocate() - commit or decommit a range of a region's file
 * @file: a region file opened for writing (vfs_fallocate() checks that)
 * @mode: 0 or FALLOC_FL_KEEP_SIZE to commit, FALLOC_FL_PUNCH_HOLE |
 *	FALLOC_FL_KEEP_SIZE to decommit; anything else is -EOPNOTSUPP
 * @offset: start, in bytes: a multiple of the frame size to commit, of the
 *	page size to punch
 * @len: length in bytes, nonzero (vfs_fallocate() checks that), a multiple
 *	of the same size
 *
 * A punched range reads as zero afterwards and its whole frames are freed, as
 * with COWBUF_IOC_DECOMMIT; the pages of a huge region's frame punched
 * without the rest of it are zeroed, and the frame is freed once all of it
 * is punched at once, or, in a mergeable range, once cowbufd finds it all
 * zero. The part of a punched range past the region's end is ignored, as on
 * a regular file. A committed range is filled as with COWBUF_IOC_COMMIT
 * (charged, all or nothing) but nothing is mapped: mappings fault frames in.
 * A region's size is fixed, so committing past its end fails with -EPERM, as
 * growing a memfd sealed with F_SEAL_GROW does.
 *
 * Return: 0, -EOPNOTSUPP, -EINVAL for a misaligned range, -EPERM past the
 * end, -ENOMEM (a cap, the memory cgroup, no memory) as for
 * COWBUF_IOC_COMMIT, or to copy a shared huge frame partly punched.
 */
static long cowbuf_region_fallocate(struct file *file, int mode, loff_t offset,
				    loff_t len)
{
	struct cowbuf_region *region = file->private_data;
	unsigned int shift = PAGE_SHIFT + region->order;
	loff_t size = pgoff_to_bytes(region->nr_pages);

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		if ((offset | len) & ~PAGE_MASK)
			return -EINVAL;
		if (offset >= size)
			return 0;
		len = min(len, size - offset);
		return region_punch(region, offset >> PAGE_SHIFT,
				    (offset + len) >> PAGE_SHIFT);
	}
	if ((offset | len) & ((1ULL << shift) - 1))
		return -EINVAL;
	if (offset >= size || len > size - offset)
		return -EPERM;
	return region_commit(region, NULL, 0, offset >> shift, len >> shift);
}

/* A region file opened again, through /proc/<pid>/fd/<n>. */
static int cowbuf_region_open(struct inode *inode, struct file *file)
{
	int ret;

	ret = cowbuf_region_file_pin();
	if (ret)
		return ret;
	file->private_data = inode->i_private;
	return 0;
}

static int cowbuf_region_release(struct inode *inode, struct file *file)
{
	cowbuf_region_file_unpin();
	return 0;
}

static const struct file_operations cowbuf_region_fops = {
	.owner = THIS_MODULE,
	.open = cowbuf_region_open,
	.release = cowbuf_region_release,
	.mmap = cowbuf_region_mmap,
	.get_unmapped_area = cowbuf_region_get_unmapped_area,
	.unlocked_ioctl = cowbuf_region_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.show_fdinfo = cowbuf_region_show_fdinfo,
	.fallocate = cowbuf_region_fallocate,
	.llseek = generic_file_llseek,
};

/**
 * cowbuf_region_destroy() - free a region whose inode is being evicted
 * @region: the region; no file, mapping, ioctl or fault of it remains
 */
void cowbuf_region_destroy(struct cowbuf_region *region)
{
	unsigned long index, count = 0;
	struct page *page;

	cowbuf_merge_region_release(region);
	xa_for_each(&region->slots, index, page) {
		cowbuf_frame_release(page);
		if (!(++count % 256))
			cond_resched();
	}
	xa_destroy(&region->slots);
	cowbuf_region_uncharge(region, count << region->order);
	cowbuf_user_put(region->user);
	kfree(region);
	atomic_long_dec(&cowbuf_nr_regions);
}

/**
 * cowbuf_region_create() - reserve a region
 * @size: bytes, validated by the caller (whole huge frames if @huge)
 * @mergeable: whether the merge scanner may merge all of it
 * @huge: whether its frames are huge
 *
 * The region is owned by the calling user, who is charged for what it
 * commits. Nothing is allocated for its pages; the first huge region makes
 * the module allocate its huge zero frame.
 *
 * Return: the region's new file, or an ERR_PTR().
 */
struct file *cowbuf_region_create(u64 size, bool mergeable, bool huge)
{
	struct cowbuf_region *region;
	struct file *file;
	int ret;

	if (huge) {
		ret = cowbuf_frame_huge_zero_prepare();
		if (ret)
			return ERR_PTR(ret);
	}
	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return ERR_PTR(-ENOMEM);
	region->user = cowbuf_user_get(current_uid());
	if (!region->user) {
		ret = -ENOMEM;
		goto err_free_region;
	}
	address_space_init_once(&region->mapping);
	init_rwsem(&region->map_lock);
	mutex_init(&region->fill_lock);
	xa_init(&region->slots);
	region->nr_pages = size >> PAGE_SHIFT;
	region->order = huge ? COWBUF_HUGE_ORDER : 0;
	atomic_long_set(&region->committed, 0);
	ret = cowbuf_merge_region_init(region, mergeable);
	if (ret)
		goto err_put_user;
	ret = cowbuf_region_file_pin();
	if (ret)
		goto err_merge_release;
	file = cowbuf_region_file_alloc(region, &cowbuf_region_fops);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_unpin;
	}
	atomic_long_inc(&cowbuf_nr_regions);
	return file;

err_unpin:
	cowbuf_region_file_unpin();
err_merge_release:
	cowbuf_merge_region_release(region);
err_put_user:
	cowbuf_user_put(region->user);
err_free_region:
	kfree(region);
	return ERR_PTR(ret);
}
