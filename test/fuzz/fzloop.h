/*
 * fzloop.h -- what the session harnesses (hs_fuzz, hsc_fuzz) share: a
 * script read a byte at a time, the text check, and the event loop run
 * in passes until nothing moves, with busy loops caught.
 */
#ifndef VRELAY_FZLOOP_H
#define VRELAY_FZLOOP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/* The rest of an input. */
struct fz_script {
	const uint8_t	*in;
	size_t		 len;
};

/* The script's next byte, 0 past its end. */
uint8_t	 fz_script_byte(struct fz_script *);
/* The script's next 8 bytes as a big-endian number. */
uint64_t fz_script_u64(struct fz_script *);
/* CHECK that S is printable ASCII, as every reason and message must be. */
void	 fz_text(const char *);

/*
 * The event base, with SIGPIPE ignored (as the daemons do).  NAME is
 * the harness's, for messages; its busy loops abort unless the
 * environment variable SPIN_ENV is "ignore" (fzloop_settle).
 */
struct event_base *fzloop_init(const char *, const char *);
/*
 * Run the loop, calling READ (which reads whatever the harness's ends
 * have waiting and returns how many bytes) after each pass, until
 * nothing moves.  -1 if the loop stayed busy with nothing moving and
 * busy loops are ignored: the harness abandons the input and says so
 * once (fzloop_abandoned), for the count printed at exit.
 */
int	 fzloop_settle(size_t (*)(void));
void	 fzloop_abandoned(void);
/*
 * How many close-on-exec descriptors the process has open: a run must
 * leave none of its own (libFuzzer's are not close-on-exec).
 */
int	 fzloop_fds(void);
/* Each open descriptor and what it is, to stderr. */
void	 fzloop_fds_show(void);
/* A few passes with nothing to read: bufferevents finalized. */
void	 fzloop_finish(void);

#endif
