# The other transports end to end: the mesh over IPv6 loopback, the
# appliance endpoint on a unix socket (the plain vSocket relay mode:
# no appliance host, the ingress relay goes straight to the endpoint),
# and the backend on a unix socket.  Skips IPv6 only where the machine
# has no ::1.
. ./lib.sh

"$BINDIR/vtraffic" serve --listen "unix:$T/backend.sock" 2>>"$T/backend.log" &
PIDS="$PIDS $!"
"$BINDIR/vappliance" run --listen "unix:$T/app.leg" \
    --listen "tcp://127.0.0.1:$((BASE + 20))" \
    --backend "unix:$T/backend.sock" --status "$T/app.sock" \
    2>>"$T/app.log" &
PIDS="$PIDS $!"
wait_sock "$T/app.sock"

# Direct mode: no --appliance-host, legs go to --appliance itself.
"$BINDIR/vrelay" run --host A --guest-listen vsock://any:2000 \
    --vsock-dir "$T/A" --appliance "unix:$T/app.leg" \
    --status "$T/relayA.sock" 2>>"$T/relayA.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayA.sock"
check "direct to a unix endpoint" traffic A 5 --sessions 10 --bytes 1:2M

if ip -6 addr show lo 2>/dev/null | grep -q '::1/128'; then
	"$BINDIR/vrelay" run --host B --vsock-dir "$T/B" \
	    --mesh-listen "tcp://[::1]:$((BASE + 2))" \
	    --appliance-host B --appliance "tcp://127.0.0.1:$((BASE + 20))" \
	    --status "$T/relayB.sock" 2>>"$T/relayB.log" &
	PIDS="$PIDS $!"
	wait_sock "$T/relayB.sock"
	"$BINDIR/vrelay" run --host C --guest-listen vsock://any:2000 \
	    --vsock-dir "$T/C" --appliance-host B \
	    --peer "B=tcp://[::1]:$((BASE + 2))" \
	    --status "$T/relayC.sock" 2>>"$T/relayC.log" &
	PIDS="$PIDS $!"
	wait_sock "$T/relayC.sock"
	check "IPv6 mesh" traffic C 7 --sessions 10 --bytes 1:2M
	grep -q 'listening on tcp://\[::1\]' "$T/relayB.log" ||
	    fail "relay B not on IPv6"
else
	log "no ::1 here: IPv6 mesh part skipped"
fi

# An appliance that refuses the forwarder's connection: the ingress end
# is told why in an ERROR frame, and keeps trying (within its hold).
"$BINDIR/vrelay" run --host D --vsock-dir "$T/D" \
    --mesh-listen "tcp://127.0.0.1:$((BASE + 4))" --appliance-host D \
    --appliance "tcp://127.0.0.1:$((BASE + 30))" \
    --status "$T/relayD.sock" 2>>"$T/relayD.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayD.sock"
"$BINDIR/vrelay" run --host E --guest-listen vsock://any:2000 \
    --vsock-dir "$T/E" --appliance-host D \
    --peer "D=tcp://127.0.0.1:$((BASE + 4))" \
    --status "$T/relayE.sock" 2>>"$T/relayE.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayE.sock"
traffic E 8 --sessions 1 --bytes 1K --timeout 2 >/dev/null &&
    fail "a session opened with no appliance"
"$BINDIR/vrelay" sessions --status "$T/relayE.sock" --json |
    grep -q "appliance [^ ]* unreachable" || fail "ingress not told why: \
    $("$BINDIR/vrelay" sessions --status "$T/relayE.sock" --json)"
exit 0
