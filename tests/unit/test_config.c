/* test_config.c - rufd's configuration file parser (daemon/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"

static int
parse(const char *text, struct rufd_config *cfg, ruf_diag *d)
{
	return rufd_config_parse(text, strlen(text), "rufd.conf", cfg, d);
}

/* Expects text to fail, with want (a substring) in the message. */
static void
expect_error(const char *text, const char *want)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};

	assert_int_equal(parse(text, &cfg, &d), RUF_E_FORMAT);
	if (!strstr(d.msg, want))
		fail_msg("'%s' not in '%s' for input '%s'", want, d.msg, text);
}

static void
test_config_empty_gives_defaults(void **state)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};

	(void)state;
	assert_int_equal(parse("", &cfg, &d), 0);
	assert_string_equal(cfg.state_dir, "/var/lib/rufd");
	assert_int_equal(cfg.map_size, 1024ull * 1024 * 1024);
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.handshake_timeout, 10);
	assert_int_equal(cfg.idle_timeout, 300);
	assert_int_equal(cfg.partial_expiry, 7 * 86400);
	assert_int_equal(cfg.delivery_window, 16);
	assert_int_equal(cfg.n_listen, 0);
	assert_string_equal(cfg.metrics_listen.text, "");
	rufd_config_free(&cfg);
}

static void
test_config_reads_values_comments_and_units(void **state)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};
	const char *text = "# rufd\n"
	                   "listen = 127.0.0.1:7443\n"
	                   "listen=[::1]:7444   # second\n"
	                   "\n"
	                   "  state_dir = /tmp/x y  \n"
	                   "map_size = 16m\r\n"
	                   "max_conn_buffer = 256k\n"
	                   "idle_timeout = 2m\n"
	                   "metrics_listen = [::1]:9100\n";

	(void)state;
	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_int_equal(cfg.n_listen, 2);
	assert_string_equal(cfg.listen[0].text, "127.0.0.1:7443");
	assert_int_equal(cfg.listen[0].sa.ss_family, AF_INET);
	assert_string_equal(cfg.listen[1].text, "[::1]:7444");
	assert_int_equal(cfg.listen[1].sa.ss_family, AF_INET6);
	assert_string_equal(cfg.state_dir, "/tmp/x y");
	assert_int_equal(cfg.map_size, 16ull << 20);
	assert_int_equal(cfg.max_conn_buffer, 256ull << 10);
	assert_int_equal(cfg.idle_timeout, 120);
	assert_string_equal(cfg.metrics_listen.text, "[::1]:9100");
	rufd_config_free(&cfg);
}

static void
test_config_store_backend_defaults_to_lmdb_and_reads_jetstream_keys(void **state)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};
	const char *text = "store_backend = jetstream\n"
	                   "jetstream_servers = nats://10.0.0.1:4222,tls://ny.example:4222\n"
	                   "jetstream_prefix = RUF_HQ\n"
	                   "jetstream_replicas = 5\n"
	                   "jetstream_creds = /etc/ruf/rufd.creds\n"
	                   "jetstream_tls_ca = /etc/ruf/nats-ca.pem\n"
	                   "jetstream_timeout_ms = 2500\n";

	(void)state;
	assert_int_equal(parse("", &cfg, &d), 0);
	assert_string_equal(cfg.store_backend, "lmdb");
	assert_null(cfg.jetstream_servers);
	assert_string_equal(cfg.jetstream_prefix, "RUF");
	assert_int_equal(cfg.jetstream_replicas, 3);
	assert_null(cfg.jetstream_creds);
	assert_null(cfg.jetstream_tls_ca);
	assert_int_equal(cfg.jetstream_timeout_ms, 5000);
	rufd_config_free(&cfg);

	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_string_equal(cfg.store_backend, "jetstream");
	assert_string_equal(cfg.jetstream_servers, "nats://10.0.0.1:4222,tls://ny.example:4222");
	assert_string_equal(cfg.jetstream_prefix, "RUF_HQ");
	assert_int_equal(cfg.jetstream_replicas, 5);
	assert_string_equal(cfg.jetstream_creds, "/etc/ruf/rufd.creds");
	assert_string_equal(cfg.jetstream_tls_ca, "/etc/ruf/nats-ca.pem");
	assert_int_equal(cfg.jetstream_timeout_ms, 2500);
	rufd_config_free(&cfg);
}

static void
test_config_rejects_bad_store_settings(void **state)
{
	(void)state;
	expect_error("store_backend = redis\n", "rufd.conf:1: store_backend: 'redis' is not lmdb");
	expect_error("map_size = 1g\nstore_backend = jetstream\n",
	             "rufd.conf:2: store_backend = jetstream needs jetstream_servers");
	expect_error("jetstream_prefix = ruf\n", "is not 1..32 of A-Z 0-9 _");
	expect_error("jetstream_prefix = RUF.X\n", "is not 1..32 of A-Z 0-9 _");
	expect_error("jetstream_servers = nats://a:1,,nats://b:2\n", "without blanks");
	expect_error("jetstream_servers = nats://a:1, nats://b:2\n", "without blanks");
	expect_error("jetstream_replicas = 0\n", "outside");
	expect_error("jetstream_replicas = 6\n", "outside");
	expect_error("jetstream_timeout_ms = 99\n", "outside");
}

static void
test_config_rejects_unknown_key_naming_line(void **state)
{
	(void)state;
	expect_error("map_size = 16m\n\nbogus = 1\n", "rufd.conf:3: unknown option 'bogus'");
}

static void
test_config_rejects_out_of_bounds(void **state)
{
	(void)state;
	expect_error("map_size = 1k\n", "rufd.conf:1: map_size");
	expect_error("max_connections = 0\n", "outside");
	expect_error("delivery_window = 1025\n", "outside");
	expect_error("handshake_timeout = 1h\n", "outside");
	expect_error("max_envelope = 5g\n", "outside");
}

static void
test_config_rejects_malformed_values(void **state)
{
	(void)state;
	expect_error("max_connections = -1\n", "not a number");
	expect_error("max_connections = 10x\n", "not a number");
	expect_error("max_connections = 99999999999999999999999\n", "not a number");
	expect_error("map_size = 16q\n", "not a size");
	expect_error("map_size = 99999999999999999t\n", "not a size");
	expect_error("idle_timeout = soon\n", "not a duration");
	expect_error("state_dir =\n", "needs a value");
	expect_error("just words\n", "expected 'key = value'");
	expect_error("map_size = 1\x01m\n", "control character");
}

static void
test_config_rejects_bad_addresses(void **state)
{
	(void)state;
	expect_error("listen = localhost:7443\n", "listen");
	expect_error("listen = 127.0.0.1\n", "listen");
	expect_error("listen = 127.0.0.1:0\n", "listen");
	expect_error("listen = 127.0.0.1:65536\n", "listen");
	expect_error("listen = ::1:7443\n", "listen");
	expect_error("listen = [::1:7443\n", "listen");
	expect_error("metrics_listen = 0.0.0.0:9100\n", "not a loopback");
	expect_error("metrics_listen = [::]:9100\n", "not a loopback");
}

static void
test_config_rejects_repeated_key_but_not_listen(void **state)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};
	char text[2048] = "";

	(void)state;
	expect_error("map_size = 16m\nmap_size = 32m\n", "rufd.conf:2: map_size given twice");
	for (int i = 0; i < RUFD_MAX_LISTEN; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		         "listen = 127.0.0.1:%d\n", 7000 + i);
	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_int_equal(cfg.n_listen, RUFD_MAX_LISTEN);
	rufd_config_free(&cfg);
	strcat(text, "listen = 127.0.0.1:9999\n");
	expect_error(text, "more than");
}

static void
test_config_rejects_nul_and_long_lines(void **state)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};
	char big[2100];

	(void)state;
	assert_int_equal(rufd_config_parse("a\0b = 1\n", 8, "c", &cfg, &d), RUF_E_FORMAT);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(big, "line longer");
}

static void
test_config_example_file_parses(void **state)
{
	struct rufd_config cfg;
	ruf_diag d = {{0}};

	(void)state;
	if (rufd_config_load(RUF_SOURCE_DIR "/certs-example/rufd.conf", &cfg, &d) != 0)
		fail_msg("%s", d.msg);
	assert_true(cfg.n_listen >= 1);
	rufd_config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_empty_gives_defaults),
	    cmocka_unit_test(test_config_reads_values_comments_and_units),
	    cmocka_unit_test(test_config_store_backend_defaults_to_lmdb_and_reads_jetstream_keys),
	    cmocka_unit_test(test_config_rejects_bad_store_settings),
	    cmocka_unit_test(test_config_rejects_unknown_key_naming_line),
	    cmocka_unit_test(test_config_rejects_out_of_bounds),
	    cmocka_unit_test(test_config_rejects_malformed_values),
	    cmocka_unit_test(test_config_rejects_bad_addresses),
	    cmocka_unit_test(test_config_rejects_repeated_key_but_not_listen),
	    cmocka_unit_test(test_config_rejects_nul_and_long_lines),
	    cmocka_unit_test(test_config_example_file_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
