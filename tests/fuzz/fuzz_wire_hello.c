/*
 * fuzz_wire_hello.c - the handshake payload decoders.
 *
 * Byte 0 even: the rest is a WireHello; odd: a WireWelcome. Whatever
 * decodes must encode back to exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static uint8_t out[RUF_WIRE_MAX_MSG];

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	size_t len;

	if (n < 1)
		return 0;
	if (d[0] % 2 == 0) {
		struct ruf_wire_hello h;
		if (ruf_wire_hello_decode(d + 1, n - 1, &h) != 0) {
			if (h._pb != NULL)
				abort();
			return 0;
		}
		if (ruf_wire_hello_encode(&h, out, sizeof(out), &len) != 0 || len != n - 1 ||
		    memcmp(out, d + 1, len) != 0)
			abort();
		ruf_wire_hello_clear(&h);
	} else {
		struct ruf_wire_welcome w;
		if (ruf_wire_welcome_decode(d + 1, n - 1, &w) != 0) {
			if (w._pb != NULL)
				abort();
			return 0;
		}
		if (ruf_wire_welcome_encode(&w, out, sizeof(out), &len) != 0 || len != n - 1 ||
		    memcmp(out, d + 1, len) != 0)
			abort();
		ruf_wire_welcome_clear(&w);
	}
	return 0;
}
