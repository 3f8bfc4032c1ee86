// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: module parameters, per-user accounting and /sys/kernel/mm/cowbuf.
 *
 * DOC: Limits
 *
 * Memory is charged twice over. Each frame is charged to the memory cgroup
 * of the task that allocated it (__GFP_ACCOUNT), so cgroup limits hold. And
 * committed slots are counted against two caps, writable at run time under
 * /sys/module/cowbuf/parameters/:
 *
 * - max_region_pages: committed pages in one region;
 * - max_user_pages: committed pages in all regions owned by one user (the
 *   uid that created them), whichever process commits them, and the pages
 *   of the messages sent from those regions while they are queued: a MOVE
 *   hands the charge from the region to the message, a SHARE charges the
 *   message as much again, and RECV hands it on to the receiving region
 *   (its owner's, who may be someone else).
 *
 * Messages are bounded by max_message_pages each and max_queue_depth per
 * channel, channels by max_user_channels per user (the uid that created
 * them), and the mergeable ranges of a region by max_merge_ranges. Exceeding
 * a cap fails an ioctl with ENOMEM, or a page fault with SIGBUS, as does a
 * failed allocation.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hashtable.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "cowbuf.h"

unsigned long cowbuf_max_region_pages = 1UL << 20;	/* 4 GiB */
module_param_named(max_region_pages, cowbuf_max_region_pages, ulong, 0644);
MODULE_PARM_DESC(max_region_pages, "Most committed pages in one region");

unsigned long cowbuf_max_user_pages = 1UL << 21;	/* 8 GiB */
module_param_named(max_user_pages, cowbuf_max_user_pages, ulong, 0644);
MODULE_PARM_DESC(max_user_pages, "Most committed pages in one user's regions");

unsigned long cowbuf_max_message_pages = 1UL << 16;	/* 256 MiB */
module_param_named(max_message_pages, cowbuf_max_message_pages, ulong, 0644);
MODULE_PARM_DESC(max_message_pages, "Most pages in one message");

unsigned int cowbuf_max_user_channels = 1024;
module_param_named(max_user_channels, cowbuf_max_user_channels, uint, 0644);
MODULE_PARM_DESC(max_user_channels, "Most channels one user has open");

unsigned int cowbuf_max_merge_ranges = 1024;
module_param_named(max_merge_ranges, cowbuf_max_merge_ranges, uint, 0644);
MODULE_PARM_DESC(max_merge_ranges, "Most mergeable ranges (COWBUF_IOC_MERGE) in one region");

unsigned int cowbuf_max_queue_depth = 64;

static int queue_depth_set(const char *val, const struct kernel_param *kp)
{
	unsigned int depth;
	int ret;

	ret = kstrtouint(val, 0, &depth);
	if (ret)
		return ret;
	if (depth < 1 || depth > 65536)
		return -EINVAL;
	WRITE_ONCE(cowbuf_max_queue_depth, depth);
	return 0;
}

static const struct kernel_param_ops queue_depth_ops = {
	.set = queue_depth_set,
	.get = param_get_uint,
};

module_param_cb(max_queue_depth, &queue_depth_ops, &cowbuf_max_queue_depth, 0644);
MODULE_PARM_DESC(max_queue_depth,
		 "Messages a new channel holds, 1-65536 (existing channels keep theirs)");

atomic_long_t cowbuf_nr_frames = ATOMIC_LONG_INIT(0);
atomic_long_t cowbuf_nr_regions = ATOMIC_LONG_INIT(0);
atomic_long_t cowbuf_nr_channels = ATOMIC_LONG_INIT(0);
atomic_long_t cowbuf_nr_messages = ATOMIC_LONG_INIT(0);
atomic_long_t cowbuf_nr_pinned_sigbus = ATOMIC_LONG_INIT(0);

/* Users with regions, by uid. */
static DEFINE_HASHTABLE(cowbuf_users, 6);
static DEFINE_SPINLOCK(cowbuf_user_lock);

/**
 * cowbuf_user_get() - find or add the accounting record of a user
 * @uid: the user
 *
 * Return: the record with a reference taken, or NULL if out of memory.
 */
struct cowbuf_user *cowbuf_user_get(kuid_t uid)
{
	struct cowbuf_user *user, *new;
	u32 key = __kuid_val(uid);

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	spin_lock(&cowbuf_user_lock);
	hash_for_each_possible(cowbuf_users, user, node, key) {
		if (uid_eq(user->uid, uid)) {
			kref_get(&user->ref);
			spin_unlock(&cowbuf_user_lock);
			kfree(new);
			return user;
		}
	}
	if (new) {
		kref_init(&new->ref);
		new->uid = uid;
		atomic_long_set(&new->pages, 0);
		atomic_set(&new->channels, 0);
		hash_add(cowbuf_users, &new->node, key);
	}
	spin_unlock(&cowbuf_user_lock);
	return new;
}

/* Called by kref_put_lock() with cowbuf_user_lock held; drops it. */
static void cowbuf_user_free(struct kref *ref)
	__releases(&cowbuf_user_lock)
{
	struct cowbuf_user *user = container_of(ref, struct cowbuf_user, ref);

	hash_del(&user->node);
	spin_unlock(&cowbuf_user_lock);
	WARN_ON_ONCE(atomic_long_read(&user->pages) || atomic_read(&user->channels));
	kfree(user);
}

/**
 * cowbuf_user_put() - drop a reference to a user's record
 * @user: the record
 */
void cowbuf_user_put(struct cowbuf_user *user)
{
	kref_put_lock(&user->ref, cowbuf_user_free, &cowbuf_user_lock);
}

/**
 * cowbuf_user_hold() - take another reference to a user's record
 * @user: the record, which the caller holds a reference to
 *
 * Return: @user.
 */
struct cowbuf_user *cowbuf_user_hold(struct cowbuf_user *user)
{
	kref_get(&user->ref);
	return user;
}

/**
 * cowbuf_user_charge() - count pages against a user's max_user_pages
 * @user: the user
 * @nr: pages
 *
 * Return: 0, or -ENOMEM (nothing charged) if the cap would be exceeded.
 */
int cowbuf_user_charge(struct cowbuf_user *user, unsigned long nr)
{
	if (atomic_long_add_return(nr, &user->pages) > READ_ONCE(cowbuf_max_user_pages)) {
		atomic_long_sub(nr, &user->pages);
		return -ENOMEM;
	}
	return 0;
}

/**
 * cowbuf_user_uncharge() - return pages to a user's max_user_pages
 * @user: the user
 * @nr: pages cowbuf_user_charge() charged
 */
void cowbuf_user_uncharge(struct cowbuf_user *user, unsigned long nr)
{
	atomic_long_sub(nr, &user->pages);
}

/**
 * cowbuf_user_add_channel() - count a new channel of a user
 * @user: the user
 *
 * Return: 0, or -ENOMEM if the user has max_user_channels channels.
 */
int cowbuf_user_add_channel(struct cowbuf_user *user)
{
	if (atomic_inc_return(&user->channels) > READ_ONCE(cowbuf_max_user_channels)) {
		atomic_dec(&user->channels);
		return -ENOMEM;
	}
	return 0;
}

/**
 * cowbuf_user_remove_channel() - a channel of the user is gone
 * @user: the user
 */
void cowbuf_user_remove_channel(struct cowbuf_user *user)
{
	atomic_dec(&user->channels);
}

/* /sys/kernel/mm/cowbuf */
struct kobject *cowbuf_kobj;

#define COWBUF_COUNTER_ATTR(_name, _counter)				\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&(_counter)));	\
}									\
static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

COWBUF_COUNTER_ATTR(frames, cowbuf_nr_frames);
COWBUF_COUNTER_ATTR(regions, cowbuf_nr_regions);
COWBUF_COUNTER_ATTR(channels, cowbuf_nr_channels);
COWBUF_COUNTER_ATTR(messages, cowbuf_nr_messages);
COWBUF_COUNTER_ATTR(pinned_sigbus, cowbuf_nr_pinned_sigbus);

static struct attribute *cowbuf_attrs[] = {
	&frames_attr.attr,
	&regions_attr.attr,
	&channels_attr.attr,
	&messages_attr.attr,
	&pinned_sigbus_attr.attr,
	NULL,
};

static const struct attribute_group cowbuf_attr_group = {
	.attrs = cowbuf_attrs,
};

/**
 * cowbuf_params_init() - create /sys/kernel/mm/cowbuf
 *
 * Return: 0 or a negative errno.
 */
int cowbuf_params_init(void)
{
	int ret;

	cowbuf_kobj = kobject_create_and_add("cowbuf", mm_kobj);
	if (!cowbuf_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(cowbuf_kobj, &cowbuf_attr_group);
	if (ret)
		goto err_put_kobj;
	return 0;

err_put_kobj:
	kobject_put(cowbuf_kobj);
	return ret;
}

/**
 * cowbuf_params_exit() - remove /sys/kernel/mm/cowbuf
 */
void cowbuf_params_exit(void)
{
	sysfs_remove_group(cowbuf_kobj, &cowbuf_attr_group);
	kobject_put(cowbuf_kobj);
}
