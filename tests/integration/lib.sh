# Shared helpers for the integration tests (sourced, bash).
#
# Every test makes its own run directory, so tests are isolated from each
# other and from a system-wide /run/uib; ctest passes UIBCTL and
# UIB_BUILD_DIR.  Exit code 77 means "skipped" (ctest SKIP_RETURN_CODE).

set -euo pipefail

: "${UIB_BUILD_DIR:?UIB_BUILD_DIR must name the build directory}"
: "${UIBCTL:=$UIB_BUILD_DIR/providers/uib/uibctl}"

uib_skip() { echo "SKIP: $*"; exit 77; }
uib_fail() { echo "FAIL: $*" >&2; exit 1; }
uib_pass() { echo "PASS: $*"; }

# libibverbs looks for device nodes in /dev/infiniband only, so creating a
# device needs root.
uib_require_root() {
	[ "$(id -u)" = 0 ] || uib_skip "needs root to create /dev/infiniband entries"
}

uib_require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || uib_skip "$c is not installed"
	done
}

# Makes a private run directory, exports UIB_RUN_DIR and removes every
# device in it (and the directory) when the test exits.
uib_setup_rundir() {
	UIB_RUN_DIR=$(mktemp -d /tmp/uibtest.XXXXXX)
	export UIB_RUN_DIR
	trap uib_cleanup EXIT
}

uib_cleanup() {
	local rc=$? name
	if [ -n "${UIB_RUN_DIR:-}" ] && [ -d "$UIB_RUN_DIR/dev" ]; then
		for name in "$UIB_RUN_DIR"/dev/*.state; do
			[ -e "$name" ] || continue
			name=${name##*/}
			"$UIBCTL" del "${name%.state}" >/dev/null 2>&1 || true
		done
	fi
	[ -n "${UIB_RUN_DIR:-}" ] && rm -rf "$UIB_RUN_DIR"
	exit $rc
}

# uib_add NAME [uibctl add options]: creates a device and points verbs
# programs at the run directory (SYSFS_PATH, RDMAV_DRIVERS).
uib_add() {
	"$UIBCTL" add "$@" || uib_fail "uibctl add $*"
	eval "$("$UIBCTL" env)"
}

# A bash -c program: waits (10 s at most) until something listens on TCP
# port $1, then runs the rest of its arguments; exits 1 if nothing does.
# The clients of rdma-core's examples and of perftest connect once, so
# they start only when their server listens.  /proc/net/tcp is read, as a
# probe connection would use up a server's only accept().
#   bash -c "$UIB_WAIT_LISTEN" wait-listen PORT CMD [ARGS...]
# shellcheck disable=SC2016 # expanded by the bash -c that runs it
UIB_WAIT_LISTEN='p=$(printf "%04X" "$1"); shift
for i in $(seq 200); do
	if grep -qE "^ *[0-9]+: [0-9A-F]+:$p [0-9A-F]+:0000 0A " \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null; then
		exec "$@"
	fi
	sleep 0.05
done
echo "wait-listen: nothing listens on TCP port 0x$p" >&2
exit 1'

# uib_wait_listen PORT: 0 once something listens on TCP PORT, 1 after 10 s.
uib_wait_listen() {
	bash -c "$UIB_WAIT_LISTEN" wait-listen "$1" true 2>/dev/null
}

# uib_pair TIMEOUT SERVER_CMD -- CLIENT_CMD: runs a server and a client
# (each a separate process), both bounded by TIMEOUT seconds; fails
# unless both exit 0.  Output goes to $UIB_RUN_DIR/{server,client}.log.
uib_pair() {
	local t=$1 spid cpid src crc
	shift
	local -a srv=() cli=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do srv+=("$1"); shift; done
	shift
	cli=("$@")
	timeout "$t" "${srv[@]}" >"$UIB_RUN_DIR/server.log" 2>&1 &
	spid=$!
	sleep 0.3
	timeout "$t" "${cli[@]}" >"$UIB_RUN_DIR/client.log" 2>&1 &
	cpid=$!
	crc=0; wait $cpid || crc=$?
	src=0; wait $spid || src=$?
	if [ $src != 0 ] || [ $crc != 0 ]; then
		echo "--- server (${srv[*]}) exit $src" >&2
		tail -n 20 "$UIB_RUN_DIR/server.log" >&2
		echo "--- client (${cli[*]}) exit $crc" >&2
		tail -n 20 "$UIB_RUN_DIR/client.log" >&2
		return 1
	fi
}
