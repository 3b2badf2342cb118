# Shared mesh links (relay/mesh.c, docs/protocol.md "Mesh links";
# --mesh-links shared): every leg from relay A to relay B is a stream on
# one TLS link, not a connection of its own.
#   - 40 sessions byte-exact over one link: one TLS handshake in all,
#     and B hands each stream the appliance's socket (no forward left);
#   - relay B killed (-9) under 20 busy sessions and a guest agent's 4:
#     the link's streams end, A dials it again by itself while B is
#     down, and when B is back every session resumes byte-exact, the
#     agent's at once too (their legs parked at A go when the link is
#     up, not at the 1 s park deadline and the agent's backoff);
#   - a guest agent's first leg through a new relay A waits for the
#     link it asks for, not a TLS connection of its own;
#   - a peer that does not speak mesh links (an appliance endpoint
#     taking legs itself): legs go a connection each, and flow;
#   - a peer that sends a broken link: only that link ends, with the
#     reason, and the relay serves on;
#   - a stream busy when its appliance first answers is spliced, and
#     handed over to the link once nothing waits either way.
. ./lib.sh

mint_certs
start_backend $((BASE + 10)) --slow 2M
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B $(tls B) --mesh-links shared
start_relay A $((BASE + 1)) B $(tls A) --mesh-links shared \
    --agent-listen vsock://any:2002

st() { "$BINDIR/vrelay" status --status "$T/relay$1.sock" --json |
    json_get "$2"; }

# 1. Sessions over one link.
traffic A 5 --sessions 40 --bytes 1:1M --seed 3 --timeout 120 \
    >"$T/ok.json" || fail "sessions over a mesh link: $(cat "$T/ok.json")"
[ "$(json_get bytes_lost <"$T/ok.json")" = 0 ] || fail "bytes lost"
[ "$(st A mesh.mode)" = shared ] || fail "A's mode: $(st A mesh)"
[ "$(st A mesh.links.0.state)" = up ] && [ "$(st A mesh.links.0.host)" = B ] ||
    fail "A's link: $(st A mesh)"
[ "$(st A mesh.streams)" -ge 40 ] || fail "A opened too few streams: \
$(st A mesh)"
[ "$(st A mesh.dialled)" = 1 ] && [ "$(st B mesh.accepted)" = 1 ] ||
    fail "more than one link: A $(st A mesh), B $(st B mesh)"
[ "$(st B tls.handshakes.full)" = 1 ] && [ "$(st B tls.handshakes.resumed)" = 0 ] ||
    fail "B's handshakes: $(st B tls.handshakes)"
# Each stream's forward hands the appliance's socket to the link once
# the appliance has answered: no socketpair, no forward between.
[ "$(st B forwards.adopted)" -ge 1 ] &&
    [ "$(st B mesh.links.0.adopted)" = "$(st B forwards.adopted)" ] ||
    fail "B handed no stream to its link: $(st B forwards) $(st B mesh)"
# Each stream is a leg B forwarded; the link itself is not.
[ "$(st B forwards.total)" = "$(st A mesh.streams)" ] || fail "B counts \
$(st B forwards.total) legs for $(st A mesh.streams) streams"

# 2. B dies under busy sessions; they come back over a new link.
traffic A 6 --sessions 20 --bytes 2M:4M --seed 4 --timeout 120 \
    >"$T/kill.json" &
tp=$!
agent_traffic A --sessions 4 --bytes 2M:4M --seed 5 --timeout 120
wait_lines "$T/relayA.log" session-open 60 || fail "sessions did not open"
wait_lines "$T/agent.log" session-open 4 || fail "agent sessions did not open"
kill -9 "$RELAY_B_PID"
# While B is down, A dials the link again by itself (and the sessions
# are held off): they come back when B does, not at their backoff.
c0=$(cpu_ticks "$RELAY_A_PID")
check "A redials the link" wait_for 5 sh -c "[ \$('$BINDIR/vrelay' status \
    --status '$T/relayA.sock' --json | python3 -c 'import json,sys
print(json.load(sys.stdin)[\"mesh\"][\"redials\"])') -ge 2 ]"
sleep 1
c1=$(cpu_ticks "$RELAY_A_PID")
# Not every ~100 ms: a failed link (or TLS probe) wakes no session, or
# each wake would dial again at once and spin against the refusals.
# Timings are not checked under valgrind (make valgrind): see t-kill-relay.
[ -n "${VALGRIND:-}" ] || [ $((c1 - c0)) -le 25 ] ||
    fail "relay A used $((c1 - c0)) ticks of CPU with B down"
t_up=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
start_relay B $((BASE + 2)) B $(tls B) --mesh-links shared
wait $tp || fail "sessions across B's restart: $(cat "$T/kill.json")"
wait $AGENT_TP ||
    fail "agent sessions across B's restart: $(cat "$T/agent.json")"
[ "$(json_get bytes_lost <"$T/agent.json")" = 0 ] || fail "agent bytes lost"
late=$(resumed_since "$T/agent.log" "$t_up")
log "agent: $late (resumes, ms from B's restart to the last)"
set -- $late
[ "$1" -ge 4 ] && { [ -n "${VALGRIND:-}" ] || [ "$2" -le 450 ]; } ||
    fail "agent sessions back late: $1 resumes, the last $2 ms after B"
[ "$(json_get bytes_lost <"$T/kill.json")" = 0 ] || fail "bytes lost"
[ "$(json_get duplicates <"$T/kill.json")" = 0 ] || fail "duplicates"
[ "$(st A mesh.lost)" -ge 1 ] && [ "$(st A mesh.dialled)" -ge 2 ] ||
    fail "A's links after B's restart: $(st A mesh)"
[ "$(st B mesh.accepted)" = 1 ] || fail "B took $(st B mesh.accepted) links"
grep -q "mesh-link=1 to=B(.*) lost: " "$T/relayA.log" ||
    fail "A did not say its link was lost"

# 2b. A new relay A whose first leg to B is a guest agent's: the leg
# waits for the link that leg asks for, rather than making a TLS
# connection of its own beside it (B: one full handshake, not two).
h0=$(st B tls.handshakes.full)
kill -9 "$RELAY_A_PID"
start_relay A $((BASE + 1)) B $(tls A) --mesh-links shared \
    --agent-listen vsock://any:2002
"$BINDIR/vtraffic" run --connect "unix:$T/agent.in" --sessions 2 \
    --bytes 64K --timeout 30 >"$T/agent2.json" 2>>"$T/agent-traffic.log" ||
    fail "agent sessions through a new A: $(cat "$T/agent2.json")"
h1=$(st B tls.handshakes.full)
[ $((h1 - h0)) = 1 ] || fail "B made $((h1 - h0)) full TLS handshakes \
for A's first link and legs, not 1: $(st B tls.handshakes)"
[ "$(st A forwards.parked)" -ge 1 ] && [ "$(st A mesh.streams)" -ge 1 ] ||
    fail "the agent's leg did not wait for the link: A $(st A forwards) \
$(st A mesh)"

# 3. A peer that takes legs but not links: the appliance endpoint itself,
# over plaintext TCP.  The preamble is refused as a session frame, and
# the legs go one connection each.
"$BINDIR/vappliance" run --listen "tcp://127.0.0.1:$((BASE + 3))" \
    --backend "tcp://127.0.0.1:$((BASE + 10))" --status "$T/appP.sock" \
    2>>"$T/appP.log" &
PIDS="$PIDS $!"
wait_sock "$T/appP.sock"
"$BINDIR/vrelay" run --host A2 --guest-listen vsock://any:2001 \
    --vsock-dir "$T/A" --appliance-host C --appliance vsock://3:1024 \
    --peer "C=tcp://127.0.0.1:$((BASE + 3))" --mesh-links shared \
    --handshake-timeout 300ms \
    --status "$T/relayA2.sock" 2>>"$T/relayA2.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayA2.sock"
"$BINDIR/vtraffic" run --connect vsock://2:2001 --vsock-dir "$T/A" \
    --vsock-cid 7 --sessions 4 --bytes 64K --timeout 30 >"$T/old.json" \
    2>&1 || fail "sessions to a peer without mesh links: $(cat "$T/old.json")"
grep -q "does not speak mesh links" "$T/relayA2.log" ||
    fail "A2 did not fall back: $(tail -5 "$T/relayA2.log")"
# ...for good: no dial again when the first dial's handshake deadline
# (300 ms) comes, while sessions still want legs to C.
sleep 0.5
"$BINDIR/vtraffic" run --connect vsock://2:2001 --vsock-dir "$T/A" \
    --vsock-cid 7 --sessions 4 --bytes 64K --timeout 30 >"$T/old.json" \
    2>&1 || fail "more sessions to a peer without mesh links"
[ "$("$BINDIR/vrelay" status --status "$T/relayA2.sock" --json |
    json_get mesh.dialled)" = 1 ] || fail "A2 dialled its link again: \
$("$BINDIR/vrelay" status --status "$T/relayA2.sock" --json | json_get mesh)"

# 4. A broken link into a plaintext relay: that link ends, with why.
"$BINDIR/vrelay" run --host C --mesh-listen "tcp://127.0.0.1:$((BASE + 4))" \
    --appliance-host C --appliance "tcp://127.0.0.1:$((BASE + 3))" \
    --status "$T/relayC.sock" 2>>"$T/relayC.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayC.sock"
python3 - "$((BASE + 4))" <<'PY' || fail "broken link: not closed"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"VRMX" + struct.pack(">I", 1))
s.sendall(struct.pack(">BBHII", 1, 0, 0, 1, 0))		# OPEN 1
s.sendall(struct.pack(">BBHII", 2, 0, 0, 1, 70000))	# DATA, too long
data = s.recv(100)
while data:
    data = s.recv(100)
PY
check "C says why" wait_for 5 grep -q \
    "mesh-link=1 from=.* closed: DATA of 70000 bytes on stream 1" \
    "$T/relayC.log"
[ "$(st C mesh.accepted)" = 1 ] || fail "C: $(st C mesh)"
# Without TLS a relay sends a connection per leg unless told otherwise.
[ "$(st C mesh.mode)" = per-session ] || fail "C's mode: $(st C mesh)"
check "sessions still flow" traffic A 8 --sessions 4 --bytes 64K >/dev/null

# 5. A stream busy when the appliance first answers (the stream's bytes
# queued at D for an appliance that has not read them) is not
# handed over then: it is spliced, and handed over on a later try, once
# nothing waits either way.  Its bytes arrive whole and in order, and it
# carries bytes both ways after.  The peer relay and the appliance are
# this script: it decides when each speaks.
"$BINDIR/vrelay" run --host D --mesh-listen "tcp://127.0.0.1:$((BASE + 5))" \
    --appliance-host D --appliance "tcp://127.0.0.1:$((BASE + 6))" \
    --status "$T/relayD.sock" 2>>"$T/relayD.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayD.sock"
python3 - "$((BASE + 5))" "$((BASE + 6))" "$T/relayD.sock" \
    <<'PY' || fail "a busy stream through D: see above"
import json, os, socket, struct, subprocess, sys, time
mesh, app, stsock = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
W = 512 * 1024				# MUX_WINDOW: sent without credit back
MAX = 16 << 20
blob = (bytes(range(251)) * (MAX // 251 + 1))[:MAX]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# A small receive buffer (the accepted socket's): D's writes queue.
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
l.bind(("127.0.0.1", app))
l.listen(1)
l.settimeout(20)
def hdr(t, sid, arg):
    return struct.pack(">BBHII", t, 0, 0, sid, arg)
def exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            sys.exit("closed after %d of %d bytes" % (len(b), n))
        b += x
    return b
def status():
    return json.loads(subprocess.check_output([os.environ["BINDIR"] +
        "/vrelay", "status", "--status", stsock, "--json"]))["forwards"]
credit = 0
def frame(want):
    global credit
    while True:
        t, fl, rs, sid, arg = struct.unpack(">BBHII", exact(s, 12))
        if t == 6:
            s.sendall(hdr(7, 0, arg))	# PING: PONG
        elif t == 3 and sid == 1:
            credit += arg
            if want == 3:
                return arg
        elif t == want and sid == 1:
            return arg
        else:
            sys.exit("frame %d on stream %d, waiting for %d" % (t, sid,
                want))
s = socket.create_connection(("127.0.0.1", mesh), timeout=20)
s.sendall(b"VRMX" + struct.pack(">I", 1) + hdr(1, 1, 0))
if exact(s, 8) != b"VRMX" + struct.pack(">I", 1):
    sys.exit("no preamble")
# Send while D gives credit back, until it stops: the appliance, which
# reads nothing yet, has as much as D queues for it.
sent, credit = 0, W
s.settimeout(0.5)
while sent < MAX:
    if credit == 0:
        try:
            frame(3)
        except socket.timeout:
            break
        continue
    n = min(credit, 65536)
    s.sendall(hdr(2, 1, n) + blob[sent:sent + n])
    sent += n
    credit -= n
s.settimeout(20)
if sent == MAX:
    sys.exit("D took %d bytes for an appliance that reads none" % sent)
a, _ = l.accept()
a.settimeout(20)
a.sendall(b"!")				# the answer
if exact(a, sent) != blob[:sent]:
    sys.exit("the appliance got other bytes than the stream's")
if frame(2) != 1 or exact(s, 1) != b"!":
    sys.exit("no answer")
# Tries at 100, 200, 400 ms...: handed over within a second or two.
for i in range(50):
    f = status()
    if f["adopted"] == 1:
        break
    time.sleep(0.1)
else:
    sys.exit("never handed over: %s" % f)
# Spliced first: not handed over at the answer.
if (f["spliced"] != 1 or f["adopted_later"] != 1 or f["splicing"] != 0 or
    f["active"] != 0):
    sys.exit("not handed over on a later try: %s" % f)
# Through the link's own reads and writes now, both ways, then FINs.
s.sendall(hdr(2, 1, 4) + b"ping")
if exact(a, 4) != b"ping":
    sys.exit("the appliance did not get ping")
a.sendall(b"pong")
n = frame(2)
if exact(s, n) != b"pong":
    sys.exit("no pong")
s.sendall(hdr(4, 1, 0))
if a.recv(1) != b"":
    sys.exit("the appliance did not see the stream's FIN")
a.close()
frame(4)
PY
exit 0
