/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private interfaces between our FULLNAT and SYNPROXY files (ip_vs_ext.c,
 * ip_vs_laddr.c, ip_vs_fnat.c, ip_vs_fnat_tcp.c, ip_vs_synproxy.c).  The
 * upstream files see only <net/ip_vs_ext.h>.
 */
#ifndef IP_VS_FNAT_H
#define IP_VS_FNAT_H

#include <linux/tcp.h>
#include <net/tcp.h>
#include <net/ip_vs.h>

#define IP_VS_EXT_INC(ipvs, item) \
	this_cpu_inc((ipvs)->ext->stats->cnt[(item)])

/* TOA: kind 254, then the client's port and address (abi.md). */
#define IP_VS_TOA_KIND		254
#define IP_VS_TOA_LEN_V4	8
#define IP_VS_TOA_LEN_V6	20

static inline bool ip_vs_conn_fnat(const struct ip_vs_conn *cp)
{
	return IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_FULLNAT;
}

/* Move the next-sequence mark @nxt of @fs (valid once flag @bit is set)
 * forward to @end, never back: packets of one direction of a session may
 * be handled on two CPUs at once, and a mark moved back would make
 * SYNPROXY's ack-storm check drop the client's honest ACKs.
 */
static inline void ip_vs_fnat_seq_advance(struct ip_vs_fnat_seq *fs, u32 *nxt,
					  u32 bit, u32 end)
{
	u32 old, seen;

	/* acquire: a set flag comes with its mark (set after it) */
	if (!(smp_load_acquire(&fs->flags) & bit)) {
		WRITE_ONCE(*nxt, end);
		ip_vs_fnat_seq_flags(fs, bit, 0);
		/* a second CPU may have been here too: converge on the max */
	}
	old = READ_ONCE(*nxt);
	while (after(end, old)) {
		seen = cmpxchg(nxt, old, end);
		if (seen == old)
			return;
		old = seen;
	}
}

/*
 * The sequence number just after the segment of @th (SYN and FIN count
 * one each); @thoff is the TCP header's offset from skb->data.
 */
static inline u32 ip_vs_tcp_end_seq(const struct sk_buff *skb,
				    const struct tcphdr *th, unsigned int thoff)
{
	return ntohl(th->seq) + th->syn + th->fin +
	       (skb->len - thoff - th->doff * 4);
}

static inline unsigned int ip_vs_toa_len(int af)
{
	return af == AF_INET6 ? IP_VS_TOA_LEN_V6 : IP_VS_TOA_LEN_V4;
}

/* ip_vs_fnat.c */
int ip_vs_fnat_init(void);
void ip_vs_fnat_cleanup(void);

/* ip_vs_vaddr.c */
int ip_vs_vaddr_net_init(struct ip_vs_ext_net *ext);
void ip_vs_vaddr_net_cleanup(struct ip_vs_ext_net *ext);

/* ip_vs_synproxy.c: the RS's numbering in the embedded TCP sequence
 * number of an ICMP error from the client side (FULLNAT and NAT)
 */
void ip_vs_synproxy_icmp_seq(const struct ip_vs_conn *cp, __be32 *seq);

/* ip_vs_laddr.c */
struct ip_vs_laddr *ip_vs_laddr_next(struct ip_vs_service *svc,
				     struct ip_vs_laddr *prev);
void ip_vs_laddr_put(struct ip_vs_laddr *laddr);
struct ip_vs_laddr *ip_vs_laddr_get(struct ip_vs_service *svc,
				    const union nf_inet_addr *addr);

/* ip_vs_fnat.c: insert @cp in the RS-side table unless its tuple is taken */
bool ip_vs_fnat_hash_unique(struct ip_vs_conn *cp);

/* ip_vs_fnat_sync.c: a synced connection's FULLNAT and SYNPROXY state */
int ip_vs_fnat_sync_bind(struct ip_vs_conn *cp,
			 const struct ip_vs_fnat_sync *fs);

/* ip_vs_fnat_tcp.c: TCP of a FULLNAT connection.  @thoff is the offset of
 * the TCP header from skb->data (the network header); the headers up to
 * the end of the TCP options are writable.  Addresses and ports are not
 * touched here; checksums are left for ip_vs_fnat_l4_csum().
 */
struct ip_vs_fnat_csum {
	bool	full;		/* recompute the whole L4 checksum */
};

void ip_vs_tcp_options(struct tcphdr *th,
		       bool (*fn)(u8 *opt, u8 len, void *arg), void *arg);
void ip_vs_tcp_sack_sub(struct sk_buff *skb, struct tcphdr *th, u32 delta,
			bool full);
int ip_vs_fnat_tcp_in(struct sk_buff *skb, struct ip_vs_conn *cp,
		      unsigned int thoff, unsigned int mtu,
		      struct ip_vs_fnat_csum *csum);
int ip_vs_fnat_tcp_out(struct sk_buff *skb, struct ip_vs_conn *cp,
		       unsigned int thoff, struct ip_vs_fnat_csum *csum);
void ip_vs_fnat_tcp_expire(struct ip_vs_conn *cp);
void ip_vs_nat_tcp_expire(struct ip_vs_conn *cp);

#endif /* IP_VS_FNAT_H */
