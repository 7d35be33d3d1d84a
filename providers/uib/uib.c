// SPDX-License-Identifier: MIT
/*
 * Provider registration, device and context setup.
 *
 * libibverbs finds uib devices through the sysfs-shaped tree uibctl writes
 * (SYSFS_PATH); our match table keys on device/modalias "uib:<name>", and
 * match_device() also requires the device's shared state to be ready, so a
 * device half made or half deleted by uibctl is never opened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devtree.h"
#include "fdpass.h"
#include "uib.h"

int uib_debug;

static const struct verbs_match_ent uib_match_table[] = {
	{ .u.modalias = "uib:*", .kind = VERBS_MATCH_MODALIAS },
	{}
};

static void uib_free_context(struct ibv_context *ibctx);

static const struct verbs_context_ops uib_ctx_ops = {
	.alloc_pd = uib_alloc_pd,
	.attach_mcast = uib_attach_mcast,
	.create_ah = uib_create_ah,
	.create_cq = uib_create_cq,
	.create_cq_ex = uib_create_cq_ex,
	.create_qp = uib_create_qp,
	.create_qp_ex = uib_create_qp_ex,
	.create_srq = uib_create_srq,
	.dealloc_pd = uib_dealloc_pd,
	.dereg_mr = uib_dereg_mr,
	.destroy_ah = uib_destroy_ah,
	.destroy_cq = uib_destroy_cq,
	.destroy_qp = uib_destroy_qp,
	.destroy_srq = uib_destroy_srq,
	.detach_mcast = uib_detach_mcast,
	.free_context = uib_free_context,
	.modify_qp = uib_modify_qp,
	.modify_srq = uib_modify_srq,
	.poll_cq = uib_poll_cq,
	.post_recv = uib_post_recv,
	.post_send = uib_post_send,
	.post_srq_recv = uib_post_srq_recv,
	.query_device_ex = uib_query_device_ex,
	.query_port = uib_query_port,
	.query_qp = uib_query_qp,
	.query_srq = uib_query_srq,
	.reg_mr = uib_reg_mr,
	.req_notify_cq = uib_req_notify_cq,
};

static int read_sysfs_line(const char *dir, const char *file, char *buf,
			   size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return uib_read_line(path, buf, len);
}

/* The name of the group of a file, or its number. */
static const char *state_group(const char *path, char *buf, size_t len)
{
	struct group gr, *res = NULL;
	char tmp[1024];
	struct stat sb;

	if (stat(path, &sb)) {
		snprintf(buf, len, "?");
		return buf;
	}
	if (!getgrgid_r(sb.st_gid, &gr, tmp, sizeof(tmp), &res) && res)
		snprintf(buf, len, "%s", res->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned int)sb.st_gid);
	return buf;
}

static bool uib_match_device(struct verbs_sysfs_dev *sysfs_dev)
{
	char run_dir[PATH_MAX / 4], path[PATH_MAX / 2];
	struct uib_state st = { .fd = -1 };
	bool ready;
	int ret;

	if (!sysfs_dev->match)
		return false;
	if (read_sysfs_line(sysfs_dev->ibdev_path, "device/uib_run_dir",
			    run_dir, sizeof(run_dir)))
		return false;
	snprintf(path, sizeof(path), "%s/dev/%s.state", run_dir,
		 sysfs_dev->ibdev_name);
	ret = uib_state_open(path, &st);
	/* A device we may not open is still listed, so that opening it
	 * fails with EACCES and says why, rather than it seeming absent. */
	if (ret == -EACCES)
		return true;
	if (ret) {
		uib_dbg("%s: no valid device state at %s: %s",
			sysfs_dev->ibdev_name, path, strerror(-ret));
		return false;
	}
	ready = atomic_load_explicit(&st.sh->ready, memory_order_acquire) == 1;
	uib_state_close(&st);
	return ready;
}

static struct verbs_device *uib_alloc_device(struct verbs_sysfs_dev *sysfs_dev)
{
	struct uib_device *dev;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	if (read_sysfs_line(sysfs_dev->ibdev_path, "device/uib_run_dir",
			    dev->run_dir, sizeof(dev->run_dir))) {
		free(dev);
		return NULL;
	}
	snprintf(dev->state_path, sizeof(dev->state_path), "%s/dev/%s.state",
		 dev->run_dir, sysfs_dev->ibdev_name);
	return &dev->vdev;
}

static void uib_uninit_device(struct verbs_device *vdev)
{
	free(to_udev(&vdev->device));
}

static struct verbs_context *uib_alloc_context(struct ibv_device *ibdev,
					       int cmd_fd, void *private_data)
{
	struct uib_device *dev = to_udev(ibdev);
	struct uib_context *ctx;
	int pipefd[2], null_fd, ret;

	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, ctx, vctx, 0);
	if (!ctx)
		return NULL;
	ctx->st.fd = -1;
	ctx->ctx_slot = -1;
	ctx->async_wr = -1;
	pthread_mutex_init(&ctx->qp_lock, NULL);
	pthread_mutex_init(&ctx->progress_lock, NULL);
	pthread_cond_init(&ctx->wake, NULL);
	snprintf(ctx->run_dir, sizeof(ctx->run_dir), "%s", dev->run_dir);

	/*
	 * libibverbs opened /dev/infiniband/uverbsN (a link to /dev/null)
	 * read-write.  Swap it for a read-only /dev/null: then the one
	 * kernel command libibverbs writes without asking us,
	 * ibv_create_comp_channel(), fails with EBADF instead of "succeeding"
	 * and returning a garbage fd.
	 */
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0) {
		ret = errno;
		goto err_free;
	}
	if (dup3(null_fd, ctx->vctx.context.cmd_fd, O_CLOEXEC) < 0) {
		ret = errno;
		close(null_fd);
		goto err_free;
	}
	close(null_fd);

	/* Our own async event fd, so libibverbs does not ask the kernel for
	 * one; ibv_get_async_event() reads event records from it. */
	if (pipe2(pipefd, O_CLOEXEC)) {
		ret = errno;
		goto err_free;
	}
	ctx->vctx.context.async_fd = pipefd[0];
	ctx->async_wr = pipefd[1];

	ret = -uib_state_open(dev->state_path, &ctx->st);
	if (ret == EACCES) {
		char group[64];

		uib_err("%s: cannot open device state %s: permission denied (not owner or member of group %s)",
			ibdev->name, dev->state_path,
			state_group(dev->state_path, group, sizeof(group)));
		goto err_free;
	}
	if (ret) {
		uib_err("%s: cannot map device state %s: %s", ibdev->name,
			dev->state_path,
			ret == EPROTO ? "not a valid uib state file" :
					strerror(ret));
		goto err_free;
	}
	if (atomic_load_explicit(&ctx->st.sh->ready, memory_order_acquire) !=
	    1) {
		uib_err("%s: device is being removed", ibdev->name);
		ret = ENODEV;
		goto err_state;
	}
	/* Whatever dead processes left on the device is freed before we
	 * take our share of it. */
	uib_state_reclaim(&ctx->st);
	ctx->ctx_slot = uib_ctx_attach(&ctx->st, ctx->vctx.context.async_fd);
	if (ctx->ctx_slot < 0) {
		ret = -ctx->ctx_slot;
		uib_err("%s: cannot attach a context: %s", ibdev->name,
			strerror(ret));
		goto err_state;
	}

	/* Peers of other users reach our queues, MR segments and async
	 * pipe through the broker (fdpass.h); without one, only peers of our
	 * own user (or root) can, which is not a reason to fail. */
	uib_fdpass_export_pipe(ctx->async_wr);
	uib_broker_start(ctx, ctx->run_dir, ibdev->name, ctx->ctx_slot,
			 ctx->st.fd);

	ctx->vctx.context.num_comp_vectors = 1;
	verbs_set_ops(&ctx->vctx, &uib_ctx_ops);
	return &ctx->vctx;

err_state:
	uib_state_close(&ctx->st);
err_free:
	if (ctx->async_wr >= 0)
		close(ctx->async_wr);
	verbs_uninit_context(&ctx->vctx);
	free(ctx);
	errno = ret;
	return NULL;
}

static void uib_free_context(struct ibv_context *ibctx)
{
	struct uib_context *ctx = to_uctx(ibctx);

	uib_progress_stop(ctx);
	uib_broker_stop(ctx);
	uib_fdpass_unexport_pipe(ctx->async_wr);
	uib_ctx_detach(&ctx->st, ctx->ctx_slot);
	uib_state_close(&ctx->st);
	close(ctx->async_wr);
	verbs_uninit_context(&ctx->vctx);
	free(ctx);
}

static const struct verbs_device_ops uib_dev_ops = {
	.name = "uib",
	.match_min_abi_version = 1,
	.match_max_abi_version = 6,
	.match_table = uib_match_table,
	.match_device = uib_match_device,
	.alloc_device = uib_alloc_device,
	.uninit_device = uib_uninit_device,
	.alloc_context = uib_alloc_context,
};

/*
 * The running libibverbs must lay out the private structures as
 * uib_pabi.h does.  The versioned symbol verbs_register_driver_34 already
 * pins the private ABI number; the release, which the library's real file
 * name carries (libibverbs.so.1.<abi>.<release>), pins the layout.
 */
static bool uib_abi_check(void)
{
	char real[PATH_MAX];
	unsigned int abi, major, minor;
	const char *base;
	Dl_info info;

	if (!dladdr((void *)ibv_get_device_list, &info) || !info.dli_fname ||
	    !realpath(info.dli_fname, real)) {
		uib_dbg("cannot locate libibverbs; trusting its ABI symbol");
		return true;
	}
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	if (sscanf(base, "libibverbs.so.1.%u.%u.%u", &abi, &major, &minor) !=
	    3) {
		uib_dbg("cannot read the release of %s; trusting its ABI symbol",
			real);
		return true;
	}
	if (major < UIB_PABI_MIN_RELEASE || major > UIB_PABI_MAX_RELEASE) {
		uib_err("%s is rdma-core %u.%u; this provider supports the private ABI of rdma-core %d to %d only, not registering",
			real, major, minor, UIB_PABI_MIN_RELEASE,
			UIB_PABI_MAX_RELEASE);
		return false;
	}
	return true;
}

static __attribute__((constructor)) void uib_register_driver(void)
{
	const char *dbg = getenv("UIB_DEBUG");

	uib_debug = dbg && *dbg && strcmp(dbg, "0");
	if (!uib_abi_check())
		return;
	verbs_register_driver_34(&uib_dev_ops);
}
