#!/bin/bash
# Two-process data integrity (uib_datacheck) over every transport: RC, UC
# and UD, addressed by LID and by GID, posted with ibv_post_send() and with
# the ibv_wr_*() API, from three kinds of registered memory.  Every byte,
# completion, immediate and atomic result is checked; see datacheck.c.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
DC=$UIB_BUILD_DIR/tests/integration/uib_datacheck
[ -x "$DC" ] || uib_fail "$DC is not built"

uib_setup_rundir
uib_add uibd0

# name | uib_datacheck options (both sides)
CASES=(
	"rc              | -c rc"
	"rc-gid          | -c rc -g 0"
	"uc              | -c uc"
	"ud              | -c ud"
	"ud-gid          | -c ud -g 0"
	"rc-new-api      | -c rc --new-api"
	"ud-new-api      | -c ud --new-api"
	"uc-gid-new-api  | -c uc -g 0 --new-api"
	"rc-file-memory  | -c rc --mem file"
	"ud-file-memory  | -c ud --mem file"
	"uc-heap-memory  | -c uc --mem heap"
	"rc-heap-new-api | -c rc --mem heap --new-api"
)

port=18600
failed=()
for c in "${CASES[@]}"; do
	name=${c%%|*}
	name=${name%"${name##*[![:space:]]}"}
	read -r -a args <<<"${c#*|}"
	port=$((port + 1))
	echo "=== $name: uib_datacheck -d uibd0 -p $port ${args[*]}"
	if ! uib_pair 90 "$DC" -d uibd0 -p "$port" "${args[@]}" -- \
		"$DC" -d uibd0 -p "$port" "${args[@]}" 127.0.0.1; then
		failed+=("$name")
		continue
	fi
	# Both sides must have verified data, not just exited 0.
	ok=1
	for side in server client; do
		line=$(grep -E '^datacheck (rc|uc|ud): [1-9][0-9]* messages, [1-9][0-9]* bytes verified$' \
			"$UIB_RUN_DIR/$side.log" || true)
		if [ -z "$line" ]; then
			echo "--- $side printed no summary line:" >&2
			tail -n 5 "$UIB_RUN_DIR/$side.log" >&2
			ok=0
		else
			echo "$side: $line"
		fi
	done
	[ $ok = 1 ] || failed+=("$name")
done

if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "${#failed[@]} of ${#CASES[@]} datacheck cases failed: ${failed[*]}"
fi
uib_pass "all ${#CASES[@]} datacheck cases"
