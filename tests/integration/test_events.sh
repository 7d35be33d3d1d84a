#!/bin/bash
# Events through unmodified rdma-core tools:
#  - completion channels: ibv_{rc,ud,srq}_pingpong -e, ib_send_lat -e and
#    ib_send_bw -e pass with libuib-preload.so, and ibv_rc_pingpong -e fails
#    cleanly ("Couldn't create completion channel") without it;
#  - async events: ibv_asyncwatch sees IBV_EVENT_PORT_ERR and
#    IBV_EVENT_PORT_ACTIVE when `uibctl port` takes port 1 down and up;
#  - a preloaded program works when there is no uib device at all.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
uib_require_cmd ibv_rc_pingpong ibv_ud_pingpong ibv_srq_pingpong \
	ib_send_lat ib_send_bw ibv_asyncwatch ibv_devices stdbuf
PRELOAD=$UIB_BUILD_DIR/providers/uib/libuib-preload.so
[ -f "$PRELOAD" ] || uib_fail "$PRELOAD is not built"
# Keeps whatever LD_PRELOAD the caller has (the sanitizer pass's libasan).
PRELOADED=("LD_PRELOAD=${LD_PRELOAD:+$LD_PRELOAD:}$PRELOAD")

uib_setup_rundir
uib_add uibev0

failed=()

# --- completion channels through the preload library ----------------------
# name | tool | options | what the client's log must show
CASES=(
	"rc_pingpong  | ibv_rc_pingpong  | -e -n 50            | ^50 iters in "
	"ud_pingpong  | ibv_ud_pingpong  | -e -s 1024 -n 50    | ^50 iters in "
	"srq_pingpong | ibv_srq_pingpong | -e -n 20            | ^20 iters in "
	"send_lat     | ib_send_lat      | -e -n 200           | ^ *2 +200 +[0-9]"
	"send_bw      | ib_send_bw       | -e -n 200           | ^ *65536 +200 +[0-9]"
)
port=18900
for c in "${CASES[@]}"; do
	IFS='|' read -r name tool opts want <<<"$c"
	read -r name <<<"$name"
	read -r tool <<<"$tool"
	read -r -a args <<<"$opts"
	want=${want# }
	want=${want%"${want##*[! ]}"}
	port=$((port + 1))
	case $tool in
	ib_*) args=(-d uibev0 -i 1 -p "$port" -F "${args[@]}") ;;
	*) args=(-d uibev0 -i 1 -p "$port" -g 0 "${args[@]}") ;;
	esac
	echo "=== $name: $tool ${args[*]} (preloaded)"
	if ! uib_pair 60 env "${PRELOADED[@]}" "$tool" "${args[@]}" -- \
		bash -c "$UIB_WAIT_LISTEN" wait-listen "$port" \
		env "${PRELOADED[@]}" "$tool" "${args[@]}" 127.0.0.1; then
		failed+=("$name")
		continue
	fi
	if ! grep -qE -- "$want" "$UIB_RUN_DIR/client.log"; then
		echo "--- $name: client log lacks /$want/:" >&2
		tail -n 10 "$UIB_RUN_DIR/client.log" >&2
		failed+=("$name")
		continue
	fi
	grep -E -- "$want" "$UIB_RUN_DIR/client.log" | tail -n 1
done

# --- without the preload: a clean failure ----------------------------------
echo "=== rc_pingpong without libuib-preload.so must fail"
rc=0
timeout 20 ibv_rc_pingpong -d uibev0 -i 1 -p 18950 -e \
	>"$UIB_RUN_DIR/nopreload.log" 2>&1 || rc=$?
cat "$UIB_RUN_DIR/nopreload.log"
if [ $rc = 0 ] || [ $rc = 124 ] || [ $rc -ge 128 ]; then
	echo "--- ibv_rc_pingpong -e exit $rc, expected a plain failure" >&2
	failed+=("no_preload_exit")
elif ! grep -q "Couldn't create completion channel" "$UIB_RUN_DIR/nopreload.log"; then
	echo "--- no \"Couldn't create completion channel\" message" >&2
	failed+=("no_preload_message")
else
	echo "exit $rc, as expected"
fi

# --- async events: port down and up ---------------------------------------
echo "=== ibv_asyncwatch: port 1 down, up"
# stdbuf: asyncwatch's printf output must reach the log before it is killed.
timeout 30 stdbuf -oL ibv_asyncwatch -d uibev0 >"$UIB_RUN_DIR/asyncwatch.log" 2>&1 &
aw=$!
for i in $(seq 100); do	# until it listens ("uibev0: async event FD N")
	grep -q 'async event FD' "$UIB_RUN_DIR/asyncwatch.log" && break
	sleep 0.05
done
"$UIBCTL" port uibev0 1 down || failed+=("port_down")
sleep 0.3
"$UIBCTL" port uibev0 1 up || failed+=("port_up")
for i in $(seq 100); do
	grep -q 'IBV_EVENT_PORT_ACTIVE' "$UIB_RUN_DIR/asyncwatch.log" && break
	sleep 0.05
done
kill "$aw" 2>/dev/null || true
wait "$aw" 2>/dev/null || true
cat "$UIB_RUN_DIR/asyncwatch.log"
# In this order: the error first, then active again.
events=$(grep -oE 'event_type IBV_EVENT_PORT_(ERR|ACTIVE) \([0-9]+\), port 1' \
	"$UIB_RUN_DIR/asyncwatch.log" | tr '\n' ';' || true)
if [ "$events" != "event_type IBV_EVENT_PORT_ERR (10), port 1;event_type IBV_EVENT_PORT_ACTIVE (9), port 1;" ]; then
	echo "--- asyncwatch events: '$events'" >&2
	failed+=("asyncwatch_port_events")
fi
ibv_devinfo -d uibev0 | grep -q 'state:.*PORT_ACTIVE' || failed+=("port_active_after")

# --- no uib device at all --------------------------------------------------
echo "=== preloaded ibv_devices with no uib device"
EMPTY=$UIB_RUN_DIR/empty
mkdir "$EMPTY"
# A run directory whose one device is gone: the sysfs tree is there, empty.
"$UIBCTL" --run-dir "$EMPTY" add uibgone >/dev/null || uib_fail "add uibgone"
"$UIBCTL" --run-dir "$EMPTY" del uibgone || uib_fail "del uibgone"
rc=0
out=$(SYSFS_PATH=$EMPTY/sys timeout 20 env "${PRELOADED[@]}" ibv_devices 2>&1) || rc=$?
echo "$out"
if [ $rc != 0 ] || grep -q uib <<<"$out"; then
	echo "--- preloaded ibv_devices on an empty tree: exit $rc" >&2
	failed+=("empty_devices")
fi
# A tree with no verbs at all: the preload changes nothing.
rc=0; SYSFS_PATH=$EMPTY/none timeout 20 ibv_devices >/dev/null 2>&1 || rc=$?
prc=0; SYSFS_PATH=$EMPTY/none timeout 20 env "${PRELOADED[@]}" ibv_devices \
	>/dev/null 2>&1 || prc=$?
echo "no sysfs tree: ibv_devices exit $rc, preloaded $prc"
if [ $rc != $prc ] || [ $prc -ge 124 ]; then
	failed+=("no_tree_devices")
fi

if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "events: ${failed[*]}"
fi
uib_pass "completion channels (preloaded), port events, empty device list"
