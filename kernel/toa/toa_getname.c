// SPDX-License-Identifier: GPL-2.0
/*
 * getpeername() and accept() report the client that TOA named.
 *
 * Both system calls (and kernel_getpeername(), io_uring's accept) ask the
 * socket's proto_ops->getname, which for TCP is inet_getname() or
 * inet6_getname().  The ops tables are const and stay untouched: a
 * kretprobe on each function lets it fill in the real peer as usual, and
 * then replaces that in the caller's kernel buffer, before the caller
 * copies it to user space.  The entry part is an ftrace callback
 * (CONFIG_KPROBES_ON_FTRACE); the return part runs from the kernel's
 * rethook trampoline, with preemption off.
 *
 * Why a kprobe can stay here, unlike in toa_capture.c: a kprobe hit is
 * skipped only while another kprobe handler runs on the same CPU
 * (kprobe_running() in kprobe_ftrace_handler()).  Every kprobe handler
 * runs with preemption off -- ftrace-based ones under
 * ftrace_test_recursion_trylock(), which disables it; int3-based ones
 * from the exception with interrupts off -- so no other task can run on
 * that CPU meanwhile, only interrupts.  getname() is called from system
 * calls and kernel threads (accept, getpeername, kernel_getpeername), in
 * process context, never from an interrupt: it cannot start on a CPU
 * while a probe handler is running there.  The return part is not a
 * kprobe hit and is never skipped (kretprobe_rethook_handler()).  What
 * can still count in probe_missed is a burst of more calls in flight
 * than the return probe has instances (maxactive).
 *
 * The entry handler only notes the socket and the caller's buffer (peer
 * names of TCP sockets); the lookup is done by the return handler, after
 * the function has taken and released the socket lock.  That order
 * matters: a new socket is in the accept queue before tcp_child_process()
 * records its client, so accept() on another CPU can get it early, but
 * the softirq creating it holds its lock until it is done, and getname()
 * waits for that lock.  A looked-up record is copied, nothing of ours is
 * referenced after the handler returns.  The handler then compares what
 * the function reported with the peer recorded when the option arrived:
 * after a reconnect elsewhere, or when a cgroup BPF program has rewritten
 * the address already, they differ and the result is left alone.
 *
 * Unloading with a call in flight is safe: unregister_kretprobes() clears
 * the handler and waits for RCU; the pending return then goes through the
 * kernel's trampoline without calling into this module.
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/kprobes.h>
#include <linux/net.h>
#include <net/ipv6.h>
#include "toa.h"

struct toa_getname_ctx {
	struct sock *sk;
	struct sockaddr *uaddr;		/* the caller's kernel buffer */
};

static bool toa_same_peer(const struct sockaddr *uaddr,
			  const struct toa_record *rec)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)uaddr;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)uaddr;
	struct in6_addr mapped;

	switch (uaddr->sa_family) {
	case AF_INET:
		ipv6_addr_set_v4mapped(sin->sin_addr.s_addr, &mapped);
		return sin->sin_port == rec->peer_port &&
		       ipv6_addr_equal(&mapped, &rec->peer);
	case AF_INET6:
		return sin6->sin6_port == rec->peer_port &&
		       ipv6_addr_equal(&sin6->sin6_addr, &rec->peer);
	}
	return false;
}

/* An AF_INET socket can show an IPv4 client, or a v4-mapped IPv6 one. */
static enum toa_stat toa_rewrite4(struct sockaddr_in *sin,
				  const struct toa_addr *client)
{
	if (client->v6 && !ipv6_addr_v4mapped(&client->addr.v6))
		return TOA_STAT_GETNAME_TOA_FAMILY;
	sin->sin_port = client->port;
	sin->sin_addr.s_addr = client->v6 ? client->addr.v6.s6_addr32[3] :
					    client->addr.v4;
	return TOA_STAT_GETNAME_TOA_OK;
}

/* An AF_INET6 socket shows an IPv6 client, or an IPv4 one v4-mapped. */
static enum toa_stat toa_rewrite6(struct sockaddr_in6 *sin6,
				  const struct toa_addr *client)
{
	sin6->sin6_port = client->port;
	sin6->sin6_flowinfo = 0;
	sin6->sin6_scope_id = 0;
	if (client->v6)
		sin6->sin6_addr = client->addr.v6;
	else
		ipv6_addr_set_v4mapped(client->addr.v4, &sin6->sin6_addr);
	return TOA_STAT_GETNAME_TOA_OK;
}

static enum toa_stat toa_rewrite(struct sockaddr *uaddr,
				 const struct toa_record *rec)
{
	if (!toa_same_peer(uaddr, rec))
		return TOA_STAT_GETNAME_TOA_MISMATCH;
	if (uaddr->sa_family == AF_INET)
		return toa_rewrite4((struct sockaddr_in *)uaddr, &rec->client);
	return toa_rewrite6((struct sockaddr_in6 *)uaddr, &rec->client);
}

/* getname(sock, uaddr, peer): arm the return handler for TCP peer names. */
static int toa_getname_entry(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct socket *sock = (struct socket *)regs_get_kernel_argument(regs, 0);
	struct toa_getname_ctx *ctx = (struct toa_getname_ctx *)ri->data;
	/* An int argument: the register's upper half is undefined. */
	int peer = (int)regs_get_kernel_argument(regs, 2);
	struct kretprobe *rp = get_kretprobe(ri);
	struct sock *sk = sock->sk;

	if (!rp || !kprobe_ftrace(&rp->kp) || !peer)
		return 1;
	if (!sk || sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return 1;
	ctx->sk = sk;
	ctx->uaddr = (struct sockaddr *)regs_get_kernel_argument(regs, 1);
	return 0;
}

/* The caller still holds the socket, so ctx->sk is alive here. */
static int toa_getname_return(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct toa_getname_ctx *ctx = (struct toa_getname_ctx *)ri->data;
	struct toa_record rec;
	enum toa_found found;

	if ((long)regs_return_value(regs) <= 0)
		return 0;
	found = toa_store_empty() ? TOA_NONE : toa_store_get(ctx->sk, &rec);
	if (found != TOA_OWN) {
		toa_stat_inc(found == TOA_STALE ? TOA_STAT_GETNAME_TOA_STALE :
			     TOA_STAT_GETNAME_TOA_EMPTY);
		return 0;
	}
	if (!toa_enabled()) {
		toa_stat_inc(TOA_STAT_GETNAME_TOA_BYPASS);
		return 0;
	}
	if (!toa_trusted_peer(&rec.peer)) {
		toa_stat_inc(TOA_STAT_GETNAME_TOA_UNTRUSTED);
		return 0;
	}
	toa_stat_inc(toa_rewrite(ctx->uaddr, &rec));
	return 0;
}

static struct kretprobe toa_getname4_rp = {
	.kp.symbol_name = "inet_getname",
	.entry_handler = toa_getname_entry,
	.handler = toa_getname_return,
	.data_size = sizeof(struct toa_getname_ctx),
};

static struct kretprobe toa_getname6_rp = {
	.kp.symbol_name = "inet6_getname",
	.entry_handler = toa_getname_entry,
	.handler = toa_getname_return,
	.data_size = sizeof(struct toa_getname_ctx),
};

static struct kretprobe *toa_getname_rps[] = { &toa_getname4_rp, &toa_getname6_rp };

int toa_getname_init(void)
{
	/* Calls sleep in lock_sock() while armed: allow many in flight. */
	int maxactive = max_t(int, 256, 64 * num_possible_cpus());
	int err, i;

	for (i = 0; i < ARRAY_SIZE(toa_getname_rps); i++)
		toa_getname_rps[i]->maxactive = maxactive;
	err = register_kretprobes(toa_getname_rps, ARRAY_SIZE(toa_getname_rps));
	if (err) {
		pr_err("cannot probe inet_getname/inet6_getname: %d\n", err);
		return err;
	}
	for (i = 0; i < ARRAY_SIZE(toa_getname_rps); i++) {
		if (!kprobe_ftrace(&toa_getname_rps[i]->kp)) {
			pr_err("probe on %s is not ftrace-based; refusing\n",
			       toa_getname_rps[i]->kp.symbol_name);
			toa_getname_exit();
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

void toa_getname_exit(void)
{
	unregister_kretprobes(toa_getname_rps, ARRAY_SIZE(toa_getname_rps));
}

/* Calls that found no free instance, or whose entry probe was skipped. */
unsigned long toa_getname_missed(void)
{
	unsigned long missed = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(toa_getname_rps); i++)
		missed += toa_getname_rps[i]->nmissed +
			  toa_getname_rps[i]->kp.nmissed;
	return missed;
}
