/*
 * ca.h - the HQ administration directory that rufctl keeps (offline).
 *
 *   root.key, root.cert            HQ root (signs every certificate)
 *   dirsigner.key, dirsigner.cert  directory signer
 *   server.key, server.cert        the rufd server identity
 *   state                          next serial, last directory version (text)
 *   certs/SERIAL.cert              every certificate issued
 *   revoked                        revoked serials, one "SERIAL TIME [REASON]" a line
 *                                  (TIME: revoked from, YYYY-MM-DDTHH:MM:SSZ)
 *   queues/NAME.key, NAME.pub      queue key pairs (private half goes to its desks)
 *   directory                      the last directory published
 */
#ifndef RUF_CA_H
#define RUF_CA_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

struct ca_state {
	uint64_t next_serial;
	uint64_t directory_version;
};

int ca_state_load(const char *dir, struct ca_state *st);
int ca_state_save(const char *dir, const struct ca_state *st);

/* The admin directory: --dir, else $RUFCTL_DIR, else "./hq". */
const char *ca_dir(const char *opt);

/*
 * Issues a certificate for a new identity: generates its signing and X25519
 * keys into ks_out (caller frees), signs a certificate from t (role,
 * subject, validity, permissions; keys and serial filled in here) with the
 * root key, records it under certs/ and returns its bytes (caller frees).
 */
int ca_issue(const char *dir, const ruf_keystore *root_ks, struct ruf_cert_template *t,
             ruf_keystore **ks_out, uint8_t **cert_out, size_t *cert_len);

/*
 * Revocations from DIR/revoked, sorted by serial and unique (a serial
 * listed twice keeps its earliest time). Free with ca_revoked_free.
 */
int ca_revoked(const char *dir, struct ruf_dir_revocation **out, size_t *n);
void ca_revoked_free(struct ruf_dir_revocation *v, size_t n);

#endif
