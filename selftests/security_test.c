// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: what a second user can and cannot reach. Another user
 * (nobody, uid 65534) must not see, map, read, send into or receive from
 * root's regions and channels by any path - /proc/PID/fd, fdinfo,
 * map_files, process_vm_readv(), pidfd_getfd() - unless handed a
 * descriptor; must never see bytes a freed frame held; cannot turn the
 * knobs; and has a page cap of its own. Merging across users is tested in
 * merge_test, its default in cowbuf_module.sh. Needs root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define NOBODY		65534
#define NR_PAGES	16
#define SEED		0x5ec

/* Become nobody, with no groups and no capabilities left. */
static int become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	return geteuid() == NOBODY ? 0 : -1;
}

/*
 * Run @fn as nobody in a child; return its exit code (0: every check
 * held; the first that failed otherwise), or 255 if it did not exit.
 */
static int as_nobody(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 255;
	if (!pid)
		_exit(become_nobody() ? 100 : fn(arg));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 255;
	return WEXITSTATUS(status);
}

/* Whether @path can't be opened with @flags, for the reason a user gets. */
static int open_denied(const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno == EACCES || errno == EPERM;
}

/* A mapped region of @size bytes of the caller's own: its fd, or -1. */
static int own_region(size_t size, char **buf)
{
	int dev = cowbuf_open(), fd;

	if (dev < 0)
		return -1;
	fd = cowbuf_region_create(dev, size, 0);
	close(dev);
	if (fd < 0 || cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)buf))
		return -1;
	return fd;
}

/* Root's objects, which the tests try to reach as nobody. */
struct victim {
	int dev;
	int region;
	int channel;
	char *map;
	size_t size;
	pid_t pid;
};

FIXTURE(victim) {
	struct victim v;
};

/* The program needs root (cowbuf_test_require() in main()): no SKIP() here. */
FIXTURE_SETUP(victim)
{
	self->v.pid = getpid();
	self->v.size = NR_PAGES * PAGE;
	self->v.dev = cowbuf_open();
	ASSERT_GE(self->v.dev, 0);
	self->v.region = cowbuf_region_create(self->v.dev, self->v.size, COWBUF_REGION_MERGEABLE);
	ASSERT_GE(self->v.region, 0);
	ASSERT_EQ(0, cowbuf_map(self->v.region, self->v.size, 0, PROT_READ | PROT_WRITE,
				(void **)&self->v.map));
	pattern_fill(self->v.map, self->v.size, SEED);
	self->v.channel = cowbuf_channel_create(self->v.dev, 0);
	ASSERT_GE(self->v.channel, 0);
	/* A message waits on the channel: a share of the region's pages. */
	ASSERT_EQ(0, cowbuf_send(self->v.channel, self->v.map, self->v.size, COWBUF_MODE_SHARE));
}

FIXTURE_TEARDOWN(victim)
{
	if (!cowbuf_is_root())
		return;
	munmap(self->v.map, self->v.size);
	close(self->v.channel);
	close(self->v.region);
	close(self->v.dev);
}

static int proc_paths_denied(void *arg)
{
	struct victim *v = arg;
	char path[128];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", v->pid, v->region);
	if (!open_denied(path, O_RDWR) || !open_denied(path, O_RDONLY))
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", v->pid, v->channel);
	if (!open_denied(path, O_RDWR))
		return 2;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", v->pid, v->region);
	if (!open_denied(path, O_RDONLY))
		return 3;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", v->pid,
		 (unsigned long)v->map, (unsigned long)v->map + v->size);
	if (!open_denied(path, O_RDWR) || !open_denied(path, O_RDONLY))
		return 4;
	snprintf(path, sizeof(path), "/proc/%d/mem", v->pid);
	if (!open_denied(path, O_RDONLY))
		return 5;
	return 0;
}

TEST_F(victim, regions_and_channels_are_unreachable_through_proc)
{
	ASSERT_EQ(0, as_nobody(proc_paths_denied, &self->v));
}

static int cross_memory_denied(void *arg)
{
	struct victim *v = arg;
	char buf[64];
	struct iovec local = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct iovec remote = { .iov_base = v->map, .iov_len = sizeof(buf) };

	if (process_vm_readv(v->pid, &local, 1, &remote, 1, 0) >= 0 || errno != EPERM)
		return 1;
	if (process_vm_writev(v->pid, &local, 1, &remote, 1, 0) >= 0 || errno != EPERM)
		return 2;
	return 0;
}

TEST_F(victim, region_memory_is_unreachable_by_process_vm_readv)
{
	ASSERT_EQ(0, as_nobody(cross_memory_denied, &self->v));
	EXPECT_EQ(-1, pattern_check(self->v.map, self->v.size, SEED));
}

static int pidfd_getfd_denied(void *arg)
{
	struct victim *v = arg;
	int pidfd = syscall(SYS_pidfd_open, v->pid, 0);

	if (pidfd < 0)
		return 1;
	if (syscall(SYS_pidfd_getfd, pidfd, v->region, 0) >= 0 || errno != EPERM)
		return 2;
	if (syscall(SYS_pidfd_getfd, pidfd, v->channel, 0) >= 0 || errno != EPERM)
		return 3;
	return 0;
}

TEST_F(victim, descriptors_cannot_be_taken_with_pidfd_getfd)
{
	struct cowbuf_channel_info info = { 0 };

	ASSERT_EQ(0, as_nobody(pidfd_getfd_denied, &self->v));
	/* The message is still queued for its owner. */
	ASSERT_EQ(0, cowbuf_channel_info(self->v.channel, &info));
	EXPECT_EQ(1, info.queued_messages);
}

struct handed {
	int sock;
	size_t size;
};

/*
 * Nobody, handed root's channel: takes root's SHARE, writes over it, and
 * sends a MOVE of its own back; its range reads zero afterwards.
 */
static int handed_channel_works(void *arg)
{
	struct handed *h = arg;
	int ch, fd;
	char *buf;

	ch = cowbuf_fd_recv(h->sock);
	if (ch < 0)
		return 1;
	fd = own_region(h->size, &buf);
	if (fd < 0)
		return 2;
	if (cowbuf_recv(ch, buf, h->size, NULL, NULL) ||
	    pattern_check(buf, h->size, SEED) != -1)
		return 3;
	pattern_fill(buf, h->size, SEED + 1);
	if (cowbuf_send(ch, buf, h->size, COWBUF_MODE_MOVE) || !all_zero(buf, h->size))
		return 4;
	return 0;
}

TEST_F(victim, a_handed_descriptor_works_and_isolates_both_sides)
{
	struct handed h = { .size = self->v.size };
	int sv[2];
	char *back;
	int fd;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	h.sock = sv[1];
	ASSERT_EQ(0, cowbuf_fd_send(sv[0], self->v.channel));
	ASSERT_EQ(0, as_nobody(handed_channel_works, &h));
	/* Nobody's write went to its own copy, never to ours. */
	EXPECT_EQ(-1, pattern_check(self->v.map, self->v.size, SEED));
	fd = cowbuf_region_create(self->v.dev, self->v.size, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, self->v.size, 0, PROT_READ | PROT_WRITE, (void **)&back));
	ASSERT_EQ(0, cowbuf_recv(self->v.channel, back, self->v.size, NULL, NULL));
	EXPECT_EQ(-1, pattern_check(back, self->v.size, SEED + 1));
	munmap(back, self->v.size);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

#define FRESH_PAGES	1024

static int fresh_frames_are_zero(void *arg)
{
	size_t size = FRESH_PAGES * PAGE, i;
	char *buf;
	int fd;

	(void)arg;
	fd = own_region(size, &buf);
	if (fd < 0)
		return 2;
	/* Half committed by the ioctl, half by write faults. */
	if (cowbuf_commit(fd, buf, size / 2))
		return 3;
	for (i = size / 2; i < size; i += PAGE)
		buf[i + PAGE - 1] = 0;
	return all_zero(buf, size) ? 0 : 4;
}

TEST(freed_frames_never_show_their_bytes)
{
	size_t size = FRESH_PAGES * PAGE;
	int fd, round;
	char *buf;

	if (!cowbuf_is_root())
		SKIP(return, "needs root");
	for (round = 0; round < 3; round++) {
		/* Root's secrets, freed: by decommit, then by close. */
		fd = own_region(size, &buf);
		ASSERT_GE(fd, 0);
		memset(buf, 0xa5, size);
		ASSERT_EQ(0, cowbuf_decommit(fd, buf, size / 2));
		munmap(buf, size);
		close(fd);
		EXPECT_EQ(0, as_nobody(fresh_frames_are_zero, NULL));
	}
}

static int knobs_denied(void *arg)
{
	static const char *const paths[] = {
		COWBUF_SYSFS_DIR "/run", COWBUF_SYSFS_DIR "/merge_across_users",
		COWBUF_SYSFS_DIR "/pages_to_scan", COWBUF_PARAMS "/max_user_pages",
		COWBUF_PARAMS "/max_region_pages",
	};
	unsigned int i;

	(void)arg;
	for (i = 0; i < ARRAY_SIZE(paths); i++)
		if (!open_denied(paths[i], O_WRONLY))
			return 1 + i;
	/* Reading the counters is fine: they are machine-wide sums. */
	return cowbuf_counter("frames") < 0 ? 20 : 0;
}

TEST(knobs_and_parameters_are_root_only)
{
	if (!cowbuf_is_root())
		SKIP(return, "needs root");
	ASSERT_EQ(0, as_nobody(knobs_denied, NULL));
}

#define CAP_PAGES	32

/* Nobody commits its cap, says so on the pipe @arg, and holds the pages. */
static int fill_own_cap(void *arg)
{
	size_t size = 2 * CAP_PAGES * PAGE;
	int *ready = arg, fd;
	char *buf;

	fd = own_region(size, &buf);
	if (fd < 0)
		return 2;
	if (cowbuf_commit(fd, buf, CAP_PAGES * PAGE))
		return 3;
	if (cowbuf_commit(fd, buf + CAP_PAGES * PAGE, PAGE) != -ENOMEM)
		return 4;
	if (write(*ready, "r", 1) != 1)
		return 5;
	pause();
	return 0;
}

TEST(each_user_has_a_page_cap_of_its_own)
{
	long saved = cowbuf_param_get("max_user_pages");
	long frames = cowbuf_counter("frames");
	size_t size = CAP_PAGES * PAGE;
	int fd, status, ready[2];
	char *buf, c;
	pid_t pid;

	if (!cowbuf_is_root())
		SKIP(return, "needs root");
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, cowbuf_param_set("max_user_pages", CAP_PAGES));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid)
		_exit(become_nobody() ? 100 : fill_own_cap(&ready[1]));
	close(ready[1]);
	/* Nobody fills its cap; root's stays whole. */
	if (read(ready[0], &c, 1) != 1) {
		waitpid(pid, &status, 0);
		cowbuf_param_set("max_user_pages", saved);
		ASSERT_EQ(0, WIFEXITED(status) ? WEXITSTATUS(status) : 255);
	}
	close(ready[0]);
	fd = own_region(size, &buf);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(0, cowbuf_commit(fd, buf, size));
	EXPECT_EQ(frames + 2 * CAP_PAGES, cowbuf_counter("frames"));
	kill(pid, SIGTERM);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* Killed while holding its pages: every earlier check held. */
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(0, cowbuf_param_set("max_user_pages", saved));
	munmap(buf, size);
	close(fd);
}

/*
 * Queued frames count against their sender: a SHARE followed by a DECOMMIT
 * cannot park more than max_user_pages in channels, a MOVE keeps the
 * charge, RECV hands it on, DISCARD returns it.
 */
static int queued_frames_are_charged(void *arg)
{
	size_t size = CAP_PAGES * PAGE;
	struct cowbuf_region_info info;
	int fd, dev, ch, i;
	char *buf;

	(void)arg;
	fd = own_region(2 * size, &buf);
	dev = cowbuf_open();
	if (fd < 0 || dev < 0)
		return 2;
	ch = cowbuf_channel_create(dev, COWBUF_FD_NONBLOCK);
	if (ch < 0)
		return 3;
	if (cowbuf_commit(fd, buf, size / 2))
		return 4;
	/* Half the cap committed, the other half queued: the cap is full. */
	if (cowbuf_send(ch, buf, size / 2, COWBUF_MODE_SHARE))
		return 5;
	if (cowbuf_decommit(fd, buf, size / 2))
		return 6;
	/* Decommitted, yet still queued: committing the whole cap fails. */
	if (cowbuf_commit(fd, buf, size) != -ENOMEM)
		return 7;
	if (cowbuf_commit(fd, buf, size / 2))
		return 8;
	if (cowbuf_send(ch, buf, PAGE, COWBUF_MODE_SHARE) != -ENOMEM)
		return 9;
	/* A MOVE keeps the charge: the region's pages go to the message. */
	if (cowbuf_send(ch, buf, size / 2, COWBUF_MODE_MOVE))
		return 10;
	if (cowbuf_commit(fd, buf + size, PAGE) != -ENOMEM)
		return 11;
	/* Received into the sender's own region, at the cap: no ENOMEM. */
	if (cowbuf_recv(ch, buf, size / 2, NULL, NULL))
		return 12;
	if (cowbuf_region_info(fd, &info) || info.committed_pages != CAP_PAGES / 2)
		return 13;
	/* The other message's charge goes with DISCARD. */
	if (cowbuf_discard(ch, NULL, NULL))
		return 14;
	if (cowbuf_commit(fd, buf + size / 2, size / 2))
		return 15;
	for (i = 0; i < 2; i++)
		close(i ? dev : ch);
	return 0;
}

TEST(queued_frames_count_against_their_sender)
{
	long saved = cowbuf_param_get("max_user_pages");

	if (!cowbuf_is_root())
		SKIP(return, "needs root");
	ASSERT_EQ(0, cowbuf_param_set("max_user_pages", CAP_PAGES));
	EXPECT_EQ(0, as_nobody(queued_frames_are_charged, NULL));
	EXPECT_EQ(0, cowbuf_param_set("max_user_pages", saved));
	EXPECT_EQ(0, cowbuf_counter("messages"));
}

/* A user's channels are capped; closing one makes room. */
static int channels_are_capped(void *arg)
{
	int dev = cowbuf_open(), ch[4], i;

	(void)arg;
	if (dev < 0)
		return 2;
	for (i = 0; i < 3; i++) {
		ch[i] = cowbuf_channel_create(dev, 0);
		if (ch[i] < 0)
			return 3 + i;
	}
	if (cowbuf_channel_create(dev, 0) != -ENOMEM)
		return 6;
	close(ch[1]);
	ch[1] = cowbuf_channel_create(dev, 0);
	if (ch[1] < 0)
		return 7;
	for (i = 0; i < 3; i++)
		close(ch[i]);
	close(dev);
	return 0;
}

TEST(each_user_has_a_channel_cap_of_its_own)
{
	long saved = cowbuf_param_get("max_user_channels");
	int dev = cowbuf_open(), ch;

	if (!cowbuf_is_root())
		SKIP(return, "needs root");
	ASSERT_GE(saved, 0);
	ASSERT_GE(dev, 0);
	ASSERT_EQ(0, cowbuf_param_set("max_user_channels", 3));
	EXPECT_EQ(0, as_nobody(channels_are_capped, NULL));
	/* Root's own channels count for root only. */
	ch = cowbuf_channel_create(dev, 0);
	EXPECT_GE(ch, 0);
	EXPECT_EQ(0, cowbuf_param_set("max_user_channels", saved));
	close(ch);
	close(dev);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(true);
	return test_harness_run(argc, argv);
}
