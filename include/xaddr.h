/*
 * xaddr.h -- transport addresses: tcp://HOST:PORT (IPv4 and IPv6, the
 * latter as tcp://[::1]:PORT), unix:PATH and vsock://CID:PORT (CID
 * "any" for listeners).
 *
 * vsock is real AF_VSOCK unless emulation is on (xaddr_vsock_emulate):
 * then vsock addresses are unix sockets inside one directory per
 * simulated ESX host.  A listener on vsock://any:P binds DIR/CID.P
 * (CID is this process's emulated CID); a connecting socket first
 * binds a name carrying CID.PORT.PID.SEQ so the listener learns the
 * peer's CID and port from accept(), as with AF_VSOCK: an abstract
 * name tagged with DIR's device and inode when DIR is owner-only, else
 * the file DIR/.c/CID.PORT.PID.SEQ (unlinked once connected).
 * docs/transports.md has more.
 *
 * Functions return XADDR_OK or a negative XADDR_E_* code; on
 * XADDR_E_SYSTEM errno says why.  Out-parameters are cleared first.
 */
#ifndef VRELAY_XADDR_H
#define VRELAY_XADDR_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#define XADDR_OK		0
#define XADDR_E_SYNTAX		(-1)	/* not a valid address string */
#define XADDR_E_RESOLVE		(-2)	/* host name did not resolve */
#define XADDR_E_SYSTEM		(-3)	/* a system call failed: errno */
#define XADDR_E_INUSE		(-4)	/* unix listener path is live */
#define XADDR_E_TOOLONG		(-5)	/* unix path too long */
#define XADDR_E_NOVSOCK		(-6)	/* no AF_VSOCK on this system */

#define XADDR_CID_ANY		0xffffffffU
#define XADDR_CID_HOST		2U	/* the ESX host, as guests see it */
#define XADDR_PEER_STRLEN	160

enum xaddr_type {
	XADDR_TCP = 1,
	XADDR_UNIX,
	XADDR_VSOCK,
};

struct xaddr;

/* What accept() told us about a peer. */
struct xaddr_peer {
	enum xaddr_type	type;
	uint32_t	cid;	/* vsock only, else 0 */
	uint32_t	port;	/* tcp and vsock */
	char		str[XADDR_PEER_STRLEN];	/* "vsock://5:1234" ... */
};

const char	*xaddr_strerror(int);
/* strerror(errno) for XADDR_E_SYSTEM, else xaddr_strerror(). */
const char	*xaddr_why(int);

/* Parse (and for tcp resolve, blocking) STR into a new address. */
int		 xaddr_parse(const char *, struct xaddr **);
/* The same, but a tcp host name is refused, never looked up. */
int		 xaddr_parse_numeric(const char *, struct xaddr **);
/* Syntax only: never resolves a name (for addresses from peers). */
int		 xaddr_check(const char *);
void		 xaddr_free(struct xaddr *);
struct xaddr	*xaddr_dup(const struct xaddr *);
enum xaddr_type	 xaddr_type(const struct xaddr *);
/* The canonical string form, e.g. "tcp://[::1]:7000". */
const char	*xaddr_str(const struct xaddr *);
uint32_t	 xaddr_cid(const struct xaddr *);	/* vsock only */
uint32_t	 xaddr_port(const struct xaddr *);	/* tcp, vsock */
const char	*xaddr_path(const struct xaddr *);	/* unix only */
int		 xaddr_equal(const struct xaddr *, const struct xaddr *);
/* A tcp address on 127.0.0.0/8 or ::1 (this machine only)? */
int		 xaddr_loopback(const struct xaddr *);

/*
 * Emulate vsock inside DIR (created if missing) with this process as
 * CID.  DIR NULL turns emulation off (real AF_VSOCK).
 */
int		 xaddr_vsock_emulate(const char *, uint32_t);
int		 xaddr_vsock_emulated(void);
const char	*xaddr_vsock_dir(void);
uint32_t	 xaddr_vsock_cid(void);

/*
 * A non-blocking, close-on-exec listening socket.  A unix path is
 * removed first only if nothing answers on it (a stale socket).
 */
int		 xaddr_listen(const struct xaddr *, int, int *);
/* Remove what xaddr_listen created on disk (unix and emulated vsock). */
void		 xaddr_unlisten(const struct xaddr *);

/*
 * A non-blocking socket with connect() started.  XADDR_OK means
 * connected or in progress: wait for writability (libevent:
 * bufferevent_socket_connect(bev, NULL, 0)) and read SO_ERROR, unless
 * the last argument (may be NULL) says it connected at once.
 */
int		 xaddr_connect(const struct xaddr *, int *, int *);

/* Describe an accepted peer from accept()'s address. */
void		 xaddr_peer_describe(const struct sockaddr *, socklen_t,
		    struct xaddr_peer *);

/* Socket options for data legs: TCP_NODELAY where it applies. */
void		 xaddr_tune(int, enum xaddr_type);
/* The next close() of FD resets the connection (SO_LINGER {1, 0}). */
void		 xaddr_reset(int);
/*
 * On TCP, give up on the connection once sent data has gone
 * unacknowledged for MS (TCP_USER_TIMEOUT); a no-op elsewhere.
 */
void		 xaddr_dead_after(int, long long);
/*
 * Whether FD's peer has stopped sending (shut down or closed) or the
 * socket failed, bytes still unread or not: 1, else 0.  Never reads.
 */
int		 xaddr_hungup(int);

#endif
