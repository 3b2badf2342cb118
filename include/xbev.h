/*
 * xbev.h -- what libevent 2.1's socket bufferevents lack: reads larger
 * than 4 KiB per wakeup (the forwarder's copy path), and the readv loop
 * that xsock's reads use too.
 */
#ifndef VRELAY_XBEV_H
#define VRELAY_XBEV_H

#include <sys/types.h>

#include <stddef.h>

struct bufferevent;
struct evbuffer;

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
/*
 * Read from FD into BUF's free space, FIRST bytes first and then in
 * reads of up to XBEV_READ, until BUF has MAX more bytes or a read
 * comes back short.  Each read reserves what it asks for, and a chain
 * keeps its size when moved to another buffer: a small FIRST keeps a
 * small message from holding a 64 KiB chain.  Returns the bytes read;
 * when there are none, 0 at EOF or -1 and errno, as read(2).  *DRY is
 * set when the socket was found empty (short read, EAGAIN, EOF).  *ERR
 * is the errno of a read that failed after bytes were read (0: none):
 * the kernel reports a socket error once.
 */
ssize_t	xbev_readv(struct evbuffer *, int, size_t, size_t, int *, int *);
#endif
