// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: which ranges of a region may merge, and unmerging them.
 *
 * DOC: Mergeable ranges
 *
 * A region's mergeable ranges are a sorted list of disjoint page ranges
 * (struct cowbuf_merge_range): all of the region when it is created with
 * COWBUF_REGION_MERGEABLE, or what COWBUF_IOC_MERGE enables, like
 * MADV_MERGEABLE. Disabling a range takes it out and unmerges it: every slot
 * of it whose frame is shared gets a private copy, as run=2 does for all
 * ranges. A region with a range is on cowbufd's list; it leaves the list
 * with its last range, or when it is freed.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/cowbuf.h>

#include "cowbuf.h"
#include "merge.h"

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

	lockdep_assert_held_write(&region->map_lock);
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

/*
 * Bumped, under cowbuf_merge_mutex, whenever a range of any region changes or
 * goes: cowbufd's cursor keeps a range only while this stays the same.
 */
unsigned long cowbuf_merge_ranges_seq;

/*
 * Ranges a region has (cowbuf_merge_mutex held). At most max_merge_ranges,
 * so that what one walk of them costs, under the global mutex, is bounded.
 */
static unsigned int ranges_count(struct cowbuf_region *region)
{
	struct cowbuf_merge_range *range;
	unsigned int n = 0;

	list_for_each_entry(range, &region->merge_ranges, node)
		n++;
	return n;
}

/*
 * Add [start, end) to the region's ranges, keeping them sorted, disjoint.
 * Return: 0, or -ENOMEM without memory or if the region would have more
 * than max_merge_ranges ranges.
 */
static int ranges_add(struct cowbuf_region *region, pgoff_t start, pgoff_t end)
{
	struct cowbuf_merge_range *range, *next, *new;
	unsigned int absorbed = 0;

	lockdep_assert_held(&cowbuf_merge_mutex);
	list_for_each_entry(range, &region->merge_ranges, node)
		if (range->end >= start && range->start <= end)
			absorbed++;
	if (ranges_count(region) + 1 - absorbed > READ_ONCE(cowbuf_max_merge_ranges))
		return -ENOMEM;
	new = kmalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;
	cowbuf_merge_ranges_seq++;
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

/*
 * Remove [start, end) from the region's ranges. Return: 0, or -ENOMEM
 * without memory or if splitting a range in two would make more than
 * max_merge_ranges ranges (nothing changed).
 */
static int ranges_remove(struct cowbuf_region *region, pgoff_t start, pgoff_t end)
{
	struct cowbuf_merge_range *range, *next, *tail;

	lockdep_assert_held(&cowbuf_merge_mutex);
	cowbuf_merge_ranges_seq++;
	list_for_each_entry_safe(range, next, &region->merge_ranges, node) {
		if (range->end <= start || range->start >= end)
			continue;
		if (range->start < start && range->end > end) {
			/* Split in two: the only case that adds a range. */
			if (ranges_count(region) >= READ_ONCE(cowbuf_max_merge_ranges))
				return -ENOMEM;
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

	lockdep_assert_held(&cowbuf_merge_mutex);
	cowbuf_merge_ranges_seq++;
	list_for_each_entry_safe(range, next, &region->merge_ranges, node) {
		list_del(&range->node);
		kfree(range);
	}
}

/* Blocks of hashes a 4 KiB region's hash table has room for. */
static unsigned long hash_blocks(struct cowbuf_region *region)
{
	return DIV_ROUND_UP(region->nr_pages, COWBUF_HASHES_PER_BLOCK);
}

/*
 * Give a 4 KiB region the array of its hash blocks, when it first gets a
 * mergeable range (cowbuf_merge_mutex held): a region that never merges
 * costs nothing for it. Charged to the caller's memory cgroup.
 * Return: 0 or -ENOMEM.
 */
static int region_hashes_prepare(struct cowbuf_region *region)
{
	lockdep_assert_held(&cowbuf_merge_mutex);
	if (region->order || region->hashes)
		return 0;
	region->hashes = kvcalloc(hash_blocks(region), sizeof(*region->hashes),
				  GFP_KERNEL_ACCOUNT);
	return region->hashes ? 0 : -ENOMEM;
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
	INIT_LIST_HEAD(&region->merge_candidates);
	region->hashes = NULL;
	xa_init(&region->merge_backoff);
	atomic_long_set(&region->zero_pages, 0);
	atomic_long_set(&region->cow_breaks, 0);
	region->merge_memcg = get_mem_cgroup_from_mm(current->mm);
	if (!mergeable)
		return 0;
	mutex_lock(&cowbuf_merge_mutex);
	ret = region_hashes_prepare(region);
	if (!ret)
		ret = ranges_add(region, 0, region->nr_pages);
	if (!ret)
		cowbufd_add_region(region);
	mutex_unlock(&cowbuf_merge_mutex);
	if (ret) {
		kvfree(region->hashes);
		mem_cgroup_put(region->merge_memcg);
	}
	return ret;
}

/**
 * cowbuf_merge_region_release() - take a region out of merging for good
 * @region: the region, about to be freed
 */
void cowbuf_merge_region_release(struct cowbuf_region *region)
{
	unsigned long i;

	mutex_lock(&cowbuf_merge_mutex);
	if (!list_empty(&region->merge_node))
		cowbufd_remove_region(region);
	/* Only the scanner adds candidates, of the regions on its list. */
	WARN_ON_ONCE(!list_empty(&region->merge_candidates));
	ranges_free(region);
	mutex_unlock(&cowbuf_merge_mutex);
	if (region->hashes) {
		for (i = 0; i < hash_blocks(region); i++)
			kfree(region->hashes[i]);
		kvfree(region->hashes);
	}
	xa_destroy(&region->merge_backoff);
	mem_cgroup_put(region->merge_memcg);
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
		ret = region_hashes_prepare(region);
		if (!ret)
			ret = ranges_add(region, first, first + nr);
		if (!ret && list_empty(&region->merge_node))
			cowbufd_add_region(region);
		mutex_unlock(&cowbuf_merge_mutex);
		return ret;
	}
	ret = ranges_remove(region, first, first + nr);
	if (!ret)
		cowbuf_merge_forget_range(region, first, first + nr);
	if (!ret && list_empty(&region->merge_ranges) &&
	    !list_empty(&region->merge_node))
		cowbufd_remove_region(region);
	/*
	 * The copies are made without the global mutex, which nobody should
	 * wait for behind one region's map_lock and copies: the range is out
	 * of merging already, so nothing merges into its slots meanwhile (a
	 * stable frame still shared, which another region merges into, is
	 * shared all the same and copied).
	 */
	mutex_unlock(&cowbuf_merge_mutex);
	if (!ret) {
		down_write(&region->map_lock);
		ret = region_unmerge(region, first, nr);
		up_write(&region->map_lock);
	}
	return ret;
}

/**
 * cowbuf_merge_unmerge_all() - run=2: unmerge every mergeable range
 *
 * Context: cowbuf_merge_mutex held.
 * Return: 0 or -ENOMEM.
 */
int cowbuf_merge_unmerge_all(void)
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
