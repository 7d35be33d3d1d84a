// SPDX-License-Identifier: MIT
/*
 * libuib-preload.so: LD_PRELOAD it and an unmodified program's
 * ibv_create_comp_channel() returns a uibdv channel on uib devices; every
 * other device gets libibverbs' own function, untouched.  See uib-preload(7).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include <infiniband/uibdv.h>

typedef struct ibv_comp_channel *(*create_fn)(struct ibv_context *);

struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *context)
{
	static create_fn next;

	if (context && uibdv_is_uib_device(context->device))
		return uibdv_create_comp_channel(context);
	if (!next)
		next = (create_fn)dlvsym(RTLD_NEXT, "ibv_create_comp_channel",
					 "IBVERBS_1.0");
	if (!next) {
		errno = ENOSYS;
		return NULL;
	}
	return next(context);
}
