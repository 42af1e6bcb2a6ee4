/*
 * bench_verify.c - the machine's Ed25519 verify capacity, the per-report
 * crypto floor of rufd (docs/BENCHMARKS.md).
 *
 *   bench_verify [SECONDS [ENVELOPE ROOT_CERT DIRECTORY]]    default 1 s per series
 *
 * crypto_sign_verify_detached on a 1 KiB message in a loop, on 1 thread and
 * on one thread per online core; with ENVELOPE, also ruf_envelope_verify of
 * that file (what rufd runs per upload: Ed25519ph over the envelope, the
 * sender certificate chain, the header checks) on one thread.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "directory.h"
#include "envelope.h"
#include "util.h"

static double g_secs = 1.0;
static unsigned char g_pk[crypto_sign_PUBLICKEYBYTES], g_sig[crypto_sign_BYTES], g_msg[1024];

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
loop(void *arg)
{
	double *rate = arg, t0 = now_s(), t;
	long n = 0;
	do {
		for (int i = 0; i < 64; i++)
			if (crypto_sign_verify_detached(g_sig, g_msg, sizeof(g_msg), g_pk) != 0)
				abort();
		n += 64;
	} while ((t = now_s()) - t0 < g_secs);
	*rate = (double)n / (t - t0);
	return NULL;
}

int
main(int argc, char *argv[])
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double r1, rates[256], sum = 0;
	pthread_t th[256];

	if (sodium_init() < 0)
		return 1;
	if (argc > 1)
		g_secs = atof(argv[1]);
	if (ncpu < 1 || ncpu > 256)
		ncpu = 1;
	crypto_sign_keypair(g_pk, sk);
	randombytes_buf(g_msg, sizeof(g_msg));
	crypto_sign_detached(g_sig, NULL, g_msg, sizeof(g_msg), sk);
	sodium_memzero(sk, sizeof(sk));

	loop(&r1);
	for (long i = 0; i < ncpu; i++)
		pthread_create(&th[i], NULL, loop, &rates[i]);
	for (long i = 0; i < ncpu; i++) {
		pthread_join(th[i], NULL);
		sum += rates[i];
	}
	printf("verify ed25519_1k_per_s_1core=%.0f us=%.1f cores=%ld ed25519_1k_per_s_all=%.0f\n",
	       r1, 1e6 / r1, ncpu, sum);

	if (argc > 4) {
		/* ENVELOPE ROOT_CERT DIRECTORY: rufd's full per-upload verification. */
		ruf_cert *root = NULL;
		ruf_directory *dir = NULL;
		int fd, rc;
		long n = 0;
		double t0, t;
		if ((rc = ruf_cert_load(argv[3], &root)) != 0 ||
		    (rc = ruf_directory_load(argv[4], root, ruf_now(), &dir)) != 0) {
			fprintf(stderr, "bench_verify: %s\n", ruf_errname(rc));
			return 1;
		}
		if ((fd = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0) {
			perror(argv[2]);
			return 1;
		}
		t0 = now_s();
		do {
			struct ruf_env_info *info = NULL;
			if ((rc = ruf_envelope_verify(fd, root, dir, ruf_now(), &info)) != 0) {
				fprintf(stderr, "bench_verify: envelope: %s\n", ruf_errname(rc));
				return 1;
			}
			ruf_env_info_free(info);
			n++;
		} while ((t = now_s()) - t0 < g_secs);
		printf("verify envelope_verify_per_s_1core=%.0f us=%.1f\n", (double)n / (t - t0),
		       (t - t0) / (double)n * 1e6);
		close(fd);
		ruf_directory_free(dir);
		ruf_cert_free(root);
	}
	return 0;
}
