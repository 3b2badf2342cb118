/*
 * kx.c -- the session layer's key exchange and key schedule (kx.h).
 *
 * OpenSSL 3 looks an algorithm up each time a call names one
 * (EVP_PKEY_CTX_new_id() through its NID map, HMAC() for the MAC and
 * the digest): about a tenth of a handshake's cost.  So the X25519
 * keygen context and the HMAC-SHA256 context are made once per process
 * and shared by every sess_ctx (the daemons are single-threaded).
 *
 * The scalar multiplications are the rest of a session's setup CPU (a
 * keygen ~100 us, a derive ~65 us on the benchmark machine; four per
 * session over both ends).  So a process reuses its X25519 key pair for
 * KX_USES sessions or KX_SECONDS, whichever ends first, and keeps the
 * shared values of its current key with the last KX_CACHE peer keys:
 * sessions between the same two processes then make no scalar
 * multiplication at all.  Every session's secret stays its own (the
 * KDF takes the session id and both ends' fresh nonces), and what a key
 * pair could reveal while it lives the process's memory holds anyway
 * (the secrets themselves).  A timer drops the pair at the end of its
 * lifetime even when no session asks for one: a process gone quiet
 * does not keep it.  A peer neither sees nor depends on this: the wire
 * is unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kx.h"
#include "xtime.h"

static EVP_PKEY_CTX	*kx_gen;	/* X25519 keygen, initialised */
static EVP_MAC		*kx_hmac;
static EVP_MAC_CTX	*kx_mac;	/* HMAC-SHA256, keyed per use */
static unsigned		 kx_users;

static EVP_PKEY		*kx_key;	/* the current key pair */
static uint8_t		 kx_pub[PROTO_KEY_LEN];
static unsigned		 kx_uses;	/* sessions given kx_key */
static long long	 kx_born;	/* monotonic ms */
static struct event	*kx_expiry;	/* drops kx_key at its lifetime */
static unsigned		 kx_max_uses = KX_USES;
static long long	 kx_max_ms = KX_SECONDS * 1000LL;

/* Shared values of kx_key with recent peers; wiped when it changes. */
static struct {
	int		used;
	uint8_t		peer[PROTO_KEY_LEN];
	uint8_t		shared[PROTO_KEY_LEN];
}			 kx_cache[KX_CACHE];
static unsigned		 kx_cache_next;

/* Forget the current key pair and every shared value made with it. */
static void
kx_drop(void)
{
	if (kx_expiry != NULL)
		evtimer_del(kx_expiry);
	EVP_PKEY_free(kx_key);
	kx_key = NULL;
	kx_uses = 0;
	OPENSSL_cleanse(kx_cache, sizeof(kx_cache));
	kx_cache_next = 0;
}

/* The current pair's lifetime is over. */
static void
kx_expiry_cb(evutil_socket_t fd, short ev, void *arg)
{
	kx_drop();
}

/* Make the shared contexts (first user); OpenSSL without them is broken. */
void
kx_ref(struct event_base *base)
{
	static char	digest[] = "SHA256";
	OSSL_PARAM	params[2];

	if (kx_users++ > 0)
		return;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((kx_gen = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL)) ==
	    NULL || EVP_PKEY_keygen_init(kx_gen) != 1 ||
	    (kx_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (kx_mac = EVP_MAC_CTX_new(kx_hmac)) == NULL ||
	    EVP_MAC_CTX_set_params(kx_mac, params) != 1 ||
	    (kx_expiry = evtimer_new(base, kx_expiry_cb, NULL)) == NULL)
		abort();	/* libcrypto without X25519 or HMAC-SHA256 */
}

/* Drop the shared contexts and the key pair with their last user. */
void
kx_unref(void)
{
	if (kx_users == 0 || --kx_users > 0)
		return;
	kx_drop();
	event_free(kx_expiry);
	kx_expiry = NULL;
	EVP_PKEY_CTX_free(kx_gen);
	EVP_MAC_CTX_free(kx_mac);
	EVP_MAC_free(kx_hmac);
	kx_gen = NULL;
	kx_mac = NULL;
	kx_hmac = NULL;
}

/*
 * The key pair for one more session, in *KEYP (a reference of its own)
 * and PUB: the current one, or a fresh one once it is used up or old.
 */
int
kx_keygen(EVP_PKEY **keyp, uint8_t pub[PROTO_KEY_LEN])
{
	EVP_PKEY	*key = NULL;
	size_t		 len = PROTO_KEY_LEN;
	long long	 now = xtime_mono_ms();
	struct timeval	 tv;

	*keyp = NULL;
	if (kx_key == NULL || kx_uses >= kx_max_uses ||
	    now - kx_born >= kx_max_ms) {
		if (EVP_PKEY_keygen(kx_gen, &key) != 1)
			return (-1);
		if (EVP_PKEY_get_raw_public_key(key, kx_pub, &len) != 1 ||
		    len != PROTO_KEY_LEN) {
			EVP_PKEY_free(key);
			return (-1);
		}
		kx_drop();
		kx_key = key;
		kx_born = now;
		xtime_tv(kx_max_ms, &tv);
		evtimer_add(kx_expiry, &tv);
	}
	if (EVP_PKEY_up_ref(kx_key) != 1)
		return (-1);
	kx_uses++;
	*keyp = kx_key;
	memcpy(pub, kx_pub, PROTO_KEY_LEN);
	return (0);
}

/* The X25519 shared secret between KEY and the peer's public key. */
int
kx_derive(EVP_PKEY *key, const uint8_t peer[PROTO_KEY_LEN],
    uint8_t shared[PROTO_KEY_LEN])
{
	EVP_PKEY	*pk;
	EVP_PKEY_CTX	*pctx = NULL;
	size_t		 len = PROTO_KEY_LEN;
	unsigned	 i;
	int		 r = -1;

	if (key == kx_key) {
		for (i = 0; i < KX_CACHE && kx_cache[i].used; i++) {
			if (memcmp(kx_cache[i].peer, peer,
			    PROTO_KEY_LEN) == 0) {
				memcpy(shared, kx_cache[i].shared,
				    PROTO_KEY_LEN);
				return (0);
			}
		}
	}
	pk = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer,
	    PROTO_KEY_LEN);
	if (pk == NULL)
		return (-1);
	if ((pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_derive_init(pctx) != 1 ||
	    EVP_PKEY_derive_set_peer(pctx, pk) != 1 ||
	    EVP_PKEY_derive(pctx, shared, &len) != 1 || len != PROTO_KEY_LEN)
		goto out;
	if (key == kx_key) {
		i = kx_cache_next++ % KX_CACHE;
		kx_cache[i].used = 1;
		memcpy(kx_cache[i].peer, peer, PROTO_KEY_LEN);
		memcpy(kx_cache[i].shared, shared, PROTO_KEY_LEN);
	}
	r = 0;
out:
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pk);
	return (r);
}

static uint8_t *
put64(uint8_t *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
	return (p + 8);
}

/*
 * HMAC-SHA256 under KEY of a label, the session id, both nonces (none
 * for the ticket) and an optional tail (public keys or an offset).
 */
static void
kx_kdf(const uint8_t key[PROTO_MAC_LEN], const char *label, uint64_t sid,
    const uint8_t *nc, const uint8_t *ns, const uint8_t *tail, size_t tlen,
    uint8_t out[PROTO_MAC_LEN])
{
	uint8_t		 buf[32 + 8 + 2 * PROTO_NONCE_LEN + 2 * PROTO_KEY_LEN];
	uint8_t		*p = buf;
	size_t		 llen = strlen(label), olen;

	if (llen > 32 || tlen > 2 * PROTO_KEY_LEN)
		abort();	/* our own labels and tails */
	memcpy(p, label, llen);
	p += llen;
	p = put64(p, sid);
	if (nc != NULL) {
		memcpy(p, nc, PROTO_NONCE_LEN);
		p += PROTO_NONCE_LEN;
		memcpy(p, ns, PROTO_NONCE_LEN);
		p += PROTO_NONCE_LEN;
	}
	if (tlen > 0) {
		memcpy(p, tail, tlen);
		p += tlen;
	}
	if (EVP_MAC_init(kx_mac, key, PROTO_MAC_LEN, NULL) != 1 ||
	    EVP_MAC_update(kx_mac, buf, (size_t)(p - buf)) != 1 ||
	    EVP_MAC_final(kx_mac, out, &olen, PROTO_MAC_LEN) != 1 ||
	    olen != PROTO_MAC_LEN)
		abort();	/* keyed HMAC-SHA256 cannot fail */
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* The session secret from KEY and the peer's public key. */
int
kx_secret(EVP_PKEY *key, const uint8_t peer[PROTO_KEY_LEN], uint64_t sid,
    const uint8_t *nc, const uint8_t *ns, const uint8_t *pc,
    const uint8_t *ps, uint8_t secret[PROTO_MAC_LEN])
{
	uint8_t	shared[PROTO_KEY_LEN], pubs[2 * PROTO_KEY_LEN];

	if (kx_derive(key, peer, shared) != 0)
		return (-1);
	memcpy(pubs, pc, PROTO_KEY_LEN);
	memcpy(pubs + PROTO_KEY_LEN, ps, PROTO_KEY_LEN);
	kx_kdf(shared, "vrelay-v1-secret", sid, nc, ns, pubs, sizeof(pubs),
	    secret);
	OPENSSL_cleanse(shared, sizeof(shared));
	return (0);
}

/* The resume proof for NEXT under KEY. */
void
kx_proof(const uint8_t key[PROTO_MAC_LEN], uint64_t sid, const uint8_t *nc,
    const uint8_t *ns, uint64_t next, uint8_t mac[PROTO_MAC_LEN])
{
	uint8_t	tail[8];

	put64(tail, next);
	kx_kdf(key, "vrelay-v1-proof", sid, nc, ns, tail, sizeof(tail), mac);
}

/*
 * The server's nonce for a resume in one trip: each secret implies
 * one, which the server accepts once (protocol.md, "RESUME_PROOF").
 */
void
kx_ticket(const uint8_t secret[PROTO_MAC_LEN], uint64_t sid,
    uint8_t nonce[PROTO_NONCE_LEN])
{
	kx_kdf(secret, "vrelay-v3-ticket", sid, NULL, NULL, NULL, 0, nonce);
}

/* After a resume: a secret is good for one use only. */
void
kx_rotate(uint8_t secret[PROTO_MAC_LEN], uint64_t sid, const uint8_t *nc,
    const uint8_t *ns)
{
	uint8_t	next[PROTO_MAC_LEN];

	kx_kdf(secret, "vrelay-v1-rotate", sid, nc, ns, NULL, 0, next);
	memcpy(secret, next, sizeof(next));
	OPENSSL_cleanse(next, sizeof(next));
}

/* How long the current pair has lived, in ms; -1 if there is none. */
long long
kx_age_ms(void)
{
	return (kx_key != NULL ? xtime_mono_ms() - kx_born : -1);
}

/* Limits other than KX_USES and KX_SECONDS; the current pair goes. */
void
kx_set_limits(unsigned uses, long long ms)
{
	kx_max_uses = uses > 0 ? uses : KX_USES;
	kx_max_ms = ms > 0 ? ms : KX_SECONDS * 1000LL;
	kx_drop();
}
