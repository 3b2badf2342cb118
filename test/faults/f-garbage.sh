# A peer that sends garbage: 20 connections of random bytes (1 byte to
# 4 KiB), to every listener at once that parses what it gets: h1's mesh
# listener (TLS), the agent listeners of h1 (the appliance's host) and
# h2 (forwarded over TLS to h1), the appliance's own vSocket listener,
# the locator's relay listener (TLS), and every daemon's status socket.
# Each connection is closed by the far end, at once (or, for a few
# bytes too short to judge, at the 5 s handshake deadline), with a log
# line or an answer that says why (architecture.md: "bad input -> error with a
# message naming what and where"); every daemon lives on and answers;
# the running sessions lose nothing.  (The guest listener and the
# agent's local listener carry a program's own bytes: garbage there is
# payload.)
. ./faults.sh

cl_start
cl_traffic_start 16
all_established || fail "sessions did not open"
sleep 0.5
# garbage NAME ADDR [ftool args]: 20 rounds at ADDR in the background,
# the result in $T/garbage-NAME.json.
G=""
garbage() {
	local name=$1 addr=$2; shift 2
	ft garbage "$addr" --count 20 "$@" >"$T/garbage-$name.json" &
	G="$G $name:$!"
}
garbage mesh "tcp://$CL_IP_1:$CL_PORT"
garbage agent-h1 vsock://2:2001 --vsock-dir "$T/h1" --vsock-cid 70
garbage agent-h2 vsock://2:2001 --vsock-dir "$T/h2" --vsock-cid 71
garbage appliance vsock://3:1024 --vsock-dir "$T/h1" --vsock-cid 72
garbage locator "tcp://$CL_LOCIP:$CL_PORT"
# A status socket reads lines (a line without its newline waits, as a
# slow client may): each round ends with one.
for s in loc.sock app.sock relay-h1.sock relay-h2.sock cvm1.ctl; do
	garbage "status-${s%.*}" "unix:$T/$s" --line
done
# Every connection closed: at once, or at the 5 s handshake (HELLO)
# deadline for bytes too few to judge, plus the locator's 1 s flush.
for g in $G; do
	name=${g%%:*}
	wait "${g#*:}" || fail "garbage to $name: the probe failed"
	log "$name: $(cut -c1-150 "$T/garbage-$name.json")"
	[ "$(json_get closed <"$T/garbage-$name.json")" = 20 ] &&
	    [ "$(json_get closed_ms_max <"$T/garbage-$name.json")" -le 7000 ] ||
	    fail_later "$name kept a garbage connection open"
	case $name in
	status-*)
		grep -q 'ok\\":false,\\"error\\":\\"invalid JSON' \
		    "$T/garbage-$name.json" ||
		    fail_later "$name answered garbage with no error" ;;
	esac
done
sleep 0.5
expect_log() {	# expect_log FILE REGEX WHAT
	grep -q -E "$2" "$T/$1" || fail_later "no log line in $1 for $3"
	log "  $1: $(grep -m1 -o -E "$2.{0,60}" "$T/$1")"
}
expect_log relay-h1.log 'mesh leg from [^ ]* dropped: TLS' "the mesh"
expect_log app.log 'leg refused peer=vsock://2:[0-9]* reason="bad frame' \
    "garbage forwarded from the agent listeners"
expect_log app.log 'leg refused peer=vsock://72:[0-9]* reason="' \
    "garbage straight into the appliance"
expect_log locator.log 'relay tcp://[^ ]*: .*(TLS|closed)' "the locator"
for p in $CL_RELAY_PID_1 $CL_RELAY_PID_2 $CL_RELAY_PID_3 $CL_APP_PID \
    $CL_LOC_PID $CL_CVM_PID_1 $CL_CVM_PID_2; do
	kill -0 "$p" 2>/dev/null || fail "pid $p died"
done
all_answer || fail "a daemon does not answer"
cl_traffic_wait || log "a generator failed (verdict below)"
ft verdict "$T" --ok cvm1,cvm2,plain >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
grep -q 'session-detached' "$T"/cvm*.log "$T"/relay-h2.log &&
    fail "a running session was disturbed"
done_later
exit 0
