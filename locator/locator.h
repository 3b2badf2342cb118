/*
 * locator.h -- vlocator, which follows the appliance VM through vSphere
 * and pushes where it runs to every relay.
 *
 *   watch.c     the vSphere side: login, find the VM, a private
 *               PropertyCollector watching the VM's runtime.host and
 *               VMCI device, every HostSystem's name, and migration
 *               events (hints); retry, re-login and resync
 *   registry.c  the relays: the push listener (docs/push.md), one
 *               record per relay host, pushes, ACKs, keepalives
 *   publish.c   the published target and its epoch: what watch.c
 *               knows plus the appliance host's relay address
 *   control.c   the status socket: status, where, relays, watch
 *   gate.c      the vmomi agent's door: TLS legs from relays, their
 *               attestation line, the server end of the appliance's
 *               vmomi sessions, each one's local end an agent.c stream
 */
#ifndef VRELAY_LOCATOR_H
#define VRELAY_LOCATOR_H

#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "daemon.h"

struct registry;
struct watch;
struct agent;
struct gate;

struct locator_conf {
	char			*vcenter;
	char			*credentials;
	char			*thumbprint;
	char			*cacert;
	int			 insecure;
	char			*vm;
	char			*listen;
	char			*status;
	char			*appliance;
	long long		 appliance_port;
	long long		 keepalive_ms;
	long long		 poll_ms;
	char			*vmomi_policy;
	long long		 vmomi_max_request;
	long long		 session_check_ms;
	long long		 timeout_ms;
	long long		 retry_max_ms;
	long long		 max_relays;
	char			*vmomi_listen;
	char			*vmomi_advertise;
	int			 debug;
	int			 quiet;
	struct daemon_tlsconf	 tls;
};

/* The target as published: what every relay should converge on. */
struct publish {
	uint64_t		 epoch;		/* 0: nothing published yet */
	char			*host;		/* appliance host (vSphere name) */
	char			*relay;		/* that host's relay, or NULL */
	char			*appliance;	/* vsock://CID:PORT, or NULL */
	long long		 since_ms;	/* wall clock of the change */
	long long		 at_ms;		/* monotonic, for lag */
	uint64_t		 floor;		/* highest epoch a relay held */
	uint64_t		 changes;
};

struct locator {
	struct daemon		 d;	/* first: see daemon.h */
	struct locator_conf	 conf;
	char			*user;
	char			*password;
	struct watch		*watch;
	struct registry		*reg;
	struct publish		 pub;
	struct gate		*gate;	/* NULL without --vmomi-listen */
	struct agent		*agent;
};

/* watch.c */
struct watch	*watch_new(struct locator *);
void		 watch_free(struct watch *);
void		 watch_start(struct watch *);
/* The appliance's host as vSphere names it, or NULL if not known. */
const char	*watch_host(const struct watch *);
/* The appliance VM's VMCI context id (vSocket CID), or -1. */
long long	 watch_cid(const struct watch *);
/* 1 if vSphere has a HostSystem named NAME, 0 if not, -1 if unsure. */
int		 watch_host_known(const struct watch *, const char *);
/* The appliance VM's moref, or NULL before it was found. */
struct vmomi_moref;
const struct vmomi_moref *watch_vm(const struct watch *);
/* The watch state's name ("live" when in sync). */
const char	*watch_state(const struct watch *);
json_t		*watch_json(const struct watch *);

/* registry.c */
struct registry	*registry_new(struct locator *);
void		 registry_free(struct registry *);
/* The mesh address the relay on HOST registered, or NULL. */
const char	*registry_relay_addr(const struct registry *, const char *);
/* Send the published target to every relay that does not have it. */
void		 registry_push(struct registry *);
/* Tell every relay that the appliance is moving to HOST (EVENT). */
void		 registry_hint(struct registry *, const char *, const char *);
/* vSphere's host list changed: re-check which relays it knows. */
void		 registry_hosts_changed(struct registry *);
json_t		*registry_json(const struct registry *);
json_t		*registry_summary(const struct registry *);

/* publish.c */
/* Recompute the target from watch and registry; push if it changed. */
void		 publish_update(struct locator *, const char *);
/* A relay reported EPOCH: publish above it from now on. */
void		 publish_floor(struct locator *, uint64_t);
json_t		*publish_json(const struct locator *);
void		 publish_free(struct publish *);

/* vlocator.c: the option table and credentials, shared with ginfo.c */
extern const struct conf_opt	locator_opts[];
extern const size_t		locator_nopts;
void		 locator_credentials(const char *, char **, char **);
void		 locator_wipe(char **);
struct vmomi_conf;
void		 locator_vmomi_conf(const struct locator_conf *, const char *,
		    const char *, struct vmomi_conf *);

/* ginfo.c: vlocator guestinfo get|set|watch; ARGV from the verb on */
int		 ginfo_main(int, char **);

/* Who is calling, as the current leg's relay attested it. */
struct agent_caller {
	char		host[256];	/* the relay's host (vSphere name) */
	uint32_t	cid;		/* the caller VM's vSocket CID */
};

/* agent.c */
struct agent	*agent_new(struct locator *);
void		 agent_free(struct agent *);
/* Serve SOAP over HTTP on FD (connected, the agent owns it), session ID. */
void		 agent_serve(struct agent *, int, uint64_t);
json_t		*agent_json(const struct agent *);

/* gate.c */
/* The vmomi listener, or NULL without --vmomi-listen (fatal: startup). */
struct gate	*gate_new(struct locator *);
void		 gate_free(struct gate *);
/* The caller of session ID now; -1 if that session is gone. */
int		 gate_caller(const struct gate *, uint64_t,
		    struct agent_caller *);
/* The address relays reach the agent at (WELCOME's "vmomi"), or NULL. */
const char	*gate_advertise(const struct gate *);
json_t		*gate_json(const struct gate *);

/* control.c */
void		 control_init(struct locator *);
/* Log and broadcast a locator event (EV is stolen). */
void		 control_event(struct locator *, const char *, json_t *);

#endif
