#!/bin/bash
# The trust model (README "Trust model"): a device is opened only by its
# owner and the members of its group.  Users A and B share a group G, user C
# does not.  C cannot open, change, lock or reach a G device, nor disturb
# root's RDMA; A and B (different users: /proc/<pid>/fd is closed between
# them) run RC and UD pingpongs with data checks through the fd broker; a
# root-only device is closed to A; uibctl refuses corrupted state files
# without removing or crashing on them.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
uib_require_cmd ibv_rc_pingpong ibv_ud_pingpong ibv_devinfo useradd userdel \
	groupadd groupdel setpriv flock

BIN=$UIB_BUILD_DIR/tests/integration
[ -x "$BIN/uib_trust_open" ] && [ -x "$BIN/uib_rc_stress" ] ||
	uib_skip "uib_trust_open or uib_rc_stress not built"

# Unique names: several runs may share the host.
tag=$$
G=uibtg$tag A=uibta$tag B=uibtb$tag C=uibtc$tag
made_users=()
del_users() {
	local u
	for u in "${made_users[@]}"; do
		userdel "$u" >/dev/null 2>&1 || true
	done
	groupdel "$G" >/dev/null 2>&1 || true
}
trap del_users EXIT
groupadd "$G" || uib_skip "cannot add group $G"
for u in "$A" "$B"; do
	useradd -M -N -g "$G" -s /bin/false "$u" || uib_fail "useradd $u"
	made_users+=("$u")
done
useradd -M -U -s /bin/false "$C" || uib_fail "useradd $C"
made_users+=("$C")

uib_setup_rundir
# uib_cleanup exits with the test's status: the users go first.
trap 'rc=$?; del_users; (exit $rc); uib_cleanup' EXIT
# The users must reach the run directory (mktemp makes it 0700).
chmod 0755 "$UIB_RUN_DIR"
RUN=$UIB_RUN_DIR

"$UIBCTL" add trg0 --group "$G" --mode 0660 2>"$RUN/add.err" ||
	uib_fail "uibctl add trg0 --group $G: $(cat "$RUN/add.err")"
eval "$("$UIBCTL" env)"
linked=0
grep -q "link to /dev/null" "$RUN/add.err" && linked=1
"$UIBCTL" add trr0 || uib_fail "uibctl add trr0"

# $AS USER CMD...: runs CMD as USER (with USER's groups) in this
# environment; a script, so that timeout (uib_pair) can run it.
AS=$RUN/as
cat >"$AS" <<'EOS'
#!/bin/sh
u=$1
shift
exec setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"
EOS
chmod 0755 "$AS"
as() { "$AS" "$@"; }

# --- what the device looks like on disk
st=$(stat -c '%a %U %G' "$RUN/dev/trg0.state")
[ "$st" = "660 root $G" ] || uib_fail "trg0.state should be 660 root $G, is $st"
st=$(stat -c '%a %U %G' "$RUN/dev/trr0.state")
[ "$st" = "660 root root" ] || uib_fail "trr0.state should be 660 root root (defaults), is $st"
st=$(stat -c '%a %G' "$RUN/dev/trg0.ctx")
[ "$st" = "770 $G" ] || uib_fail "trg0.ctx should be 770 $G, is $st"
idx=$("$UIBCTL" list | awk '$1 == "trg0" { sub("uverbs", "", $2); print $2 }')
node=/dev/infiniband/uverbs$idx
if [ $linked = 0 ]; then
	st=$(stat -c '%F %t:%T %a %G' "$node")
	[ "$st" = "character special file 1:3 660 $G" ] ||
		uib_fail "$node should be char 1:3 660 $G, is $st"
else
	[ "$(readlink "$node")" = /dev/null ] || uib_fail "$node: no node, no link"
	echo "note: mknod not permitted here; $node is a link to /dev/null"
fi
st=$(stat -c '%a' "$RUN/lock")
[ "$st" = 600 ] || uib_fail "the run directory lock should be 600, is $st"
uib_pass "trg0 and trr0 carry their owner, group and mode"

# --- C, not in G
out=$(as "$C" "$BIN/uib_trust_open" trg0 2>&1) && uib_fail "C opened trg0: $out"
grep -q "open trg0: Permission denied (errno 13)" <<<"$out" ||
	uib_fail "C should get EACCES opening trg0, got: $out"
if [ $linked = 1 ]; then
	grep -q "cannot open device state $RUN/dev/trg0.state: permission denied (not owner or member of group $G)" <<<"$out" ||
		uib_fail "the provider should say why C cannot open trg0: $out"
fi
if [ $linked = 0 ]; then
	# Were the node open to all (as where mknod is not permitted), the
	# state file still refuses C, and the provider says why.
	chmod 0666 "$node"
	out=$(as "$C" "$BIN/uib_trust_open" trg0 2>&1) && uib_fail "C opened trg0 through an open node: $out"
	chmod 0660 "$node"
	grep -q "open trg0: Permission denied (errno 13)" <<<"$out" &&
	grep -q "cannot open device state $RUN/dev/trg0.state: permission denied (not owner or member of group $G)" <<<"$out" ||
		uib_fail "the provider should refuse C with EACCES and say why: $out"
fi
out=$(as "$C" ibv_devinfo -d trg0 2>&1) && uib_fail "ibv_devinfo -d trg0 as C should fail: $out"
as "$C" sh -c "printf x | dd of='$RUN/dev/trg0.state' conv=notrunc status=none" 2>/dev/null &&
	uib_fail "C wrote trg0's state file"
as "$C" cat "$RUN/dev/trg0.state" >/dev/null 2>&1 && uib_fail "C read trg0's state file"
as "$C" flock -n "$RUN/lock" true 2>/dev/null && uib_fail "C took the run directory lock"
as "$C" ls "$RUN/dev/trg0.ctx" >/dev/null 2>&1 && uib_fail "C listed trg0's broker sockets"
out=$(as "$C" "$UIBCTL" port trg0 1 down 2>&1) && uib_fail "uibctl port trg0 1 down as C succeeded: $out"
grep -q "needs root" <<<"$out" || uib_fail "uibctl port as C should say it needs root: $out"
"$UIBCTL" list | grep -A1 '^trg0' | grep -q ACTIVE || uib_fail "C changed trg0's port state"
uib_pass "C cannot open, read, write, lock or change trg0, with clear errors"

# --- root's RDMA WRITEs on trg0, with C trying all of the above meanwhile
port=18930
rm -f "$RUN/c.stop"
( while [ ! -e "$RUN/c.stop" ]; do
	as "$C" "$BIN/uib_trust_open" trg0 >/dev/null 2>&1
	as "$C" "$UIBCTL" port trg0 1 down >/dev/null 2>&1
	as "$C" sh -c "printf x | dd of='$RUN/dev/trg0.state' bs=1 seek=8 conv=notrunc status=none" 2>/dev/null
done ) &
cpid=$!
uib_pair 120 "$BIN/uib_rc_stress" -d trg0 -p $port -n 3000 -s 7 -- \
	bash -c "$UIB_WAIT_LISTEN" wait-listen $port \
	"$BIN/uib_rc_stress" -d trg0 -p $port -n 3000 -s 7 127.0.0.1 ||
	{ touch "$RUN/c.stop"; wait $cpid; uib_fail "root's uib_rc_stress pair on trg0 failed"; }
touch "$RUN/c.stop"
wait $cpid || true
uib_pass "root's RDMA WRITE + SEND stream on trg0 is unaffected by C"

# --- A and B, both in G, different users: through the broker
pp() {	# pp TOOL PORT SIZE ITERS [OPTS...]: TOOL server as A, client as B
	local tool=$1 p=$2 size=$3 iters=$4 side
	shift 4
	uib_pair 60 "$AS" "$A" "$tool" -d trg0 -p "$p" -s "$size" -n "$iters" "$@" -- \
		bash -c "$UIB_WAIT_LISTEN" wait-listen "$p" \
		"$AS" "$B" "$tool" -d trg0 -p "$p" -s "$size" -n "$iters" "$@" 127.0.0.1 ||
		uib_fail "$tool between $A and $B failed"
	for side in server client; do
		grep -qE "^$((size * iters * 2)) bytes in" "$RUN/$side.log" ||
			uib_fail "$tool $side: no byte count: $(tail -3 "$RUN/$side.log")"
	done
}
pp ibv_rc_pingpong 18931 65536 50 -c
pp ibv_ud_pingpong 18932 2048 50 -c
uib_pass "A and B (group $G) run RC and UD pingpongs with data checks"

# --- brokers: gone at close; a killed holder's socket is replaced
socks() { find "$RUN/dev/trg0.ctx" -name '*.sock' | sort; }
[ -z "$(socks)" ] || uib_fail "closed contexts left broker sockets: $(socks)"
"$AS" "$A" ibv_rc_pingpong -d trg0 -p 18933 >/dev/null 2>&1 &
kpid=$!
uib_wait_listen 18933 || uib_fail "ibv_rc_pingpong as A did not start"
stale=$(socks)
[ -n "$stale" ] && [ "$(stat -c %U "$stale")" = "$A" ] &&
	[ "$(stat -c '%a %G' "$stale")" = "660 $G" ] ||
	uib_fail "A's context should have a 660 $G broker socket: '$stale'"
kill -9 $kpid
wait $kpid 2>/dev/null || true
[ "$(socks)" = "$stale" ] || uib_fail "the killed process's socket should still be there"
# B takes the slot (reclaiming the dead context) and replaces the socket;
# its own close removes it.
out=$("$AS" "$B" "$BIN/uib_trust_open" trg0 2>&1) || uib_fail "B cannot open trg0: $out"
[ -z "$(socks)" ] || uib_fail "B should have replaced and then removed $stale: $(socks)"
uib_pass "broker sockets go at close; a killed holder's socket is replaced"

# --- the root-only device
out=$(as "$A" "$BIN/uib_trust_open" trr0 2>&1) && uib_fail "A opened root-only trr0: $out"
grep -q "Permission denied" <<<"$out" || uib_fail "A should get EACCES on trr0: $out"
out=$("$BIN/uib_trust_open" trr0 2>&1) || uib_fail "root cannot open trr0: $out"
uib_pass "a default (root-only) device is closed to A"

# --- corrupted state files: reported, refused, never removed
"$UIBCTL" add trc0 || uib_fail "uibctl add trc0"
"$UIBCTL" add trc1 || uib_fail "uibctl add trc1"
# num_ports (offset 52) of trc0 and the magic (offset 0) of trc1
printf '\xff\xff\xff\xff' | dd of="$RUN/dev/trc0.state" bs=1 seek=52 conv=notrunc status=none
printf 'XXXX' | dd of="$RUN/dev/trc1.state" bs=1 seek=0 conv=notrunc status=none
rc=0
"$UIBCTL" list >"$RUN/list.out" 2>"$RUN/list.err" || rc=$?
[ $rc = 1 ] || uib_fail "uibctl list with invalid state files should exit 1, got $rc: $(cat "$RUN/list.err")"
grep -q "device trc0: state file invalid (num_ports 4294967295, not 1 to 4); not touching it; remove it with: uibctl del --force trc0" "$RUN/list.err" ||
	uib_fail "uibctl list should explain trc0: $(cat "$RUN/list.err")"
grep -q "device trc1: state file invalid (bad magic" "$RUN/list.err" ||
	uib_fail "uibctl list should explain trc1: $(cat "$RUN/list.err")"
for cmd in "port trc0 1 down" "del trc0" "del trc1"; do
	rc=0
	out=$("$UIBCTL" $cmd 2>&1) || rc=$?
	[ $rc = 1 ] && grep -q "state file .* invalid" <<<"$out" ||
		uib_fail "uibctl $cmd should refuse with a message (exit 1), got $rc: $out"
done
"$UIBCTL" add trx0 2>/dev/null || uib_fail "uibctl add next to invalid state files"
for d in trc0 trc1; do
	[ -e "$RUN/dev/$d.state" ] && [ -d "$SYSFS_PATH/class/infiniband/$d" ] ||
		uib_fail "uibctl removed (part of) $d because its state looked wrong"
done
grep -q '^trx0' <<<"$("$UIBCTL" list 2>/dev/null)" || uib_fail "trx0 should be listed"
"$UIBCTL" del --force trc0 && "$UIBCTL" del --force trc1 || uib_fail "del --force"
for d in trc0 trc1; do
	[ ! -e "$RUN/dev/$d.state" ] && [ ! -e "$SYSFS_PATH/class/infiniband/$d" ] ||
		uib_fail "del --force $d left something"
done
"$UIBCTL" list >/dev/null || uib_fail "uibctl list after del --force"
uib_pass "uibctl refuses corrupted state files without removing or crashing"
