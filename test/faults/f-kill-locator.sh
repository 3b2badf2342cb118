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
move_and_verify 3
grep -q "session-resumed.*leg=tcp://$CL_IP_3:" "$T/relay-h2.log" ||
    fail "the plain guest's sessions did not resume at h3"
all_answer || fail "a daemon does not answer"
exit 0
