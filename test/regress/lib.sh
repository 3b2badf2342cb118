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
BASE=$(python3 "$(dirname "$0")/../tools/portblock.py" 50) ||
    { echo "no free block of 50 loopback ports" >&2; exit 1; }
PIDS=""
FAILED=0
NAME=$(basename "$0" .sh)

# Sanitizer builds: report every error, keep freed memory small so
# RSS figures stay meaningful.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=16:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# Under valgrind (make valgrind sets VALGRIND=1) the daemons start and
# answer 20-50 times slower: the wait loops below wait WAIT_SCALE times
# as long before they give up.
: "${WAIT_SCALE:=$([ -n "${VALGRIND:-}" ] && echo 10 || echo 1)}"

# PID (COMM) if status RC says it died of SIGILL, SIGABRT, SIGBUS,
# SIGFPE or SIGSEGV: a crash, not a kill of ours.
crashed() {
	case $3 in 132|134|135|136|139) echo " $1 ($2, status $3)" ;; esac
}

cleanup() {
	local p c rc
	declare -A comm
	for p in $PIDS; do
		c=$(cat "/proc/$p/comm" 2>/dev/null) && comm[$p]=$c
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null; rc=$?
		CRASHED="${CRASHED:-}$(crashed "$p" "${comm[$p]:-?}" $rc)"
	done
	# A daemon that crashed, at exit or before, fails the scenario.
	if [ -n "${CRASHED:-}" ]; then
		log "FAIL: crashed:$CRASHED"
		FAILED=1
	fi
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
		[ "$FAILED" = 0 ] || exit 1
	fi
}
trap cleanup EXIT

log() { echo "  $NAME: $*" >&2; }
fail() { log "FAIL: $*"; FAILED=1; exit 1; }
# Not possible here (say why): exit 77, which test/faults/run.sh shows
# as SKIP.
skip() { log "SKIP: $*"; exit 77; }
check() {	# check "what" command...
	local what=$1; shift
	"$@" || fail "$what"
}

# Wait until a unix socket exists (a daemon is up) or fail.
wait_sock() {
	local i
	for i in $(seq 1 $((100 * WAIT_SCALE))); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	fail "no socket $1"
}

# Wait (up to $4 s, default 10) until PATTERN is on at least N lines
# of FILE: wait_lines FILE PATTERN N [SECS], nonzero on timeout.  For
# "every session has opened" and the like, where a fixed sleep is a
# guess that a slow machine (or valgrind) loses.
wait_lines() {
	local i c n=$(( ${4:-10} * 20 * WAIT_SCALE ))
	for i in $(seq 1 $n); do
		c=$(grep -c -- "$2" "$1" 2>/dev/null)
		[ "${c:-0}" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}

# Wait until something listens on loopback TCP PORT (from /proc, so the
# check opens no connection a backend would count).
wait_listen() {
	local i hex
	hex=$(printf '%04X' "$1")
	for i in $(seq 1 $((100 * WAIT_SCALE))); do
		awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { f = 1 }
		    END { exit !f }' /proc/net/tcp /proc/net/tcp6 && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1"
}

# Start the echo backend: start_backend PORT [extra vtraffic args]
start_backend() {
	local port=$1; shift
	"$BINDIR/vtraffic" serve --listen "tcp://127.0.0.1:$port" "$@" \
	    2>>"$T/backend.log" &
	PIDS="$PIDS $!"
	BACKEND_PID=$!
	wait_listen "$port"
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

# A guest agent cvm7 on host H (CID 7) whose legs go to the relay's
# --agent-listen vsock://any:2002, and its programs' traffic in the
# background (vtraffic ARGS, result in $T/agent.json; AGENT_TP its pid).
agent_traffic() {
	local h=$1; shift
	"$BINDIR/vguest" run --name cvm7 --relay vsock://2:2002 \
	    --vsock-dir "$T/$h" --vsock-cid 7 --listen "unix:$T/agent.in" \
	    --status "$T/agent.sock" 2>>"$T/agent.log" &
	PIDS="$PIDS $!"
	wait_sock "$T/agent.sock"
	"$BINDIR/vtraffic" run --connect "unix:$T/agent.in" "$@" \
	    >"$T/agent.json" 2>>"$T/agent-traffic.log" &
	AGENT_TP=$!
}

# "N MS": the session-resumed lines in LOG at or after T0 (a log
# timestamp), and the ms from T0 to the last of them (-1 if none).
resumed_since() {
	python3 - "$1" "$2" <<'PY'
import datetime, sys
f = "%Y-%m-%dT%H:%M:%S.%fZ"
t0 = datetime.datetime.strptime(sys.argv[2], f)
ts = [t for t in (datetime.datetime.strptime(l.split()[0], f)
      for l in open(sys.argv[1]) if "session-resumed" in l) if t >= t0]
print(len(ts), int((max(ts) - t0).total_seconds() * 1000) if ts else -1)
PY
}

# A JSON field from a one-line JSON document on stdin.
json_get() {
	python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1"
}

# CPU ticks (user + system) a process has used.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Resident memory of a process in KiB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# --- scenarios on deploy/cluster.sh (BIN; HOSTS h1.., PLAIN, total) ----
rstat() {	# rstat HOST KEY: a field of relay hHOST's status
	"$BIN/vrelay" status --status "$T/relay-h$1.sock" --json |
	    json_get "$2"
}
# Every session established again, the agents' ($total) and the
# agentless ones at relay h2 ($PLAIN), within $1 tenths of a second.
all_back() {
	local i
	for i in $(seq 1 $(($1 * WAIT_SCALE))); do
		[ "$(cl_established)" = "$total" ] &&
		    [ "$(rstat 2 sessions.established)" = "$PLAIN" ] &&
		    return 0
		sleep 0.1
	done
	return 1
}

# --- vSphere: the vCenter simulator and the locator -------------------
: "${VCSIMH:=$(cd "$(dirname "$0")/../.." && pwd)/obj/vcsimh}"

. "$(dirname "$0")/../vcsim/vcsim.sh"

# Start govmomi's simulator with hosts A, B, C and the appliance VM on
# B, VMCI CID 3 (the emulated appliance's): start_vcsim [vcsimh args].
# vcsim_cmd and vcsim_stop (test/vcsim/vcsim.sh) talk to it; VCSIM_URL,
# VCSIM_VM and VCSIM_SHA256/VCSIM_SHA1 come from its first line.
start_vcsim() {
	vcsim_start "$T" -host-names A,B,C -vm vch-appliance -on B \
	    -vmci-cid 3 -user vrelay -password 's3cret pass' "$@" ||
	    fail "simulator $VCSIMH did not start (make obj/vcsimh): \
$(cat "$T/vcsim.log" 2>/dev/null)"
	PIDS="$PIDS $VCSIM_PID"
}

# Credentials file for the simulator's user, mode 0600.
write_creds() {
	(umask 077; printf '{"user": "vrelay", "password": "%s"}\n' \
	    "${1:-s3cret pass}" >"$T/creds.json")
}

# The locator on port BASE+20: start_locator [args]
LOC_PORT=$((BASE + 20))
start_locator() {
	rm -f "$T/loc.sock"
	"$BINDIR/vlocator" run --vcenter "$VCSIM_URL" \
	    --credentials "$T/creds.json" --vm vch-appliance \
	    --listen "tcp://127.0.0.1:$LOC_PORT" --status "$T/loc.sock" \
	    --retry-max 1s "$@" 2>>"$T/loc.log" &
	LOC_PID=$!
	PIDS="$PIDS $!"
	wait_sock "$T/loc.sock"
}

# A relay for host H, mesh port P, routed by the locator only:
# start_lrelay H P [args]
start_lrelay() {
	local h=$1 p=$2; shift 2
	rm -f "$T/relay$h.sock"
	"$BINDIR/vrelay" run --host "$h" \
	    --mesh-listen "tcp://127.0.0.1:$p" \
	    --guest-listen vsock://any:2000 --vsock-dir "$T/$h" \
	    --locator "tcp://127.0.0.1:$LOC_PORT" \
	    --status "$T/relay$h.sock" "$@" 2>>"$T/relay$h.log" &
	PIDS="$PIDS $!"
	eval "RELAY_${h}_PID=$!"
	wait_sock "$T/relay$h.sock"
}

# vlocator CMD --json through the status socket.
loc() {
	"$BINDIR/vlocator" "$1" --status "$T/loc.sock" --json
}

# Wait (up to $2 s, default 10) until python expression $1 over the
# "relays" answer R, "where" answer W and "status" answer S is true.
wait_loc() {
	local i n=$(( ${2:-10} * 20 * WAIT_SCALE ))
	for i in $(seq 1 $n); do
		if python3 - "$1" "$(loc relays 2>/dev/null)" \
		    "$(loc where 2>/dev/null)" "$(loc status 2>/dev/null)" <<'PY'
import json, sys
try:
    R = json.loads(sys.argv[2]); W = json.loads(sys.argv[3])
    S = json.loads(sys.argv[4])
    sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)
except Exception:
    sys.exit(1)
PY
		then return 0; fi
		sleep 0.05
	done
	return 1
}

# --- TLS: a cluster CA and certificates (deploy/mkcerts.sh) -----------
# mint_certs: CA, relays A B C, locator, appliance in $T/pki.
mint_certs() {
	local mk h
	mk="$(dirname "$0")/../../deploy/mkcerts.sh"
	{ "$mk" -d "$T/pki" ca &&
	  for h in A B C; do "$mk" -d "$T/pki" relay "$h" 127.0.0.1; done &&
	  "$mk" -d "$T/pki" locator vlocator 127.0.0.1 &&
	  "$mk" -d "$T/pki" appliance vappliance 127.0.0.1; } \
	    >>"$T/mkcerts.log" 2>&1 || fail "mkcerts: $(cat "$T/mkcerts.log")"
}
# tls NAME: the flags for the certificate NAME in $T/pki.
tls() {
	echo "--tls-cert $T/pki/$1.pem --tls-key $T/pki/$1.key" \
	    "--tls-ca $T/pki/ca.pem"
}
# wait_for SECS command...: until the command succeeds, or return 1.
wait_for() {
	local i n=$(( $1 * 20 * WAIT_SCALE )); shift
	for i in $(seq 1 $n); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
