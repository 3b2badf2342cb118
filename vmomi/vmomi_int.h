/*
 * vmomi_int.h -- libvmomi internals shared by http.c (the curl multi
 * transport on libevent), soap.c (envelopes, the parser, faults) and
 * vmomi.c (sessions and operations).  Not installed, not for callers.
 */
#ifndef VRELAY_VMOMI_INT_H
#define VRELAY_VMOMI_INT_H

#include <stddef.h>

#include "vmomi.h"

#define VMOMI_MSG_MAX		512	/* one-line reasons */
#define VMOMI_OBJECTS_MAX	100000	/* objects in one update */
#define VMOMI_CHANGES_MAX	1000000	/* changes + missing, in total */
#define VMOMI_REQUEST_MAX	(1024 * 1024)	/* one request envelope */
#define VMOMI_COOKIE_MAX	256	/* vmware_soap_session value */
#define VMOMI_CONNECT_MS	10000	/* connect timeout ceiling */
#define VMOMI_LOGOUT_MS		5000	/* vmomi_reset's parting Logout */

/* http.c: one curl multi handle on the caller's event base. */
struct event_base;
struct http;
struct http_xfer;

struct http_conf {
	const char		*url;
	const char		*cacert;	/* NULL: system's */
	const unsigned char	*pin;		/* NULL: no pin */
	size_t			 pinlen;	/* 20 or 32 */
	int			 insecure;
	size_t			 max_response;
};

/* What a finished transfer hands its callback (valid during it). */
struct http_result {
	int		 err;		/* VMOMI_OK: status/body are set */
	const char	*msg;		/* reason when err != VMOMI_OK */
	long		 status;
	const char	*body;		/* NUL-terminated, LEN bytes */
	size_t		 len;
	const char	*cookie;	/* vmware_soap_session value or NULL */
	const char	*ctype;		/* Content-Type, or NULL */
};

typedef void	http_cb(const struct http_result *, void *);

int		 http_new(struct event_base *, const struct http_conf *,
		    struct http **, char *, size_t);
void		 http_free(struct http *);
int		 http_post(struct http *, char *, size_t, const char *,
		    long long, http_cb *, void *, struct http_xfer **,
		    char *, size_t);
void		 http_xfer_free(struct http_xfer *);

/* soap.c: request envelopes. */
struct soap_msg;

struct soap_msg	*soap_msg_new(const char *, const struct vmomi_moref *);
void		 soap_msg_free(struct soap_msg *);
void		 soap_msg_open(struct soap_msg *, const char *);
void		 soap_msg_close(struct soap_msg *, const char *);
void		 soap_msg_raw(struct soap_msg *, const char *);
void		 soap_msg_text(struct soap_msg *, const char *, const char *);
void		 soap_msg_typed(struct soap_msg *, const char *, const char *,
		    const char *);
void		 soap_msg_moref(struct soap_msg *, const char *,
		    const struct vmomi_moref *);
int		 soap_msg_finish(struct soap_msg *, char **, size_t *, char *,
		    size_t);
void		 soap_msg_spec(struct soap_msg *, const char *,
		    const struct vmomi_spec *);
int		 soap_spec_ok(const struct vmomi_spec *);
int		 soap_moref_ok(const struct vmomi_moref *);

/*
 * soap.c: the parser and values; vmomi.c exports them as vmomi_parse,
 * vmomi_parsed_*, vmomi_val_* and vmomi_thumbprint_parse (vmomi.h).
 */
int		 soap_parse(const char *, size_t, long, const char *,
		    struct vmomi_parsed **, char *, size_t);
const struct vmomi_update *soap_parsed_update(const struct vmomi_parsed *);
int		 soap_parsed_moref(const struct vmomi_parsed *,
		    struct vmomi_moref *);
const struct vmomi_val *soap_parsed_val(const struct vmomi_parsed *);
int		 soap_parsed_service(const struct vmomi_parsed *,
		    struct vmomi_service *);
void		 soap_parsed_free(struct vmomi_parsed *);
const char	*soap_val_type(const struct vmomi_val *);
const char	*soap_val_text(const struct vmomi_val *);
int		 soap_val_moref(const struct vmomi_val *,
		    struct vmomi_moref *);
int		 soap_val_int(const struct vmomi_val *, long long *);
const struct vmomi_val *soap_val_child(const struct vmomi_val *,
		    const char *);
const struct vmomi_val *soap_val_next(const struct vmomi_val *);
char		*soap_escape(const char *);
int		 soap_thumbprint_parse(const char *, unsigned char *, size_t);
/* The VMOMI_E_* code of a fault type ("ManagedObjectNotFound"). */
int		 soap_fault_code(const char *);

/* http.c, soap.c: what vmomi_forward and vmomi_request_parse need. */
int		 http_post_action(struct http *, char *, size_t,
		    const char *, const char *, long long, http_cb *, void *,
		    struct http_xfer **, char *, size_t);
int		 soap_request_parse(const char *, size_t,
		    struct vmomi_request *, char *, size_t);
int		 soap_notauth(const char *, size_t, long);

#endif
