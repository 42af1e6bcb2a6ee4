/*
 * spool.h - partial uploads: one file per message id under
 * state_dir/spool/<32 hex digits>, appended chunk by chunk, fsynced before
 * rufd reports how much it holds (SubmitStatus.have). Files survive a
 * restart (that is the point: resume after a cut) and are removed once the
 * envelope is stored, or after partial_expiry without a write.
 *
 * These functions do blocking file I/O: call them from a threadpool job or
 * at start-up, never from the loop thread's hot path.
 */
#ifndef RUFD_SPOOL_H
#define RUFD_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#define RUFD_SPOOL_PATH_MAX 512

/* Creates state_dir/spool (0700) and writes its path into out. */
int rufd_spool_init(const char *state_dir, char out[RUFD_SPOOL_PATH_MAX]);

/*
 * Opens (creating) the spool file for message id and length total in dir.
 * A partial upload of the same id offered with another length is removed. A
 * non-empty file and the directory are fsynced, so *have (the file's length)
 * is durable. Returns 0 with *fd (caller closes) and path, or an
 * error.
 */
int rufd_spool_open(const char *dir, const uint8_t id[16], uint64_t total, int *fd, uint64_t *have,
                    char path[RUFD_SPOOL_PATH_MAX]);

/*
 * True unless dir certainly holds no spool file for message id and length
 * total (one stat: cheap enough for the loop thread, whose small uploads
 * skip the spool when there is nothing to resume).
 */
bool rufd_spool_exists(const char *dir, const uint8_t id[16], uint64_t total);

/* Removes spool files not written for max_age seconds; returns how many. */
unsigned rufd_spool_expire(const char *dir, uint64_t max_age);

#endif
