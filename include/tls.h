/*
 * tls.h -- mutual TLS for the mesh's TCP links (docs/security.md).
 *
 * One cluster CA signs every daemon's certificate.  A certificate says
 * which part it plays in a subjectAltName URI "urn:vrelay:role:NAME"
 * (relay, locator, appliance); a relay's also names its ESX host (a
 * DNS name).  Both ends of a link present a certificate and check the
 * other's chain, the role the link needs and, when the caller knows
 * which host it wants, the host name.  A wrong peer fails the
 * handshake, and tls_bev_error() says why.
 *
 * Functions return TLS_OK or a negative TLS_E_* code; on TLS_E_SYSTEM
 * errno says why, on the others the DETAIL buffer does when given.
 */
#ifndef VRELAY_TLS_H
#define VRELAY_TLS_H

#include <sys/types.h>

#include <stddef.h>

#include <jansson.h>

struct bufferevent;
struct evbuffer;
struct event_base;
struct tls;

#define TLS_OK			0
#define TLS_E_SYSTEM		(-1)	/* a system call failed: errno */
#define TLS_E_CERT		(-2)	/* certificate file unusable */
#define TLS_E_KEY		(-3)	/* key file unusable */
#define TLS_E_KEYMODE		(-4)	/* key readable by group or others */
#define TLS_E_MISMATCH		(-5)	/* key does not match certificate */
#define TLS_E_CA		(-6)	/* CA file unusable */
#define TLS_E_UNTRUSTED		(-7)	/* own certificate fails the CA */
#define TLS_E_ROLE		(-8)	/* certificate lacks the role */
#define TLS_E_HOST		(-9)	/* certificate does not name host */
#define TLS_E_INCOMPLETE	(-10)	/* cert, key and CA go together */

enum tls_role {
	TLS_ROLE_NONE = 0,	/* plaintext link (vSocket, unix) */
	TLS_ROLE_RELAY,
	TLS_ROLE_LOCATOR,
	TLS_ROLE_APPLIANCE,
};

const char	*tls_strerror(int);
const char	*tls_strrole(enum tls_role);
/*
 * Load CERT (PEM chain), KEY (PEM, owner-only) and CA (PEM bundle) and
 * check that the certificate chains to CA and carries ROLE.
 */
int		 tls_new(const char *, const char *, const char *,
		    enum tls_role, struct tls **, char *, size_t);
void		 tls_free(struct tls *);
/* Links demanding this role of the peer resume by ticket (tls.c). */
void		 tls_set_resumable(struct tls *, enum tls_role);
/* Whether a link to HOST that demands ROLE of it would resume. */
int		 tls_has_ticket(struct tls *, enum tls_role, const char *);
/*
 * Whether a new link to HOST that demands ROLE of it should wait: no
 * link up to HOST has resumed or brought a ticket yet (the first
 * contact, or all links reset, as when its relay restarted), and one
 * dialled now probes whether the ticket held is good, or gets one.
 */
int		 tls_link_wait(struct tls *, enum tls_role, const char *);
/*
 * WAKE(ARG, UP) runs, inside OpenSSL's callbacks (defer the work), when
 * links tls_link_wait() held may go: UP 1 when a link to their host
 * resumed or brought a ticket (the host is up), 0 when a probe ended
 * without.
 */
void		 tls_set_wake(struct tls *, void (*)(void *, int), void *);
/* Subject, roles, hosts, expiry and SHA-256 of our certificate. */
json_t		*tls_json(const struct tls *);
/*
 * A TLS bufferevent on FD (closed with it): the server end when
 * ACCEPTING, else the client end of a connect in progress.  The peer
 * must carry ROLE and, if HOST is not NULL, name HOST.  NULL on
 * failure (FD is then not closed).
 */
struct bufferevent *tls_wrap(struct tls *, struct event_base *, int, int,
		    enum tls_role, const char *);
/* Whether BEV runs TLS. */
int		 tls_bev_is_tls(struct bufferevent *);
/* After an error event: what TLS has to say about it, or NULL. */
const char	*tls_bev_error(struct bufferevent *);
/* TLS_OK if BEV's peer certificate names HOST (or BEV is plaintext). */
int		 tls_bev_check_host(struct bufferevent *, const char *);
/* The peer certificate's subject for logs ("" if none or plaintext). */
const char	*tls_bev_peer(struct bufferevent *);
/*
 * Move N bytes of SRC to BEV, written at once if nothing is queued (no
 * wait for the loop), else queued; the bytes written now, -1 on ENOMEM.
 */
ssize_t		 tls_bev_send(struct bufferevent *, struct evbuffer *, size_t);
/* At exit: one non-blocking try at writing what BEV has queued. */
void		 tls_bev_write_now(struct bufferevent *);

#endif
