/*
 * envelope.c - sealing, verifying and opening envelopes (DESIGN.md §4).
 *
 * The byte-exact format, the derivations and the order of the opening checks
 * are in docs/PROTOCOL.md; this file follows it section by section.
 * Memory stays bounded for attachments of any size: sealing streams each
 * attachment twice (once to learn the compressed length and hash, once to
 * encrypt), opening streams the file twice (once for the signature, once to
 * decrypt), and only the report (<= RUF_ENV_REPORT_MAX) is held in memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
/* For ZSTD_createCCtx_advanced/ZSTD_createDCtx_advanced (custom allocator,
 * stable since zstd 1.0 and exported by the shared library). */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "envelope.h"
#include "envelope.pb-c.h"
#include "envelope_internal.h"
#include "err.h"
#include "pb.h"
#include "util.h"

#define ENV_MAGIC "RUFENV\r\n"
#define ENV_MAGIC_LEN 8
#define ENV_PREFIX_LEN 12 /* magic + u32be head_len */
#define ENV_VERSION 1
#define ENV_HASH_BYTES 32
#define ENV_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define ENV_SS_HEADER_BYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ENV_WRAPPED_BYTES (RUF_CONTENT_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define ENV_NAME_MAX 255
#define ENV_IO_BUF (256u << 10)

/* Domain separation strings; each is used with its terminating NUL. */
static const char DOM_ENC[] = "ruf-envelope-enc-v1";
static const char DOM_COMMIT[] = "ruf-envelope-commit-v1";
static const char DOM_WRAP[] = "ruf-envelope-wrap-v1";
static const char DOM_SIG[] = "ruf-envelope-sig-v1";

/* Test seam (envelope_internal.h): NULL outside tests. */
void (*ruf__env_between_passes)(void *arg);
void *ruf__env_between_passes_arg;

/* ---- small pure helpers ---- */

uint64_t
ruf__env_pad_len(uint64_t n)
{
	unsigned e, s, last;
	uint64_t mask;

	if (n <= RUF__ENV_PAD_MIN)
		return RUF__ENV_PAD_MIN;
	/* Padmé: keep the top floor(log2 E)+1 bits of n, round the rest up. */
	e = 63u - (unsigned)__builtin_clzll(n);
	s = 32u - (unsigned)__builtin_clz(e);
	last = e - s;
	mask = (1ull << last) - 1;
	return (n + mask) & ~mask;
}

uint64_t
ruf__env_ct_len(uint64_t size_class)
{
	return size_class + ENV_ABYTES * ((size_class + RUF__ENV_CHUNK - 1) / RUF__ENV_CHUNK);
}

bool
ruf__env_attachment_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > ENV_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	if (!ruf_utf8_valid(name, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		/* No path separator, and no control characters a terminal would act on. */
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Keeps the envelope error that comes first in the check order (err.h lists them in order). */
static void
keep_first(int *cur, int err)
{
	if (err != 0 && (*cur == 0 || err > *cur))
		*cur = err;
}

static bool
opt_ident(const char *s)
{
	return s[0] == '\0' || ruf_is_ident(s);
}

/* Field validity of a header (docs: "Header fields"), shared by seal and open. */
static bool
header_valid(const struct ruf_env_header *h)
{
	if (ruf_kind_name(h->kind) == NULL)
		return false;
	if (ruf_risk_name(h->risk) == NULL && !(h->kind == RUF_KIND_REPLY && h->risk == 0))
		return false;
	if ((h->flags & ~RUF_FLAGS_ALL) != 0)
		return false;
	if (!opt_ident(h->situation) || !opt_ident(h->country) || !opt_ident(h->region) ||
	    !opt_ident(h->reply_device))
		return false;
	if (h->kind == RUF_KIND_REPLY) {
		if (h->reply_device[0] == '\0')
			return false;
	} else {
		/* Reports name their situation: the device's permission is checked on it. */
		if (h->situation[0] == '\0')
			return false;
		if (h->reply_device[0] != '\0' || !all_zero(h->reply_to, RUF_MSGID_BYTES))
			return false;
	}
	if (h->size_class < 1 || h->size_class > RUF__ENV_SIZE_MAX)
		return false;
	return true;
}

static int
header_encode(const struct ruf_env_header *h, uint8_t **out, size_t *len)
{
	Ruf__Header m = RUF__HEADER__INIT;

	m.version = h->version;
	m.message_id.data = (uint8_t *)h->message_id;
	m.message_id.len = RUF_MSGID_BYTES;
	m.created = h->created;
	m.sequence = h->sequence;
	m.device_serial = h->device_serial;
	m.kind = (uint32_t)h->kind;
	m.situation = (char *)h->situation;
	m.country = (char *)h->country;
	m.region = (char *)h->region;
	m.risk = (uint32_t)h->risk;
	m.flags = h->flags;
	m.size_class = h->size_class;
	m.directory_version = h->directory_version;
	if (!all_zero(h->reply_to, RUF_MSGID_BYTES)) {
		m.reply_to.data = (uint8_t *)h->reply_to;
		m.reply_to.len = RUF_MSGID_BYTES;
	}
	m.reply_device = (char *)h->reply_device;
	return ruf_pb_encode(&m.base, out, len);
}

static int
copy_ident(char *dst, const char *src)
{
	size_t n = strlen(src);

	if (n > RUF_IDENT_MAX)
		return RUF_E_ENV_FORMAT;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Strict decode of the exact header bytes: ENV_FORMAT, then ENV_VERSION, then field validity. */
static int
header_decode(const uint8_t *buf, size_t len, struct ruf_env_header *h, ruf_diag *d)
{
	ProtobufCMessage *pm;
	Ruf__Header *m;
	int rc;

	memset(h, 0, sizeof(*h));
	if ((rc = ruf_pb_decode(&ruf__header__descriptor, buf, len, RUF_ENV_HEAD_MAX, &pm)) != 0) {
		ruf_diag_set(d, "header does not decode");
		return rc == RUF_E_NOMEM ? rc : RUF_E_ENV_FORMAT;
	}
	m = (Ruf__Header *)pm;
	/* The version decides what the other fields mean: check it first. */
	if (m->version != ENV_VERSION) {
		ruf_diag_set(d, "header version %u", m->version);
		rc = RUF_E_ENV_VERSION;
		goto out;
	}
	rc = RUF_E_ENV_FORMAT;
	if (m->message_id.len != RUF_MSGID_BYTES ||
	    (m->reply_to.len != 0 && m->reply_to.len != RUF_MSGID_BYTES) || m->kind > INT32_MAX ||
	    m->risk > INT32_MAX) {
		ruf_diag_set(d, "header field lengths");
		goto out;
	}
	h->version = m->version;
	memcpy(h->message_id, m->message_id.data, RUF_MSGID_BYTES);
	h->created = m->created;
	h->sequence = m->sequence;
	h->device_serial = m->device_serial;
	h->kind = (int)m->kind;
	h->risk = (int)m->risk;
	h->flags = m->flags;
	h->size_class = m->size_class;
	h->directory_version = m->directory_version;
	if (m->reply_to.len != 0) {
		memcpy(h->reply_to, m->reply_to.data, RUF_MSGID_BYTES);
		/* One encoding per value: "none" is the empty field, never 16 zero bytes. */
		if (all_zero(h->reply_to, RUF_MSGID_BYTES))
			goto out;
	}
	if (copy_ident(h->situation, m->situation) != 0 ||
	    copy_ident(h->country, m->country) != 0 || copy_ident(h->region, m->region) != 0 ||
	    copy_ident(h->reply_device, m->reply_device) != 0)
		goto out;
	if (!header_valid(h)) {
		ruf_diag_set(d, "header field values");
		goto out;
	}
	rc = 0;
out:
	protobuf_c_message_free_unpacked(pm, NULL);
	return rc;
}

void
ruf_env_route_header(const struct ruf_env_header *h, struct ruf_route_header *out)
{
	out->kind = h->kind;
	out->situation = h->situation;
	out->country = h->country;
	out->region = h->region;
	out->risk = h->risk;
	out->flags = h->flags;
}

/*
 * zstd's contexts hold plaintext (windows, literals); this allocator wipes
 * every buffer before freeing it. The size is kept in a 16-byte prefix so
 * the returned block keeps malloc's alignment.
 */
static void *
wipe_alloc(void *opaque, size_t n)
{
	uint8_t *p;

	(void)opaque;
	if (n > SIZE_MAX - 16 || (p = malloc(n + 16)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + 16;
}

static void
wipe_free(void *opaque, void *a)
{
	uint8_t *p;
	size_t n;

	(void)opaque;
	if (a == NULL)
		return;
	p = (uint8_t *)a - 16;
	memcpy(&n, p, sizeof(n));
	sodium_memzero(a, n);
	free(p);
}

static const ZSTD_customMem wipe_mem = {wipe_alloc, wipe_free, NULL};

/* ---- key derivations ---- */

/* BLAKE2b-256 keyed with key over dom (with its NUL) || msgid. */
static void
derive_from_key(const uint8_t key[RUF_CONTENT_KEY_BYTES], const char *dom, size_t domlen,
                const uint8_t msgid[RUF_MSGID_BYTES], uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, RUF_CONTENT_KEY_BYTES, 32);
	crypto_generichash_update(&st, (const uint8_t *)dom, domlen);
	crypto_generichash_update(&st, msgid, RUF_MSGID_BYTES);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

/* msgid || u8 len(queue) || queue || u32be epoch; returns its length. */
static size_t
wrap_ad(const uint8_t msgid[RUF_MSGID_BYTES], const char *queue, uint32_t epoch,
        uint8_t out[RUF_MSGID_BYTES + 1 + RUF_QUEUE_NAME_MAX + 4])
{
	size_t ql = strlen(queue), n = 0;

	memcpy(out, msgid, RUF_MSGID_BYTES);
	n += RUF_MSGID_BYTES;
	out[n++] = (uint8_t)ql;
	memcpy(out + n, queue, ql);
	n += ql;
	be32_put(out + n, epoch);
	return n + 4;
}

static void
wrap_key_derive(const uint8_t shared[32], const uint8_t eph_pk[32], const uint8_t queue_pk[32],
                const uint8_t msgid[RUF_MSGID_BYTES], const char *queue, uint32_t epoch,
                uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t ad[RUF_MSGID_BYTES + 1 + RUF_QUEUE_NAME_MAX + 4];
	size_t adlen = wrap_ad(msgid, queue, epoch, ad);

	crypto_generichash_init(&st, shared, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)DOM_WRAP, sizeof(DOM_WRAP));
	crypto_generichash_update(&st, eph_pk, 32);
	crypto_generichash_update(&st, queue_pk, 32);
	crypto_generichash_update(&st, ad, adlen);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

static const uint8_t zero_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];

/* Wraps K to one queue key with a fresh ephemeral key. RUF_E_WEAK_KEY for a bad queue key. */
static int
wrap_one(const uint8_t K[RUF_CONTENT_KEY_BYTES], const uint8_t msgid[RUF_MSGID_BYTES],
         const char *queue, uint32_t epoch, const uint8_t queue_pk[32], uint8_t eph_pk[32],
         uint8_t wrapped[ENV_WRAPPED_BYTES])
{
	uint8_t eph_sk[32], shared[32], wk[32];
	uint8_t ad[RUF_MSGID_BYTES + 1 + RUF_QUEUE_NAME_MAX + 4];
	size_t adlen = wrap_ad(msgid, queue, epoch, ad);
	int rc = RUF_E_WEAK_KEY;

	randombytes_buf(eph_sk, sizeof(eph_sk));
	if (crypto_scalarmult_base(eph_pk, eph_sk) != 0)
		goto out;
	if (crypto_scalarmult(shared, eph_sk, queue_pk) != 0)
		goto out;
	wrap_key_derive(shared, eph_pk, queue_pk, msgid, queue, epoch, wk);
	crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped, NULL, K, RUF_CONTENT_KEY_BYTES, ad,
	                                           adlen, NULL, zero_nonce, wk);
	rc = 0;
out:
	sodium_memzero(eph_sk, sizeof(eph_sk));
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(wk, sizeof(wk));
	return rc;
}

static int
unwrap_one(const Ruf__Wrap *w, const struct ruf_key *k, const uint8_t msgid[RUF_MSGID_BYTES],
           uint8_t K[RUF_CONTENT_KEY_BYTES])
{
	uint8_t shared[32], wk[32];
	uint8_t ad[RUF_MSGID_BYTES + 1 + RUF_QUEUE_NAME_MAX + 4];
	size_t adlen = wrap_ad(msgid, w->queue, w->epoch, ad);
	int rc = RUF_E_ENV_UNWRAP;

	if (k->sk == NULL || k->sklen != RUF_KX_SK_BYTES)
		return RUF_E_ENV_UNWRAP;
	if (crypto_scalarmult(shared, k->sk, w->ephemeral_pk.data) != 0)
		goto out;
	wrap_key_derive(shared, w->ephemeral_pk.data, k->pk, msgid, w->queue, w->epoch, wk);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(K, NULL, NULL, w->wrapped_key.data,
	                                               ENV_WRAPPED_BYTES, ad, adlen, zero_nonce,
	                                               wk) != 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(wk, sizeof(wk));
	return rc;
}

/* ---- the content parser (after decryption) ---- */

enum content_state {
	CS_LEN,   /* collecting u32be inner_len */
	CS_INNER, /* collecting Inner */
	CS_FRAME, /* decompressing the zstd frame */
	CS_PAD,   /* after the frame: zero bytes only */
	CS_DEAD,  /* content cannot be followed further; keep consuming */
};

struct content_att {
	char *name;
	char *media_type;
	uint64_t size;
	uint8_t hash[32];
	char tmp[48]; /* temp file name in the attachment directory, "" if none */
};

struct ruf__env_content {
	uint8_t msgid[RUF_MSGID_BYTES];
	uint8_t header_hash[32];
	const char *const *queues;
	const uint32_t *epochs;
	size_t n_recipients;
	uint64_t size_class;
	int dirfd;

	enum content_state state;
	int err;    /* first envelope error in check order */
	int io_err; /* a local failure: ends everything */
	uint64_t fed;
	uint8_t lenbuf[4];
	size_t lenfill;
	uint8_t *inner;
	size_t inner_len, inner_fill;

	ZSTD_DCtx *dctx;
	uint8_t *obuf;
	size_t obuf_size;
	uint8_t magic[4];
	size_t magic_fill;
	uint64_t frame_len; /* compressed bytes of the frame consumed */
	uint64_t produced;  /* decompressed bytes so far */
	uint64_t expect;    /* decompressed bytes the Inner declares */

	uint8_t *report;
	uint64_t report_size;
	struct content_att *atts;
	size_t n_atts;
	size_t cur;        /* attachment being received */
	uint64_t cur_left; /* its bytes still to come */
	crypto_generichash_state cur_hash;
	int cur_fd;
	bool saving;
};

int
ruf__env_content_new(const struct ruf__env_expect *e, struct ruf__env_content **out)
{
	struct ruf__env_content *c;

	*out = NULL;
	/* aligned_alloc: the BLAKE2b state inside asks for 64-byte alignment. */
	if ((c = aligned_alloc(_Alignof(struct ruf__env_content), sizeof(*c))) == NULL)
		return RUF_E_NOMEM;
	memset(c, 0, sizeof(*c));
	memcpy(c->msgid, e->message_id, RUF_MSGID_BYTES);
	memcpy(c->header_hash, e->header_hash, 32);
	c->queues = e->queues;
	c->epochs = e->epochs;
	c->n_recipients = e->n_recipients;
	c->size_class = e->size_class;
	c->dirfd = e->attach_dirfd;
	c->cur_fd = -1;
	c->state = CS_LEN;
	c->obuf_size = ZSTD_DStreamOutSize();
	if ((c->obuf = malloc(c->obuf_size)) == NULL ||
	    (c->dctx = ZSTD_createDCtx_advanced(wipe_mem)) == NULL)
		goto fail;
	/* Bounded decoder memory: refuse frames whose window exceeds what sealers use. */
	if (ZSTD_isError(
	        ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_windowLogMax, RUF__ENV_ZSTD_WINDOW_LOG_MAX)))
		goto fail;
	*out = c;
	return 0;
fail:
	ruf__env_content_free(c);
	return RUF_E_NOMEM;
}

static void
content_fail(struct ruf__env_content *c, int err)
{
	keep_first(&c->err, err);
}

static void
content_kill(struct ruf__env_content *c, int err)
{
	content_fail(c, err);
	c->state = CS_DEAD;
}

static void
close_cur(struct ruf__env_content *c)
{
	if (c->cur_fd != -1) {
		close(c->cur_fd);
		c->cur_fd = -1;
	}
}

/* Opens attachment c->cur's temp file when saving. */
static int
att_open_tmp(struct ruf__env_content *c)
{
	struct content_att *a = &c->atts[c->cur];
	uint8_t rnd[16];
	char hex[33];

	randombytes_buf(rnd, sizeof(rnd));
	ruf_hex(rnd, sizeof(rnd), hex);
	snprintf(a->tmp, sizeof(a->tmp), ".ruf-%s.tmp", hex);
	c->cur_fd =
	    openat(c->dirfd, a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->cur_fd == -1) {
		a->tmp[0] = '\0';
		return ruf_errno(errno);
	}
	return 0;
}

/* Starts receiving attachment c->cur. */
static void
att_start(struct ruf__env_content *c)
{
	int rc;

	crypto_generichash_init(&c->cur_hash, NULL, 0, 32);
	c->cur_left = c->atts[c->cur].size;
	if (c->saving && c->io_err == 0 && (rc = att_open_tmp(c)) != 0)
		c->io_err = rc;
}

/* Closes out every complete attachment from c->cur on, starting the next ones. */
static void
att_settle(struct ruf__env_content *c)
{
	while (c->cur < c->n_atts && c->cur_left == 0 && c->io_err == 0) {
		uint8_t h[32];

		crypto_generichash_final(&c->cur_hash, h, 32);
		if (memcmp(h, c->atts[c->cur].hash, 32) != 0)
			content_fail(c, RUF_E_ENV_ATTACHMENT);
		if (c->cur_fd != -1) {
			if (fsync(c->cur_fd) == -1)
				c->io_err = ruf_errno(errno);
			close_cur(c);
		}
		if (++c->cur < c->n_atts)
			att_start(c);
	}
}

/* Parses and checks the Inner; on success the frame may follow. */
static void
inner_parse(struct ruf__env_content *c)
{
	ProtobufCMessage *pm = NULL;
	Ruf__Inner *m;
	uint64_t total;
	int rc;

	rc =
	    ruf_pb_decode(&ruf__inner__descriptor, c->inner, c->inner_len, RUF__ENV_INNER_MAX, &pm);
	if (rc == RUF_E_NOMEM) {
		c->io_err = rc;
		return;
	}
	if (rc != 0) {
		content_kill(c, RUF_E_ENV_CONTENT);
		return;
	}
	m = (Ruf__Inner *)pm;
	/* Binding to the head: a desk cannot re-address or re-head the content. */
	if (m->message_id.len != RUF_MSGID_BYTES ||
	    memcmp(m->message_id.data, c->msgid, RUF_MSGID_BYTES) != 0 ||
	    m->header_hash.len != 32 || memcmp(m->header_hash.data, c->header_hash, 32) != 0 ||
	    m->n_recipients != c->n_recipients) {
		content_fail(c, RUF_E_ENV_READDRESSED);
	} else {
		for (size_t i = 0; i < m->n_recipients; i++) {
			if (strcmp(m->recipients[i]->queue, c->queues[i]) != 0 ||
			    m->recipients[i]->epoch != c->epochs[i])
				content_fail(c, RUF_E_ENV_READDRESSED);
		}
	}
	/* Sizes first: they bound the decompression, and nothing is allocated before. */
	if (m->report_size > RUF_ENV_REPORT_MAX || m->n_attachments > RUF_ENV_MAX_ATTACHMENTS) {
		content_kill(c, RUF_E_ENV_CONTENT);
		goto out;
	}
	total = m->report_size;
	for (size_t i = 0; i < m->n_attachments; i++) {
		if (m->attachments[i]->size > RUF__ENV_SIZE_MAX) {
			content_kill(c, RUF_E_ENV_CONTENT);
			goto out;
		}
		total += m->attachments[i]->size;
	}
	if (total > RUF__ENV_SIZE_MAX) {
		content_kill(c, RUF_E_ENV_CONTENT);
		goto out;
	}
	c->expect = total;
	c->report_size = m->report_size;
	if ((c->report = malloc(m->report_size + 1)) == NULL ||
	    (m->n_attachments > 0 &&
	     (c->atts = calloc(m->n_attachments, sizeof(*c->atts))) == NULL)) {
		c->io_err = RUF_E_NOMEM;
		goto out;
	}
	c->n_atts = m->n_attachments;
	for (size_t i = 0; i < m->n_attachments; i++) {
		const Ruf__AttachmentInfo *ai = m->attachments[i];
		struct content_att *a = &c->atts[i];
		struct stat st;

		if ((a->name = strdup(ai->name)) == NULL ||
		    (a->media_type = strdup(ai->media_type)) == NULL) {
			c->io_err = RUF_E_NOMEM;
			goto out;
		}
		a->size = ai->size;
		if (ai->hash.len == 32)
			memcpy(a->hash, ai->hash.data, 32);
		else
			content_fail(c, RUF_E_ENV_CONTENT);
		if (!ruf__env_attachment_name_ok(a->name) || strlen(a->media_type) > ENV_NAME_MAX)
			content_fail(c, RUF_E_ENV_CONTENT);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->atts[j].name, a->name) == 0)
				content_fail(c, RUF_E_ENV_CONTENT);
		}
		if (c->dirfd != -1 && ruf__env_attachment_name_ok(a->name) &&
		    fstatat(c->dirfd, a->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			content_fail(c,
			             RUF_E_ENV_CONTENT); /* would collide with an existing file */
	}
	/* Write files only for content that is sound so far. */
	c->saving = c->dirfd != -1 && c->err == 0;
	c->state = CS_FRAME;
	c->cur = 0;
	if (c->report_size == 0 && c->n_atts > 0) {
		att_start(c);
		att_settle(c);
	}
out:
	protobuf_c_message_free_unpacked(pm, NULL);
}

/* Takes decompressed bytes: the report, then each attachment. */
static void
content_output(struct ruf__env_content *c, const uint8_t *p, size_t n)
{
	if (n > c->expect - c->produced) {
		/* More output than the Inner declares: stop before inflating any further. */
		content_kill(c, RUF_E_ENV_DECOMPRESS);
		return;
	}
	while (n > 0 && c->io_err == 0) {
		size_t k;

		if (c->produced < c->report_size) {
			k = c->report_size - c->produced < n
			        ? (size_t)(c->report_size - c->produced)
			        : n;
			memcpy(c->report + c->produced, p, k);
			c->produced += k;
			p += k;
			n -= k;
			if (c->produced == c->report_size && c->n_atts > 0) {
				att_start(c);
				att_settle(c);
			}
			continue;
		}
		if (c->cur >= c->n_atts)
			break; /* cannot happen: bounded by expect above */
		k = c->cur_left < n ? (size_t)c->cur_left : n;
		crypto_generichash_update(&c->cur_hash, p, k);
		if (c->cur_fd != -1) {
			int rc = ruf_write_all(c->cur_fd, p, k);
			if (rc != 0) {
				c->io_err = rc;
				return;
			}
		}
		c->cur_left -= k;
		c->produced += k;
		p += k;
		n -= k;
		att_settle(c);
	}
}

static void
frame_feed(struct ruf__env_content *c, const uint8_t *p, size_t n)
{
	ZSTD_inBuffer in = {p, n, 0};
	bool flush = false;

	/* Exactly one zstd frame: a skippable frame or any other magic is refused. */
	while (c->magic_fill < 4 && in.pos < n)
		c->magic[c->magic_fill++] = p[in.pos++];
	if (c->magic_fill < 4)
		return;
	if (c->frame_len == 0) {
		static const uint8_t zmagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
		ZSTD_inBuffer m = {c->magic, 4, 0};
		ZSTD_outBuffer o = {c->obuf, c->obuf_size, 0};
		size_t r;

		if (memcmp(c->magic, zmagic, 4) != 0) {
			content_kill(c, RUF_E_ENV_DECOMPRESS);
			return;
		}
		r = ZSTD_decompressStream(c->dctx, &o, &m);
		if (ZSTD_isError(r) || o.pos != 0 || m.pos != 4) {
			content_kill(c, RUF_E_ENV_DECOMPRESS);
			return;
		}
		c->frame_len = 4;
	}
	while ((in.pos < in.size || flush) && c->state == CS_FRAME && c->io_err == 0) {
		ZSTD_outBuffer out = {c->obuf, c->obuf_size, 0};
		size_t before = in.pos, r;

		r = ZSTD_decompressStream(c->dctx, &out, &in);
		c->frame_len += in.pos - before;
		if (ZSTD_isError(r)) {
			content_kill(c, RUF_E_ENV_DECOMPRESS);
			return;
		}
		content_output(c, c->obuf, out.pos);
		flush = out.pos == out.size;
		if (r == 0) {
			/* Frame complete: the decompressed length must be the declared one. */
			if (c->produced != c->expect)
				content_fail(c, RUF_E_ENV_DECOMPRESS);
			c->state = CS_PAD;
			if (!all_zero(p + in.pos, in.size - in.pos))
				content_fail(c, RUF_E_ENV_PADDING);
			return;
		}
	}
}

int
ruf__env_content_feed(struct ruf__env_content *c, const uint8_t *p, size_t n)
{
	c->fed += n;
	while (n > 0 && c->io_err == 0) {
		size_t k;

		switch (c->state) {
		case CS_LEN:
			k = 4 - c->lenfill < n ? 4 - c->lenfill : n;
			memcpy(c->lenbuf + c->lenfill, p, k);
			c->lenfill += k;
			p += k;
			n -= k;
			if (c->lenfill == 4) {
				c->inner_len = be32_get(c->lenbuf);
				if (c->inner_len == 0 || c->inner_len > RUF__ENV_INNER_MAX) {
					content_kill(c, RUF_E_ENV_CONTENT);
					break;
				}
				if ((c->inner = malloc(c->inner_len)) == NULL) {
					c->io_err = RUF_E_NOMEM;
					break;
				}
				c->state = CS_INNER;
			}
			break;
		case CS_INNER:
			k = c->inner_len - c->inner_fill < n ? c->inner_len - c->inner_fill : n;
			memcpy(c->inner + c->inner_fill, p, k);
			c->inner_fill += k;
			p += k;
			n -= k;
			if (c->inner_fill == c->inner_len)
				inner_parse(c);
			break;
		case CS_FRAME:
			frame_feed(c, p, n);
			return c->io_err;
		case CS_PAD:
			if (!all_zero(p, n))
				content_fail(c, RUF_E_ENV_PADDING);
			return c->io_err;
		case CS_DEAD:
			return c->io_err;
		}
	}
	return c->io_err;
}

int
ruf__env_content_finish(struct ruf__env_content *c)
{
	if (c->io_err != 0)
		return c->io_err;
	switch (c->state) {
	case CS_LEN:
	case CS_INNER:
		content_fail(c, RUF_E_ENV_CONTENT); /* the stream ended inside the Inner */
		break;
	case CS_FRAME:
		content_fail(c, RUF_E_ENV_DECOMPRESS); /* no complete frame */
		break;
	case CS_PAD:
		/* The size class must be the one the frame's length implies. */
		if (c->fed != c->size_class ||
		    ruf__env_pad_len(4 + c->inner_len + c->frame_len) != c->size_class)
			content_fail(c, RUF_E_ENV_PADDING);
		break;
	case CS_DEAD:
		break;
	}
	if (c->err == 0 && c->fed != c->size_class)
		content_fail(c, RUF_E_ENV_CONTENT);
	return c->err;
}

static void
unlink_tmps(struct ruf__env_content *c)
{
	close_cur(c);
	for (size_t i = 0; i < c->n_atts; i++) {
		if (c->atts[i].tmp[0] != '\0' && c->dirfd != -1)
			unlinkat(c->dirfd, c->atts[i].tmp, 0);
		c->atts[i].tmp[0] = '\0';
	}
}

int
ruf__env_content_take(struct ruf__env_content *c, const char *attach_dir, struct ruf_opened *o)
{
	size_t linked = 0;
	int rc = 0;

	if (c->err != 0 || c->state != CS_PAD)
		return c->err != 0 ? c->err : RUF_E_INVAL;
	if (c->n_atts > 0 && (o->attachments = calloc(c->n_atts, sizeof(*o->attachments))) == NULL)
		return RUF_E_NOMEM;
	o->n_attachments = c->n_atts;
	for (size_t i = 0; i < c->n_atts; i++) {
		struct ruf_opened_attachment *oa = &o->attachments[i];
		struct content_att *a = &c->atts[i];

		oa->name = a->name;
		oa->media_type = a->media_type;
		a->name = a->media_type = NULL;
		oa->size = a->size;
		memcpy(oa->hash, a->hash, 32);
	}
	if (c->saving) {
		/* link() never replaces: a file that appeared since the check stops us. */
		for (linked = 0; linked < c->n_atts; linked++) {
			struct content_att *a = &c->atts[linked];
			if (linkat(c->dirfd, a->tmp, c->dirfd, o->attachments[linked].name, 0) ==
			    -1) {
				rc = errno == EEXIST ? RUF_E_ENV_CONTENT : ruf_errno(errno);
				goto fail_link;
			}
		}
		if (fsync(c->dirfd) == -1) {
			rc = ruf_errno(errno);
			goto fail_link;
		}
		for (size_t i = 0; i < c->n_atts; i++) {
			if (asprintf(&o->attachments[i].saved_path, "%s/%s", attach_dir,
			             o->attachments[i].name) == -1) {
				o->attachments[i].saved_path = NULL;
				rc = RUF_E_NOMEM;
				goto fail_link;
			}
		}
		unlink_tmps(c);
	}
	o->report = c->report;
	o->report_len = (size_t)c->report_size;
	c->report = NULL;
	return 0;
fail_link:
	while (linked > 0) {
		linked--;
		unlinkat(c->dirfd, o->attachments[linked].name, 0);
	}
	return rc;
}

void
ruf__env_content_free(struct ruf__env_content *c)
{
	if (c == NULL)
		return;
	unlink_tmps(c);
	for (size_t i = 0; i < c->n_atts; i++) {
		free(c->atts[i].name);
		free(c->atts[i].media_type);
	}
	free(c->atts);
	if (c->report != NULL) {
		sodium_memzero(c->report, (size_t)c->report_size);
		free(c->report);
	}
	if (c->inner != NULL) {
		sodium_memzero(c->inner, c->inner_len);
		free(c->inner);
	}
	if (c->obuf != NULL) {
		sodium_memzero(c->obuf, c->obuf_size);
		free(c->obuf);
	}
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

/* ---- sealing ---- */

struct seal_att {
	int fd;
	uint64_t size;
	uint8_t hash[32];
};

/* Where compressed bytes go: counted only (pass 1), or padded+encrypted+written (pass 2). */
struct sink {
	bool encrypt;
	uint64_t total; /* content bytes taken so far (inner prefix + frame) */
	/* pass 2 only */
	uint64_t size_class;
	uint64_t chunk_idx, n_chunks;
	uint8_t *buf; /* RUF__ENV_CHUNK plaintext bytes */
	size_t fill;
	uint8_t *cbuf; /* RUF__ENV_CHUNK + ABYTES */
	crypto_secretstream_xchacha20poly1305_state ss;
	const uint8_t *ad;
	crypto_sign_state *sig;
	int fd;
	const struct ruf__seal_tamper *t;
	bool overflow;
};

static int
sink_emit(struct sink *s)
{
	unsigned char tag = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
	unsigned long long clen;

	if (s->chunk_idx + 1 == s->n_chunks)
		tag = crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	if (s->t != NULL && s->t->no_final_tag && s->chunk_idx + 1 == s->n_chunks)
		tag = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
	if (s->t != NULL && s->t->early_final_tag && s->chunk_idx == 0)
		tag = crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	if (s->t != NULL && s->t->bad_padding && s->chunk_idx + 1 == s->n_chunks)
		s->buf[s->fill - 1] = 0x01;
	crypto_secretstream_xchacha20poly1305_push(&s->ss, s->cbuf, &clen, s->buf, s->fill, s->ad,
	                                           ENV_HASH_BYTES, tag);
	crypto_sign_update(s->sig, s->cbuf, (size_t)clen);
	s->chunk_idx++;
	s->fill = 0;
	return ruf_write_all(s->fd, s->cbuf, (size_t)clen);
}

static int
sink_put(struct sink *s, const uint8_t *p, size_t n)
{
	int rc;

	s->total += n;
	if (!s->encrypt || s->overflow)
		return 0;
	if (s->total > s->size_class) {
		/* Pass 2 produced more than pass 1: an input changed; finish reading to say which.
		 */
		s->overflow = true;
		return 0;
	}
	while (n > 0) {
		size_t k = RUF__ENV_CHUNK - s->fill < n ? RUF__ENV_CHUNK - s->fill : n;
		memcpy(s->buf + s->fill, p, k);
		s->fill += k;
		p += k;
		n -= k;
		if (s->fill == RUF__ENV_CHUNK && (rc = sink_emit(s)) != 0)
			return rc;
	}
	return 0;
}

/* Zero padding up to the size class, then the last chunk. */
static int
sink_finish(struct sink *s)
{
	uint64_t left = s->size_class - s->total;
	int rc;

	while (left > 0) {
		size_t k = RUF__ENV_CHUNK - s->fill;
		if (k > left)
			k = (size_t)left;
		memset(s->buf + s->fill, 0, k);
		s->fill += k;
		left -= k;
		if (s->fill == RUF__ENV_CHUNK && (rc = sink_emit(s)) != 0)
			return rc;
	}
	if (s->fill > 0 && (rc = sink_emit(s)) != 0)
		return rc;
	return 0;
}

static int
compress_feed(ZSTD_CCtx *cctx, uint8_t *obuf, size_t osize, const uint8_t *p, size_t n,
              ZSTD_EndDirective end, struct sink *s)
{
	ZSTD_inBuffer in = {p, n, 0};
	size_t r;
	int rc;

	do {
		ZSTD_outBuffer out = {obuf, osize, 0};
		r = ZSTD_compressStream2(cctx, &out, &in, end);
		if (ZSTD_isError(r))
			return RUF_E_NOMEM; /* zstd fails only on allocation here */
		if ((rc = sink_put(s, obuf, out.pos)) != 0)
			return rc;
	} while (end == ZSTD_e_end ? r != 0 : in.pos < in.size);
	return 0;
}

/*
 * One pass over the content: the report, then every attachment, through zstd
 * into s. In the first pass (hash_out) it records each attachment's hash; in
 * the second it checks the bytes still hash the same (ENV_ATTACHMENT).
 */
static int
compress_pass(ZSTD_CCtx *cctx, const struct ruf_seal_params *p, struct seal_att *atts, bool first,
              struct sink *s)
{
	size_t osize = ZSTD_CStreamOutSize();
	uint8_t *obuf = malloc(osize), *ibuf = malloc(ENV_IO_BUF);
	int rc = RUF_E_NOMEM;

	if (obuf == NULL || ibuf == NULL)
		goto out;
	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
	if ((rc = compress_feed(cctx, obuf, osize, p->report, p->report_len, ZSTD_e_continue, s)) !=
	    0)
		goto out;
	for (size_t i = 0; i < p->n_attachments; i++) {
		crypto_generichash_state hs;
		uint8_t h[32], extra;
		uint64_t off = 0;

		crypto_generichash_init(&hs, NULL, 0, 32);
		while (off < atts[i].size) {
			size_t k = atts[i].size - off < ENV_IO_BUF ? (size_t)(atts[i].size - off)
			                                           : ENV_IO_BUF;
			if ((rc = ruf_pread_all(atts[i].fd, ibuf, k, off)) != 0) {
				rc = rc == RUF_E_TRUNCATED ? RUF_E_ENV_ATTACHMENT : rc;
				goto out;
			}
			crypto_generichash_update(&hs, ibuf, k);
			if ((rc = compress_feed(cctx, obuf, osize, ibuf, k, ZSTD_e_continue, s)) !=
			    0)
				goto out;
			off += k;
		}
		/* The file must not have grown either. */
		if (pread(atts[i].fd, &extra, 1, (off_t)off) != 0) {
			rc = RUF_E_ENV_ATTACHMENT;
			goto out;
		}
		crypto_generichash_final(&hs, h, 32);
		if (first) {
			memcpy(atts[i].hash, h, 32);
		} else if (memcmp(atts[i].hash, h, 32) != 0) {
			rc = RUF_E_ENV_ATTACHMENT;
			goto out;
		}
	}
	rc = compress_feed(cctx, obuf, osize, NULL, 0, ZSTD_e_end, s);
out:
	if (obuf != NULL) {
		sodium_memzero(obuf, osize);
		free(obuf);
	}
	if (ibuf != NULL) {
		sodium_memzero(ibuf, ENV_IO_BUF);
		free(ibuf);
	}
	return rc;
}

static int
cmp_recipient(const void *a, const void *b)
{
	const struct ruf_seal_recipient *x = *(const struct ruf_seal_recipient *const *)a;
	const struct ruf_seal_recipient *y = *(const struct ruf_seal_recipient *const *)b;

	return strcmp(x->queue, y->queue);
}

static int
seal_check_params(const struct ruf_seal_params *p)
{
	if (p->hdr == NULL || (p->report == NULL && p->report_len > 0) ||
	    p->report_len > RUF_ENV_REPORT_MAX || p->n_attachments > RUF_ENV_MAX_ATTACHMENTS ||
	    (p->attachments == NULL && p->n_attachments > 0) || p->n_recipients < 1 ||
	    p->n_recipients > RUF_ENV_MAX_RECIPIENTS || p->recipients == NULL ||
	    p->device_cert == NULL || p->device_cert_len < 1 || p->device_cert_len > RUF_CERT_MAX ||
	    p->sign_sk == NULL || p->zstd_level < 0 || p->zstd_level > RUF__ENV_ZSTD_LEVEL_MAX)
		return RUF_E_INVAL;
	for (size_t i = 0; i < p->n_attachments; i++) {
		const struct ruf_seal_attachment *a = &p->attachments[i];
		if (a->name == NULL || a->path == NULL || !ruf__env_attachment_name_ok(a->name) ||
		    (a->media_type != NULL &&
		     (strlen(a->media_type) > ENV_NAME_MAX ||
		      !ruf_utf8_valid(a->media_type, strlen(a->media_type)))))
			return RUF_E_INVAL;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(p->attachments[j].name, a->name) == 0)
				return RUF_E_INVAL;
		}
	}
	for (size_t i = 0; i < p->n_recipients; i++) {
		const struct ruf_seal_recipient *r = &p->recipients[i];
		if (r->queue == NULL || !ruf_is_queue_name(r->queue) || r->epoch < 1 ||
		    r->pk == NULL)
			return RUF_E_INVAL;
	}
	return 0;
}

int
ruf__envelope_seal_tampered(const struct ruf_seal_params *p, const struct ruf__seal_tamper *t,
                            int out_fd, uint8_t msgid[RUF_MSGID_BYTES], uint8_t *content_key)
{
	const struct ruf_seal_recipient *rs[RUF_ENV_MAX_RECIPIENTS];
	struct seal_att atts[RUF_ENV_MAX_ATTACHMENTS];
	struct ruf_env_header h;
	Ruf__Wrap wraps[RUF_ENV_MAX_RECIPIENTS], *wrapp[RUF_ENV_MAX_RECIPIENTS];
	uint8_t eph_pk[RUF_ENV_MAX_RECIPIENTS][32],
	    wrapped[RUF_ENV_MAX_RECIPIENTS][ENV_WRAPPED_BYTES];
	Ruf__QueueRef qrefs[RUF_ENV_MAX_RECIPIENTS], *qrefp[RUF_ENV_MAX_RECIPIENTS];
	Ruf__AttachmentInfo ainfo[RUF_ENV_MAX_ATTACHMENTS], *ainfop[RUF_ENV_MAX_ATTACHMENTS];
	Ruf__Inner inner = RUF__INNER__INIT;
	Ruf__EnvelopeHead head = RUF__ENVELOPE_HEAD__INIT;
	uint8_t *K = NULL, enc_key[32], commitment[32], header_hash[32];
	uint8_t ss_header[ENV_SS_HEADER_BYTES], prefix[ENV_PREFIX_LEN], sig[RUF_SIG_BYTES];
	uint8_t inner_hh[32], att0_hash[32];
	uint8_t *hdr_buf = NULL, *inner_buf = NULL, *head_buf = NULL;
	size_t hdr_len, inner_len, head_len;
	struct sink s1 = {0}, s2 = {0};
	crypto_sign_state sst;
	ZSTD_CCtx *cctx = NULL;
	uint64_t content_len;
	size_t nopen = 0;
	int rc;

	if ((rc = seal_check_params(p)) != 0)
		return rc;
	h = *p->hdr;
	h.version = t != NULL && t->version != 0 ? t->version : ENV_VERSION;
	h.size_class = 1; /* placeholder for the validity check */
	if (!header_valid(&h))
		return RUF_E_INVAL;
	for (size_t i = 0; i < p->n_recipients; i++)
		rs[i] = &p->recipients[i];
	qsort(rs, p->n_recipients, sizeof(rs[0]), cmp_recipient);
	for (size_t i = 1; i < p->n_recipients; i++) {
		if (strcmp(rs[i - 1]->queue, rs[i]->queue) == 0)
			return RUF_E_INVAL;
	}
	/* Randomness, in this order (the known-answer test relies on it): id, K, ephemerals,
	 * stream. */
	if (all_zero(h.message_id, RUF_MSGID_BYTES))
		randombytes_buf(h.message_id, RUF_MSGID_BYTES);
	if ((K = sodium_malloc(RUF_CONTENT_KEY_BYTES)) == NULL)
		return RUF_E_NOMEM;
	randombytes_buf(K, RUF_CONTENT_KEY_BYTES);

	/* Pass 1: attachment sizes and hashes, and the compressed length. */
	for (nopen = 0; nopen < p->n_attachments;) {
		struct stat st;
		/* O_NONBLOCK: a FIFO must not block us; it is refused below. */
		int afd = open(p->attachments[nopen].path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

		if (afd == -1) {
			rc = ruf_errno(errno);
			goto out;
		}
		atts[nopen++].fd = afd;
		if (fstat(afd, &st) == -1) {
			rc = ruf_errno(errno);
			goto out;
		}
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > RUF__ENV_SIZE_MAX) {
			rc = S_ISREG(st.st_mode) ? RUF_E_TOO_LARGE : RUF_E_INVAL;
			goto out;
		}
		atts[nopen - 1].size = (uint64_t)st.st_size;
	}
	if ((cctx = ZSTD_createCCtx_advanced(wipe_mem)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel,
	                                        p->zstd_level == 0 ? 3 : p->zstd_level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0))) {
		rc = RUF_E_INVAL;
		goto out;
	}
	if ((rc = compress_pass(cctx, p, atts, true, &s1)) != 0)
		goto out;

	/* The Inner: its length does not depend on the header hash it will carry. */
	inner.message_id.data = h.message_id;
	inner.message_id.len = RUF_MSGID_BYTES;
	inner.header_hash.data = inner_hh;
	inner.header_hash.len = 32;
	memset(inner_hh, 0, sizeof(inner_hh));
	for (size_t i = 0; i < p->n_recipients; i++) {
		ruf__queue_ref__init(&qrefs[i]);
		qrefs[i].queue = (char *)rs[i]->queue;
		qrefs[i].epoch = rs[i]->epoch;
		qrefp[i] = &qrefs[i];
	}
	if (t != NULL && t->inner_queue0 != NULL)
		qrefs[0].queue = (char *)t->inner_queue0;
	if (t != NULL && t->inner_epoch0 != 0)
		qrefs[0].epoch = t->inner_epoch0;
	inner.n_recipients = p->n_recipients;
	inner.recipients = qrefp;
	inner.report_size = p->report_len;
	for (size_t i = 0; i < p->n_attachments; i++) {
		ruf__attachment_info__init(&ainfo[i]);
		ainfo[i].name = (char *)p->attachments[i].name;
		ainfo[i].media_type =
		    (char *)(p->attachments[i].media_type != NULL ? p->attachments[i].media_type
		                                                  : "");
		ainfo[i].size = atts[i].size;
		ainfo[i].hash.data = atts[i].hash;
		ainfo[i].hash.len = 32;
		ainfop[i] = &ainfo[i];
	}
	if (t != NULL && t->bad_attachment_hash && p->n_attachments > 0) {
		memcpy(att0_hash, atts[0].hash, 32);
		att0_hash[0] ^= 0x80;
		ainfo[0].hash.data = att0_hash;
	}
	inner.n_attachments = p->n_attachments;
	inner.attachments = ainfop;
	inner_len = protobuf_c_message_get_packed_size(&inner.base);
	if (inner_len > RUF__ENV_INNER_MAX) {
		rc = RUF_E_TOO_LARGE;
		goto out;
	}
	content_len = 4 + inner_len + s1.total;
	h.size_class = ruf__env_pad_len(content_len);
	if (t != NULL)
		h.size_class += t->extra_size_class;
	if (h.size_class > RUF__ENV_SIZE_MAX) {
		rc = RUF_E_TOO_LARGE;
		goto out;
	}
	if ((rc = header_encode(&h, &hdr_buf, &hdr_len)) != 0)
		goto out;
	crypto_generichash(header_hash, 32, hdr_buf, hdr_len, NULL, 0);
	memcpy(inner_hh, header_hash, 32);
	if (t != NULL && t->bad_header_hash)
		inner_hh[0] ^= 0x01;
	if ((rc = ruf_pb_encode(&inner.base, &inner_buf, &inner_len)) != 0)
		goto out;

	/* Keys: enc_key and commitment from K; K wrapped to each queue. */
	derive_from_key(K, DOM_ENC, sizeof(DOM_ENC), h.message_id, enc_key);
	derive_from_key(K, DOM_COMMIT, sizeof(DOM_COMMIT), h.message_id, commitment);
	if (t != NULL && t->bad_commitment)
		commitment[0] ^= 0x01;
	for (size_t i = 0; i < p->n_recipients; i++) {
		if ((rc = wrap_one(K, h.message_id, rs[i]->queue, rs[i]->epoch, rs[i]->pk,
		                   eph_pk[i], wrapped[i])) != 0)
			goto out;
		ruf__wrap__init(&wraps[i]);
		wraps[i].queue = (char *)rs[i]->queue;
		wraps[i].epoch = rs[i]->epoch;
		wraps[i].ephemeral_pk.data = eph_pk[i];
		wraps[i].ephemeral_pk.len = 32;
		wraps[i].wrapped_key.data = wrapped[i];
		wraps[i].wrapped_key.len = ENV_WRAPPED_BYTES;
		wrapp[i] = &wraps[i];
	}
	s2.encrypt = true;
	crypto_secretstream_xchacha20poly1305_init_push(&s2.ss, ss_header, enc_key);

	head.header.data = hdr_buf;
	head.header.len = hdr_len;
	head.n_recipients = p->n_recipients;
	head.recipients = wrapp;
	head.commitment.data = commitment;
	head.commitment.len = 32;
	head.sender_cert.data = (uint8_t *)p->device_cert;
	head.sender_cert.len = p->device_cert_len;
	head.stream_header.data = ss_header;
	head.stream_header.len = ENV_SS_HEADER_BYTES;
	head.chunk_size = RUF__ENV_CHUNK;
	if ((rc = ruf_pb_encode(&head.base, &head_buf, &head_len)) != 0)
		goto out;
	if (head_len > RUF_ENV_HEAD_MAX) {
		rc = RUF_E_TOO_LARGE;
		goto out;
	}

	if (ruf__env_between_passes != NULL)
		ruf__env_between_passes(ruf__env_between_passes_arg);
	/* Pass 2: write the head, then the content through zstd, padding and secretstream. */
	memcpy(prefix, ENV_MAGIC, ENV_MAGIC_LEN);
	be32_put(prefix + ENV_MAGIC_LEN, (uint32_t)head_len);
	crypto_sign_init(&sst);
	crypto_sign_update(&sst, (const uint8_t *)DOM_SIG, sizeof(DOM_SIG));
	crypto_sign_update(&sst, prefix, sizeof(prefix));
	crypto_sign_update(&sst, head_buf, head_len);
	if ((rc = ruf_write_all(out_fd, prefix, sizeof(prefix))) != 0 ||
	    (rc = ruf_write_all(out_fd, head_buf, head_len)) != 0)
		goto out;
	s2.size_class = h.size_class;
	s2.n_chunks = (h.size_class + RUF__ENV_CHUNK - 1) / RUF__ENV_CHUNK;
	s2.ad = header_hash;
	s2.sig = &sst;
	s2.fd = out_fd;
	s2.t = t;
	if ((s2.buf = sodium_malloc(RUF__ENV_CHUNK)) == NULL ||
	    (s2.cbuf = malloc(RUF__ENV_CHUNK + ENV_ABYTES)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	{
		uint8_t lenb[4];
		be32_put(lenb, (uint32_t)inner_len);
		if ((rc = sink_put(&s2, lenb, 4)) != 0 ||
		    (rc = sink_put(&s2, inner_buf, inner_len)) != 0)
			goto out;
	}
	if ((rc = compress_pass(cctx, p, atts, false, &s2)) != 0)
		goto out;
	if (s2.total != content_len) {
		/* Inputs hashed the same, yet zstd gave another length: a broken invariant. */
		fprintf(stderr, "ruf: envelope: compressed length changed between passes\n");
		abort();
	}
	if ((rc = sink_finish(&s2)) != 0)
		goto out;
	crypto_sign_final_create(&sst, sig, NULL, p->sign_sk);
	if ((rc = ruf_write_all(out_fd, sig, sizeof(sig))) != 0)
		goto out;
	if (msgid != NULL)
		memcpy(msgid, h.message_id, RUF_MSGID_BYTES);
	if (content_key != NULL)
		memcpy(content_key, K, RUF_CONTENT_KEY_BYTES);
	rc = 0;
out:
	for (size_t i = 0; i < nopen; i++) {
		if (atts[i].fd != -1)
			close(atts[i].fd);
	}
	ZSTD_freeCCtx(cctx);
	sodium_free(K);
	sodium_free(s2.buf);
	free(s2.cbuf);
	sodium_memzero(&s2.ss, sizeof(s2.ss));
	sodium_memzero(enc_key, sizeof(enc_key));
	sodium_memzero(&sst, sizeof(sst));
	free(hdr_buf);
	if (inner_buf != NULL) {
		sodium_memzero(inner_buf, inner_len);
		free(inner_buf);
	}
	free(head_buf);
	return rc;
}

int
ruf_envelope_seal(const struct ruf_seal_params *p, int out_fd, uint8_t msgid[RUF_MSGID_BYTES],
                  uint8_t *content_key)
{
	return ruf__envelope_seal_tampered(p, NULL, out_fd, msgid, content_key);
}

/* ---- opening ---- */

struct env_state {
	struct ruf_env_info *info;
	Ruf__EnvelopeHead *head;
	uint8_t header_hash[32];
	uint64_t ct_off, ct_len, sig_off, total;
	int sender_err;       /* certificate parse error, reported at the sender step */
	bool sender_borrowed; /* info->sender is the caller's pre-verified certificate */
};

/* Where an envelope's bytes are: a file (pread), or memory. */
struct env_src {
	int fd;
	const uint8_t *mem; /* NULL: read fd */
	uint64_t len;       /* of mem */
};

static int
src_size(const struct env_src *src, uint64_t *size)
{
	struct stat st;

	if (src->mem != NULL) {
		*size = src->len;
		return 0;
	}
	if (fstat(src->fd, &st) == -1)
		return ruf_errno(errno);
	if (!S_ISREG(st.st_mode))
		return RUF_E_INVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
src_read(const struct env_src *src, uint8_t *buf, size_t n, uint64_t off)
{
	if (src->mem == NULL)
		return ruf_pread_all(src->fd, buf, n, off);
	if (off > src->len || n > src->len - off)
		return RUF_E_TRUNCATED;
	memcpy(buf, src->mem + off, n);
	return 0;
}

static void
env_state_clear(struct env_state *es)
{
	if (es->sender_borrowed && es->info != NULL)
		es->info->sender = NULL; /* the caller's */
	ruf_env_info_free(es->info);
	if (es->head != NULL)
		protobuf_c_message_free_unpacked(&es->head->base, NULL);
	memset(es, 0, sizeof(*es));
}

/* Step 1: magic, lengths, strict decode, field validity, exact file length. */
static int
parse_structure(const struct env_src *src, const ruf_cert *trusted, bool skip_sender,
                struct env_state *es, ruf_diag *d)
{
	uint8_t prefix[ENV_PREFIX_LEN], *hbuf = NULL;
	ProtobufCMessage *pm = NULL;
	Ruf__EnvelopeHead *hd;
	struct ruf_env_info *info;
	uint64_t size = 0;
	uint32_t head_len;
	int rc = RUF_E_ENV_FORMAT;

	memset(es, 0, sizeof(*es));
	if ((rc = src_size(src, &size)) != 0)
		return rc;
	if (size < ENV_PREFIX_LEN + 1 + RUF_SIG_BYTES) {
		ruf_diag_set(d, "file too short");
		return RUF_E_ENV_FORMAT;
	}
	if ((rc = src_read(src, prefix, sizeof(prefix), 0)) != 0)
		return rc == RUF_E_TRUNCATED ? RUF_E_ENV_FORMAT : rc;
	head_len = be32_get(prefix + ENV_MAGIC_LEN);
	if (memcmp(prefix, ENV_MAGIC, ENV_MAGIC_LEN) != 0 || head_len < 1 ||
	    head_len > RUF_ENV_HEAD_MAX ||
	    size < ENV_PREFIX_LEN + (uint64_t)head_len + RUF_SIG_BYTES) {
		ruf_diag_set(d, "bad magic or head length");
		return RUF_E_ENV_FORMAT;
	}
	if ((hbuf = malloc(head_len)) == NULL)
		return RUF_E_NOMEM;
	if ((rc = src_read(src, hbuf, head_len, ENV_PREFIX_LEN)) != 0) {
		rc = rc == RUF_E_TRUNCATED ? RUF_E_ENV_FORMAT : rc;
		goto out;
	}
	if ((rc = ruf_pb_decode(&ruf__envelope_head__descriptor, hbuf, head_len, RUF_ENV_HEAD_MAX,
	                        &pm)) != 0) {
		ruf_diag_set(d, "head does not decode");
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_ENV_FORMAT;
		goto out;
	}
	hd = (Ruf__EnvelopeHead *)pm;
	if ((info = calloc(1, sizeof(*info))) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	es->info = info;
	es->head = hd;
	pm = NULL;
	if ((rc = header_decode(hd->header.data, hd->header.len, &info->hdr, d)) != 0)
		goto out;
	rc = RUF_E_ENV_FORMAT;
	if (hd->n_recipients < 1 || hd->n_recipients > RUF_ENV_MAX_RECIPIENTS) {
		ruf_diag_set(d, "recipient count");
		goto out;
	}
	for (size_t i = 0; i < hd->n_recipients; i++) {
		const Ruf__Wrap *w = hd->recipients[i];
		if (!ruf_is_queue_name(w->queue) || w->epoch < 1 || w->ephemeral_pk.len != 32 ||
		    w->wrapped_key.len != ENV_WRAPPED_BYTES ||
		    (i > 0 && strcmp(hd->recipients[i - 1]->queue, w->queue) >= 0)) {
			ruf_diag_set(d, "recipient %zu", i);
			goto out;
		}
		strcpy(info->recipients[i].queue, w->queue);
		info->recipients[i].epoch = w->epoch;
	}
	info->n_recipients = hd->n_recipients;
	if (hd->commitment.len != 32 || hd->stream_header.len != ENV_SS_HEADER_BYTES ||
	    hd->chunk_size != RUF__ENV_CHUNK || hd->sender_cert.len < 1 ||
	    hd->sender_cert.len > RUF_CERT_MAX) {
		ruf_diag_set(d, "head field lengths");
		goto out;
	}
	es->ct_off = ENV_PREFIX_LEN + (uint64_t)head_len;
	es->ct_len = ruf__env_ct_len(info->hdr.size_class);
	es->sig_off = es->ct_off + es->ct_len;
	es->total = es->sig_off + RUF_SIG_BYTES;
	if (size != es->total) {
		ruf_diag_set(d, "file is %llu bytes, the head implies %llu",
		             (unsigned long long)size, (unsigned long long)es->total);
		goto out;
	}
	info->total_len = es->total;
	if ((info->header_raw = malloc(hd->header.len)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	memcpy(info->header_raw, hd->header.data, hd->header.len);
	info->header_len = hd->header.len;
	crypto_generichash(es->header_hash, 32, hd->header.data, hd->header.len, NULL, 0);
	if (skip_sender) {
		/* The caller wants the envelope's identity only (ruf_envelope_identity). */
	} else if (trusted != NULL && trusted->rawlen == hd->sender_cert.len &&
	           memcmp(trusted->raw, hd->sender_cert.data, trusted->rawlen) == 0) {
		/* The caller parsed and verified these exact bytes already. */
		info->sender = (ruf_cert *)trusted;
		es->sender_borrowed = true;
	} else {
		es->sender_err =
		    ruf_cert_parse(hd->sender_cert.data, hd->sender_cert.len, &info->sender);
	}
	if (es->sender_err == RUF_E_NOMEM) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	rc = 0;
out:
	free(hbuf);
	if (pm != NULL)
		protobuf_c_message_free_unpacked(pm, NULL);
	if (rc != 0)
		env_state_clear(es);
	return rc;
}

/* Steps 2 and 3: the sender certificate, and the header against it. */
static int
check_sender(const struct env_state *es, const ruf_cert *root, const ruf_directory *dir,
             uint64_t now, ruf_diag *d)
{
	const struct ruf_env_header *h = &es->info->hdr;
	const ruf_cert *c = es->info->sender;
	int rc, role = h->kind == RUF_KIND_REPLY ? RUF_ROLE_DESK : RUF_ROLE_DEVICE;

	if (es->sender_err != 0) {
		ruf_diag_set(d, "sender certificate: %s", ruf_strerror(es->sender_err));
		return RUF_E_ENV_SENDER;
	}
	if (root == NULL)
		return RUF_E_INVAL;
	rc = es->sender_borrowed ? ruf_cert_reverify(c, root, now) : ruf_cert_verify(c, root, now);
	if (rc != 0 || (rc = ruf_cert_check_role(c, role)) != 0) {
		ruf_diag_set(d, "sender certificate: %s", ruf_strerror(rc));
		return RUF_E_ENV_SENDER;
	}
	if (dir != NULL && ruf_directory_is_revoked(dir, c->serial)) {
		ruf_diag_set(d, "sender certificate: %s", ruf_strerror(RUF_E_CERT_REVOKED));
		return RUF_E_ENV_SENDER;
	}
	if (role == RUF_ROLE_DEVICE && !ruf_cert_permits_situation(c, h->situation)) {
		ruf_diag_set(d, "sender may not report on situation %s", h->situation);
		return RUF_E_CERT_PERMISSION;
	}
	if (h->device_serial != c->serial ||
	    (role == RUF_ROLE_DEVICE && c->country != NULL && c->country[0] != '\0' &&
	     strcmp(c->country, h->country) != 0)) {
		ruf_diag_set(d, "header names serial %llu country %s",
		             (unsigned long long)h->device_serial, h->country);
		return RUF_E_ENV_SENDER_MISMATCH;
	}
	return 0;
}

/*
 * Reads the whole file once: BLAKE2b-256 of every byte into hash and, if sst
 * is set, every byte before the signature into the Ed25519ph state.
 */
static int
hash_file(const struct env_src *src, const struct env_state *es, crypto_sign_state *sst,
          uint8_t hash[32])
{
	crypto_generichash_state b2;
	uint8_t *buf = NULL;
	uint64_t off = 0;
	int rc = 0;

	crypto_generichash_init(&b2, NULL, 0, 32);
	if (sst != NULL) {
		crypto_sign_init(sst);
		crypto_sign_update(sst, (const uint8_t *)DOM_SIG, sizeof(DOM_SIG));
	}
	if (src->mem != NULL) {
		/* parse_structure checked len == total: hash in place. */
		crypto_generichash_update(&b2, src->mem, es->total);
		if (sst != NULL)
			crypto_sign_update(sst, src->mem, es->sig_off);
		crypto_generichash_final(&b2, hash, 32);
		return 0;
	}
	if ((buf = malloc(ENV_IO_BUF)) == NULL)
		return RUF_E_NOMEM;
	while (off < es->total) {
		size_t k = es->total - off < ENV_IO_BUF ? (size_t)(es->total - off) : ENV_IO_BUF;
		if ((rc = ruf_pread_all(src->fd, buf, k, off)) != 0) {
			rc = rc == RUF_E_TRUNCATED ? RUF_E_ENV_CHANGED : rc;
			goto out;
		}
		crypto_generichash_update(&b2, buf, k);
		if (sst != NULL && off < es->sig_off)
			crypto_sign_update(sst, buf,
			                   es->sig_off - off < k ? (size_t)(es->sig_off - off) : k);
		off += k;
	}
	crypto_generichash_final(&b2, hash, 32);
out:
	free(buf);
	return rc;
}

static int
check_signature(const struct env_src *src, struct env_state *es)
{
	crypto_sign_state sst;
	uint8_t sig[RUF_SIG_BYTES];
	int rc;

	if ((rc = hash_file(src, es, &sst, es->info->hash)) != 0)
		return rc;
	if ((rc = src_read(src, sig, sizeof(sig), es->sig_off)) != 0)
		return rc == RUF_E_TRUNCATED ? RUF_E_ENV_CHANGED : rc;
	if (crypto_sign_final_verify(&sst, sig, es->info->sender->sign_pk) != 0)
		return RUF_E_ENV_SIGNATURE;
	return 0;
}

static int
verify_src(const struct env_src *src, const ruf_cert *trusted, const ruf_cert *root,
           const ruf_directory *dir, uint64_t now, ruf_diag *d, struct env_state *es)
{
	int rc;

	if ((rc = parse_structure(src, trusted, false, es, d)) != 0)
		return rc;
	if ((rc = check_sender(es, root, dir, now, d)) != 0 ||
	    (rc = check_signature(src, es)) != 0) {
		env_state_clear(es);
		return rc;
	}
	return 0;
}

static int
verify_common(int fd, const ruf_cert *root, const ruf_directory *dir, uint64_t now, ruf_diag *d,
              struct env_state *es)
{
	struct env_src src = {.fd = fd};

	return verify_src(&src, NULL, root, dir, now, d, es);
}

int
ruf_envelope_inspect(int fd, struct ruf_env_info **out)
{
	struct env_state es;
	struct env_src src = {.fd = fd};
	int rc;

	*out = NULL;
	if ((rc = parse_structure(&src, NULL, false, &es, NULL)) != 0)
		return rc;
	if (es.sender_err != 0) {
		rc = RUF_E_ENV_SENDER;
		goto out;
	}
	if ((rc = hash_file(&src, &es, NULL, es.info->hash)) != 0)
		goto out;
	*out = es.info;
	es.info = NULL;
out:
	env_state_clear(&es);
	return rc;
}

int
ruf_envelope_identity(int fd, uint8_t id[RUF_MSGID_BYTES], uint8_t hash[32], uint64_t *total)
{
	struct env_state es;
	struct env_src src = {.fd = fd};
	int rc;

	if ((rc = parse_structure(&src, NULL, true, &es, NULL)) != 0)
		return rc;
	if ((rc = hash_file(&src, &es, NULL, hash)) == 0) {
		memcpy(id, es.info->hdr.message_id, RUF_MSGID_BYTES);
		*total = es.total;
	}
	env_state_clear(&es);
	return rc;
}

int
ruf_envelope_verify_diag(int fd, const ruf_cert *root, const ruf_directory *dir, uint64_t now,
                         ruf_diag *d, struct ruf_env_info **out)
{
	struct env_state es;
	int rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = verify_common(fd, root, dir, now, d, &es)) != 0)
		return rc;
	if (out != NULL) {
		*out = es.info;
		es.info = NULL;
	}
	env_state_clear(&es);
	return 0;
}

int
ruf_envelope_verify(int fd, const ruf_cert *root, const ruf_directory *dir, uint64_t now,
                    struct ruf_env_info **out)
{
	return ruf_envelope_verify_diag(fd, root, dir, now, NULL, out);
}

int
ruf_envelope_verify_mem(const uint8_t *buf, size_t len, const ruf_cert *sender,
                        const ruf_cert *root, const ruf_directory *dir, uint64_t now, ruf_diag *d,
                        struct ruf_env_info **out)
{
	struct env_src src = {.fd = -1, .mem = buf, .len = len};
	struct env_state es;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (buf == NULL)
		return RUF_E_INVAL;
	if ((rc = verify_src(&src, sender, root, dir, now, d, &es)) != 0)
		return rc;
	if (out != NULL) {
		if (es.sender_borrowed)
			es.info->sender = NULL; /* the caller's: do not hand it out twice */
		es.sender_borrowed = false;
		*out = es.info;
		es.info = NULL;
	}
	env_state_clear(&es);
	return 0;
}

/* Step 5: find a wrap this keystore can open; the content key into K. */
static int
find_and_unwrap(const struct env_state *es, const ruf_keystore *ks, uint8_t *K, char *queue)
{
	bool have_queue = false, have_epoch = false;
	int rc;

	for (size_t i = 0; i < es->head->n_recipients; i++) {
		const Ruf__Wrap *w = es->head->recipients[i];
		if (ruf_keystore_find(ks, RUF_KEY_QUEUE, w->queue, 0) != NULL)
			have_queue = true;
		if (ruf_keystore_find(ks, RUF_KEY_QUEUE, w->queue, w->epoch) != NULL)
			have_epoch = true;
	}
	if (!have_queue)
		return RUF_E_ENV_NOT_RECIPIENT;
	if (!have_epoch)
		return RUF_E_ENV_EPOCH;
	rc = RUF_E_ENV_UNWRAP;
	for (size_t i = 0; i < es->head->n_recipients; i++) {
		const Ruf__Wrap *w = es->head->recipients[i];
		const struct ruf_key *k = ruf_keystore_find(ks, RUF_KEY_QUEUE, w->queue, w->epoch);
		if (k == NULL || k->epoch != w->epoch)
			continue;
		if (unwrap_one(w, k, es->info->hdr.message_id, K) == 0) {
			strcpy(queue, w->queue);
			return 0;
		}
	}
	return rc;
}

/*
 * Pass 2: re-reads the file, decrypting the chunks into the content parser,
 * and checks every byte hashes as in pass 1 (ENV_CHANGED outranks the rest:
 * any other result would be about bytes nobody verified).
 */
static int
decrypt_pass(int fd, const struct env_state *es, const uint8_t enc_key[32],
             struct ruf__env_content *cc)
{
	crypto_secretstream_xchacha20poly1305_state ss;
	crypto_generichash_state b2;
	uint64_t n_chunks = (es->info->hdr.size_class + RUF__ENV_CHUNK - 1) / RUF__ENV_CHUNK;
	uint8_t *cbuf = NULL, *pbuf = NULL, *buf = NULL, hash[32];
	uint64_t off;
	int rc = RUF_E_NOMEM, err = 0;
	struct stat st;

	if ((cbuf = malloc(RUF__ENV_CHUNK + ENV_ABYTES)) == NULL ||
	    (pbuf = sodium_malloc(RUF__ENV_CHUNK)) == NULL || (buf = malloc(ENV_IO_BUF)) == NULL)
		goto out;
	crypto_generichash_init(&b2, NULL, 0, 32);
	for (off = 0; off < es->ct_off;) {
		size_t k = es->ct_off - off < ENV_IO_BUF ? (size_t)(es->ct_off - off) : ENV_IO_BUF;
		if ((rc = ruf_pread_all(fd, buf, k, off)) != 0)
			goto changed;
		crypto_generichash_update(&b2, buf, k);
		off += k;
	}
	if (crypto_secretstream_xchacha20poly1305_init_pull(&ss, es->head->stream_header.data,
	                                                    enc_key) != 0)
		err = RUF_E_ENV_DECRYPT;
	for (uint64_t i = 0; i < n_chunks; i++) {
		uint64_t plen = es->info->hdr.size_class - i * RUF__ENV_CHUNK;
		size_t clen;
		unsigned long long mlen;
		unsigned char tag;
		bool last = i + 1 == n_chunks;

		if (plen > RUF__ENV_CHUNK)
			plen = RUF__ENV_CHUNK;
		clen = (size_t)plen + ENV_ABYTES;
		if ((rc = ruf_pread_all(fd, cbuf, clen, off)) != 0)
			goto changed;
		crypto_generichash_update(&b2, cbuf, clen);
		off += clen;
		if (err != 0)
			continue; /* keep hashing: a changed file outranks the failure */
		if (crypto_secretstream_xchacha20poly1305_pull(
		        &ss, pbuf, &mlen, &tag, cbuf, clen, es->header_hash, ENV_HASH_BYTES) != 0) {
			err = RUF_E_ENV_DECRYPT;
			continue;
		}
		if (last ? tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL
		         : tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
			err = (last && tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) ||
			              (!last &&
			               tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
			          ? RUF_E_ENV_TRUNCATED
			          : RUF_E_ENV_DECRYPT;
			continue;
		}
		if ((rc = ruf__env_content_feed(cc, pbuf, (size_t)mlen)) != 0)
			goto out;
	}
	if ((rc = ruf_pread_all(fd, buf, RUF_SIG_BYTES, off)) != 0)
		goto changed;
	crypto_generichash_update(&b2, buf, RUF_SIG_BYTES);
	crypto_generichash_final(&b2, hash, 32);
	if (fstat(fd, &st) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	if ((uint64_t)st.st_size != es->total || memcmp(hash, es->info->hash, 32) != 0)
		goto changed;
	rc = err != 0 ? err : ruf__env_content_finish(cc);
	goto out;
changed:
	rc = rc == 0 || rc == RUF_E_TRUNCATED ? RUF_E_ENV_CHANGED : rc;
out:
	sodium_memzero(&ss, sizeof(ss));
	free(cbuf);
	sodium_free(pbuf);
	free(buf);
	return rc;
}

int
ruf_envelope_open_diag(int fd, const struct ruf_open_ctx *ctx, ruf_diag *d, struct ruf_opened **out)
{
	struct env_state es;
	struct ruf_opened *o = NULL;
	struct ruf__env_content *cc = NULL;
	const char *queues[RUF_ENV_MAX_RECIPIENTS];
	uint32_t epochs[RUF_ENV_MAX_RECIPIENTS];
	uint8_t *K = NULL, enc_key[32], commitment[32];
	int dirfd = -1, rc;

	*out = NULL;
	if (ctx == NULL || ctx->ks == NULL)
		return RUF_E_INVAL;
	if ((rc = verify_common(fd, ctx->root, ctx->dir, ctx->now, d, &es)) != 0)
		return rc;
	if ((o = calloc(1, sizeof(*o))) == NULL || (K = sodium_malloc(32)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	if ((rc = find_and_unwrap(&es, ctx->ks, K, o->queue)) != 0)
		goto out;
	derive_from_key(K, DOM_COMMIT, sizeof(DOM_COMMIT), es.info->hdr.message_id, commitment);
	if (sodium_memcmp(commitment, es.head->commitment.data, 32) != 0) {
		rc = RUF_E_ENV_COMMITMENT;
		goto out;
	}
	derive_from_key(K, DOM_ENC, sizeof(DOM_ENC), es.info->hdr.message_id, enc_key);
	if (ctx->attach_dir != NULL &&
	    (dirfd = open(ctx->attach_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	for (size_t i = 0; i < es.info->n_recipients; i++) {
		queues[i] = es.info->recipients[i].queue;
		epochs[i] = es.info->recipients[i].epoch;
	}
	{
		struct ruf__env_expect e = {
		    .message_id = es.info->hdr.message_id,
		    .header_hash = es.header_hash,
		    .queues = queues,
		    .epochs = epochs,
		    .n_recipients = es.info->n_recipients,
		    .size_class = es.info->hdr.size_class,
		    .attach_dirfd = dirfd,
		};
		if ((rc = ruf__env_content_new(&e, &cc)) != 0)
			goto out;
	}
	if (ruf__env_between_passes != NULL)
		ruf__env_between_passes(ruf__env_between_passes_arg);
	if ((rc = decrypt_pass(fd, &es, enc_key, cc)) != 0)
		goto out;
	if ((rc = ruf__env_content_take(cc, ctx->attach_dir, o)) != 0)
		goto out;
	o->info = es.info;
	es.info = NULL;
	*out = o;
	o = NULL;
out:
	ruf__env_content_free(cc);
	if (dirfd != -1)
		close(dirfd);
	sodium_free(K);
	sodium_memzero(enc_key, sizeof(enc_key));
	ruf_opened_free(o);
	env_state_clear(&es);
	return rc;
}

int
ruf_envelope_open(int fd, const struct ruf_open_ctx *ctx, struct ruf_opened **out)
{
	return ruf_envelope_open_diag(fd, ctx, NULL, out);
}

void
ruf_env_info_free(struct ruf_env_info *info)
{
	if (info == NULL)
		return;
	free(info->header_raw);
	ruf_cert_free(info->sender);
	free(info);
}

void
ruf_opened_free(struct ruf_opened *o)
{
	if (o == NULL)
		return;
	ruf_env_info_free(o->info);
	if (o->report != NULL) {
		sodium_memzero(o->report, o->report_len);
		free(o->report);
	}
	for (size_t i = 0; i < o->n_attachments; i++) {
		free(o->attachments[i].name);
		free(o->attachments[i].media_type);
		free(o->attachments[i].saved_path);
	}
	free(o->attachments);
	free(o);
}
