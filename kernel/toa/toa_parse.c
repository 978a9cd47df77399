// SPDX-License-Identifier: GPL-2.0
/*
 * TOA option parsing (see toa_parse.h).
 *
 * The walk follows RFC 9293's option rules: EOL ends the list, NOP is one
 * byte, every other option has a length byte counting itself and the kind.
 * The balancer's option is never trusted unless the whole area is well
 * formed: a length byte pointing past the header or a second TOA option is
 * what a crafted packet looks like, not what a balancer sends.
 */

#include <linux/string.h>
#include "toa_parse.h"

#define TCPOPT_EOL_KIND	0
#define TCPOPT_NOP_KIND	1

static bool toa_kind(u8 kind)
{
	return kind == TOA_KIND || kind == TOA_KIND_LEGACY;
}

/* Kind 254 comes in both sizes; the legacy kind 253 only carries IPv6. */
static bool toa_len_ok(u8 kind, u8 len)
{
	if (kind == TOA_KIND)
		return len == TOA_LEN_V4 || len == TOA_LEN_V6;
	return len == TOA_LEN_V6;
}

static void toa_decode(const u8 *opt, struct toa_addr *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(&out->port, opt + 2, sizeof(out->port));
	out->v6 = opt[1] == TOA_LEN_V6;
	if (out->v6)
		memcpy(&out->addr.v6, opt + 4, sizeof(out->addr.v6));
	else
		memcpy(&out->addr.v4, opt + 4, sizeof(out->addr.v4));
}

/* RFC 9293: the bytes after EOL are padding and must be zero. */
static bool toa_padding_clean(const u8 *opt, unsigned int len)
{
	while (len--)
		if (*opt++)
			return false;
	return true;
}

/**
 * toa_parse_options - find the TOA option in a TCP option area
 * @opt: first byte after the fixed TCP header
 * @len: bytes of options (doff * 4 - 20)
 * @out: receives the client address when TOA_FOUND is returned
 */
enum toa_verdict toa_parse_options(const u8 *opt, unsigned int len,
				   struct toa_addr *out)
{
	bool found = false;
	u8 kind, olen;

	while (len) {
		kind = opt[0];
		if (kind == TCPOPT_EOL_KIND) {
			if (!toa_padding_clean(opt + 1, len - 1))
				return TOA_AFTER_EOL;
			break;
		}
		if (kind == TCPOPT_NOP_KIND) {
			opt++;
			len--;
			continue;
		}
		if (len < 2)
			return TOA_TRUNCATED;
		olen = opt[1];
		if (toa_kind(kind) && !toa_len_ok(kind, olen))
			return TOA_BAD_LEN;
		if (olen < 2 || olen > len)
			return TOA_TRUNCATED;
		if (toa_kind(kind)) {
			if (found)
				return TOA_DUPLICATE;
			toa_decode(opt, out);
			found = true;
		}
		opt += olen;
		len -= olen;
	}
	return found ? TOA_FOUND : TOA_ABSENT;
}
