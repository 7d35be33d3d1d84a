/* SPDX-License-Identifier: MIT */
/*
 * uib direct verbs: what a program can ask of a uib device beyond the
 * standard verbs.  Link with -luibdv.
 *
 * uib has no kernel, so the kernel command behind ibv_create_comp_channel()
 * does not exist; uibdv_create_comp_channel() makes the equivalent channel
 * in userspace.  The stock ibv_req_notify_cq(), ibv_get_cq_event(),
 * ibv_ack_cq_events() and ibv_destroy_comp_channel() accept it.  The
 * library libuib-preload.so makes unmodified programs' calls to
 * ibv_create_comp_channel() use it on uib devices (uib-preload(7)).
 */
#ifndef INFINIBAND_UIBDV_H
#define INFINIBAND_UIBDV_H

#include <stdbool.h>
#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True if dev is a uib device. */
bool uibdv_is_uib_device(struct ibv_device *dev);

/* A completion channel for a uib context: NULL with errno EOPNOTSUPP for
 * any other device, or another errno on failure. */
struct ibv_comp_channel *uibdv_create_comp_channel(struct ibv_context *context);

#ifdef __cplusplus
}
#endif

#endif /* INFINIBAND_UIBDV_H */
