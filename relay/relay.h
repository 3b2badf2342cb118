/*
 * relay.h -- vrelay, the per-host relay agent.
 *
 * Two roles in one daemon.  As the ingress relay it accepts guests on
 * vSocket (--guest-listen) and is the client end of their sessions
 * (ingress.c via common/sess.c).  As the relay on the appliance's host
 * it accepts mesh legs from other relays (--mesh-listen) and forwards
 * their bytes opaquely to the appliance endpoint over vSocket (fwd.c).
 * Where to send a session is the target (target.c): first from flags,
 * then replaced at run time by the locator's pushes (uplink.c, with
 * --locator) or through the status socket.
 */
#ifndef VRELAY_RELAY_H
#define VRELAY_RELAY_H

#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "daemon.h"

struct xaddr;
struct target;
struct fwd_ctx;
struct uplink;
struct warm;
struct admit;
struct pipe_ctx;
struct mesh;
struct sess_dial;
struct bufferevent;
struct evbuffer;

/* How legs to other relays go (--mesh-links). */
enum mesh_mode {
	MESH_PER_SESSION = 0,	/* a connection each */
	MESH_SHARED,		/* streams on one link per relay (mesh.c) */
};

#define RELAY_LISTEN_MAX	16	/* addresses per kind of listener */

struct relay_conf {
	char			*host;
	struct conf_list	 guest_listen;
	struct conf_list	 agent_listen;
	struct conf_list	 vspc_listen;
	struct conf_list	 vmomi_listen;
	char			*vmomi_agent;
	struct conf_list	 pipes;		/* --pipe [listen:]PATH=NAME */
	struct conf_list	 pipe_dirs;	/* --pipe-dir DIR */
	char			*mesh_listen;
	char			*status;
	struct conf_list	 peers;
	char			*appliance_host;
	char			*appliance;
	char			*locator;
	char			*mesh_advertise;
	char			*mesh_links;	/* shared, per-session */
	char			*vsock_dir;
	long long		 vsock_cid;
	int			 debug;
	int			 quiet;
	long long		 max_pending_source;
	long long		 max_per_guest;
	struct daemon_sessconf	 sess;
	struct daemon_tlsconf	 tls;
};

struct relay {
	struct daemon		 d;	/* first: see daemon.h */
	struct relay_conf	 conf;
	struct target		*target;
	struct fwd_ctx		*fwd;
	struct uplink		*uplink;	/* NULL without --locator */
	struct warm		*warm;
	struct mesh		*mesh;
	struct pipe_ctx		*pipes;		/* pipe-backed serial ports */
	struct admit		*pending;	/* mesh legs before TLS is up */
	struct admit		*agents;	/* agent legs before a byte */
	struct admit		*guests;	/* sessions per guest */
	struct evconnlistener	*guest_l[RELAY_LISTEN_MAX];
	struct xaddr		*guest_a[RELAY_LISTEN_MAX];
	size_t			 nguest;
	struct evconnlistener	*agent_l[RELAY_LISTEN_MAX];
	struct xaddr		*agent_a[RELAY_LISTEN_MAX];
	size_t			 nagent;
	struct evconnlistener	*vspc_l[RELAY_LISTEN_MAX];
	struct xaddr		*vspc_a[RELAY_LISTEN_MAX];
	size_t			 nvspc;
	struct evconnlistener	*vmomi_l[RELAY_LISTEN_MAX];
	struct xaddr		*vmomi_a[RELAY_LISTEN_MAX];
	size_t			 nvmomi;
	struct xaddr		*vmomi_agent;	/* --vmomi-agent */
	struct evconnlistener	*mesh_l;
	struct xaddr		*mesh_a;
	struct xaddr		*adv_a;		/* --mesh-advertise */
	uint64_t		 accepted;
};

/* target.c */
int		 target_host_ok(const char *);
struct target	*target_new(const char *);
void		 target_free(struct target *);
/*
 * Replace the target from a JSON object; error text in ERR.  NUMERIC:
 * tcp host names are refused, not looked up (a push, set-target: the
 * loop never waits on DNS); startup's configuration resolves them.
 */
int		 target_set(struct target *, json_t *, int, char *, size_t);
/* set-target's CLI: host names in the request made numeric. */
int		 target_resolve(json_t *, char *, size_t);
/*
 * Where a new leg should go now; NULL with *why if nowhere.  *host is
 * the appliance host whose relay that is, or NULL for the appliance
 * endpoint itself (local delivery).
 */
const struct xaddr *target_route(struct target *, const char **,
		    const char **);
/*
 * Where a resuming leg goes if the appliance is already where a live
 * migration hint says (when that is not target_route()), else NULL.
 */
const struct xaddr *target_route_hint(struct target *, const char **,
		    const char **);
/*
 * The appliance address if this host runs it (mesh legs are forwarded
 * into it), or a live hint says the appliance is coming here.
 */
const struct xaddr *target_local_appliance(struct target *);
/* A vMotion heads for HOST (relay RELAY or ""). */
int		 target_hint(struct target *, const char *, const char *,
		    char *, size_t);
/* vCenter says the move to HOST is done; 1 if that sees the hint. */
int		 target_hint_done(struct target *, const char *);
/* The target has the appliance on HOST already: "moving there" is late. */
int		 target_hint_late(const struct target *, const char *);
void		 target_hint_clear(struct target *);
int		 target_hint_failed(struct target *);
/* A live, unseen hint moves the appliance to or from this host. */
int		 target_hint_moving(const struct target *);
/* A session resumed through ROUTE; 1 if that confirms the hint. */
int		 target_hint_seen(struct target *, const char *);
/* The mesh address of a live hint's relay, or NULL. */
const struct xaddr *target_hint_mesh(struct target *);
/* The mesh address of HOST's relay, or NULL. */
const struct xaddr *target_mesh(struct target *, const char *);
uint64_t	 target_epoch(const struct target *);
json_t		*target_json(const struct target *);

/* ingress.c */
void		 ingress_init(struct relay *);
void		 ingress_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
void		 ingress_vspc_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);

/* mesh.c */
struct mesh	*mesh_new(struct relay *, enum mesh_mode);
void		 mesh_free(struct mesh *);
const char	*mesh_prepare(struct mesh *, const struct xaddr *,
		    const char *);
int		 mesh_leg(struct mesh *, const struct xaddr *, const char *,
		    int, struct sess_dial *, const char **);
void		 mesh_accept(struct mesh *, struct bufferevent *,
		    const char *);
int		 mesh_adopt(struct mesh *, uint64_t, uint32_t, int,
		    struct evbuffer *);
size_t		 mesh_reset_adopted(struct mesh *);
json_t		*mesh_json(const struct mesh *);

/* fwd.c */
struct fwd_ctx	*fwd_new(struct relay *);
void		 fwd_free(struct fwd_ctx *);
int		 fwd_stream(struct fwd_ctx *, int, const char *, uint64_t,
		    uint32_t);
void		 fwd_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
void		 fwd_agent_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
/* A vmomi leg (vappliance): attested, then to the locator's agent. */
void		 fwd_vmomi_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
/* The target moved: close forwards whose far side is now wrong. */
void		 fwd_retarget(struct fwd_ctx *);
/* A relay proved up: parked legs try their route again now. */
void		 fwd_wake(struct fwd_ctx *);
size_t		 fwd_agents(const struct fwd_ctx *);
/* Agent forwards now open whose far side is not DEST. */
size_t		 fwd_agents_elsewhere(const struct fwd_ctx *, const char *);
json_t		*fwd_json(const struct fwd_ctx *);

/* warm.c */
struct warm	*warm_new(struct relay *);
void		 warm_free(struct warm *);
/*
 * Pre-connect to HOST's relay at ADDR until WANT are pooled, or bring
 * the mesh link to it up (its state in *LINK, else NULL).
 */
size_t		 warm_hint(struct warm *, const char *, const struct xaddr *,
		    size_t, const char **);
/* Legs now go to ROUTE: stop pre-warming towards it. */
void		 warm_settle(struct warm *, const char *);
/* A migration failed: stop pre-warming for it. */
void		 warm_cancel(struct warm *);
/* Links to a relay may go after a TLS probe: open what waited. */
void		 warm_wake(struct warm *);
/*
 * A leg to A, HOST's relay (NULL: the appliance), pooled if possible,
 * in *DIAL (a plain socket, up if pooled, a TLS bufferevent, or with
 * CHAN a mesh link's stream as an xsock): 0 with
 * *why naming A, or -1 with *why; 1 with *why when it should wait for
 * another link's TLS handshake to HOST, or for the mesh link to it (the
 * daemon's wake says when).
 */
int		 warm_leg(struct warm *, const struct xaddr *, const char *,
		    int, struct sess_dial *, const char **);
json_t		*warm_json(const struct warm *);

/* pipe.c */
/*
 * Pipe-backed serial ports from --pipe and --pipe-dir, each carried as
 * an ingress session (PROTO_SVC_SERIAL, its VM's name); fatal on a bad
 * flag (startup only).  Connects and rescans from the event loop.
 */
struct pipe_ctx	*pipe_new(struct relay *);
/* Stop listening and watching; NULL is fine.  Sessions go on. */
void		 pipe_free(struct pipe_ctx *);
/* A serial session's event (from ingress.c's): its pipe follows it. */
void		 pipe_sess_event(struct pipe_ctx *, struct sess *,
		    enum sess_event);
/* The "pipes" array of vrelay status (new reference). */
json_t		*pipe_json(const struct pipe_ctx *);
/* Sockets skipped in --pipe-dir directories, and why (new ref). */
json_t		*pipe_skipped_json(const struct pipe_ctx *);

/* control.c */
void		 control_init(struct relay *);
/* The target moved: log, broadcast (SOURCE: "locator", "control"). */
void		 control_target_changed(struct relay *, const char *);

/* uplink.c */
enum uplink_state {
	UPLINK_BACKOFF = 1,	/* waiting to (re)connect */
	UPLINK_CONNECTING,	/* connect() in progress */
	UPLINK_HELLO,		/* HELLO sent, waiting for WELCOME */
	UPLINK_UP,		/* welcomed: TARGETs are applied */
};
/*
 * Keep a connection to the locator at ADDR, registering host
 * r->conf.host with mesh address MESH ("" if none); fatal on a bad
 * address (startup only).  Connects from the event loop.
 */
struct uplink	*uplink_new(struct relay *, const char *, const char *);
/* Close the connection and free; NULL is fine. */
void		 uplink_free(struct uplink *);
const char	*uplink_strstate(enum uplink_state);
/* The "uplink" object of vrelay status (new reference). */
json_t		*uplink_json(const struct uplink *);
/* The vmomi agent the locator's WELCOME named, or NULL; NULL is fine. */
const struct xaddr *uplink_vmomi(const struct uplink *);

#endif
