/*
 * bench_ingest.c - load generator for rufd on lib/client.h (docs/BENCHMARKS.md).
 *
 *   bench_ingest seal -i IDDIR -p PASSFILE -D DIRECTORY -o OUTDIR -n COUNT [-b BYTES]
 *       seals COUNT ~BYTES (default 1024) reports as the device in IDDIR into
 *       OUTDIR/<message id hex>.env (sequence 1..COUNT) and prints the seal rate.
 *   bench_ingest run -s HOST:PORT -p PASSFILE -D DIRECTORY
 *       -d IDDIR=ENVDIR [-d ...]  devices and their pre-sealed envelopes
 *       -k DESKDIR=QUEUE [-k ...] desks: subscribe to QUEUE, ack every delivery
 *       [-w W] submissions in flight per device [20]
 *       [-r RATE] pace submissions at RATE per second overall [as fast as possible]
 *       [-t SECONDS] stop submitting after this long [60]
 *       [-P RUFD_PID] CPU of rufd per report from /proc/PID/stat
 *   prints one "result" line of key=value pairs (parsed by bench/peers.sh).
 *   bench_ingest idle -s HOST:PORT -p PASSFILE -D DIRECTORY -i IDDIR [-n N] [-t SECONDS]
 *       holds N authenticated connections open for SECONDS (rufd memory per
 *       idle connection), after printing "idle clients=N".
 *
 * The client library is blocking and has one submission outstanding per
 * connection (submit waits for its receipt), so W submissions in flight per
 * device are W connections (one thread each) authenticated as that device.
 * Wire bytes are counted by interposing send()/recv() (the client library's
 * only socket I/O calls): handshakes included, i.e. "from cold".
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "cert.h"
#include "client.h"
#include "directory.h"
#include "envelope.h"
#include "keystore.h"
#include "report.h"
#include "route.h"
#include "util.h"

const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0"; /* identities and envelope tables live until exit */
}

#define MAX_DEVICES 64
#define MAX_DESKS 16

/* Socket bytes (send/recv interposed below), by role of the calling thread. */
static _Atomic uint64_t g_bytes[2]; /* [0] devices, [1] desks */
static _Thread_local int t_role;

ssize_t send(int fd, const void *buf, size_t n, int flags);
ssize_t recv(int fd, void *buf, size_t n, int flags);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);

ssize_t
send(int fd, const void *buf, size_t n, int flags)
{
	ssize_t r = syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
	if (r > 0)
		atomic_fetch_add_explicit(&g_bytes[t_role], (uint64_t)r, memory_order_relaxed);
	return r;
}

ssize_t
recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t r = syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
	if (r > 0)
		atomic_fetch_add_explicit(&g_bytes[t_role], (uint64_t)r, memory_order_relaxed);
	return r;
}

/* FORTIFY may route recv() here. */
ssize_t
__recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		abort();
	return recv(fd, buf, n, flags);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, int rc, const ruf_diag *d)
{
	fprintf(stderr, "bench_ingest: %s: %s %s\n", what, ruf_errname(rc), d ? d->msg : "");
	exit(1);
}

/* An identity loaded from an identities/<name>/ directory. */
struct ident {
	uint8_t *cert;
	size_t cert_len;
	ruf_cert *parsed;
	ruf_cert *root;
	ruf_keystore *ks;
	struct ruf_client_identity cid;
};

static ruf_directory *g_dir;
static char *g_pass;
static size_t g_passlen;

static void
load_ident(const char *dir, struct ident *id)
{
	char path[1024];
	int rc;

	snprintf(path, sizeof(path), "%s/cert", dir);
	if ((rc = ruf_file_read(path, RUF_CERT_MAX, &id->cert, &id->cert_len)) != 0)
		die(path, rc, NULL);
	if ((rc = ruf_cert_load(path, &id->parsed)) != 0)
		die(path, rc, NULL);
	snprintf(path, sizeof(path), "%s/root.cert", dir);
	if ((rc = ruf_cert_load(path, &id->root)) != 0)
		die(path, rc, NULL);
	snprintf(path, sizeof(path), "%s/keystore", dir);
	if ((rc = ruf_keystore_load(path, g_pass, g_passlen, &id->ks)) != 0)
		die(path, rc, NULL);
	const struct ruf_key *kx = ruf_keystore_find(id->ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
	if (!kx)
		die("kx key", RUF_E_NO_KEY, NULL);
	id->cid.cert = id->cert;
	id->cid.cert_len = id->cert_len;
	id->cid.kx_sk = kx->sk;
	id->cid.root = id->root;
	id->cid.directory = g_dir;
}

static void
load_common(const char *passfile, const char *dirpath, const char *iddir)
{
	char path[1024];
	ruf_cert *root;
	int rc;

	if ((rc = ruf_passphrase_get("", passfile, NULL, false, &g_pass, &g_passlen)) != 0)
		die("passphrase", rc, NULL);
	snprintf(path, sizeof(path), "%s/root.cert", iddir);
	if ((rc = ruf_cert_load(path, &root)) != 0)
		die(path, rc, NULL);
	if ((rc = ruf_directory_load(dirpath, root, ruf_now(), &g_dir)) != 0)
		die(dirpath, rc, NULL);
}

/* ---- seal ---- */

static int
cmd_seal(int argc, char *argv[])
{
	const char *iddir = NULL, *passfile = NULL, *dirpath = NULL, *outdir = NULL;
	long count = 1000, bytes = 1024;
	int opt, rc;

	while ((opt = getopt(argc, argv, "i:p:D:o:n:b:")) != -1) {
		switch (opt) {
		case 'i':
			iddir = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'D':
			dirpath = optarg;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'b':
			bytes = atol(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!iddir || !passfile || !dirpath || !outdir || count < 1 || bytes < 64 || bytes > 60000)
		return 2;
	load_common(passfile, dirpath, iddir);
	struct ident id = {0};
	load_ident(iddir, &id);

	/* A low-risk sitrep on the device's first situation: one queue (itf.<situation>). */
	const char *sit = id.parsed->n_situations ? id.parsed->situations[0] : "darfur";
	char *json = malloc((size_t)bytes + 1024), *summary = malloc((size_t)bytes + 1);
	if (!json || !summary)
		die("malloc", RUF_E_NOMEM, NULL);
	/* Text that does not compress to nothing: a report is prose, not zeros. */
	for (long i = 0; i < bytes; i++)
		summary[i] = (char)('a' + (randombytes_uniform(26)));
	for (long i = 7; i < bytes; i += 8)
		summary[i] = ' ';
	summary[bytes - 110] = '\0';
	snprintf(json, (size_t)bytes + 1024,
	         "{\"kind\": \"sitrep\", \"format\": 1, \"situation\": \"%s\", \"country\": \"%s\","
	         " \"region\": \"east-africa\", \"risk\": \"low\", \"early_warning\": false,"
	         " \"escalate\": false, \"title\": \"BENCHMARK - synthetic report\","
	         " \"period_start\": \"2026-11-01\", \"period_end\": \"2026-11-07\","
	         " \"summary\": \"%s\"}",
	         sit, id.parsed->country ? id.parsed->country : "sd", summary);
	struct ruf_report_input rin = {0};
	struct ruf_route_header rh;
	struct ruf_queue_set qs;
	struct ruf_seal_recipient rcpt[RUF_ROUTE_MAX_QUEUES];
	ruf_diag d = {{0}};
	uint8_t *report;
	size_t rlen;
	if ((rc = ruf_report_from_json(json, strlen(json), ".", &d, &rin)) != 0)
		die("report json", rc, &d);
	if ((rc = ruf_report_route_header(rin.report, &rh)) != 0)
		die("route header", rc, NULL);
	if ((rc = ruf_route_eval(g_dir->policy, &rh, &qs)) != 0)
		die("route", rc, NULL);
	for (size_t i = 0; i < qs.n; i++) {
		const struct ruf_dir_queue *q = ruf_directory_queue(g_dir, qs.names[i]);
		if (!q)
			die("queue", RUF_E_DIR_NO_QUEUE, NULL);
		rcpt[i] = (struct ruf_seal_recipient){q->name, q->epoch, q->pk};
	}
	if ((rc = ruf_report_encode(rin.report, &report, &rlen)) != 0)
		die("encode", rc, NULL);
	const struct ruf_key *sk = ruf_keystore_find(id.ks, RUF_KEY_SIGN, "sign", 0);
	if (!sk)
		die("sign key", RUF_E_NO_KEY, NULL);

	struct ruf_env_header hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.created = ruf_now();
	hdr.device_serial = id.parsed->serial;
	hdr.kind = rh.kind;
	hdr.risk = rh.risk;
	hdr.flags = rh.flags;
	hdr.directory_version = g_dir->version;
	snprintf(hdr.situation, sizeof(hdr.situation), "%s", rh.situation);
	snprintf(hdr.country, sizeof(hdr.country), "%s", rh.country);
	snprintf(hdr.region, sizeof(hdr.region), "%s", rh.region);

	uint64_t total = 0;
	double t0 = now_s(), tseal = 0;
	for (long k = 0; k < count; k++) {
		char tmp[1200], path[1200], hex[2 * RUF_MSGID_BYTES + 1];
		uint8_t msgid[RUF_MSGID_BYTES];
		struct ruf_seal_params p = {
		    .hdr = &hdr,
		    .report = report,
		    .report_len = rlen,
		    .recipients = rcpt,
		    .n_recipients = qs.n,
		    .device_cert = id.cert,
		    .device_cert_len = id.cert_len,
		    .sign_sk = sk->sk,
		};
		hdr.sequence = (uint64_t)k + 1;
		memset(hdr.message_id, 0, sizeof(hdr.message_id));
		snprintf(tmp, sizeof(tmp), "%s/tmp.env", outdir);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			die(tmp, RUF_E_IO, NULL);
		double a = now_s();
		if ((rc = ruf_envelope_seal(&p, fd, msgid, NULL)) != 0)
			die("seal", rc, NULL);
		tseal += now_s() - a;
		total += (uint64_t)lseek(fd, 0, SEEK_CUR);
		close(fd);
		ruf_hex(msgid, RUF_MSGID_BYTES, hex);
		snprintf(path, sizeof(path), "%s/%s.env", outdir, hex);
		if (rename(tmp, path) != 0)
			die(path, RUF_E_IO, NULL);
	}
	double el = now_s() - t0;
	printf("seal count=%ld report_bytes=%zu envelope_bytes=%.0f seal_per_s=%.0f "
	       "seal_us=%.1f wall_s=%.2f queues=%zu\n",
	       count, rlen, (double)total / (double)count, (double)count / tseal,
	       tseal / (double)count * 1e6, el, qs.n);
	return 0;
}

/* ---- run ---- */

struct env {
	uint8_t msgid[RUF_MSGID_BYTES];
	char path[600];
	double t_submit, t_receipt;
	_Atomic(double) t_desk; /* first delivery */
};

struct device {
	struct ident id;
	struct env *envs;
	size_t n_envs;
	_Atomic size_t next;
};

struct desk {
	struct ident id;
	char queue[RUF_QUEUE_NAME_MAX + 1];
};

static struct device g_dev[MAX_DEVICES];
static size_t g_ndev;
static struct desk g_desk[MAX_DESKS];
static size_t g_ndesk;
static char g_host[256], g_port[16];
static unsigned g_w = 20;
static double g_rate, g_tlimit = 60, g_t0, g_deadline;
static _Atomic uint64_t g_paced, g_receipts, g_desk_got, g_errors, g_ready;
static _Atomic int g_go, g_submit_done;
static _Atomic(double) g_last_receipt, g_last_desk;

/* msgid -> env (open addressing; ids are random). */
static struct env **g_tab;
static size_t g_tabmask;

static uint64_t
idkey(const uint8_t *id)
{
	uint64_t k;
	memcpy(&k, id, sizeof(k));
	return k;
}

static struct env *
lookup(const uint8_t *id)
{
	for (size_t i = idkey(id) & g_tabmask;; i = (i + 1) & g_tabmask) {
		if (!g_tab[i])
			return NULL;
		if (memcmp(g_tab[i]->msgid, id, RUF_MSGID_BYTES) == 0)
			return g_tab[i];
	}
}

static void
atomic_max(_Atomic(double) *a, double v)
{
	double cur = atomic_load(a);
	while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

static void
sleep_until(double t)
{
	double d = t - now_s();
	if (d <= 0)
		return;
	struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
	nanosleep(&ts, NULL);
}

static ruf_client *
connect_as(const struct ident *id)
{
	struct ruf_client_options opt = {.io_timeout_ms = 60000};
	ruf_client *c = NULL;
	ruf_diag d = {{0}};
	int rc;
	for (int tries = 0; tries < 50; tries++) {
		if ((rc = ruf_client_connect(g_host, g_port, &id->cid, &opt, &c, &d)) == 0)
			return c;
		usleep(100000);
	}
	die("connect", rc, &d);
	return NULL;
}

static void *
submitter(void *arg)
{
	struct device *dv = arg;
	ruf_client *c = connect_as(&dv->id);
	ruf_diag d = {{0}};

	atomic_fetch_add(&g_ready, 1);
	while (!atomic_load(&g_go))
		usleep(1000);
	for (;;) {
		size_t k = atomic_fetch_add(&dv->next, 1);
		if (k >= dv->n_envs)
			break;
		struct env *e = &dv->envs[k];
		if (g_rate > 0) {
			uint64_t slot = atomic_fetch_add(&g_paced, 1);
			sleep_until(g_t0 + (double)slot / g_rate);
		}
		double a = now_s();
		if (a > g_deadline)
			break;
		int fd = open(e->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(e->path, RUF_E_IO, NULL);
		struct ruf_client_submit_result res;
		e->t_submit = a;
		int rc;
		while ((rc = ruf_client_submit(c, fd, NULL, &res, &d)) == RUF_E_WIRE_RETRY_LATER) {
			ruf_client_submit_result_free(&res);
			usleep(10000);
		}
		close(fd);
		if (rc != 0) {
			fprintf(stderr, "submit: %s %s\n", ruf_errname(rc), d.msg);
			atomic_fetch_add(&g_errors, 1);
			ruf_client_submit_result_free(&res);
			if (rc == RUF_E_NET_CLOSED || rc == RUF_E_NET_TIMEOUT)
				break;
			continue;
		}
		e->t_receipt = now_s();
		ruf_client_submit_result_free(&res);
		atomic_fetch_add(&g_receipts, 1);
		atomic_max(&g_last_receipt, e->t_receipt);
	}
	ruf_client_close(c);
	return NULL;
}

static void *
desker(void *arg)
{
	struct desk *dk = arg;
	t_role = 1;
	ruf_client *c = connect_as(&dk->id);
	ruf_diag d = {{0}};
	const char *q[1] = {dk->queue};
	struct ruf_client_sink sink = {.fd = -1, .max_len = 1u << 20};
	int rc;

	if ((rc = ruf_client_subscribe(c, q, 1, g_w > 1024 ? 1024 : g_w, &d)) != 0)
		die("subscribe", rc, &d);
	atomic_fetch_add(&g_ready, 1);
	for (;;) {
		struct ruf_client_delivery del;
		memset(&del, 0, sizeof(del));
		rc = ruf_client_next_delivery(c, 200, &sink, &del, &d);
		if (rc == RUF_E_NET_TIMEOUT) {
			/* Done once submitting ended and nothing came for a while. */
			if (atomic_load(&g_submit_done) &&
			    now_s() - atomic_load(&g_last_desk) > 2.0 &&
			    now_s() - atomic_load(&g_last_receipt) > 2.0)
				break;
			continue;
		}
		if (rc != 0)
			die("next_delivery", rc, &d);
		double t = now_s();
		struct env *e = lookup(del.message_id);
		if (e) {
			double zero = 0;
			if (atomic_compare_exchange_strong(&e->t_desk, &zero, t)) {
				atomic_fetch_add(&g_desk_got, 1);
				atomic_max(&g_last_desk, t);
			}
		}
		free(del.data);
		if ((rc = ruf_client_ack(c, del.queue, del.seq, &d)) != 0)
			die("ack", rc, &d);
	}
	ruf_client_close(c);
	return NULL;
}

static int
cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* This process's CPU seconds: the load generator shares the cores with rufd. */
static double
self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t
proc_cpu_ticks(long pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	unsigned long long ut = 0, st = 0;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

static void
load_envs(struct device *dv, const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	size_t cap = 0;
	if (!dp)
		die(dir, RUF_E_IO, NULL);
	while ((de = readdir(dp))) {
		size_t l = strlen(de->d_name);
		if (l != 2 * RUF_MSGID_BYTES + 4 || strcmp(de->d_name + l - 4, ".env") != 0)
			continue;
		if (dv->n_envs == cap) {
			cap = cap ? 2 * cap : 1024;
			dv->envs = realloc(dv->envs, cap * sizeof(*dv->envs));
			if (!dv->envs)
				die("realloc", RUF_E_NOMEM, NULL);
		}
		struct env *e = &dv->envs[dv->n_envs];
		memset(e, 0, sizeof(*e));
		size_t bl;
		if (sodium_hex2bin(e->msgid, sizeof(e->msgid), de->d_name, 2 * RUF_MSGID_BYTES,
		                   NULL, &bl, NULL) != 0 ||
		    bl != RUF_MSGID_BYTES)
			continue;
		snprintf(e->path, sizeof(e->path), "%s/%s", dir, de->d_name);
		dv->n_envs++;
	}
	closedir(dp);
}

static int
cmd_run(int argc, char *argv[])
{
	const char *passfile = NULL, *dirpath = NULL, *server = NULL;
	char *devspec[MAX_DEVICES], *deskspec[MAX_DESKS];
	long pid = 0;
	int opt;

	while ((opt = getopt(argc, argv, "s:p:D:d:k:w:r:t:P:")) != -1) {
		switch (opt) {
		case 's':
			server = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'D':
			dirpath = optarg;
			break;
		case 'd':
			if (g_ndev == MAX_DEVICES)
				return 2;
			devspec[g_ndev++] = optarg;
			break;
		case 'k':
			if (g_ndesk == MAX_DESKS)
				return 2;
			deskspec[g_ndesk++] = optarg;
			break;
		case 'w':
			g_w = (unsigned)atoi(optarg);
			break;
		case 'r':
			g_rate = atof(optarg);
			break;
		case 't':
			g_tlimit = atof(optarg);
			break;
		case 'P':
			pid = atol(optarg);
			break;
		default:
			return 2;
		}
	}
	char *colon = server ? strrchr(server, ':') : NULL;
	if (!passfile || !dirpath || !colon || g_ndev == 0 || g_w < 1 ||
	    (size_t)(colon - server) >= sizeof(g_host) || strlen(colon + 1) >= sizeof(g_port))
		return 2;
	memcpy(g_host, server, (size_t)(colon - server));
	snprintf(g_port, sizeof(g_port), "%s", colon + 1);

	size_t total = 0;
	for (size_t i = 0; i < g_ndev; i++) {
		char *eq = strchr(devspec[i], '=');
		if (!eq)
			return 2;
		*eq = '\0';
		if (i == 0)
			load_common(passfile, dirpath, devspec[0]);
		load_ident(devspec[i], &g_dev[i].id);
		load_envs(&g_dev[i], eq + 1);
		total += g_dev[i].n_envs;
	}
	for (size_t i = 0; i < g_ndesk; i++) {
		char *eq = strchr(deskspec[i], '=');
		if (!eq)
			return 2;
		*eq = '\0';
		load_ident(deskspec[i], &g_desk[i].id);
		snprintf(g_desk[i].queue, sizeof(g_desk[i].queue), "%s", eq + 1);
	}
	size_t tabsize = 1;
	while (tabsize < 2 * total + 2)
		tabsize <<= 1;
	g_tabmask = tabsize - 1;
	if (!(g_tab = calloc(tabsize, sizeof(*g_tab))))
		die("calloc", RUF_E_NOMEM, NULL);
	for (size_t i = 0; i < g_ndev; i++)
		for (size_t k = 0; k < g_dev[i].n_envs; k++) {
			struct env *e = &g_dev[i].envs[k];
			size_t j = idkey(e->msgid) & g_tabmask;
			while (g_tab[j])
				j = (j + 1) & g_tabmask;
			g_tab[j] = e;
		}

	size_t nthreads = g_ndev * g_w + g_ndesk;
	pthread_t *th = calloc(nthreads, sizeof(*th));
	if (!th)
		die("calloc", RUF_E_NOMEM, NULL);
	size_t t = 0;
	for (size_t i = 0; i < g_ndesk; i++)
		if (pthread_create(&th[t++], NULL, desker, &g_desk[i]) != 0)
			die("pthread_create", RUF_E_NOMEM, NULL);
	for (size_t i = 0; i < g_ndev; i++)
		for (unsigned w = 0; w < g_w; w++) {
			pthread_attr_t at;
			pthread_attr_init(&at);
			pthread_attr_setstacksize(&at, 256 << 10);
			if (pthread_create(&th[t++], &at, submitter, &g_dev[i]) != 0)
				die("pthread_create", RUF_E_NOMEM, NULL);
			pthread_attr_destroy(&at);
		}
	while (atomic_load(&g_ready) < nthreads)
		usleep(2000);
	/* Device bytes so far: the handshakes (connection setup "from cold"). */
	uint64_t hs_bytes = atomic_load(&g_bytes[0]), desk0 = atomic_load(&g_bytes[1]);
	size_t nconn = g_ndev * g_w;
	uint64_t cpu0 = pid ? proc_cpu_ticks(pid) : 0;
	double self0 = self_cpu_s();
	g_t0 = now_s();
	g_deadline = g_t0 + g_tlimit;
	atomic_store(&g_last_desk, g_t0);
	atomic_store(&g_last_receipt, g_t0);
	atomic_store(&g_go, 1);
	for (size_t i = g_ndesk; i < nthreads; i++)
		pthread_join(th[i], NULL);
	atomic_store(&g_submit_done, 1);
	for (size_t i = 0; i < g_ndesk; i++)
		pthread_join(th[i], NULL);
	uint64_t cpu1 = pid ? proc_cpu_ticks(pid) : 0;
	double self1 = self_cpu_s();

	/* Latencies. */
	uint64_t nrec = atomic_load(&g_receipts), ndesk = atomic_load(&g_desk_got);
	double *l1 = malloc((nrec + 1) * sizeof(double)),
	       *l2 = malloc((ndesk + 1) * sizeof(double));
	size_t n1 = 0, n2 = 0;
	if (!l1 || !l2)
		die("malloc", RUF_E_NOMEM, NULL);
	for (size_t i = 0; i < g_ndev; i++)
		for (size_t k = 0; k < g_dev[i].n_envs; k++) {
			struct env *e = &g_dev[i].envs[k];
			if (e->t_receipt > 0 && n1 <= nrec)
				l1[n1++] = (e->t_receipt - e->t_submit) * 1e3;
			double td = atomic_load(&e->t_desk);
			if (td > 0 && e->t_submit > 0 && n2 <= ndesk)
				l2[n2++] = (td - e->t_submit) * 1e3;
		}
	qsort(l1, n1, sizeof(double), cmpd);
	qsort(l2, n2, sizeof(double), cmpd);
	double el_rec = atomic_load(&g_last_receipt) - g_t0;
	double el_desk = atomic_load(&g_last_desk) - g_t0;
	uint64_t bytes = atomic_load(&g_bytes[0]) - hs_bytes;
	uint64_t dbytes = atomic_load(&g_bytes[1]) - desk0;
	long hz = sysconf(_SC_CLK_TCK);
	printf("result devices=%zu w=%u desks=%zu envelopes=%zu receipts=%" PRIu64
	       " desk_got=%" PRIu64 " errors=%" PRIu64 " ingest_per_s=%.0f desk_per_s=%.0f"
	       " receipt_p50_ms=%.2f receipt_p99_ms=%.2f desk_p50_ms=%.2f desk_p99_ms=%.2f"
	       " desk_max_ms=%.2f rufd_cpu_us_per_report=%.1f wire_bytes_per_report=%.0f"
	       " handshake_bytes=%.0f desk_bytes_per_report=%.0f client_cpu_us_per_report=%.1f"
	       " seconds=%.2f\n",
	       g_ndev, g_w, g_ndesk, total, nrec, ndesk, atomic_load(&g_errors),
	       el_rec > 0 ? (double)nrec / el_rec : 0, el_desk > 0 ? (double)ndesk / el_desk : 0,
	       pct(l1, n1, 50), pct(l1, n1, 99), pct(l2, n2, 50), pct(l2, n2, 99), pct(l2, n2, 100),
	       pid && nrec ? (double)(cpu1 - cpu0) / (double)hz * 1e6 / (double)nrec : 0,
	       nrec ? (double)bytes / (double)nrec : 0, (double)hs_bytes / (double)nconn,
	       ndesk ? (double)dbytes / (double)ndesk : 0,
	       nrec ? (self1 - self0) * 1e6 / (double)nrec : 0, el_rec);
	return atomic_load(&g_errors) ? 1 : 0;
}

/* idle: N authenticated device connections held open (rufd's memory per connection). */
static int
cmd_idle(int argc, char *argv[])
{
	const char *passfile = NULL, *dirpath = NULL, *server = NULL, *iddir = NULL;
	long n = 1000;
	double hold = 10;
	int opt;

	while ((opt = getopt(argc, argv, "s:p:D:i:n:t:")) != -1) {
		switch (opt) {
		case 's':
			server = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'D':
			dirpath = optarg;
			break;
		case 'i':
			iddir = optarg;
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 't':
			hold = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	char *colon = server ? strrchr(server, ':') : NULL;
	if (!passfile || !dirpath || !iddir || !colon || n < 1 ||
	    (size_t)(colon - server) >= sizeof(g_host) || strlen(colon + 1) >= sizeof(g_port))
		return 2;
	memcpy(g_host, server, (size_t)(colon - server));
	snprintf(g_port, sizeof(g_port), "%s", colon + 1);
	load_common(passfile, dirpath, iddir);
	struct ident id = {0};
	load_ident(iddir, &id);
	ruf_client **cs = calloc((size_t)n, sizeof(*cs));
	if (!cs)
		die("calloc", RUF_E_NOMEM, NULL);
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		ruf_diag d = {{0}};
		int rc;
		cs[i] = connect_as(&id);
		/* rufd treats a peer as authenticated at its first transport message. */
		if ((rc = ruf_client_ping(cs[i], &d)) != 0)
			die("ping", rc, &d);
	}
	printf("idle clients=%ld connect_s=%.2f\n", n, now_s() - t0);
	fflush(stdout);
	sleep_until(now_s() + hold);
	for (long i = 0; i < n; i++)
		ruf_client_close(cs[i]);
	free(cs);
	return 0;
}

int
main(int argc, char *argv[])
{
	if (sodium_init() < 0)
		return 1;
	if (argc >= 2 && strcmp(argv[1], "seal") == 0)
		return cmd_seal(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "idle") == 0)
		return cmd_idle(argc - 1, argv + 1);
	fprintf(stderr, "usage: bench_ingest seal|run ... (see the comment at the top)\n");
	return 2;
}
