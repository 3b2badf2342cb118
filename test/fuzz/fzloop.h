/*
 * fzloop.h -- what the session harnesses (hs_fuzz, hsc_fuzz) share: a
 * script read a byte at a time, the streams' content, the frame reader,
 * the event loop run in passes until nothing moves (busy loops caught),
 * and the check that a run leaves no descriptor.
 */
#ifndef VRELAY_FZLOOP_H
#define VRELAY_FZLOOP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

/* The rest of an input. */
struct fzloop_script {
	const uint8_t	*in;
	size_t		 len;
};

/* The script's next byte, 0 past its end. */
uint8_t	 fzloop_byte(struct fzloop_script *);
/* The script's next 8 bytes as a big-endian number. */
uint64_t fzloop_u64(struct fzloop_script *);

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
 * busy loops are ignored: the harness abandons the input (counted at
 * its fzloop_finish, for the report at exit).
 */
int	 fzloop_settle(size_t (*)(void));
/* STEP(ARG) and fzloop_settle(READ) until the script ends; -1: spun. */
int	 fzloop_run(struct fzloop_script *, void (*)(void *), void *,
	    size_t (*)(void));
/*
 * The end of an input: a few passes with nothing to read (bufferevents
 * finalized), and a busy loop met during it counted.
 */
void	 fzloop_finish(void);

/*
 * The byte at offset I of stream X from the client end (fzloop_up) and
 * from the server end's local side (fzloop_down): content that is a
 * function of the offset, so a byte duplicated, lost or misplaced
 * shows wherever it lands.
 */
uint8_t	 fzloop_up(int, uint64_t);
uint8_t	 fzloop_down(int, uint64_t);

/*
 * Read what the peer wrote on FD into RX, and hand each whole frame
 * to FN (its type, payload and length) with ARG; a bad header is a
 * CHECK.  The bytes read.
 */
size_t	 fzloop_frames(int, struct evbuffer *,
	    void (*)(void *, int, const uint8_t *, size_t), void *);

/*
 * Descriptors: the close-on-exec ones open now are the baseline (call
 * it once the libraries have opened what they keep), and
 * fzloop_fds_check() aborts, listing them, if a run left more or fewer
 * (everything the code under test and the harnesses open is
 * close-on-exec; what libFuzzer opens for itself is not).
 */
void	 fzloop_fds_baseline(void);
void	 fzloop_fds_check(void);

#endif
