/*
 * appliance.h -- vappliance, the appliance end of every session: it
 * terminates relayed sessions (common/sess.c, server role) and gives
 * each one its own connection to the local backend service.
 */
#ifndef VRELAY_APPLIANCE_H
#define VRELAY_APPLIANCE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "daemon.h"

struct xaddr;

#define APPLIANCE_LISTEN_MAX	16

/* PROXY v2 TLV types we add (the custom range 0xE0-0xEF). */
#define PROXY_TLV_HOST		0xE0	/* guest's ESX host name */
#define PROXY_TLV_CID		0xE1	/* guest's vSocket CID, u32 BE */
#define PROXY_TLV_PORT		0xE2	/* guest's vSocket port, u32 BE */
#define PROXY_TLV_UNIQUE_ID	0x05	/* PP2_TYPE_UNIQUE_ID: session id */
#define PROXY_TLV_SERVICE	0xE3	/* serial VMs: "vspc" or "serial" */
#define PROXY_TLV_VM_UUID	0xE4	/* the VM's vCenter UUID */
#define PROXY_TLV_VM_NAME	0xE5	/* the VM's name (UTF-8) */
#define PROXY_TLV_BIOS_UUID	0xE6	/* the VM's BIOS UUID */
/* The larger of the two headers: a serial VM's (proxy_v2_serial_header). */
#define PROXY_HDR_MAX		(16 + 3 + 255 + 3 + 16 + 3 + 128 + 3 + 160 + \
				    3 + 128 + 3 + 16)

/* A serial VM's identity for its backend connection; NULL: absent. */
struct proxy_id {
	const char	*host;		/* the ingress relay's host */
	const char	*service;
	const char	*uuid;
	const char	*name;
	const char	*bios;
	const char	*id;		/* the VM stream's id, 16 hex digits */
};


/* Serial ports (serial.c): vSPC and pipe-backed, docs/serial.md. */
struct serial_conf {
	long long	motion_ms;	/* GOAHEAD to COMPLETE, at most */
	long long	hold_ms;	/* a VM with no VM side, at most */
	long long	ident_ms;	/* a new conn says who it is */
	long long	buffer_max;	/* held bytes per VM and per conn */
};

struct appliance_conf {
	struct conf_list	 listen;
	struct conf_list	 vmomi_listen;
	char			*vmomi_relay;
	char			*backend;
	int			 proxy_v2;
	char			*status;
	char			*vsock_dir;
	long long		 vsock_cid;
	int			 debug;
	int			 quiet;
	struct daemon_sessconf	 sess;
	struct daemon_tlsconf	 tls;
	struct serial_conf	 serial;
};

struct appliance {
	struct daemon		 d;	/* first: see daemon.h */
	struct appliance_conf	 conf;
	struct xaddr		*backend;
	struct evconnlistener	*listen_l[APPLIANCE_LISTEN_MAX];
	struct xaddr		*listen_a[APPLIANCE_LISTEN_MAX];
	size_t			 nlisten;
	uint64_t		 legs;
	uint64_t		 refused;
	uint64_t		 backend_fail;
	struct serial		*serial;
	/* vSphere SOAP to the locator's agent: client sessions (d.clients). */
	struct evconnlistener	*vmomi_l[APPLIANCE_LISTEN_MAX];
	struct xaddr		*vmomi_a[APPLIANCE_LISTEN_MAX];
	size_t			 nvmomi;
	struct xaddr		*vmomi_relay;
	uint64_t		 vmomi_accepted;
};

/* proxy.c */
size_t	proxy_v2_header(uint8_t *, size_t, const char *, uint32_t,
	    uint32_t, const char *);
size_t	proxy_v2_serial_header(uint8_t *, size_t, const struct proxy_id *);

/* serial.c */
struct sess;
struct serial;
struct serial	*serial_new(struct event_base *, const struct xaddr *, int,
		    const struct serial_conf *);
void		 serial_free(struct serial *);
/* A serial session's conn: 0, or a PROTO_E_* code and why refused. */
int		 serial_open(struct serial *, struct sess *, const char **);
json_t		*serial_json(const struct serial *);

#endif
