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
# A leg into a relay whose host does not run the appliance parks, its
# first bytes unread, in case the target moves here: 4 KiB fill the
# leg's read mark, where libevent would call a read callback that
# leaves them every turn of the loop (docs/fuzzing.md): reading is off
# while it waits.
c0=$(cpu_ticks "$RELAY_A_PID")
(head -c 4096 /dev/urandom; sleep 0.8) |
    socat -u - "TCP:127.0.0.1:$((BASE + 1))" || true
c1=$(cpu_ticks "$RELAY_A_PID")
log "relay A: $((c1 - c0)) ticks of CPU while a leg waited with 4 KiB"
[ -n "${VALGRIND:-}" ] || [ $((c1 - c0)) -le 20 ] ||
    fail "relay A spun while a leg waited: $((c1 - c0)) ticks in 0.8 s"
[ "$("$BINDIR/vrelay" status --status "$T/relayA.sock" --json |
    json_get forwards.parked)" -ge 1 ] || fail "relay A parked no leg"
check "status still answers" "$BINDIR/vappliance" status \
    --status "$T/app.sock" >/dev/null
check "new sessions work" traffic A 6 --sessions 2 --bytes 100K
exit 0
