#!/bin/bash
# demo.sh -- the main job for now: a local two-host cluster with traffic.
#
# vCenter is govmomi's simulator (hosts A and B, the appliance VM on B
# with VMCI id 3); vlocator follows the VM there and pushes the target
# to both relays, which have no static routing.  Host A runs a relay
# and containerVMs (traffic generators); host B runs a relay and the
# appliance VM (vappliance + an echo backend).  Each host is its own
# emulated-vsock directory; the mesh between the relays is TCP on
# loopback.  Midway the relay on the appliance's host is killed with
# SIGKILL and restarted, twice, and the locator once: every session
# resumes, the relays keep their target while the locator is away, and
# every byte still arrives exactly once.  Ends with one JSON line.
set -u
BIN=${BINDIR:-$(cd "$(dirname "$0")/.." && pwd)/bin}
VCSIMH=${VCSIMH:-$(cd "$(dirname "$0")/.." && pwd)/obj/vcsimh}
SESSIONS=${SESSIONS:-200}
BYTES=${BYTES:-256K:24M}
T=$(mktemp -d "${TMPDIR:-/tmp}/vrelay-demo.XXXXXX")
P=$((30000 + RANDOM % 2000))
PIDS=""
cleanup() { exec 7>&-; for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return; sleep 0.05; done
	echo "demo: $1 did not appear; logs in $T" >&2; exit 1; }

relay_b() {
	"$BIN/vrelay" run --host B --mesh-listen "tcp://127.0.0.1:$((P + 2))" \
	    --guest-listen vsock://any:2000 --vsock-dir "$T/B" \
	    --locator "tcp://127.0.0.1:$((P + 20))" --status "$T/relayB.sock" \
	    2>>"$T/relayB.log" &
	RB=$!; PIDS="$PIDS $RB"
	wait_sock "$T/relayB.sock"
}
locator() {
	rm -f "$T/loc.sock"
	"$BIN/vlocator" run --vcenter "$URL" --credentials "$T/vcenter.json" \
	    --thumbprint "$THUMB" --vm vch-appliance \
	    --listen "tcp://127.0.0.1:$((P + 20))" --status "$T/loc.sock" \
	    2>>"$T/locator.log" &
	LP=$!; PIDS="$PIDS $LP"
	wait_sock "$T/loc.sock"
}
# Wait until every relay has acknowledged the locator's target.
converged() { for _ in $(seq 200); do
	"$BIN/vlocator" relays --status "$T/loc.sock" --json 2>/dev/null |
	    python3 -c 'import json,sys; r=json.load(sys.stdin)["relays"]
sys.exit(0 if len(r) == 2 and all(x["converged"] for x in r) else 1)' &&
	    return; sleep 0.05; done
	echo "demo: relays did not converge; logs in $T" >&2; exit 1; }

say "starting vCenter (simulator: hosts A, B; VM vch-appliance on B) and vlocator"
. "$(cd "$(dirname "$0")/.." && pwd)/test/vcsim/vcsim.sh"
vcsim_start "$T" -host-names A,B -vm vch-appliance -on B -vmci-cid 3 -tls \
    -user vrelay -password demo-pass ||
    { echo "demo: simulator did not start; logs in $T" >&2; exit 1; }
PIDS="$PIDS $VCSIM_PID"
URL=$VCSIM_URL
THUMB=$VCSIM_SHA256
(umask 077; echo '{"user": "vrelay", "password": "demo-pass"}' >"$T/vcenter.json")
locator

say "starting host B: echo backend, vappliance (CID 3), relay B"
"$BIN/vtraffic" serve --listen "tcp://127.0.0.1:$((P + 10))" --slow 4M \
    2>>"$T/backend.log" & PIDS="$PIDS $!"
"$BIN/vappliance" run --listen vsock://any:1024 --vsock-dir "$T/B" \
    --vsock-cid 3 --backend "tcp://127.0.0.1:$((P + 10))" \
    --status "$T/app.sock" 2>>"$T/app.log" & PIDS="$PIDS $!"
wait_sock "$T/app.sock"
relay_b
say "starting host A: relay A (ingress), routed by the locator"
"$BIN/vrelay" run --host A --mesh-listen "tcp://127.0.0.1:$((P + 1))" \
    --guest-listen vsock://any:2000 --vsock-dir "$T/A" \
    --locator "tcp://127.0.0.1:$((P + 20))" --status "$T/relayA.sock" \
    2>>"$T/relayA.log" & PIDS="$PIDS $!"
wait_sock "$T/relayA.sock"
converged
say "vlocator where / relays"
"$BIN/vlocator" where --status "$T/loc.sock"
"$BIN/vlocator" relays --status "$T/loc.sock"
"$BIN/vrelay" status --status "$T/relayA.sock" | sed -n '/^target:/,/^sessions:/{/^sessions:/!p}'

say "watching relay A (session events as they happen)"
"$BIN/vrelay" watch --status "$T/relayA.sock" 2>/dev/null |
    awk -W interactive '
	/session-detached/ { if (++d <= 3) print "  watch: " $1, $2, $3, \
	    substr($0, index($0, " reason=") + 1); next }
	/session-resumed/ { if (++r <= 3) print "  watch: " $1, $2, $3, \
	    substr($0, index($0, " resume_ms=") + 1); next }' 2>/dev/null &
PIDS="$PIDS $!"

say "containerVMs on host A: $SESSIONS sessions, $BYTES each, echoed"
"$BIN/vtraffic" run --connect vsock://2:2000 --vsock-dir "$T/A" \
    --vsock-cid 5 --sessions "$SESSIONS" --bytes "$BYTES" --progress \
    --timeout 300 >"$T/result.json" 2>"$T/progress.log" &
TP=$!
sleep 2
say "relay A sessions (first rows)"
"$BIN/vrelay" sessions --status "$T/relayA.sock" | head -n 8
for i in 1 2; do
	say "kill -9 relay B (appliance host), then restart it ($i/2)"
	kill -9 "$RB"; wait "$RB" 2>/dev/null
	sleep 0.5
	"$BIN/vrelay" status --status "$T/relayA.sock" |
	    sed -n '/^sessions:/,/^forwards:/{/^forwards:/!p}'
	relay_b
	sleep 2
done
say "kill -9 vlocator: relays keep their target; restart it"
kill -9 "$LP"; wait "$LP" 2>/dev/null
"$BIN/vrelay" status --status "$T/relayA.sock" | grep -E '^  (epoch|appliance_host|state):'
locator
converged
"$BIN/vlocator" relays --status "$T/loc.sock"
wait $TP; rc=$?
say "done"
tail -n 1 "$T/progress.log"
resumes=$(grep -c session-resumed "$T/relayA.log")
python3 - "$T/result.json" "$resumes" "$T" "$T/relayA.log" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
ms = [int(m) for m in re.findall(r"session-resumed .* resume_ms=(\d+)",
                                  open(sys.argv[4]).read())]
out = {"sessions": r["sessions"], "ok": r["ok"], "failed": r["failed"],
       "relay_restarts": 2, "locator_restarts": 1,
       "resumes": int(sys.argv[2]), "bytes_sent": r["bytes_sent"],
       "bytes_verified": r["bytes_verified"], "bytes_lost": r["bytes_lost"],
       "duplicates": r["duplicates"], "elapsed_ms": r["elapsed_ms"],
       "max_resume_ms": max(ms) if ms else None,
       "logs": sys.argv[3]}
print(json.dumps(out))
PY
exit $rc
