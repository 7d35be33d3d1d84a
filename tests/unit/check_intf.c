// SPDX-License-Identifier: MIT
/*
 * Unit: the interface-client registry (ipoibd/intf.c) with fake devices
 * and interfaces: every callback appends a token to a trace, so the tests
 * compare the exact order of calls.
 *   A+d0  add of interface A to device d0     A*d0  activate
 *   A-d0  remove                              A!d0:E/P  event E, param P
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_helpers.h"
#include "intf.h"
#include "log.h"

static struct ipoibd_registry reg;
static char trace[4096];
static char logbuf[4096];
static struct ipoibd_dev d0, d1, d2;

static void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tr(const char *fmt, ...)
{
	size_t len = strlen(trace);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(trace + len, sizeof(trace) - len, fmt, ap);
	va_end(ap);
}

static void log_hook(int prio, const char *msg)
{
	size_t len = strlen(logbuf);

	snprintf(logbuf + len, sizeof(logbuf) - len, "%d:%s\n", prio, msg);
}

/* Each fake interface is its own struct with behaviour switches. */
struct fake_intf {
	struct ipoibd_interface intf;
	const char *fail_on;		/* device name whose add fails */
	unsigned int last_flags;	/* flags the latest add received */
	void (*hook_add)(struct fake_intf *fi, struct ipoibd_dev *dev);
	void (*hook_activate)(struct fake_intf *fi, struct ipoibd_dev *dev);
	void (*hook_event)(struct fake_intf *fi, struct ipoibd_dev *dev);
};

static struct fake_intf fa, fb, fc;

static struct fake_intf *fake_of_ctx(void *ctx)
{
	return ctx;
}

static int fake_add_common(struct fake_intf *fi, struct ipoibd_dev *dev,
			   unsigned int flags, void **ctx)
{
	tr("%s+%s ", fi->intf.name, dev->name);
	fi->last_flags = flags;
	if (fi->hook_add)
		fi->hook_add(fi, dev);
	if (fi->fail_on && !strcmp(fi->fail_on, dev->name))
		return -EIO;
	*ctx = fi;
	return 0;
}

static int add_a(struct ipoibd_dev *dev, unsigned int flags, void **ctx)
{
	return fake_add_common(&fa, dev, flags, ctx);
}

static int add_b(struct ipoibd_dev *dev, unsigned int flags, void **ctx)
{
	return fake_add_common(&fb, dev, flags, ctx);
}

static int add_c(struct ipoibd_dev *dev, unsigned int flags, void **ctx)
{
	return fake_add_common(&fc, dev, flags, ctx);
}

static void fake_remove(struct ipoibd_dev *dev, void *ctx)
{
	tr("%s-%s ", fake_of_ctx(ctx)->intf.name, dev->name);
}

static void fake_activate(struct ipoibd_dev *dev, void *ctx)
{
	struct fake_intf *fi = fake_of_ctx(ctx);

	tr("%s*%s ", fi->intf.name, dev->name);
	if (fi->hook_activate)
		fi->hook_activate(fi, dev);
}

static void fake_event(struct ipoibd_dev *dev, void *ctx,
		       enum ipoibd_dev_event event, unsigned long param)
{
	struct fake_intf *fi = fake_of_ctx(ctx);

	tr("%s!%s:%d/%lu ", fi->intf.name, dev->name, event, param);
	if (fi->hook_event)
		fi->hook_event(fi, dev);
}

static void fake_init(struct fake_intf *fi, const char *name,
		      int (*add)(struct ipoibd_dev *, unsigned int, void **))
{
	memset(fi, 0, sizeof(*fi));
	fi->intf.name = name;
	fi->intf.protocol = IPOIBD_PROT_IPOIB;
	fi->intf.add = add;
	fi->intf.remove = fake_remove;
	fi->intf.activate = fake_activate;
	fi->intf.event = fake_event;
}

static void dev_init(struct ipoibd_dev *d, const char *name, unsigned int vfs)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->num_vfs = vfs;
}

static void setup(void)
{
	trace[0] = '\0';
	logbuf[0] = '\0';
	ipoibd_log_set_level(LOG_DEBUG);
	ipoibd_log_set_hook(log_hook);
	ck_assert_int_eq(ipoibd_registry_init(&reg), 0);
	fake_init(&fa, "A", add_a);
	fake_init(&fb, "B", add_b);
	fake_init(&fc, "C", add_c);
	dev_init(&d0, "d0", 0);
	dev_init(&d1, "d1", 0);
	dev_init(&d2, "d2", 0);
}

static void teardown(void)
{
	ipoibd_log_set_hook(NULL);
	ipoibd_registry_fini(&reg);
}

#define ck_trace(expected)                                                   \
	ck_assert_msg(!strcmp(trace, (expected)),                            \
		      "callbacks should run as \"%s\", ran as \"%s\"",       \
		      (expected), trace)

START_TEST(test_registration_order)
{
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d1), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fb.intf), 0);
	ck_trace("A+d0 A*d0 A+d1 A*d1 B+d0 B*d0 B+d1 B*d1 ");

	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d2), 0);
	ck_trace("A+d2 A*d2 B+d2 B*d2 ");

	/* Removal: the event first, then bindings newest first. */
	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d0), 0);
	ck_trace("A!d0:2/0 B!d0:2/0 B-d0 A-d0 ");
	ck_assert_ptr_null(ipoibd_intf_get_ctx(&reg, &fa.intf, &d0));

	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), 0);
	ck_trace("A-d1 A-d2 ");
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), -ENOENT);

	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d1), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d2), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d2), -ENOENT);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fb.intf), 0);
	ck_trace("B!d1:2/0 B-d1 B!d2:2/0 B-d2 ");
}
END_TEST

START_TEST(test_add_failure)
{
	fa.fail_on = "d1";
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d1), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), 0);
	ck_trace("A+d0 A*d0 A+d1 ");
	ck_assert_msg(ipoibd_intf_get_ctx(&reg, &fa.intf, &d0) == &fa,
		      "a successful add should keep its context");
	ck_assert_msg(!ipoibd_intf_get_ctx(&reg, &fa.intf, &d1),
		      "a failed add should leave no binding");
	ck_assert_uint_eq(fa.intf.add_failures, 1);
	ck_assert_int_eq(fa.intf.last_add_error, -EIO);
	ck_assert_msg(strstr(logbuf, "interface A: adding device d1 failed"),
		      "an add failure should be logged, log was: %s", logbuf);

	/* Neither remove nor events reach a binding that was never made. */
	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_event(&reg, &d1, IPOIBD_EV_PORT_ACTIVE, 1), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), 0);
	ck_trace("A-d0 ");
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d1), 0);
}
END_TEST

START_TEST(test_duplicate)
{
	struct fake_intf other;

	fake_init(&other, "A", add_b);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), -EEXIST);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &other.intf), -EEXIST);
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), -EEXIST);
	ck_trace("A+d0 A*d0 ");
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), 0);
	/* Once gone, the same name may come back. */
	ck_assert_int_eq(ipoibd_register_interface(&reg, &other.intf), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &other.intf), 0);
}
END_TEST

START_TEST(test_missing_callbacks)
{
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	fa.intf.add = NULL;
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), -EINVAL);
	fb.intf.remove = NULL;
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fb.intf), -EINVAL);
	fc.intf.name = NULL;
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fc.intf), -EINVAL);
	ck_assert_int_eq(ipoibd_register_interface(&reg, NULL), -EINVAL);
	ck_trace("");
	/* activate and event are optional. */
	fake_init(&fc, "C", add_c);
	fc.intf.activate = NULL;
	fc.intf.event = NULL;
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fc.intf), 0);
	ck_assert_int_eq(ipoibd_dev_event(&reg, &d0, IPOIBD_EV_PORT_DOWN, 1), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fc.intf), 0);
	ck_trace("C+d0 C-d0 ");
}
END_TEST

START_TEST(test_bonding_cleared_on_multifunction)
{
	struct ipoibd_dev vf;

	dev_init(&vf, "mf0", 4);
	fa.intf.flags = IPOIBD_INTF_BONDING;
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), 0);
	ck_assert_msg(fa.last_flags & IPOIBD_INTF_BONDING,
		      "a single-function device should keep BONDING");
	ck_assert_msg(!strstr(logbuf, "HA mode disabled"),
		      "no HA message for a single-function device: %s", logbuf);

	ck_assert_int_eq(ipoibd_dev_add(&reg, &vf), 0);
	ck_assert_msg(!(fa.last_flags & IPOIBD_INTF_BONDING),
		      "add on a multi-function device should get no BONDING");
	ck_assert_int_eq(ipoibd_intf_get_flags(&reg, &fa.intf, &vf), 0);
	ck_assert_int_eq(ipoibd_intf_get_flags(&reg, &fa.intf, &d0),
			 IPOIBD_INTF_BONDING);
	ck_assert_msg(fa.intf.flags & IPOIBD_INTF_BONDING,
		      "the interface's own flags should not change");
	ck_assert_msg(strstr(logbuf, "7:HA mode disabled for protocol ipoib on device mf0 (multi-function device)"),
		      "a debug line should say HA is disabled, log was: %s",
		      logbuf);

	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &vf), 0);
}
END_TEST

START_TEST(test_events_reach_every_interface)
{
	fc.fail_on = "d0";
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d1), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fb.intf), 0);
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fc.intf), 0);

	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_event(&reg, &d0, IPOIBD_EV_PORT_ACTIVE, 1), 0);
	ck_trace("A!d0:0/1 B!d0:0/1 ");
	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_event(&reg, &d1, IPOIBD_EV_PORT_DOWN, 2), 0);
	ck_trace("A!d1:1/2 B!d1:1/2 C!d1:1/2 ");

	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d1), 0);
	ck_trace("A!d1:2/0 B!d1:2/0 C!d1:2/0 C-d1 B-d1 A-d1 ");
	ck_assert_int_eq(ipoibd_dev_event(&reg, &d1, IPOIBD_EV_PORT_DOWN, 1),
			 -ENOENT);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fb.intf), 0);
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fc.intf), 0);
}
END_TEST

/* Callbacks that call back into the registry (Check's timeout catches a hang). */
static void a_add_registers_b(struct fake_intf *fi, struct ipoibd_dev *dev)
{
	if (!strcmp(dev->name, "d0"))
		ck_assert_int_eq(ipoibd_register_interface(&reg, &fb.intf), 0);
}

static void b_activate_unregisters_a(struct fake_intf *fi,
				     struct ipoibd_dev *dev)
{
	if (!strcmp(dev->name, "d1"))
		ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fa.intf), 0);
}

static void a_event_removes_device(struct fake_intf *fi, struct ipoibd_dev *dev)
{
	if (!strcmp(dev->name, "d0"))
		ipoibd_dev_remove(&reg, dev);
}

START_TEST(test_reentrant_callbacks)
{
	fa.hook_add = a_add_registers_b;
	fb.hook_activate = b_activate_unregisters_a;
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d0), 0);
	ck_assert_int_eq(ipoibd_dev_add(&reg, &d1), 0);
	/* B's registration runs after A's, A's removal after B's add to d1. */
	ck_assert_int_eq(ipoibd_register_interface(&reg, &fa.intf), 0);
	ck_trace("A+d0 A*d0 A+d1 A*d1 B+d0 B*d0 B+d1 B*d1 A-d0 A-d1 ");
	ck_assert_msg(!ipoibd_intf_get_ctx(&reg, &fa.intf, &d0),
		      "A should be gone once the outer call returns");

	/* An event callback that removes its own device. */
	fb.hook_event = a_event_removes_device;
	trace[0] = '\0';
	ck_assert_int_eq(ipoibd_dev_event(&reg, &d0, IPOIBD_EV_DEVICE_FATAL, 0), 0);
	ck_trace("B!d0:3/0 B!d0:2/0 B-d0 ");
	ck_assert_int_eq(ipoibd_unregister_interface(&reg, &fb.intf), 0);
	ck_assert_int_eq(ipoibd_dev_remove(&reg, &d1), 0);
}
END_TEST

START_TEST(test_read_numvfs)
{
	const char *dir = uib_test_dir_create();
	char path[4096];
	unsigned int n = 99;
	FILE *f;

	ck_assert_int_eq(ipoibd_read_numvfs(dir, &n), 0);
	ck_assert_msg(n == 0, "a missing sriov_numvfs should mean 0 VFs");

	snprintf(path, sizeof(path), "%s/device", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/device/sriov_numvfs", dir);
	f = fopen(path, "w");
	fputs("3\n", f);
	fclose(f);
	ck_assert_int_eq(ipoibd_read_numvfs(dir, &n), 0);
	ck_assert_uint_eq(n, 3);

	f = fopen(path, "w");
	fputs("three\n", f);
	fclose(f);
	ck_assert_int_eq(ipoibd_read_numvfs(dir, &n), -EINVAL);
	uib_test_dir_remove();
}
END_TEST

Suite *make_intf_suite(void)
{
	Suite *s = suite_create("intf");
	TCase *tc = tcase_create("registry");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_registration_order);
	tcase_add_test(tc, test_add_failure);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_missing_callbacks);
	tcase_add_test(tc, test_bonding_cleared_on_multifunction);
	tcase_add_test(tc, test_events_reach_every_interface);
	tcase_add_test(tc, test_reentrant_callbacks);
	tcase_add_test(tc, test_read_numvfs);
	suite_add_tcase(s, tc);
	return s;
}
