# Mutual TLS on every TCP link (docs/security.md): relays, locator and
# the vCenter simulator, certificates from deploy/mkcerts.sh.  Sessions
# flow byte-exact over TLS mesh legs; then each kind of wrong peer is
# refused with a reason that names what is wrong, and nothing else is
# disturbed.
. ./lib.sh

mint_certs
write_creds
start_vcsim -tls -cert "$T/vcsim.pem"
start_backend $((BASE + 10)) --report "$T/backend.jsonl"
start_appliance B $((BASE + 10))
start_locator --thumbprint "$VCSIM_SHA256" $(tls locator)
for h in A B; do
	start_lrelay $h $((BASE + $(printf '%d' "'$h") - 64)) $(tls $h) \
	    --mesh-links per-session
done
check "relays converge over TLS" wait_loc \
    'W["appliance_host"] == "B" and len(R["relays"]) == 2 and
     all(r["connected"] and r["converged"] for r in R["relays"])'

rs() { "$BINDIR/vrelay" status --status "$T/relay$1.sock" --json |
    json_get "tls.handshakes.$2"; }

# 1. Sessions A -> B over TLS mesh legs, a connection each (shared
# links: t-mesh-links), every byte checked.  The first
# contact: one leg probes, pays the full handshake and brings a ticket;
# the other sessions' legs wait for it and resume (tls_link_wait), where
# each would pay a full handshake of its own.  At most 2: a probe that
# has not finished in a second (a slow machine) stops holding the rest.
traffic A 5 --sessions 20 --bytes 1:4M --seed 3 --timeout 120 \
    >"$T/ok.json" || fail "sessions over TLS: $(cat "$T/ok.json")"
[ "$(json_get bytes_lost <"$T/ok.json")" = 0 ] || fail "bytes lost"
[ "$(rs B full)" -le 2 ] && [ "$(rs B resumed)" -ge 18 ] ||
    fail "first contact: B $(rs B full) full, $(rs B resumed) resumed"
sb=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json)
[ "$(echo "$sb" | json_get forwards.total)" -ge 20 ] ||
    fail "B forwarded too few: $sb"
# TLS mesh legs cannot be spliced: B copied every byte.
[ "$(echo "$sb" | json_get forwards.spliced)" = 0 ] &&
    [ "$(echo "$sb" | json_get forwards.bytes)" -gt 20 ] ||
    fail "B status splice/copy counts: $sb"
[ "$(echo "$sb" | json_get tls.roles.0)" = relay ] || fail "B status tls: $sb"
grep -q "TLS on TCP links as relay" "$T/relayB.log" || fail "B: no TLS line"

# 1b. Resumption (common/tls.c): B sent a ticket on each full
# handshake, the id of a session it keeps; A's next legs offer the
# newest and resume (no certificates, no signatures), both ends count
# it, and the bytes are still exact.  The 20 sessions left at most 20
# legs idle (released by vappliance): 30 at once take those and open at
# least 10.  B keeps at most 4 sessions for A's certificate.  After B
# restarts (its sessions gone), A's ticket names nothing: the probe
# falls back to a full handshake, and the legs that waited for it
# resume with the ticket it brought, not each with a full handshake.
ru() { "$BINDIR/vrelay" status --status "$T/relayA.sock" --json |
    json_get sessions.legs_reused; }
ra=$(rs A resumed); rb=$(rs B resumed); fa=$(rs A full); ua=$(ru)
traffic A 5 --sessions 30 --bytes 1:64K --seed 4 --timeout 60 \
    >"$T/res.json" || fail "sessions on resumed legs: $(cat "$T/res.json")"
[ "$(json_get bytes_lost <"$T/res.json")" = 0 ] || fail "bytes lost"
na=$(rs A resumed); nb=$(rs B resumed)
[ "$na" -ge $((ra + 5)) ] && [ "$nb" -ge $((rb + 5)) ] ||
    fail "legs not resumed: A $ra -> $na, B $rb -> $nb, A full $fa -> \
$(rs A full)"
[ "$(ru)" -gt "$ua" ] || fail "A took no kept TLS leg: $ua -> $(ru)"
[ "$("$BINDIR/vrelay" status --status "$T/relayA.sock" --json |
    json_get tls.tickets_held)" = 1 ] || fail "A holds no ticket for B"
kb=$("$BINDIR/vrelay" status --status "$T/relayB.sock" --json |
    json_get tls.sessions_kept)
[ "$kb" -ge 1 ] && [ "$kb" -le 4 ] || fail "B keeps $kb sessions for A"
kill "$RELAY_B_PID"; wait "$RELAY_B_PID" 2>/dev/null
start_lrelay B $((BASE + 2)) $(tls B) --mesh-links per-session
check "relays converge again" wait_loc \
    'len(R["relays"]) == 2 and
     all(r["connected"] and r["converged"] for r in R["relays"])'
fa=$(rs A full)
traffic A 5 --sessions 20 --bytes 1:64K --seed 5 --timeout 60 \
    >"$T/res2.json" || fail "sessions after B restarted: \
$(cat "$T/res2.json")"
[ "$(rs A full)" -gt "$fa" ] || fail "A did not fall back to a full handshake"
[ "$(rs B full)" -le 2 ] && [ "$(rs B resumed)" -ge 18 ] ||
    fail "after B restarted: B $(rs B full) full, $(rs B resumed) resumed"

# silent N PORT DONE: N silent connections to loopback PORT, held (in
# the background) until the file DONE exists.
silent() {
	python3 - "$@" <<'PY' &
import os, socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[2])))
         for _ in range(int(sys.argv[1]))]
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
PY
}

# 2. Plaintext into a TLS mesh listener: dropped, with the reason.
python3 - "$((BASE + 2))" <<'PY' || fail "plaintext leg was not closed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"\x01\x00\x00\x00\x00\x00\x00\x10" + b"x" * 16)
try:
    data = s.recv(100)
    while data and not data.startswith(b"\x15"):	# a TLS alert is fine
        data = s.recv(100)
except ConnectionResetError:
    pass
PY
check "plaintext refused with a TLS reason" wait_for 5 \
    grep -q "mesh leg from .* dropped: TLS: " "$T/relayB.log"

# The locator's push listener: one address holds at most 16 connections
# that have not said HELLO; the relays stay registered meanwhile.
silent 20 "$LOC_PORT" "$T/lflood.done"
lp=$!
PIDS="$PIDS $lp"
check "locator refuses the 17th silent connection" wait_for 5 \
    grep -q "refused before HELLO: too many from this source" "$T/loc.log"
[ "$(grep -c "refused before HELLO" "$T/loc.log")" = 4 ] ||
    fail "locator: $(grep -c "refused before HELLO" "$T/loc.log") refused"
check "relays still registered" wait_loc \
    'all(r["connected"] and r["converged"] for r in R["relays"])'
touch "$T/lflood.done"; wait $lp

# 3. A relay whose certificate names C, registering as host B: refused.
"$BINDIR/vrelay" run --host B --mesh-listen "tcp://127.0.0.1:$((BASE + 3))" \
    --locator "tcp://127.0.0.1:$LOC_PORT" --status "$T/relayX.sock" \
    $(tls C) 2>>"$T/relayX.log" &
PIDS="$PIDS $!"
check "impersonation refused" wait_for 5 \
    grep -q "refused: certificate .*CN=C does not name host B" "$T/loc.log"
kill $! 2>/dev/null
# The real B is still registered and converged.
check "B unaffected" wait_loc \
    'any(r["host"] == "B" and r["connected"] and r["converged"]
         for r in R["relays"])'

# 4. A "locator" that presents a relay's certificate: no pushes taken.
openssl s_server -accept "$((BASE + 21))" -cert "$T/pki/A.pem" \
    -key "$T/pki/A.key" -CAfile "$T/pki/ca.pem" -Verify 1 -quiet \
    </dev/null >>"$T/fakeloc.log" 2>&1 &
PIDS="$PIDS $!"
wait_listen $((BASE + 21))
"$BINDIR/vrelay" run --host C --mesh-listen "tcp://127.0.0.1:$((BASE + 4))" \
    --locator "tcp://127.0.0.1:$((BASE + 21))" --status "$T/relayY.sock" \
    $(tls C) 2>>"$T/relayY.log" &
PIDS="$PIDS $!"
check "relay refuses a non-locator certificate" wait_for 5 \
    grep -q "TLS: peer certificate has no role locator" "$T/relayY.log"
kill $! 2>/dev/null

# 5. A certificate from another CA: refused by the locator.
"$(dirname "$0")/../../deploy/mkcerts.sh" -d "$T/rogue" ca >/dev/null &&
"$(dirname "$0")/../../deploy/mkcerts.sh" -d "$T/rogue" relay C \
    >/dev/null || fail "rogue CA"
"$BINDIR/vrelay" run --host C --mesh-listen "tcp://127.0.0.1:$((BASE + 5))" \
    --locator "tcp://127.0.0.1:$LOC_PORT" --status "$T/relayZ.sock" \
    --tls-cert "$T/rogue/C.pem" --tls-key "$T/rogue/C.key" \
    --tls-ca "$T/pki/ca.pem" 2>>"$T/relayZ.log" &
p=$!
wait_lines "$T/relayZ.log" "certificate does not verify against the CA" 1 5
kill $p 2>/dev/null; wait $p 2>/dev/null
grep -q "certificate does not verify against the CA" "$T/relayZ.log" ||
    fail "a certificate from another CA was not refused at start: \
$(cat "$T/relayZ.log")"

# 6. A relay at B's address whose certificate names C: legs refused.
"$BINDIR/vrelay" run --host C --mesh-listen "tcp://127.0.0.1:$((BASE + 6))" \
    --status "$T/relayC.sock" $(tls C) 2>>"$T/relayC.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayC.sock"
"$BINDIR/vrelay" run --host A2 --guest-listen vsock://any:2001 \
    --vsock-dir "$T/A" --appliance-host B --appliance vsock://3:1024 \
    --peer "B=tcp://127.0.0.1:$((BASE + 6))" --status "$T/relayA2.sock" \
    $(tls A) 2>>"$T/relayA2.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayA2.sock"
"$BINDIR/vtraffic" run --connect vsock://2:2001 --vsock-dir "$T/A" \
    --vsock-cid 9 --sessions 1 --bytes 1K --timeout 4 >"$T/wrong.json" 2>&1 &
p=$!
# The session never opens, and says why.
check "host-name reason" wait_for 4 sh -c "'$BINDIR/vrelay' sessions \
    --status '$T/relayA2.sock' --json | grep -q \
    'TLS: peer certificate does not name B'"
wait $p && fail "a session went through a relay with the wrong host \
certificate: $(cat "$T/wrong.json")"
grep -q "dropped: TLS: .*bad certificate" "$T/relayC.log" ||
    fail "C does not say why: $(tail -3 "$T/relayC.log")"

# 7. A private key others can read: refused at start.
cp "$T/pki/A.key" "$T/loose.key"; chmod 644 "$T/loose.key"
"$BINDIR/vrelay" run --host A --mesh-listen "tcp://127.0.0.1:$((BASE + 7))" \
    --tls-cert "$T/pki/A.pem" --tls-key "$T/loose.key" \
    --tls-ca "$T/pki/ca.pem" >"$T/loose.out" 2>&1 &&
    fail "started with a world-readable key"
grep -q "readable by group or others: .*loose.key has mode 0644" \
    "$T/loose.out" || fail "key mode message: $(cat "$T/loose.out")"

# 8. Bounded pre-authentication work: a relay taking at most 2 TLS
# handshakes per source and 3 sessions per guest.
"$BINDIR/vrelay" run --host A3 --guest-listen vsock://any:2002 \
    --vsock-dir "$T/A" --mesh-listen "tcp://127.0.0.1:$((BASE + 8))" \
    --appliance-host B --appliance vsock://3:1024 \
    --peer "B=tcp://127.0.0.1:$((BASE + 2))" --status "$T/relayA3.sock" \
    --max-handshakes-per-source 2 --max-sessions-per-guest 3 \
    --handshake-timeout 1s $(tls A) 2>>"$T/relayA3.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayA3.sock"
a3() { "$BINDIR/vrelay" status --status "$T/relayA3.sock" --json |
    json_get "$1"; }
a3_is() { [ "$(a3 "$1")" = "$2" ]; }
# Five silent connections from one address: two may wait, three go.
silent 5 "$((BASE + 8))" "$T/flood.done"
fp=$!
PIDS="$PIDS $fp"
check "3 of 5 silent legs refused" wait_for 5 \
    a3_is admission.handshakes.refused_source 3
[ "$(a3 admission.handshakes.total)" = 2 ] || fail "2 pending expected"
check "pending legs time out" wait_for 5 a3_is admission.handshakes.total 0
touch "$T/flood.done"; wait $fp
"$BINDIR/vtraffic" run --connect vsock://2:2002 --vsock-dir "$T/A" \
    --vsock-cid 11 --sessions 5 --bytes 8M --timeout $((30 * WAIT_SCALE)) \
    >"$T/perguest.json" 2>/dev/null
[ "$(json_get ok <"$T/perguest.json")" = 3 ] &&
[ "$(json_get failed <"$T/perguest.json")" = 2 ] ||
    fail "per-guest cap: $(cat "$T/perguest.json")"
grep -q "guest=vsock://11:.* refused: too many from this source (3 " \
    "$T/relayA3.log" || fail "per-guest refusal not logged"
check "slots given back" wait_for 5 a3_is admission.guests.total 0

# 9. A relay delivering to an appliance over TCP: TLS both ways, and the
# appliance takes legs from relays' certificates only.
"$BINDIR/vappliance" run --listen "tcp://127.0.0.1:$((BASE + 9))" \
    --backend "tcp://127.0.0.1:$((BASE + 10))" --status "$T/appT.sock" \
    $(tls appliance) 2>>"$T/appT.log" &
PIDS="$PIDS $!"
wait_sock "$T/appT.sock"
"$BINDIR/vrelay" run --host A4 --guest-listen vsock://any:2003 \
    --vsock-dir "$T/A" --appliance "tcp://127.0.0.1:$((BASE + 9))" \
    --status "$T/relayA4.sock" $(tls A) 2>>"$T/relayA4.log" &
PIDS="$PIDS $!"
wait_sock "$T/relayA4.sock"
"$BINDIR/vtraffic" run --connect vsock://2:2003 --vsock-dir "$T/A" \
    --vsock-cid 12 --sessions 3 --bytes 256K >"$T/appT.json" 2>&1 ||
    fail "sessions into a TLS appliance: $(cat "$T/appT.json")"
openssl s_client -connect "127.0.0.1:$((BASE + 9))" \
    -cert "$T/pki/appliance.pem" -key "$T/pki/appliance.key" \
    -CAfile "$T/pki/ca.pem" </dev/null >/dev/null 2>&1
check "appliance refuses a non-relay certificate" wait_for 5 grep -q \
    'leg refused .*reason="mesh leg error: TLS: peer certificate has no role relay"' \
    "$T/appT.log"

# After all that, sessions still flow A -> B.
check "sessions still flow" traffic A 6 --sessions 4 --bytes 64K >/dev/null
exit 0
