/*
 * test_evlog.c - posternd's JSON lines log: exact lines for payloads good
 * and bad (numbers, escaping, keys that are not keys, reserved names,
 * truncation), a drain of a real shared-memory region whose rings hold
 * records, drops, a corrupt ring and a kind from a newer dataplane, the
 * dataplane attached/lost lines, reopening after a rotation, and the text
 * `posternctl log` makes of a line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "evlog.h"
#include "result.h"

#define TS 1700000000123456789ull /* 2023-11-14T22:13:20.123Z */
#define TS_LEN 33                 /* {"ts":"2023-11-14T22:13:20.123Z", */

/* A head no sane producer can reach: one record more than a ring holds. */
#define CORRUPT_HEAD ((uint64_t)SHM_EV_CAPACITY + 1)

static char shm_name[64];
static char dir[] = "/tmp/test_evlog.XXXXXX";

static void test_timestamp(void **state)
{
	char buf[64];

	(void)state;
	evlog_timestamp(TS, buf, sizeof(buf));
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
	evlog_timestamp(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	evlog_ring_source(0, buf, sizeof(buf));
	assert_string_equal(buf, "dataplane");
	evlog_ring_source(3, buf, sizeof(buf));
	assert_string_equal(buf, "worker 2");
}

static const struct render_case {
	const char *name;
	const char *fields;
	bool truncated;
	const char *want; /* after "event":"e" */
} render_cases[] = {
    {"none", NULL, false, ""},
    {"empty", "", false, ""},
    {"number", "generation=5", false, ",\"generation\":5"},
    {"negative", "delta=-12", false, ",\"delta\":-12"},
    {"zero", "n=0", false, ",\"n\":0"},
    {"leading zero is text", "code=007", false, ",\"code\":\"007\""},
    {"too long for a double", "big=1234567890123456", false, ",\"big\":\"1234567890123456\""},
    {"15 digits", "max=123456789012345", false, ",\"max\":123456789012345"},
    {"empty value", "z=", false, ",\"z\":\"\""},
    {"escaping", "reason=bad \"x\"\\ y\n\t\x01\x7f", false,
     ",\"reason\":\"bad \\\"x\\\"\\\\ y\\n\\t\\u0001\\u007f\""},
    {"two fields", "port=0" EVRING_SEP "link=up", false, ",\"port\":0,\"link\":\"up\""},
    {"equals in value", "expr=a=b", false, ",\"expr\":\"a=b\""},
    {"empty piece skipped", "a=1" EVRING_SEP EVRING_SEP "b=2", false, ",\"a\":1,\"b\":2"},
    {"not key=value", "plain words", false, ",\"field_1\":\"plain words\""},
    {"uppercase key", "x=1" EVRING_SEP "Bad=2", false, ",\"x\":1,\"field_2\":\"Bad=2\""},
    {"reserved key", "event=forged" EVRING_SEP "level=error", false,
     ",\"field_1\":\"event=forged\",\"field_2\":\"level=error\""},
    {"empty key", "=3", false, ",\"field_1\":\"=3\""},
    {"truncated", "reason=abc", true, ",\"reason\":\"abc\",\"truncated\":true"},
};

static void test_render(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
		const struct render_case *t = &render_cases[i];
		struct ctl_buf b = {0};
		char want[512];

		snprintf(want, sizeof(want),
		         "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"source\":\"worker 0\","
		         "\"level\":\"info\",\"event\":\"e\"%s}\n",
		         t->want);
		evlog_render(&b, TS, "worker 0", "info", "e", t->fields, t->truncated);
		if (b.p == NULL || strcmp(b.p, want) != 0)
			fail_msg("case \"%s\":\n  want: %s  got:  %s", t->name, want,
			         b.p != NULL ? b.p : "(null)");
		ctl_buf_free(&b);
	}
}

/* The file as lines; *n set. */
static char **read_lines(const char *path, size_t *n)
{
	static char text[1 << 16];
	static char *lines[256];
	FILE *f = fopen(path, "r");
	size_t len;

	assert_non_null(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	*n = 0;
	for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL && *n < 256; p = nl + 1) {
		*nl = '\0';
		lines[(*n)++] = p;
	}
	return lines;
}

static void assert_line(const char *got, const char *want_after_ts)
{
	if (strlen(got) < TS_LEN || strncmp(got, "{\"ts\":\"", 7) != 0 ||
	    strcmp(got + TS_LEN, want_after_ts) != 0)
		fail_msg("\n  want: {\"ts\":\"...\",%s\n  got:  %s", want_after_ts, got);
}

static void test_drain(void **state)
{
	struct shm_map m;
	struct shm_region *rg;
	struct evlog l;
	struct evring_record *w;
	char path[256], err[512];
	char **lines;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/sub/dir/postern.log", dir);
	assert_int_equal(evlog_open(&l, path, -1, err, sizeof(err)), PG_OK); /* parents made */
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &m, err, sizeof(err)), PG_OK);
	rg = m.region;

	/* the dataplane's main lcore, two workers; one ring dropped 2 */
	assert_true(evring_printf(shm_evring(rg, 0), EV_PORT_LINK, EVRING_INFO, TS,
	                          "port=0" EVRING_SEP "link=up" EVRING_SEP "speed_mbps=10000"));
	assert_true(
	    evring_printf(shm_evring(rg, 1), EV_SNAPSHOT_ADOPTED, EVRING_INFO, TS, "generation=4"));
	assert_true(evring_printf(shm_evring(rg, 1), EV_SNAPSHOT_REFUSED, EVRING_ERROR,
	                          TS + 1000000,
	                          "generation=5" EVRING_SEP "reason=checksum \"mismatch\""));
	atomic_store(&shm_evring(rg, 1)->dropped, 2);
	w = evring_reserve(shm_evring(rg, 2));
	assert_non_null(w);
	memset(w, 0, sizeof(*w));
	w->ts_ns = TS;
	w->kind = 999; /* a newer dataplane */
	w->level = 77;
	snprintf(w->text, sizeof(w->text), "what=new");
	w->len = 8;
	evring_commit(shm_evring(rg, 2));
	/* more records than the ring holds: impossible, so corrupt */
	atomic_store(&shm_evring(rg, 3)->head, CORRUPT_HEAD);

	assert_int_equal(evlog_drain(&l, rg), 4);
	assert_int_equal(evlog_drain(&l, rg), 0); /* nothing twice, drops reported once */
	evlog_event(&l, EVRING_INFO, "config published", "generation=%d" EVRING_SEP "change=%s", 6,
	            "reload");

	/* a dataplane comes, then fails */
	atomic_store(&rg->dp.pid, (int32_t)getpid());
	atomic_store(&rg->dp.state, SHM_DP_READY);
	evlog_drain(&l, rg);
	evlog_drain(&l, rg); /* no change: nothing */
	snprintf(rg->dp.message, sizeof(rg->dp.message), "port 0: link gone");
	atomic_store(&rg->dp.state, SHM_DP_FAILED);
	evlog_drain(&l, rg);

	lines = read_lines(path, &n);
	assert_int_equal(n, 9);
	assert_string_equal(
	    lines[0], "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"source\":\"dataplane\",\"level\":"
	              "\"info\",\"event\":\"port link\",\"port\":0,\"link\":\"up\","
	              "\"speed_mbps\":10000}");
	assert_string_equal(
	    lines[1], "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"source\":\"worker 0\",\"level\":"
	              "\"info\",\"event\":\"snapshot adopted\",\"generation\":4}");
	assert_string_equal(lines[2],
	                    "{\"ts\":\"2023-11-14T22:13:20.124Z\",\"source\":\"worker 0\","
	                    "\"level\":\"error\",\"event\":\"snapshot refused\","
	                    "\"generation\":5,\"reason\":\"checksum \\\"mismatch\\\"\"}");
	assert_line(lines[3], "\"source\":\"worker 0\",\"level\":\"warning\",\"event\":\"events "
	                      "dropped\",\"count\":2}");
	assert_string_equal(
	    lines[4], "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"source\":\"worker 1\",\"level\":"
	              "\"unknown\",\"event\":\"unknown\",\"kind\":999,\"what\":\"new\"}");
	{
		char want[256];

		snprintf(want, sizeof(want),
		         "\"source\":\"worker 2\",\"level\":\"error\",\"event\":\"event ring "
		         "corrupt\",\"lost\":%llu}",
		         (unsigned long long)CORRUPT_HEAD);
		assert_line(lines[5], want);
	}
	assert_line(lines[6], "\"source\":\"posternd\",\"level\":\"info\",\"event\":\"config "
	                      "published\",\"generation\":6,\"change\":\"reload\"}");
	{
		char want[256];

		snprintf(
		    want, sizeof(want),
		    "\"source\":\"posternd\",\"level\":\"info\",\"event\":\"dataplane attached\","
		    "\"pid\":%d,\"state\":\"ready\"}",
		    (int)getpid());
		assert_line(lines[7], want);
		snprintf(want, sizeof(want),
		         "\"source\":\"posternd\",\"level\":\"error\",\"event\":\"dataplane lost\","
		         "\"pid\":%d,\"state\":\"failed\",\"message\":\"port 0: link gone\"}",
		         (int)getpid());
		assert_line(lines[8], want);
	}
	assert_int_equal(l.lines, 9);

	/* logrotate: rename, then SIGUSR1 → a new file at the same path */
	{
		char rotated[300];

		snprintf(rotated, sizeof(rotated), "%s.1", path);
		assert_int_equal(rename(path, rotated), 0);
		assert_int_equal(evlog_reopen(&l, err, sizeof(err)), PG_OK);
		evlog_event(&l, EVRING_INFO, "log reopened", NULL);
		lines = read_lines(path, &n);
		assert_int_equal(n, 1);
		assert_line(lines[0], "\"source\":\"posternd\",\"level\":\"info\",\"event\":\"log "
		                      "reopened\"}");
		lines = read_lines(rotated, &n);
		assert_int_equal(n, 9);
		unlink(rotated);
	}
	evlog_close(&l);
	unlink(path);
	shm_detach(&m);
	shm_unlink_name(shm_name);
}

static void test_open_errors(void **state)
{
	struct evlog l;
	char err[512];

	(void)state;
	assert_int_equal(evlog_open(&l, "/proc/nonexistent/x.log", -1, err, sizeof(err)), PG_ERROR);
	assert_string_equal(err, "log_file /proc/nonexistent/x.log: cannot create its directory: No"
	                         " such file or directory");
	assert_int_equal(l.fd, -1);
	evlog_event(&l, EVRING_INFO, "lost", NULL); /* no file: counted, no crash */
	assert_int_equal(l.write_errors, 1);
}

static void test_line_text(void **state)
{
	static const struct {
		const char *line, *want;
	} cases[] = {
	    {"{\"ts\":\"2023-11-14T22:13:20.123Z\",\"source\":\"worker 0\",\"level\":\"info\","
	     "\"event\":\"snapshot adopted\",\"generation\":4}",
	     "2023-11-14T22:13:20.123Z worker 0 info snapshot adopted generation=4\n"},
	    {"{\"ts\":\"T\",\"source\":\"posternd\",\"level\":\"error\",\"event\":\"config "
	     "refused\","
	     "\"generation\":1,\"reason\":\"/etc/postern/postern.conf:7: unknown key \\\"x\\\"\","
	     "\"empty\":\"\",\"truncated\":true}\n",
	     "T posternd error config refused generation=1 reason=\"/etc/postern/postern.conf:7:"
	     " unknown key \\\"x\\\"\" empty=\"\" truncated=true\n"},
	    {"{\"ts\":\"T\",\"source\":\"s\",\"level\":\"l\",\"event\":\"e\",\"x\":"
	     "\"a\\u0001\\u0041\"}",
	     "T s l e x=a?A\n"},
	};
	static const char *const bad[] = {
	    "",
	    "not json",
	    "{\"ts\":\"T\"",
	    "{\"ts\":\"T\",\"source\":\"s\"}",
	    "{\"ts\":\"T\",\"source\":\"s\",\"level\":\"l\",\"event\":\"e\",\"x\":{}}",
	    "{\"ts\":\"T\",\"source\":\"s\",\"level\":\"l\",\"event\":\"e\"} trailing",
	    "{\"ts\":\"T\\q\",\"source\":\"s\",\"level\":\"l\",\"event\":\"e\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ctl_buf b = {0};

		assert_true(evlog_line_text(cases[i].line, &b));
		assert_string_equal(b.p, cases[i].want);
		ctl_buf_free(&b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ctl_buf b = {0};

		if (evlog_line_text(bad[i], &b))
			fail_msg("accepted \"%s\"", bad[i]);
		assert_null(b.p);
	}
}

static int setup(void **state)
{
	(void)state;
	snprintf(shm_name, sizeof(shm_name), "pg-test-evlog-%d", (int)getpid());
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timestamp), cmocka_unit_test(test_render),
	    cmocka_unit_test(test_drain),     cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_line_text),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
