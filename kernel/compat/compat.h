/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where differences between the kernel lines we build for
 * (5.10, 6.1, 6.12 and 7.3) are bridged.  Features are detected by
 * tools/kbuild.py probing the target's headers (compat_autoconf.h), never
 * by comparing version numbers, so a backported API is picked up on its own.
 */
#ifndef LVS_COMPAT_H
#define LVS_COMPAT_H

#include <lvs/compat_autoconf.h>

#ifdef LVS_HAVE_LINUX_UNALIGNED_H
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#ifdef LVS_HAVE_NET_GSO_H
#include <net/gso.h>
#endif

#ifndef LVS_HAVE_REGISTER_NET_SYSCTL_SZ
#include <net/net_namespace.h>

/* Before the sized variant, tables ended with an empty entry (ours do);
 * a macro: newer kernels take the table const, older ones not.
 */
#define register_net_sysctl_sz(net, path, table, size) \
	((void)(size), register_net_sysctl(net, path, table))
#endif

/*
 * Some kernels (Debian's 6.1) pass the transport header's offset to a
 * protocol's state transition, and ip_vs_core.c's ip_vs_set_state() takes
 * it there too.  For the patched upstream files that call it.
 */
#ifdef LVS_HAVE_STATE_TRANSITION_IPH_LEN
#define lvs_set_state(cp, dir, skb, pd, iph_len) \
	ip_vs_set_state(cp, dir, skb, pd, iph_len)
#else
#define lvs_set_state(cp, dir, skb, pd, iph_len) \
	((void)(iph_len), ip_vs_set_state(cp, dir, skb, pd))
#endif

/*
 * The mutex that serialises the configuration of a namespace's services
 * (their lists of local addresses among it): one for all namespaces
 * before 7.3, one per namespace since.
 */
#ifdef LVS_HAVE_IPVS_SERVICE_MUTEX
#define lvs_service_mutex(ipvs)	(&(ipvs)->service_mutex)
#else
#define lvs_service_mutex(ipvs)	((void)(ipvs), &__ip_vs_mutex)
#endif

/*
 * The type of service of an IPv4 route lookup: the packet's DSCP where
 * struct flowi4 has flowi4_dscp, its TOS bits before.
 */
#include <net/ip.h>
#include <net/flow.h>

static inline void lvs_flowi4_set_tos(struct flowi4 *fl4,
				      const struct iphdr *iph)
{
#ifdef LVS_HAVE_FLOWI4_DSCP
	fl4->flowi4_dscp = ip4h_dscp(iph);
#else
	fl4->flowi4_tos = iph->tos & IPTOS_TOS_MASK;
#endif
}

/*
 * kzalloc_obj() of newer kernels (7.x): one zeroed object of the type of
 * @obj; the classic form before it.
 */
#ifndef LVS_HAVE_KZALLOC_OBJ
#include <linux/slab.h>
#define kzalloc_obj(obj, gfp)	kzalloc(sizeof(obj), gfp)
#endif

#ifndef LVS_HAVE_GET_RANDOM_U32_BELOW
#include <linux/random.h>

/* Before 6.2: a uniform enough number in [0, ceil), from the CRNG. */
static inline u32 get_random_u32_below(u32 ceil)
{
	return (u32)(((u64)get_random_u32() * ceil) >> 32);
}
#endif

#ifndef LVS_HAVE_SKB_CLEAR_TSTAMP
#include <linux/skbuff.h>

/* Before 5.18 the timestamp was all there was to clear. */
static inline void skb_clear_tstamp(struct sk_buff *skb)
{
	skb->tstamp = 0;
}
#endif

#ifndef LVS_HAVE_FTRACE_REGS
#include <linux/ftrace.h>

/*
 * Before 5.11 an ftrace callback got the saved registers themselves
 * (all of them with FTRACE_OPS_FL_SAVE_REGS); no header of those kernels
 * names ftrace_regs.
 */
#define ftrace_regs pt_regs

static inline struct pt_regs *ftrace_get_regs(struct pt_regs *regs)
{
	return regs;
}
#endif

#ifndef LVS_HAVE_FTRACE_FREE_FILTER
#include <linux/ftrace.h>

/*
 * Not exported before 6.2.  A reset to no filter frees the ops' filter
 * hash the same way (an empty hash is the shared EMPTY_HASH).
 */
#define ftrace_free_filter(ops) ftrace_set_filter((ops), NULL, 0, 1)
#endif

#ifndef LVS_HAVE_GET_KRETPROBE
#include <linux/kprobes.h>

/* Before 5.11 the instance pointed at its kretprobe directly. */
static inline struct kretprobe *get_kretprobe(struct kretprobe_instance *ri)
{
	return ri->rp;
}
#endif

#endif /* LVS_COMPAT_H */
