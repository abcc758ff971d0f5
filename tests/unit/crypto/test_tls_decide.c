/*
 * test_tls_decide.c - the outbound TLS decision (crypto/tls_decide.h) cell
 * by cell: the lab's policy matrix (tests/lab/test_tls.sh, 7 levels x 9
 * next-hop behaviours, the end-to-end proof) replayed as facts, with the
 * status and reason of every deferral and the outcome each record names;
 * then TLS unavailable here, a refused STARTTLS's text, and an exhaustive
 * walk over every combination of facts for the rule the product exists
 * for: above may, without mode=testing, mail never goes in plaintext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "snap_format.h"
#include "tls_decide.h"

enum behaviour {
	B_NOTLS,
	B_R454,
	B_BROKEN,
	B_SELFSIGNED,
	B_WRONGNAME,
	B_EXPIRED,
	B_VALID,
	B_OTHERCA,
	B_MITM,
	B_COUNT
};
static const char *const bnames[B_COUNT] = {
    "notls", "r454", "broken", "selfsigned", "wrongname", "expired", "valid", "otherca", "mitm"};

struct level_row {
	const char *name;
	uint8_t level;
	bool testing;
	const char *want; /* T P D per behaviour, as test_tls.sh's EXPECT rows */
};
static const struct level_row rows[] = {
    {"none", SNAP_TLS_NONE, false, "PPPPPPPPP"},
    {"may", SNAP_TLS_MAY, false, "PPPTTTTTP"},
    {"encrypt", SNAP_TLS_ENCRYPT, false, "DDDTTTTTD"},
    {"fingerprint", SNAP_TLS_FINGERPRINT, false, "DDDDDDTDD"},
    {"verify", SNAP_TLS_VERIFY, false, "DDDDDDTDD"},
    {"secure", SNAP_TLS_SECURE, false, "DDDDDDTDD"},
    {"testing", SNAP_TLS_VERIFY, true, "PPPTTTTTP"},
};

/*
 * What tls_client_check says of each next hop's certificate at a level:
 * may and encrypt take any certificate; fingerprint is pinned to the valid
 * one; verify and secure need the lab CA's chain and the name mx.tls.test.
 */
static bool cert_ok(uint8_t level, enum behaviour b)
{
	if (level <= SNAP_TLS_ENCRYPT)
		return true;
	return b == B_VALID;
}

struct outcome {
	char cell;      /* T P D */
	char status[8]; /* of the deferral */
	char why[200];
	bool would_defer;   /* the decision that let the mail go */
	const char *record; /* tls_outcome of the record */
	unsigned connections;
};

/* One message to a next hop with behaviour b, as delivery runs it (at most two connections). */
static struct outcome deliver(uint8_t level, bool testing, enum behaviour b, bool local_tls)
{
	struct outcome o = {0};
	bool peer_broken = false;

	for (unsigned conn = 1; conn <= 2; conn++) {
		struct tls_facts f = {0};
		struct tls_decision d;
		bool starttls = tls_decide_starttls(level, testing, local_tls, peer_broken);

		o.connections = conn;
		f.level = level;
		f.testing = testing;
		f.local_tls = local_tls;
		f.offered = b != B_NOTLS && b != B_MITM; /* the man in the middle strips it */
		f.host = "198.19.0.2";
		f.handshake = TLS_HS_NONE;
		if (starttls && f.offered) {
			if (b == B_R454) {
				f.starttls_code = 454;
				f.starttls_text = "4.7.0 TLS not available due to local problem";
			} else if (b == B_BROKEN) {
				f.handshake = TLS_HS_FAILED;
				f.handshake_why = "handshake: wrong version number";
			} else {
				f.handshake = TLS_HS_OK;
				f.cert_ok = cert_ok(level, b);
				f.cert_why = f.cert_ok ? NULL : "Server certificate not trusted";
			}
		}
		tls_decide(&f, &d);
		if (d.action == TLS_RETRY_PLAIN) {
			assert_true(level == SNAP_TLS_MAY || testing);
			assert_int_equal(f.handshake, TLS_HS_FAILED);
			peer_broken = true; /* delivery remembers the peer */
			continue;
		}
		o.cell = d.action == TLS_SEND_TLS ? 'T' : d.action == TLS_SEND_PLAIN ? 'P' : 'D';
		snprintf(o.status, sizeof(o.status), "%s", d.status);
		snprintf(o.why, sizeof(o.why), "%s", d.why);
		o.would_defer = d.would_defer;
		o.record = tls_decide_outcome(
		    &d, d.action == TLS_SEND_TLS,
		    d.action != TLS_SEND_TLS                     ? TLS_VERDICT_NONE
		    : level >= SNAP_TLS_VERIFY && f.cert_ok      ? TLS_VERDICT_VERIFIED
		    : level == SNAP_TLS_FINGERPRINT && f.cert_ok ? TLS_VERDICT_FP_MATCHED
		                                                 : TLS_VERDICT_ANONYMOUS,
		    d.action != TLS_DEFER);
		return o;
	}
	fail_msg("%u/%s: still retrying after two connections", level, bnames[b]);
	return o;
}

/* The lab's 63 cells, with the 4.7.x status of each deferral and the record's outcome. */
static void test_matrix(void **state)
{
	unsigned cells = 0;

	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (unsigned b = 0; b < B_COUNT; b++) {
			struct outcome o = deliver(rows[r].level, rows[r].testing, b, true);
			char want = rows[r].want[b];

			if (o.cell != want)
				fail_msg("%s/%s: got %c, want %c (%s)", rows[r].name, bnames[b],
				         o.cell, want, o.why);
			if (want == 'D') {
				/* no TLS at all: 4.7.4; TLS that failed or fell short: 4.7.5 */
				const char *st =
				    b == B_NOTLS || b == B_R454 || b == B_MITM ? "4.7.4" : "4.7.5";

				if (strcmp(o.status, st) != 0 || strcmp(o.record, "deferred") != 0)
					fail_msg("%s/%s: status %s (want %s), outcome %s",
					         rows[r].name, bnames[b], o.status, st, o.record);
			}
			if (rows[r].testing) {
				/* mode=testing: every cell but the valid one would have deferred */
				if (o.would_defer != (b != B_VALID) ||
				    strcmp(o.record, b != B_VALID ? "would_defer" : "verified") !=
				        0)
					fail_msg("testing/%s: would_defer %d, outcome %s",
					         bnames[b], o.would_defer, o.record);
			} else if (want == 'P' && strcmp(o.record, "plaintext") != 0) {
				fail_msg("%s/%s: outcome %s, want plaintext", rows[r].name,
				         bnames[b], o.record);
			}
			/* may and testing against the broken handshake: plaintext on a second
			 * connection */
			if (b == B_BROKEN && (rows[r].level == SNAP_TLS_MAY || rows[r].testing))
				assert_int_equal(o.connections, 2);
			cells++;
		}
	}
	assert_int_equal(cells, 63);
}

/* The reasons, in Postfix's wording, as the delivery records and DSNs carry them. */
static void test_reasons(void **state)
{
	struct outcome o;

	(void)state;
	o = deliver(SNAP_TLS_ENCRYPT, false, B_NOTLS, true);
	assert_string_equal(o.why, "TLS is required, but was not offered by host 198.19.0.2");
	o = deliver(SNAP_TLS_ENCRYPT, false, B_R454, true);
	assert_string_equal(o.why, "TLS is required, but host 198.19.0.2 refused to start TLS: 454 "
	                           "4.7.0 TLS not available due to local problem");
	o = deliver(SNAP_TLS_SECURE, false, B_BROKEN, true);
	assert_string_equal(o.why, "Cannot start TLS: handshake: wrong version number");
	o = deliver(SNAP_TLS_VERIFY, false, B_EXPIRED, true);
	assert_string_equal(o.why, "Server certificate not trusted");
	/* no TLS context here: strict levels defer, may goes in plaintext */
	o = deliver(SNAP_TLS_FINGERPRINT, false, B_VALID, false);
	assert_int_equal(o.cell, 'D');
	assert_string_equal(o.status, "4.7.4");
	assert_string_equal(o.why, "TLS is required, but unavailable locally");
	o = deliver(SNAP_TLS_MAY, false, B_VALID, false);
	assert_int_equal(o.cell, 'P');
	/* encrypt in mode=testing without STARTTLS: goes, would have deferred 4.7.4 */
	o = deliver(SNAP_TLS_ENCRYPT, true, B_MITM, true);
	assert_int_equal(o.cell, 'P');
	assert_true(o.would_defer);
	assert_string_equal(o.status, "4.7.4");
}

/* tls_decide_starttls: who tries STARTTLS. */
static void test_starttls(void **state)
{
	(void)state;
	assert_false(tls_decide_starttls(SNAP_TLS_NONE, false, true, false));
	assert_false(
	    tls_decide_starttls(SNAP_TLS_VERIFY, false, false, false)); /* nothing to try with */
	assert_true(tls_decide_starttls(SNAP_TLS_MAY, false, true, false));
	assert_false(tls_decide_starttls(SNAP_TLS_MAY, false, true, true));
	assert_false(tls_decide_starttls(SNAP_TLS_SECURE, true, true, true));
	/* a strict level keeps trying a broken peer: it defers rather than send plaintext */
	for (uint8_t l = SNAP_TLS_ENCRYPT; l <= SNAP_TLS_LEVEL_MAX; l++)
		assert_true(tls_decide_starttls(l, false, true, true));
}

/* The outcome names: only body bytes sent without TLS are "plaintext". */
static void test_outcomes(void **state)
{
	struct tls_decision d = {.action = TLS_SEND_PLAIN};

	(void)state;
	assert_string_equal(tls_decide_outcome(NULL, false, TLS_VERDICT_NONE, false), "not_sent");
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, false), "not_sent");
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, true), "plaintext");
	d.action = TLS_SEND_TLS;
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_ANONYMOUS, true), "encrypted");
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_VERIFIED, true), "verified");
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_FP_MATCHED, true),
	                    "fingerprint");
	assert_string_equal(tls_decide_outcome(&d, true, TLS_VERDICT_VERIFIED, false), "not_sent");
	d.would_defer = true;
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, true), "would_defer");
	d.action = TLS_DEFER;
	assert_string_equal(tls_decide_outcome(&d, false, TLS_VERDICT_NONE, false), "deferred");
}

/*
 * Every combination of facts: above may without mode=testing the mail goes
 * only over TLS that met the level, else it is deferred 4.7.x with a
 * reason; none and may never defer; testing never defers.
 */
static void test_never_plaintext(void **state)
{
	unsigned n = 0;

	(void)state;
	for (uint8_t level = SNAP_TLS_NONE; level <= SNAP_TLS_LEVEL_MAX; level++)
		for (int testing = 0; testing < 2; testing++)
			for (int local = 0; local < 2; local++)
				for (int offered = 0; offered < 2; offered++)
					for (int code = 0; code < 2; code++)
						for (int hs = TLS_HS_NONE; hs <= TLS_HS_FAILED;
						     hs++)
							for (int ok = 0; ok < 2; ok++) {
								struct tls_facts f = {
								    .level = level,
								    .testing = testing,
								    .local_tls = local,
								    .offered = offered,
								    .starttls_code = code ? 454 : 0,
								    .handshake = hs,
								    .cert_ok = ok,
								    .host = "h"};
								struct tls_decision d;
								bool strict =
								    level >= SNAP_TLS_ENCRYPT;

								tls_decide(&f, &d);
								n++;
								if (strict && !testing) {
									if (d.action ==
									    TLS_SEND_TLS)
										assert_true(
										    hs ==
										        TLS_HS_OK &&
										    ok);
									else
										assert_int_equal(
										    d.action,
										    TLS_DEFER);
									if (d.action == TLS_DEFER)
										assert_true(
										    d.why[0] !=
										        '\0' &&
										    strncmp(
										        d.status,
										        "4.7.",
										        4) == 0);
									assert_false(d.would_defer);
								} else {
									assert_int_not_equal(
									    d.action, TLS_DEFER);
								}
								if (d.action == TLS_SEND_TLS)
									assert_int_equal(hs,
									                 TLS_HS_OK);
								if (hs == TLS_HS_FAILED)
									assert_true(
									    d.action ==
									        TLS_RETRY_PLAIN ||
									    d.action == TLS_DEFER);
							}
	assert_int_equal(n, 6u * 2 * 2 * 2 * 2 * 3 * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matrix),          cmocka_unit_test(test_reasons),
	    cmocka_unit_test(test_starttls),        cmocka_unit_test(test_outcomes),
	    cmocka_unit_test(test_never_plaintext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
