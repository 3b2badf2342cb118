# The status socket and CLI: status, sessions, watch events, set-target
# with epochs (stale ones refused), close-session, and configuration
# errors that name the key.
. ./lib.sh

start_backend $((BASE + 10))
start_appliance B $((BASE + 10))
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B
S="--status $T/relayA.sock"

"$BINDIR/vrelay" watch $S --json >"$T/watch.jsonl" &
WP=$!
PIDS="$PIDS $WP"
sleep 0.2
check "traffic" traffic A 5 --sessions 3 --bytes 10K
# The process's own cost: CPU spent moving those bytes, memory resident.
for d in relayA relayB app; do
	p=$("$BINDIR/vrelay" status --status "$T/$d.sock" --json)
	[ "$(echo "$p" | json_get process.rss_kib)" -gt 1000 ] &&
	    [ $(($(echo "$p" | json_get process.cpu_user_ms) +
	    $(echo "$p" | json_get process.cpu_sys_ms))) -gt 0 ] ||
	    fail "$d: process $(echo "$p" | json_get process)"
done
out=$("$BINDIR/vrelay" set-target $S --arg epoch:=7 --arg appliance_host=C)
echo "$out" | grep -q 'epoch' || fail "set-target: $out"
"$BINDIR/vrelay" set-target $S --arg epoch:=5 --arg appliance_host=B \
    >"$T/stale.out" 2>&1 && fail "stale epoch accepted"
grep -q 'stale epoch 5 (current 7)' "$T/stale.out" || fail "stale message"
"$BINDIR/vrelay" set-target $S --arg appliance-host=B >"$T/typo.out" 2>&1 &&
    fail "misspelt key accepted"
grep -q 'unknown key "appliance-host"' "$T/typo.out" || fail "typo message"
"$BINDIR/vrelay" set-target $S --arg appliance_host=B >/dev/null ||
    fail "set-target back to B"
[ "$("$BINDIR/vrelay" status $S --json | json_get target.epoch)" = 8 ] ||
    fail "epoch not 8"
# Host names: set-target looks them up itself and sends the addresses;
# the running relay takes numeric ones only (its loop never waits on DNS).
"$BINDIR/vrelay" set-target $S --arg "peers:={\"A\": \"tcp://127.0.0.1:$((BASE + 1))\",
    \"B\": \"tcp://127.0.0.1:$((BASE + 2))\",
    \"C\": \"tcp://localhost:$((BASE + 3))\"}" >/dev/null ||
    fail "set-target with a host name"
c=$("$BINDIR/vrelay" status $S --json | json_get target.peers.C)
case $c in
tcp://127.0.0.1:$((BASE + 3))|"tcp://[::1]:$((BASE + 3))") ;;
*) fail "peer C not resolved by set-target: $c" ;;
esac
out=$(printf '{"cmd": "set-target", "peers": {"C": "tcp://localhost:1"}}\n' |
    socat -t 5 - "UNIX-CONNECT:$T/relayA.sock")
echo "$out" | grep -q 'expected a numeric address' ||
    fail "a host name reached the relay's loop: $out"
[ "$("$BINDIR/vrelay" status $S --json | json_get target.epoch)" = 9 ] ||
    fail "a refused set-target moved the epoch"
sleep 0.2
kill "$WP"
for ev in session-open session-close target-change; do
	grep -q "\"event\": *\"$ev\"" "$T/watch.jsonl" ||
	    fail "watch missed $ev"
done
"$BINDIR/vrelay" status $S | grep -q '^host: *A' || fail "readable status"
"$BINDIR/vrelay" help $S --json | grep -q 'set-target' || fail "help"
"$BINDIR/vrelay" nosuch $S >/dev/null 2>&1 && fail "unknown command ok"
"$BINDIR/vrelay" status --status "$T/nope.sock" 2>"$T/err" && fail "no sock"
grep -q 'nope.sock' "$T/err" || fail "unreachable socket message"

# Configuration errors refuse to start and name the key.
"$BINDIR/vrelay" run --host X --guest-listen vsock://any:1 \
    --hold-time abc 2>"$T/e1" && fail "bad duration accepted"
grep -q 'hold-time' "$T/e1" || fail "message does not name hold-time"
echo '{"host": "X", "mesh-listen": 5}' >"$T/bad.json"
"$BINDIR/vrelay" run -c "$T/bad.json" 2>"$T/e2" && fail "bad config ok"
grep -q 'mesh-listen' "$T/e2" || fail "message does not name mesh-listen"
"$BINDIR/vrelay" run --host X --mesh-listen tcp://1.2.3:x 2>"$T/e3" &&
    fail "bad address accepted"
grep -q 'tcp://1.2.3:x' "$T/e3" || fail "bad address not named"
exit 0
