/*
 * proto.h -- the vrelay session protocol, wire version 5.
 *
 * Don't forget to bump PROTO_VERSION if anything in this file changes
 * on the wire.  docs/protocol.md is the prose version of this header.
 *
 * Every frame is an 8-byte header followed by LEN payload bytes, all
 * integers big-endian:
 *
 *	u8 type | u8 flags (0) | u16 reserved (0) | u32 len
 *
 * Types are numbered in ranges: 1-15 handshake, 16-31 stream.
 */
#ifndef VRELAY_PROTO_H
#define VRELAY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION		5
#define PROTO_VERSION_MIN	2	/* spoken still: resumes in two trips */
#define PROTO_MAGIC		0x56524c59U	/* "VRLY" */

#define PROTO_HDR_LEN		8
#define PROTO_DATA_MAX		(256 * 1024)	/* payload bytes per DATA */
#define PROTO_DATA_MAX_V3	(64 * 1024)	/* ...in a version 2 or 3
						   session */
/* The largest DATA payload a session of version V sends or accepts. */
#define PROTO_DATA_MAX_OF(v)	((v) >= 4 ? PROTO_DATA_MAX : \
				    PROTO_DATA_MAX_V3)
#define PROTO_HANDSHAKE_MAX	512		/* any handshake frame */
#define PROTO_WINDOW_MIN	65536		/* the least a window may be */
/* HELLO NEW without its host and name: up to version 4, and since. */
#define PROTO_HELLO_NEW_FIXED_V4 92
#define PROTO_HELLO_NEW_FIXED	(PROTO_HELLO_NEW_FIXED_V4 + 4)	/* window */
#define PROTO_HELLO_MAX_V4	507		/* a version 2-4 end's limit */
#define PROTO_KEY_LEN		32		/* X25519 public key */
#define PROTO_NONCE_LEN		32
#define PROTO_MAC_LEN		32		/* HMAC-SHA256 */
#define PROTO_HOST_MAX		255
#define PROTO_NAME_MAX		160		/* a VM name: HELLO fits 512 */
#define PROTO_REASON_MAX	255

enum proto_type {
	/* Handshake: client (ingress end) -> server (appliance end). */
	PROTO_HELLO = 1,	/* open a new session or ask to resume one */
	PROTO_WELCOME = 2,	/* server: new session accepted */
	PROTO_CHALLENGE = 3,	/* server: prove you hold the secret */
	PROTO_PROOF = 4,	/* client: MAC over the challenge */
	PROTO_RESUMED = 5,	/* server: resume accepted */
	PROTO_ERROR = 6,	/* either: refused; the leg closes */

	/* Stream: both directions, once the handshake is done. */
	PROTO_DATA = 16,	/* u64 offset, bytes */
	PROTO_ACK = 17,		/* u64 delivered offset (FIN counts 1) */
	PROTO_FIN = 18,		/* u64 final offset: no more data */
	PROTO_CLOSE = 19,	/* u16 code, reason: session aborted */
	PROTO_PING = 20,	/* u64 token */
	PROTO_PONG = 21,	/* u64 token echoed */
	PROTO_RELEASE = 22,	/* server: u64 sid done; the leg is free */
};
#define PROTO_TYPE_MAX		PROTO_RELEASE

enum proto_hello_kind {
	PROTO_HELLO_NEW = 1,
	PROTO_HELLO_RESUME = 2,
	PROTO_HELLO_RESUME_PROOF = 3,	/* version 3: a resume in one trip */
};

/* Codes carried by ERROR (handshake) and CLOSE (session). */
enum proto_code {
	PROTO_E_NONE = 0,
	PROTO_E_VERSION = 1,		/* protocol version not spoken */
	PROTO_E_MALFORMED = 2,		/* a frame could not be parsed */
	PROTO_E_UNKNOWN_SESSION = 3,	/* resume of an id we do not hold */
	PROTO_E_AUTH = 4,		/* resume proof did not verify */
	PROTO_E_NOT_APPLIANCE = 5,	/* this relay does not front it */
	PROTO_E_LIMIT = 6,		/* too many sessions or handshakes */
	PROTO_E_EXISTS = 7,		/* new session id already in use */
	PROTO_E_BACKEND = 8,		/* backend unreachable or failed */
	PROTO_E_HOLD = 9,		/* hold time expired */
	PROTO_E_RESET = 10,		/* local end reset the connection */
	PROTO_E_SHUTDOWN = 11,		/* daemon shutting down */
	PROTO_E_TOO_FAR = 12,		/* asked for bytes no longer held */
	PROTO_E_INTERNAL = 13,
	PROTO_E_DONE = 14,		/* resume of a session that completed */
	PROTO_E_SERVICE = 15,		/* the service is not offered here */
	PROTO_E_OVERTAKEN = 16,		/* another leg resumed first: retry */
};
#define PROTO_CODE_MAX		PROTO_E_OVERTAKEN

/* What a session carries into the appliance (HELLO NEW). */
enum proto_service {
	PROTO_SVC_STREAM = 0,	/* a guest's vSocket stream, to the backend */
	PROTO_SVC_VSPC = 1,	/* a network serial port's telnet (vSPC) */
	PROTO_SVC_SERIAL = 2,	/* a pipe-backed serial port's bytes */
	PROTO_SVC_VMOMI = 3,	/* vSphere SOAP to the locator's agent */
};
#define PROTO_SVC_MAX		PROTO_SVC_VMOMI

/*
 * HELLO payload:
 *	u32 magic | u16 version | u16 kind | u64 session id | nonce[32]
 * and for kind NEW:
 *	pubkey[32] | u32 guest cid | u32 guest port | u8 hostlen | host |
 *	u16 service | u8 namelen | name
 * and from version 5 on, the client's window (the most it sends or
 * takes unacknowledged: its replay_max, at least PROTO_WINDOW_MIN):
 *	u32 window
 * and for kind RESUME_PROOF (version 3), PROOF's fields against the
 * ticket the secret implies instead of a CHALLENGE's nonce:
 *	u64 client next expected offset | mac[32]
 */
struct proto_hello {
	uint16_t	version;
	uint16_t	kind;
	uint64_t	sid;
	uint8_t		nonce[PROTO_NONCE_LEN];
	uint8_t		pubkey[PROTO_KEY_LEN];		/* NEW only */
	uint32_t	guest_cid;			/* NEW only */
	uint32_t	guest_port;			/* NEW only */
	char		host[PROTO_HOST_MAX + 1];	/* NEW only */
	uint16_t	service;			/* NEW only */
	char		name[PROTO_NAME_MAX + 1];	/* NEW only */
	uint32_t	window;				/* NEW, version 5 */
	uint64_t	next;				/* RESUME_PROOF only */
	uint8_t		mac[PROTO_MAC_LEN];		/* RESUME_PROOF only */
};

/*
 * WELCOME: u32 magic | u16 version | u16 0 | u64 sid | nonce | pubkey
 * and from version 5 on the server's window: u32 window.  Each end then
 * sends at most the smaller of the two windows unacknowledged.
 */
struct proto_welcome {
	uint16_t	version;
	uint64_t	sid;
	uint8_t		nonce[PROTO_NONCE_LEN];
	uint8_t		pubkey[PROTO_KEY_LEN];
	uint32_t	window;				/* version 5 */
};

/* CHALLENGE: nonce[32] */
struct proto_challenge {
	uint8_t		nonce[PROTO_NONCE_LEN];
};

/* PROOF: u64 client next expected offset | mac[32] */
struct proto_proof {
	uint64_t	next;
	uint8_t		mac[PROTO_MAC_LEN];
};

/* ERROR and CLOSE: u16 code | u8 reasonlen | reason */
struct proto_error {
	uint16_t	code;
	char		reason[PROTO_REASON_MAX + 1];
};

/* RESUMED, ACK, FIN, PING, PONG, RELEASE: a single u64. */

#endif
