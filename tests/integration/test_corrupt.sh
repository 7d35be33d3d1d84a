#!/bin/bash
# A process that scribbles over its own queue memory never crashes, hangs
# or corrupts its peers (issue 7, finding 4): uib_corrupt_check
# (corrupt_check.c), 50 seeded rounds, fresh processes each round: a
# corrupter writes random and targeted values into its own RQ/CQ headers,
# RQ WQEs and CQEs while two peers send to it (RC SENDs small enough to
# ride inline in the CQE and larger, SEND_WITH_IMM, RDMA WRITE(+IMM), UD
# SENDs).  Peers must exit 0 in time with their canaries, guard pages and
# stack intact (error completions and events are fine); the corrupter's
# own canaries around its MR must be intact too (checked by itself, or by
# the launcher when it hangs).  The corrupter's crashes are not counted.
#
#   UIB_SEED=N  seed (default 1)
#   UIB_CORRUPT_ROUNDS=N  rounds (default 50)
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
CC=$UIB_BUILD_DIR/tests/integration/uib_corrupt_check
[ -x "$CC" ] || uib_fail "$CC is not built"

asan=0
case "${LD_PRELOAD:-}" in *libasan*) asan=1 ;; esac
grep -qs '^UIB_SANITIZE:BOOL=ON' "$UIB_BUILD_DIR/CMakeCache.txt" && asan=1
if [ $asan = 1 ]; then
	rounds=${UIB_CORRUPT_ROUNDS:-50} ms=400 pt=60
else
	rounds=${UIB_CORRUPT_ROUNDS:-50} ms=300 pt=20
fi
seed=${UIB_SEED:-1}

uib_setup_rundir
uib_add uibcc0

log=$UIB_RUN_DIR/corrupt.log
echo "=== uib_corrupt_check -d uibcc0 -r $rounds -s $seed --ms $ms --peer-timeout $pt"
t0=$SECONDS
rc=0
timeout $((rounds * (pt + 8) + 30)) "$CC" -d uibcc0 -r "$rounds" -s "$seed" \
	--ms "$ms" --peer-timeout "$pt" >"$log" 2>&1 || rc=$?
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
# Failing rounds, in full; a summary of the others.
grep -E 'FAIL|CANARY|HANG|ERROR: AddressSanitizer|runtime error|^peer\[[0-9]+\]: ' "$log" | grep -v ': intact: ' | head -n 60 >&2 || true
echo "peers: $(grep -c 'intact:' "$log") intact;" \
	"corrupter: $(grep -c 'survived:' "$log") survived," \
	"$(grep -c 'corrupter hung' "$log") hung, $(grep -cE 'corrupter (exit|signal)' "$log") crashed/failed" \
	"(not counted); error completions seen: $(grep -oE '(remote [a-z ]+error|transport retry counter exceeded|RNR retry counter exceeded|Work Request Flushed Error) [0-9]+' "$log" | awk '{n += $NF} END {print n + 0}')"
echo "($((SECONDS - t0)) s, seed $seed)"
if [ -z "$summary" ]; then
	echo "uib_corrupt_check exited $rc without a summary:" >&2
	tail -n 20 "$log" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
echo "$summary"
[ $rc = 0 ] && [ "${summary#* passed, }" = "0 failed" ]
