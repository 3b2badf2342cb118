/*
 * kx.h -- the session layer's key exchange (docs/protocol.md,
 * "Handshake: NEW"): X25519 key pairs, their shared values and the
 * HMAC-SHA256 key schedule.  A process reuses its key pair for a
 * bounded number of sessions and time and remembers the shared values
 * it made with it, so sessions between the same two processes cost no
 * scalar multiplication.  One set of contexts per process, counted by
 * kx_ref() and kx_unref(); single-threaded, on the first user's event
 * base (a timer drops the pair at the end of its lifetime).
 */
#ifndef VRELAY_KX_H
#define VRELAY_KX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

struct event_base;

#include "proto.h"

#define KX_USES		1024	/* sessions per key pair */
#define KX_SECONDS	60	/* a key pair's lifetime */
#define KX_CACHE	64	/* peers' shared values kept per key pair */

/* Take a reference on the process's contexts (made by the first). */
void	kx_ref(struct event_base *);
/* Drop it; the last one frees the contexts and wipes the key pair. */
void	kx_unref(void);
/*
 * The key pair for one more session: a reference of its own in *KEYP
 * (EVP_PKEY_free it), its public key in PUB.  0, or -1 if libcrypto
 * failed.
 */
int	kx_keygen(EVP_PKEY **, uint8_t [PROTO_KEY_LEN]);
/* The X25519 shared value of a key and a peer's public key; 0 or -1. */
int	kx_derive(EVP_PKEY *, const uint8_t [PROTO_KEY_LEN],
	    uint8_t [PROTO_KEY_LEN]);
/*
 * The session secret (protocol.md): KEY's shared value with PEER, then
 * HMAC-SHA256 of "vrelay-v1-secret", SID, nonces NC and NS and public
 * keys PC and PS (client's first) into SECRET.  0, or -1 on a public
 * key libcrypto refuses (such as a low-order point).
 */
int	kx_secret(EVP_PKEY *, const uint8_t [PROTO_KEY_LEN], uint64_t,
	    const uint8_t *, const uint8_t *, const uint8_t *,
	    const uint8_t *, uint8_t [PROTO_MAC_LEN]);
/* The PROOF mac for NEXT under a secret, session id and both nonces. */
void	kx_proof(const uint8_t [PROTO_MAC_LEN], uint64_t, const uint8_t *,
	    const uint8_t *, uint64_t, uint8_t [PROTO_MAC_LEN]);
/*
 * The server nonce a secret implies for a resume in one trip:
 * HMAC-SHA256 of "vrelay-v3-ticket" and SID.
 */
void	kx_ticket(const uint8_t [PROTO_MAC_LEN], uint64_t,
	    uint8_t [PROTO_NONCE_LEN]);
/* Replace a secret by its successor after a resume (one use each). */
void	kx_rotate(uint8_t [PROTO_MAC_LEN], uint64_t, const uint8_t *,
	    const uint8_t *);
/* How long the current key pair has lived (ms); -1: none now. */
long long kx_age_ms(void);
/* Limits other than KX_USES and KX_SECONDS (0: the default); tests. */
void	kx_set_limits(unsigned, long long);

#endif
