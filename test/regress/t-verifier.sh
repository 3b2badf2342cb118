# The checker itself: every scenario trusts vtraffic, so it must fail a
# corrupted echo and a peer that quits early, in each pattern.
. ./lib.sh

start_backend $((BASE + 10)) --corrupt-at 1000
"$BINDIR/vtraffic" run --connect "tcp://127.0.0.1:$((BASE + 10))" \
    --sessions 3 --bytes 10K >"$T/corrupt.json" &&
    fail "a corrupted echo passed"
[ "$(json_get outcomes.mismatch <"$T/corrupt.json")" = 3 ] ||
    fail "corruption not reported as mismatch: $(cat "$T/corrupt.json")"

# A peer that reads 1000 bytes, then closes without answering.
socat "TCP-LISTEN:$((BASE + 11)),bind=127.0.0.1,reuseaddr,fork" \
    SYSTEM:'head -c 1000 >/dev/null' 2>/dev/null &
PIDS="$PIDS $!"
sleep 0.3
for pattern in echo sink; do
	"$BINDIR/vtraffic" run --connect "tcp://127.0.0.1:$((BASE + 11))" \
	    --sessions 2 --bytes 1M --pattern $pattern >"$T/early.json" &&
	    fail "an early close passed with --pattern $pattern"
	[ "$(json_get ok <"$T/early.json")" = 0 ] ||
	    fail "$pattern: $(cat "$T/early.json")"
done

# And a clean run still passes, so the checks above mean something.
start_backend $((BASE + 12))
check "clean echo" "$BINDIR/vtraffic" run \
    --connect "tcp://127.0.0.1:$((BASE + 12))" --sessions 3 --bytes 10K
exit 0
