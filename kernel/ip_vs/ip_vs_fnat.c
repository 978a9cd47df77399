// SPDX-License-Identifier: GPL-2.0
/*
 * IPVS FULLNAT: both addresses of a session are rewritten.
 *
 *   client:cport -> VIP:vport   becomes   laddr:lport -> RS:dport
 *   RS:dport -> laddr:lport     becomes   VIP:vport   -> client:cport
 *
 * A FULLNAT connection is found from the client side through the upstream
 * table (hashed by client address and port) and from the real-server side
 * through the table here, hashed by (laddr, lport, RS address, RS port),
 * with a second list node embedded in struct ip_vs_conn.  Replies are
 * caught in PRE_ROUTING, before the kernel routes them to the local
 * address, translated and routed to the client.
 *
 * The local port of a new connection is a port of
 * [fullnat_lport_min, fullnat_lport_max] that the local address's map of
 * ports says is free, from a random start; inserting the connection under
 * the bucket lock checks that no live connection uses the same RS-side
 * tuple, so two CPUs never get the same tuple.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/jhash.h>
#include <linux/random.h>
#include <linux/ip.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/udp.h>
#include <net/ip.h>
#include <net/icmp.h>
#include <net/route.h>
#include <net/ip6_route.h>
#include <net/ip6_checksum.h>
#include <net/ipv6.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

#define IP_VS_FNAT_LOCK_BITS	10
#define IP_VS_FNAT_LOCKS	(1 << IP_VS_FNAT_LOCK_BITS)

static struct hlist_head *ip_vs_fnat_tab __read_mostly;
static unsigned int ip_vs_fnat_tab_mask __read_mostly;
static unsigned int ip_vs_fnat_rnd __read_mostly;
static spinlock_t ip_vs_fnat_locks[IP_VS_FNAT_LOCKS];

/* The RS side of a connection: what the real server's packets carry. */
struct ip_vs_fnat_key {
	struct netns_ipvs		*ipvs;
	const union nf_inet_addr	*laddr;
	const union nf_inet_addr	*raddr;
	__be16				lport;
	__be16				rport;
	u16				af;
	u16				protocol;
};

static unsigned int ip_vs_fnat_hash(const struct ip_vs_fnat_key *k)
{
	u32 a = (__force u32)k->laddr->ip, b = (__force u32)k->raddr->ip;
	u32 ports = ((__force u32)k->lport << 16) | (__force u32)k->rport;

	if (k->af == AF_INET6) {
		a = jhash(k->laddr, sizeof(struct in6_addr), ip_vs_fnat_rnd);
		b = jhash(k->raddr, sizeof(struct in6_addr), ip_vs_fnat_rnd);
	}
	return (jhash_3words(a, b ^ k->protocol, ports, ip_vs_fnat_rnd) ^
		((size_t)k->ipvs >> 8)) & ip_vs_fnat_tab_mask;
}

static spinlock_t *ip_vs_fnat_lock(unsigned int hash)
{
	return &ip_vs_fnat_locks[hash & (IP_VS_FNAT_LOCKS - 1)];
}

/* The source and destination address of the IP header of @skb. */
static void ip_vs_fnat_addrs(const struct sk_buff *skb, int af,
			     union nf_inet_addr *saddr,
			     union nf_inet_addr *daddr)
{
	if (af == AF_INET6) {
		saddr->in6 = ipv6_hdr(skb)->saddr;
		daddr->in6 = ipv6_hdr(skb)->daddr;
	} else {
		saddr->ip = ip_hdr(skb)->saddr;
		daddr->ip = ip_hdr(skb)->daddr;
	}
}

static bool ip_vs_fnat_match(const struct ip_vs_conn *cp,
			     const struct ip_vs_fnat_key *k)
{
	return cp->lport == k->lport && cp->dport == k->rport &&
	       cp->af == k->af && cp->protocol == k->protocol &&
	       cp->ipvs == k->ipvs &&
	       ip_vs_addr_equal(k->af, &cp->laddr, k->laddr) &&
	       ip_vs_addr_equal(k->af, &cp->daddr, k->raddr);
}

/* The entry of bucket @hash for @k (under RCU or the bucket's lock).
 * There is at most one: ip_vs_fnat_hash_unique() sees to it.
 */
static struct ip_vs_conn *ip_vs_fnat_find(unsigned int hash,
					  const struct ip_vs_fnat_key *k)
{
	struct ip_vs_conn *cp;

	hlist_for_each_entry_rcu(cp, &ip_vs_fnat_tab[hash], l_list,
				 lockdep_is_held(ip_vs_fnat_lock(hash)))
		if (ip_vs_fnat_match(cp, k))
			return cp;
	return NULL;
}

/* Find a live connection from its RS side; takes a reference. */
static struct ip_vs_conn *ip_vs_fnat_lookup(const struct ip_vs_fnat_key *k)
{
	struct ip_vs_conn *cp = ip_vs_fnat_find(ip_vs_fnat_hash(k), k);

	/* HASHED: fully built and not yet unlinked by expiry */
	if (cp && (READ_ONCE(cp->flags) & IP_VS_CONN_F_HASHED) &&
	    __ip_vs_conn_get(cp))
		return cp;
	return NULL;
}

static void ip_vs_fnat_key_of(const struct ip_vs_conn *cp,
			      struct ip_vs_fnat_key *k)
{
	*k = (struct ip_vs_fnat_key){
		.ipvs = cp->ipvs, .laddr = &cp->laddr, .raddr = &cp->daddr,
		.lport = cp->lport, .rport = cp->dport, .af = cp->af,
		.protocol = cp->protocol,
	};
}

/* Insert @cp under its bucket lock unless its RS-side tuple is taken. */
bool ip_vs_fnat_hash_unique(struct ip_vs_conn *cp)
{
	struct ip_vs_fnat_key k;
	unsigned int hash;
	spinlock_t *lock;
	bool added;

	ip_vs_fnat_key_of(cp, &k);
	hash = ip_vs_fnat_hash(&k);
	lock = ip_vs_fnat_lock(hash);
	spin_lock_bh(lock);
	added = !ip_vs_fnat_find(hash, &k);
	if (added)
		hlist_add_head_rcu(&cp->l_list, &ip_vs_fnat_tab[hash]);
	spin_unlock_bh(lock);
	return added;
}

static void ip_vs_fnat_unhash(struct ip_vs_conn *cp)
{
	struct ip_vs_fnat_key k;
	spinlock_t *lock;

	ip_vs_fnat_key_of(cp, &k);
	lock = ip_vs_fnat_lock(ip_vs_fnat_hash(&k));
	spin_lock_bh(lock);
	hlist_del_init_rcu(&cp->l_list);
	spin_unlock_bh(lock);
}

/* ---------------------------------------------------- connection life */

/* Random ports tried per local address when its map is full: a port in
 * use towards one real server is free towards the others.
 */
#define IP_VS_FNAT_LPORT_RANDOM	8

struct ip_vs_fnat_lrange {
	u32	min;	/* lowest port */
	u32	end;	/* one past the highest */
};

static void ip_vs_fnat_lport_range(struct ip_vs_ext_net *ext,
				   struct ip_vs_fnat_lrange *r)
{
	u32 lo = READ_ONCE(ext->fnat_lport_min);
	u32 hi = READ_ONCE(ext->fnat_lport_max);

	if (lo > hi)
		swap(lo, hi);
	r->min = lo;
	r->end = hi + 1;
}

/* The first clear bit of @map in [@from, end), else in [min, @from);
 * r->end when every bit of the range is set.
 */
static u32 ip_vs_fnat_lport_free(const unsigned long *map,
				 const struct ip_vs_fnat_lrange *r, u32 from)
{
	u32 port = find_next_zero_bit(map, r->end, from);

	if (port < r->end)
		return port;
	port = find_next_zero_bit(map, from, r->min);
	return port < from ? port : r->end;
}

/* @cp with local port @port: true when its RS-side tuple was free. */
static bool ip_vs_fnat_lport_take(struct ip_vs_conn *cp,
				  struct ip_vs_laddr *laddr, u32 port)
{
	cp->lport = htons(port);
	if (ip_vs_fnat_hash_unique(cp))
		return true;
	atomic64_inc(&laddr->port_conflict);
	return false;
}

/**
 * ip_vs_fnat_try_laddr - a local port of @laddr for @cp
 * @cp: the new connection
 * @laddr: the local address to try
 * @tries: at most this many tuples are probed (fullnat_lport_tries)
 *
 * A port whose bit is clear in the address's map is almost always free:
 * the first one after a random start is taken and its bit set, so the
 * work does not grow with the number of sessions.  The table is the
 * judge (a session that got its port without a bit, below, may hold the
 * tuple): a refused port gets its bit back.  When every port of the
 * range has its bit, a few random ports are probed, for a real server
 * whose tuple with them is still free; those sessions own no bit.
 */
static bool ip_vs_fnat_try_laddr(struct ip_vs_conn *cp,
				 struct ip_vs_laddr *laddr, u32 tries)
{
	struct ip_vs_fnat_lrange r;
	u32 port, from, span;

	ip_vs_fnat_lport_range(cp->ipvs->ext, &r);
	span = r.end - r.min;
	from = r.min + get_random_u32_below(span);
	ip_vs_addr_copy(cp->af, &cp->laddr, &laddr->addr);
	for (; tries; tries--) {
		port = ip_vs_fnat_lport_free(laddr->ports, &r, from);
		if (port >= r.end)
			break;		/* every bit set */
		from = port + 1 < r.end ? port + 1 : r.min;
		if (test_and_set_bit(port, laddr->ports))
			continue;	/* another CPU took it meanwhile */
		if (ip_vs_fnat_lport_take(cp, laddr, port)) {
			ip_vs_fnat_seq_flags(&cp->fnat, IP_VS_FNAT_LPORT_OWNED,
					     0);
			return true;
		}
		clear_bit(port, laddr->ports);
	}
	for (tries = min_t(u32, tries, IP_VS_FNAT_LPORT_RANDOM); tries; tries--)
		if (ip_vs_fnat_lport_take(cp, laddr,
					  r.min + get_random_u32_below(span)))
			return true;
	return false;
}

/**
 * ip_vs_fnat_conn_bind - give a new FULLNAT connection its local address
 * @cp: a connection just bound to its dest, not yet visible anywhere
 * @p: the parameters it was created from (a synced one's carry the
 *     master's FULLNAT and SYNPROXY state, see ip_vs_fnat_sync.c)
 *
 * Called by ip_vs_conn_new() for every connection, after
 * ip_vs_bind_dest(): the forwarding method is the one ip_vs_bind_dest()
 * read once from the dest into cp->flags, so the session, its transmitter
 * and its expiry agree whatever the dest says a moment later.  A synced
 * connection takes the master's local address and port.  Otherwise, for
 * FULLNAT, picks the service's local addresses round robin and a free
 * local port of one of them; the connection then holds a reference on the address and is
 * in the RS-side table.  Returns 0, or a negative errno when the
 * connection must not be created (no local address, ports exhausted,
 * unsupported combination; never for a template); the failure is counted
 * and existing connections are not affected.
 */
int ip_vs_fnat_conn_bind(struct ip_vs_conn *cp,
			 const struct ip_vs_conn_param *p)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_dest *dest = cp->dest;
	struct ip_vs_service *svc;
	struct ip_vs_laddr *laddr = NULL;
	u32 budget = READ_ONCE(ipvs->ext->fnat_lport_tries);
	unsigned int n, i, per_laddr;

	/* unhashed: what ip_vs_fnat_conn_expire() has nothing to release */
	INIT_HLIST_NODE(&cp->l_list);
	if (cp->flags & IP_VS_CONN_F_TEMPLATE)
		return 0;
	cp->local = NULL;
	/* synced: the master's local address, port and sequence state */
	if (cp->flags & IP_VS_CONN_F_SYNC)
		return ip_vs_fnat_sync_bind(cp, p->fnat_sync);
	if (!ip_vs_conn_fnat(cp))
		return 0;
	/* One-packet connections have no RS side we could keep */
	if ((cp->flags & IP_VS_CONN_F_ONE_PACKET) || !dest ||
	    cp->daf != cp->af ||
	    (cp->protocol != IPPROTO_TCP && cp->protocol != IPPROTO_UDP))
		return -EPROTONOSUPPORT;

	rcu_read_lock();
	svc = rcu_dereference(dest->svc);
	n = svc ? READ_ONCE(svc->num_laddrs) : 0;
	/* The budget of probes is shared by the addresses, tried in turn
	 * (as many as it allows): at most fullnat_lport_tries in all
	 */
	per_laddr = max(budget / max(n, 1U), 1U);
	for (i = 0; i < min(n, budget); i++) {
		laddr = ip_vs_laddr_next(svc, laddr);
		if (!laddr)
			break;
		if (ip_vs_fnat_try_laddr(cp, laddr, per_laddr)) {
			rcu_read_unlock();
			atomic_inc(&laddr->conn_counts);
			cp->local = laddr;
			return 0;
		}
	}
	rcu_read_unlock();
	if (laddr)
		ip_vs_laddr_put(laddr);
	IP_VS_EXT_INC(ipvs, n ? IP_VS_EXT_FNAT_LPORT_EXHAUSTED :
				IP_VS_EXT_FNAT_NO_LADDR);
	return -EADDRNOTAVAIL;
}

/**
 * ip_vs_fnat_conn_expire - release what a FULLNAT connection holds
 * @cp: a connection that ip_vs_conn_expire() has just unlinked
 *
 * Sends the RSTs of conn_expire_tcp_rst first (FULLNAT and NAT), while the
 * connection still knows its sequence numbers and before an application
 * helper is unbound from it.  What is released is what
 * ip_vs_fnat_conn_bind() took: a place in the RS-side table, the local
 * port's bit and the local address, whatever cp->flags say by now.
 */
void ip_vs_fnat_conn_expire(struct ip_vs_conn *cp)
{
	struct ip_vs_laddr *laddr;

	if (IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_MASQ &&
	    cp->protocol == IPPROTO_TCP)
		ip_vs_nat_tcp_expire(cp);
	if (hlist_unhashed(&cp->l_list))
		return;
	laddr = cp->local;
	if (cp->protocol == IPPROTO_TCP)
		ip_vs_fnat_tcp_expire(cp);
	ip_vs_fnat_unhash(cp);
	if (READ_ONCE(cp->fnat.flags) & IP_VS_FNAT_LPORT_OWNED)
		clear_bit(ntohs(cp->lport), laddr->ports);
	cp->local = NULL;
	atomic_dec(&laddr->conn_counts);
	ip_vs_laddr_put(laddr);
}

/**
 * ip_vs_fnat_conn_reuse - may a new SYN replace this closing connection?
 * @cp: a connection that the upstream reuse logic would reschedule
 *
 * For FULLNAT connections fullnat_conn_reused_entry decides, and every
 * reuse is counted by the state it found the connection in.
 */
bool ip_vs_fnat_conn_reuse(struct ip_vs_conn *cp)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	enum ip_vs_ext_stat item;

	if (!ip_vs_conn_fnat(cp))
		return true;
	if (!READ_ONCE(ipvs->ext->fnat_conn_reused))
		return false;
	switch (cp->state) {
	case IP_VS_TCP_S_CLOSE:
		item = IP_VS_EXT_FNAT_CONN_REUSED_CLOSE;
		break;
	case IP_VS_TCP_S_TIME_WAIT:
		item = IP_VS_EXT_FNAT_CONN_REUSED_TIMEWAIT;
		break;
	case IP_VS_TCP_S_FIN_WAIT:
		item = IP_VS_EXT_FNAT_CONN_REUSED_FINWAIT;
		break;
	case IP_VS_TCP_S_CLOSE_WAIT:
		item = IP_VS_EXT_FNAT_CONN_REUSED_CLOSEWAIT;
		break;
	case IP_VS_TCP_S_LAST_ACK:
		item = IP_VS_EXT_FNAT_CONN_REUSED_LASTACK;
		break;
	default:
		item = IP_VS_EXT_FNAT_CONN_REUSED_ESTAB;
		break;
	}
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_FNAT_CONN_REUSED);
	IP_VS_EXT_INC(ipvs, item);
	return true;
}

/**
 * ip_vs_fnat_dest_check - can this real server be a FULLNAT one?
 * @svc: the virtual service
 * @udest: the real server as userspace configures it
 *
 * FULLNAT keeps a real-server side for every session: TCP and UDP (or a
 * firewall-mark service), the service's address family, and no one-packet
 * scheduling.  Returns 0 or the errno userspace reports.
 */
int ip_vs_fnat_dest_check(const struct ip_vs_service *svc,
			  const struct ip_vs_dest_user_kern *udest)
{
	if ((udest->conn_flags & IP_VS_CONN_F_FWD_MASK) != IP_VS_CONN_F_FULLNAT)
		return 0;
	if (!svc->fwmark && svc->protocol != IPPROTO_TCP &&
	    svc->protocol != IPPROTO_UDP) {
		pr_err("FULLNAT: only TCP and UDP services\n");
		return -EPROTONOSUPPORT;
	}
	if (udest->af != svc->af) {
		pr_err("FULLNAT: real server and service of one address family\n");
		return -EAFNOSUPPORT;
	}
	if (svc->flags & IP_VS_SVC_F_ONEPACKET) {
		pr_err("FULLNAT: not with one-packet scheduling\n");
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------- translation */

static void ip_vs_fnat_csum_addr(struct sk_buff *skb, int af, __sum16 *check,
				 const union nf_inet_addr *from,
				 const union nf_inet_addr *to)
{
	if (af == AF_INET6)
		inet_proto_csum_replace16(check, skb, from->ip6, to->ip6, true);
	else
		inet_proto_csum_replace4(check, skb, from->ip, to->ip, true);
}

/* Fix the L4 checksum after addresses and ports were rewritten: the pseudo
 * header only for CHECKSUM_PARTIAL, everything when options changed,
 * incrementally otherwise.
 */
static void ip_vs_fnat_l4_csum(struct sk_buff *skb, int af, u8 proto,
			       unsigned int l4off, __sum16 *check,
			       const union nf_inet_addr *osaddr,
			       const union nf_inet_addr *odaddr,
			       __be16 osport, __be16 odport,
			       const struct ip_vs_fnat_csum *csum)
{
	const union nf_inet_addr *saddr, *daddr;
	unsigned int len = skb->len - l4off;
	__be16 *ports = (__be16 *)(skb->data + l4off);
	union nf_inet_addr s, d;
	__wsum sum;

	ip_vs_fnat_addrs(skb, af, &s, &d);
	saddr = &s;
	daddr = &d;
	if (proto == IPPROTO_UDP && af == AF_INET && !*check)
		return;		/* no UDP checksum */
	if (skb->ip_summed == CHECKSUM_PARTIAL) {
		if (af == AF_INET6)
			*check = ~csum_ipv6_magic(&saddr->in6, &daddr->in6,
						  len, proto, 0);
		else
			*check = ~csum_tcpudp_magic(saddr->ip, daddr->ip,
						    len, proto, 0);
		return;
	}
	if (csum->full) {
		*check = 0;
		sum = skb_checksum(skb, l4off, len, 0);
		if (af == AF_INET6)
			*check = csum_ipv6_magic(&saddr->in6, &daddr->in6, len,
						 proto, sum);
		else
			*check = csum_tcpudp_magic(saddr->ip, daddr->ip, len,
						   proto, sum);
		if (proto == IPPROTO_UDP && !*check)
			*check = CSUM_MANGLED_0;
		skb->ip_summed = CHECKSUM_NONE;
		return;
	}
	ip_vs_fnat_csum_addr(skb, af, check, osaddr, saddr);
	ip_vs_fnat_csum_addr(skb, af, check, odaddr, daddr);
	inet_proto_csum_replace2(check, skb, osport, ports[0], false);
	inet_proto_csum_replace2(check, skb, odport, ports[1], false);
	if (proto == IPPROTO_UDP && !*check)
		*check = CSUM_MANGLED_0;
}

static __sum16 *ip_vs_fnat_l4_check(struct sk_buff *skb, u8 proto,
				    unsigned int l4off)
{
	if (proto == IPPROTO_TCP)
		return &((struct tcphdr *)(skb->data + l4off))->check;
	return &((struct udphdr *)(skb->data + l4off))->check;
}

static unsigned int ip_vs_fnat_l4_hlen(u8 proto)
{
	return proto == IPPROTO_TCP ? sizeof(struct tcphdr) :
				      sizeof(struct udphdr);
}

static void ip_vs_fnat_set_addrs(struct sk_buff *skb, int af,
				 const union nf_inet_addr *saddr,
				 const union nf_inet_addr *daddr)
{
	if (af == AF_INET6) {
		ipv6_hdr(skb)->saddr = saddr->in6;
		ipv6_hdr(skb)->daddr = daddr->in6;
	} else {
		ip_hdr(skb)->saddr = saddr->ip;
		ip_hdr(skb)->daddr = daddr->ip;
		ip_send_check(ip_hdr(skb));
	}
}

/**
 * ip_vs_fnat_mangle - rewrite one packet of a FULLNAT connection
 * @skb: the packet, skb->data at its network header
 * @cp: its connection
 * @l4off: offset of the TCP/UDP header
 * @to_rs: client->RS (else RS->client)
 * @mtu: route MTU towards the RS (client->RS only), for TOA
 *
 * Returns 0, or -1 when the packet must be dropped.
 */
static int ip_vs_fnat_mangle(struct sk_buff *skb, struct ip_vs_conn *cp,
			     unsigned int l4off, bool to_rs, unsigned int mtu)
{
	struct ip_vs_fnat_csum csum = { .full = false };
	union nf_inet_addr osaddr, odaddr;
	u8 proto = cp->protocol;
	__be16 *ports, osport, odport;
	int af = cp->af;

	if (skb_ensure_writable(skb, l4off + ip_vs_fnat_l4_hlen(proto)))
		return -1;
	if (proto == IPPROTO_TCP) {
		unsigned int doff = ((struct tcphdr *)(skb->data + l4off))->doff;

		if (doff < 5 || skb_ensure_writable(skb, l4off + doff * 4))
			return -1;
		if (to_rs) {
			if (ip_vs_fnat_tcp_in(skb, cp, l4off, mtu, &csum) < 0)
				return -1;
		} else if (ip_vs_fnat_tcp_out(skb, cp, l4off, &csum) < 0) {
			return -1;
		}
	}
	ports = (__be16 *)(skb->data + l4off);
	osport = ports[0];
	odport = ports[1];
	ip_vs_fnat_addrs(skb, af, &osaddr, &odaddr);
	if (to_rs) {
		ports[0] = cp->lport;
		ports[1] = cp->dport;
		ip_vs_fnat_set_addrs(skb, af, &cp->laddr, &cp->daddr);
	} else {
		ports[0] = cp->vport;
		ports[1] = cp->cport;
		ip_vs_fnat_set_addrs(skb, af, &cp->vaddr, &cp->caddr);
	}
	ip_vs_fnat_l4_csum(skb, af, proto, l4off,
			   ip_vs_fnat_l4_check(skb, proto, l4off),
			   &osaddr, &odaddr, osport, odport, &csum);
	return 0;
}

/* Hand a translated packet to the output path (LOCAL_OUT, then routing's
 * dst_output), as IPVS's own NAT transmitter does.
 */
static void ip_vs_fnat_send(int pf, struct sk_buff *skb, struct net *net)
{
	skb->ipvs_property = 1;
	ip_vs_notrack(skb);
	if (skb->dev)
		skb_orphan(skb);	/* drop an early-demux socket */
	skb_forward_csum(skb);
	if (skb->dev)
		skb_clear_tstamp(skb);
	NF_HOOK(pf, NF_INET_LOCAL_OUT, net, NULL, skb, NULL,
		skb_dst(skb)->dev, dst_output);
}

/* -------------------------------------------------------- ICMP errors */

/* Where the embedded packet of an ICMP error sits. */
struct ip_vs_fnat_icmp {
	unsigned int	icmp_off;	/* ICMP header */
	unsigned int	inner_off;	/* embedded IP header */
	unsigned int	l4_off;		/* embedded TCP/UDP header */
	u8		proto;		/* embedded protocol */
};

static bool ip_vs_fnat_icmp_is_error(int af, u8 type)
{
	if (af == AF_INET6)
		return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
		       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
	return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
	       type == ICMP_TIME_EXCEEDED;
}

/* Parse an ICMP error whose outer header ends at @icmp_off; the embedded
 * header and 8 bytes of its transport header are made writable.
 */
static int ip_vs_fnat_icmp_parse(struct sk_buff *skb, int af,
				 unsigned int icmp_off,
				 struct ip_vs_fnat_icmp *ic)
{
	u8 type;

	if (skb_ensure_writable(skb, icmp_off + sizeof(struct icmphdr)))
		return -1;
	type = *(u8 *)(skb->data + icmp_off);
	if (!ip_vs_fnat_icmp_is_error(af, type))
		return -1;
	ic->icmp_off = icmp_off;
	ic->inner_off = icmp_off + sizeof(struct icmphdr);
	if (af == AF_INET6) {
		struct ipv6hdr *ip6;
		__be16 frag_off;
		u8 nexthdr;
		int off;

		if (skb_ensure_writable(skb, ic->inner_off + sizeof(*ip6)))
			return -1;
		ip6 = (struct ipv6hdr *)(skb->data + ic->inner_off);
		nexthdr = ip6->nexthdr;
		off = ipv6_skip_exthdr(skb, ic->inner_off + sizeof(*ip6),
				       &nexthdr, &frag_off);
		if (off < 0 || (frag_off & htons(~0x7)))
			return -1;
		ic->l4_off = off;
		ic->proto = nexthdr;
	} else {
		struct iphdr *ip4;

		if (skb_ensure_writable(skb, ic->inner_off + sizeof(*ip4)))
			return -1;
		ip4 = (struct iphdr *)(skb->data + ic->inner_off);
		if (ip4->ihl < 5 || (ip4->frag_off & htons(IP_OFFSET)))
			return -1;
		ic->l4_off = ic->inner_off + ip4->ihl * 4;
		ic->proto = ip4->protocol;
	}
	if (ic->proto != IPPROTO_TCP && ic->proto != IPPROTO_UDP)
		return -1;
	return skb_ensure_writable(skb, ic->l4_off + 8) ? -1 : 0;
}

static void ip_vs_fnat_icmp_inner_addrs(struct sk_buff *skb, int af,
					const struct ip_vs_fnat_icmp *ic,
					const union nf_inet_addr *saddr,
					const union nf_inet_addr *daddr)
{
	if (af == AF_INET6) {
		struct ipv6hdr *ip6 = (void *)(skb->data + ic->inner_off);

		ip6->saddr = saddr->in6;
		ip6->daddr = daddr->in6;
	} else {
		struct iphdr *ip4 = (void *)(skb->data + ic->inner_off);

		ip4->saddr = saddr->ip;
		ip4->daddr = daddr->ip;
		ip_send_check(ip4);
	}
}

/* An ICMP error gets a new checksum once its embedded packet is
 * rewritten: its own must be right first, or a corrupted error would
 * leave the balancer valid (counted in fullnat_csum_error).
 */
static bool ip_vs_fnat_icmp_csum_ok(struct sk_buff *skb, int af,
				    unsigned int icmp_off, struct netns_ipvs *ipvs)
{
	unsigned int len = skb->len - icmp_off;
	__sum16 bad;

	if (skb_csum_unnecessary(skb))
		return true;
	if (af == AF_INET6)
		bad = csum_ipv6_magic(&ipv6_hdr(skb)->saddr,
				      &ipv6_hdr(skb)->daddr, len, IPPROTO_ICMPV6,
				      skb_checksum(skb, icmp_off, len, 0));
	else
		bad = csum_fold(skb_checksum(skb, icmp_off, len, 0));
	if (bad)
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_FNAT_CSUM_ERROR);
	return !bad;
}

/* Recompute the ICMP checksum after the embedded packet changed. */
static void ip_vs_fnat_icmp_csum(struct sk_buff *skb, int af,
				 unsigned int icmp_off)
{
	unsigned int len = skb->len - icmp_off;

	if (af == AF_INET6) {
		struct icmp6hdr *ic6 = (void *)(skb->data + icmp_off);

		ic6->icmp6_cksum = 0;
		ic6->icmp6_cksum = csum_ipv6_magic(&ipv6_hdr(skb)->saddr,
						   &ipv6_hdr(skb)->daddr, len,
						   IPPROTO_ICMPV6,
						   skb_checksum(skb, icmp_off,
								len, 0));
	} else {
		struct icmphdr *ic4 = (void *)(skb->data + icmp_off);

		ic4->checksum = 0;
		ic4->checksum = csum_fold(skb_checksum(skb, icmp_off, len, 0));
	}
	skb->ip_summed = CHECKSUM_UNNECESSARY;
}

/* An ICMP "too big" for the client leaves room for the TOA we add. */
static void ip_vs_fnat_icmp_mtu_for_client(struct sk_buff *skb, int af,
					   const struct ip_vs_fnat_icmp *ic)
{
	unsigned int toa = ip_vs_toa_len(af);

	if (ic->proto != IPPROTO_TCP)
		return;
	if (af == AF_INET6) {
		struct icmp6hdr *h = (void *)(skb->data + ic->icmp_off);
		u32 mtu = ntohl(h->icmp6_mtu);

		if (h->icmp6_type == ICMPV6_PKT_TOOBIG && mtu > IPV6_MIN_MTU + toa)
			h->icmp6_mtu = htonl(mtu - toa);
	} else {
		struct icmphdr *h = (void *)(skb->data + ic->icmp_off);
		u16 mtu = ntohs(h->un.frag.mtu);

		if (h->type == ICMP_DEST_UNREACH &&
		    h->code == ICMP_FRAG_NEEDED && mtu > 68 + toa)
			h->un.frag.mtu = htons(mtu - toa);
	}
}

/* Length of the outer network headers of a locally received packet. */
static int ip_vs_fnat_outer_len(struct sk_buff *skb, int af)
{
	__be16 frag_off;
	u8 nexthdr;

	if (af != AF_INET6)
		return ip_hdrlen(skb);
	nexthdr = ipv6_hdr(skb)->nexthdr;
	return ipv6_skip_exthdr(skb, sizeof(struct ipv6hdr), &nexthdr,
				&frag_off);
}

/**
 * ip_vs_fnat_icmp_xmit - an ICMP error from the client side to the RS
 * @skb: ICMP error for a VIP -> client packet of @cp
 * @cp: the connection the embedded packet belongs to
 * @ipvsh: the embedded header, as upstream's ICMP handling parsed it
 *
 * Reached through upstream's ip_vs_icmp_xmit() and packet_xmit: the
 * error, e.g. "fragmentation needed" from a router on the client's path,
 * is rewritten as if it concerned the RS -> laddr packet and sent to the
 * real server, which adapts its path MTU to the local address.
 */
static int ip_vs_fnat_icmp_xmit(struct sk_buff *skb, struct ip_vs_conn *cp,
				struct ip_vs_iphdr *ipvsh)
{
	struct ip_vs_fnat_icmp ic;
	__be16 *ports;
	int af = cp->af;
	int icmp_off;

	if (!cp->local || ip_vs_fnat_route_to_rs(skb, cp, ipvsh))
		goto drop;
	icmp_off = ip_vs_fnat_outer_len(skb, af);
	if (icmp_off < 0 ||
	    !ip_vs_fnat_icmp_csum_ok(skb, af, icmp_off, cp->ipvs) ||
	    skb_cow(skb, skb_dst(skb)->dev->hard_header_len) ||
	    ip_vs_fnat_icmp_parse(skb, af, icmp_off, &ic) ||
	    ic.proto != cp->protocol)
		goto drop;
	/* Embedded: VIP:vport -> client:cport becomes RS:dport -> laddr:lport */
	ip_vs_fnat_icmp_inner_addrs(skb, af, &ic, &cp->daddr, &cp->laddr);
	ports = (__be16 *)(skb->data + ic.l4_off);
	ports[0] = cp->dport;
	ports[1] = cp->lport;
	/* SYNPROXY: the RS numbers its data without our offset */
	ip_vs_synproxy_icmp_seq(cp, (__be32 *)(ports + 2));
	ip_vs_fnat_set_addrs(skb, af, &cp->laddr, &cp->daddr);
	ip_vs_fnat_icmp_csum(skb, af, ic.icmp_off);
	ip_vs_fnat_send(af == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4, skb,
			cp->ipvs->net);
	return NF_STOLEN;

drop:
	kfree_skb(skb);
	return NF_STOLEN;
}

/* ------------------------------------------------- client -> real server */

static int ip_vs_fnat_xmit_af(struct sk_buff *skb, struct ip_vs_conn *cp,
			      struct ip_vs_iphdr *ipvsh, int pf)
{
	int local;

	/* ICMP errors about the session come here through upstream's
	 * ip_vs_icmp_xmit(), with @ipvsh describing the embedded packet.
	 */
	if (ip_vs_iph_icmp(ipvsh))
		return ip_vs_fnat_icmp_xmit(skb, cp, ipvsh);
	if (unlikely(!cp->local || ipvsh->fragoffs))
		goto tx_error;
	local = ip_vs_fnat_route_to_rs(skb, cp, ipvsh);
	if (local)	/* error, or a real server on this host */
		goto tx_error;
	if (skb_cow(skb, skb_dst(skb)->dev->hard_header_len +
		    ip_vs_toa_len(cp->af)))
		goto tx_error;
	if (ip_vs_fnat_mangle(skb, cp, ipvsh->len, true,
			      dst_mtu(skb_dst(skb))) < 0)
		goto tx_error;
	ip_vs_fnat_send(pf, skb, cp->ipvs->net);
	return NF_STOLEN;

tx_error:
	kfree_skb(skb);
	return NF_STOLEN;
}

/* The packet_xmit of IPv4 FULLNAT connections. */
int ip_vs_fnat_xmit(struct sk_buff *skb, struct ip_vs_conn *cp,
		    struct ip_vs_protocol *pp, struct ip_vs_iphdr *ipvsh)
{
	return ip_vs_fnat_xmit_af(skb, cp, ipvsh, NFPROTO_IPV4);
}

/* The packet_xmit of IPv6 FULLNAT connections. */
int ip_vs_fnat_xmit_v6(struct sk_buff *skb, struct ip_vs_conn *cp,
		       struct ip_vs_protocol *pp, struct ip_vs_iphdr *ipvsh)
{
	return ip_vs_fnat_xmit_af(skb, cp, ipvsh, NFPROTO_IPV6);
}

/* ------------------------------------------------- real server -> client */

/* Route a reply to the client.  In PRE_ROUTING the packet has no route
 * yet; errors towards the RS need its input route, taken on demand.
 */
static int ip_vs_fnat_route_to_client(struct sk_buff *skb,
				      struct ip_vs_conn *cp, struct net *net)
{
	struct dst_entry *dst;

	if (cp->af == AF_INET6) {
		struct flowi6 fl6 = {
			.daddr = cp->caddr.in6,
			.saddr = cp->vaddr.in6,
			.flowi6_mark = skb->mark,
			.flowi6_proto = ipv6_hdr(skb)->nexthdr,
		};

		dst = ip6_route_output(net, NULL, &fl6);
		if (dst->error) {
			dst_release(dst);
			return -1;
		}
	} else {
		struct flowi4 fl4 = {
			.daddr = cp->caddr.ip,
			.saddr = cp->vaddr.ip,
			.flowi4_mark = skb->mark,
			.flowi4_proto = ip_hdr(skb)->protocol,
		};
		struct rtable *rt;

		lvs_flowi4_set_tos(&fl4, ip_hdr(skb));
		rt = ip_route_output_key(net, &fl4);
		if (IS_ERR(rt))
			return -1;
		dst = &rt->dst;
	}
	skb_dst_drop(skb);
	skb_dst_set(skb, dst);
	return 0;
}

/* TTL and MTU towards the client; an ICMP error goes back to the RS. */
static bool ip_vs_fnat_reply_fits(struct sk_buff *skb, int af)
{
	unsigned int mtu = dst_mtu(skb_dst(skb));

	if (af == AF_INET6) {
		if (ipv6_hdr(skb)->hop_limit <= 1) {
			icmpv6_send(skb, ICMPV6_TIME_EXCEED,
				    ICMPV6_EXC_HOPLIMIT, 0);
			return false;
		}
		if (skb->len > mtu && !skb_is_gso(skb)) {
			icmpv6_send(skb, ICMPV6_PKT_TOOBIG, 0, mtu);
			return false;
		}
		ipv6_hdr(skb)->hop_limit--;
		return true;
	}
	if (ip_hdr(skb)->ttl <= 1 ||
	    (ip_hdr(skb)->frag_off & htons(IP_DF) && skb->len > mtu &&
	     !(skb_is_gso(skb) && skb_gso_validate_network_len(skb, mtu)))) {
		const struct iphdr *iph = ip_hdr(skb);
		bool ttl = iph->ttl <= 1;

		/* icmp_send() answers along the packet's input route */
		skb_dst_drop(skb);
		if (!ip_route_input_noref(skb, iph->daddr, iph->saddr,
					  iph->tos, skb->dev)) {
			if (ttl)
				icmp_send(skb, ICMP_TIME_EXCEEDED,
					  ICMP_EXC_TTL, 0);
			else
				icmp_send(skb, ICMP_DEST_UNREACH,
					  ICMP_FRAG_NEEDED, htonl(mtu));
		}
		return false;
	}
	ip_decrease_ttl(ip_hdr(skb));
	return true;
}

static unsigned int ip_vs_fnat_reply(struct sk_buff *skb,
				     struct ip_vs_conn *cp,
				     unsigned int l4off, struct net *net)
{
	int af = cp->af;

	if (skb_ensure_writable(skb, l4off + ip_vs_fnat_l4_hlen(cp->protocol)) ||
	    ip_vs_fnat_route_to_client(skb, cp, net) ||
	    !ip_vs_fnat_reply_fits(skb, af) ||
	    skb_cow(skb, skb_dst(skb)->dev->hard_header_len))
		goto drop;
	ip_vs_conn_reply_account(cp, skb, l4off);
	if (ip_vs_fnat_mangle(skb, cp, l4off, false, 0) < 0)
		goto drop;
	/* SYNPROXY: the RS's handshake, or its numbers for the client */
	if (unlikely(cp->flags & IP_VS_CONN_F_SYNPROXY) &&
	    ip_vs_synproxy_out(cp, skb, l4off) != IP_VS_EXT_PASS) {
		ip_vs_conn_put(cp);
		return NF_STOLEN;
	}
	ip_vs_fnat_send(af == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4, skb, net);
	ip_vs_conn_put(cp);
	return NF_STOLEN;

drop:
	ip_vs_conn_put(cp);
	kfree_skb(skb);
	return NF_STOLEN;
}

/* An ICMP error from the RS side about a laddr -> RS packet. */
static unsigned int ip_vs_fnat_reply_icmp(struct sk_buff *skb, int af,
					  unsigned int icmp_off,
					  struct netns_ipvs *ipvs)
{
	struct ip_vs_fnat_icmp ic;
	union nf_inet_addr isaddr, idaddr;
	struct ip_vs_fnat_key k;
	struct ip_vs_conn *cp;
	__be16 *ports;
	__be32 *seq;

	if (ip_vs_fnat_icmp_parse(skb, af, icmp_off, &ic))
		return NF_ACCEPT;
	if (af == AF_INET6) {
		struct ipv6hdr *ip6 = (void *)(skb->data + ic.inner_off);

		isaddr.in6 = ip6->saddr;
		idaddr.in6 = ip6->daddr;
	} else {
		struct iphdr *ip4 = (void *)(skb->data + ic.inner_off);

		isaddr.ip = ip4->saddr;
		idaddr.ip = ip4->daddr;
	}
	ports = (__be16 *)(skb->data + ic.l4_off);
	/* Embedded is laddr:lport -> RS:dport */
	k = (struct ip_vs_fnat_key){ .ipvs = ipvs, .laddr = &isaddr,
		.raddr = &idaddr, .lport = ports[0], .rport = ports[1],
		.af = af, .protocol = ic.proto };
	cp = ip_vs_fnat_lookup(&k);
	if (!cp)
		return NF_ACCEPT;
	if (!ip_vs_fnat_icmp_csum_ok(skb, af, icmp_off, ipvs) ||
	    ip_vs_fnat_route_to_client(skb, cp, ipvs->net) ||
	    !ip_vs_fnat_reply_fits(skb, af) ||
	    skb_cow(skb, skb_dst(skb)->dev->hard_header_len))
		goto drop;
	/* skb_cow() may have moved the data */
	ports = (__be16 *)(skb->data + ic.l4_off);
	ip_vs_fnat_icmp_inner_addrs(skb, af, &ic, &cp->caddr, &cp->vaddr);
	ports[0] = cp->cport;
	ports[1] = cp->vport;
	if (ic.proto == IPPROTO_TCP &&
	    (cp->fnat.flags & IP_VS_FNAT_SEQ_INIT)) {
		/* the client matches errors by its own sequence numbers */
		seq = (__be32 *)(ports + 2);
		*seq = htonl(ntohl(*seq) - cp->fnat.delta);
	}
	ip_vs_fnat_icmp_mtu_for_client(skb, af, &ic);
	ip_vs_fnat_set_addrs(skb, af, &cp->vaddr, &cp->caddr);
	ip_vs_fnat_icmp_csum(skb, af, ic.icmp_off);
	ip_vs_fnat_send(af == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4, skb,
			ipvs->net);
	ip_vs_conn_put(cp);
	return NF_STOLEN;

drop:
	ip_vs_conn_put(cp);
	kfree_skb(skb);
	return NF_STOLEN;
}

/* The transport header of an unfragmented packet, or the IPv4 datagram
 * reassembled (IPVS does the same in its LOCAL_IN hooks).
 */
static int ip_vs_fnat_reply_header(struct sk_buff **pskb, int af, u8 *proto,
				   struct net *net)
{
	struct sk_buff *skb = *pskb;

	if (af == AF_INET6) {
		__be16 frag_off;
		int off;

		*proto = ipv6_hdr(skb)->nexthdr;
		off = ipv6_skip_exthdr(skb, sizeof(struct ipv6hdr), proto,
				       &frag_off);
		/* reassembled by nf_defrag_ipv6 before us, if at all */
		return off < 0 || frag_off ? -1 : off;
	}
	if (ip_is_fragment(ip_hdr(skb))) {
		int err;

		local_bh_disable();
		err = ip_defrag(net, skb, IP_DEFRAG_VS_OUT);
		local_bh_enable();
		if (err) {
			*pskb = NULL;	/* queued, or freed */
			return -1;
		}
		ip_send_check(ip_hdr(skb));
	}
	*proto = ip_hdr(skb)->protocol;
	return ip_hdrlen(skb);
}

/**
 * ip_vs_fnat_reply_hook - PRE_ROUTING: replies from FULLNAT real servers
 * @priv: unused
 * @skb: any received packet
 * @state: hook state
 *
 * Costs one lookup per packet in namespaces with local addresses (or
 * sessions still using deleted ones), nothing elsewhere.
 */
unsigned int ip_vs_fnat_reply_hook(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	struct netns_ipvs *ipvs = net_ipvs(state->net);
	union nf_inet_addr saddr, daddr;
	struct ip_vs_fnat_key k;
	struct ip_vs_conn *cp;
	__be16 _ports[2], *ports;
	int af = state->pf == NFPROTO_IPV6 ? AF_INET6 : AF_INET;
	int l4off;
	u8 proto;

	if (!ipvs || !ipvs->ext || !atomic_read(&ipvs->ext->num_laddrs) ||
	    skb->pkt_type != PACKET_HOST || skb->ipvs_property)
		return NF_ACCEPT;
	l4off = ip_vs_fnat_reply_header(&skb, af, &proto, state->net);
	if (!skb)
		return NF_STOLEN;
	if (l4off < 0)
		return NF_ACCEPT;
	if (proto == (af == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP))
		return ip_vs_fnat_reply_icmp(skb, af, l4off, ipvs);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return NF_ACCEPT;
	ports = skb_header_pointer(skb, l4off, sizeof(_ports), _ports);
	if (!ports)
		return NF_ACCEPT;
	ip_vs_fnat_addrs(skb, af, &saddr, &daddr);
	k = (struct ip_vs_fnat_key){ .ipvs = ipvs, .laddr = &daddr,
		.raddr = &saddr, .lport = ports[1], .rport = ports[0],
		.af = af, .protocol = proto };
	cp = ip_vs_fnat_lookup(&k);
	if (!cp)
		return NF_ACCEPT;
	return ip_vs_fnat_reply(skb, cp, l4off, state->net);
}

/* ----------------------------------------------------------- set up */

int ip_vs_fnat_init(void)
{
	unsigned int size = ip_vs_conn_tab_size;
	unsigned int i;

	ip_vs_fnat_tab = kvmalloc_array(size, sizeof(*ip_vs_fnat_tab),
					GFP_KERNEL);
	if (!ip_vs_fnat_tab)
		return -ENOMEM;
	for (i = 0; i < size; i++)
		INIT_HLIST_HEAD(&ip_vs_fnat_tab[i]);
	for (i = 0; i < IP_VS_FNAT_LOCKS; i++)
		spin_lock_init(&ip_vs_fnat_locks[i]);
	ip_vs_fnat_tab_mask = size - 1;
	get_random_bytes(&ip_vs_fnat_rnd, sizeof(ip_vs_fnat_rnd));
	return 0;
}

void ip_vs_fnat_cleanup(void)
{
	kvfree(ip_vs_fnat_tab);
}

/**
 * ip_vs_fnat_seq_local - the local side of a session in /proc/net/ip_vs_conn
 * @cp: any connection
 * @buf: output, appended to the PE columns; "" for all but FULLNAT
 * @len: size of @buf
 * @no_pe: the line has no persistence engine columns
 *
 * FULLNAT lines end with the local address and port, after the PE columns
 * ("- -" when there is no engine), so parsers of the upstream columns,
 * stock ipvsadm among them, read the other fields unchanged.
 */
void ip_vs_fnat_seq_local(const struct ip_vs_conn *cp, char *buf, size_t len,
			  bool no_pe)
{
	const char *pe = no_pe ? " - -" : "";

	buf[0] = '\0';
	if (!ip_vs_conn_fnat(cp) || !cp->local)
		return;
	if (cp->af == AF_INET6)
		snprintf(buf, len, "%s %pI6 %04X", pe, &cp->laddr.in6,
			 ntohs(cp->lport));
	else
		snprintf(buf, len, "%s %08X %04X", pe, ntohl(cp->laddr.ip),
			 ntohs(cp->lport));
}
