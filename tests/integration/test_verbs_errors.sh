#!/bin/bash
# Bad input and error completions (uib_verbs_errors) on a device of its own:
# reg_mr/dealloc_pd/query_port/create_qp/modify_qp/post_* argument checks,
# then remote and local access errors, length errors, RNR and retry
# exhaustion, flushing, between two RC QPs of one process; then the
# issue-7 hardening regressions (verbs_hardening.c), port down included.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
VE=$UIB_BUILD_DIR/tests/integration/uib_verbs_errors
[ -x "$VE" ] || uib_fail "$VE is not built"

uib_setup_rundir
uib_add uibv0

rc=0
UIB_UIBCTL=$UIB_BUILD_DIR/providers/uib/uibctl timeout 120 "$VE" -d uibv0 >"$UIB_RUN_DIR/verbs_errors.log" 2>&1 || rc=$?
cat "$UIB_RUN_DIR/verbs_errors.log"
summary=$(tail -n 1 "$UIB_RUN_DIR/verbs_errors.log")
if ! [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
	uib_fail "uib_verbs_errors did not finish (exit $rc)"
fi
[ $rc = 0 ] || uib_fail "uib_verbs_errors: $summary (exit $rc)"
[ "${BASH_REMATCH[1]}" -gt 0 ] || uib_fail "uib_verbs_errors ran no checks"
uib_pass "uib_verbs_errors: $summary"
