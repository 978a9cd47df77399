// SPDX-License-Identifier: GPL-2.0
/*
 * lvs-toolkit extensions of IPVS: life cycle, sysctls, extended counters.
 *
 * Every network namespace gets its own copy of our sysctls (next to the
 * upstream ones in /proc/sys/net/ipv4/vs/) and its own per-CPU counters,
 * shown in /proc/net/ip_vs_ext_stats with one column per online CPU and
 * a total over all CPUs.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/sysctl.h>
#include <linux/user_namespace.h>
#include <net/net_namespace.h>
#include <net/ip_vs.h>
#include <lvs/compat.h>

#include "ip_vs_fnat.h"

static const char *const ip_vs_ext_stat_names[IP_VS_EXT_STAT_MAX] = {
	[IP_VS_EXT_FNAT_ADD_TOA_OK]		= "fullnat_add_toa_ok",
	[IP_VS_EXT_FNAT_ADD_TOA_FAIL_LEN]	= "fullnat_add_toa_fail_len",
	[IP_VS_EXT_FNAT_ADD_TOA_HEAD_FULL]	= "fullnat_add_toa_head_full",
	[IP_VS_EXT_FNAT_ADD_TOA_FAIL_MEM]	= "fullnat_add_toa_fail_mem",
	[IP_VS_EXT_FNAT_ADD_TOA_FAIL_PROTO]	= "fullnat_add_toa_fail_proto",
	[IP_VS_EXT_FNAT_CONN_REUSED]		= "fullnat_conn_reused",
	[IP_VS_EXT_FNAT_CONN_REUSED_CLOSE]	= "fullnat_conn_reused_close",
	[IP_VS_EXT_FNAT_CONN_REUSED_TIMEWAIT]	= "fullnat_conn_reused_timewait",
	[IP_VS_EXT_FNAT_CONN_REUSED_FINWAIT]	= "fullnat_conn_reused_finwait",
	[IP_VS_EXT_FNAT_CONN_REUSED_CLOSEWAIT]	= "fullnat_conn_reused_closewait",
	[IP_VS_EXT_FNAT_CONN_REUSED_LASTACK]	= "fullnat_conn_reused_lastack",
	[IP_VS_EXT_FNAT_CONN_REUSED_ESTAB]	= "fullnat_conn_reused_estab",
	[IP_VS_EXT_FNAT_NO_LADDR]		= "fullnat_no_laddr",
	[IP_VS_EXT_FNAT_LPORT_EXHAUSTED]	= "fullnat_lport_exhausted",
	[IP_VS_EXT_FNAT_TS_REMOVED]		= "fullnat_timestamp_removed",
	[IP_VS_EXT_FNAT_MSS_ADJUSTED]		= "fullnat_mss_adjusted",
	[IP_VS_EXT_FNAT_EXPIRE_RST]		= "conn_expire_tcp_rst",
	[IP_VS_EXT_FNAT_CSUM_ERROR]		= "fullnat_csum_error",
	[IP_VS_EXT_SP_RS_ERROR]			= "synproxy_rs_error",
	[IP_VS_EXT_SP_NULL_ACK]			= "synproxy_null_ack",
	[IP_VS_EXT_SP_BAD_ACK]			= "synproxy_bad_ack",
	[IP_VS_EXT_SP_OK_ACK]			= "synproxy_ok_ack",
	[IP_VS_EXT_SP_SYN_CNT]			= "synproxy_syn_cnt",
	[IP_VS_EXT_SP_ACKSTORM]			= "synproxy_ackstorm",
	[IP_VS_EXT_SP_SYNSEND_QLEN]		= "synproxy_synsend_qlen",
	[IP_VS_EXT_SP_CONN_REUSED]		= "synproxy_conn_reused",
	[IP_VS_EXT_SP_CONN_REUSED_CLOSE]	= "synproxy_conn_reused_close",
	[IP_VS_EXT_SP_CONN_REUSED_TIMEWAIT]	= "synproxy_conn_reused_timewait",
	[IP_VS_EXT_SP_CONN_REUSED_FINWAIT]	= "synproxy_conn_reused_finwait",
	[IP_VS_EXT_SP_CONN_REUSED_CLOSEWAIT]	= "synproxy_conn_reused_closewait",
	[IP_VS_EXT_SP_CONN_REUSED_LASTACK]	= "synproxy_conn_reused_lastack",
	[IP_VS_EXT_SP_NO_DEST]			= "synproxy_no_dest",
	[IP_VS_EXT_SP_STALE_ACK]		= "synproxy_stale_ack",
	[IP_VS_EXT_SP_SYN_RETRY]		= "synproxy_syn_retry",
	[IP_VS_EXT_SP_HS_FAIL]			= "synproxy_hs_fail",
	[IP_VS_EXT_SP_OPTS_LOST]		= "synproxy_opts_lost",
	[IP_VS_EXT_SYNC_SEQ_IGNORED]		= "sync_seq_ignored",
	[IP_VS_EXT_SYNC_FNAT_SENT]		= "sync_fullnat_sent",
	[IP_VS_EXT_SYNC_FNAT_RECV]		= "sync_fullnat_recv",
	[IP_VS_EXT_SYNC_FNAT_NO_DEST]		= "sync_fullnat_no_dest",
	[IP_VS_EXT_SYNC_FNAT_NO_LADDR]		= "sync_fullnat_no_laddr",
	[IP_VS_EXT_SYNC_FNAT_CONFLICT]		= "sync_fullnat_conflict",
	[IP_VS_EXT_SYNC_FNAT_BAD]		= "sync_fullnat_bad",
	[IP_VS_EXT_SYNC_MSG_DROPPED]		= "sync_msg_dropped",
	[IP_VS_EXT_SYNC_CONN_SKIPPED]		= "sync_conn_skipped",
	[IP_VS_EXT_SYNC_MSG_SENT]		= "sync_msg_sent",
	[IP_VS_EXT_SYNC_MSG_SEND_ERROR]		= "sync_msg_send_error",
	[IP_VS_EXT_SYNC_MSG_QUEUE_FULL]		= "sync_msg_queue_full",
	[IP_VS_EXT_SYNC_MSG_RECV]		= "sync_msg_recv",
	[IP_VS_EXT_DEF_FRAG_DROP]		= "defence_ip_frag_drop",
	[IP_VS_EXT_DEF_TCP_DROP]		= "defence_tcp_drop",
	[IP_VS_EXT_DEF_UDP_DROP]		= "defence_udp_drop",
};

static int ip_vs_ext_zero;
static int ip_vs_ext_one = 1;
static int ip_vs_ext_lport_lo = 1025;
static int ip_vs_ext_lport_hi = 65535;
static int ip_vs_ext_tries_lo = 10;
static int ip_vs_ext_tries_hi = 60000;
static int ip_vs_ext_mss_lo = 536;
static int ip_vs_ext_mss_hi = 9000;
static int ip_vs_ext_ws_hi = 14;
static int ip_vs_ext_ttl_hi = 255;
static int ip_vs_ext_store_hi = 5;
static int ip_vs_ext_storm_hi = 255;
static int ip_vs_ext_retry_hi = 6;
static int ip_vs_ext_age_hi = 128;

#define IP_VS_EXT_BOOL(name, field)					\
	{ .procname = name, .data = &ip_vs_ext_defaults.field,		\
	  .maxlen = sizeof(int), .mode = 0644,				\
	  .proc_handler = proc_dointvec_minmax,				\
	  .extra1 = &ip_vs_ext_zero, .extra2 = &ip_vs_ext_one }
#define IP_VS_EXT_RANGE(name, field, lo, hi)				\
	{ .procname = name, .data = &ip_vs_ext_defaults.field,		\
	  .maxlen = sizeof(int), .mode = 0644,				\
	  .proc_handler = proc_dointvec_minmax,				\
	  .extra1 = &(lo), .extra2 = &(hi) }

/* Defaults of every namespace (the values of abi.md). */
static struct ip_vs_ext_net ip_vs_ext_defaults = {
	.fnat_timestamp_remove	= 1,
	.fnat_mss_adjust	= 1,
	.fnat_conn_reused	= 1,
	.fnat_toa		= 1,
	.fnat_lport_min		= 5000,
	.fnat_lport_max		= 65535,
	.fnat_lport_tries	= 10000,
	.conn_expire_tcp_rst	= 1,
	.sp_init_mss		= 1452,
	.sp_sack		= 1,
	.sp_wscale		= 0,
	.sp_timestamp		= 0,
	.sp_synack_ttl		= 63,
	.sp_defer		= 0,
	.sp_conn_reuse		= 1,
	.sp_reuse_close		= 1,
	.sp_reuse_time_wait	= 1,
	.sp_reuse_fin_wait	= 0,
	.sp_reuse_close_wait	= 0,
	.sp_reuse_last_ack	= 0,
	.sp_ack_store_thresh	= 3,
	.sp_ack_storm_thresh	= 10,
	.sp_syn_retry		= 3,
	.sp_cookie_max_age	= 64,
	.defence_tcp_drop	= 1,
	.defence_udp_drop	= 1,
	.defence_frag_drop	= 1,
};

/* The template of each namespace's table: .data points into the defaults
 * and is rebased onto the namespace's ip_vs_ext_net when copied.
 */
static const struct ctl_table ip_vs_ext_vars[] = {
	IP_VS_EXT_BOOL("fullnat_timestamp_remove_entry", fnat_timestamp_remove),
	IP_VS_EXT_BOOL("fullnat_mss_adjust_entry", fnat_mss_adjust),
	IP_VS_EXT_BOOL("fullnat_conn_reused_entry", fnat_conn_reused),
	IP_VS_EXT_BOOL("fullnat_toa_entry", fnat_toa),
	IP_VS_EXT_RANGE("fullnat_lport_min", fnat_lport_min,
			ip_vs_ext_lport_lo, ip_vs_ext_lport_hi),
	IP_VS_EXT_RANGE("fullnat_lport_max", fnat_lport_max,
			ip_vs_ext_lport_lo, ip_vs_ext_lport_hi),
	IP_VS_EXT_RANGE("fullnat_lport_tries", fnat_lport_tries,
			ip_vs_ext_tries_lo, ip_vs_ext_tries_hi),
	IP_VS_EXT_BOOL("conn_expire_tcp_rst", conn_expire_tcp_rst),
	IP_VS_EXT_RANGE("synproxy_init_mss", sp_init_mss,
			ip_vs_ext_mss_lo, ip_vs_ext_mss_hi),
	IP_VS_EXT_BOOL("synproxy_sack", sp_sack),
	IP_VS_EXT_RANGE("synproxy_wscale", sp_wscale,
			ip_vs_ext_zero, ip_vs_ext_ws_hi),
	IP_VS_EXT_BOOL("synproxy_timestamp", sp_timestamp),
	IP_VS_EXT_RANGE("synproxy_synack_ttl", sp_synack_ttl,
			ip_vs_ext_one, ip_vs_ext_ttl_hi),
	IP_VS_EXT_BOOL("synproxy_defer", sp_defer),
	IP_VS_EXT_BOOL("synproxy_conn_reuse", sp_conn_reuse),
	IP_VS_EXT_BOOL("synproxy_conn_reuse_close", sp_reuse_close),
	IP_VS_EXT_BOOL("synproxy_conn_reuse_time_wait", sp_reuse_time_wait),
	IP_VS_EXT_BOOL("synproxy_conn_reuse_fin_wait", sp_reuse_fin_wait),
	IP_VS_EXT_BOOL("synproxy_conn_reuse_close_wait", sp_reuse_close_wait),
	IP_VS_EXT_BOOL("synproxy_conn_reuse_last_ack", sp_reuse_last_ack),
	IP_VS_EXT_RANGE("synproxy_ack_skb_store_thresh", sp_ack_store_thresh,
			ip_vs_ext_zero, ip_vs_ext_store_hi),
	IP_VS_EXT_RANGE("synproxy_ack_storm_thresh", sp_ack_storm_thresh,
			ip_vs_ext_one, ip_vs_ext_storm_hi),
	IP_VS_EXT_RANGE("synproxy_syn_retry", sp_syn_retry,
			ip_vs_ext_zero, ip_vs_ext_retry_hi),
	IP_VS_EXT_RANGE("synproxy_cookie_max_age", sp_cookie_max_age,
			ip_vs_ext_one, ip_vs_ext_age_hi),
	IP_VS_EXT_BOOL("defence_tcp_drop", defence_tcp_drop),
	IP_VS_EXT_BOOL("defence_udp_drop", defence_udp_drop),
	IP_VS_EXT_BOOL("defence_frag_drop", defence_frag_drop),
	{ }
};

/* Namespaces owned by another user namespace get no table: their values
 * stay the defaults.  6.1 shows no IPVS sysctl at all there; 6.12 shows
 * upstream's own, several of them read-only.  Ours set up defences and
 * address ranges, so they follow the stricter rule on both lines.
 */
static int ip_vs_ext_sysctl_init(struct net *net, struct ip_vs_ext_net *ext)
{
	const size_t n = ARRAY_SIZE(ip_vs_ext_vars) - 1;
	struct ctl_table *tbl;
	size_t i;

	if (net->user_ns != &init_user_ns)
		return 0;
	tbl = kmemdup(ip_vs_ext_vars, sizeof(ip_vs_ext_vars), GFP_KERNEL);
	if (!tbl)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		tbl[i].data = (char *)ext + ((char *)tbl[i].data -
					     (char *)&ip_vs_ext_defaults);
	ext->sysctl_hdr = register_net_sysctl_sz(net, "net/ipv4/vs", tbl, n);
	if (!ext->sysctl_hdr) {
		kfree(tbl);
		return -ENOMEM;
	}
	ext->sysctl_tbl = tbl;
	return 0;
}

static void ip_vs_ext_sysctl_cleanup(struct ip_vs_ext_net *ext)
{
	if (!ext->sysctl_hdr)
		return;
	unregister_net_sysctl_table(ext->sysctl_hdr);
	kfree(ext->sysctl_tbl);
}

static int ip_vs_ext_stats_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	struct ip_vs_ext_net *ext = net_ipvs(net)->ext;
	int cpu, i;

	seq_printf(seq, "%-32s", "");
	for_each_online_cpu(cpu) {
		char name[16];

		snprintf(name, sizeof(name), "CPU%d", cpu);
		seq_printf(seq, " %15s", name);
	}
	seq_printf(seq, " %15s\n", "TOTAL");
	for (i = 0; i < IP_VS_EXT_STAT_MAX; i++) {
		u64 total = 0;

		seq_printf(seq, "%-32s", ip_vs_ext_stat_names[i]);
		for_each_online_cpu(cpu)
			seq_printf(seq, " %15llu",
				   per_cpu_ptr(ext->stats, cpu)->cnt[i]);
		for_each_possible_cpu(cpu)
			total += per_cpu_ptr(ext->stats, cpu)->cnt[i];
		seq_printf(seq, " %15llu\n", total);
	}
	return 0;
}

int ip_vs_ext_net_init(struct netns_ipvs *ipvs)
{
	struct ip_vs_ext_net *ext;
	int ret = -ENOMEM;

	ext = kmemdup(&ip_vs_ext_defaults, sizeof(*ext), GFP_KERNEL);
	if (!ext)
		return -ENOMEM;
	ext->stats = alloc_percpu(struct ip_vs_ext_stats);
	if (!ext->stats)
		goto free_ext;
	ret = ip_vs_vaddr_net_init(ext);
	if (ret)
		goto free_stats;
	ret = ip_vs_ext_sysctl_init(ipvs->net, ext);
	if (ret)
		goto free_vaddrs;
	ret = -ENOMEM;
	if (!proc_create_net_single("ip_vs_ext_stats", 0444, ipvs->net->proc_net,
				    ip_vs_ext_stats_show, NULL))
		goto free_sysctl;
	ipvs->ext = ext;
	return 0;

free_sysctl:
	ip_vs_ext_sysctl_cleanup(ext);
free_vaddrs:
	ip_vs_vaddr_net_cleanup(ext);
free_stats:
	free_percpu(ext->stats);
free_ext:
	kfree(ext);
	return ret;
}

void ip_vs_ext_net_cleanup(struct netns_ipvs *ipvs)
{
	struct ip_vs_ext_net *ext = ipvs->ext;

	remove_proc_entry("ip_vs_ext_stats", ipvs->net->proc_net);
	ip_vs_ext_sysctl_cleanup(ext);
	ip_vs_vaddr_net_cleanup(ext);
	free_percpu(ext->stats);
	ipvs->ext = NULL;
	kfree(ext);
}

/**
 * ip_vs_ext_sync_seq_ok - may a backup take sequence data into @cp?
 * @cp: a connection a sync message names (found or just created)
 * @opt: the message carries sequence data for it
 *
 * Upstream copies received in_seq/out_seq (NAT application helpers'
 * numbers) into the connection and sets the flags that announce them.
 * FULLNAT and SYNPROXY keep their own sequence state in that storage
 * (struct ip_vs_fnat_seq), which such a copy would overwrite, and a
 * connection announcing sequence data would send that state out as such
 * when this node is a master.  For them the data is ignored (counted) and
 * the flags are cleared.
 */
bool ip_vs_ext_sync_seq_ok(struct ip_vs_conn *cp, bool opt)
{
	if (!ip_vs_conn_fnat(cp) && !(cp->flags & IP_VS_CONN_F_SYNPROXY))
		return true;
	if (cp->flags & IP_VS_CONN_F_SEQ_MASK) {
		spin_lock_bh(&cp->lock);
		cp->flags &= ~IP_VS_CONN_F_SEQ_MASK;
		spin_unlock_bh(&cp->lock);
	}
	if (opt)
		IP_VS_EXT_INC(cp->ipvs, IP_VS_EXT_SYNC_SEQ_IGNORED);
	return false;
}

/**
 * ip_vs_ext_dest_check - may this real server join (or stay in) @svc?
 * @svc: the virtual service
 * @udest: the real server as userspace configures it
 *
 * The extensions' rules for real servers, asked by ip_vs_ctl.c on adding
 * and editing one: FULLNAT's (protocol, address family, scheduling), then
 * SYNPROXY's (only methods whose replies the balancer sees).  Returns 0 or
 * the errno userspace reports.
 */
int ip_vs_ext_dest_check(const struct ip_vs_service *svc,
			 const struct ip_vs_dest_user_kern *udest)
{
	int ret = ip_vs_fnat_dest_check(svc, udest);

	return ret ? ret : ip_vs_synproxy_dest_check(svc, udest);
}

int ip_vs_ext_init(void)
{
	int ret;

	/* FULLNAT's sequence state lives in the sync_conn_opt storage of the
	 * session.  (The session's size is a benchmark figure, not a build
	 * condition: debug options such as lockdep make its locks larger.)
	 */
	BUILD_BUG_ON(sizeof(struct ip_vs_fnat_seq) >
		     2 * sizeof(struct ip_vs_seq));
	ret = ip_vs_fnat_init();
	if (ret)
		return ret;
	ret = ip_vs_synproxy_init();
	if (ret)
		ip_vs_fnat_cleanup();
	return ret;
}

void ip_vs_ext_cleanup(void)
{
	ip_vs_synproxy_cleanup();
	ip_vs_fnat_cleanup();
	/* laddr objects are freed by RCU callbacks of this module */
	rcu_barrier();
}
