/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one log family (STYLE 14).  ipoibd_err/warn/info/dbg log
 * daemon-wide messages; ipoib_err/warn/info/dbg(priv, ...) prefix them with
 * a link's name.  Messages go to stderr; under systemd stderr is the
 * journal, so each line then carries a "<N>" priority prefix
 * (sd-daemon(3) convention) instead of a time stamp.  Logging is
 * thread-safe (one write(2) per line).
 */
#ifndef IPOIBD_LOG_H
#define IPOIBD_LOG_H

#include <stdbool.h>
#include <syslog.h>
#include <time.h>

/* Messages above this priority (LOG_ERR .. LOG_DEBUG) are dropped. */
void ipoibd_log_set_level(int prio);
int ipoibd_log_get_level(void);

/*
 * Tests: every message that passes the level is also handed to hook
 * (NULL removes it), already formatted, without prefix or newline.
 */
typedef void (*ipoibd_log_hook_t)(int prio, const char *msg);
void ipoibd_log_set_hook(ipoibd_log_hook_t hook);

void ipoibd_log(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Rate limit for log call sites on paths a peer or the kernel can drive
 * (bad frames, failed sends): at most 'burst' lines per 5 seconds each.
 */
struct ipoibd_ratelimit {
	time_t begin;
	unsigned int printed;
	unsigned int missed;
};
bool ipoibd_ratelimit_ok(struct ipoibd_ratelimit *rl, unsigned int burst);

#define ipoibd_err(fmt, ...)  ipoibd_log(LOG_ERR, fmt, ##__VA_ARGS__)
#define ipoibd_warn(fmt, ...) ipoibd_log(LOG_WARNING, fmt, ##__VA_ARGS__)
#define ipoibd_info(fmt, ...) ipoibd_log(LOG_INFO, fmt, ##__VA_ARGS__)
#define ipoibd_dbg(fmt, ...)  ipoibd_log(LOG_DEBUG, fmt, ##__VA_ARGS__)

/* priv is anything with a 'name' member (a link, a TAP). */
#define ipoib_log(prio, priv, fmt, ...)                                      \
	ipoibd_log(prio, "%s: " fmt, (priv)->name, ##__VA_ARGS__)
#define ipoib_err(priv, fmt, ...)  ipoib_log(LOG_ERR, priv, fmt, ##__VA_ARGS__)
#define ipoib_warn(priv, fmt, ...) ipoib_log(LOG_WARNING, priv, fmt, ##__VA_ARGS__)
#define ipoib_info(priv, fmt, ...) ipoib_log(LOG_INFO, priv, fmt, ##__VA_ARGS__)
#define ipoib_dbg(priv, fmt, ...)  ipoib_log(LOG_DEBUG, priv, fmt, ##__VA_ARGS__)

/* A rate-limited warning: one static limiter per call site. */
#define ipoib_warn_ratelimited(priv, fmt, ...)                               \
	do {                                                                 \
		static struct ipoibd_ratelimit _rl;                          \
		if (ipoibd_ratelimit_ok(&_rl, 10))                           \
			ipoib_warn(priv, fmt, ##__VA_ARGS__);                \
	} while (0)

#endif /* IPOIBD_LOG_H */
