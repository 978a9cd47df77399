// SPDX-License-Identifier: GPL-2.0
/*
 * IPVS: the addresses of a namespace's virtual services.
 *
 * Flood defence asks, for packets that match no session, whether their
 * destination is the address of a SYNPROXY service and whether it has
 * services of the packet's protocol at all.  Upstream's service table is
 * hashed by (protocol, address, port), so that question would walk the
 * whole table.  Here every address with at least one service has an
 * entry in a per-namespace hash table keyed by (family, address), with
 * the number of its TCP, UDP and SCTP services and of its SYNPROXY TCP
 * services.  Entries change where upstream hashes and unhashes services
 * (under the service mutex: __ip_vs_mutex, since 7.3 the namespace's
 * service_mutex) and are read under RCU; a lookup costs the same
 * with 10 services as with 50,000.  Firewall-mark services have no
 * address and are not counted.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/rhashtable.h>
#include <net/ip_vs.h>

#include "ip_vs_fnat.h"

static const struct rhashtable_params ip_vs_vaddr_params = {
	.head_offset		= offsetof(struct ip_vs_vaddr, node),
	.key_offset		= offsetof(struct ip_vs_vaddr, key),
	.key_len		= sizeof(struct ip_vs_vaddr_key),
	.automatic_shrinking	= true,
};

static void ip_vs_vaddr_key(struct ip_vs_vaddr_key *key, int af,
			    const union nf_inet_addr *addr)
{
	memset(key, 0, sizeof(*key));
	ip_vs_addr_copy(af, &key->addr, addr);
	key->af = af;
}

/**
 * ip_vs_vaddr_find - the entry of an address, under RCU
 * @ipvs: the namespace
 * @af: the address family
 * @addr: the address
 *
 * Returns the entry or NULL when no service has that address.
 */
const struct ip_vs_vaddr *ip_vs_vaddr_find(struct netns_ipvs *ipvs, int af,
					   const union nf_inet_addr *addr)
{
	struct ip_vs_vaddr_key key;

	ip_vs_vaddr_key(&key, af, addr);
	return rhashtable_lookup(&ipvs->ext->vaddrs, &key, ip_vs_vaddr_params);
}

static struct ip_vs_vaddr *ip_vs_vaddr_of(const struct ip_vs_service *svc)
{
	struct ip_vs_vaddr_key key;

	ip_vs_vaddr_key(&key, svc->af, &svc->addr);
	return rhashtable_lookup_fast(&svc->ipvs->ext->vaddrs, &key,
				      ip_vs_vaddr_params);
}

static u32 *ip_vs_vaddr_count(struct ip_vs_vaddr *va, u16 protocol)
{
	switch (protocol) {
	case IPPROTO_TCP:
		return &va->tcp;
	case IPPROTO_UDP:
		return &va->udp;
	case IPPROTO_SCTP:
		return &va->sctp;
	}
	return &va->other;
}

static bool ip_vs_vaddr_synproxy(u16 protocol, unsigned int flags)
{
	return protocol == IPPROTO_TCP && (flags & IP_VS_SVC_F_SYNPROXY);
}

/* Readers see each count as a whole (they hold no lock). */
static void ip_vs_vaddr_change(u32 *count, int by)
{
	WRITE_ONCE(*count, *count + by);
}

/**
 * ip_vs_vaddr_add - count a new service (under __ip_vs_mutex)
 * @svc: the service, not hashed yet
 *
 * Returns 0 or -ENOMEM (the service must then not be added).
 */
int ip_vs_vaddr_add(struct ip_vs_service *svc)
{
	struct rhashtable *ht = &svc->ipvs->ext->vaddrs;
	struct ip_vs_vaddr *va;
	int ret;

	if (svc->fwmark)
		return 0;
	va = ip_vs_vaddr_of(svc);
	if (!va) {
		va = kzalloc_obj(*va, GFP_KERNEL);
		if (!va)
			return -ENOMEM;
		ip_vs_vaddr_key(&va->key, svc->af, &svc->addr);
		ret = rhashtable_insert_fast(ht, &va->node, ip_vs_vaddr_params);
		if (ret) {
			kfree(va);
			return ret;
		}
	}
	ip_vs_vaddr_change(ip_vs_vaddr_count(va, svc->protocol), 1);
	if (ip_vs_vaddr_synproxy(svc->protocol, svc->flags))
		ip_vs_vaddr_change(&va->synproxy, 1);
	return 0;
}

/**
 * ip_vs_vaddr_flags - a service's flags are about to change (__ip_vs_mutex)
 * @svc: the service, with its old flags
 * @flags: its new flags
 */
void ip_vs_vaddr_flags(struct ip_vs_service *svc, unsigned int flags)
{
	bool was = ip_vs_vaddr_synproxy(svc->protocol, svc->flags);
	bool is = ip_vs_vaddr_synproxy(svc->protocol, flags);
	struct ip_vs_vaddr *va;

	if (svc->fwmark || was == is)
		return;
	va = ip_vs_vaddr_of(svc);
	if (WARN_ON_ONCE(!va))
		return;
	ip_vs_vaddr_change(&va->synproxy, is ? 1 : -1);
}

/**
 * ip_vs_vaddr_del - a service goes (under __ip_vs_mutex)
 * @svc: the service, unhashed
 */
void ip_vs_vaddr_del(struct ip_vs_service *svc)
{
	struct ip_vs_vaddr *va;

	if (svc->fwmark)
		return;
	va = ip_vs_vaddr_of(svc);
	if (WARN_ON_ONCE(!va))
		return;
	ip_vs_vaddr_change(ip_vs_vaddr_count(va, svc->protocol), -1);
	if (ip_vs_vaddr_synproxy(svc->protocol, svc->flags))
		ip_vs_vaddr_change(&va->synproxy, -1);
	if (va->tcp || va->udp || va->sctp || va->other)
		return;
	rhashtable_remove_fast(&svc->ipvs->ext->vaddrs, &va->node,
			       ip_vs_vaddr_params);
	kfree_rcu(va, rcu);
}

int ip_vs_vaddr_net_init(struct ip_vs_ext_net *ext)
{
	return rhashtable_init(&ext->vaddrs, &ip_vs_vaddr_params);
}

static void ip_vs_vaddr_free(void *ptr, void *arg)
{
	kfree(ptr);
}

/* Every service of the namespace is gone (they are flushed first): the
 * table is empty, unless something was not counted out.
 */
void ip_vs_vaddr_net_cleanup(struct ip_vs_ext_net *ext)
{
	WARN_ON_ONCE(atomic_read(&ext->vaddrs.nelems));
	rhashtable_free_and_destroy(&ext->vaddrs, ip_vs_vaddr_free, NULL);
}
