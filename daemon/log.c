/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int log_level = LOG_INFO;

void
rufd_log_set_level(int prio)
{
	log_level = prio;
}

static void log_line(int prio, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
log_line(int prio, const char *suffix, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (prio > log_level)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* One write per line so that concurrent writers never interleave. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (suffix)
		fprintf(stderr, "<%d>%s: %s\n", prio, line, suffix);
	else
		fprintf(stderr, "<%d>%s\n", prio, line);
}

void
rufd_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(prio, NULL, fmt, ap);
	va_end(ap);
}

void
rufd_log_warn(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	log_line(LOG_WARNING, strerror(e), fmt, ap);
	va_end(ap);
}
