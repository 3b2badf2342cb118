/*
 * ingress.c -- the guest side: each accepted vSocket connection (or
 * ESX's telnet connection for a network serial port) is the client end
 * of a resumable session whose legs go wherever the target says at the
 * moment they are opened.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "admit.h"
#include "ctl.h"
#include "log.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"

/*
 * Where a leg goes now.  A session whose leg broke while a vMotion is
 * under way tries the hinted host first, then the target's,
 * alternately (target.c): the switchover breaks every leg, and the
 * appliance is already there, long before vCenter says so.
 */
static const struct xaddr *
ingress_route_addr(struct sess *s, struct relay *r, const char **desc,
    const char **host)
{
	const struct xaddr	*a = NULL;

	if (sess_resume_tries(s) % 2 == 1)
		a = target_route_hint(r->target, desc, host);
	if (a == NULL)
		a = target_route(r->target, desc, host);
	return (a);
}

/* The address of a session's next leg, for a leg kept from another. */
static const char *
ingress_route(struct sess *s, void *arg)
{
	const struct xaddr	*a;
	const char		*desc, *host;

	a = ingress_route_addr(s, arg, &desc, &host);
	return (a != NULL ? xaddr_str(a) : NULL);
}

/*
 * Open a leg to where ingress_route_addr() says; or wait while another
 * link's TLS handshake to that relay brings a ticket this one resumes.
 */
static int
ingress_connect(struct sess *s, void *arg, struct sess_dial *dial,
    const char **desc)
{
	struct relay		*r = arg;
	const struct xaddr	*a;
	const char		*host;

	if ((a = ingress_route_addr(s, r, desc, &host)) == NULL)
		return (-1);
	return (warm_leg(r->warm, a, host, 1, dial, desc));
}

static void
ingress_event(struct sess *s, enum sess_event ev, const char *reason,
    void *arg)
{
	struct relay	*r = arg;
	char		*src;

	daemon_sess_event(&r->d, s, ev, reason);
	/* Resumed where the hint said: the appliance has moved there. */
	if (ev == SESS_EV_RESUMED && target_hint_seen(r->target, reason))
		control_target_changed(r, "hint");
	if (sess_service(s) == PROTO_SVC_SERIAL)
		pipe_sess_event(r->pipes, s, ev);
	if (ev == SESS_EV_CLOSED && (src = sess_get_data(s)) != NULL) {
		admit_release(r->guests, src);
		sess_set_data(s, NULL);
		free(src);
	}
}

/*
 * A session got through after failed tries: whatever waited for the way
 * goes now, not only this relay's sessions backing off but the legs it
 * parked for guest agents (fwd_wake, through the daemon's wake).  On a
 * plaintext mesh nothing else says a relay is back.
 */
static void
ingress_way_open(struct sess *s, void *arg)
{
	struct relay	*r = arg;

	daemon_wake(&r->d, 1);
}

/* The ingress end of every session on this relay. */
void
ingress_init(struct relay *r)
{
	static const struct sess_ops	ops = {
		.connect = ingress_connect,
		.route = ingress_route,
		.event = ingress_event,
		.way_open = ingress_way_open,
	};
	struct sess_conf		sc;

	daemon_sessconf_apply(&r->conf.sess, &sc);
	r->d.sessions = sess_ctx_new(r->d.base, SESS_CLIENT, &sc, &ops, r);
}

/*
 * A connection for a new session of SERVICE on listener L: a guest
 * over vSocket (identified by its CID and port), or ESX's telnet for a
 * network serial port (by its address; the VM names itself inside).
 */
static void
ingress_start(struct relay *r, struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, enum proto_service service)
{
	struct xaddr_peer	 peer;
	struct sess_guest	 sg = { 0 };
	struct sess		*s;
	char			 src[ADMIT_SOURCE_MAX];
	size_t			 i;
	int			 e;

	xaddr_peer_describe(sa, salen, &peer);
	/* A guest's identity is its CID: no CID, no session. */
	for (i = 0; i < r->nguest; i++) {
		if (r->guest_l[i] == l &&
		    xaddr_type(r->guest_a[i]) == XADDR_VSOCK &&
		    peer.type != XADDR_VSOCK) {
			daemon_refused(&r->d, "guest=%s refused: not a "
			    "vSocket peer", peer.str);
			close(fd);
			return;
		}
	}
	admit_source(&peer, src, sizeof(src));
	if ((e = admit_take(r->guests, src)) != ADMIT_OK) {
		daemon_refused(&r->d, "%s=%s refused: %s (%zu sessions)",
		    service == PROTO_SVC_VSPC ? "vspc" : "guest", peer.str,
		    admit_strerror(e), admit_count(r->guests, src));
		close(fd);
		return;
	}
	sg.host = r->conf.host;
	sg.cid = peer.type == XADDR_VSOCK ? peer.cid : 0;
	sg.port = peer.port;
	sg.service = service;
	if ((s = daemon_client(&r->d, fd, &peer, r->conf.sess.max_sessions,
	    &sg)) == NULL) {
		admit_release(r->guests, src);
		return;
	}
	sess_set_data(s, xstrdup(src));
	r->accepted++;
}

/* A guest connected. */
void
ingress_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	ingress_start(arg, l, fd, sa, salen, PROTO_SVC_STREAM);
}

/* ESX connected a network serial port (telnet) to the vSPC. */
void
ingress_vspc_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	ingress_start(arg, l, fd, sa, salen, PROTO_SVC_VSPC);
}
