// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: channels - MOVE and SHARE between regions and between
 * processes, copy-on-write isolation, every error path, poll and blocking,
 * pinned pages, and lifetime (close and kill with messages queued).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define NR_PAGES	64

FIXTURE(xfer) {
	int dev;
	int ch;
	int src_fd, dst_fd;
	char *src, *dst;
	size_t size;
	long frames_before;
	long messages_before;
};

FIXTURE_SETUP(xfer)
{
	self->frames_before = cowbuf_counter("frames");
	self->messages_before = cowbuf_counter("messages");
	self->dev = cowbuf_open();
	ASSERT_GE(self->dev, 0);
	self->size = NR_PAGES * PAGE;
	self->ch = cowbuf_channel_create(self->dev, COWBUF_FD_CLOEXEC);
	ASSERT_GE(self->ch, 0);
	self->src_fd = cowbuf_region_create(self->dev, self->size, 0);
	ASSERT_GE(self->src_fd, 0);
	self->dst_fd = cowbuf_region_create(self->dev, self->size, 0);
	ASSERT_GE(self->dst_fd, 0);
	ASSERT_EQ(0, cowbuf_map(self->src_fd, self->size, 0, PROT_READ | PROT_WRITE,
				(void **)&self->src));
	ASSERT_EQ(0, cowbuf_map(self->dst_fd, self->size, 0, PROT_READ | PROT_WRITE,
				(void **)&self->dst));
}

FIXTURE_TEARDOWN(xfer)
{
	munmap(self->src, self->size);
	munmap(self->dst, self->size);
	close(self->src_fd);
	close(self->dst_fd);
	close(self->ch);
	close(self->dev);
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
	EXPECT_EQ(self->messages_before, cowbuf_counter("messages"));
}

static long queued(int ch)
{
	struct cowbuf_channel_info info;

	if (cowbuf_channel_info(ch, &info))
		return -1;
	return info.queued_messages;
}

/*
 * A channel holding @depth messages: max_queue_depth applies at creation, so
 * set it, create, and put it back. Returns the fd or -errno.
 */
static int channel_with_depth(int dev, long depth, uint32_t flags)
{
	long old = cowbuf_param_get("max_queue_depth");
	int ch, ret;

	ret = cowbuf_param_set("max_queue_depth", depth);
	if (ret)
		return ret;
	ch = cowbuf_channel_create(dev, flags);
	ret = cowbuf_param_set("max_queue_depth", old);
	if (ret && ch >= 0) {
		close(ch);
		return ret;
	}
	return ch;
}

TEST(channel_create_validates_flags)
{
	struct cowbuf_channel_create args = { .flags = 4, .fd = -3 };
	int dev = cowbuf_open(), ch;

	ASSERT_GE(dev, 0);
	EXPECT_EQ(-1, ioctl(dev, COWBUF_IOC_CHANNEL_CREATE, &args));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-3, args.fd);
	ch = cowbuf_channel_create(dev, COWBUF_FD_NONBLOCK);
	ASSERT_GE(ch, 0);
	EXPECT_EQ(O_NONBLOCK, fcntl(ch, F_GETFL) & O_NONBLOCK);
	EXPECT_EQ(0, fcntl(ch, F_GETFD) & FD_CLOEXEC);
	close(ch);
	ch = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	ASSERT_GE(ch, 0);
	EXPECT_EQ(0, fcntl(ch, F_GETFL) & O_NONBLOCK);
	EXPECT_EQ(FD_CLOEXEC, fcntl(ch, F_GETFD) & FD_CLOEXEC);
	close(ch);
	close(dev);
}

TEST_F(xfer, info_validates_and_reports)
{
	struct cowbuf_channel_info info = { .pad = 1 };

	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_CHANNEL_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	info.pad = 0;
	info.flags = 2;
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_CHANNEL_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, cowbuf_channel_info(self->ch, &info));
	EXPECT_EQ(0, info.queued_messages);
	EXPECT_EQ(0, info.queued_pages);
	EXPECT_EQ(cowbuf_param_get("max_queue_depth"), info.max_messages);
	/* Channel commands belong to channels. */
	EXPECT_EQ(-1, ioctl(self->src_fd, COWBUF_IOC_CHANNEL_INFO, &info));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_REGION_INFO, &info));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(xfer, move_empties_the_sender_and_fills_the_receiver)
{
	struct cowbuf_channel_info info;
	uint64_t len = 0;
	uint32_t mode = 0;
	long frames;

	pattern_fill(self->src, self->size, 21);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, self->size, COWBUF_MODE_MOVE));
	EXPECT_EQ(0, committed(self->src_fd));
	EXPECT_TRUE(all_zero(self->src, self->size));
	EXPECT_EQ(0, committed(self->src_fd));
	ASSERT_EQ(0, cowbuf_channel_info(self->ch, &info));
	EXPECT_EQ(1, info.queued_messages);
	EXPECT_EQ(NR_PAGES, info.queued_pages);
	/* No page was copied. */
	EXPECT_EQ(frames, cowbuf_counter("frames"));

	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, self->size, &len, &mode));
	EXPECT_EQ(self->size, len);
	EXPECT_EQ(COWBUF_MODE_MOVE, mode);
	EXPECT_EQ(NR_PAGES, committed(self->dst_fd));
	/* Placed and mapped: reading takes no fault. */
	EXPECT_EQ(NR_PAGES, resident_pages(self->dst, self->size));
	EXPECT_EQ(-1, pattern_check(self->dst, self->size, 21));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	EXPECT_EQ(0, queued(self->ch));
	/* The received pages are the receiver's own. */
	self->dst[0] ^= 1;
	EXPECT_TRUE(all_zero(self->src, self->size));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
}

TEST_F(xfer, share_is_copy_on_write_both_ways)
{
	long frames;

	pattern_fill(self->src, self->size, 22);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, self->size, COWBUF_MODE_SHARE));
	EXPECT_EQ(NR_PAGES, committed(self->src_fd));
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, self->size, NULL, NULL));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	EXPECT_EQ(-1, pattern_check(self->src, self->size, 22));
	EXPECT_EQ(-1, pattern_check(self->dst, self->size, 22));

	/* The receiver writes: it gets a copy, the sender keeps its bytes. */
	self->dst[0] = 'r';
	EXPECT_EQ(frames + 1, cowbuf_counter("frames"));
	EXPECT_EQ(-1, pattern_check(self->src, self->size, 22));
	EXPECT_EQ('r', self->dst[0]);
	EXPECT_EQ(-1, pattern_check_at(self->dst + PAGE, self->size - PAGE, 22, PAGE));

	/* The sender writes another page: the receiver keeps its bytes. */
	self->src[PAGE] = 's';
	EXPECT_EQ(frames + 2, cowbuf_counter("frames"));
	EXPECT_EQ(-1, pattern_check_at(self->dst + PAGE, self->size - PAGE, 22, PAGE));
	EXPECT_EQ('s', self->src[PAGE]);

	/* A page written by both is private to each. */
	self->src[2 * PAGE] = 'a';
	self->dst[2 * PAGE] = 'b';
	EXPECT_EQ('a', self->src[2 * PAGE]);
	EXPECT_EQ('b', self->dst[2 * PAGE]);
	/* Once unshared, writing again copies nothing more. */
	frames = cowbuf_counter("frames");
	self->src[2 * PAGE + 1] = 'c';
	self->dst[2 * PAGE + 1] = 'd';
	EXPECT_EQ(frames, cowbuf_counter("frames"));
}

TEST_F(xfer, share_keeps_the_bytes_of_the_send)
{
	pattern_fill(self->src, self->size, 23);
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, self->size, COWBUF_MODE_SHARE));
	/* Written after SEND, before RECV: the message is unaffected. */
	memset(self->src, 0xee, self->size);
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, self->size, NULL, NULL));
	EXPECT_EQ(-1, pattern_check(self->dst, self->size, 23));
}

TEST_F(xfer, uncommitted_pages_travel_as_zero)
{
	pattern_fill(self->dst, self->size, 24);
	self->src[3 * PAGE] = 3;
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, 8 * PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, 8 * PAGE, NULL, NULL));
	/* The old contents of the target range are gone, holes included. */
	EXPECT_EQ(NR_PAGES - 7, committed(self->dst_fd));
	EXPECT_EQ(3, self->dst[3 * PAGE]);
	self->dst[3 * PAGE] = 0;
	EXPECT_TRUE(all_zero(self->dst, 8 * PAGE));
	EXPECT_EQ(-1, pattern_check_at(self->dst + 8 * PAGE, self->size - 8 * PAGE, 24,
				       8 * PAGE));
}

TEST_F(xfer, send_validates_everything_and_changes_nothing)
{
	struct cowbuf_send args = {
		.addr = (uintptr_t)self->src,
		.length = PAGE,
		.mode = COWBUF_MODE_MOVE,
	};
	char *heap = aligned_alloc(PAGE, PAGE);
	long max_msg = cowbuf_param_get("max_message_pages");

	ASSERT_NE(NULL, heap);
	pattern_fill(self->src, self->size, 25);
	args.flags = 1;
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_SEND, &args));
	EXPECT_EQ(EINVAL, errno);
	args.flags = 0;
	args.mode = 0;
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_SEND, &args));
	EXPECT_EQ(EINVAL, errno);
	args.mode = 3;
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_SEND, &args));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_SEND, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, self->src + 8, PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, self->src, PAGE - 8, COWBUF_MODE_SHARE));
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, self->src, 0, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, self->src, self->size + PAGE,
				       COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, heap, PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, (void *)-PAGE, 2 * PAGE, COWBUF_MODE_MOVE));
	if (max_msg > 0 && max_msg < NR_PAGES)
		EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, self->src, (max_msg + 1) * PAGE,
					       COWBUF_MODE_MOVE));
	/* SEND is for channels only. */
	EXPECT_EQ(-1, ioctl(self->src_fd, COWBUF_IOC_SEND, &args));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, COWBUF_IOC_SEND, &args));
	EXPECT_EQ(ENOTTY, errno);

	EXPECT_EQ(0, queued(self->ch));
	EXPECT_EQ(NR_PAGES, committed(self->src_fd));
	EXPECT_EQ(-1, pattern_check(self->src, self->size, 25));
	free(heap);
}

TEST_F(xfer, message_size_cap_is_enforced)
{
	long old = cowbuf_param_get("max_message_pages");

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_message_pages");
	ASSERT_EQ(0, cowbuf_param_set("max_message_pages", 4));
	EXPECT_EQ(-EINVAL, cowbuf_send(self->ch, self->src, 5 * PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(0, cowbuf_send(self->ch, self->src, 4 * PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_param_set("max_message_pages", old));
	EXPECT_EQ(0, cowbuf_recv(self->ch, self->dst, self->size, NULL, NULL));
}

TEST_F(xfer, recv_validates_and_keeps_the_message)
{
	struct cowbuf_recv args = {
		.addr = (uintptr_t)self->dst,
		.length = self->size,
		.flags = 2,
	};
	char *heap = aligned_alloc(PAGE, 8 * PAGE);
	uint64_t len = 0;

	ASSERT_NE(NULL, heap);
	pattern_fill(self->src, 8 * PAGE, 26);
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, 8 * PAGE, COWBUF_MODE_MOVE));

	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_RECV, &args));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_RECV, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-EINVAL, cowbuf_recv(self->ch, self->dst + 1, self->size - PAGE, NULL, NULL));
	EXPECT_EQ(-EINVAL, cowbuf_recv(self->ch, self->dst, 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, cowbuf_recv(self->ch, self->dst, self->size + PAGE, NULL, NULL));
	EXPECT_EQ(-EINVAL, cowbuf_recv(self->ch, heap, 8 * PAGE, NULL, NULL));
	/* Too little room: EMSGSIZE tells how much is needed. */
	EXPECT_EQ(-EMSGSIZE, cowbuf_recv(self->ch, self->dst, 4 * PAGE, &len, NULL));
	EXPECT_EQ(8 * PAGE, len);
	EXPECT_EQ(0, committed(self->dst_fd));
	EXPECT_EQ(1, queued(self->ch));
	/* Still there, intact. */
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst + 8 * PAGE, 8 * PAGE, &len, NULL));
	EXPECT_EQ(8 * PAGE, len);
	EXPECT_EQ(-1, pattern_check(self->dst + 8 * PAGE, 8 * PAGE, 26));
	free(heap);
}

/* A message nobody can place (too large here) is discarded, not stuck. */
TEST_F(xfer, recv_discard_frees_a_message_no_range_can_take)
{
	struct cowbuf_recv args = { .flags = COWBUF_RECV_DISCARD };
	int nb = cowbuf_channel_create(self->dev, COWBUF_FD_NONBLOCK);
	uint64_t len = 0;

	ASSERT_GE(nb, 0);
	pattern_fill(self->src, self->size, 27);
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, self->size, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EMSGSIZE, cowbuf_recv(self->ch, self->dst, self->size / 2, &len, NULL));
	EXPECT_EQ(self->size, len);
	/* DISCARD takes no range: addr and length must be zero. */
	args.addr = (uintptr_t)self->dst;
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_RECV, &args));
	EXPECT_EQ(EINVAL, errno);
	args.addr = 0;
	args.length = PAGE;
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_RECV, &args));
	EXPECT_EQ(EINVAL, errno);
	args.length = 0;
	EXPECT_EQ(2, queued(self->ch));
	ASSERT_EQ(0, ioctl(self->ch, COWBUF_IOC_RECV, &args));
	EXPECT_EQ(self->size, args.length);
	EXPECT_EQ(COWBUF_MODE_SHARE, args.mode);
	EXPECT_EQ(1, queued(self->ch));
	/* The sender's copy is untouched; the next message comes through. */
	EXPECT_EQ(-1, pattern_check_at(self->src + PAGE, self->size - PAGE, 27, PAGE));
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, PAGE, &len, NULL));
	EXPECT_EQ(PAGE, len);
	EXPECT_EQ(-1, pattern_check(self->dst, PAGE, 27));
	/* Nothing left: a non-blocking DISCARD says so. */
	args.length = 0;
	EXPECT_EQ(-1, ioctl(nb, COWBUF_IOC_RECV, &args));
	EXPECT_EQ(EAGAIN, errno);
	close(nb);
}

/* A RECV whose results cannot be written back fails before consuming. */
TEST_F(xfer, recv_that_cannot_report_consumes_nothing)
{
	struct cowbuf_recv *args;
	char *page;

	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	args = (struct cowbuf_recv *)page;
	args->addr = (uintptr_t)self->dst;
	args->length = self->size;
	ASSERT_EQ(0, mprotect(page, PAGE, PROT_READ));
	pattern_fill(self->src, 4 * PAGE, 28);
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, 4 * PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-1, ioctl(self->ch, COWBUF_IOC_RECV, args));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(1, queued(self->ch));
	EXPECT_EQ(0, committed(self->dst_fd));
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, self->size, NULL, NULL));
	EXPECT_EQ(-1, pattern_check(self->dst, 4 * PAGE, 28));
	munmap(page, PAGE);
}

TEST_F(xfer, messages_arrive_in_order)
{
	int i;

	for (i = 0; i < 8; i++)
		pattern_fill(self->src + i * PAGE, PAGE, 100 + i);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, cowbuf_send(self->ch, self->src + i * PAGE, PAGE,
					 i % 2 ? COWBUF_MODE_SHARE : COWBUF_MODE_MOVE));
	EXPECT_EQ(8, queued(self->ch));
	for (i = 0; i < 8; i++) {
		uint32_t mode = 0;

		ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst + (7 - i) * PAGE, PAGE, NULL,
					 &mode));
		EXPECT_EQ(i % 2 ? COWBUF_MODE_SHARE : COWBUF_MODE_MOVE, mode);
		EXPECT_EQ(-1, pattern_check(self->dst + (7 - i) * PAGE, PAGE, 100 + i));
	}
}

TEST_F(xfer, nonblocking_and_poll)
{
	struct pollfd pfd = { .fd = self->ch, .events = POLLIN | POLLOUT };
	int ch, i;

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_queue_depth");
	ch = channel_with_depth(self->dev, 3, COWBUF_FD_NONBLOCK);
	ASSERT_GE(ch, 0);
	pfd.fd = ch;

	EXPECT_EQ(-EAGAIN, cowbuf_recv(ch, self->dst, self->size, NULL, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLOUT, pfd.revents);

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, cowbuf_send(ch, self->src + i * PAGE, PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);
	EXPECT_EQ(-EAGAIN, cowbuf_send(ch, self->src + 4 * PAGE, PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(3, queued(ch));

	ASSERT_EQ(0, cowbuf_recv(ch, self->dst, PAGE, NULL, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN | POLLOUT, pfd.revents);
	/* The same through the invalid-argument checks: EINVAL wins. */
	EXPECT_EQ(-EINVAL, cowbuf_send(ch, self->src + 1, PAGE, COWBUF_MODE_MOVE));
	close(ch);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(xfer, blocking_recv_is_interruptible)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct sigaction old;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, &old));	/* no SA_RESTART */
	alarm(1);
	EXPECT_EQ(-EINTR, cowbuf_recv(self->ch, self->dst, self->size, NULL, NULL));
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
}

TEST_F(xfer, blocking_send_waits_for_room)
{
	int ch, status;
	pid_t pid;

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_queue_depth");
	ch = channel_with_depth(self->dev, 1, 0);
	ASSERT_GE(ch, 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Two sends on a channel with room for one: the second waits. */
		pattern_fill(self->src, 2 * PAGE, 27);
		if (cowbuf_send(ch, self->src, PAGE, COWBUF_MODE_MOVE))
			_exit(1);
		if (cowbuf_send(ch, self->src + PAGE, PAGE, COWBUF_MODE_MOVE))
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(0, cowbuf_recv(ch, self->dst, PAGE, NULL, NULL));
	ASSERT_EQ(0, cowbuf_recv(ch, self->dst + PAGE, PAGE, NULL, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(-1, pattern_check(self->dst, 2 * PAGE, 27));
	close(ch);
}

/* Two processes, the channel and regions inherited: 1 MiB each way. */
TEST(move_and_share_between_processes_by_fork)
{
	size_t size = 1 << 20;
	int dev, ch_ab, ch_ba, fd;
	uint64_t sum;
	char *buf;
	int status;
	pid_t pid;

	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	ch_ab = cowbuf_channel_create(dev, 0);
	ch_ba = cowbuf_channel_create(dev, 0);
	ASSERT_GE(ch_ab, 0);
	ASSERT_GE(ch_ba, 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* B: its own region, unknown to A. */
		fd = cowbuf_region_create(dev, size, 0);
		if (fd < 0 || cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&buf))
			_exit(1);
		if (cowbuf_recv(ch_ab, buf, size, NULL, NULL))
			_exit(2);
		if (pattern_check(buf, size, 28) != -1)
			_exit(3);
		/* Answer with a changed copy, shared. */
		buf[0] ^= 0xff;
		if (cowbuf_send(ch_ba, buf, size, COWBUF_MODE_SHARE))
			_exit(4);
		_exit(0);
	}
	fd = cowbuf_region_create(dev, size, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&buf));
	pattern_fill(buf, size, 28);
	buf[0] ^= 0xff;
	sum = checksum(buf, size);
	buf[0] ^= 0xff;
	ASSERT_EQ(0, cowbuf_send(ch_ab, buf, size, COWBUF_MODE_MOVE));
	EXPECT_TRUE(all_zero(buf, size));
	ASSERT_EQ(0, cowbuf_recv(ch_ba, buf, size, NULL, NULL));
	EXPECT_EQ(sum, checksum(buf, size));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* B is gone; what it shared stays ours. */
	EXPECT_EQ(sum, checksum(buf, size));
	munmap(buf, size);
	close(fd);
	close(ch_ab);
	close(ch_ba);
	close(dev);
}

/* A process that holds no channel gets one only by SCM_RIGHTS. */
TEST(channel_passed_with_scm_rights)
{
	size_t size = 16 * PAGE;
	int sv[2], dev, ch, fd, status;
	char *buf;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		close(sv[0]);
		dev = cowbuf_open();
		ch = cowbuf_fd_recv(sv[1]);
		if (dev < 0 || ch < 0)
			_exit(1);
		fd = cowbuf_region_create(dev, size, 0);
		if (fd < 0 || cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&buf))
			_exit(2);
		if (cowbuf_recv(ch, buf, size, NULL, NULL))
			_exit(3);
		_exit(pattern_check(buf, size, 29) == -1 ? 0 : 4);
	}
	close(sv[1]);
	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	ch = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	ASSERT_GE(ch, 0);
	fd = cowbuf_region_create(dev, size, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&buf));
	pattern_fill(buf, size, 29);
	ASSERT_EQ(0, cowbuf_send(ch, buf, size, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_fd_send(sv[0], ch));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, queued(ch));
	munmap(buf, size);
	close(fd);
	close(ch);
	close(dev);
	close(sv[0]);
}

TEST_F(xfer, closing_a_channel_frees_queued_messages)
{
	long frames;
	int ch, i;

	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	pattern_fill(self->src, self->size, 30);
	frames = cowbuf_counter("frames");
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, cowbuf_send(ch, self->src + i * 16 * PAGE, 16 * PAGE,
					 i % 2 ? COWBUF_MODE_SHARE : COWBUF_MODE_MOVE));
	EXPECT_EQ(self->messages_before + 4, cowbuf_counter("messages"));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	close(ch);
	EXPECT_EQ(self->messages_before, cowbuf_counter("messages"));
	/* The moved pages are gone, the shared ones are the sender's again. */
	EXPECT_EQ(frames - 32, cowbuf_counter("frames"));
	EXPECT_EQ(-1, pattern_check_at(self->src + 16 * PAGE, 16 * PAGE, 30, 16 * PAGE));
	self->src[16 * PAGE] = 1;	/* unshared: no copy */
	EXPECT_EQ(frames - 32, cowbuf_counter("frames"));
}

/* kill -9 in a blocked SEND and in a blocked RECV leaks nothing. */
TEST_F(xfer, kill_while_blocked_leaks_nothing)
{
	int ch, i, status;
	pid_t pid[2];

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_queue_depth");
	ch = channel_with_depth(self->dev, 1, 0);
	ASSERT_GE(ch, 0);
	pattern_fill(self->src, self->size, 31);

	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (!pid[i]) {
			if (i == 0) {
				cowbuf_send(ch, self->src, PAGE, COWBUF_MODE_SHARE);
				cowbuf_send(ch, self->src, PAGE, COWBUF_MODE_SHARE);
			} else {
				/* Wait on a channel nobody sends to. */
				cowbuf_recv(self->ch, self->dst, PAGE, NULL, NULL);
			}
			_exit(9);
		}
	}
	usleep(300 * 1000);
	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGKILL);
		ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status));
		EXPECT_EQ(SIGKILL, WTERMSIG(status));
	}
	EXPECT_EQ(1, queued(ch));
	close(ch);
	EXPECT_EQ(-1, pattern_check(self->src, self->size, 31));
}

/* A page another party holds a reference to is not given away. */
TEST_F(xfer, pinned_pages_are_busy)
{
	struct iovec iov = { .iov_base = self->src + 2 * PAGE, .iov_len = PAGE };
	char *sink = malloc(PAGE);
	int pipefd[2];

	ASSERT_NE(NULL, sink);
	pattern_fill(self->src, self->size, 32);
	ASSERT_EQ(0, pipe(pipefd));
	/* vmsplice() keeps a reference to the page in the pipe. */
	ASSERT_EQ((ssize_t)PAGE, vmsplice(pipefd[1], &iov, 1, 0));
	EXPECT_EQ(-EBUSY, cowbuf_send(self->ch, self->src, 4 * PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EBUSY, cowbuf_send(self->ch, self->src, 4 * PAGE, COWBUF_MODE_SHARE));
	EXPECT_EQ(0, queued(self->ch));
	EXPECT_EQ(NR_PAGES, committed(self->src_fd));
	EXPECT_EQ(-1, pattern_check(self->src, self->size, 32));
	/* Other pages go. */
	EXPECT_EQ(0, cowbuf_send(self->ch, self->src + 4 * PAGE, 4 * PAGE,
				 COWBUF_MODE_MOVE));
	/* Once the pipe let go, so does cowbuf. */
	ASSERT_EQ((ssize_t)PAGE, read(pipefd[0], sink, PAGE));
	free(sink);
	close(pipefd[0]);
	close(pipefd[1]);
	EXPECT_EQ(0, cowbuf_send(self->ch, self->src, 4 * PAGE, COWBUF_MODE_MOVE));
	/* First the second half, sent first, then the first half. */
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst + 4 * PAGE, self->size - 4 * PAGE,
				 NULL, NULL));
	ASSERT_EQ(0, cowbuf_recv(self->ch, self->dst, self->size, NULL, NULL));
	EXPECT_EQ(-1, pattern_check(self->dst, 8 * PAGE, 32));
}

TEST_F(xfer, recv_over_the_region_cap_keeps_the_message)
{
	long old = cowbuf_param_get("max_region_pages");

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_region_pages");
	pattern_fill(self->src, 16 * PAGE, 33);
	memset(self->dst, 1, 8 * PAGE);
	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, 16 * PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", 20));
	/* 8 pages there now, 16 more would make 24. */
	EXPECT_EQ(-ENOMEM, cowbuf_recv(self->ch, self->dst + 8 * PAGE, 16 * PAGE, NULL,
				       NULL));
	EXPECT_EQ(8, committed(self->dst_fd));
	EXPECT_EQ(1, queued(self->ch));
	/* Replacing committed pages costs nothing extra. */
	EXPECT_EQ(0, cowbuf_recv(self->ch, self->dst, 16 * PAGE, NULL, NULL));
	EXPECT_EQ(16, committed(self->dst_fd));
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", old));
	EXPECT_EQ(-1, pattern_check(self->dst, 16 * PAGE, 33));
}

TEST_F(xfer, channel_fdinfo_shows_queued_transfers)
{
	char buf[512];

	ASSERT_EQ(0, cowbuf_send(self->ch, self->src, 5 * PAGE, COWBUF_MODE_MOVE));
	ASSERT_GT(read_fdinfo(self->ch, buf, sizeof(buf)), 0);
	EXPECT_NE(NULL, strstr(buf, "cowbuf-queued-messages:\t1\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "cowbuf-queued-pages:\t5\n")) TH_LOG("%s", buf);
}

struct writer {
	pthread_t thread;
	char *pages;		/* WRITER_PAGES pages of its own */
	atomic_ulong done;	/* last value written to every page */
	atomic_int *stop;
};

#define NR_WRITERS	3
#define WRITER_PAGES	8

/* Write 1, 2, 3, ... into the first word of each of the writer's pages. */
static void *writer_loop(void *arg)
{
	struct writer *w = arg;
	unsigned long k, p;

	for (k = 1; !atomic_load(w->stop); k++) {
		for (p = 0; p < WRITER_PAGES; p++)
			*(volatile unsigned long *)(w->pages + p * PAGE) = k;
		atomic_store(&w->done, k);
	}
	return NULL;
}

/*
 * SEND and RECV while threads keep writing the sent range: what was
 * received never changes afterwards (no writable frame is shared), no
 * received value is newer than what was written when SEND returned, and
 * every writer's last write is found (no write lost).
 */
static void race_writers(struct __test_metadata *_metadata, int ch, char *src_map,
			 char *dst_map, uint32_t mode)
{
	size_t len = NR_WRITERS * WRITER_PAGES * PAGE;
	struct writer w[NR_WRITERS];
	unsigned long after_send[NR_WRITERS], snap[NR_WRITERS * WRITER_PAGES];
	unsigned long seen[NR_WRITERS * WRITER_PAGES] = { 0 };
	atomic_int stop = 0;
	int i, t, p, round, ret = 0, failed = 0;

	for (t = 0; t < NR_WRITERS; t++) {
		w[t].pages = src_map + t * WRITER_PAGES * PAGE;
		w[t].stop = &stop;
		atomic_init(&w[t].done, 0);
		ASSERT_EQ(0, pthread_create(&w[t].thread, NULL, writer_loop, &w[t]));
	}
	for (round = 0; round < 200 && !failed; round++) {
		ret = cowbuf_send(ch, src_map, len, mode);
		if (ret) {
			failed = 1;
			break;
		}
		for (t = 0; t < NR_WRITERS; t++)
			after_send[t] = atomic_load(&w[t].done);
		ret = cowbuf_recv(ch, dst_map, len, NULL, NULL);
		if (ret) {
			failed = 2;
			break;
		}
		for (i = 0; i < NR_WRITERS * WRITER_PAGES; i++) {
			t = i / WRITER_PAGES;
			snap[i] = *(volatile unsigned long *)(dst_map + i * PAGE);
			/* At most one write in flight past the last published. */
			if (snap[i] > after_send[t] + 1)
				failed = 3;
			if (snap[i] > seen[i])
				seen[i] = snap[i];
		}
		sched_yield();
		for (i = 0; i < NR_WRITERS * WRITER_PAGES; i++)
			if (snap[i] != *(volatile unsigned long *)(dst_map + i * PAGE))
				failed = 4;
	}
	atomic_store(&stop, 1);
	for (t = 0; t < NR_WRITERS; t++)
		ASSERT_EQ(0, pthread_join(w[t].thread, NULL));
	EXPECT_EQ(0, failed) TH_LOG("round %d: %s (ret %d)", round,
				    failed == 1 ? "SEND failed" : failed == 2 ? "RECV failed" :
				    failed == 3 ? "received a write made after SEND" :
				    "received bytes changed after RECV", ret);
	/*
	 * Each writer's last value is in the sender's page or, moved before
	 * the writer came back to that page, was received in some round (a
	 * later round may have moved the emptied page over it since).
	 */
	for (t = 0; t < NR_WRITERS; t++) {
		for (p = 0; p < WRITER_PAGES; p++) {
			unsigned long done = atomic_load(&w[t].done);
			unsigned long src = *(unsigned long *)(w[t].pages + p * PAGE);
			unsigned long dst = seen[t * WRITER_PAGES + p];

			unsigned long got = mode == COWBUF_MODE_SHARE || src ? src : dst;

			EXPECT_EQ(done, got) TH_LOG("writer %d page %d", t, p);
		}
	}
}

TEST_F(xfer, share_racing_writers_loses_no_write)
{
	race_writers(_metadata, self->ch, self->src, self->dst, COWBUF_MODE_SHARE);
}

TEST_F(xfer, move_racing_writers_loses_no_write)
{
	race_writers(_metadata, self->ch, self->src, self->dst, COWBUF_MODE_MOVE);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(false);
	return test_harness_run(argc, argv);
}
