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
# Everything went through the mesh, nothing is left open.  The 100
# concurrent sessions took 100 legs; the next two may have taken legs
# vappliance released (RELEASE) instead of new ones.
fw=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json |
    json_get forwards.total)
[ "$fw" -ge 100 ] && [ "$fw" -le 102 ] || fail "B forwarded $fw, not 100-102"
[ "$("$BINDIR/vrelay" status --status "$T/relayA.sock" \
    --json | json_get sessions.count)" = 0 ] || fail "sessions left on A"

# Legs outlive their sessions: once A holds released legs, a session
# takes one (no new forward on B, one more reuse on both ends) and
# leaves it idle again; the backend still sees a connection per session.
sa() { "$BINDIR/vrelay" status --status "$T/relayA.sock" --json |
    json_get "sessions.$1"; }
sv() { "$BINDIR/vappliance" status --status "$T/app.sock" --json |
    json_get "sessions.$1"; }
idle() { [ "$(sa legs_idle)" -gt 0 ]; }
wait_for 5 idle || fail "A holds no idle legs"
ra=$(sa legs_reused); rv=$(sv legs_reused); fw=$("$BINDIR/vrelay" status \
    --status "$T/relayB.sock" --json | json_get forwards.total)
check "a session on a kept leg" traffic A 6 --sessions 1 --bytes 100K
[ "$(sa legs_reused)" = $((ra + 1)) ] || fail "A reused $ra -> $(sa legs_reused)"
[ "$(sv legs_reused)" = $((rv + 1)) ] ||
    fail "vappliance reused $rv -> $(sv legs_reused)"
[ "$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json |
    json_get forwards.total)" = "$fw" ] || fail "a kept leg made a new forward"
wait_for 5 idle || fail "the leg is not idle again"
[ "$(wc -l <"$T/backend.jsonl")" = 103 ] || fail "backend connections != 103"

# Plain legs on both sides: relay B spliced them (no copy through
# userspace); the two 64 MiB directions alone are 128 MiB.
sb=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json)
[ "$(echo "$sb" | json_get forwards.spliced)" -ge 100 ] ||
    fail "B did not splice: $sb"
[ "$(echo "$sb" | json_get forwards.spliced_bytes)" -ge 134217728 ] ||
    fail "B spliced too little: $sb"

# Spliced forwards that are over are no longer counted as splicing.
# Relay A goes, and with it the legs it keeps idle between sessions
# (up to 15 s), each a spliced forward on B: all of them end.
kill "$RELAY_A_PID"
wait "$RELAY_A_PID" 2>/dev/null
for i in $(seq $((100 * WAIT_SCALE))); do
	sb=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json)
	[ "$(echo "$sb" | json_get forwards.splicing)" = 0 ] && break
	sleep 0.05
done
[ "$(echo "$sb" | json_get forwards.splicing)" = 0 ] ||
    fail "B still splicing: $sb"

# Two spliced forwards through a stand-in appliance on B's vSocket
# listener, which takes the leg and answers one byte (so B splices):
#   far-ends  the forward goes idle (no bufferevents; forwards.splicing
#             counts it), then the stand-in sends 8 MiB and half-closes
#             while the leg does not read.  B sees the EOF once the pipe
#             has drained into the leg's socket, wraps the sockets again,
#             and the leg must get the whole stream in order, then EOF.
#   moved     the stand-in reads nothing while 8 MiB come; the target
#             moves off B, and B must still deliver every byte it took,
#             then a half-close (EOF).
#   idle-eof  the forward goes idle, then the stand-in half-closes: the
#             leg gets its EOF from that (within 4 s; B's flushing close
#             would end the forward after 5 s anyway), and B lets the
#             forward go once the leg closes too.
# Prints the bytes the receiving end got.
cat >"$T/standin.py" <<'PY'
import json, os, random, socket, subprocess, sys, threading, time
mode, path, port, vrelay, sock, scale = sys.argv[1], sys.argv[2], \
    int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
def splicing():
    out = subprocess.run([vrelay, "status", "--status", sock, "--json"],
        check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)["forwards"]["splicing"]
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
if mode in ("far-ends", "idle-eof"):
    for i in range(100 * scale):
        if splicing() == 1:
            break
        time.sleep(0.05)
    else:
        sys.exit("forwards.splicing is %d, not 1" % splicing())
if mode == "idle-eof":
    a.shutdown(socket.SHUT_WR)
    c.settimeout(4)
    try:
        d = c.recv(16)
    except socket.timeout:
        sys.exit("no EOF on the leg within 4 s of the half-close")
    if d:
        sys.exit("the leg got %r, not EOF" % d)
    c.close()
    # Within B's 5 s flush deadline, which would end it anyway.
    end = time.time() + 3
    while splicing() != 0:
        if time.time() > end:
            sys.exit("the forward is still splicing 3 s after both "
                "ends closed")
        time.sleep(0.05)
    print(0)
    sys.exit(0)
if mode == "far-ends":
    data = random.Random(11).randbytes(8 << 20)
    def push():
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
    src, dst = a, c
else:
    data = None
    def push():
        try:
            c.sendall(b"z" * (8 << 20))
        except OSError:
            pass	# B discards and closes once the target moves
    src, dst = c, a
threading.Thread(target=push, daemon=True).start()
time.sleep(1)
if mode == "moved":
    subprocess.run([vrelay, "set-target", "--status", sock, "--arg",
        "epoch:=100", "--arg", "appliance_host=C"], check=True,
        stdout=subprocess.DEVNULL)
got = bytearray()
while True:
    d = dst.recv(1 << 20)
    if not d:
        break
    got += d
if data is not None and bytes(got) != data:
    sys.exit("the leg got %d bytes, not the stream" % len(got))
print(len(got))
PY
standin() {
	python3 "$T/standin.py" "$1" "$T/B/3.1024" "$((BASE + 2))" \
	    "$BINDIR/vrelay" "$T/relayB.sock" "$WAIT_SCALE"
}
bytes_b() {
	"$BINDIR/vrelay" status --status "$T/relayB.sock" --json |
	    json_get forwards.bytes
}

kill "$APP_PID"
while kill -0 "$APP_PID" 2>/dev/null; do sleep 0.05; done
b0=$(echo "$sb" | json_get forwards.bytes)
got=$(standin far-ends) || fail "far side ended while spliced: $got"
b1=$(bytes_b)
# B counted what it read from both sides: the stream plus x and y.
[ "$((b1 - b0))" = $((8388608 + 2)) ] ||
    fail "B took $((b1 - b0 - 2)) bytes for the leg, not 8 MiB"

got=$(standin idle-eof) || fail "idle spliced forward: $got"

b0=$(bytes_b)
got=$(standin moved) || fail "stand-in appliance: $got"
b1=$(bytes_b)
# B counted what it read from both sides: the received bytes, "x"
# (the stand-in got it too) and "y".
[ "$got" -gt 65536 ] && [ "$((got + 1))" = $((b1 - b0 - 1)) ] ||
    fail "B took $((b1 - b0 - 1)) bytes for the appliance, it got $got"
exit 0
