// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: regions - reserve, commit, decommit, the zero page,
 * mappings and what the mm syscalls do to them, limits, lifetime.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define NR_PAGES	64

FIXTURE(region) {
	int dev;
	int fd;
	size_t size;
	char *map;
	long frames_before;
};

FIXTURE_SETUP(region)
{
	self->frames_before = cowbuf_counter("frames");
	self->size = NR_PAGES * PAGE;
	ASSERT_EQ(0, open_mapped_region(&self->dev, &self->fd, &self->map, self->size,
					COWBUF_FD_CLOEXEC));
}

FIXTURE_TEARDOWN(region)
{
	close_mapped_region(self->dev, self->fd, self->map, self->size);
	/* Whatever a test committed is freed with the region. */
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
}

TEST(create_validates_size_and_flags)
{
	struct cowbuf_region_create args = { 0 };
	int dev = cowbuf_open();

	ASSERT_GE(dev, 0);
	EXPECT_EQ(-EINVAL, cowbuf_region_create(dev, 0, 0));
	EXPECT_EQ(-EINVAL, cowbuf_region_create(dev, PAGE + 1, 0));
	EXPECT_EQ(-EINVAL, cowbuf_region_create(dev, PAGE / 2, 0));
	EXPECT_EQ(-EINVAL, cowbuf_region_create(dev, COWBUF_REGION_MAX_SIZE + PAGE, 0));
	EXPECT_EQ(-EINVAL, cowbuf_region_create(dev, PAGE, COWBUF_FD_NONBLOCK));
	EXPECT_EQ(-EINVAL, cowbuf_region_create(dev, PAGE, 0x80000000u));
	/* A refused call reports no descriptor. */
	args.size = 3;
	args.fd = -7;
	EXPECT_EQ(-1, ioctl(dev, COWBUF_IOC_REGION_CREATE, &args));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-7, args.fd);
	EXPECT_EQ(-1, ioctl(dev, COWBUF_IOC_REGION_CREATE, NULL));
	EXPECT_EQ(EFAULT, errno);
	close(dev);
}

TEST(create_largest_region_reserves_only)
{
	long frames = cowbuf_counter("frames");
	struct cowbuf_region_info info;
	int dev = cowbuf_open();
	int fd;

	ASSERT_GE(dev, 0);
	fd = cowbuf_region_create(dev, COWBUF_REGION_MAX_SIZE, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_region_info(fd, &info));
	EXPECT_EQ(COWBUF_REGION_MAX_SIZE, info.size);
	EXPECT_EQ(0, info.committed_pages);
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	/* Close-on-exec only when asked. */
	EXPECT_EQ(0, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	close(dev);
}

TEST_F(region, info_validates_flags_and_frame_size_in)
{
	struct cowbuf_region_info info = { .flags = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_REGION_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	info.flags = 0;
	info.frame_size = 1;
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_REGION_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, info.size);
	EXPECT_EQ(FD_CLOEXEC, fcntl(self->fd, F_GETFD) & FD_CLOEXEC);
	/* Region commands are not device or channel commands. */
	EXPECT_EQ(-1, ioctl(self->dev, COWBUF_IOC_REGION_INFO, &info));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_REGION_CREATE, &info));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(region, map_private_is_refused)
{
	void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, self->fd, 0);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(region, map_beyond_the_region_is_refused)
{
	void *p;

	p = mmap(NULL, self->size + PAGE, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd, self->size);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, self->fd, self->size - PAGE);
	EXPECT_EQ(MAP_FAILED, p);
	/* The last page alone is fine. */
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd, self->size - PAGE);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, PAGE);
}

TEST_F(region, reads_zero_without_allocating)
{
	long frames = cowbuf_counter("frames");
	size_t i;

	EXPECT_EQ(0, resident_pages(self->map, self->size));
	for (i = 0; i < self->size; i += PAGE)
		ASSERT_EQ(0, self->map[i]);
	EXPECT_TRUE(all_zero(self->map, self->size));
	EXPECT_EQ(0, committed(self->fd));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	/* The zero page is mapped. */
	EXPECT_EQ(NR_PAGES, resident_pages(self->map, self->size));
}

TEST_F(region, first_write_commits_one_page)
{
	long frames = cowbuf_counter("frames");

	self->map[3 * PAGE + 5] = 42;
	EXPECT_EQ(1, committed(self->fd));
	EXPECT_EQ(frames + 1, cowbuf_counter("frames"));
	EXPECT_EQ(42, self->map[3 * PAGE + 5]);
	EXPECT_EQ(0, self->map[3 * PAGE + 4]);
	EXPECT_TRUE(all_zero(self->map, 3 * PAGE));
	EXPECT_TRUE(all_zero(self->map + 4 * PAGE, self->size - 4 * PAGE));
}

/* A write after a read replaces the zero page in every mapping. */
TEST_F(region, write_after_read_reaches_every_mapping)
{
	char *second;

	ASSERT_EQ(0, cowbuf_map(self->fd, self->size, 0, PROT_READ, (void **)&second));
	EXPECT_EQ(0, second[PAGE]);
	EXPECT_EQ(0, self->map[PAGE]);
	self->map[PAGE] = 7;
	EXPECT_EQ(7, second[PAGE]);
	EXPECT_EQ(1, committed(self->fd));
	munmap(second, self->size);
}

TEST_F(region, mapping_at_an_offset_sees_the_same_pages)
{
	char *tail;

	pattern_fill(self->map, self->size, 1);
	ASSERT_EQ(0, cowbuf_map(self->fd, 4 * PAGE, 60 * PAGE, PROT_READ | PROT_WRITE,
				(void **)&tail));
	EXPECT_EQ(0, memcmp(tail, self->map + 60 * PAGE, 4 * PAGE));
	tail[0] = 'x';
	EXPECT_EQ('x', self->map[60 * PAGE]);
	munmap(tail, 4 * PAGE);
}

TEST_F(region, commit_allocates_and_maps_the_range)
{
	long frames = cowbuf_counter("frames");

	self->map[2 * PAGE] = 9;
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 16 * PAGE));
	EXPECT_EQ(16, committed(self->fd));
	EXPECT_EQ(frames + 16, cowbuf_counter("frames"));
	/* Mapped up front, contents kept, the rest zero. */
	EXPECT_EQ(16, resident_pages(self->map, 16 * PAGE));
	EXPECT_EQ(9, self->map[2 * PAGE]);
	self->map[2 * PAGE] = 0;
	EXPECT_TRUE(all_zero(self->map, 16 * PAGE));
	/* Committing again changes nothing. */
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 16 * PAGE));
	EXPECT_EQ(16, committed(self->fd));
	pattern_fill(self->map, 16 * PAGE, 3);
	EXPECT_EQ(-1, pattern_check(self->map, 16 * PAGE, 3));
}

TEST_F(region, commit_and_decommit_validate_arguments)
{
	struct cowbuf_range range = {
		.addr = (uintptr_t)self->map,
		.length = PAGE,
	};
	int other, i;
	char *other_map;
	char *heap = aligned_alloc(PAGE, PAGE);
	unsigned long cmds[] = { COWBUF_IOC_COMMIT, COWBUF_IOC_DECOMMIT };

	ASSERT_NE(NULL, heap);
	other = cowbuf_region_create(self->dev, PAGE, 0);
	ASSERT_GE(other, 0);
	ASSERT_EQ(0, cowbuf_map(other, PAGE, 0, PROT_READ, (void **)&other_map));

	for (i = 0; i < 2; i++) {
		range.flags = 1;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], &range));
		EXPECT_EQ(EINVAL, errno);
		range.flags = 0;
		range.pad = 1;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], &range));
		EXPECT_EQ(EINVAL, errno);
		range.pad = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], NULL));
		EXPECT_EQ(EFAULT, errno);
	}
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, self->map + 1, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, self->map, PAGE + 1));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, self->map, 0));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, self->map, self->size + PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, (void *)-PAGE, 2 * PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, heap, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, other_map, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_commit(other, self->map, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_decommit(self->fd, self->map + 1, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_decommit(self->fd, heap, PAGE));
	EXPECT_EQ(-EINVAL, cowbuf_decommit(self->fd, self->map, self->size + PAGE));
	EXPECT_EQ(0, committed(self->fd));
	EXPECT_EQ(0, committed(other));
	munmap(other_map, PAGE);
	close(other);
	free(heap);
}

TEST_F(region, decommit_frees_and_reads_zero)
{
	long frames;

	pattern_fill(self->map, self->size, 5);
	EXPECT_EQ(NR_PAGES, committed(self->fd));
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map + 8 * PAGE, 8 * PAGE));
	EXPECT_EQ(NR_PAGES - 8, committed(self->fd));
	EXPECT_EQ(frames - 8, cowbuf_counter("frames"));
	EXPECT_TRUE(all_zero(self->map + 8 * PAGE, 8 * PAGE));
	EXPECT_EQ(-1, pattern_check(self->map, 8 * PAGE, 5));
	EXPECT_EQ(-1, pattern_check_at(self->map + 16 * PAGE, self->size - 16 * PAGE,
				       5, 16 * PAGE));
	/* Reading it did not commit it again; writing does. */
	EXPECT_EQ(NR_PAGES - 8, committed(self->fd));
	self->map[8 * PAGE] = 1;
	EXPECT_EQ(NR_PAGES - 7, committed(self->fd));
	/* Decommitting an uncommitted range is a no-op. */
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map + 9 * PAGE, 4 * PAGE));
	EXPECT_EQ(NR_PAGES - 7, committed(self->fd));
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, self->size));
	EXPECT_EQ(0, committed(self->fd));
	EXPECT_TRUE(all_zero(self->map, self->size));
}

TEST_F(region, fork_shares_the_region)
{
	int status;
	pid_t pid;

	self->map[0] = 1;
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		if (self->map[0] != 1)
			_exit(1);
		self->map[0] = 2;
		self->map[5 * PAGE] = 3;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(2, self->map[0]);
	EXPECT_EQ(3, self->map[5 * PAGE]);
	EXPECT_EQ(2, committed(self->fd));
}

TEST_F(region, partial_munmap_keeps_the_rest_and_the_data)
{
	char *again;

	pattern_fill(self->map, self->size, 7);
	ASSERT_EQ(0, munmap(self->map + 10 * PAGE, 2 * PAGE));
	EXPECT_EQ(-1, pattern_check(self->map, 10 * PAGE, 7));
	EXPECT_EQ(NR_PAGES, committed(self->fd));
	ASSERT_EQ(0, cowbuf_map(self->fd, self->size, 0, PROT_READ, (void **)&again));
	EXPECT_EQ(-1, pattern_check(again, self->size, 7));
	munmap(again, self->size);
	/* COMMIT needs the whole range in one mapping. */
	EXPECT_EQ(-EINVAL, cowbuf_commit(self->fd, self->map, 16 * PAGE));
}

static void write_first_byte(void *p)
{
	*(volatile char *)p = 1;
}

TEST_F(region, mprotect_read_only_faults_on_write)
{
	int status;

	ASSERT_EQ(0, mprotect(self->map, self->size, PROT_READ));
	status = run_in_child(write_first_byte, self->map);
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
	EXPECT_EQ(0, committed(self->fd));
	ASSERT_EQ(0, mprotect(self->map, self->size, PROT_READ | PROT_WRITE));
	self->map[0] = 5;
	EXPECT_EQ(5, self->map[0]);
}

TEST_F(region, madvise_dontneed_keeps_the_data)
{
	pattern_fill(self->map, self->size, 11);
	ASSERT_EQ(0, madvise(self->map, self->size, MADV_DONTNEED));
	EXPECT_EQ(0, resident_pages(self->map, self->size));
	EXPECT_EQ(NR_PAGES, committed(self->fd));
	EXPECT_EQ(-1, pattern_check(self->map, self->size, 11));
}

TEST_F(region, mremap_cannot_grow)
{
	void *p;

	p = mremap(self->map, self->size / 2, self->size, 0);
	EXPECT_EQ(MAP_FAILED, p);
	p = mremap(self->map, self->size / 2, self->size, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, p);
	/* Shrinking works. */
	self->map[0] = 4;
	p = mremap(self->map, self->size, self->size / 2, 0);
	ASSERT_EQ((void *)self->map, p);
	EXPECT_EQ(4, self->map[0]);
	self->size /= 2;
}

TEST_F(region, mapping_outlives_the_descriptor)
{
	int fd = self->fd;
	long frames = cowbuf_counter("frames");

	self->fd = cowbuf_region_create(self->dev, PAGE, 0);
	ASSERT_GE(self->fd, 0);
	pattern_fill(self->map, self->size, 13);
	close(fd);
	EXPECT_EQ(-1, pattern_check(self->map, self->size, 13));
	EXPECT_EQ(frames + NR_PAGES, cowbuf_counter("frames"));
	ASSERT_EQ(0, munmap(self->map, self->size));
	/* The last reference went with the mapping. */
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	ASSERT_EQ(0, cowbuf_map(self->fd, PAGE, 0, PROT_READ | PROT_WRITE,
				(void **)&self->map));
	self->size = PAGE;
}

TEST_F(region, fdinfo_shows_size_and_commit)
{
	char buf[512], line[64];

	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 3 * PAGE));
	ASSERT_GT(read_fdinfo(self->fd, buf, sizeof(buf)), 0);
	snprintf(line, sizeof(line), "cowbuf-region-size:\t%zu\n", self->size);
	EXPECT_NE(NULL, strstr(buf, line)) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "cowbuf-committed-pages:\t3\n")) TH_LOG("%s", buf);
}

static void write_page_8(void *p)
{
	((volatile char *)p)[8 * PAGE] = 1;
}

TEST_F(region, region_cap_gives_enomem_and_sigbus)
{
	long old = cowbuf_param_get("max_region_pages");
	int status;

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_region_pages");
	ASSERT_GT(old, 0);
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", 8));
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 6 * PAGE));
	EXPECT_EQ(-ENOMEM, cowbuf_commit(self->fd, self->map, 9 * PAGE));
	EXPECT_EQ(6, committed(self->fd));
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 8 * PAGE));
	status = run_in_child(write_page_8, self->map);
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	EXPECT_EQ(8, committed(self->fd));
	/* Reading stays possible: the zero page costs nothing. */
	EXPECT_EQ(0, self->map[20 * PAGE]);
	ASSERT_EQ(0, cowbuf_param_set("max_region_pages", old));
	self->map[8 * PAGE] = 1;
	EXPECT_EQ(9, committed(self->fd));
}

TEST_F(region, user_cap_counts_all_regions_of_the_user)
{
	long old = cowbuf_param_get("max_user_pages");
	char *map2;
	int fd2;

	if (!cowbuf_is_root())
		SKIP(return, "needs root to set max_user_pages");
	fd2 = cowbuf_region_create(self->dev, self->size, 0);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, cowbuf_map(fd2, self->size, 0, PROT_READ | PROT_WRITE, (void **)&map2));
	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 10 * PAGE));
	ASSERT_EQ(0, cowbuf_param_set("max_user_pages", 16));
	EXPECT_EQ(-ENOMEM, cowbuf_commit(fd2, map2, 7 * PAGE));
	EXPECT_EQ(0, cowbuf_commit(fd2, map2, 6 * PAGE));
	EXPECT_EQ(-ENOMEM, cowbuf_commit(self->fd, self->map + 10 * PAGE, PAGE));
	/* Freeing in one region makes room in the other. */
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, 4 * PAGE));
	EXPECT_EQ(0, cowbuf_commit(fd2, map2 + 6 * PAGE, 4 * PAGE));
	ASSERT_EQ(0, cowbuf_param_set("max_user_pages", old));
	munmap(map2, self->size);
	close(fd2);
}

struct cgroup_case {
	int fd;
	char *map;
	size_t size;
};

/*
 * In a cgroup limited to 4 MiB: committing 8 MiB fails with ENOMEM and
 * writing page after page ends in SIGBUS, never in a kernel warning.
 */
static void commit_over_cgroup_limit(void *arg)
{
	struct cgroup_case *c = arg;
	size_t i;

	if (enter_limited_cgroup("cowbuf-selftest", "4M"))
		_exit(10);
	if (cowbuf_commit(c->fd, c->map, c->size) != -ENOMEM)
		_exit(11);
	if (committed(c->fd) != 0)
		_exit(12);
	for (i = 0; i < c->size; i += PAGE)
		c->map[i] = 1;
	_exit(13);
}

TEST(cgroup_limit_gives_enomem_then_sigbus)
{
	struct cgroup_case c = { .size = 8 << 20 };
	int dev, status;

	if (!cowbuf_is_root() || access("/sys/fs/cgroup/cgroup.subtree_control", W_OK))
		SKIP(return, "needs root and cgroup v2 at /sys/fs/cgroup");
	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	c.fd = cowbuf_region_create(dev, c.size, 0);
	ASSERT_GE(c.fd, 0);
	ASSERT_EQ(0, cowbuf_map(c.fd, c.size, 0, PROT_READ | PROT_WRITE, (void **)&c.map));
	status = run_in_child(commit_over_cgroup_limit, &c);
	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("child exited %d", WEXITSTATUS(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	EXPECT_GT(committed(c.fd), 0);
	EXPECT_LT(committed(c.fd), (long)(c.size / PAGE));
	munmap(c.map, c.size);
	close(c.fd);
	close(dev);
	rmdir("/sys/fs/cgroup/cowbuf-selftest");
}

/* The module stays while a mapping exists, even with every fd closed. */
TEST(unload_refused_while_mapped)
{
	int dev, fd;
	char *map;

	if (!cowbuf_is_root())
		SKIP(return, "needs root to try delete_module");
	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	fd = cowbuf_region_create(dev, PAGE, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, PAGE, 0, PROT_READ | PROT_WRITE, (void **)&map));
	close(fd);
	close(dev);
	map[0] = 1;
	EXPECT_EQ(-1, syscall(SYS_delete_module, "cowbuf", O_NONBLOCK));
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY) TH_LOG("errno %d", errno);
	EXPECT_EQ(0, access("/sys/module/cowbuf", F_OK));
	EXPECT_EQ(1, map[0]);
	munmap(map, PAGE);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(false);
	return test_harness_run(argc, argv);
}
