// SPDX-License-Identifier: GPL-2.0
/*
 * lvs-toolkit: client allow and deny lists in keepalived.conf.
 *
 *   deny_group NAME { 203.0.113.0/24  198.51.100.7 timeout 1h  2001:db8::/32 }
 *   allow_group NAME { ... }
 *   virtual_server 10.0.0.100 80 { deny_group NAME  allow_group NAME ... }
 *   acl_apply_command PROGRAM [ARG...]     (default: ipvsadm-py)
 *
 * keepalived filters no packet: the kernel's nftables does, in a table
 * that `ipvsadm-py acl apply-keepalived -f CONF` makes the file's lists in
 * one transaction (all of them, or nothing).  Here the keywords are read
 * and checked (every bad entry is a configuration error naming its line,
 * so `keepalived --config-test` fails), and the checker runs that command
 * after reading the file, on start and on every reload, before it makes
 * or changes any service: a new service is guarded from its first packet.
 * The command reads the same file and checks it whole again; when it
 * refuses (status != 0), nftables keeps the lists it had and the checker
 * logs why.  It runs only for a file that has lists, or once lists were
 * applied by this checker (so that removing the last group removes them).
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_acl.h"
#include "check_data.h"
#include "check_fnat.h"
#include "logger.h"
#include "main.h"
#include "memory.h"
#include "parser.h"
#include "utils.h"

#define ACL_MAX_TIMEOUT		(365UL * 24 * 3600)
#define ACL_MAX_ARGS		16

enum { ACL_DENY, ACL_ALLOW };
static const char *const kind_word[] = { "deny_group", "allow_group" };

typedef struct _acl_group {
	int			kind;
	char			*name;
	size_t			line;
	bool			invalid;
	bool			has_family[2];	/* IPv4, IPv6 entries */
	struct _acl_group	*next;
} acl_group_t;

typedef struct _acl_ref {
	int			kind;
	char			*name;
	size_t			line;
	virtual_server_t	*vs;
	struct _acl_ref		*next;
} acl_ref_t;

/* one address or prefix, as a closed interval of 16 bytes */
typedef struct {
	int			v6;
	uint8_t			lo[16];
	uint8_t			hi[16];
	const char		*word;
} acl_span_t;

static acl_group_t *groups;
static acl_ref_t *refs;
static char *command[ACL_MAX_ARGS + 1];
static bool applied_before;		/* lists were applied by this process */

void
acl_reset(void)
{
	acl_group_t *g;
	acl_ref_t *r;
	int i;

	while ((g = groups)) {
		groups = g->next;
		FREE(g->name);
		FREE(g);
	}
	while ((r = refs)) {
		refs = r->next;
		FREE(r->name);
		FREE(r);
	}
	for (i = 0; command[i]; i++)
		FREE(command[i]);
}

/* ------------------------------------------------------------ entries */

/* 90, 90s, 30m, 1h, 2d, 1h30m: seconds, 0 when invalid */
static unsigned long
parse_duration(const char *s)
{
	static const char units[] = "smhd";
	static const unsigned long scale[] = { 1, 60, 3600, 86400 };
	unsigned long total = 0, n;
	const char *unit;
	char *end;

	if (*s < '0' || *s > '9')
		return 0;
	n = strtoul(s, &end, 10);
	if (!*end)
		return n <= ACL_MAX_TIMEOUT ? n : 0;
	while (*s) {
		if (*s < '0' || *s > '9')
			return 0;
		n = strtoul(s, &end, 10);
		unit = *end ? strchr(units, *end) : NULL;
		if (!unit || n > ACL_MAX_TIMEOUT)
			return 0;
		total += n * scale[unit - units];
		if (total > ACL_MAX_TIMEOUT)
			return 0;
		s = end + 1;
	}
	return total;
}

/* an address or a prefix without host bits: NULL, or what is wrong */
static const char *
parse_span(const char *word, acl_span_t *span)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	unsigned long len;
	int bytes, bits, i;
	uint8_t host;

	if (strlen(word) >= sizeof(buf))
		return "not an address or prefix";
	strcpy(buf, word);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(span, 0, sizeof(*span));
	span->word = word;
	if (inet_pton(AF_INET, buf, span->lo) == 1)
		bytes = 4;
	else if (inet_pton(AF_INET6, buf, span->lo) == 1)
		bytes = 16;
	else
		return "not an address or prefix";
	span->v6 = bytes == 16;
	len = (unsigned long)bytes * 8;
	if (slash) {
		if (*slash < '0' || *slash > '9')
			return "not an address or prefix";
		len = strtoul(slash, &end, 10);
		if (*end || len > (unsigned long)bytes * 8)
			return "prefix length out of range";
	}
	memcpy(span->hi, span->lo, sizeof(span->hi));
	for (i = 0; i < bytes; i++) {
		bits = (int)len - i * 8;
		host = bits >= 8 ? 0 : bits <= 0 ? 0xff : (uint8_t)(0xff >> bits);
		if (span->lo[i] & host)
			return "has host bits set";
		span->hi[i] |= host;
	}
	return NULL;
}

static int
span_cmp(const void *a, const void *b)
{
	const acl_span_t *x = a, *y = b;
	int c;

	if (x->v6 != y->v6)
		return x->v6 - y->v6;
	c = memcmp(x->lo, y->lo, 16);
	return c ? c : -memcmp(x->hi, y->hi, 16);	/* the wider first */
}

/* entries listed twice or overlapping: nftables refuses them */
static bool
check_overlaps(acl_group_t *g, acl_span_t *spans, size_t n)
{
	const acl_span_t *widest = NULL;
	bool ok = true;
	size_t i;

	qsort(spans, n, sizeof(*spans), span_cmp);
	for (i = 0; i < n; i++) {
		if (widest && widest->v6 == spans[i].v6 &&
		    memcmp(spans[i].lo, widest->hi, 16) <= 0) {
			report_config_error(CONFIG_GENERAL_ERROR, "%s %s: %s overlaps %s (or is "
					    "listed twice)", kind_word[g->kind], g->name,
					    spans[i].word, widest->word);
			ok = false;
			continue;
		}
		widest = &spans[i];
	}
	return ok;
}

static void
read_entries(acl_group_t *g, const vector_t *words)
{
	acl_span_t *spans;
	const char *word, *fault;
	unsigned long timeout;
	size_t i, n = 0;

	if (!words)
		return;
	spans = MALLOC(vector_size(words) * sizeof(*spans) + 1);
	for (i = 0; i < vector_size(words); i++) {
		word = strvec_slot(words, i);
		if (!strcmp(word, "timeout")) {
			timeout = i + 1 < vector_size(words) ?
				  parse_duration(strvec_slot(words, i + 1)) : 0;
			if (!n || strvec_slot(words, i - 1) != spans[n - 1].word || !timeout) {
				report_config_error(CONFIG_GENERAL_ERROR, "%s %s: timeout takes a "
						    "duration (90s, 30m, 1h, 2d; at most 365d) after "
						    "an entry", kind_word[g->kind], g->name);
				g->invalid = true;
			}
			i++;
			continue;
		}
		fault = parse_span(word, &spans[n]);
		if (fault) {
			report_config_error(CONFIG_GENERAL_ERROR, "%s %s: invalid entry '%s': %s",
					    kind_word[g->kind], g->name, word, fault);
			g->invalid = true;
			continue;
		}
		g->has_family[spans[n].v6] = true;
		n++;
	}
	if (!g->invalid && !check_overlaps(g, spans, n))
		g->invalid = true;
	FREE(spans);
}

/* ------------------------------------------------------------ keywords */

static acl_group_t * __attribute__((pure))
find_group(int kind, const char *name)
{
	acl_group_t *g;

	for (g = groups; g; g = g->next)
		if (g->kind == kind && !strcmp(g->name, name))
			return g;
	return NULL;
}

static void
group_handler(int kind, const vector_t *strvec)
{
	vector_t *block_vec;
	const vector_t *words;
	const char *file;
	acl_group_t *g, *first;

	if (!strvec)
		return;
	if (vector_size(strvec) < 2) {
		report_config_error(CONFIG_GENERAL_ERROR, "%s needs a name - skipping",
				    kind_word[kind]);
		skip_block(true);
		return;
	}
	PMALLOC(g);
	g->kind = kind;
	g->name = STRDUP(strvec_slot(strvec, 1));
	g->line = config_position(&file);

	block_vec = fnat_block_after_name(strvec);
	words = read_value_block(block_vec);
	vector_free(block_vec);
	read_entries(g, words);
	if (words)
		free_strvec(words);

	first = find_group(kind, g->name);
	if (first) {
		report_config_error(CONFIG_GENERAL_ERROR, "%s %s is defined twice",
				    kind_word[kind], g->name);
		/* the file is refused by ipvsadm-py as a whole: keep one, marked */
		first->invalid = true;
		FREE(g->name);
		FREE(g);
		return;
	}
	g->next = groups;
	groups = g;
}

static void
deny_group_handler(const vector_t *strvec)
{
	group_handler(ACL_DENY, strvec);
}

static void
allow_group_handler(const vector_t *strvec)
{
	group_handler(ACL_ALLOW, strvec);
}

/* acl_apply_command PROGRAM [ARG...] */
static void
command_handler(const vector_t *strvec)
{
	size_t i;

	if (!strvec)
		return;
	if (vector_size(strvec) < 2 || vector_size(strvec) > ACL_MAX_ARGS - 3) {
		report_config_error(CONFIG_GENERAL_ERROR, "acl_apply_command needs a program "
				    "and at most %d arguments", ACL_MAX_ARGS - 5);
		return;
	}
	for (i = 0; command[i]; i++)
		FREE(command[i]);
	for (i = 1; i < vector_size(strvec); i++)
		command[i - 1] = STRDUP(strvec_slot(strvec, i));
}

static void
vs_ref(int kind, const vector_t *strvec)
{
	const char *file;
	acl_ref_t *r;

	if (vector_size(strvec) != 2) {
		report_config_error(CONFIG_GENERAL_ERROR, "%s needs one group name",
				    kind_word[kind]);
		return;
	}
	PMALLOC(r);
	r->kind = kind;
	r->name = STRDUP(strvec_slot(strvec, 1));
	r->line = config_position(&file);
	r->vs = list_last_entry(&check_data->vs, virtual_server_t, e_list);
	r->next = refs;
	refs = r;
}

static void
vs_deny_handler(const vector_t *strvec)
{
	vs_ref(ACL_DENY, strvec);
}

static void
vs_allow_handler(const vector_t *strvec)
{
	vs_ref(ACL_ALLOW, strvec);
}

void
acl_install_root_keywords(bool active)
{
	install_keyword_root("deny_group", &deny_group_handler, active);
	install_keyword_root("allow_group", &allow_group_handler, active);
	install_keyword_root("acl_apply_command", &command_handler, active);
}

void
acl_install_vs_keywords(void)
{
	install_keyword("deny_group", &vs_deny_handler);
	install_keyword("allow_group", &vs_allow_handler);
}

/* ------------------------------------------------------------ validation */

void
acl_validate_config(void)
{
	acl_group_t *g;
	acl_ref_t *r;
	const char *what;

	for (r = refs; r; r = r->next) {
		g = find_group(r->kind, r->name);
		what = kind_word[r->kind];
		/* a virtual_server_group: ipvsadm-py checks each of its services */
		if (!r->vs->vsgname && (r->vs->vfwmark || !inet_sockaddrport(&r->vs->addr)))
			report_config_error(CONFIG_GENERAL_ERROR, "(Line %zu) virtual server %s: "
					    "%s needs a service with an address and a port (not a "
					    "fwmark or port 0)", r->line, FMT_VS(r->vs), what);
		else if (!g)
			report_config_error(CONFIG_GENERAL_ERROR, "(Line %zu) virtual server %s: "
					    "%s %s is not defined", r->line, FMT_VS(r->vs), what,
					    r->name);
		else if (g->invalid)
			report_config_error(CONFIG_GENERAL_ERROR, "(Line %zu) virtual server %s: "
					    "%s %s has errors (reported at its lines)", r->line,
					    FMT_VS(r->vs), what, r->name);
		else if (r->kind == ACL_ALLOW && (r->vs->af == AF_INET || r->vs->af == AF_INET6) &&
			 !g->has_family[r->vs->af == AF_INET6])
			report_config_error(CONFIG_GENERAL_ERROR, "(Line %zu) virtual server %s: "
					    "allow_group %s has no IPv%d entries (it would admit "
					    "nobody)", r->line, FMT_VS(r->vs), r->name,
					    r->vs->af == AF_INET6 ? 6 : 4);
	}
}

/* ------------------------------------------------------------ applying */

/* COMMAND acl apply-keepalived -f CONF; its output goes to our log */
static int
run_command(void)
{
	const char *argv[ACL_MAX_ARGS + 1];
	union { const char **c; char **p; } args = { .c = argv };	/* execvp's type */
	char line[1024];
	struct sigaction dfl, old_chld;
	sigset_t none;
	int fds[2], status = 0, i, n = 0;
	FILE *out;
	pid_t pid;

	for (i = 0; command[i]; i++)
		argv[n++] = command[i];
	if (!n)
		argv[n++] = ACL_DEFAULT_COMMAND;
	argv[n++] = "acl";
	argv[n++] = "apply-keepalived";
	argv[n++] = "-f";
	argv[n++] = conf_file;
	argv[n] = NULL;

	if (pipe(fds))
		return -1;
	/* The checker may ignore SIGCHLD (children then reap themselves and
	 * waitpid() fails): have our child's status for as long as we wait. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &old_chld);
	pid = fork();
	if (pid < 0) {
		sigaction(SIGCHLD, &old_chld, NULL);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (!pid) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], args.p);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	out = fdopen(fds[0], "r");
	if (out) {
		while (fgets(line, sizeof(line), out)) {
			line[strcspn(line, "\n")] = '\0';
			log_message(LOG_INFO, "client lists: %s", line);
		}
		fclose(out);
	} else {
		close(fds[0]);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_message(LOG_ERR, "client lists: waiting for %s: %s", argv[0],
				    strerror(errno));
			sigaction(SIGCHLD, &old_chld, NULL);
			return -1;
		}
	}
	sigaction(SIGCHLD, &old_chld, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
acl_apply_config(void)
{
	int status;

	if (__test_bit(CONFIG_TEST_BIT, &debug))
		return;
	if (!groups && !refs && !applied_before)
		return;
	status = run_command();
	applied_before = true;
	if (status)
		log_message(LOG_ERR, "client lists of %s NOT applied (%s acl apply-keepalived: "
			    "status %d): nftables keeps the lists it had", conf_file,
			    command[0] ? command[0] : ACL_DEFAULT_COMMAND, status);
	else
		log_message(LOG_INFO, "client lists of %s applied", conf_file);
}
