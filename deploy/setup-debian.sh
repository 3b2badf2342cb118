#!/bin/sh
# setup-debian.sh -- install what vrelay builds, tests and demos with,
# from Debian 12's own packages.  Run as root (or with sudo).
set -e
PKGS="build-essential pkg-config libevent-dev libjansson-dev libssl-dev
libbsd-dev libcmocka-dev libcurl4-openssl-dev libxml2-dev python3 socat
procps clang libclang-rt-dev golang-go golang-github-vmware-govmomi-dev
haproxy gnuplot-nox iproute2 openssl valgrind"
# make check-vsock: a Debian kernel booted in qemu (TCG) for real
# AF_VSOCK.  Recommends would pull in ~900 MB (GUI, firmware), so these
# go in without them; the kernel is fetched by test/vsock/, not here.
VSOCK_PKGS="qemu-system-x86 busybox-static cpio xz-utils"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed" || missing="$missing $p"
done
vmissing=""
for p in $VSOCK_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed" || vmissing="$vmissing $p"
done
if [ -n "$missing$vmissing" ]; then
	echo "setup: installing$missing$vmissing"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	[ -z "$missing" ] ||
	    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
	[ -z "$vmissing" ] ||
	    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
	    --no-install-recommends $vmissing
fi
echo "setup: build dependencies present"
