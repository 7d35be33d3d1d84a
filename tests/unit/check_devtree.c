// SPDX-License-Identifier: MIT
/*
 * Unit: a device's presence on the host (providers/uib/devtree.c): names,
 * uibctl add's arguments, GUID/GID text, and the lifecycle against a
 * temporary run directory.  UIB_DEV_DIR points the uverbsN nodes at a
 * temporary directory too, so this runs without access to /dev.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "check_helpers.h"
#include "devtree.h"
#include "uib_config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- names ---- */

START_TEST(test_name_valid)
{
	static const char *const good[] = {
		"uib0", "a", "mlx5_0", "dev-1", "A1",
		"abcdefghijklmnopqrstuvwxyz01234",	/* 31 characters */
	};
	static const char *const bad[] = {
		"", "0uib", "_uib", "-uib", ".uib", "uib/0", "uib 0", "uib.0",
		"uib0\n", "ü", "../x",
		"abcdefghijklmnopqrstuvwxyz012345",	/* 32 characters */
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++)
		ck_assert_msg(uib_name_valid(good[i]) == 0,
			      "'%s' should be a valid device name", good[i]);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(uib_name_valid(bad[i]) == -EINVAL,
			      "'%s' should be refused as a device name", bad[i]);
}
END_TEST

/* ---- uibctl add arguments ---- */

/* What the last parse() gave for --owner/--group/--mode. */
static struct uib_dev_access ck_acc;

/* Runs uib_parse_add_args on a NULL-terminated list (argv[0] = "add"). */
static int parse(struct uib_dev_config *cfg, char *err, size_t errlen, ...)
{
	char *argv[32];
	const char *a;
	va_list ap;
	int argc = 0;

	argv[argc++] = (char *)"add";
	va_start(ap, errlen);
	while ((a = va_arg(ap, const char *)) && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = 0;
	return uib_parse_add_args(argc, argv, cfg, &ck_acc, err, errlen);
}

/* Asserts that parsing fails with -EINVAL and an error naming 'needle'. */
#define ck_assert_parse_fails(needle, ...)                                   \
	do {                                                                 \
		struct uib_dev_config _c;                                    \
		char _e[256];                                                \
		int _r = parse(&_c, _e, sizeof(_e), __VA_ARGS__, NULL);      \
		ck_assert_msg(_r == -EINVAL,                                 \
			      "parsing '%s' should fail with -EINVAL, got %d", \
			      #__VA_ARGS__, _r);                             \
		ck_assert_msg(strstr(_e, (needle)) != NULL,                  \
			      "the error for '%s' should mention \"%s\", "   \
			      "it says \"%s\"", #__VA_ARGS__, (needle), _e); \
	} while (0)

START_TEST(test_parse_defaults)
{
	struct uib_dev_config cfg;
	char err[256];

	ck_assert_int_eq(parse(&cfg, err, sizeof(err), "uib0", NULL), 0);
	ck_assert_str_eq(cfg.name, "uib0");
	ck_assert_msg(cfg.num_ports == 1, "the default should be 1 port");
	ck_assert_msg(cfg.num_vfs == 0, "the default should be 0 VFs");
	ck_assert_msg(cfg.node_guid == 0,
		      "the default GUID should be 0 (assigned at add)");
	ck_assert_msg(cfg.base_lid == 0,
		      "the default LID should be 0 (assigned at add)");
}
END_TEST

START_TEST(test_parse_all_options_before_name)
{
	struct uib_dev_config cfg;
	char err[256];
	int ret;

	ret = parse(&cfg, err, sizeof(err), "--ports", "4", "--vfs", "64",
		    "--guid", "0x0002c90300001234", "--lid", "0x10", "uibx",
		    NULL);
	ck_assert_msg(ret == 0, "valid options should parse: %s", err);
	ck_assert_str_eq(cfg.name, "uibx");
	ck_assert_uint_eq(cfg.num_ports, 4);
	ck_assert_uint_eq(cfg.num_vfs, 64);
	ck_assert_msg(cfg.node_guid == 0x0002c90300001234ull,
		      "--guid should be taken as hex with 0x");
	ck_assert_uint_eq(cfg.base_lid, 0x10);
}
END_TEST

START_TEST(test_parse_options_after_name)
{
	struct uib_dev_config cfg;
	char err[256];
	int ret;

	ret = parse(&cfg, err, sizeof(err), "uiby", "--ports", "2",
		    "--lid=100", "--vfs=1", NULL);
	ck_assert_msg(ret == 0, "options after the name should parse: %s",
		      err);
	ck_assert_str_eq(cfg.name, "uiby");
	ck_assert_uint_eq(cfg.num_ports, 2);
	ck_assert_uint_eq(cfg.base_lid, 100);
	ck_assert_uint_eq(cfg.num_vfs, 1);

	/* Options between... and a second parse starts afresh. */
	ret = parse(&cfg, err, sizeof(err), "--ports", "3", "uibz", "--vfs",
		    "2", NULL);
	ck_assert_msg(ret == 0 && cfg.num_ports == 3 && cfg.num_vfs == 2 &&
		      !strcmp(cfg.name, "uibz"),
		      "options on both sides of the name should parse: %s",
		      err);
	ret = parse(&cfg, err, sizeof(err), "uibw", NULL);
	ck_assert_msg(ret == 0 && cfg.num_ports == 1 && cfg.num_vfs == 0,
		      "a parse should not inherit the previous one's options");
}
END_TEST

START_TEST(test_parse_bad_ports)
{
	ck_assert_parse_fails("--ports must be 1 to 4, not '0'", "--ports",
			      "0", "uib0");
	ck_assert_parse_fails("not '5'", "--ports", "5", "uib0");
	ck_assert_parse_fails("not 'x'", "--ports", "x", "uib0");
	ck_assert_parse_fails("not '-1'", "--ports", "-1", "uib0");
	ck_assert_parse_fails("not ''", "--ports", "", "uib0");
	ck_assert_parse_fails("not '2x'", "uib0", "--ports", "2x");
	ck_assert_parse_fails("not ' 2'", "uib0", "--ports", " 2");
}
END_TEST

START_TEST(test_parse_bad_vfs)
{
	ck_assert_parse_fails("--vfs must be 0 to 64, not '65'", "--vfs",
			      "65", "uib0");
	ck_assert_parse_fails("not 'many'", "--vfs", "many", "uib0");
}
END_TEST

START_TEST(test_parse_bad_guid)
{
	ck_assert_parse_fails("--guid must be a non-zero 64-bit number, not '0'",
			      "--guid", "0", "uib0");
	ck_assert_parse_fails("not 'zz'", "--guid", "zz", "uib0");
	ck_assert_parse_fails("not '0x10000000000000000'", "--guid",
			      "0x10000000000000000", "uib0");
	/* Port GUIDs are node GUID + 1..4: they must not wrap. */
	ck_assert_parse_fails("not '0xffffffffffffffff'", "--guid",
			      "0xffffffffffffffff", "uib0");
}
END_TEST

START_TEST(test_parse_bad_lid)
{
	ck_assert_parse_fails("--lid must be a unicast LID, 1 to 0xbfff, not '0'",
			      "--lid", "0", "uib0");
	ck_assert_parse_fails("not '0xc000'", "--lid", "0xc000", "uib0");
	ck_assert_parse_fails("not 'lid'", "--lid", "lid", "uib0");
	ck_assert_parse_fails("--lid 0xbfff leaves no LID for port 2",
			      "--lid", "0xbfff", "--ports", "2", "uib0");
}
END_TEST

START_TEST(test_parse_bad_options_and_names)
{
	ck_assert_parse_fails("unknown or incomplete option '--bogus'",
			      "--bogus", "uib0");
	ck_assert_parse_fails("unknown or incomplete option '-p'", "-p", "2",
			      "uib0");
	ck_assert_parse_fails("unknown or incomplete option '--ports'",
			      "uib0", "--ports");
	ck_assert_parse_fails("missing device name", "--ports", "2");
	ck_assert_parse_fails("expected one device name, got 'uib0' and 'uib1'",
			      "uib0", "uib1");
	ck_assert_parse_fails("invalid device name '0uib'", "0uib");
	ck_assert_parse_fails("invalid device name 'a/b'", "a/b");
}
END_TEST

START_TEST(test_parse_missing_name_no_args)
{
	struct uib_dev_config cfg;
	char err[256];
	char *argv[] = { (char *)"add", NULL };

	ck_assert_msg(uib_parse_add_args(1, argv, &cfg, &ck_acc, err, sizeof(err)) ==
			      -EINVAL && strstr(err, "missing device name"),
		      "'add' alone should fail with 'missing device name', says \"%s\"",
		      err);
}
END_TEST

/* ---- text formats ---- */

START_TEST(test_format_guid_gid)
{
	char buf[64];

	uib_format_guid(0x0275696200000100ull, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0275:6962:0000:0100");
	uib_format_guid(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0000:0000:0000:0000");
	uib_format_guid(0xffffffffffffffffull, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ffff:ffff:ffff:ffff");
	uib_format_gid(0xfe80000000000000ull, 0x0275696200000101ull, buf,
		       sizeof(buf));
	ck_assert_str_eq(buf, "fe80:0000:0000:0000:0275:6962:0000:0101");
	uib_format_gid(0, 0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0000:0000:0000:0000:0000:0000:0000:0000");
}
END_TEST

/* ---- lifecycle in a temporary run directory ---- */

static const char *tdir;
static char run_dir[4096], dev_dir[4200], sys_dir[4200];
static struct uib_rundir rd;

static void lc_setup(void)
{
	char err[256] = "";
	int ret;

	tdir = uib_test_dir_create();
	snprintf(run_dir, sizeof(run_dir), "%s/run", tdir);
	snprintf(dev_dir, sizeof(dev_dir), "%s/dev-infiniband", tdir);
	snprintf(sys_dir, sizeof(sys_dir), "%s/sys", run_dir);
	ck_assert_int_eq(setenv("UIB_DEV_DIR", dev_dir, 1), 0);
	ret = uib_rundir_init(&rd, run_dir);
	ck_assert_msg(ret == 0, "uib_rundir_init(%s) should succeed: %d",
		      run_dir, ret);
	ck_assert_str_eq(rd.devnodes, dev_dir);
	ret = uib_rundir_lock(&rd, err, sizeof(err));
	ck_assert_msg(ret == 0, "uib_rundir_lock should succeed: %s", err);
}

static void lc_teardown(void)
{
	uib_rundir_unlock(&rd);
	unsetenv("UIB_DEV_DIR");
	uib_test_dir_remove();
}

/* uibctl add NAME with the given argument list. */
static int add(const char *name, unsigned int ports, uint64_t guid,
	       uint16_t lid, char *err, size_t errlen)
{
	struct uib_dev_config cfg = {
		.num_ports = ports, .node_guid = guid, .base_lid = lid,
	};

	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	err[0] = 0;
	return uib_dev_add(&rd, &cfg, NULL, err, errlen);
}

#define ck_add_ok(name, ports, guid, lid)                                    \
	do {                                                                 \
		char _e[256];                                                \
		int _r = add(name, ports, guid, lid, _e, sizeof(_e));        \
		ck_assert_msg(_r == 0, "adding %s should succeed: %d %s",    \
			      name, _r, _e);                                 \
	} while (0)

static void open_dev(const char *name, struct uib_state *st)
{
	char path[4096];
	int ret;

	uib_state_path(&rd, name, path, sizeof(path));
	st->fd = -1;
	ret = uib_state_open(path, st);
	ck_assert_msg(ret == 0, "the state of %s should open: %d", name, ret);
}

START_TEST(test_rundir_init)
{
	struct uib_rundir r2;

	ck_assert_msg(uib_rundir_init(&r2, "relative/dir") == -EINVAL,
		      "a relative run directory should be refused");
	ck_assert_int_eq(uib_rundir_init(&r2, "/tmp/x///"), 0);
	ck_assert_msg(!strcmp(r2.root, "/tmp/x") &&
		      !strcmp(r2.sys, "/tmp/x/sys"),
		      "trailing slashes should be dropped (%s, %s)", r2.root,
		      r2.sys);
	ck_assert_int_eq(setenv("UIB_RUN_DIR", "/tmp/from-env", 1), 0);
	ck_assert_int_eq(uib_rundir_init(&r2, NULL), 0);
	ck_assert_msg(!strcmp(r2.root, "/tmp/from-env"),
		      "$UIB_RUN_DIR should be used without --run-dir");
	unsetenv("UIB_RUN_DIR");
	unsetenv("UIB_DEV_DIR");
	ck_assert_int_eq(uib_rundir_init(&r2, NULL), 0);
	ck_assert_msg(!strcmp(r2.root, UIB_DEFAULT_RUN_DIR) &&
		      !strcmp(r2.devnodes, "/dev/infiniband"),
		      "the defaults should be %s and /dev/infiniband",
		      UIB_DEFAULT_RUN_DIR);
}
END_TEST

START_TEST(test_add_writes_sysfs)
{
	struct uib_state st;
	char host[256] = "localhost", want[512], guid[24], gid[48], t[64];
	const char *d;
	struct stat sb;
	ssize_t n;
	int idx;

	ck_add_ok("uib0", 1, 0, 0);
	open_dev("uib0", &st);
	ck_assert_msg(atomic_load(&st.sh->ready) == 1,
		      "an added device should be ready");
	idx = st.sh->uverbs_index;
	ck_assert_msg(idx == 0,
		      "the first device in an empty node directory should be uverbs0, is %d",
		      idx);

	ck_assert_file_eq("6\n", "%s/class/infiniband_verbs/abi_version",
			  sys_dir);
	ck_assert_file_eq("uib0\n", "%s/class/infiniband_verbs/uverbs0/ibdev",
			  sys_dir);
	ck_assert_file_eq("0:0\n", "%s/class/infiniband_verbs/uverbs0/dev",
			  sys_dir);
	ck_assert_file_eq("6\n", "%s/class/infiniband_verbs/uverbs0/abi_version",
			  sys_dir);
	ck_assert_path_absent("%s/class/infiniband_verbs/.uverbs0.tmp", sys_dir);

	d = "class/infiniband/uib0";
	uib_format_guid(st.sh->node_guid, guid, sizeof(guid));
	snprintf(want, sizeof(want), "%s\n", guid);
	ck_assert_msg(st.sh->node_guid != 0, "a node GUID should be assigned");
	ck_assert_file_eq("1: CA\n", "%s/%s/node_type", sys_dir, d);
	ck_assert_file_eq(want, "%s/%s/node_guid", sys_dir, d);
	ck_assert_file_eq(want, "%s/%s/sys_image_guid", sys_dir, d);
	ck_assert_file_eq(UIB_VERSION "\n", "%s/%s/fw_ver", sys_dir, d);
	ck_assert_file_eq("uib\n", "%s/%s/hca_type", sys_dir, d);
	ck_assert_file_eq("UIB_SOFT_HCA\n", "%s/%s/board_id", sys_dir, d);
	gethostname(host, sizeof(host) - 1);
	snprintf(want, sizeof(want), "%s uib0\n", host);
	ck_assert_file_eq(want, "%s/%s/node_desc", sys_dir, d);

	ck_assert_file_eq("uib:uib0\n", "%s/%s/device/modalias", sys_dir, d);
	ck_assert_file_eq("0\n", "%s/%s/device/sriov_numvfs", sys_dir, d);
	snprintf(want, sizeof(want), "%s\n", run_dir);
	ck_assert_file_eq(want, "%s/%s/device/uib_run_dir", sys_dir, d);

	ck_assert_msg(st.sh->port[0].lid == 1,
		      "the first device should get LID 1, got %u",
		      st.sh->port[0].lid);
	ck_assert_file_eq("0x1\n", "%s/%s/ports/1/lid", sys_dir, d);
	ck_assert_file_eq("0x1\n", "%s/%s/ports/1/sm_lid", sys_dir, d);
	ck_assert_file_eq("4: ACTIVE\n", "%s/%s/ports/1/state", sys_dir, d);
	ck_assert_file_eq("5: LinkUp\n", "%s/%s/ports/1/phys_state", sys_dir, d);
	ck_assert_file_eq("100 Gb/sec (4X EDR)\n", "%s/%s/ports/1/rate",
			  sys_dir, d);
	ck_assert_file_eq("InfiniBand\n", "%s/%s/ports/1/link_layer", sys_dir,
			  d);
	uib_format_guid(st.sh->port[0].guid, guid, sizeof(guid));
	ck_assert_msg(st.sh->port[0].guid == st.sh->node_guid + 1,
		      "port 1 GUID should be node GUID + 1");
	snprintf(gid, sizeof(gid), "fe80:0000:0000:0000:%s\n", guid);
	ck_assert_file_eq(gid, "%s/%s/ports/1/gids/0", sys_dir, d);
	ck_assert_file_eq("0000:0000:0000:0000:0000:0000:0000:0000\n",
			  "%s/%s/ports/1/gids/1", sys_dir, d);
	ck_assert_file_eq("0xffff\n", "%s/%s/ports/1/pkeys/0", sys_dir, d);
	ck_assert_file_eq("0x0000\n", "%s/%s/ports/1/pkeys/1", sys_dir, d);
	ck_assert_path_absent("%s/%s/ports/2", sys_dir, d);
	/* libibverbs requires gid_attrs/types/I wherever gid_attrs/ exists. */
	ck_assert_path_absent("%s/%s/ports/1/gid_attrs", sys_dir, d);

	/* A character device 1:3 where mknod is allowed (root), else a
	 * link to /dev/null. */
	snprintf(want, sizeof(want), "%s/uverbs0", dev_dir);
	ck_assert_int_eq(lstat(want, &sb), 0);
	if (S_ISCHR(sb.st_mode)) {
		ck_assert_msg(sb.st_rdev == makedev(1, 3),
			      "%s should be a char device 1:3", want);
	} else {
		n = readlink(want, t, sizeof(t) - 1);
		ck_assert_msg(n > 0, "%s should be a char device or a symlink",
			      want);
		t[n] = 0;
		ck_assert_msg(!strcmp(t, "/dev/null"),
			      "%s should point to /dev/null, points to %s",
			      want, t);
	}
	uib_state_close(&st);
}
END_TEST

START_TEST(test_add_vfs_and_ports)
{
	struct uib_dev_config cfg = { .name = "uibv", .num_ports = 3,
				      .num_vfs = 8 };
	struct uib_state st;
	char err[256] = "";
	unsigned int p;

	ck_assert_msg(uib_dev_add(&rd, &cfg, NULL, err, sizeof(err)) == 0,
		      "adding a 3-port device with VFs should succeed: %s",
		      err);
	ck_assert_file_eq("8\n", "%s/class/infiniband/uibv/device/sriov_numvfs",
			  sys_dir);
	open_dev("uibv", &st);
	for (p = 1; p <= 3; p++) {
		char lid[16];

		snprintf(lid, sizeof(lid), "0x%x\n", p);
		ck_assert_file_eq(lid, "%s/class/infiniband/uibv/ports/%u/lid",
				  sys_dir, p);
		ck_assert_file_eq("4: ACTIVE\n",
				  "%s/class/infiniband/uibv/ports/%u/state",
				  sys_dir, p);
	}
	ck_assert_path_absent("%s/class/infiniband/uibv/ports/4", sys_dir);
	uib_state_close(&st);
}
END_TEST

START_TEST(test_add_duplicate)
{
	struct uib_state st;
	char err[256], guid[64];
	uint64_t g;
	int ret;

	ck_add_ok("uib0", 1, 0, 0);
	open_dev("uib0", &st);
	g = st.sh->node_guid;
	uib_state_close(&st);

	ret = add("uib0", 2, 0, 0, err, sizeof(err));
	ck_assert_msg(ret == -EEXIST, "a second uib0 should give -EEXIST, got %d",
		      ret);
	ck_assert_msg(strstr(err, "uib0") && strstr(err, "already exists"),
		      "the error should say uib0 already exists: \"%s\"", err);

	open_dev("uib0", &st);
	ck_assert_msg(atomic_load(&st.sh->ready) == 1 && st.sh->node_guid == g &&
		      st.sh->num_ports == 1 && st.sh->uverbs_index == 0,
		      "the failed add should leave the first uib0 as it was");
	uib_state_close(&st);
	uib_format_guid(g, guid, sizeof(guid));
	strcat(guid, "\n");
	ck_assert_file_eq(guid, "%s/class/infiniband/uib0/node_guid", sys_dir);
	ck_assert_file_eq("uib0\n", "%s/class/infiniband_verbs/uverbs0/ibdev",
			  sys_dir);
	ck_assert_path_absent("%s/class/infiniband/uib0/ports/2", sys_dir);
	ck_assert_path_exists("%s/uverbs0", dev_dir);
	ck_assert_path_absent("%s/uverbs1", dev_dir);
}
END_TEST

START_TEST(test_two_devices_distinct_ids)
{
	struct uib_state a, b;
	unsigned int p;

	ck_add_ok("uib0", 1, 0, 0);
	ck_add_ok("uib1", 2, 0, 0);
	open_dev("uib0", &a);
	open_dev("uib1", &b);
	ck_assert_msg(a.sh->node_guid != b.sh->node_guid,
		      "two devices should have distinct node GUIDs");
	ck_assert_msg(a.sh->uverbs_index != b.sh->uverbs_index,
		      "two devices should have distinct uverbs numbers");
	for (p = 0; p < 2; p++) {
		ck_assert_msg(b.sh->port[p].lid != a.sh->port[0].lid,
			      "uib1 port %u should not share uib0's LID 0x%x",
			      p + 1, a.sh->port[0].lid);
		ck_assert_msg(b.sh->port[p].guid != a.sh->port[0].guid &&
			      b.sh->port[p].guid != a.sh->node_guid,
			      "uib1 port %u GUID should be unique", p + 1);
	}
	ck_assert_msg(b.sh->port[0].lid != b.sh->port[1].lid,
		      "the two ports of uib1 should have distinct LIDs");
	uib_state_close(&a);
	uib_state_close(&b);
	ck_assert_file_eq("uib1\n", "%s/class/infiniband_verbs/uverbs1/ibdev",
			  sys_dir);
}
END_TEST

START_TEST(test_lid_clash)
{
	char err[256];
	int ret;

	ck_add_ok("uib0", 2, 0, 0x10);	/* LIDs 0x10, 0x11 */
	ret = add("uib1", 1, 0, 0x10, err, sizeof(err));
	ck_assert_msg(ret == -EEXIST,
		      "--lid of another device's port should give -EEXIST, got %d",
		      ret);
	ck_assert_msg(strstr(err, "LID 0x10") && strstr(err, "uib0"),
		      "the error should name the LID and its owner: \"%s\"",
		      err);
	ret = add("uib1", 2, 0, 0xf, err, sizeof(err));
	ck_assert_msg(ret == -EEXIST,
		      "a LID range overlapping another device should give -EEXIST, got %d",
		      ret);
	ck_assert_path_absent("%s/dev/uib1.state", run_dir);
	ck_assert_path_absent("%s/class/infiniband/uib1", sys_dir);
	ck_add_ok("uib1", 1, 0, 0x12);
	/* Automatic LIDs skip the ones in use. */
	ck_add_ok("uib2", 1, 0, 0);
	ck_assert_file_eq("0x1\n", "%s/class/infiniband/uib2/ports/1/lid",
			  sys_dir);
}
END_TEST

START_TEST(test_guid_clash)
{
	char err[256];
	int ret;

	ck_add_ok("uib0", 1, 0x0002c90300001200ull, 0);
	ret = add("uib1", 1, 0x0002c90300001200ull, 0, err, sizeof(err));
	ck_assert_msg(ret == -EEXIST,
		      "--guid of another device should give -EEXIST, got %d",
		      ret);
	ck_assert_msg(strstr(err, "uib0") != NULL,
		      "the error should name the device that has the GUID: \"%s\"",
		      err);
	ck_assert_path_absent("%s/dev/uib1.state", run_dir);
}
END_TEST

START_TEST(test_set_port)
{
	struct uib_state st;
	char err[256];
	uint32_t gen;
	int ret;

	ck_add_ok("uib0", 2, 0, 0);
	open_dev("uib0", &st);
	gen = atomic_load(&st.sh->port[1].event_gen);

	ret = uib_dev_set_port(&rd, "uib0", 2, 0, err, sizeof(err));
	ck_assert_msg(ret == 0, "port 2 down should succeed: %s", err);
	ck_assert_msg(atomic_load(&st.sh->port[1].state) == IBV_PORT_DOWN,
		      "port 2 should be DOWN in the shared state");
	ck_assert_msg(atomic_load(&st.sh->port[1].event_gen) == gen + 1,
		      "a port change should bump its event generation");
	ck_assert_msg(atomic_load(&st.sh->port[0].state) == IBV_PORT_ACTIVE,
		      "port 1 should stay ACTIVE");
	ck_assert_file_eq("1: DOWN\n", "%s/class/infiniband/uib0/ports/2/state",
			  sys_dir);
	ck_assert_file_eq("3: Disabled\n",
			  "%s/class/infiniband/uib0/ports/2/phys_state",
			  sys_dir);
	ck_assert_file_eq("4: ACTIVE\n",
			  "%s/class/infiniband/uib0/ports/1/state", sys_dir);

	ret = uib_dev_set_port(&rd, "uib0", 2, 1, err, sizeof(err));
	ck_assert_msg(ret == 0, "port 2 up should succeed: %s", err);
	ck_assert_msg(atomic_load(&st.sh->port[1].state) == IBV_PORT_ACTIVE,
		      "port 2 should be ACTIVE again in the shared state");
	ck_assert_file_eq("4: ACTIVE\n",
			  "%s/class/infiniband/uib0/ports/2/state", sys_dir);
	ck_assert_file_eq("5: LinkUp\n",
			  "%s/class/infiniband/uib0/ports/2/phys_state",
			  sys_dir);
	uib_state_close(&st);

	ret = uib_dev_set_port(&rd, "uib0", 3, 1, err, sizeof(err));
	ck_assert_msg(ret == -EINVAL && strstr(err, "no port 3"),
		      "port 3 of a 2-port device should be refused: %d \"%s\"",
		      ret, err);
	ret = uib_dev_set_port(&rd, "uib0", 0, 1, err, sizeof(err));
	ck_assert_msg(ret == -EINVAL && strstr(err, "no port 0"),
		      "port 0 should be refused: %d \"%s\"", ret, err);
	ret = uib_dev_set_port(&rd, "nosuch", 1, 1, err, sizeof(err));
	ck_assert_msg(ret == -ENODEV && strstr(err, "no device named nosuch"),
		      "an unknown device should give -ENODEV: %d \"%s\"", ret,
		      err);
	ret = uib_dev_set_port(&rd, "../x", 1, 1, err, sizeof(err));
	ck_assert_msg(ret == -ENODEV,
		      "an invalid name should give -ENODEV: %d", ret);
}
END_TEST

START_TEST(test_del)
{
	struct uib_state st;
	char err[256];
	int ret;

	ck_add_ok("uib0", 1, 0, 0);
	ck_add_ok("uib1", 1, 0, 0);
	ret = uib_dev_del(&rd, "uib0", false, err, sizeof(err));
	ck_assert_msg(ret == 0, "deleting uib0 should succeed: %s", err);
	ck_assert_path_absent("%s/dev/uib0.state", run_dir);
	ck_assert_path_absent("%s/class/infiniband/uib0", sys_dir);
	ck_assert_path_absent("%s/class/infiniband_verbs/uverbs0", sys_dir);
	ck_assert_path_absent("%s/uverbs0", dev_dir);

	open_dev("uib1", &st);
	ck_assert_msg(atomic_load(&st.sh->ready) == 1,
		      "deleting uib0 should leave uib1 ready");
	uib_state_close(&st);
	ck_assert_path_exists("%s/class/infiniband/uib1/ports/1/gids/0",
			      sys_dir);
	ck_assert_path_exists("%s/class/infiniband_verbs/uverbs1/ibdev",
			      sys_dir);
	ck_assert_path_exists("%s/uverbs1", dev_dir);

	ret = uib_dev_del(&rd, "uib0", false, err, sizeof(err));
	ck_assert_msg(ret == -ENODEV && strstr(err, "no device named uib0"),
		      "deleting a deleted device should give -ENODEV: %d \"%s\"",
		      ret, err);
	ret = uib_dev_del(&rd, "nosuch", false, err, sizeof(err));
	ck_assert_msg(ret == -ENODEV && strstr(err, "no device named nosuch"),
		      "deleting an unknown device should give -ENODEV: %d \"%s\"",
		      ret, err);
	ret = uib_dev_del(&rd, "../../etc", false, err, sizeof(err));
	ck_assert_msg(ret == -EINVAL && strstr(err, "invalid device name"),
		      "deleting an invalid name should give -EINVAL: %d \"%s\"",
		      ret, err);

	/* The freed uverbs number is used again. */
	ck_add_ok("uib2", 1, 0, 0);
	ck_assert_file_eq("uib2\n", "%s/class/infiniband_verbs/uverbs0/ibdev",
			  sys_dir);
}
END_TEST

START_TEST(test_del_leaves_foreign_devnode)
{
	char path[4300], err[256];

	ck_add_ok("uib0", 1, 0, 0);
	/* A real character device node, say, is not ours to remove. */
	snprintf(path, sizeof(path), "%s/uverbs0", dev_dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink("/dev/zero", path), 0);
	ck_assert_int_eq(uib_dev_del(&rd, "uib0", false, err, sizeof(err)), 0);
	ck_assert_msg(uib_test_exists(path),
		      "del should leave a uverbs node that is not a link to /dev/null");
}
END_TEST

static int collect(const char *name, struct uib_state *st, void *arg)
{
	char *out = arg;

	strcat(out, name);
	strcat(out, " ");
	return 0;
}

START_TEST(test_foreach_ready_in_order)
{
	struct uib_dev_config cfg = { .name = "half", .num_ports = 1 };
	struct uib_state st = { .fd = -1 };
	char path[4096], names[256] = "";

	ck_add_ok("uibc", 1, 0, 0);
	ck_add_ok("uiba", 1, 0, 0);
	ck_add_ok("uibb", 1, 0, 0);
	uib_state_path(&rd, "half", path, sizeof(path));
	ck_assert_int_eq(uib_state_create(path, &cfg, &st), 0);
	uib_state_close(&st);
	ck_assert_int_eq(uib_dev_foreach(&rd, collect, names), 0);
	ck_assert_msg(!strcmp(names, "uiba uibb uibc "),
		      "foreach should visit the ready devices in name order, got \"%s\"",
		      names);
}
END_TEST

static char reported[512];

static void note_invalid(const char *name, const char *why, void *arg)
{
	size_t n = strlen(reported);

	snprintf(reported + n, sizeof(reported) - n, "%s: %s; ", name, why);
}

START_TEST(test_repair)
{
	struct uib_dev_config cfg = { .name = "half", .num_ports = 1,
				      .node_guid = 0x1234500 };
	struct uib_state st = { .fd = -1 };
	char path[4300];
	int n, fd;

	ck_add_ok("uib0", 1, 0, 0);

	/* What a uibctl add killed half way leaves: a state that never
	 * became ready, its device directory, a half-written uverbs dir. */
	uib_state_path(&rd, "half", path, sizeof(path));
	ck_assert_int_eq(uib_state_create(path, &cfg, &st), 0);
	ck_assert_int_eq(uib_sysfs_write_device(&rd, st.sh), 0);
	uib_state_close(&st);
	snprintf(path, sizeof(path), "%s/class/infiniband_verbs/.uverbs5.tmp",
		 sys_dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	/* A device directory with no state file at all. */
	snprintf(path, sizeof(path), "%s/class/infiniband/ghost", sys_dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	/* An empty state file: uibctl killed between open and ftruncate. */
	snprintf(path, sizeof(path), "%s/dev/empty.state", run_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert(fd >= 0);
	close(fd);
	/* A state file cut short: no uibctl leaves that (the file gets its
	 * size at once), so it is reported, never removed. */
	snprintf(path, sizeof(path), "%s/dev/short.state", run_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert(fd >= 0);
	ck_assert_int_eq(write(fd, "UIB1", 4), 4);
	close(fd);

	reported[0] = 0;
	n = uib_dev_repair(&rd, note_invalid, NULL);
	ck_assert_msg(n == 2,
		      "repair should reclaim the half-made and the empty state file, got %d",
		      n);
	ck_assert_path_absent("%s/dev/half.state", run_dir);
	ck_assert_path_absent("%s/dev/empty.state", run_dir);
	ck_assert_msg(access(path, F_OK) == 0,
		      "repair must not remove an invalid state file (%s)", path);
	ck_assert_msg(strstr(reported, "short: cut short"),
		      "repair should report the invalid state file, got \"%s\"",
		      reported);
	unlink(path);
	ck_assert_path_absent("%s/class/infiniband/half", sys_dir);
	ck_assert_path_absent("%s/class/infiniband/ghost", sys_dir);
	ck_assert_path_absent("%s/class/infiniband_verbs/.uverbs5.tmp",
			      sys_dir);

	/* The ready device is untouched. */
	ck_assert_path_exists("%s/dev/uib0.state", run_dir);
	ck_assert_file_eq("uib0\n", "%s/class/infiniband_verbs/uverbs0/ibdev",
			  sys_dir);
	ck_assert_file_eq("4: ACTIVE\n",
			  "%s/class/infiniband/uib0/ports/1/state", sys_dir);
	ck_assert_file_eq("6\n", "%s/class/infiniband_verbs/abi_version",
			  sys_dir);
	ck_assert_path_exists("%s/uverbs0", dev_dir);
	ck_assert_msg(uib_dev_repair(&rd, NULL, NULL) == 0,
		      "a second repair should find nothing");
	ck_assert_path_exists("%s/dev/uib0.state", run_dir);
}
END_TEST

START_TEST(test_repair_hidden_device)
{
	struct uib_state st;
	int n;

	/* uibctl del killed just after hiding the device: not ready, but
	 * its uverbs entry and node are still there. */
	ck_add_ok("uib0", 1, 0, 0);
	ck_add_ok("uib1", 1, 0, 0);
	open_dev("uib0", &st);
	atomic_store(&st.sh->ready, 0);
	uib_state_close(&st);

	n = uib_dev_repair(&rd, NULL, NULL);
	ck_assert_msg(n == 1, "repair should reclaim the hidden device, got %d",
		      n);
	ck_assert_path_absent("%s/dev/uib0.state", run_dir);
	ck_assert_path_absent("%s/class/infiniband/uib0", sys_dir);
	ck_assert_path_absent("%s/class/infiniband_verbs/uverbs0", sys_dir);
	ck_assert_path_absent("%s/uverbs0", dev_dir);
	ck_assert_path_exists("%s/dev/uib1.state", run_dir);
	ck_assert_path_exists("%s/class/infiniband_verbs/uverbs1", sys_dir);
	ck_assert_path_exists("%s/uverbs1", dev_dir);
}
END_TEST

START_TEST(test_repair_orphan_uverbs)
{
	char path[4300];
	int n;

	/* A published uverbs entry whose device is gone (a del killed
	 * between unlinking the state and removing the tree is not
	 * possible, but a hand-edited run dir is). */
	ck_add_ok("uib0", 1, 0, 0);
	ck_assert_int_eq(uib_sysfs_publish_uverbs(&rd, "gone", 7), 0);
	snprintf(path, sizeof(path), "%s/uverbs7", dev_dir);
	ck_assert_int_eq(symlink("/dev/null", path), 0);

	n = uib_dev_repair(&rd, NULL, NULL);
	ck_assert_msg(n == 0, "no state file was broken, repair says %d", n);
	ck_assert_path_absent("%s/class/infiniband_verbs/uverbs7", sys_dir);
	ck_assert_path_absent("%s/uverbs7", dev_dir);
	ck_assert_path_exists("%s/class/infiniband_verbs/uverbs0", sys_dir);
	ck_assert_path_exists("%s/uverbs0", dev_dir);
}
END_TEST

Suite *make_devtree_suite(void)
{
	Suite *s = suite_create("devtree");
	TCase *tc;

	tc = tcase_create("names");
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_format_guid_gid);
	suite_add_tcase(s, tc);

	tc = tcase_create("add_args");
	tcase_add_test(tc, test_parse_defaults);
	tcase_add_test(tc, test_parse_all_options_before_name);
	tcase_add_test(tc, test_parse_options_after_name);
	tcase_add_test(tc, test_parse_bad_ports);
	tcase_add_test(tc, test_parse_bad_vfs);
	tcase_add_test(tc, test_parse_bad_guid);
	tcase_add_test(tc, test_parse_bad_lid);
	tcase_add_test(tc, test_parse_bad_options_and_names);
	tcase_add_test(tc, test_parse_missing_name_no_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, lc_setup, lc_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_rundir_init);
	tcase_add_test(tc, test_add_writes_sysfs);
	tcase_add_test(tc, test_add_vfs_and_ports);
	tcase_add_test(tc, test_add_duplicate);
	tcase_add_test(tc, test_two_devices_distinct_ids);
	tcase_add_test(tc, test_lid_clash);
	tcase_add_test(tc, test_guid_clash);
	tcase_add_test(tc, test_set_port);
	tcase_add_test(tc, test_del);
	tcase_add_test(tc, test_del_leaves_foreign_devnode);
	tcase_add_test(tc, test_foreach_ready_in_order);
	tcase_add_test(tc, test_repair);
	tcase_add_test(tc, test_repair_hidden_device);
	tcase_add_test(tc, test_repair_orphan_uverbs);
	suite_add_tcase(s, tc);
	return s;
}
