# faults.sh -- sourced by every fault scenario (f-*.sh): the regress
# library (../regress/lib.sh: temp dir, check/fail/skip, json_get,
# rss_kb, cleanup) and the simulated cluster (deploy/cluster.sh: hosts
# as network namespaces when root, vCenter simulator, locator, relays,
# appliance, guest agents, traffic), plus what judges a fault:
# ftool.py's verdicts and probes, per-session rates from the traffic
# timeline, RSS peaks, and "every daemon still answers".
#
# The cluster every scenario starts unless it says otherwise: 3 hosts,
# the appliance on h1, cvm1 (3 sessions through its agent) and the
# agentless guest "plain" (2 sessions) on h2, cvm2 (3 sessions) on h3.
# The echo backend reads each connection at 4 MiB/s, so the sessions
# stream at a known rate without taking both cores, and the daemons
# keepalive every 500 ms (a dead leg is noticed in 1.5 s).
. ../regress/lib.sh
BIN=$BINDIR
HOSTS=${HOSTS:-3} CVMS=${CVMS:-2} SESSIONS=${SESSIONS:-3} PLAIN=${PLAIN:-2}
HOLD=${HOLD:-10s}
SESS_ARGS=${SESS_ARGS:---keepalive 500ms}
BACKEND_ARGS=${BACKEND_ARGS:---slow 4M}
. ../../deploy/cluster.sh
# cl_stop sends this shell's stderr to /dev/null (its "exec 7>&-
# 2>/dev/null"): keep a copy for cleanup's verdict and log lines.
exec 3>&2
trap 'cl_stop; exec 2>&3; cleanup' EXIT

ft() { python3 ./ftool.py "$@"; }

# A failed expectation that should not stop the scenario (the later
# phases still run and report); the scenario fails at its end.
LATER=""
fail_later() { log "FAIL: $*"; LATER="${LATER:+$LATER; }$*"; }
done_later() { [ -z "$LATER" ] || fail "$LATER"; }

# Every containerVM's sessions and the plain guest's are established.
all_established() {
	local i n
	for i in $(seq 1 "${1:-100}"); do
		n=$(cl_established)
		[ "$n" = $((CVMS * SESSIONS)) ] &&
		    [ "$(sess_count "$T/relay-h2.sock" established)" = \
		    "$PLAIN" ] &&
		    return 0
		sleep 0.1
	done
	return 1
}

# Sessions on a daemon's status socket: sess_count SOCK [STATE]
# (count of that state, else all of them; 0 if none).
sess_count() {
	"$BIN/vrelay" status --status "$1" --json 2>/dev/null |
	    python3 -c 'import json, sys
s = json.load(sys.stdin)["sessions"]
print(s.get(sys.argv[1], 0))' "${2:-count}"
}

# Every daemon of the cluster is alive and answers its status socket.
all_answer() {
	local s
	for s in "$T"/loc.sock "$T"/app.sock "$T"/relay-h*.sock \
	    "$T"/cvm*.ctl; do
		"$BIN/vrelay" status --status "$s" --timeout 2000 \
		    >/dev/null 2>&1 || { log "$s does not answer"; return 1; }
	done
}

# Per-session receive rate of LABEL's sessions between two wall-clock
# ms: rate_of LABEL FROM TO FIELD (min or mean), in KiB/s.  Scenarios
# call a session unaffected if it keeps half its rate from before the
# fault: the machine is shared, so rates swing with its load, and what
# a fault that did reach it looks like is a stall (0) or the rate of
# whatever it waits on (a slow reader's 4 KiB/s).
rate_of() {
	local r
	r=$(ft rate "$T" "$1" "$2" "$3")
	[ "$(echo "$r" | json_get sessions)" -gt 0 ] ||
	    fail "no $1 session in the timeline between $2 and $3"
	echo $(( $(echo "$r" | json_get "$4") / 1024 ))
}

# Sleep SECS while sampling the RSS of every PID in RSS_PIDS; the peak
# of each is in PEAK_<pid> (KiB).
sleep_rss() {
	local n i p v
	n=$(awk -v s="$1" 'BEGIN { printf "%d", s * 5 + 0.5 }')
	for i in $(seq 1 "$n"); do
		for p in $RSS_PIDS; do
			v=$(rss_kb "$p" 2>/dev/null) || continue
			eval "[ \"\${PEAK_$p:-0}\" -lt $v ] && PEAK_$p=$v"
		done
		sleep 0.2
	done
}
peak() { eval "echo \${PEAK_$1:-0}"; }

# After the appliance's last simulated vMotion: how many sessions it
# resumed, and the longest resume_ms (detach to resume), from its log.
last_move_resumes() {
	awk '/ migrated from / { n = 0; max = 0 }
	    / session-resumed / { n++; sub(/.*resume_ms=/, "");
	    if ($1 + 0 > max) max = $1 + 0 }
	    END { print n + 0, max + 0 }' "$T/app.log"
}

# Wait up to SECS for a command to succeed: until SECS cmd...
until_ok() {
	local n=$(( $1 * 10 )) i; shift
	for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}

# The appliance moves to host N (WHY says after what): the locator
# follows, at least 8 sessions resume there, each within 2 s (the push
# comes ~0.2 s after the switchover, each resume a few ms later), and
# the generators' every byte checks out.
move_and_verify() {
	cl_app_migrate "$1"
	check "the locator followed the vMotion${2:+ $2}" until_ok 5 \
	    eval '[ "$(cl_where)" = h'"$1"' ]'
	all_established 50 || fail "sessions not back after the vMotion"
	set -- "$1" $(last_move_resumes)
	log "the vMotion: $2 sessions resumed on h$1, the slowest in $3 ms"
	[ "$2" -ge 8 ] || fail "only $2 sessions resumed at the appliance"
	[ "$3" -le 2000 ] || fail "a resume took $3 ms"
	cl_traffic_wait || log "a generator failed (verdict below)"
	ft verdict "$T" --ok cvm1,cvm2,plain >"$T/verdict.jsonl" ||
	    fail "$(cat "$T/verdict.jsonl")"
}
