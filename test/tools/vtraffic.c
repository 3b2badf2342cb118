/*
 * vtraffic -- containerVM traffic generator and backend service for
 * vrelay's integration tests, demo and benchmarks.
 *
 *	vtraffic serve --listen ADDR [--listen ADDR ...]
 *	    [--mode echo|sink|source] [--source-bytes N] [--slow BYTES/S]
 *	    [--proxy-v2] [--report FILE]
 *	vtraffic run --connect ADDR --sessions N --bytes SPEC
 *	    [--pattern echo|sink|source] [--expect-bytes N]
 *	    [--concurrency C] [--seed S] [--timeout SECS] [--progress]
 *	    [--duration-report] [--json] [--duration SECS]
 *	    [--report FILE] [--timeline FILE] [--label L]
 *	common: [--vsock-dir DIR --vsock-cid CID] [-v]
 *
 * ADDR is tcp://HOST:PORT, unix:PATH or vsock://CID:PORT (xaddr.h);
 * --vsock-dir/--vsock-cid switch to emulated vsock.  Sizes take K, M
 * and G suffixes (powers of 1024).
 *
 * serve: echo sends every byte back (reading pauses while more than
 * 1 MiB waits to be sent), shuts its write side after the client's EOF
 * and closes.  sink reads and discards, and after the client's EOF
 * answers with a receipt: the 32-byte SHA-256 and u64 (big-endian)
 * count of what it read.  source sends --source-bytes of
 * the seed-0 stream to every connection.  --slow caps each
 * connection's read rate.  --proxy-v2 requires a PROXY v2 header first
 * and records its TLVs 0xE0 (host), 0xE1 (guest CID) and 0x05 (unique
 * id).  --report appends one JSON line per closed connection:
 *	{"conn":1,"peer":..,"bytes_in":..,"bytes_out":..,"sha256_in":..,
 *	 "proxy":{"host":..,"cid":..,"unique_id":hex,"src":..,"dst":..}}
 * ("proxy" is null without a header; "error" is added on failure).
 * Peer errors are logged, never fatal.  SIGINT/SIGTERM stop it.
 *
 * run: opens N sessions, C at a time (default all).  Session I sends a
 * deterministic stream keyed by (seed, I) whose size is drawn from SPEC:
 * "64M" for all, or "MIN:MAX" spread log-uniformly across sessions by
 * the seed.  It reads the echo while sending, shuts its write side when
 * all is sent, reads to EOF, and checks every byte as it arrives and the
 * SHA-256 at the end.  --pattern sink expects only the sink's receipt
 * (after our EOF: SHA-256 and u64 count of what it read) and checks it
 * against what was sent, so a sink that quit early fails; --pattern
 * source sends nothing and expects --expect-bytes of the seed-0 stream
 * (a source server).  Prints one JSON summary line on stdout (--json is
 * accepted; the summary is always JSON); exit status 0 only if every
 * session was ok.  Its bytes_lost and duplicates add up, over sessions
 * that ended by themselves (not stopped by --timeout or SIGINT, whose
 * bytes may still be in flight), what was sent but never came back and
 * what came back beyond what was sent (sink: by the receipt's count;
 * source: against --expect-bytes).  --duration-report adds per-session
 * duration percentiles; --progress prints a line to stderr every
 * second.
 *
 * --duration SECS (decimal, may be fractional) makes each echo or sink
 * session send until SECS have passed since it started, then shut its
 * write side and be judged as above on what it did send; --bytes, then
 * optional, caps each session.  --report appends one JSON line per
 * session as it ends:
 *	{"session":0,"label":..,"ok":true,"error":null,"bytes_sent":..,
 *	 "sha256_sent":..,"bytes_received":..,"sha256_received":..,
 *	 "bytes_verified":..,"start_ms":..,"end_ms":..}
 * bytes_sent and sha256_sent cover exactly what the kernel took, so
 * they match the echo or sink server's bytes_in and sha256_in;
 * bytes_verified is the prefix that matched the expected stream; times
 * are wall-clock ms (start_ms is null for a session never started).
 * --timeline appends, every 250 ms, "t_ms,label,session,rx_bytes" for
 * each connected session not yet done: the bytes it received in that
 * interval (0 shows a stall); each tick is one write.  --label
 * (printable ASCII, no comma or quote; default "vtraffic") tags both.
 *
 * Test only (not in usage): serve --corrupt-at OFFSET flips the echoed
 * byte at that stream offset of every connection, to prove the verifier.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"
#include "xaddr.h"
#include "xmalloc.h"

#define SINK_RECEIPT_LEN	40	/* SHA-256 + u64 count */
#define VT_CHUNK		(64 * 1024)	/* generate/verify step */
#define VT_IO_MAX		(256 * 1024)	/* bytes per read or write */
#define VT_SIZE_MAX		(1ULL << 40)	/* any size argument */
#define VT_SHA_HEX		(2 * 32 + 1)

#define SEND_HIGH		(1024 * 1024)	/* unsent bytes per session */
#define SEND_LOW		(256 * 1024)	/* refill below this */
#define ECHO_HIGH		(1024 * 1024)	/* pause reading above this */
#define ECHO_LOW		(512 * 1024)	/* resume at or below this */

#define SERVE_LISTEN_MAX	16
#define SERVE_BACKLOG		1024
#define SERVE_RETRY_SEC		1	/* listeners paused after EMFILE */
#define SLOW_TICK_MSEC		100

#define RUN_SESSIONS_MAX	1000000
#define RUN_FAILURES_MAX	10	/* failures listed in the summary */
#define RUN_RETRY_MSEC		10	/* connect retry on EAGAIN */
#define RUN_TIMEOUT_DEFAULT	300
#define RUN_TIMELINE_MSEC	250
#define RUN_LABEL_MAX		64

/* HAProxy PROXY protocol v2 (doc/proxy-protocol.txt, section 2.2). */
#define PP2_SIG			"\r\n\r\n\0\r\nQUIT\n"
#define PP2_SIG_LEN		12
#define PP2_HDR_LEN		16
#define PP2_VERSION		0x2
#define PP2_CMD_LOCAL		0x0
#define PP2_CMD_PROXY		0x1
#define PP2_AF_INET		0x1
#define PP2_AF_INET6		0x2
#define PP2_AF_UNIX		0x3
#define PP2_TLV_UNIQUE_ID	0x05
#define PP2_TLV_HOST		0xe0	/* vrelay: ESX host name */
#define PP2_TLV_CID		0xe1	/* vrelay: guest CID, u32 */
#define PP2_UNIQUE_ID_MAX	128
#define PP2_HOST_MAX		255

#define NO_MISMATCH		UINT64_MAX

#ifndef nitems
#define nitems(a)		(sizeof(a) / sizeof((a)[0]))
#endif

/* Options that are not single letters. */
enum {
	OPT_LISTEN = 256,
	OPT_MODE,
	OPT_SOURCE_BYTES,
	OPT_SLOW,
	OPT_PROXY_V2,
	OPT_REPORT,
	OPT_CORRUPT_AT,
	OPT_CONNECT,
	OPT_SESSIONS,
	OPT_BYTES,
	OPT_CONCURRENCY,
	OPT_SEED,
	OPT_TIMEOUT,
	OPT_PATTERN,
	OPT_EXPECT_BYTES,
	OPT_PROGRESS,
	OPT_DURATIONS,
	OPT_JSON,
	OPT_DURATION,
	OPT_TIMELINE,
	OPT_LABEL,
	OPT_VSOCK_DIR,
	OPT_VSOCK_CID,
};

#define COMMON_OPTIONS						\
	{ "vsock-dir", required_argument, NULL, OPT_VSOCK_DIR },	\
	{ "vsock-cid", required_argument, NULL, OPT_VSOCK_CID },	\
	{ "verbose", no_argument, NULL, 'v' },			\
	{ "help", no_argument, NULL, 'h' }

static const struct option serve_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "source-bytes", required_argument, NULL, OPT_SOURCE_BYTES },
	{ "slow", required_argument, NULL, OPT_SLOW },
	{ "proxy-v2", no_argument, NULL, OPT_PROXY_V2 },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "corrupt-at", required_argument, NULL, OPT_CORRUPT_AT },
	COMMON_OPTIONS,
	{ NULL, 0, NULL, 0 }
};

static const struct option run_options[] = {
	{ "connect", required_argument, NULL, OPT_CONNECT },
	{ "sessions", required_argument, NULL, OPT_SESSIONS },
	{ "bytes", required_argument, NULL, OPT_BYTES },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "pattern", required_argument, NULL, OPT_PATTERN },
	{ "expect-bytes", required_argument, NULL, OPT_EXPECT_BYTES },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "duration-report", no_argument, NULL, OPT_DURATIONS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "timeline", required_argument, NULL, OPT_TIMELINE },
	{ "label", required_argument, NULL, OPT_LABEL },
	COMMON_OPTIONS,
	{ NULL, 0, NULL, 0 }
};

enum serve_mode {
	SERVE_ECHO,
	SERVE_SINK,
	SERVE_SOURCE,
};

/* What a PROXY v2 header told us. */
struct proxy_info {
	int		 has_host;
	char		 host[PP2_HOST_MAX + 1];
	int		 has_cid;
	uint32_t	 cid;
	size_t		 uid_len;
	uint8_t		 uid[PP2_UNIQUE_ID_MAX];
	char		 src[INET6_ADDRSTRLEN + 8];	/* "[addr]:port" */
	char		 dst[INET6_ADDRSTRLEN + 8];
};

/* One accepted connection of the backend service. */
struct conn {
	u_int			 id;
	struct bufferevent	*bev;
	int			 flags;
#define CONN_PROXY	0x1	/* waiting for the PROXY v2 header */
#define CONN_RDEOF	0x2	/* the peer sent EOF */
#define CONN_WRDONE	0x4	/* our write side is shut */
#define CONN_PAUSED	0x8	/* reading paused: output over ECHO_HIGH */
#define CONN_RECEIPT	0x10	/* sink: receipt queued */
	uint64_t		 bytes_in;	/* stream bytes, after PROXY */
	uint64_t		 bytes_out;
	EVP_MD_CTX		*sha_in;
	struct proxy_info	*proxy;
	char			 peer[XADDR_PEER_STRLEN];
	TAILQ_ENTRY(conn)	 entry;
};

static struct {
	enum serve_mode			 mode;
	uint64_t			 source_bytes;
	uint64_t			 slow;		/* bytes/s; 0: off */
	uint64_t			 corrupt_at;	/* UINT64_MAX: off */
	int				 proxy_v2;
	FILE				*report;
	struct ev_token_bucket_cfg	*bucket;
	u_int				 nlisten;
	struct xaddr			*addr[SERVE_LISTEN_MAX];
	struct evconnlistener		*lev[SERVE_LISTEN_MAX];
	struct event			*resume;
	u_int				 next_id;
	TAILQ_HEAD(, conn)		 conns;
} serve;

enum run_pattern {
	PATTERN_ECHO,
	PATTERN_SINK,
	PATTERN_SOURCE,
};

enum session_result {
	RESULT_NONE,
	RESULT_OK,
	RESULT_MISMATCH,
	RESULT_SHORT,
	RESULT_EXTRA,
	RESULT_ERROR,
	RESULT_TIMEOUT,
};
#define RESULT_COUNT		(RESULT_TIMEOUT + 1)
static const char *result_names[RESULT_COUNT] = {
	"none", "ok", "mismatch", "short", "extra", "error", "timeout"
};

/* One containerVM session of a run. */
struct session {
	u_int			 idx;
	int			 state;
#define SESSION_WAITING		0
#define SESSION_ACTIVE		1
#define SESSION_DONE		2
	int			 flags;
#define SESSION_CONNECTED	0x1
#define SESSION_SHUT		0x2	/* our write side is shut */
	uint64_t		 key;		/* stream we send */
	uint64_t		 expect_key;	/* stream we expect back */
	uint64_t		 size;		/* bytes to send */
	uint64_t		 expect;	/* bytes to receive */
	uint64_t		 queued;	/* bytes generated so far */
	uint64_t		 sent;		/* bytes the kernel took */
	uint64_t		 received;
	uint64_t		 rx_mark;	/* received at the last tick */
	uint64_t		 mismatch;	/* first bad offset */
	uint8_t			 receipt[SINK_RECEIPT_LEN];	/* sink */
	struct bufferevent	*bev;
	struct event		*retry;
	EVP_MD_CTX		*sha_in;	/* what arrived */
	EVP_MD_CTX		*sha_ref;	/* what should have */
	EVP_MD_CTX		*sha_mark;	/* --report: session_mark */
	EVP_MD_CTX		*sha_pend;
	uint64_t		 mark_off;
	uint64_t		 pend_off;
	struct timespec		 start;
	uint64_t		 start_ms;	/* wall clock; 0: never */
	uint64_t		 msec;
	enum session_result	 result;
	char			*reason;
};

static struct {
	struct xaddr		*addr;
	enum run_pattern	 pattern;
	u_int			 nsessions;
	u_int			 concurrency;
	uint64_t		 min;		/* --bytes MIN:MAX */
	uint64_t		 max;
	uint64_t		 expect_bytes;
	uint64_t		 seed;
	u_int			 timeout;
	int			 progress;
	int			 durations;
	uint64_t		 duration_ms;	/* --duration; 0: off */
	const char		*label;
	FILE			*report;
	int			 timeline;	/* fd; -1: off */
	struct evbuffer		*tl_buf;
	u_int			 tl_low;	/* sessions below are done */
	struct session		*sessions;
	u_int			 next;		/* next session to start */
	u_int			 active;
	u_int			 done;
	u_int			 ok;
	int			 starting;	/* inside run_start */
	int			 stopping;
	uint64_t		 rx_total;	/* for --progress */
	uint64_t		 tx_total;
	uint64_t		 rx_last;
	uint64_t		 tx_last;
	struct timespec		 start;
	uint64_t		 msec;
	struct event		*deadline;
	struct event		*ticker;
	struct event		*tl_ticker;
	struct event		*sigint;
	uint8_t			 scratch[VT_CHUNK];
} run;

static struct event_base	*base;
static const char		*vsock_dir;
static uint32_t			 vsock_cid;
static int			 vsock_cid_set;

static void	session_end(struct session *, enum session_result,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static void	run_start(void);
static void	usage(void) __attribute__((noreturn));

/* splitmix64's finaliser: a cheap, well-mixed function of a counter. */
static uint64_t
gen_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* Word N of stream KEY; counter mode lets the verifier start anywhere. */
static uint64_t
gen_word(uint64_t key, uint64_t n)
{
	return (gen_mix(key + (n + 1) * 0x9e3779b97f4a7c15ULL));
}

/* Stream KEY's LEN bytes from offset OFF, little-endian on every host. */
static void
gen_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len)
{
	uint64_t	w, n = off / 8;
	size_t		skip = off % 8, step;

	if (skip != 0 && len > 0) {
		w = htole64(gen_word(key, n++));
		step = MIN(len, 8 - skip);
		memcpy(buf, (uint8_t *)&w + skip, step);
		buf += step;
		len -= step;
	}
	for (; len >= 8; buf += 8, len -= 8) {
		w = htole64(gen_word(key, n++));
		memcpy(buf, &w, 8);
	}
	if (len > 0) {
		w = htole64(gen_word(key, n));
		memcpy(buf, &w, len);
	}
}

/* Session I's stream key; source servers and clients use (0, 0). */
static uint64_t
gen_key(uint64_t seed, uint64_t i)
{
	return (gen_word(gen_mix(seed), 2 * i));
}

/* A uniform draw in [0, 1) for session I's size. */
static double
gen_unit(uint64_t seed, uint64_t i)
{
	return ((double)(gen_word(gen_mix(seed), 2 * i + 1) >> 11) /
	    (double)(1ULL << 53));
}

/* Parse "N", "NK", "NM" or "NG" (powers of 1024) up to VT_SIZE_MAX. */
static int
size_parse(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;
	uint64_t		 mult = 1;

	*out = 0;
	if (*s < '0' || *s > '9')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return (-1);
	switch (*end) {
	case 'k': case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	}
	if (*end != '\0' || v > VT_SIZE_MAX / mult)
		return (-1);
	*out = v * mult;
	return (0);
}

/* Parse --bytes: "SIZE" or "MIN:MAX" with 1 <= MIN <= MAX. */
static int
spec_parse(const char *s, uint64_t *min, uint64_t *max)
{
	char	*copy, *colon;
	int	 rc = -1;

	*min = *max = 0;
	copy = xstrdup(s);
	if ((colon = strchr(copy, ':')) == NULL) {
		if (size_parse(copy, min) == 0) {
			*max = *min;
			rc = 0;
		}
		goto out;
	}
	*colon++ = '\0';
	if (size_parse(copy, min) != 0 || size_parse(colon, max) != 0)
		goto out;
	if (*min == 0 || *min > *max)
		goto out;
	rc = 0;
out:
	free(copy);
	return (rc);
}

/*
 * log2 that is linear inside each octave: exact at powers of two,
 * monotonic, and the exact inverse of octave_exp2, so sizes stay inside
 * [MIN, MAX] without pulling in libm.
 */
static double
octave_log2(uint64_t x)
{
	int	k = 63 - __builtin_clzll(x);

	return (k + (double)x / (double)(1ULL << k) - 1.0);
}

/* The inverse of octave_log2. */
static uint64_t
octave_exp2(double t)
{
	int	k = (int)t;

	return ((uint64_t)((1.0 + (t - k)) * (double)(1ULL << k)));
}

/* Session I's send size: log-uniform over the spec, fixed by the seed. */
static uint64_t
spec_size(uint64_t min, uint64_t max, uint64_t seed, u_int i)
{
	double		lo, hi;
	uint64_t	size;

	if (min == max)
		return (min);
	lo = octave_log2(min);
	hi = octave_log2(max);
	size = octave_exp2(lo + gen_unit(seed, i) * (hi - lo));
	return (MAX(min, MIN(max, size)));
}

/* A number in [MIN, MAX] for option NAME, or exit. */
static long long
num_parse(const char *name, const char *s, long long min, long long max)
{
	const char	*errstr;
	long long	 v;

	v = strtonum(s, min, max, &errstr);
	if (errstr != NULL)
		fatalx("--%s %s: %s", name, s, errstr);
	return (v);
}

/* A size for option NAME, or exit. */
static uint64_t
size_arg(const char *name, const char *s)
{
	uint64_t	v;

	if (size_parse(s, &v) != 0)
		fatalx("--%s %s: bad size", name, s);
	return (v);
}

/* --duration: decimal seconds, maybe fractional, as milliseconds. */
static uint64_t
duration_arg(const char *s)
{
	char	*end;
	double	 v;

	/* Digits and a point only: no sign, exponent, hex, inf or nan. */
	if (*s == '\0' || strspn(s, "0123456789.") != strlen(s))
		fatalx("--duration %s: want decimal seconds", s);
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v * 1000 >= 1) || v > INT_MAX)
		fatalx("--duration %s: want 0.001 to %d seconds", s, INT_MAX);
	return ((uint64_t)(v * 1000 + 0.5));
}

/* --label: printable ASCII that needs no quoting in the timeline CSV. */
static const char *
label_arg(const char *s)
{
	size_t	i, len = strlen(s);

	if (len == 0 || len > RUN_LABEL_MAX)
		fatalx("--label: want 1 to %d characters", RUN_LABEL_MAX);
	for (i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == ',' || s[i] == '"')
			fatalx("--label: printable ASCII without , or \"");
	}
	return (s);
}

/* Options both subcommands take; 0 if CH is not one of them. */
static int
common_option(int ch, const char *arg)
{
	switch (ch) {
	case OPT_VSOCK_DIR:
		vsock_dir = arg;
		return (1);
	case OPT_VSOCK_CID:
		vsock_cid = num_parse("vsock-cid", arg, 0, UINT32_MAX);
		vsock_cid_set = 1;
		return (1);
	case 'v':
		log_setlevel(LOG_LEVEL_DEBUG);
		return (1);
	}
	return (0);
}

/* Turn on vsock emulation before any address is parsed or used. */
static void
common_setup(void)
{
	int	rc;

	if (vsock_dir == NULL && !vsock_cid_set)
		return;
	if (vsock_dir == NULL || !vsock_cid_set)
		fatalx("--vsock-dir and --vsock-cid go together");
	rc = xaddr_vsock_emulate(vsock_dir, vsock_cid);
	if (rc == XADDR_E_SYSTEM)
		fatal("vsock emulation in %s", vsock_dir);
	if (rc != XADDR_OK)
		fatalx("vsock emulation in %s: %s", vsock_dir,
		    xaddr_strerror(rc));
	log_debug("emulated vsock: %s, cid %" PRIu32, vsock_dir, vsock_cid);
}

/* Lowercase hex of LEN bytes into OUT (2 * LEN + 1 bytes). */
static void
hex_format(const uint8_t *p, size_t len, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* A fresh SHA-256 context; failing here is a broken libcrypto. */
static EVP_MD_CTX *
sha_new(void)
{
	EVP_MD_CTX	*ctx;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fatalx("EVP_DigestInit_ex(sha256) failed");
	return (ctx);
}

/* Finish CTX into a 32-byte digest. */
static void
sha_final(EVP_MD_CTX *ctx, uint8_t *md)
{
	u_int	len;

	if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
		fatalx("EVP_DigestFinal_ex failed");
}

/* The digest of what CTX has taken so far (NULL: nothing); CTX goes on. */
static void
sha_peek(EVP_MD_CTX *ctx, uint8_t *md)
{
	EVP_MD_CTX	*copy = sha_new();

	if (ctx != NULL && EVP_MD_CTX_copy_ex(copy, ctx) != 1)
		fatalx("EVP_MD_CTX_copy_ex failed");
	sha_final(copy, md);
	EVP_MD_CTX_free(copy);
}

/* Hand the first LEN bytes of BUF to FN in place, chunk by chunk. */
static void
buf_walk(struct evbuffer *buf, size_t len,
    void (*fn)(void *, const uint8_t *, size_t), void *arg)
{
	struct evbuffer_ptr	 ptr;
	struct evbuffer_iovec	 v[8];
	int			 i, n;
	size_t			 step;

	evbuffer_ptr_set(buf, &ptr, 0, EVBUFFER_PTR_SET);
	while (len > 0) {
		n = evbuffer_peek(buf, len, &ptr, v, nitems(v));
		if (n <= 0)
			break;
		for (i = 0; i < n && i < (int)nitems(v) && len > 0; i++) {
			step = MIN(v[i].iov_len, len);
			fn(arg, v[i].iov_base, step);
			len -= step;
			evbuffer_ptr_set(buf, &ptr, step, EVBUFFER_PTR_ADD);
		}
	}
}

/* Milliseconds since START on the monotonic clock. */
static uint64_t
msec_since(const struct timespec *start)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ((uint64_t)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000);
}

/* Wall-clock milliseconds, for lines read next to other machines' logs. */
static uint64_t
wall_msec(void)
{
	struct timespec	now;

	clock_gettime(CLOCK_REALTIME, &now);
	return ((uint64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

/* Copy a peer's string for a log or report, dropping what is not ASCII. */
static void
str_sanitize(char *dst, size_t dstlen, const uint8_t *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len && i + 1 < dstlen; i++)
		dst[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	dst[i] = '\0';
}

/* A big-endian u16 of the PROXY header. */
static uint16_t
get_be16(const uint8_t *p)
{
	return ((uint16_t)(p[0] << 8 | p[1]));
}

/* A big-endian u32 of the PROXY header. */
static uint32_t
get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
}

/* "addr:port" (IPv6 bracketed) from a PROXY v2 address block. */
static void
proxy_addr(char *out, size_t len, int af, const uint8_t *addr,
    const uint8_t *port)
{
	char	host[INET6_ADDRSTRLEN];

	if (inet_ntop(af, addr, host, sizeof(host)) == NULL)
		strlcpy(host, "?", sizeof(host));
	snprintf(out, len, af == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
	    get_be16(port));
}

/*
 * Parse a PROXY v2 header at the start of IN into C->proxy and drain
 * it.  Returns 1 when done, 0 when more bytes are needed and -1 with
 * *ERROR set when the peer sent something else.
 */
static int
proxy_parse(struct conn *c, struct evbuffer *in, const char **error)
{
	struct proxy_info	*pi;
	const uint8_t		*p, *tlv;
	size_t			 have, len, alen, off, tlen;
	int			 cmd, fam;

	*error = NULL;
	if ((have = evbuffer_get_length(in)) == 0)
		return (0);
	p = evbuffer_pullup(in, MIN(have, PP2_HDR_LEN));
	if (memcmp(p, PP2_SIG, MIN(have, PP2_SIG_LEN)) != 0) {
		*error = "proxy: no PROXY v2 signature";
		return (-1);
	}
	if (have < PP2_HDR_LEN)
		return (0);
	if (p[12] >> 4 != PP2_VERSION) {
		*error = "proxy: not version 2";
		return (-1);
	}
	cmd = p[12] & 0xf;
	fam = p[13] >> 4;
	len = get_be16(p + 14);
	if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY) {
		*error = "proxy: unknown command";
		return (-1);
	}
	if (have < PP2_HDR_LEN + len)
		return (0);
	p = evbuffer_pullup(in, PP2_HDR_LEN + len) + PP2_HDR_LEN;

	switch (fam) {
	case PP2_AF_INET:
		alen = 12;
		break;
	case PP2_AF_INET6:
		alen = 36;
		break;
	case PP2_AF_UNIX:
		alen = 216;
		break;
	default:
		alen = 0;
		break;
	}
	if (alen > len) {
		*error = "proxy: address block too short";
		return (-1);
	}

	pi = xcalloc(1, sizeof(*pi));
	if (cmd == PP2_CMD_PROXY && fam == PP2_AF_INET) {
		proxy_addr(pi->src, sizeof(pi->src), AF_INET, p, p + 8);
		proxy_addr(pi->dst, sizeof(pi->dst), AF_INET, p + 4, p + 10);
	} else if (cmd == PP2_CMD_PROXY && fam == PP2_AF_INET6) {
		proxy_addr(pi->src, sizeof(pi->src), AF_INET6, p, p + 32);
		proxy_addr(pi->dst, sizeof(pi->dst), AF_INET6, p + 16, p + 34);
	}

	for (off = alen; off < len; off += 3 + tlen) {
		if (len - off < 3) {
			*error = "proxy: truncated TLV";
			goto bad;
		}
		tlv = p + off;
		tlen = get_be16(tlv + 1);
		if (tlen > len - off - 3) {
			*error = "proxy: TLV overruns the header";
			goto bad;
		}
		switch (tlv[0]) {
		case PP2_TLV_HOST:
			if (tlen > PP2_HOST_MAX) {
				*error = "proxy: host TLV too long";
				goto bad;
			}
			str_sanitize(pi->host, sizeof(pi->host), tlv + 3, tlen);
			pi->has_host = 1;
			break;
		case PP2_TLV_CID:
			if (tlen != 4) {
				*error = "proxy: CID TLV is not 4 bytes";
				goto bad;
			}
			pi->cid = get_be32(tlv + 3);
			pi->has_cid = 1;
			break;
		case PP2_TLV_UNIQUE_ID:
			if (tlen > PP2_UNIQUE_ID_MAX) {
				*error = "proxy: unique id TLV too long";
				goto bad;
			}
			memcpy(pi->uid, tlv + 3, tlen);
			pi->uid_len = tlen;
			break;
		}
	}

	evbuffer_drain(in, PP2_HDR_LEN + len);
	c->proxy = pi;
	return (1);
bad:
	free(pi);
	return (-1);
}

/* The "proxy" object of a report line. */
static json_t *
proxy_json(const struct proxy_info *pi)
{
	json_t	*o;
	char	 uid[2 * PP2_UNIQUE_ID_MAX + 1];

	if (pi == NULL)
		return (json_null());
	o = json_object();
	json_object_set_new(o, "host",
	    pi->has_host ? json_string(pi->host) : json_null());
	json_object_set_new(o, "cid",
	    pi->has_cid ? json_integer(pi->cid) : json_null());
	if (pi->uid_len > 0) {
		hex_format(pi->uid, pi->uid_len, uid);
		json_object_set_new(o, "unique_id", json_string(uid));
	}
	if (pi->src[0] != '\0') {
		json_object_set_new(o, "src", json_string(pi->src));
		json_object_set_new(o, "dst", json_string(pi->dst));
	}
	return (o);
}

/* Append C's line to the --report file. */
static void
conn_report(struct conn *c, const char *error)
{
	json_t		*line;
	char		*text;
	uint8_t		 md[32];
	char		 hex[VT_SHA_HEX];

	sha_final(c->sha_in, md);
	hex_format(md, sizeof(md), hex);
	line = json_pack("{s:I s:s s:I s:I s:s s:o}",
	    "conn", (json_int_t)c->id,
	    "peer", c->peer,
	    "bytes_in", (json_int_t)c->bytes_in,
	    "bytes_out", (json_int_t)c->bytes_out,
	    "sha256_in", hex,
	    "proxy", proxy_json(c->proxy));
	if (line == NULL)
		fatalx("conn_report: json_pack failed");
	if (error != NULL)
		json_object_set_new(line, "error", json_string(error));
	if ((text = json_dumps(line, JSON_COMPACT)) == NULL)
		fatalx("conn_report: json_dumps failed");
	fprintf(serve.report, "%s\n", text);
	if (fflush(serve.report) != 0)
		log_warn("report");
	free(text);
	json_decref(line);
}

/* Close C for good: report it, then free it.  ERROR NULL is a clean end. */
static void
conn_close(struct conn *c, const char *error)
{
	if (error != NULL)
		log_warnx("conn %u %s: %s (in %" PRIu64 " out %" PRIu64 ")",
		    c->id, c->peer, error, c->bytes_in, c->bytes_out);
	else
		log_debug("conn %u %s: closed (in %" PRIu64 " out %" PRIu64
		    ")", c->id, c->peer, c->bytes_in, c->bytes_out);
	if (serve.report != NULL)
		conn_report(c, error);
	TAILQ_REMOVE(&serve.conns, c, entry);
	bufferevent_free(c->bev);
	EVP_MD_CTX_free(c->sha_in);
	free(c->proxy);
	free(c);
}

/*
 * Shut our write side once everything is written (echo and sink: after
 * the peer's EOF; source: after the last source byte), and close once
 * both directions are done.
 */
static void
conn_check(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	int		 finished;

	if (serve.mode == SERVE_SOURCE)
		finished = c->bytes_out == serve.source_bytes;
	else
		finished = (c->flags & CONN_RDEOF) != 0;
	if (finished && serve.mode == SERVE_SINK &&
	    !(c->flags & CONN_RECEIPT)) {
		uint8_t		 rc[SINK_RECEIPT_LEN];
		EVP_MD_CTX	*copy = sha_new();
		uint64_t	 n = htobe64(c->bytes_in);

		/* What we read, so the sender can tell it all arrived. */
		if (EVP_MD_CTX_copy_ex(copy, c->sha_in) != 1)
			fatalx("EVP_MD_CTX_copy_ex failed");
		sha_final(copy, rc);
		EVP_MD_CTX_free(copy);
		memcpy(rc + 32, &n, sizeof(n));
		evbuffer_add(out, rc, sizeof(rc));
		c->bytes_out += sizeof(rc);
		c->flags |= CONN_RECEIPT;
	}
	if (finished && !(c->flags & CONN_WRDONE)) {
		if (evbuffer_get_length(out) > 0) {
			/* Called back again when the output is empty. */
			bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
			return;
		}
		if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) == -1) {
			conn_close(c, "shutdown failed");
			return;
		}
		c->flags |= CONN_WRDONE;
	}
	if ((c->flags & (CONN_RDEOF|CONN_WRDONE)) == (CONN_RDEOF|CONN_WRDONE))
		conn_close(c, NULL);
}

/* Queue more of the source stream, up to SEND_HIGH unsent bytes. */
static void
conn_source(struct conn *c)
{
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec	 v;
	size_t			 n;

	while (c->bytes_out < serve.source_bytes &&
	    evbuffer_get_length(out) < SEND_HIGH) {
		n = MIN(VT_CHUNK, serve.source_bytes - c->bytes_out);
		if (evbuffer_reserve_space(out, n, &v, 1) != 1)
			fatalx("conn_source: evbuffer_reserve_space failed");
		gen_fill(gen_key(0, 0), c->bytes_out, v.iov_base, n);
		v.iov_len = n;
		if (evbuffer_commit_space(out, &v, 1) != 0)
			fatalx("conn_source: evbuffer_commit_space failed");
		c->bytes_out += n;
	}
}

/* buf_walk callback: hash received stream bytes. */
static void
conn_hash(void *arg, const uint8_t *p, size_t len)
{
	struct conn	*c = arg;

	if (EVP_DigestUpdate(c->sha_in, p, len) != 1)
		fatalx("EVP_DigestUpdate failed");
}

/* Move LEN input bytes to the output, flipping --corrupt-at if due. */
static void
conn_echo(struct conn *c, size_t len)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	uint64_t	 at = serve.corrupt_at;
	uint8_t		 byte;

	if (at >= c->bytes_out && at - c->bytes_out < len) {
		evbuffer_remove_buffer(in, out, at - c->bytes_out);
		evbuffer_remove(in, &byte, 1);
		byte ^= 0xff;
		evbuffer_add(out, &byte, 1);
		log_info("conn %u: corrupted offset %" PRIu64, c->id, at);
	}
	evbuffer_add_buffer(out, in);
	c->bytes_out += len;
	if (evbuffer_get_length(out) > ECHO_HIGH) {
		c->flags |= CONN_PAUSED;
		bufferevent_disable(c->bev, EV_READ);
	}
}

/* Input arrived: the PROXY header first, then stream bytes. */
static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	const char	*error;
	size_t		 len;

	if (c->flags & CONN_PROXY) {
		switch (proxy_parse(c, in, &error)) {
		case 0:
			return;
		case -1:
			conn_close(c, error);
			return;
		}
		c->flags &= ~CONN_PROXY;
		log_debug("conn %u: proxy host %s cid %" PRIu32, c->id,
		    c->proxy->has_host ? c->proxy->host : "-", c->proxy->cid);
		if (serve.mode == SERVE_SOURCE)
			conn_source(c);
	}

	len = evbuffer_get_length(in);
	buf_walk(in, len, conn_hash, c);
	c->bytes_in += len;
	if (serve.mode == SERVE_ECHO)
		conn_echo(c, len);
	else
		evbuffer_drain(in, len);
}

/* Output drained below the low watermark. */
static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->flags & CONN_PAUSED) {
		c->flags &= ~CONN_PAUSED;
		bufferevent_enable(bev, EV_READ);
	}
	if (serve.mode == SERVE_SOURCE)
		conn_source(c);
	conn_check(c);
}

/* EOF or an error from the peer. */
static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	char		 reason[160];

	if (what & BEV_EVENT_EOF) {
		if (c->flags & CONN_PROXY) {
			conn_close(c, "proxy: EOF before the header");
			return;
		}
		c->flags |= CONN_RDEOF;
		conn_check(c);
		return;
	}
	snprintf(reason, sizeof(reason), "%s: %s",
	    (what & BEV_EVENT_WRITING) ? "write" : "read",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_close(c, reason);
}

/* A new connection on one of our listeners. */
static void
serve_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct conn		*c;
	struct xaddr_peer	 peer;

	c = xcalloc(1, sizeof(*c));
	c->id = ++serve.next_id;
	c->sha_in = sha_new();
	xaddr_peer_describe(sa, salen, &peer);
	strlcpy(c->peer, peer.str, sizeof(c->peer));
	xaddr_tune(fd, peer.type);

	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_set_max_single_read(c->bev, VT_IO_MAX);
	bufferevent_set_max_single_write(c->bev, VT_IO_MAX);
	if (serve.bucket != NULL &&
	    bufferevent_set_rate_limit(c->bev, serve.bucket) != 0)
		fatalx("bufferevent_set_rate_limit failed");
	if (serve.mode == SERVE_ECHO)
		bufferevent_setwatermark(c->bev, EV_WRITE, ECHO_LOW, 0);
	else if (serve.mode == SERVE_SOURCE)
		bufferevent_setwatermark(c->bev, EV_WRITE, SEND_LOW, 0);
	TAILQ_INSERT_TAIL(&serve.conns, c, entry);
	log_debug("conn %u: accepted from %s", c->id, c->peer);

	if (serve.proxy_v2)
		c->flags |= CONN_PROXY;
	else if (serve.mode == SERVE_SOURCE)
		conn_source(c);
	bufferevent_enable(c->bev, EV_READ|EV_WRITE);
}

/* Turn the listeners back on after an accept failure. */
static void
serve_resume(evutil_socket_t fd, short what, void *arg)
{
	u_int	i;

	for (i = 0; i < serve.nlisten; i++)
		evconnlistener_enable(serve.lev[i]);
}

/* accept() failed (EMFILE and friends): pause rather than spin. */
static void
serve_accept_error(struct evconnlistener *lev, void *arg)
{
	struct timeval	tv = { SERVE_RETRY_SEC, 0 };
	u_int		i;

	log_warnx("accept: %s",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	for (i = 0; i < serve.nlisten; i++)
		evconnlistener_disable(serve.lev[i]);
	evtimer_add(serve.resume, &tv);
}

/* SIGINT or SIGTERM: close everything (reporting it) and leave. */
static void
serve_signal(evutil_socket_t sig, short what, void *arg)
{
	struct conn	*c;

	log_info("signal %d: stopping", (int)sig);
	while ((c = TAILQ_FIRST(&serve.conns)) != NULL)
		conn_close(c, "shutdown");
	event_base_loopexit(base, NULL);
}

/* Start listening on ADDR. */
static void
serve_listen(const char *str)
{
	struct xaddr	*addr;
	int		 fd, rc;

	if ((rc = xaddr_parse(str, &addr)) != XADDR_OK)
		fatalx("--listen %s: %s", str, xaddr_strerror(rc));
	if ((rc = xaddr_listen(addr, SERVE_BACKLOG, &fd)) != XADDR_OK) {
		if (rc == XADDR_E_SYSTEM)
			fatal("listen %s", xaddr_str(addr));
		fatalx("listen %s: %s", xaddr_str(addr), xaddr_strerror(rc));
	}
	serve.lev[serve.nlisten] = evconnlistener_new(base, serve_accept,
	    NULL, LEV_OPT_CLOSE_ON_FREE|LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (serve.lev[serve.nlisten] == NULL)
		fatalx("evconnlistener_new failed");
	evconnlistener_set_error_cb(serve.lev[serve.nlisten],
	    serve_accept_error);
	serve.addr[serve.nlisten++] = addr;
	log_info("listening on %s", xaddr_str(addr));
}

/* The backend service. */
static int
serve_main(int argc, char **argv)
{
	struct event	*sigint, *sigterm;
	struct timeval	 tick = { 0, SLOW_TICK_MSEC * 1000 };
	const char	*listens[SERVE_LISTEN_MAX], *report = NULL;
	u_int		 nlisten = 0, i;
	size_t		 rate;
	int		 ch;

	TAILQ_INIT(&serve.conns);
	serve.corrupt_at = UINT64_MAX;
	while ((ch = getopt_long(argc, argv, "vh", serve_options,
	    NULL)) != -1) {
		switch (ch) {
		case OPT_LISTEN:
			if (nlisten == SERVE_LISTEN_MAX)
				fatalx("too many --listen (at most %d)",
				    SERVE_LISTEN_MAX);
			listens[nlisten++] = optarg;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "echo") == 0)
				serve.mode = SERVE_ECHO;
			else if (strcmp(optarg, "sink") == 0)
				serve.mode = SERVE_SINK;
			else if (strcmp(optarg, "source") == 0)
				serve.mode = SERVE_SOURCE;
			else
				fatalx("--mode %s: echo, sink or source",
				    optarg);
			break;
		case OPT_SOURCE_BYTES:
			serve.source_bytes = size_arg("source-bytes", optarg);
			break;
		case OPT_SLOW:
			serve.slow = size_arg("slow", optarg);
			break;
		case OPT_PROXY_V2:
			serve.proxy_v2 = 1;
			break;
		case OPT_REPORT:
			report = optarg;
			break;
		case OPT_CORRUPT_AT:
			serve.corrupt_at = size_arg("corrupt-at", optarg);
			break;
		default:
			if (!common_option(ch, optarg))
				usage();
		}
	}
	if (optind != argc || nlisten == 0)
		usage();
	common_setup();

	if (report != NULL && (serve.report = fopen(report, "a")) == NULL)
		fatal("%s", report);
	if (serve.slow != 0) {
		/* libevent's token bucket: reads stop while it is empty. */
		rate = MAX(serve.slow * SLOW_TICK_MSEC / 1000, 1);
		serve.bucket = ev_token_bucket_cfg_new(rate, rate,
		    EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, &tick);
		if (serve.bucket == NULL)
			fatalx("ev_token_bucket_cfg_new failed");
	}
	serve.resume = evtimer_new(base, serve_resume, NULL);
	for (i = 0; i < nlisten; i++)
		serve_listen(listens[i]);
	sigint = evsignal_new(base, SIGINT, serve_signal, NULL);
	sigterm = evsignal_new(base, SIGTERM, serve_signal, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);

	event_base_dispatch(base);

	for (i = 0; i < serve.nlisten; i++) {
		evconnlistener_free(serve.lev[i]);
		xaddr_unlisten(serve.addr[i]);
		xaddr_free(serve.addr[i]);
	}
	event_free(sigint);
	event_free(sigterm);
	event_free(serve.resume);
	if (serve.bucket != NULL)
		ev_token_bucket_cfg_free(serve.bucket);
	if (serve.report != NULL)
		fclose(serve.report);
	return (0);
}

/* Bytes of S that arrived in order and matched the expected stream. */
static uint64_t
session_verified(const struct session *s)
{
	if (run.pattern == PATTERN_SINK)
		/* The receipt vouches for all or nothing. */
		return (s->result == RESULT_OK ? s->size : 0);
	if (s->mismatch != NO_MISMATCH)
		return (s->mismatch);
	return (MIN(s->received, s->expect));
}

/*
 * For the summary: bytes of S the peer should have returned (echo),
 * read (sink, by its receipt) or sent (source) but did not, and bytes
 * beyond that.  Sessions stopped from outside may have bytes in flight.
 */
static void
session_balance(const struct session *s, uint64_t *lost, uint64_t *dup)
{
	uint64_t	want, got;

	*lost = *dup = 0;
	if (s->result == RESULT_NONE || s->result == RESULT_TIMEOUT)
		return;
	switch (run.pattern) {
	case PATTERN_ECHO:
		want = s->sent;
		got = s->received;
		break;
	case PATTERN_SINK:
		if (s->received < SINK_RECEIPT_LEN)
			return;
		want = s->sent;
		memcpy(&got, s->receipt + 32, sizeof(got));
		got = be64toh(got);
		break;
	case PATTERN_SOURCE:
	default:
		want = s->expect;
		got = s->received;
		break;
	}
	if (want > got)
		*lost = want - got;
	else
		*dup = got - want;
}

/*
 * --report: move the sha_ref checkpoints along.  Bytes queued are hashed
 * before the kernel takes them, so an abrupt end leaves sha_ref past the
 * bytes really sent; a copy taken at the previous refill is at or below
 * what has been sent by the next one (each refill fills to SEND_HIGH and
 * the next comes below SEND_LOW), so session_sent_md regenerates at most
 * a few MiB, and only when a session ends with bytes unsent.
 */
static void
session_mark(struct session *s, uint64_t sent)
{
	EVP_MD_CTX	*ctx;

	if (s->pend_off > sent)
		return;
	ctx = s->sha_mark;
	s->sha_mark = s->sha_pend;
	s->mark_off = s->pend_off;
	s->sha_pend = ctx;
	if (EVP_MD_CTX_copy_ex(s->sha_pend, s->sha_ref) != 1)
		fatalx("EVP_MD_CTX_copy_ex failed");
	s->pend_off = s->queued;
}

/* The SHA-256 of exactly the S->sent bytes the kernel took. */
static void
session_sent_md(struct session *s, uint8_t *md)
{
	EVP_MD_CTX	*ctx, *from;
	uint64_t	 off;
	size_t		 n;

	if (run.pattern == PATTERN_SOURCE || s->sha_ref == NULL) {
		sha_peek(NULL, md);		/* we send nothing */
		return;
	}
	if (s->sent == s->queued) {
		sha_peek(s->sha_ref, md);
		return;
	}
	if (s->pend_off <= s->sent) {
		from = s->sha_pend;
		off = s->pend_off;
	} else {
		from = s->sha_mark;
		off = s->mark_off;
	}
	ctx = sha_new();
	if (EVP_MD_CTX_copy_ex(ctx, from) != 1)
		fatalx("EVP_MD_CTX_copy_ex failed");
	for (; off < s->sent; off += n) {
		n = MIN(sizeof(run.scratch), s->sent - off);
		gen_fill(s->key, off, run.scratch, n);
		if (EVP_DigestUpdate(ctx, run.scratch, n) != 1)
			fatalx("EVP_DigestUpdate failed");
	}
	sha_final(ctx, md);
	EVP_MD_CTX_free(ctx);
}

/* Append S's line to the --report file. */
static void
session_report(struct session *s)
{
	json_t		*line;
	char		*text;
	uint8_t		 md[32];
	char		 sent[VT_SHA_HEX], in[VT_SHA_HEX];

	session_sent_md(s, md);
	hex_format(md, sizeof(md), sent);
	sha_peek(s->sha_in, md);
	hex_format(md, sizeof(md), in);
	line = json_pack("{s:I s:s s:b s:o s:I s:s s:I s:s s:I s:o s:I}",
	    "session", (json_int_t)s->idx,
	    "label", run.label,
	    "ok", s->result == RESULT_OK,
	    "error", s->result == RESULT_OK ? json_null() :
	    json_string(s->reason != NULL ? s->reason :
	    result_names[s->result]),
	    "bytes_sent", (json_int_t)s->sent,
	    "sha256_sent", sent,
	    "bytes_received", (json_int_t)s->received,
	    "sha256_received", in,
	    "bytes_verified", (json_int_t)session_verified(s),
	    "start_ms", s->start_ms == 0 ? json_null() :
	    json_integer((json_int_t)s->start_ms),
	    "end_ms", (json_int_t)wall_msec());
	if (line == NULL)
		fatalx("session_report: json_pack failed");
	if ((text = json_dumps(line, JSON_COMPACT)) == NULL)
		fatalx("session_report: json_dumps failed");
	fprintf(run.report, "%s\n", text);
	if (fflush(run.report) != 0)
		log_warn("report");
	free(text);
	json_decref(line);
}

/* Record S's result and free its connection; start the next session. */
static void
session_end(struct session *s, enum session_result result,
    const char *fmt, ...)
{
	va_list	ap;
	char	reason[256];

	if (s->bev != NULL) {
		s->sent = s->queued -
		    evbuffer_get_length(bufferevent_get_output(s->bev));
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->retry != NULL) {
		event_free(s->retry);
		s->retry = NULL;
	}

	s->result = result;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
		s->reason = xstrdup(reason);
		log_debug("session %u: %s", s->idx, reason);
	}
	if (s->state == SESSION_ACTIVE) {
		s->msec = msec_since(&s->start);
		run.active--;
	}
	if (run.report != NULL)
		session_report(s);
	EVP_MD_CTX_free(s->sha_in);
	EVP_MD_CTX_free(s->sha_ref);
	EVP_MD_CTX_free(s->sha_mark);
	EVP_MD_CTX_free(s->sha_pend);
	s->sha_in = s->sha_ref = s->sha_mark = s->sha_pend = NULL;
	s->state = SESSION_DONE;
	if (result == RESULT_OK)
		run.ok++;
	if (++run.done == run.nsessions)
		event_base_loopexit(base, NULL);
	else
		run_start();
}

/* The peer's EOF: judge what arrived. */
static void
session_eof(struct session *s)
{
	uint8_t		in[32], ref[32];
	uint64_t	count;

	if (run.pattern == PATTERN_SINK) {
		if (s->received != SINK_RECEIPT_LEN) {
			session_end(s, RESULT_SHORT, "short: sink receipt of "
			    "%" PRIu64 " bytes, not %d", s->received,
			    SINK_RECEIPT_LEN);
			return;
		}
		memcpy(&count, s->receipt + 32, sizeof(count));
		count = be64toh(count);
		sha_peek(s->sha_ref, ref);
		if (count != s->size) {
			session_end(s, RESULT_SHORT, "short: sink read %"
			    PRIu64 " of %" PRIu64 " bytes", count, s->size);
			return;
		}
		if (memcmp(s->receipt, ref, sizeof(ref)) != 0) {
			session_end(s, RESULT_MISMATCH, "sink sha256 mismatch");
			return;
		}
		session_end(s, RESULT_OK, NULL);
		return;
	}

	if (s->mismatch != NO_MISMATCH) {
		session_end(s, RESULT_MISMATCH, "mismatch at offset %" PRIu64,
		    s->mismatch);
		return;
	}
	if (s->received > s->expect) {
		session_end(s, RESULT_EXTRA, "extra: received %" PRIu64
		    " of %" PRIu64 " bytes", s->received, s->expect);
		return;
	}
	if (s->received < s->expect) {
		session_end(s, RESULT_SHORT, "short: received %" PRIu64
		    " of %" PRIu64 " bytes", s->received, s->expect);
		return;
	}
	if (!(s->flags & SESSION_SHUT)) {
		/* The peer quit before taking all we had to send. */
		session_end(s, RESULT_SHORT, "short: peer closed after %" PRIu64
		    " of %" PRIu64 " bytes sent", s->queued -
		    evbuffer_get_length(bufferevent_get_output(s->bev)),
		    s->size);
		return;
	}
	sha_peek(s->sha_in, in);
	sha_peek(s->sha_ref, ref);
	if (memcmp(in, ref, sizeof(in)) != 0) {
		session_end(s, RESULT_MISMATCH, "sha256 mismatch");
		return;
	}
	session_end(s, RESULT_OK, NULL);
}

/*
 * Queue more of our stream, keeping at most SEND_HIGH bytes unsent, and
 * shut the write side once the last byte has left.  With --duration the
 * stream ends at the first refill after the time is up: what was queued
 * by then becomes the size, and the echo is judged against it.
 */
static void
session_send(struct session *s)
{
	struct evbuffer		*out = bufferevent_get_output(s->bev);
	struct evbuffer_iovec	 v;
	size_t			 n;

	if (run.duration_ms != 0 && s->queued < s->size &&
	    msec_since(&s->start) >= run.duration_ms) {
		s->size = s->queued;
		if (run.pattern == PATTERN_ECHO)
			s->expect = s->size;
	}
	if (s->sha_mark != NULL)
		session_mark(s, s->queued - evbuffer_get_length(out));
	while (s->queued < s->size && evbuffer_get_length(out) < SEND_HIGH) {
		n = MIN(VT_CHUNK, s->size - s->queued);
		if (evbuffer_reserve_space(out, n, &v, 1) != 1)
			fatalx("session_send: evbuffer_reserve_space failed");
		gen_fill(s->key, s->queued, v.iov_base, n);
		if (run.pattern != PATTERN_SOURCE &&
		    EVP_DigestUpdate(s->sha_ref, v.iov_base, n) != 1)
			fatalx("EVP_DigestUpdate failed");
		v.iov_len = n;
		if (evbuffer_commit_space(out, &v, 1) != 0)
			fatalx("session_send: evbuffer_commit_space failed");
		s->queued += n;
		run.tx_total += n;
	}
	if (s->queued < s->size || (s->flags & SESSION_SHUT))
		return;
	if (evbuffer_get_length(out) > 0) {
		/* Called back again when the output is empty. */
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		return;
	}
	if (shutdown(bufferevent_getfd(s->bev), SHUT_WR) == -1) {
		session_end(s, RESULT_ERROR, "error: shutdown: %s",
		    strerror(errno));
		return;
	}
	s->flags |= SESSION_SHUT;
}

/* buf_walk callback: check arriving bytes against the expected stream. */
static void
session_verify(void *arg, const uint8_t *p, size_t len)
{
	struct session	*s = arg;
	uint8_t		*want = run.scratch;
	size_t		 n, i;

	if (EVP_DigestUpdate(s->sha_in, p, len) != 1)
		fatalx("EVP_DigestUpdate failed");
	run.rx_total += len;
	if (run.pattern == PATTERN_SINK) {
		for (i = 0; i < len && s->received + i < SINK_RECEIPT_LEN; i++)
			s->receipt[s->received + i] = p[i];
		s->received += len;
		return;
	}
	while (len > 0 && s->received < s->expect &&
	    s->mismatch == NO_MISMATCH) {
		n = MIN(len, sizeof(run.scratch));
		n = MIN(n, s->expect - s->received);
		gen_fill(s->expect_key, s->received, want, n);
		if (run.pattern == PATTERN_SOURCE &&
		    EVP_DigestUpdate(s->sha_ref, want, n) != 1)
			fatalx("EVP_DigestUpdate failed");
		if (memcmp(p, want, n) != 0) {
			for (i = 0; p[i] == want[i]; i++)
				/* nothing */;
			s->mismatch = s->received + i;
		}
		s->received += n;
		p += n;
		len -= n;
	}
	s->received += len;
}

/* Echoed or source bytes arrived. */
static void
session_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 len = evbuffer_get_length(in);

	buf_walk(in, len, session_verify, s);
	evbuffer_drain(in, len);
}

/* Output drained below the low watermark: send more. */
static void
session_write(struct bufferevent *bev, void *arg)
{
	session_send(arg);
}

/* Connected, EOF, or an error. */
static void
session_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	const char	*op;

	if (what & BEV_EVENT_CONNECTED) {
		s->flags |= SESSION_CONNECTED;	/* xaddr_connect() tuned it */
		session_send(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		session_eof(s);
		return;
	}
	if (!(s->flags & SESSION_CONNECTED))
		op = "connect";
	else if (what & BEV_EVENT_WRITING)
		op = "write";
	else
		op = "read";
	session_end(s, RESULT_ERROR, "error: %s: %s", op,
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* Open S's connection; a full listen queue (EAGAIN) is retried. */
static void
session_connect(evutil_socket_t unused, short what, void *arg)
{
	struct session	*s = arg;
	struct timeval	 tv = { 0, RUN_RETRY_MSEC * 1000 };
	int		 fd, rc;

	rc = xaddr_connect(run.addr, &fd, NULL);
	if (rc == XADDR_E_SYSTEM && errno == EAGAIN) {
		if (s->retry == NULL)
			s->retry = evtimer_new(base, session_connect, s);
		evtimer_add(s->retry, &tv);
		return;
	}
	if (rc != XADDR_OK) {
		session_end(s, RESULT_ERROR, "error: connect: %s",
		    xaddr_why(rc));
		return;
	}
	s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	bufferevent_set_max_single_read(s->bev, VT_IO_MAX);
	bufferevent_set_max_single_write(s->bev, VT_IO_MAX);
	bufferevent_setwatermark(s->bev, EV_WRITE, SEND_LOW, 0);
	if (bufferevent_socket_connect(s->bev, NULL, 0) != 0) {
		session_end(s, RESULT_ERROR, "error: connect: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return;
	}
	bufferevent_enable(s->bev, EV_READ|EV_WRITE);
}

/*
 * Start waiting sessions while under the concurrency limit.  A session
 * that fails at once ends inside session_connect and calls back here;
 * the loop already running picks up its slot, so the stack stays flat.
 */
static void
run_start(void)
{
	struct session	*s;

	if (run.starting)
		return;
	run.starting = 1;
	while (!run.stopping && run.active < run.concurrency &&
	    run.next < run.nsessions) {
		s = &run.sessions[run.next++];
		s->state = SESSION_ACTIVE;
		s->sha_in = sha_new();
		s->sha_ref = sha_new();
		if (run.report != NULL && run.pattern != PATTERN_SOURCE) {
			s->sha_mark = sha_new();
			s->sha_pend = sha_new();
		}
		clock_gettime(CLOCK_MONOTONIC, &s->start);
		s->start_ms = wall_msec();
		run.active++;
		session_connect(-1, 0, s);
	}
	run.starting = 0;
}

/* Fail every unfinished session with REASON and end the run. */
static void
run_stop(const char *reason)
{
	u_int	i;

	run.stopping = 1;
	for (i = 0; i < run.nsessions; i++) {
		if (run.sessions[i].state != SESSION_DONE)
			session_end(&run.sessions[i], RESULT_TIMEOUT, "%s",
			    reason);
	}
}

/* --timeout passed. */
static void
run_deadline(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("timeout after %u s: %u of %u sessions unfinished",
	    run.timeout, run.nsessions - run.done, run.nsessions);
	run_stop("timeout");
}

/* SIGINT: report what we have. */
static void
run_interrupt(evutil_socket_t fd, short what, void *arg)
{
	run_stop("interrupted");
}

/* --progress: one status line a second. */
static void
run_tick(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "vtraffic: %u/%u done, %u ok, %u active, "
	    "tx %.1f MB/s, rx %.1f MB/s\n", run.done, run.nsessions,
	    run.ok, run.active,
	    (double)(run.tx_total - run.tx_last) / (1024 * 1024),
	    (double)(run.rx_total - run.rx_last) / (1024 * 1024));
	run.tx_last = run.tx_total;
	run.rx_last = run.rx_total;
}

/*
 * --timeline: each connected session's bytes received since the last
 * tick, one CSV line each, written at once so that runs sharing the
 * file never interleave inside a line.
 */
static void
run_timeline(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s;
	uint64_t	 now = wall_msec();
	u_int		 i;

	while (run.tl_low < run.next &&
	    run.sessions[run.tl_low].state == SESSION_DONE)
		run.tl_low++;
	for (i = run.tl_low; i < run.next; i++) {
		s = &run.sessions[i];
		if (s->state != SESSION_ACTIVE ||
		    !(s->flags & SESSION_CONNECTED))
			continue;
		evbuffer_add_printf(run.tl_buf, "%" PRIu64 ",%s,%u,%" PRIu64
		    "\n", now, run.label, s->idx, s->received - s->rx_mark);
		s->rx_mark = s->received;
	}
	while (evbuffer_get_length(run.tl_buf) > 0) {
		if (evbuffer_write(run.tl_buf, run.timeline) == -1 &&
		    errno != EINTR) {
			log_warn("timeline");
			evbuffer_drain(run.tl_buf,
			    evbuffer_get_length(run.tl_buf));
		}
	}
}

/* qsort comparator for durations. */
static int
msec_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* --duration-report: percentiles of ok sessions' durations. */
static json_t *
run_durations(void)
{
	uint64_t	*ms;
	u_int		 i, n = 0;
	json_t		*o;

	if (run.ok == 0)
		return (json_null());
	ms = xreallocarray(NULL, run.ok, sizeof(*ms));
	for (i = 0; i < run.nsessions; i++) {
		if (run.sessions[i].result == RESULT_OK)
			ms[n++] = run.sessions[i].msec;
	}
	qsort(ms, n, sizeof(*ms), msec_cmp);
	o = json_pack("{s:I s:I s:I s:I s:I}",
	    "min", (json_int_t)ms[0],
	    "p50", (json_int_t)ms[(n - 1) * 50 / 100],
	    "p90", (json_int_t)ms[(n - 1) * 90 / 100],
	    "p99", (json_int_t)ms[(n - 1) * 99 / 100],
	    "max", (json_int_t)ms[n - 1]);
	free(ms);
	return (o);
}

/* Print the one-line JSON summary on stdout. */
static void
run_summary(void)
{
	struct session	*s;
	json_t		*root, *failures, *outcomes;
	uint64_t	 sent = 0, verified = 0, lost = 0, dup = 0, l, d;
	u_int		 i, counts[RESULT_COUNT];
	double		 mbit;
	char		*text;

	memset(counts, 0, sizeof(counts));
	failures = json_array();
	for (i = 0; i < run.nsessions; i++) {
		s = &run.sessions[i];
		counts[s->result]++;
		sent += s->sent;
		verified += session_verified(s);
		session_balance(s, &l, &d);
		lost += l;
		dup += d;
		if (s->result != RESULT_OK &&
		    json_array_size(failures) < RUN_FAILURES_MAX)
			json_array_append_new(failures, json_pack("{s:I s:s}",
			    "session", (json_int_t)i, "reason",
			    s->reason != NULL ? s->reason : "?"));
	}
	/* Goodput: what came back verified, or what a sink took. */
	mbit = (double)(run.pattern == PATTERN_SINK ? sent : verified);
	mbit = run.msec == 0 ? 0.0 : mbit * 8 / 1000.0 / (double)run.msec;
	mbit = (double)(uint64_t)(mbit * 10 + 0.5) / 10;

	outcomes = json_object();
	for (i = RESULT_MISMATCH; i < RESULT_COUNT; i++)
		json_object_set_new(outcomes, result_names[i],
		    json_integer(counts[i]));
	root = json_pack("{s:I s:I s:I s:I s:I s:I s:I s:I s:f s:o s:o}",
	    "sessions", (json_int_t)run.nsessions,
	    "ok", (json_int_t)run.ok,
	    "failed", (json_int_t)(run.nsessions - run.ok),
	    "bytes_sent", (json_int_t)sent,
	    "bytes_verified", (json_int_t)verified,
	    "bytes_lost", (json_int_t)lost,
	    "duplicates", (json_int_t)dup,
	    "elapsed_ms", (json_int_t)run.msec,
	    "mbit_s", mbit,
	    "outcomes", outcomes,
	    "failures", failures);
	if (root == NULL)
		fatalx("run_summary: json_pack failed");
	if (run.durations)
		json_object_set_new(root, "duration_ms", run_durations());
	text = json_dumps(root, JSON_COMPACT|JSON_REAL_PRECISION(12));
	if (text == NULL)
		fatalx("run_summary: json_dumps failed");
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(root);
}

/* The containerVM side: run the sessions and judge them. */
static int
run_main(int argc, char **argv)
{
	struct session	*s;
	struct timeval	 tv;
	const char	*target = NULL, *bytes = NULL, *report = NULL;
	const char	*timeline = NULL;
	u_int		 i;
	int		 ch, rc, have_expect = 0;

	run.nsessions = 1;
	run.timeout = RUN_TIMEOUT_DEFAULT;
	run.label = "vtraffic";
	run.timeline = -1;
	while ((ch = getopt_long(argc, argv, "vh", run_options,
	    NULL)) != -1) {
		switch (ch) {
		case OPT_CONNECT:
			target = optarg;
			break;
		case OPT_SESSIONS:
			run.nsessions = num_parse("sessions", optarg, 1,
			    RUN_SESSIONS_MAX);
			break;
		case OPT_BYTES:
			bytes = optarg;
			break;
		case OPT_CONCURRENCY:
			run.concurrency = num_parse("concurrency", optarg, 1,
			    RUN_SESSIONS_MAX);
			break;
		case OPT_SEED:
			run.seed = num_parse("seed", optarg, 0, LLONG_MAX);
			break;
		case OPT_TIMEOUT:
			run.timeout = num_parse("timeout", optarg, 1,
			    INT_MAX);
			break;
		case OPT_PATTERN:
			if (strcmp(optarg, "echo") == 0)
				run.pattern = PATTERN_ECHO;
			else if (strcmp(optarg, "sink") == 0)
				run.pattern = PATTERN_SINK;
			else if (strcmp(optarg, "source") == 0)
				run.pattern = PATTERN_SOURCE;
			else
				fatalx("--pattern %s: echo, sink or source",
				    optarg);
			break;
		case OPT_EXPECT_BYTES:
			run.expect_bytes = size_arg("expect-bytes", optarg);
			have_expect = 1;
			break;
		case OPT_PROGRESS:
			run.progress = 1;
			break;
		case OPT_DURATIONS:
			run.durations = 1;
			break;
		case OPT_JSON:
			break;
		case OPT_DURATION:
			run.duration_ms = duration_arg(optarg);
			break;
		case OPT_REPORT:
			report = optarg;
			break;
		case OPT_TIMELINE:
			timeline = optarg;
			break;
		case OPT_LABEL:
			run.label = label_arg(optarg);
			break;
		default:
			if (!common_option(ch, optarg))
				usage();
		}
	}
	if (optind != argc || target == NULL)
		usage();
	common_setup();
	if (run.pattern == PATTERN_SOURCE) {
		if (!have_expect || bytes != NULL)
			fatalx("--pattern source takes --expect-bytes, "
			    "not --bytes");
		if (run.duration_ms != 0)
			fatalx("--duration is for --pattern echo and sink");
	} else if (bytes == NULL && run.duration_ms != 0 && !have_expect) {
		/* Time alone ends the stream. */
		run.min = run.max = VT_SIZE_MAX;
	} else {
		if (bytes == NULL || have_expect)
			fatalx("--pattern echo and sink take --bytes, "
			    "not --expect-bytes");
		if (spec_parse(bytes, &run.min, &run.max) != 0)
			fatalx("--bytes %s: want SIZE or MIN:MAX, "
			    "1 <= MIN <= MAX", bytes);
	}
	if (report != NULL && (run.report = fopen(report, "a")) == NULL)
		fatal("%s", report);
	if (timeline != NULL) {
		run.timeline = open(timeline,
		    O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0644);
		if (run.timeline == -1)
			fatal("%s", timeline);
		if ((run.tl_buf = evbuffer_new()) == NULL)
			fatalx("evbuffer_new failed");
	}
	if (run.concurrency == 0 || run.concurrency > run.nsessions)
		run.concurrency = run.nsessions;
	if ((rc = xaddr_parse(target, &run.addr)) != XADDR_OK)
		fatalx("--connect %s: %s", target, xaddr_strerror(rc));

	run.sessions = xcalloc(run.nsessions, sizeof(*run.sessions));
	for (i = 0; i < run.nsessions; i++) {
		s = &run.sessions[i];
		s->idx = i;
		s->mismatch = NO_MISMATCH;
		switch (run.pattern) {
		case PATTERN_ECHO:
			s->key = s->expect_key = gen_key(run.seed, i);
			s->size = s->expect = spec_size(run.min, run.max,
			    run.seed, i);
			break;
		case PATTERN_SINK:
			s->key = gen_key(run.seed, i);
			s->size = spec_size(run.min, run.max, run.seed, i);
			break;
		case PATTERN_SOURCE:
			s->expect_key = gen_key(0, 0);
			s->expect = run.expect_bytes;
			break;
		}
	}

	run.deadline = evtimer_new(base, run_deadline, NULL);
	tv.tv_sec = run.timeout;
	tv.tv_usec = 0;
	evtimer_add(run.deadline, &tv);
	run.sigint = evsignal_new(base, SIGINT, run_interrupt, NULL);
	evsignal_add(run.sigint, NULL);
	if (run.progress) {
		run.ticker = event_new(base, -1, EV_PERSIST, run_tick, NULL);
		tv.tv_sec = 1;
		evtimer_add(run.ticker, &tv);
	}
	if (run.timeline != -1) {
		run.tl_ticker = event_new(base, -1, EV_PERSIST, run_timeline,
		    NULL);
		tv.tv_sec = 0;
		tv.tv_usec = RUN_TIMELINE_MSEC * 1000;
		evtimer_add(run.tl_ticker, &tv);
	}

	clock_gettime(CLOCK_MONOTONIC, &run.start);
	run_start();
	if (run.done < run.nsessions)
		event_base_dispatch(base);
	run.msec = msec_since(&run.start);
	run_summary();

	for (i = 0; i < run.nsessions; i++)
		free(run.sessions[i].reason);
	free(run.sessions);
	event_free(run.deadline);
	event_free(run.sigint);
	if (run.ticker != NULL)
		event_free(run.ticker);
	if (run.tl_ticker != NULL)
		event_free(run.tl_ticker);
	if (run.tl_buf != NULL)
		evbuffer_free(run.tl_buf);
	if (run.timeline != -1)
		close(run.timeline);
	if (run.report != NULL)
		fclose(run.report);
	xaddr_free(run.addr);
	return (run.ok == run.nsessions ? 0 : 1);
}

/* Say how to call us and exit 2, as for any bad command line. */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: vtraffic serve --listen ADDR [--listen ADDR ...] "
	    "[--mode echo|sink|source]\n"
	    "\t[--source-bytes N] [--slow BYTES_PER_SEC] [--proxy-v2] "
	    "[--report FILE]\n"
	    "       vtraffic run --connect ADDR [--sessions N] "
	    "--bytes SIZE|MIN:MAX\n"
	    "\t[--duration SECS] [--pattern echo|sink] [--concurrency C] "
	    "[--seed S]\n"
	    "\t[--timeout SECS] [--progress] [--duration-report] [--json]\n"
	    "\t[--report FILE] [--timeline FILE] [--label L]\n"
	    "       vtraffic run --connect ADDR --duration SECS ... "
	    "(--bytes optional)\n"
	    "       vtraffic run --connect ADDR --pattern source "
	    "--expect-bytes N ...\n"
	    "common: [--vsock-dir DIR --vsock-cid CID] [-v]\n");
	exit(2);
}

/* Allow as many descriptors as we may: runs open thousands. */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Set up what both subcommands share and run the one asked for. */
int
main(int argc, char **argv)
{
	int	rc;

	log_init("vtraffic", LOG_LEVEL_INFO);
	if (argc < 2)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");

	/* getopt_long starts after argv[0], here the subcommand. */
	argc--;
	argv++;
	if (strcmp(argv[0], "serve") == 0)
		rc = serve_main(argc, argv);
	else if (strcmp(argv[0], "run") == 0)
		rc = run_main(argc, argv);
	else
		usage();
	event_base_free(base);
	return (rc);
}
