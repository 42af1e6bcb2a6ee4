/*
 * test_directory.c - the signed directory: round trip, strict parsing, the
 * order of load checks, rollback, lookups, and the known-answer vector in
 * tests/vectors/cert/directory.hex.
 *
 * RUF_WRITE_VECTORS=1 rewrites the vector (only when the format changes on
 * purpose); RUF_WRITE_CORPUS=DIR writes fuzzing seeds for fuzz_directory.
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
#include "directory.h"
#include "directory.pb-c.h"
#include "err.h"
#include "pb.h"
#include "route.h"
#include "util.h"

#define NB 1790000000u
#define NA 1830000000u
#define NOW 1800000000u
#define ISSUED (NOW - 60)
#define EXPIRES (NOW + 7 * 86400)

static const char policy_text[] = "policy 1\n"
                                  "\n"
                                  "rule itf\n"
                                  "\tsituation darfur\n"
                                  "\tto itf.${situation}\n"
                                  "\n"
                                  "rule sag\n"
                                  "\trisk high ongoing\n"
                                  "\tto sag\n";

struct ident {
	uint8_t sign_pk[RUF_SIGN_PK_BYTES];
	uint8_t sign_sk[RUF_SIGN_SK_BYTES];
	uint8_t kx_pk[RUF_KX_PK_BYTES];
};

static struct ident root_id, signer_id, other_id;
static uint8_t *root_raw, *signer_raw;
static size_t root_len, signer_len;
static ruf_cert *root;
static ruf_policy *policy;
static uint8_t qpk[4][RUF_KX_PK_BYTES], hq_pk[RUF_KX_PK_BYTES], hq_next[RUF_KX_PK_BYTES];
static struct ruf_dir_queue queues[4];
static char *addresses[] = {"hq.example.org:4433", "[2001:db8::1]:443"};
static struct ruf_dir_hq hq;
static const struct ruf_dir_revocation revoked[] = {
    {5, 1799000000, "laptop reported stolen"},
    {9, 1799500000, NULL},
    {100, 1799999000, ""},
};

static void
kx_make(uint8_t pk[32], uint8_t tag)
{
	uint8_t sk[32];

	memset(sk, tag, sizeof(sk));
	assert_int_equal(crypto_scalarmult_base(pk, sk), 0);
}

/* Deterministic keys: every byte of both seeds is derived from tag. */
static void
ident_make(struct ident *id, uint8_t tag)
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	memset(seed, tag, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, seed), 0);
	kx_make(id->kx_pk, tag ^ 0x5a);
}

static void
issue(const struct ident *id, const struct ident *issuer, int role, uint64_t serial,
      const char *subject, uint64_t nb, uint64_t na, uint8_t **out, size_t *len)
{
	struct ruf_cert_template t = {
	    .role = role,
	    .serial = serial,
	    .subject = subject,
	    .not_before = nb,
	    .not_after = na,
	    .sign_pk = id->sign_pk,
	    .kx_pk = id->kx_pk,
	};

	assert_int_equal(ruf_cert_issue(&t, issuer->sign_sk, issuer->sign_pk, out, len), 0);
}

static int
setup(void **state)
{
	static const char *const names[4] = {"sag", "itf.darfur", "triage", "hrt"};

	(void)state;
	if (sodium_init() < 0)
		return -1;
	ident_make(&root_id, 0x01);
	ident_make(&signer_id, 0x05);
	ident_make(&other_id, 0x04);
	issue(&root_id, &root_id, RUF_ROLE_ROOT, 1, "hq-root", NB, NA, &root_raw, &root_len);
	issue(&signer_id, &root_id, RUF_ROLE_DIRSIGNER, 2, "dir-signer", NB, NA, &signer_raw,
	      &signer_len);
	if (ruf_cert_parse(root_raw, root_len, &root) != 0)
		return -1;
	if (ruf_policy_compile(policy_text, strlen(policy_text), NULL, &policy) != 0)
		return -1;
	/* Deliberately not sorted: ruf_directory_sign sorts. */
	for (int i = 0; i < 4; i++) {
		kx_make(qpk[i], (uint8_t)(0x20 + i));
		queues[i].name = (char *)names[i];
		queues[i].epoch = (uint32_t)i + 1;
		memcpy(queues[i].pk, qpk[i], 32);
	}
	kx_make(hq_pk, 0x30);
	kx_make(hq_next, 0x31);
	memcpy(hq.noise_pk, hq_pk, 32);
	hq.has_next = true;
	memcpy(hq.next_noise_pk, hq_next, 32);
	hq.addresses = addresses;
	hq.n_addresses = 2;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ruf_policy_free(policy);
	ruf_cert_free(root);
	free(signer_raw);
	free(root_raw);
	return 0;
}

static struct ruf_directory_template
tmpl(uint64_t version)
{
	struct ruf_directory_template t = {
	    .version = version,
	    .issued_at = ISSUED,
	    .expires_at = EXPIRES,
	    .queues = queues,
	    .n_queues = 4,
	    .revoked = revoked,
	    .n_revoked = 3,
	    .hq = &hq,
	    .policy = policy,
	};
	return t;
}

static void
sign_ok(const struct ruf_directory_template *t, uint8_t **out, size_t *len)
{
	assert_int_equal(ruf_directory_sign(t, signer_raw, signer_len, signer_id.sign_sk, out, len),
	                 0);
}

static ruf_directory *
load_ok(const uint8_t *buf, size_t len, uint64_t now)
{
	ruf_directory *d = NULL;

	assert_int_equal(ruf_directory_load_mem(buf, len, root, now, &d), 0);
	assert_non_null(d);
	return d;
}

static int
load_rc(const uint8_t *buf, size_t len, uint64_t now)
{
	ruf_directory *d = (ruf_directory *)1;
	int rc = ruf_directory_load_mem(buf, len, root, now, &d);

	if (rc != 0)
		assert_null(d);
	ruf_directory_free(rc == 0 ? d : NULL);
	return rc;
}

/* A body built with protobuf-c directly, for what ruf_directory_sign refuses. */
struct body {
	Ruf__DirectoryBody b;
	Ruf__DirectoryHq hq;
	Ruf__DirectoryQueue q[4];
	Ruf__DirectoryQueue *qp[4];
	Ruf__DirectoryRevocation r[3];
	Ruf__DirectoryRevocation *rp[3];
	uint8_t *policy;
};

static void
body_init(struct body *s)
{
	static const char *const sorted[4] = {"hrt", "itf.darfur", "sag", "triage"};
	static const int key_of[4] = {3, 1, 0, 2};
	size_t plen;

	memset(s, 0, sizeof(*s));
	ruf__directory_body__init(&s->b);
	ruf__directory_hq__init(&s->hq);
	for (int i = 0; i < 4; i++) {
		ruf__directory_queue__init(&s->q[i]);
		s->q[i].name = (char *)sorted[i];
		s->q[i].epoch = 1;
		s->q[i].public_key.data = qpk[key_of[i]];
		s->q[i].public_key.len = 32;
		s->qp[i] = &s->q[i];
	}
	for (int i = 0; i < 3; i++) {
		ruf__directory_revocation__init(&s->r[i]);
		s->r[i].serial = revoked[i].serial;
		s->r[i].revoked_at = revoked[i].revoked_at;
		if (revoked[i].reason != NULL)
			s->r[i].reason = (char *)revoked[i].reason;
		s->rp[i] = &s->r[i];
	}
	assert_int_equal(ruf_policy_encode(policy, &s->policy, &plen), 0);
	s->hq.noise_pk.data = hq_pk;
	s->hq.noise_pk.len = 32;
	s->hq.addresses = addresses;
	s->hq.n_addresses = 2;
	s->b.format = 2;
	s->b.version = 3;
	s->b.issued_at = ISSUED;
	s->b.expires_at = EXPIRES;
	s->b.queues = s->qp;
	s->b.n_queues = 4;
	s->b.policy.data = s->policy;
	s->b.policy.len = plen;
	s->b.hq = &s->hq;
	s->b.revocations = s->rp;
	s->b.n_revocations = 3;
}

/* Signs body bytes with sk and wraps them with cert, as a signer would. */
static void
wrap(const uint8_t *body, size_t bodylen, const uint8_t *cert, size_t certlen, const uint8_t *sk,
     uint8_t **out, size_t *len)
{
	Ruf__SignedDirectory sm = RUF__SIGNED_DIRECTORY__INIT;
	uint8_t sig[RUF_SIG_BYTES];

	assert_int_equal(ruf__sign_domain("ruf-directory-v1", 17, body, bodylen, sk, sig), 0);
	sm.signer_cert.data = (uint8_t *)cert;
	sm.signer_cert.len = certlen;
	sm.body.data = (uint8_t *)body;
	sm.body.len = bodylen;
	sm.signature.data = sig;
	sm.signature.len = sizeof(sig);
	assert_int_equal(ruf_pb_encode(&sm.base, out, len), 0);
}

/* Encodes, signs with the real signer and loads s; returns the load result. */
static int
body_load(struct body *s)
{
	uint8_t *body, *raw;
	size_t bodylen, len;
	int rc;

	assert_int_equal(ruf_pb_encode(&s->b.base, &body, &bodylen), 0);
	wrap(body, bodylen, signer_raw, signer_len, signer_id.sign_sk, &raw, &len);
	rc = load_rc(raw, len, NOW);
	free(raw);
	free(body);
	return rc;
}

static void
body_free(struct body *s)
{
	free(s->policy);
}

static void
test_directory_round_trip_keeps_every_field(void **state)
{
	struct ruf_directory_template t = tmpl(7);
	const struct ruf_dir_queue *q;
	uint8_t *raw;
	size_t len;
	ruf_directory *d;

	(void)state;
	sign_ok(&t, &raw, &len);
	d = load_ok(raw, len, NOW);
	assert_int_equal(d->version, 7);
	assert_int_equal(d->issued_at, ISSUED);
	assert_int_equal(d->expires_at, EXPIRES);
	assert_int_equal(d->n_queues, 4);
	/* Sorted by name on the way out. */
	assert_string_equal(d->queues[0].name, "hrt");
	assert_string_equal(d->queues[1].name, "itf.darfur");
	assert_string_equal(d->queues[2].name, "sag");
	assert_string_equal(d->queues[3].name, "triage");
	q = ruf_directory_queue(d, "sag");
	assert_non_null(q);
	assert_int_equal(q->epoch, 1);
	assert_memory_equal(q->pk, qpk[0], 32);
	q = ruf_directory_queue(d, "triage");
	assert_non_null(q);
	assert_int_equal(q->epoch, 3);
	assert_null(ruf_directory_queue(d, "itf.kivu"));
	assert_null(ruf_directory_queue(d, ""));
	assert_memory_equal(d->hq.noise_pk, hq_pk, 32);
	assert_true(d->hq.has_next);
	assert_memory_equal(d->hq.next_noise_pk, hq_next, 32);
	assert_int_equal(d->hq.n_addresses, 2);
	assert_string_equal(d->hq.addresses[1], "[2001:db8::1]:443");
	assert_non_null(d->policy);
	assert_int_equal(ruf_policy_rule_count(d->policy), 2);
	assert_non_null(d->signer);
	assert_int_equal(d->signer->role, RUF_ROLE_DIRSIGNER);
	assert_int_equal(d->rawlen, len);
	assert_memory_equal(d->raw, raw, len);
	ruf_directory_free(d);
	ruf_directory_free(NULL);
	free(raw);
}

static void
test_directory_revoked_lookup(void **state)
{
	static const struct ruf_dir_revocation unsorted[] = {
	    {100, 300, NULL}, {5, 100, "stolen"}, {9, 200, NULL}, {77, 250, "lost"}};
	const struct ruf_dir_revocation *r;
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw;
	size_t len;
	ruf_directory *d;

	(void)state;
	t.revoked = unsorted;
	t.n_revoked = 4;
	sign_ok(&t, &raw, &len);
	d = load_ok(raw, len, NOW);
	assert_int_equal(d->n_revoked, 4);
	assert_int_equal(d->revoked[0].serial, 5);
	assert_int_equal(d->revoked[3].serial, 100);
	/* Each serial keeps its own time and reason through the sort. */
	r = ruf_directory_revocation(d, 5);
	assert_non_null(r);
	assert_int_equal(r->revoked_at, 100);
	assert_string_equal(r->reason, "stolen");
	r = ruf_directory_revocation(d, 100);
	assert_non_null(r);
	assert_int_equal(r->revoked_at, 300);
	assert_string_equal(r->reason, "");
	assert_null(ruf_directory_revocation(d, 6));
	assert_true(ruf_directory_is_revoked(d, 5));
	assert_true(ruf_directory_is_revoked(d, 77));
	assert_true(ruf_directory_is_revoked(d, 100));
	assert_false(ruf_directory_is_revoked(d, 6));
	assert_false(ruf_directory_is_revoked(d, 2)); /* the signer */
	assert_false(ruf_directory_is_revoked(d, 101));
	assert_false(ruf_directory_is_revoked(NULL, 5));
	ruf_directory_free(d);
	free(raw);

	t.n_revoked = 0;
	sign_ok(&t, &raw, &len);
	d = load_ok(raw, len, NOW);
	assert_int_equal(d->n_revoked, 0);
	assert_false(ruf_directory_is_revoked(d, 5));
	ruf_directory_free(d);
	free(raw);
}

/* The decision a desk makes for a revoked sender: only rufd's time counts. */
static void
test_directory_judge_uses_accept_time_against_revocation_time(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	const struct ruf_dir_revocation *r = (void *)1;
	uint8_t *raw;
	size_t len;
	ruf_directory *d;

	(void)state;
	sign_ok(&t, &raw, &len);
	d = load_ok(raw, len, NOW);
	/* Not revoked: good whatever the time, known or not. */
	assert_int_equal(ruf_directory_judge(d, 6, 0, &r), RUF_REV_GOOD);
	assert_null(r);
	assert_int_equal(ruf_directory_judge(d, 6, UINT64_MAX, NULL), RUF_REV_GOOD);
	assert_int_equal(ruf_directory_judge(NULL, 5, 0, NULL), RUF_REV_GOOD);
	/* Serial 5 revoked at 1799000000: accepted a second before is genuine. */
	assert_int_equal(ruf_directory_judge(d, 5, 1798999999, &r), RUF_REV_BEFORE);
	assert_non_null(r);
	assert_int_equal(r->revoked_at, 1799000000);
	assert_string_equal(r->reason, "laptop reported stolen");
	assert_int_equal(ruf_directory_judge(d, 5, 1, NULL), RUF_REV_BEFORE);
	/* At the revocation time itself, and after, it is flagged. */
	assert_int_equal(ruf_directory_judge(d, 5, 1799000000, NULL), RUF_REV_FLAGGED);
	assert_int_equal(ruf_directory_judge(d, 5, 1799000001, NULL), RUF_REV_FLAGGED);
	/* No trustworthy time: flagged, never genuine by default. */
	assert_int_equal(ruf_directory_judge(d, 5, 0, &r), RUF_REV_FLAGGED);
	assert_non_null(r);
	assert_int_equal(ruf_directory_judge(d, 9, 0, NULL), RUF_REV_FLAGGED);
	ruf_directory_free(d);
	free(raw);
}

static void
test_directory_sign_rejects_bad_revocations(void **state)
{
	static char long_reason[RUF_DIR_REASON_MAX + 2];
	struct ruf_dir_revocation r[1] = {{5, 0, NULL}};
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw = NULL;
	size_t len;

	(void)state;
	t.revoked = r;
	t.n_revoked = 1;
	for (int i = 0; i < 3; i++) {
		/* No time; a control character; one byte too long. */
		r[0].revoked_at = i == 0 ? 0 : 10;
		if (i == 1)
			r[0].reason = "tab\there";
		if (i == 2) {
			memset(long_reason, 'x', RUF_DIR_REASON_MAX + 1);
			r[0].reason = long_reason;
		}
		assert_int_equal(
		    ruf_directory_sign(&t, signer_raw, signer_len, signer_id.sign_sk, &raw, &len),
		    RUF_E_INVAL);
		assert_null(raw);
	}
	r[0].reason = "UTF-8 is fine: Côte d'Ivoire";
	sign_ok(&t, &raw, &len);
	free(raw);
}

static void
test_directory_sign_rejects_duplicates(void **state)
{
	static const struct ruf_dir_revocation dup_revoked[] = {
	    {5, 1, NULL}, {9, 1, NULL}, {5, 2, NULL}};
	struct ruf_dir_queue dupq[2];
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw = NULL;
	size_t len;

	(void)state;
	t.revoked = dup_revoked;
	t.n_revoked = 3;
	assert_int_equal(
	    ruf_directory_sign(&t, signer_raw, signer_len, signer_id.sign_sk, &raw, &len),
	    RUF_E_INVAL);
	assert_null(raw);
	t = tmpl(1);
	dupq[0] = queues[0];
	dupq[1] = queues[0];
	t.queues = dupq;
	t.n_queues = 2;
	assert_int_equal(
	    ruf_directory_sign(&t, signer_raw, signer_len, signer_id.sign_sk, &raw, &len),
	    RUF_E_INVAL);
}

static void
test_directory_rejects_unsorted_queues(void **state)
{
	struct body s;

	(void)state;
	body_init(&s);
	assert_int_equal(body_load(&s), 0);
	s.qp[0] = &s.q[1];
	s.qp[1] = &s.q[0];
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	/* Duplicates are not strictly sorted either. */
	s.qp[0] = &s.q[1];
	s.qp[1] = &s.q[1];
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	body_free(&s);
}

static void
test_directory_rejects_bad_fields(void **state)
{
	static char *bad_addr[] = {"hq.example.org", ":443",          "host:0",   "host:65536",
	                           "host:0443",      "host name:443", "host:44a", ""};
	static char *many[17];
	uint8_t short_key[31] = {0}, weak[32] = {0};
	static char long_reason[RUF_DIR_REASON_MAX + 2];
	Ruf__DirectoryRevocation *swapped[3];
	struct body s;

	(void)state;
	body_init(&s);
	/* Format 1 had revocations without a time: refused, not guessed at. */
	s.b.format = 1;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.b.format = 3;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.b.format = 2;
	s.b.version = 0;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.b.version = 3;
	s.b.issued_at = EXPIRES + 1;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.b.issued_at = ISSUED;
	s.q[0].epoch = 0;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.q[0].epoch = 1;
	s.q[0].name = "a.b.c";
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.q[0].name = "hrt";
	s.q[0].public_key.data = short_key;
	s.q[0].public_key.len = 31;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.q[0].public_key.data = weak;
	s.q[0].public_key.len = 32;
	assert_int_equal(body_load(&s), RUF_E_WEAK_KEY);
	s.q[0].public_key.data = qpk[3];
	swapped[0] = s.rp[1];
	swapped[1] = s.rp[0];
	swapped[2] = s.rp[2];
	s.b.revocations = swapped;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.b.revocations = s.rp;
	s.r[0].serial = 0;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.r[0].serial = 5;
	/* A revocation without a time would leave readers guessing. */
	s.r[1].revoked_at = 0;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.r[1].revoked_at = 1;
	s.r[1].reason = "line\nbreak";
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	memset(long_reason, 'x', RUF_DIR_REASON_MAX + 1);
	s.r[1].reason = long_reason;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	long_reason[RUF_DIR_REASON_MAX] = '\0';
	assert_int_equal(body_load(&s), 0);
	s.r[1].reason = (char *)protobuf_c_empty_string;
	s.b.hq = NULL;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.b.hq = &s.hq;
	s.hq.noise_pk.data = weak;
	assert_int_equal(body_load(&s), RUF_E_WEAK_KEY);
	s.hq.noise_pk.data = hq_pk;
	s.hq.next_noise_pk.data = short_key;
	s.hq.next_noise_pk.len = 31;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.hq.next_noise_pk.len = 0;
	for (size_t i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
		s.hq.addresses = &bad_addr[i];
		s.hq.n_addresses = 1;
		/* Repeated strings are written even when empty: "" arrives and is refused. */
		assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	}
	for (int i = 0; i < 17; i++)
		many[i] = addresses[0];
	s.hq.addresses = many;
	s.hq.n_addresses = 16;
	assert_int_equal(body_load(&s), 0);
	s.hq.n_addresses = 17;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	s.hq.n_addresses = 0;
	assert_int_equal(body_load(&s), 0);
	s.b.policy.len = 0;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	body_free(&s);
}

static void
test_directory_rejects_missing_queue_key(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw = NULL;
	size_t len;
	struct body s;

	(void)state;
	/* Without itf.darfur: the itf rule can route there. */
	t.n_queues = 1; /* "sag" only */
	assert_int_equal(
	    ruf_directory_sign(&t, signer_raw, signer_len, signer_id.sign_sk, &raw, &len),
	    RUF_E_DIR_NO_QUEUE);
	assert_null(raw);

	/* The same, hand-built and signed: the loader refuses it too. */
	body_init(&s);
	s.b.queues = &s.qp[1]; /* itf.darfur, sag, triage */
	s.b.n_queues = 3;
	assert_int_equal(body_load(&s), 0);
	s.b.queues = &s.qp[2]; /* sag, triage */
	s.b.n_queues = 2;
	assert_int_equal(body_load(&s), RUF_E_DIR_NO_QUEUE);
	/* triage always needs a key, whatever the policy. */
	s.b.queues = s.qp; /* hrt, itf.darfur, sag */
	s.b.n_queues = 3;
	assert_int_equal(body_load(&s), RUF_E_DIR_NO_QUEUE);
	body_free(&s);
}

static void
test_directory_rejects_signer_not_chained_to_root(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *cert, *raw;
	size_t certlen, len;

	(void)state;
	/* A directory-signer certificate issued by another "root". */
	issue(&signer_id, &other_id, RUF_ROLE_DIRSIGNER, 2, "dir-signer", NB, NA, &cert, &certlen);
	assert_int_equal(ruf_directory_sign(&t, cert, certlen, signer_id.sign_sk, &raw, &len), 0);
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_SIGNER);
	free(raw);
	free(cert);
}

static void
test_directory_rejects_signer_with_wrong_role(void **state)
{
	struct body s;
	uint8_t *cert, *body, *raw = NULL;
	size_t certlen, bodylen, len;
	struct ruf_directory_template t = tmpl(1);

	(void)state;
	issue(&signer_id, &root_id, RUF_ROLE_SERVER, 2, "hq-server", NB, NA, &cert, &certlen);
	assert_int_equal(ruf_directory_sign(&t, cert, certlen, signer_id.sign_sk, &raw, &len),
	                 RUF_E_CERT_ROLE);
	assert_null(raw);
	body_init(&s);
	assert_int_equal(ruf_pb_encode(&s.b.base, &body, &bodylen), 0);
	wrap(body, bodylen, cert, certlen, signer_id.sign_sk, &raw, &len);
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_SIGNER);
	free(raw);
	/* The root itself does not sign directories either. */
	wrap(body, bodylen, root_raw, root_len, root_id.sign_sk, &raw, &len);
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_SIGNER);
	free(raw);
	free(body);
	free(cert);
	body_free(&s);
}

static void
test_directory_rejects_signer_outside_validity(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *cert, *raw;
	size_t certlen, len;

	(void)state;
	issue(&signer_id, &root_id, RUF_ROLE_DIRSIGNER, 2, "dir-signer", NB, NOW - 1, &cert,
	      &certlen);
	assert_int_equal(ruf_directory_sign(&t, cert, certlen, signer_id.sign_sk, &raw, &len), 0);
	assert_int_equal(load_rc(raw, len, NOW - 1), 0);
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_SIGNER);
	free(raw);
	free(cert);
}

static void
test_directory_rejects_signer_it_revokes(void **state)
{
	static const struct ruf_dir_revocation self[] = {{2, 1, NULL}};
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw = NULL;
	size_t len;
	struct body s;

	(void)state;
	t.revoked = self;
	t.n_revoked = 1;
	assert_int_equal(
	    ruf_directory_sign(&t, signer_raw, signer_len, signer_id.sign_sk, &raw, &len),
	    RUF_E_DIR_SIGNER);
	assert_null(raw);
	body_init(&s);
	s.r[0].serial = 2;
	assert_int_equal(body_load(&s), RUF_E_DIR_SIGNER);
	body_free(&s);
}

static void
test_directory_rejects_bad_signature(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw, *body, *forged;
	size_t len, bodylen, flen;
	struct body s;

	(void)state;
	sign_ok(&t, &raw, &len);
	/* The signature is the last 64 bytes. */
	raw[len - 1] ^= 0x01;
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_SIGNATURE);
	free(raw);
	/* A valid signer certificate, but the body signed by someone else. */
	body_init(&s);
	assert_int_equal(ruf_pb_encode(&s.b.base, &body, &bodylen), 0);
	wrap(body, bodylen, signer_raw, signer_len, other_id.sign_sk, &forged, &flen);
	assert_int_equal(load_rc(forged, flen, NOW), RUF_E_DIR_SIGNATURE);
	free(forged);
	free(body);
	body_free(&s);
	/* And ruf_directory_sign refuses a key that is not the certificate's. */
	raw = NULL;
	assert_int_equal(
	    ruf_directory_sign(&t, signer_raw, signer_len, other_id.sign_sk, &raw, &len),
	    RUF_E_INVAL);
	assert_null(raw);
}

static void
test_directory_rejects_expired(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw;
	size_t len;

	(void)state;
	sign_ok(&t, &raw, &len);
	assert_int_equal(load_rc(raw, len, EXPIRES), 0);
	assert_int_equal(load_rc(raw, len, EXPIRES + 1), RUF_E_DIR_EXPIRED);
	free(raw);
}

/* The documented order: the signer is judged before the signature and expiry. */
static void
test_directory_checks_run_in_documented_order(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw;
	size_t len;

	(void)state;
	sign_ok(&t, &raw, &len);
	raw[len - 1] ^= 0x01;
	/* Expired and badly signed: the signature is reported. */
	assert_int_equal(load_rc(raw, len, EXPIRES + 1), RUF_E_DIR_SIGNATURE);
	/* Signer expired too (NA): the signer is reported. */
	assert_int_equal(load_rc(raw, len, NA + 1), RUF_E_DIR_SIGNER);
	free(raw);
}

static void
test_directory_accept_rejects_rollback(void **state)
{
	struct ruf_directory_template t1 = tmpl(1), t2 = tmpl(2);
	uint8_t *r1, *r1b, *r2;
	size_t l1, l1b, l2;
	ruf_directory *d1, *d1b, *d2;

	(void)state;
	sign_ok(&t1, &r1, &l1);
	t1.expires_at = EXPIRES + 1; /* same version, different content */
	sign_ok(&t1, &r1b, &l1b);
	sign_ok(&t2, &r2, &l2);
	d1 = load_ok(r1, l1, NOW);
	d1b = load_ok(r1b, l1b, NOW);
	d2 = load_ok(r2, l2, NOW);
	assert_int_equal(ruf_directory_accept(NULL, d1), 0);
	assert_int_equal(ruf_directory_accept(d1, d2), 0);
	assert_int_equal(ruf_directory_accept(d1, d1), RUF_E_DIR_ROLLBACK);
	assert_int_equal(ruf_directory_accept(d1, d1b), RUF_E_DIR_ROLLBACK);
	assert_int_equal(ruf_directory_accept(d2, d1), RUF_E_DIR_ROLLBACK);
	assert_int_equal(ruf_directory_accept(d2, NULL), RUF_E_INVAL);
	ruf_directory_free(d2);
	ruf_directory_free(d1b);
	ruf_directory_free(d1);
	free(r2);
	free(r1b);
	free(r1);
}

static void
test_directory_rejects_any_flipped_byte(void **state)
{
	static const uint8_t masks[] = {0x01, 0xff};
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw, *bad;
	size_t len;

	(void)state;
	t.n_revoked = 1;
	sign_ok(&t, &raw, &len);
	bad = malloc(len);
	assert_non_null(bad);
	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(bad, raw, len);
			bad[i] ^= masks[m];
			assert_int_not_equal(load_rc(bad, len, NOW), 0);
		}
	}
	free(bad);
	free(raw);
}

static void
test_directory_rejects_truncated_and_trailing(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	uint8_t *raw, *buf;
	size_t len;

	(void)state;
	sign_ok(&t, &raw, &len);
	for (size_t n = 0; n < len; n++) {
		/* An exact-size copy so ASan sees any read past n. */
		buf = malloc(n + 1);
		assert_non_null(buf);
		memcpy(buf, raw, n);
		assert_int_not_equal(load_rc(buf, n, NOW), 0);
		free(buf);
	}
	buf = malloc(len + 1);
	assert_non_null(buf);
	memcpy(buf, raw, len);
	buf[len] = 0;
	assert_int_equal(load_rc(buf, len + 1, NOW), RUF_E_DIR_FORMAT);
	free(buf);
	free(raw);
}

static void
test_directory_rejects_duplicate_field(void **state)
{
	struct body s;
	uint8_t *body, *dup, *raw;
	size_t bodylen, len;

	(void)state;
	body_init(&s);
	assert_int_equal(ruf_pb_encode(&s.b.base, &body, &bodylen), 0);
	/* A second version (field 2, varint) = 9 after the body. */
	dup = malloc(bodylen + 2);
	assert_non_null(dup);
	memcpy(dup, body, bodylen);
	dup[bodylen] = 0x10;
	dup[bodylen + 1] = 0x09;
	wrap(dup, bodylen + 2, signer_raw, signer_len, signer_id.sign_sk, &raw, &len);
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_FORMAT);
	free(raw);
	free(dup);
	free(body);
	body_free(&s);
}

/* Counts are refused before protobuf-c allocates an element for each. */
static void
test_directory_rejects_oversized_lists(void **state)
{
	size_t n = 300000, len;
	uint8_t *body, *raw;
	Ruf__DirectoryRevocation *many, **manyp;
	struct body s;

	(void)state;
	/* 300000 empty queues, two bytes each (tag 0x2a, length 0). */
	body = malloc(2 * n);
	assert_non_null(body);
	for (size_t i = 0; i < n; i++) {
		body[2 * i] = 0x2a;
		body[2 * i + 1] = 0x00;
	}
	wrap(body, 2 * n, signer_raw, signer_len, signer_id.sign_sk, &raw, &len);
	assert_int_equal(load_rc(raw, len, NOW), RUF_E_DIR_FORMAT);
	free(raw);
	free(body);

	/* 262145 revoked serials, well formed and sorted. */
	body_init(&s);
	many = malloc(262145 * sizeof(*many));
	manyp = malloc(262145 * sizeof(*manyp));
	assert_non_null(many);
	assert_non_null(manyp);
	for (size_t i = 0; i < 262145; i++) {
		ruf__directory_revocation__init(&many[i]);
		many[i].serial = 1000 + i;
		many[i].revoked_at = 1;
		manyp[i] = &many[i];
	}
	s.b.revocations = manyp;
	s.b.n_revocations = 262144;
	assert_int_equal(body_load(&s), 0);
	s.b.n_revocations = 262145;
	assert_int_equal(body_load(&s), RUF_E_DIR_FORMAT);
	free(manyp);
	free(many);
	body_free(&s);
}

static void
test_directory_load_needs_a_real_root(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	ruf_cert *signer;
	ruf_directory *d = NULL;
	uint8_t *raw;
	size_t len;

	(void)state;
	sign_ok(&t, &raw, &len);
	assert_int_equal(ruf_cert_parse(signer_raw, signer_len, &signer), 0);
	assert_int_equal(ruf_directory_load_mem(raw, len, signer, NOW, &d), RUF_E_DIR_SIGNER);
	assert_int_equal(ruf_directory_load_mem(raw, len, NULL, NOW, &d), RUF_E_INVAL);
	assert_null(d);
	ruf_cert_free(signer);
	free(raw);
}

static void
test_directory_load_reads_file(void **state)
{
	char path[] = "/tmp/ruf-test-dir-XXXXXX";
	struct ruf_directory_template t = tmpl(4);
	ruf_directory *d = NULL;
	uint8_t *raw;
	size_t len;
	int fd;

	(void)state;
	sign_ok(&t, &raw, &len);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ruf_file_write_atomic(path, raw, len, 0600, false), 0);
	assert_int_equal(ruf_directory_load(path, root, NOW, &d), 0);
	assert_int_equal(d->version, 4);
	ruf_directory_free(d);
	unlink(path);
	assert_int_not_equal(ruf_directory_load(path, root, NOW, &d), 0);
	assert_null(d);
	free(raw);
}

/* The vector pins both layers and, through the policy, the compiled policy format. */
static void
test_directory_encoder_reproduces_vector(void **state)
{
	struct ruf_directory_template t = tmpl(1);
	char path[512], *hex;
	uint8_t *raw, *file;
	size_t len, flen;
	ruf_directory *d;

	(void)state;
	sign_ok(&t, &raw, &len);
	hex = malloc(2 * len + 2);
	assert_non_null(hex);
	ruf_hex(raw, len, hex);
	snprintf(path, sizeof(path), "%s/tests/vectors/cert/directory.hex", RUF_SOURCE_DIR);
	if (getenv("RUF_WRITE_VECTORS") != NULL) {
		strcat(hex, "\n");
		assert_int_equal(ruf_file_write_atomic(path, hex, 2 * len + 1, 0644, false), 0);
		hex[2 * len] = '\0';
	}
	assert_int_equal(ruf_file_read(path, 1 << 20, &file, &flen), 0);
	if (flen > 0 && file[flen - 1] == '\n')
		flen--;
	assert_int_equal(flen, 2 * len);
	assert_memory_equal(file, hex, 2 * len);
	d = load_ok(raw, len, NOW);
	ruf_directory_free(d);

	if (getenv("RUF_WRITE_CORPUS") != NULL) {
		struct ruf_directory_template t2 = tmpl(2);
		struct body s;
		uint8_t *raw2, *body;
		size_t len2, bodylen;

		snprintf(path, sizeof(path), "%s/directory", getenv("RUF_WRITE_CORPUS"));
		assert_int_equal(ruf_file_write_atomic(path, raw, len, 0644, false), 0);
		t2.n_revoked = 0;
		hq.has_next = false;
		sign_ok(&t2, &raw2, &len2);
		hq.has_next = true;
		snprintf(path, sizeof(path), "%s/directory-minimal", getenv("RUF_WRITE_CORPUS"));
		assert_int_equal(ruf_file_write_atomic(path, raw2, len2, 0644, false), 0);
		free(raw2);
		/* fuzz_directory signs inputs that start with 0xff itself. */
		body_init(&s);
		assert_int_equal(ruf_pb_encode(&s.b.base, &body, &bodylen), 0);
		raw2 = malloc(bodylen + 1);
		assert_non_null(raw2);
		raw2[0] = 0xff;
		memcpy(raw2 + 1, body, bodylen);
		snprintf(path, sizeof(path), "%s/body", getenv("RUF_WRITE_CORPUS"));
		assert_int_equal(ruf_file_write_atomic(path, raw2, bodylen + 1, 0644, false), 0);
		free(raw2);
		free(body);
		body_free(&s);
	}
	free(file);
	free(hex);
	free(raw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_directory_round_trip_keeps_every_field),
	    cmocka_unit_test(test_directory_revoked_lookup),
	    cmocka_unit_test(test_directory_judge_uses_accept_time_against_revocation_time),
	    cmocka_unit_test(test_directory_sign_rejects_bad_revocations),
	    cmocka_unit_test(test_directory_sign_rejects_duplicates),
	    cmocka_unit_test(test_directory_rejects_unsorted_queues),
	    cmocka_unit_test(test_directory_rejects_bad_fields),
	    cmocka_unit_test(test_directory_rejects_missing_queue_key),
	    cmocka_unit_test(test_directory_rejects_signer_not_chained_to_root),
	    cmocka_unit_test(test_directory_rejects_signer_with_wrong_role),
	    cmocka_unit_test(test_directory_rejects_signer_outside_validity),
	    cmocka_unit_test(test_directory_rejects_signer_it_revokes),
	    cmocka_unit_test(test_directory_rejects_bad_signature),
	    cmocka_unit_test(test_directory_rejects_expired),
	    cmocka_unit_test(test_directory_checks_run_in_documented_order),
	    cmocka_unit_test(test_directory_accept_rejects_rollback),
	    cmocka_unit_test(test_directory_rejects_any_flipped_byte),
	    cmocka_unit_test(test_directory_rejects_truncated_and_trailing),
	    cmocka_unit_test(test_directory_rejects_duplicate_field),
	    cmocka_unit_test(test_directory_rejects_oversized_lists),
	    cmocka_unit_test(test_directory_load_needs_a_real_root),
	    cmocka_unit_test(test_directory_load_reads_file),
	    cmocka_unit_test(test_directory_encoder_reproduces_vector),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
