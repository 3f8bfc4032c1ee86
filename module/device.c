// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the /dev/cowbuf misc device, which makes regions and channels.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/compat.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include <linux/cowbuf.h>

#include "cowbuf.h"

#define COWBUF_FD_FLAGS	(COWBUF_FD_CLOEXEC | COWBUF_FD_NONBLOCK)

/**
 * cowbuf_ioctl_version() - COWBUF_IOC_VERSION, on any cowbuf descriptor
 * @uarg: userspace pointer to a struct cowbuf_version
 *
 * Return: 0, -EFAULT for a bad pointer, -EINVAL for nonzero flags or
 * huge_frame_size.
 */
long cowbuf_ioctl_version(void __user *uarg)
{
	struct cowbuf_version v;

	if (copy_from_user(&v, uarg, sizeof(v)))
		return -EFAULT;
	if (v.flags || v.huge_frame_size)
		return -EINVAL;
	v.api_version = COWBUF_API_VERSION;
	v.page_size = PAGE_SIZE;
	if (IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		v.huge_frame_size = COWBUF_HUGE_SIZE;
	if (copy_to_user(uarg, &v, sizeof(v)))
		return -EFAULT;
	return 0;
}

/**
 * cowbuf_range_valid() - whether a user range is page-aligned and sane
 * @addr: start address
 * @length: length in bytes
 *
 * Return: true if both are page-aligned, @length is nonzero and the range
 * does not wrap.
 */
bool cowbuf_range_valid(u64 addr, u64 length)
{
	return length && PAGE_ALIGNED(addr) && PAGE_ALIGNED(length) &&
	       addr + length > addr;
}

/*
 * Give @file a descriptor and report it in *@ufd. The descriptor is
 * installed only once the report succeeded, so a failed call leaves no
 * descriptor behind.
 */
static long cowbuf_install_fd(struct file *file, unsigned int fd_flags,
			      void __user *uarg, void *args, size_t size,
			      __s32 *fd_field)
{
	int fd;

	if (IS_ERR(file))
		return PTR_ERR(file);
	fd = get_unused_fd_flags(fd_flags & COWBUF_FD_CLOEXEC ? O_CLOEXEC : 0);
	if (fd < 0) {
		fput(file);
		return fd;
	}
	*fd_field = fd;
	if (copy_to_user(uarg, args, size)) {
		put_unused_fd(fd);
		fput(file);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;
}

static long cowbuf_ioctl_region_create(void __user *uarg)
{
	struct cowbuf_region_create args;
	bool huge;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~(COWBUF_FD_CLOEXEC | COWBUF_REGION_MERGEABLE |
			   COWBUF_REGION_HUGE))
		return -EINVAL;
	huge = args.flags & COWBUF_REGION_HUGE;
	/* Without THP the fault core cannot map a frame by PMD. */
	if (huge && !IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		return -EOPNOTSUPP;
	if (!args.size || args.size > COWBUF_REGION_MAX_SIZE ||
	    !IS_ALIGNED(args.size, huge ? COWBUF_HUGE_SIZE : PAGE_SIZE))
		return -EINVAL;
	return cowbuf_install_fd(cowbuf_region_create(args.size,
						      args.flags & COWBUF_REGION_MERGEABLE,
						      huge),
				 args.flags,
				 uarg, &args, sizeof(args), &args.fd);
}

static long cowbuf_ioctl_channel_create(void __user *uarg)
{
	struct cowbuf_channel_create args;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~COWBUF_FD_FLAGS)
		return -EINVAL;
	return cowbuf_install_fd(cowbuf_channel_create(args.flags), args.flags,
				 uarg, &args, sizeof(args), &args.fd);
}

static long cowbuf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case COWBUF_IOC_VERSION:
		return cowbuf_ioctl_version(uarg);
	case COWBUF_IOC_REGION_CREATE:
		return cowbuf_ioctl_region_create(uarg);
	case COWBUF_IOC_CHANNEL_CREATE:
		return cowbuf_ioctl_channel_create(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations cowbuf_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = cowbuf_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/*
 * Any user may open the device: what it hands out is anonymous memory,
 * charged to the memory cgroup of whoever commits it and capped per user,
 * and no region or channel is reachable without its file descriptor.
 */
static struct miscdevice cowbuf_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cowbuf",
	.fops = &cowbuf_fops,
	.mode = 0666,
};

static int __init cowbuf_init(void)
{
	int ret;

	/* The uapi layout, the same for 32- and 64-bit callers. */
	BUILD_BUG_ON(sizeof(struct cowbuf_version) != 16);
	BUILD_BUG_ON(sizeof(struct cowbuf_region_create) != 16);
	BUILD_BUG_ON(sizeof(struct cowbuf_channel_create) != 8);
	BUILD_BUG_ON(sizeof(struct cowbuf_region_info) != 24);
	BUILD_BUG_ON(sizeof(struct cowbuf_range) != 24);
	BUILD_BUG_ON(sizeof(struct cowbuf_send) != 24);
	BUILD_BUG_ON(sizeof(struct cowbuf_recv) != 24);
	BUILD_BUG_ON(sizeof(struct cowbuf_channel_info) != 24);
	BUILD_BUG_ON(sizeof(struct cowbuf_merge_info) != 40);

	ret = cowbuf_params_init();
	if (ret)
		return ret;
	ret = cowbuf_merge_init(cowbuf_kobj);
	if (ret)
		goto err_params_exit;
	ret = misc_register(&cowbuf_misc);
	if (ret) {
		pr_err("cannot register /dev/cowbuf: %d\n", ret);
		goto err_merge_exit;
	}
	return 0;

err_merge_exit:
	cowbuf_merge_exit(cowbuf_kobj);
err_params_exit:
	cowbuf_params_exit();
	return ret;
}

static void __exit cowbuf_exit(void)
{
	misc_deregister(&cowbuf_misc);
	cowbuf_merge_exit(cowbuf_kobj);
	cowbuf_frame_exit();
	cowbuf_params_exit();
}

module_init(cowbuf_init);
module_exit(cowbuf_exit);

MODULE_DESCRIPTION("Zero-copy page remapping and same-page merging of owned memory");
MODULE_AUTHOR("The cowbuf developers");
MODULE_LICENSE("GPL");
