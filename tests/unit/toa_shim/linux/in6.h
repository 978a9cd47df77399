/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-in for <linux/in6.h>: only the size matters here. */
struct in6_addr {
	unsigned char s6_addr[16];
};
