/*
 * http.c -- SOAP POSTs over libcurl's multi interface on the caller's
 * libevent loop (curl's docs/examples/hiperfifo.c).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to wake it (CURLMOPT_TIMERFUNCTION); we keep one libevent event
 * per socket plus one timer, and hand every readiness or timeout to
 * curl_multi_socket_action(), then collect finished transfers with
 * curl_multi_info_read().  Sockets are non-blocking and name resolution
 * runs in curl's resolver thread (vmomi_new refuses a libcurl without
 * asynchronous DNS).  One trap remains: dropping a transfer that is
 * still resolving (abort, free, its own timeout) makes libcurl join that
 * thread, i.e. wait for getaddrinfo(), inside curl_multi_remove_handle().
 * CURLOPT_QUICK_EXIT (libcurl 7.87) makes it detach the thread instead,
 * which then frees its own state when the lookup ends.  Left blocking:
 * reading the CA file when a connection is set up (local disk).
 *
 * Finished transfers are not reported from inside that walk: their easy
 * handles are removed and cleaned up there (we are outside every curl
 * callback then), the transfer goes on h_done, and a separate event
 * delivers one result per activation.  So a callback may start new
 * transfers, cancel others (http_xfer_free) or free the whole struct
 * http: delivery re-arms itself before calling out and touches nothing
 * afterwards.  The timer callback only arms an event, never calls
 * curl_multi_socket_action(), so http_post() cannot complete anything
 * before it returns; results always arrive from the loop.
 *
 * Certificate pinning: in the SSL_CTX of every new connection
 * (CURLOPT_SSL_CTX_FUNCTION, OpenSSL builds of libcurl) we replace
 * OpenSSL's chain verification with a digest of the leaf certificate
 * compared to the pin.  Renegotiation is off and curl's TLS session
 * cache is off, so that check runs on every handshake and only while
 * the transfer that owns the connection exists.  As a second lock, a
 * successful transfer that opened a new connection without the check
 * having passed is refused.
 */
#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "text.h"
#include "vmomi.h"
#include "vmomi_int.h"
#include "xmalloc.h"
#include "xtime.h"

#define HTTP_SOAPACTION	"SOAPAction: \"urn:vim25/7.0\""
#define HTTP_CTYPE	"Content-Type: text/xml; charset=utf-8"
#define HTTP_COOKIE	"vmware_soap_session"
#define HTTP_BODY_INIT	4096
#define HTTP_CTYPE_MAX	128	/* a response's Content-Type, kept */

struct http_sock {
	struct http		*hs_http;
	curl_socket_t		 hs_fd;
	struct event		*hs_ev;
	LIST_ENTRY(http_sock)	 hs_entry;
};

struct http_xfer {
	struct http		*x_http;
	CURL			*x_easy;
	struct curl_slist	*x_hdrs;
	char			*x_req;		/* request body (wiped) */
	size_t			 x_reqlen;
	char			*x_resp;	/* response body */
	size_t			 x_len;
	size_t			 x_cap;
	int			 x_toobig;
	int			 x_pin_ok;	/* pin check passed */
	int			 x_pin_bad;	/* ... or failed */
	char			 x_pin_seen[3 * EVP_MAX_MD_SIZE];
	char			 x_cookie[VMOMI_COOKIE_MAX + 1];
	char			 x_errbuf[CURL_ERROR_SIZE];
	char			 x_ctype[HTTP_CTYPE_MAX];
	int			 x_done;	/* on h_done */
	int			 x_err;
	long			 x_status;
	char			 x_msg[VMOMI_MSG_MAX];
	http_cb			*x_cb;
	void			*x_arg;
	TAILQ_ENTRY(http_xfer)	 x_entry;
};
TAILQ_HEAD(http_xfers, http_xfer);

struct http {
	struct event_base	*h_base;
	CURLM			*h_multi;
	struct event		*h_timer;
	struct event		*h_deliver;
	char			*h_url;
	char			*h_cacert;
	unsigned char		 h_pin[32];
	size_t			 h_pinlen;
	int			 h_insecure;
	size_t			 h_max;
	struct http_xfers	 h_running;
	struct http_xfers	 h_done;
	LIST_HEAD(, http_sock)	 h_socks;
};

/* curl's result codes that mean something other than VMOMI_E_CONNECT. */
static const struct {
	CURLcode	code;
	int		err;
} http_codes[] = {
	{ CURLE_OPERATION_TIMEDOUT,		VMOMI_E_TIMEOUT },
	{ CURLE_SSL_CONNECT_ERROR,		VMOMI_E_TLS },
	{ CURLE_PEER_FAILED_VERIFICATION,	VMOMI_E_TLS },
	{ CURLE_SSL_CACERT_BADFILE,		VMOMI_E_TLS },
	{ CURLE_SSL_CERTPROBLEM,		VMOMI_E_TLS },
	{ CURLE_SSL_CIPHER,			VMOMI_E_TLS },
	{ CURLE_SSL_ENGINE_NOTFOUND,		VMOMI_E_TLS },
	{ CURLE_SSL_ENGINE_SETFAILED,		VMOMI_E_TLS },
	{ CURLE_SSL_ENGINE_INITFAILED,		VMOMI_E_TLS },
	{ CURLE_SSL_CRL_BADFILE,		VMOMI_E_TLS },
	{ CURLE_SSL_ISSUER_ERROR,		VMOMI_E_TLS },
	{ CURLE_SSL_PINNEDPUBKEYNOTMATCH,	VMOMI_E_TLS },
	{ CURLE_SSL_INVALIDCERTSTATUS,		VMOMI_E_TLS },
	{ CURLE_SSL_SHUTDOWN_FAILED,		VMOMI_E_TLS },
	{ CURLE_USE_SSL_FAILED,			VMOMI_E_TLS },
	{ CURLE_OUT_OF_MEMORY,			VMOMI_E_SYSTEM },
	{ CURLE_FAILED_INIT,			VMOMI_E_SYSTEM },
	{ CURLE_UNSUPPORTED_PROTOCOL,		VMOMI_E_ARG },
	{ CURLE_URL_MALFORMAT,			VMOMI_E_ARG },
};

static void	http_check(struct http *);

/* Stop watching a socket. */
static void
http_sock_free(struct http_sock *hs)
{
	LIST_REMOVE(hs, hs_entry);
	if (hs->hs_ev != NULL)
		event_free(hs->hs_ev);
	free(hs);
}

/* A watched socket is ready: tell curl, then collect what finished. */
static void
http_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_sock	*hs = arg;
	struct http		*h = hs->hs_http;
	int			 action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	/* HS may be freed inside (CURL_POLL_REMOVE): not used after. */
	curl_multi_socket_action(h->h_multi, fd, action, &running);
	http_check(h);
	if (running <= 0 && evtimer_pending(h->h_timer, NULL))
		evtimer_del(h->h_timer);
}

/* curl's timer ran out. */
static void
http_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;
	int		 running;

	curl_multi_socket_action(h->h_multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	http_check(h);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm the event, never act here. */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http	*h = userp;
	struct timeval	 tv;

	if (timeout_ms < 0) {
		evtimer_del(h->h_timer);
		return (0);
	}
	xtime_tv(timeout_ms, &tv);
	return (evtimer_add(h->h_timer, &tv) == 0 ? 0 : -1);
}

/* CURLMOPT_SOCKETFUNCTION: watch S for what curl asks, or stop. */
static int
http_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp,
    void *sockp)
{
	struct http		*h = userp;
	struct http_sock	*hs = sockp;
	short			 kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL)
			http_sock_free(hs);
		return (0);
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (hs == NULL) {
		hs = xcalloc(1, sizeof(*hs));
		hs->hs_http = h;
		hs->hs_fd = s;
		LIST_INSERT_HEAD(&h->h_socks, hs, hs_entry);
		curl_multi_assign(h->h_multi, s, hs);
	} else if (hs->hs_ev != NULL) {
		event_free(hs->hs_ev);
		hs->hs_ev = NULL;
	}
	hs->hs_ev = event_new(h->h_base, s, kind, http_sock_event, hs);
	if (hs->hs_ev == NULL || event_add(hs->hs_ev, NULL) == -1)
		return (-1);
	return (0);
}

/* CURLOPT_WRITEFUNCTION: keep the body, refusing past h_max. */
static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer	*x = arg;
	size_t			 n = size * nmemb, ncap;

	if (n > x->x_http->h_max - x->x_len) {
		x->x_toobig = 1;
		return (0);
	}
	if (x->x_len + n + 1 > x->x_cap) {
		ncap = x->x_cap == 0 ? HTTP_BODY_INIT : x->x_cap;
		while (x->x_len + n + 1 > ncap)
			ncap *= 2;
		if (ncap > x->x_http->h_max + 1)
			ncap = x->x_http->h_max + 1;
		x->x_resp = xreallocarray(x->x_resp, 1, ncap);
		x->x_cap = ncap;
	}
	memcpy(x->x_resp + x->x_len, data, n);
	x->x_len += n;
	x->x_resp[x->x_len] = '\0';
	return (n);
}

/* CURLOPT_HEADERFUNCTION: pick vmware_soap_session out of Set-Cookie. */
static size_t
http_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer	*x = arg;
	size_t			 n = size * nmemb, i, start, plen;
	static const char	 set[] = "Set-Cookie:";
	unsigned char		 c;
	int			 quoted;

	plen = sizeof(set) - 1;
	if (n < plen || strncasecmp(data, set, plen) != 0)
		return (n);
	for (i = plen; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
		;
	if (n - i <= sizeof(HTTP_COOKIE) ||
	    memcmp(data + i, HTTP_COOKIE "=", sizeof(HTTP_COOKIE)) != 0)
		return (n);
	start = i + sizeof(HTTP_COOKIE);
	/*
	 * cookie-value (RFC 6265): cookie-octets, optionally in double
	 * quotes, as vCenter sends it ("52c4..."); kept as sent, quotes
	 * and all, because that is what goes back in Cookie:.
	 */
	quoted = start < n && data[start] == '"';
	for (i = start + quoted; i < n; i++) {
		c = (unsigned char)data[i];
		if (quoted && c == '"') {
			i++;
			break;
		}
		if (c == ';' || c == '\r' || c == '\n' || c == ' ') {
			if (quoted)
				return (n);	/* no closing quote */
			break;
		}
		/* cookie-octet; anything else is not ours. */
		if (c < 0x21 || c > 0x7e || c == '"' || c == ',' ||
		    c == '\\')
			return (n);
	}
	if (i == start + 2 * quoted || i - start > VMOMI_COOKIE_MAX ||
	    (quoted && data[i - 1] != '"'))
		return (n);
	memcpy(x->x_cookie, data + start, i - start);
	x->x_cookie[i - start] = '\0';
	return (n);
}

/* The pin check, instead of OpenSSL's chain verification. */
static int
http_pin_verify(X509_STORE_CTX *sctx, void *arg)
{
	struct http_xfer	*x = arg;
	struct http		*h = x->x_http;
	X509			*cert;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0, i;

	cert = X509_STORE_CTX_get0_cert(sctx);
	if (cert != NULL && X509_digest(cert, h->h_pinlen == 20 ?
	    EVP_sha1() : EVP_sha256(), md, &mdlen) == 1 &&
	    mdlen == h->h_pinlen && CRYPTO_memcmp(md, h->h_pin, mdlen) == 0) {
		x->x_pin_ok = 1;
		return (1);
	}
	x->x_pin_bad = 1;
	x->x_pin_seen[0] = '\0';
	if (cert != NULL && X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
		for (i = 0; i < mdlen; i++)
			snprintf(x->x_pin_seen + 3 * i,
			    sizeof(x->x_pin_seen) - 3 * i, "%02X%s", md[i],
			    i + 1 < mdlen ? ":" : "");
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REJECTED);
	return (0);
}

/* CURLOPT_SSL_CTX_FUNCTION: put the pin check into a new connection. */
static CURLcode
http_ssl_ctx_cb(CURL *easy, void *sslctx, void *arg)
{
	SSL_CTX	*ctx = sslctx;

	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, http_pin_verify, arg);
	return (CURLE_OK);
}

/* Free a transfer (curl is done with it), wiping body and cookie. */
static void
http_xfer_destroy(struct http_xfer *x)
{
	if (x->x_easy != NULL)
		curl_easy_cleanup(x->x_easy);
	curl_slist_free_all(x->x_hdrs);
	if (x->x_req != NULL)
		explicit_bzero(x->x_req, x->x_reqlen);
	free(x->x_req);
	explicit_bzero(x->x_cookie, sizeof(x->x_cookie));
	free(x->x_resp);
	free(x);
}

/*
 * Keep the response's Content-Type when it is short printable ASCII
 * (a forward hands it back to its caller as is); else none.
 */
static void
http_ctype(struct http_xfer *x)
{
	char	*ct = NULL;
	size_t	 i;

	if (curl_easy_getinfo(x->x_easy, CURLINFO_CONTENT_TYPE, &ct) !=
	    CURLE_OK || ct == NULL ||
	    strlcpy(x->x_ctype, ct, sizeof(x->x_ctype)) >= sizeof(x->x_ctype))
		goto none;
	for (i = 0; x->x_ctype[i] != '\0'; i++)
		if (x->x_ctype[i] < 0x20 || x->x_ctype[i] > 0x7e)
			goto none;
	return;
none:
	x->x_ctype[0] = '\0';
}

/* Work out a finished transfer's result code and message. */
static void
http_result(struct http_xfer *x, CURLcode rc)
{
	struct http	*h = x->x_http;
	long		 nconn = 0;
	size_t		 i;

	x->x_err = VMOMI_OK;
	if (x->x_pin_bad) {
		x->x_err = VMOMI_E_THUMBPRINT;
		snprintf(x->x_msg, sizeof(x->x_msg), "server certificate "
		    "does not match the pinned thumbprint; its SHA-256 "
		    "thumbprint is %s", x->x_pin_seen[0] != '\0' ?
		    x->x_pin_seen : "(unknown)");
		return;
	}
	if (rc == CURLE_WRITE_ERROR && x->x_toobig) {
		x->x_err = VMOMI_E_TOOBIG;
		snprintf(x->x_msg, sizeof(x->x_msg), "response over %zu "
		    "bytes", h->h_max);
		return;
	}
	if (rc != CURLE_OK) {
		x->x_err = VMOMI_E_CONNECT;
		for (i = 0; i < sizeof(http_codes) / sizeof(http_codes[0]);
		    i++)
			if (http_codes[i].code == rc)
				x->x_err = http_codes[i].err;
		snprintf(x->x_msg, sizeof(x->x_msg), "%s",
		    x->x_errbuf[0] != '\0' ? x->x_errbuf :
		    curl_easy_strerror(rc));
		text_ascii(x->x_msg);
		return;
	}
	if (h->h_pinlen > 0 && strncasecmp(h->h_url, "https:", 6) == 0 &&
	    curl_easy_getinfo(x->x_easy, CURLINFO_NUM_CONNECTS, &nconn) ==
	    CURLE_OK && nconn > 0 && !x->x_pin_ok) {
		x->x_err = VMOMI_E_THUMBPRINT;
		snprintf(x->x_msg, sizeof(x->x_msg), "TLS connection was "
		    "not checked against the pinned thumbprint");
		return;
	}
	curl_easy_getinfo(x->x_easy, CURLINFO_RESPONSE_CODE, &x->x_status);
	http_ctype(x);
}

/*
 * Collect finished transfers: outside curl's callbacks, so the easy
 * handles can go now; the results wait for http_deliver().
 */
static void
http_check(struct http *h)
{
	CURLMsg			*m;
	struct http_xfer	*x;
	char			*p;
	int			 left;

	while ((m = curl_multi_info_read(h->h_multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		p = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
		if ((x = (struct http_xfer *)(void *)p) == NULL)
			continue;
		http_result(x, m->data.result);
		curl_multi_remove_handle(h->h_multi, x->x_easy);
		curl_easy_cleanup(x->x_easy);
		x->x_easy = NULL;
		TAILQ_REMOVE(&h->h_running, x, x_entry);
		TAILQ_INSERT_TAIL(&h->h_done, x, x_entry);
		x->x_done = 1;
		event_active(h->h_deliver, EV_TIMEOUT, 0);
	}
}

/* Report one finished transfer; H may be gone when the callback returns. */
static void
http_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct http		*h = arg;
	struct http_xfer	*x;
	struct http_result	 r;

	if ((x = TAILQ_FIRST(&h->h_done)) == NULL)
		return;
	TAILQ_REMOVE(&h->h_done, x, x_entry);
	if (!TAILQ_EMPTY(&h->h_done))
		event_active(h->h_deliver, EV_TIMEOUT, 0);

	memset(&r, 0, sizeof(r));
	r.err = x->x_err;
	r.msg = x->x_err != VMOMI_OK ? x->x_msg : NULL;
	r.status = x->x_status;
	r.body = x->x_resp != NULL ? x->x_resp : "";
	r.len = x->x_len;
	r.cookie = x->x_cookie[0] != '\0' ? x->x_cookie : NULL;
	r.ctype = x->x_ctype[0] != '\0' ? x->x_ctype : NULL;
	x->x_cb(&r, x->x_arg);
	http_xfer_destroy(x);
}

/* A transport for CONF on BASE. */
int
http_new(struct event_base *base, const struct http_conf *conf,
    struct http **out, char *msg, size_t msglen)
{
	struct http	*h;

	*out = NULL;
	h = xcalloc(1, sizeof(*h));
	h->h_base = base;
	TAILQ_INIT(&h->h_running);
	TAILQ_INIT(&h->h_done);
	LIST_INIT(&h->h_socks);
	h->h_url = xstrdup(conf->url);
	if (conf->cacert != NULL)
		h->h_cacert = xstrdup(conf->cacert);
	if (conf->pin != NULL) {
		memcpy(h->h_pin, conf->pin, conf->pinlen);
		h->h_pinlen = conf->pinlen;
	}
	h->h_insecure = conf->insecure;
	h->h_max = conf->max_response;

	h->h_timer = evtimer_new(base, http_timer_event, h);
	h->h_deliver = event_new(base, -1, 0, http_deliver, h);
	h->h_multi = curl_multi_init();
	if (h->h_timer == NULL || h->h_deliver == NULL ||
	    h->h_multi == NULL ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_SOCKETFUNCTION,
	    http_sock_cb) != CURLM_OK ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_SOCKETDATA, h) !=
	    CURLM_OK ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_TIMERFUNCTION,
	    http_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(h->h_multi, CURLMOPT_TIMERDATA, h) !=
	    CURLM_OK) {
		snprintf(msg, msglen, "cannot set up curl multi or events");
		http_free(h);
		return (VMOMI_E_SYSTEM);
	}
	*out = h;
	return (VMOMI_OK);
}

/* Drop every transfer (no callbacks) and the multi handle; NULL is fine. */
void
http_free(struct http *h)
{
	struct http_xfer	*x;
	struct http_sock	*hs;

	if (h == NULL)
		return;
	while ((x = TAILQ_FIRST(&h->h_running)) != NULL)
		http_xfer_free(x);
	while ((x = TAILQ_FIRST(&h->h_done)) != NULL)
		http_xfer_free(x);
	if (h->h_multi != NULL)
		curl_multi_cleanup(h->h_multi);
	while ((hs = LIST_FIRST(&h->h_socks)) != NULL)
		http_sock_free(hs);
	if (h->h_timer != NULL)
		event_free(h->h_timer);
	if (h->h_deliver != NULL)
		event_free(h->h_deliver);
	free(h->h_url);
	free(h->h_cacert);
	explicit_bzero(h->h_pin, sizeof(h->h_pin));
	free(h);
}

/* Cancel a transfer: its callback will not run.  NULL is fine. */
void
http_xfer_free(struct http_xfer *x)
{
	struct http	*h;

	if (x == NULL)
		return;
	h = x->x_http;
	if (x->x_done)
		TAILQ_REMOVE(&h->h_done, x, x_entry);
	else {
		TAILQ_REMOVE(&h->h_running, x, x_entry);
		curl_multi_remove_handle(h->h_multi, x->x_easy);
	}
	http_xfer_destroy(x);
}

/* Set the easy handle's TLS options for the configured mode. */
static int
http_tls_opts(struct http *h, struct http_xfer *x)
{
	CURL	*e = x->x_easy;
	int	 rc = 0;

	if (h->h_pinlen > 0) {
		/* The pin replaces chain and name checks (see above). */
		rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
		rc |= curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
		rc |= curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION,
		    http_ssl_ctx_cb);
		rc |= curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, x);
	} else if (h->h_insecure) {
		rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		if (h->h_cacert != NULL)
			rc |= curl_easy_setopt(e, CURLOPT_CAINFO,
			    h->h_cacert);
	}
	return (rc);
}

/*
 * POST BODY (ours from now on, LEN bytes) with COOKIE (NULL: none);
 * CB reports from the loop, never before this returns.
 */
int
http_post(struct http *h, char *body, size_t len, const char *cookie,
    long long timeout_ms, http_cb *cb, void *arg, struct http_xfer **out,
    char *msg, size_t msglen)
{
	return (http_post_action(h, body, len, cookie, NULL, timeout_ms, cb,
	    arg, out, msg, msglen));
}

/*
 * http_post() with SOAPACTION as the SOAPAction header's value (the
 * caller checked it: printable ASCII, no CR or LF); NULL: ours.
 */
int
http_post_action(struct http *h, char *body, size_t len, const char *cookie,
    const char *soapaction, long long timeout_ms, http_cb *cb, void *arg,
    struct http_xfer **out, char *msg, size_t msglen)
{
	struct http_xfer	*x;
	CURL			*e;
	char			*c = NULL, *sa = NULL;
	long long		 cto;
	int			 rc = 0;

	*out = NULL;
	x = xcalloc(1, sizeof(*x));
	x->x_http = h;
	x->x_req = body;
	x->x_reqlen = len;
	x->x_cb = cb;
	x->x_arg = arg;
	if ((x->x_easy = e = curl_easy_init()) == NULL) {
		snprintf(msg, msglen, "curl_easy_init failed");
		http_xfer_destroy(x);
		return (VMOMI_E_SYSTEM);
	}
	x->x_hdrs = curl_slist_append(x->x_hdrs, HTTP_CTYPE);
	if (soapaction != NULL)
		xasprintf(&sa, "SOAPAction: %s", soapaction);
	if (x->x_hdrs != NULL)
		x->x_hdrs = curl_slist_append(x->x_hdrs, sa != NULL ? sa :
		    HTTP_SOAPACTION);
	free(sa);
	if (x->x_hdrs != NULL)
		x->x_hdrs = curl_slist_append(x->x_hdrs, "Expect:");
	cto = timeout_ms < VMOMI_CONNECT_MS ? timeout_ms : VMOMI_CONNECT_MS;

	rc |= curl_easy_setopt(e, CURLOPT_URL, h->h_url);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->x_req);
	rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->x_hdrs);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cto);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->x_errbuf);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * Detach, not join, a resolver thread when the transfer goes
	 * (see above).  Not fatal: an older libcurl at run time only
	 * blocks again on such a drop.
	 */
	if (curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK)
		log_debug("vmomi: libcurl without CURLOPT_QUICK_EXIT");
#endif
	if (cookie != NULL) {
		xasprintf(&c, "%s=%s", HTTP_COOKIE, cookie);
		rc |= curl_easy_setopt(e, CURLOPT_COOKIE, c);	/* copied */
		explicit_bzero(c, strlen(c));
		free(c);
	}
	rc |= http_tls_opts(h, x);
	if (rc != 0 || x->x_hdrs == NULL) {
		snprintf(msg, msglen, "curl_easy_setopt failed (libcurl "
		    "without OpenSSL or too old?)");
		http_xfer_destroy(x);
		return (VMOMI_E_SYSTEM);
	}
	if (curl_multi_add_handle(h->h_multi, e) != CURLM_OK) {
		snprintf(msg, msglen, "curl_multi_add_handle failed");
		http_xfer_destroy(x);
		return (VMOMI_E_SYSTEM);
	}
	TAILQ_INSERT_TAIL(&h->h_running, x, x_entry);
	*out = x;
	return (VMOMI_OK);
}
