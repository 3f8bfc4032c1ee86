/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers the cowbuf tools and selftests share: a monotonic clock,
 * one-number sysfs files (cowbuf's /sys/kernel/mm/cowbuf, KSM's), a kernel
 * thread's pid and the checksum cowbufctl prints. Header-only and not part
 * of libcowbuf's API.
 */
#ifndef COWBUF_TOOL_UTIL_H
#define COWBUF_TOOL_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COWBUF_SYSFS_DIR "/sys/kernel/mm/cowbuf"
/* The scanner's measurement switch (hash_only), not part of the ABI. */
#define COWBUF_DEBUGFS_DIR "/sys/kernel/debug/cowbuf"

/* FNV-1a over the 64-bit words of [@p, @p + @len): what cowbufctl prints. */
static inline uint64_t checksum(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < len / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

/* The pid of the (kernel) thread called @comm, or -1. */
static inline int find_thread(const char *comm)
{
	char path[300], name[64];
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int pid = -1;
	FILE *f;

	if (!dir)
		return -1;
	while (pid < 0 && (d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strncmp(name, comm, strlen(comm)) &&
		    name[strlen(comm)] == '\n')
			pid = atoi(d->d_name);
		fclose(f);
	}
	closedir(dir);
	return pid;
}

/* Seconds on the monotonic clock. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The number in @dir/@name, or -1 if it can't be read. */
static inline long sysfs_get(const char *dir, const char *name)
{
	char path[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Write @value to @dir/@name. Return: 0 or -errno. */
static inline int sysfs_set(const char *dir, const char *name, long value)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", value) < 0) {
		fclose(f);
		return -EIO;
	}
	return fclose(f) ? -errno : 0;
}

static inline long cowbuf_sysfs_get(const char *name)
{
	return sysfs_get(COWBUF_SYSFS_DIR, name);
}

static inline int cowbuf_sysfs_set(const char *name, long value)
{
	return sysfs_set(COWBUF_SYSFS_DIR, name, value);
}

#endif /* COWBUF_TOOL_UTIL_H */
