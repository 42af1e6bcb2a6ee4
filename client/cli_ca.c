/* cli_ca.c - rufctl's administration directory: state, issuing, revocations. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "util.h"

const char *
ca_dir(const char *opt)
{
	const char *d;

	if (opt != NULL)
		return opt;
	if ((d = getenv("RUFCTL_DIR")) != NULL && *d != '\0')
		return d;
	return "./hq";
}

int
ca_state_load(const char *dir, struct ca_state *st)
{
	char path[PATH_MAX];
	unsigned long long serial, version;
	uint8_t *buf;
	size_t len;
	int rc;

	cli_path(path, sizeof(path), "%s/state", dir);
	if ((rc = ruf_file_read(path, 4096, &buf, &len)) != 0) {
		cli_fail(rc, "%s: %s (run 'rufctl init' first?)", path, ruf_strerror(rc));
		return rc;
	}
	if (sscanf((char *)buf, "ruf-ca-state 1\nnext_serial %llu\ndirectory_version %llu\n",
	           &serial, &version) != 2 ||
	    serial < 1) {
		free(buf);
		cli_fail(RUF_E_FORMAT, "%s: damaged state file", path);
		return RUF_E_FORMAT;
	}
	free(buf);
	st->next_serial = serial;
	st->directory_version = version;
	return 0;
}

int
ca_state_save(const char *dir, const struct ca_state *st)
{
	char path[PATH_MAX], buf[128];
	int n;

	cli_path(path, sizeof(path), "%s/state", dir);
	n = snprintf(buf, sizeof(buf),
	             "ruf-ca-state 1\nnext_serial %" PRIu64 "\ndirectory_version %" PRIu64 "\n",
	             st->next_serial, st->directory_version);
	return cli_write_file(path, buf, (size_t)n, 0600, false);
}

int
ca_issue(const char *dir, const ruf_keystore *root_ks, struct ruf_cert_template *t,
         ruf_keystore **ks_out, uint8_t **cert_out, size_t *cert_len)
{
	const struct ruf_key *rk = ruf_keystore_find(root_ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0);
	uint8_t sign_pk[RUF_SIGN_PK_BYTES], kx_pk[RUF_KX_PK_BYTES];
	struct ca_state st;
	char path[PATH_MAX];
	ruf_keystore *ks = NULL;
	int rc;

	*ks_out = NULL;
	*cert_out = NULL;
	if (rk == NULL)
		return cli_fail(RUF_E_NO_KEY, "root keystore holds no signing key"), RUF_E_NO_KEY;
	if ((rc = ca_state_load(dir, &st)) != 0)
		return rc;
	if ((rc = ruf_keystore_new(&ks)) != 0 ||
	    (rc = ruf_keystore_generate(ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0, sign_pk)) != 0 ||
	    (rc = ruf_keystore_generate(ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0, kx_pk)) != 0)
		goto fail;
	t->serial = st.next_serial;
	t->sign_pk = sign_pk;
	t->kx_pk = kx_pk;
	if ((rc = ruf_cert_issue(t, rk->sk, rk->pk, cert_out, cert_len)) != 0)
		goto fail;
	cli_path(path, sizeof(path), "%s/certs/%" PRIu64 ".cert", dir, t->serial);
	{
		char certs[PATH_MAX];
		cli_path(certs, sizeof(certs), "%s/certs", dir);
		if ((rc = ruf_mkdirs(certs, 0700)) != 0)
			goto fail;
	}
	if ((rc = cli_write_file(path, *cert_out, *cert_len, 0644, true)) != 0)
		goto fail_quiet;
	st.next_serial++;
	if ((rc = ca_state_save(dir, &st)) != 0)
		goto fail_quiet;
	*ks_out = ks;
	return 0;
fail:
	cli_fail(rc, "issuing a certificate for %s: %s", t->subject, ruf_strerror(rc));
fail_quiet:
	ruf_keystore_free(ks);
	free(*cert_out);
	*cert_out = NULL;
	return rc;
}

static int
cmp_revocation(const void *a, const void *b)
{
	const struct ruf_dir_revocation *x = a, *y = b;

	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	return x->revoked_at < y->revoked_at ? -1 : x->revoked_at > y->revoked_at;
}

void
ca_revoked_free(struct ruf_dir_revocation *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].reason);
	free(v);
}

/* One "SERIAL TIME [REASON]" line into *r (reason malloc'ed). */
static int
parse_revoked_line(char *line, struct ruf_dir_revocation *r)
{
	char *sp, *end;
	unsigned long long s;

	errno = 0;
	s = strtoull(line, &end, 10);
	if (errno != 0 || s == 0 || end == line || *end != ' ')
		return RUF_E_FORMAT;
	line = end + 1;
	if ((sp = strchr(line, ' ')) != NULL)
		*sp = '\0';
	if (ruf_time_parse(line, &r->revoked_at) != 0 || r->revoked_at == 0)
		return RUF_E_FORMAT;
	r->serial = s;
	r->reason = strdup(sp != NULL ? sp + 1 : "");
	return r->reason == NULL ? RUF_E_NOMEM : 0;
}

int
ca_revoked(const char *dir, struct ruf_dir_revocation **out, size_t *n)
{
	char path[PATH_MAX];
	struct ruf_dir_revocation *v = NULL;
	size_t cnt = 0, cap = 0, len;
	uint8_t *buf;
	char *line, *save = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	cli_path(path, sizeof(path), "%s/revoked", dir);
	rc = ruf_file_read(path, 16u << 20, &buf, &len);
	if (rc == RUF_E_NOTFOUND)
		return 0;
	if (rc != 0)
		return cli_fail(rc, "%s: %s", path, ruf_strerror(rc)), rc;
	for (line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (cnt == cap) {
			struct ruf_dir_revocation *nv;
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				rc = RUF_E_NOMEM;
				goto out;
			}
			v = nv;
		}
		if ((rc = parse_revoked_line(line, &v[cnt])) != 0) {
			if (rc == RUF_E_FORMAT)
				cli_fail(rc, "%s: damaged line '%s' (want SERIAL TIME [REASON])",
				         path, line);
			goto out;
		}
		cnt++;
	}
	/* Revoked twice (e.g. again with an earlier --at): the earliest time counts. */
	qsort(v, cnt, sizeof(*v), cmp_revocation);
	{
		size_t w = 0;
		for (size_t i = 0; i < cnt; i++) {
			if (w > 0 && v[w - 1].serial == v[i].serial) {
				free(v[i].reason);
				continue;
			}
			v[w++] = v[i];
		}
		cnt = w;
	}
	*out = v;
	*n = cnt;
	v = NULL;
	rc = 0;
out:
	ca_revoked_free(v, cnt);
	free(buf);
	return rc;
}
