/*
 * test_shm_stress.c - publish while reading, for real: one publisher thread
 * publishes blobs of varying size whose payload encodes their generation;
 * reader threads acquire, check checksum and payload, hold the snapshot for
 * a random short while and check again that the slot still carries the same
 * generation and bytes. A slot reused while held fails the second check.
 * Bounded: 2 seconds or 20000 publications, whichever comes first.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "result.h"
#include "shm.h"

#define STRESS_READERS 3
#define STRESS_MAX_PUBLISH 20000
#define STRESS_MAX_NS (2ull * 1000000000ull)
#define STRESS_MAX_WORDS 2048
#define STRESS_KIND 0x7e57 /* unknown to snap_validate: skipped, as a newer minor */
#define STRESS_SLOT (64u << 10)

struct stress {
	struct shm_map ctl;
	struct shm_map dp[STRESS_READERS];
	atomic_bool stop;
	atomic_uint_fast64_t published, again, retiring_seen;
	atomic_uint_fast64_t acquired[STRESS_READERS];
	char failure[STRESS_READERS + 1][512]; /* first failure of each thread */
};

static uint64_t stress_word(uint64_t gen, uint64_t i)
{
	return (gen * 0x9e3779b97f4a7c15ull) ^ (i * 0xbf58476d1ce4e5b9ull);
}

static size_t stress_blob_len(uint64_t words)
{
	return sizeof(struct snap_header) + sizeof(struct snap_section) + words * 8;
}

/* Header, one section of STRESS_KIND, words derived from the generation. */
static void stress_fill(uint8_t *buf, uint64_t gen, uint64_t words)
{
	struct snap_header *h = (struct snap_header *)buf;
	uint64_t *w = (uint64_t *)(buf + sizeof(*h) + sizeof(struct snap_section));

	memset(h, 0, sizeof(*h) + sizeof(struct snap_section));
	h->magic = SNAP_MAGIC;
	h->abi_major = SNAP_ABI_MAJOR;
	h->size = stress_blob_len(words);
	h->nsections = 1;
	h->sections[0].kind = STRESS_KIND;
	h->sections[0].count = (uint32_t)words;
	h->sections[0].offset = sizeof(*h) + sizeof(struct snap_section);
	h->sections[0].size = words * 8;
	for (uint64_t i = 0; i < words; i++)
		w[i] = stress_word(gen, i);
}

/* 0 if h is generation gen with the right payload, else a message. */
static int stress_check(const struct snap_header *h, uint64_t gen, char *why, size_t len)
{
	const uint64_t *w;
	uint64_t words;

	if (snap_validate(h, h->size <= STRESS_SLOT ? h->size : STRESS_SLOT, why, len) != 0)
		return -1;
	if (h->generation != gen) {
		snprintf(why, len, "header generation %llu, acquired %llu",
		         (unsigned long long)h->generation, (unsigned long long)gen);
		return -1;
	}
	words = h->sections[0].count;
	w = (const uint64_t *)((const uint8_t *)h + h->sections[0].offset);
	for (uint64_t i = 0; i < words; i++) {
		if (w[i] != stress_word(gen, i)) {
			snprintf(why, len, "generation %llu: payload word %llu wrong",
			         (unsigned long long)gen, (unsigned long long)i);
			return -1;
		}
	}
	return 0;
}

static uint64_t stress_rand(uint64_t *s)
{
	/* xorshift64: cheap, per thread, no shared state */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *stress_publisher(void *arg)
{
	struct stress *st = arg;
	uint8_t *buf = aligned_alloc(8, stress_blob_len(STRESS_MAX_WORDS));
	uint64_t seed = 0x1234567, deadline = shm_now_ns() + STRESS_MAX_NS;
	char err[256];

	if (buf == NULL) {
		snprintf(st->failure[STRESS_READERS], sizeof(st->failure[0]), "out of memory");
		atomic_store(&st->stop, true);
		return NULL;
	}
	while (atomic_load(&st->published) < STRESS_MAX_PUBLISH && shm_now_ns() < deadline) {
		/* single writer: the next generation is published_gen + 1 */
		uint64_t next = shm_published_gen(&st->ctl) + 1, gen = 0;
		uint64_t words = 1 + stress_rand(&seed) % STRESS_MAX_WORDS;
		int rc;

		stress_fill(buf, next, words);
		rc = shm_publish(&st->ctl, buf, stress_blob_len(words), &gen, err, sizeof(err));
		if (rc == PG_AGAIN) {
			atomic_fetch_add(&st->again, 1);
			sched_yield();
			continue;
		}
		if (rc != PG_OK || gen != next) {
			snprintf(st->failure[STRESS_READERS], sizeof(st->failure[0]),
			         "publish: rc %d gen %llu: %s", rc, (unsigned long long)gen, err);
			break;
		}
		atomic_fetch_add(&st->published, 1);
	}
	atomic_store(&st->stop, true);
	free(buf);
	return NULL;
}

struct reader_arg {
	struct stress *st;
	unsigned id; /* 0..STRESS_READERS-1, reader record id + 1 */
};

static void *stress_reader(void *arg)
{
	struct reader_arg *ra = arg;
	struct stress *st = ra->st;
	struct shm_map *m = &st->dp[ra->id];
	unsigned rec = 1 + ra->id;
	uint64_t seed = 0x9e3779b9u * (ra->id + 1), last = 0;
	char *fail = st->failure[ra->id];

	while (!atomic_load(&st->stop)) {
		uint64_t gen = 0, hold, now_gen;
		const struct snap_header *h = shm_acquire(m, rec, &gen);
		const struct shm_slot *slot = NULL;
		char why[200];

		if (h == NULL)
			continue;
		if (gen < last) {
			snprintf(fail, sizeof(st->failure[0]),
			         "generation went back: %llu after %llu", (unsigned long long)gen,
			         (unsigned long long)last);
			break;
		}
		last = gen;
		for (unsigned s = 0; s < SHM_NSLOTS; s++)
			if ((const uint8_t *)h ==
			    (const uint8_t *)m->region + m->region->slots[s].offset)
				slot = &m->region->slots[s];
		if (slot == NULL) {
			snprintf(fail, sizeof(st->failure[0]), "acquired pointer is not a slot");
			break;
		}
		if (stress_check(h, gen, why, sizeof(why)) != 0) {
			snprintf(fail, sizeof(st->failure[0]), "on acquire: %s", why);
			break;
		}
		/* hold it a random short while: 0..~50 us, sometimes a yield */
		hold = shm_now_ns() + stress_rand(&seed) % 50000;
		while (shm_now_ns() < hold)
			if (stress_rand(&seed) % 64 == 0)
				sched_yield();
		/*
		 * The writer may have marked the slot RETIRING and then found our
		 * announcement: it leaves the mark and moves on (shm.h), so RETIRING
		 * is legal here, another generation never is. The bytes decide.
		 */
		now_gen = atomic_load(&slot->gen);
		if (now_gen == SHM_SLOT_RETIRING)
			atomic_fetch_add(&st->retiring_seen, 1);
		else if (now_gen != gen) {
			snprintf(fail, sizeof(st->failure[0]),
			         "slot reused while held: gen %llu now"
			         " %llu",
			         (unsigned long long)gen, (unsigned long long)now_gen);
			break;
		}
		if (stress_check(h, gen, why, sizeof(why)) != 0) {
			snprintf(fail, sizeof(st->failure[0]), "after holding: %s", why);
			break;
		}
		atomic_fetch_add(&st->acquired[ra->id], 1);
		/* sometimes release, sometimes go straight to the next acquire */
		if (stress_rand(&seed) % 2)
			shm_release(m, rec);
	}
	shm_release(m, rec);
	if (fail[0] != '\0')
		atomic_store(&st->stop, true);
	return NULL;
}

static void test_publish_while_reading(void **state)
{
	struct stress *st = calloc(1, sizeof(*st));
	struct reader_arg ra[STRESS_READERS];
	pthread_t pub, rd[STRESS_READERS];
	char name[64], err[512];
	uint64_t total = 0;

	(void)state;
	assert_non_null(st);
	snprintf(name, sizeof(name), "pg-test-stress-%d", (int)getpid());
	shm_unlink_name(name);
	assert_int_equal(shm_open_control(name, STRESS_SLOT, &st->ctl, err, sizeof(err)), PG_OK);
	/* each reader maps the region on its own, as separate processes would */
	for (unsigned i = 0; i < STRESS_READERS; i++)
		assert_int_equal(shm_attach(name, &st->dp[i], err, sizeof(err)), PG_OK);

	for (unsigned i = 0; i < STRESS_READERS; i++) {
		ra[i] = (struct reader_arg){st, i};
		assert_int_equal(pthread_create(&rd[i], NULL, stress_reader, &ra[i]), 0);
	}
	assert_int_equal(pthread_create(&pub, NULL, stress_publisher, st), 0);
	assert_int_equal(pthread_join(pub, NULL), 0);
	for (unsigned i = 0; i < STRESS_READERS; i++)
		assert_int_equal(pthread_join(rd[i], NULL), 0);

	/* the name goes first, so a failure leaves nothing in /dev/shm */
	assert_int_equal(shm_unlink_name(name), PG_OK);
	for (unsigned i = 0; i <= STRESS_READERS; i++)
		if (st->failure[i][0] != '\0')
			fail_msg("thread %u: %s", i, st->failure[i]);
	for (unsigned i = 0; i < STRESS_READERS; i++) {
		assert_true(atomic_load(&st->acquired[i]) > 0);
		total += atomic_load(&st->acquired[i]);
	}
	print_message("# %llu publications, %llu AGAIN, %llu checked acquisitions, %llu held"
	              " slots seen RETIRING\n",
	              (unsigned long long)atomic_load(&st->published),
	              (unsigned long long)atomic_load(&st->again), (unsigned long long)total,
	              (unsigned long long)atomic_load(&st->retiring_seen));
	assert_true(atomic_load(&st->published) >= 100);
	assert_int_equal(shm_published_gen(&st->ctl), atomic_load(&st->published));

	for (unsigned i = 0; i < STRESS_READERS; i++)
		shm_detach(&st->dp[i]);
	shm_detach(&st->ctl);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_while_reading),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
