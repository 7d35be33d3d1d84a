// SPDX-License-Identifier: MIT
/*
 * uib_floor: the host's physical floor for moving bytes between processes.
 *
 * Whatever uib achieves is bounded by what this machine can do at all, so the
 * benchmarks put uib's figures next to these, measured in the same run:
 *
 *   memcpy_bw         memcpy in one process, warm buffers            GB/s
 *                     (bandwidths: best of several timed batches)
 *   pvm_bw            process_vm_writev into a forked child's buffer GB/s
 *   pvm_rate          the same, in calls per second                  Mops
 *   shm_bw            memcpy into a MAP_SHARED buffer + per-message
 *                     flag/ack handshake with a second process       GB/s
 *   shm_pingpong_lat  one-way latency (half a round trip) of a
 *                     ping-pong between two processes that each copy
 *                     SIZE bytes into shared memory and then flip one
 *                     cache-line flag; median of the samples         us
 *   pvm_lat           one process_vm_writev call of 2 bytes, median  us
 *
 * GB/s is 1e9 bytes per second.  The two processes of a pair are pinned to
 * different CPUs when there are two or more.  Machine-readable output is one
 * line per figure, "floor METRIC SIZE VALUE UNIT"; a human table follows.
 * Nothing here ever fails on speed: the exit status only says whether the
 * measurements could be made.
 *
 *   uib_floor [--quick]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSIZES 4
static const size_t sizes[NSIZES] = { 2, 4096, 65536, 1048576 };
#define MAXSZ ((size_t)1 << 20)
#define LINE 64
#define INLINE_MAX 48		/* payload that fits in the flag's cache line */
#define MAX_SAMPLES 100000
#define STOP UINT64_MAX

/* Time budgets, seconds, per (metric, size). */
static double bw_budget = 0.30, lat_budget = 0.45;
static int bw_batches = 7;
static long lat_samples = MAX_SAMPLES;

static int ncpu;
static int peer_cpu = 1;	/* the second CPU we may use */
static uint64_t *samples;

enum metric { M_MEMCPY, M_PVM, M_SHM, M_PINGPONG, M_NMETRICS };
static double result[M_NMETRICS][NSIZES];	/* GB/s or us, <0: failed */
static double pvm_rate[NSIZES];			/* Mops */
static double pp_min[NSIZES], pp_avg[NSIZES];
static long pp_n[NSIZES];
static double pvm_lat = -1, pvm_lat_min, pvm_lat_avg;
static long pvm_lat_n;
static double timer_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "uib_floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (ncpu < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Best effort: a restricted cpuset only makes the figure noisier. */
	(void)sched_setaffinity(0, sizeof(set), &set);
}

/* About four significant digits, never in exponent notation (so that the
 * "floor" lines stay trivial to parse). */
static const char *num(double v)
{
	static char buf[8][32];
	static int k;
	char *b = buf[k++ & 7];
	int dec = 3;

	if (v > 0)
		for (double x = v; x < 1.0 && dec < 9; x *= 10)
			dec++;
	snprintf(b, 32, "%.*f", dec, v);
	return b;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Keeps the compiler from dropping or merging copies whose result is unused. */
static inline void clobber(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

/* ------------------------------------------------------------------ */
/* Shared control block and the peer process                           */

struct ctl {
	_Alignas(LINE) _Atomic uint64_t flag;	/* ping-pong flag / shm_bw seq */
	uint64_t size;				/* ping-pong payload size */
	unsigned char inl[INLINE_MAX];		/* small payload, same line */
	_Alignas(LINE) _Atomic uint64_t ack;	/* shm_bw: consumer's ack */
	_Alignas(LINE) unsigned char pad[LINE];
};

static struct ctl *ctl;
static unsigned char *shbuf;	/* MAXSZ, MAP_SHARED */
static pid_t peer;
static int peer_is_parent;

static void peer_check(void)
{
	int st;

	if (peer_is_parent) {
		if (getppid() == 1)
			_exit(0);
		return;
	}
	if (peer > 0 && waitpid(peer, &st, WNOHANG) == peer) {
		peer = 0;
		fprintf(stderr, "uib_floor: peer process exited unexpectedly\n");
		exit(1);
	}
}

/* Spins until *p holds want (or STOP, when stop_ok); returns the value seen. */
static uint64_t spin_eq(_Atomic uint64_t *p, uint64_t want, int stop_ok)
{
	unsigned long n = 0;
	uint64_t v;

	while ((v = atomic_load_explicit(p, memory_order_acquire)) != want) {
		if (stop_ok && v == STOP)
			break;
		if (ncpu < 2)
			sched_yield();
		if ((++n & 0xfffff) == 0)
			peer_check();
	}
	return v;
}

static uint64_t spin_ne(_Atomic uint64_t *p, uint64_t old)
{
	unsigned long n = 0;
	uint64_t v;

	while ((v = atomic_load_explicit(p, memory_order_acquire)) == old) {
		if (ncpu < 2)
			sched_yield();
		if ((++n & 0xfffff) == 0)
			peer_check();
	}
	return v;
}

static void child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	peer_is_parent = 1;
	if (getppid() == 1)
		_exit(0);
	pin(peer_cpu);
}

static void peer_reap(void)
{
	int st;

	if (peer > 0)
		while (waitpid(peer, &st, 0) < 0 && errno == EINTR)
			;
	peer = 0;
}

/* ------------------------------------------------------------------ */
/* Bandwidth: time-budgeted batches, best batch throughput             */

typedef void (*xfer_fn)(size_t size);

static unsigned char *src, *dst;
static unsigned char *remote;	/* child's buffer address (same in both) */

static double measure_bw(xfer_fn fn, size_t size, double *ops_per_s)
{
	double gbs[16], rate[16], per_batch = bw_budget / bw_batches;
	uint64_t t0, t, iters = 1;
	int b;

	/* Warm-up, which also calibrates iterations per batch. */
	t0 = now_ns();
	do {
		for (uint64_t i = 0; i < iters; i++)
			fn(size);
		t = now_ns() - t0;
		if (t < per_batch * 1e9 / 4)
			iters *= 2;
	} while (t < per_batch * 1e9 / 4);
	iters = (uint64_t)((double)iters * (per_batch * 1e9) / (double)t) + 1;

	for (b = 0; b < bw_batches; b++) {
		t0 = now_ns();
		for (uint64_t i = 0; i < iters; i++)
			fn(size);
		t = now_ns() - t0;
		if (!t)
			t = 1;
		gbs[b] = (double)size * (double)iters / (double)t;
		rate[b] = (double)iters / (double)t * 1e3;	/* Mops */
	}
	/* Best batch: other load only ever slows a batch down, and the floor
	 * is what the host can do at best. */
	qsort(gbs, bw_batches, sizeof(gbs[0]), cmp_dbl);
	qsort(rate, bw_batches, sizeof(rate[0]), cmp_dbl);
	if (ops_per_s)
		*ops_per_s = rate[bw_batches - 1];
	return gbs[bw_batches - 1];
}

static void xfer_memcpy(size_t size)
{
	memcpy(dst, src, size);
	clobber(dst);
}

static void xfer_pvm(size_t size)
{
	struct iovec l = { src, size }, r = { remote, size };
	ssize_t n = process_vm_writev(peer, &l, 1, &r, 1, 0);

	if (n != (ssize_t)size) {
		if (n >= 0)
			errno = EIO;
		die("process_vm_writev");
	}
}

static uint64_t shm_seq;

static void xfer_shm(size_t size)
{
	memcpy(shbuf, src, size);
	atomic_store_explicit(&ctl->flag, ++shm_seq, memory_order_release);
	spin_eq(&ctl->ack, shm_seq, 0);
}

static void run_memcpy(void)
{
	for (int i = 0; i < NSIZES; i++) {
		result[M_MEMCPY][i] = measure_bw(xfer_memcpy, sizes[i], NULL);
		printf("floor memcpy_bw %zu %s GB/s\n", sizes[i],
		       num(result[M_MEMCPY][i]));
		fflush(stdout);
	}
}

/* The child owns the destination buffer and only waits; the parent writes
 * into it with process_vm_writev (what a one-copy transport does). */
static void run_pvm(void)
{
	int pfd[2];
	char c;
	uint64_t t0;
	long n = 0, i;
	double sum = 0;
	struct iovec l, r;

	if (pipe(pfd))
		die("pipe");
	fflush(stdout);
	peer = fork();
	if (peer < 0)
		die("fork");
	if (!peer) {
		child_setup();
		close(pfd[1]);
		/* A fresh private mapping: its pages are the child's own
		 * (not copy-on-write shared with the parent). */
		remote = mmap(remote, MAXSZ, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (remote == MAP_FAILED)
			_exit(1);
		memset(remote, 0x5a, MAXSZ);
		/* Wait until the parent closes its end. */
		while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	/* Ready when the child's memset shows through process_vm_readv. */
	close(pfd[0]);
	{
		unsigned char probe = 0;
		struct iovec pl = { &probe, 1 }, pr = { remote + MAXSZ - 1, 1 };
		uint64_t deadline = now_ns() + 5000000000ull;

		while (process_vm_readv(peer, &pl, 1, &pr, 1, 0) != 1 ||
		       probe != 0x5a) {
			if (now_ns() > deadline) {
				fprintf(stderr, "uib_floor: pvm child not ready\n");
				exit(1);
			}
			peer_check();
			usleep(1000);
		}
	}

	for (i = 0; i < NSIZES; i++) {
		result[M_PVM][i] = measure_bw(xfer_pvm, sizes[i], &pvm_rate[i]);
		printf("floor pvm_bw %zu %s GB/s\n", sizes[i], num(result[M_PVM][i]));
		printf("floor pvm_rate %zu %s Mops\n", sizes[i], num(pvm_rate[i]));
		fflush(stdout);
	}

	/* Latency of one 2-byte call: each call timed on its own. */
	l.iov_base = src;
	l.iov_len = 2;
	r.iov_base = remote;
	r.iov_len = 2;
	for (i = 0; i < 1000; i++)
		if (process_vm_writev(peer, &l, 1, &r, 1, 0) != 2)
			die("process_vm_writev");
	t0 = now_ns();
	uint64_t end = t0 + (uint64_t)(lat_budget * 1e9), prev = t0, t;
	while (n < lat_samples) {
		if (process_vm_writev(peer, &l, 1, &r, 1, 0) != 2)
			die("process_vm_writev");
		t = now_ns();
		samples[n++] = t - prev;
		prev = t;
		if (t > end)
			break;
	}
	for (i = 0; i < n; i++)
		sum += (double)samples[i];
	qsort(samples, n, sizeof(samples[0]), cmp_u64);
	pvm_lat = samples[n / 2] / 1e3;
	pvm_lat_min = samples[0] / 1e3;
	pvm_lat_avg = sum / n / 1e3;
	pvm_lat_n = n;
	printf("floor pvm_lat 2 %s us\n", num(pvm_lat));
	fflush(stdout);

	close(pfd[1]);	/* child's read() returns 0 */
	peer_reap();
}

/* shm_bw consumer: acknowledges every sequence number it sees. */
static void shm_consumer(void)
{
	uint64_t last = 0, v;

	for (;;) {
		v = spin_ne(&ctl->flag, last);
		if (v == STOP)
			_exit(0);
		atomic_store_explicit(&ctl->ack, v, memory_order_release);
		last = v;
	}
}

static void run_shm(void)
{
	atomic_store(&ctl->flag, 0);
	atomic_store(&ctl->ack, 0);
	shm_seq = 0;
	fflush(stdout);
	peer = fork();
	if (peer < 0)
		die("fork");
	if (!peer) {
		child_setup();
		shm_consumer();
	}
	for (int i = 0; i < NSIZES; i++) {
		result[M_SHM][i] = measure_bw(xfer_shm, sizes[i], NULL);
		printf("floor shm_bw %zu %s GB/s\n", sizes[i], num(result[M_SHM][i]));
		fflush(stdout);
	}
	atomic_store_explicit(&ctl->flag, STOP, memory_order_release);
	peer_reap();
}

/* ------------------------------------------------------------------ */
/* Ping-pong latency                                                   */

static void put_payload(unsigned char *from, size_t size)
{
	if (size <= INLINE_MAX)
		memcpy(ctl->inl, from, size);
	else
		memcpy(shbuf, from, size);
	clobber(ctl);
}

/* Responder: waits for odd flag values and answers with the next even one,
 * after copying the payload back (the reply carries the same size). */
static void pong(void)
{
	uint64_t expect = 1, v;

	for (;;) {
		v = spin_eq(&ctl->flag, expect, 1);
		if (v == STOP)
			_exit(0);
		put_payload(dst, ctl->size);
		atomic_store_explicit(&ctl->flag, expect + 1,
				      memory_order_release);
		expect += 2;
	}
}

static uint64_t pp_seq;	/* last value the parent stored (odd) */

static void ping_once(size_t size)
{
	ctl->size = size;
	put_payload(src, size);
	atomic_store_explicit(&ctl->flag, ++pp_seq, memory_order_release);
	pp_seq++;
	spin_eq(&ctl->flag, pp_seq, 0);
}

static void run_pingpong(void)
{
	atomic_store(&ctl->flag, 0);
	pp_seq = 0;
	fflush(stdout);
	peer = fork();
	if (peer < 0)
		die("fork");
	if (!peer) {
		child_setup();
		pong();
	}
	for (int s = 0; s < NSIZES; s++) {
		size_t size = sizes[s];
		uint64_t t0, t, prev, end, warm_end;
		double sum = 0;
		long n = 0, i;

		/* Warm-up: 10% of the budget. */
		t0 = now_ns();
		warm_end = t0 + (uint64_t)(lat_budget * 1e8);
		do
			ping_once(size);
		while (now_ns() < warm_end);

		prev = t0 = now_ns();
		end = t0 + (uint64_t)(lat_budget * 1e9);
		while (n < lat_samples) {
			ping_once(size);
			t = now_ns();
			samples[n++] = t - prev;
			prev = t;
			if (t > end)
				break;
		}
		for (i = 0; i < n; i++)
			sum += (double)samples[i];
		qsort(samples, n, sizeof(samples[0]), cmp_u64);
		/* One-way = half a round trip. */
		result[M_PINGPONG][s] = samples[n / 2] / 2e3;
		pp_min[s] = samples[0] / 2e3;
		pp_avg[s] = sum / n / 2e3;
		pp_n[s] = n;
		printf("floor shm_pingpong_lat %zu %s us\n", size,
		       num(result[M_PINGPONG][s]));
		fflush(stdout);
	}
	atomic_store_explicit(&ctl->flag, STOP, memory_order_release);
	peer_reap();
}

/* ------------------------------------------------------------------ */

static void measure_timer(void)
{
	uint64_t t0 = now_ns(), t;
	long n = 0;

	do {
		t = now_ns();
		n++;
	} while (t - t0 < 10000000);
	timer_ns = (double)(t - t0) / n;
}

static const char *size_name(size_t s)
{
	static char buf[4][32];
	static int k;
	char *b = buf[k++ & 3];

	if (s >= 1048576 && !(s % 1048576))
		snprintf(b, 32, "%zu MiB", s / 1048576);
	else if (s >= 1024 && !(s % 1024))
		snprintf(b, 32, "%zu KiB", s / 1024);
	else
		snprintf(b, 32, "%zu B", s);
	return b;
}

static void print_table(void)
{
	int s;

	printf("\n");
	printf("Host floor (%d CPU%s%s; GB/s = 1e9 B/s, best of %d batches;\n"
	       "latencies are medians, one-way)\n",
	       ncpu, ncpu == 1 ? "" : "s",
	       ncpu >= 2 ? ", process pairs pinned to two CPUs" : "",
	       bw_batches);
	printf("%-8s | %10s | %10s | %10s | %10s | %14s\n", "size",
	       "memcpy", "pvm copy", "pvm calls", "shm copy", "shm ping-pong");
	printf("%-8s | %10s | %10s | %10s | %10s | %14s\n", "",
	       "GB/s", "GB/s", "Mops", "GB/s", "us one-way");
	printf("---------+------------+------------+------------+------------+---------------\n");
	for (s = 0; s < NSIZES; s++)
		printf("%-8s | %10s | %10s | %10s | %10s | %14s\n",
		       size_name(sizes[s]), num(result[M_MEMCPY][s]),
		       num(result[M_PVM][s]), num(pvm_rate[s]),
		       num(result[M_SHM][s]), num(result[M_PINGPONG][s]));
	printf("\n");
	for (s = 0; s < NSIZES; s++)
		printf("shm ping-pong %-8s: median %.3f us, min %.3f us, mean %.3f us (%ld round trips)\n",
		       size_name(sizes[s]), result[M_PINGPONG][s], pp_min[s],
		       pp_avg[s], pp_n[s]);
	printf("process_vm_writev 2 B call: median %.3f us, min %.3f us, mean %.3f us (%ld calls)\n",
	       pvm_lat, pvm_lat_min, pvm_lat_avg, pvm_lat_n);
	printf("timer: clock_gettime costs %.0f ns; every latency sample includes one read.\n",
	       timer_ns);
	for (s = 0; s < NSIZES; s++)
		if (pp_avg[s] > 2 * result[M_PINGPONG][s]) {
			printf("warning: ping-pong means far above medians: other load on these CPUs? Figures are noisy.\n");
			break;
		}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uib_floor [--quick]\n"
		"Measures this host's floor for inter-process data movement and prints\n"
		"'floor METRIC SIZE VALUE UNIT' lines, then a table.\n"
		"  --quick   fewer iterations (under 3 s in total)\n");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			bw_budget = 0.04;
			bw_batches = 3;
			lat_budget = 0.06;
			lat_samples = 20000;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "uib_floor: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	{
		cpu_set_t set;

		if (!sched_getaffinity(0, sizeof(set), &set) &&
		    CPU_COUNT(&set) < ncpu)
			ncpu = CPU_COUNT(&set);
	}
	if (ncpu >= 2) {
		/* The parent takes the first CPU we may use, peers the second. */
		cpu_set_t set;
		int c, k = 0, first[2] = { 0, 1 };

		if (!sched_getaffinity(0, sizeof(set), &set))
			for (c = 0; c < CPU_SETSIZE && k < 2; c++)
				if (CPU_ISSET(c, &set))
					first[k++] = c;
		peer_cpu = first[1];
		pin(first[0]);
	}

	samples = malloc(sizeof(*samples) * MAX_SAMPLES);
	src = aligned_alloc(4096, MAXSZ);
	dst = aligned_alloc(4096, MAXSZ);
	remote = mmap(NULL, MAXSZ, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	shbuf = mmap(NULL, MAXSZ, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!samples || !src || !dst || remote == MAP_FAILED ||
	    ctl == MAP_FAILED || shbuf == MAP_FAILED)
		die("allocating buffers");
	memset(src, 0xa5, MAXSZ);
	memset(dst, 0x11, MAXSZ);
	memset(shbuf, 0x22, MAXSZ);
	memset(ctl, 0, sizeof(*ctl));
	/* Safety net: nothing here may hang a test run. */
	alarm(120);

	measure_timer();
	run_memcpy();
	run_pvm();
	run_shm();
	run_pingpong();
	print_table();
	return 0;
}
