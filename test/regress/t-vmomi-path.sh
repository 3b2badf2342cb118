# The vmomi agent's path (docs/protocol.md, "vmomi legs"): a vSphere
# client's bytes go vappliance --vmomi-listen -> (vsock) the relay of
# the appliance's host -> (TLS, behind the caller line) vlocator's gate
# -> the agent, and come back unchanged.  The relay attests the VM it
# heard from (host=B cid=3); a caller that is not a vSocket peer and a
# caller line naming another host than the relay's certificate are
# refused; a vMotion of the appliance mid-stream loses nothing (the
# session resumes through the new host's relay, same CID).  Neither a
# gate without TLS nor vappliance's listener starts off loopback.
#
# Behind the gate is the real agent (t-vmomi-agent tests its policy):
# across the vMotion every request on one keep-alive connection gets
# exactly one answer, in order, and the bytes counted into the
# locator's session equal those the appliance sent.
. ./lib.sh

VPORT=$((BASE + 30))			# vappliance --vmomi-listen
GPORT=$((BASE + 21))			# vlocator --vmomi-listen

mint_certs
write_creds
start_vcsim -tls -cert "$T/vcsim.pem"
start_backend $((BASE + 10))

# 0. Listeners anyone could forge the appliance through do not start:
# the gate without TLS off loopback, vappliance's off loopback.
timeout 10 "$BINDIR/vlocator" run --vcenter "$VCSIM_URL" \
    --credentials "$T/creds.json" --vm vch-appliance \
    --listen "tcp://127.0.0.1:$((BASE + 40))" --status "$T/loc0.sock" \
    --thumbprint "$VCSIM_SHA256" --vmomi-listen "tcp://0.0.0.0:$GPORT" \
    --vmomi-advertise "tcp://127.0.0.1:$GPORT" 2>"$T/loc0.err" &&
    fail "a gate without TLS on 0.0.0.0 started"
grep -q 'vmomi-listen tcp://0.0.0.0:.* without TLS.*--tls-cert' \
    "$T/loc0.err" || fail "gate without TLS: $(cat "$T/loc0.err")"
timeout 10 "$BINDIR/vappliance" run --listen "unix:$T/app0.in" \
    --backend "tcp://127.0.0.1:$((BASE + 10))" --status "$T/app0.sock" \
    --vmomi-listen "tcp://0.0.0.0:$VPORT" 2>"$T/app0.err" &&
    fail "vappliance --vmomi-listen 0.0.0.0 started"
grep -q 'vmomi-listen tcp://0.0.0.0:.*not a loopback address.*unix:PATH' \
    "$T/app0.err" || fail "vappliance on 0.0.0.0: $(cat "$T/app0.err")"
start_locator --thumbprint "$VCSIM_SHA256" $(tls locator) \
    --vmomi-listen "tcp://127.0.0.1:$GPORT"
"$BINDIR/vlocator" watch --status "$T/loc.sock" --json \
    >"$T/loc-watch.jsonl" 2>&1 &
PIDS="$PIDS $!"
for h in B C; do
	start_lrelay $h $((BASE + $(printf '%d' "'$h") - 64)) $(tls $h) \
	    --vmomi-listen vsock://any:2003 \
	    --vmomi-listen "unix:$T/vmomi$h.sock"
done
# The appliance VM on B (where the simulator has it, CID 3).
start_appliance B $((BASE + 10)) --vmomi-listen "tcp://127.0.0.1:$VPORT"

"$BINDIR/vappliance" watch --status "$T/app.sock" --json \
    >"$T/app-watch.jsonl" 2>&1 &
PIDS="$PIDS $!"
vr() { "$BINDIR/vrelay" status --status "$T/relay$1.sock" --json; }
va() { "$BINDIR/vappliance" "$1" --status "$T/app.sock" --json; }

# The relays learn the agent's address from the locator's welcome.
check "relay B has the agent's address" wait_for 10 sh -c \
    "'$BINDIR/vrelay' status --status '$T/relayB.sock' --json |
    grep -q '\"vmomi_agent\": *\"tcp://127.0.0.1:$GPORT\"'"
[ "$(vr B | json_get forwards.vmomi_agent_source)" = locator ] ||
    fail "relay B: agent address source: $(vr B)"

# 1. A vSocket caller's bytes reach the agent, attested as B/CID 3.
python3 - "$VPORT" <<'PY' || fail "send to the agent"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /sdk HTTP/1.1\r\nHost: vcenter\r\nContent-Length: 0\r\n\r\n")
s.settimeout(5)
try:
    s.recv(65536)
except OSError:
    pass
PY
# A connection held open while the locator is asked who it is.
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST"); time.sleep(20)' "$VPORT" &
HOLD=$!
PIDS="$PIDS $HOLD"
check "the held session opens at the locator" wait_for 10 sh -c \
    "'$BINDIR/vlocator' sessions --status '$T/loc.sock' --json |
    grep -q '\"bytes_in\": *4'"
python3 - "$(loc sessions)" "$(loc status)" <<'PY' || fail "attestation"
import json, sys
S = json.loads(sys.argv[1])["sessions"]; st = json.loads(sys.argv[2])
assert len(S) == 1, S
s = S[0]
assert s["guest"]["service"] == "vmomi", s
# Its leg is named after what relay B attested, not what HELLO said.
assert s["leg"].startswith("host=B cid=3 port="), s
assert st["gate"]["legs"]["attested"] >= 1, st["gate"]
PY
kill "$HOLD"
check "the held session ends" wait_for 10 sh -c \
    "'$BINDIR/vlocator' sessions --status '$T/loc.sock' --json |
    grep -q '\"sessions\": *\[\]'"
grep -q 'session-open.*' "$T/loc.log" || fail "no session opened at the gate"

# 2. A caller that is no VM (unix) gets no line and no forward.
python3 - "$T/vmomiB.sock" <<'PY' || fail "unix caller not refused"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
assert s.recv(100) == b""
PY
[ "$(vr B | json_get forwards.vmomi_not_vsock)" = 1 ] ||
    fail "relay B did not count the unix caller: $(vr B)"

# 3. Relay C's certificate, attesting for host B: refused; for C: let in.
forge() {
	python3 - "$T/pki" "$GPORT" "$1" <<'PY'
import socket, ssl, sys
pki, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/C.pem", pki + "/C.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
s.sendall(("VRELAY-CALLER 1 host=%s cid=3 port=1\r\n" % host).encode())
s.settimeout(3)
try:
    print("closed" if s.recv(100) == b"" else "open")
except socket.timeout:
    print("open")
except OSError:
    print("closed")
PY
}
[ "$(forge B)" = closed ] || fail "a caller line for B on C's certificate"
[ "$(forge C)" = open ] || fail "C's own caller line was refused"
grep -q 'vmomi-leg-refused.*host B, not a host the relay' "$T/loc.log" ||
    fail "no refusal event for the forged host: $(grep vmomi "$T/loc.log")"

# 4. The appliance is vMotioned to C mid-stream: the session resumes
# through relay C, the caller is now C/3, nothing is lost.
n0=$(loc status | json_get gate.legs.attested)
# RetrieveServiceContent, one at a time on one keep-alive connection:
# each answer read whole (Content-Length) before the next request.
python3 - "$VPORT" >"$T/soap.json" 2>"$T/soap.err" <<'PY' &
import json, socket, sys, time
body = (b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:vim25="urn:vim25"><soapenv:Body><vim25:RetrieveServiceContent>'
    b'<vim25:_this type="ServiceInstance">ServiceInstance</vim25:_this>'
    b'</vim25:RetrieveServiceContent></soapenv:Body></soapenv:Envelope>')
req = (b"POST /sdk HTTP/1.1\r\nHost: vcenter\r\nContent-Type: text/xml\r\n"
    b"SOAPAction: urn:vim25/6.0\r\nContent-Length: %d\r\n\r\n" %
    len(body)) + body
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
f = s.makefile("rb")
out = {"requests": 0, "ok": 0, "refused": 0, "other": [], "bytes_sent": 0}
end = time.time() + 4
while time.time() < end:
    s.sendall(req); out["requests"] += 1; out["bytes_sent"] += len(req)
    status = int(f.readline().split()[1])
    n = 0
    while True:
        h = f.readline().strip()
        if not h:
            break
        k, v = h.split(b":", 1)
        if k.lower() == b"content-length":
            n = int(v)
    b = f.read(n)
    if status == 200 and b"RetrieveServiceContentResponse" in b:
        out["ok"] += 1
    elif status == 500 and b"vrelay agent" in b:
        out["refused"] += 1	# the watch has not seen the move yet
    else:
        out["other"].append([status, b[:200].decode("utf-8", "replace")])
s.shutdown(socket.SHUT_WR)
assert f.read() == b""
print(json.dumps(out))
PY
TPID=$!
check "the stream is flowing" wait_for 10 sh -c \
    "'$BINDIR/vlocator' sessions --status '$T/loc.sock' --json |
    grep -q '\"bytes_in\": *[1-9]'"
sleep 1
"$BINDIR/vappliance" migrate --status "$T/app.sock" \
    --arg vsock_dir="$T/C" >/dev/null || fail "migrate"
# vCenter reports the new host only after the session has resumed
# through relay C: requests in between wait for it, none is refused.
sleep 0.5
vcsim_cmd relocate C
wait "$TPID" || fail "the requests across the vMotion: $(cat "$T/soap.err")"
# The session's last word at each end (the watchers' session-close).
check "the stream's session closed at both ends" wait_for 10 sh -c \
    "grep -q session-close '$T/app-watch.jsonl' &&
    grep -q '\"session-close\"' '$T/loc-watch.jsonl'"
python3 - "$T/app-watch.jsonl" "$T/loc-watch.jsonl" "$T/soap.json" \
    <<'PY' || fail "after the vMotion: $(cat "$T/app-watch.jsonl")"
import json, sys
def closes(path):
    return {e["id"]: e for e in map(json.loads, open(path))
            if e.get("event") == "session-close" and
            e.get("guest", {}).get("service") == "vmomi"}
# The stream's session: the one the vMotion detached.
moved = {e["id"] for e in map(json.loads, open(sys.argv[1]))
         if e.get("event") == "session-detached"}
A = [e for i, e in closes(sys.argv[1]).items() if i in moved]
L = closes(sys.argv[2])
assert len(A) == 1, A
a = A[0]; l = L[a["id"]]
assert a["reason"] == "done" and l["reason"] == "done", (a, l)
assert a["resumes"] >= 1 and l["resumes"] >= 1, (a, l)
# Every byte the appliance read reached the agent's stream, once.
assert l["bytes_in"] == a["bytes_out"], (a, l)
assert a["bytes_in"] == l["bytes_out"], (a, l)
# Every request got one answer, in order, from vCenter: those sent
# while the watch still had the appliance on B waited for it.
r = json.load(open(sys.argv[3]))
assert r["other"] == [] and r["refused"] == 0 and r["ok"] >= 1, r
assert r["ok"] == r["requests"], r
assert l["bytes_in"] == r["bytes_sent"], (l, r)
print("  t-vmomi-path: %d requests across the vMotion, all answered; "
      "%d bytes in, %d resume(s)" % (r["requests"], l["bytes_in"],
      l["resumes"]), file=sys.stderr)
PY
grep -q 'session-resumed session=.* leg=host=C cid=3 port=' "$T/loc.log" ||
    fail "no resume through relay C as C/3: $(grep resumed "$T/loc.log")"
[ "$(loc status | json_get gate.legs.attested)" -gt "$n0" ] ||
    fail "no new attested leg after the vMotion"
grep -q 'vmomi-caller-moved' "$T/loc.log" || fail "no caller-moved event"
[ "$(loc status | json_get agent.caller_waits)" -ge 1 ] ||
    fail "no request waited for vSphere to show the move: $(loc status)"
[ "$(vr C | json_get forwards.vmomi_total)" -ge 1 ] ||
    fail "relay C forwarded nothing: $(vr C)"
exit 0
