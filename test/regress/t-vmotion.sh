# The vMotion test: 50 sessions (5 containerVMs x 9 through guest agents,
# 5 agentless) stream both ways at full speed across 3 hosts while the
# appliance is vMotioned 20 times and containerVMs 20 times at random
# moments.  Every stream is checked byte by byte at the generator and by
# SHA-256 against what the backend received (test/tools/vreport.py):
# nothing lost, duplicated or reordered.  `make soak` runs it longer
# (SOAK_DURATION, SOAK_MIGRATIONS).
. ./lib.sh

dur=${SOAK_DURATION:-30}
mig=${SOAK_MIGRATIONS:-20}
HOSTS=3 CVMS=5 SESSIONS=9 PLAIN=5 DURATION=$dur APP_MIGRATIONS=$mig \
    CVM_MIGRATIONS=$mig QUIET=1 TMPDIR=$T \
    bash ../../deploy/demo.sh >"$T/summary.json" 2>"$T/demo.err" ||
    fail "demo failed: $(tail -n 3 "$T/demo.err") $(cat "$T/summary.json")"
s=$(tail -n 1 "$T/summary.json")
log "$s"
[ "$(echo "$s" | json_get sessions)" = 50 ] || fail "not 50 sessions: $s"
[ "$(echo "$s" | json_get migrations)" = $((2 * mig)) ] ||
    fail "not $((2 * mig)) migrations: $s"
[ "$(echo "$s" | json_get bytes_lost)" = 0 ] || fail "bytes lost: $s"
[ "$(echo "$s" | json_get duplicates)" = 0 ] || fail "duplicates: $s"
sent=$(echo "$s" | json_get bytes_sent)
[ "$sent" -gt 0 ] && [ "$sent" = "$(echo "$s" | json_get bytes_verified)" ] ||
    fail "not every byte verified: $s"
# Every containerVM migration reset its agent's legs, and the agents
# resumed them: a migration that did nothing would pass the checks above.
D=$(ls -d "$T"/vrelay-demo.*)
# The cluster's daemons log there, not in $T: sanitizer reports too.
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$D"/*.log \
    >/dev/null 2>&1; then
	fail "sanitizer report in $(grep -l -E \
	    'ERROR: (Address|Leak)Sanitizer|runtime error:' "$D"/*.log)"
fi
grep -q 'migrated from' "$D"/cvm*.log || fail "no containerVM migrated"
grep -q 'session-resumed' "$D"/cvm*.log || fail "no agent session resumed"
grep -q 'session-resumed' "$D"/relay-h*.log ||
    fail "no agentless session resumed at its relay"
exit 0
