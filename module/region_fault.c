// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the fault path of regions, for both frame sizes: .fault fills or
 * maps a slot, .page_mkwrite decides whether a write goes in place or to a
 * copy (copy-on-write breaks, pinned frames), .pfn_mkwrite refuses writes
 * to the zero page. What a program sees of it is in region.c's DOC:
 * Regions and Huge regions.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/pfn_t.h>

#include "cowbuf.h"
#include "region.h"
#include "trace.h"

/**
 * cowbuf_region_zero_barrier() - wait for faults mapping the huge zero frame
 * @region: the region, whose empty slots just got frames
 *
 * Waits for read faults still mapping the huge zero frame into the slots
 * (the lock barrier of the locking overview), so that unmapping the slots
 * next removes what they mapped. Called under fill_lock or map_lock
 * (write), which order the test of zero_handed_out after any fault that
 * handed the frame out.
 */
void cowbuf_region_zero_barrier(struct cowbuf_region *region)
{
	if (region->order && READ_ONCE(region->zero_handed_out))
		cowbuf_frame_lock_barrier(cowbuf_frame_huge_zero());
}

/*
 * Commit the empty slot @index from a fault (map_lock held for read).
 * Return: 0 when the slot holds a frame (ours or a racing fault's), or
 * VM_FAULT_SIGBUS when a cap, the memory cgroup or (huge frames)
 * fragmentation says no.
 */
static vm_fault_t region_fill_slot(struct cowbuf_region *region, pgoff_t index)
{
	unsigned long nr = 1UL << region->order;
	struct page *page;
	void *old;

	lockdep_assert_held(&region->map_lock);
	if (cowbuf_region_charge(region, nr))
		return VM_FAULT_SIGBUS;
	page = cowbuf_frame_alloc(region->order);
	if (!page)
		goto err_uncharge;

	mutex_lock(&region->fill_lock);
	old = xa_cmpxchg(&region->slots, index, NULL, page, GFP_KERNEL);
	if (old) {
		mutex_unlock(&region->fill_lock);
		cowbuf_frame_release(page);
		if (xa_is_err(old))
			goto err_uncharge;
		cowbuf_region_uncharge(region, nr);
		return 0;
	}
	xa_set_mark(&region->slots, index, COWBUF_SLOT_DIRTY);
	cowbuf_region_zero_barrier(region);
	/* Zero-page entries for this slot would now hide the frame. */
	cowbuf_region_unmap(region, index, 1);
	mutex_unlock(&region->fill_lock);
	return 0;

err_uncharge:
	cowbuf_region_uncharge(region, nr);
	return VM_FAULT_SIGBUS;
}

/*
 * For a read of the empty huge slot @index (map_lock held for read): the
 * huge zero frame, referenced and locked, or NULL if the slot was filled
 * meanwhile. Its page lock, held until the fault core has mapped it, is what
 * region_fill_slot() waits for.
 */
static struct page *region_get_huge_zero(struct cowbuf_region *region,
					 pgoff_t index)
{
	struct page *zero = cowbuf_frame_huge_zero();

	lockdep_assert_held(&region->map_lock);
	mutex_lock(&region->fill_lock);
	if (xa_load(&region->slots, index)) {
		mutex_unlock(&region->fill_lock);
		return NULL;
	}
	if (!region->zero_handed_out)
		WRITE_ONCE(region->zero_handed_out, true);
	get_page(zero);
	lock_page(zero);
	mutex_unlock(&region->fill_lock);
	return zero;
}

/* Map the zero page for a read of an empty slot (map_lock held for read). */
static vm_fault_t region_map_zero(struct cowbuf_region *region,
				  struct vm_fault *vmf)
{
	unsigned long pfn = page_to_pfn(ZERO_PAGE(vmf->address));
	vm_fault_t ret = 0;

	lockdep_assert_held(&region->map_lock);
	mutex_lock(&region->fill_lock);
	if (!xa_load(&region->slots, vmf->pgoff))
		ret = vmf_insert_mixed(vmf->vma, vmf->address,
				       pfn_to_pfn_t(pfn));
	mutex_unlock(&region->fill_lock);
	return ret;
}

/*
 * The frame in slot @index with a reference taken, or NULL. Under map_lock
 * (read) a copy-on-write break or the merge scanner may replace the slot's
 * frame and drop the slot's reference at any time; xa_lock, which every
 * slot change takes, keeps that reference until ours is taken.
 */
static struct page *region_get_frame(struct cowbuf_region *region, pgoff_t index)
{
	struct page *page;

	xa_lock(&region->slots);
	page = xa_load(&region->slots, index);
	if (page)
		get_page(page);
	xa_unlock(&region->slots);
	return page;
}

static vm_fault_t cowbuf_region_fault(struct vm_fault *vmf)
{
	struct cowbuf_region *region = vmf->vma->vm_private_data;
	pgoff_t index = vmf->pgoff >> region->order;
	struct page *page;
	vm_fault_t ret;

	if (vmf->pgoff >= region->nr_pages)
		return VM_FAULT_SIGBUS;

	down_read(&region->map_lock);
	for (;;) {
		page = region_get_frame(region, index);
		if (page) {
			lock_page(page);
			/* A copy-on-write break may have replaced it. */
			if (likely(xa_load(&region->slots, index) == page))
				break;
			unlock_page(page);
			put_page(page);
			continue;
		}
		if (vmf->flags & FAULT_FLAG_WRITE) {
			ret = region_fill_slot(region, index);
		} else if (region->order) {
			page = region_get_huge_zero(region, index);
			if (page)
				break;
			continue;
		} else {
			ret = region_map_zero(region, vmf);
		}
		if (ret) {
			up_read(&region->map_lock);
			return ret;
		}
	}
	up_read(&region->map_lock);

	/*
	 * Mapped read-only; .page_mkwrite decides about writing. The subpage
	 * of a huge frame: the fault core maps the whole frame by PMD where
	 * it can.
	 */
	vmf->page = page + (vmf->pgoff & ((1UL << region->order) - 1));
	return VM_FAULT_LOCKED;
}

/*
 * Put @copy, a private copy of the frame @page (locked, map_lock held;
 * shared, or pinned), in the slot @index, marked written, and @broken for
 * the merge scanner's back-off when a write broke the sharing; @page loses
 * the slot's share, its mappings of the slot and the slot's reference.
 * Unlocks @page.
 */
static void region_replace_slot(struct cowbuf_region *region, pgoff_t index,
				struct page *page, struct page *copy, bool broken)
{
	void *old;

	lockdep_assert_held(&region->map_lock);
	/* Replacing a present entry never allocates. */
	old = xa_store(&region->slots, index, copy, GFP_NOWAIT);
	WARN_ON_ONCE(old != page);
	xa_set_mark(&region->slots, index, COWBUF_SLOT_DIRTY);
	if (broken)
		xa_set_mark(&region->slots, index, COWBUF_SLOT_BROKEN);
	cowbuf_frame_unshare_locked(page);
	unlock_page(page);
	cowbuf_region_unmap(region, index, 1);
	put_page(page);		/* the slot's reference */
}

/**
 * cowbuf_region_copy_slot() - give a slot a private copy of its shared frame
 * @region: the region (map_lock held)
 * @index: the slot
 * @page: its frame, shared, locked; unlocked on return
 * @broken: a write broke the sharing: the slot is marked for the merge
 *	scanner's back-off
 *
 * The copy goes into the slot as region_replace_slot() puts it there (a
 * pinned frame held alone goes through region_copy_pinned(), which unmaps
 * first).
 *
 * Return: the copy, or NULL without memory for it (the slot unchanged).
 */
struct page *cowbuf_region_copy_slot(struct cowbuf_region *region, pgoff_t index,
				     struct page *page, bool broken)
{
	struct page *copy;

	lockdep_assert_held(&region->map_lock);
	copy = cowbuf_frame_dup(page);
	if (!copy) {
		unlock_page(page);
		return NULL;
	}
	region_replace_slot(region, index, page, copy, broken);
	return copy;
}

/*
 * Give the slot @index a private copy of its shared frame @page (locked,
 * map_lock held for read). Unlocks @page. Return: VM_FAULT_NOPAGE, after
 * which the access is retried and faults the copy in, or VM_FAULT_SIGBUS.
 */
static vm_fault_t region_break_cow(struct cowbuf_region *region, pgoff_t index,
				   struct page *page)
{
	lockdep_assert_held(&region->map_lock);
	if (!cowbuf_region_copy_slot(region, index, page, true))
		return VM_FAULT_SIGBUS;
	atomic_long_inc(&region->cow_breaks);
	atomic_long_inc(&cowbuf_nr_cow_breaks);
	trace_cowbuf_cow_break(region, index << region->order);
	return VM_FAULT_NOPAGE;
}

/*
 * Without memory for the copy region_copy_pinned() needs: the extra
 * reference of @page (locked, held by the slot @index alone) may be only
 * passing - another thread's fault of the same frame, which waits for the
 * page lock while holding it, or an unmap's TLB batch - so let it go, a
 * little longer each time, and look again. Return: 0 if the frame is no
 * longer pinned (still locked: the caller writes it in place),
 * VM_FAULT_NOPAGE if the slot changed meanwhile (unlocked; the access
 * faults again), or VM_FAULT_SIGBUS if it stays pinned (unlocked).
 */
static vm_fault_t region_wait_unpinned(struct cowbuf_region *region, pgoff_t index,
				       struct page *page)
{
	int attempt;

	for (attempt = 0; attempt < COWBUF_PIN_RETRIES; attempt++) {
		unlock_page(page);
		usleep_range(100 << attempt, 200 << attempt);
		lock_page(page);
		if (xa_load(&region->slots, index) != page ||
		    cowbuf_frame_sharers(page) > 1) {
			unlock_page(page);
			return VM_FAULT_NOPAGE;
		}
		if (!cowbuf_frame_pinned_in_fault(page))
			return 0;
	}
	unlock_page(page);
	atomic_long_inc(&cowbuf_nr_pinned_sigbus);
	return VM_FAULT_SIGBUS;
}

/*
 * A write to the frame @page (locked, map_lock held for read) that the slot
 * @index holds alone, but that is pinned and COWBUF_FRAME_WAS_SHARED: the
 * pin may be another holder's (a pipe after vmsplice() through a region the
 * frame was shared with), which must not see what this slot writes (see
 * "Pins and writes" in frame.c). The pinner keeps the bytes it pinned; the
 * slot gets a copy to write. Another mapping of the slot may map the frame
 * writable (a slot that was written before): its entries go before the
 * bytes are copied, and with the page lock held no fault maps them again,
 * so no write is lost. Without memory for the copy the write waits for a
 * passing reference to go (region_wait_unpinned()); one that stays fails
 * the write: the frame stays as it is, the access gets SIGBUS and
 * pinned_sigbus counts it.
 * Return: 0 with @page still locked if it may be written in place after
 * all; otherwise, @page unlocked, VM_FAULT_NOPAGE (the access faults the
 * copy in) or VM_FAULT_SIGBUS.
 */
static vm_fault_t region_copy_pinned(struct cowbuf_region *region, pgoff_t index,
				     struct page *page)
{
	struct page *copy = cowbuf_frame_alloc_like(page);

	lockdep_assert_held(&region->map_lock);
	if (!copy)
		return region_wait_unpinned(region, index, page);
	cowbuf_region_unmap(region, index, 1);
	cowbuf_frame_copy(copy, page);
	region_replace_slot(region, index, page, copy, false);
	return VM_FAULT_NOPAGE;
}

/*
 * Let a write to the frame @page (locked, map_lock held for read), which the
 * slot @index holds alone, go in place, pinned or not: a pin of a frame not
 * COWBUF_FRAME_WAS_SHARED is this region's own (see "Pins and writes" in
 * frame.c), and the caller found a marked one unpinned. Written from now
 * on: the merge scanner must look again. Return: VM_FAULT_LOCKED.
 */
static vm_fault_t region_write_in_place(struct cowbuf_region *region, pgoff_t index,
					struct page *page)
{
	lockdep_assert_held(&region->map_lock);
	if (cowbuf_frame_was_shared(page))
		cowbuf_frame_settle_locked(page);
	if (!xa_get_mark(&region->slots, index, COWBUF_SLOT_DIRTY))
		xa_set_mark(&region->slots, index, COWBUF_SLOT_DIRTY);
	return VM_FAULT_LOCKED;
}

/*
 * A write through a read-only entry of the huge zero frame (a PTE: a PMD is
 * zapped and faulted again instead): commit the slot, then refault.
 */
static vm_fault_t region_huge_zero_mkwrite(struct cowbuf_region *region,
					   pgoff_t index)
{
	vm_fault_t ret = 0;

	if (!xa_load(&region->slots, index))
		ret = region_fill_slot(region, index);
	return ret ? ret : VM_FAULT_NOPAGE;
}

static vm_fault_t cowbuf_region_page_mkwrite(struct vm_fault *vmf)
{
	struct cowbuf_region *region = vmf->vma->vm_private_data;
	struct page *page = compound_head(vmf->page);
	pgoff_t index = vmf->pgoff >> region->order;
	vm_fault_t ret;

	/*
	 * The fault core holds a reference to @page here. Rather than sleep
	 * with it while a SEND holds map_lock (which would make the frame look
	 * pinned to that SEND), let the access fault again, without it. Yield
	 * first: a kernel-mode access (copy_to_user()) refaults at once and,
	 * on a kernel without preemption, would otherwise keep the CPU from
	 * the writer it waits for (a soft lockup the gauntlet found).
	 */
	if (!down_read_trylock(&region->map_lock)) {
		cond_resched();
		return VM_FAULT_NOPAGE;
	}
	if (region->order && page == cowbuf_frame_huge_zero()) {
		ret = region_huge_zero_mkwrite(region, index);
		up_read(&region->map_lock);
		return ret;
	}
	lock_page(page);
	if (xa_load(&region->slots, index) != page) {
		/* The slot changed since the frame was mapped: refault. */
		unlock_page(page);
		ret = VM_FAULT_NOPAGE;
	} else if (cowbuf_frame_sharers(page) > 1) {
		ret = region_break_cow(region, index, page);
	} else if (cowbuf_frame_was_shared(page) &&
		   cowbuf_frame_pinned_in_fault(page)) {
		ret = region_copy_pinned(region, index, page);
		if (!ret)
			ret = region_write_in_place(region, index, page);
	} else {
		ret = region_write_in_place(region, index, page);
	}
	up_read(&region->map_lock);
	return ret;
}

/* A write to a zero-page entry: commit the slot and refault. */
static vm_fault_t cowbuf_region_pfn_mkwrite(struct vm_fault *vmf)
{
	struct cowbuf_region *region = vmf->vma->vm_private_data;
	vm_fault_t ret = 0;

	down_read(&region->map_lock);
	if (!xa_load(&region->slots, vmf->pgoff))
		ret = region_fill_slot(region, vmf->pgoff);
	up_read(&region->map_lock);
	return ret ? ret : VM_FAULT_NOPAGE;
}

const struct vm_operations_struct cowbuf_region_vm_ops = {
	.fault = cowbuf_region_fault,
	.page_mkwrite = cowbuf_region_page_mkwrite,
	.pfn_mkwrite = cowbuf_region_pfn_mkwrite,
};

/* A huge region's mapping splits at frame boundaries only (EINVAL). */
static int cowbuf_huge_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return IS_ALIGNED(addr, COWBUF_HUGE_SIZE) ? 0 : -EINVAL;
}

static unsigned long cowbuf_huge_pagesize(struct vm_area_struct *vma)
{
	return COWBUF_HUGE_SIZE;
}

const struct vm_operations_struct cowbuf_huge_vm_ops = {
	.fault = cowbuf_region_fault,
	.page_mkwrite = cowbuf_region_page_mkwrite,
	.may_split = cowbuf_huge_may_split,
	.pagesize = cowbuf_huge_pagesize,
};
