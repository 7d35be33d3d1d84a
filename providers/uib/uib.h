/* SPDX-License-Identifier: MIT */
/*
 * The uib provider's private header: its objects, each embedding the
 * libibverbs object it extends, and the one-line conversions between them.
 *
 * Files: uib.c (registration, device and context setup), verbs.c (control
 * verbs).  Error convention: verbs return NULL + errno, or a positive errno.
 */
#ifndef UIB_H
#define UIB_H

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <infiniband/verbs.h>

#include "uib_pabi.h"
#include "state.h"

#define UIB_VENDOR_ID 0x000000
#define UIB_VENDOR_PART_ID 0x5542	/* "UB" */

/* Honest device limits: what the tables and rings can hold. */
enum {
	UIB_MAX_QP_WR = 16384,
	UIB_MAX_SGE = 32,
	UIB_MAX_CQ = 4096,
	UIB_MAX_CQE = 65535,
	UIB_MAX_SRQ = 1024,
	UIB_MAX_SRQ_WR = 16384,
	UIB_MAX_RD_ATOM = 16,
	UIB_MAX_MCAST_GRP = 1024,
	UIB_MAX_MCAST_QP_ATTACH = 64,
	UIB_MAX_AH = 65536,
	UIB_MAX_PD = 1 << 24,
};
#define UIB_MAX_MR_SIZE (1ull << 40)

struct uib_device {
	struct verbs_device vdev;
	char run_dir[PATH_MAX / 4];
	char state_path[PATH_MAX / 2];
};

struct uib_context {
	struct verbs_context vctx;
	struct uib_state st;
	int ctx_slot;		/* our slot in the device's context table */
	int async_wr;		/* write end behind context.async_fd */
};

struct uib_pd {
	struct ibv_pd ibv_pd;
	uint32_t pdn;		/* device-unique, recorded in MR/QP slots */
	atomic_int users;	/* MRs and QPs on this PD */
};

struct uib_mr {
	struct verbs_mr vmr;
	struct uib_pd *pd;
};

static inline struct uib_device *to_udev(struct ibv_device *ibdev)
{
	return uib_pabi_container_of(ibdev, struct uib_device, vdev.device);
}

static inline struct uib_context *to_uctx(struct ibv_context *ibctx)
{
	return uib_pabi_container_of(ibctx, struct uib_context, vctx.context);
}

static inline struct uib_pd *to_upd(struct ibv_pd *ibpd)
{
	return uib_pabi_container_of(ibpd, struct uib_pd, ibv_pd);
}

static inline struct uib_mr *to_umr(struct ibv_mr *ibmr)
{
	return uib_pabi_container_of(ibmr, struct uib_mr, vmr.ibv_mr);
}

/* Control-path log lines go to stderr; uib_dbg only with UIB_DEBUG set. */
extern int uib_debug;
#define uib_err(fmt, ...) fprintf(stderr, "uib: " fmt "\n", ##__VA_ARGS__)
#define uib_dbg(fmt, ...)                                                    \
	do {                                                                 \
		if (uib_debug)                                               \
			fprintf(stderr, "uib: " fmt "\n", ##__VA_ARGS__);    \
	} while (0)

/* verbs.c */
int uib_query_device_ex(struct ibv_context *context,
			const struct ibv_query_device_ex_input *input,
			struct ibv_device_attr_ex *attr, size_t attr_size);
int uib_query_port(struct ibv_context *context, uint8_t port_num,
		   struct ibv_port_attr *port_attr);
struct ibv_pd *uib_alloc_pd(struct ibv_context *context);
int uib_dealloc_pd(struct ibv_pd *pd);
struct ibv_mr *uib_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			  uint64_t hca_va, int access);
int uib_dereg_mr(struct verbs_mr *vmr);

#endif /* UIB_H */
