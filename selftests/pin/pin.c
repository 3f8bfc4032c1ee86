// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf_pin: a test-only "device" that holds long-term write pins on user
 * memory, for cowbuf's selftests (pin_test.c), as test_hmm is for hmm-tests.
 *
 * Each open file of /dev/cowbuf_pin pins at most one range at a time with
 * pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM), the pin VFIO type1 and
 * RDMA memory registration take, and reads and writes the pinned pages
 * through the kernel's mapping of them, as a device's DMA would: what the
 * test sees is what a real device would see. It can also hold the page lock
 * of one frame (CBPIN_IOC_LOCK), for tests of who waits for whom, and stop
 * cowbuf's scanner after each merge (merge_stop.c). Never load it on a
 * machine whose users are not tests: any user who can open the node can pin
 * memory of their own for as long as they like.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "cbpin.h"
#include "cowbuf_pin.h"

#define CBPIN_MAX_PAGES	((64UL << 20) >> PAGE_SHIFT)

/**
 * struct cbpin_file - what one open file pins
 * @lock: protects the fields below
 * @pages: the pinned pages, or NULL
 * @nr_pages: entries of @pages
 * @locked: the frame whose page lock the file holds (CBPIN_IOC_LOCK), with
 *	a reference, or NULL
 */
struct cbpin_file {
	struct mutex lock;	/* protects the fields below */
	struct page **pages;
	unsigned long nr_pages;
	struct page *locked;
};

static void cbpin_unpin(struct cbpin_file *pf)
{
	lockdep_assert_held(&pf->lock);
	if (!pf->pages)
		return;
	unpin_user_pages_dirty_lock(pf->pages, pf->nr_pages, true);
	kvfree(pf->pages);
	pf->pages = NULL;
	pf->nr_pages = 0;
}

static long cbpin_pin(struct cbpin_file *pf, void __user *uarg)
{
	struct cowbuf_pin_range range;
	unsigned long nr;
	struct page **pages;
	int got;

	if (copy_from_user(&range, uarg, sizeof(range)))
		return -EFAULT;
	if (!range.length || !PAGE_ALIGNED(range.addr) || !PAGE_ALIGNED(range.length) ||
	    (range.length >> PAGE_SHIFT) > CBPIN_MAX_PAGES)
		return -EINVAL;
	nr = range.length >> PAGE_SHIFT;
	pages = kvcalloc(nr, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return -ENOMEM;
	got = pin_user_pages_fast(range.addr, nr, FOLL_WRITE | FOLL_LONGTERM, pages);
	if (got != nr) {
		if (got > 0)
			unpin_user_pages(pages, got);
		kvfree(pages);
		return got < 0 ? got : -EFAULT;
	}
	mutex_lock(&pf->lock);
	cbpin_unpin(pf);
	pf->pages = pages;
	pf->nr_pages = nr;
	mutex_unlock(&pf->lock);
	return 0;
}

static long cbpin_lock(struct cbpin_file *pf, void __user *uarg)
{
	struct page *page;
	u64 addr;
	int got;

	if (copy_from_user(&addr, uarg, sizeof(addr)))
		return -EFAULT;
	if (!PAGE_ALIGNED(addr))
		return -EINVAL;
	got = get_user_pages_fast(addr, 1, 0, &page);
	if (got != 1)
		return got < 0 ? got : -EFAULT;
	mutex_lock(&pf->lock);
	if (pf->locked) {
		mutex_unlock(&pf->lock);
		put_page(page);
		return -EBUSY;
	}
	page = compound_head(page);
	lock_page(page);
	pf->locked = page;
	mutex_unlock(&pf->lock);
	return 0;
}

static void cbpin_unlock(struct cbpin_file *pf)
{
	lockdep_assert_held(&pf->lock);
	if (!pf->locked)
		return;
	unlock_page(pf->locked);
	put_page(pf->locked);
	pf->locked = NULL;
}

/* Copy between the pinned pages and a user buffer, a page at a time. */
static long cbpin_io(struct cbpin_file *pf, void __user *uarg, bool write)
{
	struct cowbuf_pin_io io;
	void __user *buf;
	size_t off, chunk;
	unsigned long left;
	long ret = 0;
	void *kaddr;

	if (copy_from_user(&io, uarg, sizeof(io)))
		return -EFAULT;
	buf = u64_to_user_ptr(io.buf);
	mutex_lock(&pf->lock);
	if (!pf->pages || io.offset > ((u64)pf->nr_pages << PAGE_SHIFT) ||
	    io.length > ((u64)pf->nr_pages << PAGE_SHIFT) - io.offset) {
		ret = -EINVAL;
		goto out_unlock;
	}
	off = io.offset;
	while (io.length) {
		chunk = min_t(size_t, io.length, PAGE_SIZE - offset_in_page(off));
		kaddr = kmap_local_page(pf->pages[off >> PAGE_SHIFT]);
		if (write)
			left = copy_from_user(kaddr + offset_in_page(off), buf, chunk);
		else
			left = copy_to_user(buf, kaddr + offset_in_page(off), chunk);
		kunmap_local(kaddr);
		if (left) {
			ret = -EFAULT;
			break;
		}
		off += chunk;
		buf += chunk;
		io.length -= chunk;
	}
out_unlock:
	mutex_unlock(&pf->lock);
	return ret;
}

static long cbpin_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct cbpin_file *pf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case CBPIN_IOC_PIN:
		return cbpin_pin(pf, uarg);
	case CBPIN_IOC_UNPIN:
		mutex_lock(&pf->lock);
		cbpin_unpin(pf);
		mutex_unlock(&pf->lock);
		return 0;
	case CBPIN_IOC_READ:
		return cbpin_io(pf, uarg, false);
	case CBPIN_IOC_WRITE:
		return cbpin_io(pf, uarg, true);
	case CBPIN_IOC_LOCK:
		return cbpin_lock(pf, uarg);
	case CBPIN_IOC_UNLOCK:
		mutex_lock(&pf->lock);
		cbpin_unlock(pf);
		mutex_unlock(&pf->lock);
		return 0;
	case CBPIN_IOC_MERGE_STOP:
		return cbpin_merge_stop(file);
	case CBPIN_IOC_MERGE_WAIT:
		return cbpin_merge_wait(file, uarg);
	case CBPIN_IOC_MERGE_GO:
		return cbpin_merge_go(file);
	case CBPIN_IOC_MERGE_END:
		return cbpin_merge_end(file);
	}
	return -ENOTTY;
}

static int cbpin_open(struct inode *inode, struct file *file)
{
	struct cbpin_file *pf = kzalloc(sizeof(*pf), GFP_KERNEL_ACCOUNT);

	if (!pf)
		return -ENOMEM;
	mutex_init(&pf->lock);
	file->private_data = pf;
	return 0;
}

static int cbpin_release(struct inode *inode, struct file *file)
{
	struct cbpin_file *pf = file->private_data;

	/* -EINVAL unless this file armed the stopper: nothing to do then. */
	cbpin_merge_end(file);
	mutex_lock(&pf->lock);
	cbpin_unlock(pf);
	cbpin_unpin(pf);
	mutex_unlock(&pf->lock);
	mutex_destroy(&pf->lock);
	kfree(pf);
	return 0;
}

static const struct file_operations cbpin_fops = {
	.owner = THIS_MODULE,
	.open = cbpin_open,
	.release = cbpin_release,
	.unlocked_ioctl = cbpin_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice cbpin_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cowbuf_pin",
	.fops = &cbpin_fops,
	.mode = 0600,
};

module_misc_device(cbpin_misc);

MODULE_DESCRIPTION("cowbuf selftests: a device holding long-term write pins");
MODULE_LICENSE("GPL");
