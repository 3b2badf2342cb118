# The appliance moves to a host whose relay stays down longer than the
# hold time (2 s here, 20 s under valgrind): every session ends cleanly
# on both ends with the hold-time reason, each program sees its
# connection reset (never a clean EOF on a cut stream, never a wrong
# byte), every daemon lives on, and once the relay is back new sessions
# work.
. ./lib.sh
BIN=$BINDIR
. ../../deploy/cluster.sh
trap 'cl_stop; cleanup' EXIT
HOSTS=3 CVMS=2 SESSIONS=3 PLAIN=2 HOLD=$((2 * WAIT_SCALE))s

cl_start
cl_traffic_start 30
wait_lines "$T/cvm1.log" session-open 3 && wait_lines "$T/cvm2.log" \
    session-open 3 && [ "$(cl_established)" = 6 ] ||
    fail "sessions did not open"
cl_relay_kill 3
cl_app_migrate 3
cl_traffic_wait && fail "generators passed with the appliance unreachable"
for f in "$T"/run-*.json; do
	[ "$(json_get outcomes.mismatch <"$f")" = 0 ] ||
	    fail "a wrong byte reached a program: $(cat "$f")"
	[ "$(json_get ok <"$f")" = 0 ] || fail "a session survived: $(cat "$f")"
done
for f in "$T"/cvm1.log "$T"/cvm2.log "$T"/relay-h2.log "$T"/app.log; do
	grep -q "session-close .*hold time $((2000 * WAIT_SCALE)) ms expired" \
	    "$f" ||
	    fail "no hold-time close in $f"
done
for s in "$T"/cvm1.ctl "$T"/cvm2.ctl "$T"/app.sock "$T"/relay-h1.sock \
    "$T"/relay-h2.sock "$T"/loc.sock; do
	"$BIN/vrelay" status --status "$s" >/dev/null 2>&1 ||
	    fail "$s does not answer"
done
[ "$(cl_established)" = 0 ] || fail "sessions left behind"

# The relay returns: new sessions go through.
cl_relay_start 3
cl_converged "$HOSTS" || fail "relays did not converge"
rm -f "$T"/run-*.json*
"$BIN/vtraffic" run --connect "unix:$T/cvm1.sock" --sessions 3 --bytes 4M \
    >"$T/after.json" || fail "new sessions failed: $(cat "$T/after.json")"
exit 0
