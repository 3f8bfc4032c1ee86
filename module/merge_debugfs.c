// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the scanner's measurement switch, /sys/kernel/debug/cowbuf.
 *
 * hash_only makes cowbufd read and hash its ranges and merge nothing (1), or
 * also read each page as often as comparing it with an identical frame
 * would (2): the floor `make bench` measures merging against. It is no
 * tunable of users, and so lives in debugfs, not in the sysfs ABI.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>

#include "merge.h"

static struct dentry *cowbuf_debugfs_dir;

static int hash_only_get(void *data, u64 *val)
{
	*val = READ_ONCE(cowbuf_merge_knobs.hash_only);
	return 0;
}

static int hash_only_set(void *data, u64 val)
{
	if (val > 2)
		return -EINVAL;
	WRITE_ONCE(cowbuf_merge_knobs.hash_only, val);
	cowbufd_kick();
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(hash_only_fops, hash_only_get, hash_only_set, "%llu\n");

/**
 * cowbuf_merge_debugfs_init() - create /sys/kernel/debug/cowbuf
 *
 * Nothing depends on it: a kernel without debugfs just has no switch.
 */
void cowbuf_merge_debugfs_init(void)
{
	cowbuf_debugfs_dir = debugfs_create_dir("cowbuf", NULL);
	debugfs_create_file_unsafe("hash_only", 0600, cowbuf_debugfs_dir, NULL,
				   &hash_only_fops);
}

/**
 * cowbuf_merge_debugfs_exit() - remove /sys/kernel/debug/cowbuf
 */
void cowbuf_merge_debugfs_exit(void)
{
	debugfs_remove_recursive(cowbuf_debugfs_dir);
}
