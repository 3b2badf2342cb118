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
#     reason, and the relay serves on.
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
    --status "$T/relayA2.sock" 2>>"$T/relayA2.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayA2.sock"
"$BINDIR/vtraffic" run --connect vsock://2:2001 --vsock-dir "$T/A" \
    --vsock-cid 7 --sessions 4 --bytes 64K --timeout 30 >"$T/old.json" \
    2>&1 || fail "sessions to a peer without mesh links: $(cat "$T/old.json")"
grep -q "does not speak mesh links" "$T/relayA2.log" ||
    fail "A2 did not fall back: $(tail -5 "$T/relayA2.log")"

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
exit 0
