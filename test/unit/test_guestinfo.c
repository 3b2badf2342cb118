/*
 * test_guestinfo.c -- the guestinfo channel's pure parts: key and value
 * rules, the ReconfigVM_Task envelope, and key sets built from
 * WaitForUpdatesEx answers (config with duplicate keys: the last wins;
 * config.extraConfig whole and indexed), and a failed task's info.
 * The live parts run against the simulator in test/regress/
 * t-guestinfo.sh.  Run from the top of the tree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>

#include <cmocka.h>

#include "guestinfo.h"
#include "vmomi.h"
#include "../../vmomi/vmomi_int.h"
#include "utest.h"

#define DATA	"test/data/guestinfo/"


/* Parse FILE as the answer to METHOD. */
static struct vmomi_parsed *
parse(const char *file, const char *method)
{
	struct vmomi_parsed	*p;
	char			*body, msg[512];
	size_t			 len;

	body = utest_slurp(file, &len);
	if (vmomi_parse(body, len, 200, method, &p, msg, sizeof(msg)) !=
	    VMOMI_OK)
		fail_msg("%s: %s", file, msg);
	free(body);
	return (p);
}

static void
test_key_rules(void **state)
{
	char	msg[256], big[GUESTINFO_KEY_MAX + 2];

	assert_int_equal(guestinfo_key_check("guestinfo.vrelay.ip", msg,
	    sizeof(msg)), VMOMI_OK);
	assert_int_equal(guestinfo_key_check("guestinfo.a-b_C.9", msg,
	    sizeof(msg)), VMOMI_OK);
	assert_int_equal(guestinfo_key_check("guestinfo.", msg,
	    sizeof(msg)), VMOMI_E_ARG);
	assert_int_equal(guestinfo_key_check("other.key", msg,
	    sizeof(msg)), VMOMI_E_ARG);
	assert_non_null(strstr(msg, "does not start with"));
	assert_int_equal(guestinfo_key_check("guestinfo.a b", msg,
	    sizeof(msg)), VMOMI_E_ARG);
	assert_int_equal(guestinfo_key_check("guestinfo.a=b", msg,
	    sizeof(msg)), VMOMI_E_ARG);
	assert_int_equal(guestinfo_key_check("guestinfo.\xc3\xa9", msg,
	    sizeof(msg)), VMOMI_E_ARG);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "guestinfo.", 10);
	assert_int_equal(guestinfo_key_check(big, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	big[GUESTINFO_KEY_MAX] = '\0';
	assert_int_equal(guestinfo_key_check(big, msg, sizeof(msg)),
	    VMOMI_OK);
	assert_int_equal(guestinfo_key_check(NULL, msg, sizeof(msg)),
	    VMOMI_E_ARG);
}

static void
test_value_rules(void **state)
{
	char	msg[256], *v;

	assert_int_equal(guestinfo_value_check("", msg, sizeof(msg)),
	    VMOMI_OK);
	assert_int_equal(guestinfo_value_check("a\tb\nc\r \xc3\xa9\xe6\xbc"
	    "\xa2\xf0\x9f\x99\x82", msg, sizeof(msg)), VMOMI_OK);
	assert_int_equal(guestinfo_value_check("\xff", msg, sizeof(msg)),
	    VMOMI_E_ARG);
	assert_non_null(strstr(msg, "UTF-8"));
	assert_int_equal(guestinfo_value_check("\xc3", msg, sizeof(msg)),
	    VMOMI_E_ARG);
	assert_int_equal(guestinfo_value_check("a\001", msg, sizeof(msg)),
	    VMOMI_E_ARG);
	assert_int_equal(guestinfo_value_check(NULL, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	v = malloc(GUESTINFO_VALUE_MAX + 2);
	assert_non_null(v);
	memset(v, 'x', GUESTINFO_VALUE_MAX + 1);
	v[GUESTINFO_VALUE_MAX + 1] = '\0';
	assert_int_equal(guestinfo_value_check(v, msg, sizeof(msg)),
	    VMOMI_E_ARG);
	assert_non_null(strstr(msg, "64000-byte cap"));
	v[GUESTINFO_VALUE_MAX] = '\0';
	assert_int_equal(guestinfo_value_check(v, msg, sizeof(msg)),
	    VMOMI_OK);
	free(v);
}

/* The ReconfigVM_Task envelope, byte for byte. */
static void
test_reconfig_envelope(void **state)
{
	struct vmomi_moref	 vm = { "VirtualMachine", "vm-42" };
	struct soap_msg		*m;
	char			*body, msg[512];
	size_t			 len;
	const char		*want =
	    "<ReconfigVM_Task><_this type=\"VirtualMachine\">vm-42</_this>"
	    "<spec><extraConfig><key>guestinfo.a</key>"
	    "<value xsi:type=\"xsd:string\">&lt;&amp;&gt; \xc3\xa9</value>"
	    "</extraConfig><extraConfig><key>guestinfo.b</key>"
	    "<value xsi:type=\"xsd:string\"></value></extraConfig></spec>"
	    "</ReconfigVM_Task>";

	m = soap_msg_new("ReconfigVM_Task", &vm);
	soap_msg_open(m, "spec");
	soap_msg_open(m, "extraConfig");
	soap_msg_text(m, "key", "guestinfo.a");
	soap_msg_typed(m, "value", "xsd:string", "<&> \xc3\xa9");
	soap_msg_close(m, "extraConfig");
	soap_msg_open(m, "extraConfig");
	soap_msg_text(m, "key", "guestinfo.b");
	soap_msg_typed(m, "value", "xsd:string", "");
	soap_msg_close(m, "extraConfig");
	soap_msg_close(m, "spec");
	assert_int_equal(soap_msg_finish(m, &body, &len, msg, sizeof(msg)),
	    VMOMI_OK);
	assert_non_null(strstr(body, want));
	assert_non_null(strstr(body, "xmlns:xsi="));
	free(body);
	/* A value XML cannot carry is refused, not sent. */
	m = soap_msg_new("ReconfigVM_Task", &vm);
	soap_msg_typed(m, "value", "xsd:string", "\001");
	assert_int_equal(soap_msg_finish(m, &body, &len, msg, sizeof(msg)),
	    VMOMI_E_ARG);
}

struct diffs {
	int	n;
	char	log[1024];
};

/* Record "key:old>new;" for each change. */
static void
diff_cb(const char *key, const char *old, const char *value, void *arg)
{
	struct diffs	*d = arg;
	size_t		 l = strlen(d->log);

	d->n++;
	snprintf(d->log + l, sizeof(d->log) - l, "%s:%s>%s;", key,
	    old != NULL ? old : "-", value != NULL ? value : "-");
}

/* Apply every change of the first object in P to K. */
static void
apply_all(struct guestinfo_keys *k, struct vmomi_parsed *p,
    struct diffs *d)
{
	const struct vmomi_update	*u = vmomi_parsed_update(p);
	char				 msg[256];
	size_t				 i;

	assert_non_null(u);
	assert_int_equal(u->nobjects, 1);
	for (i = 0; i < u->objects[0].nchanges; i++)
		assert_int_equal(guestinfo_keys_apply(k,
		    &u->objects[0].changes[i], diff_cb, d, msg, sizeof(msg)),
		    VMOMI_OK);
}

/* config with duplicates: the last wins; "" deletes; non-ours skipped. */
static void
test_config_duplicates(void **state)
{
	struct guestinfo_keys	 k = { 0 };
	struct diffs		 d = { 0 };
	struct vmomi_parsed	*p;

	p = parse(DATA "wait-config-dups.xml", "WaitForUpdatesEx");
	apply_all(&k, p, &d);
	assert_int_equal(k.n, 3);
	assert_string_equal(guestinfo_keys_get(&k, "guestinfo.a"), "3");
	assert_string_equal(guestinfo_keys_get(&k, "guestinfo.vrelay.ip"),
	    "10.0.0.5");
	assert_string_equal(guestinfo_keys_get(&k, "guestinfo.utf"),
	    "\xc3\xa9\xe6\xbc\xa2<&");
	assert_null(guestinfo_keys_get(&k, "guestinfo.gone"));
	assert_null(guestinfo_keys_get(&k, "govcsim"));
	assert_int_equal(d.n, 3);		/* each key once */
	/* The same answer again: nothing changed, nothing reported. */
	memset(&d, 0, sizeof(d));
	apply_all(&k, p, &d);
	assert_int_equal(d.n, 0);
	vmomi_parsed_free(p);

	/* The whole set, then one added and one removed by index. */
	p = parse(DATA "wait-extra-indexed.xml", "WaitForUpdatesEx");
	apply_all(&k, p, &d);
	assert_string_equal(d.log, "guestinfo.b:->b;guestinfo.utf:\xc3\xa9"
	    "\xe6\xbc\xa2<&>-;guestinfo.vrelay.ip:10.0.0.5>-;"
	    "guestinfo.c:->new;guestinfo.b:b>-;");
	assert_int_equal(k.n, 2);
	assert_string_equal(guestinfo_keys_get(&k, "guestinfo.c"), "new");
	vmomi_parsed_free(p);
	guestinfo_keys_clear(&k);
	guestinfo_keys_clear(&k);
}

/* A change that is not an extraConfig is refused, others ignored. */
static void
test_apply_refused(void **state)
{
	struct guestinfo_keys	 k = { 0 };
	struct vmomi_change	 c;
	char			 msg[256];

	memset(&c, 0, sizeof(c));
	c.name = "config.extraConfig[\"guestinfo.x";
	c.op = VMOMI_OP_ASSIGN;
	assert_int_equal(guestinfo_keys_apply(&k, &c, NULL, NULL, msg,
	    sizeof(msg)), VMOMI_E_PARSE);
	c.name = "runtime.host";
	assert_int_equal(guestinfo_keys_apply(&k, &c, NULL, NULL, msg,
	    sizeof(msg)), VMOMI_OK);
	c.name = "config";
	c.op = VMOMI_OP_REMOVE;
	assert_int_equal(guestinfo_keys_apply(&k, &c, NULL, NULL, msg,
	    sizeof(msg)), VMOMI_OK);
	assert_int_equal(k.n, 0);
	assert_int_equal(guestinfo_keys_apply(&k, NULL, NULL, NULL, msg,
	    sizeof(msg)), VMOMI_E_ARG);
}

/* A failed task's info: the fault type and localizedMessage. */
static void
test_task_error(void **state)
{
	struct vmomi_parsed		*p;
	const struct vmomi_update	*u;
	const struct vmomi_val		*f = NULL;
	size_t				 i;

	p = parse(DATA "task-error.xml", "RetrievePropertiesEx");
	u = vmomi_parsed_update(p);
	assert_int_equal(u->nobjects, 1);
	for (i = 0; i < u->objects[0].nchanges; i++)
		if (strcmp(u->objects[0].changes[i].name, "info.error") == 0)
			f = u->objects[0].changes[i].val;
	assert_non_null(f);
	assert_string_equal(vmomi_val_type(vmomi_val_child(f, "fault")),
	    "InvalidArgument");
	assert_non_null(strstr(vmomi_val_text(vmomi_val_child(f,
	    "localizedMessage")), "spec.extraConfig"));
	assert_int_equal(soap_fault_code("ManagedObjectNotFound"),
	    VMOMI_E_NOTFOUND);
	assert_int_equal(soap_fault_code("InvalidArgument"), VMOMI_E_FAULT);
	vmomi_parsed_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_rules),
		cmocka_unit_test(test_value_rules),
		cmocka_unit_test(test_reconfig_envelope),
		cmocka_unit_test(test_config_duplicates),
		cmocka_unit_test(test_apply_refused),
		cmocka_unit_test(test_task_error),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
