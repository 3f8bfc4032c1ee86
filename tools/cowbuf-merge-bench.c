// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf-merge-bench: the same content merged by KSM and by cowbuf, side by
 * side in one run.
 *
 * SIZE MiB (default 256) is filled with pages of which half are duplicates,
 * in groups of 2, 4, 8, 16 and 32 identical pages, and half unique random
 * pages. The same bytes go once into MADV_MERGEABLE anonymous memory (KSM)
 * and once into a COWBUF_REGION_MERGEABLE region (cowbuf), each scanned with
 * the same pages_to_scan and sleep_millisecs=0. For each it measures:
 *
 *   converge_s     seconds from run=1 until pages_sharing is what the content
 *                  allows (duplicates minus groups)
 *   cpu_s          CPU time of the scanner thread (ksmd, cowbufd) meanwhile,
 *                  from /proc/<pid>/stat
 *   cpu_us_per_merged  cpu_s per merged page
 *   saved_mib      memory saved: pages_sharing in MiB
 *   cow_us         time per write fault that breaks copy-on-write of a merged
 *                  page (one byte written to each merged page)
 *
 * Output: a table and lines "BENCH<TAB>merge<TAB>system<TAB>metric<TAB>value".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "libcowbuf.h"
#include "tool-util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct result {
	double converge_s;
	double cpu_s;
	long merged;
	long expected;
	double cow_us;
	int converged;
};

static size_t page_size;

static void die(const char *what, int err)
{
	fprintf(stderr, "cowbuf-merge-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void knob(const char *dir, const char *name, long v)
{
	int ret = sysfs_set(dir, name, v);

	if (ret)
		die(name, ret);
}

/* The pid of the kernel thread called @comm. */
static int find_thread(const char *comm)
{
	char path[300], name[64];
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int pid = -1;
	FILE *f;

	if (!dir)
		die("/proc", errno);
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strncmp(name, comm, strlen(comm)) &&
		    name[strlen(comm)] == '\n')
			pid = atoi(d->d_name);
		fclose(f);
		if (pid > 0)
			break;
	}
	closedir(dir);
	return pid;
}

/* utime + stime of @pid, in seconds. */
static double cpu_seconds(int pid)
{
	unsigned long utime, stime;
	char path[64], buf[1024], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		die(path, errno);
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &utime, &stime) != 2)
		die(path, EINVAL);
	return (utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/*
 * Half duplicates in groups of 2..32, half unique. Returns how many pages
 * merging can save (duplicates minus groups); *@dup_pages gets the pages
 * that have a duplicate.
 */
static long fill(char *buf, size_t pages, long *dup_pages)
{
	static const int groups[] = { 2, 4, 8, 16, 32 };
	size_t p = 0, half = pages / 2, i, g = 0;
	long saved = 0;

	*dup_pages = 0;
	while (p < half) {
		int n = groups[g++ % ARRAY_SIZE(groups)];
		uint64_t seed = next_random() | 1;

		if (p + n > half)
			n = half - p;
		for (i = 0; i < (size_t)n; i++) {
			uint64_t *w = (uint64_t *)(buf + (p + i) * page_size);
			size_t k;

			for (k = 0; k < page_size / 8; k++)
				w[k] = seed * (k + 1);
		}
		if (n > 1) {
			saved += n - 1;
			*dup_pages += n;
		}
		p += n;
	}
	for (; p < pages; p++) {
		uint64_t *w = (uint64_t *)(buf + p * page_size);
		size_t k;

		for (k = 0; k < page_size / 8; k++)
			w[k] = next_random();
	}
	return saved;
}

/* Run a scanner (KSM or cowbuf) over @buf until it converges. */
static void measure(const char *dir, const char *thread, char *buf, size_t size,
		    long expected, long dup_pages, long pages_to_scan,
		    struct result *r)
{
	long base = sysfs_get(dir, "pages_sharing");
	int pid = find_thread(thread);
	double t0, cpu0, deadline;
	long sharing = 0;
	size_t i;

	if (pid < 0)
		die(thread, ESRCH);
	knob(dir, "pages_to_scan", pages_to_scan);
	knob(dir, "sleep_millisecs", 0);
	cpu0 = cpu_seconds(pid);
	t0 = now();
	deadline = t0 + 300;
	knob(dir, "run", 1);
	while (now() < deadline) {
		sharing = sysfs_get(dir, "pages_sharing") - base;
		if (sharing >= expected)
			break;
		usleep(20000);
	}
	r->converge_s = now() - t0;
	r->cpu_s = cpu_seconds(pid) - cpu0;
	knob(dir, "run", 0);
	r->merged = sysfs_get(dir, "pages_sharing") - base;
	r->expected = expected;
	r->converged = sharing >= expected;

	/* Break copy-on-write of every merged page: one byte each. */
	t0 = now();
	for (i = 0; i < (size_t)dup_pages; i++)
		buf[i * page_size] ^= 1;
	r->cow_us = (now() - t0) * 1e6 / dup_pages;
	(void)size;
}

static void report(const char *system, const struct result *r)
{
	printf("BENCH\tmerge\t%s\tconverge_s\t%.3f\n", system, r->converge_s);
	printf("BENCH\tmerge\t%s\tcpu_s\t%.3f\n", system, r->cpu_s);
	printf("BENCH\tmerge\t%s\tcpu_us_per_merged\t%.2f\n", system,
	       r->merged > 0 ? r->cpu_s * 1e6 / r->merged : 0);
	printf("BENCH\tmerge\t%s\tsaved_mib\t%.1f\n", system,
	       r->merged * (double)page_size / (1 << 20));
	printf("BENCH\tmerge\t%s\tcow_us\t%.2f\n", system, r->cow_us);
	printf("BENCH\tmerge\t%s\tconverged\t%d\n", system, r->converged);
}

int main(int argc, char **argv)
{
	size_t size = (argc > 1 ? strtoull(argv[1], NULL, 0) : 256) << 20;
	long pages_to_scan = argc > 2 ? strtol(argv[2], NULL, 0) : 1000;
	const char *ksm = "/sys/kernel/mm/ksm", *cb = "/sys/kernel/mm/cowbuf";
	struct result rk = { 0 }, rc = { 0 };
	long expected, dup_pages;
	char *anon, *region;
	int dev, fd, ret;

	page_size = sysconf(_SC_PAGESIZE);
	anon = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		die("mmap", errno);
	expected = fill(anon, size / page_size, &dup_pages);
	printf("# %zu MiB, %ld pages in duplicate groups, %ld can be saved; pages_to_scan %ld\n",
	       size >> 20, dup_pages, expected, pages_to_scan);

	/* KSM */
	knob(ksm, "run", 2);
	knob(ksm, "run", 0);
	if (madvise(anon, size, MADV_MERGEABLE))
		die("MADV_MERGEABLE", errno);
	measure(ksm, "ksmd", anon, size, expected, dup_pages, pages_to_scan, &rk);
	knob(ksm, "run", 2);
	knob(ksm, "run", 0);

	/* cowbuf, with the same bytes */
	dev = cowbuf_open();
	if (dev < 0)
		die(COWBUF_DEV_PATH, dev);
	knob(cb, "run", 2);
	knob(cb, "run", 0);
	fd = cowbuf_region_create(dev, size, COWBUF_REGION_MERGEABLE | COWBUF_FD_CLOEXEC);
	if (fd < 0)
		die("region create", fd);
	ret = cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&region);
	if (ret)
		die("region mmap", ret);
	rng = 0x853c49e6748fea9bull;
	fill(region, size / page_size, &dup_pages);
	munmap(anon, size);
	measure(cb, "cowbufd", region, size, expected, dup_pages, pages_to_scan, &rc);
	knob(cb, "run", 2);
	knob(cb, "run", 0);

	printf("# %-8s %12s %10s %18s %10s %10s %s\n", "system", "converge_s", "cpu_s",
	       "cpu_us_per_merged", "saved_MiB", "cow_us", "converged");
	printf("# %-8s %12.2f %10.2f %18.2f %10.1f %10.2f %d\n", "ksm", rk.converge_s,
	       rk.cpu_s, rk.merged > 0 ? rk.cpu_s * 1e6 / rk.merged : 0,
	       rk.merged * (double)page_size / (1 << 20), rk.cow_us, rk.converged);
	printf("# %-8s %12.2f %10.2f %18.2f %10.1f %10.2f %d\n", "cowbuf", rc.converge_s,
	       rc.cpu_s, rc.merged > 0 ? rc.cpu_s * 1e6 / rc.merged : 0,
	       rc.merged * (double)page_size / (1 << 20), rc.cow_us, rc.converged);
	report("ksm", &rk);
	report("cowbuf", &rc);
	munmap(region, size);
	close(fd);
	close(dev);
	return 0;
}
