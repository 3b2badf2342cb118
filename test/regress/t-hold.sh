# No path for longer than the hold time: the session is closed on both
# ends with a reason, and the guest sees its connection end.
. ./lib.sh

start_backend $((BASE + 10)) --slow 1M
start_appliance B $((BASE + 10)) --hold-time 1500ms
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --hold-time 1500ms

traffic A 5 --sessions 3 --bytes 8M --timeout 60 >"$T/result.json" &
TP=$!
sleep 0.7
kill -9 "$RELAY_B_PID"
sleep 0.5
st=$("$BINDIR/vrelay" sessions --status "$T/relayA.sock" --json)
[ "$(echo "$st" | json_get sessions.0.state)" = detached ] ||
    fail "session not detached: $st"
wait $TP && fail "transfer should have failed without a path"
sleep 0.5
grep -q 'session-close.*hold time 1500 ms expired' "$T/relayA.log" ||
    fail "ingress did not close on hold time"
grep -q 'session-close.*hold time 1500 ms expired' "$T/app.log" ||
    fail "appliance did not close on hold time"
[ "$(json_get failed <"$T/result.json")" = 3 ] || fail "guests not told"
exit 0
