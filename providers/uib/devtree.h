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
 *   <run>/lock               flock()ed by every uibctl change
 *
 * All functions return 0 or -errno; those taking 'err' also describe a
 * failure there in words fit for the user.
 */
#ifndef UIB_DEVTREE_H
#define UIB_DEVTREE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

struct uib_rundir {
	char root[PATH_MAX / 4];
	char sys[PATH_MAX / 4];		/* <root>/sys */
	char devnodes[PATH_MAX / 4];	/* /dev/infiniband unless overridden */
	int lock_fd;
};

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

/* Parses "NAME [--ports N] [--vfs N] [--guid G] [--lid L]". */
int uib_parse_add_args(int argc, char *const argv[],
		       struct uib_dev_config *cfg, char *err, size_t errlen);

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

/* Lifecycle; callers hold the run directory lock. */
int uib_dev_add(struct uib_rundir *rd, struct uib_dev_config *cfg,
		char *err, size_t errlen);
int uib_dev_del(struct uib_rundir *rd, const char *name, char *err,
		size_t errlen);
int uib_dev_set_port(struct uib_rundir *rd, const char *name,
		     unsigned int port, int up, char *err, size_t errlen);
/* Removes what a killed uibctl left half made; returns how many devices
 * were reclaimed. */
int uib_dev_repair(struct uib_rundir *rd);

/* Calls fn for every ready device in the run directory, in name order. */
int uib_dev_foreach(const struct uib_rundir *rd,
		    int (*fn)(const char *name, struct uib_state *st,
			      void *arg),
		    void *arg);

#endif /* UIB_DEVTREE_H */
