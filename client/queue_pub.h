/* queue_pub.h - rufctl's queues/NAME.pub files: "ruf-queue 1", name, epoch, key (hex). */
#ifndef RUF_QUEUE_PUB_H
#define RUF_QUEUE_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct queue_pub {
	char name[RUF_QUEUE_NAME_MAX + 1];
	uint32_t epoch;
	uint8_t pk[32];
};

void queue_pub_format(const struct queue_pub *q, char *out, size_t outlen);
/* All DIR/queues/ *.pub, sorted by name; prints and returns an error on damage. */
int queue_pub_load_all(const char *dir, struct queue_pub **out, size_t *n);

#endif
