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
 * A record is dropped when its socket is freed (toa_capture.c probes
 * inet_sock_destruct(), which runs before the socket's memory goes back to
 * the slab), so a socket allocated later at the same address never finds a
 * stale record.  Lookups run under RCU and records are freed after a grace
 * period, because getname() may be reading one while another CPU drops it.
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/rhashtable.h>
#include <linux/slab.h>
#include "toa.h"

struct toa_entry {
	struct rhash_head node;
	const struct sock *sk;		/* key: never dereferenced here */
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
 * @rec: what to remember
 *
 * Called from softirq (or the socket backlog) with the socket locked, so
 * two adds for one socket never race; the first record of a socket stays.
 * Returns 0, -EEXIST if the socket already has a record, or another error
 * when memory is short.
 */
int toa_store_add(const struct sock *sk, const struct toa_record *rec)
{
	struct toa_entry *entry;
	int err;

	entry = kmem_cache_alloc(toa_cache, GFP_ATOMIC | __GFP_NOWARN);
	if (!entry)
		return -ENOMEM;
	toa_stat_inc(TOA_STAT_ENTRY_ALLOC);
	entry->sk = sk;
	entry->rec = *rec;
	err = rhashtable_lookup_insert_fast(&toa_table, &entry->node, toa_params);
	if (err)
		toa_entry_free(entry);	/* never visible to readers */
	return err;
}

/* Copy the record of @sk into @rec; false if it has none. */
bool toa_store_get(const struct sock *sk, struct toa_record *rec)
{
	struct toa_entry *entry;

	rcu_read_lock();
	entry = rhashtable_lookup(&toa_table, &sk, toa_params);
	if (entry)
		*rec = entry->rec;
	rcu_read_unlock();
	return entry;
}

bool toa_store_has(const struct sock *sk)
{
	bool found;

	rcu_read_lock();
	found = rhashtable_lookup(&toa_table, &sk, toa_params);
	rcu_read_unlock();
	return found;
}

/* Drop the record of a socket that is being freed. */
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
