/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs-toolkit: client allow/deny lists (deny_group, allow_group) in
 * keepalived.conf.  keepalived checks the keywords; the lists are put into
 * nftables by `ipvsadm-py acl apply-keepalived`, which the checker runs on
 * start and on every reload (docs/acl.md).  Reached from check_fnat.c.
 */
#ifndef _CHECK_ACL_H
#define _CHECK_ACL_H

#include <stdbool.h>

/* the default program of acl_apply_command (found on PATH) */
#define ACL_DEFAULT_COMMAND	"ipvsadm-py"

extern void acl_install_root_keywords(bool active);
extern void acl_install_vs_keywords(void);
/* before a configuration is read: forget the previous one's groups */
extern void acl_reset(void);
/* after the whole file is read, before virtual servers are left out */
extern void acl_validate_config(void);
/* after validation, before services are made: the lists into nftables */
extern void acl_apply_config(void);

#endif
