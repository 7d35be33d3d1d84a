/* SPDX-License-Identifier: MIT */
/*
 * /etc/ipoibd.conf: the links the daemon builds.  Format in ipoibd.conf(5).
 * Errors come back as 0 or -errno plus a message in the caller's buffer
 * that names the file, the line and the problem
 * ("ipoibd.conf:7: unknown key 'qeues'"); the parser never prints.
 */
#ifndef IPOIBD_CONFIG_H
#define IPOIBD_CONFIG_H

#include <net/if.h>
#include <stdint.h>
#include <stdio.h>

#define IPOIBD_DEFAULT_CONFIG "/etc/ipoibd.conf"
#define IPOIBD_MAX_QUEUES 64
#define IPOIBD_DEV_NAME_MAX 64

enum ipoibd_link_mode {
	IPOIBD_MODE_DATAGRAM,
	IPOIBD_MODE_CONNECTED,
};

struct ipoibd_link_config {
	char ifname[IFNAMSIZ];
	char device[IPOIBD_DEV_NAME_MAX];
	unsigned int port;		/* 1..255, default 1 */
	unsigned int queues;		/* 1..IPOIBD_MAX_QUEUES, default 1 */
	uint16_t pkey;			/* default 0xffff */
	enum ipoibd_link_mode mode;	/* default datagram */
	unsigned int mtu;		/* 0: the port's IB MTU - 4 */
	unsigned int line;		/* where the section starts; 0: command line */
};

struct ipoibd_config {
	char source[256];		/* file name used in messages */
	int log_level;			/* LOG_INFO unless [daemon] says */
	struct ipoibd_link_config *links;
	unsigned int num_links;
};

void ipoibd_config_init(struct ipoibd_config *cfg);
void ipoibd_config_fini(struct ipoibd_config *cfg);

/*
 * Parses an open stream into cfg (appending links); 'name' is the file name
 * used in messages.  On error cfg holds what was parsed: ipoibd_config_fini().
 */
int ipoibd_config_parse(struct ipoibd_config *cfg, FILE *f, const char *name,
			char *err, size_t errlen);
/* Opens and parses a file (-ENOENT etc. with a message naming it). */
int ipoibd_config_load(struct ipoibd_config *cfg, const char *path,
		       char *err, size_t errlen);
/* The --device/--port/--ifname link, checked like a file's. */
int ipoibd_config_add_link(struct ipoibd_config *cfg, const char *ifname,
			   const char *device, unsigned int port,
			   char *err, size_t errlen);

/* 0 if name can be a network interface name, else -EINVAL. */
int ipoibd_ifname_valid(const char *name);

const char *ipoibd_mode_name(enum ipoibd_link_mode mode);

#endif /* IPOIBD_CONFIG_H */
