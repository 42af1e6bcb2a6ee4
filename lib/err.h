/*
 * err.h - one project-wide error space.
 *
 * Every function that can fail returns 0 or a negative RUF_E_* code;
 * ruf_strerror() turns a code into one line for the user. Codes are listed
 * once, in RUF_ERRORS below, grouped by module. Append new codes to the end of
 * their group; the numbers are not part of any wire format.
 *
 * Envelope opening errors are listed in the order the checks run (see
 * docs/PROTOCOL.md, "Opening an envelope"). They are for the local user
 * only: a network peer is never told which check failed.
 */
#ifndef RUF_ERR_H
#define RUF_ERR_H

#include <errno.h>

#define RUF_ERRORS(X)                                                                              \
	/* generic */                                                                              \
	X(NOMEM, "out of memory")                                                                  \
	X(IO, "input/output error")                                                                \
	X(INVAL, "invalid argument")                                                               \
	X(FORMAT, "malformed data")                                                                \
	X(VERSION, "unsupported format version")                                                   \
	X(TOO_LARGE, "input too large")                                                            \
	X(TRUNCATED, "input truncated")                                                            \
	X(TRAILING, "trailing data after the end of the input")                                    \
	X(EXISTS, "already exists")                                                                \
	X(NOTFOUND, "not found")                                                                   \
	X(CRYPTO, "cryptographic library failure")                                                 \
	X(NOSPC, "no space left on device")                                                        \
	X(PERM, "permission denied")                                                               \
	X(AUTH, "message fails authentication")                                                    \
	X(NONCE_EXHAUSTED, "nonce space exhausted, a new session is needed")                       \
	/* passphrases and keystores */                                                            \
	X(PASSPHRASE, "wrong passphrase, or the keystore is damaged")                              \
	X(NO_PASSPHRASE, "a passphrase is required but none was given")                            \
	X(KEYSTORE, "keystore file is damaged or not a keystore")                                  \
	X(KDF_LIMITS, "keystore asks for key-derivation limits outside the accepted range")        \
	X(NO_KEY, "the keystore does not hold the required key")                                   \
	X(WEAK_KEY, "public key is invalid (small order or all zero)")                             \
	X(PASSPHRASE_MISMATCH, "the two passphrases entered differ")                               \
	/* certificates */                                                                         \
	X(CERT_FORMAT, "certificate is malformed")                                                 \
	X(CERT_SIGNATURE, "certificate signature does not verify")                                 \
	X(CERT_ISSUER, "certificate was not issued by the pinned HQ root")                         \
	X(CERT_ROLE, "certificate has the wrong role for this use")                                \
	X(CERT_NOT_YET_VALID, "certificate is not yet valid")                                      \
	X(CERT_EXPIRED, "certificate has expired")                                                 \
	X(CERT_REVOKED, "certificate has been revoked")                                            \
	X(CERT_CRITICAL, "certificate has an unknown critical extension")                          \
	X(CERT_PERMISSION, "certificate does not permit this situation or queue")                  \
	/* directory */                                                                            \
	X(DIR_FORMAT, "directory is malformed")                                                    \
	X(DIR_SIGNER, "directory signer certificate is not valid under the pinned root")           \
	X(DIR_SIGNATURE, "directory signature does not verify")                                    \
	X(DIR_EXPIRED, "directory has expired")                                                    \
	X(DIR_ROLLBACK, "directory is not newer than the one already held")                        \
	X(DIR_NO_QUEUE, "directory has no key for a queue the policy routes to")                   \
	/* routing policy */                                                                       \
	X(POLICY, "routing policy is invalid")                                                     \
	/* envelope, in the order the opening checks run */                                        \
	X(ENV_FORMAT, "envelope is malformed")                                                     \
	X(ENV_VERSION, "envelope format version is not supported")                                 \
	X(ENV_SENDER, "envelope sender certificate is not valid")                                  \
	X(ENV_SENDER_MISMATCH, "envelope header does not match the sender certificate")            \
	X(ENV_SIGNATURE, "envelope signature does not verify")                                     \
	X(ENV_NOT_RECIPIENT, "envelope is not addressed to any queue this identity holds")         \
	X(ENV_EPOCH, "envelope is sealed to a queue key epoch this identity does not hold")        \
	X(ENV_UNWRAP, "envelope content key cannot be unwrapped with this queue key")              \
	X(ENV_COMMITMENT, "envelope key commitment does not match")                                \
	X(ENV_DECRYPT, "envelope content fails authentication")                                    \
	X(ENV_TRUNCATED, "envelope content is truncated")                                          \
	X(ENV_DECOMPRESS, "envelope content does not decompress")                                  \
	X(ENV_PADDING, "envelope padding is not well formed")                                      \
	X(ENV_READDRESSED, "envelope recipients differ from those the sender signed")              \
	X(ENV_CONTENT, "envelope content is malformed")                                            \
	X(ENV_ATTACHMENT, "attachment does not match its recorded hash")                           \
	X(ENV_CHANGED, "envelope file changed while it was being read")                            \
	/* reports */                                                                              \
	X(REPORT, "report is invalid")                                                             \
	/* store */                                                                                \
	X(STORE_AUDIT, "store audit log hash chain does not verify")                               \
	X(STORE_CONFLICT, "another instance wrote to the store first: redo the batch")             \
	X(STORE_UNAVAILABLE, "the replicated store is unreachable or has no quorum: retry later")  \
	/* wire protocol and network client */                                                     \
	X(WIRE_PROTOCOL, "the peer broke the wire protocol")                                       \
	X(WIRE_HANDSHAKE, "the server refused the connection or is not the pinned HQ server")      \
	X(WIRE_ERROR, "the server reported an error and closed the connection")                    \
	X(WIRE_RETRY_LATER, "the server is busy or out of space: retry later")                     \
	X(WIRE_STALE_DIRECTORY, "the server holds a newer directory: re-seal and send again")      \
	X(WIRE_REJECTED, "the server rejected the envelope")                                       \
	X(WIRE_RECEIPT, "the receipt does not match the submitted envelope")                       \
	X(NET_CONNECT, "cannot connect to the server")                                             \
	X(NET_TIMEOUT, "network operation timed out")                                              \
	X(NET_CLOSED, "the connection was closed")

enum ruf_err_index {
#define RUF__ERR_IDX(name, msg) RUF__ERRIDX_##name,
	RUF__ERRIDX_OK = 0,
	RUF_ERRORS(RUF__ERR_IDX) RUF__ERRIDX_MAX
#undef RUF__ERR_IDX
};

enum ruf_err {
	RUF_OK = 0,
#define RUF__ERR_CODE(name, msg) RUF_E_##name = -RUF__ERRIDX_##name,
	RUF_ERRORS(RUF__ERR_CODE)
#undef RUF__ERR_CODE
};

/* Returns a static one-line description of err (0 or a RUF_E_* code). */
const char *ruf_strerror(int err);

/* Returns the symbolic name ("ENV_SIGNATURE") of err, for --json output and tests. */
const char *ruf_errname(int err);

/* Maps an errno value to a RUF_E_* code (like libuv's UV__ERR). */
int ruf_errno(int e);

/*
 * Diagnostics: a place for a detailed message (a line number, a field
 * name) next to the error code. Every function taking a ruf_diag * accepts
 * NULL. The message is one line, without a trailing newline.
 */
typedef struct ruf_diag {
	char msg[256];
} ruf_diag;

void ruf_diag_set(ruf_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
