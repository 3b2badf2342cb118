# kill -9 of an ingress relay (h2) mid-transfer, restarted 0.5 s later.
# Per architecture.md: the agentless guest's sessions end with it (its
# program sees the connection end, never a wrong byte) and the
# appliance closes them at its hold time with the hold-time reason;
# cvm1's agent, whose legs went through h2's relay, resumes through the
# restarted one and loses nothing; cvm2 (on h3) does not notice.
HOLD=3s
. ./faults.sh

cl_start
cl_traffic_start 8
all_established || fail "sessions did not open"
sleep 1.5
t_kill=$(cl_now)
cl_relay_kill 2
sleep 0.5
cl_relay_start 2
t_back=$(cl_now)
# The appliance ends the plain guest's two sessions at its hold time.
expired() {
	[ "$(grep -c 'session-close .*guest=h2/9:.*hold time 3000 ms expired' \
	    "$T/app.log")" = 2 ]
}
until_ok 6 expired || fail "the appliance did not close the plain \
guest's sessions on hold time: $(grep 'guest=h2/9' "$T/app.log" | tail -2)"
t_exp=$(cl_now)
cl_traffic_wait &&
    fail "every generator passed with the plain guest's relay killed"
ft verdict "$T" --ok cvm1,cvm2 --fail plain >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
grep -q 'session-resumed' "$T/cvm1.log" || fail "cvm1 did not resume"
grep -q 'session-detached' "$T/cvm2.log" && fail "cvm2 was disturbed: \
$(grep 'session-detached' "$T/cvm2.log" | head -1)"
before=$(rate_of cvm2 $((t_kill - 2000)) "$t_kill" min)
during=$(rate_of cvm2 "$t_kill" $((t_kill + 2000)) min)
log "cvm2 per-session KiB/s: $before before, $during during the fault"
[ "$during" -ge $((before / 2)) ] || fail "cvm2 slowed down"
all_answer || fail "a daemon does not answer"
log "plain sessions closed at the appliance $((t_exp - t_kill)) ms after \
the kill; relay back after $((t_back - t_kill)) ms"
exit 0
