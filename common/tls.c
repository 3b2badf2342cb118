/*
 * tls.c -- mutual TLS for the mesh's TCP links, over libevent's
 * bufferevent_openssl.  Design notes:
 *
 * - TLS 1.3 only: both ends are ours, so nothing older need be spoken.
 * - Resumption only where a daemon asks for it (tls_set_resumable: the
 *   relays' mesh, where a vMotion opens a leg per session at once and
 *   full handshakes, two ECDSA signatures and three verifications each,
 *   were most of a 1,000-session resume).  The server's tickets are
 *   stateful (SSL_OP_NO_TICKET: a ticket is the id of a session the
 *   server keeps), one per full handshake; a resumed link gets none and
 *   its session is a copy of the kept one.  A stateless ticket carries
 *   the client's certificate, and OpenSSL 3.0 parsed it again on every
 *   resumed link (its public key through OSSL_DECODER: half the
 *   server's CPU per link, and ~4 KiB of parsed certificate per link
 *   held).  The server keeps the newest TLS_STORE_PER_PEER sessions
 *   per client certificate and TLS_STORE_MAX in all.  The client keeps
 *   the newest ticket per (role, host) and offers it on its next link
 *   to that host, with a fresh X25519 share (psk_dhe_ke: forward
 *   secrecy stays).  The session id context is the demanded role, so a
 *   ticket never resumes a link that demands another role of its peer.
 *   A session carries the time of the full handshake it started from,
 *   and the server resumes it only within TLS_RESUME_MAX_S of that and
 *   while the peer's certificate is valid.  Elsewhere (the locator's
 *   links) no tickets: a server writing one after the handshake could
 *   race a short-lived client's close.
 * - A burst of links to a host (a vMotion, a restarted relay's legs,
 *   the first sessions to a host) would each pay a full handshake if
 *   they all start before a ticket is known good: one held from before
 *   the far relay restarted is not.  So while no link to that host is
 *   up that resumed or brought a ticket, one link probes and the rest
 *   wait (tls_link_wait); the daemon hears when they may go
 *   (tls_set_wake).  A probe that has not proved anything within
 *   TLS_PROBE_MS (a lost SYN costs 1 s) stops holding the others.
 * - One SSL_CTX serves both ends of every link.  What a link demands
 *   of its peer (a role, a host name) is set per connection, and the
 *   verify callback checks the role at depth 0, so a wrong peer never
 *   completes the handshake.
 * - A peer that closes without close_notify is an EOF, not an error:
 *   the session layer above has its own CLOSE, and a relay killed
 *   mid-stream is an event we resume from, not an attack on framing.
 * - SSL_MODE_RELEASE_BUFFERS: an idle leg keeps no 34 KiB buffers.
 * - SSL_MODE_NO_AUTO_CHAIN: we send the chain in --tls-cert as it is;
 *   OpenSSL would otherwise append the CA from the bundle, which every
 *   peer has, and each peer would keep a parsed copy per link.  What
 *   an idle link still costs (~20 KiB, mostly OpenSSL's own per-SSL
 *   state and the peer's parsed certificate) is in docs/benchmarks.md.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "xmalloc.h"
#include "xtime.h"
#include "tree.h"

#define TLS_ROLE_PREFIX		"urn:vrelay:role:"
/*
 * Most bytes per SSL_write of our own: one record.  A write the socket
 * refused is retried by the bufferevent with at most 16 KiB from the
 * front of its output, and OpenSSL wants the retry at least as long.
 */
#define TLS_RECORD_MAX		16384

#define TLS_CACHE_MAX		256	/* peers whose ticket we keep */
#define TLS_RESUME_MAX_S	(2 * 60 * 60)	/* since the full handshake */
#define TLS_STORE_MAX		1024	/* sessions a server keeps */
#define TLS_STORE_PER_PEER	4	/* ... per client certificate */
#define TLS_PROBE_MS		1000	/* a probe holds the others this long */

/*
 * A host we dial links to that demand ROLE of it: its newest ticket,
 * and whether links to it may resume now (tls_link_wait).
 */
struct tls_peer {
	enum tls_role	 role;
	char		*host;
	SSL_SESSION	*sess;		/* newest ticket, or NULL */
	unsigned	 live;		/* links up */
	int		 proven;	/* one resumed or got a ticket */
	long long	 probe_ms;	/* a link that may prove it since; 0 */
};

/* Server: a session our stateful tickets name (the ticket is its id). */
struct tls_stored {
	RB_ENTRY(tls_stored)	 entry;
	TAILQ_ENTRY(tls_stored)	 age;		/* oldest first */
	unsigned char		 id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned int		 idlen;
	SSL_SESSION		*sess;
};
RB_HEAD(tls_store, tls_stored);
TAILQ_HEAD(tls_ages, tls_stored);

struct tls {
	SSL_CTX			*ctx;
	X509			*cert;		/* ours, for status */
	unsigned		 resumable;	/* 1 << role */
	struct tls_peer		 peers[TLS_CACHE_MAX];
	size_t			 npeers;
	size_t			 evict;		/* next slot to reuse */
	void			(*wake)(void *, int);
	void			*wake_arg;
	struct tls_store	 store;		/* server: by session id */
	struct tls_ages		 ages;
	size_t			 nstored;
	uint64_t		 full;		/* handshakes done */
	uint64_t		 resumed;
};

/* Per link: what the ticket callback and the counters need. */
struct tls_link {
	SSL		*ssl;
	char		*host;		/* the host we dialled, or NULL */
	enum tls_role	 role;		/* demanded of the peer */
	int		 counted;	/* its handshake is in the counters */
	int		 up;		/* ... and in its peer's live */
	long long	 probe_ms;	/* its peer's probe since then; 0 */
};

static int	tls_ex_link = -1;	/* SSL ex_data: struct tls_link */

static int	tls_session_current(SSL_SESSION *);
static int	tls_stored_cmp(struct tls_stored *, struct tls_stored *);
static void	tls_store_add(struct tls *, SSL_SESSION *);
RB_GENERATE_STATIC(tls_store, tls_stored, entry, tls_stored_cmp);

static const char *tls_roles[] = {
	[TLS_ROLE_NONE] = "none",
	[TLS_ROLE_RELAY] = "relay",
	[TLS_ROLE_LOCATOR] = "locator",
	[TLS_ROLE_APPLIANCE] = "appliance",
};

static const char *tls_errors[] = {
	[-TLS_OK] = "success",
	[-TLS_E_SYSTEM] = "system error",
	[-TLS_E_CERT] = "cannot load the certificate",
	[-TLS_E_KEY] = "cannot load the private key",
	[-TLS_E_KEYMODE] = "private key is readable by group or others",
	[-TLS_E_MISMATCH] = "private key does not match the certificate",
	[-TLS_E_CA] = "cannot load the CA bundle",
	[-TLS_E_UNTRUSTED] = "certificate does not verify against the CA",
	[-TLS_E_ROLE] = "certificate does not carry the role",
	[-TLS_E_HOST] = "peer certificate does not name the host",
	[-TLS_E_INCOMPLETE] =
	    "--tls-cert, --tls-key and --tls-ca go together",
};

/* A TLS_E_* code as text. */
const char *
tls_strerror(int e)
{
	if (e > 0 || -e >= (int)(sizeof(tls_errors) / sizeof(tls_errors[0])))
		return ("unknown TLS error");
	return (tls_errors[-e]);
}

/* A role's name, as it appears in urn:vrelay:role:NAME. */
const char *
tls_strrole(enum tls_role r)
{
	if ((size_t)r >= sizeof(tls_roles) / sizeof(tls_roles[0]))
		return ("unknown");
	return (tls_roles[r]);
}

/* OpenSSL's last error, for a detail buffer. */
static void
tls_detail(char *buf, size_t len, const char *what)
{
	unsigned long	e;
	const char	*r;

	if (buf == NULL || len == 0)
		return;
	e = ERR_peek_last_error();
	r = e != 0 ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, len, "%s%s%s", what, r != NULL ? ": " : "",
	    r != NULL ? r : "");
	ERR_clear_error();
}

/* Whether CERT carries ROLE in a subjectAltName URI. */
static int
tls_cert_has_role(X509 *cert, enum tls_role role)
{
	GENERAL_NAMES		*sans;
	const GENERAL_NAME	*gn;
	char			 want[64];
	int			 i, found = 0;

	snprintf(want, sizeof(want), TLS_ROLE_PREFIX "%s",
	    tls_strrole(role));
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_URI)
			continue;
		if ((size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier)
		    == strlen(want) && memcmp(ASN1_STRING_get0_data(
		    gn->d.uniformResourceIdentifier), want, strlen(want)) == 0)
			found = 1;
	}
	GENERAL_NAMES_free(sans);
	return (found);
}

/* What link SSL demands of its peer. */
static enum tls_role
tls_link_role(const SSL *ssl)
{
	struct tls_link	*l = SSL_get_ex_data(ssl, tls_ex_link);

	return (l != NULL ? l->role : TLS_ROLE_NONE);
}

/* The peer's chain is verified; at depth 0, check its role too. */
static int
tls_verify_cb(int ok, X509_STORE_CTX *sctx)
{
	SSL		*ssl;
	enum tls_role	 role;

	if (!ok || X509_STORE_CTX_get_error_depth(sctx) != 0)
		return (ok);
	ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	role = tls_link_role(ssl);
	if (role != TLS_ROLE_NONE &&
	    !tls_cert_has_role(X509_STORE_CTX_get_current_cert(sctx), role)) {
		X509_STORE_CTX_set_error(sctx,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return (0);
	}
	return (1);
}

static struct tls_peer *tls_peer_find(struct tls *, enum tls_role,
		    const char *);
static void	tls_peer_proven(struct tls *, struct tls_peer *);

/*
 * Free a link's ex_data with its SSL.  A link we dialled leaves its
 * peer's count; with the last one up gone (a restarted relay resets
 * them all), its ticket must prove itself again.  A probe that ends
 * unproven lets the next link try.
 */
static void
tls_link_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct tls_link	*l = ptr;
	struct tls	*t;
	struct tls_peer	*p;

	if (l == NULL)
		return;
	if (l->host != NULL &&
	    (t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(parent))) != NULL &&
	    (p = tls_peer_find(t, l->role, l->host)) != NULL) {
		if (l->up && --p->live == 0)
			p->proven = 0;
		if (l->probe_ms != 0 && l->probe_ms == p->probe_ms) {
			p->probe_ms = 0;
			if (t->wake != NULL)
				t->wake(t->wake_arg, 0);
		}
	}
	free(l->host);
	free(l);
}

/* The peer (ROLE, HOST), or NULL. */
static struct tls_peer *
tls_peer_find(struct tls *t, enum tls_role role, const char *host)
{
	size_t	i;

	for (i = 0; i < t->npeers; i++)
		if (t->peers[i].role == role &&
		    strcmp(t->peers[i].host, host) == 0)
			return (&t->peers[i]);
	return (NULL);
}

/*
 * The peer (ROLE, HOST), made if new: past TLS_CACHE_MAX, a slot with
 * no link up or probing is reused (its ticket goes), else NULL.
 */
static struct tls_peer *
tls_peer_get(struct tls *t, enum tls_role role, const char *host)
{
	struct tls_peer	*p;
	size_t		 i;

	if ((p = tls_peer_find(t, role, host)) != NULL)
		return (p);
	if (t->npeers < TLS_CACHE_MAX)
		p = &t->peers[t->npeers++];
	else {
		for (i = 0; i < TLS_CACHE_MAX; i++) {
			p = &t->peers[t->evict++ % TLS_CACHE_MAX];
			if (p->live == 0 && p->probe_ms == 0)
				break;
		}
		if (i == TLS_CACHE_MAX)
			return (NULL);
		free(p->host);
		SSL_SESSION_free(p->sess);
	}
	memset(p, 0, sizeof(*p));
	p->role = role;
	p->host = xstrdup(host);
	return (p);
}

/* P's ticket is good, or it has a fresh one: links to it may go. */
static void
tls_peer_proven(struct tls *t, struct tls_peer *p)
{
	if (p->proven)
		return;
	p->proven = 1;
	p->probe_ms = 0;
	if (t->wake != NULL)
		t->wake(t->wake_arg, 1);
}

/* The ticket a link to HOST that demands ROLE of it would offer. */
static SSL_SESSION *
tls_ticket(struct tls *t, enum tls_role role, const char *host)
{
	struct tls_peer	*p;

	if (!(t->resumable & (1U << role)) || host == NULL ||
	    (p = tls_peer_find(t, role, host)) == NULL || p->sess == NULL ||
	    !SSL_SESSION_is_resumable(p->sess) ||
	    !tls_session_current(p->sess))
		return (NULL);
	return (p->sess);
}

/* Whether a link to HOST that demands ROLE of it would resume. */
int
tls_has_ticket(struct tls *t, enum tls_role role, const char *host)
{
	return (t != NULL && tls_ticket(t, role, host) != NULL);
}

/* Whether P is unproven and a probe, under TLS_PROBE_MS old, is out. */
static int
tls_peer_probing(const struct tls_peer *p)
{
	return (!p->proven && p->probe_ms != 0 &&
	    xtime_mono_ms() - p->probe_ms < TLS_PROBE_MS);
}

/* Whether a new link to HOST should wait for its probe; see tls.h. */
int
tls_link_wait(struct tls *t, enum tls_role role, const char *host)
{
	struct tls_peer	*p;

	return (t != NULL && (t->resumable & (1U << role)) && host != NULL &&
	    (p = tls_peer_find(t, role, host)) != NULL && tls_peer_probing(p));
}

/* Call WAKE(ARG, UP) when links that tls_link_wait() held may go. */
void
tls_set_wake(struct tls *t, void (*wake)(void *, int), void *arg)
{
	t->wake = wake;
	t->wake_arg = arg;
}

/*
 * A session for a ticket.  Client: the server sent it on a link we
 * dialled; keep a copy as the newest for that host.  Server: we sent
 * its id as a ticket; keep a copy for the link that offers it.  Copies,
 * as the link keeps SESS and OpenSSL marks it not resumable when the
 * link fails (a reset leg).
 */
static int
tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls		*t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tls_link		*l = SSL_get_ex_data(ssl, tls_ex_link);
	struct tls_peer		*p;

	if (t == NULL || l == NULL || !(t->resumable & (1U << l->role)) ||
	    (!SSL_is_server(ssl) && l->host == NULL) ||
	    !SSL_SESSION_is_resumable(sess) ||
	    (sess = SSL_SESSION_dup(sess)) == NULL)
		return (0);
	if (SSL_is_server(ssl)) {
		tls_store_add(t, sess);
		return (0);
	}
	if ((p = tls_peer_get(t, l->role, l->host)) == NULL) {
		SSL_SESSION_free(sess);
		return (0);
	}
	SSL_SESSION_free(p->sess);
	p->sess = sess;
	tls_peer_proven(t, p);
	return (0);
}

/* Whether SESS's peer certificate is still within its validity. */
static int
tls_session_current(SSL_SESSION *sess)
{
	X509	*peer = SSL_SESSION_get0_peer(sess);

	return (peer != NULL &&
	    X509_cmp_current_time(X509_get0_notAfter(peer)) > 0);
}

/*
 * Server: a ticket is about to be made.  Its session carries the time
 * of the full handshake it started from (should a resumed link's
 * session get a ticket, it has that time already), so a ticket can
 * never stretch a certificate check.
 */
static int
tls_ticket_gen_cb(SSL *ssl, void *arg)
{
	SSL_SESSION	*sess = SSL_get_session(ssl);
	void		*data;
	size_t		 len;
	int64_t		 born = (int64_t)time(NULL);

	if (sess == NULL)
		return (0);
	if (SSL_SESSION_get0_ticket_appdata(sess, &data, &len) == 1 &&
	    len == sizeof(born))
		return (1);
	return (SSL_SESSION_set1_ticket_appdata(sess, &born, sizeof(born)));
}

/* Order kept sessions by id. */
static int
tls_stored_cmp(struct tls_stored *a, struct tls_stored *b)
{
	int	c;

	if (a->idlen != b->idlen)
		return (a->idlen < b->idlen ? -1 : 1);
	c = memcmp(a->id, b->id, a->idlen);
	return (c < 0 ? -1 : c > 0);
}

/* The time of the full handshake SESS started from, or -1. */
static int64_t
tls_session_born(SSL_SESSION *sess)
{
	void	*data;
	size_t	 len;
	int64_t	 born;

	if (SSL_SESSION_get0_ticket_appdata(sess, &data, &len) != 1 ||
	    len != sizeof(born))
		return (-1);
	memcpy(&born, data, sizeof(born));
	return (born);
}

/* Whether the server may still resume SESS: young enough, peer valid. */
static int
tls_session_usable(SSL_SESSION *sess)
{
	int64_t	born = tls_session_born(sess);

	return (born != -1 && (int64_t)time(NULL) - born <= TLS_RESUME_MAX_S &&
	    tls_session_current(sess));
}

/* Forget a kept session. */
static void
tls_store_drop(struct tls *t, struct tls_stored *st)
{
	RB_REMOVE(tls_store, &t->store, st);
	TAILQ_REMOVE(&t->ages, st, age);
	t->nstored--;
	SSL_SESSION_free(st->sess);
	free(st);
}

/*
 * Server: keep SESS (our reference) for the ticket that names it.  The
 * client keeps only its newest ticket per host, so older sessions of
 * the same client certificate beyond TLS_STORE_PER_PEER go, as do
 * expired ones and, past TLS_STORE_MAX, the oldest.
 */
static void
tls_store_add(struct tls *t, SSL_SESSION *sess)
{
	struct tls_stored	*st, *oldest = NULL;
	const unsigned char	*id;
	X509			*peer = SSL_SESSION_get0_peer(sess);
	unsigned int		 idlen;
	size_t			 same = 0;

	id = SSL_SESSION_get_id(sess, &idlen);
	if (peer == NULL || idlen == 0 || idlen > sizeof(st->id)) {
		SSL_SESSION_free(sess);
		return;
	}
	while ((st = TAILQ_FIRST(&t->ages)) != NULL &&
	    (t->nstored >= TLS_STORE_MAX || !tls_session_usable(st->sess)))
		tls_store_drop(t, st);
	TAILQ_FOREACH(st, &t->ages, age) {
		if (X509_cmp(SSL_SESSION_get0_peer(st->sess), peer) != 0)
			continue;
		if (oldest == NULL)
			oldest = st;
		same++;
	}
	if (same >= TLS_STORE_PER_PEER)
		tls_store_drop(t, oldest);
	st = xcalloc(1, sizeof(*st));
	memcpy(st->id, id, idlen);
	st->idlen = idlen;
	st->sess = sess;
	if (RB_INSERT(tls_store, &t->store, st) != NULL) {
		/* The same id twice: OpenSSL's ids are random. */
		SSL_SESSION_free(sess);
		free(st);
		return;
	}
	TAILQ_INSERT_TAIL(&t->ages, st, age);
	t->nstored++;
}

/*
 * Server: a client offered the ticket ID.  A copy of the session it
 * names, if we keep it, it is still usable and it was made for the role
 * this link demands (the session id context); a copy, as OpenSSL marks
 * a link's session not resumable when that link ends without a TLS
 * close, and one reset leg must not spoil the session for the others.
 */
static SSL_SESSION *
tls_get_session_cb(SSL *ssl, const unsigned char *id, int idlen, int *copy)
{
	struct tls		*t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tls_stored	 find, *st;
	const unsigned char	*ctx;
	const char		*rname;
	unsigned int		 ctxlen;

	*copy = 0;
	if (t == NULL || idlen <= 0 || (size_t)idlen > sizeof(find.id))
		return (NULL);
	memcpy(find.id, id, (size_t)idlen);
	find.idlen = (unsigned int)idlen;
	if ((st = RB_FIND(tls_store, &t->store, &find)) == NULL)
		return (NULL);
	if (!tls_session_usable(st->sess)) {
		tls_store_drop(t, st);
		return (NULL);
	}
	rname = tls_strrole(tls_link_role(ssl));
	ctx = SSL_SESSION_get0_id_context(st->sess, &ctxlen);
	if (ctxlen != strlen(rname) || memcmp(ctx, rname, ctxlen) != 0)
		return (NULL);
	return (SSL_SESSION_dup(st->sess));
}

/*
 * Count each link's handshake once, full or resumed; a link we dialled
 * is up to its peer, and proves its ticket if it resumed.  Server: once
 * a link is known to resume (its ServerHello is out), send it no
 * ticket; the client's ticket stays good, and a new one per link would
 * cost both ends a session and the server a kept one.
 */
static void
tls_info_cb(const SSL *ssl, int where, int ret)
{
	struct tls	*t;
	struct tls_link	*l;
	struct tls_peer	*p;

	if ((l = SSL_get_ex_data(ssl, tls_ex_link)) == NULL)
		return;
	if ((where & SSL_CB_ACCEPT_LOOP) && SSL_session_reused(l->ssl))
		(void)SSL_set_num_tickets(l->ssl, 0);
	if (!(where & SSL_CB_HANDSHAKE_DONE) || l->counted ||
	    (t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl))) == NULL)
		return;
	l->counted = 1;
	if (SSL_session_reused(ssl))
		t->resumed++;
	else
		t->full++;
	if (l->host == NULL || (p = tls_peer_find(t, l->role, l->host)) ==
	    NULL)
		return;
	p->live++;
	l->up = 1;
	if (SSL_session_reused(ssl))
		tls_peer_proven(t, p);
}

/* Check that our own certificate chains to the CA in CTX. */
static int
tls_self_verify(SSL_CTX *ctx, X509 *cert, char *detail, size_t len)
{
	X509_STORE_CTX	*sctx;
	STACK_OF(X509)	*chain = NULL;
	int		 ok = 0;

	if ((sctx = X509_STORE_CTX_new()) == NULL)
		return (0);
	(void)SSL_CTX_get0_chain_certs(ctx, &chain);
	if (X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(ctx), cert,
	    chain) == 1) {
		ok = X509_verify_cert(sctx) == 1;
		if (!ok && detail != NULL)
			snprintf(detail, len, "%s",
			    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(sctx)));
	}
	X509_STORE_CTX_free(sctx);
	return (ok);
}

/* Load the cluster identity of a daemon playing ROLE. */
int
tls_new(const char *cert, const char *key, const char *ca,
    enum tls_role role, struct tls **tp, char *detail, size_t len)
{
	struct tls	*t = NULL;
	STACK_OF(X509_NAME) *names;
	struct stat	 st;
	int		 rv;

	*tp = NULL;
	if (detail != NULL && len > 0)
		*detail = '\0';
	if (cert == NULL || key == NULL || ca == NULL)
		return (TLS_E_INCOMPLETE);
	if (stat(key, &st) == -1) {
		rv = TLS_E_SYSTEM;
		goto out;
	}
	if (st.st_mode & 077) {
		if (detail != NULL)
			snprintf(detail, len, "%s has mode %04o", key,
			    (unsigned)(st.st_mode & 07777));
		rv = TLS_E_KEYMODE;
		goto out;
	}
	if (tls_ex_link == -1 &&
	    (tls_ex_link = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_link_free)) == -1) {
		rv = TLS_E_SYSTEM;
		goto out;
	}
	t = xcalloc(1, sizeof(*t));
	RB_INIT(&t->store);
	TAILQ_INIT(&t->ages);
	if ((t->ctx = SSL_CTX_new(TLS_method())) == NULL) {
		rv = TLS_E_SYSTEM;
		goto out;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
	/* OpenSSL 3 calls a close without close_notify an error. */
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Tickets: none unless a link's role is resumable (tls_wrap). */
	SSL_CTX_set_num_tickets(t->ctx, 0);
	/*
	 * Sessions for tickets are ours to keep (tls_new_session_cb), so
	 * OpenSSL's own cache stays empty and needs no flushing.
	 */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_BOTH |
	    SSL_SESS_CACHE_NO_INTERNAL | SSL_SESS_CACHE_NO_AUTO_CLEAR);
	SSL_CTX_sess_set_new_cb(t->ctx, tls_new_session_cb);
	SSL_CTX_sess_set_get_cb(t->ctx, tls_get_session_cb);
	SSL_CTX_set_session_ticket_cb(t->ctx, tls_ticket_gen_cb, NULL, NULL);
	SSL_CTX_set_info_callback(t->ctx, tls_info_cb);
	SSL_CTX_set_app_data(t->ctx, t);
	/*
	 * Send only what the certificate file holds, not a chain built
	 * from the CA bundle: every peer has the cluster CA already, and a
	 * CA certificate sent along is parsed and kept in each link's
	 * session on the other end (~5 KiB a link, docs/benchmarks.md).
	 */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_NO_AUTO_CHAIN);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
		tls_detail(detail, len, cert);
		rv = TLS_E_CERT;
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL checks the pair as it loads the key. */
		rv = ERR_GET_REASON(ERR_peek_last_error()) ==
		    X509_R_KEY_VALUES_MISMATCH ? TLS_E_MISMATCH : TLS_E_KEY;
		tls_detail(detail, len, key);
		goto out;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		tls_detail(detail, len, key);
		rv = TLS_E_MISMATCH;
		goto out;
	}
	if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(ca)) == NULL) {
		tls_detail(detail, len, ca);
		rv = TLS_E_CA;
		goto out;
	}
	SSL_CTX_set_client_CA_list(t->ctx, names);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tls_verify_cb);
	SSL_CTX_set_verify_depth(t->ctx, 4);
	t->cert = SSL_CTX_get0_certificate(t->ctx);
	if (!tls_self_verify(t->ctx, t->cert, detail, len)) {
		rv = TLS_E_UNTRUSTED;
		goto out;
	}
	if (!tls_cert_has_role(t->cert, role)) {
		if (detail != NULL)
			snprintf(detail, len, "%s has no URI %s%s", cert,
			    TLS_ROLE_PREFIX, tls_strrole(role));
		rv = TLS_E_ROLE;
		goto out;
	}
	*tp = t;
	t = NULL;
	rv = TLS_OK;
out:
	tls_free(t);
	return (rv);
}

/* Free; NULL is fine. */
void
tls_free(struct tls *t)
{
	struct tls_stored	*st;
	size_t			 i;

	if (t == NULL)
		return;
	/* A link that outlives us finds no struct tls in its callbacks. */
	SSL_CTX_set_app_data(t->ctx, NULL);
	SSL_CTX_free(t->ctx);
	while ((st = TAILQ_FIRST(&t->ages)) != NULL)
		tls_store_drop(t, st);
	for (i = 0; i < t->npeers; i++) {
		free(t->peers[i].host);
		SSL_SESSION_free(t->peers[i].sess);
	}
	free(t);
}

/*
 * Links that demand ROLE of their peer may resume (both ends must ask
 * it): the server sends a ticket, the client offers the newest it has
 * for that host.
 */
void
tls_set_resumable(struct tls *t, enum tls_role role)
{
	t->resumable |= 1U << role;
}

/* ASN1_TIME as "YYYY-MM-DDTHH:MM:SSZ". */
static json_t *
tls_time_json(const ASN1_TIME *at)
{
	struct tm	tm;
	char		buf[32];

	if (ASN1_TIME_to_tm(at, &tm) != 1)
		return (json_null());
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

/* Our certificate for the status socket. */
json_t *
tls_json(const struct tls *t)
{
	GENERAL_NAMES		*sans;
	const GENERAL_NAME	*gn;
	json_t			*o, *names, *roles;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen, i;
	char			 subj[256], hex[EVP_MAX_MD_SIZE * 3 + 1];
	size_t			 held = 0;
	int			 k;

	if (t == NULL)
		return (json_null());
	names = json_array();
	roles = json_array();
	sans = X509_get_ext_d2i(t->cert, NID_subject_alt_name, NULL, NULL);
	for (k = 0; sans != NULL && k < sk_GENERAL_NAME_num(sans); k++) {
		gn = sk_GENERAL_NAME_value(sans, k);
		if (gn->type == GEN_DNS)
			json_array_append_new(names, json_stringn((const char *)
			    ASN1_STRING_get0_data(gn->d.dNSName),
			    (size_t)ASN1_STRING_length(gn->d.dNSName)));
	}
	GENERAL_NAMES_free(sans);
	for (k = TLS_ROLE_RELAY; k <= TLS_ROLE_APPLIANCE; k++)
		if (tls_cert_has_role(t->cert, (enum tls_role)k))
			json_array_append_new(roles,
			    json_string(tls_strrole((enum tls_role)k)));
	X509_NAME_oneline(X509_get_subject_name(t->cert), subj, sizeof(subj));
	hex[0] = '\0';
	if (X509_digest(t->cert, EVP_sha256(), md, &mdlen) == 1 && mdlen > 0) {
		for (i = 0; i < mdlen; i++)
			snprintf(hex + i * 3, sizeof(hex) - i * 3, "%02X:",
			    md[i]);
		hex[mdlen * 3 - 1] = '\0';
	}
	for (i = 0; i < t->npeers; i++)
		held += t->peers[i].sess != NULL;
	o = json_pack("{s:s, s:o, s:o, s:o, s:s, s:{s:I, s:I}, s:I, s:I}",
	    "subject", subj, "hosts", names, "roles", roles,
	    "not_after", tls_time_json(X509_get0_notAfter(t->cert)),
	    "sha256", hex, "handshakes", "full", (json_int_t)t->full,
	    "resumed", (json_int_t)t->resumed, "tickets_held",
	    (json_int_t)held, "sessions_kept", (json_int_t)t->nstored);
	return (o);
}

/* Is HOST an IPv4 or IPv6 address (matched against IP names)? */
static int
tls_host_is_ip(const char *host)
{
	struct in_addr	in4;
	struct in6_addr	in6;

	return (inet_pton(AF_INET, host, &in4) == 1 ||
	    inet_pton(AF_INET6, host, &in6) == 1);
}

/*
 * A link L we dial: if its peer's links may not resume yet and no
 * probe is under way, L is the probe (tls_link_wait holds the rest).
 */
static void
tls_probe(struct tls *t, struct tls_link *l)
{
	struct tls_peer	*p;

	if ((p = tls_peer_get(t, l->role, l->host)) == NULL || p->proven ||
	    tls_peer_probing(p))
		return;
	p->probe_ms = l->probe_ms = xtime_mono_ms();
}

/* A TLS end on FD; see tls.h. */
struct bufferevent *
tls_wrap(struct tls *t, struct event_base *base, int fd, int accepting,
    enum tls_role role, const char *host)
{
	struct bufferevent	*bev;
	SSL			*ssl;
	char			 sni[256];
	struct tls_link		*l;
	SSL_SESSION		*sess, *dup;
	const char		*rname = tls_strrole(role);

	if ((ssl = SSL_new(t->ctx)) == NULL)
		return (NULL);
	if (host != NULL)
		strlcpy(sni, host, sizeof(sni));
	l = xcalloc(1, sizeof(*l));
	l->ssl = ssl;
	l->role = role;
	if (!accepting && host != NULL)
		l->host = xstrdup(host);
	SSL_set_ex_data(ssl, tls_ex_link, l);
	/* A ticket resumes only a link that demands the same role. */
	(void)SSL_set_session_id_context(ssl, (const unsigned char *)rname,
	    (unsigned)strlen(rname));
	if (t->resumable & (1U << role)) {
		if (accepting) {
			/* Stateful: the ticket names a session we keep. */
			(void)SSL_set_options(ssl, SSL_OP_NO_TICKET);
			(void)SSL_set_num_tickets(ssl, 1);
		} else if (host != NULL) {
			tls_probe(t, l);
			/*
			 * A copy per link: OpenSSL marks a link's session
			 * not resumable when that link fails, and one reset
			 * leg must not spoil the ticket for the others.
			 */
			if ((sess = tls_ticket(t, role, host)) != NULL &&
			    (dup = SSL_SESSION_dup(sess)) != NULL) {
				(void)SSL_set_session(ssl, dup);
				SSL_SESSION_free(dup);
			}
		}
	}
	if (!accepting && host != NULL) {
		if (tls_host_is_ip(host))
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    host);
		else {
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, host) != 1) {
				SSL_free(ssl);
				return (NULL);
			}
			/*
			 * SNI; SSL_set_tlsext_host_name() is this call with
			 * a cast that drops const (clang warns in the macro).
			 */
			(void)SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME,
			    TLSEXT_NAMETYPE_host_name, sni);
		}
	}
	bev = bufferevent_openssl_socket_new(base, fd, ssl, accepting ?
	    BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return (NULL);
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return (bev);
}

/* Whether BEV runs TLS. */
int
tls_bev_is_tls(struct bufferevent *bev)
{
	return (bev != NULL && bufferevent_openssl_get_ssl(bev) != NULL);
}

/* Why a TLS link failed, in words; NULL if TLS has nothing to say. */
const char *
tls_bev_error(struct bufferevent *bev)
{
	static char	 buf[256];
	SSL		*ssl;
	long		 vr;
	unsigned long	 e;
	const char	*host, *r;

	if (bev == NULL || (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return (NULL);
	vr = SSL_get_verify_result(ssl);
	if (vr == X509_V_ERR_APPLICATION_VERIFICATION) {
		snprintf(buf, sizeof(buf), "TLS: peer certificate has no "
		    "role %s", tls_strrole(tls_link_role(ssl)));
		return (buf);
	}
	if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
	    vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		host = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
		snprintf(buf, sizeof(buf), "TLS: peer certificate does not "
		    "name %s", host != NULL ? host : "the address");
		return (buf);
	}
	if (vr != X509_V_OK) {
		snprintf(buf, sizeof(buf), "TLS: peer certificate: %s",
		    X509_verify_cert_error_string(vr));
		return (buf);
	}
	/*
	 * libevent also queues SSL_get_error() codes (library 0: a socket
	 * error under TLS, say) among OpenSSL's: those are no TLS reason,
	 * and NULL lets the caller say what the socket said.
	 */
	buf[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (buf[0] != '\0' || ERR_GET_LIB(e) == 0)
			continue;
		r = ERR_reason_error_string(e);
		snprintf(buf, sizeof(buf), "TLS: %s", r != NULL ? r : "error");
	}
	return (buf[0] != '\0' ? buf : NULL);
}

/* TLS_OK if the peer certificate on BEV names HOST, or BEV is plain. */
int
tls_bev_check_host(struct bufferevent *bev, const char *host)
{
	SSL	*ssl;
	X509	*peer;

	if (bev == NULL || (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return (TLS_OK);
	if ((peer = SSL_get0_peer_certificate(ssl)) == NULL)
		return (TLS_E_HOST);
	/* An address is matched as one (IP names), as tls_wrap() does. */
	if (tls_host_is_ip(host))
		return (X509_check_ip_asc(peer, host, 0) == 1 ? TLS_OK :
		    TLS_E_HOST);
	/*
	 * HOST comes from the peer: a leading dot would ask OpenSSL for
	 * "any name under", and the subject's CN is no name we issue.
	 */
	if (host[0] == '.' || X509_check_host(peer, host, strlen(host),
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) != 1)
		return (TLS_E_HOST);
	return (TLS_OK);
}

/* The peer certificate's subject ("" if none). */
const char *
tls_bev_peer(struct bufferevent *bev)
{
	static char	 buf[256];
	SSL		*ssl;
	X509		*peer;

	buf[0] = '\0';
	if (bev != NULL && (ssl = bufferevent_openssl_get_ssl(bev)) != NULL &&
	    (peer = SSL_get0_peer_certificate(ssl)) != NULL)
		X509_NAME_oneline(X509_get_subject_name(peer), buf,
		    sizeof(buf));
	return (buf);
}

/*
 * Move N bytes of SRC to BEV.  With nothing queued, they are written
 * now, by this call: a bufferevent would arm its write event and write
 * on the loop's next turn, two epoll_ctl and a wake-up per message.
 * What the socket does not take is queued behind as bufferevent_write()
 * would queue it, and an error is left for the bufferevent to meet.
 * Returns the bytes written now; -1 if queuing failed (no memory).
 */
ssize_t
tls_bev_send(struct bufferevent *bev, struct evbuffer *src, size_t n)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	SSL		*ssl = NULL;
	unsigned char	*p;
	size_t		 done = 0, k;
	ssize_t		 w;
	int		 r;

	if (n > evbuffer_get_length(src))
		n = evbuffer_get_length(src);
	if (n == 0)
		return (0);
	if (evbuffer_get_length(out) > 0 ||
	    !(bufferevent_get_enabled(bev) & EV_WRITE))
		goto queue;
	if ((ssl = bufferevent_openssl_get_ssl(bev)) == NULL) {
		w = evbuffer_write_atmost(src, bufferevent_getfd(bev),
		    (ev_ssize_t)n);
		if (w > 0)
			done = (size_t)w;
		goto queue;
	}
	if (!SSL_is_init_finished(ssl))
		goto queue;
	while (done < n) {
		k = n - done < TLS_RECORD_MAX ? n - done : TLS_RECORD_MAX;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)k)) == NULL ||
		    (r = SSL_write(ssl, p, (int)k)) <= 0)
			break;
		evbuffer_drain(src, (size_t)r);
		done += (size_t)r;
	}
	ERR_clear_error();
queue:
	if (done == n)
		return ((ssize_t)done);
	k = n - done;
	if (evbuffer_remove_buffer(src, out, k) != (int)k)
		return (-1);
	/* The bufferevent's retry of a refused record: in one piece. */
	if (ssl != NULL && k > TLS_RECORD_MAX)
		k = TLS_RECORD_MAX;
	if (ssl != NULL && evbuffer_get_contiguous_space(out) < k &&
	    evbuffer_pullup(out, (ev_ssize_t)k) == NULL)
		return (-1);
	return ((ssize_t)done);
}

/*
 * The loop is over: one non-blocking try at what BEV has queued (a
 * last CLOSE).  Plain sockets write directly; a TLS link whose
 * handshake is done gets one record.
 */
void
tls_bev_write_now(struct bufferevent *bev)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	SSL		*ssl;
	unsigned char	*p;
	size_t		 n;
	int		 w;

	if ((ssl = bufferevent_openssl_get_ssl(bev)) == NULL) {
		(void)evbuffer_write(out, bufferevent_getfd(bev));
		return;
	}
	if (!SSL_is_init_finished(ssl) ||
	    (n = evbuffer_get_length(out)) == 0)
		return;
	if (n > TLS_RECORD_MAX)
		n = TLS_RECORD_MAX;
	if ((p = evbuffer_pullup(out, (ev_ssize_t)n)) != NULL &&
	    (w = SSL_write(ssl, p, (int)n)) > 0)
		evbuffer_drain(out, (size_t)w);
	ERR_clear_error();
}
