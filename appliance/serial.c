/*
 * serial.c -- the appliance's serial ports: the vSPC for network serial
 * ports (VMware's telnet extension, option 232) and pipe-backed serial
 * ports, both carried here as mesh sessions (docs/serial.md).
 *
 * Design.  A serial VM is one VM's serial stream.  It owns the one
 * backend connection for that VM, which outlives the connections on
 * the VM's side: a VM side is a session (its local end is one half of
 * a socketpair; we hold the other half as a "conn"), and a VM changes
 * sessions when it moves between hosts.  A vSPC conn speaks telnet and
 * becomes its VM's once it has said who the VM is (VM-VC-UUID); a
 * pipe conn's VM is named in the session's HELLO.
 *
 * vMotion of a vSPC VM: the source host's conn says VMOTION-BEGIN; we
 * answer GOAHEAD with the sequence and a fresh secret and from then on
 * hold backend bytes for the VM (vm->held).  The destination host opens
 * a second conn (through its own relay) and proves the cookie with
 * VMOTION-PEER; on VMOTION-COMPLETE it becomes the VM's conn and gets
 * the held bytes.  The old conn's last bytes may still be in flight on
 * the other path, so the new conn's bytes for the backend wait
 * (conn->pending) until the old conn has closed or SERIAL_RETIRE_MS
 * passed.  VMOTION-ABORT (or the deadline) gives the held bytes back
 * to the old conn.  Nothing is dropped: every buffer is capped and a
 * full one stops reading (backpressure).
 *
 * Lifetimes: conns and VMs are freed from a reaper event; a conn refers
 * to its session by id only (the session may be gone first).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "appliance.h"
#include "log.h"
#include "sess.h"
#include "telnet.h"
#include "text.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define SERIAL_SB_MAX		1024	/* a VMware subnegotiation */
#define SERIAL_ID_MAX		128	/* a UUID as the VM sends it */
#define SERIAL_SEQ_MAX		64	/* a vMotion sequence */
#define SERIAL_SECRET_LEN	16
#define SERIAL_HIGH		(256 * 1024)	/* an output: stop reading */
#define SERIAL_RETIRE_MS	2000	/* the old conn's last bytes */
#define SERIAL_FLUSH_MS		5000	/* a closing conn's output */

/* VMware telnet extension sub-commands (docs/serial.md). */
enum {
	VMW_KNOWN_SUBOPTIONS_1 = 0,
	VMW_KNOWN_SUBOPTIONS_2 = 1,
	VMW_UNKNOWN_SUBOPTION_RCVD_1 = 2,
	VMW_UNKNOWN_SUBOPTION_RCVD_2 = 3,
	VMW_VMOTION_BEGIN = 40,
	VMW_VMOTION_GOAHEAD = 41,
	VMW_VMOTION_NOTNOW = 43,
	VMW_VMOTION_PEER = 44,
	VMW_VMOTION_PEER_OK = 45,
	VMW_VMOTION_COMPLETE = 46,
	VMW_VMOTION_ABORT = 48,
	VMW_DO_PROXY = 70,
	VMW_WILL_PROXY = 71,
	VMW_WONT_PROXY = 73,
	VMW_VM_VC_UUID = 80,
	VMW_GET_VM_VC_UUID = 81,
	VMW_VM_NAME = 82,
	VMW_GET_VM_NAME = 83,
	VMW_VM_BIOS_UUID = 84,
	VMW_GET_VM_BIOS_UUID = 85,
	VMW_VM_LOCATION_UUID = 86,
	VMW_GET_VM_LOCATION_UUID = 87,
};

/* What we tell a VM we know (KNOWN-SUBOPTIONS-2). */
static const uint8_t serial_known[] = {
	VMW_KNOWN_SUBOPTIONS_1, VMW_KNOWN_SUBOPTIONS_2,
	VMW_UNKNOWN_SUBOPTION_RCVD_1, VMW_UNKNOWN_SUBOPTION_RCVD_2,
	VMW_VMOTION_BEGIN, VMW_VMOTION_GOAHEAD, VMW_VMOTION_NOTNOW,
	VMW_VMOTION_PEER, VMW_VMOTION_PEER_OK, VMW_VMOTION_COMPLETE,
	VMW_VMOTION_ABORT, VMW_DO_PROXY, VMW_WILL_PROXY, VMW_WONT_PROXY,
	VMW_VM_VC_UUID, VMW_GET_VM_VC_UUID, VMW_VM_NAME, VMW_GET_VM_NAME,
	VMW_VM_BIOS_UUID, VMW_GET_VM_BIOS_UUID, VMW_VM_LOCATION_UUID,
	VMW_GET_VM_LOCATION_UUID,
};

enum serial_vm_state {
	SERIAL_VM_ATTACHED = 0,	/* one conn carries it */
	SERIAL_VM_MOTION,	/* GOAHEAD sent: backend bytes held */
	SERIAL_VM_DETACHED,	/* no conn: held until one comes */
	SERIAL_VM_DEAD,
};

enum serial_conn_state {
	SERIAL_CONN_IDENT = 0,	/* negotiating, not yet a VM's */
	SERIAL_CONN_PEER,	/* a vMotion's destination, before COMPLETE */
	SERIAL_CONN_ATTACHED,	/* its VM's conn */
	SERIAL_CONN_RETIRING,	/* the old conn after COMPLETE */
	SERIAL_CONN_CLOSING,	/* flushing, then gone */
	SERIAL_CONN_DEAD,
};

struct serial_vm;

struct serial_conn {
	struct serial		*sr;
	uint64_t		 sid;		/* its session, by id */
	char			 sidstr[17];
	char			*host;		/* its ingress relay's host */
	enum proto_service	 service;
	enum serial_conn_state	 state;
	struct bufferevent	*bev;		/* our half of the socketpair */
	struct telnet		*tn;		/* vSPC only */
	struct serial_vm	*vm;
	struct evbuffer		*pending;	/* for the backend, waiting */
	struct event		*deadline;	/* identify, or flush */
	struct event		*kick;		/* read again, later */
	uint8_t			 him[256];	/* options the VM has on */
	uint8_t			 us[256];	/* options we have on */
	uint8_t			 vm_knows[256];	/* its KNOWN-SUBOPTIONS */
	int			 asked;		/* GETs not yet answered */
	char			*uuid;
	char			*name;
	char			*bios;
	char			*location;
	char			 proxy_dir;	/* DO-PROXY direction, or 0 */
	int			 eof;		/* session ended; what it sent
						   still goes, then it closes */
	TAILQ_ENTRY(serial_conn) entry;
};
TAILQ_HEAD(serial_conn_list, serial_conn);

/* The GETs and their answers, in the order we ask. */
#define ASK_NAME	0x1
#define ASK_BIOS	0x2
#define ASK_UUID	0x4

struct serial_vm {
	struct serial		*sr;
	char			*key;		/* "uuid:..." or "name:..." */
	char			 idstr[17];	/* the backend's UNIQUE_ID */
	enum proto_service	 service;
	enum serial_vm_state	 state;
	char			*uuid;
	char			*name;
	char			*bios;
	struct bufferevent	*backend;
	int			 backend_up;
	int			 backend_gone;
	struct serial_conn	*conn;		/* the VM's side */
	struct serial_conn	*peer;		/* vMotion destination */
	struct serial_conn	*retiring;	/* vMotion source, after */
	struct evbuffer		*held;		/* backend bytes held */
	uint8_t			 seq[SERIAL_SEQ_MAX];
	size_t			 seqlen;
	uint8_t			 secret[SERIAL_SECRET_LEN];
	/*
	 * One timer per role: a vMotion's deadline, the retiring conn's
	 * last bytes and the hold with no VM side overlap (a conn replaced
	 * just before a vMotion, a new conn that ends while the old one
	 * retires), and one shared timer lost whichever was set first.
	 */
	struct event		*motion_ev;
	struct event		*retire_ev;
	struct event		*hold_ev;
	uint64_t		 to_backend;
	uint64_t		 to_vm;
	uint64_t		 motions;
	long long		 since_ms;
	TAILQ_ENTRY(serial_vm)	 entry;
};
TAILQ_HEAD(serial_vm_list, serial_vm);

struct serial {
	struct event_base	*base;
	const struct xaddr	*backend;
	int			 proxy_v2;
	struct serial_conf	 conf;
	struct serial_vm_list	 vms;
	struct serial_vm_list	 dead_vms;
	struct serial_conn_list	 conns;
	struct serial_conn_list	 dead_conns;
	struct event		*reap_ev;
	size_t			 nvms;
	size_t			 nconns;
	uint64_t		 accepted;
	uint64_t		 refused;
	uint64_t		 motions;
	uint64_t		 completed;
	uint64_t		 aborted;
	uint64_t		 expired;
	uint64_t		 bad_cookies;
	uint64_t		 malformed;
};

static const char *serial_vm_states[] = {
	"attached", "motion", "detached", "dead"
};
static const char *serial_conn_states[] = {
	"ident", "peer", "attached", "retiring", "closing", "dead"
};

static void	serial_conn_readcb(struct bufferevent *, void *);
static void	serial_conn_writecb(struct bufferevent *, void *);
static void	serial_conn_eventcb(struct bufferevent *, short, void *);
static void	serial_conn_close(struct serial_conn *, const char *);
static void	serial_vm_close(struct serial_vm *, const char *);
static void	serial_vm_to_conn(struct serial_vm *);
static void	serial_conn_forward(struct serial_conn *);
static void	serial_conn_drain(struct serial_conn *);

/* A VM's state change, logged old -> new. */
static void
serial_vm_enter_state(struct serial_vm *vm, enum serial_vm_state st)
{
	if (vm->state == st)
		return;
	log_debug("serial vm=%s state %s -> %s", vm->key,
	    serial_vm_states[vm->state], serial_vm_states[st]);
	vm->state = st;
}

/* A conn's state change, logged old -> new. */
static void
serial_conn_enter_state(struct serial_conn *c, enum serial_conn_state st)
{
	if (c->state == st)
		return;
	log_debug("serial session=%s state %s -> %s", c->sidstr,
	    serial_conn_states[c->state], serial_conn_states[st]);
	c->state = st;
}

/* --- the module --------------------------------------------------- */

static void
serial_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct serial		*sr = arg;
	struct serial_conn	*c;
	struct serial_vm	*vm;

	while ((c = TAILQ_FIRST(&sr->dead_conns)) != NULL) {
		TAILQ_REMOVE(&sr->dead_conns, c, entry);
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		telnet_free(c->tn);
		evbuffer_free(c->pending);
		event_free(c->deadline);
		event_free(c->kick);
		free(c->host);
		free(c->uuid);
		free(c->name);
		free(c->bios);
		free(c->location);
		free(c);
	}
	while ((vm = TAILQ_FIRST(&sr->dead_vms)) != NULL) {
		TAILQ_REMOVE(&sr->dead_vms, vm, entry);
		if (vm->backend != NULL)
			bufferevent_free(vm->backend);
		evbuffer_free(vm->held);
		event_free(vm->motion_ev);
		event_free(vm->retire_ev);
		event_free(vm->hold_ev);
		free(vm->key);
		free(vm->uuid);
		free(vm->name);
		free(vm->bios);
		free(vm);
	}
}

/* The module: VMs go to BACKEND, with a PROXY v2 header if PROXY_V2. */
struct serial *
serial_new(struct event_base *base, const struct xaddr *backend,
    int proxy_v2, const struct serial_conf *conf)
{
	struct serial	*sr;

	sr = xcalloc(1, sizeof(*sr));
	sr->base = base;
	sr->backend = backend;
	sr->proxy_v2 = proxy_v2;
	sr->conf = *conf;
	TAILQ_INIT(&sr->vms);
	TAILQ_INIT(&sr->dead_vms);
	TAILQ_INIT(&sr->conns);
	TAILQ_INIT(&sr->dead_conns);
	if ((sr->reap_ev = event_new(base, -1, 0, serial_reap_cb, sr)) == NULL)
		fatalx("serial: event_new");
	return (sr);
}

/* Close every VM and conn and free the module; NULL is fine. */
void
serial_free(struct serial *sr)
{
	struct serial_vm	*vm;
	struct serial_conn	*c;

	if (sr == NULL)
		return;
	while ((vm = TAILQ_FIRST(&sr->vms)) != NULL)
		serial_vm_close(vm, "appliance stopping");
	while ((c = TAILQ_FIRST(&sr->conns)) != NULL) {
		serial_conn_close(c, "appliance stopping");
		if (c->state != SERIAL_CONN_DEAD) {
			/* No loop left to flush it. */
			TAILQ_REMOVE(&sr->conns, c, entry);
			c->state = SERIAL_CONN_DEAD;
			TAILQ_INSERT_TAIL(&sr->dead_conns, c, entry);
		}
	}
	serial_reap_cb(-1, 0, sr);
	event_free(sr->reap_ev);
	free(sr);
}

/* --- VMs ---------------------------------------------------------- */

static struct serial_vm *
serial_vm_find(struct serial *sr, const char *key)
{
	struct serial_vm	*vm;

	TAILQ_FOREACH(vm, &sr->vms, entry)
		if (strcmp(vm->key, key) == 0)
			return (vm);
	return (NULL);
}

/* Arm one of a VM's timers for MS (0: disarm). */
static void
serial_vm_timer(struct event *ev, long long ms)
{
	struct timeval	tv;

	evtimer_del(ev);
	if (ms > 0) {
		xtime_tv(ms, &tv);
		evtimer_add(ev, &tv);
	}
}

/* Bytes from the backend: to the VM's conn, or held. */
static void
serial_backend_readcb(struct bufferevent *bev, void *arg)
{
	struct serial_vm	*vm = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 n = evbuffer_get_length(in);

	if (vm->state == SERIAL_VM_DEAD) {
		evbuffer_drain(in, n);
		return;
	}
	vm->to_vm += n;
	evbuffer_add_buffer(vm->held, in);
	serial_vm_to_conn(vm);
}

/* The backend took its output: the conns may read again. */
static void
serial_backend_writecb(struct bufferevent *bev, void *arg)
{
	struct serial_vm	*vm = arg;

	if (vm->conn != NULL)
		serial_conn_forward(vm->conn);
	if (vm->retiring != NULL)
		serial_conn_forward(vm->retiring);
}

/* The backend connected, or is gone: then so is the VM. */
static void
serial_backend_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct serial_vm	*vm = arg;
	char			 msg[200];
	int			 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		vm->backend_up = 1;
		log_debug("serial vm=%s backend %s connected", vm->key,
		    xaddr_str(vm->sr->backend));
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* What it sent last still goes to the VM. */
		serial_backend_readcb(bev, vm);
		snprintf(msg, sizeof(msg), "backend closed");
	} else
		snprintf(msg, sizeof(msg), "backend %s: %s",
		    vm->backend_up ? "error" : "unreachable",
		    err != 0 ? strerror(err) : "unknown error");
	vm->backend_gone = 1;
	serial_vm_close(vm, msg);
}

/* The backend connection for VM, with its identity up front. */
static int
serial_backend_open(struct serial_vm *vm, const char *host)
{
	struct serial	*sr = vm->sr;
	struct proxy_id	 id;
	uint8_t		 hdr[PROXY_HDR_MAX];
	size_t		 len;
	int		 fd, e;

	if ((e = xaddr_connect(sr->backend, &fd, NULL)) != XADDR_OK) {
		log_warnx("serial vm=%s backend %s unreachable: %s", vm->key,
		    xaddr_str(sr->backend), xaddr_why(e));
		return (-1);
	}
	vm->backend = bufferevent_socket_new(sr->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (vm->backend == NULL)
		fatalx("serial: bufferevent_socket_new");
	bufferevent_setcb(vm->backend, serial_backend_readcb,
	    serial_backend_writecb, serial_backend_eventcb, vm);
	bufferevent_setwatermark(vm->backend, EV_WRITE, SERIAL_HIGH / 4, 0);
	bufferevent_socket_connect(vm->backend, NULL, 0);
	if (sr->proxy_v2) {
		memset(&id, 0, sizeof(id));
		id.host = host;
		id.service = sess_strservice(vm->service);
		id.uuid = vm->uuid;
		id.name = vm->name;
		id.bios = vm->bios;
		id.id = vm->idstr;
		len = proxy_v2_serial_header(hdr, sizeof(hdr), &id);
		bufferevent_write(vm->backend, hdr, len);
	}
	bufferevent_enable(vm->backend, EV_READ | EV_WRITE);
	return (0);
}

/* The vMotion's deadline: it did not complete, the source keeps it. */
static void
serial_vm_motion_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct serial_vm	*vm = arg;
	struct serial		*sr = vm->sr;
	struct serial_conn	*c;

	if (vm->state == SERIAL_VM_MOTION) {
		sr->expired++;
		log_warnx("serial vm=%s vMotion not completed in %lld ms: "
		    "back to session=%s", vm->key, sr->conf.motion_ms,
		    vm->conn != NULL ? vm->conn->sidstr : "-");
		if ((c = vm->peer) != NULL) {
			vm->peer = NULL;
			c->vm = NULL;
			serial_conn_close(c, "vMotion deadline passed");
		}
		serial_vm_enter_state(vm, vm->conn != NULL ?
		    SERIAL_VM_ATTACHED : SERIAL_VM_DETACHED);
		if (vm->conn == NULL)
			serial_vm_timer(vm->hold_ev, sr->conf.hold_ms);
		serial_vm_to_conn(vm);
	}
}

/*
 * The retiring conn's last bytes had their time: the new conn goes on.
 * Not while the backend holds them back (its output at the mark, or
 * bytes on the conn not yet passed on): they have reached us, and their
 * session has acknowledged them; its time starts again.
 */
static void
serial_vm_retire_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct serial_vm	*vm = arg;
	struct serial_conn	*c = vm->retiring;
	int			 unread = 0;

	if (c == NULL)
		return;
	if (ioctl(bufferevent_getfd(c->bev), FIONREAD, &unread) == -1)
		unread = 0;
	if ((vm->backend != NULL && evbuffer_get_length(
	    bufferevent_get_output(vm->backend)) >= SERIAL_HIGH) ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
	    unread > 0) {
		serial_vm_timer(vm->retire_ev, SERIAL_RETIRE_MS);
		return;
	}
	serial_conn_close(c, "replaced after vMotion");
}

/* No VM side came back within the hold time. */
static void
serial_vm_hold_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct serial_vm	*vm = arg;
	struct serial		*sr = vm->sr;

	if (vm->state == SERIAL_VM_DETACHED) {
		log_info("serial vm=%s no VM side for %lld ms", vm->key,
		    sr->conf.hold_ms);
		serial_vm_close(vm, "hold time expired");
	}
}

/* A new VM for KEY, its backend connection opened; NULL if not. */
static struct serial_vm *
serial_vm_new(struct serial *sr, const char *key, struct serial_conn *c)
{
	struct serial_vm	*vm;
	uint64_t		 r;

	vm = xcalloc(1, sizeof(*vm));
	vm->sr = sr;
	vm->key = xstrdup(key);
	vm->service = c->service;
	vm->uuid = c->uuid != NULL ? xstrdup(c->uuid) : NULL;
	vm->name = c->name != NULL ? xstrdup(c->name) : NULL;
	vm->bios = c->bios != NULL ? xstrdup(c->bios) : NULL;
	vm->since_ms = xtime_mono_ms();
	if (RAND_bytes((uint8_t *)&r, sizeof(r)) != 1)
		fatalx("serial: RAND_bytes");
	snprintf(vm->idstr, sizeof(vm->idstr), "%016" PRIx64, r);
	if ((vm->held = evbuffer_new()) == NULL ||
	    (vm->motion_ev = evtimer_new(sr->base, serial_vm_motion_cb,
	    vm)) == NULL ||
	    (vm->retire_ev = evtimer_new(sr->base, serial_vm_retire_cb,
	    vm)) == NULL ||
	    (vm->hold_ev = evtimer_new(sr->base, serial_vm_hold_cb, vm)) ==
	    NULL)
		fatalx("serial: evbuffer_new");
	TAILQ_INSERT_TAIL(&sr->vms, vm, entry);
	sr->nvms++;
	if (serial_backend_open(vm, c->host) != 0) {
		vm->backend_gone = 1;
		serial_vm_close(vm, "backend unreachable");
		return (NULL);
	}
	log_info("serial vm=%s open service=%s name=\"%s\" backend=%s "
	    "id=%s", vm->key, sess_strservice(vm->service),
	    vm->name != NULL ? vm->name : "", xaddr_str(sr->backend),
	    vm->idstr);
	return (vm);
}

/* The one teardown of a VM: its backend and every conn go. */
static void
serial_vm_close(struct serial_vm *vm, const char *why)
{
	struct serial		*sr = vm->sr;
	struct serial_conn	*cs[3];
	size_t			 i;

	if (vm->state == SERIAL_VM_DEAD)
		return;
	log_info("serial vm=%s closed: %s (to backend %" PRIu64 ", to VM %"
	    PRIu64 ")", vm->key, why, vm->to_backend, vm->to_vm);
	serial_vm_enter_state(vm, SERIAL_VM_DEAD);
	evtimer_del(vm->motion_ev);
	evtimer_del(vm->retire_ev);
	evtimer_del(vm->hold_ev);
	cs[0] = vm->conn;
	cs[1] = vm->peer;
	cs[2] = vm->retiring;
	vm->conn = vm->peer = vm->retiring = NULL;
	for (i = 0; i < 3; i++) {
		if (cs[i] == NULL)
			continue;
		cs[i]->vm = NULL;
		serial_conn_close(cs[i], why);
	}
	if (vm->backend != NULL) {
		bufferevent_disable(vm->backend, EV_READ | EV_WRITE);
		bufferevent_setcb(vm->backend, NULL, NULL, NULL, NULL);
	}
	TAILQ_REMOVE(&sr->vms, vm, entry);
	sr->nvms--;
	TAILQ_INSERT_TAIL(&sr->dead_vms, vm, entry);
	event_active(sr->reap_ev, EV_TIMEOUT, 0);
}

/*
 * Held backend bytes go to the VM's conn when one may take them: not
 * during a vMotion, not with no conn, not past the conn's high mark.
 * The backend reads again once the held bytes are below the cap.
 */
static void
serial_vm_to_conn(struct serial_vm *vm)
{
	struct serial		*sr = vm->sr;
	struct serial_conn	*c = vm->conn;
	struct evbuffer		*out;
	uint8_t			 buf[16384];
	size_t			 n, room;

	/* Not to a conn whose session ended: nobody would read them. */
	if (vm->state == SERIAL_VM_ATTACHED && c != NULL &&
	    c->state == SERIAL_CONN_ATTACHED && !c->eof) {
		out = bufferevent_get_output(c->bev);
		while (evbuffer_get_length(vm->held) > 0 &&
		    evbuffer_get_length(out) < SERIAL_HIGH) {
			room = SERIAL_HIGH - evbuffer_get_length(out);
			n = evbuffer_remove(vm->held, buf, room < sizeof(buf) ?
			    room : sizeof(buf));
			if (c->tn != NULL)
				telnet_add_data(out, buf, n);
			else
				evbuffer_add(out, buf, n);
		}
	}
	if (vm->backend == NULL || vm->backend_gone)
		return;
	if (evbuffer_get_length(vm->held) >= (size_t)sr->conf.buffer_max)
		bufferevent_disable(vm->backend, EV_READ);
	else
		bufferevent_enable(vm->backend, EV_READ);
}

/*
 * OLD, no longer the VM's conn, retires: its last bytes for the backend
 * go before the new conn's, until it closes or SERIAL_RETIRE_MS passed.
 * One retires at a time: an earlier one still retiring (the VM was
 * replaced, then moved or replaced again within the time) is closed.
 */
static void
serial_vm_retire(struct serial_vm *vm, struct serial_conn *old)
{
	struct serial_conn	*prev;

	if ((prev = vm->retiring) != NULL) {
		vm->retiring = NULL;
		prev->vm = NULL;
		serial_conn_close(prev, "replaced by a newer connection");
	}
	vm->retiring = old;
	serial_conn_enter_state(old, SERIAL_CONN_RETIRING);
	serial_vm_timer(vm->retire_ev, SERIAL_RETIRE_MS);
}

/* C is now VM's conn (a new VM side, or a VM side come back). */
static void
serial_vm_attach(struct serial_vm *vm, struct serial_conn *c)
{
	struct serial_conn	*old = vm->conn;

	c->vm = vm;
	serial_conn_enter_state(c, SERIAL_CONN_ATTACHED);
	evtimer_del(c->deadline);
	vm->conn = c;
	if (vm->state == SERIAL_VM_DETACHED) {
		serial_vm_timer(vm->hold_ev, 0);
		serial_vm_enter_state(vm, SERIAL_VM_ATTACHED);
	}
	if (old != NULL) {
		/*
		 * The VM came back through another session (a pipe on its
		 * new host, a reconnect) before the old one ended: the old
		 * one's last bytes go first, as after a vMotion.
		 */
		serial_vm_retire(vm, old);
	}
	log_info("serial vm=%s session=%s attached (from %s)%s", vm->key,
	    c->sidstr, c->host, old != NULL ? ", replacing one" : "");
	serial_vm_to_conn(vm);
	serial_conn_forward(c);
}

/* --- conns -------------------------------------------------------- */

/* Whether C's bytes may go to the backend now (see the design). */
static int
serial_conn_may_send(const struct serial_conn *c)
{
	const struct serial_vm	*vm = c->vm;

	if (vm == NULL || vm->backend == NULL || vm->backend_gone)
		return (0);
	if (c->state == SERIAL_CONN_RETIRING)
		return (1);
	return (c->state == SERIAL_CONN_ATTACHED && vm->retiring == NULL);
}

/*
 * C's pending bytes to the backend when allowed; C reads again while
 * what waits is below the cap and the backend keeps up.
 */
static void
serial_conn_forward(struct serial_conn *c)
{
	struct serial_vm	*vm = c->vm;
	struct evbuffer		*out;
	size_t			 n;

	if (c->state == SERIAL_CONN_CLOSING || c->state == SERIAL_CONN_DEAD)
		return;
	if (serial_conn_may_send(c) &&
	    (n = evbuffer_get_length(c->pending)) > 0) {
		out = bufferevent_get_output(vm->backend);
		vm->to_backend += n;
		evbuffer_add_buffer(out, c->pending);
	}
	if (c->eof) {
		serial_conn_drain(c);
		return;
	}
	/*
	 * Paused while its bytes wait, the backend lags, or it does not
	 * read our answers (every command may make one: a peer that sends
	 * commands and never reads would grow our output without bound).
	 */
	if (evbuffer_get_length(c->pending) >= (size_t)c->sr->conf.buffer_max ||
	    (vm != NULL && vm->backend != NULL &&
	    evbuffer_get_length(bufferevent_get_output(vm->backend)) >=
	    SERIAL_HIGH) ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) >= SERIAL_HIGH)
		bufferevent_disable(c->bev, EV_READ);
	else {
		bufferevent_enable(c->bev, EV_READ);
		/* What came in while paused: libevent will not say again. */
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			event_active(c->kick, EV_TIMEOUT, 0);
	}
}

/*
 * C's session has ended: what it sent still goes to the backend, once
 * it may (a new conn waits for the retiring one) and as the caps allow,
 * and then C closes.  A conn that may never send is closed by its own
 * deadline or its VM's.
 */
static void
serial_conn_drain(struct serial_conn *c)
{
	struct serial_vm	*vm = c->vm;
	size_t			 in;

	in = evbuffer_get_length(bufferevent_get_input(c->bev));
	if (in == 0 && evbuffer_get_length(c->pending) == 0) {
		serial_conn_close(c, "session ended");
		return;
	}
	if (in > 0 && evbuffer_get_length(c->pending) <
	    (size_t)c->sr->conf.buffer_max && (vm == NULL ||
	    vm->backend == NULL ||
	    evbuffer_get_length(bufferevent_get_output(vm->backend)) <
	    SERIAL_HIGH))
		event_active(c->kick, EV_TIMEOUT, 0);
}

/* Read what waited in the input while the conn was paused. */
static void
serial_conn_kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct serial_conn	*c = arg;

	serial_conn_readcb(c->bev, c);
}

/* Deadline: identify in time, or a closing flush that never ends. */
static void
serial_conn_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct serial_conn	*c = arg;
	struct serial		*sr = c->sr;

	if (c->state == SERIAL_CONN_CLOSING) {
		TAILQ_REMOVE(&sr->conns, c, entry);
		sr->nconns--;
		serial_conn_enter_state(c, SERIAL_CONN_DEAD);
		evtimer_del(c->deadline);
		event_del(c->kick);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		TAILQ_INSERT_TAIL(&sr->dead_conns, c, entry);
		event_active(sr->reap_ev, EV_TIMEOUT, 0);
		return;
	}
	serial_conn_close(c, c->state == SERIAL_CONN_PEER ?
	    "no VMOTION-COMPLETE in time" :
	    "the VM did not say who it is in time");
}

/*
 * The one teardown of a conn: it leaves its VM (whose state follows),
 * flushes what it has to send, then closes its half of the socketpair
 * (the session sees the end of its local stream).
 */
static void
serial_conn_close(struct serial_conn *c, const char *why)
{
	struct serial		*sr = c->sr;
	struct serial_vm	*vm = c->vm;
	struct timeval		 tv;

	if (c->state == SERIAL_CONN_CLOSING || c->state == SERIAL_CONN_DEAD)
		return;
	log_info("serial session=%s%s%s closed: %s", c->sidstr,
	    vm != NULL ? " vm=" : "", vm != NULL ? vm->key : "", why);
	c->vm = NULL;
	if (vm != NULL) {
		if (vm->peer == c)
			vm->peer = NULL;
		if (vm->retiring == c) {
			vm->retiring = NULL;
			serial_vm_timer(vm->retire_ev, 0);
			if (vm->conn != NULL)
				serial_conn_forward(vm->conn);
		}
		if (vm->conn == c) {
			vm->conn = NULL;
			if (vm->state == SERIAL_VM_ATTACHED) {
				serial_vm_enter_state(vm, SERIAL_VM_DETACHED);
				serial_vm_timer(vm->hold_ev, sr->conf.hold_ms);
			}
			/* In a vMotion: COMPLETE or the deadline decides. */
		}
	}
	serial_conn_enter_state(c, SERIAL_CONN_CLOSING);
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_drain(c->pending, evbuffer_get_length(c->pending));
	xtime_tv(SERIAL_FLUSH_MS, &tv);
	evtimer_add(c->deadline, &tv);
	/* Nobody reads what an ended session still had to get. */
	if (c->eof || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		serial_conn_deadline_cb(-1, 0, c);
}

/* Reply IAC SB 232 CMD P IAC SE. */
static void
serial_sb(struct serial_conn *c, uint8_t cmd, const void *p, size_t len)
{
	telnet_add_sb(bufferevent_get_output(c->bev), TELNET_OPT_VMWARE, cmd,
	    p, len);
}

/*
 * A copy of a VM's identity string (spaces dropped if SQUEEZE) that is
 * safe in logs, JSON and headers: UTF-8 as sent, or printable ASCII.
 */
static char *
serial_idstr(const uint8_t *p, size_t len, int squeeze)
{
	char	*s;
	size_t	 i, j = 0;

	s = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		if (squeeze && p[i] == ' ')
			continue;
		s[j++] = (char)p[i];
	}
	s[j] = '\0';
	if (!text_utf8_ok(s, j))
		text_ascii(s);
	return (s);
}

/*
 * C has said who its VM is (all we asked answered): attach it.  -1 if
 * the VM's backend could not be reached (C is closed then).
 */
static int
serial_conn_identified(struct serial_conn *c)
{
	struct serial		*sr = c->sr;
	struct serial_vm	*vm;
	char			*key;

	if (c->state != SERIAL_CONN_IDENT || c->asked != 0)
		return (0);
	/*
	 * A pipe port is named by its session; a vSPC VM by what it said,
	 * an empty answer being none, and apart from pipe ports: a VM with
	 * both kinds of port has a backend connection for each.
	 */
	if (c->tn == NULL)
		xasprintf(&key, "name:%s", c->name);
	else if (c->uuid != NULL && c->uuid[0] != '\0')
		xasprintf(&key, "uuid:%s", c->uuid);
	else if (c->bios != NULL && c->bios[0] != '\0')
		xasprintf(&key, "bios:%s", c->bios);
	else if (c->name != NULL && c->name[0] != '\0')
		xasprintf(&key, "vspc-name:%s", c->name);
	else
		return (0);
	if ((vm = serial_vm_find(sr, key)) != NULL &&
	    vm->state == SERIAL_VM_MOTION) {
		/* A vMotion's destination: its PEER says the rest. */
		free(key);
		return (0);
	}
	if (vm == NULL && (vm = serial_vm_new(sr, key, c)) == NULL) {
		free(key);
		serial_conn_close(c, "backend unreachable");
		return (-1);
	}
	free(key);
	serial_vm_attach(vm, c);
	return (0);
}

/* VMOTION-BEGIN on the VM's conn: GOAHEAD, and hold from now on. */
static void
serial_motion_begin(struct serial_conn *c, const uint8_t *p, size_t len)
{
	struct serial		*sr = c->sr;
	struct serial_vm	*vm = c->vm;
	uint8_t			 reply[SERIAL_SEQ_MAX + SERIAL_SECRET_LEN];

	if (len > SERIAL_SEQ_MAX || vm == NULL || vm->conn != c ||
	    vm->state != SERIAL_VM_ATTACHED) {
		log_warnx("serial session=%s VMOTION-BEGIN refused (%s)",
		    c->sidstr, len > SERIAL_SEQ_MAX ? "sequence too long" :
		    vm == NULL ? "no VM yet" : "a vMotion in progress");
		serial_sb(c, VMW_VMOTION_NOTNOW, p, len);
		return;
	}
	memcpy(vm->seq, p, len);
	vm->seqlen = len;
	if (RAND_bytes(vm->secret, sizeof(vm->secret)) != 1)
		fatalx("serial: RAND_bytes");
	memcpy(reply, p, len);
	memcpy(reply + len, vm->secret, sizeof(vm->secret));
	serial_vm_enter_state(vm, SERIAL_VM_MOTION);
	serial_vm_timer(vm->motion_ev, sr->conf.motion_ms);
	serial_sb(c, VMW_VMOTION_GOAHEAD, reply, len + sizeof(vm->secret));
	vm->motions++;
	sr->motions++;
	log_info("serial vm=%s vMotion begins from %s (session=%s)",
	    vm->key, c->host, c->sidstr);
}

/* VMOTION-PEER on a new conn: the cookie names the VM, or it goes. */
static void
serial_motion_peer(struct serial_conn *c, const uint8_t *p, size_t len)
{
	struct serial		*sr = c->sr;
	struct serial_vm	*vm, *found = NULL;
	uint8_t			 cookie[SERIAL_SEQ_MAX + SERIAL_SECRET_LEN];
	uint8_t			 code = VMW_VMOTION_PEER;

	TAILQ_FOREACH(vm, &sr->vms, entry) {
		if (vm->state != SERIAL_VM_MOTION || vm->peer != NULL ||
		    len != vm->seqlen + SERIAL_SECRET_LEN)
			continue;
		memcpy(cookie, vm->seq, vm->seqlen);
		memcpy(cookie + vm->seqlen, vm->secret, SERIAL_SECRET_LEN);
		/* Constant time: the secret is what a guesser wants. */
		if (CRYPTO_memcmp(cookie, p, len) == 0)
			found = vm;
	}
	if (found == NULL || (c->state != SERIAL_CONN_IDENT)) {
		sr->bad_cookies++;
		log_warnx("serial session=%s from %s: VMOTION-PEER refused: "
		    "no vMotion in progress with that cookie", c->sidstr,
		    c->host);
		serial_sb(c, VMW_UNKNOWN_SUBOPTION_RCVD_2, &code, 1);
		serial_conn_close(c, "wrong vMotion cookie");
		return;
	}
	vm = found;
	vm->peer = c;
	c->vm = vm;
	serial_conn_enter_state(c, SERIAL_CONN_PEER);
	evtimer_del(c->deadline);
	serial_sb(c, VMW_VMOTION_PEER_OK, p, len);
	log_info("serial vm=%s vMotion peer session=%s from %s", vm->key,
	    c->sidstr, c->host);
}

/* VMOTION-COMPLETE on the peer conn: it is the VM's conn from now. */
static void
serial_motion_complete(struct serial_conn *c, const uint8_t *p, size_t len)
{
	struct serial		*sr = c->sr;
	struct serial_vm	*vm = c->vm;
	struct serial_conn	*old;

	if (vm == NULL || vm->peer != c || vm->state != SERIAL_VM_MOTION ||
	    len != vm->seqlen || memcmp(p, vm->seq, len) != 0) {
		serial_conn_close(c, "VMOTION-COMPLETE out of sequence");
		return;
	}
	old = vm->conn;
	vm->peer = NULL;
	vm->conn = c;
	serial_conn_enter_state(c, SERIAL_CONN_ATTACHED);
	serial_vm_enter_state(vm, SERIAL_VM_ATTACHED);
	serial_vm_timer(vm->motion_ev, 0);
	if (old != NULL) {
		/* Its last bytes for the backend may still be on the way. */
		serial_vm_retire(vm, old);
	}
	sr->completed++;
	log_info("serial vm=%s vMotion complete: now session=%s from %s "
	    "(%zu bytes held)", vm->key, c->sidstr, c->host,
	    evbuffer_get_length(vm->held));
	serial_vm_to_conn(vm);
	serial_conn_forward(c);
}

/* VMOTION-ABORT on the VM's conn: it stays; the held bytes go to it. */
static void
serial_motion_abort(struct serial_conn *c)
{
	struct serial		*sr = c->sr;
	struct serial_vm	*vm = c->vm;
	struct serial_conn	*peer;

	if (vm == NULL || vm->conn != c || vm->state != SERIAL_VM_MOTION)
		return;
	if ((peer = vm->peer) != NULL) {
		vm->peer = NULL;
		peer->vm = NULL;
		serial_conn_close(peer, "vMotion aborted");
	}
	serial_vm_enter_state(vm, SERIAL_VM_ATTACHED);
	serial_vm_timer(vm->motion_ev, 0);
	sr->aborted++;
	log_info("serial vm=%s vMotion aborted (%zu bytes held go to "
	    "session=%s)", vm->key, evbuffer_get_length(vm->held), c->sidstr);
	serial_vm_to_conn(vm);
}

/* Store an identity answer and tick it off. */
static void
serial_answer(struct serial_conn *c, char **field, int ask,
    const uint8_t *p, size_t len, int squeeze)
{
	free(*field);
	*field = serial_idstr(p, len, squeeze);
	c->asked &= ~ask;
	(void)serial_conn_identified(c);
}

/* One VMware subnegotiation (CMD, then its parameters). */
static void
serial_vmware(struct serial_conn *c, const uint8_t *sb, size_t sblen)
{
	uint8_t		 cmd, code;
	const uint8_t	*p = sb + 1;
	size_t		 len = sblen - 1, i;

	if (sblen == 0)
		return;
	cmd = sb[0];
	switch (cmd) {
	case VMW_KNOWN_SUBOPTIONS_1:
		for (i = 0; i < len; i++)
			c->vm_knows[p[i]] = 1;
		serial_sb(c, VMW_KNOWN_SUBOPTIONS_2, serial_known,
		    sizeof(serial_known));
		/* Name first, so the backend's header has it. */
		c->asked = 0;
		if (c->vm_knows[VMW_VM_NAME] && c->name == NULL) {
			serial_sb(c, VMW_GET_VM_NAME, NULL, 0);
			c->asked |= ASK_NAME;
		}
		if (c->vm_knows[VMW_VM_BIOS_UUID] && c->bios == NULL) {
			serial_sb(c, VMW_GET_VM_BIOS_UUID, NULL, 0);
			c->asked |= ASK_BIOS;
		}
		if (c->vm_knows[VMW_VM_VC_UUID] && c->uuid == NULL) {
			serial_sb(c, VMW_GET_VM_VC_UUID, NULL, 0);
			c->asked |= ASK_UUID;
		}
		serial_conn_identified(c);
		return;
	case VMW_UNKNOWN_SUBOPTION_RCVD_1:
		log_debug("serial session=%s the VM does not know %u",
		    c->sidstr, len > 0 ? p[0] : 0);
		return;
	case VMW_DO_PROXY:
		c->proxy_dir = len > 0 ? (char)p[0] : '?';
		serial_sb(c, VMW_WILL_PROXY, NULL, 0);
		return;
	case VMW_VM_VC_UUID:
		if (len > SERIAL_ID_MAX)
			break;
		serial_answer(c, &c->uuid, ASK_UUID, p, len, 1);
		return;
	case VMW_VM_NAME:
		if (len > PROTO_NAME_MAX)
			break;
		serial_answer(c, &c->name, ASK_NAME, p, len, 0);
		return;
	case VMW_VM_BIOS_UUID:
		if (len > SERIAL_ID_MAX)
			break;
		serial_answer(c, &c->bios, ASK_BIOS, p, len, 1);
		return;
	case VMW_VM_LOCATION_UUID:
		if (len > SERIAL_ID_MAX)
			break;
		free(c->location);
		c->location = serial_idstr(p, len, 1);
		return;
	case VMW_VMOTION_BEGIN:
		serial_motion_begin(c, p, len);
		return;
	case VMW_VMOTION_PEER:
		serial_motion_peer(c, p, len);
		return;
	case VMW_VMOTION_COMPLETE:
		serial_motion_complete(c, p, len);
		return;
	case VMW_VMOTION_ABORT:
		serial_motion_abort(c);
		return;
	default:
		/* The proxy must say so for anything it does not support. */
		code = cmd;
		serial_sb(c, VMW_UNKNOWN_SUBOPTION_RCVD_2, &code, 1);
		return;
	}
	c->sr->malformed++;
	serial_conn_close(c, "an identity over its size limit");
}

/* Options we turn on, by side: BINARY both ways, SGA, our ECHO. */
static int
serial_opt_ok(uint8_t opt, int ours)
{
	if (opt == TELNET_OPT_BINARY || opt == TELNET_OPT_SGA)
		return (1);
	if (ours)
		return (opt == TELNET_OPT_ECHO);
	return (opt == TELNET_OPT_VMWARE);
}

/* WILL/WONT/DO/DONT: agree once, refuse what we do not do. */
static void
serial_opt(struct serial_conn *c, uint8_t verb, uint8_t opt)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	switch (verb) {
	case TELNET_WILL:
		if (!serial_opt_ok(opt, 0))
			telnet_add_opt(out, TELNET_DONT, opt);
		else if (!c->him[opt]) {
			c->him[opt] = 1;
			telnet_add_opt(out, TELNET_DO, opt);
		}
		return;
	case TELNET_WONT:
		if (c->him[opt]) {
			c->him[opt] = 0;
			telnet_add_opt(out, TELNET_DONT, opt);
		}
		return;
	case TELNET_DO:
		if (!serial_opt_ok(opt, 1))
			telnet_add_opt(out, TELNET_WONT, opt);
		else if (!c->us[opt]) {
			c->us[opt] = 1;
			telnet_add_opt(out, TELNET_WILL, opt);
		}
		return;
	case TELNET_DONT:
		if (c->us[opt]) {
			c->us[opt] = 0;
			telnet_add_opt(out, TELNET_WONT, opt);
		}
		return;
	}
}

/* Bytes from the VM side: parsed (vSPC) or as they are (pipe). */
static void
serial_conn_readcb(struct bufferevent *bev, void *arg)
{
	struct serial_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct telnet_ev	 ev;
	char			 msg[128];
	int			 e;

	while (c->state != SERIAL_CONN_CLOSING &&
	    c->state != SERIAL_CONN_DEAD) {
		/* An ended session's output is not read: no cap on it. */
		if (evbuffer_get_length(c->pending) >=
		    (size_t)c->sr->conf.buffer_max || (!c->eof &&
		    evbuffer_get_length(bufferevent_get_output(bev)) >=
		    SERIAL_HIGH))
			break;		/* serial_conn_forward pauses it */
		if (c->tn == NULL) {
			evbuffer_add_buffer(c->pending, in);
			break;
		}
		if ((e = telnet_next(c->tn, in, &ev)) == TELNET_EAGAIN) {
			/* A command cut off by the end: it never completes. */
			if (c->eof)
				evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
		if (e != TELNET_OK) {
			c->sr->malformed++;
			snprintf(msg, sizeof(msg), "malformed telnet: %s",
			    telnet_strerror(e));
			serial_conn_close(c, msg);
			return;
		}
		switch (ev.type) {
		case TELNET_EV_DATA:
			evbuffer_add(c->pending, ev.p, ev.len);
			break;
		case TELNET_EV_OPT:
			serial_opt(c, ev.verb, ev.opt);
			break;
		case TELNET_EV_SB:
			if (ev.opt == TELNET_OPT_VMWARE)
				serial_vmware(c, ev.p, ev.len);
			break;
		case TELNET_EV_CMD:
			break;
		}
	}
	if (c->state != SERIAL_CONN_CLOSING && c->state != SERIAL_CONN_DEAD)
		serial_conn_forward(c);
}

/* The VM side took our bytes: the backend may read again. */
static void
serial_conn_writecb(struct bufferevent *bev, void *arg)
{
	struct serial_conn	*c = arg;

	if (c->state == SERIAL_CONN_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			evtimer_del(c->deadline);
			serial_conn_deadline_cb(-1, 0, c);
		}
		return;
	}
	if (c->vm != NULL && c->vm->conn == c)
		serial_vm_to_conn(c->vm);
	serial_conn_forward(c);		/* it may read again */
}

/* The session ended (EOF on our half) or broke. */
static void
serial_conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct serial_conn	*c = arg;

	if (what & BEV_EVENT_EOF) {
		/*
		 * The session ended: what it said last still counts, also
		 * past the cap on what waits and while it may not send yet
		 * (serial_conn_drain).
		 */
		c->eof = 1;
		bufferevent_disable(bev, EV_READ);
		serial_conn_readcb(bev, c);
	} else if (what & BEV_EVENT_ERROR) {
		c->eof = 1;		/* nobody reads its output either */
		serial_conn_close(c, "session error");
	}
}

/*
 * A serial session S was admitted: give it its conn, the other half of
 * a socketpair.  Refused with a PROTO_E_* code and *WHY: a pipe port
 * with no VM name, or whose VM's backend cannot be reached.
 */
int
serial_open(struct serial *sr, struct sess *s, const char **why)
{
	struct serial_conn	*c;
	struct timeval		 tv;
	int			 sp[2];

	if (sess_service(s) == PROTO_SVC_SERIAL && sess_name(s)[0] == '\0') {
		*why = "a serial port session without a VM name";
		sr->refused++;
		return (PROTO_E_MALFORMED);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sp) == -1) {
		*why = "socketpair failed";
		sr->refused++;
		log_warn("serial session=%s: socketpair", sess_idstr(s));
		return (PROTO_E_INTERNAL);
	}
	c = xcalloc(1, sizeof(*c));
	c->sr = sr;
	c->sid = sess_id(s);
	strlcpy(c->sidstr, sess_idstr(s), sizeof(c->sidstr));
	c->host = xstrdup(sess_host(s));
	c->service = sess_service(s);
	if ((c->pending = evbuffer_new()) == NULL ||
	    (c->deadline = evtimer_new(sr->base, serial_conn_deadline_cb,
	    c)) == NULL ||
	    (c->kick = event_new(sr->base, -1, 0, serial_conn_kick_cb, c)) ==
	    NULL ||
	    (c->bev = bufferevent_socket_new(sr->base, sp[1],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("serial: out of memory");
	bufferevent_setcb(c->bev, serial_conn_readcb, serial_conn_writecb,
	    serial_conn_eventcb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, SERIAL_HIGH / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&sr->conns, c, entry);
	sr->nconns++;
	if (c->service == PROTO_SVC_SERIAL) {
		/* Its VM is known now: refused, not ended, if unreachable. */
		c->name = xstrdup(sess_name(s));
		if (serial_conn_identified(c) != 0) {
			close(sp[0]);
			*why = "the serial backend is unreachable";
			sr->refused++;
			return (PROTO_E_BACKEND);
		}
		sr->accepted++;
		sess_set_local(s, sp[0], NULL, 0);
		return (0);
	}
	sr->accepted++;
	sess_set_local(s, sp[0], NULL, 0);
	/* The vSPC speaks first: what ESX waits for. */
	c->tn = telnet_new(SERIAL_SB_MAX);
	c->us[TELNET_OPT_BINARY] = c->us[TELNET_OPT_SGA] = 1;
	c->us[TELNET_OPT_ECHO] = 1;
	c->him[TELNET_OPT_BINARY] = c->him[TELNET_OPT_SGA] = 1;
	c->him[TELNET_OPT_VMWARE] = 1;
	telnet_add_opt(bufferevent_get_output(c->bev), TELNET_DO,
	    TELNET_OPT_VMWARE);
	telnet_add_opt(bufferevent_get_output(c->bev), TELNET_WILL,
	    TELNET_OPT_BINARY);
	telnet_add_opt(bufferevent_get_output(c->bev), TELNET_DO,
	    TELNET_OPT_BINARY);
	telnet_add_opt(bufferevent_get_output(c->bev), TELNET_WILL,
	    TELNET_OPT_SGA);
	telnet_add_opt(bufferevent_get_output(c->bev), TELNET_DO,
	    TELNET_OPT_SGA);
	telnet_add_opt(bufferevent_get_output(c->bev), TELNET_WILL,
	    TELNET_OPT_ECHO);
	xtime_tv(sr->conf.ident_ms, &tv);
	evtimer_add(c->deadline, &tv);
	return (0);
}

/* Every serial VM and its conns, for the status socket (new ref). */
json_t *
serial_json(const struct serial *sr)
{
	const struct serial_vm	*vm;
	json_t			*vms, *o;

	vms = json_array();
	TAILQ_FOREACH(vm, &sr->vms, entry) {
		o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, "
		    "s:s?, s:I, s:I, s:I, s:I, s:I}",
		    "key", vm->key, "service", sess_strservice(vm->service),
		    "state", serial_vm_states[vm->state],
		    "uuid", vm->uuid, "name", vm->name, "bios_uuid", vm->bios,
		    "session", vm->conn != NULL ? vm->conn->sidstr : NULL,
		    "peer", vm->peer != NULL ? vm->peer->sidstr : NULL,
		    "retiring", vm->retiring != NULL ?
		    vm->retiring->sidstr : NULL,
		    "held", (json_int_t)evbuffer_get_length(vm->held),
		    "to_backend", (json_int_t)vm->to_backend,
		    "to_vm", (json_int_t)vm->to_vm,
		    "motions", (json_int_t)vm->motions,
		    "age_ms", (json_int_t)(xtime_mono_ms() - vm->since_ms));
		if (o == NULL)
			abort();
		json_array_append_new(vms, o);
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:o}",
	    "vms_open", (json_int_t)sr->nvms,
	    "conns", (json_int_t)sr->nconns,
	    "accepted", (json_int_t)sr->accepted,
	    "refused", (json_int_t)sr->refused,
	    "motions", (json_int_t)sr->motions,
	    "completed", (json_int_t)sr->completed,
	    "aborted", (json_int_t)sr->aborted,
	    "expired", (json_int_t)sr->expired,
	    "bad_cookies", (json_int_t)sr->bad_cookies,
	    "malformed", (json_int_t)sr->malformed,
	    "vms", vms);
	if (o == NULL)
		abort();
	return (o);
}
