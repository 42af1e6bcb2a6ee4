/*
 * envelope_fixture.h - a small deterministic PKI for the envelope tests and
 * fuzzers: every key comes from a fixed seed, so the seeds the unit test
 * writes (RUF_WRITE_CORPUS) open under the PKI the fuzzer builds at start.
 *
 * Root (serial 1), device rc-sd-1 (serial 100, country sd, situation
 * darfur), desk hrt-desk (serial 200, queues hrt and sag), queue keys hrt
 * and sag at epoch 1, a keystore holding both, all valid around FX_NOW.
 * Functions return 0 or -1; nothing here uses cmocka.
 */
#ifndef RUF_ENVELOPE_FIXTURE_H
#define RUF_ENVELOPE_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "envelope.h"
#include "keystore.h"

#define FX_NB 1790000000u
#define FX_NA 1830000000u
#define FX_NOW 1800000000u
#define FX_DEVICE_SERIAL 100u
#define FX_DESK_SERIAL 200u

struct fx_ident {
	uint8_t sign_pk[RUF_SIGN_PK_BYTES];
	uint8_t sign_sk[RUF_SIGN_SK_BYTES];
	uint8_t kx_pk[RUF_KX_PK_BYTES];
};

struct fx {
	struct fx_ident root_id, dev_id, desk_id;
	uint8_t *root_raw, *dev_raw, *desk_raw;
	size_t root_len, dev_len, desk_len;
	ruf_cert *root;
	uint8_t q_sk[2][RUF_KX_SK_BYTES]; /* hrt, sag */
	uint8_t q_pk[2][RUF_KX_PK_BYTES];
	ruf_keystore *ks; /* hrt and sag, epoch 1 */
	struct ruf_seal_recipient rcpt[2];
};

static inline void
fx_kx(uint8_t sk[32], uint8_t pk[32], uint8_t tag)
{
	memset(sk, tag, 32);
	sk[0] &= 248; /* any 32 bytes are a key; keep it looking like a clamped scalar */
	crypto_scalarmult_base(pk, sk);
}

static inline void
fx_ident_make(struct fx_ident *id, uint8_t tag)
{
	uint8_t seed[crypto_sign_SEEDBYTES], sk[32];

	memset(seed, tag, sizeof(seed));
	crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, seed);
	fx_kx(sk, id->kx_pk, (uint8_t)(tag ^ 0x5a));
}

/* Issues a certificate for id signed by the root; situations/queues may be NULL. */
static inline int
fx_issue(const struct fx *f, const struct fx_ident *id, int role, uint64_t serial,
         const char *subject, const char *country, uint64_t nb, uint64_t na,
         const char *const *situations, size_t n_situations, const char *const *queues,
         size_t n_queues, uint8_t **out, size_t *len)
{
	struct ruf_cert_template t = {
	    .role = role,
	    .serial = serial,
	    .subject = subject,
	    .country = country,
	    .not_before = nb,
	    .not_after = na,
	    .sign_pk = id->sign_pk,
	    .kx_pk = id->kx_pk,
	    .situations = situations,
	    .n_situations = n_situations,
	    .queues = queues,
	    .n_queues = n_queues,
	};

	return ruf_cert_issue(&t, f->root_id.sign_sk, f->root_id.sign_pk, out, len) == 0 ? 0 : -1;
}

static inline int
fx_add_queue_key(ruf_keystore *ks, const char *name, uint32_t epoch, const uint8_t sk[32],
                 const uint8_t pk[32])
{
	struct ruf_key k;
	uint8_t skcopy[32];
	int rc;

	memset(&k, 0, sizeof(k));
	k.type = RUF_KEY_QUEUE;
	snprintf(k.name, sizeof(k.name), "%s", name);
	k.epoch = epoch;
	memcpy(k.pk, pk, 32);
	memcpy(skcopy, sk, 32);
	k.sk = skcopy;
	k.sklen = 32;
	rc = ruf_keystore_add(ks, &k);
	sodium_memzero(skcopy, sizeof(skcopy));
	return rc == 0 ? 0 : -1;
}

static inline int
fx_init(struct fx *f)
{
	static const char *const situations[] = {"darfur"};
	static const char *const queues[] = {"hrt", "sag"};

	memset(f, 0, sizeof(*f));
	if (sodium_init() < 0)
		return -1;
	fx_ident_make(&f->root_id, 0x01);
	fx_ident_make(&f->dev_id, 0x02);
	fx_ident_make(&f->desk_id, 0x03);
	f->root_raw = NULL;
	{
		struct ruf_cert_template t = {
		    .role = RUF_ROLE_ROOT,
		    .serial = 1,
		    .subject = "hq-root",
		    .not_before = FX_NB,
		    .not_after = FX_NA,
		    .sign_pk = f->root_id.sign_pk,
		    .kx_pk = f->root_id.kx_pk,
		};
		if (ruf_cert_issue(&t, f->root_id.sign_sk, f->root_id.sign_pk, &f->root_raw,
		                   &f->root_len) != 0)
			return -1;
	}
	if (ruf_cert_parse(f->root_raw, f->root_len, &f->root) != 0)
		return -1;
	if (fx_issue(f, &f->dev_id, RUF_ROLE_DEVICE, FX_DEVICE_SERIAL, "rc-sd-1", "sd", FX_NB,
	             FX_NA, situations, 1, NULL, 0, &f->dev_raw, &f->dev_len) != 0)
		return -1;
	if (fx_issue(f, &f->desk_id, RUF_ROLE_DESK, FX_DESK_SERIAL, "hrt-desk", NULL, FX_NB, FX_NA,
	             NULL, 0, queues, 2, &f->desk_raw, &f->desk_len) != 0)
		return -1;
	fx_kx(f->q_sk[0], f->q_pk[0], 0x21);
	fx_kx(f->q_sk[1], f->q_pk[1], 0x22);
	if (ruf_keystore_new(&f->ks) != 0 ||
	    fx_add_queue_key(f->ks, "hrt", 1, f->q_sk[0], f->q_pk[0]) != 0 ||
	    fx_add_queue_key(f->ks, "sag", 1, f->q_sk[1], f->q_pk[1]) != 0)
		return -1;
	/* Given unsorted on purpose: seal sorts. */
	f->rcpt[0] = (struct ruf_seal_recipient){"sag", 1, f->q_pk[1]};
	f->rcpt[1] = (struct ruf_seal_recipient){"hrt", 1, f->q_pk[0]};
	return 0;
}

static inline void
fx_free(struct fx *f)
{
	ruf_keystore_free(f->ks);
	ruf_cert_free(f->root);
	free(f->root_raw);
	free(f->dev_raw);
	free(f->desk_raw);
	sodium_memzero(f, sizeof(*f));
}

/* A sitrep header from the fixture's device. */
static inline struct ruf_env_header
fx_header(void)
{
	struct ruf_env_header h;

	memset(&h, 0, sizeof(h));
	h.created = FX_NOW - 100;
	h.sequence = 1;
	h.device_serial = FX_DEVICE_SERIAL;
	h.kind = RUF_KIND_SITREP;
	strcpy(h.situation, "darfur");
	strcpy(h.country, "sd");
	strcpy(h.region, "east-africa");
	h.risk = RUF_RISK_HIGH;
	h.flags = RUF_FLAG_VIOLATIONS;
	h.directory_version = 1;
	return h;
}

/* Seal params for the fixture's device with report and attachments. */
static inline struct ruf_seal_params
fx_params(const struct fx *f, const struct ruf_env_header *h, const uint8_t *report,
          size_t report_len, const struct ruf_seal_attachment *atts, size_t n_atts)
{
	struct ruf_seal_params p = {
	    .hdr = h,
	    .report = report,
	    .report_len = report_len,
	    .attachments = atts,
	    .n_attachments = n_atts,
	    .recipients = f->rcpt,
	    .n_recipients = 2,
	    .device_cert = f->dev_raw,
	    .device_cert_len = f->dev_len,
	    .sign_sk = f->dev_id.sign_sk,
	};
	return p;
}

#endif
