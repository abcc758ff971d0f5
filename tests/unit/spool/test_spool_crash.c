/*
 * test_spool_crash.c - crash consistency with real fdatasync: a child
 * process appends and commits messages (and delivers some) as fast as it
 * can, reporting through a pipe every commit whose callback said "durable"
 * and every delivery it starts and whose sync completed; the parent kills it with SIGKILL
 * at a random moment, replays the spool, and checks that every reported
 * commit is there byte for byte (unless its delivery was reported durable,
 * then it must be gone). Several rounds on the same directory, so replays
 * also meet the torn tails of earlier runs.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "spool_test.h"

#define ROUNDS 8
#define MAX_MSGS 200000

static const char *const rcpts2[] = {"one@example.net", "two@example.org"};

struct report {
	uint64_t type; /* 'C' committed, 'I' delivery started, 'D' delivered and synced */
	uint64_t id;
	uint64_t seed;
	uint64_t len;
};

struct child {
	int fd;
	uint64_t next_seed;
};

struct pending {
	struct child *c;
	uint64_t seed, len;
	struct commit_result cr;
};

static void report(int fd, uint64_t type, uint64_t id, uint64_t seed, uint64_t len)
{
	struct report r = {type, id, seed, len};

	/* < PIPE_BUF: atomic; the parent reads whole records */
	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

static void child_commit_cb(struct spool_msg *m, int result, int err, void *owner)
{
	struct pending *p = owner;

	(void)err;
	if (result == PG_OK)
		report(p->c->fd, 'C', spool_msg_id(m), p->seed, p->len);
	free(p);
}

struct dsync {
	struct child *c;
	uint64_t id;
};

static void child_sync_cb(int result, int err, void *owner)
{
	struct dsync *d = owner;

	(void)err;
	if (result == PG_OK)
		report(d->c->fd, 'D', d->id, 0, 0);
	free(d);
}

static void child_run(const char *dir, int fd, unsigned round)
{
	struct spool_config cfg = cfg_for(dir, NULL);
	struct child c = {.fd = fd, .next_seed = (uint64_t)round << 32};
	struct spool *sp;
	uint8_t *body = malloc(70000);
	unsigned x = 12345 + round;

	cfg.segment_size = 512u << 10;
	cfg.chunk_size = 16u << 10;
	cfg.batch_size = 64u << 10;
	if (spool_open(&cfg, &sp, NULL) != PG_OK)
		_exit(2);
	for (;;) {
		x = x * 1103515245u + 12345u;
		if ((x >> 16) % 5 != 0 && spool_queue_count(sp) < 400) {
			struct pending *p = calloc(1, sizeof(*p));
			struct spool_envelope env = {
			    .sender = "s@x", .rcpts = rcpts2, .nrcpt = 1 + (x >> 20) % 2};
			struct spool_msg *m;
			int r;

			p->c = &c;
			p->seed = c.next_seed++;
			p->len = (x >> 8) % 3 == 0 ? (x >> 4) % 65000 : (x >> 4) % 3000;
			body_fill(body, p->len, p->seed);
			while ((r = spool_msg_begin(sp, &env, &m)) == PG_AGAIN)
				spool_poll(sp);
			if (r != PG_OK)
				_exit(4);
			for (uint64_t off = 0; off < p->len;) {
				uint64_t n = p->len - off < 1400 ? p->len - off : 1400;

				r = spool_msg_append(sp, m, body + off, n);
				if (r == PG_AGAIN) {
					spool_poll(sp);
					continue;
				}
				if (r != PG_OK)
					_exit(5);
				off += n;
				if ((x >> 12) % 7 == 0)
					spool_poll(sp); /* interleave with other work */
			}
			while ((r = spool_msg_commit(sp, m, child_commit_cb, p)) == PG_AGAIN)
				spool_poll(sp);
			if (r != PG_OK)
				_exit(6);
		} else if (spool_queue_first(sp) != NULL) {
			struct spool_msg *m = spool_queue_first(sp);
			struct dsync *d = calloc(1, sizeof(*d));

			d->c = &c;
			d->id = spool_msg_id(m);
			if (spool_msg_nrcpt(m) == 2 && !spool_msg_rcpt_done(m, 0)) {
				spool_msg_delivered(sp, m, 0); /* one recipient now... */
				free(d);
			} else {
				/* may be gone after a crash from here on, even before the sync */
				report(fd, 'I', d->id, 0, 0);
				spool_msg_delivered(sp, m, SPOOL_RCPT_ALL); /* ...then the rest */
				if (spool_sync(sp, child_sync_cb, d) != PG_OK)
					_exit(7);
			}
		}
		spool_poll(sp);
	}
}

struct expect {
	uint64_t id, seed, len;
	bool delivering; /* delivery started: present or not, both are right */
	bool delivered;  /* delivery synced: must be gone */
};

static struct expect *find(struct expect *e, unsigned n, uint64_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].id == id)
			return &e[i];
	return NULL;
}

static void take_reports(int fd, struct expect *exp, unsigned *nexp, unsigned *reported)
{
	struct report r;

	while (read(fd, &r, sizeof(r)) == sizeof(r)) {
		struct expect *e;

		(*reported)++;
		if (r.type == 'C') {
			assert_true(*nexp < MAX_MSGS);
			assert_null(find(exp, *nexp, r.id)); /* ids never reused */
			exp[(*nexp)++] = (struct expect){.id = r.id, .seed = r.seed, .len = r.len};
			continue;
		}
		e = find(exp, *nexp, r.id);
		/* one a previous child committed but was killed before reporting */
		if (e == NULL)
			continue;
		if (r.type == 'I')
			e->delivering = true;
		else
			e->delivered = true;
	}
}

static void test_kill9(void **state)
{
	char *dir = tdir_new();
	struct expect *exp = calloc(MAX_MSGS, sizeof(*exp));
	unsigned nexp = 0, total_checked = 0, total_deliv = 0;
	unsigned seed = (unsigned)time(NULL);

	(void)state;
	if (getenv("SPOOL_CRASH_SEED") != NULL)
		seed = (unsigned)atoi(getenv("SPOOL_CRASH_SEED"));
	print_message("# crash test seed %u (SPOOL_CRASH_SEED to repeat)\n", seed);
	srand(seed);
	for (unsigned round = 0; round < ROUNDS; round++) {
		int pfd[2];
		pid_t pid;
		struct timespec ts;
		struct spool_config cfg = cfg_for(dir, NULL);
		struct spool_replay_report rep;
		struct spool *sp;
		unsigned present = 0, reported = 0;
		long ms = 30 + rand() % 250;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_run(dir, pfd[1], round);
			_exit(0);
		}
		close(pfd[1]);
		/* read the reports while the child runs: a full pipe would stall it */
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		{
			uint64_t end = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
			               (uint64_t)ms;

			for (;;) {
				struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
				uint64_t now;

				clock_gettime(CLOCK_MONOTONIC, &ts);
				now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
				if (now >= end)
					break;
				if (poll(&pf, 1, (int)(end - now)) > 0)
					take_reports(pfd[0], exp, &nexp, &reported);
			}
		}
		kill(pid, SIGKILL);
		{
			int st;

			assert_int_equal(waitpid(pid, &st, 0), pid);
			assert_true(WIFSIGNALED(st)); /* it did not die of its own */
		}
		take_reports(pfd[0], exp, &nexp, &reported);
		close(pfd[0]);

		cfg.segment_size = 512u << 10;
		assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
		assert_int_equal(rep.corrupt + rep.damaged + rep.bad_segments, 0);
		for (unsigned i = 0; i < nexp; i++) {
			struct spool_msg *m = spool_msg_lookup(sp, exp[i].id);

			if (exp[i].delivered) {
				assert_null(m); /* delivered and synced: never again */
				continue;
			}
			if (m == NULL && exp[i].delivering)
				continue;
			/* acknowledged: must be there, byte for byte */
			if (m == NULL)
				fail_msg("round %u: acknowledged message %016llx lost", round,
				         (unsigned long long)exp[i].id);
			assert_true(body_matches(sp, m, exp[i].seed, exp[i].len));
			present++;
		}
		total_checked += present;
		print_message("# round %u: killed after %ld ms, %u reports, %u acknowledged "
		              "messages verified, %u queued, %u torn tails\n",
		              round, ms, reported, present, rep.queued, rep.torn);
		spool_close(sp);
	}
	for (unsigned i = 0; i < nexp; i++)
		total_deliv += exp[i].delivered;
	print_message("# crash test: %u commits reported, %u deliveries synced, %u checks\n", nexp,
	              total_deliv, total_checked);
	assert_true(nexp > 0);
	free(exp);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill9),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
