// SPDX-License-Identifier: GPL-2.0
/*
 * IPVS SYNPROXY and flood defence.
 *
 * A service with IP_VS_SVC_F_SYNPROXY answers a client's SYN itself.  The
 * SYN/ACK's sequence number is a keyed cookie, built as Linux's syncookies:
 *
 *   cookie = H0 + client ISN + (T << 24) + ((H(T) + (m << 22)) mod 2^24)
 *
 * H0 and H(T) are SipHash values of the client's 4-tuple under a secret
 * key of this module (H0 with a counter value outside 0..255), T a clock
 * of synproxy_cookie_max_age-second periods modulo 256, m a 2-bit index
 * into a table of MSS values.  An ACK proves the cookie when ack - 1
 * decodes to T = now or now - 1 and to a low part whose 22 low bits are
 * 0.  For one flow and client ISN that accepts 2 (periods) x 4 (MSS
 * classes) = 8 of the 2^32 values: a random guess passes with a chance
 * of 2^-29, as with Linux's syncookies (a million random ACKs: 0.002
 * sessions expected).  A later segment of the session passes only if its
 * two numbers moved by the same amount modulo 4 MB.  A cookie stays valid
 * for one to two periods.
 *
 * The cookie has no room for the client's other options.  Those our
 * SYN/ACK agreed (window scale, SACK, timestamps, the exact MSS) go into
 * an offers table at SYN time: 65536 slots of 64 bits, a 32-bit tag
 * (H0 ^ client ISN ^ the namespace's hash mix) and the options, the slot
 * chosen by the tag; a later SYN may take the slot (lossy, never grows).
 * The cookie ACK finds its offer when the slot still holds its tag, and
 * then the RS's SYN carries exactly what the client was told.  When the
 * slot was taken meanwhile (counted: synproxy_opts_lost; under a SYN
 * flood of F SYNs/s, a handshake of RTT r keeps its offer with a chance
 * of about exp(-F r / 65536)), the RS's SYN has the MSS class of the
 * cookie, no window scale and no SACK, and timestamps if the ACK has
 * them.  Our SYN/ACK and the RS's SYN then disagree on window scaling
 * only: the client scales our windows by what we told it, the RS does
 * not scale; the RS's windows are rewritten for the client (shifted
 * right by synproxy_wscale, as if the client had the option: a window
 * read too small, never too large) and the client's reach the RS unscaled
 * (read too small).  SACK blocks the client sends are ignored by an RS
 * that did not agree to SACK.
 *
 * Only then is a connection scheduled.  It sends the real server a SYN
 * with the client's ISN and the agreed options, holds the client's ACK
 * and up to synproxy_ack_skb_store_thresh further segments (without
 * their input device, which may go meanwhile), consumes the RS's SYN/ACK
 * and releases what it held (the cookie ACK completes the RS's
 * handshake).  From then on the RS's sequence numbers are shifted by
 * sp_delta (our ISN to the client - RS's ISN) towards the client, and the
 * client's acknowledgments and SACK blocks back, and so are the embedded
 * numbers of ICMP errors from the client side (path MTU).  The handshake
 * period's state (held segments, the SYN for retries) lives in a small
 * object in a side table, freed when the handshake ends; a connection
 * itself grows by four bytes (sp_delta).
 *
 * A silent RS gets the SYN again every second, synproxy_syn_retry times;
 * then the client gets a RST and the connection goes.  An RS's RST during
 * the handshake is passed on to the client the same way.
 *
 * The SYN/ACK's timestamp value is 0, which clients accept as "no
 * reference" (RFC 7323 PAWS), so the RS's own clock needs no translation.
 *
 * Defence (no session is ever created by these packets) guards the
 * addresses of SYNPROXY services (ip_vs_vaddr.c), other addresses behave
 * as upstream's: TCP to a service there that is neither a SYN nor a valid
 * cookie ACK nor part of a session is dropped (defence_tcp_drop), UDP
 * there that no UDP service takes (defence_udp_drop), and reassembled
 * fragments to a service or session there (defence_frag_drop).
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
#include <net/netns/hash.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

#define IP_VS_SP_TAB_BITS	10
#define IP_VS_SP_LOCKS		64
#define IP_VS_SP_FLOW_LOCKS	256	/* new sessions, by client tuple */
#define IP_VS_SP_NO_WS		15
#define IP_VS_SP_MSS_SHIFT	22	/* MSS index: bits 22-23 of the low part */
#define IP_VS_SP_OLD_WIN	(1U << 20)
#define IP_VS_SP_LOW_MASK	0x00ffffff
#define IP_VS_SP_H0_COUNT	0x100
#define IP_VS_SP_RETRY_IVAL	HZ
#define IP_VS_SP_OFFER_BITS	16	/* offers table: 65536 slots, 512 KB */
#define IP_VS_SP_DEF_MSS	536	/* a SYN without MSS option (RFC 9293) */

/* MSS values a cookie can carry (2 bits), as Linux's syncookies: the
 * largest not above the client's is chosen.
 */
static const u16 ip_vs_sp_mss4[] = { 536, 1300, 1440, 1460 };
static const u16 ip_vs_sp_mss6[] = { 1220, 1420, 1440, 8940 };

static siphash_key_t ip_vs_sp_key __read_mostly;

/* What our SYN/ACK agreed with a client, as the RS's SYN and the window
 * translation need it.  Kept per SYN in the offers table (tag and these
 * fields packed in 64 bits, lossy), rebuilt from the cookie alone when
 * the slot was taken by another SYN since.
 */
struct ip_vs_sp_offer {
	u16	mss;		/* the client's MSS */
	u8	c_ws;		/* client's window scale, or IP_VS_SP_NO_WS */
	u8	ws;		/* the scale we told it, or IP_VS_SP_NO_WS */
	bool	sack;
	bool	ts;
};

static atomic64_t *ip_vs_sp_offers __read_mostly;

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
	u8			ws;		/* scale told the client, or NO_WS */
	u8			c_ws;		/* client's scale told the RS, or NO_WS */
	bool			done;
	struct rcu_head		rcu;
};

static struct hlist_head ip_vs_sp_tab[1 << IP_VS_SP_TAB_BITS];
static spinlock_t ip_vs_sp_locks[IP_VS_SP_LOCKS];
/* "No session for this client tuple: prove the cookie, create one" is one
 * step per tuple (ip_vs_sp_ack()): the cookie ACK and the first data
 * segment of a flow, or an ACK and its retransmission, may meet on two
 * CPUs, both without a session; the second waits for this lock and then
 * finds the session the first created.  Chosen by the keyed hash H0.
 */
static spinlock_t ip_vs_sp_flow_locks[IP_VS_SP_FLOW_LOCKS];
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

/* The cookie's clock: periods of @period (synproxy_cookie_max_age)
 * seconds, modulo 256.
 */
static u32 ip_vs_sp_tick(u32 period)
{
	return (u32)(ktime_get_seconds() / max_t(u32, period, 1)) & 0xff;
}

static u32 ip_vs_sp_period(const struct netns_ipvs *ipvs)
{
	return READ_ONCE(ipvs->ext->sp_cookie_max_age);
}

static u32 ip_vs_sp_h0(int af, const struct ip_vs_sp_flow *f)
{
	return ip_vs_sp_hash(af, f, IP_VS_SP_H0_COUNT);
}

static u32 ip_vs_sp_cookie(int af, const struct ip_vs_sp_flow *f, u32 h0,
			   u32 c_isn, u32 mss_idx, u32 t)
{
	return h0 + c_isn + (t << 24) +
	       ((ip_vs_sp_hash(af, f, t) + (mss_idx << IP_VS_SP_MSS_SHIFT)) &
		IP_VS_SP_LOW_MASK);
}

/* 0 and the MSS index, -EINVAL for a wrong cookie, -ETIME for an old one */
static int ip_vs_sp_cookie_check(int af, const struct ip_vs_sp_flow *f,
				 u32 h0, u32 c_isn, u32 cookie, u32 period,
				 u32 *mss_idx)
{
	u32 x = cookie - h0 - c_isn;
	u32 t = x >> 24;
	u32 d;

	d = ((x & IP_VS_SP_LOW_MASK) - ip_vs_sp_hash(af, f, t)) &
		IP_VS_SP_LOW_MASK;
	/* the 22 low bits must be 0: a segment of an older session whose
	 * numbers moved apart by less than 4 MB does not pass
	 */
	if (d & (BIT(IP_VS_SP_MSS_SHIFT) - 1))
		return -EINVAL;
	*mss_idx = d >> IP_VS_SP_MSS_SHIFT;
	if (((ip_vs_sp_tick(period) - t) & 0xff) > 1)
		return -ETIME;
	return 0;
}

static const u16 *ip_vs_sp_mss_tab(int af)
{
	return af == AF_INET6 ? ip_vs_sp_mss6 : ip_vs_sp_mss4;
}

static u32 ip_vs_sp_mss_idx(int af, u16 mss)
{
	const u16 *tab = ip_vs_sp_mss_tab(af);
	u32 i;

	for (i = ARRAY_SIZE(ip_vs_sp_mss4) - 1; i > 0; i--)
		if (mss >= tab[i])
			break;
	return i;
}

/* ------------------------------------------------------- offers table */

static u32 ip_vs_sp_offer_pack(const struct ip_vs_sp_offer *of)
{
	return of->mss | (u32)of->c_ws << 16 | (u32)of->ws << 20 |
	       (u32)of->sack << 24 | (u32)of->ts << 25;
}

static void ip_vs_sp_offer_unpack(u32 v, struct ip_vs_sp_offer *of)
{
	of->mss = v & 0xffff;
	of->c_ws = (v >> 16) & 0xf;
	of->ws = (v >> 20) & 0xf;
	of->sack = v & BIT(24);
	of->ts = v & BIT(25);
}

/* Slot and tag of one SYN: its flow through the keyed @h0, its ISN and
 * the namespace.
 */
static u32 ip_vs_sp_offer_key(struct net *net, u32 h0, u32 c_isn)
{
	return h0 ^ c_isn ^ net_hash_mix(net);
}

static void ip_vs_sp_offer_save(struct net *net, u32 h0, u32 c_isn,
				const struct ip_vs_sp_offer *of)
{
	u32 key = ip_vs_sp_offer_key(net, h0, c_isn);

	atomic64_set(&ip_vs_sp_offers[hash_32(key, IP_VS_SP_OFFER_BITS)],
		     (u64)key << 32 | ip_vs_sp_offer_pack(of));
}

/* The offer a cookie ACK answers: from the table, or when its slot was
 * taken since, what the cookie and the ACK tell (counted): the MSS class,
 * timestamps if the ACK has them, no window scale nor SACK towards the
 * RS.  Whether the client scales our windows is then unknown: assume it
 * does (synproxy_wscale > 0), so that the RS's windows reach it scaled
 * down (smaller, never larger than the RS's).
 */
static void ip_vs_sp_offer_load(struct netns_ipvs *ipvs, int af, u32 h0,
				u32 c_isn, u32 mss_idx,
				const struct ip_vs_sp_opts *ao,
				struct ip_vs_sp_offer *of)
{
	u32 key = ip_vs_sp_offer_key(ipvs->net, h0, c_isn);
	u64 v = atomic64_read(&ip_vs_sp_offers[hash_32(key,
						       IP_VS_SP_OFFER_BITS)]);
	int our_ws = READ_ONCE(ipvs->ext->sp_wscale);

	if ((u32)(v >> 32) == key && (v & 0xffff)) {
		ip_vs_sp_offer_unpack((u32)v, of);
		of->ts = of->ts && ao->ts;
		return;
	}
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_OPTS_LOST);
	of->mss = ip_vs_sp_mss_tab(af)[mss_idx & 3];
	of->c_ws = IP_VS_SP_NO_WS;
	of->ws = our_ws > 0 ? our_ws : IP_VS_SP_NO_WS;
	of->sack = false;
	of->ts = ao->ts;
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
	int af = ip_vs_sp_af(skb);
	int our_ws = READ_ONCE(ext->sp_wscale);
	u16 mss = READ_ONCE(ext->sp_init_mss);
	u32 isn, h0, c_isn = ntohl(th->seq);
	struct ip_vs_sp_offer of;
	struct ip_vs_sp_opts o;
	struct ip_vs_sp_flow f;
	unsigned int optlen;
	struct sk_buff *out;
	u8 opts[24];

	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_SYN_CNT);
	ip_vs_sp_parse(th, &o);
	of.mss = o.mss ?: IP_VS_SP_DEF_MSS;
	of.sack = o.sack && READ_ONCE(ext->sp_sack);
	of.ts = o.ts && READ_ONCE(ext->sp_timestamp);
	of.c_ws = IP_VS_SP_NO_WS;
	of.ws = IP_VS_SP_NO_WS;
	if (o.ws != IP_VS_SP_NO_WS && our_ws > 0) {
		of.c_ws = o.ws;
		of.ws = our_ws;
	}
	ip_vs_sp_flow_of(&f, iph, th);
	h0 = ip_vs_sp_h0(af, &f);
	ip_vs_sp_offer_save(ipvs->net, h0, c_isn, &of);
	isn = ip_vs_sp_cookie(af, &f, h0, c_isn, ip_vs_sp_mss_idx(af, of.mss),
			      ip_vs_sp_tick(ip_vs_sp_period(ipvs)));
	if (af == AF_INET6)
		mss -= sizeof(struct ipv6hdr) - sizeof(struct iphdr);
	optlen = ip_vs_sp_write_opts(opts, mss, of.ws, of.sack, of.ts, 0,
				     o.tsval);
	out = ip_vs_sp_build(af, &iph->daddr, th->dest, &iph->saddr,
			     th->source, isn, c_isn + 1,
			     TCPHDR_SYN | TCPHDR_ACK, 65535, opts, optlen,
			     READ_ONCE(ext->sp_synack_ttl));
	if (out)
		ip_vs_sp_send_local(ipvs->net, out, skb->mark);
	consume_skb(skb);
	return NF_STOLEN;
}

/* ---------------------------------------------- ACK: a new connection */

/* The SYN to the RS: the client's ISN and the options of our offer;
 * routed like the ACK it is made from.
 */
static struct sk_buff *ip_vs_sp_make_syn(struct sk_buff *ack,
					 struct ip_vs_iphdr *iph,
					 const struct tcphdr *th,
					 const struct ip_vs_sp_offer *of,
					 const struct ip_vs_sp_opts *ao)
{
	u32 win = ntohs(th->window);
	struct sk_buff *syn;
	unsigned int optlen;
	u8 opts[24], ttl;

	if (of->c_ws != IP_VS_SP_NO_WS)
		win = min_t(u32, win << of->c_ws, 65535);
	optlen = ip_vs_sp_write_opts(opts, of->mss, of->c_ws, of->sack,
				     of->ts, ao->tsval, 0);
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

/* A client segment kept until the RS's handshake ends keeps its route
 * (with a reference of its own) but neither its input device, which may
 * be unregistered meanwhile (nothing on the way to the RS needs it: IPVS
 * takes a packet without one for a locally generated one), nor an early
 * demultiplexed socket, nor its receive time stamp (which the output
 * path would take for a departure time).
 */
static bool ip_vs_sp_keep(struct sk_buff *skb)
{
	if (!skb_dst_force(skb))
		return false;
	skb_orphan(skb);
	skb_clear_tstamp(skb);
	skb->dev = NULL;
	return true;
}

/* @cp is a SYNPROXY session from now on.  It is hashed: its flags change
 * under its lock, as upstream's state transitions change them.
 */
static void ip_vs_sp_mark(struct ip_vs_conn *cp)
{
	spin_lock_bh(&cp->lock);
	cp->flags |= IP_VS_CONN_F_SYNPROXY;
	spin_unlock_bh(&cp->lock);
}

/* Start the RS's handshake of @cp from the client's cookie ACK @skb
 * (under the flow lock): the connection is marked and holds @skb; *@syn
 * is the first SYN to the RS, for the caller to send (NULL when there is
 * none to send now: the timer retries).
 */
static int ip_vs_sp_start(struct ip_vs_conn *cp, struct sk_buff *skb,
			  struct ip_vs_iphdr *iph, const struct tcphdr *th,
			  const struct ip_vs_sp_offer *of,
			  const struct ip_vs_sp_opts *ao, struct sk_buff **syn)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_sp_hs *hs;

	/* NAT applications (ip_vs_ftp) use the storage we need; the SYN's
	 * route is copied from the ACK's, which must be a counted one
	 */
	if (cp->app || !ip_vs_sp_keep(skb))
		goto fail;
	hs = kzalloc_obj(*hs, GFP_ATOMIC);
	if (!hs)
		goto fail;
	hs->syn = ip_vs_sp_make_syn(skb, iph, th, of, ao);
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
	hs->c_ws = of->c_ws;
	hs->ws = of->ws;
	/* copied before hs is seen: a client's RST may free hs->syn */
	*syn = skb_copy(hs->syn, GFP_ATOMIC);
	/* a new connection: ip_vs_conn_new() zeroed cp->fnat */
	ip_vs_sp_set_flags(cp, IP_VS_SP_HS, IP_VS_SP_EST | IP_VS_SP_DEAD);
	__skb_queue_tail(&hs->held, skb);
	ip_vs_sp_hs_link(hs);
	ip_vs_sp_mark(cp);
	cp->timeout = IP_VS_SP_RETRY_IVAL;
	return NF_STOLEN;

fail:
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_HS_FAIL);
	/* what found it meanwhile (ip_vs_sp_settled()) is dropped */
	ip_vs_sp_set_flags(cp, IP_VS_SP_DEAD, 0);
	ip_vs_sp_mark(cp);
	cp->timeout = 0;
	return NF_DROP;
}

/* Send the first SYN of a handshake ip_vs_sp_start() began. */
static void ip_vs_sp_first_syn(struct ip_vs_conn *cp, struct sk_buff *syn)
{
	ip_vs_conn_account(cp, IP_VS_DIR_INPUT, syn, skb_transport_offset(syn));
	/* the state's timeout, just set, gives way to the retry timer */
	cp->timeout = IP_VS_SP_RETRY_IVAL;
	ip_vs_sp_xmit(cp, syn);
}

static unsigned int ip_vs_sp_payload(const struct sk_buff *skb,
				     unsigned int thoff,
				     const struct tcphdr *th)
{
	return skb->len - thoff - th->doff * 4;
}

static int ip_vs_sp_conn_in(struct ip_vs_conn *cp, struct sk_buff *skb,
			    struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
			    const struct tcphdr *th);

static spinlock_t *ip_vs_sp_flow_lock(u32 h0)
{
	return &ip_vs_sp_flow_locks[h0 % IP_VS_SP_FLOW_LOCKS];
}

/* The session of @skb's client tuple now (a reference), or NULL. */
static struct ip_vs_conn *ip_vs_sp_lookup(struct netns_ipvs *ipvs, int af,
					  const struct ip_vs_iphdr *iph,
					  const struct tcphdr *th)
{
	struct ip_vs_conn_param p;

	ip_vs_conn_fill_param(ipvs, af, IPPROTO_TCP, &iph->saddr, th->source,
			      &iph->daddr, th->dest, &p);
	return ip_vs_conn_in_get(&p);
}

/* @skb found its session @cp (a reference, dropped here) only under the
 * flow lock: what IPVS does with a packet whose session it found, the way
 * out held segments take (ip_vs_sp_release()).  Returns a verdict; @skb
 * is consumed unless it is NF_DROP.
 */
static int ip_vs_sp_found(struct ip_vs_conn *cp, struct sk_buff *skb,
			  struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
			  const struct tcphdr *th)
{
	int ret = IP_VS_EXT_PASS;

	if (cp->flags & IP_VS_CONN_F_SYNPROXY)
		ret = ip_vs_sp_conn_in(cp, skb, iph, pd, th);
	if (ret != IP_VS_EXT_PASS) {
		/* as ip_vs_in_hook() after a verdict of ours: no timer */
		__ip_vs_conn_put(cp);
		return ret;
	}
	ip_vs_conn_account(cp, IP_VS_DIR_INPUT, skb, iph->len);
	ip_vs_sp_xmit(cp, skb);
	ip_vs_conn_put(cp);
	return NF_STOLEN;
}

/* A client ACK to @svc without a session (or with @old, a closing one it
 * replaces, counted as @reused): does it prove a cookie?  Under the flow
 * lock the session is looked up again: one that another CPU created
 * meanwhile takes the packet; else one is created here.
 */
static int ip_vs_sp_ack(struct ip_vs_service *svc, struct sk_buff *skb,
			struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
			const struct tcphdr *th, struct ip_vs_conn *old,
			enum ip_vs_ext_stat reused)
{
	struct netns_ipvs *ipvs = svc->ipvs;
	struct ip_vs_ext_net *ext = ipvs->ext;
	u32 mss_idx, h0, c_isn = ntohl(th->seq) - 1;
	int af = ip_vs_sp_af(skb);
	struct sk_buff *syn = NULL;
	struct ip_vs_sp_offer of;
	struct ip_vs_sp_opts ao;
	struct ip_vs_sp_flow f;
	struct ip_vs_conn *cp;
	spinlock_t *lock;
	int ignored, ret;

	ip_vs_sp_flow_of(&f, iph, th);
	h0 = ip_vs_sp_h0(af, &f);
	ret = ip_vs_sp_cookie_check(af, &f, h0, c_isn, ntohl(th->ack_seq) - 1,
				    ip_vs_sp_period(ipvs), &mss_idx);
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
	ip_vs_sp_parse(th, &ao);
	lock = ip_vs_sp_flow_lock(h0);
	spin_lock_bh(lock);
	cp = ip_vs_sp_lookup(ipvs, af, iph, th);
	if (cp && cp == old) {
		/* still hashed while it expires: not the new one (which
		 * would be found first, the newest heads its bucket)
		 */
		__ip_vs_conn_put(cp);
		cp = NULL;
	}
	if (cp) {
		spin_unlock_bh(lock);
		return ip_vs_sp_found(cp, skb, iph, pd, th);
	}
	if (old) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_CONN_REUSED);
		IP_VS_EXT_INC(ipvs, reused);
		ip_vs_conn_expire_now(old);
	}
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_OK_ACK);
	ip_vs_sp_offer_load(ipvs, af, h0, c_isn, mss_idx, &ao, &of);
	cp = ip_vs_schedule(svc, skb, pd, &ignored, iph);
	if (!cp) {
		spin_unlock_bh(lock);
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SP_NO_DEST);
		return NF_DROP;
	}
	ret = ip_vs_sp_start(cp, skb, iph, th, &of, &ao, &syn);
	spin_unlock_bh(lock);
	if (syn)
		ip_vs_sp_first_syn(cp, syn);
	ip_vs_conn_put(cp);
	return ret;
}

/* @cp has no SYNPROXY mark, but it may be a session ip_vs_sp_ack() is
 * creating on another CPU: ip_vs_schedule() hashes it before
 * ip_vs_sp_start() marks it, both under the flow lock.  A packet that
 * found it in between (only a new TCP session of a SYNPROXY service is
 * looked at) waits for that lock; true if the session is marked then.
 */
static bool ip_vs_sp_settled(struct ip_vs_conn *cp, struct sk_buff *skb,
			     struct ip_vs_iphdr *iph)
{
	struct ip_vs_dest *dest = cp->dest;
	struct ip_vs_service *svc;
	struct ip_vs_sp_flow f;
	struct tcphdr _th, *th;
	spinlock_t *lock;

	if (likely(READ_ONCE(cp->state) != IP_VS_TCP_S_NONE) ||
	    cp->protocol != IPPROTO_TCP || iph->protocol != IPPROTO_TCP ||
	    !dest || iph->fragoffs)
		return false;
	svc = rcu_dereference(dest->svc);
	if (!svc || !(READ_ONCE(svc->flags) & IP_VS_SVC_F_SYNPROXY))
		return false;
	th = skb_header_pointer(skb, iph->len, sizeof(_th), &_th);
	if (!th)
		return false;
	ip_vs_sp_flow_of(&f, iph, th);
	lock = ip_vs_sp_flow_lock(ip_vs_sp_h0(ip_vs_sp_af(skb), &f));
	spin_lock_bh(lock);
	spin_unlock_bh(lock);
	return READ_ONCE(cp->flags) & IP_VS_CONN_F_SYNPROXY;
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
	} else if (ip_vs_sp_keep(skb)) {
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
		int af = ip_vs_sp_af(skb);
		struct ip_vs_sp_flow f;
		u32 mss_idx;

		ip_vs_sp_flow_of(&f, iph, th);
		if (!ip_vs_sp_cookie_check(af, &f, ip_vs_sp_h0(af, &f),
					   ntohl(th->seq) - 1,
					   ntohl(th->ack_seq) - 1,
					   ip_vs_sp_period(ipvs), &mss_idx)) {
			struct ip_vs_service *svc;

			svc = ip_vs_service_find(ipvs, ip_vs_sp_af(skb), skb->mark,
						 IPPROTO_TCP, &iph->daddr,
						 th->dest);
			if (svc && (svc->flags & IP_VS_SVC_F_SYNPROXY))
				return ip_vs_sp_ack(svc, skb, iph, pd, th, cp,
						    item);
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

/* Is @addr the address of a SYNPROXY service?  Flood defence guards only
 * those: other addresses behave as upstream's (under RCU).
 */
static bool ip_vs_sp_defended(struct netns_ipvs *ipvs, int af,
			      const union nf_inet_addr *addr)
{
	const struct ip_vs_vaddr *va = ip_vs_vaddr_find(ipvs, af, addr);

	return va && READ_ONCE(va->synproxy);
}

/* UDP without a session to the address of a SYNPROXY service: dropped
 * unless a UDP service (or a firewall-mark one) takes it.
 */
static int ip_vs_sp_udp_in(struct netns_ipvs *ipvs, struct sk_buff *skb,
			   struct ip_vs_iphdr *iph)
{
	int af = ip_vs_sp_af(skb);
	const struct ip_vs_vaddr *va;

	if (!READ_ONCE(ipvs->ext->defence_udp_drop))
		return IP_VS_EXT_PASS;
	va = ip_vs_vaddr_find(ipvs, af, &iph->daddr);
	if (!va || !READ_ONCE(va->synproxy))
		return IP_VS_EXT_PASS;
	if (READ_ONCE(va->udp) || skb->mark) {
		__be16 _ports[2], *ports;

		ports = skb_header_pointer(skb, iph->len, sizeof(_ports),
					   _ports);
		if (!ports || ip_vs_service_find(ipvs, af, skb->mark,
						 IPPROTO_UDP, &iph->daddr,
						 ports[1]))
			return IP_VS_EXT_PASS;
	}
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
	    READ_ONCE(ext->defence_frag_drop) &&
	    ip_vs_sp_defended(ipvs, ip_vs_sp_af(skb), &iph->daddr)) {
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
	if (cp && likely(!(cp->flags & IP_VS_CONN_F_SYNPROXY)) &&
	    likely(!ip_vs_sp_settled(cp, skb, iph)))
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
			return ip_vs_sp_ack(svc, skb, iph, pd, th, NULL,
					    IP_VS_EXT_SP_OK_ACK);
	} else if (th->syn || sysctl_sloppy_tcp(ipvs)) {
		return IP_VS_EXT_PASS;
	}
	if (!READ_ONCE(ext->defence_tcp_drop) ||
	    (!(svc->flags & IP_VS_SVC_F_SYNPROXY) &&
	     !ip_vs_sp_defended(ipvs, ip_vs_sp_af(skb), &iph->daddr)))
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
	u8 ws = hs->ws == IP_VS_SP_NO_WS ? 0 : hs->ws, rs_ws = 0;
	u32 rs_isn = ntohl(th->seq), set = IP_VS_SP_EST;
	struct ip_vs_sp_opts ro;

	ip_vs_sp_parse(th, &ro);
	skb_queue_splice_init(&hs->held, held);
	cp->fnat.sp_delta = hs->isn - rs_isn;
	/* the RS scales its windows only if our SYN and its SYN/ACK both
	 * had the option; the client scales ours by what we told it
	 */
	if (hs->c_ws != IP_VS_SP_NO_WS && ro.ws != IP_VS_SP_NO_WS)
		rs_ws = ro.ws;
	set |= (u32)ws << IP_VS_SP_WS_SHIFT | (u32)rs_ws << IP_VS_SP_RSWS_SHIFT;
	if (rs_ws != ws)
		set |= IP_VS_SP_WIN;
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

/* ------------------------------------------------------ ICMP errors */

/**
 * ip_vs_synproxy_icmp_seq - an ICMP error from the client side, to the RS
 * @cp: the session the embedded VIP -> client segment belongs to
 * @seq: that segment's sequence number, writable
 *
 * The client saw the RS's data numbered with our offset; the RS matches
 * errors (path MTU among them) against its own numbers.
 */
void ip_vs_synproxy_icmp_seq(const struct ip_vs_conn *cp, __be32 *seq)
{
	if (cp->protocol != IPPROTO_TCP ||
	    !(cp->flags & IP_VS_CONN_F_SYNPROXY) ||
	    !(ip_vs_sp_flags(cp) & IP_VS_SP_EST))
		return;
	*seq = htonl(ntohl(*seq) - cp->fnat.sp_delta);
}

/**
 * ip_vs_synproxy_icmp_in - the same for upstream's NAT ICMP forwarding
 * @cp: a SYNPROXY session of a NAT real server
 * @skb: the ICMP error, skb->data at its outer network header
 * @offset: where the embedded TCP sequence number starts
 *
 * Returns 0, or -1 when the error is too short to name a sequence number
 * (to drop: TCP would not act on it either).
 */
int ip_vs_synproxy_icmp_in(struct ip_vs_conn *cp, struct sk_buff *skb,
			   unsigned int offset)
{
	if (cp->protocol != IPPROTO_TCP)
		return 0;
	if (skb_ensure_writable(skb, offset + sizeof(__be32)))
		return -1;
	ip_vs_synproxy_icmp_seq(cp, (__be32 *)(skb->data + offset));
	return 0;
}

/* ---------------------------------------------------- configuration */

/* SYNPROXY must see and translate the RS's replies: NAT and FULLNAT
 * only (not tunnel, direct routing, local node or bypass).
 */
static bool ip_vs_sp_fwd_ok(unsigned int fwd)
{
	return fwd == IP_VS_CONN_F_MASQ || fwd == IP_VS_CONN_F_FULLNAT;
}

static int ip_vs_sp_fwd_refused(void)
{
	pr_err("SYNPROXY: only NAT and FULLNAT real servers (not tunnel, direct routing, local node or bypass)\n");
	return -EOPNOTSUPP;
}

/**
 * ip_vs_synproxy_svc_check - may a service (now) carry these flags?
 * @svc: the service being edited, or NULL when it is being added
 * @flags: the flags it is to have
 *
 * SYNPROXY needs to see the real servers' replies: NAT or FULLNAT
 * servers only.  Returns 0 or -EOPNOTSUPP.
 */
int ip_vs_synproxy_svc_check(const struct ip_vs_service *svc,
			     unsigned int flags)
{
	struct ip_vs_dest *dest;

	if (!(flags & IP_VS_SVC_F_SYNPROXY) || !svc)
		return 0;
	list_for_each_entry(dest, &svc->destinations, n_list) {
		if (!ip_vs_sp_fwd_ok(IP_VS_DFWD_METHOD(dest)))
			return ip_vs_sp_fwd_refused();
	}
	return 0;
}

/**
 * ip_vs_synproxy_dest_check - may this real server join the service?
 * @svc: the service
 * @udest: the real server as userspace configures it
 *
 * Returns 0 or -EOPNOTSUPP (not NAT or FULLNAT on SYNPROXY).
 */
int ip_vs_synproxy_dest_check(const struct ip_vs_service *svc,
			      const struct ip_vs_dest_user_kern *udest)
{
	if (!(svc->flags & IP_VS_SVC_F_SYNPROXY) ||
	    ip_vs_sp_fwd_ok(udest->conn_flags & IP_VS_CONN_F_FWD_MASK))
		return 0;
	return ip_vs_sp_fwd_refused();
}

int ip_vs_synproxy_init(void)
{
	unsigned int i;

	ip_vs_sp_offers = kvcalloc(1U << IP_VS_SP_OFFER_BITS,
				   sizeof(*ip_vs_sp_offers), GFP_KERNEL);
	if (!ip_vs_sp_offers)
		return -ENOMEM;
	get_random_bytes(&ip_vs_sp_key, sizeof(ip_vs_sp_key));
	for (i = 0; i < ARRAY_SIZE(ip_vs_sp_tab); i++)
		INIT_HLIST_HEAD(&ip_vs_sp_tab[i]);
	for (i = 0; i < IP_VS_SP_LOCKS; i++)
		spin_lock_init(&ip_vs_sp_locks[i]);
	for (i = 0; i < IP_VS_SP_FLOW_LOCKS; i++)
		spin_lock_init(&ip_vs_sp_flow_locks[i]);
	return 0;
}

void ip_vs_synproxy_cleanup(void)
{
	/* every connection is gone: its handshake state with it */
	WARN(atomic_read(&ip_vs_sp_hs_alive),
	     "IPVS: SYNPROXY: %d handshake objects leaked\n",
	     atomic_read(&ip_vs_sp_hs_alive));
	kvfree(ip_vs_sp_offers);
}
