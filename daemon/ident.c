/*
 * ident.c - the files rufd's identity is made of: root certificate, server
 * certificate and keystore, signed directory. Loaded at start and on SIGHUP.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "rufd.h"
#include "util.h"

void
rufd_ident_free(struct rufd_ident *id)
{
	if (!id)
		return;
	ruf_cert_free(id->root);
	ruf_cert_free(id->server);
	ruf_keystore_free(id->ks);
	ruf_directory_free(id->dir);
	free(id);
}

struct rufd_ident *
rufd_ident_ref(struct rufd_ident *id)
{
	id->refs++;
	return id;
}

void
rufd_ident_unref(struct rufd_ident *id)
{
	if (id && --id->refs == 0)
		rufd_ident_free(id);
}

/* The directory must name our Noise key, as the current or the next one. */
static int
check_directory_key(const struct rufd_ident *id, const ruf_directory *dir)
{
	if (sodium_memcmp(dir->hq.noise_pk, id->kx->pk, RUF_KX_PK_BYTES) == 0)
		return 0;
	if (dir->hq.has_next &&
	    sodium_memcmp(dir->hq.next_noise_pk, id->kx->pk, RUF_KX_PK_BYTES) == 0)
		return 0;
	return RUF_E_INVAL;
}

int
rufd_ident_replace_directory(struct rufd_ident *id, ruf_directory *dir, const char *what,
                             ruf_diag *d)
{
	if (check_directory_key(id, dir) != 0) {
		ruf_diag_set(d, "%s names another server key than this server's", what);
		ruf_directory_free(dir);
		return RUF_E_INVAL;
	}
	ruf_directory_free(id->dir);
	id->dir = dir;
	return 0;
}

int
rufd_ident_load(const struct rufd_config *cfg, struct rufd_ident **out, ruf_diag *d)
{
	struct rufd_ident *id;
	uint64_t now = ruf_now();
	int rc;

	*out = NULL;
	if (!(id = calloc(1, sizeof(*id))))
		return RUF_E_NOMEM;
	if ((rc = ruf_cert_load(cfg->root_cert, &id->root)) != 0 ||
	    (rc = ruf_cert_verify(id->root, id->root, now)) != 0 ||
	    (rc = ruf_cert_check_role(id->root, RUF_ROLE_ROOT)) != 0) {
		ruf_diag_set(d, "root_cert %s: %s", cfg->root_cert, ruf_strerror(rc));
		goto fail;
	}
	if ((rc = ruf_cert_load(cfg->server_cert, &id->server)) != 0 ||
	    (rc = ruf_cert_verify(id->server, id->root, now)) != 0 ||
	    (rc = ruf_cert_check_role(id->server, RUF_ROLE_SERVER)) != 0) {
		ruf_diag_set(d, "server_cert %s: %s", cfg->server_cert, ruf_strerror(rc));
		goto fail;
	}
	/* The daemon's key is unprotected by design (systemd LoadCredential). */
	if ((rc = ruf_keystore_load(cfg->server_key, NULL, 0, &id->ks)) != 0) {
		ruf_diag_set(d, "server_key %s: %s", cfg->server_key, ruf_strerror(rc));
		goto fail;
	}
	id->kx = ruf_keystore_find(id->ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
	id->sign = ruf_keystore_find(id->ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0);
	if (!id->kx || !id->sign) {
		rc = RUF_E_NO_KEY;
		ruf_diag_set(d, "server_key %s: no '%s' or '%s' key", cfg->server_key,
		             RUF_KEYNAME_KX, RUF_KEYNAME_SIGN);
		goto fail;
	}
	if (sodium_memcmp(id->kx->pk, id->server->kx_pk, RUF_KX_PK_BYTES) != 0 ||
	    sodium_memcmp(id->sign->pk, id->server->sign_pk, RUF_SIGN_PK_BYTES) != 0) {
		rc = RUF_E_INVAL;
		ruf_diag_set(d, "server_key %s does not hold the keys of server_cert %s",
		             cfg->server_key, cfg->server_cert);
		goto fail;
	}
	if ((rc = ruf_directory_load(cfg->directory, id->root, now, &id->dir)) != 0) {
		ruf_diag_set(d, "directory %s: %s", cfg->directory, ruf_strerror(rc));
		goto fail;
	}
	if (check_directory_key(id, id->dir) != 0) {
		rc = RUF_E_INVAL;
		ruf_diag_set(d, "directory %s names another server key than server_cert %s",
		             cfg->directory, cfg->server_cert);
		goto fail;
	}
	id->refs = 1;
	*out = id;
	return 0;
fail:
	rufd_ident_free(id);
	return rc;
}
