# Two hosts, 100 concurrent guest sessions on host A, streams from one
# byte to 64 MiB echoed through A's relay -> B's relay -> vappliance
# -> backend and back, every byte checked (vtraffic verifies the echo
# as it arrives and by SHA-256; the backend hashes what it received).
. ./lib.sh

start_backend $((BASE + 10)) --report "$T/backend.jsonl"
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B

traffic A 5 --sessions 100 --bytes 1:64M --seed 7 --timeout 240 \
    >"$T/many.json" || fail "100 sessions: $(cat "$T/many.json")"
check "sizes 1 and 64M" traffic A 6 --sessions 1 --bytes 1 >/dev/null
check "64 MiB session" traffic A 6 --sessions 1 --bytes 64M >"$T/big.json"
[ "$(json_get bytes_verified <"$T/big.json")" = 67108864 ] ||
    fail "64 MiB not verified: $(cat "$T/big.json")"
[ "$(json_get bytes_lost <"$T/many.json")" = 0 ] || fail "bytes lost"

# Both ends: the backend saw 102 sessions, each with its bytes echoed.
n=$(wc -l <"$T/backend.jsonl")
[ "$n" = 102 ] || fail "backend saw $n connections, not 102"
python3 - "$T/backend.jsonl" <<'PY' || fail "backend in != out"
import json, sys
for line in open(sys.argv[1]):
    c = json.loads(line)
    assert c["bytes_in"] == c["bytes_out"], c
    assert "error" not in c, c
PY
# Everything went through the mesh, nothing is left open.
[ "$(BINDIR=$BINDIR "$BINDIR/vrelay" status --status "$T/relayB.sock" \
    --json | json_get forwards.total)" = 102 ] || fail "B forwarded != 102"
[ "$(BINDIR=$BINDIR "$BINDIR/vrelay" status --status "$T/relayA.sock" \
    --json | json_get sessions.count)" = 0 ] || fail "sessions left on A"

# Plain legs on both sides: relay B spliced them (no copy through
# userspace); the two 64 MiB directions alone are 128 MiB.
sb=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json)
[ "$(echo "$sb" | json_get forwards.spliced)" -ge 100 ] ||
    fail "B did not splice: $sb"
[ "$(echo "$sb" | json_get forwards.spliced_bytes)" -ge 134217728 ] ||
    fail "B spliced too little: $sb"

# A spliced forward closed with bytes still in its pipe: a stand-in
# appliance takes the leg, answers one byte (so B splices) and then
# reads nothing while 8 MiB come; the target moves off B, and B must
# still deliver every byte it took, then a half-close (EOF).
kill "$APP_PID"
while kill -0 "$APP_PID" 2>/dev/null; do sleep 0.05; done
b0=$(echo "$sb" | json_get forwards.bytes)
got=$(python3 - "$T/B/3.1024" "$((BASE + 2))" "$BINDIR/vrelay" \
    "$T/relayB.sock" <<'PY'
import os, socket, subprocess, sys, threading, time
path, port, vrelay, sock = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    sys.argv[4]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
ls = socket.socket(socket.AF_UNIX)
ls.bind(path)
ls.listen()
c = socket.create_connection(("127.0.0.1", port), timeout=10)
c.sendall(b"x")
ls.settimeout(10)
a, _ = ls.accept()
a.settimeout(10)
assert a.recv(1) == b"x"
a.sendall(b"y")
assert c.recv(1) == b"y"
def push():
    try:
        c.sendall(b"z" * (8 << 20))
    except OSError:
        pass		# B discards and closes once the target moves
threading.Thread(target=push, daemon=True).start()
time.sleep(1)
subprocess.run([vrelay, "set-target", "--status", sock, "--arg",
    "epoch:=100", "--arg", "appliance_host=C"], check=True,
    stdout=subprocess.DEVNULL)
n = 1
while True:
    d = a.recv(1 << 20)
    if not d:
        break
    n += len(d)
print(n)
PY
) || fail "stand-in appliance: $got"
b1=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json |
    json_get forwards.bytes)
# B counted what it read from both sides: the received bytes plus "y".
[ "$got" -gt 65536 ] && [ "$got" = $((b1 - b0 - 1)) ] ||
    fail "B took $((b1 - b0 - 1)) bytes for the appliance, it got $got"
exit 0
