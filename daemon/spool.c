/*
 * spool.c - partial uploads on disk (see spool.h).
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "util.h"

int
rufd_spool_init(const char *state_dir, char out[RUFD_SPOOL_PATH_MAX])
{
	int n = snprintf(out, RUFD_SPOOL_PATH_MAX, "%s/spool", state_dir);

	if (n < 0 || n >= RUFD_SPOOL_PATH_MAX)
		return RUF_E_TOO_LARGE;
	return ruf_mkdirs(out, 0700);
}

int
rufd_spool_open(const char *dir, const uint8_t id[16], uint64_t total, int *fd, uint64_t *have,
                char path[RUFD_SPOOL_PATH_MAX])
{
	char hex[33];
	struct stat st;
	bool created;
	int f, n;

	ruf_hex(id, 16, hex);
	n = snprintf(path, RUFD_SPOOL_PATH_MAX, "%s/%s", dir, hex);
	if (n < 0 || n >= RUFD_SPOOL_PATH_MAX)
		return RUF_E_TOO_LARGE;
	f = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	created = f < 0 && errno == ENOENT;
	if (created)
		f = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0)
		return ruf_errno(errno);
	if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode))
		goto fail;
	if ((uint64_t)st.st_size > total) {
		if (ftruncate(f, 0) != 0)
			goto fail;
		st.st_size = 0;
	}
	if (fsync(f) != 0)
		goto fail;
	if (created && ruf_fsync_dir_of(path) != 0)
		goto fail;
	*fd = f;
	*have = (uint64_t)st.st_size;
	return 0;
fail:
	n = errno;
	close(f);
	return ruf_errno(n ? n : EIO);
}

static bool
is_spool_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 32;
}

unsigned
rufd_spool_expire(const char *dir, uint64_t max_age)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	unsigned removed = 0;
	time_t now = time(NULL);

	if (!dp)
		return 0;
	while ((e = readdir(dp))) {
		struct stat st;
		if (!is_spool_name(e->d_name))
			continue;
		if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (now - st.st_mtime < 0 || (uint64_t)(now - st.st_mtime) < max_age)
			continue;
		if (unlinkat(dirfd(dp), e->d_name, 0) == 0) {
			removed++;
			log_info("spool: expired partial upload %s", e->d_name);
		}
	}
	closedir(dp);
	return removed;
}
