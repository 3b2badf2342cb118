# kill -9 of vlocator mid-transfer.  Relays never wait for it
# (operations.md): they keep their last target, every session keeps
# streaming without a detach, and new sessions open while it is away.
# Restarted, it publishes above the relays' epochs, every relay
# converges, and an appliance vMotion after that is followed: every
# session resumes on the new host and nothing is lost.
. ./faults.sh

relay_field() {
	"$BIN/vrelay" status --status "$T/relay-h$1.sock" --json | json_get "$2"
}

cl_start
cl_traffic_start 18
all_established || fail "sessions did not open"
sleep 1
e=$(relay_field 2 target.epoch)
cl_locator_kill
down() { [ "$(relay_field 2 uplink.state)" != up ]; }
until_ok 3 down || fail "relay h2 did not notice the locator is gone"
for i in 1 2 3; do
	[ "$(relay_field "$i" target.appliance_host)" = h1 ] ||
	    fail "relay h$i lost its target"
done
[ "$(relay_field 2 target.epoch)" = "$e" ] || fail "the epoch moved"
"$BIN/vtraffic" run --connect "unix:$T/cvm2.sock" --sessions 2 --bytes 2M \
    >"$T/new-cvm2.json" || fail "new agent sessions failed while the \
locator was down: $(cat "$T/new-cvm2.json")"
"$BIN/vtraffic" run --connect vsock://2:2000 --vsock-dir "$T/h3" \
    --vsock-cid 21 --sessions 2 --bytes 2M >"$T/new-plain.json" ||
    fail "new agentless sessions failed: $(cat "$T/new-plain.json")"
sleep 1
if grep -q 'session-detached' "$T"/*.log; then
	fail "a session detached with only the locator gone: \
$(grep -h 'session-detached' "$T"/*.log | head -1)"
fi
cl_locator_start
cl_converged "$HOSTS" || fail "relays did not converge after the restart"
[ "$(relay_field 2 target.epoch)" -gt "$e" ] ||
    fail "the restarted locator did not publish above epoch $e"
cl_app_migrate 3
check "the locator followed the vMotion" until_ok 5 \
    eval '[ "$(cl_where)" = h3 ]'
all_established 50 || fail "sessions not back after the vMotion"
set -- $(last_move_resumes)
log "the vMotion: $1 sessions resumed on h3, the slowest in $2 ms"
[ "$1" -ge 8 ] || fail "only $1 sessions resumed at the appliance"
# The push comes ~0.2 s after the switchover; each resume a few ms later.
[ "$2" -le 2000 ] || fail "a resume took $2 ms"
cl_traffic_wait || log "a generator failed (verdict below)"
ft verdict "$T" --ok cvm1,cvm2,plain >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
grep -q "session-resumed.*leg=tcp://$CL_IP_3:" "$T/relay-h2.log" ||
    fail "the plain guest's sessions did not resume at h3"
all_answer || fail "a daemon does not answer"
exit 0
