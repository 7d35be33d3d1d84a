// SPDX-License-Identifier: MIT
/*
 * ipoibd: lifecycle.  Options and configuration, the init/fini order of
 * the subsystems (one ladder serves both the error path and shutdown),
 * readiness (sd_notify protocol, written here: one datagram to
 * $NOTIFY_SOCKET), SIGTERM/SIGINT through a signalfd.
 *
 *   ipoibd [--foreground] [--debug] [--config FILE]
 *          [--device NAME [--port N] [--ifname NAME]]
 *   ipoibd status [--json]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipoib.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ipoibd [--foreground] [--debug] [--config FILE]\n"
		"              [--device NAME [--port N] [--ifname NAME]]\n"
		"       ipoibd status [--json]\n");
}

/* sd_notify(3)'s protocol; silently nothing outside systemd. */
static void notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&sun, len) < 0)
		ipoibd_warn("sd_notify: %s", strerror(errno));
	close(fd);
}

static void signal_cb(struct ipoibd_fd_handler *h, uint32_t events)
{
	struct ipoibd *d = h->arg;
	struct signalfd_siginfo si;

	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	ipoibd_info("%s: shutting down", strsignal(si.ssi_signo));
	ipoibd_loop_stop(&d->loop);
}

static int signals_init(struct ipoibd *d)
{
	sigset_t set;

	/* Blocked before any thread exists, so every thread inherits it. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->signal_h.name = "signals";
	d->signal_h.cb = signal_cb;
	d->signal_h.arg = d;
	d->signal_h.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signal_h.fd < 0)
		return -errno;
	return ipoibd_loop_add(&d->loop, &d->signal_h);
}

static void signals_fini(struct ipoibd *d)
{
	ipoibd_loop_del(&d->loop, &d->signal_h);
	close(d->signal_h.fd);
}

/*
 * Refuses what the configuration asks but the daemon cannot do yet,
 * before touching any device.
 */
static int config_check(struct ipoibd *d)
{
	const struct ipoibd_link_config *l;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < d->cfg.num_links; i++) {
		l = &d->cfg.links[i];
		if (l->mode == IPOIBD_MODE_DATAGRAM && l->queues == 1 &&
		    l->pkey == 0xffff)
			continue;
		ipoibd_err("%s:%u: link '%s': only datagram mode, 1 queue and P_Key 0xffff are implemented",
			   d->cfg.source, l->line, l->ifname);
		ret = -EOPNOTSUPP;
	}
	return ret;
}

static void ipoibd_fini(struct ipoibd *d)
{
	notify("STOPPING=1");
	ipoibd_devices_fini(d);
	ipoib_client_fini(d);
	ipoibd_ctl_fini(d);
	signals_fini(d);
	ipoibd_nl_fini(&d->nl);
	ipoibd_registry_fini(&d->reg);
	ipoibd_loop_fini(&d->loop);
}

static int ipoibd_init(struct ipoibd *d)
{
	int ret;

	ret = ipoibd_loop_init(&d->loop);
	if (ret)
		return ret;
	ret = ipoibd_registry_init(&d->reg);
	if (ret)
		goto err_loop;
	ret = ipoibd_nl_init(&d->nl);
	if (ret)
		goto err_registry;
	ret = signals_init(d);
	if (ret)
		goto err_nl;
	ret = ipoibd_ctl_init(d);
	if (ret)
		goto err_signals;
	/* The client first: the first device scan then builds the links. */
	ret = ipoib_client_init(d);
	if (ret)
		goto err_ctl;
	ret = ipoibd_devices_init(d);
	if (ret)
		goto err_client;
	/* At start, every configured link must come up. */
	ret = ipoib_check_links(d);
	if (ret)
		goto err_devices;
	return 0;

err_devices:
	ipoibd_devices_fini(d);
err_client:
	ipoib_client_fini(d);
err_ctl:
	ipoibd_ctl_fini(d);
err_signals:
	signals_fini(d);
err_nl:
	ipoibd_nl_fini(&d->nl);
err_registry:
	ipoibd_registry_fini(&d->reg);
err_loop:
	ipoibd_loop_fini(&d->loop);
	return ret;
}

/*
 * Without --foreground: the parent exits once the child is ready (0) or
 * has failed (its exit code), so that `ipoibd && ...` is meaningful.
 */
static int daemonize(int *ready_fd)
{
	int p[2], status = 1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid) {
		close(p[1]);
		if (read(p[0], &status, sizeof(status)) != sizeof(status))
			status = 1;
		_exit(status);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void report_ready(int *ready_fd, int status)
{
	if (*ready_fd < 0)
		return;
	if (write(*ready_fd, &status, sizeof(status)) < 0)
		ipoibd_warn("cannot report readiness: %s", strerror(errno));
	close(*ready_fd);
	*ready_fd = -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "device", required_argument, NULL, 'D' },
		{ "port", required_argument, NULL, 'p' },
		{ "ifname", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *config = NULL, *device = NULL, *ifname = "ib0";
	bool foreground = false, debug = false, json = false;
	struct ipoibd d = {};
	int ready_fd = -1, c, ret;
	unsigned long port = 1;
	char err[512], *end;

	while ((c = getopt_long(argc, argv, "fdc:D:p:i:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': foreground = true; break;
		case 'd': debug = true; break;
		case 'c': config = optarg; break;
		case 'D': device = optarg; break;
		case 'i': ifname = optarg; break;
		case 'j': json = true; break;
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end || !*optarg) {
				fprintf(stderr, "ipoibd: invalid port '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "status") &&
	    optind + 1 == argc)
		return ipoibd_status_cmd(json);
	if (optind < argc || json) {
		usage(stderr);
		return 2;
	}

	ipoibd_config_init(&d.cfg);
	if (config || !device) {
		ret = ipoibd_config_load(&d.cfg, config ? config :
					 IPOIBD_DEFAULT_CONFIG, err, sizeof(err));
		if (ret)
			goto err_config;
	}
	if (device) {
		ret = ipoibd_config_add_link(&d.cfg, ifname, device, port, err,
					     sizeof(err));
		if (ret)
			goto err_config;
	}
	ipoibd_log_set_level(debug ? LOG_DEBUG : d.cfg.log_level);
	ret = config_check(&d);
	if (ret)
		goto out_config;
	if (!foreground) {
		ret = daemonize(&ready_fd);
		if (ret)
			goto out_config;
	}

	ret = ipoibd_init(&d);
	if (ret) {
		ipoibd_err("cannot start: %s", strerror(-ret));
		report_ready(&ready_fd, 1);
		goto out_config;
	}
	ipoibd_info("ready: %u link(s) configured", d.cfg.num_links);
	notify("READY=1");
	report_ready(&ready_fd, 0);
	ret = ipoibd_loop_run(&d.loop);
	if (ret)
		ipoibd_err("main loop: %s", strerror(-ret));
	ipoibd_fini(&d);
	ipoibd_config_fini(&d.cfg);
	return ret ? 1 : 0;

err_config:
	ipoibd_err("%s", err);
out_config:
	ipoibd_config_fini(&d.cfg);
	return 1;
}
