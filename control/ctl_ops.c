/*
 * ctl_ops.c - posternctl's operations commands: `stats --watch` (counters
 * with rates, computed here from two readings of posternd's `stats all`
 * counter table; the TLS outcomes table after it is left out) and `log`
 * (the tail of posternd's JSON log, as text or JSON, optionally followed
 * like tail -f, across rotations).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ctl_client.h"
#include "evlog.h"
#include "result.h"
#include "shm.h"

#define OPS_MAX_WORKERS SNAP_MAX_WORKERS
#define OPS_FOLLOW_POLL_MS 200
#define OPS_LINES_MAX 100000

static uint64_t ops_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void ops_sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
	                      .tv_nsec = (long)(ns % 1000000000u)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A decimal count for an option: 1..max. */
static bool ops_parse_count(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out >= 1 && *out <= max;
}

static int ops_usage(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "posternctl: %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see posternctl %s --help)\n", cmd);
	return CTL_EXIT_USAGE;
}

/* ---- stats --watch ---- */

/* One reading of `stats all`: counter rows with their total and per worker. */
struct ops_row {
	char name[SHM_COUNTER_NAME];
	uint64_t total;
	uint64_t per_worker[OPS_MAX_WORKERS];
};

struct ops_reading {
	uint64_t at_ns;
	unsigned nworkers, nrows;
	struct ops_row rows[SHM_MAX_COUNTERS];
	char message[256]; /* when posternd had no table */
};

/*
 * Parse report.c's text table: "counter total worker0 worker1 ..." then
 * "NAME TOTAL V0 V1 ...", up to the empty line before the TLS outcomes
 * table (not watched). Anything else is kept as a message.
 */
static void ops_parse_stats(const char *body, struct ops_reading *rd)
{
	const char *line = body, *end_of_table = strstr(body, "\n\n");
	unsigned cols = 0;

	rd->nrows = rd->nworkers = 0;
	rd->message[0] = '\0';
	if (strncmp(body, "counter ", 8) != 0) {
		int len = end_of_table != NULL ? (int)(end_of_table + 1 - body) : (int)strlen(body);

		snprintf(rd->message, sizeof(rd->message), "%.*s", len, body);
		return;
	}
	for (const char *p = body; *p != '\n' && *p != '\0'; p++)
		if (*p != ' ' && (p == body || p[-1] == ' '))
			cols++;
	rd->nworkers = cols >= 2 ? cols - 2 : 0;
	if (rd->nworkers > OPS_MAX_WORKERS)
		rd->nworkers = OPS_MAX_WORKERS;
	while ((line = strchr(line, '\n')) != NULL && *++line != '\0' && *line != '\n' &&
	       rd->nrows < SHM_MAX_COUNTERS) {
		struct ops_row *r = &rd->rows[rd->nrows];
		const char *p = line;
		char *end;
		int n = 0;

		if (sscanf(p, "%39s%n", r->name, &n) != 1)
			continue;
		p += n;
		r->total = strtoull(p, &end, 10);
		p = end;
		for (unsigned i = 0; i < rd->nworkers; i++) {
			r->per_worker[i] = strtoull(p, &end, 10);
			p = end;
		}
		rd->nrows++;
	}
}

static const struct ops_row *ops_find_row(const struct ops_reading *rd, const char *name,
                                          unsigned hint)
{
	if (hint < rd->nrows && strcmp(rd->rows[hint].name, name) == 0)
		return &rd->rows[hint];
	for (unsigned i = 0; i < rd->nrows; i++)
		if (strcmp(rd->rows[i].name, name) == 0)
			return &rd->rows[i];
	return NULL;
}

/* "12.5" per second, "-" without a previous reading, "reset" if it fell. */
static void ops_rate(char *buf, size_t len, const struct ops_reading *prev, uint64_t now_v,
                     uint64_t prev_v, uint64_t dt_ns, bool have_prev)
{
	if (!have_prev || prev == NULL || dt_ns == 0)
		snprintf(buf, len, "-");
	else if (now_v < prev_v)
		snprintf(buf, len, "reset");
	else
		snprintf(buf, len, "%.1f", (double)(now_v - prev_v) * 1e9 / (double)dt_ns);
}

static void ops_print_watch(const struct ops_reading *now, const struct ops_reading *prev, bool all,
                            unsigned interval, bool clear)
{
	uint64_t dt = prev != NULL ? now->at_ns - prev->at_ns : 0;
	char stamp[64], rate[32];
	time_t t = time(NULL);
	struct tm tm;
	int width = 7;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (clear)
		printf("\033[H\033[2J");
	printf("%s, every %u s", stamp, interval);
	if (prev != NULL)
		printf(", rates over the last %.2f s", (double)dt / 1e9);
	printf("\n");
	if (now->message[0] != '\0') {
		printf("%s", now->message);
		return;
	}
	for (unsigned k = 0; k < now->nrows; k++)
		if ((int)strlen(now->rows[k].name) > width)
			width = (int)strlen(now->rows[k].name);
	printf("%-*s %14s %12s", width, "counter", "total", "/s");
	for (unsigned i = 0; i < now->nworkers; i++) {
		char col[24];

		snprintf(col, sizeof(col), "worker%u/s", i);
		printf(" %12s", col);
	}
	printf("\n");
	for (unsigned k = 0; k < now->nrows; k++) {
		const struct ops_row *r = &now->rows[k];
		const struct ops_row *p = prev != NULL ? ops_find_row(prev, r->name, k) : NULL;

		if (r->total == 0 && !all && (p == NULL || p->total == 0))
			continue;
		ops_rate(rate, sizeof(rate), prev, r->total, p != NULL ? p->total : 0, dt,
		         p != NULL);
		printf("%-*s %14" PRIu64 " %12s", width, r->name, r->total, rate);
		for (unsigned i = 0; i < now->nworkers; i++) {
			bool same = p != NULL && prev->nworkers == now->nworkers;

			ops_rate(rate, sizeof(rate), prev, r->per_worker[i],
			         same ? p->per_worker[i] : 0, dt, same);
			printf(" %12s", rate);
		}
		printf("\n");
	}
}

int ctl_stats_is_watch(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--watch") == 0)
			return 1;
	return 0;
}

int ctl_stats_watch(int argc, char **argv, const char *opt_s, const char *opt_c)
{
	unsigned long interval = 1, count = 0;
	struct ops_reading *rd[2];
	char sock[CONF_PATH_MAX];
	bool all = false;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--watch") == 0) {
			if (i + 1 < argc && argv[i + 1][0] != '-' &&
			    !ops_parse_count(argv[++i], 3600, &interval))
				return ops_usage("stats", "--watch: \"%s\" is not 1..3600 seconds",
				                 argv[i]);
		} else if (strcmp(argv[i], "--count") == 0) {
			if (!ops_parse_count(i + 1 < argc ? argv[++i] : NULL, 1000000, &count))
				return ops_usage("stats", "--count needs a number 1..1000000%s",
				                 "");
		} else if (strcmp(argv[i], "--all") == 0) {
			all = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			return ops_usage("stats", "--watch is text only (%s: use stats --json)",
			                 "for scripts");
		} else {
			return ops_usage("stats", "unknown argument \"%s\"", argv[i]);
		}
	}
	rc = ctl_socket_path(opt_s, opt_c, sock, sizeof(sock));
	if (rc != CTL_EXIT_OK)
		return rc;
	rd[0] = calloc(1, sizeof(*rd[0]));
	rd[1] = calloc(1, sizeof(*rd[1]));
	if (rd[0] == NULL || rd[1] == NULL) {
		free(rd[0]);
		free(rd[1]);
		return CTL_EXIT_DAEMON_ERROR;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (unsigned long n = 0; count == 0 || n < count; n++) {
		struct ops_reading *cur = rd[n % 2], *prev = n > 0 ? rd[(n + 1) % 2] : NULL;
		char *reply, *body;

		if (n > 0)
			ops_sleep_ns(interval * 1000000000ull -
			             (ops_now_ns() - prev->at_ns) % (interval * 1000000000ull));
		rc = ctl_fetch(sock, "stats all\n", &reply, &body);
		if (reply == NULL || rc != CTL_EXIT_OK) {
			if (reply != NULL)
				fputs(body, stderr);
			free(reply);
			break;
		}
		cur->at_ns = ops_now_ns();
		ops_parse_stats(body, cur);
		free(reply);
		ops_print_watch(cur, prev, all, (unsigned)interval, isatty(STDOUT_FILENO) == 1);
		if (count == 0 || n + 1 < count)
			printf("\n");
		fflush(stdout);
	}
	free(rd[0]);
	free(rd[1]);
	return rc;
}

/* ---- log ---- */

/* Where the log is: ask posternd, else CONFIG_DIR/postern.conf, else the default. */
static void ops_log_path(const char *opt_s, const char *opt_c, char *path, size_t len)
{
	char sock[CONF_PATH_MAX], err[512], *reply = NULL, *body;

	if (ctl_socket_path(opt_s, opt_c, sock, sizeof(sock)) == CTL_EXIT_OK &&
	    ctl_fetch(sock, "logfile\n", &reply, &body) == CTL_EXIT_OK && body[0] == '/') {
		body[strcspn(body, "\n")] = '\0';
		snprintf(path, len, "%s", body);
		free(reply);
		return;
	}
	free(reply);
	if (opt_c != NULL && conf_peek(opt_c, "log_file", path, len, err, sizeof(err)) == PG_OK &&
	    path[0] == '/')
		return;
	snprintf(path, len, "%s", CONF_DEFAULT_LOG_FILE);
}

static void ops_print_line(const char *line, bool json)
{
	struct ctl_buf b = {0};

	if (!json && evlog_line_text(line, &b) && !b.oom)
		fputs(b.p, stdout);
	else
		printf("%s\n", line);
	ctl_buf_free(&b);
}

/*
 * The offset where the last n lines of fd begin (reads backwards in
 * blocks; a final line without '\n' counts as a line).
 */
static off_t ops_tail_offset(int fd, off_t size, unsigned long n)
{
	char block[65536];
	off_t pos = size;
	unsigned long seen = 0;
	bool first = true;

	while (pos > 0) {
		size_t want = pos > (off_t)sizeof(block) ? sizeof(block) : (size_t)pos;
		ssize_t got = pread(fd, block, want, pos - (off_t)want);

		if (got != (ssize_t)want)
			return 0;
		for (size_t i = want; i-- > 0;) {
			/* the file's own final newline ends the last line, not a new one */
			if (block[i] == '\n' &&
			    !(first && pos - (off_t)want + (off_t)i == size - 1)) {
				if (++seen == n)
					return pos - (off_t)want + (off_t)i + 1;
			}
		}
		first = false;
		pos -= (off_t)want;
	}
	return 0;
}

/* Print complete lines from fd at *off on; returns lines printed. */
static unsigned long ops_print_from(int fd, off_t *off, bool json, unsigned long max,
                                    bool partial_too)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;
	unsigned long printed = 0;

	for (;;) {
		ssize_t got;

		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + (1 << 20));

			if (nb == NULL)
				break;
			buf = nb;
			cap += 1 << 20;
		}
		got = pread(fd, buf + len, cap - len - 1, *off + (off_t)len);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	for (size_t start = 0; start < len && (max == 0 || printed < max);) {
		char *nl = memchr(buf + start, '\n', len - start);

		if (nl == NULL && !partial_too)
			break; /* a line being written: wait for its end */
		if (nl == NULL)
			nl = buf + len;
		*nl = '\0';
		ops_print_line(buf + start, json);
		printed++;
		*off += (off_t)(nl - (buf + start)) + (nl < buf + len);
		start = (size_t)(nl - buf) + 1;
	}
	fflush(stdout);
	free(buf);
	return printed;
}

int ctl_log_cmd(int argc, char **argv, const char *opt_s, const char *opt_c)
{
	unsigned long lines = 10, count = 0;
	bool follow = false, json = false;
	char path[CONF_PATH_MAX];
	struct stat st;
	off_t off;
	int fd;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--lines") == 0 || strcmp(argv[i], "-n") == 0) {
			if (!ops_parse_count(i + 1 < argc ? argv[++i] : NULL, OPS_LINES_MAX,
			                     &lines))
				return ops_usage("log", "--lines needs a number 1..%s", "100000");
		} else if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			follow = true;
		} else if (strcmp(argv[i], "--count") == 0) {
			if (!ops_parse_count(i + 1 < argc ? argv[++i] : NULL, 1000000, &count))
				return ops_usage("log", "--count needs a number 1..%s", "1000000");
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			return ops_usage("log", "unknown argument \"%s\"", argv[i]);
		}
	}
	if (count != 0 && !follow)
		return ops_usage("log", "--count goes with --follow%s", "");
	ops_log_path(opt_s, opt_c, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "posternctl: log: cannot read %s: %s\n", path, strerror(errno));
		return errno == EACCES ? CTL_EXIT_DAEMON_ERROR : CTL_EXIT_UNREACHABLE;
	}
	off = ops_tail_offset(fd, st.st_size, lines);
	ops_print_from(fd, &off, json, 0, !follow);
	while (follow) {
		struct stat now, cur;
		unsigned long got;

		got = ops_print_from(fd, &off, json, count, false);
		if (count != 0) {
			if (got >= count)
				break;
			count -= got;
		}
		/* rotated (a new file under the name) or truncated: start it over */
		if (stat(path, &now) == 0 && fstat(fd, &cur) == 0 &&
		    (now.st_ino != cur.st_ino || now.st_dev != cur.st_dev)) {
			int nfd = open(path, O_RDONLY | O_CLOEXEC);

			if (nfd >= 0) {
				/* the rest of the old file first */
				got = ops_print_from(fd, &off, json, count, true);
				if (count != 0 && got >= count) {
					close(nfd);
					break;
				}
				count -= count != 0 ? got : 0;
				close(fd);
				fd = nfd;
				off = 0;
				continue;
			}
		} else if (fstat(fd, &cur) == 0 && cur.st_size < off) {
			off = 0;
		}
		ops_sleep_ns(OPS_FOLLOW_POLL_MS * 1000000ull);
	}
	close(fd);
	return CTL_EXIT_OK;
}
