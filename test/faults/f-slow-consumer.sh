# Slow consumers: 4 programs behind cvm1's agent and 4 agentless
# guests on h2 send as fast as they are let and read the echo at
# 4 KiB/s, for 7 s, next to the usual full-rate sessions (some through
# the same agent and relays).  With --replay-max 1M, what each session
# end holds is bounded (operations.md: the replay window; the far end
# never sends more than that unacknowledged), so backpressure reaches
# each slow program's own socket and nothing piles up: every daemon's
# RSS stays within 4 x replay-max per session it holds, 1 MiB per leg
# it forwards and 16 MiB, and stops growing; the other sessions keep
# their rate and lose nothing.
SESS_ARGS="--keepalive 500ms --replay-max 1M"
. ./faults.sh

cl_start
# name:pid:sessions it is an end of:legs it forwards, in the slow
# phase (h1 forwards every leg into the appliance; h2 cvm1's agent
# legs; h3 cvm2's).
WHO="relay-h1:$CL_RELAY_PID_1:0:16 relay-h2:$CL_RELAY_PID_2:6:7 \
relay-h3:$CL_RELAY_PID_3:0:3 vappliance:$CL_APP_PID:16:0 \
vguest-cvm1:$CL_CVM_PID_1:7:0 vguest-cvm2:$CL_CVM_PID_2:3:0"
RSS_PIDS=$(for w in $WHO; do echo "$w" | cut -d: -f2; done)
for p in $RSS_PIDS; do eval "BASE_$p=$(rss_kb "$p")"; done
cl_traffic_start 11
all_established || fail "sessions did not open"
sleep 1.5
t_slow=$(cl_now)
SLOW=""
for i in 1 2 3 4; do
	ft slow "unix:$T/cvm1.sock" 7 4096 >"$T/slow-agent-$i.json" &
	SLOW="$SLOW $!"
	ft slow vsock://2:2000 7 4096 --vsock-dir "$T/h2" \
	    --vsock-cid $((30 + i)) >"$T/slow-plain-$i.json" &
	SLOW="$SLOW $!"
done
sleep_rss 3.5
for p in $RSS_PIDS; do eval "HALF_$p=$(peak "$p")"; done
sleep_rss 4
for p in $SLOW; do wait "$p" || fail "a slow consumer failed: \
$(cat "$T"/slow-*.json)"; done
t_end=$(cl_now)
for f in "$T"/slow-*.json; do
	r=$(json_get received <"$f")
	[ "$r" -ge 16384 ] || fail "$f: only $r bytes read in 7 s"
done
log "a slow consumer: $(cat "$T/slow-plain-1.json")"
# Bounded: within 4 x replay-max per session held (the windows both
# ways, the leg's output, allocator slack), 1 MiB per forward (512 KiB
# each way, fwd.c) and 16 MiB; and flat: the last 4 s add at most
# 4 MiB and a tenth of the first 3.5 s's growth (a pile-up would add
# megabytes a second: the slow programs offer that much).
for w in $WHO; do
	IFS=: read -r name p n f <<EOF
$w
EOF
	eval "b=\$BASE_$p; h=\$HALF_$p"
	grew=$(($(peak "$p") - b))
	lim=$(((n * 4 + f) * 1024 + 16384))
	case "$BINDIR" in */san) lim=$((lim * 2)) ;; esac
	log "$name: RSS $b KiB, peak +$grew KiB (limit $lim), +$((h - b))" \
	    "after 3.5 s"
	[ "$grew" -le "$lim" ] || fail "$name grew $grew KiB, over $lim"
	[ "$(peak "$p")" -le $((h + 4096 + (h - b) / 10)) ] ||
	    fail "$name still growing: $((h - b)) KiB, then $grew KiB"
done
for l in cvm1 cvm2 plain; do
	before=$(rate_of "$l" $((t_slow - 1000)) "$t_slow" min)
	during=$(rate_of "$l" $((t_slow + 1000)) $((t_end - 500)) min)
	log "$l per-session KiB/s: $before before, $during beside the slow ones"
	[ "$during" -ge $((before / 2)) ] || fail "$l slowed down"
done
cl_traffic_wait || log "a generator failed (verdict below)"
ft verdict "$T" --ok cvm1,cvm2,plain >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
all_answer || fail "a daemon does not answer"
exit 0
