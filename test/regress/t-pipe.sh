# Pipe-backed serial ports (docs/serial.md): the relays carry unix
# socket "pipes" as serial sessions named after their VMs, vappliance on
# host B (--proxy-v2) keeps one backend connection per VM, and
# test/tools/pipesim.py plays the VMs and the backend, checking every
# byte both ways:
#  1. two VMs in relay A's --pipe-dir (VM as server; one file named
#     NAME.sock, one NAME) and one VM connecting to A's --pipe listen:
#     (VM as client);
#  2. a VM moves from host A to host C: its socket goes from A's dir and
#     appears in C's; the backend keeps ONE connection, gets the whole
#     VM stream once and in order, and the VM gets the backend's stream
#     exactly (the backend pauses across the move, see pipesim.py);
#  3. a socket with a bad name is skipped with one warning; a socket
#     nobody listens on is retried (status: waiting, last_error) and
#     carried once the VM listens;
#  4. an invalid NAME in --pipe stops vrelay at start, naming the flag.
# PIPESIM_ARGS (e.g. --corrupt) is passed to every pipesim run;
# PIPE_MOVE_ARGS (e.g. --settle) to the moves.
. ./lib.sh

BP=$((BASE + 10))
mkdir -p "$T/pipesA" "$T/pipesC"
start_appliance B "$BP" --proxy-v2 --serial-hold 10s
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --pipe-dir "$T/pipesA" \
    --pipe "listen:$T/A-listen.sock=vm-a3"
start_relay C $((BASE + 3)) B --pipe-dir "$T/pipesC"

sim() {	# sim MODE [args]: its JSON verdict in $T/MODE.json
	local m=$1; shift
	# shellcheck disable=SC2086
	python3 ../tools/pipesim.py "$m" --backend-listen "$BP" \
	    ${PIPESIM_ARGS:-} "$@" >"$T/$m.json" 2>>"$T/pipesim.log"
}
rstatus() { "$BINDIR/vrelay" status --status "$T/relay$1.sock" --json; }
# pipe_is HOST VM PYTHON-EXPR: over that pipe's status object P.
pipe_is() {
	rstatus "$1" | python3 -c 'import json, sys
s = json.load(sys.stdin)
P = [p for p in s["pipes"] if p["name"] == sys.argv[1]]
sys.exit(0 if P and eval("(" + sys.argv[2] + ")",
    {"P": P[0], "S": s}) else 1)' "$2" "$3"
}

# 1. Directory VMs and a VM connecting to a listening pipe.
sim normal --dir-vm "$T/pipesA/vm-a1.sock=vm-a1" \
    --dir-vm "$T/pipesA/vm-a2=vm-a2" \
    --listen-vm "$T/A-listen.sock=vm-a3" ||
    fail "three VMs on A: $(cat "$T/normal.json")"
check "vm-a3 listens again" wait_for 5 pipe_is A vm-a3 \
    'P["state"] == "listening" and P["role"] == "listen" and
     P["connects"] == 1 and P["dir"] is None'
"$BINDIR/vrelay" status --status "$T/relayA.sock" | grep -q "^pipes:" ||
    fail "vrelay status shows no pipes"

# 2. VMs move from A to C at once: the VM leaves A right after its last
# bytes there, so they may still be on their way when C's session
# attaches (the appliance lets the old session's bytes go first); five
# moves of 4 MiB each way, to catch the race.
for i in 1 2 3 4 5; do
	sim move --name "vm-move$i" --path-a "$T/pipesA/vm-move$i.sock" \
	    --path-c "$T/pipesC/vm-move$i.sock" --bytes 4194304 \
	    ${PIPE_MOVE_ARGS:-} || fail "vm-move$i A -> C: $(cat "$T/move.json")"
	n=$(grep -c "serial vm=name:vm-move$i open" "$T/app.log")
	[ "$n" = 1 ] ||
	    fail "the appliance opened $n backend connections for vm-move$i"
done
log "move: $(cat "$T/move.json")"
no_pipe() { ! pipe_is "$1" "$2" True; }
check "A forgot vm-move5" wait_for 5 no_pipe A vm-move5
grep -q 'pipe vm="vm-move5" path=.*/pipesC/vm-move5.sock connected' \
    "$T/relayC.log" || fail "relay C did not carry vm-move5"

# 3. A bad name is skipped, a refused connect retried.
bad=$(printf "$T/pipesA/bad\001name.sock")
python3 ../tools/pipesim.py retry --backend-listen "$BP" ${PIPESIM_ARGS:-} \
    --bad "$bad" --late "$T/pipesA/vm-late.sock=vm-late" \
    --ready "$T/retry.ready" --go "$T/retry.go" \
    >"$T/retry.json" 2>>"$T/pipesim.log" &
SIM=$!
check "retry sim ready" wait_for 10 test -e "$T/retry.ready"
check "vm-late waiting on a refused connect" wait_for 5 pipe_is A vm-late \
    'P["state"] == "waiting" and P["session"] is None and
     "refused" in (P["last_error"] or "") and P["connects"] == 0'
check "bad name listed as skipped" wait_for 5 pipe_is A vm-late \
    'len(S["pipes_skipped"]) == 1 and
     "control" in S["pipes_skipped"][0]["why"]'
# Refusals in the first second are debug (a new socket file exists
# before it listens); then one warning, not one per retry.
refused='pipe vm="vm-late" .*waiting: connect: Connection refused'
wait_lines "$T/relayA.log" "$refused" 1 5 ||
    fail "the refused connect was never logged"
sleep 1.5
n=$(grep -c "$refused" "$T/relayA.log")
[ "$n" = 1 ] || fail "the refused connect was logged $n times, not once"
n=$(grep -c 'bad?name.sock" skipped: VM name is not UTF-8' "$T/relayA.log")
[ "$n" = 1 ] || fail "the bad name was warned about $n times, not once"
touch "$T/retry.go"
wait "$SIM" || fail "vm-late after it listened: $(cat "$T/retry.json")"
log "retry: $(cat "$T/retry.json")"

# 4. An invalid NAME stops vrelay before it does anything.
for spec in "$T/x.sock=" "$T/x.sock=$(printf 'a\tb')" \
    "$T/x.sock=$(head -c 161 /dev/zero | tr '\0' v)"; do
	if "$BINDIR/vrelay" run --host A --pipe "$spec" \
	    2>"$T/bad.err"; then
		fail "vrelay started with --pipe $spec"
	fi
	grep -q 'fatal --pipe ".*": .*NAME must be 1 to 160 bytes' \
	    "$T/bad.err" || fail "unclear refusal: $(cat "$T/bad.err")"
done
log "refusal: $(cat "$T/bad.err" | cut -c1-140)"

# 5. A relay stopped while it carries a pipe session exits cleanly: its
# pipes were freed before its sessions, whose close looked them up
# (a use-after-free that ASan and memcheck builds report).
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); time.sleep(30)' "$T/pipesC/vm-stop.sock" &
HOLD=$!
PIDS="$PIDS $HOLD"
check "vm-stop carried by C" wait_for 10 pipe_is C vm-stop \
    'P["state"] == "connected" and P["session"] is not None'
kill -TERM "$RELAY_C_PID"
wait "$RELAY_C_PID"; rc=$?
[ "$rc" = 0 ] || fail "relay C stopped with a pipe session: exit $rc"
! grep -q "AddressSanitizer\|runtime error" "$T/relayC.log" ||
    fail "relay C at exit: $(grep -m1 -A3 Sanitizer "$T/relayC.log")"
kill "$HOLD" 2>/dev/null

# Every daemon lives on.
for s in app.sock relayA.sock relayB.sock; do
	"$BINDIR/vrelay" status --status "$T/$s" --json >/dev/null ||
	    fail "$s does not answer"
done
exit 0
