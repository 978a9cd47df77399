/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Parsing of the TOA option out of a TCP header's option area.
 *
 * This part has no kernel dependency beyond a few types and memcpy(), so
 * that tests/unit/test_toa_parse.py can compile toa_parse.c in user space
 * and feed it every option layout, well formed or not.
 */
#ifndef TOA_PARSE_H
#define TOA_PARSE_H

#include <linux/types.h>
#include <linux/in6.h>

/* Option kinds and lengths (docs/toa.md, shared/spec/abi.md). */
#define TOA_KIND		254	/* IPv4 (length 8) or IPv6 (length 20) */
#define TOA_KIND_LEGACY		253	/* IPv6 from older Alibaba balancers */
#define TOA_LEN_V4		8
#define TOA_LEN_V6		20

/* The client address and port a balancer put into the option. */
struct toa_addr {
	bool v6;		/* addr.v6 holds the client, else addr.v4 */
	__be16 port;
	union {
		__be32 v4;
		struct in6_addr v6;
	} addr;
};

/*
 * What the option area held.  Anything but TOA_FOUND means no address was
 * taken from this segment: a header with a malformed option is not trusted
 * at all, even if a well-formed TOA option sits next to the malformed one.
 */
enum toa_verdict {
	TOA_ABSENT,		/* no TOA option */
	TOA_FOUND,		/* exactly one well-formed TOA option */
	TOA_BAD_LEN,		/* TOA kind with a length of no TOA variant */
	TOA_TRUNCATED,		/* an option runs past the end of the header */
	TOA_AFTER_EOL,		/* non-zero bytes after End of Option List */
	TOA_DUPLICATE,		/* more than one TOA option */
};

enum toa_verdict toa_parse_options(const u8 *opt, unsigned int len,
				   struct toa_addr *out);

#endif /* TOA_PARSE_H */
