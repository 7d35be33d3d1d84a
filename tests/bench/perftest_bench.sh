#!/bin/bash
# SPDX-License-Identifier: MIT
#
# perftest over uib, beside the host's physical floor measured in the same run.
#
#   sudo bash tests/bench/perftest_bench.sh [--quick] [--no-pin] [--logs DIR]
#
# Makes a private uib device (uibb0) in a temporary run directory, runs
# uib_floor once, then perftest server/client pairs on loopback, and prints
# one table: test | size | ours | floor (metric) | ours/floor | shm copy bw |
# ours/shm.
# Latency rows compare perftest's t_typical with the shared-memory ping-pong
# one-way latency at the same size; bandwidth rows compare perftest's
# "BW average" with the process_vm_writev copy bandwidth at the same size.
# See tests/bench/README.md.
#
# Benchmarks never fail on speed: a perftest run that fails or times out is
# shown as FAILED and the run goes on.  The exit status is 0 unless setup
# failed (1), or 77 (skip) without root or perftest.
#
# Environment: UIB_BUILD_DIR (default: <repo>/build), UIBCTL, UIB_FLOOR.

set -uo pipefail

QUICK=0
PIN=1
KEEP_LOGS=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--no-pin) PIN=0 ;;
	--logs) KEEP_LOGS=${2:?--logs needs a directory}; shift ;;
	--logs=*) KEEP_LOGS=${1#--logs=} ;;
	-h|--help)
		sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//'
		exit 0 ;;
	*) echo "perftest_bench: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (uib devices live in /dev/infiniband)"; exit 77; }
for c in ib_send_lat ib_write_lat ib_read_lat ib_send_bw ib_write_bw ib_read_bw timeout awk; do
	command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed"; exit 77; }
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${UIB_BUILD_DIR:=$HERE/../../build}"
UIB_BUILD_DIR=$(cd "$UIB_BUILD_DIR" 2>/dev/null && pwd) || {
	echo "perftest_bench: build directory not found (set UIB_BUILD_DIR)" >&2; exit 1; }
: "${UIBCTL:=$UIB_BUILD_DIR/providers/uib/uibctl}"
[ -x "$UIBCTL" ] || { echo "perftest_bench: no uibctl at $UIBCTL (build first)" >&2; exit 1; }

DEV=uibb0
if [ $QUICK = 1 ]; then
	RUN_TIMEOUT=6		# seconds per perftest run
	BUDGET=75		# seconds for all perftest runs
	LAT_N=200; LAT_N_BIG=50
	BW_N=1000; BW_N_MID=500; BW_N_BIG=100
	RATE_N=5000
else
	RUN_TIMEOUT=20
	BUDGET=270
	LAT_N=1000; LAT_N_BIG=200
	BW_N=5000; BW_N_MID=2000; BW_N_BIG=500
	RATE_N=20000
fi
SIZES=(2 4096 65536 1048576)

RUN_DIR=
PIDS=()
# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
		if [ -e "$RUN_DIR/dev/$DEV.state" ] || [ -d "$RUN_DIR/sys" ]; then
			"$UIBCTL" --run-dir "$RUN_DIR" del "$DEV" >/dev/null 2>&1 ||
				echo "perftest_bench: warning: 'uibctl del $DEV' failed" >&2
		fi
		if [ -n "$KEEP_LOGS" ] && [ -d "$RUN_DIR/logs" ]; then
			mkdir -p "$KEEP_LOGS" && cp -r "$RUN_DIR/logs/." "$KEEP_LOGS/" &&
				echo "logs kept in $KEEP_LOGS"
		fi
		rm -rf "$RUN_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

RUN_DIR=$(mktemp -d /tmp/uibbench.XXXXXX) || exit 1
mkdir -p "$RUN_DIR/logs"

"$UIBCTL" --run-dir "$RUN_DIR" add "$DEV" || { echo "perftest_bench: uibctl add $DEV failed" >&2; exit 1; }
ENV_LINES=$("$UIBCTL" --run-dir "$RUN_DIR" env) || { echo "perftest_bench: uibctl env failed" >&2; exit 1; }
eval "$ENV_LINES"		# export SYSFS_PATH=... [export RDMAV_DRIVERS=...]
echo "device $DEV in $RUN_DIR (SYSFS_PATH=$SYSFS_PATH${RDMAV_DRIVERS:+, RDMAV_DRIVERS=$RDMAV_DRIVERS})"
if command -v ibv_devinfo >/dev/null 2>&1; then
	timeout -k 2 10 ibv_devinfo -d "$DEV" >"$RUN_DIR/logs/ibv_devinfo.log" 2>&1 ||
		echo "warning: ibv_devinfo -d $DEV failed: $(tail -n 1 "$RUN_DIR/logs/ibv_devinfo.log")"
fi

# ---------------------------------------------------------------- floor
: "${UIB_FLOOR:=$UIB_BUILD_DIR/tests/bench/uib_floor}"
if [ ! -x "$UIB_FLOOR" ]; then
	# Not built by this tree (yet): build it on the spot, it is one file.
	UIB_FLOOR=$RUN_DIR/uib_floor
	${CC:-cc} -std=gnu11 -O2 -o "$UIB_FLOOR" "$HERE/floor.c" ||
		{ echo "perftest_bench: cannot build uib_floor" >&2; exit 1; }
fi
FLOOR_ARGS=()
[ $QUICK = 1 ] && FLOOR_ARGS=(--quick)
echo
echo "== host floor ($UIB_FLOOR ${FLOOR_ARGS[*]})"
timeout -k 2 60 "$UIB_FLOOR" "${FLOOR_ARGS[@]}" >"$RUN_DIR/floor.txt" 2>&1 ||
	{ cat "$RUN_DIR/floor.txt"; echo "perftest_bench: uib_floor failed" >&2; exit 1; }
grep -v '^floor ' "$RUN_DIR/floor.txt"
declare -A FLOOR=()
while read -r tag metric size value _unit; do
	[ "$tag" = floor ] && FLOOR["$metric $size"]=$value
done <"$RUN_DIR/floor.txt"

# ---------------------------------------------------------------- perftest
PORT=$((20000 + RANDOM % 20000))
START=$SECONDS

# Server and client are pinned to two different CPUs, as uib_floor pins its
# pairs: two spinning pollers left to share one CPU (when something else
# runs) see scheduler ticks (~4 ms) instead of the transport.
PIN_S=() PIN_C=()
if [ $PIN = 1 ] && command -v taskset >/dev/null 2>&1; then
	read -r CPU_A CPU_B < <(taskset -pc $$ 2>/dev/null | sed 's/.*: *//' |
		awk -F, '{ for (i = 1; i <= NF; i++) { n = split($i, r, "-");
			for (c = r[1]; c <= (n > 1 ? r[2] : r[1]); c++) l[k++] = c }
			if (k >= 2) print l[0], l[1] }')
	if [ -n "${CPU_B:-}" ]; then
		PIN_S=(taskset -c "$CPU_A")
		PIN_C=(taskset -c "$CPU_B")
	fi
fi

# Is anything listening on TCP port $1?  (/proc, so no ss/netstat needed)
listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# run_pair ID BINARY ARGS...: server first, client on 127.0.0.1, both
# bounded.  Sets RC_TXT ("" on success, else the reason) and leaves the
# output in $RUN_DIR/logs/ID.{server,client}.
run_pair() {
	local id=$1 bin=$2 t left spid crc src i
	shift 2
	local log=$RUN_DIR/logs/$id
	RC_TXT=
	left=$((BUDGET - (SECONDS - START)))
	if [ $left -lt 3 ]; then
		RC_TXT="skipped: time budget spent"
		return 1
	fi
	t=$RUN_TIMEOUT
	[ $t -gt $left ] && t=$left
	PORT=$((PORT + 1))
	timeout -k 2 "$t" "${PIN_S[@]}" "$bin" "$@" -p "$PORT" >"$log.server" 2>&1 &
	spid=$!
	PIDS=("$spid")
	for ((i = 0; i < 100 && i < t * 20; i++)); do	# up to 5 s for the listen
		listening "$PORT" && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	if ! kill -0 "$spid" 2>/dev/null; then
		src=0; wait "$spid" || src=$?
		PIDS=()
		RC_TXT="server exit $src before listening: $(lastline "$log.server")"
		return 1
	fi
	# The client is bounded by the run timeout and by what is left of the budget.
	left=$((BUDGET - (SECONDS - START)))
	[ $t -gt $left ] && t=$left
	[ $t -lt 2 ] && t=2
	timeout -k 2 "$t" "${PIN_C[@]}" "$bin" "$@" -p "$PORT" 127.0.0.1 >"$log.client" 2>&1
	crc=$?
	for ((i = 0; i < 60; i++)); do		# the server's report follows
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	kill "$spid" 2>/dev/null
	src=0; wait "$spid" || src=$?
	PIDS=()
	if [ $crc = 124 ] || [ $crc = 137 ]; then
		RC_TXT="client timed out after ${t}s: $(lastline "$log.client")"
	elif [ $crc != 0 ]; then
		RC_TXT="client exit $crc: $(lastline "$log.client")"
	elif [ $src != 0 ]; then
		RC_TXT="server exit $src: $(lastline "$log.server")"
	fi
	[ -z "$RC_TXT" ]
}

lastline() {
	local l
	l=$(grep -v '^[ -]*$' "$1" 2>/dev/null | tail -n 1 | tr -s ' \t' ' ')
	l=${l# }
	echo "${l:-no output}"
}

# perftest result lines follow a header naming the columns.
parse_lat() {	# t_typical[usec], 5th column
	awk '/t_typical\[usec\]/ { h = 1; next }
	     h && $1 ~ /^[0-9]+$/ && NF >= 5 { print $5; exit }' "$@" 2>/dev/null
}
parse_bw() {	# "BW_average_MB/s MsgRate_Mpps"; MB/sec is 2^20 B/s
	awk '/BW average\[MB\/sec\]/ { h = 1; next }
	     h && $1 ~ /^[0-9]+$/ && NF >= 5 { print $4, $5; exit }' "$@" 2>/dev/null
}

# "Max inline data : N[B]" from perftest's parameter banner.
max_inline() {
	sed -n 's/.*Max inline data *: *\([0-9]*\).*/\1/p' "$1" 2>/dev/null | head -n 1
}

INLINE_IGNORED=0
ROWS=()		# test|size|ours|floor|metric|ratio|shm|ours/shm
NOTES=()
add_row() { ROWS+=("$1|$2|$3|$4|$5|$6|$7|${8:-}"); }

ratio() {	# ours floor -> ours/floor
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
fmt() {		# about four significant digits
	awk -v v="$1" 'BEGIN { d = 3; for (x = v; x > 0 && x < 1 && d < 8; x *= 10) d++;
		printf "%.*f", d, v }'
}
floor_of() { echo "${FLOOR[$1 $2]:-}"; }

size_label() {
	case $1 in
	1048576) echo "1 MiB" ;;
	65536) echo "64 KiB" ;;
	4096) echo "4 KiB" ;;
	*) echo "$1 B" ;;
	esac
}

progress() { printf '  %-34s %s\n' "$1" "$2"; }

# lat_test LABEL BIN SIZE ITERS [extra args]
lat_test() {
	local label=$1 bin=$2 size=$3 n=$4 id v fl
	shift 4
	id="${label// /_}-$size"; id=${id//[()]/}
	fl=$(floor_of shm_pingpong_lat "$size")
	if run_pair "$id" "$bin" -d "$DEV" -i 1 -F -s "$size" -n "$n" "$@" &&
	   v=$(parse_lat "$RUN_DIR/logs/$id.client" "$RUN_DIR/logs/$id.server") &&
	   [ -n "$v" ]; then
		if [[ " $* " == *" -I "* ]] && [ "$(max_inline "$RUN_DIR/logs/$id.client")" = 0 ]; then
			# perftest sets inline to 0 on devices it does not know,
			# whatever -I says: this row is not an inline figure.
			label="$label*"
			INLINE_IGNORED=1
		fi
		add_row "$label" "$size" "$(fmt "$v") us" "${fl:+$(fmt "$fl") us}" \
			shm_pingpong_lat "$(ratio "$v" "$fl")" ""
		progress "$label -s $size" "$v us"
	else
		[ -z "$RC_TXT" ] && RC_TXT="no result line in perftest output"
		local what=FAILED
		[[ $RC_TXT == skipped* ]] && what=SKIPPED
		add_row "$label" "$size" "$what" "${fl:+$(fmt "$fl") us}" shm_pingpong_lat "-" ""
		NOTES+=("$label -s $size: $RC_TXT")
		progress "$label -s $size" "$what ($RC_TXT)"
	fi
}

# bw_test LABEL BIN SIZE ITERS [extra args]
bw_test() {
	local label=$1 bin=$2 size=$3 n=$4 id r mbs gbs fl sh
	shift 4
	id="${label// /_}-$size"; id=${id//[()]/}
	fl=$(floor_of pvm_bw "$size")
	sh=$(floor_of shm_bw "$size")
	if run_pair "$id" "$bin" -d "$DEV" -i 1 -F -s "$size" -n "$n" "$@" &&
	   r=$(parse_bw "$RUN_DIR/logs/$id.client" "$RUN_DIR/logs/$id.server") &&
	   [ -n "$r" ]; then
		mbs=${r%% *}
		gbs=$(awk -v m="$mbs" 'BEGIN { printf "%.6f", m * 1048576 / 1e9 }')
		add_row "$label" "$size" "$(fmt "$gbs") GB/s" "${fl:+$(fmt "$fl") GB/s}" \
			pvm_bw "$(ratio "$gbs" "$fl")" "${sh:+$(fmt "$sh") GB/s}" \
			"$(ratio "$gbs" "$sh")"
		progress "$label -s $size" "$mbs MiB/s = $(fmt "$gbs") GB/s"
	else
		[ -z "$RC_TXT" ] && RC_TXT="no result line in perftest output"
		local what=FAILED
		[[ $RC_TXT == skipped* ]] && what=SKIPPED
		add_row "$label" "$size" "$what" "${fl:+$(fmt "$fl") GB/s}" pvm_bw "-" \
			"${sh:+$(fmt "$sh") GB/s}" "-"
		NOTES+=("$label -s $size: $RC_TXT")
		progress "$label -s $size" "$what ($RC_TXT)"
	fi
}

# rate_test LABEL BIN SIZE ITERS [extra args]: message rate (Mpps column)
# against process_vm_writev calls per second for 2 bytes.
rate_test() {
	local label=$1 bin=$2 size=$3 n=$4 id r mpps fl
	shift 4
	id="${label// /_}-$size"; id=${id//[()]/}
	fl=$(floor_of pvm_rate 2)
	if run_pair "$id" "$bin" -d "$DEV" -i 1 -F -s "$size" -n "$n" "$@" &&
	   r=$(parse_bw "$RUN_DIR/logs/$id.client" "$RUN_DIR/logs/$id.server") &&
	   [ -n "$r" ]; then
		mpps=${r##* }
		add_row "$label" "$size" "$(fmt "$mpps") Mpps" "${fl:+$(fmt "$fl") Mops}" \
			"pvm_rate@2B" "$(ratio "$mpps" "$fl")" ""
		progress "$label -s $size" "$mpps Mpps"
	else
		[ -z "$RC_TXT" ] && RC_TXT="no result line in perftest output"
		local what=FAILED
		[[ $RC_TXT == skipped* ]] && what=SKIPPED
		add_row "$label" "$size" "$what" "${fl:+$(fmt "$fl") Mops}" "pvm_rate@2B" "-" ""
		NOTES+=("$label -s $size: $RC_TXT")
		progress "$label -s $size" "$what ($RC_TXT)"
	fi
}

iters_for() {	# KIND SIZE
	case $1 in
	lat) [ "$2" -ge 1048576 ] && echo $LAT_N_BIG || echo $LAT_N ;;
	bw) if [ "$2" -ge 1048576 ]; then echo $BW_N_BIG
	    elif [ "$2" -ge 65536 ]; then echo $BW_N_MID
	    else echo $BW_N; fi ;;
	esac
}

echo
PIN_TXT="not pinned"
[ ${#PIN_S[@]} -gt 0 ] && PIN_TXT="server on CPU $CPU_A, client on CPU $CPU_B"
echo "== perftest on $DEV (per run timeout ${RUN_TIMEOUT}s, budget ${BUDGET}s;" \
	"load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; $PIN_TXT)"
for t in send write read; do
	for s in "${SIZES[@]}"; do
		lat_test "ib_${t}_lat" "ib_${t}_lat" "$s" "$(iters_for lat "$s")"
	done
done
lat_test "ib_send_lat (inline)" ib_send_lat 2 "$LAT_N" -I 64
lat_test "ib_write_lat (inline)" ib_write_lat 2 "$LAT_N" -I 64
add_row "ib_read_lat (inline)" 2 "n/a" "" shm_pingpong_lat "-" ""
NOTES+=("ib_read_lat (inline): n/a, RDMA READ carries no inline data (perftest refuses -I)")
for t in send write read; do
	for s in "${SIZES[@]}"; do
		bw_test "ib_${t}_bw" "ib_${t}_bw" "$s" "$(iters_for bw "$s")"
	done
done
bw_test "ib_send_bw (UD)" ib_send_bw 4096 "$BW_N" -c UD
rate_test "ib_write_bw (msg rate)" ib_write_bw 8 "$RATE_N"

# ---------------------------------------------------------------- report
echo
echo "== uib vs host floor (ours/floor: latency >1 = slower than the floor;"
echo "   bandwidth <1 = below the floor; GB/s = 1e9 B/s, converted from perftest's MiB/s;"
echo "   ib_read_lat is a whole READ round trip, send/write_lat half a round trip)"
hdr() { printf '%-24s | %-7s | %-15s | %-30s | %-10s | %-13s | %s\n' "$@"; }
hdr test size ours "floor (metric)" ours/floor "shm copy bw" ours/shm
printf -- '-------------------------+---------+-----------------+--------------------------------+------------+---------------+---------\n'
for row in "${ROWS[@]}"; do
	IFS='|' read -r t s o f m r sh rs <<<"$row"
	hdr "$t" "$(size_label "$s")" "$o" "${f:--} ($m)" "$r" "${sh:--}" "${rs:--}"
done
fails=0
for row in "${ROWS[@]}"; do [[ $row == *"|FAILED|"* ]] && fails=$((fails + 1)); done
echo
echo "${#ROWS[@]} rows, $fails FAILED, $((SECONDS - START)) s of perftest"
if [ $INLINE_IGNORED = 1 ]; then
	echo "* perftest ignored -I 64 (\"Max inline data : 0\"): it turns inline off on every"
	echo "  device it does not recognise, so these rows measure the non-inline path again."
fi
if [ ${#NOTES[@]} -gt 0 ]; then
	echo "notes:"
	for n in "${NOTES[@]}"; do echo "  $n"; done
fi
exit 0
