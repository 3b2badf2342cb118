# The push channel, relay side (relay/uplink.c, docs/push.md), against
# a scripted fake locator (fakeloc.py): HELLO content, TARGET -> ACK
# and the target moves, stale epoch -> NACK, an identical re-push ->
# ACK without change, HINT, PING both ways, garbage, oversize lines
# and ERROR -> reconnect with the target kept, a silent locator is
# dead after 3 keepalive periods, the locator gone -> sessions still
# route and the relay comes back, and the startup checks.
. ./lib.sh

LP=$((BASE + 20))
EV="$T/loc.jsonl"
S="--status $T/relayA.sock"
mkfifo "$T/loc.fifo"
python3 ./fakeloc.py --listen "127.0.0.1:$LP" --control "$T/loc.fifo" \
    --events "$EV" --welcome 2>>"$T/fakeloc.log" &
PIDS="$PIDS $!"

loc() { printf '%s\n' "$*" >"$T/loc.fifo"; }

# wait_for FILE PATTERN [N [SECONDS]]: until PATTERN is on N lines.
wait_for() {
	local f=$1 pat=$2 n=${3:-1} secs=${4:-10} i c
	for i in $(seq 1 $((secs * 20 * WAIT_SCALE))); do
		c=$(grep -c -- "$pat" "$f" 2>/dev/null)
		[ "${c:-0}" -ge "$n" ] && return 0
		sleep 0.05
	done
	fail "timed out waiting for $n x '$pat' in $(basename "$f")"
}

# The last message of TYPE the relay sent, as JSON.
last_msg() {
	python3 - "$EV" "$1" <<'PY'
import json, sys
m = None
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["ev"] == "recv" and e["msg"].get("type") == sys.argv[2]:
        m = e["msg"]
print(json.dumps(m))
PY
}

# vrelay A's status, one field.
st() { "$BINDIR/vrelay" status $S --json | json_get "$1"; }

start_backend $((BASE + 10))
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B
# Under valgrind a loop turn can take longer than 600 ms: 1 s there.
KA=$((WAIT_SCALE > 1 ? 1000 : 200))
start_relay A $((BASE + 1)) B --locator "tcp://127.0.0.1:$LP" \
    --keepalive ${KA}ms
"$BINDIR/vrelay" watch $S --json >"$T/watch.jsonl" &
WP=$!
PIDS="$PIDS $WP"

# HELLO: who we are, where other relays reach us, our epoch.
wait_for "$EV" '"type":"hello"'
h=$(last_msg hello)
[ "$(echo "$h" | json_get version)" = 1 ] || fail "hello version: $h"
[ "$(echo "$h" | json_get host)" = A ] || fail "hello host: $h"
[ "$(echo "$h" | json_get mesh)" = "tcp://127.0.0.1:$((BASE + 1))" ] ||
    fail "hello mesh: $h"
[ "$(echo "$h" | json_get epoch)" = 1 ] || fail "hello epoch: $h"
for i in $(seq 1 $((40 * WAIT_SCALE))); do
	[ "$(st uplink.state)" = up ] && break
	sleep 0.05
done
[ "$(st uplink.state)" = up ] || fail "uplink not up: $(st uplink)"

# TARGET -> ACK; the target moves (the pushed relay is the only peer).
T5='{"type":"target","epoch":5,"appliance_host":"B","relay":"tcp://127.0.0.1:'$((BASE + 2))'","appliance":"vsock://3:1024"}'
loc send "$T5"
wait_for "$EV" '"epoch":5,"type":"ack"'
[ "$(st target.epoch)" = 5 ] || fail "target epoch not 5"
"$BINDIR/vrelay" status $S --json | python3 -c '
import json, sys
t = json.load(sys.stdin)["target"]
assert t["peers"] == {"B": "tcp://127.0.0.1:'$((BASE + 2))'"}, t
assert t["appliance_host"] == "B" and t["appliance"] == "vsock://3:1024", t
' || fail "target after push"
check "traffic after push" traffic A 5 --sessions 2 --bytes 20K

# Stale epoch -> NACK, target unchanged.
loc send '{"type":"target","epoch":3,"appliance_host":"C"}'
wait_for "$EV" '"epoch":3,"error":"stale epoch 3 (current 5)","type":"nack"'
[ "$(st target.appliance_host)" = B ] || fail "stale push moved target"

# The same epoch and content again -> ACK, no target-change.
loc send "$T5"
wait_for "$EV" '"epoch":5,"type":"ack"' 2
[ "$(grep -c 'target-change epoch=5 source=locator' "$T/relayA.log")" = 1 ] ||
    fail "identical re-push changed the target again"
# The same epoch with other content is stale.
loc send '{"type":"target","epoch":5,"appliance_host":"C"}'
wait_for "$EV" '"error":"stale epoch 5 (current 5)","type":"nack"'
# A host name in a push is refused, never looked up on the loop.
loc send '{"type":"target","epoch":6,"appliance_host":"C","relay":"tcp://localhost:7000"}'
wait_for "$EV" 'expected a numeric address'
[ "$(st target.appliance_host)" = B ] || fail "a push with a name moved target"

# HINT: logged and broadcast.
loc send '{"type":"hint","event":"migrating","host":"C","relay":"tcp://127.0.0.1:'$((BASE + 3))'","future":1}'
wait_for "$T/relayA.log" 'hint event="migrating" host=C'

# PING from the locator is answered; the relay PINGs when quiet.
loc send '{"type":"ping"}'
wait_for "$EV" '"type":"pong"'
wait_for "$EV" '"type":"ping"'

# Garbage: a clear log line, ERROR to the locator, reconnect, and the
# same target re-pushed after the reconnect is ACKed unchanged.
loc auto "$T5"
loc send 'this is not json'
wait_for "$T/relayA.log" "locator tcp://127.0.0.1:$LP: bad push: not JSON"
wait_for "$EV" '"error":"bad push: not JSON'
wait_for "$EV" '"ev":"accept","n":2'
wait_for "$EV" '"epoch":5,"type":"ack"' 3
[ "$(last_msg hello | json_get epoch)" = 5 ] || fail "hello epoch after push"
[ "$(st target.epoch)" = 5 ] || fail "target lost after garbage"

# An oversize line (no newline within 16 KiB): the same.
loc big 20000
wait_for "$T/relayA.log" "bad push: no newline in"
wait_for "$EV" '"ev":"accept","n":3'
[ "$(st target.epoch)" = 5 ] || fail "target lost after oversize line"

# A member of the wrong type names the member.
loc send '{"type":"target","epoch":"6","appliance_host":"B"}'
wait_for "$T/relayA.log" 'bad push: target: "epoch": expected an integer from 0 to 9007199254740991'
wait_for "$EV" '"ev":"accept","n":4'

# ERROR from the locator: logged, closed, back later.
loc send '{"type":"error","error":"go away"}'
wait_for "$T/relayA.log" 'error from the locator: go away; reconnecting'
wait_for "$EV" '"ev":"accept","n":5'

# A locator that stops answering is dead after 3 keepalive periods.
loc pong off
wait_for "$T/relayA.log" \
    "silent for 3 keepalive periods ($((3 * KA)) ms)" 1 5
wait_for "$EV" '"ev":"accept","n":6'
loc pong on

# The locator goes away: the relay keeps its target and keeps routing,
# then comes back when the locator does.
loc stop
for i in $(seq 1 $((40 * WAIT_SCALE))); do
	[ "$(st uplink.state)" != up ] && break
	sleep 0.05
done
[ "$(st uplink.state)" != up ] || fail "uplink still up without locator"
sleep 1
[ "$(st target.epoch)" = 5 ] || fail "target lost with the locator gone"
check "traffic without locator" traffic A 6 --sessions 2 --bytes 20K
# The backoff grew with the quick drops above: the first connect may
# be up to 5 s away.
conn_failed() { "$BINDIR/vrelay" status $S --json | python3 -c '
import json, sys
u = json.load(sys.stdin)["uplink"]
sys.exit(0 if (u["last_error"] or "").startswith("connect failed") else 1)'
}
for i in $(seq 1 $((160 * WAIT_SCALE))); do
	conn_failed && break
	sleep 0.05
done
conn_failed || fail "last_error while the locator is away: $(st uplink)"
loc listen
wait_for "$EV" '"ev":"accept","n":7' 1 10
for i in $(seq 1 $((40 * WAIT_SCALE))); do
	[ "$(st uplink.state)" = up ] && break
	sleep 0.05
done
[ "$(st uplink.state)" = up ] || fail "uplink not back up"

# A pushed host without a relay keeps the peers the relay knows (B's,
# from epoch 5): none for C, so routing to C says so.
loc send '{"type":"target","epoch":9,"appliance_host":"C","relay":null}'
wait_for "$EV" '"epoch":9,"type":"ack"'
"$BINDIR/vrelay" status $S --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
t, u = s["target"], s["uplink"]
assert t["peers"] == {"B": "tcp://127.0.0.1:'$((BASE + 2))'"}, t
assert t["appliance_host"] == "C", t
assert t["appliance"] == "vsock://3:1024", t
assert u["state"] == "up" and u["epoch"] == 9, u
assert u["address"] == "tcp://127.0.0.1:'$LP'", u
assert u["connects"] >= 7 and u["pushes"] >= 6, u
assert u["acks"] >= 4 and u["nacks"] == 3, u
assert isinstance(u["since_ms"], int), u
' || fail "status uplink: $(st uplink)"

# Watchers saw the locator's target change, the hint and uplink states.
sleep 0.2
kill "$WP"
grep -q '"event":"target-change".*"source":"locator"\|"source":"locator".*"event":"target-change"' \
    "$T/watch.jsonl" || fail "watch: no target-change from the locator"
grep -q '"event":"hint"' "$T/watch.jsonl" || fail "watch: no hint"
grep -q '"event":"uplink"' "$T/watch.jsonl" || fail "watch: no uplink event"
"$BINDIR/vrelay" set-target $S --arg epoch:=10 >/dev/null ||
    fail "set-target"
grep -q 'target-change epoch=10 source=control' "$T/relayA.log" ||
    fail "set-target source not logged"

# A locator that drops every connection right after WELCOME: the relay
# backs off more each time (100 ms doubling), not 100 ms each time.
sleep 5.5		# the connection up since "listen" lasted
n=$(grep -c '"type":"hello"' "$EV")
t0=$(date +%s%3N)
for k in 1 2 3 4; do
	sleep 0.1	# its WELCOME read
	loc close
	wait_for "$EV" '"type":"hello"' $((n + k)) 10
done
t1=$(date +%s%3N)
log "four drops after WELCOME, four reconnects: $((t1 - t0)) ms"
# 100 + 200 + 400 + 800 ms, +-25 %, and the 4 x 100 ms waited here.
[ $((t1 - t0)) -ge 1400 ] ||
    fail "four reconnects in $((t1 - t0)) ms: the backoff did not grow"

# Startup checks: a wildcard mesh listener needs --mesh-advertise.
"$BINDIR/vrelay" run --host X --mesh-listen "tcp://0.0.0.0:$((BASE + 30))" \
    --locator "tcp://127.0.0.1:$LP" 2>"$T/e1" && fail "wildcard accepted"
grep -q -- '--mesh-advertise' "$T/e1" || fail "wildcard message: $(cat "$T/e1")"
"$BINDIR/vrelay" run --host X --guest-listen vsock://any:9 \
    --vsock-dir "$T/X" --mesh-advertise tcp://127.0.0.1:1 2>"$T/e2" &&
    fail "--mesh-advertise without --mesh-listen accepted"
grep -q 'needs --mesh-listen' "$T/e2" || fail "advertise message"
"$BINDIR/vrelay" run --host X --guest-listen vsock://any:9 \
    --vsock-dir "$T/X" --locator nowhere 2>"$T/e3" && fail "bad locator"
grep -q -- '--locator "nowhere"' "$T/e3" || fail "locator message"
exit 0
