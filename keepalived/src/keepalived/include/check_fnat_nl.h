/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs-toolkit: the generic netlink helpers of libipvs.c that the local
 * address commands of check_fnat.c share (same socket, same namespace,
 * same error handling as every other IPVS command of keepalived).
 */

#ifndef _CHECK_FNAT_NL_H
#define _CHECK_FNAT_NL_H

#include "config.h"

#ifdef LIBIPVS_USE_NL
#include <stdint.h>
#include <netlink/netlink.h>
#include <netlink/handlers.h>

#include "libipvs.h"

extern struct nl_msg *ipvs_nl_message(uint8_t cmd, int flags);
extern int ipvs_nl_send_message(struct nl_msg *msg, nl_recvmsg_msg_cb_t func, void *arg);
extern int ipvs_nl_fill_service_attr(struct nl_msg *msg, ipvs_service_t *svc);
extern int ipvs_nl_noop_cb(struct nl_msg *msg, void *arg);
#endif

#endif
