// SPDX-License-Identifier: MIT
/*
 * Privileged check of ipoibd's TAP and netlink helpers (run by
 * test_ipoibd_netlink.sh inside a fresh network namespace):
 *
 *   ipoibd_nl_check IFNAME CMD [ARGS...]
 *
 * creates the TAP IFNAME, sets its MAC, MTU 4092, carrier, brings it up
 * and adds 2001:db8::1/64 and 192.0.2.1/24, reading each change back
 * through the helpers; then runs CMD (the script's own checks with
 * `ip -j`) while the TAP exists, deletes the addresses, closes the TAP and
 * checks that the interface is gone.  Exit 0 only if everything held and
 * CMD exited 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netlink.h"
#include "tap.h"

#define CHECK(expr, what)                                                    \
	do {                                                                 \
		int _r = (expr);                                             \
		if (_r) {                                                    \
			fprintf(stderr, "FAIL: %s: %s\n", what,              \
				strerror(-_r));                              \
			return 1;                                            \
		}                                                            \
	} while (0)

#define EXPECT(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL: " __VA_ARGS__);               \
			fputc('\n', stderr);                                 \
			return 1;                                            \
		}                                                            \
	} while (0)

static int run(char **argv)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv)
{
	static const uint8_t mac[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };
	struct ipoibd_nl_link info;
	struct ipoibd_tap tap;
	struct ipoibd_nl nl;
	uint8_t a6[16], a4[4];
	int ifindex, ret;

	if (argc < 3) {
		fprintf(stderr, "usage: %s IFNAME CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	inet_pton(AF_INET6, "2001:db8::1", a6);
	inet_pton(AF_INET, "192.0.2.1", a4);

	CHECK(ipoibd_nl_init(&nl), "netlink socket");
	CHECK(ipoibd_tap_open(&tap, argv[1], 0), "open TAP");
	EXPECT(!strcmp(tap.name, argv[1]), "TAP should be named %s, is %s",
	       argv[1], tap.name);
	CHECK(ipoibd_nl_ifindex(&nl, tap.name, &ifindex), "ifindex");
	CHECK(ipoibd_tap_set_mac(&tap, mac), "set MAC");
	CHECK(ipoibd_nl_set_mtu(&nl, ifindex, 4092), "set MTU");
	CHECK(ipoibd_tap_set_carrier(&tap, false), "carrier off");
	CHECK(ipoibd_nl_set_up(&nl, ifindex, true), "set up");
	CHECK(ipoibd_nl_get_link(&nl, ifindex, &info), "read link");
	EXPECT(info.mtu == 4092, "MTU should read back 4092, not %u", info.mtu);
	EXPECT(info.up, "link should be up");
	EXPECT(!info.carrier, "carrier should be off after TUNSETCARRIER 0");
	EXPECT(!memcmp(info.mac, mac, 6), "MAC should read back as set");
	CHECK(ipoibd_tap_set_carrier(&tap, true), "carrier on");
	CHECK(ipoibd_nl_get_link(&nl, ifindex, &info), "read link");
	EXPECT(info.carrier, "carrier should be on after TUNSETCARRIER 1");

	CHECK(ipoibd_nl_addr(&nl, ifindex, AF_INET6, a6, 64, true), "add IPv6");
	ret = ipoibd_nl_addr(&nl, ifindex, AF_INET6, a6, 64, true);
	EXPECT(ret == -EEXIST, "adding an address twice should be -EEXIST, is %d",
	       ret);
	CHECK(ipoibd_nl_addr(&nl, ifindex, AF_INET, a4, 24, true), "add IPv4");
	ret = ipoibd_nl_set_mtu(&nl, ifindex, 70000);
	EXPECT(ret == -EINVAL, "an MTU above the TAP maximum should be -EINVAL, is %d",
	       ret);
	ret = ipoibd_nl_ifindex(&nl, "nosuchif0", &ifindex);
	EXPECT(ret == -ENODEV, "a missing interface should be -ENODEV, is %d",
	       ret);
	CHECK(ipoibd_nl_ifindex(&nl, tap.name, &ifindex), "ifindex");

	ret = run(argv + 2);
	EXPECT(ret == 0, "the checks run while the TAP exists failed (%d)", ret);

	CHECK(ipoibd_nl_addr(&nl, ifindex, AF_INET6, a6, 64, false), "del IPv6");
	CHECK(ipoibd_nl_set_up(&nl, ifindex, false), "set down");
	ipoibd_tap_close(&tap);
	ret = ipoibd_nl_ifindex(&nl, argv[1], &ifindex);
	EXPECT(ret == -ENODEV, "the TAP should be gone once closed (%d)", ret);
	ipoibd_nl_fini(&nl);
	printf("ipoibd_nl_check: all checks passed\n");
	return 0;
}
