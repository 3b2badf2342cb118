/*
 * vmomi.c -- the session and the operations of libvmomi (see vmomi.h).
 *
 * Every operation is a struct vmomi_req: a small state machine whose
 * steps are SOAP calls.  A step sends one envelope (soap.c) through the
 * transport (http.c); the transport's result is parsed and handed to
 * the request's step function, which either sends the next call or
 * finishes.  Errors found before anything is sent (no session, a bad
 * argument) are reported through a per-request event, so no callback
 * ever runs inside the call that started the request.
 *
 * Callbacks may abort requests or free the client.  While a user
 * callback runs the request is marked (r_incb) and the client counts
 * it (v_busy): vmomi_abort() of that request only unlinks it, and
 * vmomi_free() drops everything else at once but leaves the struct
 * itself for req_call() to free when the callback returns.  A request
 * that reports more than once (retrieve pages) checks after each page
 * whether it still may go on.
 *
 * vmomi_reset() ends the old session with a parting Logout that nobody
 * waits for: a plain transfer on the transport with its own short
 * timeout, outside the request list (not pending, no callback), dropped
 * with the transport by vmomi_free().  Without it every reset would
 * leave a session on vCenter until its idle expiry.  A Logout answer
 * forgets the session only if it is still the one that was logged out:
 * a late answer must not end a newer login.
 *
 * Credentials are never logged, at any level, and every copy of the
 * password or the session cookie is wiped before it is freed.
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

#include "log.h"
#include "text.h"
#include "vmomi.h"
#include "vmomi_int.h"
#include "xmalloc.h"
#include "xtime.h"

#define VMOMI_TOKEN_MAX		4096	/* a retrieve continuation token */
#define VMOMI_NAME_MAX		1024	/* a VM name to find */
#define VMOMI_TASK_MS		300000	/* follow a task this long */
#define VMOMI_TASK_POLL_MS	50	/* first delay between polls */
#define VMOMI_TASK_POLL_MAX_MS	1000	/* longest delay */
#define VMOMI_STR2(x)		#x
#define VMOMI_STR(x)		VMOMI_STR2(x)
#define VMOMI_ACTION_MAX	256	/* a forwarded SOAPAction value */

enum req_kind {
	REQ_DONE,
	REQ_REF,
	REQ_UPDATE,
	REQ_FORWARD,
};

struct vmomi_req;
typedef void	req_step(struct vmomi_req *, int, const char *,
		    const struct vmomi_parsed *);

struct vmomi_req {
	struct vmomi		*r_v;
	uint64_t		 r_id;
	enum req_kind		 r_kind;
	union {
		vmomi_done_cb	*done;
		vmomi_ref_cb	*ref;
		vmomi_update_cb	*update;
		vmomi_answer_cb	*answer;
	}			 r_cb;
	void			*r_arg;
	const char		*r_method;	/* the call in flight */
	req_step		*r_step;
	struct http_xfer	*r_xfer;
	struct event		*r_later;	/* early errors */
	int			 r_linked;
	int			 r_incb;
	int			 r_aborted;
	int			 r_err;
	char			 r_msg[VMOMI_MSG_MAX];
	char			 r_cookie[VMOMI_COOKIE_MAX + 1];
	char			 r_ended[VMOMI_COOKIE_MAX + 1];	/* Logout */
	const struct vmomi_answer *r_answer;	/* forward: during req_call */

	/* Operation state. */
	struct vmomi_moref	 r_pc;		/* retrieve: collector */
	struct vmomi_moref	 r_view;	/* find by name */
	struct vmomi_moref	 r_found;
	size_t			 r_nfound;
	char			*r_name;	/* find: name or uuid */
	struct vmomi_moref	 r_task;	/* reconfigure: its Task */
	struct event		*r_timer;	/* reconfigure: next poll */
	long long		 r_poll_ms;
	long long		 r_deadline;
	TAILQ_ENTRY(vmomi_req)	 r_entry;
};
TAILQ_HEAD(vmomi_reqs, vmomi_req);

struct vmomi {
	struct event_base	*v_base;
	struct http		*v_http;
	char			*v_user;
	char			*v_password;
	long long		 v_timeout_ms;
	uint64_t		 v_next_id;
	struct vmomi_reqs	 v_reqs;
	size_t			 v_npending;
	int			 v_busy;	/* in a user callback */
	int			 v_freeing;	/* vmomi_free() when busy */

	int			 v_have_svc;
	int			 v_logged_in;
	struct vmomi_service	 v_svc;
	char			 v_cookie[VMOMI_COOKIE_MAX + 1];
	char			 v_key[128];	/* UserSession key */
};

static const struct {
	int		 err;
	const char	*msg;
} vmomi_errs[] = {
	{ VMOMI_OK,		"no error" },
	{ VMOMI_E_SYSTEM,	"system error" },
	{ VMOMI_E_ARG,		"bad argument" },
	{ VMOMI_E_CONNECT,	"cannot reach the server" },
	{ VMOMI_E_TLS,		"TLS handshake or certificate refused" },
	{ VMOMI_E_THUMBPRINT,	"certificate thumbprint mismatch" },
	{ VMOMI_E_TIMEOUT,	"timed out" },
	{ VMOMI_E_HTTP,		"unexpected HTTP status" },
	{ VMOMI_E_TOOBIG,	"response too large" },
	{ VMOMI_E_PARSE,	"unexpected response" },
	{ VMOMI_E_FAULT,	"server fault" },
	{ VMOMI_E_NOTAUTH,	"not authenticated" },
	{ VMOMI_E_LOGIN,	"login refused" },
	{ VMOMI_E_VERSION,	"invalid collector version" },
	{ VMOMI_E_CANCELED,	"request canceled" },
	{ VMOMI_E_NOTFOUND,	"not found" },
	{ VMOMI_E_AMBIGUOUS,	"ambiguous name" },
	{ VMOMI_E_NOSESSION,	"not logged in" },
};

static const struct vmomi_moref vmomi_si = {
	"ServiceInstance", "ServiceInstance"
};

static void	vmomi_free_now(struct vmomi *);

/* Describe a VMOMI_* code. */
const char *
vmomi_strerror(int err)
{
	size_t	i;

	for (i = 0; i < sizeof(vmomi_errs) / sizeof(vmomi_errs[0]); i++)
		if (vmomi_errs[i].err == err)
			return (vmomi_errs[i].msg);
	return ("unknown vmomi error");
}

/* ---- requests ---- */

/* Take R off the client's list (it no longer counts as pending). */
static void
req_unlink(struct vmomi_req *r)
{
	if (!r->r_linked)
		return;
	TAILQ_REMOVE(&r->r_v->v_reqs, r, r_entry);
	r->r_v->v_npending--;
	r->r_linked = 0;
}

/* Free R (already unlinked) and whatever it still has in flight. */
static void
req_free(struct vmomi_req *r)
{
	http_xfer_free(r->r_xfer);
	if (r->r_later != NULL)
		event_free(r->r_later);
	free(r->r_name);
	if (r->r_timer != NULL)
		event_free(r->r_timer);
	explicit_bzero(r->r_cookie, sizeof(r->r_cookie));
	explicit_bzero(r->r_ended, sizeof(r->r_ended));
	free(r);
}

/*
 * Run the user's callback.  LAST: the request is over.  Returns 0 when
 * the request may go on, -1 when it is gone (over, aborted in the
 * callback, or the whole client freed there).
 */
static int
req_call(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_moref *ref, const struct vmomi_update *u, int last)
{
	struct vmomi	*v = r->r_v;

	if (err == VMOMI_OK)
		msg = NULL;
	else if (msg == NULL || *msg == '\0')
		msg = vmomi_strerror(err);
	log_debug("vmomi: request %llu (%s) %s%s%s",
	    (unsigned long long)r->r_id, r->r_method,
	    err == VMOMI_OK ? "ok" : "failed: ", msg != NULL ? msg : "",
	    last ? "" : " (more)");

	v->v_busy++;
	r->r_incb = 1;
	switch (r->r_kind) {
	case REQ_DONE:
		if (r->r_cb.done != NULL)
			r->r_cb.done(r->r_id, err, msg, r->r_arg);
		break;
	case REQ_REF:
		if (r->r_cb.ref != NULL)
			r->r_cb.ref(r->r_id, err, msg, ref, r->r_arg);
		break;
	case REQ_UPDATE:
		if (r->r_cb.update != NULL)
			r->r_cb.update(r->r_id, err, msg, u, r->r_arg);
		break;
	case REQ_FORWARD:
		if (r->r_cb.answer != NULL)
			r->r_cb.answer(r->r_id, err, msg, err == VMOMI_OK ?
			    r->r_answer : NULL, r->r_arg);
		break;
	}
	r->r_incb = 0;
	v->v_busy--;

	if (v->v_freeing || r->r_aborted || last) {
		req_unlink(r);
		req_free(r);
		if (v->v_freeing && v->v_busy == 0)
			vmomi_free_now(v);
		return (-1);
	}
	return (0);
}

/* Report the end of R. */
static void
req_finish(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_moref *ref, const struct vmomi_update *u)
{
	req_unlink(r);
	req_call(r, err, msg, ref, u, 1);
}

/* The event behind req_fail(): the error, now from the loop. */
static void
req_later(evutil_socket_t fd, short what, void *arg)
{
	struct vmomi_req	*r = arg;

	req_finish(r, r->r_err, r->r_msg, NULL, NULL);
}

/* End R with ERR from the loop, not from the caller's stack. */
static void
req_fail(struct vmomi_req *r, int err, const char *msg)
{
	r->r_err = err;
	strlcpy(r->r_msg, msg != NULL ? msg : "", sizeof(r->r_msg));
	event_active(r->r_later, EV_TIMEOUT, 0);
}

/* A new request on V; NULL only when V is NULL. */
static struct vmomi_req *
req_new(struct vmomi *v, enum req_kind kind, void *cb, void *arg)
{
	struct vmomi_req	*r;

	if (v == NULL || v->v_freeing)
		return (NULL);
	r = xcalloc(1, sizeof(*r));
	r->r_v = v;
	r->r_id = ++v->v_next_id;
	r->r_kind = kind;
	switch (kind) {
	case REQ_DONE:
		r->r_cb.done = (vmomi_done_cb *)cb;
		break;
	case REQ_REF:
		r->r_cb.ref = (vmomi_ref_cb *)cb;
		break;
	case REQ_UPDATE:
		r->r_cb.update = (vmomi_update_cb *)cb;
		break;
	case REQ_FORWARD:
		r->r_cb.answer = (vmomi_answer_cb *)cb;
		break;
	}
	r->r_arg = arg;
	r->r_method = "-";
	if ((r->r_later = event_new(v->v_base, -1, 0, req_later, r)) ==
	    NULL)
		fatalx("vmomi: event_new failed");
	TAILQ_INSERT_TAIL(&v->v_reqs, r, r_entry);
	r->r_linked = 1;
	v->v_npending++;
	return (r);
}

/* The transport finished R's call: parse, then the step decides. */
static void
req_http_done(const struct http_result *res, void *arg)
{
	struct vmomi_req	*r = arg;
	struct vmomi_parsed	*p = NULL;
	char			 msg[VMOMI_MSG_MAX];
	int			 err;

	r->r_xfer = NULL;
	r->r_cookie[0] = '\0';
	if (res->cookie != NULL)
		strlcpy(r->r_cookie, res->cookie, sizeof(r->r_cookie));
	if (res->err != VMOMI_OK) {
		r->r_step(r, res->err, res->msg, NULL);
		return;
	}
	err = soap_parse(res->body, res->len, res->status, r->r_method, &p,
	    msg, sizeof(msg));
	r->r_step(r, err, msg, p);	/* may free R and the client */
	soap_parsed_free(p);
}

/*
 * Send M (METHOD) for R; STEP gets the answer.  EXTRA_MS is added to
 * the call timeout (a wait's maxWaitSeconds).  NOCOOKIE: without the
 * session (Login starts its own).
 */
static void
req_send(struct vmomi_req *r, const char *method, struct soap_msg *m,
    req_step *step, long long extra_ms, int nocookie)
{
	struct vmomi	*v = r->r_v;
	char		*body, msg[VMOMI_MSG_MAX];
	size_t		 len;
	int		 err;

	r->r_method = method;
	r->r_step = step;
	if ((err = soap_msg_finish(m, &body, &len, msg, sizeof(msg))) !=
	    VMOMI_OK) {
		req_fail(r, err, msg);
		return;
	}
	log_debug("vmomi: request %llu: %s (%zu bytes)",
	    (unsigned long long)r->r_id, method, len);
	err = http_post(v->v_http, body, len, nocookie ||
	    v->v_cookie[0] == '\0' ? NULL : v->v_cookie,
	    v->v_timeout_ms + extra_ms, req_http_done, r, &r->r_xfer, msg,
	    sizeof(msg));
	if (err != VMOMI_OK)
		req_fail(r, err, msg);
}

/* One-call operations: report what the answer carries. */
static void
req_step_simple(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	struct vmomi_moref	ref;

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	switch (r->r_kind) {
	case REQ_DONE:
		req_finish(r, VMOMI_OK, NULL, NULL, NULL);
		break;
	case REQ_REF:
		if (soap_parsed_moref(p, &ref) == -1)
			req_finish(r, VMOMI_E_NOTFOUND, "no object returned",
			    NULL, NULL);
		else
			req_finish(r, VMOMI_OK, NULL, &ref, NULL);
		break;
	case REQ_UPDATE:
		req_finish(r, VMOMI_OK, NULL, NULL, soap_parsed_update(p));
		break;
	case REQ_FORWARD:	/* never a one-call operation */
		req_finish(r, VMOMI_E_ARG, "forward is not a step", NULL,
		    NULL);
		break;
	}
}

/*
 * Start R as a one-call operation on the session: METHOD on THIS
 * with BODY appended by the caller through *MP; NULL when R is already
 * failing (no session, bad moref).
 */
static struct soap_msg *
req_begin(struct vmomi_req *r, const char *method,
    const struct vmomi_moref *this)
{
	if (r == NULL)
		return (NULL);
	r->r_method = method;
	if (!r->r_v->v_logged_in) {
		req_fail(r, VMOMI_E_NOSESSION, "call vmomi_login first");
		return (NULL);
	}
	if (!soap_moref_ok(this)) {
		req_fail(r, VMOMI_E_ARG, "missing or bad moref");
		return (NULL);
	}
	return (soap_msg_new(method, this));
}

/* ---- the client ---- */

/*
 * An http:// or https:// URL with a host and no user info: callers log
 * and show the URL, so it must never carry a password.
 */
static int
vmomi_url_ok(const char *url)
{
	size_t	skip, n;

	if (strncasecmp(url, "https://", 8) == 0)
		skip = 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		skip = 7;
	else
		return (0);
	n = strcspn(url + skip, "/?#");
	return (n > 0 && memchr(url + skip, '@', n) == NULL);
}

/* A client on BASE; CONF is copied. */
int
vmomi_new(struct event_base *base, const struct vmomi_conf *conf,
    struct vmomi **out)
{
	static int		 curl_ready;
	struct vmomi		*v;
	struct http_conf	 hc;
	unsigned char		 pin[32];
	const curl_version_info_data *ci;
	char			 msg[VMOMI_MSG_MAX];
	int			 pinlen = 0, https, err;

	if (out == NULL)
		return (VMOMI_E_ARG);
	*out = NULL;
	if (base == NULL || conf == NULL || conf->url == NULL ||
	    conf->timeout_ms < 0)
		return (VMOMI_E_ARG);
	https = strncasecmp(conf->url, "https://", 8) == 0;
	if (!vmomi_url_ok(conf->url))
		return (VMOMI_E_ARG);
	if (conf->thumbprint != NULL) {
		pinlen = soap_thumbprint_parse(conf->thumbprint, pin,
		    sizeof(pin));
		/* A pin excludes the other modes: say which one is meant. */
		if (pinlen == -1 || !https || conf->insecure ||
		    conf->cacert != NULL)
			return (VMOMI_E_ARG);
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return (VMOMI_E_SYSTEM);
		curl_ready = 1;
	}
	ci = curl_version_info(CURLVERSION_NOW);
	if (ci == NULL || !(ci->features & CURL_VERSION_ASYNCHDNS)) {
		/* Its name lookups would stall the caller's whole loop. */
		log_debug("vmomi: libcurl without asynchronous DNS");
		return (VMOMI_E_SYSTEM);
	}
	if (pinlen > 0 && (ci == NULL || ci->ssl_version == NULL ||
	    strncmp(ci->ssl_version, "OpenSSL", 7) != 0)) {
		log_debug("vmomi: thumbprint pinning needs libcurl on "
		    "OpenSSL");
		return (VMOMI_E_SYSTEM);
	}

	v = xcalloc(1, sizeof(*v));
	v->v_base = base;
	TAILQ_INIT(&v->v_reqs);
	if (conf->user != NULL)
		v->v_user = xstrdup(conf->user);
	if (conf->password != NULL)
		v->v_password = xstrdup(conf->password);
	v->v_timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms :
	    VMOMI_TIMEOUT_MS;

	memset(&hc, 0, sizeof(hc));
	hc.url = conf->url;
	hc.cacert = conf->cacert;
	hc.pin = pinlen > 0 ? pin : NULL;
	hc.pinlen = pinlen > 0 ? (size_t)pinlen : 0;
	hc.insecure = conf->insecure;
	hc.max_response = conf->max_response > 0 ? conf->max_response :
	    VMOMI_RESPONSE_MAX;
	err = http_new(base, &hc, &v->v_http, msg, sizeof(msg));
	explicit_bzero(pin, sizeof(pin));
	if (err != VMOMI_OK) {
		log_debug("vmomi: %s", msg);
		vmomi_free_now(v);
		return (err);
	}
	*out = v;
	return (VMOMI_OK);
}

/* Really free V (no callback is running). */
static void
vmomi_free_now(struct vmomi *v)
{
	struct vmomi_req	*r;

	while ((r = TAILQ_FIRST(&v->v_reqs)) != NULL) {
		req_unlink(r);
		req_free(r);
	}
	http_free(v->v_http);
	free(v->v_user);
	if (v->v_password != NULL) {
		explicit_bzero(v->v_password, strlen(v->v_password));
		free(v->v_password);
	}
	explicit_bzero(v->v_cookie, sizeof(v->v_cookie));
	explicit_bzero(v->v_key, sizeof(v->v_key));
	free(v);
}

/* Abort every request (no callbacks) and free; NULL is fine. */
void
vmomi_free(struct vmomi *v)
{
	struct vmomi_req	*r, *next;

	if (v == NULL || v->v_freeing)
		return;
	if (v->v_busy == 0) {
		vmomi_free_now(v);
		return;
	}
	/* Inside a callback: everything but that request goes now. */
	for (r = TAILQ_FIRST(&v->v_reqs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, r_entry);
		req_unlink(r);
		if (r->r_incb)
			r->r_aborted = 1;
		else
			req_free(r);
	}
	http_free(v->v_http);
	v->v_http = NULL;
	v->v_freeing = 1;
}

/* Drop request ID: its callback will not run. */
void
vmomi_abort(struct vmomi *v, uint64_t id)
{
	struct vmomi_req	*r;

	if (v == NULL)
		return;
	TAILQ_FOREACH(r, &v->v_reqs, r_entry)
		if (r->r_id == id)
			break;
	if (r == NULL)
		return;
	req_unlink(r);
	if (r->r_incb)
		r->r_aborted = 1;	/* req_call() frees it */
	else
		req_free(r);
}

/* The parting Logout answered, or not: nobody waits for it. */
static void
vmomi_reset_done(const struct http_result *res, void *arg)
{
	log_debug("vmomi: Logout of the old session: %s",
	    res->err != VMOMI_OK ? res->msg : res->status == 200 ? "ok" :
	    "refused");
}

/* Send Logout with the current cookie, waiting for no answer. */
static void
vmomi_reset_logout(struct vmomi *v)
{
	struct http_xfer	*x;
	struct soap_msg		*m;
	char			*body, msg[VMOMI_MSG_MAX];
	size_t			 len;
	long long		 ms;

	if (v->v_http == NULL || v->v_cookie[0] == '\0' || !v->v_have_svc)
		return;
	m = soap_msg_new("Logout", &v->v_svc.session_manager);
	if (soap_msg_finish(m, &body, &len, msg, sizeof(msg)) != VMOMI_OK) {
		log_debug("vmomi: Logout: %s", msg);
		return;
	}
	ms = v->v_timeout_ms < VMOMI_LOGOUT_MS ? v->v_timeout_ms :
	    VMOMI_LOGOUT_MS;
	if (http_post(v->v_http, body, len, v->v_cookie, ms,
	    vmomi_reset_done, NULL, &x, msg, sizeof(msg)) != VMOMI_OK)
		log_debug("vmomi: Logout: %s", msg);
}

/* End the session (a parting Logout), forget it and the service content. */
void
vmomi_reset(struct vmomi *v)
{
	if (v == NULL)
		return;
	vmomi_reset_logout(v);
	explicit_bzero(v->v_cookie, sizeof(v->v_cookie));
	memset(v->v_key, 0, sizeof(v->v_key));
	memset(&v->v_svc, 0, sizeof(v->v_svc));
	v->v_have_svc = 0;
	v->v_logged_in = 0;
}

/* The service content once logged in. */
const struct vmomi_service *
vmomi_service(const struct vmomi *v)
{
	if (v == NULL || !v->v_logged_in)
		return (NULL);
	return (&v->v_svc);
}

/* Requests not yet reported. */
size_t
vmomi_pending(const struct vmomi *v)
{
	return (v != NULL ? v->v_npending : 0);
}

/* ---- session ---- */

/* Login answered: keep the session cookie and key. */
static void
login_done(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	struct vmomi	*v = r->r_v;
	const char	*key;

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	key = soap_val_text(soap_val_child(soap_parsed_val(p), "key"));
	if (r->r_cookie[0] == '\0' || key == NULL) {
		req_finish(r, VMOMI_E_PARSE, "Login answer without a "
		    "vmware_soap_session cookie", NULL, NULL);
		return;
	}
	strlcpy(v->v_cookie, r->r_cookie, sizeof(v->v_cookie));
	strlcpy(v->v_key, key, sizeof(v->v_key));
	explicit_bzero(r->r_cookie, sizeof(r->r_cookie));
	v->v_logged_in = 1;
	req_finish(r, VMOMI_OK, NULL, NULL, NULL);
}

/* Send Login (never with the old cookie: that session may be alive). */
static void
login_send(struct vmomi_req *r)
{
	struct vmomi	*v = r->r_v;
	struct soap_msg	*m;

	m = soap_msg_new("Login", &v->v_svc.session_manager);
	soap_msg_text(m, "userName", v->v_user);
	soap_msg_text(m, "password", v->v_password);
	req_send(r, "Login", m, login_done, 0, 1);
}

/* RetrieveServiceContent answered: keep it, then log in. */
static void
login_svc(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	struct vmomi	*v = r->r_v;

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	if (soap_parsed_service(p, &v->v_svc) == -1) {
		req_finish(r, VMOMI_E_PARSE, "no ServiceContent", NULL, NULL);
		return;
	}
	v->v_have_svc = 1;
	login_send(r);
}

/* RetrieveServiceContent (first time), then Login. */
uint64_t
vmomi_login(struct vmomi *v, vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	r->r_method = "Login";
	if (v->v_user == NULL || v->v_password == NULL ||
	    v->v_user[0] == '\0')
		req_fail(r, VMOMI_E_ARG, "no user name or password");
	else if (!v->v_have_svc)
		req_send(r, "RetrieveServiceContent",
		    soap_msg_new("RetrieveServiceContent", &vmomi_si),
		    login_svc, 0, 1);
	else
		login_send(r);
	return (r->r_id);
}

/*
 * Logout answered (or not): that session is gone either way, but a
 * newer one (reset and login meanwhile) stays.
 */
static void
logout_done(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	struct vmomi	*v = r->r_v;

	if (r->r_ended[0] != '\0' && strcmp(r->r_ended, v->v_cookie) == 0) {
		explicit_bzero(v->v_cookie, sizeof(v->v_cookie));
		memset(v->v_key, 0, sizeof(v->v_key));
		v->v_logged_in = 0;
	}
	req_finish(r, err, msg, NULL, NULL);
}

/* SessionManager.Logout; the session is forgotten when it answers. */
uint64_t
vmomi_logout(struct vmomi *v, vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	strlcpy(r->r_ended, v->v_cookie, sizeof(r->r_ended));
	if ((m = req_begin(r, "Logout", &v->v_svc.session_manager)) != NULL)
		req_send(r, "Logout", m, logout_done, 0, 0);
	return (r->r_id);
}

/* SessionIsActive answered: false is VMOMI_E_NOTAUTH. */
static void
active_done(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	const char	*t;

	if (err == VMOMI_OK) {
		t = soap_val_text(soap_parsed_val(p));
		if (t == NULL || strcmp(t, "true") != 0) {
			err = VMOMI_E_NOTAUTH;
			msg = "session is not active";
		}
	}
	req_finish(r, err, msg, NULL, NULL);
}

/* SessionIsActive on our own session. */
uint64_t
vmomi_session_active(struct vmomi *v, vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	m = req_begin(r, "SessionIsActive", &v->v_svc.session_manager);
	if (m == NULL)
		return (r->r_id);
	soap_msg_text(m, "sessionID", v->v_key);
	soap_msg_text(m, "userName", v->v_user);
	req_send(r, "SessionIsActive", m, active_done, 0, 0);
	return (r->r_id);
}

/* ---- finding a VM ---- */

/* 8-4-4-4-12 hex digits. */
static int
vmomi_is_uuid(const char *s)
{
	size_t	i;

	if (strlen(s) != 36)
		return (0);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return (0);
		} else if (strchr("0123456789abcdefABCDEF", s[i]) == NULL)
			return (0);
	}
	return (1);
}

/* FindByUuid for R's uuid, as an instance UUID or a BIOS one. */
static void
find_uuid_send(struct vmomi_req *r, int instance, req_step *step)
{
	struct soap_msg	*m;

	m = soap_msg_new("FindByUuid", &r->r_v->v_svc.search_index);
	soap_msg_text(m, "uuid", r->r_name);
	soap_msg_raw(m, "<vmSearch>true</vmSearch>");
	if (instance)
		soap_msg_raw(m, "<instanceUuid>true</instanceUuid>");
	req_send(r, "FindByUuid", m, step, 0, 0);
}

/* A Find* answer: the moref, or VMOMI_E_NOTFOUND. */
static void
find_ref_done(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	struct vmomi_moref	ref;
	char			m2[VMOMI_MSG_MAX];

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	if (soap_parsed_moref(p, &ref) == -1) {
		snprintf(m2, sizeof(m2), "no VM %.200s", r->r_name);
		req_finish(r, VMOMI_E_NOTFOUND, m2, NULL, NULL);
		return;
	}
	req_finish(r, VMOMI_OK, NULL, &ref, NULL);
}

/* By instance UUID: found, or try the BIOS UUID. */
static void
find_uuid1_done(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	struct vmomi_moref	ref;

	if (err == VMOMI_OK && soap_parsed_moref(p, &ref) == -1)
		find_uuid_send(r, 0, find_ref_done);
	else
		find_ref_done(r, err, msg, p);
}

/* DestroyView answered: report the name search's outcome. */
static void
find_view_gone(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	char	m2[VMOMI_MSG_MAX];

	if (r->r_err != VMOMI_OK)
		req_finish(r, r->r_err, r->r_msg, NULL, NULL);
	else if (r->r_nfound == 0) {
		snprintf(m2, sizeof(m2), "no VM named %.200s", r->r_name);
		req_finish(r, VMOMI_E_NOTFOUND, m2, NULL, NULL);
	} else if (r->r_nfound > 1) {
		snprintf(m2, sizeof(m2), "%zu VMs are named %.200s",
		    r->r_nfound, r->r_name);
		req_finish(r, VMOMI_E_AMBIGUOUS, m2, NULL, NULL);
	} else
		req_finish(r, VMOMI_OK, NULL, &r->r_found, NULL);
}

/* Done with the view, whatever happened: destroy it, then report. */
static void
find_view_destroy(struct vmomi_req *r, int err, const char *msg)
{
	r->r_err = err;
	strlcpy(r->r_msg, msg != NULL ? msg : "", sizeof(r->r_msg));
	req_send(r, "DestroyView", soap_msg_new("DestroyView", &r->r_view),
	    find_view_gone, 0, 0);
}

/* The continuation token of a retrieve answer, or NULL. */
static const char *
vmomi_token(const struct vmomi_parsed *p)
{
	return (soap_val_text(soap_val_child(soap_parsed_val(p),
	    "token")));
}

/* Send ContinueRetrievePropertiesEx(TOKEN) on R's collector. */
static void
retrieve_continue(struct vmomi_req *r, const char *token, req_step *step)
{
	struct soap_msg	*m;

	if (strlen(token) > VMOMI_TOKEN_MAX) {
		req_fail(r, VMOMI_E_PARSE, "continuation token too long");
		return;
	}
	m = soap_msg_new("ContinueRetrievePropertiesEx", &r->r_pc);
	soap_msg_text(m, "token", token);
	req_send(r, "ContinueRetrievePropertiesEx", m, step, 0, 0);
}

/* A page of VM names: count exact matches, continue or clean up. */
static void
find_page(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	const struct vmomi_update	*u;
	const char			*t, *token;
	size_t				 i, j;

	if (err != VMOMI_OK) {
		find_view_destroy(r, err, msg);
		return;
	}
	u = soap_parsed_update(p);
	for (i = 0; u != NULL && i < u->nobjects; i++)
		for (j = 0; j < u->objects[i].nchanges; j++) {
			if (strcmp(u->objects[i].changes[j].name, "name") != 0)
				continue;
			t = soap_val_text(u->objects[i].changes[j].val);
			if (t == NULL || strcmp(t, r->r_name) != 0)
				continue;
			if (r->r_nfound++ == 0)
				r->r_found = u->objects[i].obj;
		}
	if ((token = vmomi_token(p)) != NULL)
		retrieve_continue(r, token, find_page);
	else
		find_view_destroy(r, VMOMI_OK, NULL);
}

/* The view exists: retrieve every VM's name through it. */
static void
find_view_done(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	static const char *const	 paths[] = { "name", NULL };
	struct vmomi_spec		 spec;
	struct soap_msg			*m;

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	if (soap_parsed_moref(p, &r->r_view) == -1) {
		req_finish(r, VMOMI_E_PARSE, "no view", NULL, NULL);
		return;
	}
	memset(&spec, 0, sizeof(spec));
	spec.obj = r->r_view;
	spec.view = 1;
	spec.type = "VirtualMachine";
	spec.paths = paths;
	r->r_pc = r->r_v->v_svc.property_collector;
	m = soap_msg_new("RetrievePropertiesEx", &r->r_pc);
	soap_msg_spec(m, "specSet", &spec);
	soap_msg_raw(m, "<options/>");
	req_send(r, "RetrievePropertiesEx", m, find_page, 0, 0);
}

/* Find a VM by UUID, inventory path or exact name. */
uint64_t
vmomi_find_vm(struct vmomi *v, const char *what, vmomi_ref_cb *cb,
    void *arg)
{
	struct vmomi_req	*r;
	struct vmomi_service	*s;
	struct soap_msg		*m;

	if ((r = req_new(v, REQ_REF, (void *)cb, arg)) == NULL)
		return (0);
	s = &v->v_svc;
	r->r_method = "FindVM";
	if (what == NULL || what[0] == '\0' ||
	    strlen(what) > VMOMI_NAME_MAX) {
		req_fail(r, VMOMI_E_ARG, "no VM name, path or UUID");
		return (r->r_id);
	}
	r->r_name = xstrdup(what);
	if (vmomi_is_uuid(what)) {
		if ((m = req_begin(r, "FindByUuid", &s->search_index)) !=
		    NULL) {
			soap_msg_free(m);
			find_uuid_send(r, 1, find_uuid1_done);
		}
	} else if (strchr(what, '/') != NULL) {
		m = req_begin(r, "FindByInventoryPath", &s->search_index);
		if (m != NULL) {
			soap_msg_text(m, "inventoryPath", what);
			req_send(r, "FindByInventoryPath", m, find_ref_done,
			    0, 0);
		}
	} else {
		m = req_begin(r, "CreateContainerView", &s->view_manager);
		if (m != NULL && !soap_moref_ok(&s->root_folder)) {
			soap_msg_free(m);
			req_fail(r, VMOMI_E_ARG, "no root folder");
		} else if (m != NULL) {
			soap_msg_moref(m, "container", &s->root_folder);
			soap_msg_text(m, "type", "VirtualMachine");
			soap_msg_raw(m, "<recursive>true</recursive>");
			req_send(r, "CreateContainerView", m,
			    find_view_done, 0, 0);
		}
	}
	return (r->r_id);
}

/* Send a one-call operation's message M, unless R already failed. */
static uint64_t
vmomi_simple(struct vmomi_req *r, const char *method, struct soap_msg *m,
    long long extra_ms)
{
	if (m != NULL)
		req_send(r, method, m, req_step_simple, extra_ms, 0);
	return (r->r_id);
}

/* ---- views, collectors, filters, waits ---- */

/* ViewManager.CreateContainerView(CONTAINER, [TYPE], RECURSIVE). */
uint64_t
vmomi_view_create(struct vmomi *v, const struct vmomi_moref *container,
    const char *type, int recursive, vmomi_ref_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;

	if ((r = req_new(v, REQ_REF, (void *)cb, arg)) == NULL)
		return (0);
	m = req_begin(r, "CreateContainerView", &v->v_svc.view_manager);
	if (m != NULL) {
		soap_msg_moref(m, "container", container);
		if (type != NULL)
			soap_msg_text(m, "type", type);
		soap_msg_raw(m, recursive ? "<recursive>true</recursive>" :
		    "<recursive>false</recursive>");
	}
	return (vmomi_simple(r, "CreateContainerView", m, 0));
}

/* DestroyView. */
uint64_t
vmomi_view_destroy(struct vmomi *v, const struct vmomi_moref *view,
    vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	return (vmomi_simple(r, "DestroyView",
	    req_begin(r, "DestroyView", view), 0));
}

/* A retrieve page: report it, then fetch the next one. */
static void
retrieve_page(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	const struct vmomi_update	*u;
	const char			*token;
	char				*tok;

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	u = soap_parsed_update(p);
	if ((token = vmomi_token(p)) == NULL) {
		req_finish(r, VMOMI_OK, NULL, NULL, u);
		return;
	}
	tok = xstrdup(token);	/* the callback may abort and free R */
	if (req_call(r, VMOMI_OK, NULL, NULL, u, 0) == 0)
		retrieve_continue(r, tok, retrieve_page);
	free(tok);
}

/* RetrievePropertiesEx on the default collector, paged. */
uint64_t
vmomi_retrieve(struct vmomi *v, const struct vmomi_spec *spec,
    vmomi_update_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;

	if ((r = req_new(v, REQ_UPDATE, (void *)cb, arg)) == NULL)
		return (0);
	m = req_begin(r, "RetrievePropertiesEx",
	    &v->v_svc.property_collector);
	if (m == NULL)
		return (r->r_id);
	if (!soap_spec_ok(spec)) {
		soap_msg_free(m);
		req_fail(r, VMOMI_E_ARG, "bad spec");
		return (r->r_id);
	}
	r->r_pc = v->v_svc.property_collector;
	soap_msg_spec(m, "specSet", spec);
	soap_msg_raw(m, "<options/>");
	req_send(r, "RetrievePropertiesEx", m, retrieve_page, 0, 0);
	return (r->r_id);
}

/* CreatePropertyCollector on the default collector. */
uint64_t
vmomi_pc_create(struct vmomi *v, vmomi_ref_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_REF, (void *)cb, arg)) == NULL)
		return (0);
	return (vmomi_simple(r, "CreatePropertyCollector",
	    req_begin(r, "CreatePropertyCollector",
	    &v->v_svc.property_collector), 0));
}

/* DestroyPropertyCollector. */
uint64_t
vmomi_pc_destroy(struct vmomi *v, const struct vmomi_moref *pc,
    vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	return (vmomi_simple(r, "DestroyPropertyCollector",
	    req_begin(r, "DestroyPropertyCollector", pc), 0));
}

/* CreateFilter(SPEC, partialUpdates false) on PC. */
uint64_t
vmomi_filter_create(struct vmomi *v, const struct vmomi_moref *pc,
    const struct vmomi_spec *spec, vmomi_ref_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;

	if ((r = req_new(v, REQ_REF, (void *)cb, arg)) == NULL)
		return (0);
	if ((m = req_begin(r, "CreateFilter", pc)) == NULL)
		return (r->r_id);
	if (!soap_spec_ok(spec)) {
		soap_msg_free(m);
		req_fail(r, VMOMI_E_ARG, "bad spec");
		return (r->r_id);
	}
	soap_msg_spec(m, "spec", spec);
	soap_msg_raw(m, "<partialUpdates>false</partialUpdates>");
	return (vmomi_simple(r, "CreateFilter", m, 0));
}

/* DestroyPropertyFilter. */
uint64_t
vmomi_filter_destroy(struct vmomi *v, const struct vmomi_moref *filter,
    vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	return (vmomi_simple(r, "DestroyPropertyFilter",
	    req_begin(r, "DestroyPropertyFilter", filter), 0));
}

/* WaitForUpdatesEx(VERSION, maxWaitSeconds MAXWAIT_S) on PC. */
uint64_t
vmomi_wait(struct vmomi *v, const struct vmomi_moref *pc,
    const char *version, int maxwait_s, vmomi_update_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;
	char			 n[32];

	if ((r = req_new(v, REQ_UPDATE, (void *)cb, arg)) == NULL)
		return (0);
	if ((m = req_begin(r, "WaitForUpdatesEx", pc)) == NULL)
		return (r->r_id);
	if (maxwait_s < 0 || maxwait_s > 24 * 3600) {
		soap_msg_free(m);
		req_fail(r, VMOMI_E_ARG, "maxWaitSeconds out of range");
		return (r->r_id);
	}
	soap_msg_text(m, "version", version != NULL ? version : "");
	snprintf(n, sizeof(n), "%d", maxwait_s);
	soap_msg_open(m, "options");
	soap_msg_text(m, "maxWaitSeconds", n);
	soap_msg_close(m, "options");
	return (vmomi_simple(r, "WaitForUpdatesEx", m,
	    (long long)maxwait_s * 1000));
}

/* CancelWaitForUpdates on PC. */
uint64_t
vmomi_wait_cancel(struct vmomi *v, const struct vmomi_moref *pc,
    vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	return (vmomi_simple(r, "CancelWaitForUpdates",
	    req_begin(r, "CancelWaitForUpdates", pc), 0));
}

/* ---- events ---- */

/* EventManager.CreateCollectorForEvents for TYPES about ENTITY. */
uint64_t
vmomi_events_create(struct vmomi *v, const struct vmomi_moref *entity,
    const char *const *types, vmomi_ref_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;
	const char *const	*t;

	if ((r = req_new(v, REQ_REF, (void *)cb, arg)) == NULL)
		return (0);
	m = req_begin(r, "CreateCollectorForEvents",
	    &v->v_svc.event_manager);
	if (m != NULL) {
		soap_msg_open(m, "filter");
		if (entity != NULL) {
			soap_msg_open(m, "entity");
			soap_msg_moref(m, "entity", entity);
			soap_msg_raw(m, "<recursion>self</recursion>");
			soap_msg_close(m, "entity");
		}
		for (t = types; t != NULL && *t != NULL; t++)
			soap_msg_text(m, "eventTypeId", *t);
		soap_msg_close(m, "filter");
	}
	return (vmomi_simple(r, "CreateCollectorForEvents", m, 0));
}

/* DestroyCollector. */
uint64_t
vmomi_events_destroy(struct vmomi *v, const struct vmomi_moref *c,
    vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	return (vmomi_simple(r, "DestroyCollector",
	    req_begin(r, "DestroyCollector", c), 0));
}

/* ---- reconfigure: extraConfig, then follow the Task ---- */

static void	task_poll(struct vmomi_req *);

/* The poll delay passed: ask again. */
static void
task_timer(evutil_socket_t fd, short what, void *arg)
{
	task_poll(arg);
}

/*
 * The Task's info.state and info.error: success ends R; error ends it
 * with the task's fault ("Type: localizedMessage", the type's code);
 * queued or running asks again after a delay that doubles, up to the
 * deadline.
 */
static void
task_state(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	const struct vmomi_update	*u;
	const struct vmomi_change	*c;
	const struct vmomi_val		*fault = NULL;
	const char			*state = NULL, *type, *lm;
	char				 m2[VMOMI_MSG_MAX];
	struct timeval			 tv;
	size_t				 i;

	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	u = soap_parsed_update(p);
	for (i = 0; u != NULL && u->nobjects > 0 &&
	    i < u->objects[0].nchanges; i++) {
		c = &u->objects[0].changes[i];
		if (strcmp(c->name, "info.state") == 0)
			state = soap_val_text(c->val);
		else if (strcmp(c->name, "info.error") == 0)
			fault = c->val;
	}
	if (state == NULL) {
		snprintf(m2, sizeof(m2), "task %.100s: no info.state",
		    r->r_task.value);
		req_finish(r, VMOMI_E_PARSE, m2, NULL, NULL);
		return;
	}
	if (strcmp(state, "success") == 0) {
		req_finish(r, VMOMI_OK, NULL, NULL, NULL);
		return;
	}
	if (strcmp(state, "error") == 0) {
		type = soap_val_type(soap_val_child(fault, "fault"));
		lm = soap_val_text(soap_val_child(fault, "localizedMessage"));
		if (type == NULL || type[0] == '\0')
			type = "unknown fault";
		if (lm != NULL && lm[0] != '\0')
			snprintf(m2, sizeof(m2), "ReconfigVM_Task: %.100s: "
			    "%.300s", type, lm);
		else
			snprintf(m2, sizeof(m2), "ReconfigVM_Task: %.100s",
			    type);
		text_ascii(m2);
		req_finish(r, soap_fault_code(type), m2, NULL, NULL);
		return;
	}
	if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0) {
		snprintf(m2, sizeof(m2), "task %.100s: bad info.state %.40s",
		    r->r_task.value, state);
		text_ascii(m2);
		req_finish(r, VMOMI_E_PARSE, m2, NULL, NULL);
		return;
	}
	if (xtime_mono_ms() >= r->r_deadline) {
		snprintf(m2, sizeof(m2), "task %.100s still %s after %d s "
		    "(it may yet complete)", r->r_task.value, state,
		    VMOMI_TASK_MS / 1000);
		req_finish(r, VMOMI_E_TIMEOUT, m2, NULL, NULL);
		return;
	}
	xtime_tv(r->r_poll_ms, &tv);
	evtimer_add(r->r_timer, &tv);
	r->r_poll_ms *= 2;
	if (r->r_poll_ms > VMOMI_TASK_POLL_MAX_MS)
		r->r_poll_ms = VMOMI_TASK_POLL_MAX_MS;
}

/* RetrievePropertiesEx(info.state, info.error) of R's Task. */
static void
task_poll(struct vmomi_req *r)
{
	static const char *const	 paths[] = { "info.state",
					    "info.error", NULL };
	struct vmomi_spec		 spec;
	struct soap_msg			*m;

	if (!r->r_v->v_logged_in) {
		req_fail(r, VMOMI_E_NOSESSION, "the session was reset while "
		    "following the task");
		return;
	}
	memset(&spec, 0, sizeof(spec));
	spec.obj = r->r_task;
	spec.type = "Task";
	spec.paths = paths;
	m = soap_msg_new("RetrievePropertiesEx",
	    &r->r_v->v_svc.property_collector);
	soap_msg_spec(m, "specSet", &spec);
	soap_msg_raw(m, "<options/>");
	req_send(r, "RetrievePropertiesEx", m, task_state, 0, 0);
}

/* ReconfigVM_Task answered with its Task: follow it, first at once. */
static void
reconfig_started(struct vmomi_req *r, int err, const char *msg,
    const struct vmomi_parsed *p)
{
	if (err != VMOMI_OK) {
		req_finish(r, err, msg, NULL, NULL);
		return;
	}
	if (soap_parsed_moref(p, &r->r_task) == -1) {
		req_finish(r, VMOMI_E_PARSE, "ReconfigVM_Task: no Task",
		    NULL, NULL);
		return;
	}
	r->r_poll_ms = VMOMI_TASK_POLL_MS;
	r->r_deadline = xtime_mono_ms() + VMOMI_TASK_MS;
	task_poll(r);
}

/* ReconfigVM_Task(VM, extraConfig OPTS[N]), followed to its end. */
uint64_t
vmomi_reconfig_extra(struct vmomi *v, const struct vmomi_moref *vm,
    const struct vmomi_option *opts, size_t n, vmomi_done_cb *cb, void *arg)
{
	struct vmomi_req	*r;
	struct soap_msg		*m;
	size_t			 i;

	if ((r = req_new(v, REQ_DONE, (void *)cb, arg)) == NULL)
		return (0);
	if ((r->r_timer = evtimer_new(v->v_base, task_timer, r)) == NULL)
		fatalx("vmomi: evtimer_new failed");
	if ((m = req_begin(r, "ReconfigVM_Task", vm)) == NULL)
		return (r->r_id);
	if (opts == NULL || n == 0 || n > VMOMI_OPTIONS_MAX) {
		soap_msg_free(m);
		req_fail(r, VMOMI_E_ARG, "extraConfig: 1 to "
		    VMOMI_STR(VMOMI_OPTIONS_MAX) " entries");
		return (r->r_id);
	}
	for (i = 0; i < n; i++)
		if (opts[i].key == NULL || opts[i].key[0] == '\0' ||
		    opts[i].value == NULL) {
			soap_msg_free(m);
			req_fail(r, VMOMI_E_ARG, "extraConfig: an entry "
			    "without a key or a value");
			return (r->r_id);
		}
	soap_msg_open(m, "spec");
	for (i = 0; i < n; i++) {
		soap_msg_open(m, "extraConfig");
		soap_msg_text(m, "key", opts[i].key);
		soap_msg_typed(m, "value", "xsd:string", opts[i].value);
		soap_msg_close(m, "extraConfig");
	}
	soap_msg_close(m, "spec");
	req_send(r, "ReconfigVM_Task", m, reconfig_started, 0, 0);
	return (r->r_id);
}

/* ---- the parser and values (soap.c), for callers and fuzzers ---- */

/* Parse one response to METHOD (see vmomi.h). */
int
vmomi_parse(const char *body, size_t len, long status, const char *method,
    struct vmomi_parsed **out, char *msg, size_t msglen)
{
	return (soap_parse(body, len, status, method, out, msg, msglen));
}

/* The update inside a parsed answer, or NULL. */
const struct vmomi_update *
vmomi_parsed_update(const struct vmomi_parsed *p)
{
	return (soap_parsed_update(p));
}

/* The first returnval as a moref: 0, or -1. */
int
vmomi_parsed_moref(const struct vmomi_parsed *p, struct vmomi_moref *r)
{
	return (soap_parsed_moref(p, r));
}

/* The first returnval as a value, or NULL. */
const struct vmomi_val *
vmomi_parsed_val(const struct vmomi_parsed *p)
{
	return (soap_parsed_val(p));
}

/* The ServiceContent of a RetrieveServiceContent answer: 0, or -1. */
int
vmomi_parsed_service(const struct vmomi_parsed *p, struct vmomi_service *s)
{
	return (soap_parsed_service(p, s));
}

/* Free a parsed answer; NULL is fine. */
void
vmomi_parsed_free(struct vmomi_parsed *p)
{
	soap_parsed_free(p);
}

/* A value's xsi:type, prefix stripped, or NULL. */
const char *
vmomi_val_type(const struct vmomi_val *v)
{
	return (soap_val_type(v));
}

/* A value's text, or NULL when it has child elements. */
const char *
vmomi_val_text(const struct vmomi_val *v)
{
	return (soap_val_text(v));
}

/* 0 and *R when V is a moref. */
int
vmomi_val_moref(const struct vmomi_val *v, struct vmomi_moref *r)
{
	return (soap_val_moref(v, r));
}

/* 0 and *OUT when V's text is a decimal integer. */
int
vmomi_val_int(const struct vmomi_val *v, long long *out)
{
	return (soap_val_int(v, out));
}

/* V's first child element named NAME (NULL: any). */
const struct vmomi_val *
vmomi_val_child(const struct vmomi_val *v, const char *name)
{
	return (soap_val_child(v, name));
}

/* V's next sibling with the same name. */
const struct vmomi_val *
vmomi_val_next(const struct vmomi_val *v)
{
	return (soap_val_next(v));
}

/* A thumbprint in hex to 20 or 32 bytes: the length, or -1. */
int
vmomi_thumbprint_parse(const char *s, unsigned char *out, size_t outlen)
{
	return (soap_thumbprint_parse(s, out, outlen));
}

/* S escaped for XML in a new string, or NULL if XML cannot carry it. */
char *
vmomi_xml_escape(const char *s)
{
	return (soap_escape(s));
}

/* ---- the agent's side: incoming requests, forwarding ---- */

/* Parse one incoming request envelope (see vmomi.h). */
int
vmomi_request_parse(const char *body, size_t len, struct vmomi_request *req,
    char *msg, size_t msglen)
{
	return (soap_request_parse(body, len, req, msg, msglen));
}

/* A SOAPAction value we pass on: printable ASCII, not too long. */
static int
vmomi_action_ok(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || i >= VMOMI_ACTION_MAX)
			return (0);
	return (1);
}

/* The forwarded call answered: hand the answer over as it came. */
static void
forward_done(const struct http_result *res, void *arg)
{
	struct vmomi_req	*r = arg;
	struct vmomi_answer	 a;

	r->r_xfer = NULL;
	if (res->err != VMOMI_OK) {
		req_finish(r, res->err, res->msg, NULL, NULL);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.status = res->status;
	a.ctype = res->ctype;
	a.body = res->body;
	a.len = res->len;
	a.notauth = soap_notauth(res->body, res->len, res->status);
	r->r_answer = &a;
	req_finish(r, VMOMI_OK, NULL, NULL, NULL);	/* may free R */
}

/* POST a caller's envelope as it is, with our session (see vmomi.h). */
uint64_t
vmomi_forward(struct vmomi *v, const char *body, size_t len,
    const char *soapaction, long long timeout_ms, vmomi_answer_cb *cb,
    void *arg)
{
	struct vmomi_req	*r;
	char			*copy, msg[VMOMI_MSG_MAX];
	int			 err;

	if ((r = req_new(v, REQ_FORWARD, (void *)cb, arg)) == NULL)
		return (0);
	r->r_method = "forward";
	if (!v->v_logged_in) {
		req_fail(r, VMOMI_E_NOSESSION, "call vmomi_login first");
		return (r->r_id);
	}
	if (body == NULL || len == 0 || len > VMOMI_REQUEST_BODY_MAX ||
	    (soapaction != NULL && !vmomi_action_ok(soapaction))) {
		req_fail(r, VMOMI_E_ARG, "empty or oversized body, or a "
		    "SOAPAction that is not short printable ASCII");
		return (r->r_id);
	}
	copy = xmalloc(len + 1);
	memcpy(copy, body, len);
	copy[len] = '\0';
	log_debug("vmomi: request %llu: forward (%zu bytes)",
	    (unsigned long long)r->r_id, len);
	err = http_post_action(v->v_http, copy, len, v->v_cookie, soapaction,
	    timeout_ms > 0 ? timeout_ms : v->v_timeout_ms, forward_done, r,
	    &r->r_xfer, msg, sizeof(msg));
	if (err != VMOMI_OK)
		req_fail(r, err, msg);
	return (r->r_id);
}
