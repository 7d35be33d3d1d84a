#!/bin/bash
# ipoibd's TAP (/dev/net/tun) and netlink (libnl-route-3) helpers in a
# fresh network namespace: create a TAP, MTU 4092, up, carrier, IPv6 and
# IPv4 addresses; check them with `ip -j`; close it and see it gone.
. "$(dirname "$0")/lib.sh"

uib_require_root
uib_require_cmd ip jq
[ -c /dev/net/tun ] || uib_skip "/dev/net/tun is missing"
CHECK=$UIB_BUILD_DIR/tests/integration/ipoibd_nl_check
[ -x "$CHECK" ] || uib_fail "$CHECK is not built"

NS=ipoibd-nl-$$
ip netns add "$NS" || uib_skip "cannot create a network namespace"
trap 'ip netns del "$NS" 2>/dev/null' EXIT
IF=ibt0

# Run by ipoibd_nl_check while the TAP exists.
cat >"/tmp/ipoibd-nl-$$.sh" <<'INNER'
set -eu
IF=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
link=$(ip -j link show dev "$IF")
[ "$(jq -r '.[0].mtu' <<<"$link")" = 4092 ] || fail "MTU should be 4092: $link"
jq -e '.[0].flags | index("UP")' <<<"$link" >/dev/null || fail "link should be UP: $link"
jq -e '.[0].flags | index("LOWER_UP")' <<<"$link" >/dev/null || fail "carrier should be on: $link"
[ "$(jq -r '.[0].address' <<<"$link")" = 02:00:5e:10:20:30 ] || fail "MAC should be 02:00:5e:10:20:30: $link"
addr=$(ip -j addr show dev "$IF")
jq -e '.[0].addr_info[] | select(.local == "2001:db8::1" and .prefixlen == 64)' \
	<<<"$addr" >/dev/null || fail "2001:db8::1/64 should be on $IF: $addr"
jq -e '.[0].addr_info[] | select(.local == "192.0.2.1" and .prefixlen == 24)' \
	<<<"$addr" >/dev/null || fail "192.0.2.1/24 should be on $IF: $addr"
# The namespace is fresh: nothing of ours leaks out of it.
INNER
trap 'ip netns del "$NS" 2>/dev/null; rm -f /tmp/ipoibd-nl-$$.sh' EXIT

ip link show "$IF" >/dev/null 2>&1 && uib_fail "$IF should not exist outside the namespace before the test"
ip netns exec "$NS" "$CHECK" "$IF" bash "/tmp/ipoibd-nl-$$.sh" "$IF" ||
	uib_fail "ipoibd_nl_check failed"
ip netns exec "$NS" ip link show "$IF" >/dev/null 2>&1 &&
	uib_fail "$IF should be gone after the TAP was closed"
ip link show "$IF" >/dev/null 2>&1 && uib_fail "$IF should never appear outside the namespace"
uib_pass "TAP and netlink helpers in a network namespace"
