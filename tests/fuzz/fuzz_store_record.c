/*
 * fuzz_store_record.c - the LMDB store's msgpack record decoders (meta,
 * cursor, audit, state, format) on arbitrary bytes: a damaged or hostile
 * data.mdb must give RUF_E_FORMAT / RUF_E_VERSION, never a crash.
 *
 * Whatever decodes must re-encode to bytes that decode to the same record
 * (the encoder may pick shorter integer encodings, so bytes may differ).
 * Seeds: tests/fuzz/corpus/store_record/, written by test_store with
 * RUF_WRITE_CORPUS.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_record.h"

static void
meta(const uint8_t *d, size_t n)
{
	static struct ruf_store_record a, b;
	static uint8_t buf[RUF__STORE_META_MAX];
	size_t len;

	memset(&a, 0, sizeof(a));
	if (ruf__store_meta_decode(d, n, &a) != 0)
		return;
	if (ruf__store_meta_encode(&a, buf, sizeof(buf), &len) != 0)
		abort();
	memset(&b, 0, sizeof(b));
	if (ruf__store_meta_decode(buf, len, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void
cursor(const uint8_t *d, size_t n)
{
	struct ruf__store_cursor a, b;
	uint8_t buf[RUF__STORE_CURSOR_MAX];
	size_t len;

	if (ruf__store_cursor_decode(d, n, &a) != 0)
		return;
	if (ruf__store_cursor_encode(&a, buf, sizeof(buf), &len) != 0 ||
	    ruf__store_cursor_decode(buf, len, &b) != 0 || a.seq != b.seq || a.time != b.time)
		abort();
}

static void
audit(const uint8_t *d, size_t n)
{
	struct ruf__store_audit a, b;
	uint8_t buf[RUF__STORE_AUDIT_MAX];
	size_t len;

	memset(&a, 0, sizeof(a));
	if (ruf__store_audit_decode(d, n, &a) != 0)
		return;
	if (ruf__store_audit_encode(&a, buf, sizeof(buf), &len) != 0)
		abort();
	memset(&b, 0, sizeof(b));
	if (ruf__store_audit_decode(buf, len, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void
state(const uint8_t *d, size_t n)
{
	struct ruf__store_state a, b;
	uint8_t buf[RUF__STORE_STATE_MAX];
	size_t len;

	if (ruf__store_state_decode(d, n, &a) != 0)
		return;
	if (ruf__store_state_encode(&a, buf, sizeof(buf), &len) != 0 ||
	    ruf__store_state_decode(buf, len, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void
format(const uint8_t *d, size_t n)
{
	uint8_t buf[RUF__STORE_FORMAT_MAX];
	uint64_t a, b;
	size_t len;

	if (ruf__store_format_decode(d, n, &a) != 0)
		return;
	if (ruf__store_format_encode(a, buf, sizeof(buf), &len) != 0 ||
	    ruf__store_format_decode(buf, len, &b) != 0 || a != b)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	meta(d, n);
	cursor(d, n);
	audit(d, n);
	state(d, n);
	format(d, n);
	return 0;
}
