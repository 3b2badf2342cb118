/*
 * admit.h -- bounded admission by source: how many of something (legs
 * in handshake, sessions) each source holds, capped per source and in
 * total, so one guest or one address cannot take every slot.
 */
#ifndef VRELAY_ADMIT_H
#define VRELAY_ADMIT_H

#include <stddef.h>

#include <jansson.h>

struct admit;
struct xaddr_peer;

#define ADMIT_OK	0
#define ADMIT_E_SOURCE	(-1)	/* this source holds its share */
#define ADMIT_E_TOTAL	(-2)	/* every slot is taken */

#define ADMIT_SOURCE_MAX	64	/* "vsock:4294967295", an address */

const char	*admit_strerror(int);
/* At most PER_SOURCE per source and TOTAL in all (0: no cap). */
struct admit	*admit_new(size_t, size_t);
void		 admit_free(struct admit *);
/* Take a slot for SOURCE, or say which cap refused it. */
int		 admit_take(struct admit *, const char *);
/* Give back a slot SOURCE took. */
void		 admit_release(struct admit *, const char *);
size_t		 admit_count(struct admit *, const char *);
size_t		 admit_total(const struct admit *);
/* The source of an accepted peer: the IP, "vsock:CID" or "unix". */
void		 admit_source(const struct xaddr_peer *, char *, size_t);
/* {total, sources, refused_source, refused_total} (new reference). */
json_t		*admit_json(const struct admit *);

#endif
