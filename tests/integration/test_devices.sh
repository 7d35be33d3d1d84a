#!/bin/bash
# Device discovery and queries through the stock rdma-core tools:
# uibctl add/del/port/list, ibv_devices, ibv_devinfo, the identifiers the
# verbs calls return (uib_query_ids) against the sysfs tree, bad input to
# uibctl, and repair of devices a killed uibctl left half made.
. "$(dirname "$0")/lib.sh"

uib_require_root
uib_require_cmd ibv_devices ibv_devinfo od dd
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
QUERY_IDS=$UIB_BUILD_DIR/tests/integration/uib_query_ids
[ -x "$QUERY_IDS" ] || uib_fail "$QUERY_IDS is not built"

uib_setup_rundir
SYS=$UIB_RUN_DIR/sys
IB=$SYS/class/infiniband

# expect_match WHAT ERE TEXT: TEXT has a line matching ERE.
expect_match() {
	grep -Eq -- "$2" <<<"$3" || {
		printf '%s\n' "$3" >&2
		uib_fail "$1: no line matches /$2/"
	}
}

# The sysfs node GUID of a device as ibv_devices prints it (16 hex digits).
sysfs_guid() { tr -d ':\n' <"$IB/$1/node_guid"; }

# xxxx:xxxx:xxxx:xxxx of node GUID + 1, the GUID of port 1.
port1_guid() {
	printf '%016x' $((0x$(sysfs_guid "$1") + 1)) |
		sed 's/\(....\)/\1:/g; s/:$//'
}

# The word at byte OFFSET of a state file, as a signed decimal.
state_word() { od -An -t d4 -j "$2" -N 4 "$1" | tr -d ' '; }

# uib1 (made early, changed by nothing after) must survive every failure.
uib1_intact() {
	local out
	out=$(ibv_devinfo -d uib1 2>&1) ||
		uib_fail "after $1: ibv_devinfo -d uib1 failed: $out"
	[ "$(grep -c 'PORT_ACTIVE' <<<"$out")" = 2 ] ||
		uib_fail "after $1: uib1 should still have 2 active ports: $out"
}

# ---- add two devices -------------------------------------------------------

uib_add uib0
uib_add uib1 --ports 2
[ "$SYSFS_PATH" = "$SYS" ] || uib_fail "uibctl env should set SYSFS_PATH=$SYS, not $SYSFS_PATH"
[ "$RDMAV_DRIVERS" = "$UIB_BUILD_DIR/providers/uib/libuib" ] ||
	uib_fail "uibctl env (build tree) should set RDMAV_DRIVERS to the built provider, not '$RDMAV_DRIVERS'"

devices=$(ibv_devices)
for d in uib0 uib1; do
	g=$(awk -v d=$d '$1 == d { print $2 }' <<<"$devices")
	[ -n "$g" ] || uib_fail "ibv_devices should list $d: $devices"
	[ "$g" = "$(sysfs_guid $d)" ] ||
		uib_fail "ibv_devices shows $d GUID $g, sysfs node_guid says $(sysfs_guid $d)"
done
[ "$(sysfs_guid uib0)" != "$(sysfs_guid uib1)" ] ||
	uib_fail "uib0 and uib1 should have distinct node GUIDs"
uib_pass "ibv_devices lists uib0 and uib1 with their sysfs node GUIDs"

# ---- ibv_devinfo -v ---------------------------------------------------------

info=$(ibv_devinfo -v -d uib0) || uib_fail "ibv_devinfo -v -d uib0 failed"
expect_match "uib0 transport" '^[[:space:]]*transport:[[:space:]]+InfiniBand' "$info"
expect_match "uib0 port state" '^[[:space:]]*state:[[:space:]]+PORT_ACTIVE' "$info"
expect_match "uib0 link layer" '^[[:space:]]*link_layer:[[:space:]]+InfiniBand' "$info"
expect_match "uib0 active MTU" '^[[:space:]]*active_mtu:[[:space:]]+4096' "$info"
for attr in max_qp max_cqe max_mr_size max_sge; do
	expect_match "uib0 $attr" "^[[:space:]]*$attr:[[:space:]]+(0x)?[1-9a-f]" "$info"
done
lid=$(awk '$1 == "port_lid:" { print $2; exit }' <<<"$info")
[ -n "$lid" ] && [ "$lid" -gt 0 ] || uib_fail "uib0 port_lid should be non-zero, is '$lid'"
[ "$lid" = "$(($(cat "$IB/uib0/ports/1/lid")))" ] ||
	uib_fail "uib0 port_lid $lid should match sysfs lid $(cat "$IB/uib0/ports/1/lid")"
gid="fe80:0000:0000:0000:$(port1_guid uib0)"
expect_match "uib0 GID[0]" "GID\[ *0\]:[[:space:]]+$gid\$" "$info"
[ "$(cat "$IB/uib0/ports/1/gids/0")" = "$gid" ] ||
	uib_fail "sysfs gids/0 should be $gid"
uib_pass "ibv_devinfo -v -d uib0: InfiniBand, PORT_ACTIVE, LID $lid, MTU 4096, GID[0] $gid"

info=$(ibv_devinfo -d uib1) || uib_fail "ibv_devinfo -d uib1 failed"
expect_match "uib1 port count" '^[[:space:]]*phys_port_cnt:[[:space:]]+2$' "$info"
[ "$(grep -c '^[[:space:]]*port:' <<<"$info")" = 2 ] ||
	uib_fail "ibv_devinfo -d uib1 should show 2 ports: $info"
uib1_intact "adding uib1"
uib_pass "ibv_devinfo -d uib1 shows 2 ports"

# ---- identifiers through the verbs calls -------------------------------------

ids=$("$QUERY_IDS") || uib_fail "uib_query_ids failed: $ids"
for d in uib0 uib1; do
	line=$(grep "^$d " <<<"$ids") || uib_fail "uib_query_ids should list $d: $ids"
	want="$d guid=$(sysfs_guid $d) gid0=$(cat "$IB/$d/ports/1/gids/0") pkey0=$(cat "$IB/$d/ports/1/pkeys/0")"
	[ "$line" = "$want" ] ||
		uib_fail "verbs say '$line', sysfs says '$want'"
	g=$(ibv_devinfo -v -d $d | awk '/GID\[ *0\]:/ { print $NF; exit }')
	[ "gid0=$g" = "$(grep -o 'gid0=[^ ]*' <<<"$line")" ] ||
		uib_fail "ibv_query_gid says '$line', ibv_devinfo GID[0] says $g"
done
grep -q 'pkey0=0xffff$' <<<"$ids" || uib_fail "P_Key[0] should be 0xffff: $ids"
uib_pass "ibv_get_device_guid/ibv_query_gid/ibv_query_pkey agree with sysfs and ibv_devinfo"

# ---- port state ---------------------------------------------------------------

"$UIBCTL" port uib0 1 down || uib_fail "uibctl port uib0 1 down"
info=$(ibv_devinfo -d uib0)
expect_match "uib0 port after down" '^[[:space:]]*state:[[:space:]]+PORT_DOWN' "$info"
[ "$(cat "$IB/uib0/ports/1/state")" = "1: DOWN" ] || uib_fail "sysfs state should be '1: DOWN'"
"$UIBCTL" port uib0 1 up || uib_fail "uibctl port uib0 1 up"
info=$(ibv_devinfo -d uib0)
expect_match "uib0 port after up" '^[[:space:]]*state:[[:space:]]+PORT_ACTIVE' "$info"
[ "$(cat "$IB/uib0/ports/1/state")" = "4: ACTIVE" ] || uib_fail "sysfs state should be '4: ACTIVE'"
uib1_intact "uib0 port down/up"
uib_pass "uibctl port uib0 1 down/up shows as PORT_DOWN/PORT_ACTIVE"

# ---- bad input ----------------------------------------------------------------

# expect_refused NEEDLE ARGS...: uibctl ARGS fails, saying NEEDLE, and
# leaves uib1 working.
expect_refused() {
	local needle=$1 out rc
	shift
	out=$("$UIBCTL" "$@" 2>&1) && rc=0 || rc=$?
	[ $rc != 0 ] || uib_fail "uibctl $* should fail: $out"
	grep -qF -- "$needle" <<<"$out" ||
		uib_fail "uibctl $* should say \"$needle\", says: $out"
	uib1_intact "uibctl $*"
}

expect_refused "unknown command 'frobnicate'" frobnicate
expect_refused "invalid device name '9bad'" add 9bad
expect_refused "invalid device name 'a/b'" add a/b
expect_refused "device uib1 already exists" add uib1
expect_refused "--ports must be 1 to 4, not '0'" add uibx --ports 0
expect_refused "--ports must be 1 to 4, not 'x'" add uibx --ports x
expect_refused "missing device name" add
expect_refused "no device named nosuch" del nosuch
expect_refused "uib1 has no port 9" port uib1 9 up
expect_refused "state must be 'up' or 'down'" port uib1 1 sideways
[ ! -e "$UIB_RUN_DIR/dev/uibx.state" ] && [ ! -e "$IB/uibx" ] ||
	uib_fail "refused adds should leave nothing behind"
uib_pass "uibctl refuses bad input with a message and leaves uib1 intact"

# ---- del ------------------------------------------------------------------------

"$UIBCTL" del uib0 || uib_fail "uibctl del uib0"
devices=$(ibv_devices)
! grep -qw uib0 <<<"$devices" || uib_fail "ibv_devices should not list uib0 after del: $devices"
grep -qw uib1 <<<"$devices" || uib_fail "ibv_devices should still list uib1: $devices"
! ibv_devinfo -d uib0 >/dev/null 2>&1 || uib_fail "ibv_devinfo -d uib0 should fail after del"
[ ! -e "$IB/uib0" ] && [ ! -e "$UIB_RUN_DIR/dev/uib0.state" ] ||
	uib_fail "del should remove uib0's sysfs directory and state"
uib1_intact "uibctl del uib0"
uib_pass "uibctl del uib0 removes it from ibv_devices"

# ---- devices a killed uibctl left half made --------------------------------------

# Offsets in struct uib_dev_shared: ready at 8, uverbs_index at 48.  Check
# them on uib1 first, so that a layout change fails here, loudly.
uib1_state=$UIB_RUN_DIR/dev/uib1.state
uib1_idx=$("$UIBCTL" list | awk '$1 == "uib1" { sub("uverbs", "", $2); print $2 }')
[ "$(state_word "$uib1_state" 8)" = 1 ] && [ "$(state_word "$uib1_state" 48)" = "$uib1_idx" ] ||
	uib_fail "the state layout changed: ready/uverbs_index are not at offsets 8/48"

# (a) uibctl add killed after creating the state and the device
# directory: a state that never became ready, without a uverbs number.
cp "$uib1_state" "$UIB_RUN_DIR/dev/uibh.state"
# its own name (a state file naming another device is invalid, not half-made)
printf 'uibh\x00' | dd of="$UIB_RUN_DIR/dev/uibh.state" bs=1 seek=16 conv=notrunc status=none
printf '\x00\x00\x00\x00' | dd of="$UIB_RUN_DIR/dev/uibh.state" bs=1 seek=8 conv=notrunc status=none
printf '\xff\xff\xff\xff' | dd of="$UIB_RUN_DIR/dev/uibh.state" bs=1 seek=48 conv=notrunc status=none
mkdir "$IB/uibh"
echo "0000:0000:0000:0001" >"$IB/uibh/node_guid"

# (b) uibctl del killed just after hiding the device: not ready, but its
# uverbs entry and /dev/infiniband node are still there.
"$UIBCTL" add uibk || uib_fail "uibctl add uibk"
k_idx=$("$UIBCTL" list | awk '$1 == "uibk" { sub("uverbs", "", $2); print $2 }')
[ -n "$k_idx" ] && [ -e "$SYS/class/infiniband_verbs/uverbs$k_idx" ] ||
	uib_fail "uibk should have a uverbs entry"
printf '\x00\x00\x00\x00' | dd of="$UIB_RUN_DIR/dev/uibk.state" bs=1 seek=8 conv=notrunc status=none
devices=$(ibv_devices)
! grep -qw uibk <<<"$devices" ||
	uib_fail "a device that is not ready should be invisible to libibverbs: $devices"

list=$("$UIBCTL" list) || uib_fail "uibctl list failed: $list"
! grep -Eq '^uib(h|k)[[:space:]]' <<<"$list" || uib_fail "uibctl list should not show half-made devices: $list"
for p in "$UIB_RUN_DIR/dev/uibh.state" "$IB/uibh" "$UIB_RUN_DIR/dev/uibk.state" "$IB/uibk" \
	"$SYS/class/infiniband_verbs/uverbs$k_idx"; do
	[ ! -e "$p" ] || uib_fail "uibctl list should have removed $p"
done
[ ! -e "/dev/infiniband/uverbs$k_idx" ] && [ ! -L "/dev/infiniband/uverbs$k_idx" ] ||
	uib_fail "uibctl list should have removed /dev/infiniband/uverbs$k_idx"
grep -q '^uib1[[:space:]]' <<<"$list" || uib_fail "uibctl list should still show uib1: $list"
[ -e "$SYS/class/infiniband_verbs/uverbs$uib1_idx" ] && [ -e "/dev/infiniband/uverbs$uib1_idx" ] ||
	uib_fail "repair should keep uib1's uverbs$uib1_idx entry and node"
uib1_intact "repair"
uib_pass "uibctl list removes half-made devices and keeps uib1"
