// SPDX-License-Identifier: MIT
/* Helpers shared by the Check suites.  See check_helpers.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_helpers.h"

static char test_dir[PATH_MAX];
static bool atexit_done;

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void uib_test_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void uib_test_dir_remove(void)
{
	if (!test_dir[0])
		return;
	uib_test_rmtree(test_dir);
	test_dir[0] = 0;
}

const char *uib_test_dir_create(void)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
	uib_test_dir_remove();
	snprintf(test_dir, sizeof(test_dir), "%s/uib-check.XXXXXX", tmp);
	ck_assert_msg(mkdtemp(test_dir) != NULL,
		      "mkdtemp(%s) should succeed: %s", test_dir,
		      strerror(errno));
	if (!atexit_done) {
		atexit(uib_test_dir_remove);
		atexit_done = true;
	}
	return test_dir;
}

int uib_test_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = 0;
	return got;
}

bool uib_test_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}
