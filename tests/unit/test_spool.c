/* test_spool.c - partial uploads on disk (daemon/spool.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "spool.h"
#include "util.h"

static char base[64];
static char dir[RUFD_SPOOL_PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	snprintf(base, sizeof(base), "/tmp/ruf-spool.XXXXXX");
	if (!mkdtemp(base))
		return -1;
	return rufd_spool_init(base, dir);
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd);
}

static void
test_spool_new_upload_starts_at_zero_and_resumes_at_length(void **state)
{
	uint8_t id[16] = {1, 2, 3};
	char path[RUFD_SPOOL_PATH_MAX];
	uint64_t have = 99;
	int fd = -1;

	(void)state;
	assert_int_equal(rufd_spool_open(dir, id, 100, &fd, &have, path), 0);
	assert_int_equal(have, 0);
	assert_non_null(strstr(path, "/spool/01020300000000000000000000000000"));
	assert_int_equal(ruf_write_all(fd, "0123456789", 10), 0);
	close(fd);
	assert_int_equal(rufd_spool_open(dir, id, 100, &fd, &have, path), 0);
	assert_int_equal(have, 10);
	close(fd);
}

static void
test_spool_empties_a_file_longer_than_the_offer(void **state)
{
	uint8_t id[16] = {9};
	char path[RUFD_SPOOL_PATH_MAX];
	uint64_t have = 0;
	int fd = -1;
	struct stat st;

	(void)state;
	assert_int_equal(rufd_spool_open(dir, id, 100, &fd, &have, path), 0);
	assert_int_equal(ruf_write_all(fd, "0123456789", 10), 0);
	close(fd);
	assert_int_equal(rufd_spool_open(dir, id, 5, &fd, &have, path), 0);
	assert_int_equal(have, 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(fd);
}

static void
test_spool_expiry_removes_only_old_spool_files(void **state)
{
	uint8_t old_id[16] = {0xaa}, new_id[16] = {0xbb};
	char old_path[RUFD_SPOOL_PATH_MAX], new_path[RUFD_SPOOL_PATH_MAX], other[600];
	struct timeval tv[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
	uint64_t have;
	int fd;

	(void)state;
	assert_int_equal(rufd_spool_open(dir, old_id, 10, &fd, &have, old_path), 0);
	close(fd);
	assert_int_equal(rufd_spool_open(dir, new_id, 10, &fd, &have, new_path), 0);
	close(fd);
	snprintf(other, sizeof(other), "%s/not-a-spool-file", dir);
	assert_int_equal(ruf_file_write_atomic(other, "x", 1, 0600, false), 0);
	assert_int_equal(utimes(old_path, tv), 0);
	assert_int_equal(utimes(other, tv), 0);
	assert_int_equal(rufd_spool_expire(dir, 3600), 1);
	assert_int_not_equal(access(old_path, F_OK), 0);
	assert_int_equal(access(new_path, F_OK), 0);
	assert_int_equal(access(other, F_OK), 0);
}

static void
test_spool_refuses_a_symlink(void **state)
{
	uint8_t id[16] = {0xcc};
	char path[RUFD_SPOOL_PATH_MAX + 64], hex[33];
	uint64_t have;
	int fd = -1;

	(void)state;
	ruf_hex(id, 16, hex);
	snprintf(path, sizeof(path), "%s/%s", dir, hex);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_not_equal(rufd_spool_open(dir, id, 10, &fd, &have, path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spool_new_upload_starts_at_zero_and_resumes_at_length),
	    cmocka_unit_test(test_spool_empties_a_file_longer_than_the_offer),
	    cmocka_unit_test(test_spool_expiry_removes_only_old_spool_files),
	    cmocka_unit_test(test_spool_refuses_a_symlink),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
