/*
 * log.h - rufd's log: one line per event on stderr, each starting with a
 * syslog priority prefix ("<6>") that systemd-journald and most collectors
 * understand. Lines name peers by certificate subject/serial and address,
 * messages by id and size: never by contents.
 */
#ifndef RUFD_LOG_H
#define RUFD_LOG_H

#include <syslog.h>

/* Lines below this priority (numerically above it) are dropped. */
void rufd_log_set_level(int prio);

/* One line at priority prio (LOG_ERR ... LOG_DEBUG); a newline is added. */
void rufd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like rufd_log() at LOG_WARNING, with ": strerror(errno)" appended. */
void rufd_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_err(...) rufd_log(LOG_ERR, __VA_ARGS__)
#define log_warnx(...) rufd_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) rufd_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) rufd_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) rufd_log(LOG_DEBUG, __VA_ARGS__)

#endif
