#!/bin/bash
# ipoibd against a uib device in a fresh network namespace: readiness by
# polling `ipoibd status` (no fixed sleeps), the TAP with MTU 4092 and
# carrier, the QPN in status (text and JSON), carrier following
# `uibctl port down/up`, the link torn down when the device goes and
# rebuilt when it comes back, bad configurations refused with file:line,
# and the TAP gone after SIGTERM.
. "$(dirname "$0")/lib.sh"

uib_require_root
uib_require_cmd ip jq
[ -c /dev/net/tun ] || uib_skip "/dev/net/tun is missing"
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
IPOIBD=$UIB_BUILD_DIR/ipoibd/ipoibd
[ -x "$IPOIBD" ] || uib_fail "$IPOIBD is not built"

uib_setup_rundir
NS=ipoibd-d-$$
ip netns add "$NS" || uib_skip "cannot create a network namespace"
DPID=
cleanup_all() {
	local rc=$?
	set +e
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	(exit $rc)	# uib_cleanup exits with the status it finds in $?
	uib_cleanup
}
trap cleanup_all EXIT
nsx() { ip netns exec "$NS" "$@"; }

# wait_for WHAT CMD...: polls CMD every 50 ms, 10 s at most.
wait_for() {
	local what=$1 i
	shift
	for i in $(seq 200); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	uib_fail "timed out waiting for $what"
}
status_json() { nsx "$IPOIBD" status --json; }
link_json() { status_json | jq -e ".links[] | select(.ifname == \"$1\")"; }
carrier_is() { [ "$(status_json | jq -r ".links[0].carrier")" = "$1" ]; }
tap_absent() { ! nsx ip link show ib0; }

uib_add uib0

# ---- bad configurations are refused with file:line ---------------------
CONF=$UIB_RUN_DIR/ipoibd.conf
printf '[link ib0]\ndevice = uib0\nqeues = 2\n' >"$CONF"
out=$(nsx "$IPOIBD" --foreground --config "$CONF" 2>&1) &&
	uib_fail "a bad key should stop ipoibd"
grep -q "ipoibd.conf:3: unknown key 'qeues'" <<<"$out" ||
	uib_fail "the refusal should name file, line and key: $out"
printf '[link ib0]\ndevice = uib9\n' >"$CONF"
out=$(nsx "$IPOIBD" --foreground --config "$CONF" 2>&1) &&
	uib_fail "a missing device should stop ipoibd"
grep -q "ipoibd.conf:1: link 'ib0': no device uib9" <<<"$out" ||
	uib_fail "the refusal should name the missing device: $out"
printf '[link ib0]\ndevice = uib0\nport = 2\n' >"$CONF"
out=$(nsx "$IPOIBD" --foreground --config "$CONF" 2>&1) &&
	uib_fail "a missing port should stop ipoibd"
grep -q "ipoibd.conf:1: device uib0 has no port 2" <<<"$out" ||
	uib_fail "the refusal should name the missing port: $out"
printf '[link ib0]\ndevice = uib0\nmtu = 9000\n' >"$CONF"
out=$(nsx "$IPOIBD" --foreground --config "$CONF" 2>&1) &&
	uib_fail "an MTU the port cannot carry should stop ipoibd"
grep -q "ipoibd.conf:1: MTU 9000 is more than uib0 port 1 carries (4092)" <<<"$out" ||
	uib_fail "the refusal should name the MTU: $out"
tap_absent || uib_fail "a refused start should leave no TAP"
uib_pass "bad configurations refused"

# ---- start, readiness, the link ----------------------------------------
# Not through nsx: $! must be ipoibd itself (ip netns exec execs it).
ip netns exec "$NS" "$IPOIBD" --foreground --device uib0 --port 1 --ifname ib0 \
	>"$UIB_RUN_DIR/ipoibd.log" 2>&1 &
DPID=$!
wait_for "ipoibd to show link ib0 with a QPN" \
	bash -c "ip netns exec $NS $IPOIBD status --json | jq -e '.links[0].qpn > 0'"
link=$(link_json ib0) || uib_fail "status should show ib0: $(status_json)"
[ "$(jq -r .device <<<"$link")" = uib0 ] || uib_fail "ib0 should be on uib0: $link"
[ "$(jq -r .mtu <<<"$link")" = 4092 ] || uib_fail "ib0's MTU should be 4092: $link"
qpn=$(jq -r .qpn <<<"$link")
text=$(nsx "$IPOIBD" status)
grep -q "qpn $(printf '0x%06x' "$qpn")" <<<"$text" ||
	uib_fail "text status should show the QPN: $text"
grep -q "gid fe80::" <<<"$text" || uib_fail "text status should show the GID: $text"
ip_link=$(nsx ip -j link show ib0) || uib_fail "the TAP ib0 should exist"
[ "$(jq -r '.[0].mtu' <<<"$ip_link")" = 4092 ] ||
	uib_fail "the TAP's MTU should be 4092: $ip_link"
jq -e '.[0].flags | index("UP") and index("LOWER_UP")' <<<"$ip_link" >/dev/null ||
	uib_fail "the TAP should be up with carrier: $ip_link"
"$IPOIBD" status >/dev/null 2>&1 &&
	uib_fail "status outside the namespace should find no daemon"
uib_pass "ipoibd ready, ib0 with MTU 4092 and QPN $qpn"

# ---- carrier follows the port ------------------------------------------
"$UIBCTL" port uib0 1 down || uib_fail "uibctl port down"
wait_for "carrier off after port down" carrier_is false
wait_for "the TAP to lose carrier" bash -c \
	"ip netns exec $NS ip -j link show ib0 | jq -e '.[0].flags | index(\"LOWER_UP\") | not'"
"$UIBCTL" port uib0 1 up || uib_fail "uibctl port up"
wait_for "carrier on after port up" carrier_is true
uib_pass "carrier follows the port state"

# ---- the device goes and comes back ------------------------------------
"$UIBCTL" del uib0 || uib_fail "uibctl del"
wait_for "the TAP to go with the device" tap_absent
kill -0 "$DPID" || uib_fail "ipoibd should survive its device going"
uib_add uib0
wait_for "the link to come back with the device" link_json ib0
wait_for "the TAP to come back" nsx ip link show ib0
uib_pass "device removal and re-addition"

# ---- SIGTERM ------------------------------------------------------------
kill -TERM "$DPID"
rc=0; wait "$DPID" || rc=$?
DPID=
[ $rc = 0 ] || uib_fail "ipoibd should exit 0 on SIGTERM, not $rc: $(tail "$UIB_RUN_DIR/ipoibd.log")"
tap_absent || uib_fail "the TAP should be gone after SIGTERM"
nsx "$IPOIBD" status >/dev/null 2>&1 && uib_fail "no daemon should answer after SIGTERM"
uib_pass "clean teardown on SIGTERM"
