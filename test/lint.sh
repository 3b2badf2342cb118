#!/bin/sh
# lint.sh -- the project's mechanical rules (curl checksrc, OpenBSD KNF):
# no banned functions, 80 columns, and every exported symbol of a
# common/ object carries its file name as prefix.  OBJDIR names the
# compiled objects.  Exit 1 on any finding.
cd "$(dirname "$0")/.." || exit 1
OBJDIR=${OBJDIR:-obj/def}
SRCS="common/*.c vmomi/*.c relay/*.c locator/*.c appliance/*.c guest/*.c include/*.h
test/tools/*.c bench/*.c"
rc=0

# Unbounded or locale-bound string calls and weak randomness/time.
BANNED="sprintf vsprintf strcpy strcat strncat strncpy gets atoi atol
atoll rand srand strtok asctime ctime gmtime localtime tmpnam"
for f in $BANNED; do
	if grep -nE "(^|[^_a-zA-Z0-9.>])$f[ ]*\(" $SRCS; then
		echo "lint: banned function $f"
		rc=1
	fi
done

# 80 columns, tabs at 8.
for f in $SRCS; do
	expand "$f" | awk -v f="$f" 'length > 80 {
		printf "%s:%d: %d columns\n", f, NR, length; bad = 1 }
		END { exit bad }' || rc=1
done

# Exported names: the file name is the prefix (log.c and xmalloc.c
# keep the OpenBSD names fatal/fatalx and x*alloc); libvmomi's public
# API is vmomi_* whichever of its files defines it.
for o in "$OBJDIR"/common/*.o "$OBJDIR"/vmomi/*.o; do
	[ -e "$o" ] || continue
	m=$(basename "$o" .o)
	lib=$(basename "$(dirname "$o")")
	pub=XXX
	[ "$lib" = vmomi ] && pub=vmomi
	nm -g --defined-only "$o" | awk '{ print $3 }' |
	    grep -vE "^${m}_|^${pub}_|^(fatal|fatalx|xmalloc|xcalloc|xreallocarray|xstrdup|xasprintf)$" |
	    sed "s|^|lint: $o exports |" | grep . && rc=1
done
[ $rc = 0 ] && echo "lint: ok"
exit $rc
