#!/bin/bash
# Builds the tree with warnings as errors and runs every test with ctest:
# Check unit suites, integration tests (they need root; without it they
# report "skipped", which this script lists), benchmarks' smoke tests.
#
#   sudo bash tests/run.sh              # build dir: ./build
#   BUILD_DIR=/tmp/b bash tests/run.sh  # another build dir
#
# Exits non-zero if the build or any test fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
JOBS=$(nproc 2>/dev/null || echo 2)

# run_pass NAME BUILD_DIR [cmake options...]: configure, build, ctest.
run_pass() {
	local name=$1 dir=$2 rc=0 log
	shift 2
	# Called in an || list, where set -e does not apply: check each step.
	echo "=== $name: configure and build in $dir"
	if ! cmake -S "$ROOT" -B "$dir" -DUIB_WERROR=ON "$@" ||
	   ! cmake --build "$dir" -j"$JOBS"; then
		SUMMARY+=("$name: BUILD FAILED")
		return 1
	fi
	echo "=== $name: ctest"
	log=$dir/ctest-run.log
	(cd "$dir" && ctest --output-on-failure) 2>&1 | tee "$log" || rc=$?
	SUMMARY+=("$name: $(grep -E 'tests passed|tests failed' "$log" | tail -n 1)")
	if grep -q 'The following tests FAILED' "$log"; then
		while IFS= read -r l; do
			SUMMARY+=("    $l")
		done < <(sed -n '/The following tests FAILED/,$p' "$log" | grep -E '^[[:space:]]+[0-9]+ - ')
	fi
	if grep -q '(Skipped)' "$log"; then
		SUMMARY+=("$name: skipped (not run, not passed):")
		while IFS= read -r l; do
			SUMMARY+=("    $l")
		done < <(grep '(Skipped)' "$log")
	fi
	return $rc
}

SUMMARY=()
status=0
run_pass "default build" "$BUILD_DIR" || status=1

# --- Sanitizer pass (ASan + UBSan) goes here. -------------------------------
# It will be a second run_pass in its own build directory, e.g.
#   run_pass "sanitizers" "$BUILD_DIR-asan" -DUIB_SANITIZE=ON || status=1
# ------------------------------------------------------------------------------

echo
echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
if [ $status != 0 ]; then
	echo "=== FAILED"
else
	echo "=== OK"
fi
exit $status
