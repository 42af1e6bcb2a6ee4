/*
 * directory.c - the signed HQ directory: load (parse + verify), sign, look up.
 *
 * The wire format and the order of checks are in docs/PROTOCOL.md.
 * The outer layers are checked before any signature; the routing policy is
 * decoded only after the signature has verified, so its decoder never sees
 * bytes the directory signer did not vouch for.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "directory.h"
#include "directory.pb-c.h"
#include "err.h"
#include "pb.h"
#include "util.h"

/* "ruf-directory-v1" and its NUL: sizeof counts the terminator. */
static const char dir_domain[] = "ruf-directory-v1";
#define DIR_DOMAIN_LEN sizeof(dir_domain)

#define DIR_FORMAT_VERSION 2 /* 1: revoked serials without a time */
#define DIR_MAX_QUEUES 4096
#define DIR_MAX_REVOKED 262144
#define DIR_MAX_ADDRESSES 16
#define DIR_ADDRESS_MAX 255

static int
cmp_queue(const void *a, const void *b)
{
	return strcmp(((const struct ruf_dir_queue *)a)->name,
	              ((const struct ruf_dir_queue *)b)->name);
}

static int
cmp_queue_ptr(const void *a, const void *b)
{
	return cmp_queue(*(const struct ruf_dir_queue *const *)a,
	                 *(const struct ruf_dir_queue *const *)b);
}

static int
cmp_revocation(const void *a, const void *b)
{
	uint64_t x = ((const struct ruf_dir_revocation *)a)->serial;
	uint64_t y = ((const struct ruf_dir_revocation *)b)->serial;

	return x < y ? -1 : x > y;
}

/* A revocation reason: at most RUF_DIR_REASON_MAX bytes, no control characters. */
static bool
is_reason(const char *s)
{
	size_t n = strlen(s);

	if (n > RUF_DIR_REASON_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * "host:port": 1..255 printable ASCII bytes without spaces, a non-empty host
 * before the last colon, a port 1..65535 in decimal without leading zeros.
 */
static bool
is_address(const char *s)
{
	size_t n = strlen(s), colon = n, i;
	unsigned long port = 0;

	if (n == 0 || n > DIR_ADDRESS_MAX)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
		if (s[i] == ':')
			colon = i;
	}
	if (colon == n || colon == 0 || n - colon - 1 < 1 || n - colon - 1 > 5)
		return false;
	if (s[colon + 1] == '0')
		return false;
	for (i = colon + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

static void
free_hq(struct ruf_dir_hq *hq)
{
	if (hq->addresses != NULL) {
		for (size_t i = 0; i < hq->n_addresses; i++)
			free(hq->addresses[i]);
		free(hq->addresses);
	}
}

void
ruf_directory_free(ruf_directory *d)
{
	if (d == NULL)
		return;
	if (d->queues != NULL) {
		for (size_t i = 0; i < d->n_queues; i++)
			free(d->queues[i].name);
		free(d->queues);
	}
	if (d->revoked != NULL) {
		for (size_t i = 0; i < d->n_revoked; i++)
			free(d->revoked[i].reason);
		free(d->revoked);
	}
	free_hq(&d->hq);
	ruf_policy_free(d->policy);
	ruf_cert_free(d->signer);
	free(d->raw);
	free(d);
}

/* Checks and copies the queue list (strictly sorted, unique, valid keys). */
static int
take_queues(ruf_directory *d, const Ruf__DirectoryBody *b)
{
	if (b->n_queues > DIR_MAX_QUEUES)
		return RUF_E_DIR_FORMAT;
	for (size_t i = 0; i < b->n_queues; i++) {
		const Ruf__DirectoryQueue *q = b->queues[i];

		if (!ruf_is_queue_name(q->name) || q->epoch < 1 ||
		    q->public_key.len != RUF_KX_PK_BYTES)
			return RUF_E_DIR_FORMAT;
		if (i > 0 && strcmp(b->queues[i - 1]->name, q->name) >= 0)
			return RUF_E_DIR_FORMAT;
	}
	for (size_t i = 0; i < b->n_queues; i++)
		if (!ruf_kx_pk_is_valid(b->queues[i]->public_key.data))
			return RUF_E_WEAK_KEY;
	if (b->n_queues == 0)
		return 0;
	if ((d->queues = calloc(b->n_queues, sizeof(*d->queues))) == NULL)
		return RUF_E_NOMEM;
	d->n_queues = b->n_queues;
	for (size_t i = 0; i < b->n_queues; i++) {
		if ((d->queues[i].name = strdup(b->queues[i]->name)) == NULL)
			return RUF_E_NOMEM;
		d->queues[i].epoch = b->queues[i]->epoch;
		memcpy(d->queues[i].pk, b->queues[i]->public_key.data, RUF_KX_PK_BYTES);
	}
	return 0;
}

static int
take_hq(ruf_directory *d, const Ruf__DirectoryHq *h)
{
	if (h == NULL || h->noise_pk.len != RUF_KX_PK_BYTES)
		return RUF_E_DIR_FORMAT;
	if (h->next_noise_pk.len != 0 && h->next_noise_pk.len != RUF_KX_PK_BYTES)
		return RUF_E_DIR_FORMAT;
	if (h->n_addresses > DIR_MAX_ADDRESSES)
		return RUF_E_DIR_FORMAT;
	for (size_t i = 0; i < h->n_addresses; i++)
		if (!is_address(h->addresses[i]))
			return RUF_E_DIR_FORMAT;
	if (!ruf_kx_pk_is_valid(h->noise_pk.data))
		return RUF_E_WEAK_KEY;
	if (h->next_noise_pk.len != 0 && !ruf_kx_pk_is_valid(h->next_noise_pk.data))
		return RUF_E_WEAK_KEY;
	memcpy(d->hq.noise_pk, h->noise_pk.data, RUF_KX_PK_BYTES);
	if (h->next_noise_pk.len != 0) {
		d->hq.has_next = true;
		memcpy(d->hq.next_noise_pk, h->next_noise_pk.data, RUF_KX_PK_BYTES);
	}
	if (h->n_addresses == 0)
		return 0;
	if ((d->hq.addresses = calloc(h->n_addresses, sizeof(char *))) == NULL)
		return RUF_E_NOMEM;
	d->hq.n_addresses = h->n_addresses;
	for (size_t i = 0; i < h->n_addresses; i++)
		if ((d->hq.addresses[i] = strdup(h->addresses[i])) == NULL)
			return RUF_E_NOMEM;
	return 0;
}

static int
take_revoked(ruf_directory *d, const Ruf__DirectoryBody *b)
{
	Ruf__DirectoryRevocation *const *r = b->revocations;

	if (b->n_revocations > DIR_MAX_REVOKED)
		return RUF_E_DIR_FORMAT;
	/* Serials start at 1; strictly increasing means sorted and unique. */
	for (size_t i = 0; i < b->n_revocations; i++)
		if (r[i]->serial < 1 || r[i]->revoked_at < 1 || !is_reason(r[i]->reason) ||
		    (i > 0 && r[i - 1]->serial >= r[i]->serial))
			return RUF_E_DIR_FORMAT;
	if (b->n_revocations == 0)
		return 0;
	if ((d->revoked = calloc(b->n_revocations, sizeof(*d->revoked))) == NULL)
		return RUF_E_NOMEM;
	d->n_revoked = b->n_revocations;
	for (size_t i = 0; i < b->n_revocations; i++) {
		d->revoked[i].serial = r[i]->serial;
		d->revoked[i].revoked_at = r[i]->revoked_at;
		if ((d->revoked[i].reason = strdup(r[i]->reason)) == NULL)
			return RUF_E_NOMEM;
	}
	return 0;
}

/* Element counts of the repeated fields that could make decoding allocate a lot. */
struct wire_counts {
	size_t queues;    /* DirectoryBody.queues (5) */
	size_t revoked;   /* DirectoryBody.revocations (9) */
	size_t addresses; /* DirectoryHq.addresses (3), over every hq (7) */
};

static bool
wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*p == end)
			return false;
		b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/*
 * Walks a DirectoryBody (depth 0) or a DirectoryHq (depth 1) on the wire
 * without decoding it, counting elements. protobuf-c allocates every
 * element of a repeated field before we could look at the count, and a
 * 4 MiB body of two-byte empty queues would make it allocate well over a
 * hundred megabytes; this walk lets the loader refuse such input first.
 * False for anything malformed (the strict decoder would refuse it too).
 */
static bool
wire_count(const uint8_t *p, size_t len, int depth, struct wire_counts *c)
{
	const uint8_t *end = p + len;

	while (p < end) {
		uint64_t tag, v;
		uint32_t field;

		if (!wire_varint(&p, end, &tag))
			return false;
		field = (uint32_t)(tag >> 3);
		switch (tag & 7) {
		case 0:
			if (!wire_varint(&p, end, &v))
				return false;
			break;
		case 1:
		case 5:
			if ((size_t)(end - p) < ((tag & 7) == 1 ? 8u : 4u))
				return false;
			p += (tag & 7) == 1 ? 8 : 4;
			break;
		case 2:
			if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return false;
			if (depth == 0 && field == 5)
				c->queues++;
			else if (depth == 0 && field == 9)
				c->revoked++;
			else if (depth == 0 && field == 7 && !wire_count(p, (size_t)v, 1, c))
				return false;
			else if (depth == 1 && field == 3)
				c->addresses++;
			p += v;
			break;
		default:
			return false;
		}
	}
	return true;
}

static int
need_queue(const char *queue, unsigned line, void *ctx)
{
	(void)line;
	return ruf_directory_queue(ctx, queue) != NULL ? 0 : RUF_E_DIR_NO_QUEUE;
}

/*
 * The whole load. With root == NULL (only ruf_directory_sign's self-check),
 * the signer's chain and all time checks are skipped and the signature is
 * checked against the embedded signer certificate's key alone.
 */
static int
dir_load(const uint8_t *buf, size_t len, const ruf_cert *root, uint64_t now, ruf_directory **out)
{
	Ruf__SignedDirectory *sm = NULL;
	Ruf__DirectoryBody *bm = NULL;
	ruf_directory *d = NULL;
	struct wire_counts counts = {0};
	int rc;

	*out = NULL;
	if (buf == NULL && len > 0)
		return RUF_E_INVAL;
	if (len > RUF_DIRECTORY_MAX)
		return RUF_E_DIR_FORMAT;

	/* 1. Structure. */
	rc = ruf_pb_decode(&ruf__signed_directory__descriptor, buf, len, RUF_DIRECTORY_MAX,
	                   (ProtobufCMessage **)&sm);
	if (rc != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_DIR_FORMAT;
		goto out;
	}
	rc = RUF_E_DIR_FORMAT;
	if (sm->signer_cert.len == 0 || sm->body.len == 0 || sm->signature.len != RUF_SIG_BYTES)
		goto out;
	if (!wire_count(sm->body.data, sm->body.len, 0, &counts) ||
	    counts.queues > DIR_MAX_QUEUES || counts.revoked > DIR_MAX_REVOKED ||
	    counts.addresses > DIR_MAX_ADDRESSES)
		goto out;
	rc = ruf_pb_decode(&ruf__directory_body__descriptor, sm->body.data, sm->body.len,
	                   RUF_DIRECTORY_MAX, (ProtobufCMessage **)&bm);
	if (rc != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_DIR_FORMAT;
		goto out;
	}
	rc = RUF_E_DIR_FORMAT;
	if (bm->format != DIR_FORMAT_VERSION || bm->version < 1 || bm->issued_at > bm->expires_at)
		goto out;
	rc = RUF_E_NOMEM;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto out;
	d->version = bm->version;
	d->issued_at = bm->issued_at;
	d->expires_at = bm->expires_at;
	if ((rc = take_queues(d, bm)) != 0 || (rc = take_hq(d, bm->hq)) != 0 ||
	    (rc = take_revoked(d, bm)) != 0)
		goto out;

	/* 2. The signer: a directory-signer certificate valid under the root now. */
	rc = ruf_cert_parse(sm->signer_cert.data, sm->signer_cert.len, &d->signer);
	if (rc != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_DIR_SIGNER;
		goto out;
	}
	rc = RUF_E_DIR_SIGNER;
	if (root != NULL && ruf_cert_verify(d->signer, root, now) != 0)
		goto out;
	if (ruf_cert_check_role(d->signer, RUF_ROLE_DIRSIGNER) != 0)
		goto out;

	/* 3. The signature over the received body bytes. */
	rc = ruf__verify_domain(dir_domain, DIR_DOMAIN_LEN, sm->body.data, sm->body.len,
	                        sm->signature.data, d->signer->sign_pk);
	if (rc != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_DIR_SIGNATURE;
		goto out;
	}
	/* A signer the directory itself revokes cannot vouch for it. */
	if (ruf_directory_is_revoked(d, d->signer->serial)) {
		rc = RUF_E_DIR_SIGNER;
		goto out;
	}

	/* 4. Expiry (issued_at may be ahead of a field clock: not checked). */
	if (root != NULL && now > d->expires_at) {
		rc = RUF_E_DIR_EXPIRED;
		goto out;
	}

	/* 5. The policy, now authenticated, and a key for every queue it can reach. */
	rc = ruf_policy_decode(bm->policy.data, bm->policy.len, &d->policy);
	if (rc != 0) {
		d->policy = NULL;
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_DIR_FORMAT;
		goto out;
	}
	if ((rc = ruf_policy_queues(d->policy, need_queue, d)) != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_DIR_NO_QUEUE;
		goto out;
	}

	rc = RUF_E_NOMEM;
	if ((d->raw = malloc(len)) == NULL)
		goto out;
	memcpy(d->raw, buf, len);
	d->rawlen = len;
	*out = d;
	d = NULL;
	rc = 0;
out:
	ruf_directory_free(d);
	if (bm != NULL)
		protobuf_c_message_free_unpacked(&bm->base, NULL);
	if (sm != NULL)
		protobuf_c_message_free_unpacked(&sm->base, NULL);
	return rc;
}

int
ruf_directory_load_mem(const uint8_t *buf, size_t len, const ruf_cert *root, uint64_t now,
                       ruf_directory **out)
{
	if (out == NULL)
		return RUF_E_INVAL;
	*out = NULL;
	if (root == NULL)
		return RUF_E_INVAL;
	return dir_load(buf, len, root, now, out);
}

int
ruf_directory_load(const char *path, const ruf_cert *root, uint64_t now, ruf_directory **out)
{
	uint8_t *buf;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = ruf_file_read(path, RUF_DIRECTORY_MAX, &buf, &len)) != 0)
		return rc;
	rc = ruf_directory_load_mem(buf, len, root, now, out);
	free(buf);
	return rc;
}

int
ruf_directory_accept(const ruf_directory *current, const ruf_directory *candidate)
{
	if (candidate == NULL)
		return RUF_E_INVAL;
	if (current != NULL && candidate->version <= current->version)
		return RUF_E_DIR_ROLLBACK;
	return 0;
}

int
ruf_directory_sign(const struct ruf_directory_template *t, const uint8_t *signer_cert,
                   size_t signer_cert_len, const uint8_t signer_sk[RUF_SIGN_SK_BYTES],
                   uint8_t **out, size_t *outlen)
{
	Ruf__SignedDirectory sm = RUF__SIGNED_DIRECTORY__INIT;
	Ruf__DirectoryBody b = RUF__DIRECTORY_BODY__INIT;
	Ruf__DirectoryHq hq = RUF__DIRECTORY_HQ__INIT;
	const struct ruf_dir_queue **sorted = NULL;
	Ruf__DirectoryQueue *qm = NULL, **qp = NULL;
	struct ruf_dir_revocation *revoked = NULL;
	Ruf__DirectoryRevocation *rm = NULL, **rp = NULL;
	uint8_t *policy = NULL, *body = NULL, *raw = NULL;
	size_t policylen = 0, bodylen, rawlen;
	uint8_t sig[RUF_SIG_BYTES], pk[RUF_SIGN_PK_BYTES];
	ruf_cert *signer = NULL;
	ruf_directory *check = NULL;
	int rc = RUF_E_INVAL;

	if (out == NULL || outlen == NULL)
		return RUF_E_INVAL;
	*out = NULL;
	*outlen = 0;
	if (t == NULL || t->hq == NULL || t->policy == NULL || signer_cert == NULL ||
	    signer_sk == NULL || (t->n_queues > 0 && t->queues == NULL) ||
	    (t->n_revoked > 0 && t->revoked == NULL) || t->n_queues > DIR_MAX_QUEUES ||
	    t->n_revoked > DIR_MAX_REVOKED || t->hq->n_addresses > DIR_MAX_ADDRESSES ||
	    (t->hq->n_addresses > 0 && t->hq->addresses == NULL))
		return RUF_E_INVAL;
	for (size_t i = 0; i < t->n_queues; i++)
		if (t->queues[i].name == NULL)
			return RUF_E_INVAL;
	for (size_t i = 0; i < t->hq->n_addresses; i++)
		if (t->hq->addresses[i] == NULL)
			return RUF_E_INVAL;
	for (size_t i = 0; i < t->n_revoked; i++)
		if (t->revoked[i].serial < 1 || t->revoked[i].revoked_at < 1 ||
		    (t->revoked[i].reason != NULL && !is_reason(t->revoked[i].reason)))
			return RUF_E_INVAL;

	/* The signer key must be the one its certificate names. */
	if ((rc = ruf_cert_parse(signer_cert, signer_cert_len, &signer)) != 0)
		goto out;
	if ((rc = ruf_cert_check_role(signer, RUF_ROLE_DIRSIGNER)) != 0)
		goto out;
	crypto_sign_ed25519_sk_to_pk(pk, signer_sk);
	if (memcmp(pk, signer->sign_pk, RUF_SIGN_PK_BYTES) != 0) {
		rc = RUF_E_INVAL;
		goto out;
	}

	/* Sort copies for the caller; duplicates are a caller error. */
	rc = RUF_E_NOMEM;
	if (t->n_queues > 0) {
		if ((sorted = calloc(t->n_queues, sizeof(*sorted))) == NULL ||
		    (qm = calloc(t->n_queues, sizeof(*qm))) == NULL ||
		    (qp = calloc(t->n_queues, sizeof(*qp))) == NULL)
			goto out;
		for (size_t i = 0; i < t->n_queues; i++)
			sorted[i] = &t->queues[i];
		qsort(sorted, t->n_queues, sizeof(*sorted), cmp_queue_ptr);
		for (size_t i = 0; i < t->n_queues; i++) {
			if (i > 0 && strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
				rc = RUF_E_INVAL;
				goto out;
			}
			ruf__directory_queue__init(&qm[i]);
			qm[i].name = sorted[i]->name;
			qm[i].epoch = sorted[i]->epoch;
			qm[i].public_key.data = (uint8_t *)sorted[i]->pk;
			qm[i].public_key.len = RUF_KX_PK_BYTES;
			qp[i] = &qm[i];
		}
	}
	if (t->n_revoked > 0) {
		if ((revoked = malloc(t->n_revoked * sizeof(*revoked))) == NULL ||
		    (rm = calloc(t->n_revoked, sizeof(*rm))) == NULL ||
		    (rp = calloc(t->n_revoked, sizeof(*rp))) == NULL)
			goto out;
		memcpy(revoked, t->revoked, t->n_revoked * sizeof(*revoked));
		qsort(revoked, t->n_revoked, sizeof(*revoked), cmp_revocation);
		for (size_t i = 0; i < t->n_revoked; i++) {
			if (i > 0 && revoked[i - 1].serial == revoked[i].serial) {
				rc = RUF_E_INVAL;
				goto out;
			}
			ruf__directory_revocation__init(&rm[i]);
			rm[i].serial = revoked[i].serial;
			rm[i].revoked_at = revoked[i].revoked_at;
			/* protobuf-c's empty string default, never written. */
			rm[i].reason = revoked[i].reason != NULL ? revoked[i].reason
			                                         : (char *)protobuf_c_empty_string;
			rp[i] = &rm[i];
		}
	}
	if ((rc = ruf_policy_encode(t->policy, &policy, &policylen)) != 0)
		goto out;

	hq.noise_pk.data = (uint8_t *)t->hq->noise_pk;
	hq.noise_pk.len = RUF_KX_PK_BYTES;
	if (t->hq->has_next) {
		hq.next_noise_pk.data = (uint8_t *)t->hq->next_noise_pk;
		hq.next_noise_pk.len = RUF_KX_PK_BYTES;
	}
	hq.addresses = t->hq->addresses;
	hq.n_addresses = t->hq->n_addresses;

	b.format = DIR_FORMAT_VERSION;
	b.version = t->version;
	b.issued_at = t->issued_at;
	b.expires_at = t->expires_at;
	b.queues = qp;
	b.n_queues = t->n_queues;
	b.policy.data = policy;
	b.policy.len = policylen;
	b.hq = &hq;
	b.revocations = rp;
	b.n_revocations = t->n_revoked;
	if ((rc = ruf_pb_encode(&b.base, &body, &bodylen)) != 0)
		goto out;
	if ((rc = ruf__sign_domain(dir_domain, DIR_DOMAIN_LEN, body, bodylen, signer_sk, sig)) != 0)
		goto out;
	sm.signer_cert.data = (uint8_t *)signer_cert;
	sm.signer_cert.len = signer_cert_len;
	sm.body.data = body;
	sm.body.len = bodylen;
	sm.signature.data = sig;
	sm.signature.len = RUF_SIG_BYTES;
	if ((rc = ruf_pb_encode(&sm.base, &raw, &rawlen)) != 0)
		goto out;

	/* Never publish a directory a client would refuse for its structure. */
	if ((rc = dir_load(raw, rawlen, NULL, 0, &check)) != 0)
		goto out;
	*out = raw;
	*outlen = rawlen;
	raw = NULL;
out:
	ruf_directory_free(check);
	ruf_cert_free(signer);
	free(raw);
	free(body);
	free(policy);
	free(rp);
	free(rm);
	free(revoked);
	free(qp);
	free(qm);
	free(sorted);
	return rc;
}

const struct ruf_dir_queue *
ruf_directory_queue(const ruf_directory *d, const char *name)
{
	struct ruf_dir_queue key;

	if (d == NULL || name == NULL || d->n_queues == 0)
		return NULL;
	/* bsearch takes a mutable key; name is only compared. */
	key.name = (char *)name;
	return bsearch(&key, d->queues, d->n_queues, sizeof(*d->queues), cmp_queue);
}

const struct ruf_dir_revocation *
ruf_directory_revocation(const ruf_directory *d, uint64_t serial)
{
	struct ruf_dir_revocation key = {.serial = serial};

	if (d == NULL || d->n_revoked == 0)
		return NULL;
	return bsearch(&key, d->revoked, d->n_revoked, sizeof(*d->revoked), cmp_revocation);
}

bool
ruf_directory_is_revoked(const ruf_directory *d, uint64_t serial)
{
	return ruf_directory_revocation(d, serial) != NULL;
}

enum ruf_revocation_verdict
ruf_directory_judge(const ruf_directory *d, uint64_t serial, uint64_t accepted_at,
                    const struct ruf_dir_revocation **rev)
{
	const struct ruf_dir_revocation *r = ruf_directory_revocation(d, serial);

	if (rev != NULL)
		*rev = r;
	if (r == NULL)
		return RUF_REV_GOOD;
	/* 0 is "no time we can trust": never enough to clear a revoked sender. */
	if (accepted_at != 0 && accepted_at < r->revoked_at)
		return RUF_REV_BEFORE;
	return RUF_REV_FLAGGED;
}
