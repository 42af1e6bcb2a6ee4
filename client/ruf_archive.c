/*
 * ruf_archive.c - the local archive of received envelopes (archive.h,
 * docs/DESK.md): envelopes kept as received, one encrypted msgpack index
 * record per message, and the quarantine.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "archive.h"
#include "util.h"

/* Domain of the index key derivation and the index AEAD's associated data. */
#define DOM_IDX "ruf-desk-index-v1"
#define IDX_MAGIC "RUFIDX1\n"
#define IDX_MAGIC_LEN 8
#define IDX_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define IDX_ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* Elements of the record array (format 1). */
#define REC_FIELDS 25    /* format 2 */
#define REC_FIELDS_V1 24 /* format 1: no accepted */

struct ruf_archive {
	char dir[PATH_MAX];  /* <home>/archive */
	char qdir[PATH_MAX]; /* <home>/quarantine */
	uint8_t *key;        /* sodium_malloc'ed index key */
};

/* A path; truncation leaves an empty string, which every later file call refuses. */
static void __attribute__((format(printf, 3, 4))) pathf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= n)
		out[0] = '\0';
}

/* ---- msgpack (the subset the record uses) ---- */

struct mp_w {
	uint8_t *p;
	size_t cap, n;
	int err;
};

static void
mp_put(struct mp_w *w, const void *b, size_t n)
{
	if (w->err || w->cap - w->n < n) {
		w->err = RUF_E_TOO_LARGE;
		return;
	}
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

static void
mp_be(struct mp_w *w, uint8_t tag, uint64_t v, int bytes)
{
	uint8_t b[9];
	b[0] = tag;
	for (int i = 0; i < bytes; i++)
		b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	mp_put(w, b, (size_t)bytes + 1);
}

static void
mp_uint(struct mp_w *w, uint64_t v)
{
	if (v < 128) {
		uint8_t b = (uint8_t)v;
		mp_put(w, &b, 1);
	} else if (v <= 0xff)
		mp_be(w, 0xcc, v, 1);
	else if (v <= 0xffff)
		mp_be(w, 0xcd, v, 2);
	else if (v <= 0xffffffffu)
		mp_be(w, 0xce, v, 4);
	else
		mp_be(w, 0xcf, v, 8);
}

static void
mp_str(struct mp_w *w, const char *s)
{
	size_t n = strlen(s);
	if (n < 32) {
		uint8_t b = (uint8_t)(0xa0 | n);
		mp_put(w, &b, 1);
	} else if (n <= 0xff)
		mp_be(w, 0xd9, n, 1);
	else
		mp_be(w, 0xda, n, 2);
	mp_put(w, s, n);
}

static void
mp_bin(struct mp_w *w, const uint8_t *b, size_t n)
{
	mp_be(w, 0xc4, n, 1);
	mp_put(w, b, n);
}

static void
mp_array(struct mp_w *w, size_t n)
{
	if (n < 16) {
		uint8_t b = (uint8_t)(0x90 | n);
		mp_put(w, &b, 1);
	} else
		mp_be(w, 0xdc, n, 2);
}

struct mp_r {
	const uint8_t *p;
	size_t n, off;
};

static int
mp_take(struct mp_r *r, size_t n, const uint8_t **out)
{
	if (r->n - r->off < n)
		return RUF_E_TRUNCATED;
	*out = r->p + r->off;
	r->off += n;
	return 0;
}

static int
mp_rbe(struct mp_r *r, int bytes, uint64_t *v)
{
	const uint8_t *b;
	if (mp_take(r, (size_t)bytes, &b) != 0)
		return RUF_E_TRUNCATED;
	*v = 0;
	for (int i = 0; i < bytes; i++)
		*v = *v << 8 | b[i];
	return 0;
}

static int
mp_ruint(struct mp_r *r, uint64_t *v)
{
	const uint8_t *t;
	if (mp_take(r, 1, &t) != 0)
		return RUF_E_FORMAT;
	if (*t < 0x80) {
		*v = *t;
		return 0;
	}
	switch (*t) {
	case 0xcc:
		return mp_rbe(r, 1, v) ? RUF_E_FORMAT : 0;
	case 0xcd:
		return mp_rbe(r, 2, v) ? RUF_E_FORMAT : 0;
	case 0xce:
		return mp_rbe(r, 4, v) ? RUF_E_FORMAT : 0;
	case 0xcf:
		return mp_rbe(r, 8, v) ? RUF_E_FORMAT : 0;
	}
	return RUF_E_FORMAT;
}

/* A string into out[cap] (NUL-terminated): no NUL inside, must fit. */
static int
mp_rstr(struct mp_r *r, char *out, size_t cap)
{
	const uint8_t *t, *s;
	uint64_t n;
	if (mp_take(r, 1, &t) != 0)
		return RUF_E_FORMAT;
	if ((*t & 0xe0) == 0xa0)
		n = *t & 0x1f;
	else if (*t == 0xd9 || *t == 0xda) {
		if (mp_rbe(r, *t == 0xd9 ? 1 : 2, &n) != 0)
			return RUF_E_FORMAT;
	} else
		return RUF_E_FORMAT;
	if (n >= cap || mp_take(r, (size_t)n, &s) != 0 || memchr(s, 0, (size_t)n) != NULL)
		return RUF_E_FORMAT;
	memcpy(out, s, (size_t)n);
	out[n] = '\0';
	return 0;
}

/* A bin of exactly want bytes (or 0 when allow_empty). */
static int
mp_rbin(struct mp_r *r, uint8_t *out, size_t want, bool allow_empty)
{
	const uint8_t *t, *s;
	uint64_t n;
	if (mp_take(r, 1, &t) != 0 || *t != 0xc4 || mp_rbe(r, 1, &n) != 0)
		return RUF_E_FORMAT;
	if (n == 0 && allow_empty) {
		memset(out, 0, want);
		return 0;
	}
	if (n != want || mp_take(r, (size_t)n, &s) != 0)
		return RUF_E_FORMAT;
	memcpy(out, s, want);
	return 0;
}

static int
mp_rarray(struct mp_r *r, uint64_t *n)
{
	const uint8_t *t;
	if (mp_take(r, 1, &t) != 0)
		return RUF_E_FORMAT;
	if ((*t & 0xf0) == 0x90) {
		*n = *t & 0x0f;
		return 0;
	}
	if (*t == 0xdc)
		return mp_rbe(r, 2, n) ? RUF_E_FORMAT : 0;
	return RUF_E_FORMAT;
}

static bool
all_zero(const uint8_t *b, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

int
ruf_archive_rec_encode(const struct ruf_archive_rec *r, uint8_t *buf, size_t cap, size_t *len)
{
	struct mp_w w = {buf, cap, 0, 0};
	const struct ruf_env_header *h = &r->hdr;

	if (r->n_queues > RUF_ENV_MAX_RECIPIENTS)
		return RUF_E_INVAL;
	mp_array(&w, REC_FIELDS);
	mp_uint(&w, RUF_ARCHIVE_FORMAT);
	mp_bin(&w, r->id, RUF_MSGID_BYTES);
	mp_array(&w, r->n_queues);
	for (size_t i = 0; i < r->n_queues; i++)
		mp_str(&w, r->queues[i]);
	mp_uint(&w, r->received);
	mp_uint(&w, h->created);
	mp_uint(&w, h->sequence);
	mp_uint(&w, h->device_serial);
	mp_uint(&w, (uint64_t)h->kind);
	mp_str(&w, h->situation);
	mp_str(&w, h->country);
	mp_str(&w, h->region);
	mp_uint(&w, (uint64_t)h->risk);
	mp_uint(&w, h->flags);
	mp_bin(&w, h->reply_to, all_zero(h->reply_to, RUF_MSGID_BYTES) ? 0 : RUF_MSGID_BYTES);
	mp_str(&w, h->reply_device);
	mp_str(&w, r->sender);
	mp_uint(&w, r->sender_serial);
	mp_uint(&w, (uint64_t)r->sender_role);
	mp_str(&w, r->verification);
	mp_str(&w, r->title);
	mp_uint(&w, (uint64_t)r->direction);
	mp_str(&w, r->status);
	mp_bin(&w, r->hash, 32);
	mp_uint(&w, r->total_len);
	mp_uint(&w, r->accepted);
	if (w.err)
		return w.err;
	*len = w.n;
	return 0;
}

int
ruf_archive_rec_decode(const uint8_t *buf, size_t len, struct ruf_archive_rec *out)
{
	struct mp_r r = {buf, len, 0};
	struct ruf_env_header *h = &out->hdr;
	uint64_t n, v, kind, risk, flags, role, dir;
	int rc = RUF_E_FORMAT;

	memset(out, 0, sizeof(*out));
	if (mp_rarray(&r, &n) != 0 || n < 2 || mp_ruint(&r, &v) != 0)
		goto fail;
	if (v != RUF_ARCHIVE_FORMAT && v != 1) {
		rc = RUF_E_VERSION;
		goto fail;
	}
	if (n != (v == 1 ? REC_FIELDS_V1 : REC_FIELDS) ||
	    mp_rbin(&r, out->id, RUF_MSGID_BYTES, false) != 0 || mp_rarray(&r, &n) != 0 ||
	    n > RUF_ENV_MAX_RECIPIENTS)
		goto fail;
	out->n_queues = (size_t)n;
	for (size_t i = 0; i < out->n_queues; i++)
		if (mp_rstr(&r, out->queues[i], sizeof(out->queues[i])) != 0 ||
		    !ruf_is_queue_name(out->queues[i]))
			goto fail;
	if (mp_ruint(&r, &out->received) || mp_ruint(&r, &h->created) ||
	    mp_ruint(&r, &h->sequence) || mp_ruint(&r, &h->device_serial) || mp_ruint(&r, &kind) ||
	    mp_rstr(&r, h->situation, sizeof(h->situation)) ||
	    mp_rstr(&r, h->country, sizeof(h->country)) ||
	    mp_rstr(&r, h->region, sizeof(h->region)) || mp_ruint(&r, &risk) ||
	    mp_ruint(&r, &flags) || mp_rbin(&r, h->reply_to, RUF_MSGID_BYTES, true) ||
	    mp_rstr(&r, h->reply_device, sizeof(h->reply_device)) ||
	    mp_rstr(&r, out->sender, sizeof(out->sender)) || mp_ruint(&r, &out->sender_serial) ||
	    mp_ruint(&r, &role) || mp_rstr(&r, out->verification, sizeof(out->verification)) ||
	    mp_rstr(&r, out->title, sizeof(out->title)) || mp_ruint(&r, &dir) ||
	    mp_rstr(&r, out->status, sizeof(out->status)) || mp_rbin(&r, out->hash, 32, false) ||
	    mp_ruint(&r, &out->total_len) || (v != 1 && mp_ruint(&r, &out->accepted)))
		goto fail;
	if (kind > 16 || risk > 16 || flags > UINT32_MAX || role > 16 || dir > 1)
		goto fail;
	if (r.off != len) {
		rc = RUF_E_TRAILING;
		goto fail;
	}
	h->kind = (int)kind;
	h->risk = (int)risk;
	h->flags = (uint32_t)flags;
	memcpy(h->message_id, out->id, RUF_MSGID_BYTES);
	out->sender_role = (int)role;
	out->direction = (int)dir;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- files ---- */

static void sweep_scratch(const ruf_archive *a);

int
ruf_archive_open(const char *home, const ruf_keystore *ks, ruf_archive **out)
{
	const struct ruf_key *kx = ruf_keystore_find(ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
	ruf_archive *a;
	int n1, n2, rc;

	*out = NULL;
	if (kx == NULL || kx->sklen != RUF_KX_SK_BYTES)
		return RUF_E_NO_KEY;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return RUF_E_NOMEM;
	n1 = snprintf(a->dir, sizeof(a->dir), "%s/archive", home);
	n2 = snprintf(a->qdir, sizeof(a->qdir), "%s/quarantine", home);
	if (n1 < 0 || (size_t)n1 >= sizeof(a->dir) - 64 || n2 < 0 ||
	    (size_t)n2 >= sizeof(a->qdir) - 64) {
		free(a);
		return RUF_E_INVAL;
	}
	if ((rc = ruf_mkdirs(a->dir, 0700)) != 0 || (rc = ruf_mkdirs(a->qdir, 0700)) != 0) {
		free(a);
		return rc;
	}
	if ((a->key = sodium_malloc(32)) == NULL) {
		free(a);
		return RUF_E_NOMEM;
	}
	/* A key of its own for the index, so the kx key is never used as an AEAD key. */
	crypto_generichash(a->key, 32, (const uint8_t *)DOM_IDX, sizeof(DOM_IDX), kx->sk,
	                   RUF_KX_SK_BYTES);
	sweep_scratch(a);
	*out = a;
	return 0;
}

void
ruf_archive_close(ruf_archive *a)
{
	if (a == NULL)
		return;
	sodium_free(a->key);
	free(a);
}

void
ruf_archive_env_path(const ruf_archive *a, const uint8_t id[RUF_MSGID_BYTES], char *out,
                     size_t outlen)
{
	char hex[2 * RUF_MSGID_BYTES + 1];
	ruf_hex(id, RUF_MSGID_BYTES, hex);
	pathf(out, outlen, "%s/%s.env", a->dir, hex);
}

static void
idx_path(const ruf_archive *a, const uint8_t id[RUF_MSGID_BYTES], char *out, size_t outlen)
{
	char hex[2 * RUF_MSGID_BYTES + 1];
	ruf_hex(id, RUF_MSGID_BYTES, hex);
	pathf(out, outlen, "%s/%s.idx", a->dir, hex);
}

void
ruf_archive_tmp_path(const ruf_archive *a, const char *tag, char *out, size_t outlen)
{
	pathf(out, outlen, "%s/.recv-%ld-%.64s", a->dir, (long)getpid(), tag);
}

/* AD: domain || message id, so a record cannot be moved to another message's file. */
static void
idx_ad(const uint8_t id[RUF_MSGID_BYTES], uint8_t ad[sizeof(DOM_IDX) + RUF_MSGID_BYTES])
{
	memcpy(ad, DOM_IDX, sizeof(DOM_IDX));
	memcpy(ad + sizeof(DOM_IDX), id, RUF_MSGID_BYTES);
}

static int
idx_write(const ruf_archive *a, const struct ruf_archive_rec *rec)
{
	uint8_t plain[RUF_ARCHIVE_IDX_MAX], ad[sizeof(DOM_IDX) + RUF_MSGID_BYTES];
	uint8_t file[IDX_MAGIC_LEN + IDX_NONCE + RUF_ARCHIVE_IDX_MAX + IDX_ABYTES];
	unsigned long long clen;
	char path[PATH_MAX];
	size_t plen;
	int rc;

	if ((rc = ruf_archive_rec_encode(rec, plain, sizeof(plain), &plen)) != 0)
		return rc;
	memcpy(file, IDX_MAGIC, IDX_MAGIC_LEN);
	randombytes_buf(file + IDX_MAGIC_LEN, IDX_NONCE);
	idx_ad(rec->id, ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(file + IDX_MAGIC_LEN + IDX_NONCE, &clen, plain,
	                                           plen, ad, sizeof(ad), NULL, file + IDX_MAGIC_LEN,
	                                           a->key);
	sodium_memzero(plain, sizeof(plain));
	idx_path(a, rec->id, path, sizeof(path));
	return ruf_file_write_atomic(path, file, IDX_MAGIC_LEN + IDX_NONCE + (size_t)clen, 0600,
	                             false);
}

static int
idx_read_path(const ruf_archive *a, const char *path, const uint8_t id[RUF_MSGID_BYTES],
              struct ruf_archive_rec *out)
{
	uint8_t plain[RUF_ARCHIVE_IDX_MAX], ad[sizeof(DOM_IDX) + RUF_MSGID_BYTES], *buf = NULL;
	unsigned long long plen;
	size_t len;
	int rc;

	if ((rc = ruf_file_read(path, RUF_ARCHIVE_IDX_MAX + IDX_MAGIC_LEN + IDX_NONCE + IDX_ABYTES,
	                        &buf, &len)) != 0)
		return rc == RUF_E_IO && errno == ENOENT ? RUF_E_NOTFOUND : rc;
	idx_ad(id, ad);
	if (len < IDX_MAGIC_LEN + IDX_NONCE + IDX_ABYTES ||
	    memcmp(buf, IDX_MAGIC, IDX_MAGIC_LEN) != 0 ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(
	        plain, &plen, NULL, buf + IDX_MAGIC_LEN + IDX_NONCE,
	        len - IDX_MAGIC_LEN - IDX_NONCE, ad, sizeof(ad), buf + IDX_MAGIC_LEN, a->key) != 0)
		rc = RUF_E_FORMAT;
	else
		rc = ruf_archive_rec_decode(plain, (size_t)plen, out);
	if (rc == 0 && memcmp(out->id, id, RUF_MSGID_BYTES) != 0)
		rc = RUF_E_FORMAT;
	sodium_memzero(plain, sizeof(plain));
	free(buf);
	return rc;
}

/* Scratch files of processes that died mid-receive (".recv-<pid>-..."): never archived. */
static void
sweep_scratch(const ruf_archive *a)
{
	DIR *d = opendir(a->dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end, path[PATH_MAX];
		long pid;
		if (strncmp(e->d_name, ".recv-", 6) != 0)
			continue;
		pid = strtol(e->d_name + 6, &end, 10);
		if (pid <= 0 || *end != '-' || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		pathf(path, sizeof(path), "%s/%s", a->dir, e->d_name);
		if (path[0] != '\0')
			unlink(path);
	}
	closedir(d);
}

int
ruf_archive_get(const ruf_archive *a, const uint8_t id[RUF_MSGID_BYTES],
                struct ruf_archive_rec *out)
{
	char path[PATH_MAX];
	idx_path(a, id, path, sizeof(path));
	if (access(path, F_OK) != 0)
		return RUF_E_NOTFOUND;
	return idx_read_path(a, path, id, out);
}

/* fsync a finished file, then give it its final name (never replacing) and fsync the dir. */
static int
install(const char *tmp, const char *path)
{
	int fd = open(tmp, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd == -1)
		return ruf_errno(errno);
	if (fsync(fd) != 0)
		rc = ruf_errno(errno);
	close(fd);
	if (rc != 0)
		return rc;
	if (link(tmp, path) != 0 && errno != EEXIST)
		return ruf_errno(errno);
	unlink(tmp);
	return ruf_fsync_dir_of(path);
}

int
ruf_archive_put(ruf_archive *a, const char *tmp_path, const struct ruf_archive_rec *rec, bool *dup)
{
	struct ruf_archive_rec old;
	char path[PATH_MAX];
	int rc;

	*dup = false;
	rc = ruf_archive_get(a, rec->id, &old);
	if (rc == 0) {
		bool changed = false;
		if (sodium_memcmp(old.hash, rec->hash, 32) != 0)
			return RUF_E_EXISTS;
		*dup = true;
		/* A redelivery may bring the receipt time an earlier copy lacked. */
		if (old.accepted == 0 && rec->accepted != 0) {
			old.accepted = rec->accepted;
			changed = true;
		}
		for (size_t i = 0; i < rec->n_queues; i++) {
			bool have = false;
			for (size_t j = 0; j < old.n_queues; j++)
				have = have || strcmp(old.queues[j], rec->queues[i]) == 0;
			if (!have && old.n_queues < RUF_ENV_MAX_RECIPIENTS) {
				memcpy(old.queues[old.n_queues++], rec->queues[i],
				       sizeof(old.queues[0]));
				changed = true;
			}
		}
		if (tmp_path != NULL)
			unlink(tmp_path);
		return changed ? idx_write(a, &old) : 0;
	}
	if (rc != RUF_E_NOTFOUND)
		return rc;
	/* The envelope first: an index record always names a durable envelope. */
	ruf_archive_env_path(a, rec->id, path, sizeof(path));
	if (tmp_path != NULL && (rc = install(tmp_path, path)) != 0)
		return rc;
	return idx_write(a, rec);
}

int
ruf_archive_quarantine(ruf_archive *a, const char *tmp_path, const char *name, const char *reason)
{
	char path[PATH_MAX], line[1024];
	int rc, n;

	pathf(path, sizeof(path), "%s/%.128s.reason", a->qdir, name);
	n = snprintf(line, sizeof(line), "%s\n", reason);
	if (n < 0)
		return RUF_E_INVAL;
	if ((rc = ruf_file_write_atomic(path, line, strlen(line), 0600, false)) != 0)
		return rc;
	pathf(path, sizeof(path), "%s/%.128s.env", a->qdir, name);
	return install(tmp_path, path);
}

static int
rec_cmp(const void *x, const void *y)
{
	const struct ruf_archive_rec *a = x, *b = y;
	if (a->received != b->received)
		return a->received < b->received ? -1 : 1;
	if (a->hdr.created != b->hdr.created)
		return a->hdr.created < b->hdr.created ? -1 : 1;
	/* Within one second: a sender's sequence orders its messages (a desk's replies). */
	if (a->hdr.sequence != b->hdr.sequence)
		return a->hdr.sequence < b->hdr.sequence ? -1 : 1;
	return memcmp(a->id, b->id, RUF_MSGID_BYTES);
}

/* Calls fn for each "<32 hex>.idx" name in the archive. */
static int
scan(const ruf_archive *a, int (*fn)(void *, const uint8_t *, const char *), void *arg)
{
	DIR *d = opendir(a->dir);
	struct dirent *e;
	int rc = 0;

	if (d == NULL)
		return ruf_errno(errno);
	while (rc == 0 && (e = readdir(d)) != NULL) {
		uint8_t id[RUF_MSGID_BYTES];
		size_t l = strlen(e->d_name);
		char hex[2 * RUF_MSGID_BYTES + 1];
		if (l != 2 * RUF_MSGID_BYTES + 4 || strcmp(e->d_name + 2 * RUF_MSGID_BYTES, ".idx"))
			continue;
		memcpy(hex, e->d_name, 2 * RUF_MSGID_BYTES);
		hex[2 * RUF_MSGID_BYTES] = '\0';
		if (ruf_unhex(hex, id, RUF_MSGID_BYTES) != 0)
			continue;
		rc = fn(arg, id, hex);
	}
	closedir(d);
	return rc;
}

struct list_ctx {
	const ruf_archive *a;
	struct ruf_archive_rec *v;
	size_t n, cap;
};

static int
list_one(void *arg, const uint8_t *id, const char *hex)
{
	struct list_ctx *c = arg;
	char path[PATH_MAX];
	int rc;

	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct ruf_archive_rec *nv = realloc(c->v, nc * sizeof(*nv));
		if (nv == NULL)
			return RUF_E_NOMEM;
		c->v = nv;
		c->cap = nc;
	}
	pathf(path, sizeof(path), "%s/%s.idx", c->a->dir, hex);
	if ((rc = idx_read_path(c->a, path, id, &c->v[c->n])) != 0) {
		fprintf(stderr, "ruf: warning: %s: index record unreadable (%s), skipped\n", path,
		        ruf_strerror(rc));
		return 0;
	}
	c->n++;
	return 0;
}

int
ruf_archive_list(const ruf_archive *a, struct ruf_archive_rec **out, size_t *n)
{
	struct list_ctx c = {a, NULL, 0, 0};
	int rc = scan(a, list_one, &c);

	if (rc != 0) {
		free(c.v);
		return rc;
	}
	if (c.n > 1)
		qsort(c.v, c.n, sizeof(*c.v), rec_cmp);
	*out = c.v;
	*n = c.n;
	return 0;
}

struct resolve_ctx {
	const char *prefix;
	size_t plen, hits;
	uint8_t id[RUF_MSGID_BYTES];
};

static int
resolve_one(void *arg, const uint8_t *id, const char *hex)
{
	struct resolve_ctx *c = arg;
	if (strncmp(hex, c->prefix, c->plen) == 0) {
		c->hits++;
		memcpy(c->id, id, RUF_MSGID_BYTES);
	}
	return 0;
}

int
ruf_archive_resolve(const ruf_archive *a, const char *prefix, uint8_t id[RUF_MSGID_BYTES])
{
	struct resolve_ctx c = {prefix, strlen(prefix), 0, {0}};
	int rc;

	if (c.plen < 4 || c.plen > 2 * RUF_MSGID_BYTES)
		return RUF_E_INVAL;
	for (size_t i = 0; i < c.plen; i++)
		if (!((prefix[i] >= '0' && prefix[i] <= '9') ||
		      (prefix[i] >= 'a' && prefix[i] <= 'f')))
			return RUF_E_INVAL;
	if ((rc = scan(a, resolve_one, &c)) != 0)
		return rc;
	if (c.hits == 0)
		return RUF_E_NOTFOUND;
	if (c.hits > 1)
		return RUF_E_INVAL;
	memcpy(id, c.id, RUF_MSGID_BYTES);
	return 0;
}
