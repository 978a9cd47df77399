// SPDX-License-Identifier: GPL-2.0
/*
 * Reading the option from incoming segments, and forgetting sockets.
 *
 * Hook mechanism: one ftrace_ops per function (register_ftrace_function()
 * with a filter on the function's name), on three functions that run in
 * softirq as often as in process context.  The only change to kernel text
 * is ftrace's own, at the call site it reserves for tracers, made and
 * undone by the kernel.  The callback runs in the hooked function's
 * context with preemption off, where taking a spinlock and allocating with
 * GFP_ATOMIC are allowed, and reads the arguments from the registers
 * ftrace saved (FTRACE_OPS_FL_SAVE_REGS).
 *
 * Why not kprobes, as toa_getname.c uses: a kprobe is skipped (counted in
 * its nmissed, the handler never runs) when it is hit while any kprobe
 * handler runs on the same CPU.  These functions run in softirq, which
 * can interrupt a kprobe handler running in process context -- another
 * tool's probe, or one of ours on a socket's backlog -- and a skipped hook
 * loses a client, or leaves the record of a freed socket behind for the
 * next socket at the same address.  ftrace calls a callback in every
 * context, whatever probe handler it interrupted; it only drops a call
 * made from inside an ftrace callback running in the same context level
 * on the same task (trace_test_and_set_recursion(): one recursion bit per
 * level, normal/softirq/irq/NMI, with one allowance for the moment an
 * interrupt has not yet raised its level).  No callback calls these TCP
 * functions.  Records still carry the socket's cookie (toa_store.c), so a
 * record that outlived its socket anyway is never believed.
 *
 * Hooked functions (both kernel lines, IPv4 and IPv6):
 *
 *  tcp_child_process(parent, child, skb)
 *	a new passive socket and the segment that completed its handshake,
 *	syncookie children included.  Only a child that won the race to be
 *	hashed gets here, so nothing is recorded for one that is thrown away.
 *  tcp_rcv_established(sk, skb)
 *	segments of established sockets.  Only the first few of a socket
 *	whose own data the peer has not acknowledged yet are looked at: the
 *	balancer puts TOA on segments whose ack_seq is our ISN + 1.
 *  inet_sock_destruct(sk)
 *	reached through sk->sk_destruct for IPv4 and IPv6 sockets, as the
 *	last step before the memory is freed: where a record is dropped.
 *
 * Unloading: unregister_ftrace_function() returns only once no callback
 * of the ops can be running any more (for a module's ops it waits for
 * every CPU to schedule and, on preemptible kernels, for RCU-tasks).
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/ftrace.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <net/ipv6.h>
#include <net/tcp.h>
#include "toa.h"

/* How many segments of a young socket may still bring the option. */
#define TOA_YOUNG_SEGS	8

static void toa_sk_peer(const struct sock *sk, struct in6_addr *addr,
			__be16 *port)
{
	*port = sk->sk_dport;
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6) {
		*addr = sk->sk_v6_daddr;
		return;
	}
#endif
	ipv6_addr_set_v4mapped(sk->sk_daddr, addr);
}

static enum toa_verdict toa_parse_skb(const struct sk_buff *skb,
				      struct toa_addr *client)
{
	const struct tcphdr *th = tcp_hdr(skb);
	unsigned int hdrlen = th->doff * 4;

	if (hdrlen <= sizeof(*th))
		return TOA_ABSENT;
	/* TCP pulled the whole header before these functions; verify it. */
	if ((const u8 *)th + hdrlen > skb_tail_pointer(skb))
		return TOA_TRUNCATED;
	return toa_parse_options((const u8 *)(th + 1), hdrlen - sizeof(*th),
				 client);
}

/*
 * The socket's cookie, assigned now if it has none yet: the same value
 * SO_COOKIE and sock_diag report, kept by the kernel in the socket.  This
 * is the one socket field toa.ko causes to be written, through the
 * kernel's own function, and it points to nothing of ours.
 */
static u64 toa_sk_cookie(struct sock *sk)
{
	u32 cookie[2];

	sock_diag_save_cookie(sk, cookie);
	return (u64)cookie[1] << 32 | cookie[0];
}

/* Parse @skb and remember its client for @sk; returns whether it did. */
static bool toa_capture(struct sock *sk, const struct sk_buff *skb)
{
	struct toa_record rec;
	enum toa_verdict verdict;
	int err;

	verdict = toa_parse_skb(skb, &rec.client);
	if (verdict != TOA_FOUND) {
		toa_stat_verdict(verdict);
		return false;
	}
	toa_sk_peer(sk, &rec.peer, &rec.peer_port);
	if (!toa_trusted_peer(&rec.peer)) {
		toa_stat_inc(TOA_STAT_OPT_UNTRUSTED);
		return false;
	}
	err = toa_store_add(sk, toa_sk_cookie(sk), &rec);
	if (err && err != -EEXIST)
		toa_stat_inc(TOA_STAT_STORE_FAIL);
	return !err;
}

/* The hooked function's arguments: ftrace saved its registers. */
static struct pt_regs *toa_regs(struct ftrace_regs *fregs)
{
	return ftrace_get_regs(fregs);
}

static void notrace toa_child_hook(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *ops,
				   struct ftrace_regs *fregs)
{
	struct pt_regs *regs = toa_regs(fregs);
	struct sock *child;
	struct sk_buff *skb;

	if (!regs || !toa_enabled())
		return;
	child = (struct sock *)regs_get_kernel_argument(regs, 1);
	skb = (struct sk_buff *)regs_get_kernel_argument(regs, 2);
	toa_stat_inc(toa_capture(child, skb) ? TOA_STAT_SYN_RECV_SOCK_TOA :
		     TOA_STAT_SYN_RECV_SOCK_NO_TOA);
}

/* Could the balancer still be putting TOA on this socket's segments? */
static bool toa_young(const struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return !tp->bytes_acked && tp->segs_in <= TOA_YOUNG_SEGS;
}

static void notrace toa_established_hook(unsigned long ip,
					 unsigned long parent_ip,
					 struct ftrace_ops *ops,
					 struct ftrace_regs *fregs)
{
	struct pt_regs *regs = toa_regs(fregs);
	struct sock *sk;
	struct sk_buff *skb;

	if (!regs || !toa_enabled())
		return;
	sk = (struct sock *)regs_get_kernel_argument(regs, 0);
	skb = (struct sk_buff *)regs_get_kernel_argument(regs, 1);
	if (!toa_young(sk) || tcp_hdr(skb)->doff * 4 <= sizeof(struct tcphdr))
		return;
	if (toa_store_has(sk))
		return;
	if (toa_capture(sk, skb))
		toa_stat_inc(TOA_STAT_DATA_SEG_TOA);
}

/*
 * Not gated by the module parameter: records must go with their socket.
 * Any record at the address goes, the socket's own or a stale one.
 */
static void notrace toa_destruct_hook(unsigned long ip,
				      unsigned long parent_ip,
				      struct ftrace_ops *ops,
				      struct ftrace_regs *fregs)
{
	struct pt_regs *regs = toa_regs(fregs);

	if (regs && !toa_store_empty())
		toa_store_forget((struct sock *)regs_get_kernel_argument(regs, 0));
}

struct toa_hook {
	char name[32];		/* ftrace_set_filter() wants it writable */
	struct ftrace_ops ops;
};

/*
 * PERMANENT: while the hooks are registered, the sysctl kernel.ftrace_enabled
 * cannot switch ftrace off (records would outlive their sockets), as for
 * kprobes and livepatches.
 */
#define TOA_HOOK(fn, cb) {						\
	.name = #fn,							\
	.ops = {							\
		.func = (cb),						\
		.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_PERMANENT, \
	},								\
}

/*
 * Registered in this order, the destructor first, so that every record
 * ever made has a way out; unregistered in the reverse order.
 */
static struct toa_hook toa_hooks[] = {
	TOA_HOOK(inet_sock_destruct, toa_destruct_hook),
	TOA_HOOK(tcp_child_process, toa_child_hook),
	TOA_HOOK(tcp_rcv_established, toa_established_hook),
};

static int toa_hook_register(struct toa_hook *hook)
{
	int err;

	err = ftrace_set_filter(&hook->ops, hook->name, strlen(hook->name), 1);
	if (err) {
		pr_err("cannot hook %s (not traceable?): %d\n", hook->name, err);
		return err;
	}
	err = register_ftrace_function(&hook->ops);
	if (err) {
		pr_err("cannot hook %s: %d\n", hook->name, err);
		ftrace_free_filter(&hook->ops);
	}
	return err;
}

/* Returns once no callback of @hook runs any more. */
static void toa_hook_unregister(struct toa_hook *hook)
{
	unregister_ftrace_function(&hook->ops);
	ftrace_free_filter(&hook->ops);
}

int toa_capture_init(void)
{
	int err, i;

	for (i = 0; i < ARRAY_SIZE(toa_hooks); i++) {
		err = toa_hook_register(&toa_hooks[i]);
		if (err)
			goto out_unregister;
	}
	return 0;

out_unregister:
	while (i--)
		toa_hook_unregister(&toa_hooks[i]);
	return err;
}

void toa_capture_exit(void)
{
	int i = ARRAY_SIZE(toa_hooks);

	while (i--)
		toa_hook_unregister(&toa_hooks[i]);
}
