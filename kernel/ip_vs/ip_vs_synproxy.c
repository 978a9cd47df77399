// SPDX-License-Identifier: GPL-2.0
/*
 * IPVS SYNPROXY and flood defence.
 *
 * A service with IP_VS_SVC_F_SYNPROXY answers a client's SYN itself.  The
 * SYN/ACK's sequence number is a keyed cookie, so nothing is kept for it:
 *
 *   cookie = H0 + client ISN + (T << 24) + ((H(T) + data) mod 2^24)
 *
 * H0 and H(T) are SipHash values of the client's 4-tuple under a secret
 * key of this module (H0 with a counter value outside 0..255), T the time
 * in seconds modulo 256, and data 9 bits (placed at bit 12 of the low
 * part): an index into a table of MSS values, the client's window scale
 * (15: none), SACK and timestamps.  An ACK proves the cookie when ack - 1
 * decodes to T no older than synproxy_cookie_max_age seconds and to a low
 * part whose 12 low bits and 3 high bits are 0 (a random guess passes
 * with a chance of 2^-15, a segment of a finished session whose numbers
 * moved by fewer than 4096 bytes never).
 *
 * Only then is a connection scheduled.  It sends the real server a SYN
 * with the client's ISN and options (MSS, window scale, SACK, timestamp),
 * holds the client's ACK and up to synproxy_ack_skb_store_thresh further
 * segments, consumes the RS's SYN/ACK and releases what it held (the
 * cookie ACK completes the RS's handshake).  From then on the RS's
 * sequence numbers are shifted by sp_delta (our ISN to the client - RS's
 * ISN) towards the client, and the client's acknowledgments and SACK
 * blocks back.  The handshake period's state (held segments, the SYN for
 * retries) lives in a small object in a side table, freed when the
 * handshake ends; a connection itself grows by four bytes (sp_delta).
 *
 * A silent RS gets the SYN again every second, synproxy_syn_retry times;
 * then the client gets a RST and the connection goes.  An RS's RST during
 * the handshake is passed on to the client the same way.
 *
 * The SYN/ACK's timestamp value is 0, which clients accept as "no
 * reference" (RFC 7323 PAWS), so the RS's own clock needs no translation.
 *
 * Defence (no session is ever created by these packets): TCP to a VIP that
 * is neither a SYN nor a valid cookie ACK nor part of a session is dropped
 * (defence_tcp_drop), UDP to an address that only has TCP services
 * (defence_udp_drop), and reassembled fragments to a service
 * (defence_frag_drop).
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/skbuff.h>
#include <linux/siphash.h>
#include <linux/hash.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/timekeeping.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/ip6_route.h>
#include <net/ip6_checksum.h>
#include <net/route.h>
#include <net/tcp.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

#define IP_VS_SP_TAB_BITS	10
#define IP_VS_SP_LOCKS		64
#define IP_VS_SP_NO_WS		15
#define IP_VS_SP_DATA_BITS	9
#define IP_VS_SP_DATA_SHIFT	12
#define IP_VS_SP_OLD_WIN	(1U << 20)
#define IP_VS_SP_LOW_MASK	0x00ffffff
#define IP_VS_SP_H0_COUNT	0x100
#define IP_VS_SP_RETRY_IVAL	HZ

/* MSS values a cookie can carry (3 bits); the largest not above the
 * client's is chosen.
 */
static const u16 ip_vs_sp_mss_tab[] = {
	536, 1220, 1280, 1360, 1400, 1440, 1460, 8960,
};

static siphash_key_t ip_vs_sp_key __read_mostly;

/* The handshake period of one connection. */
struct ip_vs_sp_hs {
	struct hlist_node	node;
	struct ip_vs_conn	*cp;
	spinlock_t		lock;		/* all below */
	struct sk_buff		*syn;		/* to the RS, for retries */
	struct sk_buff_head	held;		/* client's ACK and data */
	u32			isn;		/* our ISN towards the client */
	u32			c_isn;		/* the client's ISN */
	u8			retries;
	u8			ws;		/* scale told the client */
	u8			c_ws;		/* client's scale, or NO_WS */
	bool			done;
	struct rcu_head		rcu;
};

static struct hlist_head ip_vs_sp_tab[1 << IP_VS_SP_TAB_BITS];
static spinlock_t ip_vs_sp_locks[IP_VS_SP_LOCKS];
/* handshake objects alive, checked at unload */
static atomic_t ip_vs_sp_hs_alive = ATOMIC_INIT(0);

/* TCP options that matter here, client's or RS's */
struct ip_vs_sp_opts {
	u16	mss;
	u8	ws;		/* IP_VS_SP_NO_WS when absent */
	bool	sack;
	bool	ts;
	u32	tsval;
};

/* ----------------------------------------------------------- helpers */

static unsigned int ip_vs_sp_bucket(const struct ip_vs_conn *cp)
{
	return hash_ptr(cp, IP_VS_SP_TAB_BITS);
}

static struct ip_vs_sp_hs *ip_vs_sp_hs_find(const struct ip_vs_conn *cp)
{
	struct ip_vs_sp_hs *hs;

	hlist_for_each_entry_rcu(hs, &ip_vs_sp_tab[ip_vs_sp_bucket(cp)], node)
		if (hs->cp == cp)
			return hs;
	return NULL;
}

static void ip_vs_sp_hs_unlink(struct ip_vs_sp_hs *hs)
{
	spinlock_t *lock = &ip_vs_sp_locks[ip_vs_sp_bucket(hs->cp) %
					   IP_VS_SP_LOCKS];

	spin_lock_bh(lock);
	hlist_del_rcu(&hs->node);
	spin_unlock_bh(lock);
}

static void ip_vs_sp_hs_link(struct ip_vs_sp_hs *hs)
{
	unsigned int b = ip_vs_sp_bucket(hs->cp);
	spinlock_t *lock = &ip_vs_sp_locks[b % IP_VS_SP_LOCKS];

	spin_lock_bh(lock);
	hlist_add_head_rcu(&hs->node, &ip_vs_sp_tab[b]);
	spin_unlock_bh(lock);
}

/* Unlink and free; held segments are dropped. */
static void ip_vs_sp_hs_free(struct ip_vs_sp_hs *hs)
{
	ip_vs_sp_hs_unlink(hs);
	__skb_queue_purge(&hs->held);
	kfree_skb(hs->syn);
	hs->syn = NULL;
	kfree_rcu(hs, rcu);
	atomic_dec(&ip_vs_sp_hs_alive);
}

static int ip_vs_sp_af(const struct sk_buff *skb)
{
	return skb->protocol == htons(ETH_P_IPV6) ? AF_INET6 : AF_INET;
}

static u32 ip_vs_sp_flags(const struct ip_vs_conn *cp)
{
	return READ_ONCE(cp->fnat.flags);
}

static void ip_vs_sp_set_flags(struct ip_vs_conn *cp, u32 set, u32 clear)
{
	ip_vs_fnat_seq_flags(&cp->fnat, set, clear);
}

/* The TCP header and options of @skb at @thoff, copied into @buf. */
static struct tcphdr *ip_vs_sp_th(struct sk_buff *skb, unsigned int thoff,
				  u8 *buf)
{
	struct tcphdr *th = skb_header_pointer(skb, thoff, sizeof(*th), buf);

	if (!th || th->doff < 5)
		return NULL;
	return skb_header_pointer(skb, thoff, th->doff * 4, buf);
}

static bool ip_vs_sp_opt(u8 *p, u8 len, void *arg)
{
	struct ip_vs_sp_opts *o = arg;

	if (p[0] == TCPOPT_MSS && len == TCPOLEN_MSS) {
		o->mss = get_unaligned_be16(p + 2);
	} else if (p[0] == TCPOPT_WINDOW && len == TCPOLEN_WINDOW) {
		o->ws = min_t(u8, p[2], 14);
	} else if (p[0] == TCPOPT_SACK_PERM && len == TCPOLEN_SACK_PERM) {
		o->sack = true;
	} else if (p[0] == TCPOPT_TIMESTAMP && len == TCPOLEN_TIMESTAMP) {
		o->ts = true;
		o->tsval = get_unaligned_be32(p + 2);
	}
	return false;
}

static void ip_vs_sp_parse(const struct tcphdr *th, struct ip_vs_sp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ws = IP_VS_SP_NO_WS;
	/* the walker's callback may write; ip_vs_sp_opt only reads */
	ip_vs_tcp_options((struct tcphdr *)th, ip_vs_sp_opt, o);
}

/* Options of a SYN or SYN/ACK; returns their length (multiple of 4). */
static unsigned int ip_vs_sp_write_opts(u8 *p, u16 mss, u8 ws, bool sack,
					bool ts, u32 tsval, u32 tsecr)
{
	u8 *start = p;

	*p++ = TCPOPT_MSS;
	*p++ = TCPOLEN_MSS;
	put_unaligned_be16(mss, p);
	p += 2;
	if (ts) {
		*p++ = sack ? TCPOPT_SACK_PERM : TCPOPT_NOP;
		*p++ = sack ? TCPOLEN_SACK_PERM : TCPOPT_NOP;
		*p++ = TCPOPT_TIMESTAMP;
		*p++ = TCPOLEN_TIMESTAMP;
		put_unaligned_be32(tsval, p);
		put_unaligned_be32(tsecr, p + 4);
		p += 8;
	}
	if (ws != IP_VS_SP_NO_WS) {
		*p++ = TCPOPT_NOP;
		*p++ = TCPOPT_WINDOW;
		*p++ = TCPOLEN_WINDOW;
		*p++ = ws;
	}
	if (sack && !ts) {
		*p++ = TCPOPT_NOP;
		*p++ = TCPOPT_NOP;
		*p++ = TCPOPT_SACK_PERM;
		*p++ = TCPOLEN_SACK_PERM;
	}
	return p - start;
}

/* ----------------------------------------------------------- cookies */

struct ip_vs_sp_flow {
	union nf_inet_addr	saddr;
	union nf_inet_addr	daddr;
	__be16			sport;
	__be16			dport;
	u32			count;
} __aligned(SIPHASH_ALIGNMENT);

static u32 ip_vs_sp_hash(int af, const struct ip_vs_sp_flow *f, u32 count)
{
	struct ip_vs_sp_flow k;

	if (af != AF_INET6)
		return (u32)siphash_4u32((__force u32)f->saddr.ip,
					 (__force u32)f->daddr.ip,
					 ((__force u32)f->sport << 16) |
					 (__force u32)f->dport, count,
					 &ip_vs_sp_key);
	k = *f;
	k.count = count;
	return (u32)siphash(&k, sizeof(k), &ip_vs_sp_key);
}

static void ip_vs_sp_flow_of(struct ip_vs_sp_flow *f,
			     const struct ip_vs_iphdr *iph,
			     const struct tcphdr *th)
{
	memset(f, 0, sizeof(*f));
	f->saddr = iph->saddr;
	f->daddr = iph->daddr;
	f->sport = th->source;
	f->dport = th->dest;
}

static u32 ip_vs_sp_now(void)
{
	return (u32)ktime_get_seconds() & 0xff;
}

static u32 ip_vs_sp_cookie(int af, const struct ip_vs_sp_flow *f, u32 c_isn,
			   u32 data)
{
	u32 t = ip_vs_sp_now();

	return ip_vs_sp_hash(af, f, IP_VS_SP_H0_COUNT) + c_isn + (t << 24) +
	       ((ip_vs_sp_hash(af, f, t) + (data << IP_VS_SP_DATA_SHIFT)) &
		IP_VS_SP_LOW_MASK);
}

/* 0 and the data bits, -EINVAL for a wrong cookie, -ETIME for an old one */
static int ip_vs_sp_cookie_check(int af, const struct ip_vs_sp_flow *f,
				 u32 c_isn, u32 cookie, u32 max_age, u32 *data)
{
	u32 x = cookie - ip_vs_sp_hash(af, f, IP_VS_SP_H0_COUNT) - c_isn;
	u32 t = x >> 24;
	u32 d;

	d = ((x & IP_VS_SP_LOW_MASK) - ip_vs_sp_hash(af, f, t)) &
		IP_VS_SP_LOW_MASK;

	/* the low bits must be 0: a number shifted by a few bytes of data
	 * (a segment of an older session) does not pass
	 */
	if (d & (BIT(IP_VS_SP_DATA_SHIFT) - 1) ||
	    d >> (IP_VS_SP_DATA_SHIFT + IP_VS_SP_DATA_BITS))
		return -EINVAL;
	*data = d >> IP_VS_SP_DATA_SHIFT;
	if (((ip_vs_sp_now() - t) & 0xff) > max_age)
		return -ETIME;
	return 0;
}

static u32 ip_vs_sp_encode(unsigned int mss_idx, u8 ws, bool sack, bool ts)
{
	return mss_idx | (ws << 3) | ((u32)sack << 7) | ((u32)ts << 8);
}

static void ip_vs_sp_decode(u32 data, struct ip_vs_sp_opts *o)
{
	o->mss = ip_vs_sp_mss_tab[data & 7];
	o->ws = (data >> 3) & 0xf;
	o->sack = data & BIT(7);
	o->ts = data & BIT(8);
}

/* ---------------------------------------------------- building packets */

/* A TCP segment from @saddr:@sport to @daddr:@dport, headers only, with
 * checksums; no route.  @flags is the TCP flag byte.
 */
static struct sk_buff *ip_vs_sp_build(int af, const union nf_inet_addr *saddr,
				      __be16 sport,
				      const union nf_inet_addr *daddr,
				      __be16 dport, u32 seq, u32 ack, u8 flags,
				      u16 window, const u8 *opts,
				      unsigned int optlen, u8 ttl)
{
	unsigned int tcplen = sizeof(struct tcphdr) + optlen;
	struct sk_buff *skb;
	struct tcphdr *th;

	skb = alloc_skb(MAX_TCP_HEADER + tcplen, GFP_ATOMIC);
	if (!skb)
		return NULL;
	skb_reserve(skb, MAX_TCP_HEADER);
	th = skb_push(skb, tcplen);
	skb_reset_transport_header(skb);
	memset(th, 0, sizeof(*th));
	th->source = sport;
	th->dest = dport;
	th->seq = htonl(seq);
	th->ack_seq = htonl(ack);
	th->doff = tcplen / 4;
	tcp_flag_byte(th) = flags;
	th->window = htons(window);
	if (optlen)
		memcpy(th + 1, opts, optlen);
	skb->ip_summed = CHECKSUM_NONE;
	if (af == AF_INET6) {
		struct ipv6hdr *ip6;

		th->check = csum_ipv6_magic(&saddr->in6, &daddr->in6, tcplen,
					    IPPROTO_TCP,
					    csum_partial(th, tcplen, 0));
		ip6 = skb_push(skb, sizeof(*ip6));
		skb_reset_network_header(skb);
		ip6_flow_hdr(ip6, 0, 0);
		ip6->payload_len = htons(tcplen);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = ttl;
		ip6->saddr = saddr->in6;
		ip6->daddr = daddr->in6;
		skb->protocol = htons(ETH_P_IPV6);
	} else {
		struct iphdr *ip4;

		th->check = csum_tcpudp_magic(saddr->ip, daddr->ip, tcplen,
					      IPPROTO_TCP,
					      csum_partial(th, tcplen, 0));
		ip4 = skb_push(skb, sizeof(*ip4));
		skb_reset_network_header(skb);
		memset(ip4, 0, sizeof(*ip4));
		ip4->version = 4;
		ip4->ihl = sizeof(*ip4) / 4;
		ip4->tot_len = htons(sizeof(*ip4) + tcplen);
		ip4->frag_off = htons(IP_DF);
		ip4->ttl = ttl;
		ip4->protocol = IPPROTO_TCP;
		ip4->saddr = saddr->ip;
		ip4->daddr = daddr->ip;
		ip_send_check(ip4);
		skb->protocol = htons(ETH_P_IP);
	}
	return skb;
}

/* Route @skb (built above) by its addresses and send it. */
static void ip_vs_sp_send_local(struct net *net, struct sk_buff *skb, u32 mark)
{
	skb->ipvs_property = 1;
	skb->mark = mark;
	ip_vs_notrack(skb);
	if (skb->protocol == htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = ipv6_hdr(skb);
		struct flowi6 fl6 = { .daddr = ip6->daddr, .saddr = ip6->saddr,
				      .flowi6_proto = IPPROTO_TCP,
				      .flowi6_mark = mark };
		struct dst_entry *dst = ip6_route_output(net, NULL, &fl6);

		if (dst->error) {
			dst_release(dst);
			goto drop;
		}
		skb_dst_set(skb, dst);
		ip6_local_out(net, NULL, skb);
	} else {
		struct iphdr *ip4 = ip_hdr(skb);
		struct flowi4 fl4 = { .daddr = ip4->daddr, .saddr = ip4->saddr,
				      .flowi4_proto = IPPROTO_TCP,
				      .flowi4_mark = mark };
		struct rtable *rt = ip_route_output_key(net, &fl4);

		if (IS_ERR(rt))
			goto drop;
		skb_dst_set(skb, &rt->dst);
		ip_local_out(net, NULL, skb);
	}
	return;
drop:
	kfree_skb(skb);
}

/* RST to the client of @cp: it expects @seq, we acknowledge @ack. */
static void ip_vs_sp_rst_client(struct ip_vs_conn *cp, u32 seq, u32 ack)
{
	struct sk_buff *skb;

	skb = ip_vs_sp_build(cp->af, &cp->vaddr, cp->vport, &cp->caddr,
			     cp->cport, seq, ack, TCPHDR_RST | TCPHDR_ACK, 0,
			     NULL, 0, 64);
	if (skb)
		ip_vs_sp_send_local(cp->ipvs->net, skb, 0);
}

/* Hand @skb, a client -> VIP packet of @cp, to the connection's transmitter.
 * Always consumes it.
 */
static void ip_vs_sp_xmit(struct ip_vs_conn *cp, struct sk_buff *skb)
{
	struct ip_vs_protocol *pp = ip_vs_proto_get(IPPROTO_TCP);
	struct ip_vs_iphdr iph;
	int ret = NF_DROP;

	ip_vs_fill_iph_skb(cp->af, skb, false, &iph);
	if (pp && cp->packet_xmit)
		ret = cp->packet_xmit(skb, cp, pp, &iph);
	if (ret != NF_STOLEN)
		kfree_skb(skb);
}

/* ------------------------------------------------------ SYN: the cookie */

static int ip_vs_sp_syn(struct netns_ipvs *ipvs, struct sk_buff *skb,
			struct ip_vs_iphdr *iph, const struct tcphdr *th)
{
	struct ip_vs_ext_net *ext = ipvs->ext;
	struct ip_vs_sp_opts o;
	struct ip_vs_sp_flow f;
	unsigned int i, optlen;
	u8 opts[24], ws = IP_VS_SP_NO_WS;
	int our_ws = READ_ONCE(ext->sp_wscale);
	u16 mss = READ_ONCE(ext->sp_init_mss);
	struct sk_buff *out;
	bool sack, ts;
	u32 isn;

	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_SYN_CNT);
	ip_vs_sp_parse(th, &o);
	sack = o.sack && READ_ONCE(ext->sp_sack);
	ts = o.ts && READ_ONCE(ext->sp_timestamp);
	if (o.ws != IP_VS_SP_NO_WS && our_ws > 0)
		ws = o.ws;
	for (i = ARRAY_SIZE(ip_vs_sp_mss_tab) - 1; i > 0; i--)
		if (o.mss >= ip_vs_sp_mss_tab[i])
			break;
	ip_vs_sp_flow_of(&f, iph, th);
	isn = ip_vs_sp_cookie(ip_vs_sp_af(skb), &f, ntohl(th->seq),
			      ip_vs_sp_encode(i, ws, sack, ts));
	if (ip_vs_sp_af(skb) == AF_INET6)
		mss -= sizeof(struct ipv6hdr) - sizeof(struct iphdr);
	optlen = ip_vs_sp_write_opts(opts, mss,
				     ws == IP_VS_SP_NO_WS ? ws : our_ws,
				     sack, ts, 0, o.tsval);
	out = ip_vs_sp_build(ip_vs_sp_af(skb), &iph->daddr, th->dest, &iph->saddr,
			     th->source, isn, ntohl(th->seq) + 1,
			     TCPHDR_SYN | TCPHDR_ACK, 65535, opts, optlen,
			     READ_ONCE(ext->sp_synack_ttl));
	if (out)
		ip_vs_sp_send_local(ipvs->net, out, skb->mark);
	consume_skb(skb);
	return NF_STOLEN;
}

/* ---------------------------------------------- ACK: a new connection */

/* The SYN to the RS: the client's ISN and, from the cookie, its options;
 * routed like the ACK it is made from.
 */
static struct sk_buff *ip_vs_sp_make_syn(struct sk_buff *ack,
					 struct ip_vs_iphdr *iph,
					 const struct tcphdr *th,
					 const struct ip_vs_sp_opts *co,
					 const struct ip_vs_sp_opts *ao)
{
	u32 win = ntohs(th->window);
	struct sk_buff *syn;
	unsigned int optlen;
	u8 opts[24], ttl;

	if (co->ws != IP_VS_SP_NO_WS)
		win = min_t(u32, win << co->ws, 65535);
	optlen = ip_vs_sp_write_opts(opts, co->mss, co->ws, co->sack,
				     co->ts && ao->ts, ao->tsval, 0);
	ttl = ip_vs_sp_af(ack) == AF_INET6 ? ipv6_hdr(ack)->hop_limit :
				    ip_hdr(ack)->ttl;
	syn = ip_vs_sp_build(ip_vs_sp_af(ack), &iph->saddr, th->source, &iph->daddr,
			     th->dest, ntohl(th->seq) - 1, 0, TCPHDR_SYN, win,
			     opts, optlen, ttl);
	if (!syn)
		return NULL;
	syn->mark = ack->mark;
	skb_dst_copy(syn, ack);
	return syn;
}

/* Start the RS's handshake of @cp from the client's cookie ACK @skb. */
static int ip_vs_sp_start(struct ip_vs_conn *cp, struct sk_buff *skb,
			  struct ip_vs_iphdr *iph, const struct tcphdr *th,
			  const struct ip_vs_sp_opts *co)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_sp_opts ao;
	struct ip_vs_sp_hs *hs;
	struct sk_buff *syn;

	/* NAT applications (ip_vs_ftp) use the storage we need */
	if (cp->app || !skb_dst_force(skb))
		goto fail;
	hs = kzalloc(sizeof(*hs), GFP_ATOMIC);
	if (!hs)
		goto fail;
	ip_vs_sp_parse(th, &ao);
	hs->syn = ip_vs_sp_make_syn(skb, iph, th, co, &ao);
	if (!hs->syn) {
		kfree(hs);
		goto fail;
	}
	atomic_inc(&ip_vs_sp_hs_alive);
	hs->cp = cp;
	spin_lock_init(&hs->lock);
	skb_queue_head_init(&hs->held);
	hs->isn = ntohl(th->ack_seq) - 1;
	hs->c_isn = ntohl(th->seq) - 1;
	hs->c_ws = co->ws;
	hs->ws = READ_ONCE(ipvs->ext->sp_wscale);
	/* a new connection: ip_vs_conn_new() zeroed cp->fnat */
	ip_vs_sp_set_flags(cp, IP_VS_SP_HS, IP_VS_SP_EST | IP_VS_SP_DEAD);
	__skb_queue_tail(&hs->held, skb);
	ip_vs_sp_hs_link(hs);
	cp->flags |= IP_VS_CONN_F_SYNPROXY;

	syn = skb_copy(hs->syn, GFP_ATOMIC);
	if (syn) {
		ip_vs_conn_account(cp, IP_VS_DIR_INPUT, syn,
				   skb_transport_offset(syn));
		ip_vs_sp_xmit(cp, syn);
	}
	cp->timeout = IP_VS_SP_RETRY_IVAL;
	return NF_STOLEN;

fail:
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_HS_FAIL);
	cp->timeout = 0;
	return NF_DROP;
}

static unsigned int ip_vs_sp_payload(const struct sk_buff *skb,
				     unsigned int thoff,
				     const struct tcphdr *th)
{
	return skb->len - thoff - th->doff * 4;
}

/* A client ACK to @svc without a session: does it prove a cookie? */
static int ip_vs_sp_ack(struct ip_vs_service *svc, struct sk_buff *skb,
			struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
			const struct tcphdr *th)
{
	struct netns_ipvs *ipvs = svc->ipvs;
	struct ip_vs_ext_net *ext = ipvs->ext;
	struct ip_vs_sp_opts co;
	struct ip_vs_sp_flow f;
	struct ip_vs_conn *cp;
	int ignored, ret;
	u32 data;

	ip_vs_sp_flow_of(&f, iph, th);
	ret = ip_vs_sp_cookie_check(ip_vs_sp_af(skb), &f, ntohl(th->seq) - 1,
				    ntohl(th->ack_seq) - 1,
				    READ_ONCE(ext->sp_cookie_max_age), &data);
	if (ret) {
		if (ret == -ETIME)
			IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_STALE_ACK);
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_BAD_ACK);
		return NF_DROP;
	}
	if (READ_ONCE(ext->sp_defer) && !th->fin &&
	    !ip_vs_sp_payload(skb, iph->len, th)) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_NULL_ACK);
		return NF_DROP;
	}
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_OK_ACK);
	ip_vs_sp_decode(data, &co);
	cp = ip_vs_schedule(svc, skb, pd, &ignored, iph);
	if (!cp) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_NO_DEST);
		return NF_DROP;
	}
	ret = ip_vs_sp_start(cp, skb, iph, th, &co);
	ip_vs_conn_put(cp);
	return ret;
}

/* ---------------------------------------- packets of a SYNPROXY session */

static bool ip_vs_sp_reuse_state(struct ip_vs_conn *cp,
				 enum ip_vs_ext_stat *item)
{
	struct ip_vs_ext_net *ext = cp->ipvs->ext;

	if (!READ_ONCE(ext->sp_conn_reuse))
		return false;
	switch (cp->state) {
	case IP_VS_TCP_S_CLOSE:
		*item = IP_VS_EXT_SP_CONN_REUSED_CLOSE;
		return READ_ONCE(ext->sp_reuse_close);
	case IP_VS_TCP_S_TIME_WAIT:
		*item = IP_VS_EXT_SP_CONN_REUSED_TIMEWAIT;
		return READ_ONCE(ext->sp_reuse_time_wait);
	case IP_VS_TCP_S_FIN_WAIT:
		*item = IP_VS_EXT_SP_CONN_REUSED_FINWAIT;
		return READ_ONCE(ext->sp_reuse_fin_wait);
	case IP_VS_TCP_S_CLOSE_WAIT:
		*item = IP_VS_EXT_SP_CONN_REUSED_CLOSEWAIT;
		return READ_ONCE(ext->sp_reuse_close_wait);
	case IP_VS_TCP_S_LAST_ACK:
		*item = IP_VS_EXT_SP_CONN_REUSED_LASTACK;
		return READ_ONCE(ext->sp_reuse_last_ack);
	}
	return false;
}

/* End a pending handshake without the RS (under RCU); true if it was ours
 * to end.
 */
static bool ip_vs_sp_abort(struct ip_vs_conn *cp)
{
	struct ip_vs_sp_hs *hs = ip_vs_sp_hs_find(cp);
	bool mine;

	if (!hs)
		return false;
	spin_lock_bh(&hs->lock);
	mine = !hs->done;
	hs->done = true;
	if (mine)
		ip_vs_sp_set_flags(cp, IP_VS_SP_DEAD, IP_VS_SP_HS);
	spin_unlock_bh(&hs->lock);
	if (mine)
		ip_vs_sp_hs_free(hs);
	return mine;
}

/* Hold a client segment while the RS's handshake is pending.  Returns
 * IP_VS_EXT_PASS when the handshake ended meanwhile.
 */
static int ip_vs_sp_hold(struct ip_vs_conn *cp, struct sk_buff *skb,
			 struct ip_vs_iphdr *iph, const struct tcphdr *th)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_sp_hs *hs = ip_vs_sp_hs_find(cp);
	unsigned int limit;
	int ret = NF_DROP;

	if (!hs)
		return IP_VS_EXT_PASS;
	if (th->rst) {
		/* the client gives up: so do we */
		if (ip_vs_sp_abort(cp))
			ip_vs_conn_expire_now(cp);
		return NF_DROP;
	}
	if (th->syn)
		return NF_DROP;
	if (!th->fin && !ip_vs_sp_payload(skb, iph->len, th)) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_NULL_ACK);
		return NF_DROP;
	}
	limit = 1 + READ_ONCE(ipvs->ext->sp_ack_store_thresh);
	spin_lock_bh(&hs->lock);
	if (hs->done) {
		ret = IP_VS_EXT_PASS;
	} else if (skb_queue_len(&hs->held) >= limit) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_SYNSEND_QLEN);
	} else if (skb_dst_force(skb)) {
		__skb_queue_tail(&hs->held, skb);
		ret = NF_STOLEN;
	}
	spin_unlock_bh(&hs->lock);
	return ret;
}

/* Client -> RS of an established SYNPROXY session: acknowledgment and SACK
 * into the RS's numbers, and the ack-storm check.
 */
static int ip_vs_sp_fix_in(struct ip_vs_conn *cp, struct sk_buff *skb,
			   unsigned int thoff)
{
	struct tcphdr *th;
	__be32 old;
	u32 ack, flags = ip_vs_sp_flags(cp), storm;

	if (skb_ensure_writable(skb, thoff + sizeof(*th)))
		return NF_DROP;
	th = (struct tcphdr *)(skb_network_header(skb) + thoff);
	if (th->doff < 5 || skb_ensure_writable(skb, thoff + th->doff * 4))
		return NF_DROP;
	th = (struct tcphdr *)(skb_network_header(skb) + thoff);
	if (!th->ack)
		return IP_VS_EXT_PASS;
	old = th->ack_seq;
	ack = ntohl(old) - cp->fnat.sp_delta;
	storm = flags >> IP_VS_SP_STORM_SHIFT;
	if (!th->syn && !th->fin && !th->rst && (flags & IP_VS_FNAT_SEQ_R_NXT) &&
	    skb->len == thoff + th->doff * 4 && after(ack, cp->fnat.r_nxt)) {
		/* acknowledges what the RS never sent */
		if (storm < 0xff)
			storm++;
		ip_vs_sp_set_flags(cp, storm << IP_VS_SP_STORM_SHIFT,
				   0xffU << IP_VS_SP_STORM_SHIFT);
		if (storm > READ_ONCE(cp->ipvs->ext->sp_ack_storm_thresh)) {
			IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_SP_ACKSTORM);
			return NF_DROP;
		}
	} else if (storm) {
		ip_vs_sp_set_flags(cp, 0, 0xffU << IP_VS_SP_STORM_SHIFT);
	}
	th->ack_seq = htonl(ack);
	inet_proto_csum_replace4(&th->check, skb, old, th->ack_seq, false);
	/* the client's SACK blocks name RS data: into the RS's numbers */
	ip_vs_tcp_sack_sub(skb, th, cp->fnat.sp_delta, false);
	return IP_VS_EXT_PASS;
}

/* Does @th acknowledge data of the (finished) session @cp?  Then it is a
 * straggler of that session, not a new cookie.
 */
static bool ip_vs_sp_old_ack(const struct ip_vs_conn *cp,
			     const struct tcphdr *th)
{
	u32 flags = ip_vs_sp_flags(cp), ack;

	if (!(flags & IP_VS_SP_EST) || !(flags & IP_VS_FNAT_SEQ_R_NXT))
		return false;
	ack = ntohl(th->ack_seq) - cp->fnat.sp_delta;
	return !after(ack, cp->fnat.r_nxt) &&
	       after(ack, cp->fnat.r_nxt - IP_VS_SP_OLD_WIN);
}

static int ip_vs_sp_conn_in(struct ip_vs_conn *cp, struct sk_buff *skb,
			    struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
			    const struct tcphdr *th)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	enum ip_vs_ext_stat item;
	u32 flags = ip_vs_sp_flags(cp);

	if (flags & IP_VS_SP_DEAD)
		return NF_DROP;
	if (flags & IP_VS_SP_HS) {
		int ret = ip_vs_sp_hold(cp, skb, iph, th);

		if (ret != IP_VS_EXT_PASS)
			return ret;
		flags = ip_vs_sp_flags(cp);
	}
	if (th->syn && !th->ack) {
		/* a new connection over a closing one: a fresh cookie */
		if (!th->rst && ip_vs_sp_reuse_state(cp, &item))
			return ip_vs_sp_syn(ipvs, skb, iph, th);
		return NF_DROP;
	}
	if (th->ack && !th->syn && !th->rst &&
	    ip_vs_sp_reuse_state(cp, &item) && !ip_vs_sp_old_ack(cp, th)) {
		struct ip_vs_sp_flow f;
		u32 data;

		ip_vs_sp_flow_of(&f, iph, th);
		if (!ip_vs_sp_cookie_check(ip_vs_sp_af(skb), &f, ntohl(th->seq) - 1,
					   ntohl(th->ack_seq) - 1,
					   READ_ONCE(ipvs->ext->sp_cookie_max_age),
					   &data)) {
			struct ip_vs_service *svc;

			svc = ip_vs_service_find(ipvs, ip_vs_sp_af(skb), skb->mark,
						 IPPROTO_TCP, &iph->daddr,
						 th->dest);
			if (svc && (svc->flags & IP_VS_SVC_F_SYNPROXY)) {
				IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_CONN_REUSED);
				IP_VS_EXT_INC(ipvs, item);
				ip_vs_conn_expire_now(cp);
				return ip_vs_sp_ack(svc, skb, iph, pd, th);
			}
		}
	}
	if (!(flags & IP_VS_SP_EST))
		return IP_VS_EXT_PASS;
	return ip_vs_sp_fix_in(cp, skb, iph->len);
}

static bool ip_vs_sp_reassembled(const struct sk_buff *skb, int af)
{
	if (af == AF_INET6)
		return IP6CB(skb)->frag_max_size ||
		       (IP6CB(skb)->flags & IP6SKB_FRAGMENTED);
	return IPCB(skb)->frag_max_size ||
	       (IPCB(skb)->flags & IPSKB_FRAG_COMPLETE);
}

static int ip_vs_sp_udp_in(struct netns_ipvs *ipvs, struct sk_buff *skb,
			   struct ip_vs_iphdr *iph)
{
	__be16 _ports[2], *ports;

	if (!READ_ONCE(ipvs->ext->defence_udp_drop))
		return IP_VS_EXT_PASS;
	ports = skb_header_pointer(skb, iph->len, sizeof(_ports), _ports);
	if (!ports ||
	    ip_vs_service_find(ipvs, ip_vs_sp_af(skb), skb->mark, IPPROTO_UDP,
			       &iph->daddr, ports[1]) ||
	    !ip_vs_addr_has_service(ipvs, ip_vs_sp_af(skb), IPPROTO_TCP, &iph->daddr))
		return IP_VS_EXT_PASS;
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_DEF_UDP_DROP);
	return NF_DROP;
}

/**
 * ip_vs_synproxy_in - client packets: SYNPROXY and flood defence
 * @ipvs: the namespace
 * @skb: a packet in LOCAL_IN, skb->data at its network header
 * @iph: its parsed header
 * @pd: its protocol
 * @cp: its connection, or NULL
 *
 * Returns IP_VS_EXT_PASS to let IPVS go on, or the verdict of a packet
 * taken over (NF_STOLEN) or to be dropped; @cp stays the caller's.
 */
int ip_vs_synproxy_in(struct netns_ipvs *ipvs, struct sk_buff *skb,
		      struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
		      struct ip_vs_conn *cp)
{
	struct ip_vs_ext_net *ext = ipvs->ext;
	struct ip_vs_service *svc;
	u8 buf[60];
	struct tcphdr *th;

	if (unlikely(ip_vs_sp_reassembled(skb, ip_vs_sp_af(skb))) &&
	    READ_ONCE(ext->defence_frag_drop)) {
		__be16 _ports[2], *ports;

		ports = skb_header_pointer(skb, iph->len, sizeof(_ports),
					   _ports);
		if (cp || (ports && ip_vs_service_find(ipvs, ip_vs_sp_af(skb),
						       skb->mark, iph->protocol,
						       &iph->daddr, ports[1]))) {
			IP_VS_EXT_INC(ipvs, IP_VS_EXT_DEF_FRAG_DROP);
			return NF_DROP;
		}
	}
	if (cp && likely(!(cp->flags & IP_VS_CONN_F_SYNPROXY)))
		return IP_VS_EXT_PASS;
	if (iph->fragoffs)
		return IP_VS_EXT_PASS;
	if (iph->protocol == IPPROTO_UDP)
		return cp ? IP_VS_EXT_PASS : ip_vs_sp_udp_in(ipvs, skb, iph);
	if (iph->protocol != IPPROTO_TCP)
		return IP_VS_EXT_PASS;
	th = ip_vs_sp_th(skb, iph->len, buf);
	if (!th)
		return IP_VS_EXT_PASS;
	if (cp)
		return ip_vs_sp_conn_in(cp, skb, iph, pd, th);

	svc = ip_vs_service_find(ipvs, ip_vs_sp_af(skb), skb->mark, IPPROTO_TCP,
				 &iph->daddr, th->dest);
	if (!svc)
		return IP_VS_EXT_PASS;
	if (svc->flags & IP_VS_SVC_F_SYNPROXY) {
		if (th->syn && !th->ack && !th->rst && !th->fin)
			return ip_vs_sp_syn(ipvs, skb, iph, th);
		if (th->ack && !th->syn && !th->rst)
			return ip_vs_sp_ack(svc, skb, iph, pd, th);
	} else if (th->syn || sysctl_sloppy_tcp(ipvs)) {
		return IP_VS_EXT_PASS;
	}
	if (!READ_ONCE(ext->defence_tcp_drop))
		return IP_VS_EXT_PASS;
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_DEF_TCP_DROP);
	return NF_DROP;
}

/* ------------------------------------------------------ RS -> client */

/* The RS answered our SYN (under hs->lock): the session's numbers; what
 * the client sent moves to @held.
 */
static void ip_vs_sp_established(struct ip_vs_conn *cp, struct sk_buff *skb,
				 const struct tcphdr *th,
				 struct ip_vs_sp_hs *hs,
				 struct sk_buff_head *held)
{
	struct ip_vs_sp_opts ro;
	u32 rs_isn = ntohl(th->seq), set = IP_VS_SP_EST;

	ip_vs_sp_parse(th, &ro);
	skb_queue_splice_init(&hs->held, held);
	cp->fnat.sp_delta = hs->isn - rs_isn;
	if (hs->c_ws != IP_VS_SP_NO_WS) {
		u8 rs_ws = ro.ws == IP_VS_SP_NO_WS ? 0 : ro.ws;

		set |= (u32)hs->ws << IP_VS_SP_WS_SHIFT |
		       (u32)rs_ws << IP_VS_SP_RSWS_SHIFT;
		if (rs_ws != hs->ws)
			set |= IP_VS_SP_WIN;
	}
	if (!ip_vs_conn_fnat(cp)) {
		cp->fnat.r_nxt = rs_isn + 1;
		set |= IP_VS_FNAT_SEQ_R_NXT;
	}
	ip_vs_sp_set_flags(cp, set, IP_VS_SP_HS);
}

/* Send the client's held segments to the RS, in order. */
static void ip_vs_sp_release(struct ip_vs_conn *cp, struct sk_buff_head *held)
{
	struct sk_buff *one;

	while ((one = __skb_dequeue(held))) {
		struct ip_vs_iphdr iph;

		ip_vs_fill_iph_skb(cp->af, one, false, &iph);
		if (ip_vs_sp_fix_in(cp, one, iph.len) != IP_VS_EXT_PASS) {
			kfree_skb(one);
			continue;
		}
		ip_vs_conn_account(cp, IP_VS_DIR_INPUT, one, iph.len);
		ip_vs_sp_xmit(cp, one);
	}
}

/* An RS packet while the handshake is pending; always consumed. */
static void ip_vs_sp_rs_handshake(struct ip_vs_conn *cp, struct sk_buff *skb,
				  unsigned int thoff, const struct tcphdr *th)
{
	struct ip_vs_sp_hs *hs = ip_vs_sp_hs_find(cp);
	struct sk_buff_head held;
	bool rst = th->rst;
	u32 seq = 0, ack = 0;

	if (!hs)
		return;
	if (!rst && !(th->syn && th->ack))
		return;
	__skb_queue_head_init(&held);
	spin_lock_bh(&hs->lock);
	if (hs->done || (!rst && ntohl(th->ack_seq) != hs->c_isn + 1)) {
		spin_unlock_bh(&hs->lock);
		return;
	}
	hs->done = true;
	if (rst) {
		seq = hs->isn + 1;
		ack = hs->c_isn + 1;
		ip_vs_sp_set_flags(cp, IP_VS_SP_DEAD, IP_VS_SP_HS);
	} else {
		ip_vs_sp_established(cp, skb, th, hs, &held);
	}
	spin_unlock_bh(&hs->lock);
	ip_vs_sp_hs_free(hs);
	if (rst) {
		IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_SP_RS_ERROR);
		ip_vs_sp_rst_client(cp, seq, ack);
		cp->timeout = 0;
		return;
	}
	if (!ip_vs_conn_fnat(cp))
		ip_vs_conn_account(cp, IP_VS_DIR_OUTPUT, skb, thoff);
	ip_vs_sp_release(cp, &held);
}

/* RS -> client of an established session: sequence numbers and window. */
static void ip_vs_sp_fix_out(struct ip_vs_conn *cp, struct sk_buff *skb,
			     struct tcphdr *th, unsigned int thoff, u32 flags)
{
	__be32 old = th->seq;

	if (!ip_vs_conn_fnat(cp))
		ip_vs_fnat_seq_advance(&cp->fnat, &cp->fnat.r_nxt,
				       IP_VS_FNAT_SEQ_R_NXT,
				       ip_vs_tcp_end_seq(skb, th, thoff));
	th->seq = htonl(ntohl(old) + cp->fnat.sp_delta);
	inet_proto_csum_replace4(&th->check, skb, old, th->seq, false);
	if (flags & IP_VS_SP_WIN) {
		u32 ws = (flags >> IP_VS_SP_WS_SHIFT) & 0xf;
		u32 rs_ws = (flags >> IP_VS_SP_RSWS_SHIFT) & 0xf;
		u32 win = ((u32)ntohs(th->window) << rs_ws) >> ws;
		__be16 ow = th->window;

		th->window = htons(min_t(u32, win, 65535));
		inet_proto_csum_replace2(&th->check, skb, ow, th->window,
					 false);
	}
}

/**
 * ip_vs_synproxy_out - RS packets of a SYNPROXY session
 * @cp: the session (IP_VS_CONN_F_SYNPROXY)
 * @skb: the RS's packet, skb->data at its network header; the acknowledgment
 *	 is in the client's numbers (NAT: untouched, FULLNAT: translated)
 * @thoff: offset of its TCP header
 *
 * Returns IP_VS_EXT_PASS, or NF_STOLEN when the packet was consumed.
 */
int ip_vs_synproxy_out(struct ip_vs_conn *cp, struct sk_buff *skb,
		       unsigned int thoff)
{
	u32 flags = ip_vs_sp_flags(cp);
	struct tcphdr *th;

	if (cp->protocol != IPPROTO_TCP)
		return IP_VS_EXT_PASS;
	if (skb_ensure_writable(skb, thoff + sizeof(*th)))
		goto drop;
	th = (struct tcphdr *)(skb_network_header(skb) + thoff);
	if (th->doff < 5 || skb_ensure_writable(skb, thoff + th->doff * 4))
		goto drop;
	th = (struct tcphdr *)(skb_network_header(skb) + thoff);
	if (flags & IP_VS_SP_HS) {
		ip_vs_sp_rs_handshake(cp, skb, thoff, th);
		goto drop;
	}
	if (flags & IP_VS_SP_DEAD)
		goto drop;
	if (flags & IP_VS_SP_EST)
		ip_vs_sp_fix_out(cp, skb, th, thoff, flags);
	return IP_VS_EXT_PASS;

drop:
	kfree_skb(skb);
	return NF_STOLEN;
}

/* ------------------------------------------------- timer and expiry */

/**
 * ip_vs_synproxy_retry - the connection timer of a pending handshake
 * @cp: a SYNPROXY connection whose timer fired
 *
 * Sends the SYN again and re-arms the timer (true), or, retries used up,
 * resets the client and lets the connection expire (false).
 */
bool ip_vs_synproxy_retry(struct ip_vs_conn *cp)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_sp_hs *hs;
	struct sk_buff *syn = NULL;
	bool again = false, rst = false;
	u32 seq = 0, ack = 0;

	if (!(ip_vs_sp_flags(cp) & IP_VS_SP_HS) || !READ_ONCE(ipvs->enable))
		return false;
	rcu_read_lock();
	hs = ip_vs_sp_hs_find(cp);
	if (!hs)
		goto out;
	spin_lock_bh(&hs->lock);
	if (hs->done) {
		spin_unlock_bh(&hs->lock);
		goto out;
	}
	if (hs->retries < READ_ONCE(ipvs->ext->sp_syn_retry)) {
		hs->retries++;
		syn = skb_copy(hs->syn, GFP_ATOMIC);
		again = true;
	} else {
		hs->done = true;
		rst = true;
		seq = hs->isn + 1;
		ack = hs->c_isn + 1;
		ip_vs_sp_set_flags(cp, IP_VS_SP_DEAD, IP_VS_SP_HS);
	}
	spin_unlock_bh(&hs->lock);
	if (again) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_SYN_RETRY);
		if (syn)
			ip_vs_sp_xmit(cp, syn);
		mod_timer(&cp->timer, jiffies + IP_VS_SP_RETRY_IVAL);
	} else if (rst) {
		ip_vs_sp_hs_free(hs);
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_RS_ERROR);
		ip_vs_sp_rst_client(cp, seq, ack);
	}
out:
	rcu_read_unlock();
	return again;
}

/**
 * ip_vs_synproxy_conn_expire - an unlinked connection goes
 * @cp: the connection
 *
 * Frees the handshake state of a connection that never finished it.
 */
void ip_vs_synproxy_conn_expire(struct ip_vs_conn *cp)
{
	if (!(cp->flags & IP_VS_CONN_F_SYNPROXY) ||
	    !(ip_vs_sp_flags(cp) & IP_VS_SP_HS))
		return;
	rcu_read_lock();
	ip_vs_sp_abort(cp);
	rcu_read_unlock();
}

/* ---------------------------------------------------- configuration */

static bool ip_vs_sp_fwd_ok(unsigned int fwd)
{
	return fwd != IP_VS_CONN_F_TUNNEL && fwd != IP_VS_CONN_F_DROUTE;
}

/**
 * ip_vs_synproxy_svc_check - may a service (now) carry these flags?
 * @svc: the service being edited, or NULL when it is being added
 * @flags: the flags it is to have
 *
 * SYNPROXY needs to see the real servers' replies: no tunnelling or
 * direct-routing servers.  Returns 0 or -EOPNOTSUPP.
 */
int ip_vs_synproxy_svc_check(const struct ip_vs_service *svc,
			     unsigned int flags)
{
	struct ip_vs_dest *dest;

	if (!(flags & IP_VS_SVC_F_SYNPROXY) || !svc)
		return 0;
	list_for_each_entry(dest, &svc->destinations, n_list) {
		if (!ip_vs_sp_fwd_ok(IP_VS_DFWD_METHOD(dest))) {
			pr_err("SYNPROXY: not with tunnel or direct routing real servers\n");
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/**
 * ip_vs_synproxy_dest_check - may this real server join the service?
 * @svc: the service
 * @udest: the real server as userspace configures it
 *
 * Returns 0 or -EOPNOTSUPP (tunnel or direct routing on SYNPROXY).
 */
int ip_vs_synproxy_dest_check(const struct ip_vs_service *svc,
			      const struct ip_vs_dest_user_kern *udest)
{
	if (!(svc->flags & IP_VS_SVC_F_SYNPROXY) ||
	    ip_vs_sp_fwd_ok(udest->conn_flags & IP_VS_CONN_F_FWD_MASK))
		return 0;
	pr_err("SYNPROXY: not with tunnel or direct routing real servers\n");
	return -EOPNOTSUPP;
}

int ip_vs_synproxy_init(void)
{
	unsigned int i;

	get_random_bytes(&ip_vs_sp_key, sizeof(ip_vs_sp_key));
	for (i = 0; i < ARRAY_SIZE(ip_vs_sp_tab); i++)
		INIT_HLIST_HEAD(&ip_vs_sp_tab[i]);
	for (i = 0; i < IP_VS_SP_LOCKS; i++)
		spin_lock_init(&ip_vs_sp_locks[i]);
	return 0;
}

void ip_vs_synproxy_cleanup(void)
{
	/* every connection is gone: its handshake state with it */
	WARN(atomic_read(&ip_vs_sp_hs_alive),
	     "IPVS: SYNPROXY: %d handshake objects leaked\n",
	     atomic_read(&ip_vs_sp_hs_alive));
}
