// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: huge regions - 2 MiB frames mapped by one PMD. Every
 * test that maps a frame checks the PMD itself (FilePmdMapped in
 * /proc/self/smaps), not only the bytes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define HUGE		(2UL << 20)
#define NR_FRAMES	8

/*
 * FilePmdMapped of the mappings that overlap [@addr, @addr + @len), in
 * bytes (mprotect() may have split them), or -1.
 */
static long pmd_mapped_range(void *addr, size_t len)
{
	unsigned long start, end, off, a = (unsigned long)addr;
	long kb, total = -1;
	char line[256], perms[8];
	bool in = false;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* A mapping's first line: "start-end perms offset ...". */
		if (sscanf(line, "%lx-%lx %7s %lx", &start, &end, perms, &off) == 4) {
			in = start < a + len && end > a;
			continue;
		}
		if (in && sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1)
			total = (total < 0 ? 0 : total) + kb * 1024;
	}
	fclose(f);
	return total;
}

/* FilePmdMapped of the mapping holding @addr. */
static long pmd_mapped(void *addr)
{
	return pmd_mapped_range(addr, 1);
}

static int huge_region(int dev, size_t size, uint32_t flags)
{
	return cowbuf_region_create(dev, size, flags | COWBUF_REGION_HUGE |
				    COWBUF_FD_CLOEXEC);
}

FIXTURE(huge) {
	int dev;
	int fd;
	size_t size;
	char *map;
	long frames_before;
};

FIXTURE_SETUP(huge)
{
	self->frames_before = cowbuf_counter("frames");
	self->size = NR_FRAMES * HUGE;
	ASSERT_EQ(0, open_mapped_region(&self->dev, &self->fd, &self->map, self->size,
					COWBUF_REGION_HUGE | COWBUF_FD_CLOEXEC));
}

FIXTURE_TEARDOWN(huge)
{
	close_mapped_region(self->dev, self->fd, self->map, self->size);
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
}

TEST(version_and_info_report_the_frame_size)
{
	struct cowbuf_region_info info = { 0 };
	struct cowbuf_version v = { 0 };
	char buf[512];
	int dev = cowbuf_open(), fd;

	ASSERT_GE(dev, 0);
	ASSERT_EQ(0, cowbuf_version(dev, &v));
	/* Huge frames came with version 2. */
	EXPECT_LE(2, v.api_version);
	EXPECT_EQ(HUGE, v.huge_frame_size);
	/* The field is output only: nonzero input is refused. */
	v.huge_frame_size = 1;
	EXPECT_EQ(-1, ioctl(dev, COWBUF_IOC_VERSION, &v));
	EXPECT_EQ(EINVAL, errno);

	fd = huge_region(dev, 2 * HUGE, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_region_info(fd, &info));
	EXPECT_EQ(2 * HUGE, info.size);
	EXPECT_EQ(HUGE, info.frame_size);
	EXPECT_EQ(0, info.committed_pages);
	info.frame_size = 4096;
	EXPECT_EQ(-1, ioctl(fd, COWBUF_IOC_REGION_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_GT(read_fdinfo(fd, buf, sizeof(buf)), 0);
	EXPECT_NE(NULL, strstr(buf, "cowbuf-frame-size:\t2097152\n"));
	close(fd);

	/* A page-granular region reports the page size. */
	fd = cowbuf_region_create(dev, PAGE, 0);
	ASSERT_GE(fd, 0);
	memset(&info, 0, sizeof(info));
	ASSERT_EQ(0, cowbuf_region_info(fd, &info));
	EXPECT_EQ(PAGE, info.frame_size);
	close(fd);
	close(dev);
}

TEST(create_needs_whole_frames)
{
	int dev = cowbuf_open();

	ASSERT_GE(dev, 0);
	EXPECT_EQ(-EINVAL, huge_region(dev, PAGE, 0));
	EXPECT_EQ(-EINVAL, huge_region(dev, HUGE + PAGE, 0));
	EXPECT_EQ(-EINVAL, huge_region(dev, HUGE / 2, 0));
	EXPECT_EQ(-EINVAL, huge_region(dev, 0, 0));
	EXPECT_EQ(-EINVAL, huge_region(dev, COWBUF_REGION_MAX_SIZE + HUGE, 0));
	EXPECT_EQ(-EINVAL, huge_region(dev, HUGE, COWBUF_FD_NONBLOCK));
	close(dev);
}

TEST_F(huge, mmap_needs_whole_aligned_frames)
{
	void *p;

	/* mmap(NULL) is 2 MiB aligned. */
	EXPECT_EQ(0, (unsigned long)self->map % HUGE);
	EXPECT_EQ(-EINVAL, cowbuf_map(self->fd, HUGE, PAGE, PROT_READ, &p));
	EXPECT_EQ(-EINVAL, cowbuf_map(self->fd, PAGE, 0, PROT_READ, &p));
	EXPECT_EQ(-EINVAL, cowbuf_map(self->fd, HUGE + PAGE, 0, PROT_READ, &p));
	/* MAP_FIXED at an address that is not 2 MiB aligned. */
	p = mmap(self->map + self->size + 4 * HUGE + PAGE, HUGE, PROT_READ,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* A second, aligned mapping at an offset works. */
	ASSERT_EQ(0, cowbuf_map(self->fd, 2 * HUGE, 2 * HUGE, PROT_READ, &p));
	EXPECT_EQ(0, (unsigned long)p % HUGE);
	munmap(p, 2 * HUGE);
}

TEST_F(huge, read_of_uncommitted_memory_maps_the_zero_frame_by_pmd)
{
	EXPECT_EQ(0, pmd_mapped(self->map));
	EXPECT_TRUE(all_zero(self->map, 2 * HUGE));
	EXPECT_EQ(2 * HUGE, pmd_mapped(self->map));
	/* Nothing was allocated for it. */
	EXPECT_EQ(0, committed(self->fd));
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
}

TEST_F(huge, first_write_commits_a_whole_frame_mapped_by_pmd)
{
	self->map[HUGE + 5] = 7;
	EXPECT_EQ(512, committed(self->fd));
	EXPECT_EQ(self->frames_before + 1, cowbuf_counter("frames"));
	EXPECT_EQ(HUGE, pmd_mapped(self->map));
	EXPECT_EQ(7, self->map[HUGE + 5]);
	EXPECT_TRUE(all_zero(self->map + HUGE + 8, HUGE - 8));

	/* A write after a read of the zero frame commits too, still by PMD. */
	EXPECT_EQ(0, self->map[3 * HUGE]);
	self->map[3 * HUGE + HUGE - 1] = 9;
	EXPECT_EQ(1024, committed(self->fd));
	EXPECT_EQ(9, self->map[4 * HUGE - 1]);
	EXPECT_EQ(2 * HUGE, pmd_mapped(self->map));
}

TEST_F(huge, commit_maps_by_pmd_and_decommit_frees)
{
	char *p = self->map;

	ASSERT_EQ(0, cowbuf_commit(self->fd, p, 4 * HUGE));
	EXPECT_EQ(2048, committed(self->fd));
	EXPECT_EQ(4 * HUGE, pmd_mapped(p));
	pattern_fill(p, 4 * HUGE, 11);
	EXPECT_EQ(-1, pattern_check(p, 4 * HUGE, 11));
	/* Committing again keeps the bytes. */
	ASSERT_EQ(0, cowbuf_commit(self->fd, p, 4 * HUGE));
	EXPECT_EQ(-1, pattern_check(p, 4 * HUGE, 11));

	/* Not whole frames: EINVAL, nothing changes. */
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, p + PAGE, HUGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, p, HUGE + PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, p, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_decommit(self->fd, p + HUGE / 2, HUGE));
	EXPECT_EQ(2048, committed(self->fd));

	ASSERT_EQ(0, cowbuf_decommit(self->fd, p + HUGE, 2 * HUGE));
	EXPECT_EQ(1024, committed(self->fd));
	EXPECT_TRUE(all_zero(p + HUGE, 2 * HUGE));
	EXPECT_EQ(-1, pattern_check(p, HUGE, 11));
	EXPECT_EQ(-1, pattern_check_at(p + 3 * HUGE, HUGE, 11, 3 * HUGE));
	EXPECT_EQ(self->frames_before + 2, cowbuf_counter("frames"));
}

/*
 * COMMIT through a PROT_READ mapping of a region opened read-write maps the
 * region's frames, read-only: after mprotect(PROT_WRITE) the writes go to
 * the region, where every other mapping sees them (never to a private
 * anonymous copy, which a write fault on a read-only mapping would make).
 */
TEST_F(huge, commit_through_a_read_only_mapping_maps_the_regions_frames)
{
	char *ro, *other;

	ro = mmap(NULL, 2 * HUGE, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_EQ(0, (uintptr_t)ro & (HUGE - 1));
	ASSERT_EQ(0, cowbuf_commit(self->fd, ro, 2 * HUGE));
	EXPECT_EQ(1024, committed(self->fd));
	EXPECT_TRUE(all_zero(ro, 2 * HUGE));
	ASSERT_EQ(0, mprotect(ro, 2 * HUGE, PROT_READ | PROT_WRITE));
	pattern_fill(ro, 2 * HUGE, 12);
	/* The fixture's mapping, and a new one, see the same bytes. */
	EXPECT_EQ(-1, pattern_check(self->map, 2 * HUGE, 12));
	ASSERT_EQ(0, cowbuf_map(self->fd, 2 * HUGE, 0, PROT_READ, (void **)&other));
	EXPECT_EQ(-1, pattern_check(other, 2 * HUGE, 12));
	EXPECT_EQ(1024, committed(self->fd));
	munmap(other, 2 * HUGE);
	munmap(ro, 2 * HUGE);
}

struct ro_reader {
	volatile char *p;
	atomic_int stop;
};

/*
 * Read the last frame's first page: COMMIT faults the frames in from the
 * first, so a reader woken when COMMIT lets go of the region maps the last
 * before COMMIT's own fault reaches it.
 */
static void *read_last_frame(void *arg)
{
	struct ro_reader *r = arg;

	while (!atomic_load(&r->stop))
		(void)r->p[(NR_FRAMES - 1) * HUGE];
	return NULL;
}

/* Whether the page at @addr is mapped and anonymous (/proc/self/pagemap). */
static int page_is_anonymous(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (uintptr_t)addr / PAGE * sizeof(entry);

	if (fd < 0)
		return -1;
	if (pread(fd, &entry, sizeof(entry), off) != sizeof(entry))
		entry = 0;
	close(fd);
	/* Bit 63: present; bit 61: a file page or shared anonymous. */
	return (entry >> 63 & 1) && !(entry >> 61 & 1);
}

/*
 * The same with a reader mapping the new frames while COMMIT faults them in,
 * through PTEs (a mapping mremap()ed off the 2 MiB grid): a write fault on
 * the reader's read-only entry of a PROT_READ mapping would give the
 * mapping a private anonymous copy; COMMIT faults such mappings in for
 * reading, so no page of the mapping is ever anonymous.
 */
TEST_F(huge, commit_racing_readers_leaves_no_anonymous_page)
{
	const size_t len = NR_FRAMES * HUGE;
	struct ro_reader r = { 0 };
	int i, j, anon = 0;
	pthread_t thread;
	char *area, *ro;

	area = mmap(NULL, len + HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	ro = mmap(NULL, len, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ro = mremap(ro, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, area + PAGE);
	ASSERT_EQ(area + PAGE, ro);
	r.p = ro;
	ASSERT_EQ(0, pthread_create(&thread, NULL, read_last_frame, &r));
	for (i = 0; i < 200 && !anon; i++) {
		ASSERT_EQ(0, cowbuf_decommit(self->fd, ro, len));
		ASSERT_EQ(0, cowbuf_commit(self->fd, ro, len));
		for (j = 0; j < NR_FRAMES; j++)
			anon |= page_is_anonymous(ro + j * HUGE);
	}
	atomic_store(&r.stop, 1);
	pthread_join(thread, NULL);
	EXPECT_EQ(0, anon);
	EXPECT_TRUE(all_zero(ro, len));
	/* Written through another mapping, the bytes show through this one. */
	memset(self->map + (NR_FRAMES - 1) * HUGE, 'w', PAGE);
	EXPECT_EQ('w', ro[(NR_FRAMES - 1) * HUGE]);
	munmap(ro, len);
	munmap(area, len + HUGE);
}

TEST_F(huge, splits_only_at_frame_boundaries)
{
	char *p = self->map;

	ASSERT_EQ(0, cowbuf_commit(self->fd, p, 4 * HUGE));
	pattern_fill(p, 4 * HUGE, 3);
	/* munmap() and mprotect() of part of a frame: EINVAL, as hugetlbfs. */
	EXPECT_EQ(-1, munmap(p + HUGE + PAGE, PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, mprotect(p + PAGE, HUGE, PROT_READ));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, pattern_check(p, 4 * HUGE, 3));

	/* At a boundary they work. */
	EXPECT_EQ(0, mprotect(p + HUGE, HUGE, PROT_READ));
	EXPECT_EQ(-1, pattern_check(p, 4 * HUGE, 3));
	EXPECT_EQ(0, mprotect(p + HUGE, HUGE, PROT_READ | PROT_WRITE));
	EXPECT_EQ(0, munmap(p + 3 * HUGE, HUGE));
	EXPECT_EQ(2048, committed(self->fd));

	/* MADV_DONTNEED of part of a frame zaps the PMD; the bytes stay. */
	EXPECT_EQ(0, madvise(p + PAGE, PAGE, MADV_DONTNEED));
	EXPECT_EQ(-1, pattern_check(p, 3 * HUGE, 3));
	EXPECT_EQ(3 * HUGE, pmd_mapped_range(p, 3 * HUGE));
	EXPECT_EQ(2048, committed(self->fd));
	/* Remapped for the fixture's teardown. */
	EXPECT_EQ(p + 3 * HUGE, mmap(p + 3 * HUGE, HUGE, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_FIXED, self->fd, 3 * HUGE));
}

/*
 * mlock() applies to huge mappings (they are not VM_MIXEDMAP): it faults
 * every frame in, zero frame included, and unmapping undoes it, so locked
 * frames still move. "Bad page state" would show on the console.
 */
TEST_F(huge, mlock_faults_in_and_frames_still_move)
{
	int ch = cowbuf_channel_create(self->dev, 0);
	char *p = self->map;

	ASSERT_GE(ch, 0);
	ASSERT_EQ(0, cowbuf_commit(self->fd, p, 2 * HUGE));
	pattern_fill(p, 2 * HUGE, 81);
	ASSERT_EQ(0, mlock(p, 4 * HUGE));
	EXPECT_EQ(4 * HUGE, pmd_mapped(p));
	/* The two uncommitted frames are the zero frame: nothing allocated. */
	EXPECT_EQ(1024, committed(self->fd));
	EXPECT_TRUE(all_zero(p + 2 * HUGE, 2 * HUGE));
	p[3 * HUGE] = 1;
	EXPECT_EQ(1536, committed(self->fd));
	/* A locked frame moves: SEND unmaps it, which unlocks it. */
	ASSERT_EQ(0, cowbuf_send(ch, p, HUGE, COWBUF_MODE_MOVE));
	EXPECT_TRUE(all_zero(p, HUGE));
	EXPECT_EQ(0, munlock(p, 4 * HUGE));
	EXPECT_EQ(0, cowbuf_recv(ch, p + 4 * HUGE, HUGE, NULL, NULL));
	EXPECT_EQ(-1, pattern_check(p + 4 * HUGE, HUGE, 81));
	EXPECT_EQ(-1, pattern_check_at(p + HUGE, HUGE, 81, HUGE));
	close(ch);
}

static void child_checks_and_writes(void *arg)
{
	char *p = arg;

	if (pattern_check(p, 2 * HUGE, 5) != -1)
		_exit(1);
	p[HUGE] = 42;
	if (pmd_mapped(p) != 2 * HUGE)
		_exit(2);
	_exit(0);
}

TEST_F(huge, fork_shares_the_mapping)
{
	int status;

	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 2 * HUGE));
	pattern_fill(self->map, 2 * HUGE, 5);
	status = run_in_child(child_checks_and_writes, self->map);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(42, self->map[HUGE]);
	EXPECT_EQ(1024, committed(self->fd));
}

/* Receive one message at @p in a child with its own huge region; check it. */
static int child_receives(int dev, int ch, uint64_t seed, size_t len, bool write)
{
	uint64_t got = 0;
	uint32_t mode;
	int fd, status;
	char *p;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		fd = huge_region(dev, len, 0);
		if (fd < 0 || cowbuf_map(fd, len, 0, PROT_READ | PROT_WRITE, (void **)&p))
			_exit(10);
		if (cowbuf_recv(ch, p, len, &got, &mode) || got != len)
			_exit(11);
		/* RECV mapped every frame, by PMD, before the first access. */
		if (pmd_mapped(p) != (long)len)
			_exit(12);
		if (pattern_check(p, len, seed) != -1)
			_exit(13);
		if (committed(fd) != (long)(len / PAGE))
			_exit(14);
		if (write) {
			pattern_fill(p, len, seed + 1);
			if (pattern_check(p, len, seed + 1) != -1)
				_exit(15);
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST_F(huge, move_hands_whole_frames_to_another_process)
{
	int ch = cowbuf_channel_create(self->dev, 0);
	long frames;

	ASSERT_GE(ch, 0);
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 4 * HUGE));
	pattern_fill(self->map, 4 * HUGE, 21);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, cowbuf_send(ch, self->map, 4 * HUGE, COWBUF_MODE_MOVE));
	/* The sender's range is empty and reads as zero. */
	EXPECT_EQ(0, committed(self->fd));
	EXPECT_TRUE(all_zero(self->map, 4 * HUGE));
	/* No frame was copied or allocated on the way. */
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	EXPECT_EQ(0, child_receives(self->dev, ch, 21, 4 * HUGE, true));
	close(ch);
}

TEST_F(huge, share_is_copy_on_write_both_ways)
{
	int ch = cowbuf_channel_create(self->dev, 0);
	struct cowbuf_merge_info info = { 0 };
	long frames;

	ASSERT_GE(ch, 0);
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 2 * HUGE));
	pattern_fill(self->map, 2 * HUGE, 31);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, cowbuf_send(ch, self->map, 2 * HUGE, COWBUF_MODE_SHARE));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	/* The receiver sees the bytes, writes over them; ours stay. */
	EXPECT_EQ(0, child_receives(self->dev, ch, 31, 2 * HUGE, true));
	EXPECT_EQ(-1, pattern_check(self->map, 2 * HUGE, 31));

	/* Shared again; now the sender writes, and the receiver's stay. */
	ASSERT_EQ(0, cowbuf_send(ch, self->map, 2 * HUGE, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_merge_info(self->fd, &info));
	EXPECT_EQ(1024, info.shared_pages);
	self->map[0] = 1;
	self->map[HUGE] = 1;
	ASSERT_EQ(0, cowbuf_merge_info(self->fd, &info));
	EXPECT_EQ(0, info.shared_pages);
	EXPECT_EQ(2, info.cow_breaks);
	/* The private copies are whole frames, mapped by PMD again. */
	EXPECT_EQ(2 * HUGE, pmd_mapped(self->map));
	EXPECT_EQ(-1, pattern_check_at(self->map + 8, HUGE - 8, 31, 8));
	EXPECT_EQ(0, child_receives(self->dev, ch, 31, 2 * HUGE, false));
	close(ch);
}

/*
 * fallocate(PUNCH_HOLE) of pages of a frame, as QEMU's balloon discards
 * guest pages: those pages read as zero and the rest keep their bytes; the
 * frame stays committed and mapped by PMD; whole frames of the range are
 * freed.
 */
TEST_F(huge, punching_part_of_a_frame_zeroes_those_pages)
{
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	long frames;

	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 3 * HUGE));
	pattern_fill(self->map, 3 * HUGE, 41);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, fallocate(self->fd, punch, 3 * PAGE, 2 * PAGE));
	EXPECT_TRUE(all_zero(self->map + 3 * PAGE, 2 * PAGE));
	EXPECT_EQ(-1, pattern_check(self->map, 3 * PAGE, 41));
	EXPECT_EQ(-1, pattern_check_at(self->map + 5 * PAGE, 3 * HUGE - 5 * PAGE, 41,
				       5 * PAGE));
	EXPECT_EQ(3 * HUGE / PAGE, committed(self->fd));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	EXPECT_EQ(3 * HUGE, pmd_mapped(self->map));

	/* The end of frame 0, all of frame 1, the start of frame 2. */
	ASSERT_EQ(0, fallocate(self->fd, punch, HUGE - PAGE, HUGE + 2 * PAGE));
	EXPECT_TRUE(all_zero(self->map + HUGE - PAGE, HUGE + 2 * PAGE));
	EXPECT_EQ(-1, pattern_check_at(self->map + 5 * PAGE, HUGE - 6 * PAGE, 41,
				       5 * PAGE));
	EXPECT_EQ(-1, pattern_check_at(self->map + 2 * HUGE + PAGE, HUGE - PAGE, 41,
				       2 * HUGE + PAGE));
	EXPECT_EQ(2 * HUGE / PAGE, committed(self->fd));
	EXPECT_EQ(frames - 1, cowbuf_counter("frames"));
	/* Written again, a punched page holds what was written. */
	self->map[3 * PAGE] = 9;
	EXPECT_EQ(9, self->map[3 * PAGE]);
}

/*
 * A frame shared with a message is copied before its pages are zeroed: the
 * receiver keeps the bytes that were sent.
 */
TEST_F(huge, punching_part_of_a_shared_frame_copies_it)
{
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int ch = cowbuf_channel_create(self->dev, 0);
	int other = huge_region(self->dev, HUGE, 0);
	uint64_t got = 0;
	uint32_t mode;
	long frames;
	char *p;

	ASSERT_GE(ch, 0);
	ASSERT_GE(other, 0);
	ASSERT_EQ(0, cowbuf_map(other, HUGE, 0, PROT_READ | PROT_WRITE, (void **)&p));
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, HUGE));
	pattern_fill(self->map, HUGE, 43);
	ASSERT_EQ(0, cowbuf_send(ch, self->map, HUGE, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_recv(ch, p, HUGE, &got, &mode));
	ASSERT_EQ(HUGE, got);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, fallocate(self->fd, punch, PAGE, PAGE));
	EXPECT_EQ(frames + 1, cowbuf_counter("frames"));
	EXPECT_TRUE(all_zero(self->map + PAGE, PAGE));
	EXPECT_EQ(-1, pattern_check(self->map, PAGE, 43));
	EXPECT_EQ(-1, pattern_check(p, HUGE, 43));
	munmap(p, HUGE);
	close(other);
	close(ch);
}

TEST_F(huge, messages_keep_to_their_frame_size)
{
	int ch = cowbuf_channel_create(self->dev, COWBUF_FD_NONBLOCK);
	struct cowbuf_channel_info ci = { 0 };
	int small = cowbuf_region_create(self->dev, 2 * HUGE, 0);
	uint64_t got = 0;
	char *s;

	ASSERT_GE(ch, 0);
	ASSERT_GE(small, 0);
	ASSERT_EQ(0, cowbuf_map(small, 2 * HUGE, 0, PROT_READ | PROT_WRITE, (void **)&s));
	pattern_fill(self->map, HUGE, 41);
	ASSERT_EQ(0, cowbuf_send(ch, self->map, HUGE, COWBUF_MODE_MOVE));
	/* Huge into a page-granular region: EINVAL, and it stays queued. */
	EXPECT_EQ(-EINVAL, cowbuf_recv(ch, s, 2 * HUGE, &got, NULL));
	/* Into part of a frame: EINVAL. */
	EXPECT_EQ(-EINVAL, cowbuf_recv(ch, self->map + PAGE, HUGE, &got, NULL));
	ASSERT_EQ(0, cowbuf_channel_info(ch, &ci));
	EXPECT_EQ(1, ci.queued_messages);
	ASSERT_EQ(0, cowbuf_recv(ch, self->map + 2 * HUGE, HUGE, &got, NULL));
	EXPECT_EQ(HUGE, got);
	EXPECT_EQ(-1, pattern_check(self->map + 2 * HUGE, HUGE, 41));

	/* Page-granular into huge: EINVAL too. */
	pattern_fill(s, PAGE, 43);
	ASSERT_EQ(0, cowbuf_send(ch, s, HUGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_recv(ch, self->map, HUGE, &got, NULL));
	ASSERT_EQ(0, cowbuf_recv(ch, s + HUGE, HUGE, &got, NULL));
	EXPECT_EQ(-1, pattern_check(s + HUGE, PAGE, 43));

	/* A receiver with huge regions only gets past one with DISCARD. */
	ASSERT_EQ(0, cowbuf_send(ch, s + HUGE, PAGE, COWBUF_MODE_SHARE));
	EXPECT_EQ(-EINVAL, cowbuf_recv(ch, self->map, HUGE, &got, NULL));
	got = 0;
	ASSERT_EQ(0, cowbuf_discard(ch, &got, NULL));
	EXPECT_EQ(PAGE, got);
	ASSERT_EQ(0, cowbuf_channel_info(ch, &ci));
	EXPECT_EQ(0, ci.queued_messages);
	EXPECT_EQ(-1, pattern_check(s + HUGE, PAGE, 43));

	/* SEND of part of a frame: EINVAL. */
	EXPECT_EQ(-EINVAL, cowbuf_send(ch, self->map, PAGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EINVAL, cowbuf_send(ch, self->map + PAGE, HUGE, COWBUF_MODE_SHARE));
	munmap(s, 2 * HUGE);
	close(small);
	close(ch);
}

TEST_F(huge, a_pin_on_any_subpage_makes_send_busy)
{
	int ch = cowbuf_channel_create(self->dev, 0);
	struct iovec iov;
	int pipefd[2];
	char buf[PAGE];

	ASSERT_GE(ch, 0);
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 2 * HUGE));
	pattern_fill(self->map, 2 * HUGE, 51);
	/* vmsplice() leaves the pipe a reference to the 300th subpage. */
	iov.iov_base = self->map + HUGE + 300 * PAGE;
	iov.iov_len = PAGE;
	ASSERT_EQ(PAGE, vmsplice(pipefd[1], &iov, 1, 0));
	EXPECT_EQ(-EBUSY, cowbuf_send(ch, self->map, 2 * HUGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(-EBUSY, cowbuf_send(ch, self->map + HUGE, HUGE, COWBUF_MODE_SHARE));
	/* The other frame is not pinned. */
	EXPECT_EQ(0, cowbuf_send(ch, self->map, HUGE, COWBUF_MODE_SHARE));
	EXPECT_EQ(-1, pattern_check(self->map, 2 * HUGE, 51));
	ASSERT_EQ(PAGE, read(pipefd[0], buf, PAGE));
	EXPECT_EQ(-1, pattern_check_at(buf, PAGE, 51, HUGE + 300 * PAGE));
	/* Drained: the frame can go. */
	EXPECT_EQ(0, cowbuf_send(ch, self->map + HUGE, HUGE, COWBUF_MODE_MOVE));
	close(pipefd[0]);
	close(pipefd[1]);
	close(ch);
}

TEST_F(huge, process_vm_access_pins_huge_frames_for_a_moment)
{
	int ch = cowbuf_channel_create(self->dev, 0);
	struct iovec local, remote;
	char *buf = malloc(HUGE);

	ASSERT_GE(ch, 0);
	ASSERT_NE(NULL, buf);
	/* GUP for write into an uncommitted frame commits it... */
	pattern_fill(buf, HUGE, 61);
	local.iov_base = buf;
	local.iov_len = HUGE;
	remote.iov_base = self->map + HUGE;
	remote.iov_len = HUGE;
	ASSERT_EQ(HUGE, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(512, committed(self->fd));
	EXPECT_EQ(-1, pattern_check(self->map + HUGE, HUGE, 61));
	/* ...and GUP reads it back out of the PMD. */
	memset(buf, 0, HUGE);
	EXPECT_EQ(HUGE, pmd_mapped(self->map));
	ASSERT_EQ(HUGE, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(-1, pattern_check(buf, HUGE, 61));
	free(buf);
	/* Those pins ended with the calls: the frame moves. */
	EXPECT_EQ(0, cowbuf_send(ch, self->map + HUGE, HUGE, COWBUF_MODE_MOVE));
	EXPECT_EQ(0, committed(self->fd));
	close(ch);
}

static void write_frame_3(void *p)
{
	((volatile char *)p)[3 * HUGE] = 1;
}

TEST_F(huge, caps_count_whole_frames)
{
	long old = cowbuf_param_get("max_region_pages");
	int status;

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_region_pages");
	ASSERT_GT(old, 0);
	/* Two frames and a half: the third frame does not fit. */
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", 1280));
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 2 * HUGE));
	EXPECT_EQ(-ENOMEM, cowbuf_commit(self->fd, self->map, 3 * HUGE));
	EXPECT_EQ(1024, committed(self->fd));
	status = run_in_child(write_frame_3, self->map);
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	EXPECT_EQ(1024, committed(self->fd));
	/* Reading stays possible: the zero frame costs nothing. */
	EXPECT_EQ(0, self->map[5 * HUGE]);
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", old));
	self->map[3 * HUGE] = 1;
	EXPECT_EQ(1536, committed(self->fd));
}

struct cgroup_case {
	int fd;
	char *map;
	size_t size;
};

/*
 * In a cgroup limited to 8 MiB: a frame is charged all its 2 MiB, committing
 * 16 MiB fails with ENOMEM and writing frame after frame ends in SIGBUS.
 */
static void huge_over_cgroup_limit(void *arg)
{
	struct cgroup_case *c = arg;
	long before, after;
	size_t i;

	if (enter_limited_cgroup("cowbuf-huge", "8M"))
		_exit(10);
	before = sysfs_read_long("/sys/fs/cgroup/cowbuf-huge", "memory.current");
	if (cowbuf_commit(c->fd, c->map, HUGE))
		_exit(11);
	after = sysfs_read_long("/sys/fs/cgroup/cowbuf-huge", "memory.current");
	if (before < 0 || after - before < (long)HUGE)
		_exit(12);
	if (cowbuf_commit(c->fd, c->map, c->size) != -ENOMEM || committed(c->fd) != 512)
		_exit(13);
	for (i = HUGE; i < c->size; i += HUGE)
		c->map[i] = 1;
	_exit(14);
}

TEST(memory_cgroup_is_charged_whole_frames)
{
	struct cgroup_case c = { .size = 8 * HUGE };
	int dev, status;

	if (!cowbuf_is_root() || access("/sys/fs/cgroup/cgroup.subtree_control", W_OK))
		SKIP(return, "needs root and cgroup v2 at /sys/fs/cgroup");
	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	c.fd = huge_region(dev, c.size, 0);
	ASSERT_GE(c.fd, 0);
	ASSERT_EQ(0, cowbuf_map(c.fd, c.size, 0, PROT_READ | PROT_WRITE, (void **)&c.map));
	status = run_in_child(huge_over_cgroup_limit, &c);
	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("child exited %d", WEXITSTATUS(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	/* Whole frames only, and fewer than the limit allows. */
	EXPECT_EQ(0, committed(c.fd) % 512);
	EXPECT_GE(committed(c.fd), 1024);
	EXPECT_LT(committed(c.fd), 4 * 512);
	munmap(c.map, c.size);
	close(c.fd);
	close(dev);
	rmdir("/sys/fs/cgroup/cowbuf-huge");
}

TEST(zero_frames_of_mergeable_huge_regions_are_released)
{
	long run = cowbuf_counter("run"), pts = cowbuf_counter("pages_to_scan");
	long sleep_ms = cowbuf_counter("sleep_millisecs");
	struct cowbuf_merge_info info = { 0 };
	int dev = cowbuf_open(), fd, i;
	long target;
	char *p;

	ASSERT_GE(dev, 0);
	fd = huge_region(dev, 4 * HUGE, COWBUF_REGION_MERGEABLE);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, 4 * HUGE, 0, PROT_READ | PROT_WRITE, (void **)&p));
	ASSERT_EQ(0, cowbuf_commit(fd, p, 4 * HUGE));
	pattern_fill(p, 2 * HUGE, 71);	/* frame 0: data */
	/* Frame 1: data, then punched in two pieces, as a balloon would. */
	ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       HUGE, HUGE / 2));
	ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       HUGE + HUGE / 2, HUGE / 2));
	EXPECT_EQ(4 * HUGE / PAGE, committed(fd));
	p[2 * HUGE + 77] = 1;		/* frame 2: written, then zero again */
	p[2 * HUGE + 77] = 0;
	p[3 * HUGE + 5] = 1;		/* frame 3: one byte */
	ASSERT_EQ(0, sysfs_write_long(COWBUF_SYSFS_DIR, "pages_to_scan", 100000));
	ASSERT_EQ(0, sysfs_write_long(COWBUF_SYSFS_DIR, "sleep_millisecs", 0));
	target = cowbuf_counter("full_scans") + 2;
	ASSERT_EQ(0, sysfs_write_long(COWBUF_SYSFS_DIR, "run", 1));
	for (i = 0; i < 2000 && cowbuf_counter("full_scans") < target; i++)
		usleep(10000);
	EXPECT_GE(cowbuf_counter("full_scans"), target);
	sysfs_write_long(COWBUF_SYSFS_DIR, "run", 0);
	ASSERT_EQ(0, cowbuf_merge_info(fd, &info));
	EXPECT_EQ(1024, info.zero_pages);
	EXPECT_EQ(1024, committed(fd));
	EXPECT_EQ(-1, pattern_check(p, HUGE, 71));
	EXPECT_TRUE(all_zero(p + HUGE, 2 * HUGE));
	EXPECT_EQ(1, p[3 * HUGE + 5]);
	/* Released frames read as the zero frame, by PMD. */
	EXPECT_EQ(4 * HUGE, pmd_mapped(p));
	munmap(p, 4 * HUGE);
	close(fd);
	close(dev);
	sysfs_write_long(COWBUF_SYSFS_DIR, "pages_to_scan", pts);
	sysfs_write_long(COWBUF_SYSFS_DIR, "sleep_millisecs", sleep_ms);
	sysfs_write_long(COWBUF_SYSFS_DIR, "run", run);
}

/*
 * Fragmentation: fill guest memory with page-granular frames (never
 * movable), then free all of them but one in every physical 2 MiB block, so
 * that no free 2 MiB block can form there, and ask for huge frames. They
 * must fail cleanly (ENOMEM, SIGBUS) long before the free memory is used up.
 */
static long meminfo_kb(const char *key)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) &&
		    sscanf(line + strlen(key), ": %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Decommit every page of [@s, @s + @len) but the first one met of each
 * physical 2 MiB block (/proc/self/pagemap), in runs. Return: 0 or -errno.
 */
static int keep_one_frame_per_block(int region, char *s, size_t len)
{
	size_t nr = len / PAGE, i, run = 0, nblocks = 1UL << 24;
	uint8_t *kept = calloc(nblocks / 8, 1);
	uint64_t ent;
	int pm, ret = 0;

	pm = open("/proc/self/pagemap", O_RDONLY);
	if (!kept || pm < 0) {
		free(kept);
		return -ENOMEM;
	}
	for (i = 0; i <= nr && !ret; i++) {
		int keep = 0;

		if (i < nr) {
			uint64_t block;

			if (pread(pm, &ent, 8, ((unsigned long)s / PAGE + i) * 8) != 8) {
				ret = -EIO;
				break;
			}
			block = (ent & ((1ULL << 55) - 1)) >> 9;
			if ((ent >> 63) && block < nblocks &&
			    !(kept[block / 8] & (1 << (block % 8)))) {
				kept[block / 8] |= 1 << (block % 8);
				keep = 1;
			}
		}
		if ((keep || i == nr) && run) {
			ret = cowbuf_decommit(region, s + (i - run) * PAGE, run * PAGE);
			run = 0;
		} else if (!keep) {
			run++;
		}
	}
	close(pm);
	free(kept);
	return ret;
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

FIXTURE(frag) {
	long old_cap;
};

FIXTURE_SETUP(frag)
{
	if (!cowbuf_is_root())
		SKIP(return, "needs root for /proc/self/pagemap and max_region_pages");
	self->old_cap = cowbuf_param_get("max_region_pages");
	ASSERT_GT(self->old_cap, 0);
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", 1L << 28));
}

FIXTURE_TEARDOWN(frag)
{
	if (cowbuf_is_root())
		cowbuf_param_set("max_region_pages", self->old_cap);
}

/* Filling the guest takes a while under KASAN and TCG. */
TEST_F_TIMEOUT(frag, fragmented_memory_gives_enomem_and_sigbus, 420)
{
	size_t chunk = 16UL << 20, filled = 0, cap, i;
	struct sigaction sa = { .sa_handler = on_sigbus }, old_sa;
	long free_kb, huge_ok = 0;
	volatile long late = 0;
	volatile bool bus = false;
	int dev, small, big;
	char *s, *h;

	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	free_kb = meminfo_kb("MemFree");
	ASSERT_GT(free_kb, 256 * 1024);
	/*
	 * Leave an eighth and 64 MiB for everything else in the guest (the
	 * debug kernel's KASAN quarantine and kmemleak need room too).
	 */
	cap = ((size_t)free_kb * 1024 / 8 * 7 - (64UL << 20)) & ~(chunk - 1);
	small = cowbuf_region_create(dev, cap, COWBUF_FD_CLOEXEC);
	ASSERT_GE(small, 0);
	ASSERT_EQ(0, cowbuf_map(small, cap, 0, PROT_READ | PROT_WRITE, (void **)&s));
	while (filled < cap && !cowbuf_commit(small, s + filled, chunk))
		filled += chunk;
	ASSERT_GT(filled, cap / 2);
	ASSERT_EQ(0, keep_one_frame_per_block(small, s, filled));
	free_kb = meminfo_kb("MemFree");
	TH_LOG("filled %zu MiB, kept %ld pages, %ld MiB free", filled >> 20,
	       committed(small), free_kb >> 10);

	big = cowbuf_region_create(dev, 1UL << 30, COWBUF_REGION_HUGE | COWBUF_FD_CLOEXEC);
	ASSERT_GE(big, 0);
	ASSERT_EQ(0, cowbuf_map(big, 1UL << 30, 0, PROT_READ | PROT_WRITE, (void **)&h));
	for (i = 0; i < 511; i++) {
		int ret = cowbuf_commit(big, h + i * HUGE, HUGE);

		if (ret) {
			EXPECT_EQ(-ENOMEM, ret);
			break;
		}
		huge_ok++;
	}
	TH_LOG("%ld huge frames committed before ENOMEM", huge_ok);
	/*
	 * A write fault on an uncommitted frame: SIGBUS, not a warning. Memory
	 * freed in the meantime (the debug kernel's KASAN quarantine drains,
	 * compaction runs) may let a few more frames in first: write on until
	 * one fails.
	 */
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, &old_sa));
	for (i = huge_ok + 1; i < 512 && !bus; i++) {
		if (!sigsetjmp(bus_jmp, 1)) {
			h[i * HUGE] = 1;
			late++;
		} else {
			bus = true;
		}
	}
	sigaction(SIGBUS, &old_sa, NULL);
	EXPECT_TRUE(bus);
	TH_LOG("%ld more frames by write faults before SIGBUS", (long)late);
	/* Far less than the free memory: fragmentation, not exhaustion. */
	EXPECT_LT((huge_ok + late) * 2 * 1024, free_kb / 2);

	/* Memory given back: huge frames again, by PMD. */
	munmap(s, cap);
	close(small);
	EXPECT_EQ(0, cowbuf_decommit(big, h, 1UL << 30));
	EXPECT_EQ(0, cowbuf_commit(big, h, 8 * HUGE));
	EXPECT_EQ(8 * HUGE, pmd_mapped(h));
	munmap(h, 1UL << 30);
	close(big);
	close(dev);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(false);
	return test_harness_run(argc, argv);
}
