// SPDX-License-Identifier: GPL-2.0
/*
 * Reading the option from incoming segments, and forgetting sockets.
 *
 * Hook mechanism: kprobes on the first instruction of three functions.
 * Debian's 6.1 and 6.12 kernels have CONFIG_KPROBES_ON_FTRACE, and a probe
 * at a function's entry is then an ftrace callback: the only change to
 * kernel text is ftrace's own, at the call site it reserves for tracers,
 * made and undone by the kernel.  The handler runs in the probed
 * function's context (softirq or process, preemption off), where taking a
 * spinlock and allocating with GFP_ATOMIC are allowed.  A probe that fell
 * back to a breakpoint would run its handler in an NMI-like context where
 * neither is; every handler checks kprobe_ftrace() and does nothing then,
 * and toa_capture_init() refuses to load.
 *
 * Probed functions (both kernel lines, IPv4 and IPv6):
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
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/kprobes.h>
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
	err = toa_store_add(sk, &rec);
	if (err && err != -EEXIST)
		toa_stat_inc(TOA_STAT_STORE_FAIL);
	return !err;
}

static int toa_child_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct sock *child = (struct sock *)regs_get_kernel_argument(regs, 1);
	struct sk_buff *skb = (struct sk_buff *)regs_get_kernel_argument(regs, 2);

	if (!kprobe_ftrace(kp) || !toa_enabled())
		return 0;
	toa_stat_inc(toa_capture(child, skb) ? TOA_STAT_SYN_RECV_SOCK_TOA :
		     TOA_STAT_SYN_RECV_SOCK_NO_TOA);
	return 0;
}

/* Could the balancer still be putting TOA on this socket's segments? */
static bool toa_young(const struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return !tp->bytes_acked && tp->segs_in <= TOA_YOUNG_SEGS;
}

static int toa_established_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct sock *sk = (struct sock *)regs_get_kernel_argument(regs, 0);
	struct sk_buff *skb = (struct sk_buff *)regs_get_kernel_argument(regs, 1);

	if (!kprobe_ftrace(kp) || !toa_enabled() || !toa_young(sk))
		return 0;
	if (tcp_hdr(skb)->doff * 4 <= sizeof(struct tcphdr) || toa_store_has(sk))
		return 0;
	if (toa_capture(sk, skb))
		toa_stat_inc(TOA_STAT_DATA_SEG_TOA);
	return 0;
}

/* Not gated by the module parameter: records must go with their socket. */
static int toa_destruct_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct sock *sk = (struct sock *)regs_get_kernel_argument(regs, 0);

	if (kprobe_ftrace(kp) && !toa_store_empty() &&
	    sk->sk_protocol == IPPROTO_TCP)
		toa_store_forget(sk);
	return 0;
}

static struct kprobe toa_destruct_kp = {
	.symbol_name = "inet_sock_destruct",
	.pre_handler = toa_destruct_pre,
};

static struct kprobe toa_child_kp = {
	.symbol_name = "tcp_child_process",
	.pre_handler = toa_child_pre,
};

static struct kprobe toa_established_kp = {
	.symbol_name = "tcp_rcv_established",
	.pre_handler = toa_established_pre,
};

/*
 * register_kprobes() arms the probes in this order: the destructor first,
 * so that every record ever made has a way out.  Unregistering them
 * together is fine: toa_store_exit() frees whatever is left afterwards.
 */
static struct kprobe *toa_capture_kps[] = {
	&toa_destruct_kp, &toa_child_kp, &toa_established_kp,
};

/* Only probes that ftrace carries are accepted (see the top of the file). */
int toa_capture_init(void)
{
	int err, i;

	err = register_kprobes(toa_capture_kps, ARRAY_SIZE(toa_capture_kps));
	if (err) {
		pr_err("cannot probe the TCP functions: %d\n", err);
		return err;
	}
	for (i = 0; i < ARRAY_SIZE(toa_capture_kps); i++) {
		if (!kprobe_ftrace(toa_capture_kps[i])) {
			pr_err("probe on %s is not ftrace-based (CONFIG_KPROBES_ON_FTRACE?); refusing\n",
			       toa_capture_kps[i]->symbol_name);
			toa_capture_exit();
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Returns once no handler runs (unregister_kprobes() waits for RCU). */
void toa_capture_exit(void)
{
	unregister_kprobes(toa_capture_kps, ARRAY_SIZE(toa_capture_kps));
}

unsigned long toa_capture_missed(void)
{
	return toa_destruct_kp.nmissed + toa_child_kp.nmissed +
	       toa_established_kp.nmissed;
}
