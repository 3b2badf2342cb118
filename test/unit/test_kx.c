/*
 * test_kx.c -- common/kx.c: the process's X25519 key pair is reused
 * within its limits and replaced after them, every shared value (from
 * the cache or not) is the one the peer computes on its side, and the
 * key schedule is the one docs/protocol.md writes down, recomputed here
 * with libcrypto's one-shot calls.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <time.h>

#include <cmocka.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "kx.h"
#include "../refkdf.h"

/* A peer: its own key pair, made without kx.c. */
struct peer {
	EVP_PKEY	*key;
	uint8_t		 pub[PROTO_KEY_LEN];
};

static void
peer_make(struct peer *p)
{
	size_t	len = PROTO_KEY_LEN;

	p->key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	assert_non_null(p->key);
	assert_int_equal(EVP_PKEY_get_raw_public_key(p->key, p->pub, &len),
	    1);
}

/* What the peer computes: X25519(its private key, PUB). */
static void
peer_shared(const struct peer *p, const uint8_t pub[PROTO_KEY_LEN],
    uint8_t out[PROTO_KEY_LEN])
{
	EVP_PKEY	*k;
	EVP_PKEY_CTX	*c;
	size_t		 len = PROTO_KEY_LEN;

	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub,
	    PROTO_KEY_LEN);
	assert_non_null(k);
	c = EVP_PKEY_CTX_new(p->key, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_derive_init(c), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(c, k), 1);
	assert_int_equal(EVP_PKEY_derive(c, out, &len), 1);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(k);
}

/* kx_derive of KEY with the peer must be the peer's own computation. */
static void
derive_is(EVP_PKEY *key, const uint8_t pub[PROTO_KEY_LEN],
    const struct peer *p)
{
	uint8_t	got[PROTO_KEY_LEN], want[PROTO_KEY_LEN];

	assert_int_equal(kx_derive(key, p->pub, got), 0);
	peer_shared(p, pub, want);
	assert_memory_equal(got, want, PROTO_KEY_LEN);
}

static int
setup(void **state)
{
	struct event_base	*base;

	if ((base = event_base_new()) == NULL)
		return (-1);
	kx_ref(base);
	*state = base;
	return (0);
}

static int
teardown(void **state)
{
	kx_set_limits(0, 0);
	kx_unref();
	event_base_free(*state);
	return (0);
}

/* Sessions share the key pair; each holds its own reference. */
static void
test_reuse(void **state)
{
	EVP_PKEY	*a, *b;
	uint8_t		 pa[PROTO_KEY_LEN], pb[PROTO_KEY_LEN];
	struct peer	 p;

	(void)state;
	peer_make(&p);
	assert_int_equal(kx_keygen(&a, pa), 0);
	assert_int_equal(kx_keygen(&b, pb), 0);
	assert_memory_equal(pa, pb, PROTO_KEY_LEN);
	EVP_PKEY_free(a);
	derive_is(b, pb, &p);
	EVP_PKEY_free(b);
	EVP_PKEY_free(p.key);
}

/* Shared values with several peers, first computed then cached. */
static void
test_derive_cache(void **state)
{
	EVP_PKEY	*k;
	uint8_t		 pub[PROTO_KEY_LEN];
	uint8_t		 s1[PROTO_KEY_LEN], s2[PROTO_KEY_LEN];
	struct peer	 p1, p2;
	int		 i;

	(void)state;
	peer_make(&p1);
	peer_make(&p2);
	assert_int_equal(kx_keygen(&k, pub), 0);
	for (i = 0; i < 3; i++) {
		derive_is(k, pub, &p1);
		derive_is(k, pub, &p2);
	}
	assert_int_equal(kx_derive(k, p1.pub, s1), 0);
	assert_int_equal(kx_derive(k, p2.pub, s2), 0);
	assert_memory_not_equal(s1, s2, PROTO_KEY_LEN);
	EVP_PKEY_free(k);
	EVP_PKEY_free(p1.key);
	EVP_PKEY_free(p2.key);
}

/* More peers than the cache holds: the evicted ones are recomputed. */
static void
test_cache_full(void **state)
{
	struct peer	 p[KX_CACHE + 3];
	EVP_PKEY	*k;
	uint8_t		 pub[PROTO_KEY_LEN];
	size_t		 i;

	(void)state;
	assert_int_equal(kx_keygen(&k, pub), 0);
	for (i = 0; i < KX_CACHE + 3; i++) {
		peer_make(&p[i]);
		derive_is(k, pub, &p[i]);
	}
	for (i = 0; i < KX_CACHE + 3; i++)
		derive_is(k, pub, &p[i]);
	for (i = 0; i < KX_CACHE + 3; i++)
		EVP_PKEY_free(p[i].key);
	EVP_PKEY_free(k);
}

/*
 * After its uses a new key pair comes; one a session still holds keeps
 * deriving right, and the new one does not answer from the old cache.
 */
static void
test_rotate_uses(void **state)
{
	EVP_PKEY	*k[4];
	uint8_t		 pub[4][PROTO_KEY_LEN];
	struct peer	 p;
	int		 i;

	(void)state;
	kx_set_limits(3, 0);
	peer_make(&p);
	for (i = 0; i < 3; i++)
		assert_int_equal(kx_keygen(&k[i], pub[i]), 0);
	derive_is(k[2], pub[2], &p);
	assert_int_equal(kx_keygen(&k[3], pub[3]), 0);
	assert_memory_equal(pub[0], pub[2], PROTO_KEY_LEN);
	assert_memory_not_equal(pub[2], pub[3], PROTO_KEY_LEN);
	derive_is(k[0], pub[0], &p);
	derive_is(k[3], pub[3], &p);
	derive_is(k[1], pub[1], &p);
	derive_is(k[3], pub[3], &p);
	for (i = 0; i < 4; i++)
		EVP_PKEY_free(k[i]);
	EVP_PKEY_free(p.key);
}

/*
 * After its lifetime a new key pair comes; a process that makes no
 * session meanwhile does not keep the old one (its timer drops it).
 */
static void
test_rotate_age(void **state)
{
	struct event_base	*base = *state;
	EVP_PKEY		*a, *b, *c;
	uint8_t			 pa[PROTO_KEY_LEN], pb[PROTO_KEY_LEN];
	uint8_t			 pc[PROTO_KEY_LEN];
	struct timespec		 ts = { 0, 80 * 1000 * 1000 };

	kx_set_limits(0, 50);
	assert_true(kx_age_ms() == -1);
	assert_int_equal(kx_keygen(&a, pa), 0);
	assert_true(kx_age_ms() >= 0);
	assert_int_equal(kx_keygen(&b, pb), 0);
	assert_memory_equal(pa, pb, PROTO_KEY_LEN);
	nanosleep(&ts, NULL);
	assert_int_equal(kx_keygen(&c, pc), 0);
	assert_memory_not_equal(pa, pc, PROTO_KEY_LEN);
	/* No keygen now: the loop's timer ends the pair. */
	assert_true(kx_age_ms() >= 0);
	nanosleep(&ts, NULL);
	(void)event_base_loop(base, EVLOOP_NONBLOCK);
	assert_true(kx_age_ms() == -1);
	/* A session that still holds it derives on. */
	{
		struct peer	p;

		peer_make(&p);
		derive_is(c, pc, &p);
		EVP_PKEY_free(p.key);
	}
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(c);
}

/* A public key libcrypto refuses fails every time; nothing is kept. */
static void
test_bad_peer(void **state)
{
	EVP_PKEY	*k;
	uint8_t		 pub[PROTO_KEY_LEN], zero[PROTO_KEY_LEN];
	uint8_t		 out[PROTO_KEY_LEN];

	(void)state;
	memset(zero, 0, sizeof(zero));
	assert_int_equal(kx_keygen(&k, pub), 0);
	assert_int_equal(kx_derive(k, zero, out), -1);
	assert_int_equal(kx_derive(k, zero, out), -1);
	EVP_PKEY_free(k);
}

/* docs/protocol.md's kdf, as refkdf.h writes it down. */
static void
ref_kdf(const uint8_t *key, const char *label, uint64_t sid,
    const uint8_t *nc, const uint8_t *ns, const uint8_t *tail, size_t tlen,
    uint8_t out[PROTO_MAC_LEN])
{
	assert_int_equal(refkdf(key, label, sid, nc, ns, tail, tlen, out), 0);
}

/* The secret, a proof and a rotation, as protocol.md defines them. */
static void
test_schedule(void **state)
{
	EVP_PKEY	*k;
	struct peer	 p;
	uint8_t		 pub[PROTO_KEY_LEN], shared[PROTO_KEY_LEN];
	uint8_t		 nc[PROTO_NONCE_LEN], ns[PROTO_NONCE_LEN];
	uint8_t		 pubs[2 * PROTO_KEY_LEN], tail[8];
	uint8_t		 got[PROTO_MAC_LEN], want[PROTO_MAC_LEN];
	uint8_t		 mac[PROTO_MAC_LEN];
	uint64_t	 sid = 0x0123456789abcdefULL, next = 0x1122334455ULL;
	int		 i;

	(void)state;
	memset(nc, 0xc1, sizeof(nc));
	memset(ns, 0x5e, sizeof(ns));
	peer_make(&p);
	assert_int_equal(kx_keygen(&k, pub), 0);

	/* We are the client: pub_c is ours. */
	assert_int_equal(kx_secret(k, p.pub, sid, nc, ns, pub, p.pub, got),
	    0);
	peer_shared(&p, pub, shared);
	memcpy(pubs, pub, PROTO_KEY_LEN);
	memcpy(pubs + PROTO_KEY_LEN, p.pub, PROTO_KEY_LEN);
	ref_kdf(shared, "vrelay-v1-secret", sid, nc, ns, pubs, sizeof(pubs),
	    want);
	assert_memory_equal(got, want, PROTO_MAC_LEN);

	for (i = 7; i >= 0; i--)
		tail[7 - i] = (uint8_t)(next >> (i * 8));
	kx_proof(got, sid, nc, ns, next, mac);
	ref_kdf(want, "vrelay-v1-proof", sid, nc, ns, tail, sizeof(tail),
	    shared);
	assert_memory_equal(mac, shared, PROTO_MAC_LEN);

	ref_kdf(want, "vrelay-v1-rotate", sid, nc, ns, NULL, 0, shared);
	kx_rotate(got, sid, nc, ns);
	assert_memory_equal(got, shared, PROTO_MAC_LEN);

	EVP_PKEY_free(k);
	EVP_PKEY_free(p.key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_derive_cache, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cache_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rotate_uses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rotate_age, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_peer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_schedule, setup,
		    teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
