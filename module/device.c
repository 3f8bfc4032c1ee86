// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf: the /dev/cowbuf misc device and its ioctl dispatch.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include <linux/cowbuf.h>

/**
 * cowbuf_ioctl_version() - report the interface version
 * @uarg: userspace pointer to a struct cowbuf_version
 *
 * Return: 0, -EFAULT for a bad pointer, -EINVAL for nonzero flags or pad.
 */
static long cowbuf_ioctl_version(void __user *uarg)
{
	struct cowbuf_version v;

	if (copy_from_user(&v, uarg, sizeof(v)))
		return -EFAULT;
	if (v.flags || v.pad)
		return -EINVAL;
	v.api_version = COWBUF_API_VERSION;
	v.page_size = PAGE_SIZE;
	if (copy_to_user(uarg, &v, sizeof(v)))
		return -EFAULT;
	return 0;
}

static long cowbuf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case COWBUF_IOC_VERSION:
		return cowbuf_ioctl_version(uarg);
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
 * and nothing is reachable without holding the file descriptor of it.
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

	BUILD_BUG_ON(sizeof(struct cowbuf_version) != 16);

	ret = misc_register(&cowbuf_misc);
	if (ret) {
		pr_err("cannot register /dev/cowbuf: %d\n", ret);
		return ret;
	}
	return 0;
}

static void __exit cowbuf_exit(void)
{
	misc_deregister(&cowbuf_misc);
}

module_init(cowbuf_init);
module_exit(cowbuf_exit);

MODULE_DESCRIPTION("Zero-copy page remapping and same-page merging of owned memory");
MODULE_AUTHOR("The cowbuf developers");
MODULE_LICENSE("GPL");
