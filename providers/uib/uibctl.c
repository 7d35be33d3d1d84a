// SPDX-License-Identifier: MIT
/*
 * uibctl: the uib device manager.
 *
 *   uibctl [--run-dir DIR] add NAME [--ports N] [--vfs N] [--guid G] [--lid L]
 *                              [--owner USER] [--group GROUP] [--mode MODE]
 *   uibctl [--run-dir DIR] del [--force] NAME
 *   uibctl [--run-dir DIR] list
 *   uibctl [--run-dir DIR] port NAME PORT up|down
 *   uibctl [--run-dir DIR] env
 *
 * Every command that changes the run directory takes its lock and first
 * repairs what a killed uibctl may have left (devtree.c).  A state file
 * that is not valid is reported and never removed, but by del --force.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "devtree.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uibctl [--run-dir DIR] COMMAND\n"
		"  add NAME [--ports N] [--vfs N] [--guid G] [--lid L]\n"
		"           [--owner USER] [--group GROUP] [--mode MODE]\n"
		"                       create a device (ports 1-%d, vfs 0-%d) that\n"
		"                       only its owner and group may open; defaults:\n"
		"                       owner the caller, group 'uib' if it exists\n"
		"                       else the caller's group, mode 0660\n"
		"  del [--force] NAME   remove a device; --force also removes one\n"
		"                       whose state file is invalid\n"
		"  list                 show devices, ports and resources in use\n"
		"  port NAME PORT up|down\n"
		"                       change a port's state\n"
		"  env                  print the environment that points verbs\n"
		"                       programs at this run directory\n"
		"The run directory is --run-dir, else $UIB_RUN_DIR, else /run/uib.\n",
		UIB_MAX_PORTS, UIB_MAX_VFS);
}

static int fail(const char *what, const char *msg)
{
	fprintf(stderr, "uibctl: %s: %s\n", what, msg);
	return 1;
}

/* A state file repair will not touch: say so, and how to remove it. */
static void report_invalid(const char *name, const char *why, void *arg)
{
	fprintf(stderr,
		"uibctl: device %s: state file invalid (%s); not touching it; remove it with: uibctl del --force %s\n",
		name, why, name);
	if (arg)
		(*(int *)arg)++;
}

static int cmd_add(struct uib_rundir *rd, int argc, char **argv)
{
	struct uib_dev_access acc;
	struct uib_dev_config cfg;
	char err[512] = "";
	int ret;

	if (uib_parse_add_args(argc, argv, &cfg, &acc, err, sizeof(err)))
		return fail("add", err);
	ret = uib_rundir_lock(rd, err, sizeof(err));
	if (ret)
		return fail("add", err);
	uib_dev_repair(rd, report_invalid, NULL);
	ret = uib_dev_add(rd, &cfg, &acc, err, sizeof(err));
	uib_rundir_unlock(rd);
	if (ret)
		return fail("add", err);
	if (err[0])
		fprintf(stderr, "uibctl: add: warning: %s\n", err);
	return 0;
}

static int cmd_del(struct uib_rundir *rd, int argc, char **argv)
{
	char err[512] = "";
	bool force = false;
	int ret;

	if (argc == 3 && !strcmp(argv[1], "--force")) {
		force = true;
		argv++;
		argc--;
	}
	if (argc != 2)
		return fail("del", "expected [--force] and one device name");
	ret = uib_rundir_lock(rd, err, sizeof(err));
	if (ret)
		return fail("del", err);
	/* Not reported here: del itself says what is wrong with NAME. */
	uib_dev_repair(rd, NULL, NULL);
	ret = uib_dev_del(rd, argv[1], force, err, sizeof(err));
	uib_rundir_unlock(rd);
	return ret ? fail("del", err) : 0;
}

static int cmd_port(struct uib_rundir *rd, int argc, char **argv)
{
	char err[512] = "", *end;
	unsigned long port;
	int up, ret;

	if (argc != 4)
		return fail("port", "expected NAME PORT up|down");
	errno = 0;
	port = strtoul(argv[2], &end, 10);
	if (errno || *end || end == argv[2] || port > 255)
		return fail("port", "PORT must be a port number");
	if (!strcmp(argv[3], "up"))
		up = 1;
	else if (!strcmp(argv[3], "down"))
		up = 0;
	else
		return fail("port", "state must be 'up' or 'down'");
	ret = uib_rundir_lock(rd, err, sizeof(err));
	if (ret)
		return fail("port", err);
	uib_dev_repair(rd, NULL, NULL);
	ret = uib_dev_set_port(rd, argv[1], port, up, err, sizeof(err));
	uib_rundir_unlock(rd);
	return ret ? fail("port", err) : 0;
}

static int list_one(const char *name, struct uib_state *st, void *arg)
{
	const struct uib_dev_shared *sh = st->sh;
	struct uib_state_usage u;
	char guid[24];
	unsigned int p;

	(*(int *)arg)++;
	uib_format_guid(sh->node_guid, guid, sizeof(guid));
	uib_state_usage(st, &u);
	printf("%s\tuverbs%d\tnode_guid %s\tports %u\tvfs %u\n", name,
	       sh->uverbs_index, guid, sh->num_ports, sh->num_vfs);
	/* Checked at open; clamped in case it was rewritten since. */
	for (p = 0; p < sh->num_ports && p < UIB_MAX_PORTS; p++) {
		uint32_t state = atomic_load(&sh->port[p].state);

		printf("\tport %u\t%s\tlid 0x%x\n", p + 1,
		       state == IBV_PORT_ACTIVE ? "ACTIVE" : "DOWN",
		       sh->port[p].lid);
	}
	printf("\tcontexts %u (dead %u)\tqps %u\tmrs %u\n", u.contexts,
	       u.dead_contexts, u.qps, u.mrs);
	return 0;
}

static int reclaim_one(const char *name, struct uib_state *st, void *arg)
{
	uib_state_reclaim(st);
	return 0;
}

static int cmd_list(struct uib_rundir *rd, int argc, char **argv)
{
	char err[512] = "";
	int n = 0, bad = 0, ret;

	if (argc != 1)
		return fail("list", "takes no arguments");
	/* Listing repairs too: a listing that shows a dead process's
	 * resources as in use would be lying. */
	if (access(rd->root, F_OK) == 0 && !access(rd->root, W_OK)) {
		ret = uib_rundir_lock(rd, err, sizeof(err));
		if (ret)
			return fail("list", err);
		uib_dev_repair(rd, report_invalid, &bad);
		uib_dev_foreach(rd, reclaim_one, NULL);
		uib_rundir_unlock(rd);
	}
	uib_dev_foreach(rd, list_one, &n);
	if (!n)
		printf("no uib devices in %s\n", rd->root);
	return bad ? 1 : 0;
}

static int cmd_env(struct uib_rundir *rd, int argc, char **argv)
{
	char exe[PATH_MAX], so[PATH_MAX + 32];
	ssize_t n;

	if (argc != 1)
		return fail("env", "takes no arguments");
	printf("export SYSFS_PATH=%s\n", rd->sys);
	/* From a build tree, the provider sits next to uibctl and is not
	 * in /etc/libibverbs.d: name it for libibverbs explicitly. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(so, sizeof(so), "%s/libuib-rdmav34.so", dirname(exe));
		if (!access(so, R_OK)) {
			so[strlen(so) - strlen("-rdmav34.so")] = 0;
			printf("export RDMAV_DRIVERS=%s\n", so);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *run_dir = NULL;
	struct uib_rundir rd;
	int c, ret;

	while ((c = getopt_long(argc, argv, "+r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			run_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	ret = uib_rundir_init(&rd, run_dir);
	if (ret) {
		fprintf(stderr, "uibctl: run directory '%s': %s\n",
			run_dir ? run_dir : "(from UIB_RUN_DIR)",
			ret == -EINVAL ? "must be an absolute path" :
					 strerror(-ret));
		return 2;
	}
	argc -= optind;
	argv += optind;
	if (!strcmp(argv[0], "add"))
		return cmd_add(&rd, argc, argv);
	if (!strcmp(argv[0], "del"))
		return cmd_del(&rd, argc, argv);
	if (!strcmp(argv[0], "list"))
		return cmd_list(&rd, argc, argv);
	if (!strcmp(argv[0], "port"))
		return cmd_port(&rd, argc, argv);
	if (!strcmp(argv[0], "env"))
		return cmd_env(&rd, argc, argv);
	fprintf(stderr, "uibctl: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return 2;
}
