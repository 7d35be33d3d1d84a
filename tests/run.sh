#!/bin/bash
# Builds the tree with warnings as errors and runs every test with ctest:
# Check unit suites, integration tests (they need root; without it they
# report "skipped", which this script lists), benchmarks' smoke tests.
# Then the same again on a sanitizer (ASan + UBSan) build in $BUILD_DIR-asan.
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
# PASS_ENV (VAR=VALUE...) is the environment of that pass's ctest only,
# PASS_CTEST (options) its extra ctest options.
PASS_ENV=()
PASS_CTEST=()
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
	(cd "$dir" && env ${PASS_ENV[@]+"${PASS_ENV[@]}"} ctest --output-on-failure \
		${PASS_CTEST[@]+"${PASS_CTEST[@]}"}) 2>&1 | tee "$log" || rc=$?
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

# --- Sanitizer pass (ASan + UBSan) -----------------------------------------
# The same tests on a build with -fsanitize=address,undefined, next to the
# main build directory.  The integration tests run stock tools (rdma-core's
# examples, perftest, ibv_devinfo, bash itself) that are not instrumented
# but load our instrumented provider; the ASan runtime must then be the
# first library of the process, so it is preloaded into everything ctest
# starts.  Leak checks are off (the stock tools' leaks are not ours); a
# UBSan report stops the process (the build also has
# -fno-sanitize-recover=undefined).
# One stock tool cannot run with the ASan runtime: coreutils dd asks for
# aligned_alloc(page size, n) with n not a multiple of the page size, which
# GCC 12's ASan aborts on; dd is not ours, so a dd first in PATH runs it
# without the runtime.
# Excluded from this pass:
#   integration_valgrind  valgrind cannot run ASan-instrumented code (both
#                         replace malloc and own the shadow memory); the
#                         default pass runs it.
ASAN_RT=$(gcc -print-file-name=libasan.so 2>/dev/null || true)
if [ -z "$ASAN_RT" ] || [ ! -e "$ASAN_RT" ]; then
	SUMMARY+=("sanitizers: NOT RUN (gcc has no libasan.so)")
	status=1
else
	ASAN_BIN=$BUILD_DIR-asan/no-asan-bin
	mkdir -p "$ASAN_BIN"
	printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$(command -v dd)" \
		>"$ASAN_BIN/dd"
	chmod +x "$ASAN_BIN/dd"
	PASS_ENV=("LD_PRELOAD=$ASAN_RT"
		  "ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"
		  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
		  "PATH=$ASAN_BIN:$PATH")
	PASS_CTEST=(-E '^integration_valgrind$')
	run_pass "sanitizers" "$BUILD_DIR-asan" -DUIB_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug || status=1
	PASS_ENV=()
	PASS_CTEST=()
fi
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
