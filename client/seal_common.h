/*
 * seal_common.h - sealing a validated report with an identity's keys and
 * directory, shared by `ruf seal` (to a file) and `ruf report`/`ruf surge`
 * (into the outbox). The implementation is client/cli_seal.c (the build links
 * client/cli_*.c into both programs).
 */
#ifndef RUF_SEAL_COMMON_H
#define RUF_SEAL_COMMON_H

#include <stdint.h>

#include "cli.h"
#include "envelope.h"
#include "report.h"
#include "route.h"

struct cli_sealed {
	uint8_t msgid[RUF_MSGID_BYTES];
	struct ruf_env_header hdr; /* as sealed (sequence, created, routing) */
	struct ruf_queue_set qs;   /* the queues it was sealed to */
};

/*
 * Checks the identity may send this report (role, situation, country),
 * routes it with the directory's policy, takes the next per-device sequence
 * number and seals it to fd (which the caller fsyncs). content_key (may be
 * NULL) receives the content key: wipe it. reuse_msgid (may be NULL) seals
 * with that message id instead of a fresh one (re-sealing). Prints a one-line error naming
 * what (the input's name) and returns the RUF_E_* code.
 */
int cli_seal_report(struct cli_identity *id, const struct ruf_report_input *rin, const char *what,
                    int fd, struct cli_sealed *out, uint8_t *content_key,
                    const uint8_t *reuse_msgid);

#endif
