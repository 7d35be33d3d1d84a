// SPDX-License-Identifier: MIT
/*
 * libuibdv: uib direct verbs (infiniband/uibdv.h).
 *
 * A completion channel here is a pipe opened read-write through
 * /proc/self/fd, so that it always has a writer of its own (a read blocks
 * rather than returning end-of-file) and one fd owns all of it: the stock
 * ibv_destroy_comp_channel() closes that fd and frees the struct, which is
 * all there is to destroy.  Whoever produces a completion into a CQ armed
 * on the channel (any process) opens the pipe through /proc/<pid>/fd and
 * writes the CQ's handle, which is what ibv_get_cq_event() reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <infiniband/uibdv.h>

bool uibdv_is_uib_device(struct ibv_device *dev)
{
	char path[PATH_MAX];

	if (!dev)
		return false;
	/* Only uib devices have a run directory (DESIGN.md section 3). */
	snprintf(path, sizeof(path), "%s/device/uib_run_dir", dev->ibdev_path);
	return access(path, R_OK) == 0;
}

struct ibv_comp_channel *uibdv_create_comp_channel(struct ibv_context *context)
{
	struct ibv_comp_channel *ch;
	char path[64];
	int fds[2], fd, err;

	if (!context || !uibdv_is_uib_device(context->device)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	/* ibv_destroy_comp_channel() frees it with free(). */
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	if (pipe2(fds, O_CLOEXEC)) {
		err = errno;
		goto err_free;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	fd = open(path, O_RDWR | O_CLOEXEC);
	err = errno;
	close(fds[0]);
	close(fds[1]);
	if (fd < 0)
		goto err_free;
	ch->context = context;
	ch->fd = fd;
	ch->refcnt = 0;
	return ch;

err_free:
	free(ch);
	errno = err;
	return NULL;
}
