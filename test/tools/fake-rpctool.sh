#!/bin/sh
# fake-rpctool.sh -- stands in for open-vm-tools' vmware-rpctool in the
# regress scenarios (t-guestinfo.sh): "info-set guestinfo.KEY VALUE"
# becomes `vlocator guestinfo set VM guestinfo.KEY=VALUE` against the
# vCenter simulator, "info-get guestinfo.KEY" a `vlocator guestinfo get`.
# Like the real tool it takes the whole command as one argument.
#
#   FAKE_RPCTOOL_VLOCATOR  the vlocator binary
#   FAKE_RPCTOOL_VM        the VM this "guest" is
#   FAKE_RPCTOOL_CONF      a vlocator.json with vcenter and credentials
#   FAKE_RPCTOOL_LOG       every call is appended here (optional)
#   FAKE_RPCTOOL_HANG      if set, ignore SIGTERM and sleep this many
#                          seconds instead (a tool stuck in its call)
set -u
cmd=${1-}
[ -n "${FAKE_RPCTOOL_LOG-}" ] && printf '%.200s\n' "$cmd" >>"$FAKE_RPCTOOL_LOG"
if [ -n "${FAKE_RPCTOOL_HANG-}" ]; then
	trap '' TERM
	exec sleep "$FAKE_RPCTOOL_HANG"
fi
case $cmd in
"info-set guestinfo."*)
	rest=${cmd#info-set }
	key=${rest%% *}
	case $rest in
	*" "*)	value=${rest#* } ;;
	*)	value= ;;
	esac
	exec "$FAKE_RPCTOOL_VLOCATOR" guestinfo set "$FAKE_RPCTOOL_VM" \
	    "$key=$value" -c "$FAKE_RPCTOOL_CONF"
	;;
"info-get guestinfo."*)
	exec "$FAKE_RPCTOOL_VLOCATOR" guestinfo get "$FAKE_RPCTOOL_VM" \
	    "${cmd#info-get }" -c "$FAKE_RPCTOOL_CONF" --property config
	;;
*)
	echo "Unknown command" >&2
	exit 1
	;;
esac
