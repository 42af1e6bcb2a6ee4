/*
 * ruf_libclient.c - the integration tests' second client: the same
 * operations as ruf_testclient, but through lib/client.h (what ruf uses),
 * so the tests show rufd and the client library agree.
 *
 *   ruf_libclient -i IDDIR -p PASSFILE -D DIRECTORY -s HOST:PORT submit FILE
 *   ruf_libclient ... [-n N] [-o DIR] subscribe QUEUE...
 *
 * Exit: 0 ok, 1 error (the RUF_E_* name printed), 6 timeout.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "client.h"
#include "directory.h"
#include "keystore.h"
#include "util.h"

const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0"; /* a short-lived tool that exits from anywhere */
}

static int
fail(int rc, const char *what, const ruf_diag *d)
{
	printf("error %s %s: %s\n", ruf_errname(rc), what, d ? d->msg : "");
	return rc == RUF_E_NET_TIMEOUT ? 6 : 1;
}

int
main(int argc, char *argv[])
{
	const char *id = NULL, *passfile = NULL, *dirpath = NULL, *server = NULL, *outdir = NULL;
	long limit = 1;
	char path[1024], host[64], *pass = NULL, *colon;
	size_t passlen = 0, certlen = 0;
	uint8_t *certbuf = NULL;
	ruf_cert *root = NULL;
	ruf_directory *dir = NULL;
	ruf_keystore *ks = NULL;
	const struct ruf_key *kx;
	struct ruf_client_identity ident = {0};
	ruf_client *c = NULL;
	ruf_diag d = {{0}};
	int opt, rc;

	while ((opt = getopt(argc, argv, "i:p:D:s:o:n:")) != -1) {
		switch (opt) {
		case 'i':
			id = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'D':
			dirpath = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'n':
			limit = atol(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!id || !passfile || !dirpath || !server || optind >= argc ||
	    strlen(server) >= sizeof(host) || !(colon = strrchr(server, ':')))
		return 2;
	if (sodium_init() < 0)
		return 1;
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	snprintf(path, sizeof(path), "%s/cert", id);
	if ((rc = ruf_file_read(path, RUF_CERT_MAX, &certbuf, &certlen)) != 0)
		return fail(rc, path, NULL);
	snprintf(path, sizeof(path), "%s/root.cert", id);
	if ((rc = ruf_cert_load(path, &root)) != 0)
		return fail(rc, path, NULL);
	if ((rc = ruf_directory_load(dirpath, root, ruf_now(), &dir)) != 0)
		return fail(rc, dirpath, NULL);
	if ((rc = ruf_passphrase_get("", passfile, NULL, false, &pass, &passlen)) != 0)
		return fail(rc, "passphrase", NULL);
	snprintf(path, sizeof(path), "%s/keystore", id);
	if ((rc = ruf_keystore_load(path, pass, passlen, &ks)) != 0)
		return fail(rc, path, NULL);
	ruf_passphrase_free(pass, passlen);
	if (!(kx = ruf_keystore_find(ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0)))
		return fail(RUF_E_NO_KEY, "kx", NULL);
	ident.cert = certbuf;
	ident.cert_len = certlen;
	ident.kx_sk = kx->sk;
	ident.root = root;
	ident.directory = dir;
	if ((rc = ruf_client_connect(host, colon + 1, &ident, NULL, &c, &d)) != 0)
		return fail(rc, "connect", &d);

	if (strcmp(argv[optind], "submit") == 0 && optind + 1 < argc) {
		struct ruf_client_submit_result res;
		rc = ruf_client_submit_path(c, argv[optind + 1], NULL, &res, &d);
		if (rc != 0)
			return fail(rc, "submit", &d);
		printf("receipt store_seq=%llu queues=",
		       (unsigned long long)res.info.body.store_seq);
		for (size_t i = 0; i < res.info.body.n_queues; i++)
			printf("%s%s", i ? "," : "", res.info.body.queues[i]);
		printf(" resumed_at=%llu\n", (unsigned long long)res.resumed_at);
		ruf_client_submit_result_free(&res);
		ruf_client_close(c);
		return 0;
	}
	if (strcmp(argv[optind], "subscribe") == 0 && optind + 1 < argc) {
		const char *const *queues = (const char *const *)&argv[optind + 1];
		struct ruf_client_sink sink = {.fd = -1, .max_len = 1u << 30};
		if ((rc = ruf_client_subscribe(c, queues, (size_t)(argc - optind - 1), 4, &d)) != 0)
			return fail(rc, "subscribe", &d);
		for (long got = 0; got < limit; got++) {
			struct ruf_client_delivery del;
			char hex[33];
			memset(&del, 0, sizeof(del));
			if ((rc = ruf_client_next_delivery(c, 10000, &sink, &del, &d)) != 0)
				return fail(rc, "next_delivery", &d);
			ruf_hex(del.message_id, 16, hex);
			printf("deliver queue=%s seq=%llu id=%s len=%llu\n", del.queue,
			       (unsigned long long)del.seq, hex, (unsigned long long)del.total_len);
			if (outdir) {
				snprintf(path, sizeof(path), "%s/lib-%s-%llu.env", outdir,
				         del.queue, (unsigned long long)del.seq);
				if (ruf_file_write_atomic(path, del.data, del.total_len, 0600,
				                          false) != 0)
					return fail(RUF_E_IO, path, NULL);
			}
			if ((rc = ruf_client_ack(c, del.queue, del.seq, &d)) != 0)
				return fail(rc, "ack", &d);
			free(del.data);
		}
		ruf_client_close(c);
		return 0;
	}
	return 2;
}
