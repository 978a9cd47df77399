// SPDX-License-Identifier: GPL-2.0
/*
 * TCP of FULLNAT connections: sequence numbers, options, TOA, RST.
 *
 * The balancer picks its own initial sequence number towards the real
 * server (as the kernel picks them, from the secret keyed hash of the
 * 4-tuple), so a real server that recycles TIME_WAIT sockets sees rising
 * numbers whatever clients behind one NAT send.  Client sequence numbers
 * are shifted by a constant delta on the way in and acknowledgments and
 * SACK blocks shifted back on the way out.
 *
 * TOA (abi.md) carries the client's address to the real server.  It goes
 * right after the fixed TCP header of the segment that completes the
 * handshake and of the first data segments (those acknowledging the RS's
 * ISN + 1), so it is there whichever of them creates the RS's socket.  To
 * make room without copying payload, the IP and fixed TCP headers are
 * moved towards the headroom.  The RS's SYN/ACK announces an MSS lowered
 * by the TOA length, so full-sized segments still fit the path.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/ip6_checksum.h>
#include <net/ip6_route.h>
#include <net/route.h>
#include <net/tcp.h>
#include <net/secure_seq.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

#define IP_VS_TCP_MAX_HLEN	60	/* doff is 4 bits of 32-bit words */

/* The one walker of TCP options (FULLNAT and SYNPROXY): @fn sees each
 * (pointer to its kind, its length) and stops the walk by returning true.
 * Malformed options end the walk.
 */
void ip_vs_tcp_options(struct tcphdr *th,
		       bool (*fn)(u8 *opt, u8 len, void *arg), void *arg)
{
	u8 *p = (u8 *)(th + 1), *end = (u8 *)th + th->doff * 4;

	while (p < end) {
		u8 len;

		if (*p == TCPOPT_EOL)
			return;
		if (*p == TCPOPT_NOP) {
			p++;
			continue;
		}
		if (end - p < 2)
			return;
		len = p[1];
		if (len < 2 || len > end - p)
			return;
		if (fn(p, len, arg))
			return;
		p += len;
	}
}

/* The option @kind of length @len in @th, or NULL. */
struct ip_vs_tcp_opt_arg {
	u8	kind;
	u8	len;
	u8	*found;
};

static bool ip_vs_tcp_opt_match(u8 *opt, u8 len, void *arg)
{
	struct ip_vs_tcp_opt_arg *a = arg;

	if (opt[0] != a->kind)
		return false;
	if (len == a->len)
		a->found = opt;
	return true;
}

static u8 *ip_vs_tcp_find_opt(struct tcphdr *th, u8 kind, u8 len)
{
	struct ip_vs_tcp_opt_arg a = { .kind = kind, .len = len };

	ip_vs_tcp_options(th, ip_vs_tcp_opt_match, &a);
	return a.found;
}

/* SACK blocks in one sequence space: shift them into the other. */
struct ip_vs_tcp_sack_arg {
	struct sk_buff	*skb;
	struct tcphdr	*th;
	u32		delta;
	bool		full;
};

static bool ip_vs_tcp_sack_shift(u8 *opt, u8 len, void *arg)
{
	struct ip_vs_tcp_sack_arg *a = arg;
	u8 *edge;

	if (opt[0] != TCPOPT_SACK || (len - 2) % 8)
		return false;
	for (edge = opt + 2; edge < opt + len; edge += 4) {
		__be32 old = get_unaligned((__be32 *)edge);
		__be32 new = htonl(ntohl(old) - a->delta);

		put_unaligned(new, (__be32 *)edge);
		if (!a->full)
			inet_proto_csum_replace4(&a->th->check, a->skb, old, new,
						 false);
	}
	return true;
}

/**
 * ip_vs_tcp_sack_sub - subtract @delta from the SACK block edges of @th
 * @skb: the packet
 * @th: its TCP header, writable up to the end of the options
 * @delta: the shift between the two sequence spaces
 * @full: the whole checksum is recomputed later (no incremental update)
 */
void ip_vs_tcp_sack_sub(struct sk_buff *skb, struct tcphdr *th, u32 delta,
			bool full)
{
	struct ip_vs_tcp_sack_arg a = { .skb = skb, .th = th, .delta = delta,
					.full = full };

	ip_vs_tcp_options(th, ip_vs_tcp_sack_shift, &a);
}

static u32 ip_vs_fnat_isn(const struct ip_vs_conn *cp)
{
	if (cp->af == AF_INET6)
		return secure_tcpv6_seq(cp->laddr.ip6, cp->daddr.ip6,
					cp->lport, cp->dport);
	return secure_tcp_seq(cp->laddr.ip, cp->daddr.ip, cp->lport,
			      cp->dport);
}

/**
 * ip_vs_fnat_csum_full - may the whole TCP checksum be computed anew?
 * @skb: the segment, about to change in a way only a full computation of
 *	 its checksum follows (options rewritten, TOA inserted)
 * @cp: its connection
 * @thoff: TCP header offset from skb->data
 * @csum: csum->full is set when the answer is yes
 *
 * A new checksum computed over a corrupted segment would make it valid:
 * the segment's own checksum is checked first, unless the device or the
 * stack has done so (or it is a local one still to be computed).  The
 * incremental updates made to it so far keep a wrong checksum wrong, so
 * the check still holds after them.  A segment that fails is counted
 * (fullnat_csum_error); the caller drops it.
 */
static bool ip_vs_fnat_csum_full(struct sk_buff *skb, struct ip_vs_conn *cp,
				 unsigned int thoff,
				 struct ip_vs_fnat_csum *csum)
{
	unsigned int len = skb->len - thoff;
	__sum16 bad;

	if (csum->full || skb->ip_summed == CHECKSUM_PARTIAL ||
	    skb_csum_unnecessary(skb))
		goto full;
	if (cp->af == AF_INET6)
		bad = csum_ipv6_magic(&ipv6_hdr(skb)->saddr,
				      &ipv6_hdr(skb)->daddr, len, IPPROTO_TCP,
				      skb_checksum(skb, thoff, len, 0));
	else
		bad = csum_tcpudp_magic(ip_hdr(skb)->saddr, ip_hdr(skb)->daddr,
					len, IPPROTO_TCP,
					skb_checksum(skb, thoff, len, 0));
	if (bad) {
		IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_FNAT_CSUM_ERROR);
		return false;
	}
full:
	csum->full = true;
	return true;
}

/* -------------------------------------------------------------- TOA */

static void ip_vs_toa_fill(u8 *opt, const struct ip_vs_conn *cp)
{
	opt[0] = IP_VS_TOA_KIND;
	opt[1] = ip_vs_toa_len(cp->af);
	memcpy(opt + 2, &cp->cport, sizeof(cp->cport));
	if (cp->af == AF_INET6)
		memcpy(opt + 4, &cp->caddr.in6, sizeof(cp->caddr.in6));
	else
		memcpy(opt + 4, &cp->caddr.ip, sizeof(cp->caddr.ip));
}

/* Is there room for TOA in the header, and in the path? */
static int ip_vs_toa_room(struct sk_buff *skb, const struct tcphdr *th,
			  unsigned int len, unsigned int mtu)
{
	if (th->doff * 4 + len > IP_VS_TCP_MAX_HLEN)
		return IP_VS_EXT_FNAT_ADD_TOA_HEAD_FULL;
	if (skb_is_gso(skb) ? !skb_gso_validate_network_len(skb, mtu - len) :
			      skb->len + len > mtu)
		return IP_VS_EXT_FNAT_ADD_TOA_FAIL_LEN;
	if (skb_headroom(skb) < len || skb_cloned(skb))
		return IP_VS_EXT_FNAT_ADD_TOA_FAIL_MEM;
	return -1;
}

/* Insert TOA after the fixed TCP header; the checksum is redone later. */
static void ip_vs_toa_insert(struct sk_buff *skb, struct ip_vs_conn *cp,
			     unsigned int thoff, unsigned int len)
{
	struct tcphdr *th;
	u8 *head;

	head = skb_push(skb, len);
	memmove(head, head + len, thoff + sizeof(struct tcphdr));
	skb_reset_network_header(skb);
	skb_set_transport_header(skb, thoff);
	if (skb->ip_summed == CHECKSUM_PARTIAL)
		skb->csum_start -= len;
	th = (struct tcphdr *)(skb->data + thoff);
	ip_vs_toa_fill((u8 *)(th + 1), cp);
	th->doff += len / 4;
	if (cp->af == AF_INET6)
		ipv6_hdr(skb)->payload_len =
			htons(ntohs(ipv6_hdr(skb)->payload_len) + len);
	else
		ip_hdr(skb)->tot_len = htons(ntohs(ip_hdr(skb)->tot_len) + len);
}

/* TOA for the segment, when it fits; -1 when the segment must go. */
static int ip_vs_fnat_add_toa(struct sk_buff *skb, struct ip_vs_conn *cp,
			      unsigned int thoff, unsigned int mtu,
			      struct ip_vs_fnat_csum *csum)
{
	struct tcphdr *th = (struct tcphdr *)(skb->data + thoff);
	unsigned int len = ip_vs_toa_len(cp->af);
	int fail = ip_vs_toa_room(skb, th, len, mtu);

	if (fail >= 0) {
		IP_VS_EXT_INC(cp->ipvs, fail);
		return 0;
	}
	if (!ip_vs_fnat_csum_full(skb, cp, thoff, csum))
		return -1;
	ip_vs_toa_insert(skb, cp, thoff, len);
	IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_FNAT_ADD_TOA_OK);
	return 0;
}

/* -------------------------------------------------------- directions */

/*
 * May a client SYN that is not the one we forwarded start the sequence
 * state afresh?  While the session is ESTABLISHED, never (a SYN leaves
 * IPVS's state there): anybody who knows the client's address and port,
 * or a late duplicate, would break a working session.  In the other
 * states (IPVS moved a session that was opening or closing to SYN_RECV on
 * this SYN) yes while the handshake with the real server is not done
 * (the client starting over), and after it only for a SYN numbered after
 * everything the client sent before: a new connection reusing the tuple
 * of a closed one, as a TIME_WAIT socket accepts it.
 */
static bool ip_vs_fnat_syn_restarts(const struct ip_vs_conn *cp, u32 flags,
				    u32 seq)
{
	if (cp->state == IP_VS_TCP_S_ESTABLISHED)
		return false;
	return !(flags & IP_VS_FNAT_SEQ_RS_ISN) ||
	       after(seq, READ_ONCE(cp->fnat.c_nxt));
}

static int ip_vs_fnat_client_syn(struct sk_buff *skb, struct ip_vs_conn *cp,
				 struct tcphdr *th, unsigned int thoff,
				 struct ip_vs_fnat_csum *csum)
{
	const u32 sent = IP_VS_FNAT_SEQ_INIT | IP_VS_FNAT_SEQ_C_NXT;
	struct ip_vs_fnat_seq *fs = &cp->fnat;
	u32 flags, ahead, seq = ntohl(th->seq);
	u8 *ts;

	/* The SYN we sent again (the client's retransmission, or SYNPROXY's
	 * retry) keeps our ISN: the RS may be waiting with a SYN/ACK for it.
	 * It is the SYN whose end is at most 64K behind what the client sent
	 * (a fast-open SYN's data is not sent again with it).  Another SYN
	 * starts the state afresh only as ip_vs_fnat_syn_restarts() allows.
	 */
	/* acquire: c_nxt is set before its flag */
	flags = smp_load_acquire(&fs->flags);
	ahead = READ_ONCE(fs->c_nxt) - (seq + 1);
	if ((flags & sent) != sent ||
	    (ahead > 0xffff && ip_vs_fnat_syn_restarts(cp, flags, seq))) {
		fs->delta = ip_vs_fnat_isn(cp) - seq;
		ip_vs_fnat_seq_flags(fs, IP_VS_FNAT_SEQ_INIT,
				     ~(IP_VS_SP_MASK | IP_VS_FNAT_LPORT_OWNED));
	}
	if (!READ_ONCE(cp->ipvs->ext->fnat_timestamp_remove))
		return 0;
	ts = ip_vs_tcp_find_opt(th, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP);
	if (!ts)
		return 0;
	if (!ip_vs_fnat_csum_full(skb, cp, thoff, csum))
		return -1;
	memset(ts, TCPOPT_NOP, TCPOLEN_TIMESTAMP);
	IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_FNAT_TS_REMOVED);
	return 0;
}

/**
 * ip_vs_fnat_tcp_in - client -> RS: sequence numbers, timestamps, TOA
 * @skb: the packet
 * @cp: its FULLNAT connection
 * @thoff: TCP header offset from skb->data
 * @mtu: MTU of the route to the RS
 * @csum: set csum->full when the checksum must be recomputed
 *
 * May move the network and TCP headers (TOA); @thoff stays valid.
 * Returns 0, or -1 when the segment must be dropped (its checksum was
 * wrong where a new one would have been computed).
 */
int ip_vs_fnat_tcp_in(struct sk_buff *skb, struct ip_vs_conn *cp,
		      unsigned int thoff, unsigned int mtu,
		      struct ip_vs_fnat_csum *csum)
{
	struct tcphdr *th = (struct tcphdr *)(skb->data + thoff);
	struct ip_vs_fnat_seq *fs = &cp->fnat;
	__be32 old;
	u32 end;

	if (th->syn && !th->ack &&
	    ip_vs_fnat_client_syn(skb, cp, th, thoff, csum) < 0)
		return -1;
	if (!(fs->flags & IP_VS_FNAT_SEQ_INIT))
		return 0;	/* joined without a SYN (sloppy_tcp): no shift */

	end = ip_vs_tcp_end_seq(skb, th, thoff);
	ip_vs_fnat_seq_advance(fs, &fs->c_nxt, IP_VS_FNAT_SEQ_C_NXT, end);
	old = th->seq;
	th->seq = htonl(ntohl(old) + fs->delta);
	if (!csum->full)
		inet_proto_csum_replace4(&th->check, skb, old, th->seq, false);

	if (th->ack && !th->syn && !th->rst &&
	    (fs->flags & IP_VS_FNAT_SEQ_RS_ISN) &&
	    ntohl(th->ack_seq) == fs->rs_isn + 1 &&
	    READ_ONCE(cp->ipvs->ext->fnat_toa))
		return ip_vs_fnat_add_toa(skb, cp, thoff, mtu, csum);
	return 0;
}

/* The RS's SYN/ACK announces an MSS lowered by the TOA length. */
static int ip_vs_fnat_lower_mss(struct sk_buff *skb, struct ip_vs_conn *cp,
				struct tcphdr *th, unsigned int thoff,
				struct ip_vs_fnat_csum *csum)
{
	u16 mss, by = ip_vs_toa_len(cp->af);
	u8 *opt;

	if (!READ_ONCE(cp->ipvs->ext->fnat_mss_adjust))
		return 0;
	opt = ip_vs_tcp_find_opt(th, TCPOPT_MSS, TCPOLEN_MSS);
	if (!opt)
		return 0;
	mss = get_unaligned_be16(opt + 2);
	if (mss <= by + 536)
		return 0;
	if (!ip_vs_fnat_csum_full(skb, cp, thoff, csum))
		return -1;
	put_unaligned_be16(mss - by, opt + 2);
	IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_FNAT_MSS_ADJUSTED);
	return 0;
}

/**
 * ip_vs_fnat_tcp_out - RS -> client: acknowledgments, SACK, MSS
 * @skb: the packet
 * @cp: its FULLNAT connection
 * @thoff: TCP header offset from skb->data
 * @csum: set csum->full when the checksum must be recomputed
 *
 * Returns 0, or -1 when the segment must be dropped (bad checksum).
 */
int ip_vs_fnat_tcp_out(struct sk_buff *skb, struct ip_vs_conn *cp,
		       unsigned int thoff, struct ip_vs_fnat_csum *csum)
{
	struct tcphdr *th = (struct tcphdr *)(skb->data + thoff);
	struct ip_vs_fnat_seq *fs = &cp->fnat;
	__be32 old;
	u32 end;

	if (th->syn && th->ack) {
		if (ip_vs_fnat_lower_mss(skb, cp, th, thoff, csum) < 0)
			return -1;
		fs->rs_isn = ntohl(th->seq);
		ip_vs_fnat_seq_flags(fs, IP_VS_FNAT_SEQ_RS_ISN, 0);
	}
	end = ip_vs_tcp_end_seq(skb, th, thoff);
	ip_vs_fnat_seq_advance(fs, &fs->r_nxt, IP_VS_FNAT_SEQ_R_NXT, end);
	if (!(fs->flags & IP_VS_FNAT_SEQ_INIT))
		return 0;
	if (th->ack) {
		old = th->ack_seq;
		th->ack_seq = htonl(ntohl(old) - fs->delta);
		if (!csum->full)
			inet_proto_csum_replace4(&th->check, skb, old,
						 th->ack_seq, false);
	}
	ip_vs_tcp_sack_sub(skb, th, fs->delta, csum->full);
	return 0;
}

/* ------------------------------------------------------------- RST */

/* A RST from @saddr:@sport to @daddr:@dport, routed and sent.  The source
 * need not be ours: towards a NAT real server it is the client's address.
 */
static void ip_vs_fnat_send_rst(struct net *net, int af,
				const union nf_inet_addr *saddr, __be16 sport,
				const union nf_inet_addr *daddr, __be16 dport,
				u32 seq, u32 ack)
{
	unsigned int nhlen = af == AF_INET6 ? sizeof(struct ipv6hdr) :
					      sizeof(struct iphdr);
	struct sk_buff *skb;
	struct tcphdr *th;

	skb = alloc_skb(MAX_HEADER + nhlen + sizeof(*th), GFP_ATOMIC);
	if (!skb)
		return;
	skb_reserve(skb, MAX_HEADER + nhlen);
	th = skb_push(skb, sizeof(*th));
	skb_reset_transport_header(skb);
	memset(th, 0, sizeof(*th));
	th->source = sport;
	th->dest = dport;
	th->seq = htonl(seq);
	th->ack_seq = htonl(ack);
	th->doff = sizeof(*th) / 4;
	th->rst = 1;
	th->ack = 1;
	skb->ipvs_property = 1;
	ip_vs_notrack(skb);
	if (af == AF_INET6) {
		struct flowi6 fl6 = { .daddr = daddr->in6, .saddr = saddr->in6,
				      .flowi6_proto = IPPROTO_TCP };
		struct dst_entry *dst = ip6_route_output(net, NULL, &fl6);
		struct ipv6hdr *ip6;

		if (dst->error) {
			dst_release(dst);
			goto free;
		}
		th->check = csum_ipv6_magic(&saddr->in6, &daddr->in6,
					    sizeof(*th), IPPROTO_TCP,
					    csum_partial(th, sizeof(*th), 0));
		ip6 = skb_push(skb, sizeof(*ip6));
		skb_reset_network_header(skb);
		ip6_flow_hdr(ip6, 0, 0);
		ip6->payload_len = htons(sizeof(*th));
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = ip6_dst_hoplimit(dst);
		ip6->saddr = saddr->in6;
		ip6->daddr = daddr->in6;
		skb->protocol = htons(ETH_P_IPV6);
		skb_dst_set(skb, dst);
		ip6_local_out(net, NULL, skb);
	} else {
		struct flowi4 fl4 = { .daddr = daddr->ip, .saddr = saddr->ip,
				      .flowi4_proto = IPPROTO_TCP,
				      .flowi4_flags = FLOWI_FLAG_ANYSRC };
		struct rtable *rt = ip_route_output_key(net, &fl4);
		struct iphdr *ip4;

		if (IS_ERR(rt))
			goto free;
		th->check = csum_tcpudp_magic(saddr->ip, daddr->ip, sizeof(*th),
					      IPPROTO_TCP,
					      csum_partial(th, sizeof(*th), 0));
		ip4 = skb_push(skb, sizeof(*ip4));
		skb_reset_network_header(skb);
		memset(ip4, 0, sizeof(*ip4));
		ip4->version = 4;
		ip4->ihl = sizeof(*ip4) / 4;
		ip4->tot_len = htons(sizeof(*ip4) + sizeof(*th));
		ip4->frag_off = htons(IP_DF);
		ip4->ttl = ip4_dst_hoplimit(&rt->dst);
		ip4->protocol = IPPROTO_TCP;
		ip4->saddr = saddr->ip;
		ip4->daddr = daddr->ip;
		skb->protocol = htons(ETH_P_IP);
		skb_dst_set(skb, &rt->dst);
		ip_local_out(net, NULL, skb);	/* sets the IP checksum */
	}
	return;

free:
	kfree_skb(skb);
}

/**
 * ip_vs_fnat_tcp_expire - conn_expire_tcp_rst: reset both ends
 * @cp: an unlinked FULLNAT TCP connection
 *
 * An established session that times out is reset towards the client and
 * the real server, each with the exact sequence number it expects next,
 * so neither keeps a dead connection open.  Not while the namespace or
 * the module goes away.
 */
/*
 * Should the expiry of the established session @cp reset both ends?  Only
 * where both ends' next sequence numbers are known, conn_expire_tcp_rst is
 * on, and the balancer is not a backup only: a backup's copy of a session
 * that the master (or, after a fail-back, the new master) serves must end
 * silently.
 */
static bool ip_vs_expire_rst_wanted(const struct ip_vs_conn *cp)
{
	const u32 both = IP_VS_FNAT_SEQ_INIT | IP_VS_FNAT_SEQ_C_NXT |
			 IP_VS_FNAT_SEQ_R_NXT;
	struct netns_ipvs *ipvs = cp->ipvs;

	return cp->state == IP_VS_TCP_S_ESTABLISHED &&
	       (READ_ONCE(cp->fnat.flags) & both) == both &&
	       READ_ONCE(ipvs->enable) &&
	       READ_ONCE(ipvs->ext->conn_expire_tcp_rst) &&
	       (READ_ONCE(ipvs->sync_state) &
		(IP_VS_STATE_MASTER | IP_VS_STATE_BACKUP)) != IP_VS_STATE_BACKUP;
}

void ip_vs_fnat_tcp_expire(struct ip_vs_conn *cp)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	const struct ip_vs_fnat_seq *fs = &cp->fnat;

	if (!ip_vs_expire_rst_wanted(cp))
		return;
	ip_vs_fnat_send_rst(ipvs->net, cp->af, &cp->laddr, cp->lport,
			    &cp->daddr, cp->dport, fs->c_nxt + fs->delta,
			    fs->r_nxt);
	/* SYNPROXY sessions number the RS's data differently */
	ip_vs_fnat_send_rst(ipvs->net, cp->af, &cp->vaddr, cp->vport,
			    &cp->caddr, cp->cport,
			    fs->r_nxt + (fs->flags & IP_VS_SP_EST ?
					 fs->sp_delta : 0), fs->c_nxt);
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_FNAT_EXPIRE_RST);
}

/* --------------------------------------------------------- NAT sessions */

/*
 * conn_expire_tcp_rst for NAT: a NAT session does not translate sequence
 * numbers, so it only remembers the next one of each end, in the room
 * FULLNAT uses for its own (struct ip_vs_fnat_seq with a zero delta).
 * That room is shared with the sequence state of application helpers: a
 * session with a helper, or whose sequence numbers a helper has shifted
 * (IP_VS_CONN_F_SEQ_MASK, also carried by the sync daemon), is left alone.
 */
static bool ip_vs_nat_tcp_tracked(const struct ip_vs_conn *cp)
{
	return cp->protocol == IPPROTO_TCP && !cp->app &&
	       IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_MASQ &&
	       !(cp->flags & IP_VS_CONN_F_SEQ_MASK);
}

/**
 * ip_vs_nat_tcp_track - remember the next sequence number of one end
 * @cp: the connection
 * @skb: a packet of it, already translated
 * @thoff: offset of the TCP header from the network header
 * @to_rs: client -> RS (true) or RS -> client
 */
void ip_vs_nat_tcp_track(struct ip_vs_conn *cp, struct sk_buff *skb,
			 unsigned int thoff, bool to_rs)
{
	struct ip_vs_fnat_seq *fs = &cp->fnat;
	bool sp = cp->flags & IP_VS_CONN_F_SYNPROXY;
	const struct tcphdr *th;
	u32 end, *nxt, bit;

	if (!ip_vs_nat_tcp_tracked(cp) ||
	    !READ_ONCE(cp->ipvs->ext->conn_expire_tcp_rst))
		return;
	/* SYNPROXY keeps the RS's next number itself, in the RS's numbers
	 * (ip_vs_sp_fix_out()); here its reply is already in the client's
	 */
	if (sp && !to_rs)
		return;
	/* the NAT handler made the fixed header writable, hence linear */
	th = (const struct tcphdr *)(skb_network_header(skb) + thoff);
	end = ip_vs_tcp_end_seq(skb, th, skb_network_offset(skb) + thoff);
	nxt = to_rs ? &fs->c_nxt : &fs->r_nxt;
	bit = to_rs ? IP_VS_FNAT_SEQ_C_NXT : IP_VS_FNAT_SEQ_R_NXT;
	if (!(fs->flags & IP_VS_FNAT_SEQ_INIT)) {
		fs->delta = 0;
		/* SYNPROXY's state shares the flags */
		ip_vs_fnat_seq_flags(fs, IP_VS_FNAT_SEQ_INIT,
				     sp ? ~(IP_VS_SP_MASK |
					    IP_VS_FNAT_SEQ_R_NXT) : ~0U);
	}
	ip_vs_fnat_seq_advance(fs, nxt, bit, end);
}

/**
 * ip_vs_nat_tcp_expire - conn_expire_tcp_rst for an expiring NAT session
 * @cp: an unlinked NAT TCP connection
 *
 * As for FULLNAT: an ESTABLISHED session that times out is reset towards
 * both ends; the real server's RST comes from the client's address, as
 * every packet of the session did.
 */
void ip_vs_nat_tcp_expire(struct ip_vs_conn *cp)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	const struct ip_vs_fnat_seq *fs = &cp->fnat;

	if (!ip_vs_nat_tcp_tracked(cp) || !ip_vs_expire_rst_wanted(cp))
		return;
	ip_vs_fnat_send_rst(ipvs->net, cp->af, &cp->caddr, cp->cport,
			    &cp->daddr, cp->dport, fs->c_nxt, fs->r_nxt);
	/* SYNPROXY sessions number the RS's data differently */
	ip_vs_fnat_send_rst(ipvs->net, cp->af, &cp->vaddr, cp->vport,
			    &cp->caddr, cp->cport,
			    fs->r_nxt + (fs->flags & IP_VS_SP_EST ?
					 fs->sp_delta : 0), fs->c_nxt);
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_FNAT_EXPIRE_RST);
}
