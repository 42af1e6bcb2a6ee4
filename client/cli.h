/*
 * cli.h - what ruf and rufctl share: subcommand dispatch, one-line errors,
 * passphrases, the on-disk layout of an identity.
 *
 * Exit codes (both programs): 0 success, 1 failure, 2 usage error,
 * 3 verification failure (a certificate, directory or envelope was refused).
 */
#ifndef RUF_CLI_H
#define RUF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cert.h"
#include "directory.h"
#include "envelope.h"
#include "err.h"
#include "keystore.h"

#define EXIT_USAGE 2
#define EXIT_VERIFY 3

struct cli_command {
	const char *name;
	int (*main)(int argc, char *argv[]);
	const char *help;
};

/* The program name for messages ("ruf", "rufctl"). */
extern const char *cli_progname;

/*
 * Runs the subcommand named by argv[1] from table (NULL-terminated).
 * Handles --help/-h/help and --version.
 */
int cli_dispatch(const struct cli_command *table, const char *usage, int argc, char *argv[]);

/* Prints "prog: what: detail" on stderr (one line) and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit code for a RUF_E_* error: EXIT_VERIFY for refused data, else 1. */
int cli_exit_for(int err);

/* Passphrase options every command that opens a keystore accepts. */
struct cli_pass {
	const char *file;     /* --passphrase-file */
	const char *new_file; /* --new-passphrase-file */
	bool none;            /* --no-passphrase (new keystores only) */
	const char *kdf;      /* --kdf interactive|moderate|sensitive */
};

/*
 * Opens the keystore at path, asking for its passphrase only if it is
 * protected (file, $RUF_PASSPHRASE, terminal). On failure prints the error and
 * returns it.
 */
int cli_keystore_open(const char *path, const struct cli_pass *pp, ruf_keystore **out);

/*
 * Saves a new keystore at path (never overwriting), protected by a new
 * passphrase (--new-passphrase-file, $RUF_NEW_PASSPHRASE, terminal asked
 * twice) unless --no-passphrase was given.
 */
int cli_keystore_create(const char *path, const ruf_keystore *ks, const struct cli_pass *pp);

/* snprintf into a PATH_MAX buffer, aborting (internal error) on truncation. */
void cli_path(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Writes buf crash-safely to path (mode), failing with a one-line message.
 * exclusive: refuse to replace an existing file.
 */
int cli_write_file(const char *path, const void *buf, size_t len, unsigned mode, bool exclusive);

/* Copies a file of at most max bytes crash-safely (never replacing dst). */
int cli_copy_file(const char *src, const char *dst, size_t max, unsigned mode);

/* Header flags as text: " -" when none, else " name" for each set flag. */
void cli_flags_text(FILE *fp, uint32_t flags);
/* Header flags as the inside of a JSON array: "a", "b". */
void cli_flags_json(FILE *fp, uint32_t flags);
/* An opened envelope's attachments as a JSON array (name, size, blake2b, saved_path). */
void cli_attachments_json(FILE *fp, const struct ruf_opened *o);

/* Minimal JSON string escaping for --json output. */
void cli_json_str(FILE *fp, const char *s);

/*
 * An identity home (ruf): what `ruf enroll` installs.
 *   keystore    private keys (passphrase-protected)
 *   cert        this identity's certificate
 *   root.cert   the pinned HQ root
 *   directory   the newest accepted signed directory
 *   sequence    next per-device sequence number (text)
 */
struct cli_identity {
	char home[4096];
	ruf_cert *root;
	ruf_cert *cert;
	ruf_directory *dir;
	ruf_keystore *ks; /* NULL unless asked for */
};

/* The home: --home, else $RUF_HOME, else ~/.ruf. */
const char *cli_home(const char *opt);

/*
 * Loads and checks an identity: root pinned and self-signed, own certificate
 * valid under it and not revoked, directory valid under it. want_keys also
 * opens the keystore and checks its keys match the certificate.
 */
int cli_identity_load(const char *home, bool want_keys, const struct cli_pass *pp,
                      struct cli_identity *id);
void cli_identity_free(struct cli_identity *id);

#endif
