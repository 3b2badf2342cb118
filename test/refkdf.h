/*
 * refkdf.h -- docs/protocol.md's key schedule, written apart from
 * common/kx.c so that tests and fuzzers check the daemons' against the
 * document rather than against themselves.  Header-only (static
 * inline); include after "proto.h".
 */
#ifndef VRELAY_REFKDF_H
#define VRELAY_REFKDF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/*
 * HMAC-SHA256 under KEY of LABEL || sid (8 bytes big-endian) || NC ||
 * NS (both left out when NC is NULL) || TAIL (at most two public keys) into OUT.  0, or -1 if
 * libcrypto failed or the message would not fit.
 */
static inline int
refkdf(const uint8_t *key, const char *label, uint64_t sid,
    const uint8_t *nc, const uint8_t *ns, const uint8_t *tail, size_t tlen,
    uint8_t out[PROTO_MAC_LEN])
{
	uint8_t	 buf[32 + 8 + 2 * PROTO_NONCE_LEN + 2 * PROTO_KEY_LEN];
	size_t	 n, olen = 0;
	int	 i;

	n = strlen(label);
	if (n > 32 || tlen > 2 * PROTO_KEY_LEN)
		return (-1);
	memcpy(buf, label, n);
	for (i = 7; i >= 0; i--)
		buf[n++] = (uint8_t)(sid >> (i * 8));
	if (nc != NULL) {	/* the ticket has no nonces */
		memcpy(buf + n, nc, PROTO_NONCE_LEN);
		n += PROTO_NONCE_LEN;
		memcpy(buf + n, ns, PROTO_NONCE_LEN);
		n += PROTO_NONCE_LEN;
	}
	if (tlen > 0)
		memcpy(buf + n, tail, tlen);
	n += tlen;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key,
	    PROTO_MAC_LEN, buf, n, out, PROTO_MAC_LEN, &olen) == NULL ||
	    olen != PROTO_MAC_LEN)
		return (-1);
	return (0);
}

#endif
