/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the Check suites: a private temporary directory per
 * test, and file assertions for the sysfs-shaped tree.
 */
#ifndef UIB_CHECK_HELPERS_H
#define UIB_CHECK_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include "check_suites.h"

/*
 * Makes a fresh directory (mkdtemp under $TMPDIR or /tmp) for the running
 * test and returns its path.  It is removed by uib_test_dir_remove(), and
 * also at process exit, so that a test that fails in Check's forked child
 * (which exits without running teardown) leaves nothing behind.
 */
const char *uib_test_dir_create(void);
void uib_test_dir_remove(void);

/* rm -rf */
void uib_test_rmtree(const char *path);

/* Reads a whole (small) file into buf; returns its length or -errno. */
int uib_test_read_file(const char *path, char *buf, size_t len);
bool uib_test_exists(const char *path);

/* Asserts that the file at printf-style path holds exactly 'expected'. */
#define ck_assert_file_eq(expected, ...)                                     \
	do {                                                                 \
		char _p[4096], _b[4096];                                     \
		int _n;                                                      \
		snprintf(_p, sizeof(_p), __VA_ARGS__);                       \
		_n = uib_test_read_file(_p, _b, sizeof(_b));                 \
		ck_assert_msg(_n >= 0, "%s should exist and be readable",    \
			      _p);                                           \
		ck_assert_msg(!strcmp(_b, (expected)),                       \
			      "%s should hold \"%s\", holds \"%s\"", _p,     \
			      (expected), _b);                               \
	} while (0)

#define ck_assert_path_exists(...)                                           \
	do {                                                                 \
		char _p[4096];                                               \
		snprintf(_p, sizeof(_p), __VA_ARGS__);                       \
		ck_assert_msg(uib_test_exists(_p), "%s should exist", _p);   \
	} while (0)

#define ck_assert_path_absent(...)                                           \
	do {                                                                 \
		char _p[4096];                                               \
		snprintf(_p, sizeof(_p), __VA_ARGS__);                       \
		ck_assert_msg(!uib_test_exists(_p), "%s should not exist",   \
			      _p);                                           \
	} while (0)

#endif /* UIB_CHECK_HELPERS_H */
