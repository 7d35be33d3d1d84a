// SPDX-License-Identifier: MIT
/*
 * Run directory, sysfs-shaped tree and device lifecycle.  See devtree.h.
 *
 * Ordering is what makes a killed uibctl harmless.  add: state file (not
 * ready) -> class/infiniband/<name> -> /dev/infiniband/uverbsN ->
 * class/infiniband_verbs/uverbsN (renamed into place, so libibverbs never
 * sees half of it) -> ready.  del runs the same steps backwards, hiding the
 * device first.  Whatever a crash leaves is a state file that is not ready
 * or a tree entry without a ready state file, and uib_dev_repair() removes
 * exactly those.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "devtree.h"
#include "uib_config.h"

#define UIB_GUID_PREFIX 0x0275696200000000ull	/* 02:'u':'i':'b' */
#define UIB_ABI_VERSION 6			/* IB_USER_VERBS_ABI_VERSION */

static void set_err(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

int uib_rundir_init(struct uib_rundir *rd, const char *dir)
{
	const char *devdir = getenv("UIB_DEV_DIR");
	int n;

	memset(rd, 0, sizeof(*rd));
	rd->lock_fd = -1;
	if (!dir || !*dir)
		dir = getenv("UIB_RUN_DIR");
	if (!dir || !*dir)
		dir = UIB_DEFAULT_RUN_DIR;
	if (dir[0] != '/')
		return -EINVAL;	/* SYSFS_PATH must be absolute to be useful */
	n = snprintf(rd->root, sizeof(rd->root), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(rd->root) - 32)
		return -ENAMETOOLONG;
	while (n > 1 && rd->root[n - 1] == '/')
		rd->root[--n] = 0;
	snprintf(rd->sys, sizeof(rd->sys), "%s/sys", rd->root);
	snprintf(rd->devnodes, sizeof(rd->devnodes), "%s",
		 devdir && *devdir ? devdir : "/dev/infiniband");
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static int write_file(const char *dir, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int write_file(const char *dir, const char *name, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;
	int ret = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "we");
	if (!f)
		return -errno;
	va_start(ap, fmt);
	if (vfprintf(f, fmt, ap) < 0)
		ret = -EIO;
	va_end(ap);
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int uib_rundir_lock(struct uib_rundir *rd, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int ret;

	ret = mkdir_p(rd->root, 0755);
	if (!ret) {
		snprintf(path, sizeof(path), "%s/dev", rd->root);
		ret = mkdir_p(path, 0755);
	}
	if (!ret) {
		snprintf(path, sizeof(path), "%s/class/infiniband", rd->sys);
		ret = mkdir_p(path, 0755);
	}
	if (!ret) {
		snprintf(path, sizeof(path), "%s/class/infiniband_verbs",
			 rd->sys);
		ret = mkdir_p(path, 0755);
	}
	if (!ret)
		ret = write_file(path, "abi_version", "%d\n", UIB_ABI_VERSION);
	if (ret) {
		set_err(err, errlen, "cannot set up run directory %s: %s",
			rd->root, strerror(-ret));
		return ret;
	}

	snprintf(path, sizeof(path), "%s/lock", rd->root);
	rd->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (rd->lock_fd < 0) {
		ret = -errno;
		set_err(err, errlen, "cannot open %s: %s", path,
			strerror(errno));
		return ret;
	}
	/* flock: released by the kernel if we are killed. */
	while (flock(rd->lock_fd, LOCK_EX)) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		set_err(err, errlen, "cannot lock %s: %s", path,
			strerror(errno));
		close(rd->lock_fd);
		rd->lock_fd = -1;
		return ret;
	}
	return 0;
}

void uib_rundir_unlock(struct uib_rundir *rd)
{
	if (rd->lock_fd >= 0)
		close(rd->lock_fd);
	rd->lock_fd = -1;
}

void uib_state_path(const struct uib_rundir *rd, const char *name, char *buf,
		    size_t len)
{
	snprintf(buf, len, "%s/dev/%s.state", rd->root, name);
}

int uib_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	/* Like kernel IB device names: short, no '/', no leading '.'. */
	if (n == 0 || n >= UIB_NAME_MAX || !isalpha((unsigned char)name[0]))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' &&
		    name[i] != '-')
			return -EINVAL;
	return 0;
}

static int parse_uint(const char *s, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int uib_parse_add_args(int argc, char *const argv[],
		       struct uib_dev_config *cfg, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "ports", required_argument, NULL, 'p' },
		{ "vfs", required_argument, NULL, 'v' },
		{ "guid", required_argument, NULL, 'g' },
		{ "lid", required_argument, NULL, 'l' },
		{}
	};
	unsigned long long v;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->num_ports = 1;
	optind = 0;	/* 0: full reinitialisation, permuting again */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_uint(optarg, UIB_MAX_PORTS, &v) || v < 1) {
				set_err(err, errlen,
					"--ports must be 1 to %d, not '%s'",
					UIB_MAX_PORTS, optarg);
				return -EINVAL;
			}
			cfg->num_ports = v;
			break;
		case 'v':
			if (parse_uint(optarg, UIB_MAX_VFS, &v)) {
				set_err(err, errlen,
					"--vfs must be 0 to %d, not '%s'",
					UIB_MAX_VFS, optarg);
				return -EINVAL;
			}
			cfg->num_vfs = v;
			break;
		case 'g':
			if (parse_uint(optarg, UINT64_MAX - UIB_MAX_PORTS - 1,
				       &v) || v == 0) {
				set_err(err, errlen,
					"--guid must be a non-zero 64-bit number, not '%s'",
					optarg);
				return -EINVAL;
			}
			cfg->node_guid = v;
			break;
		case 'l':
			if (parse_uint(optarg, UIB_MAX_LID, &v) || v < 1) {
				set_err(err, errlen,
					"--lid must be a unicast LID, 1 to 0x%x, not '%s'",
					UIB_MAX_LID, optarg);
				return -EINVAL;
			}
			cfg->base_lid = v;
			break;
		default:
			set_err(err, errlen, "unknown or incomplete option '%s'",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		if (optind >= argc)
			set_err(err, errlen, "missing device name");
		else
			set_err(err, errlen,
				"expected one device name, got '%s' and '%s'",
				argv[optind], argv[optind + 1]);
		return -EINVAL;
	}
	if (uib_name_valid(argv[optind])) {
		set_err(err, errlen,
			"invalid device name '%s': use 1 to %d letters, digits, '_' or '-', starting with a letter",
			argv[optind], UIB_NAME_MAX - 1);
		return -EINVAL;
	}
	snprintf(cfg->name, sizeof(cfg->name), "%s", argv[optind]);
	if (cfg->base_lid &&
	    cfg->base_lid + cfg->num_ports - 1 > UIB_MAX_LID) {
		set_err(err, errlen, "--lid 0x%x leaves no LID for port %u",
			cfg->base_lid, cfg->num_ports);
		return -EINVAL;
	}
	return 0;
}

void uib_format_guid(uint64_t guid, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%04x:%04x:%04x", (unsigned int)(guid >> 48),
		 (unsigned int)(guid >> 32) & 0xffff,
		 (unsigned int)(guid >> 16) & 0xffff,
		 (unsigned int)guid & 0xffff);
}

void uib_format_gid(uint64_t prefix, uint64_t guid, char *buf, size_t len)
{
	char p[24], g[24];

	uib_format_guid(prefix, p, sizeof(p));
	uib_format_guid(guid, g, sizeof(g));
	snprintf(buf, len, "%s:%s", p, g);
}

static const char *port_state_str(uint32_t state)
{
	switch (state) {
	case IBV_PORT_DOWN:
		return "1: DOWN";
	case IBV_PORT_INIT:
		return "2: INIT";
	case IBV_PORT_ARMED:
		return "3: ARMED";
	case IBV_PORT_ACTIVE:
		return "4: ACTIVE";
	default:
		return "0: NOP";
	}
}

static int write_port(const char *pdir, const struct uib_port_shared *port)
{
	char dir[PATH_MAX], gid[48];
	uint32_t state = atomic_load(&port->state);
	int i, ret;

	ret = mkdir_p(pdir, 0755);
	ret = ret ?: write_file(pdir, "lid", "0x%x\n", port->lid);
	ret = ret ?: write_file(pdir, "sm_lid", "0x%x\n", port->sm_lid);
	ret = ret ?: write_file(pdir, "lid_mask_count", "0\n");
	ret = ret ?: write_file(pdir, "sm_sl", "0\n");
	ret = ret ?: write_file(pdir, "state", "%s\n", port_state_str(state));
	ret = ret ?: write_file(pdir, "phys_state", "%s\n",
				state == IBV_PORT_DOWN ? "3: Disabled" :
							 "5: LinkUp");
	ret = ret ?: write_file(pdir, "rate", "100 Gb/sec (4X EDR)\n");
	ret = ret ?: write_file(pdir, "link_layer", "InfiniBand\n");
	ret = ret ?: write_file(pdir, "cap_mask", "0x%08x\n",
				IBV_PORT_SYS_IMAGE_GUID_SUP);
	if (ret)
		return ret;

	snprintf(dir, sizeof(dir), "%s/gids", pdir);
	ret = mkdir_p(dir, 0755);
	for (i = 0; !ret && i < UIB_GID_TBL_LEN; i++) {
		char idx[16];

		/* GID[0] is the link-local GID of the port GUID (IBA 4.1.1);
		 * the rest of the table is empty. */
		uib_format_gid(i ? 0 : 0xfe80000000000000ull,
			       i ? 0 : port->guid, gid, sizeof(gid));
		snprintf(idx, sizeof(idx), "%d", i);
		ret = write_file(dir, idx, "%s\n", gid);
	}
	snprintf(dir, sizeof(dir), "%s/pkeys", pdir);
	ret = ret ?: mkdir_p(dir, 0755);
	for (i = 0; !ret && i < UIB_PKEY_TBL_LEN; i++) {
		char idx[16];

		snprintf(idx, sizeof(idx), "%d", i);
		ret = write_file(dir, idx, "0x%04x\n", port->pkey[i]);
	}
	return ret;
}

int uib_sysfs_write_device(const struct uib_rundir *rd,
			   const struct uib_dev_shared *sh)
{
	char dir[PATH_MAX], sub[PATH_MAX], guid[24], host[64] = "localhost";
	unsigned int p;
	int ret;

	snprintf(dir, sizeof(dir), "%s/class/infiniband/%s", rd->sys,
		 sh->name);
	ret = mkdir_p(dir, 0755);
	if (ret)
		return ret;
	gethostname(host, sizeof(host) - 1);

	uib_format_guid(sh->node_guid, guid, sizeof(guid));
	ret = write_file(dir, "node_type", "1: CA\n");
	ret = ret ?: write_file(dir, "node_guid", "%s\n", guid);
	uib_format_guid(sh->sys_image_guid, guid, sizeof(guid));
	ret = ret ?: write_file(dir, "sys_image_guid", "%s\n", guid);
	ret = ret ?: write_file(dir, "fw_ver", "%s\n", UIB_VERSION);
	ret = ret ?: write_file(dir, "hca_type", "uib\n");
	ret = ret ?: write_file(dir, "hw_rev", "0\n");
	ret = ret ?: write_file(dir, "board_id", "UIB_SOFT_HCA\n");
	ret = ret ?: write_file(dir, "node_desc", "%s %s\n", host, sh->name);
	if (ret)
		return ret;

	/* device/: what a bus device would show.  modalias is what our
	 * match table keys on; uib_run_dir tells the provider where the
	 * shared state lives. */
	snprintf(sub, sizeof(sub), "%s/device", dir);
	ret = mkdir_p(sub, 0755);
	ret = ret ?: write_file(sub, "modalias", "uib:%s\n", sh->name);
	ret = ret ?: write_file(sub, "sriov_numvfs", "%u\n", sh->num_vfs);
	ret = ret ?: write_file(sub, "sriov_totalvfs", "%u\n", sh->num_vfs);
	ret = ret ?: write_file(sub, "uib_run_dir", "%s\n", rd->root);
	for (p = 0; !ret && p < sh->num_ports; p++) {
		snprintf(sub, sizeof(sub), "%s/ports/%u", dir, p + 1);
		ret = write_port(sub, &sh->port[p]);
	}
	return ret;
}

int uib_sysfs_write_port_state(const struct uib_rundir *rd,
			       const struct uib_dev_shared *sh,
			       unsigned int port)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/class/infiniband/%s/ports/%u", rd->sys,
		 sh->name, port);
	return write_port(dir, &sh->port[port - 1]);
}

int uib_sysfs_publish_uverbs(const struct uib_rundir *rd, const char *name,
			     int idx)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int ret;

	/* libibverbs skips names starting with '.', so the half-written
	 * directory is invisible until the rename. */
	snprintf(tmp, sizeof(tmp), "%s/class/infiniband_verbs/.uverbs%d.tmp",
		 rd->sys, idx);
	snprintf(dir, sizeof(dir), "%s/class/infiniband_verbs/uverbs%d",
		 rd->sys, idx);
	rm_tree(tmp);
	ret = mkdir_p(tmp, 0755);
	ret = ret ?: write_file(tmp, "ibdev", "%s\n", name);
	/* 0:0 tells libibverbs not to check the node's device number: the
	 * node is a link to /dev/null that the provider never talks to. */
	ret = ret ?: write_file(tmp, "dev", "0:0\n");
	ret = ret ?: write_file(tmp, "abi_version", "%d\n", UIB_ABI_VERSION);
	if (!ret && rename(tmp, dir))
		ret = -errno;
	if (ret)
		rm_tree(tmp);
	return ret;
}

static void devnode_path(const struct uib_rundir *rd, int idx, char *buf,
			 size_t len)
{
	snprintf(buf, len, "%s/uverbs%d", rd->devnodes, idx);
}

/* Removes /dev/infiniband/uverbsN only if it is one of ours. */
static void devnode_remove(const struct uib_rundir *rd, int idx)
{
	char path[PATH_MAX], target[64];
	ssize_t n;

	if (idx < 0)
		return;
	devnode_path(rd, idx, path, sizeof(path));
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = 0;
	if (!strcmp(target, "/dev/null"))
		unlink(path);
}

/* uverbsN nodes are host-wide, whatever the run directory: the first N
 * whose symlink we manage to create is ours. */
static int devnode_create(const struct uib_rundir *rd, int *idx, char *err,
			  size_t errlen)
{
	char path[PATH_MAX];
	int i, ret;

	ret = mkdir_p(rd->devnodes, 0755);
	if (ret) {
		set_err(err, errlen, "cannot create %s: %s%s", rd->devnodes,
			strerror(-ret),
			ret == -EACCES || ret == -EPERM ?
				" (uibctl add must run as root)" : "");
		return ret;
	}
	for (i = 0; i < 1024; i++) {
		devnode_path(rd, i, path, sizeof(path));
		if (!symlink("/dev/null", path)) {
			*idx = i;
			return 0;
		}
		if (errno != EEXIST) {
			ret = -errno;
			set_err(err, errlen, "cannot create %s: %s%s", path,
				strerror(errno),
				errno == EACCES || errno == EPERM ?
					" (uibctl add must run as root)" : "");
			return ret;
		}
	}
	set_err(err, errlen, "no free uverbs number in %s", rd->devnodes);
	return -ENOSPC;
}


int uib_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	char *nl;

	if (!f)
		return -errno;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	return 0;
}

void uib_sysfs_remove_device(const struct uib_rundir *rd, const char *name,
			     int idx)
{
	char path[PATH_MAX], ibdev[UIB_NAME_MAX];

	if (idx >= 0) {
		/* uverbsN and its node are removed only if they are this
		 * device's: a state file's index is not trusted blindly
		 * (nodes are shared by every run directory). */
		snprintf(path, sizeof(path),
			 "%s/class/infiniband_verbs/uverbs%d/ibdev", rd->sys,
			 idx);
		if (uib_read_line(path, ibdev, sizeof(ibdev)) == -ENOENT ||
		    !strcmp(ibdev, name)) {
			snprintf(path, sizeof(path),
				 "%s/class/infiniband_verbs/uverbs%d", rd->sys,
				 idx);
			rm_tree(path);
			devnode_remove(rd, idx);
		}
		snprintf(path, sizeof(path),
			 "%s/class/infiniband_verbs/.uverbs%d.tmp", rd->sys,
			 idx);
		rm_tree(path);
	}
	snprintf(path, sizeof(path), "%s/class/infiniband/%s", rd->sys, name);
	rm_tree(path);
}

static int name_from_state_file(const char *file, char *name, size_t len)
{
	const char *dot = strrchr(file, '.');
	size_t n;

	if (!dot || strcmp(dot, ".state"))
		return -EINVAL;
	n = dot - file;
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(name, file, n);
	name[n] = 0;
	return uib_name_valid(name);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int uib_dev_foreach(const struct uib_rundir *rd,
		    int (*fn)(const char *name, struct uib_state *st,
			      void *arg),
		    void *arg)
{
	char dir[PATH_MAX], path[PATH_MAX], name[UIB_NAME_MAX];
	struct dirent **ents;
	int i, n, ret = 0;

	snprintf(dir, sizeof(dir), "%s/dev", rd->root);
	n = scandir(dir, &ents, NULL, by_name);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	for (i = 0; i < n; i++) {
		struct uib_state st = { .fd = -1 };

		if (!ret && !name_from_state_file(ents[i]->d_name, name,
						  sizeof(name))) {
			snprintf(path, sizeof(path), "%s/%s", dir,
				 ents[i]->d_name);
			if (!uib_state_open(path, &st)) {
				if (atomic_load(&st.sh->ready) == 1)
					ret = fn(name, &st, arg);
				uib_state_close(&st);
			}
		}
		free(ents[i]);
	}
	free(ents);
	return ret;
}

struct used_ids {
	uint64_t guid;			/* node GUID to check, 0: none */
	unsigned int nports;		/* its port GUIDs follow it */
	uint16_t lid_lo, lid_hi;	/* a LID range to check */
	const char *clash;		/* name of the device that has it */
	char clash_buf[UIB_NAME_MAX];
};

static int check_used(const char *name, struct uib_state *st, void *arg)
{
	struct used_ids *u = arg;
	unsigned int p;

	/* A device owns node_guid and its port GUIDs node_guid + 1..N. */
	if (u->guid && u->guid <= st->sh->node_guid + st->sh->num_ports &&
	    st->sh->node_guid <= u->guid + u->nports)
		goto clash;
	for (p = 0; p < st->sh->num_ports; p++)
		if (u->lid_lo && st->sh->port[p].lid >= u->lid_lo &&
		    st->sh->port[p].lid <= u->lid_hi)
			goto clash;
	return 0;
clash:
	snprintf(u->clash_buf, sizeof(u->clash_buf), "%s", name);
	u->clash = u->clash_buf;
	return 1;
}

/* Picks GUIDs and LIDs no other device of the run directory uses: all uib
 * devices on a host form one subnet (DESIGN.md section 4). */
static int assign_ids(struct uib_rundir *rd, struct uib_dev_config *cfg,
		      char *err, size_t errlen)
{
	struct used_ids u = { .nports = cfg->num_ports };
	unsigned int k;

	if (cfg->node_guid) {
		u.guid = cfg->node_guid;
		if (uib_dev_foreach(rd, check_used, &u) > 0) {
			set_err(err, errlen, "GUID 0x%llx is used by %s",
				(unsigned long long)cfg->node_guid, u.clash);
			return -EEXIST;
		}
	} else {
		for (k = 1; k < 0xffffff; k++) {
			u.guid = UIB_GUID_PREFIX | (uint64_t)k << 8;
			u.clash = NULL;
			if (uib_dev_foreach(rd, check_used, &u) == 0)
				break;
		}
		cfg->node_guid = u.guid;
	}

	u.guid = 0;
	if (cfg->base_lid) {
		u.lid_lo = cfg->base_lid;
		u.lid_hi = cfg->base_lid + cfg->num_ports - 1;
		if (uib_dev_foreach(rd, check_used, &u) > 0) {
			set_err(err, errlen, "LID 0x%x is used by %s",
				cfg->base_lid, u.clash);
			return -EEXIST;
		}
		return 0;
	}
	for (k = 1; k + cfg->num_ports - 1 <= UIB_MAX_LID; k++) {
		u.lid_lo = k;
		u.lid_hi = k + cfg->num_ports - 1;
		if (uib_dev_foreach(rd, check_used, &u) == 0) {
			cfg->base_lid = k;
			return 0;
		}
	}
	set_err(err, errlen, "no free LIDs left in %s", rd->root);
	return -ENOSPC;
}

int uib_dev_add(struct uib_rundir *rd, struct uib_dev_config *cfg, char *err,
		size_t errlen)
{
	struct uib_state st = { .fd = -1 };
	char path[PATH_MAX];
	int idx = -1, ret;

	if (uib_name_valid(cfg->name)) {
		set_err(err, errlen, "invalid device name '%s'", cfg->name);
		return -EINVAL;
	}
	uib_state_path(rd, cfg->name, path, sizeof(path));
	if (!access(path, F_OK)) {
		set_err(err, errlen, "device %s already exists", cfg->name);
		return -EEXIST;
	}
	ret = assign_ids(rd, cfg, err, errlen);
	if (ret)
		return ret;

	ret = uib_state_create(path, cfg, &st);
	if (ret) {
		set_err(err, errlen, "cannot create %s: %s", path,
			strerror(-ret));
		return ret;
	}
	ret = uib_sysfs_write_device(rd, st.sh);
	if (ret) {
		set_err(err, errlen, "cannot write the sysfs tree under %s: %s",
			rd->sys, strerror(-ret));
		goto err_state;
	}
	ret = devnode_create(rd, &idx, err, errlen);
	if (ret)
		goto err_state;
	st.sh->uverbs_index = idx;
	ret = uib_sysfs_publish_uverbs(rd, cfg->name, idx);
	if (ret) {
		set_err(err, errlen, "cannot publish uverbs%d: %s", idx,
			strerror(-ret));
		goto err_state;
	}
	atomic_store_explicit(&st.sh->ready, 1, memory_order_release);
	uib_state_close(&st);
	return 0;

err_state:
	uib_sysfs_remove_device(rd, cfg->name, idx);
	uib_state_close(&st);
	unlink(path);
	return ret;
}

int uib_dev_del(struct uib_rundir *rd, const char *name, char *err,
		size_t errlen)
{
	struct uib_state st = { .fd = -1 };
	char path[PATH_MAX];
	int ret;

	if (uib_name_valid(name)) {
		set_err(err, errlen, "invalid device name '%s'", name);
		return -EINVAL;
	}
	uib_state_path(rd, name, path, sizeof(path));
	ret = uib_state_open(path, &st);
	if (ret) {
		set_err(err, errlen, "no device named %s in %s", name,
			rd->root);
		return -ENODEV;
	}
	/* Hide first: a process opening the device from now on is refused
	 * by the provider; those that have it open keep their mapping. */
	atomic_store_explicit(&st.sh->ready, 0, memory_order_release);
	uib_sysfs_remove_device(rd, name, st.sh->uverbs_index);
	uib_state_close(&st);
	unlink(path);
	return 0;
}

int uib_dev_set_port(struct uib_rundir *rd, const char *name,
		     unsigned int port, int up, char *err, size_t errlen)
{
	struct uib_state st = { .fd = -1 };
	struct uib_port_shared *ps;
	char path[PATH_MAX];
	int ret;

	uib_state_path(rd, name, path, sizeof(path));
	if (uib_name_valid(name) || uib_state_open(path, &st)) {
		set_err(err, errlen, "no device named %s in %s", name,
			rd->root);
		return -ENODEV;
	}
	if (port < 1 || port > st.sh->num_ports) {
		set_err(err, errlen, "%s has no port %u (ports 1 to %u)", name,
			port, st.sh->num_ports);
		uib_state_close(&st);
		return -EINVAL;
	}
	ps = &st.sh->port[port - 1];
	atomic_store_explicit(&ps->state, up ? IBV_PORT_ACTIVE : IBV_PORT_DOWN,
			      memory_order_release);
	atomic_fetch_add_explicit(&ps->event_gen, 1, memory_order_release);
	ret = uib_sysfs_write_port_state(rd, st.sh, port);
	if (ret)
		set_err(err, errlen, "cannot update the sysfs port state: %s",
			strerror(-ret));
	/* IBA 11.6.3: every open context hears of it. */
	{
		int i;

		for (i = 0; i < UIB_MAX_CTX; i++)
			uib_ctx_notify(&st, i,
				       up ? IBV_EVENT_PORT_ACTIVE :
					    IBV_EVENT_PORT_ERR,
				       port);
	}
	uib_state_close(&st);
	return ret;
}

/* Is there a ready state file for this name? */
static bool dev_ready(const struct uib_rundir *rd, const char *name)
{
	struct uib_state st = { .fd = -1 };
	char path[PATH_MAX];
	bool ready;

	if (uib_name_valid(name))
		return false;
	uib_state_path(rd, name, path, sizeof(path));
	if (uib_state_open(path, &st))
		return false;
	ready = atomic_load(&st.sh->ready) == 1;
	uib_state_close(&st);
	return ready;
}


int uib_dev_repair(struct uib_rundir *rd)
{
	char dir[PATH_MAX], path[PATH_MAX], name[UIB_NAME_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	/* 1. State files that never became ready, or are not state files. */
	snprintf(dir, sizeof(dir), "%s/dev", rd->root);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		struct uib_state st = { .fd = -1 };
		int idx = -1;

		if (de->d_name[0] == '.' ||
		    name_from_state_file(de->d_name, name, sizeof(name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!uib_state_open(path, &st)) {
			bool ready = atomic_load(&st.sh->ready) == 1;

			idx = st.sh->uverbs_index;
			uib_state_close(&st);
			if (ready)
				continue;
		}
		uib_sysfs_remove_device(rd, name, idx);
		unlink(path);
		n++;
	}
	if (d)
		closedir(d);

	/* 2. uverbs entries whose device is not ready. */
	snprintf(dir, sizeof(dir), "%s/class/infiniband_verbs", rd->sys);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		int idx;

		if (!strncmp(de->d_name, ".uverbs", 7)) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			rm_tree(path);
			continue;
		}
		if (sscanf(de->d_name, "uverbs%d", &idx) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/%s/ibdev", dir, de->d_name);
		if (!uib_read_line(path, name, sizeof(name)) &&
		    dev_ready(rd, name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rm_tree(path);
		devnode_remove(rd, idx);
	}
	if (d)
		closedir(d);

	/* 3. Device directories without a ready device. */
	snprintf(dir, sizeof(dir), "%s/class/infiniband", rd->sys);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || dev_ready(rd, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rm_tree(path);
	}
	if (d)
		closedir(d);
	return n;
}
