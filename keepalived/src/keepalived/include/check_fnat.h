/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs-toolkit: FULLNAT local addresses and SYNPROXY in keepalived's checker.
 *
 * The configuration dialects (docs/keepalived.md):
 *   virtual_server ... { lb_kind FNAT; local_address { IP IP-range }; syn_proxy }
 *   local_address_group NAME { IP IP-range }  +  laddr_group_name NAME
 *
 * The kernel side is IPVS with the FULLNAT/SYNPROXY extensions: forwarding
 * method 5, service flag 0x8000, and the local-address commands
 * NEW_LADDR/DEL_LADDR/GET_LADDR.  Everything here is called from a few
 * hooks in keepalived's own files (keepalived/patches/ of lvs-toolkit).
 */

#ifndef _CHECK_FNAT_H
#define _CHECK_FNAT_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ip_vs.h"
#include "libipvs.h"
#include "list_head.h"
#include "vector.h"

/* Numbers of the kernel's extensions (lvs-toolkit's uapi) */
#ifndef IP_VS_CONN_F_FULLNAT
#define IP_VS_CONN_F_FULLNAT	0x0005		/* forwarding method FULLNAT */
#endif
#ifndef IP_VS_SVC_F_SYNPROXY
#define IP_VS_SVC_F_SYNPROXY	0x8000		/* service flag SYNPROXY */
#endif
#define IPVS_CMD_NEW_LADDR_FNAT		18
#define IPVS_CMD_DEL_LADDR_FNAT		19
#define IPVS_CMD_GET_LADDR_FNAT		20
#define IPVS_CMD_ATTR_LADDR_FNAT	7
#define IPVS_LADDR_ATTR_ADDR_FNAT	1
#define IPVS_LADDR_ATTR_PORT_CONFLICT_FNAT 2
#define IPVS_LADDR_ATTR_CONN_COUNTS_FNAT 3
#define IPVS_LADDR_ATTR_MAX_FNAT	4

/* ipvs_talk() command: make one service's local addresses in the kernel
 * those of the virtual server being synchronised (fnat_sync_vs()).  Next to
 * the legacy sockopt numbers of the local-address commands (1168, 1169). */
#define IP_VS_SO_SET_SYNCLADDR		1170

/* A forwarding method whose real server keeps its own port (the kernel
 * rewrites the destination port): NAT and FULLNAT. */
#define IP_VS_FWD_MAPS_PORT(method) \
	((method) == IP_VS_CONN_F_MASQ || (method) == IP_VS_CONN_F_FULLNAT)

/* Where a keyword was read, for errors reported after its block ended */
typedef struct _fnat_pos {
	size_t			line;
	char			*file;		/* set when there is more than one file */
} fnat_pos_t;

/* One local address (ranges are expanded when read) */
typedef struct _fnat_laddr {
	int			af;
	union nf_inet_addr	addr;
	fnat_pos_t		pos;
	list_head_t		e_list;
} fnat_laddr_t;

/* local_address_group NAME { ... } */
typedef struct _fnat_laddr_group {
	char			*gname;
	list_head_t		laddrs;		/* fnat_laddr_t */
	bool			invalid;	/* an entry had an error */
	fnat_pos_t		pos;
	list_head_t		e_list;
} fnat_laddr_group_t;

/* What a virtual_server_t carries for FULLNAT and SYNPROXY */
typedef struct _fnat_vs {
	fnat_pos_t		pos;		/* the virtual_server line */
	list_head_t		laddrs;		/* local_address blocks: fnat_laddr_t */
	fnat_pos_t		laddr_pos;	/* the first local_address block */
	char			*gname;		/* laddr_group_name */
	fnat_pos_t		gname_pos;
	fnat_laddr_group_t	*group;		/* resolved at validation */
	bool			syn_proxy;
	fnat_pos_t		syn_proxy_pos;
	fnat_pos_t		fnat_pos;	/* the first FNAT forwarding method */
	bool			invalid;	/* an error was reported while parsing */
	bool			had_laddrs;	/* reload: the old virtual server had some */
} fnat_vs_t;

struct _virtual_server;
struct _check_data;

/* parser hooks */
extern void fnat_install_root_keywords(bool active);
extern void fnat_install_vs_keywords(void);
extern bool fnat_forwarding_keyword(const char *word, unsigned *method);
extern vector_t *fnat_block_after_name(const vector_t *strvec);

/* data hooks */
extern void fnat_init_check_data(struct _check_data *data);
extern void fnat_free_check_data(struct _check_data *data);
extern void fnat_init_vs(struct _virtual_server *vs);
extern void fnat_free_vs(struct _virtual_server *vs);
extern void fnat_dump_vs(FILE *fp, const struct _virtual_server *vs);
extern void fnat_dump_check_data(FILE *fp, const struct _check_data *data);

/* after link_vsg_to_vs(): drop every virtual server with a FULLNAT/SYNPROXY error */
extern void fnat_validate_config(void);

/* IPVS hooks */
extern void fnat_reload_vs(const struct _virtual_server *old_vs, struct _virtual_server *new_vs);
extern void fnat_sync_vs(struct _virtual_server *vs);
extern int fnat_sync_service(ipvs_service_t *svc);
extern const char *fnat_method_name(unsigned method);

#endif
