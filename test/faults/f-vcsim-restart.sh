# vCenter restarts: kill -9 of the simulator mid-transfer, and the same
# inventory back on the same port 1 s later (plain http here, so the
# locator pins no certificate a restart would change).  Per
# locator.md: the locator notices, backs off and logs in again with a
# full resync; until then the last target stands, so relays keep
# routing, the sessions never notice and new ones open; the resync
# reads the same host and publishes nothing (the epoch stays); and a
# vMotion after the restart is followed: every session resumes on the
# new host, nothing lost.
VCSIM_TLS=0
. ./faults.sh

lstat() {
	"$BIN/vlocator" status --status "$T/loc.sock" --json | json_get "$1"
}
epoch_h2() {
	"$BIN/vrelay" status --status "$T/relay-h2.sock" --json |
	    json_get target.epoch
}

cl_start
cl_traffic_start 20
all_established || fail "sessions did not open"
sleep 1
logins=$(lstat vsphere.logins)
e=$(epoch_h2)
t_kill=$(cl_now)
# New sessions while vCenter is away (its restart takes 1 s and more).
"$BIN/vtraffic" run --connect "unix:$T/cvm2.sock" --sessions 2 \
    --bytes 1M --timeout 20 >"$T/new.json" &
N=$!
cl_vcsim_restart 1 || fail "the simulator did not start again"
t_up=$(cl_now)
wait $N || fail "new sessions failed with vCenter away: $(cat "$T/new.json")"
live() { [ "$(lstat vsphere.state)" = live ] &&
    [ "$(lstat vsphere.logins)" -gt "$logins" ]; }
until_ok 15 live || fail "the locator did not log in again: \
$(lstat vsphere.last_error)"
t_live=$(cl_now)
grep -q 'WaitForUpdatesEx: cannot reach the server' "$T/locator.log" ||
    fail "the locator did not notice vCenter going away"
log "vCenter down for $((t_up - t_kill)) ms; the locator live again" \
    "$((t_live - t_up)) ms after it was back ($(lstat vsphere.logins)" \
    "logins)"
[ "$(epoch_h2)" = "$e" ] || fail "the epoch moved on a resync to the same host"
grep -q 'session-detached' "$T"/*.log &&
    fail "a session detached while only vCenter was away: \
$(grep -h 'session-detached' "$T"/*.log | head -1)"
move_and_verify 2 "after the restart"
all_answer || fail "a daemon does not answer"
exit 0
