// SPDX-License-Identifier: MIT
/*
 * Control verbs: device and port queries, protection domains, memory
 * registration.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uib.h"
#include "uib_config.h"

int uib_query_device_ex(struct ibv_context *context,
			const struct ibv_query_device_ex_input *input,
			struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct uib_context *ctx = to_uctx(context);
	const struct uib_dev_shared *sh = ctx->st.sh;
	struct ibv_device_attr_ex a = {};
	struct ibv_device_attr *o = &a.orig_attr;

	if (input && input->comp_mask)
		return EINVAL;
	if (attr_size < sizeof(*o))
		return EINVAL;

	snprintf(o->fw_ver, sizeof(o->fw_ver), "%s", UIB_VERSION);
	o->node_guid = htobe64(sh->node_guid);
	o->sys_image_guid = htobe64(sh->sys_image_guid);
	o->max_mr_size = UIB_MAX_MR_SIZE;
	o->page_size_cap = ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
	o->vendor_id = UIB_VENDOR_ID;
	o->vendor_part_id = UIB_VENDOR_PART_ID;
	o->hw_ver = 0;
	o->max_qp = UIB_MAX_QP;
	o->max_qp_wr = UIB_MAX_QP_WR;
	o->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN |
			      IBV_DEVICE_PORT_ACTIVE_EVENT |
			      IBV_DEVICE_SHUTDOWN_PORT |
			      IBV_DEVICE_SYS_IMAGE_GUID;
	o->max_sge = UIB_MAX_SGE;
	o->max_sge_rd = UIB_MAX_SGE;
	o->max_cq = UIB_MAX_CQ;
	o->max_cqe = UIB_MAX_CQE;
	o->max_mr = UIB_MAX_MR;
	o->max_pd = UIB_MAX_PD;
	o->max_qp_rd_atom = UIB_MAX_RD_ATOM;
	o->max_qp_init_rd_atom = UIB_MAX_RD_ATOM;
	o->max_res_rd_atom = UIB_MAX_RD_ATOM * UIB_MAX_QP;
	o->atomic_cap = IBV_ATOMIC_HCA;
	o->max_mcast_grp = UIB_MAX_MCAST_GRP;
	o->max_mcast_qp_attach = UIB_MAX_MCAST_QP_ATTACH;
	o->max_total_mcast_qp_attach = UIB_MAX_MCAST_ATTACH;
	o->max_ah = UIB_MAX_AH;
	o->max_srq = UIB_MAX_SRQ;
	o->max_srq_wr = UIB_MAX_SRQ_WR;
	o->max_srq_sge = UIB_MAX_SGE;
	o->max_pkeys = UIB_PKEY_TBL_LEN;
	o->local_ca_ack_delay = 8;
	o->phys_port_cnt = sh->num_ports;

	a.device_cap_flags_ex = o->device_cap_flags;
	/* UD segmentation offload (IBV_WR_TSO), as an HCA with UD LSO. */
	a.tso_caps.max_tso = UIB_MAX_TSO;
	a.tso_caps.supported_qpts = 1u << IBV_QPT_UD;
	a.phys_port_cnt_ex = sh->num_ports;

	/* The caller's struct may be older (smaller) than ours. */
	memcpy(attr, &a, attr_size < sizeof(a) ? attr_size : sizeof(a));
	return 0;
}

int uib_query_port(struct ibv_context *context, uint8_t port_num,
		   struct ibv_port_attr *pa)
{
	struct uib_context *ctx = to_uctx(context);
	const struct uib_port_shared *port;
	uint32_t state;

	if (port_num < 1 || port_num > ctx->st.sh->num_ports)
		return EINVAL;
	port = &ctx->st.sh->port[port_num - 1];
	state = atomic_load_explicit(&port->state, memory_order_acquire);

	memset(pa, 0, sizeof(*pa));
	pa->state = state;
	pa->max_mtu = IBV_MTU_4096;
	pa->active_mtu = IBV_MTU_4096;
	pa->gid_tbl_len = UIB_GID_TBL_LEN;
	pa->port_cap_flags = IBV_PORT_SYS_IMAGE_GUID_SUP;
	pa->max_msg_sz = 1u << 31;
	pa->pkey_tbl_len = UIB_PKEY_TBL_LEN;
	pa->lid = port->lid;
	pa->sm_lid = port->sm_lid;
	pa->lmc = 0;
	pa->max_vl_num = 1;		/* VL0 only */
	pa->sm_sl = 0;
	pa->subnet_timeout = 18;
	pa->active_width = 2;		/* 4X */
	pa->active_speed = 32;		/* EDR: 4X EDR = 100 Gb/s */
	pa->phys_state = state == IBV_PORT_DOWN ? 3 /* Disabled */ :
						  5 /* LinkUp */;
	pa->link_layer = IBV_LINK_LAYER_INFINIBAND;
	return 0;
}

struct ibv_pd *uib_alloc_pd(struct ibv_context *context)
{
	struct uib_pd *pd;

	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	pd->pdn = uib_pd_alloc(&to_uctx(context)->st);
	pd->ibv_pd.handle = pd->pdn;
	return &pd->ibv_pd;
}

int uib_dealloc_pd(struct ibv_pd *ibpd)
{
	struct uib_pd *pd = to_upd(ibpd);

	/* As the kernel does: a PD still used by an MR or QP stays. */
	if (atomic_load(&pd->users))
		return EBUSY;
	free(pd);
	return 0;
}

int uib_check_lkey(struct uib_context *ctx, uint32_t pdn,
		   const struct ibv_sge *sge, int need_access)
{
	const struct uib_mr_slot *mr = uib_mr_lookup(&ctx->st, sge->lkey);

	/* An lkey names memory of this process only: another process's
	 * key on the same device is as wrong as a stale one. */
	if (!mr || mr->ctx != ctx->ctx_slot || mr->pd != pdn ||
	    (need_access & ~mr->access) || sge->addr < mr->addr ||
	    sge->addr - mr->addr > mr->length ||
	    sge->length > mr->length - (sge->addr - mr->addr))
		return IBV_WC_LOC_PROT_ERR;
	return IBV_WC_SUCCESS;
}

struct ibv_ah *uib_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	struct uib_context *ctx = to_uctx(pd->context);
	struct uib_ah *ah;

	if (attr->port_num < 1 || attr->port_num > ctx->st.sh->num_ports ||
	    attr->sl > 15 ||
	    (!attr->is_global && (!attr->dlid || attr->dlid > UIB_MAX_LID)) ||
	    (attr->is_global && attr->grh.sgid_index >= UIB_GID_TBL_LEN)) {
		errno = EINVAL;
		return NULL;
	}
	ah = calloc(1, sizeof(*ah));
	if (!ah) {
		errno = ENOMEM;
		return NULL;
	}
	ah->attr = *attr;
	return &ah->ibv_ah;
}

int uib_destroy_ah(struct ibv_ah *ah)
{
	free(to_uah(ah));
	return 0;
}
