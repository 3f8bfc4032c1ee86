// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf selftests: the device node and the ioctl conventions every command
 * follows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/cowbuf.h>

#include "cowbuf_util.h"

#include "../kselftest_harness.h"

#define COWBUF_DEV "/dev/cowbuf"

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(COWBUF_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

/* The node is a character device anyone may open, numbered by misc. */
TEST(node_is_world_accessible_misc_device)
{
	struct stat st;
	unsigned int major_nr, minor_nr;
	FILE *f;

	ASSERT_EQ(0, stat(COWBUF_DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 07777);

	f = fopen("/sys/class/misc/cowbuf/dev", "r");
	ASSERT_NE(NULL, f);
	ASSERT_EQ(2, fscanf(f, "%u:%u", &major_nr, &minor_nr));
	fclose(f);
	EXPECT_EQ(10, major_nr); /* MISC_MAJOR */
	EXPECT_EQ(major(st.st_rdev), major_nr);
	EXPECT_EQ(minor(st.st_rdev), minor_nr);
}

TEST(open_read_only_and_write_only)
{
	int fd;

	fd = open(COWBUF_DEV, O_RDONLY);
	ASSERT_GE(fd, 0);
	close(fd);
	fd = open(COWBUF_DEV, O_WRONLY);
	ASSERT_GE(fd, 0);
	close(fd);
}

TEST_F(dev, version_reports_api_and_page_size)
{
	struct cowbuf_version v;

	memset(&v, 0xff, sizeof(v));
	v.flags = 0;
	v.huge_frame_size = 0;
	ASSERT_EQ(0, ioctl(self->fd, COWBUF_IOC_VERSION, &v));
	EXPECT_EQ(COWBUF_API_VERSION, v.api_version);
	EXPECT_EQ((unsigned int)sysconf(_SC_PAGESIZE), v.page_size);
	EXPECT_EQ(0, v.flags);
	/* x86-64: one PMD maps 2 MiB. */
	EXPECT_EQ(2u << 20, v.huge_frame_size);
}

TEST_F(dev, version_rejects_unknown_flags)
{
	struct cowbuf_version v = { .flags = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_VERSION, &v));
	EXPECT_EQ(EINVAL, errno);
	v.flags = 0x80000000u;
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_VERSION, &v));
	EXPECT_EQ(EINVAL, errno);
	/* A refused call writes nothing back. */
	EXPECT_EQ(0, v.api_version);
}

TEST_F(dev, version_rejects_nonzero_huge_frame_size_in)
{
	struct cowbuf_version v = { .huge_frame_size = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_VERSION, &v));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, v.api_version);
}

TEST_F(dev, version_rejects_bad_pointer)
{
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_VERSION, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, COWBUF_IOC_VERSION, (void *)16));
	EXPECT_EQ(EFAULT, errno);
}

/*
 * Commands the module does not know are ENOTTY, whether the magic, the
 * sequence number, the direction or the size is what differs.
 */
TEST_F(dev, unknown_commands_are_enotty)
{
	static const unsigned long cmds[] = {
		_IO(COWBUF_IOCTL_MAGIC, 0x1f),
		_IOWR(COWBUF_IOCTL_MAGIC, 0x1e, struct cowbuf_version),
		_IOR(COWBUF_IOCTL_MAGIC, 0x00, struct cowbuf_version),
		_IOW(COWBUF_IOCTL_MAGIC, 0x00, struct cowbuf_version),
		_IOWR(COWBUF_IOCTL_MAGIC, 0x00, uint64_t),
		_IOWR('x', 0x00, struct cowbuf_version),
		_IO(0, 0x77),
		0xdeadbeef,
	};
	struct cowbuf_version v = { 0 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], &v)) {
			TH_LOG("command %#lx", cmds[i]);
		}
		EXPECT_EQ(ENOTTY, errno) {
			TH_LOG("command %#lx", cmds[i]);
		}
	}
	EXPECT_EQ(0, v.api_version);
}

TEST_F(dev, read_and_write_are_not_supported)
{
	char buf[8] = { 0 };

	EXPECT_EQ(-1, read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
}

int main(int argc, char **argv)
{
	cowbuf_test_require(false);
	return test_harness_run(argc, argv);
}
