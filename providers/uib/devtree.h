/* SPDX-License-Identifier: MIT */
/*
 * A uib device's presence on the host (DESIGN.md section 3): the run
 * directory, the sysfs-shaped tree libibverbs discovers devices through,
 * the /dev/infiniband/uverbsN node, and the lifecycle that ties them to the
 * shared state file: add, delete, port state, and repair of a device half
 * made or half removed by a killed uibctl.
 *
 * Run directory layout:
 *   <run>/sys/...            what SYSFS_PATH points at
 *   <run>/dev/<name>.state   the shared state (state.h)
 *   <run>/dev/<name>.ctx/    the contexts' fd broker sockets (fdpass.h)
 *   <run>/lock               flock()ed by every uibctl change (root only)
 *
 * Trust (README "Trust model"): a device has an owner, a group and a mode
 * (struct uib_dev_access).  The state file, the broker directory and the
 * /dev/infiniband/uverbsN node carry them, so only the owner and members
 * of the group open the device; the sysfs entries carry owner and group
 * but stay world-readable, as in /sys, so that libibverbs lists the device
 * to everyone and a non-member's open fails with EACCES instead of the
 * device seeming absent.
 *
 * All functions return 0 or -errno; those taking 'err' also describe a
 * failure there in words fit for the user.
 */
#ifndef UIB_DEVTREE_H
#define UIB_DEVTREE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "state.h"

/* uverbsN nodes are host-wide; N is below this. */
#define UIB_MAX_UVERBS 1024

struct uib_rundir {
	char root[PATH_MAX / 4];
	char sys[PATH_MAX / 4];		/* <root>/sys */
	char devnodes[PATH_MAX / 4];	/* /dev/infiniband unless overridden */
	int lock_fd;
};

/* Who may open a device. */
struct uib_dev_access {
	uid_t uid;
	gid_t gid;
	mode_t mode;		/* read/write bits only: 0660 by default */
};

/* The defaults of uibctl add: owner the caller, group "uib" if it exists
 * else the caller's group, mode 0660. */
void uib_dev_access_default(struct uib_dev_access *acc);

/* Fills rd from 'dir', else $UIB_RUN_DIR, else the built-in default.
 * $UIB_DEV_DIR overrides /dev/infiniband (for unit tests only: libibverbs
 * itself always looks in /dev/infiniband). */
int uib_rundir_init(struct uib_rundir *rd, const char *dir);

/* Creates the run directory skeleton if needed and takes its lock. */
int uib_rundir_lock(struct uib_rundir *rd, char *err, size_t errlen);
void uib_rundir_unlock(struct uib_rundir *rd);

void uib_state_path(const struct uib_rundir *rd, const char *name,
		    char *buf, size_t len);

int uib_name_valid(const char *name);

/* Reads the first line of a file, without its newline. */
int uib_read_line(const char *path, char *buf, size_t len);

/* Parses "NAME [--ports N] [--vfs N] [--guid G] [--lid L] [--owner USER]
 * [--group GROUP] [--mode MODE]"; acc gets the defaults for what is not
 * given. */
int uib_parse_add_args(int argc, char *const argv[],
		       struct uib_dev_config *cfg, struct uib_dev_access *acc,
		       char *err, size_t errlen);

/* Checks a state file's header without trusting it: 0 if it describes a
 * device, -EPROTO (with the reason in 'why') if not, -errno if it cannot
 * be read. */
int uib_state_diagnose(const char *path, char *why, size_t len);

void uib_format_guid(uint64_t guid, char *buf, size_t len);
void uib_format_gid(uint64_t prefix, uint64_t guid, char *buf, size_t len);

/* Writes class/infiniband/<name>/ for the state in sh. */
int uib_sysfs_write_device(const struct uib_rundir *rd,
			   const struct uib_dev_shared *sh);
/* Publishes class/infiniband_verbs/uverbsN atomically (the last step). */
int uib_sysfs_publish_uverbs(const struct uib_rundir *rd, const char *name,
			     int idx);
/* Writes ports/P/{state,phys_state} from the shared port state. */
int uib_sysfs_write_port_state(const struct uib_rundir *rd,
			       const struct uib_dev_shared *sh,
			       unsigned int port);
void uib_sysfs_remove_device(const struct uib_rundir *rd, const char *name,
			     int idx);

/* Lifecycle; callers hold the run directory lock.  acc NULL: defaults.
 * uib_dev_add() returns 0 with a warning in err when the device could not
 * get a character device node (then only the state file's permissions
 * guard it). */
int uib_dev_add(struct uib_rundir *rd, struct uib_dev_config *cfg,
		const struct uib_dev_access *acc, char *err, size_t errlen);
/* Refuses (-EPROTO) a device whose state file is invalid unless 'force':
 * then removes whatever carries the name, trusting nothing in the file. */
int uib_dev_del(struct uib_rundir *rd, const char *name, bool force,
		char *err, size_t errlen);
int uib_dev_set_port(struct uib_rundir *rd, const char *name,
		     unsigned int port, int up, char *err, size_t errlen);
/* Removes what a killed uibctl left half made; returns how many devices
 * were reclaimed.  A state file that is not valid is never removed: it is
 * reported through 'invalid' (if not NULL) and left, with what carries
 * its name. */
int uib_dev_repair(struct uib_rundir *rd,
		   void (*invalid)(const char *name, const char *why,
				   void *arg),
		   void *arg);

/* Calls fn for every ready device in the run directory, in name order. */
int uib_dev_foreach(const struct uib_rundir *rd,
		    int (*fn)(const char *name, struct uib_state *st,
			      void *arg),
		    void *arg);

#endif /* UIB_DEVTREE_H */
