#!/bin/sh
# run.sh -- run every fault scenario (f-*.sh) one at a time, print
# PASS/FAIL/SKIP for each with its time, exit nonzero if any failed.
# A scenario skips by exiting 77 (lib.sh's skip) after saying why.
# BINDIR must name the built binaries and VCSIMH the simulator;
# ONLY=f-name runs one.
cd "$(dirname "$0")" || exit 1
pass=0
skipped=""
failed=""
t0=$(date +%s)
for t in f-*.sh; do
	name=${t%.sh}
	[ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ] && continue
	start=$(date +%s)
	bash "./$t"
	rc=$?
	took=$(($(date +%s) - start))
	if [ "$rc" = 0 ]; then
		echo "PASS $name (${took}s)"
		pass=$((pass + 1))
	elif [ "$rc" = 77 ]; then
		echo "SKIP $name (${took}s)"
		skipped="$skipped $name"
	else
		echo "FAIL $name (${took}s)"
		failed="$failed $name"
	fi
done
sum="$pass passed"
[ -n "$skipped" ] && sum="$sum, skipped:$skipped"
[ -n "$failed" ] && sum="$sum, failed:$failed"
echo "faults: $sum ($(($(date +%s) - t0))s; load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg))"
[ -z "$failed" ]
