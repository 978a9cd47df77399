// SPDX-License-Identifier: GPL-2.0
/*
 * FULLNAT and SYNPROXY sessions in IPVS's connection sync (version 1).
 *
 * A master adds one parameter to the sync entry of a FULLNAT or SYNPROXY
 * connection: what a backup needs to forward it after a fail-over, which
 * the upstream entry lacks.  Its type, IP_VS_SYNC_OPT_FNAT, has no
 * IPVS_OPT_F_PARAM bit, so it is mandatory: a backup without these
 * extensions skips that one entry (it could not forward the session
 * anyway) and takes the message's other entries, NAT and DR ones, as
 * before.  Its data, in network byte order, at any alignment:
 *
 *   0  version     1 (a newer version only appends: a receiver reads
 *                  the fields it knows and ignores the rest)
 *   1  flags       0x01 FULLNAT (lport and the local address are set),
 *                  0x02 SYNPROXY
 *   2  lport       the local port (FULLNAT)
 *   4  delta       our sequence number towards the RS - the client's
 *   8  rs_isn      the RS's initial sequence number
 *  12  c_nxt       the client's next sequence number
 *  16  sp_delta    SYNPROXY: our ISN towards the client - the RS's ISN
 *  20  seq_flags   which of these are valid and the session's TCP
 *                  state (IP_VS_FNAT_SYNC_SEQ bits of struct
 *                  ip_vs_fnat_seq: their values are on the wire)
 *  24  laddr       FULLNAT: the local address, 4 or 16 bytes (the
 *                  entry's family)
 *
 * The RS's next sequence number is not sent: it is stale by the time a
 * backup takes over and would make SYNPROXY's ACK-storm check drop the
 * client's honest ACKs; a backup learns it from the RS's next packet.
 * The timer and state travel in the upstream entry.
 *
 * A master sends a FULLNAT or SYNPROXY entry only once the session's
 * numbers are all known (after the real server's SYN/ACK); before that
 * a backup could not forward it anyway, and a later packet syncs it.
 *
 * On a backup, ip_vs_conn_new() calls ip_vs_fnat_conn_bind(), which hands
 * synced connections to ip_vs_fnat_sync_bind(): the local address must
 * be one of the service's, the local port's bit is set in its map when
 * free (so new sessions of the backup never take it), and the session
 * is hashed in the RS-side table.  A session that cannot be placed (its
 * real server, service or local address unknown here, its RS-side tuple
 * in use, a bad parameter) is not created and is counted.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

#define IP_VS_FNAT_SYNC_VERSION		1
#define IP_VS_FNAT_SYNC_F_FULLNAT	0x01
#define IP_VS_FNAT_SYNC_F_SYNPROXY	0x02

/* The bits of struct ip_vs_fnat_seq's flags that travel. */
#define IP_VS_FNAT_SYNC_SEQ	(IP_VS_FNAT_SEQ_INIT | IP_VS_FNAT_SEQ_RS_ISN | \
				 IP_VS_FNAT_SEQ_C_NXT | IP_VS_FNAT_SEQ_TOA_OK | \
				 IP_VS_SP_EST | IP_VS_SP_WIN | \
				 0xfU << IP_VS_SP_WS_SHIFT | \
				 0xfU << IP_VS_SP_RSWS_SHIFT)
/* ... and those a backup takes from every message (c_nxt is separate) */
#define IP_VS_FNAT_SYNC_TAKE	(IP_VS_FNAT_SYNC_SEQ & ~IP_VS_FNAT_SEQ_C_NXT)

struct ip_vs_fnat_sync_wire {
	__u8	version;
	__u8	flags;
	__be16	lport;
	__be32	delta;
	__be32	rs_isn;
	__be32	c_nxt;
	__be32	sp_delta;
	__be32	seq_flags;
	/* FULLNAT: the local address, 4 or 16 bytes */
} __packed;

static unsigned int ip_vs_fnat_sync_alen(int af)
{
	return af == AF_INET6 ? sizeof(struct in6_addr) : sizeof(__be32);
}

/* Does @cp carry state that only this parameter can take to a backup? */
static bool ip_vs_fnat_sync_wanted(const struct ip_vs_conn *cp)
{
	return !(cp->flags & IP_VS_CONN_F_TEMPLATE) &&
	       (ip_vs_conn_fnat(cp) || (cp->flags & IP_VS_CONN_F_SYNPROXY));
}

/**
 * ip_vs_fnat_sync_len - the size of @cp's parameter in a sync entry
 * @cp: a connection the master is about to sync
 *
 * Returns 0 when the connection needs none (it is synced as upstream
 * does), the length of the parameter's data, or -1 when the connection
 * must not be synced now: a backup could not forward it yet.
 */
int ip_vs_fnat_sync_len(const struct ip_vs_conn *cp)
{
	const u32 fnat_ready = IP_VS_FNAT_SEQ_INIT | IP_VS_FNAT_SEQ_RS_ISN;
	const u32 sp_state = IP_VS_SP_HS | IP_VS_SP_EST | IP_VS_SP_DEAD;
	bool fnat = ip_vs_conn_fnat(cp);
	u32 flags;

	if (!ip_vs_fnat_sync_wanted(cp))
		return 0;
	if (fnat && hlist_unhashed(&cp->l_list))
		return -1;	/* no RS side (it got no local address) */
	if (cp->protocol == IPPROTO_TCP) {
		flags = READ_ONCE(cp->fnat.flags);
		if (fnat && (flags & fnat_ready) != fnat_ready)
			return -1;
		if ((cp->flags & IP_VS_CONN_F_SYNPROXY) &&
		    (flags & sp_state) != IP_VS_SP_EST)
			return -1;
	}
	return sizeof(struct ip_vs_fnat_sync_wire) +
	       (fnat ? ip_vs_fnat_sync_alen(cp->af) : 0);
}

/**
 * ip_vs_fnat_sync_put - write @cp's parameter into a sync entry
 * @cp: the connection
 * @p: where the parameter goes (its type and length first)
 * @len: what ip_vs_fnat_sync_len() returned, > 0
 *
 * Returns the position after the parameter.
 */
u8 *ip_vs_fnat_sync_put(const struct ip_vs_conn *cp, u8 *p, int len)
{
	const struct ip_vs_fnat_seq *fs = &cp->fnat;
	struct ip_vs_fnat_sync_wire *w;
	u32 flags;

	*p++ = IP_VS_SYNC_OPT_FNAT;
	*p++ = len;
	w = (struct ip_vs_fnat_sync_wire *)p;
	memset(w, 0, len);
	/* acquire: a flag comes with its value (set before it) */
	flags = smp_load_acquire(&fs->flags);
	w->version = IP_VS_FNAT_SYNC_VERSION;
	if (cp->flags & IP_VS_CONN_F_SYNPROXY)
		w->flags |= IP_VS_FNAT_SYNC_F_SYNPROXY;
	/* FULLNAT as ip_vs_fnat_sync_len() saw it: the room is reserved */
	if (len > sizeof(*w)) {
		w->flags |= IP_VS_FNAT_SYNC_F_FULLNAT;
		w->lport = cp->lport;
		memcpy(w + 1, &cp->laddr, ip_vs_fnat_sync_alen(cp->af));
	}
	if (cp->protocol == IPPROTO_TCP) {
		put_unaligned_be32(READ_ONCE(fs->delta), &w->delta);
		put_unaligned_be32(READ_ONCE(fs->rs_isn), &w->rs_isn);
		put_unaligned_be32(READ_ONCE(fs->c_nxt), &w->c_nxt);
		put_unaligned_be32(READ_ONCE(fs->sp_delta), &w->sp_delta);
		put_unaligned_be32(flags & IP_VS_FNAT_SYNC_SEQ, &w->seq_flags);
	}
	IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_SYNC_FNAT_SENT);
	return p + len;
}

/**
 * ip_vs_fnat_sync_parse - read the parameter of a received sync entry
 * @ipvs: the backup's namespace
 * @af: the entry's address family
 * @p: the parameter's data
 * @plen: its length
 * @fs: where it goes (fs->version 0 until one was read)
 *
 * Returns 0, or -EINVAL for a parameter that is malformed, of a version
 * we do not know, or found twice (counted): the entry is then skipped.
 */
int ip_vs_fnat_sync_parse(struct netns_ipvs *ipvs, int af, const u8 *p,
			  unsigned int plen, struct ip_vs_fnat_sync *fs)
{
	const struct ip_vs_fnat_sync_wire *w =
		(const struct ip_vs_fnat_sync_wire *)p;
	unsigned int need = sizeof(*w);

	if (fs->version || plen < need || !w->version)
		goto bad;
	if (w->flags & IP_VS_FNAT_SYNC_F_FULLNAT)
		need += ip_vs_fnat_sync_alen(af);
	if (plen < need)
		goto bad;
	memset(fs, 0, sizeof(*fs));
	fs->version = w->version;
	fs->flags = w->flags & (IP_VS_FNAT_SYNC_F_FULLNAT |
				IP_VS_FNAT_SYNC_F_SYNPROXY);
	if (fs->flags & IP_VS_FNAT_SYNC_F_FULLNAT) {
		fs->lport = w->lport;
		memcpy(&fs->laddr, w + 1, ip_vs_fnat_sync_alen(af));
		if (!fs->lport)
			goto bad;
	}
	fs->delta = get_unaligned_be32(&w->delta);
	fs->rs_isn = get_unaligned_be32(&w->rs_isn);
	fs->c_nxt = get_unaligned_be32(&w->c_nxt);
	fs->sp_delta = get_unaligned_be32(&w->sp_delta);
	fs->seq_flags = get_unaligned_be32(&w->seq_flags) &
			IP_VS_FNAT_SYNC_SEQ;
	return 0;

bad:
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_BAD);
	return -EINVAL;
}

/* Can @cp (as this backup configures it) hold the state of @fs? */
static bool ip_vs_fnat_sync_fits(const struct ip_vs_conn *cp,
				 const struct ip_vs_fnat_sync *fs)
{
	const u32 fnat_ready = IP_VS_FNAT_SEQ_INIT | IP_VS_FNAT_SEQ_RS_ISN;
	bool fnat = ip_vs_conn_fnat(cp);
	bool sp = fs->flags & IP_VS_FNAT_SYNC_F_SYNPROXY;

	if ((cp->flags & IP_VS_CONN_F_TEMPLATE) ||
	    fnat != !!(fs->flags & IP_VS_FNAT_SYNC_F_FULLNAT))
		return false;
	if (sp && (cp->protocol != IPPROTO_TCP ||
		   (!fnat && IP_VS_FWD_METHOD(cp) != IP_VS_CONN_F_MASQ)))
		return false;
	/* TCP: only the complete state a master sends (a backup could not
	 * translate a session with less)
	 */
	if (cp->protocol == IPPROTO_TCP &&
	    ((fnat && (fs->seq_flags & fnat_ready) != fnat_ready) ||
	     (sp && !(fs->seq_flags & IP_VS_SP_EST))))
		return false;
	if (fnat)
		return cp->daf == cp->af && (cp->protocol == IPPROTO_TCP ||
					      cp->protocol == IPPROTO_UDP);
	return sp;
}

/* The sequence state of @fs into @cp: values first, then their flags
 * (readers take a flag with acquire).  The RS's next sequence number is
 * learnt again from its next packet.
 */
static void ip_vs_fnat_sync_seq(struct ip_vs_conn *cp,
				const struct ip_vs_fnat_sync *fs)
{
	struct ip_vs_fnat_seq *s = &cp->fnat;
	u32 take = fs->seq_flags & IP_VS_FNAT_SYNC_TAKE;

	if (cp->protocol != IPPROTO_TCP)
		return;
	if (take & IP_VS_FNAT_SEQ_INIT)
		WRITE_ONCE(s->delta, fs->delta);
	if (take & IP_VS_FNAT_SEQ_RS_ISN)
		WRITE_ONCE(s->rs_isn, fs->rs_isn);
	if (take & IP_VS_SP_EST)
		WRITE_ONCE(s->sp_delta, fs->sp_delta);
	ip_vs_fnat_seq_flags(s, take, (IP_VS_FNAT_SYNC_TAKE |
				       IP_VS_FNAT_SEQ_R_NXT) & ~take);
	/* forward only: a session this node forwards may be ahead */
	if (fs->seq_flags & IP_VS_FNAT_SEQ_C_NXT)
		ip_vs_fnat_seq_advance(s, &s->c_nxt, IP_VS_FNAT_SEQ_C_NXT,
				       fs->c_nxt);
}

/**
 * ip_vs_fnat_sync_bind - a synced connection's FULLNAT and SYNPROXY part
 * @cp: a connection created by sync, bound to its dest if the backup has
 *	it, not yet visible anywhere
 * @fs: the parameter of its entry, or NULL when it had none
 *
 * Returns 0, or a negative errno (counted) when the connection must not
 * be created.
 */
int ip_vs_fnat_sync_bind(struct ip_vs_conn *cp,
			 const struct ip_vs_fnat_sync *fs)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_service *svc;
	struct ip_vs_laddr *laddr;
	bool owned;

	if (!fs) {
		if (!ip_vs_conn_fnat(cp))
			return 0;	/* an upstream entry: as upstream */
		/* FULLNAT without its state (an older master) */
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_BAD);
		return -EPROTONOSUPPORT;
	}
	if (!ip_vs_fnat_sync_fits(cp, fs)) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_BAD);
		return -EINVAL;
	}
	/* the real server's method decides how a session is forwarded: a
	 * session bound to none later could take another one's
	 */
	if (!cp->dest) {
		IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_NO_DEST);
		return -ENOENT;
	}
	/* our state, not the helpers' sequence data, is in that storage */
	cp->flags &= ~IP_VS_CONN_F_SEQ_MASK;
	if (ip_vs_conn_fnat(cp)) {
		rcu_read_lock();
		svc = rcu_dereference(cp->dest->svc);
		laddr = svc ? ip_vs_laddr_get(svc, &fs->laddr) : NULL;
		rcu_read_unlock();
		if (!laddr) {
			IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_NO_LADDR);
			return -EADDRNOTAVAIL;
		}
		ip_vs_addr_copy(cp->af, &cp->laddr, &laddr->addr);
		cp->lport = fs->lport;
		owned = !test_and_set_bit(ntohs(fs->lport), laddr->ports);
		if (!ip_vs_fnat_hash_unique(cp)) {
			if (owned)
				clear_bit(ntohs(fs->lport), laddr->ports);
			ip_vs_laddr_put(laddr);
			IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_CONFLICT);
			return -EADDRINUSE;
		}
		if (owned)
			ip_vs_fnat_seq_flags(&cp->fnat, IP_VS_FNAT_LPORT_OWNED,
					     0);
		atomic_inc(&laddr->conn_counts);
		cp->local = laddr;
	}
	ip_vs_fnat_sync_seq(cp, fs);
	if (fs->flags & IP_VS_FNAT_SYNC_F_SYNPROXY)
		cp->flags |= IP_VS_CONN_F_SYNPROXY;
	IP_VS_EXT_INC(ipvs, IP_VS_EXT_SYNC_FNAT_RECV);
	return 0;
}

/**
 * ip_vs_fnat_sync_same - is @fs about the session @cp is?
 * @cp: a connection a backup found by the client side of a sync entry
 * @fs: the entry's parameter, or NULL
 *
 * A session the master replaced (a new local port, or with SYNPROXY where
 * the old had none) is not: the backup expires @cp and creates the new
 * one, as upstream does for a new real server.
 */
bool ip_vs_fnat_sync_same(const struct ip_vs_conn *cp,
			  const struct ip_vs_fnat_sync *fs)
{
	if (!fs || (cp->flags & IP_VS_CONN_F_TEMPLATE))
		return true;
	if (!(cp->flags & IP_VS_CONN_F_SYNPROXY) !=
	    !(fs->flags & IP_VS_FNAT_SYNC_F_SYNPROXY))
		return false;
	if (!ip_vs_conn_fnat(cp))
		return !(fs->flags & IP_VS_FNAT_SYNC_F_FULLNAT);
	return (fs->flags & IP_VS_FNAT_SYNC_F_FULLNAT) &&
	       !hlist_unhashed(&cp->l_list) && cp->lport == fs->lport &&
	       ip_vs_addr_equal(cp->af, &cp->laddr, &fs->laddr);
}

/**
 * ip_vs_fnat_sync_update - a backup's session takes a newer message's state
 * @cp: the connection an entry named (found, or created by it)
 * @fs: the entry's parameter, or NULL
 */
void ip_vs_fnat_sync_update(struct ip_vs_conn *cp,
			    const struct ip_vs_fnat_sync *fs)
{
	if (fs && ip_vs_fnat_sync_fits(cp, fs) && ip_vs_fnat_sync_same(cp, fs))
		ip_vs_fnat_sync_seq(cp, fs);
}

/**
 * ip_vs_ext_sync_dropped - count what a backup could not read
 * @ipvs: the backup's namespace
 * @whole: a whole message (else one entry of it)
 */
void ip_vs_ext_sync_dropped(struct netns_ipvs *ipvs, bool whole)
{
	IP_VS_EXT_INC(ipvs, whole ? IP_VS_EXT_SYNC_MSG_DROPPED :
				    IP_VS_EXT_SYNC_CONN_SKIPPED);
}

/**
 * ip_vs_ext_sync_count - count a message of the sync daemons
 * @ipvs: the daemon's namespace
 * @item: IP_VS_EXT_SYNC_MSG_SENT, _SEND_ERROR or _QUEUE_FULL (a master),
 *	or IP_VS_EXT_SYNC_MSG_RECV (a backup)
 */
void ip_vs_ext_sync_count(struct netns_ipvs *ipvs, enum ip_vs_ext_stat item)
{
	IP_VS_EXT_INC(ipvs, item);
}
