/*
 * passphrase.c - passphrase input for the command-line tools: a file, an
 * environment variable, or the terminal with echo off.
 *
 * The passphrase is read byte by byte with read(2) straight into
 * sodium_malloc'ed memory, never through stdio, whose buffers would keep a
 * copy we cannot wipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "err.h"
#include "keystore.h"
#include "util.h"

/* Room for the longest accepted line plus "\r\n" and a NUL. */
#define PASS_BUF (RUF_PASSPHRASE_MAX + 3)

/* Set by the handler while the terminal has echo off; see from_tty(). */
static volatile sig_atomic_t pass_signo;

static void
pass_on_signal(int signo)
{
	pass_signo = signo;
}

/*
 * Waits until fd is readable. For the terminal (waitmask != NULL) the
 * signals from_tty() catches are blocked except inside ppoll(), so a signal
 * that arrives at any moment, even just before we would block, interrupts
 * the wait instead of being handled and then leaving us blocked in read().
 */
static int
wait_readable(int fd, const sigset_t *waitmask)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	if (waitmask == NULL)
		return 0;
	for (;;) {
		if (pass_signo != 0)
			return RUF_E_IO;
		if (ppoll(&pfd, 1, NULL, waitmask) >= 0)
			return 0;
		if (errno != EINTR)
			return ruf_errno(errno);
	}
}

/*
 * Reads one line from fd into buf (PASS_BUF bytes). Returns 0 and its length
 * without the "\n" or "\r\n", RUF_E_TOO_LARGE if longer than
 * RUF_PASSPHRASE_MAX, RUF_E_FORMAT if it holds a NUL byte, RUF_E_IO if a
 * caught signal interrupted the wait (pass_signo is then set), or another
 * I/O error. On the terminal (waitmask != NULL) an over-long line is still
 * read to its end, so what remains does not spill into the shell.
 */
static int
read_line(int fd, const sigset_t *waitmask, char *buf, size_t *outlen)
{
	size_t n = 0;
	bool too_long = false, has_nul = false;
	int rc;

	for (;;) {
		char c;
		ssize_t r;

		if ((rc = wait_readable(fd, waitmask)) != 0)
			return rc;
		/* EAGAIN: the non-blocking terminal had nothing after all. */
		if ((r = read(fd, &c, 1)) == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r == -1)
			return ruf_errno(errno);
		if (r == 0 || c == '\n')
			break;
		if (c == '\0')
			has_nul = true;
		if (n < PASS_BUF - 1) {
			buf[n++] = c;
		} else {
			too_long = true;
			if (waitmask == NULL)
				break;
		}
		sodium_memzero(&c, sizeof(c));
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (too_long || n > RUF_PASSPHRASE_MAX)
		return RUF_E_TOO_LARGE;
	if (has_nul)
		return RUF_E_FORMAT;
	*outlen = n;
	return 0;
}

static int
from_file(const char *file, char *buf, size_t *len)
{
	int fd, rc;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return ruf_errno(errno);
	rc = read_line(fd, NULL, buf, len);
	close(fd);
	if (rc == 0 && *len == 0)
		rc = RUF_E_NO_PASSPHRASE;
	return rc;
}

static int
from_env(const char *env, char *buf, size_t *len)
{
	const char *v = getenv(env);
	size_t n;

	if (v == NULL || *v == '\0')
		return RUF_E_NOTFOUND;
	if ((n = strlen(v)) > RUF_PASSPHRASE_MAX)
		return RUF_E_TOO_LARGE;
	memcpy(buf, v, n + 1);
	*len = n;
	return 0;
}

/* Prompts on the terminal fd (echo already off) and reads one line. */
static int
tty_ask(int fd, const sigset_t *waitmask, const char *prompt, char *buf, size_t *len)
{
	int rc;

	if ((rc = ruf_write_all(fd, prompt, strlen(prompt))) != 0)
		return rc;
	rc = read_line(fd, waitmask, buf, len);
	/* Echo is off, so the user's Enter did not move the cursor. */
	(void)ruf_write_all(fd, "\n", 1);
	if (rc == 0 && *len == 0)
		rc = RUF_E_NO_PASSPHRASE;
	return rc;
}

/*
 * The terminal path. Echo is restored on every return; a signal that would
 * kill us meanwhile is caught, echo restored, and the signal raised again
 * with its previous disposition (the approach of OpenBSD's readpassphrase).
 * Those signals stay blocked except while waiting for input (ppoll), and the
 * terminal is read non-blocking, so none can be lost between a check and a
 * blocking read. The tools are single-threaded, so sigprocmask is enough.
 */
static int
from_tty(const char *prompt, bool confirm, char *buf, size_t *len)
{
	static const int sigs[] = {SIGINT, SIGHUP, SIGQUIT, SIGTERM};
	enum { NSIGS = sizeof(sigs) / sizeof(sigs[0]) };
	struct sigaction sa, saved[NSIGS];
	sigset_t block, waitmask;
	struct termios orig, noecho;
	char *again = NULL;
	size_t againlen = 0;
	int fd, rc;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return RUF_E_NO_PASSPHRASE;
	if (tcgetattr(fd, &orig) == -1) {
		rc = RUF_E_NO_PASSPHRASE;
		goto fail_tcgetattr;
	}
	pass_signo = 0;
	sigemptyset(&block);
	for (size_t i = 0; i < NSIGS; i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = pass_on_signal;
	for (size_t i = 0; i < NSIGS; i++) {
		/* A signal the caller ignores (nohup) stays ignored. */
		sigaction(sigs[i], NULL, &saved[i]);
		if (saved[i].sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
	noecho = orig;
	noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	if (tcsetattr(fd, TCSAFLUSH, &noecho) == -1) {
		rc = ruf_errno(errno);
		goto fail_tcsetattr;
	}

	rc = tty_ask(fd, &waitmask, prompt != NULL ? prompt : "Passphrase: ", buf, len);
	if (rc != 0)
		goto out;
	if (confirm) {
		if ((again = sodium_malloc(PASS_BUF)) == NULL) {
			rc = RUF_E_NOMEM;
			goto out;
		}
		rc = tty_ask(fd, &waitmask, "Again: ", again, &againlen);
		if (rc == RUF_E_NO_PASSPHRASE ||
		    (rc == 0 && (againlen != *len || sodium_memcmp(again, buf, *len) != 0)))
			rc = RUF_E_PASSPHRASE_MISMATCH;
	}
out:
	tcsetattr(fd, TCSAFLUSH, &orig);
fail_tcsetattr:
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(sigs[i], &saved[i], NULL);
	sigprocmask(SIG_SETMASK, &waitmask, NULL);
fail_tcgetattr:
	close(fd);
	if (again != NULL)
		sodium_free(again);
	if (pass_signo != 0) {
		/* The terminal is back to normal: now let the signal act. */
		int signo = pass_signo;
		pass_signo = 0;
		raise(signo);
		if (rc == 0)
			rc = RUF_E_IO;
	}
	return rc;
}

int
ruf_passphrase_get(const char *prompt, const char *file, const char *env, bool confirm, char **out,
                   size_t *outlen)
{
	char *buf;
	size_t len = 0;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (sodium_init() < 0)
		return RUF_E_CRYPTO;
	if ((buf = sodium_malloc(PASS_BUF)) == NULL)
		return RUF_E_NOMEM;
	if (file != NULL) {
		rc = from_file(file, buf, &len);
	} else {
		rc = RUF_E_NOTFOUND;
		if (env != NULL)
			rc = from_env(env, buf, &len);
		if (rc == RUF_E_NOTFOUND)
			rc = from_tty(prompt, confirm, buf, &len);
	}
	if (rc != 0) {
		sodium_free(buf);
		return rc;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

void
ruf_passphrase_free(char *p, size_t len)
{
	(void)len; /* sodium_free() wipes the whole allocation, whatever len says. */
	if (p != NULL)
		sodium_free(p);
}
