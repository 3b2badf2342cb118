# kill -9 of the relay on the appliance's host, twice, while 40
# sessions are mid-transfer (a slow backend keeps them busy): every
# session resumes through the restarted relay and completes byte-exact.
. ./lib.sh

start_backend $((BASE + 10)) --slow 2M
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B

traffic A 5 --sessions 40 --bytes 2M:6M --seed 3 --timeout 120 \
    >"$T/result.json" &
TP=$!
wait_lines "$T/relayA.log" session-open 40 || fail "sessions did not open"
kill -9 "$RELAY_B_PID"
sleep 0.3
start_relay B $((BASE + 2)) B
sleep 0.8
kill -9 "$RELAY_B_PID"
sleep 0.2
start_relay B $((BASE + 2)) B
wait $TP || fail "transfer failed: $(cat "$T/result.json")"
[ "$(json_get bytes_lost <"$T/result.json")" = 0 ] || fail "bytes lost"
[ "$(json_get duplicates <"$T/result.json")" = 0 ] || fail "duplicates"
r=$(grep -c 'session-resumed' "$T/relayA.log")
[ "$r" -ge 40 ] || fail "only $r resumes logged on A (expected >= 40)"
grep -q 'session-detached' "$T/app.log" || fail "appliance never detached"
exit 0
