/*
 * fuzz_policy_bin.c - the compiled policy decoder (as carried in a signed
 * directory). Whatever decodes must re-encode to exactly the input bytes
 * (one canonical form), list valid queue names, and evaluate fixed headers
 * without error other than RUF_E_TOO_LARGE.
 */
#include <stdint.h>
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

static int
check_queue(const char *q, unsigned line, void *ctx)
{
	(void)line;
	(void)ctx;
	if (!ruf_is_queue_name(q))
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ruf_policy *p = NULL;
	uint8_t *a = NULL;
	size_t alen;
	char *desc = NULL;

	if (ruf_policy_decode(data, size, &p) != 0) {
		if (p != NULL)
			abort();
		return 0;
	}
	if (ruf_policy_encode(p, &a, &alen) != 0 || alen != size || memcmp(a, data, size) != 0)
		abort();
	if (ruf_policy_queues(p, check_queue, NULL) != 0)
		abort();
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		struct ruf_queue_set s;
		int rc = ruf_route_eval(p, &headers[i], &s);

		if (rc == 0) {
			if (s.n == 0 || s.n > RUF_ROUTE_MAX_QUEUES)
				abort();
			for (size_t j = 0; j < s.n; j++) {
				if (!ruf_is_queue_name(s.names[j]) ||
				    (j > 0 && strcmp(s.names[j - 1], s.names[j]) >= 0))
					abort();
			}
		} else if (rc != RUF_E_TOO_LARGE) {
			abort();
		}
	}
	if (ruf_policy_describe(p, &desc) != 0)
		abort();
	free(desc);
	free(a);
	ruf_policy_free(p);
	return 0;
}
