/*
 * test_vmomi_forward.c -- libvmomi's agent side: the incoming request
 * parser (good envelopes as govc and pyvmomi send them, and every kind
 * of refusal with its message), and vmomi_forward against a recording
 * fake server (the body, SOAPAction and cookie go out unchanged; status,
 * content type and body come back unchanged; NotAuthenticated is seen)
 * and against the simulator (obj/vcsimh: a call before login, a call,
 * a killed session seen as notauth, a new login that works again).
 *
 * Run from the top of the tree (make does).
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "vmomi.h"
#include "utest.h"

#define REQS		"test/data/vmomi/requests/"
#define VCSIMH		"obj/vcsimh"
#define WAIT_S		20
#define ENV_OPEN	"<soapenv:Envelope xmlns:soapenv=" \
			"\"http://schemas.xmlsoap.org/soap/envelope/\">"
#define ENV_CLOSE	"</soapenv:Envelope>"
#define BODY(x)		ENV_OPEN "<soapenv:Body>" x "</soapenv:Body>" \
			ENV_CLOSE

static struct {
	struct event_base	*base;
	pid_t			 pid;
	int			 in, out;
	char			 url[256];
} sim;

struct res {
	int	called;
	int	err;
	char	msg[512];
	long	status;
	char	ctype[128];
	char	*body;
	size_t	len;
	int	notauth;
};


/* Parse a fixture file, asserting success. */
static void
parse_ok(const char *file, struct vmomi_request *req)
{
	char	 path[256], msg[256], *b;
	size_t	 len;
	int	 err;

	snprintf(path, sizeof(path), REQS "%s", file);
	b = utest_slurp(path, &len);
	err = vmomi_request_parse(b, len, req, msg, sizeof(msg));
	if (err != VMOMI_OK)
		fail_msg("%s: %d %s", file, err, msg);
	free(b);
}

/* What the agent's faults and the request envelopes escape, and refuse. */
static void
test_xml_escape(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;	/* NULL: refused */
	} cases[] = {
		{ "", "" },
		{ "plain", "plain" },
		{ "a<b>&\"c'", "a&lt;b&gt;&amp;&quot;c&apos;" },
		{ "tab\tnl\ncr\r", "tab\tnl\ncr&#13;" },
		{ "h\xc3\xa9llo \xe2\x82\xac", "h\xc3\xa9llo \xe2\x82\xac" },
		{ "bell\a", NULL },
		{ "esc\x1b[0m", NULL },
		{ "bad utf-8 \xc3\x28", NULL },
	};
	size_t	 i;
	char	*e;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = vmomi_xml_escape(cases[i].in);
		if (cases[i].out == NULL)
			assert_null(e);
		else {
			assert_non_null(e);
			assert_string_equal(e, cases[i].out);
		}
		free(e);
	}
}

/* Envelopes as clients send them. */
static void
test_request_good(void **state)
{
	struct vmomi_request	r;
	char			msg[256];
	const char		*s;

	parse_ok("govc-RetrievePropertiesEx.xml", &r);
	assert_string_equal(r.method, "RetrievePropertiesEx");
	assert_string_equal(r.this.type, "PropertyCollector");
	assert_string_equal(r.this.value, "propertyCollector");

	/* A Header, a character reference in the value. */
	parse_ok("pyvmomi-PowerOffVM_Task.xml", &r);
	assert_string_equal(r.method, "PowerOffVM_Task");
	assert_string_equal(r.this.type, "VirtualMachine");
	assert_string_equal(r.this.value, "vm-42");

	parse_ok("Login.xml", &r);
	assert_string_equal(r.method, "Login");
	assert_string_equal(r.this.type, "SessionManager");

	/* No _this: the call still parses, this is empty. */
	s = BODY("<CurrentTime xmlns=\"urn:vim25\"/>");
	assert_int_equal(vmomi_request_parse(s, strlen(s), &r, msg,
	    sizeof(msg)), VMOMI_OK);
	assert_string_equal(r.method, "CurrentTime");
	assert_string_equal(r.this.type, "");
	assert_string_equal(msg, "");
	assert_string_equal(r.header, "");

	/* What the Header holds besides operationID is said. */
	s = ENV_OPEN "<soapenv:Header><operationID>1</operationID>"
	    "<vcSessionCookie>x</vcSessionCookie></soapenv:Header>"
	    "<soapenv:Body><CurrentTime xmlns=\"urn:vim25\"/></soapenv:Body>"
	    ENV_CLOSE;
	assert_int_equal(vmomi_request_parse(s, strlen(s), &r, msg,
	    sizeof(msg)), VMOMI_OK);
	assert_string_equal(r.header, "vcSessionCookie");
	parse_ok("pyvmomi-PowerOffVM_Task.xml", &r);	/* operationID */
	assert_string_equal(r.header, "");
}

/* Deeply nested elements, built at run time. */
static char *
deep(int n)
{
	size_t	 cap = (size_t)n * 7 + 512, len;
	char	*b;
	int	 i;

	b = malloc(cap);
	assert_non_null(b);
	len = snprintf(b, cap, "%s<soapenv:Body><X xmlns=\"urn:vim25\">",
	    ENV_OPEN);
	for (i = 0; i < n; i++)
		len += snprintf(b + len, cap - len, "<a>");
	for (i = 0; i < n; i++)
		len += snprintf(b + len, cap - len, "</a>");
	snprintf(b + len, cap - len, "</X></soapenv:Body>%s", ENV_CLOSE);
	return (b);
}

/* Everything that is not one plain call is refused, saying why. */
static void
test_request_bad(void **state)
{
	static const struct {
		const char	*body;
		int		 err;
		const char	*says;
	} bad[] = {
		{ "", VMOMI_E_PARSE, "empty request body" },
		{ "GET / HTTP/1.1", VMOMI_E_PARSE, "XML error at line 1" },
		{ "<a><b></a>", VMOMI_E_PARSE, "XML error" },
		{ "<Envelope><Body><X/></Body></Envelope>", VMOMI_E_PARSE,
		    "root element is Envelope, not a SOAP 1.1 Envelope" },
		{ "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>"
		    "<x>&a;</x>", VMOMI_E_PARSE, "document type" },
		{ ENV_OPEN ENV_CLOSE, VMOMI_E_PARSE, "without a Body" },
		{ ENV_OPEN "<soapenv:Body><A/></soapenv:Body>"
		    "<soapenv:Body><B/></soapenv:Body>" ENV_CLOSE,
		    VMOMI_E_PARSE, "with 2 Body elements" },
		{ BODY(""), VMOMI_E_PARSE, "empty SOAP Body" },
		{ BODY("<A/><B/>"), VMOMI_E_PARSE,
		    "SOAP Body with 2 elements" },
		{ BODY("<soapenv:Fault><faultstring>x</faultstring>"
		    "</soapenv:Fault>"), VMOMI_E_PARSE, "holds a Fault" },
		{ BODY("<A-B/>"), VMOMI_E_PARSE, "is not a method name" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">"
		    "vm-1</_this><_this type=\"VirtualMachine\">vm-2</_this>"
		    "</A>"), VMOMI_E_PARSE, "A: 2 _this elements" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this>vm-1</_this></A>"),
		    VMOMI_E_PARSE, "A: _this is not a managed object reference" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">"
		    "<x/></_this></A>"), VMOMI_E_PARSE,
		    "_this is not a managed object" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">"
		    "</_this></A>"), VMOMI_E_PARSE,
		    "_this is not a managed object" },
		/* Smuggling: what the policy checks must be what runs. */
		{ ENV_OPEN "<soapenv:Body><CurrentTime xmlns=\"urn:vim25\">"
		    "<_this type=\"ServiceInstance\">ServiceInstance</_this>"
		    "</CurrentTime></soapenv:Body><Body xmlns=\"urn:vim25\">"
		    "<PowerOffVM_Task><_this type=\"VirtualMachine\">vm-39"
		    "</_this></PowerOffVM_Task></Body>" ENV_CLOSE,
		    VMOMI_E_PARSE, "SOAP Envelope holds Body (only a Header, "
		    "then a Body)" },
		{ BODY("<CurrentTime xmlns=\"urn:vim25\"><Body><PowerOffVM_Task"
		    "/></Body></CurrentTime>"), VMOMI_E_PARSE,
		    "a second Body element, at line 1" },
		{ ENV_OPEN "<soapenv:Body><CurrentTime xmlns=\"urn:vim25\"/>"
		    "</soapenv:Body><soapenv:Header/>" ENV_CLOSE, VMOMI_E_PARSE,
		    "SOAP Envelope holds Header" },
		{ ENV_OPEN "<soapenv:Header><x:Envelope xmlns:x=\"urn:x\"/>"
		    "</soapenv:Header><soapenv:Body><CurrentTime xmlns=\""
		    "urn:vim25\"/></soapenv:Body>" ENV_CLOSE, VMOMI_E_PARSE,
		    "a second Envelope element" },
		{ ENV_OPEN "<Extra/><soapenv:Body><CurrentTime xmlns=\""
		    "urn:vim25\"/></soapenv:Body>" ENV_CLOSE, VMOMI_E_PARSE,
		    "SOAP Envelope holds Extra" },
		{ BODY("text<CurrentTime xmlns=\"urn:vim25\"/>"), VMOMI_E_PARSE,
		    "text outside the call" },
		{ BODY("<CurrentTime xmlns=\"urn:x\"/>"), VMOMI_E_PARSE,
		    "CurrentTime is not in namespace urn:vim25" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">"
		    "vm-1<!--x-->2</_this></A>"), VMOMI_E_PARSE,
		    "_this is not a managed object" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">"
		    "vm-1<![CDATA[2]]></_this></A>"), VMOMI_E_PARSE,
		    "_this is not a managed object" },
		{ BODY("<A xmlns=\"urn:vim25\" xmlns:y=\"urn:y\"><_this "
		    "type=\"VirtualMachine\" y:type=\"Folder\">vm-1</_this>"
		    "</A>"), VMOMI_E_PARSE, "_this is not a managed object" },
		{ BODY("<A xmlns=\"urn:vim25\"><_this xmlns=\"urn:y\" type=\""
		    "VirtualMachine\">vm-1</_this></A>"), VMOMI_E_PARSE,
		    "_this is not a managed object" },
		{ "\xff\xfe<x/>", VMOMI_E_PARSE, "XML error" },
	};
	struct vmomi_request	 r;
	char			 msg[256], *d;
	size_t			 i, j;
	int			 err;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&r, 'x', sizeof(r));
		err = vmomi_request_parse(bad[i].body, strlen(bad[i].body),
		    &r, msg, sizeof(msg));
		if (err != bad[i].err || strstr(msg, bad[i].says) == NULL)
			fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, err,
			    msg, bad[i].err, bad[i].says);
		assert_string_equal(r.method, "");
		assert_string_equal(r.this.value, "");
		for (j = 0; msg[j] != '\0'; j++)
			assert_true(msg[j] >= 0x20 && msg[j] <= 0x7e);
	}

	/* Depth: the limit holds, one more is refused. */
	d = deep(VMOMI_REQUEST_DEPTH - 3);	/* Envelope, Body, X */
	assert_int_equal(vmomi_request_parse(d, strlen(d), &r, msg,
	    sizeof(msg)), VMOMI_OK);
	assert_string_equal(r.method, "X");
	free(d);
	d = deep(VMOMI_REQUEST_DEPTH - 2);
	assert_int_equal(vmomi_request_parse(d, strlen(d), &r, msg,
	    sizeof(msg)), VMOMI_E_PARSE);
	assert_non_null(strstr(msg, "nested deeper than"));
	free(d);
	/* And far beyond libxml2's own limit: still just refused. */
	d = deep(5000);
	assert_int_equal(vmomi_request_parse(d, strlen(d), &r, msg,
	    sizeof(msg)), VMOMI_E_PARSE);
	free(d);

	/* Size and arguments. */
	assert_int_equal(vmomi_request_parse("x", (size_t)
	    VMOMI_REQUEST_BODY_MAX + 1, &r, msg, sizeof(msg)),
	    VMOMI_E_TOOBIG);
	assert_int_equal(vmomi_request_parse(NULL, 1, &r, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	assert_int_equal(vmomi_request_parse("x", 1, NULL, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	/* A tiny message buffer is fine. */
	assert_int_equal(vmomi_request_parse("<x/>", 4, &r, msg, 4),
	    VMOMI_E_PARSE);
	assert_int_equal(strlen(msg), 3);
}

/* ---- the loop ---- */

/* Record a forward's answer. */
static void
answer_cb(uint64_t id, int err, const char *msg, const struct vmomi_answer *a,
    void *arg)
{
	struct res	*r = arg;

	r->called++;
	r->err = err;
	if (msg != NULL)
		strlcpy(r->msg, msg, sizeof(r->msg));
	if (err != VMOMI_OK) {
		assert_non_null(msg);
		assert_null(a);
		return;
	}
	assert_non_null(a);
	r->status = a->status;
	if (a->ctype != NULL)
		strlcpy(r->ctype, a->ctype, sizeof(r->ctype));
	r->body = malloc(a->len + 1);
	assert_non_null(r->body);
	memcpy(r->body, a->body, a->len);
	r->body[a->len] = '\0';
	assert_int_equal(a->body[a->len], '\0');
	r->len = a->len;
	r->notauth = a->notauth;
}

/* Record a login. */
static void
done_cb(uint64_t id, int err, const char *msg, void *arg)
{
	struct res	*r = arg;

	r->called++;
	r->err = err;
	if (msg != NULL)
		strlcpy(r->msg, msg, sizeof(r->msg));
}


/* Run the loop until R reports. */
static void
run(struct res *r)
{
	utest_run(sim.base, &r->called, WAIT_S);
}

/*
 * A fake vCenter: answers Login with a cookie, then each later request
 * with REPLY[i], writing every request it got (headers and body) to
 * the pipe REC.
 */
static pid_t
fake_vc(const char *const *reply, int *port, int *rec)
{
	char			 buf[65536];
	int			 s, c, p[2], i;
	ssize_t			 n, k;
	size_t			 have;
	char			*cl, *eoh;
	pid_t			 pid;

	assert_int_equal(pipe(p), 0);
	s = utest_listen(4, port);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		close(p[0]);
		c = -1;
		for (i = 0; reply[i] != NULL; i++) {
			if (c == -1 && (c = accept(s, NULL, NULL)) == -1)
				_exit(1);
			/* One request: headers, then Content-Length bytes. */
			have = 0;
			for (;;) {
				n = read(c, buf + have, sizeof(buf) - 1 - have);
				if (n <= 0)
					_exit(1);
				have += (size_t)n;
				buf[have] = '\0';
				if ((eoh = strstr(buf, "\r\n\r\n")) == NULL)
					continue;
				cl = strcasestr(buf, "Content-Length:");
				if (cl != NULL && have >= (size_t)(eoh + 4 -
				    buf) + strtoul(cl + 15, NULL, 10))
					break;
			}
			k = (ssize_t)have;
			if (write(p[1], &k, sizeof(k)) < 0 ||
			    write(p[1], buf, have) < 0 ||
			    write(c, reply[i], strlen(reply[i])) < 0)
				_exit(1);
		}
		sleep(2);
		_exit(0);
	}
	close(p[1]);
	close(s);
	*rec = p[0];
	return (pid);
}

/* The next request the fake server recorded. */
static char *
fake_request(int rec)
{
	ssize_t	 k;
	char	*b;

	assert_int_equal(read(rec, &k, sizeof(k)), sizeof(k));
	b = malloc((size_t)k + 1);
	assert_non_null(b);
	assert_int_equal(read(rec, b, (size_t)k), k);
	b[k] = '\0';
	return (b);
}

#define SC_BODY BODY("<RetrieveServiceContentResponse xmlns=\"urn:vim25\">" \
	"<returnval><rootFolder type=\"Folder\">group-d1</rootFolder>" \
	"<propertyCollector type=\"PropertyCollector\">propertyCollector" \
	"</propertyCollector><sessionManager type=\"SessionManager\">" \
	"SessionManager</sessionManager></returnval>" \
	"</RetrieveServiceContentResponse>")
#define LOGIN_BODY BODY("<LoginResponse xmlns=\"urn:vim25\"><returnval>" \
	"<key>k1</key></returnval></LoginResponse>")
#define NOTAUTH_FAULT BODY("<soapenv:Fault><faultcode>ServerFaultCode" \
	"</faultcode><faultstring>The session is not authenticated." \
	"</faultstring><detail><NotAuthenticatedFault xmlns=\"urn:vim25\" " \
	"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" " \
	"xsi:type=\"NotAuthenticated\"><object type=\"Folder\">group-d1" \
	"</object><privilegeId>System.View</privilegeId>" \
	"</NotAuthenticatedFault></detail></soapenv:Fault>")
#define MISSING_NOTAUTH BODY("<RetrievePropertiesExResponse " \
	"xmlns=\"urn:vim25\" xmlns:xsi=" \
	"\"http://www.w3.org/2001/XMLSchema-instance\"><returnval><objects>" \
	"<obj type=\"VirtualMachine\">vm-1</obj><missingSet><path>name" \
	"</path><fault><fault xsi:type=\"NotAuthenticated\"/></fault>" \
	"</missingSet></objects></returnval></RetrievePropertiesExResponse>")

/* A canned HTTP answer with BODY (static storage, one at a time). */
static const char *
reply(char *buf, size_t len, const char *status, const char *ctype,
    const char *body, const char *cookie)
{
	snprintf(buf, len, "HTTP/1.1 %s\r\n%s%s%s%sContent-Length: %zu\r\n"
	    "\r\n%s", status, ctype != NULL ? "Content-Type: " : "",
	    ctype != NULL ? ctype : "", ctype != NULL ? "\r\n" : "",
	    cookie != NULL ? cookie : "", strlen(body), body);
	return (buf);
}

/* Bodies and headers both ways, unchanged; NotAuthenticated seen. */
static void
test_forward_fake(void **state)
{
	char			 r0[2048], r1[2048], r2[2048], r3[2048];
	char			 r4[2048], r5[2048], url[64], *req;
	const char		*replies[7];
	const char		*call = BODY("<CurrentTime xmlns=\"urn:vim25\">"
				    "<_this type=\"ServiceInstance\">"
				    "ServiceInstance</_this></CurrentTime>");
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r;
	int			 port, rec, st;
	pid_t			 pid;

	replies[0] = reply(r0, sizeof(r0), "200 OK", "text/xml", SC_BODY,
	    NULL);
	replies[1] = reply(r1, sizeof(r1), "200 OK", "text/xml", LOGIN_BODY,
	    "Set-Cookie: vmware_soap_session=\"sess-1\"; Path=/\r\n");
	replies[2] = reply(r2, sizeof(r2), "200 OK",
	    "text/xml; charset=utf-8", "<not-even>xml", NULL);
	replies[3] = reply(r3, sizeof(r3), "500 Internal Server Error",
	    "text/xml", NOTAUTH_FAULT, NULL);
	replies[4] = reply(r4, sizeof(r4), "200 OK", NULL, MISSING_NOTAUTH,
	    NULL);
	replies[5] = reply(r5, sizeof(r5), "404 Not Found", "text/plain",
	    "NotAuthenticated, but not SOAP", NULL);
	replies[6] = NULL;
	pid = fake_vc(replies, &port, &rec);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sdk", port);
	memset(&c, 0, sizeof(c));
	c.url = url;
	c.user = "u";
	c.password = "p";
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_OK);

	/* Before a login: refused, nothing sent. */
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOSESSION);

	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	free(fake_request(rec));
	free(fake_request(rec));

	/* Whatever comes back, comes back as it is. */
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), "\"urn:vim25/6.7\"", 0,
	    answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/xml; charset=utf-8");
	assert_string_equal(r.body, "<not-even>xml");
	assert_false(r.notauth);
	free(r.body);
	req = fake_request(rec);
	assert_non_null(strstr(req, "\r\nSOAPAction: \"urn:vim25/6.7\"\r\n"));
	assert_non_null(strstr(req, "Cookie: vmware_soap_session=\"sess-1\""));
	assert_non_null(strstr(req, "\r\n\r\n"));
	assert_string_equal(strstr(req, "\r\n\r\n") + 4, call);
	free(req);

	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body, NOTAUTH_FAULT);
	assert_true(r.notauth);
	free(r.body);
	req = fake_request(rec);
	assert_non_null(strstr(req, "SOAPAction: \"urn:vim25/7.0\""));
	free(req);

	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "");
	assert_true(r.notauth);
	free(r.body);
	free(fake_request(rec));

	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.status, 404);
	assert_false(r.notauth);
	assert_string_equal(r.body, "NotAuthenticated, but not SOAP");
	free(r.body);
	free(fake_request(rec));

	/* Arguments refused before anything is sent. */
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), "bad\r\nX-Injected: 1", 0,
	    answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_ARG);
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, 0, NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_ARG);

	/* Aborted: no callback. */
	memset(&r, 0, sizeof(r));
	vmomi_abort(v, vmomi_forward(v, call, strlen(call), NULL, 0,
	    answer_cb, &r));
	event_base_loop(sim.base, EVLOOP_NONBLOCK);
	assert_int_equal(r.called, 0);
	assert_int_equal(vmomi_pending(v), 0);

	vmomi_free(v);
	close(rec);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}


/* Start obj/vcsimh (plain http). */
static void
sim_start(void)
{
	int		 pin[2], pout[2];
	char		 line[4096];
	json_t		*j;

	if (access(VCSIMH, X_OK) != 0)
		fail_msg("%s is missing: build it with `make %s`", VCSIMH,
		    VCSIMH);
	assert_int_equal(pipe(pin), 0);
	assert_int_equal(pipe(pout), 0);
	if ((sim.pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		close(pin[1]);
		close(pout[0]);
		execl(VCSIMH, "vcsimh", "-user", "vrelay", "-password", "pw",
		    (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	sim.in = pin[1];
	sim.out = pout[0];
	if (utest_read_line(sim.out, line, sizeof(line), 60000) == -1)
		fail_msg("%s printed no first line", VCSIMH);
	assert_non_null(j = json_loads(line, 0, NULL));
	strlcpy(sim.url, json_string_value(json_object_get(j, "url")),
	    sizeof(sim.url));
	json_decref(j);
}

/* The simulator: a call, a killed session seen, a new login. */
static void
test_forward_live(void **state)
{
	const char		*call = BODY("<CurrentTime xmlns=\"urn:vim25\">"
				    "<_this type=\"ServiceInstance\">"
				    "ServiceInstance</_this></CurrentTime>");
	const char		*rp;
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r;
	char			 line[256];

	sim_start();
	memset(&c, 0, sizeof(c));
	c.url = sim.url;
	c.user = "vrelay";
	c.password = "pw";
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_OK);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);

	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "CurrentTimeResponse"));
	assert_non_null(strstr(r.ctype, "text/xml"));
	assert_false(r.notauth);
	free(r.body);

	/* The server forgets every session. */
	assert_int_equal(write(sim.in, "kick\n", 5), 5);
	assert_int_equal(utest_read_line(sim.out, line, sizeof(line), 20000), 0);
	assert_non_null(strstr(line, "kicked"));

	rp = BODY("<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this "
	    "type=\"PropertyCollector\">propertyCollector</_this><specSet>"
	    "<propSet><type>Folder</type><pathSet>name</pathSet></propSet>"
	    "<objectSet><obj type=\"Folder\">group-d1</obj></objectSet>"
	    "</specSet><options/></RetrievePropertiesEx>");
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, rp, strlen(rp), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_true(r.notauth);
	free(r.body);
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, call, strlen(call), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	/* CurrentTime needs no session: the simulator answers anyway. */
	free(r.body);

	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	memset(&r, 0, sizeof(r));
	vmomi_forward(v, rp, strlen(rp), NULL, 0, answer_cb, &r);
	run(&r);
	assert_int_equal(r.status, 200);
	assert_false(r.notauth);
	assert_non_null(strstr(r.body, "Datacenters"));
	free(r.body);
	vmomi_free(v);
}

static int
setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	sim.base = event_base_new();
	return (sim.base == NULL ? -1 : 0);
}

static int
teardown(void **state)
{
	int	st;

	if (sim.pid > 0) {
		if (write(sim.in, "quit\n", 5) < 0)
			kill(sim.pid, SIGTERM);
		close(sim.in);
		close(sim.out);
		waitpid(sim.pid, &st, 0);
	}
	event_base_free(sim.base);
	return (0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_request_good),
		cmocka_unit_test(test_request_bad),
		cmocka_unit_test(test_forward_fake),
		cmocka_unit_test(test_forward_live),
	};

	return (cmocka_run_group_tests_name("vmomi forward", tests, setup,
	    teardown) != 0);
}
