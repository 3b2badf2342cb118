# cluster.sh -- a simulated vSphere cluster on one machine, sourced by
# the demo (deploy/demo.sh), the vMotion regress scenarios and the soak.
#
# vCenter is govmomi's simulator (test/vcsim) with hosts h1..hN, the
# appliance VM "vch-appliance" (VMCI id 3) and the containerVMs
# cvm1..cvmK.  Each host is a network namespace with its own address on
# a private bridge when the machine allows it (root, iproute2), else its
# own loopback address (127.X.Y.I); either way it has its own emulated
# vSocket directory $T/hI, and its vrelay listens for guests
# (vsock://any:2000), guest agents (vsock://any:2001), the appliance's
# vmomi legs (vsock://any:2003) and mesh legs.  The appliance's vSphere
# API (vappliance --vmomi-listen) is http://127.0.0.1:$CL_VMOMI_PORT/sdk,
# served by the locator's vmomi agent (--vmomi-listen, port CL_PORT+1).
# vlocator follows the appliance VM and pushes the target to every
# relay.  The appliance VM is vappliance plus an echo backend on a unix
# socket (its local service); a containerVM is a guest agent (vguest)
# with a traffic generator (vtraffic) connecting through it.  One more
# containerVM, "plain", has no agent and talks to its host's relay
# directly; it is never migrated.
#
# A vMotion of the appliance: the simulator posts the migration hint
# (relays pre-warm), vappliance's vSocket streams reset and its
# listener moves to the new host's directory with its memory intact
# ("migrate" on its status socket), then RelocateVM_Task moves it in
# the inventory and the locator publishes the new target.  A vMotion of
# a containerVM: its agent's vSocket streams reset and it reappears in
# another host's directory with a new CID, and the simulator relocates
# it too.
#
# Caller sets: T (a private directory), BIN, VCSIMH; optionally HOSTS
# (3), CVMS (3), SESSIONS (per containerVM, 10), PLAIN (sessions of the
# plain guest, 4), HOLD (hold time, 60s), VRELAY_NETNS (0: loopback
# only), SESS_ARGS (more session options for every relay, vappliance and
# vguest, e.g. "--keepalive 500ms"), APP_ARGS (more vappliance options),
# BACKEND_ARGS (more options of the echo backend, e.g. "--slow 4M"),
# VCSIM_TLS (0: the simulator serves plain http and the locator pins
# nothing, so it can restart with another certificate), TLS (0: relays
# and locator talk plaintext; else mutual TLS with certificates from
# deploy/mkcerts.sh in $T/pki; the relays then share one mesh link per
# pair), RELAY_ARGS (more vrelay options, e.g. "--mesh-links
# per-session").  Every daemon logs to $T/NAME.log;
# events go to $T/events.jsonl.

HOSTS=${HOSTS:-3}
CVMS=${CVMS:-3}
SESSIONS=${SESSIONS:-10}
PLAIN=${PLAIN:-4}
HOLD=${HOLD:-60s}
SESS_ARGS=${SESS_ARGS:-}
APP_ARGS=${APP_ARGS:-}
BACKEND_ARGS=${BACKEND_ARGS:-}
RELAY_ARGS=${RELAY_ARGS:-}
VCSIM_TLS=${VCSIM_TLS:-1}
TLS=${TLS:-1}
CL_PIDS=""
CL_NS=""
CL_BR=""

# Now in ms since the epoch.  Bash's own clock, not date(1): a vMotion's
# steps run while the daemons being timed are at work, and a fork and
# an exec per reading take CPU from them.
cl_now() { echo $(( ${EPOCHREALTIME/[.,]/} / 1000 )); }
cl_say() { printf '%s\n' "$*"; }
# FAILED (test/regress/lib.sh) keeps the logs of a scenario that dies here.
cl_die() { echo "cluster: $*; logs in $T" >&2; FAILED=1; exit 1; }

# Append one event line: KIND NAME FROM TO [EPOCH].
cl_event() {
	printf '{"t_ms":%s,"kind":"%s","name":"%s","from":"%s","to":"%s"%s}\n' \
	    $(( ${EPOCHREALTIME/[.,]/} / 1000 )) "$1" "$2" "$3" "$4" \
	    "${5:+,\"epoch\":$5}" >>"$T/events.jsonl"
}

cl_wait_sock() {
	local i
	for i in $(seq 1 200); do [ -S "$1" ] && return 0; sleep 0.05; done
	cl_die "$1 did not appear"
}

# Hosts as network namespaces on a bridge: nonzero if the machine does
# not allow it (not root, no iproute2, no netns) or if TCP between two of
# them does not pass (a firewall that filters bridged traffic).
cl_net_ns() {
	local i ns id=$1
	[ "${VRELAY_NETNS:-1}" != 0 ] && [ "$(id -u)" = 0 ] &&
	    command -v ip >/dev/null || return 1
	CL_BR="vrb$$"
	# Our hosts' traffic is none of the machine's firewall's business:
	# with br_netfilter loaded, every bridged packet would also walk
	# iptables (~5 % of a relay's CPU in a move).
	ip link add "$CL_BR" type bridge nf_call_iptables 0 \
	    nf_call_ip6tables 0 nf_call_arptables 0 2>/dev/null ||
	    ip link add "$CL_BR" type bridge 2>/dev/null || { CL_BR=; return 1; }
	ip addr add "10.213.$id.1/24" dev "$CL_BR" &&
	    ip link set "$CL_BR" up || return 1
	for i in $(seq 1 "$HOSTS"); do
		ns="vr$$-h$i"
		ip netns add "$ns" 2>/dev/null || return 1
		CL_NS="$CL_NS $ns"
		ip link add "vr$$h$i" type veth peer name eth0 netns "$ns" &&
		    ip link set "vr$$h$i" master "$CL_BR" up &&
		    ip -n "$ns" addr add "10.213.$id.$((10 + i))/24" dev eth0 &&
		    ip -n "$ns" link set eth0 up &&
		    ip -n "$ns" link set lo up || return 1
	done
	[ "$HOSTS" -lt 2 ] && return 0
	# One connection from h1's namespace to h2's.
	ip netns exec "vr$$-h2" python3 -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 7)); s.listen(1); s.settimeout(3)
s.accept()' "10.213.$id.12" 2>/dev/null &
	local lp=$!
	sleep 0.2
	ip netns exec "vr$$-h1" python3 -c 'import socket, sys
socket.create_connection((sys.argv[1], 7), 2)' "10.213.$id.12" 2>/dev/null
	local ok=$?
	wait "$lp" 2>/dev/null || ok=1
	return $ok
}

# Remove the namespaces and the bridge.
cl_net_down() {
	local ns
	for ns in $CL_NS; do ip netns del "$ns" 2>/dev/null; done
	CL_NS=""
	[ -n "$CL_BR" ] && ip link del "$CL_BR" 2>/dev/null
	CL_BR=""
}

# Hosts as namespaces on a bridge, or else loopback addresses.
cl_net() {
	local i id=$(( $$ % 250 + 1 ))
	if cl_net_ns "$id"; then
		CL_LOCIP=10.213.$id.1
		CL_NETMODE="network namespaces on bridge $CL_BR"
		for i in $(seq 1 "$HOSTS"); do
			eval "CL_IP_$i=10.213.$id.$((10 + i))"
			eval "CL_EXEC_$i='ip netns exec vr$$-h$i'"
		done
		return
	fi
	cl_net_down
	CL_LOCIP=127.$((100 + id % 100)).$id.1
	CL_NETMODE="loopback addresses"
	for i in $(seq 1 "$HOSTS"); do
		eval "CL_IP_$i=127.$((100 + id % 100)).$id.$((10 + i))"
		eval "CL_EXEC_$i="
	done
}

# Stop everything, remove namespaces and the bridge.
cl_stop() {
	local p live rc
	{ exec 7>&-; } 2>/dev/null
	declare -A comm
	for p in $CL_PIDS; do
		comm[$p]=$(cat "/proc/$p/comm" 2>/dev/null)
		kill "$p" 2>/dev/null
	done
	# Give them 2 s to go, then no more.
	for _ in $(seq 1 40); do
		live=
		for p in $CL_PIDS; do kill -0 "$p" 2>/dev/null && live=1; done
		[ -z "$live" ] && break
		sleep 0.05
	done
	for p in $CL_PIDS; do kill -9 "$p" 2>/dev/null; done
	# CRASHED: those that died of SIGILL, SIGABRT, SIGBUS, SIGFPE or
	# SIGSEGV (regress' cleanup fails the scenario on them).
	for p in $CL_PIDS; do
		wait "$p" 2>/dev/null; rc=$?
		case $rc in 132|134|135|136|139)
			CRASHED="${CRASHED:-} $p (${comm[$p]:-?}, status $rc)" ;;
		esac
	done
	CL_PIDS=""
	cl_net_down
}

cl_bg() { CL_PIDS="$CL_PIDS $1"; }

# The TLS flags for certificate NAME in $T/pki (none if TLS=0).
cl_tls() {
	[ "$TLS" = 0 ] && return 0
	echo "--tls-cert $T/pki/$1.pem --tls-key $T/pki/$1.key" \
	    "--tls-ca $T/pki/ca.pem"
}

# The cluster CA, a certificate per host's relay and the locator's.
cl_pki() {
	local i ip mk="$CL_TOP/deploy/mkcerts.sh"
	[ "$TLS" = 0 ] && return 0
	"$mk" -d "$T/pki" ca >>"$T/mkcerts.log" 2>&1 || return 1
	for i in $(seq 1 "$HOSTS"); do
		eval "ip=\$CL_IP_$i"
		"$mk" -d "$T/pki" relay "h$i" "$ip" >>"$T/mkcerts.log" 2>&1 ||
		    return 1
	done
	"$mk" -d "$T/pki" locator vlocator "$CL_LOCIP" \
	    >>"$T/mkcerts.log" 2>&1
}

cl_locator_start() {
	local vmomi=()

	rm -f "$T/loc.sock"
	# The vmomi agent trusts relays' caller lines: off loopback only
	# over TLS (vlocator refuses otherwise).
	case "$TLS:$CL_LOCIP" in
	1:*|*:127.*)
		vmomi=(--vmomi-listen "tcp://$CL_LOCIP:$((CL_PORT + 1))") ;;
	esac
	"$BIN/vlocator" run --vcenter "$VCSIM_URL" \
	    --credentials "$T/vcenter.json" \
	    ${VCSIM_SHA256:+--thumbprint "$VCSIM_SHA256"} \
	    --vm vch-appliance --listen "tcp://$CL_LOCIP:$CL_PORT" \
	    "${vmomi[@]}" \
	    --status "$T/loc.sock" $(cl_tls locator) 2>>"$T/locator.log" &
	CL_LOC_PID=$!; cl_bg $!
	cl_wait_sock "$T/loc.sock"
	# Its publish events become the epochs on the plot (cl_collect).
	"$BIN/vlocator" watch --status "$T/loc.sock" --json \
	    >>"$T/locwatch.jsonl" 2>/dev/null &
	cl_bg $!
}

cl_locator_kill() {
	kill -9 "$CL_LOC_PID" 2>/dev/null; wait "$CL_LOC_PID" 2>/dev/null
	cl_event locator-down vlocator "" ""
}

# Relay on host I.
cl_relay_start() {
	local i=$1 ip ex
	eval "ip=\$CL_IP_$i; ex=\$CL_EXEC_$i"
	rm -f "$T/relay-h$i.sock"
	$ex "$BIN/vrelay" run --host "h$i" --vsock-dir "$T/h$i" \
	    --guest-listen vsock://any:2000 --agent-listen vsock://any:2001 \
	    --vmomi-listen vsock://any:2003 --mesh-listen "tcp://$ip:$CL_PORT" \
	    --locator "tcp://$CL_LOCIP:$CL_PORT" --hold-time "$HOLD" \
	    --status "$T/relay-h$i.sock" $SESS_ARGS $RELAY_ARGS \
	    $(cl_tls "h$i") 2>>"$T/relay-h$i.log" &
	eval "CL_RELAY_PID_$i=$!"; cl_bg $!
	cl_wait_sock "$T/relay-h$i.sock"
}

# The simulator, with the appliance VM and the containerVMs on the hosts
# they run on now; extra args for vcsimh (-listen to keep a port).
cl_vcsim_start() {
	local i k hosts="h1" cvms=""
	for i in $(seq 2 "$HOSTS"); do hosts="$hosts,h$i"; done
	for k in $(seq 1 "$CVMS"); do
		eval "i=\$CL_CVM_HOST_$k"
		cvms="$cvms${cvms:+,}cvm$k@h$i"
	done
	. "$CL_TOP/test/vcsim/vcsim.sh"
	vcsim_start "$T" -host-names "$hosts" -vm vch-appliance \
	    -on "h$CL_APP_HOST" -vmci-cid 3 ${cvms:+-cvms "$cvms"} \
	    $([ "$VCSIM_TLS" = 0 ] || echo -tls) -user vrelay \
	    -password cluster-pass "$@" || return 1
	cl_bg "$VCSIM_PID"
}

# kill -9 of the simulator, then the same one again on the same port
# (a vCenter restart: every session and collector on it is gone).
cl_vcsim_restart() {
	local port=${VCSIM_URL#*://127.0.0.1:}
	port=${port%%/*}
	kill -9 "$VCSIM_PID" 2>/dev/null; wait "$VCSIM_PID" 2>/dev/null
	exec 7>&-
	sleep "${1:-0}"
	cl_vcsim_start -listen "127.0.0.1:$port"
}

# The appliance VM on the host it runs on now.
cl_app_start() {
	rm -f "$T/app.sock"
	"$BIN/vappliance" run --listen vsock://any:1024 \
	    --vsock-dir "$T/h$CL_APP_HOST" --vsock-cid 3 \
	    --backend "unix:$T/backend.sock" --hold-time "$HOLD" \
	    --vmomi-listen "tcp://127.0.0.1:$CL_VMOMI_PORT" \
	    --status "$T/app.sock" $SESS_ARGS $APP_ARGS 2>>"$T/app.log" &
	CL_APP_PID=$!; cl_bg $!
	cl_wait_sock "$T/app.sock"
}

cl_app_kill() {
	kill -9 "$CL_APP_PID" 2>/dev/null; wait "$CL_APP_PID" 2>/dev/null
}

# The guest agent of containerVM K, on its host with its CID.
cl_cvm_start() {
	local k=$1 i cid
	eval "i=\$CL_CVM_HOST_$k; cid=\$CL_CVM_CID_$k"
	rm -f "$T/cvm$k.ctl"
	# No open-vm-tools here: the stand-in turns the agent's guestinfo
	# publications into reconfigures of its VM in the simulator.
	FAKE_RPCTOOL_VLOCATOR="$BIN/vlocator" FAKE_RPCTOOL_VM="cvm$k" \
	FAKE_RPCTOOL_CONF="$T/guestinfo.json" \
	"$BIN/vguest" run --name "cvm$k" --listen "unix:$T/cvm$k.sock" \
	    --vsock-dir "$T/h$i" --vsock-cid "$cid" \
	    --rpctool "$CL_TOP/test/tools/fake-rpctool.sh" \
	    --hold-time "$HOLD" --status "$T/cvm$k.ctl" $SESS_ARGS \
	    2>>"$T/cvm$k.log" &
	eval "CL_CVM_PID_$k=$!"; cl_bg $!
	cl_wait_sock "$T/cvm$k.ctl"
}

cl_cvm_kill() {
	local pid
	eval "pid=\$CL_CVM_PID_$1"
	kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

cl_relay_kill() {
	local pid
	eval "pid=\$CL_RELAY_PID_$1"
	kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	cl_event relay-down "h$1" "" ""
}

# Host I's link to the bridge: cl_link I up|down (a partition: with
# network namespaces only; nonzero under loopback addresses).
cl_link() {
	[ -n "$CL_BR" ] || return 1
	ip link set "vr$$h$1" "$2"
}

# Host I loses PCT % of its packets both ways: cl_loss I PCT, or
# cl_loss I 0 to stop (network namespaces only).  tc netem where the
# kernel has it, else an nftables rule in the host's namespace
# (CL_LOSS_HOW says which); nonzero if neither is possible.
cl_loss() {
	local i=$1 pct=$2 ns="vr$$-h$1"
	[ -n "$CL_BR" ] || return 1
	if [ "$pct" = 0 ]; then
		tc qdisc del dev "vr$$h$i" root 2>/dev/null
		ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null
		ip netns exec "$ns" nft delete table inet vrloss 2>/dev/null
		return 0
	fi
	if tc qdisc replace dev "vr$$h$i" root netem loss "$pct%" \
	    2>/dev/null; then
		CL_LOSS_HOW=netem
		ip netns exec "$ns" tc qdisc replace dev eth0 root netem \
		    loss "$pct%"
		return
	fi
	command -v nft >/dev/null || return 1
	CL_LOSS_HOW=nftables
	ip netns exec "$ns" nft -f - <<EOF
table inet vrloss {
	chain in {
		type filter hook input priority 0
		numgen random mod 100 < $pct drop
	}
	chain out {
		type filter hook output priority 0
		numgen random mod 100 < $pct drop
	}
}
EOF
}

# Every relay ACKed the locator's current epoch (at most 10 s).
cl_converged() {
	local i
	for i in $(seq 1 200); do
		"$BIN/vlocator" relays --status "$T/loc.sock" --json \
		    2>/dev/null | python3 -c 'import json, sys
r = json.load(sys.stdin)["relays"]
sys.exit(0 if len(r) >= int(sys.argv[1]) and
    all(x["converged"] for x in r) else 1)' "$1" && return 0
		sleep 0.05
	done
	return 1
}

# The host the locator says runs the appliance now.
cl_where() {
	"$BIN/vlocator" where --status "$T/loc.sock" --json 2>/dev/null |
	    python3 -c 'import json, sys
print(json.load(sys.stdin).get("appliance_host") or "")'
}

# Start the whole cluster (traffic not yet).
cl_start() {
	local i k
	mkdir -p "$T"
	: >"$T/events.jsonl"
	CL_PORT=$(python3 "$CL_TOP/test/tools/portblock.py" 1) ||
	    cl_die "no free port"
	CL_VMOMI_PORT=$(python3 "$CL_TOP/test/tools/portblock.py" 1) ||
	    cl_die "no free port"
	cl_net
	cl_pki || cl_die "cannot mint certificates: $(cat "$T/mkcerts.log")"
	for k in $(seq 1 "$CVMS"); do
		eval "CL_CVM_HOST_$k=$(( (k % HOSTS) + 1 ))"
		eval "CL_CVM_CID_$k=$((10 + k))"
	done
	CL_APP_HOST=1
	cl_vcsim_start || cl_die "the simulator did not start"
	(umask 077; echo '{"user": "vrelay", "password": "cluster-pass"}' \
	    >"$T/vcenter.json")
	# The guestinfo CLI's settings (vlocator guestinfo -c): what the
	# containerVMs' stand-in vmware-rpctool writes through.
	printf '{"vcenter": "%s", "credentials": "%s"%s}\n' "$VCSIM_URL" \
	    "$T/vcenter.json" \
	    "${VCSIM_SHA256:+, \"thumbprint\": \"$VCSIM_SHA256\"}" \
	    >"$T/guestinfo.json"
	cl_locator_start
	"$BIN/vtraffic" serve --listen "unix:$T/backend.sock" --mode echo \
	    --report "$T/backend.jsonl" $BACKEND_ARGS 2>>"$T/backend.log" &
	CL_BACKEND_PID=$!; cl_bg $!
	cl_app_start
	for i in $(seq 1 "$HOSTS"); do cl_relay_start "$i"; done
	cl_converged "$HOSTS" || cl_die "relays did not converge"
	for k in $(seq 1 "$CVMS"); do cl_cvm_start "$k"; done
}

# Traffic for DURATION seconds: SESSIONS per containerVM through its
# agent, and PLAIN sessions of the agentless guest on h2 (or h1).
cl_traffic_start() {
	local k dur=$1 ph=$(( HOSTS > 1 ? 2 : 1 ))
	CL_TRAFFIC=""
	for k in $(seq 1 "$CVMS"); do
		"$BIN/vtraffic" run --connect "unix:$T/cvm$k.sock" \
		    --sessions "$SESSIONS" --bytes 64G --duration "$dur" \
		    --label "cvm$k" --report "$T/run-cvm$k.jsonl" \
		    --timeline "$T/timeline.csv" --timeout $((dur * 4 + 120)) \
		    >"$T/run-cvm$k.json" 2>>"$T/run-cvm$k.log" &
		CL_TRAFFIC="$CL_TRAFFIC $!"; cl_bg $!
	done
	if [ "$PLAIN" -gt 0 ]; then
		"$BIN/vtraffic" run --connect vsock://2:2000 \
		    --vsock-dir "$T/h$ph" --vsock-cid 9 --sessions "$PLAIN" \
		    --bytes 64G --duration "$dur" --label plain \
		    --report "$T/run-plain.jsonl" --timeline "$T/timeline.csv" \
		    --timeout $((dur * 4 + 120)) \
		    >"$T/run-plain.json" 2>>"$T/run-plain.log" &
		CL_TRAFFIC="$CL_TRAFFIC $!"; cl_bg $!
	fi
}

# Wait for every generator; nonzero if any failed.
cl_traffic_wait() {
	local p rc=0
	for p in $CL_TRAFFIC; do wait "$p" || rc=1; done
	return $rc
}

# Sessions established now, over all client ends (agents and relays).
cl_established() {
	local k i n=0 c
	for k in $(seq 1 "$CVMS"); do
		# No python here: the demo calls this after every move.
		c=$("$BIN/vguest" status --status "$T/cvm$k.ctl" --json \
		    2>/dev/null | grep -o '"established":[0-9]*' | cut -d: -f2)
		n=$((n + ${c:-0}))
	done
	echo "$n"
}

# A host other than the one given, at random.
cl_other_host() {
	local h
	[ "$HOSTS" -lt 2 ] && { echo "$1"; return; }
	while :; do
		h=$(( RANDOM % HOSTS + 1 ))
		[ "$h" != "$1" ] && { echo "$h"; return; }
	done
}

# vMotion of the appliance to host H (a number): the hint (relays
# pre-warm), CL_PRECOPY seconds of pre-copy (0.3), the switchover, then
# the inventory.  CL_LAST_MS is how long it all took.
cl_app_migrate() {
	local h=$1 from=$CL_APP_HOST t0
	t0=$(( ${EPOCHREALTIME/[.,]/} / 1000 ))
	vcsim_cmd hint "h$h"
	# The pre-copy phase: the hint reaches the relays, which pre-warm.
	sleep "${CL_PRECOPY:-0.3}"
	"$BIN/vappliance" migrate --status "$T/app.sock" \
	    --arg "vsock_dir=$T/h$h" >/dev/null ||
	    cl_die "vappliance migrate to h$h failed"
	vcsim_cmd relocate "h$h"
	CL_APP_HOST=$h
	cl_event appliance vch-appliance "h$from" "h$h"
	CL_LAST_MS=$(( ${EPOCHREALTIME/[.,]/} / 1000 - t0 ))
}

# vMotion of containerVM K to host H with a new CID.
cl_cvm_migrate() {
	local k=$1 h=$2 from cid
	eval "from=\$CL_CVM_HOST_$k; cid=\$CL_CVM_CID_$k"
	cid=$((cid + 100))
	"$BIN/vguest" migrate --status "$T/cvm$k.ctl" \
	    --arg "vsock_dir=$T/h$h" --arg "vsock_cid:=$cid" >/dev/null ||
	    cl_die "vguest migrate cvm$k to h$h failed"
	vcsim_cmd relocate-vm "cvm$k" "h$h"
	eval "CL_CVM_HOST_$k=$h; CL_CVM_CID_$k=$cid"
	cl_event cvm "cvm$k" "h$from" "h$h"
}

# Status of every client end and the appliance into $T/status-*.json,
# and the locator's publish events into events.jsonl as epochs.
cl_collect() {
	local k i
	for k in $(seq 1 "$CVMS"); do
		"$BIN/vguest" status --status "$T/cvm$k.ctl" --json \
		    >"$T/status-cvm$k.json" 2>/dev/null
	done
	for i in $(seq 1 "$HOSTS"); do
		"$BIN/vrelay" status --status "$T/relay-h$i.sock" --json \
		    >"$T/status-relay-h$i.json" 2>/dev/null
	done
	if [ -s "$T/locwatch.jsonl" ]; then
		python3 - "$T/locwatch.jsonl" >>"$T/events.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "publish":
        print(json.dumps({"t_ms": e["ts"], "kind": "epoch",
                          "name": e.get("appliance_host") or "",
                          "epoch": e["epoch"]}))
PY
	fi
}

# The one summary line (vreport.py); nonzero if any stream differs.
cl_report() {
	local plot=$1
	set -- "$T"/run-*.jsonl
	python3 "$CL_TOP/test/tools/vreport.py" summary --runs "$@" \
	    --backend "$T/backend.jsonl" --status "$T"/status-*.json \
	    --events "$T/events.jsonl" --timeline "$T/timeline.csv" \
	    ${plot:+--plot "$plot"}
}

CL_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
