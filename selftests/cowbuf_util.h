/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by cowbuf's selftests.
 */
#ifndef COWBUF_UTIL_H
#define COWBUF_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libcowbuf.h"
#include "tool-util.h"

#include "../kselftest.h"

#define PAGE	((size_t)sysconf(_SC_PAGESIZE))

/*
 * The first call of every cowbuf selftest program's main(), before the
 * harness runs (the 6.1 harness runs a case's body even after a SKIP() in
 * its FIXTURE_SETUP): without the module, or without root for a program
 * that needs it (@needs_root), the whole program is a skip (KSFT_SKIP), not
 * a failure of every case.
 */
static inline void cowbuf_test_require(bool needs_root)
{
	if (access(COWBUF_DEV_PATH, F_OK)) {
		ksft_print_header();
		ksft_exit_skip("%s is absent: load cowbuf.ko first\n", COWBUF_DEV_PATH);
	}
	if (needs_root && geteuid()) {
		ksft_print_header();
		ksft_exit_skip("needs root\n");
	}
}

/* A number read from a sysfs file, or -errno. */
static inline long sysfs_read_long(const char *dir, const char *name)
{
	char path[256];
	long val;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (fscanf(f, "%ld", &val) != 1)
		val = -EIO;
	fclose(f);
	return val;
}

/* Write a number to a sysfs file; 0 or -errno. */
static inline int sysfs_write_long(const char *dir, const char *name, long val)
{
	char path[256];
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", val) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

#define COWBUF_PARAMS	"/sys/module/cowbuf/parameters"

/* A counter or knob of /sys/kernel/mm/cowbuf/. */
static inline long cowbuf_counter(const char *name)
{
	return sysfs_read_long(COWBUF_SYSFS_DIR, name);
}

/* Read or write a module parameter; -errno on failure. */
static inline long cowbuf_param_get(const char *name)
{
	return sysfs_read_long(COWBUF_PARAMS, name);
}

static inline int cowbuf_param_set(const char *name, long val)
{
	return sysfs_write_long(COWBUF_PARAMS, name, val);
}

/* A region's committed pages, or -1. */
static inline long committed(int region)
{
	struct cowbuf_region_info info;

	if (cowbuf_region_info(region, &info))
		return -1;
	return (long)info.committed_pages;
}

/* The merge scanner's knobs and counters in /sys/kernel/mm/cowbuf. */
static inline long knob_get(const char *name)
{
	return cowbuf_counter(name);
}

static inline int knob_set(const char *name, long val)
{
	return sysfs_write_long(COWBUF_SYSFS_DIR, name, val);
}

/* Wait until @n more full scans completed; false on a 20 s timeout. */
static inline bool wait_full_scans(long n)
{
	long target = knob_get("full_scans") + n;
	int i;

	for (i = 0; i < 2000; i++) {
		if (knob_get("full_scans") >= target)
			return true;
		usleep(10000);
	}
	return false;
}

/* /proc/self/fdinfo/@fd into @buf; the length read, or -1. */
static inline ssize_t read_fdinfo(int fd, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, buf, size - 1);
	close(f);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

/*
 * A pattern that differs in every 8-byte word of every page and seed; @off
 * is the byte offset of @p within the buffer the pattern was laid over.
 */
static inline uint64_t pattern_word(uint64_t seed, size_t word)
{
	return (seed << 40) ^ (word * 0x9e3779b97f4a7c15ull) ^ 0x5a5a;
}

static inline void pattern_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = pattern_word(seed, i);
}

/* Index of the first word that differs from the pattern, or -1. */
static inline long pattern_check_at(const void *p, size_t len, uint64_t seed,
				    size_t off)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != pattern_word(seed, off / 8 + i))
			return (long)i;
	return -1;
}

static inline long pattern_check(const void *p, size_t len, uint64_t seed)
{
	return pattern_check_at(p, len, seed, 0);
}

static inline int all_zero(const void *p, size_t len)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

/* Pages of [p, p + len) with a page-table entry, by mincore(). */
static inline long resident_pages(void *p, size_t len)
{
	size_t n = len / PAGE, i;
	unsigned char *vec = calloc(n, 1);
	long count = 0;

	if (!vec || mincore(p, len, vec)) {
		free(vec);
		return -1;
	}
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	return count;
}

/* Run @fn in a child; return its wait status. */
static inline int run_in_child(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		fn(arg);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/* Move this process into a new cgroup v2 @name with memory.max @max; 0 or -1. */
static inline int enter_limited_cgroup(const char *name, const char *max)
{
	char path[256];
	FILE *f;

	f = fopen("/sys/fs/cgroup/cgroup.subtree_control", "w");
	if (!f)
		return -1;
	fprintf(f, "+memory\n");
	if (fclose(f))
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", name);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.max", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "%s\n", max);
	if (fclose(f))
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/cgroup.procs", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", getpid());
	return fclose(f) ? -1 : 0;
}

static inline int cowbuf_is_root(void)
{
	return geteuid() == 0;
}

/*
 * What most fixtures work on: /dev/cowbuf opened as *@dev, a region of @size
 * created with @flags as *@fd and mapped read-write at *@map. Return: 0 or
 * -errno.
 */
static inline int open_mapped_region(int *dev, int *fd, char **map, size_t size,
				     uint32_t flags)
{
	*fd = -1;
	*map = NULL;
	*dev = cowbuf_open();
	if (*dev < 0)
		return *dev;
	*fd = cowbuf_region_create(*dev, size, flags);
	if (*fd < 0)
		return *fd;
	return cowbuf_map(*fd, size, 0, PROT_READ | PROT_WRITE, (void **)map);
}

/* Undo open_mapped_region(), whatever part of it was done. */
static inline void close_mapped_region(int dev, int fd, char *map, size_t size)
{
	if (map)
		munmap(map, size);
	if (fd >= 0)
		close(fd);
	if (dev >= 0)
		close(dev);
}

#endif /* COWBUF_UTIL_H */
