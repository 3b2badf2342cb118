# A network partition and a lossy link, with hosts as network
# namespaces (skipped on loopback addresses, where a host has no link
# of its own):
#  - h2 (cvm1's agent, the plain guest, its relay) cut off the bridge
#    for 3 s (its veth down): its sessions detach after 1.5 s of
#    silence (keepalive 500 ms), retry, and resume once the link is
#    back, within the 8 s hold time; nothing is lost; h2's relay
#    reconnects to the locator; cvm2 on h3 does not notice;
#  - h3 losing 30 % of its packets both ways for 4 s (tc netem, or an
#    nftables rule where the kernel has no netem): cvm2's
#    sessions slow down (and may detach and resume), and once the loss
#    stops they run at full rate again; nothing is lost.
HOLD=8s
. ./faults.sh

cl_start
[ -n "$CL_BR" ] || skip "no network namespaces here ($CL_NETMODE): no \
link to cut"
cl_traffic_start 16
all_established || fail "sessions did not open"
sleep 1.5
log "h2 partitioned for 3 s"
t_cut=$(cl_now)
cl_link 2 down || fail "cannot take h2's link down"
sleep 3
cl_link 2 up || fail "cannot bring h2's link up"
t_heal=$(cl_now)
all_established 60 || fail "sessions not back 6 s after the partition healed"
t_back=$(cl_now)
grep -q 'session-detached' "$T/relay-h2.log" ||
    fail "the plain guest's sessions never detached: no partition?"
grep -q 'session-detached' "$T/cvm2.log" &&
    fail "cvm2 (h3) was disturbed by h2's partition"
up() {
	"$BIN/vrelay" status --status "$T/relay-h2.sock" --json |
	    json_get uplink.state | grep -qx up
}
until_ok 8 up || fail "h2's relay did not reconnect to the locator"
log "all back $((t_back - t_heal)) ms after the heal"

sleep 1
log "h3: 30 % loss both ways for 4 s"
t_loss=$(cl_now)
if cl_loss 3 30; then
	log "(dropping with $CL_LOSS_HOW)"
	sleep 4
	cl_loss 3 0
	t_fixed=$(cl_now)
	all_established 60 ||
	    fail "sessions not back 6 s after the loss stopped"
	sleep 3
	before=$(rate_of cvm2 $((t_cut - 1500)) "$t_cut" mean)
	lossy=$(rate_of cvm2 "$t_loss" "$t_fixed" mean)
	after=$(rate_of cvm2 $((t_fixed + 2000)) $((t_fixed + 3000)) mean)
	log "cvm2 per-session KiB/s: $before before, $lossy with 30 % loss," \
	    "$after after"
	[ "$after" -ge $((before / 2)) ] ||
	    fail "cvm2 did not recover its rate"
	log "cvm2 detached $(grep -c 'session-detached' "$T/cvm2.log") times" \
	    "under loss: $(grep -m1 -o 'reason="[^"]*"' "$T/cvm2.log")"
else
	log "SKIP the lossy link: no tc netem and no nft here"
fi
cl_traffic_wait || log "a generator failed (verdict below)"
ft verdict "$T" --ok cvm1,cvm2,plain >"$T/verdict.jsonl" ||
    fail "$(cat "$T/verdict.jsonl")"
all_answer || fail "a daemon does not answer"
exit 0
