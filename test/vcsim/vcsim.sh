# vcsim.sh -- run the vCenter simulator harness (vcsimh) from a shell
# script: the regress scenarios, the demo and the benchmarks source it.
#
#   vcsim_start DIR [vcsimh args]   start $VCSIMH with its stdin on the
#       fifo DIR/vcsim.in (held open on fd 7), stdout DIR/vcsim.out and
#       stderr appended to DIR/vcsim.log; wait for its first line (at
#       most 20 s, else return 1).  Sets VCSIM_PID, VCSIM_URL, VCSIM_VM
#       (the VM's moref), VCSIM_SHA256 and VCSIM_SHA1 (empty without TLS).
#   vcsim_cmd CMD...   one command ("relocate B", "kick", ...); waits
#       for its one-line JSON answer and sets VCSIM_ANSWER.  Call it
#       directly, not in $(...): the answer count lives in this shell.
#   vcsim_stop         close its stdin and wait for it to exit.

: "${VCSIMH:?VCSIMH must name the vcsimh binary (make obj/vcsimh)}"

# The member KEY of the simulator's first line ("" if absent).
vcsim_hello() {
	head -1 "$VCSIM_DIR/vcsim.out" | python3 -c 'import json, sys
print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"
}

vcsim_start() {
	VCSIM_DIR=$1
	shift
	[ -x "$VCSIMH" ] || return 1
	rm -f "$VCSIM_DIR/vcsim.in" "$VCSIM_DIR/vcsim.out"
	mkfifo "$VCSIM_DIR/vcsim.in" || return 1
	"$VCSIMH" "$@" <"$VCSIM_DIR/vcsim.in" >"$VCSIM_DIR/vcsim.out" \
	    2>>"$VCSIM_DIR/vcsim.log" &
	VCSIM_PID=$!
	exec 7>"$VCSIM_DIR/vcsim.in"
	VCSIM_LINES=1
	VCSIM_ANSWER=
	local i
	for i in $(seq 1 400); do
		[ -s "$VCSIM_DIR/vcsim.out" ] && break
		sleep 0.05
	done
	[ -s "$VCSIM_DIR/vcsim.out" ] || return 1
	VCSIM_URL=$(vcsim_hello url)
	VCSIM_VM=$(vcsim_hello vm_moref)
	VCSIM_SHA256=$(vcsim_hello thumbprint_sha256)
	VCSIM_SHA1=$(vcsim_hello thumbprint_sha1)
}

vcsim_cmd() {
	echo "$*" >&7
	VCSIM_LINES=$((VCSIM_LINES + 1))
	local i
	for i in $(seq 1 600); do
		[ "$(wc -l <"$VCSIM_DIR/vcsim.out")" -ge "$VCSIM_LINES" ] && break
		sleep 0.05
	done
	VCSIM_ANSWER=$(sed -n "${VCSIM_LINES}p" "$VCSIM_DIR/vcsim.out")
}

vcsim_stop() {
	exec 7>&-
	kill "$VCSIM_PID" 2>/dev/null
	wait "$VCSIM_PID" 2>/dev/null
}
