/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interfaces of toa.ko, one section per file:
 *
 *   toa_parse.c    the option parser (toa_parse.h)
 *   toa_store.c    which socket got which client address
 *   toa_capture.c  ftrace hooks that read the option from incoming
 *                  segments and that forget a socket when it is freed
 *   toa_getname.c  probes that rewrite getpeername()/accept() results
 *   toa_trust.c    the "trusted" parameter: peers whose TOA is believed
 *   toa_stats.c    per-CPU counters and /proc/net/toa_stats
 *   toa_main.c     the "enabled" parameter, init and exit
 */
#ifndef TOA_H
#define TOA_H

#include <linux/types.h>
#include <linux/in6.h>
#include <net/sock.h>
#include <lvs/compat.h>
#include "toa_parse.h"

/* Counters of /proc/net/toa_stats, in the order they are printed. */
enum toa_stat {
	TOA_STAT_SYN_RECV_SOCK_TOA,	/* new socket, TOA on its creating segment */
	TOA_STAT_SYN_RECV_SOCK_NO_TOA,	/* new socket, no usable TOA there */
	TOA_STAT_DATA_SEG_TOA,		/* TOA taken later, from a first segment */
	TOA_STAT_GETNAME_TOA_OK,	/* peer name replaced by the client's */
	TOA_STAT_GETNAME_TOA_MISMATCH,	/* socket's peer is no longer the one
					 * that carried the option: left alone
					 */
	TOA_STAT_GETNAME_TOA_FAMILY,	/* IPv6 client on an AF_INET socket */
	TOA_STAT_GETNAME_TOA_BYPASS,	/* TOA socket while switched off */
	TOA_STAT_GETNAME_TOA_EMPTY,	/* TCP peer name, socket without TOA */
	TOA_STAT_OPT_BAD_LEN,		/* malformed: TOA kind, wrong length */
	TOA_STAT_OPT_TRUNCATED,		/* malformed: option past header end */
	TOA_STAT_OPT_AFTER_EOL,		/* malformed: bytes after EOL */
	TOA_STAT_OPT_DUPLICATE,		/* malformed: two TOA options */
	TOA_STAT_STORE_FAIL,		/* no memory to remember the client */
	TOA_STAT_ENTRY_ALLOC,		/* records created ... */
	TOA_STAT_ENTRY_FREE,		/* ... and freed (equal when idle) */
	TOA_STAT_OPT_UNTRUSTED,		/* TOA from a peer not in "trusted" */
	TOA_STAT_GETNAME_TOA_UNTRUSTED,	/* record of a peer no longer trusted:
					 * left alone
					 */
	TOA_STAT_ENTRY_STALE_REPLACED,	/* record of a freed socket replaced by
					 * the next one at its address
					 */
	TOA_STAT_GETNAME_TOA_STALE,	/* record of a freed socket found by
					 * the next one: left alone
					 */
	TOA_STAT_MAX
};

/* What is remembered for one socket. */
struct toa_record {
	struct toa_addr client;		/* from the option */
	struct in6_addr peer;		/* real peer then (v4-mapped for IPv4) */
	__be16 peer_port;
};

/* What a socket's lookup found. */
enum toa_found {
	TOA_NONE,			/* no record */
	TOA_OWN,			/* the socket's own record */
	TOA_STALE,			/* a freed socket's, at the same address */
};

/* toa_main.c */
bool toa_enabled(void);

/* toa_trust.c */
bool toa_trusted_peer(const struct in6_addr *peer);
bool toa_trust_restricted(void);

/* toa_stats.c */
void toa_stat_inc(enum toa_stat stat);
void toa_stat_verdict(enum toa_verdict verdict);
u64 toa_stat_sum(enum toa_stat stat);
int toa_stats_init(void);
void toa_stats_exit(void);

/* toa_store.c */
int toa_store_init(void);
void toa_store_exit(void);
int toa_store_add(const struct sock *sk, u64 cookie,
		  const struct toa_record *rec);
enum toa_found toa_store_get(const struct sock *sk, struct toa_record *rec);
bool toa_store_has(const struct sock *sk);
void toa_store_forget(const struct sock *sk);
bool toa_store_empty(void);

/* toa_capture.c */
int toa_capture_init(void);
void toa_capture_exit(void);

/* toa_getname.c */
int toa_getname_init(void);
void toa_getname_exit(void);
unsigned long toa_getname_missed(void);

#endif /* TOA_H */
