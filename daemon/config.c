/*
 * config.c - the option table and the parser (see config.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util.h"

enum opt_type {
	OPT_PATH,      /* non-empty string without control characters */
	OPT_SIZE,      /* bytes, with an optional k/m/g/t suffix (powers of 1024) */
	OPT_UINT,      /* plain decimal number */
	OPT_DURATION,  /* ruf_parse_duration: "90", "30s", "5m", "12h", "7d" */
	OPT_ADDR,      /* host:port, repeatable (listen) */
	OPT_LOCALADDR, /* host:port on loopback, or "" (off) */
	OPT_WORD       /* a string that valid() accepts */
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *def; /* parsed like a value from the file; NULL = none */
	uint64_t min, max;
	const char *help;
	bool (*valid)(const char *v); /* OPT_WORD */
	const char *what;             /* OPT_WORD: what valid() wants, for the message */
};

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)
#define F(m) offsetof(struct rufd_config, m)

static bool
valid_backend(const char *v)
{
	return strcmp(v, "lmdb") == 0 || strcmp(v, "jetstream") == 0;
}

/* Stream names: JetStream allows more, but these survive every subject and file name. */
static bool
valid_prefix(const char *v)
{
	size_t n = strlen(v);

	if (n < 1 || n > 32)
		return false;
	for (; *v; v++)
		if (!((*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') || *v == '_'))
			return false;
	return true;
}

/* Comma-separated nats://, tls:// (or bare host:port) URLs, no blanks. */
static bool
valid_servers(const char *v)
{
	if (!*v || strlen(v) > 900)
		return false;
	for (const char *p = v; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '"' || *p == '\'')
			return false;
	return v[0] != ',' && v[strlen(v) - 1] != ',' && !strstr(v, ",,");
}

/* The one table: every option, its default and bounds (Redis's createSizeTConfig). */
static const struct opt opts[] = {
    {"listen", OPT_ADDR, F(listen), NULL, 0, 0,
     "address to accept clients on, repeatable (default 127.0.0.1:7443 and [::1]:7443, "
     "unless sockets come from systemd)"},
    {"state_dir", OPT_PATH, F(state_dir), "/var/lib/rufd", 0, 0, "store, spool of partial uploads"},
    {"server_key", OPT_PATH, F(server_key), "/etc/rufd/server.key", 0, 0,
     "server keystore (unprotected; its kx key is the Noise static key)"},
    {"server_cert", OPT_PATH, F(server_cert), "/etc/rufd/server.cert", 0, 0,
     "server certificate (signs receipts)"},
    {"root_cert", OPT_PATH, F(root_cert), "/etc/rufd/root.cert", 0, 0, "HQ root certificate"},
    {"directory", OPT_PATH, F(directory), "/etc/rufd/directory", 0, 0,
     "signed directory (queues, policy, revocations)"},
    {"map_size", OPT_SIZE, F(map_size), "1g", 1 * MiB, 1 * TiB, "LMDB map size"},
    {"max_connections", OPT_UINT, F(max_connections), "1024", 1, 100000,
     "connections at once; more are refused"},
    {"max_conn_buffer", OPT_SIZE, F(max_conn_buffer), "1m", 128 * KiB, 64 * MiB,
     "bytes queued for one connection before rufd stops reading from it"},
    {"handshake_timeout", OPT_DURATION, F(handshake_timeout), "10s", 1, 300,
     "seconds to complete the handshake"},
    {"idle_timeout", OPT_DURATION, F(idle_timeout), "5m", 5, 86400,
     "seconds without a frame before closing"},
    {"max_envelope", OPT_SIZE, F(max_envelope), "64m", 64 * KiB, 4 * GiB,
     "largest envelope accepted"},
    {"submissions_per_minute", OPT_UINT, F(submissions_per_minute), "30", 1, 100000,
     "offers per device per minute"},
    {"partial_expiry", OPT_DURATION, F(partial_expiry), "7d", 60, 90 * 86400,
     "seconds a partial upload is kept"},
    {"clock_skew", OPT_DURATION, F(clock_skew), "10m", 0, 86400,
     "accepted difference between a client's clock and ours"},
    {"metrics_listen", OPT_LOCALADDR, F(metrics_listen), "", 0, 0,
     "loopback address for Prometheus metrics; empty = off"},
    {"delivery_window", OPT_UINT, F(delivery_window), "16", 1, 1024,
     "unacknowledged deliveries per desk connection"},
    {"store_backend", OPT_WORD, F(store_backend), "lmdb", 0, 0,
     "lmdb (embedded, one instance) or jetstream (replicated, several instances)", valid_backend,
     "lmdb or jetstream"},
    {"jetstream_servers", OPT_WORD, F(jetstream_servers), NULL, 0, 0,
     "jetstream: NATS servers, comma-separated nats:// or tls:// URLs", valid_servers,
     "comma-separated URLs without blanks"},
    {"jetstream_prefix", OPT_WORD, F(jetstream_prefix), RUF_STORE_DEFAULT_PREFIX, 0, 0,
     "jetstream: stream name prefix, the same on every instance", valid_prefix,
     "1..32 of A-Z 0-9 _"},
    {"jetstream_replicas", OPT_UINT, F(jetstream_replicas), "3", 1, 5,
     "jetstream: copies of every stream (an ack needs a majority of them)"},
    {"jetstream_creds", OPT_PATH, F(jetstream_creds), NULL, 0, 0,
     "jetstream: NATS credentials file, or credential:NAME (systemd)"},
    {"jetstream_tls_ca", OPT_PATH, F(jetstream_tls_ca), NULL, 0, 0,
     "jetstream: CA certificate for tls:// servers"},
    {"jetstream_timeout_ms", OPT_UINT, F(jetstream_timeout_ms), "5000", 100, 600000,
     "jetstream: wait for the cluster's answer, milliseconds"},
};

static const struct opt *
opt_find(const char *name)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/* Strict decimal: digits only, no sign, no overflow. */
static int
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return RUF_E_FORMAT;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return RUF_E_FORMAT;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return RUF_E_FORMAT;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int
parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	uint64_t mul = 1, v;

	if (n == 0 || n >= sizeof(num))
		return RUF_E_FORMAT;
	memcpy(num, s, n + 1);
	switch (tolower((unsigned char)num[n - 1])) {
	case 'k':
		mul = KiB;
		break;
	case 'm':
		mul = MiB;
		break;
	case 'g':
		mul = GiB;
		break;
	case 't':
		mul = TiB;
		break;
	default:
		break;
	}
	if (mul != 1)
		num[n - 1] = '\0';
	if (parse_u64(num, &v) != 0 || v > UINT64_MAX / mul)
		return RUF_E_FORMAT;
	*out = v * mul;
	return 0;
}

int
rufd_addr_parse(const char *s, struct rufd_addr *out)
{
	char host[64];
	const char *colon, *h;
	size_t hlen;
	uint64_t port;

	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(out->text))
		return RUF_E_FORMAT;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return RUF_E_FORMAT;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return RUF_E_FORMAT;
		h = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return RUF_E_FORMAT;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (parse_u64(colon + 1, &port) != 0 || port < 1 || port > 65535)
		return RUF_E_FORMAT;
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->sa;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return RUF_E_FORMAT;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&out->sa;
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return RUF_E_FORMAT;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
	}
	memcpy(out->text, s, strlen(s) + 1);
	return 0;
}

int
rufd_addr_is_loopback(const struct rufd_addr *a)
{
	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)&a->sa;
		return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&a->sa;
		return IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
	}
	return 0;
}

/* Sets one option from its text value; on error writes why into why. */
static int
opt_set(const struct opt *o, const char *val, struct rufd_config *cfg, char *why, size_t whylen)
{
	char *base = (char *)cfg + o->off;
	uint64_t v = 0;
	int rc;

	switch (o->type) {
	case OPT_WORD:
		if (!o->valid(val)) {
			snprintf(why, whylen, "%s: '%.80s' is not %s", o->name, val, o->what);
			return RUF_E_FORMAT;
		}
		__attribute__((fallthrough)); /* stored like a path */
	case OPT_PATH: {
		char **slot = (char **)(void *)base;
		char *dup;
		if (!*val) {
			snprintf(why, whylen, "%s needs a value", o->name);
			return RUF_E_FORMAT;
		}
		if (!(dup = strdup(val)))
			return RUF_E_NOMEM;
		free(*slot);
		*slot = dup;
		return 0;
	}
	case OPT_ADDR:
		if (cfg->n_listen >= RUFD_MAX_LISTEN) {
			snprintf(why, whylen, "more than %d listen addresses", RUFD_MAX_LISTEN);
			return RUF_E_FORMAT;
		}
		if (rufd_addr_parse(val, &cfg->listen[cfg->n_listen]) != 0) {
			snprintf(
			    why, whylen,
			    "%s: '%.80s' is not IPv4:port or [IPv6]:port with a numeric address",
			    o->name, val);
			return RUF_E_FORMAT;
		}
		cfg->n_listen++;
		return 0;
	case OPT_LOCALADDR: {
		struct rufd_addr *a = (struct rufd_addr *)(void *)base;
		if (!*val) {
			memset(a, 0, sizeof(*a));
			return 0;
		}
		if (rufd_addr_parse(val, a) != 0) {
			snprintf(why, whylen, "%s: '%.80s' is not IPv4:port or [IPv6]:port",
			         o->name, val);
			return RUF_E_FORMAT;
		}
		if (!rufd_addr_is_loopback(a)) {
			snprintf(why, whylen, "%s: '%.80s' is not a loopback address", o->name,
			         val);
			memset(a, 0, sizeof(*a));
			return RUF_E_FORMAT;
		}
		return 0;
	}
	case OPT_SIZE:
		rc = parse_size(val, &v);
		break;
	case OPT_UINT:
		rc = parse_u64(val, &v);
		break;
	case OPT_DURATION:
		rc = ruf_parse_duration(val, &v) == 0 ? 0 : RUF_E_FORMAT;
		break;
	default:
		abort();
	}
	if (rc != 0) {
		snprintf(why, whylen, "%s: '%.80s' is not a %s", o->name, val,
		         o->type == OPT_SIZE       ? "size (like 65536, 64k, 16m, 1g)"
		         : o->type == OPT_DURATION ? "duration (like 90, 30s, 5m, 12h, 7d)"
		                                   : "number");
		return RUF_E_FORMAT;
	}
	if (v < o->min || v > o->max) {
		snprintf(why, whylen, "%s: %s is outside %llu..%llu", o->name, val,
		         (unsigned long long)o->min, (unsigned long long)o->max);
		return RUF_E_FORMAT;
	}
	*(uint64_t *)(void *)base = v;
	return 0;
}

void
rufd_config_free(struct rufd_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (opts[i].type == OPT_PATH || opts[i].type == OPT_WORD) {
			char **slot = (char **)(void *)((char *)cfg + opts[i].off);
			free(*slot);
			*slot = NULL;
		}
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int
rufd_config_parse(const char *text, size_t len, const char *name, struct rufd_config *cfg,
                  ruf_diag *d)
{
	bool seen[sizeof(opts) / sizeof(opts[0])] = {0};
	char line[1024], why[256];
	size_t pos = 0;
	unsigned lineno = 0, backend_line = 0;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (len > RUFD_CONFIG_MAX) {
		ruf_diag_set(d, "%s: larger than %u bytes", name, RUFD_CONFIG_MAX);
		return RUF_E_TOO_LARGE;
	}
	why[0] = '\0';
	while (pos < len) {
		size_t end = pos, n;
		char *key, *val, *p, *e;
		const struct opt *o;

		while (end < len && text[end] != '\n')
			end++;
		lineno++;
		n = end - pos;
		if (n >= sizeof(line)) {
			snprintf(why, sizeof(why), "line longer than %zu bytes", sizeof(line) - 1);
			rc = RUF_E_FORMAT;
			goto fail;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos = end + 1;
		if (memchr(line, '\0', n)) {
			snprintf(why, sizeof(why), "NUL byte in line");
			rc = RUF_E_FORMAT;
			goto fail;
		}
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		for (p = line; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t') {
				snprintf(why, sizeof(why), "control character in line");
				rc = RUF_E_FORMAT;
				goto fail;
			}
		if ((p = strchr(line, '#')))
			*p = '\0';
		for (key = line; is_blank(*key); key++)
			;
		if (!*key)
			continue;
		if (!(val = strchr(key, '='))) {
			snprintf(why, sizeof(why), "expected 'key = value'");
			rc = RUF_E_FORMAT;
			goto fail;
		}
		for (e = val; e > key && is_blank(e[-1]); e--)
			;
		*e = '\0';
		for (val++; is_blank(*val); val++)
			;
		for (e = val + strlen(val); e > val && is_blank(e[-1]); e--)
			;
		*e = '\0';
		if (!(o = opt_find(key))) {
			snprintf(why, sizeof(why), "unknown option '%.64s'", key);
			rc = RUF_E_FORMAT;
			goto fail;
		}
		if (o->type != OPT_ADDR && seen[o - opts]) {
			snprintf(why, sizeof(why), "%s given twice", o->name);
			rc = RUF_E_FORMAT;
			goto fail;
		}
		seen[o - opts] = true;
		if (strcmp(o->name, "store_backend") == 0)
			backend_line = lineno;
		if ((rc = opt_set(o, val, cfg, why, sizeof(why))) != 0)
			goto fail;
	}
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (seen[i] || !opts[i].def)
			continue;
		if ((rc = opt_set(&opts[i], opts[i].def, cfg, why, sizeof(why))) != 0)
			abort(); /* a default outside its own bounds is a bug */
	}
	if (strcmp(cfg->store_backend, "jetstream") == 0 && !cfg->jetstream_servers) {
		lineno = backend_line;
		snprintf(why, sizeof(why), "store_backend = jetstream needs jetstream_servers");
		rc = RUF_E_FORMAT;
		goto fail;
	}
	return 0;
fail:
	if (rc == RUF_E_NOMEM)
		ruf_diag_set(d, "%s: out of memory", name);
	else
		ruf_diag_set(d, "%s:%u: %s", name, lineno, why);
	rufd_config_free(cfg);
	return rc;
}

int
rufd_config_load(const char *path, struct rufd_config *cfg, ruf_diag *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if ((rc = ruf_file_read(path, RUFD_CONFIG_MAX, &buf, &len)) != 0) {
		ruf_diag_set(d, "%s: %s", path, ruf_strerror(rc));
		return rc;
	}
	rc = rufd_config_parse((const char *)buf, len, path, cfg, d);
	free(buf);
	return rc;
}

void
rufd_config_print_table(FILE *f)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		fprintf(f, "  %-23s %s", o->name, o->help);
		if (o->def && *o->def)
			fprintf(f, " [%s]", o->def);
		if (o->max)
			fprintf(f, " (%llu..%llu)", (unsigned long long)o->min,
			        (unsigned long long)o->max);
		fputc('\n', f);
	}
}

void
rufd_config_store_opts(const struct rufd_config *cfg, struct ruf_store_opts *so)
{
	memset(so, 0, sizeof(*so));
	so->map_size = cfg->map_size;
	/* jetstream: the streams on the cluster are the truth, the path a local view. */
	so->servers = cfg->jetstream_servers;
	so->prefix = cfg->jetstream_prefix;
	so->replicas = (unsigned)cfg->jetstream_replicas;
	so->creds = cfg->jetstream_creds;
	so->tls_ca = cfg->jetstream_tls_ca;
	so->timeout_ms = (unsigned)cfg->jetstream_timeout_ms;
}
