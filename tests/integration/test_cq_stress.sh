#!/bin/bash
# Many producers, one CQ (issue 7, finding 2): uib_cq_stress (cq_stress.c)
# with 4 client processes, 8 client processes and 8 client threads, each
# client on its own RC QP, all sending SEND_WITH_IMMs into ONE receive CQ of
# 255 entries in a server process, paced by credits so that the CQ can never
# be legitimately full.  Every (client, seq) must arrive exactly once, in
# order, with no error completion and no async event (no false CQ_ERR),
# 3 million completions in all (1.8 million in the sanitizer build).
#
#   UIB_SEED=N  base seed (default 1; each case adds its index)
#   UIB_CQ_STRESS_M=N  messages per client (overrides the defaults)
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
CS=$UIB_BUILD_DIR/tests/integration/uib_cq_stress
[ -x "$CS" ] || uib_fail "$CS is not built"

# The sanitizer pass of tests/run.sh preloads libasan; a build configured
# with UIB_SANITIZE is as slow even when run by hand.
asan=0
case "${LD_PRELOAD:-}" in *libasan*) asan=1 ;; esac
grep -qs '^UIB_SANITIZE:BOOL=ON' "$UIB_BUILD_DIR/CMakeCache.txt" && asan=1
if [ $asan = 1 ]; then
	M4=150000 M8=75000 TO=200
else
	M4=250000 M8=125000 TO=100
fi
if [ -n "${UIB_CQ_STRESS_M:-}" ]; then
	M4=$UIB_CQ_STRESS_M M8=$UIB_CQ_STRESS_M
fi
seed=${UIB_SEED:-1}

uib_setup_rundir
uib_add uibcq0

# name | uib_cq_stress options
CASES=(
	"4-processes | -n 4 -m $M4"
	"8-processes | -n 8 -m $M8"
	"8-threads   | -n 8 --threads -m $M8"
)
passed=0 failed=0 i=0 total=0
t_start=$SECONDS
for c in "${CASES[@]}"; do
	name=${c%%|*}
	name=${name%"${name##*[![:space:]]}"}
	read -r -a args <<<"${c#*|}"
	i=$((i + 1))
	s=$((seed + i))
	log=$UIB_RUN_DIR/$name.log
	echo "=== $name: uib_cq_stress -d uibcq0 ${args[*]} -s $s"
	t0=$SECONDS
	rc=0
	timeout $((TO + 20)) "$CS" -d uibcq0 "${args[@]}" -s "$s" \
		--timeout "$TO" >"$log" 2>&1 || rc=$?
	ok=$(grep -E '^server\[[0-9]+\]: cq_stress: OK ' "$log" || true)
	if [ $rc = 0 ] && [ -n "$ok" ]; then
		echo "${ok#*: } ($((SECONDS - t0)) s)"
		n=$(sed -E 's/.* = ([0-9]+) completions.*/\1/' <<<"$ok")
		total=$((total + n))
		passed=$((passed + 1))
	else
		echo "FAIL: $name (exit $rc, seed $s):" >&2
		grep -vE '^$' "$log" | tail -n 25 >&2
		failed=$((failed + 1))
	fi
done
echo "$total completions checked in $((SECONDS - t_start)) s"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
