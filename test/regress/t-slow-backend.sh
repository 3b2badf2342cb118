# A slow backend: memory stays bounded by the replay cap and the
# watermarks, never by how much the guests want to send, and nothing
# is dropped.  6 sessions of 24 MiB against a backend reading 3 MiB/s
# each; without backpressure ~144 MiB would pile up in the daemons.
. ./lib.sh

start_backend $((BASE + 10)) --slow 3M
start_appliance B $((BASE + 10)) --replay-max 1M
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --replay-max 1M

traffic A 5 --sessions 6 --bytes 24M --timeout 120 >"$T/result.json" &
TP=$!
max_a=0 max_b=0 max_app=0
for i in $(seq 1 12); do
	sleep 0.5
	a=$(rss_kb "$RELAY_A_PID"); b=$(rss_kb "$RELAY_B_PID")
	p=$(rss_kb "$APP_PID")
	[ "$a" -gt "$max_a" ] && max_a=$a
	[ "$b" -gt "$max_b" ] && max_b=$b
	[ "$p" -gt "$max_app" ] && max_app=$p
done
log "peak RSS KiB: relay A $max_a, relay B $max_b, appliance $max_app"
for v in $max_a $max_b $max_app; do
	[ "$v" -lt 40960 ] || fail "RSS $v KiB over 40 MiB"
done
wait $TP || fail "transfer failed: $(cat "$T/result.json")"
exit 0
