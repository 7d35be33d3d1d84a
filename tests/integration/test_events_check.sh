#!/bin/bash
# Completion channels and async events checked from inside one process
# (uib_events_check, see events_check.c) on an isolated device: once
# without libuib-preload.so (the stock ibv_create_comp_channel() must fail
# with EBADF) and once with it (it must give a working channel).  Every
# check must print "ok"; the device must be left with nothing in use.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
EC=$UIB_BUILD_DIR/tests/integration/uib_events_check
PRELOAD=$UIB_BUILD_DIR/providers/uib/libuib-preload.so
[ -x "$EC" ] || uib_fail "$EC is not built"
[ -f "$PRELOAD" ] || uib_fail "$PRELOAD is not built"

uib_setup_rundir
uib_add uibe0

# The checks this run must report as ok (a check that silently did not run
# is a failure too).
COMMON=(uibdv_channel_null_context uibdv_create_comp_channel channel_fd_quiet
	create_cq_on_channel unarmed_no_event req_notify_cq cq_event
	cq_event_completion arm_is_one_shot send_cq_event
	solicited_arm_unsolicited_send solicited_arm_solicited_send
	ack_and_destroy_cq destroy_channel_busy destroy_channel
	srq_limit_not_early srq_limit_event srq_limit_disarmed srq_limit_once
	bad_rkey_rem_access_err qp_access_err_event responder_qp_in_error)

failed=()
run_case() {	# NAME EXTRA_CHECK [env...] -- args
	local name=$1 extra=$2 rc=0 log=$UIB_RUN_DIR/$1.log c
	shift 2
	local -a envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	echo "=== $name"
	env ${envs[@]+"${envs[@]}"} timeout 60 "$EC" -d uibe0 "$@" >"$log" 2>&1 ||
		rc=$?
	cat "$log"
	if [ $rc != 0 ]; then
		echo "--- $name: exit $rc" >&2
		failed+=("$name")
		return
	fi
	for c in "${COMMON[@]}" "$extra"; do
		if ! grep -qx "ok $c" "$log"; then
			echo "--- $name: no 'ok $c'" >&2
			failed+=("$name:$c")
		fi
	done
	grep -qx "$(( ${#COMMON[@]} + 1 )) passed, 0 failed" "$log" ||
		failed+=("$name:count")
}

run_case no-preload stock_create_comp_channel --
run_case preloaded preloaded_create_comp_channel \
	"LD_PRELOAD=${LD_PRELOAD:+$LD_PRELOAD:}$PRELOAD" -- --preloaded

# Everything the two runs made is gone.
list=$("$UIBCTL" list)
echo "$list"
grep -qF "$(printf '\tcontexts 0 (dead 0)\tqps 0\tmrs 0')" <<<"$list" ||
	failed+=("leftovers")

if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "events check: ${failed[*]}"
fi
uib_pass "completion channels and async events"
