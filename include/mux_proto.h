/*
 * mux_proto.h -- mesh links, wire version 1: many byte streams (mesh
 * legs) between two relays over one connection.
 *
 * Don't forget to bump MUX_VERSION if anything in this file changes
 * on the wire.  docs/protocol.md ("Mesh links") is the prose version.
 *
 * Each end first sends an 8-byte preamble, then frames.  The preamble:
 *
 *	"VRMX" | u32 version
 *
 * ('V' is no session frame type, so a relay tells a mesh link from a
 * session's leg by its first byte.)  Every frame is a 12-byte header,
 * integers big-endian, and for DATA its payload:
 *
 *	u8 type | u8 flags (0) | u16 reserved (0) | u32 stream | u32 arg
 *
 * Only the end that dialled the link opens streams, with ids 1, 2, 3...
 * in order.  Each stream is a reliable byte stream each way, closed by
 * a FIN from each end or an RST from either.  Each end may have at
 * most MUX_WINDOW bytes of DATA on a stream that the other has not
 * given back with WINDOW: the receiver gives bytes back once its
 * stream's socket has taken them.
 */
#ifndef VRELAY_MUX_PROTO_H
#define VRELAY_MUX_PROTO_H

#define MUX_VERSION		1
#define MUX_MAGIC		0x56524d58U	/* "VRMX" */
#define MUX_PREAMBLE_LEN	8
#define MUX_HDR_LEN		12
#define MUX_DATA_MAX		(64 * 1024)	/* payload bytes per DATA */
#define MUX_WINDOW		(512 * 1024)	/* per stream and direction */

enum mux_type {
	MUX_OPEN = 1,		/* dialler: a new stream (arg 0) */
	MUX_DATA = 2,		/* arg: payload length, 1..MUX_DATA_MAX */
	MUX_WINDOW_UPDATE = 3,	/* arg: bytes given back, > 0 */
	MUX_FIN = 4,		/* no more DATA this way (arg 0) */
	MUX_RST = 5,		/* the stream is gone both ways (arg 0) */
	MUX_PING = 6,		/* stream 0, arg: a token */
	MUX_PONG = 7,		/* stream 0, arg: the token echoed */
};
#define MUX_TYPE_MAX		MUX_PONG

#endif /* VRELAY_MUX_PROTO_H */
