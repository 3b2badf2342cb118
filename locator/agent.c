/*
 * agent.c -- the vmomi authenticating agent: vSphere SOAP requests from
 * the appliance VM, checked against a policy and forwarded to vCenter
 * with the locator's own session (docs/vmomi-agent.md).
 *
 * gate.c hands us one end of a socketpair per vmomi session (the other
 * end is the session's local stream); we speak HTTP/1.1 on it, one
 * request at a time.  A connection is a small state machine:
 *
 *   HEAD -> BODY -> (LOGIN) -> (SCOPE) -> (LOGIN) -> FORWARD -> HEAD
 *                                                        \-> CLOSING
 *
 * HEAD reads a header block (capped), BODY its Content-Length bytes
 * (capped by --vmomi-max-request; more is 413 without reading it).
 * Then, in order: the session's caller (gate_caller: the relay's
 * attestation of the calling VM's vSocket CID and its host) must be the
 * appliance VM as the watch sees it now; the envelope must parse
 * (vmomi_request_parse); the method's class in the policy table decides:
 * read calls are forwarded, VM operations only when _this is a VM whose
 * resourcePool or parent folder is the appliance's (two retrieves,
 * SCOPE), Login and Logout are answered here (the appliance never holds
 * vCenter credentials), everything else is refused with a SOAP fault
 * that says why.  Every request ends in exactly one decision: a log
 * line and a "vmomi" event for `vlocator watch`, and counters.
 *
 * The agent has its own vmomi client and session, logged in on first
 * use.  A forwarded call or a scope lookup that comes back
 * NotAuthenticated logs in again (once for everyone waiting: LOGIN) and
 * is sent once more, so the appliance never sees our session expire.
 *
 * vmomi answers refer to connections by request id: teardown aborts a
 * connection's requests, and an answer whose id no connection waits for
 * is dropped.  Connection teardown is deferred out of callbacks.
 *
 * A connection keeps reading while its call is out, so the end of its
 * stream (the caller hung up, its session ended) aborts the call at
 * once rather than when vCenter answers (a WaitForUpdatesEx: up to 15
 * minutes); pipelined bytes wait in the input buffer, capped by the
 * read watermark, and the next request is taken only once the answer
 * before it has gone out.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "locator.h"
#include "log.h"
#include "text.h"
#include "vmomi.h"
#include "xmalloc.h"
#include "xtime.h"

#define AGENT_HEAD_MAX		(16 * 1024)	/* request line + headers */
#define AGENT_REQUEST_MAX	(1024 * 1024)	/* default body cap */
#define AGENT_IDLE_MS		120000	/* keep-alive without a request */
#define AGENT_WRITE_MS		60000	/* a client that does not read */
#define AGENT_REQUEST_MS	30000	/* first byte to whole body */
#define AGENT_LONG_MS		(15 * 60 * 1000) /* WaitForUpdates* */
#define AGENT_CALLER_MS		5000	/* wait for vSphere to show a move */
#define AGENT_CALLER_POLL_MS	50
#define AGENT_POLICY_MAX	(256 * 1024)	/* --vmomi-policy file */
#define AGENT_LIST_MAX		1024	/* names in one policy list */
#define AGENT_REASON_MAX	512
#define AGENT_PRIV		"vrelay.agent"
#define AGENT_USER		"vrelay-agent"
#define AGENT_COOKIE		"vmware_soap_session=\"vrelay-agent\"; " \
				"Path=/; HttpOnly"
#define AGENT_CTYPE		"text/xml; charset=utf-8"

enum agent_class {
	AGENT_REFUSE = 0,	/* not in the table, or denied */
	AGENT_READ,		/* forwarded */
	AGENT_VM,		/* forwarded when _this is in scope */
	AGENT_LOGIN,		/* answered here: a UserSession */
	AGENT_LOGOUT,		/* answered here: done */
};

static const char *const agent_classes[] = {
	"refuse", "read", "vm", "login", "logout",
};

/* The default policy: method -> class.  Long: a long poll's timeout. */
static const struct agent_method {
	const char		*name;
	enum agent_class	 cls;
	int			 long_poll;
} agent_methods[] = {
	{ "RetrieveServiceContent",	AGENT_READ, 0 },
	{ "RetrieveProperties",		AGENT_READ, 0 },
	{ "RetrievePropertiesEx",	AGENT_READ, 0 },
	{ "ContinueRetrievePropertiesEx", AGENT_READ, 0 },
	{ "CancelRetrievePropertiesEx",	AGENT_READ, 0 },
	{ "WaitForUpdates",		AGENT_READ, 1 },
	{ "WaitForUpdatesEx",		AGENT_READ, 1 },
	{ "CheckForUpdates",		AGENT_READ, 0 },
	{ "CancelWaitForUpdates",	AGENT_READ, 0 },
	{ "CreatePropertyCollector",	AGENT_READ, 0 },
	{ "DestroyPropertyCollector",	AGENT_READ, 0 },
	{ "CreateFilter",		AGENT_READ, 0 },
	{ "DestroyPropertyFilter",	AGENT_READ, 0 },
	{ "CreateContainerView",	AGENT_READ, 0 },
	{ "CreateListView",		AGENT_READ, 0 },
	{ "CreateListViewFromView",	AGENT_READ, 0 },
	{ "CreateInventoryView",	AGENT_READ, 0 },
	{ "DestroyView",		AGENT_READ, 0 },
	{ "FindByUuid",			AGENT_READ, 0 },
	{ "FindAllByUuid",		AGENT_READ, 0 },
	{ "FindByInventoryPath",	AGENT_READ, 0 },
	{ "FindByIp",			AGENT_READ, 0 },
	{ "FindAllByIp",		AGENT_READ, 0 },
	{ "FindByDnsName",		AGENT_READ, 0 },
	{ "FindAllByDnsName",		AGENT_READ, 0 },
	{ "FindByDatastorePath",	AGENT_READ, 0 },
	{ "FindChild",			AGENT_READ, 0 },
	{ "CurrentTime",		AGENT_READ, 0 },
	{ "SessionIsActive",		AGENT_READ, 0 },
	{ "QueryAvailablePerfMetric",	AGENT_READ, 0 },
	{ "QueryPerf",			AGENT_READ, 0 },
	{ "QueryPerfCounter",		AGENT_READ, 0 },
	{ "QueryPerfProviderSummary",	AGENT_READ, 0 },
	{ "QueryEvents",		AGENT_READ, 0 },
	{ "ReadNextEvents",		AGENT_READ, 0 },
	{ "ReadPreviousEvents",		AGENT_READ, 0 },
	{ "ReadNextTasks",		AGENT_READ, 0 },
	{ "ReadPreviousTasks",		AGENT_READ, 0 },
	{ "RetrieveUserGroups",		AGENT_READ, 0 },
	{ "HasPrivilegeOnEntity",	AGENT_READ, 0 },
	{ "FetchUserPrivilegeOnEntities", AGENT_READ, 0 },
	{ "ReconfigVM_Task",		AGENT_VM, 0 },
	{ "PowerOnVM_Task",		AGENT_VM, 0 },
	{ "PowerOffVM_Task",		AGENT_VM, 0 },
	{ "ResetVM_Task",		AGENT_VM, 0 },
	{ "SuspendVM_Task",		AGENT_VM, 0 },
	{ "ShutdownGuest",		AGENT_VM, 0 },
	{ "RebootGuest",		AGENT_VM, 0 },
	{ "StandbyGuest",		AGENT_VM, 0 },
	{ "Destroy_Task",		AGENT_VM, 0 },
	{ "CreateSnapshot_Task",	AGENT_VM, 0 },
	{ "RemoveAllSnapshots_Task",	AGENT_VM, 0 },
	{ "RevertToCurrentSnapshot_Task", AGENT_VM, 0 },
	{ "AnswerVM",			AGENT_VM, 0 },
	{ "AcquireMksTicket",		AGENT_VM, 0 },
	{ "AcquireTicket",		AGENT_VM, 0 },
	{ "Login",			AGENT_LOGIN, 0 },
	{ "LoginByToken",		AGENT_LOGIN, 0 },
	{ "Logout",			AGENT_LOGOUT, 0 },
};

/* The effective table: the defaults as --vmomi-policy changed them. */
struct agent_rule {
	char			*name;
	enum agent_class	 cls;
	int			 long_poll;
	int			 denied;
};

enum conn_state {
	CONN_HEAD,	/* reading a request line and headers */
	CONN_BODY,	/* reading Content-Length bytes */
	CONN_CALLER,	/* the appliance's CID from another host: waiting
			   for vSphere to show the vMotion */
	CONN_LOGIN,	/* waiting for the agent's vCenter session */
	CONN_SCOPE,	/* looking up _this and the appliance */
	CONN_FORWARD,	/* the call is with vCenter */
	CONN_CLOSING,	/* flushing the last answer, then close */
};

static const char *const conn_states[] = {
	"head", "body", "caller", "login", "scope", "forward", "closing",
};

enum agent_vstate {
	AGENT_V_NONE,		/* no session */
	AGENT_V_LOGIN,		/* vmomi_login in flight */
	AGENT_V_READY,
};

struct agent_conn {
	struct agent		*a;
	uint64_t		 id;		/* ours, for logs */
	uint64_t		 sid;		/* the vmomi session */
	struct bufferevent	*bev;
	struct event		*next;		/* deferred: next request */
	struct event		*wait;		/* CONN_CALLER's poll */
	struct event		*deadline;	/* AGENT_REQUEST_MS */
	enum conn_state		 state;
	int			 dead;

	/* The request in hand. */
	long long		 start_ms;
	long long		 caller_until;	/* CONN_CALLER's deadline */
	size_t			 clen;
	int			 keepalive;
	int			 expect;	/* 100-continue asked */
	int			 http10;	/* keep-alive must be said */
	char			*action;	/* SOAPAction, or NULL */
	char			*body;
	size_t			 len;
	struct vmomi_request	 req;
	const struct agent_rule	*rule;
	struct agent_caller	 caller;
	int			 retried;	/* re-login used up */
	uint64_t		 gen;		/* session it was sent on */
	uint64_t		 vreq;		/* forward in flight */
	uint64_t		 sreq[2];	/* scope: _this, appliance */
	int			 sdone[2];
	struct vmomi_moref	 spool[2];
	struct vmomi_moref	 sparent[2];
	int			 serr;
	char			 smsg[AGENT_REASON_MAX];
	TAILQ_ENTRY(agent_conn)	 entry;
};
TAILQ_HEAD(agent_conns, agent_conn);

struct agent {
	struct locator		*l;
	struct vmomi		*v;
	enum agent_vstate	 vstate;
	uint64_t		 login_req;
	uint64_t		 gen;		/* successful logins */
	struct agent_conns	 conns;
	struct agent_conns	 dead;
	struct event		*reap;
	struct agent_rule	*rules;
	size_t			 nrules;
	int			 scope_pool;
	int			 scope_folder;
	char			**pools;	/* extra pools in scope */
	size_t			 npools;
	char			**folders;	/* extra folders in scope */
	size_t			 nfolders;
	size_t			 max_request;
	uint64_t		 next_id;
	char			 login_error[AGENT_REASON_MAX];

	uint64_t		 nconns;
	uint64_t		 requests;
	uint64_t		 allowed;
	uint64_t		 refused;
	uint64_t		 errors;
	uint64_t		 forwarded;
	uint64_t		 local;
	uint64_t		 logins;
	uint64_t		 relogins;
	uint64_t		 retries;
	uint64_t		 caller_waits;	/* requests held for a move */
};

static void	conn_read(struct agent_conn *);
static void	conn_start(struct agent_conn *);
static void	conn_check(struct agent_conn *);
static int	conn_identity(struct agent_conn *, char *, size_t);
static int	conn_caller(struct agent_conn *);
static void	conn_scope(struct agent_conn *);
static void	conn_forward(struct agent_conn *);
static void	agent_login(struct agent *);

/* A connection state's name. */
static const char *
conn_strstate(enum conn_state s)
{
	return ((size_t)s < sizeof(conn_states) / sizeof(conn_states[0]) ?
	    conn_states[s] : "?");
}

/* Move C to state S, logging old -> new. */
static void
conn_enter_state(struct agent_conn *c, enum conn_state s)
{
	log_debug("vmomi: conn %" PRIu64 ": %s -> %s", c->id,
	    conn_strstate(c->state), conn_strstate(s));
	c->state = s;
}

/* ---- the policy ---- */

/* The rule for METHOD, or NULL. */
static struct agent_rule *
agent_rule(const struct agent *a, const char *method)
{
	size_t	i;

	for (i = 0; i < a->nrules; i++)
		if (strcmp(a->rules[i].name, method) == 0)
			return (&a->rules[i]);
	return (NULL);
}

/* Add METHOD to the table as CLS (or find it there). */
static struct agent_rule *
agent_rule_add(struct agent *a, const char *method, enum agent_class cls)
{
	struct agent_rule	*r;

	if ((r = agent_rule(a, method)) != NULL)
		return (r);
	a->rules = xreallocarray(a->rules, a->nrules + 1, sizeof(*a->rules));
	r = &a->rules[a->nrules++];
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(method);
	r->cls = cls;
	return (r);
}

/* A method name as the request parser accepts them. */
static int
agent_ident_ok(const char *s)
{
	size_t	i;

	if (s[0] == '\0' || isdigit((unsigned char)s[0]) || strlen(s) >= 128)
		return (0);
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return (0);
	return (1);
}

/* Policy key KEY of file PATH as a list of strings (names: identifiers). */
static char **
agent_policy_list(const char *path, json_t *o, const char *key, int names,
    size_t *n)
{
	json_t	*l, *v;
	char	**out;
	size_t	 i;

	*n = 0;
	if ((l = json_object_get(o, key)) == NULL)
		return (NULL);
	if (!json_is_array(l) || json_array_size(l) > AGENT_LIST_MAX)
		fatalx("--vmomi-policy %s: \"%s\": expected an array of at "
		    "most %d strings", path, key, AGENT_LIST_MAX);
	out = xcalloc(json_array_size(l) + 1, sizeof(*out));
	json_array_foreach(l, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) >= 192 ||
		    (names && !agent_ident_ok(json_string_value(v))))
			fatalx("--vmomi-policy %s: \"%s\"[%zu]: expected %s",
			    path, key, i, names ? "a method name (letters, "
			    "digits, _)" : "a moref value (1-191 bytes)");
		out[i] = xstrdup(json_string_value(v));
	}
	*n = json_array_size(l);
	return (out);
}

/* Free a NULL-terminated list. */
static void
agent_list_free(char **l)
{
	size_t	i;

	for (i = 0; l != NULL && l[i] != NULL; i++)
		free(l[i]);
	free(l);
}

/*
 * Read --vmomi-policy PATH (startup: every mistake is fatal, naming
 * it): {"read": [...], "vm": [...], "deny": [...], "scope": {"pool":
 * bool, "folder": bool, "pools": [...], "folders": [...]}}.
 */
static void
agent_policy_load(struct agent *a, const char *path)
{
	static const char *const keys[] = { "read", "vm", "deny", "scope" };
	static const char *const skeys[] = { "pool", "folder", "pools",
	    "folders" };
	json_error_t		 je;
	json_t			*o, *s, *v;
	const char		*key;
	struct agent_rule	*r;
	char			**read, **vm, **deny;
	size_t			 i, j, nread, nvm, ndeny;
	int			 known;

	if ((o = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) == NULL)
		fatalx("--vmomi-policy %s: line %d: %s", path, je.line,
		    je.text);
	if (!json_is_object(o))
		fatalx("--vmomi-policy %s: expected a JSON object", path);
	json_object_foreach(o, key, v) {
		for (known = 0, i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			known |= strcmp(key, keys[i]) == 0;
		if (!known)
			fatalx("--vmomi-policy %s: unknown key \"%.64s\" "
			    "(expected read, vm, deny, scope)", path, key);
	}
	read = agent_policy_list(path, o, "read", 1, &nread);
	vm = agent_policy_list(path, o, "vm", 1, &nvm);
	deny = agent_policy_list(path, o, "deny", 1, &ndeny);
	for (i = 0; i < nread; i++)
		for (j = 0; j < nvm; j++)
			if (strcmp(read[i], vm[j]) == 0)
				fatalx("--vmomi-policy %s: %s is in both "
				    "\"read\" and \"vm\"", path, read[i]);
	for (i = 0; i < nread; i++)
		agent_rule_add(a, read[i], AGENT_READ)->cls = AGENT_READ;
	for (i = 0; i < nvm; i++)
		agent_rule_add(a, vm[i], AGENT_VM)->cls = AGENT_VM;
	for (i = 0; i < ndeny; i++) {
		r = agent_rule_add(a, deny[i], AGENT_REFUSE);
		r->denied = 1;
	}
	agent_list_free(read);
	agent_list_free(vm);
	agent_list_free(deny);

	if ((s = json_object_get(o, "scope")) != NULL) {
		if (!json_is_object(s))
			fatalx("--vmomi-policy %s: \"scope\": expected an "
			    "object", path);
		json_object_foreach(s, key, v) {
			for (known = 0, i = 0;
			    i < sizeof(skeys) / sizeof(skeys[0]); i++)
				known |= strcmp(key, skeys[i]) == 0;
			if (!known)
				fatalx("--vmomi-policy %s: \"scope\": unknown "
				    "key \"%.64s\" (expected pool, folder, "
				    "pools, folders)", path, key);
		}
		if ((v = json_object_get(s, "pool")) != NULL) {
			if (!json_is_boolean(v))
				fatalx("--vmomi-policy %s: \"scope\".\"pool\": "
				    "expected true or false", path);
			a->scope_pool = json_is_true(v);
		}
		if ((v = json_object_get(s, "folder")) != NULL) {
			if (!json_is_boolean(v))
				fatalx("--vmomi-policy %s: \"scope\"."
				    "\"folder\": expected true or false", path);
			a->scope_folder = json_is_true(v);
		}
		a->pools = agent_policy_list(path, s, "pools", 0, &a->npools);
		a->folders = agent_policy_list(path, s, "folders", 0,
		    &a->nfolders);
	}
	json_decref(o);
	log_info("vmomi: policy %s: %zu methods in the table", path,
	    a->nrules);
}

/* ---- answers ---- */

/* Append S to B escaped for XML; "?" if XML cannot carry it. */
static void
agent_xml(struct evbuffer *b, const char *s)
{
	char	*e;

	if ((e = vmomi_xml_escape(s)) == NULL) {
		evbuffer_add(b, "?", 1);
		return;
	}
	evbuffer_add(b, e, strlen(e));
	free(e);
}

/* The envelope around a Body's content, as vCenter writes it. */
#define AGENT_ENV_OPEN	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<soapenv:Envelope xmlns:soapenv=" \
	"\"http://schemas.xmlsoap.org/soap/envelope/\" " \
	"xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" " \
	"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n" \
	"<soapenv:Body>\n"
#define AGENT_ENV_CLOSE	"\n</soapenv:Body>\n</soapenv:Envelope>\n"

/*
 * Queue an HTTP answer on C: STATUS, the body B (taken), and close
 * afterwards unless the connection may be kept.
 */
static void
conn_respond(struct agent_conn *c, int status, const char *ctype,
    struct evbuffer *b, const char *extra, int close_after)
{
	static const struct {
		int		 status;
		const char	*reason;
	} reasons[] = {
		{ 200, "OK" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 503, "Service Unavailable" },
		{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
		{ 411, "Length Required" },
		{ 413, "Payload Too Large" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
	};
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	const char	*reason = "Unknown";
	size_t		 i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			reason = reasons[i].reason;
	if (!c->keepalive)
		close_after = 1;
	/* An HTTP/1.0 client keeps the connection only if told so. */
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%s%s\r\n", status, reason,
	    ctype != NULL ? ctype : AGENT_CTYPE, evbuffer_get_length(b),
	    extra != NULL ? extra : "",
	    close_after ? "Connection: close\r\n" : c->http10 ?
	    "Connection: keep-alive\r\n" : "");
	evbuffer_add_buffer(out, b);
	evbuffer_free(b);
	if (close_after)
		conn_enter_state(c, CONN_CLOSING);
}

/*
 * A SOAP fault vim clients parse: ServerFaultCode, "vrelay agent: WHAT"
 * as faultstring and, when REFUSED, NoPermission on _this; else
 * SystemError with the same reason.
 */
static struct evbuffer *
agent_fault(const struct agent_conn *c, const char *what, int refused)
{
	struct evbuffer	*b = evbuffer_new();
	char		 s[AGENT_REASON_MAX + 176];

	if (b == NULL)
		fatalx("evbuffer_new");
	snprintf(s, sizeof(s), "vrelay agent: %s", what);
	text_ascii(s);
	evbuffer_add_printf(b, "%s<soapenv:Fault><faultcode>ServerFaultCode"
	    "</faultcode><faultstring>", AGENT_ENV_OPEN);
	agent_xml(b, s);
	evbuffer_add_printf(b, "</faultstring><detail>");
	if (refused) {
		evbuffer_add_printf(b, "<NoPermissionFault xmlns=\"urn:vim25\" "
		    "xsi:type=\"NoPermission\"><object type=\"");
		agent_xml(b, c->req.this.type[0] != '\0' ? c->req.this.type :
		    "ServiceInstance");
		evbuffer_add_printf(b, "\">");
		agent_xml(b, c->req.this.value[0] != '\0' ? c->req.this.value :
		    "ServiceInstance");
		evbuffer_add_printf(b, "</object><privilegeId>" AGENT_PRIV
		    "</privilegeId></NoPermissionFault>");
	} else {
		evbuffer_add_printf(b, "<SystemErrorFault xmlns=\"urn:vim25\" "
		    "xsi:type=\"SystemError\"><reason>");
		agent_xml(b, s);
		evbuffer_add_printf(b, "</reason></SystemErrorFault>");
	}
	evbuffer_add_printf(b, "</detail></soapenv:Fault>%s",
	    AGENT_ENV_CLOSE);
	return (b);
}

/*
 * The one decision for C's request: counters, a log line and a
 * "vmomi" event (control_event does both).
 */
static void
conn_decide(struct agent_conn *c, const char *decision, const char *reason,
    int status)
{
	struct agent	*a = c->a;
	char		 sid[32], host[sizeof(c->caller.host)], this[256];
	char		 why[AGENT_REASON_MAX];

	a->requests++;
	if (strcmp(decision, "allowed") == 0)
		a->allowed++;
	else if (strcmp(decision, "refused") == 0)
		a->refused++;
	else
		a->errors++;
	snprintf(sid, sizeof(sid), "%016" PRIx64, c->sid);
	text_ascii_copy(host, sizeof(host), c->caller.host,
	    strnlen(c->caller.host, sizeof(c->caller.host)));
	snprintf(this, sizeof(this), "%s:%s", c->req.this.type,
	    c->req.this.value);
	text_ascii(this);
	strlcpy(why, reason, sizeof(why));
	text_ascii(why);
	control_event(a->l, "vmomi", json_pack("{s:s, s:I, s:s, s:I, s:s, "
	    "s:s, s:s, s:s, s:i, s:I}",
	    "session", sid, "conn", (json_int_t)c->id,
	    "caller_host", host, "caller_cid", (json_int_t)c->caller.cid,
	    "method", c->req.method[0] != '\0' ? c->req.method : "-",
	    "this", c->req.this.type[0] != '\0' ? this : "-",
	    "decision", decision, "reason", why, "status", status,
	    "ms", (json_int_t)(xtime_mono_ms() - c->start_ms)));
}

/*
 * Answer C's request with a fault and decide it: REFUSED (policy,
 * identity, limits: NoPermission) or an error (bad HTTP or envelope,
 * vCenter: SystemError).
 */
static void
conn_fault(struct agent_conn *c, int refused, int status, const char *why,
    int close)
{
	char	what[AGENT_REASON_MAX + 160];

	snprintf(what, sizeof(what), "%s %s: %s", c->req.method[0] != '\0' ?
	    c->req.method : "request", refused ? "refused" : "failed", why);
	conn_decide(c, refused ? "refused" : "error", why, status);
	conn_respond(c, status, NULL, agent_fault(c, what, refused), NULL,
	    close);
}

/* Refuse C's request (policy, identity, limits): NoPermission. */
static void
conn_refuse(struct agent_conn *c, int status, const char *why, int close)
{
	conn_fault(c, 1, status, why, close);
}

/* C's request failed (bad HTTP or envelope, vCenter): a SystemError. */
static void
conn_error(struct agent_conn *c, int status, const char *why, int close)
{
	conn_fault(c, 0, status, why, close);
}

/* Login: a UserSession of our own making; vCenter never sees it. */
static void
conn_login_local(struct agent_conn *c)
{
	struct evbuffer	*b = evbuffer_new();
	char		 now[XTIME_UTC_LEN];

	if (b == NULL)
		fatalx("evbuffer_new");
	xtime_utc(xtime_wall_ms(), now, sizeof(now));
	c->a->local++;
	/* Login or LoginByToken: its own answer element. */
	evbuffer_add_printf(b, "%s<%sResponse xmlns=\"urn:vim25\">"
	    "<returnval><key>vrelay-agent-%016" PRIx64 "</key>"
	    "<userName>" AGENT_USER "</userName>"
	    "<fullName>vrelay agent (calls go out with the locator's "
	    "session)</fullName><loginTime>%s</loginTime>"
	    "<lastActiveTime>%s</lastActiveTime><locale>en</locale>"
	    "<messageLocale>en</messageLocale>"
	    "<extensionSession>false</extensionSession>"
	    "<callCount>0</callCount></returnval></%sResponse>%s",
	    AGENT_ENV_OPEN, c->req.method, c->sid, now, now, c->req.method,
	    AGENT_ENV_CLOSE);
	conn_decide(c, "allowed", "answered by the agent (no credentials "
	    "reach vCenter)", 200);
	conn_respond(c, 200, NULL, b, "Set-Cookie: " AGENT_COOKIE "\r\n", 0);
}

/* Logout: nothing to end; the agent's session is its own. */
static void
conn_logout_local(struct agent_conn *c)
{
	struct evbuffer	*b = evbuffer_new();

	if (b == NULL)
		fatalx("evbuffer_new");
	c->a->local++;
	evbuffer_add_printf(b, "%s<LogoutResponse xmlns=\"urn:vim25\">"
	    "</LogoutResponse>%s", AGENT_ENV_OPEN, AGENT_ENV_CLOSE);
	conn_decide(c, "allowed", "answered by the agent", 200);
	conn_respond(c, 200, NULL, b, NULL, 0);
}

/* ---- connections ---- */

/* The connection waiting for vmomi request ID, or NULL. */
static struct agent_conn *
agent_conn_by_req(struct agent *a, uint64_t id, int *slot)
{
	struct agent_conn	*c;

	if (id == 0)
		return (NULL);
	TAILQ_FOREACH(c, &a->conns, entry) {
		if (c->vreq == id) {
			*slot = -1;
			return (c);
		}
		if (c->sreq[0] == id || c->sreq[1] == id) {
			*slot = c->sreq[0] == id ? 0 : 1;
			return (c);
		}
	}
	return (NULL);
}

/* Forget the request in hand. */
static void
conn_clear(struct agent_conn *c)
{
	free(c->action);
	free(c->body);
	c->action = NULL;
	c->body = NULL;
	c->len = c->clen = 0;
	memset(&c->req, 0, sizeof(c->req));
	c->rule = NULL;
	c->retried = 0;
	c->vreq = c->sreq[0] = c->sreq[1] = 0;
	c->sdone[0] = c->sdone[1] = 0;
	c->serr = VMOMI_OK;
	c->caller_until = 0;
	memset(&c->caller, 0, sizeof(c->caller));
	if (c->wait != NULL)
		evtimer_del(c->wait);
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
}

/* Tear C down (once); freed later, out of any callback. */
static void
conn_close(struct agent_conn *c, const char *why)
{
	struct agent	*a = c->a;

	if (c->dead)
		return;
	c->dead = 1;
	log_debug("vmomi: conn %" PRIu64 " (session %016" PRIx64 ") closed: "
	    "%s", c->id, c->sid, why);
	vmomi_abort(a->v, c->vreq);
	vmomi_abort(a->v, c->sreq[0]);
	vmomi_abort(a->v, c->sreq[1]);
	evtimer_del(c->wait);
	evtimer_del(c->deadline);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	TAILQ_REMOVE(&a->conns, c, entry);
	TAILQ_INSERT_TAIL(&a->dead, c, entry);
	event_active(a->reap, EV_TIMEOUT, 0);
}

/* Free a connection for good. */
static void
conn_free(struct agent_conn *c)
{
	conn_clear(c);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->next != NULL)
		event_free(c->next);
	if (c->wait != NULL)
		event_free(c->wait);
	if (c->deadline != NULL)
		event_free(c->deadline);
	free(c);
}

/* Free what conn_close() left (deferred event). */
static void
agent_reap(evutil_socket_t fd, short what, void *arg)
{
	struct agent		*a = arg;
	struct agent_conn	*c;

	while ((c = TAILQ_FIRST(&a->dead)) != NULL) {
		TAILQ_REMOVE(&a->dead, c, entry);
		conn_free(c);
	}
}

/* Arm C's idle read timeout (between requests) or not (a call is out). */
static void
conn_timeouts(struct agent_conn *c, int idle)
{
	struct timeval	rtv, wtv;

	xtime_tv(AGENT_IDLE_MS, &rtv);
	xtime_tv(AGENT_WRITE_MS, &wtv);
	bufferevent_set_timeouts(c->bev, idle ? &rtv : NULL, &wtv);
}

/*
 * The answer is queued; keep-alive: on to the next request once it has
 * gone out (conn_write_cb), so a client that pipelines requests and
 * does not read the answers makes us hold one answer, not all.
 */
static void
conn_done(struct agent_conn *c)
{
	conn_clear(c);
	if (c->state == CONN_CLOSING)
		return;
	conn_enter_state(c, CONN_HEAD);
	conn_timeouts(c, 1);
	/* Pipelined bytes may be waiting: from the loop, not from here. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		event_active(c->next, EV_TIMEOUT, 0);
}

/* Parse a Content-Length value: digits only, within the size type. */
static int
agent_clen(const char *v, size_t *out)
{
	unsigned long long	n;
	char			*end;

	if (!isdigit((unsigned char)v[0]))
		return (-1);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > SIZE_MAX / 2)
		return (-1);
	*out = (size_t)n;
	return (0);
}

/* An RFC 9110 token character (header names). */
static int
agent_tchar(int ch)
{
	return (isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch)
	    != NULL));
}

/*
 * The request line and headers in HEAD (NUL-terminated, CRLF lines):
 * 0, or -1 with C answered (400, 405, 411, 413, 501).
 */
static int
conn_head(struct agent_conn *c, char *head)
{
	char		*line, *next, *colon, *v, *e, *m, *t, *ver;
	int		 have_clen = 0, http10, conn_close_hdr = 0, ka = 0;
	int		 chunked = 0, expect = 0;
	size_t		 clen = 0, n;

	c->keepalive = 0;
	line = head;
	if ((next = strstr(line, "\r\n")) != NULL)
		*next = '\0';
	m = line;
	if ((t = strchr(m, ' ')) == NULL || (ver = strchr(t + 1, ' ')) ==
	    NULL || strchr(ver + 1, ' ') != NULL) {
		conn_error(c, 400, "malformed HTTP request line", 1);
		return (-1);
	}
	*t++ = '\0';
	*ver++ = '\0';
	if (strcmp(ver, "HTTP/1.1") != 0 && strcmp(ver, "HTTP/1.0") != 0) {
		conn_error(c, 400, "not HTTP/1.0 or HTTP/1.1", 1);
		return (-1);
	}
	http10 = strcmp(ver, "HTTP/1.0") == 0;
	for (line = next != NULL ? next + 2 : NULL; line != NULL &&
	    *line != '\0'; line = next) {
		if ((next = strstr(line, "\r\n")) != NULL) {
			*next = '\0';
			next += 2;
		}
		if (*line == ' ' || *line == '\t') {
			conn_error(c, 400, "folded header line", 1);
			return (-1);
		}
		if ((colon = strchr(line, ':')) == NULL || colon == line) {
			conn_error(c, 400, "malformed header line", 1);
			return (-1);
		}
		*colon = '\0';
		for (e = line; *e != '\0'; e++)
			if (!agent_tchar((unsigned char)*e)) {
				conn_error(c, 400, "malformed header name", 1);
				return (-1);
			}
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' ||
		    e[-1] == '\t'); e--)
			;
		*e = '\0';
		if (strcasecmp(line, "Content-Length") == 0) {
			if (agent_clen(v, &n) == -1 || (have_clen &&
			    n != clen)) {
				conn_error(c, 400, "bad Content-Length", 1);
				return (-1);
			}
			have_clen = 1;
			clen = n;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0)
			chunked = 1;
		else if (strcasecmp(line, "Connection") == 0) {
			if (strcasestr(v, "close") != NULL)
				conn_close_hdr = 1;
			if (strcasestr(v, "keep-alive") != NULL)
				ka = 1;
		} else if (strcasecmp(line, "Expect") == 0) {
			if (strcasecmp(v, "100-continue") != 0) {
				conn_error(c, 400, "unsupported Expect", 1);
				return (-1);
			}
			expect = 1;
		} else if (strcasecmp(line, "SOAPAction") == 0) {
			free(c->action);
			c->action = NULL;
			for (e = v; *e != '\0' && *e >= 0x20 && *e <= 0x7e;
			    e++)
				;
			if (*e != '\0' || strlen(v) > 256) {
				conn_error(c, 400, "bad SOAPAction", 1);
				return (-1);
			}
			if (*v != '\0')
				c->action = xstrdup(v);
		}
	}
	c->keepalive = !conn_close_hdr && (!http10 || ka);
	c->http10 = http10;
	if (strcmp(m, "POST") != 0) {
		conn_error(c, 405, "only POST carries SOAP", 1);
		return (-1);
	}
	if (chunked) {
		conn_error(c, have_clen ? 400 : 411, "chunked bodies are not "
		    "taken; send Content-Length", 1);
		return (-1);
	}
	if (!have_clen) {
		conn_error(c, 411, "no Content-Length", 1);
		return (-1);
	}
	if (clen > c->a->max_request) {
		char	why[128];

		snprintf(why, sizeof(why), "body of %zu bytes is over the "
		    "%zu-byte limit (--vmomi-max-request)", clen,
		    c->a->max_request);
		conn_refuse(c, 413, why, 1);
		return (-1);
	}
	c->clen = clen;
	c->expect = expect;
	return (0);
}

/* Read what C's state wants from its input. */
static void
conn_read(struct agent_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr	 p;
	struct timeval		 tv;
	char			*head, why[AGENT_REASON_MAX];
	size_t			 hlen;
	int			 id;

	if (c->dead)
		return;
	if (c->state == CONN_HEAD) {
		/* The answer before it first (conn_write_cb comes back). */
		if (evbuffer_get_length(in) == 0 || evbuffer_get_length(
		    bufferevent_get_output(c->bev)) > 0)
			return;
		if (!evtimer_pending(c->deadline, NULL)) {
			/* A request's first byte: who, and how long. */
			c->start_ms = xtime_mono_ms();
			if (conn_caller(c) == -1)
				return;
			xtime_tv(AGENT_REQUEST_MS, &tv);
			evtimer_add(c->deadline, &tv);
		}
		p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (p.pos == -1) {
			if (evbuffer_get_length(in) > AGENT_HEAD_MAX) {
				conn_error(c, 431, "header block over "
				    "16384 bytes", 1);
				bufferevent_disable(c->bev, EV_READ);
			}
			return;
		}
		if ((size_t)p.pos + 4 > AGENT_HEAD_MAX) {
			conn_error(c, 431, "header block over 16384 bytes", 1);
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		hlen = (size_t)p.pos + 2;
		head = xmalloc(hlen + 1);
		evbuffer_remove(in, head, hlen);
		head[hlen] = '\0';
		evbuffer_drain(in, 2);
		if (memchr(head, '\0', hlen) != NULL) {
			free(head);
			conn_error(c, 400, "NUL in the header block", 1);
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		if (conn_head(c, head) == -1) {
			free(head);
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		free(head);
		/* Not the appliance: refused before its body is read. */
		if ((id = conn_identity(c, why, sizeof(why))) == -1) {
			conn_refuse(c, 500, why, 1);
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		/* Only a caller known to be the appliance is asked for it. */
		if (c->expect && id == 0)
			evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 100 Continue\r\n\r\n");
		conn_enter_state(c, CONN_BODY);
	}
	if (c->state != CONN_BODY || evbuffer_get_length(in) < c->clen)
		return;
	c->body = xmalloc(c->clen + 1);
	evbuffer_remove(in, c->body, c->clen);
	c->body[c->clen] = '\0';
	c->len = c->clen;
	evtimer_del(c->deadline);
	/*
	 * One at a time: pipelined bytes wait in the input buffer (up to
	 * the watermark).  Reading goes on for the stream's end, and is
	 * not an idle client meanwhile: the call may take minutes.
	 */
	conn_timeouts(c, 0);
	conn_start(c);
}

/* libevent: bytes arrived. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_read(arg);
}

/* libevent: the answer went out. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct agent_conn	*c = arg;

	if (c->state == CONN_CLOSING)
		conn_close(c, "answered, closing");
	else if (c->state == CONN_HEAD && !c->dead &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		event_active(c->next, EV_TIMEOUT, 0);
}

/* libevent: EOF, error or timeout. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct agent_conn	*c = arg;

	if (what & BEV_EVENT_TIMEOUT)
		conn_close(c, what & BEV_EVENT_READING ? "idle" :
		    "client does not read");
	else if ((what & BEV_EVENT_EOF) && !c->dead &&
	    (c->state == CONN_HEAD || c->state == CONN_CLOSING) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		/*
		 * The client sent all it will: the answer it has coming
		 * still goes (then we close), pipelined requests do not.
		 * During a call the same end aborts it: a caller that
		 * stops sending is taken as gone, as most servers do.
		 */
		bufferevent_disable(bev, EV_READ);
		if (c->state != CONN_CLOSING)
			conn_enter_state(c, CONN_CLOSING);
	} else if (what & BEV_EVENT_EOF)
		conn_close(c, "end of stream");
	else
		conn_close(c, "socket error");
}

/* The deferred "next request" event. */
static void
conn_next_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_read(arg);
}

/* ---- one request ---- */

/*
 * Is C's caller the appliance VM?  0; -1 with REASON if not; 1 with
 * REASON if it may be soon.  The watch's view is the truth: after a
 * vMotion both the relay's host and, on vCenter, runtime.host move (the
 * CID stays), and the session resumes through the new host's relay
 * before or after the watch hears of the move.
 */
static int
conn_identity(struct agent_conn *c, char *why, size_t len)
{
	struct watch	*w = c->a->l->watch;
	const char	*host = watch_host(w);
	long long	 cid = watch_cid(w);

	if (host == NULL || cid < 0) {
		snprintf(why, len, "the appliance VM's host and CID are not "
		    "known yet (vSphere watch: %s)", watch_state(w));
		return (1);
	}
	if ((long long)c->caller.cid != cid ||
	    strcmp(c->caller.host, host) != 0) {
		snprintf(why, len, "caller host %.100s CID %u is not the "
		    "appliance VM (host %.100s CID %lld)", c->caller.host,
		    c->caller.cid, host, cid);
		return ((long long)c->caller.cid == cid ? 1 : -1);
	}
	return (0);
}

/*
 * Who is calling C now (the current leg's attestation): 0, or -1 with
 * C closed when its session is gone.
 */
static int
conn_caller(struct agent_conn *c)
{
	memset(&c->caller, 0, sizeof(c->caller));
	if (c->a->l->gate == NULL ||
	    gate_caller(c->a->l->gate, c->sid, &c->caller) == -1) {
		conn_close(c, "its session is gone");
		return (-1);
	}
	c->caller.host[sizeof(c->caller.host) - 1] = '\0';
	return (0);
}

/* A request not whole within AGENT_REQUEST_MS of its first byte. */
static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_conn	*c = arg;

	if (c->state != CONN_HEAD && c->state != CONN_BODY)
		return;
	bufferevent_disable(c->bev, EV_READ);
	conn_error(c, 408, "request not received whole within 30 s", 1);
}

/* CONN_CALLER's poll: has vSphere caught up with the caller? */
static void
conn_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_check(arg);
}

/* The request is read: what is it? */
static void
conn_start(struct agent_conn *c)
{
	char		 why[AGENT_REASON_MAX], msg[AGENT_REASON_MAX];
	int		 err;

	if ((err = vmomi_request_parse(c->body, c->len, &c->req, msg,
	    sizeof(msg))) != VMOMI_OK) {
		snprintf(why, sizeof(why), "malformed envelope: %.400s", msg);
		conn_error(c, 500, why, 0);
		conn_done(c);
		return;
	}
	c->caller_until = xtime_mono_ms() + AGENT_CALLER_MS;
	conn_check(c);
}

/*
 * Who is calling, then by which rule.  The appliance's CID on a host
 * the watch does not show it on yet is a vMotion in progress: the
 * request waits (polling, up to AGENT_CALLER_MS) instead of failing.
 */
static void
conn_check(struct agent_conn *c)
{
	struct agent	*a = c->a;
	struct timeval	 tv;
	char		 why[AGENT_REASON_MAX];
	int		 id;

	if (conn_caller(c) == -1)
		return;
	if ((id = conn_identity(c, why, sizeof(why))) == 1 &&
	    xtime_mono_ms() < c->caller_until) {
		if (c->state != CONN_CALLER) {
			a->caller_waits++;
			log_debug("vmomi: conn %" PRIu64 ": waiting: %s",
			    c->id, why);
			conn_enter_state(c, CONN_CALLER);
		}
		xtime_tv(AGENT_CALLER_POLL_MS, &tv);
		evtimer_add(c->wait, &tv);
		return;
	}
	if (id != 0) {
		conn_refuse(c, 500, why, 0);
		conn_done(c);
		return;
	}
	c->rule = agent_rule(a, c->req.method);
	if (c->rule == NULL || c->rule->denied ||
	    c->rule->cls == AGENT_REFUSE) {
		conn_refuse(c, 500, c->rule != NULL && c->rule->denied ?
		    "denied by --vmomi-policy" : "not in the policy (read "
		    "calls, and VM operations in the appliance's resource "
		    "pool or folder)", 0);
		conn_done(c);
		return;
	}
	/*
	 * A forwarded call runs on the agent's session: a Header naming
	 * another (vcSessionCookie) or carrying credentials has no place
	 * there (a forged cookie made vCenter answer NotAuthenticated, as
	 * if our session had ended).  Login and Logout are answered here.
	 */
	if ((c->rule->cls == AGENT_READ || c->rule->cls == AGENT_VM) &&
	    c->req.header[0] != '\0') {
		snprintf(why, sizeof(why), "SOAP Header holds %.64s (only "
		    "operationID is forwarded: calls run on the agent's own "
		    "session)", c->req.header);
		conn_refuse(c, 500, why, 0);
		conn_done(c);
		return;
	}
	switch (c->rule->cls) {
	case AGENT_LOGIN:
		conn_login_local(c);
		conn_done(c);
		return;
	case AGENT_LOGOUT:
		conn_logout_local(c);
		conn_done(c);
		return;
	case AGENT_VM:
		if (strcmp(c->req.this.type, "VirtualMachine") != 0) {
			snprintf(why, sizeof(why), "_this is %.64s, not a "
			    "VirtualMachine", c->req.this.type[0] != '\0' ?
			    c->req.this.type : "missing");
			conn_refuse(c, 500, why, 0);
			conn_done(c);
			return;
		}
		conn_scope(c);
		return;
	default:
		conn_forward(c);
		return;
	}
}

/* C needs the session: wait for a login (starting one if none). */
static void
conn_wait_login(struct agent_conn *c)
{
	conn_enter_state(c, CONN_LOGIN);
	if (c->a->vstate != AGENT_V_LOGIN)
		agent_login(c->a);
}

/*
 * C's call met NotAuthenticated: log in again once (unless a newer
 * session exists already) and send it once more.  0, or -1 when the
 * retry is used up.
 */
static int
conn_relogin(struct agent_conn *c)
{
	struct agent	*a = c->a;

	if (c->retried)
		return (-1);
	c->retried = 1;
	a->retries++;
	if (a->vstate == AGENT_V_READY && a->gen == c->gen) {
		log_info("vmomi: vCenter session expired; logging in again");
		a->relogins++;
		a->vstate = AGENT_V_NONE;
		vmomi_reset(a->v);
	}
	if (a->vstate != AGENT_V_READY)
		conn_wait_login(c);
	else if (c->rule->cls == AGENT_VM && c->state == CONN_SCOPE)
		conn_scope(c);
	else
		conn_forward(c);
	return (0);
}

/* The session is there: go on with what C was doing. */
static void
conn_resume(struct agent_conn *c)
{
	if (c->rule->cls == AGENT_VM && c->sdone[0] + c->sdone[1] < 2)
		conn_scope(c);
	else
		conn_forward(c);
}

/* Login answered: everyone waiting goes on, or fails with the reason. */
static void
agent_login_cb(uint64_t id, int err, const char *msg, void *arg)
{
	struct agent		*a = arg;
	struct agent_conn	*c, *tc;
	char			 why[AGENT_REASON_MAX];

	if (id != a->login_req)
		return;
	a->login_req = 0;
	if (err == VMOMI_OK) {
		a->vstate = AGENT_V_READY;
		a->gen++;
		a->logins++;
		a->login_error[0] = '\0';
		log_info("vmomi: logged in to vCenter (login %" PRIu64 ")",
		    a->logins);
	} else {
		a->vstate = AGENT_V_NONE;
		snprintf(a->login_error, sizeof(a->login_error), "%s",
		    msg != NULL ? msg : vmomi_strerror(err));
		log_warnx("vmomi: vCenter login failed: %s", a->login_error);
	}
	TAILQ_FOREACH_SAFE(c, &a->conns, entry, tc) {
		if (c->state != CONN_LOGIN)
			continue;
		if (err == VMOMI_OK) {
			conn_resume(c);
			continue;
		}
		snprintf(why, sizeof(why), "the agent cannot log in to "
		    "vCenter: %.400s", a->login_error);
		conn_error(c, 500, why, 0);
		conn_done(c);
	}
}

/* Log the agent in (RetrieveServiceContent once, then Login). */
static void
agent_login(struct agent *a)
{
	a->vstate = AGENT_V_LOGIN;
	a->login_req = vmomi_login(a->v, agent_login_cb, a);
}

/* ---- scope: is _this in the appliance's pool or folder? ---- */

/* A scope lookup answered (slot 0: _this, 1: the appliance VM). */
static void
agent_scope_cb(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct agent		*a = arg;
	struct agent_conn	*c;
	const struct vmomi_change *ch;
	char			 why[AGENT_REASON_MAX];
	size_t			 i;
	int			 slot = -1, in = 0, k;

	if ((c = agent_conn_by_req(a, id, &slot)) == NULL || slot < 0)
		return;
	if (err == VMOMI_OK && u != NULL) {
		for (i = 0; u->nobjects > 0 && i < u->objects[0].nchanges;
		    i++) {
			ch = &u->objects[0].changes[i];
			if (strcmp(ch->name, "resourcePool") == 0)
				vmomi_val_moref(ch->val, &c->spool[slot]);
			else if (strcmp(ch->name, "parent") == 0)
				vmomi_val_moref(ch->val, &c->sparent[slot]);
		}
		if (u->more)
			return;		/* one object: one page */
		if (u->nobjects == 0 && c->spool[slot].value[0] == '\0' &&
		    c->sparent[slot].value[0] == '\0') {
			err = VMOMI_E_NOTFOUND;
			msg = "no such object";
		}
	}
	if (err != VMOMI_OK && c->serr == VMOMI_OK) {
		c->serr = err;
		snprintf(c->smsg, sizeof(c->smsg), "%s: %s", slot == 0 ?
		    c->req.this.value : "the appliance VM", msg != NULL ? msg :
		    vmomi_strerror(err));
	}
	c->sreq[slot] = 0;
	c->sdone[slot] = 1;
	if (c->sreq[0] != 0 || c->sreq[1] != 0)
		return;
	if (c->serr == VMOMI_E_NOTAUTH) {
		c->sdone[0] = c->sdone[1] = 0;
		if (conn_relogin(c) == 0)
			return;
	}
	if (c->serr == VMOMI_E_NOTFOUND) {
		snprintf(why, sizeof(why), "VM %.400s not found", c->smsg);
		conn_refuse(c, 500, why, 0);
		conn_done(c);
		return;
	}
	if (c->serr != VMOMI_OK) {
		snprintf(why, sizeof(why), "cannot check the scope: %.400s",
		    c->smsg);
		conn_error(c, 500, why, 0);
		conn_done(c);
		return;
	}
	/* In scope: same pool, same folder, or one the policy names. */
	if (a->scope_pool && c->spool[0].value[0] != '\0' &&
	    strcmp(c->spool[0].value, c->spool[1].value) == 0)
		in = snprintf(why, sizeof(why), "in the appliance's resource "
		    "pool %s", c->spool[0].value);
	else if (a->scope_folder && c->sparent[0].value[0] != '\0' &&
	    strcmp(c->sparent[0].value, c->sparent[1].value) == 0)
		in = snprintf(why, sizeof(why), "in the appliance's folder %s",
		    c->sparent[0].value);
	for (k = 0; !in && (size_t)k < a->npools; k++)
		if (strcmp(c->spool[0].value, a->pools[k]) == 0)
			in = snprintf(why, sizeof(why), "in resource pool %s "
			    "(--vmomi-policy)", a->pools[k]);
	for (k = 0; !in && (size_t)k < a->nfolders; k++)
		if (strcmp(c->sparent[0].value, a->folders[k]) == 0)
			in = snprintf(why, sizeof(why), "in folder %s "
			    "(--vmomi-policy)", a->folders[k]);
	if (!in) {
		snprintf(why, sizeof(why), "VM %.100s (resource pool %.60s, "
		    "folder %.60s) is outside the appliance's resource pool "
		    "%.60s and folder %.60s", c->req.this.value,
		    c->spool[0].value[0] != '\0' ? c->spool[0].value : "none",
		    c->sparent[0].value[0] != '\0' ? c->sparent[0].value :
		    "none", c->spool[1].value[0] != '\0' ? c->spool[1].value :
		    "none", c->sparent[1].value[0] != '\0' ?
		    c->sparent[1].value : "none");
		conn_refuse(c, 500, why, 0);
		conn_done(c);
		return;
	}
	strlcpy(c->smsg, why, sizeof(c->smsg));	/* the reason, later */
	conn_forward(c);
}

/* Look up _this's and the appliance's resourcePool and parent. */
static void
conn_scope(struct agent_conn *c)
{
	static const char *const	 paths[] = { "resourcePool", "parent",
					    NULL };
	struct agent			*a = c->a;
	const struct vmomi_moref	*app = watch_vm(a->l->watch);
	struct vmomi_spec		 spec;
	int				 i;

	if (app == NULL) {
		conn_refuse(c, 500, "the appliance VM is not found yet", 0);
		conn_done(c);
		return;
	}
	if (a->vstate != AGENT_V_READY) {
		conn_wait_login(c);
		return;
	}
	conn_enter_state(c, CONN_SCOPE);
	c->gen = a->gen;
	c->serr = VMOMI_OK;
	c->smsg[0] = '\0';
	for (i = 0; i < 2; i++) {
		memset(&c->spool[i], 0, sizeof(c->spool[i]));
		memset(&c->sparent[i], 0, sizeof(c->sparent[i]));
		c->sdone[i] = 0;
		memset(&spec, 0, sizeof(spec));
		spec.obj = i == 0 ? c->req.this : *app;
		spec.type = "VirtualMachine";
		spec.paths = paths;
		c->sreq[i] = vmomi_retrieve(a->v, &spec, agent_scope_cb, a);
	}
}

/* ---- forwarding ---- */

/* vCenter answered C's call: pass it on as it is. */
static void
agent_forward_cb(uint64_t id, int err, const char *msg,
    const struct vmomi_answer *ans, void *arg)
{
	struct agent		*a = arg;
	struct agent_conn	*c;
	struct evbuffer		*b;
	char			 why[AGENT_REASON_MAX];
	int			 slot;

	if ((c = agent_conn_by_req(a, id, &slot)) == NULL || slot != -1)
		return;
	c->vreq = 0;
	if (err != VMOMI_OK) {
		snprintf(why, sizeof(why), "vCenter: %.400s", msg);
		conn_error(c, 500, why, 0);
		conn_done(c);
		return;
	}
	if (ans->notauth && conn_relogin(c) == 0)
		return;
	if ((b = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	evbuffer_add(b, ans->body, ans->len);
	a->forwarded++;
	snprintf(why, sizeof(why), "%s%s%.400s", agent_classes[c->rule->cls],
	    c->rule->cls == AGENT_VM ? ": " : "",
	    c->rule->cls == AGENT_VM ? c->smsg : "");
	conn_decide(c, "allowed", why, (int)ans->status);
	conn_respond(c, (int)ans->status, ans->ctype, b, NULL, 0);
	conn_done(c);
}

/* Send C's body to vCenter with our session and its SOAPAction. */
static void
conn_forward(struct agent_conn *c)
{
	struct agent	*a = c->a;

	if (a->vstate != AGENT_V_READY) {
		conn_wait_login(c);
		return;
	}
	conn_enter_state(c, CONN_FORWARD);
	c->gen = a->gen;
	c->vreq = vmomi_forward(a->v, c->body, c->len, c->action,
	    c->rule->long_poll ? AGENT_LONG_MS : 0, agent_forward_cb, a);
}

/* ---- the agent ---- */

/* Serve HTTP on FD for vmomi session SID (from gate.c). */
void
agent_serve(struct agent *a, int fd, uint64_t sid)
{
	struct agent_conn	*c;

	if (evutil_make_socket_nonblocking(fd) == -1) {
		log_warn("vmomi: session %016" PRIx64, sid);
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->a = a;
	c->id = ++a->next_id;
	c->sid = sid;
	c->bev = bufferevent_socket_new(a->l->d.base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	c->next = event_new(a->l->d.base, -1, 0, conn_next_cb, c);
	c->wait = evtimer_new(a->l->d.base, conn_wait_cb, c);
	c->deadline = evtimer_new(a->l->d.base, conn_deadline_cb, c);
	if (c->bev == NULL || c->next == NULL || c->wait == NULL ||
	    c->deadline == NULL)
		fatalx("vmomi: bufferevent_socket_new/event_new");
	a->nconns++;
	TAILQ_INSERT_TAIL(&a->conns, c, entry);
	conn_timeouts(c, 1);
	/* A request's head and body at most, whatever else is pipelined. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, AGENT_HEAD_MAX +
	    a->max_request + 1);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("vmomi: conn %" PRIu64 " for session %016" PRIx64, c->id,
	    sid);
}

/* The agent of locator L: its vCenter client and policy (fatal: startup). */
struct agent *
agent_new(struct locator *l)
{
	struct agent		*a;
	struct vmomi_conf	 vc;
	size_t			 i;
	int			 rv;

	a = xcalloc(1, sizeof(*a));
	a->l = l;
	TAILQ_INIT(&a->conns);
	TAILQ_INIT(&a->dead);
	a->max_request = l->conf.vmomi_max_request > 0 ?
	    (size_t)l->conf.vmomi_max_request : AGENT_REQUEST_MAX;
	a->scope_pool = a->scope_folder = 1;
	for (i = 0; i < sizeof(agent_methods) / sizeof(agent_methods[0]);
	    i++)
		agent_rule_add(a, agent_methods[i].name,
		    agent_methods[i].cls)->long_poll =
		    agent_methods[i].long_poll;
	if (l->conf.vmomi_policy != NULL)
		agent_policy_load(a, l->conf.vmomi_policy);

	locator_vmomi_conf(&l->conf, l->user, l->password, &vc);
	if ((rv = vmomi_new(l->d.base, &vc, &a->v)) != VMOMI_OK)
		fatalx("--vcenter %s: %s", l->conf.vcenter,
		    vmomi_strerror(rv));
	if ((a->reap = event_new(l->d.base, -1, 0, agent_reap, a)) == NULL)
		fatalx("event_new");
	return (a);
}

/* Close every connection, drop the client; NULL is fine. */
void
agent_free(struct agent *a)
{
	struct agent_conn	*c;
	size_t			 i;

	if (a == NULL)
		return;
	while ((c = TAILQ_FIRST(&a->conns)) != NULL)
		conn_close(c, "agent stopping");
	agent_reap(-1, 0, a);
	vmomi_free(a->v);
	event_free(a->reap);
	for (i = 0; i < a->nrules; i++)
		free(a->rules[i].name);
	free(a->rules);
	agent_list_free(a->pools);
	agent_list_free(a->folders);
	free(a);
}

/* A list of names as a JSON array. */
static json_t *
agent_names_json(char **l, size_t n)
{
	json_t	*o = json_array();
	size_t	 i;

	for (i = 0; i < n; i++)
		json_array_append_new(o, json_string(l[i]));
	return (o);
}

/* Counters, the session and the effective policy, for "status". */
json_t *
agent_json(const struct agent *a)
{
	json_t	*cls[sizeof(agent_classes) / sizeof(agent_classes[0])];
	json_t	*deny, *policy;
	size_t	 i, k, nlive = 0;
	const struct agent_conn *c;

	if (a == NULL)
		return (json_null());
	TAILQ_FOREACH(c, &a->conns, entry)
		nlive++;
	for (k = 0; k < sizeof(cls) / sizeof(cls[0]); k++)
		cls[k] = json_array();
	deny = json_array();
	for (i = 0; i < a->nrules; i++)
		json_array_append_new(a->rules[i].denied ? deny :
		    cls[a->rules[i].cls], json_string(a->rules[i].name));
	policy = json_pack("{s:o, s:o, s:o, s:o, s:o, s:{s:b, s:b, s:o, "
	    "s:o}, s:I}", "read", cls[AGENT_READ], "vm", cls[AGENT_VM],
	    "login", cls[AGENT_LOGIN], "logout", cls[AGENT_LOGOUT],
	    "deny", deny, "scope", "pool", a->scope_pool, "folder",
	    a->scope_folder, "pools", agent_names_json(a->pools, a->npools),
	    "folders", agent_names_json(a->folders, a->nfolders),
	    "max_request", (json_int_t)a->max_request);
	json_decref(cls[AGENT_REFUSE]);
	return (json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
	    "vcenter_session", a->vstate == AGENT_V_READY ? "ready" :
	    a->vstate == AGENT_V_LOGIN ? "login" : "none",
	    "policy_file", a->l->conf.vmomi_policy != NULL ?
	    json_string(a->l->conf.vmomi_policy) : json_null(),
	    "connections", (json_int_t)nlive,
	    "connections_total", (json_int_t)a->nconns,
	    "requests", (json_int_t)a->requests,
	    "allowed", (json_int_t)a->allowed,
	    "refused", (json_int_t)a->refused,
	    "errors", (json_int_t)a->errors,
	    "forwarded", (json_int_t)a->forwarded,
	    "answered_locally", (json_int_t)a->local,
	    "logins", (json_int_t)a->logins,
	    "relogins", (json_int_t)a->relogins,
	    "retries", (json_int_t)a->retries,
	    "caller_waits", (json_int_t)a->caller_waits,
	    "last_login_error", a->login_error[0] != '\0' ?
	    json_string(a->login_error) : json_null(),
	    "policy", policy));
}
