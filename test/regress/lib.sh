# lib.sh -- shared by the regress scenarios: a private cluster of real
# daemons in a temp dir, with emulated vsock (one directory per host),
# loopback TCP between hosts, and cleanup on exit.
#
# Each scenario sources this, calls the start_* helpers, asserts with
# check/fail, and exits 0 (pass) or 1 (fail).

set -u
: "${BINDIR:?BINDIR must point at the built binaries}"
T=$(mktemp -d "${TMPDIR:-/tmp}/vrelay-regress.XXXXXX")
# A block of 50 free loopback ports below the ephemeral range.
BASE=$(python3 - <<'PY'
import random, socket
for _ in range(100):
    base = 20000 + random.randrange(120) * 100
    try:
        held = []
        for p in range(base, base + 50):
            s = socket.socket(); s.bind(("127.0.0.1", p)); held.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in held: s.close()
PY
)
PIDS=""
FAILED=0
NAME=$(basename "$0" .sh)

# Sanitizer builds: report every error, keep freed memory small so
# RSS figures stay meaningful.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=16:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	# A daemon's sanitizer report (at any time, or leaks at exit) fails
	# the scenario even if everything else passed.
	if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
	    "$T"/*.log >/dev/null 2>&1; then
		log "FAIL: sanitizer report in $(grep -l -E \
		    'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log)"
		FAILED=1
	fi
	if [ "$FAILED" = 0 ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$T"
	else
		echo "  logs kept in $T" >&2
		exit 1
	fi
}
trap cleanup EXIT

log() { echo "  $NAME: $*" >&2; }
fail() { log "FAIL: $*"; FAILED=1; exit 1; }
check() {	# check "what" command...
	local what=$1; shift
	"$@" || fail "$what"
}

# Wait until a unix socket exists (a daemon is up) or fail.
wait_sock() {
	local i
	for i in $(seq 1 100); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	fail "no socket $1"
}

# Start the echo backend: start_backend PORT [extra vtraffic args]
start_backend() {
	local port=$1; shift
	"$BINDIR/vtraffic" serve --listen "tcp://127.0.0.1:$port" "$@" \
	    2>>"$T/backend.log" &
	PIDS="$PIDS $!"
	BACKEND_PID=$!
}

# The appliance VM on host H: start_appliance H BACKENDPORT [args]
start_appliance() {
	local h=$1 bport=$2; shift 2
	"$BINDIR/vappliance" run --listen vsock://any:1024 \
	    --vsock-dir "$T/$h" --vsock-cid 3 \
	    --backend "tcp://127.0.0.1:$bport" --status "$T/app.sock" "$@" \
	    2>>"$T/app.log" &
	PIDS="$PIDS $!"
	APP_PID=$!
	wait_sock "$T/app.sock"
}

# A relay for host H with mesh port P: start_relay H P APPHOST [args]
# Peers are hosts A, B, C at BASE+1, +2, +3.
start_relay() {
	local h=$1 p=$2 ah=$3; shift 3
	rm -f "$T/relay$h.sock"
	"$BINDIR/vrelay" run --host "$h" \
	    --mesh-listen "tcp://127.0.0.1:$p" \
	    --guest-listen vsock://any:2000 --vsock-dir "$T/$h" \
	    --appliance-host "$ah" --appliance vsock://3:1024 \
	    --peer "A=tcp://127.0.0.1:$((BASE + 1))" \
	    --peer "B=tcp://127.0.0.1:$((BASE + 2))" \
	    --peer "C=tcp://127.0.0.1:$((BASE + 3))" \
	    --status "$T/relay$h.sock" "$@" 2>>"$T/relay$h.log" &
	PIDS="$PIDS $!"
	eval "RELAY_${h}_PID=$!"
	wait_sock "$T/relay$h.sock"
}

# Traffic from a containerVM (CID 5+) on host H: traffic H CID [args]
traffic() {
	local h=$1 cid=$2; shift 2
	"$BINDIR/vtraffic" run --connect vsock://2:2000 --vsock-dir "$T/$h" \
	    --vsock-cid "$cid" "$@"
}

# A JSON field from a one-line JSON document on stdin.
json_get() {
	python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1"
}

# Resident memory of a process in KiB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
