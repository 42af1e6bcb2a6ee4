/*
 * fuzz_envelope_inner.c - libFuzzer target: the content parser behind the
 * decryption (u32be inner_len | Inner | zstd frame | zero padding), fed
 * through crypto/envelope_internal.h as the opener feeds it, with the size
 * class equal to the input length. The expected message id, header hash and
 * recipients are the fixed ones test_envelope uses for its seeds
 * (corpus/envelope_inner), so mutations reach the frame and the attachments.
 * The first input byte also picks the feeding piece size, so splits across
 * every state boundary are tried.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope_internal.h"

static const uint8_t msgid[RUF_MSGID_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                               9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t hh[32] = {0xaa, 0xbb};
static const char *const queues[] = {"hrt", "sag"};
static const uint32_t epochs[] = {1, 1};

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct ruf__env_expect e = {
	    .message_id = msgid,
	    .header_hash = hh,
	    .queues = queues,
	    .epochs = epochs,
	    .n_recipients = 2,
	    .size_class = n,
	    .attach_dirfd = -1,
	};
	struct ruf__env_content *c;
	struct ruf_opened o;
	size_t piece = n > 0 ? (size_t)d[0] * 16 + 1 : 1;

	if (ruf__env_content_new(&e, &c) != 0)
		abort();
	for (size_t off = 0; off < n; off += piece) {
		if (ruf__env_content_feed(c, d + off, n - off < piece ? n - off : piece) != 0)
			abort(); /* only local failures are returned; none can happen here */
	}
	if (ruf__env_content_finish(c) == 0) {
		memset(&o, 0, sizeof(o));
		if (ruf__env_content_take(c, NULL, &o) != 0)
			abort();
		free(o.report);
		for (size_t i = 0; i < o.n_attachments; i++) {
			free(o.attachments[i].name);
			free(o.attachments[i].media_type);
		}
		free(o.attachments);
	}
	ruf__env_content_free(c);
	return 0;
}
