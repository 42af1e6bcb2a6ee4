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

static void
drop_other_lengths(const char *dir, const char *hex, const char *keep)
{
	DIR *dp = opendir(dir);
	struct dirent *e;

	if (!dp)
		return;
	while ((e = readdir(dp)))
		if (strncmp(e->d_name, hex, 32) == 0 && e->d_name[32] == '.' &&
		    strcmp(e->d_name, keep) != 0)
			(void)unlinkat(dirfd(dp), e->d_name, 0);
	closedir(dp);
}

static int
spool_path(const char *dir, const uint8_t id[16], uint64_t total, char hex[33],
           char path[RUFD_SPOOL_PATH_MAX])
{
	int n;

	ruf_hex(id, 16, hex);
	n = snprintf(path, RUFD_SPOOL_PATH_MAX, "%s/%s.%llu", dir, hex, (unsigned long long)total);
	return n < 0 || n >= RUFD_SPOOL_PATH_MAX ? RUF_E_TOO_LARGE : 0;
}

bool
rufd_spool_exists(const char *dir, const uint8_t id[16], uint64_t total)
{
	char hex[33], path[RUFD_SPOOL_PATH_MAX];
	struct stat st;

	/* When in doubt, say yes: the caller then opens it properly. */
	if (spool_path(dir, id, total, hex, path) != 0)
		return true;
	return lstat(path, &st) == 0 || errno != ENOENT;
}

int
rufd_spool_open(const char *dir, const uint8_t id[16], uint64_t total, int *fd, uint64_t *have,
                char path[RUFD_SPOOL_PATH_MAX])
{
	char hex[33];
	struct stat st;
	bool created;
	int f, n;

	if ((n = spool_path(dir, id, total, hex, path)) != 0)
		return n;
	f = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	created = f < 0 && errno == ENOENT;
	if (created) {
		/* A partial for this id with another length is emptied (wire.md). */
		drop_other_lengths(dir, hex, path + strlen(dir) + 1);
		f = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (f < 0)
		return ruf_errno(errno);
	if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode))
		goto fail;
	if ((uint64_t)st.st_size > total) {
		if (ftruncate(f, 0) != 0)
			goto fail;
		st.st_size = 0;
	}
	/*
	 * What *have reports must survive a crash: the file's length and its
	 * name. An empty file needs neither (a lost one also means have = 0),
	 * and the store's commit, not the spool, makes an upload durable.
	 */
	if (st.st_size > 0 && (fsync(f) != 0 || ruf_fsync_dir_of(path) != 0))
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
	size_t n = 0, d = 0;

	/* <32 hex digits of the message id>.<offered total length> */
	for (; n < 32; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	if (s[n++] != '.')
		return false;
	for (; s[n] >= '0' && s[n] <= '9'; n++)
		d++;
	return s[n] == '\0' && d >= 1 && d <= 20;
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
