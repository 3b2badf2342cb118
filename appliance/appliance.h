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
#define PROXY_HDR_MAX		(16 + 3 + 255 + 3 + 4 + 3 + 4 + 3 + 16)

struct appliance_conf {
	struct conf_list	 listen;
	char			*backend;
	int			 proxy_v2;
	char			*status;
	char			*vsock_dir;
	long long		 vsock_cid;
	int			 debug;
	int			 quiet;
	struct daemon_sessconf	 sess;
	struct daemon_tlsconf	 tls;
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
};

/* proxy.c */
size_t	proxy_v2_header(uint8_t *, size_t, const char *, uint32_t,
	    uint32_t, const char *);

#endif
