/* cli_queue_pub.c - reading and writing rufctl's queues/NAME.pub files. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "queue_pub.h"

void
queue_pub_format(const struct queue_pub *q, char *out, size_t outlen)
{
	char hex[65];

	ruf_hex(q->pk, 32, hex);
	snprintf(out, outlen, "ruf-queue 1\nname %s\nepoch %" PRIu32 "\nkey %s\n", q->name,
	         q->epoch, hex);
}

static int
parse_pub(const char *path, struct queue_pub *q)
{
	char name[RUF_QUEUE_NAME_MAX + 2], hex[66];
	unsigned long epoch;
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = ruf_file_read(path, 1024, &buf, &len)) != 0)
		return rc;
	rc = RUF_E_FORMAT;
	if (sscanf((char *)buf, "ruf-queue 1\nname %65s\nepoch %lu\nkey %65s\n", name, &epoch,
	           hex) == 3 &&
	    ruf_is_queue_name(name) && epoch >= 1 && epoch <= UINT32_MAX &&
	    ruf_unhex(hex, q->pk, 32) == 0) {
		memcpy(q->name, name, strlen(name) + 1); /* ruf_is_queue_name bounds it */
		q->epoch = (uint32_t)epoch;
		rc = 0;
	}
	free(buf);
	return rc;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct queue_pub *)a)->name, ((const struct queue_pub *)b)->name);
}

int
queue_pub_load_all(const char *dir, struct queue_pub **out, size_t *n)
{
	char path[PATH_MAX];
	struct queue_pub *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *dp;
	int rc = 0;

	*out = NULL;
	*n = 0;
	cli_path(path, sizeof(path), "%s/queues", dir);
	if ((dp = opendir(path)) == NULL)
		return cli_fail(1, "%s: %s", path, strerror(errno)), RUF_E_IO;
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l <= 4 || strcmp(de->d_name + l - 4, ".pub") != 0)
			continue;
		if (cnt == cap) {
			struct queue_pub *nv;
			cap = cap ? 2 * cap : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				rc = RUF_E_NOMEM;
				break;
			}
			v = nv;
		}
		cli_path(path, sizeof(path), "%s/queues/%s", dir, de->d_name);
		if ((rc = parse_pub(path, &v[cnt])) != 0) {
			cli_fail(1, "%s: %s", path, ruf_strerror(rc));
			break;
		}
		cnt++;
	}
	closedir(dp);
	if (rc != 0) {
		free(v);
		return rc;
	}
	qsort(v, cnt, sizeof(*v), cmp_name);
	*out = v;
	*n = cnt;
	return 0;
}
