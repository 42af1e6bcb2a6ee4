/*
 * route.c - the routing policy: text compiler, compiled (protobuf) form,
 * and pure evaluation on an envelope's clear header.
 *
 * Both ways in (ruf_policy_compile from text, ruf_policy_decode from the
 * directory) build the same in-memory rules and finish each one through
 * rule_finish(), so a decoded policy satisfies exactly the invariants a
 * compiled one does: the directory is signed, but a parser trusts nothing.
 * Format and semantics: docs/PROTOCOL.md.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"
#include "policy.pb-c.h"
#include "route.h"

/* The string-valued header fields, in the order of struct ruf_route_header. */
enum field { F_SITUATION, F_COUNTRY, F_REGION, F_N };

static const char *const field_names[F_N] = {"situation", "country", "region"};

#define KIND_MAX RUF_KIND_REPLY
#define RISK_MAX RUF_RISK_ONGOING
/* Masks over enum values: bit (1 << value). */
#define KINDS_ALL (((1u << (KIND_MAX + 1)) - 1) & ~1u)

struct strlist {
	char **v; /* sorted by strcmp, unique */
	size_t n; /* 0: the rule does not constrain this field */
};

struct rule {
	char *name;
	unsigned line;    /* line of 'rule' */
	unsigned to_line; /* line of 'to', for diagnostics */
	unsigned kinds;   /* bit (1 << kind); 0 = any */
	unsigned risks;   /* bit (1 << risk); 0 = any */
	uint32_t flags_any;
	struct strlist f[F_N];
	struct strlist queues; /* templates, sorted, unique */
	bool stop;
};

struct ruf_policy {
	struct rule *rules;
	size_t n, cap;
	size_t n_values;     /* condition values and queues, summed (limit) */
	size_t n_expansions; /* concrete queues from templates, summed (limit) */
};

/* ---- names ------------------------------------------------------------ */

static const char *const kind_names[] = {NULL, "sitrep", "surge", "reply"};
static const char *const risk_names[] = {NULL, "low", "elevated", "high", "ongoing"};
static const char *const flag_names[] = {"violations", "casualties", "escalation", "early-warning"};

const char *
ruf_kind_name(int kind)
{
	if (kind < 1 || kind > KIND_MAX)
		return NULL;
	return kind_names[kind];
}

int
ruf_kind_parse(const char *s)
{
	for (int k = 1; s != NULL && k <= KIND_MAX; k++) {
		if (strcmp(s, kind_names[k]) == 0)
			return k;
	}
	return 0;
}

const char *
ruf_risk_name(int risk)
{
	if (risk < 1 || risk > RISK_MAX)
		return NULL;
	return risk_names[risk];
}

int
ruf_risk_parse(const char *s)
{
	for (int r = 1; s != NULL && r <= RISK_MAX; r++) {
		if (strcmp(s, risk_names[r]) == 0)
			return r;
	}
	return 0;
}

const char *
ruf_flag_name(uint32_t flag)
{
	for (unsigned i = 0; i < 4; i++) {
		if (flag == 1u << i)
			return flag_names[i];
	}
	return NULL;
}

uint32_t
ruf_flag_parse(const char *s)
{
	for (unsigned i = 0; s != NULL && i < 4; i++) {
		if (strcmp(s, flag_names[i]) == 0)
			return 1u << i;
	}
	return 0;
}

/* ---- rules and lists -------------------------------------------------- */

static void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
rule_free(struct rule *r)
{
	free(r->name);
	for (int f = 0; f < F_N; f++)
		strlist_free(&r->f[f]);
	strlist_free(&r->queues);
	memset(r, 0, sizeof(*r));
}

void
ruf_policy_free(ruf_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	free(p);
}

size_t
ruf_policy_rule_count(const ruf_policy *p)
{
	return p == NULL ? 0 : p->n;
}

static bool
strlist_has(const struct strlist *l, const char *s)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s, l->v[mid]);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* True if every element of sub is in sup (both sorted, unique). */
static bool
strlist_subset(const struct strlist *sub, const struct strlist *sup)
{
	size_t j = 0;

	if (sub->n > sup->n)
		return false;
	for (size_t i = 0; i < sub->n; i++) {
		int c = 1;
		while (j < sup->n && (c = strcmp(sup->v[j], sub->v[i])) < 0)
			j++;
		if (j == sup->n || c != 0)
			return false;
		j++;
	}
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- queue templates -------------------------------------------------- */

/*
 * Scans template t: literal bytes and ${situation}, ${country}, ${region}.
 * Sets *vars to the mask (1 << field) of the variables used. Returns NULL or
 * a static description of the syntax error.
 */
static const char *
tmpl_scan(const char *t, unsigned *vars)
{
	*vars = 0;
	if (strlen(t) > RUF_POLICY_TEMPLATE_MAX)
		return "is longer than 256 bytes";
	for (const char *s = t; *s != '\0'; s++) {
		const char *close;
		size_t n;
		int f;

		if (*s != '$')
			continue;
		if (s[1] != '{')
			return "has a '$' not followed by '{'";
		if ((close = strchr(s + 2, '}')) == NULL)
			return "has an unterminated '${'";
		n = (size_t)(close - (s + 2));
		for (f = 0; f < F_N; f++) {
			if (strlen(field_names[f]) == n && memcmp(s + 2, field_names[f], n) == 0)
				break;
		}
		if (f == F_N)
			return "uses an unknown variable (expected ${situation}, ${country} or "
			       "${region})";
		*vars |= 1u << f;
		s = close;
	}
	return NULL;
}

/*
 * Expands template t (already scanned) with vals into out (size outsz).
 * Returns false if the result does not fit.
 */
static bool
tmpl_expand(const char *t, const char *const vals[F_N], char *out, size_t outsz)
{
	size_t o = 0;

	for (const char *s = t; *s != '\0'; s++) {
		if (*s == '$' && s[1] == '{') {
			const char *close = strchr(s + 2, '}'), *v = NULL;
			size_t n = close != NULL ? (size_t)(close - (s + 2)) : 0, vl;

			for (int f = 0; close != NULL && f < F_N; f++) {
				if (strlen(field_names[f]) == n &&
				    memcmp(s + 2, field_names[f], n) == 0)
					v = vals[f];
			}
			if (v == NULL)
				return false;
			vl = strlen(v);
			if (vl >= outsz - o)
				return false;
			memcpy(out + o, v, vl);
			o += vl;
			s = close;
			continue;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = *s;
	}
	out[o] = '\0';
	return true;
}

/*
 * Calls fn for every expansion of template t (using variables vars) over the
 * rule's value lists: the cross product of the lists the template uses.
 * Expansions that do not fit in a queue name are passed truncated with
 * fits == false. Stops at the first non-zero result.
 */
static int
tmpl_each(const struct rule *r, const char *t, unsigned vars,
          int (*fn)(const char *q, bool fits, void *ctx), void *ctx)
{
	size_t idx[F_N] = {0};
	const char *vals[F_N] = {"", "", ""};
	char buf[RUF_QUEUE_NAME_MAX + 1];
	int rc;

	for (;;) {
		bool fits;
		int f;

		for (f = 0; f < F_N; f++) {
			if (vars & (1u << f))
				vals[f] = r->f[f].v[idx[f]];
		}
		fits = tmpl_expand(t, vals, buf, sizeof(buf));
		if (!fits)
			buf[sizeof(buf) - 1] = '\0';
		if ((rc = fn(buf, fits, ctx)) != 0)
			return rc;
		/* Odometer over the used fields. */
		for (f = 0; f < F_N; f++) {
			if (!(vars & (1u << f)))
				continue;
			if (++idx[f] < r->f[f].n)
				break;
			idx[f] = 0;
		}
		if (f == F_N)
			return 0;
	}
}

/* ---- rule validation shared by compile and decode --------------------- */

struct check_ctx {
	const struct rule *r;
	const char *tmpl;
	ruf_diag *d;
};

static int
check_expansion(const char *q, bool fits, void *vctx)
{
	struct check_ctx *c = vctx;

	if (!fits || !ruf_is_queue_name(q)) {
		if (strcmp(q, c->tmpl) == 0)
			ruf_diag_set(c->d, "line %u: '%s' is not a valid queue name", c->r->to_line,
			             c->tmpl);
		else
			ruf_diag_set(c->d,
			             "line %u: queue '%s' expands to '%s%s', not a valid queue "
			             "name",
			             c->r->to_line, c->tmpl, q, fits ? "" : "...");
		return RUF_E_POLICY;
	}
	return 0;
}

/* Whether an earlier rule e (with stop) matches every header that r matches. */
static bool
rule_subsumes(const struct rule *e, const struct rule *r)
{
	/* Every header has a kind, so listing all three is no constraint. */
	unsigned ek = e->kinds == KINDS_ALL ? 0 : e->kinds;

	if (ek != 0 && (r->kinds == 0 || (r->kinds & ~ek) != 0))
		return false;
	/* A header may carry no risk (0): a risk list never matches it. */
	if (e->risks != 0 && (r->risks == 0 || (r->risks & ~e->risks) != 0))
		return false;
	/* Any-of: r's headers all carry a flag of e's set iff r's set is within e's. */
	if (e->flags_any != 0 && (r->flags_any == 0 || (r->flags_any & ~e->flags_any) != 0))
		return false;
	for (int f = 0; f < F_N; f++) {
		if (e->f[f].n != 0 && (r->f[f].n == 0 || !strlist_subset(&r->f[f], &e->f[f])))
			return false;
	}
	return true;
}

/*
 * Checks the rule-level invariants of r (its own lists are already valid)
 * and appends it to p, which then owns its contents. On failure returns
 * RUF_E_POLICY (or RUF_E_NOMEM) and leaves r to the caller.
 */
static int
rule_finish(ruf_policy *p, struct rule *r, ruf_diag *d)
{
	size_t values = r->queues.n, expansions = 0;
	int rc;

	if (p->n >= RUF_POLICY_MAX_RULES) {
		ruf_diag_set(d, "line %u: more than %u rules", r->line, RUF_POLICY_MAX_RULES);
		return RUF_E_POLICY;
	}
	if (r->queues.n == 0) {
		ruf_diag_set(d, "line %u: rule '%s' has no 'to'", r->line, r->name);
		return RUF_E_POLICY;
	}
	if (r->queues.n > RUF_ROUTE_MAX_QUEUES) {
		ruf_diag_set(d, "line %u: more than %u queues in 'to'", r->to_line,
		             RUF_ROUTE_MAX_QUEUES);
		return RUF_E_POLICY;
	}
	for (int f = 0; f < F_N; f++)
		values += r->f[f].n;
	values += (size_t)__builtin_popcount(r->kinds) + (size_t)__builtin_popcount(r->risks) +
	          (size_t)__builtin_popcount(r->flags_any);
	if (values > RUF_POLICY_MAX_VALUES - p->n_values) {
		ruf_diag_set(d, "line %u: the policy has more than %u values", r->line,
		             RUF_POLICY_MAX_VALUES);
		return RUF_E_POLICY;
	}
	for (size_t i = 0; i < r->queues.n; i++) {
		const char *t = r->queues.v[i], *why;
		struct check_ctx c = {r, t, d};
		unsigned vars;
		size_t count = 1;

		if ((why = tmpl_scan(t, &vars)) != NULL) {
			ruf_diag_set(d, "line %u: queue '%.64s' %s", r->to_line, t, why);
			return RUF_E_POLICY;
		}
		for (int f = 0; f < F_N; f++) {
			if (!(vars & (1u << f)))
				continue;
			if (r->f[f].n == 0) {
				ruf_diag_set(d,
				             "line %u: queue '%s' uses ${%s} but rule '%s' has no "
				             "'%s' condition",
				             r->to_line, t, field_names[f], r->name,
				             field_names[f]);
				return RUF_E_POLICY;
			}
			/* Both factors are at most RUF_POLICY_MAX_VALUES: no overflow. */
			count *= r->f[f].n;
			if (count > RUF_POLICY_MAX_EXPANSIONS)
				break;
		}
		if (count > RUF_POLICY_MAX_EXPANSIONS - p->n_expansions - expansions) {
			ruf_diag_set(
			    d, "line %u: the policy's templates expand to more than %u queues",
			    r->to_line, RUF_POLICY_MAX_EXPANSIONS);
			return RUF_E_POLICY;
		}
		expansions += count;
		if ((rc = tmpl_each(r, t, vars, check_expansion, &c)) != 0)
			return rc;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct rule *e = &p->rules[i];
		if (e->stop && rule_subsumes(e, r)) {
			ruf_diag_set(
			    d,
			    "line %u: rule '%s' is unreachable: rule '%s' (line %u) matches "
			    "everything it matches and has 'stop'",
			    r->line, r->name, e->name, e->line);
			return RUF_E_POLICY;
		}
	}
	if (p->n == p->cap) {
		size_t cap = p->cap == 0 ? 8 : p->cap * 2;
		struct rule *nr = realloc(p->rules, cap * sizeof(*nr));
		if (nr == NULL)
			return RUF_E_NOMEM;
		p->rules = nr;
		p->cap = cap;
	}
	p->rules[p->n++] = *r;
	memset(r, 0, sizeof(*r));
	p->n_values += values;
	p->n_expansions += expansions;
	return 0;
}

static bool
name_taken(const ruf_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->rules[i].name, name) == 0)
			return true;
	}
	return false;
}

/* ---- text compiler ---------------------------------------------------- */

enum keyword { K_KIND, K_SITUATION, K_COUNTRY, K_REGION, K_RISK, K_FLAGS, K_TO, K_STOP, K_N };

static const char *const keyword_names[K_N] = {"kind", "situation", "country", "region",
                                               "risk", "flags",     "to",      "stop"};

#define MAX_TOKENS (RUF_POLICY_LINE_MAX / 2 + 1)

struct compiler {
	ruf_policy *p;
	ruf_diag *d;
	unsigned line;
	bool in_rule;
	unsigned seen; /* (1 << keyword) given in the current rule */
	struct rule cur;
	char buf[RUF_POLICY_LINE_MAX + 1];
	char *tok[MAX_TOKENS];
	size_t ntok;
};

static int
copy_list(struct compiler *c, char **vals, size_t n, const char *what, struct strlist *out)
{
	if ((out->v = calloc(n, sizeof(*out->v))) == NULL)
		return RUF_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((out->v[i] = strdup(vals[i])) == NULL) {
			strlist_free(out);
			return RUF_E_NOMEM;
		}
		out->n++;
	}
	qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	for (size_t i = 1; i < out->n; i++) {
		if (strcmp(out->v[i - 1], out->v[i]) == 0) {
			ruf_diag_set(c->d, "line %u: duplicate value '%s' in '%s'", c->line,
			             out->v[i], what);
			strlist_free(out);
			return RUF_E_POLICY;
		}
	}
	return 0;
}

/* Parses the enum values of a kind/risk/flags line into a bit mask. */
static int
parse_mask(struct compiler *c, enum keyword k, uint32_t *mask)
{
	const char *what = k == K_KIND ? "kind" : k == K_RISK ? "risk" : "flag";
	const char *expect = k == K_KIND   ? "sitrep, surge or reply"
	                     : k == K_RISK ? "low, elevated, high or ongoing"
	                                   : "violations, casualties, escalation or early-warning";

	*mask = 0;
	for (size_t i = 1; i < c->ntok; i++) {
		const char *v = c->tok[i];
		uint32_t bit;

		/* The parse functions return 0 for unknown names. */
		if (k == K_KIND)
			bit = ruf_kind_parse(v) != 0 ? 1u << ruf_kind_parse(v) : 0;
		else if (k == K_RISK)
			bit = ruf_risk_parse(v) != 0 ? 1u << ruf_risk_parse(v) : 0;
		else
			bit = ruf_flag_parse(v);
		if (bit == 0) {
			ruf_diag_set(c->d, "line %u: unknown %s '%.64s' (expected %s)", c->line,
			             what, v, expect);
			return RUF_E_POLICY;
		}
		if (*mask & bit) {
			ruf_diag_set(c->d, "line %u: duplicate value '%s' in '%s'", c->line, v,
			             keyword_names[k]);
			return RUF_E_POLICY;
		}
		*mask |= bit;
	}
	return 0;
}

static int
compile_condition(struct compiler *c, enum keyword k)
{
	struct rule *r = &c->cur;
	uint32_t mask;
	int rc;

	if (k == K_STOP) {
		if (c->ntok != 1) {
			ruf_diag_set(c->d, "line %u: 'stop' takes no values", c->line);
			return RUF_E_POLICY;
		}
		r->stop = true;
		return 0;
	}
	if (c->ntok < 2) {
		ruf_diag_set(c->d, "line %u: '%s' needs at least one value", c->line,
		             keyword_names[k]);
		return RUF_E_POLICY;
	}
	switch (k) {
	case K_KIND:
	case K_RISK:
	case K_FLAGS:
		if ((rc = parse_mask(c, k, &mask)) != 0)
			return rc;
		if (k == K_KIND)
			r->kinds = mask;
		else if (k == K_RISK)
			r->risks = mask;
		else
			r->flags_any = mask;
		return 0;
	case K_SITUATION:
	case K_COUNTRY:
	case K_REGION:
		for (size_t i = 1; i < c->ntok; i++) {
			if (!ruf_is_ident(c->tok[i])) {
				ruf_diag_set(c->d,
				             "line %u: '%.64s' is not a valid %s (1 to %u bytes of "
				             "a-z, 0-9 and '-', not starting with '-')",
				             c->line, c->tok[i], keyword_names[k], RUF_IDENT_MAX);
				return RUF_E_POLICY;
			}
		}
		return copy_list(c, c->tok + 1, c->ntok - 1, keyword_names[k],
		                 &r->f[k - K_SITUATION]);
	case K_TO:
		if (c->ntok - 1 > RUF_ROUTE_MAX_QUEUES) {
			ruf_diag_set(c->d, "line %u: more than %u queues in 'to'", c->line,
			             RUF_ROUTE_MAX_QUEUES);
			return RUF_E_POLICY;
		}
		for (size_t i = 1; i < c->ntok; i++) {
			const char *why;
			unsigned vars;

			if ((why = tmpl_scan(c->tok[i], &vars)) != NULL) {
				ruf_diag_set(c->d, "line %u: queue '%.64s' %s", c->line, c->tok[i],
				             why);
				return RUF_E_POLICY;
			}
			/* Templates are checked once the rule is complete. */
			if (vars == 0 && !ruf_is_queue_name(c->tok[i])) {
				ruf_diag_set(c->d, "line %u: '%.64s' is not a valid queue name",
				             c->line, c->tok[i]);
				return RUF_E_POLICY;
			}
		}
		r->to_line = c->line;
		return copy_list(c, c->tok + 1, c->ntok - 1, "to", &r->queues);
	default:
		return RUF_E_POLICY;
	}
}

static int
end_rule(struct compiler *c)
{
	int rc;

	if (!c->in_rule)
		return 0;
	if ((rc = rule_finish(c->p, &c->cur, c->d)) != 0)
		return rc;
	c->in_rule = false;
	return 0;
}

static int
compile_line(struct compiler *c)
{
	const char *kw = c->tok[0];
	int rc;

	if (strcmp(kw, "rule") == 0) {
		if ((rc = end_rule(c)) != 0)
			return rc;
		if (c->ntok != 2) {
			ruf_diag_set(c->d, "line %u: 'rule' takes exactly one name", c->line);
			return RUF_E_POLICY;
		}
		if (!ruf_is_ident(c->tok[1])) {
			ruf_diag_set(c->d,
			             "line %u: '%.64s' is not a valid rule name (1 to %u bytes of "
			             "a-z, 0-9 and '-', not starting with '-')",
			             c->line, c->tok[1], RUF_IDENT_MAX);
			return RUF_E_POLICY;
		}
		if (name_taken(c->p, c->tok[1])) {
			ruf_diag_set(c->d, "line %u: duplicate rule name '%s'", c->line, c->tok[1]);
			return RUF_E_POLICY;
		}
		if (c->p->n >= RUF_POLICY_MAX_RULES) {
			ruf_diag_set(c->d, "line %u: more than %u rules", c->line,
			             RUF_POLICY_MAX_RULES);
			return RUF_E_POLICY;
		}
		if ((c->cur.name = strdup(c->tok[1])) == NULL)
			return RUF_E_NOMEM;
		c->cur.line = c->line;
		c->cur.to_line = c->line;
		c->in_rule = true;
		c->seen = 0;
		return 0;
	}
	if (strcmp(kw, "policy") == 0) {
		ruf_diag_set(c->d, "line %u: 'policy' may only appear once, as the first line",
		             c->line);
		return RUF_E_POLICY;
	}
	for (int k = 0; k < K_N; k++) {
		if (strcmp(kw, keyword_names[k]) != 0)
			continue;
		if (!c->in_rule) {
			ruf_diag_set(c->d,
			             "line %u: '%s' outside a rule (start one with 'rule NAME')",
			             c->line, kw);
			return RUF_E_POLICY;
		}
		if (c->seen & (1u << k)) {
			ruf_diag_set(c->d, "line %u: duplicate '%s' in rule '%s'", c->line, kw,
			             c->cur.name);
			return RUF_E_POLICY;
		}
		c->seen |= 1u << k;
		return compile_condition(c, (enum keyword)k);
	}
	ruf_diag_set(c->d, "line %u: unknown keyword '%.64s'", c->line, kw);
	return RUF_E_POLICY;
}

static int
compile_version(struct compiler *c)
{
	if (strcmp(c->tok[0], "policy") != 0) {
		ruf_diag_set(c->d, "line %u: expected 'policy %d' as the first line", c->line,
		             RUF_POLICY_FORMAT);
		return RUF_E_POLICY;
	}
	if (c->ntok != 2) {
		ruf_diag_set(c->d, "line %u: 'policy' takes exactly one version number", c->line);
		return RUF_E_POLICY;
	}
	if (strcmp(c->tok[1], "1") != 0) {
		ruf_diag_set(c->d, "line %u: unsupported policy format version '%.32s'", c->line,
		             c->tok[1]);
		return RUF_E_POLICY;
	}
	return 0;
}

static void
tokenize(struct compiler *c)
{
	char *s = c->buf, *hash;

	if ((hash = strchr(s, '#')) != NULL)
		*hash = '\0';
	c->ntok = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (*s == '\0')
			return;
		/* A line of at most RUF_POLICY_LINE_MAX bytes has at most MAX_TOKENS tokens. */
		c->tok[c->ntok++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\r')
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
}

int
ruf_policy_compile(const char *text, size_t len, ruf_diag *d, ruf_policy **out)
{
	struct compiler *c;
	bool have_version = false;
	size_t pos = 0;
	int rc;

	*out = NULL;
	if (len > RUF_POLICY_TEXT_MAX) {
		ruf_diag_set(d, "policy text is larger than %u bytes", RUF_POLICY_TEXT_MAX);
		return RUF_E_POLICY;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RUF_E_NOMEM;
	c->d = d;
	if ((c->p = calloc(1, sizeof(*c->p))) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t l = nl != NULL ? (size_t)(nl - s) : len - pos;

		pos += l + (nl != NULL);
		c->line++;
		if (l > RUF_POLICY_LINE_MAX) {
			ruf_diag_set(d, "line %u: longer than %u bytes", c->line,
			             RUF_POLICY_LINE_MAX);
			rc = RUF_E_POLICY;
			goto out;
		}
		if (memchr(s, '\0', l) != NULL) {
			ruf_diag_set(d, "line %u: contains a NUL byte", c->line);
			rc = RUF_E_POLICY;
			goto out;
		}
		memcpy(c->buf, s, l);
		c->buf[l] = '\0';
		tokenize(c);
		if (c->ntok == 0)
			continue;
		if (!have_version) {
			if ((rc = compile_version(c)) != 0)
				goto out;
			have_version = true;
			continue;
		}
		if ((rc = compile_line(c)) != 0)
			goto out;
	}
	if (!have_version) {
		ruf_diag_set(d, "line 1: missing 'policy %d' version line", RUF_POLICY_FORMAT);
		rc = RUF_E_POLICY;
		goto out;
	}
	if ((rc = end_rule(c)) != 0)
		goto out;
	*out = c->p;
	c->p = NULL;
out:
	rule_free(&c->cur);
	ruf_policy_free(c->p);
	free(c);
	return rc;
}

/* ---- compiled form ---------------------------------------------------- */

struct enc_rule {
	Ruf__PolicyRule m;
	uint32_t kinds[KIND_MAX];
	uint32_t risks[RISK_MAX];
};

int
ruf_policy_encode(const ruf_policy *p, uint8_t **out, size_t *len)
{
	Ruf__Policy m = RUF__POLICY__INIT;
	struct enc_rule *er = NULL;
	Ruf__PolicyRule **ptrs = NULL;
	int rc = RUF_E_NOMEM;

	*out = NULL;
	*len = 0;
	if (p->n > 0) {
		if ((er = calloc(p->n, sizeof(*er))) == NULL ||
		    (ptrs = calloc(p->n, sizeof(*ptrs))) == NULL)
			goto out;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct rule *r = &p->rules[i];
		Ruf__PolicyRule *pr = &er[i].m;

		ruf__policy_rule__init(pr);
		pr->name = r->name;
		for (unsigned k = 1; k <= KIND_MAX; k++) {
			if (r->kinds & (1u << k))
				er[i].kinds[pr->n_kinds++] = k;
		}
		pr->kinds = er[i].kinds;
		for (unsigned k = 1; k <= RISK_MAX; k++) {
			if (r->risks & (1u << k))
				er[i].risks[pr->n_risks++] = k;
		}
		pr->risks = er[i].risks;
		pr->n_situations = r->f[F_SITUATION].n;
		pr->situations = r->f[F_SITUATION].v;
		pr->n_countries = r->f[F_COUNTRY].n;
		pr->countries = r->f[F_COUNTRY].v;
		pr->n_regions = r->f[F_REGION].n;
		pr->regions = r->f[F_REGION].v;
		pr->flags_any = r->flags_any;
		pr->n_queues = r->queues.n;
		pr->queues = r->queues.v;
		pr->stop = r->stop;
		pr->line = r->line;
		ptrs[i] = pr;
	}
	m.format = RUF_POLICY_FORMAT;
	m.n_rules = p->n;
	m.rules = ptrs;
	rc = ruf_pb_encode(&m.base, out, len);
out:
	free(ptrs);
	free(er);
	return rc;
}

/* Copies a decoded string list, which must be identifiers in strictly ascending order. */
static int
decode_strlist(char **v, size_t n, bool idents, struct strlist *out)
{
	for (size_t i = 0; i < n; i++) {
		if (idents ? !ruf_is_ident(v[i]) : v[i][0] == '\0')
			return RUF_E_POLICY;
		if (i > 0 && strcmp(v[i - 1], v[i]) >= 0)
			return RUF_E_POLICY;
	}
	if (n == 0)
		return 0;
	if ((out->v = calloc(n, sizeof(*out->v))) == NULL)
		return RUF_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((out->v[i] = strdup(v[i])) == NULL)
			return RUF_E_NOMEM; /* the caller frees the partial list */
		out->n++;
	}
	return 0;
}

/* Values strictly ascending within 1..max into a mask. */
static int
decode_mask(const uint32_t *v, size_t n, uint32_t max, unsigned *mask)
{
	*mask = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < 1 || v[i] > max || (i > 0 && v[i - 1] >= v[i]))
			return RUF_E_POLICY;
		*mask |= 1u << v[i];
	}
	return 0;
}

static int
decode_rule(ruf_policy *p, const Ruf__PolicyRule *pr, unsigned prev_line, ruf_diag *d)
{
	struct rule r = {0};
	char **lists[F_N] = {pr->situations, pr->countries, pr->regions};
	size_t ns[F_N] = {pr->n_situations, pr->n_countries, pr->n_regions};
	int rc = RUF_E_POLICY;

	if (!ruf_is_ident(pr->name) || name_taken(p, pr->name))
		goto out;
	if (pr->line <= prev_line)
		goto out;
	if (pr->n_queues > RUF_ROUTE_MAX_QUEUES)
		goto out;
	if (decode_mask(pr->kinds, pr->n_kinds, KIND_MAX, &r.kinds) != 0 ||
	    decode_mask(pr->risks, pr->n_risks, RISK_MAX, &r.risks) != 0)
		goto out;
	if ((pr->flags_any & ~RUF_FLAGS_ALL) != 0)
		goto out;
	r.flags_any = pr->flags_any;
	r.stop = pr->stop;
	r.line = r.to_line = pr->line;
	if ((r.name = strdup(pr->name)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	for (int f = 0; f < F_N; f++) {
		if ((rc = decode_strlist(lists[f], ns[f], true, &r.f[f])) != 0)
			goto out;
	}
	if ((rc = decode_strlist(pr->queues, pr->n_queues, false, &r.queues)) != 0)
		goto out;
	rc = rule_finish(p, &r, d);
out:
	rule_free(&r);
	return rc;
}

int
ruf_policy_decode(const uint8_t *buf, size_t len, ruf_policy **out)
{
	ProtobufCMessage *msg = NULL;
	const Ruf__Policy *m;
	ruf_policy *p = NULL;
	int rc;

	*out = NULL;
	if ((rc = ruf_pb_decode(&ruf__policy__descriptor, buf, len, RUF_POLICY_COMPILED_MAX,
	                        &msg)) != 0)
		return rc;
	m = (const Ruf__Policy *)msg;
	rc = RUF_E_POLICY;
	if (m->format != RUF_POLICY_FORMAT || m->n_rules > RUF_POLICY_MAX_RULES)
		goto out;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->n_rules; i++) {
		unsigned prev = i == 0 ? 0 : p->rules[i - 1].line;
		if ((rc = decode_rule(p, m->rules[i], prev, NULL)) != 0)
			goto out;
	}
	*out = p;
	p = NULL;
	rc = 0;
out:
	ruf_policy_free(p);
	protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

/* ---- evaluation ------------------------------------------------------- */

static bool
header_str_ok(const char *s)
{
	return s == NULL || s[0] == '\0' || ruf_is_ident(s);
}

/* Adds q to the sorted set; RUF_E_TOO_LARGE when it would exceed the maximum. */
static int
set_add(struct ruf_queue_set *set, const char *q)
{
	size_t i = 0;
	int c = 1;

	while (i < set->n && (c = strcmp(set->names[i], q)) < 0)
		i++;
	if (i < set->n && c == 0)
		return 0;
	if (set->n == RUF_ROUTE_MAX_QUEUES)
		return RUF_E_TOO_LARGE;
	memmove(set->names[i + 1], set->names[i], (set->n - i) * sizeof(set->names[0]));
	memcpy(set->names[i], q, strlen(q) + 1);
	set->n++;
	return 0;
}

static bool
rule_matches(const struct rule *r, const struct ruf_route_header *h, const char *const vals[F_N])
{
	if (r->kinds != 0 && !(r->kinds & (1u << h->kind)))
		return false;
	if (r->risks != 0 && !(r->risks & (1u << h->risk)))
		return false;
	if (r->flags_any != 0 && !(r->flags_any & h->flags))
		return false;
	for (int f = 0; f < F_N; f++) {
		if (r->f[f].n != 0 && !strlist_has(&r->f[f], vals[f]))
			return false;
	}
	return true;
}

int
ruf_route_eval(const ruf_policy *p, const struct ruf_route_header *h, struct ruf_queue_set *out)
{
	const char *vals[F_N];
	char q[RUF_QUEUE_NAME_MAX + 1];
	int rc;

	out->n = 0;
	if (h->kind < 1 || h->kind > KIND_MAX || h->risk < 0 || h->risk > RISK_MAX ||
	    (h->flags & ~RUF_FLAGS_ALL) != 0 || !header_str_ok(h->situation) ||
	    !header_str_ok(h->country) || !header_str_ok(h->region))
		return RUF_E_INVAL;
	vals[F_SITUATION] = h->situation != NULL ? h->situation : "";
	vals[F_COUNTRY] = h->country != NULL ? h->country : "";
	vals[F_REGION] = h->region != NULL ? h->region : "";
	for (size_t i = 0; i < p->n; i++) {
		const struct rule *r = &p->rules[i];

		if (!rule_matches(r, h, vals))
			continue;
		for (size_t j = 0; j < r->queues.n; j++) {
			const char *t = r->queues.v[j];

			/* A matched rule's variables hold values from its own lists,
			 * whose expansions rule_finish checked: expansion cannot fail. */
			if (strchr(t, '$') != NULL) {
				if (!tmpl_expand(t, vals, q, sizeof(q))) {
					out->n = 0;
					return RUF_E_POLICY;
				}
				t = q;
			}
			if ((rc = set_add(out, t)) != 0) {
				out->n = 0;
				return rc;
			}
		}
		if (r->stop)
			break;
	}
	if (out->n == 0)
		memcpy(out->names[0], "triage", sizeof("triage"));
	if (out->n == 0)
		out->n = 1;
	return 0;
}

/* ---- listing ---------------------------------------------------------- */

struct qent {
	char name[RUF_QUEUE_NAME_MAX + 1];
	unsigned line;
};

struct collect {
	struct qent *v;
	size_t n;
	unsigned line;
};

static int
collect_one(const char *q, bool fits, void *vctx)
{
	struct collect *c = vctx;

	(void)fits; /* checked when the rule was finished */
	memcpy(c->v[c->n].name, q, strlen(q) + 1);
	c->v[c->n++].line = c->line;
	return 0;
}

static int
cmp_qent(const void *a, const void *b)
{
	const struct qent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

int
ruf_policy_queues(const ruf_policy *p, int (*each)(const char *queue, unsigned line, void *ctx),
                  void *ctx)
{
	struct collect c = {0};
	int rc = 0;

	/* n_expansions counts every template expansion; + 1 for triage. */
	if ((c.v = calloc(p->n_expansions + 1, sizeof(*c.v))) == NULL)
		return RUF_E_NOMEM;
	for (size_t i = 0; i < p->n; i++) {
		const struct rule *r = &p->rules[i];

		c.line = r->line;
		for (size_t j = 0; j < r->queues.n; j++) {
			unsigned vars;
			if (tmpl_scan(r->queues.v[j], &vars) != NULL) {
				rc = RUF_E_POLICY; /* rule_finish checked it */
				goto out;
			}
			if ((rc = tmpl_each(r, r->queues.v[j], vars, collect_one, &c)) != 0)
				goto out;
		}
	}
	/* Sorts after any rule naming triage, so that rule's line is reported. */
	memcpy(c.v[c.n].name, "triage", sizeof("triage"));
	c.v[c.n++].line = UINT_MAX;
	qsort(c.v, c.n, sizeof(*c.v), cmp_qent);
	for (size_t i = 0; i < c.n; i++) {
		if (i > 0 && strcmp(c.v[i - 1].name, c.v[i].name) == 0)
			continue;
		if ((rc = each(c.v[i].name, c.v[i].line == UINT_MAX ? 0 : c.v[i].line, ctx)) != 0)
			goto out;
	}
out:
	free(c.v);
	return rc;
}

static void
describe_list(FILE *fp, const char *kw, char *const *v, size_t n)
{
	if (n == 0)
		return;
	fprintf(fp, "\t%s", kw);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, " %s", v[i]);
	fputc('\n', fp);
}

static void
describe_mask(FILE *fp, const char *kw, uint32_t mask, const char *(*name)(int), unsigned lo,
              unsigned hi)
{
	if (mask == 0)
		return;
	fprintf(fp, "\t%s", kw);
	for (unsigned b = lo; b <= hi; b++) {
		if (mask & (1u << b))
			fprintf(fp, " %s", name((int)b));
	}
	fputc('\n', fp);
}

static const char *
flag_name_by_bit(int bit)
{
	return ruf_flag_name(1u << bit);
}

static int
describe_queue(const char *q, unsigned line, void *ctx)
{
	if (line == 0)
		fprintf(ctx, "#   %s (when no rule matches)\n", q);
	else
		fprintf(ctx, "#   %s (first named by the rule at line %u)\n", q, line);
	return 0;
}

int
ruf_policy_describe(const ruf_policy *p, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;
	int rc;

	*out = NULL;
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return RUF_E_NOMEM;
	fprintf(fp, "policy %d # %zu rule%s\n", RUF_POLICY_FORMAT, p->n, p->n == 1 ? "" : "s");
	for (size_t i = 0; i < p->n; i++) {
		const struct rule *r = &p->rules[i];

		fprintf(fp, "\nrule %s # line %u\n", r->name, r->line);
		describe_mask(fp, "kind", r->kinds, ruf_kind_name, 1, KIND_MAX);
		describe_list(fp, "situation", r->f[F_SITUATION].v, r->f[F_SITUATION].n);
		describe_list(fp, "country", r->f[F_COUNTRY].v, r->f[F_COUNTRY].n);
		describe_list(fp, "region", r->f[F_REGION].v, r->f[F_REGION].n);
		describe_mask(fp, "risk", r->risks, ruf_risk_name, 1, RISK_MAX);
		describe_mask(fp, "flags", r->flags_any, flag_name_by_bit, 0, 3);
		describe_list(fp, "to", r->queues.v, r->queues.n);
		if (r->stop)
			fputs("\tstop\n", fp);
	}
	fputs("\n# Queues this policy can route to:\n", fp);
	rc = ruf_policy_queues(p, describe_queue, fp);
	if (fclose(fp) != 0 && rc == 0)
		rc = RUF_E_NOMEM;
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}
