/*
 * bench_fsync.c - what one durable small append costs on this disk: the floor
 * under any "fsync before acknowledging" design (docs/BENCHMARKS.md).
 *
 *   bench_fsync [DIR] [COUNT] [BYTES]     defaults: /var/tmp 500 256
 *
 * Appends BYTES to a file COUNT times, each followed by fdatasync (and, as a
 * second series, fsync), and prints the median, p99 and the implied ceiling
 * of serial commits per second.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int
series(const char *path, long count, size_t bytes, int full, const char *name)
{
	char buf[65536];
	double *t = calloc((size_t)count, sizeof(double));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || !t) {
		perror(path);
		free(t);
		return 1;
	}
	memset(buf, 'x', sizeof(buf));
	for (long i = 0; i < count; i++) {
		double a = now_s();
		if (write(fd, buf, bytes) != (ssize_t)bytes || (full ? fsync(fd) : fdatasync(fd))) {
			perror("write/sync");
			close(fd);
			free(t);
			return 1;
		}
		t[i] = (now_s() - a) * 1e6;
	}
	close(fd);
	qsort(t, (size_t)count, sizeof(double), cmpd);
	double p50 = t[count / 2], p99 = t[(size_t)((double)(count - 1) * 0.99)];
	printf("fsync op=%s bytes=%zu count=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f "
	       "serial_commits_per_s=%.0f\n",
	       name, bytes, count, p50, p99, t[count - 1], 1e6 / p50);
	free(t);
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *dir = argc > 1 ? argv[1] : "/var/tmp";
	long count = argc > 2 ? atol(argv[2]) : 500;
	long bytes = argc > 3 ? atol(argv[3]) : 256;
	char path[4096];
	int rc;

	if (count < 1 || bytes < 1 || bytes > 65536)
		return 2;
	snprintf(path, sizeof(path), "%s/bench_fsync.%ld", dir, (long)getpid());
	rc = series(path, count, (size_t)bytes, 0, "fdatasync") ||
	     series(path, count, (size_t)bytes, 1, "fsync");
	unlink(path);
	return rc;
}
