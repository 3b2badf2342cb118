# Local delivery: a guest on the appliance's own host goes straight
# into the appliance over vSocket, not through the mesh listener.
# The guest identity reaches the backend in a PROXY v2 header.
. ./lib.sh

start_backend $((BASE + 10)) --proxy-v2 --report "$T/backend.jsonl"
start_appliance B $((BASE + 10)) --proxy-v2
start_relay B $((BASE + 2)) B

check "local sessions" traffic B 9 --sessions 20 --bytes 1:1M
st=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json)
[ "$(echo "$st" | json_get forwards.total)" = 0 ] ||
    fail "local delivery went through the mesh"
[ "$(echo "$st" | json_get sessions.accepted)" = 20 ] ||
    fail "relay B did not accept 20 guests"
python3 - "$T/backend.jsonl" <<'PY' || fail "PROXY v2 identity missing"
import json, sys
n = 0
for line in open(sys.argv[1]):
    c = json.loads(line)
    assert c["proxy"]["host"] == "B" and c["proxy"]["cid"] == 9, c
    n += 1
assert n == 20, n
PY
exit 0
