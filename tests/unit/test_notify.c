/* test_notify.c - sd_notify messages, watchdog interval, credential paths (daemon/notify.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

/* A datagram socket standing in for systemd's; name "@..." is abstract. */
static int
listener(const char *name)
{
	struct sockaddr_un sa;
	size_t n = strlen(name);
	socklen_t len;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(n < sizeof(sa.sun_path));
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void
expect_datagram(int fd, const char *want_prefix)
{
	char buf[600];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	if (strncmp(buf, want_prefix, strlen(want_prefix)) != 0)
		fail_msg("got '%s', want '%s...'", buf, want_prefix);
}

static void
test_notify_without_socket_is_a_silent_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(ruf_notify_ready(), 0);
	assert_int_equal(ruf_notify_watchdog(), 0);
	assert_int_equal(ruf_notify_status("x %d", 1), 0);
}

static void
test_notify_sends_each_state_to_a_path_socket(void **state)
{
	char dir[] = "/tmp/ruf-notify-XXXXXX", path[128];
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(ruf_notify_ready(), 0);
	expect_datagram(fd, "READY=1");
	assert_int_equal(ruf_notify_stopping(), 0);
	expect_datagram(fd, "STOPPING=1");
	assert_int_equal(ruf_notify_reloading(), 0);
	expect_datagram(fd, "RELOADING=1\nMONOTONIC_USEC=");
	assert_int_equal(ruf_notify_watchdog(), 0);
	expect_datagram(fd, "WATCHDOG=1");
	assert_int_equal(ruf_notify_status("serving %d\nREADY=1", 3), 0);
	/* A newline in the status must not smuggle in a second assignment. */
	expect_datagram(fd, "STATUS=serving 3 READY=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void
test_notify_reaches_an_abstract_socket(void **state)
{
	char name[64];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@ruf-notify-test-%ld", (long)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(ruf_notify_ready(), 0);
	expect_datagram(fd, "READY=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void
test_notify_rejects_malformed_socket_names(void **state)
{
	char longname[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(ruf_notify_ready(), RUF_E_INVAL);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(ruf_notify_ready(), RUF_E_INVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_int_equal(ruf_notify_ready(), RUF_E_INVAL);
	/* Nobody listening there: an error, not a crash or a hang. */
	setenv("NOTIFY_SOCKET", "/nonexistent/ruf-notify", 1);
	assert_int_equal(ruf_notify_ready(), RUF_E_IO);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_watchdog_usec_ignores_other_pids_and_garbage(void **state)
{
	char pid[32];

	(void)state;
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(ruf_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(ruf_notify_watchdog_usec(), 30000000);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(ruf_notify_watchdog_usec(), 30000000);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(ruf_notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "-5", 1);
	assert_int_equal(ruf_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(ruf_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "99999999999999999999999", 1);
	assert_int_equal(ruf_notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

static void
on_work(uv_timer_t *t)
{
	(void)t;
}

static void
test_watchdog_timer_pings_and_does_not_hold_the_loop(void **state)
{
	char name[64];
	uv_loop_t loop;
	uv_timer_t t, work;
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@ruf-watchdog-test-%ld", (long)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "2000", 1);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(rufd_watchdog_start(&loop, &t), 0);
	/* Unreferenced: the watchdog alone does not keep the loop running. */
	assert_int_equal(uv_loop_alive(&loop), 0);
	/* Some real work (a one-shot timer) runs the loop; the first ping goes at once. */
	assert_int_equal(uv_timer_init(&loop, &work), 0);
	assert_int_equal(uv_timer_start(&work, on_work, 5, 0), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	expect_datagram(fd, "WATCHDOG=1");
	uv_close((uv_handle_t *)&work, NULL);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void
test_watchdog_timer_absent_without_watchdog(void **state)
{
	uv_loop_t loop;
	uv_timer_t t;

	(void)state;
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(rufd_watchdog_start(&loop, &t), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_credential_resolves_under_credentials_directory(void **state)
{
	char *p = strdup("credential:server.key");
	ruf_diag d = {{0}};

	(void)state;
	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/rufd.service/", 1);
	assert_int_equal(rufd_credential_resolve(&p, &d), 0);
	assert_string_equal(p, "/run/credentials/rufd.service/server.key");
	free(p);
	/* Plain paths are left alone. */
	p = strdup("/etc/ruf/server.key");
	assert_int_equal(rufd_credential_resolve(&p, &d), 0);
	assert_string_equal(p, "/etc/ruf/server.key");
	free(p);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void
test_credential_refuses_traversal_and_missing_directory(void **state)
{
	const char *bad[] = {"credential:", "credential:../etc/shadow", "credential:..",
	                     "credential:.", "credential:a/b"};
	ruf_diag d = {{0}};
	char *p;

	(void)state;
	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/rufd.service", 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = strdup(bad[i]);
		assert_int_equal(rufd_credential_resolve(&p, &d), RUF_E_INVAL);
		assert_string_equal(p, bad[i]);
		free(p);
	}
	unsetenv("CREDENTIALS_DIRECTORY");
	p = strdup("credential:server.key");
	assert_int_equal(rufd_credential_resolve(&p, &d), RUF_E_INVAL);
	assert_non_null(strstr(d.msg, "LoadCredential"));
	free(p);
	setenv("CREDENTIALS_DIRECTORY", "relative", 1);
	p = strdup("credential:server.key");
	assert_int_equal(rufd_credential_resolve(&p, &d), RUF_E_INVAL);
	free(p);
	unsetenv("CREDENTIALS_DIRECTORY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_notify_without_socket_is_a_silent_noop),
	    cmocka_unit_test(test_notify_sends_each_state_to_a_path_socket),
	    cmocka_unit_test(test_notify_reaches_an_abstract_socket),
	    cmocka_unit_test(test_notify_rejects_malformed_socket_names),
	    cmocka_unit_test(test_watchdog_usec_ignores_other_pids_and_garbage),
	    cmocka_unit_test(test_watchdog_timer_pings_and_does_not_hold_the_loop),
	    cmocka_unit_test(test_watchdog_timer_absent_without_watchdog),
	    cmocka_unit_test(test_credential_resolves_under_credentials_directory),
	    cmocka_unit_test(test_credential_refuses_traversal_and_missing_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
