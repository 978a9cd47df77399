// SPDX-License-Identifier: GPL-2.0
/* Prototype: TOA without a kernel module.  A sock_ops program reads option
 * 254 (or 253) from the handshake's final ACK or the first data segments of
 * a passive connection and keeps the client in socket-local storage; the
 * getpeername4/6 programs return it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET		2
#define AF_INET6	10
#define TOA_KIND	254
#define TOA_KIND_OLD	253
#define TOA_LEN4	8
#define TOA_LEN6	20
#define MAX_OPTS	20

struct toa_client {
	__u16 family;
	__u16 port;		/* network order */
	__u32 addr[4];		/* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toa_client);
} toa_clients SEC(".maps");

enum { ST_SEEN, ST_STORED, ST_NONE, ST_GETNAME, ST_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} toa_stats SEC(".maps");

static void count(__u32 item)
{
	__u64 *v = bpf_map_lookup_elem(&toa_stats, &item);

	if (v)
		(*v)++;
}

#define OPT_SPACE	40

/* An index the verifier sees bounded (the compiler would drop a plain mask). */
static __always_inline __u32 bounded(__u32 v)
{
	asm volatile("%0 &= 63" : "+r"(v));
	return v;
}

/* Copy the options of the TCP header at skb_data to the stack, then walk
 * them; 0 if a TOA was stored. */
static int capture(struct bpf_sock_ops *skops)
{
	__u8 *p = (__u8 *)(long)skops->skb_data;
	__u8 *end = (__u8 *)(long)skops->skb_data_end;
	struct bpf_sock *sk = skops->sk;
	struct toa_client c = {};
	__u8 opt[96] = {};	/* zeros past the copy end the walk */
	__u32 hlen, off = 0;
	int i;

	if (!sk || p + 20 > end)
		return -1;
	hlen = (p[12] >> 4) << 2;
#pragma unroll
	for (i = 0; i < OPT_SPACE; i++) {
		if (20 + i >= hlen || p + 20 + i + 1 > end)
			break;
		opt[i] = p[20 + i];
	}
	for (i = 0; i < MAX_OPTS; i++) {
		__u8 kind, len;

		if (off >= OPT_SPACE)
			break;
		off = bounded(off);
		kind = opt[off];
		if (kind == 0)
			break;
		if (kind == 1) {
			off++;
			continue;
		}
		len = opt[off + 1];
		if (len < 2)
			break;
		if ((kind == TOA_KIND || kind == TOA_KIND_OLD) &&
		    (len == TOA_LEN4 || len == TOA_LEN6)) {
			if (off + len > OPT_SPACE)
				break;
			c.port = opt[off + 2] | opt[off + 3] << 8;	/* as on the wire */
			if (len == TOA_LEN4) {
				c.family = AF_INET;
				__builtin_memcpy(&c.addr[0], &opt[off + 4], 4);
			} else {
				c.family = AF_INET6;
				__builtin_memcpy(c.addr, &opt[off + 4], 16);
			}
			goto store;
		}
		off += len;
	}
	return -1;
store:
	if (!bpf_sk_storage_get(&toa_clients, sk, &c, BPF_SK_STORAGE_GET_F_CREATE))
		return -1;
	count(ST_STORED);
	return 0;
}

SEC("sockops")
int toa_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		count(ST_SEEN);
		if (capture(skops) == 0)
			break;
		/* not on the ACK: look at the next segments' unknown options */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					  BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		if (capture(skops) == 0)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
						  ~BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
		break;
	}
	return 1;
}

SEC("cgroup/getpeername4")
int toa_getpeername4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct toa_client *c;

	if (!sk)
		return 1;
	c = bpf_sk_storage_get(&toa_clients, sk, 0, 0);
	if (!c)
		return 1;
	count(ST_GETNAME);
	if (c->family != AF_INET)
		return 1;	/* an IPv6 client on an IPv4 socket: left as is */
	ctx->user_ip4 = c->addr[0];
	ctx->user_port = c->port;
	return 1;
}

SEC("cgroup/getpeername6")
int toa_getpeername6(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct toa_client *c;

	if (!sk)
		return 1;
	c = bpf_sk_storage_get(&toa_clients, sk, 0, 0);
	if (!c)
		return 1;
	count(ST_GETNAME);
	if (c->family == AF_INET6) {
		ctx->user_ip6[0] = c->addr[0];
		ctx->user_ip6[1] = c->addr[1];
		ctx->user_ip6[2] = c->addr[2];
		ctx->user_ip6[3] = c->addr[3];
	} else {		/* IPv4 client on an IPv6 socket: v4-mapped */
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = c->addr[0];
	}
	ctx->user_port = c->port;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
