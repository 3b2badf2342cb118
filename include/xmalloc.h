/*
 * xmalloc.h -- allocation that never returns NULL (OpenSSH/tmux).
 * Running out of memory is a broken invariant, not a peer's fault.
 */
#ifndef VRELAY_XMALLOC_H
#define VRELAY_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
