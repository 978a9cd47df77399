// SPDX-License-Identifier: GPL-2.0
/*
 * lvs-toolkit: FULLNAT local addresses and SYNPROXY in keepalived's checker.
 *
 * Three parts, each reached through a hook in keepalived's own files:
 *
 *  - keywords: `lb_kind FNAT` (also `lvs_method`, real and sorry servers),
 *    `local_address { IP IP-range }` and `laddr_group_name NAME` in a
 *    virtual server, `syn_proxy`, and the top-level
 *    `local_address_group NAME { IP IP-range }`;
 *  - validation after the whole file is read (groups may come after their
 *    users, a virtual server learns its family from its real servers): a
 *    virtual server with any FULLNAT/SYNPROXY error is left out as a whole,
 *    with errors that name the line, and the rest of the file loads;
 *  - the kernel: after a service exists (start or reload), its local
 *    addresses are made those of the configuration, by listing the
 *    kernel's (GET_LADDR) and adding/deleting the difference, for every
 *    IPVS service the virtual server stands for (one, or one per address
 *    and firewall mark of a virtual_server_group).
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_acl.h"
#include "check_fnat.h"
#include "check_fnat_nl.h"
#include "check_data.h"
#include "ipvswrapper.h"
#include "logger.h"
#include "memory.h"
#include "parser.h"
#include "utils.h"

#ifdef LIBIPVS_USE_NL
#include <netlink/genl/genl.h>
#include <netlink/attr.h>
#endif

/* the longest range a local address entry may stand for */
#define FNAT_MAX_RANGE	1024

/* ------------------------------------------------------------ positions */

static void
pos_here(fnat_pos_t *pos)
{
	const char *file = NULL;

	pos->line = config_position(&file);
	pos->file = file ? STRDUP(file) : NULL;
}

static void
pos_free(fnat_pos_t *pos)
{
	FREE_PTR(pos->file);
	pos->line = 0;
}

/* An error found after the block ended: name the line it is about. */
static void __attribute__((format(printf, 2, 3)))
pos_error(const fnat_pos_t *pos, const char *format, ...)
{
	char msg[512];
	va_list args;

	va_start(args, format);
	vsnprintf(msg, sizeof(msg), format, args);
	va_end(args);

	if (pos->file)
		report_config_error(CONFIG_GENERAL_ERROR, "(%s: Line %zu) %s", pos->file, pos->line, msg);
	else if (pos->line)
		report_config_error(CONFIG_GENERAL_ERROR, "(Line %zu) %s", pos->line, msg);
	else
		report_config_error(CONFIG_GENERAL_ERROR, "%s", msg);
}

/* ------------------------------------------------------------ addresses */

static const char *
laddr_str(int af, const union nf_inet_addr *addr, char *buf)
{
	return inet_ntop(af, af == AF_INET ? (const void *)&addr->in : (const void *)&addr->in6,
			 buf, INET6_ADDRSTRLEN) ? buf : "?";
}

/* The kernel takes unicast addresses only (ip_vs_laddr_valid()). */
static const char *
laddr_refusal(int af, const union nf_inet_addr *a)
{
	if (af == AF_INET) {
		uint32_t h = ntohl(a->ip);

		if ((h >> 24) == 0)
			return "in 0.0.0.0/8";
		if ((h >> 24) == 127)
			return "a loopback address";
		if ((h >> 28) == 0xe)
			return "a multicast address";
		if (h == 0xffffffff)
			return "the broadcast address";
		return NULL;
	}
	if (IN6_IS_ADDR_UNSPECIFIED(&a->in6))
		return "the unspecified address";
	if (IN6_IS_ADDR_LOOPBACK(&a->in6))
		return "a loopback address";
	if (IN6_IS_ADDR_MULTICAST(&a->in6))
		return "a multicast address";
	if (IN6_IS_ADDR_V4MAPPED(&a->in6))
		return "an IPv4-mapped address";
	return NULL;
}

static bool
parse_addr(const char *s, int *af, union nf_inet_addr *a)
{
	memset(a, 0, sizeof(*a));
	*af = strchr(s, ':') ? AF_INET6 : AF_INET;
	return inet_pton(*af, s, *af == AF_INET ? (void *)&a->in : (void *)&a->in6) == 1;
}

/* Low 32 bits of an address, in host order (ranges vary only those). */
static uint32_t
low32(int af, const union nf_inet_addr *a)
{
	return ntohl(af == AF_INET ? a->ip : a->in6.s6_addr32[3]);
}

static void
set_low32(int af, union nf_inet_addr *a, uint32_t v)
{
	if (af == AF_INET)
		a->ip = htonl(v);
	else
		a->in6.s6_addr32[3] = htonl(v);
}

/* The end of "start-end": a whole address, or the last octet (IPv4,
 * decimal) or the last 16-bit group (IPv6, hex) as keepalived's
 * virtual_server_group ranges write it. */
static const char *
parse_range_end(const char *s, int af, const union nf_inet_addr *start,
		union nf_inet_addr *end)
{
	unsigned long last;
	char *endp;
	int end_af;

	if (strchr(s, '.') || strchr(s, ':')) {
		if (!parse_addr(s, &end_af, end))
			return "the range end is not an address";
		if (end_af != af)
			return "the range ends in the other address family";
		if (af == AF_INET6 && memcmp(start, end, 12))
			return "an IPv6 range may vary the last 32 bits only";
		return NULL;
	}
	errno = 0;
	last = strtoul(s, &endp, af == AF_INET ? 10 : 16);
	if (!*s || *endp || errno || last > (af == AF_INET ? 255UL : 0xffffUL))
		return "the range end is not a number of the last octet (IPv4) or group (IPv6, hex)";
	*end = *start;
	if (af == AF_INET)
		set_low32(af, end, (low32(af, start) & ~0xffU) | (uint32_t)last);
	else
		end->in6.s6_addr16[7] = htons((uint16_t)last);
	return NULL;
}

static bool __attribute__((pure))
laddr_in_list(list_head_t *l, int af, const union nf_inet_addr *a)
{
	fnat_laddr_t *la;

	list_for_each_entry(la, l, e_list)
		if (la->af == af && !memcmp(&la->addr, a, sizeof(*a)))
			return true;
	return false;
}

static void
laddr_append(list_head_t *l, int af, const union nf_inet_addr *a, const char *word)
{
	fnat_laddr_t *la;
	char buf[INET6_ADDRSTRLEN];

	if (laddr_in_list(l, af, a)) {
		report_config_error(CONFIG_GENERAL_ERROR, "WARNING - local address %s (from '%s')"
				    " is listed twice - ignoring the second", laddr_str(af, a, buf), word);
		return;
	}
	PMALLOC(la);
	INIT_LIST_HEAD(&la->e_list);
	la->af = af;
	la->addr = *a;
	pos_here(&la->pos);
	list_add_tail(&la->e_list, l);
}

/* One entry: an address or a range.  Returns the reason it is refused. */
static const char *
parse_laddr_word(const char *word, list_head_t *l)
{
	union nf_inet_addr start, end, a;
	const char *dash = strchr(word, '-');
	const char *why;
	char *first;
	uint32_t lo, hi, v;
	bool ok;
	int af;

	if (strchr(word, '/'))
		return "a prefix is not a local address (write a range a.b.c.d-e)";
	first = dash ? STRNDUP(word, (size_t)(dash - word)) : STRDUP(word);
	ok = parse_addr(first, &af, &start);
	FREE(first);
	if (!ok)
		return "not an IPv4 or IPv6 address";
	end = start;
	if (dash && (why = parse_range_end(dash + 1, af, &start, &end)))
		return why;
	lo = low32(af, &start);
	hi = low32(af, &end);
	if (hi < lo)
		return "the range ends before it starts";
	if (hi - lo >= FNAT_MAX_RANGE)
		return "the range is longer than 1024 addresses";
	for (v = lo; ; v++) {
		a = start;
		set_low32(af, &a, v);
		if ((why = laddr_refusal(af, &a)))
			return why;
		if (v == hi)
			break;
	}
	for (v = lo; ; v++) {
		a = start;
		set_low32(af, &a, v);
		laddr_append(l, af, &a, word);
		if (v == hi)
			break;
	}
	return NULL;
}

/* An interface name after an address (DPVS writes "192.168.1.1 dpdk0"):
 * accepted and not used, the address must be on an interface already. */
static bool
looks_like_ifname(const char *word)
{
	size_t n = strlen(word);

	return n && n < 16 && ((word[0] >= 'a' && word[0] <= 'z') || (word[0] >= 'A' && word[0] <= 'Z'))
		&& !strchr(word, ':') && !strchr(word, '/');
}

/* The list and error flag the lines of the block being read go to */
static list_head_t *block_list;
static bool *block_invalid;
static const char *block_owner;

static void
laddr_block_line(const vector_t *strvec)
{
	const char *word, *why;
	bool after_addr = false;
	size_t i;

	for (i = 0; i < vector_size(strvec); i++) {
		word = strvec_slot(strvec, i);
		if (after_addr && looks_like_ifname(word)) {
			after_addr = false;
			continue;
		}
		why = parse_laddr_word(word, block_list);
		after_addr = !why;
		if (why) {
			report_config_error(CONFIG_GENERAL_ERROR, "%s: invalid local address '%s': %s",
					    block_owner, word, why);
			*block_invalid = true;
		}
	}
}

static void
read_laddr_block(const vector_t *strvec, list_head_t *l, bool *invalid, const char *owner)
{
	block_list = l;
	block_invalid = invalid;
	block_owner = owner;
	alloc_value_block(laddr_block_line, strvec);
	block_list = NULL;
	block_invalid = NULL;
	block_owner = NULL;
}

static void
free_laddr_list(list_head_t *l)
{
	fnat_laddr_t *la, *tmp;

	list_for_each_entry_safe(la, tmp, l, e_list) {
		list_del_init(&la->e_list);
		pos_free(&la->pos);
		FREE(la);
	}
}

/* ------------------------------------------------------------ groups */

static fnat_laddr_group_t * __attribute__((pure))
find_group(list_head_t *groups, const char *name)
{
	fnat_laddr_group_t *g;

	list_for_each_entry(g, groups, e_list)
		if (!strcmp(g->gname, name))
			return g;
	return NULL;
}

static void
free_group(fnat_laddr_group_t *g)
{
	list_del_init(&g->e_list);
	free_laddr_list(&g->laddrs);
	pos_free(&g->pos);
	FREE(g->gname);
	FREE(g);
}

/* The words of "KEYWORD NAME { ..." without NAME, for alloc_value_block()
 * and read_value_block(), which expect the block after the first word (the
 * words are the caller's: free the result with vector_free()). */
vector_t *
fnat_block_after_name(const vector_t *strvec)
{
	vector_t *block_vec = vector_alloc();
	ptr_hack_t word;
	size_t i;

	vector_alloc_slot(block_vec);
	vector_set_slot(block_vec, NULL);
	for (i = 2; i < vector_size(strvec); i++) {
		vector_alloc_slot(block_vec);
		word.cp = strvec_slot(strvec, i);
		vector_set_slot(block_vec, word.p);
	}
	return block_vec;
}

/* local_address_group NAME { IP IP-range ... } */
static void
laddr_group_handler(const vector_t *strvec)
{
	fnat_laddr_group_t *g;
	vector_t *block_vec;

	if (!strvec)
		return;
	if (vector_size(strvec) < 2) {
		report_config_error(CONFIG_GENERAL_ERROR, "local_address_group needs a name - skipping");
		skip_block(true);
		return;
	}

	PMALLOC(g);
	INIT_LIST_HEAD(&g->e_list);
	INIT_LIST_HEAD(&g->laddrs);
	g->gname = STRDUP(strvec_slot(strvec, 1));
	pos_here(&g->pos);

	block_vec = fnat_block_after_name(strvec);
	read_laddr_block(block_vec, &g->laddrs, &g->invalid, "local_address_group");
	vector_free(block_vec);

	if (find_group(&check_data->fnat_laddr_groups, g->gname)) {
		report_config_error(CONFIG_GENERAL_ERROR, "local_address_group %s is defined twice"
				    " - ignoring the second", g->gname);
		free_group(g);
		return;
	}
	if (list_empty(&g->laddrs) && !g->invalid) {
		report_config_error(CONFIG_GENERAL_ERROR, "local_address_group %s has no addresses", g->gname);
		g->invalid = true;
	}
	list_add_tail(&g->e_list, &check_data->fnat_laddr_groups);
}

/* ------------------------------------------------------------ virtual server keywords */

static virtual_server_t *
current_vs(void)
{
	return list_last_entry(&check_data->vs, virtual_server_t, e_list);
}

/* local_address { IP IP-range ... } */
static void
local_address_handler(const vector_t *strvec)
{
	virtual_server_t *vs = current_vs();

	if (!vs->fnat.laddr_pos.line)
		pos_here(&vs->fnat.laddr_pos);
	read_laddr_block(strvec, &vs->fnat.laddrs, &vs->fnat.invalid, "local_address");
}

/* laddr_group_name NAME */
static void
laddr_group_name_handler(const vector_t *strvec)
{
	virtual_server_t *vs = current_vs();

	if (vector_size(strvec) != 2) {
		report_config_error(CONFIG_GENERAL_ERROR, "laddr_group_name needs one group name");
		vs->fnat.invalid = true;
		return;
	}
	if (vs->fnat.gname) {
		report_config_error(CONFIG_GENERAL_ERROR, "laddr_group_name given twice (%s, %s)",
				    vs->fnat.gname, strvec_slot(strvec, 1));
		vs->fnat.invalid = true;
		return;
	}
	vs->fnat.gname = STRDUP(strvec_slot(strvec, 1));
	pos_here(&vs->fnat.gname_pos);
}

/* syn_proxy [on|off] */
static void
syn_proxy_handler(const vector_t *strvec)
{
	virtual_server_t *vs = current_vs();
	int on = true;

	if (vector_size(strvec) >= 2 && (on = check_true_false(strvec_slot(strvec, 1))) == -1) {
		report_config_error(CONFIG_GENERAL_ERROR, "syn_proxy takes on/off, not '%s'",
				    strvec_slot(strvec, 1));
		vs->fnat.invalid = true;
		return;
	}
	vs->fnat.syn_proxy = on;
	if (on)
		vs->flags |= IP_VS_SVC_F_SYNPROXY;
	else
		vs->flags &= ~(uint32_t)IP_VS_SVC_F_SYNPROXY;
	pos_free(&vs->fnat.syn_proxy_pos);
	pos_here(&vs->fnat.syn_proxy_pos);
}

/* lb_kind/lvs_method FNAT (virtual, real and sorry servers) */
bool
fnat_forwarding_keyword(const char *word, unsigned *method)
{
	virtual_server_t *vs;

	if (strcmp(word, "FNAT") && strcmp(word, "FULLNAT"))
		return false;
	*method = IP_VS_CONN_F_FULLNAT;
	if (!list_empty(&check_data->vs)) {
		vs = current_vs();
		if (!vs->fnat.fnat_pos.line)
			pos_here(&vs->fnat.fnat_pos);
	}
	return true;
}

const char *
fnat_method_name(unsigned method)
{
	switch (method) {
	case IP_VS_CONN_F_MASQ:
		return "NAT";
	case IP_VS_CONN_F_DROUTE:
		return "DR";
	case IP_VS_CONN_F_TUNNEL:
		return "TUN";
	case IP_VS_CONN_F_FULLNAT:
		return "FNAT";
	default:
		return "unknown";
	}
}

void
fnat_install_root_keywords(bool active)
{
	install_keyword_root("local_address_group", &laddr_group_handler, active);
	acl_install_root_keywords(active);
}

void
fnat_install_vs_keywords(void)
{
	install_keyword("local_address", &local_address_handler);
	install_keyword("laddr_group_name", &laddr_group_name_handler);
	install_keyword("syn_proxy", &syn_proxy_handler);
	acl_install_vs_keywords();
}

/* ------------------------------------------------------------ data */

void
fnat_init_check_data(check_data_t *data)
{
	INIT_LIST_HEAD(&data->fnat_laddr_groups);
	acl_reset();
}

void
fnat_free_check_data(check_data_t *data)
{
	fnat_laddr_group_t *g, *tmp;

	list_for_each_entry_safe(g, tmp, &data->fnat_laddr_groups, e_list)
		free_group(g);
}

void
fnat_init_vs(virtual_server_t *vs)
{
	INIT_LIST_HEAD(&vs->fnat.laddrs);
	pos_here(&vs->fnat.pos);
}

void
fnat_free_vs(virtual_server_t *vs)
{
	free_laddr_list(&vs->fnat.laddrs);
	FREE_PTR(vs->fnat.gname);
	pos_free(&vs->fnat.pos);
	pos_free(&vs->fnat.laddr_pos);
	pos_free(&vs->fnat.gname_pos);
	pos_free(&vs->fnat.syn_proxy_pos);
	pos_free(&vs->fnat.fnat_pos);
}

static void
dump_laddr_list(FILE *fp, const char *indent, list_head_t *l)
{
	fnat_laddr_t *la;
	char buf[INET6_ADDRSTRLEN];

	list_for_each_entry(la, l, e_list)
		conf_write(fp, "%s%s", indent, laddr_str(la->af, &la->addr, buf));
}

/* The dump hooks get const data; the list macros want it writable. */
void
fnat_dump_vs(FILE *fp, const virtual_server_t *cvs)
{
	ptr_hack_t hack = { .cp = cvs };
	virtual_server_t *vs = hack.p;

	conf_write(fp, "   SYNPROXY = %s", vs->fnat.syn_proxy ? "on" : "off");
	if (!list_empty(&vs->fnat.laddrs)) {
		conf_write(fp, "   Local addresses:");
		dump_laddr_list(fp, "     ", &vs->fnat.laddrs);
	}
	if (vs->fnat.gname)
		conf_write(fp, "   Local address group = %s", vs->fnat.gname);
}

void
fnat_dump_check_data(FILE *fp, const check_data_t *cdata)
{
	ptr_hack_t hack = { .cp = cdata };
	check_data_t *data = hack.p;
	fnat_laddr_group_t *g;

	list_for_each_entry(g, &data->fnat_laddr_groups, e_list) {
		conf_write(fp, " ------< Local address group >------");
		conf_write(fp, " Local address group = %s", g->gname);
		dump_laddr_list(fp, "   ", &g->laddrs);
	}
}

/* ------------------------------------------------------------ validation */

/* The method a real server will get (validate_check_config() fills the
 * unset ones in from the virtual server, NAT when that has none either). */
static unsigned
effective_method(const virtual_server_t *vs, const real_server_t *rs)
{
	if (rs->forwarding_method != IP_VS_CONN_F_FWD_MASK)
		return rs->forwarding_method;
	if (vs->forwarding_method != IP_VS_CONN_F_FWD_MASK)
		return vs->forwarding_method;
	return IP_VS_CONN_F_MASQ;
}

/* The first real (or sorry) server with the method, or NULL. */
static real_server_t * __attribute__((pure))
server_with_method(virtual_server_t *vs, unsigned method)
{
	real_server_t *rs;

	list_for_each_entry(rs, &vs->rs, e_list)
		if (effective_method(vs, rs) == method)
			return rs;
	if (vs->s_svr && effective_method(vs, vs->s_svr) == method)
		return vs->s_svr;
	return NULL;
}

static bool
vs_has_laddrs(const virtual_server_t *vs)
{
	return !list_empty(&vs->fnat.laddrs) || (vs->fnat.group && !list_empty(&vs->fnat.group->laddrs));
}

static const char *
af_name(int af)
{
	return af == AF_INET6 ? "IPv6" : "IPv4";
}

/* Local addresses of the other family than the virtual server's. */
static bool
check_laddr_family(virtual_server_t *vs, list_head_t *l, const char *from)
{
	fnat_laddr_t *la;
	char buf[INET6_ADDRSTRLEN];
	bool ok = true;

	if (vs->af == AF_UNSPEC)
		return true;
	list_for_each_entry(la, l, e_list) {
		if (la->af == vs->af)
			continue;
		pos_error(&la->pos, "virtual server %s is %s: local address %s%s is %s",
			  FMT_VS(vs), af_name(vs->af), laddr_str(la->af, &la->addr, buf), from,
			  af_name(la->af));
		ok = false;
	}
	return ok;
}

static bool
resolve_group(virtual_server_t *vs)
{
	if (!vs->fnat.gname)
		return true;
	vs->fnat.group = find_group(&check_data->fnat_laddr_groups, vs->fnat.gname);
	if (!vs->fnat.group) {
		pos_error(&vs->fnat.gname_pos, "virtual server %s: local_address_group %s is not defined",
			  FMT_VS(vs), vs->fnat.gname);
		return false;
	}
	if (vs->fnat.group->invalid) {
		pos_error(&vs->fnat.gname_pos, "virtual server %s: local_address_group %s has errors"
			  " (reported at its lines)", FMT_VS(vs), vs->fnat.gname);
		vs->fnat.group = NULL;
		return false;
	}
	return true;
}

static bool
check_fullnat(virtual_server_t *vs)
{
	const fnat_pos_t *at = &vs->fnat.fnat_pos;
	bool by_address = !vs->vfwmark && !(vs->vsg && list_empty(&vs->vsg->addr_range));

	if (by_address && vs->service_type != IPPROTO_TCP && vs->service_type != IPPROTO_UDP &&
	    vs->service_type != 0) {
		pos_error(at, "virtual server %s: FNAT forwards TCP and UDP only", FMT_VS(vs));
		return false;
	}
	if (vs->flags & IP_VS_SVC_F_ONEPACKET) {
		pos_error(at, "virtual server %s: FNAT cannot be used with one-packet scheduling (ops)",
			  FMT_VS(vs));
		return false;
	}
	if (!vs_has_laddrs(vs)) {
		pos_error(at, "virtual server %s: FNAT needs local addresses (local_address { ... }"
			  " or laddr_group_name)", FMT_VS(vs));
		return false;
	}
	return true;
}

static bool
check_syn_proxy(virtual_server_t *vs)
{
	static const unsigned refused[] = { IP_VS_CONN_F_DROUTE, IP_VS_CONN_F_TUNNEL };
	real_server_t *rs;
	size_t i;

	if (!vs->fnat.syn_proxy)
		return true;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if ((rs = server_with_method(vs, refused[i]))) {
			pos_error(&vs->fnat.syn_proxy_pos, "virtual server %s: syn_proxy needs NAT or FNAT"
				  " real servers, %s uses %s", FMT_VS(vs), FMT_RS(rs, vs),
				  fnat_method_name(refused[i]));
			return false;
		}
	}
	return true;
}

/* Every check of one virtual server; false: it must not be configured.
 * Errors found while its lines were read were reported then: only the
 * consequence is said here. */
static bool
validate_vs(virtual_server_t *vs)
{
	bool fullnat = server_with_method(vs, IP_VS_CONN_F_FULLNAT) != NULL;
	bool ok;

	if (vs->fnat.invalid)
		return false;
	if (!resolve_group(vs))
		return false;
	ok = check_laddr_family(vs, &vs->fnat.laddrs, "");
	if (vs->fnat.group)
		ok = check_laddr_family(vs, &vs->fnat.group->laddrs, " of its local_address_group") && ok;
	if (fullnat)
		ok = check_fullnat(vs) && ok;
	else if (vs_has_laddrs(vs)) {
		pos_error(vs->fnat.laddr_pos.line ? &vs->fnat.laddr_pos : &vs->fnat.gname_pos,
			  "virtual server %s: local addresses are for FNAT real servers (lb_kind FNAT)",
			  FMT_VS(vs));
		ok = false;
	}
	return check_syn_proxy(vs) && ok;
}

void
fnat_validate_config(void)
{
	virtual_server_t *vs, *tmp;

	/* the client lists first: their checks name virtual servers left out below */
	acl_validate_config();
	list_for_each_entry_safe(vs, tmp, &check_data->vs, e_list) {
		if (validate_vs(vs))
			continue;
		pos_error(&vs->fnat.pos, "virtual server %s: skipped for its FULLNAT/SYNPROXY"
			  " errors (above); nothing of it is configured", FMT_VS(vs));
		free_vs(vs);
	}
	/* before any service is made or changed: guarded from its first packet */
	acl_apply_config();
}

/* ------------------------------------------------------------ kernel */

/* The virtual server fnat_sync_vs() works on: ipvs_cmd() passes only the
 * service of each IPVS instance down to fnat_sync_service(). */
static virtual_server_t *sync_vs;

void
fnat_reload_vs(const virtual_server_t *old_vs, virtual_server_t *new_vs)
{
	new_vs->fnat.had_laddrs = vs_has_laddrs(old_vs);
}

void
fnat_sync_vs(virtual_server_t *vs)
{
	if (!vs_has_laddrs(vs) && !vs->fnat.had_laddrs)
		return;
	sync_vs = vs;
	ipvs_cmd(IP_VS_SO_SET_SYNCLADDR, vs, NULL);
	sync_vs = NULL;
}

/* The kernel's local addresses of one service, and which are wanted */
typedef struct _laddr_set {
	int			af;
	union nf_inet_addr	*addrs;
	bool			*wanted;
	size_t			n;
	size_t			size;
} laddr_set_t;

static laddr_set_t kernel_set;

static void
set_add(laddr_set_t *s, const union nf_inet_addr *a, bool wanted)
{
	if (s->n == s->size) {
		s->size = s->size ? s->size * 2 : 16;
		s->addrs = REALLOC(s->addrs, s->size * sizeof(*s->addrs));
		s->wanted = REALLOC(s->wanted, s->size * sizeof(*s->wanted));
	}
	s->addrs[s->n] = *a;
	s->wanted[s->n++] = wanted;
}

static ssize_t __attribute__((pure))
set_find(const laddr_set_t *s, const union nf_inet_addr *a)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!memcmp(&s->addrs[i], a, sizeof(*a)))
			return (ssize_t)i;
	return -1;
}

static const char *
format_service(const ipvs_service_t *svc, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (svc->user.fwmark)
		snprintf(buf, len, "FWM %u%s", svc->user.fwmark, svc->af == AF_INET6 ? " inet6" : "");
	else
		snprintf(buf, len, svc->af == AF_INET6 ? "[%s]:%s:%u" : "%s:%s:%u",
			 laddr_str(svc->af, &svc->nf_addr, addr),
			 svc->user.protocol == IPPROTO_TCP ? "tcp" : "udp", ntohs(svc->user.port));
	return buf;
}

#ifdef LIBIPVS_USE_NL
static struct nla_policy laddr_cmd_policy[IPVS_CMD_ATTR_LADDR_FNAT + 1] = {
	[IPVS_CMD_ATTR_LADDR_FNAT]	= { .type = NLA_NESTED },
};

static struct nla_policy laddr_policy[IPVS_LADDR_ATTR_MAX_FNAT + 1] = {
	[IPVS_LADDR_ATTR_ADDR_FNAT]		= { .type = NLA_UNSPEC },
	[IPVS_LADDR_ATTR_PORT_CONFLICT_FNAT]	= { .type = NLA_U64 },
	[IPVS_LADDR_ATTR_CONN_COUNTS_FNAT]	= { .type = NLA_U32 },
};

/* One message of a GET_LADDR dump: one local address (kernel_set gets it).
 * libipvs keeps a callback's argument while the callback stays the same,
 * so the result goes to a file-level set, not through the argument. */
static int
laddr_dump_cb(struct nl_msg *msg, __attribute__((unused)) void *arg)
{
	struct nlattr *attrs[IPVS_CMD_ATTR_LADDR_FNAT + 1];
	struct nlattr *la[IPVS_LADDR_ATTR_MAX_FNAT + 1];
	union nf_inet_addr a;
	int len;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, attrs, IPVS_CMD_ATTR_LADDR_FNAT, laddr_cmd_policy) ||
	    !attrs[IPVS_CMD_ATTR_LADDR_FNAT] ||
	    nla_parse_nested(la, IPVS_LADDR_ATTR_MAX_FNAT, attrs[IPVS_CMD_ATTR_LADDR_FNAT], laddr_policy) ||
	    !la[IPVS_LADDR_ATTR_ADDR_FNAT])
		return NL_SKIP;
	len = nla_len(la[IPVS_LADDR_ATTR_ADDR_FNAT]);
	if (len < (kernel_set.af == AF_INET6 ? 16 : 4))
		return NL_SKIP;
	memset(&a, 0, sizeof(a));
	memcpy(&a, nla_data(la[IPVS_LADDR_ATTR_ADDR_FNAT]), kernel_set.af == AF_INET6 ? 16 : 4);
	set_add(&kernel_set, &a, false);
	return NL_OK;
}

static int
laddr_request(uint8_t cmd, int flags, ipvs_service_t *svc, int af, const union nf_inet_addr *a,
	      nl_recvmsg_msg_cb_t cb)
{
	struct nl_msg *msg = ipvs_nl_message(cmd, flags);
	struct nlattr *nest;

	if (!msg)
		return -1;
	if (ipvs_nl_fill_service_attr(msg, svc))
		goto nla_put_failure;
	if (a) {
		if (!(nest = nla_nest_start(msg, IPVS_CMD_ATTR_LADDR_FNAT)))
			goto nla_put_failure;
		NLA_PUT(msg, IPVS_LADDR_ATTR_ADDR_FNAT, af == AF_INET6 ? 16 : 4, a);
		nla_nest_end(msg, nest);
	}
	return ipvs_nl_send_message(msg, cb, NULL);

nla_put_failure:
	nlmsg_free(msg);
	errno = ENOMEM;
	return -1;
}
#else
static int
laddr_request(__attribute__((unused)) uint8_t cmd, __attribute__((unused)) int flags,
	      __attribute__((unused)) ipvs_service_t *svc, __attribute__((unused)) int af,
	      __attribute__((unused)) const union nf_inet_addr *a, __attribute__((unused)) void *cb)
{
	errno = EOPNOTSUPP;
	return -1;
}
#define laddr_dump_cb NULL
#define ipvs_nl_noop_cb NULL
#define NLM_F_DUMP 0
#endif

static void
wanted_from(list_head_t *l, int af)
{
	fnat_laddr_t *la;
	ssize_t i;

	list_for_each_entry(la, l, e_list) {
		if (la->af != af)
			continue;
		if ((i = set_find(&kernel_set, &la->addr)) >= 0)
			kernel_set.wanted[i] = true;
		else
			set_add(&kernel_set, &la->addr, true);
	}
}

/* IP_VS_SO_SET_SYNCLADDR: make the kernel's local addresses of svc those
 * of sync_vs (of svc's family).  The set holds the kernel's addresses
 * followed by the wanted ones it lacks; n_kernel separates the two. */
int
fnat_sync_service(ipvs_service_t *svc)
{
	char sbuf[INET6_ADDRSTRLEN + 16], abuf[INET6_ADDRSTRLEN];
	size_t i, n_kernel;
	int ret = 0;

	if (!sync_vs)
		return 0;
	kernel_set.n = 0;
	kernel_set.af = svc->af;
	if (laddr_request(IPVS_CMD_GET_LADDR_FNAT, NLM_F_DUMP, svc, svc->af, NULL, laddr_dump_cb)) {
		log_message(LOG_INFO, "IPVS: cannot list the local addresses of %s: %s",
			    format_service(svc, sbuf, sizeof(sbuf)), ipvs_strerror(errno));
		return -1;
	}
	n_kernel = kernel_set.n;
	wanted_from(&sync_vs->fnat.laddrs, svc->af);
	if (sync_vs->fnat.group)
		wanted_from(&sync_vs->fnat.group->laddrs, svc->af);

	for (i = 0; i < kernel_set.n; i++) {
		bool add = i >= n_kernel;

		if (!add && kernel_set.wanted[i])
			continue;	/* in the kernel and wanted */
		log_message(LOG_INFO, "%s local address %s %s %s", add ? "Adding" : "Removing",
			    laddr_str(svc->af, &kernel_set.addrs[i], abuf), add ? "to" : "from",
			    format_service(svc, sbuf, sizeof(sbuf)));
		if (laddr_request(add ? IPVS_CMD_NEW_LADDR_FNAT : IPVS_CMD_DEL_LADDR_FNAT, 0, svc,
				  svc->af, &kernel_set.addrs[i], ipvs_nl_noop_cb)) {
			log_message(LOG_INFO, "IPVS: %s local address %s %s %s failed: %s",
				    add ? "adding" : "removing", abuf, add ? "to" : "from", sbuf,
				    ipvs_strerror(errno));
			ret = -1;
		}
	}
	return ret;
}
