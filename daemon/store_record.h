/*
 * store_record.h - the msgpack records of the LMDB store (docs/STORE.md,
 * "Record formats"). Internal to store_lmdb.c; exposed for the unit tests
 * and the record fuzzer.
 *
 * Every record is a msgpack array whose first element is the record format
 * version (RUF__STORE_REC_V). Decoders bound-check every length against the
 * remaining input before looking at the data, never allocate, reject a
 * wrong type, a wrong element count and trailing bytes (RUF_E_FORMAT), and
 * an unknown version (RUF_E_VERSION). Encoders write into a caller buffer
 * of the record's maximum size.
 */
#ifndef RUF_STORE_RECORD_H
#define RUF_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define RUF__STORE_FORMAT 1 /* the store layout ("format" in the info DBI) */
#define RUF__STORE_REC_V 1  /* every record's first element */

#define RUF__STORE_META_MAX 6144
#define RUF__STORE_CURSOR_MAX 32
#define RUF__STORE_AUDIT_MAX 512
#define RUF__STORE_STATE_MAX 64
#define RUF__STORE_FORMAT_MAX 16

struct ruf__store_cursor {
	uint64_t seq;  /* last acknowledged seq */
	uint64_t time; /* when it was last advanced */
};

struct ruf__store_audit {
	uint8_t prev_hash[RUF_STORE_HASH_BYTES]; /* hash of the previous entry, zeros for #1 */
	uint64_t time;
	int event; /* enum ruf_store_event */
	char who[RUF_STORE_WHO_MAX + 1];
	bool has_message_id;
	uint8_t message_id[RUF_STORE_MSGID_BYTES];
	char queue[RUF_QUEUE_NAME_MAX + 1]; /* "" when none */
};

struct ruf__store_state {
	uint64_t store_seq;                       /* last store_seq assigned */
	uint64_t audit_n;                         /* audit entries */
	uint8_t audit_head[RUF_STORE_HASH_BYTES]; /* hash of entry audit_n; zeros if none */
};

/*
 * meta: the dedup record; message_id is the LMDB key, not in the bytes, so
 * decode leaves r->message_id untouched.
 */
int ruf__store_meta_encode(const struct ruf_store_record *r, uint8_t *out, size_t cap, size_t *len);
int ruf__store_meta_decode(const uint8_t *p, size_t n, struct ruf_store_record *r);

int ruf__store_cursor_encode(const struct ruf__store_cursor *c, uint8_t *out, size_t cap,
                             size_t *len);
int ruf__store_cursor_decode(const uint8_t *p, size_t n, struct ruf__store_cursor *c);

int ruf__store_audit_encode(const struct ruf__store_audit *a, uint8_t *out, size_t cap,
                            size_t *len);
int ruf__store_audit_decode(const uint8_t *p, size_t n, struct ruf__store_audit *a);

int ruf__store_state_encode(const struct ruf__store_state *s, uint8_t *out, size_t cap,
                            size_t *len);
int ruf__store_state_decode(const uint8_t *p, size_t n, struct ruf__store_state *s);

/*
 * The info DBI's "format" value: a bare msgpack unsigned integer. decode
 * returns any well-formed version in *v (the caller compares it with
 * RUF__STORE_FORMAT to give a clear error).
 */
int ruf__store_format_encode(uint64_t v, uint8_t *out, size_t cap, size_t *len);
int ruf__store_format_decode(const uint8_t *p, size_t n, uint64_t *v);

/* The audit chain link: BLAKE2b-256(prev_hash || rec). */
int ruf__store_audit_hash(const uint8_t prev_hash[RUF_STORE_HASH_BYTES], const uint8_t *rec,
                          size_t n, uint8_t out[RUF_STORE_HASH_BYTES]);

#endif
