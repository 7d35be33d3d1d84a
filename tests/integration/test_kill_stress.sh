#!/bin/bash
# DESIGN.md section 4: "a process that dies or is killed at any instant
# leaves the device and every other process working".  Rounds of a pair of
# processes moving data over RC, one of which is SIGKILLed at a random
# moment (0.2 to 1.5 s after the client started, or for perftest after its
# data phase began):
#   ib_write_bw -D 30, ib_send_bw -D 30, uib_rc_stress (rc_stress.c: RDMA
#   WRITEs and SENDs of patterned data, every message verified)
# with the server or the client as the victim.  After each kill:
#   - the survivor must not crash (nor either process report a sanitizer
#     error).  Every survivor but the ib_send_bw server must exit by itself
#     within BOUND seconds: a perftest client non-zero, with "Completion
#     with error" and status 12 (IBV_WC_RETRY_EXC_ERR) or 13 if its data
#     phase had begun; the ib_write_bw server (passive) non-zero when the
#     client's TCP connection drops; uib_rc_stress 0 (no corruption, only
#     the error completions of a gone peer) or 5 (peer died during the TCP
#     exchange).  The ib_send_bw server only receives, and IB has no
#     responder timeout: it may be left waiting, and is stopped after GRACE
#     seconds;
#   - `uibctl list` shows "contexts 0 (dead 0)  qps 0  mrs 0": everything
#     of both processes was reclaimed;
#   - a fresh `ib_write_bw -n 100` pair works.
# UIB_STRESS_ROUNDS (30) and UIB_STRESS_SEED (random, printed) change the
# run.  No new round starts after DEADLINE seconds, so that the whole test
# stays bounded on a slow (sanitizer) build.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
uib_require_cmd ib_write_bw ib_send_bw
RCS=$UIB_BUILD_DIR/tests/integration/uib_rc_stress
[ -x "$RCS" ] || uib_fail "$RCS is not built"

ROUNDS=${UIB_STRESS_ROUNDS:-30}
SEED=${UIB_STRESS_SEED:-$((($$ ^ $(date +%s)) & 32767))}
BOUND=10	# requester survivor: retry budget (~0.6 s) + margin
GRACE=2		# receive-only survivor: how long it is left waiting
DEADLINE=110	# no round starts after this (s); the test stays < 3 min
RANDOM=$SEED
echo "seed $SEED (UIB_STRESS_SEED=$SEED reproduces the schedule), $ROUNDS rounds"

uib_setup_rundir
uib_add uibk0
DEV=uibk0
ZERO=$(printf '\tcontexts 0 (dead 0)\tqps 0\tmrs 0')

PIDS=()
kill_mine() {
	local p
	for p in ${PIDS[@]+"${PIDS[@]}"}; do
		kill -KILL "$p" 2>/dev/null || true
	done
	PIDS=()
}
# Our processes go first, then lib.sh's cleanup (devices, run directory),
# which takes the exit status from $?: set -e must not stop the trap there.
trap 'rc=$?; set +e; kill_mine; (exit $rc); uib_cleanup' EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_exit PID SECONDS: 0 with $WRC set if PID ended within SECONDS,
# 1 if it is still running.
wait_exit() {
	local pid=$1 end=$(($(now_ms) + $2 * 1000))
	while kill -0 "$pid" 2>/dev/null; do
		# A zombie child counts as ended; wait reaps it below.
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
		[ "$(now_ms)" -ge $end ] && return 1
		sleep 0.05
	done
	WRC=0
	wait "$pid" 2>/dev/null || WRC=$?
	return 0
}

# stop PID: SIGTERM, then SIGKILL; reaps it.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait_exit "$1" 2 || { kill -KILL "$1" 2>/dev/null || true; wait_exit "$1" 2 || true; }
}

# fresh_pair PORT: a short ib_write_bw must work on the device.
fresh_pair() {
	local port=$1 spid cpid src=0 crc=0
	ib_write_bw -d $DEV -p "$port" -F -n 100 >"$UIB_RUN_DIR/fresh-s.log" 2>&1 &
	spid=$!
	PIDS+=("$spid")
	if ! uib_wait_listen "$port"; then
		stop "$spid"
		echo "server did not listen"
		return 1
	fi
	ib_write_bw -d $DEV -p "$port" -F -n 100 127.0.0.1 >"$UIB_RUN_DIR/fresh-c.log" 2>&1 &
	cpid=$!
	PIDS+=("$cpid")
	wait_exit "$cpid" 30 || { stop "$cpid"; crc=timeout; }
	[ "$crc" = timeout ] || crc=$WRC
	wait_exit "$spid" 10 || { stop "$spid"; src=timeout; }
	[ "$src" = timeout ] || src=$WRC
	PIDS=()
	if [ "$src" != 0 ] || [ "$crc" != 0 ] ||
	   ! grep -qE '^ *65536 +100 +[0-9]' "$UIB_RUN_DIR/fresh-c.log"; then
		echo "server exit $src, client exit $crc"
		tail -n 5 "$UIB_RUN_DIR/fresh-c.log"
		return 1
	fi
}

COMBOS=("ib_write_bw server" "ib_write_bw client" "ib_send_bw server"
	"ib_send_bw client" "rc_stress server" "rc_stress client")
failed=()
results=()
t_start=$(now_ms)
port=19300
round=0
while [ $round -lt "$ROUNDS" ]; do
	if [ $(($(now_ms) - t_start)) -ge $((DEADLINE * 1000)) ]; then
		echo "deadline of ${DEADLINE}s reached: stopping after $round rounds"
		break
	fi
	# Every combination once per six rounds, in a random order.
	if [ $((round % 6)) = 0 ]; then
		order=()
		for c in "${COMBOS[@]}"; do order+=("$RANDOM $c"); done
		mapfile -t order < <(printf '%s\n' "${order[@]}" | sort -n | cut -d' ' -f2-)
	fi
	read -r tool victim <<<"${order[round % 6]}"
	round=$((round + 1))
	port=$((port + 2))
	delay_ms=$((200 + RANDOM % 1301))
	slog=$UIB_RUN_DIR/r$round-server.log
	clog=$UIB_RUN_DIR/r$round-client.log
	case $tool in
	rc_stress)
		srv=("$RCS" -d $DEV -p "$port" -s "$round")
		cli=("$RCS" -d $DEV -p "$port" -s "$round" 127.0.0.1) ;;
	*)
		# stdbuf: the client's "#bytes" header (printed as its data
		# phase starts) reaches the log at once.
		srv=("$tool" -d $DEV -p "$port" -F -D 30)
		cli=(stdbuf -oL "$tool" -d $DEV -p "$port" -F -D 30 127.0.0.1) ;;
	esac
	"${srv[@]}" >"$slog" 2>&1 &
	spid=$!
	PIDS=("$spid")
	uib_wait_listen "$port" || true
	"${cli[@]}" >"$clog" 2>&1 &
	cpid=$!
	PIDS+=("$cpid")
	# perftest spends about a second setting up (uib_rc_stress a few ms):
	# the random moment is counted from the start of its data phase.
	if [ $tool != rc_stress ]; then
		for i in $(seq 200); do
			grep -q '#bytes' "$clog" && break
			kill -0 "$cpid" 2>/dev/null || break
			sleep 0.025
		done
	fi
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"

	if [ "$victim" = server ]; then
		vpid=$spid; spid_s=$cpid; slog_s=$clog; side=client
	else
		vpid=$cpid; spid_s=$spid; slog_s=$slog; side=server
	fi
	why=()
	# The victim must still be running to be killed at all.
	if ! kill -0 "$vpid" 2>/dev/null ||
	   [ "$(awk '{print $3}' "/proc/$vpid/stat" 2>/dev/null)" = Z ]; then
		why+=("the $victim had already ended")
	fi
	kill -KILL "$vpid" 2>/dev/null || true
	wait "$vpid" 2>/dev/null || true
	t_kill=$(now_ms)

	# Which survivors must end by themselves.
	requester=yes
	if [ "$tool" = ib_send_bw ] && [ "$side" = server ]; then
		requester=no
	fi
	if [ $requester = yes ]; then
		limit=$BOUND
	else
		limit=$GRACE
	fi
	if wait_exit "$spid_s" "$limit"; then
		src=$WRC
		how="exit $src after $(($(now_ms) - t_kill)) ms"
	else
		src=running
		stop "$spid_s"
		how="still running after ${limit}s, stopped"
		[ $requester = yes ] && why+=("survivor did not exit within ${BOUND}s")
	fi
	PIDS=()

	# A sanitizer report (an ASan build exits 1 on a crash, not 139), in
	# either process, is a crash.
	san=
	for f in "$slog" "$clog"; do
		if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$f"; then
			why+=("sanitizer report in the ${f##*-} ($(grep -m1 -oE '(ERROR: AddressSanitizer: [a-zA-Z-]+|runtime error: .*)' "$f" || true))")
			[ "$f" = "$slog_s" ] && san=1
		fi
	done

	# What the survivor said.
	said=
	case $tool in
	rc_stress)
		said=$(grep -E 'peer gone|CORRUPT|unexpected|stopped by|went away|no client|cannot connect|done:' \
			"$slog_s" | head -n 2 | tr '\n' ' ' || true)
		case $src in
		0|5) ;;
		running) ;;	# reported above
		*) [ -n "$san" ] ||
			why+=("uib_rc_stress $side exit $src (1: corruption, 3: unexpected status, >128: crash)") ;;
		esac
		grep -q CORRUPT "$slog_s" && why+=("corruption reported")
		;;
	*)
		st=$(grep -oE 'Failed status [0-9]+' "$slog_s" | head -n 1 || true)
		said=$(grep -E 'Completion with error|Failed status|Couldn|Failed|failed|Unable' \
			"$slog_s" | head -n 2 | tr '\n' ' ' || true)
		data_phase=no
		grep -q '#bytes' "$slog_s" && data_phase=yes
		if [ "$src" != running ] && [ "$src" -ge 128 ]; then
			why+=("$tool $side crashed (exit $src)")
		elif [ -n "$san" ]; then
			:	# reported above
		elif [ "$src" = 0 ]; then
			why+=("$tool $side exited 0 although its peer died")
		elif [ "$side" = client ] && [ $data_phase = yes ] && [ "$src" != running ]; then
			grep -q 'Completion with error' "$slog_s" ||
				why+=("no 'Completion with error' from the $tool client")
			case $st in
			"Failed status 12"|"Failed status 13") ;;
			*) why+=("$tool client: '${st:-no status}', expected status 12 (IBV_WC_RETRY_EXC_ERR)") ;;
			esac
		fi
		[ $side = server ] || [ $data_phase = yes ] ||
			said="(before the data phase) $said"
		;;
	esac

	# Nothing of either process is left on the device.
	list=$("$UIBCTL" list 2>&1 || true)
	if ! grep -qF "$ZERO" <<<"$list"; then
		why+=("uibctl list: $(grep contexts <<<"$list" | tr -s '\t' ' ' || true)")
	fi
	# And the device still works.
	if ! fresh=$(fresh_pair $((port + 1))); then
		why+=("fresh ib_write_bw failed: $(tr '\n' ' ' <<<"$fresh" || true)")
	fi

	line="round $round: $tool, SIGKILL $victim at ${delay_ms} ms; $side $how; ${said:-(nothing said)}"
	if [ ${#why[@]} -gt 0 ]; then
		line+=" -- FAIL: $(printf '%s; ' "${why[@]}")"
		failed+=("$round")
		echo "--- round $round survivor ($side) log:"
		tail -n 6 "$slog_s"
	else
		line+=" -- ok"
	fi
	echo "$line"
	results+=("$line")
done

echo
echo "=== $round rounds in $(( ($(now_ms) - t_start) / 1000 )) s (seed $SEED)"
printf '%s\n' "${results[@]}"
[ $round -ge 12 ] || failed+=("only $round rounds ran")
if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "kill stress: rounds failed: ${failed[*]}"
fi
uib_pass "$round kill rounds: survivors ended or waited cleanly, device reclaimed and working"
