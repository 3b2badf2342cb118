/*
 * pipepool.h -- empty pipes lent for splice(2), kept for reuse.
 *
 * A splice from one socket to another goes through a pipe.  A pipe is
 * lent only while it holds bytes in flight and given back empty, so an
 * idle stream holds none; a few empty ones are kept, so a busy stream
 * does not pay pipe2() and two close() per wakeup.
 */
#ifndef VRELAY_PIPEPOOL_H
#define VRELAY_PIPEPOOL_H

#include <stddef.h>

struct evbuffer;
struct pipepool;

/* A pool that keeps up to KEEP empty pipes of SIZE bytes (0: default). */
struct pipepool	*pipepool_new(size_t keep, size_t size);
/* Close the kept pipes and free the pool (NULL: nothing). */
void		 pipepool_free(struct pipepool *);
/* An empty pipe in P (read end, write end): 0, or -1 and errno. */
int		 pipepool_get(struct pipepool *, int p[2]);
/*
 * Give back P (nothing if P[0] is -1): kept if EMPTY and there is room,
 * else closed.  P is set to -1 either way.
 */
void		 pipepool_put(struct pipepool *, int p[2], int empty);
/* Whether splice(2) failing with ERR means these fds cannot splice. */
int		 pipepool_refused(int err);
/*
 * N bytes of the pipe whose read end is FD (it holds them: else abort)
 * to the end of DST, copied; or dropped, spliced to DEVNULL (an open
 * /dev/null) or read away where the kernel will not.
 */
void		 pipepool_copyout(int, struct evbuffer *, size_t);
void		 pipepool_drop(int, size_t, int);

#endif
