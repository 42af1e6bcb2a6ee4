/* test_util.c - util, err and strict protobuf helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "pb.h"
#include "util.h"

static void
test_ident_rejects_bad_characters(void **state)
{
	(void)state;
	assert_true(ruf_is_ident("darfur"));
	assert_true(ruf_is_ident("east-africa"));
	assert_true(ruf_is_ident("sd"));
	assert_false(ruf_is_ident(""));
	assert_false(ruf_is_ident("-x"));
	assert_false(ruf_is_ident("Darfur"));
	assert_false(ruf_is_ident("a.b"));
	assert_false(ruf_is_ident("a b"));
	assert_false(ruf_is_ident("abcdefghijabcdefghijabcdefghijabc")); /* 33 */
}

static void
test_queue_name_needs_one_or_two_parts(void **state)
{
	(void)state;
	assert_true(ruf_is_queue_name("sag"));
	assert_true(ruf_is_queue_name("itf.darfur"));
	assert_true(ruf_is_queue_name("inbox.rc-sd-1"));
	assert_false(ruf_is_queue_name("itf."));
	assert_false(ruf_is_queue_name(".x"));
	assert_false(ruf_is_queue_name("a.b.c"));
	assert_false(ruf_is_queue_name("ITF.x"));
}

static void
test_hex_round_trip_and_rejects_odd(void **state)
{
	uint8_t in[4] = {0x00, 0xab, 0x10, 0xff}, out[4];
	char hex[9];

	(void)state;
	ruf_hex(in, 4, hex);
	assert_string_equal(hex, "00ab10ff");
	assert_int_equal(ruf_unhex(hex, out, 4), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(ruf_unhex("00ab10f", out, 4), RUF_E_FORMAT);
	assert_int_equal(ruf_unhex("00ab10fg", out, 4), RUF_E_FORMAT);
}

static void
test_duration_rejects_garbage(void **state)
{
	uint64_t s;

	(void)state;
	assert_int_equal(ruf_parse_duration("7d", &s), 0);
	assert_int_equal(s, 7 * 86400);
	assert_int_equal(ruf_parse_duration("90", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(ruf_parse_duration("12h", &s), 0);
	assert_int_equal(s, 12 * 3600);
	assert_int_equal(ruf_parse_duration("x", &s), RUF_E_FORMAT);
	assert_int_equal(ruf_parse_duration("5dd", &s), RUF_E_FORMAT);
	assert_int_equal(ruf_parse_duration("-5", &s), RUF_E_FORMAT);
	assert_int_equal(ruf_parse_duration("99999999999999999999d", &s), RUF_E_FORMAT);
}

static void
test_time_round_trip(void **state)
{
	uint64_t t;
	char buf[21];

	(void)state;
	assert_int_equal(ruf_time_parse("2026-11-27T04:08:50Z", &t), 0);
	ruf_time_fmt(t, buf);
	assert_string_equal(buf, "2026-11-27T04:08:50Z");
	assert_int_equal(ruf_time_parse("2026-11-27", &t), 0);
	ruf_time_fmt(t, buf);
	assert_string_equal(buf, "2026-11-27T00:00:00Z");
	assert_int_equal(ruf_time_parse("2026-13-27", &t), RUF_E_FORMAT);
	assert_int_equal(ruf_time_parse("yesterday", &t), RUF_E_FORMAT);
}

static void
test_atomic_write_then_bounded_read(void **state)
{
	char dir[] = "/tmp/ruf-test-util-XXXXXX", path[256];
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(ruf_file_write_atomic(path, "hello", 5, 0600, true), 0);
	assert_int_equal(ruf_file_write_atomic(path, "again", 5, 0600, true), RUF_E_EXISTS);
	assert_int_equal(ruf_file_read(path, 5, &buf, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	free(buf);
	assert_int_equal(ruf_file_read(path, 4, &buf, &len), RUF_E_TOO_LARGE);
	assert_null(buf);
	assert_int_equal(ruf_file_write_atomic(path, "bye", 3, 0600, false), 0);
	assert_int_equal(ruf_file_read(path, 100, &buf, &len), 0);
	assert_int_equal(len, 3);
	free(buf);
	unlink(path);
	rmdir(dir);
}

static void
test_utf8_rejects_overlong_surrogates_and_nul(void **state)
{
	(void)state;
	assert_true(ruf_utf8_valid("plain", 5));
	assert_true(ruf_utf8_valid("caf\xc3\xa9", 5));
	assert_true(ruf_utf8_valid("\xe2\x82\xac", 3));
	assert_true(ruf_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(ruf_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
	assert_false(ruf_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(ruf_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ruf_utf8_valid("a\0b", 3));
	assert_false(ruf_utf8_valid("\xe2\x82", 2)); /* truncated */
}

static void
test_strerror_names_every_code(void **state)
{
	(void)state;
	assert_string_equal(ruf_errname(RUF_E_ENV_SIGNATURE), "ENV_SIGNATURE");
	assert_string_equal(ruf_strerror(0), "success");
	assert_string_equal(ruf_strerror(-100000), "unknown error");
	for (int i = 1; i < RUF__ERRIDX_MAX; i++) {
		assert_non_null(ruf_strerror(-i));
		assert_string_not_equal(ruf_errname(-i), "UNKNOWN");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ident_rejects_bad_characters),
		cmocka_unit_test(test_queue_name_needs_one_or_two_parts),
		cmocka_unit_test(test_hex_round_trip_and_rejects_odd),
		cmocka_unit_test(test_duration_rejects_garbage),
		cmocka_unit_test(test_time_round_trip),
		cmocka_unit_test(test_atomic_write_then_bounded_read),
		cmocka_unit_test(test_utf8_rejects_overlong_surrogates_and_nul),
		cmocka_unit_test(test_strerror_names_every_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
