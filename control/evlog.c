/*
 * evlog.c - posternd's JSON lines log (see evlog.h): rendering, the file
 * (append, reopen on SIGUSR1), draining the dataplane's event rings, and
 * turning a line back into text for `posternctl log`. Everything read from
 * the rings was written by another process: the fields are escaped, never
 * copied into the JSON as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evlog.h"
#include "result.h"

#define EVLOG_KEY_MAX 32
#define EVLOG_NUMBER_DIGITS 15 /* exact in a double: what JSON readers use */

void evlog_timestamp(uint64_t ts_ns, char *buf, size_t len)
{
	time_t s = (time_t)(ts_ns / 1000000000u);
	struct tm tm;
	char day[32];

	gmtime_r(&s, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", day, (unsigned)(ts_ns / 1000000u % 1000u));
}

void evlog_ring_source(unsigned r, char *buf, size_t len)
{
	if (r == 0)
		snprintf(buf, len, "dataplane");
	else
		snprintf(buf, len, "worker %u", r - 1);
}

/* The keys evlog_render writes itself; a field may not take them. */
static bool evlog_key_ok(const char *k, size_t n)
{
	static const char *const reserved[] = {"ts", "source", "level", "event", "truncated"};

	if (n == 0 || n > EVLOG_KEY_MAX || strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_") < n)
		return false;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strlen(reserved[i]) == n && memcmp(reserved[i], k, n) == 0)
			return false;
	return true;
}

/* A decimal integer JSON readers keep exact: no sign games, no leading 0. */
static bool evlog_is_number(const char *v, size_t n)
{
	size_t digits = n > 0 && v[0] == '-' ? n - 1 : n;
	const char *d = v + (n - digits);

	if (digits == 0 || digits > EVLOG_NUMBER_DIGITS || (d[0] == '0' && digits > 1))
		return false;
	for (size_t i = 0; i < digits; i++)
		if (d[i] < '0' || d[i] > '9')
			return false;
	return true;
}

static void evlog_fields(struct ctl_buf *b, const char *fields)
{
	unsigned pos = 0;

	while (fields != NULL && *fields != '\0') {
		size_t n = strcspn(fields, EVRING_SEP);
		const char *eq = memchr(fields, '=', n);
		size_t klen = eq != NULL ? (size_t)(eq - fields) : 0;

		pos++;
		if (eq != NULL && evlog_key_ok(fields, klen)) {
			const char *v = eq + 1;
			size_t vlen = n - klen - 1;

			ctl_buf_printf(b, ",\"%.*s\":", (int)klen, fields);
			if (evlog_is_number(v, vlen))
				ctl_buf_printf(b, "%.*s", (int)vlen, v);
			else
				ctl_buf_json_str(b, v, vlen);
		} else if (n > 0) {
			/* not key=value: kept, under its position */
			ctl_buf_printf(b, ",\"field_%u\":", pos);
			ctl_buf_json_str(b, fields, n);
		}
		fields += n + (fields[n] != '\0');
	}
}

void evlog_render(struct ctl_buf *b, uint64_t ts_ns, const char *source, const char *level,
                  const char *event, const char *fields, bool truncated)
{
	char ts[48];

	evlog_timestamp(ts_ns, ts, sizeof(ts));
	ctl_buf_printf(b, "{\"ts\":\"%s\",\"source\":", ts);
	ctl_buf_json_str(b, source, SIZE_MAX);
	ctl_buf_printf(b, ",\"level\":");
	ctl_buf_json_str(b, level, SIZE_MAX);
	ctl_buf_printf(b, ",\"event\":");
	ctl_buf_json_str(b, event, SIZE_MAX);
	evlog_fields(b, fields);
	if (truncated)
		ctl_buf_printf(b, ",\"truncated\":true");
	ctl_buf_printf(b, "}\n");
}

/* ---- the file ---- */

int evlog_mkdir_parents(const char *path)
{
	char dir[CONF_LOG_PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

static int evlog_open_fd(const char *path, long gid, char *err, size_t errlen)
{
	int fd;

	if (evlog_mkdir_parents(path) != 0) {
		snprintf(err, errlen, "log_file %s: cannot create its directory: %s", path,
		         strerror(errno));
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "log_file %s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) != 0) {
		snprintf(err, errlen, "log_file %s: cannot give it group %ld: %s", path, gid,
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int evlog_open(struct evlog *l, const char *path, long gid, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "%s", path);
	snprintf(l->dp_state, sizeof(l->dp_state), "absent");
	l->gid = gid;
	l->fd = evlog_open_fd(path, gid, err, errlen);
	return l->fd >= 0 ? PG_OK : PG_ERROR;
}

int evlog_reopen(struct evlog *l, char *err, size_t errlen)
{
	int fd = evlog_open_fd(l->path, l->gid, err, errlen);

	if (fd < 0)
		return PG_ERROR;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	return PG_OK;
}

void evlog_close(struct evlog *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

/* Whole lines only reach the file with O_APPEND; a failure is said once. */
static void evlog_write(struct evlog *l, const struct ctl_buf *b)
{
	size_t off = 0;

	if (b->len == 0)
		return;
	while (l->fd >= 0 && off < b->len) {
		ssize_t n = write(l->fd, b->p + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			l->write_errors++;
			if (!l->failing)
				fprintf(stderr,
				        "posternd: writing %s: %s (events are lost until it"
				        " works again)\n",
				        l->path, n < 0 ? strerror(errno) : "no progress");
			l->failing = true;
			return;
		}
		off += (size_t)n;
	}
	if (l->fd < 0) {
		l->write_errors++;
		return;
	}
	for (size_t i = 0; i < b->len; i++)
		l->lines += b->p[i] == '\n';
	l->failing = false;
}

void evlog_event(struct evlog *l, uint8_t level, const char *event, const char *fmt, ...)
{
	struct ctl_buf b = {0};
	char fields[2048] = "";
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(fields, sizeof(fields), fmt, ap);
		va_end(ap);
	}
	evlog_render(&b, evring_realtime_ns(), "posternd", evring_level_name(level), event, fields,
	             false);
	evlog_write(l, &b);
	ctl_buf_free(&b);
}

/* ---- the rings ---- */

static bool evlog_dp_running(const char *state)
{
	return strcmp(state, "starting") == 0 || strcmp(state, "ready") == 0 ||
	       strcmp(state, "stopping") == 0;
}

/*
 * The dataplane appearing is logged before its rings are drained (its first
 * events follow), its end after them (its last events come first).
 */
static void evlog_watch_dataplane(struct evlog *l, const struct shm_region *rg, bool before)
{
	const char *state = ctl_dp_state_name(rg);
	int32_t pid = atomic_load(&rg->dp.pid);
	bool was = evlog_dp_running(l->dp_state), is = evlog_dp_running(state);

	if (before && is && (!was || pid != l->dp_pid))
		evlog_event(l, EVRING_INFO, "dataplane attached",
		            "pid=%" PRId32 EVRING_SEP "state=%s", pid, state);
	else if (before)
		return; /* the rest once the rings are drained */
	else if (was && (strcmp(state, "dead") == 0 || strcmp(state, "failed") == 0))
		evlog_event(l, EVRING_ERROR, "dataplane lost",
		            "pid=%" PRId32 EVRING_SEP "state=%s" EVRING_SEP "message=%.*s",
		            l->dp_pid, state,
		            strcmp(state, "failed") == 0 ? (int)sizeof(rg->dp.message) : 0,
		            rg->dp.message);
	else if (was && !is)
		evlog_event(l, EVRING_NOTICE, "dataplane stopped", "pid=%" PRId32, l->dp_pid);
	l->dp_pid = pid;
	snprintf(l->dp_state, sizeof(l->dp_state), "%s", state);
}

unsigned evlog_drain(struct evlog *l, struct shm_region *rg)
{
	struct ctl_buf b = {0};
	struct evring_record rec;
	unsigned total = 0;
	char source[32], fields[64];

	evlog_watch_dataplane(l, rg, true);
	for (unsigned r = 0; r < rg->events_nrings; r++) {
		struct evring *ring = shm_evring(rg, r);
		enum evring_pop_result res;
		uint64_t lost = 0, dropped;

		evlog_ring_source(r, source, sizeof(source));
		/* at most one ring's worth per pass: a flooding producer cannot stall us */
		for (uint32_t i = 0; i < SHM_EV_CAPACITY; i++) {
			res = evring_pop(ring, &rec, &lost);
			if (res == EVRING_EMPTY)
				break;
			if (res == EVRING_CORRUPT) {
				snprintf(fields, sizeof(fields), "lost=%" PRIu64, lost);
				evlog_render(&b, evring_realtime_ns(), source, "error",
				             "event ring corrupt", fields, false);
				break;
			}
			total++;
			if (rec.kind >= EV__COUNT) {
				/* a newer dataplane: keep what it said, flag the kind */
				snprintf(fields, sizeof(fields), "kind=%u" EVRING_SEP, rec.kind);
				{
					char text[sizeof(fields) + EVRING_TEXT_MAX];

					snprintf(text, sizeof(text), "%s%s", fields, rec.text);
					evlog_render(&b, rec.ts_ns, source,
					             evring_level_name(rec.level), "unknown", text,
					             rec.flags & EVRING_F_TRUNCATED);
				}
				continue;
			}
			evlog_render(&b, rec.ts_ns, source, evring_level_name(rec.level),
			             evring_kind_name(rec.kind), rec.text,
			             rec.flags & EVRING_F_TRUNCATED);
			if (rec.kind == EV_DELIVERY_ATTEMPT && l->tls != NULL)
				tlsstats_add_event(l->tls, rec.text);
		}
		dropped = evring_take_dropped(ring);
		if (dropped != 0) {
			snprintf(fields, sizeof(fields), "count=%" PRIu64, dropped);
			evlog_render(&b, evring_realtime_ns(), source, "warning", "events dropped",
			             fields, false);
		}
	}
	evlog_write(l, &b);
	ctl_buf_free(&b);
	evlog_watch_dataplane(l, rg, false);
	return total;
}

/* ---- a line for people ---- */

/* A JSON string at *p (after the quote) into out, as text; false if bad. */
static bool evlog_text_string(const char **p, struct ctl_buf *out, bool quote)
{
	const char *s = *p;
	struct ctl_buf v = {0};
	bool ok = false, needs_quotes = false;

	for (; *s != '\0'; s++) {
		char c = *s;

		if (c == '"') {
			ok = true;
			s++;
			break;
		}
		if (c == '\\') {
			s++;
			switch (*s) {
			case 'n':
			case 't':
			case 'r':
			case 'b':
			case 'f':
				c = ' ';
				break;
			case 'u':
				if (strspn(s + 1, "0123456789abcdefABCDEF") < 4)
					goto out;
				{
					unsigned long u =
					    strtoul((char[]){s[1], s[2], s[3], s[4], 0}, NULL, 16);

					c = u >= 0x20 && u < 0x7f ? (char)u : '?';
				}
				s += 4;
				break;
			case '"':
			case '\\':
			case '/':
				c = *s;
				break;
			default:
				goto out;
			}
		}
		needs_quotes |= c == ' ' || c == '"' || c == '\\';
		ctl_buf_printf(&v, "%c", c);
	}
	if (ok) {
		const char *text = v.p != NULL ? v.p : "";

		if (quote && (needs_quotes || text[0] == '\0')) {
			ctl_buf_printf(out, "\"");
			for (const char *c = text; *c != '\0'; c++)
				ctl_buf_printf(out, "%s%c", *c == '"' || *c == '\\' ? "\\" : "",
				               *c);
			ctl_buf_printf(out, "\"");
		} else {
			ctl_buf_printf(out, "%s", text);
		}
		*p = s;
	}
out:
	ctl_buf_free(&v);
	return ok;
}

bool evlog_line_text(const char *line, struct ctl_buf *out)
{
	struct ctl_buf t = {0};
	const char *p = line;
	unsigned n = 0;
	bool ok = false;

	if (*p++ != '{')
		return false;
	for (;;) {
		struct ctl_buf key = {0};
		bool kok;

		if (*p != '"')
			break;
		p++;
		kok = evlog_text_string(&p, &key, false);
		if (!kok || *p++ != ':') {
			ctl_buf_free(&key);
			break;
		}
		/* ts, source, level and event are written bare, the rest key=value */
		if (n >= 4)
			ctl_buf_printf(&t, " %s=", key.p != NULL ? key.p : "");
		else if (n > 0)
			ctl_buf_printf(&t, " ");
		ctl_buf_free(&key);
		n++;
		if (*p == '"') {
			p++;
			if (!evlog_text_string(&p, &t, n > 4))
				break;
		} else {
			size_t len = strspn(p, "-+.0123456789eEtruefalsn");

			if (len == 0)
				break;
			ctl_buf_printf(&t, "%.*s", (int)len, p);
			p += len;
		}
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '}' && (p[1] == '\0' || p[1] == '\n'))
			ok = true;
		break;
	}
	if (ok && n >= 4 && !t.oom)
		ctl_buf_printf(out, "%s\n", t.p);
	ctl_buf_free(&t);
	return ok && n >= 4;
}
