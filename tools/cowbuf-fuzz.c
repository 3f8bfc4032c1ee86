// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf-fuzz: seeded random and boundary-value calls on /dev/cowbuf.
 *
 *   cowbuf-fuzz [-s SEED] [-n CALLS] [-t THREADS] [-k]
 *
 * Threads share pools of descriptors (the device, regions, channels, and
 * descriptors of the wrong kind) and of mappings, and issue every command
 * with random and boundary sizes, offsets, flags and pad fields, bad and
 * kernel pointers, on right and wrong descriptors, while other threads
 * close descriptors, unmap, mremap and mprotect, touch memory (SIGSEGV and
 * SIGBUS are caught), fork children that act and get killed, pin memory
 * (vmsplice() into pipes kept in the pool, and long-term write pins through
 * the selftests' /dev/cowbuf_pin where it exists), give regions as many
 * mergeable ranges as they take, flood channels and discard from them, and
 * (with -k, as root) turn the merge scanner's knobs. A call may fail, but only with
 * an errno the API documents; anything else, and any kernel splat, is a
 * bug. At the end everything is closed and the module's counters must
 * return to zero. The seed is printed first: -s replays a run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cowbuf_pin.h"
#include "libcowbuf.h"
#include "tool-util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NR_FDS		48
#define NR_MAPS		32
#define HUGE_FRAME	(2UL << 20)
#define MAP_SLOT	(4 * HUGE_FRAME)	/* room for a mapping and its growth */

/*
 * The pool's mappings live in an arena far below where the kernel places
 * mmap(NULL) (top-down from below the stack), so that a stale pool entry -
 * a page unmapped behind the pool's back - can never come to hold the C
 * library's memory, which a touch or an ioctl's output would then corrupt.
 * Unused parts of the arena are PROT_NONE.
 */
#define ARENA_BASE	((void *)0x200000000000ul)
static char *arena;
static pthread_mutex_t slot_lock[NR_MAPS];	/* one mmap() per slot at a time */

struct mapping {
	char *addr;
	size_t len;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int fds[NR_FDS];
static struct mapping maps[NR_MAPS];
static size_t page;
static int with_knobs;
static atomic_ulong calls, unexpected;
static unsigned long max_calls;

static __thread uint64_t rng;
static __thread sigjmp_buf fault_jmp;
static __thread volatile int in_touch;
static int in_child;

/* What each worker is doing, for the report of a worker that hangs. */
static const char *volatile current_op[64];
static pid_t worker_tid[64];
static __thread int worker_id;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* Sizes and lengths: mostly page multiples, often boundaries. */
static uint64_t fuzz_len(void)
{
	static const uint64_t edges[] = {
		0, 1, 4095, 4096, 4097, 8192, 1 << 20, 0x7fffffffffffffffull,
		0xfffffffffffff000ull, 0x10000000000ull, 0x10000001000ull,
	};

	switch (below(5)) {
	case 0:
		return edges[below(ARRAY_SIZE(edges))];
	case 1:
		return rnd();
	case 2:
		return (below(3) + 1) * HUGE_FRAME;	/* huge frames */
	default:
		return (below(64) + 1) * page;
	}
}

static uint32_t fuzz_u32(void)
{
	static const uint32_t edges[] = { 0, 0, 0, 1, 2, 3, 0x100, 0x80000000u, 0xffffffffu };

	return below(3) ? edges[below(ARRAY_SIZE(edges))] : (uint32_t)rnd();
}

/* An address: in a mapping, near one, unmapped, NULL or in the kernel. */
static uint64_t fuzz_addr(void)
{
	struct mapping m;

	pthread_mutex_lock(&pool_lock);
	m = maps[below(NR_MAPS)];
	pthread_mutex_unlock(&pool_lock);
	switch (below(8)) {
	case 0:
		return 0;
	case 1:
		return 0xffff888000000000ull;	/* kernel direct map */
	case 2:
		return rnd();
	case 3:
		return m.addr ? (uint64_t)(uintptr_t)m.addr + below(m.len + 2 * page) - page : 0;
	case 4:
		return m.addr ? (uint64_t)(uintptr_t)m.addr +
				below(m.len / HUGE_FRAME + 1) * HUGE_FRAME : 0;
	default:
		return m.addr ? (uint64_t)(uintptr_t)m.addr + below(m.len / page + 1) * page : 0;
	}
}

/* A pooled descriptor, or now and then any number but the console's. */
static int pick_fd(void)
{
	int fd;

	pthread_mutex_lock(&pool_lock);
	fd = fds[below(NR_FDS)];
	pthread_mutex_unlock(&pool_lock);
	return below(20) ? fd : (int)below(1024) + 3;
}

static void put_fd(int fd)
{
	int i = below(NR_FDS), old;

	if (fd < 0)
		return;
	pthread_mutex_lock(&pool_lock);
	old = fds[i];
	fds[i] = fd;
	pthread_mutex_unlock(&pool_lock);
	if (old >= 0)
		close(old);
}

/* Unmap whatever [addr, addr + len) of the arena holds; keep it reserved. */
static void reserve(void *addr, size_t len)
{
	mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
	     -1, 0);
}

/* errno values the API documents for these calls. */
static void progress(void)
{
	unsigned long n = atomic_fetch_add(&calls, 1) + 1;

	/* No stdio in a forked child: another thread may have held its lock. */
	if (!(n % 5000) && !in_child) {
		printf("cowbuf-fuzz: %lu calls\n", n);
		fflush(stdout);
	}
}

static void check_errno(const char *what, long ret)
{
	static const int allowed[] = {
		EINVAL, EFAULT, ENOTTY, EBADF, ENOMEM, EBUSY, EAGAIN, EMSGSIZE,
		EINTR, EACCES, EPERM, EMFILE, ENODEV, EOVERFLOW, ESPIPE,
	};
	unsigned int i;

	progress();
	if (ret >= 0)
		return;
	for (i = 0; i < ARRAY_SIZE(allowed); i++)
		if (-ret == allowed[i])
			return;
	atomic_fetch_add(&unexpected, 1);
	if (!in_child)
		fprintf(stderr, "cowbuf-fuzz: %s: unexpected %s\n", what,
			strerror((int)-ret));
}

static long sys_ret(long r)
{
	return r < 0 ? -errno : r;
}

static void do_ioctl(void)
{
	static const unsigned long cmds[] = {
		COWBUF_IOC_VERSION, COWBUF_IOC_REGION_CREATE, COWBUF_IOC_CHANNEL_CREATE,
		COWBUF_IOC_REGION_INFO, COWBUF_IOC_COMMIT, COWBUF_IOC_DECOMMIT,
		COWBUF_IOC_SEND, COWBUF_IOC_RECV, COWBUF_IOC_CHANNEL_INFO,
		COWBUF_IOC_MERGE, COWBUF_IOC_MERGE_INFO,
	};
	union {
		uint64_t words[8];
		struct cowbuf_range range;
		struct cowbuf_send send;
		struct cowbuf_recv recv;
		struct cowbuf_region_create create;
		struct cowbuf_channel_create channel;
	} arg;
	unsigned long cmd;
	int fd = pick_fd();
	void *p = &arg;
	long ret;

	if (below(10)) {
		cmd = cmds[below(ARRAY_SIZE(cmds))];
	} else {
		/* Right magic, random number, direction or size. */
		cmd = _IOC(below(4), COWBUF_IOCTL_MAGIC, below(0x20), below(64));
	}
	arg.words[0] = fuzz_addr();
	arg.words[1] = fuzz_len();
	arg.words[2] = (uint64_t)fuzz_u32() << 32 | fuzz_u32();
	arg.words[3] = rnd();
	if (cmd == COWBUF_IOC_SEND && below(2))
		arg.send.mode = 1 + below(2);
	/* Half the time, valid flags and pads: get past the first checks. */
	if ((cmd == COWBUF_IOC_COMMIT || cmd == COWBUF_IOC_DECOMMIT ||
	     cmd == COWBUF_IOC_RECV) && below(2)) {
		arg.range.flags = 0;
		arg.range.pad = 0;
	}
	if (cmd == COWBUF_IOC_SEND && below(2))
		arg.send.flags = 0;
	if (cmd == COWBUF_IOC_MERGE && below(2)) {
		arg.range.flags = 1 + below(2);
		arg.range.pad = 0;
	}
	if (cmd == COWBUF_IOC_REGION_CREATE && below(2)) {
		arg.create.size = (below(64) + 1) * page;
		arg.create.flags &= COWBUF_FD_CLOEXEC | COWBUF_REGION_MERGEABLE |
				    COWBUF_REGION_HUGE;
		if (arg.create.flags & COWBUF_REGION_HUGE && below(2))
			arg.create.size = (below(4) + 1) * HUGE_FRAME;
	}
	switch (below(12)) {
	case 0:
		p = NULL;
		break;
	case 1:
		p = (void *)(uintptr_t)fuzz_addr();
		break;
	}
	/*
	 * Blocking SEND and RECV wait for a peer that may never come, as
	 * documented: only call them non-blocking. A channel may have come
	 * from an untracked create, so set the flag on whatever fd this is.
	 */
	if (fd >= 3)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	ret = sys_ret(ioctl(fd, cmd, p));
	check_errno("ioctl", ret);
	/* A new descriptor: keep it, non-blocking if it is a channel. */
	if (ret == 0 && p == &arg &&
	    (cmd == COWBUF_IOC_REGION_CREATE || cmd == COWBUF_IOC_CHANNEL_CREATE)) {
		int nfd = cmd == COWBUF_IOC_REGION_CREATE ? arg.create.fd :
			  arg.channel.fd;

		if (cmd == COWBUF_IOC_CHANNEL_CREATE)
			fcntl(nfd, F_SETFL, O_NONBLOCK);
		put_fd(nfd);
	}
}

static void do_create(void)
{
	int dev = cowbuf_open(), fd;

	if (dev < 0)
		return;
	if (!below(4))
		fd = cowbuf_region_create(dev, below(4) ? (below(4) + 1) * HUGE_FRAME :
					  fuzz_len(),
					  COWBUF_REGION_HUGE |
					  (below(2) ? COWBUF_REGION_MERGEABLE : 0));
	else if (below(2))
		fd = cowbuf_region_create(dev, below(4) ? (below(64) + 1) * page : fuzz_len(),
					  below(2) ? COWBUF_REGION_MERGEABLE : 0);
	else
		fd = cowbuf_channel_create(dev, COWBUF_FD_NONBLOCK);
	check_errno("create", fd);
	put_fd(fd);
	if (below(4))
		close(dev);
	else
		put_fd(dev);
}

static void do_mmap(void)
{
	int huge = !below(4);
	size_t len = huge ? (below(3) + 1) * HUGE_FRAME : (below(64) + 1) * page;
	int flags = below(8) ? MAP_SHARED : MAP_PRIVATE;
	int prot = PROT_READ | (below(4) ? PROT_WRITE : 0);
	off_t off = below(4) ? 0 : huge ? below(4) * HUGE_FRAME : below(64) * page;
	int i = below(NR_MAPS), fd = pick_fd();
	char *slot = arena + i * MAP_SLOT;
	void *p;

	/*
	 * The new mapping takes the old one's place, and the rest of the
	 * slot is reserved again; a failed MAP_FIXED may have unmapped what
	 * was there: the whole slot is.
	 */
	pthread_mutex_lock(&slot_lock[i]);
	p = mmap(slot, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED)
		reserve(slot, MAP_SLOT);
	else
		reserve(slot + len, MAP_SLOT - len);
	pthread_mutex_lock(&pool_lock);
	maps[i].addr = p == MAP_FAILED ? NULL : p;
	maps[i].len = len;
	pthread_mutex_unlock(&pool_lock);
	pthread_mutex_unlock(&slot_lock[i]);
	progress();
}

static void do_mm(void)
{
	struct mapping m;
	size_t off;

	pthread_mutex_lock(&pool_lock);
	m = maps[below(NR_MAPS)];
	pthread_mutex_unlock(&pool_lock);
	if (!m.addr)
		return;
	off = below(m.len / page) * page;
	switch (below(5)) {
	case 0:
		madvise(m.addr + off, m.len - off, MADV_DONTNEED);
		break;
	case 1:
		mprotect(m.addr + off, page, below(2) ? PROT_READ : PROT_READ | PROT_WRITE);
		break;
	case 2:
		munmap(m.addr + off, page);	/* the pool entry goes stale */
		break;
	case 3:
		/* Make room in the slot, then grow in place. */
		if (m.len + page <= MAP_SLOT)
			munmap(m.addr + m.len, page);
		mremap(m.addr, m.len, m.len + page, 0);
		break;
	default:
		msync(m.addr, m.len, MS_ASYNC);
		break;
	}
	progress();
}

static void on_fault(int sig)
{
	(void)sig;
	if (in_touch)
		siglongjmp(fault_jmp, 1);
	_exit(99);
}

static void do_touch(void)
{
	struct mapping m;
	volatile char *p;
	size_t i, n;

	pthread_mutex_lock(&pool_lock);
	m = maps[below(NR_MAPS)];
	pthread_mutex_unlock(&pool_lock);
	if (!m.addr)
		return;
	p = (volatile char *)m.addr;
	n = below(8) + 1;
	if (sigsetjmp(fault_jmp, 1) == 0) {
		in_touch = 1;
		for (i = 0; i < n; i++) {
			size_t off = below(m.len);

			if (below(2))
				p[off] = (char)rnd();
			else
				(void)p[off];
		}
	}
	in_touch = 0;
	progress();
}

static void do_transfer(void)
{
	uint64_t len = below(4) ? (below(16) + 1) * page : fuzz_len();
	int ch = pick_fd(), ret;
	struct pollfd pfd = { .fd = ch, .events = POLLIN | POLLOUT };

	if (ch < 3)
		return;
	fcntl(ch, F_SETFL, O_NONBLOCK);
	if (below(2))
		ret = cowbuf_send(ch, (void *)(uintptr_t)fuzz_addr(), len, 1 + below(3));
	else
		ret = cowbuf_recv(ch, (void *)(uintptr_t)fuzz_addr(), len, NULL, NULL);
	check_errno("transfer", ret);
	poll(&pfd, 1, 0);
}

/* A random part of a pooled mapping: *len bytes at the returned address. */
static char *pick_range(size_t *len)
{
	struct mapping m;
	size_t first, nr;

	pthread_mutex_lock(&pool_lock);
	m = maps[below(NR_MAPS)];
	pthread_mutex_unlock(&pool_lock);
	if (!m.addr || m.len < page)
		return NULL;
	first = below(m.len / page);
	nr = below(m.len / page - first) + 1;
	*len = nr * page;
	return m.addr + first * page;
}

/*
 * Pins beside everything else: vmsplice() a range into a pipe that stays in
 * the pool (its references go when the pool closes it), or pin it for
 * writing through the pin device and write through the pin, as a device
 * would, or give a mapping's region many one-page mergeable ranges.
 */
static void do_pin(void)
{
	struct cowbuf_pin_range pr;
	struct cowbuf_pin_io io;
	char buf[64];
	int pfd[2], fd, i;
	struct iovec iov;
	size_t len;
	char *p = pick_range(&len);

	if (!p)
		return;
	switch (below(3)) {
	case 0:
		if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC))
			return;
		iov.iov_base = p;
		iov.iov_len = len;
		/* The range may be gone or unreadable: any error is fine. */
		(void)vmsplice(pfd[1], &iov, 1, SPLICE_F_NONBLOCK);
		put_fd(pfd[0]);
		put_fd(pfd[1]);
		break;
	case 1:
		fd = open("/dev/cowbuf_pin", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return;
		pr.addr = (uintptr_t)p;
		pr.length = len;
		if (!ioctl(fd, CBPIN_IOC_PIN, &pr)) {
			memset(buf, (int)rnd(), sizeof(buf));
			io.offset = below(len - sizeof(buf) + 1);
			io.length = sizeof(buf);
			io.buf = (uintptr_t)buf;
			ioctl(fd, CBPIN_IOC_WRITE, &io);
		}
		put_fd(fd);
		break;
	default:
		fd = pick_fd();
		for (i = 0; i < 64; i++) {
			struct cowbuf_range r = {
				.addr = (uintptr_t)p + 2 * below(len / page / 2 + 1) * page,
				.length = page,
				.flags = below(8) ? COWBUF_MERGE_ENABLE : COWBUF_MERGE_DISABLE,
			};

			if (r.addr + page > (uintptr_t)p + len)
				continue;
			check_errno("ranges", sys_ret(ioctl(fd, COWBUF_IOC_MERGE, &r)));
		}
		break;
	}
	progress();
}

/* Fill a channel with SHAREs of one range, then discard some of it. */
static void do_flood(void)
{
	int ch = pick_fd(), i, n = below(70);
	size_t len;
	char *p = pick_range(&len);

	if (ch < 3 || !p)
		return;
	fcntl(ch, F_SETFL, O_NONBLOCK);
	for (i = 0; i < n; i++)
		check_errno("flood", cowbuf_send(ch, p, len, COWBUF_MODE_SHARE));
	for (i = below(n + 1); i > 0; i--)
		check_errno("discard", cowbuf_discard(ch, NULL, NULL));
}

static void do_fork(void)
{
	pid_t pid = fork();
	int i, status;

	if (pid < 0)
		return;
	if (!pid) {
		/* Another thread may have held the lock at fork(). */
		pthread_mutex_init(&pool_lock, NULL);
		in_child = 1;
		for (i = 0; i < 20; i++) {
			do_touch();
			do_transfer();
			do_ioctl();
		}
		_exit(unexpected ? 1 : 0);
	}
	if (below(2)) {
		usleep(below(2000));
		kill(pid, SIGKILL);
	}
	/* A child that cannot be killed would be a kernel bug: wait for it. */
	for (i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 500) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	} else if (WIFEXITED(status) && WEXITSTATUS(status)) {
		atomic_fetch_add(&unexpected, 1);
	}
	progress();
}

static const char *const knobs[] = {
	"run", "pages_to_scan", "sleep_millisecs", "max_page_sharing",
	"merge_across_users",
};

static long saved_knobs[ARRAY_SIZE(knobs)];

static void knobs_save(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		saved_knobs[i] = cowbuf_sysfs_get(knobs[i]);
}

/* Put the knobs back as they were, run last. */
static void knobs_restore(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		unsigned int k = (i + 1) % ARRAY_SIZE(knobs);

		if (saved_knobs[k] >= 0)
			cowbuf_sysfs_set(knobs[k], saved_knobs[k]);
	}
}

/* Any value, valid or not: a refused write is as good a test. */
static void do_knob(void)
{
	static const long values[] = { 0, 1, 2, 3, 100, 100000, -1 };

	cowbuf_sysfs_set(knobs[below(ARRAY_SIZE(knobs))], values[below(ARRAY_SIZE(values))]);
	progress();
}

struct worker_arg {
	uint64_t seed;
	int id;
};

/*
 * The regular-file calls on a pooled descriptor: fallocate() in any mode,
 * ftruncate(), lseek(), fstat(), and open() again through /proc/self/fd.
 * Besides the ioctl errnos these may fail with what the VFS returns for a
 * descriptor that is not a region (ENODEV, ENXIO, ESPIPE, EOPNOTSUPP), a
 * closed one (ENOENT) or a size out of range (EFBIG).
 */
static void do_file(void)
{
	static const int modes[] = {
		0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_COLLAPSE_RANGE,
	};
	int fd = pick_fd(), nfd;
	char path[64];
	struct stat st;
	long ret;

	switch (below(5)) {
	case 0:
		ret = sys_ret(fallocate(fd, below(8) ? modes[below(ARRAY_SIZE(modes))] :
					(int)fuzz_u32(), (off_t)fuzz_len() - (below(8) ? 0 : page),
					(off_t)fuzz_len()));
		break;
	case 1:
		ret = sys_ret(ftruncate(fd, below(2) ? (off_t)fuzz_len() : (off_t)rnd()));
		break;
	case 2:
		ret = sys_ret(lseek(fd, (off_t)fuzz_len(), (int)below(6)));
		break;
	case 3:
		ret = sys_ret(fstat(fd, &st));
		break;
	default:
		/* Only pooled descriptors: a stray one could be a pipe or a tty. */
		pthread_mutex_lock(&pool_lock);
		fd = fds[below(NR_FDS)];
		pthread_mutex_unlock(&pool_lock);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		nfd = open(path, (below(2) ? O_RDWR : O_RDONLY) | O_CLOEXEC |
			   (below(16) ? 0 : O_TRUNC));
		ret = sys_ret(nfd);
		put_fd(nfd);
		break;
	}
	if (ret == -ENODEV || ret == -ENXIO || ret == -ESPIPE || ret == -EOPNOTSUPP ||
	    ret == -ENOENT || ret == -EFBIG)
		ret = 0;
	check_errno("file", ret);
}

#define OP(name, call) do { current_op[worker_id] = name; call; } while (0)

static void *worker(void *p)
{
	struct worker_arg *arg = p;

	rng = arg->seed * 0x9e3779b97f4a7c15ull | 1;
	worker_id = arg->id;
	worker_tid[worker_id] = gettid();
	while (atomic_load(&calls) < max_calls) {
		switch (below(with_knobs ? 20 : 19)) {
		case 0 ... 6:
			OP("ioctl", do_ioctl());
			break;
		case 7 ... 8:
			OP("create", do_create());
			break;
		case 9 ... 10:
			OP("mmap", do_mmap());
			break;
		case 11 ... 12:
			OP("mm", do_mm());
			break;
		case 13 ... 15:
			OP("touch", do_touch());
			break;
		case 16:
			switch (below(4)) {
			case 0:
				OP("pin", do_pin());
				break;
			case 1:
				OP("flood", do_flood());
				break;
			default:
				OP("transfer", do_transfer());
				break;
			}
			break;
		case 17:
			if (below(2))
				OP("transfer", do_transfer());
			else
				OP("file", do_file());
			break;
		case 18:
			if (!below(20))
				OP("fork", do_fork());
			else
				put_fd(below(2) ? -1 : open("/dev/null", O_RDWR | O_CLOEXEC));
			break;
		default:
			OP("knob", do_knob());
			break;
		}
	}
	current_op[worker_id] = "done";
	return NULL;
}

/* Have the kernel log every blocked task's stack (root, CONFIG_MAGIC_SYSRQ). */
static void sysrq_blocked_tasks(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);

	if (fd < 0)
		return;
	if (write(fd, "w", 1) != 1)
		perror("sysrq");
	close(fd);
}

/* Print what a stuck worker is doing, in user and in kernel space. */
static void report_stuck(int id)
{
	char path[128], buf[4096];
	ssize_t n;
	int fd;

	printf("cowbuf-fuzz: worker %d (tid %d) stuck in %s\n", id, worker_tid[id],
	       current_op[id]);
	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", worker_tid[id]);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			printf("%s", buf);
		}
		close(fd);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const char *const objects[] = { "frames", "regions", "channels", "messages" };
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	struct sigaction sa = { .sa_handler = on_fault };
	int threads = 4, opt, i, ret = 0;
	struct worker_arg args[64];
	pthread_t th[64];
	double t0, t;

	max_calls = 100000;
	while ((opt = getopt(argc, argv, "s:n:t:k")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			max_calls = strtoul(optarg, NULL, 0);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'k':
			with_knobs = 1;
			break;
		default:
			fprintf(stderr,
				"usage: cowbuf-fuzz [-s SEED] [-n CALLS] [-t THREADS] [-k]\n");
			return 2;
		}
	}
	threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
	page = sysconf(_SC_PAGESIZE);
	printf("cowbuf-fuzz: seed %llu, %lu calls, %d threads%s\n",
	       (unsigned long long)seed, max_calls, threads, with_knobs ? ", knobs" : "");
	fflush(stdout);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < NR_FDS; i++)
		fds[i] = -1;
	for (i = 0; i < NR_MAPS; i++)
		pthread_mutex_init(&slot_lock[i], NULL);
	arena = mmap(ARENA_BASE, NR_MAPS * MAP_SLOT, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (arena == MAP_FAILED) {
		perror("cowbuf-fuzz: arena");
		return 2;
	}
	if (with_knobs)
		knobs_save();
	t0 = now();
	for (i = 0; i < threads; i++) {
		args[i].seed = seed + i;
		args[i].id = i;
		pthread_create(&th[i], NULL, worker, &args[i]);
	}
	/* Every 10 s without progress, show where every worker is. */
	for (i = 0; i < threads; i++) {
		struct timespec deadline;
		unsigned long last = atomic_load(&calls);
		int tries = 0, j;

		for (;;) {
			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_sec += 10;
			if (!pthread_timedjoin_np(th[i], NULL, &deadline))
				break;
			if (atomic_load(&calls) == last && ++tries <= 3) {
				for (j = 0; j < threads; j++)
					if (strcmp(current_op[j] ? current_op[j] : "", "done"))
						report_stuck(j);
				sysrq_blocked_tasks();
			}
			last = atomic_load(&calls);
		}
	}
	t = now() - t0;

	/*
	 * Everything goes: the module must hold nothing afterwards. Calls
	 * that wrote a new descriptor into some mapping left it untracked:
	 * close every descriptor but the standard ones.
	 */
	for (i = 3; i < 4096; i++)
		close(i);
	munmap(arena, NR_MAPS * MAP_SLOT);
	if (with_knobs)
		knobs_restore();
	printf("cowbuf-fuzz: %lu calls in %.1f s, %lu unexpected errors\n",
	       (unsigned long)atomic_load(&calls),
	       t, (unsigned long)atomic_load(&unexpected));
	for (i = 0; i < (int)ARRAY_SIZE(objects); i++) {
		long v = cowbuf_sysfs_get(objects[i]);

		if (v != 0) {
			printf("cowbuf-fuzz: %s is %ld after everything was closed\n",
			       objects[i], v);
			ret = 1;
		}
	}
	return ret || atomic_load(&unexpected) ? 1 : 0;
}
