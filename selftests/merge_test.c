// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: same-page merging - duplicates and zero pages, counters,
 * copy-on-write breaks, run=2 and range unmerge, one-pass convergence,
 * candidates that stay from one pass to the next, the
 * back-off of pages rewritten after a merge, the hash-only pass, the
 * sharing cap, trust domains, knobs, races with writers, and transfers of
 * merged pages. Needs root (the knobs).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define NR_PAGES	64

static int knob_write(const char *dir, const char *name, const char *val)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static long monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* Note in @longest the time since *@last, if it is the longest yet. */
static void note_gap(atomic_long *longest, long *last)
{
	long t = monotonic_us();

	if (t - *last > atomic_load(longest))
		atomic_store(longest, t - *last);
	*last = t;
}

static void fill_page(char *p, uint64_t seed)
{
	pattern_fill(p, PAGE, seed);
}

static int merge_info(int fd, struct cowbuf_merge_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, COWBUF_IOC_MERGE_INFO, info) ? -errno : 0;
}

static long shared_pages(int fd)
{
	struct cowbuf_merge_info info;

	return merge_info(fd, &info) ? -1 : (long)info.shared_pages;
}

static int merge_range(int fd, void *addr, size_t len, uint32_t flags)
{
	struct cowbuf_range r = { .addr = (uintptr_t)addr, .length = len, .flags = flags };

	return ioctl(fd, COWBUF_IOC_MERGE, &r) ? -errno : 0;
}

FIXTURE(merge) {
	int dev;
	int fd;
	char *map;
	size_t size;
	long frames_before;
	long saved[6];
};

#define NR_KNOBS 6
static const char *const knob_names[NR_KNOBS] = {
	"run", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "merge_across_users",
	"max_backoff",
};

/* The measurement switch, in debugfs (not a knob of the sysfs ABI). */
static int hash_only_set(long mode)
{
	return sysfs_write_long(COWBUF_DEBUGFS_DIR, "hash_only", mode);
}

FIXTURE_SETUP(merge)
{
	int i;

	for (i = 0; i < NR_KNOBS; i++)
		self->saved[i] = knob_get(knob_names[i]);
	ASSERT_EQ(0, knob_set("run", 0));
	ASSERT_EQ(0, knob_set("pages_to_scan", 1000));
	ASSERT_EQ(0, knob_set("sleep_millisecs", 0));
	self->frames_before = cowbuf_counter("frames");
	self->size = NR_PAGES * PAGE;
	ASSERT_EQ(0, open_mapped_region(&self->dev, &self->fd, &self->map, self->size,
					COWBUF_REGION_MERGEABLE));
}

FIXTURE_TEARDOWN(merge)
{
	int i;

	knob_set("run", 0);
	close_mapped_region(self->dev, self->fd, self->map, self->size);
	for (i = NR_KNOBS - 1; i >= 0; i--)
		knob_set(knob_names[i], self->saved[i]);
	hash_only_set(0);
	EXPECT_EQ(self->frames_before, cowbuf_counter("frames"));
	/* Nothing else merges while the tests run: no merged frame is left. */
	EXPECT_EQ(0, knob_get("pages_shared"));
	EXPECT_EQ(0, knob_get("pages_sharing"));
}

/* 8 groups of 4 identical pages, then 32 unique pages. */
static void fill_groups(char *map)
{
	int i;

	for (i = 0; i < 32; i++)
		fill_page(map + i * PAGE, 1000 + i / 4);
	for (i = 32; i < NR_PAGES; i++)
		fill_page(map + i * PAGE, 2000 + i);
}

static bool groups_intact(char *map)
{
	int i;

	for (i = 0; i < 32; i++)
		if (pattern_check(map + i * PAGE, PAGE, 1000 + i / 4) != -1)
			return false;
	for (i = 32; i < NR_PAGES; i++)
		if (pattern_check(map + i * PAGE, PAGE, 2000 + i) != -1)
			return false;
	return true;
}

TEST_F(merge, duplicates_merge_and_counters_match)
{
	long frames, scanned = knob_get("pages_scanned");

	fill_groups(self->map);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(8, knob_get("pages_shared"));
	EXPECT_EQ(24, knob_get("pages_sharing"));
	EXPECT_EQ(frames - 24, cowbuf_counter("frames"));
	EXPECT_EQ(32, shared_pages(self->fd));
	EXPECT_GE(knob_get("pages_scanned") - scanned, NR_PAGES);
	EXPECT_TRUE(groups_intact(self->map));
	/* Still converged later: nothing unmerges by itself. */
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(frames - 24, cowbuf_counter("frames"));
	EXPECT_TRUE(groups_intact(self->map));
}

/*
 * Nothing but this fixture's region is mergeable and the scanner was
 * stopped while it was filled, so the first pass that ends after run=1
 * covered all of it.
 */
TEST_F(merge, duplicates_merge_in_one_pass)
{
	long frames;

	fill_groups(self->map);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(1));
	EXPECT_EQ(32, shared_pages(self->fd));
	EXPECT_EQ(frames - 24, cowbuf_counter("frames"));
	EXPECT_TRUE(groups_intact(self->map));
}

/*
 * Write 8 unique pages from @seed at @map, start the scanner, and see them
 * become the only candidates once two passes ended.
 */
static bool eight_candidates(char *map, uint64_t seed)
{
	int i;

	for (i = 0; i < 8; i++)
		fill_page(map + i * PAGE, seed + i);
	return !knob_set("run", 1) && wait_full_scans(2) && knob_get("pages_unshared") == 8;
}

/*
 * A page that matched nothing stays a candidate from one pass to the next,
 * unread: a copy of it written passes later merges with it, and the
 * candidates are counted the same in every pass.
 */
TEST_F(merge, a_candidate_of_an_earlier_pass_merges_with_a_later_copy)
{
	long frames;
	int i;

	ASSERT_TRUE(eight_candidates(self->map, 400));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(8, knob_get("pages_unshared"));
	EXPECT_EQ(0, shared_pages(self->fd));
	frames = cowbuf_counter("frames");
	fill_page(self->map + 40 * PAGE, 403);
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(2, shared_pages(self->fd));
	EXPECT_EQ(7, knob_get("pages_unshared"));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(-1, pattern_check(self->map + i * PAGE, PAGE, 400 + i));
	EXPECT_EQ(-1, pattern_check(self->map + 40 * PAGE, PAGE, 403));
}

/* A candidate whose slot is decommitted leaves the table by the pass end. */
TEST_F(merge, candidates_of_decommitted_pages_are_dropped)
{
	ASSERT_TRUE(eight_candidates(self->map, 450));
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, 4 * PAGE));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(4, knob_get("pages_unshared"));
	/* A copy of a decommitted page has nothing to merge with. */
	fill_page(self->map + 40 * PAGE, 450);
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(0, shared_pages(self->fd));
	EXPECT_TRUE(all_zero(self->map, 4 * PAGE));
}

/*
 * A candidate of a range that leaves merging is no partner for a copy of it
 * in a range that stays.
 */
TEST_F(merge, a_range_that_leaves_merging_is_no_partner)
{
	struct cowbuf_merge_info info;
	long frames;

	ASSERT_TRUE(eight_candidates(self->map, 500));
	ASSERT_EQ(0, merge_range(self->fd, self->map, 8 * PAGE, COWBUF_MERGE_DISABLE));
	frames = cowbuf_counter("frames");
	fill_page(self->map + 40 * PAGE, 500);
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(0, shared_pages(self->fd));
	EXPECT_EQ(1, knob_get("pages_unshared"));
	EXPECT_EQ(frames + 1, cowbuf_counter("frames"));
	ASSERT_EQ(0, merge_info(self->fd, &info));
	EXPECT_EQ(NR_PAGES - 8, info.mergeable_pages);
	EXPECT_EQ(-1, pattern_check(self->map, PAGE, 500));
	EXPECT_EQ(-1, pattern_check(self->map + 40 * PAGE, PAGE, 500));
}

/*
 * A candidate written since it was hashed, and write-protected because a
 * page of an earlier chunk matched its old hash, is hashed again: it merges
 * with a copy of what it holds now. The first 34 pages fill the first chunk
 * of the scan (COWBUF_SCAN_CHUNK, 32), so that the page matching the old
 * hash (page 0) is scanned a chunk before the candidate (page 40).
 */
TEST_F(merge, a_candidate_protected_for_a_partner_is_hashed_again)
{
	char *old_copy = self->map, *cand = self->map + 40 * PAGE;
	char *new_copy = self->map + 41 * PAGE;
	int i;

	for (i = 1; i < 34; i++)
		fill_page(self->map + i * PAGE, 700 + i);
	fill_page(cand, 800);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(2));
	ASSERT_EQ(0, knob_set("run", 0));
	ASSERT_EQ(34, knob_get("pages_unshared"));

	fill_page(cand, 801);
	fill_page(old_copy, 800);
	fill_page(new_copy, 801);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(2, shared_pages(self->fd));
	EXPECT_EQ(-1, pattern_check(old_copy, PAGE, 800));
	EXPECT_EQ(-1, pattern_check(cand, PAGE, 801));
	EXPECT_EQ(-1, pattern_check(new_copy, PAGE, 801));
}

/*
 * hash_only=@mode (1: hash, 2: hash and compare each page with itself)
 * reads every committed page of the region, and merges and protects nothing;
 * back at 0, everything merges in the next pass.
 */
static void hash_only_pass(struct __test_metadata *_metadata, char *map, int fd,
			   int mode)
{
	long frames, scanned = knob_get("pages_scanned");

	fill_groups(map);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, hash_only_set(mode));
	ASSERT_EQ(mode, sysfs_read_long(COWBUF_DEBUGFS_DIR, "hash_only"));
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_GE(knob_get("pages_scanned") - scanned, NR_PAGES);
	EXPECT_EQ(0, shared_pages(fd));
	EXPECT_EQ(0, knob_get("pages_shared"));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	/* Nothing was write-protected: writes take no fault and are kept. */
	fill_page(map + 40 * PAGE, 1000);
	fill_page(map + 40 * PAGE, 2040);
	/* Back to merging: everything merges in the next pass. */
	ASSERT_EQ(0, hash_only_set(0));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(32, shared_pages(fd));
	EXPECT_TRUE(groups_intact(map));
}

TEST_F(merge, hash_only_reads_and_merges_nothing)
{
	hash_only_pass(_metadata, self->map, self->fd, 1);
}

TEST_F(merge, hash_and_compare_only_reads_and_merges_nothing)
{
	hash_only_pass(_metadata, self->map, self->fd, 2);
}

struct same_writer {
	char *page;
	uint64_t word;
	atomic_int stop;
	atomic_long writes;
	atomic_long longest_gap_us;
};

/*
 * Write the page's first word with the value it already holds; note the
 * longest time between two writes.
 */
static void *rewrite_same(void *arg)
{
	struct same_writer *r = arg;
	long last = monotonic_us();

	while (!atomic_load(&r->stop)) {
		*(volatile uint64_t *)r->page = r->word;
		atomic_fetch_add(&r->writes, 1);
		note_gap(&r->longest_gap_us, &last);
	}
	return NULL;
}

#define REWRITE_PASS_MS	50

/*
 * Page 0 is rewritten with its own bytes, over and over, after it merged:
 * its hash never changes, so a checksum filter (KSM's) would merge it again
 * every pass; the back-off keeps it out after the first break until the
 * writes stop, and then it merges again. A writer that stood still for a
 * pass (a loaded host can stop a vCPU for that long) let the page settle,
 * and merging it then was right: such an attempt proves nothing and is made
 * again, three times at most.
 */
TEST_F(merge, a_page_rewritten_after_a_merge_backs_off_then_merges_again)
{
	long backoff, shared, breaks, gap = 0, max_backoff = knob_get("max_backoff");
	struct cowbuf_merge_info info;
	pthread_t thread;
	int attempt;

	for (attempt = 1; attempt <= 3; attempt++) {
		struct same_writer r = { .page = self->map };

		if (attempt > 1) {
			/* Forget the back-off the last attempt left. */
			ASSERT_EQ(0, knob_set("max_backoff", 0));
			ASSERT_EQ(0, knob_set("run", 1));
			ASSERT_TRUE(wait_full_scans(2));
			ASSERT_EQ(0, knob_set("max_backoff", max_backoff));
		}
		ASSERT_EQ(0, knob_set("run", 2));
		fill_groups(self->map);
		r.word = *(uint64_t *)self->map;
		ASSERT_EQ(0, merge_info(self->fd, &info));
		breaks = info.cow_breaks;
		ASSERT_EQ(0, knob_set("sleep_millisecs", REWRITE_PASS_MS));
		ASSERT_EQ(0, knob_set("run", 1));
		/* The first pass may start where the last attempt's stopped. */
		ASSERT_TRUE(wait_full_scans(2));
		ASSERT_EQ(32, shared_pages(self->fd));

		ASSERT_EQ(0, pthread_create(&thread, NULL, rewrite_same, &r));
		ASSERT_TRUE(wait_full_scans(8));
		backoff = knob_get("pages_backoff");
		shared = shared_pages(self->fd);
		ASSERT_EQ(0, merge_info(self->fd, &info));
		breaks = info.cow_breaks - breaks;
		atomic_store(&r.stop, 1);
		pthread_join(thread, NULL);
		gap = atomic_load(&r.longest_gap_us);
		if (gap >= REWRITE_PASS_MS * 1000) {
			TH_LOG("attempt %d: the writer stood still for %ld ms", attempt,
			       gap / 1000);
			continue;
		}
		EXPECT_GT(backoff, 0);
		EXPECT_EQ(31, shared);
		/*
		 * The first write broke the merge; its wait and the passes it
		 * must then stay unwritten leave room for two more at most in
		 * eight passes.
		 */
		EXPECT_GE(breaks, 1);
		EXPECT_LE(breaks, 3);
		EXPECT_GT(atomic_load(&r.writes), 1000);

		/* Settled: after its back-off and a quiet pass it merges again. */
		ASSERT_TRUE(wait_full_scans(4));
		EXPECT_EQ(32, shared_pages(self->fd));
		EXPECT_TRUE(groups_intact(self->map));
		return;
	}
	SKIP(return, "the writer stood still for a pass in every attempt");
}

/*
 * A page rewritten with its own bytes every third pass: without back-off
 * (max_backoff=0) it merges again after every write, and every write breaks
 * it; with back-off each break makes it wait twice as long, so only a few
 * writes find it merged. The writes land between passes (20 ms apart).
 */
static long breaks_of_writes_every_third_pass(struct __test_metadata *_metadata,
					      char *map, int fd, int max_backoff)
{
	uint64_t word = *(uint64_t *)map;
	struct cowbuf_merge_info info;
	long before;
	int i;

	EXPECT_EQ(0, knob_set("max_backoff", max_backoff));
	/* Start merged. */
	EXPECT_TRUE(wait_full_scans(4));
	EXPECT_EQ(32, shared_pages(fd));
	EXPECT_EQ(0, merge_info(fd, &info));
	before = info.cow_breaks;
	for (i = 0; i < 20; i++) {
		*(volatile uint64_t *)map = word;
		EXPECT_TRUE(wait_full_scans(3));
	}
	EXPECT_EQ(0, merge_info(fd, &info));
	return info.cow_breaks - before;
}

TEST_F(merge, backoff_cuts_the_breaks_of_a_page_rewritten_every_few_passes)
{
	long without, with;

	fill_groups(self->map);
	ASSERT_EQ(0, knob_set("sleep_millisecs", 20));
	ASSERT_EQ(0, knob_set("run", 1));
	without = breaks_of_writes_every_third_pass(_metadata, self->map, self->fd, 0);
	with = breaks_of_writes_every_third_pass(_metadata, self->map, self->fd, 64);
	TH_LOG("20 writes, one every third pass: %ld breaks without back-off, %ld with",
	       without, with);
	EXPECT_GE(without, 18);
	EXPECT_LE(with, 8);
	EXPECT_TRUE(groups_intact(self->map));
}

/*
 * A merged frame whose other sharer broke away, then written in place by
 * its last holder, is still in the stable table until the pass ends; a page
 * with its new bytes, met in the next pass before that end, must not make
 * it a stable frame a second time (that took a second reference, which SEND
 * counted as a pin).
 */
TEST_F(merge, a_stable_frame_written_in_place_is_not_entered_twice)
{
	int ch;

	fill_groups(self->map);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(1));
	ASSERT_EQ(32, shared_pages(self->fd));
	ASSERT_EQ(0, knob_set("run", 0));
	/* Pages 0 and 1 of group 1000 break away, page 2 keeps the frame... */
	fill_page(self->map, 3000);
	fill_page(self->map + PAGE, 3001);
	fill_page(self->map + 3 * PAGE, 3002);
	/* ...and writes it in place, its last holder; page 40 matches it. */
	fill_page(self->map + 2 * PAGE, 4000);
	fill_page(self->map + 40 * PAGE, 4000);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(0, knob_set("run", 0));

	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	EXPECT_EQ(0, cowbuf_send(ch, self->map + 2 * PAGE, PAGE, COWBUF_MODE_SHARE));
	EXPECT_EQ(0, cowbuf_send(ch, self->map + 40 * PAGE, PAGE, COWBUF_MODE_SHARE));
	EXPECT_EQ(-1, pattern_check(self->map + 2 * PAGE, PAGE, 4000));
	EXPECT_EQ(-1, pattern_check(self->map + 40 * PAGE, PAGE, 4000));
	close(ch);
}

TEST_F(merge, zero_pages_are_released)
{
	struct cowbuf_merge_info info;
	long zero = knob_get("zero_pages");
	struct cowbuf_region_info rinfo;

	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 16 * PAGE));
	fill_page(self->map + 16 * PAGE, 7);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(zero + 16, knob_get("zero_pages"));
	ASSERT_EQ(0, cowbuf_region_info(self->fd, &rinfo));
	EXPECT_EQ(1, rinfo.committed_pages);
	ASSERT_EQ(0, merge_info(self->fd, &info));
	EXPECT_EQ(16, info.zero_pages);
	EXPECT_EQ(NR_PAGES, info.mergeable_pages);
	EXPECT_TRUE(all_zero(self->map, 16 * PAGE));
	/* Writable as before. */
	self->map[PAGE] = 1;
	EXPECT_EQ(1, self->map[PAGE]);
	EXPECT_EQ(-1, pattern_check(self->map + 16 * PAGE, PAGE, 7));
}

/*
 * The scanner guesses that a page is all zero from the first word of each
 * cache line, and checks the whole page before it releases it: pages zero
 * but for other words are kept, hashed, and merged like any other, in the
 * same pass.
 */
TEST_F(merge, pages_zero_at_each_cache_line_start_are_kept_and_merge)
{
	long zero = knob_get("zero_pages");
	long frames;
	int i;

	ASSERT_EQ(0, cowbuf_commit(self->fd, self->map, 5 * PAGE));
	/* Two pairs, a byte in the first cache line's second word. */
	for (i = 0; i < 4; i++)
		self->map[i * PAGE + 8] = 1 + i / 2;
	self->map[5 * PAGE - 1] = 3;
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(1));
	EXPECT_EQ(zero, knob_get("zero_pages"));
	EXPECT_EQ(2, knob_get("pages_shared"));
	EXPECT_EQ(2, knob_get("pages_sharing"));
	EXPECT_EQ(4, shared_pages(self->fd));
	EXPECT_EQ(frames - 2, cowbuf_counter("frames"));
	/* Settled: nothing changes in later passes. */
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(zero, knob_get("zero_pages"));
	EXPECT_EQ(frames - 2, cowbuf_counter("frames"));
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(1 + i / 2, self->map[i * PAGE + 8]);
		EXPECT_TRUE(all_zero(self->map + i * PAGE, 8));
		EXPECT_TRUE(all_zero(self->map + i * PAGE + 9, PAGE - 9));
	}
	EXPECT_EQ(3, self->map[5 * PAGE - 1]);
	EXPECT_TRUE(all_zero(self->map + 4 * PAGE, PAGE - 1));
}

TEST_F(merge, cow_break_isolates_the_writer)
{
	struct cowbuf_merge_info info;
	long breaks = knob_get("cow_breaks");
	long frames;
	int i;

	fill_groups(self->map);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(32, shared_pages(self->fd));
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 0));

	self->map[PAGE + 8] = 'w';
	EXPECT_EQ('w', self->map[PAGE + 8]);
	EXPECT_EQ(frames + 1, cowbuf_counter("frames"));
	EXPECT_EQ(breaks + 1, knob_get("cow_breaks"));
	ASSERT_EQ(0, merge_info(self->fd, &info));
	EXPECT_EQ(1, info.cow_breaks);
	/* The other three sharers keep their bytes. */
	for (i = 0; i < 4; i++)
		if (i != 1)
			EXPECT_EQ(-1, pattern_check(self->map + i * PAGE, PAGE, 1000));
	self->map[PAGE + 8] = 0;
	fill_page(self->map + PAGE, 1000);
	EXPECT_TRUE(groups_intact(self->map));
}

/*
 * pages_shared and pages_sharing follow every change of a merged frame's
 * sharers at once, with the scanner stopped: a write that breaks the
 * sharing, the last sharer but one breaking away, a decommit, run=2.
 */
TEST_F(merge, counters_follow_breaks_and_decommits_at_once)
{
	fill_groups(self->map);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(0, knob_set("run", 0));
	ASSERT_EQ(8, knob_get("pages_shared"));
	ASSERT_EQ(24, knob_get("pages_sharing"));
	/* Group 0: one page of four breaks away. */
	self->map[0] ^= 1;
	EXPECT_EQ(8, knob_get("pages_shared"));
	EXPECT_EQ(23, knob_get("pages_sharing"));
	/* Group 1: three break away; the last holds its frame alone. */
	self->map[4 * PAGE] ^= 1;
	self->map[5 * PAGE] ^= 1;
	self->map[6 * PAGE] ^= 1;
	EXPECT_EQ(7, knob_get("pages_shared"));
	EXPECT_EQ(20, knob_get("pages_sharing"));
	/* Group 2: two of its slots decommitted. */
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map + 8 * PAGE, 2 * PAGE));
	EXPECT_EQ(7, knob_get("pages_shared"));
	EXPECT_EQ(18, knob_get("pages_sharing"));
	EXPECT_EQ(25, shared_pages(self->fd));
	ASSERT_EQ(0, knob_set("run", 2));
	EXPECT_EQ(0, knob_get("pages_shared"));
	EXPECT_EQ(0, knob_get("pages_sharing"));
}

TEST_F(merge, run_2_unmerges_everything)
{
	long frames, scans;

	fill_groups(self->map);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(frames - 24, cowbuf_counter("frames"));
	ASSERT_EQ(0, knob_set("run", 2));
	EXPECT_EQ(2, knob_get("run"));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	EXPECT_EQ(0, shared_pages(self->fd));
	EXPECT_EQ(0, knob_get("pages_shared"));
	EXPECT_TRUE(groups_intact(self->map));
	/* run=2 stops the scanner. */
	scans = knob_get("full_scans");
	usleep(200 * 1000);
	EXPECT_EQ(scans, knob_get("full_scans"));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
}

TEST_F(merge, disabling_a_range_unmerges_it)
{
	struct cowbuf_merge_info info;
	long frames;

	fill_groups(self->map);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(32, shared_pages(self->fd));
	/* The first 4 groups leave merging. */
	ASSERT_EQ(0, merge_range(self->fd, self->map, 16 * PAGE, COWBUF_MERGE_DISABLE));
	EXPECT_EQ(16, shared_pages(self->fd));
	EXPECT_EQ(frames - 12, cowbuf_counter("frames"));
	ASSERT_EQ(0, merge_info(self->fd, &info));
	EXPECT_EQ(NR_PAGES - 16, info.mergeable_pages);
	/* And stay out. */
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(16, shared_pages(self->fd));
	EXPECT_TRUE(groups_intact(self->map));
	/* Back in: they merge again. */
	ASSERT_EQ(0, merge_range(self->fd, self->map, 16 * PAGE, COWBUF_MERGE_ENABLE));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(32, shared_pages(self->fd));
	EXPECT_EQ(frames - 24, cowbuf_counter("frames"));
}

TEST_F(merge, enabling_a_range_of_a_plain_region)
{
	char *map;
	int fd;

	fd = cowbuf_region_create(self->dev, 8 * PAGE, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, 8 * PAGE, 0, PROT_READ | PROT_WRITE, (void **)&map));
	for (int i = 0; i < 8; i++)
		fill_page(map + i * PAGE, 5);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(0, shared_pages(fd));
	ASSERT_EQ(0, merge_range(fd, map + 2 * PAGE, 4 * PAGE, COWBUF_MERGE_ENABLE));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(4, shared_pages(fd));
	munmap(map, 8 * PAGE);
	close(fd);
}

struct spinner {
	char *pages;
	int nr;
	atomic_int stop;
	atomic_long longest_gap_us;
};

/*
 * Keep the pages identical to each other but changing all the time; note the
 * longest time between two rounds of writes.
 */
static void *spin_writes(void *arg)
{
	struct spinner *s = arg;
	long last = monotonic_us();
	uint64_t k;
	int p;

	for (k = 1; !atomic_load(&s->stop); k++) {
		for (p = 0; p < s->nr; p++)
			*(volatile uint64_t *)(s->pages + p * PAGE) = k;
		note_gap(&s->longest_gap_us, &last);
	}
	return NULL;
}

/* Passes 50 ms apart: the spinner rewrites its pages many times each. */
#define SPIN_PASS_MS	50

/*
 * Pages 8..31 (6 groups of 4) merge; 0..7, identical to each other but
 * rewritten all the time, do not. Unless the spinner itself stood still for
 * a pass (a loaded host can stop a vCPU for that long): then its pages did
 * hold still, merging them was right, and the attempt proves nothing; it is
 * made again, three times at most.
 */
TEST_F(merge, volatile_pages_are_not_merged)
{
	long frames, gap = 0;
	pthread_t thread;
	int attempt;

	for (attempt = 1; attempt <= 3; attempt++) {
		struct spinner s = { .pages = self->map, .nr = 8 };
		long shared, merged;

		ASSERT_EQ(0, knob_set("run", 2));
		fill_groups(self->map);
		frames = cowbuf_counter("frames");
		ASSERT_EQ(0, pthread_create(&thread, NULL, spin_writes, &s));
		ASSERT_EQ(0, knob_set("sleep_millisecs", SPIN_PASS_MS));
		ASSERT_EQ(0, knob_set("run", 1));
		ASSERT_TRUE(wait_full_scans(5));
		shared = shared_pages(self->fd);
		merged = frames - cowbuf_counter("frames");
		atomic_store(&s.stop, 1);
		pthread_join(thread, NULL);
		gap = atomic_load(&s.longest_gap_us);
		if (gap < SPIN_PASS_MS * 1000) {
			EXPECT_GT(knob_get("pages_volatile"), 0);
			EXPECT_EQ(24, shared);
			EXPECT_EQ(18, merged);
			return;
		}
		TH_LOG("attempt %d: the spinner stood still for %ld ms", attempt, gap / 1000);
	}
	SKIP(return, "the spinner stood still for a pass in every attempt");
}

TEST_F(merge, sharing_cap_is_respected)
{
	int i;

	ASSERT_EQ(0, knob_set("max_page_sharing", 2));
	for (i = 0; i < 16; i++)
		fill_page(self->map + i * PAGE, 77);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(4));
	EXPECT_EQ(8, knob_get("pages_shared"));
	EXPECT_EQ(8, knob_get("pages_sharing"));
	EXPECT_EQ(16, shared_pages(self->fd));
	for (i = 0; i < 16; i++)
		EXPECT_EQ(-1, pattern_check(self->map + i * PAGE, PAGE, 77));
}

/*
 * A page that found only full stable frames stays a candidate, and tries
 * them again in later passes: once the cap is raised, it merges.
 */
TEST_F(merge, a_candidate_at_the_sharing_cap_merges_once_it_is_raised)
{
	int i;

	ASSERT_EQ(0, knob_set("max_page_sharing", 2));
	for (i = 0; i < 5; i++)
		fill_page(self->map + i * PAGE, 78);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(2, knob_get("pages_shared"));
	EXPECT_EQ(2, knob_get("pages_sharing"));
	EXPECT_EQ(1, knob_get("pages_unshared"));
	EXPECT_EQ(4, shared_pages(self->fd));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(4, shared_pages(self->fd));
	ASSERT_EQ(0, knob_set("max_page_sharing", 3));
	ASSERT_TRUE(wait_full_scans(2));
	EXPECT_EQ(2, knob_get("pages_shared"));
	EXPECT_EQ(3, knob_get("pages_sharing"));
	EXPECT_EQ(0, knob_get("pages_unshared"));
	EXPECT_EQ(5, shared_pages(self->fd));
	for (i = 0; i < 5; i++)
		EXPECT_EQ(-1, pattern_check(self->map + i * PAGE, PAGE, 78));
}

/* A page somebody holds a reference to (here a pipe) is never merged. */
TEST_F(merge, pinned_pages_are_not_merged)
{
	struct iovec iov = { .iov_base = self->map + 2 * PAGE, .iov_len = PAGE };
	char *sink = malloc(PAGE);
	int pipefd[2];

	ASSERT_NE(NULL, sink);
	fill_groups(self->map);
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ((ssize_t)PAGE, vmsplice(pipefd[1], &iov, 1, 0));
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	/* The first group merges three of its four pages, not the pinned one. */
	EXPECT_EQ(31, shared_pages(self->fd));
	EXPECT_EQ(23, knob_get("pages_sharing"));
	/* Released, it merges too. */
	ASSERT_EQ((ssize_t)PAGE, read(pipefd[0], sink, PAGE));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(32, shared_pages(self->fd));
	EXPECT_TRUE(groups_intact(self->map));
	close(pipefd[0]);
	close(pipefd[1]);
	free(sink);
}

/*
 * A merged frame spliced into a pipe: SEND hands over a share of it (a pin
 * on a frame shared copy-on-write is no EBUSY), and the pipe keeps the bytes
 * it took even when the holder left with the frame last writes: that write
 * copies too.
 */
TEST_F(merge, a_pinned_merged_frame_keeps_its_bytes)
{
	struct iovec iov = { .iov_base = self->map, .iov_len = PAGE };
	char *sink = malloc(PAGE), *dst;
	int pipefd[2], ch, dst_fd;
	long breaks;

	ASSERT_NE(NULL, sink);
	fill_groups(self->map);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(0, knob_set("run", 0));
	ASSERT_EQ(32, shared_pages(self->fd));
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ((ssize_t)PAGE, vmsplice(pipefd[1], &iov, 1, 0));

	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	dst_fd = cowbuf_region_create(self->dev, PAGE, 0);
	ASSERT_GE(dst_fd, 0);
	ASSERT_EQ(0, cowbuf_map(dst_fd, PAGE, 0, PROT_READ | PROT_WRITE, (void **)&dst));
	ASSERT_EQ(0, cowbuf_send(ch, self->map + PAGE, PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_recv(ch, dst, PAGE, NULL, NULL));
	EXPECT_EQ(-1, pattern_check(dst, PAGE, 1000));

	/* The receiver is left the frame's only holder, and writes it. */
	ASSERT_EQ(0, cowbuf_decommit(self->fd, self->map, 4 * PAGE));
	breaks = knob_get("cow_breaks");
	memset(dst, 'r', PAGE);
	EXPECT_EQ(breaks, knob_get("cow_breaks"));
	EXPECT_EQ((ssize_t)PAGE, read(pipefd[0], sink, PAGE));
	EXPECT_EQ(-1, pattern_check(sink, PAGE, 1000));
	EXPECT_EQ('r', dst[PAGE - 1]);

	munmap(dst, PAGE);
	close(dst_fd);
	close(ch);
	close(pipefd[0]);
	close(pipefd[1]);
	free(sink);
}

TEST_F(merge, knobs_are_validated)
{
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "run", "3"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "run", "-1"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "run", "one"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "pages_to_scan", "0"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "sleep_millisecs", "60001"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "max_page_sharing", "1"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "merge_across_users", "2"));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_DEBUGFS_DIR, "hash_only", "3"));
	/* A measurement switch, not part of the sysfs ABI. */
	EXPECT_EQ(-1, access(COWBUF_SYSFS_DIR "/hash_only", F_OK));
	EXPECT_EQ(-EINVAL, knob_write(COWBUF_SYSFS_DIR, "max_backoff", "65537"));
	EXPECT_EQ(-EACCES, knob_write(COWBUF_SYSFS_DIR, "pages_backoff", "1"));
	EXPECT_EQ(-EACCES, knob_write(COWBUF_SYSFS_DIR, "pages_shared", "1"));
	EXPECT_EQ(0, knob_get("run"));
	EXPECT_EQ(1000, knob_get("pages_to_scan"));
	EXPECT_EQ(0, knob_write(COWBUF_SYSFS_DIR, "sleep_millisecs", "15"));
	EXPECT_EQ(15, knob_get("sleep_millisecs"));
}

TEST_F(merge, merge_ioctls_validate_arguments)
{
	struct cowbuf_merge_info info = { .flags = 1 };
	struct cowbuf_range r = { .addr = (uintptr_t)self->map, .length = PAGE };
	int ch;

	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_MERGE_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	info.flags = 0;
	info.pad = 1;
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_MERGE_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-EINVAL, merge_range(self->fd, self->map, PAGE, 0));
	EXPECT_EQ(-EINVAL, merge_range(self->fd, self->map, PAGE,
				       COWBUF_MERGE_ENABLE | COWBUF_MERGE_DISABLE));
	EXPECT_EQ(-EINVAL, merge_range(self->fd, self->map, PAGE, 4));
	EXPECT_EQ(-EINVAL, merge_range(self->fd, self->map + 1, PAGE, COWBUF_MERGE_ENABLE));
	EXPECT_EQ(-EINVAL, merge_range(self->fd, self->map, self->size + PAGE,
				       COWBUF_MERGE_ENABLE));
	r.flags = COWBUF_MERGE_ENABLE;
	r.pad = 1;
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_MERGE, &r));
	EXPECT_EQ(EINVAL, errno);
	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	r.pad = 0;
	EXPECT_EQ(-1, ioctl(ch, COWBUF_IOC_MERGE, &r));
	EXPECT_EQ(ENOTTY, errno);
	close(ch);
	ASSERT_EQ(0, merge_info(self->fd, &info));
	EXPECT_EQ(NR_PAGES, info.mergeable_pages);
}

/*
 * A region has at most max_merge_ranges ranges (adjacent ones join); the
 * scanner still completes passes over a region with that many ranges over a
 * mostly empty 1 GiB reservation, and the region goes away promptly.
 */
TEST_F(merge, mergeable_ranges_are_capped_and_cheap_to_scan)
{
	long saved = cowbuf_param_get("max_merge_ranges");
	size_t size = 1UL << 30;
	struct cowbuf_merge_info info;
	int fd, i;
	char *map;

	ASSERT_GE(saved, 0);
	ASSERT_EQ(0, cowbuf_param_set("max_merge_ranges", 256));
	fd = cowbuf_region_create(self->dev, size, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&map));
	/* One committed page in each 4 MiB: the rest of every range is empty. */
	for (i = 0; i < 256; i++) {
		fill_page(map + (size_t)i * (4 << 20), 3000 + i);
		ASSERT_EQ(0, merge_range(fd, map + (size_t)i * (4 << 20), 512 * PAGE,
					 COWBUF_MERGE_ENABLE));
	}
	EXPECT_EQ(-ENOMEM, merge_range(fd, map + size - PAGE, PAGE, COWBUF_MERGE_ENABLE));
	/* Joining a neighbour adds no range; splitting one would. */
	EXPECT_EQ(0, merge_range(fd, map + 512 * PAGE, PAGE, COWBUF_MERGE_ENABLE));
	EXPECT_EQ(-ENOMEM, merge_range(fd, map + 8 * PAGE, PAGE, COWBUF_MERGE_DISABLE));
	/* Cutting a range at its end does not split it. */
	EXPECT_EQ(0, merge_range(fd, map + 512 * PAGE, PAGE, COWBUF_MERGE_DISABLE));
	ASSERT_EQ(0, merge_info(fd, &info));
	EXPECT_EQ(256 * 512, info.mergeable_pages);

	ASSERT_EQ(0, knob_set("pages_to_scan", 100));
	ASSERT_EQ(0, knob_set("run", 1));
	EXPECT_TRUE(wait_full_scans(3));
	ASSERT_EQ(0, knob_set("run", 0));
	munmap(map, size);
	close(fd);
	EXPECT_EQ(0, cowbuf_param_set("max_merge_ranges", saved));
}

TEST(idle_without_mergeable_memory)
{
	long saved_run = knob_get("run"), saved_sleep = knob_get("sleep_millisecs");
	long scanned, scans;
	int dev, fd;
	char *map;

	dev = cowbuf_open();
	ASSERT_GE(dev, 0);
	fd = cowbuf_region_create(dev, 16 * PAGE, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, cowbuf_map(fd, 16 * PAGE, 0, PROT_READ | PROT_WRITE, (void **)&map));
	memset(map, 1, 16 * PAGE);
	ASSERT_EQ(0, knob_set("sleep_millisecs", 0));
	ASSERT_EQ(0, knob_set("run", 1));
	scanned = knob_get("pages_scanned");
	scans = knob_get("full_scans");
	usleep(300 * 1000);
	EXPECT_EQ(scanned, knob_get("pages_scanned"));
	EXPECT_EQ(scans, knob_get("full_scans"));
	knob_set("run", saved_run);
	knob_set("sleep_millisecs", saved_sleep);
	munmap(map, 16 * PAGE);
	close(fd);
	close(dev);
}

/* A region of another user, with the same content as ours. */
static pid_t other_user_region(int ready_fd, int go_fd)
{
	char *map;
	pid_t pid = fork();
	int dev, fd, i;
	char c;

	if (pid)
		return pid;
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		_exit(1);
	dev = cowbuf_open();
	fd = cowbuf_region_create(dev, 8 * PAGE, COWBUF_REGION_MERGEABLE);
	if (dev < 0 || fd < 0 || cowbuf_map(fd, 8 * PAGE, 0, PROT_READ | PROT_WRITE,
					    (void **)&map))
		_exit(2);
	for (i = 0; i < 8; i++)
		fill_page(map + i * PAGE, 300 + i);
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1)
		_exit(3);
	for (i = 0; i < 8; i++)
		if (pattern_check(map + i * PAGE, PAGE, 300 + i) != -1)
			_exit(4);
	_exit(0);
}

TEST_F(merge, users_do_not_merge_unless_allowed)
{
	int ready[2], go[2], i, status;
	long frames;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = other_user_region(ready[1], go[0]);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	for (i = 0; i < 8; i++)
		fill_page(self->map + i * PAGE, 300 + i);
	frames = cowbuf_counter("frames");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(0, knob_get("pages_shared"));
	EXPECT_EQ(frames, cowbuf_counter("frames"));
	ASSERT_EQ(0, knob_set("merge_across_users", 1));
	ASSERT_TRUE(wait_full_scans(3));
	EXPECT_EQ(8, knob_get("pages_shared"));
	EXPECT_EQ(frames - 8, cowbuf_counter("frames"));
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(-1, pattern_check(self->map + i * PAGE, PAGE, 300 + i));
}

struct rewriter {
	pthread_t thread;
	char *pages;
	int id;
	atomic_int *stop;
	long errors;
	long rounds;
};

/*
 * Rewrite 8 pages with contents other threads write too, so that the
 * scanner keeps merging them and the writers keep breaking copy-on-write;
 * check every page right after writing it and once more at the end.
 */
static void *rewrite_loop(void *arg)
{
	struct rewriter *w = arg;
	uint64_t seed[8];
	int p;

	while (!atomic_load(w->stop)) {
		for (p = 0; p < 8; p++) {
			seed[p] = 500 + (w->rounds + p) % 3;
			fill_page(w->pages + p * PAGE, seed[p]);
		}
		for (p = 0; p < 8; p++)
			if (pattern_check(w->pages + p * PAGE, PAGE, seed[p]) != -1)
				w->errors++;
		w->rounds++;
		/* Leave the pages alone for a while: let them merge. */
		if (w->rounds % 4 == 0)
			usleep(2000);
	}
	for (p = 0; p < 8; p++)
		if (pattern_check(w->pages + p * PAGE, PAGE, seed[p]) != -1)
			w->errors++;
	return NULL;
}

TEST_F(merge, writers_racing_the_scanner_lose_nothing)
{
	struct rewriter w[4];
	atomic_int stop = 0;
	long merged_before = knob_get("cow_breaks");
	time_t end;
	int t;

	ASSERT_EQ(0, knob_set("pages_to_scan", 1 << 20));
	ASSERT_EQ(0, knob_set("run", 1));
	for (t = 0; t < 4; t++) {
		w[t] = (struct rewriter){ .pages = self->map + t * 8 * PAGE, .id = t,
					  .stop = &stop };
		ASSERT_EQ(0, pthread_create(&w[t].thread, NULL, rewrite_loop, &w[t]));
	}
	end = time(NULL) + 3;
	while (time(NULL) < end)
		usleep(50000);
	atomic_store(&stop, 1);
	for (t = 0; t < 4; t++) {
		pthread_join(w[t].thread, NULL);
		EXPECT_EQ(0, w[t].errors) TH_LOG("writer %d: %ld bad pages in %ld rounds",
						 t, w[t].errors, w[t].rounds);
		EXPECT_GT(w[t].rounds, 0);
	}
	/* The race was real: merged pages were written again. */
	EXPECT_GT(knob_get("cow_breaks"), merged_before);
}

TEST_F(merge, merged_pages_travel_and_stay_isolated)
{
	int ch, dst_fd;
	char *dst;

	fill_groups(self->map);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(32, shared_pages(self->fd));
	ASSERT_EQ(0, knob_set("run", 0));

	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	dst_fd = cowbuf_region_create(self->dev, self->size, 0);
	ASSERT_GE(dst_fd, 0);
	ASSERT_EQ(0, cowbuf_map(dst_fd, self->size, 0, PROT_READ | PROT_WRITE, (void **)&dst));

	/* SHARE the first two groups, MOVE the next two. */
	ASSERT_EQ(0, cowbuf_send(ch, self->map, 8 * PAGE, COWBUF_MODE_SHARE));
	ASSERT_EQ(0, cowbuf_send(ch, self->map + 8 * PAGE, 8 * PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_recv(ch, dst, 8 * PAGE, NULL, NULL));
	ASSERT_EQ(0, cowbuf_recv(ch, dst + 8 * PAGE, 8 * PAGE, NULL, NULL));
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(-1, pattern_check(dst + i * PAGE, PAGE, 1000 + i / 4));
	EXPECT_TRUE(all_zero(self->map + 8 * PAGE, 8 * PAGE));

	/* Writes on either side stay on that side. */
	dst[0] = 'd';
	self->map[PAGE] = 's';
	dst[9 * PAGE] = 'm';
	EXPECT_EQ(-1, pattern_check(self->map, PAGE, 1000));
	EXPECT_EQ(-1, pattern_check(dst + PAGE, PAGE, 1000));
	EXPECT_EQ(-1, pattern_check(dst + 8 * PAGE, PAGE, 1002));
	EXPECT_EQ(-1, pattern_check(dst + 10 * PAGE, PAGE, 1002));
	EXPECT_EQ('d', dst[0]);
	EXPECT_EQ('s', self->map[PAGE]);

	munmap(dst, self->size);
	close(dst_fd);
	close(ch);
}

/*
 * A stable frame that a SEND took is merged into no more: its table entry
 * names the user who merged it, and the frame may be another user's now.
 * Identical pages written later pair up on their own instead.
 */
TEST_F(merge, a_stable_frame_that_was_sent_takes_no_more_merges)
{
	int ch, dst_fd;
	char *dst;

	fill_page(self->map, 5000);
	fill_page(self->map + PAGE, 5000);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(0, knob_set("run", 0));
	ASSERT_EQ(2, shared_pages(self->fd));

	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	dst_fd = cowbuf_region_create(self->dev, PAGE, 0);
	ASSERT_GE(dst_fd, 0);
	ASSERT_EQ(0, cowbuf_map(dst_fd, PAGE, 0, PROT_READ | PROT_WRITE, (void **)&dst));
	ASSERT_EQ(0, cowbuf_send(ch, self->map + PAGE, PAGE, COWBUF_MODE_MOVE));
	ASSERT_EQ(0, cowbuf_recv(ch, dst, PAGE, NULL, NULL));

	/* Two more copies: they merge with each other, not into the sent frame. */
	fill_page(self->map + 2 * PAGE, 5000);
	fill_page(self->map + 3 * PAGE, 5000);
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(0, knob_set("run", 0));
	/* Page 0 shares with dst; pages 2 and 3 with each other. */
	EXPECT_EQ(3, shared_pages(self->fd));
	EXPECT_EQ(2, knob_get("pages_shared"));
	EXPECT_EQ(-1, pattern_check(dst, PAGE, 5000));

	munmap(dst, PAGE);
	close(dst_fd);
	close(ch);
}

/*
 * What the scanner allocates for a region - a hash block per 512 pages it
 * hashed, table entries - is charged to the memory cgroup of the region's
 * creator, not to nobody: a region of sparse pages costs its owner a block
 * per page.
 */
struct acct_case {
	int ready[2];
	int done[2];
};

static void hold_sparse_region(void *arg)
{
	struct acct_case *c = arg;
	size_t size = 1UL << 30;
	int dev, fd, i;
	char *map, x;

	if (enter_limited_cgroup("cowbuf-acct", "max"))
		_exit(10);
	dev = cowbuf_open();
	fd = cowbuf_region_create(dev, size, COWBUF_REGION_MERGEABLE);
	if (fd < 0 || cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&map))
		_exit(11);
	/* One page of its own in every 2 MiB: 512 pages, 512 hash blocks. */
	for (i = 0; i < 512; i++)
		fill_page(map + (size_t)i * (2 << 20), 6000 + i);
	if (write(c->ready[1], "r", 1) != 1 || read(c->done[0], &x, 1) != 1)
		_exit(12);
	_exit(0);
}

TEST_F(merge, table_memory_is_charged_to_the_regions_cgroup)
{
	struct acct_case c;
	long before, after;
	int status;
	pid_t pid;
	char x;

	if (access("/sys/fs/cgroup/cgroup.subtree_control", W_OK))
		SKIP(return, "needs cgroup v2 at /sys/fs/cgroup");
	ASSERT_EQ(0, pipe(c.ready));
	ASSERT_EQ(0, pipe(c.done));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid)
		hold_sparse_region(&c);
	ASSERT_EQ(1, read(c.ready[0], &x, 1));
	before = sysfs_read_long("/sys/fs/cgroup/cowbuf-acct", "memory.current");
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(2));
	ASSERT_EQ(0, knob_set("run", 0));
	after = sysfs_read_long("/sys/fs/cgroup/cowbuf-acct", "memory.current");
	TH_LOG("the region's cgroup: %ld bytes before the scan, %ld after", before, after);
	/* 512 blocks of a page each, at least. */
	EXPECT_GE(after - before, (long)(512 * PAGE));
	ASSERT_EQ(1, write(c.done[1], "d", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	rmdir("/sys/fs/cgroup/cowbuf-acct");
}

#define CROWD_PAGES	4096

/*
 * The scanner holds references to the frames it looks at; they are no pin.
 * A crowd of 4096 pages shares one frame with the fixture's region, and the
 * scanner walks the crowd at full speed while the fixture's pages are sent
 * and received 100 times: SEND must never see EBUSY. (The false EBUSY
 * cowbuf-stress found came from such references held longer than SEND
 * waited; cowbuf_stress.sh is its regression test.)
 */
TEST_F(merge, send_is_not_busy_while_the_scanner_holds_its_frames)
{
	size_t crowd_size = CROWD_PAGES * PAGE;
	int crowd_fd, ch, dst_fd, round, busy = 0, i, ret;
	char *crowd, *dst;

	crowd_fd = cowbuf_region_create(self->dev, crowd_size, COWBUF_REGION_MERGEABLE);
	ASSERT_GE(crowd_fd, 0);
	ASSERT_EQ(0, cowbuf_map(crowd_fd, crowd_size, 0, PROT_READ | PROT_WRITE,
				(void **)&crowd));
	for (i = 0; i < CROWD_PAGES; i++)
		fill_page(crowd + i * PAGE, 77);
	for (i = 0; i < NR_PAGES; i++)
		fill_page(self->map + i * PAGE, 77);
	ASSERT_EQ(0, knob_set("max_page_sharing", 1 << 20));
	ASSERT_EQ(0, knob_set("pages_to_scan", 100000));
	ASSERT_EQ(0, knob_set("run", 1));
	ASSERT_TRUE(wait_full_scans(3));
	ASSERT_EQ(1, knob_get("pages_shared"));
	ASSERT_EQ(CROWD_PAGES + NR_PAGES - 1, knob_get("pages_sharing"));

	ch = cowbuf_channel_create(self->dev, 0);
	ASSERT_GE(ch, 0);
	dst_fd = cowbuf_region_create(self->dev, self->size, 0);
	ASSERT_GE(dst_fd, 0);
	ASSERT_EQ(0, cowbuf_map(dst_fd, self->size, 0, PROT_READ | PROT_WRITE, (void **)&dst));
	for (round = 0; round < 100; round++) {
		ret = cowbuf_send(ch, self->map, self->size, COWBUF_MODE_SHARE);
		if (ret == -EBUSY) {
			busy++;
			continue;
		}
		ASSERT_EQ(0, ret);
		ASSERT_EQ(0, cowbuf_recv(ch, dst, self->size, NULL, NULL));
	}
	EXPECT_EQ(0, busy);
	EXPECT_EQ(-1, pattern_check(dst, PAGE, 77));
	ASSERT_EQ(0, knob_set("run", 0));

	munmap(dst, self->size);
	close(dst_fd);
	close(ch);
	munmap(crowd, crowd_size);
	close(crowd_fd);
}

TEST(tracepoints_exist)
{
	static const char *const events[] = {
		"cowbuf_scan_batch", "cowbuf_merge", "cowbuf_cow_break",
	};
	char path[128];
	unsigned int i;

	if (access("/sys/kernel/tracing/events", F_OK))
		SKIP(return, "tracefs is not mounted at /sys/kernel/tracing");
	for (i = 0; i < ARRAY_SIZE(events); i++) {
		snprintf(path, sizeof(path), "/sys/kernel/tracing/events/cowbuf/%s/format",
			 events[i]);
		EXPECT_EQ(0, access(path, R_OK)) TH_LOG("%s", path);
	}
}

int main(int argc, char **argv)
{
	cowbuf_test_require(true);
	return test_harness_run(argc, argv);
}
