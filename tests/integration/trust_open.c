// SPDX-License-Identifier: MIT
/*
 * uib_trust_open DEV: opens a verbs device and says what happened, for
 * test_trust.sh.  Prints "open DEV: ok" and exits 0, or
 * "open DEV: <strerror> (errno N)" and exits 1; exits 2 if DEV is not
 * listed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <infiniband/verbs.h>

int main(int argc, char **argv)
{
	struct ibv_device **list;
	struct ibv_context *ctx;
	int i, n, err, ret = 2;

	if (argc != 2) {
		fprintf(stderr, "usage: uib_trust_open DEV\n");
		return 2;
	}
	list = ibv_get_device_list(&n);
	if (!list) {
		printf("open %s: no device list: %s\n", argv[1],
		       strerror(errno));
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(ibv_get_device_name(list[i]), argv[1]))
			continue;
		errno = 0;
		ctx = ibv_open_device(list[i]);
		err = errno;
		if (ctx) {
			printf("open %s: ok\n", argv[1]);
			ibv_close_device(ctx);
			ret = 0;
		} else {
			printf("open %s: %s (errno %d)\n", argv[1],
			       strerror(err), err);
			ret = 1;
		}
		break;
	}
	if (ret == 2)
		printf("open %s: not listed\n", argv[1]);
	ibv_free_device_list(list);
	return ret;
}
