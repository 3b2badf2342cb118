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
struct evbuffer;

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
 * The byte at offset I of stream X from the client end (fz_up) and
 * from the server end's local side (fz_down): content that is a
 * function of the offset, so a byte duplicated, lost or misplaced
 * shows wherever it lands.
 */
uint8_t	 fz_up(int, uint64_t);
uint8_t	 fz_down(int, uint64_t);

/*
 * Read what the peer wrote on FD into RX, and hand each whole frame
 * to FN (its type, payload and length) with ARG; a bad header is a
 * CHECK.  The bytes read.
 */
size_t	 fz_frames(int, struct evbuffer *,
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
/* A few passes with nothing to read: bufferevents finalized. */
void	 fzloop_finish(void);

#endif
