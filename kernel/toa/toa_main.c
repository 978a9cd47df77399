// SPDX-License-Identifier: GPL-2.0
/*
 * TOA ("TCP Option Address") for real servers behind a FULLNAT balancer.
 *
 * With FULLNAT a real server sees the balancer's local address as the peer
 * of every connection; the balancer tells it the client's address and port
 * in a TCP option (kind 254, or 253 from older balancers; docs/toa.md).
 * This module makes getpeername() and accept() return that client, with
 * no change to applications:
 *
 *  1. toa_capture.c reads the option from the segment that creates a
 *     socket, or from its first segments, and remembers socket -> client
 *     in a hash table of this module (toa_store.c);
 *  2. toa_getname.c replaces the peer that inet_getname()/inet6_getname()
 *     report by the remembered client;
 *  3. toa_capture.c forgets a socket when the socket is freed.
 *
 * Hook mechanism, and why: plain ftrace callbacks (ftrace_ops) on the
 * three TCP functions that run in softirq (toa_capture.c), and kretprobes
 * on the two getname functions, which run in process context
 * (toa_getname.c).  Both are the kernel's supported interfaces for running
 * code at a function's entry (and return): the only change to kernel text
 * is ftrace's own, at the call site it reserves for tracers, made and
 * undone by the kernel; they work on exported and unexported functions
 * alike, and unregistering them waits until no callback runs, so unloading
 * is safe.  kprobes are not used in softirq because a kprobe hit there is
 * skipped whenever it interrupts another kprobe's handler on that CPU
 * (toa_capture.c says what that cost).  The classic TOA modules instead
 * overwrite pointers in the const inet_stream_ops / ipv4_specific tables,
 * which means writing to read-only data; ftrace callbacks that redirect
 * the instruction pointer (livepatch style) would have to re-enter the
 * traced function and give no clean way to see its return.  BPF cgroup
 * getpeername hooks and fexit programs are not available to a module.  The
 * overhead is one ftrace callback per established TCP segment, which
 * returns after two field reads for all but a socket's first segments.
 *
 * Nothing of ours is stored in the socket: no sk_user_data, no
 * sk_destruct, no ops pointer (the kernel assigns the socket's cookie when
 * a client is recorded, as SO_COOKIE would); see toa_store.c for why that
 * makes coexistence and unloading safe.
 *
 * Which peers may name a client: the "trusted" parameter (toa_trust.c).
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/bug.h>
#include <linux/module.h>
#include <lvs/version.h>
#include "toa.h"

static bool enabled = true;
module_param(enabled, bool, 0644);
MODULE_PARM_DESC(enabled,
		 "Use TOA (Y, default) or report real peers and ignore the option (N); writable at run time");

bool toa_enabled(void)
{
	return READ_ONCE(enabled);
}

/* Every record made must have been freed once the store is gone. */
static void toa_check_leaks(void)
{
	u64 made = toa_stat_sum(TOA_STAT_ENTRY_ALLOC);
	u64 freed = toa_stat_sum(TOA_STAT_ENTRY_FREE);

	WARN(made != freed, "toa: %llu records leaked\n", made - freed);
}

static int __init toa_init(void)
{
	int err;

	err = toa_store_init();
	if (err)
		return err;
	err = toa_capture_init();
	if (err)
		goto out_store;
	err = toa_getname_init();
	if (err)
		goto out_capture;
	err = toa_stats_init();
	if (err)
		goto out_getname;
	pr_info("loaded (lvs-toolkit %s)\n", LVS_TOOLKIT_VERSION);
	if (!toa_trust_restricted())
		pr_warn("TOA is believed from any peer: anyone who reaches this server can claim any client address; restrict it to the balancers' local addresses with trusted=PREFIX,... (docs/toa.md)\n");
	return 0;

out_getname:
	toa_getname_exit();
out_capture:
	toa_capture_exit();
out_store:
	toa_store_exit();
	return err;
}

/* The reverse of init: probes first, so nothing runs when the table goes. */
static void __exit toa_exit(void)
{
	toa_stats_exit();
	toa_getname_exit();
	toa_capture_exit();
	toa_store_exit();
	toa_check_leaks();
	pr_info("unloaded\n");
}

module_init(toa_init);
module_exit(toa_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TCP Option Address: client addresses behind a FULLNAT balancer");
MODULE_VERSION(LVS_TOOLKIT_VERSION);
MODULE_INFO(lvs_toolkit, LVS_TOOLKIT_VERSION);
