// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: channels, the queues that carry frames between regions.
 *
 * DOC: Transfers
 *
 * COWBUF_IOC_SEND takes a page-aligned range of one of the caller's region
 * mappings and queues its frames on a channel as one message, without
 * copying: in COWBUF_MODE_MOVE the slots are emptied (the range reads as
 * zero afterwards), in COWBUF_MODE_SHARE they keep their frames and the
 * message shares them copy-on-write. Either way every page-table entry of
 * the range is removed first, in one unmap_mapping_range() call.
 *
 * COWBUF_IOC_RECV takes the oldest message and places its frames into a
 * range of one of the caller's region mappings, releasing what the slots
 * held, and maps them into the caller's page tables with vm_insert_pages():
 * reading the received range takes no fault.
 *
 * A channel is reached only through its file descriptor (inherited, or
 * passed with SCM_RIGHTS): there are no global names. Its depth is bounded
 * (max_queue_depth when created) and so is a message (max_message_pages).
 * SEND waits while the channel is full and RECV while it is empty, both
 * interruptibly; with O_NONBLOCK they fail with EAGAIN instead. poll()
 * reports EPOLLIN while a message is queued and EPOLLOUT while there is
 * room. Closing the last reference frees the queued messages.
 *
 * A SEND or RECV that fails changes nothing: a RECV whose placement fails
 * puts the message back at the head of the queue, and one whose argument
 * cannot take the results fails with EFAULT before taking a message. A
 * message that the receiver cannot place (larger than every range it has,
 * or of the other frame size) is freed by COWBUF_RECV_DISCARD, so that no
 * sender can wedge a channel.
 *
 * A message carries frames of the size of the region it was sent from:
 * whole 2 MiB frames from a huge region, one slot and one PMD each. It can
 * be received only into a region of the same frame size (EINVAL otherwise,
 * the message staying queued): cowbuf never copies to convert.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/cred.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/cowbuf.h>

#include "cowbuf.h"

static struct cowbuf_msg *msg_alloc(unsigned long nr_pages, u32 mode,
				    unsigned int order)
{
	struct cowbuf_msg *msg;

	msg = kvzalloc(struct_size(msg, frames, nr_pages >> order),
		       GFP_KERNEL_ACCOUNT);
	if (!msg)
		return NULL;
	INIT_LIST_HEAD(&msg->node);
	msg->nr_pages = nr_pages;
	msg->mode = mode;
	msg->order = order;
	return msg;
}

/* Release the frames a message still holds, their charge, and the message. */
static void msg_free(struct cowbuf_msg *msg)
{
	unsigned long i;

	for (i = 0; i < msg->nr_pages >> msg->order; i++) {
		if (msg->frames[i])
			cowbuf_frame_release(msg->frames[i]);
		if (!(i % 256))
			cond_resched();
	}
	if (msg->user) {
		cowbuf_user_uncharge(msg->user, msg->charged);
		cowbuf_user_put(msg->user);
	}
	kvfree(msg);
}

/* Take a place in the queue if there is room. */
static bool channel_reserve(struct cowbuf_channel *ch)
{
	bool room;

	spin_lock(&ch->lock);
	room = ch->nr_queued + ch->nr_reserved < ch->max_queued;
	if (room)
		ch->nr_reserved++;
	spin_unlock(&ch->lock);
	return room;
}

static void channel_unreserve(struct cowbuf_channel *ch)
{
	spin_lock(&ch->lock);
	ch->nr_reserved--;
	spin_unlock(&ch->lock);
	wake_up_interruptible_poll(&ch->wait, EPOLLOUT | EPOLLWRNORM);
}

/* Queue @msg in the place reserved for it (at the head: a put-back). */
static void channel_enqueue(struct cowbuf_channel *ch, struct cowbuf_msg *msg,
			    bool head)
{
	spin_lock(&ch->lock);
	ch->nr_reserved--;
	ch->nr_queued++;
	ch->queued_pages += msg->nr_pages;
	if (head)
		list_add(&msg->node, &ch->queue);
	else
		list_add_tail(&msg->node, &ch->queue);
	spin_unlock(&ch->lock);
	wake_up_interruptible_poll(&ch->wait, EPOLLIN | EPOLLRDNORM);
}

/*
 * Take the oldest message if it fits in @max_pages; it keeps its place in
 * the queue's capacity (as a reservation) until placed or put back.
 * Return: the message; NULL if the queue is empty; ERR_PTR(-EMSGSIZE) with
 * *@nr_pages set if it does not fit.
 */
static struct cowbuf_msg *channel_dequeue(struct cowbuf_channel *ch,
					  unsigned long max_pages,
					  unsigned long *nr_pages)
{
	struct cowbuf_msg *msg;

	spin_lock(&ch->lock);
	msg = list_first_entry_or_null(&ch->queue, struct cowbuf_msg, node);
	if (msg) {
		*nr_pages = msg->nr_pages;
		if (msg->nr_pages > max_pages) {
			msg = ERR_PTR(-EMSGSIZE);
		} else {
			list_del_init(&msg->node);
			ch->nr_queued--;
			ch->nr_reserved++;
			ch->queued_pages -= msg->nr_pages;
		}
	}
	spin_unlock(&ch->lock);
	return msg;
}

static bool channel_has_message(struct cowbuf_channel *ch)
{
	bool ret;

	spin_lock(&ch->lock);
	ret = ch->nr_queued;
	spin_unlock(&ch->lock);
	return ret;
}

static long channel_send(struct file *file, struct cowbuf_channel *ch,
			 void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct cowbuf_region *region;
	struct vm_area_struct *vma;
	struct cowbuf_msg *msg;
	struct cowbuf_send args;
	unsigned long nr;
	pgoff_t first;
	long ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || !cowbuf_range_valid(args.addr, args.length) ||
	    (args.mode != COWBUF_MODE_MOVE && args.mode != COWBUF_MODE_SHARE))
		return -EINVAL;
	nr = args.length >> PAGE_SHIFT;
	if (nr > READ_ONCE(cowbuf_max_message_pages))
		return -EINVAL;

	if (!channel_reserve(ch)) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(ch->wait, channel_reserve(ch));
		if (ret)
			return ret;
	}

	if (mmap_read_lock_killable(mm)) {
		ret = -EINTR;
		goto err_unreserve;
	}
	vma = cowbuf_region_vma(mm, args.addr, args.length, &first);
	if (!vma) {
		ret = -EINVAL;
		goto err_unlock_mm;
	}
	/* The message holds a frame per slot: its size is the region's. */
	region = vma->vm_private_data;
	msg = msg_alloc(nr, args.mode, region->order);
	if (!msg) {
		ret = -ENOMEM;
		goto err_unlock_mm;
	}
	ret = cowbuf_region_take(vma, first, msg);
	if (ret)
		goto err_free_msg;
	mmap_read_unlock(mm);

	atomic_long_inc(&cowbuf_nr_messages);
	channel_enqueue(ch, msg, false);
	return 0;

err_free_msg:
	kvfree(msg);		/* a failed take leaves it without frames */
err_unlock_mm:
	mmap_read_unlock(mm);
err_unreserve:
	channel_unreserve(ch);
	return ret;
}

/* Wait, interruptibly, for a message, unless @file is non-blocking. */
static long channel_wait_message(struct file *file, struct cowbuf_channel *ch)
{
	if (channel_has_message(ch))
		return 0;
	if (file->f_flags & O_NONBLOCK)
		return -EAGAIN;
	return wait_event_interruptible(ch->wait, channel_has_message(ch));
}

/* COWBUF_IOC_RECV with COWBUF_RECV_DISCARD: free the oldest message. */
static long channel_discard(struct file *file, struct cowbuf_channel *ch,
			    void __user *uarg, struct cowbuf_recv *args)
{
	struct cowbuf_msg *msg;
	unsigned long nr_pages;
	long ret;

	do {
		ret = channel_wait_message(file, ch);
		if (ret)
			return ret;
		msg = channel_dequeue(ch, ULONG_MAX, &nr_pages);
	} while (!msg);
	args->length = (u64)nr_pages << PAGE_SHIFT;
	args->mode = msg->mode;
	msg_free(msg);
	atomic_long_dec(&cowbuf_nr_messages);
	channel_unreserve(ch);
	if (copy_to_user(uarg, args, sizeof(*args)))
		return -EFAULT;
	return 0;
}

static long channel_recv(struct file *file, struct cowbuf_channel *ch,
			 void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct cowbuf_msg *msg;
	struct cowbuf_recv args;
	unsigned long nr_pages = 0;
	pgoff_t first;
	long ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~COWBUF_RECV_DISCARD)
		return -EINVAL;
	if (args.flags & COWBUF_RECV_DISCARD) {
		if (args.addr || args.length)
			return -EINVAL;
	} else if (!cowbuf_range_valid(args.addr, args.length)) {
		return -EINVAL;
	}
	/*
	 * Where the results go must take them before a message is taken: a
	 * RECV that fails must not have consumed one. (Only a concurrent
	 * munmap() of the argument can still make the last copy fail.)
	 */
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;
	if (args.flags & COWBUF_RECV_DISCARD)
		return channel_discard(file, ch, uarg, &args);

	for (;;) {
		ret = channel_wait_message(file, ch);
		if (ret)
			return ret;
		if (mmap_read_lock_killable(mm))
			return -EINTR;
		vma = cowbuf_region_vma(mm, args.addr, args.length, &first);
		if (!vma) {
			mmap_read_unlock(mm);
			return -EINVAL;
		}
		msg = channel_dequeue(ch, args.length >> PAGE_SHIFT, &nr_pages);
		if (msg)
			break;
		/* Another receiver was faster. */
		mmap_read_unlock(mm);
	}

	if (IS_ERR(msg)) {
		mmap_read_unlock(mm);
		ret = PTR_ERR(msg);
		goto out_copy;
	}
	/*
	 * The receiving region charges its owner for the frames: the
	 * message's charge goes first, so that a user at max_user_pages can
	 * receive what they sent themselves. A failed placement puts it back
	 * (past the cap, if somebody took the room meanwhile: by one message
	 * at most, and only until it is received or freed).
	 */
	cowbuf_user_uncharge(msg->user, msg->charged);
	ret = cowbuf_region_place(vma, args.addr, first, msg);
	mmap_read_unlock(mm);
	if (ret) {
		atomic_long_add(msg->charged, &msg->user->pages);
		channel_enqueue(ch, msg, true);
		return ret;
	}
	args.mode = msg->mode;
	cowbuf_user_put(msg->user);
	kvfree(msg);		/* its frames now belong to the region */
	atomic_long_dec(&cowbuf_nr_messages);
	channel_unreserve(ch);

out_copy:
	args.length = (u64)nr_pages << PAGE_SHIFT;
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;
	return ret;
}

static long channel_info(struct cowbuf_channel *ch, void __user *uarg)
{
	struct cowbuf_channel_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.flags || info.pad)
		return -EINVAL;
	spin_lock(&ch->lock);
	info.queued_messages = ch->nr_queued;
	info.max_messages = ch->max_queued;
	info.queued_pages = ch->queued_pages;
	spin_unlock(&ch->lock);
	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long cowbuf_channel_ioctl(struct file *file, unsigned int cmd,
				 unsigned long arg)
{
	struct cowbuf_channel *ch = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case COWBUF_IOC_VERSION:
		return cowbuf_ioctl_version(uarg);
	case COWBUF_IOC_SEND:
		return channel_send(file, ch, uarg);
	case COWBUF_IOC_RECV:
		return channel_recv(file, ch, uarg);
	case COWBUF_IOC_CHANNEL_INFO:
		return channel_info(ch, uarg);
	default:
		return -ENOTTY;
	}
}

static __poll_t cowbuf_channel_poll(struct file *file, poll_table *wait)
{
	struct cowbuf_channel *ch = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &ch->wait, wait);
	spin_lock(&ch->lock);
	if (ch->nr_queued)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (ch->nr_queued + ch->nr_reserved < ch->max_queued)
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock(&ch->lock);
	return mask;
}

static void cowbuf_channel_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct cowbuf_channel *ch = file->private_data;

	spin_lock(&ch->lock);
	seq_printf(m, "cowbuf-queued-messages:\t%u\n", ch->nr_queued);
	seq_printf(m, "cowbuf-queued-pages:\t%lu\n", ch->queued_pages);
	seq_printf(m, "cowbuf-max-messages:\t%u\n", ch->max_queued);
	spin_unlock(&ch->lock);
}

/* The last reference is gone, so no SEND or RECV is in progress. */
static int cowbuf_channel_release(struct inode *inode, struct file *file)
{
	struct cowbuf_channel *ch = file->private_data;
	struct cowbuf_msg *msg, *next;

	list_for_each_entry_safe(msg, next, &ch->queue, node) {
		list_del(&msg->node);
		msg_free(msg);
		atomic_long_dec(&cowbuf_nr_messages);
	}
	cowbuf_user_remove_channel(ch->user);
	cowbuf_user_put(ch->user);
	kfree(ch);
	atomic_long_dec(&cowbuf_nr_channels);
	return 0;
}

static const struct file_operations cowbuf_channel_fops = {
	.owner = THIS_MODULE,
	.release = cowbuf_channel_release,
	.poll = cowbuf_channel_poll,
	.unlocked_ioctl = cowbuf_channel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.show_fdinfo = cowbuf_channel_show_fdinfo,
	.llseek = noop_llseek,
};

/**
 * cowbuf_channel_create() - make an empty channel
 * @fd_flags: COWBUF_FD_* flags, validated by the caller
 *
 * The channel counts against its creator's max_user_channels.
 *
 * Return: the channel's new file, or an ERR_PTR(): -ENOMEM without memory or
 * at the cap.
 */
struct file *cowbuf_channel_create(unsigned int fd_flags)
{
	struct cowbuf_channel *ch;
	struct file *file;
	int flags = O_RDWR;
	int ret = -ENOMEM;

	ch = kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT);
	if (!ch)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&ch->lock);
	INIT_LIST_HEAD(&ch->queue);
	init_waitqueue_head(&ch->wait);
	ch->max_queued = READ_ONCE(cowbuf_max_queue_depth);
	ch->user = cowbuf_user_get(current_uid());
	if (!ch->user)
		goto err_free_channel;
	ret = cowbuf_user_add_channel(ch->user);
	if (ret)
		goto err_put_user;

	if (fd_flags & COWBUF_FD_NONBLOCK)
		flags |= O_NONBLOCK;
	file = anon_inode_getfile("[cowbuf-channel]", &cowbuf_channel_fops, ch,
				  flags);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_remove_channel;
	}
	atomic_long_inc(&cowbuf_nr_channels);
	return file;

err_remove_channel:
	cowbuf_user_remove_channel(ch->user);
err_put_user:
	cowbuf_user_put(ch->user);
err_free_channel:
	kfree(ch);
	return ERR_PTR(ret);
}
