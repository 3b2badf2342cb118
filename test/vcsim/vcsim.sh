# vcsim.sh -- run the vCenter simulator harness (vcsimh) from a shell
# script: the regress scenarios, the demo and the benchmarks source it.
#
#   vcsim_start DIR [vcsimh args]   start $VCSIMH with its stdin on the
#       fifo DIR/vcsim.in (held open on fd 7), its stdout on the fifo
#       DIR/vcsim.outq (read on fd 8; every line is also appended to
#       DIR/vcsim.out) and stderr appended to DIR/vcsim.log; wait for its
#       first line (at most 20 s, else return 1).  Sets VCSIM_PID,
#       VCSIM_URL, VCSIM_VM (the VM's moref), VCSIM_SHA256 and
#       VCSIM_SHA1 (empty without TLS).
#   vcsim_cmd CMD...   one command ("relocate B", "kick", ...); waits
#       (at most 30 s) for its one-line JSON answer and sets
#       VCSIM_ANSWER.  Call it directly, not in $(...): the fds live in
#       this shell.  It forks nothing: the benchmarks call it while the
#       daemons they time are at work.
#   vcsim_stop         close its stdin and wait for it to exit.

: "${VCSIMH:?VCSIMH must name the vcsimh binary (make obj/vcsimh)}"

# The member KEY of the simulator's first line ("" if absent).
vcsim_hello() {
	printf '%s\n' "$VCSIM_HELLO" | python3 -c 'import json, sys
print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"
}

# The simulator's next line into VCSIM_LINE (and DIR/vcsim.out), waiting
# at most $1 s; nonzero if none came.
vcsim_line() {
	IFS= read -r -t "$1" VCSIM_LINE <&8 || return 1
	printf '%s\n' "$VCSIM_LINE" >>"$VCSIM_DIR/vcsim.out"
}

vcsim_start() {
	VCSIM_DIR=$1
	shift
	[ -x "$VCSIMH" ] || return 1
	rm -f "$VCSIM_DIR/vcsim.in" "$VCSIM_DIR/vcsim.out" \
	    "$VCSIM_DIR/vcsim.outq"
	mkfifo "$VCSIM_DIR/vcsim.in" "$VCSIM_DIR/vcsim.outq" || return 1
	"$VCSIMH" "$@" <"$VCSIM_DIR/vcsim.in" >"$VCSIM_DIR/vcsim.outq" \
	    2>>"$VCSIM_DIR/vcsim.log" &
	VCSIM_PID=$!
	exec 7>"$VCSIM_DIR/vcsim.in"
	exec 8<"$VCSIM_DIR/vcsim.outq"
	VCSIM_ANSWER=
	vcsim_line 20 || return 1
	VCSIM_HELLO=$VCSIM_LINE
	VCSIM_URL=$(vcsim_hello url)
	VCSIM_VM=$(vcsim_hello vm_moref)
	VCSIM_SHA256=$(vcsim_hello thumbprint_sha256)
	VCSIM_SHA1=$(vcsim_hello thumbprint_sha1)
}

vcsim_cmd() {
	echo "$*" >&7
	VCSIM_ANSWER=
	vcsim_line 30 && VCSIM_ANSWER=$VCSIM_LINE
}

vcsim_stop() {
	exec 7>&- 8<&-
	kill "$VCSIM_PID" 2>/dev/null
	wait "$VCSIM_PID" 2>/dev/null
}
