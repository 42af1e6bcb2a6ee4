/*
 * test_cert.c - certificates: round trips, strict parsing, verification order,
 * weak keys, and the known-answer vectors in tests/vectors/cert/.
 *
 * RUF_WRITE_VECTORS=1 rewrites the vectors (only when the format changes on
 * purpose); RUF_WRITE_CORPUS=DIR writes fuzzing seeds for fuzz_cert.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cert.h"
#include "cert.pb-c.h"
#include "err.h"
#include "pb.h"
#include "util.h"

#define NB 1790000000u /* 2026-09-21 */
#define NA 1830000000u /* 2027-12-28 */

struct ident {
	uint8_t sign_pk[RUF_SIGN_PK_BYTES];
	uint8_t sign_sk[RUF_SIGN_SK_BYTES];
	uint8_t kx_pk[RUF_KX_PK_BYTES];
};

/* Deterministic keys: every byte of both seeds is tag. */
static void
ident_make(struct ident *id, uint8_t tag)
{
	uint8_t seed[crypto_sign_SEEDBYTES], kx_sk[crypto_scalarmult_SCALARBYTES];

	memset(seed, tag, sizeof(seed));
	memset(kx_sk, tag ^ 0x5a, sizeof(kx_sk));
	assert_int_equal(crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, seed), 0);
	assert_int_equal(crypto_scalarmult_base(id->kx_pk, kx_sk), 0);
}

static struct ident root_id, dev_id, desk_id, other_id;

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	ident_make(&root_id, 0x01);
	ident_make(&dev_id, 0x02);
	ident_make(&desk_id, 0x03);
	ident_make(&other_id, 0x04);
	return 0;
}

static struct ruf_cert_template
tmpl(int role, uint64_t serial, const char *subject, const struct ident *id)
{
	struct ruf_cert_template t = {
	    .role = role,
	    .serial = serial,
	    .subject = subject,
	    .not_before = NB,
	    .not_after = NA,
	    .sign_pk = id->sign_pk,
	    .kx_pk = id->kx_pk,
	};
	return t;
}

static void
issue_root(const struct ident *id, uint8_t **out, size_t *len)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_ROOT, 1, "hq-root", id);

	assert_int_equal(ruf_cert_issue(&t, id->sign_sk, id->sign_pk, out, len), 0);
}

static const char *const dev_situations[] = {"darfur", "kordofan"};
static const char *const desk_queues[] = {"hrt", "itf.darfur", "sag"};

static void
issue_device(const struct ident *issuer, uint8_t **out, size_t *len)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_DEVICE, 42, "rc-sd-1", &dev_id);

	t.country = "sd";
	t.situations = dev_situations;
	t.n_situations = 2;
	assert_int_equal(ruf_cert_issue(&t, issuer->sign_sk, issuer->sign_pk, out, len), 0);
}

static void
issue_desk(uint8_t **out, size_t *len)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_DESK, 43, "hrt-desk", &desk_id);

	t.queues = desk_queues;
	t.n_queues = 3;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, out, len), 0);
}

static ruf_cert *
parse_ok(const uint8_t *buf, size_t len)
{
	ruf_cert *c = NULL;

	assert_int_equal(ruf_cert_parse(buf, len, &c), 0);
	assert_non_null(c);
	return c;
}

static ruf_cert *
load_root(void)
{
	uint8_t *raw;
	size_t len;
	ruf_cert *r;

	issue_root(&root_id, &raw, &len);
	r = parse_ok(raw, len);
	free(raw);
	return r;
}

/* Signs arbitrary body bytes the way an issuer would and wraps them. */
static void
wrap_body(const uint8_t *body, size_t bodylen, const struct ident *issuer, uint8_t **out,
          size_t *len)
{
	Ruf__Certificate cm = RUF__CERTIFICATE__INIT;
	uint8_t sig[RUF_SIG_BYTES];

	assert_int_equal(ruf__sign_domain("ruf-cert-v1", 12, body, bodylen, issuer->sign_sk, sig),
	                 0);
	cm.body.data = (uint8_t *)body;
	cm.body.len = bodylen;
	cm.signature.data = sig;
	cm.signature.len = sizeof(sig);
	assert_int_equal(ruf_pb_encode(&cm.base, out, len), 0);
}

/* A device body filled in with protobuf-c directly, for fields issue cannot set. */
static void
device_body(Ruf__CertBody *b, uint8_t key_id[RUF_KEY_ID_BYTES])
{
	ruf__cert_body__init(b);
	ruf_key_id(root_id.sign_pk, key_id);
	b->version = 1;
	b->role = RUF_ROLE_DEVICE;
	b->serial = 7;
	b->subject = "rc-sd-2";
	b->not_before = NB;
	b->not_after = NA;
	b->sign_pk.data = dev_id.sign_pk;
	b->sign_pk.len = 32;
	b->kx_pk.data = dev_id.kx_pk;
	b->kx_pk.len = 32;
	b->issuer_key_id.data = key_id;
	b->issuer_key_id.len = RUF_KEY_ID_BYTES;
}

static int
parse_body(const Ruf__CertBody *b)
{
	uint8_t *body, *raw;
	size_t bodylen, len;
	ruf_cert *c = NULL;
	int rc;

	assert_int_equal(ruf_pb_encode(&b->base, &body, &bodylen), 0);
	wrap_body(body, bodylen, &root_id, &raw, &len);
	rc = ruf_cert_parse(raw, len, &c);
	if (rc == 0) {
		ruf_cert *root = load_root();
		assert_int_equal(ruf_cert_verify(c, root, NB), 0);
		ruf_cert_free(root);
	} else {
		assert_null(c);
	}
	ruf_cert_free(c);
	free(raw);
	free(body);
	return rc;
}

static void
test_cert_round_trip_keeps_every_field(void **state)
{
	uint8_t *raw, key_id[RUF_KEY_ID_BYTES];
	size_t len;
	ruf_cert *root, *c, *d;

	(void)state;
	root = load_root();
	assert_int_equal(root->role, RUF_ROLE_ROOT);
	assert_int_equal(ruf_cert_verify(root, root, NB), 0);
	issue_device(&root_id, &raw, &len);
	c = parse_ok(raw, len);
	assert_int_equal(c->role, RUF_ROLE_DEVICE);
	assert_int_equal(c->serial, 42);
	assert_string_equal(c->subject, "rc-sd-1");
	assert_string_equal(c->country, "sd");
	assert_int_equal(c->not_before, NB);
	assert_int_equal(c->not_after, NA);
	assert_memory_equal(c->sign_pk, dev_id.sign_pk, 32);
	assert_memory_equal(c->kx_pk, dev_id.kx_pk, 32);
	ruf_key_id(root_id.sign_pk, key_id);
	assert_memory_equal(c->issuer_key_id, key_id, RUF_KEY_ID_BYTES);
	assert_int_equal(c->n_situations, 2);
	assert_string_equal(c->situations[0], "darfur");
	assert_string_equal(c->situations[1], "kordofan");
	assert_int_equal(c->n_queues, 0);
	assert_int_equal(c->rawlen, len);
	assert_memory_equal(c->raw, raw, len);
	assert_true(c->bodylen > 0 && c->bodylen < len);
	assert_int_equal(ruf_cert_verify(c, root, NB), 0);
	assert_int_equal(ruf_cert_check_role(c, RUF_ROLE_DEVICE), 0);
	assert_int_equal(ruf_cert_check_role(c, RUF_ROLE_DESK), RUF_E_CERT_ROLE);

	assert_int_equal(ruf_cert_dup(c, &d), 0);
	assert_ptr_not_equal(d, c);
	assert_string_equal(d->subject, c->subject);
	assert_int_equal(d->n_situations, 2);
	assert_int_equal(ruf_cert_verify(d, root, NB), 0);
	ruf_cert_free(d);
	ruf_cert_free(c);
	ruf_cert_free(root);
	ruf_cert_free(NULL);
	free(raw);
}

static void
test_cert_permissions_follow_the_lists(void **state)
{
	static const char *const any[] = {"*"};
	struct ruf_cert_template t = tmpl(RUF_ROLE_DEVICE, 9, "rc-any", &dev_id);
	uint8_t *raw;
	size_t len;
	ruf_cert *c;

	(void)state;
	issue_device(&root_id, &raw, &len);
	c = parse_ok(raw, len);
	assert_true(ruf_cert_permits_situation(c, "darfur"));
	assert_false(ruf_cert_permits_situation(c, "sahel"));
	assert_false(ruf_cert_permits_situation(c, "*"));
	assert_false(ruf_cert_permits_queue(c, "hrt"));
	ruf_cert_free(c);
	free(raw);

	t.situations = any;
	t.n_situations = 1;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len), 0);
	c = parse_ok(raw, len);
	assert_true(ruf_cert_permits_situation(c, "sahel"));
	assert_false(ruf_cert_permits_situation(c, "Not An Ident"));
	ruf_cert_free(c);
	free(raw);

	issue_desk(&raw, &len);
	c = parse_ok(raw, len);
	assert_true(ruf_cert_permits_queue(c, "itf.darfur"));
	assert_false(ruf_cert_permits_queue(c, "itf.sahel"));
	assert_false(ruf_cert_permits_situation(c, "darfur"));
	ruf_cert_free(c);
	free(raw);
}

static void
test_role_names_round_trip_and_reject_unknown(void **state)
{
	(void)state;
	for (int r = RUF_ROLE_ROOT; r <= RUF_ROLE_DIRSIGNER; r++) {
		assert_non_null(ruf_role_name(r));
		assert_int_equal(ruf_role_parse(ruf_role_name(r)), r);
	}
	assert_string_equal(ruf_role_name(RUF_ROLE_DIRSIGNER), "directory-signer");
	assert_null(ruf_role_name(0));
	assert_null(ruf_role_name(6));
	assert_int_equal(ruf_role_parse("admin"), 0);
	assert_int_equal(ruf_role_parse(NULL), 0);
}

/* Every byte changed (three ways) must fail to parse or to verify. */
static void
test_cert_rejects_any_flipped_byte(void **state)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	uint8_t *raw, *bad;
	size_t len;
	ruf_cert *root;

	(void)state;
	root = load_root();
	issue_device(&root_id, &raw, &len);
	bad = malloc(len);
	assert_non_null(bad);
	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			ruf_cert *c = NULL;
			int rc;

			memcpy(bad, raw, len);
			bad[i] ^= masks[m];
			rc = ruf_cert_parse(bad, len, &c);
			if (rc == 0)
				rc = ruf_cert_verify(c, root, NB);
			assert_int_not_equal(rc, 0);
			ruf_cert_free(c);
		}
	}
	free(bad);
	free(raw);
	ruf_cert_free(root);
}

static void
test_cert_rejects_truncated_at_every_length(void **state)
{
	uint8_t *raw;
	size_t len;

	(void)state;
	issue_device(&root_id, &raw, &len);
	for (size_t n = 0; n < len; n++) {
		ruf_cert *c = (ruf_cert *)1;
		/* A fresh exact-size copy so ASan sees any read past n. */
		uint8_t *cut = malloc(n + 1);

		assert_non_null(cut);
		memcpy(cut, raw, n);
		assert_int_equal(ruf_cert_parse(cut, n, &c), RUF_E_CERT_FORMAT);
		assert_null(c);
		free(cut);
	}
	free(raw);
}

static void
test_cert_rejects_trailing_bytes(void **state)
{
	uint8_t *raw, *longer;
	size_t len;
	ruf_cert *c = NULL;

	(void)state;
	issue_device(&root_id, &raw, &len);
	longer = malloc(len + 66);
	assert_non_null(longer);
	memcpy(longer, raw, len);
	longer[len] = 0;
	assert_int_equal(ruf_cert_parse(longer, len + 1, &c), RUF_E_CERT_FORMAT);
	/* The signature field again: a valid-looking duplicate at the end. */
	memcpy(longer + len, raw + len - 66, 66);
	assert_int_equal(ruf_cert_parse(longer, len + 66, &c), RUF_E_CERT_FORMAT);
	assert_null(c);
	free(longer);
	free(raw);
}

/* Duplicated fields inside a correctly signed body. */
static void
test_cert_rejects_duplicate_field_in_signed_body(void **state)
{
	Ruf__CertBody b;
	uint8_t key_id[RUF_KEY_ID_BYTES], *body, *raw, *dup;
	size_t bodylen, len;
	ruf_cert *c = NULL;

	(void)state;
	device_body(&b, key_id);
	assert_int_equal(ruf_pb_encode(&b.base, &body, &bodylen), 0);
	/* Append serial (field 3, varint) = 8 after the body: a second serial. */
	dup = malloc(bodylen + 2);
	assert_non_null(dup);
	memcpy(dup, body, bodylen);
	dup[bodylen] = 0x18;
	dup[bodylen + 1] = 0x08;
	wrap_body(dup, bodylen + 2, &root_id, &raw, &len);
	assert_int_equal(ruf_cert_parse(raw, len, &c), RUF_E_CERT_FORMAT);
	assert_null(c);
	free(raw);
	/* The unmodified body wrapped the same way parses (the test is sound). */
	wrap_body(body, bodylen, &root_id, &raw, &len);
	c = parse_ok(raw, len);
	ruf_cert_free(c);
	free(raw);
	free(dup);
	free(body);
}

/* Unknown fields and overlong varints in a correctly signed body. */
static void
test_cert_rejects_non_canonical_body(void **state)
{
	Ruf__CertBody b;
	uint8_t key_id[RUF_KEY_ID_BYTES], *body, *raw, *bad;
	size_t bodylen, len;
	ruf_cert *c = NULL;

	(void)state;
	device_body(&b, key_id);
	assert_int_equal(ruf_pb_encode(&b.base, &body, &bodylen), 0);
	bad = malloc(bodylen + 3);
	assert_non_null(bad);
	/* Field 14 (unknown), varint 1, at the end. */
	memcpy(bad, body, bodylen);
	bad[bodylen] = 0x70;
	bad[bodylen + 1] = 0x01;
	wrap_body(bad, bodylen + 2, &root_id, &raw, &len);
	assert_int_equal(ruf_cert_parse(raw, len, &c), RUF_E_CERT_FORMAT);
	free(raw);
	/* version 1 written as the two-byte varint 0x81 0x00. */
	assert_int_equal(body[0], 0x08);
	assert_int_equal(body[1], 0x01);
	bad[0] = 0x08;
	bad[1] = 0x81;
	bad[2] = 0x00;
	memcpy(bad + 3, body + 2, bodylen - 2);
	wrap_body(bad, bodylen + 1, &root_id, &raw, &len);
	assert_int_equal(ruf_cert_parse(raw, len, &c), RUF_E_CERT_FORMAT);
	assert_null(c);
	free(raw);
	free(bad);
	free(body);
}

/* Two signature fields in the outer message, hand-built. */
static void
test_cert_rejects_duplicate_signature_field(void **state)
{
	uint8_t *raw, *dup;
	size_t len;
	ruf_cert *c = NULL;

	(void)state;
	issue_device(&root_id, &raw, &len);
	dup = malloc(len + 66);
	assert_non_null(dup);
	/* body, signature, signature: the last 66 bytes are 0x12 0x40 sig. */
	memcpy(dup, raw, len);
	memcpy(dup + len, raw + len - 66, 66);
	assert_int_equal(raw[len - 66], 0x12);
	assert_int_equal(ruf_cert_parse(dup, len + 66, &c), RUF_E_CERT_FORMAT);
	assert_null(c);
	free(dup);
	free(raw);
}

static void
test_cert_rejects_unknown_critical_extension(void **state)
{
	Ruf__CertBody b;
	Ruf__CertExtension ext = RUF__CERT_EXTENSION__INIT, *pext = &ext;
	uint8_t key_id[RUF_KEY_ID_BYTES], val[3] = {1, 2, 3};

	(void)state;
	device_body(&b, key_id);
	ext.id = "x-future";
	ext.value.data = val;
	ext.value.len = sizeof(val);
	b.extensions = &pext;
	b.n_extensions = 1;
	/* Non-critical: ignored, the certificate is fine. */
	assert_int_equal(parse_body(&b), 0);
	ext.critical = 1;
	assert_int_equal(parse_body(&b), RUF_E_CERT_CRITICAL);
	/* A malformed extension id is a format error even if critical. */
	ext.id = "X";
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
}

static void
test_cert_rejects_out_of_range_fields(void **state)
{
	static char *two[] = {"darfur", "darfur"};
	static char *bad_q[] = {"a.b.c"};
	static char *star[] = {"*"};
	Ruf__CertBody b;
	uint8_t key_id[RUF_KEY_ID_BYTES], short_key[31] = {0};

	(void)state;
	device_body(&b, key_id);
	assert_int_equal(parse_body(&b), 0);

	b.version = 2;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.version = 1;
	b.role = 6;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.role = RUF_ROLE_DEVICE;
	b.serial = 0;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.serial = 7;
	b.subject = "Bad Subject";
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.subject = "rc-sd-2";
	b.country = "SD";
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.country = "sd";
	assert_int_equal(parse_body(&b), 0);
	b.not_before = NA + 1;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.not_before = NB;
	b.kx_pk.data = short_key;
	b.kx_pk.len = sizeof(short_key);
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.kx_pk.data = dev_id.kx_pk;
	b.kx_pk.len = 32;
	b.issuer_key_id.len = 15;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.issuer_key_id.len = 16;

	b.situations = two;
	b.n_situations = 2;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.n_situations = 1;
	assert_int_equal(parse_body(&b), 0);
	b.situations = star;
	assert_int_equal(parse_body(&b), 0);
	/* Situations belong to devices only, queues to desks only. */
	b.role = RUF_ROLE_DESK;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.n_situations = 0;
	b.queues = bad_q;
	b.n_queues = 1;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.queues = two;
	b.n_queues = 2;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
	b.n_queues = 1;
	assert_int_equal(parse_body(&b), 0);
	b.role = RUF_ROLE_DEVICE;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
}

static void
test_cert_rejects_too_many_situations(void **state)
{
	static char names[257][8];
	static const char *list[257];
	struct ruf_cert_template t = tmpl(RUF_ROLE_DEVICE, 5, "rc-many", &dev_id);
	Ruf__CertBody b;
	uint8_t key_id[RUF_KEY_ID_BYTES], *raw;
	size_t len;

	(void)state;
	for (int i = 0; i < 257; i++) {
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		list[i] = names[i];
	}
	t.situations = list;
	t.n_situations = 256;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len), 0);
	free(raw);
	t.n_situations = 257;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len),
	                 RUF_E_INVAL);
	device_body(&b, key_id);
	b.situations = (char **)list;
	b.n_situations = 257;
	assert_int_equal(parse_body(&b), RUF_E_CERT_FORMAT);
}

static void
test_cert_rejects_weak_keys(void **state)
{
	/* X25519: zero, and u = 1 (small order). */
	static const uint8_t kx_zero[32] = {0};
	static const uint8_t kx_one[32] = {1};
	/* Ed25519: the identity (y = 1), and y = 0 (order 4). */
	static const uint8_t ed_identity[32] = {1};
	static const uint8_t ed_zero[32] = {0};
	struct ruf_cert_template t = tmpl(RUF_ROLE_DEVICE, 5, "rc-weak", &dev_id);
	Ruf__CertBody b;
	uint8_t key_id[RUF_KEY_ID_BYTES], *raw = NULL;
	size_t len;

	(void)state;
	assert_false(ruf_kx_pk_is_valid(kx_zero));
	assert_false(ruf_kx_pk_is_valid(kx_one));
	assert_true(ruf_kx_pk_is_valid(dev_id.kx_pk));
	assert_false(ruf_sign_pk_is_valid(ed_identity));
	assert_false(ruf_sign_pk_is_valid(ed_zero));
	assert_true(ruf_sign_pk_is_valid(dev_id.sign_pk));

	t.kx_pk = kx_zero;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len),
	                 RUF_E_WEAK_KEY);
	assert_null(raw);
	t.kx_pk = kx_one;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len),
	                 RUF_E_WEAK_KEY);
	t.kx_pk = dev_id.kx_pk;
	t.sign_pk = ed_identity;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len),
	                 RUF_E_WEAK_KEY);

	device_body(&b, key_id);
	b.sign_pk.data = (uint8_t *)ed_zero;
	assert_int_equal(parse_body(&b), RUF_E_WEAK_KEY);
	b.sign_pk.data = dev_id.sign_pk;
	b.kx_pk.data = (uint8_t *)kx_one;
	assert_int_equal(parse_body(&b), RUF_E_WEAK_KEY);
}

static void
test_cert_rejects_wrong_issuer(void **state)
{
	uint8_t *raw, *oraw;
	size_t len, olen;
	ruf_cert *root, *other_root, *c;

	(void)state;
	root = load_root();
	issue_root(&other_id, &oraw, &olen);
	other_root = parse_ok(oraw, olen);
	issue_device(&other_id, &raw, &len);
	c = parse_ok(raw, len);
	assert_int_equal(ruf_cert_verify(c, root, NB), RUF_E_CERT_ISSUER);
	assert_int_equal(ruf_cert_verify(c, other_root, NB), 0);
	assert_int_equal(ruf_cert_verify(other_root, root, NB), RUF_E_CERT_ISSUER);
	ruf_cert_free(c);
	free(raw);
	ruf_cert_free(other_root);
	free(oraw);
	ruf_cert_free(root);
}

/* Right issuer key id, wrong key: a forged certificate. */
static void
test_cert_rejects_signature_by_other_key(void **state)
{
	Ruf__CertBody b;
	uint8_t key_id[RUF_KEY_ID_BYTES], *body, *raw;
	size_t bodylen, len;
	ruf_cert *root, *c;

	(void)state;
	root = load_root();
	device_body(&b, key_id);
	assert_int_equal(ruf_pb_encode(&b.base, &body, &bodylen), 0);
	wrap_body(body, bodylen, &other_id, &raw, &len);
	c = parse_ok(raw, len);
	assert_int_equal(ruf_cert_verify(c, root, NB), RUF_E_CERT_SIGNATURE);
	ruf_cert_free(c);
	free(raw);
	free(body);
	ruf_cert_free(root);
}

static void
test_cert_rejects_outside_validity_window(void **state)
{
	uint8_t *raw;
	size_t len;
	ruf_cert *root, *c;

	(void)state;
	root = load_root();
	issue_device(&root_id, &raw, &len);
	c = parse_ok(raw, len);
	assert_int_equal(ruf_cert_verify(c, root, NB - 1), RUF_E_CERT_NOT_YET_VALID);
	assert_int_equal(ruf_cert_verify(c, root, NB), 0);
	assert_int_equal(ruf_cert_verify(c, root, NA), 0);
	assert_int_equal(ruf_cert_verify(c, root, NA + 1), RUF_E_CERT_EXPIRED);
	assert_int_equal(ruf_cert_verify(root, root, 0), RUF_E_CERT_NOT_YET_VALID);
	assert_int_equal(ruf_cert_verify(root, root, UINT64_MAX), RUF_E_CERT_EXPIRED);
	ruf_cert_free(c);
	free(raw);
	ruf_cert_free(root);
}

/* A certificate outliving its root is invalid once the root has expired. */
static void
test_cert_rejects_after_root_expired(void **state)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_ROOT, 1, "short-root", &root_id);
	struct ruf_cert_template d = tmpl(RUF_ROLE_DEVICE, 2, "rc-long", &dev_id);
	uint8_t *rraw, *raw;
	size_t rlen, len;
	ruf_cert *root, *c;

	(void)state;
	t.not_after = NB + 100;
	d.not_after = NB + 1000;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &rraw, &rlen), 0);
	assert_int_equal(ruf_cert_issue(&d, root_id.sign_sk, root_id.sign_pk, &raw, &len), 0);
	root = parse_ok(rraw, rlen);
	c = parse_ok(raw, len);
	assert_int_equal(ruf_cert_verify(c, root, NB + 100), 0);
	assert_int_equal(ruf_cert_verify(c, root, NB + 101), RUF_E_CERT_EXPIRED);
	ruf_cert_free(c);
	ruf_cert_free(root);
	free(raw);
	free(rraw);
}

static void
test_cert_rejects_self_signed_non_root_as_root(void **state)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_DEVICE, 3, "rogue", &other_id);
	uint8_t *raw, *draw;
	size_t len, dlen;
	ruf_cert *rogue, *c;

	(void)state;
	assert_int_equal(ruf_cert_issue(&t, other_id.sign_sk, other_id.sign_pk, &raw, &len), 0);
	rogue = parse_ok(raw, len);
	assert_int_equal(ruf_cert_verify(rogue, rogue, NB), RUF_E_CERT_ROLE);
	issue_device(&other_id, &draw, &dlen);
	c = parse_ok(draw, dlen);
	assert_int_equal(ruf_cert_verify(c, rogue, NB), RUF_E_CERT_ROLE);
	ruf_cert_free(c);
	ruf_cert_free(rogue);
	free(draw);
	free(raw);
}

/* A root-role certificate issued by another key is not a self-signed root. */
static void
test_cert_rejects_root_not_self_issued(void **state)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_ROOT, 3, "sub-root", &other_id);
	uint8_t *raw;
	size_t len;
	ruf_cert *r;

	(void)state;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len), 0);
	r = parse_ok(raw, len);
	assert_int_equal(ruf_cert_verify(r, r, NB), RUF_E_CERT_ISSUER);
	ruf_cert_free(r);
	free(raw);
}

static void
test_cert_issue_rejects_mismatched_issuer_key(void **state)
{
	struct ruf_cert_template t = tmpl(RUF_ROLE_DEVICE, 3, "rc-x", &dev_id);
	uint8_t *raw = NULL;
	size_t len;

	(void)state;
	assert_int_equal(ruf_cert_issue(&t, other_id.sign_sk, root_id.sign_pk, &raw, &len),
	                 RUF_E_INVAL);
	assert_null(raw);
	t.subject = NULL;
	assert_int_equal(ruf_cert_issue(&t, root_id.sign_sk, root_id.sign_pk, &raw, &len),
	                 RUF_E_INVAL);
}

static void
test_cert_load_reads_file_and_bounds_size(void **state)
{
	char path[] = "/tmp/ruf-test-cert-XXXXXX";
	uint8_t *raw, *big;
	size_t len;
	ruf_cert *c = NULL;
	int fd;

	(void)state;
	issue_device(&root_id, &raw, &len);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ruf_file_write_atomic(path, raw, len, 0600, false), 0);
	assert_int_equal(ruf_cert_load(path, &c), 0);
	assert_int_equal(c->serial, 42);
	ruf_cert_free(c);
	big = calloc(1, RUF_CERT_MAX + 1);
	assert_non_null(big);
	assert_int_equal(ruf_file_write_atomic(path, big, RUF_CERT_MAX + 1, 0600, false), 0);
	assert_int_equal(ruf_cert_load(path, &c), RUF_E_TOO_LARGE);
	assert_int_equal(ruf_cert_parse(big, RUF_CERT_MAX + 1, &c), RUF_E_CERT_FORMAT);
	assert_null(c);
	unlink(path);
	free(big);
	free(raw);
}

/* Vectors: tests/vectors/cert/NAME.hex holds the lower-case hex, one line. */
static void
check_vector(const char *name, const uint8_t *raw, size_t len)
{
	char path[512], *hex;
	uint8_t *file;
	size_t flen;

	snprintf(path, sizeof(path), "%s/tests/vectors/cert/%s.hex", RUF_SOURCE_DIR, name);
	hex = malloc(2 * len + 2);
	assert_non_null(hex);
	ruf_hex(raw, len, hex);
	if (getenv("RUF_WRITE_VECTORS") != NULL) {
		strcat(hex, "\n");
		assert_int_equal(ruf_file_write_atomic(path, hex, 2 * len + 1, 0644, false), 0);
		hex[2 * len] = '\0';
	}
	assert_int_equal(ruf_file_read(path, 1 << 20, &file, &flen), 0);
	/* One line of hex, newline optional. */
	if (flen > 0 && file[flen - 1] == '\n')
		flen--;
	assert_int_equal(flen, 2 * len);
	assert_memory_equal(file, hex, 2 * len);
	free(file);
	free(hex);
}

static void
test_cert_encoder_reproduces_vectors(void **state)
{
	uint8_t *root, *dev, *desk;
	size_t rlen, dlen, klen;
	ruf_cert *r, *d, *k;

	(void)state;
	issue_root(&root_id, &root, &rlen);
	issue_device(&root_id, &dev, &dlen);
	issue_desk(&desk, &klen);
	check_vector("root", root, rlen);
	check_vector("device", dev, dlen);
	check_vector("desk", desk, klen);
	/* And the vectors verify as they are. */
	r = parse_ok(root, rlen);
	d = parse_ok(dev, dlen);
	k = parse_ok(desk, klen);
	assert_int_equal(ruf_cert_verify(r, r, NB), 0);
	assert_int_equal(ruf_cert_verify(d, r, NB), 0);
	assert_int_equal(ruf_cert_verify(k, r, NB), 0);
	ruf_cert_free(k);
	ruf_cert_free(d);
	ruf_cert_free(r);

	if (getenv("RUF_WRITE_CORPUS") != NULL) {
		const char *dir = getenv("RUF_WRITE_CORPUS");
		char path[512];

		snprintf(path, sizeof(path), "%s/root", dir);
		assert_int_equal(ruf_file_write_atomic(path, root, rlen, 0644, false), 0);
		snprintf(path, sizeof(path), "%s/device", dir);
		assert_int_equal(ruf_file_write_atomic(path, dev, dlen, 0644, false), 0);
		snprintf(path, sizeof(path), "%s/desk", dir);
		assert_int_equal(ruf_file_write_atomic(path, desk, klen, 0644, false), 0);
		/* fuzz_cert signs inputs that start with 0xff itself. */
		for (int i = 0; i < 2; i++) {
			uint8_t *b;

			d = parse_ok(i == 0 ? dev : desk, i == 0 ? dlen : klen);
			b = malloc(d->bodylen + 1);
			assert_non_null(b);
			b[0] = 0xff;
			memcpy(b + 1, d->body, d->bodylen);
			snprintf(path, sizeof(path), "%s/%s-body", dir, i == 0 ? "device" : "desk");
			assert_int_equal(
			    ruf_file_write_atomic(path, b, d->bodylen + 1, 0644, false), 0);
			free(b);
			ruf_cert_free(d);
		}
	}
	free(desk);
	free(dev);
	free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cert_round_trip_keeps_every_field),
	    cmocka_unit_test(test_cert_permissions_follow_the_lists),
	    cmocka_unit_test(test_role_names_round_trip_and_reject_unknown),
	    cmocka_unit_test(test_cert_rejects_any_flipped_byte),
	    cmocka_unit_test(test_cert_rejects_truncated_at_every_length),
	    cmocka_unit_test(test_cert_rejects_trailing_bytes),
	    cmocka_unit_test(test_cert_rejects_duplicate_field_in_signed_body),
	    cmocka_unit_test(test_cert_rejects_non_canonical_body),
	    cmocka_unit_test(test_cert_rejects_duplicate_signature_field),
	    cmocka_unit_test(test_cert_rejects_unknown_critical_extension),
	    cmocka_unit_test(test_cert_rejects_out_of_range_fields),
	    cmocka_unit_test(test_cert_rejects_too_many_situations),
	    cmocka_unit_test(test_cert_rejects_weak_keys),
	    cmocka_unit_test(test_cert_rejects_wrong_issuer),
	    cmocka_unit_test(test_cert_rejects_signature_by_other_key),
	    cmocka_unit_test(test_cert_rejects_outside_validity_window),
	    cmocka_unit_test(test_cert_rejects_after_root_expired),
	    cmocka_unit_test(test_cert_rejects_self_signed_non_root_as_root),
	    cmocka_unit_test(test_cert_rejects_root_not_self_issued),
	    cmocka_unit_test(test_cert_issue_rejects_mismatched_issuer_key),
	    cmocka_unit_test(test_cert_load_reads_file_and_bounds_size),
	    cmocka_unit_test(test_cert_encoder_reproduces_vectors),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
