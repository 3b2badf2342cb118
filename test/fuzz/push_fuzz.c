/*
 * push_fuzz.c -- libFuzzer harness for the push channel's codec
 * (push.h).
 *
 * The input is a stream of bytes off the locator connection, fed to
 * push_read() in two slices (the first byte says where to cut), so
 * partial lines and several lines per buffer are exercised; a first
 * byte 0xff pads the first line to the line cap, give or take two
 * (fz_padded()), so the cap is too, from short inputs.  Every message
 * a decoder accepts must satisfy the documented rules (hosts, texts,
 * epochs) and encode again to a line that decodes to the same message:
 * what is received can be sent.
 * push_decode() on the whole input (a line without its newline) runs
 * too, in its own heap block so ASan sees a read past the length.
 *
 * push.c checks addresses with xaddr_check(), which never resolves:
 * getaddrinfo() below aborts if anything calls it, so the fuzzer can
 * never send a DNS query and a codec that would wait on one is a crash.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "push.h"
#include "fuzz.h"

int	getaddrinfo(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);

/* The codec must never resolve (see above). */
int
getaddrinfo(const char *node, const char *serv, const struct addrinfo *hints,
    struct addrinfo **res)
{
	CHECK(!"getaddrinfo() called by the codec");
	return (EAI_FAIL);
}

static struct evbuffer	*fz_in, *fz_out;

/* A string member: terminated inside its array, bytes in [LO, HI]. */
static void
fz_str(const char *s, size_t size, int lo, int hi)
{
	size_t	i, n;

	n = strnlen(s, size);
	CHECK(n < size);
	for (i = 0; i < n; i++)
		CHECK((unsigned char)s[i] >= lo && (unsigned char)s[i] <= hi);
}

/* What the decoder accepted keeps the rules, and survives a re-encode. */
static void
fz_accepted(const struct push_msg *m)
{
	struct push_msg	m2;
	char		err[256];

	CHECK(strcmp(push_type_name(m->type), "?") != 0);
	CHECK(m->epoch <= PUSH_EPOCH_MAX);
	CHECK(m->known == 0 || m->known == 1);
	if (m->type == PUSH_HELLO || m->type == PUSH_WELCOME)
		CHECK(m->version == PUSH_VERSION);
	fz_str(m->host, sizeof(m->host), 0x21, 0x7e);
	fz_str(m->mesh, sizeof(m->mesh), 0x21, 0x7e);
	fz_str(m->relay, sizeof(m->relay), 0x21, 0x7e);
	fz_str(m->appliance, sizeof(m->appliance), 0x21, 0x7e);
	fz_str(m->text, sizeof(m->text), 0x20, 0x7e);
	if (m->type == PUSH_HELLO || m->type == PUSH_TARGET ||
	    m->type == PUSH_HINT)
		CHECK(m->host[0] != '\0');

	CHECK(evbuffer_get_length(fz_out) == 0);
	CHECK(push_write(fz_out, m) == PUSH_OK);
	CHECK(evbuffer_get_length(fz_out) <= PUSH_LINE_MAX);
	memset(&m2, 0xa5, sizeof(m2));
	CHECK(push_read(fz_out, &m2, err, sizeof(err)) == PUSH_OK);
	CHECK(evbuffer_get_length(fz_out) == 0);
	CHECK(m2.type == m->type && m2.version == m->version &&
	    m2.known == m->known && m2.epoch == m->epoch &&
	    strcmp(m2.host, m->host) == 0 && strcmp(m2.mesh, m->mesh) == 0 &&
	    strcmp(m2.relay, m->relay) == 0 &&
	    strcmp(m2.appliance, m->appliance) == 0 &&
	    strcmp(m2.text, m->text) == 0);
}

/* A refusal is an error code with a clean message; M is left empty. */
static void
fz_refused(int r, const struct push_msg *m, const char *err)
{
	CHECK(r == PUSH_E_JSON || r == PUSH_E_TYPE || r == PUSH_E_FIELD ||
	    r == PUSH_E_TOOBIG || r == PUSH_E_VERSION);
	CHECK(err[0] != '\0');
	fz_str(err, 256, 0x20, 0x7e);
	if (r != PUSH_E_VERSION)
		CHECK(m->type == 0 && m->host[0] == '\0' && m->epoch == 0);
}

/* Drain every whole line from fz_in. */
static void
fz_drain(void)
{
	struct push_msg	m;
	char		err[256];
	size_t		before;
	int		r;

	for (;;) {
		before = evbuffer_get_length(fz_in);
		r = push_read(fz_in, &m, err, sizeof(err));
		if (r == PUSH_E_INCOMPLETE) {
			CHECK(evbuffer_get_length(fz_in) == before);
			CHECK(before < PUSH_LINE_MAX);
			return;
		}
		if (r == PUSH_OK)
			fz_accepted(&m);
		else
			fz_refused(r, &m, err);
		/* A line that got an answer was consumed, or the cap hit. */
		if (evbuffer_get_length(fz_in) == before) {
			CHECK(r == PUSH_E_TOOBIG);
			return;
		}
	}
}

/* One stream: decoded whole, then fed to push_read() cut at CUT. */
static void
fz_stream(const uint8_t *data, size_t size, size_t cut)
{
	struct push_msg	 m;
	char		 err[256];
	char		*copy;
	int		 r;

	copy = malloc(size == 0 ? 1 : size);
	CHECK(copy != NULL);
	if (size != 0)
		memcpy(copy, data, size);
	r = push_decode(copy, size, &m, err, sizeof(err));
	if (r == PUSH_OK)
		fz_accepted(&m);
	else
		fz_refused(r, &m, err);
	free(copy);

	evbuffer_add(fz_in, data, cut);
	fz_drain();
	evbuffer_add(fz_in, data + cut, size - cut);
	fz_drain();
	evbuffer_drain(fz_in, evbuffer_get_length(fz_in));
}

/*
 * 0xff K REST: REST with its first line padded with spaces before its
 * newline to PUSH_LINE_MAX - 2 + K % 5 bytes, the newline counted, so
 * the line cap is met from either side by an input of a few bytes (a
 * 16 KB seed would make libFuzzer's -max_len 16 KB for every input,
 * and each one a 16 KB parse).  K's high nibble says where to cut.
 */
static void
fz_padded(const uint8_t *data, size_t size)
{
	const uint8_t	*rest = data + 2, *nl;
	uint8_t		*buf;
	size_t		 rlen = size - 2, l1, want, pad, cut;

	nl = memchr(rest, '\n', rlen);
	l1 = nl != NULL ? (size_t)(nl - rest) : rlen;	/* without '\n' */
	want = PUSH_LINE_MAX - 2 + data[1] % 5;
	pad = want > l1 + 1 ? want - l1 - 1 : 0;
	buf = malloc(rlen + pad);
	CHECK(buf != NULL);
	memcpy(buf, rest, l1);
	memset(buf + l1, ' ', pad);
	memcpy(buf + l1 + pad, rest + l1, rlen - l1);
	cut = (l1 + pad) * (data[1] >> 4) / 15;
	fz_stream(buf, rlen + pad, cut);
	free(buf);
}

/* Entry point: one stream per input (the first byte says where to cut). */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_in == NULL) {
		fz_in = evbuffer_new();
		fz_out = evbuffer_new();
		CHECK(fz_in != NULL && fz_out != NULL);
	}
	if (size >= 2 && data[0] == 0xff)
		fz_padded(data, size);
	else
		fz_stream(data, size, size == 0 ? 0 : data[0] % (size + 1));
	return (0);
}
