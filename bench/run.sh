#!/bin/bash
# run.sh -- vrelay's benchmark harness (`make bench`, `make bench-smoke`).
#
# In one invocation on loopback it builds each topology, runs the same
# workloads (bin/vload) through it, and tears it down again:
#
#   direct          client -> backend
#   socat-1/-2      client -> socat [-> socat] -> backend
#   haproxy-1/-2    client -> haproxy [-> haproxy] -> backend (Debian's
#                   defaults, tcp mode)
#   haproxy-tuned-1/-2  the same with tune.bufsize 65536 and
#                   option splice-request/splice-response
#   vrelay-local    client -vsock-> relay B -vsock-> vappliance -> backend
#   vrelay-2hop-tls the same with mutual TLS between relays A and B (a
#                   TLS connection per leg, --mesh-links per-session)
#   vrelay-2hop-tls-shared  the same with one shared link carrying every
#                   leg (--mesh-links shared, the default with TLS)
#   vrelay-2hop     client -vsock-> relay A -tcp-> relay B -vsock->
#                   vappliance -> backend
#
# vsock is emulated (unix sockets in one directory per host, as in
# test/regress).  Topologies run alternately (A B C ... A B C ...) for
# ROUNDS rounds and the report quotes medians.  Idle memory, retarget
# latency and resume latency (appliance vMotions in the simulated
# cluster) run after the rounds.  Retarget runs on the stock simulator
# and again on VCSIMH_TICK (obj/vcsimh-tick10: its WaitForUpdatesEx
# looks for changes every 10 ms, not 250) if that is built, so the
# locator's own part shows end to end.  bench/report.py prints the
# tables and writes the JSON document.
#
# BENCH_SMOKE=1 runs every topology and workload for a fraction of a
# second with tiny sizes and checks only that each produced a number.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BINDIR:-$ROOT/bin}
VCSIMH=${VCSIMH:-$ROOT/obj/vcsimh}
VCSIMH_TICK=${VCSIMH_TICK:-$ROOT/obj/vcsimh-tick10}
SMOKE=${BENCH_SMOKE:-}
[ "$SMOKE" = 0 ] && SMOKE=
if [ -n "$SMOKE" ]; then
	: "${SECONDS_PER_RUN:=0.15}" "${ROUNDS:=1}" "${RTT_COUNT:=200}"
	: "${SESSIONS_LIST:=20}" "${RELAYS_LIST:=2}" "${RELOCATES:=1}"
	: "${SETUP_SECONDS:=0.15}" "${RESUME_SESSIONS:=20}" "${RESUME_MOVES:=1}"
	: "${RESUME_PRECOPY:=0.3}" "${RESUME_TLS:=1}"
else
	: "${SECONDS_PER_RUN:=2}" "${ROUNDS:=3}" "${RTT_COUNT:=20000}"
	: "${SESSIONS_LIST:=1000 10000}" "${RELAYS_LIST:=8 64}"
	: "${RELOCATES:=10}" "${SETUP_SECONDS:=$SECONDS_PER_RUN}"
	: "${RESUME_SESSIONS:=1000}" "${RESUME_MOVES:=10}"
	: "${RESUME_PRECOPY:=2 0.3}" "${RESUME_TLS:=1 0}"
fi
: "${STREAMS_LIST:=1 4}" "${SETUP_CONCURRENCY:=16}" "${RTT_CPU:=0}"
: "${IDLE_ROUNDS:=1}"
: "${TOPOLOGIES:=direct socat-1 socat-2 haproxy-1 haproxy-tuned-1 \
haproxy-2 haproxy-tuned-2 vrelay-local vrelay-2hop vrelay-2hop-tls \
vrelay-2hop-tls-shared}"
: "${IDLE_TOPOLOGIES:=haproxy-1 haproxy-tuned-1 haproxy-2 haproxy-tuned-2 \
vrelay-local vrelay-2hop vrelay-2hop-tls vrelay-2hop-tls-shared}"
if [ -n "$SMOKE" ]; then
	OUT=${BENCH_OUT:-$ROOT/obj/bench/smoke.json}
else
	OUT=${BENCH_OUT:-$ROOT/obj/bench/latest.json}
fi
HAPROXY=${HAPROXY:-haproxy}
SOCAT=${SOCAT:-socat}

for p in "$BIN/vload" "$BIN/vrelay" "$BIN/vappliance" "$BIN/vlocator" \
    "$VCSIMH"; do
	[ -x "$p" ] || { echo "bench: $p missing (make bench builds it)" >&2
		exit 1; }
done
for p in "$HAPROXY" "$SOCAT" taskset python3 timeout; do
	command -v "$p" >/dev/null ||
	    { echo "bench: $p not found" >&2; exit 1; }
done
# The interpreter itself rather than a version manager's shim (pyenv,
# asdf): a shim is a chain of shell scripts that costs ~100 ms of CPU
# per start, and the retarget and resume polls start Python while the
# daemons they time share the machine's cores with them.
PY=$(python3 -c 'import sys; print(sys.executable)')
[ -x "$PY" ] || PY=python3

T=$(mktemp -d "${TMPDIR:-/tmp}/vrelay-bench.XXXXXX")
RAW=$T/raw.jsonl
: >"$RAW"
NCPU=$(nproc)
# Idle sessions need descriptors: a one-hop proxy holds two per session.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
SESSIONS_CAP=$(( (NOFILE - 100) / 2 ))
MAXSESS=0
for n in $SESSIONS_LIST; do
	[ "$n" -gt "$MAXSESS" ] && MAXSESS=$n
done

# A block of 200 free loopback ports below the ephemeral range.
BASE=$("$PY" "$ROOT/test/tools/portblock.py" 200)
[ -n "$BASE" ] || { echo "bench: no free port block" >&2; exit 1; }
BACK=$((BASE + 1))		# the backend
HOP1=$((BASE + 11))		# socat/haproxy next to the backend
HOP2=$((BASE + 12))		# socat/haproxy the client talks to
MESH_A=$((BASE + 31))
MESH_B=$((BASE + 32))
LOC_PORT=$((BASE + 40))
RT_PORT=$((BASE + 100))		# retarget relays: RT_PORT + i

TOPO_PIDS=""	# name=pid of what the current topology runs
ALL_PIDS=""
FAILED=0
SEQ=0

cleanup() {
	exec 7>&-
	topo_stop
	for p in $ALL_PIDS; do kill "$p" 2>/dev/null; done
	for p in $ALL_PIDS; do wait "$p" 2>/dev/null; done
	if [ "$FAILED" = 0 ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$T"
	else
		echo "bench: logs kept in $T" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "bench: $*" >&2; }
now_ms() { echo $(( ${EPOCHREALTIME/[.,]/} / 1000 )); }	# no fork+exec

# Remember a process of the current topology: bg NAME PID
bg_add() { TOPO_PIDS="$TOPO_PIDS $1=$2"; }
pid_of() {
	local e
	for e in $TOPO_PIDS; do
		[ "${e%%=*}" = "$1" ] && { echo "${e#*=}"; return; }
	done
}

# Wait until something accepts on loopback PORT.
wait_tcp() {
	local i
	for i in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.025
	done
	say "nothing listens on port $1"
	return 1
}

# Wait until a daemon's status socket exists (it is opened last).
wait_sock() {
	local i
	for i in $(seq 1 200); do
		[ -S "$1" ] && return 0
		sleep 0.025
	done
	say "no socket $1"
	return 1
}

start_backend() {
	"$BIN/vload" serve --listen "tcp://127.0.0.1:$BACK" \
	    >/dev/null 2>>"$T/backend.log" &
	bg_add backend $!
	wait_tcp "$BACK"
}

# socat LISTENPORT TOPORT NAME: socat as its users run it (defaults).
start_socat() {
	"$SOCAT" "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
	    "TCP:127.0.0.1:$2" 2>>"$T/socat.log" &
	bg_add "$3" $!
	wait_tcp "$1"
}

# haproxy LISTENPORT TOPORT NAME default|tuned: one tcp-mode proxy in
# the foreground.  The defaults are the Debian package's (timeouts, a
# stats socket); tuned is what HAProxy's users do for bulk TCP.
start_haproxy() {
	local cfg=$D/$3.cfg
	{
		echo "global"
		echo "    stats socket $D/$3.stat mode 600 level admin"
		[ "$4" = tuned ] && echo "    tune.bufsize 65536"
		echo "defaults"
		echo "    mode tcp"
		echo "    timeout connect 5s"
		echo "    timeout client 50s"
		echo "    timeout server 50s"
		if [ "$4" = tuned ]; then
			echo "    option splice-request"
			echo "    option splice-response"
		fi
		echo "listen l"
		echo "    bind 127.0.0.1:$1"
		echo "    server s 127.0.0.1:$2"
	} >"$cfg"
	"$HAPROXY" -db -f "$cfg" 2>>"$T/haproxy.log" &
	bg_add "$3" $!
	wait_tcp "$1"
}

# vappliance and backend on host B (CID 3), as test/regress/lib.sh.
start_appliance() {
	"$BIN/vappliance" run --listen vsock://any:1024 --vsock-dir "$D/B" \
	    --vsock-cid 3 --backend "tcp://127.0.0.1:$BACK" \
	    --max-sessions $((MAXSESS + 1000)) --status "$D/app.sock" --quiet \
	    2>>"$T/vappliance.log" &
	bg_add vappliance $!
	wait_sock "$D/app.sock"
}

# A relay for host H (A or B) with static routing to the appliance on B;
# TLS=1: with its certificate from $T/pki (deploy/mkcerts.sh).
start_relay() {
	local h=$1 p=$2 tls=()
	if [ "${TLS:-0}" = 1 ]; then
		if [ ! -f "$T/pki/B.pem" ]; then
			{ "$ROOT/deploy/mkcerts.sh" -d "$T/pki" ca &&
			  "$ROOT/deploy/mkcerts.sh" -d "$T/pki" relay A &&
			  "$ROOT/deploy/mkcerts.sh" -d "$T/pki" relay B; } \
			    >>"$T/mkcerts.log" 2>&1 || return 1
		fi
		tls=(--tls-cert "$T/pki/$h.pem" --tls-key "$T/pki/$h.key"
		    --tls-ca "$T/pki/ca.pem")
	fi
	"$BIN/vrelay" run --host "$h" --mesh-listen "tcp://127.0.0.1:$p" \
	    --guest-listen vsock://any:2000 --vsock-dir "$D/$h" \
	    --appliance-host B --appliance vsock://3:1024 \
	    --peer "A=tcp://127.0.0.1:$MESH_A" \
	    --peer "B=tcp://127.0.0.1:$MESH_B" \
	    --max-sessions $((MAXSESS + 1000)) "${tls[@]}" ${MESH_ARGS:-} \
	    --status "$D/relay$h.sock" --quiet 2>>"$T/relay$h.log" &
	bg_add "relay-$h" $!
	wait_sock "$D/relay$h.sock"
}

# Build topology NAME; sets CONNECT and CARGS (the client's address and
# vsock emulation) and MEASURE (processes whose memory idle reports).
topo_start() {
	SEQ=$((SEQ + 1))
	D=$T/run$SEQ
	mkdir -p "$D"
	CARGS=()
	MEASURE=""
	start_backend || return 1
	case $1 in
	direct)
		CONNECT=tcp://127.0.0.1:$BACK ;;
	socat-1)
		start_socat "$HOP1" "$BACK" socat || return 1
		CONNECT=tcp://127.0.0.1:$HOP1 ;;
	socat-2)
		start_socat "$HOP1" "$BACK" socat-out || return 1
		start_socat "$HOP2" "$HOP1" socat-in || return 1
		CONNECT=tcp://127.0.0.1:$HOP2 ;;
	haproxy-1|haproxy-tuned-1)
		local mode=default
		[ "$1" = haproxy-tuned-1 ] && mode=tuned
		start_haproxy "$HOP1" "$BACK" haproxy $mode || return 1
		CONNECT=tcp://127.0.0.1:$HOP1
		MEASURE="haproxy" ;;
	haproxy-2|haproxy-tuned-2)
		local mode=default
		[ "$1" = haproxy-tuned-2 ] && mode=tuned
		start_haproxy "$HOP1" "$BACK" haproxy-out $mode || return 1
		start_haproxy "$HOP2" "$HOP1" haproxy-in $mode || return 1
		CONNECT=tcp://127.0.0.1:$HOP2
		MEASURE="haproxy-in haproxy-out" ;;
	vrelay-local)
		start_appliance || return 1
		start_relay B "$MESH_B" || return 1
		CONNECT=vsock://2:2000
		CARGS=(--vsock-dir "$D/B" --vsock-cid 5)
		MEASURE="relay-B vappliance" ;;
	vrelay-2hop|vrelay-2hop-tls|vrelay-2hop-tls-shared)
		[ "$1" != vrelay-2hop ] && TLS=1
		[ "$1" = vrelay-2hop-tls ] &&
		    MESH_ARGS="--mesh-links per-session"
		[ "$1" = vrelay-2hop-tls-shared ] &&
		    MESH_ARGS="--mesh-links shared"
		start_appliance || return 1
		start_relay B "$MESH_B" || { TLS=0 MESH_ARGS=; return 1; }
		start_relay A "$MESH_A" || { TLS=0 MESH_ARGS=; return 1; }
		TLS=0 MESH_ARGS=
		CONNECT=vsock://2:2000
		CARGS=(--vsock-dir "$D/A" --vsock-cid 5)
		MEASURE="relay-A relay-B vappliance" ;;
	*)
		say "unknown topology $1"; return 1 ;;
	esac
}

# Stop what the current topology runs (socat's per-connection children
# first: they are not in the list).
topo_stop() {
	local e p c
	for e in $TOPO_PIDS; do
		p=${e#*=}
		case $e in
		socat*)
			for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
				kill "$c" 2>/dev/null
			done ;;
		esac
		kill "$p" 2>/dev/null
	done
	for e in $TOPO_PIDS; do wait "${e#*=}" 2>/dev/null; done
	TOPO_PIDS=""
}

# Pin every process of the topology (all threads) to CPU list $1.
topo_pin() {
	local e
	for e in $TOPO_PIDS; do
		taskset -a -p -c "$1" "${e#*=}" >/dev/null 2>&1
	done
}

# A JSON string of $1 (for error messages in the raw log).
json_str() {
	"$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"
}

# Run one vload client and log its result:
#   client TOPO ROUND WORKLOAD [taskset...] vload ARGS...
client() {
	local topo=$1 round=$2 wl=$3 out rc err
	shift 3
	out=$(timeout 120 "$@" "${CARGS[@]}" 2>"$T/client.err")
	rc=$?
	if [ $rc = 0 ] && [ -n "$out" ]; then
		printf '{"topo":"%s","round":%d,"workload":"%s",'\
'"result":%s}\n' "$topo" "$round" "$wl" "$out" >>"$RAW"
		return 0
	fi
	err=$(tail -n 3 "$T/client.err" | tr '\n' ' ')
	[ $rc = 124 ] && err="timed out after 120 s; $err"
	say "$topo $wl: failed (exit $rc): $err"
	printf '{"topo":"%s","round":%d,"workload":"%s","error":%s}\n' \
	    "$topo" "$round" "$wl" "$(json_str "$err")" >>"$RAW"
	FAILED=1
	return 1
}

# Every throughput/latency/setup workload through the current topology.
workloads() {
	local topo=$1 r=$2 n dir
	for n in $STREAMS_LIST; do
		for dir in up down; do
			client "$topo" "$r" "bulk_${dir}_$n" "$BIN/vload" bulk \
			    --connect "$CONNECT" --streams "$n" --dir "$dir" \
			    --seconds "$SECONDS_PER_RUN"
		done
	done
	# RTT: everything on one CPU, where a hop costs its real work.
	topo_pin "$RTT_CPU"
	client "$topo" "$r" rtt taskset -c "$RTT_CPU" "$BIN/vload" rtt \
	    --connect "$CONNECT" --size 64 --count "$RTT_COUNT"
	topo_pin "0-$((NCPU - 1))"
	client "$topo" "$r" setup "$BIN/vload" setup --connect "$CONNECT" \
	    --seconds "$SETUP_SECONDS" --concurrency "$SETUP_CONCURRENCY"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# Idle memory: N echoed sessions held open, RSS delta of each process.
idle_one() {
	local topo=$1 r=$2 n=$3 asked=$4 name p before="" after="" ip i rc
	local procs="" mc
	# HAProxy sizes maxconn from the descriptor limit (and reserves
	# descriptors for splice pipes): past it, sessions queue.
	for name in $MEASURE; do
		case $name in haproxy*) ;; *) continue ;; esac
		mc=$(echo "show info" |
		    "$SOCAT" - "UNIX-CONNECT:$D/$name.stat" 2>/dev/null |
		    sed -n 's/^Maxconn: //p')
		if [ -n "$mc" ] && [ "$n" -gt "$mc" ]; then
			say "$topo idle $n: skipped, $name's maxconn is $mc"
			printf '{"topo":"%s","round":%d,"workload":"idle",'\
'"sessions":%d,"asked":%d,"skipped":"%s maxconn is %s (nofile %s)"}\n' \
			    "$topo" "$r" "$n" "$asked" "$name" "$mc" "$NOFILE" \
			    >>"$RAW"
			return 0
		fi
	done
	# One session first, so one-time setup is in the baseline.
	client "$topo" "$r" idle-warmup "$BIN/vload" rtt --connect "$CONNECT" \
	    --count 20 >/dev/null || return 1
	sleep 0.2
	for name in $MEASURE; do
		before="$before $name=$(rss_kb "$(pid_of "$name")")"
	done
	rm -f "$D/hold"
	timeout 300 "$BIN/vload" idle --connect "$CONNECT" --sessions "$n" \
	    --hold-file "$D/hold" --concurrency 64 "${CARGS[@]}" \
	    >"$D/idle.json" 2>"$T/client.err" &
	ip=$!
	for i in $(seq 1 3000); do
		[ -e "$D/hold" ] && break
		kill -0 "$ip" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -e "$D/hold" ]; then
		kill "$ip" 2>/dev/null
		wait "$ip"
		rc=$?
		local err
		err=$(tail -n 3 "$T/client.err" | tr '\n' ' ')
		say "$topo idle $n: failed (exit $rc): $err"
		printf '{"topo":"%s","round":%d,"workload":"idle",'\
'"sessions":%d,"asked":%d,"error":%s}\n' "$topo" "$r" "$n" "$asked" \
		    "$(json_str "$err")" >>"$RAW"
		FAILED=1
		return 1
	fi
	sleep 0.5	# let the far ends finish their part of each session
	for name in $MEASURE; do
		after="$after $name=$(rss_kb "$(pid_of "$name")")"
	done
	kill "$ip" 2>/dev/null
	wait "$ip"
	for name in $MEASURE; do
		p=$(echo "$before" | tr ' ' '\n' | sed -n "s/^$name=//p")
		i=$(echo "$after" | tr ' ' '\n' | sed -n "s/^$name=//p")
		procs="$procs${procs:+,}\"$name\":{\"before_kb\":${p:-null},"
		procs="$procs\"after_kb\":${i:-null}}"
	done
	printf '{"topo":"%s","round":%d,"workload":"idle","sessions":%d,'\
'"asked":%d,"procs":{%s},"result":%s}\n' "$topo" "$r" "$n" "$asked" \
	    "$procs" "$(cat "$D/idle.json")" >>"$RAW"
}

# --- retarget latency: the real vlocator on govmomi's simulator -------
. "$ROOT/test/vcsim/vcsim.sh"	# vcsim_start, vcsim_cmd (VCSIM_ANSWER)

# Wait until the locator says the appliance is on $1 and all $2 relays
# have acknowledged it (at most 30 s).  One interpreter polls: a start
# per poll would take CPU from the locator and relays being timed.
wait_converged() {
	"$PY" - "$1" "$2" "$BIN/vlocator" "$D/loc.sock" <<'PY'
import json, subprocess, sys, time
host, n, vlocator, sock = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    sys.argv[4]
def ask(what):
    p = subprocess.run([vlocator, what, "--status", sock, "--json"],
                       capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else None
deadline = time.time() + 30
while time.time() < deadline:
    try:
        w = ask("where")
        r = ask("relays")
        if (w and r and w["appliance_host"] == host and
                len(r["relays"]) == n and
                all(x["connected"] and x["converged"] for x in r["relays"])):
            sys.exit(0)
    except (ValueError, KeyError):
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

# N relays on the locator; RELOCATES moves between hosts h01 and h02;
# SIM: stock (VCSIMH) or tick10 (VCSIMH_TICK).
retarget_one() {
	local n=$1 sim=$2 i h hosts="" to t0 rp sim_bin=$VCSIMH
	[ "$sim" = tick10 ] && sim_bin=$VCSIMH_TICK
	SEQ=$((SEQ + 1))
	D=$T/run$SEQ
	mkdir -p "$D"
	for i in $(seq 1 "$n"); do
		hosts="$hosts${hosts:+,}$(printf 'h%02d' "$i")"
	done
	[ "$n" -lt 2 ] && hosts="h01,h02"
	VCSIMH=$sim_bin vcsim_start "$D" -host-names "$hosts" \
	    -vm vch-appliance -on h01 -vmci-cid 3 -tls -user vrelay \
	    -password bench-pass ||
	    { say "simulator did not start"; return 1; }
	bg_add vcsim "$VCSIM_PID"
	local url=$VCSIM_URL thumb=$VCSIM_SHA256
	(umask 077; echo '{"user": "vrelay", "password": "bench-pass"}' \
	    >"$D/creds.json")
	"$BIN/vlocator" run --vcenter "$url" --credentials "$D/creds.json" \
	    --thumbprint "$thumb" --vm vch-appliance \
	    --listen "tcp://127.0.0.1:$LOC_PORT" --status "$D/loc.sock" \
	    --retry-max 1s --quiet 2>>"$T/vlocator.log" &
	bg_add vlocator $!
	wait_sock "$D/loc.sock" || return 1
	"$BIN/vlocator" watch --status "$D/loc.sock" --json \
	    >"$D/watch.jsonl" 2>/dev/null &
	bg_add watch $!
	for i in $(seq 1 "$n"); do
		h=$(printf 'h%02d' "$i")
		"$BIN/vrelay" run --host "$h" \
		    --mesh-listen "tcp://127.0.0.1:$((RT_PORT + i))" \
		    --vsock-dir "$D/$h" --locator "tcp://127.0.0.1:$LOC_PORT" \
		    --status "$D/r$h.sock" --quiet 2>>"$T/retarget-relays.log" &
		bg_add "relay-$h" $!
	done
	for i in $(seq 1 "$n"); do
		wait_sock "$D/r$(printf 'h%02d' "$i").sock" || return 1
	done
	wait_converged h01 "$n" ||
	    { say "retarget: $n relays did not converge on h01"; return 1; }
	to=h01
	for i in $(seq 1 "$RELOCATES"); do
		[ "$to" = h01 ] && to=h02 || to=h01
		t0=$(now_ms)
		vcsim_cmd relocate "$to"
		rp=$VCSIM_ANSWER
		case $rp in *'"relocated"'*) ;; *)
			say "retarget: relocate $to: $rp"; return 1 ;; esac
		if ! wait_converged "$to" "$n"; then
			say "retarget: $n relays did not converge on $to"
			printf '{"workload":"retarget","sim":"%s","relays":%d,'\
'"move":%d,"error":"did not converge"}\n' "$sim" "$n" "$i" >>"$RAW"
			FAILED=1
			return 1
		fi
		"$PY" - "$D/watch.jsonl" "$t0" "$to" "$n" "$i" "$rp" "$sim" \
		    >>"$RAW" <<'PY'
import json, sys
path, t0, to, n, move = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    int(sys.argv[4]), int(sys.argv[5])
task_ms = json.loads(sys.argv[6]).get("ms")
sim = sys.argv[7]
ev = []
for line in open(path):
    try:
        ev.append(json.loads(line))
    except ValueError:
        pass
pubs = [e for e in ev if e.get("event") == "publish" and
        e.get("appliance_host") == to and e["ts"] >= t0]
out = {"workload": "retarget", "sim": sim, "relays": n, "move": move,
       "to": to}
if not pubs:
    out["error"] = "no publish event for %s" % to
else:
    epoch = pubs[-1]["epoch"]
    acks = {}
    for e in ev:
        if e.get("event") == "ack" and e.get("epoch") == epoch:
            acks[e["host"]] = e["ts"]
    if len(acks) < n:
        out["error"] = "%d of %d acks for epoch %d" % (len(acks), n, epoch)
    else:
        last = max(acks.values())
        out["result"] = {"epoch": epoch, "total_ms": last - t0,
                         "publish_ms": pubs[-1]["ts"] - t0,
                         "relocate_task_ms": task_ms,
                         "acks_ms": last - pubs[-1]["ts"]}
print(json.dumps(out))
PY
	done
	exec 7>&-
}

# --- resume latency: live sessions through the simulated cluster ------
# (deploy/cluster.sh).  N idle sessions from an agentless guest on h2
# through relay h2; the appliance is vMotioned RESUME_MOVES times; for
# each move, every session's resume time (leg lost -> resumed, at its
# client end) and how long vSphere and the locator took to push the
# new target.  Runs in a subshell: the cluster's errors end only it.
resume_one() (
	local n=$1 i to t0 ip
	T=$T/resume$n-$2-$3
	mkdir -p "$T"
	# TLS explicitly: a topology run before may have left it set.
	HOSTS=3 CVMS=0 PLAIN=0 HOLD=60s CL_PRECOPY=$2 TLS=$3
	. "$ROOT/deploy/cluster.sh"
	trap cl_stop EXIT
	cl_start >/dev/null
	timeout 600 "$BIN/vload" idle --connect vsock://2:2000 \
	    --vsock-dir "$T/h2" --vsock-cid 9 --sessions "$n" \
	    --hold-file "$T/hold" --concurrency 64 >"$T/idle.json" \
	    2>"$T/idle.err" &
	ip=$!
	cl_bg "$ip"
	for i in $(seq 1 3000); do
		[ -e "$T/hold" ] && break
		kill -0 "$ip" 2>/dev/null || break
		sleep 0.1
	done
	[ -e "$T/hold" ] || { say "resume: $n sessions did not open:" \
	    "$(tail -n 2 "$T/idle.err")"; return 1; }
	for i in $(seq 1 "$RESUME_MOVES"); do
		to=$(cl_other_host "$CL_APP_HOST")
		# The poller starts before the move and waits for a signal:
		# an interpreter starting while the sessions resume would
		# take its CPU from them.
		rm -f "$T/poll.ready" "$T/poll.t0"
		"$PY" - "$T/relay-h2.sock" "$n" "$i" \
		    "$T/poll.ready" "$T/poll.t0" "$T/locwatch.jsonl" "h$to" \
		    "$CL_PRECOPY" "$TLS" >>"$RAW" <<'PY' &
import json, signal, socket, sys, time
sock, n, move, ready, t0file, watch, to, precopy, tls = sys.argv[1:10]
n, move = int(n), int(move)
out = {"workload": "resume", "sessions": n, "move": move, "to": to,
       "precopy_s": float(precopy), "tls": tls == "1"}
# The relay's status socket, connected before the move: a vrelay
# client started per poll would take CPU from the resumes.
ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ctl.connect(sock)
ctlf = ctl.makefile("rwb")
def ask(cmd):
    ctlf.write(json.dumps({"cmd": cmd}).encode() + b"\n")
    ctlf.flush()
    a = json.loads(ctlf.readline() or b"{}")
    return a.get("sessions", {}) if a.get("ok") else {}
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
open(ready, "w").close()
if signal.sigtimedwait([signal.SIGUSR1], 120) is None:
    out["error"] = "the move did not happen"
    print(json.dumps(out))
    sys.exit(0)
t0 = int(open(t0file).read())
deadline = time.time() + 30
# Poll the relay's summary (cheap) until every session has resumed, and
# only then fetch all sessions: a 1,000-session dump every 100 ms would
# take CPU from the resumes it measures.
while time.time() < deadline:
    st = ask("status")
    if st.get("established", 0) == n and st.get("resumes", 0) >= n * move:
        break
    time.sleep(0.1)
# The total can run ahead of the slowest session (one resumed twice):
# then check the list itself until each has resumed.
while True:
    ss = ask("sessions") or []
    up = [s for s in ss if s["state"] == "established" and
          s.get("resumes", 0) >= move]
    if len(up) == n or time.time() > deadline:
        break
    time.sleep(0.1)
ms = sorted(s["last_resume_ms"] for s in up if "last_resume_ms" in s)
# The sessions follow the hint: they may all be back before vCenter
# tells the locator of the move (its publish), so wait for that, the
# resumes measured already.
push = None
pdeadline = time.time() + 3
while push is None and time.time() < pdeadline:
    for line in open(watch):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "publish" and \
                e.get("appliance_host") == to and e["ts"] >= t0:
            push = e["ts"] - t0
    if push is None:
        time.sleep(0.05)
if len(ms) < n:
    out["error"] = "%d of %d sessions resumed within 30 s" % (len(ms), n)
else:
    pct = lambda q: ms[min(len(ms) - 1, int(q / 100.0 * len(ms)))]
    out["result"] = {"p50_ms": pct(50), "p99_ms": pct(99), "max_ms": ms[-1],
                     "hint_to_publish_ms": push}
print(json.dumps(out))
PY
		pp=$!
		for k in $(seq 1 400); do
			[ -e "$T/poll.ready" ] && break
			kill -0 "$pp" 2>/dev/null || break
			sleep 0.05
		done
		[ -e "$T/poll.ready" ] ||
		    { say "resume: the poller did not start"; return 1; }
		t0=$(now_ms)
		cl_app_migrate "$to"
		echo "$t0" >"$T/poll.t0"
		kill -USR1 "$pp"
		wait "$pp"
	done
)

# --- the run --------------------------------------------------------
say "machine: $NCPU CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
say "results: $OUT; logs: $T"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_MS=$(now_ms)

for r in $(seq 1 "$ROUNDS"); do
	for topo in $TOPOLOGIES; do
		say "round $r/$ROUNDS: $topo"
		if topo_start "$topo"; then
			workloads "$topo" "$r"
		else
			say "$topo: could not start"
			printf '{"topo":"%s","round":%d,"workload":"start",'\
'"error":"topology did not start"}\n' "$topo" "$r" >>"$RAW"
			FAILED=1
		fi
		topo_stop
	done
done

for r in $(seq 1 "$IDLE_ROUNDS"); do
	for n in $SESSIONS_LIST; do
		m=$n
		if [ "$n" -gt "$SESSIONS_CAP" ]; then
			m=$SESSIONS_CAP
			say "idle: $n sessions need $((2 * n + 100))" \
			    "descriptors per one-hop proxy; the hard limit" \
			    "is $NOFILE:" \
			    "measuring $m"
		fi
		for topo in $IDLE_TOPOLOGIES; do
			mt=$m
			say "idle $r/$IDLE_ROUNDS: $topo, $mt sessions"
			if topo_start "$topo"; then
				idle_one "$topo" "$r" "$mt" "$n"
			else
				FAILED=1
			fi
			topo_stop
		done
	done
done

SIMS=stock
[ -x "$VCSIMH_TICK" ] && SIMS="stock tick10"
for sim in $SIMS; do
	for n in $RELAYS_LIST; do
		say "retarget: $n relays, $RELOCATES moves, simulator $sim"
		retarget_one "$n" "$sim" || FAILED=1
		topo_stop
	done
done

for tls in $RESUME_TLS; do
	for pc in $RESUME_PRECOPY; do
		for n in $RESUME_SESSIONS; do
			say "resume: $n sessions, $RESUME_MOVES appliance" \
			    "migrations, ${pc} s pre-copy, TLS $tls"
			resume_one "$n" "$pc" "$tls" || FAILED=1
		done
	done
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$OUT")"
"$PY" "$ROOT/bench/report.py" --raw "$RAW" --out "$OUT" \
    ${SMOKE:+--smoke} \
    --meta "ncpu=$NCPU" \
    --meta "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
	head -1)" \
    --meta "kernel=$(uname -r)" \
    --meta "haproxy=$("$HAPROXY" -v | head -1)" \
    --meta "socat=$("$SOCAT" -V | sed -n 's/^socat version \([^ ]*\).*/\1/p')" \
    --meta "libevent=$(pkg-config --modversion libevent 2>/dev/null)" \
    --meta "load_start=$LOAD_START" --meta "load_end=$LOAD_END" \
    --meta "elapsed_s=$(( ($(now_ms) - START_MS) / 1000 ))" \
    --meta "seconds_per_run=$SECONDS_PER_RUN" --meta "rounds=$ROUNDS" \
    --meta "rtt_count=$RTT_COUNT" --meta "rtt_cpu=$RTT_CPU" \
    --meta "setup_seconds=$SETUP_SECONDS" \
    --meta "setup_concurrency=$SETUP_CONCURRENCY" \
    --meta "sessions_list=$SESSIONS_LIST" --meta "nofile=$NOFILE" \
    --meta "relays_list=$RELAYS_LIST" --meta "relocates=$RELOCATES" \
    --meta "resume_sessions=$RESUME_SESSIONS" \
    --meta "resume_precopy=$RESUME_PRECOPY" \
    --meta "resume_tls=$RESUME_TLS" \
    --meta "resume_moves=$RESUME_MOVES" \
    --meta "smoke=${SMOKE:+1}" || FAILED=1
exit $FAILED
