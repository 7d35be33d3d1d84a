#!/bin/bash
# perftest (ib_{send,write,read,atomic}_{bw,lat}) between two processes on
# one uib device: RC, UC and UD, several QPs, every size (-a), both post
# flows, addressed by LID and by GID index 0.  Every case runs even if
# another failed; each must exit 0 on both sides and print its result line.
. "$(dirname "$0")/lib.sh"

uib_require_root
[ -d /sys/module/ib_core ] &&
	uib_skip "kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
uib_require_cmd ib_send_bw ib_send_lat ib_write_bw ib_write_lat \
	ib_read_bw ib_read_lat ib_atomic_bw ib_atomic_lat

uib_setup_rundir
uib_add uibp0

# name | tool | options | result lines expected (-a: sizes 2..2^23)
CASES=(
	"send_bw           | ib_send_bw    | -n 500                        | 1"
	"send_bw_uc        | ib_send_bw    | -c UC -n 500                  | 1"
	"send_bw_ud        | ib_send_bw    | -c UD -n 500                  | 1"
	"send_bw_4qp       | ib_send_bw    | -q 4 -n 200                   | 1"
	"send_bw_old_post  | ib_send_bw    | --use_old_post_send -n 500    | 1"
	"send_lat          | ib_send_lat   | -n 500                        | 1"
	"send_lat_uc       | ib_send_lat   | -c UC -n 500                  | 1"
	"send_lat_ud       | ib_send_lat   | -c UD -n 500                  | 1"
	"send_lat_all      | ib_send_lat   | -a -n 20                      | 23"
	"write_bw          | ib_write_bw   | -n 500                        | 1"
	"write_bw_uc       | ib_write_bw   | -c UC -n 500                  | 1"
	"write_bw_4qp      | ib_write_bw   | -q 4 -n 200                   | 1"
	"write_bw_old_post | ib_write_bw   | --use_old_post_send -n 500    | 1"
	"write_bw_all      | ib_write_bw   | -a -n 20                      | 23"
	"write_lat         | ib_write_lat  | -n 500                        | 1"
	"write_lat_uc      | ib_write_lat  | -c UC -n 500                  | 1"
	"read_bw           | ib_read_bw    | -n 500                        | 1"
	"read_bw_old_post  | ib_read_bw    | --use_old_post_send -n 500    | 1"
	"read_lat          | ib_read_lat   | -n 500                        | 1"
	"atomic_bw         | ib_atomic_bw  | -n 500                        | 1"
	"atomic_bw_cas     | ib_atomic_bw  | -A CMP_AND_SWAP -n 500        | 1"
	"atomic_lat        | ib_atomic_lat | -n 500                        | 1"
)

trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	printf '%s' "${s%"${s##*[![:space:]]}"}"
}

port=18800
failed=()
total=0
for addr in lid gid; do
	for c in "${CASES[@]}"; do
		IFS='|' read -r name tool opts nlines <<<"$c"
		name=$(trim "$name")-$addr
		tool=$(trim "$tool")
		nlines=$(trim "$nlines")
		read -r -a args <<<"$opts"
		# The row's #iterations column is -n times the number of QPs.
		n=0 q=1
		for ((i = 0; i + 1 < ${#args[@]}; i++)); do
			case ${args[i]} in
			-n) n=${args[i + 1]} ;;
			-q) q=${args[i + 1]} ;;
			esac
		done
		iters=$((n * q))
		if [ $addr = gid ]; then
			args+=(-x 0)
		fi
		port=$((port + 1))
		total=$((total + 1))
		args=(-d uibp0 -i 1 -p "$port" -F "${args[@]}")
		echo "=== $name: $tool ${args[*]}"
		if ! uib_pair 60 "$tool" "${args[@]}" -- \
			bash -c "$UIB_WAIT_LISTEN" wait-listen "$port" \
			"$tool" "${args[@]}" 127.0.0.1; then
			failed+=("$name")
			continue
		fi
		# The table row: " #bytes #iterations ..." (bw and lat alike).
		rows=$(grep -E "^ *[0-9]+ +$iters +[0-9]" \
			"$UIB_RUN_DIR/client.log" || true)
		got=$(printf '%s' "$rows" | grep -c . || true)
		if [ "$got" -lt "$nlines" ]; then
			echo "--- client printed $got result line(s) with $iters" \
				"iterations, expected $nlines:" >&2
			tail -n 8 "$UIB_RUN_DIR/client.log" >&2
			failed+=("$name")
			continue
		fi
		printf '%s\n' "$rows" | tail -n 1
	done
done

if [ ${#failed[@]} -gt 0 ]; then
	uib_fail "${#failed[@]} of $total perftest cases failed: ${failed[*]}"
fi
uib_pass "all $total perftest cases"
