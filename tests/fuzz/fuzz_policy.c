/*
 * fuzz_policy.c - the policy text compiler. Whatever compiles must encode,
 * decode to a policy that routes a few fixed headers identically, re-encode
 * to the same bytes, and describe itself as text that compiles again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

static const struct ruf_route_header headers[] = {
    {RUF_KIND_SITREP, "", "", "", 0, 0},
    {RUF_KIND_SITREP, "darfur", "sd", "east-africa", RUF_RISK_HIGH,
     RUF_FLAG_VIOLATIONS | RUF_FLAG_EARLY_WARNING},
    {RUF_KIND_SURGE, "x", "y", "z", RUF_RISK_LOW, RUF_FLAG_ESCALATION},
    {RUF_KIND_REPLY, "a", "cd", "great-lakes", RUF_RISK_ONGOING, RUF_FLAGS_ALL},
    {RUF_KIND_SITREP, "kivu", "a", "x", RUF_RISK_ELEVATED, RUF_FLAG_CASUALTIES},
};

/* Same result for each header; names are compared as strings (the bytes after
 * each NUL are unspecified). */
static void
same_routes(const ruf_policy *a, const ruf_policy *b)
{
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		struct ruf_queue_set x, y;
		int rx = ruf_route_eval(a, &headers[i], &x),
		    ry = ruf_route_eval(b, &headers[i], &y);

		if (rx != ry)
			abort();
		if (rx != 0)
			continue;
		if (x.n != y.n || x.n == 0)
			abort();
		for (size_t j = 0; j < x.n; j++) {
			if (strcmp(x.names[j], y.names[j]) != 0)
				abort();
		}
	}
}

static int
count_queue(const char *q, unsigned line, void *ctx)
{
	(void)line;
	if (!ruf_is_queue_name(q))
		abort();
	++*(size_t *)ctx;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ruf_policy *p = NULL, *q = NULL, *r = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen, nq = 0;
	char *desc = NULL;
	ruf_diag d = {{0}};

	if (ruf_policy_compile((const char *)data, size, &d, &p) != 0) {
		if (p != NULL || (size <= RUF_POLICY_TEXT_MAX && strncmp(d.msg, "line ", 5) != 0))
			abort();
		return 0;
	}
	if (ruf_policy_queues(p, count_queue, &nq) != 0 || nq == 0)
		abort();
	if (ruf_policy_encode(p, &a, &alen) != 0 || ruf_policy_decode(a, alen, &q) != 0)
		abort();
	same_routes(p, q);
	if (ruf_policy_encode(q, &b, &blen) != 0 || blen != alen || memcmp(a, b, alen) != 0)
		abort();
	if (ruf_policy_describe(q, &desc) != 0)
		abort();
	/* The listing ends with comments naming every queue: bounded here. */
	if (strlen(desc) <= RUF_POLICY_TEXT_MAX) {
		if (ruf_policy_compile(desc, strlen(desc), &d, &r) != 0)
			abort();
		same_routes(p, r);
	}
	free(desc);
	free(a);
	free(b);
	ruf_policy_free(p);
	ruf_policy_free(q);
	ruf_policy_free(r);
	return 0;
}
