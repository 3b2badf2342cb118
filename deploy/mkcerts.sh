#!/bin/sh
# mkcerts.sh -- mint the cluster CA and the certificates vrelay's
# daemons present to each other (docs/security.md), with openssl(1).
#
#   mkcerts.sh [-d DIR] [-days N] ca
#   mkcerts.sh [-d DIR] [-days N] relay HOST [ADDR ...]
#   mkcerts.sh [-d DIR] [-days N] locator [NAME [ADDR ...]]
#   mkcerts.sh [-d DIR] [-days N] appliance [NAME [ADDR ...]]
#
# ca        the cluster CA: DIR/ca.pem and DIR/ca.key (keep ca.key off
#           the hosts: only this script needs it).
# relay     HOST's relay: DIR/HOST.pem and DIR/HOST.key.  HOST is the
#           name vSphere (and --host) gives the ESX host; relays check
#           it when they connect to each other, and the locator when a
#           relay registers.
# locator   DIR/locator.pem and .key (NAME defaults to "vlocator");
#           the only certificate relays take pushes from.
# appliance DIR/appliance.pem and .key (NAME defaults to "vappliance").
#
# ADDR: extra IP addresses or DNS names the certificate also names.
# The role goes in a subjectAltName URI, urn:vrelay:role:ROLE.  Keys
# are EC P-256, written mode 0600; an existing file is never replaced.
set -eu

dir=.
days=825
usage() {
	sed -n '4,8p' "$0" | sed 's/^# *//' >&2
	exit 2
}
die() {
	echo "mkcerts: $*" >&2
	exit 1
}
while [ $# -gt 0 ]; do
	case "$1" in
	-d) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
	-days) [ $# -ge 2 ] || usage; days=$2; shift 2 ;;
	-h|--help) usage ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || usage
command -v openssl >/dev/null || die "openssl(1) not found"
case "$days" in *[!0-9]*|'') die "-days: not a number: $days" ;; esac
mkdir -p "$dir"
umask 077

# A name that is safe as a file name and a DNS SAN.
checkname() {
	case "$1" in
	''|-*|*[!A-Za-z0-9._-]*) die "bad name \"$1\" (letters, digits, . _ -)" ;;
	esac
}

newkey() {
	[ -e "$1" ] && die "$1 exists: remove it first to replace it"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1" 2>/dev/null || die "cannot write key $1"
	chmod 600 "$1"
}

ca() {
	newkey "$dir/ca.key"
	openssl req -x509 -new -key "$dir/ca.key" -sha256 \
	    -days $((days * 4)) -subj "/O=vrelay/CN=vrelay cluster CA" \
	    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -out "$dir/ca.pem" || die "cannot make the CA"
	chmod 644 "$dir/ca.pem"
	echo "mkcerts: CA in $dir/ca.pem (key $dir/ca.key)"
}

# leaf ROLE FILE NAME [ADDR ...]
leaf() {
	role=$1 file=$2 name=$3
	shift 3
	checkname "$name"
	[ -f "$dir/ca.pem" ] && [ -f "$dir/ca.key" ] ||
	    die "no CA in $dir: run \"mkcerts.sh -d $dir ca\" first"
	san="DNS:$name,URI:urn:vrelay:role:$role"
	for a in "$@"; do
		case "$a" in
		*:*|*[!0-9.]*)
			case "$a" in
			*:*) san="$san,IP:$a" ;;
			*) checkname "$a"; san="$san,DNS:$a" ;;
			esac ;;
		*) san="$san,IP:$a" ;;
		esac
	done
	newkey "$dir/$file.key"
	ext=$(mktemp)
	csr=$(mktemp)
	trap 'rm -f "$ext" "$csr"' EXIT
	cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
	openssl req -new -key "$dir/$file.key" -subj "/O=vrelay/OU=$role/CN=$name" \
	    -out "$csr" || die "cannot make a request for $name"
	openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
	    -CAcreateserial -CAserial "$dir/ca.srl" -sha256 -days "$days" \
	    -extfile "$ext" -out "$dir/$file.pem" 2>/dev/null ||
	    die "cannot sign $name"
	chmod 644 "$dir/$file.pem"
	echo "mkcerts: $role $name in $dir/$file.pem ($san)"
}

what=$1
shift
case "$what" in
ca) [ $# -eq 0 ] || usage; ca ;;
relay) [ $# -ge 1 ] || usage; checkname "$1"; leaf relay "$1" "$@" ;;
locator) [ $# -ge 1 ] || set -- vlocator; leaf locator locator "$@" ;;
appliance) [ $# -ge 1 ] || set -- vappliance; leaf appliance appliance "$@" ;;
*) usage ;;
esac
