/* util.c - bounded file reads, crash-safe writes, hex, identifiers, time. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

int
ruf_file_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, rc;

	*out = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return ruf_errno(errno);
	if (fstat(fd, &st) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = RUF_E_INVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = RUF_E_TOO_LARGE;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = ruf_errno(errno);
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

int
ruf_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return ruf_errno(errno);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ruf_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return ruf_errno(errno);
		if (n == 0)
			return RUF_E_TRUNCATED;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int
ruf_fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (slash == NULL) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return RUF_E_INVAL;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return ruf_errno(errno);
	if (fsync(fd) == -1)
		rc = ruf_errno(errno);
	close(fd);
	return rc;
}

int
ruf_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode, bool exclusive)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return RUF_E_INVAL;
	if (exclusive && access(path, F_OK) == 0)
		return RUF_E_EXISTS;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd == -1)
		return ruf_errno(errno);
	if ((rc = ruf_write_all(fd, buf, len)) != 0)
		goto fail_write;
	if (fsync(fd) == -1) {
		rc = ruf_errno(errno);
		goto fail_write;
	}
	if (close(fd) == -1) {
		rc = ruf_errno(errno);
		goto fail_close;
	}
	if (exclusive) {
		/* link() fails if path appeared meanwhile: never replace it. */
		if (link(tmp, path) == -1) {
			rc = ruf_errno(errno);
			goto fail_close;
		}
		unlink(tmp);
	} else if (rename(tmp, path) == -1) {
		rc = ruf_errno(errno);
		goto fail_close;
	}
	return ruf_fsync_dir_of(path);

fail_write:
	close(fd);
fail_close:
	unlink(tmp);
	return rc;
}

int
ruf_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return RUF_E_INVAL;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return ruf_errno(errno);
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return ruf_errno(errno);
	return 0;
}

void
ruf_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
ruf_unhex(const char *in, uint8_t *out, size_t len)
{
	if (strlen(in) != 2 * len)
		return RUF_E_FORMAT;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval((unsigned char)in[2 * i]),
		    lo = hexval((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return RUF_E_FORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static bool
ident_span(const char *s, size_t n)
{
	if (n == 0 || n > RUF_IDENT_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

bool
ruf_is_ident(const char *s)
{
	return s != NULL && ident_span(s, strlen(s));
}

bool
ruf_is_queue_name(const char *s)
{
	const char *dot;
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > RUF_QUEUE_NAME_MAX)
		return false;
	if ((dot = strchr(s, '.')) == NULL)
		return ident_span(s, n);
	return ident_span(s, (size_t)(dot - s)) && ident_span(dot + 1, strlen(dot + 1));
}

uint64_t
ruf_now(void)
{
	const char *o = getenv("RUF_NOW");
	char *end;

	if (o != NULL && *o != '\0') {
		unsigned long long v = strtoull(o, &end, 10);
		if (*end == '\0')
			return v;
	}
	return (uint64_t)time(NULL);
}

int
ruf_parse_duration(const char *s, uint64_t *secs)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return RUF_E_FORMAT;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return RUF_E_FORMAT;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return RUF_E_FORMAT;
	}
	if (*end != '\0' && end[1] != '\0')
		return RUF_E_FORMAT;
	if (v > UINT64_MAX / mul)
		return RUF_E_FORMAT;
	*secs = v * mul;
	return 0;
}

void
ruf_time_fmt(uint64_t t, char out[21])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(out, "invalid-time");
}

int
ruf_time_parse(const char *s, uint64_t *t)
{
	struct tm tm;
	const char *end;
	time_t v;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
		if (end == NULL || *end != '\0')
			return RUF_E_FORMAT;
	}
	if ((v = timegm(&tm)) == (time_t)-1 || v < 0)
		return RUF_E_FORMAT;
	*t = (uint64_t)v;
	return 0;
}
