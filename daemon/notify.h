/*
 * notify.h - rufd under systemd: service notifications (the sd_notify
 * protocol, written by hand so rufd needs no libsystemd), the watchdog
 * keep-alive, and credentials passed with LoadCredential=.
 *
 * Every ruf_notify_* call is a no-op returning 0 when $NOTIFY_SOCKET is not
 * set (rufd started by hand, by a test, or by another supervisor), so the
 * calls need no conditions around them.
 */
#ifndef RUFD_NOTIFY_H
#define RUFD_NOTIFY_H

#include <stdint.h>
#include <uv.h>

#include "err.h"

/*
 * Sends state (newline-separated VAR=VALUE lines, e.g. "READY=1") as one
 * datagram to $NOTIFY_SOCKET: an absolute path, or an abstract socket
 * written "@name". Returns 0 (sent, or no $NOTIFY_SOCKET), RUF_E_INVAL for a
 * malformed $NOTIFY_SOCKET, RUF_E_IO when sending fails. dontwait: never
 * block (a lost watchdog ping is replaced by the next one).
 */
int ruf_notify_send(const char *state, int dontwait);

/* "READY=1": the store is open and the listeners accept. */
int ruf_notify_ready(void);
/* "STOPPING=1": shutdown has begun (SIGTERM/SIGINT). */
int ruf_notify_stopping(void);
/*
 * "RELOADING=1" with MONOTONIC_USEC= (which newer systemd requires): a
 * SIGHUP reload has begun; send ruf_notify_ready() when it is over, whether
 * it succeeded or was refused.
 */
int ruf_notify_reloading(void);
/* "WATCHDOG=1": the event loop is alive. */
int ruf_notify_watchdog(void);
/* "STATUS=..." (printf format; one line shown by systemctl status). */
int ruf_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval systemd expects pings within, in microseconds, from
 * $WATCHDOG_USEC (ignored when $WATCHDOG_PID names another process); 0 when
 * there is no watchdog or the variables are malformed.
 */
uint64_t ruf_notify_watchdog_usec(void);

/*
 * Starts t on loop to send WATCHDOG=1 every half watchdog interval, if
 * systemd asked for a watchdog (else does nothing and returns 0). The timer
 * is unreferenced, so it never keeps the loop alive: shutdown needs no
 * change, and uv_walk() closes it with the rest. A loop stuck in a callback
 * stops the pings, and systemd restarts rufd: that is the point.
 */
int rufd_watchdog_start(uv_loop_t *loop, uv_timer_t *t);

/*
 * Resolves a configured path that may name a systemd credential:
 * "credential:NAME" becomes "$CREDENTIALS_DIRECTORY/NAME" (NAME non-empty,
 * no '/', not "." or ".."); any other value is left alone. On success
 * *path is replaced by a malloc'ed string (the old one freed) and 0 is
 * returned; RUF_E_INVAL with the reason in d when the name is bad or
 * $CREDENTIALS_DIRECTORY is not set or not absolute; RUF_E_NOMEM.
 */
int rufd_credential_resolve(char **path, ruf_diag *d);

#endif
