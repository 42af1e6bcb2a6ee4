/*
 * cert.c - ruf certificates: parse, verify, issue.
 *
 * The wire format is in docs/PROTOCOL.md. Parsing checks the
 * structure completely (both protobuf layers strictly, every field's range)
 * before any signature is looked at, so ruf_cert_verify() only has to deal
 * with well-formed certificates.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "cert.pb-c.h"
#include "err.h"
#include "pb.h"
#include "util.h"

/* "ruf-cert-v1" and its NUL: sizeof counts the terminator. */
static const char cert_domain[] = "ruf-cert-v1";
#define CERT_DOMAIN_LEN sizeof(cert_domain)

#define CERT_VERSION 1
#define CERT_LIST_MAX 256  /* situations, queues */
#define CERT_EXT_MAX 32    /* extensions */
#define CERT_EXT_ID_MAX 64 /* bytes in an extension id */

static const char *const role_names[] = {
    [RUF_ROLE_ROOT] = "root",
    [RUF_ROLE_DEVICE] = "device",
    [RUF_ROLE_DESK] = "desk",
    [RUF_ROLE_SERVER] = "server",
    [RUF_ROLE_DIRSIGNER] = "directory-signer",
};

const char *
ruf_role_name(int role)
{
	if (role < RUF_ROLE_ROOT || role > RUF_ROLE_DIRSIGNER)
		return NULL;
	return role_names[role];
}

int
ruf_role_parse(const char *name)
{
	if (name == NULL)
		return 0;
	for (int r = RUF_ROLE_ROOT; r <= RUF_ROLE_DIRSIGNER; r++)
		if (strcmp(name, role_names[r]) == 0)
			return r;
	return 0;
}

void
ruf_key_id(const uint8_t sign_pk[RUF_SIGN_PK_BYTES], uint8_t out[RUF_KEY_ID_BYTES])
{
	crypto_generichash(out, RUF_KEY_ID_BYTES, sign_pk, RUF_SIGN_PK_BYTES, NULL, 0);
}

bool
ruf_kx_pk_is_valid(const uint8_t pk[RUF_KX_PK_BYTES])
{
	/*
	 * Any fixed non-zero scalar will do: libsodium clamps it, which clears
	 * the cofactor, so the product is all zero exactly when pk is zero or
	 * of small order (crypto_scalarmult then returns -1).
	 */
	static const uint8_t scalar[crypto_scalarmult_SCALARBYTES] = {
	    0x42, 0x17, 0x99, 0x01, 0xaa, 0x5c, 0x3e, 0x71, 0x08, 0xd4, 0x66,
	    0x2b, 0x90, 0xe7, 0x1f, 0xc3, 0x55, 0x0a, 0xbd, 0x84, 0x2e, 0xf1,
	    0x63, 0x39, 0xce, 0x12, 0x7b, 0xa0, 0x4d, 0x96, 0x28, 0x5f,
	};
	uint8_t q[crypto_scalarmult_BYTES];
	bool ok;

	ok = crypto_scalarmult(q, scalar, pk) == 0 && !sodium_is_zero(q, sizeof(q));
	sodium_memzero(q, sizeof(q));
	return ok;
}

bool
ruf_sign_pk_is_valid(const uint8_t pk[RUF_SIGN_PK_BYTES])
{
	/* Canonical encoding, on the curve, not of small order, main subgroup. */
	return crypto_core_ed25519_is_valid_point(pk) == 1;
}

/* Ed25519 over domain (with its NUL) || msg. */
static int
sig_message(const char *domain, size_t domainlen, const uint8_t *msg, size_t msglen, uint8_t **out,
            size_t *outlen)
{
	uint8_t *m;

	if (msglen > SIZE_MAX - domainlen)
		return RUF_E_TOO_LARGE;
	if ((m = malloc(domainlen + msglen)) == NULL)
		return RUF_E_NOMEM;
	memcpy(m, domain, domainlen);
	if (msglen > 0)
		memcpy(m + domainlen, msg, msglen);
	*out = m;
	*outlen = domainlen + msglen;
	return 0;
}

int
ruf__sign_domain(const char *domain, size_t domainlen, const uint8_t *msg, size_t msglen,
                 const uint8_t sk[RUF_SIGN_SK_BYTES], uint8_t sig[RUF_SIG_BYTES])
{
	uint8_t *m;
	size_t mlen;
	int rc;

	if ((rc = sig_message(domain, domainlen, msg, msglen, &m, &mlen)) != 0)
		return rc;
	rc = crypto_sign_detached(sig, NULL, m, mlen, sk) == 0 ? 0 : RUF_E_CRYPTO;
	free(m);
	return rc;
}

int
ruf__verify_domain(const char *domain, size_t domainlen, const uint8_t *msg, size_t msglen,
                   const uint8_t sig[RUF_SIG_BYTES], const uint8_t pk[RUF_SIGN_PK_BYTES])
{
	uint8_t *m;
	size_t mlen;
	int rc;

	if ((rc = sig_message(domain, domainlen, msg, msglen, &m, &mlen)) != 0)
		return rc;
	rc = crypto_sign_verify_detached(sig, m, mlen, pk) == 0 ? 0 : RUF_E_CRYPTO;
	free(m);
	return rc;
}

static bool
is_situation(const char *s)
{
	return strcmp(s, "*") == 0 || ruf_is_ident(s);
}

/* Extension ids: 1..64 bytes of [a-z0-9.-]. */
static bool
is_ext_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CERT_EXT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '-'))
			return false;
	}
	return true;
}

static bool
has_duplicates(char *const *v, size_t n)
{
	/* n is at most CERT_LIST_MAX, so the quadratic scan stays small. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(v[i], v[j]) == 0)
				return true;
	return false;
}

static bool
list_ok(char *const *v, size_t n, bool (*valid)(const char *))
{
	if (n > CERT_LIST_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!valid(v[i]))
			return false;
	return !has_duplicates(v, n);
}

/*
 * Every field of a decoded body, in the order of docs/PROTOCOL.md.
 * Returns RUF_E_CERT_FORMAT, RUF_E_CERT_CRITICAL or RUF_E_WEAK_KEY.
 */
static int
check_body(const Ruf__CertBody *b)
{
	if (b->version != CERT_VERSION)
		return RUF_E_CERT_FORMAT;
	if (ruf_role_name((int)b->role) == NULL)
		return RUF_E_CERT_FORMAT;
	if (b->serial < 1)
		return RUF_E_CERT_FORMAT;
	if (!ruf_is_ident(b->subject))
		return RUF_E_CERT_FORMAT;
	if (b->country[0] != '\0' && !ruf_is_ident(b->country))
		return RUF_E_CERT_FORMAT;
	if (b->not_before > b->not_after)
		return RUF_E_CERT_FORMAT;
	if (b->sign_pk.len != RUF_SIGN_PK_BYTES || b->kx_pk.len != RUF_KX_PK_BYTES)
		return RUF_E_CERT_FORMAT;
	if (b->issuer_key_id.len != RUF_KEY_ID_BYTES)
		return RUF_E_CERT_FORMAT;
	if (b->n_situations > 0 && b->role != RUF_ROLE_DEVICE)
		return RUF_E_CERT_FORMAT;
	if (b->n_queues > 0 && b->role != RUF_ROLE_DESK)
		return RUF_E_CERT_FORMAT;
	if (!list_ok(b->situations, b->n_situations, is_situation))
		return RUF_E_CERT_FORMAT;
	if (!list_ok(b->queues, b->n_queues, ruf_is_queue_name))
		return RUF_E_CERT_FORMAT;
	if (b->n_extensions > CERT_EXT_MAX)
		return RUF_E_CERT_FORMAT;
	for (size_t i = 0; i < b->n_extensions; i++) {
		if (!is_ext_id(b->extensions[i]->id))
			return RUF_E_CERT_FORMAT;
		for (size_t j = 0; j < i; j++)
			if (strcmp(b->extensions[i]->id, b->extensions[j]->id) == 0)
				return RUF_E_CERT_FORMAT;
	}
	/* Version 1 defines no extension: a critical one is never understood. */
	for (size_t i = 0; i < b->n_extensions; i++)
		if (b->extensions[i]->critical)
			return RUF_E_CERT_CRITICAL;
	if (!ruf_sign_pk_is_valid(b->sign_pk.data) || !ruf_kx_pk_is_valid(b->kx_pk.data))
		return RUF_E_WEAK_KEY;
	return 0;
}

static int
copy_list(char *const *v, size_t n, char ***out)
{
	char **l;

	*out = NULL;
	if (n == 0)
		return 0;
	if ((l = calloc(n, sizeof(*l))) == NULL)
		return RUF_E_NOMEM;
	*out = l;
	for (size_t i = 0; i < n; i++)
		if ((l[i] = strdup(v[i])) == NULL)
			return RUF_E_NOMEM;
	return 0;
}

static int
decode_err(int rc)
{
	return rc == RUF_E_NOMEM ? rc : RUF_E_CERT_FORMAT;
}

int
ruf_cert_parse(const uint8_t *buf, size_t len, ruf_cert **out)
{
	Ruf__Certificate *cm = NULL;
	Ruf__CertBody *bm = NULL;
	ruf_cert *c = NULL;
	int rc;

	*out = NULL;
	if (buf == NULL && len > 0)
		return RUF_E_INVAL;
	if (len > RUF_CERT_MAX)
		return RUF_E_CERT_FORMAT;
	rc = ruf_pb_decode(&ruf__certificate__descriptor, buf, len, RUF_CERT_MAX,
	                   (ProtobufCMessage **)&cm);
	if (rc != 0) {
		rc = decode_err(rc);
		goto out;
	}
	rc = RUF_E_CERT_FORMAT;
	if (cm->body.len == 0 || cm->signature.len != RUF_SIG_BYTES)
		goto out;
	rc = ruf_pb_decode(&ruf__cert_body__descriptor, cm->body.data, cm->body.len, RUF_CERT_MAX,
	                   (ProtobufCMessage **)&bm);
	if (rc != 0) {
		rc = decode_err(rc);
		goto out;
	}
	if ((rc = check_body(bm)) != 0)
		goto out;

	rc = RUF_E_NOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	c->role = (int)bm->role;
	c->serial = bm->serial;
	c->not_before = bm->not_before;
	c->not_after = bm->not_after;
	memcpy(c->sign_pk, bm->sign_pk.data, RUF_SIGN_PK_BYTES);
	memcpy(c->kx_pk, bm->kx_pk.data, RUF_KX_PK_BYTES);
	memcpy(c->issuer_key_id, bm->issuer_key_id.data, RUF_KEY_ID_BYTES);
	memcpy(c->signature, cm->signature.data, RUF_SIG_BYTES);
	if ((c->subject = strdup(bm->subject)) == NULL ||
	    (c->country = strdup(bm->country)) == NULL)
		goto out;
	c->n_situations = bm->n_situations;
	if (copy_list(bm->situations, bm->n_situations, &c->situations) != 0)
		goto out;
	c->n_queues = bm->n_queues;
	if (copy_list(bm->queues, bm->n_queues, &c->queues) != 0)
		goto out;
	/* The body gets its own copy so ruf_cert_free() need not know where it lives. */
	if ((c->raw = malloc(len)) == NULL || (c->body = malloc(cm->body.len)) == NULL)
		goto out;
	memcpy(c->raw, buf, len);
	c->rawlen = len;
	memcpy(c->body, cm->body.data, cm->body.len);
	c->bodylen = cm->body.len;
	*out = c;
	c = NULL;
	rc = 0;
out:
	ruf_cert_free(c);
	if (bm != NULL)
		protobuf_c_message_free_unpacked(&bm->base, NULL);
	if (cm != NULL)
		protobuf_c_message_free_unpacked(&cm->base, NULL);
	return rc;
}

static int
check_window(const ruf_cert *c, uint64_t now)
{
	if (now < c->not_before)
		return RUF_E_CERT_NOT_YET_VALID;
	if (now > c->not_after)
		return RUF_E_CERT_EXPIRED;
	return 0;
}

static bool
signed_by(const ruf_cert *c, const uint8_t pk[RUF_SIGN_PK_BYTES])
{
	return ruf__verify_domain(cert_domain, CERT_DOMAIN_LEN, c->body, c->bodylen, c->signature,
	                          pk) == 0;
}

/* ruf_cert_verify() with or without (known) the signature checks. */
static int
cert_verify(const ruf_cert *c, const ruf_cert *root, uint64_t now, bool known)
{
	uint8_t root_id[RUF_KEY_ID_BYTES];
	int rc;

	if (c == NULL || root == NULL)
		return RUF_E_INVAL;
	ruf_key_id(root->sign_pk, root_id);
	if (memcmp(c->issuer_key_id, root_id, RUF_KEY_ID_BYTES) != 0)
		return RUF_E_CERT_ISSUER;
	if (!known) {
		/* The pinned root must itself be a self-signed root certificate. */
		if (root->role != RUF_ROLE_ROOT)
			return RUF_E_CERT_ROLE;
		if (memcmp(root->issuer_key_id, root_id, RUF_KEY_ID_BYTES) != 0)
			return RUF_E_CERT_ISSUER;
		if (!signed_by(root, root->sign_pk))
			return RUF_E_CERT_SIGNATURE;
		if (c != root && !signed_by(c, root->sign_pk))
			return RUF_E_CERT_SIGNATURE;
	}
	if ((rc = check_window(c, now)) != 0)
		return rc;
	/* Nothing outlives its issuer: an expired root invalidates everything. */
	if (c != root && (rc = check_window(root, now)) != 0)
		return rc;
	return 0;
}

int
ruf_cert_verify(const ruf_cert *c, const ruf_cert *root, uint64_t now)
{
	return cert_verify(c, root, now, false);
}

int
ruf_cert_reverify(const ruf_cert *c, const ruf_cert *root, uint64_t now)
{
	return cert_verify(c, root, now, true);
}

int
ruf_cert_check_role(const ruf_cert *c, int role)
{
	return c != NULL && c->role == role ? 0 : RUF_E_CERT_ROLE;
}

int
ruf_cert_issue(const struct ruf_cert_template *t, const uint8_t issuer_sk[RUF_SIGN_SK_BYTES],
               const uint8_t issuer_pk[RUF_SIGN_PK_BYTES], uint8_t **out, size_t *outlen)
{
	Ruf__CertBody b = RUF__CERT_BODY__INIT;
	Ruf__Certificate cm = RUF__CERTIFICATE__INIT;
	uint8_t key_id[RUF_KEY_ID_BYTES], sig[RUF_SIG_BYTES];
	uint8_t *body = NULL, *raw = NULL;
	size_t bodylen, rawlen;
	ruf_cert *check = NULL;
	int rc;

	if (out == NULL || outlen == NULL)
		return RUF_E_INVAL;
	*out = NULL;
	*outlen = 0;
	if (t == NULL || issuer_sk == NULL || issuer_pk == NULL || t->subject == NULL ||
	    t->sign_pk == NULL || t->kx_pk == NULL || t->n_situations > CERT_LIST_MAX ||
	    t->n_queues > CERT_LIST_MAX || (t->n_situations > 0 && t->situations == NULL) ||
	    (t->n_queues > 0 && t->queues == NULL) || t->role < 0)
		return RUF_E_INVAL;
	for (size_t i = 0; i < t->n_situations; i++)
		if (t->situations[i] == NULL)
			return RUF_E_INVAL;
	for (size_t i = 0; i < t->n_queues; i++)
		if (t->queues[i] == NULL)
			return RUF_E_INVAL;

	ruf_key_id(issuer_pk, key_id);
	b.version = CERT_VERSION;
	b.role = (uint32_t)t->role;
	b.serial = t->serial;
	/* protobuf-c takes non-const pointers; nothing here is written through them. */
	b.subject = (char *)t->subject;
	b.country = (char *)(t->country != NULL ? t->country : "");
	b.not_before = t->not_before;
	b.not_after = t->not_after;
	b.sign_pk.data = (uint8_t *)t->sign_pk;
	b.sign_pk.len = RUF_SIGN_PK_BYTES;
	b.kx_pk.data = (uint8_t *)t->kx_pk;
	b.kx_pk.len = RUF_KX_PK_BYTES;
	b.issuer_key_id.data = key_id;
	b.issuer_key_id.len = RUF_KEY_ID_BYTES;
	b.situations = (char **)t->situations;
	b.n_situations = t->n_situations;
	b.queues = (char **)t->queues;
	b.n_queues = t->n_queues;
	if ((rc = ruf_pb_encode(&b.base, &body, &bodylen)) != 0)
		goto out;
	if ((rc = ruf__sign_domain(cert_domain, CERT_DOMAIN_LEN, body, bodylen, issuer_sk, sig)) !=
	    0)
		goto out;
	cm.body.data = body;
	cm.body.len = bodylen;
	cm.signature.data = sig;
	cm.signature.len = RUF_SIG_BYTES;
	if ((rc = ruf_pb_encode(&cm.base, &raw, &rawlen)) != 0)
		goto out;

	/* Never hand out a certificate our own parser would refuse. */
	if ((rc = ruf_cert_parse(raw, rawlen, &check)) != 0)
		goto out;
	/* A secret key that does not match issuer_pk would sign a dud. */
	if (!signed_by(check, issuer_pk)) {
		rc = RUF_E_INVAL;
		goto out;
	}
	*out = raw;
	*outlen = rawlen;
	raw = NULL;
out:
	ruf_cert_free(check);
	free(raw);
	free(body);
	return rc;
}

bool
ruf_cert_permits_situation(const ruf_cert *c, const char *s)
{
	if (c == NULL || s == NULL || c->role != RUF_ROLE_DEVICE || !ruf_is_ident(s))
		return false;
	for (size_t i = 0; i < c->n_situations; i++)
		if (strcmp(c->situations[i], "*") == 0 || strcmp(c->situations[i], s) == 0)
			return true;
	return false;
}

bool
ruf_cert_permits_queue(const ruf_cert *c, const char *q)
{
	if (c == NULL || q == NULL || c->role != RUF_ROLE_DESK)
		return false;
	for (size_t i = 0; i < c->n_queues; i++)
		if (strcmp(c->queues[i], q) == 0)
			return true;
	return false;
}

int
ruf_cert_load(const char *path, ruf_cert **out)
{
	uint8_t *buf;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = ruf_file_read(path, RUF_CERT_MAX, &buf, &len)) != 0)
		return rc;
	rc = ruf_cert_parse(buf, len, out);
	free(buf);
	return rc;
}

int
ruf_cert_dup(const ruf_cert *c, ruf_cert **out)
{
	*out = NULL;
	if (c == NULL)
		return RUF_E_INVAL;
	/* raw is the whole certificate: parsing it again is a deep copy. */
	return ruf_cert_parse(c->raw, c->rawlen, out);
}

static void
free_list(char **l, size_t n)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void
ruf_cert_free(ruf_cert *c)
{
	if (c == NULL)
		return;
	free(c->subject);
	free(c->country);
	free_list(c->situations, c->n_situations);
	free_list(c->queues, c->n_queues);
	free(c->raw);
	free(c->body);
	free(c);
}
