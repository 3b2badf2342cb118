# A leg parked at a relay (the appliance is not on its host yet) whose
# session end gives up on it is not sent on when the appliance arrives:
# its first bytes, a stale handshake by then, would cost the appliance a
# leg, a handshake slot and a CHALLENGE nobody answers, and could
# overtake a live resume (docs/protocol.md, "Overtaken PROOFs").  A
# parked leg still open is sent on, as before.
. ./lib.sh

start_backend $((BASE + 10))
start_appliance B $((BASE + 10))
# Relay B believes the appliance runs on C: its mesh legs park.
start_relay B $((BASE + 2)) C

fb() { "$BINDIR/vrelay" status --status "$T/relayB.sock" --json |
    json_get "forwards.$1"; }
accepted() { "$BINDIR/vappliance" status --status "$T/app.sock" --json |
    json_get legs.accepted; }

# Both legs park (within the 1 s a leg may); one is then closed, and
# the appliance arrives on B.
python3 - "$((BASE + 2))" "$BINDIR/vrelay" "$T/relayB.sock" <<'PY' ||
import socket, struct, subprocess, sys, time
port, vrelay, sock = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# A HELLO's header and a few bytes: any first bytes route a leg.
first = struct.pack(">BBHI", 1, 0, 0, 4) + b"abcd"
gone = socket.create_connection(("127.0.0.1", port), timeout=10)
kept = socket.create_connection(("127.0.0.1", port), timeout=10)
gone.sendall(first)
kept.sendall(first)
time.sleep(0.2)
gone.close()
time.sleep(0.1)
subprocess.run([vrelay, "set-target", "--status", sock, "--arg",
    "appliance_host=B"], check=True, stdout=subprocess.DEVNULL)
# The kept leg reaches the appliance, which answers its bad HELLO.
kept.settimeout(5)
if not kept.recv(100):
    sys.exit("the kept leg got nothing from the appliance")
PY
    fail "the kept leg was not sent on"
[ "$(fb parked)" = 2 ] || fail "not 2 legs parked: $(fb parked)"
[ "$(fb abandoned)" = 1 ] || fail "not 1 leg abandoned: $(fb abandoned)"
[ "$(accepted)" = 1 ] || fail "the appliance took $(accepted) legs, not 1"
exit 0
