/*
 * test_events.c - the dataplane → log path without a NIC: a worker's
 * dp_event and the main lcore's dp_event_main write into the rings of a
 * real shared-memory region (created as posternd creates it), and
 * posternd's drain turns them into the JSON lines of its log.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "events.h"
#include "evlog.h"
#include "result.h"
#include "shm.h"
#include "worker.h"

/* The line without its "ts" member (the time is the real clock). */
static const char *after_ts(const char *line)
{
	const char *p = strstr(line, "\",\"source\"");

	assert_non_null(p);
	assert_int_equal(strncmp(line, "{\"ts\":\"", 7), 0);
	return p + 2;
}

static void test_worker_events_reach_the_log(void **state)
{
	char name[64], dir[] = "/tmp/test_events.XXXXXX", path[128], err[512], line[1024];
	struct shm_map control, dp;
	struct worker *w = aligned_alloc(64, sizeof(*w));
	struct evlog l;
	FILE *f;
	const char *want[] = {
	    "\"source\":\"dataplane\",\"level\":\"info\",\"event\":\"port link\",\"port\":0,"
	    "\"link\":\"up\"}",
	    "\"source\":\"worker 2\",\"level\":\"info\",\"event\":\"worker started\",\"lcore\":5}",
	    "\"source\":\"worker 2\",\"level\":\"info\",\"event\":\"snapshot adopted\","
	    "\"generation\":12}",
	    "\"source\":\"worker 2\",\"level\":\"error\",\"event\":\"snapshot refused\","
	    "\"generation\":13,\"reason\":\"section 4 \\\"routes\\\" out of range\"}",
	    "\"source\":\"worker 2\",\"level\":\"warning\",\"event\":\"events dropped\","
	    "\"count\":1}",
	};
	unsigned n = 0, storm = 0;

	(void)state;
	assert_non_null(w);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/postern.log", dir);
	snprintf(name, sizeof(name), "pg-test-events-%d", (int)getpid());
	assert_int_equal(shm_open_control(name, 64 << 10, &control, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(name, &dp, err, sizeof(err)), PG_OK);
	assert_int_equal(evlog_open(&l, path, -1, err, sizeof(err)), PG_OK);

	worker_init_detached(w, 2, 4, NULL);
	w->shm = &dp;
	w->reader = 1 + 2;
	w->lcore = 5;
	assert_true(dp_event_main(&dp, EV_PORT_LINK, "port=%u" EVRING_SEP "link=%s", 0, "up"));
	assert_true(dp_event(w, EV_WORKER_STARTED, "lcore=%u", w->lcore));
	assert_true(dp_event(w, EV_SNAPSHOT_ADOPTED, "generation=%" PRIu64, (uint64_t)12));
	assert_true(dp_event(w, EV_SNAPSHOT_REFUSED, "generation=%d" EVRING_SEP "reason=%s", 13,
	                     "section 4 \"routes\" out of range"));
	/* a storm: the worker never waits, the ring keeps what fits */
	for (unsigned i = 3; i < SHM_EV_CAPACITY; i++)
		assert_true(dp_event(w, EV_SNAPSHOT_ADOPTED, "generation=%u", 1000 + i));
	assert_false(dp_event(w, EV_SNAPSHOT_ADOPTED, "generation=1"));

	/* a detached worker (no region) is a no-op, not a crash */
	{
		struct worker *lone = aligned_alloc(64, sizeof(*lone));

		worker_init_detached(lone, 0, 1, NULL);
		assert_false(dp_event(lone, EV_WORKER_STARTED, "lcore=0"));
		free(lone);
	}

	assert_int_equal(evlog_drain(&l, control.region), 1 + SHM_EV_CAPACITY);
	evlog_close(&l);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		/* the storm's adoptions, in order, between the first records and the drop line */
		if (n == 4 && 3 + storm < SHM_EV_CAPACITY) {
			char adopted[128];

			snprintf(adopted, sizeof(adopted),
			         "\"source\":\"worker 2\",\"level\":\"info\",\"event\":\"snapshot "
			         "adopted\",\"generation\":%u}",
			         1000 + 3 + storm);
			assert_string_equal(after_ts(line), adopted);
			storm++;
			continue;
		}
		if (n >= sizeof(want) / sizeof(want[0]))
			fail_msg("extra line %s", line);
		assert_string_equal(after_ts(line), want[n]);
		n++;
	}
	fclose(f);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	assert_int_equal(storm, SHM_EV_CAPACITY - 3); /* the ring full: 3 records, then these */

	unlink(path);
	rmdir(dir);
	shm_detach(&dp);
	shm_detach(&control);
	shm_unlink_name(name);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worker_events_reach_the_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
