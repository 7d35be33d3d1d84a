// SPDX-License-Identifier: MIT
/*
 * Unit: the ipoibd.conf parser (ipoibd/config.c).  Every bad input must be
 * refused with a message naming the file, the line and the problem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "check_suites.h"
#include "config.h"

static struct ipoibd_config cfg;
static char err[512];

static int parse(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int ret;

	ck_assert_ptr_nonnull(f);
	/* Each text is a file of its own. */
	ipoibd_config_fini(&cfg);
	ipoibd_config_init(&cfg);
	err[0] = '\0';
	ret = ipoibd_config_parse(&cfg, f, "ipoibd.conf", err, sizeof(err));
	fclose(f);
	return ret;
}

static void setup(void)
{
	ipoibd_config_init(&cfg);
}

static void teardown(void)
{
	ipoibd_config_fini(&cfg);
}

/* The text must be refused with exactly this message. */
#define ck_refused(text, msg)                                                \
	do {                                                                 \
		ck_assert_int_eq(parse(text), -EINVAL);                      \
		ck_assert_msg(!strcmp(err, (msg)),                           \
			      "should be refused with \"%s\", got \"%s\"",   \
			      (msg), err);                                   \
	} while (0)

START_TEST(test_full_file)
{
	const char *text =
		"# two links\n"
		"[daemon]\n"
		"log-level = debug\n"
		"\n"
		"[link ib0]\n"
		"  device = uib0   \n"
		"port=2\n"
		"queues = 4\n"
		"pkey = 0x8001\n"
		"mode = connected\n"
		"mtu = 2044\n"
		"; another comment\n"
		"[link ib1]\n"
		"device = uib1\n";
	struct ipoibd_link_config *l;

	ck_assert_msg(parse(text) == 0, "a valid file should parse: %s", err);
	ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
	ck_assert_uint_eq(cfg.num_links, 2);
	l = &cfg.links[0];
	ck_assert_str_eq(l->ifname, "ib0");
	ck_assert_str_eq(l->device, "uib0");
	ck_assert_uint_eq(l->port, 2);
	ck_assert_uint_eq(l->queues, 4);
	ck_assert_uint_eq(l->pkey, 0x8001);
	ck_assert_int_eq(l->mode, IPOIBD_MODE_CONNECTED);
	ck_assert_uint_eq(l->mtu, 2044);
	ck_assert_uint_eq(l->line, 5);
	l = &cfg.links[1];
	ck_assert_str_eq(l->ifname, "ib1");
	ck_assert_msg(l->port == 1 && l->queues == 1 && l->pkey == 0xffff &&
		      l->mode == IPOIBD_MODE_DATAGRAM && l->mtu == 0,
		      "defaults should be port 1, 1 queue, P_Key 0xffff, datagram, auto MTU");
}
END_TEST

START_TEST(test_empty_file)
{
	ck_assert_int_eq(parse("# nothing\n\n"), 0);
	ck_assert_uint_eq(cfg.num_links, 0);
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
}
END_TEST

START_TEST(test_unknown_key)
{
	ck_refused("[link ib0]\ndevice = uib0\n\n\n\n\nqeues = 2\n",
		   "ipoibd.conf:7: unknown key 'qeues'");
	ck_refused("[daemon]\nport = 1\n", "ipoibd.conf:2: unknown key 'port'");
}
END_TEST

START_TEST(test_malformed_lines)
{
	ck_refused("[link ib0\n",
		   "ipoibd.conf:1: malformed section header (expected '[link NAME]' or '[daemon]')");
	ck_refused("[link]\n",
		   "ipoibd.conf:1: section [link] needs an interface name: [link ib0]");
	ck_refused("[links ib0]\n", "ipoibd.conf:1: unknown section '[links]'");
	ck_refused("[link ib0]\ndevice uib0\n",
		   "ipoibd.conf:2: expected 'key = value', '[section]' or a comment");
	ck_refused("device = uib0\n",
		   "ipoibd.conf:1: key 'device' outside a section");
	ck_refused("[link ib0]\ndevice =\n",
		   "ipoibd.conf:2: key 'device' has no value");
}
END_TEST

START_TEST(test_bad_values)
{
	ck_refused("[link ib0]\ndevice = uib0\nport = 0\n",
		   "ipoibd.conf:3: invalid port '0' (1 to 255)");
	ck_refused("[link ib0]\ndevice = uib0\nport = 1x\n",
		   "ipoibd.conf:3: invalid port '1x' (1 to 255)");
	ck_refused("[link ib0]\ndevice = uib0\nqueues = 65\n",
		   "ipoibd.conf:3: invalid queues '65' (1 to 64)");
	ck_refused("[link ib0]\ndevice = uib0\npkey = 0x8000\n",
		   "ipoibd.conf:3: invalid pkey '0x8000' (0x0001 to 0xffff, not 0x8000)");
	ck_refused("[link ib0]\ndevice = uib0\npkey = -1\n",
		   "ipoibd.conf:3: invalid pkey '-1' (0x0001 to 0xffff, not 0x8000)");
	ck_refused("[link ib0]\ndevice = uib0\nmode = fast\n",
		   "ipoibd.conf:3: invalid mode 'fast' (datagram or connected)");
	ck_refused("[link ib0]\ndevice = uib0\nmtu = 65521\n",
		   "ipoibd.conf:3: invalid mtu '65521' (68 to 65520, or auto)");
	ck_refused("[link ib0]\ndevice = uib/0\n",
		   "ipoibd.conf:2: invalid device name 'uib/0'");
	ck_refused("[daemon]\nlog-level = loud\n",
		   "ipoibd.conf:2: invalid log-level 'loud' (error, warning, info or debug)");
}
END_TEST

START_TEST(test_interface_names)
{
	ck_refused("[link ib0123456789abcdef]\ndevice = uib0\n",
		   "ipoibd.conf:1: invalid interface name 'ib0123456789abcdef' (1 to 15 letters, digits, '_', '-' or '.')");
	ck_refused("[link ib/0]\ndevice = uib0\n",
		   "ipoibd.conf:1: invalid interface name 'ib/0' (1 to 15 letters, digits, '_', '-' or '.')");
	ck_refused("[link ib 0]\n",
		   "ipoibd.conf:1: invalid interface name 'ib 0' (1 to 15 letters, digits, '_', '-' or '.')");
	ck_assert_int_eq(ipoibd_ifname_valid("ib0.8001"), 0);
	ck_assert_int_eq(ipoibd_ifname_valid("abcdefghijklmno"), 0);
	ck_assert_int_eq(ipoibd_ifname_valid("abcdefghijklmnop"), -EINVAL);
	ck_assert_int_eq(ipoibd_ifname_valid(".."), -EINVAL);
	ck_assert_int_eq(ipoibd_ifname_valid("ib:0"), -EINVAL);
	ck_assert_int_eq(ipoibd_ifname_valid(""), -EINVAL);
}
END_TEST

START_TEST(test_duplicates)
{
	ck_refused("[link ib0]\ndevice = uib0\nport = 1\nport = 2\n",
		   "ipoibd.conf:4: duplicate key 'port' (first on line 3)");
	ck_refused("[link ib0]\ndevice = uib0\n[link ib0]\ndevice = uib1\n",
		   "ipoibd.conf:3: duplicate link 'ib0' (first on line 1)");
	ck_refused("[link ib0]\ndevice = uib0\n[link ib1]\ndevice = uib0\n",
		   "ipoibd.conf:3: link 'ib1' uses uib0 port 1 P_Key 0xffff like link 'ib0' (line 1)");
	/* Another P_Key on the same port is another link. */
	ck_assert_int_eq(parse("[link ib0]\ndevice = uib0\n[link ib0.8001]\ndevice = uib0\npkey = 0x8001\n"), 0);
}
END_TEST

START_TEST(test_missing_device)
{
	ck_refused("[link ib0]\nport = 1\n[link ib1]\ndevice = uib0\n",
		   "ipoibd.conf:1: link 'ib0' has no 'device'");
	ck_refused("[link ib0]\nport = 1\n",
		   "ipoibd.conf:1: link 'ib0' has no 'device'");
}
END_TEST

START_TEST(test_long_line)
{
	char text[2100];

	memset(text, 'x', sizeof(text) - 2);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	ck_refused(text, "ipoibd.conf:1: line longer than 1024 characters");
}
END_TEST

START_TEST(test_command_line_link)
{
	ck_assert_int_eq(ipoibd_config_add_link(&cfg, "ib0", "uib0", 1, err,
						sizeof(err)), 0);
	ck_assert_uint_eq(cfg.num_links, 1);
	ck_assert_int_eq(ipoibd_config_add_link(&cfg, "bad name", "uib0", 1,
						err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "invalid interface name 'bad name'"),
		      "should name the bad interface: %s", err);
	ck_assert_int_eq(ipoibd_config_add_link(&cfg, "ib1", "uib0", 0, err,
						sizeof(err)), -EINVAL);
	ck_assert_uint_eq(cfg.num_links, 1);
}
END_TEST

START_TEST(test_load_missing_file)
{
	ck_assert_int_eq(ipoibd_config_load(&cfg, "/nonexistent/ipoibd.conf",
					    err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/ipoibd.conf: No such file or directory");
}
END_TEST

Suite *make_config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_file);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_malformed_lines);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_interface_names);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_missing_device);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_command_line_link);
	tcase_add_test(tc, test_load_missing_file);
	suite_add_tcase(s, tc);
	return s;
}
