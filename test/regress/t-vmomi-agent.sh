# The vmomi authenticating agent (docs/vmomi-agent.md) end to end: a
# vSphere client on the appliance speaks SOAP to vappliance
# --vmomi-listen; the relay on the appliance's host attests the caller
# (host B, CID 3) to the locator's gate; the agent checks it and the
# policy and forwards with its own vCenter session.  Against the
# simulator: an allowed read, a local Login, an allowed reconfigure of
# a VM in the appliance's pool (seen changed), a refused power-off of a
# VM outside it (still on), a call outside the policy, a malformed
# envelope, an oversized body, a request after the locator's own
# vCenter session was killed (re-login, invisible), a caller that is
# not the appliance VM (no session at the locator: refused when it
# opens); every decision in `vlocator watch`.
. ./lib.sh

VPORT=$((BASE + 30))			# vappliance --vmomi-listen
VPORT2=$((BASE + 31))			# a second VM's (CID 9)
GPORT=$((BASE + 21))			# vlocator --vmomi-listen
CLIENT="python3 $(dirname "$0")/vmomi_client.py"

# --- setup: appliance -> relay B -> locator's gate -> agent ---
mint_certs
write_creds
start_vcsim -tls -cert "$T/vcsim.pem" -cvms c1@B -outside o1@B
hello() { vcsim_hello "$1" | python3 -c 'import ast, sys
print(ast.literal_eval(sys.stdin.read())[0]["moref"])'; }
C1=$(hello cvms)
O1=$(hello outside)
start_backend $((BASE + 10))
start_locator --thumbprint "$VCSIM_SHA256" $(tls locator) \
    --vmomi-listen "tcp://127.0.0.1:$GPORT" --vmomi-max-request 256K
"$BINDIR/vlocator" watch --status "$T/loc.sock" --json \
    >"$T/loc-watch.jsonl" 2>&1 &
PIDS="$PIDS $!"
start_lrelay B $((BASE + 2)) $(tls B) --vmomi-listen vsock://any:2003
start_appliance B $((BASE + 10)) --vmomi-listen "tcp://127.0.0.1:$VPORT"
# Another VM on host B (CID 9) with its own vmomi listener.
"$BINDIR/vappliance" run --listen vsock://any:1025 --vsock-dir "$T/B" \
    --vsock-cid 9 --backend "tcp://127.0.0.1:$((BASE + 10))" \
    --status "$T/app2.sock" --vmomi-listen "tcp://127.0.0.1:$VPORT2" \
    2>>"$T/app2.log" &
PIDS="$PIDS $!"
wait_sock "$T/app2.sock"
check "locator in sync" wait_loc 'S["vsphere"]["state"] == "live"'
check "relay B has the agent's address" wait_for 10 sh -c \
    "'$BINDIR/vrelay' status --status '$T/relayB.sock' --json |
    grep -q '\"vmomi_agent\": *\"tcp://127.0.0.1:$GPORT\"'"
APP="127.0.0.1:$VPORT"
STRANGER="127.0.0.1:$VPORT2"
# --- end of setup ---

# env METHOD TYPE VALUE [INNER]: a request envelope on stdout.
env_() {
	printf '<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope '
	printf 'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
	printf 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
	printf '<soapenv:Body><%s xmlns="urn:vim25"><_this type="%s">%s' \
	    "$1" "$2" "$3"
	printf '</_this>%s</%s></soapenv:Body></soapenv:Envelope>\n' \
	    "${4:-}" "$1"
}
# A RetrievePropertiesEx of VM $1's property $2.
getprop() {
	env_ RetrievePropertiesEx PropertyCollector propertyCollector \
	    "<specSet><propSet><type>VirtualMachine</type><pathSet>$2\
</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$1</obj>\
</objectSet></specSet><options/>"
}
R=$T/req
mkdir -p "$R"
env_ RetrieveServiceContent ServiceInstance ServiceInstance >"$R/sc.xml"
env_ Login SessionManager SessionManager \
    '<userName>appliance</userName><password>nothing</password>' \
    >"$R/login.xml"
getprop "$C1" name >"$R/read.xml"
env_ ReconfigVM_Task VirtualMachine "$C1" \
    '<spec><annotation>set through the vrelay agent</annotation></spec>' \
    >"$R/reconfig.xml"
getprop "$C1" config.annotation >"$R/annotation.xml"
env_ PowerOffVM_Task VirtualMachine "$O1" >"$R/off-outside.xml"
getprop "$O1" runtime.powerState >"$R/power-outside.xml"
env_ CreateVM_Task Folder group-v3 >"$R/create.xml"
printf '<soapenv:Envelope xmlns:soapenv="%s"><soapenv:Body><A/><B/>%s' \
    "http://schemas.xmlsoap.org/soap/envelope/" \
    "</soapenv:Body></soapenv:Envelope>" >"$R/twocalls.xml"
printf '<soapenv:Envelope xmlns:soapenv="%s"><soapenv:Body><Curr' \
    "http://schemas.xmlsoap.org/soap/envelope/" >"$R/truncated.xml"

# ask N EXPR: answer N (1-based) of the last run satisfies python EXPR
# over A (that answer's JSON).
ask() {
	sed -n "$1p" "$T/answers.jsonl" | python3 -c 'import json, sys
A = json.loads(sys.stdin.read() or "{}")
sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)' "$2" ||
	    fail "answer $1: $(sed -n "$1p" "$T/answers.jsonl"), want $2"
}

# 1. One keep-alive connection from the appliance, every kind of call.
$CLIENT "$APP" "$R/sc.xml" "$R/login.xml" "$R/read.xml" \
    "$R/reconfig.xml" "$R/annotation.xml" "$R/off-outside.xml" \
    "$R/power-outside.xml" "$R/create.xml" "$R/twocalls.xml" \
    "$R/truncated.xml" "$R/read.xml" >"$T/answers.jsonl" ||
    fail "client: $(cat "$T/answers.jsonl")"
ask 1 'A["status"] == 200 and A["element"] == "RetrieveServiceContentResponse"'
ask 2 'A["element"] == "LoginResponse" and "vrelay-agent" in A["set_cookie"]'
ask 3 'A["status"] == 200 and A["text"].endswith("namec1")'
ask 4 'A["status"] == 200 and A["element"] == "ReconfigVM_TaskResponse"'
ask 5 'A["status"] == 200 and "set through the vrelay agent" in A["text"]'
ask 6 'A["status"] == 500 and A["fault"] == "NoPermission" and
    A["object"] == "'"$O1"'" and "PowerOffVM_Task refused" in
    A["faultstring"] and "outside the appliance" in A["faultstring"]'
ask 7 'A["status"] == 200 and A["text"].endswith("poweredOn")'
ask 8 'A["fault"] == "NoPermission" and "not in the policy" in
    A["faultstring"]'
ask 9 'A["status"] == 500 and "malformed envelope: SOAP Body with 2" in
    A["faultstring"]'
ask 10 'A["status"] == 500 and "malformed envelope: XML error" in
    A["faultstring"]'
ask 11 'A["status"] == 200 and not A["close"]'
grep -q 'nothing' "$T/loc.log" && fail "the appliance's password was logged"

# 1b. A read call with a power-off of the outside VM hidden in a second
# Body (the simulator's decoder takes the last Body it sees): refused
# as malformed, and the VM stays on.
{
	printf '<soapenv:Envelope xmlns:soapenv="%s">' \
	    "http://schemas.xmlsoap.org/soap/envelope/"
	printf '<soapenv:Body><CurrentTime xmlns="urn:vim25"><_this type='
	printf '"ServiceInstance">ServiceInstance</_this></CurrentTime>'
	printf '</soapenv:Body><Body xmlns="urn:vim25"><PowerOffVM_Task>'
	printf '<_this type="VirtualMachine">%s</_this></PowerOffVM_Task>' "$O1"
	printf '</Body></soapenv:Envelope>'
} >"$R/smuggle.xml"
$CLIENT "$APP" "$R/smuggle.xml" "$R/power-outside.xml" >"$T/answers.jsonl"
ask 1 'A["status"] == 500 and "malformed envelope: SOAP Envelope holds Body"
    in A["faultstring"]'
ask 2 'A["status"] == 200 and A["text"].endswith("poweredOn")'

# 2. An oversized body: 413 with a fault, the connection closed.
$CLIENT "$APP" big:300000 "$R/read.xml" >"$T/answers.jsonl"
ask 1 'A["status"] == 413 and "over the 262144-byte limit" in
    A["faultstring"] and A["close"]'
ask 2 'A.get("closed")'

# 3. The locator's own session dies: the next calls still work.
logins=$(loc status | json_get agent.logins)
vcsim_cmd kick
$CLIENT "$APP" "$R/read.xml" "$R/reconfig.xml" >"$T/answers.jsonl"
ask 1 'A["status"] == 200 and A["text"].endswith("namec1")'
ask 2 'A["status"] == 200 and A["element"] == "ReconfigVM_TaskResponse"'
[ "$(loc status | json_get agent.relogins)" -ge 1 ] ||
    fail "no re-login: $(loc status)"
[ "$(loc status | json_get agent.logins)" -gt "$logins" ] ||
    fail "logins did not grow"

# 4. Another VM on the same host is not the appliance: its session is
# refused as it opens (for good: auth), so it holds nothing here and
# its request never reaches the agent.
$CLIENT "$STRANGER" "$R/read.xml" >"$T/answers.jsonl"
ask 1 'A.get("closed")'
check "CID 9 refused at session open" wait_for 5 grep -q \
    'vmomi-leg-refused.*CID 9 on host B is not the appliance VM (CID 3)' \
    "$T/loc.log"
grep -q 'session-close.*refused by appliance end (auth): CID 9' \
    "$T/app2.log" || fail "CID 9: $(grep session "$T/app2.log" | tail -3)"
python3 - "$(loc sessions)" "$(loc status)" <<'PY' || fail "CID 9 session"
import json, sys
S = json.loads(sys.argv[1])["sessions"]; g = json.loads(sys.argv[2])["gate"]
assert not any(s["leg"].startswith("host=B cid=9 ") for s in S), S
assert g["opens_refused"] == 1, g
PY

# 4b. The appliance's live sessions are capped (GATE_CID_SESSIONS, 64):
# one more is refused as it opens (limit: its client end retries) and
# gets through once others end.
nsess() { loc sessions | python3 -c 'import json, sys
sys.exit(len(json.load(sys.stdin)["sessions"]) != int(sys.argv[1]))' "$1"; }
check "no sessions left" wait_for 10 nsess 0
python3 -c 'import socket, sys, time
S = [socket.create_connection(("127.0.0.1", int(sys.argv[1])))
     for i in range(64)]
for s in S:
    s.sendall(b"POST")
time.sleep(60)' "$VPORT" &
HOLD=$!
PIDS="$PIDS $HOLD"
check "64 sessions open" wait_for 10 nsess 64
$CLIENT "$APP" "$R/read.xml" >"$T/answers.jsonl" &
C65=$!
check "the 65th refused at open" wait_for 10 grep -q \
    'vmomi-leg-refused.*CID 3 already has 64 sessions' "$T/loc.log"
kill "$HOLD"
wait "$C65" || fail "the 65th: $(cat "$T/answers.jsonl")"
ask 1 'A["status"] == 200 and A["text"].endswith("namec1")'

# 5. Every decision is in `vlocator watch` and counted in status.
check "decisions in vlocator watch" wait_for 5 python3 - \
    "$T/loc-watch.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"vmomi"' in l]
ev = [e for e in ev if e.get("event") == "vmomi"]
d = {(e["method"], e["decision"]) for e in ev}
want = {("RetrievePropertiesEx", "allowed"), ("ReconfigVM_Task", "allowed"),
        ("PowerOffVM_Task", "refused"), ("CreateVM_Task", "refused"),
        ("Login", "allowed"), ("-", "error")}
assert want <= d, (want - d)
assert all(e["caller_host"] == "B" and e["caller_cid"] == 3 for e in ev)
PY
python3 - "$(loc status)" <<'PY' || fail "agent counters: $(loc status)"
import json, sys
a = json.loads(sys.argv[1])["agent"]
assert a["requests"] == 17 and a["allowed"] == 11, a
assert a["refused"] == 3 and a["errors"] == 3, a
assert a["answered_locally"] == 1 and a["vcenter_session"] == "ready", a
PY
loc vmomi-policy | grep -q '"PowerOffVM_Task"' || fail "vmomi-policy"

# 6. A call in flight when its session ends: a WaitForUpdatesEx that
# vCenter holds for 50 s, and the appliance's client hangs up.  The
# agent's connection goes with the session, not when vCenter answers
# (it did not read while the call was out, so it never saw the end).
env_ WaitForUpdatesEx PropertyCollector propertyCollector \
    '<version>1</version><options><maxWaitSeconds>50</maxWaitSeconds></options>' \
    >"$R/wait.xml"
python3 - "$VPORT" "$R/wait.xml" <<'PY' &
import socket, sys, time
body = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /sdk HTTP/1.1\r\nHost: vcenter\r\nContent-Type: text/xml\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
time.sleep(60)
PY
WAITER=$!
PIDS="$PIDS $WAITER"
agent_is() { loc status | python3 -c 'import json, sys
A = json.load(sys.stdin)["agent"]
sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)' "$1"; }
check "the wait's connection" wait_for 10 agent_is 'A["connections"] == 1'
sleep 1
# Requests are counted as they are answered: this one is not.
agent_is 'A["connections"] == 1 and A["requests"] == 17' ||
    fail "the 50 s wait was answered: $(loc status)"
kill "$WAITER"
check "the agent's connection went with its session" wait_for 5 \
    agent_is 'A["connections"] == 0'

# 6b. HTTP/1.0 with "Connection: keep-alive" is told so, and kept.
python3 - "$VPORT" "$R/sc.xml" <<'PY' || fail "HTTP/1.0 keep-alive"
import socket, sys
body = open(sys.argv[2], "rb").read()
req = (b"POST /sdk HTTP/1.0\r\nConnection: keep-alive\r\n"
       b"Content-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
       % len(body)) + body
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
for i in range(2):
    s.sendall(req)
    status = f.readline()
    assert b" 200 " in status, status
    hdrs = {}
    while True:
        l = f.readline().strip()
        if not l:
            break
        k, _, v = l.partition(b":")
        hdrs[k.strip().lower()] = v.strip().lower()
    assert hdrs.get(b"connection") == b"keep-alive", hdrs
    f.read(int(hdrs[b"content-length"]))
PY

# 6c. A forwarded call whose Header names a session is refused; a
# LoginByToken with its WS-Security header is answered here, as its own
# method; a client that shuts its sending side after a request still
# gets the answer (then the connection closes).
{
	printf '<soapenv:Envelope xmlns:soapenv="%s"><soapenv:Header>' \
	    "http://schemas.xmlsoap.org/soap/envelope/"
	printf '<vcSessionCookie>forged</vcSessionCookie></soapenv:Header>'
	printf '<soapenv:Body><CurrentTime xmlns="urn:vim25"><_this type='
	printf '"ServiceInstance">ServiceInstance</_this></CurrentTime>'
	printf '</soapenv:Body></soapenv:Envelope>'
} >"$R/cookie.xml"
{
	printf '<soapenv:Envelope xmlns:soapenv="%s"><soapenv:Header>' \
	    "http://schemas.xmlsoap.org/soap/envelope/"
	printf '<wsse:Security xmlns:wsse="urn:wsse"><x>token</x>'
	printf '</wsse:Security></soapenv:Header><soapenv:Body>'
	printf '<LoginByToken xmlns="urn:vim25"><_this type="SessionManager">'
	printf 'SessionManager</_this></LoginByToken></soapenv:Body>'
	printf '</soapenv:Envelope>'
} >"$R/token.xml"
$CLIENT "$APP" "$R/cookie.xml" "$R/token.xml" >"$T/answers.jsonl"
ask 1 'A["status"] == 500 and "SOAP Header holds vcSessionCookie" in
    A["faultstring"] and not A["close"]'
ask 2 'A["status"] == 200 and A["element"] == "LoginByTokenResponse"'
python3 - "$VPORT" "$R/login.xml" <<'PY' || fail "a half-closing client"
import socket, sys
body = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /sdk HTTP/1.1\r\nContent-Type: text/xml\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
assert got.startswith(b"HTTP/1.1 200 ") and b"LoginResponse" in got, got[:300]
PY

# 7. A client that pipelines 60,000 Logins (answered here, ~40 MB of
# answers) and reads none: the agent takes the next request only once
# the answer before it is out, so it stops when the path between is
# full (the session's window and socket buffers: some MB), instead of
# queueing every answer.
n0=$(loc status | json_get agent.requests)
python3 - "$VPORT" "$R/login.xml" <<'PY' || fail "pipelining client"
import socket, sys, time
body = open(sys.argv[2], "rb").read()
req = (b"POST /sdk HTTP/1.1\r\nHost: vcenter\r\nContent-Type: text/xml\r\n"
       b"Content-Length: %d\r\n\r\n" % len(body)) + body
data = req * 60000
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setblocking(False)
off, t0 = 0, time.monotonic()
last = t0
while off < len(data) and time.monotonic() - last < 2:
    try:
        off += s.send(data[off:off + 65536])
        last = time.monotonic()
    except BlockingIOError:
        time.sleep(0.01)
time.sleep(1)
print("  t-vmomi-agent: pipelined %d of %d requests' bytes, read nothing"
      % (off // len(req), 60000), file=sys.stderr)
PY
n1=$(loc status | json_get agent.requests)
log "agent answered $((n1 - n0)) of the pipelined requests"
[ $((n1 - n0)) -lt 30000 ] ||
    fail "the agent answered $((n1 - n0)) requests nobody read"
exit 0
