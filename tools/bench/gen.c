// SPDX-License-Identifier: GPL-2.0
/*
 * lvs-bench-gen: the benchmark's traffic programs that must run at C speed
 * (tools/bench/).  One binary, four modes:
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
 *       no TIME_WAIT).  Prints "completed failed elapsed_s".
 *
 *   gen flood IFACE DST_MAC SRC_NET/BITS DST_ADDR DST_PORT syn|ack SECONDS [SEED]
 *       raw TCP SYN or ACK frames on an AF_PACKET socket (sendmmsg batches,
 *       qdisc bypassed), source address and port, sequence and (ACK)
 *       acknowledgment numbers varying per packet, drawn from a generator
 *       started at SEED (default 1: runs with other seeds send other
 *       packets).  Prints "sent elapsed_s".
 *
 * The same program drives both sides of every comparison, so whatever it
 * costs is the same for the baseline and the measured feature.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

static int start_connect(int ep, const struct sockaddr_in *sa)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct epoll_event ev = { .events = EPOLLOUT };

	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) && errno != EINPROGRESS) {
		close(s);
		return -1;
	}
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

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2, 0);
	if (argc >= 3 && !strcmp(argv[1], "serve-peer"))
		return serve(argc - 2, argv + 2, 1);
	if (argc >= 2 && !strcmp(argv[1], "connect"))
		return connect_loop(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "flood"))
		return flood(argc - 2, argv + 2);
	fprintf(stderr, "usage: %s serve|serve-peer PORT... | connect ADDR PORT SECONDS CONC | "
		"flood IFACE DST_MAC SRC_NET/BITS DST PORT syn|ack SECONDS [SEED]\n",
		argv[0]);
	return 1;
}
