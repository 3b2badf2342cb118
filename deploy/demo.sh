#!/bin/bash
# demo.sh -- the main job: a simulated vSphere cluster (deploy/cluster.sh)
# with containerVMs streaming both ways through the relay mesh while the
# appliance VM and the containerVMs are vMotioned at random moments.
#
# Shows the migrations live (the locator's view, the appliance's and
# each move's effect on the sessions), then checks every byte on both
# ends (SHA-256 of each stream at the generator and at the backend) and
# The appliance calls vSphere all along through the vmomi agent (a
# failed call fails the demo), and each containerVM's guest agent
# publishes its guestinfo keys (shown at the end).  It ends with one
# JSON line:
#   {"sessions":..,"migrations":..,"bytes_sent":..,"bytes_verified":..,
#    "bytes_lost":0,"duplicates":0,"max_resume_ms":..,"plot":"PATH"}
# exiting nonzero if any stream differs.  The plot is a PNG timeline
# (bytes/s per session, migrations and target epochs marked).
#
# Knobs (environment): HOSTS (3), CVMS (3), SESSIONS per containerVM
# (10), PLAIN (4), DURATION seconds of traffic (30), APP_MIGRATIONS (6),
# CVM_MIGRATIONS (6), HOLD (60s), VRELAY_NETNS (0: loopback addresses).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BINDIR:-$TOP/bin}
VCSIMH=${VCSIMH:-$TOP/obj/vcsimh}
DURATION=${DURATION:-30}
APP_MIGRATIONS=${APP_MIGRATIONS:-6}
CVM_MIGRATIONS=${CVM_MIGRATIONS:-6}
QUIET=${QUIET:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/vrelay-demo.XXXXXX")
. "$TOP/deploy/cluster.sh"
trap 'cl_stop; kill $(jobs -p) 2>/dev/null' EXIT
say() { [ -n "$QUIET" ] || printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { [ -n "$QUIET" ] || printf '%s\n' "$*"; }

say "starting the cluster: vCenter simulator, vlocator, $HOSTS hosts"
cl_start
show "hosts: $CL_NETMODE; logs in $T"
show "the appliance's vSphere API (vmomi agent): http://127.0.0.1:$CL_VMOMI_PORT/sdk"
if [ -z "$QUIET" ]; then
	"$BIN/vlocator" where --status "$T/loc.sock"
	"$BIN/vlocator" relays --status "$T/loc.sock"
fi

# Live: the locator's pushes and the endpoints' moves, as they happen.
if [ -z "$QUIET" ]; then
	"$BIN/vlocator" watch --status "$T/loc.sock" 2>/dev/null |
	    grep --line-buffered -E 'publish|hint' |
	    sed -u 's/^/  [vlocator]   /' &
	"$BIN/vappliance" watch --status "$T/app.sock" 2>/dev/null |
	    grep --line-buffered -E 'migrated' |
	    sed -u 's/^/  [vappliance] /' &
fi

total=$((CVMS * SESSIONS))
say "traffic: $CVMS containerVMs x $SESSIONS sessions through guest" \
    "agents + $PLAIN agentless, echoed, ${DURATION}s"
cl_traffic_start "$DURATION"
t0=$(cl_now)
# The appliance's own vSphere calls, through the vmomi agent, all along.
python3 "$TOP/test/tools/soaploop.py" "127.0.0.1:$CL_VMOMI_PORT" \
    "$DURATION" >"$T/soap.json" 2>"$T/soap.err" &
SOAP_PID=$!

# Migration moments: spread at random over the run, kinds shuffled, in
# ms since the traffic started.
plan=$(python3 - "$DURATION" "$APP_MIGRATIONS" "$CVM_MIGRATIONS" <<'PY'
import random, sys
d, a, c = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kinds = ["app"] * a + ["cvm"] * c
random.shuffle(kinds)
lo, hi = min(1.0, d / 4), max(d - 2.0, d / 2)
at = sorted(random.uniform(lo, hi) for _ in kinds)
for t, k in zip(at, kinds):
    print("%d %s" % (t * 1000, k))
PY
)
elapsed() { local ms=$(( $(cl_now) - t0 )); printf '%d.%02d' $((ms / 1000)) \
    $((ms % 1000 / 10)); }
late=0
while read -r at kind; do
	[ -z "$at" ] && continue
	wait_ms=$(( at - ($(cl_now) - t0) ))
	[ "$wait_ms" -gt 0 ] &&
	    sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
	# A move after the traffic is over would prove nothing: count it.
	[ $(( $(cl_now) - t0 )) -gt $(( DURATION * 1000 )) ] && late=$((late + 1))
	if [ "$kind" = app ]; then
		to=$(cl_other_host "$CL_APP_HOST")
		from=$CL_APP_HOST
		cl_app_migrate "$to"
		show "$(printf '[%7ss] vMotion appliance h%s -> h%s (%s ms)' \
		    "$(elapsed)" "$from" "$to" "$CL_LAST_MS")"
	else
		k=$(( RANDOM % CVMS + 1 ))
		eval "from=\$CL_CVM_HOST_$k"
		to=$(cl_other_host "$from")
		cl_cvm_migrate "$k" "$to"
		show "$(printf '[%7ss] vMotion cvm%s h%s -> h%s' "$(elapsed)" \
		    "$k" "$from" "$to")"
	fi
	[ -n "$QUIET" ] ||
	    show "            sessions established: $(cl_established)/$total"
done <<EOF
$plan
EOF
[ "$late" = 0 ] || echo "demo: $late migrations came after the traffic" \
    "had ended (too slow a machine for DURATION=$DURATION)" >&2

say "waiting for the generators to finish and check every byte"
cl_traffic_wait; rc=$?
cl_collect
if [ -z "$QUIET" ]; then
	"$BIN/vlocator" relays --status "$T/loc.sock"
	for k in $(seq 1 "$CVMS"); do
		printf 'cvm%s: ' "$k"
		python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["sessions"]
print("resumes %d, replayed %d bytes, resume ms max %d avg %d" % (
    s["resumes"], s["replayed_bytes"], s["resume_ms_max"],
    s["resume_ms_avg"]))' "$T/status-cvm$k.json"
	done
fi
wait "$SOAP_PID" || rc=1
if [ -z "$QUIET" ]; then
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("vmomi agent: the appliance made %d vSphere calls through the mesh, "
    "%d answered by vCenter, %d failed (slowest %.0f ms)%s" % (
    r["requests"], r["answered"], r["failed"], r["max_ms"],
    "".join("\n  " + f for f in r["failures"])))' "$T/soap.json" ||
	    cat "$T/soap.err"
	for k in $(seq 1 "$CVMS"); do
		printf 'guestinfo of cvm%s (published by its vguest): ' "$k"
		"$BIN/vlocator" guestinfo get "cvm$k" -c "$T/guestinfo.json" \
		    --property config --json 2>&1 | cut -c 1-300
	done
fi
say "summary (logs and plot in $T)"
cl_report "$T/vmotion.png" || rc=1
[ "$late" = 0 ] || rc=1
exit $rc
