/*
 * cli_seal.c - seal a validated report with an identity (seal_common.h):
 * the logic `ruf seal` had, shared with the outbox's compose commands.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal_common.h"
#include "util.h"

/* Takes the next per-device sequence number; it is durable before use, so never reused. */
static int
next_sequence(const char *home, uint64_t *seq)
{
	char path[PATH_MAX], buf[32];
	unsigned long long v;
	uint8_t *text;
	size_t len;
	char *end;
	int rc, n;

	cli_path(path, sizeof(path), "%s/sequence", home);
	if ((rc = ruf_file_read(path, 64, &text, &len)) != 0)
		return cli_fail(rc, "%s: %s", path, ruf_strerror(rc)), rc;
	errno = 0;
	v = strtoull((char *)text, &end, 10);
	rc = errno != 0 || v == 0 || (*end != '\n' && *end != '\0') ? RUF_E_FORMAT : 0;
	free(text);
	if (rc != 0)
		return cli_fail(rc, "%s: damaged", path), rc;
	n = snprintf(buf, sizeof(buf), "%llu\n", v + 1);
	if ((rc = cli_write_file(path, buf, (size_t)n, 0600, false)) != 0)
		return rc;
	*seq = v;
	return 0;
}

int
cli_seal_report(struct cli_identity *id, const struct ruf_report_input *rin, const char *what,
                int fd, struct cli_sealed *out, uint8_t *content_key, const uint8_t *reuse_msgid)
{
	struct ruf_route_header rh;
	struct ruf_env_header *hdr = &out->hdr;
	struct ruf_seal_recipient rcpt[RUF_ROUTE_MAX_QUEUES];
	struct ruf_seal_attachment *att = NULL;
	uint8_t *report = NULL;
	size_t rlen;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ruf_report_route_header(rin->report, &rh)) != 0) {
		cli_fail(1, "%s: %s", what, ruf_strerror(rc));
		return rc;
	}
	if (rh.kind == RUF_KIND_REPLY ? id->cert->role != RUF_ROLE_DESK
	                              : id->cert->role != RUF_ROLE_DEVICE) {
		cli_fail(1, "a %s cannot send a %s", ruf_role_name(id->cert->role),
		         ruf_kind_name(rh.kind));
		return RUF_E_CERT_ROLE;
	}
	if (rh.kind != RUF_KIND_REPLY && !ruf_cert_permits_situation(id->cert, rh.situation)) {
		cli_fail(1, "%s: this device is not enrolled to report on situation '%s'", what,
		         rh.situation);
		return RUF_E_CERT_PERMISSION;
	}
	if (rh.kind != RUF_KIND_REPLY && id->cert->country && id->cert->country[0] &&
	    strcmp(id->cert->country, rh.country) != 0) {
		cli_fail(1, "%s: country '%s' differs from this device's country '%s'", what,
		         rh.country, id->cert->country);
		return RUF_E_CERT_PERMISSION;
	}
	if ((rc = ruf_route_eval(id->dir->policy, &rh, &out->qs)) != 0) {
		cli_fail(1, "%s: routing: %s", what, ruf_strerror(rc));
		return rc;
	}
	for (size_t i = 0; i < out->qs.n; i++) {
		const struct ruf_dir_queue *q = ruf_directory_queue(id->dir, out->qs.names[i]);
		if (q == NULL) {
			cli_fail(1, "the directory has no key for queue %s", out->qs.names[i]);
			return RUF_E_DIR_NO_QUEUE;
		}
		rcpt[i] = (struct ruf_seal_recipient){q->name, q->epoch, q->pk};
	}
	if (rin->n_attachments > 0) {
		if ((att = calloc(rin->n_attachments, sizeof(*att))) == NULL)
			return RUF_E_NOMEM;
		for (size_t i = 0; i < rin->n_attachments; i++)
			att[i] = (struct ruf_seal_attachment){rin->attachments[i].name,
			                                      rin->attachments[i].media_type,
			                                      rin->attachments[i].path};
	}
	if ((rc = ruf_report_encode(rin->report, &report, &rlen)) != 0) {
		cli_fail(1, "encoding the report: %s", ruf_strerror(rc));
		goto out;
	}
	if (reuse_msgid != NULL)
		memcpy(hdr->message_id, reuse_msgid, RUF_MSGID_BYTES);
	hdr->created = ruf_now();
	hdr->device_serial = id->cert->serial;
	hdr->kind = rh.kind;
	hdr->risk = rh.risk;
	hdr->flags = rh.flags;
	hdr->directory_version = id->dir->version;
	snprintf(hdr->situation, sizeof(hdr->situation), "%s", rh.situation);
	snprintf(hdr->country, sizeof(hdr->country), "%s", rh.country);
	snprintf(hdr->region, sizeof(hdr->region), "%s", rh.region);
	if ((rc = next_sequence(id->home, &hdr->sequence)) != 0)
		goto out;
	{
		const struct ruf_key *sk = ruf_keystore_find(id->ks, RUF_KEY_SIGN, "sign", 0);
		struct ruf_seal_params p = {
		    .hdr = hdr,
		    .report = report,
		    .report_len = rlen,
		    .attachments = att,
		    .n_attachments = rin->n_attachments,
		    .recipients = rcpt,
		    .n_recipients = out->qs.n,
		    .device_cert = id->cert->raw,
		    .device_cert_len = id->cert->rawlen,
		    .sign_sk = sk->sk,
		};
		errno = 0;
		if ((rc = ruf_envelope_seal(&p, fd, out->msgid, content_key)) != 0) {
			if (errno == ENOSPC)
				cli_fail(1, "sealing: disk full: nothing was written");
			else
				cli_fail(1, "sealing: %s", ruf_strerror(rc));
			goto out;
		}
		memcpy(hdr->message_id, out->msgid, RUF_MSGID_BYTES);
	}
out:
	free(att);
	free(report);
	return rc;
}
