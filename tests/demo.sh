#!/bin/bash
# Shows a uib device to the stock rdma-core tools, from a clean Debian 12:
#
#   sudo bash tests/demo.sh
#
# Installs missing build and runtime packages (as root), builds the tree
# into ./build (BUILD_DIR overrides), creates uib0 in the default run
# directory (/run/uib) unless it exists, and runs ibv_devices and
# ibv_devinfo against it.  The device stays; remove it with
# `build/providers/uib/uibctl del uib0`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
PACKAGES=(cmake gcc pkg-config libibverbs-dev ibverbs-utils rdma-core perftest
	  libnl-3-dev libnl-route-3-dev libmnl-dev check valgrind)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "demo: missing packages: ${missing[*]}" >&2
		echo "demo: run as root (sudo bash tests/demo.sh) to install them" >&2
		exit 1
	fi
	echo "=== installing ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}"
fi

echo "=== building in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$(nproc 2>/dev/null || echo 2)"
UIBCTL=$BUILD_DIR/providers/uib/uibctl

if [ -d /sys/module/ib_core ]; then
	echo "demo: warning: kernel RDMA (ib_core) is loaded; libibverbs then lists" >&2
	echo "demo: kernel devices only and ignores uib's SYSFS_PATH tree" >&2
fi

if "$UIBCTL" list | grep -q '^uib0[[:space:]]'; then
	echo "=== uib0 exists already"
else
	if [ "$(id -u)" != 0 ]; then
		echo "demo: creating uib0 needs root (it adds /dev/infiniband/uverbsN)" >&2
		exit 1
	fi
	echo "=== $UIBCTL add uib0"
	"$UIBCTL" add uib0
fi
"$UIBCTL" list

eval "$("$UIBCTL" env)"
echo "=== SYSFS_PATH=$SYSFS_PATH RDMAV_DRIVERS=${RDMAV_DRIVERS:-}"
echo "=== ibv_devices"
ibv_devices
echo "=== ibv_devinfo -v -d uib0"
ibv_devinfo -v -d uib0

cat <<MSG

uib0 is up.  To point verbs programs in your shell at it:

    eval "\$($UIBCTL env)"
    ibv_devinfo -d uib0

(from the top of the tree: eval "\$(build/providers/uib/uibctl env)").
More devices: $UIBCTL add uib1 --ports 2; remove: $UIBCTL del uib0.
Only root and group $(stat -c %G "${UIB_RUN_DIR:-/run/uib}/dev/uib0.state" 2>/dev/null || echo '?') may open uib0 (README "Trust model");
for other users: $UIBCTL add uib1 --group GROUP (members of GROUP).
MSG
