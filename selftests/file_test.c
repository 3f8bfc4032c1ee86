// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: region files as regular files - fstat, lseek, ftruncate,
 * fallocate (commit and punch), open again through /proc/self/fd, read-only
 * opens, and the huge-region granularity of all of it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define NR_PAGES	64
#define HUGE		(2UL << 20)
#define COWBUF_FS_MAGIC	0x636f7762

FIXTURE(file) {
	int dev;
	int fd;
	size_t size;
	char *map;
	long frames_before;
};

FIXTURE_SETUP(file)
{
	self->frames_before = cowbuf_counter("frames");
	self->size = NR_PAGES * PAGE;
	ASSERT_EQ(0, open_mapped_region(&self->dev, &self->fd, &self->map, self->size,
					COWBUF_FD_CLOEXEC));
}

FIXTURE_TEARDOWN(file)
{
	close_mapped_region(self->dev, self->fd, self->map, self->size);
	/* Whatever a test committed is freed with the region. */
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
	EXPECT_EQ(0, cowbuf_counter("regions"));
}

/* "/proc/self/fd/@fd" opened with @flags: the fd or -errno. */
static int reopen(int fd, int flags)
{
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = open(path, flags | O_CLOEXEC);
	return ret < 0 ? -errno : ret;
}

static int falloc(int fd, int mode, off_t offset, off_t len)
{
	return fallocate(fd, mode, offset, len) ? -errno : 0;
}

#define PUNCH	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

TEST_F(file, fstat_reports_size_committed_blocks_and_frame_size)
{
	struct statfs sfs;
	struct stat st;

	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(getuid(), st.st_uid);
	EXPECT_EQ(self->size, st.st_size);
	EXPECT_EQ(0, st.st_blocks);
	EXPECT_EQ(PAGE, st.st_blksize);

	memset(self->map, 1, 3 * PAGE);
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_EQ(3 * PAGE / 512, st.st_blocks);
	ASSERT_EQ(0, fstatfs(self->fd, &sfs));
	EXPECT_EQ(COWBUF_FS_MAGIC, sfs.f_type);
}

TEST_F(file, lseek_sees_a_file_of_the_region_size)
{
	EXPECT_EQ((off_t)self->size, lseek(self->fd, 0, SEEK_END));
	EXPECT_EQ(5, lseek(self->fd, 5, SEEK_SET));
	EXPECT_EQ(7, lseek(self->fd, 2, SEEK_CUR));
	EXPECT_EQ(-1, lseek(self->fd, -1, SEEK_SET));
	EXPECT_EQ(EINVAL, errno);
	/* No read() or write(): the memory is reached by mmap() only. */
	EXPECT_EQ(-1, read(self->fd, self->map, 1));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(file, ftruncate_keeps_the_size_fixed)
{
	struct stat st;

	memset(self->map, 7, self->size);
	EXPECT_EQ(0, ftruncate(self->fd, self->size));
	EXPECT_EQ(-1, ftruncate(self->fd, self->size + PAGE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(self->fd, self->size - PAGE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(self->fd, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(self->fd, -1));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_EQ(self->size, st.st_size);
	EXPECT_EQ(NR_PAGES, committed(self->fd));
	EXPECT_EQ(7, self->map[self->size - 1]);
}

TEST_F(file, punch_hole_decommits_and_reads_zero)
{
	long frames;

	pattern_fill(self->map, self->size, 1);
	EXPECT_EQ(NR_PAGES, committed(self->fd));
	frames = cowbuf_counter("frames");

	ASSERT_EQ(0, falloc(self->fd, PUNCH, 8 * PAGE, 16 * PAGE));
	EXPECT_EQ(NR_PAGES - 16, committed(self->fd));
	EXPECT_EQ(frames - 16, cowbuf_counter("frames"));
	EXPECT_TRUE(all_zero(self->map + 8 * PAGE, 16 * PAGE));
	/* The rest keeps its bytes. */
	EXPECT_EQ(-1, pattern_check(self->map, 8 * PAGE, 1));
	EXPECT_EQ(-1, pattern_check_at(self->map + 24 * PAGE, self->size - 24 * PAGE,
				       1, 24 * PAGE));
	/* A punched page is committed again by the next write. */
	self->map[8 * PAGE] = 3;
	EXPECT_EQ(NR_PAGES - 15, committed(self->fd));

	/* Punching past the end is cut at the end; wholly past it is a no-op. */
	ASSERT_EQ(0, falloc(self->fd, PUNCH, self->size - PAGE, 8 * PAGE));
	EXPECT_EQ(NR_PAGES - 16, committed(self->fd));
	EXPECT_EQ(0, falloc(self->fd, PUNCH, self->size, PAGE));
	EXPECT_EQ(0, falloc(self->fd, PUNCH, 0, self->size));
	EXPECT_EQ(0, committed(self->fd));
	EXPECT_EQ(frames - NR_PAGES, cowbuf_counter("frames"));
}

TEST_F(file, fallocate_commits_without_mapping)
{
	struct stat st;

	ASSERT_EQ(0, falloc(self->fd, 0, 0, 4 * PAGE));
	EXPECT_EQ(4, committed(self->fd));
	ASSERT_EQ(0, falloc(self->fd, FALLOC_FL_KEEP_SIZE, 2 * PAGE, 4 * PAGE));
	EXPECT_EQ(6, committed(self->fd));
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_EQ(self->size, st.st_size);
	EXPECT_TRUE(all_zero(self->map, 8 * PAGE));
	/* Writing committed pages commits nothing more. */
	memset(self->map, 9, 6 * PAGE);
	EXPECT_EQ(6, committed(self->fd));
	/* Committing again is a no-op and keeps the bytes. */
	ASSERT_EQ(0, falloc(self->fd, 0, 0, 6 * PAGE));
	EXPECT_EQ(9, self->map[6 * PAGE - 1]);
	EXPECT_EQ(6, committed(self->fd));
}

TEST_F(file, fallocate_refuses_what_it_cannot_do)
{
	/* Past the end: the size is fixed. */
	EXPECT_EQ(-EPERM, falloc(self->fd, 0, self->size, PAGE));
	EXPECT_EQ(-EPERM, falloc(self->fd, 0, self->size - PAGE, 2 * PAGE));
	EXPECT_EQ(-EPERM, falloc(self->fd, FALLOC_FL_KEEP_SIZE, self->size, PAGE));
	/* Part of a page. */
	EXPECT_EQ(-EINVAL, falloc(self->fd, 0, 1, PAGE));
	EXPECT_EQ(-EINVAL, falloc(self->fd, 0, 0, PAGE + 1));
	EXPECT_EQ(-EINVAL, falloc(self->fd, PUNCH, PAGE / 2, PAGE));
	/* The VFS's own checks. */
	EXPECT_EQ(-EINVAL, falloc(self->fd, 0, 0, 0));
	EXPECT_EQ(-EINVAL, falloc(self->fd, 0, -PAGE, PAGE));
	EXPECT_EQ(-EOPNOTSUPP, falloc(self->fd, FALLOC_FL_PUNCH_HOLE, 0, PAGE));
	/* Modes a region has no use for. */
	EXPECT_EQ(-EOPNOTSUPP, falloc(self->fd, FALLOC_FL_ZERO_RANGE, 0, PAGE));
	EXPECT_EQ(-EOPNOTSUPP, falloc(self->fd, FALLOC_FL_COLLAPSE_RANGE, 0, PAGE));
	EXPECT_EQ(-EOPNOTSUPP, falloc(self->fd, FALLOC_FL_INSERT_RANGE, 0, PAGE));
	EXPECT_EQ(-EOPNOTSUPP, falloc(self->fd, FALLOC_FL_UNSHARE_RANGE, 0, PAGE));
	EXPECT_EQ(0, committed(self->fd));
}

TEST_F(file, fallocate_commit_respects_the_region_cap)
{
	long cap = cowbuf_param_get("max_region_pages");

	ASSERT_GT(cap, 0);
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", 8));
	memset(self->map, 1, 4 * PAGE);
	/* All or nothing: 4 + 8 > 8 commits nothing. */
	EXPECT_EQ(-ENOMEM, falloc(self->fd, 0, 8 * PAGE, 8 * PAGE));
	EXPECT_EQ(4, committed(self->fd));
	EXPECT_EQ(0, falloc(self->fd, 0, 8 * PAGE, 4 * PAGE));
	EXPECT_EQ(8, committed(self->fd));
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", cap));
}

TEST_F(file, open_through_proc_reaches_the_same_region)
{
	struct stat st1, st2;
	char *map2;
	int fd2;

	pattern_fill(self->map, self->size, 2);
	fd2 = reopen(self->fd, O_RDWR);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, fstat(self->fd, &st1));
	ASSERT_EQ(0, fstat(fd2, &st2));
	EXPECT_EQ(st1.st_ino, st2.st_ino);
	EXPECT_EQ(st1.st_dev, st2.st_dev);
	EXPECT_EQ(NR_PAGES, committed(fd2));

	ASSERT_EQ(0, cowbuf_map(fd2, self->size, 0, PROT_READ | PROT_WRITE,
				(void **)&map2));
	EXPECT_EQ(-1, pattern_check(map2, self->size, 2));
	/* A write through one is seen through the other: one region. */
	map2[5] = 0x55;
	EXPECT_EQ(0x55, self->map[5]);
	/* Every ioctl works on the new file, for its own mappings. */
	EXPECT_EQ(0, cowbuf_decommit(fd2, map2, PAGE));
	EXPECT_EQ(0, self->map[5]);
	EXPECT_EQ(0, cowbuf_commit(fd2, map2, 2 * PAGE));
	/* Any file of the region serves any mapping of it. */
	EXPECT_EQ(0, cowbuf_commit(fd2, self->map + PAGE, PAGE));

	/* The region outlives the first file while the second is open. */
	munmap(self->map, self->size);
	close(self->fd);
	self->fd = fd2;
	self->map = map2;
	EXPECT_EQ(1, cowbuf_counter("regions"));
	EXPECT_TRUE(all_zero(map2, PAGE));
	EXPECT_EQ(-1, pattern_check_at(map2 + PAGE, self->size - PAGE, 2, PAGE));
	EXPECT_EQ(NR_PAGES, committed(fd2));
}

TEST_F(file, a_read_only_open_can_only_read)
{
	struct cowbuf_range range = { 0 };
	void *ro, *rw = MAP_FAILED;
	int fd2, ch;

	memset(self->map, 0x42, self->size);
	fd2 = reopen(self->fd, O_RDONLY);
	ASSERT_GE(fd2, 0);
	ro = mmap(NULL, self->size, PROT_READ, MAP_SHARED, fd2, 0);
	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_EQ(0x42, ((char *)ro)[self->size - 1]);
	rw = mmap(NULL, self->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	EXPECT_EQ(MAP_FAILED, rw);
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(ro, self->size, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);

	/* Nothing that changes the region passes through it. */
	range.addr = (uintptr_t)ro;
	range.length = PAGE;
	EXPECT_EQ(-1, ioctl(fd2, COWBUF_IOC_DECOMMIT, &range));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, ioctl(fd2, COWBUF_IOC_COMMIT, &range));
	EXPECT_EQ(EBADF, errno);
	range.flags = COWBUF_MERGE_ENABLE;
	EXPECT_EQ(-1, ioctl(fd2, COWBUF_IOC_MERGE, &range));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-EBADF, falloc(fd2, PUNCH, 0, PAGE));
	EXPECT_EQ(-1, ftruncate(fd2, self->size));
	EXPECT_EQ(EINVAL, errno);
	/* Nor through its mapping, by the writable file's ioctls. */
	EXPECT_EQ(-EINVAL, cowbuf_decommit(self->fd, ro, PAGE));
	ch = cowbuf_channel_create(self->dev, COWBUF_FD_CLOEXEC);
	ASSERT_GE(ch, 0);
	EXPECT_EQ(-EINVAL, cowbuf_send(ch, ro, PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_send(ch, ro, PAGE, COWBUF_MODE_SHARE));
	close(ch);
	EXPECT_EQ(NR_PAGES, committed(self->fd));
	EXPECT_EQ(0x42, ((char *)ro)[0]);
	munmap(ro, self->size);
	close(fd2);
}

TEST_F(file, open_through_proc_refuses_truncation_and_private_maps)
{
	int fd2;

	memset(self->map, 1, PAGE);
	EXPECT_EQ(-EPERM, reopen(self->fd, O_RDWR | O_TRUNC));
	EXPECT_EQ(1, committed(self->fd));
	fd2 = reopen(self->fd, O_RDWR);
	ASSERT_GE(fd2, 0);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd2, 0));
	EXPECT_EQ(EINVAL, errno);
	close(fd2);
}

TEST(huge_region_files_commit_whole_frames_and_punch_pages)
{
	struct cowbuf_version v = { 0 };
	long frames_before = cowbuf_counter("frames");
	struct stat st;
	int dev, fd;
	char *map;

	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	ASSERT_EQ(0, cowbuf_version(dev, &v));
	if (!v.huge_frame_size)
		SKIP(return, "no huge frames in this kernel");
	fd = cowbuf_region_create(dev, 4 * HUGE, COWBUF_REGION_HUGE | COWBUF_FD_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(4 * HUGE, st.st_size);
	EXPECT_EQ(HUGE, st.st_blksize);

	EXPECT_EQ(-EINVAL, falloc(fd, 0, 0, PAGE));
	EXPECT_EQ(-EINVAL, falloc(fd, 0, PAGE, HUGE));
	EXPECT_EQ(-EINVAL, falloc(fd, PUNCH, 1, PAGE));
	EXPECT_EQ(-EINVAL, falloc(fd, PUNCH, 0, PAGE + 1));
	/* Pages of uncommitted frames read as zero already. */
	EXPECT_EQ(0, falloc(fd, PUNCH, HUGE, PAGE));
	EXPECT_EQ(0, falloc(fd, PUNCH, PAGE, HUGE));
	EXPECT_EQ(0, committed(fd));
	ASSERT_EQ(0, falloc(fd, 0, HUGE, 2 * HUGE));
	EXPECT_EQ(2 * HUGE / PAGE, committed(fd));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(2 * HUGE / 512, st.st_blocks);

	ASSERT_EQ(0, cowbuf_map(fd, 4 * HUGE, 0, PROT_READ | PROT_WRITE, (void **)&map));
	memset(map + HUGE, 5, 2 * HUGE);
	EXPECT_EQ(2 * HUGE / PAGE, committed(fd));
	ASSERT_EQ(0, falloc(fd, PUNCH, HUGE, HUGE));
	EXPECT_EQ(HUGE / PAGE, committed(fd));
	EXPECT_TRUE(all_zero(map + HUGE, HUGE));
	EXPECT_EQ(5, map[2 * HUGE]);
	/* Part of a frame: those pages read as zero, the frame stays. */
	ASSERT_EQ(0, falloc(fd, PUNCH, 2 * HUGE + PAGE, 2 * PAGE));
	EXPECT_EQ(HUGE / PAGE, committed(fd));
	EXPECT_EQ(5, map[2 * HUGE + PAGE - 1]);
	EXPECT_TRUE(all_zero(map + 2 * HUGE + PAGE, 2 * PAGE));
	EXPECT_EQ(5, map[2 * HUGE + 3 * PAGE]);
	munmap(map, 4 * HUGE);
	close(fd);
	close(dev);
	EXPECT_EQ(frames_before, cowbuf_counter("frames"));
}

TEST(the_region_lives_until_its_last_reopened_file_closes)
{
	long frames_before = cowbuf_counter("frames");
	int dev, fd, fd2, fd3;
	char *map;

	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	fd = cowbuf_region_create(dev, 4 * PAGE, COWBUF_FD_CLOEXEC);
	ASSERT_GE(fd, 0);
	fd2 = reopen(fd, O_RDWR);
	ASSERT_GE(fd2, 0);
	fd3 = reopen(fd2, O_RDONLY);
	ASSERT_GE(fd3, 0);
	close(fd);
	close(fd2);
	EXPECT_EQ(-EBADF, falloc(fd3, 0, 0, PAGE));
	map = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd3, 0);
	ASSERT_NE(MAP_FAILED, map);
	close(fd3);
	/* The mapping alone keeps it. */
	EXPECT_EQ(1, cowbuf_counter("regions"));
	EXPECT_EQ(0, map[0]);
	munmap(map, 4 * PAGE);
	EXPECT_EQ(0, cowbuf_counter("regions"));
	EXPECT_EQ(frames_before, cowbuf_counter("frames"));
	close(dev);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(false);
	return test_harness_run(argc, argv);
}
