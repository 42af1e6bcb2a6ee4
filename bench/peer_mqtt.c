/*
 * peer_mqtt.c - the Mosquitto side of bench/peers.sh: one publisher with W
 * QoS 1 messages in flight (a slot frees at its PUBACK), one durable
 * subscriber (clean_session=false, QoS 1 subscription; libmosquitto sends
 * the PUBACK for each message it delivers to us).
 *
 *   peer_mqtt -p PORT [-w W] [-n COUNT] [-b BYTES] [-t SECONDS]
 *   peer_mqtt -p PORT -C CAFILE -c CERT -k KEY cold
 *       one TLS 1.3 connection, one BYTES publish at QoS 1, then prints the
 *       bytes on the wire (TCP payload both ways, from TCP_INFO).
 */
#include <mosquitto.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_acked/received */
#include <semaphore.h>
#include <unistd.h>

#include "peer_common.h"

static struct peer_run g_run;
static sem_t g_slots, g_event;
static long *g_mid2idx; /* mids are 1..65535 */
static _Atomic int g_connected;

static void
on_connect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	(void)arg;
	if (rc == 0)
		atomic_store(&g_connected, 1);
	sem_post(&g_event);
}

static void
on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *qos)
{
	(void)m;
	(void)arg;
	(void)mid;
	(void)n;
	(void)qos;
	sem_post(&g_event);
}

static void
on_publish(struct mosquitto *m, void *arg, int mid)
{
	(void)m;
	(void)arg;
	peer_mark_ack(&g_run, g_mid2idx[mid & 0xffff]);
	sem_post(&g_slots);
}

static void
on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
	long i;
	(void)m;
	(void)arg;
	if (msg->payloadlen >= (int)sizeof(i)) {
		memcpy(&i, msg->payload, sizeof(i));
		peer_mark_recv(&g_run, i);
	}
}

static struct mosquitto *
client(const char *id, bool clean, int port, unsigned w)
{
	struct mosquitto *m = mosquitto_new(id, clean, NULL);
	if (!m)
		exit(1);
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_max_inflight_messages_set(m, w);
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_publish_callback_set(m, on_publish);
	mosquitto_message_callback_set(m, on_message);
	(void)port;
	return m;
}

static int
cold(int port, const char *ca, const char *cert, const char *key, int bytes)
{
	struct mosquitto *m = client("bench-cold", true, port, 20);
	char *buf = calloc(1, (size_t)bytes);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	if (!buf || mosquitto_tls_set(m, ca, NULL, cert, key, NULL) != MOSQ_ERR_SUCCESS ||
	    mosquitto_tls_opts_set(m, 1, "tlsv1.3", NULL) != MOSQ_ERR_SUCCESS)
		return 1;
	g_mid2idx = calloc(65536, sizeof(long));
	peer_init(&g_run, 1);
	if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "peer_mqtt: TLS connect failed\n");
		return 1;
	}
	sem_wait(&g_event);
	if (!atomic_load(&g_connected))
		return 1;
	int mid;
	g_run.t_send[0] = peer_now();
	if (mosquitto_publish(m, &mid, "bench/cold", bytes, buf, 1, false) != MOSQ_ERR_SUCCESS)
		return 1;
	g_mid2idx[mid] = 0;
	sem_wait(&g_slots);
	usleep(100000); /* let the last TCP ACKs settle into tcp_info */
	if (getsockopt(mosquitto_socket(m), IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0)
		return 1;
	printf("cold system=mqtt-tls13 payload=%d wire_bytes=%llu sent=%llu received=%llu\n", bytes,
	       (unsigned long long)(ti.tcpi_bytes_acked + ti.tcpi_bytes_received),
	       (unsigned long long)ti.tcpi_bytes_acked, (unsigned long long)ti.tcpi_bytes_received);
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	free(buf);
	return 0;
}

int
main(int argc, char *argv[])
{
	int port = 0, opt, bytes = 1024;
	unsigned w = 20;
	long count = 20000;
	double tlimit = 30;
	const char *ca = NULL, *cert = NULL, *key = NULL;

	while ((opt = getopt(argc, argv, "p:w:n:b:t:C:c:k:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
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
		case 'C':
			ca = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		default:
			return 2;
		}
	}
	if (port <= 0 || w < 1 || w > 65000 || count < 1 || bytes < 8)
		return 2;
	mosquitto_lib_init();
	sem_init(&g_slots, 0, 0);
	sem_init(&g_event, 0, 0);
	if (optind < argc && strcmp(argv[optind], "cold") == 0)
		return ca && cert && key ? cold(port, ca, cert, key, bytes) : 2;

	g_mid2idx = calloc(65536, sizeof(long));
	peer_init(&g_run, count);
	char *buf = calloc(1, (size_t)bytes);
	if (!g_mid2idx || !buf)
		return 1;
	for (int i = 8; i < bytes; i++)
		buf[i] = (char)('a' + i % 26);

	/* The durable subscriber first, so the broker keeps its session. */
	struct mosquitto *sub = client("bench-sub", false, port, w);
	if (mosquitto_connect(sub, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(sub) != MOSQ_ERR_SUCCESS)
		return 1;
	sem_wait(&g_event);
	if (mosquitto_subscribe(sub, NULL, "bench/t", 1) != MOSQ_ERR_SUCCESS)
		return 1;
	sem_wait(&g_event);

	struct mosquitto *pub = client("bench-pub", true, port, w);
	if (mosquitto_connect(pub, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(pub) != MOSQ_ERR_SUCCESS)
		return 1;
	sem_wait(&g_event);
	for (unsigned i = 0; i < w; i++)
		sem_post(&g_slots);

	g_run.t0 = peer_now();
	atomic_store(&g_run.last_ack, g_run.t0);
	atomic_store(&g_run.last_recv, g_run.t0);
	long sent = 0;
	for (long i = 0; i < count; i++) {
		int mid;
		sem_wait(&g_slots);
		double t = peer_now();
		if (t - g_run.t0 > tlimit)
			break;
		memcpy(buf, &i, sizeof(i));
		g_run.t_send[i] = t;
		/* The loop thread may see the PUBACK before publish returns the
		 * mid: libmosquitto numbers a client's messages 1, 2, ... 65535, 1. */
		g_mid2idx[i % 65535 + 1] = i;
		if (mosquitto_publish(pub, &mid, "bench/t", bytes, buf, 1, false) !=
		        MOSQ_ERR_SUCCESS ||
		    mid != i % 65535 + 1) {
			fprintf(stderr, "peer_mqtt: publish failed (mid %d)\n", mid);
			return 1;
		}
		sent++;
	}
	/* Wait for the tail: acks and deliveries, or 10 s without progress. */
	double last = peer_now();
	long seen = -1;
	while (atomic_load(&g_run.acked) < sent || atomic_load(&g_run.received) < sent) {
		long s = atomic_load(&g_run.acked) + atomic_load(&g_run.received);
		if (s != seen) {
			seen = s;
			last = peer_now();
		} else if (peer_now() - last > 10) {
			break;
		}
		usleep(2000);
	}
	g_run.count = sent;
	peer_report(&g_run, "mosquitto", w);
	mosquitto_disconnect(pub);
	mosquitto_disconnect(sub);
	mosquitto_loop_stop(pub, false);
	mosquitto_loop_stop(sub, false);
	mosquitto_destroy(pub);
	mosquitto_destroy(sub);
	mosquitto_lib_cleanup();
	return 0;
}
