/*
 * fuzz_wire_stream.c - ruf_wire_reader fed a stream in random-sized pieces.
 *
 * Input: byte 0 seeds the piece sizes (a small xorshift generator), byte 1
 * picks the length limit, the rest is the stream. The messages the reader
 * returns are checked against a plain reference parse of the whole stream:
 * same lengths, same bytes, same error at the same place, and never more
 * than one message (+ its 2 length bytes) buffered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "wire.h"

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const size_t limits[] = {1, 2, 300, RUF_WIRE_MAX_MSG1, RUF_WIRE_MAX_MSG};
	ruf_wire_reader r;
	uint32_t x;
	size_t max, off = 0, ref = 0;
	int rc = 0;

	if (n < 2)
		return 0;
	x = 0x9e3779b9u ^ d[0];
	max = limits[d[1] % (sizeof(limits) / sizeof(limits[0]))];
	d += 2;
	n -= 2;
	ruf_wire_reader_init(&r, max);
	while (off < n && rc == 0) {
		size_t piece, used;
		const uint8_t *msg;
		size_t mlen;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		piece = (x % 4 == 0) ? 1 + x % 7 : 1 + x % 3000;
		if (piece > n - off)
			piece = n - off;
		while (piece > 0) {
			rc = ruf_wire_reader_feed(&r, d + off, piece, &used);
			if (ruf_wire_reader_pending(&r) > max + 2 || used > piece)
				abort();
			off += used;
			piece -= used;
			while (rc == 0 && (rc = ruf_wire_reader_next(&r, &msg, &mlen)) == 1) {
				/* Reference: the next message of the whole stream. */
				size_t want;
				if (n - ref < 2)
					abort();
				want = (size_t)d[ref] << 8 | d[ref + 1];
				if (want == 0 || want > max || mlen != want || n - ref - 2 < want ||
				    memcmp(msg, d + ref + 2, want) != 0)
					abort();
				ref += 2 + want;
				rc = 0;
			}
			if (rc != 0)
				break;
		}
	}
	if (rc != 0) {
		/* The error is the reference's: a zero or oversized length at ref. */
		size_t want = (size_t)d[ref] << 8 | d[ref + 1];
		if (n - ref < 2 || (rc == RUF_E_FORMAT && want != 0) ||
		    (rc == RUF_E_TOO_LARGE && want <= max) ||
		    (rc != RUF_E_FORMAT && rc != RUF_E_TOO_LARGE))
			abort();
	}
	ruf_wire_reader_free(&r);
	return 0;
}
