/*
 * bench_seal.c - envelope sealing and opening throughput and memory.
 *
 *   bench_seal [MIB [DIR [random|zero]]]
 *
 * Creates a MIB MiB file (default 1024) in DIR (default /var/tmp) filled
 * with pseudo-random bytes (incompressible, like photos and video; "zero"
 * for the opposite case), then measures, each phase in its own child
 * process so its peak RSS (getrusage ru_maxrss) is its own:
 *   - raw crypto_aead_xchacha20poly1305_ietf over the file in 64 KiB chunks,
 *   - raw crypto_secretstream_xchacha20poly1305 push over the same chunks,
 *   - ruf_envelope_seal of a report with the file as attachment,
 *   - ruf_envelope_verify (signature only, what rufd does),
 *   - ruf_envelope_open checking hashes only, and saving the attachment.
 * The raw phases read the file the same way the envelope does, so the
 * difference is the envelope's own cost (zstd, BLAKE2b, two passes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../tests/fuzz/envelope_fixture.h"
#include "envelope.h"
#include "err.h"
#include "util.h"

#define CHUNK 65536

static struct fx F;
static char data_path[512], env_path[512], out_dir[512];
static uint64_t data_len;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
make_data(const char *mode)
{
	uint8_t *buf = malloc(1 << 20), seed[randombytes_SEEDBYTES] = {7};
	int fd = open(data_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd == -1 || buf == NULL)
		return -1;
	for (uint64_t off = 0; off < data_len && rc == 0; off += 1 << 20) {
		if (strcmp(mode, "zero") == 0) {
			memset(buf, 0, 1 << 20);
		} else {
			seed[1] = (uint8_t)(off >> 20);
			seed[2] = (uint8_t)(off >> 28);
			randombytes_buf_deterministic(buf, 1 << 20, seed);
		}
		rc = ruf_write_all(fd, buf, 1 << 20);
	}
	free(buf);
	if (fsync(fd) != 0)
		rc = -1;
	close(fd);
	return rc;
}

static int
phase_aead(void)
{
	uint8_t key[32], nonce[24] = {0}, *in = malloc(CHUNK), *out = malloc(CHUNK + 16);
	int fd = open(data_path, O_RDONLY | O_CLOEXEC);

	randombytes_buf(key, sizeof(key));
	for (uint64_t off = 0; off < data_len; off += CHUNK) {
		if (ruf_pread_all(fd, in, CHUNK, off) != 0)
			return 1;
		sodium_increment(nonce, sizeof(nonce));
		crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, in, CHUNK, NULL, 0, NULL,
		                                           nonce, key);
	}
	close(fd);
	return 0;
}

static int
phase_secretstream(void)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t key[32], hdr[24], *in = malloc(CHUNK), *out = malloc(CHUNK + 17);
	int fd = open(data_path, O_RDONLY | O_CLOEXEC);

	crypto_secretstream_xchacha20poly1305_keygen(key);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
	for (uint64_t off = 0; off < data_len; off += CHUNK) {
		if (ruf_pread_all(fd, in, CHUNK, off) != 0)
			return 1;
		crypto_secretstream_xchacha20poly1305_push(&st, out, NULL, in, CHUNK, NULL, 0, 0);
	}
	close(fd);
	return 0;
}

static int
phase_seal(void)
{
	static const uint8_t report[] = "benchmark report";
	struct ruf_env_header h = fx_header();
	struct ruf_seal_attachment a = {"data.bin", "application/octet-stream", data_path};
	struct ruf_seal_params p = fx_params(&F, &h, report, sizeof(report) - 1, &a, 1);
	uint8_t msgid[RUF_MSGID_BYTES];
	int fd = open(env_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc;

	if (fd == -1)
		return 1;
	rc = ruf_envelope_seal(&p, fd, msgid, NULL);
	if (rc == 0 && fsync(fd) != 0)
		rc = RUF_E_IO;
	close(fd);
	if (rc != 0)
		fprintf(stderr, "seal: %s\n", ruf_strerror(rc));
	return rc != 0;
}

static int
phase_verify(void)
{
	int fd = open(env_path, O_RDONLY | O_CLOEXEC), rc;

	rc = ruf_envelope_verify(fd, F.root, NULL, FX_NOW, NULL);
	close(fd);
	if (rc != 0)
		fprintf(stderr, "verify: %s\n", ruf_strerror(rc));
	return rc != 0;
}

static int
open_common(const char *dir)
{
	struct ruf_open_ctx c = {.root = F.root, .ks = F.ks, .now = FX_NOW, .attach_dir = dir};
	struct ruf_opened *o = NULL;
	int fd = open(env_path, O_RDONLY | O_CLOEXEC), rc;

	rc = ruf_envelope_open(fd, &c, &o);
	close(fd);
	if (rc != 0)
		fprintf(stderr, "open: %s\n", ruf_strerror(rc));
	else if (o->n_attachments != 1 || o->attachments[0].size != data_len)
		rc = RUF_E_INVAL;
	if (rc == 0 && dir != NULL)
		unlink(o->attachments[0].saved_path);
	ruf_opened_free(o);
	return rc != 0;
}

static int
phase_open(void)
{
	return open_common(NULL);
}

static int
phase_open_save(void)
{
	return open_common(out_dir);
}

static void
run(const char *name, int (*fn)(void), uint64_t bytes)
{
	struct rusage ru;
	double t0 = now_s(), dt;
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == 0)
		_exit(fn());
	if (pid == -1 || wait4(pid, &status, 0, &ru) != pid) {
		perror("fork/wait");
		exit(1);
	}
	dt = now_s() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s failed\n", name);
		exit(1);
	}
	printf("| %-28s | %8.2f | %9.1f | %12.1f |\n", name, dt,
	       (double)bytes / (1024.0 * 1024.0) / dt, (double)ru.ru_maxrss / 1024.0);
}

int
main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	const char *dir = argc > 2 ? argv[2] : "/var/tmp";
	const char *mode = argc > 3 ? argv[3] : "random";
	struct stat st;

	if (mib == 0 || fx_init(&F) != 0)
		return 1;
	data_len = mib << 20;
	snprintf(data_path, sizeof(data_path), "%s/ruf-bench-%d.data", dir, (int)getpid());
	snprintf(env_path, sizeof(env_path), "%s/ruf-bench-%d.env", dir, (int)getpid());
	snprintf(out_dir, sizeof(out_dir), "%s/ruf-bench-%d.out", dir, (int)getpid());
	if (make_data(mode) != 0 || mkdir(out_dir, 0700) != 0) {
		perror("setup");
		return 1;
	}
	printf("attachment: %llu MiB (%s), files in %s\n\n", (unsigned long long)mib, mode, dir);
	printf("| %-28s | %8s | %9s | %12s |\n", "phase", "seconds", "MiB/s", "peak RSS MiB");
	printf("|------------------------------|----------|-----------|--------------|\n");
	run("raw xchacha20poly1305 (aead)", phase_aead, data_len);
	run("raw secretstream push", phase_secretstream, data_len);
	run("ruf_envelope_seal", phase_seal, data_len);
	run("ruf_envelope_verify", phase_verify, data_len);
	run("ruf_envelope_open (hashes)", phase_open, data_len);
	run("ruf_envelope_open (save)", phase_open_save, data_len);
	if (stat(env_path, &st) == 0)
		printf("\nenvelope: %llu bytes (%.4f%% over the attachment)\n",
		       (unsigned long long)st.st_size,
		       100.0 * ((double)st.st_size - (double)data_len) / (double)data_len);
	unlink(data_path);
	unlink(env_path);
	rmdir(out_dir);
	fx_free(&F);
	return 0;
}
