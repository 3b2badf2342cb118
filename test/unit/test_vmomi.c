/*
 * test_vmomi.c -- libvmomi: the parser on every simulator capture and
 * on hand-written bad answers, the request envelopes against the
 * captured requests, thumbprints, and the live transport against the
 * vCenter simulator (obj/vcsimh, started once and shared; when it is
 * missing the live tests fail and say how to build it).
 *
 * Run from the top of the tree (make does): fixtures are found under
 * test/data/vmomi.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "../../vmomi/vmomi_int.h"
#include "utest.h"

#define SAMPLES		"test/data/vmomi/samples/"
#define BAD		"test/data/vmomi/bad/"
#define VCSIMH		"obj/vcsimh"
#define LIVE_WAIT_S	20

/* ---- files ---- */


/* The status of sample NAME (.resp.xml) from its .hdr; 500 if none. */
static long
sample_status(const char *dir, const char *name)
{
	char	 path[512], *h;
	size_t	 len, l;
	long	 st = 500;

	l = strlen(name) - strlen(".resp.xml");
	snprintf(path, sizeof(path), "%s%.*s.hdr", dir, (int)l, name);
	if (access(path, R_OK) != 0)
		return (st);
	h = utest_slurp(path, &len);
	if (strncmp(h, "HTTP/1.1 ", 9) == 0)
		st = strtol(h + 9, NULL, 10);
	free(h);
	return (st);
}

/* Parse file DIR/NAME as METHOD's answer with STATUS (0: from .hdr). */
static int
parse_file(const char *dir, const char *name, long status,
    const char *method, struct vmomi_parsed **p, char *msg, size_t msglen)
{
	char	 path[512], *body;
	size_t	 len;
	int	 err;

	snprintf(path, sizeof(path), "%s%s", dir, name);
	body = utest_slurp(path, &len);
	if (status == 0)
		status = sample_status(dir, name);
	err = vmomi_parse(body, len, status, method, p, msg, msglen);
	free(body);
	return (err);
}

/* ---- the captures ---- */

static const struct {
	const char	*file;
	const char	*method;
	int		 err;
	const char	*msg;		/* substring, when failing */
} samples[] = {
	{ "01-RetrieveServiceContent.resp.xml", "RetrieveServiceContent",
	    VMOMI_OK, NULL },
	{ "02-CurrentTime-noauth.resp.xml", "CurrentTime",
	    VMOMI_E_NOTAUTH, "NotAuthenticated" },
	{ "03-Login-bad.resp.xml", "Login",
	    VMOMI_E_LOGIN, "InvalidLogin: Login failure" },
	{ "04-Login-ok.resp.xml", "Login", VMOMI_OK, NULL },
	{ "05-CurrentTime.resp.xml", "CurrentTime",
	    VMOMI_E_NOTAUTH, "NotAuthenticated" },
	{ "06-Login-again-with-cookie.resp.xml", "Login",
	    VMOMI_E_LOGIN, "InvalidLogin" },
	/* The formatted 07 is a no-session answer; 07.raw is the real. */
	{ "07-RetrievePropertiesEx-vm.resp.xml", "RetrievePropertiesEx",
	    VMOMI_E_NOTAUTH, "missingSet" },
	{ "08-RetrievePropertiesEx-nosession.resp.xml",
	    "RetrievePropertiesEx", VMOMI_E_NOTAUTH, "NotAuthenticated" },
	{ "09-RetrievePropertiesEx-host-names.resp.xml",
	    "RetrievePropertiesEx", VMOMI_OK, NULL },
	{ "10-FindByInventoryPath.resp.xml", "FindByInventoryPath",
	    VMOMI_OK, NULL },
	{ "11-FindByUuid-instance.resp.xml", "FindByUuid", VMOMI_OK, NULL },
	{ "12-CreatePropertyCollector.resp.xml", "CreatePropertyCollector",
	    VMOMI_OK, NULL },
	{ "13-CreateFilter.resp.xml", "CreateFilter", VMOMI_OK, NULL },
	{ "14-WaitForUpdatesEx-initial.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "15-WaitForUpdatesEx-after-relocate.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "16-WaitForUpdatesEx-timeout.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "17-WaitForUpdatesEx-maxwait0.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "18-WaitForUpdatesEx-bogus-version.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "19-WaitForUpdatesEx-initial-again.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "20-QueryEvents-vm.resp.xml", "QueryEvents", VMOMI_OK, NULL },
	{ "21-CreateFilter-defaultPC.resp.xml", "CreateFilter",
	    VMOMI_OK, NULL },
	{ "22-WaitForUpdatesEx-defaultPC-initial.resp.xml",
	    "WaitForUpdatesEx", VMOMI_OK, NULL },
	{ "23-WaitForUpdatesEx-defaultPC.resp.xml", "WaitForUpdatesEx",
	    VMOMI_OK, NULL },
	{ "24-WaitForUpdatesEx-after-kick.resp.xml", "WaitForUpdatesEx",
	    VMOMI_E_NOTAUTH, "NotAuthenticated" },
	{ "25-WaitForUpdatesEx-pending-across-kick.resp.xml",
	    "WaitForUpdatesEx", VMOMI_E_NOTAUTH, "NotAuthenticated" },
	{ "26-Login-anyuser-permissive.resp.xml", "Login", VMOMI_OK, NULL },
	{ "27-Login-empty-password-permissive.resp.xml", "Login",
	    VMOMI_E_LOGIN, "InvalidLogin" },
	{ "28-WaitForUpdatesEx-longer-than-idle.resp.xml",
	    "WaitForUpdatesEx", VMOMI_E_NOTAUTH, "NotAuthenticated" },
	{ "29-CancelWaitForUpdates.resp.xml", "CancelWaitForUpdates",
	    VMOMI_OK, NULL },
	{ "30-WaitForUpdatesEx-cancelled.resp.xml", "WaitForUpdatesEx",
	    VMOMI_E_CANCELED, "RequestCanceled" },
	{ "31-DestroyPropertyCollector.resp.xml", "DestroyPropertyCollector",
	    VMOMI_OK, NULL },
	{ "32-WaitForUpdatesEx-destroyed-collector.resp.xml",
	    "WaitForUpdatesEx", VMOMI_E_NOTFOUND,
	    "ManagedObjectNotFound: managed object not found" },
	{ "33-RetrievePropertiesEx-host-vm-lists.resp.xml",
	    "RetrievePropertiesEx", VMOMI_OK, NULL },
	{ "34-Logout.resp.xml", "Logout", VMOMI_OK, NULL },
	{ "07-RetrievePropertiesEx-vm.raw.xml", "RetrievePropertiesEx",
	    VMOMI_OK, NULL },
};

/* Every capture, with its status, gives the expected code. */
static void
test_samples_all(void **state)
{
	struct vmomi_parsed	*p;
	char			 msg[VMOMI_MSG_MAX];
	size_t			 i;
	int			 err;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		err = parse_file(SAMPLES, samples[i].file,
		    strstr(samples[i].file, ".raw.") != NULL ? 200 : 0,
		    samples[i].method, &p, msg, sizeof(msg));
		if (err != samples[i].err)
			fail_msg("%s: got %d (%s), want %d", samples[i].file,
			    err, msg, samples[i].err);
		if (err == VMOMI_OK) {
			assert_non_null(p);
			assert_string_equal(msg, "");
		} else {
			assert_null(p);
			if (strstr(msg, samples[i].msg) == NULL)
				fail_msg("%s: message '%s' lacks '%s'",
				    samples[i].file, msg, samples[i].msg);
		}
		vmomi_parsed_free(p);
	}
}

/* No capture is left out of the table above. */
static void
test_samples_covered(void **state)
{
	DIR		*d;
	struct dirent	*e;
	size_t		 i, n = 0;
	int		 found;

	d = opendir(SAMPLES);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".resp.xml") == NULL)
			continue;
		n++;
		for (found = 0, i = 0; i < sizeof(samples) /
		    sizeof(samples[0]); i++)
			found |= strcmp(samples[i].file, e->d_name) == 0;
		if (!found)
			fail_msg("sample %s not checked", e->d_name);
	}
	closedir(d);
	assert_int_equal(n, 34);
}

/* 01: the morefs and strings of the service content. */
static void
test_service(void **state)
{
	struct vmomi_parsed	*p;
	struct vmomi_service	 s;
	char			 msg[VMOMI_MSG_MAX];

	assert_int_equal(parse_file(SAMPLES,
	    "01-RetrieveServiceContent.resp.xml", 0, "RetrieveServiceContent",
	    &p, msg, sizeof(msg)), VMOMI_OK);
	assert_int_equal(vmomi_parsed_service(p, &s), 0);
	assert_string_equal(s.root_folder.type, "Folder");
	assert_string_equal(s.root_folder.value, "group-d1");
	assert_string_equal(s.property_collector.type, "PropertyCollector");
	assert_string_equal(s.property_collector.value, "propertyCollector");
	assert_string_equal(s.view_manager.value, "ViewManager");
	assert_string_equal(s.search_index.type, "SearchIndex");
	assert_string_equal(s.session_manager.type, "SessionManager");
	assert_string_equal(s.event_manager.value, "EventManager");
	assert_string_equal(s.api_version, "6.5");
	assert_string_equal(s.instance_uuid,
	    "dbed6e0c-bd88-4ef6-b594-21283e1c677f");
	assert_null(vmomi_parsed_update(p));
	vmomi_parsed_free(p);

	/* Only RetrieveServiceContent answers carry one. */
	assert_int_equal(parse_file(SAMPLES, "04-Login-ok.resp.xml", 0,
	    "Login", &p, msg, sizeof(msg)), VMOMI_OK);
	assert_int_equal(vmomi_parsed_service(p, &s), -1);
	vmomi_parsed_free(p);
}

/* 04: the UserSession key; the answer's returnval as a value. */
static void
test_login(void **state)
{
	struct vmomi_parsed	*p;
	const struct vmomi_val	*v;
	struct vmomi_moref	 r;
	char			 msg[VMOMI_MSG_MAX];
	long long		 n;

	assert_int_equal(parse_file(SAMPLES, "04-Login-ok.resp.xml", 0,
	    "Login", &p, msg, sizeof(msg)), VMOMI_OK);
	v = vmomi_parsed_val(p);
	assert_non_null(v);
	assert_null(vmomi_val_text(v));
	assert_string_equal(vmomi_val_text(vmomi_val_child(v, "key")),
	    "d235aa0d-8077-4b0e-af9c-c0a38668632a");
	assert_int_equal(vmomi_val_int(vmomi_val_child(v, "callCount"), &n),
	    0);
	assert_int_equal(n, 1);
	assert_int_equal(vmomi_val_int(vmomi_val_child(v, "userName"), &n),
	    -1);
	assert_int_equal(vmomi_parsed_moref(p, &r), -1);
	vmomi_parsed_free(p);
}

/* The runtime.host change of 14 (enter) and 15 (modify). */
static void
check_wait(const char *file, enum vmomi_kind kind, size_t nchanges,
    const char *host)
{
	struct vmomi_parsed		*p;
	const struct vmomi_update	*u;
	const struct vmomi_object	*o;
	struct vmomi_moref		 r;
	char				 msg[VMOMI_MSG_MAX];

	assert_int_equal(parse_file(SAMPLES, file, 0, "WaitForUpdatesEx", &p,
	    msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_non_null(u);
	assert_string_equal(u->version, "-");
	assert_int_equal(u->truncated, 0);
	assert_int_equal(u->more, 0);
	assert_int_equal(u->nobjects, 1);
	o = &u->objects[0];
	assert_string_equal(o->filter.type, "PropertyFilter");
	assert_string_equal(o->filter.value, "session[d235aa0d-8077-4b0e-"
	    "af9c-c0a38668632a]445374e1-c223-45d3-ae87-02d94611fe4e");
	assert_string_equal(o->obj.type, "VirtualMachine");
	assert_string_equal(o->obj.value, "vm-45");
	assert_int_equal(o->kind, kind);
	assert_int_equal(o->nchanges, nchanges);
	assert_int_equal(o->nmissing, 0);
	assert_string_equal(o->changes[0].name, "runtime.host");
	assert_int_equal(o->changes[0].op, VMOMI_OP_ASSIGN);
	assert_string_equal(vmomi_val_type(o->changes[0].val),
	    "ManagedObjectReference");
	assert_int_equal(vmomi_val_moref(o->changes[0].val, &r), 0);
	assert_string_equal(r.type, "HostSystem");
	assert_string_equal(r.value, host);
	assert_string_equal(vmomi_val_text(o->changes[0].val), host);
	if (nchanges == 3) {
		assert_string_equal(o->changes[1].name, "runtime.powerState");
		assert_string_equal(vmomi_val_type(o->changes[1].val),
		    "VirtualMachinePowerState");
		assert_string_equal(vmomi_val_text(o->changes[1].val),
		    "poweredOn");
		assert_int_equal(vmomi_val_moref(o->changes[1].val, &r), -1);
		assert_string_equal(vmomi_val_type(o->changes[2].val),
		    "string");
		assert_string_equal(vmomi_val_text(o->changes[2].val),
		    "a59c9d6f-6268-5713-b32f-841b99543cbf");
	}
	vmomi_parsed_free(p);
}

/* 14 and 15: initial dump and the relocation. */
static void
test_wait_updates(void **state)
{
	check_wait("14-WaitForUpdatesEx-initial.resp.xml", VMOMI_KIND_ENTER,
	    3, "host-31");
	check_wait("15-WaitForUpdatesEx-after-relocate.resp.xml",
	    VMOMI_KIND_MODIFY, 1, "host-39");
}

/* 16, 17: no returnval; 19: a version and nothing else. */
static void
test_wait_empty(void **state)
{
	static const char *const	 files[] = {
		"16-WaitForUpdatesEx-timeout.resp.xml",
		"17-WaitForUpdatesEx-maxwait0.resp.xml",
	};
	struct vmomi_parsed		*p;
	const struct vmomi_update	*u;
	char				 msg[VMOMI_MSG_MAX];
	size_t				 i;

	for (i = 0; i < 2; i++) {
		assert_int_equal(parse_file(SAMPLES, files[i], 0,
		    "WaitForUpdatesEx", &p, msg, sizeof(msg)), VMOMI_OK);
		u = vmomi_parsed_update(p);
		assert_non_null(u);
		assert_null(u->version);
		assert_int_equal(u->nobjects, 0);
		assert_int_equal(u->truncated, 0);
		vmomi_parsed_free(p);
	}
	assert_int_equal(parse_file(SAMPLES,
	    "19-WaitForUpdatesEx-initial-again.resp.xml", 0,
	    "WaitForUpdatesEx", &p, msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_string_equal(u->version, "-");
	assert_int_equal(u->nobjects, 0);
	vmomi_parsed_free(p);
}

/* 07.raw, 09, 33: retrieve results and a moref array. */
static void
test_retrieve(void **state)
{
	struct vmomi_parsed		*p;
	const struct vmomi_update	*u;
	const struct vmomi_val		*a, *e;
	struct vmomi_moref		 r;
	char				 msg[VMOMI_MSG_MAX];

	assert_int_equal(parse_file(SAMPLES,
	    "07-RetrievePropertiesEx-vm.raw.xml", 200, "RetrievePropertiesEx",
	    &p, msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_null(u->version);
	assert_int_equal(u->more, 0);
	assert_int_equal(u->nobjects, 1);
	assert_int_equal(u->objects[0].kind, VMOMI_KIND_ENTER);
	assert_string_equal(u->objects[0].filter.type, "");
	assert_int_equal(u->objects[0].nchanges, 4);
	assert_string_equal(u->objects[0].changes[0].name, "name");
	assert_string_equal(vmomi_val_text(u->objects[0].changes[0].val),
	    "vch-appliance");
	assert_int_equal(vmomi_val_moref(u->objects[0].changes[1].val, &r),
	    0);
	assert_string_equal(r.value, "host-39");
	vmomi_parsed_free(p);

	assert_int_equal(parse_file(SAMPLES,
	    "09-RetrievePropertiesEx-host-names.resp.xml", 0,
	    "RetrievePropertiesEx", &p, msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_int_equal(u->nobjects, 3);
	assert_string_equal(u->objects[2].obj.value, "host-39");
	assert_string_equal(vmomi_val_text(u->objects[2].changes[0].val),
	    "esx-c");
	vmomi_parsed_free(p);

	assert_int_equal(parse_file(SAMPLES,
	    "33-RetrievePropertiesEx-host-vm-lists.resp.xml", 0,
	    "RetrievePropertiesEx", &p, msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_int_equal(u->nobjects, 3);
	a = u->objects[1].changes[1].val;
	assert_string_equal(u->objects[1].changes[1].name, "vm");
	assert_string_equal(vmomi_val_type(a),
	    "ArrayOfManagedObjectReference");
	assert_null(vmomi_val_text(a));
	e = vmomi_val_child(a, "ManagedObjectReference");
	assert_non_null(e);
	assert_int_equal(vmomi_val_moref(e, &r), 0);
	assert_string_equal(r.type, "VirtualMachine");
	assert_string_equal(r.value, "vm-45");
	assert_null(vmomi_val_next(e));
	/* An empty array: no children, empty text. */
	a = u->objects[0].changes[1].val;
	assert_null(vmomi_val_child(a, NULL));
	assert_string_equal(vmomi_val_text(a), "");
	vmomi_parsed_free(p);
}

/* 10-13: single morefs. */
static void
test_morefs(void **state)
{
	static const struct {
		const char	*file, *method, *type, *value;
	} t[] = {
		{ "10-FindByInventoryPath.resp.xml", "FindByInventoryPath",
		    "VirtualMachine", "vm-45" },
		{ "11-FindByUuid-instance.resp.xml", "FindByUuid",
		    "VirtualMachine", "vm-45" },
		{ "12-CreatePropertyCollector.resp.xml",
		    "CreatePropertyCollector", "PropertyCollector",
		    "session[d235aa0d-8077-4b0e-af9c-c0a38668632a]"
		    "a5e768cb-507f-46ad-89e8-7d363ba035f0" },
		{ "13-CreateFilter.resp.xml", "CreateFilter",
		    "PropertyFilter", "session[d235aa0d-8077-4b0e-af9c-"
		    "c0a38668632a]445374e1-c223-45d3-ae87-02d94611fe4e" },
	};
	struct vmomi_parsed	*p;
	struct vmomi_moref	 r;
	char			 msg[VMOMI_MSG_MAX];
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(parse_file(SAMPLES, t[i].file, 0,
		    t[i].method, &p, msg, sizeof(msg)), VMOMI_OK);
		assert_int_equal(vmomi_parsed_moref(p, &r), 0);
		assert_string_equal(r.type, t[i].type);
		assert_string_equal(r.value, t[i].value);
		vmomi_parsed_free(p);
	}
	/* FindByUuid with no match: OK, no moref. */
	assert_int_equal(parse_file(SAMPLES, "29-CancelWaitForUpdates."
	    "resp.xml", 0, "CancelWaitForUpdates", &p, msg, sizeof(msg)),
	    VMOMI_OK);
	assert_int_equal(vmomi_parsed_moref(p, &r), -1);
	vmomi_parsed_free(p);
}

/* Hand-written bad answers: each its code, none a crash. */
static void
test_bad_fixtures(void **state)
{
	static const struct {
		const char	*file, *method;
		long		 status;
		int		 err;
		const char	*msg;
	} t[] = {
		{ "truncated.xml", "WaitForUpdatesEx", 200, VMOMI_E_PARSE,
		    "XML error" },
		{ "no-body.xml", "Logout", 200, VMOMI_E_PARSE, "Body" },
		{ "wrong-root.xml", "Logout", 200, VMOMI_E_PARSE,
		    "root element" },
		{ "wrong-ns.xml", "Logout", 200, VMOMI_E_PARSE,
		    "root element" },
		{ "fault-no-detail.xml", "Logout", 500, VMOMI_E_FAULT,
		    "without detail: something broke" },
		{ "fault-notfound.xml", "CreateFilter", 500,
		    VMOMI_E_NOTFOUND, "ManagedObjectNotFound: The object" },
		{ "fault-version.xml", "WaitForUpdatesEx", 500,
		    VMOMI_E_VERSION, "InvalidCollectorVersion: The spec" },
		{ "fault-other.xml", "RetrievePropertiesEx", 500,
		    VMOMI_E_FAULT, "NoPermission: Permission" },
		{ "billion-laughs.xml", "WaitForUpdatesEx", 200,
		    VMOMI_E_PARSE, "document type" },
		{ "xxe.xml", "Login", 200, VMOMI_E_PARSE, "document type" },
		{ "non-utf8.xml", "Login", 200, VMOMI_E_PARSE, "XML error" },
		{ "bad-kind.xml", "WaitForUpdatesEx", 200, VMOMI_E_PARSE,
		    "bad kind" },
		{ "bad-op.xml", "WaitForUpdatesEx", 200, VMOMI_E_PARSE,
		    "bad op" },
		{ "no-obj.xml", "RetrievePropertiesEx", 200, VMOMI_E_PARSE,
		    "obj missing" },
		{ "moref-too-long.xml", "CreateFilter", 200, VMOMI_E_PARSE,
		    "not a moref" },
		{ "moref-xsi-only.xml", "CreateFilter", 200, VMOMI_E_PARSE,
		    "not a moref" },
		{ "wrong-response.xml", "CreateFilter", 200, VMOMI_E_PARSE,
		    "expected CreateFilterResponse, got LogoutResponse" },
		{ "wait-no-version.xml", "WaitForUpdatesEx", 200,
		    VMOMI_E_PARSE, "without a version" },
		{ "empty-body.xml", "Logout", 200, VMOMI_E_PARSE,
		    "empty SOAP Body" },
		{ "notauth-filter-missing.xml", "WaitForUpdatesEx", 200,
		    VMOMI_E_NOTAUTH, "NotAuthenticated" },
		{ "wrong-response.xml", "Logout", 503, VMOMI_E_HTTP,
		    "HTTP 503" },
		{ "wrong-response.xml", "Logout", 500, VMOMI_E_PARSE,
		    "HTTP 500 without a SOAP fault" },
		{ "wrong-response.xml", "NoSuchMethod", 200, VMOMI_E_ARG,
		    "unknown method" },
	};
	struct vmomi_parsed	*p;
	char			 msg[VMOMI_MSG_MAX];
	size_t			 i;
	int			 err;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = (struct vmomi_parsed *)&i;	/* must be cleared */
		err = parse_file(BAD, t[i].file, t[i].status, t[i].method,
		    &p, msg, sizeof(msg));
		if (err != t[i].err || strstr(msg, t[i].msg) == NULL)
			fail_msg("%s as %s: got %d '%s', want %d '%s'",
			    t[i].file, t[i].method, err, msg, t[i].err,
			    t[i].msg);
		assert_null(p);
	}
	/* Empty and absent bodies. */
	assert_int_equal(vmomi_parse("", 0, 200, "Logout", &p, msg,
	    sizeof(msg)), VMOMI_E_PARSE);
	assert_int_equal(vmomi_parse(NULL, 0, 200, "Logout", &p, msg,
	    sizeof(msg)), VMOMI_E_PARSE);
	assert_int_equal(vmomi_parse("garbage", 7, 200, "Logout", &p, NULL,
	    0), VMOMI_E_PARSE);
}

/* Odd but valid shapes: opaque values, CDATA, truncated, tokens. */
static void
test_val_garbage(void **state)
{
	struct vmomi_parsed		*p;
	const struct vmomi_update	*u;
	const struct vmomi_object	*o;
	const struct vmomi_val		*v, *c;
	struct vmomi_moref		 r;
	char				 msg[VMOMI_MSG_MAX];
	long long			 n;

	assert_int_equal(parse_file(BAD, "val-garbage.xml", 200,
	    "WaitForUpdatesEx", &p, msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_string_equal(u->version, "7");
	assert_int_equal(u->truncated, 1);
	o = &u->objects[0];
	assert_int_equal(o->nchanges, 3);
	v = o->changes[0].val;
	assert_string_equal(vmomi_val_type(v), "ArrayOfVirtualDevice");
	assert_null(vmomi_val_text(v));
	assert_int_equal(vmomi_val_moref(v, &r), -1);
	assert_int_equal(vmomi_val_int(v, &n), -1);
	c = vmomi_val_child(v, "a");
	assert_non_null(c);
	assert_null(vmomi_val_text(c));
	/* c has a child <d/>: not a moref although typed. */
	assert_int_equal(vmomi_val_moref(vmomi_val_child(vmomi_val_child(c,
	    "b"), "c"), &r), -1);
	c = vmomi_val_next(c);
	assert_non_null(c);
	assert_string_equal(vmomi_val_text(c), "text<not markup>");
	assert_string_equal(vmomi_val_text(c), "text<not markup>");
	assert_null(vmomi_val_next(c));
	assert_non_null(vmomi_val_child(v, "z"));
	assert_null(vmomi_val_child(v, "nope"));
	assert_int_equal(vmomi_val_int(o->changes[1].val, &n), 0);
	assert_int_equal(n, 1234);
	assert_int_equal(o->changes[2].op, VMOMI_OP_INDIRECT_REMOVE);
	assert_null(o->changes[2].val);
	assert_int_equal(o->nmissing, 1);
	assert_string_equal(o->missing[0].path, "guest.net");
	assert_string_equal(o->missing[0].fault, "NoPermission");
	assert_int_equal(o->missing[0].err, VMOMI_E_FAULT);
	/* NULL values are harmless. */
	assert_null(vmomi_val_type(NULL));
	assert_null(vmomi_val_text(NULL));
	assert_null(vmomi_val_child(NULL, NULL));
	assert_null(vmomi_val_next(NULL));
	assert_int_equal(vmomi_val_moref(NULL, &r), -1);
	vmomi_parsed_free(p);

	assert_int_equal(parse_file(BAD, "retrieve-token.xml", 200,
	    "RetrievePropertiesEx", &p, msg, sizeof(msg)), VMOMI_OK);
	u = vmomi_parsed_update(p);
	assert_int_equal(u->more, 1);
	assert_string_equal(vmomi_val_text(vmomi_val_child(vmomi_parsed_val(p),
	    "token")), "tok&1");
	assert_string_equal(vmomi_val_text(u->objects[0].changes[0].val),
	    "a<b");
	vmomi_parsed_free(p);
	vmomi_parsed_free(NULL);
}

/* Past VMOMI_OBJECTS_MAX objects: refused before building anything. */
static void
test_huge_counts(void **state)
{
	static const char	 head[] =
	    "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas."
	    "xmlsoap.org/soap/envelope/\"><s:Body><WaitForUpdatesExResponse>"
	    "<returnval><version>1</version><filterSet><filter type=\"F\">f"
	    "</filter>";
	static const char	 obj[] = "<objectSet/>";
	static const char	 tail[] = "</filterSet></returnval>"
	    "</WaitForUpdatesExResponse></s:Body></s:Envelope>";
	struct vmomi_parsed	*p;
	char			*b, msg[VMOMI_MSG_MAX];
	size_t			 i, len, n = VMOMI_OBJECTS_MAX + 1;

	b = malloc(sizeof(head) + n * (sizeof(obj) - 1) + sizeof(tail));
	assert_non_null(b);
	memcpy(b, head, sizeof(head) - 1);
	len = sizeof(head) - 1;
	for (i = 0; i < n; i++, len += sizeof(obj) - 1)
		memcpy(b + len, obj, sizeof(obj) - 1);
	memcpy(b + len, tail, sizeof(tail));
	len += sizeof(tail) - 1;
	assert_int_equal(vmomi_parse(b, len, 200, "WaitForUpdatesEx", &p,
	    msg, sizeof(msg)), VMOMI_E_PARSE);
	assert_non_null(strstr(msg, "more than 100000 objects"));
	/* Within the cap, an objectSet without obj is still refused. */
	assert_int_equal(vmomi_parse(b, len - (n - 5) * (sizeof(obj) - 1) -
	    sizeof(tail) + 1, 200, "WaitForUpdatesEx", &p, msg, sizeof(msg)),
	    VMOMI_E_PARSE);
	free(b);
}

/* Thumbprints: both forms, any case; everything else refused. */
static void
test_thumbprint(void **state)
{
	unsigned char	b[32];

	assert_int_equal(vmomi_thumbprint_parse("E5:98:49:96:0E:65:C1:03:8B:"
	    "29:80:DD:14:C5:CA:D1:E6:6B:72:8B:E3:98:90:0F:8F:BE:C7:17:08:41:"
	    "43:1A", b, sizeof(b)), 32);
	assert_int_equal(b[0], 0xe5);
	assert_int_equal(b[31], 0x1a);
	assert_int_equal(vmomi_thumbprint_parse("e59849960e65c1038b2980dd14c5"
	    "cad1e66b728be398900f8fbec7170841431a", b, sizeof(b)), 32);
	assert_int_equal(b[1], 0x98);
	assert_int_equal(vmomi_thumbprint_parse("E2:E8:18:E9:D0:B5:04:E5:D2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC:21", b, sizeof(b)), 20);
	assert_int_equal(b[19], 0x21);
	assert_int_equal(vmomi_thumbprint_parse("e2e818e9d0b504e5d2d1aafaeb52"
	    "6a0fd8b9ac21", b, sizeof(b)), 20);
	assert_int_equal(vmomi_thumbprint_parse("e2:E8:18:e9:D0:B5:04:E5:d2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC:21", b, sizeof(b)), 20);

	assert_int_equal(vmomi_thumbprint_parse("", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse(NULL, b, sizeof(b)), -1);
	/* 19 and 21 bytes, odd digits, bad digit, colons misplaced. */
	assert_int_equal(vmomi_thumbprint_parse("e2e818e9d0b504e5d2d1aafaeb52"
	    "6a0fd8b9ac", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("e2e818e9d0b504e5d2d1aafaeb52"
	    "6a0fd8b9ac2121", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("e2e818e9d0b504e5d2d1aafaeb52"
	    "6a0fd8b9ac2", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("g2e818e9d0b504e5d2d1aafaeb52"
	    "6a0fd8b9ac21", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("E2:E8:18:E9:D0:B5:04:E5:D2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC:21:", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse(":E2:E8:18:E9:D0:B5:04:E5:D2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC:21", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("E2:E8:18E9:D0:B5:04:E5:D2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC:21", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("E2E8:18:E9:D0:B5:04:E5:D2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC:21", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("E2::E8:18:E9:D0:B5:04:E5:D2:"
	    "D1:AA:FA:EB:52:6A:0F:D8:B9:AC", b, sizeof(b)), -1);
	assert_int_equal(vmomi_thumbprint_parse("E:2E:81:8E:9D:0B:50:4E:5D:2D:"
	    "1A:AF:AE:B5:26:A0:FD:8B:9A:C2:1", b, sizeof(b)), -1);
	/* Too small an output. */
	assert_int_equal(vmomi_thumbprint_parse("e59849960e65c1038b2980dd14c5"
	    "cad1e66b728be398900f8fbec7170841431a", b, 20), -1);
}

/* Conf mistakes vmomi_new refuses before anything is set up. */
static void
test_conf_refused(void **state)
{
	static const char *const bad[] = {
		"https://u:p@vc.example/sdk",	/* user info: a password */
		"https://u@vc.example/sdk",
		"http://vc.example@evil.example/sdk",
		"https://:@vc.example",
		"https:///sdk",			/* no host */
		"https://",
		"ftp://vc.example/sdk",
		"vc.example/sdk",
		"",
	};
	static const char *const good[] = {
		"https://vc.example/sdk",
		"HTTPS://vc.example:8443/sdk?a=b@c",	/* '@' past the host */
		"http://127.0.0.1/sdk#x@y",
		"https://[::1]/sdk",
	};
	struct event_base	*base;
	struct vmomi_conf	 c;
	struct vmomi		*v;
	size_t			 i;

	assert_non_null(base = event_base_new());
	memset(&c, 0, sizeof(c));
	c.user = "u";
	c.password = "p";
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.url = bad[i];
		v = (struct vmomi *)&c;		/* must be cleared */
		if (vmomi_new(base, &c, &v) != VMOMI_E_ARG)
			fail_msg("%s accepted", bad[i]);
		assert_null(v);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		c.url = good[i];
		if (vmomi_new(base, &c, &v) != VMOMI_OK)
			fail_msg("%s refused", good[i]);
		vmomi_free(v);
	}

	/* A pin: valid, and alone. */
	c.url = "https://vc.example/sdk";
	c.thumbprint = "E2:E8:18:E9:D0:B5:04:E5:D2:D1:AA:FA:EB:52:6A:0F:"
	    "D8:B9:AC:21";
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_OK);
	vmomi_free(v);
	c.thumbprint = "E2:E8:18";
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_E_ARG);
	c.thumbprint = "E2:E8:18:E9:D0:B5:04:E5:D2:D1:AA:FA:EB:52:6A:0F:"
	    "D8:B9:AC:21";
	c.cacert = "/etc/ssl/certs/ca-certificates.crt";
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_E_ARG);
	c.cacert = NULL;
	c.insecure = 1;
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_E_ARG);
	c.insecure = 0;
	c.url = "http://vc.example/sdk";
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_E_ARG);
	c.thumbprint = NULL;
	c.url = NULL;
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_E_ARG);
	c.url = "https://vc.example/sdk";
	c.timeout_ms = -1;
	assert_int_equal(vmomi_new(base, &c, &v), VMOMI_E_ARG);
	c.timeout_ms = 0;
	assert_int_equal(vmomi_new(base, NULL, &v), VMOMI_E_ARG);
	assert_int_equal(vmomi_new(base, &c, NULL), VMOMI_E_ARG);
	event_base_free(base);
}

/* Every code has its own description. */
static void
test_strerror(void **state)
{
	int	i, j;

	for (i = VMOMI_E_NOSESSION; i <= VMOMI_OK; i++) {
		assert_string_not_equal(vmomi_strerror(i),
		    "unknown vmomi error");
		for (j = VMOMI_E_NOSESSION; j < i; j++)
			assert_string_not_equal(vmomi_strerror(i),
			    vmomi_strerror(j));
	}
	assert_string_equal(vmomi_strerror(-99), "unknown vmomi error");
}

/* The envelope of capture FILE, without its trailing newline. */
static void
check_req(struct soap_msg *m, const char *file)
{
	char	 path[512], *want, *got, msg[VMOMI_MSG_MAX];
	size_t	 wlen, glen;

	snprintf(path, sizeof(path), SAMPLES "%s", file);
	want = utest_slurp(path, &wlen);
	while (wlen > 0 && want[wlen - 1] == '\n')
		want[--wlen] = '\0';
	assert_int_equal(soap_msg_finish(m, &got, &glen, msg, sizeof(msg)),
	    VMOMI_OK);
	while (glen > 0 && got[glen - 1] == '\n')
		got[--glen] = '\0';
	assert_string_equal(got, want);
	free(got);
	free(want);
}

/* Requests come out exactly as the captured ones. */
static void
test_requests(void **state)
{
	static const char *const paths[] = { "runtime.host",
	    "runtime.powerState", "config.instanceUuid", NULL };
	struct vmomi_moref	 sm = { "SessionManager", "SessionManager" };
	struct vmomi_moref	 si = { "SearchIndex", "SearchIndex" };
	struct vmomi_moref	 pc = { "PropertyCollector",
	    "session[d235aa0d-8077-4b0e-af9c-c0a38668632a]"
	    "a5e768cb-507f-46ad-89e8-7d363ba035f0" };
	struct vmomi_spec	 spec;
	struct soap_msg		*m;
	char			*body, msg[VMOMI_MSG_MAX];
	size_t			 len;

	m = soap_msg_new("Login", &sm);
	soap_msg_text(m, "userName", "vrelay");
	soap_msg_text(m, "password", "s3cret");
	check_req(m, "04-Login-ok.req.xml");

	m = soap_msg_new("FindByInventoryPath", &si);
	soap_msg_text(m, "inventoryPath", "DC0/vm/vch-appliance");
	check_req(m, "10-FindByInventoryPath.req.xml");

	m = soap_msg_new("FindByUuid", &si);
	soap_msg_text(m, "uuid", "a59c9d6f-6268-5713-b32f-841b99543cbf");
	soap_msg_raw(m, "<vmSearch>true</vmSearch>"
	    "<instanceUuid>true</instanceUuid>");
	check_req(m, "11-FindByUuid-instance.req.xml");

	memset(&spec, 0, sizeof(spec));
	strlcpy(spec.obj.type, "VirtualMachine", sizeof(spec.obj.type));
	strlcpy(spec.obj.value, "vm-45", sizeof(spec.obj.value));
	spec.type = "VirtualMachine";
	spec.paths = paths;
	m = soap_msg_new("CreateFilter", &pc);
	soap_msg_spec(m, "spec", &spec);
	soap_msg_raw(m, "<partialUpdates>false</partialUpdates>");
	check_req(m, "13-CreateFilter.req.xml");

	m = soap_msg_new("WaitForUpdatesEx", &pc);
	soap_msg_text(m, "version", "-");
	soap_msg_raw(m, "<options><maxWaitSeconds>60</maxWaitSeconds>"
	    "</options>");
	check_req(m, "15-WaitForUpdatesEx-after-relocate.req.xml");

	/* Escaping, and strings XML cannot carry. */
	m = soap_msg_new("Login", &sm);
	soap_msg_text(m, "userName", "a<b>&\"c'\r");
	assert_int_equal(soap_msg_finish(m, &body, &len, msg, sizeof(msg)),
	    VMOMI_OK);
	assert_non_null(strstr(body, "<userName>a&lt;b&gt;&amp;&quot;c&apos;"
	    "&#13;</userName>"));
	free(body);
	m = soap_msg_new("Login", &sm);
	soap_msg_text(m, "password", "s3cr\001et");
	assert_int_equal(soap_msg_finish(m, &body, &len, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	assert_null(body);
	assert_null(strstr(msg, "s3cr"));	/* never echoes it */
	m = soap_msg_new("Login", &sm);
	soap_msg_text(m, "userName", "\xff\xfe");
	assert_int_equal(soap_msg_finish(m, &body, &len, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	strlcpy(spec.obj.value, "<x\"&>", sizeof(spec.obj.value));
	spec.view = 1;
	m = soap_msg_new("RetrievePropertiesEx", &pc);
	soap_msg_spec(m, "specSet", &spec);
	assert_int_equal(soap_msg_finish(m, &body, &len, msg, sizeof(msg)),
	    VMOMI_OK);
	assert_non_null(strstr(body, "<obj type=\"VirtualMachine\">&lt;x"
	    "&quot;&amp;&gt;</obj><skip>true</skip><selectSet "
	    "xsi:type=\"TraversalSpec\">"));
	free(body);
}

/* ---- live, against the simulator ---- */

static struct {
	pid_t			 pid;
	int			 in;		/* its stdin */
	int			 out;		/* its stdout */
	char			 dir[64];
	char			 cert[128];
	char			 url[256];
	char			 sha256[128];
	char			 sha1[96];
	char			 vm[64];
	json_t			*hosts;		/* name -> moref */
	struct event_base	*base;
	int			 timed_out;
} sim;

struct res {
	int			called;
	int			err;
	char			msg[VMOMI_MSG_MAX];
	struct vmomi_moref	ref;
	int			has_update;
	char			version[64];
	int			has_version;
	size_t			nobjects;
	enum vmomi_kind		kind;
	char			host[64];	/* runtime.host value */
	char			name[128];	/* "name" value */
	char			iuuid[64];	/* config.instanceUuid */
	char			buuid[64];	/* config.uuid */
	struct vmomi_moref	obj;
	struct vmomi		*free_me;	/* vmomi_free in callback */
};

/* Record a done callback. */
static void
done_cb(uint64_t id, int err, const char *msg, void *arg)
{
	struct res	*r = arg;

	r->called++;
	r->err = err;
	if (msg != NULL)
		strlcpy(r->msg, msg, sizeof(r->msg));
	if (err != VMOMI_OK)
		assert_non_null(msg);
	else
		assert_null(msg);
	if (r->free_me != NULL) {
		vmomi_free(r->free_me);
		r->free_me = NULL;
	}
}

/* Record a ref callback. */
static void
ref_cb(uint64_t id, int err, const char *msg, const struct vmomi_moref *ref,
    void *arg)
{
	struct res	*r = arg;

	done_cb(id, err, msg, arg);
	if (ref != NULL)
		r->ref = *ref;
	else
		assert_int_not_equal(err, VMOMI_OK);
}

/* Record an update callback: the first object's interesting parts. */
static void
upd_cb(uint64_t id, int err, const char *msg, const struct vmomi_update *u,
    void *arg)
{
	struct res			*r = arg;
	const struct vmomi_object	*o;
	struct vmomi_moref		 m;
	const char			*t;
	size_t				 i;

	done_cb(id, err, msg, arg);
	if (u == NULL)
		return;
	r->has_update = 1;
	r->has_version = u->version != NULL;
	if (u->version != NULL)
		strlcpy(r->version, u->version, sizeof(r->version));
	r->nobjects += u->nobjects;
	if (u->nobjects == 0)
		return;
	o = &u->objects[0];
	r->kind = o->kind;
	r->obj = o->obj;
	for (i = 0; i < o->nchanges; i++) {
		if (strcmp(o->changes[i].name, "runtime.host") == 0 &&
		    vmomi_val_moref(o->changes[i].val, &m) == 0)
			strlcpy(r->host, m.value, sizeof(r->host));
		if ((t = vmomi_val_text(o->changes[i].val)) == NULL)
			continue;
		if (strcmp(o->changes[i].name, "name") == 0)
			strlcpy(r->name, t, sizeof(r->name));
		if (strcmp(o->changes[i].name, "config.instanceUuid") == 0)
			strlcpy(r->iuuid, t, sizeof(r->iuuid));
		if (strcmp(o->changes[i].name, "config.uuid") == 0)
			strlcpy(r->buuid, t, sizeof(r->buuid));
	}
}

/* The loop's watchdog. */
static void
watchdog(evutil_socket_t fd, short what, void *arg)
{
	sim.timed_out = 1;
}

/* Run the loop until R reports (fails the test after LIVE_WAIT_S). */
static void
run(struct res *r)
{
	utest_run(sim.base, &r->called, LIVE_WAIT_S);
}

/* Run the loop until A or B has been called (or the watchdog). */
static void
run_until(struct res *a, struct res *b)
{
	struct event	*ev;
	struct timeval	 tv = { LIVE_WAIT_S, 0 };

	sim.timed_out = 0;
	ev = evtimer_new(sim.base, watchdog, NULL);
	evtimer_add(ev, &tv);
	while (a->called == 0 && b->called == 0 && !sim.timed_out)
		event_base_loop(sim.base, EVLOOP_ONCE);
	event_free(ev);
	if (a->called == 0 && b->called == 0)
		fail_msg("no callback within %d s", LIVE_WAIT_S);
}

/* Run the loop for MS milliseconds. */
static void
run_for(int ms)
{
	struct event	*ev;
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	sim.timed_out = 0;
	ev = evtimer_new(sim.base, watchdog, NULL);
	evtimer_add(ev, &tv);
	while (!sim.timed_out)
		event_base_loop(sim.base, EVLOOP_ONCE);
	event_free(ev);
}


/* Start obj/vcsimh once; fail the test (with how to fix it) if absent. */
static void
sim_need(void)
{
	int		 pin[2], pout[2];
	char		 line[4096];
	json_t		*j;
	json_error_t	 je;

	if (sim.pid > 0)
		return;
	if (access(VCSIMH, X_OK) != 0)
		fail_msg("%s is missing: build it with `make %s` (make check "
		    "builds it first); the live libvmomi tests need it",
		    VCSIMH, VCSIMH);
	strlcpy(sim.dir, "/tmp/test_vmomi.XXXXXX", sizeof(sim.dir));
	assert_non_null(mkdtemp(sim.dir));
	snprintf(sim.cert, sizeof(sim.cert), "%s/vcsim.pem", sim.dir);
	assert_int_equal(pipe(pin), 0);
	assert_int_equal(pipe(pout), 0);
	sim.pid = fork();
	assert_true(sim.pid >= 0);
	if (sim.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		close(pin[1]);
		close(pout[0]);
		execl(VCSIMH, "vcsimh", "-host-names", "esx-a,esx-b,esx-c",
		    "-vm", "vch-appliance", "-on", "esx-b", "-tls", "-cert",
		    sim.cert, "-user", "vrelay", "-password", "s3cret",
		    (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	sim.in = pin[1];
	sim.out = pout[0];
	if (utest_read_line(sim.out, line, sizeof(line), 60000) == -1)
		fail_msg("%s printed no first line", VCSIMH);
	if ((j = json_loads(line, 0, &je)) == NULL)
		fail_msg("%s: bad first line: %s", VCSIMH, line);
	strlcpy(sim.url, json_string_value(json_object_get(j, "url")),
	    sizeof(sim.url));
	strlcpy(sim.sha256, json_string_value(json_object_get(j,
	    "thumbprint_sha256")), sizeof(sim.sha256));
	strlcpy(sim.sha1, json_string_value(json_object_get(j,
	    "thumbprint_sha1")), sizeof(sim.sha1));
	strlcpy(sim.vm, json_string_value(json_object_get(j, "vm_moref")),
	    sizeof(sim.vm));
	sim.hosts = json_incref(json_object_get(j, "host_morefs"));
	json_decref(j);
	assert_non_null(sim.hosts);
	signal(SIGPIPE, SIG_IGN);
}

/* Tell the simulator CMD and wait for its answer line. */
static void
sim_cmd(const char *cmd)
{
	char	line[1024];

	assert_int_equal(write(sim.in, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	assert_int_equal(utest_read_line(sim.out, line, sizeof(line), 20000), 0);
}

/* The moref value of host NAME. */
static const char *
sim_host(const char *name)
{
	return (json_string_value(json_object_get(sim.hosts, name)));
}

/* A client with the pinned SHA-256 thumbprint (or as CONF says). */
static struct vmomi *
client(const struct vmomi_conf *conf)
{
	struct vmomi_conf	 c;
	struct vmomi		*v;

	sim_need();
	if (conf == NULL) {
		memset(&c, 0, sizeof(c));
		c.url = sim.url;
		c.user = "vrelay";
		c.password = "s3cret";
		c.thumbprint = sim.sha256;
		conf = &c;
	}
	assert_int_equal(vmomi_new(sim.base, conf, &v), VMOMI_OK);
	return (v);
}

/* Log V in, asserting success. */
static void
login(struct vmomi *v)
{
	struct res	r = { 0 };

	vmomi_login(v, done_cb, &r);
	run(&r);
	if (r.err != VMOMI_OK)
		fail_msg("login: %d %s", r.err, r.msg);
	assert_non_null(vmomi_service(v));
}

/* Login with each TLS mode; a wrong password; SessionIsActive; Logout. */
static void
test_live_login(void **state)
{
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r;
	uint64_t		 id;

	v = client(NULL);
	assert_null(vmomi_service(v));
	memset(&r, 0, sizeof(r));
	id = vmomi_login(v, done_cb, &r);
	assert_true(id > 0);
	assert_int_equal(r.called, 0);		/* never from the call */
	assert_int_equal(vmomi_pending(v), 1);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(vmomi_pending(v), 0);
	assert_string_equal(vmomi_service(v)->root_folder.value, "group-d1");
	assert_string_equal(vmomi_service(v)->property_collector.value,
	    "propertyCollector");

	memset(&r, 0, sizeof(r));
	vmomi_session_active(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);

	memset(&r, 0, sizeof(r));
	vmomi_logout(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_null(vmomi_service(v));
	memset(&r, 0, sizeof(r));
	vmomi_session_active(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOSESSION);
	login(v);			/* again, service content kept */
	vmomi_free(v);

	/* SHA-1 pin, lower case without colons is the same pin. */
	memset(&c, 0, sizeof(c));
	c.url = sim.url;
	c.user = "vrelay";
	c.password = "s3cret";
	c.thumbprint = sim.sha1;
	v = client(&c);
	login(v);
	vmomi_free(v);

	/* The CA file the simulator wrote. */
	c.thumbprint = NULL;
	c.cacert = sim.cert;
	v = client(&c);
	login(v);
	vmomi_free(v);

	/* Explicitly insecure. */
	c.cacert = NULL;
	c.insecure = 1;
	v = client(&c);
	login(v);
	vmomi_free(v);

	/* Wrong password. */
	c.password = "wrong";
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_LOGIN);
	assert_string_equal(r.msg, "InvalidLogin: Login failure");
	assert_null(vmomi_service(v));
	vmomi_free(v);
}

/* Certificates that must be refused, and conf mistakes. */
static void
test_live_tls_refused(void **state)
{
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r;

	sim_need();
	memset(&c, 0, sizeof(c));
	c.url = sim.url;
	c.user = "vrelay";
	c.password = "s3cret";
	c.thumbprint = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:"
	    "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_THUMBPRINT);
	if (strstr(r.msg, sim.sha256) == NULL)
		fail_msg("'%s' does not show %s", r.msg, sim.sha256);
	vmomi_free(v);

	/* SHA-1 length pin that is wrong. */
	c.thumbprint = "00112233445566778899aabbccddeeff00112233";
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_THUMBPRINT);
	assert_non_null(strstr(r.msg, sim.sha256));
	vmomi_free(v);

	/* The system's CAs do not know the simulator's certificate. */
	c.thumbprint = NULL;
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_TLS);
	assert_true(strlen(r.msg) > 0);
	vmomi_free(v);

	/* A missing CA file is a TLS error too. */
	c.cacert = "/nonexistent/ca.pem";
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_TLS);
	vmomi_free(v);

	/* Conf mistakes are refused at once. */
	c.cacert = NULL;
	c.thumbprint = "nothex";
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_E_ARG);
	assert_null(v);
	c.thumbprint = sim.sha256;
	c.insecure = 1;
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_E_ARG);
	c.insecure = 0;
	c.url = "ftp://127.0.0.1/sdk";
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_E_ARG);
	c.url = "http://127.0.0.1/sdk";
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_E_ARG);
	assert_int_equal(vmomi_new(NULL, &c, &v), VMOMI_E_ARG);
	vmomi_free(NULL);
}

/* A spec for the simulator's VM and PATHS. */
static void
vm_spec(struct vmomi_spec *spec, const char *const *paths)
{
	memset(spec, 0, sizeof(*spec));
	strlcpy(spec->obj.type, "VirtualMachine", sizeof(spec->obj.type));
	strlcpy(spec->obj.value, sim.vm, sizeof(spec->obj.value));
	spec->type = "VirtualMachine";
	spec->paths = paths;
}

/* Views and retrieve; find_vm by name, path, both UUIDs; misses. */
static void
test_live_find(void **state)
{
	static const char *const paths[] = { "config.instanceUuid",
	    "config.uuid", NULL };
	static const char *const np[] = { "name", NULL };
	struct vmomi		*v;
	struct vmomi_spec	 spec;
	struct vmomi_moref	 view;
	struct res		 r, u;
	const char		*what[4];
	size_t			 i;

	v = client(NULL);
	memset(&r, 0, sizeof(r));
	vmomi_find_vm(v, "vch-appliance", ref_cb, &r);
	assert_int_equal(r.called, 0);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOSESSION);	/* from the loop */
	login(v);

	/* A view over every VM, read through a retrieve. */
	memset(&r, 0, sizeof(r));
	vmomi_view_create(v, &vmomi_service(v)->root_folder,
	    "VirtualMachine", 1, ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_string_equal(r.ref.type, "ContainerView");
	view = r.ref;
	memset(&spec, 0, sizeof(spec));
	spec.obj = view;
	spec.view = 1;
	spec.type = "VirtualMachine";
	spec.paths = np;
	memset(&r, 0, sizeof(r));
	vmomi_retrieve(v, &spec, upd_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(r.nobjects, 1);
	assert_string_equal(r.name, "vch-appliance");
	assert_string_equal(r.obj.value, sim.vm);
	memset(&r, 0, sizeof(r));
	vmomi_view_destroy(v, &view, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);

	/* The VM's two UUIDs. */
	vm_spec(&spec, paths);
	memset(&u, 0, sizeof(u));
	vmomi_retrieve(v, &spec, upd_cb, &u);
	run(&u);
	assert_int_equal(u.err, VMOMI_OK);
	assert_int_equal(strlen(u.iuuid), 36);
	assert_int_equal(strlen(u.buuid), 36);
	assert_string_not_equal(u.iuuid, u.buuid);

	what[0] = "vch-appliance";
	what[1] = "DC0/vm/vch-appliance";
	what[2] = u.iuuid;
	what[3] = u.buuid;
	for (i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		memset(&r, 0, sizeof(r));
		vmomi_find_vm(v, what[i], ref_cb, &r);
		run(&r);
		if (r.err != VMOMI_OK)
			fail_msg("find %s: %d %s", what[i], r.err, r.msg);
		assert_string_equal(r.ref.type, "VirtualMachine");
		assert_string_equal(r.ref.value, sim.vm);
	}
	memset(&r, 0, sizeof(r));
	vmomi_find_vm(v, "no-such-vm", ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOTFOUND);
	assert_non_null(strstr(r.msg, "no-such-vm"));
	memset(&r, 0, sizeof(r));
	vmomi_find_vm(v, "DC0/vm/no-such-vm", ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOTFOUND);
	memset(&r, 0, sizeof(r));
	vmomi_find_vm(v, "00000000-0000-0000-0000-000000000000", ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOTFOUND);
	memset(&r, 0, sizeof(r));
	vmomi_find_vm(v, "", ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_ARG);
	memset(&r, 0, sizeof(r));
	vmomi_events_create(v, &spec.obj, (const char *const []){
	    "VmMigratedEvent", "VmRelocatedEvent", NULL }, ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_string_equal(r.ref.type, "EventHistoryCollector");
	view = r.ref;
	memset(&r, 0, sizeof(r));
	vmomi_events_destroy(v, &view, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(vmomi_pending(v), 0);
	vmomi_free(v);
}

struct relocate {
	struct event	*ev;
	const char	*cmd;
};

/* A timer: tell the simulator to move the VM (while a wait is pending). */
static void
relocate_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relocate	*rl = arg;

	sim_cmd(rl->cmd);
}

/* A private collector, a filter, the initial dump and a relocation. */
static void
test_live_wait(void **state)
{
	static const char *const paths[] = { "runtime.host", NULL };
	struct vmomi		*v;
	struct vmomi_spec	 spec;
	struct vmomi_moref	 pc, filter;
	struct res		 r;
	struct relocate		 rl;
	struct timeval		 tv = { 0, 500000 };
	char			 version[64], cmd[64];
	const char		*to;

	v = client(NULL);
	login(v);
	memset(&r, 0, sizeof(r));
	vmomi_pc_create(v, ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_string_equal(r.ref.type, "PropertyCollector");
	pc = r.ref;
	vm_spec(&spec, paths);
	memset(&r, 0, sizeof(r));
	vmomi_filter_create(v, &pc, &spec, ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	filter = r.ref;

	memset(&r, 0, sizeof(r));
	vmomi_wait(v, &pc, NULL, 10, upd_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(r.nobjects, 1);
	assert_int_equal(r.kind, VMOMI_KIND_ENTER);
	assert_string_equal(r.obj.value, sim.vm);
	assert_true(r.host[0] != '\0');
	assert_true(r.has_version);
	strlcpy(version, r.version, sizeof(version));

	/* Nothing changes: maxWaitSeconds 0 answers empty. */
	memset(&r, 0, sizeof(r));
	vmomi_wait(v, &pc, version, 0, upd_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_true(r.has_update);
	assert_false(r.has_version);
	assert_int_equal(r.nobjects, 0);

	/* Move the VM to a host it is not on while a wait is pending. */
	to = strcmp(r.host, sim_host("esx-c")) == 0 ? "esx-a" : "esx-c";
	snprintf(cmd, sizeof(cmd), "relocate %s\n", to);
	rl.cmd = cmd;
	rl.ev = evtimer_new(sim.base, relocate_cb, &rl);
	evtimer_add(rl.ev, &tv);
	memset(&r, 0, sizeof(r));
	vmomi_wait(v, &pc, version, 15, upd_cb, &r);
	run(&r);
	event_free(rl.ev);
	assert_int_equal(r.err, VMOMI_OK);
	assert_int_equal(r.nobjects, 1);
	assert_int_equal(r.kind, VMOMI_KIND_MODIFY);
	assert_string_equal(r.host, sim_host(to));

	/* A pending wait canceled. */
	{
		struct res	c;

		memset(&r, 0, sizeof(r));
		memset(&c, 0, sizeof(c));
		vmomi_wait(v, &pc, version, 15, upd_cb, &r);
		run_for(300);
		assert_int_equal(r.called, 0);
		vmomi_wait_cancel(v, &pc, done_cb, &c);
		run(&c);
		assert_int_equal(c.err, VMOMI_OK);
		run(&r);
		assert_int_equal(r.err, VMOMI_E_CANCELED);
	}

	memset(&r, 0, sizeof(r));
	vmomi_filter_destroy(v, &filter, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	memset(&r, 0, sizeof(r));
	vmomi_pc_destroy(v, &pc, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	/* A destroyed collector is ManagedObjectNotFound. */
	memset(&r, 0, sizeof(r));
	vmomi_wait(v, &pc, version, 0, upd_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOTFOUND);
	vmomi_free(v);
}

/* Abort, free from a callback, reset, a killed session, the cap. */
static void
test_live_lifecycle(void **state)
{
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r, r2;
	uint64_t		 id;

	v = client(NULL);
	login(v);

	/* Aborted: never reported. */
	memset(&r, 0, sizeof(r));
	id = vmomi_session_active(v, done_cb, &r);
	assert_int_equal(vmomi_pending(v), 1);
	vmomi_abort(v, id);
	vmomi_abort(v, id);		/* unknown now: fine */
	vmomi_abort(v, 12345);
	assert_int_equal(vmomi_pending(v), 0);
	run_for(300);
	assert_int_equal(r.called, 0);

	/*
	 * Freed from the first callback: the other never runs.  Either
	 * answer may come first (two requests in flight), so either
	 * callback frees; a second call would free twice.
	 */
	memset(&r, 0, sizeof(r));
	memset(&r2, 0, sizeof(r2));
	r.free_me = r2.free_me = v;
	vmomi_session_active(v, done_cb, &r);
	vmomi_session_active(v, done_cb, &r2);
	run_until(&r, &r2);
	run_for(300);
	assert_int_equal(r.called + r2.called, 1);

	/* The session killed on the server: NotAuthenticated, log in. */
	v = client(NULL);
	login(v);
	sim_cmd("kick\n");
	memset(&r, 0, sizeof(r));
	vmomi_session_active(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOTAUTH);
	login(v);
	memset(&r, 0, sizeof(r));
	vmomi_session_active(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);

	/* Reset forgets the session. */
	vmomi_reset(v);
	assert_null(vmomi_service(v));
	assert_int_equal(vmomi_pending(v), 0);	/* the Logout is not */
	memset(&r, 0, sizeof(r));
	vmomi_pc_create(v, ref_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_NOSESSION);
	login(v);
	vmomi_free(v);

	/* The response cap. */
	memset(&c, 0, sizeof(c));
	c.url = sim.url;
	c.user = "vrelay";
	c.password = "s3cret";
	c.thumbprint = sim.sha256;
	c.max_response = 300;
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_TOOBIG);
	vmomi_free(v);
}

/* Count the UserSessions in a sessionList retrieve. */
static void
sessions_cb(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct res		*r = arg;
	const struct vmomi_val	*s;
	size_t			 i;

	done_cb(id, err, msg, arg);
	r->nobjects = 0;
	if (u == NULL || u->nobjects != 1)
		return;
	for (i = 0; i < u->objects[0].nchanges; i++) {
		if (strcmp(u->objects[0].changes[i].name, "sessionList") != 0)
			continue;
		for (s = vmomi_val_child(u->objects[0].changes[i].val,
		    "UserSession"); s != NULL; s = vmomi_val_next(s))
			r->nobjects++;
	}
}

/* How many sessions the simulator has, asked through V. */
static size_t
sim_sessions(struct vmomi *v)
{
	static const char *const paths[] = { "sessionList", NULL };
	struct vmomi_spec	 spec;
	struct res		 r;

	memset(&spec, 0, sizeof(spec));
	spec.obj = vmomi_service(v)->session_manager;
	spec.type = "SessionManager";
	spec.paths = paths;
	memset(&r, 0, sizeof(r));
	vmomi_retrieve(v, &spec, sessions_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	return (r.nobjects);
}

/* Reset logs the old session out on the server: none is left behind. */
static void
test_live_reset_logout(void **state)
{
	struct vmomi	*v;
	size_t		 n;

	v = client(NULL);
	login(v);
	n = sim_sessions(v);
	assert_true(n >= 1);
	vmomi_reset(v);
	run_for(500);		/* the parting Logout, answered to nobody */
	login(v);
	assert_int_equal(sim_sessions(v), n);	/* one gone, one new */

	/* Reset, login and free at once: nothing reports, nothing leaks. */
	vmomi_reset(v);
	vmomi_free(v);
	run_for(100);
}

#define FAKE_LATE_MS	500

/*
 * A fake vCenter for RetrieveServiceContent, Login and Logout, one
 * process per connection (Connection: close).  Each Login hands out a
 * new cookie; each Logout answers FAKE_LATE_MS late.  Both are told on
 * *REPORT as lines "login COOKIE" and "logout COOKIE".
 */
static pid_t
fake_vc(int *port, int *report)
{
	static const struct {
		const char	*tag;
		const char	*file;
	} answers[] = {
		{ "<RetrieveServiceContent>",	"01-RetrieveServiceContent" },
		{ "<Login>",			"04-Login-ok" },
		{ "<Logout>",			"34-Logout" },
	};
	char			*bodies[3], path[256], req[16384], hdr[512];
	char			 cookie[128], line[160];
	const char		*p, *body;
	size_t			 lens[3], i, n, want;
	ssize_t			 k;
	int			 s, c, pfd[2];
	pid_t			 pid;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), SAMPLES "%s.resp.xml",
		    answers[i].file);
		bodies[i] = utest_slurp(path, &lens[i]);
	}
	assert_int_equal(pipe(pfd), 0);
	s = utest_listen(16, port);
	if ((pid = fork()) != 0) {
		close(s);
		close(pfd[1]);
		for (i = 0; i < 3; i++)
			free(bodies[i]);
		*report = pfd[0];
		return (pid);
	}
	signal(SIGCHLD, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	for (;;) {
		if ((c = accept(s, NULL, NULL)) == -1)
			continue;
		if (fork() != 0) {
			close(c);
			continue;
		}
		n = 0;
		want = 0;
		while (n < sizeof(req) - 1) {
			if ((k = read(c, req + n, sizeof(req) - 1 - n)) <= 0)
				_exit(1);
			n += (size_t)k;
			req[n] = '\0';
			if ((p = strstr(req, "\r\n\r\n")) == NULL)
				continue;
			if (want == 0 && strcasestr(req, "Content-Length:"))
				want = (size_t)(p + 4 - req) + strtoul(
				    strcasestr(req, "Content-Length:") + 15,
				    NULL, 10);
			if (n >= want)
				break;
		}
		cookie[0] = '\0';
		if ((p = strstr(req, "vmware_soap_session=")) != NULL)
			snprintf(cookie, sizeof(cookie), "%.*s",
			    (int)strcspn(p + 20, ";\r\n"), p + 20);
		for (i = 0; i < 3 && strstr(req, answers[i].tag) == NULL; i++)
			;
		if (i == 3)
			_exit(1);
		body = bodies[i];
		hdr[0] = '\0';
		if (i == 1) {
			/* Quoted, as a real vCenter sends it. */
			snprintf(cookie, sizeof(cookie), "\"s%d\"",
			    (int)getpid());
			snprintf(hdr, sizeof(hdr), "Set-Cookie: "
			    "vmware_soap_session=%s; HttpOnly\r\n", cookie);
		}
		if (i > 0) {
			snprintf(line, sizeof(line), "%s %s\n",
			    i == 1 ? "login" : "logout", cookie);
			if (write(pfd[1], line, strlen(line)) < 0)
				_exit(1);
		}
		if (i == 2)
			usleep(FAKE_LATE_MS * 1000);
		snprintf(req, sizeof(req), "HTTP/1.1 200 OK\r\n"
		    "Content-Type: text/xml; charset=utf-8\r\n%s"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		    hdr, lens[i]);
		if (write(c, req, strlen(req)) < 0 ||
		    write(c, body, lens[i]) < 0)
			_exit(1);
		_exit(0);
	}
}

/* The next report line of the fake vCenter (fails after 5 s). */
static void
fake_line(int fd, char *buf, size_t len)
{
	if (utest_read_line(fd, buf, len, 5000) == -1)
		fail_msg("the fake vCenter reported nothing");
}

/* Swap two lines of N bytes (the fake server's log, reordered). */
static void
late_swap(char *x, char *y, size_t n)
{
	char	t[160];

	assert_true(n <= sizeof(t));
	memcpy(t, x, n);
	memcpy(x, y, n);
	memcpy(y, t, n);
}

/*
 * Logout then reset and log in again: both Logouts carry the old
 * cookie, and their late answers leave the new session alone.
 */
static void
test_live_late_logout(void **state)
{
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r;
	char			 url[64], a[160], l1[160], l2[160], b[160];
	char			 want[170];
	int			 port, rfd, st;
	pid_t			 pid;

	pid = fake_vc(&port, &rfd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sdk", port);
	memset(&c, 0, sizeof(c));
	c.url = url;
	c.user = "vrelay";
	c.password = "s3cret";
	assert_int_equal(vmomi_new(sim.base, &c, &v), VMOMI_OK);
	login(v);
	fake_line(rfd, a, sizeof(a));
	assert_int_equal(strncmp(a, "login \"s", 8), 0);

	memset(&r, 0, sizeof(r));
	vmomi_logout(v, done_cb, &r);
	vmomi_reset(v);
	assert_null(vmomi_service(v));
	login(v);
	assert_int_equal(r.called, 0);		/* still late */
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_non_null(vmomi_service(v));	/* the new session stays */

	/*
	 * Two Logouts with the old cookie and the new login, in any
	 * order: they may go on separate connections, and the fake
	 * server logs each when it answers.
	 */
	fake_line(rfd, l1, sizeof(l1));
	fake_line(rfd, l2, sizeof(l2));
	fake_line(rfd, b, sizeof(b));
	if (strncmp(l1, "login ", 6) == 0)
		late_swap(l1, b, sizeof(b));
	else if (strncmp(l2, "login ", 6) == 0)
		late_swap(l2, b, sizeof(b));
	snprintf(want, sizeof(want), "logout %s", a + 6);
	assert_string_equal(l1, want);
	assert_string_equal(l2, want);
	assert_int_equal(strncmp(b, "login \"s", 8), 0);
	assert_string_not_equal(a, b);

	/* A Logout of the current session does end it. */
	memset(&r, 0, sizeof(r));
	vmomi_logout(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_OK);
	assert_null(vmomi_service(v));
	fake_line(rfd, l1, sizeof(l1));
	snprintf(want, sizeof(want), "logout %s", b + 6);
	assert_string_equal(l1, want);

	/* Without a session, reset sends nothing. */
	vmomi_reset(v);
	run_for(300);
	assert_int_equal(utest_read_line(rfd, l1, sizeof(l1), 100), -1);
	vmomi_free(v);
	close(rfd);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

/* A one-shot HTTP server: answers the first request with REPLY. */
static pid_t
one_shot_server(const char *reply, int *port)
{
	char			 buf[4096];
	int			 s, c;
	pid_t			 pid;

	s = utest_listen(4, port);
	if ((pid = fork()) == 0) {
		if (reply == NULL)
			for (;;)
				pause();	/* never accept */
		c = accept(s, NULL, NULL);
		if (read(c, buf, sizeof(buf)) > 0 &&
		    write(c, reply, strlen(reply)) < 0)
			_exit(1);
		sleep(1);
		_exit(0);
	}
	close(s);
	return (pid);
}

/* Transport failures: refused, HTTP 503, silence (timeout). */
static void
test_live_transport(void **state)
{
	struct vmomi_conf	 c;
	struct vmomi		*v;
	struct res		 r;
	char			 url[64];
	int			 port, st;
	pid_t			 pid;

	sim_need();
	memset(&c, 0, sizeof(c));
	c.user = "u";
	c.password = "p";
	c.url = "http://127.0.0.1:1/sdk";
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_CONNECT);
	vmomi_free(v);

	pid = one_shot_server("HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sdk", port);
	c.url = url;
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_HTTP);
	assert_string_equal(r.msg, "HTTP 503");
	vmomi_free(v);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);

	pid = one_shot_server(NULL, &port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sdk", port);
	c.timeout_ms = 300;
	v = client(&c);
	memset(&r, 0, sizeof(r));
	vmomi_login(v, done_cb, &r);
	run(&r);
	assert_int_equal(r.err, VMOMI_E_TIMEOUT);
	vmomi_free(v);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

/* Stop the simulator and remove its directory. */
static int
sim_teardown(void **state)
{
	char	path[256];
	int	st;

	if (sim.pid > 0) {
		if (write(sim.in, "quit\n", 5) < 0)
			kill(sim.pid, SIGTERM);
		close(sim.in);
		close(sim.out);
		waitpid(sim.pid, &st, 0);
		sim.pid = 0;
	}
	if (sim.dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s", sim.cert);
		unlink(path);
		rmdir(sim.dir);
	}
	json_decref(sim.hosts);
	if (sim.base != NULL)
		event_base_free(sim.base);
	return (0);
}

/* The event base the live tests share. */
static int
sim_setup(void **state)
{
	sim.base = event_base_new();
	return (sim.base == NULL ? -1 : 0);
}

int
main(void)
{
	const struct CMUnitTest offline[] = {
		cmocka_unit_test(test_samples_all),
		cmocka_unit_test(test_samples_covered),
		cmocka_unit_test(test_service),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_wait_updates),
		cmocka_unit_test(test_wait_empty),
		cmocka_unit_test(test_retrieve),
		cmocka_unit_test(test_morefs),
		cmocka_unit_test(test_bad_fixtures),
		cmocka_unit_test(test_val_garbage),
		cmocka_unit_test(test_huge_counts),
		cmocka_unit_test(test_thumbprint),
		cmocka_unit_test(test_conf_refused),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_requests),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_live_login),
		cmocka_unit_test(test_live_tls_refused),
		cmocka_unit_test(test_live_find),
		cmocka_unit_test(test_live_wait),
		cmocka_unit_test(test_live_lifecycle),
		cmocka_unit_test(test_live_reset_logout),
		cmocka_unit_test(test_live_late_logout),
		cmocka_unit_test(test_live_transport),
	};
	int	fails;

	fails = cmocka_run_group_tests_name("vmomi offline", offline, NULL,
	    NULL);
	fails += cmocka_run_group_tests_name("vmomi live", live, sim_setup,
	    sim_teardown);
	return (fails != 0);
}
