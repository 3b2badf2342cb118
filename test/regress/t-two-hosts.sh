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
exit 0
