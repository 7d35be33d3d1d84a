// SPDX-License-Identifier: MIT
/*
 * The daemon's main loop (STYLE 13): epoll over named fd handlers, timers
 * as timerfd handlers, and a work queue that any thread can feed, kicked
 * through an eventfd.  Every handler runs on the main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ipoib.h"

static void run_work(struct ipoibd_loop *loop)
{
	struct ipoibd_work_item *w;

	for (;;) {
		pthread_mutex_lock(&loop->lock);
		w = STAILQ_FIRST(&loop->work);
		if (w)
			STAILQ_REMOVE_HEAD(&loop->work, link);
		pthread_mutex_unlock(&loop->lock);
		if (!w)
			return;
		w->fn(w->arg);
		free(w);
	}
}

static void kick_cb(struct ipoibd_fd_handler *h, uint32_t events)
{
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		ipoibd_warn("%s: read: %s", h->name, strerror(errno));
	run_work(h->arg);
}

int ipoibd_loop_init(struct ipoibd_loop *loop)
{
	int ret;

	memset(loop, 0, sizeof(*loop));
	STAILQ_INIT(&loop->work);
	ret = -pthread_mutex_init(&loop->lock, NULL);
	if (ret)
		return ret;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		ret = -errno;
		goto err_lock;
	}
	loop->kick.name = "work-kick";
	loop->kick.cb = kick_cb;
	loop->kick.arg = loop;
	loop->kick.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->kick.fd < 0) {
		ret = -errno;
		goto err_epoll;
	}
	ret = ipoibd_loop_add(loop, &loop->kick);
	if (ret)
		goto err_kick;
	return 0;

err_kick:
	close(loop->kick.fd);
err_epoll:
	close(loop->epfd);
err_lock:
	pthread_mutex_destroy(&loop->lock);
	return ret;
}

void ipoibd_loop_fini(struct ipoibd_loop *loop)
{
	run_work(loop);		/* nothing queued is lost silently */
	ipoibd_loop_del(loop, &loop->kick);
	close(loop->kick.fd);
	close(loop->epfd);
	pthread_mutex_destroy(&loop->lock);
}

int ipoibd_loop_add(struct ipoibd_loop *loop, struct ipoibd_fd_handler *h)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = h };

	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, h->fd, &ev) ? -errno : 0;
}

void ipoibd_loop_del(struct ipoibd_loop *loop, struct ipoibd_fd_handler *h)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	loop->del_gen++;
}

int ipoibd_loop_add_timer(struct ipoibd_loop *loop,
			  struct ipoibd_fd_handler *h, unsigned int period_ms)
{
	struct itimerspec its = {
		.it_interval = { period_ms / 1000, (period_ms % 1000) * 1000000L },
		.it_value = { period_ms / 1000, (period_ms % 1000) * 1000000L },
	};
	int ret;

	h->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->fd < 0)
		return -errno;
	if (timerfd_settime(h->fd, 0, &its, NULL)) {
		ret = -errno;
		goto err_close;
	}
	ret = ipoibd_loop_add(loop, h);
	if (ret)
		goto err_close;
	return 0;

err_close:
	close(h->fd);
	h->fd = -1;
	return ret;
}

void ipoibd_loop_del_timer(struct ipoibd_loop *loop,
			   struct ipoibd_fd_handler *h)
{
	if (h->fd < 0)
		return;
	ipoibd_loop_del(loop, h);
	close(h->fd);
	h->fd = -1;
}

int ipoibd_loop_queue_work(struct ipoibd_loop *loop, void (*fn)(void *),
			   void *arg)
{
	struct ipoibd_work_item *w = calloc(1, sizeof(*w));
	uint64_t one = 1;

	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&loop->lock);
	STAILQ_INSERT_TAIL(&loop->work, w, link);
	pthread_mutex_unlock(&loop->lock);
	/* Cannot fail short of overflowing a 64-bit counter. */
	if (write(loop->kick.fd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

void ipoibd_loop_stop(struct ipoibd_loop *loop)
{
	loop->stop = true;
}

int ipoibd_loop_run(struct ipoibd_loop *loop)
{
	struct epoll_event evs[16];
	struct ipoibd_fd_handler *h;
	unsigned int gen;
	int n, i;

	while (!loop->stop) {
		n = epoll_wait(loop->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/*
		 * A handler may remove others (a device going away takes its
		 * async fd): the rest of this batch may then point to freed
		 * handlers, so it is dropped; epoll is level-triggered and
		 * reports the live ones again.
		 */
		gen = loop->del_gen;
		for (i = 0; i < n && !loop->stop && gen == loop->del_gen; i++) {
			h = evs[i].data.ptr;
			h->cb(h, evs[i].events);
		}
	}
	return 0;
}
