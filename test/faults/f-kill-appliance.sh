# kill -9 of vappliance (every session's server end) mid-transfer,
# restarted 0.5 s later on the same host.  Per architecture.md its
# sessions are gone: while it is away the appliance host's relay
# answers not-appliance-host (transient), and the first resume after
# the restart gets ERROR unknown-session, so every client end (both
# agents, the plain guest's relay) closes with that reason at once,
# not at its hold time, and its program sees the connection end,
# never a wrong byte.  Relays and agents live on; new sessions work.
. ./faults.sh

cl_start
cl_traffic_start 20
all_established || fail "sessions did not open"
sleep 1
t_kill=$(cl_now)
cl_app_kill
sleep 0.5
cl_app_start
t_back=$(cl_now)
closed() {
	[ "$(cat "$T"/cvm*.log "$T/relay-h2.log" | grep -c \
	    'session-close .*unknown-session')" = 8 ]
}
until_ok 5 closed || fail "not every client end closed with unknown-session: \
$(grep -h 'session-close' "$T"/cvm*.log "$T/relay-h2.log" | head -3)"
t_closed=$(cl_now)
cl_traffic_wait && fail "generators passed with the appliance killed"
ft verdict "$T" --fail cvm1,cvm2,plain >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
# While it was away, h1's relay refused legs with the transient error.
grep -q 'mesh leg from .* refused: appliance vsock://3:1024 unreachable' \
    "$T/relay-h1.log" || fail "h1's relay did not refuse legs meanwhile"
for s in "$T/relay-h2.sock" "$T"/cvm*.ctl; do
	[ "$(sess_count "$s")" = 0 ] || fail "sessions left on $s"
done
all_answer || fail "a daemon does not answer"
"$BIN/vtraffic" run --connect "unix:$T/cvm1.sock" --sessions 2 --bytes 1M \
    >"$T/after.json" || fail "new sessions failed: $(cat "$T/after.json")"
log "appliance back $((t_back - t_kill)) ms after the kill, every client \
end closed $((t_closed - t_kill)) ms after it"
exit 0
