// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf-bench: hand a buffer from one process to another, by cowbuf and by
 * the copying paths, and time it.
 *
 * For each size, process A hands a buffer to process B:
 *
 *   cowbuf-move   COWBUF_IOC_SEND (MOVE) + COWBUF_IOC_RECV
 *   cowbuf-share  COWBUF_IOC_SEND (SHARE) + COWBUF_IOC_RECV
 *   huge-move     the same between huge regions (2 MiB frames, one PMD
 *   huge-share    each), from 2 MiB up
 *   memcpy-shm    memcpy into MAP_SHARED memory, then a wake-up
 *   pipe          write() into a pipe, read() out of it
 *   vmsplice      vmsplice() into a pipe, read() out of it
 *   pvm-writev    process_vm_writev() into B's buffer, then a wake-up
 *
 * "handoff" stops the clock when B has the bytes in its address space
 * (for cowbuf: mapped); "e2e" when B has also read every byte once. The
 * clock starts in A just before the hand-over and stops in B
 * (CLOCK_MONOTONIC is system-wide). The cowbuf receiver receives into an
 * empty range (it decommits after each round, untimed); the copying
 * receivers copy into a buffer they have already faulted in. "read-only" is B reading a buffer it
 * already has: no e2e hand-over that reads once can beat it.
 *
 * "wakeup" is the floor of every hand-over between processes: waking B,
 * blocked in read(), by a one-byte write, no data moved.
 *
 * "pmd-refault" is the physical floor of a huge hand-over: zapping the PMD
 * of one committed 2 MiB frame (MADV_DONTNEED) and faulting it back in by a
 * write, in a huge region. "frame" lines give huge-move's cost per 2 MiB
 * frame next to it.
 *
 * Usage: cowbuf-bench [BUDGET_MIB [frames]]; "frames" skips the hand-over
 * table and measures only the per-frame figures.
 *
 * Output: a table, and one line per figure for scripts:
 *   BENCH<TAB>transfer<TAB>method<TAB>phase<TAB>bytes<TAB>median_us<TAB>MiB/s
 *   BENCH<TAB>frame<TAB>huge-move|pmd-refault|huge-send|huge-recv|huge-touch|
 *	huge-cow|page-cow
 *	<TAB>bytes<TAB>us_per_2MiB_frame
 *   BENCH<TAB>send<TAB>method<TAB>bytes<TAB>median_us of SEND alone (cowbuf)
 *   BENCH<TAB>handover<TAB>wakeup<TAB>busy_us<TAB>median_us to wake B
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libcowbuf.h"
#include "tool-util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum method { COWBUF_MOVE, COWBUF_SHARE, HUGE_MOVE, HUGE_SHARE, MEMCPY_SHM, PIPE,
	      VMSPLICE, PVM_WRITEV, NR_METHODS };

static const char *const method_names[NR_METHODS] = {
	"cowbuf-move", "cowbuf-share", "huge-move", "huge-share", "memcpy-shm", "pipe",
	"vmsplice", "pvm-writev",
};

#define HUGE_FRAME	(2UL << 20)

static int is_cowbuf(enum method m)
{
	return m == COWBUF_MOVE || m == COWBUF_SHARE || m == HUGE_MOVE || m == HUGE_SHARE;
}

static int is_huge(enum method m)
{
	return m == HUGE_MOVE || m == HUGE_SHARE;
}

static int is_move(enum method m)
{
	return m == COWBUF_MOVE || m == HUGE_MOVE;
}

struct shared {
	double t_end;
	volatile uint64_t sink;
};

static size_t page_size;
/* The median time A spent in the hand-over call itself, by the last run(). */
static double send_median;

static void die(const char *what, int err)
{
	fprintf(stderr, "cowbuf-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* Read every byte once. */
static uint64_t read_all(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < len / 8; i += 4)
		s += w[i] ^ w[i + 1] ^ w[i + 2] ^ w[i + 3];
	return s;
}

static void xwrite(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0)
			die("write", errno);
		p += n;
		len -= n;
	}
}

static void xread(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n <= 0)
			die("read", n ? errno : EPIPE);
		p += n;
		len -= n;
	}
}

/* Close both ends of the three pipes a hand-over uses. */
static void close_pipes(int ready[2], int done[2], int data[2])
{
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	close(done[1]);
	close(data[0]);
	close(data[1]);
}

static void *anon(size_t size, int shared)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	return p;
}

/*
 * A committed, written region mapping (huge frames if @flags says so); its
 * fd goes to *@fdp if wanted.
 */
static void *cowbuf_buffer(int dev, size_t size, uint32_t flags, int *fdp)
{
	void *p;
	int fd, ret;

	fd = cowbuf_region_create(dev, size, COWBUF_FD_CLOEXEC | flags);
	if (fd < 0)
		die("region create", fd);
	ret = cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, &p);
	if (ret)
		die("region mmap", ret);
	ret = cowbuf_commit(fd, p, size);
	if (ret)
		die("commit", ret);
	memset(p, 0x5a, size);
	if (fdp)
		*fdp = fd;
	else
		close(fd);	/* the mapping keeps the region */
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sort the @n timings of @t and return their median. */
static double median_of(double *t, int n)
{
	qsort(t, n, sizeof(double), cmp_double);
	return t[n / 2];
}

/*
 * Time @iters hand-overs of @size bytes from A (this process) to B (a
 * child) by @m; @e2e: B also reads every byte. Returns the median seconds.
 */
static double run(enum method m, size_t size, int iters, int e2e)
{
	int ready[2], done[2], data[2], dev = -1, ch = -1, dst_fd = -1, i, status, ret;
	uint32_t rflags = is_huge(m) ? COWBUF_REGION_HUGE : 0;
	struct shared *sh = anon(page_size, 1);
	char *src = NULL, *dst = NULL, *shm = NULL, tok = 0;
	double *t = calloc(iters, sizeof(double)), *ts = calloc(iters, sizeof(double));
	void *region_dst_addr;
	pid_t pid;

	if (!t || !ts || pipe(ready) || pipe(done) || pipe(data))
		die("pipe", errno);
	if (m == PIPE || m == VMSPLICE)
		fcntl(data[1], F_SETPIPE_SZ, 1 << 20);
	if (is_cowbuf(m)) {
		dev = cowbuf_open();
		if (dev < 0)
			die(COWBUF_DEV_PATH, dev);
		ch = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
		if (ch < 0)
			die("channel create", ch);
	} else {
		/* Same address in both: B's buffer for process_vm_writev. */
		dst = anon(size, 0);
		memset(dst, 0x11, size);
		if (m == MEMCPY_SHM)
			shm = anon(size, 1);
	}
	region_dst_addr = dst;

	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		/* B */
		if (is_cowbuf(m))
			dst = cowbuf_buffer(dev, size, rflags, &dst_fd);
		for (i = 0; i < iters; i++) {
			xwrite(ready[1], &tok, 1);
			switch (m) {
			case COWBUF_MOVE:
			case COWBUF_SHARE:
			case HUGE_MOVE:
			case HUGE_SHARE:
				ret = cowbuf_recv(ch, dst, size, NULL, NULL);
				if (ret)
					die("recv", ret);
				break;
			case PIPE:
			case VMSPLICE:
				xread(data[0], dst, size);
				break;
			case MEMCPY_SHM:
			case PVM_WRITEV:
				xread(data[0], &tok, 1);
				break;
			default:
				break;
			}
			if (e2e)
				sh->sink += read_all(m == MEMCPY_SHM ? shm : dst, size);
			sh->t_end = now();
			/*
			 * Receive into an empty range each time, untimed, as
			 * a receiver that recycles its buffers does.
			 */
			if (dst_fd >= 0) {
				ret = cowbuf_decommit(dst_fd, dst, size);
				if (ret)
					die("decommit", ret);
			}
			xwrite(done[1], &tok, 1);
		}
		_exit(0);
	}

	/* A */
	if (is_cowbuf(m))
		src = cowbuf_buffer(dev, size, rflags, NULL);
	else
		src = anon(size, 0);
	memset(src, 0x77, size);
	for (i = 0; i < iters; i++) {
		double t0;

		/* A MOVE leaves the range empty: commit it again, untimed. */
		if (is_move(m) && i) {
			munmap(src, size);
			src = cowbuf_buffer(dev, size, rflags, NULL);
		}
		xread(ready[0], &tok, 1);
		t0 = now();
		switch (m) {
		case COWBUF_MOVE:
		case COWBUF_SHARE:
		case HUGE_MOVE:
		case HUGE_SHARE:
			ret = cowbuf_send(ch, src, size, is_move(m) ?
					  COWBUF_MODE_MOVE : COWBUF_MODE_SHARE);
			if (ret)
				die("send", ret);
			break;
		case MEMCPY_SHM:
			memcpy(shm, src, size);
			xwrite(data[1], &tok, 1);
			break;
		case PIPE:
			xwrite(data[1], src, size);
			break;
		case VMSPLICE: {
			size_t off = 0;

			while (off < size) {
				struct iovec iov = { src + off, size - off };
				ssize_t n = vmsplice(data[1], &iov, 1, 0);

				if (n < 0)
					die("vmsplice", errno);
				off += n;
			}
			break;
		}
		case PVM_WRITEV: {
			struct iovec l = { src, size }, r = { region_dst_addr, size };

			if (process_vm_writev(pid, &l, 1, &r, 1, 0) != (ssize_t)size)
				die("process_vm_writev", errno);
			xwrite(data[1], &tok, 1);
			break;
		}
		default:
			break;
		}
		ts[i] = now() - t0;
		xread(done[0], &tok, 1);
		t[i] = sh->t_end - t0;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("receiver", ECHILD);

	send_median = median_of(ts, iters);
	{
		double median = median_of(t, iters);

		free(t);
		free(ts);
		munmap(src, size);
		if (dst && !is_cowbuf(m))
			munmap(dst, size);
		if (shm)
			munmap(shm, size);
		munmap(sh, page_size);
		close_pipes(ready, done, data);
		if (ch >= 0)
			close(ch);
		if (dev >= 0)
			close(dev);
		return median;
	}
}

/* B reads a buffer it already has: the bound for any e2e hand-over. */
static double read_only(size_t size, int iters)
{
	char *buf = anon(size, 0);
	double *t = calloc(iters, sizeof(double)), median;
	volatile uint64_t sink = 0;
	int i;

	if (!t)
		die("calloc", ENOMEM);
	memset(buf, 0x33, size);
	for (i = 0; i < iters; i++) {
		double t0 = now();

		sink += read_all(buf, size);
		t[i] = now() - t0;
	}
	median = median_of(t, iters);
	free(t);
	munmap(buf, size);
	return median;
}

/*
 * The floor of a huge hand-over: zap the PMD of one committed frame and
 * fault it back in by a write. Returns the median seconds.
 */
static double pmd_refault(int iters)
{
	double *t = calloc(iters, sizeof(double)), median;
	int dev = cowbuf_open(), i;
	char *p;

	if (!t || dev < 0)
		die("pmd-refault", dev < 0 ? dev : ENOMEM);
	p = cowbuf_buffer(dev, HUGE_FRAME, COWBUF_REGION_HUGE, NULL);
	for (i = 0; i < iters; i++) {
		double t0 = now();

		if (madvise(p, HUGE_FRAME, MADV_DONTNEED))
			die("madvise", errno);
		p[i % HUGE_FRAME] = 1;
		t[i] = now() - t0;
	}
	median = median_of(t, iters);
	free(t);
	munmap(p, HUGE_FRAME);
	close(dev);
	return median;
}

/*
 * The floor of any hand-over between processes: B, blocked in read() on a
 * pipe, is woken by a one-byte write from A and stamps the time, with no
 * data moved. A first keeps its CPU busy for @busy_us (a copying path's
 * copy, or the untimed refill before a MOVE, does so while B sleeps): long
 * enough, and B's vCPU has gone idle and must be woken. Returns the median
 * seconds over @iters.
 */
static double wakeup(int iters, int busy_us)
{
	struct shared *sh = anon(page_size, 1);
	double *t = calloc(iters, sizeof(double)), median;
	int ready[2], done[2], data[2], i, status;
	char tok = 0;
	pid_t pid;

	if (!t || pipe(ready) || pipe(done) || pipe(data))
		die("pipe", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		for (i = 0; i < iters; i++) {
			xwrite(ready[1], &tok, 1);
			xread(data[0], &tok, 1);
			sh->t_end = now();
			xwrite(done[1], &tok, 1);
		}
		_exit(0);
	}
	for (i = 0; i < iters; i++) {
		double t0;

		xread(ready[0], &tok, 1);
		t0 = now() + busy_us / 1e6;
		while (now() < t0)
			;
		t0 = now();
		xwrite(data[1], &tok, 1);
		xread(done[0], &tok, 1);
		t[i] = sh->t_end - t0;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("woken receiver", ECHILD);
	median = median_of(t, iters);
	free(t);
	munmap(sh, page_size);
	close_pipes(ready, done, data);
	return median;
}

/* A channel and two committed buffers, in one process. */
struct loop {
	int dev, ch, dst_fd;
	char *src, *dst;
	size_t size;
};

static void loop_open(struct loop *l, size_t size, uint32_t flags)
{
	l->dev = cowbuf_open();
	if (l->dev < 0)
		die(COWBUF_DEV_PATH, l->dev);
	l->ch = cowbuf_channel_create(l->dev, COWBUF_FD_CLOEXEC);
	if (l->ch < 0)
		die("channel create", l->ch);
	l->size = size;
	l->src = cowbuf_buffer(l->dev, size, flags, NULL);
	l->dst = cowbuf_buffer(l->dev, size, flags, &l->dst_fd);
}

static void loop_close(struct loop *l)
{
	munmap(l->src, l->size);
	munmap(l->dst, l->size);
	close(l->dst_fd);
	close(l->ch);
	close(l->dev);
}

/*
 * RECV maps the frames it places; the alternative is the receiver's first
 * touch of each frame faulting it in. Both per 2 MiB frame, in one process,
 * for 16-frame MOVE messages: SEND, RECV, and a read of one byte of every
 * frame after MADV_DONTNEED removed RECV's PMDs. Means of @iters rounds.
 */
static void recv_or_touch(int iters)
{
	size_t len = 16 * HUGE_FRAME, f;
	double send = 0, recv = 0, touch = 0;
	volatile char sink;
	struct loop l;
	int i, ret;

	loop_open(&l, len, COWBUF_REGION_HUGE);
	for (i = 0; i < iters; i++) {
		double t0, t1, t2, t3;

		memset(l.src, 0x3c, len);	/* commits what MOVE took */
		ret = cowbuf_decommit(l.dst_fd, l.dst, len);
		if (ret)
			die("decommit", ret);
		t0 = now();
		ret = cowbuf_send(l.ch, l.src, len, COWBUF_MODE_MOVE);
		if (ret)
			die("send", ret);
		t1 = now();
		ret = cowbuf_recv(l.ch, l.dst, len, NULL, NULL);
		if (ret)
			die("recv", ret);
		t2 = now();
		if (madvise(l.dst, len, MADV_DONTNEED))
			die("madvise", errno);
		t3 = now();
		for (f = 0; f < len; f += HUGE_FRAME)
			sink = l.dst[f];
		touch += now() - t3;
		send += t1 - t0;
		recv += t2 - t1;
	}
	(void)sink;
	printf("# per 2 MiB frame, 16-frame MOVE in one process: SEND %.1f us, ",
	       send * 1e6 / iters / 16);
	printf("RECV (maps) %.1f us, first-touch fault instead %.1f us\n",
	       recv * 1e6 / iters / 16, touch * 1e6 / iters / 16);
	printf("BENCH\tframe\thuge-send\t%zu\t%.1f\n", len, send * 1e6 / iters / 16);
	printf("BENCH\tframe\thuge-recv\t%zu\t%.1f\n", len, recv * 1e6 / iters / 16);
	printf("BENCH\tframe\thuge-touch\t%zu\t%.1f\n", len, touch * 1e6 / iters / 16);
	loop_close(&l);
}

/*
 * A write that breaks copy-on-write of a frame shared by SHARE: the median
 * over @iters writes, for a 2 MiB frame (copied whole) and, in the same run,
 * for a 4 KiB page.
 */
static double cow_break(size_t size, uint32_t flags, int iters)
{
	double *t = calloc(iters, sizeof(double)), median;
	struct loop l;
	int i, ret;

	if (!t)
		die("calloc", ENOMEM);
	loop_open(&l, size, flags);
	for (i = 0; i < iters; i++) {
		double t0;

		ret = cowbuf_send(l.ch, l.src, size, COWBUF_MODE_SHARE);
		if (!ret)
			ret = cowbuf_recv(l.ch, l.dst, size, NULL, NULL);
		if (ret)
			die("share", ret);
		(void)*(volatile char *)l.dst;	/* mapped, read-only */
		t0 = now();
		l.dst[size / 2] = 1;
		t[i] = now() - t0;
	}
	median = median_of(t, iters);
	free(t);
	loop_close(&l);
	return median;
}

static void report(const char *method, const char *phase, size_t size, double secs)
{
	printf("BENCH\ttransfer\t%s\t%s\t%zu\t%.1f\t%.0f\n", method, phase, size,
	       secs * 1e6, size / secs / (1 << 20));
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {
		4 << 10, 64 << 10, 1 << 20, 2 << 20, 16 << 20, 64 << 20, 256 << 20,
	};
	size_t budget = argc > 1 ? strtoull(argv[1], NULL, 0) << 20 : 256 << 20;
	/* "cowbuf-bench BUDGET frames": the per-frame figures only. */
	int frames_only = argc > 2 && !strcmp(argv[2], "frames");
	unsigned int s;
	int m, e2e, iters, busy;
	double floor;

	page_size = sysconf(_SC_PAGESIZE);
	printf("# cowbuf-bench: median of N hand-overs A -> B, microseconds (MiB/s)\n");
	printf("# %-9s %-7s", "size", "phase");
	for (m = 0; m < NR_METHODS; m++)
		printf(" %22s", method_names[m]);
	printf(" %22s\n", "read-only");
	for (s = 0; s < ARRAY_SIZE(sizes) && !frames_only; s++) {
		size_t size = sizes[s];

		iters = budget / size;
		iters = iters < 5 ? 5 : iters > 200 ? 200 : iters;
		for (e2e = 0; e2e < 2; e2e++) {
			const char *phase = e2e ? "e2e" : "handoff";
			double secs[NR_METHODS + 1];

			for (m = 0; m < NR_METHODS; m++) {
				secs[m] = is_huge(m) && size % HUGE_FRAME ? 0 :
					  run(m, size, iters, e2e);
				/* The sender's share of a cowbuf hand-over. */
				if (!e2e && secs[m] && is_cowbuf(m))
					printf("BENCH\tsend\t%s\t%zu\t%.1f\n", method_names[m],
					       size, send_median * 1e6);
			}
			secs[NR_METHODS] = e2e ? read_only(size, iters) : 0;
			printf("# %-9zu %-7s", size, phase);
			for (m = 0; m <= NR_METHODS; m++) {
				if (secs[m])
					printf(" %12.1f (%7.0f)", secs[m] * 1e6,
					       size / secs[m] / (1 << 20));
				else
					printf(" %22s", "-");
			}
			printf("\n");
			for (m = 0; m < NR_METHODS; m++)
				if (secs[m])
					report(method_names[m], phase, size, secs[m]);
			if (e2e)
				report("read-only", phase, size, secs[NR_METHODS]);
			/* huge-move's cost per 2 MiB frame, by message size. */
			if (!e2e && secs[HUGE_MOVE])
				printf("BENCH\tframe\thuge-move\t%zu\t%.1f\n", size,
				       secs[HUGE_MOVE] * 1e6 / (size / HUGE_FRAME));
			fflush(stdout);
		}
	}
	floor = pmd_refault(200);
	printf("# pmd-refault (zap + write refault of one 2 MiB PMD): %.1f us\n",
	       floor * 1e6);
	printf("BENCH\tframe\tpmd-refault\t%lu\t%.1f\n", HUGE_FRAME, floor * 1e6);
	for (busy = 0; busy <= 2000; busy += 2000) {
		double w = wakeup(200, busy);

		printf("# wake-up of B blocked in read(), A busy %d us before: %.1f us\n",
		       busy, w * 1e6);
		printf("BENCH\thandover\twakeup\t%d\t%.1f\n", busy, w * 1e6);
	}
	recv_or_touch(20);
	printf("BENCH\tframe\thuge-cow\t%lu\t%.1f\n", HUGE_FRAME,
	       cow_break(HUGE_FRAME, COWBUF_REGION_HUGE, 50) * 1e6);
	printf("BENCH\tframe\tpage-cow\t%zu\t%.1f\n", page_size,
	       cow_break(page_size, 0, 50) * 1e6);
	return 0;
}
