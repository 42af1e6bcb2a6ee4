/*
 * test_verify_known.c - the verifications that trust a certificate checked
 * earlier (the speed-ups of the ingest path): ruf_envelope_verify_mem
 * (rufd: a small upload in memory, with the session's certificate),
 * ruf_cert_reverify, ruf_wire_receipt_verify_known (the client: the server
 * certificate of its connection) and ruf_envelope_identity. Each must accept
 * exactly what the full check accepts, skip only the signatures of the very
 * certificate it was given, and still check validity windows and issuer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "../fuzz/envelope_fixture.h"
#include "envelope.h"
#include "err.h"
#include "util.h"
#include "wire.h"

static struct fx F;
static ruf_cert *dev; /* the device certificate, as rufd holds it after the handshake */
static uint8_t *env;
static size_t env_len;

static int
setup(void **state)
{
	static const uint8_t report[] = "sitrep: road to el geneina cut";
	struct ruf_env_header h;
	struct ruf_seal_params p;
	struct stat st;
	int fd;

	(void)state;
	if (fx_init(&F) != 0 || ruf_cert_parse(F.dev_raw, F.dev_len, &dev) != 0)
		return -1;
	h = fx_header();
	p = fx_params(&F, &h, report, sizeof(report) - 1, NULL, 0);
	if ((fd = memfd_create("env", MFD_CLOEXEC)) < 0 ||
	    ruf_envelope_seal(&p, fd, NULL, NULL) != 0 || fstat(fd, &st) != 0)
		return -1;
	env_len = (size_t)st.st_size;
	if (!(env = malloc(env_len)) || ruf_pread_all(fd, env, env_len, 0) != 0)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(env);
	ruf_cert_free(dev);
	fx_free(&F);
	return 0;
}

/* The file path's answer for the same bytes. */
static int
verify_fd(const uint8_t *p, size_t n, uint64_t now, struct ruf_env_info **info)
{
	int fd = memfd_create("env", MFD_CLOEXEC), rc;

	assert_true(fd >= 0);
	assert_int_equal(ruf_write_all(fd, p, n), 0);
	rc = ruf_envelope_verify(fd, F.root, NULL, now, info);
	close(fd);
	return rc;
}

static void
test_memory_verify_gives_what_file_verify_gives(void **state)
{
	struct ruf_env_info *a = NULL, *b = NULL, *c = NULL;

	(void)state;
	assert_int_equal(verify_fd(env, env_len, FX_NOW, &a), 0);
	assert_int_equal(
	    ruf_envelope_verify_mem(env, env_len, NULL, F.root, NULL, FX_NOW, NULL, &b), 0);
	assert_int_equal(ruf_envelope_verify_mem(env, env_len, dev, F.root, NULL, FX_NOW, NULL, &c),
	                 0);
	assert_memory_equal(a->hash, b->hash, 32);
	assert_memory_equal(a->hash, c->hash, 32);
	assert_int_equal(a->total_len, env_len);
	assert_int_equal(c->total_len, env_len);
	assert_memory_equal(a->hdr.message_id, c->hdr.message_id, RUF_MSGID_BYTES);
	assert_int_equal(a->n_recipients, c->n_recipients);
	/* Without a trusted certificate the sender is parsed; with it, it is the caller's. */
	assert_non_null(b->sender);
	assert_int_equal(b->sender->serial, FX_DEVICE_SERIAL);
	assert_null(c->sender);
	ruf_env_info_free(a);
	ruf_env_info_free(b);
	ruf_env_info_free(c);
}

static void
test_every_flipped_byte_is_refused_from_memory(void **state)
{
	uint8_t *p = malloc(env_len);

	(void)state;
	assert_non_null(p);
	/* Every byte: the signature or the structure must catch it. */
	for (size_t i = 0; i < env_len; i++) {
		memcpy(p, env, env_len);
		p[i] ^= 0x01;
		assert_int_not_equal(
		    ruf_envelope_verify_mem(p, env_len, dev, F.root, NULL, FX_NOW, NULL, NULL), 0);
	}
	free(p);
}

static void
test_truncated_or_extended_memory_is_a_format_error(void **state)
{
	uint8_t *p = malloc(env_len + 1);

	(void)state;
	assert_non_null(p);
	memcpy(p, env, env_len);
	p[env_len] = 0;
	assert_int_equal(
	    ruf_envelope_verify_mem(p, env_len - 1, dev, F.root, NULL, FX_NOW, NULL, NULL),
	    RUF_E_ENV_FORMAT);
	assert_int_equal(
	    ruf_envelope_verify_mem(p, env_len + 1, dev, F.root, NULL, FX_NOW, NULL, NULL),
	    RUF_E_ENV_FORMAT);
	assert_int_equal(ruf_envelope_verify_mem(p, 10, dev, F.root, NULL, FX_NOW, NULL, NULL),
	                 RUF_E_ENV_FORMAT);
	assert_int_equal(ruf_envelope_verify_mem(NULL, 0, dev, F.root, NULL, FX_NOW, NULL, NULL),
	                 RUF_E_INVAL);
	free(p);
}

static void
test_trusted_certificate_still_expires(void **state)
{
	(void)state;
	/* The session may outlive its certificate: the window is checked again. */
	assert_int_equal(
	    ruf_envelope_verify_mem(env, env_len, dev, F.root, NULL, FX_NA + 1, NULL, NULL),
	    RUF_E_ENV_SENDER);
	assert_int_equal(
	    ruf_envelope_verify_mem(env, env_len, dev, F.root, NULL, FX_NB - 1, NULL, NULL),
	    RUF_E_ENV_SENDER);
}

static ruf_cert *other_root(void);

static void
test_trusted_certificate_under_another_root_is_refused(void **state)
{
	ruf_cert *other = other_root();

	(void)state;
	/* A root reloaded with another key: the session's certificate is not under it. */
	assert_int_equal(
	    ruf_envelope_verify_mem(env, env_len, dev, other, NULL, FX_NOW, NULL, NULL),
	    RUF_E_ENV_SENDER);
	ruf_cert_free(other);
}

static void
test_other_trusted_certificate_means_full_verification(void **state)
{
	ruf_cert *desk = NULL;
	struct ruf_env_info *info = NULL;

	(void)state;
	/* Given some other certificate, the envelope's own is parsed and verified in full. */
	assert_int_equal(ruf_cert_parse(F.desk_raw, F.desk_len, &desk), 0);
	assert_int_equal(
	    ruf_envelope_verify_mem(env, env_len, desk, F.root, NULL, FX_NOW, NULL, &info), 0);
	assert_non_null(info->sender);
	assert_int_equal(info->sender->serial, FX_DEVICE_SERIAL);
	ruf_env_info_free(info);
	ruf_cert_free(desk);
}

/* A root with another key than the fixture's (a reloaded root). */
static ruf_cert *
other_root(void)
{
	struct fx o;
	ruf_cert *r = NULL;

	memset(&o, 0, sizeof(o));
	fx_ident_make(&o.root_id, 0x71);
	assert_int_equal(fx_issue(&o, &o.root_id, RUF_ROLE_ROOT, 1, "root", NULL, FX_NB, FX_NA,
	                          NULL, 0, NULL, 0, &o.root_raw, &o.root_len),
	                 0);
	assert_int_equal(ruf_cert_parse(o.root_raw, o.root_len, &r), 0);
	free(o.root_raw);
	return r;
}

static void
test_reverify_checks_issuer_and_windows_but_no_signature(void **state)
{
	ruf_cert *forged = NULL, *other = other_root();

	(void)state;
	assert_int_equal(ruf_cert_reverify(dev, F.root, FX_NOW), 0);
	assert_int_equal(ruf_cert_reverify(dev, F.root, FX_NA + 1), RUF_E_CERT_EXPIRED);
	assert_int_equal(ruf_cert_reverify(dev, F.root, FX_NB - 1), RUF_E_CERT_NOT_YET_VALID);
	assert_int_equal(ruf_cert_reverify(dev, other, FX_NOW), RUF_E_CERT_ISSUER);
	assert_int_equal(ruf_cert_reverify(NULL, F.root, FX_NOW), RUF_E_INVAL);
	/* What it does not do, by contract: a bad signature needs ruf_cert_verify. */
	assert_int_equal(ruf_cert_parse(F.dev_raw, F.dev_len, &forged), 0);
	forged->signature[0] ^= 1;
	assert_int_equal(ruf_cert_verify(forged, F.root, FX_NOW), RUF_E_CERT_SIGNATURE);
	assert_int_equal(ruf_cert_reverify(forged, F.root, FX_NOW), 0);
	ruf_cert_free(forged);
	ruf_cert_free(other);
}

static void
test_known_server_receipt_verifies_like_the_full_check(void **state)
{
	static const char *const q[] = {"hrt"};
	struct fx_ident srv_id;
	uint8_t *srv_raw = NULL, *r = NULL, id[RUF_WIRE_MSGID_BYTES], hash[RUF_WIRE_HASH_BYTES];
	size_t srv_len = 0, rlen = 0;
	ruf_cert *srv = NULL, *other = other_root();
	struct ruf_wire_receipt_body b = {0};
	struct ruf_wire_receipt_info info;

	(void)state;
	fx_ident_make(&srv_id, 0x44);
	assert_int_equal(fx_issue(&F, &srv_id, RUF_ROLE_SERVER, 5, "hq", NULL, FX_NB, FX_NA, NULL,
	                          0, NULL, 0, &srv_raw, &srv_len),
	                 0);
	assert_int_equal(ruf_cert_parse(srv_raw, srv_len, &srv), 0);
	memset(id, 0x11, sizeof(id));
	memset(hash, 0x22, sizeof(hash));
	memcpy(b.message_id, id, sizeof(id));
	memcpy(b.envelope_hash, hash, sizeof(hash));
	b.queues = q;
	b.n_queues = 1;
	b.store_seq = 7;
	b.time = FX_NOW;
	b.device_serial = FX_DEVICE_SERIAL;
	b.server_serial = 5;
	assert_int_equal(ruf_wire_receipt_sign(&b, srv_id.sign_sk, &r, &rlen), 0);
	assert_int_equal(ruf_wire_receipt_verify(r, rlen, srv, F.root, FX_NOW, id, hash, &info), 0);
	assert_int_equal(
	    ruf_wire_receipt_verify_known(r, rlen, srv, F.root, FX_NOW, id, hash, &info), 0);
	assert_int_equal(info.body.store_seq, 7);
	assert_string_equal(info.body.queues[0], "hrt");
	/* The receipt's own signature, the expectations and the windows still count. */
	assert_int_equal(
	    ruf_wire_receipt_verify_known(r, rlen, srv, F.root, FX_NA + 1, id, hash, NULL),
	    RUF_E_CERT_EXPIRED);
	assert_int_equal(ruf_wire_receipt_verify_known(r, rlen, srv, other, FX_NOW, id, hash, NULL),
	                 RUF_E_CERT_ISSUER);
	assert_int_equal(
	    ruf_wire_receipt_verify_known(r, rlen, dev, F.root, FX_NOW, id, hash, NULL),
	    RUF_E_CERT_ROLE);
	hash[0] ^= 1;
	assert_int_equal(
	    ruf_wire_receipt_verify_known(r, rlen, srv, F.root, FX_NOW, id, hash, NULL),
	    RUF_E_WIRE_RECEIPT);
	r[rlen - 1] ^= 1; /* inside the signature */
	assert_int_equal(
	    ruf_wire_receipt_verify_known(r, rlen, srv, F.root, FX_NOW, NULL, NULL, NULL),
	    RUF_E_AUTH);
	free(r);
	free(srv_raw);
	ruf_cert_free(srv);
	ruf_cert_free(other);
}

static void
test_identity_is_inspects_id_hash_and_length(void **state)
{
	struct ruf_env_info *info = NULL;
	uint8_t id[RUF_MSGID_BYTES], hash[32];
	uint64_t total = 0;
	int fd = memfd_create("env", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ruf_write_all(fd, env, env_len), 0);
	assert_int_equal(ruf_envelope_inspect(fd, &info), 0);
	assert_int_equal(ruf_envelope_identity(fd, id, hash, &total), 0);
	assert_memory_equal(id, info->hdr.message_id, RUF_MSGID_BYTES);
	assert_memory_equal(hash, info->hash, 32);
	assert_int_equal(total, info->total_len);
	ruf_env_info_free(info);
	/* A file one byte longer than its head says is not an envelope. */
	assert_int_equal(ruf_write_all(fd, (const uint8_t *)"x", 1), 0);
	assert_int_equal(ruf_envelope_identity(fd, id, hash, &total), RUF_E_ENV_FORMAT);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_memory_verify_gives_what_file_verify_gives),
	    cmocka_unit_test(test_every_flipped_byte_is_refused_from_memory),
	    cmocka_unit_test(test_truncated_or_extended_memory_is_a_format_error),
	    cmocka_unit_test(test_trusted_certificate_still_expires),
	    cmocka_unit_test(test_trusted_certificate_under_another_root_is_refused),
	    cmocka_unit_test(test_other_trusted_certificate_means_full_verification),
	    cmocka_unit_test(test_reverify_checks_issuer_and_windows_but_no_signature),
	    cmocka_unit_test(test_known_server_receipt_verifies_like_the_full_check),
	    cmocka_unit_test(test_identity_is_inspects_id_hash_and_length),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
