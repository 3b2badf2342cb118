# The guestinfo channel against the vCenter simulator: a guest agent
# publishes through a fake vmware-rpctool that turns each info-set into
# a real `vlocator guestinfo set`; `vlocator guestinfo watch` sees each
# change once; the container's exit status; long and non-ASCII values
# byte-exact, one over the cap refused; a VM that disappears (watch
# says gone, set fails NotFound); a killed session ends a watch; a
# vmware-rpctool that hangs never stalls vguest; guest-controlled values
# are escaped in get's text output.
. ./lib.sh

VL="$BINDIR/vlocator"
start_vcsim -cvms cvm1@A,cvm2@C
write_creds
# A real vlocator.json: the run keys are accepted and ignored.
cat >"$T/vlocator.json" <<JSON
{"vcenter": "$VCSIM_URL", "credentials": "$T/creds.json",
 "vm": "vch-appliance", "listen": "tcp://127.0.0.1:$LOC_PORT"}
JSON
gi() { "$VL" guestinfo "$@" -c "$T/vlocator.json" --property config; }
# Wait (up to 10 s) for a watch line matching python expression $1
# over L (the parsed line).
wait_watch() {
	local i
	for i in $(seq 1 $((200 * WAIT_SCALE))); do
		python3 - "$T/watch.jsonl" "$1" <<'PY' && return 0
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    L = json.loads(line)
    if eval(sys.argv[2]):
        sys.exit(0)
sys.exit(1)
PY
		sleep 0.05
	done
	fail "no watch line where $1: $(tail -3 "$T/watch.jsonl")"
}

# --- the watch, then a guest agent publishing through the fake tool ---
(gi watch cvm1 cvm2 --poll 2s >"$T/watch.jsonl" 2>"$T/watch.err"
    echo $? >"$T/watch.rc") &
PIDS="$PIDS $!"
wait_watch 'L["vm"] == "cvm1" and L["event"] == "ready"'
wait_watch 'L["vm"] == "cvm2" and L["event"] == "ready"'

export FAKE_RPCTOOL_VLOCATOR="$VL" FAKE_RPCTOOL_VM=cvm1 \
    FAKE_RPCTOOL_CONF="$T/vlocator.json" FAKE_RPCTOOL_LOG="$T/rpctool.log"
"$BINDIR/vguest" run --name cvm1 --listen "unix:$T/g.in" \
    --relay tcp://127.0.0.1:1 --status "$T/guest.sock" \
    --rpctool "$PWD/../tools/fake-rpctool.sh" \
    --guestinfo-interval 500ms 2>>"$T/guest.log" &
PIDS="$PIDS $!"
wait_sock "$T/guest.sock"
gstat() { "$BINDIR/vguest" status --status "$T/guest.sock" --json |
    json_get "$1"; }
[ "$(gstat guestinfo)" = ok ] || fail "guestinfo state: $(gstat guestinfo)"
if [ -n "$(ip route show default 2>/dev/null)" ]; then
	wait_watch 'L.get("key") == "guestinfo.vrelay.ip" and L["value"]'
	ip=$(gi get cvm1 guestinfo.vrelay.ip) || fail "ip not readable"
	ip addr | grep -q "inet6\{0,1\} $ip/" || fail "published ip $ip is not ours"
else
	log "no default route here: the address is not published"
fi

# --- a vmware-rpctool that hangs (ignores SIGTERM): started here, its
# RPCTOOL_TIMEOUT_MS (10 s) runs while the rest goes on, checked below ---
FAKE_RPCTOOL_HANG=60 FAKE_RPCTOOL_LOG="$T/rpctool-hang.log" \
    "$BINDIR/vguest" run --name cvm-hang --listen "unix:$T/gh.in" \
    --relay tcp://127.0.0.1:1 --status "$T/guesth.sock" \
    --rpctool "$PWD/../tools/fake-rpctool.sh" 2>>"$T/guesth.log" &
PIDS="$PIDS $!"
wait_sock "$T/guesth.sock"
wait_lines "$T/rpctool-hang.log" 'info-set' 1 || fail "no hanging run"

# --- exit status after the container stops ---
gi get cvm1 guestinfo.vrelay.exit >/dev/null 2>&1
[ $? = 3 ] || fail "exit status set before the container stopped"
"$BINDIR/vguest" container-exit --status "$T/guest.sock" \
    --arg code:=137 --arg signal=KILL >/dev/null || fail "container-exit"
wait_watch 'L.get("key") == "guestinfo.vrelay.exit" and L["value"] and '\
'json.loads(L["value"])["code"] == 137 and not L["initial"]'
gi get cvm1 guestinfo.vrelay.exit | python3 -c 'import json, sys
e = json.load(sys.stdin); assert e["code"] == 137 and e["signal"] == "KILL"
assert e["at"].endswith("Z")' || fail "exit status read back"
"$BINDIR/vguest" container-exit --status "$T/guest.sock" \
    --arg code:=300 >/dev/null 2>&1 && fail "code 300 accepted"

# --- a component error, published then cleared ---
"$BINDIR/vguest" report-error --status "$T/guest.sock" \
    --arg component=runtime --arg error="image pull failed" >/dev/null ||
    fail "report-error"
wait_watch 'L.get("key") == "guestinfo.vrelay.error.runtime" and '\
'L["value"] and json.loads(L["value"])["error"] == "image pull failed"'
"$BINDIR/vguest" report-error --status "$T/guest.sock" \
    --arg component=runtime --arg error= >/dev/null
wait_watch 'L.get("key") == "guestinfo.vrelay.error.runtime" and '\
'L["value"] is None and L["old"]'
# Each change once: the error was set once and cleared once.
n=$(grep -c '"guestinfo.vrelay.error.runtime"' "$T/watch.jsonl")
[ "$n" = 2 ] || fail "error.runtime reported $n times, not 2"

# --- very long and non-ASCII values: byte-exact; over the cap refused ---
python3 - "$T" <<'PY'
import sys
unit = "é漢字🙂 \"<&>' tab\tnl\n"
v = (unit * 64000)[:64000]
while len(v.encode()) > 64000:
    v = v[:-1]
open(sys.argv[1] + "/long.txt", "wb").write(v.encode())
open(sys.argv[1] + "/over.txt", "wb").write(("x" * 64001).encode())
PY
gi set cvm2 "guestinfo.long=$(cat "$T/long.txt")" || fail "set long value"
# Byte for byte in --json; text mode escapes the tabs and newlines.
gi get cvm2 guestinfo.long --json | python3 -c 'import json, sys
sys.stdout.buffer.write(json.load(sys.stdin)["keys"]["guestinfo.long"]
    .encode())' >"$T/long.got" || fail "get long value"
cmp -s "$T/long.txt" "$T/long.got" || fail "long value changed on the way"
gi get cvm2 guestinfo.long >"$T/long.text" || fail "get long value (text)"
python3 - "$T/long.txt" "$T/long.text" <<'PY' || fail "long value as text"
import sys
v = open(sys.argv[1], encoding="utf-8").read()
t = open(sys.argv[2], encoding="utf-8").read()
want = v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
assert t == want + "\n", (len(t), len(want))
PY
wait_watch 'L.get("key") == "guestinfo.long" and L["vm"] == "cvm2" and '\
'len(L["value"].encode()) > 63000'
gi set cvm2 "guestinfo.long=$(cat "$T/over.txt")" 2>"$T/err.txt"
[ $? = 2 ] || fail "a value over the cap was not refused with exit 2"
grep -q 'over the 64000-byte cap' "$T/err.txt" ||
    fail "cap message: $(cat "$T/err.txt")"
gi set cvm2 "guestinfo.bad key=x" 2>"$T/err.txt" && fail "bad key accepted"
grep -q 'not one of' "$T/err.txt" || fail "key message: $(cat "$T/err.txt")"
gi set cvm2 "other.key=x" 2>/dev/null && fail "key outside guestinfo accepted"

# --- a value with terminal controls: escaped in text mode only ---
# A raw ESC cannot cross vSphere's XML 1.0 (and `set` refuses it), but
# the 8-bit CSI (U+009B, as UTF-8), newlines and backslashes can.
ESCV=$(printf 'a\302\2332Jb\nFAKE=1\tc\\')
gi set cvm2 "guestinfo.esc=$ESCV" || fail "set esc"
[ "$(gi get cvm2 guestinfo.esc)" = 'a\xc2\x9b2Jb\nFAKE=1\tc\\' ] ||
    fail "esc value as text: $(gi get cvm2 guestinfo.esc | od -c | head -3)"
gi get cvm2 | grep -qx 'guestinfo.esc=a\\xc2\\x9b2Jb\\nFAKE=1\\tc\\\\' ||
    fail "esc value in the KEY=VALUE list: $(gi get cvm2 | od -c | head)"
gi get cvm2 | grep -q '^FAKE=1' && fail "a value's newline made a line"
gi get cvm2 guestinfo.esc --json | python3 -c 'import json, sys
v = json.load(sys.stdin)["keys"]["guestinfo.esc"]
assert v == "a\x9b2Jb\nFAKE=1\tc\\", repr(v)' || fail "esc value in --json"

# --- duplicate keys (the simulator appends): the last one wins ---
gi set cvm2 guestinfo.dup=1 && gi set cvm2 guestinfo.dup=2 &&
    gi set cvm2 guestinfo.dup=3 || fail "set dup"
[ "$(gi get cvm2 guestinfo.dup)" = 3 ] || fail "duplicate keys: not the last"
gi get cvm2 --json | python3 -c 'import json, sys
k = json.load(sys.stdin)["keys"]; assert k["guestinfo.dup"] == "3"' ||
    fail "get --json"

# --- the hanging rpctool: killed at its timeout, vguest answering all
# along (2 s at most per status), and the next key started at once ---
for i in $(seq 1 $((150 * WAIT_SCALE))); do
	st=$(timeout 2 "$BINDIR/vguest" status --status "$T/guesth.sock" \
	    --json) || fail "vguest stopped answering while its rpctool hung"
	echo "$st" | json_get guestinfo | grep -q 'no answer in 10000 ms' &&
	    break
	sleep 0.1
done
echo "$st" | python3 -c 'import json, sys
s = json.load(sys.stdin)
assert "no answer in 10000 ms (killed)" in s["guestinfo"], s
assert s["guestinfo_detail"]["runs"] >= 2, s' ||
    fail "hanging rpctool: $st"

# --- the VM disappears ---
vcsim_cmd destroy-vm cvm1
echo "$VCSIM_ANSWER" | grep -q destroyed || fail "destroy-vm: $VCSIM_ANSWER"
wait_watch 'L["vm"] == "cvm1" and L["event"] == "gone"'
"$VL" guestinfo set cvm1 guestinfo.late=x -c "$T/vlocator.json" \
    2>"$T/err.txt"
[ $? = 1 ] || fail "set on a gone VM did not fail"
grep -q 'not found' "$T/err.txt" || fail "gone VM: $(cat "$T/err.txt")"
# The agent's writes now fail: it says so in its status.
"$BINDIR/vguest" report-error --status "$T/guest.sock" \
    --arg component=late --arg error=x >/dev/null
for i in $(seq 1 100); do
	gstat guestinfo | grep -q '^failing:' && break
	sleep 0.1
done
gstat guestinfo | grep -q 'failing:.*not found' ||
    fail "agent status after the VM went: $(gstat guestinfo)"
vcsim_cmd destroy-vm cvm2
for i in $(seq 1 200); do [ -s "$T/watch.rc" ] && break; sleep 0.05; done
[ "$(cat "$T/watch.rc" 2>/dev/null)" = 3 ] ||
    fail "watch exit $(cat "$T/watch.rc" 2>/dev/null), not 3 (all gone)"

# --- without vmware-rpctool the agent says so ---
PATH=/nonexistent "$BINDIR/vguest" run --name cvm3 \
    --listen "unix:$T/g3.in" --relay tcp://127.0.0.1:1 \
    --status "$T/guest3.sock" 2>>"$T/guest3.log" &
PIDS="$PIDS $!"
wait_sock "$T/guest3.sock"
[ "$("$BINDIR/vguest" status --status "$T/guest3.sock" --json |
    json_get guestinfo)" = "unavailable: vmware-rpctool not found" ] ||
    fail "no rpctool: status does not say so"
[ "$(grep -c 'guestinfo: unavailable' "$T/guest3.log")" = 1 ] ||
    fail "no rpctool: not said once in the log"

# --- a killed session ends a watch with an error ---
(gi watch vch-appliance --poll 1s >"$T/watch2.jsonl" 2>&1
    echo $? >"$T/watch2.rc") &
PIDS="$PIDS $!"
wait_lines "$T/watch2.jsonl" '"ready"' 1 || fail "second watch not ready"
vcsim_cmd kick
for i in $(seq 1 200); do [ -s "$T/watch2.rc" ] && break; sleep 0.05; done
[ "$(cat "$T/watch2.rc" 2>/dev/null)" = 1 ] ||
    fail "watch after kick: exit $(cat "$T/watch2.rc" 2>/dev/null)"
grep -q '"event":"error"' "$T/watch2.jsonl" || fail "no error line"
exit 0
