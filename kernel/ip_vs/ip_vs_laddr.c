// SPDX-License-Identifier: GPL-2.0
/*
 * FULLNAT local address pools, one per virtual service.
 *
 * The list is changed under the service mutex (__ip_vs_mutex, since 7.3
 * the namespace's service_mutex: lvs_service_mutex()) and read under RCU
 * by the packet path, which picks addresses round robin.  The list and
 * every connection using an address hold a reference on it: deleting an
 * address only takes it off the list, and its live connections drain
 * with it.
 *
 * Generic netlink (abi.md): IPVS_CMD_NEW_LADDR / DEL_LADDR with
 * IPVS_CMD_ATTR_SERVICE and IPVS_CMD_ATTR_LADDR { ADDR }, and the dump
 * IPVS_CMD_GET_LADDR with IPVS_CMD_ATTR_SERVICE, answered with one
 * IPVS_CMD_NEW_LADDR message per address carrying ADDR, PORT_CONFLICT
 * and CONN_COUNTS.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/bitmap.h>
#include <net/genetlink.h>
#include <net/ipv6.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

#define IP_VS_LADDR_PORTS	(1 << 16)	/* bits of a port map */

static const struct nla_policy ip_vs_laddr_policy[IPVS_LADDR_ATTR_MAX + 1] = {
	[IPVS_LADDR_ATTR_ADDR]		= { .type = NLA_BINARY,
					    .len = sizeof(union nf_inet_addr) },
	[IPVS_LADDR_ATTR_PORT_CONFLICT]	= { .type = NLA_U64 },
	[IPVS_LADDR_ATTR_CONN_COUNTS]	= { .type = NLA_U32 },
};

void ip_vs_laddr_svc_init(struct ip_vs_service *svc)
{
	INIT_LIST_HEAD(&svc->laddr_list);
	svc->num_laddrs = 0;
	atomic_set(&svc->laddr_next, 0);
}

/* The port map is used only by holders of a reference (the port search
 * and expiring sessions): it can go at once, the address after RCU.
 */
void ip_vs_laddr_put(struct ip_vs_laddr *laddr)
{
	if (refcount_dec_and_test(&laddr->refcnt)) {
		atomic_dec(&laddr->ipvs->ext->num_laddrs);
		bitmap_free(laddr->ports);
		kfree_rcu(laddr, rcu_head);
	}
}

/* The entry after @pos in the circular walk of the list (under RCU). */
static struct ip_vs_laddr *ip_vs_laddr_after(struct ip_vs_service *svc,
					     struct list_head *pos)
{
	struct list_head *next = rcu_dereference(list_next_rcu(pos));

	if (next == &svc->laddr_list)
		next = rcu_dereference(list_next_rcu(next));
	if (next == &svc->laddr_list)
		return NULL;	/* emptied meanwhile */
	return list_entry(next, struct ip_vs_laddr, n_list);
}

/**
 * ip_vs_laddr_next - the next local address to try, with a reference
 * @svc: the service, under rcu_read_lock()
 * @prev: the address tried before (its reference is dropped), or NULL to
 *	  start at the service's round robin position
 */
struct ip_vs_laddr *ip_vs_laddr_next(struct ip_vs_service *svc,
				     struct ip_vs_laddr *prev)
{
	struct list_head *pos = &svc->laddr_list;
	struct ip_vs_laddr *laddr;
	unsigned int n, skip, tries;

	if (prev) {
		pos = &prev->n_list;
		skip = 0;
	} else {
		n = READ_ONCE(svc->num_laddrs);
		if (!n)
			return NULL;
		skip = (unsigned int)atomic_inc_return(&svc->laddr_next) % n;
	}
	/* Skip entries being deleted; a bounded walk even if the list
	 * changes under us.
	 */
	for (tries = 0; tries < skip + 64; tries++) {
		laddr = ip_vs_laddr_after(svc, pos);
		if (!laddr)
			break;
		pos = &laddr->n_list;
		if (tries < skip)
			continue;
		if (refcount_inc_not_zero(&laddr->refcnt))
			goto found;
	}
	laddr = NULL;
found:
	if (prev)
		ip_vs_laddr_put(prev);
	return laddr;
}

/**
 * ip_vs_laddr_get - the local address @addr of @svc, with a reference
 * @svc: the service, under rcu_read_lock()
 * @addr: the address, of the service's family
 *
 * Returns NULL when @svc has no such address (or it is being deleted).
 */
struct ip_vs_laddr *ip_vs_laddr_get(struct ip_vs_service *svc,
				    const union nf_inet_addr *addr)
{
	struct ip_vs_laddr *laddr;

	list_for_each_entry_rcu(laddr, &svc->laddr_list, n_list)
		if (ip_vs_addr_equal(svc->af, &laddr->addr, addr) &&
		    refcount_inc_not_zero(&laddr->refcnt))
			return laddr;
	return NULL;
}

static struct ip_vs_laddr *ip_vs_laddr_find(struct ip_vs_service *svc,
					    const union nf_inet_addr *addr)
{
	struct ip_vs_laddr *laddr;

	list_for_each_entry(laddr, &svc->laddr_list, n_list)
		if (ip_vs_addr_equal(svc->af, &laddr->addr, addr))
			return laddr;
	return NULL;
}

static bool ip_vs_laddr_valid(int af, const union nf_inet_addr *addr)
{
	if (af == AF_INET6) {
		int type = ipv6_addr_type(&addr->in6);

		return !(type & (IPV6_ADDR_ANY | IPV6_ADDR_MULTICAST |
				 IPV6_ADDR_LOOPBACK)) &&
		       !ipv6_addr_v4mapped(&addr->in6);
	}
	return !ipv4_is_zeronet(addr->ip) && !ipv4_is_multicast(addr->ip) &&
	       !ipv4_is_lbcast(addr->ip) && !ipv4_is_loopback(addr->ip);
}

static int ip_vs_laddr_add(struct ip_vs_service *svc,
			   const union nf_inet_addr *addr)
{
	struct ip_vs_laddr *laddr;

	if (ip_vs_laddr_find(svc, addr))
		return -EEXIST;
	/* charged to the caller's memory cgroup: a container's own
	 * namespace may add addresses, 8 KiB of port map each
	 */
	laddr = kzalloc_obj(*laddr, GFP_KERNEL_ACCOUNT);
	if (!laddr)
		return -ENOMEM;
	laddr->ports = bitmap_zalloc(IP_VS_LADDR_PORTS, GFP_KERNEL_ACCOUNT);
	if (!laddr->ports) {
		kfree(laddr);
		return -ENOMEM;
	}
	ip_vs_addr_copy(svc->af, &laddr->addr, addr);
	laddr->ipvs = svc->ipvs;
	laddr->af = svc->af;
	refcount_set(&laddr->refcnt, 1);
	list_add_tail_rcu(&laddr->n_list, &svc->laddr_list);
	WRITE_ONCE(svc->num_laddrs, svc->num_laddrs + 1);
	atomic_inc(&svc->ipvs->ext->num_laddrs);
	return 0;
}

static void ip_vs_laddr_unlink(struct ip_vs_service *svc,
			       struct ip_vs_laddr *laddr)
{
	list_del_rcu(&laddr->n_list);
	WRITE_ONCE(svc->num_laddrs, svc->num_laddrs - 1);
	ip_vs_laddr_put(laddr);
}

static int ip_vs_laddr_del(struct ip_vs_service *svc,
			   const union nf_inet_addr *addr)
{
	struct ip_vs_laddr *laddr = ip_vs_laddr_find(svc, addr);

	if (!laddr)
		return -ENOENT;
	ip_vs_laddr_unlink(svc, laddr);
	return 0;
}

/* The service is going away (under __ip_vs_mutex). */
void ip_vs_laddr_flush(struct ip_vs_service *svc)
{
	struct ip_vs_laddr *laddr, *next;

	list_for_each_entry_safe(laddr, next, &svc->laddr_list, n_list)
		ip_vs_laddr_unlink(svc, laddr);
}

/* ------------------------------------------------------------ netlink */

/* The address of IPVS_LADDR_ATTR_ADDR for a service of family @af: 16
 * bytes for IPv6; for IPv4 its 4 bytes, alone or as the first 4 of 16
 * whose other 12 are zero (the wire format is a 16-byte address).
 */
static int ip_vs_laddr_addr(int af, const struct nlattr *a,
			    union nf_inet_addr *addr,
			    struct netlink_ext_ack *extack)
{
	int len = nla_len(a);

	memset(addr, 0, sizeof(*addr));
	if (af == AF_INET6 && len != sizeof(addr->in6)) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "an IPv6 local address has 16 bytes");
		return -EINVAL;
	}
	if (af == AF_INET && len != sizeof(addr->ip) &&
	    len != sizeof(addr->in6)) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "an IPv4 local address has 4 bytes (or 16, zero after the 4th)");
		return -EINVAL;
	}
	nla_memcpy(addr, a, sizeof(*addr));
	if (af == AF_INET && (addr->all[1] || addr->all[2] || addr->all[3])) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "not an IPv4 address: an IPv4 service takes IPv4 local addresses");
		return -EINVAL;
	}
	return 0;
}

static int ip_vs_laddr_parse(int af, struct nlattr *nla,
			     union nf_inet_addr *addr,
			     struct netlink_ext_ack *extack)
{
	struct nlattr *attrs[IPVS_LADDR_ATTR_MAX + 1];
	struct nlattr *a;
	int ret;

	if (!nla) {
		NL_SET_ERR_MSG(extack,
			       "IPVS_CMD_ATTR_LADDR (the local address) is missing");
		return -EINVAL;
	}
	ret = nla_parse_nested_deprecated(attrs, IPVS_LADDR_ATTR_MAX, nla,
					  ip_vs_laddr_policy, extack);
	if (ret)
		return ret;
	a = attrs[IPVS_LADDR_ATTR_ADDR];
	if (!a) {
		NL_SET_ERR_MSG_ATTR(extack, nla,
				    "IPVS_LADDR_ATTR_ADDR (the local address) is missing");
		return -EINVAL;
	}
	ret = ip_vs_laddr_addr(af, a, addr, extack);
	if (ret)
		return ret;
	if (!ip_vs_laddr_valid(af, addr)) {
		NL_SET_ERR_MSG_ATTR(extack, a, "not a unicast local address");
		return -EINVAL;
	}
	return 0;
}

/**
 * ip_vs_laddr_cmd - IPVS_CMD_NEW_LADDR and IPVS_CMD_DEL_LADDR
 * @svc: the service IPVS_CMD_ATTR_SERVICE names (an ERR_PTR or NULL when
 *	 it does not parse or exist)
 * @info: the request
 *
 * Called by ip_vs_ctl.c under __ip_vs_mutex.
 */
int ip_vs_laddr_cmd(struct ip_vs_service *svc, struct genl_info *info)
{
	union nf_inet_addr addr;
	int ret;

	if (IS_ERR(svc)) {
		GENL_SET_ERR_MSG(info, "IPVS_CMD_ATTR_SERVICE is missing or invalid");
		return PTR_ERR(svc);
	}
	if (!svc) {
		GENL_SET_ERR_MSG(info, "no such service");
		return -ESRCH;
	}
	ret = ip_vs_laddr_parse(svc->af, info->attrs[IPVS_CMD_ATTR_LADDR],
				&addr, info->extack);
	if (ret)
		return ret;
	if (info->genlhdr->cmd == IPVS_CMD_NEW_LADDR)
		return ip_vs_laddr_add(svc, &addr);
	return ip_vs_laddr_del(svc, &addr);
}

static int ip_vs_laddr_fill(struct sk_buff *skb, struct netlink_callback *cb,
			    const struct genl_family *family,
			    const struct ip_vs_laddr *laddr)
{
	struct nlattr *nest;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  family, NLM_F_MULTI, IPVS_CMD_NEW_LADDR);
	if (!hdr)
		return -EMSGSIZE;
	nest = nla_nest_start_noflag(skb, IPVS_CMD_ATTR_LADDR);
	if (!nest ||
	    nla_put(skb, IPVS_LADDR_ATTR_ADDR, sizeof(laddr->addr), &laddr->addr) ||
	    nla_put_u64_64bit(skb, IPVS_LADDR_ATTR_PORT_CONFLICT,
			      atomic64_read(&laddr->port_conflict),
			      IPVS_LADDR_ATTR_PAD) ||
	    nla_put_u32(skb, IPVS_LADDR_ATTR_CONN_COUNTS,
			atomic_read(&laddr->conn_counts))) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	genlmsg_end(skb, hdr);
	return 0;
}

/**
 * ip_vs_laddr_dump - IPVS_CMD_GET_LADDR: one message per local address
 * @skb: the dump buffer
 * @cb: the dump state; cb->args[0] counts addresses already sent
 * @family: the IPVS generic netlink family
 * @svc: the service named by the request (ERR_PTR or NULL: none)
 *
 * Called by ip_vs_ctl.c under __ip_vs_mutex.
 */
int ip_vs_laddr_dump(struct sk_buff *skb, struct netlink_callback *cb,
		     const struct genl_family *family,
		     struct ip_vs_service *svc)
{
	struct ip_vs_laddr *laddr;
	int idx = 0, start = cb->args[0];

	if (IS_ERR(svc))
		return PTR_ERR(svc);
	if (!svc)
		return -ESRCH;
	list_for_each_entry(laddr, &svc->laddr_list, n_list) {
		if (idx++ < start)
			continue;
		if (ip_vs_laddr_fill(skb, cb, family, laddr) < 0) {
			idx--;
			break;
		}
	}
	cb->args[0] = idx;
	return skb->len;
}
