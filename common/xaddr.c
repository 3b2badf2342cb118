/*
 * xaddr.c -- transport addresses: parsing, canonical text, listening
 * and connecting sockets for tcp, unix and vsock (real or emulated
 * with unix sockets in one directory per simulated ESX host).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text.h"
#include "xaddr.h"
#include "xmalloc.h"

#define XADDR_MAXHOST		253	/* longest DNS name */
#define XADDR_TCP_PORTMAX	65535U
#define XADDR_VSOCK_PORTMAX	0xfffffffeU
#define XADDR_EMU_PORTBASE	0x40000000U	/* emulated ephemeral */
#define XADDR_EMU_CDIR		".c"		/* connector names */
#define XADDR_EMU_TAGMAX	48	/* "vrelay-emu:KEY/" */
#define XADDR_EMU_KEY		".emu-key"	/* DIR's secret, owner-only */
#define XADDR_EMU_KEYLEN	32		/* hex digits */
#define XADDR_SUN_PATHMAX	(sizeof(((struct sockaddr_un *)0)->sun_path))

struct xaddr {
	enum xaddr_type		 type;
	char			*str;	/* canonical text */
	struct sockaddr_storage	 ss;	/* tcp, resolved by parse */
	socklen_t		 sslen;
	char			*path;	/* unix */
	uint32_t		 cid;	/* vsock */
	uint32_t		 port;	/* tcp, vsock */
};

/* Emulation settings: the only global state of this module. */
static char	*xaddr_emu_dir;		/* NULL: real AF_VSOCK */
static uint32_t	 xaddr_emu_cid;
static uint32_t	 xaddr_emu_seq;		/* connector counter */
/* Abstract connector names' prefix; "" while DIR is not owner-only. */
static char	 xaddr_emu_tag[XADDR_EMU_TAGMAX];
static size_t	 xaddr_emu_taglen;

static int	xaddr_decimal(const char *, size_t, uint32_t, uint32_t,
		    uint32_t *);
static int	xaddr_hostchars(const char *, size_t, int);
static int	xaddr_parse_tcp(const char *, struct xaddr *, int);
static int	xaddr_parse_unix(const char *, struct xaddr *);
static int	xaddr_parse_vsock(const char *, struct xaddr *);
static int	xaddr_inet_str(const struct sockaddr *, char *, size_t);
static void	xaddr_vsock_fmt(uint32_t, uint32_t, char *, size_t);
static int	xaddr_sun(const char *, struct sockaddr_un *, socklen_t *);
static int	xaddr_emu_path(const struct xaddr *, struct sockaddr_un *,
		    socklen_t *);
static int	xaddr_unix_probe(const struct sockaddr_un *, socklen_t);
static int	xaddr_listen_unix(const struct sockaddr_un *, socklen_t, int,
		    int *);
static int	xaddr_listen_fd(int, const struct sockaddr *, socklen_t,
		    int, int *);
static int	xaddr_emu_bind(int, struct sockaddr_un *, int *);
static int	xaddr_connect_emu(const struct xaddr *, int *, int *);
static int	xaddr_mkdirs(const char *, struct stat *);
static int	xaddr_emu_numbers(const char *, size_t, uint32_t *,
		    uint32_t *);
static int	xaddr_emu_peer(const char *, size_t, uint32_t *, uint32_t *);

/* Map an error code to text for the caller's log line. */
const char *
xaddr_strerror(int code)
{
	switch (code) {
	case XADDR_OK:
		return ("no error");
	case XADDR_E_SYNTAX:
		return ("invalid address syntax");
	case XADDR_E_RESOLVE:
		return ("host name did not resolve");
	case XADDR_E_SYSTEM:
		return ("system call failed");
	case XADDR_E_INUSE:
		return ("address in use by a live listener");
	case XADDR_E_TOOLONG:
		return ("unix socket path too long");
	case XADDR_E_NOVSOCK:
		return ("AF_VSOCK not supported on this system");
	}
	return ("unknown xaddr error");
}

/*
 * Strict unsigned decimal of LEN bytes: no sign, no spaces, at most ten
 * digits, so strtonum's leniency never lets "+1" or " 1" through.
 */
static int
xaddr_decimal(const char *s, size_t len, uint32_t min, uint32_t max,
    uint32_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	*out = 0;
	if (len == 0 || len > 10)
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < min || v > max)
		return (-1);
	*out = (uint32_t)v;
	return (0);
}

/* Keep resolver input to characters a host or IPv6 literal can hold. */
static int
xaddr_hostchars(const char *s, size_t len, int v6)
{
	size_t	i;
	char	c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '.' || c == '-' ||
		    c == '_')
			continue;
		if (v6 && (c == ':' || c == '%'))
			continue;
		return (-1);
	}
	return (0);
}

/* Numeric text of an inet sockaddr, as tcp://ip:port or tcp://[v6]:port. */
static int
xaddr_inet_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char		host[NI_MAXHOST];
	socklen_t	salen;
	uint16_t	port;
	int		n;

	if (sa->sa_family == AF_INET) {
		salen = sizeof(struct sockaddr_in);
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		salen = sizeof(struct sockaddr_in6);
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else
		return (-1);
	if (getnameinfo(sa, salen, host, sizeof(host), NULL, 0,
	    NI_NUMERICHOST) != 0)
		return (-1);
	if (sa->sa_family == AF_INET6)
		n = snprintf(buf, len, "tcp://[%s]:%u", host, port);
	else
		n = snprintf(buf, len, "tcp://%s:%u", host, port);
	if (n < 0 || (size_t)n >= len)
		return (-1);
	return (0);
}

/* Canonical vsock text; "any" stands for VMADDR_CID_ANY. */
static void
xaddr_vsock_fmt(uint32_t cid, uint32_t port, char *buf, size_t len)
{
	if (cid == XADDR_CID_ANY)
		(void)snprintf(buf, len, "vsock://any:%u", port);
	else
		(void)snprintf(buf, len, "vsock://%u:%u", cid, port);
}

/*
 * Split tcp HOST:PORT (HOST a name, dotted IPv4 or a bracketed IPv6)
 * into HOST (XADDR_MAXHOST + 1 bytes), *PORT and *V6, by syntax alone.
 */
static int
xaddr_tcp_split(const char *s, char *host, uint32_t *port, int *v6)
{
	const char	*h, *end, *p;
	size_t		 hlen;

	*v6 = 0;
	if (*s == '[') {
		*v6 = 1;
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL || end[1] != ':')
			return (XADDR_E_SYNTAX);
		hlen = (size_t)(end - h);
		p = end + 2;
	} else {
		h = s;
		if ((end = strchr(h, ':')) == NULL)
			return (XADDR_E_SYNTAX);
		hlen = (size_t)(end - h);
		p = end + 1;
	}
	if (hlen == 0 || hlen > XADDR_MAXHOST ||
	    xaddr_hostchars(h, hlen, *v6) == -1)
		return (XADDR_E_SYNTAX);
	if (xaddr_decimal(p, strlen(p), 1, XADDR_TCP_PORTMAX, port) == -1)
		return (XADDR_E_SYNTAX);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return (XADDR_OK);
}

/*
 * tcp://HOST:PORT, resolved now (blocking for a name), or with NUMERIC
 * only a numeric HOST (XADDR_E_RESOLVE for a name, never waiting).
 */
static int
xaddr_parse_tcp(const char *s, struct xaddr *xa, int numeric)
{
	struct addrinfo	 hints, *res = NULL;
	char		 host[XADDR_MAXHOST + 1], serv[16];
	char		 buf[XADDR_PEER_STRLEN];
	int		 v6, error, rv;

	if ((rv = xaddr_tcp_split(s, host, &xa->port, &v6)) != XADDR_OK)
		return (rv);
	(void)snprintf(serv, sizeof(serv), "%u", xa->port);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV |
	    (v6 || numeric ? AI_NUMERICHOST : 0);
	if ((error = getaddrinfo(host, serv, &hints, &res)) != 0) {
		if (v6)
			return (XADDR_E_SYNTAX);	/* bad IPv6 literal */
		return (error == EAI_SYSTEM ? XADDR_E_SYSTEM :
		    XADDR_E_RESOLVE);
	}
	if (res == NULL || res->ai_addrlen > sizeof(xa->ss) ||
	    (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
		rv = XADDR_E_RESOLVE;
		goto out;
	}
	memcpy(&xa->ss, res->ai_addr, res->ai_addrlen);
	xa->sslen = res->ai_addrlen;
	if (xaddr_inet_str((struct sockaddr *)&xa->ss, buf, sizeof(buf)) ==
	    -1) {
		rv = XADDR_E_RESOLVE;
		goto out;
	}
	xa->str = xstrdup(buf);
	rv = XADDR_OK;
out:
	freeaddrinfo(res);
	return (rv);
}

/* unix:PATH; the path must fit sun_path with its terminator. */
static int
xaddr_parse_unix(const char *s, struct xaddr *xa)
{
	size_t	len;

	if ((len = strlen(s)) == 0)
		return (XADDR_E_SYNTAX);
	if (len >= XADDR_SUN_PATHMAX)
		return (XADDR_E_TOOLONG);
	xa->path = xstrdup(s);
	(void)xasprintf(&xa->str, "unix:%s", s);
	return (XADDR_OK);
}

/* vsock://CID:PORT, CID decimal or "any". */
static int
xaddr_parse_vsock(const char *s, struct xaddr *xa)
{
	char		 buf[XADDR_PEER_STRLEN];
	const char	*colon;
	size_t		 clen;

	if ((colon = strchr(s, ':')) == NULL)
		return (XADDR_E_SYNTAX);
	clen = (size_t)(colon - s);
	if (clen == 3 && strncmp(s, "any", 3) == 0)
		xa->cid = XADDR_CID_ANY;
	else if (xaddr_decimal(s, clen, 0, UINT32_MAX, &xa->cid) == -1)
		return (XADDR_E_SYNTAX);
	if (xaddr_decimal(colon + 1, strlen(colon + 1), 0, XADDR_VSOCK_PORTMAX,
	    &xa->port) == -1)
		return (XADDR_E_SYNTAX);
	xaddr_vsock_fmt(xa->cid, xa->port, buf, sizeof(buf));
	xa->str = xstrdup(buf);
	return (XADDR_OK);
}

/*
 * Whether S is a well-formed address, without resolving anything: a
 * tcp name is checked by syntax only (for text from peers, which must
 * never make the loop wait on DNS).
 */
int
xaddr_check(const char *s)
{
	struct xaddr	*xa;
	struct in6_addr	 in6;
	char		 host[XADDR_MAXHOST + 1];
	uint32_t	 port;
	int		 v6, rv;

	if (s == NULL)
		return (XADDR_E_SYNTAX);
	if (strncmp(s, "tcp://", 6) == 0) {
		if ((rv = xaddr_tcp_split(s + 6, host, &port, &v6)) !=
		    XADDR_OK)
			return (rv);
		if (v6 && inet_pton(AF_INET6, host, &in6) != 1)
			return (XADDR_E_SYNTAX);
		return (XADDR_OK);
	}
	rv = xaddr_parse(s, &xa);
	xaddr_free(xa);
	return (rv);
}

/* Parse S; NUMERIC refuses tcp host names rather than resolve them. */
static int
xaddr_parse_any(const char *s, struct xaddr **out, int numeric)
{
	struct xaddr	*xa;
	int		 rv;

	*out = NULL;
	if (s == NULL)
		return (XADDR_E_SYNTAX);
	xa = xcalloc(1, sizeof(*xa));
	if (strncmp(s, "tcp://", 6) == 0) {
		xa->type = XADDR_TCP;
		rv = xaddr_parse_tcp(s + 6, xa, numeric);
	} else if (strncmp(s, "unix:", 5) == 0) {
		xa->type = XADDR_UNIX;
		rv = xaddr_parse_unix(s + 5, xa);
	} else if (strncmp(s, "vsock://", 8) == 0) {
		xa->type = XADDR_VSOCK;
		rv = xaddr_parse_vsock(s + 8, xa);
	} else
		rv = XADDR_E_SYNTAX;
	if (rv != XADDR_OK) {
		xaddr_free(xa);
		return (rv);
	}
	*out = xa;
	return (XADDR_OK);
}

/* Turn configuration or command-line text into an address. */
int
xaddr_parse(const char *s, struct xaddr **out)
{
	return (xaddr_parse_any(s, out, 0));
}

/*
 * The same without name lookups, for addresses a peer sent, which the
 * event loop must not wait on: a tcp host name is XADDR_E_RESOLVE.
 */
int
xaddr_parse_numeric(const char *s, struct xaddr **out)
{
	return (xaddr_parse_any(s, out, 1));
}

/*
 * What went wrong, for messages: the errno text for XADDR_E_SYSTEM
 * (call it before anything else can change errno), else the code's.
 */
const char *
xaddr_why(int e)
{
	return (e == XADDR_E_SYSTEM ? strerror(errno) : xaddr_strerror(e));
}

/* Release an address; NULL is fine. */
void
xaddr_free(struct xaddr *xa)
{
	if (xa == NULL)
		return;
	free(xa->str);
	free(xa->path);
	free(xa);
}

/* Deep copy, so configuration reloads can keep addresses they reuse. */
struct xaddr *
xaddr_dup(const struct xaddr *xa)
{
	struct xaddr	*n;

	if (xa == NULL)
		return (NULL);
	n = xcalloc(1, sizeof(*n));
	*n = *xa;
	n->str = xa->str != NULL ? xstrdup(xa->str) : NULL;
	n->path = xa->path != NULL ? xstrdup(xa->path) : NULL;
	return (n);
}

/* Which transport, for callers that branch on it. */
enum xaddr_type
xaddr_type(const struct xaddr *xa)
{
	return (xa->type);
}

/* Canonical text for logs, status output and comparisons. */
const char *
xaddr_str(const struct xaddr *xa)
{
	return (xa->str);
}

/* The vsock CID (XADDR_CID_ANY for "any"); 0 for other transports. */
uint32_t
xaddr_cid(const struct xaddr *xa)
{
	return (xa->type == XADDR_VSOCK ? xa->cid : 0);
}

/* The tcp or vsock port; 0 for unix. */
uint32_t
xaddr_port(const struct xaddr *xa)
{
	return (xa->type == XADDR_UNIX ? 0 : xa->port);
}

/* The unix socket path; NULL for other transports. */
const char *
xaddr_path(const struct xaddr *xa)
{
	return (xa->type == XADDR_UNIX ? xa->path : NULL);
}

/*
 * Whether XA is a tcp address on the loopback network (127.0.0.0/8,
 * ::1 or ::ffff:127.0.0.0/104): reachable from this machine only.
 */
int
xaddr_loopback(const struct xaddr *xa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (xa == NULL || xa->type != XADDR_TCP)
		return (0);
	if (xa->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)&xa->ss;
		return ((ntohl(sin->sin_addr.s_addr) >> 24) == 127);
	}
	if (xa->ss.ss_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)&xa->ss;
		return (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    sin6->sin6_addr.s6_addr[12] == 127));
	}
	return (0);
}

/* Same endpoint: same transport and same canonical text. */
int
xaddr_equal(const struct xaddr *a, const struct xaddr *b)
{
	if (a == b)
		return (1);
	if (a == NULL || b == NULL)
		return (0);
	return (a->type == b->type && strcmp(a->str, b->str) == 0);
}

/* mkdir -p with mode 0700 for components we create; *ST: the last. */
static int
xaddr_mkdirs(const char *dir, struct stat *st)
{
	char		*p, *s;
	int		 rv = -1, saved;

	p = xstrdup(dir);
	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			goto out;
		*s = '/';
	}
	if (mkdir(p, 0700) == -1 && errno != EEXIST)
		goto out;
	if (stat(p, st) == -1)
		goto out;
	if (!S_ISDIR(st->st_mode)) {
		errno = ENOTDIR;
		goto out;
	}
	rv = 0;
out:
	saved = errno;
	free(p);
	errno = saved;
	return (rv);
}

/*
 * DIR's key: XADDR_EMU_KEYLEN random hex digits in DIR/.emu-key, made
 * by whoever comes first (linked into place, so racing processes agree
 * on one).  0 with KEY filled, -1 if there is none to be had.
 */
static int
xaddr_emu_key(const char *dir, char *key)
{
	unsigned char	 rnd[XADDR_EMU_KEYLEN / 2];
	char		 path[PATH_MAX], tmp[PATH_MAX], hex[XADDR_EMU_KEYLEN];
	size_t		 i;
	ssize_t		 n;
	int		 fd, rv = -1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, XADDR_EMU_KEY) >=
	    (int)sizeof(path) || snprintf(tmp, sizeof(tmp), "%s/%s.%ld",
	    dir, XADDR_EMU_KEY, (long)getpid()) >= (int)sizeof(tmp))
		return (-1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 &&
	    errno == ENOENT) {
		arc4random_buf(rnd, sizeof(rnd));
		/* No snprintf: its NUL would land past the last digit. */
		for (i = 0; i < sizeof(rnd); i++) {
			hex[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
			hex[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
		}
		(void)unlink(tmp);
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1)
			return (-1);
		n = write(fd, hex, sizeof(hex));
		(void)close(fd);
		/* Whoever linked first wins; everyone reads that one. */
		if (n == (ssize_t)sizeof(hex) && link(tmp, path) == -1 &&
		    errno != EEXIST)
			n = -1;
		(void)unlink(tmp);
		if (n != (ssize_t)sizeof(hex))
			return (-1);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1)
		return (-1);
	if (read(fd, key, XADDR_EMU_KEYLEN) == XADDR_EMU_KEYLEN) {
		rv = 0;
		for (i = 0; i < XADDR_EMU_KEYLEN; i++)
			if (strchr("0123456789abcdef", key[i]) == NULL ||
			    key[i] == '\0')
				rv = -1;
	}
	(void)close(fd);
	return (rv);
}

/*
 * Switch vsock emulation on (in DIR, as CID) or off (DIR NULL).  DIR
 * is made absolute so a daemon's chdir("/") does not move it.  An
 * owner-only DIR gets abstract connector names, tagged with a key that
 * only who can read DIR knows (DIR/.emu-key).
 */
int
xaddr_vsock_emulate(const char *dir, uint32_t cid)
{
	struct stat	 st;
	char		 cwd[PATH_MAX], key[XADDR_EMU_KEYLEN];
	char		*abs;
	size_t		 len;
	int		 n, saved;

	if (dir == NULL) {
		free(xaddr_emu_dir);
		xaddr_emu_dir = NULL;
		xaddr_emu_cid = 0;
		xaddr_emu_tag[0] = '\0';
		xaddr_emu_taglen = 0;
		return (XADDR_OK);
	}
	if (*dir == '\0' || cid == XADDR_CID_ANY) {
		errno = EINVAL;
		return (XADDR_E_SYSTEM);
	}
	if (*dir == '/')
		abs = xstrdup(dir);
	else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return (XADDR_E_SYSTEM);
		(void)xasprintf(&abs, "%s/%s", cwd, dir);
	}
	len = strlen(abs);
	while (len > 1 && abs[len - 1] == '/')
		abs[--len] = '\0';
	/* Room for at least "/.c/" plus a short name. */
	if (len + sizeof("/" XADDR_EMU_CDIR "/1.1.1.1") > XADDR_SUN_PATHMAX) {
		free(abs);
		return (XADDR_E_TOOLONG);
	}
	if (xaddr_mkdirs(abs, &st) == -1) {
		saved = errno;
		free(abs);
		errno = saved;
		return (XADDR_E_SYSTEM);
	}
	free(xaddr_emu_dir);
	xaddr_emu_dir = abs;
	xaddr_emu_cid = cid;
	/*
	 * Anyone in a network namespace may bind an abstract name, and may
	 * present it at any unix listener, in DIR or not.  So the name
	 * carries DIR's key: only who can read DIR (owner-only: who could
	 * bind a file in DIR/.c) can make one that is believed.
	 */
	xaddr_emu_taglen = 0;
	xaddr_emu_tag[0] = '\0';
	if ((st.st_mode & 077) == 0 && xaddr_emu_key(abs, key) == 0) {
		n = snprintf(xaddr_emu_tag, sizeof(xaddr_emu_tag),
		    "vrelay-emu:%.*s/", XADDR_EMU_KEYLEN, key);
		if (n > 0 && (size_t)n < sizeof(xaddr_emu_tag))
			xaddr_emu_taglen = (size_t)n;
		else
			xaddr_emu_tag[0] = '\0';
	}
	return (XADDR_OK);
}

/* Nonzero when vsock addresses map onto unix sockets. */
int
xaddr_vsock_emulated(void)
{
	return (xaddr_emu_dir != NULL);
}

/* The emulation directory, or NULL when emulation is off. */
const char *
xaddr_vsock_dir(void)
{
	return (xaddr_emu_dir);
}

/*
 * This process's CID: the emulated one, else what the kernel reports
 * (VMADDR_CID_ANY when it cannot tell).
 */
uint32_t
xaddr_vsock_cid(void)
{
	unsigned int	cid;
	int		fd;

	if (xaddr_emu_dir != NULL)
		return (xaddr_emu_cid);
	if ((fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC)) == -1)
		return (XADDR_CID_ANY);
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) == -1)
		cid = XADDR_CID_ANY;
	(void)close(fd);
	return (cid);
}

/* Fill a sockaddr_un, refusing paths that would be truncated. */
static int
xaddr_sun(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path))
		return (XADDR_E_TOOLONG);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(sun->sun_path) + 1);
	return (XADDR_OK);
}

/* The unix socket an emulated vsock listener uses: DIR/CID.PORT. */
static int
xaddr_emu_path(const struct xaddr *xa, struct sockaddr_un *sun,
    socklen_t *len)
{
	char		path[XADDR_SUN_PATHMAX + 1];
	uint32_t	cid;
	int		n;

	cid = xa->cid == XADDR_CID_ANY ? xaddr_emu_cid : xa->cid;
	n = snprintf(path, sizeof(path), "%s/%u.%u", xaddr_emu_dir, cid,
	    xa->port);
	if (n < 0 || (size_t)n >= XADDR_SUN_PATHMAX)
		return (XADDR_E_TOOLONG);
	return (xaddr_sun(path, sun, len));
}

/*
 * Is someone accepting on this unix socket?  1 live, 0 stale or gone,
 * -1 cannot tell (errno set), so we never unlink a live listener.
 */
static int
xaddr_unix_probe(const struct sockaddr_un *sun, socklen_t len)
{
	int	fd, rv, saved;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (-1);
	if (connect(fd, (const struct sockaddr *)sun, len) == 0)
		rv = 1;
	else if (errno == EAGAIN || errno == EINPROGRESS)
		rv = 1;		/* backlog full: alive */
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rv = 0;
	else
		rv = -1;
	saved = errno;
	(void)close(fd);
	errno = saved;
	return (rv);
}

/* bind() and listen() on a fresh socket; closes it on failure. */
static int
xaddr_listen_fd(int fd, const struct sockaddr *sa, socklen_t salen,
    int backlog, int *fdp)
{
	int	saved, rv;

	if (bind(fd, sa, salen) == -1) {
		rv = errno == EADDRINUSE && sa->sa_family == AF_UNIX ?
		    XADDR_E_INUSE : XADDR_E_SYSTEM;
		goto fail;
	}
	if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) == -1) {
		rv = XADDR_E_SYSTEM;
		goto fail;
	}
	*fdp = fd;
	return (XADDR_OK);
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return (rv);
}

/* Listen on a unix path, replacing only a stale socket left there. */
static int
xaddr_listen_unix(const struct sockaddr_un *sun, socklen_t len,
    int backlog, int *fdp)
{
	struct stat	st;
	int		fd;

	if (lstat(sun->sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;	/* never remove a non-socket */
			return (XADDR_E_SYSTEM);
		}
		switch (xaddr_unix_probe(sun, len)) {
		case 1:
			return (XADDR_E_INUSE);
		case 0:
			if (unlink(sun->sun_path) == -1 && errno != ENOENT)
				return (XADDR_E_SYSTEM);
			break;
		default:
			return (XADDR_E_SYSTEM);
		}
	} else if (errno != ENOENT)
		return (XADDR_E_SYSTEM);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (XADDR_E_SYSTEM);
	return (xaddr_listen_fd(fd, (const struct sockaddr *)sun, len,
	    backlog, fdp));
}

/* A listening socket for a daemon's accept loop. */
int
xaddr_listen(const struct xaddr *xa, int backlog, int *fdp)
{
	struct sockaddr_un	sun;
	struct sockaddr_vm	svm;
	socklen_t		len;
	int			fd, on = 1, rv, saved;

	*fdp = -1;
	switch (xa->type) {
	case XADDR_TCP:
		fd = socket(xa->ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1)
			return (XADDR_E_SYSTEM);
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == -1) {
			saved = errno;
			(void)close(fd);
			errno = saved;
			return (XADDR_E_SYSTEM);
		}
		return (xaddr_listen_fd(fd, (const struct sockaddr *)&xa->ss,
		    xa->sslen, backlog, fdp));
	case XADDR_UNIX:
		if ((rv = xaddr_sun(xa->path, &sun, &len)) != XADDR_OK)
			return (rv);
		return (xaddr_listen_unix(&sun, len, backlog, fdp));
	case XADDR_VSOCK:
		if (xaddr_emu_dir != NULL) {
			if ((rv = xaddr_emu_path(xa, &sun, &len)) != XADDR_OK)
				return (rv);
			return (xaddr_listen_unix(&sun, len, backlog, fdp));
		}
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1)
			return (errno == EAFNOSUPPORT ? XADDR_E_NOVSOCK :
			    XADDR_E_SYSTEM);
		memset(&svm, 0, sizeof(svm));
		svm.svm_family = AF_VSOCK;
		svm.svm_cid = xa->cid;	/* CID_ANY is VMADDR_CID_ANY */
		svm.svm_port = xa->port;
		return (xaddr_listen_fd(fd, (const struct sockaddr *)&svm,
		    sizeof(svm), backlog, fdp));
	}
	errno = EINVAL;
	return (XADDR_E_SYSTEM);
}

/* Remove the listener's socket file so the next start binds cleanly. */
void
xaddr_unlisten(const struct xaddr *xa)
{
	struct sockaddr_un	sun;
	socklen_t		len;

	if (xa == NULL)
		return;
	if (xa->type == XADDR_UNIX)
		(void)unlink(xa->path);
	else if (xa->type == XADDR_VSOCK && xaddr_emu_dir != NULL &&
	    xaddr_emu_path(xa, &sun, &len) == XADDR_OK)
		(void)unlink(sun.sun_path);
}

/*
 * Bind FD to a fresh emulated connector name, which carries our CID and
 * an ephemeral port for the listener's accept(): the abstract "\0TAG"
 * CID.PORT.PID.SEQ (no inode to create and remove) while DIR is
 * owner-only, else, or when another socket in our network namespace
 * holds that name, the file DIR/.c/CID.PORT.PID.SEQ; *FILE then says
 * the caller has SELF's path to unlink.  The port mixes in the pid so
 * processes sharing a CID rarely hand out the same one.
 */
static int
xaddr_emu_bind(int fd, struct sockaddr_un *self, int *file)
{
	char		path[XADDR_SUN_PATHMAX + 1];
	socklen_t	len;
	uint32_t	seq, port;
	long		pid = (long)getpid();
	int		n, rv;

	*file = 0;
	seq = xaddr_emu_seq++;
	port = XADDR_EMU_PORTBASE | (((uint32_t)pid & 0x3fff) << 16) |
	    (seq & 0xffff);
	if (xaddr_emu_taglen > 0) {
		memset(self, 0, sizeof(*self));
		self->sun_family = AF_UNIX;
		n = snprintf(self->sun_path + 1, sizeof(self->sun_path) - 1,
		    "%s%u.%u.%ld.%u", xaddr_emu_tag, xaddr_emu_cid, port, pid,
		    seq);
		if (n < 0 || (size_t)n >= sizeof(self->sun_path) - 1)
			return (XADDR_E_TOOLONG);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
		    (size_t)n);
		if (bind(fd, (struct sockaddr *)self, len) == 0)
			return (XADDR_OK);
		/* Taken, or refused (a sandbox): the file instead. */
	}
	n = snprintf(path, sizeof(path), "%s/%s", xaddr_emu_dir,
	    XADDR_EMU_CDIR);
	if (n < 0 || (size_t)n >= XADDR_SUN_PATHMAX)
		return (XADDR_E_TOOLONG);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return (XADDR_E_SYSTEM);
	n = snprintf(path, sizeof(path), "%s/%s/%u.%u.%ld.%u", xaddr_emu_dir,
	    XADDR_EMU_CDIR, xaddr_emu_cid, port, pid, seq);
	if (n < 0 || (size_t)n >= XADDR_SUN_PATHMAX)
		return (XADDR_E_TOOLONG);
	if ((rv = xaddr_sun(path, self, &len)) != XADDR_OK)
		return (rv);
	(void)unlink(self->sun_path);	/* a dead process with our pid */
	if (bind(fd, (struct sockaddr *)self, len) == -1)
		return (XADDR_E_SYSTEM);
	*file = 1;
	return (XADDR_OK);
}

/*
 * Emulated vsock connect: bind a name carrying our CID and an
 * ephemeral port so accept() on the far side can report them, then
 * connect; a file name is unlinked at once (the socket keeps it).
 */
static int
xaddr_connect_emu(const struct xaddr *xa, int *fdp, int *upp)
{
	struct sockaddr_un	 self, peer;
	socklen_t		 peerlen;
	int			 fd = -1, rv, saved, file = 0;

	if (xa->cid == XADDR_CID_ANY) {
		errno = EADDRNOTAVAIL;	/* cannot connect to "any" */
		return (XADDR_E_SYSTEM);
	}
	if ((rv = xaddr_emu_path(xa, &peer, &peerlen)) != XADDR_OK)
		return (rv);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		rv = XADDR_E_SYSTEM;
		goto out;
	}
	if ((rv = xaddr_emu_bind(fd, &self, &file)) != XADDR_OK)
		goto out;
	if (connect(fd, (struct sockaddr *)&peer, peerlen) == 0)
		*upp = 1;
	else if (errno != EINPROGRESS)
		rv = XADDR_E_SYSTEM;
out:
	saved = errno;
	if (file)
		(void)unlink(self.sun_path);
	if (rv == XADDR_OK)
		*fdp = fd;
	else if (fd != -1)
		(void)close(fd);
	errno = saved;
	return (rv);
}

/*
 * Start a non-blocking connect; completion is the caller's to await,
 * unless *UPP (if not NULL) says it completed at once (a unix socket).
 */
int
xaddr_connect(const struct xaddr *xa, int *fdp, int *upp)
{
	struct sockaddr_un	 sun;
	struct sockaddr_vm	 svm;
	const struct sockaddr	*sa;
	socklen_t		 len;
	int			 fd, rv, saved, up = 0;

	*fdp = -1;
	if (upp == NULL)
		upp = &up;
	*upp = 0;
	switch (xa->type) {
	case XADDR_TCP:
		sa = (const struct sockaddr *)&xa->ss;
		len = xa->sslen;
		fd = socket(xa->ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		break;
	case XADDR_UNIX:
		if ((rv = xaddr_sun(xa->path, &sun, &len)) != XADDR_OK)
			return (rv);
		sa = (const struct sockaddr *)&sun;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		break;
	case XADDR_VSOCK:
		if (xa->cid == XADDR_CID_ANY) {
			errno = EADDRNOTAVAIL;	/* cannot connect to "any" */
			return (XADDR_E_SYSTEM);
		}
		if (xaddr_emu_dir != NULL)
			return (xaddr_connect_emu(xa, fdp, upp));
		memset(&svm, 0, sizeof(svm));
		svm.svm_family = AF_VSOCK;
		svm.svm_cid = xa->cid;
		svm.svm_port = xa->port;
		sa = (const struct sockaddr *)&svm;
		len = sizeof(svm);
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1 && errno == EAFNOSUPPORT)
			return (XADDR_E_NOVSOCK);
		break;
	default:
		errno = EINVAL;
		return (XADDR_E_SYSTEM);
	}
	if (fd == -1)
		return (XADDR_E_SYSTEM);
	if (connect(fd, sa, len) == 0)
		*upp = 1;
	else if (errno != EINPROGRESS) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return (XADDR_E_SYSTEM);
	}
	xaddr_tune(fd, xa->type);
	*fdp = fd;
	return (XADDR_OK);
}

/* Four dot-separated decimals in LEN bytes: CID.PORT.PID.SEQ. */
static int
xaddr_emu_numbers(const char *s, size_t len, uint32_t *cid, uint32_t *port)
{
	const char	*p = s, *end = s + len, *dot;
	uint32_t	 v[4];
	int		 i;

	for (i = 0; i < 4; i++) {
		dot = memchr(p, '.', (size_t)(end - p));
		if (i < 3 && dot == NULL)
			return (-1);
		if (i == 3) {
			if (dot != NULL)
				return (-1);
			dot = end;
		}
		if (xaddr_decimal(p, (size_t)(dot - p), 0, UINT32_MAX,
		    &v[i]) == -1)
			return (-1);
		p = dot + 1;
	}
	*cid = v[0];
	*port = v[1];
	return (0);
}

/*
 * Recognise an emulated vsock connector's name, sun_path's LEN bytes
 * NAME: "\0TAG" CID.PORT.PID.SEQ with our own directory's tag, or the
 * file DIR/.c/CID.PORT.PID.SEQ in our own directory; pull out CID and
 * PORT.  Any other name is a plain unix peer, which can claim no CID.
 */
static int
xaddr_emu_peer(const char *name, size_t len, uint32_t *cid, uint32_t *port)
{
	const char	*base;
	size_t		 dlen, clen = sizeof(XADDR_EMU_CDIR) - 1;

	*cid = *port = 0;
	if (xaddr_emu_dir == NULL || len == 0)
		return (-1);
	if (name[0] == '\0') {
		if (xaddr_emu_taglen == 0 || len < 1 + xaddr_emu_taglen ||
		    memcmp(name + 1, xaddr_emu_tag, xaddr_emu_taglen) != 0)
			return (-1);
		base = name + 1 + xaddr_emu_taglen;
	} else {
		len = strnlen(name, len);
		dlen = strlen(xaddr_emu_dir);
		if (len < dlen + clen + 2 ||
		    memcmp(name, xaddr_emu_dir, dlen) != 0 ||
		    name[dlen] != '/' ||
		    memcmp(name + dlen + 1, XADDR_EMU_CDIR, clen) != 0 ||
		    name[dlen + 1 + clen] != '/')
			return (-1);
		base = name + dlen + clen + 2;
	}
	return (xaddr_emu_numbers(base, len - (size_t)(base - name), cid,
	    port));
}

/*
 * What an accepted peer is, for access checks and logs.  An address we
 * cannot make sense of leaves type 0 and str "unknown".
 */
void
xaddr_peer_describe(const struct sockaddr *sa, socklen_t salen,
    struct xaddr_peer *peer)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	*sin6;
	struct sockaddr_un	*sun;
	struct sockaddr_vm	*svm;
	char			 path[XADDR_SUN_PATHMAX + 1];
	size_t			 plen;

	memset(peer, 0, sizeof(*peer));
	(void)strlcpy(peer->str, "unknown", sizeof(peer->str));
	if (sa == NULL || salen < (socklen_t)sizeof(sa_family_t))
		return;
	/* Copy out: callers may hand us any buffer, aligned or not. */
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, salen < sizeof(ss) ? salen : sizeof(ss));

	switch (ss.ss_family) {
	case AF_INET:
		if (salen < sizeof(struct sockaddr_in))
			return;
		peer->type = XADDR_TCP;
		peer->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		if (xaddr_inet_str((struct sockaddr *)&ss, peer->str,
		    sizeof(peer->str)) == -1)
			(void)strlcpy(peer->str, "tcp://?", sizeof(peer->str));
		break;
	case AF_INET6:
		if (salen < sizeof(struct sockaddr_in6))
			return;
		sin6 = (struct sockaddr_in6 *)&ss;
		peer->type = XADDR_TCP;
		peer->port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* A v4 client on a dual-stack listener. */
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_port = sin6->sin6_port;
			memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
			memcpy(&ss, &sin, sizeof(sin));
		}
		if (xaddr_inet_str((struct sockaddr *)&ss, peer->str,
		    sizeof(peer->str)) == -1)
			(void)strlcpy(peer->str, "tcp://?", sizeof(peer->str));
		break;
	case AF_UNIX:
		sun = (struct sockaddr_un *)&ss;
		peer->type = XADDR_UNIX;
		plen = 0;
		if (salen > offsetof(struct sockaddr_un, sun_path))
			plen = salen - offsetof(struct sockaddr_un, sun_path);
		if (plen > sizeof(sun->sun_path))
			plen = sizeof(sun->sun_path);
		if (xaddr_emu_peer(sun->sun_path, plen, &peer->cid,
		    &peer->port) == 0) {
			peer->type = XADDR_VSOCK;
			xaddr_vsock_fmt(peer->cid, peer->port, peer->str,
			    sizeof(peer->str));
			break;
		}
		if (plen > 0 && sun->sun_path[0] == '\0') {
			/* Linux abstract namespace. */
			text_ascii_copy(path, sizeof(path), sun->sun_path + 1,
			    plen - 1);
			(void)snprintf(peer->str, sizeof(peer->str),
			    "unix:@%s", path);
			break;
		}
		memcpy(path, sun->sun_path, plen);
		path[plen] = '\0';
		if (path[0] == '\0') {
			(void)strlcpy(peer->str, "unix:(unnamed)",
			    sizeof(peer->str));
			break;
		}
		{
			char	shown[sizeof(peer->str) - 5];

			/* The peer chose this name: never raw into logs. */
			text_ascii_copy(shown, sizeof(shown), path,
			    strlen(path));
			(void)snprintf(peer->str, sizeof(peer->str), "unix:%s",
			    shown);
		}
		break;
	case AF_VSOCK:
		if (salen < sizeof(struct sockaddr_vm))
			return;
		svm = (struct sockaddr_vm *)&ss;
		peer->type = XADDR_VSOCK;
		peer->cid = svm->svm_cid;
		peer->port = svm->svm_port;
		xaddr_vsock_fmt(peer->cid, peer->port, peer->str,
		    sizeof(peer->str));
		break;
	}
}

/*
 * Data legs carry small interactive frames: do not let Nagle sit on
 * them.  Only TCP has the option: unix and vsock sockets refuse it
 * (EOPNOTSUPP), a system call per connection for nothing, so the
 * caller says what FD is.
 */
void
xaddr_tune(int fd, enum xaddr_type type)
{
	int	on = 1;

	if (fd >= 0 && type == XADDR_TCP)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on));
}

/*
 * Make the coming close() abortive (SO_LINGER {1, 0}): a TCP peer gets
 * a reset, not a FIN it could take for a complete stream.  Unix and
 * AF_VSOCK sockets have no reset (Linux vsock sends a shutdown, seen
 * in make check-vsock); their peer reads EOF.
 */
void
xaddr_reset(int fd)
{
	struct linger	l = { 1, 0 };

	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* TCP_USER_TIMEOUT of MS on a TCP socket; other sockets are left be. */
void
xaddr_dead_after(int fd, long long ms)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);
	unsigned int		ut;

	if (ms <= 0 || fd < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return;
	ut = ms > UINT_MAX ? UINT_MAX : (unsigned int)ms;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

/*
 * POLLRDHUP says a peer's FIN (TCP, unix and AF_VSOCK sockets alike)
 * while bytes it sent before are still queued: reading would take them.
 */
int
xaddr_hungup(int fd)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLRDHUP };

	if (fd < 0 || poll(&pfd, 1, 0) != 1)
		return (0);
	return ((pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0);
}
