/*
 * tree.h -- <sys/tree.h> (libbsd's overlay) with what its
 * RB_GENERATE_STATIC needs: libbsd leaves __unused undefined, as Linux
 * headers have struct members of that name.  Include it last.
 */
#ifndef VRELAY_TREE_H
#define VRELAY_TREE_H

#include <sys/tree.h>

#ifndef __unused
#define __unused __attribute__((__unused__))
#endif

#endif /* VRELAY_TREE_H */
