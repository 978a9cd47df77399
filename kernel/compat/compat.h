/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where differences between the kernel lines we build for
 * (6.1 and 6.12) are bridged.  Features are detected by tools/kbuild.py
 * probing the target's headers (compat_autoconf.h), never by comparing
 * version numbers, so a backported API is picked up on its own.
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

/* Before the sized variant, tables ended with an empty entry (ours do). */
static inline struct ctl_table_header *
register_net_sysctl_sz(struct net *net, const char *path,
		       struct ctl_table *table, size_t size)
{
	return register_net_sysctl(net, path, table);
}
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

#endif /* LVS_COMPAT_H */
