// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf-merge-bench: the same content merged by KSM and by cowbuf, side by
 * side in one run.
 *
 *   cowbuf-merge-bench [SIZE_MIB [PAGES_TO_SCAN [VOLATILE_MIB [SECONDS]]]]
 *
 * Two mixes of SIZE MiB (default 256): "half", half the pages duplicates in
 * groups of 2, 4, 8, 16 and 32 identical pages and half unique random pages;
 * "tenth", a tenth duplicates in groups of 2 to 64 pages. The pages are laid
 * out in a random order (the same for both mixes and all systems): a
 * scanner must go over all of the memory to converge. The same bytes go
 * into MADV_MERGEABLE anonymous memory (KSM), twice: with MADV_NOHUGEPAGE,
 * 4 KiB pages like the cowbuf region's (system "ksm"), and with
 * MADV_HUGEPAGE, THPs that KSM splits to merge ("ksm-thp"); and into a
 * COWBUF_REGION_MERGEABLE region (cowbuf), each scanned with the same
 * pages_to_scan and sleep_millisecs=0. For each it measures:
 *
 *   converge_s     seconds from run=1 until pages_sharing is what the content
 *                  allows (duplicates minus groups)
 *   cpu_s          CPU time of the scanner thread (ksmd, cowbufd) meanwhile,
 *                  from /proc/<pid>/stat
 *   cpu_us_per_merged  cpu_s per merged page
 *   saved_mib      memory saved: pages_sharing in MiB
 *   cow_us         time per write fault that breaks copy-on-write of a merged
 *                  page (one byte written to each merged page)
 *   passes         full_scans completed meanwhile (the last may be partial
 *                  when the target was reached before the pass ended)
 *
 * and, as the bound, cowbuf's hash-only pass (system "hash": hash_only=1,
 * cowbufd reads and hashes the same region once, nothing else): its
 * converge_s is the time of one full pass, its cpu_s that pass's CPU. Then
 * the floor of merging: a pass that also compares every page with itself
 * (system "compare": hash_only=2, the reading of one pages_equal() per
 * page), and the cost of removing a page-table entry at its cheapest: the
 * whole region mapped (every page touched), then unmapped by one
 * MADV_DONTNEED (system "zap": its converge_s is the time of that call), and
 * the cost of giving a frame back at its cheapest: the whole region, no
 * longer mapped, decommitted by one fallocate(PUNCH_HOLE) (system "punch").
 * From those, system "floor": h + merged / pages * (c - h + z + p), the hash
 * pass plus, per page that cowbuf merged, one comparison, one entry removed
 * and one frame freed: what no merging pass can do without (each page read to
 * hash it, each merged page and its target read to compare them, the merged
 * page's mapping removed and its frame given back), with none of the rest
 * (tables, locks, write-protecting the target, TLB flushes per batch).
 *
 * Then a volatile workload of VOLATILE MiB (default 64; 0 skips it): pages
 * with one of 64 contents, merged, then rewritten for SECONDS (default 10),
 * a random quarter of the pages every 200 ms, each with one of the 64
 * contents again, so that the rewritten pages could merge again. With
 * pages_to_scan as above and sleep_millisecs=20 it counts, for KSM, cowbuf
 * and cowbuf without back-off (max_backoff=0), the writes that broke
 * copy-on-write of a merged page (KSM: the page was KSM in /proc/kpageflags
 * just before the write; cowbuf: its cow_breaks counter; the writer reads
 * /proc/kpageflags before every write for all three, so that it writes at
 * the same rate), per second and per write, and the pages merged on average
 * (pages_sharing, sampled every round).
 *
 * With COWBUF_MERGE_BENCH_ONLY=cowbuf in the environment, only cowbuf and its
 * hash pass run, on both mixes (for tools/vm/actions/ab-merge.sh, which runs
 * two builds of the module in turn).
 *
 * Output: tables and lines "BENCH<TAB>merge<TAB>MIX<TAB>SYSTEM<TAB>METRIC<TAB>
 * VALUE" and "BENCH<TAB>volatile<TAB>SYSTEM<TAB>METRIC<TAB>VALUE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
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
	long passes;
	int converged;
};

static size_t page_size;
/* COWBUF_MERGE_BENCH_ONLY=cowbuf: no KSM, no floor, no volatile workload. */
static int cowbuf_only;

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

static uint64_t rng;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void seed_random(void)
{
	rng = 0x853c49e6748fea9bull;
}

static void fill_page(char *page, uint64_t seed)
{
	uint64_t *w = (uint64_t *)page;
	size_t k;

	for (k = 0; k < page_size / 8; k++)
		w[k] = seed * (k + 1);
}

enum mix { MIX_HALF, MIX_TENTH };
static const char *const mix_names[] = { "half", "tenth" };

/*
 * Where the page of logical index q goes: a random permutation of the
 * region (the same for every fill), so that duplicates lie all over it and
 * a scanner must read all of it to find them.
 */
static size_t *place;

static void make_placement(size_t pages)
{
	size_t q, r, t;

	free(place);
	place = malloc(pages * sizeof(*place));
	if (!place)
		die("malloc", ENOMEM);
	for (q = 0; q < pages; q++)
		place[q] = q;
	seed_random();
	for (q = pages - 1; q > 0; q--) {
		r = next_random() % (q + 1);
		t = place[q];
		place[q] = place[r];
		place[r] = t;
	}
}

/*
 * MIX_HALF: half duplicates in groups of 2..32, half unique. MIX_TENTH: a
 * tenth duplicates in groups of 2..64 pages, the rest unique. Logical pages
 * [0, *@dup_pages) are those that have a duplicate; page q is written at
 * place[q]. Returns how many pages merging can save (duplicates minus
 * groups).
 */
static long fill(char *buf, size_t pages, enum mix mix, long *dup_pages)
{
	static const int groups[] = { 2, 4, 8, 16, 32 };
	size_t dup_end = mix == MIX_HALF ? pages / 2 : pages / 10;
	size_t p = 0, i, g = 0;
	long saved = 0;

	make_placement(pages);
	*dup_pages = 0;
	while (p < dup_end) {
		int n = mix == MIX_HALF ? groups[g++ % ARRAY_SIZE(groups)] :
			2 + (int)(next_random() % 63);
		uint64_t seed = next_random() | 1;

		if (p + n > dup_end)
			n = dup_end - p;
		for (i = 0; i < (size_t)n; i++)
			fill_page(buf + place[p + i] * page_size, seed);
		if (n > 1) {
			saved += n - 1;
			*dup_pages += n;
		}
		p += n;
	}
	for (; p < pages; p++) {
		uint64_t *w = (uint64_t *)(buf + place[p] * page_size);
		size_t k;

		for (k = 0; k < page_size / 8; k++)
			w[k] = next_random();
	}
	return saved;
}

/* Run a scanner (KSM or cowbuf) over @buf until it converges. */
static void measure(const char *dir, const char *thread, char *buf,
		    long expected, long dup_pages, long pages_to_scan,
		    struct result *r)
{
	long base = sysfs_get(dir, "pages_sharing");
	int pid = find_thread(thread);
	double t0, cpu0, deadline;
	long sharing = 0, scans;
	size_t i;

	if (pid < 0)
		die(thread, ESRCH);
	knob(dir, "pages_to_scan", pages_to_scan);
	knob(dir, "sleep_millisecs", 0);
	cpu0 = cpu_seconds(pid);
	scans = sysfs_get(dir, "full_scans");
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
	r->passes = sysfs_get(dir, "full_scans") - scans;

	/* Break copy-on-write of every merged page: one byte each. */
	t0 = now();
	for (i = 0; i < (size_t)dup_pages; i++)
		buf[place[i] * page_size] ^= 1;
	r->cow_us = (now() - t0) * 1e6 / dup_pages;
}

/*
 * The bound: one hash-only pass of cowbufd over the region (hash_only=1;
 * @mode 2: hash and compare), timed from one pass end to the next. Only the
 * region is mergeable. Leaves cowbufd stopped somewhere in the middle of a
 * pass.
 */
static void measure_hash_pass(long pages_to_scan, int mode, struct result *r)
{
	const char *cb = COWBUF_SYSFS_DIR;
	int pid = find_thread("cowbufd");
	double t0, cpu0, deadline;
	long scans;

	if (pid < 0)
		die("cowbufd", ESRCH);
	knob(cb, "pages_to_scan", pages_to_scan);
	knob(cb, "sleep_millisecs", 0);
	knob(COWBUF_DEBUGFS_DIR, "hash_only", mode);
	scans = sysfs_get(cb, "full_scans");
	knob(cb, "run", 1);
	deadline = now() + 300;
	while (sysfs_get(cb, "full_scans") == scans && now() < deadline)
		usleep(1000);
	scans = sysfs_get(cb, "full_scans");
	cpu0 = cpu_seconds(pid);
	t0 = now();
	while (sysfs_get(cb, "full_scans") == scans && now() < deadline)
		usleep(1000);
	r->converge_s = now() - t0;
	r->cpu_s = cpu_seconds(pid) - cpu0;
	r->converged = now() < deadline;
	knob(cb, "run", 0);
	knob(COWBUF_DEBUGFS_DIR, "hash_only", 0);
}

/*
 * The cheapest freeing of frames: the whole region, which nothing maps any
 * more (measure_zap() first), decommitted by one fallocate(PUNCH_HOLE).
 */
static void measure_punch(int fd, size_t size, struct result *r)
{
	double t0 = now();

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, size))
		die("fallocate(PUNCH_HOLE)", errno);
	r->converge_s = now() - t0;
	r->converged = 1;
}

/*
 * The cheapest removal of page-table entries: every page of the region
 * mapped (read), then one MADV_DONTNEED over all of it; the frames stay. The
 * scanner is stopped.
 */
static void measure_zap(char *region, size_t size, struct result *r)
{
	volatile char sink;
	double t0;
	size_t i;

	for (i = 0; i < size; i += page_size)
		sink = region[i];
	(void)sink;
	t0 = now();
	if (madvise(region, size, MADV_DONTNEED))
		die("MADV_DONTNEED", errno);
	r->converge_s = now() - t0;
	r->converged = 1;
}

static void report(enum mix mix, const char *system, const struct result *r)
{
	const char *m = mix_names[mix];

	printf("BENCH\tmerge\t%s\t%s\tconverge_s\t%.3f\n", m, system, r->converge_s);
	printf("BENCH\tmerge\t%s\t%s\tcpu_s\t%.3f\n", m, system, r->cpu_s);
	/* The bounds (hash, compare, zap, floor) merge nothing. */
	if (!r->expected)
		return;
	printf("BENCH\tmerge\t%s\t%s\tcpu_us_per_merged\t%.2f\n", m, system,
	       r->merged > 0 ? r->cpu_s * 1e6 / r->merged : 0);
	printf("BENCH\tmerge\t%s\t%s\tsaved_mib\t%.1f\n", m, system,
	       r->merged * (double)page_size / (1 << 20));
	printf("BENCH\tmerge\t%s\t%s\tcow_us\t%.2f\n", m, system, r->cow_us);
	printf("BENCH\tmerge\t%s\t%s\tpasses\t%ld\n", m, system, r->passes);
	printf("BENCH\tmerge\t%s\t%s\tconverged\t%d\n", m, system, r->converged);
}

static void row(const char *system, const struct result *r)
{
	printf("# %-8s %12.2f %10.2f %18.2f %10.1f %10.2f %6ld %d\n", system, r->converge_s,
	       r->cpu_s, r->merged > 0 ? r->cpu_s * 1e6 / r->merged : 0,
	       r->merged * (double)page_size / (1 << 20), r->cow_us, r->passes, r->converged);
}

static void reset(const char *dir)
{
	knob(dir, "run", 2);
	knob(dir, "run", 0);
}

/* One mix, KSM then cowbuf, with the same bytes. */
static void run_mix(enum mix mix, size_t size, long pages_to_scan)
{
	const char *ksm = "/sys/kernel/mm/ksm", *cb = COWBUF_SYSFS_DIR;
	struct result rk = { 0 }, rt = { 0 }, rc = { 0 }, rh = { 0 }, rp = { 0 }, rf = { 0 };
	struct result rz = { 0 }, rq = { 0 };
	long expected = 0, dup_pages = 0;
	char *anon, *region;
	double share;
	int dev, fd, ret, thp;

	printf("# mix %s: %zu MiB, ", mix_names[mix], size >> 20);
	/* KSM twice: on 4 KiB pages as cowbuf's region has, and on THPs. */
	for (thp = 0; thp < 2 && !cowbuf_only; thp++) {
		anon = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (anon == MAP_FAILED)
			die("mmap", errno);
		/* Without THP in the kernel, "ksm-thp" is KSM on 4 KiB pages again. */
		if (madvise(anon, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) && !thp)
			die("MADV_NOHUGEPAGE", errno);
		expected = fill(anon, size / page_size, mix, &dup_pages);
		reset(ksm);
		if (madvise(anon, size, MADV_MERGEABLE))
			die("MADV_MERGEABLE", errno);
		measure(ksm, "ksmd", anon, expected, dup_pages, pages_to_scan,
			thp ? &rt : &rk);
		reset(ksm);
		munmap(anon, size);
	}

	if (cowbuf_only)
		printf("cowbuf and its hash pass only; pages_to_scan %ld\n", pages_to_scan);
	else
		printf("%ld pages in duplicate groups, %ld can be saved; pages_to_scan %ld\n",
		       dup_pages, expected, pages_to_scan);

	dev = cowbuf_open();
	if (dev < 0)
		die(COWBUF_DEV_PATH, dev);
	reset(cb);
	fd = cowbuf_region_create(dev, size, COWBUF_REGION_MERGEABLE | COWBUF_FD_CLOEXEC);
	if (fd < 0)
		die("region create", fd);
	ret = cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&region);
	if (ret)
		die("region mmap", ret);
	expected = fill(region, size / page_size, mix, &dup_pages);
	/*
	 * Merging first: its pass must start where the region starts, as it
	 * does with the cursor past the region closed before. (A pass started
	 * in the middle drops the first half's candidates at its end, and
	 * groups split across that point merge only a pass later.) run=2 then
	 * unmerges, so the hash-only pass reads as many committed pages.
	 */
	measure(cb, "cowbufd", region, expected, dup_pages, pages_to_scan, &rc);
	reset(cb);
	measure_hash_pass(pages_to_scan, 1, &rh);
	reset(cb);
	if (!cowbuf_only) {
		measure_hash_pass(pages_to_scan, 2, &rp);
		reset(cb);
		measure_zap(region, size, &rz);
		measure_punch(fd, size, &rq);
	}
	munmap(region, size);
	close(fd);
	close(dev);
	if (cowbuf_only) {
		report(mix, "cowbuf", &rc);
		report(mix, "hash", &rh);
		return;
	}
	/*
	 * The floor: the hash pass; a comparison, a zap and a frame freed per
	 * merged page.
	 */
	share = (double)rc.merged / (size / page_size);
	rf.converge_s = rh.converge_s + share * (rp.converge_s - rh.converge_s +
						 rz.converge_s + rq.converge_s);
	rf.cpu_s = rh.cpu_s + share * (rp.cpu_s - rh.cpu_s + rz.converge_s + rq.converge_s);

	printf("# %-8s %12s %10s %18s %10s %10s %6s %s\n", "system", "converge_s", "cpu_s",
	       "cpu_us_per_merged", "saved_MiB", "cow_us", "passes", "converged");
	row("ksm", &rk);
	row("ksm-thp", &rt);
	row("cowbuf", &rc);
	printf("# %-8s %12.2f %10.2f   (one hash-only pass: the bound)\n", "hash",
	       rh.converge_s, rh.cpu_s);
	printf("# %-8s %12.2f %10.2f   (hash_only=2: and every page compared with itself)\n",
	       "compare", rp.converge_s, rp.cpu_s);
	printf("# %-8s %12.3f %10s   (one MADV_DONTNEED of the whole region, mapped)\n",
	       "zap", rz.converge_s, "-");
	printf("# %-8s %12.3f %10s   (one fallocate(PUNCH_HOLE) of the whole region, unmapped)\n",
	       "punch", rq.converge_s, "-");
	printf("# %-8s %12.2f %10.2f   (hash pass + a comparison, a zap, a frame freed %s)\n",
	       "floor", rf.converge_s, rf.cpu_s, "per merged page");
	report(mix, "ksm", &rk);
	report(mix, "ksm-thp", &rt);
	report(mix, "cowbuf", &rc);
	report(mix, "hash", &rh);
	report(mix, "compare", &rp);
	report(mix, "zap", &rz);
	report(mix, "punch", &rq);
	report(mix, "floor", &rf);
}

/* Contents of the volatile workload: one of 64. */
#define VOLATILE_CONTENTS	64
#define VOLATILE_ROUND_US	200000

struct vresult {
	long breaks;
	long writes;
	double seconds;
	double sharing_avg;
	int converged;
};

/* Whether the page at @addr is a KSM page now (root: /proc/kpageflags). */
static int is_ksm_page(int pagemap, int kpageflags, char *addr)
{
	uint64_t entry, flags;
	off_t off = (uintptr_t)addr / page_size * 8;

	if (pread(pagemap, &entry, 8, off) != 8 || !(entry & (1ULL << 63)))
		return 0;
	entry &= (1ULL << 55) - 1;
	if (pread(kpageflags, &flags, 8, entry * 8) != 8)
		die("/proc/kpageflags", errno);
	return !!(flags & (1ULL << 21));	/* KPF_KSM */
}

/*
 * Merge @buf (filled with the volatile contents), then rewrite a random
 * quarter of its pages every round for @seconds, counting the writes that
 * broke copy-on-write of a merged page.
 */
static void volatile_run(const char *dir, char *buf, size_t pages, double seconds,
			 long pages_to_scan, int ksm, struct vresult *r)
{
	long target = pages - VOLATILE_CONTENTS, breaks0 = 0, samples = 0;
	int pagemap, kpageflags, ret;
	double t0, deadline, next;
	size_t p, i;

	for (p = 0; p < pages; p++)
		fill_page(buf + p * page_size, p % VOLATILE_CONTENTS + 1);
	/* Opened, and read before every write, for cowbuf too: same writer. */
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	kpageflags = open("/proc/kpageflags", O_RDONLY);
	if (pagemap < 0 || kpageflags < 0)
		die("/proc/self/pagemap, /proc/kpageflags", errno);
	if (!ksm)
		breaks0 = sysfs_get(dir, "cow_breaks");
	knob(dir, "pages_to_scan", pages_to_scan);
	knob(dir, "sleep_millisecs", 20);
	knob(dir, "run", 1);
	deadline = now() + 300;
	while (sysfs_get(dir, "pages_sharing") < target && now() < deadline)
		usleep(20000);
	r->converged = now() < deadline;

	seed_random();
	memset(r, 0, offsetof(struct vresult, converged));
	t0 = now();
	for (next = t0; now() - t0 < seconds; ) {
		for (i = 0; i < pages / 4; i++) {
			p = next_random() % pages;
			ret = is_ksm_page(pagemap, kpageflags, buf + p * page_size);
			if (ksm)
				r->breaks += ret;
			fill_page(buf + p * page_size, next_random() % VOLATILE_CONTENTS + 1);
			r->writes++;
		}
		r->sharing_avg += sysfs_get(dir, "pages_sharing");
		samples++;
		next += VOLATILE_ROUND_US / 1e6;
		if (next > now())
			usleep((next - now()) * 1e6);
	}
	r->seconds = now() - t0;
	r->sharing_avg = r->sharing_avg / samples * page_size / (1 << 20);
	if (!ksm)
		r->breaks = sysfs_get(dir, "cow_breaks") - breaks0;
	reset(dir);
	close(pagemap);
	close(kpageflags);
}

static void volatile_report(const char *system, const struct vresult *r)
{
	printf("# %-18s %10ld %10ld %12.1f %16.3f %12.1f %d\n", system, r->writes,
	       r->breaks, r->breaks / r->seconds, (double)r->breaks / r->writes,
	       r->sharing_avg, r->converged);
	printf("BENCH\tvolatile\t%s\twrites\t%ld\n", system, r->writes);
	printf("BENCH\tvolatile\t%s\tbreaks\t%ld\n", system, r->breaks);
	printf("BENCH\tvolatile\t%s\tbreaks_per_s\t%.1f\n", system, r->breaks / r->seconds);
	printf("BENCH\tvolatile\t%s\tbreaks_per_write\t%.3f\n", system,
	       (double)r->breaks / r->writes);
	printf("BENCH\tvolatile\t%s\tsharing_mib_avg\t%.1f\n", system, r->sharing_avg);
	printf("BENCH\tvolatile\t%s\tconverged\t%d\n", system, r->converged);
}

static void run_volatile(size_t size, double seconds, long pages_to_scan)
{
	const char *ksm = "/sys/kernel/mm/ksm", *cb = COWBUF_SYSFS_DIR;
	struct vresult rk, rc, rn;
	long backoff;
	char *buf;
	int dev, fd, ret;

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap", errno);
	reset(ksm);
	if (madvise(buf, size, MADV_MERGEABLE))
		die("MADV_MERGEABLE", errno);
	volatile_run(ksm, buf, size / page_size, seconds, pages_to_scan, 1, &rk);
	munmap(buf, size);

	dev = cowbuf_open();
	if (dev < 0)
		die(COWBUF_DEV_PATH, dev);
	backoff = sysfs_get(cb, "max_backoff");
	reset(cb);
	for (int nobackoff = 0; nobackoff < 2; nobackoff++) {
		knob(cb, "max_backoff", nobackoff ? 0 : backoff);
		fd = cowbuf_region_create(dev, size,
					  COWBUF_REGION_MERGEABLE | COWBUF_FD_CLOEXEC);
		if (fd < 0)
			die("region create", fd);
		ret = cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&buf);
		if (ret)
			die("region mmap", ret);
		volatile_run(cb, buf, size / page_size, seconds, pages_to_scan, 0,
			     nobackoff ? &rn : &rc);
		munmap(buf, size);
		close(fd);
	}
	knob(cb, "max_backoff", backoff);
	close(dev);

	printf("# volatile: %zu MiB of %d contents, ", size >> 20, VOLATILE_CONTENTS);
	printf("a random quarter rewritten every %d ms for %.0f s; pages_to_scan %ld, ",
	       VOLATILE_ROUND_US / 1000, seconds, pages_to_scan);
	printf("sleep_millisecs 20\n");
	printf("# %-18s %10s %10s %12s %16s %12s %s\n", "system", "writes", "breaks",
	       "breaks_per_s", "breaks_per_write", "shared_MiB", "converged");
	volatile_report("ksm", &rk);
	volatile_report("cowbuf", &rc);
	volatile_report("cowbuf-nobackoff", &rn);
}

int main(int argc, char **argv)
{
	size_t size = (argc > 1 ? strtoull(argv[1], NULL, 0) : 256) << 20;
	long pages_to_scan = argc > 2 ? strtol(argv[2], NULL, 0) : 1000;
	size_t vsize = (argc > 3 ? strtoull(argv[3], NULL, 0) : 64) << 20;
	double seconds = argc > 4 ? strtod(argv[4], NULL) : 10;

	page_size = sysconf(_SC_PAGESIZE);
	cowbuf_only = getenv("COWBUF_MERGE_BENCH_ONLY") &&
		      !strcmp(getenv("COWBUF_MERGE_BENCH_ONLY"), "cowbuf");
	run_mix(MIX_HALF, size, pages_to_scan);
	run_mix(MIX_TENTH, size, pages_to_scan);
	if (vsize && !cowbuf_only)
		run_volatile(vsize, seconds, pages_to_scan);
	return 0;
}
