/*
 * soap.c -- vim25 SOAP envelopes out, responses in (see vmomi.h).
 *
 * Requests are built as text in a capped buffer (struct soap_msg) in the
 * exact shape the simulator captures show; every string that comes
 * from a caller is checked (UTF-8, no control characters) and escaped,
 * so a moref value or a VM name can never close an element.  A Login
 * envelope carries the password: the buffer grows by copy and wipe, not
 * realloc (which may leave the old block behind unwiped), and is wiped
 * when freed here or, once handed over, by http.c.
 *
 * Responses are parsed with libxml2 into a tree that lives as long as
 * the struct vmomi_parsed: the update structures and the values handed
 * to callbacks point into it.  The parser never substitutes entities,
 * never touches the network, keeps libxml2's default size and depth
 * limits (no XML_PARSE_HUGE), and refuses any document type
 * declaration before libxml2 sees it: SOAP has no use for one and it is
 * where entity bombs live.  Text is gathered from text and CDATA nodes
 * only, never through entity references.
 *
 * Envelope and Body are matched by local name and the SOAP namespace;
 * vim25 elements by local name (the simulator puts them in urn:vim25,
 * through a default namespace).  A moref's type is the attribute
 * "type" in no namespace; xsi:type is looked up by namespace URI, so
 * any prefix ("xsi", "XMLSchema-instance") works.
 *
 * What a method's answer must look like comes from soap_methods[]:
 * anything else is VMOMI_E_PARSE with a message saying what was wrong
 * and where.  Faults are mapped to codes by soap_faults[].
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "text.h"
#include "vmomi.h"
#include "vmomi_int.h"
#include "xmalloc.h"

#define SOAP_ENV_NS	"http://schemas.xmlsoap.org/soap/envelope/"
#define SOAP_XSI_NS	"http://www.w3.org/2001/XMLSchema-instance"
#define SOAP_VIM_NS	"urn:vim25"
#define SOAP_PARSE_OPTS	(XML_PARSE_NONET | XML_PARSE_NOERROR | \
			    XML_PARSE_NOWARNING)
#define SOAP_MSG_INIT	1024

struct soap_msg {
	char	*buf;
	size_t	 len;
	size_t	 cap;
	int	 bad;		/* overflow or a refused string */
	char	 method[64];
};

struct vmomi_parsed {
	xmlDocPtr		 doc;
	const xmlNode		*ret;		/* first returnval */
	struct vmomi_update	*upd;
	struct vmomi_service	 svc;
	int			 has_svc;
	char			**strs;		/* gathered texts */
	size_t			 nstrs;
	size_t			 capstrs;
	size_t			 budget;	/* changes left */
	int			 notauth;	/* in a missingSet */
	char			 notauth_msg[160];
};

typedef int	soap_parse_fn(struct vmomi_parsed *, const xmlNode *, char *,
		    size_t);

struct soap_method {
	const char	*name;
	soap_parse_fn	*parse;
};

static soap_parse_fn	soap_p_any, soap_p_bool, soap_p_moref,
			soap_p_moref_opt, soap_p_service, soap_p_session,
			soap_p_retrieve, soap_p_wait;

/* What each method answers; unknown methods are refused. */
static const struct soap_method soap_methods[] = {
	{ "RetrieveServiceContent",	soap_p_service },
	{ "Login",			soap_p_session },
	{ "Logout",			soap_p_any },
	{ "SessionIsActive",		soap_p_bool },
	{ "CurrentTime",		soap_p_any },
	{ "FindByUuid",			soap_p_moref_opt },
	{ "FindByInventoryPath",	soap_p_moref_opt },
	{ "ReconfigVM_Task",		soap_p_moref },
	{ "CreateContainerView",	soap_p_moref },
	{ "DestroyView",		soap_p_any },
	{ "RetrievePropertiesEx",	soap_p_retrieve },
	{ "ContinueRetrievePropertiesEx", soap_p_retrieve },
	{ "CreatePropertyCollector",	soap_p_moref },
	{ "DestroyPropertyCollector",	soap_p_any },
	{ "CreateFilter",		soap_p_moref },
	{ "DestroyPropertyFilter",	soap_p_any },
	{ "WaitForUpdatesEx",		soap_p_wait },
	{ "CancelWaitForUpdates",	soap_p_any },
	{ "CreateCollectorForEvents",	soap_p_moref },
	{ "DestroyCollector",		soap_p_any },
	{ "QueryEvents",		soap_p_any },
};

/* Fault types with a code of their own; the rest are VMOMI_E_FAULT. */
static const struct {
	const char	*name;
	int		 err;
} soap_faults[] = {
	{ "NotAuthenticated",		VMOMI_E_NOTAUTH },
	{ "InvalidLogin",		VMOMI_E_LOGIN },
	{ "InvalidCollectorVersion",	VMOMI_E_VERSION },
	{ "RequestCanceled",		VMOMI_E_CANCELED },
	{ "ManagedObjectNotFound",	VMOMI_E_NOTFOUND },
};

static const struct {
	const char	*name;
	enum vmomi_kind	 kind;
} soap_kinds[] = {
	{ "enter",	VMOMI_KIND_ENTER },
	{ "modify",	VMOMI_KIND_MODIFY },
	{ "leave",	VMOMI_KIND_LEAVE },
};

static const struct {
	const char	*name;
	enum vmomi_op	 op;
} soap_ops[] = {
	{ "assign",		VMOMI_OP_ASSIGN },
	{ "add",		VMOMI_OP_ADD },
	{ "remove",		VMOMI_OP_REMOVE },
	{ "indirectRemove",	VMOMI_OP_INDIRECT_REMOVE },
};

/* Format a one-line reason: anything unprintable becomes '?'. */
static void __attribute__((format(printf, 3, 4)))
soap_err(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list	ap;

	if (msg == NULL || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	text_ascii(msg);
}

/* ---- request envelopes ---- */

/* Append LEN bytes, or mark the message bad past VMOMI_REQUEST_MAX. */
static void
soap_msg_add(struct soap_msg *m, const char *s, size_t len)
{
	char	*nbuf;
	size_t	 ncap;

	if (m->bad)
		return;
	if (len > VMOMI_REQUEST_MAX - m->len) {
		m->bad = 1;
		return;
	}
	if (m->len + len + 1 > m->cap) {
		ncap = m->cap;
		while (m->len + len + 1 > ncap)
			ncap *= 2;
		/* Not realloc: it may leave a copy of a password behind. */
		nbuf = xmalloc(ncap);
		memcpy(nbuf, m->buf, m->len + 1);
		explicit_bzero(m->buf, m->cap);
		free(m->buf);
		m->buf = nbuf;
		m->cap = ncap;
	}
	memcpy(m->buf + m->len, s, len);
	m->len += len;
	m->buf[m->len] = '\0';
}

/*
 * The entity for byte C in element content or an attribute value, ""
 * when C goes as it is, or NULL when XML 1.0 cannot carry it.
 */
static const char *
soap_entity(unsigned char c)
{
	static const char *const ents[] = {
		['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
		['"'] = "&quot;", ['\''] = "&apos;", ['\r'] = "&#13;",
	};

	if (c < sizeof(ents) / sizeof(ents[0]) && ents[c] != NULL)
		return (ents[c]);
	if (c < 0x20 && c != '\t' && c != '\n')
		return (NULL);
	return ("");
}

/* Append S escaped for element content or an attribute value. */
static void
soap_msg_esc(struct soap_msg *m, const char *s)
{
	const char	*rep;
	size_t		 start, i;

	if (s == NULL || !xmlCheckUTF8((const xmlChar *)s)) {
		m->bad = 1;
		return;
	}
	for (start = i = 0; s[i] != '\0'; i++) {
		if ((rep = soap_entity((unsigned char)s[i])) == NULL) {
			m->bad = 1;
			return;
		}
		if (*rep == '\0')
			continue;
		soap_msg_add(m, s + start, i - start);
		soap_msg_add(m, rep, strlen(rep));
		start = i + 1;
	}
	soap_msg_add(m, s + start, i - start);
}

/* S escaped for XML in a new string, or NULL (see vmomi_xml_escape). */
char *
soap_escape(const char *s)
{
	struct soap_msg	 m;
	char		*out;

	memset(&m, 0, sizeof(m));
	m.cap = 64;
	m.buf = xcalloc(1, m.cap);
	soap_msg_esc(&m, s);
	out = m.buf;
	if (m.bad) {
		free(out);
		out = NULL;
	}
	return (out);
}

/* Append a literal piece of markup (ours, never a caller's). */
void
soap_msg_raw(struct soap_msg *m, const char *s)
{
	soap_msg_add(m, s, strlen(s));
}

/* <NAME> */
void
soap_msg_open(struct soap_msg *m, const char *name)
{
	soap_msg_raw(m, "<");
	soap_msg_raw(m, name);
	soap_msg_raw(m, ">");
}

/* </NAME> */
void
soap_msg_close(struct soap_msg *m, const char *name)
{
	soap_msg_raw(m, "</");
	soap_msg_raw(m, name);
	soap_msg_raw(m, ">");
}

/* <NAME>escaped TEXT</NAME> */
void
soap_msg_text(struct soap_msg *m, const char *name, const char *text)
{
	soap_msg_open(m, name);
	soap_msg_esc(m, text);
	soap_msg_close(m, name);
}

/* <NAME xsi:type="TYPE">escaped TEXT</NAME>; TYPE is ours ("xsd:string"). */
void
soap_msg_typed(struct soap_msg *m, const char *name, const char *type,
    const char *text)
{
	soap_msg_raw(m, "<");
	soap_msg_raw(m, name);
	soap_msg_raw(m, " xsi:type=\"");
	soap_msg_raw(m, type);
	soap_msg_raw(m, "\">");
	soap_msg_esc(m, text);
	soap_msg_close(m, name);
}

/* A moref has a type and a value, both NUL-terminated and non-empty. */
int
soap_moref_ok(const struct vmomi_moref *r)
{
	return (r != NULL &&
	    memchr(r->type, '\0', sizeof(r->type)) != NULL &&
	    memchr(r->value, '\0', sizeof(r->value)) != NULL &&
	    r->type[0] != '\0' && r->value[0] != '\0');
}

/* <NAME type="TYPE">VALUE</NAME> */
void
soap_msg_moref(struct soap_msg *m, const char *name,
    const struct vmomi_moref *r)
{
	if (!soap_moref_ok(r)) {
		m->bad = 1;
		return;
	}
	soap_msg_raw(m, "<");
	soap_msg_raw(m, name);
	soap_msg_raw(m, " type=\"");
	soap_msg_esc(m, r->type);
	soap_msg_raw(m, "\">");
	soap_msg_esc(m, r->value);
	soap_msg_close(m, name);
}

/* Start METHOD on THIS, in the captures' envelope. */
struct soap_msg *
soap_msg_new(const char *method, const struct vmomi_moref *this)
{
	struct soap_msg	*m;

	m = xcalloc(1, sizeof(*m));
	m->cap = SOAP_MSG_INIT;
	m->buf = xmalloc(m->cap);
	m->buf[0] = '\0';
	if (strlcpy(m->method, method, sizeof(m->method)) >=
	    sizeof(m->method))
		m->bad = 1;
	soap_msg_raw(m, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<soapenv:Envelope"
	    " xmlns:soapenv=\"" SOAP_ENV_NS "\""
	    " xmlns:xsi=\"" SOAP_XSI_NS "\""
	    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
	    " xmlns=\"urn:vim25\">\n<soapenv:Body>\n");
	soap_msg_open(m, m->method);
	soap_msg_moref(m, "_this", this);
	return (m);
}

/* Free an unfinished message (wiped: it may hold a Login); NULL is fine. */
void
soap_msg_free(struct soap_msg *m)
{
	if (m == NULL)
		return;
	explicit_bzero(m->buf, m->cap);
	free(m->buf);
	free(m);
}

/* Close the envelope and hand its text over (*BODY is the caller's). */
int
soap_msg_finish(struct soap_msg *m, char **body, size_t *len, char *msg,
    size_t msglen)
{
	*body = NULL;
	*len = 0;
	soap_msg_close(m, m->method);
	soap_msg_raw(m, "\n</soapenv:Body>\n</soapenv:Envelope>\n");
	if (m->bad) {
		soap_err(msg, msglen, "%s: an argument is not valid text "
		    "(UTF-8, no control characters) or the request is over "
		    "%d bytes", m->method, VMOMI_REQUEST_MAX);
		soap_msg_free(m);
		return (VMOMI_E_ARG);
	}
	*body = m->buf;
	*len = m->len;
	free(m);
	return (VMOMI_OK);
}

/* A spec names a type and a valid moref. */
int
soap_spec_ok(const struct vmomi_spec *spec)
{
	return (spec != NULL && spec->type != NULL && spec->type[0] != '\0' &&
	    soap_moref_ok(&spec->obj));
}

/* <NAME>: a PropertyFilterSpec for SPEC. */
void
soap_msg_spec(struct soap_msg *m, const char *name,
    const struct vmomi_spec *spec)
{
	const char *const	*p;

	soap_msg_open(m, name);
	soap_msg_open(m, "propSet");
	soap_msg_text(m, "type", spec->type);
	if (spec->paths == NULL || spec->paths[0] == NULL)
		soap_msg_raw(m, "<all>true</all>");
	else
		for (p = spec->paths; *p != NULL; p++)
			soap_msg_text(m, "pathSet", *p);
	soap_msg_close(m, "propSet");
	soap_msg_open(m, "objectSet");
	soap_msg_moref(m, "obj", &spec->obj);
	if (spec->view)
		soap_msg_raw(m, "<skip>true</skip>"
		    "<selectSet xsi:type=\"TraversalSpec\">"
		    "<name>traverseView</name><type>ContainerView</type>"
		    "<path>view</path><skip>false</skip></selectSet>");
	else
		soap_msg_raw(m, "<skip>false</skip>");
	soap_msg_close(m, "objectSet");
	soap_msg_close(m, name);
}

/* ---- the tree ---- */

/* Drop the const a libxml2 node pointer came with (for _private). */
static xmlNode *
soap_unconst(const xmlNode *n)
{
	xmlNode	*r;

	memcpy(&r, &n, sizeof(r));
	return (r);
}

/* Is N an element named NAME (any namespace, or NS when set)? */
static int
soap_is(const xmlNode *n, const char *name, const char *ns)
{
	if (n == NULL || n->type != XML_ELEMENT_NODE ||
	    strcmp((const char *)n->name, name) != 0)
		return (0);
	if (ns == NULL)
		return (1);
	return (n->ns != NULL && n->ns->href != NULL &&
	    strcmp((const char *)n->ns->href, ns) == 0);
}

/* First child element of N named NAME (NULL: any). */
static const xmlNode *
soap_child(const xmlNode *n, const char *name)
{
	const xmlNode	*c;

	if (n == NULL)
		return (NULL);
	for (c = n->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    (name == NULL || strcmp((const char *)c->name, name) == 0))
			return (c);
	return (NULL);
}

/* The next sibling element of N with N's name. */
static const xmlNode *
soap_next(const xmlNode *n)
{
	const xmlNode	*c;

	for (c = n->next; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)c->name, (const char *)n->name) == 0)
			return (c);
	return (NULL);
}

/* Count N's child elements named NAME. */
static size_t
soap_count(const xmlNode *n, const char *name)
{
	const xmlNode	*c;
	size_t		 k = 0;

	for (c = soap_child(n, name); c != NULL; c = soap_next(c))
		k++;
	return (k);
}

/* Keep S until the parse is freed. */
static const char *
soap_keep(struct vmomi_parsed *p, char *s)
{
	if (p->nstrs == p->capstrs) {
		p->capstrs = p->capstrs == 0 ? 8 : p->capstrs * 2;
		p->strs = xreallocarray(p->strs, p->capstrs,
		    sizeof(*p->strs));
	}
	p->strs[p->nstrs++] = s;
	return (s);
}

/*
 * The text of element N: NULL if it has child elements, "" if none;
 * text and CDATA only (an entity reference contributes nothing).  A
 * text in pieces is joined once and cached in the node.
 */
static const char *
soap_text(struct vmomi_parsed *p, const xmlNode *n)
{
	const xmlNode	*c, *one = NULL;
	size_t		 len = 0, parts = 0, l;
	char		*s;

	if (n->_private != NULL)
		return (n->_private);
	for (c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_ELEMENT_NODE)
			return (NULL);
		if ((c->type == XML_TEXT_NODE ||
		    c->type == XML_CDATA_SECTION_NODE) && c->content != NULL) {
			one = c;
			parts++;
			len += strlen((const char *)c->content);
		}
	}
	if (parts == 0)
		return ("");
	if (parts == 1)
		return ((const char *)one->content);
	s = xmalloc(len + 1);
	len = 0;
	for (c = n->children; c != NULL; c = c->next)
		if ((c->type == XML_TEXT_NODE ||
		    c->type == XML_CDATA_SECTION_NODE) && c->content != NULL) {
			l = strlen((const char *)c->content);
			memcpy(s + len, c->content, l);
			len += l;
		}
	s[len] = '\0';
	soap_unconst(n)->_private = s;
	return (soap_keep(p, s));
}

/* The text of N's child NAME, or NULL (absent or not text). */
static const char *
soap_child_text(struct vmomi_parsed *p, const xmlNode *n, const char *name)
{
	const xmlNode	*c;

	if ((c = soap_child(n, name)) == NULL)
		return (NULL);
	return (soap_text(p, c));
}

/* The value of attribute A (single text child), or NULL. */
static const char *
soap_attr_text(const xmlAttr *a)
{
	if (a == NULL)
		return (NULL);
	if (a->children == NULL)
		return ("");
	if (a->children->type != XML_TEXT_NODE || a->children->next != NULL)
		return (NULL);
	return ((const char *)a->children->content);
}

/* N's xsi:type without its prefix ("xsd:string" is "string"), or NULL. */
static const char *
soap_xsi_type(const xmlNode *n)
{
	const char	*t, *colon;

	t = soap_attr_text(xmlHasNsProp(n, (const xmlChar *)"type",
	    (const xmlChar *)SOAP_XSI_NS));
	if (t == NULL)
		return (NULL);
	if ((colon = strrchr(t, ':')) != NULL)
		return (colon + 1);
	return (t);
}

/*
 * Read element N as a moref into R: type attribute in no namespace,
 * text value, no child elements, both within the struct's sizes.
 */
static int
soap_moref(struct vmomi_parsed *p, const xmlNode *n, struct vmomi_moref *r)
{
	xmlChar		*type;
	const char	*value;
	int		 ok;

	memset(r, 0, sizeof(*r));
	if (n == NULL || (value = soap_text(p, n)) == NULL)
		return (-1);
	if ((type = xmlGetNoNsProp(n, (const xmlChar *)"type")) == NULL)
		return (-1);
	ok = type[0] != '\0' && value[0] != '\0' &&
	    strlcpy(r->type, (const char *)type, sizeof(r->type)) <
	    sizeof(r->type) &&
	    strlcpy(r->value, value, sizeof(r->value)) < sizeof(r->value);
	xmlFree(type);
	if (!ok) {
		memset(r, 0, sizeof(*r));
		return (-1);
	}
	return (0);
}

/* The code for fault type NAME. */
int
soap_fault_code(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(soap_faults) / sizeof(soap_faults[0]); i++)
		if (name != NULL && strcmp(name, soap_faults[i].name) == 0)
			return (soap_faults[i].err);
	return (VMOMI_E_FAULT);
}

/*
 * A soapenv:Fault: the type from detail's first element (its xsi:type,
 * else its name less "Fault"), the message "Type: faultstring".
 */
static int
soap_fault(struct vmomi_parsed *p, const xmlNode *f, char *msg,
    size_t msglen)
{
	const xmlNode	*d;
	const char	*fs, *type;
	char		 name[128];
	size_t		 l;

	fs = soap_child_text(p, f, "faultstring");
	if (fs == NULL)
		fs = "";
	d = soap_child(soap_child(f, "detail"), NULL);
	if (d == NULL) {
		soap_err(msg, msglen, "SOAP fault without detail: %.200s",
		    fs[0] != '\0' ? fs : "(no faultstring)");
		return (VMOMI_E_FAULT);
	}
	if ((type = soap_xsi_type(d)) == NULL || type[0] == '\0') {
		strlcpy(name, (const char *)d->name, sizeof(name));
		l = strlen(name);
		if (l > 5 && strcmp(name + l - 5, "Fault") == 0)
			name[l - 5] = '\0';
		type = name;
	}
	if (fs[0] != '\0')
		soap_err(msg, msglen, "%.100s: %.300s", type, fs);
	else
		soap_err(msg, msglen, "%.100s", type);
	return (soap_fault_code(type));
}

/* ---- answers by method ---- */

/* Nothing to check beyond the Response element. */
static int
soap_p_any(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	return (VMOMI_OK);
}

/* A boolean returnval. */
static int
soap_p_bool(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	const char	*t;

	t = p->ret != NULL ? soap_text(p, p->ret) : NULL;
	if (t == NULL || (strcmp(t, "true") != 0 && strcmp(t, "false") != 0)) {
		soap_err(msg, msglen, "%s: returnval is not a boolean",
		    (const char *)resp->name);
		return (VMOMI_E_PARSE);
	}
	return (VMOMI_OK);
}

/* A moref returnval, required. */
static int
soap_p_moref(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	struct vmomi_moref	r;

	if (soap_moref(p, p->ret, &r) == -1) {
		soap_err(msg, msglen, "%s: %s", (const char *)resp->name,
		    p->ret == NULL ? "no returnval" :
		    "returnval is not a moref");
		return (VMOMI_E_PARSE);
	}
	return (VMOMI_OK);
}

/* A moref returnval, or none (Find*: nothing matched). */
static int
soap_p_moref_opt(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	if (p->ret == NULL)
		return (VMOMI_OK);
	return (soap_p_moref(p, resp, msg, msglen));
}

/* Login: a UserSession with a key. */
static int
soap_p_session(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	const char	*key;

	key = soap_child_text(p, p->ret, "key");
	if (key == NULL || key[0] == '\0' || strlen(key) >= 128) {
		soap_err(msg, msglen, "%s: no UserSession key",
		    (const char *)resp->name);
		return (VMOMI_E_PARSE);
	}
	return (VMOMI_OK);
}

/* The ServiceContent morefs we use, and two strings from "about". */
static int
soap_p_service(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	static const struct {
		const char	*name;
		size_t		 off;
		int		 required;
	} fields[] = {
		{ "rootFolder",
		    offsetof(struct vmomi_service, root_folder), 1 },
		{ "propertyCollector",
		    offsetof(struct vmomi_service, property_collector), 1 },
		{ "sessionManager",
		    offsetof(struct vmomi_service, session_manager), 1 },
		{ "viewManager",
		    offsetof(struct vmomi_service, view_manager), 0 },
		{ "searchIndex",
		    offsetof(struct vmomi_service, search_index), 0 },
		{ "eventManager",
		    offsetof(struct vmomi_service, event_manager), 0 },
	};
	struct vmomi_moref	*r;
	const xmlNode		*c, *about;
	const char		*t;
	size_t			 i;

	if (p->ret == NULL) {
		soap_err(msg, msglen, "%s: no returnval",
		    (const char *)resp->name);
		return (VMOMI_E_PARSE);
	}
	memset(&p->svc, 0, sizeof(p->svc));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		r = (struct vmomi_moref *)((char *)&p->svc + fields[i].off);
		c = soap_child(p->ret, fields[i].name);
		if (c == NULL && !fields[i].required)
			continue;
		if (soap_moref(p, c, r) == -1) {
			soap_err(msg, msglen, "ServiceContent: %s %s",
			    fields[i].name, c == NULL ? "missing" :
			    "is not a moref");
			return (VMOMI_E_PARSE);
		}
	}
	about = soap_child(p->ret, "about");
	t = soap_child_text(p, about, "apiVersion");
	if (t != NULL && strlcpy(p->svc.api_version, t,
	    sizeof(p->svc.api_version)) >= sizeof(p->svc.api_version)) {
		soap_err(msg, msglen, "ServiceContent: apiVersion too long");
		return (VMOMI_E_PARSE);
	}
	t = soap_child_text(p, about, "instanceUuid");
	if (t != NULL && strlcpy(p->svc.instance_uuid, t,
	    sizeof(p->svc.instance_uuid)) >= sizeof(p->svc.instance_uuid)) {
		soap_err(msg, msglen, "ServiceContent: instanceUuid too long");
		return (VMOMI_E_PARSE);
	}
	p->has_svc = 1;
	return (VMOMI_OK);
}

/*
 * A missingSet's LocalizedMethodFault: <fault><fault xsi:type="T">.
 * NotAuthenticated anywhere makes the whole answer VMOMI_E_NOTAUTH.
 */
static const char *
soap_missing_fault(struct vmomi_parsed *p, const xmlNode *ms,
    const char *what, int *err)
{
	const xmlNode	*f;
	const char	*type;

	f = soap_child(ms, "fault");
	type = soap_xsi_type(soap_child(f, "fault"));
	if (type == NULL || type[0] == '\0')
		type = soap_xsi_type(f);
	if (type == NULL || type[0] == '\0')
		type = "unknown";
	*err = soap_fault_code(type);
	if (*err == VMOMI_E_NOTAUTH && !p->notauth) {
		p->notauth = 1;
		soap_err(p->notauth_msg, sizeof(p->notauth_msg),
		    "NotAuthenticated (missingSet %.100s)", what);
	}
	return (type);
}

/* Take one from the answer's change budget. */
static int
soap_budget(struct vmomi_parsed *p, size_t n, char *msg, size_t msglen)
{
	if (n > p->budget) {
		soap_err(msg, msglen, "more than %d changes in one answer",
		    VMOMI_CHANGES_MAX);
		return (VMOMI_E_PARSE);
	}
	p->budget -= n;
	return (VMOMI_OK);
}

/*
 * One ObjectUpdate (WAIT) or ObjectContent into O: obj, then
 * changeSet (or propSet) and missingSet entries.
 */
static int
soap_object(struct vmomi_parsed *p, const xmlNode *n, int wait,
    struct vmomi_object *o, size_t idx, char *msg, size_t msglen)
{
	const char		*cname = wait ? "changeSet" : "propSet";
	const xmlNode		*c;
	struct vmomi_change	*ch;
	struct vmomi_missing	*mi;
	const char		*t;
	size_t			 i, nc, nm;
	int			 err;

	if (soap_moref(p, soap_child(n, "obj"), &o->obj) == -1) {
		soap_err(msg, msglen, "object %zu: obj missing or not a "
		    "moref", idx);
		return (VMOMI_E_PARSE);
	}
	o->kind = VMOMI_KIND_ENTER;
	if (wait) {
		t = soap_child_text(p, n, "kind");
		o->kind = 0;
		for (i = 0; t != NULL &&
		    i < sizeof(soap_kinds) / sizeof(soap_kinds[0]); i++)
			if (strcmp(t, soap_kinds[i].name) == 0)
				o->kind = soap_kinds[i].kind;
		if (o->kind == 0) {
			soap_err(msg, msglen, "object %zu (%.100s): bad kind",
			    idx, o->obj.value);
			return (VMOMI_E_PARSE);
		}
	}

	nc = soap_count(n, cname);
	nm = soap_count(n, "missingSet");
	if ((err = soap_budget(p, nc, msg, msglen)) != VMOMI_OK ||
	    (err = soap_budget(p, nm, msg, msglen)) != VMOMI_OK)
		return (err);
	if (nc > 0)
		o->changes = xcalloc(nc, sizeof(*o->changes));
	if (nm > 0)
		o->missing = xcalloc(nm, sizeof(*o->missing));

	for (c = soap_child(n, cname); c != NULL; c = soap_next(c)) {
		ch = &o->changes[o->nchanges++];
		ch->name = soap_child_text(p, c, "name");
		if (ch->name == NULL || ch->name[0] == '\0') {
			soap_err(msg, msglen, "object %zu (%.100s): %s %zu "
			    "without a name", idx, o->obj.value, cname,
			    o->nchanges);
			return (VMOMI_E_PARSE);
		}
		ch->op = VMOMI_OP_ASSIGN;
		if (wait) {
			t = soap_child_text(p, c, "op");
			ch->op = 0;
			for (i = 0; t != NULL &&
			    i < sizeof(soap_ops) / sizeof(soap_ops[0]); i++)
				if (strcmp(t, soap_ops[i].name) == 0)
					ch->op = soap_ops[i].op;
			if (ch->op == 0) {
				soap_err(msg, msglen, "object %zu (%.100s): "
				    "change %.100s: bad op", idx, o->obj.value,
				    ch->name);
				return (VMOMI_E_PARSE);
			}
		}
		ch->val = (const struct vmomi_val *)soap_child(c, "val");
	}

	for (c = soap_child(n, "missingSet"); c != NULL; c = soap_next(c)) {
		char	what[128];

		mi = &o->missing[o->nmissing++];
		mi->path = soap_child_text(p, c, "path");
		if (mi->path == NULL || mi->path[0] == '\0') {
			soap_err(msg, msglen, "object %zu (%.100s): missingSet "
			    "without a path", idx, o->obj.value);
			return (VMOMI_E_PARSE);
		}
		snprintf(what, sizeof(what), "%.60s %.60s", o->obj.value,
		    mi->path);
		mi->fault = soap_missing_fault(p, c, what, &mi->err);
	}
	return (VMOMI_OK);
}

/* Allocate the update with room for N objects. */
static int
soap_update_new(struct vmomi_parsed *p, size_t n, char *msg, size_t msglen)
{
	p->upd = xcalloc(1, sizeof(*p->upd));
	if (n > VMOMI_OBJECTS_MAX) {
		soap_err(msg, msglen, "more than %d objects in one answer",
		    VMOMI_OBJECTS_MAX);
		return (VMOMI_E_PARSE);
	}
	if (n > 0)
		p->upd->objects = xcalloc(n, sizeof(*p->upd->objects));
	return (VMOMI_OK);
}

/* RetrievePropertiesEx: an optional RetrieveResult (token, objects). */
static int
soap_p_retrieve(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	const xmlNode		*c;
	struct vmomi_update	*u;
	const char		*token = NULL;
	int			 err;

	if (p->ret != NULL) {
		c = soap_child(p->ret, "token");
		if (c != NULL && ((token = soap_text(p, c)) == NULL ||
		    token[0] == '\0')) {
			soap_err(msg, msglen, "%s: empty or bad token",
			    (const char *)resp->name);
			return (VMOMI_E_PARSE);
		}
	}
	if ((err = soap_update_new(p, soap_count(p->ret, "objects"), msg,
	    msglen)) != VMOMI_OK)
		return (err);
	u = p->upd;
	u->more = token != NULL;
	for (c = soap_child(p->ret, "objects"); c != NULL; c = soap_next(c)) {
		err = soap_object(p, c, 0, &u->objects[u->nobjects],
		    u->nobjects, msg, msglen);
		u->nobjects++;
		if (err != VMOMI_OK)
			return (err);
	}
	return (VMOMI_OK);
}

/* WaitForUpdatesEx: an optional UpdateSet. */
static int
soap_p_wait(struct vmomi_parsed *p, const xmlNode *resp, char *msg,
    size_t msglen)
{
	const xmlNode		*fs, *c;
	struct vmomi_update	*u;
	struct vmomi_moref	 filter;
	const char		*t;
	size_t			 n = 0;
	int			 err, dummy;

	/* Count first: the budget must hold before anything is built. */
	for (fs = soap_child(p->ret, "filterSet"); fs != NULL;
	    fs = soap_next(fs)) {
		n += soap_count(fs, "objectSet");
		if (n > VMOMI_OBJECTS_MAX)
			break;
	}
	if ((err = soap_update_new(p, n, msg, msglen)) != VMOMI_OK)
		return (err);
	u = p->upd;
	if (p->ret == NULL)
		return (VMOMI_OK);	/* maxWaitSeconds passed */

	u->version = soap_child_text(p, p->ret, "version");
	if (u->version == NULL) {
		soap_err(msg, msglen, "%s: UpdateSet without a version",
		    (const char *)resp->name);
		return (VMOMI_E_PARSE);
	}
	if ((t = soap_child_text(p, p->ret, "truncated")) != NULL) {
		if (strcmp(t, "true") == 0)
			u->truncated = 1;
		else if (strcmp(t, "false") != 0) {
			soap_err(msg, msglen, "%s: bad truncated",
			    (const char *)resp->name);
			return (VMOMI_E_PARSE);
		}
	}
	for (fs = soap_child(p->ret, "filterSet"); fs != NULL;
	    fs = soap_next(fs)) {
		if (soap_moref(p, soap_child(fs, "filter"), &filter) == -1) {
			soap_err(msg, msglen, "%s: filterSet without a "
			    "filter", (const char *)resp->name);
			return (VMOMI_E_PARSE);
		}
		for (c = soap_child(fs, "objectSet"); c != NULL;
		    c = soap_next(c)) {
			u->objects[u->nobjects].filter = filter;
			err = soap_object(p, c, 1, &u->objects[u->nobjects],
			    u->nobjects, msg, msglen);
			u->nobjects++;
			if (err != VMOMI_OK)
				return (err);
		}
		/* Missing objects: only NotAuthenticated matters. */
		for (c = soap_child(fs, "missingSet"); c != NULL;
		    c = soap_next(c))
			soap_missing_fault(p, c, "object", &dummy);
	}
	return (VMOMI_OK);
}

/* ---- the parser ---- */

/* libxml2 must never write to our stderr. */
static void
soap_quiet(void *ctx, const char *fmt, ...)
{
}

/* Free the arrays of an update built by the parser. */
static void
soap_update_free(struct vmomi_update *u)
{
	size_t	i;

	if (u == NULL)
		return;
	for (i = 0; i < u->nobjects; i++) {
		free(u->objects[i].changes);
		free(u->objects[i].missing);
	}
	free(u->objects);
	free(u);
}

/* Free a parsed answer; NULL is fine. */
void
soap_parsed_free(struct vmomi_parsed *p)
{
	size_t	i;

	if (p == NULL)
		return;
	soap_update_free(p->upd);
	if (p->doc != NULL)
		xmlFreeDoc(p->doc);
	for (i = 0; i < p->nstrs; i++)
		free(p->strs[i]);
	free(p->strs);
	free(p);
}

/* Parse BODY into a tree, quietly, with the safe options only. */
static int
soap_read(struct vmomi_parsed *p, const char *body, size_t len, char *msg,
    size_t msglen)
{
	xmlParserCtxtPtr	 ctxt;
	const xmlError		*e;
	xmlGenericErrorFunc	 oldfn;
	void			*oldctx;
	int			 err = VMOMI_OK;

	if (len > INT_MAX) {
		soap_err(msg, msglen, "response of %zu bytes", len);
		return (VMOMI_E_TOOBIG);
	}
	if (len == 0) {
		soap_err(msg, msglen, "empty response body");
		return (VMOMI_E_PARSE);
	}
	if (memmem(body, len, "<!DOCTYPE", 9) != NULL) {
		soap_err(msg, msglen, "response has a document type "
		    "declaration (refused)");
		return (VMOMI_E_PARSE);
	}

	xmlInitParser();
	oldfn = xmlGenericError;
	oldctx = xmlGenericErrorContext;
	xmlSetGenericErrorFunc(NULL, soap_quiet);
	if ((ctxt = xmlNewParserCtxt()) == NULL) {
		soap_err(msg, msglen, "libxml2: no parser context");
		err = VMOMI_E_SYSTEM;
		goto out;
	}
	p->doc = xmlCtxtReadMemory(ctxt, body, (int)len, "response.xml",
	    "UTF-8", SOAP_PARSE_OPTS);
	if (p->doc == NULL || !ctxt->wellFormed) {
		e = xmlCtxtGetLastError(ctxt);
		if (e != NULL && e->message != NULL)
			soap_err(msg, msglen, "XML error at line %d: %.200s",
			    e->line, e->message);
		else
			soap_err(msg, msglen, "XML error");
		/* Strip libxml2's trailing newline turned '?'. */
		if (msg != NULL && msglen > 0 && strlen(msg) > 0 &&
		    msg[strlen(msg) - 1] == '?')
			msg[strlen(msg) - 1] = '\0';
		err = VMOMI_E_PARSE;
		goto out;
	}
	if (p->doc->intSubset != NULL || p->doc->extSubset != NULL) {
		soap_err(msg, msglen, "response has a DTD (refused)");
		err = VMOMI_E_PARSE;
		goto out;
	}
	p->doc->_private = p;
out:
	if (ctxt != NULL)
		xmlFreeParserCtxt(ctxt);
	xmlSetGenericErrorFunc(oldctx, oldfn);
	return (err);
}

/* Parse one response to METHOD (see vmomi.h). */
int
soap_parse(const char *body, size_t len, long status, const char *method,
    struct vmomi_parsed **out, char *msg, size_t msglen)
{
	const struct soap_method	*m = NULL;
	struct vmomi_parsed		*p = NULL;
	const xmlNode			*root, *b, *first;
	char				 want[96];
	size_t				 i;
	int				 err;

	if (out != NULL)
		*out = NULL;
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	for (i = 0; method != NULL &&
	    i < sizeof(soap_methods) / sizeof(soap_methods[0]); i++)
		if (strcmp(method, soap_methods[i].name) == 0)
			m = &soap_methods[i];
	if (m == NULL || out == NULL || (body == NULL && len != 0)) {
		soap_err(msg, msglen, "unknown method or no output");
		return (VMOMI_E_ARG);
	}
	if (status != 200 && status != 500) {
		soap_err(msg, msglen, "HTTP %ld", status);
		return (VMOMI_E_HTTP);
	}

	p = xcalloc(1, sizeof(*p));
	p->budget = VMOMI_CHANGES_MAX;
	if ((err = soap_read(p, body, len, msg, msglen)) != VMOMI_OK)
		goto out;

	err = VMOMI_E_PARSE;
	root = xmlDocGetRootElement(p->doc);
	if (!soap_is(root, "Envelope", SOAP_ENV_NS)) {
		soap_err(msg, msglen, "root element is %.60s, not a SOAP "
		    "Envelope", root != NULL ? (const char *)root->name :
		    "missing");
		goto out;
	}
	for (b = soap_child(root, NULL); b != NULL && !soap_is(b, "Body",
	    SOAP_ENV_NS); b = b->next)
		;
	if (b == NULL) {
		soap_err(msg, msglen, "SOAP Envelope without a Body");
		goto out;
	}
	if ((first = soap_child(b, NULL)) == NULL) {
		soap_err(msg, msglen, "empty SOAP Body");
		goto out;
	}
	if (soap_is(first, "Fault", SOAP_ENV_NS)) {
		err = soap_fault(p, first, msg, msglen);
		goto out;
	}
	if (status == 500) {
		soap_err(msg, msglen, "HTTP 500 without a SOAP fault");
		goto out;
	}
	snprintf(want, sizeof(want), "%sResponse", m->name);
	if (!soap_is(first, want, NULL)) {
		soap_err(msg, msglen, "expected %s, got %.60s", want,
		    (const char *)first->name);
		goto out;
	}
	p->ret = soap_child(first, "returnval");
	if ((err = m->parse(p, first, msg, msglen)) != VMOMI_OK)
		goto out;
	if (p->notauth) {
		soap_err(msg, msglen, "%s", p->notauth_msg);
		err = VMOMI_E_NOTAUTH;
		goto out;
	}
	*out = p;
	p = NULL;
	err = VMOMI_OK;
out:
	soap_parsed_free(p);
	return (err);
}

/* The update inside a parsed answer, or NULL. */
const struct vmomi_update *
soap_parsed_update(const struct vmomi_parsed *p)
{
	return (p != NULL ? p->upd : NULL);
}

/* The first returnval as a moref: 0, or -1 if there is none. */
int
soap_parsed_moref(const struct vmomi_parsed *p, struct vmomi_moref *r)
{
	memset(r, 0, sizeof(*r));
	if (p == NULL || p->ret == NULL)
		return (-1);
	/* The tree is ours; soap_text only caches inside it. */
	return (soap_moref(p->doc->_private, p->ret, r));
}

/* The first returnval as a value, or NULL. */
const struct vmomi_val *
soap_parsed_val(const struct vmomi_parsed *p)
{
	return (p != NULL ? (const struct vmomi_val *)p->ret : NULL);
}

/* The ServiceContent of a RetrieveServiceContent answer: 0, or -1. */
int
soap_parsed_service(const struct vmomi_parsed *p, struct vmomi_service *s)
{
	memset(s, 0, sizeof(*s));
	if (p == NULL || !p->has_svc)
		return (-1);
	*s = p->svc;
	return (0);
}

/* ---- values ---- */

/* The parse a value's tree belongs to. */
static struct vmomi_parsed *
soap_val_owner(const xmlNode *n)
{
	return (n != NULL && n->doc != NULL ? n->doc->_private : NULL);
}

/* A value's xsi:type, prefix stripped, or NULL. */
const char *
soap_val_type(const struct vmomi_val *v)
{
	if (v == NULL)
		return (NULL);
	return (soap_xsi_type((const xmlNode *)v));
}

/* A value's text, or NULL when it has child elements. */
const char *
soap_val_text(const struct vmomi_val *v)
{
	struct vmomi_parsed	*p;

	if ((p = soap_val_owner((const xmlNode *)v)) == NULL)
		return (NULL);
	return (soap_text(p, (const xmlNode *)v));
}

/* 0 and *R when V is a moref (typed as one, or untyped with "type"). */
int
soap_val_moref(const struct vmomi_val *v, struct vmomi_moref *r)
{
	struct vmomi_parsed	*p;
	const char		*t;

	memset(r, 0, sizeof(*r));
	if ((p = soap_val_owner((const xmlNode *)v)) == NULL)
		return (-1);
	t = soap_xsi_type((const xmlNode *)v);
	if (t != NULL && strcmp(t, "ManagedObjectReference") != 0)
		return (-1);
	return (soap_moref(p, (const xmlNode *)v, r));
}

/* 0 and *OUT when V's text is a decimal integer. */
int
soap_val_int(const struct vmomi_val *v, long long *out)
{
	const char	*t;
	char		*end;
	long long	 n;

	*out = 0;
	if ((t = soap_val_text(v)) == NULL || t[0] == '\0' ||
	    !(t[0] == '-' || (t[0] >= '0' && t[0] <= '9')))
		return (-1);
	errno = 0;
	n = strtoll(t, &end, 10);
	if (errno != 0 || *end != '\0' || end == t)
		return (-1);
	*out = n;
	return (0);
}

/* V's first child element named NAME (NULL: any). */
const struct vmomi_val *
soap_val_child(const struct vmomi_val *v, const char *name)
{
	return ((const struct vmomi_val *)soap_child((const xmlNode *)v,
	    name));
}

/* V's next sibling with the same name. */
const struct vmomi_val *
soap_val_next(const struct vmomi_val *v)
{
	if (v == NULL)
		return (NULL);
	return ((const struct vmomi_val *)soap_next((const xmlNode *)v));
}

/* Hex pairs, all colon-separated or none, to 20 or 32 bytes. */
int
soap_thumbprint_parse(const char *s, unsigned char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	const char		*h, *l;
	size_t			 n = 0;
	int			 colons = -1;

	if (s == NULL || out == NULL)
		return (-1);
	while (*s != '\0') {
		if (n > 0) {
			if (colons == -1)
				colons = *s == ':';
			if (colons) {
				if (*s != ':')
					return (-1);
				s++;
			}
		}
		if (s[0] == '\0' || s[1] == '\0' || n >= 32)
			return (-1);
		h = strchr(hex, s[0] >= 'A' && s[0] <= 'F' ? s[0] + 32 : s[0]);
		l = strchr(hex, s[1] >= 'A' && s[1] <= 'F' ? s[1] + 32 : s[1]);
		if (h == NULL || l == NULL || s[0] == '\0' || s[1] == '\0')
			return (-1);
		if (n >= outlen)
			return (-1);
		out[n++] = (unsigned char)((h - hex) << 4 | (l - hex));
		s += 2;
	}
	if (n != 20 && n != 32)
		return (-1);
	return ((int)n);
}

/* ---- incoming requests (the agent's side) ---- */

/*
 * The deepest element below N, counted from DEPTH at N, walked without
 * recursion; stops as soon as MAX is passed.
 */
static int
soap_depth(const xmlNode *n, int depth, int max)
{
	const xmlNode	*c = n;
	int		 d = depth, deepest = depth;

	while (c != NULL) {
		if (c->type == XML_ELEMENT_NODE && c->children != NULL) {
			c = c->children;
			if (++d > deepest && (deepest = d) > max)
				return (deepest);
			continue;
		}
		while (c != NULL && c != n && c->next == NULL) {
			c = c->parent;
			d--;
		}
		if (c == NULL || c == n)
			break;
		c = c->next;
	}
	return (deepest);
}

/* Only blank text and comments among N's children, besides elements. */
static int
soap_only_elements(const xmlNode *n)
{
	const xmlNode	*c;
	const char	*t;

	for (c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_ELEMENT_NODE || c->type == XML_COMMENT_NODE)
			continue;
		if (c->type != XML_TEXT_NODE)
			return (0);
		for (t = (const char *)c->content; t != NULL && *t != '\0';
		    t++)
			if (*t != ' ' && *t != '\t' && *t != '\r' &&
			    *t != '\n')
				return (0);
	}
	return (1);
}

/*
 * The first element below ROOT, other than HDR and BODY, named like a
 * part of an envelope (Envelope, Header, Body: any namespace), or
 * NULL.  Servers differ in how they match those names (govmomi's
 * decoder ignores the namespace, and the last Body wins), so a request
 * carrying another one could run a call other than the one checked.
 */
static const xmlNode *
soap_smuggled(const xmlNode *root, const xmlNode *hdr, const xmlNode *body)
{
	static const char *const names[] = { "Envelope", "Header", "Body" };
	const xmlNode	*c = root->children;
	size_t		 i;

	while (c != NULL) {
		if (c->type == XML_ELEMENT_NODE && c != hdr && c != body)
			for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (strcmp((const char *)c->name,
				    names[i]) == 0)
					return (c);
		if (c->type == XML_ELEMENT_NODE && c->children != NULL) {
			c = c->children;
			continue;
		}
		while (c != NULL && c != root && c->next == NULL)
			c = c->parent;
		if (c == NULL || c == root)
			break;
		c = c->next;
	}
	return (NULL);
}

/*
 * Is N a _this as vim clients write it: in urn:vim25, one plain text
 * node (no comment, CDATA or entity splitting it: a server reading one
 * piece would act on another object than the one checked), a "type"
 * attribute in no namespace, and no attribute but that and xsi:type.
 */
static int
soap_this_plain(const xmlNode *n)
{
	const xmlAttr	*a;
	int		 type = 0;

	if (!soap_is(n, "_this", SOAP_VIM_NS) || n->children == NULL ||
	    n->children->next != NULL || n->children->type != XML_TEXT_NODE)
		return (0);
	for (a = n->properties; a != NULL; a = a->next) {
		if (strcmp((const char *)a->name, "type") != 0)
			return (0);
		if (a->ns == NULL)
			type++;
		else if (a->ns->href == NULL ||
		    strcmp((const char *)a->ns->href, SOAP_XSI_NS) != 0)
			return (0);
	}
	return (type == 1);
}

/* A call name: a plain identifier, as every vim25 method is. */
static int
soap_ident_ok(const char *s)
{
	size_t	i;

	if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return (0);
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return (0);
	return (1);
}

/*
 * Parse one incoming request envelope (vmomi_request_parse in
 * vmomi.h).  Ambiguity is refused rather than resolved: a second Body,
 * call or _this could make what the policy checks differ from what the
 * server runs.
 */
int
soap_request_parse(const char *body, size_t len, struct vmomi_request *req,
    char *msg, size_t msglen)
{
	struct vmomi_parsed	*p = NULL;
	const xmlNode		*root, *c, *b = NULL, *call = NULL;
	const xmlNode		*this = NULL, *hdr = NULL, *x;
	size_t			 nbody = 0, ncall = 0, nthis = 0;
	int			 err, depth;

	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if (req == NULL || (body == NULL && len != 0)) {
		soap_err(msg, msglen, "no request or no output");
		return (VMOMI_E_ARG);
	}
	memset(req, 0, sizeof(*req));
	if (len > VMOMI_REQUEST_BODY_MAX) {
		soap_err(msg, msglen, "request of %zu bytes (at most %d)", len,
		    VMOMI_REQUEST_BODY_MAX);
		return (VMOMI_E_TOOBIG);
	}
	/* soap_read's own words would say "response". */
	if (len == 0 || memmem(body, len, "<!DOCTYPE", 9) != NULL) {
		soap_err(msg, msglen, len == 0 ? "empty request body" :
		    "request has a document type declaration (refused)");
		return (VMOMI_E_PARSE);
	}
	p = xcalloc(1, sizeof(*p));
	if ((err = soap_read(p, body, len, msg, msglen)) != VMOMI_OK)
		goto out;

	err = VMOMI_E_PARSE;
	root = xmlDocGetRootElement(p->doc);
	if (!soap_is(root, "Envelope", SOAP_ENV_NS)) {
		soap_err(msg, msglen, "root element is %.60s, not a SOAP 1.1 "
		    "Envelope", root != NULL ? (const char *)root->name :
		    "missing");
		goto out;
	}
	if ((depth = soap_depth(root, 1, VMOMI_REQUEST_DEPTH)) >
	    VMOMI_REQUEST_DEPTH) {
		soap_err(msg, msglen, "elements nested deeper than %d",
		    VMOMI_REQUEST_DEPTH);
		goto out;
	}
	/* Envelope: an optional Header, then one Body, nothing else. */
	for (c = soap_child(root, NULL); c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (soap_is(c, "Header", SOAP_ENV_NS) && hdr == NULL &&
		    nbody == 0)
			hdr = c;
		else if (soap_is(c, "Body", SOAP_ENV_NS) && nbody++ == 0)
			b = c;
		else if (!soap_is(c, "Body", SOAP_ENV_NS)) {
			soap_err(msg, msglen, "SOAP Envelope holds %.60s (only "
			    "a Header, then a Body)", (const char *)c->name);
			goto out;
		}
	}
	if (nbody != 1) {
		soap_err(msg, msglen, nbody == 0 ? "SOAP Envelope without a "
		    "Body" : "SOAP Envelope with %zu Body elements", nbody);
		goto out;
	}
	if (!soap_only_elements(root) || !soap_only_elements(b)) {
		soap_err(msg, msglen, "text outside the call in the SOAP "
		    "Envelope or Body");
		goto out;
	}
	if ((x = soap_smuggled(root, hdr, b)) != NULL) {
		soap_err(msg, msglen, "a second %.20s element, at line %ld "
		    "(one Envelope, Header and Body per request)",
		    (const char *)x->name, (long)xmlGetLineNo(x));
		goto out;
	}
	/*
	 * Say what else the Header holds (a vcSessionCookie naming another
	 * session, WS-Security credentials): the caller decides.
	 * operationID only tags vCenter's logs.
	 */
	for (c = soap_child(hdr, NULL); c != NULL; c = c->next) {
		if (c->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)c->name, "operationID") != 0) {
			(void)strlcpy(req->header, (const char *)c->name,
			    sizeof(req->header));
			break;
		}
	}
	for (c = soap_child(b, NULL); c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && ncall++ == 0)
			call = c;
	if (ncall != 1) {
		soap_err(msg, msglen, ncall == 0 ? "empty SOAP Body" :
		    "SOAP Body with %zu elements (one call per request)",
		    ncall);
		goto out;
	}
	if (soap_is(call, "Fault", SOAP_ENV_NS)) {
		soap_err(msg, msglen, "SOAP Body holds a Fault, not a call");
		goto out;
	}
	if (!soap_ident_ok((const char *)call->name) ||
	    strlcpy(req->method, (const char *)call->name,
	    sizeof(req->method)) >= sizeof(req->method)) {
		soap_err(msg, msglen, "Body element %.60s is not a method "
		    "name", (const char *)call->name);
		memset(req, 0, sizeof(*req));
		goto out;
	}
	if (!soap_is(call, req->method, SOAP_VIM_NS)) {
		soap_err(msg, msglen, "%s is not in namespace " SOAP_VIM_NS,
		    req->method);
		goto out;
	}
	for (c = soap_child(call, "_this"); c != NULL; c = soap_next(c))
		if (nthis++ == 0)
			this = c;
	if (nthis > 1) {
		soap_err(msg, msglen, "%s: %zu _this elements", req->method,
		    nthis);
		goto out;
	}
	if (this != NULL && (!soap_this_plain(this) ||
	    soap_moref(p, this, &req->this) == -1)) {
		soap_err(msg, msglen, "%s: _this is not a managed object "
		    "reference (type attribute and text value)", req->method);
		goto out;
	}
	err = VMOMI_OK;
out:
	if (err != VMOMI_OK)
		memset(req, 0, sizeof(*req));
	soap_parsed_free(p);
	return (err);
}

/*
 * Does a forwarded answer say our session is not authenticated?  A
 * NotAuthenticated fault, or (HTTP 200) NotAuthenticated in any
 * missingSet.  A 200 without the word is not parsed at all.
 */
int
soap_notauth(const char *body, size_t len, long status)
{
	struct vmomi_parsed	*p;
	const xmlNode		*root, *b, *n;
	char			 msg[VMOMI_MSG_MAX];
	int			 err, found = 0;

	if ((status != 200 && status != 500) || body == NULL ||
	    memmem(body, len, "NotAuthenticated", 16) == NULL)
		return (0);
	p = xcalloc(1, sizeof(*p));
	if (soap_read(p, body, len, msg, sizeof(msg)) != VMOMI_OK)
		goto out;
	root = xmlDocGetRootElement(p->doc);
	if (!soap_is(root, "Envelope", SOAP_ENV_NS))
		goto out;
	for (b = soap_child(root, NULL); b != NULL && !soap_is(b, "Body",
	    SOAP_ENV_NS); b = b->next)
		;
	if ((n = soap_child(b, NULL)) == NULL)
		goto out;
	if (soap_is(n, "Fault", SOAP_ENV_NS)) {
		found = soap_fault(p, n, msg, sizeof(msg)) == VMOMI_E_NOTAUTH;
		goto out;
	}
	if (status != 200)
		goto out;
	/* Every element below the Body, in document order. */
	for (n = b->children; n != NULL && !found; ) {
		if (soap_is(n, "missingSet", NULL)) {
			soap_missing_fault(p, n, "forward", &err);
			found = err == VMOMI_E_NOTAUTH;
		}
		if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
			n = n->children;
			continue;
		}
		while (n != b && n->next == NULL)
			n = n->parent;
		n = n == b ? NULL : n->next;
	}
out:
	soap_parsed_free(p);
	return (found);
}
