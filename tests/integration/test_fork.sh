#!/bin/bash
# fork() after ibv_reg_mr keeps fork's meaning for registered memory.
source "$(dirname "$0")/lib.sh"

uib_require_root
[ -e /sys/module/ib_core ] && uib_skip "kernel RDMA (ib_core) is loaded"
uib_setup_rundir
uib_add uibf0
timeout 30 "$UIB_BUILD_DIR/tests/integration/uib_fork_check" uibf0 ||
	uib_fail "uib_fork_check"
uib_pass "fork after ibv_reg_mr"
