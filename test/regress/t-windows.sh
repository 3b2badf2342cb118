# Unequal windows: the ingress relay keeps 8 MiB unacknowledged, the
# appliance 64 KiB, and the backend echoes.  Both ends announce theirs
# (wire version 5) and keep to the smaller; before, the relay sent up
# to its own, more than the appliance would read ahead of the ACK its
# own sending waited for, and every session stalled for good.
. ./lib.sh

start_backend $((BASE + 10))
start_appliance B $((BASE + 10)) --replay-max 64K
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --replay-max 8M

traffic A 5 --sessions 4 --bytes 32M --pattern echo --timeout 60 \
    >"$T/echo.json" &
TP=$!
# While it runs, both ends say which window they keep to (known once
# the WELCOME is in: an end in handshake shows its own).
seen=""
for i in $(seq 1 50); do
	s=$("$BINDIR/vrelay" sessions --status "$T/relayA.sock" --json)
	seen=$(echo "$s" | python3 -c 'import json,sys
s=json.load(sys.stdin)["sessions"]
print(" ".join("%d/%d" % (x["version"], x["window"]) for x in s
    if x["state"] == "established"))')
	[ -n "$seen" ] && break
	sleep 0.1
done
log "relay A sessions (version/window): $seen"
for v in $seen; do
	[ "$v" = 5/65536 ] || fail "relay A session at $v, not 5/65536"
done
[ -n "$seen" ] || fail "no session seen on relay A"
# ...and the table says so in its WINDOW column.
"$BINDIR/vrelay" sessions --status "$T/relayA.sock" >"$T/table"
python3 - "$T/table" <<'PY' || fail "sessions table: $(cat "$T/table")"
import sys
rows = [l.split() for l in open(sys.argv[1])]
col = rows[0].index("WINDOW")
# A session may end between the two answers: a header alone is fine.
assert all(r[col] == "64K" for r in rows[1:]
    if r[1] == "established"), rows
PY
wait $TP || fail "echo with unequal windows: $(cat "$T/echo.json")"
[ "$(json_get bytes_verified <"$T/echo.json")" = 134217728 ] ||
    fail "not all verified: $(cat "$T/echo.json")"
exit 0
