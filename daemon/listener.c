/*
 * listener.c - listening sockets: the configured addresses, or the sockets
 * systemd passes (socket activation, the sd_listen_fds protocol: LISTEN_PID
 * names us, LISTEN_FDS counts descriptors starting at 3).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rufd.h"

#define LISTEN_FDS_START 3
#define BACKLOG 128

static void
on_connection(uv_stream_t *server, int status)
{
	struct rufd *d = server->data;

	if (status < 0) {
		log_warnx("accept failed: %s", uv_strerror(status));
		return;
	}
	rufd_session_accept(d, server);
}

/* The descriptors systemd passed, or 0 when none are meant for us. */
static int
systemd_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long p, n;

	if (!pid || !fds)
		return 0;
	errno = 0;
	p = strtol(pid, &end, 10);
	if (errno || *end || p != (long)getpid())
		return 0;
	n = strtol(fds, &end, 10);
	if (errno || *end || n < 0 || n > RUFD_MAX_LISTEN)
		return -1;
	/* Children (none today) must not think the sockets are theirs. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)n;
}

static int
listen_one(struct rufd *d, uv_tcp_t *t)
{
	int rc;

	t->data = d;
	if ((rc = uv_listen((uv_stream_t *)t, BACKLOG, on_connection)) != 0)
		return rc;
	d->n_listeners++;
	return 0;
}

int
rufd_listen(struct rufd *d)
{
	int n = systemd_fds(), rc;

	if (n < 0) {
		log_err("LISTEN_FDS is not a count of at most %d sockets", RUFD_MAX_LISTEN);
		return RUF_E_INVAL;
	}
	if (n > 0) {
		for (int i = 0; i < n; i++) {
			int fd = LISTEN_FDS_START + i;
			uv_tcp_t *t = &d->listeners[d->n_listeners];

			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
			uv_tcp_init(d->loop, t);
			if ((rc = uv_tcp_open(t, fd)) != 0 || (rc = listen_one(d, t)) != 0) {
				log_err("socket %d from systemd: %s", fd, uv_strerror(rc));
				uv_close((uv_handle_t *)t, NULL);
				return RUF_E_IO;
			}
			log_info("listening on socket %d from systemd", fd);
		}
		return 0;
	}
	struct rufd_addr defaults[2];
	const struct rufd_addr *addrs = d->cfg.listen;
	size_t na = d->cfg.n_listen;
	if (na == 0) {
		if (rufd_addr_parse("127.0.0.1:7443", &defaults[0]) != 0 ||
		    rufd_addr_parse("[::1]:7443", &defaults[1]) != 0)
			abort();
		addrs = defaults;
		na = 2;
	}
	for (size_t i = 0; i < na; i++) {
		uv_tcp_t *t = &d->listeners[d->n_listeners];
		unsigned flags = addrs[i].sa.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;

		uv_tcp_init(d->loop, t);
		if ((rc = uv_tcp_bind(t, (const struct sockaddr *)&addrs[i].sa, flags)) != 0 ||
		    (rc = listen_one(d, t)) != 0) {
			log_err("listen %s: %s", addrs[i].text, uv_strerror(rc));
			uv_close((uv_handle_t *)t, NULL);
			return RUF_E_IO;
		}
		log_info("listening on %s", addrs[i].text);
	}
	return 0;
}

void
rufd_listen_stop(struct rufd *d)
{
	for (size_t i = 0; i < d->n_listeners; i++)
		if (!uv_is_closing((uv_handle_t *)&d->listeners[i]))
			uv_close((uv_handle_t *)&d->listeners[i], NULL);
}
