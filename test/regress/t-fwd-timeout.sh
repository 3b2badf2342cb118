# A next hop that takes the TCP connect but never says a word of TLS:
# the agent forward waiting for it gives up after --handshake-timeout,
# parks like a forward with nowhere to go, and refuses the leg.  Before,
# nothing was armed while it waited (the leg is not read meanwhile), and
# the forward, its two descriptors and the guest's slot stayed for good.
# With a connection per leg (relay A) the forward's own connect times
# out; with a shared link (relay C, the default with TLS) the leg waits
# for the link, whose handshake times out, and is refused all the same.
. ./lib.sh

mint_certs
# Host B's mesh port: a listener that accepts and stays silent.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' $((BASE + 2)) &
PIDS="$PIDS $!"
wait_listen $((BASE + 2))
start_relay A $((BASE + 1)) B $(tls A) --agent-listen vsock://any:2001 \
    --handshake-timeout 1s --mesh-links per-session

# fw H KEY: a field of relay H's forwards.
fw() { "$BINDIR/vrelay" status --status "$T/relay$1.sock" --json |
    json_get "forwards.$2"; }
# A guest agent's leg on host H, in the background ($TP): its first
# bytes make the forward dial B.
agent_leg() {
	"$BINDIR/vtraffic" run --connect vsock://2:2001 --vsock-dir "$T/$1" \
	    --vsock-cid 5 --sessions 1 --bytes 100 --timeout 20 --json \
	    >"$T/agent$1.json" 2>>"$T/agent$1.log" &
	TP=$!
}
# Relay H's forward dialled, gave up, and refused the leg.
gave_up() { [ "$(fw "$1" agent_total)" -ge 1 ] &&
    [ "$(fw "$1" agent_active)" = 0 ] && [ "$(fw "$1" refused)" -ge 1 ]; }

agent_leg A
dialed() { [ "$(fw A agent_total)" -ge 1 ]; }
check "the forward dials B" wait_for 5 dialed
check "the forward gives up on a silent next hop" wait_for 8 gave_up A
grep -q "unreachable: connect timed out" "$T/relayA.log" ||
    fail "no reason logged: $(tail -5 "$T/relayA.log")"
wait $TP
log "agent leg: $(head -c 200 "$T/agentA.json")"

# The same through a shared link.
start_relay C $((BASE + 3)) B $(tls C) --agent-listen vsock://any:2001 \
    --handshake-timeout 1s
agent_leg C
check "C's forward gives up on a link that never comes up" \
    wait_for 8 gave_up C
grep -q "refused: waiting for the mesh link to B's relay" "$T/relayC.log" &&
    grep -q "mesh-link=1 to=B(.*) failed: no answer in 1000 ms" \
    "$T/relayC.log" || fail "C: no reason logged: $(tail -5 "$T/relayC.log")"
wait $TP
exit 0
