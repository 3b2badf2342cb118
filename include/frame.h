/*
 * frame.h -- encode and decode the frames of proto.h.
 *
 * Decoders work on plain byte arrays so they can be unit-tested and
 * fuzzed without an event loop; they never read past LEN and return a
 * FRAME_E* code on anything malformed.  Encoders append one whole
 * frame to an evbuffer.
 */
#ifndef VRELAY_FRAME_H
#define VRELAY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct evbuffer;

#define FRAME_OK		0
#define FRAME_EAGAIN		(-1)	/* not a whole frame yet */
#define FRAME_E_TYPE		(-2)	/* unknown frame type */
#define FRAME_E_HEADER		(-3)	/* nonzero flags or reserved */
#define FRAME_E_SIZE		(-4)	/* length wrong for its type */
#define FRAME_E_MAGIC		(-5)	/* handshake without "VRLY" */
#define FRAME_E_VERSION		(-6)	/* other protocol version */
#define FRAME_E_FIELD		(-7)	/* a field out of range */

struct frame_hdr {
	uint8_t		type;
	uint32_t	len;
};

const char	*frame_strerror(int);
const char	*frame_strtype(int);
const char	*frame_strcode(int);
/*
 * Whether N bytes at S make a host name HELLO may carry: at most
 * PROTO_HOST_MAX bytes of printable ASCII without spaces.  0 if so.
 */
int		 frame_host_ok(const void *, size_t);

/* Parse and check a header; FRAME_EAGAIN if fewer than 8 bytes. */
int	frame_hdr_decode(const uint8_t *, size_t, struct frame_hdr *);
/* Same, on the front of an evbuffer, without draining it. */
int	frame_peek(struct evbuffer *, struct frame_hdr *);

int	frame_hello_decode(const uint8_t *, size_t, struct proto_hello *);
int	frame_welcome_decode(const uint8_t *, size_t, struct proto_welcome *);
int	frame_challenge_decode(const uint8_t *, size_t,
	    struct proto_challenge *);
int	frame_proof_decode(const uint8_t *, size_t, struct proto_proof *);
int	frame_error_decode(const uint8_t *, size_t, struct proto_error *);
int	frame_u64_decode(const uint8_t *, size_t, uint64_t *);

void	frame_hello_add(struct evbuffer *, const struct proto_hello *);
void	frame_welcome_add(struct evbuffer *, const struct proto_welcome *);
void	frame_challenge_add(struct evbuffer *,
	    const struct proto_challenge *);
void	frame_proof_add(struct evbuffer *, const struct proto_proof *);
/* ERROR or CLOSE, by type. */
void	frame_error_add(struct evbuffer *, int, int, const char *);
/* RESUMED, ACK, FIN, PING, PONG, RELEASE, by type. */
void	frame_u64_add(struct evbuffer *, int, uint64_t);
/* A DATA header for LEN bytes at OFFSET; the caller appends the bytes. */
void	frame_data_hdr_add(struct evbuffer *, uint64_t, size_t);

#endif
