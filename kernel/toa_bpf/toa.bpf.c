// SPDX-License-Identifier: GPL-2.0
/*
 * TOA without a kernel module (docs/toa.md).  A sock_ops program reads the
 * TOA option (kind 254, IPv4 or IPv6 client; legacy kind 253, IPv6 only:
 * spec/abi.md) from the segment that completes a passive handshake or, when
 * that one had none, from the next segments, and keeps the client in the
 * socket's local storage.  The getpeername4/6 programs (which also give
 * accept() its address) return it.  The option is parsed as toa.ko parses
 * it (kernel/toa/toa_parse.c): a malformed option list is ignored and
 * counted, and TOA is believed only from the trusted prefixes when any are
 * set.  Only the UAPI context structures are used: no kernel BTF needed.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET		2
#define AF_INET6	10
#define SOCK_STREAM	1
#define TOA_KIND	254
#define TOA_KIND_LEGACY	253
#define TOA_LEN_V4	8
#define TOA_LEN_V6	20
#define TCP_HDR_MIN	20
#define OPT_SPACE	40	/* the most a TCP header holds */
#define NONE		0xff	/* no TOA option seen */

struct toa_client {
	__u32 addr[4];		/* network order; IPv4 in addr[0] */
	__u16 port;		/* network order */
	__u8 v6;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toa_client);
} toa_clients SEC(".maps");

/* The counters of /proc/net/toa_stats that mean the same here. */
enum toa_stat {
	ST_SYN_RECV_SOCK_TOA,
	ST_SYN_RECV_SOCK_NO_TOA,
	ST_DATA_SEG_TOA,
	ST_GETNAME_TOA_OK,
	ST_GETNAME_TOA_FAMILY,
	ST_OPT_BAD_LEN,
	ST_OPT_TRUNCATED,
	ST_OPT_AFTER_EOL,
	ST_OPT_DUPLICATE,
	ST_STORE_FAIL,
	ST_OPT_UNTRUSTED,
	ST_MAX
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} toa_stats SEC(".maps");

/* Trusted peers (the balancers' local addresses).  toa_conf[0] is the
 * number of prefixes loaded: 0 believes TOA from any peer.
 */
struct lpm4 {
	__u32 prefixlen;
	__u32 addr;
};

struct lpm6 {
	__u32 prefixlen;
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 64);
	__type(key, struct lpm4);
	__type(value, __u8);
} toa_trusted4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 64);
	__type(key, struct lpm6);
	__type(value, __u8);
} toa_trusted6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} toa_conf SEC(".maps");

enum verdict { FOUND, ABSENT, BAD_LEN, TRUNCATED, AFTER_EOL, DUPLICATE };

static __always_inline void count(__u32 item)
{
	__u64 *v = bpf_map_lookup_elem(&toa_stats, &item);

	if (v)
		(*v)++;
}

/* An index the verifier sees below 64 (the compiler drops a plain mask). */
static __always_inline __u32 bounded(__u32 v)
{
	asm volatile("%0 &= 63" : "+r"(v));
	return v;
}

static __always_inline int toa_kind(__u8 kind)
{
	return kind == TOA_KIND || kind == TOA_KIND_LEGACY;
}

static __always_inline int toa_len_ok(__u8 kind, __u8 len)
{
	if (kind == TOA_KIND)
		return len == TOA_LEN_V4 || len == TOA_LEN_V6;
	return len == TOA_LEN_V6;
}

/* toa_parse_options() of toa.ko over the options copied to w->opt, one
 * byte or option per bpf_loop() step (the verifier checks the step once;
 * an unrolled walk of 40 bytes was past its limit), in one pass: the bytes
 * after an EOL must all be zero.
 */
struct walk {
	__u8 opt[64 + 24];	/* zeros past the copy */
	__u32 len;		/* bytes of options */
	__u32 off;		/* the next one */
	__u32 toa;		/* offset of the TOA option, or NONE */
	__u32 verdict;		/* set when the walk ends early */
	__u8 eol;
};

static long step(__u32 index, void *data)
{
	struct walk *w = data;
	__u32 off = w->off;
	__u8 kind, olen;

	if (off >= w->len)
		return 1;
	off = bounded(off);
	kind = w->opt[off];
	if (w->eol || kind == 0) {
		if (w->eol && kind) {
			w->verdict = AFTER_EOL;
			return 1;
		}
		w->eol = 1;
		w->off = off + 1;
		return 0;
	}
	if (kind == 1) {
		w->off = off + 1;
		return 0;
	}
	if (w->len - off < 2) {
		w->verdict = TRUNCATED;
		return 1;
	}
	olen = w->opt[off + 1];
	if (toa_kind(kind) && !toa_len_ok(kind, olen)) {
		w->verdict = BAD_LEN;
		return 1;
	}
	if (olen < 2 || olen > w->len - off) {
		w->verdict = TRUNCATED;
		return 1;
	}
	if (toa_kind(kind)) {
		if (w->toa != NONE) {
			w->verdict = DUPLICATE;
			return 1;
		}
		w->toa = off;
	}
	w->off = off + olen;
	return 0;
}

static __always_inline enum verdict parse(struct walk *w, struct toa_client *out)
{
	__u32 toa;

	w->off = 0;
	w->toa = NONE;
	w->verdict = FOUND;
	w->eol = 0;
	bpf_loop(OPT_SPACE, step, w, 0);
	if (w->verdict != FOUND)
		return w->verdict;
	if (w->toa == NONE)
		return ABSENT;
	toa = bounded(w->toa);
	__builtin_memset(out, 0, sizeof(*out));
	out->port = w->opt[toa + 2] | w->opt[toa + 3] << 8;	/* as on the wire */
	out->v6 = w->opt[toa + 1] == TOA_LEN_V6;
	if (out->v6)
		__builtin_memcpy(out->addr, &w->opt[toa + 4], 16);
	else
		__builtin_memcpy(out->addr, &w->opt[toa + 4], 4);
	return FOUND;
}

static __always_inline int trusted(struct bpf_sock_ops *skops)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&toa_conf, &zero);
	struct lpm4 k4 = { .prefixlen = 32 };
	struct lpm6 k6 = { .prefixlen = 128 };

	if (!n || !*n)
		return 1;
	if (skops->family == AF_INET) {
		k4.addr = skops->remote_ip4;
		return bpf_map_lookup_elem(&toa_trusted4, &k4) != 0;
	}
	if (skops->remote_ip6[0] == 0 && skops->remote_ip6[1] == 0 &&
	    skops->remote_ip6[2] == bpf_htonl(0xffff)) {	/* v4-mapped peer */
		k4.addr = skops->remote_ip6[3];
		return bpf_map_lookup_elem(&toa_trusted4, &k4) != 0;
	}
	k6.addr[0] = skops->remote_ip6[0];
	k6.addr[1] = skops->remote_ip6[1];
	k6.addr[2] = skops->remote_ip6[2];
	k6.addr[3] = skops->remote_ip6[3];
	return bpf_map_lookup_elem(&toa_trusted6, &k6) != 0;
}

static __always_inline void count_malformed(enum verdict v)
{
	switch (v) {
	case BAD_LEN:
		count(ST_OPT_BAD_LEN);
		break;
	case TRUNCATED:
		count(ST_OPT_TRUNCATED);
		break;
	case AFTER_EOL:
		count(ST_OPT_AFTER_EOL);
		break;
	default:
		count(ST_OPT_DUPLICATE);
	}
}

/* The options of the segment at skb_data: FOUND if a TOA was stored. */
static __always_inline enum verdict capture(struct bpf_sock_ops *skops)
{
	__u8 *p = (__u8 *)(long)skops->skb_data;
	__u8 *end = (__u8 *)(long)skops->skb_data_end;
	struct bpf_sock *sk = skops->sk;
	struct walk w = {};
	struct toa_client c;
	enum verdict v;
	__u32 hlen, i;

	if (!sk || p + TCP_HDR_MIN > end)
		return ABSENT;
	hlen = (p[12] >> 4) << 2;
	if (hlen <= TCP_HDR_MIN)
		return ABSENT;
#pragma unroll
	for (i = 0; i < OPT_SPACE; i++) {
		if (TCP_HDR_MIN + i >= hlen || p + TCP_HDR_MIN + i + 1 > end)
			break;
		w.opt[i] = p[TCP_HDR_MIN + i];
	}
	w.len = hlen - TCP_HDR_MIN < OPT_SPACE ? hlen - TCP_HDR_MIN : OPT_SPACE;
	v = parse(&w, &c);
	if (v == ABSENT)
		return ABSENT;
	if (v != FOUND) {
		count_malformed(v);
		return v;
	}
	if (!trusted(skops)) {
		count(ST_OPT_UNTRUSTED);
		return ABSENT;
	}
	if (!bpf_sk_storage_get(&toa_clients, sk, &c, BPF_SK_STORAGE_GET_F_CREATE)) {
		count(ST_STORE_FAIL);
		return ABSENT;
	}
	return FOUND;
}

SEC("sockops")
int toa_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	enum verdict v;

	if (op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PARSE_HDR_OPT_CB)
		return 1;
	v = capture(skops);
	if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		if (v == FOUND) {
			count(ST_SYN_RECV_SOCK_TOA);
			return 1;
		}
		count(ST_SYN_RECV_SOCK_NO_TOA);
		/* the first data segments may carry it: see their options */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					  BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
		return 1;
	}
	if (v == FOUND) {
		count(ST_DATA_SEG_TOA);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
					  ~BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
	}
	return 1;
}

static __always_inline struct toa_client *client_of(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	if (!sk || ctx->type != SOCK_STREAM)
		return 0;
	return bpf_sk_storage_get(&toa_clients, sk, 0, 0);
}

SEC("cgroup/getpeername4")
int toa_getpeername4(struct bpf_sock_addr *ctx)
{
	struct toa_client *c = client_of(ctx);

	if (!c)
		return 1;
	if (c->v6) {		/* an IPv6 client on an IPv4 socket: left as is */
		count(ST_GETNAME_TOA_FAMILY);
		return 1;
	}
	ctx->user_ip4 = c->addr[0];
	ctx->user_port = c->port;
	count(ST_GETNAME_TOA_OK);
	return 1;
}

SEC("cgroup/getpeername6")
int toa_getpeername6(struct bpf_sock_addr *ctx)
{
	struct toa_client *c = client_of(ctx);

	if (!c)
		return 1;
	if (c->v6) {
		ctx->user_ip6[0] = c->addr[0];
		ctx->user_ip6[1] = c->addr[1];
		ctx->user_ip6[2] = c->addr[2];
		ctx->user_ip6[3] = c->addr[3];
	} else {		/* an IPv4 client on an IPv6 socket: v4-mapped */
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = c->addr[0];
	}
	ctx->user_port = c->port;
	count(ST_GETNAME_TOA_OK);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
