#!/bin/bash
# Installation: (1) `cmake --install BUILD --prefix TMP/usr` puts the
# provider, its .driver file and uibctl under that prefix; (2) as root, and
# only when nothing else has installed a uib provider on the host, a real
# install to /usr makes stock ibv_devinfo find uib0 with SYSFS_PATH alone
# (no RDMAV_DRIVERS), after which every installed file is removed again,
# whether the test passed or not.
. "$(dirname "$0")/lib.sh"

uib_require_cmd cmake pkg-config ibv_devinfo

SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/uibinstall.XXXXXX)
SYS_MANIFEST=
SYS_FILES=()
fails=0
skipped=

# Undoes the system install (install_manifest.txt, plus the files we know
# it writes, in case it stopped before writing the manifest), then hands
# over to lib.sh's cleanup with the test's exit status.
install_cleanup() {
	local rc=$? f
	set +e
	if [ -n "$SYS_MANIFEST" ]; then
		# Devices made by the installed uibctl go before it does.
		if [ -n "${UIB_RUN_DIR:-}" ] && [ -x /usr/bin/uibctl ]; then
			for f in "$UIB_RUN_DIR"/dev/*.state; do
				[ -e "$f" ] || continue
				f=${f##*/}
				/usr/bin/uibctl del "${f%.state}" >/dev/null 2>&1
			done
		fi
		[ -f "$SYS_MANIFEST" ] && while IFS= read -r f; do
			rm -f -- "$f"
		done <"$SYS_MANIFEST"
		for f in "${SYS_FILES[@]}"; do
			rm -f -- "$f"
		done
	fi
	rm -rf "$T"
	(exit $rc)
	uib_cleanup
}
trap install_cleanup EXIT

bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

cache_var() { sed -n "s/^$1:[A-Z]*=//p" "$2/CMakeCache.txt"; }

# ---- 1. cmake --install --prefix ---------------------------------------------

P=$T/usr
libdir=$(cache_var CMAKE_INSTALL_LIBDIR "$UIB_BUILD_DIR")
[ -n "$libdir" ] || uib_fail "no CMAKE_INSTALL_LIBDIR in $UIB_BUILD_DIR/CMakeCache.txt"

# First find out where the files would go, under a throw-away DESTDIR, so
# that a --prefix the build ignores cannot write into the host.
DESTDIR=$T/probe cmake --install "$UIB_BUILD_DIR" --prefix "$P" >"$T/probe.log" 2>&1 ||
	{ cat "$T/probe.log" >&2; uib_fail "cmake --install (probe) failed"; }
outside=$(cd "$T/probe" && find . \( -type f -o -type l \) | sed 's|^\.||' | grep -v "^$P/" || true)
if [ -n "$outside" ]; then
	bad "cmake --install --prefix $P ignores the prefix for:" $outside \
		"(UIB_PROVIDER_DIR=$(cache_var UIB_PROVIDER_DIR "$UIB_BUILD_DIR")," \
		"UIB_DRIVER_CONF_DIR=$(cache_var UIB_DRIVER_CONF_DIR "$UIB_BUILD_DIR") are absolute)"
else
	cmake --install "$UIB_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
		{ cat "$T/install.log" >&2; uib_fail "cmake --install --prefix $P failed"; }
	so=$P/$libdir/libibverbs/libuib-rdmav34.so
	[ -f "$so" ] || bad "the provider should be installed as $so: $(find "$P" -type f)"
	driver=$(find "$P" -name uib.driver)
	if [ -z "$driver" ]; then
		bad "uib.driver should be installed under $P"
	else
		[ "$(cat "$driver")" = "driver uib" ] ||
			bad "$driver should say 'driver uib', says '$(cat "$driver")'"
	fi
	[ -x "$P/bin/uibctl" ] || bad "uibctl should be installed as $P/bin/uibctl"
	[ $fails = 0 ] && uib_pass "cmake --install --prefix puts $so, $driver and bin/uibctl under the prefix"
fi

# ---- 2. a real install to /usr --------------------------------------------------

sys_provider_dir=$(pkg-config --variable=libdir libibverbs)/libibverbs
sys_so=$sys_provider_dir/libuib-rdmav34.so
SYS_FILES=("$sys_so" /etc/libibverbs.d/uib.driver /usr/bin/uibctl)
if [ "$(id -u)" != 0 ]; then
	skipped="the install to /usr needs root"
elif [ -d /sys/module/ib_core ]; then
	skipped="kernel RDMA (ib_core) is loaded: libibverbs then ignores SYSFS_PATH"
else
	for f in "${SYS_FILES[@]}"; do
		[ -e "$f" ] && skipped="$f is already installed by something else"
	done
fi

if [ -n "$skipped" ]; then
	SYS_FILES=()
	echo "SKIP (install to /usr): $skipped"
else
	fails_before=$fails
	B=$T/build-usr
	cmake -S "$SRC_DIR" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF \
		>"$T/configure.log" 2>&1 ||
		{ cat "$T/configure.log" >&2; uib_fail "configuring $B for /usr failed"; }
	cmake --build "$B" -j"$(nproc)" >"$T/build.log" 2>&1 ||
		{ tail -n 30 "$T/build.log" >&2; uib_fail "building $B failed"; }
	# From here on the EXIT trap removes what the install writes.
	SYS_MANIFEST=$B/install_manifest.txt
	cmake --install "$B" >"$T/sysinstall.log" 2>&1 ||
		{ cat "$T/sysinstall.log" >&2; uib_fail "cmake --install to /usr failed"; }
	[ -f "$sys_so" ] || bad "the provider should be installed as $sys_so"
	[ "$(cat /etc/libibverbs.d/uib.driver 2>/dev/null)" = "driver uib" ] ||
		bad "/etc/libibverbs.d/uib.driver should say 'driver uib'"

	# The installed uibctl, in a private run directory.
	uib_setup_rundir
	trap install_cleanup EXIT	# uib_setup_rundir set its own
	UIBCTL=/usr/bin/uibctl
	"$UIBCTL" add uib0 || uib_fail "/usr/bin/uibctl add uib0"
	env_out=$("$UIBCTL" env)
	grep -q "^export SYSFS_PATH=$UIB_RUN_DIR/sys\$" <<<"$env_out" ||
		bad "installed uibctl env should export SYSFS_PATH: $env_out"
	! grep -q RDMAV_DRIVERS <<<"$env_out" ||
		bad "installed uibctl env should not need RDMAV_DRIVERS: $env_out"
	info=$(env -u RDMAV_DRIVERS SYSFS_PATH="$UIB_RUN_DIR/sys" ibv_devinfo -d uib0 2>&1) ||
		bad "ibv_devinfo -d uib0 with SYSFS_PATH only failed: $info"
	grep -q '^hca_id:[[:space:]]*uib0' <<<"$info" && grep -q PORT_ACTIVE <<<"$info" ||
		bad "ibv_devinfo with SYSFS_PATH only should show uib0 active: $info"
	"$UIBCTL" del uib0 || bad "/usr/bin/uibctl del uib0"
	[ $fails = "$fails_before" ] && uib_pass "installed to /usr, stock ibv_devinfo finds uib0 with SYSFS_PATH alone"
fi

[ $fails = 0 ] || exit 1
[ -z "$skipped" ] || uib_skip "only part of the test ran: $skipped"
exit 0
