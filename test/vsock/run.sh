#!/bin/sh
# test/vsock/run.sh -- make check-vsock: vrelay over REAL AF_VSOCK.
#
# This machine has no vsock loopback (its own /dev/vsock is the
# hypervisor's link, not ours to test on), but a Debian kernel booted
# in qemu (TCG) has one: vsock_loopback, where CID 1 (VMADDR_CID_LOCAL)
# reaches the guest itself.  So:
#
#   1. Kernel: the package linux-image-amd64 depends on now is fetched
#      with `apt-get download` into $CACHE (obj/vsock/kernel-VERSION),
#      never installed: only vmlinuz and the three vsock modules are
#      kept (.ko.xz/.zst/.gz decompressed here, so insmod needs no
#      decompressor).  Later runs reuse the cache.
#   2. Initramfs: busybox-static, test/vsock/init as /init, the modules,
#      and the binaries of `make all` (vrelay, vguest, vappliance,
#      vtraffic) with the shared libraries ldd lists plus the dynamic
#      loader, so the guest runs exactly what was built (a static
#      relink would test other binaries than the ones we ship).
#   3. qemu-system-x86_64 -accel tcg boots it under `timeout`; /init
#      runs the scenarios (see its header) and prints VSOCK_OK or
#      VSOCK_FAIL.  qemu's exit status says nothing (it is 0 after a
#      guest panic too): the verdict is that line on the console.
#
# Environment:
#   BINDIR          the built binaries (default bin)
#   VSOCK_CACHE     kernel cache and scratch (default obj/vsock)
#   VSOCK_TIMEOUT   seconds for the whole boot and test (default 90)
#   VSOCK_SMP       guest vCPUs (default 2)
#   VSOCK_NOLOOP=1  negative control: do not load vsock_loopback; the
#                   run must then FAIL (nothing reaches CID 1)
#   VSOCK_DEBUG=1   print the daemons' logs from the guest
#   KEEP=1          keep the scratch dir (initramfs, console log)
#
# Needs qemu-system-x86, busybox-static and cpio (deploy/setup-debian.sh)
# and, once per kernel version, apt-get's package lists and network.
set -eu

cd "$(dirname "$0")/../.."
BINDIR=${BINDIR:-bin}
CACHE=${VSOCK_CACHE:-obj/vsock}
TIMEOUT=${VSOCK_TIMEOUT:-90}
SMP=${VSOCK_SMP:-2}
BINS="vrelay vguest vappliance vtraffic"
MODS="vsock vmw_vsock_virtio_transport_common vsock_loopback"

say() { echo "check-vsock: $*"; }
die() { echo "check-vsock: FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for t in qemu-system-x86_64 cpio apt-cache dpkg-deb; do
	command -v "$t" >/dev/null 2>&1 ||
	    die "$t missing: run deploy/setup-debian.sh"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
    die "no static $BUSYBOX: install busybox-static (deploy/setup-debian.sh)"
for b in $BINS; do
	[ -x "$BINDIR/$b" ] || die "$BINDIR/$b missing: run make all"
done
mkdir -p "$CACHE"

# --- 1. the kernel -------------------------------------------------------
# The version linux-image-amd64 points at today (it changes with Debian
# updates, and the modules must match the kernel exactly).
T=$(now)
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
if [ -z "$KPKG" ]; then
	# No package lists (apt-get update never ran): use what is cached.
	K=$(ls -d "$CACHE"/kernel-* 2>/dev/null | tail -n 1)
	[ -n "$K" ] || die "cannot tell the kernel version: apt-cache" \
	    "depends linux-image-amd64 names no linux-image package" \
	    "(run apt-get update)"
	say "no package lists; using the cached $(basename "$K")"
else
	K=$CACHE/kernel-${KPKG#linux-image-}
fi
if [ ! -f "$K/vmlinuz" ]; then
	say "fetching $KPKG (once per kernel version)"
	D=$(mktemp -d "$CACHE/dl.XXXXXX")
	trap 'rm -rf "$D"' EXIT
	if (cd "$D" && apt-get download -q "$KPKG" >apt.log 2>&1); then
		# Only vmlinuz and the vsock modules: a full `dpkg-deb -x`
		# would write ~400 MB of modules this test never loads.
		dpkg-deb --fsys-tarfile "$D"/*.deb | (cd "$D" && tar -x \
		    --wildcards './boot/vmlinuz-*' \
		    './lib/modules/*/vmw_vsock/*')
		mkdir "$D/k"
		cp "$D"/boot/vmlinuz-* "$D/k/vmlinuz"
		for m in $MODS; do
			f=$(ls "$D"/lib/modules/*/kernel/net/vmw_vsock/$m.ko* \
			    2>/dev/null | head -n 1)
			[ -n "$f" ] || die "$KPKG has no $m.ko*"
			case $f in
			*.ko) cp "$f" "$D/k/$m.ko" ;;
			*.ko.xz) xz -dc "$f" >"$D/k/$m.ko" ;;
			*.ko.zst) zstd -qdc "$f" >"$D/k/$m.ko" ;;
			*.ko.gz) gzip -dc "$f" >"$D/k/$m.ko" ;;
			*) die "$f: unknown module compression" ;;
			esac
		done
		rm -rf "$K"
		mv "$D/k" "$K"
	else
		# Offline, or the lists name a version the mirror has
		# dropped: any cached kernel will do (its modules are its
		# own).
		cat "$D/apt.log" >&2
		K=$(ls -d "$CACHE"/kernel-* 2>/dev/null | tail -n 1)
		[ -n "$K" ] ||
		    die "apt-get download $KPKG failed (apt-get update?)"
		say "download failed; using the cached $(basename "$K")"
	fi
	rm -rf "$D"
	trap - EXIT
fi
KVER=${K##*/kernel-}
say "kernel $KVER ready in $(secs "$T") s"

# --- 2. the initramfs ----------------------------------------------------
T=$(now)
W=$(mktemp -d "$CACHE/run.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
R=$W/root
mkdir -p "$R/bin" "$R/lib/modules" "$R/proc" "$R/sys" "$R/dev" "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"	# for /init's #!; it installs the rest
cp test/vsock/init "$R/init"
chmod 755 "$R/init"
for m in $MODS; do cp "$K/$m.ko" "$R/lib/modules/"; done
for b in $BINS; do cp "$BINDIR/$b" "$R/bin/"; done
# Every library ldd resolves, and the loader, at the same paths.
for f in $(for b in $BINS; do ldd "$BINDIR/$b"; done |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    sort -u); do
	mkdir -p "$R$(dirname "$f")"
	cp -L "$f" "$R$f"
done
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
    >"$W/initramfs.cpio"
say "initramfs $(du -k "$W/initramfs.cpio" | cut -f1) KiB" \
    "($(ls "$R/lib/x86_64-linux-gnu" | wc -l) libraries) in $(secs "$T") s"

# --- 3. boot and judge ---------------------------------------------------
APPEND="console=ttyS0 panic=-1 quiet"
[ -z "${VSOCK_NOLOOP:-}" ] || APPEND="$APPEND vsock_noloop=1"
[ -z "${VSOCK_DEBUG:-}" ] || APPEND="$APPEND vsock_debug=1"
say "booting qemu (TCG, $SMP vCPU, timeout ${TIMEOUT}s)" \
    "${VSOCK_NOLOOP:+-- NEGATIVE CONTROL: vsock_loopback not loaded}"
T=$(now)
rc=0
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg \
    -smp "$SMP" -m 512 -nographic -no-reboot -net none \
    -kernel "$K/vmlinuz" -initrd "$W/initramfs.cpio" -append "$APPEND" \
    </dev/null >"$W/console.log" 2>&1 || rc=$?
took=$(secs "$T")
# The console has SeaBIOS escapes and lines glued together: grep -a,
# never anchored.
grep -a -o -E '(vsock-guest|VSOCK_|Kernel panic|insmod:).*' \
    "$W/console.log" | tr -d '\r' | sed 's/^/  | /; $a\\'
[ -z "${VSOCK_DEBUG:-}" ] || tr -d '\r' <"$W/console.log" | tail -n 200
ok=$(grep -a -o 'VSOCK_OK.*' "$W/console.log" | tr -d '\r' | head -n 1) ||
    true
if [ -n "$ok" ] && ! grep -a -q 'VSOCK_FAIL' "$W/console.log"; then
	say "PASS in $took s of qemu (kernel $KVER): $ok"
	exit 0
fi
[ -z "${KEEP:-}" ] || say "console log kept in $W/console.log"
if grep -a -q 'vsock_loopback is NOT loaded' "$W/console.log"; then
	die "vsock_loopback was NOT loaded in the guest, so AF_VSOCK had" \
	    "no transport to CID 1 (expected under VSOCK_NOLOOP=1)"
fi
[ "$rc" != 124 ] || die "guest timed out after ${TIMEOUT}s"
grep -a -q 'VSOCK_FAIL' "$W/console.log" && die "guest reported a failure"
die "no VSOCK_OK on the console (qemu exit $rc, $took s)"
