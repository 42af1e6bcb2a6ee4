/* cli_common.c - dispatch, errors, passphrases and identities for ruf and rufctl. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli.h"
#include "util.h"

#define RUF_VERSION_STRING "0.1.0"

const char *cli_progname = "ruf";

int
cli_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int
cli_exit_for(int err)
{
	switch (err) {
	case RUF_E_PASSPHRASE:
	case RUF_E_NO_PASSPHRASE:
	case RUF_E_IO:
	case RUF_E_NOMEM:
	case RUF_E_NOTFOUND:
	case RUF_E_EXISTS:
	case RUF_E_NOSPC:
	case RUF_E_PERM:
	case RUF_E_INVAL:
	case RUF_E_POLICY:
	case RUF_E_DIR_NO_QUEUE:
	case RUF_E_REPORT:
		return 1;
	default:
		return EXIT_VERIFY;
	}
}

static void
print_usage(FILE *fp, const struct cli_command *table, const char *usage)
{
	fprintf(fp, "%s\n\nCommands:\n", usage);
	for (const struct cli_command *c = table; c->name != NULL; c++)
		fprintf(fp, "  %-12s %s\n", c->name, c->help);
	fprintf(fp, "\nRun '%s COMMAND --help' for a command's options.\n", cli_progname);
}

int
cli_dispatch(const struct cli_command *table, const char *usage, int argc, char *argv[])
{
	const char *cmd;

	if (sodium_init() < 0)
		return cli_fail(1, "libsodium failed to initialise");
	if (argc < 2) {
		print_usage(stderr, table, usage);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		print_usage(stdout, table, usage);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("%s %s\n", cli_progname, RUF_VERSION_STRING);
		return 0;
	}
	for (const struct cli_command *c = table; c->name != NULL; c++) {
		if (strcmp(c->name, cmd) == 0)
			return c->main(argc - 1, argv + 1);
	}
	cli_fail(EXIT_USAGE, "unknown command '%s'", cmd);
	print_usage(stderr, table, usage);
	return EXIT_USAGE;
}

void
cli_path(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outlen) {
		fprintf(stderr, "%s: path too long\n", cli_progname);
		exit(1);
	}
}

int
cli_write_file(const char *path, const void *buf, size_t len, unsigned mode, bool exclusive)
{
	int rc = ruf_file_write_atomic(path, buf, len, (mode_t)mode, exclusive);

	if (rc != 0)
		cli_fail(1, "%s: %s", path, ruf_strerror(rc));
	return rc;
}

void
cli_flags_text(FILE *fp, uint32_t flags)
{
	if (flags == 0)
		fputs(" -", fp);
	for (uint32_t f = 1; f <= RUF_FLAGS_ALL; f <<= 1)
		if (flags & f)
			fprintf(fp, " %s", ruf_flag_name(f));
}

void
cli_flags_json(FILE *fp, uint32_t flags)
{
	int k = 0;

	for (uint32_t f = 1; f <= RUF_FLAGS_ALL; f <<= 1)
		if (flags & f)
			fprintf(fp, "%s\"%s\"", k++ ? ", " : "", ruf_flag_name(f));
}

void
cli_attachments_json(FILE *fp, const struct ruf_opened *o)
{
	char hash[65];

	fputc('[', fp);
	for (size_t i = 0; i < o->n_attachments; i++) {
		ruf_hex(o->attachments[i].hash, 32, hash);
		fprintf(fp, "%s{\"name\": ", i ? ", " : "");
		cli_json_str(fp, o->attachments[i].name);
		fprintf(fp, ", \"size\": %" PRIu64 ", \"blake2b\": \"%s\", \"saved_path\": ",
		        o->attachments[i].size, hash);
		if (o->attachments[i].saved_path)
			cli_json_str(fp, o->attachments[i].saved_path);
		else
			fputs("null", fp);
		fputc('}', fp);
	}
	fputc(']', fp);
}

int
cli_copy_file(const char *src, const char *dst, size_t max, unsigned mode)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = ruf_file_read(src, max, &buf, &len)) != 0) {
		cli_fail(1, "%s: %s", src, ruf_strerror(rc));
		return rc;
	}
	rc = cli_write_file(dst, buf, len, mode, true);
	free(buf);
	return rc;
}

void
cli_json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", fp);
		else if (*p < 0x20)
			fprintf(fp, "\\u%04x", *p);
		else
			fputc(*p, fp);
	}
	fputc('"', fp);
}

int
cli_keystore_open(const char *path, const struct cli_pass *pp, ruf_keystore **out)
{
	uint8_t *buf;
	size_t len, passlen = 0;
	char *pass = NULL;
	int rc;

	*out = NULL;
	if ((rc = ruf_file_read(path, 1u << 20, &buf, &len)) != 0)
		return cli_fail(rc, "%s: %s", path, ruf_strerror(rc)), rc;
	if (ruf_keystore_is_protected(buf, len)) {
		char prompt[PATH_MAX + 32];
		snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", path);
		rc = ruf_passphrase_get(prompt, pp ? pp->file : NULL, "RUF_PASSPHRASE", false,
		                        &pass, &passlen);
		if (rc != 0) {
			free(buf);
			cli_fail(rc, "%s: %s (use --passphrase-file or RUF_PASSPHRASE)", path,
			         ruf_strerror(rc));
			return rc;
		}
	}
	rc = ruf_keystore_decode(buf, len, pass, passlen, out);
	if (pass != NULL)
		ruf_passphrase_free(pass, passlen);
	free(buf);
	if (rc != 0)
		cli_fail(rc, "%s: %s", path, ruf_strerror(rc));
	return rc;
}

int
cli_keystore_create(const char *path, const ruf_keystore *ks, const struct cli_pass *pp)
{
	struct ruf_kdf kdf = ruf_kdf_moderate();
	char *pass = NULL;
	size_t passlen = 0;
	int rc;

	if (pp != NULL && pp->kdf != NULL && ruf_kdf_parse(pp->kdf, &kdf) != 0)
		return cli_fail(RUF_E_INVAL, "--kdf: expected interactive, moderate or sensitive"),
		       RUF_E_INVAL;
	if (pp == NULL || !pp->none) {
		char prompt[PATH_MAX + 48];
		snprintf(prompt, sizeof(prompt), "New passphrase for %s: ", path);
		rc = ruf_passphrase_get(prompt, pp ? pp->new_file : NULL, "RUF_NEW_PASSPHRASE",
		                        true, &pass, &passlen);
		if (rc != 0) {
			cli_fail(rc,
			         "%s: %s (use --new-passphrase-file, RUF_NEW_PASSPHRASE, or "
			         "--no-passphrase for an unprotected key)",
			         path, ruf_strerror(rc));
			return rc;
		}
	}
	rc = ruf_keystore_save(ks, path, pass, passlen, &kdf, true);
	if (pass != NULL)
		ruf_passphrase_free(pass, passlen);
	if (rc != 0)
		cli_fail(rc, "%s: %s", path, ruf_strerror(rc));
	return rc;
}

const char *
cli_home(const char *opt)
{
	static char buf[PATH_MAX];
	const char *h;

	if (opt != NULL)
		return opt;
	if ((h = getenv("RUF_HOME")) != NULL && *h != '\0')
		return h;
	if ((h = getenv("HOME")) == NULL || *h == '\0')
		h = "/";
	cli_path(buf, sizeof(buf), "%s/.ruf", h);
	return buf;
}

int
cli_identity_load(const char *home, bool want_keys, const struct cli_pass *pp,
                  struct cli_identity *id)
{
	char path[PATH_MAX];
	uint64_t now = ruf_now();
	int rc;

	memset(id, 0, sizeof(*id));
	cli_path(id->home, sizeof(id->home), "%s", home);

	cli_path(path, sizeof(path), "%s/root.cert", home);
	if ((rc = ruf_cert_load(path, &id->root)) != 0) {
		cli_fail(rc, "%s: %s%s", path, ruf_strerror(rc),
		         rc == RUF_E_NOTFOUND ? " (is this identity enrolled? see 'ruf enroll')"
		                              : "");
		goto fail;
	}
	if ((rc = ruf_cert_check_role(id->root, RUF_ROLE_ROOT)) != 0 ||
	    (rc = ruf_cert_verify(id->root, id->root, now)) != 0) {
		cli_fail(rc, "%s: pinned root: %s", path, ruf_strerror(rc));
		goto fail;
	}
	cli_path(path, sizeof(path), "%s/cert", home);
	if ((rc = ruf_cert_load(path, &id->cert)) != 0 ||
	    (rc = ruf_cert_verify(id->cert, id->root, now)) != 0) {
		cli_fail(rc, "%s: %s", path, ruf_strerror(rc));
		goto fail;
	}
	cli_path(path, sizeof(path), "%s/directory", home);
	if ((rc = ruf_directory_load(path, id->root, now, &id->dir)) != 0) {
		cli_fail(rc, "%s: %s", path, ruf_strerror(rc));
		goto fail;
	}
	if (ruf_directory_is_revoked(id->dir, id->cert->serial)) {
		rc = RUF_E_CERT_REVOKED;
		cli_fail(rc, "this identity (serial %llu) has been revoked by HQ",
		         (unsigned long long)id->cert->serial);
		goto fail;
	}
	if (!want_keys)
		return 0;
	cli_path(path, sizeof(path), "%s/keystore", home);
	if ((rc = cli_keystore_open(path, pp, &id->ks)) != 0)
		goto fail;
	{
		const struct ruf_key *s =
		    ruf_keystore_find(id->ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0);
		const struct ruf_key *k = ruf_keystore_find(id->ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
		if (s == NULL || k == NULL ||
		    sodium_memcmp(s->pk, id->cert->sign_pk, RUF_SIGN_PK_BYTES) != 0 ||
		    sodium_memcmp(k->pk, id->cert->kx_pk, RUF_KX_PK_BYTES) != 0) {
			rc = RUF_E_NO_KEY;
			cli_fail(rc, "%s: keys do not match the certificate in %s/cert", path,
			         home);
			goto fail;
		}
	}
	return 0;
fail:
	cli_identity_free(id);
	return rc;
}

void
cli_identity_free(struct cli_identity *id)
{
	ruf_cert_free(id->root);
	ruf_cert_free(id->cert);
	ruf_directory_free(id->dir);
	ruf_keystore_free(id->ks);
	id->root = id->cert = NULL;
	id->dir = NULL;
	id->ks = NULL;
}
