# kill -9 of the relay on the appliance's host (h1), twice, while every
# session is mid-transfer: it only forwards, so the session ends
# (both guest agents, the plain guest's relay on h2, the appliance)
# detach, resume through the restarted relay, and lose nothing.
. ./faults.sh

cl_start
cl_traffic_start 7
all_established || fail "sessions did not open"
sleep 1
cl_relay_kill 1
sleep 0.3
cl_relay_start 1
cl_converged "$HOSTS" || fail "relays did not converge after the restart"
all_established 50 || fail "sessions not back 5 s after the first restart"
sleep 1
cl_relay_kill 1
sleep 0.3
cl_relay_start 1
all_established 50 || fail "sessions not back 5 s after the second restart"
cl_traffic_wait || log "a generator failed (verdict below)"
ft verdict "$T" --ok cvm1,cvm2,plain >"$T/verdict.jsonl" ||
    fail "a session lost bytes or failed: $(cat "$T/verdict.jsonl")"
n=$(grep -c 'session-resumed' "$T/app.log")
[ "$n" -ge 16 ] || fail "$n resumes at the appliance, expected >= 16 (2 x 8)"
for f in cvm1 cvm2 relay-h2; do
	grep -q 'session-resumed' "$T/$f.log" || fail "no resume in $f.log"
done
grep -q 'session-close' "$T/app.log" &&
    ! grep 'session-close' "$T/app.log" | grep -qv "reason=\"done\"" ||
    fail "a session ended other than done: $(grep 'session-close' \
        "$T/app.log" | grep -v "reason=\"done\"" | head -1)"
all_answer || fail "a daemon does not answer"
log "$n resumes at the appliance, max resume $(grep -o 'resume_ms=[0-9]*' \
    "$T/app.log" | cut -d= -f2 | sort -n | tail -1) ms"
exit 0
