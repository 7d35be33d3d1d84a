// SPDX-License-Identifier: MIT
/*
 * Unit: the shared device state (providers/uib/state.c): the state file,
 * the robust lock, contexts and their reclaim, PD numbers, MR keys, QPNs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "check_helpers.h"
#include "state.h"

static const char *dir;
static char path[4096];
static struct uib_state st;

static const struct uib_dev_config test_cfg = {
	.name = "uibt0",
	.num_ports = 2,
	.num_vfs = 3,
	.node_guid = 0x0275696200abcd00ull,
	.base_lid = 0x20,
};

/* Every test gets a fresh directory and a freshly created state. */
static void setup(void)
{
	int ret;

	dir = uib_test_dir_create();
	snprintf(path, sizeof(path), "%s/uibt0.state", dir);
	st.sh = NULL;
	st.fd = -1;
	ret = uib_state_create(path, &test_cfg, &st);
	ck_assert_msg(ret == 0, "uib_state_create(%s) should succeed, got %d",
		      path, ret);
}

static void teardown(void)
{
	uib_state_close(&st);
	uib_test_dir_remove();
}

/* Forks a child that runs fn(arg) and _exit()s with its return value;
 * returns the child's exit status once it has been reaped. */
static int run_child(int (*fn)(void *), void *arg)
{
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_msg(pid >= 0, "fork should succeed");
	if (pid == 0)
		_exit(fn(arg));
	ck_assert_msg(waitpid(pid, &status, 0) == pid, "waitpid should succeed");
	ck_assert_msg(WIFEXITED(status), "the child should exit, not crash");
	return WEXITSTATUS(status);
}

/* ---- state file ---- */

START_TEST(test_create_fields)
{
	struct uib_dev_shared *sh = st.sh;
	unsigned int p;

	ck_assert_msg(sh->magic == UIB_STATE_MAGIC, "magic should be set");
	ck_assert_msg(sh->version == UIB_STATE_VERSION, "version should be set");
	ck_assert_msg(sh->size == sizeof(*sh), "size should be sizeof(shared)");
	ck_assert_msg(atomic_load(&sh->ready) == 0,
		      "a new state should not be ready until uibctl says so");
	ck_assert_str_eq(sh->name, "uibt0");
	ck_assert_msg(sh->uverbs_index == -1,
		      "uverbs_index should be -1 until the node exists");
	ck_assert_uint_eq(sh->num_ports, 2);
	ck_assert_uint_eq(sh->num_vfs, 3);
	ck_assert_msg(sh->node_guid == test_cfg.node_guid &&
		      sh->sys_image_guid == test_cfg.node_guid,
		      "node and system image GUID should be the configured GUID");
	for (p = 0; p < 2; p++) {
		ck_assert_msg(atomic_load(&sh->port[p].state) == IBV_PORT_ACTIVE,
			      "port %u should start ACTIVE", p + 1);
		ck_assert_msg(sh->port[p].lid == test_cfg.base_lid + p,
			      "port %u should have LID base+%u", p + 1, p);
		ck_assert_msg(sh->port[p].guid == test_cfg.node_guid + 1 + p,
			      "port %u GUID should be node GUID + %u", p + 1,
			      p + 1);
		ck_assert_msg(sh->port[p].pkey[0] == 0xffff,
			      "P_Key[0] should be the default 0xffff");
	}
}
END_TEST

START_TEST(test_create_existing_fails)
{
	struct uib_state st2 = { .fd = -1 };
	int ret;

	ret = uib_state_create(path, &test_cfg, &st2);
	ck_assert_msg(ret == -EEXIST,
		      "creating over an existing state should give -EEXIST, got %d",
		      ret);
	ck_assert_msg(st.sh->magic == UIB_STATE_MAGIC,
		      "the failed create should leave the first state intact");
}
END_TEST

START_TEST(test_open_shares_mapping)
{
	struct uib_state st2 = { .fd = -1 };
	int ret;

	ret = uib_state_open(path, &st2);
	ck_assert_msg(ret == 0, "opening a valid state should succeed, got %d",
		      ret);
	ck_assert_str_eq(st2.sh->name, "uibt0");
	atomic_store(&st.sh->ready, 1);
	ck_assert_msg(atomic_load(&st2.sh->ready) == 1,
		      "two mappings of one state should share memory");
	uib_state_close(&st2);
	ck_assert_msg(st2.sh == NULL && st2.fd == -1,
		      "close should reset the handle");
}
END_TEST

START_TEST(test_open_missing)
{
	struct uib_state st2 = { .fd = -1 };
	char p2[4200];
	int ret;

	snprintf(p2, sizeof(p2), "%s/none.state", dir);
	ret = uib_state_open(p2, &st2);
	ck_assert_msg(ret == -ENOENT,
		      "opening a missing state should give -ENOENT, got %d", ret);
}
END_TEST

START_TEST(test_open_truncated)
{
	struct uib_state st2 = { .fd = -1 };
	int ret;

	ck_assert_int_eq(truncate(path, 4096), 0);
	ret = uib_state_open(path, &st2);
	ck_assert_msg(ret == -EBADF,
		      "a state file cut short should be refused with -EBADF, got %d",
		      ret);
	ck_assert_int_eq(truncate(path, 0), 0);
	ret = uib_state_open(path, &st2);
	ck_assert_msg(ret == -EBADF,
		      "an empty state file should be refused with -EBADF, got %d",
		      ret);
}
END_TEST

static void expect_open_proto(const char *what)
{
	struct uib_state st2 = { .fd = -1 };
	int ret;

	ret = uib_state_open(path, &st2);
	ck_assert_msg(ret == -EPROTO,
		      "a state with a wrong %s should be refused with -EPROTO, got %d",
		      what, ret);
	ck_assert_msg(st2.sh == NULL && st2.fd == -1,
		      "a refused open should leave nothing mapped or open");
}

START_TEST(test_open_bad_magic)
{
	st.sh->magic = 0x12345678;
	expect_open_proto("magic");
}
END_TEST

START_TEST(test_open_bad_version)
{
	st.sh->version = UIB_STATE_VERSION + 1;
	expect_open_proto("version");
}
END_TEST

START_TEST(test_open_bad_size)
{
	st.sh->size = sizeof(struct uib_dev_shared) - 8;
	expect_open_proto("size field");
}
END_TEST

START_TEST(test_open_bigger_file_bad_size)
{
	/* A later, bigger layout must be refused, not read as ours. */
	ck_assert_int_eq(truncate(path, sizeof(struct uib_dev_shared) * 2), 0);
	st.sh->size = sizeof(struct uib_dev_shared) * 2;
	expect_open_proto("size (a bigger layout)");
}
END_TEST

/* ---- the robust lock ---- */

static int lock_and_die(void *arg)
{
	struct uib_state s2 = { .fd = -1 };

	if (uib_state_open(path, &s2))
		return 10;
	if (uib_state_lock(&s2))
		return 11;
	/* Dies holding the lock, as a killed process would. */
	_exit(0);
}

START_TEST(test_lock_recovers_from_dead_owner)
{
	int ret;

	ck_assert_msg(run_child(lock_and_die, NULL) == 0,
		      "the child should take the lock before dying");
	ret = uib_state_lock(&st);
	ck_assert_msg(ret == 0,
		      "locking after the owner died should succeed, got %d",
		      ret);
	uib_state_unlock(&st);
	ret = uib_state_lock(&st);
	ck_assert_msg(ret == 0,
		      "the recovered lock should work normally again, got %d",
		      ret);
	uib_state_unlock(&st);
	/* And allocators that take it keep working. */
	ck_assert_msg(uib_ctx_attach(&st, -1) >= 0,
		      "attach should work after the lock was recovered");
}
END_TEST

START_TEST(test_lock_recovers_twice)
{
	ck_assert_int_eq(run_child(lock_and_die, NULL), 0);
	ck_assert_int_eq(run_child(lock_and_die, NULL), 0);
	ck_assert_msg(uib_state_lock(&st) == 0,
		      "the lock should survive two owners dying in a row");
	uib_state_unlock(&st);
}
END_TEST

/* ---- process identity ---- */

START_TEST(test_proc_alive)
{
	struct uib_proc_id self, other;
	pid_t pid;
	int status;

	ck_assert_int_eq(uib_proc_self(&self), 0);
	ck_assert_msg(self.pid == getpid() && self.start_time != 0,
		      "uib_proc_self should record our PID and start time");
	ck_assert_msg(uib_proc_alive(&self), "we should be alive");

	other = self;
	other.start_time++;
	ck_assert_msg(!uib_proc_alive(&other),
		      "the same PID with another start time is another process");

	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, &status, 0);
	other.pid = pid;
	ck_assert_msg(!uib_proc_alive(&other), "a reaped child should be dead");
	other.pid = 0;
	ck_assert_msg(!uib_proc_alive(&other), "PID 0 is never alive");
}
END_TEST

/* ---- contexts ---- */

START_TEST(test_ctx_attach_detach)
{
	int a, b, c;

	a = uib_ctx_attach(&st, -1);
	b = uib_ctx_attach(&st, -1);
	ck_assert_msg(a >= 0 && b >= 0 && a != b,
		      "two attaches should get two distinct slots (%d, %d)", a,
		      b);
	ck_assert_msg(atomic_load(&st.sh->ctx[a].state) == UIB_SLOT_LIVE,
		      "an attached slot should be LIVE");
	ck_assert_msg(st.sh->ctx[a].proc.pid == getpid(),
		      "an attached slot should record its process");
	uib_ctx_detach(&st, a);
	ck_assert_msg(atomic_load(&st.sh->ctx[a].state) == UIB_SLOT_FREE,
		      "a detached slot should be FREE");
	c = uib_ctx_attach(&st, -1);
	ck_assert_msg(c == a, "a freed context slot should be reused (%d, %d)",
		      c, a);
	/* Out of range detaches are ignored, not crashes. */
	uib_ctx_detach(&st, -1);
	uib_ctx_detach(&st, UIB_MAX_CTX);
}
END_TEST

START_TEST(test_ctx_detach_frees_resources)
{
	struct uib_mr_slot mt = { .length = 4096 };
	struct uib_qp_slot qt = { .qp_type = IBV_QPT_RC };
	struct uib_state_usage u;
	uint32_t key, qpn;
	int a, b;

	a = uib_ctx_attach(&st, -1);
	b = uib_ctx_attach(&st, -1);
	mt.ctx = a;
	qt.ctx = a;
	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key), 0);
	ck_assert_int_eq(uib_qpn_alloc(&st, &qt, &qpn), 0);
	mt.ctx = b;
	qt.ctx = b;
	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key), 0);
	ck_assert_int_eq(uib_qpn_alloc(&st, &qt, &qpn), 0);
	uib_ctx_detach(&st, a);
	uib_state_usage(&st, &u);
	ck_assert_msg(u.contexts == 1 && u.mrs == 1 && u.qps == 1,
		      "detach should free the context's MRs and QPs only "
		      "(contexts %u mrs %u qps %u)", u.contexts, u.mrs, u.qps);
	ck_assert_msg(uib_mr_lookup(&st, key) != NULL,
		      "the other context's MR should stay");
}
END_TEST

START_TEST(test_ctx_exhaustion)
{
	int i, ret;

	for (i = 0; i < UIB_MAX_CTX; i++)
		ck_assert_msg(uib_ctx_attach(&st, -1) == i,
			      "attach %d should get slot %d", i, i);
	ret = uib_ctx_attach(&st, -1);
	ck_assert_msg(ret == -ENOMEM,
		      "attach with every slot taken should give -ENOMEM (device out of contexts), got %d",
		      ret);
	uib_ctx_detach(&st, 17);
	ck_assert_msg(uib_ctx_attach(&st, -1) == 17,
		      "a slot freed after exhaustion should be handed out");
}
END_TEST

/* ---- reclaim of dead processes ---- */

struct child_res {
	int pipe_wr;
	int nmr, nqp;
};

static int attach_alloc_and_die(void *arg)
{
	struct child_res *r = arg;
	struct uib_state s2 = { .fd = -1 };
	struct uib_mr_slot mt = { .length = 4096, .pd = 1 };
	struct uib_qp_slot qt = { .pd = 1, .qp_type = IBV_QPT_RC };
	uint32_t v;
	int ctx, i;

	if (uib_state_open(path, &s2))
		return 10;
	ctx = uib_ctx_attach(&s2, -1);
	if (ctx < 0)
		return 11;
	mt.ctx = ctx;
	qt.ctx = ctx;
	for (i = 0; i < r->nmr; i++) {
		if (uib_mr_alloc(&s2, &mt, &v))
			return 12;
		if (write(r->pipe_wr, &v, sizeof(v)) != sizeof(v))
			return 13;
	}
	for (i = 0; i < r->nqp; i++) {
		if (uib_qpn_alloc(&s2, &qt, &v))
			return 14;
		if (write(r->pipe_wr, &v, sizeof(v)) != sizeof(v))
			return 15;
	}
	/* Exits without detaching: the slots are left behind. */
	return 0;
}

START_TEST(test_reclaim_dead_context)
{
	struct child_res r = { .nmr = 3, .nqp = 2 };
	struct uib_mr_slot mt = { .length = 4096 };
	struct uib_state_usage u;
	uint32_t keys[3], qpns[2], mine;
	int pfd[2], i, me, n;

	/* A live context of our own, which reclaim must not touch. */
	me = uib_ctx_attach(&st, -1);
	ck_assert(me >= 0);
	mt.ctx = me;
	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &mine), 0);

	ck_assert_int_eq(pipe(pfd), 0);
	r.pipe_wr = pfd[1];
	ck_assert_msg(run_child(attach_alloc_and_die, &r) == 0,
		      "the child should attach and allocate before dying");
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], keys, sizeof(keys)), sizeof(keys));
	ck_assert_int_eq(read(pfd[0], qpns, sizeof(qpns)), sizeof(qpns));
	close(pfd[0]);

	uib_state_usage(&st, &u);
	ck_assert_msg(u.contexts == 2 && u.dead_contexts == 1 && u.mrs == 4 &&
		      u.qps == 2,
		      "before reclaim the dead child's slots should still be "
		      "counted (contexts %u dead %u mrs %u qps %u)",
		      u.contexts, u.dead_contexts, u.mrs, u.qps);

	n = uib_state_reclaim(&st);
	ck_assert_msg(n == 1, "reclaim should free exactly one dead context, got %d",
		      n);
	for (i = 0; i < 3; i++)
		ck_assert_msg(uib_mr_lookup(&st, keys[i]) == NULL,
			      "the dead child's MR key 0x%x should be stale",
			      keys[i]);
	for (i = 0; i < 2; i++)
		ck_assert_msg(atomic_load(&st.sh->qp[qpns[i] - UIB_QPN_BASE].state) ==
				      UIB_SLOT_FREE,
			      "the dead child's QPN 0x%x should be free", qpns[i]);
	ck_assert_msg(uib_mr_lookup(&st, mine) != NULL,
		      "our own live MR should survive reclaim");
	uib_state_usage(&st, &u);
	ck_assert_msg(u.contexts == 1 && u.dead_contexts == 0 && u.mrs == 1 &&
		      u.qps == 0,
		      "after reclaim only our own context and MR should remain "
		      "(contexts %u dead %u mrs %u qps %u)",
		      u.contexts, u.dead_contexts, u.mrs, u.qps);
	ck_assert_msg(uib_state_reclaim(&st) == 0,
		      "a second reclaim should find nothing");
}
END_TEST

/* ---- PDs ---- */

START_TEST(test_pd_unique_nonzero)
{
	enum { N = 1000 };
	static uint32_t pd[N];
	int i, j;

	for (i = 0; i < N; i++) {
		pd[i] = uib_pd_alloc(&st);
		ck_assert_msg(pd[i] != 0, "a PD number should never be 0");
		for (j = 0; j < i; j++)
			ck_assert_msg(pd[i] != pd[j],
				      "PD numbers should be unique (%u twice)",
				      pd[i]);
	}
}
END_TEST

START_TEST(test_pd_wrap_skips_zero)
{
	uint32_t a, b;

	atomic_store(&st.sh->next_pd, UINT32_MAX);
	a = uib_pd_alloc(&st);
	b = uib_pd_alloc(&st);
	ck_assert_msg(a == UINT32_MAX && b == 1,
		      "the PD counter should wrap past 0 (got %u then %u)", a, b);
}
END_TEST

/* ---- MR keys ---- */

START_TEST(test_mr_keys_unique)
{
	enum { N = 2000 };
	static uint32_t key[N];
	struct uib_mr_slot mt = { .length = 1 };
	int i, j;

	for (i = 0; i < N; i++) {
		ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key[i]), 0);
		ck_assert_msg(key[i] != 0, "key 0 should never be handed out");
		ck_assert_msg((key[i] & 0xff) != 0,
			      "a key's generation byte should never be 0");
		for (j = 0; j < i; j++)
			ck_assert_msg(key[i] != key[j],
				      "MR keys should be unique (0x%x twice)",
				      key[i]);
	}
}
END_TEST

START_TEST(test_mr_slot_contents)
{
	struct uib_mr_slot mt = {
		.ctx = 3, .pd = 7, .access = IBV_ACCESS_LOCAL_WRITE,
		.addr = 0x1000, .length = 0x2000, .iova = 0x5000,
	};
	const struct uib_mr_slot *m;
	uint32_t key;

	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key), 0);
	m = uib_mr_lookup(&st, key);
	ck_assert_msg(m != NULL, "a live key should be found");
	ck_assert_msg(m->ctx == 3 && m->pd == 7 &&
		      m->access == IBV_ACCESS_LOCAL_WRITE && m->addr == 0x1000 &&
		      m->length == 0x2000 && m->iova == 0x5000,
		      "the slot should hold what was registered");
}
END_TEST

START_TEST(test_mr_stale_after_free)
{
	struct uib_mr_slot mt = { .length = 1 };
	uint32_t key, key2;
	int ret;

	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key), 0);
	ck_assert_int_eq(uib_mr_free(&st, key), 0);
	ck_assert_msg(uib_mr_lookup(&st, key) == NULL,
		      "a freed key should not be found");
	ret = uib_mr_free(&st, key);
	ck_assert_msg(ret == -EINVAL,
		      "freeing a key twice should give -EINVAL, got %d", ret);

	/* Reuse the same slot: the old key must stay stale. */
	atomic_store(&st.sh->mr_hint, key >> 8);
	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key2), 0);
	ck_assert_msg(key2 >> 8 == key >> 8,
		      "the test should have reused the slot");
	ck_assert_msg(key2 != key,
		      "a reused slot should get a new generation (0x%x, 0x%x)",
		      key, key2);
	ck_assert_msg(uib_mr_lookup(&st, key) == NULL,
		      "the old key of a reused slot should be stale");
	ck_assert_msg(uib_mr_lookup(&st, key2) != NULL,
		      "the new key should be found");
	ret = uib_mr_free(&st, key);
	ck_assert_msg(ret == -EINVAL,
		      "freeing through a stale key should give -EINVAL, got %d",
		      ret);
	ck_assert_msg(uib_mr_lookup(&st, key2) != NULL,
		      "a stale free should not free the new owner's MR");
}
END_TEST

START_TEST(test_mr_generation_skips_zero)
{
	struct uib_mr_slot mt = { .length = 1 };
	uint32_t key;

	/* A free slot whose last generation was 0xff. */
	st.sh->mr[5].key_gen = 0xff;
	atomic_store(&st.sh->mr_hint, 5);
	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key), 0);
	ck_assert_msg(key == (5u << 8 | 1),
		      "generation 0xff should wrap to 1, not 0 (key 0x%x)", key);
}
END_TEST

START_TEST(test_mr_lookup_rejects_bad_keys)
{
	struct uib_mr_slot mt = { .length = 1 };
	uint32_t key;

	ck_assert_msg(uib_mr_lookup(&st, 0) == NULL, "key 0 should not exist");
	ck_assert_msg(uib_mr_lookup(&st, (uint32_t)UIB_MAX_MR << 8 | 1) == NULL,
		      "a key past the table should be rejected");
	ck_assert_msg(uib_mr_lookup(&st, 0xffffffff) == NULL,
		      "key 0xffffffff should be rejected");
	ck_assert_int_eq(uib_mr_alloc(&st, &mt, &key), 0);
	ck_assert_msg(uib_mr_lookup(&st, key ^ 0x80) == NULL,
		      "a key with the wrong generation should be rejected");
	ck_assert_msg(uib_mr_lookup(&st, key + 0x100) == NULL,
		      "a key naming a free slot should be rejected");
	ck_assert_msg(uib_mr_free(&st, (uint32_t)UIB_MAX_MR << 8) == -EINVAL,
		      "freeing a key past the table should give -EINVAL");
}
END_TEST

START_TEST(test_mr_exhaustion)
{
	struct uib_mr_slot mt = { .length = 1 };
	uint32_t key, keep = 0;
	int i, ret;

	for (i = 0; i < UIB_MAX_MR; i++) {
		ret = uib_mr_alloc(&st, &mt, &key);
		ck_assert_msg(ret == 0, "MR %d of %d should be allocated", i,
			      UIB_MAX_MR);
		if (i == 1234)
			keep = key;
	}
	ret = uib_mr_alloc(&st, &mt, &key);
	ck_assert_msg(ret == -ENOMEM,
		      "allocating with every MR slot taken should give -ENOMEM, got %d",
		      ret);
	ck_assert_int_eq(uib_mr_free(&st, keep), 0);
	ck_assert_msg(uib_mr_alloc(&st, &mt, &key) == 0 && key >> 8 == keep >> 8,
		      "the one freed slot should be found again");
}
END_TEST

/* ---- QPNs ---- */

START_TEST(test_qpn_unique_and_based)
{
	enum { N = 1000 };
	static uint32_t qpn[N];
	struct uib_qp_slot qt = { .qp_type = IBV_QPT_UD };
	int i, j;

	for (i = 0; i < N; i++) {
		ck_assert_int_eq(uib_qpn_alloc(&st, &qt, &qpn[i]), 0);
		ck_assert_msg(qpn[i] >= UIB_QPN_BASE,
			      "QPN 0x%x should be >= 0x%x (0 and 1 are SMI/GSI)",
			      qpn[i], UIB_QPN_BASE);
		ck_assert_msg(qpn[i] < UIB_QPN_BASE + UIB_MAX_QP,
			      "QPN 0x%x should be inside the table", qpn[i]);
		ck_assert_msg(qpn[i] <= 0xffffff, "a QPN has 24 bits");
		for (j = 0; j < i; j++)
			ck_assert_msg(qpn[i] != qpn[j],
				      "QPNs should be unique (0x%x twice)",
				      qpn[i]);
	}
}
END_TEST

START_TEST(test_qpn_not_reused_at_once)
{
	struct uib_qp_slot qt = { .qp_type = IBV_QPT_RC };
	uint32_t a, b;
	int ret;

	ck_assert_int_eq(uib_qpn_alloc(&st, &qt, &a), 0);
	ck_assert_int_eq(uib_qpn_free(&st, a), 0);
	ck_assert_int_eq(uib_qpn_alloc(&st, &qt, &b), 0);
	ck_assert_msg(a != b,
		      "a freed QPN should not be handed out again at once (0x%x)",
		      a);
	ret = uib_qpn_free(&st, a);
	ck_assert_msg(ret == -EINVAL,
		      "freeing a free QPN should give -EINVAL, got %d", ret);
}
END_TEST

START_TEST(test_qpn_free_bad)
{
	ck_assert_msg(uib_qpn_free(&st, 0) == -EINVAL,
		      "freeing QPN 0 (SMI) should give -EINVAL");
	ck_assert_msg(uib_qpn_free(&st, 1) == -EINVAL,
		      "freeing QPN 1 (GSI) should give -EINVAL");
	ck_assert_msg(uib_qpn_free(&st, UIB_QPN_BASE + UIB_MAX_QP) == -EINVAL,
		      "freeing a QPN past the table should give -EINVAL");
	ck_assert_msg(uib_qpn_free(&st, UIB_QPN_BASE) == -EINVAL,
		      "freeing a QPN never allocated should give -EINVAL");
}
END_TEST

START_TEST(test_qpn_exhaustion)
{
	struct uib_qp_slot qt = { .qp_type = IBV_QPT_RC };
	uint32_t qpn, keep = 0;
	int i, ret;

	for (i = 0; i < UIB_MAX_QP; i++) {
		ret = uib_qpn_alloc(&st, &qt, &qpn);
		ck_assert_msg(ret == 0, "QP %d of %d should be allocated", i,
			      UIB_MAX_QP);
		if (i == 77)
			keep = qpn;
	}
	ret = uib_qpn_alloc(&st, &qt, &qpn);
	ck_assert_msg(ret == -ENOMEM,
		      "allocating with every QPN taken should give -ENOMEM, got %d",
		      ret);
	ck_assert_int_eq(uib_qpn_free(&st, keep), 0);
	ck_assert_msg(uib_qpn_alloc(&st, &qt, &qpn) == 0 && qpn == keep,
		      "the one freed QPN should be found again");
}
END_TEST

Suite *make_state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc;

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_fields);
	tcase_add_test(tc, test_create_existing_fails);
	tcase_add_test(tc, test_open_shares_mapping);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_open_truncated);
	tcase_add_test(tc, test_open_bad_magic);
	tcase_add_test(tc, test_open_bad_version);
	tcase_add_test(tc, test_open_bad_size);
	tcase_add_test(tc, test_open_bigger_file_bad_size);
	suite_add_tcase(s, tc);

	tc = tcase_create("lock");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lock_recovers_from_dead_owner);
	tcase_add_test(tc, test_lock_recovers_twice);
	tcase_add_test(tc, test_proc_alive);
	suite_add_tcase(s, tc);

	tc = tcase_create("contexts");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ctx_attach_detach);
	tcase_add_test(tc, test_ctx_detach_frees_resources);
	tcase_add_test(tc, test_ctx_exhaustion);
	tcase_add_test(tc, test_reclaim_dead_context);
	suite_add_tcase(s, tc);

	tc = tcase_create("pd");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pd_unique_nonzero);
	tcase_add_test(tc, test_pd_wrap_skips_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("mr");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_mr_keys_unique);
	tcase_add_test(tc, test_mr_slot_contents);
	tcase_add_test(tc, test_mr_stale_after_free);
	tcase_add_test(tc, test_mr_generation_skips_zero);
	tcase_add_test(tc, test_mr_lookup_rejects_bad_keys);
	tcase_add_test(tc, test_mr_exhaustion);
	suite_add_tcase(s, tc);

	tc = tcase_create("qpn");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_qpn_unique_and_based);
	tcase_add_test(tc, test_qpn_not_reused_at_once);
	tcase_add_test(tc, test_qpn_free_bad);
	tcase_add_test(tc, test_qpn_exhaustion);
	suite_add_tcase(s, tc);
	return s;
}
