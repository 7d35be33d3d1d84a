#!/bin/bash
# UD features for IPoIB (uib_ud_check), between processes on one device and
# across two devices: multicast fan-out, detach, Q_Key, self-loopback
# blocking, reclaim of a killed member, bad input.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
UD=$UIB_BUILD_DIR/tests/integration/uib_ud_check
[ -x "$UD" ] || uib_fail "$UD is not built"

uib_setup_rundir
uib_add uibud0

rc=0
timeout 150 "$UD" -d uibud0 -s "${UIB_SEED:-1}" >"$UIB_RUN_DIR/ud.log" 2>&1 || rc=$?
cat "$UIB_RUN_DIR/ud.log"
summary=$(tail -n 1 "$UIB_RUN_DIR/ud.log")
[[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]] ||
	uib_fail "uib_ud_check did not finish (exit $rc)"
[ $rc = 0 ] || uib_fail "uib_ud_check: $summary (exit $rc)"
[ "${BASH_REMATCH[1]}" -gt 0 ] || uib_fail "uib_ud_check ran no checks"
uib_pass "uib_ud_check: $summary"
