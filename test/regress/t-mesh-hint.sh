# Shared mesh links in the simulated cluster (3 hosts, TLS, so shared
# links by default, no --mesh-links): a migration hint dials the link to the destination host's
# relay before the switchover, and after it every session resumes there
# over streams on that one link, byte-exact (traffic checked by
# SHA-256 at the end), with one TLS handshake to that relay in all.
. ./lib.sh
BIN=$BINDIR
. ../../deploy/cluster.sh
trap 'cl_stop; cleanup' EXIT
HOSTS=3 CVMS=2 SESSIONS=3 PLAIN=4 HOLD=30s
RELAY_ARGS=
total=$((CVMS * SESSIONS))

# The link from relay h$1 to h$2's relay: "STATE STREAMS", or nothing.
link() {
	"$BIN/vrelay" status --status "$T/relay-h$1.sock" --json |
	    python3 -c 'import json, sys
for l in json.load(sys.stdin)["mesh"]["links"]:
    if l.get("host") == sys.argv[1]:
        print(l["state"], l.get("streams", 0))' "h$2"
}

cl_start
cl_traffic_start 20
all_back 100 || fail "sessions not established at the start"
[ "$(rstat 2 mesh.mode)" = shared ] || fail "h2: $(rstat 2 mesh)"
# The appliance is on h1: relay h2's plain sessions ride one link there.
set -- $(link 2 1)
[ "$1" = up ] && [ "$2" -ge "$PLAIN" ] || fail "h2 -> h1: $(rstat 2 mesh)"
[ -z "$(link 2 3)" ] || fail "a link to h3 before any hint: $(link 2 3)"

log "hint: the link to h3 comes up before the switchover"
f0=$(rstat 2 tls.handshakes.full)
r0=$(rstat 2 sessions.resumes)
vcsim_cmd hint h3 >/dev/null
up3() { [ "$(link 2 3 | cut -d' ' -f1)" = up ]; }
wait_for 5 up3 || fail "no link to h3 on the hint: $(rstat 2 mesh)"
"$BIN/vappliance" migrate --status "$T/app.sock" \
    --arg "vsock_dir=$T/h3" >/dev/null || fail "migrate to h3 failed"
resumed() { [ "$(rstat 2 sessions.resumes)" -ge $((r0 + PLAIN)) ]; }
wait_for 10 resumed || fail "relay h2's sessions did not resume"
all_back 100 || fail "sessions not back after the switchover"
set -- $(link 2 3)
[ "$1" = up ] && [ "$2" -ge "$PLAIN" ] || fail "h2 -> h3: $(rstat 2 mesh)"
[ $(($(rstat 2 tls.handshakes.full) - f0)) -le 1 ] || fail "h2 paid \
$(($(rstat 2 tls.handshakes.full) - f0)) full TLS handshakes for h3"
[ "$(rstat 2 prewarm.opened)" = 0 ] || fail "per-leg pre-warm with \
shared links: $(rstat 2 prewarm)"
# The hint says so: it dialled the link, no connection was pooled.
grep -q 'hint event=.* host=h3 .*prewarmed=0 link=connecting' \
    "$T/relay-h2.log" || fail "h2's hint line: $(grep 'hint event' \
    "$T/relay-h2.log" | tail -1)"
vcsim_cmd relocate h3 >/dev/null
CL_APP_HOST=3
cl_converged "$HOSTS" || fail "relays did not converge after the push"

cl_traffic_wait || fail "a generator failed: $(cat "$T"/run-*.json)"
cl_collect
s=$(cl_report "") || fail "streams differ: $s"
log "$s"
exit 0
