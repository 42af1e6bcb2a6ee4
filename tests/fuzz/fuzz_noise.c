/*
 * fuzz_noise.c - the Noise IK message parsers under arbitrary input.
 *
 * Three readers see every input:
 *  - a responder with a fixed static key reads the input as message 1;
 *  - an initiator that has sent a fixed message 1 reads it as message 2;
 *  - if the input starts with the valid message 1 built at start-up, the
 *    responder completes the handshake and the rest of the input is read as
 *    transport frames (2-byte big-endian length, then a Noise message), as
 *    rufd will read them.
 * All keys, including the ephemerals, are fixed so that runs are
 * deterministic. With RUF_WRITE_CORPUS=dir the seed corpus is written there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "util.h"

static const uint8_t prologue[] = "ruf/1";
#define PROLOGUE_LEN (sizeof prologue - 1)

static uint8_t init_sk[32], init_pk[32], init_e[32];
static uint8_t resp_sk[32], resp_pk[32], resp_e[32];
static uint8_t msg1[128];
static size_t msg1_len;

static void
fixed_key(uint8_t sk[32], uint8_t pk[32], uint8_t tag)
{
	for (int i = 0; i < 32; i++)
		sk[i] = (uint8_t)(tag + 13 * i);
	if (pk != NULL)
		crypto_scalarmult_base(pk, sk);
}

static void
write_corpus(const char *dir)
{
	ruf_noise_handshake ini, res;
	ruf_noise_cipher is, ir, rs, rr;
	uint8_t m2[128], p[64], buf[512];
	size_t m2len, plen, n, off;
	char path[4096];

	/* Seed 1: message 1 alone. */
	snprintf(path, sizeof path, "%s/msg1", dir);
	if (ruf_file_write_atomic(path, msg1, msg1_len, 0644, false) != 0)
		abort();
	/* Seed 2: message 1 and two transport frames the responder accepts. */
	if (ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, init_sk, init_pk,
	                             resp_pk) ||
	    ruf_noise__set_ephemeral_for_tests(&ini, init_e) ||
	    ruf_noise_write_message(&ini, (const uint8_t *)"cert+time", 9, buf, sizeof buf, &n) ||
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, resp_sk, resp_pk, NULL) ||
	    ruf_noise__set_ephemeral_for_tests(&res, resp_e) ||
	    ruf_noise_read_message(&res, buf, n, p, sizeof p, &plen) ||
	    ruf_noise_write_message(&res, NULL, 0, m2, sizeof m2, &m2len) ||
	    ruf_noise_read_message(&ini, m2, m2len, p, sizeof p, &plen) ||
	    ruf_noise_handshake_split(&ini, &is, &ir) || ruf_noise_handshake_split(&res, &rs, &rr))
		abort();
	memcpy(buf, msg1, msg1_len);
	off = msg1_len;
	for (int i = 0; i < 2; i++) {
		static const char *const pl[] = {"envelope", ""};
		if (ruf_noise_cipher_encrypt(&is, NULL, 0, (const uint8_t *)pl[i], strlen(pl[i]),
		                             buf + off + 2, sizeof buf - off - 2, &n))
			abort();
		buf[off] = (uint8_t)(n >> 8);
		buf[off + 1] = (uint8_t)n;
		off += 2 + n;
	}
	snprintf(path, sizeof path, "%s/msg1_transport", dir);
	if (ruf_file_write_atomic(path, buf, off, 0644, false) != 0)
		abort();
	/* Seed 3: message 2 as the initiator of the fuzz run receives it. */
	snprintf(path, sizeof path, "%s/msg2", dir);
	if (ruf_file_write_atomic(path, m2, m2len, 0644, false) != 0)
		abort();
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ruf_noise_handshake ini;
	const char *dir;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	fixed_key(init_sk, init_pk, 1);
	fixed_key(init_e, NULL, 2);
	fixed_key(resp_sk, resp_pk, 3);
	fixed_key(resp_e, NULL, 4);
	if (ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, init_sk, init_pk,
	                             resp_pk) ||
	    ruf_noise__set_ephemeral_for_tests(&ini, init_e) ||
	    ruf_noise_write_message(&ini, (const uint8_t *)"cert+time", 9, msg1, sizeof msg1,
	                            &msg1_len))
		abort();
	ruf_noise_handshake_wipe(&ini);
	if ((dir = getenv("RUF_WRITE_CORPUS")) != NULL)
		write_corpus(dir);
	return 0;
}

/* Reads d as transport frames with rx until the input runs out. */
static void
read_frames(ruf_noise_cipher *rx, const uint8_t *d, size_t n)
{
	static uint8_t pt[RUF_NOISE_MAX_MSG];
	size_t off = 0, flen, plen;

	while (n - off >= 2) {
		flen = (size_t)d[off] << 8 | d[off + 1];
		off += 2;
		if (flen > n - off)
			return; /* truncated frame: rufd would wait, then time out */
		if (ruf_noise_cipher_decrypt(rx, NULL, 0, d + off, flen, pt, sizeof pt, &plen) != 0)
			return; /* rufd closes the connection */
		off += flen;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static uint8_t payload[RUF_NOISE_MAX_MSG];
	ruf_noise_handshake res, ini;
	ruf_noise_cipher send, recv;
	uint8_t m[128], m2[128];
	size_t plen, mlen, m2len;
	size_t first = n;

	/* A valid message 1 prefix lets the fuzzer reach the transport. */
	if (n >= msg1_len && memcmp(d, msg1, msg1_len) == 0)
		first = msg1_len;

	if (ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, resp_sk, resp_pk, NULL) ||
	    ruf_noise__set_ephemeral_for_tests(&res, resp_e))
		abort();
	if (ruf_noise_read_message(&res, d, first, payload, sizeof payload, &plen) == 0) {
		if (ruf_noise_remote_static(&res) == NULL)
			abort();
		if (ruf_noise_write_message(&res, NULL, 0, m2, sizeof m2, &m2len) ||
		    ruf_noise_handshake_split(&res, &send, &recv))
			abort();
		read_frames(&recv, d + first, n - first);
		ruf_noise_cipher_wipe(&send);
		ruf_noise_cipher_wipe(&recv);
	}
	ruf_noise_handshake_wipe(&res);

	/* The initiator side: the whole input as message 2. */
	if (ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, init_sk, init_pk,
	                             resp_pk) ||
	    ruf_noise__set_ephemeral_for_tests(&ini, init_e) ||
	    ruf_noise_write_message(&ini, (const uint8_t *)"cert+time", 9, m, sizeof m, &mlen))
		abort();
	if (ruf_noise_read_message(&ini, d, n, payload, sizeof payload, &plen) == 0) {
		if (!ruf_noise_handshake_done(&ini) ||
		    ruf_noise_handshake_split(&ini, &send, &recv))
			abort();
		ruf_noise_cipher_wipe(&send);
		ruf_noise_cipher_wipe(&recv);
	}
	ruf_noise_handshake_wipe(&ini);
	return 0;
}
