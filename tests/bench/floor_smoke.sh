#!/bin/sh
# SPDX-License-Identifier: MIT
# ctest bench_floor_smoke: uib_floor --quick runs and prints every "floor"
# line.  Only that: benchmarks never fail on speed.
#   floor_smoke.sh PATH/TO/uib_floor
set -u
bin=${1:?usage: floor_smoke.sh PATH/TO/uib_floor}
out=$("$bin" --quick)
st=$?
[ $st = 0 ] || { echo "$out"; echo "FAIL: uib_floor --quick exited $st"; exit 1; }
echo "$out"
rc=0
for m in memcpy_bw pvm_bw pvm_rate shm_bw shm_pingpong_lat; do
	for s in 2 4096 65536 1048576; do
		echo "$out" | grep -Eq "^floor $m $s [0-9]+(\.[0-9]+)? [A-Za-z/]+\$" ||
			{ echo "FAIL: no 'floor $m $s VALUE UNIT' line"; rc=1; }
	done
done
echo "$out" | grep -Eq '^floor pvm_lat 2 [0-9]+(\.[0-9]+)? us$' ||
	{ echo "FAIL: no 'floor pvm_lat 2 VALUE us' line"; rc=1; }
exit $rc
