// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf-stress: many processes moving, sharing, merging and checking pages.
 *
 *   cowbuf-stress [-s SEED] [-d SECONDS] [-p PAIRS] [-w WORKERS] [-t THREADS]
 *                 [-m MIB] [-k] [-K] [-P]
 *
 * PAIRS sender/receiver processes stream messages over a channel of their
 * own, MOVE and SHARE mixed; every fourth pair does so between huge regions
 * (COWBUF_REGION_HUGE), one or two 2 MiB frames a message. Every page of a
 * message carries a key; its bytes are a function of the key, key 0 being an
 * uncommitted (zero) page. Many keys recur across messages and processes, so
 * the merge scanner finds duplicates everywhere. The receiver checks every
 * byte of every message it gets, then writes over the pages (a COW break for
 * SHARE). The sender checks that a MOVE left its range reading zero, and that
 * a SHARE'd range still holds what it sent when it comes to reuse it: a
 * receiver's write must never show through.
 *
 * WORKERS processes of THREADS threads churn a region of their own, each
 * thread a slice it maps by itself: write keyed pages, check them, decommit
 * (zero), commit (no change), MADV_DONTNEED (no change), unmap and map again
 * (no change), stop and restart merging (no change), fork a child that
 * checks the slice and writes new keys the parent then checks.
 *
 * -k turns the scanner up (run=1, sleep_millisecs=0, pages_to_scan=100000)
 * and restores it at the end; -K kills a random process (a pair is killed
 * together) with SIGKILL every 200 ms or so and starts a new one; -P expects
 * memory pressure (a cgroup limit): ENOMEM from COMMIT/RECV, SIGBUS on a
 * write and OOM kills are counted and tolerated instead of failing the run.
 * SIGTERM or SIGINT ends the run early, as if its time was up. At the end
 * every process is gone and the module's counters of frames,
 * regions, channels and messages must be back to zero. Exit status 0 means
 * no byte was wrong and nothing unexpected happened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libcowbuf.h"
#include "tool-util.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define PAGE		4096UL
#define WORDS		(PAGE / sizeof(uint64_t))
#define MAX_MSG_PAGES	64
#define HUGE_FRAME	(2UL << 20)
#define MAX_MSG_FRAMES	2	/* huge frames in a huge pair's message */
#define MAX_HUGE_PAGES	(MAX_MSG_FRAMES * HUGE_FRAME / PAGE)
#define SEND_BUFS	4	/* a sender's buffers, reused round robin */
#define MAX_PROCS	64
#define MAX_THREADS	8
#define SCRIBBLE	0x5c5c5c5c5c5c5c5cull

/* What every process adds up, in a shared anonymous page. */
struct stats {
	atomic_int stop;
	atomic_ulong messages, moves, shares;
	atomic_ulong bytes_verified;
	atomic_ulong mismatches, unexpected;
	atomic_ulong ops, forks, remaps;
	atomic_ulong enomem, sigbus;
};

static struct stats *st;
static uint64_t seed;
static int pressure;
static size_t churn_bytes = 8UL << 20;
static int churn_threads = 2;

static volatile sig_atomic_t ended;
static int huge_pair;	/* this process is half of a huge pair */
static __thread sigjmp_buf bus_jmp;
static __thread volatile int bus_armed;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t rnd(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix(*state);
}

/*
 * A page's key: 0 (a zero page) one time in eight, one of 32 keys every
 * process uses half the time, else one of its own.
 */
static uint64_t pick_key(uint64_t r)
{
	switch (r % 8) {
	case 0:
		return 0;
	case 1 ... 4:
		return 1 + (r >> 8) % 32;
	default:
		return r | 1ull << 63;
	}
}

static void fill_page(uint64_t *p, uint64_t key)
{
	uint64_t w = key * 0x9e3779b97f4a7c15ull;
	size_t i;

	p[0] = key;
	for (i = 1; i < WORDS; i++)
		p[i] = w + i * 0xbf58476d1ce4e5b9ull;
}

/* Does the page hold what @key says? Key 0 is all zeroes. */
static int page_is(const uint64_t *p, uint64_t key)
{
	uint64_t w = key * 0x9e3779b97f4a7c15ull;
	size_t i;

	if (!key) {
		for (i = 0; i < WORDS; i++)
			if (p[i])
				return 0;
		return 1;
	}
	if (p[0] != key)
		return 0;
	for (i = 1; i < WORDS; i++)
		if (p[i] != w + i * 0xbf58476d1ce4e5b9ull)
			return 0;
	return 1;
}

/* No stdio here: this runs in children forked from threaded processes. */
static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (n > 0 && write(STDOUT_FILENO, buf, n) != n)
		atomic_fetch_add(&st->unexpected, 1);
}

static void check_page(const void *p, uint64_t key, const char *who)
{
	atomic_fetch_add(&st->bytes_verified, PAGE);
	if (page_is(p, key))
		return;
	atomic_fetch_add(&st->mismatches, 1);
	say("cowbuf-stress: MISMATCH in %s (pid %d): expected key %#llx, page starts %#llx %#llx\n",
	    who, getpid(), (unsigned long long)key,
	    (unsigned long long)((const uint64_t *)p)[0],
	    (unsigned long long)((const uint64_t *)p)[1]);
}

/* An error the run does not allow: ENOMEM only under -P. */
static int tolerate(const char *what, int err)
{
	if (err == -ENOMEM && pressure) {
		atomic_fetch_add(&st->enomem, 1);
		return 1;
	}
	atomic_fetch_add(&st->unexpected, 1);
	say("cowbuf-stress: %s (pid %d): unexpected %s\n", what, getpid(), strerror(-err));
	return 0;
}

static void on_sigbus(int sig)
{
	(void)sig;
	if (!bus_armed)
		abort();
	bus_armed = 0;
	siglongjmp(bus_jmp, 1);
}

/*
 * Write keyed pages; returns 0, or -1 when a write took SIGBUS (memory
 * pressure), in which case the pages are in an unknown state.
 */
static int write_pages(char *addr, const uint64_t *keys, size_t n, int region)
{
	size_t i;

	if (sigsetjmp(bus_jmp, 1)) {
		atomic_fetch_add(&st->sigbus, 1);
		if (!pressure) {
			atomic_fetch_add(&st->unexpected, 1);
			say("cowbuf-stress: unexpected SIGBUS (pid %d)\n", getpid());
		}
		return -1;
	}
	bus_armed = 1;
	for (i = 0; i < n; i++) {
		if (keys[i])
			fill_page((uint64_t *)(addr + i * PAGE), keys[i]);
		else if (page_is((void *)(addr + i * PAGE), 0))
			continue;
		else if (huge_pair)	/* no page of a huge frame decommits alone */
			memset(addr + i * PAGE, 0, PAGE);
		else
			cowbuf_decommit(region, addr + i * PAGE, PAGE);
	}
	bus_armed = 0;
	return 0;
}

static void on_term(int sig)
{
	(void)sig;
	ended = 1;
}

/*
 * Under -P the OOM killer is expected, but for the workers only: this
 * process keeps the score, and the run, alive.
 */
static void set_oom_score_adj(int adj)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "w");

	if (!f)
		return;
	fprintf(f, "%d\n", adj);
	fclose(f);
}

static int wait_fd(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	return poll(&pfd, 1, 100);
}

/* A worker that can't set up ends; under -P, ENOMEM is no failure. */
static void setup_failed(const char *what, int err)
{
	if (tolerate(what, err))
		exit(0);
	exit(3);
}

static void *map_region(int region, size_t len, off_t off)
{
	void *addr;
	int ret = cowbuf_map(region, len, off, PROT_READ | PROT_WRITE, &addr);

	if (ret)
		setup_failed("mmap", ret);
	return addr;
}

static int new_region(int dev, size_t len)
{
	int fd = cowbuf_region_create(dev, len, COWBUF_FD_CLOEXEC | COWBUF_REGION_MERGEABLE |
				      (huge_pair ? COWBUF_REGION_HUGE : 0));

	if (fd < 0)
		setup_failed("region", fd);
	return fd;
}

static int pair_is_huge(int pair)
{
	return pair % 4 == 3;
}

/*
 * The keys of the pages of message @seq of pair @pair, and its length in
 * pages. A huge pair's message is one or two frames whose pages repeat up
 * to MAX_MSG_PAGES keys.
 */
static size_t message_keys(int pair, uint64_t seq, uint64_t *keys)
{
	uint64_t r = mix(seed ^ mix((uint64_t)pair << 40 ^ seq));
	size_t n = 1 + r % MAX_MSG_PAGES, i, pages;

	for (i = 0; i < n; i++)
		keys[i] = pick_key(mix(r + i));
	if (!pair_is_huge(pair))
		return n;
	pages = (1 + (r >> 32) % MAX_MSG_FRAMES) * (HUGE_FRAME / PAGE);
	for (i = n; i < pages; i++)
		keys[i] = keys[i % n];
	return pages;
}

/* Bytes of one of a sender's or receiver's buffers. */
static size_t buf_bytes(void)
{
	return huge_pair ? MAX_MSG_FRAMES * HUGE_FRAME : MAX_MSG_PAGES * PAGE;
}

static uint32_t message_mode(int pair, uint64_t seq)
{
	return mix(seed + seq * 3 + pair) & 1 ? COWBUF_MODE_SHARE : COWBUF_MODE_MOVE;
}

static void sender(int dev, int chan, int pair, uint64_t first)
{
	static uint64_t keys[MAX_HUGE_PAGES], old[MAX_HUGE_PAGES];
	size_t lens[SEND_BUFS] = { 0 }, n, i, len, room;
	uint32_t modes[SEND_BUFS] = { 0 };
	uint64_t seqs[SEND_BUFS], seq;
	char *base;
	int region, ret;

	huge_pair = pair_is_huge(pair);
	room = buf_bytes();
	len = SEND_BUFS * room;
	region = new_region(dev, len);
	base = map_region(region, len, 0);
	for (seq = first; !atomic_load(&st->stop); seq++) {
		int b = seq % SEND_BUFS;
		char *buf = base + b * room;

		/* A SHARE'd buffer still holds what was sent, whatever the receiver wrote. */
		if (modes[b] == COWBUF_MODE_SHARE) {
			message_keys(pair, seqs[b], old);
			for (i = 0; i < lens[b]; i++)
				check_page(buf + i * PAGE, old[i], "send side, shared buffer");
		}
		n = message_keys(pair, seq, keys);
		if (seq & 2)
			cowbuf_decommit(region, buf, room);
		if (write_pages(buf, keys, n, region)) {
			cowbuf_decommit(region, buf, room);
			modes[b] = 0;
			seq--;
			usleep(1000);
			continue;
		}
		for (;;) {
			ret = cowbuf_send(chan, buf, n * PAGE, message_mode(pair, seq));
			if (ret != -EAGAIN || atomic_load(&st->stop))
				break;
			wait_fd(chan, POLLOUT);
		}
		if (ret == -EAGAIN)
			break;
		if (ret) {
			tolerate("send", ret);
			break;
		}
		modes[b] = message_mode(pair, seq);
		lens[b] = n;
		seqs[b] = seq;
		for (i = 0; i < n; i++)
			check_page(buf + i * PAGE, modes[b] == COWBUF_MODE_MOVE ? 0 : keys[i],
				   "send side, after SEND");
		atomic_fetch_add(&st->ops, 1);
	}
	exit(0);
}

static void receiver(int dev, int chan, int pair, uint64_t first)
{
	static uint64_t keys[MAX_HUGE_PAGES], scribble[MAX_HUGE_PAGES];
	uint64_t seq = first, length;
	size_t len, n, i, room;
	uint32_t mode;
	int region, ret;
	char *base;

	huge_pair = pair_is_huge(pair);
	room = buf_bytes();
	len = SEND_BUFS * room;
	region = new_region(dev, len);
	base = map_region(region, len, 0);
	while (!atomic_load(&st->stop)) {
		char *buf = base + (seq % SEND_BUFS) * room;

		ret = cowbuf_recv(chan, buf, room, &length, &mode);
		if (ret == -EAGAIN) {
			wait_fd(chan, POLLIN);
			continue;
		}
		if (ret) {
			if (tolerate("recv", ret))
				usleep(1000);
			else
				break;
			continue;
		}
		n = message_keys(pair, seq, keys);
		if (length != n * PAGE || mode != message_mode(pair, seq)) {
			atomic_fetch_add(&st->mismatches, 1);
			say("cowbuf-stress: MISMATCH pair %d message %llu: %llu bytes, mode %u\n",
			    pair, (unsigned long long)seq, (unsigned long long)length, mode);
			break;
		}
		for (i = 0; i < n; i++)
			check_page(buf + i * PAGE, keys[i], "receive side");
		atomic_fetch_add(&st->messages, 1);
		atomic_fetch_add(mode == COWBUF_MODE_MOVE ? &st->moves : &st->shares, 1);
		/* Write over what came: a COW break where it was shared. */
		for (i = 0; i < n; i++)
			scribble[i] = keys[i] ^ SCRIBBLE;
		if (!write_pages(buf, scribble, n, region))
			for (i = 0; i < n; i++)
				check_page(buf + i * PAGE, scribble[i], "receive side, own write");
		seq++;
	}
	exit(0);
}

struct churn {
	int region, id;
	char *addr;
	uint64_t rng;
	uint64_t keys[];
};

/* Check the slice against what it should hold. */
static void churn_check(struct churn *c, size_t first, size_t n, const char *what)
{
	size_t i;

	for (i = first; i < first + n; i++)
		check_page(c->addr + i * PAGE, c->keys[i], what);
}

/* A child of a threaded process: checks, writes new keys, exits. */
static void churn_child(struct churn *c, size_t first, size_t n, uint64_t r)
{
	uint64_t keys[MAX_MSG_PAGES];
	size_t i;

	churn_check(c, first, n, "fork child");
	for (i = 0; i < n; i++)
		keys[i] = pick_key(mix(r + i));
	_exit(write_pages(c->addr + first * PAGE, keys, n, c->region) ? 2 : 0);
}

static void churn_fork(struct churn *c, size_t first, size_t n)
{
	uint64_t r = rnd(&c->rng);
	int status;
	size_t i;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return;
	if (!pid)
		churn_child(c, first, n, r);
	atomic_fetch_add(&st->forks, 1);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && !WEXITSTATUS(status)) {
		for (i = 0; i < n; i++)
			c->keys[first + i] = pick_key(mix(r + i));
		churn_check(c, first, n, "after fork child's writes");
	} else {
		/* Killed (OOM) or SIGBUS in the child: start the range over. */
		cowbuf_decommit(c->region, c->addr + first * PAGE, n * PAGE);
		memset(&c->keys[first], 0, n * sizeof(c->keys[0]));
	}
}

static void *churn_thread(void *p)
{
	struct churn *c = p;
	size_t pages = churn_bytes / churn_threads / PAGE, first, n, i;
	off_t off = (off_t)c->id * pages * PAGE;
	uint64_t keys[MAX_MSG_PAGES];
	int ret;

	c->addr = map_region(c->region, pages * PAGE, off);
	/* All of it at once: under -P this meets the limit at the start. */
	ret = cowbuf_commit(c->region, c->addr, pages * PAGE);
	if (ret)
		tolerate("commit", ret);
	while (!atomic_load(&st->stop)) {
		uint64_t r = rnd(&c->rng);

		n = 1 + (r >> 8) % (pages < MAX_MSG_PAGES ? pages : MAX_MSG_PAGES);
		first = (r >> 24) % (pages - n + 1);
		switch (r % 16) {
		case 0 ... 5:
			for (i = 0; i < n; i++)
				keys[i] = pick_key(rnd(&c->rng));
			if (write_pages(c->addr + first * PAGE, keys, n, c->region)) {
				cowbuf_decommit(c->region, c->addr + first * PAGE, n * PAGE);
				memset(&c->keys[first], 0, n * sizeof(keys[0]));
				break;
			}
			memcpy(&c->keys[first], keys, n * sizeof(keys[0]));
			churn_check(c, first, n, "churn, own write");
			break;
		case 6 ... 7:
			churn_check(c, 0, pages, "churn");
			break;
		case 8:
			ret = cowbuf_decommit(c->region, c->addr + first * PAGE, n * PAGE);
			if (ret) {
				tolerate("decommit", ret);
				break;
			}
			memset(&c->keys[first], 0, n * sizeof(keys[0]));
			churn_check(c, first, n, "churn, decommitted");
			break;
		case 9:
			ret = cowbuf_commit(c->region, c->addr + first * PAGE, n * PAGE);
			if (ret)
				tolerate("commit", ret);
			churn_check(c, first, n, "churn, committed");
			break;
		case 10:
			madvise(c->addr + first * PAGE, n * PAGE, MADV_DONTNEED);
			churn_check(c, first, n, "churn, MADV_DONTNEED");
			break;
		case 11:
			munmap(c->addr, pages * PAGE);
			c->addr = map_region(c->region, pages * PAGE, off);
			atomic_fetch_add(&st->remaps, 1);
			churn_check(c, 0, pages, "churn, mapped again");
			break;
		case 12: {
			struct cowbuf_range range = {
				.addr = (uintptr_t)(c->addr + first * PAGE),
				.length = n * PAGE,
				.flags = r & 1 << 20 ? COWBUF_MERGE_DISABLE : COWBUF_MERGE_ENABLE,
			};

			if (ioctl(c->region, COWBUF_IOC_MERGE, &range))
				tolerate("merge", -errno);
			churn_check(c, first, n, "churn, merge on/off");
			break;
		}
		case 13:
			churn_fork(c, first, n);
			break;
		default:
			sched_yield();
			break;
		}
		atomic_fetch_add(&st->ops, 1);
	}
	return NULL;
}

static void churner(int dev, int id)
{
	size_t pages = churn_bytes / churn_threads / PAGE;
	pthread_t th[MAX_THREADS];
	struct churn *c[MAX_THREADS];
	int region = new_region(dev, churn_bytes), t;

	for (t = 0; t < churn_threads; t++) {
		c[t] = calloc(1, sizeof(*c[t]) + pages * sizeof(uint64_t));
		if (!c[t])
			setup_failed("calloc", -ENOMEM);
		c[t]->region = region;
		c[t]->id = t;
		c[t]->rng = mix(seed ^ (uint64_t)id << 32 ^ (uint64_t)t << 16 ^ getpid());
		pthread_create(&th[t], NULL, churn_thread, c[t]);
	}
	for (t = 0; t < churn_threads; t++)
		pthread_join(th[t], NULL);
	exit(0);
}

/* The processes the main loop looks after, one slot each. */
struct slot {
	pid_t pid[2];
	int pair;	/* -1: a churner */
	int killed;	/* the main loop sent SIGKILL */
};

static struct slot slots[MAX_PROCS];
static int nr_slots, next_pair;
static unsigned long kills, oom_kills;

static void kill_slot(struct slot *s);

static void start_slot(int dev, struct slot *s)
{
	int chan, i;

	s->killed = 0;
	if (s->pair < 0) {
		s->pid[0] = fork();
		if (!s->pid[0]) {
			set_oom_score_adj(0);
			churner(dev, s - slots);
		}
		if (s->pid[0] < 0)
			s->pid[0] = 0;	/* tried again on the next round */
		return;
	}
	/* A new pair and a new channel: its messages start at 0. */
	s->pair = next_pair++;
	chan = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC | COWBUF_FD_NONBLOCK);
	if (chan < 0) {
		tolerate("channel", chan);	/* the slot stays empty for now */
		return;
	}
	s->pid[0] = fork();
	if (!s->pid[0]) {
		set_oom_score_adj(0);
		sender(dev, chan, s->pair, 0);
	}
	s->pid[1] = fork();
	if (!s->pid[1]) {
		set_oom_score_adj(0);
		receiver(dev, chan, s->pair, 0);
	}
	close(chan);
	for (i = 0; i < 2; i++)
		if (s->pid[i] < 0)
			s->pid[i] = 0;
	if (!s->pid[0] || !s->pid[1])
		kill_slot(s);	/* half a pair: the whole pair again, later */
}

static void kill_slot(struct slot *s)
{
	int i;

	s->killed = 1;
	for (i = 0; i < 2; i++)
		if (s->pid[i] > 0)
			kill(s->pid[i], SIGKILL);
}

/* How did a child end? Only our SIGKILL, or the OOM killer's under -P, is fine. */
static void judge(struct slot *s, pid_t pid, int status)
{
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		if (s->killed)
			return;
		oom_kills++;
		if (pressure)
			return;
	}
	atomic_fetch_add(&st->unexpected, 1);
	say("cowbuf-stress: child %d ended with status %#x\n", pid, status);
}

/*
 * Reap children; a slot one of whose processes ended is killed whole (the
 * main loop starts it again). Other pids are grandchildren.
 */
static void reap(int block)
{
	int status, i, j;
	pid_t pid;

	while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0) {
		for (i = 0; i < nr_slots; i++) {
			struct slot *s = &slots[i];

			for (j = 0; j < 2; j++) {
				if (s->pid[j] != pid)
					continue;
				s->pid[j] = 0;
				judge(s, pid, status);
				if (s->pid[!j])
					kill_slot(s);
			}
		}
		if (block)
			break;
	}
}

static const char *const knobs[] = { "run", "sleep_millisecs", "pages_to_scan" };

int main(int argc, char **argv)
{
	static const char *const objects[] = { "frames", "regions", "channels", "messages" };
	int pairs = 4, workers = 2, with_knobs = 0, killer = 0, opt, dev, i, ret = 0;
	long saved[ARRAY_SIZE(knobs)], scans0 = 0, shared_max = 0;
	struct sigaction sa = { .sa_handler = on_sigbus };
	double seconds = 30, t0, t;
	uint64_t krng;

	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	while ((opt = getopt(argc, argv, "s:d:p:w:t:m:kKP")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'p':
			pairs = atoi(optarg);
			break;
		case 'w':
			workers = atoi(optarg);
			break;
		case 't':
			churn_threads = atoi(optarg);
			break;
		case 'm':
			churn_bytes = strtoul(optarg, NULL, 0) << 20;
			break;
		case 'k':
			with_knobs = 1;
			break;
		case 'K':
			killer = 1;
			break;
		case 'P':
			pressure = 1;
			break;
		default:
			fprintf(stderr, "usage: cowbuf-stress [-s SEED] [-d SECONDS] %s\n",
				"[-p PAIRS] [-w WORKERS] [-t THREADS] [-m MIB] [-k] [-K] [-P]");
			return 2;
		}
	}
	if (pairs < 0 || workers < 0 || pairs + workers < 1 || 2 * pairs + workers > MAX_PROCS ||
	    churn_threads < 1 || churn_threads > MAX_THREADS ||
	    churn_bytes / churn_threads < MAX_MSG_PAGES * PAGE) {
		fprintf(stderr, "cowbuf-stress: bad sizes\n");
		return 2;
	}
	printf("cowbuf-stress: seed %llu, %.0f s, %d pairs, %d churners x %d threads, %zu MiB%s",
	       (unsigned long long)seed, seconds, pairs, workers, churn_threads, churn_bytes >> 20,
	       with_knobs ? ", scanner at full speed" : "");
	printf("%s%s\n", killer ? ", kill -9" : "",
	       pressure ? ", under memory pressure" : "");
	fflush(stdout);
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED)
		return 3;
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (pressure)
		set_oom_score_adj(-1000);
	/* Orphaned grandchildren (a killed churner's fork) come back here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	dev = cowbuf_open();
	if (dev < 0) {
		fprintf(stderr, "cowbuf-stress: /dev/cowbuf: %s\n", strerror(-dev));
		return 3;
	}
	if (with_knobs) {
		for (i = 0; i < (int)ARRAY_SIZE(knobs); i++)
			saved[i] = cowbuf_sysfs_get(knobs[i]);
		cowbuf_sysfs_set("pages_to_scan", 100000);
		cowbuf_sysfs_set("sleep_millisecs", 0);
		cowbuf_sysfs_set("run", 1);
	}
	scans0 = cowbuf_sysfs_get("full_scans");
	for (i = 0; i < pairs + workers; i++) {
		slots[i].pair = i < pairs ? 0 : -1;
		start_slot(dev, &slots[i]);
	}
	nr_slots = pairs + workers;

	krng = seed;
	t0 = now();
	while (!ended && (t = now()) - t0 < seconds) {
		long shared = cowbuf_sysfs_get("pages_sharing");

		if (shared > shared_max)
			shared_max = shared;
		usleep(killer ? 100000 + rnd(&krng) % 200000 : 200000);
		if (killer) {
			struct slot *s = &slots[rnd(&krng) % nr_slots];

			kill_slot(s);
			kills++;
		}
		reap(0);
		for (i = 0; i < nr_slots; i++)
			if (!slots[i].pid[0] && !slots[i].pid[1])
				start_slot(dev, &slots[i]);
	}
	atomic_store(&st->stop, 1);
	for (i = 0; i < nr_slots; i++)
		while (slots[i].pid[0] || slots[i].pid[1])
			reap(1);
	while (waitpid(-1, NULL, 0) > 0)
		;
	t = now() - t0;
	close(dev);
	if (with_knobs)
		for (i = 0; i < (int)ARRAY_SIZE(knobs); i++)
			if (saved[i] >= 0)
				cowbuf_sysfs_set(knobs[i], saved[i]);

	printf("cowbuf-stress: %lu messages (%lu MOVE, %lu SHARE), ", atomic_load(&st->messages),
	       atomic_load(&st->moves), atomic_load(&st->shares));
	printf("%lu ops, %lu forks, %lu remaps, %lu kills\n", atomic_load(&st->ops),
	       atomic_load(&st->forks), atomic_load(&st->remaps), kills);
	printf("cowbuf-stress: scanner: %ld full scans, up to %ld pages sharing\n",
	       cowbuf_sysfs_get("full_scans") - scans0, shared_max);
	if (pressure)
		printf("cowbuf-stress: pressure: %lu ENOMEM, %lu SIGBUS, %lu OOM kills\n",
		       atomic_load(&st->enomem), atomic_load(&st->sigbus), oom_kills);
	printf("cowbuf-stress: %.1f s, %llu bytes verified, %lu mismatches, %lu unexpected\n", t,
	       (unsigned long long)atomic_load(&st->bytes_verified),
	       atomic_load(&st->mismatches), atomic_load(&st->unexpected));
	for (i = 0; i < (int)ARRAY_SIZE(objects); i++) {
		long v = cowbuf_sysfs_get(objects[i]);

		if (v != 0) {
			printf("cowbuf-stress: %s is %ld after every process ended\n",
			       objects[i], v);
			ret = 1;
		}
	}
	if (!atomic_load(&st->messages) || !atomic_load(&st->bytes_verified)) {
		printf("cowbuf-stress: nothing was verified\n");
		ret = 1;
	}
	return ret || atomic_load(&st->mismatches) || atomic_load(&st->unexpected) ? 1 : 0;
}
