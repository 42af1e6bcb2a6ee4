/*
 * test_field_formats.c - the field client's on-disk formats: the outbox
 * metadata record, the content key wrap, the bundle reader/writer
 * (client/outbox.h, client/bundle.h). With RUF_WRITE_CORPUS=dir it writes
 * the fuzz seeds into dir/outbox_meta/ and dir/bundle/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../client/cli_bundle.c"
#include "../../client/cli_outbox.c"

const char *cli_progname = "test";

void
cli_path(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outlen)
		abort();
}

static void
write_seed(const char *sub, const char *name, const void *p, size_t n)
{
	const char *dir = getenv("RUF_WRITE_CORPUS");
	char path[4096];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	ruf_mkdirs(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void
sample(struct outbox_entry *e, int state)
{
	memset(e, 0, sizeof(*e));
	randombytes_buf(e->msgid, sizeof(e->msgid));
	ruf_hex(e->msgid, sizeof(e->msgid), e->id);
	e->kind = 1;
	e->risk = 3;
	e->created = 1795000000;
	e->state = state;
	e->total_len = 2048;
	e->confirmed = state == OUTBOX_INFLIGHT ? 1024 : 0;
	e->dir_version = 2;
	snprintf(e->queues, sizeof(e->queues), "hrt,itf.darfur,sag");
	if (state == OUTBOX_FAILED)
		snprintf(e->reason, sizeof(e->reason), "the server rejected the envelope");
	if (state == OUTBOX_DELIVERED) {
		e->receipt = malloc(100);
		assert_non_null(e->receipt);
		memset(e->receipt, 0x5a, 100);
		e->receipt_len = 100;
		e->store_seq = 7;
		e->receipt_time = 1795000100;
		e->confirmed = e->total_len;
	}
	e->attempts = 2;
	e->updated = 1795000050;
}

static void
test_outbox_meta_round_trips_every_state(void **state)
{
	static const char *const names[] = {"pending", "in-flight", "delivered", "failed"};
	(void)state;
	for (int s = OUTBOX_PENDING; s <= OUTBOX_FAILED; s++) {
		struct outbox_entry a, b;
		uint8_t *buf;
		size_t len;

		sample(&a, s);
		assert_int_equal(outbox_meta_encode(&a, &buf, &len), 0);
		assert_int_equal(outbox_meta_decode(buf, len, &b), 0);
		assert_string_equal(a.id, b.id);
		assert_int_equal(a.state, b.state);
		assert_int_equal(a.confirmed, b.confirmed);
		assert_string_equal(a.queues, b.queues);
		assert_string_equal(a.reason, b.reason);
		assert_int_equal(a.receipt_len, b.receipt_len);
		if (a.receipt_len)
			assert_memory_equal(a.receipt, b.receipt, a.receipt_len);
		write_seed("outbox_meta", names[s], buf, len);
		free(buf);
		outbox_entry_clear(&a);
		outbox_entry_clear(&b);
	}
}

static void
test_outbox_meta_rejects_truncation_trailing_and_versions(void **state)
{
	struct outbox_entry a, b;
	uint8_t *buf, *big;
	size_t len;

	(void)state;
	sample(&a, OUTBOX_DELIVERED);
	assert_int_equal(outbox_meta_encode(&a, &buf, &len), 0);
	for (size_t k = 0; k < len; k++)
		assert_int_not_equal(outbox_meta_decode(buf, k, &b), 0);
	assert_non_null(big = malloc(len + 1));
	memcpy(big, buf, len);
	big[len] = 0;
	assert_int_equal(outbox_meta_decode(big, len + 1, &b), RUF_E_TRAILING);
	buf[3 + 8] = 2; /* version 2: byte after 0xdc 00 10 0xcf + 7 zero bytes */
	assert_int_equal(outbox_meta_decode(buf, len, &b), RUF_E_VERSION);
	buf[3 + 8] = 1;
	buf[3] = 0xce; /* a shorter integer encoding is not the record's */
	assert_int_equal(outbox_meta_decode(buf, len, &b), RUF_E_FORMAT);
	free(big);
	free(buf);
	outbox_entry_clear(&a);
}

static void
test_outbox_meta_rejects_delivered_without_receipt(void **state)
{
	struct outbox_entry a, b;
	uint8_t *buf;
	size_t len;

	(void)state;
	sample(&a, OUTBOX_PENDING);
	a.state = OUTBOX_DELIVERED; /* no receipt */
	assert_int_equal(outbox_meta_encode(&a, &buf, &len), 0);
	assert_int_equal(outbox_meta_decode(buf, len, &b), RUF_E_FORMAT);
	free(buf);
	a.state = OUTBOX_PENDING;
	a.confirmed = a.total_len + 1;
	assert_int_equal(outbox_meta_encode(&a, &buf, &len), 0);
	assert_int_equal(outbox_meta_decode(buf, len, &b), RUF_E_FORMAT);
	free(buf);
}

static void
test_key_wrap_is_bound_to_its_entry_and_destroyed(void **state)
{
	char dir[] = "/tmp/ruf-outbox-test.XXXXXX", path[4200];
	uint8_t pk[32], sk[32], key[32], got[32], pk2[32], sk2[32];
	struct outbox_entry a, b;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	crypto_box_keypair(pk, sk);
	crypto_box_keypair(pk2, sk2);
	randombytes_buf(key, sizeof(key));
	sample(&a, OUTBOX_PENDING);
	sample(&b, OUTBOX_PENDING);
	assert_int_equal(outbox_key_write(dir, &a, key, pk), 0);
	assert_int_equal(outbox_key_read(dir, &a, pk, sk, got), 0);
	assert_memory_equal(key, got, 32);
	assert_int_equal(outbox_key_read(dir, &a, pk2, sk2, got), RUF_E_AUTH);
	/* a wrap moved to another entry's name does not open there */
	snprintf(path, sizeof(path), "%s/%s.key", dir, a.id);
	{
		char to[4200];
		snprintf(to, sizeof(to), "%s/%s.key", dir, b.id);
		assert_int_equal(link(path, to), 0);
		assert_int_equal(outbox_key_read(dir, &b, pk, sk, got), RUF_E_AUTH);
		unlink(to);
	}
	assert_int_equal(outbox_key_destroy(dir, a.id), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(outbox_key_read(dir, &a, pk, sk, got), RUF_E_NOTFOUND);
	assert_int_equal(outbox_key_destroy(dir, a.id), 0); /* idempotent */
	rmdir(dir);
}

static int
memfd_with(const void *p, size_t n)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ruf_write_all(fd, p, n), 0);
	return fd;
}

static size_t
read_all(int fd, uint8_t **out)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_non_null(*out = malloc((size_t)st.st_size + 1));
	assert_int_equal(ruf_pread_all(fd, *out, (size_t)st.st_size, 0), 0);
	return (size_t)st.st_size;
}

struct seen {
	size_t n, good;
	uint64_t lens[8];
};

static int
count(void *ctx, int fd, const struct bundle_entry *e)
{
	struct seen *s = ctx;
	(void)fd;
	s->lens[s->n++] = e->len;
	s->good += e->hash_ok;
	return 0;
}

/* A bundle of three envelopes (arbitrary bytes: the reader checks framing and hashes). */
static size_t
make_bundle(uint8_t **out)
{
	int fd = memfd_create("b", MFD_CLOEXEC);
	uint8_t id[16] = {1};
	size_t sizes[3] = {1, 300, 70000};

	assert_int_equal(bundle_write_begin(fd, BUNDLE_KIND_ENVELOPES, 3, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		uint8_t *p = malloc(sizes[i]);
		int src;
		assert_non_null(p);
		memset(p, 'a' + i, sizes[i]);
		src = memfd_with(p, sizes[i]);
		id[0] = (uint8_t)i;
		assert_int_equal(bundle_write_envelope(fd, id, src, sizes[i]), 0);
		close(src);
		free(p);
	}
	assert_int_equal(bundle_write_end(fd), 0);
	{
		size_t n = read_all(fd, out);
		close(fd);
		return n;
	}
}

static void
test_bundle_round_trips_and_names_a_damaged_envelope(void **state)
{
	uint8_t *b;
	size_t n = make_bundle(&b);
	struct seen s = {0};
	ruf_diag d = {{0}};
	int fd;

	(void)state;
	fd = memfd_with(b, n);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, count, &s, NULL, NULL, &d), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.good, 3);
	assert_int_equal(s.lens[2], 70000);
	close(fd);
	write_seed("bundle", "three-envelopes", b, n < 2000 ? n : 2000); /* truncated seed too */
	b[16 + 25 + 1 + 32 + 25 + 10] ^= 1; /* inside the second envelope */
	fd = memfd_with(b, n);
	memset(&s, 0, sizeof(s));
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, count, &s, NULL, NULL, &d), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.good, 2);
	close(fd);
	free(b);
}

static void
test_bundle_rejects_bad_framing(void **state)
{
	uint8_t *b;
	size_t n = make_bundle(&b);
	ruf_diag d = {{0}};
	int fd;

	(void)state;
	/* truncated anywhere in the framing */
	for (size_t k = 0; k < 60; k++) {
		fd = memfd_with(b, k);
		assert_int_not_equal(
		    bundle_read(fd, BUNDLE_KIND_ENVELOPES, NULL, NULL, NULL, NULL, &d), 0);
		close(fd);
	}
	fd = memfd_with(b, n - 1);
	assert_int_not_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, NULL, NULL, NULL, NULL, &d), 0);
	close(fd);
	/* trailing byte */
	b = realloc(b, n + 1);
	b[n] = 0;
	fd = memfd_with(b, n + 1);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, NULL, NULL, NULL, NULL, &d),
	                 RUF_E_TRAILING);
	close(fd);
	/* wrong kind, version, magic, huge length */
	fd = memfd_with(b, n);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_RECEIPTS, NULL, NULL, NULL, NULL, &d),
	                 RUF_E_FORMAT);
	close(fd);
	b[9] = 2;
	fd = memfd_with(b, n);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, NULL, NULL, NULL, NULL, &d),
	                 RUF_E_VERSION);
	close(fd);
	b[9] = 1;
	b[16 + 17] = 0xff; /* first entry claims > 2^56 bytes */
	fd = memfd_with(b, n);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, NULL, NULL, NULL, NULL, &d),
	                 RUF_E_FORMAT);
	close(fd);
	b[0] = 'X';
	fd = memfd_with(b, n);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_ENVELOPES, NULL, NULL, NULL, NULL, &d),
	                 RUF_E_FORMAT);
	close(fd);
	free(b);
}

static void
test_receipt_bundle_round_trips_with_its_certificate(void **state)
{
	int fd = memfd_create("r", MFD_CLOEXEC);
	uint8_t id[16] = {9}, r[50], *cert, *b;
	size_t cl, n;
	struct seen s = {0};

	(void)state;
	memset(r, 7, sizeof(r));
	assert_int_equal(
	    bundle_write_begin(fd, BUNDLE_KIND_RECEIPTS, 2, (const uint8_t *)"CERT", 4), 0);
	assert_int_equal(bundle_write_receipt(fd, id, r, sizeof(r)), 0);
	assert_int_equal(bundle_write_receipt(fd, id, r, 1), 0);
	assert_int_equal(bundle_write_end(fd), 0);
	assert_int_equal(bundle_read(fd, BUNDLE_KIND_RECEIPTS, count, &s, &cert, &cl, NULL), 0);
	assert_int_equal(cl, 4);
	assert_memory_equal(cert, "CERT", 4);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.lens[0], 50);
	free(cert);
	n = read_all(fd, &b);
	write_seed("bundle", "receipts", b, n);
	close(fd);
	free(b);
	assert_int_equal(bundle_write_receipt(-1, id, r, 0), RUF_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outbox_meta_round_trips_every_state),
	    cmocka_unit_test(test_outbox_meta_rejects_truncation_trailing_and_versions),
	    cmocka_unit_test(test_outbox_meta_rejects_delivered_without_receipt),
	    cmocka_unit_test(test_key_wrap_is_bound_to_its_entry_and_destroyed),
	    cmocka_unit_test(test_bundle_round_trips_and_names_a_damaged_envelope),
	    cmocka_unit_test(test_bundle_rejects_bad_framing),
	    cmocka_unit_test(test_receipt_bundle_round_trips_with_its_certificate),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
