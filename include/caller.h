/*
 * caller.h -- the attestation line a relay writes ahead of a vmomi
 * leg's bytes to the locator's agent (docs/protocol.md):
 *
 *	VRELAY-CALLER 1 host=<relay host> cid=<CID> port=<port>\r\n
 *
 * naming the leg's vSocket peer as the relay saw it in accept(): only
 * the relay knows it (the hypervisor assigns CIDs), so the agent takes
 * the caller's identity from here and never from the session's HELLO.
 * ASCII, at most CALLER_LINE_MAX bytes with its CRLF.
 *
 * Functions return CALLER_OK or a negative CALLER_E_* code.
 */
#ifndef VRELAY_CALLER_H
#define VRELAY_CALLER_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define CALLER_LINE_MAX		256
#define CALLER_VERSION		1
#define CALLER_MAGIC		"VRELAY-CALLER"

#define CALLER_OK		0
#define CALLER_E_SYNTAX		(-1)	/* not the line's shape */
#define CALLER_E_VERSION	(-2)	/* another version of it */
#define CALLER_E_HOST		(-3)	/* host: 1-255 bytes of 0x21-0x7e */
#define CALLER_E_NUMBER		(-4)	/* cid or port: not a u32 */
#define CALLER_E_TOOLONG	(-5)	/* over CALLER_LINE_MAX */

struct caller {
	char		host[PROTO_HOST_MAX + 1];
	uint32_t	cid;
	uint32_t	port;
};

const char	*caller_strerror(int);
/* The line for C, CRLF included, into BUF; *LEN its length. */
int		 caller_format(const struct caller *, char *, size_t,
		    size_t *);
/* One line of LEN bytes, its CRLF included, into *C (cleared first). */
int		 caller_parse(const char *, size_t, struct caller *);
/*
 * The fields alone, "host=H cid=N port=P" (LEN bytes), as the line
 * carries them after "VRELAY-CALLER 1 " and the locator names its legs.
 */
int		 caller_fields(const char *, size_t, struct caller *);

#endif
