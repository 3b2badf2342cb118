/*
 * vmomi_fuzz.c -- libFuzzer harness for libvmomi's response parser.
 *
 * The first byte picks the method the body answers (and whether it
 * came with HTTP 200 or 500); the rest is the body.  Whatever the parser
 * accepts is walked the way a caller would: every object, change,
 * missing property and value, through the public accessors, so a
 * dangling pointer or a missed bound in the update shows up under ASan.
 * Errors must come with a message of printable ASCII.  Every change of
 * an accepted update is also applied to a guestinfo key set
 * (guestinfo_keys_apply), which must stay sorted, unique and capped.
 *
 * The body is copied into its own heap block so ASan catches a read
 * past LEN.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guestinfo.h"
#include "vmomi.h"
#include "fuzz.h"

/* The methods vmomi_parse() knows; the seed files use these indexes. */
static const char *const fz_methods[] = {
	"RetrieveServiceContent",	/* 0 */
	"Login",			/* 1 */
	"Logout",			/* 2 */
	"SessionIsActive",		/* 3 */
	"CurrentTime",			/* 4 */
	"FindByUuid",			/* 5 */
	"FindByInventoryPath",		/* 6 */
	"CreateContainerView",		/* 7 */
	"DestroyView",			/* 8 */
	"RetrievePropertiesEx",		/* 9 */
	"ContinueRetrievePropertiesEx",	/* 10 */
	"CreatePropertyCollector",	/* 11 */
	"DestroyPropertyCollector",	/* 12 */
	"CreateFilter",			/* 13 */
	"DestroyPropertyFilter",	/* 14 */
	"WaitForUpdatesEx",		/* 15 */
	"CancelWaitForUpdates",		/* 16 */
	"CreateCollectorForEvents",	/* 17 */
	"DestroyCollector",		/* 18 */
	"QueryEvents",			/* 19 */
	"ReconfigVM_Task",		/* 20 */
};
#define FZ_NMETHODS	(sizeof(fz_methods) / sizeof(fz_methods[0]))

/* Walk a value and (a bounded number of) its descendants. */
static void
fz_val(const struct vmomi_val *v, int depth, size_t *budget)
{
	const struct vmomi_val	*c;
	struct vmomi_moref	 r;
	const char		*t;
	long long		 n;

	if (v == NULL || depth > 8 || *budget == 0)
		return;
	(*budget)--;
	if ((t = vmomi_val_type(v)) != NULL)
		(void)strlen(t);
	if ((t = vmomi_val_text(v)) != NULL) {
		(void)strlen(t);
		CHECK(vmomi_val_child(v, NULL) == NULL);
	}
	if (vmomi_val_moref(v, &r) == 0) {
		CHECK(r.type[0] != '\0' && r.value[0] != '\0');
		CHECK(memchr(r.type, '\0', sizeof(r.type)) != NULL);
		CHECK(memchr(r.value, '\0', sizeof(r.value)) != NULL);
	}
	(void)vmomi_val_int(v, &n);
	for (c = vmomi_val_child(v, NULL); c != NULL; c = vmomi_val_next(c))
		fz_val(c, depth + 1, budget);
}

/* A key set after any change: sorted, unique, no empty value. */
static void
fz_keys(const struct guestinfo_keys *k)
{
	size_t	i;

	CHECK(k->n <= GUESTINFO_KEYS_MAX);
	for (i = 0; i < k->n; i++) {
		CHECK(k->kv[i].value[0] != '\0');
		CHECK(guestinfo_keys_get(k, k->kv[i].key) == k->kv[i].value);
		if (i > 0)
			CHECK(strcmp(k->kv[i - 1].key, k->kv[i].key) < 0);
	}
}

/* Everything an accepted update promises. */
static void
fz_update(const struct vmomi_update *u)
{
	const struct vmomi_object	*o;
	struct guestinfo_keys		 k;
	char				 msg[256];
	size_t				 i, j, budget = 10000;

	CHECK(u->nobjects == 0 || u->objects != NULL);
	if (u->version != NULL)
		(void)strlen(u->version);
	for (i = 0; i < u->nobjects; i++) {
		o = &u->objects[i];
		CHECK(o->obj.type[0] != '\0' && o->obj.value[0] != '\0');
		CHECK(o->kind >= VMOMI_KIND_ENTER &&
		    o->kind <= VMOMI_KIND_LEAVE);
		for (j = 0; j < o->nchanges; j++) {
			CHECK(o->changes[j].name != NULL &&
			    o->changes[j].name[0] != '\0');
			CHECK(o->changes[j].op >= VMOMI_OP_ASSIGN &&
			    o->changes[j].op <= VMOMI_OP_INDIRECT_REMOVE);
			fz_val(o->changes[j].val, 0, &budget);
		}
		memset(&k, 0, sizeof(k));
		for (j = 0; j < o->nchanges; j++)
			if (guestinfo_keys_apply(&k, &o->changes[j], NULL,
			    NULL, msg, sizeof(msg)) != VMOMI_OK)
				CHECK(msg[0] != '\0');
		fz_keys(&k);
		guestinfo_keys_clear(&k);
		for (j = 0; j < o->nmissing; j++) {
			CHECK(o->missing[j].path != NULL);
			CHECK(o->missing[j].fault != NULL);
			CHECK(o->missing[j].err != VMOMI_E_NOTAUTH);
			CHECK(o->missing[j].err < 0);
		}
	}
}

/* Entry point: one method byte, then one response body. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmomi_parsed	*p = NULL;
	struct vmomi_service	 s;
	struct vmomi_moref	 r;
	const struct vmomi_update *u;
	char			*body, msg[256];
	size_t			 i, budget = 10000, len;
	long			 status;
	int			 err;

	if (size < 1)
		return (0);
	status = data[0] & 0x80 ? 500 : 200;
	len = size - 1;
	body = malloc(len == 0 ? 1 : len);
	CHECK(body != NULL);
	memcpy(body, data + 1, len);

	memset(msg, 'X', sizeof(msg));
	err = vmomi_parse(body, len, status,
	    fz_methods[(data[0] & 0x7f) % FZ_NMETHODS], &p, msg, sizeof(msg));
	CHECK(vmomi_strerror(err) != NULL);
	if (err != VMOMI_OK) {
		CHECK(p == NULL);
		CHECK(msg[0] != '\0' && strlen(msg) < sizeof(msg));
		for (i = 0; msg[i] != '\0'; i++)
			CHECK((uint8_t)msg[i] >= 0x20 &&
			    (uint8_t)msg[i] <= 0x7e);
	} else {
		CHECK(p != NULL);
		if ((u = vmomi_parsed_update(p)) != NULL)
			fz_update(u);
		(void)vmomi_parsed_moref(p, &r);
		(void)vmomi_parsed_service(p, &s);
		fz_val(vmomi_parsed_val(p), 0, &budget);
	}
	vmomi_parsed_free(p);
	free(body);
	return (0);
}
