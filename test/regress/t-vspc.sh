# Network serial ports through the vSPC (docs/serial.md): ESX's telnet
# connections enter the mesh at the relays' --vspc-listen, vappliance on
# host B is the vSPC, and one backend connection per VM carries its
# serial stream.  test/tools/esxsim.py plays ESX (VMware's telnet
# extension, written from the published protocol, not from our code)
# and the backend, and checks every byte both ways:
#  - normal traffic for two VMs at once;
#  - a vMotion from host A to host C mid-stream (GOAHEAD within ESX's
#    5 s, the held bytes go to the destination, one backend connection);
#  - an aborted vMotion, a wrong cookie and a PEER after the deadline:
#    refused, and the source connection keeps every byte;
#  - malformed telnet beside a normal VM: each bad connection is closed
#    or answered, the vSPC lives on, the normal VM loses nothing;
#  - a VM that reconnects and then moves within the 2 s its first
#    connection retires: that one is closed at COMPLETE, nothing lost;
#    one whose two connections both end: held for --serial-hold, then
#    its backend connection closed; one replaced while its backend reads
#    nothing for longer than those 2 s: the first one's bytes still
#    arrive, first.
. ./lib.sh

BP=$((BASE + 10))
start_appliance B "$BP" --proxy-v2 --vspc-motion-timeout 1s --serial-hold 2s
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --vspc-listen "tcp://127.0.0.1:$((BASE + 11))"
start_relay C $((BASE + 3)) B --vspc-listen "tcp://127.0.0.1:$((BASE + 13))"

esx() {	# esx SCENARIO [args]: run it, its JSON verdict in $T/SCENARIO.json
	local sc=$1; shift
	python3 ../tools/esxsim.py "$sc" \
	    --vspc "tcp://127.0.0.1:$((BASE + 11))" \
	    --vspc2 "tcp://127.0.0.1:$((BASE + 13))" \
	    --backend-listen "$BP" --timeout 60 "$@" \
	    >"$T/$sc.json" 2>>"$T/esxsim.log"
}
app() { "$BINDIR/vappliance" status --status "$T/app.sock" --json |
    json_get "serial.$1"; }

check "two VMs, both ways" esx normal --vms 2 --bytes 1M
check "vMotion A -> C" esx vmotion --bytes 1M
log "vmotion: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print("goahead_ms", d.get("goahead_ms"), "secret_len", d.get("secret_len"))' \
    "$T/vmotion.json")"
[ "$(app completed)" -ge 1 ] || fail "the vSPC counted no completed vMotion"
grep -q "vMotion complete: now session=" "$T/app.log" ||
    fail "no vMotion switch in the appliance log"
check "a VM replaced, then moved at once" esx replaced-vmotion --bytes 256K
check "a VM replaced, then both ended: held, then closed" \
    esx replaced-ends --bytes 128K --hold 2
check "a VM replaced while its backend reads nothing: nothing lost" \
    esx replaced-slow --bytes 16M --rate 64M
check "aborted vMotion" esx abort --bytes 512K
[ "$(app aborted)" -ge 1 ] || fail "the vSPC counted no aborted vMotion"
check "wrong cookie refused" esx wrong-cookie --bytes 512K
[ "$(app bad_cookies)" -ge 1 ] || fail "no refused cookie counted"
grep -q "VMOTION-PEER refused" "$T/app.log" || fail "no refusal logged"
check "PEER after the deadline refused" esx late-peer --bytes 512K --late 1.5
grep -q "vMotion not completed in 1000 ms" "$T/app.log" ||
    fail "the vMotion deadline did not pass"
check "malformed telnet beside a normal VM" esx malformed --bytes 512K
grep -q "malformed telnet: subnegotiation too long" "$T/app.log" ||
    fail "the unterminated SB was not refused with its reason"
grep -q "malformed telnet: IAC followed by neither SE nor IAC" \
    "$T/app.log" || fail "the bad IAC in an SB was not refused"
# Every serial VM is gone once its backend connection closed (esxsim
# closes them at the end), and every daemon lives on.
app_is() { [ "$(app "$1")" = "$2" ]; }
check "no serial VM left" wait_for 10 app_is vms_open 0
check "no serial connection left" wait_for 10 app_is conns 0
for s in app.sock relayA.sock relayB.sock relayC.sock; do
	"$BINDIR/vrelay" status --status "$T/$s" --json >/dev/null ||
	    fail "$s does not answer"
done
exit 0
