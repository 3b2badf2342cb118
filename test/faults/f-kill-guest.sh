# kill -9 of a guest agent (cvm1, on h2) mid-transfer.  The agent is
# its sessions' client end, so they end with it: its program sees the
# connection end (never a wrong byte), h2's relay closes the agent's
# forwards, and the appliance closes the three sessions at its hold
# time with the hold-time reason (the last cause in parentheses).
# cvm2 and the plain guest, on the same relays, do not notice.  The
# agent restarted, new sessions work through it.
HOLD=3s
. ./faults.sh

agent_fwd() {
	"$BIN/vrelay" status --status "$T/relay-h2.sock" --json |
	    json_get forwards.agent_active
}

cl_start
cl_traffic_start 8
all_established || fail "sessions did not open"
[ "$(agent_fwd)" = 3 ] || fail "h2's relay forwards $(agent_fwd) agent legs"
sleep 1.5
t_kill=$(cl_now)
cl_cvm_kill 1
until_ok 3 eval '[ "$(agent_fwd)" = 0 ]' ||
    fail "h2's relay still forwards $(agent_fwd) legs of the dead agent"
expired() {
	[ "$(grep -c 'session-close .*guest=cvm1/.*hold time 3000 ms expired' \
	    "$T/app.log")" = 3 ]
}
until_ok 6 expired || fail "the appliance did not close cvm1's sessions \
on hold time: $(grep 'guest=cvm1' "$T/app.log" | tail -2)"
t_exp=$(cl_now)
cl_traffic_wait && fail "every generator passed with cvm1's agent killed"
ft verdict "$T" --ok cvm2,plain --fail cvm1 >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
grep -q 'session-detached' "$T/cvm2.log" "$T/relay-h2.log" &&
    fail "another session was disturbed: $(grep -h 'session-detached' \
        "$T/cvm2.log" "$T/relay-h2.log" | head -1)"
for l in cvm2 plain; do
	before=$(rate_of "$l" $((t_kill - 1500)) "$t_kill" min)
	during=$(rate_of "$l" "$t_kill" $((t_kill + 3000)) min)
	log "$l per-session KiB/s: $before before, $during after the kill"
	[ "$during" -ge $((before / 2)) ] || fail "$l slowed down"
done
cl_cvm_start 1
"$BIN/vtraffic" run --connect "unix:$T/cvm1.sock" --sessions 2 --bytes 1M \
    >"$T/after.json" || fail "new sessions through the restarted agent: \
$(cat "$T/after.json")"
all_answer || fail "a daemon does not answer"
log "cvm1's sessions closed at the appliance $((t_exp - t_kill)) ms after \
the kill: $(grep -m1 -o 'reason="hold time[^"]*"' "$T/app.log")"
exit 0
