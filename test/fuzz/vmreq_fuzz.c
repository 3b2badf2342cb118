/*
 * vmreq_fuzz.c -- libFuzzer harness for libvmomi's agent side: the
 * incoming request parser (vmomi_request_parse) and the NotAuthenticated
 * check on forwarded answers (soap_notauth).
 *
 * The first byte's top bit picks the answer's HTTP status for the
 * NotAuthenticated check (200 or 500); the rest is the body, handed to
 * both.  An accepted request must name a plain identifier and a _this
 * that is empty or a complete moref; a refusal must come with a message
 * of printable ASCII and a cleared request.  The body is copied into
 * its own heap block so ASan catches a read past LEN.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmomi.h"
#include "../../vmomi/vmomi_int.h"
#include "fuzz.h"

/* A plain identifier, as the parser promises. */
static int
fz_ident(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return (0);
	return (i > 0);
}

/* Entry point: one status byte, then one body. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmomi_request	 r;
	char			*body, msg[256];
	size_t			 i, len;
	int			 err, na;

	if (size < 1)
		return (0);
	len = size - 1;
	body = malloc(len == 0 ? 1 : len);
	CHECK(body != NULL);
	memcpy(body, data + 1, len);

	memset(msg, 'X', sizeof(msg));
	memset(&r, 'X', sizeof(r));
	err = vmomi_request_parse(body, len, &r, msg, sizeof(msg));
	CHECK(vmomi_strerror(err) != NULL);
	if (err == VMOMI_OK) {
		CHECK(memchr(r.method, '\0', sizeof(r.method)) != NULL);
		CHECK(fz_ident(r.method));
		CHECK(memchr(r.this.type, '\0', sizeof(r.this.type)) != NULL);
		CHECK(memchr(r.this.value, '\0', sizeof(r.this.value)) !=
		    NULL);
		CHECK((r.this.type[0] == '\0') == (r.this.value[0] == '\0'));
		CHECK(msg[0] == '\0');
	} else {
		CHECK(err == VMOMI_E_PARSE);
		CHECK(r.method[0] == '\0' && r.this.type[0] == '\0');
		CHECK(msg[0] != '\0' && strlen(msg) < sizeof(msg));
		for (i = 0; msg[i] != '\0'; i++)
			CHECK((uint8_t)msg[i] >= 0x20 &&
			    (uint8_t)msg[i] <= 0x7e);
	}
	na = soap_notauth(body, len, data[0] & 0x80 ? 500 : 200);
	CHECK(na == 0 || na == 1);
	free(body);
	return (0);
}
