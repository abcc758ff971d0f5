/*
 * test_tlsstats.c - posternd's count of deliveries per recipient domain and
 * TLS outcome: "delivery attempt" texts as the dataplane writes them
 * (uppercase domains, a quoted local part holding '@', fields missing, an
 * address without '@', outcomes unknown or cut short), the domain kept
 * printable and bounded, the table sorted and capped at 1000 domains with
 * "other" after that, and evlog_drain counting the records it drains.
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
#include "tlsstats.h"

#define TS 1700000000123456789ull

static char shm_name[64];

/* A record text with every field of outbound.c's ob_event_result. */
static void delivery_text(char *buf, size_t len, const char *to, const char *status,
                          const char *outcome)
{
	snprintf(buf, len,
	         "queue_id=0000018BD1C2A3F4" EVRING_SEP "to=%s" EVRING_SEP
	         "relay=mx1.example.net[192.0.2.25]:25" EVRING_SEP "status=%s" EVRING_SEP
	         "dsn=2.0.0" EVRING_SEP "reply=250 2.0.0 Ok: queued as 4TzQ1X" EVRING_SEP
	         "tls_policy=tls_policy:12" EVRING_SEP "tls_level=verify" EVRING_SEP
	         "tls=TLSv1.3" EVRING_SEP "tls_cipher=TLS_AES_256_GCM_SHA384" EVRING_SEP
	         "tls_verdict=verified" EVRING_SEP "peer_subject=CN=mx1.example.net" EVRING_SEP
	         "peer_fingerprint=SHA256:3f:a1:09" EVRING_SEP "tls_outcome=%s" EVRING_SEP
	         "tls_note=",
	         to, status, outcome);
}

static const struct tlsstats_row *row(const struct tlsstats *t, const char *domain)
{
	for (uint32_t i = 0; i < t->nrows; i++)
		if (strcmp(t->rows[i].domain, domain) == 0)
			return &t->rows[i];
	return NULL;
}

static uint64_t count(const struct tlsstats *t, const char *domain, enum tlsstats_outcome o)
{
	const struct tlsstats_row *r = row(t, domain);

	return r != NULL ? r->count[o] : 0;
}

static void test_outcome_names(void **state)
{
	static const char *const names[] = {"verified", "fingerprint", "encrypted", "plaintext",
	                                    "deferred", "would_defer", "not_sent"};

	(void)state;
	assert_int_equal(TLSSTATS__COUNT, 7);
	for (unsigned i = 0; i < 7; i++) {
		assert_string_equal(tlsstats_outcome_name(i), names[i]);
		assert_int_equal(tlsstats_outcome_parse(names[i], strlen(names[i])), (int)i);
	}
	assert_string_equal(tlsstats_outcome_name(7), "unknown");
	/* records of a dataplane from before not_sent said "none" */
	assert_int_equal(tlsstats_outcome_parse("none", 4), TLSSTATS_NOT_SENT);
	assert_int_equal(tlsstats_outcome_parse("verif", 5), -1);
	assert_int_equal(tlsstats_outcome_parse("verifiedx", 9), -1);
	assert_int_equal(tlsstats_outcome_parse("VERIFIED", 8), -1);
	assert_int_equal(tlsstats_outcome_parse("", 0), -1);
}

static const struct event_case {
	const char *name;
	const char *text; /* NULL: delivery_text(to, status, outcome) */
	const char *to, *status, *outcome;
	int want;
	const char *domain; /* where it is counted */
	enum tlsstats_outcome as;
} event_cases[] = {
    {"sent, verified", NULL, "alice@example.com", "sent", "verified", PG_OK, "example.com",
     TLSSTATS_VERIFIED},
    {"uppercase domain", NULL, "Bob@Example.COM", "sent", "verified", PG_OK, "example.com",
     TLSSTATS_VERIFIED},
    {"deferred", NULL, "carol@mx.test", "deferred", "deferred", PG_OK, "mx.test",
     TLSSTATS_DEFERRED},
    {"no route: outcome not_sent", NULL, "dave@unrouted.example", "deferred", "not_sent", PG_OK,
     "unrouted.example", TLSSTATS_NOT_SENT},
    {"older dataplane: none", NULL, "dave@unrouted.example", "deferred", "none", PG_OK,
     "unrouted.example", TLSSTATS_NOT_SENT},
    {"quoted local part with @", NULL, "\"a@b\"@Quoted.Example", "sent", "encrypted", PG_OK,
     "quoted.example", TLSSTATS_ENCRYPTED},
    {"address literal", NULL, "root@[192.0.2.1]", "bounced", "plaintext", PG_OK, "[192.0.2.1]",
     TLSSTATS_PLAINTEXT},
    {"testing mode", NULL, "erin@Lax.Example", "sent", "would_defer", PG_OK, "lax.example",
     TLSSTATS_WOULD_DEFER},
    {"fingerprint", NULL, "frank@pinned.example", "sent", "fingerprint", PG_OK, "pinned.example",
     TLSSTATS_FINGERPRINT},
    {"address without @", NULL, "postmaster", "bounced", "none", PG_DECLINED, NULL, 0},
    {"nothing after @", NULL, "user@", "bounced", "none", PG_DECLINED, NULL, 0},
    {"unknown outcome", NULL, "x@example.com", "sent", "quantum", PG_DECLINED, NULL, 0},
    {"outcome cut short", NULL, "x@example.com", "sent", "verif", PG_DECLINED, NULL, 0},
    {"empty outcome", NULL, "x@example.com", "sent", "", PG_DECLINED, NULL, 0},
    {"no to=", "status=sent" EVRING_SEP "tls_outcome=verified", NULL, NULL, NULL, PG_DECLINED, NULL,
     0},
    {"no tls_outcome=", "to=x@example.com" EVRING_SEP "status=sent" EVRING_SEP "tls=TLSv1.3", NULL,
     NULL, NULL, PG_DECLINED, NULL, 0},
    {"record truncated before tls_outcome",
     "to=x@example.com" EVRING_SEP "status=sent" EVRING_SEP "tls_outc", NULL, NULL, NULL,
     PG_DECLINED, NULL, 0},
    {"empty text", "", NULL, NULL, NULL, PG_DECLINED, NULL, 0},
    /* keys match whole: other fields that hold "to=" or end in "outcome" do not count */
    {"look-alike fields",
     "reply=250 sent to=evil@evil.example" EVRING_SEP "xtls_outcome=plaintext" EVRING_SEP
     "tls_outcome=encrypted" EVRING_SEP "to=g@Real.Example" EVRING_SEP "to=h@second.example",
     NULL, NULL, NULL, PG_OK, "real.example", TLSSTATS_ENCRYPTED},
};

static void case_text(const struct event_case *c, char *text, size_t len)
{
	if (c->text == NULL)
		delivery_text(text, len, c->to, c->status, c->outcome);
	else
		snprintf(text, len, "%s", c->text);
}

static void test_events(void **state)
{
	struct tlsstats t;
	char text[EVRING_TEXT_MAX];
	uint64_t skipped = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(event_cases) / sizeof(event_cases[0]); i++) {
		const struct event_case *c = &event_cases[i];
		uint64_t before[TLSSTATS__COUNT] = {0};
		int rc;

		assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
		case_text(c, text, sizeof(text));
		rc = tlsstats_add_event(&t, text);
		if (rc != c->want)
			fail_msg("%s: %s, want %s", c->name, pg_result_name(rc),
			         pg_result_name(c->want));
		if (c->want == PG_OK) {
			assert_int_equal(t.nrows, 1);
			assert_string_equal(t.rows[0].domain, c->domain);
			before[c->as] = 1;
			assert_memory_equal(t.rows[0].count, before, sizeof(before));
			assert_int_equal(t.skipped, 0);
		} else {
			if (t.nrows != 0)
				fail_msg("%s: counted under \"%s\"", c->name, t.rows[0].domain);
			assert_int_equal(t.skipped, 1);
		}
		tlsstats_free(&t);
	}

	/* all of them in one table: rows by domain, counts add up */
	assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
	for (size_t i = 0; i < sizeof(event_cases) / sizeof(event_cases[0]); i++) {
		case_text(&event_cases[i], text, sizeof(text));
		tlsstats_add_event(&t, text);
		skipped += event_cases[i].want != PG_OK;
	}
	assert_int_equal(t.skipped, skipped);
	assert_int_equal(count(&t, "example.com", TLSSTATS_VERIFIED), 2);
	assert_int_equal(count(&t, "unrouted.example", TLSSTATS_NOT_SENT), 2);
	assert_int_equal(t.nrows, 8);
	for (uint32_t i = 1; i < t.nrows; i++)
		assert_true(strcmp(t.rows[i - 1].domain, t.rows[i].domain) < 0);
	assert_string_equal(t.rows[0].domain, "[192.0.2.1]");
	assert_string_equal(t.rows[7].domain, "unrouted.example");
	tlsstats_free(&t);
}

/* What the table keeps of a domain: lower case, printable, at most 255 bytes. */
static void test_domain_kept(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"MiXeD.Example.COM", "mixed.example.com"},
	    {"b\303\234cher.example", "b\303\234cher.example"}, /* UTF-8 kept, not folded */
	    {"tab\there.example", "tab?here.example"},
	    {"sp ace.example", "sp?ace.example"},
	    {"del\x7f.example", "del?.example"},
	    {"bad\377byte.example", "bad?byte.example"},
	    {"overlong\xc0\xaf.example", "overlong??.example"},
	    {"surrogate\xed\xa0\x80.example", "surrogate???.example"},
	    {"cut\xe2\x82", "cut??"}, /* a sequence cut short */
	    {"four\xf0\x9f\x93\xa7.example", "four\xf0\x9f\x93\xa7.example"},
	};
	struct tlsstats t;
	char in[400], want[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
		assert_int_equal(tlsstats_add(&t, cases[i].in, strlen(cases[i].in), "none", 4),
		                 PG_OK);
		assert_int_equal(t.nrows, 1);
		if (strcmp(t.rows[0].domain, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\"", i, t.rows[0].domain);
		tlsstats_free(&t);
	}

	/* 300 bytes: the first 255 */
	assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
	memset(in, 'A', 300);
	memset(want, 'a', 255);
	want[255] = '\0';
	assert_int_equal(tlsstats_add(&t, in, 300, "none", 4), PG_OK);
	assert_string_equal(t.rows[0].domain, want);
	/* a UTF-8 character that does not fit whole is left out, not split */
	memset(in, 'a', 254);
	memcpy(in + 254, "\xc3\xa9", 2);
	want[254] = '\0';
	assert_int_equal(tlsstats_add(&t, in, 256, "verified", 8), PG_OK);
	assert_int_equal(t.nrows, 2);
	assert_int_equal(count(&t, want, TLSSTATS_VERIFIED), 1);
	/* the length given is the end, NUL or not */
	assert_int_equal(tlsstats_add(&t, "short.example.org", 13, "none", 4), PG_OK);
	assert_int_equal(count(&t, "short.example", TLSSTATS_NOT_SENT), 1);
	tlsstats_free(&t);
}

/* 1000 domains get rows; the 1001st and later count under "other". */
static void test_bound(void **state)
{
	struct tlsstats t;
	char domain[64];

	(void)state;
	assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
	assert_int_equal(t.max_domains, 1000);
	/* backwards, so every row goes in at the front: the order is the table's doing */
	for (int i = TLSSTATS_MAX_DOMAINS - 1; i >= 0; i--) {
		int n = snprintf(domain, sizeof(domain), "D%04d.EXAMPLE", i);

		assert_int_equal(tlsstats_add(&t, domain, (size_t)n, "verified", 8), PG_OK);
	}
	assert_int_equal(t.nrows, 1000);
	assert_null(row(&t, "other"));
	for (uint32_t i = 1; i < t.nrows; i++)
		assert_true(strcmp(t.rows[i - 1].domain, t.rows[i].domain) < 0);

	/* domain 1001 */
	assert_int_equal(tlsstats_add(&t, "d1000.example", 13, "plaintext", 9), PG_OK);
	assert_int_equal(t.nrows, 1001);
	assert_null(row(&t, "d1000.example"));
	assert_int_equal(count(&t, "other", TLSSTATS_PLAINTEXT), 1);
	/* and the ones after it */
	assert_int_equal(tlsstats_add(&t, "zzz.example", 11, "none", 4), PG_OK);
	assert_int_equal(tlsstats_add(&t, "aaa.example", 11, "none", 4), PG_OK);
	assert_int_equal(t.nrows, 1001);
	assert_int_equal(count(&t, "other", TLSSTATS_NOT_SENT), 2);
	/* a domain already in the table keeps its row */
	assert_int_equal(tlsstats_add(&t, "d0500.example", 13, "verified", 8), PG_OK);
	assert_int_equal(count(&t, "d0500.example", TLSSTATS_VERIFIED), 2);
	assert_int_equal(count(&t, "other", TLSSTATS_VERIFIED), 0);
	/* "other" sorts like any domain */
	for (uint32_t i = 1; i < t.nrows; i++)
		assert_true(strcmp(t.rows[i - 1].domain, t.rows[i].domain) < 0);
	assert_string_equal(t.rows[1000].domain, "other");
	tlsstats_free(&t);

	/* a bound of 0: everything under "other" */
	assert_int_equal(tlsstats_init(&t, 0), PG_OK);
	assert_int_equal(tlsstats_add(&t, "a.example", 9, "none", 4), PG_OK);
	assert_int_equal(tlsstats_add(&t, "b.example", 9, "none", 4), PG_OK);
	assert_int_equal(t.nrows, 1);
	assert_int_equal(count(&t, "other", TLSSTATS_NOT_SENT), 2);
	tlsstats_free(&t);
}

/* evlog_drain counts the delivery attempts of every ring, and nothing else. */
static void test_drain_counts(void **state)
{
	struct shm_map m;
	struct shm_region *rg;
	struct evlog l;
	struct tlsstats t;
	char err[512], text[EVRING_TEXT_MAX];

	(void)state;
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &m, err, sizeof(err)), PG_OK);
	rg = m.region;
	assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
	/* no log file: the events are lost to the log, not to the count */
	memset(&l, 0, sizeof(l));
	l.fd = -1;
	snprintf(l.dp_state, sizeof(l.dp_state), "absent");
	l.tls = &t;

	delivery_text(text, sizeof(text), "a@Example.com", "sent", "verified");
	assert_true(
	    evring_printf(shm_evring(rg, 1), EV_DELIVERY_ATTEMPT, EVRING_INFO, TS, "%s", text));
	delivery_text(text, sizeof(text), "b@example.com", "deferred", "deferred");
	assert_true(
	    evring_printf(shm_evring(rg, 2), EV_DELIVERY_ATTEMPT, EVRING_INFO, TS, "%s", text));
	delivery_text(text, sizeof(text), "c@example.com", "sent", "verified");
	assert_true(
	    evring_printf(shm_evring(rg, 2), EV_DELIVERY_ATTEMPT, EVRING_INFO, TS, "%s", text));
	delivery_text(text, sizeof(text), "postmaster", "bounced", "none");
	assert_true(
	    evring_printf(shm_evring(rg, 1), EV_DELIVERY_ATTEMPT, EVRING_INFO, TS, "%s", text));
	/* the same fields under another kind are not a delivery */
	assert_true(evring_printf(shm_evring(rg, 1), EV_SMTP_MESSAGE_ACCEPTED, EVRING_INFO, TS,
	                          "to=x@accepted.example" EVRING_SEP "tls_outcome=verified"));

	assert_int_equal(evlog_drain(&l, rg), 5);
	assert_int_equal(t.nrows, 1);
	assert_int_equal(count(&t, "example.com", TLSSTATS_VERIFIED), 2);
	assert_int_equal(count(&t, "example.com", TLSSTATS_DEFERRED), 1);
	assert_int_equal(t.skipped, 1);
	/* drained once, counted once */
	assert_int_equal(evlog_drain(&l, rg), 0);
	assert_int_equal(count(&t, "example.com", TLSSTATS_VERIFIED), 2);

	/* without a table the drain still works */
	l.tls = NULL;
	assert_true(
	    evring_printf(shm_evring(rg, 0), EV_DELIVERY_ATTEMPT, EVRING_INFO, TS, "%s", text));
	assert_int_equal(evlog_drain(&l, rg), 1);
	assert_int_equal(t.skipped, 1);

	tlsstats_free(&t);
	shm_detach(&m);
	shm_unlink_name(shm_name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outcome_names), cmocka_unit_test(test_events),
	    cmocka_unit_test(test_domain_kept),   cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_drain_counts),
	};

	snprintf(shm_name, sizeof(shm_name), "pg-test-tlsstats-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
