# No path for longer than the hold time: the session is closed on both
# ends with a reason, and the guest sees its connection end.
. ./lib.sh

# A session that has never opened has the same hold time: under
# valgrind the first ones take seconds to open, so it is longer there.
H=$((1500 * WAIT_SCALE))
start_backend $((BASE + 10)) --slow 1M
start_appliance B $((BASE + 10)) --hold-time ${H}ms
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --hold-time ${H}ms

traffic A 5 --sessions 3 --bytes 8M --timeout 60 >"$T/result.json" &
TP=$!
wait_lines "$T/relayA.log" session-open 3 || fail "sessions did not open"
kill -9 "$RELAY_B_PID"
sleep 0.5
st=$("$BINDIR/vrelay" sessions --status "$T/relayA.sock" --json)
[ "$(echo "$st" | json_get sessions.0.state)" = detached ] ||
    fail "session not detached: $st"
wait $TP && fail "transfer should have failed without a path"
wait_lines "$T/relayA.log" "session-close.*hold time $H ms expired" 1 ||
    fail "ingress did not close on hold time"
wait_lines "$T/app.log" "session-close.*hold time $H ms expired" 1 ||
    fail "appliance did not close on hold time"
[ "$(json_get failed <"$T/result.json")" = 3 ] || fail "guests not told"
exit 0
