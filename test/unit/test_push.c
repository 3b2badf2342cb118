/*
 * test_push.c -- unit tests for the push channel's codec (push.h).
 *
 * The expected lines and member lists are written out by hand from
 * docs/push.md rather than taken from push.c's table, so a drift in
 * either shows up here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "push.h"

#define EPOCH_MAX_STR	"9007199254740991"

/* Decode a NUL-terminated line; ERR gets the message. */
static int
dec(const char *line, struct push_msg *m, char *err, size_t errlen)
{
	return (push_decode(line, strlen(line), m, err, errlen));
}

/* Two messages alike member by member (bytes after a string's end aside). */
static void
msg_equal(const struct push_msg *a, const struct push_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->known, b->known);
	assert_int_equal(a->epoch, b->epoch);
	assert_string_equal(a->host, b->host);
	assert_string_equal(a->mesh, b->mesh);
	assert_string_equal(a->relay, b->relay);
	assert_string_equal(a->appliance, b->appliance);
	assert_string_equal(a->text, b->text);
}

/* Encode M, check the line is LINE exactly, decode it back equal. */
static void
roundtrip(const struct push_msg *m, const char *line)
{
	struct evbuffer	*b;
	struct push_msg	 m2;
	char		 err[256], *got;
	size_t		 len;

	b = evbuffer_new();
	assert_non_null(b);
	assert_int_equal(push_write(b, m), PUSH_OK);
	len = evbuffer_get_length(b);
	got = (char *)evbuffer_pullup(b, -1);
	assert_non_null(got);
	assert_int_equal(got[len - 1], '\n');
	assert_int_equal(len - 1, strlen(line));
	assert_memory_equal(got, line, len - 1);
	memset(&m2, 0x5a, sizeof(m2));
	assert_int_equal(push_read(b, &m2, err, sizeof(err)), PUSH_OK);
	assert_string_equal(err, "");
	assert_int_equal(evbuffer_get_length(b), 0);
	msg_equal(m, &m2);
	evbuffer_free(b);
}

static void
test_roundtrip_each_type(void **state)
{
	struct push_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = PUSH_HELLO;
	m.version = PUSH_VERSION;
	strlcpy(m.host, "esx-a.example", sizeof(m.host));
	strlcpy(m.mesh, "tcp://127.0.0.1:7000", sizeof(m.mesh));
	m.epoch = 41;
	roundtrip(&m, "{\"type\":\"hello\",\"version\":1,\"host\":"
	    "\"esx-a.example\",\"mesh\":\"tcp://127.0.0.1:7000\","
	    "\"epoch\":41}");

	/* No mesh listener: the member is left out, and reads back "". */
	m.mesh[0] = '\0';
	roundtrip(&m, "{\"type\":\"hello\",\"version\":1,\"host\":"
	    "\"esx-a.example\",\"epoch\":41}");

	memset(&m, 0, sizeof(m));
	m.type = PUSH_WELCOME;
	m.version = PUSH_VERSION;
	m.known = 1;
	roundtrip(&m, "{\"type\":\"welcome\",\"version\":1,\"known\":true}");
	m.known = 0;
	roundtrip(&m, "{\"type\":\"welcome\",\"version\":1,\"known\":false}");
	/* The locator's vmomi agent, when it runs one. */
	strlcpy(m.vmomi, "tcp://10.0.0.5:8443", sizeof(m.vmomi));
	roundtrip(&m, "{\"type\":\"welcome\",\"version\":1,\"known\":false,"
	    "\"vmomi\":\"tcp://10.0.0.5:8443\"}");

	memset(&m, 0, sizeof(m));
	m.type = PUSH_TARGET;
	m.epoch = 9007199254740991ULL;
	strlcpy(m.host, "B", sizeof(m.host));
	strlcpy(m.relay, "tcp://[::1]:7001", sizeof(m.relay));
	strlcpy(m.appliance, "vsock://3:1024", sizeof(m.appliance));
	roundtrip(&m, "{\"type\":\"target\",\"epoch\":" EPOCH_MAX_STR ","
	    "\"appliance_host\":\"B\",\"relay\":\"tcp://[::1]:7001\","
	    "\"appliance\":\"vsock://3:1024\"}");
	m.relay[0] = m.appliance[0] = '\0';
	m.epoch = 0;
	roundtrip(&m, "{\"type\":\"target\",\"epoch\":0,"
	    "\"appliance_host\":\"B\"}");

	memset(&m, 0, sizeof(m));
	m.type = PUSH_ACK;
	m.epoch = 7;
	roundtrip(&m, "{\"type\":\"ack\",\"epoch\":7}");

	m.type = PUSH_NACK;
	strlcpy(m.text, "stale epoch 7 (current 9)", sizeof(m.text));
	roundtrip(&m, "{\"type\":\"nack\",\"epoch\":7,"
	    "\"error\":\"stale epoch 7 (current 9)\"}");
	/* The relay's own epoch, when said. */
	m.current = 9;
	roundtrip(&m, "{\"type\":\"nack\",\"epoch\":7,"
	    "\"error\":\"stale epoch 7 (current 9)\",\"current\":9}");
	m.current = 0;

	memset(&m, 0, sizeof(m));
	m.type = PUSH_HINT;
	strlcpy(m.text, "migrating", sizeof(m.text));
	strlcpy(m.host, "C", sizeof(m.host));
	strlcpy(m.relay, "unix:/run/vrelay/mesh.sock", sizeof(m.relay));
	roundtrip(&m, "{\"type\":\"hint\",\"event\":\"migrating\","
	    "\"host\":\"C\",\"relay\":\"unix:/run/vrelay/mesh.sock\"}");

	memset(&m, 0, sizeof(m));
	m.type = PUSH_ERROR;
	strlcpy(m.text, "unknown host \"Q\"", sizeof(m.text));
	roundtrip(&m, "{\"type\":\"error\",\"error\":\"unknown host "
	    "\\\"Q\\\"\"}");

	memset(&m, 0, sizeof(m));
	m.type = PUSH_PING;
	roundtrip(&m, "{\"type\":\"ping\"}");
	m.type = PUSH_PONG;
	roundtrip(&m, "{\"type\":\"pong\"}");
}

/* One line that must fail with CODE and a message containing SUB. */
struct bad_case {
	const char	*line;
	int		 code;
	const char	*sub;
};

static const struct bad_case bad_cases[] = {
	/* Every required member missing, one at a time. */
	{ "{\"type\":\"hello\",\"host\":\"A\",\"epoch\":1}", PUSH_E_FIELD,
	    "hello: \"version\": missing" },
	{ "{\"type\":\"hello\",\"version\":1,\"epoch\":1}", PUSH_E_FIELD,
	    "hello: \"host\": missing" },
	{ "{\"type\":\"hello\",\"version\":1,\"host\":\"A\"}", PUSH_E_FIELD,
	    "hello: \"epoch\": missing" },
	{ "{\"type\":\"welcome\",\"known\":true}", PUSH_E_FIELD,
	    "welcome: \"version\": missing" },
	{ "{\"type\":\"welcome\",\"version\":1}", PUSH_E_FIELD,
	    "welcome: \"known\": missing" },
	{ "{\"type\":\"target\",\"appliance_host\":\"B\"}", PUSH_E_FIELD,
	    "target: \"epoch\": missing" },
	{ "{\"type\":\"target\",\"epoch\":3}", PUSH_E_FIELD,
	    "target: \"appliance_host\": missing" },
	{ "{\"type\":\"ack\"}", PUSH_E_FIELD, "ack: \"epoch\": missing" },
	{ "{\"type\":\"nack\",\"error\":\"x\"}", PUSH_E_FIELD,
	    "nack: \"epoch\": missing" },
	{ "{\"type\":\"nack\",\"epoch\":2}", PUSH_E_FIELD,
	    "nack: \"error\": missing" },
	{ "{\"type\":\"hint\",\"host\":\"B\"}", PUSH_E_FIELD,
	    "hint: \"event\": missing" },
	{ "{\"type\":\"hint\",\"event\":\"migrating\"}", PUSH_E_FIELD,
	    "hint: \"host\": missing" },
	{ "{\"type\":\"error\"}", PUSH_E_FIELD, "error: \"error\": missing" },
	/* A required member null or "" is missing too, in effect. */
	{ "{\"type\":\"target\",\"epoch\":3,\"appliance_host\":null}",
	    PUSH_E_FIELD, "target: \"appliance_host\": expected a host" },
	{ "{\"type\":\"target\",\"epoch\":3,\"appliance_host\":\"\"}",
	    PUSH_E_FIELD, "target: \"appliance_host\": expected a host" },

	/* Ill-typed members. */
	{ "{\"type\":\"target\",\"epoch\":\"3\",\"appliance_host\":\"B\"}",
	    PUSH_E_FIELD, "target: \"epoch\": expected an integer from 0 to "
	    EPOCH_MAX_STR },
	{ "{\"type\":\"target\",\"epoch\":3.0,\"appliance_host\":\"B\"}",
	    PUSH_E_FIELD, "target: \"epoch\": expected an integer" },
	{ "{\"type\":\"target\",\"epoch\":-1,\"appliance_host\":\"B\"}",
	    PUSH_E_FIELD, "target: \"epoch\": expected an integer" },
	{ "{\"type\":\"target\",\"epoch\":9007199254740992,"
	    "\"appliance_host\":\"B\"}", PUSH_E_FIELD,
	    "target: \"epoch\": expected an integer" },
	{ "{\"type\":\"ack\",\"epoch\":true}", PUSH_E_FIELD,
	    "ack: \"epoch\": expected an integer" },
	{ "{\"type\":\"welcome\",\"version\":1,\"known\":1}", PUSH_E_FIELD,
	    "welcome: \"known\": expected true or false" },
	{ "{\"type\":\"welcome\",\"version\":1,\"known\":true,"
	    "\"vmomi\":\"http://x\"}", PUSH_E_FIELD, "welcome: \"vmomi\": "
	    "expected an address" },
	{ "{\"type\":\"welcome\",\"version\":\"1\",\"known\":true}",
	    PUSH_E_FIELD, "welcome: \"version\": expected an integer from 0 "
	    "to 65535" },
	{ "{\"type\":\"hello\",\"version\":1,\"host\":5,\"epoch\":1}",
	    PUSH_E_FIELD, "hello: \"host\": expected a host name" },
	{ "{\"type\":\"nack\",\"epoch\":1,\"error\":[]}", PUSH_E_FIELD,
	    "nack: \"error\": expected printable ASCII" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":{}}", PUSH_E_FIELD, "target: \"relay\": expected an "
	    "address" },

	/* Bad host names. */
	{ "{\"type\":\"hello\",\"version\":1,\"host\":\"a b\",\"epoch\":1}",
	    PUSH_E_FIELD, "hello: \"host\": expected a host name" },
	{ "{\"type\":\"hint\",\"event\":\"m\",\"host\":\"tab\\there\"}",
	    PUSH_E_FIELD, "hint: \"host\": expected a host name" },
	{ "{\"type\":\"hello\",\"version\":1,\"host\":\"\xc3\xa9t\xc3\xa9\","
	    "\"epoch\":1}", PUSH_E_FIELD, "hello: \"host\": expected" },

	/* Bad addresses. */
	{ "{\"type\":\"hello\",\"version\":1,\"host\":\"A\","
	    "\"mesh\":\"http://x:1\",\"epoch\":1}", PUSH_E_FIELD,
	    "hello: \"mesh\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://127.0.0.1\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"appliance\":\"vsock://3:x\"}", PUSH_E_FIELD,
	    "target: \"appliance\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"appliance\":\"tcp://[::1:7\"}", PUSH_E_FIELD,
	    "target: \"appliance\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"unix:/a b\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h:0\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h:65536\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h:+1\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://:80\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h:\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h:1:2\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h!:1\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://[zz]:7\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://h:99999999999\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"vsock://any\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	/* A zone names an interface of the sender's host: not sendable. */
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://[fe80::1%lo]:7\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },
	{ "{\"type\":\"target\",\"epoch\":1,\"appliance_host\":\"B\","
	    "\"relay\":\"tcp://[10.0.0.1]:7\"}", PUSH_E_FIELD,
	    "target: \"relay\": expected an address" },

	/* Texts: printable ASCII, at most 255. */
	{ "{\"type\":\"error\",\"error\":\"line\\nbreak\"}", PUSH_E_FIELD,
	    "error: \"error\": expected printable ASCII text" },
	{ "{\"type\":\"error\",\"error\":\"caf\xc3\xa9\"}", PUSH_E_FIELD,
	    "error: \"error\": expected printable ASCII text" },

	/* Versions. */
	{ "{\"type\":\"hello\",\"version\":2,\"host\":\"A\",\"epoch\":1}",
	    PUSH_E_VERSION,
	    "hello: \"version\": version 2, this end speaks 1" },
	{ "{\"type\":\"welcome\",\"version\":0}", PUSH_E_VERSION,
	    "welcome: \"version\": version 0" },

	/* Not a message at all. */
	{ "", PUSH_E_JSON, "not JSON" },
	{ "   ", PUSH_E_JSON, "not JSON" },
	{ "{\"type\":\"ping\"", PUSH_E_JSON, "not JSON" },
	{ "[{\"type\":\"ping\"}]", PUSH_E_JSON, "not a JSON object" },
	{ "\"ping\"", PUSH_E_JSON, "not JSON" },
	{ "17", PUSH_E_JSON, "not JSON" },
	{ "{\"type\":\"ping\"} {}", PUSH_E_JSON, "not JSON" },
	{ "{\"type\":\"ping\",\"type\":\"pong\"}", PUSH_E_JSON,
	    "duplicate object key" },
	{ "{\"type\":\"ping\",\"x\":{\"a\":1,\"a\":2}}", PUSH_E_JSON,
	    "duplicate object key" },
	{ "{\"type\":\"ping\",\"x\":\"\\u0000\"}", PUSH_E_JSON, "not JSON" },
	{ "{\"type\":\"ping\",\"x\":\"\xff\"}", PUSH_E_JSON, "not JSON" },

	/* Types. */
	{ "{}", PUSH_E_TYPE, "\"type\": missing" },
	{ "{\"type\":1}", PUSH_E_TYPE, "\"type\": expected a string" },
	{ "{\"type\":\"PING\"}", PUSH_E_TYPE,
	    "\"type\": unknown message type \"PING\"" },
	{ "{\"type\":\"?\"}", PUSH_E_TYPE, "unknown message type" },
	{ "{\"type\":\"bye\\u0001\"}", PUSH_E_TYPE,
	    "unknown message type \"bye?\"" },
};

static void
test_bad_lines(void **state)
{
	struct push_msg	 m;
	char		 err[256];
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		memset(&m, 0x5a, sizeof(m));
		r = dec(bad_cases[i].line, &m, err, sizeof(err));
		if (r != bad_cases[i].code ||
		    strstr(err, bad_cases[i].sub) == NULL)
			fail_msg("case %zu %s: got %d \"%s\", want %d "
			    "\"%s\"", i, bad_cases[i].line, r, err,
			    bad_cases[i].code, bad_cases[i].sub);
		if (r != PUSH_E_VERSION) {
			assert_int_equal(m.type, 0);
			assert_int_equal(m.epoch, 0);
			assert_string_equal(m.host, "");
		}
	}
}

/* The offered version is kept so the receiver can name it. */
static void
test_version_kept(void **state)
{
	struct push_msg	m;

	assert_int_equal(dec("{\"type\":\"hello\",\"version\":7}", &m, NULL,
	    0), PUSH_E_VERSION);
	assert_int_equal(m.type, PUSH_HELLO);
	assert_int_equal(m.version, 7);
}

/* Lines that are fine, with what they decode to. */
static void
test_lenient(void **state)
{
	struct push_msg	m;
	char		err[256];

	/* Unknown members are ignored, whatever they hold. */
	assert_int_equal(dec("{\"future\":[1,{\"x\":null}],\"type\":\"ack\","
	    "\"epoch\":5,\"note\":\"\xc3\xa9\"}", &m, err, sizeof(err)),
	    PUSH_OK);
	assert_int_equal(m.type, PUSH_ACK);
	assert_int_equal(m.epoch, 5);

	/* Optional addresses may be absent, null or "". */
	assert_int_equal(dec("{\"type\":\"target\",\"epoch\":2,"
	    "\"appliance_host\":\"B\",\"relay\":null,\"appliance\":\"\"}", &m,
	    err, sizeof(err)), PUSH_OK);
	assert_string_equal(m.host, "B");
	assert_string_equal(m.relay, "");
	assert_string_equal(m.appliance, "");

	/* A tcp name that does not resolve here is still well-formed. */
	assert_int_equal(dec("{\"type\":\"target\",\"epoch\":2,"
	    "\"appliance_host\":\"B\",\"relay\":"
	    "\"tcp://no-such-host.invalid:7000\"}", &m, err, sizeof(err)),
	    PUSH_OK);
	assert_string_equal(m.relay, "tcp://no-such-host.invalid:7000");
	assert_int_equal(dec("{\"type\":\"target\",\"epoch\":2,"
	    "\"appliance_host\":\"B\",\"relay\":\"tcp://[fe80::1]:65535\","
	    "\"appliance\":\"tcp://10.0.0.1:1\"}", &m, err, sizeof(err)),
	    PUSH_OK);
	{
		char	line[1024], host[248];

		/* The longest address, 255 bytes: "tcp://" NAME ":1". */
		memset(host, 'h', 247);
		host[247] = '\0';
		snprintf(line, sizeof(line), "{\"type\":\"hint\",\"event\":"
		    "\"m\",\"host\":\"h\",\"relay\":\"tcp://%s:1\"}", host);
		assert_int_equal(dec(line, &m, err, sizeof(err)), PUSH_OK);
		snprintf(line, sizeof(line), "{\"type\":\"hint\",\"event\":"
		    "\"m\",\"host\":\"h\",\"relay\":\"tcp://%sh:1\"}", host);
		assert_int_equal(dec(line, &m, err, sizeof(err)),
		    PUSH_E_FIELD);
	}

	/* Whitespace around and a CR before the newline are JSON space. */
	assert_int_equal(dec(" {\"type\" : \"ping\"}\r", &m, err,
	    sizeof(err)), PUSH_OK);
	assert_int_equal(m.type, PUSH_PING);

	/* Longest host and text. */
	{
		char	line[1024], host[256], text[256];

		memset(host, 'h', 255);
		host[255] = '\0';
		memset(text, ' ', 255);
		text[255] = '\0';
		snprintf(line, sizeof(line), "{\"type\":\"hint\",\"event\":"
		    "\"%s\",\"host\":\"%s\"}", text, host);
		assert_int_equal(dec(line, &m, err, sizeof(err)), PUSH_OK);
		assert_int_equal(strlen(m.host), 255);
		assert_int_equal(strlen(m.text), 255);
		snprintf(line, sizeof(line), "{\"type\":\"hint\",\"event\":"
		    "\"x\",\"host\":\"%sh\"}", host);
		assert_int_equal(dec(line, &m, err, sizeof(err)),
		    PUSH_E_FIELD);
		snprintf(line, sizeof(line), "{\"type\":\"hint\",\"event\":"
		    "\"%s.\",\"host\":\"h\"}", text);
		assert_int_equal(dec(line, &m, err, sizeof(err)),
		    PUSH_E_FIELD);
		assert_non_null(strstr(err, "hint: \"event\""));
	}
}

/* A NUL byte in the line is refused, wherever it is. */
static void
test_embedded_nul(void **state)
{
	static const char	line[] = "{\"type\":\"ping\"}\0garbage";
	static const char	line2[] =
	    "{\"type\":\"error\",\"error\":\"a\0b\"}";
	struct push_msg		m;
	char			err[256];
	struct evbuffer		*b;

	assert_int_equal(push_decode(line, sizeof(line) - 1, &m, err,
	    sizeof(err)), PUSH_E_JSON);
	assert_non_null(strstr(err, "NUL byte at offset 15"));
	assert_int_equal(push_decode(line2, sizeof(line2) - 1, &m, err,
	    sizeof(err)), PUSH_E_JSON);

	b = evbuffer_new();
	assert_non_null(b);
	evbuffer_add(b, line2, sizeof(line2) - 1);
	evbuffer_add(b, "\n{\"type\":\"pong\"}\n", 17);
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_E_JSON);
	/* The bad line is consumed, the next one is intact. */
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_OK);
	assert_int_equal(m.type, PUSH_PONG);
	evbuffer_free(b);
}

/* Partial lines wait; two lines come off one at a time. */
static void
test_read_framing(void **state)
{
	struct evbuffer	*b;
	struct push_msg	 m;
	char		 err[256];

	b = evbuffer_new();
	assert_non_null(b);
	assert_int_equal(push_read(b, &m, err, sizeof(err)),
	    PUSH_E_INCOMPLETE);
	evbuffer_add_printf(b, "{\"type\":\"ack\",");
	assert_int_equal(push_read(b, &m, err, sizeof(err)),
	    PUSH_E_INCOMPLETE);
	assert_int_equal(evbuffer_get_length(b), 14);	/* nothing taken */
	evbuffer_add_printf(b, "\"epoch\":3}\n{\"type\":\"ping\"}\n{\"ty");
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_OK);
	assert_int_equal(m.type, PUSH_ACK);
	assert_int_equal(m.epoch, 3);
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_OK);
	assert_int_equal(m.type, PUSH_PING);
	assert_int_equal(push_read(b, &m, err, sizeof(err)),
	    PUSH_E_INCOMPLETE);
	assert_int_equal(evbuffer_get_length(b), 4);
	/* An empty line is not JSON. */
	evbuffer_drain(b, 4);
	evbuffer_add(b, "\n", 1);
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_E_JSON);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

/* The line cap, with and without a newline buffered. */
static void
test_too_long(void **state)
{
	struct evbuffer	*b;
	struct push_msg	 m;
	char		 err[256], *big;
	size_t		 n;

	/* Exactly PUSH_LINE_MAX with its newline: fine (padded ping). */
	big = malloc(PUSH_LINE_MAX + 2);
	assert_non_null(big);
	n = PUSH_LINE_MAX - 1;
	memset(big, ' ', n);
	memcpy(big, "{\"type\":\"ping\"}", 15);
	big[n] = '\n';
	b = evbuffer_new();
	assert_non_null(b);
	evbuffer_add(b, big, n + 1);
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_OK);
	assert_int_equal(m.type, PUSH_PING);

	/* One more byte: too big, and the line is consumed. */
	memset(big, ' ', PUSH_LINE_MAX + 1);
	memcpy(big, "{\"type\":\"ping\"}", 15);
	big[PUSH_LINE_MAX] = '\n';
	evbuffer_add(b, big, PUSH_LINE_MAX + 1);
	evbuffer_add(b, "{\"type\":\"pong\"}\n", 16);
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_E_TOOBIG);
	assert_non_null(strstr(err, "line of 16385 bytes"));
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_OK);
	assert_int_equal(m.type, PUSH_PONG);

	/* No newline within PUSH_LINE_MAX bytes: too big before the end. */
	evbuffer_add(b, big, PUSH_LINE_MAX - 1);
	assert_int_equal(push_read(b, &m, err, sizeof(err)),
	    PUSH_E_INCOMPLETE);
	evbuffer_add(b, " ", 1);
	assert_int_equal(push_read(b, &m, err, sizeof(err)), PUSH_E_TOOBIG);
	assert_non_null(strstr(err, "no newline in 16384 bytes"));

	/* push_decode holds the same cap. */
	assert_int_equal(push_decode(big, PUSH_LINE_MAX, &m, err,
	    sizeof(err)), PUSH_E_TOOBIG);
	evbuffer_free(b);
	free(big);
}

/* The encoder refuses what the decoder would, and cleans texts. */
static void
test_write_checks(void **state)
{
	struct evbuffer	*b;
	struct push_msg	 m, m2;
	char		 err[256], *line;
	size_t		 i;

	b = evbuffer_new();
	assert_non_null(b);
	memset(&m, 0, sizeof(m));
	assert_int_equal(push_write(b, &m), PUSH_E_TYPE);
	m.type = PUSH_PONG + 1;
	assert_int_equal(push_write(b, &m), PUSH_E_TYPE);

	m.type = PUSH_TARGET;
	m.epoch = 1;
	assert_int_equal(push_write(b, &m), PUSH_E_FIELD);	/* no host */
	strlcpy(m.host, "B C", sizeof(m.host));
	assert_int_equal(push_write(b, &m), PUSH_E_FIELD);
	strlcpy(m.host, "B", sizeof(m.host));
	strlcpy(m.relay, "nonsense", sizeof(m.relay));
	assert_int_equal(push_write(b, &m), PUSH_E_FIELD);
	m.relay[0] = '\0';
	m.epoch = PUSH_EPOCH_MAX + 1;
	assert_int_equal(push_write(b, &m), PUSH_E_FIELD);
	memset(m.host, 'x', sizeof(m.host));	/* unterminated */
	m.epoch = 1;
	assert_int_equal(push_write(b, &m), PUSH_E_FIELD);
	assert_int_equal(evbuffer_get_length(b), 0);	/* nothing written */

	/* Any text goes out, cut and masked, and reads back. */
	memset(&m, 0, sizeof(m));
	m.type = PUSH_NACK;
	m.epoch = 3;
	for (i = 0; i < sizeof(m.text) - 1; i++)
		m.text[i] = (char)(i % 2 ? '\n' : 0xe9);
	assert_int_equal(push_write(b, &m), PUSH_OK);
	assert_int_equal(push_read(b, &m2, err, sizeof(err)), PUSH_OK);
	assert_int_equal(strlen(m2.text), PUSH_TEXT_MAX);
	assert_null(strpbrk(m2.text, "\n"));
	assert_int_equal(m2.text[0], '?');

	/* An unterminated text is cut, and says so. */
	memset(m.text, 'x', sizeof(m.text));
	assert_int_equal(push_write(b, &m), PUSH_OK);
	assert_int_equal(push_read(b, &m2, err, sizeof(err)), PUSH_OK);
	assert_int_equal(strlen(m2.text), PUSH_TEXT_MAX);
	assert_string_equal(m2.text + PUSH_TEXT_MAX - 3, "...");

	/* The quote and backslash are escaped, not lost. */
	strlcpy(m.text, "say \"\\\"", sizeof(m.text));
	assert_int_equal(push_write(b, &m), PUSH_OK);
	line = (char *)evbuffer_pullup(b, -1);
	assert_non_null(line);
	assert_non_null(strstr(line, "\"error\":\"say \\\"\\\\\\\"\""));
	assert_int_equal(push_read(b, &m2, err, sizeof(err)), PUSH_OK);
	assert_string_equal(m2.text, "say \"\\\"");
	evbuffer_free(b);
}

static void
test_strings(void **state)
{
	assert_string_equal(push_type_name(PUSH_HELLO), "hello");
	assert_string_equal(push_type_name(PUSH_WELCOME), "welcome");
	assert_string_equal(push_type_name(PUSH_TARGET), "target");
	assert_string_equal(push_type_name(PUSH_ACK), "ack");
	assert_string_equal(push_type_name(PUSH_NACK), "nack");
	assert_string_equal(push_type_name(PUSH_HINT), "hint");
	assert_string_equal(push_type_name(PUSH_ERROR), "error");
	assert_string_equal(push_type_name(PUSH_PING), "ping");
	assert_string_equal(push_type_name(PUSH_PONG), "pong");
	assert_string_equal(push_type_name(0), "?");
	assert_string_equal(push_type_name(PUSH_PONG + 1), "?");
	assert_string_equal(push_strerror(PUSH_OK), "ok");
	assert_string_equal(push_strerror(PUSH_E_TOOBIG), "line too long");
	assert_string_equal(push_strerror(PUSH_E_INCOMPLETE),
	    "incomplete line");
	assert_string_equal(push_strerror(-99), "unknown push error");
	assert_string_equal(push_strerror(3), "unknown push error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_each_type),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_version_kept),
		cmocka_unit_test(test_lenient),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_read_framing),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_write_checks),
		cmocka_unit_test(test_strings),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
