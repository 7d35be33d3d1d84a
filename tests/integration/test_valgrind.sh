#!/bin/bash
# The provider under valgrind (memcheck): rdma-core's pingpongs (RC, UD,
# SRQ; RC also with completion channels through libuib-preload.so),
# ib_write_bw, uib_rc_stress and uib_events_check, both sides of each pair
# under valgrind.  Any memcheck error fails (--error-exitcode=99; leaks are
# not errors here), except perftest's own: ib_write_bw sends and branches on
# stack bytes it never initialised, so its errors are accepted only when
# valgrind traces every uninitialised value to a stack allocation inside
# /usr/bin/ib_write_bw and no frame is in a uib library.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
command -v valgrind >/dev/null 2>&1 || uib_skip "valgrind is not installed"
uib_require_cmd ibv_rc_pingpong ibv_ud_pingpong ibv_srq_pingpong ib_write_bw
RCS=$UIB_BUILD_DIR/tests/integration/uib_rc_stress
EC=$UIB_BUILD_DIR/tests/integration/uib_events_check
PRELOAD=$UIB_BUILD_DIR/providers/uib/libuib-preload.so
for f in "$RCS" "$EC" "$PRELOAD"; do
	[ -e "$f" ] || uib_fail "$f is not built"
done
case ${LD_PRELOAD:-} in
*libasan*) uib_skip "valgrind cannot run sanitizer builds" ;;
esac

uib_setup_rundir
uib_add uibv0
VG=(valgrind --error-exitcode=99 --errors-for-leak-kinds=none -q)

failed=()

# Valgrind must be able to fail here at all: a program that branches on an
# uninitialised value must make it exit 99.
if command -v cc >/dev/null 2>&1; then
	printf '%s\n' '#include <stdlib.h>' \
		'int main(void) { int *p = malloc(sizeof(*p)); if (*p == 42) return 3; return 0; }' \
		>"$UIB_RUN_DIR/canary.c"
	cc -O0 -g -o "$UIB_RUN_DIR/canary" "$UIB_RUN_DIR/canary.c" ||
		uib_fail "cannot build the canary"
	rc=0
	timeout 60 "${VG[@]}" --log-file="$UIB_RUN_DIR/vg-canary.log" \
		"$UIB_RUN_DIR/canary" || rc=$?
	if [ $rc != 99 ]; then
		cat "$UIB_RUN_DIR/vg-canary.log"
		uib_fail "valgrind canary exited $rc, expected 99: errors would go unseen"
	fi
	echo "canary: valgrind reports an uninitialised read (exit 99), as it must"
fi

# perftest_only LOG: true if every error in LOG is perftest's own (see
# above); prints the others.
perftest_only() {
	awk '
	function flush() {
		if (blk == "")
			return
		if (blk ~ /^Warning:/)
			;
		else if (blk !~ /uib/ &&
			 blk ~ /created by a stack allocation\n *at 0x[0-9A-F]+: \?\?\? \(in \/usr\/bin\/ib_[a-z_]+\)/)
			own++
		else {
			bad++
			printf "%s\n", blk
		}
		blk = ""
	}
	/^==[0-9]+== *$/ { flush(); next }
	{ sub(/^==[0-9]+== /, ""); blk = blk $0 "\n" }
	END {
		flush()
		printf "(%d error(s) of perftest itself accepted)\n", own
		exit bad ? 1 : 0
	}' "$1"
}

# check NAME SIDE RC LOG [perftest]: judges one valgrind run.
check() {
	local name=$1 side=$2 rc=$3 log=$4 pt=${5:-}
	if [ "$rc" = 0 ] && [ ! -s "$log" ]; then
		return 0
	fi
	if [ "$rc" = 99 ] && [ -n "$pt" ] && perftest_only "$log"; then
		return 0
	fi
	echo "--- $name $side: exit $rc; valgrind log $log:" >&2
	head -n 80 "$log" >&2
	failed+=("$name-$side")
	return 1
}

# vg_pair NAME PORT [perftest] [VAR=VALUE...] -- COMMAND...: both sides
# under valgrind, with VAR=VALUE in their environment (not valgrind's
# command: it does not follow an exec); the client gets 127.0.0.1 too.
vg_pair() {
	local name=$1 port=$2 pt= spid cpid src=0 crc=0 side
	local -a envs=() extra=()
	shift 2
	if [ "$1" = perftest ]; then
		pt=1
		extra=(--track-origins=yes)
		shift
	fi
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local slog=$UIB_RUN_DIR/vg-$name-server.log clog=$UIB_RUN_DIR/vg-$name-client.log
	echo "=== $name: ${envs[*]} $* (valgrind, both sides)"
	timeout 150 env ${envs[@]+"${envs[@]}"} "${VG[@]}" ${extra[@]+"${extra[@]}"} \
		--log-file="$slog" "$@" >"$UIB_RUN_DIR/$name-server.out" 2>&1 &
	spid=$!
	timeout 150 bash -c "$UIB_WAIT_LISTEN" wait-listen "$port" \
		env ${envs[@]+"${envs[@]}"} "${VG[@]}" ${extra[@]+"${extra[@]}"} \
		--log-file="$clog" "$@" 127.0.0.1 \
		>"$UIB_RUN_DIR/$name-client.out" 2>&1 &
	cpid=$!
	wait $cpid || crc=$?
	wait $spid || src=$?
	for side in server client; do
		tail -n 2 "$UIB_RUN_DIR/$name-$side.out" | sed "s/^/  $side: /"
	done
	if { [ $src != 0 ] && [ $src != 99 ]; } || { [ $crc != 0 ] && [ $crc != 99 ]; }; then
		echo "--- $name: server exit $src, client exit $crc" >&2
		tail -n 10 "$UIB_RUN_DIR/$name-server.out" "$UIB_RUN_DIR/$name-client.out" >&2
		failed+=("$name")
		return
	fi
	check "$name" server $src "$slog" $pt || true
	check "$name" client $crc "$clog" $pt || true
}

vg_pair rc_pingpong 19401 -- ibv_rc_pingpong -d uibv0 -p 19401 -n 50
vg_pair rc_pingpong_events 19402 "LD_PRELOAD=$PRELOAD" -- \
	ibv_rc_pingpong -d uibv0 -p 19402 -n 50 -e
vg_pair ud_pingpong 19403 -- ibv_ud_pingpong -d uibv0 -p 19403 -n 50 -g 0
vg_pair srq_pingpong 19404 -- ibv_srq_pingpong -d uibv0 -p 19404 -n 20
vg_pair write_bw 19405 perftest -- ib_write_bw -d uibv0 -p 19405 -F -n 50
vg_pair rc_stress 19406 -- "$RCS" -d uibv0 -p 19406 -n 300

echo "=== events_check (valgrind)"
rc=0
timeout 150 "${VG[@]}" --log-file="$UIB_RUN_DIR/vg-events.log" "$EC" -d uibv0 \
	>"$UIB_RUN_DIR/events.out" 2>&1 || rc=$?
tail -n 1 "$UIB_RUN_DIR/events.out"
check events_check process $rc "$UIB_RUN_DIR/vg-events.log" || true

# The runs must really have moved data (a valgrind that ran nothing passes
# nothing).
grep -q '^50 iters in' "$UIB_RUN_DIR/rc_pingpong-client.out" || failed+=("rc_pingpong-output")
grep -q '^50 iters in' "$UIB_RUN_DIR/rc_pingpong_events-client.out" || failed+=("rc_pingpong_events-output")
grep -q '^50 iters in' "$UIB_RUN_DIR/ud_pingpong-client.out" || failed+=("ud_pingpong-output")
grep -q '^20 iters in' "$UIB_RUN_DIR/srq_pingpong-client.out" || failed+=("srq_pingpong-output")
grep -qE '^ *65536 +50 +[0-9]' "$UIB_RUN_DIR/write_bw-client.out" || failed+=("write_bw-output")
grep -q 'done: 300 messages' "$UIB_RUN_DIR/rc_stress-server.out" || failed+=("rc_stress-output")
grep -q ' 0 failed$' "$UIB_RUN_DIR/events.out" || failed+=("events_check-output")

if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "valgrind: ${failed[*]}"
fi
uib_pass "no memcheck errors in the provider (pingpongs, ib_write_bw, rc_stress, events)"
