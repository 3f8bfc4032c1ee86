// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the files and inodes of regions.
 *
 * DOC: Region files
 *
 * A region's file descriptor behaves like the anonymous-memory files programs
 * know (a memfd, a hugetlbfs file): its inode is a regular file (S_IFREG) of
 * a private pseudo filesystem, one inode per region, so that the calls the
 * VFS keeps for regular files reach the region:
 *
 * - fstat() reports the region's size in st_size, its committed memory in
 *   st_blocks (512-byte units) and its frame size in st_blksize;
 * - lseek() works as on any regular file of that size: SEEK_END is the size,
 *   and SEEK_DATA/SEEK_HOLE see the whole file as data;
 * - ftruncate() to the region's own size succeeds and does nothing; any
 *   other size fails with EPERM, as on a memfd sealed with F_SEAL_GROW and
 *   F_SEAL_SHRINK: a region's size is fixed at creation;
 * - fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) decommits the
 *   range (COWBUF_IOC_DECOMMIT without a mapping), fallocate(0) and
 *   fallocate(FALLOC_FL_KEEP_SIZE) commit it (COWBUF_IOC_COMMIT without
 *   mapping anything); see cowbuf_region_fallocate();
 * - open() of /proc/<pid>/fd/<n> opens the same region again, with the
 *   access mode asked for (the inode is mode 0600, owned by its creator, and
 *   procfs also requires ptrace access to <pid>). This is how a program
 *   that only knows how to open a path, such as QEMU's memory-backend-file,
 *   is given a region.
 *
 * The region lives as long as its inode: until the last file descriptor and
 * the last mapping of every file opened on it are gone.
 *
 * The filesystem is never registered, so it cannot be mounted from
 * userspace; its internal mount exists while a region does (simple_pin_fs()
 * per file), and the superblock holds a reference to the module, so the
 * module cannot go away while a region's inode is still being evicted.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/stat.h>

#include "cowbuf.h"

/* statfs() f_type of region files: "cowb" */
#define COWBUF_FS_MAGIC		0x636f7762

/*
 * cowbuf_fs_mount is the internal mount of the region filesystem, pinned by
 * cowbuf_fs_pins (one per open region file); both under simple_pin_fs()'s
 * own lock.
 */
static struct vfsmount *cowbuf_fs_mount;
static int cowbuf_fs_pins;

static void cowbuf_region_evict_inode(struct inode *inode)
{
	struct cowbuf_region *region = inode->i_private;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (region)
		cowbuf_region_destroy(region);
}

static const struct super_operations cowbuf_fs_super_ops = {
	.statfs = simple_statfs,
	.evict_inode = cowbuf_region_evict_inode,
};

static int cowbuf_fs_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx = init_pseudo(fc, COWBUF_FS_MAGIC);

	if (!ctx)
		return -ENOMEM;
	ctx->ops = &cowbuf_fs_super_ops;
	return 0;
}

static struct file_system_type cowbuf_fs_type = {
	.owner = THIS_MODULE,
	.name = "cowbuf",
	.init_fs_context = cowbuf_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

/**
 * cowbuf_region_file_pin() - keep the region filesystem while a file lives
 *
 * Context: every region file takes one pin, at creation or open, and drops
 * it with cowbuf_region_file_unpin() in its release.
 *
 * Return: 0 or a negative errno.
 */
int cowbuf_region_file_pin(void)
{
	return simple_pin_fs(&cowbuf_fs_type, &cowbuf_fs_mount, &cowbuf_fs_pins);
}

/**
 * cowbuf_region_file_unpin() - drop a pin taken by cowbuf_region_file_pin()
 */
void cowbuf_region_file_unpin(void)
{
	simple_release_fs(&cowbuf_fs_mount, &cowbuf_fs_pins);
}

/*
 * The size is fixed: only a truncate to the current size (a no-op) passes.
 * Owner, mode and times change as on any file.
 */
static int cowbuf_region_setattr(struct user_namespace *mnt_userns,
				 struct dentry *dentry, struct iattr *attr)
{
	struct inode *inode = d_inode(dentry);
	int ret;

	ret = setattr_prepare(mnt_userns, dentry, attr);
	if (ret)
		return ret;
	if ((attr->ia_valid & ATTR_SIZE) && attr->ia_size != i_size_read(inode))
		return -EPERM;
	setattr_copy(mnt_userns, inode, attr);
	return 0;
}

static int cowbuf_region_getattr(struct user_namespace *mnt_userns,
				 const struct path *path, struct kstat *stat,
				 u32 request_mask, unsigned int query_flags)
{
	struct inode *inode = d_inode(path->dentry);
	struct cowbuf_region *region = inode->i_private;

	generic_fillattr(mnt_userns, inode, stat);
	/* st_blocks counts 512-byte units. */
	stat->blocks = (u64)atomic_long_read(&region->committed) <<
		       (PAGE_SHIFT - 9);
	stat->blksize = PAGE_SIZE << region->order;
	return 0;
}

static const struct inode_operations cowbuf_region_iops = {
	.setattr = cowbuf_region_setattr,
	.getattr = cowbuf_region_getattr,
};

/**
 * cowbuf_region_file_alloc() - a region's inode and its first file
 * @region: the region, fully set up except for @region->mapping.host
 * @fops: the region file operations, also used by open() through procfs
 *
 * The caller holds a pin (cowbuf_region_file_pin()), which the file takes
 * over. On success the inode owns @region: cowbuf_region_destroy() is called
 * when it is evicted. On failure the caller still owns @region and the pin.
 *
 * Return: the file, opened read-write, or an ERR_PTR().
 */
struct file *cowbuf_region_file_alloc(struct cowbuf_region *region,
				      const struct file_operations *fops)
{
	struct inode *inode;
	struct file *file;

	inode = alloc_anon_inode(cowbuf_fs_mount->mnt_sb);
	if (IS_ERR(inode))
		return ERR_CAST(inode);
	inode->i_mode |= S_IFREG;
	inode->i_op = &cowbuf_region_iops;
	inode->i_fop = fops;
	inode->i_size = (loff_t)region->nr_pages << PAGE_SHIFT;
	/* The region's own address space is where its mappings hang off. */
	region->mapping.host = inode;
	region->mapping.a_ops = &empty_aops;
	inode->i_mapping = &region->mapping;

	/*
	 * The file's release drops a module reference (fops_put() in
	 * __fput()) that alloc_file_pseudo(), unlike open(), does not take.
	 * The caller runs in an ioctl of /dev/cowbuf, which holds one.
	 */
	__module_get(fops->owner);
	file = alloc_file_pseudo(inode, cowbuf_fs_mount, "[cowbuf-region]",
				 O_RDWR, fops);
	if (IS_ERR(file)) {
		module_put(fops->owner);
		/* i_private is still NULL: eviction leaves the region alone. */
		iput(inode);
		return file;
	}
	inode->i_private = region;
	file->private_data = region;
	return file;
}
