/* SPDX-License-Identifier: MIT */
/*
 * The shared state of one uib device: a file under <run-dir>/dev/ that
 * uibctl creates and every process that opens the device maps.
 *
 * It holds what real hardware would hold in its own memory: the device and
 * port attributes, and the tables that make QPNs and memory keys unique on
 * the device across processes (contexts, MRs, QPs).  Queues themselves are
 * not here; they live in per-process memory other processes map (queue.h).
 *
 * Concurrency: table allocation and release run under st->lock, a robust,
 * process-shared mutex, so that a process killed while holding it leaves
 * the next locker able to continue (uib_state_lock() repairs it).  Every
 * slot's 'state' word is written last on allocation and first on release,
 * with release/acquire ordering, so lock-free readers on the data path see
 * either a whole slot or a free one.
 *
 * Error convention (util and state code): 0 or -errno.
 */
#ifndef UIB_STATE_H
#define UIB_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define UIB_STATE_MAGIC 0x31424955u	/* "UIB1" */
#define UIB_STATE_VERSION 2u

enum {
	UIB_NAME_MAX = 32,		/* device name, NUL included */
	UIB_MAX_PORTS = 4,
	UIB_GID_TBL_LEN = 16,
	UIB_PKEY_TBL_LEN = 16,
	UIB_MAX_VFS = 64,
	UIB_MAX_CTX = 256,		/* open contexts on one device */
	UIB_MAX_MR = 16384,
	UIB_MAX_QP = 4096,
	UIB_MAX_LID = 0xbfff,		/* top of the unicast LID range */
	UIB_MAX_MCAST_ATTACH = 4096,	/* QP attachments, all groups */
};

/* QPN = slot index + UIB_QPN_BASE; QPNs 0 and 1 are the SMI and GSI. */
#define UIB_QPN_BASE 0x100u

enum uib_slot_state {
	UIB_SLOT_FREE = 0,
	UIB_SLOT_BUSY = 1,	/* being set up or torn down under st->lock */
	UIB_SLOT_LIVE = 2,
};

/* Identifies a process across PID reuse: PID plus its start time. */
struct uib_proc_id {
	int32_t pid;
	uint32_t reserved;
	uint64_t start_time;	/* /proc/PID/stat field 22, clock ticks */
};

struct uib_port_shared {
	_Atomic uint32_t state;		/* enum ibv_port_state */
	uint16_t lid;
	uint16_t sm_lid;
	uint64_t guid;			/* host order; GID[0] = fe80::guid */
	uint16_t pkey[UIB_PKEY_TBL_LEN];
	_Atomic uint32_t event_gen;	/* bumped on every state change */
	uint32_t reserved;
};

/* Device-wide limited objects that live only in a process (CQs, SRQs):
 * counted per device and per context, so that a dead context's share is
 * given back when it is reclaimed. */
enum uib_res {
	UIB_RES_CQ,
	UIB_RES_SRQ,
	UIB_RES_NUM
};

struct uib_ctx_slot {
	_Atomic uint32_t state;
	int32_t async_fd;		/* read end of its async event pipe */
	struct uib_proc_id proc;
	uint64_t async_ino;
	_Atomic uint32_t res[UIB_RES_NUM];	/* enum uib_res it holds */
};

struct uib_mr_slot {
	_Atomic uint32_t state;
	uint16_t ctx;			/* owning context slot */
	uint8_t key_gen;		/* low byte of lkey/rkey */
	uint8_t reserved;
	uint32_t pd;			/* device-unique PD number */
	int32_t access;			/* enum ibv_access_flags */
	uint64_t addr;			/* start, in the owner's address space */
	uint64_t length;
	uint64_t iova;			/* start as remote peers address it */
	/* Shared backing (mr.c): peers map the owner's memfd shm_fd and
	 * find addr at shm_off; shm_fd < 0 means none, use the kernel's
	 * cross-process copy. */
	int32_t shm_fd;
	_Atomic uint32_t busy;		/* peers copying under this key now */
	uint64_t shm_ino;
	uint64_t shm_off;
};

/*
 * What a requester needs to know of a QP it sends to.  The owner fills the
 * slot at create/modify time; the QP state word is shared: a requester
 * moves a responder QP to IBV_QPS_ERR on a fatal remote error (IBA 9.9),
 * and the owner flushes its queues when it sees that.
 */
struct uib_qp_slot {
	_Atomic uint32_t state;		/* slot state */
	uint16_t ctx;
	uint8_t port;
	uint8_t reserved;
	uint32_t pd;
	uint32_t qp_type;		/* enum ibv_qp_type */
	_Atomic uint32_t qp_state;	/* enum ibv_qp_state */
	_Atomic uint32_t incarnation;	/* changes with every allocation */
	uint32_t qkey;
	uint32_t access;		/* qp_access_flags */
	uint32_t min_rnr_timer;
	uint32_t dest_qpn;		/* RC/UC peer */
	uint16_t pkey;
	uint16_t reserved2;
	int32_t pid;
	int32_t rq_fd;			/* -1 if the QP uses an SRQ */
	int32_t srq_fd;
	int32_t rcq_fd;
	uint64_t rq_uid;
	uint64_t srq_uid;
	uint64_t rcq_uid;
	uint64_t user_qp;		/* the owner's struct ibv_qp *, for events */
};

/*
 * One attachment of a UD QP to a multicast group (ibv_attach_mcast).  There
 * is no subnet administrator: a sender finds members by the MGID of its
 * GRH (or, without a GRH, by the MLID given at attach time).  A slot whose
 * QP slot no longer has that incarnation is stale and ignored; a dead
 * context's slots are freed by reclaim.
 */
struct uib_mcast_slot {
	_Atomic uint32_t state;
	uint16_t ctx;
	uint16_t lid;
	uint32_t qpn;
	uint32_t incarnation;		/* of the QP's slot at attach time */
	uint8_t gid[16];
};

struct uib_dev_shared {
	uint32_t magic;
	uint32_t version;
	_Atomic uint32_t ready;		/* 1 once uibctl add has finished */
	uint32_t size;			/* sizeof(struct uib_dev_shared) */
	char name[UIB_NAME_MAX];
	int32_t uverbs_index;		/* N of uverbsN; -1 until the link exists */
	uint32_t num_ports;
	uint32_t num_vfs;
	uint32_t reserved;
	uint64_t node_guid;
	uint64_t sys_image_guid;

	pthread_mutex_t lock;		/* robust, process-shared */
	_Atomic uint32_t next_pd;
	_Atomic uint32_t mr_hint;	/* where the next MR slot search starts */
	_Atomic uint32_t qp_hint;
	uint32_t reserved2;
	pthread_mutex_t atomic_lock;	/* makes remote atomics atomic device-wide */
	_Atomic uint32_t res_used[UIB_RES_NUM];	/* enum uib_res, all contexts */
	uint32_t reserved3;

	struct uib_port_shared port[UIB_MAX_PORTS];
	struct uib_ctx_slot ctx[UIB_MAX_CTX];
	struct uib_mr_slot mr[UIB_MAX_MR];
	struct uib_qp_slot qp[UIB_MAX_QP];
	_Atomic uint32_t mcast_hw;	/* slots at or above are all free */
	uint32_t reserved4;
	struct uib_mcast_slot mcast[UIB_MAX_MCAST_ATTACH];
};

/* What uibctl add asks for. */
struct uib_dev_config {
	char name[UIB_NAME_MAX];
	unsigned int num_ports;		/* 1..UIB_MAX_PORTS */
	unsigned int num_vfs;		/* 0..UIB_MAX_VFS */
	uint64_t node_guid;		/* 0: derived from the device number */
	uint16_t base_lid;		/* 0: lowest free LIDs in the run dir */
};

/* A mapped device state. */
struct uib_state {
	struct uib_dev_shared *sh;
	int fd;
};

int uib_state_create(const char *path, const struct uib_dev_config *cfg,
		     struct uib_state *st);
int uib_state_open(const char *path, struct uib_state *st);
void uib_state_close(struct uib_state *st);

int uib_state_lock(struct uib_state *st);
void uib_state_unlock(struct uib_state *st);

int uib_proc_self(struct uib_proc_id *id);
bool uib_proc_alive(const struct uib_proc_id *id);

/* Contexts: one slot per open ibv_context.  Returns the slot or -errno. */
int uib_ctx_attach(struct uib_state *st, int async_fd);
/* Queues an async event (struct ib_uverbs_async_event_desc) on context
 * ctx, in whatever process holds it.  0 or -errno. */
int uib_ctx_notify(const struct uib_state *st, int ctx, uint32_t type,
		   uint64_t element);
void uib_ctx_detach(struct uib_state *st, int ctx);

/* Frees every slot owned by a context whose process has died.  Returns the
 * number of contexts reclaimed.  Takes st->lock. */
int uib_state_reclaim(struct uib_state *st);

uint32_t uib_pd_alloc(struct uib_state *st);

/* Takes one resource r for context ctx, if fewer than max are in use on
 * the device: 0 or -ENOMEM.  Lock-free. */
int uib_res_get(struct uib_state *st, int ctx, enum uib_res r, uint32_t max);
void uib_res_put(struct uib_state *st, int ctx, enum uib_res r);

/* MRs: keys are (slot << 8) | generation, unique on the device. */
int uib_mr_alloc(struct uib_state *st, const struct uib_mr_slot *tmpl,
		 uint32_t *key);
int uib_mr_free(struct uib_state *st, uint32_t key);
/* Lock-free lookup for the data path: the slot, or NULL if key is stale. */
const struct uib_mr_slot *uib_mr_lookup(const struct uib_state *st,
					uint32_t key);
/* The same, holding the MR against deregistration until uib_mr_put():
 * uib_mr_free() waits for every holder, so a peer never writes memory
 * after its owner has deregistered it. */
struct uib_mr_slot *uib_mr_get(const struct uib_state *st, uint32_t key);
void uib_mr_put(struct uib_mr_slot *mr);

/* QPNs: unique on the device while the QP lives. */
int uib_qpn_alloc(struct uib_state *st, const struct uib_qp_slot *tmpl,
		  uint32_t *qpn);
int uib_qpn_free(struct uib_state *st, uint32_t qpn);
/* Lock-free lookup for the data path: the live slot of qpn, or NULL. */
struct uib_qp_slot *uib_qp_lookup(const struct uib_state *st, uint32_t qpn);

/* Multicast attachments (under st->lock): 0, -EEXIST (already attached:
 * nothing changed), -ENOENT (detach: not attached), -ENOMEM (a limit). */
int uib_mcast_add(struct uib_state *st, const struct uib_mcast_slot *m,
		  unsigned int max_groups, unsigned int max_per_group);
int uib_mcast_del(struct uib_state *st, uint32_t qpn, const uint8_t *gid);

struct uib_state_usage {
	unsigned int contexts, dead_contexts, mrs, qps;
};
void uib_state_usage(const struct uib_state *st, struct uib_state_usage *u);

#endif /* UIB_STATE_H */
