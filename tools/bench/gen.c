// SPDX-License-Identifier: GPL-2.0
/*
 * lvs-bench-gen: the benchmark's traffic programs that must run at C speed
 * (tools/bench/).  One binary, seven modes:
 *
 *   gen serve PORT...
 *       accept() and close() on each TCP port (any address), forever.
 *
 *   gen serve-peer PORT...
 *       the same, asking accept() and getpeername() for the client's
 *       address as a server that logs its clients does (TOA answers both).
 *
 *   gen connect ADDR PORT SECONDS CONCURRENCY
 *       keep CONCURRENCY non-blocking connects in flight for SECONDS; every
 *       completed handshake is closed at once with a reset (SO_LINGER 0, so
 *       no TIME_WAIT).  Prints "timing" when its clock starts, then
 *       "completed failed elapsed_s".
 *
 *   gen echo [--proxy] PORT...
 *       echo back on each TCP port (any address) whatever each connection
 *       sends; with --proxy, every connection starts with a PROXY protocol
 *       header (v1 or v2), which is read and not echoed, and one whose
 *       first bytes are no such header is closed.
 *
 *   gen rr ADDR PORT SECONDS CONCURRENCY SIZE [PER_CONNECTION]
 *       request/response over CONCURRENCY connections: each sends SIZE
 *       bytes (1..1024), waits until SIZE bytes came back, and sends again.
 *       With PER_CONNECTION > 0, a connection is closed with a reset after
 *       that many exchanges and another one opened in its place (1: one
 *       exchange per connection, a connection rate that counts only what
 *       reached the server and came back).  The clock starts once every
 *       connection slot has been established once (or after 10 s,
 *       whichever comes first); a connection that fails or closes early
 *       counts as failed and is opened again.  Prints "timing" when its
 *       clock starts, then "transactions failed elapsed_s".
 *
 *   gen hold ADDR PORT COUNT
 *       open COUNT connections (at most 256 handshakes in flight) and keep
 *       them idle: prints "held failed" once every attempt has ended, then
 *       waits for a line or the end of standard input and closes them all
 *       with a reset.  For the memory a proxy spends per connection.
 *
 *   gen flood IFACE DST_MAC SRC_NET/BITS DST_ADDR DST_PORT syn|ack SECONDS [SEED]
 *       raw TCP SYN or ACK frames on an AF_PACKET socket (sendmmsg batches,
 *       qdisc bypassed), source address and port, sequence and (ACK)
 *       acknowledgment numbers varying per packet, drawn from a generator
 *       started at SEED (default 1: runs with other seeds send other
 *       packets).  Prints "sent elapsed_s".
 *
 * The same program drives both sides of every comparison, so whatever it
 * costs is the same for the baseline and the measured feature.  Every mode
 * first raises its open-file limit to the hard limit (hold and echo keep
 * tens of thousands of sockets).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* ---------------------------------------------------------------- serve */

static int serve(int argc, char **argv, int want_peer)
{
	int ep = epoll_create1(0), i, one = 1;
	struct epoll_event ev, evs[64];

	if (ep < 0)
		die("epoll_create1");
	for (i = 0; i < argc; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons(atoi(argv[i])) };
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (s < 0)
			die("socket");
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4096))
			die("bind/listen");
		ev.events = EPOLLIN;
		ev.data.fd = s;
		epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (i = 0; i < n; i++) {
			int c;

			struct sockaddr_storage peer;
			socklen_t len = sizeof(peer);

			while ((c = want_peer ?
				accept4(evs[i].data.fd, (struct sockaddr *)&peer, &len, 0) :
				accept4(evs[i].data.fd, NULL, NULL, 0)) >= 0) {
				if (want_peer) {
					len = sizeof(peer);
					getpeername(c, (struct sockaddr *)&peer, &len);
				}
				close(c);
				len = sizeof(peer);
			}
		}
	}
	return 0;
}

/* -------------------------------------------------------------- connect */

/*
 * A non-blocking socket connecting to sa, whose close() will be a reset
 * (SO_LINGER 0: no TIME_WAIT); -1 if the attempt failed at once.
 */
static int connect_nb(const struct sockaddr_in *sa)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) && errno != EINPROGRESS) {
		close(s);
		return -1;
	}
	return s;
}

static int start_connect(int ep, const struct sockaddr_in *sa)
{
	int s = connect_nb(sa);
	struct epoll_event ev = { .events = EPOLLOUT };

	if (s < 0)
		return -1;
	ev.data.fd = s;
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	return s;
}

static int connect_loop(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	double seconds, start, end;
	long done = 0, failed = 0;
	int conc, ep, i, inflight = 0;
	struct epoll_event evs[256];

	if (argc != 4)
		return 1;
	if (inet_pton(AF_INET, argv[0], &sa.sin_addr) != 1)
		return 1;
	sa.sin_port = htons(atoi(argv[1]));
	seconds = atof(argv[2]);
	conc = atoi(argv[3]);
	ep = epoll_create1(0);
	start = now();
	end = start + seconds;
	printf("timing\n");		/* a reader may time its own window from here */
	fflush(stdout);
	for (i = 0; i < conc; i++)
		inflight += start_connect(ep, &sa) >= 0;
	while (now() < end) {
		int n = epoll_wait(ep, evs, 256, 100);

		for (i = 0; i < n; i++) {
			int s = evs[i].data.fd, err = 0;
			socklen_t len = sizeof(err);

			getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err)
				failed++;
			else
				done++;
			close(s);	/* linger 0: a reset, no TIME_WAIT */
			inflight--;
			if (start_connect(ep, &sa) >= 0)
				inflight++;
		}
	}
	printf("%ld %ld %.6f\n", done, failed, now() - start);
	return 0;
}

/* A connection's address from the ADDR and PORT arguments; 0 if valid. */
static int parse_dest(struct sockaddr_in *sa, const char *addr, const char *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(port));
	return inet_pton(AF_INET, addr, &sa->sin_addr) == 1 ? 0 : -1;
}

/*
 * Send all of buf on a non-blocking socket.  The messages are small, so
 * the send buffer is seldom full; when it is, wait for room, but at most
 * SEND_WAITS times 100 ms in all: a peer that stopped reading is dropped,
 * not waited for.  0, or -1 if the connection is to be closed.
 */
#define SEND_WAITS 50

static int send_all(int fd, const unsigned char *buf, size_t len)
{
	int waits = 0;

	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };

		if (n > 0) {
			buf += n;
			len -= n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN && waits++ < SEND_WAITS) {
			if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* ----------------------------------------------------------------- echo */

/*
 * The PROXY protocol (proxy-protocol.txt in HAProxy's documentation).
 * Version 1 is one text line, "PROXY TCP4|TCP6|UNKNOWN ...\r\n", of at
 * most 107 bytes.  Version 2 is binary: the 12-byte signature below, a
 * version (high nibble, 2) and command (low nibble: 0 LOCAL, 1 PROXY)
 * byte, an address family (high nibble) and transport (low nibble) byte,
 * the length of the rest (16 bits, network order), then the rest: the
 * addresses, of a size fixed by the family, and optional TLVs.
 */
#define PP1_MAX		107
#define PP2_FIXED	16

static const unsigned char pp1_prefix[] = "PROXY ";
static const unsigned char pp2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

struct echo_conn {
	int fd;
	int listener;		/* a listening socket, not a connection */
	int in_header;		/* the PROXY header is not read to its end yet */
	unsigned int got;	/* header bytes kept in hdr */
	unsigned int skip;	/* v2: bytes after the fixed part still to drop */
	unsigned char hdr[PP1_MAX];
};

/* hdr holds a complete v1 line ("\r\n" included): 0 if it is a valid one */
static int pp1_check(const struct echo_conn *c)
{
	static const char * const protos[] = { "TCP4 ", "TCP6 ", "UNKNOWN" };
	const char *rest = (const char *)c->hdr + sizeof(pp1_prefix) - 1;
	size_t left = c->got - (sizeof(pp1_prefix) - 1);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(protos); i++)
		if (left >= strlen(protos[i]) && !memcmp(rest, protos[i], strlen(protos[i])))
			return 0;
	return -1;
}

/* hdr holds the v2 fixed part: 0 if valid, with skip the length of the rest */
static int pp2_check(struct echo_conn *c)
{
	/* the addresses' size per family: unspecified, IPv4, IPv6, unix */
	static const unsigned int addr_len[4] = { 0, 12, 36, 216 };
	unsigned int ver = c->hdr[12] >> 4, cmd = c->hdr[12] & 0xf;
	unsigned int fam = c->hdr[13] >> 4, proto = c->hdr[13] & 0xf;
	unsigned int len = c->hdr[14] << 8 | c->hdr[15];

	if (ver != 2 || cmd > 1 || fam > 3 || proto > 2 || len < addr_len[fam])
		return -1;
	c->skip = len;
	return 0;
}

/*
 * Take the header's bytes from the start of buf: how many were the
 * header's (in_header is cleared once it is complete), or -1 if these are
 * not the bytes of a PROXY header.
 */
static int pp_take(struct echo_conn *c, const unsigned char *buf, int len)
{
	int used = 0;

	while (used < len && c->in_header) {
		unsigned int i = c->got;

		if (c->skip) {
			unsigned int n = len - used;

			if (n > c->skip)
				n = c->skip;
			c->skip -= n;
			used += n;
			c->in_header = c->skip > 0;
			continue;
		}
		c->hdr[c->got++] = buf[used++];
		if (c->hdr[0] == pp2_sig[0]) {
			if (i < sizeof(pp2_sig) && c->hdr[i] != pp2_sig[i])
				return -1;
			if (c->got == PP2_FIXED) {
				if (pp2_check(c))
					return -1;
				c->in_header = c->skip > 0;
			}
		} else if (i < sizeof(pp1_prefix) - 1) {
			if (c->hdr[i] != pp1_prefix[i])
				return -1;
		} else if (c->hdr[i] == '\n') {
			if (c->hdr[i - 1] != '\r' || pp1_check(c))
				return -1;
			c->in_header = 0;
		} else if (c->got == PP1_MAX) {
			return -1;
		}
	}
	return used;
}

/* Read what a connection sent and echo it; -1 if it is to be closed. */
static int echo_read(struct echo_conn *c)
{
	unsigned char buf[16384];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
	int used = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	if (c->in_header) {
		used = pp_take(c, buf, n);
		if (used < 0)
			return -1;
	}
	return send_all(c->fd, buf + used, n - used);
}

static void echo_accept(int ep, const struct echo_conn *l, int proxy)
{
	int fd, one = 1;

	while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct echo_conn *c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN };

		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in_header = proxy;
		/* an answer in two parts must not wait for the first one's ACK */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
		}
	}
}

static int echo(int argc, char **argv)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	int ep = epoll_create1(0), proxy = 0, i, one = 1;

	if (argc && !strcmp(argv[0], "--proxy")) {
		proxy = 1;
		argc--;
		argv++;
	}
	if (!argc)
		return 1;
	if (ep < 0)
		die("epoll_create1");
	for (i = 0; i < argc; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons(atoi(argv[i])) };
		struct echo_conn *l = calloc(1, sizeof(*l));

		if (!l)
			die("calloc");
		l->listener = 1;
		l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (l->fd < 0)
			die("socket");
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(l->fd, 4096))
			die("bind/listen");
		ev.data.ptr = l;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev))
			die("epoll_ctl");
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (i = 0; i < n; i++) {
			struct echo_conn *c = evs[i].data.ptr;

			if (c->listener) {
				echo_accept(ep, c, proxy);
			} else if (echo_read(c)) {
				close(c->fd);	/* which takes it out of ep too */
				free(c);
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------- rr */

#define RR_MAX_SIZE	1024
#define RR_SETUP_S	10.0	/* the clock starts after this at the latest */

struct rr_conn {
	int fd;			/* -1: to be opened again */
	int up;			/* its handshake is done */
	uint32_t events;	/* what it waits for in epoll */
	unsigned int sent;	/* bytes of the current request sent */
	unsigned int got;	/* bytes of its answer received */
	unsigned int exchanges;	/* completed on this connection */
	int seen;		/* this slot has been established once */
};

struct rr_state {
	int ep, size, seen, dead;
	int per_conn;		/* exchanges per connection, 0: unlimited */
	long done, failed;
	int timing;		/* counting transactions */
	struct sockaddr_in sa;
	unsigned char req[RR_MAX_SIZE];
};

static void rr_want(struct rr_state *st, struct rr_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events != events && !epoll_ctl(st->ep, EPOLL_CTL_MOD, c->fd, &ev))
		c->events = events;
}

static void rr_open(struct rr_state *st, struct rr_conn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

	c->up = 0;
	c->exchanges = 0;
	c->fd = connect_nb(&st->sa);
	if (c->fd >= 0 && epoll_ctl(st->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->fd < 0) {
		st->failed++;
		st->dead++;
		return;
	}
	c->events = EPOLLOUT;
}

/* the connection failed or closed: count it and open another */
static void rr_fail(struct rr_state *st, struct rr_conn *c)
{
	st->failed++;
	close(c->fd);
	rr_open(st, c);
}

/* send (the rest of) the request; -1 on failure */
static int rr_send(struct rr_state *st, struct rr_conn *c)
{
	ssize_t n = send(c->fd, st->req + c->sent, st->size - c->sent, MSG_NOSIGNAL);

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -1;
	if (n > 0)
		c->sent += n;
	rr_want(st, c, c->sent < (unsigned int)st->size ? EPOLLIN | EPOLLOUT : EPOLLIN);
	return 0;
}

static int rr_event(struct rr_state *st, struct rr_conn *c, uint32_t events)
{
	unsigned char buf[4096];
	int err = 0, one = 1;
	socklen_t len = sizeof(err);
	ssize_t n;

	if (!c->up) {
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (events & (EPOLLERR | EPOLLHUP)))
			return -1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->up = 1;
		st->seen += !c->seen;
		c->seen = 1;
		c->sent = 0;
		c->got = 0;
		return rr_send(st, c);
	}
	if (events & EPOLLERR)
		return -1;
	if ((events & EPOLLOUT) && c->sent < (unsigned int)st->size && rr_send(st, c))
		return -1;
	if (!(events & (EPOLLIN | EPOLLHUP)))
		return 0;
	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	c->got += n;
	if (c->got < (unsigned int)st->size)
		return 0;
	st->done += st->timing;
	c->got -= st->size;
	c->sent = 0;
	if (st->per_conn && ++c->exchanges >= (unsigned int)st->per_conn) {
		close(c->fd);		/* linger 0: a reset */
		rr_open(st, c);
		return 0;
	}
	return rr_send(st, c);
}

static int rr_loop(int argc, char **argv)
{
	struct rr_state st = { 0 };
	struct epoll_event evs[256];
	struct rr_conn *conns;
	double seconds, start, end;
	int conc, i;

	if ((argc != 5 && argc != 6) || parse_dest(&st.sa, argv[0], argv[1]))
		return 1;
	st.per_conn = argc == 6 ? atoi(argv[5]) : 0;
	seconds = atof(argv[2]);
	conc = atoi(argv[3]);
	st.size = atoi(argv[4]);
	if (conc < 1 || st.size < 1 || st.size > RR_MAX_SIZE || st.per_conn < 0)
		return 1;
	memset(st.req, 'r', st.size);
	conns = calloc(conc, sizeof(*conns));
	st.ep = epoll_create1(0);
	if (!conns || st.ep < 0)
		die("calloc/epoll_create1");
	for (i = 0; i < conc; i++)
		rr_open(&st, &conns[i]);
	start = now();
	end = start + RR_SETUP_S;
	for (;;) {
		double t = now();
		int n;

		if (!st.timing && (st.seen == conc || t >= end)) {
			st.timing = 1;
			start = t;
			end = start + seconds;
			printf("timing\n");
			fflush(stdout);
		}
		if (st.timing && t >= end)
			break;
		for (i = 0; st.dead && i < conc; i++) {
			if (conns[i].fd < 0) {
				st.dead--;
				rr_open(&st, &conns[i]);
			}
		}
		n = epoll_wait(st.ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			struct rr_conn *c = evs[i].data.ptr;

			if (c->fd >= 0 && rr_event(&st, c, evs[i].events))
				rr_fail(&st, c);
		}
	}
	for (i = 0; i < conc; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);	/* linger 0: a reset */
	printf("%ld %ld %.6f\n", st.done, st.failed, now() - start);
	return 0;
}

/* ----------------------------------------------------------------- hold */

#define HOLD_INFLIGHT	256

static int hold(int argc, char **argv)
{
	struct epoll_event ev = { .events = EPOLLOUT }, evs[HOLD_INFLIGHT];
	long count, opened = 0, held = 0, failed = 0, i;
	struct sockaddr_in sa;
	int ep, inflight = 0, *fds;
	char line[64];

	if (argc != 3 || parse_dest(&sa, argv[0], argv[1]))
		return 1;
	count = atol(argv[2]);
	if (count < 0)
		return 1;
	fds = calloc(count + 1, sizeof(*fds));
	ep = epoll_create1(0);
	if (!fds || ep < 0)
		die("calloc/epoll_create1");
	while (held + failed < count) {
		int n;

		for (; inflight < HOLD_INFLIGHT && opened < count; opened++) {
			int s = connect_nb(&sa);

			ev.data.fd = s;
			if (s >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev)) {
				close(s);
				s = -1;
			}
			if (s < 0)
				failed++;
			else
				inflight++;
		}
		n = epoll_wait(ep, evs, HOLD_INFLIGHT, 1000);
		for (i = 0; i < n; i++) {
			int s = evs[i].data.fd, err = 0;
			socklen_t len = sizeof(err);

			getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
			epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
			inflight--;
			if (err) {
				failed++;
				close(s);
			} else {
				fds[held++] = s;
			}
		}
	}
	printf("%ld %ld\n", held, failed);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		clearerr(stdin);	/* the end of input: the same as a line */
	for (i = 0; i < held; i++)
		close(fds[i]);		/* linger 0: a reset */
	return 0;
}

/* ---------------------------------------------------------------- flood */

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (p[0] << 8) | p[1];
	if (len)
		sum += p[0] << 8;
	return sum;
}

struct frame {
	struct ether_header eth;
	struct iphdr ip;
	struct tcphdr tcp;
} __attribute__((packed));

#define BATCH 64

static int flood(int argc, char **argv)
{
	unsigned int mac[6], bits, seed = 1;
	struct frame tmpl, frames[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll ll = { .sll_family = AF_PACKET };
	uint32_t net, daddr, host_mask;
	double seconds, start, end;
	long sent = 0;
	int s, i, one = 1, ack;
	char *slash;

	if (argc != 7 && argc != 8)
		return 1;
	if (argc == 8)
		seed = strtoul(argv[7], NULL, 0);
	if (sscanf(argv[1], "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3],
		   &mac[4], &mac[5]) != 6)
		return 1;
	slash = strchr(argv[2], '/');
	if (!slash)
		return 1;
	*slash = 0;
	bits = atoi(slash + 1);
	if (inet_pton(AF_INET, argv[2], &net) != 1 || inet_pton(AF_INET, argv[3], &daddr) != 1)
		return 1;
	host_mask = bits >= 32 ? 0 : (0xffffffffu >> bits);
	ack = !strcmp(argv[5], "ack");
	seconds = atof(argv[6]);

	s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
	if (s < 0)
		die("socket(AF_PACKET)");
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	ll.sll_ifindex = if_nametoindex(argv[0]);
	ll.sll_protocol = htons(ETH_P_IP);
	if (!ll.sll_ifindex || bind(s, (struct sockaddr *)&ll, sizeof(ll)))
		die("bind(AF_PACKET)");

	memset(&tmpl, 0, sizeof(tmpl));
	for (i = 0; i < 6; i++)
		tmpl.eth.ether_dhost[i] = mac[i];
	tmpl.eth.ether_type = htons(ETH_P_IP);
	tmpl.ip.version = 4;
	tmpl.ip.ihl = 5;
	tmpl.ip.ttl = 64;
	tmpl.ip.protocol = IPPROTO_TCP;
	tmpl.ip.tot_len = htons(sizeof(struct iphdr) + sizeof(struct tcphdr));
	tmpl.ip.daddr = daddr;
	tmpl.tcp.dest = htons(atoi(argv[4]));
	tmpl.tcp.doff = 5;
	tmpl.tcp.window = htons(65535);
	if (ack)
		tmpl.tcp.ack = 1;
	else
		tmpl.tcp.syn = 1;

	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = &frames[i];
		iov[i].iov_len = sizeof(struct frame);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = now();
	end = start + seconds;
	while (now() < end) {
		int n;

		for (i = 0; i < BATCH; i++) {
			struct frame *f = &frames[i];
			uint32_t sum;

			*f = tmpl;
			seed = seed * 1103515245u + 12345u;
			f->ip.saddr = htonl(ntohl(net) | ((seed >> 4) & host_mask));
			if (!(f->ip.saddr & htonl(host_mask)))
				f->ip.saddr |= htonl(1);
			f->ip.id = htons(seed >> 16);
			f->tcp.source = htons(1024 + (seed >> 8) % 60000);
			f->tcp.seq = htonl(seed * 2654435761u);
			if (ack)
				f->tcp.ack_seq = htonl(seed ^ 0x5a5a5a5a);
			f->ip.check = htons(csum_fold(csum_add(0, &f->ip, sizeof(f->ip))));
			sum = csum_add(0, &f->ip.saddr, 8);
			sum += IPPROTO_TCP + sizeof(struct tcphdr);
			sum = csum_add(sum, &f->tcp, sizeof(struct tcphdr));
			f->tcp.check = htons(csum_fold(sum));
		}
		n = sendmmsg(s, msgs, BATCH, 0);
		if (n > 0)
			sent += n;
		else if (errno != ENOBUFS && errno != EAGAIN)
			die("sendmmsg");
	}
	printf("%ld %.6f\n", sent, now() - start);
	return 0;
}

/* Let a mode hold as many sockets as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	raise_nofile();
	if (argc >= 3 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2, 0);
	if (argc >= 3 && !strcmp(argv[1], "serve-peer"))
		return serve(argc - 2, argv + 2, 1);
	if (argc >= 2 && !strcmp(argv[1], "connect"))
		return connect_loop(argc - 2, argv + 2);
	if (argc >= 3 && !strcmp(argv[1], "echo"))
		return echo(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "rr"))
		return rr_loop(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "hold"))
		return hold(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "flood"))
		return flood(argc - 2, argv + 2);
	fprintf(stderr, "usage: %s serve|serve-peer PORT... | connect ADDR PORT SECONDS CONC | "
		"echo [--proxy] PORT... | rr ADDR PORT SECONDS CONC SIZE [PER_CONN] | "
		"hold ADDR PORT COUNT | "
		"flood IFACE DST_MAC SRC_NET/BITS DST PORT syn|ack SECONDS [SEED]\n",
		argv[0]);
	return 1;
}
