# kill -9 of the relay on the appliance's host, twice, while 40
# sessions are mid-transfer (a slow backend keeps them busy): every
# session resumes through the restarted relay and completes byte-exact,
# the ingress relay sits idle while it is down, and its sessions come
# back together when it is up, not each at its own backoff.  A guest
# agent's 4 sessions come back with them: the legs relay A parked for
# them go as soon as a session shows the way open (a plaintext mesh has
# no link or probe to say that B is back), not at the park deadline
# and the agent's backoff.
. ./lib.sh

start_backend $((BASE + 10)) --slow 256K
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --agent-listen vsock://any:2002

traffic A 5 --sessions 40 --bytes 1M:2M --seed 3 --timeout 120 \
    >"$T/result.json" &
TP=$!
agent_traffic A --sessions 4 --bytes 1M:2M --seed 5 --timeout 120
wait_lines "$T/relayA.log" session-open 40 || fail "sessions did not open"
wait_lines "$T/agent.log" session-open 4 || fail "agent sessions did not open"
sleep 0.5
kill -9 "$RELAY_B_PID"
# While B is down A's sessions wait at their backoff: no spinning on
# their guests' readable streams (a spliced read held until its bytes
# went used to keep the stream armed), 1 s of CPU would be 100 ticks.
c0=$(cpu_ticks "$RELAY_A_PID")
sleep 1
c1=$(cpu_ticks "$RELAY_A_PID")
# Timings are not checked under valgrind (make valgrind), which runs
# the daemons 20-50 times slower: its memcheck is what counts there.
[ -n "${VALGRIND:-}" ] || [ $((c1 - c0)) -le 25 ] ||
    fail "relay A used $((c1 - c0)) ticks of CPU in 1 s with B down"
# Half a park deadline more: the agent's legs parked at A when B comes
# back were parked after its first ones were refused (FWD_PARK_MS).
sleep 0.5
t_up=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
start_relay B $((BASE + 2)) B
# The first session back wakes the others (backing off by up to a
# second after 1 s down, ~0.8 s apart from one another without it).
wait_lines "$T/relayA.log" session-resumed 40 ||
    fail "not every session resumed after the restart"
spread=$(python3 - "$T/relayA.log" <<'PY'
import datetime, sys
ts = [datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
      for l in open(sys.argv[1]) if "session-resumed" in l][:40]
print(int((max(ts) - min(ts)).total_seconds() * 1000))
PY
)
log "40 sessions resumed within $spread ms of one another"
[ -n "${VALGRIND:-}" ] || [ "$spread" -le 250 ] ||
    fail "resumes spread over $spread ms"
wait_lines "$T/agent.log" session-resumed 4 ||
    fail "the agent's sessions did not resume"
set -- $(resumed_since "$T/agent.log" "$t_up")
log "the agent's sessions: $1 resumes, the last $2 ms after B's restart"
[ "$1" -ge 4 ] && { [ -n "${VALGRIND:-}" ] || [ "$2" -le 450 ]; } ||
    fail "agent sessions back late: $1 resumes, the last $2 ms after B"
kill -9 "$RELAY_B_PID"
sleep 0.2
start_relay B $((BASE + 2)) B
wait $TP || fail "transfer failed: $(cat "$T/result.json")"
wait $AGENT_TP || fail "agent transfer failed: $(cat "$T/agent.json")"
[ "$(json_get bytes_lost <"$T/agent.json")" = 0 ] || fail "agent bytes lost"
[ "$(json_get bytes_lost <"$T/result.json")" = 0 ] || fail "bytes lost"
[ "$(json_get duplicates <"$T/result.json")" = 0 ] || fail "duplicates"
r=$(grep -c 'session-resumed' "$T/relayA.log")
[ "$r" -ge 40 ] || fail "only $r resumes logged on A (expected >= 40)"
grep -q 'session-detached' "$T/app.log" || fail "appliance never detached"
exit 0
