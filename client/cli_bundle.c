/*
 * cli_bundle.c - the bundle format (bundle.h, docs/FIELD.md): a strict
 * reader that never trusts a length before checking it against the file
 * size, and a writer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "bundle.h"
#include "util.h"

#define IO_BUF (64u << 10)

static uint64_t
be_get(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void
be_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* BLAKE2b-256 of [off, off+len) of fd. */
static int
hash_range(int fd, uint64_t off, uint64_t len, uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t *buf = malloc(IO_BUF);
	int rc = 0;

	if (buf == NULL)
		return RUF_E_NOMEM;
	crypto_generichash_init(&st, NULL, 0, 32);
	while (len > 0) {
		size_t k = len < IO_BUF ? (size_t)len : IO_BUF;
		if ((rc = ruf_pread_all(fd, buf, k, off)) != 0)
			break;
		crypto_generichash_update(&st, buf, k);
		off += k;
		len -= k;
	}
	crypto_generichash_final(&st, out, 32);
	free(buf);
	return rc;
}

int
bundle_read(int fd, int kind, bundle_cb cb, void *ctx, uint8_t **cert, size_t *cert_len,
            ruf_diag *d)
{
	uint8_t hdr[16], eh[25], hash[32], want[32];
	struct stat st;
	uint64_t size, off, count;
	int rc;

	if (cert != NULL) {
		*cert = NULL;
		*cert_len = 0;
	}
	if (fstat(fd, &st) == -1)
		return ruf_errno(errno);
	size = (uint64_t)st.st_size;
	if (size < sizeof(hdr) + 8) {
		ruf_diag_set(d, "bundle: too short");
		return RUF_E_TRUNCATED;
	}
	if ((rc = ruf_pread_all(fd, hdr, sizeof(hdr), 0)) != 0)
		return rc;
	if (memcmp(hdr, BUNDLE_MAGIC, 8) != 0) {
		ruf_diag_set(d, "bundle: bad magic (not a ruf bundle)");
		return RUF_E_FORMAT;
	}
	if (be_get(hdr + 8, 2) != BUNDLE_VERSION) {
		ruf_diag_set(d, "bundle: version %u unknown", (unsigned)be_get(hdr + 8, 2));
		return RUF_E_VERSION;
	}
	if ((int)be_get(hdr + 10, 2) != kind) {
		ruf_diag_set(d, "bundle: holds %s, not %s",
		             be_get(hdr + 10, 2) == BUNDLE_KIND_RECEIPTS ? "receipts" : "envelopes",
		             kind == BUNDLE_KIND_RECEIPTS ? "receipts" : "envelopes");
		return RUF_E_FORMAT;
	}
	count = be_get(hdr + 12, 4);
	if (count > BUNDLE_MAX_ENTRIES) {
		ruf_diag_set(d, "bundle: %llu entries, at most %u", (unsigned long long)count,
		             BUNDLE_MAX_ENTRIES);
		return RUF_E_FORMAT;
	}
	off = sizeof(hdr);
	if (kind == BUNDLE_KIND_RECEIPTS) {
		uint8_t l4[4];
		uint64_t cl;
		if (size - off < 4 + 8)
			goto trunc;
		if ((rc = ruf_pread_all(fd, l4, 4, off)) != 0)
			return rc;
		cl = be_get(l4, 4);
		off += 4;
		if (cl < 1 || cl > BUNDLE_CERT_MAX) {
			ruf_diag_set(d, "bundle: certificate length %llu", (unsigned long long)cl);
			return RUF_E_FORMAT;
		}
		if (size - off < cl + 8)
			goto trunc;
		if (cert != NULL) {
			if ((*cert = malloc(cl)) == NULL)
				return RUF_E_NOMEM;
			if ((rc = ruf_pread_all(fd, *cert, cl, off)) != 0) {
				free(*cert);
				*cert = NULL;
				return rc;
			}
			*cert_len = cl;
		}
		off += cl;
	}
	for (uint64_t i = 0; i < count; i++) {
		struct bundle_entry e = {.index = (size_t)i};
		bool env = kind == BUNDLE_KIND_ENVELOPES;
		size_t hl = env ? 25 : 21;
		uint64_t tail = env ? 32 : 0;

		if (size - off < hl + 8)
			goto trunc_e;
		if ((rc = ruf_pread_all(fd, eh, hl, off)) != 0)
			goto fail;
		if (eh[0] != (env ? BUNDLE_TAG_ENV : BUNDLE_TAG_RECEIPT)) {
			ruf_diag_set(d, "bundle entry %llu: bad tag 0x%02x", (unsigned long long)i,
			             eh[0]);
			rc = RUF_E_FORMAT;
			goto fail;
		}
		memcpy(e.msgid, eh + 1, 16);
		e.len = be_get(eh + 17, env ? 8 : 4);
		if (e.len < 1 || e.len > (env ? BUNDLE_ENV_MAX : BUNDLE_RECEIPT_MAX)) {
			ruf_diag_set(d, "bundle entry %llu: length %llu out of range",
			             (unsigned long long)i, (unsigned long long)e.len);
			rc = RUF_E_FORMAT;
			goto fail;
		}
		off += hl;
		if (size - off < e.len || size - off - e.len < tail + 8)
			goto trunc_e;
		e.off = off;
		off += e.len;
		e.hash_ok = true;
		if (env) {
			if ((rc = ruf_pread_all(fd, want, 32, off)) != 0 ||
			    (rc = hash_range(fd, e.off, e.len, hash)) != 0)
				goto fail;
			e.hash_ok = sodium_memcmp(hash, want, 32) == 0;
			off += 32;
		}
		if (cb != NULL && (rc = cb(ctx, fd, &e)) != 0)
			goto fail;
		continue;
	trunc_e:
		ruf_diag_set(d, "bundle entry %llu: truncated", (unsigned long long)i);
		rc = RUF_E_TRUNCATED;
		goto fail;
	}
	if (size - off < 8)
		goto trunc;
	if ((rc = ruf_pread_all(fd, hdr, 8, off)) != 0)
		goto fail;
	if (memcmp(hdr, BUNDLE_TRAILER, 8) != 0) {
		ruf_diag_set(d, "bundle: no trailer after %llu entries", (unsigned long long)count);
		rc = RUF_E_FORMAT;
		goto fail;
	}
	if (off + 8 != size) {
		ruf_diag_set(d, "bundle: %llu bytes after the trailer",
		             (unsigned long long)(size - off - 8));
		rc = RUF_E_TRAILING;
		goto fail;
	}
	return 0;
trunc:
	ruf_diag_set(d, "bundle: truncated");
	rc = RUF_E_TRUNCATED;
fail:
	if (cert != NULL && *cert != NULL) {
		free(*cert);
		*cert = NULL;
		*cert_len = 0;
	}
	return rc;
}

int
bundle_write_begin(int fd, int kind, uint32_t count, const uint8_t *cert, size_t cert_len)
{
	uint8_t h[20];
	size_t n = 16;
	int rc;

	if (count > BUNDLE_MAX_ENTRIES ||
	    (kind == BUNDLE_KIND_RECEIPTS && (cert_len < 1 || cert_len > BUNDLE_CERT_MAX)))
		return RUF_E_INVAL;
	memcpy(h, BUNDLE_MAGIC, 8);
	be_put(h + 8, BUNDLE_VERSION, 2);
	be_put(h + 10, (uint64_t)kind, 2);
	be_put(h + 12, count, 4);
	if (kind == BUNDLE_KIND_RECEIPTS) {
		be_put(h + 16, cert_len, 4);
		n = 20;
	}
	if ((rc = ruf_write_all(fd, h, n)) != 0)
		return rc;
	return kind == BUNDLE_KIND_RECEIPTS ? ruf_write_all(fd, cert, cert_len) : 0;
}

int
bundle_write_envelope(int fd, const uint8_t msgid[16], int src_fd, uint64_t len)
{
	crypto_generichash_state st;
	uint8_t h[25], hash[32], *buf;
	uint64_t off = 0;
	int rc;

	if (len < 1 || len > BUNDLE_ENV_MAX)
		return RUF_E_INVAL;
	h[0] = BUNDLE_TAG_ENV;
	memcpy(h + 1, msgid, 16);
	be_put(h + 17, len, 8);
	if ((rc = ruf_write_all(fd, h, sizeof(h))) != 0)
		return rc;
	if ((buf = malloc(IO_BUF)) == NULL)
		return RUF_E_NOMEM;
	crypto_generichash_init(&st, NULL, 0, 32);
	while (off < len) {
		size_t k = len - off < IO_BUF ? (size_t)(len - off) : IO_BUF;
		if ((rc = ruf_pread_all(src_fd, buf, k, off)) != 0 ||
		    (rc = ruf_write_all(fd, buf, k)) != 0)
			break;
		crypto_generichash_update(&st, buf, k);
		off += k;
	}
	free(buf);
	if (rc != 0)
		return rc;
	crypto_generichash_final(&st, hash, 32);
	return ruf_write_all(fd, hash, 32);
}

int
bundle_write_receipt(int fd, const uint8_t msgid[16], const uint8_t *r, size_t len)
{
	uint8_t h[21];
	int rc;

	if (len < 1 || len > BUNDLE_RECEIPT_MAX)
		return RUF_E_INVAL;
	h[0] = BUNDLE_TAG_RECEIPT;
	memcpy(h + 1, msgid, 16);
	be_put(h + 17, len, 4);
	if ((rc = ruf_write_all(fd, h, sizeof(h))) != 0)
		return rc;
	return ruf_write_all(fd, r, len);
}

int
bundle_write_end(int fd)
{
	return ruf_write_all(fd, BUNDLE_TRAILER, 8);
}
