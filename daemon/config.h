/*
 * config.h - rufd's configuration file.
 *
 * Lines "key = value"; '#' starts a comment (whole line or after a value);
 * blank lines are ignored. Every option is in one table (config.c) with its
 * type, default and bounds; `listen` may be repeated, every other option
 * given at most once. An unknown key, a repeated key, a malformed value or
 * one outside its bounds is an error naming the line.
 */
#ifndef RUFD_CONFIG_H
#define RUFD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "err.h"

#define RUFD_MAX_LISTEN 16
#define RUFD_CONFIG_MAX (256u << 10) /* bytes of config file */

struct rufd_addr {
	char text[80]; /* as written: "127.0.0.1:7443", "[::]:7443" */
	struct sockaddr_storage sa;
};

struct rufd_config {
	struct rufd_addr listen[RUFD_MAX_LISTEN];
	size_t n_listen;
	char *state_dir;
	char *server_key;
	char *server_cert;
	char *root_cert;
	char *directory;
	uint64_t map_size;               /* bytes */
	uint64_t max_connections;        /* sessions at once, authenticated or not */
	uint64_t max_conn_buffer;        /* bytes queued for writing per connection */
	uint64_t handshake_timeout;      /* seconds */
	uint64_t idle_timeout;           /* seconds */
	uint64_t max_envelope;           /* bytes */
	uint64_t submissions_per_minute; /* per device */
	uint64_t partial_expiry;         /* seconds */
	uint64_t clock_skew;             /* seconds */
	struct rufd_addr metrics_listen; /* text "" = disabled */
	uint64_t delivery_window;        /* unacked deliveries per connection */
	/* store backend: "lmdb" (embedded) or "jetstream" (replicated, several instances) */
	char *store_backend;
	char *jetstream_servers; /* comma-separated nats:// or tls:// URLs */
	char *jetstream_prefix;  /* stream name prefix */
	uint64_t jetstream_replicas;
	char *jetstream_creds;  /* NATS credentials file (or a systemd credential), or NULL */
	char *jetstream_tls_ca; /* CA for tls:// servers, or NULL */
	uint64_t jetstream_timeout_ms;
};

/*
 * Parses a configuration held in text (len bytes, need not be
 * NUL-terminated). name is used in messages ("rufd.conf"). Unset options get
 * their defaults. Returns 0, or RUF_E_FORMAT with "name:LINE: what" in d,
 * RUF_E_TOO_LARGE beyond RUFD_CONFIG_MAX, RUF_E_NOMEM. On success the caller
 * frees *cfg's contents with rufd_config_free(); on error nothing is left
 * to free.
 */
int rufd_config_parse(const char *text, size_t len, const char *name, struct rufd_config *cfg,
                      ruf_diag *d) __attribute__((warn_unused_result));

/* Reads path (bounded) and parses it; errors as rufd_config_parse(). */
int rufd_config_load(const char *path, struct rufd_config *cfg, ruf_diag *d)
    __attribute__((warn_unused_result));

/*
 * Parses "host:port" with a numeric IPv4 address or an IPv6 address in
 * brackets ("[::1]:7443"), port 1..65535. 0 or RUF_E_FORMAT.
 */
int rufd_addr_parse(const char *s, struct rufd_addr *out);

/* True if a is a loopback address (127.0.0.0/8 or ::1). */
int rufd_addr_is_loopback(const struct rufd_addr *a);

/* Frees the strings held by cfg (not cfg itself). Accepts NULL. */
void rufd_config_free(struct rufd_config *cfg);

struct ruf_store_opts;
/*
 * Fills *so from cfg (map size, the jetstream_* options; pointers into cfg,
 * valid while cfg is) for ruf_store_open(cfg->store_backend, ...).
 */
void rufd_config_store_opts(const struct rufd_config *cfg, struct ruf_store_opts *so);

/* Writes the option table (name, default, bounds, meaning) to f: `rufd -h`. */
void rufd_config_print_table(FILE *f);

#endif
