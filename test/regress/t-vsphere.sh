# The locator against a real vCenter simulator going wrong: bad
# configuration, bad credentials, a certificate that is not the pinned
# one, both thumbprint forms and a CA bundle; then, with relays: the
# locator restarting, the simulator restarting, sessions expiring, and
# a relay whose host vSphere does not know.  Relays keep their last
# target throughout and converge again each time.
. ./lib.sh

# Status member by dotted path, e.g. lstat vsphere.state
lstat() { loc status | json_get "$1"; }
# Wait until status member $1 equals $2 (up to $3 s, default 10).
wait_stat() {
	local i
	for i in $(seq 1 $(( ${3:-10} * 20 ))); do
		[ "$(lstat "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.05
	done
	fail "status $1 is $(lstat "$1" 2>/dev/null), not $2"
}
stop_locator() { kill "$LOC_PID"; wait "$LOC_PID" 2>/dev/null; }

# --- configuration refused before anything starts ---
write_creds
chmod 644 "$T/creds.json"
"$BINDIR/vlocator" run --vcenter http://127.0.0.1:1/sdk --vm x \
    --credentials "$T/creds.json" --listen tcp://127.0.0.1:$LOC_PORT \
    2>"$T/err.txt" && fail "started with a world-readable credentials file"
grep -q 'chmod 600' "$T/err.txt" || fail "mode message: $(cat "$T/err.txt")"
chmod 600 "$T/creds.json"
echo '{"user": "x"}' >"$T/c2.json"; chmod 600 "$T/c2.json"
"$BINDIR/vlocator" run --vcenter http://127.0.0.1:1/sdk --vm x \
    --credentials "$T/c2.json" --listen tcp://127.0.0.1:$LOC_PORT \
    2>"$T/err.txt" && fail "started without a password"
grep -q '"password"' "$T/err.txt" || fail "password message: $(cat "$T/err.txt")"
"$BINDIR/vlocator" run --vcenter http://127.0.0.1:1/sdk --vm x --insecure \
    --thumbprint AA --credentials "$T/creds.json" \
    --listen tcp://127.0.0.1:$LOC_PORT 2>"$T/err.txt" &&
    fail "started with two TLS modes"
grep -q 'one of' "$T/err.txt" || fail "TLS modes message: $(cat "$T/err.txt")"
"$BINDIR/vlocator" run --vcenter http://127.0.0.1:1/sdk --vm x \
    --credentials "$T/creds.json" 2>"$T/err.txt" && fail "started without --listen"
grep -q 'listen' "$T/err.txt" || fail "listen message: $(cat "$T/err.txt")"

# --- TLS and login against the simulator ---
start_vcsim -tls -cert "$T/vcsim.pem"
write_creds "wrong"
start_locator --thumbprint "$VCSIM_SHA256"
wait_stat vsphere.state backoff
lstat vsphere.last_error | grep -q 'InvalidLogin' ||
    fail "bad password: $(lstat vsphere.last_error)"
grep -q 'wrong' "$T/loc.log" && fail "the password reached the log"
loc status | grep -q 'wrong' && fail "the password reached the status"
stop_locator
write_creds

start_locator --thumbprint \
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
wait_stat vsphere.state backoff
lstat vsphere.last_error | grep -qi "$VCSIM_SHA256" ||
    fail "mismatch should name the real thumbprint: $(lstat vsphere.last_error)"
[ "$(lstat vsphere.logins)" = 0 ] || fail "logged in past a wrong thumbprint"
stop_locator

start_locator --thumbprint "$VCSIM_SHA1"
wait_stat vsphere.state live
stop_locator
start_locator --cacert "$T/vcsim.pem"
wait_stat vsphere.state live
stop_locator
# The same from a JSON config file (-c), the way deploy/ runs it.
cat >"$T/loc.json" <<JSON
{"vcenter": "$VCSIM_URL", "credentials": "$T/creds.json",
 "thumbprint": "$VCSIM_SHA256", "vm": "DC0/vm/vch-appliance",
 "listen": "tcp://127.0.0.1:$LOC_PORT", "status": "$T/loc.sock",
 "poll": "5s", "retry-max": "1s"}
JSON
rm -f "$T/loc.sock"
"$BINDIR/vlocator" run -c "$T/loc.json" 2>>"$T/loc.log" &
LOC_PID=$!; PIDS="$PIDS $!"
wait_sock "$T/loc.sock"
wait_stat vsphere.state live
[ "$(lstat vsphere.vm_moref)" = "$VCSIM_VM" ] || fail "VM by inventory path"
stop_locator
# No TLS option at all: the simulator's certificate is not in the
# system's store, so this must fail verification.
start_locator
wait_stat vsphere.state backoff
stop_locator
vcsim_stop

# --- with relays: restarts and expiry (plain http) ---
start_vcsim -session-idle 2s
VPORT=${VCSIM_URL#http://127.0.0.1:}; VPORT=${VPORT%/sdk}
start_backend $((BASE + 10))
start_appliance B $((BASE + 10))
start_locator --poll 5s --keepalive 500ms
for h in A B C; do start_lrelay $h $((BASE + $(printf '%d' "'$h") - 64)); done
check "converged on B" wait_loc 'W["appliance_host"] == "B" and
    all(r["converged"] for r in R["relays"]) and len(R["relays"]) == 3'
e1=$(loc where | json_get epoch)

# The session expires while a 5 s poll is pending (idle 2 s): the next
# call is NotAuthenticated, and the locator logs in again and resyncs.
sleep 6
wait_stat vsphere.state live
[ "$(lstat vsphere.logins)" -ge 2 ] || fail "no re-login after expiry"
[ "$(loc where | json_get epoch)" = "$e1" ] || fail "epoch moved on resync"

# Locator down: relays keep routing to B.
kill -9 "$LOC_PID"; wait "$LOC_PID" 2>/dev/null
sleep 2
t=$("$BINDIR/vrelay" status --status "$T/relayA.sock" --json)
[ "$(echo "$t" | json_get target.appliance_host)" = B ] ||
    fail "relay A lost its target: $t"
check "sessions while the locator is down" traffic A 5 --sessions 2 \
    --bytes 64K >/dev/null
start_locator --poll 5s --keepalive 500ms
check "converged again after the locator restarted" wait_loc \
    "W['appliance_host'] == 'B' and W['epoch'] > $e1 and
     W['relay'] is not None and len(R['relays']) == 3 and
     all(r['connected'] and r['converged'] for r in R['relays'])" 15
e2=$(loc where | json_get epoch)

# Simulator restart on the same port: retry, re-login, full resync.
vcsim_stop
sleep 1
lstat vsphere.state | grep -qv live || fail "still live without a vCenter"
start_vcsim -listen "127.0.0.1:$VPORT"
wait_stat vsphere.state live 15
[ "$(loc where | json_get epoch)" = "$e2" ] ||
    fail "same host after the restart, yet the epoch moved"
vcsim_cmd relocate C
check "follows a move after the restart" wait_loc \
    "W['appliance_host'] == 'C' and all(r['converged'] for r in R['relays'])"

# A relay whose host vSphere has never heard of is listed as such.
start_lrelay D $((BASE + 4))
check "unknown host listed" wait_loc \
    '[r["known"] for r in R["relays"] if r["host"] == "D"] == [False]'
grep -q 'no host by that name' "$T/loc.log" || fail "no warning for host D"
exit 0
