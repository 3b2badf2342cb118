/*
 * sess.h -- one end of a resumable session (docs/protocol.md).
 *
 * A session joins a local byte stream (the guest's connection on the
 * ingress relay, the backend's on the appliance endpoint) to the far
 * end through a "leg": whatever mesh connection currently carries the
 * session's frames.  Legs may break at any time; the session outlives
 * them for the hold time, and when a new leg authenticates both ends
 * replay what the other has not received, so the local streams see
 * every byte exactly once and in order.
 *
 * The client end (ingress) opens and re-opens legs through ops->connect
 * with backoff; the server end (appliance) takes legs as they arrive
 * (sess_accept) and matches resumes to sessions by id.  A session is
 * freed by this module after its SESS_EV_CLOSED event, outside the
 * callback that closed it; owners must drop their pointer then.
 */
#ifndef VRELAY_SESS_H
#define VRELAY_SESS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "proto.h"

struct bufferevent;
struct event_base;

struct sess;
struct sess_ctx;
struct xsock;

enum sess_role {
	SESS_CLIENT = 1,	/* ingress end: sends HELLO */
	SESS_SERVER,		/* appliance end: answers it */
};

enum sess_state {
	SESS_CONNECTING = 1,	/* client: no leg yet, first connect */
	SESS_HANDSHAKE,		/* a leg is up, HELLO/resume in flight */
	SESS_ESTABLISHED,	/* data flows */
	SESS_DETACHED,		/* leg lost, waiting for one within hold */
	SESS_CLOSED,		/* done or aborted; about to be freed */
};

enum sess_event {
	SESS_EV_OPEN = 1,	/* established for the first time */
	SESS_EV_DETACHED,	/* the leg broke; reason says why */
	SESS_EV_RESUMED,	/* a new leg took over; see resume_ms */
	SESS_EV_CLOSED,		/* the end; reason says why */
	SESS_EV_STATE,		/* state change; reason is "old -> new" */
};

struct sess_conf {
	size_t		replay_max;	/* our window: unacknowledged bytes
					   held, at least PROTO_WINDOW_MIN */
	long long	hold_ms;	/* detached longer -> closed */
	long long	handshake_ms;	/* per-leg handshake deadline */
	long long	keepalive_ms;	/* PING period; 3 missed = dead */
	size_t		max_sessions;	/* server: refuse more */
	size_t		max_pending;	/* server: legs in handshake */
	size_t		idle_max;	/* legs kept between sessions; 0:
					   none (server: no RELEASE) */
};

/*
 * A leg sess_ops.connect started: a plain socket FD (its connect still
 * under way unless UP), or for TLS a bufferevent BEV on which
 * bufferevent_socket_connect() was called, so that it reports
 * BEV_EVENT_CONNECTED.  The session layer owns either from then on.
 * RETIRE, if set, is the bufferevent that watched FD until now (a
 * pooled leg): the session layer frees it, leaving FD open, once its
 * own event watches FD, so FD stays in epoll (sess_dial_retire()).
 */
struct sess_dial {
	int			 fd;		/* -1 with BEV or X */
	int			 up;		/* FD is connected already */
	struct bufferevent	*bev;		/* NULL with FD */
	struct xsock		*x;		/* a stream in process (a mesh
						   link's), connected */
	int			 tuned;		/* keepalive options set */
	struct bufferevent	*retire;	/* on FD: free once watched */
};

/* Free DIAL's RETIRE without closing its socket; NULL is fine. */
void	sess_dial_retire(struct sess_dial *);

struct sess_ops {
	/*
	 * Client: start a new leg for S in *DIAL and set *desc to the
	 * target it goes to, and return 0; or return -1 with *desc
	 * saying why there is no target now (retried with backoff); or
	 * 1 with *desc saying what S waits for: S tries again at
	 * sess_ctx_wake() (the same target), or after the backoff.
	 */
	int	(*connect)(struct sess *, void *, struct sess_dial *,
	    const char **);
	/*
	 * Client, optional: the address (the *desc connect would give)
	 * that S's next leg goes to now, or NULL.  A leg to it that the
	 * server released after an earlier session carries S instead of
	 * a new connect.
	 */
	const char *(*route)(struct sess *, void *);
	/*
	 * Server: a new session was admitted; connect its local end and
	 * call sess_set_local().  Nonzero refuses it with *reason, and
	 * with that PROTO_E_* code if it is one (else PROTO_E_BACKEND).
	 */
	int	(*open)(struct sess *, void *, const char **);
	/* Lifecycle events; reason is NULL for SESS_EV_OPEN. */
	void	(*event)(struct sess *, enum sess_event, const char *,
		    void *);
	/* Server: a leg was refused before it belonged to a session. */
	void	(*refused)(const char *, const char *, void *);
	/*
	 * Server, optional: the leg named PEER is about to carry session
	 * S, as the leg that opens it (RESUME 0, just before ops->open)
	 * or as a resume whose proof verified (RESUME 1).  Nonzero
	 * refuses the leg with that PROTO_E_* code and *reason; a
	 * refused resume leaves the session as it was.
	 */
	int	(*admit)(struct sess *, const char *, int, void *,
		    const char **);
	/*
	 * Client, optional: S resumed after failed tries, so the way to
	 * its target is open again (a relay restarted, the appliance
	 * arrived); at most once per 25 ms.  Without it the sessions of
	 * S's context that back off try now (sess_ctx_wake); with it the
	 * owner wakes what it holds that waited too (daemon_wake).
	 */
	void	(*way_open)(struct sess *, void *);
};

struct sess_ctx	*sess_ctx_new(struct event_base *, enum sess_role,
		    const struct sess_conf *, const struct sess_ops *,
		    void *);
/* Close every session (PROTO_E_SHUTDOWN) and free; NULL is fine. */
void		 sess_ctx_free(struct sess_ctx *);
size_t		 sess_ctx_count(const struct sess_ctx *);
/* Client: sessions without a leg to ROUTE (none, or one elsewhere). */
size_t		 sess_ctx_count_elsewhere(struct sess_ctx *, const char *);
/* Count sessions by state into COUNTS[SESS_CLOSED + 1]. */
void		 sess_ctx_states(struct sess_ctx *, size_t *);
/* JSON array of every session (new reference). */
json_t		*sess_ctx_json(struct sess_ctx *);
/*
 * Client: a relay proved up.  Sessions waiting to try a leg (their
 * connect said wait, or failed) try now, not at their backoff's end,
 * and their backoff starts over.  NULL is fine.
 */
void		 sess_ctx_wake(struct sess_ctx *);
/* Find a session by id (status commands); NULL if gone. */
struct sess	*sess_ctx_find(struct sess_ctx *, uint64_t);

/* Who a session serves and what it carries: the HELLO NEW fields. */
struct sess_guest {
	const char		*host;		/* the ingress relay's host */
	uint32_t		 cid;		/* vSocket CID, or 0 */
	uint32_t		 port;		/* vSocket or TCP port */
	enum proto_service	 service;
	const char		*name;		/* a serial VM, or NULL */
};

/*
 * Client: a new session for an accepted connection FD of guest G (its
 * strings are copied).  It connects at once.
 */
struct sess	*sess_client_new(struct sess_ctx *, int,
		    const struct sess_guest *);
/*
 * Client: the target moved to ROUTE (canonical address or NULL); legs
 * to another address, up or in handshake, are dropped and resumed
 * there.
 */
void		 sess_ctx_retarget(struct sess_ctx *, const char *);
/*
 * Reset every leg whose peer name starts with PREFIX (NULL: all), as a
 * vMotion resets vSocket streams; sessions detach and resume.
 */
size_t		 sess_ctx_reset_legs(struct sess_ctx *, const char *,
		    const char *);
/* Resumes, bytes replayed, max and mean resume ms (new reference). */
json_t		*sess_ctx_stats(const struct sess_ctx *);

/*
 * Server: take an accepted leg (a bufferevent, so a TLS filter can sit
 * under it), with whatever its input already holds (the first frames,
 * read ahead by the caller); PEER names it in logs.  The bufferevent is
 * the session layer's now, and a plain one is freed at once (its
 * socket and buffers move to an xsock).
 */
void		 sess_accept(struct sess_ctx *, struct bufferevent *,
		    const char *);
/*
 * Server, from ops->open: the local end, connecting or connected.
 * PRE (LEN bytes, e.g. a PROXY v2 header) is written before any data.
 */
void		 sess_set_local(struct sess *, int, const void *, size_t);

/* Abort the session on both ends with CODE and REASON. */
void		 sess_close(struct sess *, int, const char *);

uint64_t	 sess_id(const struct sess *);
const char	*sess_idstr(const struct sess *);
const char	*sess_host(const struct sess *);
uint32_t	 sess_cid(const struct sess *);
uint32_t	 sess_port(const struct sess *);
enum proto_service sess_service(const struct sess *);
/* A serial port's VM name ("" if none). */
const char	*sess_name(const struct sess *);
/* "stream", "vspc", "serial", "vmomi". */
const char	*sess_strservice(enum proto_service);
enum sess_state	 sess_state(const struct sess *);
const char	*sess_strstate(enum sess_state);
long long	 sess_resume_ms(const struct sess *);
uint64_t	 sess_resume_replay(const struct sess *);
/*
 * Client: how many legs were tried since the session's leg last broke,
 * the one being opened included; 0 before it was ever up.
 */
unsigned	 sess_resume_tries(const struct sess *);
void		*sess_get_data(const struct sess *);
void		 sess_set_data(struct sess *, void *);
/* One session as a JSON object (new reference). */
json_t		*sess_json(const struct sess *);

#endif
