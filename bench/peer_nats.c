/*
 * peer_nats.c - the NATS JetStream side of bench/peers.sh: a file-store
 * stream, one publisher with W asynchronous publishes awaiting their PubAck
 * (jsOptions.PublishAsync.MaxPending = W), one durable push consumer with
 * explicit acks (MaxAckPending = W) that acknowledges each message.
 *
 *   peer_nats -u nats://127.0.0.1:PORT [-w W] [-n COUNT] [-b BYTES] [-t SECONDS]
 */
#include <nats/nats.h>
#include <unistd.h>

#include "peer_common.h"

static struct peer_run g_run;

static void
on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	long i;
	(void)js;
	(void)closure;
	if (pa && !pae && natsMsg_GetDataLength(msg) >= (int)sizeof(i)) {
		memcpy(&i, natsMsg_GetData(msg), sizeof(i));
		peer_mark_ack(&g_run, i);
	} else if (pae) {
		fprintf(stderr, "peer_nats: publish error %d\n", (int)pae->Err);
	}
	natsMsg_Destroy(msg);
}

static void
on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	long i;
	(void)nc;
	(void)sub;
	(void)closure;
	if (natsMsg_GetDataLength(msg) >= (int)sizeof(i)) {
		memcpy(&i, natsMsg_GetData(msg), sizeof(i));
		peer_mark_recv(&g_run, i);
	}
	natsMsg_Ack(msg, NULL);
	natsMsg_Destroy(msg);
}

static void
check(natsStatus s, const char *what)
{
	if (s != NATS_OK) {
		fprintf(stderr, "peer_nats: %s: %s\n", what, natsStatus_GetText(s));
		nats_PrintLastErrorStack(stderr);
		exit(1);
	}
}

int
main(int argc, char *argv[])
{
	const char *url = NULL;
	int opt, bytes = 1024;
	unsigned w = 20;
	long count = 20000;
	double tlimit = 30;

	while ((opt = getopt(argc, argv, "u:w:n:b:t:")) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'w':
			w = (unsigned)atoi(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'b':
			bytes = atoi(optarg);
			break;
		case 't':
			tlimit = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!url || w < 1 || count < 1 || bytes < 8)
		return 2;
	peer_init(&g_run, count);
	char *buf = calloc(1, (size_t)bytes);
	if (!buf)
		return 1;
	for (int i = 8; i < bytes; i++)
		buf[i] = (char)('a' + i % 26);

	natsConnection *pc = NULL, *sc = NULL;
	jsCtx *pjs = NULL, *sjs = NULL;
	jsOptions po, so;
	jsErrCode jerr = 0;
	check(natsConnection_ConnectTo(&pc, url), "connect");
	check(natsConnection_ConnectTo(&sc, url), "connect");
	check(jsOptions_Init(&po), "jsOptions");
	po.PublishAsync.MaxPending = w;
	po.PublishAsync.AckHandler = on_puback;
	check(natsConnection_JetStream(&pjs, pc, &po), "jetstream");
	check(jsOptions_Init(&so), "jsOptions");
	check(natsConnection_JetStream(&sjs, sc, &so), "jetstream");

	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	const char *subjects[] = {"bench.t"};
	check(jsStreamConfig_Init(&cfg), "stream config");
	cfg.Name = "BENCH";
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	check(js_AddStream(&si, pjs, &cfg, NULL, &jerr), "add stream");
	jsStreamInfo_Destroy(si);

	jsSubOptions sopt;
	natsSubscription *sub = NULL;
	check(jsSubOptions_Init(&sopt), "sub options");
	sopt.Stream = "BENCH";
	sopt.ManualAck = true;
	sopt.Config.Durable = "bench-sub";
	sopt.Config.AckPolicy = js_AckExplicit;
	sopt.Config.MaxAckPending = w;
	check(js_Subscribe(&sub, sjs, "bench.t", on_msg, NULL, NULL, &sopt, &jerr), "subscribe");
	natsSubscription_SetPendingLimits(sub, -1, -1);

	g_run.t0 = peer_now();
	atomic_store(&g_run.last_ack, g_run.t0);
	atomic_store(&g_run.last_recv, g_run.t0);
	long sent = 0;
	for (long i = 0; i < count; i++) {
		double t = peer_now();
		if (t - g_run.t0 > tlimit)
			break;
		memcpy(buf, &i, sizeof(i));
		g_run.t_send[i] = t;
		/* Blocks (stalls) while W publishes await their PubAck. */
		natsStatus s;
		while ((s = js_PublishAsync(pjs, "bench.t", buf, bytes, NULL)) == NATS_TIMEOUT)
			;
		check(s, "publish");
		sent++;
	}
	jsPubOptions pwo;
	jsPubOptions_Init(&pwo);
	pwo.MaxWait = 30000;
	check(js_PublishAsyncComplete(pjs, &pwo), "publish complete");
	double last = peer_now();
	long seen = -1;
	while (atomic_load(&g_run.received) < sent) {
		long s = atomic_load(&g_run.received);
		if (s != seen) {
			seen = s;
			last = peer_now();
		} else if (peer_now() - last > 10) {
			break;
		}
		usleep(2000);
	}
	g_run.count = sent;
	peer_report(&g_run, "nats-jetstream", w);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(pjs);
	jsCtx_Destroy(sjs);
	natsConnection_Destroy(pc);
	natsConnection_Destroy(sc);
	nats_Close();
	return 0;
}
