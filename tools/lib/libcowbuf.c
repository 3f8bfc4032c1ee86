// SPDX-License-Identifier: GPL-2.0
/*
 * libcowbuf: thin wrappers around the /dev/cowbuf ioctls.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libcowbuf.h"

static int ioctl_ret(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static uint64_t ptr_to_u64(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

int cowbuf_open(void)
{
	int fd = open(COWBUF_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int cowbuf_version(int fd, struct cowbuf_version *version)
{
	memset(version, 0, sizeof(*version));
	return ioctl_ret(fd, COWBUF_IOC_VERSION, version);
}

int cowbuf_region_create(int dev, uint64_t size, uint32_t flags)
{
	struct cowbuf_region_create args = { .size = size, .flags = flags };
	int ret = ioctl_ret(dev, COWBUF_IOC_REGION_CREATE, &args);

	return ret ? ret : args.fd;
}

int cowbuf_region_info(int region, struct cowbuf_region_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl_ret(region, COWBUF_IOC_REGION_INFO, info);
}

int cowbuf_map(int region, uint64_t size, uint64_t offset, int prot, void **addr)
{
	void *p = mmap(NULL, size, prot, MAP_SHARED, region, (off_t)offset);

	if (p == MAP_FAILED)
		return -errno;
	*addr = p;
	return 0;
}

static int range_ioctl(int region, unsigned long cmd, void *addr, uint64_t length,
		       uint32_t flags)
{
	struct cowbuf_range range = {
		.addr = ptr_to_u64(addr),
		.length = length,
		.flags = flags,
	};

	return ioctl_ret(region, cmd, &range);
}

int cowbuf_commit(int region, void *addr, uint64_t length)
{
	return range_ioctl(region, COWBUF_IOC_COMMIT, addr, length, 0);
}

int cowbuf_decommit(int region, void *addr, uint64_t length)
{
	return range_ioctl(region, COWBUF_IOC_DECOMMIT, addr, length, 0);
}

int cowbuf_merge(int region, void *addr, uint64_t length, uint32_t flags)
{
	return range_ioctl(region, COWBUF_IOC_MERGE, addr, length, flags);
}

int cowbuf_merge_info(int region, struct cowbuf_merge_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl_ret(region, COWBUF_IOC_MERGE_INFO, info);
}

int cowbuf_channel_create(int dev, uint32_t flags)
{
	struct cowbuf_channel_create args = { .flags = flags };
	int ret = ioctl_ret(dev, COWBUF_IOC_CHANNEL_CREATE, &args);

	return ret ? ret : args.fd;
}

int cowbuf_channel_info(int channel, struct cowbuf_channel_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl_ret(channel, COWBUF_IOC_CHANNEL_INFO, info);
}

int cowbuf_send(int channel, void *addr, uint64_t length, uint32_t mode)
{
	struct cowbuf_send args = {
		.addr = ptr_to_u64(addr),
		.length = length,
		.mode = mode,
	};

	return ioctl_ret(channel, COWBUF_IOC_SEND, &args);
}

int cowbuf_recv(int channel, void *addr, uint64_t room, uint64_t *length,
		uint32_t *mode)
{
	struct cowbuf_recv args = {
		.addr = ptr_to_u64(addr),
		.length = room,
	};
	int ret = ioctl_ret(channel, COWBUF_IOC_RECV, &args);

	if (length && (!ret || ret == -EMSGSIZE))
		*length = args.length;
	if (mode && !ret)
		*mode = args.mode;
	return ret;
}

int cowbuf_discard(int channel, uint64_t *length, uint32_t *mode)
{
	struct cowbuf_recv args = { .flags = COWBUF_RECV_DISCARD };
	int ret = ioctl_ret(channel, COWBUF_IOC_RECV, &args);

	if (length && !ret)
		*length = args.length;
	if (mode && !ret)
		*mode = args.mode;
	return ret;
}

int cowbuf_fd_send(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) < 0 ? -errno : 0;
}

int cowbuf_fd_recv(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;
	int fd;

	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (!n || !cmsg || cmsg->cmsg_level != SOL_SOCKET ||
	    cmsg->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}
