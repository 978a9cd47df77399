// SPDX-License-Identifier: GPL-2.0
/*
 * TOA: make getpeername()/accept() on a real server return the client
 * address that a FULLNAT balancer carried in a TCP option.
 *
 * This is the loadable skeleton the build and install machinery is tested
 * with; the option parsing and the socket hooks are added on top of it.
 */

#define pr_fmt(fmt) "toa: " fmt

#include <linux/module.h>
#include <lvs/version.h>

static int __init toa_init(void)
{
	pr_info("loaded (lvs-toolkit %s)\n", LVS_TOOLKIT_VERSION);
	return 0;
}

static void __exit toa_exit(void)
{
	pr_info("unloaded\n");
}

module_init(toa_init);
module_exit(toa_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TCP Option Address: client addresses behind a FULLNAT balancer");
MODULE_INFO(lvs_toolkit, LVS_TOOLKIT_VERSION);
