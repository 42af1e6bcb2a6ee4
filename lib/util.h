/*
 * util.h - small helpers shared by every module: bounded file reads, crash-safe
 * writes, hex, identifier validation, time.
 */
#ifndef RUF_UTIL_H
#define RUF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Identifiers (situation, country, region, queue-name parts): see is_ident. */
#define RUF_IDENT_MAX 32
/* Queue names: "sag", "itf.darfur", "inbox.rc-sd-1". */
#define RUF_QUEUE_NAME_MAX 64

/*
 * Reads the whole file at path into a new malloc'ed buffer (NUL-terminated
 * one byte past *len for convenience). Fails with RUF_E_TOO_LARGE, before
 * allocating, when the file is larger than max bytes. The caller owns *out.
 */
int ruf_file_read(const char *path, size_t max, uint8_t **out, size_t *len);

/*
 * Writes buf to path crash-safely: a temporary file in the same directory,
 * write, fsync, rename over path, fsync the directory. Returns 0 when the new
 * contents are durable. With exclusive set, fails with RUF_E_EXISTS if path
 * already exists.
 */
int ruf_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                          bool exclusive);

/* fsyncs the directory that holds path. */
int ruf_fsync_dir_of(const char *path);

/* Writes all of buf to fd, retrying on EINTR and short writes. */
int ruf_write_all(int fd, const void *buf, size_t len);

/* Reads exactly len bytes at offset off (pread); RUF_E_TRUNCATED at end of file. */
int ruf_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* mkdir -p with mode for each created component. */
int ruf_mkdirs(const char *path, mode_t mode);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void ruf_hex(const uint8_t *in, size_t len, char *out);

/* Parses exactly 2*len hex digits; RUF_E_FORMAT otherwise. */
int ruf_unhex(const char *in, uint8_t *out, size_t len);

/*
 * An identifier: 1..RUF_IDENT_MAX bytes of [a-z0-9-], starting with a letter or
 * digit. Used for situations, countries, regions and device names in queue names.
 */
bool ruf_is_ident(const char *s);

/*
 * A queue name: 1..RUF_QUEUE_NAME_MAX bytes; one or two identifiers joined by
 * a dot ("sag", "itf.darfur", "rqr.east-africa", "inbox.rc-sd-1").
 */
bool ruf_is_queue_name(const char *s);

/* Seconds since the Unix epoch; RUF_NOW overrides it (tests of expiry only). */
uint64_t ruf_now(void);

/* Parses a duration like "90", "30m", "12h", "7d" into seconds. */
int ruf_parse_duration(const char *s, uint64_t *secs);

/* Formats t (Unix seconds, UTC) as "2026-11-27T04:08:50Z" into out[21]. */
void ruf_time_fmt(uint64_t t, char out[21]);

/* Parses an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SSZ" or a date "YYYY-MM-DD". */
int ruf_time_parse(const char *s, uint64_t *t);

#endif
