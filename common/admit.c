/*
 * admit.c -- per-source counters with caps (admit.h).  A red-black
 * tree of the sources that hold at least one slot; an entry goes when
 * its count drops to zero, so the tree is as large as the sources
 * active now, never more than the total cap.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "tree.h"

struct admit_src {
	char			 key[ADMIT_SOURCE_MAX];
	size_t			 n;
	RB_ENTRY(admit_src)	 entry;
};
RB_HEAD(admit_tree, admit_src);

struct admit {
	struct admit_tree	 tree;
	size_t			 per_source;
	size_t			 total_max;
	size_t			 total;
	size_t			 nsources;
	unsigned long long	 refused[2];	/* by source, in total */
};

static int
admit_cmp(const struct admit_src *a, const struct admit_src *b)
{
	return (strcmp(a->key, b->key));
}
RB_GENERATE_STATIC(admit_tree, admit_src, entry, admit_cmp);

static const char *admit_errors[] = {
	[-ADMIT_OK] = "admitted",
	[-ADMIT_E_SOURCE] = "too many from this source",
	[-ADMIT_E_TOTAL] = "too many in all",
};

/* An ADMIT_* code as text. */
const char *
admit_strerror(int e)
{
	if (e > 0 || -e >= (int)(sizeof(admit_errors) /
	    sizeof(admit_errors[0])))
		return ("unknown admission error");
	return (admit_errors[-e]);
}

/* Counters capped at PER_SOURCE each and TOTAL in all (0: none). */
struct admit *
admit_new(size_t per_source, size_t total)
{
	struct admit	*a;

	a = xcalloc(1, sizeof(*a));
	RB_INIT(&a->tree);
	a->per_source = per_source;
	a->total_max = total;
	return (a);
}

/* Free; NULL is fine. */
void
admit_free(struct admit *a)
{
	struct admit_src	*s, *next;

	if (a == NULL)
		return;
	RB_FOREACH_SAFE(s, admit_tree, &a->tree, next) {
		RB_REMOVE(admit_tree, &a->tree, s);
		free(s);
	}
	free(a);
}

/* The entry for KEY, or NULL. */
static struct admit_src *
admit_find(struct admit *a, const char *key)
{
	struct admit_src	find;

	if (strlcpy(find.key, key, sizeof(find.key)) >= sizeof(find.key))
		return (NULL);
	return (RB_FIND(admit_tree, &a->tree, &find));
}

/* Take a slot for KEY unless a cap says no. */
int
admit_take(struct admit *a, const char *key)
{
	struct admit_src	*s;

	if (a->total_max > 0 && a->total >= a->total_max) {
		a->refused[1]++;
		return (ADMIT_E_TOTAL);
	}
	if ((s = admit_find(a, key)) == NULL) {
		s = xcalloc(1, sizeof(*s));
		(void)strlcpy(s->key, key, sizeof(s->key));
		RB_INSERT(admit_tree, &a->tree, s);
		a->nsources++;
	}
	if (a->per_source > 0 && s->n >= a->per_source) {
		a->refused[0]++;
		return (ADMIT_E_SOURCE);
	}
	s->n++;
	a->total++;
	return (ADMIT_OK);
}

/* Give back one of KEY's slots. */
void
admit_release(struct admit *a, const char *key)
{
	struct admit_src	*s;

	if ((s = admit_find(a, key)) == NULL || s->n == 0)
		return;
	a->total--;
	if (--s->n == 0) {
		RB_REMOVE(admit_tree, &a->tree, s);
		a->nsources--;
		free(s);
	}
}

/* Slots KEY holds. */
size_t
admit_count(struct admit *a, const char *key)
{
	struct admit_src	*s;

	return ((s = admit_find(a, key)) != NULL ? s->n : 0);
}

/* Slots held in all. */
size_t
admit_total(const struct admit *a)
{
	return (a->total);
}

/*
 * Where a peer comes from, for counting: its IP address without the
 * port, its vSocket CID, or "unix" (every local process is one source:
 * the status socket's uid check is their wall).
 */
void
admit_source(const struct xaddr_peer *p, char *buf, size_t len)
{
	char	*colon;

	switch (p->type) {
	case XADDR_VSOCK:
		snprintf(buf, len, "vsock:%u", p->cid);
		break;
	case XADDR_TCP:
		(void)strlcpy(buf, p->str, len);
		if ((colon = strrchr(buf, ':')) != NULL &&
		    colon > buf + strlen("tcp://"))
			*colon = '\0';
		break;
	default:
		(void)strlcpy(buf, "unix", len);
		break;
	}
}

/* Counters for status (new reference). */
json_t *
admit_json(const struct admit *a)
{
	return (json_pack("{s:I, s:I, s:I, s:I}",
	    "total", (json_int_t)a->total,
	    "sources", (json_int_t)a->nsources,
	    "refused_source", (json_int_t)a->refused[0],
	    "refused_total", (json_int_t)a->refused[1]));
}
