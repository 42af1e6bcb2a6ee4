/*
 * test_archive.c - the desk archive (client/ruf_archive.c, compiled in here:
 * the client sources are not part of ruf_lib): index record codec, encrypted
 * index files, duplicates, quarantine.
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

#include "../../client/ruf_archive.c"

static void
sample(struct ruf_archive_rec *r, uint8_t idbyte)
{
	memset(r, 0, sizeof(*r));
	memset(r->id, idbyte, RUF_MSGID_BYTES);
	snprintf(r->queues[0], sizeof(r->queues[0]), "itf.darfur");
	snprintf(r->queues[1], sizeof(r->queues[1]), "sag");
	r->n_queues = 2;
	r->received = 1795000000;
	r->hdr.created = 1794999000;
	r->hdr.sequence = 300;
	r->hdr.device_serial = 70000;
	r->hdr.kind = RUF_KIND_SITREP;
	snprintf(r->hdr.situation, sizeof(r->hdr.situation), "darfur");
	snprintf(r->hdr.country, sizeof(r->hdr.country), "sd");
	snprintf(r->hdr.region, sizeof(r->hdr.region), "east-africa");
	r->hdr.risk = RUF_RISK_HIGH;
	r->hdr.flags = 3;
	memcpy(r->hdr.message_id, r->id, RUF_MSGID_BYTES);
	snprintf(r->sender, sizeof(r->sender), "rc-sd-1");
	r->sender_serial = 70000;
	r->sender_role = RUF_ROLE_DEVICE;
	snprintf(r->verification, sizeof(r->verification), "verified");
	snprintf(r->title, sizeof(r->title), "%s",
	         "A title longer than thirty-one bytes, with \"quotes\" and UTF-8: é");
	memset(r->hash, 0x5a, 32);
	r->total_len = 123456789;
	r->accepted = 1794999500;
}

static void
test_rec_round_trips(void **state)
{
	struct ruf_archive_rec a, b;
	uint8_t buf[RUF_ARCHIVE_IDX_MAX];
	size_t len;
	const char *dir = getenv("RUF_WRITE_CORPUS");

	(void)state;
	sample(&a, 7);
	assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf), &len), 0);
	assert_int_equal(ruf_archive_rec_decode(buf, len, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* A reply record: reply_to, reply_device, status. */
	a.hdr.kind = RUF_KIND_REPLY;
	a.hdr.risk = 0;
	memset(a.hdr.reply_to, 9, RUF_MSGID_BYTES);
	snprintf(a.hdr.reply_device, sizeof(a.hdr.reply_device), "rc-sd-1");
	snprintf(a.status, sizeof(a.status), "approved");
	a.direction = RUF_ARCHIVE_SENT;
	assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf), &len), 0);
	assert_int_equal(ruf_archive_rec_decode(buf, len, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	if (dir != NULL) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/reply.bin", dir);
		assert_int_equal(ruf_file_write_atomic(path, buf, len, 0644, false), 0);
		sample(&a, 7);
		assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf), &len), 0);
		snprintf(path, sizeof(path), "%s/sitrep.bin", dir);
		assert_int_equal(ruf_file_write_atomic(path, buf, len, 0644, false), 0);
	}
}

static void
test_rec_rejects_every_truncation_and_trailing_byte(void **state)
{
	struct ruf_archive_rec a, b;
	uint8_t buf[RUF_ARCHIVE_IDX_MAX + 1];
	size_t len;

	(void)state;
	sample(&a, 1);
	assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf) - 1, &len), 0);
	for (size_t i = 0; i < len; i++)
		assert_int_not_equal(ruf_archive_rec_decode(buf, i, &b), 0);
	buf[len] = 0;
	assert_int_equal(ruf_archive_rec_decode(buf, len + 1, &b), RUF_E_TRAILING);
}

static void
test_rec_refuses_unknown_format_version(void **state)
{
	struct ruf_archive_rec a, b;
	uint8_t buf[RUF_ARCHIVE_IDX_MAX];
	size_t len;

	(void)state;
	sample(&a, 1);
	assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf), &len), 0);
	assert_int_equal(buf[3],
	                 RUF_ARCHIVE_FORMAT); /* array16 header (3 bytes), then the version */
	buf[3] = RUF_ARCHIVE_FORMAT + 1;
	assert_int_equal(ruf_archive_rec_decode(buf, len, &b), RUF_E_VERSION);
}

/* Records written before the accept time was kept still read, as "time unknown". */
static void
test_rec_reads_format_1_without_accept_time(void **state)
{
	struct ruf_archive_rec a, b;
	uint8_t buf[RUF_ARCHIVE_IDX_MAX];
	size_t len;

	(void)state;
	sample(&a, 1);
	a.accepted = 0;
	assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf), &len), 0);
	/* array16 of 25 -> 24, format 2 -> 1, and drop the last element (0: one byte). */
	assert_int_equal(buf[2], 25);
	assert_int_equal(buf[len - 1], 0);
	buf[2] = 24;
	buf[3] = 1;
	assert_int_equal(ruf_archive_rec_decode(buf, len - 1, &b), 0);
	assert_int_equal(b.accepted, 0);
	assert_string_equal(b.title, a.title);
	assert_int_equal(b.total_len, a.total_len);
	/* Format 1 with 25 elements, or format 2 with 24, is damaged. */
	assert_int_equal(ruf_archive_rec_decode(buf, len, &b) != 0, 1);
	buf[3] = 2;
	assert_int_equal(ruf_archive_rec_decode(buf, len - 1, &b), RUF_E_FORMAT);
}

static void
test_rec_rejects_bad_queue_name_and_oversized_string(void **state)
{
	struct ruf_archive_rec a, b;
	uint8_t buf[RUF_ARCHIVE_IDX_MAX];
	size_t len;

	(void)state;
	sample(&a, 1);
	snprintf(a.queues[0], sizeof(a.queues[0]), "NOT A QUEUE");
	assert_int_equal(ruf_archive_rec_encode(&a, buf, sizeof(buf), &len), 0);
	assert_int_equal(ruf_archive_rec_decode(buf, len, &b), RUF_E_FORMAT);
	sample(&a, 1);
	assert_int_equal(ruf_archive_rec_encode(&a, buf, 10, &len), RUF_E_TOO_LARGE);
}

struct fx {
	char dir[64];
	ruf_keystore *ks, *other;
	ruf_archive *a;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ruf-archive-test.XXXXXX");
	if (mkdtemp(f->dir) == NULL || ruf_keystore_new(&f->ks) != 0 ||
	    ruf_keystore_generate(f->ks, RUF_KEY_KX, "kx", 0, NULL) != 0 ||
	    ruf_keystore_new(&f->other) != 0 ||
	    ruf_keystore_generate(f->other, RUF_KEY_KX, "kx", 0, NULL) != 0 ||
	    ruf_archive_open(f->dir, f->ks, &f->a) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	ruf_archive_close(f->a);
	ruf_keystore_free(f->ks);
	ruf_keystore_free(f->other);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* A fake "received envelope" file in the archive's scratch name. */
static void
scratch(struct fx *f, char *tmp, size_t n, const char *content)
{
	ruf_archive_tmp_path(f->a, "t", tmp, n);
	assert_int_equal(ruf_file_write_atomic(tmp, content, strlen(content), 0600, false), 0);
}

static void
test_archive_put_get_and_duplicate_adds_queue_only(void **state)
{
	struct fx *f = *state;
	struct ruf_archive_rec r, got, *v;
	char tmp[PATH_MAX], path[PATH_MAX];
	uint8_t *buf;
	size_t n, len;
	bool dup;

	sample(&r, 3);
	r.n_queues = 1;
	scratch(f, tmp, sizeof(tmp), "ENVELOPE");
	assert_int_equal(ruf_archive_put(f->a, tmp, &r, &dup), 0);
	assert_false(dup);
	assert_int_not_equal(access(tmp, F_OK), 0);
	ruf_archive_env_path(f->a, r.id, path, sizeof(path));
	assert_int_equal(ruf_file_read(path, 100, &buf, &len), 0);
	assert_memory_equal(buf, "ENVELOPE", 8);
	free(buf);
	/* The same message again on another queue: one record, both queues. */
	snprintf(r.queues[0], sizeof(r.queues[0]), "hrt");
	scratch(f, tmp, sizeof(tmp), "ENVELOPE");
	assert_int_equal(ruf_archive_put(f->a, tmp, &r, &dup), 0);
	assert_true(dup);
	assert_int_not_equal(access(tmp, F_OK), 0);
	assert_int_equal(ruf_archive_get(f->a, r.id, &got), 0);
	assert_int_equal(got.n_queues, 2);
	assert_string_equal(got.queues[0], "itf.darfur");
	assert_string_equal(got.queues[1], "hrt");
	assert_int_equal(ruf_archive_list(f->a, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	/* Same id, other bytes: refused, for the caller to quarantine. */
	r.hash[0] ^= 1;
	scratch(f, tmp, sizeof(tmp), "OTHER");
	assert_int_equal(ruf_archive_put(f->a, tmp, &r, &dup), RUF_E_EXISTS);
	unlink(tmp);
}

static void
test_archive_index_is_unreadable_without_the_key_or_under_another_name(void **state)
{
	struct fx *f = *state;
	struct ruf_archive_rec r, got;
	ruf_archive *b;
	char tmp[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX];
	uint8_t *buf;
	size_t len;
	bool dup;

	sample(&r, 4);
	scratch(f, tmp, sizeof(tmp), "E4");
	assert_int_equal(ruf_archive_put(f->a, tmp, &r, &dup), 0);
	/* No clear title in the index file. */
	snprintf(p1, sizeof(p1), "%s/archive/04040404040404040404040404040404.idx", f->dir);
	assert_int_equal(ruf_file_read(p1, 1 << 20, &buf, &len), 0);
	assert_null(memmem(buf, len, "title longer", 12));
	assert_null(memmem(buf, len, "darfur", 6));
	free(buf);
	/* Another identity's key cannot read it. */
	assert_int_equal(ruf_archive_open(f->dir, f->other, &b), 0);
	assert_int_equal(ruf_archive_get(b, r.id, &got), RUF_E_FORMAT);
	ruf_archive_close(b);
	/* Renamed to another message's id: refused (the id is in the AD). */
	snprintf(p2, sizeof(p2), "%s/archive/05050505050505050505050505050505.idx", f->dir);
	assert_int_equal(link(p1, p2), 0);
	memset(r.id, 5, RUF_MSGID_BYTES);
	assert_int_equal(ruf_archive_get(f->a, r.id, &got), RUF_E_FORMAT);
	/* One flipped byte: refused. */
	assert_int_equal(ruf_file_read(p1, 1 << 20, &buf, &len), 0);
	buf[len - 1] ^= 1;
	assert_int_equal(ruf_file_write_atomic(p1, buf, len, 0600, false), 0);
	free(buf);
	memset(r.id, 4, RUF_MSGID_BYTES);
	assert_int_equal(ruf_archive_get(f->a, r.id, &got), RUF_E_FORMAT);
}

static void
test_archive_quarantine_keeps_envelope_and_reason(void **state)
{
	struct fx *f = *state;
	char tmp[PATH_MAX], path[PATH_MAX];
	struct ruf_archive_rec *v;
	uint8_t *buf;
	size_t len, n;

	scratch(f, tmp, sizeof(tmp), "BAD");
	assert_int_equal(ruf_archive_quarantine(f->a, tmp, "abc-hrt-1", "ENV_SIGNATURE: x"), 0);
	snprintf(path, sizeof(path), "%s/quarantine/abc-hrt-1.reason", f->dir);
	assert_int_equal(ruf_file_read(path, 100, &buf, &len), 0);
	assert_memory_equal(buf, "ENV_SIGNATURE: x\n", len);
	free(buf);
	snprintf(path, sizeof(path), "%s/quarantine/abc-hrt-1.env", f->dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(ruf_archive_list(f->a, &v, &n), 0);
	assert_int_equal(n, 0); /* never in the archive's index */
	free(v);
}

static void
test_archive_resolve_refuses_ambiguous_and_short_prefixes(void **state)
{
	struct fx *f = *state;
	struct ruf_archive_rec r;
	uint8_t id[RUF_MSGID_BYTES];
	char tmp[PATH_MAX];
	bool dup;

	sample(&r, 0xab);
	scratch(f, tmp, sizeof(tmp), "1");
	assert_int_equal(ruf_archive_put(f->a, tmp, &r, &dup), 0);
	r.id[15] = 0;
	r.hdr.message_id[15] = 0;
	scratch(f, tmp, sizeof(tmp), "2");
	assert_int_equal(ruf_archive_put(f->a, tmp, &r, &dup), 0);
	assert_int_equal(ruf_archive_resolve(f->a, "abab", id), RUF_E_INVAL);
	assert_int_equal(ruf_archive_resolve(f->a, "aba", id), RUF_E_INVAL);
	assert_int_equal(ruf_archive_resolve(f->a, "ABAB", id), RUF_E_INVAL);
	assert_int_equal(ruf_archive_resolve(f->a, "abababababababababababababababab", id), 0);
	assert_int_equal(id[15], 0xab);
	assert_int_equal(ruf_archive_resolve(f->a, "cdcd", id), RUF_E_NOTFOUND);
}

static void
test_archive_open_removes_scratch_of_dead_processes_only(void **state)
{
	struct fx *f = *state;
	char dead[PATH_MAX], mine[PATH_MAX];
	ruf_archive *b;

	snprintf(dead, sizeof(dead), "%s/archive/.recv-999999999-0", f->dir);
	ruf_archive_tmp_path(f->a, "0", mine, sizeof(mine));
	assert_int_equal(ruf_file_write_atomic(dead, "x", 1, 0600, false), 0);
	assert_int_equal(ruf_file_write_atomic(mine, "x", 1, 0600, false), 0);
	assert_int_equal(ruf_archive_open(f->dir, f->ks, &b), 0);
	ruf_archive_close(b);
	assert_int_not_equal(access(dead, F_OK), 0);
	assert_int_equal(access(mine, F_OK), 0); /* a live process's (ours) is kept */
	unlink(mine);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rec_round_trips),
	    cmocka_unit_test(test_rec_rejects_every_truncation_and_trailing_byte),
	    cmocka_unit_test(test_rec_refuses_unknown_format_version),
	    cmocka_unit_test(test_rec_reads_format_1_without_accept_time),
	    cmocka_unit_test(test_rec_rejects_bad_queue_name_and_oversized_string),
	    cmocka_unit_test_setup_teardown(test_archive_put_get_and_duplicate_adds_queue_only,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_archive_index_is_unreadable_without_the_key_or_under_another_name, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_archive_quarantine_keeps_envelope_and_reason,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_archive_resolve_refuses_ambiguous_and_short_prefixes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_archive_open_removes_scratch_of_dead_processes_only, setup, teardown),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
