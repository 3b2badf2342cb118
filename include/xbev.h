/*
 * xbev.h -- what libevent 2.1's socket bufferevents lack: reads larger
 * than 4 KiB per wakeup.
 */
#ifndef VRELAY_XBEV_H
#define VRELAY_XBEV_H

#include <stddef.h>

struct bufferevent;

#define XBEV_READ	(64 * 1024)	/* per read() */
#define XBEV_LIBEVENT_READ 4096		/* libevent 2.1's EVBUFFER_MAX_READ */

/*
 * Read on from a plain socket bufferevent's fd into its input, in
 * reads of up to XBEV_READ, until the input holds MAX bytes (or its
 * read high mark, if lower) or the socket has no more.  EOF and errors
 * are left for libevent's next read to report.  A TLS bufferevent (or
 * one without an fd) is left alone, and so is an input of less than
 * XBEV_LIBEVENT_READ (libevent's read emptied the socket).  Returns the
 * bytes read.
 */
size_t	xbev_read_more(struct bufferevent *, size_t);

#endif
