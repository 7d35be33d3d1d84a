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
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

void uib_dev_access_default(struct uib_dev_access *acc)
{
	struct group gr, *res = NULL;
	char buf[4096];

	acc->uid = geteuid();
	acc->gid = getegid();
	acc->mode = 0660;
	if (!getgrnam_r("uib", &gr, buf, sizeof(buf), &res) && res)
		acc->gid = res->gr_gid;
}

/* A class of users gets rwx on a directory if it may write the device,
 * r-x if it may only read it. */
static mode_t dir_mode(mode_t mode)
{
	mode_t d = 0;
	int shift;

	for (shift = 0; shift <= 6; shift += 3) {
		if (mode & (02 << shift))
			d |= 07 << shift;
		else if (mode & (04 << shift))
			d |= 05 << shift;
	}
	return d;
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
		set_err(err, errlen, "cannot set up run directory %s: %s%s",
			rd->root, strerror(-ret),
			ret == -EACCES || ret == -EPERM ?
				" (changing uib devices needs root, or the run directory's owner)" :
				"");
		return ret;
	}

	snprintf(path, sizeof(path), "%s/lock", rd->root);
	/* Owner only: whoever can open the lock can flock() it and stall
	 * every uibctl (a read-only fd is enough for flock). */
	rd->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			   0600);
	if (rd->lock_fd < 0) {
		ret = -errno;
		set_err(err, errlen, "cannot open %s: %s%s", path,
			strerror(errno),
			ret == -EACCES || ret == -EPERM ?
				" (changing uib devices needs root, or the run directory's owner)" :
				"");
		return ret;
	}
	fchmod(rd->lock_fd, 0600);	/* a lock file of older versions */
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

static int parse_owner(const char *s, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	unsigned long long v;
	char buf[4096];

	if (!getpwnam_r(s, &pw, buf, sizeof(buf), &res) && res) {
		*uid = res->pw_uid;
		return 0;
	}
	if (parse_uint(s, 0xfffffffeu, &v))
		return -EINVAL;
	*uid = v;
	return 0;
}

static int parse_group(const char *s, gid_t *gid)
{
	struct group gr, *res = NULL;
	unsigned long long v;
	char buf[16384];

	if (!getgrnam_r(s, &gr, buf, sizeof(buf), &res) && res) {
		*gid = res->gr_gid;
		return 0;
	}
	if (parse_uint(s, 0xfffffffeu, &v))
		return -EINVAL;
	*gid = v;
	return 0;
}

static int parse_mode(const char *s, mode_t *mode)
{
	unsigned long v;
	char *end;

	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	/* Read and write bits only: nothing of a device executes. */
	if (errno || *end || v > 0777 || (v & 0111) || !(v & 0600))
		return -EINVAL;
	*mode = v;
	return 0;
}

int uib_parse_add_args(int argc, char *const argv[],
		       struct uib_dev_config *cfg, struct uib_dev_access *acc,
		       char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "ports", required_argument, NULL, 'p' },
		{ "vfs", required_argument, NULL, 'v' },
		{ "guid", required_argument, NULL, 'g' },
		{ "lid", required_argument, NULL, 'l' },
		{ "owner", required_argument, NULL, 'o' },
		{ "group", required_argument, NULL, 'G' },
		{ "mode", required_argument, NULL, 'm' },
		{}
	};
	unsigned long long v;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	uib_dev_access_default(acc);
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
		case 'o':
			if (parse_owner(optarg, &acc->uid)) {
				set_err(err, errlen,
					"--owner must be a user name or number, not '%s'",
					optarg);
				return -EINVAL;
			}
			break;
		case 'G':
			if (parse_group(optarg, &acc->gid)) {
				set_err(err, errlen,
					"--group must be a group name or number, not '%s'",
					optarg);
				return -EINVAL;
			}
			break;
		case 'm':
			if (parse_mode(optarg, &acc->mode)) {
				set_err(err, errlen,
					"--mode must be octal read/write bits with the owner's (like 0660 or 0600), not '%s'",
					optarg);
				return -EINVAL;
			}
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
	for (p = 0; !ret && p < sh->num_ports && p < UIB_MAX_PORTS; p++) {
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

/* Ours: a character device 1:3 (/dev/null's numbers, owner/group/mode of
 * a device) or, where mknod is not allowed, a link to /dev/null. */
static bool devnode_ours(const char *path)
{
	char target[64];
	struct stat sb;
	ssize_t n;

	if (lstat(path, &sb))
		return false;
	if (S_ISCHR(sb.st_mode))
		return sb.st_rdev == makedev(1, 3);
	if (!S_ISLNK(sb.st_mode))
		return false;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, "/dev/null");
}

/* Removes /dev/infiniband/uverbsN only if it is one of ours. */
static void devnode_remove(const struct uib_rundir *rd, int idx)
{
	char path[PATH_MAX];

	if (idx < 0 || idx >= UIB_MAX_UVERBS)
		return;
	devnode_path(rd, idx, path, sizeof(path));
	if (devnode_ours(path))
		unlink(path);
}

/*
 * uverbsN nodes are host-wide, whatever the run directory: the first N
 * whose node we manage to create is ours.  libibverbs open()s the node
 * read-write, so a character device with the device's owner, group and
 * mode makes a non-member's ibv_open_device() fail with EACCES.  Where
 * mknod is not permitted (some containers) the node is a link to
 * /dev/null, which anyone can open; *linked says so.
 */
static int devnode_create(const struct uib_rundir *rd,
			  const struct uib_dev_access *acc, int *idx,
			  bool *linked, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int i, ret;

	*linked = false;
	ret = mkdir_p(rd->devnodes, 0755);
	if (ret) {
		set_err(err, errlen, "cannot create %s: %s%s", rd->devnodes,
			strerror(-ret),
			ret == -EACCES || ret == -EPERM ?
				" (uibctl add must run as root)" : "");
		return ret;
	}
	for (i = 0; i < UIB_MAX_UVERBS; i++) {
		devnode_path(rd, i, path, sizeof(path));
		if (!*linked) {
			if (!mknod(path, S_IFCHR | 0600, makedev(1, 3))) {
				if (chown(path, acc->uid, acc->gid) ||
				    chmod(path, acc->mode)) {
					ret = -errno;
					set_err(err, errlen,
						"cannot give %s its owner, group and mode: %s",
						path, strerror(errno));
					unlink(path);
					return ret;
				}
				*idx = i;
				return 0;
			}
			if (errno == EEXIST)
				continue;
			if (errno != EPERM) {
				ret = -errno;
				set_err(err, errlen, "cannot create %s: %s%s",
					path, strerror(errno),
					errno == EACCES ?
						" (uibctl add must run as root)" :
						"");
				return ret;
			}
			*linked = true;
		}
		if (!symlink("/dev/null", path)) {
			if (lchown(path, acc->uid, acc->gid))
				(void)0;	/* cosmetic only */
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

/* Gives a sysfs subtree the device's owner and group, writable by the
 * owner only and readable by all, as /sys is (see devtree.h). */
static int tree_own(const char *path, const struct uib_dev_access *acc)
{
	char sub[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	int ret = 0;
	DIR *d;

	if (lstat(path, &sb))
		return -errno;
	if (S_ISLNK(sb.st_mode))
		return 0;
	if ((sb.st_uid != acc->uid || sb.st_gid != acc->gid) &&
	    chown(path, acc->uid, acc->gid))
		return -errno;
	if (chmod(path, S_ISDIR(sb.st_mode) ? 0755 : 0644))
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		ret = tree_own(sub, acc);
	}
	closedir(d);
	return ret;
}

static void ctx_dir_path(const struct uib_rundir *rd, const char *name,
			 char *buf, size_t len)
{
	snprintf(buf, len, "%s/dev/%s.ctx", rd->root, name);
}

/* The fd broker directory (fdpass.h): the device's owner and group, and
 * access for those who may open the device. */
static int ctx_dir_create(const struct uib_rundir *rd, const char *name,
			  const struct uib_dev_access *acc)
{
	char path[PATH_MAX];

	ctx_dir_path(rd, name, path, sizeof(path));
	rm_tree(path);
	if (mkdir(path, 0700))
		return -errno;
	if (chown(path, acc->uid, acc->gid) ||
	    chmod(path, dir_mode(acc->mode)))
		return -errno;
	return 0;
}

int uib_state_diagnose(const char *path, char *why, size_t len)
{
	_Alignas(8) unsigned char h[offsetof(struct uib_dev_shared, lock)];
	uint32_t magic, version, ready, size, num_ports, num_vfs;
	const char *base = strrchr(path, '/');
	char name[UIB_NAME_MAX + 1] = "";
	int32_t uverbs_index;
	struct stat sb;
	ssize_t n;
	int fd;

	/* What callers show if uib_state_open() then refuses a header this
	 * found valid: it changed in between. */
	set_err(why, len, "header changed while being checked");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		close(fd);
		return -errno;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		set_err(why, len, "not a regular file");
		return -EPROTO;
	}
	if (sb.st_size == 0) {
		close(fd);
		set_err(why, len, "empty");
		return -ENODATA;
	}
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if ((size_t)sb.st_size < sizeof(struct uib_dev_shared) ||
	    n != (ssize_t)sizeof(h)) {
		set_err(why, len, "cut short: %lld of %zu bytes",
			(long long)sb.st_size, sizeof(struct uib_dev_shared));
		return -EPROTO;
	}
#define FIELD(v, f) memcpy(&(v), h + offsetof(struct uib_dev_shared, f), \
			   sizeof(v))
	FIELD(magic, magic);
	FIELD(version, version);
	FIELD(ready, ready);
	FIELD(size, size);
	FIELD(uverbs_index, uverbs_index);
	FIELD(num_ports, num_ports);
	FIELD(num_vfs, num_vfs);
	memcpy(name, h + offsetof(struct uib_dev_shared, name), UIB_NAME_MAX);
#undef FIELD
	base = base ? base + 1 : path;
	if (magic != UIB_STATE_MAGIC)
		set_err(why, len, "bad magic 0x%08x", magic);
	else if (version != UIB_STATE_VERSION)
		set_err(why, len, "version %u, this uibctl knows %u", version,
			UIB_STATE_VERSION);
	else if (size != sizeof(struct uib_dev_shared))
		set_err(why, len, "size field %u, expected %zu", size,
			sizeof(struct uib_dev_shared));
	else if (ready > 1)
		set_err(why, len, "ready flag %u", ready);
	else if (num_ports < 1 || num_ports > UIB_MAX_PORTS)
		set_err(why, len, "num_ports %u, not 1 to %d", num_ports,
			UIB_MAX_PORTS);
	else if (num_vfs > UIB_MAX_VFS)
		set_err(why, len, "num_vfs %u, more than %d", num_vfs,
			UIB_MAX_VFS);
	else if (uverbs_index < -1 || uverbs_index >= UIB_MAX_UVERBS)
		set_err(why, len, "uverbs index %d out of range",
			uverbs_index);
	else if (strnlen(name, UIB_NAME_MAX) == UIB_NAME_MAX)
		set_err(why, len, "device name not terminated");
	else if (uib_name_valid(name) || strlen(base) != strlen(name) + 6 ||
		 strncmp(base, name, strlen(name)) ||
		 strcmp(base + strlen(name), ".state"))
		set_err(why, len, "device name '%.*s' does not match the file",
			UIB_NAME_MAX, name);
	else
		return 0;
	return -EPROTO;
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
	/* num_ports was checked when the state was opened; whoever may
	 * write the file may have changed it since. */
	for (p = 0; p < st->sh->num_ports && p < UIB_MAX_PORTS; p++)
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

int uib_dev_add(struct uib_rundir *rd, struct uib_dev_config *cfg,
		const struct uib_dev_access *acc, char *err, size_t errlen)
{
	struct uib_state st = { .fd = -1 };
	char path[PATH_MAX], dir[PATH_MAX], ctxdir[PATH_MAX];
	struct uib_dev_access def;
	bool linked = false;
	int idx = -1, ret;

	if (!acc) {
		uib_dev_access_default(&def);
		acc = &def;
	}
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

	/* Owner-only until the last step: a half-made device is nobody's. */
	ret = uib_state_create(path, cfg, &st);
	if (ret) {
		set_err(err, errlen, "cannot create %s: %s", path,
			strerror(-ret));
		return ret;
	}
	ret = uib_sysfs_write_device(rd, st.sh);
	snprintf(dir, sizeof(dir), "%s/class/infiniband/%s", rd->sys,
		 cfg->name);
	ret = ret ?: tree_own(dir, acc);
	if (ret) {
		set_err(err, errlen, "cannot write the sysfs tree under %s: %s",
			rd->sys, strerror(-ret));
		goto err_state;
	}
	ret = ctx_dir_create(rd, cfg->name, acc);
	if (ret) {
		ctx_dir_path(rd, cfg->name, ctxdir, sizeof(ctxdir));
		set_err(err, errlen, "cannot create %s: %s", ctxdir,
			strerror(-ret));
		goto err_state;
	}
	ret = devnode_create(rd, acc, &idx, &linked, err, errlen);
	if (ret)
		goto err_state;
	st.sh->uverbs_index = idx;
	ret = uib_sysfs_publish_uverbs(rd, cfg->name, idx);
	snprintf(dir, sizeof(dir), "%s/class/infiniband_verbs/uverbs%d",
		 rd->sys, idx);
	ret = ret ?: tree_own(dir, acc);
	if (ret) {
		set_err(err, errlen, "cannot publish uverbs%d: %s", idx,
			strerror(-ret));
		goto err_state;
	}
	if (fchown(st.fd, acc->uid, acc->gid) || fchmod(st.fd, acc->mode)) {
		ret = -errno;
		set_err(err, errlen,
			"cannot give %s owner %u, group %u, mode %04o: %s",
			path, (unsigned int)acc->uid, (unsigned int)acc->gid,
			(unsigned int)acc->mode, strerror(errno));
		goto err_state;
	}
	atomic_store_explicit(&st.sh->ready, 1, memory_order_release);
	uib_state_close(&st);
	if (linked)
		set_err(err, errlen,
			"cannot make the character device %s/uverbs%d (mknod not permitted here); it is a link to /dev/null that anyone can open, so only the permissions of %s guard device %s",
			rd->devnodes, idx, path, cfg->name);
	return 0;

err_state:
	uib_sysfs_remove_device(rd, cfg->name, idx);
	ctx_dir_path(rd, cfg->name, ctxdir, sizeof(ctxdir));
	rm_tree(ctxdir);
	uib_state_close(&st);
	unlink(path);
	return ret;
}

/* Everything that carries a device's name, found by name only: for a
 * device whose state file cannot be trusted. */
static void dev_remove_by_name(const struct uib_rundir *rd, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX], ibdev[UIB_NAME_MAX];
	struct dirent *de;
	DIR *d;
	int idx;

	snprintf(dir, sizeof(dir), "%s/class/infiniband_verbs", rd->sys);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (sscanf(de->d_name, "uverbs%d", &idx) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/%s/ibdev", dir, de->d_name);
		if (!uib_read_line(path, ibdev, sizeof(ibdev)) &&
		    !strcmp(ibdev, name))
			uib_sysfs_remove_device(rd, name, idx);
	}
	if (d)
		closedir(d);
	uib_sysfs_remove_device(rd, name, -1);
	ctx_dir_path(rd, name, path, sizeof(path));
	rm_tree(path);
	uib_state_path(rd, name, path, sizeof(path));
	unlink(path);
}

int uib_dev_del(struct uib_rundir *rd, const char *name, bool force,
		char *err, size_t errlen)
{
	struct uib_state st = { .fd = -1 };
	char path[PATH_MAX], why[160];
	int idx, ret;

	if (uib_name_valid(name)) {
		set_err(err, errlen, "invalid device name '%s'", name);
		return -EINVAL;
	}
	uib_state_path(rd, name, path, sizeof(path));
	ret = uib_state_diagnose(path, why, sizeof(why));
	if (ret == -ENOENT && !force) {
		set_err(err, errlen, "no device named %s in %s", name,
			rd->root);
		return -ENODEV;
	}
	if (!ret)
		ret = uib_state_open(path, &st);
	if (ret) {
		if (force) {
			dev_remove_by_name(rd, name);
			return 0;
		}
		set_err(err, errlen,
			"device %s: state file %s invalid (%s); not touching it; remove it with: uibctl del --force %s",
			name, path,
			ret == -EPROTO || ret == -ENODATA ? why : strerror(-ret),
			name);
		return ret;
	}
	/* Hide first: a process opening the device from now on is refused
	 * by the provider; those that have it open keep their mapping. */
	atomic_store_explicit(&st.sh->ready, 0, memory_order_release);
	idx = st.sh->uverbs_index;
	uib_sysfs_remove_device(rd, name,
				idx >= 0 && idx < UIB_MAX_UVERBS ? idx : -1);
	uib_state_close(&st);
	ctx_dir_path(rd, name, path, sizeof(path));
	rm_tree(path);
	uib_state_path(rd, name, path, sizeof(path));
	unlink(path);
	return 0;
}

int uib_dev_set_port(struct uib_rundir *rd, const char *name,
		     unsigned int port, int up, char *err, size_t errlen)
{
	struct uib_state st = { .fd = -1 };
	struct uib_port_shared *ps;
	char path[PATH_MAX], why[160];
	int ret;

	uib_state_path(rd, name, path, sizeof(path));
	ret = uib_name_valid(name) ? -ENOENT :
				     uib_state_diagnose(path, why, sizeof(why));
	if (ret == -ENOENT) {
		set_err(err, errlen, "no device named %s in %s", name,
			rd->root);
		return -ENODEV;
	}
	ret = ret ?: uib_state_open(path, &st);
	if (ret) {
		set_err(err, errlen,
			"device %s: state file %s invalid (%s); not touching it; remove it with: uibctl del --force %s",
			name, path,
			ret == -EPROTO || ret == -ENODATA ? why : strerror(-ret),
			name);
		return ret;
	}
	if (port < 1 || port > st.sh->num_ports || port > UIB_MAX_PORTS) {
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

enum dev_status { DEV_ABSENT, DEV_NOT_READY, DEV_READY, DEV_INVALID };

/* What the state file of this name says, trusting none of it. */
static enum dev_status dev_status(const struct uib_rundir *rd,
				  const char *name)
{
	struct uib_state st = { .fd = -1 };
	char path[PATH_MAX];
	bool ready;
	int ret;

	if (uib_name_valid(name))
		return DEV_ABSENT;
	uib_state_path(rd, name, path, sizeof(path));
	ret = uib_state_diagnose(path, NULL, 0);
	if (ret == -ENOENT)
		return DEV_ABSENT;
	if (ret == -ENODATA)
		return DEV_NOT_READY;
	if (ret || uib_state_open(path, &st))
		return DEV_INVALID;
	ready = atomic_load(&st.sh->ready) == 1;
	uib_state_close(&st);
	return ready ? DEV_READY : DEV_NOT_READY;
}

/* Does a live process have a context on it?  A device uibctl never
 * finished has none. */
static bool dev_in_use(const struct uib_state *st)
{
	int i;

	for (i = 0; i < UIB_MAX_CTX; i++)
		if (atomic_load(&st->sh->ctx[i].state) != UIB_SLOT_FREE &&
		    uib_proc_alive(&st->sh->ctx[i].proc))
			return true;
	return false;
}

int uib_dev_repair(struct uib_rundir *rd,
		   void (*invalid)(const char *name, const char *why,
				   void *arg),
		   void *arg)
{
	char dir[PATH_MAX], path[PATH_MAX], name[UIB_NAME_MAX], why[160];
	struct dirent *de;
	DIR *d;
	int n = 0;

	/* 1. State files that never became ready (or were left empty by a
	 * uibctl killed at once).  Anything else that looks wrong is
	 * reported and left alone, with all that carries its name. */
	snprintf(dir, sizeof(dir), "%s/dev", rd->root);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		struct uib_state st = { .fd = -1 };
		int idx = -1, ret;
		bool in_use;

		if (de->d_name[0] == '.' ||
		    name_from_state_file(de->d_name, name, sizeof(name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ret = uib_state_diagnose(path, why, sizeof(why));
		if (ret == -ENOENT)
			continue;
		if (!ret)
			ret = uib_state_open(path, &st);
		if (ret && ret != -ENODATA) {
			if (invalid)
				invalid(name, ret == -EPROTO ? why :
						strerror(-ret), arg);
			continue;
		}
		if (!ret) {
			bool ready = atomic_load(&st.sh->ready) == 1;

			in_use = dev_in_use(&st);
			idx = st.sh->uverbs_index;
			uib_state_close(&st);
			if (ready)
				continue;
			if (in_use) {
				if (invalid)
					invalid(name, "not ready, yet in use by a live process",
						arg);
				continue;
			}
		}
		uib_sysfs_remove_device(rd, name, idx);
		ctx_dir_path(rd, name, path, sizeof(path));
		rm_tree(path);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
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
		if (!uib_read_line(path, name, sizeof(name))) {
			enum dev_status ds = dev_status(rd, name);

			if (ds == DEV_READY || ds == DEV_INVALID)
				continue;
		}
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
		enum dev_status ds;

		if (de->d_name[0] == '.')
			continue;
		ds = dev_status(rd, de->d_name);
		if (ds == DEV_READY || ds == DEV_INVALID)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rm_tree(path);
	}
	if (d)
		closedir(d);

	/* 4. Broker directories without a device. */
	snprintf(dir, sizeof(dir), "%s/dev", rd->root);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 4 || len - 4 >= sizeof(name) ||
		    strcmp(de->d_name + len - 4, ".ctx"))
			continue;
		memcpy(name, de->d_name, len - 4);
		name[len - 4] = 0;
		uib_state_path(rd, name, path, sizeof(path));
		if (!access(path, F_OK))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rm_tree(path);
	}
	if (d)
		closedir(d);
	return n;
}
