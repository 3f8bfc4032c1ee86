// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the knobs and counters of same-page merging, /sys/kernel/mm/cowbuf.
 *
 * The knobs and counters are named and mean what KSM's in /sys/kernel/mm/ksm
 * do, where both have one; Documentation/admin-guide.rst lists them all.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/sysfs.h>

#include "cowbuf.h"
#include "merge.h"

/* See struct cowbuf_merge_knobs. */
struct cowbuf_merge_knobs cowbuf_merge_knobs = {
	.pages_to_scan = 100,
	.sleep_millisecs = 20,
	.max_page_sharing = 256,
	.max_backoff = 64,
};

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
	cowbufd_kick();
	return count;
}

static struct cowbuf_knob pages_to_scan_knob = {
	.attr = __ATTR(pages_to_scan, 0644, knob_show, knob_store),
	.val = &cowbuf_merge_knobs.pages_to_scan,
	.min = 1,
	.max = 1U << 24,
};

static struct cowbuf_knob sleep_millisecs_knob = {
	.attr = __ATTR(sleep_millisecs, 0644, knob_show, knob_store),
	.val = &cowbuf_merge_knobs.sleep_millisecs,
	.min = 0,
	.max = 60000,
};

static struct cowbuf_knob max_page_sharing_knob = {
	.attr = __ATTR(max_page_sharing, 0644, knob_show, knob_store),
	.val = &cowbuf_merge_knobs.max_page_sharing,
	.min = 2,
	.max = 1U << 20,
};

static struct cowbuf_knob merge_across_users_knob = {
	.attr = __ATTR(merge_across_users, 0644, knob_show, knob_store),
	.val = &cowbuf_merge_knobs.merge_across_users,
	.min = 0,
	.max = 1,
};

static struct cowbuf_knob max_backoff_knob = {
	.attr = __ATTR(max_backoff, 0644, knob_show, knob_store),
	.val = &cowbuf_merge_knobs.max_backoff,
	.min = 0,
	.max = 1U << 16,
};

static ssize_t run_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(cowbuf_merge_knobs.run));
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
	WRITE_ONCE(cowbuf_merge_knobs.run, val);
	ret = val == 2 ? cowbuf_merge_unmerge_all() : 0;
	mutex_unlock(&cowbuf_merge_mutex);
	cowbufd_kick();
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

COWBUF_MERGE_COUNTER(pages_shared, atomic_long_read(&cowbuf_nr_merged_frames));
COWBUF_MERGE_COUNTER(pages_sharing, atomic_long_read(&cowbuf_nr_merged_sharers));
COWBUF_MERGE_COUNTER(pages_unshared, atomic_long_read(&cowbuf_merge_stats.last_unshared));
COWBUF_MERGE_COUNTER(pages_volatile, atomic_long_read(&cowbuf_merge_stats.last_volatile));
COWBUF_MERGE_COUNTER(pages_backoff, atomic_long_read(&cowbuf_merge_stats.last_backoff));
COWBUF_MERGE_COUNTER(full_scans, atomic_long_read(&cowbuf_merge_stats.full_scans));
COWBUF_MERGE_COUNTER(zero_pages, atomic_long_read(&cowbuf_merge_stats.zero_pages));
COWBUF_MERGE_COUNTER(cow_breaks, atomic_long_read(&cowbuf_nr_cow_breaks));
COWBUF_MERGE_COUNTER(pages_scanned, atomic_long_read(&cowbuf_merge_stats.pages_scanned));

static struct attribute *cowbuf_merge_attrs[] = {
	&run_attr.attr,
	&pages_to_scan_knob.attr.attr,
	&sleep_millisecs_knob.attr.attr,
	&max_page_sharing_knob.attr.attr,
	&merge_across_users_knob.attr.attr,
	&max_backoff_knob.attr.attr,
	&pages_shared_attr.attr,
	&pages_sharing_attr.attr,
	&pages_unshared_attr.attr,
	&pages_volatile_attr.attr,
	&pages_backoff_attr.attr,
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
 * cowbuf_merge_sysfs_init() - the knobs and counters
 * @kobj: /sys/kernel/mm/cowbuf
 *
 * Return: 0 or a negative errno.
 */
int cowbuf_merge_sysfs_init(struct kobject *kobj)
{
	return sysfs_create_group(kobj, &cowbuf_merge_group);
}

/**
 * cowbuf_merge_sysfs_exit() - remove the knobs and counters
 * @kobj: /sys/kernel/mm/cowbuf
 */
void cowbuf_merge_sysfs_exit(struct kobject *kobj)
{
	sysfs_remove_group(kobj, &cowbuf_merge_group);
}
