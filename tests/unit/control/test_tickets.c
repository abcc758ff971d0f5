/*
 * test_tickets.c - the inbound session-ticket keys: a table of steps
 * through time (first key, kept before the timeout, replaced at it with
 * the old one kept as previous, the clock stepping back, a shorter
 * timeout, 0 turning tickets off) over a deterministic random source; a
 * thousand updates and snapshot builds before the timeout keep the same
 * key; a failing or repeating random source changes nothing; and the
 * SNAP_SEC_TLS_TICKET_KEYS section: round trip and the corruptions
 * snap_validate must refuse with its exact message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "result.h"
#include "snap_build.h"
#include "tickets.h"

/* ---- random sources ---- */

/* Every byte drawn is the next value of a counter (never all zero). */
static int rng_counter(uint8_t *buf, size_t len, void *owner)
{
	uint32_t *c = owner;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(++*c % 255 + 1);
	return 0;
}

static int rng_fail(uint8_t *buf, size_t len, void *owner)
{
	(void)owner;
	memset(buf, 0x5a, len); /* garbage that must not be used */
	return -1;
}

/* The same bytes every time: a second key would repeat the first's name. */
static int rng_constant(uint8_t *buf, size_t len, void *owner)
{
	memset(buf, *(uint8_t *)owner, len);
	return 0;
}

/* ---- rotation through time ---- */

/*
 * cur and prev name keys by letter in order of creation ('A' the first
 * drawn, ...), '-' for none; a letter not seen before must be a new key.
 */
static const struct step {
	int64_t now;
	uint64_t timeout;
	int rc;
	uint32_t n;
	char cur, prev;
	int64_t cur_created;
} steps[] = {
    {1000, 3600, PG_OK, 1, 'A', '-', 1000},       /* the first key */
    {1000, 3600, PG_DECLINED, 1, 'A', '-', 1000}, /* called again at once */
    {4599, 3600, PG_DECLINED, 1, 'A', '-', 1000}, /* 3599 s old */
    {4600, 3600, PG_OK, 2, 'B', 'A', 4600},       /* 3600 s old: replaced, kept as previous */
    {4601, 3600, PG_DECLINED, 2, 'B', 'A', 4600},
    {8199, 3600, PG_DECLINED, 2, 'B', 'A', 4600},
    {8200, 3600, PG_OK, 2, 'C', 'B', 8200},        /* A dropped: a ticket lives 1..2 timeouts */
    {99999, 3600, PG_OK, 2, 'D', 'C', 99999},      /* long asleep: one step, not several */
    {99998, 3600, PG_OK, 2, 'E', 'D', 99998},      /* the clock stepped back: age unknown */
    {100057, 60, PG_DECLINED, 2, 'E', 'D', 99998}, /* a shorter timeout from a reload */
    {100058, 60, PG_OK, 2, 'F', 'E', 100058},
    {100059, 0, PG_OK, 0, '-', '-', 0}, /* 0: tickets off, keys forgotten */
    {100060, 0, PG_DECLINED, 0, '-', '-', 0},
    {100061, 120, PG_OK, 1, 'G', '-', 100061}, /* on again: a fresh key, no previous */
};

static void test_rotation(void **state)
{
	struct tickets t = {0};
	uint8_t names[26][16];
	bool seen[26] = {false};
	uint32_t counter = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];
		int rc = tickets_update(&t, s->now, s->timeout, rng_counter, &counter);

		if (rc != s->rc || t.n != s->n)
			fail_msg("step %zu (now %lld): rc %d n %u, want rc %d n %u", i,
			         (long long)s->now, rc, t.n, s->rc, s->n);
		for (int k = 0; k < 2; k++) {
			char label = k == 0 ? s->cur : s->prev;
			int l = label - 'A';

			if (label == '-')
				continue;
			if (!seen[l]) {
				/* a new key: its name is none of the earlier ones */
				for (int o = 0; o < 26; o++)
					if (seen[o] && memcmp(names[o], t.keys[k].name, 16) == 0)
						fail_msg("step %zu: key %c repeats key %c", i,
						         label, 'A' + o);
				memcpy(names[l], t.keys[k].name, 16);
				seen[l] = true;
			} else if (memcmp(names[l], t.keys[k].name, 16) != 0) {
				fail_msg("step %zu: keys[%d] is not key %c", i, k, label);
			}
		}
		if (s->n > 0 && t.keys[0].created != s->cur_created)
			fail_msg("step %zu: current created %lld, want %lld", i,
			         (long long)t.keys[0].created, (long long)s->cur_created);
		if (s->n == 0) {
			static const struct tickets zero;

			assert_memory_equal(&t, &zero, sizeof(t)); /* cleansed, not just n = 0 */
		}
	}
}

/* ---- reloads and policy changes keep the keys ---- */

static void test_thousand_publishes(void **state)
{
	static const char conf_text[] = "port0_device = net_tap0\nport0_address = 198.18.0.1/24\n";
	struct pg_conf *c = malloc(sizeof(*c));
	struct tickets t = {0}, first;
	uint32_t counter = 0, n;
	char err[512];

	(void)state;
	assert_non_null(c);
	assert_int_equal(
	    conf_parse_text("/test", conf_text, strlen(conf_text), c, err, sizeof(err)), PG_OK);
	/* postern.conf's default: Postfix's 3600 s */
	assert_int_equal(c->smtpd_tls.session_cache_timeout_ns, 3600 * UINT64_C(1000000000));
	assert_int_equal(tickets_update(&t, 1700000000, 3600, rng_counter, &counter), PG_OK);
	first = t;
	for (int i = 0; i < 1000; i++) {
		const struct snap_build_input in = {.conf = c, .tickets = &t};
		const struct snap_tls_ticket_key *k;
		void *blob;
		size_t len;

		/* every publication asks, as posternd does: nothing is due yet */
		assert_int_equal(
		    tickets_update(&t, 1700000000 + i * 3, 3600, rng_counter, &counter),
		    PG_DECLINED);
		assert_int_equal(snap_build_from(&in, &blob, &len, err, sizeof(err)), PG_OK);
		((struct snap_header *)blob)->checksum = snap_checksum(blob, len);
		assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
		k = snap_ticket_keys(blob, &n);
		assert_int_equal(n, 1);
		assert_memory_equal(k, &first.keys[0], sizeof(*k));
		free(blob);
	}
	assert_memory_equal(&t, &first, sizeof(t));
	free(c);
}

/* ---- a random source that fails changes nothing ---- */

static void test_random_failures(void **state)
{
	struct tickets t = {0}, before;
	uint32_t counter = 0;
	uint8_t fill = 0;

	(void)state;
	assert_int_equal(tickets_update(&t, 100, 3600, rng_fail, NULL), PG_ERROR);
	assert_int_equal(t.n, 0);
	/* all-zero names are refused (snap_validate would) */
	assert_int_equal(tickets_update(&t, 100, 3600, rng_constant, &fill), PG_ERROR);
	assert_int_equal(t.n, 0);
	fill = 0x11;
	assert_int_equal(tickets_update(&t, 100, 3600, rng_constant, &fill), PG_OK);
	before = t;
	/* due, but the new name would repeat the current one's */
	assert_int_equal(tickets_update(&t, 3700, 3600, rng_constant, &fill), PG_ERROR);
	assert_memory_equal(&t, &before, sizeof(t));
	assert_int_equal(tickets_update(&t, 3700, 3600, rng_fail, NULL), PG_ERROR);
	assert_memory_equal(&t, &before, sizeof(t));
	assert_int_equal(tickets_update(&t, 3700, 3600, rng_counter, &counter), PG_OK);
	assert_int_equal(t.n, 2);
	assert_memory_equal(&t.keys[1], &before.keys[0], sizeof(t.keys[1]));
}

/* OpenSSL's generator: distinct keys, not zero */
static void test_openssl_random(void **state)
{
	struct tickets t = {0};
	static const uint8_t zero[32];

	(void)state;
	assert_int_equal(tickets_update(&t, 100, 120, tickets_random, NULL), PG_OK);
	assert_int_equal(tickets_update(&t, 220, 120, tickets_random, NULL), PG_OK);
	assert_int_equal(t.n, 2);
	assert_memory_not_equal(t.keys[0].name, t.keys[1].name, 16);
	assert_memory_not_equal(t.keys[0].hmac_key, t.keys[1].hmac_key, 32);
	assert_memory_not_equal(t.keys[0].aes_key, zero, 32);
	assert_memory_not_equal(t.keys[0].hmac_key, t.keys[0].aes_key, 32);
	tickets_clear(&t);
	assert_int_equal(t.n, 0);
}

/* ---- the snapshot section ---- */

static void *build(const struct tickets *t, size_t *len)
{
	static const char conf_text[] = "port0_device = net_tap0\nport0_address = 198.18.0.1/24\n";
	struct pg_conf *c = malloc(sizeof(*c));
	char err[512];
	void *blob;

	assert_non_null(c);
	assert_int_equal(
	    conf_parse_text("/test", conf_text, strlen(conf_text), c, err, sizeof(err)), PG_OK);
	{
		const struct snap_build_input in = {.conf = c, .tickets = t};

		if (snap_build_from(&in, &blob, len, err, sizeof(err)) != PG_OK)
			fail_msg("%s", err);
	}
	((struct snap_header *)blob)->checksum = snap_checksum(blob, *len);
	free(c);
	return blob;
}

static struct snap_section *sec(struct snap_header *h, uint32_t kind)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == kind)
			return &h->sections[i];
	fail_msg("no section %u", kind);
	return NULL;
}

#define KEY(h, i)                                                                                  \
	(((struct snap_tls_ticket_key *)((uint8_t *)(h) +                                          \
	                                 sec(h, SNAP_SEC_TLS_TICKET_KEYS)->offset))[i])

static void k_three(struct snap_header *h)
{
	/* a third element that fits in the section (it runs into the next one) */
	sec(h, SNAP_SEC_TLS_TICKET_KEYS)->count = 3;
	sec(h, SNAP_SEC_TLS_TICKET_KEYS)->size = 3 * sizeof(struct snap_tls_ticket_key);
}
static void k_three_no_room(struct snap_header *h)
{
	sec(h, SNAP_SEC_TLS_TICKET_KEYS)->count = 3;
}
static void k_zero_name(struct snap_header *h)
{
	memset(KEY(h, 1).name, 0, sizeof(KEY(h, 1).name));
}
static void k_same_names(struct snap_header *h)
{
	memcpy(KEY(h, 1).name, KEY(h, 0).name, sizeof(KEY(h, 0).name));
}

static void test_section(void **state)
{
	static const struct {
		const char *name;
		void (*mutate)(struct snap_header *h);
		const char *want; /* %u: the section's index */
	} cases[] = {
	    {"3 keys", k_three, "ticket key section count 3, at most 2"},
	    {"3 keys without room", k_three_no_room,
	     "section %u (kind 28): 3 elements do not fit in 176 bytes"},
	    {"zero name", k_zero_name, "ticket key 1: name is all zero"},
	    {"same names", k_same_names, "ticket keys 0 and 1 have the same name"},
	};
	struct tickets t = {0};
	const struct snap_tls_ticket_key *k;
	uint32_t counter = 0, n;
	size_t len;
	void *good;
	char err[512];

	(void)state;
	assert_true(SNAP_ABI_MAJOR * 100 + SNAP_ABI_MINOR >=
	            100 + 8); /* 1.8 brought the ticket keys */
	assert_int_equal(sizeof(struct snap_tls_ticket_key), 88);

	/* no keys: the section is there, empty; tickets off */
	good = build(NULL, &len);
	assert_int_equal(snap_validate(good, len, err, sizeof(err)), 0);
	assert_null(snap_ticket_keys(good, &n));
	assert_int_equal(n, 0);
	assert_non_null(snap_section(good, SNAP_SEC_TLS_TICKET_KEYS, &n));
	free(good);

	/* two keys round-trip, current first */
	assert_int_equal(tickets_update(&t, 5000, 3600, rng_counter, &counter), PG_OK);
	assert_int_equal(tickets_update(&t, 9000, 3600, rng_counter, &counter), PG_OK);
	good = build(&t, &len);
	assert_int_equal(snap_validate(good, len, err, sizeof(err)), 0);
	k = snap_ticket_keys(good, &n);
	assert_int_equal(n, 2);
	assert_memory_equal(k, t.keys, sizeof(t.keys));
	assert_int_equal(k[0].created, 9000);
	assert_int_equal(k[1].created, 5000);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *blob = malloc(len);
		struct snap_header *h = blob;
		char want[256];

		assert_non_null(blob);
		memcpy(blob, good, len);
		cases[i].mutate(h);
		h->checksum = snap_checksum(blob, len);
		snprintf(want, sizeof(want), cases[i].want,
		         (unsigned)(sec(h, SNAP_SEC_TLS_TICKET_KEYS) - h->sections));
		err[0] = '\0';
		if (snap_validate(blob, len, err, sizeof(err)) == 0 || strcmp(err, want) != 0)
			fail_msg("case \"%s\":\n  want: %s\n  got:  %s", cases[i].name, want, err);
		free(blob);
	}

	/* a snapshot of minor 7 lacks the section: tickets off */
	{
		struct snap_header *h = good;

		h->abi_minor = 7;
		sec(h, SNAP_SEC_TLS_TICKET_KEYS)->kind = 79;
		h->checksum = snap_checksum(good, len);
		assert_int_equal(snap_validate(good, len, err, sizeof(err)), 0);
		assert_null(snap_ticket_keys(h, &n));
		assert_int_equal(n, 0);
	}
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rotation),        cmocka_unit_test(test_thousand_publishes),
	    cmocka_unit_test(test_random_failures), cmocka_unit_test(test_openssl_random),
	    cmocka_unit_test(test_section),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
