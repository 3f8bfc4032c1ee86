// SPDX-License-Identifier: GPL-2.0
/*
 * cowbufctl: look at and drive cowbuf from the command line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/libcowbuf.h"
#include "lib/tool-util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char usage_text[] =
"usage: cowbufctl COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  version              the module's interface version, page and huge frame size\n"
"  info                 module counters (/sys/kernel/mm/cowbuf) and parameters\n"
"  stats [--watch [SECONDS]]\n"
"                       merge counters and knobs, once or every SECONDS (1)\n"
"  set KNOB VALUE       set a merge knob: run, pages_to_scan, sleep_millisecs,\n"
"                       max_page_sharing, merge_across_users, max_backoff\n"
"  create SIZE [--huge] [--commit] [--fill SEED]\n"
"                       reserve a region of SIZE bytes (K, M, G suffixes), map it,\n"
"                       optionally commit it and fill it, and show what it holds;\n"
"                       --huge: 2 MiB frames mapped by PMD (SIZE a multiple of 2M)\n"
"  demo [SIZE]          two processes exchange a SIZE buffer (default 64M) both\n"
"                       ways over a channel, MOVE then SHARE, with timings\n"
"  merge-demo [SIZE]    fill a mergeable region (default 16M) half with\n"
"                       duplicates, watch cowbufd merge it, break one\n"
"                       copy-on-write, unmerge with run=2\n"
"  recv SOCKET [-o FILE]\n"
"                       make a channel, hand it to the first sender connecting\n"
"                       to the UNIX socket SOCKET, receive one message and\n"
"                       write it to FILE (or print its checksum)\n"
"  send SOCKET FILE [--share]\n"
"                       read FILE into a region, take the channel from SOCKET\n"
"                       and send the pages (MOVE, or SHARE)\n"
"  exec [--fd N] [--merge] [--huge] SIZE -- COMMAND [ARGS]\n"
"                       reserve a region of SIZE bytes as file descriptor N\n"
"                       (default 3) and run COMMAND with it, which opens\n"
"                       /proc/self/fd/N as a file of SIZE bytes (for QEMU:\n"
"                       memory-backend-file,mem-path=/proc/self/fd/N,share=on);\n"
"                       --merge: cowbufd may merge it; --huge: 2 MiB frames\n"
"  help                 this text\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "cowbufctl: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k': case 'K':
		v <<= 10;
		end++;
		break;
	case 'm': case 'M':
		v <<= 20;
		end++;
		break;
	case 'g': case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end || !v) {
		fprintf(stderr, "cowbufctl: bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

static int open_dev(void)
{
	int dev = cowbuf_open();

	if (dev < 0)
		die(COWBUF_DEV_PATH, dev);
	return dev;
}

static void *region_map(int dev, uint64_t size, uint32_t flags, int *fd)
{
	void *p;
	int ret;

	*fd = cowbuf_region_create(dev, size, COWBUF_FD_CLOEXEC | flags);
	if (*fd < 0)
		die("region create", *fd);
	ret = cowbuf_map(*fd, size, 0, PROT_READ | PROT_WRITE, &p);
	if (ret)
		die("mmap", ret);
	return p;
}

static int cmd_version(void)
{
	struct cowbuf_version v;
	int dev = open_dev(), ret;

	ret = cowbuf_version(dev, &v);
	if (ret)
		die("COWBUF_IOC_VERSION", ret);
	printf("api_version %u\npage_size %u\nhuge_frame_size %u\n", v.api_version, v.page_size,
	       v.huge_frame_size);
	close(dev);
	return 0;
}

static int read_value(const char *dir, const char *name, char *val, size_t len)
{
	char path[256];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = !!fgets(val, len, f);
	fclose(f);
	if (!ok)
		return -1;
	val[strcspn(val, "\n")] = 0;
	return 0;
}

static void print_values(const char *dir, const char *const *names, unsigned int n)
{
	char val[64];
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!read_value(dir, names[i], val, sizeof(val)))
			printf("%-20s %s\n", names[i], val);
}

static void print_dir(const char *dir)
{
	static const char *const names[] = {
		"frames", "regions", "channels", "messages", "pinned_sigbus",
		"max_region_pages", "max_user_pages", "max_message_pages",
		"max_queue_depth", "max_user_channels", "max_merge_ranges",
	};

	print_values(dir, names, ARRAY_SIZE(names));
}

static int cmd_info(void)
{
	if (access("/sys/module/cowbuf", F_OK)) {
		fprintf(stderr, "cowbufctl: the cowbuf module is not loaded\n");
		return 1;
	}
	printf("# /sys/kernel/mm/cowbuf\n");
	print_dir("/sys/kernel/mm/cowbuf");
	printf("# /sys/module/cowbuf/parameters\n");
	print_dir("/sys/module/cowbuf/parameters");
	return 0;
}

#define MERGE_DIR "/sys/kernel/mm/cowbuf"

static const char *const merge_knobs[] = {
	"run", "pages_to_scan", "sleep_millisecs", "max_page_sharing",
	"merge_across_users", "max_backoff",
};

static const char *const merge_counters[] = {
	"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
	"pages_backoff", "full_scans", "zero_pages", "cow_breaks", "pages_scanned", "frames",
};

static int cmd_stats(int argc, char **argv)
{
	double interval = 0;
	char val[64];
	unsigned int i;
	int rows = 0;

	if (argc > 1 && !strcmp(argv[1], "--watch"))
		interval = argc > 2 ? atof(argv[2]) : 1;
	if (access(MERGE_DIR "/run", F_OK)) {
		fprintf(stderr, "cowbufctl: the cowbuf module is not loaded\n");
		return 1;
	}
	if (!interval) {
		print_values(MERGE_DIR, merge_knobs, ARRAY_SIZE(merge_knobs));
		print_values(MERGE_DIR, merge_counters, ARRAY_SIZE(merge_counters));
		return 0;
	}
	for (;;) {
		if (!(rows++ % 20)) {
			printf("%8s", "time");
			for (i = 0; i < ARRAY_SIZE(merge_counters); i++)
				printf(" %14s", merge_counters[i]);
			printf("\n");
		}
		printf("%8.1f", now());
		for (i = 0; i < ARRAY_SIZE(merge_counters); i++)
			printf(" %14s", read_value(MERGE_DIR, merge_counters[i], val,
						   sizeof(val)) ? "-" : val);
		printf("\n");
		usleep(interval * 1e6);
	}
}

static int cmd_set(int argc, char **argv)
{
	char path[256];
	unsigned int i;
	FILE *f;

	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < ARRAY_SIZE(merge_knobs); i++)
		if (!strcmp(argv[1], merge_knobs[i]))
			break;
	if (i == ARRAY_SIZE(merge_knobs)) {
		fprintf(stderr, "cowbufctl: unknown knob '%s'\n", argv[1]);
		return 2;
	}
	snprintf(path, sizeof(path), MERGE_DIR "/%s", argv[1]);
	f = fopen(path, "w");
	if (!f)
		die(path, errno);
	fprintf(f, "%s\n", argv[2]);
	if (fclose(f))
		die(path, errno);
	return 0;
}

static long merge_counter(const char *name)
{
	char val[64];

	return read_value(MERGE_DIR, name, val, sizeof(val)) ? -1 : atol(val);
}

static void set_knob(const char *name, const char *val)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), MERGE_DIR "/%s", name);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%s\n", val) < 0 || fclose(f))
		die(path, errno);
}

static void merge_line(double t0)
{
	printf("%6.2f s  pages_shared %6ld  pages_sharing %6ld  volatile %6ld",
	       now() - t0, merge_counter("pages_shared"), merge_counter("pages_sharing"),
	       merge_counter("pages_volatile"));
	printf("  full_scans %4ld  frames %6ld\n", merge_counter("full_scans"),
	       merge_counter("frames"));
}

static int cmd_merge_demo(int argc, char **argv)
{
	uint64_t size = argc > 1 ? parse_size(argv[1]) : 16ull << 20;
	size_t page = sysconf(_SC_PAGESIZE), pages = size / page, i, k;
	long last = -1, stable = 0, breaks;
	int dev = open_dev(), fd, ret;
	double t0;
	char *p;

	fd = cowbuf_region_create(dev, size, COWBUF_REGION_MERGEABLE | COWBUF_FD_CLOEXEC);
	if (fd < 0)
		die("region create", fd);
	ret = cowbuf_map(fd, size, 0, PROT_READ | PROT_WRITE, (void **)&p);
	if (ret)
		die("mmap", ret);
	/* First half: groups of 8 identical pages; second half: unique. */
	for (i = 0; i < pages; i++)
		for (k = 0; k < page / 8; k++)
			((uint64_t *)(p + i * page))[k] =
				(i < pages / 2 ? i / 8 : i) * 0x9e3779b97f4a7c15ull + k;
	printf("%llu MiB mergeable: %zu pages in groups of 8 identical pages, %zu unique\n",
	       (unsigned long long)size >> 20, pages / 2, pages - pages / 2);
	set_knob("pages_to_scan", "1000");
	set_knob("sleep_millisecs", "10");
	set_knob("run", "1");
	t0 = now();
	while (stable < 4 && now() - t0 < 60) {
		long sharing = merge_counter("pages_sharing");

		merge_line(t0);
		stable = sharing == last && sharing > 0 ? stable + 1 : 0;
		last = sharing;
		usleep(250000);
	}
	set_knob("run", "0");
	breaks = merge_counter("cow_breaks");
	p[0] ^= 1;
	printf("wrote one byte to a merged page: cow_breaks %ld -> %ld,", breaks,
	       merge_counter("cow_breaks"));
	printf(" the other 7 pages unchanged: %s\n",
	       !memcmp(p + page, p + 2 * page, page) ? "yes" : "NO");
	p[0] ^= 1;
	set_knob("run", "2");
	printf("run=2 (unmerge everything):\n");
	merge_line(t0);
	set_knob("run", "0");
	munmap(p, size);
	close(fd);
	close(dev);
	return 0;
}

static void show_region(int fd)
{
	struct cowbuf_region_info info;
	char path[64], buf[256];
	ssize_t n;
	int ret, f;

	ret = cowbuf_region_info(fd, &info);
	if (ret)
		die("COWBUF_IOC_REGION_INFO", ret);
	printf("region: %llu bytes, %llu pages committed, %u-byte frames\n",
	       (unsigned long long)info.size,
	       (unsigned long long)info.committed_pages, info.frame_size);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f >= 0) {
		n = read(f, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			printf("fdinfo:\n%s", buf);
		}
		close(f);
	}
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "commit", no_argument, NULL, 'c' },
		{ "fill", required_argument, NULL, 'f' },
		{ "huge", no_argument, NULL, 'H' },
		{ }
	};
	int opt, commit = 0, fill = 0, dev, fd, ret;
	uint32_t flags = 0;
	uint64_t size, seed = 0, i;
	uint64_t *p;

	while ((opt = getopt_long(argc, argv, "cf:H", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			commit = 1;
			break;
		case 'H':
			flags |= COWBUF_REGION_HUGE;
			break;
		case 'f':
			fill = 1;
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	size = parse_size(argv[optind]);
	dev = open_dev();
	p = region_map(dev, size, flags, &fd);
	printf("reserved and mapped %llu bytes at %p\n", (unsigned long long)size, (void *)p);
	show_region(fd);
	if (commit) {
		ret = cowbuf_commit(fd, p, size);
		if (ret)
			die("COWBUF_IOC_COMMIT", ret);
		printf("committed\n");
		show_region(fd);
	}
	if (fill) {
		for (i = 0; i < size / 8; i++)
			p[i] = seed ^ (i * 0x9e3779b97f4a7c15ull);
		printf("filled, checksum %016llx\n", (unsigned long long)checksum(p, size));
		show_region(fd);
	}
	munmap(p, size);
	close(fd);
	close(dev);
	return 0;
}

/* One side of the demo: receive into @buf, report, answer in @mode. */
static void demo_peer(int ch_in, int ch_out, char *buf, uint64_t size)
{
	unsigned long long sum;
	double t0, t1, t2;
	uint64_t len;
	int ret;

	t0 = now();
	ret = cowbuf_recv(ch_in, buf, size, &len, NULL);
	t1 = now();
	if (ret)
		die("B: COWBUF_IOC_RECV", ret);
	sum = checksum(buf, size);
	t2 = now();
	printf("B: received %llu MiB in %.2f ms (waiting included)\n",
	       (unsigned long long)len >> 20, (t1 - t0) * 1e3);
	printf("B: read every byte in %.2f ms, checksum %016llx\n", (t2 - t1) * 1e3, sum);
	buf[0] ^= 1;
	ret = cowbuf_send(ch_out, buf, size, COWBUF_MODE_SHARE);
	if (ret)
		die("B: COWBUF_IOC_SEND", ret);
	printf("B: changed one byte, sent it back SHARE (copy-on-write)\n");
}

static int cmd_demo(int argc, char **argv)
{
	uint64_t size = argc > 1 ? parse_size(argv[1]) : 64ull << 20;
	int dev = open_dev(), ch_ab, ch_ba, fd_a, fd_b, status, ret;
	char *a, *b;
	uint64_t i, sum;
	double t0, t1;
	pid_t pid;

	ch_ab = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	ch_ba = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	if (ch_ab < 0 || ch_ba < 0)
		die("channel create", ch_ab < 0 ? ch_ab : ch_ba);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		b = region_map(dev, size, 0, &fd_b);
		demo_peer(ch_ab, ch_ba, b, size);
		exit(0);
	}
	a = region_map(dev, size, 0, &fd_a);
	for (i = 0; i < size / 8; i++)
		((uint64_t *)a)[i] = i * 0x9e3779b97f4a7c15ull;
	sum = checksum(a, size);
	printf("A: filled %llu MiB, checksum %016llx\n", (unsigned long long)size >> 20,
	       (unsigned long long)sum);
	t0 = now();
	ret = cowbuf_send(ch_ab, a, size, COWBUF_MODE_MOVE);
	t1 = now();
	if (ret)
		die("A: COWBUF_IOC_SEND", ret);
	printf("A: sent MOVE in %.2f ms; A's range now reads as zero: %s\n",
	       (t1 - t0) * 1e3, a[size / 2] == 0 && a[0] == 0 ? "yes" : "NO");
	t0 = now();
	ret = cowbuf_recv(ch_ba, a, size, NULL, NULL);
	t1 = now();
	if (ret)
		die("A: COWBUF_IOC_RECV", ret);
	printf("A: received B's answer in %.2f ms (wait included)\n", (t1 - t0) * 1e3);
	a[0] ^= 1;
	printf("A: checksum after undoing B's change %016llx (%s)\n",
	       (unsigned long long)checksum(a, size),
	       checksum(a, size) == sum ? "matches" : "MISMATCH");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	show_region(fd_a);
	munmap(a, size);
	close(fd_a);
	close(ch_ab);
	close(ch_ba);
	close(dev);
	return 0;
}

static int unix_socket(const char *path, struct sockaddr_un *addr)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		die("socket", errno);
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path)) {
		fprintf(stderr, "cowbufctl: socket path too long\n");
		exit(2);
	}
	strcpy(addr->sun_path, path);
	return s;
}

static int cmd_recv(int argc, char **argv)
{
	const char *out = NULL;
	struct sockaddr_un addr;
	int s, c, dev, ch, fd, ret, opt;
	uint64_t room, len = 0;
	char *buf;

	while ((opt = getopt(argc, argv, "o:")) != -1) {
		if (opt != 'o') {
			usage(stderr);
			return 2;
		}
		out = optarg;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	s = unix_socket(argv[optind], &addr);
	unlink(addr.sun_path);
	if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) || listen(s, 1))
		die("bind", errno);
	dev = open_dev();
	ch = cowbuf_channel_create(dev, COWBUF_FD_CLOEXEC);
	if (ch < 0)
		die("channel create", ch);
	c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		die("accept", errno);
	ret = cowbuf_fd_send(c, ch);
	if (ret)
		die("SCM_RIGHTS", ret);
	/* Wait with one page of room; on EMSGSIZE make room for the message. */
	room = sysconf(_SC_PAGESIZE);
	buf = region_map(dev, room, 0, &fd);
	ret = cowbuf_recv(ch, buf, room, &len, NULL);
	if (ret == -EMSGSIZE) {
		munmap(buf, room);
		close(fd);
		room = len;
		buf = region_map(dev, room, 0, &fd);
		ret = cowbuf_recv(ch, buf, room, &len, NULL);
	}
	if (ret)
		die("COWBUF_IOC_RECV", ret);
	if (out) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (o < 0 || write(o, buf, len) != (ssize_t)len)
			die(out, errno);
		close(o);
	}
	printf("received %llu bytes, checksum %016llx\n", (unsigned long long)len,
	       (unsigned long long)checksum(buf, len));
	unlink(addr.sun_path);
	return 0;
}

static int cmd_send(int argc, char **argv)
{
	uint32_t mode = COWBUF_MODE_MOVE;
	struct sockaddr_un addr;
	int s, dev, ch, fd, in, ret, i;
	uint64_t size, page = sysconf(_SC_PAGESIZE);
	const char *files[2];
	int nfiles = 0;
	struct stat st;
	char *buf;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--share"))
			mode = COWBUF_MODE_SHARE;
		else if (nfiles < 2)
			files[nfiles++] = argv[i];
		else
			nfiles = 3;
	}
	if (nfiles != 2) {
		usage(stderr);
		return 2;
	}
	in = open(files[1], O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st))
		die(files[1], errno);
	size = ((uint64_t)st.st_size + page - 1) / page * page;
	if (!size)
		size = page;
	dev = open_dev();
	buf = region_map(dev, size, 0, &fd);
	if (read(in, buf, st.st_size) != st.st_size)
		die(files[1], errno);
	close(in);
	s = unix_socket(files[0], &addr);
	if (connect(s, (struct sockaddr *)&addr, sizeof(addr)))
		die(files[0], errno);
	ch = cowbuf_fd_recv(s);
	if (ch < 0)
		die("SCM_RIGHTS", ch);
	ret = cowbuf_send(ch, buf, size, mode);
	if (ret)
		die("COWBUF_IOC_SEND", ret);
	printf("sent %llu bytes (%s)\n", (unsigned long long)size,
	       mode == COWBUF_MODE_MOVE ? "MOVE" : "SHARE");
	return 0;
}

/*
 * Hand a new region to a program as an inherited file descriptor: programs
 * that take a path (QEMU's mem-path) open it again through /proc/self/fd.
 */
static int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fd", required_argument, NULL, 'F' },
		{ "merge", no_argument, NULL, 'm' },
		{ "huge", no_argument, NULL, 'H' },
		{ }
	};
	uint32_t flags = 0;
	int opt, dev, fd, target = 3;
	uint64_t size;
	char *end;

	while ((opt = getopt_long(argc, argv, "+F:mH", opts, NULL)) != -1) {
		switch (opt) {
		case 'F':
			target = strtol(optarg, &end, 10);
			if (*end || target < 0 || end == optarg) {
				fprintf(stderr, "cowbufctl: bad descriptor '%s'\n", optarg);
				return 2;
			}
			break;
		case 'm':
			flags |= COWBUF_REGION_MERGEABLE;
			break;
		case 'H':
			flags |= COWBUF_REGION_HUGE;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	size = parse_size(argv[optind++]);
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	dev = open_dev();
	fd = cowbuf_region_create(dev, size, flags);
	if (fd < 0)
		die("region create", fd);
	close(dev);
	if (fd != target) {
		if (dup2(fd, target) < 0)
			die("dup2", errno);
		close(fd);
	}
	execvp(argv[optind], argv + optind);
	die(argv[optind], errno);
	return 1;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";

	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version"))
		return cmd_version();
	if (!strcmp(cmd, "info"))
		return cmd_info();
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (!strcmp(cmd, "set"))
		return cmd_set(argc - 1, argv + 1);
	if (!strcmp(cmd, "create"))
		return cmd_create(argc - 1, argv + 1);
	if (!strcmp(cmd, "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(cmd, "merge-demo"))
		return cmd_merge_demo(argc - 1, argv + 1);
	if (!strcmp(cmd, "recv"))
		return cmd_recv(argc - 1, argv + 1);
	if (!strcmp(cmd, "send"))
		return cmd_send(argc - 1, argv + 1);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(argc - 1, argv + 1);
	fprintf(stderr, "cowbufctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
