/*
 * ingress.c -- the guest side: each accepted vSocket connection is the
 * client end of a resumable session whose legs go wherever the target
 * says at the moment they are opened.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "ctl.h"
#include "log.h"
#include "relay.h"
#include "xaddr.h"

/* Open a leg to the current target. */
static struct bufferevent *
ingress_connect(struct sess *s, void *arg, const char **desc)
{
	struct relay		*r = arg;
	const struct xaddr	*a;
	int			 fd, e;

	if ((a = target_route(r->target, desc)) == NULL)
		return (NULL);
	if ((e = warm_connect(r->warm, a, &fd)) != XADDR_OK) {
		*desc = xaddr_why(e);
		return (NULL);
	}
	return (daemon_leg(&r->d, fd, a, desc));
}

static void
ingress_event(struct sess *s, enum sess_event ev, const char *reason,
    void *arg)
{
	struct relay	*r = arg;

	daemon_sess_event(&r->d, s, ev, reason);
}

/* The ingress end of every session on this relay. */
void
ingress_init(struct relay *r)
{
	static const struct sess_ops	ops = {
		.connect = ingress_connect,
		.event = ingress_event,
	};
	struct sess_conf		sc;

	daemon_sessconf_apply(&r->conf.sess, &sc);
	r->d.sessions = sess_ctx_new(r->d.base, SESS_CLIENT, &sc, &ops, r);
}

/* A guest connected: its identity is its vSocket CID and port. */
void
ingress_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct relay		*r = arg;
	struct xaddr_peer	 peer;
	size_t			 i;

	xaddr_peer_describe(sa, salen, &peer);
	/* A guest's identity is its CID: no CID, no session. */
	for (i = 0; i < r->nguest; i++) {
		if (r->guest_l[i] == l &&
		    xaddr_type(r->guest_a[i]) == XADDR_VSOCK &&
		    peer.type != XADDR_VSOCK) {
			log_warnx("guest=%s refused: not a vSocket peer",
			    peer.str);
			close(fd);
			return;
		}
	}
	if (daemon_client(&r->d, fd, peer.str, r->conf.sess.max_sessions,
	    r->conf.host, peer.cid, peer.port) != NULL)
		r->accepted++;
}
