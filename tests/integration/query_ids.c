// SPDX-License-Identifier: MIT
/*
 * uib_query_ids: prints, for every verbs device, what the verbs calls say
 * its identifiers are, so that test_devices.sh can compare them with sysfs
 * and ibv_devinfo:
 *
 *   NAME guid=XXXXXXXXXXXXXXXX gid0=xxxx:...:xxxx pkey0=0xXXXX
 *
 * guid from ibv_get_device_guid(), gid0 from ibv_query_gid(port 1, 0),
 * pkey0 from ibv_query_pkey(port 1, 0).  Exits 1 if any call fails.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

static int query_one(struct ibv_device *dev)
{
	const char *name = ibv_get_device_name(dev);
	struct ibv_context *ctx;
	union ibv_gid gid;
	__be16 pkey;
	int i, ret;

	ctx = ibv_open_device(dev);
	if (!ctx) {
		fprintf(stderr, "%s: ibv_open_device: %s\n", name,
			strerror(errno));
		return 1;
	}
	ret = ibv_query_gid(ctx, 1, 0, &gid);
	if (ret) {
		fprintf(stderr, "%s: ibv_query_gid: %s\n", name,
			strerror(ret < 0 ? errno : ret));
		goto out;
	}
	ret = ibv_query_pkey(ctx, 1, 0, &pkey);
	if (ret) {
		fprintf(stderr, "%s: ibv_query_pkey: %s\n", name,
			strerror(ret < 0 ? errno : ret));
		goto out;
	}
	printf("%s guid=%016" PRIx64 " gid0=", name,
	       be64toh(ibv_get_device_guid(dev)));
	for (i = 0; i < 16; i += 2)
		printf("%02x%02x%s", gid.raw[i], gid.raw[i + 1],
		       i < 14 ? ":" : "");
	printf(" pkey0=0x%04x\n", be16toh(pkey));
out:
	ibv_close_device(ctx);
	return ret ? 1 : 0;
}

int main(void)
{
	struct ibv_device **list;
	int i, n, rc = 0;

	list = ibv_get_device_list(&n);
	if (!list) {
		perror("ibv_get_device_list");
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "no verbs devices\n");
		rc = 1;
	}
	for (i = 0; i < n; i++)
		rc |= query_one(list[i]);
	ibv_free_device_list(list);
	return rc;
}
