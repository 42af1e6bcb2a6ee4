/*
 * notify.c - sd_notify by hand, the watchdog timer, LoadCredential paths
 * (see notify.h). The protocol: one AF_UNIX datagram of "VAR=VALUE" lines to
 * the socket named in $NOTIFY_SOCKET ("@" first means the abstract
 * namespace); systemd checks the sender's pid, so no reply is read.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CREDENTIAL_PREFIX "credential:"
#define CREDENTIAL_NAME_MAX 255

/* Strict decimal: digits only, no sign, no overflow; 0 or -1. */
static int
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int
ruf_notify_send(const char *state, int dontwait)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t n;
	ssize_t w;
	int fd, rc = 0;

	if (!e || !*e)
		return 0;
	n = strlen(e);
	/* Abstract names carry no terminating NUL; paths need room for one. */
	if ((e[0] != '/' && e[0] != '@') || n < 2 || n >= sizeof(sa.sun_path))
		return RUF_E_INVAL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, e, n);
	if (e[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/' ? 1 : 0));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return RUF_E_IO;
	do
		w = sendto(fd, state, strlen(state), MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0),
		           (const struct sockaddr *)&sa, salen);
	while (w < 0 && errno == EINTR);
	if (w < 0 || (size_t)w != strlen(state))
		rc = RUF_E_IO;
	close(fd);
	return rc;
}

int
ruf_notify_ready(void)
{
	return ruf_notify_send("READY=1", 0);
}

int
ruf_notify_stopping(void)
{
	return ruf_notify_send("STOPPING=1", 0);
}

int
ruf_notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	/* systemd >= 253 matches the reload by this timestamp; older ones ignore it. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return ruf_notify_send("RELOADING=1", 0);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ull +
	             (unsigned long long)ts.tv_nsec / 1000ull);
	return ruf_notify_send(msg, 0);
}

int
ruf_notify_watchdog(void)
{
	return ruf_notify_send("WATCHDOG=1", 1);
}

int
ruf_notify_status(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	memcpy(msg, "STATUS=", 7);
	va_start(ap, fmt);
	n = vsnprintf(msg + 7, sizeof(msg) - 7, fmt, ap);
	va_end(ap);
	if (n < 0)
		return RUF_E_INVAL;
	/* A newline would start a new assignment: status is one line. */
	for (char *p = msg + 7; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return ruf_notify_send(msg, 0);
}

uint64_t
ruf_notify_watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	uint64_t usec, p;

	if (parse_u64(getenv("WATCHDOG_USEC"), &usec) != 0 || usec == 0)
		return 0;
	/* Set for another process (we were forked by it): not ours to feed. */
	if (pid && (parse_u64(pid, &p) != 0 || p != (uint64_t)getpid()))
		return 0;
	return usec;
}

static void
on_watchdog(uv_timer_t *t)
{
	(void)t;
	(void)ruf_notify_watchdog();
}

int
rufd_watchdog_start(uv_loop_t *loop, uv_timer_t *t)
{
	uint64_t usec = ruf_notify_watchdog_usec(), ms;
	int rc;

	if (usec == 0)
		return 0;
	/* Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms. */
	ms = usec / 2000;
	if (ms == 0)
		ms = 1;
	if ((rc = uv_timer_init(loop, t)) != 0)
		return RUF_E_IO;
	if ((rc = uv_timer_start(t, on_watchdog, 0, ms)) != 0) {
		uv_close((uv_handle_t *)t, NULL);
		return RUF_E_IO;
	}
	uv_unref((uv_handle_t *)t);
	return 0;
}

int
rufd_credential_resolve(char **path, ruf_diag *d)
{
	const size_t plen = sizeof(CREDENTIAL_PREFIX) - 1;
	const char *name, *dir;
	size_t nlen, dlen;
	char *out;

	if (!*path || strncmp(*path, CREDENTIAL_PREFIX, plen) != 0)
		return 0;
	name = *path + plen;
	nlen = strlen(name);
	if (nlen == 0 || nlen > CREDENTIAL_NAME_MAX || strchr(name, '/') ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		ruf_diag_set(d, "'%.300s': a credential name is 1..%d bytes without '/'", *path,
		             CREDENTIAL_NAME_MAX);
		return RUF_E_INVAL;
	}
	dir = getenv("CREDENTIALS_DIRECTORY");
	if (!dir || dir[0] != '/') {
		ruf_diag_set(d,
		             "'%.300s' needs $CREDENTIALS_DIRECTORY (run under systemd with "
		             "LoadCredential=%.255s:PATH, or give a path)",
		             *path, name);
		return RUF_E_INVAL;
	}
	dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	if (!(out = malloc(dlen + 1 + nlen + 1)))
		return RUF_E_NOMEM;
	memcpy(out, dir, dlen);
	out[dlen] = '/';
	memcpy(out + dlen + 1, name, nlen + 1);
	free(*path);
	*path = out;
	return 0;
}
