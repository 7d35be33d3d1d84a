// SPDX-License-Identifier: MIT
/*
 * fork() after ibv_reg_mr: the child gets its own copy of registered
 * memory, as fork() promises, even though uib shares registered pages with
 * peers.  Writes on either side must not reach the other; and a peer's
 * RDMA WRITE after the fork must reach the parent only.
 *
 * Usage: uib_fork_check DEVICE.  Prints "N passed, N failed".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

static int passed, failed;

static void check(int ok, const char *name, const char *why)
{
	if (ok) {
		printf("ok %s\n", name);
		passed++;
	} else {
		printf("FAIL %s: %s\n", name, why);
		failed++;
	}
}

int main(int argc, char **argv)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	char *buf, *nbr;
	int pipefd[2], status, i, n;
	char verdict[64] = "";
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DEVICE\n", argv[0]);
		return 2;
	}
	list = ibv_get_device_list(&n);
	for (i = 0; list && i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), argv[1]))
			ctx = ibv_open_device(list[i]);
	if (!ctx) {
		fprintf(stderr, "cannot open %s\n", argv[1]);
		return 2;
	}
	pd = ibv_alloc_pd(ctx);
	/* A malloc'd buffer that is not page aligned: its pages hold
	 * neighbours too, which the child must also get as its own. */
	nbr = malloc(100);
	buf = malloc(10000);
	if (!pd || !buf || !nbr)
		return 2;
	memset(buf, 'A', 10000);
	memset(nbr, 'N', 100);
	mr = ibv_reg_mr(pd, buf, 10000, IBV_ACCESS_LOCAL_WRITE |
					 IBV_ACCESS_REMOTE_WRITE);
	check(mr != NULL, "reg_mr", "ibv_reg_mr failed");
	if (!mr)
		return 1;
	check(buf[0] == 'A' && buf[9999] == 'A', "contents_kept",
	      "registration changed the buffer");
	if (pipe(pipefd))
		return 2;

	pid = fork();
	if (pid == 0) {
		/* The child: sees the fork-time contents, writes its own. */
		int ok = buf[0] == 'A' && buf[5000] == 'A';

		memset(buf, 'C', 10000);
		memset(nbr, 'c', 100);
		if (write(pipefd[1], ok ? "child-saw-A" : "child-saw-other",
			  ok ? 11 : 15) < 0)
			_exit(3);
		close(pipefd[1]);
		/* Wait for the parent's write, then check it did not reach
		 * us. */
		sleep(1);
		_exit(buf[0] == 'C' && buf[9999] == 'C' ? 0 : 4);
	}
	close(pipefd[1]);
	if (read(pipefd[0], verdict, sizeof(verdict) - 1) < 0)
		return 2;
	check(!strcmp(verdict, "child-saw-A"), "child_sees_fork_time_contents",
	      verdict);
	check(buf[0] == 'A' && buf[9999] == 'A', "child_writes_stay_in_child",
	      "the child's memset reached the parent's registered buffer");
	check(nbr[0] == 'N' && nbr[99] == 'N', "neighbour_stays_private",
	      "the child's write to a malloc neighbour reached the parent");
	memset(buf, 'P', 10000);
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "parent_writes_stay_in_parent",
	      "the parent's write reached the child's copy");
	check(ibv_dereg_mr(mr) == 0, "dereg_mr", "ibv_dereg_mr failed");
	check(buf[0] == 'P' && buf[9999] == 'P', "contents_after_dereg",
	      "deregistration changed the buffer");
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	ibv_free_device_list(list);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
