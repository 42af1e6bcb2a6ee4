/*
 * envelope_reseal.c - open an envelope with the content key its sender kept
 * (envelope.h, "Added by the field client"), so the sender can seal the same
 * report again, with the same message id, to the queues of a newer
 * directory. It reuses the content parser of envelope.c through
 * envelope_internal.h (this file is part of the envelope module) and
 * re-derives the two keys exactly as envelope.c does:
 *   enc_key    = BLAKE2b-256(key = K, "ruf-envelope-enc-v1" NUL || message id)
 *   commitment = BLAKE2b-256(key = K, "ruf-envelope-commit-v1" NUL || message id)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "envelope.h"
#include "envelope.pb-c.h"
#include "envelope_internal.h"
#include "pb.h"
#include "util.h"

static const char DOM_ENC[] = "ruf-envelope-enc-v1";
static const char DOM_COMMIT[] = "ruf-envelope-commit-v1";

#define PREFIX_LEN 12 /* "RUFENV\r\n" + u32be head_len */
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES

static void
derive(const uint8_t *K, const char *dom, size_t domlen, const uint8_t *msgid, uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, K, RUF_CONTENT_KEY_BYTES, 32);
	crypto_generichash_update(&st, (const uint8_t *)dom, domlen);
	crypto_generichash_update(&st, msgid, RUF_MSGID_BYTES);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

int
ruf_envelope_open_with_key(int fd, const ruf_cert *root, const ruf_directory *dir, uint64_t now,
                           const uint8_t content_key[RUF_CONTENT_KEY_BYTES], const char *attach_dir,
                           struct ruf_opened **out)
{
	struct ruf_env_info *info = NULL;
	ProtobufCMessage *pm = NULL;
	Ruf__EnvelopeHead *hd;
	struct ruf__env_content *cc = NULL;
	struct ruf_opened *o = NULL;
	crypto_secretstream_xchacha20poly1305_state ss;
	const char *queues[RUF_ENV_MAX_RECIPIENTS];
	uint32_t epochs[RUF_ENV_MAX_RECIPIENTS];
	uint8_t prefix[PREFIX_LEN], enc_key[32], commit[32], hh[32], *hbuf = NULL;
	uint8_t *cbuf = NULL, *pbuf = NULL;
	uint32_t head_len;
	uint64_t off, n_chunks;
	int rc, dirfd = -1;

	*out = NULL;
	if (attach_dir == NULL || content_key == NULL)
		return RUF_E_INVAL;
	if ((rc = ruf_envelope_verify(fd, root, dir, now, &info)) != 0)
		return rc;
	/* verify checked the structure: the head decodes and the lengths add up. */
	if ((rc = ruf_pread_all(fd, prefix, sizeof(prefix), 0)) != 0)
		goto out;
	head_len = (uint32_t)prefix[8] << 24 | (uint32_t)prefix[9] << 16 |
	           (uint32_t)prefix[10] << 8 | prefix[11];
	rc = RUF_E_NOMEM;
	if (head_len > RUF_ENV_HEAD_MAX || (hbuf = malloc(head_len)) == NULL)
		goto out;
	if ((rc = ruf_pread_all(fd, hbuf, head_len, PREFIX_LEN)) != 0 ||
	    (rc = ruf_pb_decode(&ruf__envelope_head__descriptor, hbuf, head_len, RUF_ENV_HEAD_MAX,
	                        &pm)) != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_ENV_FORMAT;
		goto out;
	}
	hd = (Ruf__EnvelopeHead *)pm;
	if (hd->stream_header.len != crypto_secretstream_xchacha20poly1305_HEADERBYTES ||
	    hd->commitment.len != 32) {
		rc = RUF_E_ENV_FORMAT;
		goto out;
	}
	derive(content_key, DOM_COMMIT, sizeof(DOM_COMMIT), info->hdr.message_id, commit);
	if (sodium_memcmp(commit, hd->commitment.data, 32) != 0) {
		rc = RUF_E_ENV_COMMITMENT;
		goto out;
	}
	derive(content_key, DOM_ENC, sizeof(DOM_ENC), info->hdr.message_id, enc_key);
	crypto_generichash(hh, 32, hd->header.data, hd->header.len, NULL, 0);
	if ((dirfd = open(attach_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	for (size_t i = 0; i < info->n_recipients; i++) {
		queues[i] = info->recipients[i].queue;
		epochs[i] = info->recipients[i].epoch;
	}
	{
		struct ruf__env_expect e = {
		    .message_id = info->hdr.message_id,
		    .header_hash = hh,
		    .queues = queues,
		    .epochs = epochs,
		    .n_recipients = info->n_recipients,
		    .size_class = info->hdr.size_class,
		    .attach_dirfd = dirfd,
		};
		if ((rc = ruf__env_content_new(&e, &cc)) != 0)
			goto out;
	}
	rc = RUF_E_NOMEM;
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (cbuf = malloc(RUF__ENV_CHUNK + ABYTES)) == NULL ||
	    (pbuf = sodium_malloc(RUF__ENV_CHUNK)) == NULL)
		goto out;
	if (crypto_secretstream_xchacha20poly1305_init_pull(&ss, hd->stream_header.data, enc_key) !=
	    0) {
		rc = RUF_E_ENV_DECRYPT;
		goto out;
	}
	off = PREFIX_LEN + (uint64_t)head_len;
	n_chunks = (info->hdr.size_class + RUF__ENV_CHUNK - 1) / RUF__ENV_CHUNK;
	for (uint64_t i = 0; i < n_chunks; i++) {
		uint64_t plen = info->hdr.size_class - i * RUF__ENV_CHUNK;
		unsigned long long mlen;
		unsigned char tag;
		size_t clen;

		plen = plen > RUF__ENV_CHUNK ? RUF__ENV_CHUNK : plen;
		clen = (size_t)plen + ABYTES;
		if ((rc = ruf_pread_all(fd, cbuf, clen, off)) != 0) {
			rc = RUF_E_ENV_CHANGED;
			goto out;
		}
		off += clen;
		if (crypto_secretstream_xchacha20poly1305_pull(&ss, pbuf, &mlen, &tag, cbuf, clen,
		                                               hh, 32) != 0) {
			rc = RUF_E_ENV_DECRYPT;
			goto out;
		}
		if (tag != (i + 1 == n_chunks
		                ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
		                : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)) {
			rc = RUF_E_ENV_TRUNCATED;
			goto out;
		}
		if ((rc = ruf__env_content_feed(cc, pbuf, (size_t)mlen)) != 0)
			goto out;
	}
	if ((rc = ruf__env_content_finish(cc)) != 0 ||
	    (rc = ruf__env_content_take(cc, attach_dir, o)) != 0)
		goto out;
	o->info = info;
	info = NULL;
	*out = o;
	o = NULL;
out:
	sodium_memzero(&ss, sizeof(ss));
	sodium_memzero(enc_key, sizeof(enc_key));
	ruf__env_content_free(cc);
	if (dirfd != -1)
		close(dirfd);
	free(cbuf);
	if (pbuf != NULL)
		sodium_free(pbuf);
	free(hbuf);
	if (pm != NULL)
		protobuf_c_message_free_unpacked(pm, NULL);
	ruf_opened_free(o);
	ruf_env_info_free(info);
	return rc;
}
