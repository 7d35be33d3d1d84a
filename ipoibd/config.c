// SPDX-License-Identifier: MIT
/*
 * The configuration file parser: an ini-like format, see ipoibd.conf(5).
 *
 *	[daemon]
 *	log-level = info
 *	[link ib0]
 *	device = uib0
 *	port = 1
 *
 * Everything is checked while parsing, so that a bad file is refused with
 * the line of the problem before the daemon touches any device.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"

#define LINE_MAX_LEN 1024

enum section {
	SEC_NONE,
	SEC_DAEMON,
	SEC_LINK,
};

/* Keys of a [link] section, for duplicate detection. */
enum link_key {
	KEY_DEVICE,
	KEY_PORT,
	KEY_QUEUES,
	KEY_PKEY,
	KEY_MODE,
	KEY_MTU,
	KEY_LOG_LEVEL,
	NUM_KEYS,
};

static const char *const key_names[NUM_KEYS] = {
	[KEY_DEVICE] = "device",
	[KEY_PORT] = "port",
	[KEY_QUEUES] = "queues",
	[KEY_PKEY] = "pkey",
	[KEY_MODE] = "mode",
	[KEY_MTU] = "mtu",
	[KEY_LOG_LEVEL] = "log-level",
};

struct parser {
	struct ipoibd_config *cfg;
	const char *name;
	unsigned int lineno;
	enum section sec;
	unsigned int key_line[NUM_KEYS];	/* where each key was set */
	char *err;
	size_t errlen;
};

static int perr(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->lineno);
	if (n < 0 || (size_t)n >= p->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *ipoibd_mode_name(enum ipoibd_link_mode mode)
{
	return mode == IPOIBD_MODE_CONNECTED ? "connected" : "datagram";
}

void ipoibd_config_init(struct ipoibd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_INFO;
}

void ipoibd_config_fini(struct ipoibd_config *cfg)
{
	free(cfg->links);
	cfg->links = NULL;
	cfg->num_links = 0;
}

/*
 * The kernel takes nearly any byte but '/', ':' and whitespace; we also
 * refuse what would need quoting in a shell or in JSON.
 */
int ipoibd_ifname_valid(const char *name)
{
	size_t len = strlen(name), i;

	if (!len || len >= IFNAMSIZ)
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char c = name[i];

		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return -EINVAL;
	}
	return 0;
}

static int dev_name_valid(const char *name)
{
	size_t len = strlen(name), i;

	if (!len || len >= IPOIBD_DEV_NAME_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char c = name[i];

		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return -EINVAL;
	}
	return 0;
}

/* A whole-string unsigned number, decimal or 0x-hex, in [min, max]. */
static int parse_uint(const char *s, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static struct ipoibd_link_config *cur_link(struct parser *p)
{
	return &p->cfg->links[p->cfg->num_links - 1];
}

/* Checks that make sense only once a section is complete. */
static int end_section(struct parser *p)
{
	struct ipoibd_link_config *l, *o;
	unsigned int i, save = p->lineno;
	int ret = 0;

	if (p->sec != SEC_LINK)
		return 0;
	l = cur_link(p);
	p->lineno = l->line;
	if (!l->device[0]) {
		ret = perr(p, "link '%s' has no 'device'", l->ifname);
		goto out;
	}
	for (i = 0; i + 1 < p->cfg->num_links; i++) {
		o = &p->cfg->links[i];
		if (!strcmp(o->device, l->device) && o->port == l->port &&
		    o->pkey == l->pkey) {
			ret = perr(p, "link '%s' uses %s port %u P_Key 0x%04x like link '%s' (line %u)",
				   l->ifname, l->device, l->port, l->pkey,
				   o->ifname, o->line);
			goto out;
		}
	}
out:
	p->lineno = save;
	return ret;
}

static int new_link(struct parser *p, const char *ifname, unsigned int line)
{
	struct ipoibd_config *cfg = p->cfg;
	struct ipoibd_link_config *links, *l;
	unsigned int i;

	if (ipoibd_ifname_valid(ifname))
		return perr(p, "invalid interface name '%s' (1 to %d letters, digits, '_', '-' or '.')",
			    ifname, IFNAMSIZ - 1);
	for (i = 0; i < cfg->num_links; i++)
		if (!strcmp(cfg->links[i].ifname, ifname))
			return cfg->links[i].line ?
				perr(p, "duplicate link '%s' (first on line %u)",
				     ifname, cfg->links[i].line) :
				perr(p, "duplicate link '%s' (also on the command line)",
				     ifname);

	links = reallocarray(cfg->links, cfg->num_links + 1, sizeof(*links));
	if (!links) {
		snprintf(p->err, p->errlen, "%s: out of memory", p->name);
		return -ENOMEM;
	}
	cfg->links = links;
	l = &links[cfg->num_links++];
	memset(l, 0, sizeof(*l));
	snprintf(l->ifname, sizeof(l->ifname), "%s", ifname);
	l->port = 1;
	l->queues = 1;
	l->pkey = 0xffff;
	l->mode = IPOIBD_MODE_DATAGRAM;
	l->line = line;
	return 0;
}

static int parse_section(struct parser *p, char *s)
{
	char *end = strchr(s, ']'), *word, *arg;
	int ret;

	if (!end || strip(end + 1)[0])
		return perr(p, "malformed section header (expected '[link NAME]' or '[daemon]')");
	*end = '\0';
	word = strip(s + 1);
	arg = word + strcspn(word, " \t");
	if (*arg)
		*arg++ = '\0';
	arg = strip(arg);

	ret = end_section(p);
	if (ret)
		return ret;
	memset(p->key_line, 0, sizeof(p->key_line));

	if (!strcmp(word, "daemon")) {
		if (*arg)
			return perr(p, "section [daemon] takes no name");
		p->sec = SEC_DAEMON;
		return 0;
	}
	if (!strcmp(word, "link")) {
		if (!*arg)
			return perr(p, "section [link] needs an interface name: [link ib0]");
		p->sec = SEC_LINK;
		return new_link(p, arg, p->lineno);
	}
	return perr(p, "unknown section '[%s]'", word);
}

static int parse_log_level(struct parser *p, const char *v)
{
	if (!strcmp(v, "error"))
		p->cfg->log_level = LOG_ERR;
	else if (!strcmp(v, "warning"))
		p->cfg->log_level = LOG_WARNING;
	else if (!strcmp(v, "info"))
		p->cfg->log_level = LOG_INFO;
	else if (!strcmp(v, "debug"))
		p->cfg->log_level = LOG_DEBUG;
	else
		return perr(p, "invalid log-level '%s' (error, warning, info or debug)", v);
	return 0;
}

static int parse_link_key(struct parser *p, enum link_key k, const char *v)
{
	struct ipoibd_link_config *l = cur_link(p);
	unsigned long n;

	switch (k) {
	case KEY_DEVICE:
		if (dev_name_valid(v))
			return perr(p, "invalid device name '%s'", v);
		snprintf(l->device, sizeof(l->device), "%s", v);
		return 0;
	case KEY_PORT:
		if (parse_uint(v, 1, 255, &n))
			return perr(p, "invalid port '%s' (1 to 255)", v);
		l->port = n;
		return 0;
	case KEY_QUEUES:
		if (parse_uint(v, 1, IPOIBD_MAX_QUEUES, &n))
			return perr(p, "invalid queues '%s' (1 to %d)", v,
				    IPOIBD_MAX_QUEUES);
		l->queues = n;
		return 0;
	case KEY_PKEY:
		/* 0 and 0x8000 are the invalid P_Key, in either membership. */
		if (parse_uint(v, 1, 0xffff, &n) || n == 0x8000)
			return perr(p, "invalid pkey '%s' (0x0001 to 0xffff, not 0x8000)", v);
		l->pkey = n;
		return 0;
	case KEY_MODE:
		if (!strcmp(v, "datagram"))
			l->mode = IPOIBD_MODE_DATAGRAM;
		else if (!strcmp(v, "connected"))
			l->mode = IPOIBD_MODE_CONNECTED;
		else
			return perr(p, "invalid mode '%s' (datagram or connected)", v);
		return 0;
	case KEY_MTU:
		/* 68: the IPv4 minimum; 65520: RFC 4755's connected-mode maximum. */
		if (!strcmp(v, "auto")) {
			l->mtu = 0;
			return 0;
		}
		if (parse_uint(v, 68, 65520, &n))
			return perr(p, "invalid mtu '%s' (68 to 65520, or auto)", v);
		l->mtu = n;
		return 0;
	default:
		break;
	}
	return perr(p, "unknown key '%s'", key_names[k]);
}

static int parse_key(struct parser *p, char *s)
{
	char *eq = strchr(s, '='), *key, *val;
	int k;

	if (!eq)
		return perr(p, "expected 'key = value', '[section]' or a comment");
	*eq = '\0';
	key = strip(s);
	val = strip(eq + 1);
	if (p->sec == SEC_NONE)
		return perr(p, "key '%s' outside a section", key);

	for (k = 0; k < NUM_KEYS; k++)
		if (!strcmp(key, key_names[k]))
			break;
	if (k == NUM_KEYS || (p->sec == SEC_DAEMON) != (k == KEY_LOG_LEVEL))
		return perr(p, "unknown key '%s'", key);
	if (!*val)
		return perr(p, "key '%s' has no value", key);
	if (p->key_line[k])
		return perr(p, "duplicate key '%s' (first on line %u)", key,
			    p->key_line[k]);
	p->key_line[k] = p->lineno;

	if (k == KEY_LOG_LEVEL)
		return parse_log_level(p, val);
	return parse_link_key(p, k, val);
}

int ipoibd_config_parse(struct ipoibd_config *cfg, FILE *f, const char *name,
			char *err, size_t errlen)
{
	struct parser p = {
		.cfg = cfg, .name = name, .err = err, .errlen = errlen,
	};
	char buf[LINE_MAX_LEN + 2], *s;
	size_t len;
	int ret;

	snprintf(cfg->source, sizeof(cfg->source), "%s", name);
	while (fgets(buf, sizeof(buf), f)) {
		p.lineno++;
		len = strlen(buf);
		if (len > LINE_MAX_LEN && buf[len - 1] != '\n')
			return perr(&p, "line longer than %d characters",
				    LINE_MAX_LEN);
		s = strip(buf);
		if (!*s || *s == '#' || *s == ';')
			continue;
		ret = *s == '[' ? parse_section(&p, s) : parse_key(&p, s);
		if (ret)
			return ret;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", name);
		return -EIO;
	}
	return end_section(&p);
}

int ipoibd_config_load(struct ipoibd_config *cfg, const char *path,
		       char *err, size_t errlen)
{
	FILE *f;
	int ret;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = ipoibd_config_parse(cfg, f, path, err, errlen);
	fclose(f);
	return ret;
}

int ipoibd_config_add_link(struct ipoibd_config *cfg, const char *ifname,
			   const char *device, unsigned int port,
			   char *err, size_t errlen)
{
	struct parser p = {
		.cfg = cfg, .name = "command line", .err = err,
		.errlen = errlen, .sec = SEC_LINK,
	};
	struct ipoibd_link_config *l;
	int ret;

	ret = new_link(&p, ifname, 0);
	if (ret)
		goto err_msg;
	l = cur_link(&p);
	if (dev_name_valid(device)) {
		ret = -EINVAL;
		snprintf(err, errlen, "command line: invalid device name '%s'",
			 device);
		goto err_drop;
	}
	snprintf(l->device, sizeof(l->device), "%s", device);
	if (port < 1 || port > 255) {
		ret = -EINVAL;
		snprintf(err, errlen, "command line: invalid port %u (1 to 255)",
			 port);
		goto err_drop;
	}
	l->port = port;
	return end_section(&p) ? -EINVAL : 0;

err_drop:
	cfg->num_links--;
	return ret;
err_msg:
	/* perr() put "command line:0: "; say it without the line. */
	if (!strncmp(err, "command line:0: ", 16))
		memmove(err + 14, err + 16, strlen(err + 16) + 1);
	return ret;
}
