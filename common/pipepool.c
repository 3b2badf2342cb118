/*
 * pipepool.c -- empty pipes lent for splice(2) (pipepool.h).
 *
 * Pipes are made non-blocking and close-on-exec, and asked for SIZE
 * bytes of capacity on creation only: a kept pipe keeps its size.  An
 * unprivileged user may hold fs.pipe-user-pages-soft (16,384) pipe
 * pages; past that the kernel makes new pipes at its smallest and
 * refuses to grow them, and they still splice, so the resize is best
 * effort.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "pipepool.h"
#include "xmalloc.h"

struct pipepool {
	size_t	  keep;
	size_t	  size;
	size_t	  n;
	int	(*p)[2];	/* keep of them; n empty ones kept */
};

/* A pool; see pipepool.h. */
struct pipepool *
pipepool_new(size_t keep, size_t size)
{
	struct pipepool	*pp;

	pp = xcalloc(1, sizeof(*pp));
	pp->keep = keep;
	pp->size = size;
	if (keep > 0)
		pp->p = xcalloc(keep, sizeof(*pp->p));
	return (pp);
}

/* Close what is kept and free the pool. */
void
pipepool_free(struct pipepool *pp)
{
	if (pp == NULL)
		return;
	while (pp->n > 0) {
		pp->n--;
		close(pp->p[pp->n][0]);
		close(pp->p[pp->n][1]);
	}
	free(pp->p);
	free(pp);
}

/* An empty pipe: a kept one, or a new one. */
int
pipepool_get(struct pipepool *pp, int p[2])
{
	if (pp->n > 0) {
		pp->n--;
		p[0] = pp->p[pp->n][0];
		p[1] = pp->p[pp->n][1];
		return (0);
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1) {
		p[0] = p[1] = -1;
		return (-1);
	}
	if (pp->size > 0)
		(void)fcntl(p[1], F_SETPIPE_SZ, (int)pp->size);
	return (0);
}

/* Keep P if it is empty and there is room; close it otherwise. */
void
pipepool_put(struct pipepool *pp, int p[2], int empty)
{
	if (p[0] == -1)
		return;
	if (empty && pp->n < pp->keep) {
		pp->p[pp->n][0] = p[0];
		pp->p[pp->n][1] = p[1];
		pp->n++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

/* EINVAL, ENOSYS, EOPNOTSUPP: the kernel cannot splice these fds. */
int
pipepool_refused(int err)
{
	return (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP);
}

/* N bytes of the pipe whose read end is FD to the end of DST, copied. */
void
pipepool_copyout(int fd, struct evbuffer *dst, size_t n)
{
	int	r;

	while (n > 0) {
		r = evbuffer_read(dst, fd, n > INT_MAX ? INT_MAX : (int)n);
		if (r <= 0)
			abort();	/* a pipe the caller filled */
		n -= (size_t)r;
	}
}

/* Drop N bytes from the front of the pipe FD: to DEVNULL, not copied. */
void
pipepool_drop(int fd, size_t n, int devnull)
{
	char	buf[4096];
	ssize_t	r;

	while (n > 0) {
		r = splice(fd, NULL, devnull, NULL, n, SPLICE_F_NONBLOCK);
		if (r <= 0)
			r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r <= 0)
			abort();	/* a pipe the caller filled */
		n -= (size_t)r;
	}
}
