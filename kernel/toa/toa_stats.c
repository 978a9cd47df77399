// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU counters, shown in /proc/net/toa_stats.
 *
 * The counters are global (one set per CPU, not per network namespace),
 * but the file is created in every namespace so that servers in
 * containers see it too.  Layout: a header line with one column per
 * online CPU and a "total" column, then one line per counter; counters
 * kept elsewhere than per CPU show "-" in the CPU columns.
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>
#include "toa.h"

struct toa_cpu_stats {
	u64 cnt[TOA_STAT_MAX];
};

static DEFINE_PER_CPU(struct toa_cpu_stats, toa_cpu_stats);

/* Names are part of the interface (docs/toa.md, abi.md): append only. */
static const char *const toa_stat_names[TOA_STAT_MAX] = {
	[TOA_STAT_SYN_RECV_SOCK_TOA] = "syn_recv_sock_toa",
	[TOA_STAT_SYN_RECV_SOCK_NO_TOA] = "syn_recv_sock_no_toa",
	[TOA_STAT_DATA_SEG_TOA] = "data_seg_toa",
	[TOA_STAT_GETNAME_TOA_OK] = "getname_toa_ok",
	[TOA_STAT_GETNAME_TOA_MISMATCH] = "getname_toa_mismatch",
	[TOA_STAT_GETNAME_TOA_FAMILY] = "getname_toa_family",
	[TOA_STAT_GETNAME_TOA_BYPASS] = "getname_toa_bypass",
	[TOA_STAT_GETNAME_TOA_EMPTY] = "getname_toa_empty",
	[TOA_STAT_OPT_BAD_LEN] = "opt_bad_len",
	[TOA_STAT_OPT_TRUNCATED] = "opt_truncated",
	[TOA_STAT_OPT_AFTER_EOL] = "opt_after_eol",
	[TOA_STAT_OPT_DUPLICATE] = "opt_duplicate",
	[TOA_STAT_STORE_FAIL] = "store_fail",
	[TOA_STAT_ENTRY_ALLOC] = "entry_alloc",
	[TOA_STAT_ENTRY_FREE] = "entry_free",
	[TOA_STAT_OPT_UNTRUSTED] = "opt_untrusted",
	[TOA_STAT_GETNAME_TOA_UNTRUSTED] = "getname_toa_untrusted",
	[TOA_STAT_ENTRY_STALE_REPLACED] = "entry_stale_replaced",
	[TOA_STAT_GETNAME_TOA_STALE] = "getname_toa_stale",
};

void toa_stat_inc(enum toa_stat stat)
{
	this_cpu_inc(toa_cpu_stats.cnt[stat]);
}

/* Count why a segment's options were not trusted (nothing if absent). */
void toa_stat_verdict(enum toa_verdict verdict)
{
	switch (verdict) {
	case TOA_BAD_LEN:
		toa_stat_inc(TOA_STAT_OPT_BAD_LEN);
		break;
	case TOA_TRUNCATED:
		toa_stat_inc(TOA_STAT_OPT_TRUNCATED);
		break;
	case TOA_AFTER_EOL:
		toa_stat_inc(TOA_STAT_OPT_AFTER_EOL);
		break;
	case TOA_DUPLICATE:
		toa_stat_inc(TOA_STAT_OPT_DUPLICATE);
		break;
	default:
		break;
	}
}

u64 toa_stat_sum(enum toa_stat stat)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(toa_cpu_stats.cnt[stat], cpu);
	return sum;
}

static void toa_stats_header(struct seq_file *seq)
{
	char name[16];
	int cpu;

	seq_printf(seq, "%-24s", "counter");
	for_each_online_cpu(cpu) {
		snprintf(name, sizeof(name), "CPU%d", cpu);
		seq_printf(seq, " %12s", name);
	}
	seq_printf(seq, " %12s\n", "total");
}

static void toa_stats_global(struct seq_file *seq, const char *name, u64 value)
{
	int cpu;

	seq_printf(seq, "%-24s", name);
	for_each_online_cpu(cpu)
		seq_printf(seq, " %12s", "-");
	seq_printf(seq, " %12llu\n", value);
}

static int toa_stats_show(struct seq_file *seq, void *v)
{
	int cpu, i;

	toa_stats_header(seq);
	for (i = 0; i < TOA_STAT_MAX; i++) {
		seq_printf(seq, "%-24s", toa_stat_names[i]);
		for_each_online_cpu(cpu)
			seq_printf(seq, " %12llu",
				   per_cpu(toa_cpu_stats.cnt[i], cpu));
		seq_printf(seq, " %12llu\n", toa_stat_sum(i));
	}
	toa_stats_global(seq, "probe_missed", toa_getname_missed());
	return 0;
}

static int __net_init toa_stats_net_init(struct net *net)
{
	if (!proc_create_net_single("toa_stats", 0444, net->proc_net,
				    toa_stats_show, NULL))
		return -ENOMEM;
	return 0;
}

static void __net_exit toa_stats_net_exit(struct net *net)
{
	remove_proc_entry("toa_stats", net->proc_net);
}

static struct pernet_operations toa_stats_net_ops = {
	.init = toa_stats_net_init,
	.exit = toa_stats_net_exit,
};

int toa_stats_init(void)
{
	return register_pernet_subsys(&toa_stats_net_ops);
}

void toa_stats_exit(void)
{
	unregister_pernet_subsys(&toa_stats_net_ops);
}
