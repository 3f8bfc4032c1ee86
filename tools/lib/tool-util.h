/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers the cowbuf tools share: a monotonic clock and the files of
 * /sys/kernel/mm/cowbuf. Header-only and not part of libcowbuf's API.
 */
#ifndef COWBUF_TOOL_UTIL_H
#define COWBUF_TOOL_UTIL_H

#include <stdio.h>
#include <time.h>

#define COWBUF_SYSFS_DIR "/sys/kernel/mm/cowbuf"

/* Seconds on the monotonic clock. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The value of /sys/kernel/mm/cowbuf/@name, or -1 if it can't be read. */
static inline long cowbuf_sysfs_get(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), COWBUF_SYSFS_DIR "/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Write @value to /sys/kernel/mm/cowbuf/@name; 0 or -1. */
static inline int cowbuf_sysfs_set(const char *name, long value)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), COWBUF_SYSFS_DIR "/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ret = fprintf(f, "%ld\n", value) < 0;
	ret |= fclose(f) != 0;
	return ret ? -1 : 0;
}

#endif /* COWBUF_TOOL_UTIL_H */
