#!/bin/bash
# Unmodified rdma-core examples (ibv_rc/uc/ud/srq_pingpong) between two
# processes on one uib device, addressed by LID and by GID index 0.  Both
# sides must exit 0 and report the exact byte and iteration counts.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
uib_require_cmd ibv_rc_pingpong ibv_uc_pingpong ibv_ud_pingpong ibv_srq_pingpong

uib_setup_rundir
uib_add uibp0

# name | tool | size | iterations | extra options
# (ud: the message must fit the 4096-byte MTU; srq: iterations per QP)
CASES=(
	"rc-1          | ibv_rc_pingpong  | 1       | 100 |"
	"rc-4096       | ibv_rc_pingpong  | 4096    | 100 |"
	"rc-65536      | ibv_rc_pingpong  | 65536   | 100 |"
	"rc-1m         | ibv_rc_pingpong  | 1048576 | 20  |"
	"rc-mtu4096    | ibv_rc_pingpong  | 65536   | 50  | -m 4096"
	"rc-new-send   | ibv_rc_pingpong  | 65536   | 50  | -N"
	"rc-chk        | ibv_rc_pingpong  | 65536   | 50  | -c"
	"uc-1          | ibv_uc_pingpong  | 1       | 100 |"
	"uc-4096       | ibv_uc_pingpong  | 4096    | 100 |"
	"uc-65536      | ibv_uc_pingpong  | 65536   | 100 |"
	"uc-1m         | ibv_uc_pingpong  | 1048576 | 20  |"
	"uc-chk        | ibv_uc_pingpong  | 65536   | 50  | -c -m 4096"
	"ud-1          | ibv_ud_pingpong  | 1       | 100 |"
	"ud-2048       | ibv_ud_pingpong  | 2048    | 100 |"
	"ud-4096       | ibv_ud_pingpong  | 4096    | 100 | -c"
	"srq-1         | ibv_srq_pingpong | 1       | 50  |"
	"srq-4096      | ibv_srq_pingpong | 4096    | 50  |"
	"srq-65536     | ibv_srq_pingpong | 65536   | 50  | -c"
	"srq-1m        | ibv_srq_pingpong | 1048576 | 5   | -q 4"
)

trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	printf '%s' "${s%"${s##*[![:space:]]}"}"
}

port=18700
failed=()
total=0
for addr in lid gid; do
	for c in "${CASES[@]}"; do
		IFS='|' read -r name tool size iters extra <<<"$c"
		name=$(trim "$name")-$addr
		tool=$(trim "$tool")
		size=$(trim "$size")
		iters=$(trim "$iters")
		read -r -a opts <<<"$extra"
		if [ $addr = gid ]; then
			opts+=(-g 0)
		fi
		port=$((port + 1))
		total=$((total + 1))
		args=(-d uibp0 -p "$port" -s "$size" -n "$iters" "${opts[@]}")
		echo "=== $name: $tool ${args[*]}"
		if ! uib_pair 60 "$tool" "${args[@]}" -- \
			bash -c "$UIB_WAIT_LISTEN" wait-listen "$port" \
			"$tool" "${args[@]}" 127.0.0.1; then
			failed+=("$name")
			continue
		fi
		# Both sides count size * iters * 2 bytes (rdma-core examples).
		bytes=$((size * iters * 2))
		ok=1
		for side in server client; do
			log=$UIB_RUN_DIR/$side.log
			if ! grep -qE "^$bytes bytes in [0-9.]+ seconds" "$log" ||
			   ! grep -qE "^$iters iters in [0-9.]+ seconds" "$log"; then
				echo "--- $side: no '$bytes bytes in' / '$iters iters in' line:" >&2
				tail -n 5 "$log" >&2
				ok=0
			fi
			# -c: the server checks the buffer the client sent
			if grep -q "invalid data" "$log"; then
				echo "--- $side: $(grep -m1 'invalid data' "$log")" >&2
				ok=0
			fi
		done
		if [ $ok = 1 ]; then
			grep -hE "bytes in" "$UIB_RUN_DIR/client.log"
		else
			failed+=("$name")
		fi
	done
done

if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "${#failed[@]} of $total pingpong cases failed: ${failed[*]}"
fi
uib_pass "all $total pingpong cases"
