// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: long-term write pins, as VFIO type1, RDMA registration
 * and O_DIRECT take them, on both frame sizes. The "device" is the helper
 * module cowbuf_pin (selftests/pin/), which pins with
 * pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM) and reads and writes the
 * pinned pages from the kernel, as DMA would; without it every case skips.
 *
 * What a user relies on: a frame a region holds alone is written in place,
 * pinned or not, so the device and every mapping of the region keep seeing
 * each other's writes (after MADV_DONTNEED, through a second mapping, in a
 * forked child, with the merge scanner running); a pinned frame held alone
 * is never sent, shared or merged; and a frame that was shared with another
 * holder and is pinned is never written in place by the holder left with it
 * (the pin may be another party's): the write copies, or gets SIGBUS when
 * there is no memory for the copy.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "cowbuf_util.h"
#include "cowbuf_pin.h"

#include "../kselftest_harness.h"

#define HUGE	(2UL << 20)

static int pin_range(int pin, void *addr, size_t len)
{
	struct cowbuf_pin_range r = { .addr = (uintptr_t)addr, .length = len };

	return ioctl(pin, CBPIN_IOC_PIN, &r) ? -errno : 0;
}

static int unpin_range(int pin)
{
	return ioctl(pin, CBPIN_IOC_UNPIN) ? -errno : 0;
}

/* The device writes @len bytes of @buf at @off of what it pinned. */
static int dev_write(int pin, size_t off, const void *buf, size_t len)
{
	struct cowbuf_pin_io io = { .offset = off, .length = len, .buf = (uintptr_t)buf };

	return ioctl(pin, CBPIN_IOC_WRITE, &io) ? -errno : 0;
}

static int dev_read(int pin, size_t off, void *buf, size_t len)
{
	struct cowbuf_pin_io io = { .offset = off, .length = len, .buf = (uintptr_t)buf };

	return ioctl(pin, CBPIN_IOC_READ, &io) ? -errno : 0;
}

FIXTURE(pin) {
	int dev;
	int fd;
	int pin;
	char *map;
	size_t frame;
	size_t size;
	char *buf;
	long frames_before;
};

FIXTURE_VARIANT(pin) {
	uint32_t flags;
	bool huge;
};

FIXTURE_VARIANT_ADD(pin, page) {
	.flags = 0,
	.huge = false,
};

FIXTURE_VARIANT_ADD(pin, huge) {
	.flags = COWBUF_REGION_HUGE,
	.huge = true,
};

FIXTURE_SETUP(pin)
{
	self->frames_before = cowbuf_counter("frames");
	self->frame = variant->huge ? HUGE : PAGE;
	self->size = 4 * self->frame;
	self->buf = malloc(self->size);
	ASSERT_NE(NULL, self->buf);
	self->pin = open("/dev/cowbuf_pin", O_RDWR | O_CLOEXEC);
	ASSERT_EQ(0, open_mapped_region(&self->dev, &self->fd, &self->map, self->size,
					variant->flags | COWBUF_FD_CLOEXEC));
}

FIXTURE_TEARDOWN(pin)
{
	if (self->pin >= 0)
		close(self->pin);
	close_mapped_region(self->dev, self->fd, self->map, self->size);
	free(self->buf);
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
}

/* The 6.1 harness runs the body after a SKIP() in FIXTURE_SETUP: skip here. */
#define NO_PIN_DEVICE	"no /dev/cowbuf_pin (selftests/pin)"

/*
 * The device writes @seed's pattern over frame @i and the region must read
 * it; the region writes @seed + 1's and the device must read that.
 */
static int check_both_ways(int pin, char *map, size_t frame, int i, uint64_t seed,
			   char *buf)
{
	pattern_fill(buf, frame, seed);
	if (dev_write(pin, i * frame, buf, frame))
		return -1;
	if (pattern_check(map + i * frame, frame, seed) != -1)
		return -2;
	pattern_fill(map + i * frame, frame, seed + 1);
	if (dev_read(pin, i * frame, buf, frame))
		return -3;
	if (pattern_check(buf, frame, seed + 1) != -1)
		return -4;
	return 0;
}

TEST_F(pin, the_device_and_the_region_see_each_others_writes)
{
	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	pattern_fill(self->map, self->size, 1);
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->size));
	EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, 1, 2, self->buf));
	/* The pin commits what it pins. */
	ASSERT_EQ(0, unpin_range(self->pin));
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, self->size));
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->size));
	EXPECT_EQ((long)(self->size / PAGE), committed(self->fd));
	EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, 2, 3, self->buf));
}

/* The first write after MADV_DONTNEED faults, and must not detach the pin. */
TEST_F(pin, writes_after_madv_dontneed_reach_the_device)
{
	int i;

	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	pattern_fill(self->map, self->size, 10);
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->size));
	ASSERT_EQ(0, madvise(self->map, self->size, MADV_DONTNEED));
	/* Written first, then read first. */
	pattern_fill(self->map, self->frame, 11);
	ASSERT_EQ(0, dev_read(self->pin, 0, self->buf, self->frame));
	EXPECT_EQ(-1, pattern_check(self->buf, self->frame, 11));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, madvise(self->map, self->size, MADV_DONTNEED));
		EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, i, 20 + 2 * i,
					     self->buf));
	}
	/* The device saw the unpinned region's last bytes: the same frames. */
	ASSERT_EQ(0, unpin_range(self->pin));
	EXPECT_EQ(-1, pattern_check(self->map + 3 * self->frame, self->frame, 27));
}

TEST_F(pin, writes_through_a_second_mapping_reach_the_device)
{
	char *second;

	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	pattern_fill(self->map, self->size, 30);
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->size));
	/* A second mapper, as a vhost-user backend maps guest RAM. */
	ASSERT_EQ(0, cowbuf_map(self->fd, self->size, 0, PROT_READ | PROT_WRITE,
				(void **)&second));
	EXPECT_EQ(0, check_both_ways(self->pin, second, self->frame, 1, 31, self->buf));
	EXPECT_EQ(-1, pattern_check(self->map + self->frame, self->frame, 32));
	munmap(second, self->size);
}

TEST_F(pin, writes_of_a_forked_child_reach_the_device)
{
	int status;
	pid_t pid;

	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	pattern_fill(self->map, self->size, 40);
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->size));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* The pin is the parent's device's; the mapping is shared. */
		pattern_fill(self->map + 2 * self->frame, self->frame, 41);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, dev_read(self->pin, 2 * self->frame, self->buf, self->frame));
	EXPECT_EQ(-1, pattern_check(self->buf, self->frame, 41));
	EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, 2, 42, self->buf));
}

/*
 * With the scanner running, pinned frames are never write-protected or
 * merged (identical pages here, all-zero frames of a huge region), and
 * writes keep reaching the device.
 */
TEST_F(pin, the_scanner_leaves_pinned_frames_alone)
{
	static const char *const knobs[] = { "run", "pages_to_scan", "sleep_millisecs" };
	long saved[3], shared, zero_before;
	struct cowbuf_merge_info info;
	struct cowbuf_range r;
	int i;

	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	if (!cowbuf_is_root())
		SKIP(return, "needs root (the scanner's knobs)");
	for (i = 0; i < 3; i++)
		saved[i] = knob_get(knobs[i]);
	/* Identical frames, or all-zero ones for a huge region. */
	for (i = 0; i < 4; i++)
		memset(self->map + i * self->frame, variant->huge ? 0 : 'm', self->frame);
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->size));
	r = (struct cowbuf_range){ .addr = (uintptr_t)self->map, .length = self->size,
				   .flags = COWBUF_MERGE_ENABLE };
	ASSERT_EQ(0, ioctl(self->fd, COWBUF_IOC_MERGE, &r));
	zero_before = knob_get("zero_pages");
	ASSERT_EQ(0, knob_set("pages_to_scan", 4096));
	ASSERT_EQ(0, knob_set("sleep_millisecs", 1));
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	memset(&info, 0, sizeof(info));
	ASSERT_EQ(0, ioctl(self->fd, COWBUF_IOC_MERGE_INFO, &info));
	shared = info.shared_pages;
	EXPECT_EQ(0, shared);
	EXPECT_EQ(zero_before, knob_get("zero_pages"));
	EXPECT_EQ((long)(self->size / PAGE), committed(self->fd));
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, i, 50 + 2 * i,
					     self->buf));
		/* Made identical again, and scanned again: still apart. */
		memset(self->map + i * self->frame, 'm', self->frame);
	}
	ASSERT_TRUE(wait_full_scans(2));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, i, 60 + 2 * i,
					     self->buf));
	/* Released, they merge. */
	ASSERT_EQ(0, unpin_range(self->pin));
	if (!variant->huge) {
		for (i = 0; i < 4; i++)
			memset(self->map + i * self->frame, 'm', self->frame);
		ASSERT_TRUE(wait_full_scans(3));
		memset(&info, 0, sizeof(info));
		ASSERT_EQ(0, ioctl(self->fd, COWBUF_IOC_MERGE_INFO, &info));
		EXPECT_EQ(4, info.shared_pages);
	}
	for (i = 2; i >= 0; i--)
		ASSERT_EQ(0, knob_set(knobs[i], saved[i]));
}

/* A pinned frame held alone never leaves its region, nor gets a sharer. */
TEST_F(pin, a_pinned_frame_is_neither_sent_nor_shared)
{
	int ch = cowbuf_channel_create(self->dev, COWBUF_FD_NONBLOCK);

	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	ASSERT_GE(ch, 0);
	pattern_fill(self->map, self->size, 70);
	ASSERT_EQ(0, pin_range(self->pin, self->map + self->frame, self->frame));
	EXPECT_EQ(-EBUSY, cowbuf_send(ch, self->map, self->size, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EBUSY, cowbuf_send(ch, self->map + self->frame, self->frame,
				      COWBUF_MODE_SHARE));
	EXPECT_EQ(-1, pattern_check(self->map, self->size, 70));
	EXPECT_EQ(0, check_both_ways(self->pin, self->map + self->frame, self->frame, 0, 71,
				     self->buf));
	/* Unpinned, it goes. */
	ASSERT_EQ(0, unpin_range(self->pin));
	EXPECT_EQ(0, cowbuf_send(ch, self->map + self->frame, self->frame, COWBUF_MODE_MOVE));
	close(ch);
}

/*
 * The attack of a pin kept across a hand-over: the attacker SHAREs a frame
 * to a second region of its own, splices it into a pipe from the first,
 * MOVEs the second region's share to the victim and drops the first: the
 * victim is left the frame's only holder, and the attacker's pipe still
 * references it. The victim's writes must never reach the pipe. They copy;
 * where the copy cannot be had (a 2 MiB frame in a memory cgroup with no
 * room for it) the write gets SIGBUS and pinned_sigbus counts it.
 */
struct victim_case {
	int ch;
	int dev;
	size_t frame;
	bool limit;
};

static void victim_writes(void *arg)
{
	struct victim_case *c = arg;
	char *map;
	int fd;

	fd = cowbuf_region_create(c->dev, c->frame, c->frame == PAGE ? 0 : COWBUF_REGION_HUGE);
	if (fd < 0 || cowbuf_map(fd, c->frame, 0, PROT_READ | PROT_WRITE, (void **)&map))
		_exit(10);
	if (cowbuf_recv(c->ch, map, c->frame, NULL, NULL))
		_exit(11);
	if (c->limit && enter_limited_cgroup("cowbuf-pin", "1M"))
		_exit(12);
	/* The secret. */
	memset(map, 'S', c->frame);
	if (memchr(map, 'S', 1) != map)
		_exit(13);
	_exit(0);
}

TEST_F(pin, a_frame_that_was_shared_is_never_written_in_place_while_pinned)
{
	struct victim_case c = { .dev = self->dev, .frame = self->frame };
	struct iovec iov = { .iov_base = self->map, .iov_len = PAGE };
	int pipefd[2], second_fd, ch, status;
	long sigbus = knob_get("pinned_sigbus");
	char *second, *sink = malloc(PAGE);

	ASSERT_NE(NULL, sink);
	c.limit = variant->huge && cowbuf_is_root() &&
		  !access("/sys/fs/cgroup/cgroup.subtree_control", W_OK);
	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	c.ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(c.ch, 0);
	second_fd = cowbuf_region_create(self->dev, self->frame,
					 variant->huge ? COWBUF_REGION_HUGE : 0);
	ASSERT_GE(second_fd, 0);
	ASSERT_EQ(0, cowbuf_map(second_fd, self->frame, 0, PROT_READ | PROT_WRITE,
				(void **)&second));

	memset(self->map, 'p', self->frame);
	ASSERT_EQ(0, cowbuf_send(ch, self->map, self->frame, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_recv(ch, second, self->frame, NULL, NULL));
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ((ssize_t)PAGE, vmsplice(pipefd[1], &iov, 1, 0));
	/* Two holders: the pipe's reference is no reason for EBUSY. */
	ASSERT_EQ(0, cowbuf_send(c.ch, second, self->frame, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, self->frame));

	status = run_in_child(victim_writes, &c);
	if (c.limit) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
		EXPECT_EQ(sigbus + 1, knob_get("pinned_sigbus"));
		rmdir("/sys/fs/cgroup/cowbuf-pin");
	} else {
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* What the pipe holds is what the attacker spliced, never the secret. */
	ASSERT_EQ((ssize_t)PAGE, read(pipefd[0], sink, PAGE));
	EXPECT_EQ(NULL, memchr(sink, 'S', PAGE));
	EXPECT_EQ('p', sink[0]);

	munmap(second, self->frame);
	close(second_fd);
	close(pipefd[0]);
	close(pipefd[1]);
	close(c.ch);
	close(ch);
	free(sink);
}

/*
 * Punching part of a huge frame zeroes it in place only where a write would
 * go in place: a frame that was shared and is pinned (a pipe) is copied
 * first, and the pipe keeps its bytes.
 */
TEST_F(pin, punching_a_pinned_frame_that_was_shared_copies_it)
{
	struct iovec iov = { .iov_base = self->map, .iov_len = PAGE };
	int ch, second_fd, pipefd[2];
	char *second, *sink;

	if (!variant->huge)
		SKIP(return, "only a huge frame can be punched in part");
	ch = cowbuf_channel_create(self->dev, 0);
	sink = malloc(PAGE);
	ASSERT_NE(NULL, sink);
	ASSERT_GE(ch, 0);
	second_fd = cowbuf_region_create(self->dev, self->frame, COWBUF_REGION_HUGE);
	ASSERT_GE(second_fd, 0);
	ASSERT_EQ(0, cowbuf_map(second_fd, self->frame, 0, PROT_READ | PROT_WRITE,
				(void **)&second));
	memset(self->map, 'q', self->frame);
	ASSERT_EQ(0, cowbuf_send(ch, self->map, self->frame, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_recv(ch, second, self->frame, NULL, NULL));
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ((ssize_t)PAGE, vmsplice(pipefd[1], &iov, 1, 0));
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, self->frame));
	/* The second region holds the pinned frame alone, and punches it. */
	ASSERT_EQ(0, fallocate(second_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE));
	EXPECT_TRUE(all_zero(second, PAGE));
	EXPECT_EQ('q', second[PAGE]);
	ASSERT_EQ((ssize_t)PAGE, read(pipefd[0], sink, PAGE));
	EXPECT_EQ('q', sink[0]);
	EXPECT_EQ('q', sink[PAGE - 1]);
	munmap(second, self->frame);
	close(second_fd);
	close(pipefd[0]);
	close(pipefd[1]);
	close(ch);
	free(sink);
}

/*
 * A frame that was shared and is held alone again, unpinned, is the
 * holder's own: a pin taken from then on is written through in place.
 */
TEST_F(pin, a_frame_shared_once_is_the_holders_own_again)
{
	int ch = cowbuf_channel_create(self->dev, 0), second_fd;
	char *second;

	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	ASSERT_GE(ch, 0);
	second_fd = cowbuf_region_create(self->dev, self->frame,
					 variant->huge ? COWBUF_REGION_HUGE : 0);
	ASSERT_GE(second_fd, 0);
	ASSERT_EQ(0, cowbuf_map(second_fd, self->frame, 0, PROT_READ | PROT_WRITE,
				(void **)&second));
	pattern_fill(self->map, self->frame, 80);
	ASSERT_EQ(0, cowbuf_send(ch, self->map, self->frame, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_recv(ch, second, self->frame, NULL, NULL));
	/* The second region lets go: the first holds the frame alone. */
	ASSERT_EQ(0, cowbuf_decommit(second_fd, second, self->frame));
	ASSERT_EQ(0, pin_range(self->pin, self->map, self->frame));
	ASSERT_EQ(0, madvise(self->map, self->frame, MADV_DONTNEED));
	EXPECT_EQ(0, check_both_ways(self->pin, self->map, self->frame, 0, 81, self->buf));
	munmap(second, self->frame);
	close(second_fd);
	close(ch);
}

TEST_F(pin, the_pin_device_validates_its_arguments)
{
	if (self->pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	EXPECT_EQ(-EINVAL, pin_range(self->pin, self->map + 1, PAGE));
	EXPECT_EQ(-EINVAL, pin_range(self->pin, self->map, 0));
	EXPECT_EQ(-EINVAL, dev_read(self->pin, 0, self->buf, 1));
	ASSERT_EQ(0, pin_range(self->pin, self->map, PAGE));
	EXPECT_EQ(-EINVAL, dev_read(self->pin, PAGE, self->buf, 1));
	EXPECT_EQ(-EFAULT, dev_read(self->pin, 0, NULL, 1));
}

/*
 * Wait up to @ms for the child @pid; its wait status, or -1 if it still
 * runs.
 */
static int wait_child_ms(pid_t pid, int ms)
{
	int status, i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	return -1;
}

/* A child that runs @fn on @map and exits 0 when it returns 0. */
static pid_t start_child(int (*fn)(int fd, char *map), int fd, char *map)
{
	pid_t pid = fork();

	if (!pid)
		_exit(fn(fd, map) ? 1 : 0);
	return pid;
}

/*
 * The wait status of the child @pid if it ends within 20 s while the device
 * holds its lock; else -1, after letting the child go and reaping it.
 */
static int child_ends_while_locked(int pin, pid_t pid)
{
	int status = wait_child_ms(pid, 20000);

	if (status != -1)
		return status;
	ioctl(pin, CBPIN_IOC_UNLOCK);
	waitpid(pid, &status, 0);
	return -1;
}

static int commit_first(int fd, char *map)
{
	return cowbuf_commit(fd, map, HUGE);
}

static int commit_second(int fd, char *map)
{
	return cowbuf_commit(fd, map + HUGE, HUGE);
}

static int write_first(int fd, char *map)
{
	map[0] = 1;
	return 0;
}

/*
 * The huge zero frame is one for every region. A read fault of an empty
 * huge slot holds its page lock while the fault core maps it, so whoever
 * fills an empty slot must wait for such faults, but only in a region that
 * has handed the zero frame out: a region that never did commits and fills
 * its slots without waiting for other regions' read faults. The device
 * holds the zero frame's lock here, as a read fault being mapped would.
 */
TEST(filling_a_huge_region_waits_only_for_its_own_zero_frame_faults)
{
	char *reader_map, *fresh_map;
	int dev, reader, fresh, pin;
	uint64_t addr;
	pid_t child;
	int status;

	pin = open("/dev/cowbuf_pin", O_RDWR | O_CLOEXEC);
	if (pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	ASSERT_EQ(0, open_mapped_region(&dev, &reader, &reader_map, 2 * HUGE,
					COWBUF_REGION_HUGE | COWBUF_FD_CLOEXEC));
	fresh = cowbuf_region_create(dev, 2 * HUGE, COWBUF_REGION_HUGE | COWBUF_FD_CLOEXEC);
	ASSERT_LE(0, fresh);
	ASSERT_EQ(0, cowbuf_map(fresh, 2 * HUGE, 0, PROT_READ | PROT_WRITE,
				(void **)&fresh_map));

	/* A read of an empty slot: the zero frame, which the device locks. */
	ASSERT_EQ(0, reader_map[0]);
	addr = (uintptr_t)reader_map;
	ASSERT_EQ(0, ioctl(pin, CBPIN_IOC_LOCK, &addr));
	ASSERT_EQ(-1, ioctl(pin, CBPIN_IOC_LOCK, &addr));
	ASSERT_EQ(EBUSY, errno);

	/* The fresh region commits, and a write fills a slot, meanwhile. */
	child = start_child(commit_first, fresh, fresh_map);
	ASSERT_LT(0, child);
	ASSERT_EQ(0, child_ends_while_locked(pin, child));
	child = start_child(write_first, fresh, fresh_map + HUGE);
	ASSERT_LT(0, child);
	ASSERT_EQ(0, child_ends_while_locked(pin, child));

	/* The region that mapped the zero frame waits for the lock. */
	child = start_child(commit_second, reader, reader_map);
	ASSERT_LT(0, child);
	status = wait_child_ms(child, 500);
	ASSERT_EQ(0, ioctl(pin, CBPIN_IOC_UNLOCK));
	EXPECT_EQ(-1, status);
	if (status == -1)
		ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, reader_map[HUGE]);
	EXPECT_EQ(512, committed(reader));
	EXPECT_EQ(1024, committed(fresh));

	/* CBPIN_IOC_LOCK looks pages up for reading: EFAULT on a hole. */
	addr = 0;
	EXPECT_EQ(-1, ioctl(pin, CBPIN_IOC_LOCK, &addr));
	EXPECT_EQ(EFAULT, errno);
	addr = (uintptr_t)reader_map + 1;
	EXPECT_EQ(-1, ioctl(pin, CBPIN_IOC_LOCK, &addr));
	EXPECT_EQ(EINVAL, errno);

	munmap(fresh_map, 2 * HUGE);
	close(fresh);
	close_mapped_region(dev, reader, reader_map, 2 * HUGE);
	close(pin);
}

/* The merge stopper's side: wait for the scanner to stop at a merge. */
static int merge_wait(int pin, struct cowbuf_pin_merge_stop *stop)
{
	memset(stop, 0, sizeof(*stop));
	stop->timeout_ms = 15000;
	return ioctl(pin, CBPIN_IOC_MERGE_WAIT, stop) ? -errno : 0;
}

/* Put the task @pid on CPU @cpu alone; *@was gets where it could run. */
static int run_on(pid_t pid, int cpu, cpu_set_t *was)
{
	cpu_set_t set;

	if (sched_getaffinity(pid, sizeof(*was), was))
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) ? -errno : 0;
}

/*
 * A slot merged away from a frame that another region holds too must not
 * keep reading that frame: the other holder, left alone with it, writes it,
 * and whatever a stale read-only entry of the merged slot still maps would
 * show the other region's bytes. The merge stopper stops the scanner right
 * after each merge of the chunk, before the chunk ends: slot 0 (all zero)
 * merges first, and meanwhile the region reads slot 2, mapping its frame
 * again (slot 2 was write-protected before the chunk's merges began); then
 * slot 2 merges (with slot 1, or, all zero, is emptied), and while the
 * scanner is stopped there the second region writes its secret into the
 * frame it shares with slot 2. The first region reads slot 2: @fill, never
 * the secret. The stopped scanner spins with preemption off: the test runs
 * on another CPU than the scanner, or the scanner would keep it from
 * running on the CPU it was woken on.
 */
static void merged_slot_reads_none_of_the_old_frame(struct __test_metadata *_metadata,
						    char fill)
{
	static const char *const knobs[] = { "run", "pages_to_scan", "sleep_millisecs" };
	int dev, fd, other_fd, ch, pin, i;
	struct cowbuf_pin_merge_stop stop;
	cpu_set_t scanner_cpus, own_cpus;
	pid_t scanner;
	char *map, *other, *dup;
	struct cowbuf_range r;
	long saved[3];

	pin = open("/dev/cowbuf_pin", O_RDWR | O_CLOEXEC);
	if (pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	if (!cowbuf_is_root() || sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		close(pin);
		SKIP(return, "needs root (the scanner's knobs) and two CPUs");
	}
	scanner = find_thread("cowbufd");
	ASSERT_GT(scanner, 0);
	ASSERT_EQ(0, run_on(scanner, 0, &scanner_cpus));
	ASSERT_EQ(0, run_on(0, 1, &own_cpus));
	for (i = 0; i < 3; i++)
		saved[i] = knob_get(knobs[i]);
	ASSERT_EQ(0, knob_set("run", 0));
	ASSERT_EQ(0, open_mapped_region(&dev, &fd, &map, 3 * PAGE, COWBUF_FD_CLOEXEC));
	other_fd = cowbuf_region_create(dev, PAGE, 0);
	ASSERT_GE(other_fd, 0);
	ASSERT_EQ(0, cowbuf_map(other_fd, PAGE, 0, PROT_READ | PROT_WRITE, (void **)&other));
	ch = cowbuf_channel_create(dev, 0);
	ASSERT_GE(ch, 0);
	dup = malloc(PAGE);
	ASSERT_NE(NULL, dup);

	memset(map, 0, PAGE);
	memset(map + PAGE, fill, PAGE);
	memset(map + 2 * PAGE, fill, PAGE);
	ASSERT_EQ(0, cowbuf_send(ch, map + 2 * PAGE, PAGE, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_recv(ch, other, PAGE, NULL, NULL));
	EXPECT_EQ(fill, *(volatile char *)other);

	ASSERT_EQ(0, ioctl(pin, CBPIN_IOC_MERGE_STOP));
	EXPECT_EQ(-EBUSY, ioctl(pin, CBPIN_IOC_MERGE_STOP) ? -errno : 0);
	EXPECT_EQ(-EINVAL, ioctl(pin, CBPIN_IOC_MERGE_GO) ? -errno : 0);
	r = (struct cowbuf_range){ .addr = (uintptr_t)map, .length = 3 * PAGE,
				   .flags = COWBUF_MERGE_ENABLE };
	ASSERT_EQ(0, ioctl(fd, COWBUF_IOC_MERGE, &r));
	ASSERT_EQ(0, knob_set("pages_to_scan", 4096));
	ASSERT_EQ(0, knob_set("sleep_millisecs", 1));
	ASSERT_EQ(0, knob_set("run", 1));

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, merge_wait(pin, &stop));
		if (stop.pgoff == 2)
			break;
		/* Map slot 2's frame again, before slot 2 merges. */
		EXPECT_EQ(fill, *(volatile char *)(map + 2 * PAGE));
		ASSERT_EQ(0, ioctl(pin, CBPIN_IOC_MERGE_GO));
	}
	ASSERT_EQ(2, stop.pgoff);
	EXPECT_EQ(fill ? CBPIN_MERGE_UNSTABLE : CBPIN_MERGE_ZERO, stop.how);
	/* Inside the chunk still: the other holder writes, slot 2 reads. */
	memset(other, 'S', PAGE);
	memcpy(dup, map + 2 * PAGE, PAGE);
	EXPECT_EQ(0, ioctl(pin, CBPIN_IOC_MERGE_END));

	EXPECT_EQ(NULL, memchr(dup, 'S', PAGE));
	EXPECT_EQ(fill, dup[0]);
	EXPECT_EQ(fill, map[2 * PAGE]);
	EXPECT_EQ('S', other[0]);
	for (i = 2; i >= 0; i--)
		ASSERT_EQ(0, knob_set(knobs[i], saved[i]));
	EXPECT_EQ(0, sched_setaffinity(scanner, sizeof(scanner_cpus), &scanner_cpus));
	EXPECT_EQ(0, sched_setaffinity(0, sizeof(own_cpus), &own_cpus));

	free(dup);
	close(ch);
	munmap(other, PAGE);
	close(other_fd);
	close_mapped_region(dev, fd, map, 3 * PAGE);
	close(pin);
}

TEST(a_slot_merged_with_another_never_reads_its_old_frames_other_holder)
{
	merged_slot_reads_none_of_the_old_frame(_metadata, 'x');
}

TEST(a_slot_merged_as_zero_never_reads_its_old_frames_other_holder)
{
	merged_slot_reads_none_of_the_old_frame(_metadata, 0);
}

TEST(the_merge_stopper_validates_its_arguments)
{
	struct cowbuf_pin_merge_stop stop = { .timeout_ms = 10 };
	int pin = open("/dev/cowbuf_pin", O_RDWR | O_CLOEXEC);
	int other;

	if (pin < 0)
		SKIP(return, NO_PIN_DEVICE);
	other = open("/dev/cowbuf_pin", O_RDWR | O_CLOEXEC);
	ASSERT_GE(other, 0);
	/* Not armed by this file. */
	EXPECT_EQ(-EINVAL, ioctl(pin, CBPIN_IOC_MERGE_WAIT, &stop) ? -errno : 0);
	EXPECT_EQ(-EINVAL, ioctl(pin, CBPIN_IOC_MERGE_GO) ? -errno : 0);
	EXPECT_EQ(-EINVAL, ioctl(pin, CBPIN_IOC_MERGE_END) ? -errno : 0);
	ASSERT_EQ(0, ioctl(pin, CBPIN_IOC_MERGE_STOP));
	EXPECT_EQ(-EBUSY, ioctl(other, CBPIN_IOC_MERGE_STOP) ? -errno : 0);
	EXPECT_EQ(-EINVAL, ioctl(other, CBPIN_IOC_MERGE_WAIT, &stop) ? -errno : 0);
	stop.pad = 1;
	EXPECT_EQ(-EINVAL, ioctl(pin, CBPIN_IOC_MERGE_WAIT, &stop) ? -errno : 0);
	stop.pad = 0;
	stop.timeout_ms = 60001;
	EXPECT_EQ(-EINVAL, ioctl(pin, CBPIN_IOC_MERGE_WAIT, &stop) ? -errno : 0);
	/* Nothing merges: the scanner does not stop. */
	stop.timeout_ms = 10;
	EXPECT_EQ(-ETIMEDOUT, ioctl(pin, CBPIN_IOC_MERGE_WAIT, &stop) ? -errno : 0);
	/* Closing disarms: the other file may arm it now. */
	close(pin);
	EXPECT_EQ(0, ioctl(other, CBPIN_IOC_MERGE_STOP));
	EXPECT_EQ(0, ioctl(other, CBPIN_IOC_MERGE_END));
	close(other);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(false);
	return test_harness_run(argc, argv);
}
