/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs-toolkit extensions of IPVS: FULLNAT, local address pools, extended
 * counters and sysctls.
 *
 * <net/ip_vs.h> includes this header before its own definitions, so only
 * plain types and prototypes live here.  The upstream files call into our
 * files through the functions below and nothing else; everything else of
 * ours is private to net/netfilter/ipvs/ip_vs_*ext*, *laddr*, *fnat*.
 */
#ifndef _NET_IP_VS_EXT_H
#define _NET_IP_VS_EXT_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/rhashtable-types.h>
#include <linux/netfilter.h>
#include <lvs/compat.h>

struct sk_buff;
struct genl_info;
struct genl_family;
struct netlink_callback;
struct nlattr;
struct netns_ipvs;
struct ip_vs_conn;
struct ip_vs_conn_param;
struct ip_vs_dest;
struct ip_vs_service;
struct ip_vs_dest_user_kern;
struct ip_vs_service_user_kern;
struct ip_vs_protocol;
struct ip_vs_iphdr;
struct ip_vs_proto_data;
struct nf_hook_state;

/* Sequence state of a FULLNAT connection.  It shares storage with the
 * in_seq/out_seq pair that only NAT application helpers use (helpers are
 * never bound to FULLNAT connections), so FULLNAT costs no extra bytes.
 */
struct ip_vs_fnat_seq {
	__u32	delta;		/* our ISN towards the RS - client's ISN */
	__u32	rs_isn;		/* RS's ISN, from its SYN/ACK */
	__u32	c_nxt;		/* next client seq (client space), for RST */
	__u32	r_nxt;		/* next RS seq (RS space), for RST */
	__u32	flags;		/* IP_VS_FNAT_SEQ_*, IP_VS_SP_* */
	__u32	sp_delta;	/* SYNPROXY: our ISN to the client - RS's ISN */
};

#define IP_VS_FNAT_SEQ_INIT	0x0001	/* delta is set (client SYN seen) */
#define IP_VS_FNAT_SEQ_RS_ISN	0x0002	/* rs_isn is known */
#define IP_VS_FNAT_SEQ_C_NXT	0x0004	/* c_nxt is valid */
#define IP_VS_FNAT_SEQ_R_NXT	0x0008	/* r_nxt is valid */
#define IP_VS_FNAT_SEQ_TOA_OK	0x0010	/* TOA reached the RS */
/* FULLNAT: the session set its local port's bit in its local address's
 * map of ports in use, and clears it at expiry (not a sequence state:
 * kept when the sequence state starts afresh)
 */
#define IP_VS_FNAT_LPORT_OWNED	0x0020

/* SYNPROXY state of a connection, in ip_vs_fnat_seq.flags (used by NAT
 * and FULLNAT connections carrying IP_VS_CONN_F_SYNPROXY; a NAT one has no
 * other user of this storage, see ip_vs_synproxy.c).
 */
#define IP_VS_SP_HS		0x0100	/* handshake with the RS pending */
#define IP_VS_SP_EST		0x0200	/* sp_delta is set */
#define IP_VS_SP_DEAD		0x0400	/* gave up: RS silent or refused */
#define IP_VS_SP_WIN		0x0800	/* rewrite the RS's window */
#define IP_VS_SP_WS_SHIFT	12	/* 4 bits: scale we told the client */
#define IP_VS_SP_RSWS_SHIFT	16	/* 4 bits: the RS's scale */
#define IP_VS_SP_STORM_SHIFT	24	/* 8 bits: suspicious ACKs in a row */
#define IP_VS_SP_MASK		0xffffff00	/* all of SYNPROXY's bits */

/* Set and clear bits of a session's flags word.  Packets of the two
 * directions and the handshake timer update it on different CPUs, so
 * every change is one atomic read-modify-write.
 */
static inline void ip_vs_fnat_seq_flags(struct ip_vs_fnat_seq *fs, u32 set,
					u32 clear)
{
	u32 old, new;

	do {
		old = READ_ONCE(fs->flags);
		new = (old & ~clear) | set;
	} while (cmpxchg(&fs->flags, old, new) != old);
}

/* The FULLNAT and SYNPROXY state of a sync message's entry, as a backup
 * read it (ip_vs_fnat_sync.c has the wire format).  IP_VS_SYNC_OPT_FNAT
 * is the type of its sync v1 parameter: mandatory (no IPVS_OPT_F_PARAM
 * bit), so backups without our extensions skip the entry.
 */
#define IP_VS_SYNC_OPT_FNAT	0x30

struct ip_vs_fnat_sync {
	union nf_inet_addr	laddr;
	__be16			lport;
	__u8			version;	/* 0: none read yet */
	__u8			flags;
	__u32			delta;
	__u32			rs_isn;
	__u32			c_nxt;
	__u32			sp_delta;
	__u32			seq_flags;
};

/* A FULLNAT local address of a service.  Connections hold a reference,
 * so deleting an address in use only unlinks it from the service; it is
 * freed (after RCU) when its last connection goes.
 */
struct ip_vs_laddr {
	struct list_head	n_list;		/* svc->laddr_list, RCU */
	struct netns_ipvs	*ipvs;
	union nf_inet_addr	addr;
	u16			af;
	refcount_t		refcnt;
	atomic64_t		port_conflict;	/* candidate ports in use */
	atomic_t		conn_counts;	/* connections using it */
	/* one bit per port number: set by the session that took the port
	 * from the map, cleared when it expires; a hint for the port search
	 * (the RS-side table has the last word), see ip_vs_fnat.c
	 */
	unsigned long		*ports;
	struct rcu_head		rcu_head;
};

/* The address of one or more virtual services (ip_vs_vaddr.c): how many
 * services of each protocol it has, and how many TCP ones do SYNPROXY.
 */
struct ip_vs_vaddr_key {
	union nf_inet_addr	addr;
	__u32			af;
};

struct ip_vs_vaddr {
	struct rhash_head	node;
	struct ip_vs_vaddr_key	key;
	__u32			tcp;
	__u32			udp;
	__u32			sctp;
	__u32			other;
	__u32			synproxy;
	struct rcu_head		rcu;
};

/* Extended counters, /proc/net/ip_vs_ext_stats (names in ip_vs_ext.c). */
enum ip_vs_ext_stat {
	IP_VS_EXT_FNAT_ADD_TOA_OK,
	IP_VS_EXT_FNAT_ADD_TOA_FAIL_LEN,
	IP_VS_EXT_FNAT_ADD_TOA_HEAD_FULL,
	IP_VS_EXT_FNAT_ADD_TOA_FAIL_MEM,
	IP_VS_EXT_FNAT_ADD_TOA_FAIL_PROTO,
	IP_VS_EXT_FNAT_CONN_REUSED,
	IP_VS_EXT_FNAT_CONN_REUSED_CLOSE,
	IP_VS_EXT_FNAT_CONN_REUSED_TIMEWAIT,
	IP_VS_EXT_FNAT_CONN_REUSED_FINWAIT,
	IP_VS_EXT_FNAT_CONN_REUSED_CLOSEWAIT,
	IP_VS_EXT_FNAT_CONN_REUSED_LASTACK,
	IP_VS_EXT_FNAT_CONN_REUSED_ESTAB,
	IP_VS_EXT_FNAT_NO_LADDR,
	IP_VS_EXT_FNAT_LPORT_EXHAUSTED,
	IP_VS_EXT_FNAT_TS_REMOVED,
	IP_VS_EXT_FNAT_MSS_ADJUSTED,
	IP_VS_EXT_FNAT_EXPIRE_RST,
	IP_VS_EXT_FNAT_CSUM_ERROR,
	IP_VS_EXT_SP_RS_ERROR,
	IP_VS_EXT_SP_NULL_ACK,
	IP_VS_EXT_SP_BAD_ACK,
	IP_VS_EXT_SP_OK_ACK,
	IP_VS_EXT_SP_SYN_CNT,
	IP_VS_EXT_SP_ACKSTORM,
	IP_VS_EXT_SP_SYNSEND_QLEN,
	IP_VS_EXT_SP_CONN_REUSED,
	IP_VS_EXT_SP_CONN_REUSED_CLOSE,
	IP_VS_EXT_SP_CONN_REUSED_TIMEWAIT,
	IP_VS_EXT_SP_CONN_REUSED_FINWAIT,
	IP_VS_EXT_SP_CONN_REUSED_CLOSEWAIT,
	IP_VS_EXT_SP_CONN_REUSED_LASTACK,
	IP_VS_EXT_SP_NO_DEST,
	IP_VS_EXT_SP_STALE_ACK,
	IP_VS_EXT_SP_SYN_RETRY,
	IP_VS_EXT_SP_HS_FAIL,
	IP_VS_EXT_SP_OPTS_LOST,
	IP_VS_EXT_SYNC_SEQ_IGNORED,
	IP_VS_EXT_SYNC_FNAT_SENT,
	IP_VS_EXT_SYNC_FNAT_RECV,
	IP_VS_EXT_SYNC_FNAT_NO_DEST,
	IP_VS_EXT_SYNC_FNAT_NO_LADDR,
	IP_VS_EXT_SYNC_FNAT_CONFLICT,
	IP_VS_EXT_SYNC_FNAT_BAD,
	IP_VS_EXT_SYNC_MSG_DROPPED,
	IP_VS_EXT_SYNC_CONN_SKIPPED,
	IP_VS_EXT_SYNC_MSG_SENT,
	IP_VS_EXT_SYNC_MSG_SEND_ERROR,
	IP_VS_EXT_SYNC_MSG_QUEUE_FULL,
	IP_VS_EXT_SYNC_MSG_RECV,
	IP_VS_EXT_DEF_FRAG_DROP,
	IP_VS_EXT_DEF_TCP_DROP,
	IP_VS_EXT_DEF_UDP_DROP,
	IP_VS_EXT_STAT_MAX
};

struct ip_vs_ext_stats {
	u64	cnt[IP_VS_EXT_STAT_MAX];
};

/* Per network namespace state of the extensions (netns_ipvs->ext). */
struct ip_vs_ext_net {
	/* sysctls (net/ipv4/vs/), see ip_vs_ext.c for meaning and bounds */
	int	fnat_timestamp_remove;
	int	fnat_mss_adjust;
	int	fnat_conn_reused;
	int	fnat_toa;
	int	fnat_lport_min;
	int	fnat_lport_max;
	int	fnat_lport_tries;
	int	conn_expire_tcp_rst;
	int	sp_init_mss;
	int	sp_sack;
	int	sp_wscale;
	int	sp_timestamp;
	int	sp_synack_ttl;
	int	sp_defer;
	int	sp_conn_reuse;
	int	sp_reuse_close;
	int	sp_reuse_time_wait;
	int	sp_reuse_fin_wait;
	int	sp_reuse_close_wait;
	int	sp_reuse_last_ack;
	int	sp_ack_store_thresh;
	int	sp_ack_storm_thresh;
	int	sp_syn_retry;
	int	sp_cookie_max_age;
	int	defence_tcp_drop;
	int	defence_udp_drop;
	int	defence_frag_drop;

	/* local address objects alive: configured, or kept by sessions */
	atomic_t			num_laddrs;
	/* addresses of the services (ip_vs_vaddr.c) */
	struct rhashtable		vaddrs;
	struct ctl_table_header		*sysctl_hdr;
	const struct ctl_table		*sysctl_tbl;
	struct ip_vs_ext_stats __percpu	*stats;
};

/* ip_vs_ext.c: module and namespace life cycle */
int ip_vs_ext_init(void);
void ip_vs_ext_cleanup(void);
int ip_vs_ext_net_init(struct netns_ipvs *ipvs);
void ip_vs_ext_net_cleanup(struct netns_ipvs *ipvs);

/* ip_vs_laddr.c: local address pools and their netlink commands */
void ip_vs_laddr_svc_init(struct ip_vs_service *svc);
void ip_vs_laddr_flush(struct ip_vs_service *svc);
int ip_vs_laddr_cmd(struct ip_vs_service *svc, struct genl_info *info);
int ip_vs_laddr_dump(struct sk_buff *skb, struct netlink_callback *cb,
		     const struct genl_family *family,
		     struct ip_vs_service *svc);

/* ip_vs_fnat.c: FULLNAT connections and packets */
int ip_vs_fnat_conn_bind(struct ip_vs_conn *cp,
			 const struct ip_vs_conn_param *p);
void ip_vs_fnat_conn_expire(struct ip_vs_conn *cp);
bool ip_vs_fnat_conn_reuse(struct ip_vs_conn *cp);
int ip_vs_fnat_xmit(struct sk_buff *skb, struct ip_vs_conn *cp,
		    struct ip_vs_protocol *pp, struct ip_vs_iphdr *ipvsh);
int ip_vs_fnat_xmit_v6(struct sk_buff *skb, struct ip_vs_conn *cp,
		       struct ip_vs_protocol *pp, struct ip_vs_iphdr *ipvsh);
unsigned int ip_vs_fnat_reply_hook(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state);
void ip_vs_fnat_seq_local(const struct ip_vs_conn *cp, char *buf, size_t len,
			  bool no_pe);

/* ip_vs_fnat_tcp.c: where both ends of a NAT TCP session stand, for the
 * RSTs of conn_expire_tcp_rst (ip_vs_xmit.c and ip_vs_core.c call it)
 */
void ip_vs_nat_tcp_track(struct ip_vs_conn *cp, struct sk_buff *skb,
			 unsigned int thoff, bool to_rs);

/* ip_vs_synproxy.c: SYNPROXY and flood defence.  ip_vs_synproxy_in()
 * returns IP_VS_EXT_PASS or the verdict of a packet it has taken over
 * (the caller still owns its reference to @cp).
 */
#define IP_VS_EXT_PASS	(-1)
int ip_vs_synproxy_init(void);
void ip_vs_synproxy_cleanup(void);
int ip_vs_synproxy_in(struct netns_ipvs *ipvs, struct sk_buff *skb,
		      struct ip_vs_iphdr *iph, struct ip_vs_proto_data *pd,
		      struct ip_vs_conn *cp);
int ip_vs_synproxy_out(struct ip_vs_conn *cp, struct sk_buff *skb,
		       unsigned int thoff);
bool ip_vs_synproxy_retry(struct ip_vs_conn *cp);
void ip_vs_synproxy_conn_expire(struct ip_vs_conn *cp);
int ip_vs_synproxy_svc_check(const struct ip_vs_service *svc,
			     unsigned int flags);
int ip_vs_synproxy_dest_check(const struct ip_vs_service *svc,
			      const struct ip_vs_dest_user_kern *udest);

/* ip_vs_core.c (patched in): stats and state of a packet that SYNPROXY
 * sends or consumes on a connection's behalf
 */
void ip_vs_conn_account(struct ip_vs_conn *cp, int direction,
			struct sk_buff *skb, unsigned int iph_len);
/* ip_vs_vaddr.c: the addresses of the services, for flood defence;
 * ip_vs_ctl.c calls these under __ip_vs_mutex where it hashes, edits and
 * unhashes a service
 */
int ip_vs_vaddr_add(struct ip_vs_service *svc);
void ip_vs_vaddr_flags(struct ip_vs_service *svc, unsigned int flags);
void ip_vs_vaddr_del(struct ip_vs_service *svc);
const struct ip_vs_vaddr *ip_vs_vaddr_find(struct netns_ipvs *ipvs, int af,
					   const union nf_inet_addr *addr);

/* ip_vs_core.c/ip_vs_xmit.c (patched in): an ICMP error from the client
 * side about a SYNPROXY session goes to its NAT real server; @offset is
 * that of the embedded TCP sequence number.  Returns 0, or -1 to drop.
 */
int ip_vs_synproxy_icmp_in(struct ip_vs_conn *cp, struct sk_buff *skb,
			   unsigned int offset);

/* ip_vs_sync.c (patched in): may a backup put received sequence data (and
 * the flags announcing it) into @cp?  Not into FULLNAT or SYNPROXY
 * sessions, whose own state shares that storage; counted.
 */
bool ip_vs_ext_sync_seq_ok(struct ip_vs_conn *cp, bool opt);

/* ip_vs_sync.c (patched in): FULLNAT and SYNPROXY sessions in sync
 * messages.  A master asks ip_vs_fnat_sync_len() whether an entry needs
 * our parameter (> 0: its length; -1: do not sync the connection now)
 * and writes it with ip_vs_fnat_sync_put(); a backup reads it with
 * ip_vs_fnat_sync_parse() into the entry's ip_vs_conn_param, whose
 * connection ip_vs_fnat_conn_bind() places, and an existing connection
 * takes it with ip_vs_fnat_sync_update() unless ip_vs_fnat_sync_same()
 * says the master replaced the session.  ip_vs_ext_sync_dropped() counts
 * what a backup could not read.
 */
int ip_vs_fnat_sync_len(const struct ip_vs_conn *cp);
__u8 *ip_vs_fnat_sync_put(const struct ip_vs_conn *cp, __u8 *p, int len);
int ip_vs_fnat_sync_parse(struct netns_ipvs *ipvs, int af, const __u8 *p,
			  unsigned int plen, struct ip_vs_fnat_sync *fs);
bool ip_vs_fnat_sync_same(const struct ip_vs_conn *cp,
			  const struct ip_vs_fnat_sync *fs);
void ip_vs_fnat_sync_update(struct ip_vs_conn *cp,
			    const struct ip_vs_fnat_sync *fs);
void ip_vs_ext_sync_dropped(struct netns_ipvs *ipvs, bool whole);

/* ip_vs_sync.c (patched in): count a message of the sync daemons, sent,
 * lost on a master (a full queue, a send error) or received by a backup
 */
void ip_vs_ext_sync_count(struct netns_ipvs *ipvs, enum ip_vs_ext_stat item);

/* ip_vs_ctl.c calls this on adding or editing a real server */
int ip_vs_ext_dest_check(const struct ip_vs_service *svc,
			 const struct ip_vs_dest_user_kern *udest);
int ip_vs_fnat_dest_check(const struct ip_vs_service *svc,
			  const struct ip_vs_dest_user_kern *udest);

/* ip_vs_xmit.c (patched in): route towards the connection's RS */
int ip_vs_fnat_route_to_rs(struct sk_buff *skb, struct ip_vs_conn *cp,
			   struct ip_vs_iphdr *ipvsh);

/* ip_vs_core.c (patched in): state and stats of a reply packet */
void ip_vs_conn_reply_account(struct ip_vs_conn *cp, struct sk_buff *skb,
			      unsigned int iph_len);

#endif /* _NET_IP_VS_EXT_H */
