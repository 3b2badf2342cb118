# A slow backend: memory stays bounded by the replay cap and the
# watermarks, never by how much the guests want to send, and nothing
# is dropped.  6 sessions of 24 MiB against a backend reading 3 MiB/s
# each; without backpressure ~144 MiB would pile up in the daemons.
. ./lib.sh

start_backend $((BASE + 10)) --slow 3M
start_appliance B $((BASE + 10)) --replay-max 1M
start_relay B $((BASE + 2)) B
start_relay A $((BASE + 1)) B --replay-max 1M

base_a=$(rss_kb "$RELAY_A_PID"); base_b=$(rss_kb "$RELAY_B_PID")
base_app=$(rss_kb "$APP_PID")
traffic A 5 --sessions 6 --bytes 24M --timeout 120 >"$T/result.json" &
TP=$!
max_a=0 max_b=0 max_app=0
for i in $(seq 1 12); do
	sleep 0.5
	a=$(($(rss_kb "$RELAY_A_PID") - base_a))
	b=$(($(rss_kb "$RELAY_B_PID") - base_b))
	p=$(($(rss_kb "$APP_PID") - base_app))
	[ "$a" -gt "$max_a" ] && max_a=$a
	[ "$b" -gt "$max_b" ] && max_b=$b
	[ "$p" -gt "$max_app" ] && max_app=$p
done
log "peak RSS growth KiB: relay A $max_a, relay B $max_b, appliance $max_app"
# 6 sessions x (1 MiB replay + watermarks) is ~12 MiB; allow 32 MiB
# (64 MiB under sanitizers or valgrind, whose allocators keep freed
# memory around).
lim=32768
case "$BINDIR" in */san) lim=65536 ;; esac
[ -n "${VALGRIND:-}" ] && lim=65536
for v in $max_a $max_b $max_app; do
	[ "$v" -lt "$lim" ] || fail "RSS grew $v KiB, over $lim KiB"
done
wait $TP || fail "transfer failed: $(cat "$T/result.json")"
exit 0
