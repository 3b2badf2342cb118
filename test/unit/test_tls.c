/*
 * test_tls.c -- unit tests for mutual TLS (tls.h): loading and checking
 * a daemon's identity, and real handshakes over socketpairs with the
 * role and host checks.  Certificates come from deploy/mkcerts.sh.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <jansson.h>

#include "tls.h"
#include "utest.h"

static char	dir[64];

/* path of FILE in the scratch directory (one static buffer per call). */
static const char *
path(const char *file)
{
	static char	buf[4][256];
	static int	i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, file);
	return (buf[i]);
}

/* A CA, relays h1 and h2, a locator; a rogue CA with its own h1. */
static int
setup(void **state)
{
	return (utest_certs(dir, sizeof(dir), "$m -d $d ca; "
	    "$m -d $d relay h1 127.0.0.1 esx1.dc1.example; "
	    "$m -d $d relay h2; $m -d $d locator; $m -d $d/rogue ca; "
	    "$m -d $d/rogue relay h1"));
}

static int
teardown(void **state)
{
	return (utest_certs_rm(dir));
}

/* Every way an identity can be wrong is refused with its own code. */
static void
test_load(void **state)
{
	struct tls	*t = (struct tls *)1;
	json_t		*j;
	char		 detail[300];

	assert_int_equal(tls_new(path("h1.pem"), NULL, path("ca.pem"),
	    TLS_ROLE_RELAY, &t, detail, sizeof(detail)), TLS_E_INCOMPLETE);
	assert_null(t);
	assert_int_equal(tls_new(path("none.pem"), path("h1.key"),
	    path("ca.pem"), TLS_ROLE_RELAY, &t, detail, sizeof(detail)),
	    TLS_E_CERT);
	assert_non_null(strstr(detail, "none.pem"));
	assert_int_equal(chmod(path("h2.key"), 0640), 0);
	assert_int_equal(tls_new(path("h2.pem"), path("h2.key"),
	    path("ca.pem"), TLS_ROLE_RELAY, &t, detail, sizeof(detail)),
	    TLS_E_KEYMODE);
	assert_non_null(strstr(detail, "mode 0640"));
	assert_int_equal(chmod(path("h2.key"), 0600), 0);
	assert_int_equal(tls_new(path("h1.pem"), path("h2.key"),
	    path("ca.pem"), TLS_ROLE_RELAY, &t, detail, sizeof(detail)),
	    TLS_E_MISMATCH);
	assert_int_equal(tls_new(path("rogue/h1.pem"), path("rogue/h1.key"),
	    path("ca.pem"), TLS_ROLE_RELAY, &t, detail, sizeof(detail)),
	    TLS_E_UNTRUSTED);
	assert_int_equal(tls_new(path("h1.pem"), path("h1.key"),
	    path("ca.pem"), TLS_ROLE_LOCATOR, &t, detail, sizeof(detail)),
	    TLS_E_ROLE);
	assert_non_null(strstr(detail, "urn:vrelay:role:locator"));
	assert_int_equal(tls_new(path("h1.pem"), path("h1.key"),
	    path("ca.pem"), TLS_ROLE_RELAY, &t, detail, sizeof(detail)),
	    TLS_OK);
	j = tls_json(t);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(j, "roles"), 0)), "relay");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(j, "hosts"), 0)), "h1");
	assert_int_equal(strlen(json_string_value(json_object_get(j,
	    "sha256"))), 95);
	json_decref(j);
	tls_free(t);
	tls_free(NULL);
	assert_string_equal(tls_strerror(TLS_E_HOST),
	    "peer certificate does not name the host");
}

struct end {
	short	 what;		/* first event seen */
	char	 why[256];
};

static void
end_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct end	*e = arg;
	const char	*why;

	if (e->what != 0)
		return;
	e->what = what;
	if ((why = tls_bev_error(bev)) != NULL)
		strlcpy(e->why, why, sizeof(e->why));
}

/* The role a certificate in the scratch directory was minted with. */
static enum tls_role
own_role(const char *name)
{
	return (strcmp(name, "locator") == 0 ? TLS_ROLE_LOCATOR :
	    TLS_ROLE_RELAY);
}

/* A daemon's TLS identity from certificate NAME in the scratch dir. */
static struct tls *
identity(const char *name)
{
	struct tls	*t;
	char		 pem[64], key[64];

	snprintf(pem, sizeof(pem), "%s.pem", name);
	snprintf(key, sizeof(key), "%s.key", name);
	assert_int_equal(tls_new(path(pem), path(key), path("ca.pem"),
	    own_role(name), &t, NULL, 0), TLS_OK);
	return (t);
}

/* Hosts a peer may claim, checked against the client's certificate. */
static const char *const check_hosts[] = {
	"h1", "esx1.dc1.example", "127.0.0.1",		/* its names */
	".dc1.example", ".example", "dc1.example",	/* not its names */
	"127.0.0.2", "*.dc1.example", "relay h1",
};
#define NCHECKS	(sizeof(check_hosts) / sizeof(check_hosts[0]))
static int	check_res[NCHECKS];

/*
 * One link between server TS and client TC over a socketpair: the
 * client demands SROLE (and HOST) of the server, the server CROLE of
 * the client.  Fills *C and *S with each end's first event; *SUBJ and
 * *HOK (if not NULL) with what the server learnt of the client.  The
 * loop runs on a little after both ends are up, so a ticket the server
 * sends reaches the client.
 */
static void
link_up(struct tls *ts, enum tls_role srole, struct tls *tc,
    enum tls_role crole, const char *host, struct end *c, struct end *s,
    char **subj, int *hok)
{
	struct event_base	*base = event_base_new();
	struct bufferevent	*bs, *bc;
	struct timeval		 tv = { 0, 10000 };
	int			 sv[2], i, after = 5;

	memset(c, 0, sizeof(*c));
	memset(s, 0, sizeof(*s));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	bs = tls_wrap(ts, base, sv[0], 1, crole, NULL);
	bc = tls_wrap(tc, base, sv[1], 0, srole, host);
	assert_non_null(bs);
	assert_non_null(bc);
	assert_true(tls_bev_is_tls(bs));
	bufferevent_setcb(bs, NULL, NULL, end_eventcb, s);
	bufferevent_setcb(bc, NULL, NULL, end_eventcb, c);
	bufferevent_enable(bs, EV_READ | EV_WRITE);
	bufferevent_enable(bc, EV_READ | EV_WRITE);
	for (i = 0; i < 500 && after > 0; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		if (c->what != 0 && s->what != 0)
			after--;
	}
	if (subj != NULL)
		*subj = strdup(tls_bev_peer(bs));
	if (hok != NULL) {
		*hok = tls_bev_check_host(bs, "h1");
		for (i = 0; i < (int)NCHECKS; i++)
			check_res[i] = tls_bev_check_host(bs, check_hosts[i]);
	}
	bufferevent_free(bs);
	bufferevent_free(bc);
	event_base_free(base);
}

/* A handshake between fresh identities SRV and CLI; see link_up(). */
static void
handshake(const char *srv, enum tls_role srole, const char *cli,
    enum tls_role crole, const char *host, struct end *c, struct end *s,
    char **subj, int *hok)
{
	struct tls	*ts = identity(srv), *tc = identity(cli);

	link_up(ts, srole, tc, crole, host, c, s, subj, hok);
	tls_free(ts);
	tls_free(tc);
}

/*
 * A counter of tls_json(T): "full", "resumed", "tickets_held" or
 * "sessions_kept".
 */
static long long
count(struct tls *t, const char *what)
{
	json_t		*o = tls_json(t), *v;
	long long	 n;

	v = json_object_get(o, what);
	if (v == NULL)
		v = json_object_get(json_object_get(o, "handshakes"), what);
	assert_non_null(v);
	n = json_integer_value(v);
	json_decref(o);
	return (n);
}

/* Right roles and host: both ends connect; the server sees who. */
static void
test_handshake_ok(void **state)
{
	struct end	c, s;
	char		*subj;
	int		 hok;
	size_t		 i;

	handshake("h2", TLS_ROLE_RELAY, "h1", TLS_ROLE_RELAY, "h2", &c, &s,
	    &subj, &hok);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(s.what, BEV_EVENT_CONNECTED);
	assert_non_null(strstr(subj, "CN=h1"));
	assert_int_equal(hok, TLS_OK);
	free(subj);
	/* Only the names the certificate holds, matched as they are. */
	for (i = 0; i < NCHECKS; i++)
		if (check_res[i] != (i < 3 ? TLS_OK : TLS_E_HOST))
			fail_msg("host \"%s\": %d", check_hosts[i],
			    check_res[i]);
	/* The relay h2's certificate does not name h1. */
	handshake("h1", TLS_ROLE_RELAY, "h2", TLS_ROLE_RELAY, "h1", &c, &s,
	    NULL, &hok);
	assert_int_equal(s.what, BEV_EVENT_CONNECTED);
	assert_int_equal(hok, TLS_E_HOST);
	/* The locator, as a relay's uplink sees it. */
	handshake("locator", TLS_ROLE_LOCATOR, "h1", TLS_ROLE_RELAY, NULL,
	    &c, &s, NULL, NULL);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
}

/* A peer without the role the other end wants: refused, and said so. */
static void
test_handshake_role(void **state)
{
	struct end	c, s;

	/* A relay posing as the locator. */
	handshake("h2", TLS_ROLE_LOCATOR, "h1", TLS_ROLE_RELAY, NULL, &c, &s,
	    NULL, NULL);
	assert_true(c.what & BEV_EVENT_ERROR);
	assert_string_equal(c.why,
	    "TLS: peer certificate has no role locator");
	assert_false(s.what & BEV_EVENT_CONNECTED);
	/* The locator posing as a relay, towards a relay's mesh listener. */
	handshake("h2", TLS_ROLE_RELAY, "locator", TLS_ROLE_RELAY, NULL, &c,
	    &s, NULL, NULL);
	assert_true(s.what & BEV_EVENT_ERROR);
	assert_string_equal(s.why, "TLS: peer certificate has no role relay");
}

/* The wrong host name: the client refuses, naming the host it wanted. */
static void
test_handshake_host(void **state)
{
	struct end	c, s;

	handshake("h2", TLS_ROLE_RELAY, "h1", TLS_ROLE_RELAY, "h3", &c, &s,
	    NULL, NULL);
	assert_true(c.what & BEV_EVENT_ERROR);
	assert_string_equal(c.why, "TLS: peer certificate does not name h3");
	assert_false(s.what & BEV_EVENT_CONNECTED);
	/* An IP address is checked against the IP SANs. */
	handshake("h1", TLS_ROLE_RELAY, "h2", TLS_ROLE_RELAY, "127.0.0.1",
	    &c, &s, NULL, NULL);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
	handshake("h2", TLS_ROLE_RELAY, "h1", TLS_ROLE_RELAY, "127.0.0.1",
	    &c, &s, NULL, NULL);
	assert_true(c.what & BEV_EVENT_ERROR);
}

/*
 * Resumption where both ends ask for it: the first link is a full
 * handshake and leaves the client a ticket; the next resumes, and the
 * server still knows who the client is.  A ticket is never offered for
 * another host, so the host check still runs; without
 * tls_set_resumable no ticket is sent at all.
 */
static void
test_resume(void **state)
{
	struct tls	*ts = identity("h2"), *tc = identity("h1");
	struct end	 c, s;
	char		*subj;
	int		 hok, i;

	tls_set_resumable(ts, TLS_ROLE_RELAY);
	tls_set_resumable(tc, TLS_ROLE_RELAY);
	assert_false(tls_has_ticket(tc, TLS_ROLE_RELAY, "h2"));
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s, NULL,
	    NULL);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
	/* A ticket for h2's links that demand the relay role, no other. */
	assert_true(tls_has_ticket(tc, TLS_ROLE_RELAY, "h2"));
	assert_false(tls_has_ticket(tc, TLS_ROLE_RELAY, "h3"));
	assert_false(tls_has_ticket(tc, TLS_ROLE_APPLIANCE, "h2"));
	assert_false(tls_has_ticket(NULL, TLS_ROLE_RELAY, "h2"));
	assert_int_equal(count(tc, "full"), 1);
	assert_int_equal(count(tc, "resumed"), 0);
	assert_int_equal(count(tc, "tickets_held"), 1);
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s, &subj,
	    &hok);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(s.what, BEV_EVENT_CONNECTED);
	assert_int_equal(count(tc, "resumed"), 1);
	assert_int_equal(count(ts, "resumed"), 1);
	assert_non_null(strstr(subj, "CN=h1"));
	assert_int_equal(hok, TLS_OK);
	free(subj);
	/*
	 * The ticket resumes the next link too, though the link before
	 * ended without a TLS close (OpenSSL then marks that link's session
	 * not resumable: it was a copy).  A resumed link gets no ticket:
	 * the server still keeps one session, the client one ticket.
	 */
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s, NULL,
	    NULL);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(count(tc, "resumed"), 2);
	assert_int_equal(count(ts, "sessions_kept"), 1);
	assert_int_equal(count(tc, "tickets_held"), 1);
	/*
	 * The same ticket at a link that demands another role of the
	 * client (the session id context differs): not resumed, so the
	 * full handshake's role check refuses the relay.
	 */
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_APPLIANCE, "h2", &c, &s, NULL,
	    NULL);
	assert_true(s.what & BEV_EVENT_ERROR);
	assert_string_equal(s.why, "TLS: peer certificate has no role "
	    "appliance");
	assert_int_equal(count(ts, "resumed"), 2);
	/* Another host name: no ticket for it, a full handshake, refused. */
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h3", &c, &s, NULL,
	    NULL);
	assert_true(c.what & BEV_EVENT_ERROR);
	assert_string_equal(c.why, "TLS: peer certificate does not name h3");
	assert_int_equal(count(tc, "resumed"), 2);
	tls_free(tc);
	/*
	 * The same client certificate without tickets (a restarted relay):
	 * each link is a full handshake, and the server keeps only the
	 * newest sessions of that certificate, the last of which resumes.
	 */
	for (i = 0; i < 6; i++) {
		tc = identity("h1");
		tls_set_resumable(tc, TLS_ROLE_RELAY);
		link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s,
		    NULL, NULL);
		assert_int_equal(c.what, BEV_EVENT_CONNECTED);
		if (i < 5)
			tls_free(tc);
	}
	assert_int_equal(count(ts, "sessions_kept"), 4);
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s, NULL,
	    NULL);
	assert_int_equal(count(tc, "resumed"), 1);
	tls_free(ts);
	tls_free(tc);

	/* The server does not ask for it: no ticket, every link full. */
	ts = identity("h2");
	tc = identity("h1");
	tls_set_resumable(tc, TLS_ROLE_RELAY);
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s, NULL,
	    NULL);
	link_up(ts, TLS_ROLE_RELAY, tc, TLS_ROLE_RELAY, "h2", &c, &s, NULL,
	    NULL);
	assert_int_equal(c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(count(tc, "tickets_held"), 0);
	assert_int_equal(count(tc, "full"), 2);
	assert_int_equal(count(ts, "resumed"), 0);
	tls_free(ts);
	tls_free(tc);
}

static int	wake_up;	/* the last tls_set_wake() call's UP */

/* Counts tls_set_wake() calls. */
static void
on_wake(void *arg, int up)
{
	(*(int *)arg)++;
	wake_up = up;
}

/* A link from TC to TS ("h2", the relay role both ways), step by step. */
struct step {
	struct event_base	*base;
	struct bufferevent	*bs, *bc;
	int			 mute;	/* no server: the socket's end */
	struct end		 c, s;
};

/* Start a link: the client end is dialled (TS NULL: no one answers). */
static void
step_start(struct step *k, struct event_base *base, struct tls *ts,
    struct tls *tc)
{
	int	sv[2];

	memset(k, 0, sizeof(*k));
	k->base = base;
	k->mute = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	if (ts != NULL) {
		k->bs = tls_wrap(ts, base, sv[0], 1, TLS_ROLE_RELAY, NULL);
		assert_non_null(k->bs);
		bufferevent_setcb(k->bs, NULL, NULL, end_eventcb, &k->s);
		bufferevent_enable(k->bs, EV_READ | EV_WRITE);
	} else
		k->mute = sv[0];
	k->bc = tls_wrap(tc, base, sv[1], 0, TLS_ROLE_RELAY, "h2");
	assert_non_null(k->bc);
	bufferevent_setcb(k->bc, NULL, NULL, end_eventcb, &k->c);
	bufferevent_enable(k->bc, EV_READ | EV_WRITE);
}

/* Run the loop until *WOKEN counts past N, or a second has passed. */
static void
step_run(struct event_base *base, const int *woken, int n)
{
	struct timeval	tv = { 0, 10000 };
	int		i;

	for (i = 0; i < 100 && *woken <= n; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

/* Free both ends; libevent frees an SSL from its loop, so turn it. */
static void
step_free(struct step *k)
{
	struct timeval	tv = { 0, 1000 };

	if (k->bs != NULL)
		bufferevent_free(k->bs);
	bufferevent_free(k->bc);
	if (k->mute != -1)
		close(k->mute);
	k->bs = k->bc = NULL;
	event_base_loopexit(k->base, &tv);
	event_base_dispatch(k->base);
}

/*
 * A burst of links to a host: while no link up to it has resumed or
 * brought a ticket, the first one dialled probes and the rest wait
 * (tls_link_wait), until the wake callback says they may go: the first
 * contact, after the far relay restarted (the ticket held is stale, and
 * only the probe pays a full handshake for it), and after a probe that
 * failed or hung.
 */
static void
test_probe(void **state)
{
	struct event_base	*base = event_base_new();
	struct tls		*ts = identity("h2"), *tc = identity("h1");
	struct step		 k, k2;
	int			 woken = 0;

	tls_set_resumable(ts, TLS_ROLE_RELAY);
	tls_set_resumable(tc, TLS_ROLE_RELAY);
	tls_set_wake(tc, on_wake, &woken);
	/* First contact: the probe gets a ticket; the wake comes with it. */
	assert_false(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	step_start(&k, base, ts, tc);
	assert_true(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	assert_false(tls_link_wait(tc, TLS_ROLE_RELAY, "h3"));
	assert_false(tls_link_wait(tc, TLS_ROLE_APPLIANCE, "h2"));
	step_run(base, &woken, 0);
	assert_int_equal(k.c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(woken, 1);
	assert_int_equal(wake_up, 1);
	assert_true(tls_has_ticket(tc, TLS_ROLE_RELAY, "h2"));
	assert_false(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	/* With a link up, the next ones need no probe: no wait, no wake. */
	step_start(&k2, base, ts, tc);
	assert_false(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	step_run(base, &woken, 1);
	assert_int_equal(k2.c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(woken, 1);
	step_free(&k2);
	step_free(&k);
	/* All links gone (the far relay restarted): probe again; resumed. */
	step_start(&k, base, ts, tc);
	assert_true(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	step_run(base, &woken, 1);
	assert_int_equal(woken, 2);
	assert_int_equal(count(tc, "resumed"), 2);
	step_free(&k);
	/*
	 * A restarted server keeps no session: the ticket held is stale,
	 * and only the probe pays for it; its new ticket lets the rest go.
	 */
	tls_free(ts);
	ts = identity("h2");
	tls_set_resumable(ts, TLS_ROLE_RELAY);
	step_start(&k, base, ts, tc);
	assert_true(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	step_run(base, &woken, 2);
	assert_int_equal(woken, 3);
	assert_int_equal(count(ts, "full"), 1);
	step_start(&k2, base, ts, tc);
	step_run(base, &woken, 3);
	assert_int_equal(k2.c.what, BEV_EVENT_CONNECTED);
	assert_int_equal(count(ts, "resumed"), 1);
	step_free(&k2);
	step_free(&k);
	/* A probe that ends before its handshake lets the next one try. */
	step_start(&k, base, ts, tc);
	assert_true(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	step_free(&k);
	assert_int_equal(woken, 4);
	assert_int_equal(wake_up, 0);	/* the host is not known up */
	assert_false(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	/* One that hangs stops holding the others after TLS_PROBE_MS. */
	step_start(&k, base, NULL, tc);
	assert_true(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	usleep(1050 * 1000);
	assert_false(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	/* The next link probes in its place; the old one's end wakes none. */
	step_start(&k2, base, NULL, tc);
	assert_true(tls_link_wait(tc, TLS_ROLE_RELAY, "h2"));
	step_free(&k);
	assert_int_equal(woken, 4);
	step_free(&k2);
	assert_int_equal(woken, 5);
	tls_free(ts);
	tls_free(tc);
	event_base_free(base);
}

/* Byte I of the stream test_send sends. */
static uint8_t
send_byte(size_t i)
{
	return ((uint8_t)(i * 7 + i / 251));
}

/* Run BASE until *UP is set in both ENDS, or fail after 5 s. */
static void
send_until_up(struct event_base *base, struct end *e)
{
	struct timeval	tv = { 0, 10000 };
	int		i;

	for (i = 0; i < 500 && (e[0].what == 0 || e[1].what == 0); i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(e[0].what, BEV_EVENT_CONNECTED);
	assert_int_equal(e[1].what, BEV_EVENT_CONNECTED);
}

/*
 * tls_bev_send over TLS (USE_TLS) or a plain socket: with nothing
 * queued a message goes at once, in one call, and the bufferevent's
 * output stays empty; into a socket that is full it queues, behind what
 * waits, and the bufferevent's own retry of a refused record (OpenSSL
 * wants it as long as the refused one) delivers every byte in order.
 */
static void
send_run(int use_tls)
{
	struct event_base	*base = event_base_new();
	struct tls		*ts = identity("h2"), *tc = identity("h1");
	struct bufferevent	*bs, *bc;
	struct evbuffer		*src = evbuffer_new(), *in;
	struct end		 e[2];
	struct timeval		 tv = { 0, 10000 };
	uint8_t			 buf[20000], got[4096];
	size_t			 total = 2 * 1024 * 1024, off = 0, rx = 0;
	size_t			 k, i, piece, direct = 0, queued = 0;
	ssize_t			 w;
	int			 sv[2], sz = 4096, round;

	memset(e, 0, sizeof(e));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz,
	    sizeof(sz)), 0);
	if (use_tls) {
		bs = tls_wrap(ts, base, sv[0], 1, TLS_ROLE_RELAY, NULL);
		bc = tls_wrap(tc, base, sv[1], 0, TLS_ROLE_RELAY, "h2");
		assert_non_null(bs);
		assert_non_null(bc);
		bufferevent_setcb(bs, NULL, NULL, end_eventcb, &e[0]);
		bufferevent_setcb(bc, NULL, NULL, end_eventcb, &e[1]);
		bufferevent_enable(bs, EV_READ | EV_WRITE);
		bufferevent_enable(bc, EV_READ | EV_WRITE);
		send_until_up(base, e);
	} else {
		bs = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
		bc = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
		bufferevent_enable(bs, EV_READ | EV_WRITE);
		bufferevent_enable(bc, EV_READ | EV_WRITE);
	}
	in = bufferevent_get_input(bs);
	/* Nothing queued: at once, nothing left in the output. */
	for (i = 0; i < 64; i++)
		buf[i] = send_byte(off + i);
	evbuffer_add(src, buf, 64);
	assert_int_equal(tls_bev_send(bc, src, 64), 64);
	off += 64;
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(bc)), 0);
	/* The server reads nothing: the socket fills, sends queue. */
	bufferevent_disable(bs, EV_READ);
	for (round = 0; off < total; round++) {
		piece = round % 3 == 2 ? sizeof(buf) : 1000 + (size_t)round % 17;
		if (piece > total - off)
			piece = total - off;
		for (i = 0; i < piece; i++)
			buf[i] = send_byte(off + i);
		evbuffer_add(src, buf, piece);
		w = tls_bev_send(bc, src, piece);
		assert_true(w >= 0 && (size_t)w <= piece);
		assert_int_equal(evbuffer_get_length(src), 0);
		if ((size_t)w == piece)
			direct++;
		else
			queued++;
		off += piece;
		if (round % 8 == 0) {
			event_base_loopexit(base, &tv);
			event_base_dispatch(base);
		}
	}
	assert_true(direct > 0);
	assert_true(queued > 0);
	/* Now read it all: every byte, in order. */
	bufferevent_enable(bs, EV_READ);
	for (round = 0; rx < total && round < 2000; round++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		while ((k = evbuffer_remove(in, got, sizeof(got))) > 0 &&
		    k != (size_t)-1) {
			for (i = 0; i < k; i++)
				if (got[i] != send_byte(rx + i))
					fail_msg("byte %zu: %u, not %u", rx + i,
					    got[i], send_byte(rx + i));
			rx += k;
		}
	}
	assert_int_equal(rx, total);
	if (use_tls) {
		assert_int_equal(e[0].what, BEV_EVENT_CONNECTED);
		assert_int_equal(e[1].what, BEV_EVENT_CONNECTED);
	}
	evbuffer_free(src);
	bufferevent_free(bs);
	bufferevent_free(bc);
	tls_free(ts);
	tls_free(tc);
	event_base_free(base);
}

static void
test_send(void **state)
{
	send_run(1);
	send_run(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_handshake_ok),
		cmocka_unit_test(test_handshake_role),
		cmocka_unit_test(test_handshake_host),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_send),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
