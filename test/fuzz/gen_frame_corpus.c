/*
 * gen_frame_corpus.c -- write the seed corpus for frame_fuzz.c.
 *
 * Run once by hand when the wire format changes; the output is
 * committed, this program is not built by the GNUmakefile:
 *
 *	cc -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libevent \
 *	    libbsd-overlay) -o /tmp/gen test/fuzz/gen_frame_corpus.c \
 *	    common/frame.c common/text.c \
 *	    $(pkg-config --libs libevent libbsd-overlay)
 *	/tmp/gen test/fuzz/corpus/frame
 *
 * One valid frame per file, made by the real encoders so the seeds
 * follow frame.c; a few near-misses give the fuzzer the error paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "frame.h"

static const char	*gen_dir;

/* Write the whole buffer to DIR/NAME and empty it. */
static void
gen_write(struct evbuffer *b, const char *name)
{
	char	 path[1024];
	FILE	*f;
	size_t	 len;
	uint8_t	*p;

	len = evbuffer_get_length(b);
	p = evbuffer_pullup(b, -1);
	if (snprintf(path, sizeof(path), "%s/%s", gen_dir, name) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "path too long\n");
		exit(1);
	}
	if ((f = fopen(path, "wb")) == NULL ||
	    (len != 0 && fwrite(p, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	evbuffer_drain(b, len);
}

/* Write the first LEN bytes of the buffer to DIR/NAME; empty it. */
static void
gen_write_n(struct evbuffer *b, size_t len, const char *name)
{
	struct evbuffer	*c;

	if ((c = evbuffer_new()) == NULL ||
	    evbuffer_add(c, evbuffer_pullup(b, -1), len) != 0) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	evbuffer_drain(b, evbuffer_get_length(b));
	gen_write(c, name);
	evbuffer_free(c);
}

/* Fill key material with something that is not all zeroes. */
static void
gen_pattern(uint8_t *p, size_t n, uint8_t seed)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 13);
}

/* Write every seed into the directory named on the command line. */
int
main(int argc, char *argv[])
{
	struct proto_hello	 hello;
	struct proto_welcome	 welcome;
	struct proto_challenge	 chal;
	struct proto_proof	 proof;
	struct evbuffer		*b;
	uint8_t			 bytes[1024], *p;
	char			 host[PROTO_HOST_MAX + 1];
	size_t			 len;

	if (argc != 2) {
		fprintf(stderr, "usage: %s corpus-dir\n", argv[0]);
		return (1);
	}
	gen_dir = argv[1];
	if ((b = evbuffer_new()) == NULL)
		return (1);

	memset(&hello, 0, sizeof(hello));
	hello.version = PROTO_VERSION;
	hello.kind = PROTO_HELLO_NEW;
	hello.sid = 0x1122334455667788ULL;
	gen_pattern(hello.nonce, sizeof(hello.nonce), 1);
	gen_pattern(hello.pubkey, sizeof(hello.pubkey), 2);
	hello.guest_cid = 3;
	hello.guest_port = 1024;
	strlcpy(hello.host, "esx01.example.com", sizeof(hello.host));
	hello.window = 4 * 1024 * 1024;			/* version 5 */
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new");
	hello.version = 4;				/* no window */
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new-v4");
	hello.version = PROTO_VERSION;

	hello.host[0] = '\0';
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new-nohost");

	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	strlcpy(hello.host, host, sizeof(hello.host));
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new-maxhost");

	/* v2's tail: a service and a VM name (UTF-8 is allowed). */
	strlcpy(hello.host, "esx01.example.com", sizeof(hello.host));
	hello.service = PROTO_SVC_VSPC;
	strlcpy(hello.name, "vm-01 caf\xc3\xa9", sizeof(hello.name));
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new-vspc");

	hello.service = PROTO_SVC_SERIAL;
	strlcpy(hello.name, "serial-vm", sizeof(hello.name));
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new-serial");

	/* The largest HELLO: 255 bytes of host, 160 of name. */
	strlcpy(hello.host, host, sizeof(hello.host));
	memset(hello.name, 'n', PROTO_NAME_MAX);
	hello.name[PROTO_NAME_MAX] = '\0';
	hello.service = 0xffff;
	frame_hello_add(b, &hello);
	gen_write(b, "hello-new-maxall");

	/* Near misses: a DEL in the name, and a v1 peer's NEW. */
	strlcpy(hello.host, "esx01.example.com", sizeof(hello.host));
	strlcpy(hello.name, "vm-01", sizeof(hello.name));
	hello.service = PROTO_SVC_SERIAL;
	frame_hello_add(b, &hello);
	p = evbuffer_pullup(b, -1);
	p[evbuffer_get_length(b) - 1 - 4] = 0x7f;	/* before the window */
	gen_write(b, "hello-new-name-del");

	hello.version = 1;
	hello.name[0] = '\0';
	hello.service = 0;
	frame_hello_add(b, &hello);
	len = evbuffer_get_length(b) - 3;	/* no service, no name */
	p = evbuffer_pullup(b, -1);
	p[4] = (uint8_t)((len - PROTO_HDR_LEN) >> 24);
	p[5] = (uint8_t)((len - PROTO_HDR_LEN) >> 16);
	p[6] = (uint8_t)((len - PROTO_HDR_LEN) >> 8);
	p[7] = (uint8_t)(len - PROTO_HDR_LEN);
	gen_write_n(b, len, "hello-new-v1");
	hello.version = PROTO_VERSION;
	hello.name[0] = '\0';
	hello.service = 0;
	strlcpy(hello.host, host, sizeof(hello.host));

	hello.kind = PROTO_HELLO_RESUME;
	frame_hello_add(b, &hello);
	gen_write(b, "hello-resume");

	hello.kind = PROTO_HELLO_RESUME_PROOF;
	hello.next = 4096;
	gen_pattern(hello.mac, sizeof(hello.mac), 8);
	frame_hello_add(b, &hello);
	gen_write(b, "hello-resume-proof");
	hello.version = PROTO_VERSION_MIN;		/* v2 has none */
	frame_hello_add(b, &hello);
	gen_write(b, "hello-resume-proof-v2");
	hello.kind = PROTO_HELLO_RESUME;

	hello.version = PROTO_VERSION + 1;		/* near miss */
	frame_hello_add(b, &hello);
	gen_write(b, "hello-resume-vnext");
	hello.version = PROTO_VERSION_MIN;		/* still spoken */
	frame_hello_add(b, &hello);
	gen_write(b, "hello-resume-v2");
	hello.version = PROTO_VERSION;

	memset(&welcome, 0, sizeof(welcome));
	welcome.version = PROTO_VERSION;
	welcome.sid = 0x1122334455667788ULL;
	gen_pattern(welcome.nonce, sizeof(welcome.nonce), 4);
	gen_pattern(welcome.pubkey, sizeof(welcome.pubkey), 5);
	welcome.window = 4 * 1024 * 1024;
	frame_welcome_add(b, &welcome);
	gen_write(b, "welcome");
	welcome.version = 4;
	frame_welcome_add(b, &welcome);
	gen_write(b, "welcome-v4");

	gen_pattern(chal.nonce, sizeof(chal.nonce), 6);
	frame_challenge_add(b, &chal);
	gen_write(b, "challenge");

	memset(&proof, 0, sizeof(proof));
	proof.next = 4096;
	gen_pattern(proof.mac, sizeof(proof.mac), 7);
	frame_proof_add(b, &proof);
	gen_write(b, "proof");

	frame_u64_add(b, PROTO_RESUMED, 4096);
	gen_write(b, "resumed");

	frame_error_add(b, PROTO_ERROR, PROTO_E_AUTH, "proof did not verify");
	gen_write(b, "error");

	frame_error_add(b, PROTO_ERROR, PROTO_E_VERSION, NULL);
	gen_write(b, "error-empty");

	frame_error_add(b, PROTO_CLOSE, PROTO_E_BACKEND,
	    "backend vsock://3:1024: connection refused");
	gen_write(b, "close");

	gen_pattern(bytes, sizeof(bytes), 8);
	frame_data_hdr_add(b, 0, 1);
	evbuffer_add(b, bytes, 1);
	gen_write(b, "data-1");

	frame_data_hdr_add(b, 65536, sizeof(bytes));
	evbuffer_add(b, bytes, sizeof(bytes));
	gen_write(b, "data-1k");

	frame_u64_add(b, PROTO_ACK, 65537);
	gen_write(b, "ack");

	frame_u64_add(b, PROTO_FIN, 66560);
	gen_write(b, "fin");

	frame_u64_add(b, PROTO_PING, 0x0102030405060708ULL);
	gen_write(b, "ping");

	frame_u64_add(b, PROTO_PONG, 0x0102030405060708ULL);
	gen_write(b, "pong");

	frame_u64_add(b, PROTO_RELEASE, 0x1122334455667788ULL);
	gen_write(b, "release");

	/* Two frames back to back; the harness looks at the first. */
	frame_u64_add(b, PROTO_PING, 1);
	frame_u64_add(b, PROTO_PONG, 1);
	gen_write(b, "ping-pong");

	/* A header alone, promising more than follows. */
	frame_data_hdr_add(b, 0, PROTO_DATA_MAX);
	gen_write(b, "data-hdr-only");

	/* A CLOSE whose reason has a control byte, patched in by hand. */
	frame_error_add(b, PROTO_CLOSE, PROTO_E_RESET, "reset by peer");
	p = evbuffer_pullup(b, -1);
	p[PROTO_HDR_LEN + 3 + 5] = '\n';
	gen_write(b, "close-ctl");

	evbuffer_free(b);
	return (0);
}
