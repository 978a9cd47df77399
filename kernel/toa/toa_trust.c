// SPDX-License-Identifier: GPL-2.0
/*
 * Which peers may name a client: the module parameter "trusted".
 *
 * Anyone who can send TCP to a real server can put a TOA option on it, so
 * an option is only believed when the segment came from one of the
 * balancers' local addresses.  "trusted" lists their prefixes, IPv4 and
 * IPv6, separated by commas ("10.0.3.0/24,2001:db8:3::/64"; an address
 * without a length is a host).  Empty, the default, means every peer, as
 * TOA modules have always behaved; toa_main.c says so at load time.
 *
 * The list is checked where a client is recorded (toa_capture.c) and again
 * where it is reported (toa_getname.c), so a list made shorter at run time
 * also hides the clients that now untrusted peers named before.
 *
 * The parameter is writable at run time.  A value is parsed whole into a
 * new list before anything changes: a bad value is refused with -EINVAL
 * and a message naming the offending item, and the old list stays.  The
 * list is read under RCU; writers are serialised by the kernel's lock for
 * module parameters, and the old list is freed after a grace period.
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/inet.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/ipv6.h>
#include "toa.h"

#define TOA_TRUST_MAX	64		/* prefixes in one list */

/* An IPv4 prefix is kept v4-mapped: ::ffff:a.b.c.d/(96 + len). */
struct toa_prefix {
	struct in6_addr addr;
	unsigned int len;
};

struct toa_trust {
	struct rcu_head rcu;
	unsigned int count;
	struct toa_prefix prefix[];
};

/* NULL: no list, every peer is trusted. */
static struct toa_trust __rcu *toa_trusted;

bool toa_trusted_peer(const struct in6_addr *peer)
{
	const struct toa_trust *trust;
	bool found = true;
	unsigned int i;

	rcu_read_lock();
	trust = rcu_dereference(toa_trusted);
	if (trust) {
		found = false;
		for (i = 0; i < trust->count && !found; i++)
			found = ipv6_prefix_equal(peer, &trust->prefix[i].addr,
						  trust->prefix[i].len);
	}
	rcu_read_unlock();
	return found;
}

bool toa_trust_restricted(void)
{
	return rcu_access_pointer(toa_trusted);
}

/* The length after '/' into @out (the full length without one). */
static bool toa_prefix_len(const char *len, unsigned int max, unsigned int *out)
{
	if (!len) {
		*out = max;
		return true;
	}
	return !kstrtouint(len, 10, out) && *out <= max;
}

/* Parse one "address[/length]" item into @prefix; NULL or the reason. */
static const char *toa_parse_prefix(char *item, struct toa_prefix *prefix)
{
	char *len = strchr(item, '/');
	struct in6_addr masked;
	const char *end;
	__be32 v4;

	if (len)
		*len++ = '\0';
	if (strchr(item, ':')) {
		if (!in6_pton(item, -1, prefix->addr.s6_addr, '\0', &end))
			return "not an IPv4 or IPv6 address";
		if (ipv6_addr_v4mapped(&prefix->addr))
			return "IPv4-mapped: write IPv4 prefixes as IPv4";
		if (!toa_prefix_len(len, 128, &prefix->len))
			return "the length after '/' must be 0 to 128";
	} else {
		if (!in4_pton(item, -1, (u8 *)&v4, '\0', &end))
			return "not an IPv4 or IPv6 address";
		ipv6_addr_set_v4mapped(v4, &prefix->addr);
		if (!toa_prefix_len(len, 32, &prefix->len))
			return "the length after '/' must be 0 to 32";
		prefix->len += 96;
	}
	ipv6_addr_prefix(&masked, &prefix->addr, prefix->len);
	if (!ipv6_addr_equal(&masked, &prefix->addr))
		return "address bits set beyond the prefix length";
	return NULL;
}

/*
 * Parse a whole @list (@val: the same, to quote); messages name the first
 * bad item and say that nothing changed.
 */
static int toa_parse_trust(char *list, struct toa_trust *trust,
			   const char *val)
{
	const char *why;
	char *item;

	while ((item = strsep(&list, ",")) != NULL) {
		item = strim(item);
		if (trust->count == TOA_TRUST_MAX) {
			pr_err("trusted=%.64s... refused (unchanged): more than %d prefixes\n",
			       val, TOA_TRUST_MAX);
			return -EINVAL;
		}
		if (!*item) {
			pr_err("trusted=%.200s refused (unchanged): empty item\n",
			       val);
			return -EINVAL;
		}
		why = toa_parse_prefix(item, &trust->prefix[trust->count]);
		if (why) {
			pr_err("trusted=%.200s refused (unchanged): '%s': %s\n",
			       val, item, why);
			return -EINVAL;
		}
		trust->count++;
	}
	return 0;
}

static int toa_trust_set(const char *val, const struct kernel_param *kp)
{
	struct toa_trust *trust = NULL, *old;
	char *copy, *list, *shown = NULL;
	int err = 0;

	copy = kstrdup(val, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	list = strim(copy);
	if (*list) {
		shown = kstrdup(list, GFP_KERNEL);
		trust = kzalloc(struct_size(trust, prefix, TOA_TRUST_MAX),
				GFP_KERNEL);
		err = trust && shown ? toa_parse_trust(list, trust, shown) :
				       -ENOMEM;
	}
	kfree(shown);
	kfree(copy);
	if (err) {
		kfree(trust);
		return err;
	}
	/* Writers hold the kernel's module parameter lock. */
	old = rcu_replace_pointer(toa_trusted, trust, true);
	if (old)
		kfree_rcu(old, rcu);
	return 0;
}

static int toa_trust_get(char *buf, const struct kernel_param *kp)
{
	const struct toa_trust *trust;
	const struct toa_prefix *p;
	int len = 0;
	unsigned int i;

	rcu_read_lock();
	trust = rcu_dereference(toa_trusted);
	for (i = 0; trust && i < trust->count; i++) {
		p = &trust->prefix[i];
		if (ipv6_addr_v4mapped(&p->addr))
			len += scnprintf(buf + len, PAGE_SIZE - len, "%s%pI4/%u",
					 i ? "," : "", &p->addr.s6_addr32[3],
					 p->len - 96);
		else
			len += scnprintf(buf + len, PAGE_SIZE - len, "%s%pI6c/%u",
					 i ? "," : "", &p->addr, p->len);
	}
	rcu_read_unlock();
	len += scnprintf(buf + len, PAGE_SIZE - len, "\n");
	return len;
}

/* At unload or a failed load, after every reader is gone. */
static void toa_trust_free(void *arg)
{
	kfree(rcu_replace_pointer(toa_trusted, NULL, true));
}

static const struct kernel_param_ops toa_trust_ops = {
	.set = toa_trust_set,
	.get = toa_trust_get,
	.free = toa_trust_free,
};

module_param_cb(trusted, &toa_trust_ops, NULL, 0644);
MODULE_PARM_DESC(trusted,
		 "Prefixes of the balancers' local addresses whose TOA is believed, e.g. 10.0.3.0/24,2001:db8:3::/64 (empty: any peer); writable at run time");
