#!/bin/sh
# setup-debian.sh -- install what vrelay builds, tests and demos with,
# from Debian 12's own packages.  Run as root (or with sudo).
set -e
PKGS="build-essential pkg-config libevent-dev libjansson-dev libssl-dev
libbsd-dev libcmocka-dev libcurl4-openssl-dev libxml2-dev python3 socat
procps clang libclang-rt-dev golang-go golang-github-vmware-govmomi-dev
haproxy gnuplot-nox iproute2"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
echo "setup: build dependencies present"
