// SPDX-License-Identifier: GPL-2.0
/*
 * Which socket was told which client address.
 *
 * The records live in a hash table owned by this module, keyed by the
 * socket's address, and not in the socket itself (sk_user_data):
 *
 *  - the socket is never written to, so kTLS, sockmap/BPF and every other
 *    user of sk_user_data keep their slot, and a TOA socket can still be
 *    put into a sockmap (which refuses sockets whose slot is taken);
 *  - nothing in a socket ever points into this module, so unloading needs
 *    no walk over live sockets: once the probes are gone the table belongs
 *    to us alone and is freed whole.
 *
 * A record is dropped when its socket is freed (toa_capture.c hooks
 * inet_sock_destruct(), which runs before the socket's memory goes back to
 * the slab).  Should that hook ever not run for a socket, its record would
 * wait for the next socket allocated at the same address; so every record
 * also carries the socket's cookie (the kernel's 64-bit socket identity, the
 * value of SO_COOKIE), and a record whose cookie is not its socket's is
 * stale: never reported, replaced when the new socket gets a client of its
 * own, and dropped with the socket at that address.  Every new socket
 * starts with cookie 0 (sk_alloc() zeroes it, sk_clone_lock() clears the
 * listener's), and toa_capture.c has the cookie assigned when it records a
 * client, so a record never matches a socket it was not made for.
 *
 * Lookups run under RCU and records are freed after a grace period,
 * because getname() may be reading one while another CPU drops it.
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/rhashtable.h>
#include <linux/slab.h>
#include "toa.h"

struct toa_entry {
	struct rhash_head node;
	const struct sock *sk;		/* key: never dereferenced here */
	u64 cookie;			/* the socket it was made for */
	struct toa_record rec;
	struct rcu_head rcu;
};

static struct kmem_cache *toa_cache;
static struct rhashtable toa_table;

static const struct rhashtable_params toa_params = {
	.head_offset = offsetof(struct toa_entry, node),
	.key_offset = offsetof(struct toa_entry, sk),
	.key_len = sizeof_field(struct toa_entry, sk),
	.automatic_shrinking = true,
};

static void toa_entry_free(struct toa_entry *entry)
{
	kmem_cache_free(toa_cache, entry);
	toa_stat_inc(TOA_STAT_ENTRY_FREE);
}

static void toa_entry_free_rcu(struct rcu_head *head)
{
	toa_entry_free(container_of(head, struct toa_entry, rcu));
}

static void toa_entry_free_cb(void *ptr, void *arg)
{
	toa_entry_free(ptr);
}

/**
 * toa_store_add - remember the client of a socket
 * @sk: the socket
 * @cookie: its cookie (assigned: never 0)
 * @rec: what to remember
 *
 * Called from softirq (or the socket backlog) with the socket locked, so
 * two adds for one socket never race; the first record of a socket stays,
 * a stale one left at the same address is replaced.
 * Returns 0, -EEXIST if the socket already has a record, or another error
 * when memory is short.
 */
int toa_store_add(const struct sock *sk, u64 cookie,
		  const struct toa_record *rec)
{
	struct toa_entry *entry, *old;
	int err = 0;

	entry = kmem_cache_alloc(toa_cache, GFP_ATOMIC | __GFP_NOWARN);
	if (!entry)
		return -ENOMEM;
	toa_stat_inc(TOA_STAT_ENTRY_ALLOC);
	entry->sk = sk;
	entry->cookie = cookie;
	entry->rec = *rec;
	rcu_read_lock();	/* @old stays readable */
	old = rhashtable_lookup_get_insert_fast(&toa_table, &entry->node,
						toa_params);
	if (IS_ERR(old))
		err = PTR_ERR(old);
	else if (old && old->cookie == cookie)
		err = -EEXIST;
	else if (old)
		err = rhashtable_replace_fast(&toa_table, &old->node,
					      &entry->node, toa_params);
	if (!err && old) {
		call_rcu(&old->rcu, toa_entry_free_rcu);
		toa_stat_inc(TOA_STAT_ENTRY_STALE_REPLACED);
	}
	rcu_read_unlock();
	if (err)
		toa_entry_free(entry);	/* never visible to readers */
	return err;
}

static enum toa_found toa_store_find(const struct sock *sk,
				     struct toa_record *rec)
{
	u64 cookie = atomic64_read(&sk->sk_cookie);
	enum toa_found found = TOA_NONE;
	struct toa_entry *entry;

	rcu_read_lock();
	entry = rhashtable_lookup(&toa_table, &sk, toa_params);
	if (entry && (!cookie || entry->cookie != cookie)) {
		found = TOA_STALE;
	} else if (entry) {
		found = TOA_OWN;
		if (rec)
			*rec = entry->rec;
	}
	rcu_read_unlock();
	return found;
}

/* Copy the record of @sk into @rec: TOA_OWN, or whether there is none. */
enum toa_found toa_store_get(const struct sock *sk, struct toa_record *rec)
{
	return toa_store_find(sk, rec);
}

/* Has @sk a record of its own (a stale one does not count)? */
bool toa_store_has(const struct sock *sk)
{
	return toa_store_find(sk, NULL) == TOA_OWN;
}

/* Drop the record at a socket that is being freed, its own or stale. */
void toa_store_forget(const struct sock *sk)
{
	struct toa_entry *entry;

	rcu_read_lock();
	entry = rhashtable_lookup(&toa_table, &sk, toa_params);
	if (entry && !rhashtable_remove_fast(&toa_table, &entry->node, toa_params))
		call_rcu(&entry->rcu, toa_entry_free_rcu);
	rcu_read_unlock();
}

/* Cheap test that lets the hot paths skip the lookup when nothing is stored. */
bool toa_store_empty(void)
{
	return !atomic_read(&toa_table.nelems);
}

int toa_store_init(void)
{
	int err;

	toa_cache = KMEM_CACHE(toa_entry, 0);
	if (!toa_cache)
		return -ENOMEM;
	err = rhashtable_init(&toa_table, &toa_params);
	if (err)
		kmem_cache_destroy(toa_cache);
	return err;
}

/*
 * Only once no probe can run any more: frees the records of sockets that
 * are still alive (they never pointed to them), then waits for the
 * call_rcu() callbacks of dropped records, which run this module's code.
 */
void toa_store_exit(void)
{
	rhashtable_free_and_destroy(&toa_table, toa_entry_free_cb, NULL);
	rcu_barrier();
	kmem_cache_destroy(toa_cache);
}
