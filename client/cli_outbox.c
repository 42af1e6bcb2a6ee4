/*
 * cli_outbox.c - the field outbox (outbox.h, docs/FIELD.md).
 *
 * The metadata record is msgpack with a format version, in one fixed shape
 * (array16 of 16 items; unsigned integers always as uint64 0xcf, strings as
 * str32 0xdb, bytes as bin32 0xc6) so the decoder is a small bounds-checked
 * cursor that allocates nothing before it has checked a length against the
 * bytes that remain (msgpack-c's unpacker sizes its zone from the lengths
 * it reads). The decoder accepts exactly that shape and no trailing bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "outbox.h"
#include "wire.h"

#define META_ITEMS 16

/* ---- record codec ---- */

struct wb {
	uint8_t *p;
	size_t n, cap;
};

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static int
wb_put(struct wb *w, uint8_t tag, uint64_t v, int vbytes, const void *body, size_t blen)
{
	size_t need = 1 + (size_t)vbytes + blen;

	if (need > w->cap - w->n)
		return RUF_E_TOO_LARGE;
	w->p[w->n] = tag;
	put_be(w->p + w->n + 1, v, vbytes);
	if (blen > 0)
		memcpy(w->p + w->n + 1 + vbytes, body, blen);
	w->n += need;
	return 0;
}

#define PUT_U(w, v) wb_put((w), 0xcf, (v), 8, NULL, 0)
#define PUT_BIN(w, b, l) wb_put((w), 0xc6, (l), 4, (b), (l))
#define PUT_STR(w, s) wb_put((w), 0xdb, strlen(s), 4, (s), strlen(s))

int
outbox_meta_encode(const struct outbox_entry *e, uint8_t **out, size_t *len)
{
	struct wb w = {.cap = OUTBOX_META_MAX};
	int rc = 0;

	if ((w.p = malloc(w.cap)) == NULL)
		return RUF_E_NOMEM;
	rc |= wb_put(&w, 0xdc, META_ITEMS, 2, NULL, 0);
	rc |= PUT_U(&w, OUTBOX_META_VERSION);
	rc |= PUT_BIN(&w, e->msgid, RUF_MSGID_BYTES);
	rc |= PUT_U(&w, (uint64_t)e->kind);
	rc |= PUT_U(&w, (uint64_t)e->risk);
	rc |= PUT_U(&w, e->created);
	rc |= PUT_U(&w, (uint64_t)e->state);
	rc |= PUT_U(&w, e->confirmed);
	rc |= PUT_U(&w, e->total_len);
	rc |= PUT_U(&w, e->dir_version);
	rc |= PUT_STR(&w, e->reason);
	rc |= PUT_BIN(&w, e->receipt, e->receipt_len);
	rc |= PUT_U(&w, e->store_seq);
	rc |= PUT_U(&w, e->receipt_time);
	rc |= PUT_STR(&w, e->queues);
	rc |= PUT_U(&w, e->attempts);
	rc |= PUT_U(&w, e->updated);
	if (rc != 0) {
		free(w.p);
		return RUF_E_TOO_LARGE;
	}
	*out = w.p;
	*len = w.n;
	return 0;
}

struct rd {
	const uint8_t *p;
	size_t n, off;
};

static int
rd_head(struct rd *r, uint8_t tag, int vbytes, uint64_t *v)
{
	if (r->n - r->off < 1 + (size_t)vbytes)
		return RUF_E_TRUNCATED;
	if (r->p[r->off] != tag)
		return RUF_E_FORMAT;
	*v = 0;
	for (int i = 0; i < vbytes; i++)
		*v = *v << 8 | r->p[r->off + 1 + i];
	r->off += 1 + (size_t)vbytes;
	return 0;
}

static int
rd_u(struct rd *r, uint64_t *v)
{
	return rd_head(r, 0xcf, 8, v);
}

static int
rd_bytes(struct rd *r, uint8_t tag, const uint8_t **b, size_t *l)
{
	uint64_t v;
	int rc;

	if ((rc = rd_head(r, tag, 4, &v)) != 0)
		return rc;
	if (v > r->n - r->off)
		return RUF_E_TRUNCATED;
	*b = r->p + r->off;
	*l = (size_t)v;
	r->off += (size_t)v;
	return 0;
}

/* A string into a fixed buffer: one line of UTF-8 without NUL. */
static int
rd_str(struct rd *r, char *out, size_t outlen)
{
	const uint8_t *b;
	size_t l;
	int rc;

	if ((rc = rd_bytes(r, 0xdb, &b, &l)) != 0)
		return rc;
	if (l >= outlen || memchr(b, 0, l) != NULL)
		return RUF_E_FORMAT;
	memcpy(out, b, l);
	out[l] = '\0';
	return 0;
}

int
outbox_meta_decode(const uint8_t *buf, size_t len, struct outbox_entry *e)
{
	struct rd r = {buf, len, 0};
	uint64_t v, kind, risk, state;
	const uint8_t *b;
	size_t l;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = rd_head(&r, 0xdc, 2, &v)) != 0)
		return rc;
	if (v != META_ITEMS)
		return RUF_E_FORMAT;
	if ((rc = rd_u(&r, &v)) != 0)
		return rc;
	if (v != OUTBOX_META_VERSION)
		return RUF_E_VERSION;
	if ((rc = rd_bytes(&r, 0xc6, &b, &l)) != 0)
		return rc;
	if (l != RUF_MSGID_BYTES)
		return RUF_E_FORMAT;
	memcpy(e->msgid, b, l);
	ruf_hex(e->msgid, RUF_MSGID_BYTES, e->id);
	if ((rc = rd_u(&r, &kind)) || (rc = rd_u(&r, &risk)) || (rc = rd_u(&r, &e->created)) ||
	    (rc = rd_u(&r, &state)) || (rc = rd_u(&r, &e->confirmed)) ||
	    (rc = rd_u(&r, &e->total_len)) || (rc = rd_u(&r, &e->dir_version)) ||
	    (rc = rd_str(&r, e->reason, sizeof(e->reason))) || (rc = rd_bytes(&r, 0xc6, &b, &l)))
		return rc;
	if (kind > 16 || risk > 16 || state > OUTBOX_FAILED || e->confirmed > e->total_len)
		return RUF_E_FORMAT;
	e->kind = (int)kind;
	e->risk = (int)risk;
	e->state = (int)state;
	if ((e->state == OUTBOX_DELIVERED) != (l > 0))
		return RUF_E_FORMAT;
	if (l > 0) {
		if ((e->receipt = malloc(l)) == NULL)
			return RUF_E_NOMEM;
		memcpy(e->receipt, b, l);
		e->receipt_len = l;
	}
	if ((rc = rd_u(&r, &e->store_seq)) || (rc = rd_u(&r, &e->receipt_time)) ||
	    (rc = rd_str(&r, e->queues, sizeof(e->queues))) || (rc = rd_u(&r, &e->attempts)) ||
	    (rc = rd_u(&r, &e->updated)))
		goto fail;
	if (r.off != r.n) {
		rc = RUF_E_TRAILING;
		goto fail;
	}
	return 0;
fail:
	outbox_entry_clear(e);
	return rc;
}

/* ---- files ---- */

int
outbox_dir(const char *home, char *out, size_t outlen)
{
	char q[PATH_MAX];
	int rc;

	cli_path(out, outlen, "%s/outbox", home);
	cli_path(q, sizeof(q), "%s/quarantine", out);
	if ((rc = ruf_mkdirs(q, 0700)) != 0)
		return rc;
	return 0;
}

void
outbox_path(const char *dir, const char *id, const char *ext, char *out, size_t outlen)
{
	cli_path(out, outlen, "%s/%s.%s", dir, id, ext);
}

int
outbox_save(const char *dir, const struct outbox_entry *e)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = outbox_meta_encode(e, &buf, &len)) != 0)
		return rc;
	outbox_path(dir, e->id, "meta", path, sizeof(path));
	rc = ruf_file_write_atomic(path, buf, len, 0600, false);
	free(buf);
	return rc;
}

void
outbox_entry_clear(struct outbox_entry *e)
{
	free(e->receipt);
	memset(e, 0, sizeof(*e));
}

void
outbox_list_free(struct outbox_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		outbox_entry_clear(&v[i]);
	free(v);
}

void
outbox_quarantine(const char *dir, const char *id, const char *why)
{
	static const char *const exts[] = {"meta", "env", "key", "draft"};
	char from[PATH_MAX], to[PATH_MAX];

	fprintf(stderr, "%s: outbox entry %s is damaged (%s): moved to %s/quarantine/\n",
	        cli_progname, id, why, dir);
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		outbox_path(dir, id, exts[i], from, sizeof(from));
		cli_path(to, sizeof(to), "%s/quarantine/%s.%s", dir, id, exts[i]);
		if (rename(from, to) == -1 && errno != ENOENT)
			fprintf(stderr, "%s: %s: %s\n", cli_progname, from, strerror(errno));
	}
	ruf_fsync_dir_of(from);
	ruf_fsync_dir_of(to);
}

/* Loads one entry; damage -> quarantine, returns nonzero. */
static int
load_one(const char *dir, const char *id, struct outbox_entry *e)
{
	char path[PATH_MAX], why[160];
	uint8_t *buf;
	size_t len;
	struct stat st;
	int rc;

	outbox_path(dir, id, "meta", path, sizeof(path));
	if ((rc = ruf_file_read(path, OUTBOX_META_MAX, &buf, &len)) != 0) {
		if (rc == RUF_E_NOTFOUND)
			return rc; /* removed meanwhile */
		snprintf(why, sizeof(why), "metadata: %s", ruf_strerror(rc));
		goto bad;
	}
	rc = outbox_meta_decode(buf, len, e);
	free(buf);
	if (rc != 0) {
		snprintf(why, sizeof(why), "metadata: %s", ruf_strerror(rc));
		goto bad;
	}
	if (strcmp(e->id, id) != 0) {
		snprintf(why, sizeof(why), "metadata names another message");
		rc = RUF_E_FORMAT;
		goto bad_e;
	}
	outbox_path(dir, id, "env", path, sizeof(path));
	if (e->state != OUTBOX_DELIVERED &&
	    (stat(path, &st) == -1 || (uint64_t)st.st_size != e->total_len)) {
		snprintf(why, sizeof(why), "envelope missing or of the wrong size");
		rc = RUF_E_FORMAT;
		goto bad_e;
	}
	return 0;
bad_e:
	outbox_entry_clear(e);
bad:
	outbox_quarantine(dir, id, why);
	return rc;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct outbox_entry *x = a, *y = b;

	if (x->risk != y->risk)
		return x->risk > y->risk ? -1 : 1;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

int
outbox_list(const char *dir, struct outbox_entry **out, size_t *n)
{
	struct outbox_entry *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	char id[2 * RUF_MSGID_BYTES + 1];

	*out = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : ruf_errno(errno);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		uint8_t raw[RUF_MSGID_BYTES];

		if (l != 2 * RUF_MSGID_BYTES + 5 ||
		    strcmp(de->d_name + 2 * RUF_MSGID_BYTES, ".meta"))
			continue;
		memcpy(id, de->d_name, 2 * RUF_MSGID_BYTES);
		id[2 * RUF_MSGID_BYTES] = '\0';
		if (ruf_unhex(id, raw, sizeof(raw)) != 0)
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				closedir(d);
				outbox_list_free(v, cnt);
				return RUF_E_NOMEM;
			}
			v = nv;
		}
		if (load_one(dir, id, &v[cnt]) == 0)
			cnt++;
	}
	closedir(d);
	if (cnt > 0)
		qsort(v, cnt, sizeof(*v), entry_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- the content key wrap ---- */

int
outbox_key_write(const char *dir, const struct outbox_entry *e,
                 const uint8_t key[RUF_CONTENT_KEY_BYTES], const uint8_t pk[32])
{
	uint8_t pt[RUF_MSGID_BYTES + RUF_CONTENT_KEY_BYTES], ct[OUTBOX_WRAP_BYTES];
	char path[PATH_MAX];
	int rc;

	memcpy(pt, e->msgid, RUF_MSGID_BYTES);
	memcpy(pt + RUF_MSGID_BYTES, key, RUF_CONTENT_KEY_BYTES);
	rc = crypto_box_seal(ct, pt, sizeof(pt), pk) == 0 ? 0 : RUF_E_CRYPTO;
	sodium_memzero(pt, sizeof(pt));
	if (rc != 0)
		return rc;
	outbox_path(dir, e->id, "key", path, sizeof(path));
	return ruf_file_write_atomic(path, ct, sizeof(ct), 0600, false);
}

int
outbox_key_read(const char *dir, const struct outbox_entry *e, const uint8_t pk[32],
                const uint8_t sk[32], uint8_t key[RUF_CONTENT_KEY_BYTES])
{
	uint8_t pt[RUF_MSGID_BYTES + RUF_CONTENT_KEY_BYTES], *ct;
	char path[PATH_MAX];
	size_t len;
	int rc;

	outbox_path(dir, e->id, "key", path, sizeof(path));
	if ((rc = ruf_file_read(path, OUTBOX_WRAP_BYTES, &ct, &len)) != 0)
		return rc;
	if (len != OUTBOX_WRAP_BYTES || crypto_box_seal_open(pt, ct, len, pk, sk) != 0)
		rc = RUF_E_AUTH;
	else if (sodium_memcmp(pt, e->msgid, RUF_MSGID_BYTES) != 0)
		rc = RUF_E_AUTH; /* a wrap moved from another entry */
	else
		memcpy(key, pt + RUF_MSGID_BYTES, RUF_CONTENT_KEY_BYTES);
	sodium_memzero(pt, sizeof(pt));
	free(ct);
	return rc;
}

int
outbox_key_destroy(const char *dir, const char *id)
{
	uint8_t zero[OUTBOX_WRAP_BYTES] = {0};
	char path[PATH_MAX];
	int fd, rc = 0;

	outbox_path(dir, id, "key", path, sizeof(path));
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : ruf_errno(errno);
	/* Overwrite in place first: on file systems that do not copy on write
	 * the wrap's blocks no longer hold it once unlinked. */
	if (ruf_write_all(fd, zero, sizeof(zero)) != 0 || fsync(fd) == -1)
		rc = RUF_E_IO;
	close(fd);
	if (unlink(path) == -1)
		return ruf_errno(errno);
	ruf_fsync_dir_of(path);
	return rc;
}

const char *
outbox_state_name(int state)
{
	switch (state) {
	case OUTBOX_PENDING:
		return "pending";
	case OUTBOX_INFLIGHT:
		return "in-flight";
	case OUTBOX_DELIVERED:
		return "delivered";
	case OUTBOX_FAILED:
		return "failed";
	default:
		return "?";
	}
}

int
outbox_deliver(const char *dir, struct outbox_entry *e, const uint8_t *receipt, size_t len,
               const ruf_cert *server_cert, const ruf_cert *root)
{
	struct ruf_wire_receipt_info info;
	struct ruf_env_info *ei = NULL;
	char path[PATH_MAX];
	int fd, rc;

	outbox_path(dir, e->id, "env", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return ruf_errno(errno);
	rc = ruf_envelope_inspect(fd, &ei);
	close(fd);
	if (rc != 0)
		return rc;
	rc = ruf_wire_receipt_verify(receipt, len, server_cert, root, ruf_now(), e->msgid, ei->hash,
	                             &info);
	ruf_env_info_free(ei);
	if (rc != 0)
		return rc;
	free(e->receipt);
	if ((e->receipt = malloc(len)) == NULL)
		return RUF_E_NOMEM;
	memcpy(e->receipt, receipt, len);
	e->receipt_len = len;
	e->state = OUTBOX_DELIVERED;
	e->confirmed = e->total_len;
	e->store_seq = info.body.store_seq;
	e->receipt_time = info.body.time;
	e->queues[0] = '\0';
	for (size_t i = 0; i < info.body.n_queues; i++) {
		strcat(e->queues, i ? "," : "");
		strcat(e->queues, info.body.queues[i]);
	}
	e->reason[0] = '\0';
	e->updated = ruf_now();
	/* The receipt is durable before the wrap goes: a crash between the two
	 * leaves a wrap the next `ruf send` destroys, never a delivered entry
	 * without its receipt. */
	if ((rc = outbox_save(dir, e)) != 0)
		return rc;
	if ((rc = outbox_key_destroy(dir, e->id)) != 0)
		fprintf(stderr, "%s: %s: destroying the key wrap: %s\n", cli_progname, e->id,
		        ruf_strerror(rc));
	return 0;
}
