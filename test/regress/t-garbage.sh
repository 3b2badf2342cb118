# Garbage from a peer closes only that connection: a live session
# keeps going, the daemons keep running, and the logs say what and
# where.  Also a wrong protocol version gets a clear error.
. ./lib.sh

start_backend $((BASE + 10)) --slow 4M
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B

traffic A 5 --sessions 4 --bytes 4M --timeout 60 >"$T/result.json" &
TP=$!
sleep 0.3
# Random bytes straight into the appliance's vsock listener...
head -c 4096 /dev/urandom | socat -u - "UNIX-CONNECT:$T/B/3.1024" || true
# ...through the mesh listener of B's relay...
head -c 4096 /dev/urandom | socat -u - "TCP:127.0.0.1:$((BASE + 2))" || true
# ...a HELLO claiming protocol version 9...
printf '\001\000\000\000\000\000\000\060VRLY\000\011\000\002AAAAAAAA%032d' 0 |
    socat -u - "UNIX-CONNECT:$T/B/3.1024" || true
# ...and junk on the status sockets.
printf 'not json\n' | socat - "UNIX-CONNECT:$T/relayA.sock" >/dev/null || true
head -c 100000 /dev/zero | socat -u - "UNIX-CONNECT:$T/app.sock" || true
sleep 0.3
wait $TP || fail "live sessions hurt by garbage: $(cat "$T/result.json")"
kill -0 "$APP_PID" "$RELAY_A_PID" "$RELAY_B_PID" || fail "a daemon died"
grep -q 'leg refused.*bad frame header' "$T/app.log" ||
    fail "appliance did not log the garbage"
grep -q 'protocol version 9 not supported; this end speaks versions 2 to 5' \
    "$T/app.log" || fail "no clear version error"
check "status still answers" "$BINDIR/vappliance" status \
    --status "$T/app.sock" >/dev/null
check "new sessions work" traffic A 6 --sessions 2 --bytes 100K
exit 0
