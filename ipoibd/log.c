// SPDX-License-Identifier: MIT
/*
 * The daemon's log family: see log.h.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static _Atomic int log_level = LOG_INFO;
static _Atomic(ipoibd_log_hook_t) log_hook;

void ipoibd_log_set_level(int prio)
{
	atomic_store(&log_level, prio);
}

int ipoibd_log_get_level(void)
{
	return atomic_load(&log_level);
}

void ipoibd_log_set_hook(ipoibd_log_hook_t hook)
{
	atomic_store(&log_hook, hook);
}

static const char *prio_name(int prio)
{
	switch (prio) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void ipoibd_log(int prio, const char *fmt, ...)
{
	ipoibd_log_hook_t hook;
	char msg[1024], line[1100];
	va_list ap;
	int n;

	if (prio > atomic_load(&log_level))
		return;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	hook = atomic_load(&log_hook);
	if (hook)
		hook(prio, msg);

	/* JOURNAL_STREAM is set by systemd when stderr is the journal. */
	if (getenv("JOURNAL_STREAM"))
		n = snprintf(line, sizeof(line), "<%d>%s\n", prio, msg);
	else
		n = snprintf(line, sizeof(line), "ipoibd: %s: %s\n",
			     prio_name(prio), msg);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	/* One write per line, so that threads' lines never interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

bool ipoibd_ratelimit_ok(struct ipoibd_ratelimit *rl, unsigned int burst)
{
	time_t now = time(NULL);

	/* Races between threads only cost an extra or a missed line. */
	if (now - rl->begin >= 5) {
		if (rl->missed)
			ipoibd_warn("%u messages suppressed", rl->missed);
		rl->begin = now;
		rl->printed = 0;
		rl->missed = 0;
	}
	if (rl->printed < burst) {
		rl->printed++;
		return true;
	}
	rl->missed++;
	return false;
}
