#!/bin/sh
# run.sh -- run every regress scenario (t-*.sh), print PASS/FAIL for
# each, exit nonzero if any failed (tmux regress/Makefile style).
# BINDIR must name the built binaries; ONLY=t-name runs one.
cd "$(dirname "$0")" || exit 1
pass=0
failed=""
for t in t-*.sh; do
	name=${t%.sh}
	[ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ] && continue
	start=$(date +%s)
	if bash "./$t"; then
		echo "PASS $name ($(($(date +%s) - start))s)"
		pass=$((pass + 1))
	else
		echo "FAIL $name ($(($(date +%s) - start))s)"
		failed="$failed $name"
	fi
done
echo "regress: $pass passed${failed:+, failed:$failed}"
[ -z "$failed" ]
