/*
 * vmomi.h -- libvmomi: an event-driven vSphere SOAP (vim25) client.
 *
 * libcurl's multi interface runs on the caller's libevent loop (curl's
 * hiperfifo pattern): no call waits for the network, name lookups
 * included (libcurl's threaded resolver, detached when a transfer is
 * dropped mid-lookup; see vmomi/http.c).  Every operation returns a
 * request id at once and reports exactly once through its callback,
 * from the loop, never from inside the call that started it; an
 * aborted request (vmomi_abort, vmomi_free) never reports.  Pointers
 * handed to a callback are valid only during that callback.
 *
 * The library keeps the session: RetrieveServiceContent, then Login
 * (SessionManager) on vmomi_login(); the vmware_soap_session cookie
 * rides on every later request.  It decides nothing about retrying:
 * a NotAuthenticated answer -- a fault, or an HTTP 200 whose
 * properties are all missing with NotAuthenticated in missingSet --
 * is VMOMI_E_NOTAUTH, and the caller logs in again and resyncs.
 *
 * TLS: verify against a CA bundle (or the system's), or pin the
 * server certificate's SHA-256 or SHA-1 thumbprint (hex, colons and
 * case optional, as vSphere tools print it; the host name is then not
 * checked), or, only when asked, verify nothing.
 *
 * Every response body is capped (vmomi_conf.max_response); anything
 * the parser does not expect is VMOMI_E_PARSE with a message, never a
 * crash.
 */
#ifndef VRELAY_VMOMI_H
#define VRELAY_VMOMI_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct vmomi;
struct vmomi_val;

#define VMOMI_OK		0
#define VMOMI_E_SYSTEM		(-1)	/* out of memory, curl setup */
#define VMOMI_E_ARG		(-2)	/* bad argument from the caller */
#define VMOMI_E_CONNECT		(-3)	/* DNS, TCP, or transfer failed */
#define VMOMI_E_TLS		(-4)	/* handshake or certificate refused */
#define VMOMI_E_THUMBPRINT	(-5)	/* certificate is not the pinned one */
#define VMOMI_E_TIMEOUT		(-6)
#define VMOMI_E_HTTP		(-7)	/* status other than 200/500 */
#define VMOMI_E_TOOBIG		(-8)	/* body over max_response */
#define VMOMI_E_PARSE		(-9)	/* not the SOAP we expected */
#define VMOMI_E_FAULT		(-10)	/* a fault not listed below */
#define VMOMI_E_NOTAUTH		(-11)	/* NotAuthenticated: log in again */
#define VMOMI_E_LOGIN		(-12)	/* InvalidLogin: bad credentials */
#define VMOMI_E_VERSION		(-13)	/* InvalidCollectorVersion: resync */
#define VMOMI_E_CANCELED	(-14)	/* RequestCanceled (CancelWait...) */
#define VMOMI_E_NOTFOUND	(-15)	/* ManagedObjectNotFound, no match */
#define VMOMI_E_AMBIGUOUS	(-16)	/* a name matched several VMs */
#define VMOMI_E_NOSESSION	(-17)	/* called before vmomi_login */

#define VMOMI_RESPONSE_MAX	(16 * 1024 * 1024)	/* default cap */
#define VMOMI_TIMEOUT_MS	30000			/* default */

struct vmomi_conf {
	const char	*url;		/* https://HOST/sdk (or http://) */
	const char	*user;
	const char	*password;
	const char	*cacert;	/* CA bundle file; NULL: system's */
	const char	*thumbprint;	/* pin: SHA-256 or SHA-1, hex */
	int		 insecure;	/* verify nothing (explicit only) */
	long long	 timeout_ms;	/* per call, not counting a wait's
					   maxWaitSeconds; 0: default */
	size_t		 max_response;	/* 0: VMOMI_RESPONSE_MAX */
};

/* A managed object reference: <x type="TYPE">VALUE</x>. */
struct vmomi_moref {
	char	type[64];
	char	value[192];
};

/* From RetrieveServiceContent (after vmomi_login). */
struct vmomi_service {
	struct vmomi_moref	root_folder;
	struct vmomi_moref	property_collector;
	struct vmomi_moref	view_manager;
	struct vmomi_moref	search_index;
	struct vmomi_moref	session_manager;
	struct vmomi_moref	event_manager;
	char			api_version[32];
	char			instance_uuid[64];
};

/*
 * What to collect: objects of TYPE reached from OBJ -- OBJ itself, or,
 * when VIEW is set, every object in the ContainerView OBJ (traversing
 * its "view" property, skipping the view) -- and their PATHS
 * (NULL-terminated; NULL or empty: all properties).
 */
struct vmomi_spec {
	struct vmomi_moref	 obj;
	int			 view;
	const char		*type;
	const char *const	*paths;
};

enum vmomi_op {
	VMOMI_OP_ASSIGN = 1,
	VMOMI_OP_ADD,
	VMOMI_OP_REMOVE,
	VMOMI_OP_INDIRECT_REMOVE,
};

enum vmomi_kind {
	VMOMI_KIND_ENTER = 1,
	VMOMI_KIND_MODIFY,
	VMOMI_KIND_LEAVE,
};

struct vmomi_change {
	const char		*name;	/* property path: "runtime.host" */
	enum vmomi_op		 op;
	const struct vmomi_val	*val;	/* NULL when the change has none */
};

struct vmomi_missing {
	const char	*path;
	int		 err;		/* VMOMI_E_* of its fault */
	const char	*fault;		/* fault type: "NotAuthenticated" */
};

struct vmomi_object {
	struct vmomi_moref	 filter;	/* empty for retrieve */
	struct vmomi_moref	 obj;
	enum vmomi_kind		 kind;		/* ENTER for retrieve */
	struct vmomi_change	*changes;
	size_t			 nchanges;
	struct vmomi_missing	*missing;
	size_t			 nmissing;
};

/*
 * One WaitForUpdatesEx answer or one RetrievePropertiesEx page.
 * An empty wait (maxWaitSeconds passed) has version NULL and no
 * objects; TRUNCATED means call again with VERSION at once; MORE
 * means another retrieve page follows (the library fetches it).
 */
struct vmomi_update {
	const char		*version;
	int			 truncated;
	int			 more;
	struct vmomi_object	*objects;
	size_t			 nobjects;
};

/*
 * Callbacks.  ERR is VMOMI_OK or a VMOMI_E_* code; MSG is a one-line
 * reason when ERR is not OK (fault type and faultstring, curl's error,
 * the parse problem), else NULL.
 */
typedef void	vmomi_done_cb(uint64_t, int, const char *, void *);
typedef void	vmomi_ref_cb(uint64_t, int, const char *,
		    const struct vmomi_moref *, void *);
typedef void	vmomi_update_cb(uint64_t, int, const char *,
		    const struct vmomi_update *, void *);

const char	*vmomi_strerror(int);

/*
 * A client on BASE; CONF is copied.  VMOMI_E_ARG: no base, a URL that is
 * not http(s)://HOST... or that has user info ("https://u:p@host/sdk":
 * put credentials in user/password), a bad thumbprint, or a pin with
 * cacert, insecure or http://.  VMOMI_E_SYSTEM: libcurl cannot start,
 * has no asynchronous DNS (its lookups would block the loop), or, for a
 * pin, is not built on OpenSSL.
 */
int		 vmomi_new(struct event_base *, const struct vmomi_conf *,
		    struct vmomi **);
/* Abort every request (no callbacks), free; NULL is fine. */
void		 vmomi_free(struct vmomi *);
/* Drop one request: its callback will not run.  Unknown ids are fine. */
void		 vmomi_abort(struct vmomi *, uint64_t);
/*
 * End the session and forget it (cookie, key, service content): a
 * Logout with the old cookie goes out if there is a session, answered
 * to nobody (its own short timeout, not pending, dropped by
 * vmomi_free), so a reset leaves no session behind on vCenter.  The
 * next vmomi_login starts afresh.  Requests in flight go on with the
 * old session and will likely end VMOMI_E_NOTAUTH.
 */
void		 vmomi_reset(struct vmomi *);
/* The service content, or NULL before a successful vmomi_login. */
const struct vmomi_service *vmomi_service(const struct vmomi *);
/* Requests in flight. */
size_t		 vmomi_pending(const struct vmomi *);

/* RetrieveServiceContent (first time), then Login. */
uint64_t	 vmomi_login(struct vmomi *, vmomi_done_cb *, void *);
/*
 * Logout; when it answers (or fails) that session is forgotten, unless
 * a newer one replaced it meanwhile (vmomi_reset, vmomi_login).
 */
uint64_t	 vmomi_logout(struct vmomi *, vmomi_done_cb *, void *);
/* SessionIsActive on our own session: a cheap keepalive. */
uint64_t	 vmomi_session_active(struct vmomi *, vmomi_done_cb *, void *);

/*
 * Find a VM: a UUID (8-4-4-4-12 hex) by instance UUID, then by BIOS
 * UUID; a string with '/' by inventory path (FindByInventoryPath);
 * else by exact name over a recursive ContainerView of the root
 * folder (VMOMI_E_AMBIGUOUS when several match).  VMOMI_E_NOTFOUND
 * when nothing matches.
 */
uint64_t	 vmomi_find_vm(struct vmomi *, const char *, vmomi_ref_cb *,
		    void *);

/* ViewManager.CreateContainerView(container, [TYPE], recursive). */
uint64_t	 vmomi_view_create(struct vmomi *, const struct vmomi_moref *,
		    const char *, int, vmomi_ref_cb *, void *);
uint64_t	 vmomi_view_destroy(struct vmomi *, const struct vmomi_moref *,
		    vmomi_done_cb *, void *);

/*
 * RetrievePropertiesEx on the default collector, then
 * ContinueRetrievePropertiesEx while a token comes back: CB runs once
 * per page, update->more set on all but the last.
 */
uint64_t	 vmomi_retrieve(struct vmomi *, const struct vmomi_spec *,
		    vmomi_update_cb *, void *);

/* A private PropertyCollector (never share the default one). */
uint64_t	 vmomi_pc_create(struct vmomi *, vmomi_ref_cb *, void *);
uint64_t	 vmomi_pc_destroy(struct vmomi *, const struct vmomi_moref *,
		    vmomi_done_cb *, void *);
/* CreateFilter on collector PC (partialUpdates false). */
uint64_t	 vmomi_filter_create(struct vmomi *, const struct vmomi_moref *,
		    const struct vmomi_spec *, vmomi_ref_cb *, void *);
uint64_t	 vmomi_filter_destroy(struct vmomi *,
		    const struct vmomi_moref *, vmomi_done_cb *, void *);
/*
 * WaitForUpdatesEx(PC, VERSION ("" or NULL: from scratch),
 * maxWaitSeconds MAXWAIT_S).  The transfer timeout is the call timeout
 * plus MAXWAIT_S.
 */
uint64_t	 vmomi_wait(struct vmomi *, const struct vmomi_moref *,
		    const char *, int, vmomi_update_cb *, void *);
/* CancelWaitForUpdates(PC): the pending wait ends VMOMI_E_CANCELED. */
uint64_t	 vmomi_wait_cancel(struct vmomi *, const struct vmomi_moref *,
		    vmomi_done_cb *, void *);

/*
 * EventManager.CreateCollectorForEvents for event type names TYPES
 * (NULL-terminated, e.g. "VmMigratedEvent") about entity ENTITY
 * (NULL: all); watch its "latestPage" with a filter for new events.
 */
uint64_t	 vmomi_events_create(struct vmomi *, const struct vmomi_moref *,
		    const char *const *, vmomi_ref_cb *, void *);
uint64_t	 vmomi_events_destroy(struct vmomi *,
		    const struct vmomi_moref *, vmomi_done_cb *, void *);

/* One extraConfig entry to write; an empty VALUE deletes KEY. */
struct vmomi_option {
	const char	*key;
	const char	*value;
};

#define VMOMI_OPTIONS_MAX	256	/* entries in one reconfigure */

/*
 * VirtualMachine.ReconfigVM_Task(VM) with a VirtualMachineConfigSpec
 * whose extraConfig holds the N entries OPTS (values xsd:string), then
 * the Task followed to its end by RetrievePropertiesEx of info.state
 * and info.error: at once, then after 50 ms doubling up to 1 s, for at
 * most 5 minutes (VMOMI_E_TIMEOUT; the task may still complete).  A
 * task that ends in error reports its fault's code (a vanished VM is
 * VMOMI_E_NOTFOUND, else VMOMI_E_FAULT) and "ReconfigVM_Task: Type:
 * localizedMessage".  Keys and values are not interpreted here (see
 * guestinfo.h for the guestinfo.* rules).
 */
uint64_t	 vmomi_reconfig_extra(struct vmomi *,
		    const struct vmomi_moref *, const struct vmomi_option *,
		    size_t, vmomi_done_cb *, void *);

/*
 * Values inside an update (valid during the callback only).  A value
 * is one XML element: its xsi:type ("ManagedObjectReference",
 * "VirtualMachineVMCIDevice", "xsd:string" gives "string"), its text
 * when it has no child elements, its children by element name.
 */
const char	*vmomi_val_type(const struct vmomi_val *);
/* Text content, or NULL when the value has child elements. */
const char	*vmomi_val_text(const struct vmomi_val *);
/* 0 and *ref filled if the value is a moref, else -1. */
int		 vmomi_val_moref(const struct vmomi_val *,
		    struct vmomi_moref *);
/* 0 and *out if the text is a decimal integer, else -1. */
int		 vmomi_val_int(const struct vmomi_val *, long long *);
/* First child element named NAME (NULL: any), or NULL. */
const struct vmomi_val *vmomi_val_child(const struct vmomi_val *,
		    const char *);
/* Next sibling element with the same name, or NULL. */
const struct vmomi_val *vmomi_val_next(const struct vmomi_val *);

/*
 * The parser, exposed for unit tests and fuzzers: parse one response
 * BODY of LEN bytes with HTTP status HTTP_STATUS as the answer to
 * METHOD ("WaitForUpdatesEx", "RetrievePropertiesEx", "Login", ...;
 * an unknown method is VMOMI_E_ARG).  On VMOMI_OK *OUT is set and must
 * be freed with vmomi_parsed_free(); on error *OUT is NULL and MSG gets
 * the reason (a fault's "Type: faultstring").
 */
struct vmomi_parsed;
int		 vmomi_parse(const char *, size_t, long, const char *,
		    struct vmomi_parsed **, char *, size_t);
/*
 * The update inside a parsed answer (WaitForUpdatesEx,
 * RetrievePropertiesEx, ContinueRetrievePropertiesEx), or NULL.
 */
const struct vmomi_update *vmomi_parsed_update(const struct vmomi_parsed *);
/* The first returnval as a moref (CreateFilter, FindByUuid...), 0/-1. */
int		 vmomi_parsed_moref(const struct vmomi_parsed *,
		    struct vmomi_moref *);
/* The first returnval as a value (Login's UserSession...), or NULL. */
const struct vmomi_val *vmomi_parsed_val(const struct vmomi_parsed *);
/* A RetrieveServiceContent answer's content: 0, or -1. */
int		 vmomi_parsed_service(const struct vmomi_parsed *,
		    struct vmomi_service *);
void		 vmomi_parsed_free(struct vmomi_parsed *);

/*
 * S escaped for XML element content or an attribute value, as a new
 * string to free, or NULL when S is not UTF-8 or holds a control
 * character XML 1.0 cannot carry (tab and newline are fine).
 */
char		*vmomi_xml_escape(const char *);

/* "aa:bb:..." or "aabb..." to 20 or 32 bytes; returns the length, or -1. */
int		 vmomi_thumbprint_parse(const char *, unsigned char *, size_t);

/*
 * The agent's side (locator/agent.c): requests that arrive from a
 * client, and forwarding them with our session.
 *
 * vmomi_request_parse() reads one incoming SOAP 1.1 request envelope:
 * the call is the local name of the Body's only element, _this its
 * managed object reference (type "" when the call has none).  Anything
 * else -- not XML, a document type declaration, not a SOAP Envelope, no
 * Body or several, a Body with no call or several, a Fault, a call name
 * that is not a plain identifier, _this twice or not a moref, elements
 * nested deeper than VMOMI_REQUEST_DEPTH -- is VMOMI_E_PARSE with a
 * message saying what and where; a body over VMOMI_REQUEST_BODY_MAX
 * bytes is VMOMI_E_TOOBIG.  Exposed for the fuzzer
 * (test/fuzz/vmomi_request_fuzz.c).
 */
#define VMOMI_REQUEST_DEPTH	100
#define VMOMI_REQUEST_BODY_MAX	(64 * 1024 * 1024)

struct vmomi_request {
	char			method[128];
	struct vmomi_moref	this;
	char			header[64];	/* a Header element other
						   than operationID, or "" */
};

int		 vmomi_request_parse(const char *, size_t,
		    struct vmomi_request *, char *, size_t);

/*
 * A forwarded call's answer, as the server sent it (valid during the
 * callback only).  NOTAUTH: it says our session is not authenticated
 * (a NotAuthenticated fault, or an HTTP 200 with NotAuthenticated in a
 * missingSet): log in again and send it once more.
 */
struct vmomi_answer {
	long		 status;	/* any HTTP status */
	const char	*ctype;		/* its Content-Type, or NULL */
	const char	*body;		/* LEN bytes, NUL-terminated */
	size_t		 len;
	int		 notauth;
};

typedef void	vmomi_answer_cb(uint64_t, int, const char *,
		    const struct vmomi_answer *, void *);

/*
 * POST BODY (LEN bytes, copied; at most VMOMI_REQUEST_BODY_MAX) as it
 * is, with our session's cookie and SOAPACTION as the SOAPAction value
 * (printable ASCII, at most 256 bytes, quotes included as given; NULL:
 * ours), within TIMEOUT_MS (0: the client's).  The answer comes back
 * unchanged whatever its status; ERR is not OK only when there is none
 * (transport, TLS, timeout, body over max_response, VMOMI_E_NOSESSION
 * before vmomi_login, VMOMI_E_ARG).  Nothing is parsed but what
 * NOTAUTH needs.
 */
uint64_t	 vmomi_forward(struct vmomi *, const char *, size_t,
		    const char *, long long, vmomi_answer_cb *, void *);

#endif
